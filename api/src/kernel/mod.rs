//! The write kernel: the one path every write takes beneath the capabilities, whatever its channel (GraphQL, file
//! upload, `cnh-hub import`, the CLI): one transaction, idempotency keys and their replay, expected versions
//! (checked by each capability inside the transaction), submission receipts, the hash-chained audit trail, the
//! reconciliation hook (the touched regions recomputed before commit), commit, durability, then the new reconciled
//! state installed and its events sent. See ARCHITECTURE.md for the walk of one write.

pub mod audit_chain;
pub mod audit_log;
pub mod outbox;
pub mod receipts;
pub mod retention;
pub mod write;
