//! The audit trail: every write appends a record (who, what, when, content hash) chained by hash to the previous
//! one, in the write's own transaction; reads of needs data are recorded too. `verifyAuditChain` finds the first
//! record altered or deleted.

pub mod chain;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use entities::{audit_head, audit_record};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::auth::policy::{self, Action, Reach, Resource};
use crate::auth::principal::Principal;
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::db;
use crate::graphql::pagination::{ConnectionFields, page_size};
use chain::{GENESIS, RecordContent, StoredRecord};

/// Who acts: the institution, the agent or service account, the token.
#[derive(Clone, Debug)]
pub struct Actor {
    pub institution_code: String,
    pub agent_id: Option<String>,
    pub token_id: Option<String>,
}

impl Actor {
    pub fn of(principal: &Principal) -> Actor {
        Actor {
            institution_code: principal.institution.code.clone(),
            agent_id: principal.agent_id.clone(),
            token_id: principal.token_id.clone(),
        }
    }

    /// "ARS-84/marie.durand", for the `updated_by` columns.
    pub fn label(&self) -> String {
        format!("{}/{}", self.institution_code, self.agent_id.as_deref().unwrap_or("-"))
    }
}

/// One thing done, to be recorded.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub operation: String,
    pub object_ids: Vec<String>,
    pub content_hash: String,
}

/// Timestamps are kept to the microsecond, the precision every backend stores, so that hashes verify after a read.
pub fn now_micros() -> DateTime<FixedOffset> {
    let micros = Utc::now().timestamp_micros();
    Utc.timestamp_micros(micros).single().unwrap_or_else(Utc::now).fixed_offset()
}

/// Appends records at the end of the chain, inside the caller's transaction.
pub async fn append<C: ConnectionTrait>(conn: &C, actor: &Actor, entries: &[AuditEntry]) -> Result<(), DbErr> {
    if entries.is_empty() {
        return Ok(());
    }
    // Touching the head first takes its row lock on PostgreSQL: concurrent writers append one after the other.
    conn.execute_unprepared("UPDATE audit_head SET last_seq = last_seq WHERE id = 1").await?;
    let head =
        audit_head::Entity::find_by_id(1).one(conn).await?.ok_or_else(|| DbErr::RecordNotFound("audit_head".into()))?;
    let (mut seq, mut previous) = (head.last_seq, head.last_hash);
    let recorded_at = now_micros();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let object_ids = serde_json::to_string(&entry.object_ids).unwrap_or_else(|_| "[]".into());
        let hash = chain::record_hash(
            &previous,
            &RecordContent {
                seq,
                recorded_at_micros: recorded_at.timestamp_micros(),
                institution_code: &actor.institution_code,
                agent_id: actor.agent_id.as_deref(),
                token_id: actor.token_id.as_deref(),
                operation: &entry.operation,
                object_ids: &object_ids,
                content_hash: &entry.content_hash,
            },
        );
        rows.push(audit_record::ActiveModel {
            seq: sea_orm::Set(seq),
            recorded_at: sea_orm::Set(recorded_at),
            institution_code: sea_orm::Set(actor.institution_code.clone()),
            agent_id: sea_orm::Set(actor.agent_id.clone()),
            token_id: sea_orm::Set(actor.token_id.clone()),
            operation: sea_orm::Set(entry.operation.clone()),
            object_ids: sea_orm::Set(object_ids),
            content_hash: sea_orm::Set(entry.content_hash.clone()),
            previous_hash: sea_orm::Set(previous.clone()),
            hash: sea_orm::Set(hash.clone()),
        });
        previous = hash;
    }
    for chunk in rows.chunks(500) {
        audit_record::Entity::insert_many(chunk.to_vec()).exec_without_returning(conn).await?;
    }
    audit_head::Entity::update_many()
        .col_expr(audit_head::Column::LastSeq, sea_orm::sea_query::Expr::value(seq))
        .col_expr(audit_head::Column::LastHash, sea_orm::sea_query::Expr::value(previous))
        .filter(audit_head::Column::Id.eq(1))
        .exec(conn)
        .await?;
    Ok(())
}

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
    async fn verify_audit_chain(&self, ctx: &Context<'_>) -> ApiResult<AuditVerification> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::AuditIntegrity, Action::Read)?;
        Ok(verify(db(ctx)?).await.map_err(ApiError::from)?)
    }
}
