//! Connecting to the store (SQLite or PostgreSQL), applying migrations and loading the reference data.

pub mod durability;

use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait, reference};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("cannot open the database {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot apply the migrations to {url}: {reason}")]
    Migrate { url: String, reason: String },
    #[error("cannot load the reference data into {url}: {source}")]
    Reference { url: String, source: reference::ReferenceError },
}

/// The most useful single line of a database error: sqlx's own message, without the debug dump.
fn reason(err: &DbErr) -> String {
    let text = err.to_string();
    // sea-orm prefixes its own wrappers ("Connection Error: ..."); keep them, flatten new lines.
    text.replace('\n', " ")
}

/// Counts the SQL statements run through a connection and its clones (set before it is cloned): how tests prove that
/// a read or an authentication touches no database, and a figure for the operator.
pub fn count_statements(db: &mut DatabaseConnection) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    count_statements_into(db, counter.clone());
    counter
}

/// Counts a connection's statements into an existing counter (the write lane's pool into the hub's).
pub fn count_statements_into(db: &mut DatabaseConnection, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
}

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbSetupError> {
    connect_pool(url, None).await
}

/// Whether `url` names the embedded SQLite store.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// A pool of at most `max_connections` (the store's default when None).
pub async fn connect_pool(url: &str, max_connections: Option<u32>) -> Result<DatabaseConnection, DbSetupError> {
    open_pool(url, max_connections, false).await
}

/// As `connect_pool`, for the pools every write uses (the write lane's, the durability barrier's) on PostgreSQL: a
/// connection used within the last seconds is not pinged before it is handed out (a round trip per write under
/// load); one idle long enough to have been dropped by the server or a proxy still is. A connection that died while
/// in the pool fails its first statement and is discarded: a write is then refused as retryable with nothing written
/// (its `BEGIN` failed), and the barrier runs again on another connection (`durability::Barrier::wait_durable`).
pub async fn connect_write_pool(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbSetupError> {
    open_pool(url, Some(max_connections), true).await
}

async fn open_pool(url: &str, max_connections: Option<u32>, hot: bool) -> Result<DatabaseConnection, DbSetupError> {
    let mut options = ConnectOptions::new(without_tls_on_loopback(url));
    options.connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(10)).sqlx_logging(false);
    if is_sqlite(url) {
        // One writer at a time in SQLite: a small pool avoids "database is locked" under concurrent writes.
        options.max_connections(max_connections.unwrap_or(4)).min_connections(1);
        // A file does not hang up: no ping (a hop to the connection's thread) before each transaction.
        options.test_before_acquire(false);
        // Write-ahead log: a region loaded on first use reads while a write commits, and a commit appends to the log
        // instead of rewriting a rollback journal. NORMAL is the synchronous level SQLite recommends with WAL: a
        // commit survives the hub's crash; the last ones may not survive a power cut of the machine. The embedded
        // store is the single-machine default; PostgreSQL is the production store.
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
        });
    } else {
        options.max_connections(max_connections.unwrap_or(16));
        if hot {
            options.test_before_acquire_if_idle_for(Duration::from_secs(5));
        }
    }
    let db = Database::connect(options)
        .await
        .map_err(|e| DbSetupError::Connect { url: redact_url(url), reason: reason(&e) })?;
    // Database::connect is lazy for some drivers: make sure the store answers now, not at the first request.
    db.ping().await.map_err(|e| DbSetupError::Connect { url: redact_url(url), reason: reason(&e) })?;
    Ok(db)
}

/// Applies pending migrations, then (re)loads the shipped reference data.
pub async fn prepare(db: &DatabaseConnection, url: &str) -> Result<reference::LoadReport, DbSetupError> {
    Migrator::up(db, None).await.map_err(|e| DbSetupError::Migrate { url: redact_url(url), reason: reason(&e) })?;
    reference::load(db).await.map_err(|source| DbSetupError::Reference { url: redact_url(url), source })
}

/// A PostgreSQL URL to this machine (`localhost`, `127.0.0.1`, `[::1]`) without an `sslmode` gets
/// `sslmode=disable`: the driver's default (`prefer`) would encrypt every message of a connection that never leaves
/// the machine, a quarter of the write lane's CPU under load (BENCHMARKS.md). Any other URL, or one that says its
/// `sslmode`, is kept as it is.
pub fn without_tls_on_loopback(url: &str) -> String {
    let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) else {
        return url.to_owned();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let says_sslmode = query.split('&').any(|pair| pair.starts_with("sslmode="));
    if !matches!(host, "localhost" | "127.0.0.1" | "::1") || says_sslmode {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// Hides the password of a database URL before it is printed.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Awaits `begin` (the start of a transaction, which first waits for a pooled connection), counted in
/// `cnh_db_pool_waiting` while it waits and timed in `cnh_db_begin_seconds`.
pub async fn counted_begin<F: std::future::Future>(begin: F) -> F::Output {
    /// Why a guard: a request cut off while it waits drops the future, and must leave the gauge too.
    struct Waiting(std::time::Instant);
    impl Drop for Waiting {
        fn drop(&mut self) {
            let metrics = &crate::observe::METRICS;
            metrics.db_waiting.dec();
            metrics.db_begin_duration.observe(self.0.elapsed().as_secs_f64());
        }
    }
    crate::observe::METRICS.db_waiting.inc();
    let _waiting = Waiting(std::time::Instant::now());
    begin.await
}

/// (open connections, idle ones) of a pool.
pub fn pool_figures(db: &DatabaseConnection) -> (usize, usize) {
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size() as usize, pool.num_idle())
        }
        sea_orm::DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size() as usize, pool.num_idle())
        }
        _ => (0, 0),
    }
}

/// Whether the store answers now, as a flag every request can read without touching the store.
///
/// Why: while PostgreSQL is unreachable, a write would wait for a pooled connection until the pool's timeout, and
/// readiness would say nothing. A watcher pings the store on a connection of its own (so a pool busy with writes is
/// not mistaken for an outage) every [`StoreHealth::PERIOD`], each ping bounded by [`StoreHealth::PING_TIMEOUT`]:
/// an outage is seen within a second, writes and `/readyz` then answer `SERVICE_UNAVAILABLE` at once, and the flag
/// comes back by itself when a ping succeeds again. Reads served from memory do not look at it.
#[derive(Debug, Default)]
pub struct StoreHealth {
    down: std::sync::atomic::AtomicBool,
}

impl StoreHealth {
    pub const PERIOD: Duration = Duration::from_millis(250);
    pub const PING_TIMEOUT: Duration = Duration::from_millis(700);

    pub fn is_up(&self) -> bool {
        !self.down.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set(&self, up: bool) {
        let was_up = !self.down.swap(!up, std::sync::atomic::Ordering::AcqRel);
        match (was_up, up) {
            (true, false) => tracing::error!("the store stopped answering: writes and readiness now answer 503"),
            (false, true) => tracing::info!("the store answers again"),
            _ => {}
        }
    }

    /// Watches the store at `url` until the process ends (or `self` is dropped).
    pub fn spawn_watch(self: &Arc<Self>, url: &str) {
        let health = Arc::downgrade(self);
        let mut options = ConnectOptions::new(without_tls_on_loopback(url));
        options
            .max_connections(1)
            .min_connections(0)
            .connect_timeout(Self::PING_TIMEOUT)
            .acquire_timeout(Self::PING_TIMEOUT)
            .sqlx_logging(false);
        tokio::spawn(async move {
            let mut watcher: Option<DatabaseConnection> = None;
            let mut ticks = tokio::time::interval(Self::PERIOD);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(health) = health.upgrade() else { return };
                let answered = tokio::time::timeout(Self::PING_TIMEOUT, async {
                    if watcher.is_none() {
                        watcher = Some(Database::connect(options.clone()).await?);
                    }
                    match &watcher {
                        Some(db) => db.ping().await,
                        None => Ok(()),
                    }
                })
                .await;
                match answered {
                    Ok(Ok(())) => health.set(true),
                    Ok(Err(_)) | Err(_) => {
                        // A connection that failed once is not trusted again: the next tick opens a new one.
                        watcher = None;
                        health.set(false);
                    }
                }
            }
        });
    }
}

/// Rows [`claim_due`] claims: those of `table` where `due` holds, whose `next_column` time (ms since the epoch) has
/// come and whose lease (`locked_until`, `locked_by`) is free, oldest due first.
pub struct DueRows<'a> {
    pub table: &'a str,
    /// A fixed SQL condition (no user input): `state = 'PENDING'`.
    pub due: &'a str,
    pub next_column: &'a str,
    pub returning: &'a str,
}

/// Claims up to `limit` due rows for `instance` until `lease_until` (ms) and returns them: the work queues of the
/// webhook dispatcher and the puller. On PostgreSQL the rows another instance is claiming are skipped, not waited
/// for (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time and no row locks: there, the hub runs as a
/// single instance.
pub async fn claim_due(
    db: &sea_orm::DatabaseConnection,
    rows: &DueRows<'_>,
    instance: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    let backend = db.get_database_backend();
    // Numbered parameters, `$n` on PostgreSQL and `?n` on SQLite: `now` is used twice.
    let (p, skip_locked) = match backend {
        DatabaseBackend::Postgres => ('$', " FOR UPDATE SKIP LOCKED"),
        _ => ('?', ""),
    };
    let DueRows { table, due, next_column: next, returning } = rows;
    let statement = format!(
        "UPDATE {table} SET locked_until = {p}1, locked_by = {p}2 WHERE id IN (\
         SELECT id FROM {table} WHERE {due} AND {next} <= {p}3 \
         AND (locked_until IS NULL OR locked_until <= {p}3) ORDER BY {next}, id LIMIT {p}4{skip_locked}) \
         RETURNING {returning}"
    );
    let values: Vec<sea_orm::Value> = vec![lease_until.into(), instance.into(), now.into(), limit.into()];
    db.query_all_raw(Statement::from_sql_and_values(backend, statement, values)).await
}

/// Two data-modifying statements as one on PostgreSQL: the first runs as a common table expression of the second
/// (`WITH first_ AS (…) second`), so that the write path spends one round trip, not two, under its locks. Each
/// statement's own placeholders are kept, the second's renumbered after the first's. Both run, whatever the second
/// reads: PostgreSQL executes a data-modifying CTE to completion even when nothing refers to it.
pub fn chained(first: sea_orm::Statement, second: sea_orm::Statement) -> sea_orm::Statement {
    chained_all(vec![first], second)
}

/// Data-modifying statements as one on PostgreSQL: each of `first` as a common table expression (`WITH s0_ AS (…),
/// s1_ AS (…) last`), in order, then `last`, whose rows come back. None of them may itself begin with `WITH` (a
/// data-modifying CTE must stand at the top level); sea-query's inserts, updates and upserts do not.
pub fn chained_all(first: Vec<sea_orm::Statement>, last: sea_orm::Statement) -> sea_orm::Statement {
    chained_named(first, Vec::new(), last)
}

/// As `chained_all`, with `named` common table expressions after those of `first`, under the names given, which
/// they and `last` may read (`head_ AS (SELECT … FOR UPDATE)`, then an insert from it).
pub fn chained_named(
    first: Vec<sea_orm::Statement>,
    named: Vec<(&str, sea_orm::Statement)>,
    last: sea_orm::Statement,
) -> sea_orm::Statement {
    let mut values = Vec::new();
    let mut ctes = Vec::with_capacity(first.len() + named.len());
    let names = (0..first.len()).map(|i| if i == 0 { "first_".to_owned() } else { format!("s{i}_") });
    let all = names.zip(first).chain(named.into_iter().map(|(name, statement)| (name.to_owned(), statement)));
    for (name, statement) in all {
        let offset = values.len();
        ctes.push(format!("{name} AS ({})", renumber_placeholders(&statement.sql, offset)));
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    let offset = values.len();
    values.extend(last.values.map(|v| v.0).unwrap_or_default());
    let sql = if ctes.is_empty() {
        last.sql
    } else {
        format!("WITH {} {}", ctes.join(", "), renumber_placeholders(&last.sql, offset))
    };
    sea_orm::Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

/// `$n` → `$(n + offset)`, outside quoted literals and identifiers.
fn renumber_placeholders(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                let n: usize = digits.parse().unwrap_or(0);
                out.push('$');
                out.push_str(&(n + offset).to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod chained_tests {
    use super::*;

    #[test]
    fn loopback_postgres_urls_without_sslmode_do_without_tls() {
        use super::without_tls_on_loopback as url;
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
        );
        assert_eq!(
            url("postgresql://u:p@localhost/db?application_name=x"),
            "postgresql://u:p@localhost/db?application_name=x&sslmode=disable"
        );
        assert_eq!(url("postgres://u@[::1]:5433/db"), "postgres://u@[::1]:5433/db?sslmode=disable");
        for kept in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@db.example.org/db",
            "postgres://u@127.0.0.10/db",
            "sqlite://hub.db?mode=rwc",
        ] {
            assert_eq!(url(kept), kept);
        }
    }

    #[test]
    fn the_second_statement_s_placeholders_follow_the_first_s() {
        let first = sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "INSERT INTO a (x, y) VALUES ($1, $2)",
            [1.into(), "$1".into()],
        );
        let second = sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            r#"UPDATE "b$1" SET z = $1, w = '$2' WHERE id = $12"#,
            [3.into()],
        );
        let chained = chained(first, second);
        assert_eq!(
            chained.sql,
            r#"WITH first_ AS (INSERT INTO a (x, y) VALUES ($1, $2)) UPDATE "b$1" SET z = $3, w = '$2' WHERE id = $14"#
        );
        assert_eq!(chained.values.unwrap().0.len(), 3);
    }

    #[test]
    fn several_statements_chain_in_order_each_s_placeholders_after_the_previous_ones() {
        let statement = |sql: &str, values: Vec<sea_orm::Value>| {
            sea_orm::Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
        };
        let chained = chained_all(
            vec![
                statement("INSERT INTO a VALUES ($1)", vec![1.into()]),
                statement("INSERT INTO b VALUES ($1, $2)", vec![2.into(), 3.into()]),
            ],
            statement("UPDATE c SET x = $1 RETURNING x", vec![4.into()]),
        );
        assert_eq!(
            chained.sql,
            "WITH first_ AS (INSERT INTO a VALUES ($1)), s1_ AS (INSERT INTO b VALUES ($2, $3)) UPDATE c SET x = $4 RETURNING x"
        );
        assert_eq!(chained.values.unwrap().0, vec![1.into(), 2.into(), 3.into(), 4.into()]);
        let alone = chained_all(Vec::new(), statement("SELECT $1", vec![5.into()]));
        assert_eq!(alone.sql, "SELECT $1");
    }
}
