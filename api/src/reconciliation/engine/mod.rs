//! The reconciliation engine (pure: no HTTP, no database). It takes a snapshot of what institutions submitted and
//! returns what disagrees and why: findings with a stable code, a severity, a subject, the figures compared and a
//! sentence in plain French, a co-financing status per measure, and the use of each envelope.

pub mod coverage;
pub mod hygiene;

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::money::Euros;
use crate::territory::annex::AnnexFigures;
use crate::vocabulary::{
    Compartment, CostComponent, MeasureCompartment, MeasurePublic, MeasureStatus, NeedsIndicatorKind, Payer,
};

/// A measure as the engine sees it.
#[derive(Clone, Debug)]
pub struct MeasureFact {
    pub id: String,
    pub reference: String,
    pub region: String,
    pub departement: String,
    pub category: String,
    pub compartment: MeasureCompartment,
    pub publics: Vec<MeasurePublic>,
    pub solutions: i64,
    pub planned_installation: NaiveDate,
    pub status: MeasureStatus,
    pub creation: bool,
    pub finess: Option<String>,
}

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
#[derive(Clone, Debug, Default)]
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
}

/// Everything the engine reconciles.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub measures: Vec<MeasureFact>,
    pub commitments: Vec<CommitmentFact>,
    pub rules: Vec<RuleFact>,
    /// Legacy categories (closed in 2018).
    pub legacy_categories: BTreeSet<String>,
    /// (region, compartment) → notified AE in cents.
    pub envelopes: BTreeMap<(String, Compartment), i64>,
    pub school_plans: Vec<SchoolPlanFact>,
    pub territory: Arc<Territory>,
    pub needs: Vec<NeedsFact>,
    pub campaigns: Vec<CampaignStandingFact>,
    /// The instant deadlines are judged at.
    pub now: DateTime<Utc>,
    pub targets: NationalTargets,
    /// The annex as stored, for the national checks (rounding gaps): only in a national snapshot.
    pub annex: Option<AnnexFigures>,
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
}

impl CoFinancingStatus {
    pub const ALL: [CoFinancingStatus; 8] = [
        CoFinancingStatus::Balanced,
        CoFinancingStatus::AwaitingCofinancer,
        CoFinancingStatus::ShareMismatch,
        CoFinancingStatus::AmountMismatch,
        CoFinancingStatus::CapacityMismatch,
        CoFinancingStatus::ScheduleMismatch,
        CoFinancingStatus::UnexpectedCofinancer,
        CoFinancingStatus::SingleFunder,
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
        }
    }

    pub fn from_stored(text: &str) -> Option<CoFinancingStatus> {
        CoFinancingStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// When several problems stand, the status names the most fundamental one: a funder who should not be there,
    /// then one missing, then the split, the amounts, the capacity, the year.
    fn priority(self) -> u8 {
        match self {
            CoFinancingStatus::UnexpectedCofinancer => 0,
            CoFinancingStatus::AwaitingCofinancer => 1,
            CoFinancingStatus::ShareMismatch => 2,
            CoFinancingStatus::AmountMismatch => 3,
            CoFinancingStatus::CapacityMismatch => 4,
            CoFinancingStatus::ScheduleMismatch => 5,
            CoFinancingStatus::SingleFunder | CoFinancingStatus::Balanced => 6,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasureStatusReport {
    pub measure_id: String,
    pub status: CoFinancingStatus,
    /// Indexes into the report's findings.
    pub findings: Vec<usize>,
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

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub statuses: Vec<MeasureStatusReport>,
    pub envelopes: Vec<EnvelopeUse>,
    pub socle_splits: Vec<SocleSplit>,
    pub needs_coverage: Vec<NeedsCoverage>,
    pub school_matching: Vec<SchoolMatch>,
}

/// A share of a joint split may differ from the rule by this much (rounding of amounts).
pub const SHARE_TOLERANCE_BP: i64 = 100;

fn euros(cents: i64) -> String {
    Euros(cents).to_french()
}

/// The rules that apply to a measure's category in its département on its installation date: a département's
/// convention replaces the national rule for the same component and payer.
fn applicable_rules<'a>(rules: &'a [RuleFact], measure: &MeasureFact) -> Vec<&'a RuleFact> {
    let day = measure.planned_installation;
    let valid: Vec<&RuleFact> = rules
        .iter()
        .filter(|r| r.category == measure.category)
        .filter(|r| r.valid_from <= day && r.valid_to.is_none_or(|to| to >= day))
        .filter(|r| r.departement.as_ref().is_none_or(|d| *d == measure.departement))
        .collect();
    valid
        .iter()
        .copied()
        .filter(|r| {
            r.departement.is_some()
                || !valid.iter().any(|o| o.departement.is_some() && o.component == r.component && o.payer == r.payer)
        })
        .collect()
}

struct MeasureCheck<'a> {
    measure: &'a MeasureFact,
    findings: Vec<Finding>,
}

impl<'a> MeasureCheck<'a> {
    fn add(
        &mut self,
        code: &'static str,
        severity: Severity,
        figures: Vec<(&'static str, FigureValue)>,
        message: String,
    ) {
        self.findings.push(Finding {
            code,
            severity,
            subject_kind: SubjectKind::Measure,
            subject: self.measure.id.clone(),
            region: self.measure.region.clone(),
            departements: vec![self.measure.departement.clone()],
            figures,
            message: format!("Mesure {} : {message}", self.measure.reference),
        });
    }
}

fn check_measure(
    measure: &MeasureFact,
    commitments: &[&CommitmentFact],
    snapshot: &Snapshot,
    category_rules: &[RuleFact],
) -> (CoFinancingStatus, Vec<Finding>) {
    let legacy = &snapshot.legacy_categories;
    let mut check = MeasureCheck { measure, findings: Vec::new() };
    let mut problems: BTreeSet<CoFinancingStatus> = BTreeSet::new();
    if measure.creation && legacy.contains(&measure.category) {
        check.add(
            "LEGACY_CATEGORY_ON_CREATION",
            Severity::Warning,
            vec![],
            format!("création sous la catégorie FINESS {} fermée en 2018", measure.category),
        );
    }
    let rules = applicable_rules(category_rules, measure);
    // Only the ARS and the collectivités commit through the hub: the Éducation nationale's teachers (school plans),
    // the Agefiph/FIPHFP or the State are part of a measure's financing but are not awaited here.
    let expected: BTreeSet<Payer> =
        rules.iter().map(|r| r.payer).filter(|p| matches!(p, Payer::AssuranceMaladie | Payer::Collectivite)).collect();
    let by_authorisation = rules.iter().any(|r| r.payer == Payer::SelonAutorisation);
    let funders: BTreeSet<Payer> = commitments.iter().map(|c| c.funder).collect();
    let creton = measure.publics.contains(&MeasurePublic::Creton);

    // A collectivité commits only for the départements it covers (Métropole de Lyon for the Rhône's metropolis…).
    for c in commitments.iter().filter(|c| c.funder == Payer::Collectivite) {
        if let Some(covered) = snapshot.territory.collectivite_departements.get(&c.funder_code)
            && !covered.contains(&measure.departement)
        {
            check.add(
                "COFINANCER_OUTSIDE_TERRITORY",
                Severity::Error,
                vec![],
                format!(
                    "{} s'engage sur une mesure du département {}, qu'elle ne couvre pas ({})",
                    c.funder_code,
                    measure.departement,
                    covered.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
            problems.insert(CoFinancingStatus::UnexpectedCofinancer);
        }
    }
    if commitments.is_empty() {
        check.add("NO_COMMITMENT", Severity::Warning, vec![], "aucun financeur n'a encore engagé de crédits".into());
        problems.insert(CoFinancingStatus::AwaitingCofinancer);
    }
    if !by_authorisation {
        for funder in &funders {
            if !expected.contains(funder) {
                if *funder == Payer::Collectivite && creton {
                    continue; // CASF L242-4: the adult structure's funder pays for a Creton young adult.
                }
                let (code, message) = if *funder == Payer::AssuranceMaladie {
                    (
                        "COLLECTIVITE_ONLY_CONSUMES_AE",
                        format!(
                            "la catégorie {} relève de la seule collectivité : l'engagement de l'assurance maladie consomme de l'AE à tort",
                            measure.category
                        ),
                    )
                } else {
                    (
                        "UNEXPECTED_COFINANCER",
                        format!(
                            "la catégorie {} relève de l'assurance maladie seule : aucun financement de la collectivité n'est attendu",
                            measure.category
                        ),
                    )
                };
                check.add(code, Severity::Error, vec![], message);
                problems.insert(CoFinancingStatus::UnexpectedCofinancer);
            }
        }
        for payer in &expected {
            if !funders.contains(payer) && !commitments.is_empty() {
                check.add(
                    "AWAITING_COFINANCER",
                    Severity::Warning,
                    vec![],
                    format!("l'engagement attendu de {} manque", payer_label(*payer)),
                );
                problems.insert(CoFinancingStatus::AwaitingCofinancer);
            }
        }
        // Components: each funder commits on the component the rules give it.
        for c in commitments {
            let allowed: Vec<CostComponent> =
                rules.iter().filter(|r| r.payer == c.funder).map(|r| r.component).collect();
            if !allowed.is_empty() && !allowed.contains(&c.component) {
                check.add(
                    "COMPONENT_MISMATCH",
                    Severity::Error,
                    vec![],
                    format!(
                        "{} s'engage sur la composante {} alors que les règles lui attribuent {}",
                        c.funder_code,
                        c.component.as_str(),
                        allowed.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                );
                problems.insert(CoFinancingStatus::ShareMismatch);
            }
        }
        // Flat shares (CAMSP 80/20): each payer's part of the total must match its share.
        let shared: Vec<&&RuleFact> = rules.iter().filter(|r| r.share_bp.is_some_and(|s| s < 10_000)).collect();
        let total: i64 = commitments.iter().map(|c| c.full_year_cents).sum();
        if !shared.is_empty() && total > 0 && expected.iter().all(|p| funders.contains(p)) {
            for rule in shared {
                let paid: i64 = commitments.iter().filter(|c| c.funder == rule.payer).map(|c| c.full_year_cents).sum();
                let actual_bp = (i128::from(paid) * 10_000 / i128::from(total)) as i64;
                let expected_bp = i64::from(rule.share_bp.unwrap_or_default());
                if (actual_bp - expected_bp).abs() > SHARE_TOLERANCE_BP {
                    check.add(
                        "SHARE_MISMATCH",
                        Severity::Error,
                        vec![
                            ("partAttendue", FigureValue::BasisPoints(expected_bp)),
                            ("partConstatee", FigureValue::BasisPoints(actual_bp)),
                            ("montant", FigureValue::Cents(paid)),
                            ("total", FigureValue::Cents(total)),
                        ],
                        format!(
                            "{} finance {} sur {} soit {} %, la règle prévoit {} %",
                            payer_label(rule.payer),
                            euros(paid),
                            euros(total),
                            crate::money::basis_points_to_percent(actual_bp).replace('.', ","),
                            crate::money::basis_points_to_percent(expected_bp).replace('.', ",")
                        ),
                    );
                    problems.insert(CoFinancingStatus::ShareMismatch);
                }
            }
        }
    }
    // Amounts: yearly payment credits never exceed the full-year amount.
    for c in commitments {
        if let Some((year, cents)) = c.schedule.iter().find(|(_, cents)| *cents > c.full_year_cents) {
            check.add(
                "CP_EXCEEDS_FULL_YEAR",
                Severity::Error,
                vec![
                    ("annee", FigureValue::Year(*year)),
                    ("cp", FigureValue::Cents(*cents)),
                    ("anneePleine", FigureValue::Cents(c.full_year_cents)),
                ],
                format!(
                    "{} prévoit {} en {year}, plus que son montant en année pleine ({})",
                    c.funder_code,
                    euros(*cents),
                    euros(c.full_year_cents)
                ),
            );
            problems.insert(CoFinancingStatus::AmountMismatch);
        }
        if c.full_year_cents == 0 {
            check.add(
                "ZERO_AMOUNT",
                Severity::Warning,
                vec![],
                format!("{} s'engage pour un montant nul", c.funder_code),
            );
            problems.insert(CoFinancingStatus::AmountMismatch);
        }
    }
    // Capacity and installation year: every funder's view against each other's.
    let capacities: BTreeSet<i64> = commitments.iter().map(|c| c.capacity).collect();
    if capacities.len() > 1 {
        let views: Vec<String> =
            commitments.iter().map(|c| format!("{} {} places", c.funder_code, c.capacity)).collect();
        check.add(
            "CAPACITY_MISMATCH",
            Severity::Error,
            commitments.iter().map(|c| ("capacite", FigureValue::Count(c.capacity))).collect(),
            format!("les financeurs ne voient pas la même capacité ({})", views.join(", ")),
        );
        problems.insert(CoFinancingStatus::CapacityMismatch);
    }
    let years: BTreeSet<i32> = commitments.iter().map(|c| c.installation.year()).collect();
    if years.len() > 1 {
        let views: Vec<String> =
            commitments.iter().map(|c| format!("{} en {}", c.funder_code, c.installation.year())).collect();
        check.add(
            "INSTALLATION_YEAR_MISMATCH",
            Severity::Error,
            commitments.iter().map(|c| ("anneeInstallation", FigureValue::Year(c.installation.year()))).collect(),
            format!("les financeurs ne prévoient pas l'installation la même année ({})", views.join(", ")),
        );
        problems.insert(CoFinancingStatus::ScheduleMismatch);
    }
    // AE versus CP on the assurance-maladie side.
    for c in commitments.iter().filter(|c| c.funder == Payer::AssuranceMaladie) {
        let installed_year = c.installation.year();
        if let Some((year, cents)) = c.schedule.iter().find(|(y, cents)| *y < installed_year && *cents > 0) {
            check.add(
                "CP_BEFORE_INSTALLATION",
                Severity::Warning,
                vec![("annee", FigureValue::Year(*year)), ("cp", FigureValue::Cents(*cents)), ("anneeInstallation", FigureValue::Year(installed_year))],
                format!("des crédits de paiement ({}) sont appelés en {year}, avant l'installation prévue en {installed_year}", euros(*cents)),
            );
        }
        if measure.status == MeasureStatus::Installee && c.schedule.iter().all(|(_, cents)| *cents == 0) {
            check.add(
                "INSTALLED_WITHOUT_CP",
                Severity::Warning,
                vec![],
                "mesure installée sans crédit de paiement prévu".into(),
            );
        }
    }
    if measure.status == MeasureStatus::Abandonnee && !commitments.is_empty() {
        check.add(
            "ORPHAN_COMMITMENT",
            Severity::Warning,
            vec![("engagements", FigureValue::Count(commitments.len() as i64))],
            "des engagements subsistent sur une mesure abandonnée".into(),
        );
    }
    let status = problems.iter().copied().min_by_key(|s| s.priority()).unwrap_or(if funders.len() <= 1 {
        CoFinancingStatus::SingleFunder
    } else {
        CoFinancingStatus::Balanced
    });
    (status, check.findings)
}

fn payer_label(payer: Payer) -> &'static str {
    match payer {
        Payer::AssuranceMaladie => "l'assurance maladie",
        Payer::Collectivite => "la collectivité",
        Payer::Etat => "l'État",
        Payer::EducationNationale => "l'Éducation nationale",
        Payer::AgefiphFiphfp => "l'Agefiph / le FIPHFP",
        Payer::SelonAutorisation => "le financeur désigné par l'autorisation",
    }
}

fn compartment_label(compartment: Compartment) -> &'static str {
    match compartment {
        Compartment::Socle => "socle",
        Compartment::Precoce => "précoce",
        Compartment::Ecole => "école",
    }
}

/// Reconciles a snapshot: every measure's co-financing status, envelope ceilings and balances, payment credits,
/// territory hygiene, needs coverage, school matching, campaign deadlines; the national checks when the snapshot
/// carries the annex.
pub fn reconcile(snapshot: &Snapshot) -> Report {
    let mut report = Report::default();
    let mut by_measure: BTreeMap<&str, Vec<&CommitmentFact>> = BTreeMap::new();
    for c in &snapshot.commitments {
        by_measure.entry(c.measure_id.as_str()).or_default().push(c);
    }
    let mut duplicates: BTreeMap<(&str, &str, i32, i64), Vec<&MeasureFact>> = BTreeMap::new();
    let mut committed: BTreeMap<(String, Compartment), i64> = BTreeMap::new();
    let mut splits: BTreeMap<String, SocleSplit> = BTreeMap::new();
    // The rules of each category, found once rather than scanned for every measure.
    let mut rules_of: std::collections::HashMap<&str, Vec<RuleFact>> = std::collections::HashMap::new();
    for rule in &snapshot.rules {
        rules_of.entry(rule.category.as_str()).or_default().push(rule.clone());
    }
    // (region, compartment, year) → CP called, and AE of the measures installed by then.
    let mut cp_by_year: BTreeMap<(String, Compartment, i32), i64> = BTreeMap::new();
    let mut ae_installed: BTreeMap<(String, Compartment), Vec<(i32, i64)>> = BTreeMap::new();
    for measure in &snapshot.measures {
        let commitments = by_measure.get(measure.id.as_str()).cloned().unwrap_or_default();
        let category_rules = rules_of.get(measure.category.as_str()).map_or(&[][..], Vec::as_slice);
        let (status, findings) = check_measure(measure, &commitments, snapshot, category_rules);
        let first = report.findings.len();
        report.findings.extend(findings);
        report.statuses.push(MeasureStatusReport {
            measure_id: measure.id.clone(),
            status,
            findings: (first..report.findings.len()).collect(),
        });
        if measure.status != MeasureStatus::Abandonnee {
            let envelope = (measure.region.clone(), measure.compartment.envelope());
            let mut am = 0;
            for c in commitments.iter().filter(|c| c.funder == Payer::AssuranceMaladie) {
                am += c.full_year_cents;
                for (year, cents) in &c.schedule {
                    *cp_by_year.entry((measure.region.clone(), envelope.1, *year)).or_default() += cents;
                }
                ae_installed.entry(envelope.clone()).or_default().push((c.installation.year(), c.full_year_cents));
            }
            *committed.entry(envelope).or_default() += am;
            let split = splits
                .entry(measure.region.clone())
                .or_insert_with(|| SocleSplit { region: measure.region.clone(), ..Default::default() });
            match measure.compartment {
                MeasureCompartment::SocleEnfants => split.children += am,
                MeasureCompartment::SocleAse => {
                    split.children += am;
                    split.ase += am;
                }
                MeasureCompartment::SocleAdultes => split.adults += am,
                MeasureCompartment::Precoce | MeasureCompartment::Ecole => {}
            }
            duplicates
                .entry((
                    measure.departement.as_str(),
                    measure.category.as_str(),
                    measure.planned_installation.year(),
                    measure.solutions,
                ))
                .or_default()
                .push(measure);
        }
    }
    for ((departement, category, year, solutions), measures) in duplicates {
        if measures.len() > 1 {
            let references: Vec<&str> = measures.iter().map(|m| m.reference.as_str()).collect();
            for m in &measures {
                report.findings.push(Finding {
                    code: "POSSIBLE_DUPLICATE",
                    severity: Severity::Warning,
                    subject_kind: SubjectKind::Measure,
                    subject: m.id.clone(),
                    region: m.region.clone(),
                    departements: vec![m.departement.clone()],
                    figures: vec![("mesures", FigureValue::Count(measures.len() as i64))],
                    message: format!(
                        "Mesure {} : {} mesures identiques (département {departement}, catégorie {category}, {solutions} solutions, {year}) : {}",
                        m.reference,
                        measures.len(),
                        references.join(", ")
                    ),
                });
            }
        }
    }
    for ((region, compartment), notified) in &snapshot.envelopes {
        let used = committed.get(&(region.clone(), *compartment)).copied().unwrap_or_default();
        let envelope =
            EnvelopeUse { region: region.clone(), compartment: *compartment, notified: *notified, committed: used };
        if envelope.headroom() < 0 {
            report.findings.push(Finding {
                code: "ENVELOPE_EXCEEDED",
                severity: Severity::Error,
                subject_kind: SubjectKind::Envelope,
                subject: format!("{region}/{}", compartment.as_str()),
                region: region.clone(),
                departements: Vec::new(),
                figures: vec![("notifie", FigureValue::Cents(*notified)), ("engage", FigureValue::Cents(used))],
                message: format!(
                    "Région {region}, enveloppe {} : {} engagés pour {} notifiés, dépassement de {}",
                    compartment_label(*compartment),
                    euros(used),
                    euros(*notified),
                    euros(used - notified)
                ),
            });
        }
        report.envelopes.push(envelope);
    }
    payment_credits(snapshot, &cp_by_year, &ae_installed, &mut report);
    report.socle_splits = splits.into_values().collect();
    socle_balance(snapshot, &mut report);
    school_matching(snapshot, &mut report);
    hygiene::check(snapshot, &mut report);
    coverage::needs_coverage(snapshot, &mut report);
    hygiene::campaign_deadlines(snapshot, &mut report);
    if let Some(annex) = &snapshot.annex {
        report.findings.extend(national_findings(annex, &snapshot.targets, &report.socle_splits));
    }
    report
}

/// Yearly payment credits of an envelope against the AE still available for that year: the AE committed on measures
/// installed by the end of the year, within the notified AE. CP beyond it are called for measures not yet installed,
/// or beyond the envelope.
fn payment_credits(
    snapshot: &Snapshot,
    cp_by_year: &BTreeMap<(String, Compartment, i32), i64>,
    ae_installed: &BTreeMap<(String, Compartment), Vec<(i32, i64)>>,
    report: &mut Report,
) {
    for ((region, compartment, year), cp) in cp_by_year {
        let envelope = (region.clone(), *compartment);
        let installed: i64 = ae_installed
            .get(&envelope)
            .map(|list| list.iter().filter(|(y, _)| y <= year).map(|(_, cents)| cents).sum())
            .unwrap_or_default();
        let available = match snapshot.envelopes.get(&envelope) {
            Some(notified) => installed.min(*notified),
            None => installed,
        };
        if *cp > available {
            report.findings.push(Finding {
                code: "CP_EXCEEDS_AVAILABLE_AE",
                severity: Severity::Error,
                subject_kind: SubjectKind::Envelope,
                subject: format!("{region}/{}/{year}", compartment.as_str()),
                region: region.clone(),
                departements: Vec::new(),
                figures: vec![
                    ("annee", FigureValue::Year(*year)),
                    ("cp", FigureValue::Cents(*cp)),
                    ("aeDisponible", FigureValue::Cents(available)),
                ],
                message: format!(
                    "Région {region}, enveloppe {}, {year} : {} de crédits de paiement appelés pour {} d'AE disponibles (mesures installées au plus tard en {year}, dans la limite de l'AE notifiée)",
                    compartment_label(*compartment),
                    euros(*cp),
                    euros(available)
                ),
            });
        }
    }
}

/// A region's socle, once committed, should lean towards the national split (400 M€ children of which 50 M€ ASE,
/// 585 M€ adults): the circular sets the split nationally, so a regional gap is a warning to discuss, not an error.
pub const BALANCE_TOLERANCE_BP: i64 = 1_000;

fn share_bp(part: i64, whole: i64) -> i64 {
    if whole == 0 { 0 } else { (i128::from(part) * 10_000 / i128::from(whole)) as i64 }
}

fn percent(bp: i64) -> String {
    crate::money::basis_points_to_percent(bp).replace('.', ",")
}

fn socle_balance(snapshot: &Snapshot, report: &mut Report) {
    let targets = snapshot.targets;
    if targets.socle == 0 || targets.children == 0 {
        return;
    }
    let children_target = share_bp(targets.children, targets.socle);
    let ase_target = share_bp(targets.ase, targets.children);
    for split in &report.socle_splits {
        let socle = split.children + split.adults;
        if socle == 0 {
            continue;
        }
        let children = share_bp(split.children, socle);
        if (children - children_target).abs() > BALANCE_TOLERANCE_BP {
            report.findings.push(Finding {
                code: "SOCLE_BALANCE_OFF_TARGET",
                severity: Severity::Info,
                subject_kind: SubjectKind::Region,
                subject: split.region.clone(),
                region: split.region.clone(),
                departements: Vec::new(),
                figures: vec![
                    ("partEnfants", FigureValue::BasisPoints(children)),
                    ("partEnfantsNationale", FigureValue::BasisPoints(children_target)),
                    ("enfants", FigureValue::Cents(split.children)),
                    ("adultes", FigureValue::Cents(split.adults)),
                ],
                message: format!(
                    "Région {} : les enfants reçoivent {} % du socle engagé ({} enfants, {} adultes), la répartition nationale est de {} %",
                    split.region,
                    percent(children),
                    euros(split.children),
                    euros(split.adults),
                    percent(children_target)
                ),
            });
        }
        let ase = share_bp(split.ase, split.children);
        if split.children > 0 && ase + BALANCE_TOLERANCE_BP < ase_target {
            report.findings.push(Finding {
                code: "ASE_SHARE_BELOW_TARGET",
                severity: Severity::Warning,
                subject_kind: SubjectKind::Region,
                subject: split.region.clone(),
                region: split.region.clone(),
                departements: Vec::new(),
                figures: vec![
                    ("partAse", FigureValue::BasisPoints(ase)),
                    ("partAseNationale", FigureValue::BasisPoints(ase_target)),
                    ("ase", FigureValue::Cents(split.ase)),
                    ("enfants", FigureValue::Cents(split.children)),
                ],
                message: format!(
                    "Région {} : les enfants protégés par l'ASE reçoivent {} % du socle enfants engagé ({} sur {}), la cible nationale est de {} %",
                    split.region,
                    percent(ase),
                    euros(split.ase),
                    euros(split.children),
                    percent(ase_target)
                ),
            });
        }
    }
}

/// Checks that only make sense for the whole country: the annex's printed totals against its rows, and the
/// national socle split against the amounts of the circular.
pub fn national_findings(annex: &AnnexFigures, targets: &NationalTargets, splits: &[SocleSplit]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let national = |code, severity, subject: String, figures, message| Finding {
        code,
        severity,
        subject_kind: SubjectKind::Annex,
        subject,
        region: NATIONAL.to_owned(),
        departements: Vec::new(),
        figures,
        message,
    };
    for check in crate::territory::annex::sum_checks(annex) {
        if check.gap().0 != 0 {
            findings.push(national(
                "ANNEX_ROUNDING_GAP",
                Severity::Info,
                format!("{}/{}", check.scope, check.column.as_str()),
                vec![
                    ("calcule", FigureValue::Cents(check.computed.0)),
                    ("imprime", FigureValue::Cents(check.printed.0)),
                ],
                format!(
                    "Annexe, {} colonne {} : la somme des lignes donne {}, le total imprimé est {} (écart de {})",
                    check.scope,
                    check.column.as_str().to_lowercase(),
                    euros(check.computed.0),
                    euros(check.printed.0),
                    euros(check.gap().0)
                ),
            ));
        }
    }
    if let Some(weight) = crate::territory::annex::overseas_weight_check(annex)
        && weight.computed_bp != weight.printed_bp
    {
        findings.push(national(
            "ANNEX_WEIGHT_GAP",
            Severity::Info,
            format!("{}/POIDS", weight.scope),
            vec![
                ("calcule", FigureValue::BasisPoints(weight.computed_bp)),
                ("imprime", FigureValue::BasisPoints(weight.printed_bp)),
            ],
            format!(
                "Annexe : le poids imprimé des DOM ({} %) ne correspond pas à celui qu'impliquent leurs lignes ({} %)",
                percent(weight.printed_bp),
                percent(weight.computed_bp)
            ),
        ));
    }
    let children: i64 = splits.iter().map(|s| s.children).sum();
    let ase: i64 = splits.iter().map(|s| s.ase).sum();
    let adults: i64 = splits.iter().map(|s| s.adults).sum();
    for (code, label, used, ceiling) in [
        ("NATIONAL_CHILDREN_SOCLE_EXCEEDED", "enfants", children, targets.children),
        ("NATIONAL_ASE_SOCLE_EXCEEDED", "enfants protégés par l'ASE", ase, targets.ase),
        ("NATIONAL_ADULTS_SOCLE_EXCEEDED", "adultes", adults, targets.adults),
    ] {
        if ceiling > 0 && used > ceiling {
            findings.push(national(
                code,
                Severity::Warning,
                format!("{NATIONAL}/SOCLE"),
                vec![("engage", FigureValue::Cents(used)), ("cible", FigureValue::Cents(ceiling))],
                format!(
                    "National : {} engagés sur le socle pour les {label}, au-delà des {} que leur réserve la circulaire",
                    euros(used),
                    euros(ceiling)
                ),
            ));
        }
    }
    findings
}

/// The scope of national findings.
pub const NATIONAL: &str = "FR";

/// Each académie's school-support plans against the assurance-maladie commitments on école measures of its
/// départements, per year of installation.
fn school_matching(snapshot: &Snapshot, report: &mut Report) {
    let territory = &snapshot.territory;
    let mut planned: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for plan in &snapshot.school_plans {
        *planned.entry((plan.academie.clone(), plan.year)).or_default() += plan.cost_cents;
    }
    let mut funded: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let measures: BTreeMap<&str, &MeasureFact> = snapshot.measures.iter().map(|m| (m.id.as_str(), m)).collect();
    for c in snapshot.commitments.iter().filter(|c| c.funder == Payer::AssuranceMaladie) {
        let Some(measure) = measures.get(c.measure_id.as_str()) else { continue };
        if measure.compartment != MeasureCompartment::Ecole || measure.status == MeasureStatus::Abandonnee {
            continue;
        }
        if let Some(academie) = territory.academie_of.get(&measure.departement) {
            *funded.entry((academie.clone(), c.installation.year())).or_default() += c.full_year_cents;
        }
    }
    let keys: BTreeSet<(String, i32)> = planned.keys().chain(funded.keys()).cloned().collect();
    for (academie, year) in keys {
        let cost = planned.get(&(academie.clone(), year)).copied().unwrap_or_default();
        let matched = funded.get(&(academie.clone(), year)).copied().unwrap_or_default();
        let region = territory.region_of_academie.get(&academie).cloned().unwrap_or_default();
        report.school_matching.push(SchoolMatch {
            region: region.clone(),
            academie: academie.clone(),
            year,
            planned_cost: cost,
            committed: matched,
        });
        if matched < cost {
            report.findings.push(Finding {
                code: "SCHOOL_PLAN_UNMATCHED",
                severity: Severity::Warning,
                subject_kind: SubjectKind::Academie,
                subject: format!("{academie}/{year}"),
                region,
                departements: territory
                    .academie_of
                    .iter()
                    .filter(|(_, a)| **a == academie)
                    .map(|(d, _)| d.clone())
                    .collect(),
                figures: vec![("coutPlans", FigureValue::Cents(cost)), ("engagementsEcole", FigureValue::Cents(matched))],
                message: format!(
                    "Académie {academie}, {year} : les plans d'appui à la scolarité coûtent {} côté médico-social, l'ARS n'a engagé que {} sur le compartiment école",
                    euros(cost),
                    euros(matched)
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rule(category: &str, component: CostComponent, payer: Payer, share: Option<i32>) -> RuleFact {
        RuleFact {
            category: category.into(),
            component,
            payer,
            share_bp: share,
            departement: None,
            valid_from: day(2017, 1, 1),
            valid_to: None,
        }
    }

    fn rules() -> Vec<RuleFact> {
        vec![
            rule("183", CostComponent::Global, Payer::AssuranceMaladie, Some(10_000)),
            rule("190", CostComponent::Global, Payer::AssuranceMaladie, Some(8_000)),
            rule("190", CostComponent::Global, Payer::Collectivite, Some(2_000)),
            rule("448", CostComponent::Soins, Payer::AssuranceMaladie, None),
            rule("448", CostComponent::Hebergement, Payer::Collectivite, None),
            rule("449", CostComponent::Global, Payer::Collectivite, Some(10_000)),
        ]
    }

    fn measure(id: &str, category: &str, compartment: MeasureCompartment) -> MeasureFact {
        MeasureFact {
            id: id.into(),
            reference: format!("REF-{id}"),
            region: "84".into(),
            departement: "69".into(),
            category: category.into(),
            compartment,
            publics: vec![MeasurePublic::Adultes],
            solutions: 30,
            planned_installation: day(2026, 9, 1),
            status: MeasureStatus::Programmee,
            creation: true,
            finess: None,
        }
    }

    fn commitment(
        measure: &str,
        funder: Payer,
        code: &str,
        component: CostComponent,
        cents: i64,
        capacity: i64,
        year: i32,
    ) -> CommitmentFact {
        CommitmentFact {
            id: format!("{measure}-{code}-{}", component.as_str()),
            measure_id: measure.into(),
            funder,
            funder_code: code.into(),
            component,
            full_year_cents: cents,
            schedule: vec![(year, cents)],
            capacity,
            installation: day(year, 1, 1),
        }
    }

    fn status_of(snapshot: &Snapshot, id: &str) -> (CoFinancingStatus, Vec<&'static str>) {
        let report = reconcile(snapshot);
        let s = report.statuses.iter().find(|s| s.measure_id == id).unwrap();
        (s.status, s.findings.iter().map(|i| report.findings[*i].code).collect())
    }

    fn eam_snapshot(commitments: Vec<CommitmentFact>) -> Snapshot {
        Snapshot {
            measures: vec![measure("m", "448", MeasureCompartment::SocleAdultes)],
            commitments,
            rules: rules(),
            ..Default::default()
        }
    }

    #[test]
    fn an_eam_moves_from_awaiting_to_capacity_mismatch_to_balanced() {
        let ars = commitment("m", Payer::AssuranceMaladie, "ARS-84", CostComponent::Soins, 45_000_000, 30, 2026);
        assert_eq!(
            status_of(&eam_snapshot(vec![]), "m"),
            (CoFinancingStatus::AwaitingCofinancer, vec!["NO_COMMITMENT"])
        );
        assert_eq!(
            status_of(&eam_snapshot(vec![ars.clone()]), "m"),
            (CoFinancingStatus::AwaitingCofinancer, vec!["AWAITING_COFINANCER"])
        );
        let cd_25 = commitment("m", Payer::Collectivite, "CD-69", CostComponent::Hebergement, 30_000_000, 25, 2026);
        assert_eq!(
            status_of(&eam_snapshot(vec![ars.clone(), cd_25]), "m"),
            (CoFinancingStatus::CapacityMismatch, vec!["CAPACITY_MISMATCH"])
        );
        let cd_30 = commitment("m", Payer::Collectivite, "CD-69", CostComponent::Hebergement, 30_000_000, 30, 2026);
        assert_eq!(status_of(&eam_snapshot(vec![ars, cd_30]), "m"), (CoFinancingStatus::Balanced, vec![]));
    }

    #[test]
    fn funders_disagreeing_on_the_year_is_a_schedule_mismatch() {
        let ars = commitment("m", Payer::AssuranceMaladie, "ARS-84", CostComponent::Soins, 45_000_000, 30, 2026);
        let cd = commitment("m", Payer::Collectivite, "CD-69", CostComponent::Hebergement, 30_000_000, 30, 2027);
        assert_eq!(
            status_of(&eam_snapshot(vec![ars, cd]), "m"),
            (CoFinancingStatus::ScheduleMismatch, vec!["INSTALLATION_YEAR_MISMATCH"])
        );
    }

    #[test]
    fn a_component_out_of_place_is_a_share_mismatch() {
        let ars = commitment("m", Payer::AssuranceMaladie, "ARS-84", CostComponent::Hebergement, 45_000_000, 30, 2026);
        let cd = commitment("m", Payer::Collectivite, "CD-69", CostComponent::Hebergement, 30_000_000, 30, 2026);
        assert_eq!(
            status_of(&eam_snapshot(vec![ars, cd]), "m"),
            (CoFinancingStatus::ShareMismatch, vec!["COMPONENT_MISMATCH"])
        );
    }

    #[test]
    fn a_camsp_split_other_than_80_20_is_reported_with_its_figures() {
        let mut snapshot = Snapshot {
            measures: vec![measure("c", "190", MeasureCompartment::Precoce)],
            rules: rules(),
            ..Default::default()
        };
        snapshot.commitments = vec![
            commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 70_000, 30, 2026),
            commitment("c", Payer::Collectivite, "CD-69", CostComponent::Global, 30_000, 30, 2026),
        ];
        let report = reconcile(&snapshot);
        assert_eq!(report.statuses[0].status, CoFinancingStatus::ShareMismatch);
        let finding = &report.findings[report.statuses[0].findings[0]];
        assert_eq!(finding.code, "SHARE_MISMATCH");
        assert!(finding.figures.contains(&("partConstatee", FigureValue::BasisPoints(7_000))));
        assert!(finding.message.contains("70,00 %") && finding.message.contains("80,00 %"), "{}", finding.message);
        snapshot.commitments[0] =
            commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 80_000, 30, 2026);
        snapshot.commitments[1] =
            commitment("c", Payer::Collectivite, "CD-69", CostComponent::Global, 20_000, 30, 2026);
        assert_eq!(reconcile(&snapshot).statuses[0].status, CoFinancingStatus::Balanced);
    }

    #[test]
    fn collectivite_money_on_an_ime_is_unexpected_unless_creton() {
        let mut snapshot = Snapshot {
            measures: vec![measure("i", "183", MeasureCompartment::SocleEnfants)],
            rules: rules(),
            ..Default::default()
        };
        snapshot.commitments = vec![
            commitment("i", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 100_000, 30, 2026),
            commitment("i", Payer::Collectivite, "CD-69", CostComponent::Global, 10_000, 30, 2026),
        ];
        assert_eq!(status_of(&snapshot, "i").0, CoFinancingStatus::UnexpectedCofinancer);
        snapshot.measures[0].publics.push(MeasurePublic::Creton);
        assert_eq!(status_of(&snapshot, "i").0, CoFinancingStatus::Balanced);
        snapshot.commitments.pop();
        assert_eq!(status_of(&snapshot, "i"), (CoFinancingStatus::SingleFunder, vec![]));
    }

    #[test]
    fn assurance_maladie_money_on_an_eanm_consumes_ae_wrongly() {
        let mut snapshot = Snapshot {
            measures: vec![measure("e", "449", MeasureCompartment::SocleAdultes)],
            rules: rules(),
            ..Default::default()
        };
        snapshot.commitments =
            vec![commitment("e", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 100_000, 30, 2026)];
        assert_eq!(
            status_of(&snapshot, "e"),
            (CoFinancingStatus::UnexpectedCofinancer, vec!["COLLECTIVITE_ONLY_CONSUMES_AE", "AWAITING_COFINANCER"])
        );
    }

    #[test]
    fn a_departement_convention_replaces_the_national_share() {
        let mut snapshot = Snapshot {
            measures: vec![measure("c", "190", MeasureCompartment::Precoce)],
            rules: rules(),
            ..Default::default()
        };
        snapshot.rules.push(RuleFact {
            departement: Some("69".into()),
            ..rule("190", CostComponent::Global, Payer::AssuranceMaladie, Some(9_000))
        });
        snapshot.rules.push(RuleFact {
            departement: Some("69".into()),
            ..rule("190", CostComponent::Global, Payer::Collectivite, Some(1_000))
        });
        snapshot.commitments = vec![
            commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 90_000, 30, 2026),
            commitment("c", Payer::Collectivite, "CD-69", CostComponent::Global, 10_000, 30, 2026),
        ];
        assert_eq!(status_of(&snapshot, "c").0, CoFinancingStatus::Balanced);
        snapshot.measures[0].departement = "01".into();
        assert_eq!(
            status_of(&snapshot, "c").0,
            CoFinancingStatus::ShareMismatch,
            "elsewhere the national 80/20 applies"
        );
    }

    #[test]
    fn payment_credits_above_the_full_year_amount_or_before_installation() {
        let mut ars = commitment("i", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 100_000, 30, 2026);
        ars.schedule = vec![(2025, 10_000), (2026, 120_000)];
        let snapshot = Snapshot {
            measures: vec![measure("i", "183", MeasureCompartment::SocleEnfants)],
            commitments: vec![ars],
            rules: rules(),
            ..Default::default()
        };
        assert_eq!(
            status_of(&snapshot, "i"),
            (CoFinancingStatus::AmountMismatch, vec!["CP_EXCEEDS_FULL_YEAR", "CP_BEFORE_INSTALLATION"])
        );
    }

    #[test]
    fn envelopes_count_assurance_maladie_commitments_and_report_a_ceiling_passed() {
        let mut snapshot = Snapshot { rules: rules(), ..Default::default() };
        snapshot.measures = vec![
            measure("a", "183", MeasureCompartment::SocleEnfants),
            measure("b", "183", MeasureCompartment::SocleAse),
        ];
        snapshot.measures[1].solutions = 12;
        let mut abandoned = measure("z", "183", MeasureCompartment::SocleEnfants);
        abandoned.status = MeasureStatus::Abandonnee;
        snapshot.measures.push(abandoned);
        snapshot.commitments = vec![
            commitment("a", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 600, 30, 2026),
            commitment("b", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 500, 12, 2026),
            commitment("z", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 9_999, 30, 2026),
        ];
        snapshot.envelopes.insert(("84".into(), Compartment::Socle), 1_000);
        let report = reconcile(&snapshot);
        assert_eq!(
            report.envelopes,
            vec![EnvelopeUse {
                region: "84".into(),
                compartment: Compartment::Socle,
                notified: 1_000,
                committed: 1_100
            }]
        );
        assert_eq!(report.envelopes[0].headroom(), -100);
        let exceeded: Vec<&Finding> = report.findings.iter().filter(|f| f.code == "ENVELOPE_EXCEEDED").collect();
        assert_eq!(exceeded.len(), 1);
        assert_eq!(exceeded[0].subject, "84/SOCLE");
        assert!(report.findings.iter().any(|f| f.code == "ORPHAN_COMMITMENT" && f.subject == "z"));
    }

    #[test]
    fn identical_measures_are_flagged_as_possible_duplicates() {
        let snapshot = Snapshot {
            measures: vec![
                measure("a", "183", MeasureCompartment::SocleEnfants),
                measure("b", "183", MeasureCompartment::SocleEnfants),
            ],
            rules: rules(),
            ..Default::default()
        };
        let report = reconcile(&snapshot);
        assert_eq!(report.findings.iter().filter(|f| f.code == "POSSIBLE_DUPLICATE").count(), 2);
    }

    #[test]
    fn school_plans_without_matching_ecole_commitments_are_reported_by_academie() {
        let mut snapshot = Snapshot { rules: rules(), ..Default::default() };
        let mut territory = Territory::default();
        territory.academie_of.insert("69".into(), "lyon".into());
        territory.region_of_academie.insert("lyon".into(), "84".into());
        snapshot.territory = Arc::new(territory);
        snapshot.measures = vec![measure("p", "PAS", MeasureCompartment::Ecole)];
        snapshot.commitments =
            vec![commitment("p", Payer::AssuranceMaladie, "ARS-84", CostComponent::MedicoSocial, 100_000, 1, 2026)];
        snapshot.school_plans = vec![
            SchoolPlanFact {
                id: "s1".into(),
                academie: "lyon".into(),
                departement: "69".into(),
                cost_cents: 60_000,
                year: 2026,
            },
            SchoolPlanFact {
                id: "s2".into(),
                academie: "lyon".into(),
                departement: "42".into(),
                cost_cents: 60_000,
                year: 2026,
            },
        ];
        let report = reconcile(&snapshot);
        let unmatched: Vec<&Finding> = report.findings.iter().filter(|f| f.code == "SCHOOL_PLAN_UNMATCHED").collect();
        assert_eq!(unmatched.len(), 1);
        assert_eq!(
            unmatched[0].figures,
            vec![("coutPlans", FigureValue::Cents(120_000)), ("engagementsEcole", FigureValue::Cents(100_000))]
        );
        snapshot.school_plans.pop();
        assert!(!reconcile(&snapshot).findings.iter().any(|f| f.code == "SCHOOL_PLAN_UNMATCHED"));
    }

    #[test]
    fn a_legacy_category_on_a_creation_is_flagged() {
        let mut snapshot = eam_snapshot(vec![]);
        snapshot.measures[0].category = "437".into();
        snapshot.legacy_categories.insert("437".into());
        assert!(status_of(&snapshot, "m").1.contains(&"LEGACY_CATEGORY_ON_CREATION"));
    }

    fn codes_of(report: &Report) -> Vec<&'static str> {
        report.findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn payment_credits_beyond_the_ae_of_installed_measures_are_reported_per_envelope_and_year() {
        // Measure a installs in 2026 (AE 1 000), b in 2027 (AE 500); the ARS calls 1 200 of CP in 2026:
        // only 1 000 of AE is installed by then.
        let mut snapshot = Snapshot { rules: rules(), ..Default::default() };
        snapshot.measures = vec![
            measure("a", "183", MeasureCompartment::SocleEnfants),
            measure("b", "182", MeasureCompartment::SocleEnfants),
        ];
        snapshot.measures[1].planned_installation = day(2027, 1, 1);
        let mut a = commitment("a", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 1_000, 30, 2026);
        a.schedule = vec![(2026, 1_000)];
        let mut b = commitment("b", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 500, 30, 2027);
        b.schedule = vec![(2026, 0), (2027, 500)];
        snapshot.commitments = vec![a, b];
        snapshot.envelopes.insert(("84".into(), Compartment::Socle), 10_000);
        assert!(!codes_of(&reconcile(&snapshot)).contains(&"CP_EXCEEDS_AVAILABLE_AE"));
        // b's CP moved to 2026, before its installation: 1 500 called for 1 000 installed.
        snapshot.commitments[1].schedule = vec![(2026, 500)];
        let report = reconcile(&snapshot);
        let f = report.findings.iter().find(|f| f.code == "CP_EXCEEDS_AVAILABLE_AE").unwrap();
        assert_eq!(f.subject, "84/SOCLE/2026");
        assert_eq!(
            f.figures,
            vec![
                ("annee", FigureValue::Year(2026)),
                ("cp", FigureValue::Cents(1_500)),
                ("aeDisponible", FigureValue::Cents(1_000))
            ]
        );
    }

    fn targets() -> NationalTargets {
        NationalTargets { socle: 98_500, children: 40_000, ase: 5_000, adults: 58_500 }
    }

    #[test]
    fn a_socle_far_from_the_national_split_and_no_ase_are_flagged() {
        let mut snapshot = Snapshot { rules: rules(), targets: targets(), ..Default::default() };
        snapshot.measures = vec![
            measure("c", "183", MeasureCompartment::SocleEnfants),
            measure("a", "255", MeasureCompartment::SocleAdultes),
        ];
        snapshot.rules.push(rule("255", CostComponent::Global, Payer::AssuranceMaladie, Some(10_000)));
        // 40 % children (target 40.61 %) with no ASE at all: only the ASE share is flagged.
        snapshot.commitments = vec![
            commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 4_000, 30, 2026),
            commitment("a", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 6_000, 30, 2026),
        ];
        let report = reconcile(&snapshot);
        assert_eq!(
            report.socle_splits,
            vec![SocleSplit { region: "84".into(), children: 4_000, ase: 0, adults: 6_000 }]
        );
        let codes = codes_of(&report);
        assert!(codes.contains(&"ASE_SHARE_BELOW_TARGET") && !codes.contains(&"SOCLE_BALANCE_OFF_TARGET"), "{codes:?}");
        // 20 % children: 20.6 points below the national split.
        snapshot.commitments[0].full_year_cents = 1_500;
        snapshot.commitments[1].full_year_cents = 6_000;
        let report = reconcile(&snapshot);
        let f = report.findings.iter().find(|f| f.code == "SOCLE_BALANCE_OFF_TARGET").unwrap();
        assert_eq!(f.figures[0], ("partEnfants", FigureValue::BasisPoints(2_000)));
        assert_eq!(f.figures[1], ("partEnfantsNationale", FigureValue::BasisPoints(4_060)));
    }

    #[test]
    fn a_collectivite_committing_outside_its_departements_is_an_unexpected_cofinancer() {
        let mut territory = Territory::default();
        territory.collectivite_departements.insert("CD-69".into(), ["69".to_owned()].into());
        territory.collectivite_departements.insert("CD-42".into(), ["42".to_owned()].into());
        let ars = commitment("m", Payer::AssuranceMaladie, "ARS-84", CostComponent::Soins, 45_000_000, 30, 2026);
        let cd = commitment("m", Payer::Collectivite, "CD-69", CostComponent::Hebergement, 30_000_000, 30, 2026);
        let mut snapshot = eam_snapshot(vec![ars, cd]);
        snapshot.territory = Arc::new(territory);
        assert_eq!(status_of(&snapshot, "m"), (CoFinancingStatus::Balanced, vec![]));
        snapshot.commitments[1].funder_code = "CD-42".into();
        assert_eq!(
            status_of(&snapshot, "m"),
            (CoFinancingStatus::UnexpectedCofinancer, vec!["COFINANCER_OUTSIDE_TERRITORY"])
        );
    }

    fn valid_finess(prefix: &str) -> String {
        (0..10)
            .map(|d| format!("{prefix}{d}"))
            .find(|f| {
                crate::validation::identifiers::finess_check(f) == crate::validation::identifiers::FinessCheck::Valid
            })
            .unwrap()
    }

    #[test]
    fn territory_hygiene_flags_a_departement_outside_its_region_and_a_foreign_finess() {
        let mut territory = Territory::default();
        territory.departements_of_region.insert("84".into(), ["69".to_owned(), "42".to_owned()].into());
        let mut snapshot = eam_snapshot(vec![]);
        snapshot.territory = Arc::new(territory);
        snapshot.measures[0].finess = Some(valid_finess("69000000"));
        let codes = codes_of(&reconcile(&snapshot));
        assert!(!codes.iter().any(|c| c.starts_with("FINESS") || *c == "DEPARTEMENT_OUTSIDE_REGION"), "{codes:?}");
        snapshot.measures[0].finess = Some(valid_finess("42000000"));
        snapshot.measures[0].departement = "13".into();
        let codes = codes_of(&reconcile(&snapshot));
        assert!(codes.contains(&"FINESS_DEPARTEMENT_MISMATCH") && codes.contains(&"DEPARTEMENT_OUTSIDE_REGION"));
        snapshot.measures[0].finess = Some("690000000".into());
        let bad = if valid_finess("69000000") == "690000000" { "690000001" } else { "690000000" };
        snapshot.measures[0].finess = Some(bad.into());
        assert!(codes_of(&reconcile(&snapshot)).contains(&"FINESS_INVALID"));
    }

    fn needs_territory() -> Territory {
        let mut territory = Territory::default();
        territory.departements_of_region.insert("84".into(), ["69".to_owned()].into());
        for (o, c) in [("7.6", "186"), ("7.7", "186"), ("13.2", "448"), ("14.0", "")] {
            territory.orientation_category.insert(o.into(), c.into());
        }
        territory.successor.insert("437".into(), "448".into());
        territory
    }

    fn need(orientation: &str, indicator: NeedsIndicatorKind, people: i64) -> NeedsFact {
        NeedsFact { departement: "69".into(), orientation: orientation.into(), indicator, people }
    }

    #[test]
    fn needs_coverage_counts_people_without_solution_against_programmed_solutions() {
        let mut snapshot = eam_snapshot(vec![]);
        snapshot.territory = Arc::new(needs_territory());
        // 30 EAM solutions (category 448) and 5 more under the legacy FAM 437.
        let mut fam = measure("f", "437", MeasureCompartment::SocleAdultes);
        fam.solutions = 5;
        snapshot.measures.push(fam);
        snapshot.needs = vec![
            need("13.2", NeedsIndicatorKind::EnAttenteAdmission, 20),
            need("13.2", NeedsIndicatorKind::AucuneDemarche, 7),
            need("13.2", NeedsIndicatorKind::AdultesCreton, 4),
            need("13.2", NeedsIndicatorKind::OrientationsValides, 500),
            need("7.6", NeedsIndicatorKind::EnAttenteAdmission, 3),
            need("7.7", NeedsIndicatorKind::AdmissionImpossible, 2),
        ];
        let report = reconcile(&snapshot);
        let eam = report.needs_coverage.iter().find(|r| r.category.as_deref() == Some("448")).unwrap();
        assert_eq!((eam.waiting, eam.creton, eam.programmed), (27, 4, 35));
        let itep = report.needs_coverage.iter().find(|r| r.category.as_deref() == Some("186")).unwrap();
        assert_eq!(itep.orientations, vec!["7.6".to_owned(), "7.7".to_owned()]);
        assert_eq!((itep.waiting, itep.programmed), (5, 0));
        let uncovered: Vec<&Finding> = report.findings.iter().filter(|f| f.code == "NEEDS_UNCOVERED").collect();
        assert_eq!(uncovered.len(), 1, "35 solutions cover the 31 EAM needs; the 5 ITEP needs are uncovered");
        assert_eq!(uncovered[0].subject, "69/7.6+7.7");
        assert!(uncovered[0].figures.contains(&("personnesSansSolution", FigureValue::People(5))));
    }

    fn standing(first: Option<DateTime<Utc>>) -> CampaignStandingFact {
        CampaignStandingFact {
            campaign_id: "c1".into(),
            campaign_name: "Programmation 2026".into(),
            deadline: day(2026, 5, 31),
            deadline_end: "2026-05-31T21:59:59Z".parse().unwrap(),
            institution_code: "CD-69".into(),
            institution_name: "Département du Rhône".into(),
            region: "84".into(),
            departements: vec!["69".into()],
            first_submission: first,
        }
    }

    #[test]
    fn campaign_deadlines_report_missing_and_late_submissions_once_passed() {
        let mut snapshot = Snapshot { now: "2026-05-20T10:00:00Z".parse().unwrap(), ..Default::default() };
        snapshot.campaigns = vec![standing(None)];
        assert!(codes_of(&reconcile(&snapshot)).is_empty(), "not due yet");
        snapshot.now = "2026-06-02T10:00:00Z".parse().unwrap();
        assert_eq!(codes_of(&reconcile(&snapshot)), vec!["CAMPAIGN_SUBMISSION_MISSING"]);
        snapshot.campaigns = vec![standing(Some("2026-05-31T21:00:00Z".parse().unwrap()))];
        assert!(codes_of(&reconcile(&snapshot)).is_empty(), "on time, Paris time");
        snapshot.campaigns = vec![standing(Some("2026-06-01T08:00:00Z".parse().unwrap()))];
        let report = reconcile(&snapshot);
        assert_eq!(codes_of(&report), vec!["CAMPAIGN_SUBMISSION_LATE"]);
        assert!(report.findings[0].message.contains("01/06/2026"), "{}", report.findings[0].message);
    }

    #[test]
    fn the_national_checks_report_the_annex_gap_and_a_national_sub_envelope_passed() {
        let mut annex = AnnexFigures::default();
        annex.allocations.insert(("84".into(), Compartment::Socle), 100);
        annex.allocations.insert(("11".into(), Compartment::Socle), 200);
        annex.printed_totals.insert(("FR".into(), crate::vocabulary::AnnexColumn::Socle), 303);
        let splits = vec![
            SocleSplit { region: "84".into(), children: 30_000, ase: 1_000, adults: 10_000 },
            SocleSplit { region: "11".into(), children: 15_000, ase: 1_000, adults: 10_000 },
        ];
        let findings = national_findings(&annex, &targets(), &splits);
        let codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, vec!["ANNEX_ROUNDING_GAP", "NATIONAL_CHILDREN_SOCLE_EXCEEDED"]);
        assert_eq!(
            findings[0].figures,
            vec![("calcule", FigureValue::Cents(300)), ("imprime", FigureValue::Cents(303))]
        );
        assert_eq!(findings[1].region, NATIONAL);
        annex.printed_totals.insert(("FR".into(), crate::vocabulary::AnnexColumn::Socle), 300);
        assert!(national_findings(&annex, &targets(), &splits[1..]).is_empty());
    }

    #[test]
    fn reconcile_reports_each_family_in_turn_and_indexes_each_measure_findings() {
        // One finding or two from each family, in the order `reconcile` composes them: each measure's own findings
        // (legacy category, co-financing, orphan commitments), then duplicates, envelopes and balances, school
        // matching, identifier and territory hygiene, needs coverage, campaign deadlines, the national checks.
        let mut territory = needs_territory();
        territory.departements_of_region.insert("84".into(), ["69".to_owned(), "38".to_owned()].into());
        territory.academie_of.insert("69".into(), "lyon".into());
        territory.academie_of.insert("38".into(), "grenoble".into());
        territory.region_of_academie.insert("lyon".into(), "84".into());
        let mut snapshot = Snapshot {
            rules: rules(),
            territory: Arc::new(territory),
            targets: targets(),
            now: "2026-06-02T10:00:00Z".parse().unwrap(),
            ..Default::default()
        };
        snapshot.rules.push(rule("255", CostComponent::Global, Payer::AssuranceMaladie, Some(10_000)));
        snapshot.legacy_categories.insert("183".into());
        let mut a = measure("a", "183", MeasureCompartment::SocleEnfants);
        a.status = MeasureStatus::Abandonnee;
        let mut d = measure("d", "255", MeasureCompartment::SocleAdultes);
        d.departement = "13".into();
        snapshot.measures = vec![
            a,
            measure("b", "448", MeasureCompartment::SocleAdultes),
            measure("c", "448", MeasureCompartment::SocleAdultes),
            d,
        ];
        let mut ars_d = commitment("d", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 60_000, 30, 2026);
        ars_d.schedule = vec![(2025, 1_000), (2026, 60_000)];
        snapshot.commitments =
            vec![commitment("a", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 100_000, 30, 2026), ars_d];
        // Committed on the socle: d's 600 € (a is abandoned), against 500 € notified.
        snapshot.envelopes.insert(("84".into(), Compartment::Socle), 50_000);
        snapshot.school_plans = vec![SchoolPlanFact {
            id: "s1".into(),
            academie: "lyon".into(),
            departement: "38".into(),
            cost_cents: 1_000,
            year: 2026,
        }];
        // 60 EAM solutions (b and c) for 100 people waiting.
        snapshot.needs = vec![need("13.2", NeedsIndicatorKind::EnAttenteAdmission, 100)];
        snapshot.campaigns = vec![standing(None)];
        let mut annex = AnnexFigures::default();
        annex.allocations.insert(("84".into(), Compartment::Socle), 100);
        annex.printed_totals.insert(("FR".into(), crate::vocabulary::AnnexColumn::Socle), 101);
        snapshot.annex = Some(annex);
        let report = reconcile(&snapshot);
        assert_eq!(
            codes_of(&report),
            vec![
                "LEGACY_CATEGORY_ON_CREATION",
                "ORPHAN_COMMITMENT",
                "NO_COMMITMENT",
                "NO_COMMITMENT",
                "CP_BEFORE_INSTALLATION",
                "POSSIBLE_DUPLICATE",
                "POSSIBLE_DUPLICATE",
                "ENVELOPE_EXCEEDED",
                "CP_EXCEEDS_AVAILABLE_AE",
                "CP_EXCEEDS_AVAILABLE_AE",
                "SOCLE_BALANCE_OFF_TARGET",
                "SCHOOL_PLAN_UNMATCHED",
                "DEPARTEMENT_OUTSIDE_REGION",
                "SCHOOL_PLAN_OUTSIDE_ACADEMIE",
                "NEEDS_UNCOVERED",
                "CAMPAIGN_SUBMISSION_MISSING",
                "ANNEX_ROUNDING_GAP",
                "NATIONAL_ADULTS_SOCLE_EXCEEDED",
            ]
        );
        let statuses: Vec<(&str, CoFinancingStatus, Vec<usize>)> =
            report.statuses.iter().map(|s| (s.measure_id.as_str(), s.status, s.findings.clone())).collect();
        assert_eq!(
            statuses,
            vec![
                ("a", CoFinancingStatus::SingleFunder, vec![0, 1]),
                ("b", CoFinancingStatus::AwaitingCofinancer, vec![2]),
                ("c", CoFinancingStatus::AwaitingCofinancer, vec![3]),
                ("d", CoFinancingStatus::SingleFunder, vec![4]),
            ]
        );
        let subjects: Vec<&str> = report.findings[5..11].iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(subjects, vec!["b", "c", "84/SOCLE", "84/SOCLE/2025", "84/SOCLE/2026", "84"]);
        // 2026: 600 € of CP for the 600 € installed, capped at the 500 € notified.
        assert_eq!(report.findings[9].figures[2], ("aeDisponible", FigureValue::Cents(50_000)));
        assert_eq!(report.socle_splits, vec![SocleSplit { region: "84".into(), children: 0, ase: 0, adults: 60_000 }]);
    }
}
