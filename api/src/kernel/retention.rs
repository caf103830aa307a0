//! What the hub keeps of its own traffic, and for how long. Webhook deliveries that have ended (delivered, or dead
//! and not replayed) and the runs of pull sources are kept `CNH_RETENTION_DAYS` (90 by default: an operator can
//! still see what was sent and fetched last quarter), the token ids seen once their token has expired a day ago
//! (revoking an expired token changes nothing). Without it those tables grow with every write and every pull for as
//! long as the hub runs. What the hub must keep — measures, commitments, their revisions, submissions and their
//! receipts, the audit trail, idempotency records — is never deleted here.
//!
//! Each instance sweeps every hour; deletes are idempotent, so instances sweeping at once only repeat each other.
//! Rows go by batches, each its own short statement, so that a first sweep of a large backlog never holds a long
//! lock on a table the dispatcher and the puller write.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entities::{pull_run, seen_token, webhook_delivery};
use sea_orm::sea_query::{Query, SelectStatement};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::outbox::{BackgroundTask, state};

/// Default of `CNH_RETENTION_DAYS`.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// Rows deleted per statement.
const BATCH: u64 = 5_000;

/// How often an instance sweeps.
const EVERY: Duration = Duration::from_secs(3600);

/// Seen token ids are kept this long after their token expired.
const SEEN_AFTER_EXPIRY: chrono::Duration = chrono::Duration::days(1);

/// What one sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub webhook_deliveries: u64,
    pub pull_runs: u64,
    pub seen_tokens: u64,
}

/// Deletes what is past its keeping as of `now`.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>, days: u32) -> Result<Swept, DbErr> {
    let cutoff = (now - chrono::Duration::days(i64::from(days))).fixed_offset();
    let ended = Query::select()
        .column(webhook_delivery::Column::Id)
        .from(webhook_delivery::Entity)
        .and_where(webhook_delivery::Column::State.is_in([state::DELIVERED, state::DEAD]))
        .and_where(webhook_delivery::Column::CreatedAt.lt(cutoff))
        .to_owned();
    let webhook_deliveries = in_batches(ended, |batch| {
        webhook_delivery::Entity::delete_many().filter(webhook_delivery::Column::Id.in_subquery(batch)).exec(db)
    })
    .await?;
    let old_runs = Query::select()
        .column(pull_run::Column::Id)
        .from(pull_run::Entity)
        .and_where(pull_run::Column::FinishedAt.lt(cutoff))
        .to_owned();
    let pull_runs = in_batches(old_runs, |batch| {
        pull_run::Entity::delete_many().filter(pull_run::Column::Id.in_subquery(batch)).exec(db)
    })
    .await?;
    let expired = Query::select()
        .column(seen_token::Column::TokenId)
        .from(seen_token::Entity)
        .and_where(seen_token::Column::ExpiresAt.lt((now - SEEN_AFTER_EXPIRY).fixed_offset()))
        .to_owned();
    let seen_tokens = in_batches(expired, |batch| {
        seen_token::Entity::delete_many().filter(seen_token::Column::TokenId.in_subquery(batch)).exec(db)
    })
    .await?;
    Ok(Swept { webhook_deliveries, pull_runs, seen_tokens })
}

/// Runs `delete` over `select` limited to `BATCH` rows until a batch comes back short; the rows deleted.
async fn in_batches<F, Fut>(select: SelectStatement, mut delete: F) -> Result<u64, DbErr>
where
    F: FnMut(SelectStatement) -> Fut,
    Fut: std::future::Future<Output = Result<sea_orm::DeleteResult, DbErr>>,
{
    let mut total = 0;
    loop {
        let deleted = delete(select.clone().limit(BATCH).to_owned()).await?.rows_affected;
        total += deleted;
        if deleted < BATCH {
            return Ok(total);
        }
    }
}

/// Starts this instance's sweeper: at start, then every hour. Dropping what it returns stops it.
pub fn spawn(db: DatabaseConnection, days: u32) -> BackgroundTask {
    let task = tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match sweep(&db, Utc::now(), days).await {
                Ok(swept) => {
                    let metrics = &crate::observe::METRICS;
                    for (table, n) in [
                        ("webhook_delivery", swept.webhook_deliveries),
                        ("pull_run", swept.pull_runs),
                        ("seen_token", swept.seen_tokens),
                    ] {
                        metrics.retention_deleted.with_label_values(&[table]).inc_by(n);
                    }
                    if swept != Swept::default() {
                        tracing::info!(?swept, days, "rows past their keeping deleted");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "retention sweep failed; trying again in an hour"),
            }
        }
    });
    BackgroundTask::new(task)
}
