//! The audit chain (pure): each record's hash covers its content and the previous record's hash, so altering or
//! deleting a past record breaks every hash after it.

use sha2::{Digest, Sha256};

/// The hash of a chain that has no record yet.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of some bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// What a record says, in the order it is hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordContent<'a> {
    pub seq: i64,
    pub recorded_at_micros: i64,
    pub institution_code: &'a str,
    pub agent_id: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub operation: &'a str,
    pub object_ids: &'a str,
    pub content_hash: &'a str,
}

/// The record's hash: SHA-256 over the previous hash and each field, length-prefixed so that no two different
/// records hash the same bytes.
pub fn record_hash(previous_hash: &str, record: &RecordContent<'_>) -> String {
    let mut hashed = Vec::with_capacity(256);
    frame(&mut hashed, previous_hash.as_bytes());
    frame(&mut hashed, &record.seq.to_be_bytes());
    hashed.extend_from_slice(&framed_after_seq(record));
    sha256_hex(&hashed)
}

/// A field as it is hashed: its length (8 bytes, big-endian), then its bytes.
fn frame(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The hashed bytes of a record after its previous hash and its sequence number. PostgreSQL is given them to chain
/// a record under the head's lock in the statement that takes it (`audit_log::append_after`), framing the head's
/// hash and the next sequence number before them as `record_hash` does.
pub fn framed_after_seq(record: &RecordContent<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    frame(&mut out, &record.recorded_at_micros.to_be_bytes());
    frame(&mut out, record.institution_code.as_bytes());
    frame(&mut out, record.agent_id.unwrap_or("\u{0}").as_bytes());
    frame(&mut out, record.token_id.unwrap_or("\u{0}").as_bytes());
    frame(&mut out, record.operation.as_bytes());
    frame(&mut out, record.object_ids.as_bytes());
    frame(&mut out, record.content_hash.as_bytes());
    out
}

/// A stored record as the verifier sees it.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub seq: i64,
    pub recorded_at_micros: i64,
    pub institution_code: String,
    pub agent_id: Option<String>,
    pub token_id: Option<String>,
    pub operation: String,
    pub object_ids: String,
    pub content_hash: String,
    pub previous_hash: String,
    pub hash: String,
}

/// Verifies records in sequence order, continuing from `previous` (the hash and sequence number of the last record
/// already checked). Returns the first broken sequence number, if any.
pub fn first_break<'a>(
    previous: (&str, i64),
    records: impl IntoIterator<Item = &'a StoredRecord>,
) -> Result<(String, i64), i64> {
    let (mut previous_hash, mut previous_seq) = (previous.0.to_owned(), previous.1);
    for record in records {
        // A deleted record shows as a gap in the sequence; an altered one as a hash that no longer matches.
        if record.seq != previous_seq + 1 || record.previous_hash != previous_hash {
            return Err(previous_seq + 1);
        }
        let content = RecordContent {
            seq: record.seq,
            recorded_at_micros: record.recorded_at_micros,
            institution_code: &record.institution_code,
            agent_id: record.agent_id.as_deref(),
            token_id: record.token_id.as_deref(),
            operation: &record.operation,
            object_ids: &record.object_ids,
            content_hash: &record.content_hash,
        };
        if record_hash(&previous_hash, &content) != record.hash {
            return Err(record.seq);
        }
        previous_hash = record.hash.clone();
        previous_seq = record.seq;
    }
    Ok((previous_hash, previous_seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_hashes_as_chains_already_stored_were_hashed() {
        // Computed independently (Python's hashlib over the length-prefixed fields): a change of framing would break
        // the verification of every chain stored, and the hash PostgreSQL computes from `framed_after_seq`.
        let record = RecordContent {
            seq: 7,
            recorded_at_micros: 1_700_000_000_000_007,
            institution_code: "ARS-84",
            agent_id: None,
            token_id: Some("tok-1"),
            operation: "upsertMeasure",
            object_ids: "[\"m7\"]",
            content_hash: "abc",
        };
        assert_eq!(record_hash(GENESIS, &record), "c8f364e4e5f475897ffcfa3252afdcfa0809cd00326f17bb6daae12c0ffd489e");
    }

    fn chain(n: i64) -> Vec<StoredRecord> {
        let mut previous = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut record = StoredRecord {
                    seq,
                    recorded_at_micros: 1_700_000_000_000_000 + seq,
                    institution_code: "ARS-84".into(),
                    agent_id: Some("agent".into()),
                    token_id: None,
                    operation: "upsertMeasure".into(),
                    object_ids: format!("[\"m{seq}\"]"),
                    content_hash: sha256_hex(&seq.to_be_bytes()),
                    previous_hash: previous.clone(),
                    hash: String::new(),
                };
                record.hash = record_hash(
                    &previous,
                    &RecordContent {
                        seq,
                        recorded_at_micros: record.recorded_at_micros,
                        institution_code: &record.institution_code,
                        agent_id: record.agent_id.as_deref(),
                        token_id: None,
                        operation: &record.operation,
                        object_ids: &record.object_ids,
                        content_hash: &record.content_hash,
                    },
                );
                previous = record.hash.clone();
                record
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert!(first_break((GENESIS, 0), &chain(5)).is_ok());
    }

    #[test]
    fn an_altered_record_is_found() {
        let mut records = chain(5);
        records[2].object_ids = "[\"other\"]".into();
        assert_eq!(first_break((GENESIS, 0), &records), Err(3));
    }

    #[test]
    fn a_deleted_record_is_found() {
        let mut records = chain(5);
        records.remove(1);
        assert_eq!(first_break((GENESIS, 0), &records), Err(2));
    }

    #[test]
    fn a_rewritten_tail_does_not_hide_behind_a_recomputed_hash() {
        let mut records = chain(3);
        records[1].operation = "withdrawCommitment".into();
        // The forger recomputes record 2's hash, but record 3 still names the old one.
        let content = RecordContent {
            seq: 2,
            recorded_at_micros: records[1].recorded_at_micros,
            institution_code: "ARS-84",
            agent_id: Some("agent"),
            token_id: None,
            operation: "withdrawCommitment",
            object_ids: &records[1].object_ids.clone(),
            content_hash: &records[1].content_hash.clone(),
        };
        records[1].hash = record_hash(&records[0].hash, &content);
        assert_eq!(first_break((GENESIS, 0), &records), Err(3));
    }
}
