//! What the region-wide families add up over the measures — envelopes and payment credits, socle splits, school
//! matching, needs coverage — kept between reconciliations of a region. A write takes the contributions of the
//! measures it touched out of the sums as they were and adds them as they are now, instead of adding up every
//! measure of the region again; `reconcile` adds them all up afresh, and the property test of `reconcile_reusing`
//! checks that both give the same report.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::{MeasureFact, MeasureOutcome, Territory};
use crate::vocabulary::{Compartment, MeasureCompartment, MeasureStatus};

/// A sum and how many contributions make it: its key stands while one is left, as it would when summed afresh
/// (a schedule year of 0 € still makes a row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub count: i64,
    pub sum: i64,
}

fn tally<K: Ord>(map: &mut BTreeMap<K, Tally>, key: K, sign: i64, amount: i64) {
    match map.entry(key) {
        Entry::Occupied(mut entry) => {
            let t = entry.get_mut();
            t.count += sign;
            t.sum += sign * amount;
            if t.count == 0 {
                entry.remove();
            }
        }
        Entry::Vacant(entry) => {
            debug_assert_eq!(sign, 1, "a contribution taken out of a sum that never had it");
            entry.insert(Tally { count: sign, sum: sign * amount });
        }
    }
}

/// One envelope's measures (abandoned ones aside), added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct EnvelopeSums {
    pub measures: i64,
    /// Full-year assurance-maladie commitments.
    pub committed: i64,
    /// Payment credits called, by year.
    pub cp_by_year: BTreeMap<i32, Tally>,
    /// AE committed on the measures installed in each year.
    pub ae_installed_in: BTreeMap<i32, Tally>,
}

/// A region's socle commitments by public, and how many measures count in them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SplitSums {
    pub measures: i64,
    pub children: i64,
    pub ase: i64,
    pub adults: i64,
}

/// The sums of a region's (or the country's) measures, abandoned ones aside.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionSums {
    /// (region, envelope) → its sums.
    pub(super) envelopes: BTreeMap<(String, Compartment), EnvelopeSums>,
    /// region → its socle split.
    pub(super) splits: BTreeMap<String, SplitSums>,
    /// (académie, year of installation) → assurance-maladie commitments on its école measures.
    pub(super) funded: BTreeMap<(String, i32), Tally>,
    /// (département, needs-coverage row) → solutions programmed.
    pub(super) programmed: BTreeMap<(String, String), Tally>,
}

impl RegionSums {
    /// Adds (`sign` 1) or takes out (`sign` -1) what a measure, with its outcome, contributes.
    pub(super) fn apply(&mut self, measure: &MeasureFact, outcome: &MeasureOutcome, territory: &Territory, sign: i64) {
        if measure.status == MeasureStatus::Abandonnee {
            return;
        }
        let sums = &outcome.sums;
        let mut envelope = match self.envelopes.entry((measure.region_code.clone(), measure.compartment.envelope())) {
            Entry::Occupied(entry) => entry,
            Entry::Vacant(entry) => entry.insert_entry(EnvelopeSums::default()),
        };
        let totals = envelope.get_mut();
        totals.measures += sign;
        totals.committed += sign * sums.am_cents;
        for (year, cents) in &sums.cp {
            tally(&mut totals.cp_by_year, *year, sign, *cents);
        }
        for (year, cents) in &sums.ae {
            tally(&mut totals.ae_installed_in, *year, sign, *cents);
        }
        if totals.measures == 0 {
            envelope.remove();
        }
        let split = self.splits.entry(measure.region_code.clone()).or_default();
        split.measures += sign;
        let am = sign * sums.am_cents;
        match measure.compartment {
            MeasureCompartment::SocleEnfants => split.children += am,
            MeasureCompartment::SocleAse => {
                split.children += am;
                split.ase += am;
            }
            MeasureCompartment::SocleAdultes => split.adults += am,
            MeasureCompartment::Precoce | MeasureCompartment::Ecole => {}
        }
        if split.measures == 0 {
            self.splits.remove(&measure.region_code);
        }
        if measure.compartment == MeasureCompartment::Ecole
            && let Some(academie) = territory.academie_of.get(&measure.departement_code)
        {
            for (year, cents) in &sums.ae {
                tally(&mut self.funded, (academie.clone(), *year), sign, *cents);
            }
        }
        if let Some(group) = &sums.coverage_group {
            tally(&mut self.programmed, (measure.departement_code.clone(), group.clone()), sign, measure.solutions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_stands_while_a_contribution_is_left_even_of_nothing() {
        let mut map = BTreeMap::new();
        tally(&mut map, 2026, 1, 0);
        tally(&mut map, 2026, 1, 500);
        assert_eq!(map[&2026], Tally { count: 2, sum: 500 });
        tally(&mut map, 2026, -1, 500);
        assert_eq!(map[&2026], Tally { count: 1, sum: 0 }, "a contribution of 0 € still makes the year");
        tally(&mut map, 2026, -1, 0);
        assert!(map.is_empty());
    }
}
