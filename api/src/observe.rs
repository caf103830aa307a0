//! What an operator sees of the hub: a request id on every request (in its log lines, its answer's `x-request-id`
//! header and the `extensions.requestId` of every error) and the metrics served at `GET /metrics` in Prometheus'
//! text format.
//!
//! It sits beneath every layer, as `tracing` does: anything may count, and nothing here knows a capability. The
//! registry is one per process (instances behind a load balancer are scraped one by one).

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// The id of the request the current task serves, if any.
pub fn request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// Runs `future` as the request `id`: [`request_id`] answers it inside.
pub async fn with_request_id<F: Future>(id: Arc<str>, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// The id a request goes by: the caller's own `x-request-id` when it is a short token (so that a gateway's id is
/// kept end to end), else a new one (32 hexadecimal digits).
pub fn choose_request_id(given: Option<&str>) -> Arc<str> {
    match given {
        Some(id)
            if (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            Arc::from(id)
        }
        _ => {
            // A random prefix drawn once per process and a counter: unique across instances and restarts without a
            // system call per request (a UUID per request asked the kernel for randomness each time).
            static PREFIX: LazyLock<String> =
                LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Written by hand: `format!` was a visible share of the smallest requests.
            let mut id = [0u8; 32];
            id[..16].copy_from_slice(PREFIX.as_bytes());
            for (i, digit) in id[16..].iter_mut().enumerate() {
                *digit = b"0123456789abcdef"[(n >> (60 - 4 * i) & 0xf) as usize];
            }
            Arc::from(std::str::from_utf8(&id).unwrap_or_default())
        }
    }
}

/// Most distinct operation names kept as labels; the others are counted as `other`, so that clients naming their
/// operations freely cannot grow the metrics without bound.
const MAX_OPERATION_NAMES: usize = 200;

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route and status.
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// GraphQL operations by operation name, type and outcome (`ok` or the first error's code).
    pub graphql_operations: IntCounterVec,
    pub graphql_duration: HistogramVec,
    /// Recomputation of a region's reconciled state by a write.
    pub recompute_duration: Histogram,
    /// How long a write holds its region's lock: from the generation's bump to the commit. The region's writers
    /// queue for it one after the other, so it bounds one region's writes per second.
    pub region_lock_held: Histogram,
    /// Writes that reconciled before their region's lock (`reconciled::speculation`), by outcome: `landed`, `missed`
    /// (the region's row had changed: recomputed under the lock), `declined` (could not speculate).
    pub speculative_writes: IntCounterVec,
    pub durability_wait: Histogram,
    /// Co-financing events delivered to subscribers.
    pub events_delivered: IntCounter,
    /// Webhook delivery attempts, by outcome (delivered, failed).
    pub webhook_deliveries: IntCounterVec,
    /// Pulls of registered sources, by outcome (accepted, unchanged, not_modified, rejected, failed).
    pub pulls: IntCounterVec,
    /// Rows deleted past their keeping (`kernel::retention`), by table.
    pub retention_deleted: IntCounterVec,
    /// Tokens refused, by reason.
    pub auth_failures: IntCounterVec,
    /// Requests refused by a rate limit, by kind of budget.
    pub rate_limited: IntCounterVec,
    /// Database connections by pool and state (in use, idle).
    pub db_connections: IntGaugeVec,
    /// Transactions waiting for a pooled connection (sqlx does not count its waiters, so the hub counts its own).
    pub db_waiting: IntGauge,
    /// Time to begin a transaction: the wait for a pooled connection, then BEGIN.
    pub db_begin_duration: Histogram,
    /// Mutations running or waiting for their turn on the write lane.
    pub writes_in_flight: IntGauge,
    /// 1 while the store answers its health check.
    /// Queries answered by the fast read path (`graphql::fast`).
    pub fast_reads: IntCounter,
    pub store_up: IntGauge,
    operation_names: Mutex<HashSet<String>>,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
            registry.register(Box::new(collector.clone())).expect("each metric is registered once");
            collector
        }
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            register(&registry, HistogramVec::new(opts, labels).expect("valid metric"))
        };
        Metrics {
            http_requests: counter(
                "cnh_http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            http_duration: histogram("cnh_http_request_duration_seconds", "HTTP request latency by route", &["route"]),
            graphql_operations: counter(
                "cnh_graphql_operations_total",
                "GraphQL operations by name, type and outcome (ok, or the first error's extensions.code)",
                &["operation", "type", "outcome"],
            ),
            graphql_duration: histogram(
                "cnh_graphql_operation_duration_seconds",
                "GraphQL operation latency by type",
                &["type"],
            ),
            recompute_duration: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "cnh_reconciliation_recompute_seconds",
                        "Recomputation of a region's reconciled state by a write",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            region_lock_held: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "cnh_write_region_lock_held_seconds",
                        "How long a write holds its region's lock, from the generation's bump to the commit",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            speculative_writes: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "cnh_write_speculation_total",
                        "Writes that reconciled their region before taking its lock, by outcome",
                    ),
                    &["outcome"],
                )
                .expect("valid metric"),
            ),
            durability_wait: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "cnh_write_durability_wait_seconds",
                        "How long a write, committed asynchronously, waited for the disk before being acknowledged",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            events_delivered: register(
                &registry,
                IntCounter::new("cnh_events_delivered_total", "Co-financing events delivered to subscribers")
                    .expect("valid metric"),
            ),
            webhook_deliveries: counter(
                "cnh_webhook_deliveries_total",
                "Webhook delivery attempts by outcome (delivered, failed)",
                &["outcome"],
            ),
            pulls: counter(
                "cnh_pulls_total",
                "Pulls of registered sources by outcome (accepted, unchanged, not_modified, rejected, failed)",
                &["outcome"],
            ),
            retention_deleted: counter(
                "cnh_retention_deleted_total",
                "Rows deleted past their keeping (CNH_RETENTION_DAYS), by table",
                &["table"],
            ),
            auth_failures: counter("cnh_auth_failures_total", "Tokens refused, by reason", &["reason"]),
            rate_limited: counter("cnh_rate_limited_total", "Requests refused by a rate limit, by budget", &["budget"]),
            db_connections: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("cnh_db_connections", "Database connections by pool and state"),
                    &["pool", "state"],
                )
                .expect("valid metric"),
            ),
            db_waiting: register(
                &registry,
                IntGauge::new("cnh_db_pool_waiting", "Transactions waiting for a pooled database connection")
                    .expect("valid metric"),
            ),
            db_begin_duration: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "cnh_db_begin_seconds",
                        "Time to begin a transaction: the wait for a pooled connection, then BEGIN",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            writes_in_flight: register(
                &registry,
                IntGauge::new("cnh_writes_in_flight", "Mutations running or waiting for their turn")
                    .expect("valid metric"),
            ),
            fast_reads: register(
                &registry,
                IntCounter::new(
                    "cnh_graphql_fast_reads_total",
                    "Queries answered by the fast read path (the others of cnh_graphql_operations_total took the general executor)",
                )
                .expect("valid metric"),
            ),
            store_up: register(
                &registry,
                IntGauge::new("cnh_store_up", "1 while the store answers its health check").expect("valid metric"),
            ),
            operation_names: Mutex::default(),
            registry,
        }
    }

    /// The label of an operation name: itself while fewer than [`MAX_OPERATION_NAMES`] are known, else `other`.
    pub fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|n| !n.is_empty()) else { return "anonymous".to_owned() };
        let mut known = self.operation_names.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(name) {
            return name.to_owned();
        }
        if known.len() < MAX_OPERATION_NAMES {
            known.insert(name.to_owned());
            return name.to_owned();
        }
        "other".to_owned()
    }

    /// A GraphQL operation that ended.
    pub fn graphql(&self, operation: &str, kind: &str, outcome: &str, elapsed: Duration) {
        self.graphql_operations.with_label_values(&[operation, kind, outcome]).inc();
        self.graphql_duration.with_label_values(&[kind]).observe(elapsed.as_secs_f64());
    }

    /// The metrics in Prometheus' text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut text = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::error!(error = %err, "metrics could not be written");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

/// Counts a write as in flight until dropped.
pub struct WriteInFlight(());

impl WriteInFlight {
    pub fn start() -> WriteInFlight {
        METRICS.writes_in_flight.inc();
        WriteInFlight(())
    }
}

impl Drop for WriteInFlight {
    fn drop(&mut self) {
        METRICS.writes_in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane_and_made_otherwise() {
        assert_eq!(&*choose_request_id(Some("gw-123.abc_DEF")), "gw-123.abc_DEF");
        assert_eq!(choose_request_id(None).len(), 32);
        let (a, b) = (choose_request_id(None), choose_request_id(None));
        assert!(a.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{a}");
        assert_eq!(a[..16], b[..16], "one prefix per process");
        let counter = |id: &str| u64::from_str_radix(&id[16..], 16).unwrap();
        assert!(counter(&b) > counter(&a), "{a} then {b}");
        assert_ne!(choose_request_id(None), choose_request_id(None));
        assert_ne!(&*choose_request_id(Some("a b")), "a b");
        assert_ne!(&*choose_request_id(Some(&"x".repeat(65))), "x".repeat(65));
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        METRICS.graphql("Dashboard", "query", "ok", Duration::from_millis(3));
        let text = METRICS.render();
        assert!(text.contains("# TYPE cnh_graphql_operations_total counter"), "{text}");
        assert!(text.contains(r#"cnh_graphql_operations_total{operation="Dashboard",outcome="ok",type="query"}"#));
        assert!(text.contains("cnh_graphql_operation_duration_seconds_bucket"));
    }

    #[test]
    fn operation_names_are_bounded() {
        let metrics = Metrics::new();
        for i in 0..MAX_OPERATION_NAMES {
            assert_eq!(metrics.operation_label(Some(&format!("Op{i}"))), format!("Op{i}"));
        }
        assert_eq!(metrics.operation_label(Some("OneTooMany")), "other");
        assert_eq!(metrics.operation_label(Some("Op0")), "Op0");
        assert_eq!(metrics.operation_label(None), "anonymous");
    }
}
