//! School plans matched per académie and year: the cost of the school-support plans the rectorat records, against
//! the assurance-maladie commitments on the école compartment's measures of the académie's départements; fewer
//! commitments than plans leave the médico-social side of those plans unfunded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{FigureValue, Finding, Report, SchoolMatch, Severity, Snapshot, SubjectKind, euros};

/// Each académie's school-support plans against the assurance-maladie commitments on école measures of its
/// départements, per year of installation.
pub(super) fn school_matching(snapshot: &Snapshot, sums: &super::sums::RegionSums, report: &mut Report) {
    let territory = &snapshot.territory;
    let mut planned: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for plan in snapshot.school_plans.iter() {
        *planned.entry((plan.academie.clone(), plan.year)).or_default() += plan.cost_cents;
    }
    let funded = &sums.funded;
    let keys: BTreeSet<(String, i32)> = planned.keys().chain(funded.keys()).cloned().collect();
    for (academie, year) in keys {
        let cost = planned.get(&(academie.clone(), year)).copied().unwrap_or_default();
        let matched = funded.get(&(academie.clone(), year)).map_or(0, |t| t.sum);
        let region = territory.region_of_academie.get(&academie).cloned().unwrap_or_default();
        report.school_matching.push(SchoolMatch {
            region: region.clone(),
            academie: academie.clone(),
            year,
            planned_cost: cost,
            committed: matched,
        });
        if matched < cost {
            report.findings.push(Arc::new(Finding {
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
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::reconciled::engine::test_support::*;
    use crate::reconciled::engine::{SchoolPlanFact, Territory, reconcile};
    use crate::vocabulary::{CostComponent, MeasureCompartment, MeasureStatus, Payer};

    #[test]
    fn school_plans_without_matching_ecole_commitments_are_reported_by_academie() {
        let mut snapshot = Snapshot { rules: rules().into(), ..Default::default() };
        let mut territory = Territory::default();
        territory.academie_of.insert("69".into(), "lyon".into());
        territory.region_of_academie.insert("lyon".into(), "84".into());
        snapshot.territory = Arc::new(territory);
        snapshot.measures = vec![Arc::new(measure("p", "PAS", MeasureCompartment::Ecole))];
        snapshot.commitments = vec![Arc::new(commitment(
            "p",
            Payer::AssuranceMaladie,
            "ARS-84",
            CostComponent::MedicoSocial,
            100_000,
            1,
            2026,
        ))];
        *Arc::make_mut(&mut snapshot.school_plans) = vec![
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
        let unmatched: Vec<&Finding> =
            report.findings.iter().filter(|f| f.code == "SCHOOL_PLAN_UNMATCHED").map(|f| &**f).collect();
        assert_eq!(unmatched.len(), 1);
        assert_eq!(
            unmatched[0].figures,
            vec![("coutPlans", FigureValue::Cents(120_000)), ("engagementsEcole", FigureValue::Cents(100_000))]
        );
        Arc::make_mut(&mut snapshot.school_plans).pop();
        assert!(!reconcile(&snapshot).findings.iter().any(|f| f.code == "SCHOOL_PLAN_UNMATCHED"));
    }

    #[test]
    fn plans_and_ecole_commitments_are_matched_year_by_year_abandoned_and_other_measures_aside() {
        let mut territory = Territory::default();
        for (departement, academie) in [("69", "lyon"), ("42", "lyon"), ("38", "grenoble")] {
            territory.academie_of.insert(departement.into(), academie.into());
            territory.region_of_academie.insert(academie.into(), "84".into());
        }
        let ecole = |id: &str, departement: &str| {
            let mut m = measure(id, "PAS", MeasureCompartment::Ecole);
            m.departement_code = departement.into();
            m
        };
        let mut abandoned = ecole("q", "42");
        abandoned.status = MeasureStatus::Abandonnee;
        let ars = |id: &str, cents: i64, year: i32| {
            commitment(id, Payer::AssuranceMaladie, "ARS-84", CostComponent::MedicoSocial, cents, 1, year)
        };
        let plan = |id: &str, departement: &str, cents: i64, year: i32| SchoolPlanFact {
            id: id.into(),
            academie: "lyon".into(),
            departement: departement.into(),
            cost_cents: cents,
            year,
        };
        let snapshot = Snapshot {
            territory: Arc::new(territory),
            measures: vec![
                Arc::new(ecole("p", "69")),
                Arc::new(abandoned),
                Arc::new(ecole("r", "42")),
                Arc::new(measure("s", "183", MeasureCompartment::SocleEnfants)),
                Arc::new(ecole("g", "38")),
            ],
            commitments: vec![
                Arc::new(ars("p", 100_000, 2026)),
                Arc::new(commitment("p", Payer::Collectivite, "CD-69", CostComponent::MedicoSocial, 70_000, 1, 2026)),
                Arc::new(ars("q", 50_000, 2026)),
                Arc::new(ars("r", 30_000, 2027)),
                Arc::new(ars("s", 999, 2026)),
                Arc::new(ars("g", 20_000, 2026)),
            ],
            // Lyon: 1 000 € of plans in 2026, 500 € in 2027; Grenoble: none.
            school_plans: Arc::new(vec![
                plan("s1", "69", 60_000, 2026),
                plan("s2", "42", 40_000, 2026),
                plan("s3", "42", 50_000, 2027),
            ]),
            ..Default::default()
        };
        let report = crate::reconciled::engine::reconcile(&snapshot);
        let row = |academie: &str, year, planned_cost, committed| SchoolMatch {
            region: "84".into(),
            academie: academie.into(),
            year,
            planned_cost,
            committed,
        };
        assert_eq!(
            report.school_matching,
            vec![
                row("grenoble", 2026, 0, 20_000),
                row("lyon", 2026, 100_000, 100_000),
                row("lyon", 2027, 50_000, 30_000)
            ]
        );
        let unmatched: Vec<&Arc<Finding>> =
            report.findings.iter().filter(|f| f.code == "SCHOOL_PLAN_UNMATCHED").collect();
        assert_eq!(unmatched.len(), 1);
        let f = unmatched[0];
        assert_eq!(f.subject.as_str(), "lyon/2027");
        assert_eq!(f.departements, vec!["42".to_owned(), "69".to_owned()]);
        assert_eq!(
            f.message,
            "Académie lyon, 2027 : les plans d'appui à la scolarité coûtent 500,00 € côté médico-social, l'ARS n'a engagé que 300,00 € sur le compartiment école"
        );
    }
}
