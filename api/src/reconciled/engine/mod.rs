//! The reconciliation engine (pure: no HTTP, no database). It takes a snapshot of what institutions submitted and
//! returns what disagrees and why: findings with a stable code, a severity, a subject, the figures compared and a
//! sentence in plain French, a co-financing status per measure, and the use of each envelope.
//!
//! The types (`Snapshot` in, `Report` out) are in `types`; each family of checks has its module, and `reconcile`
//! runs them in this order, which the findings keep:
//! - each measure in turn: `hygiene::legacy_category_on_creation`, `cofinancing` (its status), then
//!   `hygiene::orphan_commitments`, so that a measure's findings stand together and its status points at them;
//! - `hygiene::possible_duplicates`;
//! - `envelopes`: ceilings, payment credits against the AE installed, socle splits, then the socle balance;
//! - `school`: school plans against école commitments, per académie and year;
//! - `hygiene::identifiers_and_territory`;
//! - `coverage`: needs coverage (with the masking of small counts, for the views);
//! - `campaigns`: campaign deadlines;
//! - `steering`: credits against the CNSA's trajectory, CP against drawing rights, forecasts changed after their
//!   deadline;
//! - `envelopes::national_findings`, when the snapshot carries the annex.

mod campaigns;
mod cofinancing;
pub mod coverage;
mod envelopes;
pub mod hygiene;
mod school;
mod steering;
mod sums;
#[cfg(test)]
mod test_support;
mod types;

use std::collections::HashMap;
use std::sync::Arc;

pub use cofinancing::SHARE_TOLERANCE_BP;
pub use coverage::CoverageRows;
pub use envelopes::{BALANCE_TOLERANCE_BP, national_findings};
pub use hygiene::DuplicateGroups;
pub use steering::{FORECAST_CHANGE_TOLERANCE_BP, TRAJECTORY_TOLERANCE_BP};
pub use sums::RegionSums;
pub use types::{
    CampaignStandingFact, CoFinancingStatus, CommitmentFact, CreditYear, DrawingRightFact, DrawingYear, EnvelopeUse,
    FigureValue, Finding, ForecastFact, MeasureFact, MeasureStatusReport, NATIONAL, NationalTargets, NeedsCoverage,
    NeedsFact, Report, RuleFact, SchoolMatch, SchoolPlanFact, Severity, Snapshot, SocleSplit, StabilisedForecast,
    SteeringFacts, SubjectKind, Territory, TrajectoryFact,
};

use crate::money::Euros;

/// A snapshot's commitments, by measure id, in the snapshot's order.
type CommitmentsByMeasure<'a> = HashMap<&'a str, Vec<&'a CommitmentFact>>;

fn euros(cents: i64) -> String {
    Euros(cents).to_french()
}

/// A finding about a measure, its message prefixed with the measure's reference.
fn measure_finding(
    measure: &MeasureFact,
    code: &'static str,
    severity: Severity,
    figures: Vec<(&'static str, FigureValue)>,
    message: String,
) -> Finding {
    Finding {
        code,
        severity,
        subject_kind: SubjectKind::Measure,
        subject: measure.id.clone(),
        region: measure.region_code.clone(),
        departements: vec![measure.departement_code.clone()],
        figures,
        message: format!("Mesure {} : {message}", measure.reference),
    }
}

/// What the engine concludes about one measure on its own: its co-financing status and its own findings (a creation
/// under a legacy category, the co-financing checks, commitments left on an abandoned measure), its identifier and
/// territory findings, and what it adds to the region's sums. It depends only on the measure, its active
/// commitments and the reference data (rules, legacy categories, territory), so the live state keeps it between
/// writes and a write computes it again only for the measures it touched; the region-wide families then add up the
/// kept sums instead of going through every commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasureOutcome {
    pub status: CoFinancingStatus,
    pub awaited_cofinancer: Option<String>,
    pub findings: Vec<Arc<Finding>>,
    /// Its département outside its region, its FINESS number wrong (`hygiene::measure_identifiers`): reported in
    /// the place of the identifier and territory checks.
    pub identifiers: Vec<Arc<Finding>>,
    pub sums: MeasureSums,
}

/// What one measure adds to its region's sums: envelopes and payment credits, school matching, needs coverage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeasureSums {
    /// Its active assurance-maladie commitments' full-year amounts.
    pub am_cents: i64,
    /// Their payment schedules, (year, cents), in the commitments' order.
    pub cp: Vec<(i32, i64)>,
    /// Their full-year amounts by year of installation, (year, cents), in the commitments' order.
    pub ae: Vec<(i32, i64)>,
    /// The needs-coverage row its solutions count in, if any.
    pub coverage_group: Option<String>,
    /// The hash of what makes measures possible duplicates of each other (`hygiene::duplicate_hash`).
    pub duplicate_hash: u64,
}

/// What a measure's outcome is computed with, besides the measure and its commitments.
struct OutcomeInputs<'a> {
    snapshot: &'a Snapshot,
    rules_of: HashMap<&'a str, Vec<RuleFact>>,
    coverage_groups: &'a coverage::CoverageGroups,
}

fn measure_outcome(measure: &MeasureFact, commitments: &[&CommitmentFact], inputs: &OutcomeInputs) -> MeasureOutcome {
    let snapshot = inputs.snapshot;
    let category_rules = inputs.rules_of.get(measure.category_code.as_str()).map_or(&[][..], Vec::as_slice);
    let mut findings: Vec<Finding> =
        hygiene::legacy_category_on_creation(measure, &snapshot.legacy_categories).into_iter().collect();
    // An abandoned measure awaits nothing: its status says so, and commitments left on it are orphans.
    let (status, awaited_cofinancer) = if measure.status == crate::vocabulary::MeasureStatus::Abandonnee {
        (CoFinancingStatus::Abandoned, None)
    } else {
        let (status, checks, awaited) = cofinancing::check_measure(measure, commitments, snapshot, category_rules);
        findings.extend(checks);
        (status, awaited)
    };
    findings.extend(hygiene::orphan_commitments(measure, commitments));
    let mut sums = MeasureSums {
        coverage_group: coverage::coverage_group_of(measure, &snapshot.territory, inputs.coverage_groups),
        duplicate_hash: hygiene::duplicate_hash(measure),
        ..Default::default()
    };
    for c in commitments.iter().filter(|c| c.funder == crate::vocabulary::Payer::AssuranceMaladie) {
        sums.am_cents += c.full_year_cents;
        sums.cp.extend(c.schedule.iter().copied());
        sums.ae.push((chrono::Datelike::year(&c.installation), c.full_year_cents));
    }
    MeasureOutcome {
        status,
        awaited_cofinancer,
        findings: findings.into_iter().map(Arc::new).collect(),
        identifiers: hygiene::measure_identifiers(measure, &snapshot.territory).into_iter().map(Arc::new).collect(),
        sums,
    }
}

/// A report, and what the next reconciliation of the same region may reuse: the outcome of each measure (in the
/// snapshot's order of measures), the region's sums, the groups of possible duplicates with their findings, the
/// needs-coverage rows with theirs.
#[derive(Clone, Debug, Default)]
pub struct Reconciliation {
    pub report: Report,
    pub outcomes: Vec<Arc<MeasureOutcome>>,
    pub sums: RegionSums,
    pub duplicates: DuplicateGroups,
    pub coverage: CoverageRows,
}

/// What a reconciliation of a region after a write starts from: the last one's sums, duplicate groups and coverage
/// rows, and the measures the write touched as they were then (with their outcomes), whose contributions leave the
/// sums.
pub struct Previous<'a> {
    pub sums: &'a RegionSums,
    pub duplicates: &'a DuplicateGroups,
    pub coverage: &'a CoverageRows,
    pub replaced: Vec<(&'a MeasureFact, &'a MeasureOutcome)>,
}

/// Reconciles a snapshot: every measure's co-financing status, envelope ceilings and balances, payment credits,
/// territory hygiene, needs coverage, school matching, campaign deadlines; the national checks when the snapshot
/// carries the annex.
pub fn reconcile(snapshot: &Snapshot) -> Report {
    reconcile_reusing(snapshot, None, |_, _| None).report
}

/// Above this many measures to compute, their commitments are found through an index of the snapshot's commitments
/// by measure; below, by going through the commitments once per measure (a write touches one measure or a few).
const INDEXED_FROM: usize = 8;

/// Reconciles a snapshot, taking each measure's outcome from `reuse` where it gives one (the measure, its
/// commitments and the reference data unchanged since it was computed) and computing the others. With `previous`,
/// the region's sums start from the last reconciliation's, less the `replaced` measures' contributions, plus those
/// of the measures computed now (so `reuse` must give an outcome for every measure but the touched ones); without,
/// they add up every measure. A group of possible duplicates takes its findings from the last reconciliation when
/// its members are the same facts. The report is the same as `reconcile`'s on the same snapshot.
pub fn reconcile_reusing(
    snapshot: &Snapshot,
    previous: Option<Previous>,
    reuse: impl Fn(usize, &MeasureFact) -> Option<Arc<MeasureOutcome>>,
) -> Reconciliation {
    let mut report = Report::default();
    let kept: Vec<Option<Arc<MeasureOutcome>>> =
        snapshot.measures.iter().enumerate().map(|(i, m)| reuse(i, m)).collect();
    let computed: Vec<bool> = kept.iter().map(Option::is_none).collect();
    let missing = computed.iter().filter(|c| **c).count();
    let coverage_groups = coverage::coverage_groups(&snapshot.territory);
    let mut outcomes = Vec::with_capacity(snapshot.measures.len());
    if missing == 0 {
        outcomes.extend(kept.into_iter().flatten());
    } else {
        let inputs = OutcomeInputs {
            snapshot,
            rules_of: cofinancing::rules_by_category(&snapshot.rules),
            coverage_groups: &coverage_groups,
        };
        let mut by_measure: CommitmentsByMeasure = HashMap::new();
        if missing > INDEXED_FROM {
            by_measure.reserve(snapshot.measures.len());
            for c in &snapshot.commitments {
                by_measure.entry(c.measure_id.as_str()).or_default().push(c);
            }
        }
        for (measure, kept) in snapshot.measures.iter().zip(kept) {
            let outcome = kept.unwrap_or_else(|| {
                let found: Vec<&CommitmentFact>;
                let commitments = if missing > INDEXED_FROM {
                    by_measure.get(measure.id.as_str()).map_or(&[][..], Vec::as_slice)
                } else {
                    found = snapshot.commitments.iter().filter(|c| c.measure_id == measure.id).map(|c| &**c).collect();
                    &found[..]
                };
                Arc::new(measure_outcome(measure, commitments, &inputs))
            });
            outcomes.push(outcome);
        }
    }
    let territory = &snapshot.territory;
    let sums = match &previous {
        Some(previous) => {
            let mut sums = previous.sums.clone();
            for (measure, outcome) in &previous.replaced {
                sums.apply(measure, outcome, territory, -1);
            }
            for ((measure, outcome), computed) in snapshot.measures.iter().zip(&outcomes).zip(&computed) {
                if *computed {
                    sums.apply(measure, outcome, territory, 1);
                }
            }
            sums
        }
        None => {
            let mut sums = RegionSums::default();
            for (measure, outcome) in snapshot.measures.iter().zip(&outcomes) {
                sums.apply(measure, outcome, territory, 1);
            }
            sums
        }
    };
    report.statuses.reserve(snapshot.measures.len());
    for (measure, outcome) in snapshot.measures.iter().zip(&outcomes) {
        let first = report.findings.len();
        report.findings.extend(outcome.findings.iter().cloned());
        report.statuses.push(MeasureStatusReport {
            measure_id: measure.id.clone(),
            status: outcome.status,
            findings: (first..report.findings.len()).collect(),
            awaited_cofinancer: outcome.awaited_cofinancer.clone(),
        });
    }
    let no_groups = DuplicateGroups::default();
    let kept_groups = previous.as_ref().map_or(&no_groups, |p| p.duplicates);
    // The keys a write may have moved: its measures' as they were and as they are.
    let affected: Option<Vec<u64>> = previous.as_ref().map(|p| {
        let before = p.replaced.iter().map(|(_, outcome)| outcome.sums.duplicate_hash);
        let now = (outcomes.iter().zip(&computed)).filter(|(_, c)| **c).map(|(o, _)| o.sums.duplicate_hash);
        let mut hashes: Vec<u64> = before.chain(now).collect();
        hashes.sort_unstable();
        hashes.dedup();
        hashes
    });
    let duplicates = hygiene::possible_duplicates(snapshot, &outcomes, kept_groups, affected.as_deref(), &mut report);
    envelopes::envelope_use_and_splits(snapshot, &sums, &mut report);
    envelopes::socle_balance(snapshot, &mut report);
    school::school_matching(snapshot, &sums, &mut report);
    hygiene::identifiers_and_territory(snapshot, &outcomes, &mut report);
    let coverage =
        coverage::needs_coverage(snapshot, &sums, &coverage_groups, previous.as_ref().map(|p| p.coverage), &mut report);
    campaigns::campaign_deadlines(snapshot, &mut report);
    steering::credit_steering(snapshot, &mut report);
    if let Some(annex) = &snapshot.annex {
        report
            .findings
            .extend(national_findings(annex, &snapshot.targets, &report.socle_splits).into_iter().map(Arc::new));
    }
    Reconciliation { report, outcomes, sums, duplicates, coverage }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::territory::annex::AnnexFigures;
    use crate::vocabulary::{
        Compartment, CostComponent, MeasureCompartment, MeasureNature, MeasureStatus, NeedsIndicatorKind, Payer,
    };
    use test_support::*;

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
            rules: rules().into(),
            territory: Arc::new(territory),
            targets: targets(),
            now: "2026-06-02T10:00:00Z".parse().unwrap(),
            ..Default::default()
        };
        Arc::make_mut(&mut snapshot.rules).push(rule(
            "255",
            CostComponent::Global,
            Payer::AssuranceMaladie,
            Some(10_000),
        ));
        Arc::make_mut(&mut snapshot.legacy_categories).insert("183".into());
        let mut a = measure("a", "183", MeasureCompartment::SocleEnfants);
        a.status = MeasureStatus::Abandonnee;
        let mut d = measure("d", "255", MeasureCompartment::SocleAdultes);
        d.departement_code = "13".into();
        snapshot.measures = vec![
            Arc::new(a),
            Arc::new(measure("b", "448", MeasureCompartment::SocleAdultes)),
            Arc::new(measure("c", "448", MeasureCompartment::SocleAdultes)),
            Arc::new(d),
        ];
        let mut ars_d = commitment("d", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 60_000, 30, 2026);
        ars_d.schedule = vec![(2025, 1_000), (2026, 60_000)];
        snapshot.commitments = vec![
            Arc::new(commitment("a", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 100_000, 30, 2026)),
            Arc::new(ars_d),
        ];
        // Committed on the socle: d's 600 € (a is abandoned), against 500 € notified.
        Arc::make_mut(&mut snapshot.envelopes).insert(("84".into(), Compartment::Socle), 50_000);
        *Arc::make_mut(&mut snapshot.school_plans) = vec![SchoolPlanFact {
            id: "s1".into(),
            academie: "lyon".into(),
            departement: "38".into(),
            cost_cents: 1_000,
            year: 2026,
        }];
        // 60 EAM solutions (b and c) for 100 people waiting.
        *Arc::make_mut(&mut snapshot.needs) = vec![need("13.2", NeedsIndicatorKind::EnAttenteAdmission, 100)];
        *Arc::make_mut(&mut snapshot.campaigns) = vec![standing(None)];
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
                ("a", CoFinancingStatus::Abandoned, vec![0, 1]),
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
    /// A small deterministic generator: the same draws on every run.
    struct Draws(u64);

    impl Draws {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % below
        }
    }

    fn random_measure(draws: &mut Draws, id: &str) -> MeasureFact {
        let (category, compartment) = [
            ("183", MeasureCompartment::SocleEnfants),
            ("190", MeasureCompartment::SocleAse),
            ("448", MeasureCompartment::SocleAdultes),
            ("449", MeasureCompartment::SocleAdultes),
            ("255", MeasureCompartment::Ecole),
        ][draws.next(5) as usize];
        let mut m = measure(id, category, compartment);
        m.solutions = [10, 20, 30][draws.next(3) as usize];
        m.departement_code = ["69", "38", "01"][draws.next(3) as usize].into();
        m.planned_installation = day(2025 + draws.next(3) as i32, 9, 1);
        m.status =
            [MeasureStatus::Programmee, MeasureStatus::Programmee, MeasureStatus::Abandonnee][draws.next(3) as usize];
        m.nature = [MeasureNature::Creation, MeasureNature::Transformation][draws.next(2) as usize];
        m
    }

    fn random_commitments(draws: &mut Draws, measure: &str) -> Vec<CommitmentFact> {
        let mut list = Vec::new();
        for (funder, code, component) in [
            (Payer::AssuranceMaladie, "ARS-84", CostComponent::Global),
            (Payer::AssuranceMaladie, "ARS-84", CostComponent::Soins),
            (Payer::Collectivite, "CD-69", CostComponent::Hebergement),
            (Payer::Collectivite, "CD-38", CostComponent::Global),
        ] {
            if draws.next(3) == 0 {
                let cents = 10_000 * (1 + draws.next(5) as i64);
                let year = 2025 + draws.next(3) as i32;
                list.push(commitment(
                    measure,
                    funder,
                    code,
                    component,
                    cents,
                    [10, 20, 30][draws.next(3) as usize],
                    year,
                ));
            }
        }
        list
    }

    #[test]
    fn a_recomputation_keeps_the_findings_of_untouched_measures_and_duplicate_groups() {
        // Two groups of possible duplicates; a write changes a measure of the second: the first group's findings and
        // the untouched measures' outcomes are the very same values, the second group's are computed again.
        let mut before = Snapshot { rules: rules().into(), ..Default::default() };
        for id in ["a1", "a2", "b1", "b2"] {
            let mut m = measure(id, if id.starts_with('a') { "183" } else { "448" }, MeasureCompartment::SocleEnfants);
            m.finess = Some("690000000".into());
            before.measures.push(Arc::new(m));
        }
        let kept = reconcile_reusing(&before, None, |_, _| None);
        let mut after = before.clone();
        let mut changed = (*after.measures[3]).clone();
        changed.reference = "B2-bis".into();
        after.measures[3] = Arc::new(changed);
        let previous = Previous {
            sums: &kept.sums,
            duplicates: &kept.duplicates,
            coverage: &kept.coverage,
            replaced: vec![(&before.measures[3], &kept.outcomes[3])],
        };
        let reused = reconcile_reusing(&after, Some(previous), |i, _| (i != 3).then(|| kept.outcomes[i].clone()));
        assert_eq!(reused.report, reconcile(&after));
        let duplicates = |r: &Reconciliation| -> Vec<Arc<Finding>> {
            r.report.findings.iter().filter(|f| f.code == "POSSIBLE_DUPLICATE").cloned().collect()
        };
        let (old, new) = (duplicates(&kept), duplicates(&reused));
        assert_eq!(new.len(), 4);
        assert!(Arc::ptr_eq(&old[0], &new[0]) && Arc::ptr_eq(&old[1], &new[1]), "group a kept");
        assert!(!Arc::ptr_eq(&old[3], &new[3]) && new[2].message.contains("B2-bis"), "group b computed again");
        for i in 0..3 {
            assert!(Arc::ptr_eq(&kept.outcomes[i], &reused.outcomes[i]));
            assert!(Arc::ptr_eq(&kept.outcomes[i].identifiers[0], &reused.outcomes[i].identifiers[0]));
        }
    }

    #[test]
    fn reusing_the_outcomes_of_untouched_measures_gives_the_report_of_a_full_reconciliation() {
        // Random regions, then random writes (measures changed, created, abandoned or removed; commitments added,
        // changed or withdrawn): the report composed from the outcomes kept for the untouched measures and computed
        // for the touched ones is the full reconciliation's, finding for finding.
        for seed in 0..200 {
            let mut draws = Draws(seed);
            let mut territory = needs_territory();
            territory.departements_of_region.insert("84".into(), ["69".to_owned(), "38".to_owned()].into());
            for (d, c) in [("69", "CD-69"), ("38", "CD-38"), ("01", "CD-01")] {
                territory.collectivite_departements.insert(c.into(), [d.to_owned()].into());
                territory.academie_of.insert(d.into(), "lyon".into());
            }
            let mut before = Snapshot {
                rules: rules().into(),
                territory: Arc::new(territory),
                targets: targets(),
                now: "2026-06-02T10:00:00Z".parse().unwrap(),
                ..Default::default()
            };
            Arc::make_mut(&mut before.rules).push(rule(
                "255",
                CostComponent::Global,
                Payer::AssuranceMaladie,
                Some(10_000),
            ));
            Arc::make_mut(&mut before.legacy_categories).insert("183".into());
            Arc::make_mut(&mut before.envelopes).insert(("84".into(), Compartment::Socle), 200_000);
            // People counted in a row measures program solutions for (13.2 → 448, in 69), and in one they do not
            // (7.6 → 186, in 38): a row moved by a write, rows that stand for programmed solutions only, one that
            // stands for its people only.
            let creton = NeedsFact {
                departement: "38".into(),
                orientation: "7.6".into(),
                indicator: NeedsIndicatorKind::AdultesCreton,
                people: draws.next(30) as i64,
            };
            *Arc::make_mut(&mut before.needs) =
                vec![need("13.2", NeedsIndicatorKind::EnAttenteAdmission, 10 * draws.next(7) as i64), creton];
            for i in 0..(5 + draws.next(20)) {
                let id = format!("m{i:02}");
                before.measures.push(Arc::new(random_measure(&mut draws, &id)));
                before.commitments.extend(random_commitments(&mut draws, &id).into_iter().map(Arc::new));
            }
            // Sorted by id, as the live state holds them: the order of a measure's findings follows its commitments'.
            before.commitments.sort_by(|a, b| a.id.cmp(&b.id));
            let kept = reconcile_reusing(&before, None, |_, _| None);
            assert_eq!(kept.report, reconcile(&before));
            let mut after = before.clone();
            let mut touched = std::collections::BTreeSet::new();
            for _ in 0..(1 + draws.next(4)) {
                let i = draws.next(after.measures.len() as u64 + 2) as usize;
                let id = if i < after.measures.len() { after.measures[i].id.clone() } else { format!("n{i:02}") };
                touched.insert(id.clone());
                after.measures.retain(|m| m.id != id);
                after.commitments.retain(|c| c.measure_id != id);
                if draws.next(5) != 0 {
                    after.measures.push(Arc::new(random_measure(&mut draws, &id)));
                    after.commitments.extend(random_commitments(&mut draws, &id).into_iter().map(Arc::new));
                }
            }
            after.measures.sort_by(|a, b| a.id.cmp(&b.id));
            after.commitments.sort_by(|a, b| a.id.cmp(&b.id));
            let index_before: std::collections::HashMap<&str, usize> =
                before.measures.iter().enumerate().map(|(i, m)| (m.id.as_str(), i)).collect();
            // The touched measures as they were leave the last reconciliation's sums.
            let replaced = (touched.iter())
                .filter_map(|id| index_before.get(id.as_str()))
                .map(|i| (&*before.measures[*i], &*kept.outcomes[*i]))
                .collect();
            let previous =
                Previous { sums: &kept.sums, duplicates: &kept.duplicates, coverage: &kept.coverage, replaced };
            let reused = reconcile_reusing(&after, Some(previous), |_, m| {
                (!touched.contains(&m.id)).then(|| kept.outcomes[index_before[m.id.as_str()]].clone())
            });
            assert_eq!(reused.report, reconcile(&after), "seed {seed}, touched {touched:?}");
            let afresh = reconcile_reusing(&after, None, |_, _| None);
            assert_eq!(reused.sums, afresh.sums, "seed {seed}: sums moved by the write = sums added up afresh");
            assert_eq!(reused.outcomes.len(), after.measures.len());
        }
    }
}
