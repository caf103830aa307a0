//! Needs coverage (pure): per département and kind of orientation, the solutions programmed against the people the
//! MDPH counts without a solution; and what a reader outside the producing MDPH and the CNSA may see of it.
//!
//! Masking. A count of people from 1 to threshold − 1 is shown "<11" (`Cell::Small`). A département's rows are
//! published as two lines, people waiting and Creton adults, each with its total; a total is hidden ("secret",
//! `Cell::Secret`) as soon as a cell of its line is small, so a row's cells are shown or small, never hidden to
//! protect another one, and no published equation links a small cell to shown figures. Every figure derived from
//! people counts (a row's people without a solution, its needs finding and so the counts of findings) is computed
//! from the cells as the reader sees them (`People`, `needs_verdict`), never from the exact values behind them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{FigureValue, Finding, NeedsCoverage, Report, Severity, Snapshot, SubjectKind};
use crate::vocabulary::NeedsIndicatorKind;

/// The default masking threshold: counts from 1 to 10 are shown as "<11" (statistical secrecy practice of the
/// ministries' statistical services; configurable with `CNH_SMALL_COUNT_THRESHOLD`).
pub const DEFAULT_THRESHOLD: i64 = 11;

/// The masking threshold of small counts of people, from the configuration (schema data).
#[derive(Clone, Copy, Debug)]
pub struct MaskingThreshold(pub i64);

/// Fewer solutions programmed than people without a solution (for a masked reader: than the fewest people its
/// view allows).
pub const NEEDS_UNCOVERED: &str = "NEEDS_UNCOVERED";
/// For a reader to whom a count of the row is masked: the solutions programmed fall within the range of counts its
/// view allows, so whether they cover the people cannot be told without revealing the count.
pub const NEEDS_COVERAGE_UNDETERMINED: &str = "NEEDS_COVERAGE_UNDETERMINED";

/// What a reader sees of a coverage row's people without a solution: those waiting (waiting for admission, no step
/// taken, admission impossible; Creton adults excluded) and the Creton adults. Exact for the CNSA and the producing
/// MDPH; shown or small for anyone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct People {
    pub waiting: Cell,
    pub creton: Cell,
}

impl People {
    pub fn exact(waiting: i64, creton: i64) -> People {
        People { waiting: Cell::Shown(waiting), creton: Cell::Shown(creton) }
    }

    /// The least and the most people without a solution (waiting + Creton) the cells allow: the exact sum when both
    /// are shown; otherwise a small cell counts for 1 at least and threshold − 1 at most.
    pub fn bounds(self, threshold: i64) -> (i64, i64) {
        [self.waiting, self.creton].into_iter().fold((0, 0), |(lower, upper), cell| match cell {
            Cell::Shown(n) => (lower + n, upper.saturating_add(n)),
            Cell::Small => (lower + 1, upper.saturating_add(threshold - 1)),
            // Never in a row; a secret cell could be anything.
            Cell::Secret => (lower, i64::MAX),
        })
    }

    /// The sum, when both cells are shown.
    pub fn exact_sum(self) -> Option<i64> {
        match (self.waiting, self.creton) {
            (Cell::Shown(w), Cell::Shown(c)) => Some(w + c),
            _ => None,
        }
    }

    /// The coverage ratio in basis points: programmed solutions over people without a solution (waiting + Creton),
    /// rounded half away from zero (`money::ratio_basis_points`). Only when both cells are shown, so it is computed
    /// from figures the reader sees and tells nothing of a masked count; None as well when nobody waits.
    pub fn coverage_ratio_bp(self, programmed: i64) -> Option<i64> {
        self.exact_sum().and_then(|people| crate::money::ratio_basis_points(programmed, people))
    }

    /// People without a solution (waiting + Creton) as shown: "35", or, with a masked cell, the shown terms
    /// ("<11", "30 + <11", "<11 + <11"), never a number derived from a masked one.
    pub fn display_sum(self, threshold: i64) -> String {
        if let Some(sum) = self.exact_sum() {
            return sum.to_string();
        }
        let terms: Vec<String> = [self.waiting, self.creton]
            .into_iter()
            .filter(|c| *c != Cell::Shown(0))
            .map(|c| c.display(threshold))
            .collect();
        terms.join(" + ")
    }
}

/// The needs finding a row calls for, judged from what the reader sees of its people: `NEEDS_UNCOVERED` when the
/// programmed solutions are fewer than the fewest people its view allows, `NEEDS_COVERAGE_UNDETERMINED` when they
/// cover some of the counts its view allows but not all (only with a masked cell), none when they cover them all.
pub fn needs_verdict(programmed: i64, people: People, threshold: i64) -> Option<&'static str> {
    let (lower, upper) = people.bounds(threshold);
    if programmed < lower {
        Some(NEEDS_UNCOVERED)
    } else if programmed < upper {
        Some(NEEDS_COVERAGE_UNDETERMINED)
    } else {
        None
    }
}

/// The needs finding of a coverage row, if any, from what the reader sees of its people (`People::exact` for the
/// CNSA and the producing MDPH, as the engine judges). Its presence, code, figures and message depend on those
/// cells only.
pub fn needs_finding(row: &NeedsCoverage, people: People, threshold: i64) -> Option<Finding> {
    let code = needs_verdict(row.programmed, people, threshold)?;
    let cell = |c: Cell| match c {
        Cell::Shown(n) => FigureValue::People(n),
        masked => FigureValue::MaskedPeople(masked.display(threshold)),
    };
    let (without, waiting, creton) =
        (people.display_sum(threshold), people.waiting.display(threshold), people.creton.display(threshold));
    let counts = format!(
        "{} solutions programmées pour {without} personnes sans solution ({waiting} en attente, {creton} jeunes adultes Creton)",
        row.programmed
    );
    let place = format!("Département {}, orientation {}", row.departement, row.orientations.join(" / "));
    let message = if code == NEEDS_UNCOVERED {
        format!("{place} : {counts}")
    } else {
        format!("{place} : couverture non déterminable (effectif soumis au secret statistique) : {counts}")
    };
    Some(Finding {
        code,
        severity: Severity::Info,
        subject_kind: SubjectKind::Departement,
        subject: format!("{}/{}", row.departement, row.orientations.join("+")),
        region: row.region.clone(),
        departements: vec![row.departement.clone()],
        figures: vec![
            ("solutionsProgrammees", FigureValue::Count(row.programmed)),
            // En attente + adultes Creton.
            (
                "personnesSansSolution",
                people.exact_sum().map_or(FigureValue::MaskedPeople(without), FigureValue::People),
            ),
            // Creton excluded: the coverage row's peopleWaiting.
            ("personnesEnAttente", cell(people.waiting)),
            ("adultesCreton", cell(people.creton)),
        ],
        message,
    })
}

/// Orientations pointing to the same category are one coverage row (their programmed solutions cannot be told
/// apart): row key (the category, or "#" and the orientation when it points to none) → its orientations and category.
pub(super) type CoverageGroups = BTreeMap<String, (Vec<String>, Option<String>)>;

pub(super) fn coverage_groups(territory: &super::Territory) -> CoverageGroups {
    let mut groups: CoverageGroups = BTreeMap::new();
    for (orientation, category) in &territory.orientation_category {
        let key = if category.is_empty() { format!("#{orientation}") } else { category.clone() };
        let entry = groups.entry(key).or_insert_with(|| (Vec::new(), (!category.is_empty()).then(|| category.clone())));
        entry.0.push(orientation.clone());
    }
    groups
}

/// The coverage row a measure's solutions count in (a legacy category counts as its successor), if any.
pub(super) fn coverage_group_of(
    measure: &super::MeasureFact,
    territory: &super::Territory,
    groups: &CoverageGroups,
) -> Option<String> {
    let category = territory.successor.get(&measure.category_code).unwrap_or(&measure.category_code);
    groups.contains_key(category).then(|| category.clone())
}

/// The needs-coverage rows of a reconciliation, kept for the next reconciliation of the same region: a write moves
/// the programmed solutions of one row or two, so the other rows (their people counted over every needs indicator,
/// their findings formatted) are taken as they were, as long as the needs and the territory are the very same.
#[derive(Clone, Debug, Default)]
pub struct CoverageRows {
    /// The needs and the territory the rows were counted from.
    inputs: Option<(Arc<Vec<super::NeedsFact>>, Arc<super::Territory>)>,
    /// In the report's order: by département, then row key.
    rows: Vec<KeptRow>,
}

#[derive(Clone, Debug)]
struct KeptRow {
    group: String,
    /// Whether the MDPH counts people in the row; otherwise it stands for programmed solutions only.
    counted: bool,
    row: NeedsCoverage,
    finding: Option<Arc<Finding>>,
}

impl KeptRow {
    fn key(&self) -> (&str, &str) {
        (self.row.departement.as_str(), self.group.as_str())
    }
}

/// The coverage rows: from `previous` where they can be (same needs and territory, same programmed solutions),
/// counted afresh otherwise; the same rows and findings either way (the property test of `reconcile_reusing`).
pub(super) fn needs_coverage(
    snapshot: &Snapshot,
    sums: &super::sums::RegionSums,
    groups: &CoverageGroups,
    previous: Option<&CoverageRows>,
    report: &mut Report,
) -> CoverageRows {
    let same_inputs = |rows: &&CoverageRows| {
        rows.inputs.as_ref().is_some_and(|(needs, territory)| {
            Arc::ptr_eq(needs, &snapshot.needs) && Arc::ptr_eq(territory, &snapshot.territory)
        })
    };
    let rows = match previous.filter(same_inputs) {
        Some(previous) => moved_rows(previous, sums, groups),
        None => counted_rows(snapshot, sums, groups),
    };
    for kept in &rows {
        report.findings.extend(kept.finding.iter().cloned());
        report.needs_coverage.push(kept.row.clone());
    }
    CoverageRows { inputs: Some((snapshot.needs.clone(), snapshot.territory.clone())), rows }
}

fn coverage_row(
    region: String,
    departement: &str,
    group: &str,
    groups: &CoverageGroups,
    (waiting, creton): (i64, i64),
    programmed: i64,
    counted: bool,
) -> KeptRow {
    let (orientations, category) = &groups[group];
    let row = NeedsCoverage {
        region,
        departement: departement.to_owned(),
        orientations: orientations.clone(),
        category: category.clone(),
        waiting,
        creton,
        programmed,
    };
    // The engine judges exact counts; a masked reader's view judges them again from its cells.
    let finding = needs_finding(&row, People::exact(waiting, creton), DEFAULT_THRESHOLD).map(Arc::new);
    KeptRow { group: group.to_owned(), counted, row, finding }
}

/// Every row counted from the needs indicators and the programmed solutions.
fn counted_rows(snapshot: &Snapshot, sums: &super::sums::RegionSums, groups: &CoverageGroups) -> Vec<KeptRow> {
    let territory = &snapshot.territory;
    let group_of: BTreeMap<&str, &str> = groups
        .iter()
        .flat_map(|(key, (orientations, _))| orientations.iter().map(move |o| (o.as_str(), key.as_str())))
        .collect();
    let mut people: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    for need in snapshot.needs.iter() {
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
    let programmed: BTreeMap<(&str, &str), i64> =
        sums.programmed.iter().map(|((d, g), t)| ((d.as_str(), g.as_str()), t.sum)).collect();
    let keys: BTreeSet<(&str, &str)> = people.keys().chain(programmed.keys()).copied().collect();
    keys.into_iter()
        .map(|(departement, group)| {
            let counted = people.get(&(departement, group)).copied();
            let region = region_of(territory, departement);
            let solutions = programmed.get(&(departement, group)).copied().unwrap_or_default();
            coverage_row(region, departement, group, groups, counted.unwrap_or_default(), solutions, counted.is_some())
        })
        .collect()
}

/// The previous rows, merged with the programmed solutions as they are now: a row keeps its people, and is judged
/// again only when its programmed solutions changed; a row that stood for programmed solutions only goes when they
/// do, and one appears for solutions programmed where there was none.
fn moved_rows(previous: &CoverageRows, sums: &super::sums::RegionSums, groups: &CoverageGroups) -> Vec<KeptRow> {
    use std::cmp::Ordering;
    let mut rows = Vec::with_capacity(previous.rows.len() + 1);
    let mut kept = previous.rows.iter().peekable();
    let mut programmed = sums.programmed.iter().map(|((d, g), t)| ((d.as_str(), g.as_str()), t.sum)).peekable();
    loop {
        let order = match (kept.peek(), programmed.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(row), Some((key, _))) => row.key().cmp(key),
        };
        match order {
            Ordering::Less => {
                // No solutions programmed any more: the row stands for its people, if any.
                let row = kept.next().expect("peeked");
                if row.counted {
                    rows.push(rejudged(row, 0, groups));
                }
            }
            Ordering::Equal => {
                let row = kept.next().expect("peeked");
                let (_, solutions) = programmed.next().expect("peeked");
                rows.push(rejudged(row, solutions, groups));
            }
            Ordering::Greater => {
                let ((departement, group), solutions) = programmed.next().expect("peeked");
                let territory = previous.inputs.as_ref().map(|(_, territory)| &**territory);
                let region = territory.map(|t| region_of(t, departement)).unwrap_or_default();
                rows.push(coverage_row(region, departement, group, groups, (0, 0), solutions, false));
            }
        }
    }
    rows
}

/// A kept row with its programmed solutions as they are now: the very same when they did not change.
fn rejudged(row: &KeptRow, programmed: i64, groups: &CoverageGroups) -> KeptRow {
    if row.row.programmed == programmed {
        return row.clone();
    }
    let people = (row.row.waiting, row.row.creton);
    coverage_row(row.row.region.clone(), &row.row.departement, &row.group, groups, people, programmed, row.counted)
}

/// The region of a département (the last one naming it, should two).
fn region_of(territory: &super::Territory, departement: &str) -> String {
    (territory.departements_of_region.iter())
        .filter(|(_, departements)| departements.contains(departement))
        .map(|(region, _)| region.clone())
        .next_back()
        .unwrap_or_default()
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
    use std::sync::Arc;

    use super::*;
    use crate::reconciled::engine::reconcile;
    use crate::reconciled::engine::test_support::*;
    use crate::vocabulary::MeasureCompartment;
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

    #[test]
    fn the_bounds_of_people_without_a_solution_follow_the_cells_shown() {
        assert_eq!(People::exact(30, 5).bounds(11), (35, 35));
        assert_eq!(People::exact(30, 5).display_sum(11), "35");
        let some_creton = People { waiting: Shown(30), creton: Small };
        assert_eq!(some_creton.bounds(11), (31, 40));
        assert_eq!(some_creton.display_sum(11), "30 + <11");
        let few_waiting = People { waiting: Small, creton: Shown(0) };
        assert_eq!(few_waiting.bounds(11), (1, 10));
        assert_eq!(few_waiting.display_sum(11), "<11");
        let both = People { waiting: Small, creton: Small };
        assert_eq!(both.bounds(11), (2, 20));
        assert_eq!(both.display_sum(11), "<11 + <11");
        assert_eq!(People { waiting: Small, creton: Shown(12) }.display_sum(11), "<11 + 12");
        assert_eq!(few_waiting.bounds(5), (1, 4));
    }

    #[test]
    fn the_coverage_ratio_needs_both_cells_shown_and_someone_waiting() {
        assert_eq!(People::exact(30, 15).coverage_ratio_bp(30), Some(6_667), "30 / 45 = 66,666… %");
        assert_eq!(People::exact(43, 0).coverage_ratio_bp(30), Some(6_977), "30 / 43 = 69,767… %");
        assert_eq!(People::exact(985, 0).coverage_ratio_bp(400), Some(4_061));
        assert_eq!(People::exact(12, 0).coverage_ratio_bp(0), Some(0));
        assert_eq!(People::exact(7, 0).coverage_ratio_bp(12), Some(17_143), "over 100 % when more are programmed");
        assert_eq!(People::exact(0, 0).coverage_ratio_bp(5), None, "nobody waits");
        assert_eq!(People { waiting: Shown(30), creton: Small }.coverage_ratio_bp(30), None);
        assert_eq!(People { waiting: Small, creton: Shown(0) }.coverage_ratio_bp(3), None);
        assert_eq!(People { waiting: Small, creton: Small }.coverage_ratio_bp(3), None);
    }

    #[test]
    fn a_masked_row_is_uncovered_undetermined_or_covered_from_its_bounds() {
        // 30 waiting and 1 to 10 Creton adults: between 31 and 40 people without a solution.
        let people = People { waiting: Shown(30), creton: Small };
        for (programmed, verdict) in [
            (0, Some(NEEDS_UNCOVERED)),
            (30, Some(NEEDS_UNCOVERED)),
            (31, Some(NEEDS_COVERAGE_UNDETERMINED)),
            (39, Some(NEEDS_COVERAGE_UNDETERMINED)),
            (40, None),
            (55, None),
        ] {
            assert_eq!(needs_verdict(programmed, people, 11), verdict, "{programmed}");
        }
        // 1 to 10 waiting, no Creton adult.
        let people = People { waiting: Small, creton: Shown(0) };
        assert_eq!(needs_verdict(0, people, 11), Some(NEEDS_UNCOVERED));
        assert_eq!(needs_verdict(1, people, 11), Some(NEEDS_COVERAGE_UNDETERMINED));
        assert_eq!(needs_verdict(9, people, 11), Some(NEEDS_COVERAGE_UNDETERMINED));
        assert_eq!(needs_verdict(10, people, 11), None);
        // Exact counts have no in between.
        assert_eq!(needs_verdict(34, People::exact(30, 5), 11), Some(NEEDS_UNCOVERED));
        assert_eq!(needs_verdict(35, People::exact(30, 5), 11), None);
    }

    fn mas(waiting: i64, creton: i64, programmed: i64) -> NeedsCoverage {
        NeedsCoverage {
            region: "84".into(),
            departement: "69".into(),
            orientations: vec!["13.3".into()],
            category: Some("255".into()),
            waiting,
            creton,
            programmed,
        }
    }

    #[test]
    fn a_needs_finding_names_both_definitions_of_people_without_a_solution() {
        let exact = needs_finding(&mas(30, 5, 5), People::exact(30, 5), 11).unwrap();
        assert_eq!(exact.code, NEEDS_UNCOVERED);
        assert_eq!(exact.subject, "69/13.3");
        assert_eq!(
            exact.message,
            "Département 69, orientation 13.3 : 5 solutions programmées pour 35 personnes sans solution (30 en attente, 5 jeunes adultes Creton)"
        );
        assert_eq!(
            exact.figures,
            vec![
                ("solutionsProgrammees", FigureValue::Count(5)),
                ("personnesSansSolution", FigureValue::People(35)),
                ("personnesEnAttente", FigureValue::People(30)),
                ("adultesCreton", FigureValue::People(5)),
            ]
        );
        assert_eq!(needs_finding(&mas(30, 5, 35), People::exact(30, 5), 11), None);
    }

    #[test]
    fn a_masked_needs_finding_shows_nothing_derived_from_a_masked_count() {
        let seen = People { waiting: Shown(30), creton: Small };
        let uncovered = needs_finding(&mas(30, 5, 20), seen, 11).unwrap();
        assert_eq!(uncovered.code, NEEDS_UNCOVERED);
        assert_eq!(
            uncovered.message,
            "Département 69, orientation 13.3 : 20 solutions programmées pour 30 + <11 personnes sans solution (30 en attente, <11 jeunes adultes Creton)"
        );
        assert_eq!(
            uncovered.figures[1..],
            [
                ("personnesSansSolution", FigureValue::MaskedPeople("30 + <11".into())),
                ("personnesEnAttente", FigureValue::People(30)),
                ("adultesCreton", FigureValue::MaskedPeople("<11".into())),
            ]
        );
        // 35 programmed cover the 35 people, but the reader cannot tell 35 from 40.
        let undetermined = needs_finding(&mas(30, 5, 35), seen, 11).unwrap();
        assert_eq!((undetermined.code, undetermined.severity), (NEEDS_COVERAGE_UNDETERMINED, Severity::Info));
        assert_eq!(
            undetermined.message,
            "Département 69, orientation 13.3 : couverture non déterminable (effectif soumis au secret statistique) : 35 solutions programmées pour 30 + <11 personnes sans solution (30 en attente, <11 jeunes adultes Creton)"
        );
        assert_eq!(undetermined.figures[0], ("solutionsProgrammees", FigureValue::Count(35)));
        assert_eq!(undetermined.figures[1..], uncovered.figures[1..], "the same figures");
        assert_eq!(needs_finding(&mas(30, 5, 40), seen, 11), None);
        // The same finding whatever the masked count behind it.
        for creton in 1..11 {
            for programmed in 0..45 {
                assert_eq!(
                    needs_finding(&mas(30, creton, programmed), seen, 11),
                    needs_finding(&mas(30, 1, programmed), seen, 11)
                );
            }
        }
    }

    #[test]
    fn needs_coverage_counts_people_without_solution_against_programmed_solutions() {
        let mut snapshot = eam_snapshot(vec![]);
        snapshot.territory = Arc::new(needs_territory());
        // 30 EAM solutions (category 448) and 5 more under the legacy FAM 437.
        let mut fam = measure("f", "437", MeasureCompartment::SocleAdultes);
        fam.solutions = 5;
        snapshot.measures.push(Arc::new(fam));
        *Arc::make_mut(&mut snapshot.needs) = vec![
            need("13.2", NeedsIndicatorKind::EnAttenteAdmission, 20),
            need("13.2", NeedsIndicatorKind::AucuneDemarche, 7),
            need("13.2", NeedsIndicatorKind::AdultesCreton, 4),
            need("13.2", NeedsIndicatorKind::OrientationsValides, 500),
            need("7.6", NeedsIndicatorKind::EnAttenteAdmission, 3),
            need("7.7", NeedsIndicatorKind::AdmissionImpossible, 2),
        ];
        let report = reconcile(&snapshot);
        let eam = report.needs_coverage.iter().find(|r| r.category.as_deref() == Some("448")).unwrap();
        assert_eq!((eam.waiting, eam.creton, eam.programmed), (27, 4, 35));
        let itep = report.needs_coverage.iter().find(|r| r.category.as_deref() == Some("186")).unwrap();
        assert_eq!(itep.orientations, vec!["7.6".to_owned(), "7.7".to_owned()]);
        assert_eq!((itep.waiting, itep.programmed), (5, 0));
        let uncovered: Vec<&Finding> =
            report.findings.iter().filter(|f| f.code == "NEEDS_UNCOVERED").map(|f| &**f).collect();
        assert_eq!(uncovered.len(), 1, "35 solutions cover the 31 EAM needs; the 5 ITEP needs are uncovered");
        assert_eq!(uncovered[0].subject, "69/7.6+7.7");
        assert!(uncovered[0].figures.contains(&("personnesSansSolution", FigureValue::People(5))));
    }
}
