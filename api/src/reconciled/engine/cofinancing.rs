//! Co-financing conformity, measure by measure: which funders the financing rules of the measure's category expect
//! (DOMAIN.md §5; a département's convention replaces the national rule), on which cost component and for which
//! share (CAMSP 80/20), Creton young adults aside (CASF L242-4); whether a collectivité commits within the
//! départements it covers; whether the funders agree on the capacity and the installation year; whether yearly
//! payment credits stay within the full-year amount and follow the installation. The outcome is the measure's
//! co-financing status (CONTRACT.md): the most fundamental problem found, or balanced, or a single funder.

use std::collections::{BTreeSet, HashMap};

use chrono::Datelike;

use super::{
    CoFinancingStatus, CommitmentFact, FigureValue, Finding, MeasureFact, RuleFact, Severity, Snapshot, euros,
    measure_finding,
};
use crate::vocabulary::{CostComponent, MeasurePublic, MeasureStatus, Payer};

/// A share of a joint split may differ from the rule by this much (rounding of amounts).
pub const SHARE_TOLERANCE_BP: i64 = 100;

/// The rules of each category, found once rather than scanned for every measure.
pub(super) fn rules_by_category(rules: &[RuleFact]) -> HashMap<&str, Vec<RuleFact>> {
    let mut rules_of: HashMap<&str, Vec<RuleFact>> = HashMap::new();
    for rule in rules {
        rules_of.entry(rule.category.as_str()).or_default().push(rule.clone());
    }
    rules_of
}

/// The rules that apply to a measure's category in its département on its installation date: a département's
/// convention replaces the national rule for the same component and payer.
fn applicable_rules<'a>(rules: &'a [RuleFact], measure: &MeasureFact) -> Vec<&'a RuleFact> {
    let day = measure.planned_installation;
    let valid: Vec<&RuleFact> = rules
        .iter()
        .filter(|r| r.category == measure.category_code)
        .filter(|r| r.valid_from <= day && r.valid_to.is_none_or(|to| to >= day))
        .filter(|r| r.departement.as_ref().is_none_or(|d| *d == measure.departement_code))
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

/// The findings about one measure, gathered as its checks run.
struct MeasureCheck<'a> {
    measure: &'a MeasureFact,
    findings: Vec<Finding>,
}

impl MeasureCheck<'_> {
    fn add(
        &mut self,
        code: &'static str,
        severity: Severity,
        figures: Vec<(&'static str, FigureValue)>,
        message: String,
    ) {
        self.findings.push(measure_finding(self.measure, code, severity, figures, message));
    }
}

/// A measure's co-financing status and the findings behind it: the expected funders against those who committed,
/// components and shares, amounts, capacity and installation year, payment credits against the installation.
pub(super) fn check_measure(
    measure: &MeasureFact,
    commitments: &[&CommitmentFact],
    snapshot: &Snapshot,
    category_rules: &[RuleFact],
) -> (CoFinancingStatus, Vec<Finding>, Option<String>) {
    let mut check = MeasureCheck { measure, findings: Vec::new() };
    let mut problems: BTreeSet<CoFinancingStatus> = BTreeSet::new();
    let rules = applicable_rules(category_rules, measure);
    // Only the ARS and the collectivités commit through the hub: the Éducation nationale's teachers (school plans),
    // the Agefiph/FIPHFP or the State are part of a measure's financing but are not awaited here.
    let expected: BTreeSet<Payer> =
        rules.iter().map(|r| r.payer).filter(|p| matches!(p, Payer::AssuranceMaladie | Payer::Collectivite)).collect();
    let by_authorisation = rules.iter().any(|r| r.payer == Payer::SelonAutorisation);
    let funders: BTreeSet<Payer> = commitments.iter().map(|c| c.funder).collect();
    let creton = measure.publics.contains(&MeasurePublic::Creton);

    // A collectivité commits only on the territory it covers: its départements and, where two collectivités share
    // one, its communes (the Métropole de Lyon's 58 against the rest of the Rhône).
    let territory = &snapshot.territory;
    let covering = territory.cofinancers_of(&measure.departement_code, measure.commune_code.as_deref());
    let place = match &measure.commune_code {
        Some(commune) => format!("la commune {commune} (département {})", measure.departement_code),
        None => format!("le département {}", measure.departement_code),
    };
    let collectivite_commitments: Vec<&&CommitmentFact> =
        commitments.iter().filter(|c| c.funder == Payer::Collectivite).collect();
    for c in &collectivite_commitments {
        if territory.collectivite_departements.contains_key(&c.funder_code)
            && !covering.contains(&c.funder_code.as_str())
        {
            check.add(
                "COFINANCER_OUTSIDE_TERRITORY",
                Severity::Error,
                vec![],
                format!(
                    "{} s'engage sur une mesure de {place}, qu'elle ne couvre pas : {} y exerce les compétences du département",
                    c.funder_code,
                    if covering.is_empty() { "aucune collectivité connue".to_owned() } else { covering.join(" / ") }
                ),
            );
            problems.insert(CoFinancingStatus::UnexpectedCofinancer);
        } else if let Some(designated) = &measure.expected_cofinancer_code
            && *designated != c.funder_code
        {
            check.add(
                "COFINANCER_NOT_DESIGNATED",
                Severity::Error,
                vec![],
                format!("{} s'engage alors que l'ARS a désigné {designated} comme co-financeur attendu", c.funder_code),
            );
            problems.insert(CoFinancingStatus::UnexpectedCofinancer);
        }
    }
    // Two collectivités paying the same component of one measure: the same cost financed twice.
    let mut payers_of_component: std::collections::BTreeMap<&str, BTreeSet<&str>> = Default::default();
    for c in &collectivite_commitments {
        payers_of_component.entry(c.component.as_str()).or_default().insert(c.funder_code.as_str());
    }
    for (component, payers) in payers_of_component.iter().filter(|(_, payers)| payers.len() > 1) {
        let amounts: Vec<(&'static str, FigureValue)> = collectivite_commitments
            .iter()
            .filter(|c| c.component.as_str() == *component)
            .map(|c| ("montant", FigureValue::Cents(c.full_year_cents)))
            .collect();
        let views: Vec<String> = collectivite_commitments
            .iter()
            .filter(|c| c.component.as_str() == *component)
            .map(|c| format!("{} {}", c.funder_code, euros(c.full_year_cents)))
            .collect();
        check.add(
            "DOUBLE_COFINANCING",
            Severity::Error,
            amounts,
            format!(
                "{} collectivités financent la même composante {component} ({}) : un seul co-financeur est attendu",
                payers.len(),
                views.join(", ")
            ),
        );
        problems.insert(CoFinancingStatus::UnexpectedCofinancer);
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
                            measure.category_code
                        ),
                    )
                } else {
                    (
                        "UNEXPECTED_COFINANCER",
                        format!(
                            "la catégorie {} relève de l'assurance maladie seule : aucun financement de la collectivité n'est attendu",
                            measure.category_code
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
                    match (payer, awaited_cofinancer(measure, &covering)) {
                        (Payer::Collectivite, Some(code)) => {
                            format!("l'engagement attendu de la collectivité {code} manque")
                        }
                        (Payer::Collectivite, None) => format!(
                            "l'engagement attendu de la collectivité manque (à désigner parmi {})",
                            covering.join(", ")
                        ),
                        _ => format!("l'engagement attendu de {} manque", payer_label(*payer)),
                    },
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
                // Rounded as it prints (half away from zero), and judged as printed; total > 0.
                let actual_bp = crate::money::ratio_basis_points(paid, total).unwrap_or_default();
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
                            crate::money::basis_points_to_french_percent(actual_bp),
                            crate::money::basis_points_to_french_percent(expected_bp)
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
            "SCHEDULE_MISMATCH",
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
    let status = problems.iter().copied().min_by_key(|s| s.priority()).unwrap_or(if funders.len() <= 1 {
        CoFinancingStatus::SingleFunder
    } else {
        CoFinancingStatus::Balanced
    });
    // The collectivité awaited, when the rules expect one and none has committed yet.
    let awaited = (status == CoFinancingStatus::AwaitingCofinancer
        && expected.contains(&Payer::Collectivite)
        && !funders.contains(&Payer::Collectivite))
    .then(|| awaited_cofinancer(measure, &covering))
    .flatten();
    (status, check.findings, awaited)
}

/// The collectivité whose commitment a measure awaits: the one the ARS designated, or the only one covering the
/// measure's territory.
pub(super) fn awaited_cofinancer(measure: &MeasureFact, covering: &[&str]) -> Option<String> {
    measure.expected_cofinancer_code.clone().or_else(|| match covering {
        [only] => Some((*only).to_owned()),
        _ => None,
    })
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
            CoFinancingStatus::SingleFunder | CoFinancingStatus::Balanced | CoFinancingStatus::Abandoned => 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::reconciled::engine::test_support::*;
    use crate::reconciled::engine::{Territory, reconcile};
    use crate::vocabulary::MeasureCompartment;

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
            (CoFinancingStatus::ScheduleMismatch, vec!["SCHEDULE_MISMATCH"])
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
            measures: vec![Arc::new(measure("c", "190", MeasureCompartment::Precoce))],
            rules: rules().into(),
            ..Default::default()
        };
        snapshot.commitments = vec![
            Arc::new(commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 70_000, 30, 2026)),
            Arc::new(commitment("c", Payer::Collectivite, "CD-69", CostComponent::Global, 30_000, 30, 2026)),
        ];
        let report = reconcile(&snapshot);
        assert_eq!(report.statuses[0].status, CoFinancingStatus::ShareMismatch);
        let finding = &report.findings[report.statuses[0].findings[0]];
        assert_eq!(finding.code, "SHARE_MISMATCH");
        assert!(finding.figures.contains(&("partConstatee", FigureValue::BasisPoints(7_000))));
        assert!(finding.message.contains("70,00 %") && finding.message.contains("80,00 %"), "{}", finding.message);
        snapshot.commitments[0] =
            Arc::new(commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 80_000, 30, 2026));
        snapshot.commitments[1] =
            Arc::new(commitment("c", Payer::Collectivite, "CD-69", CostComponent::Global, 20_000, 30, 2026));
        assert_eq!(reconcile(&snapshot).statuses[0].status, CoFinancingStatus::Balanced);
    }

    #[test]
    fn a_two_thirds_share_prints_rounded_half_away_from_zero() {
        // A CAMSP (80/20) paid 2 000 € by the assurance maladie and 1 000 € by the département: 66.666… % and
        // 33.333… %, printed 66,67 % and 33,33 % (truncation printed 66,66 %).
        let mut snapshot = Snapshot {
            measures: vec![Arc::new(measure("c", "190", MeasureCompartment::Precoce))],
            rules: rules().into(),
            ..Default::default()
        };
        snapshot.commitments = vec![
            Arc::new(commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 200_000, 30, 2026)),
            Arc::new(commitment("c", Payer::Collectivite, "CD-69", CostComponent::Global, 100_000, 30, 2026)),
        ];
        let report = reconcile(&snapshot);
        let shares: Vec<&Finding> =
            report.findings.iter().filter(|f| f.code == "SHARE_MISMATCH").map(|f| &**f).collect();
        assert_eq!(shares.len(), 2);
        assert_eq!(
            shares[0].figures,
            vec![
                ("partAttendue", FigureValue::BasisPoints(8_000)),
                ("partConstatee", FigureValue::BasisPoints(6_667)),
                ("montant", FigureValue::Cents(200_000)),
                ("total", FigureValue::Cents(300_000)),
            ]
        );
        assert_eq!(
            shares[0].message,
            "Mesure REF-c : l'assurance maladie finance 2\u{202f}000,00 € sur 3\u{202f}000,00 € soit 66,67 %, la règle prévoit 80,00 %"
        );
        assert_eq!(shares[1].figures[1], ("partConstatee", FigureValue::BasisPoints(3_333)));
        assert_eq!(
            shares[1].message,
            "Mesure REF-c : la collectivité finance 1\u{202f}000,00 € sur 3\u{202f}000,00 € soit 33,33 %, la règle prévoit 20,00 %"
        );
    }

    #[test]
    fn a_share_is_judged_as_it_prints() {
        // 78,995 % rounds to 79,00 %: one point from 80 %, tolerated; 21,005 % rounds to 21,01 %: beyond one point.
        let mut snapshot = Snapshot {
            measures: vec![Arc::new(measure("c", "190", MeasureCompartment::Precoce))],
            rules: rules().into(),
            ..Default::default()
        };
        snapshot.commitments = vec![
            Arc::new(commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 78_995, 30, 2026)),
            Arc::new(commitment("c", Payer::Collectivite, "CD-69", CostComponent::Global, 21_005, 30, 2026)),
        ];
        let report = reconcile(&snapshot);
        let shares: Vec<&Finding> =
            report.findings.iter().filter(|f| f.code == "SHARE_MISMATCH").map(|f| &**f).collect();
        assert_eq!(shares.len(), 1, "{shares:?}");
        assert_eq!(shares[0].figures[1], ("partConstatee", FigureValue::BasisPoints(2_101)));
        assert!(shares[0].message.contains("soit 21,01 %, la règle prévoit 20,00 %"), "{}", shares[0].message);
    }

    #[test]
    fn collectivite_money_on_an_ime_is_unexpected_unless_creton() {
        let mut snapshot = Snapshot {
            measures: vec![Arc::new(measure("i", "183", MeasureCompartment::SocleEnfants))],
            rules: rules().into(),
            ..Default::default()
        };
        snapshot.commitments = vec![
            Arc::new(commitment("i", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 100_000, 30, 2026)),
            Arc::new(commitment("i", Payer::Collectivite, "CD-69", CostComponent::Global, 10_000, 30, 2026)),
        ];
        assert_eq!(status_of(&snapshot, "i").0, CoFinancingStatus::UnexpectedCofinancer);
        Arc::make_mut(&mut snapshot.measures[0]).publics.push(MeasurePublic::Creton);
        assert_eq!(status_of(&snapshot, "i").0, CoFinancingStatus::Balanced);
        snapshot.commitments.pop();
        assert_eq!(status_of(&snapshot, "i"), (CoFinancingStatus::SingleFunder, vec![]));
    }

    #[test]
    fn assurance_maladie_money_on_an_eanm_consumes_ae_wrongly() {
        let mut snapshot = Snapshot {
            measures: vec![Arc::new(measure("e", "449", MeasureCompartment::SocleAdultes))],
            rules: rules().into(),
            ..Default::default()
        };
        snapshot.commitments = vec![Arc::new(commitment(
            "e",
            Payer::AssuranceMaladie,
            "ARS-84",
            CostComponent::Global,
            100_000,
            30,
            2026,
        ))];
        assert_eq!(
            status_of(&snapshot, "e"),
            (CoFinancingStatus::UnexpectedCofinancer, vec!["COLLECTIVITE_ONLY_CONSUMES_AE", "AWAITING_COFINANCER"])
        );
    }

    #[test]
    fn a_departement_convention_replaces_the_national_share() {
        let mut snapshot = Snapshot {
            measures: vec![Arc::new(measure("c", "190", MeasureCompartment::Precoce))],
            rules: rules().into(),
            ..Default::default()
        };
        Arc::make_mut(&mut snapshot.rules).push(RuleFact {
            departement: Some("69".into()),
            ..rule("190", CostComponent::Global, Payer::AssuranceMaladie, Some(9_000))
        });
        Arc::make_mut(&mut snapshot.rules).push(RuleFact {
            departement: Some("69".into()),
            ..rule("190", CostComponent::Global, Payer::Collectivite, Some(1_000))
        });
        snapshot.commitments = vec![
            Arc::new(commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 90_000, 30, 2026)),
            Arc::new(commitment("c", Payer::Collectivite, "CD-69", CostComponent::Global, 10_000, 30, 2026)),
        ];
        assert_eq!(status_of(&snapshot, "c").0, CoFinancingStatus::Balanced);
        Arc::make_mut(&mut snapshot.measures[0]).departement_code = "01".into();
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
            measures: vec![Arc::new(measure("i", "183", MeasureCompartment::SocleEnfants))],
            commitments: vec![Arc::new(ars)],
            rules: rules().into(),
            ..Default::default()
        };
        assert_eq!(
            status_of(&snapshot, "i"),
            (CoFinancingStatus::AmountMismatch, vec!["CP_EXCEEDS_FULL_YEAR", "CP_BEFORE_INSTALLATION"])
        );
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
        Arc::make_mut(&mut snapshot.commitments[1]).funder_code = "CD-42".into();
        assert_eq!(
            status_of(&snapshot, "m"),
            (CoFinancingStatus::UnexpectedCofinancer, vec!["COFINANCER_OUTSIDE_TERRITORY"])
        );
    }

    #[test]
    fn a_zero_amount_is_an_amount_mismatch_and_an_installed_measure_wants_payment_credits() {
        let mut ars = commitment("i", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 0, 30, 2026);
        ars.schedule = vec![(2026, 0)];
        let mut snapshot = Snapshot {
            measures: vec![Arc::new(measure("i", "183", MeasureCompartment::SocleEnfants))],
            commitments: vec![Arc::new(ars)],
            rules: rules().into(),
            ..Default::default()
        };
        Arc::make_mut(&mut snapshot.measures[0]).status = MeasureStatus::Installee;
        assert_eq!(
            status_of(&snapshot, "i"),
            (CoFinancingStatus::AmountMismatch, vec!["ZERO_AMOUNT", "INSTALLED_WITHOUT_CP"])
        );
        assert_eq!(reconcile(&snapshot).findings[0].message, "Mesure REF-i : ARS-84 s'engage pour un montant nul");
        // 1 000 € a year, still no payment credit called: a warning, the status stands.
        Arc::make_mut(&mut snapshot.commitments[0]).full_year_cents = 100_000;
        Arc::make_mut(&mut snapshot.commitments[0]).schedule = vec![(2026, 0), (2027, 0)];
        assert_eq!(status_of(&snapshot, "i"), (CoFinancingStatus::SingleFunder, vec!["INSTALLED_WITHOUT_CP"]));
        Arc::make_mut(&mut snapshot.commitments[0]).schedule = vec![(2026, 50_000), (2027, 100_000)];
        assert_eq!(status_of(&snapshot, "i"), (CoFinancingStatus::SingleFunder, vec![]));
    }

    /// The Rhône shared by the Département (CD-69) and the Métropole de Lyon, as the catalog ships it.
    fn rhone() -> Arc<Territory> {
        let mut territory = Territory::default();
        territory.collectivite_departements.insert("CD-69".into(), ["69".to_owned()].into());
        territory.collectivite_departements.insert("METROPOLE-LYON".into(), ["69".to_owned()].into());
        territory.collectivite_departements.insert("CD-01".into(), ["01".to_owned()].into());
        Arc::new(territory)
    }

    fn eam_in(commune: Option<&str>, designated: Option<&str>, commitments: Vec<CommitmentFact>) -> Snapshot {
        let mut snapshot = eam_snapshot(commitments);
        snapshot.territory = rhone();
        Arc::make_mut(&mut snapshot.measures[0]).commune_code = commune.map(str::to_owned);
        Arc::make_mut(&mut snapshot.measures[0]).expected_cofinancer_code = designated.map(str::to_owned);
        snapshot
    }

    fn soins(cents: i64) -> CommitmentFact {
        commitment("m", Payer::AssuranceMaladie, "ARS-84", CostComponent::Soins, cents, 30, 2026)
    }

    fn hebergement(code: &str, cents: i64) -> CommitmentFact {
        commitment("m", Payer::Collectivite, code, CostComponent::Hebergement, cents, 30, 2026)
    }

    #[test]
    fn two_collectivites_paying_the_same_component_is_double_co_financing() {
        // The Rhône EAM of the scenario: the Département and the Métropole each commit 1 200 000.00 € of
        // accommodation; 2 400 000.00 € for one cost.
        let snapshot = eam_in(
            None,
            None,
            vec![soins(90_000_000), hebergement("CD-69", 120_000_000), hebergement("METROPOLE-LYON", 120_000_000)],
        );
        let report = reconcile(&snapshot);
        let double = report.findings.iter().find(|f| f.code == "DOUBLE_COFINANCING").expect("a double co-financing");
        assert_eq!(double.severity, Severity::Error);
        assert_eq!(
            double.figures,
            vec![("montant", FigureValue::Cents(120_000_000)), ("montant", FigureValue::Cents(120_000_000))]
        );
        assert!(double.message.contains("CD-69 1,20 M€, METROPOLE-LYON 1,20 M€"), "{}", double.message);
        assert_eq!(status_of(&snapshot, "m").0, CoFinancingStatus::UnexpectedCofinancer);
        // One collectivité per component is not.
        let single = eam_in(None, None, vec![soins(90_000_000), hebergement("CD-69", 120_000_000)]);
        assert_eq!(status_of(&single, "m"), (CoFinancingStatus::Balanced, vec![]));
    }

    #[test]
    fn the_commune_decides_between_the_metropole_and_the_departement() {
        // Lyon (69123) is the Métropole's: the Département committing there is outside its territory.
        let lyon = eam_in(Some("69123"), None, vec![soins(90_000_000), hebergement("CD-69", 120_000_000)]);
        let (status, codes) = status_of(&lyon, "m");
        assert_eq!((status, codes), (CoFinancingStatus::UnexpectedCofinancer, vec!["COFINANCER_OUTSIDE_TERRITORY"]));
        let report = reconcile(&lyon);
        assert!(
            report.findings[0].message.contains("la commune 69123")
                && report.findings[0].message.contains("METROPOLE-LYON")
        );
        // Villefranche-sur-Saône (69264) is the Département's: the Métropole is outside there.
        let villefranche =
            eam_in(Some("69264"), None, vec![soins(90_000_000), hebergement("METROPOLE-LYON", 120_000_000)]);
        assert_eq!(status_of(&villefranche, "m").1, vec!["COFINANCER_OUTSIDE_TERRITORY"]);
        let right = eam_in(Some("69264"), None, vec![soins(90_000_000), hebergement("CD-69", 120_000_000)]);
        assert_eq!(status_of(&right, "m"), (CoFinancingStatus::Balanced, vec![]));
        // Another département's collectivité, anywhere in the Rhône.
        let ain = eam_in(None, None, vec![soins(90_000_000), hebergement("CD-01", 120_000_000)]);
        assert_eq!(status_of(&ain, "m").1, vec!["COFINANCER_OUTSIDE_TERRITORY"]);
    }

    #[test]
    fn the_awaited_co_financer_is_named() {
        let awaited = |snapshot: &Snapshot| {
            let report = reconcile(snapshot);
            let status = &report.statuses[0];
            let message = status
                .findings
                .iter()
                .map(|i| &report.findings[*i])
                .find(|f| f.code == "AWAITING_COFINANCER")
                .map(|f| f.message.clone())
                .unwrap_or_default();
            (status.status, status.awaited_cofinancer.clone(), message)
        };
        // In Villefranche only the Département can co-finance: it is named without being designated.
        let (status, code, message) = awaited(&eam_in(Some("69264"), None, vec![soins(90_000_000)]));
        assert_eq!((status, code.as_deref()), (CoFinancingStatus::AwaitingCofinancer, Some("CD-69")));
        assert!(message.contains("collectivité CD-69"), "{message}");
        // Without a commune, the Rhône has two: the finding asks for a designation.
        let (_, code, message) = awaited(&eam_in(None, None, vec![soins(90_000_000)]));
        assert_eq!(code, None);
        assert!(message.contains("à désigner parmi CD-69, METROPOLE-LYON"), "{message}");
        // Designated by the ARS.
        let (_, code, _) = awaited(&eam_in(None, Some("METROPOLE-LYON"), vec![soins(90_000_000)]));
        assert_eq!(code.as_deref(), Some("METROPOLE-LYON"));
        // Another collectivité than the designated one commits.
        let other = eam_in(None, Some("METROPOLE-LYON"), vec![soins(90_000_000), hebergement("CD-69", 120_000_000)]);
        assert_eq!(
            status_of(&other, "m"),
            (CoFinancingStatus::UnexpectedCofinancer, vec!["COFINANCER_NOT_DESIGNATED"])
        );
        // A category the assurance maladie funds alone awaits no collectivité.
        let mut alone = eam_in(Some("69264"), None, vec![]);
        Arc::make_mut(&mut alone.measures[0]).category_code = "183".into();
        assert_eq!(awaited(&alone).1, None);
    }

    #[test]
    fn an_abandoned_measure_awaits_nobody() {
        let mut snapshot = eam_in(None, None, vec![soins(90_000_000)]);
        Arc::make_mut(&mut snapshot.measures[0]).status = MeasureStatus::Abandonnee;
        let report = reconcile(&snapshot);
        assert_eq!(report.statuses[0].status, CoFinancingStatus::Abandoned);
        assert_eq!(report.statuses[0].awaited_cofinancer, None);
        // The commitment left on it is an orphan, not a co-financing matter.
        assert_eq!(status_of(&snapshot, "m").1, vec!["ORPHAN_COMMITMENT"]);
    }
}
