//! The path every write takes, whatever its channel (GraphQL, file upload, `cnh-hub import`): one transaction,
//! idempotency by key, audit records appended in the same transaction, nothing stored when anything fails.
//!
//! Idempotency: the key's record is inserted first in the transaction. A concurrent request with the same key
//! blocks on it (PostgreSQL) or waits for the write lock (SQLite), then finds the first answer and returns it; a
//! different input under the same key is `IDEMPOTENCY_CONFLICT`. A failed write stores no key, so it can be retried.

use entities::idempotency_record;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryTrait, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::ApiError;
use crate::kernel::audit_chain::sha256_hex;
use crate::kernel::audit_log::{self as audit, Actor, AuditEntry};
use crate::kernel::outbox::{self, EventKind, OutboundEvent};
use crate::reconciled::live::{Recomputed, Reconciled, StatusChange};

/// The largest idempotency key accepted.
const MAX_KEY_LENGTH: usize = 200;

/// SHA-256 of a value's JSON form: the content hash of a submission and the fingerprint of an idempotent request.
pub fn content_hash<T: Serialize>(value: &T) -> String {
    sha256_hex(serde_json::to_string(value).unwrap_or_default().as_bytes())
}

/// region → the ids of the measures a write changed there.
type MeasuresByRegion = BTreeMap<String, BTreeSet<String>>;

/// A write under way.
pub struct Write {
    pub txn: DatabaseTransaction,
    pub actor: Actor,
    operation: &'static str,
    key: Option<String>,
    request_hash: String,
    audit: Vec<AuditEntry>,
    /// Regions whose reconciliation the write changes, recomputed in the transaction before it commits.
    touched: Option<(Arc<Reconciled>, MeasuresByRegion)>,
    /// Regions whose reconciled state the write makes stale without changing any status (needs, school plans):
    /// forgotten after the commit, rebuilt on next read.
    stale: Option<(Arc<Reconciled>, BTreeSet<String>)>,
    /// Events for webhook subscribers, queued at the commit with the status changes.
    events: Vec<OutboundEvent>,
    /// Inserts whose outcome nothing reads before the commit (a receipt, a revision), sent with the write's last
    /// statement on PostgreSQL (`defer_insert`).
    deferred: Vec<sea_orm::Statement>,
    /// The parameters of `deferred`, bounded so that the last statement stays well under PostgreSQL's limit.
    deferred_parameters: usize,
}

/// The most parameters the deferred inserts of a write may carry; beyond, they are sent at once.
const DEFERRED_PARAMETERS: usize = 2_000;

/// Either the answer already given to this idempotency key, or a fresh write to perform.
#[expect(clippy::large_enum_variant, reason = "short-lived, matched at once; boxing buys nothing")]
pub enum Begun<T> {
    Replayed(T),
    Fresh(Write),
}

pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

async fn replay<T: DeserializeOwned>(
    db: &DatabaseConnection,
    actor: &Actor,
    key: &str,
    operation: &str,
    request_hash: &str,
) -> Result<Option<T>, ApiError> {
    let record = idempotency_record::Entity::find()
        .filter(idempotency_record::Column::InstitutionCode.eq(actor.institution_code.clone()))
        .filter(idempotency_record::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?;
    match record {
        None => Ok(None),
        Some(record) if record.operation == operation && record.request_hash == request_hash => {
            let value = serde_json::from_str(&record.response)
                .map_err(|e| ApiError::Internal(format!("stored idempotent answer unreadable: {e}").into()))?;
            Ok(Some(value))
        }
        Some(record) => Err(ApiError::IdempotencyConflict(format!(
            "la clé d'idempotence « {key} » a déjà servi le {} pour une autre saisie ({}) : rien n'a été écrit",
            record.created_at.format("%d/%m/%Y à %H:%M"),
            record.operation
        ))),
    }
}

/// Begins a write transaction. SQLite takes its write lock at once (BEGIN IMMEDIATE) so that concurrent writers
/// queue instead of failing.
pub async fn begin_transaction(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    crate::db::counted_begin(db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    }))
    .await
}

impl Write {
    /// Begins a write without idempotency key (a settings change: a subscription, a source): never a replay.
    pub async fn begin_unkeyed<R: Serialize>(
        db: &DatabaseConnection,
        actor: Actor,
        operation: &'static str,
        request: &R,
    ) -> Result<Write, ApiError> {
        match Write::begin::<R, serde_json::Value>(db, actor, operation, None, request).await? {
            Begun::Fresh(write) => Ok(write),
            Begun::Replayed(_) => Err(ApiError::Internal("a write without idempotency key was replayed".into())),
        }
    }

    pub async fn begin<R: Serialize, T: DeserializeOwned>(
        db: &DatabaseConnection,
        actor: Actor,
        operation: &'static str,
        idempotency_key: Option<String>,
        request: &R,
    ) -> Result<Begun<T>, ApiError> {
        let request_hash =
            sha256_hex(format!("{operation}\n{}", serde_json::to_string(request).unwrap_or_default()).as_bytes());
        let key = match idempotency_key.map(|k| k.trim().to_owned()) {
            Some(k) if k.is_empty() || k.len() > MAX_KEY_LENGTH => {
                return Err(ApiError::BadUserInput(format!(
                    "clé d'idempotence vide ou trop longue ({MAX_KEY_LENGTH} caractères au plus)"
                )));
            }
            other => other,
        };
        // The key is claimed first thing in the transaction, without a read before: a fresh write (the usual case)
        // costs no round trip for its key, and a repeated key is found by the claim itself.
        let txn = begin_transaction(db).await?;
        if let Some(key) = &key {
            let claim = idempotency_record::ActiveModel {
                institution_code: Set(actor.institution_code.clone()),
                idempotency_key: Set(key.clone()),
                operation: Set(operation.to_owned()),
                request_hash: Set(request_hash.clone()),
                response: Set(String::new()),
                created_at: Set(audit::now_micros()),
            };
            let claimed = idempotency_record::Entity::insert(claim)
                .on_conflict(
                    OnConflict::columns([
                        idempotency_record::Column::InstitutionCode,
                        idempotency_record::Column::IdempotencyKey,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await;
            match claimed {
                Ok(1) => {}
                Ok(_) => {
                    // The key was used by a request that committed (one in flight was waited for): answer as it did.
                    txn.rollback().await.ok();
                    return match replay(db, &actor, key, operation, &request_hash).await? {
                        Some(answer) => Ok(Begun::Replayed(answer)),
                        None => Err(ApiError::Internal("idempotency record vanished".into())),
                    };
                }
                Err(err) => {
                    txn.rollback().await.ok();
                    return Err(err.into());
                }
            }
        }
        Ok(Begun::Fresh(Write {
            txn,
            actor,
            operation,
            key,
            request_hash,
            audit: Vec::new(),
            touched: None,
            stale: None,
            events: Vec::new(),
            deferred: Vec::new(),
            deferred_parameters: 0,
        }))
    }

    /// An insert nothing in the write reads back before it commits (a receipt, a revision): on PostgreSQL it goes
    /// with the write's last statement, one round trip fewer (a violated constraint then fails the write there, and
    /// nothing is stored); elsewhere, or past a bound, it is sent now.
    pub async fn defer_insert<A: sea_orm::ActiveModelTrait>(
        &mut self,
        insert: sea_orm::Insert<A>,
    ) -> Result<(), ApiError> {
        if self.txn.get_database_backend() == DatabaseBackend::Postgres {
            let statement = insert.build(DatabaseBackend::Postgres);
            let parameters = statement.values.as_ref().map_or(0, |v| v.0.len());
            if self.deferred_parameters + parameters <= DEFERRED_PARAMETERS {
                self.deferred_parameters += parameters;
                self.deferred.push(statement);
                return Ok(());
            }
            // In order: what was deferred first, then this.
            for earlier in std::mem::take(&mut self.deferred) {
                self.txn.execute_raw(earlier).await?;
            }
            self.deferred_parameters = 0;
            self.txn.execute_raw(statement).await?;
            return Ok(());
        }
        insert.exec_without_returning(&self.txn).await?;
        Ok(())
    }

    pub fn operation(&self) -> &'static str {
        self.operation
    }

    pub fn request_hash(&self) -> &str {
        &self.request_hash
    }

    /// Records what was written, to be appended to the audit chain at commit.
    pub fn audit(&mut self, object_ids: Vec<String>, content_hash: String) {
        self.audit.push(AuditEntry { operation: self.operation.to_owned(), object_ids, content_hash });
    }

    /// Marks a measure (of a region) as changed by this write: the region's reconciliation is recomputed in the
    /// transaction, at commit.
    pub fn touches_measure(&mut self, reconciled: &Arc<Reconciled>, region: &str, measure_id: &str) {
        let touched = self.touched.get_or_insert_with(|| (reconciled.clone(), BTreeMap::new()));
        touched.1.entry(region.to_owned()).or_default().insert(measure_id.to_owned());
    }

    /// Marks a region's reconciled state as stale once this write commits (no status changes).
    /// Queues an event for the webhook subscribers it concerns, in the write's transaction, at its commit.
    pub fn announce(&mut self, event: OutboundEvent) {
        self.events.push(event);
    }

    pub fn stales_region(&mut self, reconciled: &Arc<Reconciled>, region: &str) {
        self.stale.get_or_insert_with(|| (reconciled.clone(), BTreeSet::new())).1.insert(region.to_owned());
    }

    /// Recomputes the touched regions, appends the audit records, stores the answer under the idempotency key,
    /// commits, then installs the new reconciled state and tells the subscribers.
    pub async fn commit<T: Serialize>(mut self, answer: &T) -> Result<(), ApiError> {
        // What needs no lock first: the idempotent answer and the webhook subscriptions. The region's lock (taken by
        // the recomputation) and the audit head's are held until the commit, so only what needs them runs after.
        // On PostgreSQL the answer is stored by the write's last statement (with its audit record): one round trip
        // fewer. It touches only the key's row, which this transaction inserted.
        let postgres = self.txn.get_database_backend() == DatabaseBackend::Postgres;
        let mut stored_answer = None;
        let mut deferred = std::mem::take(&mut self.deferred);
        if let Some(key) = &self.key {
            let response = serde_json::to_string(answer)
                .map_err(|e| ApiError::Internal(format!("answer not serialisable: {e}").into()))?;
            let update = idempotency_record::Entity::update_many()
                .col_expr(idempotency_record::Column::Response, sea_orm::sea_query::Expr::value(response))
                .filter(idempotency_record::Column::InstitutionCode.eq(self.actor.institution_code.clone()))
                .filter(idempotency_record::Column::IdempotencyKey.eq(key.clone()));
            if postgres {
                stored_answer = Some(update.build(DatabaseBackend::Postgres));
            } else {
                update.exec(&self.txn).await?;
            }
        }
        // A write that takes a region's lock commits without waiting for the disk and waits after, outside the
        // locks (`db::durability`), where the hub has a barrier (PostgreSQL).
        let barrier = (self.touched.as_ref().map(|(r, _)| r).or(self.stale.as_ref().map(|(r, _)| r)))
            .and_then(|reconciled| reconciled.durability_barrier().cloned());
        let asynchronous = barrier.is_some();
        let announces = self.touched.is_some() || !self.events.is_empty();
        let subscriptions = if announces { outbox::active_subscriptions(&self.txn).await? } else { Vec::new() };
        let mut recomputed = Vec::new();
        // One region touched, one audit record: the write may reconcile before the region's lock, and send its bump,
        // statuses, change log and audit record in one statement (`reconciled::speculation`).
        let mut audited = false;
        if let (Some((reconciled, regions)), None, [entry]) = (&self.touched, &self.stale, self.audit.as_slice())
            && let Some((region, measures)) = regions.first_key_value()
            && regions.len() == 1
            && let Some(speculated) = reconciled.speculate(&self.txn, region, measures).await?
        {
            let statements = reconciled.speculative_statements(&speculated, asynchronous);
            let first = deferred.drain(..).chain(stored_answer.take()).collect();
            let returning = "(SELECT generation FROM signal_) AS generation";
            let row =
                audit::append_one_gated(&self.txn, first, statements, "bumped_", returning, &self.actor, entry).await?;
            match row {
                Some(row) => {
                    let generation: i64 = row.try_get("", "generation")?;
                    if generation != speculated.generation() {
                        return Err(ApiError::Internal("a speculative write got another generation".into()));
                    }
                    crate::observe::METRICS.speculative_writes.with_label_values(&["landed"]).inc();
                    recomputed.push(speculated.landed());
                    audited = true;
                }
                // The region's row changed since the state was computed (the region's lock is held now): the
                // ordinary path recomputes under it.
                None => {
                    drop(speculated);
                    crate::observe::METRICS.speculative_writes.with_label_values(&["missed"]).inc();
                    recomputed.push(reconciled.recompute_for_write(&self.txn, region, measures, asynchronous).await?);
                }
            }
        } else if let Some((reconciled, regions)) = &self.touched {
            for (region, measures) in regions {
                recomputed.push(reconciled.recompute_for_write(&self.txn, region, measures, asynchronous).await?);
            }
        }
        if let Some((reconciled, regions)) = &self.stale {
            for region in regions {
                reconciled.notify_stale_in(&self.txn, region, asynchronous).await?;
            }
        }
        let mut events = self.events;
        events.extend(recomputed.iter().flat_map(|r| r.changes()).map(status_change_event));
        outbox::enqueue_to(&self.txn, &subscriptions, &events).await?;
        if !audited {
            // The statuses' statements go with the audit head's, in one round trip under the locks.
            let statuses = (deferred.into_iter().chain(stored_answer))
                .chain(recomputed.iter_mut().flat_map(Recomputed::take_deferred));
            audit::append_after(&self.txn, statuses.collect(), &self.actor, &self.audit).await?;
        }
        self.txn.commit().await?;
        for state in &mut recomputed {
            state.committed();
            crate::observe::METRICS.region_lock_held.observe(state.locked_at().elapsed().as_secs_f64());
        }
        if let Some(barrier) = &barrier {
            if let Some((reconciled, _)) = &self.touched {
                for state in &mut recomputed {
                    reconciled.hand_over(state);
                }
            }
            let timer = crate::observe::METRICS.durability_wait.start_timer();
            let durable = barrier.wait_durable().await;
            timer.observe_duration();
            if let Err(err) = durable {
                // Committed, but not known to be on disk: the store failed. The regions' states in memory may be
                // ahead of what the store keeps once back: they are rebuilt from it. The client is told to retry
                // (with its idempotency key, a retry answers as the first did if the write was kept).
                tracing::error!(error = %err, "a committed write could not be confirmed durable");
                let touched = self.touched.iter().flat_map(|(r, regions)| regions.keys().map(move |k| (r, k)));
                let stale = self.stale.iter().flat_map(|(r, regions)| regions.iter().map(move |k| (r, k)));
                for (reconciled, region) in touched.chain(stale) {
                    reconciled.forget(region);
                }
                return Err(ApiError::Unavailable(err));
            }
        }
        outbox::wake_dispatcher_if_queued();
        if let Some((reconciled, _)) = &self.touched {
            for state in recomputed {
                reconciled.install(state);
            }
        }
        if let Some((reconciled, regions)) = &self.stale {
            for region in regions {
                reconciled.forget(region);
            }
        }
        Ok(())
    }
}

/// The webhook event of a measure's co-financing status change.
fn status_change_event(change: &StatusChange) -> OutboundEvent {
    OutboundEvent {
        kind: EventKind::CofinancingStatusChanged,
        key: format!("cofinancing:{}:{}", change.measure_id, change.generation),
        region: Some(change.region.clone()),
        departement: Some(change.departement.clone()),
        institution: None,
        occurred_at: change.at,
        data: serde_json::json!({
            "measureId": change.measure_id,
            "previousStatus": change.previous.map(|s| s.as_str()),
            "status": change.status.map(|s| s.as_str()),
            "findingCodes": change.finding_codes,
            "generation": change.generation,
        }),
    }
}
