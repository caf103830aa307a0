//! Schema migrations of cnh-hub and the loader of the reference data the project ships (`migration/data/*.csv`).
//!
//! Migrations are append-only (`mYYYYMMDD_HHMMSS_verb_noun.rs`). Reference data is loaded after them, idempotently,
//! on every start: the CSV files are the source, embedded in the binary so a deployed hub needs no data folder.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_reference_tables;
mod m20261123_000002_create_revoked_token;
mod m20261123_000003_create_submission_tables;
mod m20261123_000004_create_reconciliation_state;
mod m20261203_000005_create_seen_token;
mod m20261203_000006_add_measure_commune_and_cofinancer;
mod m20261204_000007_create_webhook_tables;
mod m20261204_000008_create_pull_tables;
mod m20261204_000009_add_pull_source_last_submission;
mod m20261204_000010_create_escalation_tables;
mod m20261204_000011_create_page_session;
mod m20261204_000012_create_steering_figure;
mod m20261205_000013_widen_webhook_secret;
pub mod reference;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_reference_tables::Migration),
            Box::new(m20261123_000002_create_revoked_token::Migration),
            Box::new(m20261123_000003_create_submission_tables::Migration),
            Box::new(m20261123_000004_create_reconciliation_state::Migration),
            Box::new(m20261203_000005_create_seen_token::Migration),
            Box::new(m20261203_000006_add_measure_commune_and_cofinancer::Migration),
            Box::new(m20261204_000007_create_webhook_tables::Migration),
            Box::new(m20261204_000008_create_pull_tables::Migration),
            Box::new(m20261204_000009_add_pull_source_last_submission::Migration),
            Box::new(m20261204_000010_create_escalation_tables::Migration),
            Box::new(m20261204_000011_create_page_session::Migration),
            Box::new(m20261204_000012_create_steering_figure::Migration),
            Box::new(m20261205_000013_widen_webhook_secret::Migration),
        ]
    }
}
