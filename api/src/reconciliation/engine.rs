//! The reconciliation engine (pure: no HTTP, no database). It takes a snapshot of what institutions submitted and
//! returns what disagrees and why: findings with a stable code, a severity, a subject, the figures compared and a
//! sentence in plain French, a co-financing status per measure, and the use of each envelope.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};

use crate::money::Euros;
use crate::vocabulary::{Compartment, CostComponent, MeasureCompartment, MeasurePublic, MeasureStatus, Payer};

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
    /// département → académie.
    pub academie_of: BTreeMap<String, String>,
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
}

/// A figure compared by a finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FigureValue {
    Cents(i64),
    Count(i64),
    BasisPoints(i64),
    Year(i32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub subject_kind: SubjectKind,
    pub subject: String,
    /// The region the finding belongs to, for scoping.
    pub region: String,
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

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub statuses: Vec<MeasureStatusReport>,
    pub envelopes: Vec<EnvelopeUse>,
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
            figures,
            message: format!("Mesure {} : {message}", self.measure.reference),
        });
    }
}

fn check_measure(
    measure: &MeasureFact,
    commitments: &[&CommitmentFact],
    rules: &[RuleFact],
    legacy: &BTreeSet<String>,
) -> (CoFinancingStatus, Vec<Finding>) {
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
    let rules = applicable_rules(rules, measure);
    let expected: BTreeSet<Payer> = rules.iter().map(|r| r.payer).filter(|p| *p != Payer::SelonAutorisation).collect();
    let by_authorisation = rules.iter().any(|r| r.payer == Payer::SelonAutorisation);
    let funders: BTreeSet<Payer> = commitments.iter().map(|c| c.funder).collect();
    let creton = measure.publics.contains(&MeasurePublic::Creton);

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

/// Reconciles a snapshot: every measure's co-financing status, envelope ceilings, school matching.
pub fn reconcile(snapshot: &Snapshot) -> Report {
    let mut report = Report::default();
    let mut by_measure: BTreeMap<&str, Vec<&CommitmentFact>> = BTreeMap::new();
    for c in &snapshot.commitments {
        by_measure.entry(c.measure_id.as_str()).or_default().push(c);
    }
    let mut duplicates: BTreeMap<(&str, &str, i32, i64), Vec<&MeasureFact>> = BTreeMap::new();
    let mut committed: BTreeMap<(String, Compartment), i64> = BTreeMap::new();
    for measure in &snapshot.measures {
        let commitments = by_measure.get(measure.id.as_str()).cloned().unwrap_or_default();
        let (status, findings) = check_measure(measure, &commitments, &snapshot.rules, &snapshot.legacy_categories);
        let first = report.findings.len();
        report.findings.extend(findings);
        report.statuses.push(MeasureStatusReport {
            measure_id: measure.id.clone(),
            status,
            findings: (first..report.findings.len()).collect(),
        });
        if measure.status != MeasureStatus::Abandonnee {
            let am: i64 =
                commitments.iter().filter(|c| c.funder == Payer::AssuranceMaladie).map(|c| c.full_year_cents).sum();
            *committed.entry((measure.region.clone(), measure.compartment.envelope())).or_default() += am;
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
    school_matching(snapshot, &mut report);
    report
}

/// Each académie's school-support plans against the assurance-maladie commitments on école measures of its
/// départements, per year of installation.
fn school_matching(snapshot: &Snapshot, report: &mut Report) {
    let mut planned: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for plan in &snapshot.school_plans {
        *planned.entry((plan.academie.clone(), plan.year)).or_default() += plan.cost_cents;
    }
    let mut funded: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut region_of_academie: BTreeMap<String, String> = BTreeMap::new();
    let measures: BTreeMap<&str, &MeasureFact> = snapshot.measures.iter().map(|m| (m.id.as_str(), m)).collect();
    for c in snapshot.commitments.iter().filter(|c| c.funder == Payer::AssuranceMaladie) {
        let Some(measure) = measures.get(c.measure_id.as_str()) else { continue };
        if measure.compartment != MeasureCompartment::Ecole || measure.status == MeasureStatus::Abandonnee {
            continue;
        }
        if let Some(academie) = snapshot.academie_of.get(&measure.departement) {
            *funded.entry((academie.clone(), c.installation.year())).or_default() += c.full_year_cents;
            region_of_academie.insert(academie.clone(), measure.region.clone());
        }
    }
    for ((academie, year), cost) in planned {
        let matched = funded.get(&(academie.clone(), year)).copied().unwrap_or_default();
        if matched < cost {
            report.findings.push(Finding {
                code: "SCHOOL_PLAN_UNMATCHED",
                severity: Severity::Warning,
                subject_kind: SubjectKind::Academie,
                subject: format!("{academie}/{year}"),
                region: region_of_academie.get(&academie).cloned().unwrap_or_default(),
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
        snapshot.academie_of.insert("69".into(), "lyon".into());
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
}
