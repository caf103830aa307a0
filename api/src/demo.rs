//! `cnh-hub demo [--scale N]`: a deterministic, realistic synthetic national programming, so that a newcomer, a
//! dashboard or a benchmark sees the hub at work. All 18 regions, about 5 000 measures (× N) spread by each region's
//! annex envelope, their ARS and collectivité commitments, needs for every département, school plans for every
//! académie; within the envelopes for most regions, with a realistic share of disagreements of every kind (capacity,
//! year, share, component, unexpected or missing co-financer, duplicates, CP called early, an envelope passed).
//!
//! The same seed gives the same data on every machine. The data is stored directly (one transaction), recorded as one
//! submission and one audit record of the operator, then every region is reconciled as a write would.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use entities::{commitment, measure, needs_indicator, school_plan, submission};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait, TransactionTrait};

use crate::error::ApiError;
use crate::kernel::audit_log::{self as audit, Actor, AuditEntry};
use crate::kernel::write::begin_transaction;
use crate::reconciled::live::Reconciled;
use crate::records::YearAmount;
use crate::territory::service::Catalog;
use crate::vocabulary::{Compartment, NeedsIndicatorKind};

/// Measures per unit of scale, nationally.
pub const MEASURES_PER_SCALE: usize = 5_000;

/// splitmix64: small, fast, and the same everywhere (the demo data, the generated documents of the tests).
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }

    /// True with a probability of `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What was loaded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DemoReport {
    pub measures: usize,
    pub commitments: usize,
    pub needs_indicators: usize,
    pub school_plans: usize,
}

struct Plan {
    measures: Vec<measure::ActiveModel>,
    commitments: Vec<commitment::ActiveModel>,
    needs: Vec<needs_indicator::ActiveModel>,
    school_plans: Vec<school_plan::ActiveModel>,
}

/// Categories by compartment, with the component each funder commits on ("" = no collectivité part).
const CHILDREN: &[&str] = &["183", "186", "182", "188", "192", "182", "183"];
const ASE: &[&str] = &["183", "186", "182"];
const ADULTS: &[&str] = &["255", "448", "448", "445", "246", "449", "446", "255"];
const EARLY: &[&str] = &["190", "190", "PCO"];
const SCHOOL: &[&str] = &["PAS", "UEE", "EQUIPE_MOBILE", "PAS"];

/// How the two funders split a category: (assurance-maladie component, collectivité component).
fn split(category: &str) -> (Option<&'static str>, Option<&'static str>) {
    match category {
        "448" => (Some("SOINS"), Some("HEBERGEMENT")),
        "445" => (Some("SOINS"), Some("ACCOMPAGNEMENT")),
        "190" => (Some("GLOBAL"), Some("GLOBAL")),
        "449" | "446" => (None, Some("GLOBAL")),
        "PCO" | "PAS" | "UEE" | "EQUIPE_MOBILE" => (Some("MEDICO_SOCIAL"), None),
        _ => (Some("GLOBAL"), None),
    }
}

fn schedule(full_year: i64, installation: NaiveDate, early: bool) -> String {
    let mut years = Vec::new();
    let first = installation.year();
    // The first year pays the months after installation; CP "called early" pays a year before it.
    if early {
        years.push((first - 1, full_year / 4));
    }
    let months = 13 - installation.month() as i64;
    years.push((first, full_year * months / 12));
    for year in first + 1..=2030 {
        years.push((year, full_year));
    }
    let items: Vec<YearAmount> =
        years.into_iter().map(|(year, cents)| YearAmount { year, amount: crate::money::Euros(cents) }).collect();
    serde_json::to_string(&items).unwrap_or_default()
}

fn plan(catalog: &Catalog, envelopes: &BTreeMap<(String, Compartment), i64>, scale: usize) -> Plan {
    let mut rng = Rng(2_023_176);
    let now = audit::now_micros();
    let total: i64 = envelopes.values().sum();
    let mut plan = Plan { measures: Vec::new(), commitments: Vec::new(), needs: Vec::new(), school_plans: Vec::new() };
    let mut serial = 0usize;
    for region in &catalog.regions {
        let departements: Vec<&str> = catalog.departements_of_region(&region.code).map(|d| d.code.as_str()).collect();
        // One region in six goes a little over its socle envelope: the ceiling finding must have something to say.
        let over = rng.chance(170);
        for (compartment, share_of_socle) in [
            ("SOCLE_ENFANTS", 3_560),
            ("SOCLE_ASE", 500),
            ("SOCLE_ADULTES", 5_940),
            ("PRECOCE", 10_000),
            ("ECOLE", 10_000),
        ] {
            let envelope_kind = match compartment {
                "PRECOCE" => Compartment::Precoce,
                "ECOLE" => Compartment::Ecole,
                _ => Compartment::Socle,
            };
            let notified = envelopes.get(&(region.code.clone(), envelope_kind)).copied().unwrap_or_default();
            let budget = notified * share_of_socle / 10_000;
            let count = ((MEASURES_PER_SCALE * scale) as i64 * budget / total.max(1)).max(1) as usize;
            // Programmed to 82-96 % of the envelope (some measures are abandoned or not yet committed), or 110 % for a
            // region going over.
            let fill = if over && envelope_kind == Compartment::Socle { 11_000 } else { rng.range(8_200, 9_600) };
            let categories = match compartment {
                "SOCLE_ENFANTS" => CHILDREN,
                "SOCLE_ASE" => ASE,
                "SOCLE_ADULTES" => ADULTS,
                "PRECOCE" => EARLY,
                _ => SCHOOL,
            };
            // Only categories with an assurance-maladie part consume the envelope (CAMSP: 80 % of the cost).
            let consuming: i64 = categories
                .iter()
                .map(|c| match split(c) {
                    (None, _) => 0,
                    _ if *c == "190" => 80,
                    _ => 100,
                })
                .sum();
            let per_measure = budget * fill / 10_000 * 100 * categories.len() as i64 / consuming.max(1) / count as i64;
            for _ in 0..count {
                serial += 1;
                let departement = (*rng.pick(&departements)).to_owned();
                let category = (*rng.pick(categories)).to_owned();
                let solutions = rng.range(4, 40);
                let installation = NaiveDate::from_ymd_opt(rng.range(2024, 2030) as i32, rng.range(1, 12) as u32, 1)
                    .unwrap_or_default();
                let status = match rng.below(100) {
                    0..=2 => "ABANDONNEE",
                    3..=24 if installation.year() <= 2026 => "INSTALLEE",
                    25..=54 => "AUTORISEE",
                    _ => "PROGRAMMEE",
                };
                let publics = match compartment {
                    "SOCLE_ASE" => "ENFANTS,ASE",
                    "SOCLE_ADULTES" if rng.chance(80) => "ADULTES,CRETON",
                    "SOCLE_ADULTES" => "ADULTES",
                    _ => "ENFANTS",
                };
                let id = uuid::Uuid::from_u64_pair(0xC44D_2023, serial as u64).to_string();
                let reference = format!("DEMO-{}-{serial:06}", region.code);
                let duplicate = rng.chance(8);
                let mut measures = vec![(id.clone(), reference.clone())];
                if duplicate {
                    serial += 1;
                    measures.push((
                        uuid::Uuid::from_u64_pair(0xC44D_2023, serial as u64).to_string(),
                        format!("DEMO-{}-{serial:06}", region.code),
                    ));
                }
                for (id, reference) in &measures {
                    plan.measures.push(measure::ActiveModel {
                        id: Set(id.clone()),
                        region_code: Set(region.code.clone()),
                        departement_code: Set(departement.clone()),
                        reference: Set(reference.clone()),
                        label: Set(format!("{} {category} — {departement}", compartment.to_lowercase())),
                        finess: Set(None),
                        commune_code: Set(None),
                        expected_cofinancer_code: Set(None),
                        category_code: Set(category.clone()),
                        publics: Set(publics.to_owned()),
                        solutions: Set(solutions),
                        unit: Set(if category.len() == 3 { "PLACES_INSTALLEES" } else { "FILE_ACTIVE" }.to_owned()),
                        nature: Set(if rng.chance(300) { "TRANSFORMATION" } else { "CREATION" }.to_owned()),
                        procedure: Set((*rng.pick(&["APPEL_A_PROJETS", "EXTENSION", "CPOM"])).to_owned()),
                        compartment: Set(compartment.to_owned()),
                        planned_installation: Set(installation),
                        status: Set(status.to_owned()),
                        version: Set(1),
                        created_at: Set(now),
                        updated_at: Set(now),
                        updated_by: Set("demo".to_owned()),
                    });
                }
                let cost = per_measure * rng.range(70, 130) / 100;
                let cofinancer = catalog.cofinancers_of_departement(&departement).next().map(|c| c.code.clone());
                let (am_component, cd_component) = split(&category);
                let mut commit = |funder: &str,
                                  code: &str,
                                  component: &str,
                                  cents: i64,
                                  capacity: i64,
                                  installation: NaiveDate,
                                  early: bool,
                                  n: usize| {
                    plan.commitments.push(commitment::ActiveModel {
                        id: Set(uuid::Uuid::from_u64_pair(0xC002_2023, (serial * 4 + n) as u64).to_string()),
                        measure_id: Set(id.clone()),
                        funder: Set(funder.to_owned()),
                        funder_code: Set(code.to_owned()),
                        cost_component: Set(component.to_owned()),
                        full_year_amount_cents: Set(cents),
                        schedule: Set(schedule(cents, installation, early)),
                        decision_ref: Set(format!("Décision {code} n° {serial}")),
                        capacity: Set(capacity),
                        installation_date: Set(installation),
                        status: Set("ACTIVE".to_owned()),
                        withdrawal_reason: Set(None),
                        version: Set(1),
                        created_at: Set(now),
                        updated_at: Set(now),
                        updated_by: Set("demo".to_owned()),
                    });
                };
                let ars = format!("ARS-{}", region.code);
                // The ARS has not committed yet on one programmed measure in twelve.
                let ars_commits = status != "PROGRAMMEE" || !rng.chance(80);
                match am_component {
                    Some(component) if ars_commits => {
                        let early = rng.chance(20);
                        let share = if category == "190" { 8_000 } else { 10_000 };
                        commit(
                            "ASSURANCE_MALADIE",
                            &ars,
                            component,
                            cost * share / 10_000,
                            solutions,
                            installation,
                            early,
                            0,
                        )
                    }
                    None if rng.chance(30) => {
                        // An ARS mistakenly funding a collectivité-only structure.
                        commit("ASSURANCE_MALADIE", &ars, "GLOBAL", cost / 3, solutions, installation, false, 0)
                    }
                    _ => {}
                }
                let Some(cd) = cofinancer else { continue };
                let (component, expected) = match cd_component {
                    Some(component) => (component, true),
                    None => ("GLOBAL", false),
                };
                // Joint structures: the collectivité has committed on four in five; sometimes with another view.
                let cd_commits = if expected { rng.chance(800) } else { rng.chance(15) };
                if cd_commits {
                    let (mut capacity, mut year, mut cents) = (solutions, installation, cost * 2 / 3);
                    let mut component = component;
                    match rng.below(100) {
                        0..=5 => capacity = (solutions - rng.range(1, 5)).max(1),
                        6..=9 => year = installation.with_year(installation.year() + 1).unwrap_or(installation),
                        10..=12 if category == "190" => cents = cost * 35 / 100,
                        13..=14 if component == "HEBERGEMENT" => component = "SOINS",
                        _ => {}
                    }
                    if category == "190" && cents == cost * 2 / 3 {
                        cents = cost * 2_000 / 10_000;
                    }
                    commit("COLLECTIVITE", &cd, component, cents, capacity, year, false, 1);
                }
            }
        }
    }
    needs_and_school_plans(catalog, &mut rng, scale, &mut plan);
    plan
}

fn needs_and_school_plans(catalog: &Catalog, rng: &mut Rng, scale: usize, plan: &mut Plan) {
    let now = audit::now_micros();
    let reference_date = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default();
    for d in &catalog.departements {
        for o in &catalog.orientations {
            let adult = o.public != "ENFANTS";
            for (indicator, low, high) in [
                (NeedsIndicatorKind::OrientationsValides, 50, 900),
                (NeedsIndicatorKind::EnAttenteAdmission, 0, 160),
                (NeedsIndicatorKind::AucuneDemarche, 0, 25),
                (NeedsIndicatorKind::AdultesCreton, 0, if adult { 30 } else { 0 }),
            ] {
                for band in ["0-19", "20-59", "60+"].iter().take(scale.clamp(1, 3)) {
                    let value = rng.range(low, high) * scale as i64;
                    plan.needs.push(needs_indicator::ActiveModel {
                        departement_code: Set(d.code.clone()),
                        orientation_code: Set(o.code.clone()),
                        age_band: Set((*band).to_owned()),
                        indicator: Set(indicator.as_str().to_owned()),
                        reference_date: Set(reference_date),
                        value: Set(value),
                        submission_id: Set(DEMO_SUBMISSION.to_owned()),
                        recorded_at: Set(now),
                        ..Default::default()
                    });
                }
            }
        }
    }
    let mut serial = 0;
    for a in &catalog.academies {
        let departements: Vec<&str> = catalog.departements_of_academie(&a.code).map(|d| d.code.as_str()).collect();
        for year in 2025..=2027 {
            for _ in 0..rng.range(2, 6) * scale as i64 {
                serial += 1;
                let departement = (*rng.pick(&departements)).to_owned();
                plan.school_plans.push(school_plan::ActiveModel {
                    id: Set(uuid::Uuid::from_u64_pair(0x5C02_2023, serial).to_string()),
                    academie_code: Set(a.code.clone()),
                    departement_code: Set(departement),
                    reference: Set(format!("DEMO-{}-{serial:05}", a.code.to_uppercase())),
                    kind: Set((*rng.pick(&["PAS", "UEE", "EQUIPE_MOBILE", "SESSAD_RENFORCE"])).to_owned()),
                    uai: Set(None),
                    finess: Set(None),
                    etp_education_nationale_hundredths: Set(rng.range(50, 400)),
                    etp_medico_social_hundredths: Set(rng.range(50, 300)),
                    medico_social_cost_cents: Set(rng.range(8_000_000, 30_000_000)),
                    year: Set(year),
                    version: Set(1),
                    submission_id: Set(DEMO_SUBMISSION.to_owned()),
                    updated_at: Set(now),
                });
            }
        }
    }
}

/// Two past campaigns, with most institutions on time, a few late and a few silent.
async fn campaigns(txn: &sea_orm::DatabaseTransaction, catalog: &Catalog, actor: &Actor) -> Result<(), ApiError> {
    let mut rng = Rng(31_052_024);
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    for (n, (name, kind, institution_kind, opens, deadline)) in [
        ("Programmation régionale 2024 (démonstration)", "MEASURES", "ARS", day(2024, 1, 1), day(2024, 5, 31)),
        ("Remontée des besoins MDPH 2026 (démonstration)", "NEEDS", "MDPH", day(2026, 6, 1), day(2026, 7, 15)),
        (
            "Prévision d'installations 2027 (démonstration)",
            "INSTALLATION_FORECAST",
            "ARS",
            day(2026, 4, 1),
            day(2026, 6, 30),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let id = uuid::Uuid::from_u64_pair(0xCA02_2023, n as u64).to_string();
        entities::campaign::Entity::insert(entities::campaign::ActiveModel {
            id: Set(id.clone()),
            name: Set(name.to_owned()),
            data_kind: Set(kind.to_owned()),
            opens_on: Set(opens),
            deadline: Set(deadline),
            closes_on: Set(None),
            created_at: Set(audit::now_micros()),
            created_by: Set(actor.institution_code.clone()),
        })
        .exec_without_returning(txn)
        .await?;
        for (i, institution) in catalog.institutions.iter().filter(|i| i.kind == institution_kind).enumerate() {
            let days_from_deadline = match rng.below(100) {
                0..=5 => continue, // nothing sent
                6..=13 => rng.range(1, 20),
                _ => -rng.range(0, 25),
            };
            let received = (deadline + chrono::Duration::days(days_from_deadline))
                .and_hms_opt(10, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .fixed_offset();
            submission::Entity::insert(submission::ActiveModel {
                id: Set(uuid::Uuid::from_u64_pair(0x5B02_2023 + n as u64, i as u64).to_string()),
                kind: Set(kind.to_owned()),
                institution_code: Set(institution.code.clone()),
                agent_id: Set(Some("demo".to_owned())),
                token_id: Set(None),
                campaign_id: Set(Some(id.clone())),
                content_hash: Set(crate::kernel::audit_chain::sha256_hex(institution.code.as_bytes())),
                accepted_count: Set(rng.range(5, 60)),
                channel: Set("FILE".to_owned()),
                received_at: Set(received),
                ..Default::default()
            })
            .exec_without_returning(txn)
            .await?;
        }
    }
    Ok(())
}

/// The CNSA's trajectory and drawing rights, and each ARS's forecast for 2027 (stabilised on 20 June 2026), taken
/// from the demo programming's own credits, with a few regions off course so that each steering finding shows:
/// a trajectory projecting more (behind) or less (ahead) than programmed, drawing rights below the CP called, a
/// forecast raised after its deadline.
async fn steering_figures(txn: &sea_orm::DatabaseTransaction, catalog: &Arc<Catalog>) -> Result<(), ApiError> {
    use entities::steering_figure;
    let territory = Arc::new(crate::reconciled::snapshot::territory(catalog));
    let now = chrono::Utc::now();
    let stabilised_on =
        NaiveDate::from_ymd_opt(2026, 6, 20).unwrap_or_default().and_hms_opt(10, 0, 0).unwrap_or_default();
    let mut rows = Vec::new();
    let row = |kind: &str,
               region: &str,
               compartment: Option<Compartment>,
               year: i32,
               figures: (Option<i64>, Option<i64>, Option<i64>),
               at: chrono::DateTime<chrono::FixedOffset>| steering_figure::ActiveModel {
        kind: Set(kind.to_owned()),
        region_code: Set(region.to_owned()),
        compartment: Set(compartment.map(|c| c.as_str().to_owned())),
        year: Set(year),
        ae_cents: Set(figures.0),
        cp_cents: Set(figures.1),
        solutions: Set(figures.2),
        submission_id: Set(DEMO_SUBMISSION.to_owned()),
        recorded_by: Set("CNSA".to_owned()),
        recorded_at: Set(at),
        ..Default::default()
    };
    let scaled = |cents: i64, percent: i64| cents * percent / 100;
    for (n, region) in catalog.regions.iter().enumerate() {
        // In the demo's transaction: it sees the programming just written.
        let data = crate::reconciled::snapshot::load_region(txn, catalog, territory.clone(), &region.code, now).await?;
        let report = crate::reconciled::engine::reconcile(&data.snapshot);
        let mut cp_of_year: BTreeMap<i32, i64> = BTreeMap::new();
        for credit in report.credits.iter().filter(|c| (2024..=2030).contains(&c.year)) {
            let ae = match (n % 6, credit.year) {
                (1, 2026) => scaled(credit.ae_programmed, 130),
                (4, 2025) => scaled(credit.ae_programmed, 75),
                _ => credit.ae_programmed,
            };
            let figures = (Some(ae), Some(credit.cp_called), None);
            rows.push(row(
                "TRAJECTORY",
                &region.code,
                Some(credit.compartment),
                credit.year,
                figures,
                now.fixed_offset(),
            ));
            *cp_of_year.entry(credit.year).or_default() += credit.cp_called;
        }
        for (year, cp) in &cp_of_year {
            let rights = if n % 7 == 3 && *year == 2026 { scaled(*cp, 90) } else { scaled(*cp, 105) };
            rows.push(row("DRAWING_RIGHTS", &region.code, None, *year, (None, Some(rights), None), now.fixed_offset()));
        }
        let mut solutions: BTreeMap<Compartment, i64> = BTreeMap::new();
        for m in data.snapshot.measures.iter().filter(|m| m.planned_installation.year() == 2027) {
            *solutions.entry(m.compartment.envelope()).or_default() += m.solutions;
        }
        for credit in report.credits.iter().filter(|c| c.year == 2027) {
            let count = solutions.get(&credit.compartment).copied().unwrap_or(0);
            let at = stabilised_on.and_utc().fixed_offset();
            let mut forecast = row(
                "INSTALLATION_FORECAST",
                &region.code,
                Some(credit.compartment),
                2027,
                (None, Some(credit.cp_called), Some(count)),
                at,
            );
            forecast.recorded_by = Set(format!("ARS-{}", region.code));
            rows.push(forecast.clone());
            if n % 5 == 2 && credit.compartment == Compartment::Socle {
                forecast.solutions = Set(Some(count * 130 / 100 + 1));
                forecast.recorded_at = Set(now.fixed_offset());
                rows.push(forecast);
            }
        }
    }
    insert_chunks(txn, rows, 500).await
}

/// Each measure's and commitment's first version in the revisions, as a write records it: a pack as of any later
/// date then finds them even once they have been edited.
fn first_revisions(
    measures: &[measure::ActiveModel],
    commitments: &[commitment::ActiveModel],
) -> Result<(Vec<entities::measure_revision::ActiveModel>, Vec<entities::commitment_revision::ActiveModel>), ApiError> {
    use sea_orm::TryIntoModel;
    let json = |e: serde_json::Error| ApiError::Internal(Box::new(e));
    let mut measure_revisions = Vec::with_capacity(measures.len());
    for m in measures {
        let record = crate::records::MeasureRecord::try_from(&m.clone().try_into_model()?)?;
        measure_revisions.push(entities::measure_revision::ActiveModel {
            measure_id: Set(record.id.clone()),
            version: Set(record.version),
            snapshot: Set(serde_json::to_string(&record).map_err(json)?),
            recorded_at: Set(record.updated_at),
            recorded_by: Set(record.updated_by.clone()),
            submission_id: Set(Some(DEMO_SUBMISSION.to_owned())),
        });
    }
    let mut commitment_revisions = Vec::with_capacity(commitments.len());
    for c in commitments {
        let record = crate::records::CommitmentRecord::try_from(&c.clone().try_into_model()?)?;
        commitment_revisions.push(entities::commitment_revision::ActiveModel {
            commitment_id: Set(record.id.clone()),
            version: Set(record.version),
            snapshot: Set(serde_json::to_string(&record).map_err(json)?),
            recorded_at: Set(record.updated_at),
            recorded_by: Set(record.updated_by.clone()),
        });
    }
    Ok((measure_revisions, commitment_revisions))
}

const DEMO_SUBMISSION: &str = "00000000-0000-0000-0000-00000000de70";

async fn insert_chunks<E, A>(txn: &sea_orm::DatabaseTransaction, rows: Vec<A>, per_chunk: usize) -> Result<(), ApiError>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send + Clone,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(per_chunk).collect();
        E::insert_many(chunk).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// Whether the store holds any measure (the demo data goes into an empty programming only).
pub async fn has_measures(db: &DatabaseConnection) -> Result<bool, ApiError> {
    use sea_orm::PaginatorTrait;
    Ok(measure::Entity::find().count(db).await? > 0)
}

/// Loads the demo data into an empty programming (refused if measures already exist: the demo never mixes with real
/// submissions), then reconciles every region.
pub async fn load(db: &DatabaseConnection, catalog: Arc<Catalog>, scale: usize) -> Result<DemoReport, ApiError> {
    use sea_orm::PaginatorTrait;
    if scale == 0 || scale > 100 {
        return Err(ApiError::BadUserInput("--scale doit être compris entre 1 et 100".into()));
    }
    if measure::Entity::find().count(db).await? > 0 {
        return Err(ApiError::BadUserInput(
            "la base contient déjà des mesures : les données de démonstration se chargent dans une base vide".into(),
        ));
    }
    let mut envelopes = BTreeMap::new();
    for row in entities::envelope_allocation::Entity::find().all(db).await? {
        if let Some(c) = Compartment::from_stored(&row.compartment) {
            envelopes.insert((row.region_code, c), row.notified_cents);
        }
    }
    let plan = plan(&catalog, &envelopes, scale);
    let report = DemoReport {
        measures: plan.measures.len(),
        commitments: plan.commitments.len(),
        needs_indicators: plan.needs.len(),
        school_plans: plan.school_plans.len(),
    };
    let txn = begin_transaction(db).await?;
    let actor = Actor { institution_code: "HUB".into(), agent_id: Some("cnh-hub demo".into()), token_id: None };
    submission::Entity::insert(submission::ActiveModel {
        id: Set(DEMO_SUBMISSION.to_owned()),
        kind: Set("DEMO".to_owned()),
        institution_code: Set(actor.institution_code.clone()),
        agent_id: Set(actor.agent_id.clone()),
        token_id: Set(None),
        campaign_id: Set(None),
        content_hash: Set(crate::kernel::audit_chain::sha256_hex(format!("demo scale {scale}").as_bytes())),
        accepted_count: Set(
            (report.measures + report.commitments + report.needs_indicators + report.school_plans) as i64
        ),
        channel: Set("CLI".to_owned()),
        received_at: Set(audit::now_micros()),
        ..Default::default()
    })
    .exec_without_returning(&txn)
    .await?;
    campaigns(&txn, &catalog, &actor).await?;
    let (measure_revisions, commitment_revisions) = first_revisions(&plan.measures, &plan.commitments)?;
    insert_chunks(&txn, plan.measures, 500).await?;
    insert_chunks(&txn, plan.commitments, 500).await?;
    insert_chunks(&txn, measure_revisions, 500).await?;
    insert_chunks(&txn, commitment_revisions, 500).await?;
    insert_chunks(&txn, plan.needs, 1_000).await?;
    insert_chunks(&txn, plan.school_plans, 500).await?;
    steering_figures(&txn, &catalog).await?;
    audit::append(
        &txn,
        &actor,
        &[AuditEntry {
            operation: "loadDemoData".into(),
            object_ids: vec![DEMO_SUBMISSION.to_owned()],
            content_hash: crate::kernel::audit_chain::sha256_hex(format!("{report:?}").as_bytes()),
        }],
    )
    .await?;
    txn.commit().await?;
    let reconciled = Reconciled::new(db.clone(), catalog.clone());
    for region in &catalog.regions {
        let txn = db.begin().await?;
        let recomputed = reconciled.recompute_in(&txn, &region.code, &Default::default()).await?;
        txn.commit().await?;
        reconciled.install(recomputed);
    }
    Ok(report)
}
