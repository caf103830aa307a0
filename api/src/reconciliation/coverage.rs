//! Needs coverage (pure): per département and kind of orientation, the solutions programmed against the people the
//! MDPH counts without a solution; and the masking of small counts of people for readers outside the producing MDPH
//! and the CNSA.
//!
//! Masking. A count of people from 1 to threshold − 1 is shown "<11" (`Cell::Small`). A département's rows are
//! published as two lines, people waiting and Creton adults, each with its total; a total is hidden ("secret",
//! `Cell::Secret`) as soon as a cell of its line is small, so a row's cells are shown or small, never hidden to
//! protect another one, and no published equation links a small cell to shown figures.

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
    /// From 1 to threshold − 1: shown "<11" (fewer than the threshold).
    Small,
    /// Hidden to protect another cell (a total whose line holds a small cell): shown "secret".
    Secret,
}

/// How a cell hidden to protect another one is shown.
pub const SECRET: &str = "secret";

impl Cell {
    /// A count as primary suppression shows it: small (1 to threshold − 1) or as it is.
    pub fn of(n: i64, threshold: i64) -> Cell {
        if n > 0 && n < threshold { Cell::Small } else { Cell::Shown(n) }
    }

    pub fn display(self, threshold: i64) -> String {
        match self {
            Cell::Shown(n) => n.to_string(),
            Cell::Small => format!("<{threshold}"),
            Cell::Secret => SECRET.to_owned(),
        }
    }
}

/// One line of counts and their total, masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedLine {
    pub cells: Vec<Cell>,
    pub total: Cell,
}

/// Masks a line of counts published with its total. Each count from 1 to threshold − 1 is small; no other cell is
/// ever hidden for its sake (a cell hidden to protect a small one would be known to be at least the threshold, and
/// with the total would narrow the small ones down to an interval). Instead the total is hidden ("secret") as soon
/// as one cell is small, so that no published equation links a small cell to shown figures; it is shown "<11" only
/// when it is the one small cell itself (every other cell zero), which tells nothing more. With two small cells, a
/// total below the threshold is "secret" too: "<11" would tell that they add up to less than it.
pub fn mask_line(values: &[i64], threshold: i64) -> MaskedLine {
    let cells: Vec<Cell> = values.iter().map(|n| Cell::of(*n, threshold)).collect();
    let small = cells.iter().filter(|c| **c == Cell::Small).count();
    let total = match small {
        // Every cell is 0 or at least the threshold: so is the total.
        0 => Cell::Shown(values.iter().sum()),
        1 if cells.iter().all(|c| matches!(c, Cell::Small | Cell::Shown(0))) => Cell::Small,
        _ => Cell::Secret,
    };
    MaskedLine { cells, total }
}

/// Masked (people waiting, Creton adults) cells per row, and per département the masked totals.
pub type MaskedCells = (Vec<(Cell, Cell)>, BTreeMap<String, (Cell, Cell)>);

/// The coverage rows of each département masked as one line per kind of count (people waiting, Creton adults), as
/// published with the département's totals. Returns, in the order of `rows`, the masked (waiting, creton) cells
/// (shown or small, never secret), and per département the masked totals.
pub fn mask_coverage(rows: &[&NeedsCoverage], threshold: i64) -> MaskedCells {
    let mut by_departement: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        by_departement.entry(row.departement.as_str()).or_default().push(i);
    }
    let mut cells = vec![(Cell::Secret, Cell::Secret); rows.len()];
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
    use Cell::{Secret, Shown, Small};

    #[test]
    fn counts_from_one_to_ten_are_small_and_zero_is_not() {
        assert_eq!(mask_line(&[0, 5, 40, 30], 11).cells, vec![Shown(0), Small, Shown(40), Shown(30)]);
        assert_eq!(mask_line(&[10, 3], 11).cells, vec![Small, Small]);
        assert_eq!(mask_line(&[11, 0], 11).cells[0], Shown(11));
    }

    #[test]
    fn a_small_cell_hides_the_total_and_no_other_cell() {
        // 75 = 5 + 40 + 30: the total would give the 5 away. The 30 stays shown (a partner cell masked for the 5's
        // sake would be known to be at least 11); the total goes instead.
        let line = mask_line(&[5, 40, 30], 11);
        assert_eq!(line, MaskedLine { cells: vec![Small, Shown(40), Shown(30)], total: Secret });
        // Two small cells: a total of 57 shown would put each in [1, 6].
        let line = mask_line(&[3, 4, 50], 11);
        assert_eq!(line, MaskedLine { cells: vec![Small, Small, Shown(50)], total: Secret });
        assert_eq!(Secret.display(11), "secret");
    }

    #[test]
    fn a_total_is_small_only_when_it_is_the_one_small_cell() {
        let line = mask_line(&[0, 12, 0], 11);
        assert_eq!(line, MaskedLine { cells: vec![Shown(0), Shown(12), Shown(0)], total: Shown(12) });
        let line = mask_line(&[0, 7, 0, 0], 11);
        assert_eq!(line, MaskedLine { cells: vec![Shown(0), Small, Shown(0), Shown(0)], total: Small });
        // 3 + 4 = 7 is below the threshold, but "<11" would tell 3 + 4 from 8 + 4: secret, as for any two small cells.
        assert_eq!(mask_line(&[3, 4], 11).total, Secret);
        assert_eq!(mask_line(&[8, 4], 11).total, Secret);
        assert_eq!(mask_line(&[0, 0], 11).total, Shown(0));
    }

    #[test]
    fn no_masked_cell_can_be_told_from_the_line() {
        // Exhaustive over small lines: every count from 1 to 10 is small and nothing else is; whenever a cell is
        // masked the total is masked; and the line as shown is the same whatever the small value of any of its
        // cells, so nothing in it narrows that value.
        let small = |n: i64| n > 0 && n < 11;
        for a in 0..25 {
            for b in 0..25 {
                for c in 0..25 {
                    let values = [a, b, c];
                    let line = mask_line(&values, 11);
                    for (value, cell) in values.iter().zip(&line.cells) {
                        assert_eq!(*cell, if small(*value) { Small } else { Shown(*value) }, "{values:?}");
                    }
                    if line.cells.contains(&Small) {
                        assert!(matches!(line.total, Small | Secret), "{values:?}: {line:?}");
                    } else {
                        assert_eq!(line.total, Shown(a + b + c));
                    }
                    for i in (0..3).filter(|i| small(values[*i])) {
                        for other in 1..11 {
                            let mut changed = values;
                            changed[i] = other;
                            assert_eq!(mask_line(&changed, 11), line, "{values:?} against {changed:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_threshold_is_a_parameter() {
        assert_eq!(mask_line(&[4, 100, 100], 5).cells[0], Small);
        assert_eq!(mask_line(&[5, 100, 100], 5).cells[0], Shown(5));
        assert_eq!(Small.display(11), "<11");
        assert_eq!(Small.display(5), "<5");
    }
}
