//! The national steering committee's pack (circular §5: a committee every six months follows the solutions created
//! by public and type of structure, and the consumption of credits): per region, then for the country as the sum
//! of the regions, the solutions programmed and installed, AE notified / programmed / committed / installed, CP
//! called, the credits against the CNSA's trajectory, CP against drawing rights and forecasts, the co-financing
//! statuses, needs coverage (masked as elsewhere), the steering findings and the open escalations.
//!
//! The pack is always computed from the revisions as of an instant (`reconciled::snapshot::load_region_as_of`,
//! then the pure engine), the present included: a pack asked today for a past date is the pack that date would
//! have given, and two packs six months apart compare figure by figure.

use std::collections::BTreeMap;

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Datelike, Utc};
use entities::escalation;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::Principal;
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::money::Euros;
use crate::reconciled::credits::{CreditYearRow, DrawingYearRow};
use crate::reconciled::engine::coverage::{Cell, DEFAULT_THRESHOLD, MaskingThreshold, People};
use crate::reconciled::engine::{self, CoFinancingStatus, Severity, Snapshot};
use crate::reconciled::snapshot::load_region_as_of;
use crate::territory::service::Catalog;
use crate::vocabulary::{Compartment, MeasureStatus, Payer};

/// The findings of national steering the pack lists (the others are in the reconciliation).
pub const STEERING_CODES: [&str; 7] = [
    "TRAJECTORY_AE_AHEAD",
    "TRAJECTORY_AE_BEHIND",
    "TRAJECTORY_CP_AHEAD",
    "TRAJECTORY_CP_BEHIND",
    "CP_EXCEEDS_DRAWING_RIGHTS",
    "FORECAST_CHANGED_AFTER_DEADLINE",
    "CP_EXCEEDS_AVAILABLE_AE",
];

/// The pack's code for the country's rows.
pub const NATIONAL: &str = "FR";

/// An envelope's credits: a region's, or the country's (`regionCode` "FR", the sum of the regions).
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct PackEnvelope {
    pub region_code: String,
    pub compartment: Compartment,
    /// AE notified in the annex.
    pub notified: Euros,
    /// Assurance-maladie AE (full year) on the measures programmed (abandoned ones aside).
    pub programmed: Euros,
    /// Of which on measures authorised or installed (legally committed).
    pub committed: Euros,
    /// Of which on measures installed.
    pub installed: Euros,
    /// CP called up to the end of the pack's year.
    pub cp_called: Euros,
}

/// Solutions by region, type of structure (category) and public(s).
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct PackSolutions {
    pub region_code: String,
    pub category_code: String,
    /// The measure's publics, joined with "+" ("ADULTES", "ENFANTS+TND"): each measure counts once.
    pub publics: String,
    pub measures: i64,
    pub solutions: i64,
    pub installed_solutions: i64,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct PackStatusCount {
    pub region_code: String,
    pub status: CoFinancingStatus,
    pub count: i64,
}

/// Needs coverage of a département and type of structure: people without a solution as the reader may see them.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct PackCoverage {
    pub region_code: String,
    pub departement_code: String,
    pub category_code: Option<String>,
    /// Waiting + Creton: exact for the CNSA, masked below the threshold for others ("<11", "30 + <11").
    pub people: String,
    pub programmed_solutions: i64,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct PackFinding {
    pub region_code: String,
    pub code: String,
    pub severity: Severity,
    pub subject: String,
    pub message: String,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct PackEscalations {
    pub region_code: String,
    /// Escalations open at the pack's instant (opened by then, not yet resolved or withdrawn).
    pub open: i64,
}

/// The committee's pack as of an instant.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct SteeringReport {
    pub as_of: DateTime<Utc>,
    pub regions: Vec<String>,
    /// Per region × compartment, then the country's rows ("FR": the sum of the regions' rows).
    pub envelopes: Vec<PackEnvelope>,
    pub solutions: Vec<PackSolutions>,
    pub credits: Vec<CreditYearRow>,
    pub drawing: Vec<DrawingYearRow>,
    pub statuses: Vec<PackStatusCount>,
    pub needs_coverage: Vec<PackCoverage>,
    pub findings: Vec<PackFinding>,
    pub open_escalations: Vec<PackEscalations>,
}

/// What one region's as-of snapshot and report give the pack (pure: unit-tested with hand-computed figures).
pub fn region_pack(
    region: &str,
    snapshot: &Snapshot,
    report: &engine::Report,
    unmasked: bool,
    threshold: i64,
    pack: &mut SteeringReport,
) {
    let year = snapshot.now.year();
    let mut envelopes: BTreeMap<Compartment, PackEnvelope> = BTreeMap::new();
    for ((_, compartment), notified) in snapshot.envelopes.iter().filter(|((r, _), _)| r == region) {
        envelopes.entry(*compartment).or_insert_with(|| empty_envelope(region, *compartment)).notified =
            Euros(*notified);
    }
    let mut solutions: BTreeMap<(String, String), PackSolutions> = BTreeMap::new();
    let mut assurance_maladie: std::collections::HashMap<&str, Vec<&engine::CommitmentFact>> = Default::default();
    for c in snapshot.commitments.iter().filter(|c| c.funder == Payer::AssuranceMaladie) {
        assurance_maladie.entry(c.measure_id.as_str()).or_default().push(c);
    }
    for measure in snapshot.measures.iter().filter(|m| m.status != MeasureStatus::Abandonnee) {
        let installed = measure.status == MeasureStatus::Installee;
        let committed = installed || measure.status == MeasureStatus::Autorisee;
        let envelope = envelopes
            .entry(measure.compartment.envelope())
            .or_insert_with(|| empty_envelope(region, measure.compartment.envelope()));
        for c in assurance_maladie.get(measure.id.as_str()).map_or(&[][..], Vec::as_slice) {
            envelope.programmed.0 += c.full_year_cents;
            if committed {
                envelope.committed.0 += c.full_year_cents;
            }
            if installed {
                envelope.installed.0 += c.full_year_cents;
            }
            envelope.cp_called.0 += c.schedule.iter().filter(|(y, _)| *y <= year).map(|(_, cents)| cents).sum::<i64>();
        }
        let publics = measure.publics.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("+");
        let row = solutions.entry((measure.category_code.clone(), publics.clone())).or_insert_with(|| PackSolutions {
            region_code: region.to_owned(),
            category_code: measure.category_code.clone(),
            publics,
            measures: 0,
            solutions: 0,
            installed_solutions: 0,
        });
        row.measures += 1;
        row.solutions += measure.solutions;
        if installed {
            row.installed_solutions += measure.solutions;
        }
    }
    pack.envelopes.extend(envelopes.into_values());
    pack.solutions.extend(solutions.into_values());
    pack.credits.extend(report.credits.iter().map(CreditYearRow::from));
    pack.drawing.extend(report.drawing.iter().map(DrawingYearRow::from));
    let mut statuses: BTreeMap<CoFinancingStatus, i64> = BTreeMap::new();
    for status in &report.statuses {
        *statuses.entry(status.status).or_default() += 1;
    }
    pack.statuses.extend(statuses.into_iter().map(|(status, count)| PackStatusCount {
        region_code: region.to_owned(),
        status,
        count,
    }));
    pack.needs_coverage.extend(report.needs_coverage.iter().map(|row| {
        let people = if unmasked {
            People::exact(row.waiting, row.creton)
        } else {
            People { waiting: Cell::of(row.waiting, threshold), creton: Cell::of(row.creton, threshold) }
        };
        PackCoverage {
            region_code: row.region.clone(),
            departement_code: row.departement.clone(),
            category_code: row.category.clone(),
            people: people.display_sum(threshold),
            programmed_solutions: row.programmed,
        }
    }));
    pack.findings.extend(report.findings.iter().filter(|f| STEERING_CODES.contains(&f.code)).map(|f| PackFinding {
        region_code: f.region.clone(),
        code: f.code.to_owned(),
        severity: f.severity,
        subject: f.subject.clone(),
        message: f.message.clone(),
    }));
}

fn empty_envelope(region: &str, compartment: Compartment) -> PackEnvelope {
    PackEnvelope {
        region_code: region.to_owned(),
        compartment,
        notified: Euros(0),
        programmed: Euros(0),
        committed: Euros(0),
        installed: Euros(0),
        cp_called: Euros(0),
    }
}

/// The country's envelope rows: the sum of the regions' rows, compartment by compartment.
pub fn national_envelopes(regional: &[PackEnvelope]) -> Vec<PackEnvelope> {
    let mut national: BTreeMap<Compartment, PackEnvelope> = BTreeMap::new();
    for row in regional {
        let total = national.entry(row.compartment).or_insert_with(|| empty_envelope(NATIONAL, row.compartment));
        total.notified.0 += row.notified.0;
        total.programmed.0 += row.programmed.0;
        total.committed.0 += row.committed.0;
        total.installed.0 += row.installed.0;
        total.cp_called.0 += row.cp_called.0;
    }
    national.into_values().collect()
}

/// The regions a principal's pack covers: every region for the CNSA, its own for an ARS; `region` narrows it.
pub fn regions_of(
    principal: &Principal,
    reach: Reach,
    catalog: &Catalog,
    region: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    let all: Vec<String> = catalog
        .regions
        .iter()
        .map(|r| r.code.clone())
        .filter(|code| reach == Reach::Everything || principal.scope.covers_region(code))
        .collect();
    match region {
        None => Ok(all),
        Some(code) if catalog.region(code).is_none() => {
            Err(ApiError::BadUserInput(format!("région « {code} » inconnue")))
        }
        Some(code) if !all.iter().any(|r| r == code) => {
            Err(ApiError::Forbidden(format!("la région {code} n'est pas dans votre territoire")))
        }
        Some(code) => Ok(vec![code.to_owned()]),
    }
}

/// Builds the pack as of `at` for the given regions (the caller's, checked by `regions_of`).
pub async fn build<C: ConnectionTrait>(
    conn: &C,
    catalog: &Catalog,
    territory: std::sync::Arc<engine::Territory>,
    regions: Vec<String>,
    at: DateTime<Utc>,
    unmasked: bool,
    threshold: i64,
) -> Result<SteeringReport, ApiError> {
    if at > Utc::now() + chrono::Duration::minutes(1) {
        return Err(ApiError::BadUserInput(
            "asOf est dans le futur : le dossier se calcule sur ce qui est déjà reçu".into(),
        ));
    }
    let mut pack = SteeringReport {
        as_of: at,
        regions: regions.clone(),
        envelopes: Vec::new(),
        solutions: Vec::new(),
        credits: Vec::new(),
        drawing: Vec::new(),
        statuses: Vec::new(),
        needs_coverage: Vec::new(),
        findings: Vec::new(),
        open_escalations: Vec::new(),
    };
    for region in &regions {
        let data = load_region_as_of(conn, catalog, territory.clone(), region, at).await?;
        let report = engine::reconcile(&data.snapshot);
        region_pack(region, &data.snapshot, &report, unmasked, threshold, &mut pack);
    }
    if regions.len() > 1 {
        let national = national_envelopes(&pack.envelopes);
        pack.envelopes.extend(national);
    }
    // Open at `at`: opened by then, and not closed by then.
    let open = escalation::Entity::find()
        .filter(escalation::Column::RegionCode.is_in(regions.clone()))
        .filter(escalation::Column::CreatedAt.lte(at))
        .filter(Condition::any().add(escalation::Column::ClosedAt.is_null()).add(escalation::Column::ClosedAt.gt(at)))
        .all(conn)
        .await?;
    for region in &regions {
        let count = open.iter().filter(|e| &e.region_code == region).count() as i64;
        pack.open_escalations.push(PackEscalations { region_code: region.clone(), open: count });
    }
    Ok(pack)
}

#[derive(Default)]
pub struct SteeringReportQuery;

#[Object]
impl SteeringReportQuery {
    /// The national steering committee's pack as of `asOf` (default: now), computed from the revisions: for the
    /// CNSA every region and the country; for an ARS its region. Counts of people are masked as elsewhere.
    async fn steering_report(
        &self,
        ctx: &Context<'_>,
        as_of: Option<DateTime<Utc>>,
        region_code: Option<String>,
    ) -> ApiResult<SteeringReport> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::SteeringReport, Action::Read)?;
        let reconciled = crate::reconciled::reconciled(ctx)?;
        let regions = regions_of(principal, reach, reconciled.catalog(), region_code.as_deref())?;
        let threshold = ctx.data_opt::<MaskingThreshold>().map_or(DEFAULT_THRESHOLD, |t| t.0);
        let unmasked = principal.scope.is_national() && reach == Reach::Everything;
        Ok(build(
            db(ctx)?,
            reconciled.catalog(),
            reconciled.territory(),
            regions,
            as_of.unwrap_or_else(Utc::now),
            unmasked,
            threshold,
        )
        .await?)
    }
}
