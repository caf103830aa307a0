//! Envelopes and balances: each regional envelope's full-year assurance-maladie commitments against the AE notified
//! (its ceiling and headroom); the payment credits called each year against the AE of the measures installed by
//! then; each region's socle split between children (of whom those protected by the ASE) and adults against the
//! national split of the circular (§4); and, for the whole country, the annex's printed totals against its rows
//! and the national socle split against the amounts of the circular.

use std::sync::Arc;

use super::sums::{EnvelopeSums, RegionSums};
use super::{
    EnvelopeUse, FigureValue, Finding, NATIONAL, NationalTargets, Report, Severity, Snapshot, SocleSplit, SubjectKind,
    euros,
};
use crate::territory::annex::AnnexFigures;
use crate::vocabulary::Compartment;

/// Each envelope's use against its notified AE, the yearly payment credits against the AE installed, and each
/// region's socle split (`Report::envelopes`, `Report::socle_splits`); abandoned measures aside (`sums`).
pub(super) fn envelope_use_and_splits(snapshot: &Snapshot, sums: &RegionSums, report: &mut Report) {
    for ((region, compartment), notified) in snapshot.envelopes.iter() {
        let used = sums.envelopes.get(&(region.clone(), *compartment)).map_or(0, |sums| sums.committed);
        let envelope =
            EnvelopeUse { region: region.clone(), compartment: *compartment, notified: *notified, committed: used };
        if envelope.headroom() < 0 {
            report.findings.push(Arc::new(Finding {
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
            }));
        }
        report.envelopes.push(envelope);
    }
    for ((region, compartment), sums) in &sums.envelopes {
        payment_credits(snapshot, region, *compartment, sums, report);
        let years: std::collections::BTreeSet<i32> =
            sums.cp_by_year.keys().chain(sums.ae_installed_in.keys()).copied().collect();
        for year in years {
            report.credits.push(super::CreditYear {
                region: region.clone(),
                compartment: *compartment,
                year,
                ae_programmed: sums.ae_installed_in.get(&year).map_or(0, |t| t.sum),
                cp_called: sums.cp_by_year.get(&year).map_or(0, |t| t.sum),
                trajectory_ae: None,
                trajectory_cp: None,
            });
        }
    }
    report.socle_splits = (sums.splits.iter())
        .map(|(region, s)| SocleSplit { region: region.clone(), children: s.children, ase: s.ase, adults: s.adults })
        .collect();
}

/// Yearly payment credits of an envelope against the AE still available for that year: the AE committed on measures
/// installed by the end of the year, within the notified AE. CP beyond it are called for measures not yet installed,
/// or beyond the envelope.
fn payment_credits(
    snapshot: &Snapshot,
    region: &str,
    compartment: Compartment,
    sums: &EnvelopeSums,
    report: &mut Report,
) {
    let notified = snapshot.envelopes.get(&(region.to_owned(), compartment));
    for (year, cp) in &sums.cp_by_year {
        let cp = &cp.sum;
        let installed: i64 = sums.ae_installed_in.range(..=*year).map(|(_, t)| t.sum).sum();
        let available = match notified {
            Some(notified) => installed.min(*notified),
            None => installed,
        };
        if *cp > available {
            report.findings.push(Arc::new(Finding {
                code: "CP_EXCEEDS_AVAILABLE_AE",
                severity: Severity::Error,
                subject_kind: SubjectKind::Envelope,
                subject: format!("{region}/{}/{year}", compartment.as_str()),
                region: region.to_owned(),
                departements: Vec::new(),
                figures: vec![
                    ("annee", FigureValue::Year(*year)),
                    ("cp", FigureValue::Cents(*cp)),
                    ("aeDisponible", FigureValue::Cents(available)),
                ],
                message: format!(
                    "Région {region}, enveloppe {}, {year} : {} de crédits de paiement appelés pour {} d'AE disponibles (mesures installées au plus tard en {year}, dans la limite de l'AE notifiée)",
                    compartment_label(compartment),
                    euros(*cp),
                    euros(available)
                ),
            }));
        }
    }
}

/// A region's socle, once committed, should lean towards the national split (400 M€ children of which 50 M€ ASE,
/// 585 M€ adults): the circular sets the split nationally, so a regional gap is a warning to discuss, not an error.
pub const BALANCE_TOLERANCE_BP: i64 = 1_000;

/// A share in basis points, rounded as it prints (half away from zero, `money::ratio_basis_points`); 0 of nothing.
/// Judged as printed too: the tolerances compare the rounded shares the finding shows.
fn share_bp(part: i64, whole: i64) -> i64 {
    crate::money::ratio_basis_points(part, whole).unwrap_or(0)
}

fn percent(bp: i64) -> String {
    crate::money::basis_points_to_french_percent(bp)
}

pub(super) fn socle_balance(snapshot: &Snapshot, report: &mut Report) {
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
            report.findings.push(Arc::new(Finding {
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
            }));
        }
        let ase = share_bp(split.ase, split.children);
        if split.children > 0 && ase + BALANCE_TOLERANCE_BP < ase_target {
            report.findings.push(Arc::new(Finding {
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
            }));
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

pub(super) fn compartment_label(compartment: Compartment) -> &'static str {
    match compartment {
        Compartment::Socle => "socle",
        Compartment::Precoce => "précoce",
        Compartment::Ecole => "école",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciled::engine::reconcile;
    use crate::reconciled::engine::test_support::*;
    use crate::vocabulary::{CostComponent, MeasureCompartment, MeasureStatus, Payer};

    #[test]
    fn envelopes_count_assurance_maladie_commitments_and_report_a_ceiling_passed() {
        let mut snapshot = Snapshot { rules: rules().into(), ..Default::default() };
        snapshot.measures = vec![
            Arc::new(measure("a", "183", MeasureCompartment::SocleEnfants)),
            Arc::new(measure("b", "183", MeasureCompartment::SocleAse)),
        ];
        Arc::make_mut(&mut snapshot.measures[1]).solutions = 12;
        let mut abandoned = measure("z", "183", MeasureCompartment::SocleEnfants);
        abandoned.status = MeasureStatus::Abandonnee;
        snapshot.measures.push(Arc::new(abandoned));
        snapshot.commitments = vec![
            Arc::new(commitment("a", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 600, 30, 2026)),
            Arc::new(commitment("b", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 500, 12, 2026)),
            Arc::new(commitment("z", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 9_999, 30, 2026)),
        ];
        Arc::make_mut(&mut snapshot.envelopes).insert(("84".into(), Compartment::Socle), 1_000);
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
        let exceeded: Vec<&Finding> =
            report.findings.iter().filter(|f| f.code == "ENVELOPE_EXCEEDED").map(|f| &**f).collect();
        assert_eq!(exceeded.len(), 1);
        assert_eq!(exceeded[0].subject, "84/SOCLE");
        assert!(report.findings.iter().any(|f| f.code == "ORPHAN_COMMITMENT" && f.subject == "z"));
    }

    #[test]
    fn payment_credits_beyond_the_ae_of_installed_measures_are_reported_per_envelope_and_year() {
        // Measure a installs in 2026 (AE 1 000), b in 2027 (AE 500); the ARS calls 1 200 of CP in 2026:
        // only 1 000 of AE is installed by then.
        let mut snapshot = Snapshot { rules: rules().into(), ..Default::default() };
        snapshot.measures = vec![
            Arc::new(measure("a", "183", MeasureCompartment::SocleEnfants)),
            Arc::new(measure("b", "182", MeasureCompartment::SocleEnfants)),
        ];
        Arc::make_mut(&mut snapshot.measures[1]).planned_installation = day(2027, 1, 1);
        let mut a = commitment("a", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 1_000, 30, 2026);
        a.schedule = vec![(2026, 1_000)];
        let mut b = commitment("b", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 500, 30, 2027);
        b.schedule = vec![(2026, 0), (2027, 500)];
        snapshot.commitments = vec![Arc::new(a), Arc::new(b)];
        Arc::make_mut(&mut snapshot.envelopes).insert(("84".into(), Compartment::Socle), 10_000);
        assert!(!codes_of(&reconcile(&snapshot)).contains(&"CP_EXCEEDS_AVAILABLE_AE"));
        // b's CP moved to 2026, before its installation: 1 500 called for 1 000 installed.
        Arc::make_mut(&mut snapshot.commitments[1]).schedule = vec![(2026, 500)];
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

    #[test]
    fn a_socle_far_from_the_national_split_and_no_ase_are_flagged() {
        let mut snapshot = Snapshot { rules: rules().into(), targets: targets(), ..Default::default() };
        snapshot.measures = vec![
            Arc::new(measure("c", "183", MeasureCompartment::SocleEnfants)),
            Arc::new(measure("a", "255", MeasureCompartment::SocleAdultes)),
        ];
        Arc::make_mut(&mut snapshot.rules).push(rule(
            "255",
            CostComponent::Global,
            Payer::AssuranceMaladie,
            Some(10_000),
        ));
        // 40 % children (target 40.61 %) with no ASE at all: only the ASE share is flagged.
        snapshot.commitments = vec![
            Arc::new(commitment("c", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 4_000, 30, 2026)),
            Arc::new(commitment("a", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 6_000, 30, 2026)),
        ];
        let report = reconcile(&snapshot);
        assert_eq!(
            report.socle_splits,
            vec![SocleSplit { region: "84".into(), children: 4_000, ase: 0, adults: 6_000 }]
        );
        let codes = codes_of(&report);
        assert!(codes.contains(&"ASE_SHARE_BELOW_TARGET") && !codes.contains(&"SOCLE_BALANCE_OFF_TARGET"), "{codes:?}");
        // 20 % children: 20.6 points below the national split.
        Arc::make_mut(&mut snapshot.commitments[0]).full_year_cents = 1_500;
        Arc::make_mut(&mut snapshot.commitments[1]).full_year_cents = 6_000;
        let report = reconcile(&snapshot);
        let f = report.findings.iter().find(|f| f.code == "SOCLE_BALANCE_OFF_TARGET").unwrap();
        assert_eq!(f.figures[0], ("partEnfants", FigureValue::BasisPoints(2_000)));
        assert_eq!(f.figures[1], ("partEnfantsNationale", FigureValue::BasisPoints(4_061)));
        // 400 / 985 = 40,609… %: rounded half away from zero, not truncated to 40,60 %.
        assert!(f.message.ends_with("la répartition nationale est de 40,61 %"), "{}", f.message);
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
    fn the_ase_share_is_judged_against_the_national_target_within_the_tolerance() {
        // National split: children 40 000 of a socle of 98 500 (40,609… %, printed 40,61 %), ASE 5 000 of the
        // children's 40 000 (12,50 %).
        let snapshot = Snapshot { targets: targets(), ..Default::default() };
        let mut report = Report {
            socle_splits: vec![
                // 40 % children, 2 % of them ASE: 10,5 points below the target, beyond the 10 tolerated.
                SocleSplit { region: "84".into(), children: 10_000, ase: 200, adults: 15_000 },
                // 2,5 % ASE: exactly 10 points below, tolerated.
                SocleSplit { region: "11".into(), children: 10_000, ase: 250, adults: 15_000 },
                // Nothing committed: nothing to judge.
                SocleSplit { region: "93".into(), ..Default::default() },
                // Adults only: the children's share is off target; without children there is no ASE share.
                SocleSplit { region: "27".into(), children: 0, ase: 0, adults: 5_000 },
            ],
            ..Default::default()
        };
        socle_balance(&snapshot, &mut report);
        assert_eq!(codes_of(&report), vec!["ASE_SHARE_BELOW_TARGET", "SOCLE_BALANCE_OFF_TARGET"]);
        let ase = &report.findings[0];
        assert_eq!((ase.subject.as_str(), ase.severity), ("84", Severity::Warning));
        assert_eq!(
            ase.figures,
            vec![
                ("partAse", FigureValue::BasisPoints(200)),
                ("partAseNationale", FigureValue::BasisPoints(1_250)),
                ("ase", FigureValue::Cents(200)),
                ("enfants", FigureValue::Cents(10_000)),
            ]
        );
        assert_eq!(
            ase.message,
            "Région 84 : les enfants protégés par l'ASE reçoivent 2,00 % du socle enfants engagé (2,00 € sur 100,00 €), la cible nationale est de 12,50 %"
        );
        let off = &report.findings[1];
        assert_eq!((off.subject.as_str(), off.severity), ("27", Severity::Info));
        assert_eq!(
            off.figures[..2],
            [("partEnfants", FigureValue::BasisPoints(0)), ("partEnfantsNationale", FigureValue::BasisPoints(4_061))]
        );
    }
}
