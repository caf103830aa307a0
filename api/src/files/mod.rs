//! The files channel: spreadsheets in (`importFile` upload and `cnh-hub import`, through the same capabilities and
//! write kernel as GraphQL) and out (`GET /exports/{list}.{csv,xlsx}`), read and written by `tabular`.

pub mod export;
pub mod import;
pub mod tabular;

use async_graphql::{Context, Object};

use crate::access::policy::{self, Action, Resource};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::receipts::Channel;
use crate::territory::service::catalog;
use crate::vocabulary::DataKind;

/// The files channel's one GraphQL entry: a spreadsheet uploaded through the API.
#[derive(Default)]
pub struct FilesMutation;

#[Object]
impl FilesMutation {
    /// Submits a spreadsheet (multipart upload): CSV (`;`, decimal comma, UTF-8 or Windows-1252) or XLSX, with the
    /// columns of the matching export. Same validation, idempotency and audit as the GraphQL writes; all-or-nothing,
    /// every problem reported with its spreadsheet line.
    async fn import_file(
        &self,
        ctx: &Context<'_>,
        kind: DataKind,
        file: async_graphql::Upload,
        idempotency_key: Option<String>,
    ) -> ApiResult<import::ImportReport> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::FileImport, Action::Write)?;
        let mut upload = file.value(ctx).map_err(|e| ApiError::BadUserInput(format!("fichier illisible : {e}")))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut upload.content, &mut bytes)
            .map_err(|e| ApiError::BadUserInput(format!("fichier illisible : {e}")))?;
        Ok(import::import_file(
            db(ctx)?,
            crate::reconciled::reconciled(ctx)?,
            catalog(ctx)?,
            principal,
            kind,
            &bytes,
            idempotency_key,
            Channel::File,
        )
        .await?)
    }
}
