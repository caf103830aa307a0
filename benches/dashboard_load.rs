//! Load figures (not a test): `coFinancingStatus` for one region under concurrent load, side by side with a bare
//! axum JSON handler serving a response of the same size, on the same machine, in the same run.
//!
//!     cargo bench --bench dashboard_load                     # SQLite
//!     TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench dashboard_load
//!
//! The hub holds the demo programming (`cnh-hub demo`, scale 1). Clients: CONNECTIONS keep-alive connections in the
//! same process as the servers (so both sides share the machine's cores, for both targets alike), each sending
//! requests back to back for DURATION. Prints throughput, p50 and p99 per target and the ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use api::access::dev::sign;
use api::config::Secret;
use api::{App, Config};
use axum::Json;
use serde_json::{Value, json};

const SECRET: &str = "benchmark-secret-of-the-development-issuer";
const CONNECTIONS: usize = 32;
const DURATION: Duration = Duration::from_secs(10);
const QUERY: &str = r#"{ coFinancingStatus(filter: { regionCode: "84" }, first: 50) { totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { status measure { id reference label departementCode categoryCode solutions plannedInstallation status }
  findings { code severity message } } } } }"#;

struct Figures {
    requests: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

async fn hammer(request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static) -> Figures {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().unwrap();
    let request = Arc::new(request);
    // Warm-up: connections open, caches filled.
    for _ in 0..50 {
        request(&client).send().await.unwrap().bytes().await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, request, stop) = (client.clone(), request.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let response = request(&client).send().await.unwrap();
                assert!(response.status().is_success());
                response.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    tokio::time::sleep(DURATION).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures { requests: latencies.len(), elapsed, p50: at(0.50), p99: at(0.99) }
}

fn print(name: &str, f: &Figures) -> f64 {
    let rps = f.requests as f64 / f.elapsed.as_secs_f64();
    println!(
        "{name:<34} {rps:>10.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.requests
    );
    rps
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    api::access::install_crypto();
    let dir = tempfile::tempdir()?;
    let database_url = match std::env::var("BENCH_DATABASE_URL").or_else(|_| std::env::var("TEST_DATABASE_URL")) {
        Ok(admin) if !admin.is_empty() => {
            let name = format!("cnh_bench_{}", uuid::Uuid::new_v4().simple());
            let db = sea_orm::Database::connect(&admin).await?;
            sea_orm::ConnectionTrait::execute_unprepared(&db, &format!("CREATE DATABASE \"{name}\"")).await?;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()),
    };
    let backend = if database_url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    let mut config = Config::for_database(database_url.clone());
    config.dev_jwt_secret = Some(Secret::new(SECRET));
    // Raw throughput: one client, no quota.
    config.rate_limits = api::http::rate_limits::RateLimits::unlimited();
    let app = App::build(config).await?;
    let catalog = api::territory::service::Catalog::load(app.db()).await?;
    api::demo::load(app.db(), catalog, 1).await?;
    app.forget_reconciled_state();
    let hub = format!("http://{}/graphql", app.local_addr());
    tokio::spawn(async move { app.run_until(std::future::pending()).await });
    let token = sign(SECRET, "ARS-84", false, "bench", Duration::from_secs(3600))?;

    // BENCH_QUERY replaces the query, to see where the time goes (e.g. "{ me { role } }").
    let query = std::env::var("BENCH_QUERY").unwrap_or_else(|_| QUERY.to_owned());
    let body = json!({ "query": query }).to_string();
    let answer: Value = reqwest::Client::new()
        .post(&hub)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await?
        .json()
        .await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    let size = answer.to_string().len();

    // The bare handler: the same JSON value, serialised by axum on each request.
    let same = Arc::new(answer);
    let bare = axum::Router::new().route(
        "/json",
        axum::routing::post(move || {
            let same = same.clone();
            async move { Json(same.as_ref().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bare_url = format!("http://{}/json", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, bare).await });

    println!(
        "{} ({size} bytes), {CONNECTIONS} connections, {DURATION:?} each, {backend}",
        if query == QUERY { "coFinancingStatus, region 84, first 50" } else { query.as_str() }
    );
    let bare_figures = hammer(move |c| c.post(&bare_url).header("content-type", "application/json").body("{}")).await;
    let bare_rps = print("bare axum JSON handler", &bare_figures);
    let hub_figures =
        hammer(move |c| c.post(&hub).bearer_auth(&token).header("content-type", "application/json").body(body.clone()))
            .await;
    let hub_rps = print("cnh-hub coFinancingStatus", &hub_figures);
    println!("ratio hub / bare: {:.2} (target ≥ 0.25)", hub_rps / bare_rps);
    Ok(())
}
