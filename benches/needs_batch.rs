//! Load figure (not a test): one MDPH submits 50 000 needs indicators in one batch, over HTTP to a real hub, on
//! SQLite and, when BENCH_DATABASE_URL (or TEST_DATABASE_URL) points to PostgreSQL, on PostgreSQL.
//!
//!     cargo bench --bench needs_batch
//!     TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench needs_batch
//!
//! Prints, per backend and run, the wall time of the whole request (JSON parsing, validation, one transaction of
//! multi-row inserts, audit) as the MDPH's system sees it.

use std::time::{Duration, Instant};

use api::access::dev::sign;
use api::config::Secret;
use api::{App, Config};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

const SECRET: &str = "benchmark-secret-of-the-development-issuer";
const ROWS: usize = 50_000;
const RUNS: usize = 3;

fn batch(reference_date: &str) -> Value {
    let orientations = ["7.1", "7.6", "7.7", "7.8", "11.5", "11.6", "13.1", "13.2", "13.3", "13.4", "13.5", "14.0"];
    let indicators = [
        "ORIENTATIONS_VALIDES",
        "EN_ATTENTE_ADMISSION",
        "ADMIS_NON_ENTRES",
        "AUCUNE_DEMARCHE",
        "ADMISSION_IMPOSSIBLE",
        "ADULTES_CRETON",
        "DEPARTS_BELGIQUE",
        "PAG",
    ];
    let mut rows = Vec::with_capacity(ROWS);
    'outer: for low in 0..100 {
        for width in 0..6 {
            for orientation in orientations {
                for indicator in indicators {
                    rows.push(json!({ "orientationCode": orientation, "ageBand": format!("{low}-{}", low + width),
                        "indicator": indicator, "value": (low * 7 + width * 3) % 50 }));
                    if rows.len() == ROWS {
                        break 'outer;
                    }
                }
            }
        }
    }
    json!({ "departementCode": "69", "referenceDate": reference_date, "indicators": rows })
}

async fn run(label: &str, database_url: String) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::for_database(database_url);
    config.dev_jwt_secret = Some(Secret::new(SECRET));
    // Raw throughput: one client, no quota.
    config.rate_limits = api::http::rate_limits::RateLimits::unlimited();
    let app = App::build(config).await?;
    let url = format!("http://{}/graphql", app.local_addr());
    tokio::spawn(async move {
        let _ = app.run_until(std::future::pending()).await;
    });
    api::access::install_crypto();
    let token = sign(SECRET, "MDPH-69", false, "bench", Duration::from_secs(3600))?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
    let query = "mutation($input: NeedsSubmissionInput!) { submitNeeds(input: $input) { accepted } }";
    for run in 1..=RUNS {
        // Each run replaces the previous picture of the same date: the later runs also move 50 000 rows to the
        // revisions table.
        let body = json!({ "query": query, "variables": { "input": batch("2026-06-30") } }).to_string();
        let started = Instant::now();
        let answer: Value = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?
            .json()
            .await?;
        let elapsed = started.elapsed();
        let accepted = answer["data"]["submitNeeds"]["accepted"].as_i64();
        if accepted != Some(ROWS as i64) {
            return Err(format!(
                "{label}: unexpected answer {}",
                &answer.to_string()[..300.min(answer.to_string().len())]
            )
            .into());
        }
        println!(
            "{label:<10} run {run}: {ROWS} indicators ({:.1} MB of JSON) accepted in {:>7.1} ms",
            body.len() as f64 / 1e6,
            elapsed.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    run("sqlite", format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display())).await?;
    let admin = std::env::var("BENCH_DATABASE_URL").or_else(|_| std::env::var("TEST_DATABASE_URL"));
    match admin {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("cnh_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url).await?;
            admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
            let base = &admin_url[..admin_url.rfind('/').unwrap_or(admin_url.len())];
            let result = run("postgresql", format!("{base}/{name}")).await;
            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
            result?;
        }
        _ => println!("postgresql: skipped (set BENCH_DATABASE_URL or TEST_DATABASE_URL)"),
    }
    Ok(())
}
