//! The audit trail as the API shows it: `auditTrail` and `verifyAuditChain`, which finds the first record altered or
//! deleted. Records are appended by the write kernel (`kernel::audit_log`), in each write's own transaction.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, FixedOffset};
use entities::{audit_head, audit_record};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::access::policy::{self, Action, Reach, Resource};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::audit_chain::{self as chain, GENESIS, StoredRecord};
pub use crate::kernel::audit_log::{Actor, AuditEntry, now_micros};
use crate::pagination::{ConnectionFields, page_size};

fn stored(row: audit_record::Model) -> StoredRecord {
    StoredRecord {
        seq: row.seq,
        recorded_at_micros: row.recorded_at.timestamp_micros(),
        institution_code: row.institution_code,
        agent_id: row.agent_id,
        token_id: row.token_id,
        operation: row.operation,
        object_ids: row.object_ids,
        content_hash: row.content_hash,
        previous_hash: row.previous_hash,
        hash: row.hash,
    }
}

/// The outcome of a verification of the whole chain.
#[derive(SimpleObject, Debug, PartialEq, Eq)]
pub struct AuditVerification {
    /// True when every record is intact and none is missing.
    pub ok: bool,
    /// How many records were checked before the end or the first break.
    pub checked: i64,
    /// Sequence number of the first record altered, deleted or out of place.
    pub first_broken_at: Option<i64>,
}

pub async fn verify(db: &DatabaseConnection) -> Result<AuditVerification, DbErr> {
    let mut previous = (GENESIS.to_owned(), 0i64);
    loop {
        let page: Vec<StoredRecord> = audit_record::Entity::find()
            .filter(audit_record::Column::Seq.gt(previous.1))
            .order_by_asc(audit_record::Column::Seq)
            .limit(2000)
            .all(db)
            .await?
            .into_iter()
            .map(stored)
            .collect();
        if page.is_empty() {
            break;
        }
        match chain::first_break((&previous.0, previous.1), &page) {
            Ok(last) => previous = last,
            Err(broken) => {
                return Ok(AuditVerification { ok: false, checked: broken - 1, first_broken_at: Some(broken) });
            }
        }
    }
    // Records removed from the end show as a head that is ahead of the last record.
    let head = audit_head::Entity::find_by_id(1).one(db).await?;
    if let Some(head) = head
        && (head.last_seq != previous.1 || head.last_hash != previous.0)
    {
        return Ok(AuditVerification { ok: false, checked: previous.1, first_broken_at: Some(previous.1 + 1) });
    }
    Ok(AuditVerification { ok: true, checked: previous.1, first_broken_at: None })
}

/// An audit record.
pub struct AuditRecord(pub audit_record::Model);

#[Object]
impl AuditRecord {
    async fn seq(&self) -> i64 {
        self.0.seq
    }
    async fn recorded_at(&self) -> DateTime<FixedOffset> {
        self.0.recorded_at
    }
    async fn institution_code(&self) -> &str {
        &self.0.institution_code
    }
    async fn agent_id(&self) -> Option<&str> {
        self.0.agent_id.as_deref()
    }
    async fn token_id(&self) -> Option<&str> {
        self.0.token_id.as_deref()
    }
    /// The GraphQL operation or import that wrote (or read) something.
    async fn operation(&self) -> &str {
        &self.0.operation
    }
    /// Ids of the objects concerned.
    async fn object_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.0.object_ids).unwrap_or_default()
    }
    /// SHA-256 of what was submitted.
    async fn content_hash(&self) -> &str {
        &self.0.content_hash
    }
    async fn previous_hash(&self) -> &str {
        &self.0.previous_hash
    }
    async fn hash(&self) -> &str {
        &self.0.hash
    }
}

#[derive(InputObject, Default)]
pub struct AuditFilter {
    pub institution_code: Option<String>,
    pub operation: Option<String>,
    pub from: Option<DateTime<FixedOffset>>,
    pub to: Option<DateTime<FixedOffset>>,
}

/// Verifying the chain reads and hashes every audit record, so it weighs in a
/// query's complexity (`CNH_MAX_QUERY_COMPLEXITY`, 10 000 by default) far more than a plain field: a document cannot
/// ask for it by the dozen under aliases.
pub const AUDIT_CHAIN_COMPLEXITY: usize = 4000;

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audit records, oldest first. The CNSA and the operator see every record; other institutions their own.
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, AuditRecord, ConnectionFields>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::AuditTrail, Action::Read)?;
        let filter = filter.unwrap_or_default();
        crate::access::filters::check_institution_filter(principal, reach, filter.institution_code.as_deref())?;
        let limit = page_size(first)?;
        let mut query = audit_record::Entity::find();
        if reach != Reach::Everything {
            query = query.filter(audit_record::Column::InstitutionCode.eq(principal.institution.code.clone()));
        }
        if let Some(code) = filter.institution_code {
            query = query.filter(audit_record::Column::InstitutionCode.eq(code));
        }
        if let Some(operation) = filter.operation {
            query = query.filter(audit_record::Column::Operation.eq(operation));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_record::Column::RecordedAt.gte(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_record::Column::RecordedAt.lte(to));
        }
        let db = db(ctx)?;
        let total = query.clone().count(db).await.map_err(ApiError::from)?;
        if let Some(after) = after {
            let seq: i64 =
                after.parse().map_err(|_| ApiError::BadUserInput(format!("curseur « {after} » invalide")))?;
            query = query.filter(audit_record::Column::Seq.gt(seq));
        }
        let mut rows =
            query.order_by_asc(audit_record::Column::Seq).limit(limit + 1).all(db).await.map_err(ApiError::from)?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let mut connection =
            Connection::with_additional_fields(false, has_next, ConnectionFields { total_count: total });
        connection.edges.extend(rows.into_iter().map(|row| Edge::new(row.seq.to_string(), AuditRecord(row))));
        Ok(connection)
    }

    /// Recomputes every hash of the chain and reports the first record altered or deleted.
    /// Weighs 4000 in the query's complexity.
    #[graphql(complexity = "AUDIT_CHAIN_COMPLEXITY + child_complexity")]
    async fn verify_audit_chain(&self, ctx: &Context<'_>) -> ApiResult<AuditVerification> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::AuditIntegrity, Action::Read)?;
        Ok(verify(db(ctx)?).await.map_err(ApiError::from)?)
    }
}
