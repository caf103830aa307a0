//! The outbox of outbound notifications: each event a write causes (a co-financing status change, a submission
//! receipt) or the campaign clock finds (a deadline approaching or missed) becomes one delivery row per webhook
//! subscription it concerns, inserted in the same transaction as the change. A delivery is therefore queued if and
//! only if its change commits; `exchange::dispatch` sends it afterwards, at least once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::Enum;
use chrono::{DateTime, Utc};
use entities::{webhook_delivery, webhook_subscription};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Told after a commit that queued deliveries, so that the dispatcher of this instance sends them at once rather
/// than at its next poll.
pub static DELIVERIES_QUEUED: Notify = Notify::const_new();

/// Set when a transaction queued deliveries; the kernel wakes the dispatcher after its commit (a wake-up before the
/// commit would find nothing to claim yet).
static QUEUED_SINCE_WAKE: AtomicBool = AtomicBool::new(false);

/// After a commit: wakes this instance's dispatcher if deliveries were queued since it was last woken. Another
/// transaction's deliveries may be the cause (then it only looks early); a rolled-back one's cost one empty claim.
pub fn wake_dispatcher_if_queued() {
    if QUEUED_SINCE_WAKE.swap(false, Ordering::AcqRel) {
        DELIVERIES_QUEUED.notify_one();
    }
}

/// A background task (the dispatcher, the campaign clock) that runs while this is held: the hub stopping, or its
/// task aborted, stops it.
pub struct BackgroundTask(Option<tokio::task::AbortHandle>);

impl BackgroundTask {
    pub fn new(task: tokio::task::JoinHandle<()>) -> BackgroundTask {
        BackgroundTask(Some(task.abort_handle()))
    }

    pub fn none() -> BackgroundTask {
        BackgroundTask(None)
    }
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// What a webhook subscriber can be told.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[graphql(name = "WebhookEventKind")]
pub enum EventKind {
    /// A measure's co-financing status changed (or the measure appeared or left its region).
    CofinancingStatusChanged,
    /// A submission of the subscribing institution was accepted: its receipt.
    SubmissionReceipt,
    /// A campaign's deadline is within `campaigns::DEADLINE_WARNING_DAYS` days and an expected institution has not
    /// submitted.
    CampaignDeadlineApproaching,
    /// A campaign's deadline passed without a submission from an expected institution.
    CampaignDeadlineMissed,
    /// An escalation to the national level was opened, answered, or changed state.
    EscalationChanged,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::CofinancingStatusChanged,
        EventKind::SubmissionReceipt,
        EventKind::CampaignDeadlineApproaching,
        EventKind::CampaignDeadlineMissed,
        EventKind::EscalationChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CofinancingStatusChanged => "COFINANCING_STATUS_CHANGED",
            EventKind::SubmissionReceipt => "SUBMISSION_RECEIPT",
            EventKind::CampaignDeadlineApproaching => "CAMPAIGN_DEADLINE_APPROACHING",
            EventKind::CampaignDeadlineMissed => "CAMPAIGN_DEADLINE_MISSED",
            EventKind::EscalationChanged => "ESCALATION_CHANGED",
        }
    }

    pub fn from_stored(text: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == text)
    }
}

/// An event to tell the subscribers it concerns.
#[derive(Clone, Debug)]
pub struct OutboundEvent {
    pub kind: EventKind,
    /// Names the event once and for all (`cofinancing:<measure>:<generation>`, `receipt:<submission>`,
    /// `campaign:<id>:missed:<institution>`): queued twice, it is still delivered once per subscription.
    pub key: String,
    pub region: Option<String>,
    pub departement: Option<String>,
    /// The institution it is about (the sender of a receipt, the institution late for a campaign).
    pub institution: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

/// Stored values of `webhook_delivery.state`.
pub mod state {
    pub const PENDING: &str = "PENDING";
    pub const DELIVERED: &str = "DELIVERED";
    pub const DEAD: &str = "DEAD";
}

/// Stored values of `webhook_subscription.scope_level`.
pub mod scope_level {
    pub const NATIONAL: &str = "NATIONAL";
    pub const REGION: &str = "REGION";
    pub const DEPARTEMENTS: &str = "DEPARTEMENTS";
}

/// Whether a subscription is to be told of an event: its kind, then its territory. A receipt goes to its sender
/// only; an event about an institution also to that institution; other events to subscriptions whose territory
/// holds the event's (national, its region, or one of its départements).
pub fn concerns(subscription: &webhook_subscription::Model, event: &OutboundEvent) -> bool {
    if !subscription.event_kinds.split(',').any(|k| k == event.kind.as_str()) {
        return false;
    }
    let own = event.institution.as_deref() == Some(subscription.institution_code.as_str());
    if event.kind == EventKind::SubmissionReceipt {
        return own;
    }
    own || match subscription.scope_level.as_str() {
        scope_level::NATIONAL => true,
        scope_level::REGION => event.region.is_some() && event.region == subscription.region_code,
        _ => event.departement.as_deref().is_some_and(|d| subscription.departement_codes.split(',').any(|c| c == d)),
    }
}

/// The body sent for a delivery: the same bytes on every attempt.
fn body(delivery_id: &str, event: &OutboundEvent) -> String {
    json!({
        "deliveryId": delivery_id,
        "event": event.kind.as_str(),
        "eventKey": event.key,
        "occurredAt": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "regionCode": event.region,
        "departementCode": event.departement,
        "institutionCode": event.institution,
        "data": event.data,
    })
    .to_string()
}

/// Milliseconds since the epoch, as delivery times are stored.
pub fn epoch_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Queues a delivery of each event to each active subscription it concerns, on `conn` (the write's transaction).
/// Returns how many were queued (an event already queued for a subscription is not queued again).
pub async fn enqueue<C: ConnectionTrait>(conn: &C, events: &[OutboundEvent]) -> Result<u64, DbErr> {
    if events.is_empty() {
        return Ok(0);
    }
    let subscriptions = active_subscriptions(conn).await?;
    enqueue_to(conn, &subscriptions, events).await
}

/// The active webhook subscriptions, read once by a write before it takes its locks (`enqueue_to`).
pub async fn active_subscriptions<C: ConnectionTrait>(conn: &C) -> Result<Vec<webhook_subscription::Model>, DbErr> {
    webhook_subscription::Entity::find().filter(webhook_subscription::Column::Active.eq(true)).all(conn).await
}

/// Queues the deliveries of `events` to those of `subscriptions` they concern.
pub async fn enqueue_to<C: ConnectionTrait>(
    conn: &C,
    subscriptions: &[webhook_subscription::Model],
    events: &[OutboundEvent],
) -> Result<u64, DbErr> {
    let kinds: HashSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let subscriptions: Vec<&webhook_subscription::Model> =
        subscriptions.iter().filter(|s| s.event_kinds.split(',').any(|k| kinds.contains(k))).collect();
    if events.is_empty() || subscriptions.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let created_at = now.fixed_offset();
    let mut rows = Vec::new();
    for event in events {
        for subscription in subscriptions.iter().filter(|s| concerns(s, event)) {
            let id = uuid::Uuid::now_v7().to_string();
            rows.push(webhook_delivery::ActiveModel {
                body: Set(body(&id, event)),
                id: Set(id),
                subscription_id: Set(subscription.id.clone()),
                event_key: Set(event.key.clone()),
                event_kind: Set(event.kind.as_str().to_owned()),
                state: Set(state::PENDING.to_owned()),
                attempts: Set(0),
                next_attempt_at: Set(epoch_ms(now)),
                locked_until: Set(None),
                locked_by: Set(None),
                last_status: Set(None),
                last_error: Set(None),
                created_at: Set(created_at),
                delivered_at: Set(None),
            });
        }
    }
    let mut queued = 0;
    // In chunks: both stores bound the parameters of one statement.
    for chunk in rows.chunks(200) {
        queued += webhook_delivery::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([webhook_delivery::Column::SubscriptionId, webhook_delivery::Column::EventKey])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    if queued > 0 {
        QUEUED_SINCE_WAKE.store(true, Ordering::Release);
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(level: &str, region: Option<&str>, departements: &str, kinds: &str) -> webhook_subscription::Model {
        webhook_subscription::Model {
            id: "s".into(),
            institution_code: if level == "DEPARTEMENTS" { "CD-69" } else { "ARS-84" }.into(),
            url: "https://example.invalid/hook".into(),
            secret: "k".into(),
            event_kinds: kinds.into(),
            scope_level: level.into(),
            region_code: region.map(str::to_owned),
            departement_codes: departements.into(),
            active: true,
            agent_id: None,
            created_at: Utc::now().fixed_offset(),
            cancelled_at: None,
        }
    }

    fn event(kind: EventKind, region: &str, departement: Option<&str>, institution: Option<&str>) -> OutboundEvent {
        OutboundEvent {
            kind,
            key: "k".into(),
            region: Some(region.into()),
            departement: departement.map(str::to_owned),
            institution: institution.map(str::to_owned),
            occurred_at: Utc::now(),
            data: Value::Null,
        }
    }

    #[test]
    fn an_event_concerns_the_subscriptions_whose_kind_and_territory_hold_it() {
        let status = EventKind::CofinancingStatusChanged;
        let all = "COFINANCING_STATUS_CHANGED,SUBMISSION_RECEIPT,CAMPAIGN_DEADLINE_MISSED";
        let in_69 = event(status, "84", Some("69"), None);
        assert!(concerns(&subscription("NATIONAL", None, "", all), &in_69));
        assert!(concerns(&subscription("REGION", Some("84"), "", all), &in_69));
        assert!(!concerns(&subscription("REGION", Some("11"), "", all), &in_69));
        assert!(concerns(&subscription("DEPARTEMENTS", Some("84"), "01,69", all), &in_69));
        assert!(!concerns(&subscription("DEPARTEMENTS", Some("84"), "01,38", all), &in_69));
        // Not subscribed to that kind.
        assert!(!concerns(&subscription("NATIONAL", None, "", "SUBMISSION_RECEIPT"), &in_69));
        // A receipt goes to its sender only, even from a national subscription.
        let receipt = event(EventKind::SubmissionReceipt, "84", None, Some("CD-69"));
        assert!(concerns(&subscription("DEPARTEMENTS", Some("84"), "69", all), &receipt));
        let other = event(EventKind::SubmissionReceipt, "84", None, Some("MDPH-69"));
        assert!(!concerns(&subscription("NATIONAL", None, "", all), &other));
        // A missed deadline: the institution itself, and whoever oversees its territory.
        let missed = event(EventKind::CampaignDeadlineMissed, "84", None, Some("CD-69"));
        assert!(concerns(&subscription("DEPARTEMENTS", Some("84"), "69", all), &missed));
        assert!(concerns(&subscription("REGION", Some("84"), "", all), &missed));
        assert!(!concerns(&subscription("REGION", Some("11"), "", all), &missed));
    }

    #[test]
    fn every_kind_reads_back_from_its_stored_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_stored(kind.as_str()), Some(*kind));
        }
    }
}
