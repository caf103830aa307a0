//! Reconciliation: what disagrees between institutions, and why. The engine is pure (`engine`, `coverage`,
//! `hygiene`); `service` loads a region's snapshot; `live` keeps every region reconciled in memory, recomputes it in
//! each write's transaction and pushes the changes; this module shows it, each reader within its territory.
//!
//! Scoping: the state is held per region, so a reader's regions are looked up by key; inside a region, a reader of
//! one or a few départements (collectivité, MDPH, rectorat) gets only the items naming its départements.

pub mod answers;
pub mod coverage;
pub mod engine;
pub mod hygiene;
pub mod live;
pub mod service;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Datelike, Utc};
use futures_util::{Stream, StreamExt};

use crate::auth::policy::{self, Action, Reach, Resource};
use crate::auth::principal::{Principal, Role, ScopeLevel};
use crate::error::{ApiError, ApiResult};
use crate::graphql::pagination::{ConnectionFields, page_size};
use crate::money::{Euros, basis_points_to_percent};
use crate::programming::types::MeasureRecord;
use crate::territory::service::Catalog;
use crate::vocabulary::Compartment;
use coverage::Cell;
use engine::{CoFinancingStatus, FigureValue, Severity, SubjectKind};
use live::{Reconciled, RegionState, StatusChange};

/// The masking threshold of small counts of people, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct MaskingThreshold(pub i64);

pub fn reconciled<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Reconciled>, ApiError> {
    ctx.data::<Arc<Reconciled>>()
        .map_err(|_| ApiError::Internal("reconciled state missing from the schema data".into()))
}

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
        self.reach == Reach::Everything || self.principal.scope.is_national()
    }

    fn whole_regions(&self) -> bool {
        self.whole_country() || self.principal.scope.level == ScopeLevel::Region
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

/// The regions a request reads, checked against the reader's scope. Unknown codes are refused.
fn regions_to_read(
    catalog: &Catalog,
    view: &View<'_>,
    region: Option<&str>,
    departement: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    if let Some(code) = departement {
        let d = catalog
            .departement(code)
            .ok_or_else(|| ApiError::BadUserInput(format!("département inconnu : « {code} »")))?;
        if region.is_some_and(|r| r != d.region_code) {
            return Ok(Vec::new());
        }
        return Ok(vec![d.region_code.clone()]);
    }
    if let Some(code) = region {
        catalog.region(code).ok_or_else(|| ApiError::BadUserInput(format!("région inconnue : « {code} »")))?;
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
#[derive(SimpleObject)]
pub struct Figure {
    pub name: String,
    /// The value as text: an exact amount ("450000.00"), a count, a percentage ("80.00"), a year, or for people
    /// counts outside the producing MDPH and the CNSA possibly "<11".
    pub value: String,
    /// EUROS, COUNT, PEOPLE, PERCENT or YEAR.
    pub unit: String,
}

/// Something that disagrees, and why.
#[derive(SimpleObject)]
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

fn figure(name: &str, value: &FigureValue, people: Option<String>) -> Figure {
    let (value, unit) = match value {
        FigureValue::Cents(c) => (Euros(*c).to_decimal_string(), "EUROS"),
        FigureValue::Count(n) => (n.to_string(), "COUNT"),
        FigureValue::People(n) => (people.unwrap_or_else(|| n.to_string()), "PEOPLE"),
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
            figures: f.figures.iter().map(|(name, value)| figure(name, value, None)).collect(),
            message: f.message.clone(),
        }
    }
}

/// A measure's standing between its funders.
#[derive(SimpleObject)]
pub struct CoFinancing {
    pub measure: MeasureRecord,
    pub status: CoFinancingStatus,
    pub findings: Vec<Finding>,
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

#[derive(SimpleObject)]
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

/// Programmed solutions against people waiting, for a département and a kind of orientation.
#[derive(SimpleObject)]
pub struct NeedsCoverageRow {
    pub region_code: String,
    pub departement_code: String,
    /// MDPH orientation codes counted together (they point to the same kind of structure).
    pub orientation_codes: Vec<String>,
    pub category_code: Option<String>,
    /// People with an orientation and no solution, Creton adults excluded: waiting for admission, no step taken,
    /// admission impossible. Outside the producing MDPH and the CNSA, a count from 1 to threshold − 1 shows as
    /// "<11" (fewer than the threshold); a row's count is never hidden to protect another one (the département's
    /// total is hidden instead: "secret").
    pub people_waiting: String,
    /// Young adults under the amendement Creton whose designated adult structure is of this kind; "<11" alike.
    pub creton_adults: String,
    /// Solutions programmed in the département for this kind of structure (abandoned measures aside).
    pub programmed_solutions: i64,
}

/// A département's totals over its rows, published with them. Outside the producing MDPH and the CNSA, a total
/// shows "secret" when one of the counts it adds up shows "<11" (hidden to protect that count, which the total and
/// the counts shown would give away or narrow down), and "<11" when it is that one count itself.
#[derive(SimpleObject)]
pub struct NeedsDepartementTotal {
    pub departement_code: String,
    /// The rows' peopleWaiting added up (Creton adults excluded): a number, "<11" or "secret".
    pub people_waiting: String,
    /// The rows' cretonAdults added up: a number, "<11" or "secret".
    pub creton_adults: String,
    pub programmed_solutions: i64,
}

#[derive(SimpleObject)]
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

#[derive(SimpleObject)]
pub struct ReconciliationReport {
    pub envelopes: Vec<EnvelopeStatus>,
    /// Every finding in detail (empty for a dashboard, which gets the counts only).
    pub findings: Vec<Finding>,
    /// How many findings of each code.
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
}

/// The masked coverage of the rows a reader sees, and how each row's people count shows in a needs finding.
struct MaskedCoverage<'a> {
    report: NeedsCoverageReport,
    /// (département, orientations joined by "+"), the subject of its needs finding → the row and its people
    /// figure as shown.
    people: BTreeMap<String, (&'a engine::NeedsCoverage, String)>,
}

fn masked_coverage<'a>(rows: &[&'a engine::NeedsCoverage], view: &View<'_>, threshold: i64) -> MaskedCoverage<'a> {
    let (cells, totals) = coverage::mask_coverage(rows, threshold);
    let mut people = BTreeMap::new();
    let mut out_rows = Vec::new();
    let mut any_masked = false;
    // département → exact (waiting, creton, programmed) totals.
    let mut exact: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for (row, (waiting, creton)) in rows.iter().copied().zip(cells) {
        let sums = exact.entry(row.departement.as_str()).or_default();
        *sums = (sums.0 + row.waiting, sums.1 + row.creton, sums.2 + row.programmed);
        let unmasked = view.people_unmasked(&row.departement);
        any_masked |= !unmasked;
        let show = |exact: i64, cell: Cell| if unmasked { exact.to_string() } else { cell.display(threshold) };
        let sum = row.waiting + row.creton;
        let sum_shown =
            if unmasked || (waiting != Cell::Small && creton != Cell::Small && !(sum > 0 && sum < threshold)) {
                sum.to_string()
            } else {
                Cell::Small.display(threshold)
            };
        people.insert(format!("{}/{}", row.departement, row.orientations.join("+")), (row, sum_shown));
        out_rows.push(NeedsCoverageRow {
            region_code: row.region.clone(),
            departement_code: row.departement.clone(),
            orientation_codes: row.orientations.clone(),
            category_code: row.category.clone(),
            people_waiting: show(row.waiting, waiting),
            creton_adults: show(row.creton, creton),
            programmed_solutions: row.programmed,
        });
    }
    let departement_totals = totals
        .into_iter()
        .map(|(departement, (waiting, creton))| {
            let (exact_waiting, exact_creton, programmed) =
                exact.get(departement.as_str()).copied().unwrap_or_default();
            let unmasked = view.people_unmasked(&departement);
            NeedsDepartementTotal {
                people_waiting: if unmasked { exact_waiting.to_string() } else { waiting.display(threshold) },
                creton_adults: if unmasked { exact_creton.to_string() } else { creton.display(threshold) },
                programmed_solutions: programmed,
                departement_code: departement,
            }
        })
        .collect();
    MaskedCoverage {
        report: NeedsCoverageReport { threshold, masked: any_masked, rows: out_rows, departement_totals },
        people,
    }
}

/// A finding as this reader may see it: people counts in needs findings follow the masked coverage table.
fn finding_for(f: &engine::Finding, masked: &MaskedCoverage<'_>, view: &View<'_>) -> Finding {
    let mut finding = Finding::from(f);
    if f.subject_kind == SubjectKind::Departement
        && let Some((row, shown)) = masked.people.get(&f.subject)
        && !view.people_unmasked(&row.departement)
    {
        finding.figures = f.figures.iter().map(|(name, value)| figure(name, value, Some(shown.clone()))).collect();
        finding.message = coverage::needs_message(&row.departement, &row.orientations, row.programmed, shown);
    }
    finding
}

#[derive(Default)]
pub struct ReconciliationQuery;

#[Object]
impl ReconciliationQuery {
    /// Each measure of the caller's territory with its co-financing status and the findings behind it, from the
    /// live reconciled state (current as of the last committed write).
    async fn co_financing_status(
        &self,
        ctx: &Context<'_>,
        filter: Option<CoFinancingFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, CoFinancing, ConnectionFields>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::CoFinancing, Action::Read)?;
        let limit = page_size(first)?;
        let filter = filter.unwrap_or_default();
        let reconciled = reconciled(ctx)?;
        let view = View { principal, reach, departement: filter.departement_code.clone() };
        let regions = regions_to_read(
            reconciled.catalog(),
            &view,
            filter.region_code.as_deref(),
            filter.departement_code.as_deref(),
        )?;
        let states = states(reconciled, &view, &regions).await?;
        let mut selected: Vec<(&str, &RegionState, usize)> = Vec::new();
        for state in &states {
            for (i, status) in state.report.statuses.iter().enumerate() {
                let Some(m) = state.measures.get(&status.measure_id) else { continue };
                if view.sees(&m.region_code, std::slice::from_ref(&m.departement_code))
                    && filter.status.is_none_or(|wanted| status.status == wanted)
                    && filter.category_code.as_ref().is_none_or(|c| *c == m.category_code)
                    && filter.year.is_none_or(|y| m.planned_installation.year() == y)
                {
                    selected.push((status.measure_id.as_str(), state, i));
                }
            }
        }
        selected.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let total = selected.len() as u64;
        let start = after.as_ref().map_or(0, |a| selected.partition_point(|s| s.0 <= a.as_str()));
        let page = &selected[start..(start + limit as usize).min(selected.len())];
        let has_next = start + page.len() < selected.len();
        let mut connection =
            Connection::with_additional_fields(start > 0, has_next, ConnectionFields { total_count: total });
        for (id, state, i) in page {
            let status = &state.report.statuses[*i];
            connection.edges.push(Edge::new(
                (*id).to_owned(),
                CoFinancing {
                    measure: state.measures[*id].clone(),
                    status: status.status,
                    findings: status.findings.iter().map(|f| Finding::from(&state.report.findings[*f])).collect(),
                },
            ));
        }
        Ok(connection)
    }

    /// Envelopes (notified, committed, headroom per region and compartment), findings, needs coverage and school
    /// matching of the caller's territory. A dashboard gets the aggregates, not the findings' detail; counts of
    /// people are masked for every reader but the CNSA and the producing MDPH.
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
            }
            findings.extend(report.findings.iter().filter(|f| view.sees(&f.region, &f.departements)));
            for s in &report.statuses {
                if let Some(m) = state.measures.get(&s.measure_id)
                    && view.sees(&m.region_code, std::slice::from_ref(&m.departement_code))
                {
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
        let masked = masked_coverage(&coverage_rows, &view, threshold(ctx));
        let mut finding_counts: BTreeMap<(&str, Severity), i64> = BTreeMap::new();
        for f in &findings {
            *finding_counts.entry((f.code, f.severity)).or_default() += 1;
        }
        Ok(ReconciliationReport {
            envelopes,
            findings: if reach == Reach::AggregatesOnly {
                Vec::new()
            } else {
                findings.iter().map(|f| finding_for(f, &masked, &view)).collect()
            },
            finding_counts: finding_counts
                .into_iter()
                .map(|((code, severity), count)| FindingCount { code: code.to_owned(), severity, count })
                .collect(),
            status_counts: statuses.into_iter().map(|(status, count)| StatusCount { status, count }).collect(),
            needs_coverage: masked.report,
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
            async move { event }
        }))
    }
}
