//! National steering (circular §5): each region's credits year by year against the CNSA's projected trajectory,
//! the CP it calls against the drawing rights set for the year, and its installation forecasts once stabilised.
//!
//! The trajectory is compared cumulatively (everything programmed by the end of a year against everything projected
//! by then): being a year early on one measure is not a gap, falling behind year after year is.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::envelopes::compartment_label;
use super::{CreditYear, DrawingYear, FigureValue, Finding, Report, Severity, Snapshot, SubjectKind, euros};
use crate::vocabulary::Compartment;

/// How far, in basis points of the projection, a region's cumulative AE or CP may stray from the CNSA's trajectory
/// before it is reported ahead or behind: 10 %. Programming moves by whole measures; a tenth is the margin the
/// annual exchange with the CNSA absorbs.
pub const TRAJECTORY_TOLERANCE_BP: i64 = 1_000;

/// How much, in basis points, a forecast of installations or CP may change after the deadline that stabilises it
/// (30 June of the year before) without being reported: 10 %.
pub const FORECAST_CHANGE_TOLERANCE_BP: i64 = 1_000;

/// Whether `actual` strays from `expected` by more than `tolerance_bp` of it (any amount strays from nothing).
fn strays(actual: i64, expected: i64, tolerance_bp: i64) -> bool {
    let gap = (i128::from(actual) - i128::from(expected)).abs();
    if expected == 0 {
        return gap > 0;
    }
    gap * 10_000 > i128::from(expected.abs()) * i128::from(tolerance_bp)
}

/// The gap in basis points of the expected figure (for the message), rounded toward zero.
fn gap_bp(actual: i64, expected: i64) -> i64 {
    if expected == 0 {
        return 0;
    }
    ((i128::from(actual) - i128::from(expected)) * 10_000 / i128::from(expected)) as i64
}

fn percent(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let bp = bp.abs();
    format!("{sign}{},{} %", bp / 100, (bp % 100) / 10)
}

pub(super) fn credit_steering(snapshot: &Snapshot, report: &mut Report) {
    let steering = &snapshot.steering;
    // The credits rows, keyed, with the trajectory laid beside them (a projected year without credits gets a row).
    let mut credits: BTreeMap<(String, Compartment, i32), CreditYear> =
        report.credits.drain(..).map(|c| ((c.region.clone(), c.compartment, c.year), c)).collect();
    for point in &steering.trajectory {
        let row = credits.entry((point.region.clone(), point.compartment, point.year)).or_insert_with(|| CreditYear {
            region: point.region.clone(),
            compartment: point.compartment,
            year: point.year,
            ae_programmed: 0,
            cp_called: 0,
            trajectory_ae: None,
            trajectory_cp: None,
        });
        row.trajectory_ae = Some(point.ae_cents);
        row.trajectory_cp = Some(point.cp_cents);
    }
    report.credits = credits.into_values().collect();
    trajectory_gaps(&report.credits, &mut report.findings);
    drawing_rights(snapshot, report);
    forecast_changes(snapshot, &mut report.findings);
}

/// For each (region, compartment) with a trajectory: at the end of each projected year, cumulative AE and CP against
/// the cumulative projection.
fn trajectory_gaps(credits: &[CreditYear], findings: &mut Vec<Arc<Finding>>) {
    let mut i = 0;
    while i < credits.len() {
        let (region, compartment) = (&credits[i].region, credits[i].compartment);
        let end = credits[i..].iter().position(|c| &c.region != region || c.compartment != compartment);
        let group = &credits[i..end.map_or(credits.len(), |n| i + n)];
        i += group.len();
        if group.iter().all(|c| c.trajectory_ae.is_none()) {
            continue;
        }
        let (mut ae, mut cp, mut projected_ae, mut projected_cp) = (0i64, 0i64, 0i64, 0i64);
        for year in group {
            ae += year.ae_programmed;
            cp += year.cp_called;
            projected_ae += year.trajectory_ae.unwrap_or(0);
            projected_cp += year.trajectory_cp.unwrap_or(0);
            if year.trajectory_ae.is_none() {
                continue;
            }
            for (credits, actual, projected) in [("AE", ae, projected_ae), ("CP", cp, projected_cp)] {
                if !strays(actual, projected, TRAJECTORY_TOLERANCE_BP) {
                    continue;
                }
                let ahead = actual > projected;
                let code = match (credits, ahead) {
                    ("AE", true) => "TRAJECTORY_AE_AHEAD",
                    ("AE", false) => "TRAJECTORY_AE_BEHIND",
                    (_, true) => "TRAJECTORY_CP_AHEAD",
                    (_, false) => "TRAJECTORY_CP_BEHIND",
                };
                let what = if credits == "AE" {
                    "d'AE engagées sur des mesures installées"
                } else {
                    "de crédits de paiement appelés"
                };
                let how = if projected == 0 {
                    "alors que la trajectoire n'en prévoit aucun".to_owned()
                } else {
                    format!(
                        "pour {} prévus par la trajectoire de la CNSA, soit {} {} (tolérance {})",
                        euros(projected),
                        percent(gap_bp(actual, projected).abs()),
                        if ahead { "d'avance" } else { "de retard" },
                        percent(TRAJECTORY_TOLERANCE_BP)
                    )
                };
                findings.push(Arc::new(Finding {
                    code,
                    severity: Severity::Warning,
                    subject_kind: SubjectKind::Envelope,
                    subject: format!("{region}/{}/{}", compartment.as_str(), year.year),
                    region: region.clone(),
                    departements: Vec::new(),
                    figures: vec![
                        ("annee", FigureValue::Year(year.year)),
                        ("cumulRealise", FigureValue::Cents(actual)),
                        ("cumulTrajectoire", FigureValue::Cents(projected)),
                        ("ecart", FigureValue::Cents(actual - projected)),
                        ("tolerance", FigureValue::BasisPoints(TRAJECTORY_TOLERANCE_BP)),
                    ],
                    message: format!(
                        "Région {region}, enveloppe {}, fin {} : {} {what} en cumul {how}",
                        compartment_label(compartment),
                        year.year,
                        euros(actual)
                    ),
                }));
            }
        }
    }
}

/// Per region × year: CP called (every compartment) against the drawing rights, beside the forecast.
fn drawing_rights(snapshot: &Snapshot, report: &mut Report) {
    let mut years: BTreeMap<(String, i32), DrawingYear> = BTreeMap::new();
    fn row<'a>(years: &'a mut BTreeMap<(String, i32), DrawingYear>, region: &str, year: i32) -> &'a mut DrawingYear {
        years.entry((region.to_owned(), year)).or_insert_with(|| DrawingYear {
            region: region.to_owned(),
            year,
            ..Default::default()
        })
    }
    for credit in &report.credits {
        row(&mut years, &credit.region, credit.year).cp_called += credit.cp_called;
    }
    for right in &snapshot.steering.drawing_rights {
        row(&mut years, &right.region, right.year).drawing_rights = Some(right.cp_cents);
    }
    for forecast in &snapshot.steering.forecasts {
        let year = row(&mut years, &forecast.region, forecast.year);
        *year.forecast_cp.get_or_insert(0) += forecast.cp_cents;
        *year.forecast_solutions.get_or_insert(0) += forecast.solutions;
    }
    for year in years.values() {
        let Some(rights) = year.drawing_rights else { continue };
        if year.cp_called > rights {
            report.findings.push(Arc::new(Finding {
                code: "CP_EXCEEDS_DRAWING_RIGHTS",
                severity: Severity::Error,
                subject_kind: SubjectKind::Region,
                subject: format!("{}/{}", year.region, year.year),
                region: year.region.clone(),
                departements: Vec::new(),
                figures: vec![
                    ("annee", FigureValue::Year(year.year)),
                    ("cp", FigureValue::Cents(year.cp_called)),
                    ("droitsDeTirage", FigureValue::Cents(rights)),
                ],
                message: format!(
                    "Région {}, {} : {} de crédits de paiement appelés pour {} de droits de tirage, dépassement de {}",
                    year.region,
                    year.year,
                    euros(year.cp_called),
                    euros(rights),
                    euros(year.cp_called - rights)
                ),
            }));
        }
    }
    report.drawing = years.into_values().collect();
}

/// Forecasts changed, after the deadline that stabilised them, by more than the tolerance.
fn forecast_changes(snapshot: &Snapshot, findings: &mut Vec<Arc<Finding>>) {
    for forecast in &snapshot.steering.forecasts {
        let Some(stable) = &forecast.stabilised else { continue };
        let moved_cp = strays(forecast.cp_cents, stable.cp_cents, FORECAST_CHANGE_TOLERANCE_BP);
        let moved_solutions = strays(forecast.solutions, stable.solutions, FORECAST_CHANGE_TOLERANCE_BP);
        if !moved_cp && !moved_solutions {
            continue;
        }
        findings.push(Arc::new(Finding {
            code: "FORECAST_CHANGED_AFTER_DEADLINE",
            severity: Severity::Warning,
            subject_kind: SubjectKind::Envelope,
            subject: format!("{}/{}/{}", forecast.region, forecast.compartment.as_str(), forecast.year),
            region: forecast.region.clone(),
            departements: Vec::new(),
            figures: vec![
                ("annee", FigureValue::Year(forecast.year)),
                ("cpStabilises", FigureValue::Cents(stable.cp_cents)),
                ("cp", FigureValue::Cents(forecast.cp_cents)),
                ("installationsStabilisees", FigureValue::Count(stable.solutions)),
                ("installations", FigureValue::Count(forecast.solutions)),
                ("tolerance", FigureValue::BasisPoints(FORECAST_CHANGE_TOLERANCE_BP)),
            ],
            message: format!(
                "Région {}, enveloppe {}, prévision {} : modifiée après l'échéance du {} au-delà de la tolérance de {} ({} installations et {} de CP à l'échéance, {} installations et {} de CP aujourd'hui)",
                forecast.region,
                compartment_label(forecast.compartment),
                forecast.year,
                stable.deadline.format("%d/%m/%Y"),
                percent(FORECAST_CHANGE_TOLERANCE_BP),
                stable.solutions,
                euros(stable.cp_cents),
                forecast.solutions,
                euros(forecast.cp_cents)
            ),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciled::engine::{
        DrawingRightFact, ForecastFact, StabilisedForecast, TrajectoryFact, reconcile, test_support::*,
    };

    fn codes(report: &Report) -> Vec<(&'static str, String)> {
        report.findings.iter().map(|f| (f.code, f.subject.clone())).collect()
    }

    #[test]
    fn tolerance_is_a_tenth_of_the_projection_either_way() {
        assert!(!strays(110, 100, TRAJECTORY_TOLERANCE_BP));
        assert!(strays(111, 100, TRAJECTORY_TOLERANCE_BP));
        assert!(!strays(90, 100, TRAJECTORY_TOLERANCE_BP));
        assert!(strays(89, 100, TRAJECTORY_TOLERANCE_BP));
        assert!(strays(1, 0, TRAJECTORY_TOLERANCE_BP));
        assert!(!strays(0, 0, TRAJECTORY_TOLERANCE_BP));
        assert_eq!(percent(gap_bp(125, 100)), "25,0 %");
    }

    #[test]
    fn credits_are_compared_with_the_trajectory_cumulatively() {
        // Region 84, socle: one measure installed in 2025 (AE 1 000 €, CP 400 € in 2025 and 1 000 € in 2026).
        let mut snapshot = snapshot_with_am_measure("84", 2025, 100_000, &[(2025, 40_000), (2026, 100_000)]);
        // The CNSA projected 500 € of AE in 2025 and 500 € in 2026; CP 400 € then 1 000 €.
        Arc::make_mut(&mut snapshot.steering).trajectory = vec![
            TrajectoryFact {
                region: "84".into(),
                compartment: Compartment::Socle,
                year: 2025,
                ae_cents: 50_000,
                cp_cents: 40_000,
            },
            TrajectoryFact {
                region: "84".into(),
                compartment: Compartment::Socle,
                year: 2026,
                ae_cents: 50_000,
                cp_cents: 100_000,
            },
        ];
        let report = reconcile(&snapshot);
        // End of 2025: 1 000 € programmed against 500 € projected: ahead by 100 %. End of 2026: 1 000 € for 1 000 €.
        let found = codes(&report);
        assert!(found.contains(&("TRAJECTORY_AE_AHEAD", "84/SOCLE/2025".into())), "{found:?}");
        assert!(!found.iter().any(|(c, s)| c.starts_with("TRAJECTORY") && s.ends_with("2026")), "{found:?}");
        assert!(!found.iter().any(|(c, _)| c.starts_with("TRAJECTORY_CP")), "{found:?}");
        let f = report.findings.iter().find(|f| f.code == "TRAJECTORY_AE_AHEAD").unwrap();
        assert_eq!(f.figures[1], ("cumulRealise", FigureValue::Cents(100_000)));
        assert_eq!(f.figures[2], ("cumulTrajectoire", FigureValue::Cents(50_000)));
        assert!(f.message.contains("100,0 % d'avance"), "{}", f.message);
        let row = report.credits.iter().find(|c| c.region == "84" && c.year == 2026).unwrap();
        assert_eq!((row.ae_programmed, row.cp_called, row.trajectory_ae), (0, 100_000, Some(50_000)));
    }

    #[test]
    fn calls_beyond_drawing_rights_and_forecasts_moved_after_their_deadline_are_reported() {
        let mut snapshot = snapshot_with_am_measure("84", 2025, 100_000, &[(2025, 40_000), (2026, 100_000)]);
        Arc::make_mut(&mut snapshot.steering).drawing_rights = vec![
            DrawingRightFact { region: "84".into(), year: 2025, cp_cents: 40_000 },
            DrawingRightFact { region: "84".into(), year: 2026, cp_cents: 90_000 },
        ];
        let stable = |solutions, cp_cents| {
            Some(StabilisedForecast {
                deadline: chrono::NaiveDate::from_ymd_opt(2025, 6, 30).unwrap(),
                solutions,
                cp_cents,
            })
        };
        Arc::make_mut(&mut snapshot.steering).forecasts = vec![
            // 12 installations instead of 10: moved by 20 %.
            ForecastFact {
                region: "84".into(),
                compartment: Compartment::Socle,
                year: 2026,
                solutions: 12,
                cp_cents: 100_000,
                stabilised: stable(10, 100_000),
            },
            // Within the tolerance.
            ForecastFact {
                region: "84".into(),
                compartment: Compartment::Precoce,
                year: 2026,
                solutions: 10,
                cp_cents: 109_000,
                stabilised: stable(10, 100_000),
            },
            // Its deadline has not passed.
            ForecastFact {
                region: "84".into(),
                compartment: Compartment::Ecole,
                year: 2027,
                solutions: 99,
                cp_cents: 1,
                stabilised: None,
            },
        ];
        let report = reconcile(&snapshot);
        let found = codes(&report);
        assert!(found.contains(&("CP_EXCEEDS_DRAWING_RIGHTS", "84/2026".into())), "{found:?}");
        assert!(!found.contains(&("CP_EXCEEDS_DRAWING_RIGHTS", "84/2025".into())), "equal is within: {found:?}");
        let moved: Vec<_> = found.iter().filter(|(c, _)| *c == "FORECAST_CHANGED_AFTER_DEADLINE").collect();
        assert_eq!(moved, vec![&("FORECAST_CHANGED_AFTER_DEADLINE", "84/SOCLE/2026".to_owned())]);
        let year = report.drawing.iter().find(|d| d.year == 2026).unwrap();
        assert_eq!(
            (year.cp_called, year.drawing_rights, year.forecast_cp, year.forecast_solutions),
            (100_000, Some(90_000), Some(209_000), Some(22))
        );
    }
}
