//! The reconciled state: every region's reconciliation, kept in memory for readers (`live`), loaded from the
//! database as a snapshot (`snapshot`) and computed by the pure engine. Beneath the capabilities, beside the write
//! kernel, which recomputes it in each write's transaction.

pub mod engine;
pub mod live;
pub mod snapshot;

use std::sync::Arc;

use async_graphql::Context;

use crate::error::ApiError;
use crate::records::{CommitmentRecord, MeasureRecord};
use live::Reconciled;

/// A measure's commitments come from the reconciled state, as the measure itself does in every read.
#[async_graphql::ComplexObject]
impl MeasureRecord {
    /// The commitments of every funder on this measure (withdrawn ones included, with their status).
    async fn commitments(&self, ctx: &Context<'_>) -> crate::error::ApiResult<Vec<CommitmentRecord>> {
        let state = reconciled(ctx)?.region(&self.region_code).await?;
        Ok(state.commitments_of(&self.id).map(<[CommitmentRecord]>::to_vec).unwrap_or_default())
    }
}

pub fn reconciled<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Reconciled>, ApiError> {
    ctx.data::<Arc<Reconciled>>()
        .map_err(|_| ApiError::Internal("reconciled state missing from the schema data".into()))
}
