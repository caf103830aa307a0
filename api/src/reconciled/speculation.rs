//! Writes that reconcile their region before they take its lock (PostgreSQL): the bookkeeping that tells when that is
//! right.
//!
//! Why: a region's writers queue on its generation's row lock, held until commit. When the recomputation ran under
//! that lock, the lock was held for three round trips and the engine (6 ms under load, so at most ~150 writes/s in
//! one region). A speculative write instead computes its region's next state before the lock, on the newest state this
//! instance knows (the chain's tip: the state of the previous write, even one not yet committed), then sends one
//! statement that waits for that previous write to end, bumps the generation only if the region's row is still
//! exactly what the state was computed from (generation and stamp: a compare-and-swap), and stores the statuses, the
//! change log and the audit record; under the lock remain that statement's tail and the commit.
//!
//! When it is right:
//! - the base is right in the store: the compare-and-swap refuses a base that is not what was committed last (a
//!   previous write that rolled back, another instance's write, a write that did not speculate);
//! - the write's own measures are right: they were read back in its transaction after its mark, so every write that
//!   committed before the mark is in them; a write of this instance still in flight then, or begun since, that
//!   touched one of the same measures makes the write take the ordinary path (`Chain::base`);
//! - the base was not replaced from outside the chain after the mark (a reload, another instance's write, a write
//!   that did not speculate): those break the chain (`Chain::break_tip`), which moves its epoch on.
//!
//! Anything else takes the ordinary path, which recomputes under the lock as before: speculation never decides what
//! is stored, it only saves the work under the lock when its guesses hold.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The writes of one region on this instance, with the newest state they computed.
pub(super) struct Chain<S> {
    /// The newest state known here and the advisory-lock key of the write that computed it (None: a committed state
    /// adopted from memory).
    tip: Option<(S, Option<i32>)>,
    /// Moved on whenever the tip is replaced otherwise than by a write of the chain.
    epoch: u64,
    next_ticket: u64,
    /// The chain's writes, oldest first, with the measures they touched; resolved ones are kept a while, for the
    /// writes that marked before they resolved.
    entries: VecDeque<Entry>,
}

struct Entry {
    ticket: u64,
    touched: BTreeSet<String>,
    resolved: bool,
}

/// Where a write stood in the chain before it read its measures back.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    epoch: u64,
    /// The oldest write whose touched measures may be missing from this write's read-back.
    since: u64,
}

/// How many resolved writes are kept for the writes that marked before they resolved.
const KEPT: usize = 64;

impl<S: Clone> Default for Chain<S> {
    fn default() -> Self {
        Chain { tip: None, epoch: 0, next_ticket: 0, entries: VecDeque::new() }
    }
}

impl<S: Clone> Chain<S> {
    /// Marks a write's start. Without a tip still `usable`, adopts the state `adopt` gives (a committed one).
    pub(super) fn mark(&mut self, usable: impl Fn(&S) -> bool, adopt: impl FnOnce() -> Option<S>) -> Option<Mark> {
        if !self.tip.as_ref().is_some_and(|(state, _)| usable(state)) {
            let adopted = adopt()?;
            self.epoch += 1;
            self.tip = Some((adopted, None));
        }
        let since = self.entries.iter().find(|e| !e.resolved).map_or(self.next_ticket, |e| e.ticket);
        Some(Mark { epoch: self.epoch, since })
    }

    /// The state a write marked at `mark` and touching `touched` builds on, with the key of the write to wait for;
    /// None when it cannot speculate.
    pub(super) fn base(&self, mark: Mark, touched: &BTreeSet<String>) -> Option<(S, Option<i32>)> {
        if self.epoch != mark.epoch {
            return None;
        }
        // A write that ended before the mark is in the read-back: only later ones and those in flight then count.
        if self.entries.front().is_some_and(|e| e.ticket > mark.since) {
            return None;
        }
        let overlapping =
            self.entries.iter().filter(|e| e.ticket >= mark.since).any(|e| !e.touched.is_disjoint(touched));
        if overlapping {
            return None;
        }
        self.tip.clone()
    }

    /// Records a write's new state as the tip, unless the chain was broken since `mark`.
    pub(super) fn push(&mut self, mark: Mark, touched: BTreeSet<String>, state: S, key: i32) -> Option<u64> {
        if self.epoch != mark.epoch {
            return None;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.entries.push_back(Entry { ticket, touched, resolved: false });
        while self.entries.len() > KEPT && self.entries.front().is_some_and(|e| e.resolved) {
            self.entries.pop_front();
        }
        self.tip = Some((state, Some(key)));
        Some(ticket)
    }

    /// A write of the chain ended: committed, or not (its state, and every state built on it, is then wrong).
    pub(super) fn resolve(&mut self, ticket: u64, committed: bool) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.ticket == ticket) {
            entry.resolved = true;
        }
        if !committed {
            self.break_tip();
        }
    }

    /// Forgets the tip: the next write adopts a committed state.
    pub(super) fn break_tip(&mut self) {
        self.tip = None;
        self.epoch += 1;
    }
}

/// A region's chain and its turn: the writes of a region compute their states one at a time, each on the last.
pub(super) struct RegionChain<S> {
    pub(super) chain: Mutex<Chain<S>>,
    pub(super) turn: tokio::sync::Mutex<()>,
}

impl<S: Clone> RegionChain<S> {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Chain<S>> {
        self.chain.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every region's chain.
pub(super) struct Chains<S> {
    regions: Mutex<HashMap<String, Arc<RegionChain<S>>>>,
}

impl<S: Clone> Default for Chains<S> {
    fn default() -> Self {
        Chains { regions: Mutex::new(HashMap::new()) }
    }
}

impl<S: Clone> Chains<S> {
    pub(super) fn of(&self, region: &str) -> Arc<RegionChain<S>> {
        let mut regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        regions
            .entry(region.to_owned())
            .or_insert_with(|| {
                Arc::new(RegionChain { chain: Mutex::new(Chain::default()), turn: tokio::sync::Mutex::new(()) })
            })
            .clone()
    }

    pub(super) fn break_tip(&self, region: &str) {
        let chain = self.regions.lock().unwrap_or_else(|e| e.into_inner()).get(region).cloned();
        if let Some(chain) = chain {
            chain.lock().break_tip();
        }
    }

    pub(super) fn break_all(&self) {
        let chains: Vec<_> = self.regions.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for chain in chains {
            chain.lock().break_tip();
        }
    }
}

/// A speculative write's place in its chain: resolved as committed by `Ticket::committed`, as failed when dropped
/// otherwise (the write failed or took the ordinary path).
pub(super) struct Ticket<S: Clone> {
    chain: Arc<RegionChain<S>>,
    ticket: u64,
    committed: bool,
}

impl<S: Clone> Ticket<S> {
    pub(super) fn new(chain: Arc<RegionChain<S>>, ticket: u64) -> Self {
        Ticket { chain, ticket, committed: false }
    }

    pub(super) fn committed(mut self) {
        self.committed = true;
    }
}

impl<S: Clone> Drop for Ticket<S> {
    fn drop(&mut self) {
        self.chain.lock().resolve(self.ticket, self.committed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_write_builds_on_the_previous_one_still_in_flight() {
        let mut chain: Chain<u32> = Chain::default();
        let first = chain.mark(|_| true, || Some(10)).unwrap();
        assert_eq!(chain.base(first, &ids(&["a"])), Some((10, None)));
        let ticket = chain.push(first, ids(&["a"]), 11, 7).unwrap();
        // The next write marks while the first is in flight and touches another measure: it builds on it.
        let second = chain.mark(|_| true, || panic!("the tip is usable")).unwrap();
        assert_eq!(chain.base(second, &ids(&["b"])), Some((11, Some(7))));
        chain.resolve(ticket, true);
        assert_eq!(chain.base(second, &ids(&["b"])), Some((11, Some(7))));
    }

    #[test]
    fn a_write_touching_a_measure_of_a_write_in_flight_at_its_mark_does_not_speculate() {
        let mut chain: Chain<u32> = Chain::default();
        let first = chain.mark(|_| true, || Some(10)).unwrap();
        let ticket = chain.push(first, ids(&["a"]), 11, 7).unwrap();
        let second = chain.mark(|_| true, || None).unwrap();
        // Even once the first committed: the second's read-back may have missed it.
        chain.resolve(ticket, true);
        assert_eq!(chain.base(second, &ids(&["a", "c"])), None);
        // A write marked after the first committed read it back.
        let third = chain.mark(|_| true, || None).unwrap();
        assert_eq!(chain.base(third, &ids(&["a"])), Some((11, Some(7))));
    }

    #[test]
    fn a_write_begun_after_the_mark_on_the_same_measure_stops_the_speculation() {
        let mut chain: Chain<u32> = Chain::default();
        let early = chain.mark(|_| true, || Some(10)).unwrap();
        let late = chain.mark(|_| true, || None).unwrap();
        chain.push(late, ids(&["a"]), 11, 8).unwrap();
        assert_eq!(chain.base(early, &ids(&["a"])), None);
        assert_eq!(chain.base(early, &ids(&["b"])), Some((11, Some(8))));
    }

    #[test]
    fn a_failed_write_breaks_the_chain_and_the_writes_marked_before() {
        let mut chain: Chain<u32> = Chain::default();
        let first = chain.mark(|_| true, || Some(10)).unwrap();
        let ticket = chain.push(first, ids(&["a"]), 11, 7).unwrap();
        let second = chain.mark(|_| true, || None).unwrap();
        chain.resolve(ticket, false);
        assert_eq!(chain.base(second, &ids(&["b"])), None);
        assert_eq!(chain.push(second, ids(&["b"]), 12, 9), None);
        // The next write adopts a committed state again.
        let third = chain.mark(|_| true, || Some(10)).unwrap();
        assert_eq!(chain.base(third, &ids(&["b"])), Some((10, None)));
    }

    #[test]
    fn a_tip_replaced_from_outside_the_chain_stops_the_writes_marked_before() {
        let mut chain: Chain<u32> = Chain::default();
        let first = chain.mark(|_| true, || Some(10)).unwrap();
        chain.break_tip();
        assert_eq!(chain.base(first, &ids(&["a"])), None);
        // No committed state in memory: no speculation.
        assert!(chain.mark(|_| true, || None).is_none());
        // A tip no longer usable (another day) is replaced.
        let second = chain.mark(|_| true, || Some(20)).unwrap();
        chain.push(second, ids(&["a"]), 21, 3).unwrap();
        let third = chain.mark(|state| *state != 21, || Some(30)).unwrap();
        assert_eq!(chain.base(third, &ids(&["b"])), Some((30, None)));
    }

    #[test]
    fn writes_resolved_long_before_are_forgotten_but_a_mark_older_than_what_is_kept_does_not_speculate() {
        let mut chain: Chain<u32> = Chain::default();
        let old = chain.mark(|_| true, || Some(0)).unwrap();
        let mut tickets = Vec::new();
        for i in 0..(KEPT as u32 + 10) {
            let mark = chain.mark(|_| true, || None).unwrap();
            tickets.push(chain.push(mark, ids(&[&format!("m{i}")]), i + 1, i as i32).unwrap());
        }
        for ticket in tickets {
            chain.resolve(ticket, true);
        }
        let mark = chain.mark(|_| true, || None).unwrap();
        chain.push(mark, ids(&["x"]), 100, 100).unwrap();
        assert!(chain.entries.len() <= KEPT + 1);
        assert_eq!(chain.base(old, &ids(&["y"])), None);
        let fresh = chain.mark(|_| true, || None).unwrap();
        assert_eq!(chain.base(fresh, &ids(&["y"])), Some((100, Some(100))));
    }
}
