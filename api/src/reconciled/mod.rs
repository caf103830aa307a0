//! The reconciled state: every region's reconciliation, kept in memory for readers (`live`), loaded from the
//! database as a snapshot (`snapshot`) and computed by the pure engine. Beneath the capabilities, beside the write
//! kernel, which recomputes it in each write's transaction.

pub mod credits;
pub mod engine;
pub mod live;
pub mod snapshot;
mod speculation;

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

    /// Every version of the measure as it stood, and every change of its co-financing status, oldest first (from
    /// the revisions and the status log: read from the database, only when asked).
    async fn history(&self, ctx: &Context<'_>) -> crate::error::ApiResult<MeasureHistory> {
        use entities::{co_financing_event, measure_revision};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let db = crate::context::db(ctx)?;
        let revisions = measure_revision::Entity::find()
            .filter(measure_revision::Column::MeasureId.eq(self.id.clone()))
            .order_by_asc(measure_revision::Column::Version)
            .all(db)
            .await
            .map_err(ApiError::from)?;
        let mut versions = Vec::with_capacity(revisions.len());
        for r in revisions {
            let measure: MeasureRecord =
                serde_json::from_str(&r.snapshot).map_err(|e| ApiError::Internal(Box::new(e)))?;
            versions.push(MeasureVersion {
                version: r.version,
                recorded_at: r.recorded_at,
                recorded_by: r.recorded_by,
                submission_id: r.submission_id,
                measure,
            });
        }
        let events = co_financing_event::Entity::find()
            .filter(co_financing_event::Column::MeasureId.eq(self.id.clone()))
            .order_by_asc(co_financing_event::Column::Id)
            .all(db)
            .await
            .map_err(ApiError::from)?;
        let status_changes = events
            .into_iter()
            .map(|e| StatusChangeEntry {
                previous_status: e.previous_status.as_deref().and_then(engine::CoFinancingStatus::from_stored),
                status: e.status.as_deref().and_then(engine::CoFinancingStatus::from_stored),
                finding_codes: e.finding_codes.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
                recorded_at: e.recorded_at,
            })
            .collect();
        Ok(MeasureHistory { versions, status_changes })
    }
}

/// A measure's past: its versions and its co-financing status changes.
#[derive(async_graphql::SimpleObject)]
pub struct MeasureHistory {
    pub versions: Vec<MeasureVersion>,
    pub status_changes: Vec<StatusChangeEntry>,
}

/// The measure as one change left it.
#[derive(async_graphql::SimpleObject)]
pub struct MeasureVersion {
    pub version: i32,
    pub recorded_at: chrono::DateTime<chrono::FixedOffset>,
    /// Institution and agent of the change.
    pub recorded_by: String,
    pub submission_id: Option<String>,
    pub measure: MeasureRecord,
}

/// A change of a measure's co-financing status, as logged when it happened.
#[derive(async_graphql::SimpleObject)]
pub struct StatusChangeEntry {
    /// None when the measure was new to its region.
    pub previous_status: Option<engine::CoFinancingStatus>,
    /// None when the measure left its region.
    pub status: Option<engine::CoFinancingStatus>,
    pub finding_codes: Vec<String>,
    pub recorded_at: chrono::DateTime<chrono::FixedOffset>,
}

pub fn reconciled<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Reconciled>, ApiError> {
    ctx.data::<Arc<Reconciled>>()
        .map_err(|_| ApiError::Internal("reconciled state missing from the schema data".into()))
}
