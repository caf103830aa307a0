//! Integrity of the annex of the circular (pure): computed sums of the stored regional rows against the printed
//! totals, and the DOM weight against the weights of the five overseas regions. The gaps are facts of the published
//! text; the hub surfaces them instead of hiding them.

use std::collections::{BTreeMap, BTreeSet};

use crate::money::{Euros, divide_rounded};
use crate::vocabulary::{AnnexColumn, Compartment};

/// Scope of the printed national total row.
pub const NATIONAL: &str = "FR";
/// Scope of the printed "Dont total DOM" row.
pub const OVERSEAS: &str = "DOM";

/// What the annex is made of, as stored.
#[derive(Clone, Debug, Default)]
pub struct AnnexFigures {
    /// (region, compartment) → notified AE in cents.
    pub allocations: BTreeMap<(String, Compartment), i64>,
    /// (scope, column) → printed total in cents; scope is FR, DOM or a region code.
    pub printed_totals: BTreeMap<(String, AnnexColumn), i64>,
    /// scope → printed weight ("poids CNH / DRL 2023") in basis points.
    pub printed_weights: BTreeMap<String, i64>,
    /// The overseas regions, whose rows make the DOM subtotal.
    pub overseas_regions: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumCheck {
    pub scope: String,
    pub column: AnnexColumn,
    pub computed: Euros,
    pub printed: Euros,
    /// How many regional rows were summed.
    pub rows: usize,
}

impl SumCheck {
    pub fn gap(&self) -> Euros {
        Euros(self.computed.0 - self.printed.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightCheck {
    pub scope: String,
    /// Weight implied by the regional rows, in basis points.
    pub computed_bp: i64,
    pub printed_bp: i64,
}

fn column_of(compartment: Compartment) -> AnnexColumn {
    match compartment {
        Compartment::Socle => AnnexColumn::Socle,
        Compartment::Precoce => AnnexColumn::Precoce,
        Compartment::Ecole => AnnexColumn::Ecole,
    }
}

/// Every printed total of the annex compared with the sum of the stored rows it covers: the national row and the
/// DOM subtotal per column, and each region's total against its three compartments. Printed totals that are not
/// stored are skipped; nothing is assumed.
pub fn sum_checks(figures: &AnnexFigures) -> Vec<SumCheck> {
    let mut checks = Vec::new();
    let regions: BTreeSet<&String> = figures.allocations.keys().map(|(r, _)| r).collect();
    for (scope, members) in [
        (NATIONAL, regions.iter().copied().collect::<BTreeSet<_>>()),
        (OVERSEAS, regions.iter().copied().filter(|r| figures.overseas_regions.contains(*r)).collect()),
    ] {
        for column in AnnexColumn::ALL {
            let Some(printed) = figures.printed_totals.get(&(scope.to_owned(), *column)) else {
                continue;
            };
            let computed: i64 = figures
                .allocations
                .iter()
                .filter(|((region, compartment), _)| {
                    members.contains(region) && (*column == AnnexColumn::Total || column_of(*compartment) == *column)
                })
                .map(|(_, cents)| cents)
                .sum();
            checks.push(SumCheck {
                scope: scope.to_owned(),
                column: *column,
                computed: Euros(computed),
                printed: Euros(*printed),
                rows: members.len(),
            });
        }
    }
    for region in regions {
        let Some(printed) = figures.printed_totals.get(&(region.clone(), AnnexColumn::Total)) else {
            continue;
        };
        let computed: i64 = figures.allocations.iter().filter(|((r, _), _)| r == region).map(|(_, cents)| cents).sum();
        checks.push(SumCheck {
            scope: region.clone(),
            column: AnnexColumn::Total,
            computed: Euros(computed),
            printed: Euros(*printed),
            rows: 1,
        });
    }
    checks
}

/// The DOM subtotal's weight against the weight its regions imply. Each region's weight is its total over its DRL
/// 2023 (the regional limiting allocation), so DRL = total / weight, and the DOM weight should be
/// Σ total / Σ DRL. Computed exactly in integers and rounded once, half away from zero to the basis point, as the
/// annex prints it (`money::divide_rounded`): with L the least common multiple of the regional weights,
/// Σ DRL = Σ (total × L / weight) / L, so the weight is Σ total × L / Σ (total × L / weight).
pub fn overseas_weight_check(figures: &AnnexFigures) -> Option<WeightCheck> {
    let printed_bp = *figures.printed_weights.get(OVERSEAS)?;
    let mut rows: Vec<(i128, i128)> = Vec::new();
    for region in &figures.overseas_regions {
        let total = *figures.printed_totals.get(&(region.clone(), AnnexColumn::Total))?;
        let weight = *figures.printed_weights.get(region)?;
        if weight <= 0 {
            return None;
        }
        rows.push((i128::from(total), i128::from(weight)));
    }
    let lcm = rows.iter().try_fold(1_i128, |l, (_, w)| (l / gcd(l, *w)).checked_mul(*w))?;
    let numerator = rows.iter().try_fold(0_i128, |sum, (t, _)| sum.checked_add(*t))?.checked_mul(lcm)?;
    let denominator = rows.iter().try_fold(0_i128, |sum, (t, w)| sum.checked_add(t.checked_mul(lcm / w)?))?;
    let computed_bp = i64::try_from(divide_rounded(numerator, denominator)?).ok()?;
    Some(WeightCheck { scope: OVERSEAS.to_owned(), computed_bp, printed_bp })
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(
        rows: &[(&str, [i64; 3], i64, i64)],
        printed: &[(&str, [i64; 4], Option<i64>)],
        overseas: &[&str],
    ) -> AnnexFigures {
        let mut f = AnnexFigures::default();
        for (region, amounts, total, weight) in rows {
            for (compartment, cents) in Compartment::ALL.iter().zip(amounts) {
                f.allocations.insert((region.to_string(), *compartment), *cents);
            }
            f.printed_totals.insert((region.to_string(), AnnexColumn::Total), *total);
            f.printed_weights.insert(region.to_string(), *weight);
        }
        for (scope, totals, weight) in printed {
            for (column, cents) in AnnexColumn::ALL.iter().zip(totals) {
                f.printed_totals.insert((scope.to_string(), *column), *cents);
            }
            if let Some(w) = weight {
                f.printed_weights.insert(scope.to_string(), *w);
            }
        }
        f.overseas_regions = overseas.iter().map(|s| s.to_string()).collect();
        f
    }

    #[test]
    fn a_printed_total_rounded_up_shows_a_negative_gap() {
        let f = figures(
            &[("84", [7_052, 1_311, 5_045], 13_408, 890), ("01", [945, 74, 258], 1_277, 1_120)],
            &[("FR", [8_000, 1_385, 5_303, 14_688], None)],
            &["01"],
        );
        let checks = sum_checks(&f);
        let socle = checks.iter().find(|c| c.scope == "FR" && c.column == AnnexColumn::Socle).unwrap();
        assert_eq!((socle.computed, socle.printed, socle.gap()), (Euros(7_997), Euros(8_000), Euros(-3)));
        let total = checks.iter().find(|c| c.scope == "FR" && c.column == AnnexColumn::Total).unwrap();
        assert_eq!(total.gap(), Euros(-3));
        assert!(checks.iter().filter(|c| c.scope == "84" || c.scope == "01").all(|c| c.gap() == Euros(0)));
    }

    #[test]
    fn a_region_whose_row_does_not_add_up_is_reported() {
        let f = figures(&[("84", [100, 10, 50], 161, 890)], &[], &[]);
        let row = sum_checks(&f).into_iter().find(|c| c.scope == "84").unwrap();
        assert_eq!(row.gap(), Euros(-1));
    }

    #[test]
    fn the_dom_weight_is_recomputed_from_regional_weights() {
        // Two regions: 100 at 10 % (DRL 1000) and 300 at 20 % (DRL 1500): 400 / 2500 = 16 %.
        let f = figures(
            &[("01", [100, 0, 0], 100, 1_000), ("02", [300, 0, 0], 300, 2_000)],
            &[("DOM", [400, 0, 0, 400], Some(1_500))],
            &["01", "02"],
        );
        let check = overseas_weight_check(&f).unwrap();
        assert_eq!((check.computed_bp, check.printed_bp), (1_600, 1_500));
    }

    #[test]
    fn the_dom_weight_is_rounded_once_half_away_from_zero() {
        // 100 at 10 % (DRL 1 000) and 2 900 at 30 % (DRL 9 666.67): 3 000 / 10 666.67 = 28.125 % exactly.
        let f = figures(
            &[("01", [100, 0, 0], 100, 1_000), ("02", [2_900, 0, 0], 2_900, 3_000)],
            &[("DOM", [3_000, 0, 0, 3_000], Some(2_810))],
            &["01", "02"],
        );
        assert_eq!(overseas_weight_check(&f).unwrap().computed_bp, 2_813);
        // The annex of the circular: Guadeloupe, Martinique, Guyane, La Réunion, Mayotte imply 23.1928… %, printed
        // 22.90 %.
        let m = 1_000_000;
        let f = figures(
            &[
                ("01", [0, 0, 0], 1_277 * m, 1_120),
                ("02", [0, 0, 0], 2_213 * m, 1_860),
                ("03", [0, 0, 0], 2_803 * m, 2_790),
                ("04", [0, 0, 0], 2_985 * m, 2_230),
                ("06", [0, 0, 0], 2_222 * m, 7_790),
            ],
            &[("DOM", [0, 0, 0, 11_500 * m], Some(2_290))],
            &["01", "02", "03", "04", "06"],
        );
        assert_eq!(overseas_weight_check(&f).map(|c| (c.computed_bp, c.printed_bp)), Some((2_319, 2_290)));
    }

    #[test]
    fn no_weight_check_without_a_printed_dom_weight() {
        let f = figures(&[("01", [100, 0, 0], 100, 1_000)], &[], &["01"]);
        assert_eq!(overseas_weight_check(&f), None);
    }
}
