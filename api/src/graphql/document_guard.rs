//! Applies the document limits (`limits`) to every GraphQL request, whatever its channel: the HTTP handlers call
//! [`guard`] before anything reads the document, and the schema extension [`DocumentGuard`] does the same for
//! requests that reach the schema another way (WebSocket subscriptions). The parsed document is kept in the
//! request, so it is parsed once.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::{ErrorExtensions, Request, ServerError, ServerResult};

use super::input_text::RefusedCharacter;
use super::limits::{self, DocumentLimits, LimitExceeded};
use crate::error::code;

/// Marks a request whose document was already checked, with the number of fields it expands to.
struct Checked(u64);

/// The number of fields a checked request's document expands to (0 when it does not parse).
pub fn expanded_fields(request: &Request) -> u64 {
    request.data.get(&std::any::TypeId::of::<Checked>()).and_then(|c| c.downcast_ref::<Checked>()).map_or(0, |c| c.0)
}

/// Why a document was refused before execution.
#[derive(Debug)]
pub enum Refusal {
    /// A size limit (`QUERY_TOO_COMPLEX`).
    Limit(LimitExceeded),
    /// A character no text may hold (`BAD_USER_INPUT`).
    Text(RefusedCharacter),
}

impl Refusal {
    pub fn server_error(&self) -> ServerError {
        match self {
            Refusal::Limit(err) => server_error(err),
            Refusal::Text(err) => err.server_error(),
        }
    }
}

/// Scans the raw document, parses it (once: the parse is kept in the request), checks its fragments' expansion,
/// its variables, and the characters of its texts. A document that does not parse is left to the schema, which
/// reports the parse error.
pub fn guard(request: &mut Request, limits: &DocumentLimits) -> Result<(), Refusal> {
    if request.data.contains_key(&std::any::TypeId::of::<Checked>()) {
        return Ok(());
    }
    limits::scan(&request.query, limits).map_err(Refusal::Limit)?;
    limits::check_variables(&request.variables, limits).map_err(Refusal::Limit)?;
    // The variables are read in place, before the parse borrows the request (no copy on the hot path).
    super::input_text::check_variables(&request.variables).map_err(Refusal::Text)?;
    let mut fields = 0;
    if let Ok(document) = request.parsed_query() {
        fields = limits::check_document(document, limits).map_err(Refusal::Limit)?;
        super::input_text::check_document(document).map_err(Refusal::Text)?;
    }
    request.data.insert(Checked(fields));
    Ok(())
}

/// A size limit's refusal as a GraphQL error.
pub fn server_error(err: &LimitExceeded) -> ServerError {
    let error = async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
        ext.set("code", code::QUERY_TOO_COMPLEX);
        ext.set("limit", err.limit());
        if let Some(max) = err.max() {
            ext.set("max", max as u64);
        }
    });
    error.into_server_error(async_graphql::Pos::default())
}

/// The schema extension: the same checks for every request the schema executes.
pub struct DocumentGuard(pub DocumentLimits);

impl ExtensionFactory for DocumentGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentGuard(self.0))
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentGuard {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        guard(&mut request, &self.0).map_err(|e| e.server_error())?;
        next.run(ctx, request).await
    }
}
