//! Test fixtures shared by the families' unit tests: rules, measures and commitments of region 84 (Auvergne-Rhône-
//! Alpes, département 69), a needs territory, national targets, a campaign standing.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    CampaignStandingFact, CoFinancingStatus, CommitmentFact, MeasureFact, NationalTargets, NeedsFact, Report, RuleFact,
    Snapshot, Territory, reconcile,
};
use crate::vocabulary::{CostComponent, MeasureCompartment, NeedsIndicatorKind, Payer};

pub(super) fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub(super) fn rule(category: &str, component: CostComponent, payer: Payer, share: Option<i32>) -> RuleFact {
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

pub(super) fn rules() -> Vec<RuleFact> {
    vec![
        rule("183", CostComponent::Global, Payer::AssuranceMaladie, Some(10_000)),
        rule("190", CostComponent::Global, Payer::AssuranceMaladie, Some(8_000)),
        rule("190", CostComponent::Global, Payer::Collectivite, Some(2_000)),
        rule("448", CostComponent::Soins, Payer::AssuranceMaladie, None),
        rule("448", CostComponent::Hebergement, Payer::Collectivite, None),
        rule("449", CostComponent::Global, Payer::Collectivite, Some(10_000)),
    ]
}

pub(super) fn measure(id: &str, category: &str, compartment: MeasureCompartment) -> MeasureFact {
    crate::records::test_measure(id, category, compartment)
}

pub(super) fn commitment(
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

pub(super) fn status_of(snapshot: &Snapshot, id: &str) -> (CoFinancingStatus, Vec<&'static str>) {
    let report = reconcile(snapshot);
    let s = report.statuses.iter().find(|s| s.measure_id == id).unwrap();
    (s.status, s.findings.iter().map(|i| report.findings[*i].code).collect())
}

pub(super) fn eam_snapshot(commitments: Vec<CommitmentFact>) -> Snapshot {
    Snapshot {
        measures: vec![Arc::new(measure("m", "448", MeasureCompartment::SocleAdultes))],
        commitments: commitments.into_iter().map(Arc::new).collect(),
        rules: rules().into(),
        ..Default::default()
    }
}

pub(super) fn codes_of(report: &Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.code).collect()
}

pub(super) fn targets() -> NationalTargets {
    NationalTargets { socle: 98_500, children: 40_000, ase: 5_000, adults: 58_500 }
}

pub(super) fn needs_territory() -> Territory {
    let mut territory = Territory::default();
    territory.departements_of_region.insert("84".into(), ["69".to_owned()].into());
    for (o, c) in [("7.6", "186"), ("7.7", "186"), ("13.2", "448"), ("14.0", "")] {
        territory.orientation_category.insert(o.into(), c.into());
    }
    territory.successor.insert("437".into(), "448".into());
    territory
}

pub(super) fn need(orientation: &str, indicator: NeedsIndicatorKind, people: i64) -> NeedsFact {
    NeedsFact { departement: "69".into(), orientation: orientation.into(), indicator, people }
}

pub(super) fn standing(first: Option<DateTime<Utc>>) -> CampaignStandingFact {
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

/// One socle measure of region 84 (category 183, assurance maladie only) installed in `year`, its commitment of
/// `cents` full-year with the given CP schedule.
pub(super) fn snapshot_with_am_measure(region: &str, year: i32, cents: i64, schedule: &[(i32, i64)]) -> Snapshot {
    let mut m = measure("t", "183", MeasureCompartment::SocleEnfants);
    m.region_code = region.into();
    m.planned_installation = day(year, 1, 1);
    let mut c = commitment("t", Payer::AssuranceMaladie, "ARS-84", CostComponent::Global, cents, 30, year);
    c.schedule = schedule.to_vec();
    Snapshot {
        measures: vec![Arc::new(m)],
        commitments: vec![Arc::new(c)],
        rules: rules().into(),
        ..Default::default()
    }
}
