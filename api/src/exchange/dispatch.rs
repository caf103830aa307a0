//! Sends the outbox's deliveries (`kernel::outbox`): claimed a batch at a time under a lease, so that several hub
//! instances on one PostgreSQL never send one delivery at once (`FOR UPDATE SKIP LOCKED`), and a delivery whose
//! instance died is taken up again once its lease lapses (at least once); signed with HMAC-SHA256; retried with
//! exponential backoff and jitter; dead after `max_attempts`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use entities::{webhook_delivery, webhook_subscription};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use sha2::Sha256;

use super::outbound::{Destinations, GuardedResolver};
use crate::kernel::audit_chain::hex;
use crate::kernel::outbox::{self, BackgroundTask, epoch_ms, state};
use crate::secrets::SecretBox;

/// Header carrying the delivery's id: the same on every attempt, for the receiver to drop duplicates.
pub const DELIVERY_ID_HEADER: &str = "cnh-delivery-id";
/// Header carrying the event kind.
pub const EVENT_HEADER: &str = "cnh-event";
/// Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "cnh-signature";

/// How deliveries are sent and retried (`CNH_WEBHOOK_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Attempts before a delivery is dead (dead-lettered, replayable by the operator).
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each next one (with jitter), up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long an instance's claim on a delivery holds: past it, another instance (or this one restarted) sends it.
    pub lease: Duration,
    /// How often the outbox is looked at when nothing woke the dispatcher.
    pub poll: Duration,
    /// Connect timeout and total timeout of one attempt.
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            max_attempts: 8,
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Most deliveries claimed, and sent concurrently, at once.
const BATCH: i64 = 16;
/// Longest error text kept on a delivery.
const MAX_ERROR_CHARS: usize = 500;

/// The signature header's value for a body sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("t={timestamp},v1={}", hex(&mac.finalize().into_bytes()))
}

/// The wait before attempt `attempts + 1`, `attempts` having failed: base × 2^(attempts−1), capped, then drawn
/// between half and all of it (jitter: receivers recovering from an outage are not hit by every sender at once).
pub fn backoff(settings: &WebhookSettings, attempts: u32, unit_random: f64) -> Duration {
    backoff_delay(settings.retry_base, settings.retry_cap, attempts, unit_random)
}

/// base × 2^(attempts−1), capped, drawn between half and all of it: the backoff of every retry the hub makes.
pub fn backoff_delay(base: Duration, cap: Duration, attempts: u32, unit_random: f64) -> Duration {
    let exponent = attempts.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exponent).min(cap);
    full.mul_f64(0.5 + 0.5 * unit_random.clamp(0.0, 1.0))
}

/// A number drawn in [0, 1), for jitter.
pub fn unit_random() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

/// A claimed delivery.
struct Claimed {
    id: String,
    subscription_id: String,
    event_kind: String,
    body: String,
    attempts: i32,
}

/// Claims up to [`BATCH`] due deliveries for `instance` until `lease_until` (ms).
async fn claim(db: &DatabaseConnection, instance: &str, now: i64, lease_until: i64) -> Result<Vec<Claimed>, DbErr> {
    let due = format!("state = '{}'", state::PENDING);
    let queue = crate::db::DueRows {
        table: "webhook_delivery",
        due: &due,
        next_column: "next_attempt_at",
        returning: "id, subscription_id, event_kind, body, attempts",
    };
    let rows = crate::db::claim_due(db, &queue, instance, now, lease_until, BATCH).await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get("", "id")?,
                subscription_id: row.try_get("", "subscription_id")?,
                event_kind: row.try_get("", "event_kind")?,
                body: row.try_get("", "body")?,
                attempts: row.try_get("", "attempts")?,
            })
        })
        .collect()
}

/// What one attempt came to.
enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

async fn attempt(
    client: &reqwest::Client,
    subscription: &webhook_subscription::Model,
    secrets: &SecretBox,
    delivery: &Claimed,
) -> Outcome {
    let secret = match secrets.open(super::SECRET_COLUMN, &subscription.secret) {
        Ok(secret) => secret,
        Err(err) => return Outcome::Failed { status: None, error: err.to_string() },
    };
    let timestamp = Utc::now().timestamp();
    let sent = client
        .post(&subscription.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_ID_HEADER, &delivery.id)
        .header(EVENT_HEADER, &delivery.event_kind)
        .header(SIGNATURE_HEADER, signature(&secret, timestamp, &delivery.body))
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Outcome::Delivered(response.status().as_u16()),
        Ok(response) => Outcome::Failed {
            status: Some(response.status().as_u16()),
            error: format!("le destinataire a répondu HTTP {}", response.status().as_u16()),
        },
        Err(err) => {
            let what = if err.is_timeout() {
                "délai dépassé"
            } else if err.is_connect() {
                "connexion impossible"
            } else {
                "échec de l'envoi"
            };
            Outcome::Failed { status: None, error: format!("{what} : {err}") }
        }
    }
}

/// Records an attempt's outcome, if this instance still holds the delivery's claim.
async fn record(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    instance: &str,
    delivery: &Claimed,
    outcome: Outcome,
) -> Result<(), DbErr> {
    let attempts = delivery.attempts + 1;
    let now = Utc::now();
    let mut update = webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Attempts, Expr::value(attempts))
        .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .col_expr(webhook_delivery::Column::LockedBy, Expr::value(Option::<String>::None));
    update = match outcome {
        Outcome::Delivered(status) => update
            .col_expr(webhook_delivery::Column::State, Expr::value(state::DELIVERED))
            .col_expr(webhook_delivery::Column::LastStatus, Expr::value(i32::from(status)))
            .col_expr(webhook_delivery::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(webhook_delivery::Column::DeliveredAt, Expr::value(now.fixed_offset())),
        Outcome::Failed { status, error } => {
            let dead = attempts as u32 >= settings.max_attempts;
            let next = now + backoff(settings, attempts as u32, unit_random());
            update
                .col_expr(webhook_delivery::Column::State, Expr::value(if dead { state::DEAD } else { state::PENDING }))
                .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(epoch_ms(next)))
                .col_expr(webhook_delivery::Column::LastStatus, Expr::value(status.map(i32::from)))
                .col_expr(
                    webhook_delivery::Column::LastError,
                    Expr::value(error.chars().take(MAX_ERROR_CHARS).collect::<String>()),
                )
        }
    };
    update
        .filter(webhook_delivery::Column::Id.eq(delivery.id.clone()))
        .filter(webhook_delivery::Column::LockedBy.eq(instance))
        .exec(db)
        .await?;
    Ok(())
}

/// One pass: claims a batch, sends it, records the outcomes. Returns how many were claimed.
async fn pass(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    destinations: &Destinations,
    secrets: &SecretBox,
    instance: &str,
) -> Result<usize, DbErr> {
    let now = Utc::now();
    let lease_until = epoch_ms(now) + settings.lease.as_millis() as i64;
    let claimed = claim(db, instance, epoch_ms(now), lease_until).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = claimed.iter().map(|c| c.subscription_id.clone()).collect();
    let subscriptions =
        webhook_subscription::Entity::find().filter(webhook_subscription::Column::Id.is_in(ids)).all(db).await?;
    let sends = claimed.iter().map(|delivery| async {
        let outcome = match subscriptions.iter().find(|s| s.id == delivery.subscription_id) {
            // Checked again before each attempt: the allowed networks may have narrowed since it was registered.
            Some(subscription) if subscription.active => match destinations.check(&subscription.url) {
                Ok(()) => attempt(client, subscription, secrets, delivery).await,
                Err(refused) => Outcome::Failed { status: None, error: refused.to_string() },
            },
            _ => Outcome::Failed { status: None, error: "abonnement résilié".to_owned() },
        };
        if let Outcome::Delivered(_) = outcome {
            crate::observe::METRICS.webhook_deliveries.with_label_values(&["delivered"]).inc();
        } else {
            crate::observe::METRICS.webhook_deliveries.with_label_values(&["failed"]).inc();
        }
        if let Err(err) = record(db, settings, instance, delivery, outcome).await {
            tracing::warn!(delivery = %delivery.id, error = %err, "webhook delivery outcome not recorded; it will be sent again");
        }
    });
    futures_util::future::join_all(sends).await;
    Ok(claimed.len())
}

/// Starts the dispatcher of this instance.
/// Dropping what it returns stops it: a delivery being sent is abandoned to its lease, and sent again later.
pub fn spawn(
    db: DatabaseConnection,
    settings: WebhookSettings,
    destinations: Arc<Destinations>,
    secrets: Arc<SecretBox>,
) -> BackgroundTask {
    let instance = format!("dispatcher-{}", uuid::Uuid::now_v7());
    let client = match reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        // A redirect would send the signed body where the subscriber did not say.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(GuardedResolver::new(destinations.clone()))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "webhook HTTP client not built: no delivery will be sent");
            return BackgroundTask::none();
        }
    };
    let task = tokio::spawn(async move {
        loop {
            match pass(&db, &client, &settings, &destinations, &secrets, &instance).await {
                // A full batch: more may be due at once.
                Ok(claimed) if claimed as i64 == BATCH => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "webhook outbox not read; trying again"),
            }
            tokio::select! {
                () = outbox::DELIVERIES_QUEUED.notified() => {}
                () = tokio::time::sleep(settings.poll) => {}
            }
        }
    });
    BackgroundTask::new(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_and_body() {
        // RFC 4231 test case 2 gives HMAC-SHA256("Jefe", "what do ya want for nothing?"); here the message is
        // "<t>.<body>", so "what do ya want " + "for nothing?" split at a dot is not available: check by recomputing.
        let header = signature("Jefe", 1_700_000_000, "{\"a\":1}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        assert_eq!(header, format!("t=1700000000,v1={}", hex(&mac.finalize().into_bytes())));
        assert_ne!(signature("other", 1_700_000_000, "{\"a\":1}"), header);
        assert_ne!(signature("Jefe", 1_700_000_001, "{\"a\":1}"), header);
    }

    #[test]
    fn the_hmac_matches_rfc_4231() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_within_half() {
        let settings = WebhookSettings {
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(60),
            ..Default::default()
        };
        assert_eq!(backoff(&settings, 1, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(&settings, 2, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(&settings, 3, 1.0), Duration::from_secs(40));
        assert_eq!(backoff(&settings, 4, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&settings, 40, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&settings, 1, 0.0), Duration::from_secs(5));
    }
}
