//! The reconciled state: every region's reconciliation, kept in memory for readers (`live`), loaded from the
//! database as a snapshot (`snapshot`) and computed by the pure engine. Beneath the capabilities, beside the write
//! kernel, which recomputes it in each write's transaction.

pub mod engine;
pub mod live;
pub mod snapshot;

use std::sync::Arc;

use async_graphql::Context;

use crate::error::ApiError;
use live::Reconciled;

pub fn reconciled<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Reconciled>, ApiError> {
    ctx.data::<Arc<Reconciled>>()
        .map_err(|_| ApiError::Internal("reconciled state missing from the schema data".into()))
}
