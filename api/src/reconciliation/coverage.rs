//! Needs coverage (pure): per département and kind of orientation, the solutions programmed against the people the
//! MDPH counts without a solution; and the masking of small counts of people for readers outside the producing MDPH
//! and the CNSA, with secondary suppression so that a masked cell cannot be recomputed from a total.

use std::collections::{BTreeMap, BTreeSet};

use super::engine::{FigureValue, Finding, NeedsCoverage, Report, Severity, Snapshot, SubjectKind};
use crate::vocabulary::{MeasureStatus, NeedsIndicatorKind};

/// The default masking threshold: counts from 1 to 10 are shown as "<11" (statistical secrecy practice of the
/// ministries' statistical services; configurable with `CNH_SMALL_COUNT_THRESHOLD`).
pub const DEFAULT_THRESHOLD: i64 = 11;

/// The sentence of a needs finding, with the count of people as it may be shown to the reader.
pub fn needs_message(departement: &str, orientations: &[String], programmed: i64, people: &str) -> String {
    format!(
        "Département {departement}, orientation {} : {programmed} solutions programmées pour {people} personnes orientées sans solution (dont jeunes adultes Creton)",
        orientations.join(" / ")
    )
}

pub(super) fn needs_coverage(snapshot: &Snapshot, report: &mut Report) {
    let territory = &snapshot.territory;
    // Orientations pointing to the same category are one row: their programmed solutions cannot be told apart.
    let mut groups: BTreeMap<String, (Vec<String>, Option<String>)> = BTreeMap::new();
    for (orientation, category) in &territory.orientation_category {
        let key = if category.is_empty() { format!("#{orientation}") } else { category.clone() };
        let entry = groups.entry(key).or_insert_with(|| (Vec::new(), (!category.is_empty()).then(|| category.clone())));
        entry.0.push(orientation.clone());
    }
    let group_of: BTreeMap<&str, &str> = groups
        .iter()
        .flat_map(|(key, (orientations, _))| orientations.iter().map(move |o| (o.as_str(), key.as_str())))
        .collect();
    let mut people: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    for need in &snapshot.needs {
        let Some(group) = group_of.get(need.orientation.as_str()) else { continue };
        let cell = people.entry((need.departement.as_str(), group)).or_default();
        match need.indicator {
            NeedsIndicatorKind::EnAttenteAdmission
            | NeedsIndicatorKind::AucuneDemarche
            | NeedsIndicatorKind::AdmissionImpossible => cell.0 += need.people,
            NeedsIndicatorKind::AdultesCreton => cell.1 += need.people,
            _ => {}
        }
    }
    let mut programmed: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for m in snapshot.measures.iter().filter(|m| m.status != MeasureStatus::Abandonnee) {
        let category = territory.successor.get(&m.category).unwrap_or(&m.category);
        if groups.contains_key(category) {
            *programmed.entry((m.departement.as_str(), category.as_str())).or_default() += m.solutions;
        }
    }
    let region_of: BTreeMap<&str, &str> = territory
        .departements_of_region
        .iter()
        .flat_map(|(r, ds)| ds.iter().map(move |d| (d.as_str(), r.as_str())))
        .collect();
    let keys: BTreeSet<(&str, &str)> = people.keys().chain(programmed.keys()).copied().collect();
    for (departement, group) in keys {
        let (orientations, category) = &groups[group];
        let (waiting, creton) = people.get(&(departement, group)).copied().unwrap_or_default();
        let solutions = programmed.get(&(departement, group)).copied().unwrap_or_default();
        let region = region_of.get(departement).copied().unwrap_or_default().to_owned();
        report.needs_coverage.push(NeedsCoverage {
            region: region.clone(),
            departement: departement.to_owned(),
            orientations: orientations.clone(),
            category: category.clone(),
            waiting,
            creton,
            programmed: solutions,
        });
        if solutions < waiting + creton {
            report.findings.push(Finding {
                code: "NEEDS_UNCOVERED",
                severity: Severity::Info,
                subject_kind: SubjectKind::Departement,
                subject: format!("{departement}/{}", orientations.join("+")),
                region,
                departements: vec![departement.to_owned()],
                figures: vec![
                    ("solutionsProgrammees", FigureValue::Count(solutions)),
                    ("personnesSansSolution", FigureValue::People(waiting + creton)),
                ],
                message: needs_message(departement, orientations, solutions, &(waiting + creton).to_string()),
            });
        }
    }
}

/// A count of people as a reader may see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Shown(i64),
    Masked,
}

impl Cell {
    pub fn display(self, threshold: i64) -> String {
        match self {
            Cell::Shown(n) => n.to_string(),
            Cell::Masked => format!("<{threshold}"),
        }
    }
}

/// One row of counts and their total, masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedLine {
    pub cells: Vec<Cell>,
    pub total: Cell,
}

/// Masks a line of counts that is published with its total: primary suppression of every count from 1 to
/// threshold − 1 (the total included); then, if exactly one cell is masked while the total is shown, the smallest
/// other non-zero cell is masked too, or the total when there is none, so that no masked cell equals the total
/// minus the cells shown.
pub fn mask_line(values: &[i64], threshold: i64) -> MaskedLine {
    let small = |n: i64| n > 0 && n < threshold;
    let mut cells: Vec<Cell> = values.iter().map(|n| if small(*n) { Cell::Masked } else { Cell::Shown(*n) }).collect();
    let total_value: i64 = values.iter().sum();
    let mut total = if small(total_value) { Cell::Masked } else { Cell::Shown(total_value) };
    let masked = cells.iter().filter(|c| **c == Cell::Masked).count();
    if masked == 1 && total != Cell::Masked {
        let partner = cells
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Cell::Shown(n) if *n > 0 => Some((*n, i)),
                _ => None,
            })
            .min();
        match partner {
            Some((_, i)) => cells[i] = Cell::Masked,
            None => total = Cell::Masked,
        }
    }
    MaskedLine { cells, total }
}

/// The coverage rows of each département masked as one line per kind of count (people waiting, Creton adults), as
/// published with the département's totals. Returns, in the order of `rows`, the masked (waiting, creton) cells, and
/// per département the masked totals.
/// Masked (people waiting, Creton adults) cells per row, and per département the masked totals.
pub type MaskedCells = (Vec<(Cell, Cell)>, BTreeMap<String, (Cell, Cell)>);

pub fn mask_coverage(rows: &[&NeedsCoverage], threshold: i64) -> MaskedCells {
    let mut by_departement: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        by_departement.entry(row.departement.as_str()).or_default().push(i);
    }
    let mut cells = vec![(Cell::Masked, Cell::Masked); rows.len()];
    let mut totals = BTreeMap::new();
    for (departement, indexes) in by_departement {
        let waiting = mask_line(&indexes.iter().map(|i| rows[*i].waiting).collect::<Vec<_>>(), threshold);
        let creton = mask_line(&indexes.iter().map(|i| rows[*i].creton).collect::<Vec<_>>(), threshold);
        for (k, i) in indexes.iter().enumerate() {
            cells[*i] = (waiting.cells[k], creton.cells[k]);
        }
        totals.insert(departement.to_owned(), (waiting.total, creton.total));
    }
    (cells, totals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Cell::{Masked, Shown};

    #[test]
    fn counts_from_one_to_ten_are_masked_and_zero_is_not() {
        assert_eq!(mask_line(&[0, 5, 40, 30], 11).cells[..2], [Shown(0), Masked]);
        assert_eq!(mask_line(&[10, 3], 11).cells, vec![Masked, Masked]);
        assert_eq!(mask_line(&[11, 0], 11).cells[0], Shown(11));
    }

    #[test]
    fn a_single_masked_cell_drags_the_smallest_other_one_with_it() {
        // 75 = 5 + 40 + 30: with 5 alone masked, the total would give it away.
        let line = mask_line(&[5, 40, 30], 11);
        assert_eq!(line.cells, vec![Masked, Shown(40), Masked]);
        assert_eq!(line.total, Shown(75));
    }

    #[test]
    fn with_no_other_non_zero_cell_the_total_is_masked_instead() {
        let line = mask_line(&[0, 12, 0], 11);
        assert_eq!(line, MaskedLine { cells: vec![Shown(0), Shown(12), Shown(0)], total: Shown(12) });
        let line = mask_line(&[0, 7, 0, 0], 11);
        assert_eq!(line, MaskedLine { cells: vec![Shown(0), Masked, Shown(0), Shown(0)], total: Masked });
        // Primary suppression of a small total.
        assert_eq!(mask_line(&[3, 4], 11).total, Masked);
    }

    #[test]
    fn two_masked_cells_need_no_secondary_suppression() {
        let line = mask_line(&[3, 4, 50], 11);
        assert_eq!(line.cells, vec![Masked, Masked, Shown(50)]);
        assert_eq!(line.total, Shown(57));
    }

    #[test]
    fn no_masked_cell_can_be_recomputed_from_the_total() {
        // Exhaustive over small lines: whenever a cell is masked, at least two unknowns remain in the line's
        // equation (cells + total), so none can be derived.
        for a in 0..14 {
            for b in 0..14 {
                for c in 0..14 {
                    let line = mask_line(&[a, b, c], 11);
                    let masked_cells = line.cells.iter().filter(|x| **x == Masked).count();
                    let unknowns = masked_cells + usize::from(line.total == Masked);
                    assert!(masked_cells == 0 || unknowns >= 2, "{a} {b} {c}: {line:?}");
                    for (value, cell) in [a, b, c].iter().zip(&line.cells) {
                        if *value > 0 && *value < 11 {
                            assert_eq!(*cell, Masked, "{a} {b} {c}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_threshold_is_a_parameter() {
        assert_eq!(mask_line(&[4, 100, 100], 5).cells[0], Masked);
        assert_eq!(mask_line(&[5, 100, 100], 5).cells[0], Shown(5));
        assert_eq!(Masked.display(11), "<11");
    }
}
