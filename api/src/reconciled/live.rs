//! Live reconciliation: the reconciled state of each region, kept in memory for readers, recomputed by every write
//! in its own transaction, and pushed to subscribers.
//!
//! Why in memory: a dashboard asks for the same region many times a second; reloading and reconciling it from the
//! database each time costs milliseconds, while serving it from memory costs microseconds (BENCHMARKS.md).
//!
//! How it stays right: a write that touches a region bumps the region's generation (an upsert that also serialises
//! the region's writers on PostgreSQL), reads back the measures it touched inside its transaction, patches them into
//! the region's state (the engine reuses the other measures' outcomes and recomputes the region's sums), stores the
//! statuses that changed and logs the changes, then commits. After the commit this instance installs the new state and tells
//! its subscribers. Other instances learn of it through PostgreSQL's LISTEN/NOTIFY (the notification is sent at
//! commit): they reload the region and tell their own subscribers the logged changes. A region's state is also
//! rebuilt when the Paris day changes (campaign deadlines pass at midnight). On PostgreSQL a write usually does the
//! patching before it takes the region's lock, on the state its previous write computed, and stores it only if the
//! region's row is still that write's (`speculate`, `super::speculation`).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use entities::{co_financing_event, measure_co_financing, reconciliation_region};
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};
use tokio::sync::broadcast;

use super::snapshot::{self as service, LoadedMeasures, RegionData};
use super::speculation::{Chains, Ticket};
use crate::calendar::paris_day;
use crate::db::durability::Barrier;
use crate::error::ApiError;
use crate::reconciled::engine::{
    self, CoFinancingStatus, CommitmentFact, CoverageRows, DuplicateGroups, MeasureFact, MeasureOutcome, Previous,
    Reconciliation, RegionSums, Report, Snapshot, Territory,
};
use crate::records::{CommitmentRecord, MeasureRecord};
use crate::territory::annex::AnnexFigures;
use crate::territory::service::Catalog;

/// The PostgreSQL channel the instances notify each other on.
pub const CHANNEL: &str = "cnh_co_financing";

/// The generation notified for a write that only makes a region's state stale.
const STALE: i64 = -1;

/// One region, reconciled. Measures are held in the snapshot's order (by id), and `commitments`, `outcomes` and
/// `report.statuses` follow that order, so a measure is found by binary search on its id.
pub struct RegionState {
    pub region: String,
    pub generation: i64,
    /// When the write that moved the region to this generation did so (`reconciliation_region.reconciled_at`):
    /// with the generation, what a speculative write checks the region's row against (`Reconciled::speculate`).
    stamp: Option<DateTime<FixedOffset>>,
    /// The Paris day the state was reconciled for.
    pub day: NaiveDate,
    pub snapshot: Snapshot,
    pub report: Report,
    /// Each measure's outcome, kept for the next write's recomputation.
    outcomes: Vec<Arc<MeasureOutcome>>,
    /// The region's sums and its groups of possible duplicates with their findings, kept for the next write's
    /// recomputation.
    sums: RegionSums,
    duplicates: DuplicateGroups,
    coverage: CoverageRows,
    /// Each measure's commitments as the API shows them (withdrawn ones included), by id.
    /// Exact-size slices: a `Vec` grown one push at a time keeps room for four commitments where most measures have
    /// one (40 MB at scale 10).
    commitments: Vec<Arc<[CommitmentRecord]>>,
}

impl RegionState {
    fn build(
        region: &str,
        generation: i64,
        stamp: Option<DateTime<FixedOffset>>,
        day: NaiveDate,
        mut data: RegionData,
    ) -> RegionState {
        let Reconciliation { report, outcomes, sums, duplicates, coverage } =
            engine::reconcile_reusing(&data.snapshot, None, |_, _| None);
        let commitments =
            (data.snapshot.measures.iter()).map(|m| commitment_slice(data.commitments.remove(&m.id))).collect();
        RegionState {
            region: region.to_owned(),
            generation,
            stamp,
            day,
            snapshot: data.snapshot,
            report,
            outcomes,
            sums,
            duplicates,
            coverage,
            commitments,
        }
    }

    /// The position of a measure of this region.
    pub fn index_of(&self, measure_id: &str) -> Option<usize> {
        self.snapshot.measures.binary_search_by(|m| m.id.as_str().cmp(measure_id)).ok()
    }

    /// The measure at a position (that of its status in `report.statuses`).
    pub fn record(&self, index: usize) -> &MeasureRecord {
        &self.snapshot.measures[index]
    }

    /// A measure of this region, as the API shows it.
    pub fn measure(&self, measure_id: &str) -> Option<&MeasureRecord> {
        self.index_of(measure_id).map(|i| self.record(i))
    }

    /// A measure's commitments (withdrawn ones included), in id order.
    pub fn commitments_of(&self, measure_id: &str) -> Option<&[CommitmentRecord]> {
        self.index_of(measure_id).map(|i| &*self.commitments[i])
    }

    /// The commitments of the measure at a position (withdrawn ones included), in id order.
    pub fn commitments_at(&self, index: usize) -> &[CommitmentRecord] {
        &self.commitments[index]
    }

    /// The measures in id order.
    pub fn records(&self) -> impl Iterator<Item = &MeasureRecord> {
        self.snapshot.measures.iter().map(|r| r.as_ref())
    }

    /// A measure's status, finding codes and département as stored in `measure_co_financing`.
    fn standing(&self, index: usize) -> Standing {
        Standing {
            status: self.report.statuses[index].status.as_str().to_owned(),
            codes: codes(&self.report, index).join(","),
            departement: self.snapshot.measures[index].departement_code.clone(),
        }
    }

    /// This state with some measures replaced by what a write left of them (`loaded`, read in its transaction):
    /// the other measures keep their records and their outcomes, only the touched ones are reconciled again (with
    /// the region-wide sums).
    fn patched(&self, generation: i64, now: DateTime<Utc>, touched: &BTreeSet<String>, loaded: LoadedMeasures) -> Self {
        // The write's instant is also its stamp on the region's row (`stamp_now`).
        // Both lists are in id order already (the state's, and the few measures the write read back once sorted):
        // they are merged, not sorted again, as every write would otherwise sort its whole region.
        let mut loaded_commitments = loaded.commitments;
        let mut fresh: Vec<Arc<MeasureFact>> =
            loaded.measures.into_iter().filter(|fact| fact.region_code == self.region).collect();
        fresh.sort_by(|a, b| a.id.cmp(&b.id));
        let capacity = self.snapshot.measures.len() + fresh.len();
        let (mut measures, mut commitments, mut reuse) =
            (Vec::with_capacity(capacity), Vec::with_capacity(capacity), Vec::with_capacity(capacity));
        let mut fresh = fresh.into_iter().peekable();
        // One pass more than the state's measures: the fresh ones after its last go in at the end.
        let kept = self.snapshot.measures.iter().enumerate().map(Some).chain([None]);
        for entry in kept {
            while let Some(new) = fresh.next_if(|new| entry.is_none_or(|(_, fact)| new.id < fact.id)) {
                commitments.push(commitment_slice(loaded_commitments.remove(&new.id)));
                measures.push(new);
                reuse.push(None);
            }
            if let Some((i, fact)) = entry
                && !touched.contains(&fact.id)
            {
                measures.push(fact.clone());
                commitments.push(self.commitments[i].clone());
                reuse.push(Some(self.outcomes[i].clone()));
            }
        }
        let mut loaded_facts: Vec<Arc<CommitmentFact>> = (loaded.commitment_facts.into_iter())
            .filter(|c| measures.binary_search_by(|m: &Arc<MeasureFact>| m.id.cmp(&c.measure_id)).is_ok())
            .collect();
        loaded_facts.sort_by(|a, b| a.id.cmp(&b.id));
        let mut loaded_facts = loaded_facts.into_iter().peekable();
        let mut commitment_facts = Vec::with_capacity(self.snapshot.commitments.len() + loaded_facts.len());
        for fact in self.snapshot.commitments.iter().filter(|c| !touched.contains(&c.measure_id)) {
            commitment_facts.extend(std::iter::from_fn(|| loaded_facts.next_if(|new| new.id < fact.id)));
            commitment_facts.push(fact.clone());
        }
        commitment_facts.extend(loaded_facts);
        let snapshot = Snapshot {
            measures,
            commitments: commitment_facts,
            rules: self.snapshot.rules.clone(),
            legacy_categories: self.snapshot.legacy_categories.clone(),
            envelopes: self.snapshot.envelopes.clone(),
            school_plans: self.snapshot.school_plans.clone(),
            territory: self.snapshot.territory.clone(),
            needs: self.snapshot.needs.clone(),
            campaigns: self.snapshot.campaigns.clone(),
            now,
            targets: self.snapshot.targets,
            annex: None,
            steering: self.snapshot.steering.clone(),
        };
        // The touched measures as they were leave the sums; as they are now, they come back in.
        let replaced = (touched.iter())
            .filter_map(|id| self.index_of(id))
            .map(|i| (&*self.snapshot.measures[i], &*self.outcomes[i]))
            .collect();
        let previous = Previous { sums: &self.sums, duplicates: &self.duplicates, coverage: &self.coverage, replaced };
        let Reconciliation { report, outcomes, sums, duplicates, coverage } =
            engine::reconcile_reusing(&snapshot, Some(previous), |i, _| reuse[i].clone());
        RegionState {
            region: self.region.clone(),
            generation,
            stamp: Some(now.fixed_offset()),
            day: paris_day(now),
            snapshot,
            report,
            outcomes,
            sums,
            duplicates,
            coverage,
            commitments,
        }
    }
}

/// A measure's commitments as the state keeps them: in an allocation of their exact size.
fn commitment_slice(commitments: Option<Vec<CommitmentRecord>>) -> Arc<[CommitmentRecord]> {
    Arc::from(commitments.unwrap_or_default())
}

/// A measure's standing as `measure_co_financing` stores it.
#[derive(PartialEq, Eq)]
struct Standing {
    status: String,
    codes: String,
    departement: String,
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
    state: Arc<RegionState>,
    changes: Vec<StatusChange>,
    /// Statements storing the statuses, left for the write to send (`Reconciled::recompute_for_write`).
    deferred: Vec<Statement>,
    /// When the region's lock was taken (the generation's bump returned).
    locked_at: std::time::Instant,
    /// Whether the state was handed over before being installed (`Reconciled::hand_over`).
    handed_over: bool,
    /// A speculative write's place in its region's chain (`Reconciled::speculate`).
    ticket: Option<Ticket<Arc<RegionState>>>,
}

impl Recomputed {
    /// The statements storing the changed statuses that the recomputation left to send, in order.
    pub fn take_deferred(&mut self) -> Vec<Statement> {
        std::mem::take(&mut self.deferred)
    }

    /// The status changes this recomputation logged.
    pub fn changes(&self) -> &[StatusChange] {
        &self.changes
    }

    /// When the region's lock was taken, for the write to measure how long it held it.
    pub fn locked_at(&self) -> std::time::Instant {
        self.locked_at
    }

    /// The write's transaction committed: the writes of the region that built on this state may commit too.
    pub fn committed(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            ticket.committed();
        }
    }
}

/// A write's region reconciled before the region's lock (`Reconciled::speculate`): the statements that store it
/// if the guesses hold (`Reconciled::speculative_statements`), and the state to install then (`landed`).
pub struct Speculated {
    recomputed: Recomputed,
    rows: Vec<StatusRow>,
    /// The generation and stamp of the state it was computed on: the region's row must still hold them.
    base: (i64, Option<DateTime<FixedOffset>>),
    /// The advisory-lock key of the write that computed that state, to wait for (None: a committed state).
    predecessor: Option<i32>,
    at: DateTime<FixedOffset>,
}

impl Speculated {
    /// The statements stored it: the state is the write's to install.
    pub fn landed(mut self) -> Recomputed {
        self.recomputed.locked_at = std::time::Instant::now();
        self.recomputed
    }

    /// The generation the write gets if its guesses hold.
    pub fn generation(&self) -> i64 {
        self.base.0 + 1
    }
}

/// A measure's standing to store in `measure_co_financing`.
struct StatusRow {
    measure_id: String,
    departement: String,
    status: &'static str,
    codes: String,
}

/// What a recomputation found changed: the statuses to store, the changes to log (measures that left the region
/// included), and the measures that left the region.
struct Judged {
    rows: Vec<StatusRow>,
    changes: Vec<StatusChange>,
    left: Vec<String>,
}

/// The standings of `candidates` (every measure when None) in `state` that differ from `before`, and the measures
/// of `before` no longer in the region.
fn judge(
    state: &RegionState,
    mut before: HashMap<String, Standing>,
    candidates: Option<&BTreeSet<String>>,
    now: DateTime<Utc>,
) -> Judged {
    let (region, generation) = (&state.region, state.generation);
    let after: Vec<usize> = match candidates {
        Some(ids) => ids.iter().filter_map(|id| state.index_of(id)).collect(),
        None => (0..state.report.statuses.len()).collect(),
    };
    let mut judged = Judged { rows: Vec::new(), changes: Vec::new(), left: Vec::new() };
    for i in after {
        let status = &state.report.statuses[i];
        let now_standing = state.standing(i);
        let previous = before.remove(&status.measure_id);
        if previous.as_ref() == Some(&now_standing) {
            continue;
        }
        let Standing { codes: joined, departement, .. } = now_standing;
        judged.rows.push(StatusRow {
            measure_id: status.measure_id.clone(),
            departement: departement.clone(),
            status: status.status.as_str(),
            codes: joined,
        });
        judged.changes.push(StatusChange {
            region: region.clone(),
            departement,
            measure_id: status.measure_id.clone(),
            previous: previous.and_then(|p| CoFinancingStatus::from_stored(&p.status)),
            status: Some(status.status),
            finding_codes: codes(&state.report, i),
            generation,
            at: now,
        });
    }
    // What is left of `before` is no longer in the region.
    for (id, Standing { status, departement, .. }) in before {
        if state.index_of(&id).is_some() {
            continue;
        }
        judged.changes.push(StatusChange {
            region: region.clone(),
            departement,
            measure_id: id.clone(),
            previous: CoFinancingStatus::from_stored(&status),
            status: None,
            finding_codes: Vec::new(),
            generation,
            at: now,
        });
        judged.left.push(id);
    }
    judged
}

/// The instant of a write, to the microsecond PostgreSQL keeps, strictly after the last one this process gave: it
/// stamps the region's row with the generation, and tells one write of the region from another
/// (`Reconciled::speculate`).
fn stamp_now() -> DateTime<Utc> {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = Utc::now().timestamp_micros();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = std::cmp::Ord::max(now, last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return DateTime::from_timestamp_micros(next).unwrap_or_default(),
            Err(seen) => last = seen,
        }
    }
}

/// The advisory locks of speculative writes (PostgreSQL): this class, and a key per write (`Reconciled::next_key`),
/// held until the write ends, for the write that builds on it to wait for.
const SPECULATION_LOCK_CLASS: i32 = 0x434E_4853;

/// Rows of `N` values as a `VALUES` list (`($1, $2), ($3, $4)`) and its parameters, in order.
fn values_list<const N: usize>(rows: impl Iterator<Item = [sea_orm::Value; N]>) -> (String, Vec<sea_orm::Value>) {
    let (mut tuples, mut values) = (Vec::new(), Vec::new());
    for row in rows {
        let first = values.len() + 1;
        let placeholders: Vec<String> = (first..first + N).map(|n| format!("${n}")).collect();
        tuples.push(format!("({})", placeholders.join(", ")));
        values.extend(row);
    }
    (tuples.join(", "), values)
}

/// The most measures a write may touch and still speculate (the statements' parameters stay bounded).
const SPECULATION_MAX_MEASURES: usize = 100;

/// Stores the changed statuses and logs the changes. On PostgreSQL, when they fit in one statement each, both go in
/// one round trip (the region's lock is held until commit); otherwise in chunks: a first reconciliation of a large
/// region logs thousands of changes, and both SQLite and PostgreSQL bound the parameters of one statement.
///
/// With `defer`, the PostgreSQL statements are returned instead of sent, for the write to chain them with its next
/// statement (the audit head's): one round trip fewer under the region's lock.
async fn store_changes<C: ConnectionTrait>(
    txn: &C,
    state: &RegionState,
    rows: Vec<StatusRow>,
    changes: &[StatusChange],
    at: DateTime<chrono::FixedOffset>,
    defer: bool,
) -> Result<Vec<Statement>, ApiError> {
    let statuses: Vec<measure_co_financing::ActiveModel> = (rows.into_iter())
        .map(|row| measure_co_financing::ActiveModel {
            measure_id: Set(row.measure_id),
            region_code: Set(state.region.clone()),
            departement_code: Set(row.departement),
            status: Set(row.status.to_owned()),
            finding_codes: Set(row.codes),
            generation: Set(state.generation),
            updated_at: Set(at),
        })
        .collect();
    let upsert = |rows: Vec<measure_co_financing::ActiveModel>| {
        measure_co_financing::Entity::insert_many(rows).on_conflict(
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
    };
    let log = |chunk: &[StatusChange]| {
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
    };
    const CHUNK: usize = 500;
    let backend = txn.get_database_backend();
    if backend == DatabaseBackend::Postgres && !statuses.is_empty() && statuses.len() <= CHUNK && changes.len() <= CHUNK
    {
        use sea_orm::QueryTrait;
        let (upsert, log) = (upsert(statuses).build(backend), log(changes).build(backend));
        if defer {
            return Ok(vec![upsert, log]);
        }
        txn.execute_raw(crate::db::chained(upsert, log)).await?;
        return Ok(Vec::new());
    }
    let mut statuses = statuses;
    while !statuses.is_empty() {
        let rest = statuses.split_off(statuses.len().min(CHUNK));
        upsert(std::mem::replace(&mut statuses, rest)).exec_without_returning(txn).await?;
    }
    for chunk in changes.chunks(CHUNK) {
        log(chunk).exec_without_returning(txn).await?;
    }
    Ok(Vec::new())
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
    /// Bumped whenever a region is forgotten: a load that read the database before a forget must not be kept.
    forgotten: AtomicU64,
    /// The annex as stored: reference data, read once like the catalog.
    annex: tokio::sync::OnceCell<AnnexFigures>,
    /// Told of every state stored (the epoch) or handed over, for a write waiting for its predecessor's state
    /// (`state_before`).
    stored: tokio::sync::watch::Sender<u64>,
    /// States committed by this instance's writes but not yet durable (`hand_over`): their regions' next writers
    /// build on them, readers do not see them.
    pending: std::sync::Mutex<HashMap<String, Arc<RegionState>>>,
    /// Set when the writes of this hub commit asynchronously and wait for this barrier (`db::durability`).
    barrier: std::sync::OnceLock<Arc<Barrier>>,
    /// Where replaced states go to be freed (`retire`); None if its thread could not be started.
    retired: Option<std::sync::mpsc::Sender<Arc<RegionState>>>,
    /// The writes of each region that reconcile before its lock (`speculate`).
    chains: Chains<Arc<RegionState>>,
    /// The next advisory-lock key of a speculative write (from a random start: keys of two instances rarely meet,
    /// and when they do a write only waits for the other's end).
    keys: AtomicU32,
}

/// A thread that frees the region states it is sent. Freeing a state walks every measure's status, outcome and
/// findings: about 7 % of the write lane's CPU per write in region 84 (BENCHMARKS.md), which neither the lane, where
/// a region's writes queue, nor the map's write lock, which readers wait for, should spend.
fn retirement() -> Option<std::sync::mpsc::Sender<Arc<RegionState>>> {
    let (sender, states) = std::sync::mpsc::channel::<Arc<RegionState>>();
    // Ends when the `Reconciled` (the sender) is dropped.
    let spawned =
        std::thread::Builder::new().name("cnh-retire".into()).spawn(move || states.into_iter().for_each(drop));
    spawned.ok().map(|_| sender)
}

/// How long a write waits for the state its predecessor in the region committed to be installed, before reloading the
/// region from the database instead.
const PREDECESSOR_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

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
            forgotten: AtomicU64::new(0),
            annex: tokio::sync::OnceCell::new(),
            stored: tokio::sync::watch::channel(0).0,
            pending: std::sync::Mutex::new(HashMap::new()),
            barrier: std::sync::OnceLock::new(),
            retired: retirement(),
            chains: Chains::default(),
            keys: AtomicU32::new(uuid::Uuid::new_v4().as_u128() as u32),
        })
    }

    /// Lets go of a state replaced in memory: freed on the retirement thread when this was its last holder.
    fn retire(&self, state: Arc<RegionState>) {
        if let Some(retired) = &self.retired {
            // If the thread is gone, the state comes back in the error and is freed here.
            let _ = retired.send(state);
        }
    }

    /// Writes recomputing this state commit asynchronously from now on, and wait for the barrier before they are
    /// acknowledged (`db::durability`; the write lane's, on PostgreSQL).
    pub fn commit_writes_asynchronously(&self, barrier: Arc<Barrier>) {
        let _ = self.barrier.set(barrier);
    }

    /// The barrier a write waits for after an asynchronous commit; None when writes commit synchronously.
    pub fn durability_barrier(&self) -> Option<&Arc<Barrier>> {
        self.barrier.get()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The reference territory as the engine needs it.
    pub fn territory(&self) -> Arc<Territory> {
        self.territory.clone()
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
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        self.stored.send_replace(epoch);
    }

    /// The region's state as of `generation - 1`, for a write that just moved the region to `generation`. The
    /// region's lock passes to the next writer at the commit, a moment before the committing write hands its state
    /// over (or installs it): when this instance holds an older generation, it waits (briefly) for that state rather
    /// than reload the whole region under the lock. None when no state is held or it does not come: the caller reloads.
    async fn state_before(&self, region: &str, generation: i64, day: NaiveDate) -> Option<Arc<RegionState>> {
        let mut stored = self.stored.subscribe();
        let deadline = tokio::time::Instant::now() + PREDECESSOR_WAIT;
        loop {
            let handed_over = {
                let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                pending.get(region).filter(|s| s.day == day && s.generation == generation - 1).cloned()
            };
            if handed_over.is_some() {
                return handed_over;
            }
            let held = {
                let regions = self.regions.read().unwrap_or_else(|e| e.into_inner());
                regions.get(region).filter(|s| s.day == day).cloned()
            };
            match held {
                Some(state) if state.generation == generation - 1 => return Some(state),
                Some(state) if state.generation < generation - 1 => {}
                _ => return None,
            }
            if tokio::time::timeout_at(deadline, stored.changed()).await.is_err() {
                return None;
            }
        }
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
        // A write that makes a region stale forgets it after its commit; a load that began before would hold the
        // data as it stood before that write: it answers this read but is not kept.
        let forgotten = self.forgotten.load(Ordering::Acquire);
        // One read transaction: the generation and the data it numbers are read together.
        let txn = crate::db::counted_begin(self.db.begin()).await?;
        let row = reconciliation_region::Entity::find_by_id(region.to_owned()).one(&txn).await?;
        let (generation, stamp) = row.map_or((0, None), |r| (r.generation, Some(r.reconciled_at)));
        let data = service::load_region(&txn, &self.catalog, self.territory.clone(), region, now).await?;
        txn.commit().await?;
        let state = Arc::new(RegionState::build(region, generation, stamp, day, data));
        if self.forgotten.load(Ordering::Acquire) == forgotten {
            self.store(state.clone());
        }
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
        let replaced = match regions.get(&state.region) {
            Some(current) if current.generation > state.generation => Some(state),
            _ => regions.insert(state.region.clone(), state),
        };
        drop(regions);
        self.bump();
        if let Some(replaced) = replaced {
            self.retire(replaced);
        }
    }

    /// Forgets every region (a campaign was declared, or notifications may have been missed).
    pub fn invalidate_all(&self) {
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.regions.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.chains.break_all();
        self.bump();
    }

    /// Forgets a region's state: it is rebuilt on next read.
    pub fn forget(&self, region: &str) {
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(region);
        self.regions.write().unwrap_or_else(|e| e.into_inner()).remove(region);
        self.chains.break_tip(region);
        self.bump();
    }

    /// Marks, in the transaction, a region's state as stale (a write changed its needs, school plans or campaigns):
    /// its generation moves on, so no instance patches an older state, and the other instances are told.
    /// `asynchronous_commit` as for `recompute_for_write`.
    pub async fn notify_stale_in<C: ConnectionTrait>(
        &self,
        txn: &C,
        region: &str,
        asynchronous_commit: bool,
    ) -> Result<(), ApiError> {
        self.chains.break_tip(region);
        self.bump_generation(txn, region, stamp_now().fixed_offset(), asynchronous_commit).await?;
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

    /// A region's generation as last committed (0 before its first write), read without a lock.
    async fn committed_generation<C: ConnectionTrait>(txn: &C, region: &str) -> Result<i64, ApiError> {
        Ok(reconciliation_region::Entity::find_by_id(region.to_owned()).one(txn).await?.map_or(0, |r| r.generation))
    }

    /// Moves a region's generation on by one, in the transaction; on PostgreSQL the row lock it takes serialises the
    /// region's writers until commit.
    ///
    /// With `asynchronous_commit` (PostgreSQL), the transaction is also told to commit without waiting for the disk
    /// (`db::durability`: the write waits for it after the commit, with the lock released).
    async fn bump_generation<C: ConnectionTrait>(
        &self,
        txn: &C,
        region: &str,
        at: DateTime<FixedOffset>,
        asynchronous_commit: bool,
    ) -> Result<i64, ApiError> {
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            // The bump, the notification (delivered at commit) and the commit's mode in one round trip: the lock the
            // bump takes is held until commit, so every statement under it counts.
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "WITH bumped AS (INSERT INTO reconciliation_region (region_code, generation, reconciled_at) \
                     VALUES ($1, 1, $2) ON CONFLICT (region_code) DO UPDATE \
                     SET generation = reconciliation_region.generation + 1, reconciled_at = EXCLUDED.reconciled_at \
                     RETURNING generation) \
                     SELECT b.generation FROM bumped b \
                     CROSS JOIN LATERAL pg_notify($3, $1 || ':' || b.generation || ':' || $4) AS notified \
                     CROSS JOIN LATERAL \
                     set_config('synchronous_commit', COALESCE($5, current_setting('synchronous_commit')), true) AS mode",
                    [
                        region.into(),
                        at.into(),
                        CHANNEL.into(),
                        self.instance.clone().into(),
                        // Otherwise the session's own setting stands.
                        asynchronous_commit.then(|| "off".to_owned()).into(),
                    ],
                ))
                .await?
                .ok_or_else(|| ApiError::Internal("the region's generation did not come back".into()))?;
            return Ok(row.try_get("", "generation")?);
        }
        let row = reconciliation_region::Entity::insert(reconciliation_region::ActiveModel {
            region_code: Set(region.to_owned()),
            generation: Set(1),
            reconciled_at: Set(at),
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
        // The generation comes back with the upsert: one round trip under the lock it takes.
        .exec_with_returning(txn)
        .await?;
        Ok(row.generation)
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
        self.recompute(txn, region, touched, false, false).await
    }

    /// As `recompute_in`, for the write kernel: on PostgreSQL the statements storing the statuses come back in the
    /// `Recomputed` (`take_deferred`) for the caller to send, in this transaction, before it commits; with
    /// `asynchronous_commit` the transaction commits without waiting for the disk, and the caller waits for it after
    /// the commit (`db::durability`), between `hand_over` and `install`.
    pub async fn recompute_for_write<C: ConnectionTrait>(
        &self,
        txn: &C,
        region: &str,
        touched: &BTreeSet<String>,
        asynchronous_commit: bool,
    ) -> Result<Recomputed, ApiError> {
        self.recompute(txn, region, touched, true, asynchronous_commit).await
    }

    async fn recompute<C: ConnectionTrait>(
        &self,
        txn: &C,
        region: &str,
        touched: &BTreeSet<String>,
        defer: bool,
        asynchronous_commit: bool,
    ) -> Result<Recomputed, ApiError> {
        let _timer = crate::observe::METRICS.recompute_duration.start_timer();
        // This write moves the generation on outside the region's chain: the writes that speculate on the chain's
        // tip would find the region's row changed.
        self.chains.break_tip(region);
        // Before the region's lock: the touched measures as this write left them, after the region's generation as
        // committed. Once the lock is taken, the read-back stands if the bump moved that generation on by one: no
        // other write of the region committed since it was read (each bumps the generation), so the measures and
        // commitments read then are those of now. Otherwise they are read again under the lock. This keeps two
        // round trips out of the time the region's writers queue for. Without a state of the region in memory the
        // region will be reloaded whole: nothing is read early.
        let held = self.regions.read().unwrap_or_else(|e| e.into_inner()).contains_key(region);
        let early = match held {
            true => Some((Self::committed_generation(txn, region).await?, service::load_measures(txn, touched).await?)),
            false => None,
        };
        let now = stamp_now();
        let at = now.fixed_offset();
        let generation = self.bump_generation(txn, region, at, asynchronous_commit).await?;
        let locked_at = std::time::Instant::now();
        let day = paris_day(now);
        let current = self.state_before(region, generation, day).await;
        // What may have changed, as it stood before this write: the touched measures when this instance holds the
        // region as of the previous generation (only they can change status: a measure's status depends on the
        // measure, its commitments and the reference data), else every measure of the region, as stored.
        let mut before: HashMap<String, Standing> = HashMap::new();
        let (state, candidates) = match current {
            Some(current) => {
                for id in touched {
                    if let Some(i) = current.index_of(id) {
                        before.insert(id.clone(), current.standing(i));
                    }
                }
                let loaded = match early {
                    Some((seen, early)) if generation == seen + 1 => early,
                    _ => service::load_measures(txn, touched).await?,
                };
                (current.patched(generation, now, touched, loaded), Some(touched))
            }
            None => {
                for row in measure_co_financing::Entity::find()
                    .filter(measure_co_financing::Column::RegionCode.eq(region))
                    .all(txn)
                    .await?
                {
                    before.insert(
                        row.measure_id,
                        Standing { status: row.status, codes: row.finding_codes, departement: row.departement_code },
                    );
                }
                let data = service::load_region(txn, &self.catalog, self.territory.clone(), region, now).await?;
                (RegionState::build(region, generation, Some(at), day, data), None)
            }
        };
        let Judged { rows, changes, left } = judge(&state, before, candidates, now);
        for id in left {
            // The measure left the region.
            measure_co_financing::Entity::delete_many()
                .filter(measure_co_financing::Column::MeasureId.eq(id))
                .filter(measure_co_financing::Column::RegionCode.eq(region))
                .exec(txn)
                .await?;
        }
        let deferred = store_changes(txn, &state, rows, &changes, at, defer).await?;
        // On PostgreSQL the notification went with the generation's bump.
        Ok(Recomputed { state: Arc::new(state), changes, deferred, locked_at, handed_over: false, ticket: None })
    }

    /// A fresh advisory-lock key for a speculative write.
    fn next_key(&self) -> i32 {
        self.keys.fetch_add(1, Ordering::Relaxed) as i32
    }

    /// The newest committed state of a region this instance holds for `day` (handed over, or installed).
    fn committed_state(&self, region: &str, day: NaiveDate) -> Option<Arc<RegionState>> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).get(region).cloned();
        let held = self.cached(region, day);
        match (pending.filter(|s| s.day == day), held) {
            (Some(p), Some(h)) => Some(if p.generation >= h.generation { p } else { h }),
            (p, h) => p.or(h),
        }
    }

    /// Reconciles a write's region before it takes the region's lock, on the state of the region's previous write
    /// on this instance (committed or not): see `speculation`. None when the write cannot speculate (SQLite, no
    /// state of the region in memory, a measure also touched by a write in flight, a measure leaving the region…):
    /// it then takes the ordinary path (`recompute_for_write`).
    ///
    /// The write then sends `speculative_statements` (with its audit record, in one statement); if they come back
    /// with the generation, it installs `Speculated::landed` after its commit, as any recomputation.
    pub async fn speculate<C: ConnectionTrait>(
        &self,
        txn: &C,
        region: &str,
        touched: &BTreeSet<String>,
    ) -> Result<Option<Speculated>, ApiError> {
        if txn.get_database_backend() != DatabaseBackend::Postgres
            || touched.is_empty()
            || touched.len() > SPECULATION_MAX_MEASURES
        {
            return Ok(None);
        }
        let declined = || {
            crate::observe::METRICS.speculative_writes.with_label_values(&["declined"]).inc();
            Ok(None)
        };
        let now = stamp_now();
        let (at, day) = (now.fixed_offset(), paris_day(now));
        let chain = self.chains.of(region);
        let Some(mark) = chain.lock().mark(|state| state.day == day, || self.committed_state(region, day)) else {
            return declined();
        };
        // Held until this write ends (taken with the read-back): the write that builds on this one waits for it in
        // its statement.
        let key = self.next_key();
        let loaded = service::load_measures_locking(txn, touched, Some((SPECULATION_LOCK_CLASS, key))).await?;
        let _turn = chain.turn.lock().await;
        let Some((base, predecessor)) = chain.lock().base(mark, touched) else { return declined() };
        let _timer = crate::observe::METRICS.recompute_duration.start_timer();
        let mut before = HashMap::new();
        for id in touched {
            if let Some(i) = base.index_of(id) {
                before.insert(id.clone(), base.standing(i));
            }
        }
        let state = base.patched(base.generation + 1, now, touched, loaded);
        let Judged { rows, changes, left } = judge(&state, before, Some(touched), now);
        if !left.is_empty() {
            return declined();
        }
        let state = Arc::new(state);
        let Some(ticket) = chain.lock().push(mark, touched.clone(), state.clone(), key) else { return declined() };
        Ok(Some(Speculated {
            recomputed: Recomputed {
                state,
                changes,
                deferred: Vec::new(),
                locked_at: std::time::Instant::now(),
                handed_over: false,
                ticket: Some(Ticket::new(chain.clone(), ticket)),
            },
            rows,
            base: (base.generation, base.stamp),
            predecessor,
            at,
        }))
    }

    /// The statements of a speculative write, as common table expressions under their names, for the write to send
    /// in one statement with its audit record (locked once `bumped_` has a row). In order: wait for the write the
    /// state was built on to end (`waited_`); bump the generation if the region's row is still that write's
    /// (`bumped_`, a row only then; the row is locked either way); notify the other instances and set the commit's
    /// mode (`signal_`, which the statement's result must read); store the statuses and log the changes, only if
    /// bumped.
    pub fn speculative_statements(
        &self,
        speculated: &Speculated,
        asynchronous_commit: bool,
    ) -> Vec<(&'static str, Statement)> {
        let pg = DatabaseBackend::Postgres;
        let region = &speculated.recomputed.state.region;
        let waited = match speculated.predecessor {
            Some(key) => Statement::from_sql_and_values(
                pg,
                "SELECT 1 AS w FROM pg_advisory_xact_lock_shared($1, $2) AS l",
                [SPECULATION_LOCK_CLASS.into(), key.into()],
            ),
            None => Statement::from_string(pg, "SELECT 1 AS w"),
        };
        let bumped = Statement::from_sql_and_values(
            pg,
            "INSERT INTO reconciliation_region (region_code, generation, reconciled_at) SELECT $1, 1, $2 FROM waited_ \
             ON CONFLICT (region_code) DO UPDATE \
             SET generation = reconciliation_region.generation + 1, reconciled_at = EXCLUDED.reconciled_at \
             WHERE reconciliation_region.generation = $3 AND reconciliation_region.reconciled_at IS NOT DISTINCT FROM $4 \
             RETURNING generation",
            [region.clone().into(), speculated.at.into(), speculated.base.0.into(), speculated.base.1.into()],
        );
        let signal = Statement::from_sql_and_values(
            pg,
            "SELECT b.generation FROM bumped_ b \
             CROSS JOIN LATERAL pg_notify($1, $2 || ':' || b.generation || ':' || $3) AS notified \
             CROSS JOIN LATERAL \
             set_config('synchronous_commit', COALESCE($4, current_setting('synchronous_commit')), true) AS mode",
            [
                CHANNEL.into(),
                region.clone().into(),
                self.instance.clone().into(),
                asynchronous_commit.then(|| "off".to_owned()).into(),
            ],
        );
        let mut statements = vec![("waited_", waited), ("bumped_", bumped), ("signal_", signal)];
        if !speculated.rows.is_empty() {
            let (tuples, mut values) = values_list(speculated.rows.iter().map(|row| {
                [
                    row.measure_id.clone().into(),
                    row.departement.clone().into(),
                    row.status.to_owned().into(),
                    row.codes.clone().into(),
                    speculated.at.into(),
                ]
            }));
            let n = values.len();
            values.push(region.clone().into());
            let sql = format!(
                "INSERT INTO measure_co_financing \
                 (measure_id, region_code, departement_code, status, finding_codes, generation, updated_at) \
                 SELECT v.measure_id, ${}, v.departement_code, v.status, v.finding_codes, b.generation, v.updated_at \
                 FROM (VALUES {}) AS v (measure_id, departement_code, status, finding_codes, updated_at), bumped_ b \
                 WHERE true ON CONFLICT (measure_id) DO UPDATE SET region_code = EXCLUDED.region_code, \
                 departement_code = EXCLUDED.departement_code, status = EXCLUDED.status, \
                 finding_codes = EXCLUDED.finding_codes, generation = EXCLUDED.generation, updated_at = EXCLUDED.updated_at",
                n + 1,
                tuples
            );
            statements.push(("statuses_", Statement::from_sql_and_values(pg, sql, values)));
        }
        if !speculated.recomputed.changes.is_empty() {
            let (tuples, mut values) = values_list(speculated.recomputed.changes.iter().map(|change| {
                [
                    change.measure_id.clone().into(),
                    change.departement.clone().into(),
                    change.previous.map(|s| s.as_str().to_owned()).into(),
                    change.status.map(|s| s.as_str().to_owned()).into(),
                    change.finding_codes.join(",").into(),
                ]
            }));
            let n = values.len();
            values.extend([region.clone().into(), speculated.at.into()]);
            let sql = format!(
                "INSERT INTO co_financing_event \
                 (region_code, generation, measure_id, departement_code, previous_status, status, finding_codes, \
                 recorded_at) \
                 SELECT ${}, b.generation, v.measure_id, v.departement_code, v.previous_status, v.status, \
                 v.finding_codes, ${} \
                 FROM (VALUES {}) AS v (measure_id, departement_code, previous_status, status, finding_codes), \
                 bumped_ b",
                n + 1,
                n + 2,
                tuples
            );
            statements.push(("log_", Statement::from_sql_and_values(pg, sql, values)));
        }
        statements
    }

    /// After the commit, before the write is known durable (`db::durability`): the region's lock has passed to its
    /// next writer, which may build on this state on this instance; readers do not see it until `install`.
    pub fn hand_over(&self, recomputed: &mut Recomputed) {
        recomputed.handed_over = true;
        let state = &recomputed.state;
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let replaced = match pending.get(&state.region) {
            Some(newer) if newer.generation > state.generation => None,
            _ => pending.insert(state.region.clone(), state.clone()),
        };
        drop(pending);
        if let Some(replaced) = replaced {
            self.retire(replaced);
        }
        // Wakes a writer waiting for it in `state_before`; readers' answers still stand (no epoch change).
        self.stored.send_modify(|_| {});
    }

    /// After the commit (and, when it was asynchronous, once durable): the new state replaces the old one and
    /// subscribers hear of the changes.
    ///
    /// A handed-over state whose region was forgotten meanwhile (another instance's write made it stale, or the store
    /// was lost) is not installed: the region is rebuilt from the store on next use.
    pub fn install(&self, recomputed: Recomputed) {
        let (region, generation) = (recomputed.state.region.clone(), recomputed.state.generation);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let kept = pending.get(&region).map(|p| p.generation);
        let released = if kept.is_some_and(|g| g <= generation) { pending.remove(&region) } else { None };
        if !recomputed.handed_over || kept.is_some() {
            self.store(recomputed.state);
        } else {
            self.retire(recomputed.state);
        }
        drop(pending);
        if let Some(released) = released {
            self.retire(released);
        }
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
        if self.region(region).await?.generation < generation {
            // A write of this instance installed an older state between the forget and the load.
            self.forget(region);
            self.region(region).await?;
        }
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
                        Ok(None) => {
                            // The connection was lost: notifications may have been missed. The state in memory
                            // keeps answering until the store answers again (forgetting it now would send every
                            // read to a store that is down), then it is rebuilt from the store.
                            while this.db.ping().await.is_err() {
                                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                            }
                            this.invalidate_all();
                        }
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
