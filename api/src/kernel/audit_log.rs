//! Appending to the audit trail: every write appends a record (who, what, when, content hash) chained by hash to
//! the previous one, in the write's own transaction; reads of needs data are recorded too.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use entities::{audit_head, audit_record};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::audit_chain::{self as chain, RecordContent};
use crate::access::principal::Principal;

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

/// What a record of `entry` by `actor` says, as it is hashed.
fn content<'a>(
    seq: i64,
    recorded_at: DateTime<FixedOffset>,
    actor: &'a Actor,
    entry: &'a AuditEntry,
    object_ids: &'a str,
) -> RecordContent<'a> {
    RecordContent {
        seq,
        recorded_at_micros: recorded_at.timestamp_micros(),
        institution_code: &actor.institution_code,
        agent_id: actor.agent_id.as_deref(),
        token_id: actor.token_id.as_deref(),
        operation: &entry.operation,
        object_ids,
        content_hash: &entry.content_hash,
    }
}

/// Appends records at the end of the chain, inside the caller's transaction.
pub async fn append<C: ConnectionTrait>(conn: &C, actor: &Actor, entries: &[AuditEntry]) -> Result<(), DbErr> {
    append_after(conn, Vec::new(), actor, entries).await
}

/// Appends records after running `before` (data-modifying statements of the same transaction, as PostgreSQL
/// chains them: `db::chained_all`): on PostgreSQL they go with the statement that locks the chain's head, in one
/// round trip; elsewhere one after the other.
pub async fn append_after<C: ConnectionTrait>(
    conn: &C,
    before: Vec<sea_orm::Statement>,
    actor: &Actor,
    entries: &[AuditEntry],
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let postgres = backend == sea_orm::DatabaseBackend::Postgres;
    let before = if entries.is_empty() || !postgres {
        for statement in before {
            conn.execute_raw(statement).await?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        Vec::new()
    } else {
        before
    };
    if postgres && entries.len() == 1 {
        return append_one_chained_in_postgres(conn, before, actor, &entries[0]).await;
    }
    // Touching the head takes its row lock on PostgreSQL (concurrent writers append one after the other) and reads
    // it in the same round trip: the lock is held until commit, so every statement under it counts.
    let lock_head = sea_orm::Statement::from_string(
        backend,
        "UPDATE audit_head SET last_seq = last_seq WHERE id = 1 RETURNING last_seq, last_hash",
    );
    let lock_head = if postgres { crate::db::chained_all(before, lock_head) } else { lock_head };
    let head = conn.query_one_raw(lock_head).await?.ok_or_else(|| DbErr::RecordNotFound("audit_head".into()))?;
    let (mut seq, mut previous): (i64, String) = (head.try_get("", "last_seq")?, head.try_get("", "last_hash")?);
    let recorded_at = now_micros();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let object_ids = serde_json::to_string(&entry.object_ids).unwrap_or_else(|_| "[]".into());
        let hash = chain::record_hash(&previous, &content(seq, recorded_at, actor, entry, &object_ids));
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
    let head = audit_head::Entity::update_many()
        .col_expr(audit_head::Column::LastSeq, sea_orm::sea_query::Expr::value(seq))
        .col_expr(audit_head::Column::LastHash, sea_orm::sea_query::Expr::value(previous))
        .filter(audit_head::Column::Id.eq(1));
    if postgres && rows.len() <= 500 {
        // The records and the head in one round trip: the head's lock is held until commit.
        use sea_orm::QueryTrait;
        let insert = audit_record::Entity::insert_many(rows).build(backend);
        conn.execute_raw(crate::db::chained(insert, head.build(backend))).await?;
        return Ok(());
    }
    for chunk in rows.chunks(500) {
        audit_record::Entity::insert_many(chunk.to_vec()).exec_without_returning(conn).await?;
    }
    head.exec(conn).await?;
    Ok(())
}

/// One record (a write's usual audit), with the statements before it, in one statement and so one round trip: the
/// head is locked (`FOR UPDATE` waits for the writer before and reads the head it left), the record is inserted with
/// the hash PostgreSQL computes over the head's hash, the next sequence number and the rest of the record framed as
/// `chain::record_hash` frames them (`chain::framed_after_seq`, computed here), and the head moves to it. The head's
/// lock is held until commit, so this saves a round trip of that time, which every write of every region waits for.
async fn append_one_chained_in_postgres<C: ConnectionTrait>(
    conn: &C,
    before: Vec<sea_orm::Statement>,
    actor: &Actor,
    entry: &AuditEntry,
) -> Result<(), DbErr> {
    let (head, record, moved) = one_record_chained(actor, entry, None, "");
    let statement = crate::db::chained_named(before, vec![("head_", head), ("record_", record)], moved);
    conn.query_one_raw(statement).await?.ok_or_else(|| DbErr::RecordNotFound("audit_head".into()))?;
    Ok(())
}

/// On PostgreSQL, one audit record appended in one statement after `first` (statements whose rows nothing reads)
/// and `named` common table expressions (a
/// speculative write's, `Reconciled::speculative_statements`): the head is locked only once `gate` (one of them) has
/// a row, so a lock they take comes first; the statement's row carries `returning` (read from them) as well. None
/// when `gate` has no row: nothing was appended.
pub async fn append_one_gated<C: ConnectionTrait>(
    conn: &C,
    first: Vec<sea_orm::Statement>,
    named: Vec<(&str, sea_orm::Statement)>,
    gate: &str,
    returning: &str,
    actor: &Actor,
    entry: &AuditEntry,
) -> Result<Option<sea_orm::QueryResult>, DbErr> {
    let (head, record, moved) = one_record_chained(actor, entry, Some(gate), returning);
    let mut named = named;
    named.extend([("head_", head), ("record_", record)]);
    conn.query_one_raw(crate::db::chained_named(first, named, moved)).await
}

/// The statements that chain one record in PostgreSQL: lock and read the head (once `gate` has a row), insert the
/// record hashed over the head's hash and next number, move the head (its row returns `returning` too).
fn one_record_chained(
    actor: &Actor,
    entry: &AuditEntry,
    gate: Option<&str>,
    returning: &str,
) -> (sea_orm::Statement, sea_orm::Statement, sea_orm::Statement) {
    use sea_orm::{DatabaseBackend, Statement};
    let recorded_at = now_micros();
    let object_ids = serde_json::to_string(&entry.object_ids).unwrap_or_else(|_| "[]".into());
    // The sequence number is not in the framed bytes: PostgreSQL frames the head's next one.
    let framed = chain::framed_after_seq(&content(0, recorded_at, actor, entry, &object_ids));
    let head = match gate {
        None => "SELECT last_seq, last_hash FROM audit_head WHERE id = 1 FOR UPDATE".to_owned(),
        // Row locks are taken above the join: once the gate's row came.
        Some(gate) => format!(
            "SELECT h.last_seq, h.last_hash FROM audit_head h CROSS JOIN (SELECT 1 FROM {gate} LIMIT 1) AS g \
             WHERE h.id = 1 FOR UPDATE OF h"
        ),
    };
    let head = Statement::from_string(DatabaseBackend::Postgres, head);
    let record = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "INSERT INTO audit_record (seq, recorded_at, institution_code, agent_id, token_id, operation, object_ids, \
         content_hash, previous_hash, hash) \
         SELECT last_seq + 1, $1, $2, $3, $4, $5, $6, $7, last_hash, encode(sha256(\
         int8send(octet_length(last_hash)::int8) || convert_to(last_hash, 'UTF8') || \
         int8send(8::int8) || int8send((last_seq + 1)::int8) || $8), 'hex') \
         FROM head_ RETURNING seq, hash",
        [
            recorded_at.into(),
            actor.institution_code.clone().into(),
            actor.agent_id.clone().into(),
            actor.token_id.clone().into(),
            entry.operation.clone().into(),
            object_ids.into(),
            entry.content_hash.clone().into(),
            framed.into(),
        ],
    );
    let returning = if returning.is_empty() { String::new() } else { format!(", {returning}") };
    let moved = Statement::from_string(
        DatabaseBackend::Postgres,
        format!(
            "UPDATE audit_head SET last_seq = record_.seq, last_hash = record_.hash FROM record_ \
             WHERE audit_head.id = 1 RETURNING audit_head.last_seq{returning}"
        ),
    );
    (head, record, moved)
}
