//! When a write is durable. On PostgreSQL, a write that moves a region's generation holds the region's lock (and the
//! audit chain's head) until its commit returns; a synchronous commit returns once its WAL is flushed to disk, so every
//! writer of the region queued for the flush too. Such a write commits asynchronously instead (the locks go as soon as
//! the commit is recorded) and is acknowledged only after a *durability barrier*: a tiny transaction, committed
//! synchronously, whose commit flushes the WAL up to its own record and therefore past the write's (the WAL is flushed
//! in order). What a client is told was written is on disk, as before; the region's next writer no longer waits for
//! the disk. Readers of this instance see the write once it is durable (`Reconciled::hand_over`, then `install`).
//!
//! The barrier is `pg_logical_emit_message(true, …)`: it assigns a transaction id and writes a WAL record, which is
//! what makes PostgreSQL flush at commit (a transaction that writes no WAL commits without flushing). The message is
//! ignored unless someone decodes the WAL logically. Where the function may not be called (a restricted role), the
//! write lane's probe at start-up fails and writes commit synchronously, as before.

use std::sync::atomic::{AtomicU8, Ordering};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};

const UNKNOWN: u8 = 0;
const AVAILABLE: u8 = 1;
const UNAVAILABLE: u8 = 2;

/// Whether this process's PostgreSQL writes may commit asynchronously (the probe passed).
static BARRIER: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The statement whose synchronous commit flushes the WAL past every commit recorded before it.
fn barrier_statement() -> Statement {
    Statement::from_string(DatabaseBackend::Postgres, "SELECT pg_logical_emit_message(true, 'cnh-hub', '')")
}

/// Tries the barrier once (the write lane does at start-up, on PostgreSQL): writes commit asynchronously only if it
/// works with this role.
pub async fn probe(db: &DatabaseConnection) {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    match db.execute_raw(barrier_statement()).await {
        Ok(_) => BARRIER.store(AVAILABLE, Ordering::Release),
        Err(err) => {
            tracing::warn!(error = %err, "no durability barrier (pg_logical_emit_message): writes commit synchronously");
            BARRIER.store(UNAVAILABLE, Ordering::Release);
        }
    }
}

/// Whether a write on this connection may commit asynchronously and wait for the barrier instead.
pub fn asynchronous_commit(backend: DatabaseBackend) -> bool {
    backend == DatabaseBackend::Postgres && BARRIER.load(Ordering::Acquire) == AVAILABLE
}

/// Returns once every commit recorded before the call is on disk.
pub async fn wait_durable(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_raw(barrier_statement()).await.map(|_| ())
}
