//! Hygiene (pure): identifiers (FINESS numbers, DOMAIN.md §8) and territory (a measure's département in its region,
//! a school plan's département in its académie), and measures that look wrong on their own: a creation under a
//! legacy category, commitments left on an abandoned measure, possible duplicates. Writes through the hub are
//! validated already; these checks also catch what came in before a rule existed, by bulk loads, or when reference
//! data changed since.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Datelike;

use super::{
    CommitmentFact, FigureValue, Finding, MeasureFact, MeasureOutcome, Report, Severity, Snapshot, SubjectKind,
    Territory, measure_finding,
};
use crate::validation::identifiers::{FinessCheck, finess_check, finess_departement};
use crate::vocabulary::MeasureStatus;

/// A creation under a FINESS category closed in 2018: the first of a measure's findings.
pub(super) fn legacy_category_on_creation(measure: &MeasureFact, legacy: &BTreeSet<String>) -> Option<Finding> {
    (measure.is_creation() && legacy.contains(&measure.category_code)).then(|| {
        measure_finding(
            measure,
            "LEGACY_CATEGORY_ON_CREATION",
            Severity::Warning,
            vec![],
            format!("création sous la catégorie FINESS {} fermée en 2018", measure.category_code),
        )
    })
}

/// Commitments still standing on an abandoned measure: the last of a measure's findings.
pub(super) fn orphan_commitments(measure: &MeasureFact, commitments: &[&CommitmentFact]) -> Option<Finding> {
    (measure.status == MeasureStatus::Abandonnee && !commitments.is_empty()).then(|| {
        measure_finding(
            measure,
            "ORPHAN_COMMITMENT",
            Severity::Warning,
            vec![("engagements", FigureValue::Count(commitments.len() as i64))],
            "des engagements subsistent sur une mesure abandonnée".into(),
        )
    })
}

/// Measures alike in département, category, year of installation and number of solutions (abandoned ones aside):
/// perhaps one measure entered twice. Each of them is flagged, naming the others.
/// References a duplicate finding names at most.
const DUPLICATES_NAMED: usize = 10;

/// The groups of possible duplicates a reconciliation found, each with its findings, in key order: the next
/// reconciliation of the region takes a group's findings from here when its members are the same facts (a write
/// changes one group or two, and formatting every member's finding again was most of this check's cost).
#[derive(Clone, Debug, Default)]
pub struct DuplicateGroups(Vec<DuplicateGroup>);

#[derive(Clone, Debug)]
struct DuplicateGroup {
    members: Vec<Arc<MeasureFact>>,
    findings: Vec<Arc<Finding>>,
    /// The hash of the members' key (`duplicate_hash`).
    hash: u64,
}

type DuplicateKey<'a> = (&'a str, &'a str, i32, i64);

fn duplicate_key(measure: &MeasureFact) -> DuplicateKey<'_> {
    (
        measure.departement_code.as_str(),
        measure.category_code.as_str(),
        measure.planned_installation.year(),
        measure.solutions,
    )
}

impl DuplicateGroups {
    /// The findings of a group kept from the last reconciliation, when its members are the very same facts.
    fn kept(&self, key: &DuplicateKey, members: &[&Arc<MeasureFact>]) -> Option<&[Arc<Finding>]> {
        let at = self.0.binary_search_by(|g| duplicate_key(&g.members[0]).cmp(key)).ok()?;
        let group = &self.0[at];
        (group.members.len() == members.len() && group.members.iter().zip(members).all(|(a, b)| Arc::ptr_eq(a, b)))
            .then_some(group.findings.as_slice())
    }
}

pub(super) fn possible_duplicates(
    snapshot: &Snapshot,
    outcomes: &[Arc<MeasureOutcome>],
    previous: &DuplicateGroups,
    affected: Option<&[u64]>,
    report: &mut Report,
) -> DuplicateGroups {
    // Only the measures whose key hash is among `affected` (sorted: those of the touched measures, as they were and
    // as they are) are grouped again; the other groups of the last reconciliation are kept as they were (no touched
    // measure entered or left them). Without `affected`, every measure: ordered by the hash of its key, kept in its
    // outcome (one allocation, no hashing), only runs of equal hashes are grouped by key, in the snapshot's order.
    let mut duplicates: BTreeMap<DuplicateKey, (u64, Vec<&Arc<MeasureFact>>)> = BTreeMap::new();
    let candidates = (snapshot.measures.iter().zip(outcomes).enumerate())
        .filter(|(_, (m, _))| m.status != MeasureStatus::Abandonnee);
    match affected {
        Some(affected) => {
            for (_, (measure, outcome)) in
                candidates.filter(|(_, (_, o))| affected.binary_search(&o.sums.duplicate_hash).is_ok())
            {
                let group =
                    duplicates.entry(duplicate_key(measure)).or_insert((outcome.sums.duplicate_hash, Vec::new()));
                group.1.push(measure);
            }
        }
        None => {
            let mut hashed: Vec<(u64, usize)> = candidates.map(|(i, (_, o))| (o.sums.duplicate_hash, i)).collect();
            hashed.sort_unstable();
            for run in hashed.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
                for (hash, i) in run {
                    let measure = &snapshot.measures[*i];
                    duplicates.entry(duplicate_key(measure)).or_insert((*hash, Vec::new())).1.push(measure);
                }
            }
        }
    }
    let kept_groups: &[DuplicateGroup] = if affected.is_some() { &previous.0 } else { &[] };
    let mut kept_groups =
        kept_groups.iter().filter(|g| affected.is_some_and(|a| a.binary_search(&g.hash).is_err())).peekable();
    let mut fresh = duplicates.into_iter().filter(|(_, (_, measures))| measures.len() > 1).peekable();
    let mut groups = Vec::with_capacity(previous.0.len() + 1);
    // Both in key order: merged.
    loop {
        let take_kept = match (kept_groups.peek(), fresh.peek()) {
            (Some(g), Some((key, _))) => duplicate_key(&g.members[0]) < *key,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_kept {
            let group = kept_groups.next().expect("peeked").clone();
            report.findings.extend(group.findings.iter().cloned());
            groups.push(group);
            continue;
        }
        let (key, (hash, measures)) = fresh.next().expect("peeked");
        let findings = match previous.kept(&key, &measures) {
            Some(findings) => findings.to_vec(),
            None => group_findings(key, &measures),
        };
        report.findings.extend(findings.iter().cloned());
        groups.push(DuplicateGroup { members: measures.into_iter().cloned().collect(), findings, hash });
    }
    DuplicateGroups(groups)
}

/// The hash of a measure's duplicate key, kept in its outcome.
pub(super) fn duplicate_hash(measure: &MeasureFact) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    duplicate_key(measure).hash(&mut hasher);
    hasher.finish()
}

fn group_findings(
    (departement, category, year, solutions): DuplicateKey,
    measures: &[&Arc<MeasureFact>],
) -> Vec<Arc<Finding>> {
    // The first references name the group; listing hundreds in each of its findings would make the region's
    // recomputation quadratic in the group's size, for a message nobody reads to the end.
    let mut references: Vec<&str> = measures.iter().take(DUPLICATES_NAMED).map(|m| m.reference.as_str()).collect();
    let others = measures.len().saturating_sub(DUPLICATES_NAMED);
    let more = format!("et {others} autres");
    if others > 0 {
        references.push(&more);
    }
    let references = references.join(", ");
    measures
        .iter()
        .map(|m| {
            Arc::new(Finding {
                code: "POSSIBLE_DUPLICATE",
                severity: Severity::Warning,
                subject_kind: SubjectKind::Measure,
                subject: m.id.clone(),
                region: m.region_code.clone(),
                departements: vec![m.departement_code.clone()],
                figures: vec![("mesures", FigureValue::Count(measures.len() as i64))],
                message: format!(
                    "Mesure {} : {} mesures identiques (département {departement}, catégorie {category}, {solutions} solutions, {year}) : {references}",
                    m.reference,
                    measures.len(),
                ),
            })
        })
        .collect()
}

/// A measure's département outside its region, its FINESS number invalid or of another département: computed with
/// the measure's outcome, reported in `identifiers_and_territory`'s place.
pub(super) fn measure_identifiers(m: &MeasureFact, territory: &Territory) -> Vec<Finding> {
    let mut findings = Vec::new();
    let finding = |code, severity, message: String| Finding {
        code,
        severity,
        subject_kind: SubjectKind::Measure,
        subject: m.id.clone(),
        region: m.region_code.clone(),
        departements: vec![m.departement_code.clone()],
        figures: vec![],
        message: format!("Mesure {} : {message}", m.reference),
    };
    if territory.departements_of_region.get(&m.region_code).is_some_and(|d| !d.contains(&m.departement_code)) {
        findings.push(finding(
            "DEPARTEMENT_OUTSIDE_REGION",
            Severity::Error,
            format!("le département {} n'appartient pas à la région {}", m.departement_code, m.region_code),
        ));
    }
    let Some(finess) = &m.finess else { return findings };
    match finess_check(finess) {
        FinessCheck::Valid => {}
        FinessCheck::CorsicaUnverified => findings.push(finding(
            "FINESS_KEY_UNVERIFIED",
            Severity::Info,
            format!("la clé du FINESS corse {finess} n'a pu être vérifiée (convention 2A/2B à confirmer)"),
        )),
        FinessCheck::Malformed | FinessCheck::BadCheckDigit => findings.push(finding(
            "FINESS_INVALID",
            Severity::Error,
            format!("le numéro FINESS {finess} n'est pas valide"),
        )),
    }
    if let Some(prefix) = finess_departement(finess)
        && prefix != m.departement_code
    {
        findings.push(finding(
            "FINESS_DEPARTEMENT_MISMATCH",
            Severity::Warning,
            format!(
                "le FINESS {finess} relève du département {prefix}, la mesure du département {}",
                m.departement_code
            ),
        ));
    }
    findings
}

/// Each measure's identifier and territory findings (kept in its outcome), then school plans outside their
/// académie.
pub(super) fn identifiers_and_territory(snapshot: &Snapshot, outcomes: &[Arc<MeasureOutcome>], report: &mut Report) {
    let territory = &snapshot.territory;
    for outcome in outcomes {
        report.findings.extend(outcome.identifiers.iter().cloned());
    }
    for plan in snapshot.school_plans.iter() {
        let academie_of_departement = territory.academie_of.get(&plan.departement);
        if academie_of_departement.is_some_and(|a| *a != plan.academie) {
            report.findings.push(Arc::new(Finding {
                code: "SCHOOL_PLAN_OUTSIDE_ACADEMIE",
                severity: Severity::Error,
                subject_kind: SubjectKind::Academie,
                subject: plan.id.clone(),
                region: territory.region_of_academie.get(&plan.academie).cloned().unwrap_or_default(),
                departements: vec![plan.departement.clone()],
                figures: vec![("annee", FigureValue::Year(plan.year))],
                message: format!(
                    "Plan d'appui {} : le département {} ne relève pas de l'académie {}",
                    plan.id, plan.departement, plan.academie
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
    use crate::vocabulary::{CostComponent, MeasureCompartment, Payer};

    #[test]
    fn identical_measures_are_flagged_as_possible_duplicates() {
        let snapshot = Snapshot {
            measures: vec![
                Arc::new(measure("a", "183", MeasureCompartment::SocleEnfants)),
                Arc::new(measure("b", "183", MeasureCompartment::SocleEnfants)),
            ],
            rules: rules().into(),
            ..Default::default()
        };
        let report = reconcile(&snapshot);
        assert_eq!(report.findings.iter().filter(|f| f.code == "POSSIBLE_DUPLICATE").count(), 2);
    }

    #[test]
    fn a_large_group_of_duplicates_names_its_first_references_only() {
        let ids: Vec<String> = (0..25).map(|i| format!("m{i:02}")).collect();
        let snapshot = Snapshot {
            measures: ids.iter().map(|id| Arc::new(measure(id, "183", MeasureCompartment::SocleEnfants))).collect(),
            rules: rules().into(),
            ..Default::default()
        };
        let report = reconcile(&snapshot);
        let duplicates: Vec<_> = report.findings.iter().filter(|f| f.code == "POSSIBLE_DUPLICATE").collect();
        assert_eq!(duplicates.len(), 25);
        for finding in duplicates {
            assert!(finding.message.contains("25 mesures identiques"), "{}", finding.message);
            assert!(finding.message.ends_with("et 15 autres"), "{}", finding.message);
            let named = finding.message.rsplit(" : ").next().unwrap();
            assert_eq!(named.matches("REF-").count(), 10, "{}", finding.message);
        }
    }

    #[test]
    fn a_legacy_category_on_a_creation_is_flagged() {
        let mut snapshot = eam_snapshot(vec![]);
        Arc::make_mut(&mut snapshot.measures[0]).category_code = "437".into();
        Arc::make_mut(&mut snapshot.legacy_categories).insert("437".into());
        assert!(status_of(&snapshot, "m").1.contains(&"LEGACY_CATEGORY_ON_CREATION"));
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
        Arc::make_mut(&mut snapshot.measures[0]).finess = Some(valid_finess("69000000"));
        let codes = codes_of(&reconcile(&snapshot));
        assert!(!codes.iter().any(|c| c.starts_with("FINESS") || *c == "DEPARTEMENT_OUTSIDE_REGION"), "{codes:?}");
        Arc::make_mut(&mut snapshot.measures[0]).finess = Some(valid_finess("42000000"));
        Arc::make_mut(&mut snapshot.measures[0]).departement_code = "13".into();
        let codes = codes_of(&reconcile(&snapshot));
        assert!(codes.contains(&"FINESS_DEPARTEMENT_MISMATCH") && codes.contains(&"DEPARTEMENT_OUTSIDE_REGION"));
        Arc::make_mut(&mut snapshot.measures[0]).finess = Some("690000000".into());
        let bad = if valid_finess("69000000") == "690000000" { "690000001" } else { "690000000" };
        Arc::make_mut(&mut snapshot.measures[0]).finess = Some(bad.into());
        assert!(codes_of(&reconcile(&snapshot)).contains(&"FINESS_INVALID"));
    }

    #[test]
    fn commitments_on_an_abandoned_measure_and_a_school_plan_outside_its_academie_are_flagged() {
        let mut z = measure("z", "183", MeasureCompartment::SocleEnfants);
        let ars = commitment("z", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, 100_000, 30, 2026);
        let cd = commitment("z", Payer::Collectivite, "CD-69", CostComponent::Global, 10_000, 30, 2026);
        assert_eq!(orphan_commitments(&z, &[&ars, &cd]), None, "programmed, not abandoned");
        z.status = MeasureStatus::Abandonnee;
        assert_eq!(orphan_commitments(&z, &[]), None);
        let orphan = orphan_commitments(&z, &[&ars, &cd]).unwrap();
        assert_eq!(
            (orphan.code, orphan.severity, orphan.subject.as_str()),
            ("ORPHAN_COMMITMENT", Severity::Warning, "z")
        );
        assert_eq!(orphan.figures, vec![("engagements", FigureValue::Count(2))]);
        assert_eq!(orphan.message, "Mesure REF-z : des engagements subsistent sur une mesure abandonnée");

        let mut territory = Territory::default();
        territory.academie_of.insert("69".into(), "lyon".into());
        territory.academie_of.insert("38".into(), "grenoble".into());
        territory.region_of_academie.insert("lyon".into(), "84".into());
        let plan = |id: &str, departement: &str| SchoolPlanFact {
            id: id.into(),
            academie: "lyon".into(),
            departement: departement.into(),
            cost_cents: 1_000,
            year: 2027,
        };
        // s1 in its académie; s2 in Isère, which is Grenoble's; s3 in a département the territory does not know.
        let snapshot = Snapshot {
            territory: Arc::new(territory),
            school_plans: Arc::new(vec![plan("s1", "69"), plan("s2", "38"), plan("s3", "2A")]),
            ..Default::default()
        };
        let mut report = Report::default();
        identifiers_and_territory(&snapshot, &[], &mut report);
        assert_eq!(
            report.findings,
            vec![Arc::new(Finding {
                code: "SCHOOL_PLAN_OUTSIDE_ACADEMIE",
                severity: Severity::Error,
                subject_kind: SubjectKind::Academie,
                subject: "s2".into(),
                region: "84".into(),
                departements: vec!["38".into()],
                figures: vec![("annee", FigureValue::Year(2027))],
                message: "Plan d'appui s2 : le département 38 ne relève pas de l'académie lyon".into(),
            })]
        );
    }
}
