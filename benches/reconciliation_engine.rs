//! Criterion benchmark of the reconciliation engine on the demo programming (`cnh-hub demo`), scale 1 and 10:
//! the full national reconciliation, and what one write recomputes (its region: the largest, Auvergne-Rhône-Alpes),
//! in the engine alone (from scratch, and reusing the untouched measures' outcomes as the live state does) and inside
//! a transaction on SQLite.
//!
//!     cargo bench --bench reconciliation_engine
//!
//! The snapshots are built once per scale from an SQLite file loaded with the demo data.

use std::sync::Arc;

use api::reconciled::engine::{self, Snapshot};
use api::reconciled::live::Reconciled;
use api::reconciled::snapshot as service;
use api::territory::service::Catalog;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// The served binary's allocator (src/main.rs), so that the figures are the hub's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use sea_orm::{DatabaseConnection, TransactionTrait};

struct Fixture {
    db: DatabaseConnection,
    _dir: tempfile::TempDir,
    catalog: Arc<Catalog>,
    national: Snapshot,
    region: Snapshot,
}

const REGION: &str = "84";

fn fixture(runtime: &tokio::runtime::Runtime, scale: usize) -> Fixture {
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
        let db = api::db::connect(&url).await.expect("database");
        api::db::prepare(&db, &url).await.expect("migrations");
        let catalog = Catalog::load(&db).await.expect("catalog");
        let report = api::demo::load(&db, catalog.clone(), scale).await.expect("demo data");
        eprintln!("scale {scale}: {report:?}");
        let territory = Arc::new(service::territory(&catalog));
        let now = chrono::Utc::now();
        let mut parts = Vec::new();
        for r in &catalog.regions {
            parts.push(
                service::load_region(&db, &catalog, territory.clone(), &r.code, now).await.expect("region").snapshot,
            );
        }
        let mut national = service::merge(parts);
        national.annex = Some(api::territory::service::annex_figures(&db, &catalog).await.expect("annex"));
        let region = service::load_region(&db, &catalog, territory, REGION, now).await.expect("region").snapshot;
        Fixture { db, _dir: dir, catalog, national, region }
    })
}

fn engine(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("reconciliation");
    group.sample_size(20);
    for scale in [1, 10] {
        let f = fixture(&runtime, scale);
        eprintln!(
            "scale {scale}: national snapshot {} measures, {} commitments; region {REGION}: {} measures",
            f.national.measures.len(),
            f.national.commitments.len(),
            f.region.measures.len()
        );
        group.bench_with_input(BenchmarkId::new("national_engine", scale), &f.national, |b, s| {
            b.iter(|| engine::reconcile(s))
        });
        group.bench_with_input(BenchmarkId::new("one_write_region_engine", scale), &f.region, |b, s| {
            b.iter(|| engine::reconcile(s))
        });
        // What a write runs in the engine: the region again, each untouched measure's outcome kept from the last
        // reconciliation, one measure computed anew, the region-wide sums and groupings recomputed.
        let kept = engine::reconcile_reusing(&f.region, None, |_, _| None);
        group.bench_with_input(BenchmarkId::new("one_write_region_engine_incremental", scale), &f.region, |b, s| {
            b.iter(|| {
                let previous = engine::Previous {
                    sums: &kept.sums,
                    duplicates: &kept.duplicates,
                    coverage: &kept.coverage,
                    replaced: vec![(&s.measures[0], &kept.outcomes[0])],
                };
                engine::reconcile_reusing(s, Some(previous), |i, _| (i != 0).then(|| kept.outcomes[i].clone()))
            })
        });
        let kept_national = engine::reconcile_reusing(&f.national, None, |_, _| None);
        group.bench_with_input(BenchmarkId::new("national_engine_incremental", scale), &f.national, |b, s| {
            b.iter(|| {
                let previous = engine::Previous {
                    sums: &kept_national.sums,
                    duplicates: &kept_national.duplicates,
                    coverage: &kept_national.coverage,
                    replaced: vec![(&s.measures[0], &kept_national.outcomes[0])],
                };
                engine::reconcile_reusing(s, Some(previous), |i, _| (i != 0).then(|| kept_national.outcomes[i].clone()))
            })
        });
        let territory = Arc::new(service::territory(&f.catalog));
        group.bench_function(BenchmarkId::new("region_load_sqlite", scale), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    service::load_region(&f.db, &f.catalog, territory.clone(), REGION, chrono::Utc::now())
                        .await
                        .unwrap()
                })
            })
        });
        // What a write adds to its transaction: reload the region, reconcile, diff and store the changed statuses.
        // The state held in memory, as the first write (or read) leaves it; then each iteration patches one measure
        // into it, in a transaction rolled back (so the state's generation stays the one in memory).
        let reconciled = Reconciled::new(f.db.clone(), f.catalog.clone());
        runtime.block_on(reconciled.region(REGION)).unwrap();
        let touched: std::collections::BTreeSet<String> = [f.region.measures[0].id.clone()].into();
        group.bench_function(BenchmarkId::new("one_write_recompute_in_transaction_sqlite", scale), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let txn = f.db.begin().await.unwrap();
                    let recomputed = reconciled.recompute_in(&txn, REGION, &touched).await.unwrap();
                    txn.rollback().await.unwrap();
                    recomputed
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
