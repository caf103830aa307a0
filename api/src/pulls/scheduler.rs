//! Pulls due sources: claimed a few at a time under a lease, so that several hub instances on one PostgreSQL never
//! pull one source at once (`FOR UPDATE SKIP LOCKED`) and a source whose instance died is pulled again once its
//! lease lapses. Each pull is recorded as a run; what it brings goes through the same write as a pushed submission.
//! A source failing `degraded_after` runs in a row is DEGRADED: pulled less and less often until it answers again.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use entities::{pull_run, pull_source};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter};
use tokio::sync::Notify;

use super::document::{self, Document};
use super::fetch::{FetchError, Fetched, fetch};
use super::{PullSettings, format, outcome, status};
use crate::error::{ApiError, Violation};
use crate::exchange::dispatch::{backoff_delay, unit_random};
use crate::exchange::outbound::{Destinations, GuardedResolver};
use crate::files::import::submit_batch;
use crate::kernel::audit_log::now_micros;
use crate::kernel::outbox::{BackgroundTask, epoch_ms};
use crate::kernel::receipts::Channel;
use crate::reconciled::live::Reconciled;
use crate::secrets::SecretBox;
use crate::territory::service::Catalog;
use crate::vocabulary::DataKind;

/// Woken when a source is registered or asked to be pulled now.
pub static PULL_REQUESTED: Notify = Notify::const_new();

/// Most sources claimed, and pulled concurrently, at once.
const BATCH: i64 = 4;
/// Most errors kept on a run.
const MAX_ERRORS: usize = 50;

/// What a pull needs.
struct Puller {
    db: DatabaseConnection,
    reconciled: Arc<Reconciled>,
    catalog: Arc<Catalog>,
    client: reqwest::Client,
    settings: PullSettings,
    destinations: Arc<Destinations>,
    secrets: Arc<SecretBox>,
    instance: String,
}

/// The document a source's last successful run left it holding.
struct Current {
    etag: Option<String>,
    last_modified: Option<String>,
    content_hash: String,
    /// The submission it became (None: the one already held).
    submission_id: Option<String>,
}

/// A run being recorded.
struct Run {
    outcome: &'static str,
    http_status: Option<u16>,
    attempts: u32,
    rows_accepted: i64,
    submission_id: Option<String>,
    content_hash: Option<String>,
    errors: Vec<Violation>,
    /// What the source holds now, when the run leaves it up to date.
    current: Option<Current>,
}

impl Run {
    fn new(outcome: &'static str, attempts: u32) -> Run {
        Run {
            outcome,
            http_status: None,
            attempts,
            rows_accepted: 0,
            submission_id: None,
            content_hash: None,
            errors: Vec::new(),
            current: None,
        }
    }

    fn failed(attempts: u32, err: FetchError) -> Run {
        Run {
            http_status: err.status,
            errors: vec![Violation { path: String::new(), code: "FETCH_FAILED".into(), message: err.message }],
            ..Run::new(outcome::FAILED, attempts)
        }
    }

    fn succeeded(&self) -> bool {
        matches!(self.outcome, outcome::ACCEPTED | outcome::UNCHANGED | outcome::NOT_MODIFIED)
    }
}

/// Claims up to [`BATCH`] due sources for `instance` until `lease_until` (ms).
async fn claim(
    db: &DatabaseConnection,
    instance: &str,
    now: i64,
    lease_until: i64,
) -> Result<Vec<pull_source::Model>, DbErr> {
    let due = format!("status IN ('{}', '{}')", status::ACTIVE, status::DEGRADED);
    let queue = crate::db::DueRows { table: "pull_source", due: &due, next_column: "next_pull_at", returning: "*" };
    let rows = crate::db::claim_due(db, &queue, instance, now, lease_until, BATCH).await?;
    rows.iter().map(|row| pull_source::Model::from_query_result(row, "")).collect()
}

impl Puller {
    /// Reads and submits what the source answered.
    async fn take(&self, source: &pull_source::Model, fetched: Fetched, attempts: u32) -> Run {
        let Fetched::Body { status, bytes, etag, last_modified } = fetched else {
            return Run { http_status: Some(304), ..Run::new(outcome::NOT_MODIFIED, attempts) };
        };
        let mut run = Run { http_status: Some(status), ..Run::new(outcome::REJECTED, attempts) };
        let Some(kind) = DataKind::from_stored(&source.data_kind) else {
            run.errors.push(problem("INVALID_SOURCE", format!("type de données « {} » inconnu", source.data_kind)));
            return run;
        };
        let read = if source.format == format::GRAPHQL {
            document::read_graphql_answer(kind, &bytes)
        } else {
            document::read_exchange(kind, &bytes)
        };
        let Document { batch, as_of, content_hash } = match read {
            Ok(document) => document,
            Err(violations) => {
                run.errors = violations;
                return run;
            }
        };
        run.content_hash = Some(content_hash.clone());
        if source.last_content_hash.as_deref() == Some(content_hash.as_str()) {
            run.outcome = outcome::UNCHANGED;
            run.current = Some(Current { etag, last_modified, content_hash, submission_id: None });
            return run;
        }
        let agent = format!("pull:{}", source.id);
        let principal = match crate::access::authenticator::principal_for_institution(
            &self.db,
            &self.catalog,
            &source.institution_code,
            &agent,
        )
        .await
        {
            Ok(principal) => principal,
            Err(err) => {
                run.outcome = outcome::FAILED;
                run.errors.push(problem(
                    "INSTITUTION_UNAVAILABLE",
                    format!("l'institution {} ne peut pas soumettre : {err}", source.institution_code),
                ));
                return run;
            }
        };
        // The source's own moment, else the answer's Last-Modified, else now.
        let as_of: DateTime<FixedOffset> = as_of
            .or_else(|| last_modified.as_deref().and_then(|d| DateTime::parse_from_rfc2822(d).ok()))
            .unwrap_or_else(now_micros);
        // Keyed by the submission held and the new content: a pull retried after a crash (its run unrecorded, so the
        // source still names the same submission) replays the first answer instead of storing the document twice,
        // while a source going back and forth between two documents is stored at each change.
        let previous = source.last_submission_id.as_deref().unwrap_or("none");
        let key = format!("pull:{}:{previous}:{content_hash}", source.id);
        let channel = Channel::Pull { source_id: source.id.clone(), as_of };
        match submit_batch(&self.db, &self.reconciled, &self.catalog, &principal, batch, Some(key), channel).await {
            Ok(done) => {
                run.outcome = outcome::ACCEPTED;
                run.rows_accepted = if done.receipt.replayed { 0 } else { done.receipt.accepted };
                run.submission_id = Some(done.receipt.submission_id.clone());
                run.errors = done
                    .warnings
                    .into_iter()
                    .map(|w| Violation { path: w.path, code: w.code, message: w.message })
                    .collect();
                run.current = Some(Current {
                    etag,
                    last_modified,
                    content_hash,
                    submission_id: Some(done.receipt.submission_id),
                });
            }
            Err(ApiError::ValidationFailed(violations)) => run.errors = violations,
            Err(err @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => {
                tracing::warn!(source = %source.id, error = ?err, "pulled document not stored");
                run.outcome = outcome::FAILED;
                run.errors.push(problem("WRITE_FAILED", format!("la soumission n'a pas pu être enregistrée : {err}")));
            }
            Err(err) => run.errors.push(problem(err.code(), err.to_string())),
        }
        run
    }

    /// Pulls one claimed source and records the run.
    async fn pull(&self, source: pull_source::Model) {
        let started = now_micros();
        // Fetching ends well within the lease, so that no other instance takes the source up meanwhile.
        let bound = self.settings.lease.mul_f64(0.6);
        // Checked again before each pull: the allowed networks may have narrowed since the source was registered.
        let refused = std::iter::once(source.url.as_str())
            .chain(source.oauth_token_url.as_deref())
            .find_map(|url| self.destinations.check(url).err());
        let run = match (refused, self.opened(&source)) {
            (Some(refused), _) => {
                Run::failed(0, FetchError { status: None, message: refused.to_string(), retryable: false })
            }
            (None, Err(err)) => Run::failed(0, FetchError { status: None, message: err.to_string(), retryable: false }),
            (None, Ok(opened)) => self.fetched(&opened, bound).await,
        };
        crate::observe::METRICS.pulls.with_label_values(&[&run.outcome.to_lowercase()]).inc();
        if let Err(err) = self.record(&source, started, run).await {
            tracing::warn!(source = %source.id, error = %err, "pull run not recorded; the source is pulled again once its lease lapses");
        }
    }

    /// The source with its credentials opened (they are stored sealed), for the requests only.
    fn opened(&self, source: &pull_source::Model) -> Result<pull_source::Model, crate::secrets::SecretError> {
        let open = |name, value: &Option<String>| value.as_deref().map(|v| self.secrets.open(name, v)).transpose();
        Ok(pull_source::Model {
            bearer_token: open(super::BEARER_COLUMN, &source.bearer_token)?,
            oauth_client_secret: open(super::CLIENT_SECRET_COLUMN, &source.oauth_client_secret)?,
            ..source.clone()
        })
    }

    /// Fetches a source within `bound` and takes what it answered.
    async fn fetched(&self, source: &pull_source::Model, bound: std::time::Duration) -> Run {
        match tokio::time::timeout(bound, fetch(&self.client, source, &self.settings)).await {
            Ok((Ok(fetched), attempts)) => self.take(source, fetched, attempts).await,
            Ok((Err(err), attempts)) => Run::failed(attempts, err),
            Err(_) => Run::failed(
                self.settings.attempts,
                FetchError {
                    status: None,
                    message: format!("collecte interrompue après {} s (bail de la source)", bound.as_secs()),
                    retryable: false,
                },
            ),
        }
    }

    /// Records a run and sets the source's next pull: at its interval after a success, later and later once the
    /// circuit breaker has tripped.
    async fn record(
        &self,
        source: &pull_source::Model,
        started: DateTime<FixedOffset>,
        mut run: Run,
    ) -> Result<(), DbErr> {
        let finished = now_micros();
        let now = Utc::now();
        run.errors.truncate(MAX_ERRORS);
        if !run.succeeded() {
            tracing::warn!(source = %source.id, outcome = run.outcome, errors = ?run.errors.iter().map(|e| &e.message).collect::<Vec<_>>(), "pull did not bring data");
        }
        pull_run::Entity::insert(pull_run::ActiveModel {
            id: sea_orm::Set(uuid::Uuid::now_v7().to_string()),
            source_id: sea_orm::Set(source.id.clone()),
            instance: sea_orm::Set(self.instance.clone()),
            started_at: sea_orm::Set(started),
            finished_at: sea_orm::Set(finished),
            outcome: sea_orm::Set(run.outcome.to_owned()),
            http_status: sea_orm::Set(run.http_status.map(i32::from)),
            attempts: sea_orm::Set(run.attempts as i32),
            rows_accepted: sea_orm::Set(run.rows_accepted),
            submission_id: sea_orm::Set(run.submission_id.clone()),
            content_hash: sea_orm::Set(run.content_hash.clone()),
            errors: sea_orm::Set(
                serde_json::to_string(
                    &run.errors
                        .iter()
                        .map(|v| {
                            serde_json::json!({
                                "path": v.path, "code": v.code, "message": v.message
                            })
                        })
                        .collect::<Vec<_>>(),
                )
                .unwrap_or_else(|_| "[]".into()),
            ),
        })
        .exec_without_returning(&self.db)
        .await?;
        let interval = std::time::Duration::from_secs(source.interval_seconds.max(1) as u64);
        let failures = if run.succeeded() { 0 } else { source.consecutive_failures + 1 };
        let degraded = failures as u32 >= self.settings.degraded_after;
        let wait = if degraded {
            // Tripped: each further failure doubles the wait, up to the breaker's cap (never below the interval).
            let tripped_for = failures as u32 - self.settings.degraded_after + 1;
            backoff_delay(interval, self.settings.breaker_cap.max(interval), tripped_for + 1, unit_random())
                .max(interval)
        } else {
            interval
        };
        // The schedule, unless it changed during the run (resumed, paused, asked to pull now): then that stands.
        pull_source::Entity::update_many()
            .col_expr(pull_source::Column::ConsecutiveFailures, Expr::value(failures))
            .col_expr(pull_source::Column::NextPullAt, Expr::value(epoch_ms(now + wait)))
            .col_expr(
                pull_source::Column::Status,
                Expr::value(if degraded { status::DEGRADED } else { status::ACTIVE }),
            )
            .filter(pull_source::Column::Id.eq(source.id.clone()))
            .filter(pull_source::Column::LockedBy.eq(self.instance.clone()))
            .filter(pull_source::Column::Status.eq(source.status.clone()))
            .filter(pull_source::Column::NextPullAt.eq(source.next_pull_at))
            .filter(pull_source::Column::ConsecutiveFailures.eq(source.consecutive_failures))
            .exec(&self.db)
            .await?;
        // What the source now holds, and its claim released (if this instance still holds it).
        let mut update = pull_source::Entity::update_many()
            .col_expr(pull_source::Column::LockedUntil, Expr::value(Option::<i64>::None))
            .col_expr(pull_source::Column::LockedBy, Expr::value(Option::<String>::None));
        if run.succeeded() {
            update = update.col_expr(pull_source::Column::LastSuccessAt, Expr::value(finished));
        }
        if let Some(current) = run.current.take() {
            update = update
                .col_expr(pull_source::Column::Etag, Expr::value(current.etag))
                .col_expr(pull_source::Column::LastModified, Expr::value(current.last_modified))
                .col_expr(pull_source::Column::LastContentHash, Expr::value(current.content_hash));
            if let Some(submission) = current.submission_id {
                update = update.col_expr(pull_source::Column::LastSubmissionId, Expr::value(submission));
            }
        }
        update
            .filter(pull_source::Column::Id.eq(source.id.clone()))
            .filter(pull_source::Column::LockedBy.eq(self.instance.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// One pass: claims due sources, pulls them. Returns how many were claimed.
    async fn pass(&self) -> Result<usize, DbErr> {
        let now = Utc::now();
        let lease_until = epoch_ms(now) + self.settings.lease.as_millis() as i64;
        let claimed = claim(&self.db, &self.instance, epoch_ms(now), lease_until).await?;
        let count = claimed.len();
        futures_util::future::join_all(claimed.into_iter().map(|source| self.pull(source))).await;
        Ok(count)
    }
}

fn problem(code: &str, message: String) -> Violation {
    Violation { path: String::new(), code: code.to_owned(), message }
}

/// Starts the puller of this instance. Dropping what it returns stops it: a pull under way is abandoned to its
/// lease, and done again later.
pub fn spawn(
    db: DatabaseConnection,
    reconciled: Arc<Reconciled>,
    catalog: Arc<Catalog>,
    settings: PullSettings,
    destinations: Arc<Destinations>,
    secrets: Arc<SecretBox>,
) -> BackgroundTask {
    let client = match reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        // Credentials go to the registered URL only.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(GuardedResolver::new(destinations.clone()))
        .user_agent(concat!("cnh-hub/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "pull HTTP client not built: no source will be pulled");
            return BackgroundTask::none();
        }
    };
    let puller = Puller {
        db,
        reconciled,
        catalog,
        client,
        settings,
        destinations,
        secrets,
        instance: format!("puller-{}", uuid::Uuid::now_v7()),
    };
    let task = tokio::spawn(async move {
        loop {
            match puller.pass().await {
                Ok(claimed) if claimed as i64 == BATCH => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "pull sources not read; trying again"),
            }
            tokio::select! {
                () = PULL_REQUESTED.notified() => {}
                () = tokio::time::sleep(puller.settings.poll) => {}
            }
        }
    });
    BackgroundTask::new(task)
}
