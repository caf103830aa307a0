//! Reconciliation: what disagrees between institutions, and why. The engine is pure (`engine`, one module per
//! family of checks; `coverage` and `hygiene` re-exported here); `service` loads a region's snapshot; `live` keeps
//! every region reconciled in memory, recomputes it in each write's transaction and pushes the changes; this module
//! shows it, each reader within its territory.
//!
//! Scoping: the state is held per region, so a reader's regions are looked up by key; inside a region, a reader of
//! one or a few départements (collectivité, MDPH, rectorat) gets only the items naming its départements.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Datelike, Utc};
use futures_util::{Stream, StreamExt};

use crate::access::filters::{TerritoryFilter, check_territory_filter};
use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::{Principal, Role, ScopeLevel};
use crate::error::{ApiError, ApiResult};
use crate::money::{Euros, basis_points_to_percent};
use crate::pagination::{ConnectionFields, page_size};
use crate::reconciled::engine::coverage::{Cell, People};
use crate::reconciled::engine::{self, coverage};
use crate::reconciled::engine::{CoFinancingStatus, FigureValue, Severity, SubjectKind};
use crate::reconciled::live::{Reconciled, RegionState, StatusChange};
use crate::reconciled::reconciled;
use crate::records::MeasureRecord;
use crate::territory::service::Catalog;
use crate::vocabulary::Compartment;

pub use crate::reconciled::engine::coverage::MaskingThreshold;

pub mod fast;

fn threshold(ctx: &Context<'_>) -> i64 {
    ctx.data_opt::<MaskingThreshold>().map_or(coverage::DEFAULT_THRESHOLD, |t| t.0)
}

/// What a reader sees of the reconciled state.
struct View<'a> {
    principal: &'a Principal,
    reach: Reach,
    departement: Option<String>,
}

impl View<'_> {
    fn whole_country(&self) -> bool {
        crate::access::filters::whole_country(self.principal, self.reach)
    }

    fn whole_regions(&self) -> bool {
        self.whole_country() || self.principal.scope.level == ScopeLevel::Region
    }

    /// Whether the reader sees every item of a region, whatever départements it names.
    fn sees_whole_region(&self, region: &str) -> bool {
        region != engine::NATIONAL
            && self.departement.is_none()
            && (self.whole_country()
                || (self.principal.scope.level == ScopeLevel::Region
                    && self.principal.scope.region_codes.iter().any(|r| r == region)))
    }

    /// Whether the reader sees an item of a region naming these départements (none: a regional matter).
    fn sees(&self, region: &str, departements: &[String]) -> bool {
        if region == engine::NATIONAL {
            return self.departement.is_none();
        }
        if let Some(wanted) = &self.departement
            && !departements.contains(wanted)
        {
            return false;
        }
        if self.whole_country() {
            return true;
        }
        if self.principal.scope.level == ScopeLevel::Region {
            return self.principal.scope.region_codes.iter().any(|r| r == region);
        }
        departements.iter().any(|d| self.principal.scope.departement_codes.contains(d))
    }

    /// Counts of people are shown as they are to the CNSA and to the MDPH that produced them.
    fn people_unmasked(&self, departement: &str) -> bool {
        self.reach != Reach::AggregatesOnly
            && (self.principal.role == Role::Cnsa
                || (self.principal.role == Role::Mdph
                    && self.principal.scope.departement_codes.iter().any(|d| d == departement)))
    }
}

/// The regions a request reads, its filters checked against the reader's scope, the same way for the
/// `coFinancingStatus` and `reconciliation` queries and the `coFinancingStatusChanged` subscription: an unknown code is
/// BAD_USER_INPUT, a département the reader does not cover or a region its territory does not touch is FORBIDDEN, each
/// naming the code (never an empty answer or a silent subscription, which would read as "nothing there").
fn regions_to_read(
    catalog: &Catalog,
    view: &View<'_>,
    region: Option<&str>,
    departement: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    let filter = TerritoryFilter { region, departement, academie: None };
    check_territory_filter(view.principal, view.reach, catalog, filter)?;
    let departement = departement.and_then(|code| catalog.departement(code));
    if let Some(d) = departement {
        // A département of another region than the one asked for: nothing answers both filters.
        if region.is_some_and(|r| r != d.region_code) {
            return Ok(Vec::new());
        }
        return Ok(vec![d.region_code.clone()]);
    }
    if let Some(code) = region {
        return Ok(vec![code.to_owned()]);
    }
    Ok(if view.whole_country() {
        catalog.regions.iter().map(|r| r.code.clone()).collect()
    } else {
        view.principal.scope.region_codes.clone()
    })
}

async fn states(
    reconciled: &Reconciled,
    view: &View<'_>,
    regions: &[String],
) -> Result<Vec<Arc<RegionState>>, ApiError> {
    let mut states = Vec::new();
    for region in regions {
        // A region outside the reader's scope holds nothing it may see: not even loaded.
        let in_scope = view.whole_country() || view.principal.scope.region_codes.iter().any(|r| r == region);
        if in_scope {
            states.push(reconciled.region(region).await?);
        }
    }
    Ok(states)
}

/// A figure a finding compares.
#[derive(SimpleObject, Debug)]
pub struct Figure {
    pub name: String,
    /// The value as text: an exact amount ("450000.00"), a count, a percentage ("80.00"), a year. A count of people
    /// outside the producing MDPH and the CNSA may show "<11" (from 1 to threshold − 1), or a sum of shown terms
    /// ("30 + <11").
    pub value: String,
    /// EUROS, COUNT, PEOPLE, PERCENT or YEAR.
    pub unit: String,
}

/// Something that disagrees, and why.
#[derive(SimpleObject, Debug)]
pub struct Finding {
    /// Stable code ("CAPACITY_MISMATCH", "ENVELOPE_EXCEEDED"…), listed in the README.
    pub code: String,
    pub severity: Severity,
    pub subject_kind: SubjectKind,
    /// Measure id, "84/SOCLE", "84/SOCLE/2026", "lyon/2026", "69/13.2", "FR/SOCLE", "campaign/institution".
    pub subject: String,
    /// The region, or "FR" for a national finding.
    pub region_code: String,
    /// The départements the finding concerns (empty for a regional or national matter).
    pub departement_codes: Vec<String>,
    pub figures: Vec<Figure>,
    /// In plain French, for a programming officer.
    pub message: String,
}

fn figure(name: &str, value: &FigureValue) -> Figure {
    let (value, unit) = match value {
        FigureValue::Cents(c) => (Euros(*c).to_decimal_string(), "EUROS"),
        FigureValue::Count(n) => (n.to_string(), "COUNT"),
        FigureValue::People(n) => (n.to_string(), "PEOPLE"),
        FigureValue::MaskedPeople(shown) => (shown.clone(), "PEOPLE"),
        FigureValue::BasisPoints(bp) => (basis_points_to_percent(*bp), "PERCENT"),
        FigureValue::Year(y) => (y.to_string(), "YEAR"),
    };
    Figure { name: name.to_owned(), value, unit: unit.to_owned() }
}

impl From<&engine::Finding> for Finding {
    fn from(f: &engine::Finding) -> Self {
        Finding {
            code: f.code.to_owned(),
            severity: f.severity,
            subject_kind: f.subject_kind,
            subject: f.subject.clone(),
            region_code: f.region.clone(),
            departement_codes: f.departements.clone(),
            figures: f.figures.iter().map(|(name, value)| figure(name, value)).collect(),
            message: f.message.clone(),
        }
    }
}

/// A measure's standing between its funders.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct CoFinancing {
    pub measure: MeasureRecord,
    pub status: CoFinancingStatus,
    /// The collectivité whose commitment is awaited (status AWAITING_COFINANCER, the rules expecting a
    /// collectivité): the one the ARS designated (`measure.expectedCofinancerCode`) or the only one covering the
    /// measure's département and commune; null when none can be named yet.
    pub awaited_cofinancer_code: Option<String>,
    pub findings: Vec<Finding>,
}

#[async_graphql::ComplexObject]
impl CoFinancing {
    /// Escalations to the national level still open on this measure (`escalations(filter: { measureId })` gives
    /// their threads). Read from the database, batched over the page, only when asked.
    async fn open_escalations(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let loader = ctx
            .data::<async_graphql::dataloader::DataLoader<OpenEscalationsLoader>>()
            .map_err(|_| ApiError::Internal("escalation counts missing from the schema data".into()))?;
        let count = loader.load_one(self.measure.id.clone()).await.map_err(|e| ApiError::Internal(Box::new(e)))?;
        Ok(count.unwrap_or(0))
    }
}

/// Counts the open escalations of many measures in one query.
pub struct OpenEscalationsLoader {
    pub db: sea_orm::DatabaseConnection,
}

impl async_graphql::dataloader::Loader<String> for OpenEscalationsLoader {
    type Value = i64;
    type Error = Arc<sea_orm::DbErr>;

    async fn load(&self, keys: &[String]) -> Result<std::collections::HashMap<String, i64>, Self::Error> {
        use entities::escalation;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        let rows: Vec<(String, i64)> = escalation::Entity::find()
            .select_only()
            .column(escalation::Column::MeasureId)
            .column_as(escalation::Column::Id.count(), "open")
            .filter(escalation::Column::MeasureId.is_in(keys.iter().cloned()))
            .filter(escalation::Column::State.is_in(crate::vocabulary::OPEN_ESCALATION_STATES))
            .group_by(escalation::Column::MeasureId)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(Arc::new)?;
        Ok(rows.into_iter().collect())
    }
}

/// An envelope's use: notified, committed by assurance maladie, headroom.
#[derive(SimpleObject)]
pub struct EnvelopeStatus {
    pub region_code: String,
    pub compartment: Compartment,
    pub notified: Euros,
    pub committed: Euros,
    /// notified − committed; negative when the ceiling is passed.
    pub headroom: Euros,
}

#[derive(SimpleObject, Debug)]
pub struct FindingCount {
    pub code: String,
    pub severity: Severity,
    pub count: i64,
}

#[derive(SimpleObject)]
pub struct StatusCount {
    pub status: CoFinancingStatus,
    pub count: i64,
}

/// Programmed solutions against people waiting, for a département and a kind of orientation. People without a
/// solution, as a needs finding counts them (`personnesSansSolution`), are peopleWaiting + cretonAdults.
#[derive(SimpleObject, Debug)]
pub struct NeedsCoverageRow {
    pub region_code: String,
    pub departement_code: String,
    /// MDPH orientation codes counted together (they point to the same kind of structure).
    pub orientation_codes: Vec<String>,
    pub category_code: Option<String>,
    /// People with an orientation and no solution, Creton adults excluded: waiting for admission, no step taken,
    /// admission impossible (a needs finding's `personnesEnAttente`). Outside the producing MDPH and the CNSA, a
    /// count from 1 to threshold − 1 shows as "<11" (fewer than the threshold); a row's count is never hidden to
    /// protect another one (the département's total is hidden instead: "secret").
    pub people_waiting: String,
    /// Young adults under the amendement Creton whose designated adult structure is of this kind (a needs
    /// finding's `adultesCreton`); "<11" alike.
    pub creton_adults: String,
    /// Solutions programmed in the département for this kind of structure (abandoned measures aside).
    pub programmed_solutions: i64,
    /// The coverage ratio: programmedSolutions over the people without a solution, peopleWaiting + cretonAdults
    /// (a needs finding's `personnesSansSolution`), as a percentage to the hundredth rounded half away from zero
    /// ("66.67"; above "100.00" when more solutions are programmed than people wait). Null when nobody waits, and
    /// null when the reader does not see the exact count of the row (peopleWaiting or cretonAdults shows "<11"; the
    /// CNSA and the producing MDPH always see it), so that the ratio cannot reveal a masked count.
    pub coverage_ratio: Option<String>,
}

/// A département's totals over its rows, published with them. Outside the producing MDPH and the CNSA, a total
/// shows "secret" when one of the counts it adds up shows "<11" (hidden to protect that count, which the total and
/// the counts shown would give away or narrow down), and "<11" when it is that one count itself.
#[derive(SimpleObject, Debug)]
pub struct NeedsDepartementTotal {
    pub departement_code: String,
    /// The rows' peopleWaiting added up (Creton adults excluded): a number, "<11" or "secret".
    pub people_waiting: String,
    /// The rows' cretonAdults added up: a number, "<11" or "secret".
    pub creton_adults: String,
    pub programmed_solutions: i64,
    /// The département's coverage ratio: programmedSolutions over peopleWaiting + cretonAdults (its people without
    /// a solution), as a percentage to the hundredth rounded half away from zero ("40.61"). Null when nobody waits,
    /// and null unless both totals are shown as numbers (a total showing "<11" or "secret" keeps it null), so that
    /// it cannot reveal a masked count.
    pub coverage_ratio: Option<String>,
}

#[derive(SimpleObject, Debug)]
pub struct NeedsCoverageReport {
    /// Counts of people below this threshold (and above zero) are masked for this reader.
    pub threshold: i64,
    /// Whether any masking applies to this reader.
    pub masked: bool,
    pub rows: Vec<NeedsCoverageRow>,
    pub departement_totals: Vec<NeedsDepartementTotal>,
}

/// An académie's school-support plans against the ARS's école commitments, for one year.
#[derive(SimpleObject)]
pub struct SchoolMatchRow {
    pub region_code: String,
    pub academie_code: String,
    pub year: i32,
    /// Médico-social cost of the rectorat's plans.
    pub planned_cost: Euros,
    /// Assurance-maladie commitments on école measures of the académie's départements.
    pub committed: Euros,
    /// committed − planned cost; negative when the plans are not matched.
    pub balance: Euros,
}

pub use crate::reconciled::credits::{CreditYearRow, DrawingYearRow};

#[derive(SimpleObject)]
pub struct ReconciliationReport {
    pub envelopes: Vec<EnvelopeStatus>,
    /// AE and CP year by year against the CNSA's trajectory (whole regions only, like envelopes).
    pub credits: Vec<CreditYearRow>,
    /// CP called year by year against the drawing rights and the forecast (whole regions only).
    pub drawing: Vec<DrawingYearRow>,
    /// Every finding in detail (empty for a dashboard, which gets the counts only).
    pub findings: Vec<Finding>,
    /// How many findings of each code, as this reader sees them (needs findings judged from the masked counts).
    pub finding_counts: Vec<FindingCount>,
    /// How many measures stand in each co-financing status.
    pub status_counts: Vec<StatusCount>,
    pub needs_coverage: NeedsCoverageReport,
    pub school_matching: Vec<SchoolMatchRow>,
}

#[derive(InputObject, Default)]
pub struct CoFinancingFilter {
    pub region_code: Option<String>,
    pub departement_code: Option<String>,
    pub status: Option<CoFinancingStatus>,
    pub category_code: Option<String>,
    /// Year of the planned installation.
    pub year: Option<i32>,
    /// Only the measures awaiting this collectivité's commitment (a collectivité passes its own code).
    pub awaiting_cofinancer_code: Option<String>,
}

/// What a reader gets of findings and needs coverage.
#[derive(Debug)]
struct ReaderView {
    findings: Vec<Finding>,
    finding_counts: Vec<FindingCount>,
    needs_coverage: NeedsCoverageReport,
}

/// What a reader gets of the findings and the needs coverage it sees (pure). The counts of people of a département
/// whose counts are masked for the reader (`unmasked` says which are not) are masked (`coverage::mask_coverage`),
/// and its needs findings are judged again from the masked cells (`coverage::needs_finding`) in place of the
/// engine's, after every other finding: so nothing the reader gets, the counts of findings included, depends on a
/// masked value. The CNSA and the producing MDPH get the exact counts and the engine's findings.
fn reader_view(
    findings: &[&engine::Finding],
    rows: &[&engine::NeedsCoverage],
    unmasked: &dyn Fn(&str) -> bool,
    threshold: i64,
) -> ReaderView {
    let (cells, totals) = coverage::mask_coverage(rows, threshold);
    let masked = |departement: &str| !unmasked(departement);
    let judged_again = |f: &engine::Finding| {
        [coverage::NEEDS_UNCOVERED, coverage::NEEDS_COVERAGE_UNDETERMINED].contains(&f.code)
            && f.departements.iter().any(|d| masked(d))
    };
    let mut out_findings: Vec<Finding> =
        findings.iter().copied().filter(|f| !judged_again(f)).map(Finding::from).collect();
    let mut out_rows = Vec::new();
    // département → exact (waiting, creton, programmed) totals.
    let mut exact: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for (row, (waiting, creton)) in rows.iter().copied().zip(cells) {
        let sums = exact.entry(row.departement.as_str()).or_default();
        *sums = (sums.0 + row.waiting, sums.1 + row.creton, sums.2 + row.programmed);
        let seen = if masked(&row.departement) {
            out_findings.extend(
                coverage::needs_finding(row, People { waiting, creton }, threshold).as_ref().map(Finding::from),
            );
            People { waiting, creton }
        } else {
            People::exact(row.waiting, row.creton)
        };
        out_rows.push(NeedsCoverageRow {
            region_code: row.region.clone(),
            departement_code: row.departement.clone(),
            orientation_codes: row.orientations.clone(),
            category_code: row.category.clone(),
            people_waiting: seen.waiting.display(threshold),
            creton_adults: seen.creton.display(threshold),
            programmed_solutions: row.programmed,
            // From the cells as the reader sees them: none when one is masked.
            coverage_ratio: seen.coverage_ratio_bp(row.programmed).map(basis_points_to_percent),
        });
    }
    let departement_totals = totals
        .into_iter()
        .map(|(departement, (waiting, creton))| {
            let (exact_waiting, exact_creton, programmed) =
                exact.get(departement.as_str()).copied().unwrap_or_default();
            let (waiting, creton) = if masked(&departement) {
                (waiting, creton)
            } else {
                (Cell::Shown(exact_waiting), Cell::Shown(exact_creton))
            };
            NeedsDepartementTotal {
                people_waiting: waiting.display(threshold),
                creton_adults: creton.display(threshold),
                programmed_solutions: programmed,
                // From the totals as the reader sees them: none when one shows "<11" or "secret".
                coverage_ratio: People { waiting, creton }.coverage_ratio_bp(programmed).map(basis_points_to_percent),
                departement_code: departement,
            }
        })
        .collect();
    let mut counts: BTreeMap<(&str, Severity), i64> = BTreeMap::new();
    for f in &out_findings {
        *counts.entry((f.code.as_str(), f.severity)).or_default() += 1;
    }
    let finding_counts = counts
        .into_iter()
        .map(|((code, severity), count)| FindingCount { code: code.to_owned(), severity, count })
        .collect();
    ReaderView {
        needs_coverage: NeedsCoverageReport {
            threshold,
            masked: rows.iter().any(|r| masked(&r.departement)),
            rows: out_rows,
            departement_totals,
        },
        finding_counts,
        findings: out_findings,
    }
}

/// A report reads every region of its territory (a national one costs tens of milliseconds at scale 10), so it weighs in a
/// query's complexity (`CNH_MAX_QUERY_COMPLEXITY`, 10 000 by default) far more than a plain field: a document cannot
/// ask for it by the dozen under aliases.
pub const RECONCILIATION_COMPLEXITY: usize = 1000;

/// One page of `coFinancingStatus`: the measures of the reader's territory that pass the filter, by id, from the
/// reconciled state. Shared by the resolver and the fast read path (`fast`), so both answer the same page.
pub(crate) struct CoFinancingPage {
    states: Vec<Arc<RegionState>>,
    /// (index in `states`, index of the measure in its state), in the page's order.
    items: Vec<(usize, usize)>,
    total: u64,
    has_previous: bool,
    has_next: bool,
}

impl CoFinancingPage {
    fn items(&self) -> impl Iterator<Item = (&RegionState, usize)> {
        self.items.iter().map(|(s, i)| (&*self.states[*s], *i))
    }
}

pub(crate) async fn co_financing_page(
    reconciled: &Reconciled,
    principal: &Principal,
    filter: CoFinancingFilter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<CoFinancingPage, ApiError> {
    let reach = policy::require(principal, Resource::CoFinancing, Action::Read)?;
    let limit = page_size(first)?;
    let view = View { principal, reach, departement: filter.departement_code.clone() };
    let regions = regions_to_read(
        reconciled.catalog(),
        &view,
        filter.region_code.as_deref(),
        filter.departement_code.as_deref(),
    )?;
    let states = states(reconciled, &view, &regions).await?;
    let mut selected: Vec<(&str, usize, usize)> = Vec::new();
    for (s, state) in states.iter().enumerate() {
        // A reader of the whole region (its ARS, the CNSA) sees each of its measures: asked once, not per measure.
        let sees_all = view.sees_whole_region(&state.region);
        for (i, status) in state.report.statuses.iter().enumerate() {
            let m = state.record(i);
            if (sees_all || view.sees(&m.region_code, std::slice::from_ref(&m.departement_code)))
                && filter.status.is_none_or(|wanted| status.status == wanted)
                && filter.category_code.as_ref().is_none_or(|c| *c == m.category_code)
                && filter.year.is_none_or(|y| m.planned_installation.year() == y)
                && filter
                    .awaiting_cofinancer_code
                    .as_ref()
                    .is_none_or(|c| status.awaited_cofinancer.as_ref() == Some(c))
            {
                selected.push((status.measure_id.as_str(), s, i));
            }
        }
    }
    // One region's statuses are in id order already; several regions' are merged by id.
    if states.len() > 1 {
        selected.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    let total = selected.len() as u64;
    let start = after.as_ref().map_or(0, |a| selected.partition_point(|s| s.0 <= a.as_str()));
    let end = (start + limit as usize).min(selected.len());
    let items = selected[start..end].iter().map(|(_, s, i)| (*s, *i)).collect();
    let has_next = end < selected.len();
    Ok(CoFinancingPage { items, total, has_previous: start > 0, has_next, states })
}

#[derive(Default)]
pub struct ReconciliationQuery;

#[Object]
impl ReconciliationQuery {
    /// Each measure of the caller's territory with its co-financing status and the findings behind it, from the
    /// live reconciled state (current as of the last committed write).
    /// A `regionCode` the caller's territory does not touch or a `departementCode` it does not cover is FORBIDDEN, an
    /// unknown code BAD_USER_INPUT, each naming the code.
    async fn co_financing_status(
        &self,
        ctx: &Context<'_>,
        filter: Option<CoFinancingFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, CoFinancing, ConnectionFields>> {
        let principal = policy::principal(ctx)?;
        let page = co_financing_page(reconciled(ctx)?, principal, filter.unwrap_or_default(), first, after).await?;
        let mut connection = Connection::with_additional_fields(
            page.has_previous,
            page.has_next,
            ConnectionFields { total_count: page.total },
        );
        for (state, i) in page.items() {
            let status = &state.report.statuses[i];
            connection.edges.push(Edge::new(
                status.measure_id.clone(),
                CoFinancing {
                    measure: state.record(i).clone(),
                    status: status.status,
                    awaited_cofinancer_code: status.awaited_cofinancer.clone(),
                    findings: status.findings.iter().map(|f| Finding::from(&*state.report.findings[*f])).collect(),
                },
            ));
        }
        Ok(connection)
    }

    /// Envelopes (notified, committed, headroom per region and compartment), findings, needs coverage and school
    /// matching of the caller's territory. A dashboard gets the aggregates, not the findings' detail; counts of
    /// people are masked for every reader but the CNSA and the producing MDPH.
    /// A `regionCode` the caller's territory does not touch or a `departementCode` it does not cover is FORBIDDEN, an
    /// unknown code BAD_USER_INPUT, each naming the code.
    /// Weighs 1000 in the query's complexity.
    #[graphql(complexity = "RECONCILIATION_COMPLEXITY + child_complexity")]
    async fn reconciliation(
        &self,
        ctx: &Context<'_>,
        region_code: Option<String>,
        departement_code: Option<String>,
    ) -> ApiResult<ReconciliationReport> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Reconciliation, Action::Read)?;
        let reconciled = reconciled(ctx)?;
        let view = View { principal, reach, departement: departement_code.clone() };
        let regions =
            regions_to_read(reconciled.catalog(), &view, region_code.as_deref(), departement_code.as_deref())?;
        let states = states(reconciled, &view, &regions).await?;
        let whole_regions = view.whole_regions() && departement_code.is_none();
        let mut envelopes = Vec::new();
        let (mut credits, mut drawing) = (Vec::new(), Vec::new());
        let mut findings: Vec<&engine::Finding> = Vec::new();
        let mut statuses: BTreeMap<CoFinancingStatus, i64> = BTreeMap::new();
        let mut coverage_rows: Vec<&engine::NeedsCoverage> = Vec::new();
        let mut school_matching = Vec::new();
        for state in &states {
            let report = &state.report;
            if whole_regions {
                envelopes.extend(report.envelopes.iter().map(|e| EnvelopeStatus {
                    region_code: e.region.clone(),
                    compartment: e.compartment,
                    notified: Euros(e.notified),
                    committed: Euros(e.committed),
                    headroom: Euros(e.headroom()),
                }));
                credits.extend(report.credits.iter().map(CreditYearRow::from));
                drawing.extend(report.drawing.iter().map(DrawingYearRow::from));
            }
            findings.extend(report.findings.iter().filter(|f| view.sees(&f.region, &f.departements)).map(|f| &**f));
            for (i, s) in report.statuses.iter().enumerate() {
                let m = state.record(i);
                if view.sees(&m.region_code, std::slice::from_ref(&m.departement_code)) {
                    *statuses.entry(s.status).or_default() += 1;
                }
            }
            coverage_rows.extend(
                report.needs_coverage.iter().filter(|r| view.sees(&r.region, std::slice::from_ref(&r.departement))),
            );
            for m in &report.school_matching {
                let departements: Vec<String> =
                    reconciled.catalog().departements_of_academie(&m.academie).map(|d| d.code.clone()).collect();
                if view.sees(&m.region, &departements) {
                    school_matching.push(SchoolMatchRow {
                        region_code: m.region.clone(),
                        academie_code: m.academie.clone(),
                        year: m.year,
                        planned_cost: Euros(m.planned_cost),
                        committed: Euros(m.committed),
                        balance: Euros(m.committed - m.planned_cost),
                    });
                }
            }
        }
        // National findings (the annex, the national socle split) need every region's state.
        let national = if view.departement.is_none() && region_code.is_none() {
            let all = reconciled.all_regions().await?;
            let splits: Vec<engine::SocleSplit> =
                all.iter().flat_map(|s| s.report.socle_splits.iter().cloned()).collect();
            let targets = all.first().map(|s| s.snapshot.targets).unwrap_or_default();
            engine::national_findings(reconciled.annex().await?, &targets, &splits)
        } else {
            Vec::new()
        };
        findings.extend(national.iter());
        // Findings, their counts and the coverage as this reader may see them: a dashboard's counts too.
        let seen = reader_view(&findings, &coverage_rows, &|d| view.people_unmasked(d), threshold(ctx));
        Ok(ReconciliationReport {
            envelopes,
            credits,
            drawing,
            findings: if reach == Reach::AggregatesOnly { Vec::new() } else { seen.findings },
            finding_counts: seen.finding_counts,
            status_counts: statuses.into_iter().map(|(status, count)| StatusCount { status, count }).collect(),
            needs_coverage: seen.needs_coverage,
            school_matching,
        })
    }
}

/// A measure's co-financing status changed.
#[derive(SimpleObject, Clone)]
pub struct CoFinancingEvent {
    pub measure_id: ID,
    pub region_code: String,
    pub departement_code: String,
    /// None when the measure is new to the region.
    pub previous_status: Option<CoFinancingStatus>,
    /// None when the measure left the region.
    pub status: Option<CoFinancingStatus>,
    /// The codes of the measure's findings now.
    pub finding_codes: Vec<String>,
    pub at: DateTime<Utc>,
}

impl From<&StatusChange> for CoFinancingEvent {
    fn from(c: &StatusChange) -> Self {
        CoFinancingEvent {
            measure_id: ID(c.measure_id.clone()),
            region_code: c.region.clone(),
            departement_code: c.departement.clone(),
            previous_status: c.previous,
            status: c.status,
            finding_codes: c.finding_codes.clone(),
            at: c.at,
        }
    }
}

#[derive(Default)]
pub struct ReconciliationSubscription;

#[Subscription]
impl ReconciliationSubscription {
    /// Every change of a measure's co-financing status within the caller's territory (optionally narrowed to a
    /// region or a département), as writes commit on any hub instance. Over WebSocket (graphql-transport-ws) on
    /// /graphql; the token goes in the connection_init payload (`{"Authorization": "Bearer …"}`) or the upgrade
    /// request's header.
    /// A `regionCode` the caller's territory does not touch or a `departementCode` it does not cover is FORBIDDEN, an
    /// unknown code BAD_USER_INPUT, each naming the code.
    async fn co_financing_status_changed(
        &self,
        ctx: &Context<'_>,
        region_code: Option<String>,
        departement_code: Option<String>,
    ) -> Result<impl Stream<Item = CoFinancingEvent> + use<>, async_graphql::Error> {
        let principal = policy::principal(ctx)?.clone();
        // The policy guard checks subscription fields too; the reach is needed here for the territory.
        let reach = policy::require(&principal, Resource::CoFinancing, Action::Read)?;
        let reconciled = reconciled(ctx)?;
        {
            let view = View { principal: &principal, reach, departement: departement_code.clone() };
            let regions =
                regions_to_read(reconciled.catalog(), &view, region_code.as_deref(), departement_code.as_deref())?;
            let readable = view.whole_country() || regions.iter().any(|r| principal.scope.region_codes.contains(r));
            if !readable {
                return Err(ApiError::Forbidden("ce territoire n'est pas le vôtre".into()).into());
            }
        }
        let receiver = reconciled.subscribe();
        let changes = futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(change) => return Some((change, receiver)),
                    // A subscriber too slow to keep up misses events rather than holding the others back.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a subscriber lagged behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(changes.filter_map(move |change| {
            let view = View { principal: &principal, reach, departement: departement_code.clone() };
            let wanted = region_code.as_ref().is_none_or(|r| *r == change.region)
                && view.sees(&change.region, std::slice::from_ref(&change.departement));
            let event = wanted.then(|| CoFinancingEvent::from(change.as_ref()));
            if event.is_some() {
                crate::observe::METRICS.events_delivered.inc();
            }
            async move { event }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::reconciled::engine::{MeasureFact, NeedsFact, Snapshot, Territory};
    use crate::vocabulary::{MeasureCompartment, NeedsIndicatorKind};

    fn need(departement: &str, orientation: &str, indicator: NeedsIndicatorKind, people: i64) -> NeedsFact {
        NeedsFact { departement: departement.into(), orientation: orientation.into(), indicator, people }
    }

    fn places(id: &str, category: &str, solutions: i64) -> MeasureFact {
        let mut measure = crate::records::test_measure(id, category, MeasureCompartment::SocleAdultes);
        measure.reference = id.into();
        measure.solutions = solutions;
        measure
    }

    /// The Rhône (and the Ain) with a count of people from 1 to 10 somewhere, and solutions programmed against it.
    fn region(needs: Vec<NeedsFact>, measures: Vec<MeasureFact>) -> Snapshot {
        let mut territory = Territory::default();
        territory.departements_of_region.insert("84".into(), ["01".to_owned(), "69".to_owned()].into());
        for (orientation, category) in [("7.1", "183"), ("13.2", "448"), ("13.3", "255")] {
            territory.orientation_category.insert(orientation.into(), category.into());
        }
        Snapshot {
            territory: Arc::new(territory),
            needs: Arc::new(needs),
            measures: measures.into_iter().map(Arc::new).collect(),
            ..Default::default()
        }
    }

    /// Everything of findings and needs a reader gets from the reconciliation query, as text: with `unmasked`
    /// false, what an ARS reads (findings, their counts, rows, totals) and what a dashboard reads (the same but
    /// the findings' detail).
    fn read(snapshot: &Snapshot, unmasked: bool) -> (String, String) {
        let report = engine::reconcile(snapshot);
        let findings: Vec<&engine::Finding> = report.findings.iter().map(|f| &**f).collect();
        let rows: Vec<&engine::NeedsCoverage> = report.needs_coverage.iter().collect();
        let seen = reader_view(&findings, &rows, &|_| unmasked, coverage::DEFAULT_THRESHOLD);
        let dashboard = format!("{:?} {:?}", seen.finding_counts, seen.needs_coverage);
        (format!("{seen:?}"), dashboard)
    }

    /// For each solutions count, what masked readers get is the same whatever the masked count of people; the
    /// CNSA's differs (so the comparison can fail).
    fn assert_nothing_tells_the_masked_count(
        scenario: impl Fn(i64, i64) -> Snapshot,
        programmed: std::ops::RangeInclusive<i64>,
    ) {
        for p in programmed {
            let (ars, dashboard) = read(&scenario(1, p), false);
            for w in 2..=10 {
                let (ars_w, dashboard_w) = read(&scenario(w, p), false);
                assert_eq!(ars_w, ars, "an ARS tells {w} from 1 with {p} solutions programmed");
                assert_eq!(dashboard_w, dashboard, "a dashboard tells {w} from 1 with {p} solutions programmed");
            }
            assert_ne!(read(&scenario(3, p), true).0, read(&scenario(7, p), true).0, "the CNSA sees the count");
        }
    }

    #[test]
    fn what_a_masked_reader_gets_does_not_depend_on_a_masked_count() {
        use NeedsIndicatorKind::{AdultesCreton, EnAttenteAdmission};
        // The MDPH of the Rhône counts w people waiting for a MAS; p MAS places are programmed there.
        assert_nothing_tells_the_masked_count(
            |w, p| {
                let needs = vec![
                    need("69", "7.1", EnAttenteAdmission, 40),
                    need("69", "13.2", EnAttenteAdmission, 43),
                    need("69", "13.3", EnAttenteAdmission, w),
                    need("01", "13.3", EnAttenteAdmission, 12),
                    need("01", "13.3", AdultesCreton, 3),
                ];
                let mut measures = vec![places("eam", "448", 30)];
                if p > 0 {
                    measures.push(places("mas", "255", p));
                }
                region(needs, measures)
            },
            0..=15,
        );
        // 43 people waiting for an EAM and w Creton adults designated to one: 40 + p EAM places programmed.
        let eam = |w, p| {
            let needs = vec![
                need("69", "7.1", EnAttenteAdmission, 40),
                need("69", "13.2", EnAttenteAdmission, 43),
                need("69", "13.2", AdultesCreton, w),
                need("69", "13.3", AdultesCreton, 12),
            ];
            region(needs, vec![places("eam", "448", 40 + p), places("mas", "255", 5)])
        };
        assert_nothing_tells_the_masked_count(eam, 0..=15);
        // What is compared holds coverage ratios: those of rows shown exactly (the MAS: 5 places for 12 Creton
        // adults), none for the EAM row and the département, whose counts are masked.
        let (ars, _) = read(&eam(4, 3), false);
        assert!(ars.contains(r#"orientation_codes: ["13.3"], category_code: Some("255"), people_waiting: "0", creton_adults: "12", programmed_solutions: 5, coverage_ratio: Some("41.67")"#), "{ars}");
        assert!(
            ars.contains(
                r#"people_waiting: "43", creton_adults: "<11", programmed_solutions: 43, coverage_ratio: None"#
            ),
            "{ars}"
        );
        let (cnsa, _) = read(&eam(4, 3), true);
        assert!(
            cnsa.contains(
                r#"people_waiting: "43", creton_adults: "4", programmed_solutions: 43, coverage_ratio: Some("91.49")"#
            ),
            "{cnsa}"
        );
    }

    #[test]
    fn a_masked_reader_is_told_what_its_view_allows() {
        use NeedsIndicatorKind::{AdultesCreton, EnAttenteAdmission};
        let snapshot = |p| {
            region(
                vec![
                    need("69", "7.1", EnAttenteAdmission, 40),
                    need("69", "13.2", EnAttenteAdmission, 43),
                    need("69", "13.2", AdultesCreton, 7),
                    need("69", "13.3", EnAttenteAdmission, 7),
                ],
                vec![places("mas", "255", p)],
            )
        };
        let codes = |view: &ReaderView| -> Vec<(String, String)> {
            view.findings
                .iter()
                .filter(|f| f.code.starts_with("NEEDS_"))
                .map(|f| (f.code.clone(), f.subject.clone()))
                .collect()
        };
        let view = |p, unmasked: bool| {
            let report = engine::reconcile(&snapshot(p));
            let findings: Vec<&engine::Finding> = report.findings.iter().map(|f| &**f).collect();
            let rows: Vec<&engine::NeedsCoverage> = report.needs_coverage.iter().collect();
            reader_view(&findings, &rows, &|_| unmasked, 11)
        };
        let masked = view(7, false);
        let totals = &masked.needs_coverage.departement_totals[0];
        assert_eq!((totals.people_waiting.as_str(), totals.creton_adults.as_str()), ("secret", "<11"));
        let eam = masked.needs_coverage.rows.iter().find(|r| r.orientation_codes == ["13.2"]).unwrap();
        assert_eq!((eam.people_waiting.as_str(), eam.creton_adults.as_str()), ("43", "<11"));
        // The EAM row: no place for 43 + <11, uncovered; the MAS row: 7 places for <11 people, undetermined.
        assert_eq!(
            codes(&masked),
            [
                ("NEEDS_UNCOVERED".to_owned(), "69/7.1".to_owned()),
                ("NEEDS_COVERAGE_UNDETERMINED".to_owned(), "69/13.3".to_owned()),
                ("NEEDS_UNCOVERED".to_owned(), "69/13.2".to_owned()),
            ],
            "in the order of the rows (IME 183, MAS 255, EAM 448)"
        );
        let eam_finding = masked.findings.iter().find(|f| f.subject == "69/13.2").map(|f| f.message.as_str());
        assert_eq!(
            eam_finding,
            Some(
                "Département 69, orientation 13.2 : 0 solutions programmées pour 43 + <11 personnes sans solution (43 en attente, <11 jeunes adultes Creton)"
            )
        );
        let counted =
            |view: &ReaderView, code: &str| view.finding_counts.iter().find(|c| c.code == code).map_or(0, |c| c.count);
        assert_eq!((counted(&masked, "NEEDS_UNCOVERED"), counted(&masked, "NEEDS_COVERAGE_UNDETERMINED")), (2, 1));
        // The CNSA knows the 7 places cover the 7 people.
        let exact = view(7, true);
        assert_eq!((counted(&exact, "NEEDS_UNCOVERED"), counted(&exact, "NEEDS_COVERAGE_UNDETERMINED")), (2, 0));
        assert_eq!(exact.needs_coverage.departement_totals[0].people_waiting, "90");
        let eam_finding = exact.findings.iter().find(|f| f.subject == "69/13.2").map(|f| f.message.as_str());
        assert_eq!(
            eam_finding,
            Some(
                "Département 69, orientation 13.2 : 0 solutions programmées pour 50 personnes sans solution (43 en attente, 7 jeunes adultes Creton)"
            )
        );
        // The coverage ratio of a row or a total needs its counts shown: the IME row (0 for 40) only.
        let ratios = |view: &ReaderView| -> (Vec<(String, Option<String>)>, Option<String>) {
            let rows = view.needs_coverage.rows.iter();
            (
                rows.map(|r| (r.orientation_codes.join("+"), r.coverage_ratio.clone())).collect(),
                view.needs_coverage.departement_totals[0].coverage_ratio.clone(),
            )
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            ratios(&masked),
            (vec![("7.1".into(), some("0.00")), ("13.3".into(), None), ("13.2".into(), None)], None)
        );
        // The CNSA: 7 places for 7 people, none for 43 + 7, and 7 for the département's 90 + 7 (7,216… %).
        assert_eq!(
            ratios(&exact),
            (
                vec![("7.1".into(), some("0.00")), ("13.3".into(), some("100.00")), ("13.2".into(), some("0.00"))],
                some("7.22")
            )
        );
        // 10 places cover whatever a masked count of 1 to 10 may be.
        assert_eq!(codes(&view(10, false)).len(), 2);
    }
}
