//! Loading reconciliation snapshots from the database: one region at a time (what the live state holds and what a
//! write recomputes), or the whole country for the national checks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entities::{
    campaign, commitment, commitment_revision, envelope_allocation, financing_rule, measure, measure_revision,
    national_target, needs_indicator, needs_indicator_revision, school_plan, steering_figure, submission,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::access::principal::Scope;
use crate::error::{ApiError, stored};
use crate::reconciled::engine::{
    CampaignStandingFact, CommitmentFact, DrawingRightFact, ForecastFact, MeasureFact, NationalTargets, NeedsFact,
    RuleFact, SchoolPlanFact, Snapshot, StabilisedForecast, SteeringFacts, Territory, TrajectoryFact,
};
use crate::records::{CommitmentRecord, MeasureRecord};
use crate::territory::service::Catalog;
use crate::vocabulary::{
    CommitmentStatus, Compartment, CostComponent, DataKind, InstitutionKind, NeedsIndicatorKind, Payer,
};

/// The reference territory as the engine needs it, built once from the catalog.
pub fn territory(catalog: &Catalog) -> Territory {
    let mut t = Territory::default();
    for d in &catalog.departements {
        t.departements_of_region.entry(d.region_code.clone()).or_default().insert(d.code.clone());
        t.academie_of.insert(d.code.clone(), d.academie_code.clone());
    }
    for a in &catalog.academies {
        t.region_of_academie.insert(a.code.clone(), a.region_code.clone());
    }
    for c in &catalog.collectivites {
        t.collectivite_departements
            .insert(c.code.clone(), catalog.departements_of_collectivite(&c.code).map(|d| d.code.clone()).collect());
    }
    for o in &catalog.orientations {
        t.orientation_category.insert(o.code.clone(), o.category_code.clone().unwrap_or_default());
    }
    for c in catalog.categories.iter().filter(|c| c.legacy) {
        if let Some(successor) = &c.successor_code {
            t.successor.insert(c.code.clone(), successor.clone());
        }
    }
    t
}

async fn rules<C: ConnectionTrait>(conn: &C) -> Result<Vec<RuleFact>, ApiError> {
    let mut rules = Vec::new();
    for r in financing_rule::Entity::find().all(conn).await? {
        rules.push(RuleFact {
            component: stored(CostComponent::from_stored(&r.cost_component), "cost component", &r.cost_component)?,
            payer: stored(Payer::from_stored(&r.payer), "payer", &r.payer)?,
            category: r.category_code,
            share_bp: r.share_bp,
            departement: r.departement_code,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
        });
    }
    Ok(rules)
}

async fn targets<C: ConnectionTrait>(conn: &C) -> Result<NationalTargets, ApiError> {
    let mut targets = NationalTargets::default();
    for row in national_target::Entity::find().all(conn).await? {
        match row.code.as_str() {
            "SOCLE" => targets.socle = row.amount_cents,
            "SOCLE_ENFANTS" => targets.children = row.amount_cents,
            "SOCLE_ASE" => targets.ase = row.amount_cents,
            "SOCLE_ADULTES" => targets.adults = row.amount_cents,
            _ => {}
        }
    }
    Ok(targets)
}

/// A stored measure, as the API shows it and the engine sees it (one record, shared).
fn measure_of(m: &measure::Model) -> Result<Arc<MeasureFact>, ApiError> {
    Ok(Arc::new(MeasureRecord::try_from(m)?))
}

/// A stored commitment as the API shows it, and as the engine sees it when it is active.
fn commitment_fact(c: &commitment::Model) -> Result<(Option<Arc<CommitmentFact>>, CommitmentRecord), ApiError> {
    Ok(commitment_fact_of(CommitmentRecord::try_from(c)?))
}

fn commitment_fact_of(record: CommitmentRecord) -> (Option<Arc<CommitmentFact>>, CommitmentRecord) {
    let fact = (record.status == CommitmentStatus::Active).then(|| {
        Arc::new(CommitmentFact {
            id: record.id.clone(),
            measure_id: record.measure_id.clone(),
            funder: record.funder,
            funder_code: record.funder_code.clone(),
            component: record.cost_component,
            full_year_cents: record.full_year_amount.0,
            schedule: record.schedule.iter().map(|y| (y.year, y.amount.0)).collect(),
            capacity: record.capacity,
            installation: record.installation_date,
        })
    });
    (fact, record)
}

/// Commitments as the API shows them (withdrawn ones included), by measure id, each measure's in id order.
pub type CommitmentsByMeasure = HashMap<String, Vec<CommitmentRecord>>;

/// Some measures as a write left them (read inside its transaction).
pub struct LoadedMeasures {
    pub measures: Vec<Arc<MeasureFact>>,
    /// Active commitments, as the engine sees them.
    pub commitment_facts: Vec<Arc<CommitmentFact>>,
    /// Every commitment, as the API shows them.
    pub commitments: CommitmentsByMeasure,
}

/// Some measures and their commitments, as a write left them (read inside its transaction).
pub async fn load_measures<C: ConnectionTrait>(conn: &C, ids: &BTreeSet<String>) -> Result<LoadedMeasures, ApiError> {
    load_measures_locking(conn, ids, None).await
}

/// As `load_measures`; on PostgreSQL, with `advisory` (class, key), the transaction-scoped advisory lock is taken in
/// the same round trip as the measures are read (when at least one is found: the lock only spares the next write a
/// wasted attempt, `reconciled::speculation`).
pub async fn load_measures_locking<C: ConnectionTrait>(
    conn: &C,
    ids: &BTreeSet<String>,
    advisory: Option<(i32, i32)>,
) -> Result<LoadedMeasures, ApiError> {
    let mut loaded = LoadedMeasures { measures: Vec::new(), commitment_facts: Vec::new(), commitments: HashMap::new() };
    let ids: Vec<String> = ids.iter().cloned().collect();
    let postgres = conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let mut advisory = advisory.filter(|_| postgres);
    for chunk in ids.chunks(1000) {
        let select = measure::Entity::find().filter(measure::Column::Id.is_in(chunk.iter().cloned()));
        let models = match advisory.take() {
            Some((class, key)) => {
                use sea_orm::QueryTrait;
                let inner = select.build(sea_orm::DatabaseBackend::Postgres);
                let mut values = inner.values.map(|v| v.0).unwrap_or_default();
                let n = values.len();
                values.extend([class.into(), key.into()]);
                let sql = format!(
                    "WITH lock_ AS (SELECT 1 AS held FROM pg_advisory_xact_lock(${}, ${}) AS l) \
                     SELECT m.* FROM ({}) AS m CROSS JOIN lock_",
                    n + 1,
                    n + 2,
                    inner.sql
                );
                let statement =
                    sea_orm::Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values);
                measure::Entity::find().from_raw_sql(statement).all(conn).await?
            }
            None => select.all(conn).await?,
        };
        for m in models {
            loaded.measures.push(measure_of(&m)?);
        }
        for c in commitment::Entity::find()
            .filter(commitment::Column::MeasureId.is_in(chunk.iter().cloned()))
            .order_by_asc(commitment::Column::Id)
            .all(conn)
            .await?
        {
            let (fact, record) = commitment_fact(&c)?;
            loaded.commitment_facts.extend(fact);
            loaded.commitments.entry(record.measure_id.clone()).or_default().push(record);
        }
    }
    Ok(loaded)
}

/// A region's snapshot (its measures are the records the API shows), and the commitments as the API shows them.
pub struct RegionData {
    pub snapshot: Snapshot,
    pub commitments: CommitmentsByMeasure,
}

/// Commitments in id order, in the snapshot and under each measure.
fn sort_commitments(snapshot: &mut Snapshot, commitments: &mut CommitmentsByMeasure) {
    snapshot.commitments.sort_by(|a, b| a.id.cmp(&b.id));
    for list in commitments.values_mut() {
        list.sort_by(|a, b| a.id.cmp(&b.id));
    }
}

/// A region's envelopes as the annex notified them.
async fn notified_envelopes<C: ConnectionTrait>(
    conn: &C,
    region: &str,
) -> Result<BTreeMap<(String, Compartment), i64>, ApiError> {
    let mut envelopes = BTreeMap::new();
    for row in
        envelope_allocation::Entity::find().filter(envelope_allocation::Column::RegionCode.eq(region)).all(conn).await?
    {
        let compartment = stored(Compartment::from_stored(&row.compartment), "compartment", &row.compartment)?;
        envelopes.insert((row.region_code, compartment), row.notified_cents);
    }
    Ok(envelopes)
}

/// Loads everything one region's reconciliation needs. Run inside a write transaction, it sees the write.
pub async fn load_region<C: ConnectionTrait>(
    conn: &C,
    catalog: &Catalog,
    territory: Arc<Territory>,
    region: &str,
    now: DateTime<Utc>,
) -> Result<RegionData, ApiError> {
    let mut snapshot = Snapshot {
        legacy_categories: Arc::new(catalog.categories.iter().filter(|c| c.legacy).map(|c| c.code.clone()).collect()),
        territory: territory.clone(),
        now,
        targets: targets(conn).await?,
        rules: Arc::new(rules(conn).await?),
        ..Snapshot::default()
    };
    let rows = measure::Entity::find().filter(measure::Column::RegionCode.eq(region)).all(conn).await?;
    let ids: Vec<String> = rows.iter().map(|m| m.id.clone()).collect();
    let mut measures = rows.iter().map(measure_of).collect::<Result<Vec<_>, _>>()?;
    measures.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot.measures = measures;
    let mut commitments: CommitmentsByMeasure = HashMap::new();
    for chunk in ids.chunks(1000) {
        for c in commitment::Entity::find()
            .filter(commitment::Column::MeasureId.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?
        {
            let (fact, record) = commitment_fact(&c)?;
            snapshot.commitments.extend(fact);
            commitments.entry(record.measure_id.clone()).or_default().push(record);
        }
    }
    sort_commitments(&mut snapshot, &mut commitments);
    snapshot.envelopes = Arc::new(notified_envelopes(conn, region).await?);
    let academies: Vec<String> = catalog.academies_of_region(region).map(|a| a.code.clone()).collect();
    let mut school_plans = Vec::new();
    for plan in school_plan::Entity::find().filter(school_plan::Column::AcademieCode.is_in(academies)).all(conn).await?
    {
        school_plans.push(SchoolPlanFact {
            id: plan.id,
            academie: plan.academie_code,
            departement: plan.departement_code,
            cost_cents: plan.medico_social_cost_cents,
            year: plan.year,
        });
    }
    school_plans.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot.school_plans = Arc::new(school_plans);
    let departements: Vec<String> = catalog.departements_of_region(region).map(|d| d.code.clone()).collect();
    snapshot.needs = Arc::new(latest_needs(conn, departements).await?);
    snapshot.campaigns = Arc::new(campaign_standings(conn, catalog, region).await?);
    snapshot.steering = Arc::new(steering_facts(conn, region, now, None).await?);
    Ok(RegionData { snapshot, commitments })
}

/// A region's steering figures in force at `at` (recorded by `as_of` when given), each forecast with the figure it
/// had at the deadline of the campaign that stabilised it, once that deadline has passed.
pub async fn steering_facts<C: ConnectionTrait>(
    conn: &C,
    region: &str,
    at: DateTime<Utc>,
    as_of: Option<DateTime<Utc>>,
) -> Result<SteeringFacts, ApiError> {
    let mut query = steering_figure::Entity::find()
        .filter(steering_figure::Column::RegionCode.eq(region))
        .order_by_asc(steering_figure::Column::Id);
    let mut campaigns =
        campaign::Entity::find().filter(campaign::Column::DataKind.eq(DataKind::InstallationForecast.as_str()));
    if let Some(as_of) = as_of {
        query = query.filter(steering_figure::Column::RecordedAt.lte(as_of));
        campaigns = campaigns.filter(campaign::Column::CreatedAt.lte(as_of));
    }
    // The campaign ending in year N stabilises the forecast for N + 1 (the circular: before 30 June 2024 for 2025).
    let mut deadlines: BTreeMap<i32, chrono::NaiveDate> = BTreeMap::new();
    for c in campaigns.all(conn).await? {
        let year = chrono::Datelike::year(&c.deadline) + 1;
        let deadline = deadlines.entry(year).or_insert(c.deadline);
        *deadline = (*deadline).max(c.deadline);
    }
    fold_steering(&query.all(conn).await?, &deadlines, at)
}

/// The figures in force from rows in recording order: each key's latest row; a forecast's figure at its deadline
/// is its latest row recorded by the end of that day (Paris), once that day is over at `at`.
pub fn fold_steering(
    rows: &[steering_figure::Model],
    deadlines: &BTreeMap<i32, chrono::NaiveDate>,
    at: DateTime<Utc>,
) -> Result<SteeringFacts, ApiError> {
    let compartment = |row: &steering_figure::Model| -> Result<Compartment, ApiError> {
        let text = row.compartment.as_deref().unwrap_or_default();
        stored(Compartment::from_stored(text), "compartment", text)
    };
    let mut trajectory: BTreeMap<(Compartment, i32), TrajectoryFact> = BTreeMap::new();
    let mut rights: BTreeMap<i32, DrawingRightFact> = BTreeMap::new();
    let mut forecasts: BTreeMap<(Compartment, i32), ForecastFact> = BTreeMap::new();
    for row in rows {
        let cp_cents = row.cp_cents.unwrap_or(0);
        match DataKind::from_stored(&row.kind) {
            Some(DataKind::Trajectory) => {
                let c = compartment(row)?;
                trajectory.insert(
                    (c, row.year),
                    TrajectoryFact {
                        region: row.region_code.clone(),
                        compartment: c,
                        year: row.year,
                        ae_cents: row.ae_cents.unwrap_or(0),
                        cp_cents,
                    },
                );
            }
            Some(DataKind::DrawingRights) => {
                rights.insert(row.year, DrawingRightFact { region: row.region_code.clone(), year: row.year, cp_cents });
            }
            Some(DataKind::InstallationForecast) => {
                let c = compartment(row)?;
                let solutions = row.solutions.unwrap_or(0);
                let previous = forecasts.remove(&(c, row.year)).and_then(|f| f.stabilised);
                let stabilised = match deadlines.get(&row.year) {
                    Some(deadline) if crate::calendar::deadline_end(*deadline) < at => {
                        if row.recorded_at <= crate::calendar::deadline_end(*deadline) {
                            Some(StabilisedForecast { deadline: *deadline, solutions, cp_cents })
                        } else {
                            previous
                        }
                    }
                    _ => None,
                };
                forecasts.insert(
                    (c, row.year),
                    ForecastFact {
                        region: row.region_code.clone(),
                        compartment: c,
                        year: row.year,
                        solutions,
                        cp_cents,
                        stabilised,
                    },
                );
            }
            _ => {}
        }
    }
    Ok(SteeringFacts {
        trajectory: trajectory.into_values().collect(),
        drawing_rights: rights.into_values().collect(),
        forecasts: forecasts.into_values().collect(),
    })
}

/// A region as it stood at instant `at`, rebuilt from the revisions: each measure and commitment at its latest
/// version recorded by then (a row never revised, as the demo loads them, as it is if it was written by then),
/// each département's needs picture as the submissions received by then left it, the steering figures recorded by
/// then, deadlines judged at `at`. The annex, the financing rules and the national targets are reference data,
/// taken as they are; school plans and campaigns are not part of it (what the steering pack does not show).
pub async fn load_region_as_of<C: ConnectionTrait>(
    conn: &C,
    catalog: &Catalog,
    territory: Arc<Territory>,
    region: &str,
    at: DateTime<Utc>,
) -> Result<RegionData, ApiError> {
    let mut snapshot = Snapshot {
        legacy_categories: Arc::new(catalog.categories.iter().filter(|c| c.legacy).map(|c| c.code.clone()).collect()),
        territory,
        now: at,
        targets: targets(conn).await?,
        rules: Arc::new(rules(conn).await?),
        ..Snapshot::default()
    };
    let current = measure::Entity::find().filter(measure::Column::RegionCode.eq(region)).all(conn).await?;
    let ids: Vec<String> = current.iter().map(|m| m.id.clone()).collect();
    let mut versions: HashMap<String, MeasureRecord> = HashMap::new();
    for chunk in ids.chunks(1000) {
        for rev in measure_revision::Entity::find()
            .filter(measure_revision::Column::MeasureId.is_in(chunk.iter().cloned()))
            .filter(measure_revision::Column::RecordedAt.lte(at))
            .order_by_asc(measure_revision::Column::Version)
            .all(conn)
            .await?
        {
            let record: MeasureRecord = serde_json::from_str(&rev.snapshot).map_err(|e| {
                ApiError::Internal(format!("measure revision {} unreadable: {e}", rev.measure_id).into())
            })?;
            versions.insert(rev.measure_id, record);
        }
    }
    // Measures revised only after `at` did not exist then; those never revised are as written.
    let unseen: Vec<String> = ids.iter().filter(|&id| !versions.contains_key(id)).cloned().collect();
    let mut revised: BTreeSet<String> = BTreeSet::new();
    for chunk in unseen.chunks(1000) {
        revised.extend(
            measure_revision::Entity::find()
                .filter(measure_revision::Column::MeasureId.is_in(chunk.iter().cloned()))
                .all(conn)
                .await?
                .into_iter()
                .map(|r| r.measure_id),
        );
    }
    for row in &current {
        if !versions.contains_key(&row.id) && !revised.contains(&row.id) && row.updated_at <= at {
            versions.insert(row.id.clone(), MeasureRecord::try_from(row)?);
        }
    }
    let mut measures: Vec<Arc<MeasureFact>> = versions.into_values().map(Arc::new).collect();
    measures.sort_by(|a, b| a.id.cmp(&b.id));
    let present: Vec<String> = measures.iter().map(|m| m.id.clone()).collect();
    snapshot.measures = measures;
    let mut commitments: CommitmentsByMeasure = HashMap::new();
    for chunk in present.chunks(1000) {
        let rows = commitment::Entity::find()
            .filter(commitment::Column::MeasureId.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?;
        let cids: Vec<String> = rows.iter().map(|c| c.id.clone()).collect();
        let mut at_time: HashMap<String, Option<CommitmentRecord>> = HashMap::new();
        for rev in commitment_revision::Entity::find()
            .filter(commitment_revision::Column::CommitmentId.is_in(cids))
            .order_by_asc(commitment_revision::Column::Version)
            .all(conn)
            .await?
        {
            let slot = at_time.entry(rev.commitment_id.clone()).or_insert(None);
            if rev.recorded_at <= at {
                *slot = Some(serde_json::from_str(&rev.snapshot).map_err(|e| {
                    ApiError::Internal(format!("commitment revision {} unreadable: {e}", rev.commitment_id).into())
                })?);
            }
        }
        for row in rows {
            let record = match at_time.remove(&row.id) {
                Some(version) => version,
                None if row.updated_at <= at => Some(CommitmentRecord::try_from(&row)?),
                None => None,
            };
            if let Some(record) = record {
                let (fact, record) = commitment_fact_of(record);
                snapshot.commitments.extend(fact);
                commitments.entry(record.measure_id.clone()).or_default().push(record);
            }
        }
    }
    sort_commitments(&mut snapshot, &mut commitments);
    snapshot.envelopes = Arc::new(notified_envelopes(conn, region).await?);
    let departements: Vec<String> = catalog.departements_of_region(region).map(|d| d.code.clone()).collect();
    snapshot.needs = Arc::new(needs_as_of(conn, departements, at).await?);
    snapshot.steering = Arc::new(steering_facts(conn, region, at, Some(at)).await?);
    Ok(RegionData { snapshot, commitments })
}

/// Each département's needs as the submissions received by `at` left them: per (département, reference date), the
/// rows of the latest submission received by then (kept in the table or, once replaced, in the revisions).
async fn needs_as_of<C: ConnectionTrait>(
    conn: &C,
    departements: Vec<String>,
    at: DateTime<Utc>,
) -> Result<Vec<NeedsFact>, ApiError> {
    type Row = (String, chrono::NaiveDate, String, String, i64, chrono::DateTime<chrono::FixedOffset>, String);
    // The same columns from the table (the current pictures) and from the revisions (the replaced ones).
    use needs_indicator::Column as Current;
    use needs_indicator_revision::Column as Revised;
    use sea_orm::QuerySelect;
    let mut rows: Vec<Row> = needs_indicator::Entity::find()
        .select_only()
        .columns([
            Current::DepartementCode,
            Current::ReferenceDate,
            Current::OrientationCode,
            Current::Indicator,
            Current::Value,
            Current::RecordedAt,
            Current::SubmissionId,
        ])
        .filter(Current::DepartementCode.is_in(departements.clone()))
        .filter(Current::RecordedAt.lte(at))
        .into_tuple()
        .all(conn)
        .await?;
    let revised: Vec<Row> = needs_indicator_revision::Entity::find()
        .select_only()
        .columns([
            Revised::DepartementCode,
            Revised::ReferenceDate,
            Revised::OrientationCode,
            Revised::Indicator,
            Revised::Value,
            Revised::RecordedAt,
            Revised::SubmissionId,
        ])
        .filter(Revised::DepartementCode.is_in(departements))
        .filter(Revised::RecordedAt.lte(at))
        .into_tuple()
        .all(conn)
        .await?;
    rows.extend(revised);
    // The picture of a (département, date) is its latest submission's.
    let mut latest_submission: HashMap<(String, chrono::NaiveDate), (chrono::DateTime<chrono::FixedOffset>, String)> =
        HashMap::new();
    for row in &rows {
        let entry = latest_submission.entry((row.0.clone(), row.1)).or_insert((row.5, row.6.clone()));
        if (row.5, &row.6) > (entry.0, &entry.1) {
            *entry = (row.5, row.6.clone());
        }
    }
    let mut latest_date: HashMap<&str, chrono::NaiveDate> = HashMap::new();
    for (departement, date) in latest_submission.keys() {
        let d = latest_date.entry(departement.as_str()).or_insert(*date);
        *d = (*d).max(*date);
    }
    let mut cells: BTreeMap<(String, String, NeedsIndicatorKind), i64> = BTreeMap::new();
    for row in &rows {
        let current = latest_submission.get(&(row.0.clone(), row.1)).is_some_and(|(_, s)| *s == row.6);
        if !current || latest_date.get(row.0.as_str()) != Some(&row.1) {
            continue;
        }
        let indicator = stored(NeedsIndicatorKind::from_stored(&row.3), "needs indicator", &row.3)?;
        *cells.entry((row.0.clone(), row.2.clone(), indicator)).or_default() += row.4;
    }
    Ok(cells
        .into_iter()
        .map(|((departement, orientation, indicator), people)| NeedsFact {
            departement,
            orientation,
            indicator,
            people,
        })
        .collect())
}

/// Each département's latest picture (its most recent reference date), summed over age bands.
async fn latest_needs<C: ConnectionTrait>(conn: &C, departements: Vec<String>) -> Result<Vec<NeedsFact>, ApiError> {
    let rows = needs_indicator::Entity::find()
        .filter(needs_indicator::Column::DepartementCode.is_in(departements))
        .all(conn)
        .await?;
    let mut latest: HashMap<&str, chrono::NaiveDate> = HashMap::new();
    for row in &rows {
        let date = latest.entry(row.departement_code.as_str()).or_insert(row.reference_date);
        *date = (*date).max(row.reference_date);
    }
    let mut cells: BTreeMap<(String, String, NeedsIndicatorKind), i64> = BTreeMap::new();
    for row in rows.iter().filter(|r| latest.get(r.departement_code.as_str()) == Some(&r.reference_date)) {
        let indicator = stored(NeedsIndicatorKind::from_stored(&row.indicator), "needs indicator", &row.indicator)?;
        *cells.entry((row.departement_code.clone(), row.orientation_code.clone(), indicator)).or_default() += row.value;
    }
    Ok(cells
        .into_iter()
        .map(|((departement, orientation, indicator), people)| NeedsFact {
            departement,
            orientation,
            indicator,
            people,
        })
        .collect())
}

/// For every campaign, the institutions of the region it expects and when each first submitted for it.
async fn campaign_standings<C: ConnectionTrait>(
    conn: &C,
    catalog: &Catalog,
    region: &str,
) -> Result<Vec<CampaignStandingFact>, ApiError> {
    let campaigns = campaign::Entity::find().all(conn).await?;
    if campaigns.is_empty() {
        return Ok(Vec::new());
    }
    let mut expected: Vec<(InstitutionKind, &entities::institution::Model, Scope)> = Vec::new();
    for institution in &catalog.institutions {
        let Some(kind) = InstitutionKind::from_stored(&institution.kind) else { continue };
        let Some(scope) = Scope::of_institution(kind, institution.territory_code.as_deref(), catalog) else {
            continue;
        };
        if scope.region_codes.iter().any(|r| r == region) {
            expected.push((kind, institution, scope));
        }
    }
    let codes: Vec<String> = expected.iter().map(|(_, i, _)| i.code.clone()).collect();
    let mut first: HashMap<(String, String), DateTime<Utc>> = HashMap::new();
    for s in submission::Entity::find()
        .filter(submission::Column::CampaignId.is_in(campaigns.iter().map(|c| c.id.clone())))
        .filter(submission::Column::InstitutionCode.is_in(codes))
        .all(conn)
        .await?
    {
        let Some(campaign_id) = s.campaign_id else { continue };
        let at = s.received_at.with_timezone(&Utc);
        let entry = first.entry((campaign_id, s.institution_code)).or_insert(at);
        *entry = (*entry).min(at);
    }
    let mut standings = Vec::new();
    for c in &campaigns {
        let kind = stored(DataKind::from_stored(&c.data_kind), "data kind", &c.data_kind)?;
        for (institution_kind, institution, scope) in &expected {
            if *institution_kind != kind.expected_from() {
                continue;
            }
            standings.push(CampaignStandingFact {
                campaign_id: c.id.clone(),
                campaign_name: c.name.clone(),
                deadline: c.deadline,
                deadline_end: crate::calendar::deadline_end(c.deadline).with_timezone(&Utc),
                institution_code: institution.code.clone(),
                institution_name: institution.name.clone(),
                region: region.to_owned(),
                departements: if scope.departement_codes.is_empty() {
                    catalog.departements_of_region(region).map(|d| d.code.clone()).collect()
                } else {
                    scope.departement_codes.clone()
                },
                first_submission: first.get(&(c.id.clone(), institution.code.clone())).copied(),
            });
        }
    }
    standings.sort_by(|a, b| (&a.campaign_id, &a.institution_code).cmp(&(&b.campaign_id, &b.institution_code)));
    Ok(standings)
}

/// Several regions' snapshots as one (the national snapshot, when it holds all of them and the annex).
pub fn merge(parts: impl IntoIterator<Item = Snapshot>) -> Snapshot {
    let mut merged = Snapshot::default();
    let mut seen_rules = false;
    let mut campaigns_seen: BTreeSet<(String, String)> = BTreeSet::new();
    for part in parts {
        if !seen_rules {
            merged.rules = part.rules;
            merged.legacy_categories = part.legacy_categories;
            merged.territory = part.territory;
            merged.now = part.now;
            merged.targets = part.targets;
            seen_rules = true;
        }
        merged.measures.extend(part.measures);
        merged.commitments.extend(part.commitments);
        Arc::make_mut(&mut merged.envelopes).extend(Arc::unwrap_or_clone(part.envelopes));
        Arc::make_mut(&mut merged.school_plans).extend(Arc::unwrap_or_clone(part.school_plans));
        Arc::make_mut(&mut merged.needs).extend(Arc::unwrap_or_clone(part.needs));
        for c in Arc::unwrap_or_clone(part.campaigns) {
            // An institution spanning two regions (none today) would appear in both.
            if campaigns_seen.insert((c.campaign_id.clone(), c.institution_code.clone())) {
                Arc::make_mut(&mut merged.campaigns).push(c);
            }
        }
    }
    merged
}
