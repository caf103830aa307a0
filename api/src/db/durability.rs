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
//! ignored unless someone decodes the WAL logically. Barriers run on connections of their own (the write lane's pool
//! is held by writers queued for their regions' locks), several at once: PostgreSQL flushes concurrent commits
//! together (one flush covers every commit recorded before it), where barriers run one at a time would make a write
//! that commits during one wait for the next. Where the function may not be called (a restricted role),
//! `Barrier::open` fails its probe and writes commit synchronously, as before.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};

/// The durability barrier of one hub's PostgreSQL writes.
pub struct Barrier {
    db: DatabaseConnection,
}

/// The barrier's connections: as many as the write lane's, so that no write waits for one.
const CONNECTIONS: u32 = 4;

/// The statement whose synchronous commit flushes the WAL past every commit recorded before it.
fn barrier_statement() -> Statement {
    Statement::from_string(DatabaseBackend::Postgres, "SELECT pg_logical_emit_message(true, 'cnh-hub', '')")
}

impl Barrier {
    /// On PostgreSQL, a barrier on connections of its own to `url`, if this role may run it; None elsewhere (SQLite
    /// has one writer, whose commits are as durable as its WAL setting makes them: `db::connect_pool`).
    pub async fn open(url: &str) -> Option<Barrier> {
        if super::is_sqlite(url) {
            return None;
        }
        let db = match super::connect_write_pool(url, CONNECTIONS).await {
            Ok(db) => db,
            Err(err) => {
                tracing::warn!(error = %err, "no connection for the durability barrier: writes commit synchronously");
                return None;
            }
        };
        if db.get_database_backend() != DatabaseBackend::Postgres {
            return None;
        }
        match db.execute_raw(barrier_statement()).await {
            Ok(_) => Some(Barrier { db }),
            Err(err) => {
                tracing::warn!(error = %err, "no durability barrier (pg_logical_emit_message): writes commit synchronously");
                None
            }
        }
    }

    /// The barrier's pool, for the connection figures (`/metrics`).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Returns once every commit that returned before the call is on disk.
    ///
    /// A pooled connection is not pinged before each use (`db::connect_write_pool`): one the server or the network dropped
    /// since its last barrier fails, and is discarded. The barrier is then run again on another (a fresh barrier
    /// covers every commit before it just as well), up to once per pooled connection: a store really out of reach
    /// fails each time, and the write is refused as retryable.
    pub async fn wait_durable(&self) -> Result<(), DbErr> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.db.execute_raw(barrier_statement()).await {
                Ok(_) => return Ok(()),
                Err(err)
                    if attempts <= CONNECTIONS as usize
                        && crate::error::classify(&err) == crate::error::DbFailure::Unavailable =>
                {
                    tracing::info!(error = %err, "durability barrier on a lost connection: once more on another");
                }
                Err(err) => return Err(err),
            }
        }
    }
}
