//! Answers to reconciliation reads kept in memory while the reconciled state stands. Dashboards ask the same
//! question many times a second; between two writes the answer cannot change, so it is served again as bytes. The
//! token is still checked on every request (revocation, suspension); the key holds everything the answer depends
//! on: who asks (institution, role), the exact request, and the state's epoch, bumped by every write that changes a
//! region. Entries also expire after a few seconds, so that an edit made straight in the database (which the hub
//! does not see) is served within that delay.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_graphql::parser::types::{OperationType, Selection};

/// The root fields whose answers come from the reconciled state only.
const CACHEABLE: &[&str] = &["coFinancingStatus", "reconciliation", "__typename"];

/// How long an answer may be served without a write having changed anything.
pub const TTL: Duration = Duration::from_secs(2);

/// Entries kept at most; beyond, the cache starts afresh.
const CAPACITY: usize = 10_000;

/// Bytes of keys and answers kept at most: requests that differ every time (a new alias, a new page) fill the cache
/// with answers nobody asks for again, and must not grow the hub's memory with them. Room for two national
/// reconciliations at scale 10 (4 MB each): at 32 MiB, eight of them held 32 MB of the 300 MB the hub may use there.
const MAX_BYTES: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Entries {
    /// The epoch of the entries held: an answer of an older epoch is never served, so a new epoch starts afresh.
    epoch: u64,
    bytes: usize,
    map: HashMap<String, (u64, Instant, axum::body::Bytes)>,
}

#[derive(Default)]
pub struct AnswerCache {
    entries: Mutex<Entries>,
}

/// Whether a request only reads reconciliation state (a query whose root fields are all cacheable).
pub fn cacheable(request: &mut async_graphql::Request) -> bool {
    let Ok(document) = request.parsed_query() else { return false };
    if !document.fragments.is_empty() {
        return false;
    }
    let operations: Vec<_> = document.operations.iter().collect();
    operations.len() == 1
        && operations.iter().all(|(_, op)| {
            op.node.ty == OperationType::Query
                && op.node.selection_set.node.items.iter().all(|item| match &item.node {
                    Selection::Field(field) => CACHEABLE.contains(&field.node.name.node.as_str()),
                    _ => false,
                })
        })
}

impl AnswerCache {
    pub fn key(institution: &str, role: &str, body: &[u8]) -> String {
        format!("{institution}\u{1f}{role}\u{1f}{}", String::from_utf8_lossy(body))
    }

    pub fn get(&self, key: &str, epoch: u64) -> Option<axum::body::Bytes> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .map
            .get(key)
            .filter(|(at_epoch, stored, _)| *at_epoch == epoch && stored.elapsed() < TTL)
            .map(|(_, _, bytes)| bytes.clone())
    }

    pub fn put(&self, key: String, epoch: u64, answer: axum::body::Bytes) {
        let size = key.len() + answer.len();
        if size > MAX_BYTES / 2 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.epoch != epoch || entries.map.len() >= CAPACITY || entries.bytes + size > MAX_BYTES {
            entries.map.clear();
            entries.bytes = 0;
            entries.epoch = epoch;
        }
        if let Some((_, _, previous)) = entries.map.insert(key.clone(), (epoch, Instant::now(), answer)) {
            entries.bytes -= key.len() + previous.len();
        }
        entries.bytes += size;
    }

    /// Bytes held (keys and answers).
    pub fn bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_of_the_reconciled_state_are_cached() {
        let cacheable = |q: &str| cacheable(&mut async_graphql::Request::new(q));
        assert!(cacheable("{ coFinancingStatus { totalCount } }"));
        assert!(cacheable("query Q { reconciliation { findings { code } } }"));
        assert!(!cacheable("{ coFinancingStatus { totalCount } measures { totalCount } }"));
        assert!(!cacheable("mutation { upsertMeasure(input: {}) { created } }"));
        assert!(!cacheable("{ ...F } fragment F on Query { reconciliation { findings { code } } }"));
        assert!(!cacheable("{ a: coFinancingStatus { totalCount } } { b: reconciliation { findings { code } } }"));
    }

    #[test]
    fn an_answer_stands_for_its_epoch_only() {
        let cache = AnswerCache::default();
        let key = AnswerCache::key("ARS-84", "ARS", b"{}");
        cache.put(key.clone(), 7, axum::body::Bytes::from_static(b"answer"));
        assert_eq!(cache.get(&key, 7).as_deref(), Some(&b"answer"[..]));
        assert_eq!(cache.get(&key, 8), None, "a write changed the state");
        assert_eq!(cache.get(&AnswerCache::key("ARS-11", "ARS", b"{}"), 7), None, "another institution");
    }

    #[test]
    fn answers_nobody_asks_again_do_not_grow_the_cache_beyond_its_bytes() {
        let cache = AnswerCache::default();
        let answer = axum::body::Bytes::from(vec![b'x'; 20_000]);
        for i in 0..5_000 {
            cache.put(AnswerCache::key("ARS-84", "ARS", format!("{{ a{i}: x }}").as_bytes()), 3, answer.clone());
            assert!(cache.bytes() <= MAX_BYTES);
        }
        let key = AnswerCache::key("ARS-84", "ARS", b"{ a4999: x }");
        assert!(cache.get(&key, 3).is_some(), "the latest answers are still served");
        cache.put(AnswerCache::key("ARS-84", "ARS", b"{ b }"), 4, answer.clone());
        assert_eq!(cache.get(&key, 3), None, "a new epoch drops the answers of the older one");
        assert_eq!(cache.bytes(), AnswerCache::key("ARS-84", "ARS", b"{ b }").len() + answer.len());
    }
}
