//! Live reconciliation: the reconciled state of each region, kept in memory for readers, recomputed by every write
//! in its own transaction, and pushed to subscribers.
//!
//! Why in memory: a dashboard asks for the same region many times a second; reloading and reconciling it from the
//! database each time costs milliseconds, while serving it from memory costs microseconds (BENCHMARKS.md).
//!
//! How it stays right: a write that touches a region bumps the region's generation (an upsert that also serialises
//! the region's writers on PostgreSQL), reloads the region inside its transaction, reconciles it, stores the statuses
//! that changed and logs the changes, then commits. After the commit this instance installs the new state and tells
//! its subscribers. Other instances learn of it through PostgreSQL's LISTEN/NOTIFY (the notification is sent at
//! commit): they reload the region and tell their own subscribers the logged changes. A region's state is also
//! rebuilt when the Paris day changes (campaign deadlines pass at midnight).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use entities::{co_financing_event, measure_co_financing, reconciliation_region};
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};
use tokio::sync::broadcast;

use super::snapshot::{self as service, RegionData};
use crate::error::ApiError;
use crate::reconciled::engine::{self, CoFinancingStatus, Report, Snapshot, Territory};
use crate::records::MeasureRecord;
use crate::territory::annex::AnnexFigures;
use crate::territory::service::Catalog;

/// The PostgreSQL channel the instances notify each other on.
pub const CHANNEL: &str = "cnh_co_financing";

/// The generation notified for a write that only makes a region's state stale.
const STALE: i64 = -1;

/// One region, reconciled.
pub struct RegionState {
    pub region: String,
    pub generation: i64,
    /// The Paris day the state was reconciled for.
    pub day: NaiveDate,
    pub snapshot: Snapshot,
    pub report: Report,
    pub measures: HashMap<String, MeasureRecord>,
    /// measure id → index in `report.statuses`.
    pub status_index: HashMap<String, usize>,
}

impl RegionState {
    fn build(region: &str, generation: i64, day: NaiveDate, data: RegionData) -> RegionState {
        let report = engine::reconcile(&data.snapshot);
        let status_index = report.statuses.iter().enumerate().map(|(i, s)| (s.measure_id.clone(), i)).collect();
        RegionState {
            region: region.to_owned(),
            generation,
            day,
            snapshot: data.snapshot,
            report,
            measures: data.measures,
            status_index,
        }
    }
}

/// A measure's status changed (or the measure appeared or left a region).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    pub region: String,
    pub departement: String,
    pub measure_id: String,
    pub previous: Option<CoFinancingStatus>,
    pub status: Option<CoFinancingStatus>,
    pub finding_codes: Vec<String>,
    pub generation: i64,
    pub at: DateTime<Utc>,
}

/// What a write's recomputation produced, to install once the transaction has committed.
pub struct Recomputed {
    state: RegionState,
    changes: Vec<StatusChange>,
}

pub struct Reconciled {
    db: DatabaseConnection,
    catalog: Arc<Catalog>,
    territory: Arc<Territory>,
    regions: RwLock<HashMap<String, Arc<RegionState>>>,
    loading: tokio::sync::Mutex<()>,
    events: broadcast::Sender<Arc<StatusChange>>,
    instance: String,
    /// Bumped whenever any region's state changes: answers computed from the state are valid while it stands.
    epoch: AtomicU64,
    /// The annex as stored: reference data, read once like the catalog.
    annex: tokio::sync::OnceCell<AnnexFigures>,
}

fn paris_day(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&crate::calendar::paris_offset_at_end_of(now.date_naive())).date_naive()
}

fn codes(report: &Report, index: usize) -> Vec<String> {
    report.statuses[index].findings.iter().map(|i| report.findings[*i].code.to_owned()).collect()
}

impl Reconciled {
    pub fn new(db: DatabaseConnection, catalog: Arc<Catalog>) -> Arc<Reconciled> {
        let (events, _) = broadcast::channel(4096);
        Arc::new(Reconciled {
            db,
            territory: Arc::new(service::territory(&catalog)),
            catalog,
            regions: RwLock::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            events,
            instance: uuid::Uuid::new_v4().to_string(),
            epoch: AtomicU64::new(0),
            annex: tokio::sync::OnceCell::new(),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The annex's stored figures, for the national checks.
    pub async fn annex(&self) -> Result<&AnnexFigures, ApiError> {
        self.annex.get_or_try_init(|| crate::territory::service::annex_figures(&self.db, &self.catalog)).await
    }

    /// The state's epoch: it changes whenever any region is recomputed, forgotten or reloaded.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StatusChange>> {
        self.events.subscribe()
    }

    fn cached(&self, region: &str, day: NaiveDate) -> Option<Arc<RegionState>> {
        let regions = self.regions.read().unwrap_or_else(|e| e.into_inner());
        regions.get(region).filter(|s| s.day == day).cloned()
    }

    /// A region's reconciled state, from memory, or loaded and reconciled on first use.
    pub async fn region(&self, region: &str) -> Result<Arc<RegionState>, ApiError> {
        let now = Utc::now();
        let day = paris_day(now);
        if let Some(state) = self.cached(region, day) {
            return Ok(state);
        }
        let _guard = self.loading.lock().await;
        if let Some(state) = self.cached(region, day) {
            return Ok(state);
        }
        // One read transaction: the generation and the data it numbers are read together.
        let txn = self.db.begin().await?;
        let generation =
            reconciliation_region::Entity::find_by_id(region.to_owned()).one(&txn).await?.map_or(0, |r| r.generation);
        let data = service::load_region(&txn, &self.catalog, self.territory.clone(), region, now).await?;
        txn.commit().await?;
        let state = Arc::new(RegionState::build(region, generation, day, data));
        self.store(state.clone());
        Ok(state)
    }

    /// Every region's state (for national readers).
    pub async fn all_regions(&self) -> Result<Vec<Arc<RegionState>>, ApiError> {
        let mut states = Vec::with_capacity(self.catalog.regions.len());
        for r in &self.catalog.regions {
            states.push(self.region(&r.code).await?);
        }
        Ok(states)
    }

    fn store(&self, state: Arc<RegionState>) {
        let mut regions = self.regions.write().unwrap_or_else(|e| e.into_inner());
        match regions.get(&state.region) {
            Some(current) if current.generation > state.generation => {}
            _ => {
                regions.insert(state.region.clone(), state);
            }
        }
        drop(regions);
        self.bump();
    }

    /// Forgets every region (a campaign was declared, or notifications may have been missed).
    pub fn invalidate_all(&self) {
        self.regions.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.bump();
    }

    /// Forgets a region's state: it is rebuilt on next read.
    pub fn forget(&self, region: &str) {
        self.regions.write().unwrap_or_else(|e| e.into_inner()).remove(region);
        self.bump();
    }

    /// Marks, in the transaction, a region's state as stale (a write changed its needs, school plans or campaigns):
    /// its generation moves on, so no instance patches an older state, and the other instances are told.
    pub async fn notify_stale_in<C: ConnectionTrait>(&self, txn: &C, region: &str) -> Result<(), ApiError> {
        self.bump_generation(txn, region).await?;
        self.notify_in(txn, region, STALE).await
    }

    async fn notify_in<C: ConnectionTrait>(&self, txn: &C, region: &str, generation: i64) -> Result<(), ApiError> {
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            // Delivered to the listeners when (and only if) the transaction commits.
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), format!("{region}:{generation}:{}", self.instance).into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// Moves a region's generation on by one, in the transaction; on PostgreSQL the row lock it takes serialises the
    /// region's writers until commit.
    async fn bump_generation<C: ConnectionTrait>(&self, txn: &C, region: &str) -> Result<i64, ApiError> {
        reconciliation_region::Entity::insert(reconciliation_region::ActiveModel {
            region_code: Set(region.to_owned()),
            generation: Set(1),
            reconciled_at: Set(Utc::now().fixed_offset()),
        })
        .on_conflict(
            OnConflict::column(reconciliation_region::Column::RegionCode)
                .value(
                    reconciliation_region::Column::Generation,
                    sea_orm::sea_query::Expr::col((
                        reconciliation_region::Entity,
                        reconciliation_region::Column::Generation,
                    ))
                    .add(1),
                )
                .update_column(reconciliation_region::Column::ReconciledAt)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(reconciliation_region::Entity::find_by_id(region.to_owned()).one(txn).await?.map_or(1, |r| r.generation))
    }

    /// Recomputes a region inside a write's transaction: the new statuses are stored and the changes logged in that
    /// same transaction, so they commit or roll back with the write.
    ///
    /// When this instance holds the region's state as of the generation just before this write (the usual case),
    /// only the measures the write touched are read back and patched into it; otherwise the region is reloaded.
    pub async fn recompute_in<C: ConnectionTrait>(
        &self,
        txn: &C,
        region: &str,
        touched: &BTreeSet<String>,
    ) -> Result<Recomputed, ApiError> {
        let now = Utc::now();
        let at = now.fixed_offset();
        let generation = self.bump_generation(txn, region).await?;
        let day = paris_day(now);
        let current = {
            let regions = self.regions.read().unwrap_or_else(|e| e.into_inner());
            regions.get(region).filter(|s| s.generation == generation - 1 && s.day == day).cloned()
        };
        // measure id → (status, finding codes, département) as it stood before this write.
        let mut before: HashMap<String, (String, String, String)> = HashMap::new();
        let data = match current {
            Some(state) => {
                for (i, s) in state.report.statuses.iter().enumerate() {
                    let departement = state.measures.get(&s.measure_id).map(|m| m.departement_code.clone());
                    before.insert(
                        s.measure_id.clone(),
                        (
                            s.status.as_str().to_owned(),
                            codes(&state.report, i).join(","),
                            departement.unwrap_or_default(),
                        ),
                    );
                }
                let mut snapshot = state.snapshot.clone();
                let mut measures = state.measures.clone();
                snapshot.now = now;
                snapshot.measures.retain(|m| !touched.contains(&m.id));
                snapshot.commitments.retain(|c| !touched.contains(&c.measure_id));
                let (facts, records, commitments) = service::load_measures(txn, touched).await?;
                for id in touched {
                    measures.remove(id);
                }
                for record in records.into_iter().filter(|r| r.region_code == region) {
                    measures.insert(record.id.clone(), record);
                }
                snapshot.measures.extend(facts.into_iter().filter(|m| m.region == region));
                snapshot.measures.sort_by(|a, b| a.id.cmp(&b.id));
                snapshot.commitments.extend(commitments.into_iter().filter(|c| measures.contains_key(&c.measure_id)));
                snapshot.commitments.sort_by(|a, b| a.id.cmp(&b.id));
                RegionData { snapshot, measures }
            }
            None => {
                for row in measure_co_financing::Entity::find()
                    .filter(measure_co_financing::Column::RegionCode.eq(region))
                    .all(txn)
                    .await?
                {
                    before.insert(row.measure_id, (row.status, row.finding_codes, row.departement_code));
                }
                service::load_region(txn, &self.catalog, self.territory.clone(), region, now).await?
            }
        };
        let state = RegionState::build(region, generation, day, data);
        let mut changes = Vec::new();
        for (i, status) in state.report.statuses.iter().enumerate() {
            let finding_codes = codes(&state.report, i);
            let joined = finding_codes.join(",");
            let previous = before.get(&status.measure_id);
            if previous.is_some_and(|(s, c, _)| *s == status.status.as_str() && *c == joined) {
                continue;
            }
            let departement = state.measures.get(&status.measure_id).map(|m| m.departement_code.clone());
            let departement = departement.unwrap_or_default();
            measure_co_financing::Entity::insert(measure_co_financing::ActiveModel {
                measure_id: Set(status.measure_id.clone()),
                region_code: Set(region.to_owned()),
                departement_code: Set(departement.clone()),
                status: Set(status.status.as_str().to_owned()),
                finding_codes: Set(joined),
                generation: Set(generation),
                updated_at: Set(at),
            })
            .on_conflict(
                OnConflict::column(measure_co_financing::Column::MeasureId)
                    .update_columns([
                        measure_co_financing::Column::RegionCode,
                        measure_co_financing::Column::DepartementCode,
                        measure_co_financing::Column::Status,
                        measure_co_financing::Column::FindingCodes,
                        measure_co_financing::Column::Generation,
                        measure_co_financing::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            changes.push(StatusChange {
                region: region.to_owned(),
                departement,
                measure_id: status.measure_id.clone(),
                previous: previous.and_then(|(s, _, _)| CoFinancingStatus::from_stored(s)),
                status: Some(status.status),
                finding_codes,
                generation,
                at: now,
            });
        }
        let present: BTreeSet<&str> = state.report.statuses.iter().map(|s| s.measure_id.as_str()).collect();
        for (id, (status, _, departement)) in &before {
            if present.contains(id.as_str()) {
                continue;
            }
            // The measure left the region.
            measure_co_financing::Entity::delete_many()
                .filter(measure_co_financing::Column::MeasureId.eq(id.clone()))
                .filter(measure_co_financing::Column::RegionCode.eq(region))
                .exec(txn)
                .await?;
            changes.push(StatusChange {
                region: region.to_owned(),
                departement: departement.clone(),
                measure_id: id.clone(),
                previous: CoFinancingStatus::from_stored(status),
                status: None,
                finding_codes: Vec::new(),
                generation,
                at: now,
            });
        }
        // In chunks: a first reconciliation of a large region logs thousands of changes, and both SQLite and
        // PostgreSQL bound the parameters of one statement.
        for chunk in changes.chunks(500) {
            co_financing_event::Entity::insert_many(chunk.iter().map(|c| co_financing_event::ActiveModel {
                region_code: Set(c.region.clone()),
                generation: Set(c.generation),
                measure_id: Set(c.measure_id.clone()),
                departement_code: Set(c.departement.clone()),
                previous_status: Set(c.previous.map(|s| s.as_str().to_owned())),
                status: Set(c.status.map(|s| s.as_str().to_owned())),
                finding_codes: Set(c.finding_codes.join(",")),
                recorded_at: Set(at),
                ..Default::default()
            }))
            .exec_without_returning(txn)
            .await?;
        }
        self.notify_in(txn, region, generation).await?;
        Ok(Recomputed { state, changes })
    }

    /// After the commit: the new state replaces the old one and subscribers hear of the changes.
    pub fn install(&self, recomputed: Recomputed) {
        self.store(Arc::new(recomputed.state));
        for change in recomputed.changes {
            // No subscriber is not an error.
            let _ = self.events.send(Arc::new(change));
        }
    }

    /// Another instance committed a write on a region: reload it and tell the subscribers what changed.
    async fn on_notification(&self, payload: &str) -> Result<(), ApiError> {
        let mut parts = payload.splitn(3, ':');
        let (Some(region), Some(generation), Some(instance)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(());
        };
        if instance == self.instance {
            return Ok(());
        }
        let Ok(generation) = generation.parse::<i64>() else { return Ok(()) };
        self.forget(region);
        if generation == STALE {
            return Ok(());
        }
        self.region(region).await?;
        let rows = co_financing_event::Entity::find()
            .filter(co_financing_event::Column::RegionCode.eq(region))
            .filter(co_financing_event::Column::Generation.eq(generation))
            .all(&self.db)
            .await?;
        for row in rows {
            let _ = self.events.send(Arc::new(StatusChange {
                region: row.region_code,
                departement: row.departement_code,
                measure_id: row.measure_id,
                previous: row.previous_status.as_deref().and_then(CoFinancingStatus::from_stored),
                status: row.status.as_deref().and_then(CoFinancingStatus::from_stored),
                finding_codes: row.finding_codes.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
                generation: row.generation,
                at: row.recorded_at.with_timezone(&Utc),
            }));
        }
        Ok(())
    }

    /// With PostgreSQL, listens for the other instances' writes until the process ends. A lost connection may have
    /// dropped notifications: every cached region is then forgotten and reloaded on next use.
    pub fn spawn_listener(self: &Arc<Self>) {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let pool = this.db.get_postgres_connection_pool().clone();
            loop {
                let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(listener) => listener,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot listen for other instances' writes; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                        continue;
                    }
                };
                if let Err(err) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %err, "LISTEN failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    continue;
                }
                this.invalidate_all();
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            if let Err(err) = this.on_notification(notification.payload()).await {
                                tracing::warn!(error = %err, "reloading a region after a notification failed");
                                this.invalidate_all();
                            }
                        }
                        Ok(None) => this.invalidate_all(),
                        Err(err) => {
                            tracing::warn!(error = %err, "notification listener stopped; reconnecting");
                            break;
                        }
                    }
                }
            }
        });
    }
}
