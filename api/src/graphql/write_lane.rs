//! The write lane: mutations run on their own runtime threads, with their own database pool.
//!
//! Why: a write holds its region's lock (and, briefly, the audit chain's head) across a dozen round trips to the
//! database. On the main runtime, each of those round trips ends by queueing the write's task behind every read
//! being answered (a read of the reconciled state runs for a millisecond or two without yielding), so under a read
//! load the lock was held for the queueing time, not for the work, and the region's other writers waited for it.
//! On its own thread, with connections registered on its own I/O driver, a write resumes as soon as the database
//! answers; the operating system shares the cores between that thread and the readers.

use sea_orm::DatabaseConnection;
use tokio::runtime::{Handle, Runtime};

use std::sync::Arc;

use crate::db::durability::Barrier;
use crate::db::{self, DbSetupError};

/// The connections a write lane keeps at most on PostgreSQL. A region's writes overlap until their region's lock
/// (they reconcile before it: `reconciled::speculation`), so each writer in flight needs its own; but each is also a
/// PostgreSQL process competing for the cores (BENCHMARKS.md, 4 and 8 measured).
const WRITE_CONNECTIONS: u32 = 6;
/// On SQLite, one: the file has one writer, so concurrent write transactions would wait in SQLite's busy handler,
/// which sleeps and polls (seconds under load, then "database is locked"); they queue for the lane's one
/// connection instead, first come first served.
const SQLITE_WRITE_CONNECTIONS: u32 = 1;

pub struct WriteLane {
    runtime: Option<Runtime>,
    handle: Handle,
    db: DatabaseConnection,
    /// The durability barrier of the lane's writes (PostgreSQL), on a connection of its own.
    barrier: Option<Arc<Barrier>>,
}

impl WriteLane {
    /// Starts the lane's thread and opens its pool from it (so that its connections belong to its I/O driver).
    pub async fn start(url: &str) -> Result<WriteLane, DbSetupError> {
        let failed = |e: String| DbSetupError::Connect { url: db::redact_url(url), reason: format!("write lane: {e}") };
        // Two threads: a write holding its region's lock resumes on one while the other runs the next writes' work
        // before the lock (parsing, validation, their first statements), instead of queueing behind it.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cnh-writes")
            .enable_all()
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let handle = runtime.handle().clone();
        let owned = url.to_owned();
        let connections = if db::is_sqlite(url) { SQLITE_WRITE_CONNECTIONS } else { WRITE_CONNECTIONS };
        let (db, barrier) = handle
            .spawn(async move {
                let db = db::connect_write_pool(&owned, connections).await?;
                // On PostgreSQL, the lane's writes commit asynchronously and wait for this (`db::durability`).
                let barrier = Barrier::open(&owned).await.map(Arc::new);
                Ok::<_, DbSetupError>((db, barrier))
            })
            .await
            .map_err(|e| failed(e.to_string()))??;
        Ok(WriteLane { runtime: Some(runtime), handle, db, barrier })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn db_mut(&mut self) -> &mut DatabaseConnection {
        &mut self.db
    }

    pub fn barrier(&self) -> Option<Arc<Barrier>> {
        self.barrier.clone()
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for WriteLane {
    fn drop(&mut self) {
        // A runtime may not be dropped from an asynchronous context (tests drop hubs from theirs).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
