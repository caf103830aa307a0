//! Programming: the ARS's measures and every funder's commitments on them.

pub mod service;
pub mod types;
pub mod validation;

use crate::reconciled::reconciled;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, FixedOffset};

use crate::access::policy::{self, Action, Resource};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::receipts::Channel;
use crate::pagination::{ConnectionFields, page_size};
use crate::territory::service::catalog;
use types::{CommitmentInput, CommitmentPayload, MeasureFilter, MeasureInput, MeasurePayload, MeasureRecord};

#[derive(Default)]
pub struct ProgrammingQuery;

#[Object]
impl ProgrammingQuery {
    /// Measures within the caller's territory (all of them for the CNSA), oldest first, from the reconciled state
    /// (current as of the last committed write).
    async fn measures(
        &self,
        ctx: &Context<'_>,
        filter: Option<MeasureFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, MeasureRecord, ConnectionFields>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Measure, Action::Read)?;
        let limit = page_size(first)?;
        let filter = filter.unwrap_or_default();
        let (records, total, has_next) =
            service::list_measures(reconciled(ctx)?, principal, reach, &filter, limit, after.as_deref()).await?;
        let mut connection =
            Connection::with_additional_fields(after.is_some(), has_next, ConnectionFields { total_count: total });
        for record in records {
            connection.edges.push(Edge::new(record.id.clone(), record));
        }
        Ok(connection)
    }

    /// One measure; with `asOf`, as it stood at that instant (null if it did not exist yet). Outside the caller's
    /// territory it is NOT_FOUND, as a missing one.
    async fn measure(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<FixedOffset>>,
    ) -> ApiResult<Option<MeasureRecord>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Measure, Action::Read)?;
        // The current version from the reconciled state; an earlier one from the revisions.
        let current = service::find_measure_record(reconciled(ctx)?, principal, reach, id.as_str()).await?;
        match as_of {
            None => Ok(Some(current)),
            Some(instant) => Ok(service::measure_as_of(db(ctx)?, &current.id, instant).await?),
        }
    }

    /// Federation (`_entities`): a measure's current version by its key, under the same policy and territory as
    /// `measure(id:)` (another territory's measure is NOT_FOUND, as there).
    #[graphql(entity)]
    async fn find_measure_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<MeasureRecord> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Measure, Action::Read)?;
        Ok(service::find_measure_record(reconciled(ctx)?, principal, reach, id.as_str()).await?)
    }
}

#[derive(Default)]
pub struct ProgrammingMutation;

#[Object]
impl ProgrammingMutation {
    /// Creates or updates (at `expectedVersion`) the measure of this reference in the ARS's region. Updating an
    /// existing measure without `expectedVersion`, or with another version than the stored one, is VERSION_CONFLICT
    /// with the stored version in `extensions.currentVersion`; nothing is written.
    async fn upsert_measure(
        &self,
        ctx: &Context<'_>,
        input: MeasureInput,
        idempotency_key: Option<String>,
        expected_version: Option<i32>,
    ) -> ApiResult<MeasurePayload> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::Measure, Action::Write)?;
        Ok(service::upsert_measure(
            db(ctx)?,
            reconciled(ctx)?,
            catalog(ctx)?,
            principal,
            input,
            idempotency_key,
            expected_version,
            Channel::Graphql,
        )
        .await?)
    }

    /// Records the caller's own commitment on a measure (the ARS for assurance maladie, a collectivité for
    /// itself): capacity, installation date, component, amounts as that funder sees them. Updating an existing
    /// commitment without `expectedVersion`, or with another version than the stored one, is VERSION_CONFLICT with
    /// the stored version in `extensions.currentVersion`; nothing is written.
    async fn commit(
        &self,
        ctx: &Context<'_>,
        input: CommitmentInput,
        idempotency_key: Option<String>,
        expected_version: Option<i32>,
    ) -> ApiResult<CommitmentPayload> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::Commitment, Action::Write)?;
        // A funder commits on measures of its territory; reading them is part of that reach.
        let reach = policy::require(principal, Resource::Measure, Action::Read)?;
        Ok(service::commit(
            db(ctx)?,
            reconciled(ctx)?,
            principal,
            reach,
            input,
            idempotency_key,
            expected_version,
            Channel::Graphql,
        )
        .await?)
    }

    /// Withdraws the caller's own commitment; it stays on record with its reason.
    async fn withdraw_commitment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
        expected_version: i32,
        idempotency_key: Option<String>,
    ) -> ApiResult<CommitmentPayload> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::Commitment, Action::Write)?;
        if id.is_empty() {
            return Err(ApiError::BadUserInput("identifiant vide".into()).into());
        }
        Ok(service::withdraw(
            db(ctx)?,
            reconciled(ctx)?,
            principal,
            id.as_str(),
            &reason,
            expected_version,
            idempotency_key,
        )
        .await?)
    }
}
