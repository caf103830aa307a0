//! What the engine takes (a `Snapshot` of facts: measures, commitments, rules, school plans, needs, campaigns, the
//! reference territory, envelopes and national targets) and what it returns (a `Report`: findings, a co-financing
//! status per measure, the use of each envelope, socle splits, needs coverage, school matching).

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::territory::annex::AnnexFigures;
use crate::vocabulary::{Compartment, CostComponent, NeedsIndicatorKind, Payer};

/// A measure as the engine sees it: the record as submitted, the very one the API shows. The region's state holds
/// each measure once (`Arc`), for the engine and for readers alike (at scale 10 a copy of its own cost 22 MB).
pub type MeasureFact = crate::records::MeasureRecord;

/// A funder's active commitment.
#[derive(Clone, Debug)]
pub struct CommitmentFact {
    pub id: String,
    pub measure_id: String,
    pub funder: Payer,
    pub funder_code: String,
    pub component: CostComponent,
    pub full_year_cents: i64,
    /// (year, cents).
    pub schedule: Vec<(i32, i64)>,
    pub capacity: i64,
    pub installation: NaiveDate,
}

#[derive(Clone, Debug)]
pub struct RuleFact {
    pub category: String,
    pub component: CostComponent,
    pub payer: Payer,
    pub share_bp: Option<i32>,
    pub departement: Option<String>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

#[derive(Clone, Debug)]
pub struct SchoolPlanFact {
    pub id: String,
    pub academie: String,
    pub departement: String,
    pub cost_cents: i64,
    pub year: i32,
}

/// One cell of an MDPH's latest needs picture, summed over age bands.
#[derive(Clone, Debug)]
pub struct NeedsFact {
    pub departement: String,
    pub orientation: String,
    pub indicator: NeedsIndicatorKind,
    pub people: i64,
}

/// What an institution expected by a campaign has (or has not) submitted.
#[derive(Clone, Debug)]
pub struct CampaignStandingFact {
    pub campaign_id: String,
    pub campaign_name: String,
    pub deadline: NaiveDate,
    /// The last instant that counts as on time (end of the deadline day, Paris time).
    pub deadline_end: DateTime<Utc>,
    pub institution_code: String,
    pub institution_name: String,
    pub region: String,
    pub departements: Vec<String>,
    pub first_submission: Option<DateTime<Utc>>,
}

/// The national split of the socle (circular §4), in cents.
#[derive(Clone, Copy, Debug, Default)]
pub struct NationalTargets {
    pub socle: i64,
    pub children: i64,
    pub ase: i64,
    pub adults: i64,
}

/// The reference territory the hygiene checks rely on.
#[derive(Clone, Debug)]
pub struct Territory {
    /// région → its départements.
    pub departements_of_region: BTreeMap<String, BTreeSet<String>>,
    /// département → académie.
    pub academie_of: BTreeMap<String, String>,
    /// académie → région.
    pub region_of_academie: BTreeMap<String, String>,
    /// collectivité code → départements it covers.
    pub collectivite_departements: BTreeMap<String, BTreeSet<String>>,
    /// MDPH orientation code → the structure category it points to.
    pub orientation_category: BTreeMap<String, String>,
    /// legacy category → successor.
    pub successor: BTreeMap<String, String>,
    /// Communes whose collectivité is not simply their département's (the Métropole de Lyon's).
    pub commune_parts: crate::territory::communes::CommuneParts,
}

impl Default for Territory {
    fn default() -> Self {
        Territory {
            departements_of_region: BTreeMap::new(),
            academie_of: BTreeMap::new(),
            region_of_academie: BTreeMap::new(),
            collectivite_departements: BTreeMap::new(),
            orientation_category: BTreeMap::new(),
            successor: BTreeMap::new(),
            commune_parts: crate::territory::communes::CommuneParts::shipped(),
        }
    }
}

impl Territory {
    /// The collectivités that cover a measure's département and, where two share it, its commune.
    pub fn cofinancers_of<'a>(&'a self, departement: &str, commune: Option<&str>) -> Vec<&'a str> {
        let covering: Vec<&str> = self
            .collectivite_departements
            .iter()
            .filter(|(_, departements)| departements.contains(departement))
            .map(|(code, _)| code.as_str())
            .collect();
        self.commune_parts.covering(&covering, commune)
    }
}

/// Everything the engine reconciles.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    // What a write leaves as it was is shared (`Arc`) between a region's successive states: a write's
    // recomputation copies pointers to the untouched measures and commitments, not the facts themselves, nor the
    // reference data and the other institutions' submissions.
    pub measures: Vec<Arc<MeasureFact>>,
    pub commitments: Vec<Arc<CommitmentFact>>,
    pub rules: Arc<Vec<RuleFact>>,
    /// Legacy categories (closed in 2018).
    pub legacy_categories: Arc<BTreeSet<String>>,
    /// (region, compartment) → notified AE in cents.
    pub envelopes: Arc<BTreeMap<(String, Compartment), i64>>,
    pub school_plans: Arc<Vec<SchoolPlanFact>>,
    pub territory: Arc<Territory>,
    pub needs: Arc<Vec<NeedsFact>>,
    pub campaigns: Arc<Vec<CampaignStandingFact>>,
    /// The instant deadlines are judged at.
    pub now: DateTime<Utc>,
    pub targets: NationalTargets,
    /// The annex as stored, for the national checks (rounding gaps): only in a national snapshot.
    pub annex: Option<AnnexFigures>,
    /// The national steering figures in force for the snapshot's regions.
    pub steering: Arc<SteeringFacts>,
}

/// The national steering figures in force (or as of a date): the CNSA's projected trajectory and drawing rights,
/// the ARS's installation forecasts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SteeringFacts {
    pub trajectory: Vec<TrajectoryFact>,
    pub drawing_rights: Vec<DrawingRightFact>,
    pub forecasts: Vec<ForecastFact>,
}

/// The CNSA's projection for a region's compartment in one year: AE programmed for installations that year, CP
/// called that year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrajectoryFact {
    pub region: String,
    pub compartment: Compartment,
    pub year: i32,
    pub ae_cents: i64,
    pub cp_cents: i64,
}

/// The CP a region may call in a year (all compartments), set by the CNSA after the annual exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrawingRightFact {
    pub region: String,
    pub year: i32,
    pub cp_cents: i64,
}

/// An ARS's forecast of installations and CP for a compartment and a year, and, once the deadline of the campaign
/// that stabilises it has passed, the forecast as it stood then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForecastFact {
    pub region: String,
    pub compartment: Compartment,
    pub year: i32,
    pub solutions: i64,
    pub cp_cents: i64,
    pub stabilised: Option<StabilisedForecast>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StabilisedForecast {
    pub deadline: chrono::NaiveDate,
    pub solutions: i64,
    pub cp_cents: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, async_graphql::Enum)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, async_graphql::Enum)]
pub enum SubjectKind {
    Measure,
    Commitment,
    Envelope,
    Academie,
    Departement,
    Region,
    Institution,
    Annex,
}

/// A figure compared by a finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FigureValue {
    Cents(i64),
    Count(i64),
    /// A count of people from MDPH data: masked below the threshold outside the producing MDPH and the CNSA.
    People(i64),
    /// A count of people as a reader outside the producing MDPH and the CNSA sees it when a count behind it is
    /// masked ("<11", "30 + <11"); never produced by the engine, only by the masked view of a needs finding.
    MaskedPeople(String),
    BasisPoints(i64),
    Year(i32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub subject_kind: SubjectKind,
    pub subject: String,
    /// The region the finding belongs to, for scoping ("FR" for a national finding, seen by every reader).
    pub region: String,
    /// The départements it concerns, for scoping: a principal of a département sees a finding that names one of
    /// its départements; an empty list means a regional matter (envelopes), seen at region level and above.
    pub departements: Vec<String>,
    pub figures: Vec<(&'static str, FigureValue)>,
    pub message: String,
}

/// Where a measure stands between its funders (CONTRACT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, async_graphql::Enum)]
pub enum CoFinancingStatus {
    /// Both funders committed and every figure agrees.
    Balanced,
    /// A funder the rules expect has not committed.
    AwaitingCofinancer,
    /// The split between funders is not the one the rules set.
    ShareMismatch,
    /// A funder's yearly amounts exceed its full-year amount, or an amount is missing.
    AmountMismatch,
    /// The funders (or the measure) do not agree on the capacity.
    CapacityMismatch,
    /// The funders (or the measure) do not agree on the installation year.
    ScheduleMismatch,
    /// A funder the rules do not expect committed.
    UnexpectedCofinancer,
    /// One funder, as the rules expect.
    SingleFunder,
    /// The measure is abandoned: no co-financing is awaited (commitments left on it are orphan findings).
    Abandoned,
}

impl CoFinancingStatus {
    pub const ALL: [CoFinancingStatus; 9] = [
        CoFinancingStatus::Balanced,
        CoFinancingStatus::AwaitingCofinancer,
        CoFinancingStatus::ShareMismatch,
        CoFinancingStatus::AmountMismatch,
        CoFinancingStatus::CapacityMismatch,
        CoFinancingStatus::ScheduleMismatch,
        CoFinancingStatus::UnexpectedCofinancer,
        CoFinancingStatus::SingleFunder,
        CoFinancingStatus::Abandoned,
    ];

    /// As stored and as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CoFinancingStatus::Balanced => "BALANCED",
            CoFinancingStatus::AwaitingCofinancer => "AWAITING_COFINANCER",
            CoFinancingStatus::ShareMismatch => "SHARE_MISMATCH",
            CoFinancingStatus::AmountMismatch => "AMOUNT_MISMATCH",
            CoFinancingStatus::CapacityMismatch => "CAPACITY_MISMATCH",
            CoFinancingStatus::ScheduleMismatch => "SCHEDULE_MISMATCH",
            CoFinancingStatus::UnexpectedCofinancer => "UNEXPECTED_COFINANCER",
            CoFinancingStatus::SingleFunder => "SINGLE_FUNDER",
            CoFinancingStatus::Abandoned => "ABANDONED",
        }
    }

    pub fn from_stored(text: &str) -> Option<CoFinancingStatus> {
        CoFinancingStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasureStatusReport {
    pub measure_id: String,
    pub status: CoFinancingStatus,
    /// Indexes into the report's findings.
    pub findings: Vec<usize>,
    /// The collectivité whose commitment is awaited (designated by the ARS, or the only one covering the
    /// measure's territory), when one is.
    pub awaited_cofinancer: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeUse {
    pub region: String,
    pub compartment: Compartment,
    pub notified: i64,
    /// Full-year assurance-maladie commitments on measures of this compartment (abandoned measures aside).
    pub committed: i64,
}

impl EnvelopeUse {
    pub fn headroom(&self) -> i64 {
        self.notified - self.committed
    }
}

/// A region's socle commitments (assurance maladie, full year) by public.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocleSplit {
    pub region: String,
    /// Children, ASE included.
    pub children: i64,
    /// Of which children protected by the ASE.
    pub ase: i64,
    pub adults: i64,
}

/// Programmed solutions against people waiting, for one département and one kind of orientation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedsCoverage {
    pub region: String,
    pub departement: String,
    /// MDPH orientation codes sharing the structure category ("7.6", "7.7" → 186).
    pub orientations: Vec<String>,
    pub category: Option<String>,
    /// People with an orientation and no solution: waiting for admission, no step taken, admission impossible.
    pub waiting: i64,
    /// Young adults kept in a children's service, whose designated adult structure is of this kind.
    pub creton: i64,
    /// Solutions of the measures programmed for this category in the département (abandoned ones aside).
    pub programmed: i64,
}

/// An académie's school-support plans against the ARS's école commitments, for one year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchoolMatch {
    pub region: String,
    pub academie: String,
    pub year: i32,
    pub planned_cost: i64,
    pub committed: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Shared: a write's report keeps the findings of every measure it did not touch.
    pub findings: Vec<Arc<Finding>>,
    pub statuses: Vec<MeasureStatusReport>,
    pub envelopes: Vec<EnvelopeUse>,
    pub socle_splits: Vec<SocleSplit>,
    pub needs_coverage: Vec<NeedsCoverage>,
    pub school_matching: Vec<SchoolMatch>,
    /// Per region × compartment × year: AE and CP against the CNSA's trajectory.
    pub credits: Vec<CreditYear>,
    /// Per region × year: CP called against the drawing rights and the forecast.
    pub drawing: Vec<DrawingYear>,
}

/// One year of a regional envelope's credits: the AE committed (assurance maladie, full year) on measures installed
/// that year and the CP called that year, beside the CNSA's trajectory when it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditYear {
    pub region: String,
    pub compartment: Compartment,
    pub year: i32,
    pub ae_programmed: i64,
    pub cp_called: i64,
    pub trajectory_ae: Option<i64>,
    pub trajectory_cp: Option<i64>,
}

/// One year of a region's payment credits: called (all compartments), the drawing rights, the ARS's forecast.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrawingYear {
    pub region: String,
    pub year: i32,
    pub cp_called: i64,
    pub drawing_rights: Option<i64>,
    pub forecast_cp: Option<i64>,
    pub forecast_solutions: Option<i64>,
}

/// The scope of national findings.
pub const NATIONAL: &str = "FR";
