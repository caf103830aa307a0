//! Exchange with institutions' systems, outbound: an institution subscribes a URL to the events of its territory
//! (co-financing status changes, its submission receipts, campaign deadlines approaching or missed); the kernel
//! queues a delivery per event in the transaction of the change (`kernel::outbox`); `dispatch` sends them, signed,
//! at least once, and dead-letters what keeps failing for the operator to replay.

pub mod dispatch;
pub mod outbound;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use entities::{webhook_delivery, webhook_subscription};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::{Principal, ScopeLevel};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::audit_log::{self as audit, Actor};
use crate::kernel::outbox::{self, EventKind, epoch_ms, scope_level, state};
use crate::kernel::write::{Write, content_hash};
use crate::secrets::SecretBox;

/// Most active subscriptions one institution may hold.
pub const MAX_SUBSCRIPTIONS_PER_INSTITUTION: u64 = 20;
/// Longest URL accepted.
pub const MAX_URL_LENGTH: usize = 2048;
/// Most deliveries one `webhookDeliveries` page lists.
pub const MAX_DELIVERIES_PAGE: u64 = 500;

/// A URL subscribed to events.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookSubscription {
    pub id: ID,
    pub institution_code: String,
    pub url: String,
    pub events: Vec<EventKind>,
    /// The territory whose events it receives: NATIONAL, REGION or DEPARTEMENTS (with the codes below).
    pub scope_level: String,
    pub region_code: Option<String>,
    pub departement_codes: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<FixedOffset>,
    pub cancelled_at: Option<DateTime<FixedOffset>>,
}

impl From<webhook_subscription::Model> for WebhookSubscription {
    fn from(row: webhook_subscription::Model) -> Self {
        WebhookSubscription {
            id: ID(row.id),
            institution_code: row.institution_code,
            url: row.url,
            events: row.event_kinds.split(',').filter_map(EventKind::from_stored).collect(),
            scope_level: row.scope_level,
            region_code: row.region_code,
            departement_codes: row.departement_codes.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
            active: row.active,
            created_at: row.created_at,
            cancelled_at: row.cancelled_at,
        }
    }
}

/// A new subscription and its signing secret, which is shown this once.
#[derive(SimpleObject)]
pub struct WebhookSubscriptionCreated {
    pub subscription: WebhookSubscription,
    /// The HMAC-SHA256 key of the `cnh-signature` header: `t=<unix seconds>,v1=<hex HMAC(secret, "<t>.<body>")>`.
    /// Keep it: it is not shown again.
    pub secret: String,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryState {
    /// Queued, or waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed (or the subscription was cancelled): only the operator's replay sends it again.
    Dead,
}

impl WebhookDeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryState::Pending => state::PENDING,
            WebhookDeliveryState::Delivered => state::DELIVERED,
            WebhookDeliveryState::Dead => state::DEAD,
        }
    }

    fn from_stored(text: &str) -> WebhookDeliveryState {
        match text {
            state::DELIVERED => WebhookDeliveryState::Delivered,
            state::DEAD => WebhookDeliveryState::Dead,
            _ => WebhookDeliveryState::Pending,
        }
    }
}

/// One event sent (or to be sent) to one subscription.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    /// Sent as `cnh-delivery-id` on every attempt: the receiver drops what it has already seen.
    pub id: ID,
    pub subscription_id: ID,
    pub event: Option<EventKind>,
    pub event_key: String,
    pub state: WebhookDeliveryState,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<FixedOffset>,
    pub delivered_at: Option<DateTime<FixedOffset>>,
    /// The JSON body sent.
    pub body: String,
}

impl From<webhook_delivery::Model> for WebhookDelivery {
    fn from(row: webhook_delivery::Model) -> Self {
        WebhookDelivery {
            id: ID(row.id),
            subscription_id: ID(row.subscription_id),
            event: EventKind::from_stored(&row.event_kind),
            event_key: row.event_key,
            state: WebhookDeliveryState::from_stored(&row.state),
            attempts: row.attempts,
            next_attempt_at: (row.state == state::PENDING)
                .then(|| Utc.timestamp_millis_opt(row.next_attempt_at).single())
                .flatten(),
            last_status: row.last_status,
            last_error: row.last_error,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
            body: row.body,
        }
    }
}

#[derive(InputObject, Serialize)]
pub struct WebhookSubscriptionInput {
    /// Where deliveries are POSTed: `https://…` (plain `http://` only to the local machine, for development).
    pub url: String,
    pub events: Vec<EventKind>,
}

/// The resource whose read access an event kind needs: nobody subscribes to what they could not query.
fn resource_of(kind: EventKind) -> Resource {
    match kind {
        EventKind::CofinancingStatusChanged => Resource::CoFinancing,
        EventKind::SubmissionReceipt => Resource::OwnIdentity,
        EventKind::CampaignDeadlineApproaching | EventKind::CampaignDeadlineMissed => Resource::Campaign,
        EventKind::EscalationChanged => Resource::Escalation,
    }
}

/// Checks a URL the hub will send requests to: absolute, `https` (or `http` to a loopback host), no credentials in
/// it, not an internal address outside the allowed `destinations` (`outbound`).
pub fn check_url(text: &str, destinations: &outbound::Destinations) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_URL_LENGTH {
        return Err(ApiError::BadUserInput(format!("URL vide ou trop longue ({MAX_URL_LENGTH} caractères au plus)")));
    }
    let url = reqwest::Url::parse(text)
        .map_err(|e| ApiError::BadUserInput(format!("« {text} » n'est pas une URL absolue ({e})")))?;
    let loopback = url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(ApiError::BadUserInput(format!(
                "« {text} » : les notifications signées ne partent qu'en https (http seulement vers la machine locale)"
            )));
        }
        other => return Err(ApiError::BadUserInput(format!("« {text} » : schéma « {other} » refusé (https attendu)"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::BadUserInput(format!("« {text} » n'a pas d'hôte")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::BadUserInput(
            "l'URL ne doit pas contenir d'identifiants : ils apparaîtraient dans les journaux".to_owned(),
        ));
    }
    destinations.check_url(&url).map_err(|refused| ApiError::BadUserInput(refused.to_string()))?;
    Ok(url.to_string())
}

/// Where the hub may send requests, as configured (`outbound`); without it, the public internet only.
pub fn destinations(ctx: &Context<'_>) -> std::sync::Arc<outbound::Destinations> {
    ctx.data_opt::<std::sync::Arc<outbound::Destinations>>().cloned().unwrap_or_default()
}

/// Where signing secrets are stored, sealed (`secrets`): the associated data of their sealing.
pub const SECRET_COLUMN: &str = "webhook_subscription.secret";

/// How stored credentials are sealed, as configured; without it, as given (development).
pub fn secret_box(ctx: &Context<'_>) -> std::sync::Arc<SecretBox> {
    ctx.data_opt::<std::sync::Arc<SecretBox>>()
        .cloned()
        .unwrap_or_else(|| std::sync::Arc::new(SecretBox::without_key()))
}

/// Seals the signing secrets stored in clear (before the hub had a key) or under the previous key; how many. A
/// secret that opens with neither key is left as it is (its deliveries fail and say why).
pub async fn seal_stored_secrets(db: &DatabaseConnection, secrets: &SecretBox) -> Result<u64, sea_orm::DbErr> {
    let mut sealed = 0;
    for row in webhook_subscription::Entity::find().all(db).await? {
        if let Ok(Some(resealed)) = secrets.resealed(SECRET_COLUMN, &row.secret) {
            webhook_subscription::Entity::update_many()
                .col_expr(webhook_subscription::Column::Secret, Expr::value(resealed))
                .filter(webhook_subscription::Column::Id.eq(row.id.as_str()))
                .filter(webhook_subscription::Column::Secret.eq(row.secret.as_str()))
                .exec(db)
                .await?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// A fresh signing secret: 256 random bits, hex.
fn new_secret() -> String {
    let a = uuid::Uuid::new_v4().as_u128();
    let b = uuid::Uuid::new_v4().as_u128();
    format!("whsec_{a:032x}{b:032x}")
}

/// The subscriptions a principal may see: its institution's, or every one with national reach.
fn visible(principal: &Principal, reach: Reach) -> Condition {
    match reach {
        Reach::Everything => Condition::all(),
        _ => Condition::all().add(webhook_subscription::Column::InstitutionCode.eq(principal.institution.code.clone())),
    }
}

async fn visible_subscription(
    db: &DatabaseConnection,
    principal: &Principal,
    reach: Reach,
    id: &str,
) -> Result<webhook_subscription::Model, ApiError> {
    webhook_subscription::Entity::find_by_id(id.to_owned())
        .filter(visible(principal, reach))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("aucun abonnement « {id} » parmi les vôtres")))
}

#[derive(Default)]
pub struct ExchangeQuery;

#[Object]
impl ExchangeQuery {
    /// Your institution's webhook subscriptions (the operator: everyone's). The secret is never shown again.
    async fn webhook_subscriptions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_cancelled: bool,
    ) -> ApiResult<Vec<WebhookSubscription>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Webhook, Action::Read)?;
        let mut query = webhook_subscription::Entity::find().filter(visible(principal, reach));
        if !include_cancelled {
            query = query.filter(webhook_subscription::Column::Active.eq(true));
        }
        let rows =
            query.order_by_asc(webhook_subscription::Column::CreatedAt).all(db(ctx)?).await.map_err(ApiError::from)?;
        Ok(rows.into_iter().map(WebhookSubscription::from).collect())
    }

    /// A subscription's deliveries, newest first, optionally in one state.
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        subscription_id: ID,
        state: Option<WebhookDeliveryState>,
        #[graphql(default = 50)] first: i32,
        #[graphql(desc = "The id of the last delivery of the previous page: the deliveries older than it.")]
        before: Option<ID>,
    ) -> ApiResult<Vec<WebhookDelivery>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Webhook, Action::Read)?;
        if first < 1 || first as u64 > MAX_DELIVERIES_PAGE {
            return Err(ApiError::BadUserInput(format!("first : de 1 à {MAX_DELIVERIES_PAGE}")).into());
        }
        let db = db(ctx)?;
        let subscription = visible_subscription(db, principal, reach, subscription_id.as_str()).await?;
        let mut query = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::SubscriptionId.eq(subscription.id.as_str()));
        if let Some(state) = state {
            query = query.filter(webhook_delivery::Column::State.eq(state.as_str()));
        }
        if let Some(before) = before {
            // Keyset: the deliveries after it in the list's order (created_at, then id, both descending).
            let last = webhook_delivery::Entity::find_by_id(before.to_string())
                .filter(webhook_delivery::Column::SubscriptionId.eq(subscription.id.as_str()))
                .one(db)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(|| {
                    ApiError::BadUserInput(format!(
                        "before : aucune livraison « {} » de cet abonnement",
                        before.as_str()
                    ))
                })?;
            query = query.filter(crate::pagination::older_than(
                webhook_delivery::Column::CreatedAt,
                webhook_delivery::Column::Id,
                last.created_at,
                last.id,
            ));
        }
        let rows = query
            .order_by_desc(webhook_delivery::Column::CreatedAt)
            .order_by_desc(webhook_delivery::Column::Id)
            .limit(first as u64)
            .all(db)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(WebhookDelivery::from).collect())
    }
}

#[derive(Default)]
pub struct ExchangeMutation;

#[Object]
impl ExchangeMutation {
    /// Subscribes a URL to events of your territory. Each delivery is a POST of a JSON body with `cnh-delivery-id`,
    /// `cnh-event` and `cnh-signature` headers; a 2xx answer acknowledges it, anything else is retried with backoff.
    async fn subscribe_webhook(
        &self,
        ctx: &Context<'_>,
        input: WebhookSubscriptionInput,
    ) -> ApiResult<WebhookSubscriptionCreated> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::Webhook, Action::Write)?;
        let url = check_url(&input.url, &destinations(ctx))?;
        let mut events: Vec<EventKind> = Vec::new();
        for kind in &input.events {
            if policy::reach(principal.role, resource_of(*kind), Action::Read).is_none() {
                return Err(ApiError::Forbidden(format!(
                    "le rôle {} ne peut pas s'abonner à {} : il ne peut pas en lire les données",
                    principal.role.as_str(),
                    kind.as_str()
                ))
                .into());
            }
            if !events.contains(kind) {
                events.push(*kind);
            }
        }
        if events.is_empty() {
            return Err(ApiError::BadUserInput("events : au moins un type d'événement".to_owned()).into());
        }
        let db = db(ctx)?;
        let held = webhook_subscription::Entity::find()
            .filter(webhook_subscription::Column::InstitutionCode.eq(principal.institution.code.clone()))
            .filter(webhook_subscription::Column::Active.eq(true))
            .count(db)
            .await
            .map_err(ApiError::from)?;
        if held >= MAX_SUBSCRIPTIONS_PER_INSTITUTION {
            return Err(ApiError::BadUserInput(format!(
                "votre institution a déjà {held} abonnements actifs ({MAX_SUBSCRIPTIONS_PER_INSTITUTION} au plus) : \
                 résiliez-en un"
            ))
            .into());
        }
        let scope = &principal.scope;
        let (level, region, departements) = match scope.level {
            ScopeLevel::National => (scope_level::NATIONAL, None, String::new()),
            ScopeLevel::Region => (scope_level::REGION, scope.region_codes.first().cloned(), String::new()),
            _ => (scope_level::DEPARTEMENTS, scope.region_codes.first().cloned(), scope.departement_codes.join(",")),
        };
        let mut write = Write::begin_unkeyed(db, Actor::of(principal), "subscribeWebhook", &input).await?;
        let secret = new_secret();
        let row = webhook_subscription::Model {
            id: uuid::Uuid::now_v7().to_string(),
            institution_code: principal.institution.code.clone(),
            url,
            secret: secret_box(ctx).seal(SECRET_COLUMN, &secret),
            event_kinds: events.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","),
            scope_level: level.to_owned(),
            region_code: region,
            departement_codes: departements,
            active: true,
            agent_id: principal.agent_id.clone(),
            created_at: audit::now_micros(),
            cancelled_at: None,
        };
        // Insert takes unchanged values as given: the row above is stored as it is.
        webhook_subscription::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&write.txn)
            .await
            .map_err(ApiError::from)?;
        // The audit trail keeps what was subscribed, never the secret.
        write.audit(vec![row.id.clone()], content_hash(&input));
        write.commit(&row.id).await?;
        Ok(WebhookSubscriptionCreated { subscription: row.into(), secret })
    }

    /// Cancels a subscription of your institution: nothing more is queued for it, and what was waiting is dead.
    async fn cancel_webhook_subscription(&self, ctx: &Context<'_>, id: ID) -> ApiResult<WebhookSubscription> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Webhook, Action::Write)?;
        let db = db(ctx)?;
        let existing = visible_subscription(db, principal, reach, id.as_str()).await?;
        if !existing.active {
            return Ok(existing.into());
        }
        let mut write = Write::begin_unkeyed(db, Actor::of(principal), "cancelWebhookSubscription", &id.0).await?;
        let now = audit::now_micros();
        webhook_subscription::Entity::update_many()
            .col_expr(webhook_subscription::Column::Active, Expr::value(false))
            .col_expr(webhook_subscription::Column::CancelledAt, Expr::value(now))
            .filter(webhook_subscription::Column::Id.eq(existing.id.clone()))
            .exec(&write.txn)
            .await
            .map_err(ApiError::from)?;
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::State, Expr::value(state::DEAD))
            .col_expr(webhook_delivery::Column::LastError, Expr::value("abonnement résilié"))
            .filter(webhook_delivery::Column::SubscriptionId.eq(existing.id.clone()))
            .filter(webhook_delivery::Column::State.eq(state::PENDING))
            .exec(&write.txn)
            .await
            .map_err(ApiError::from)?;
        write.audit(vec![existing.id.clone()], content_hash(&existing.id));
        write.commit(&existing.id).await?;
        Ok(WebhookSubscription::from(webhook_subscription::Model {
            active: false,
            cancelled_at: Some(now),
            ..existing
        }))
    }

    /// The operator sends dead deliveries of an active subscription again (the given ones, or all of them): they
    /// start over with a full set of attempts. Returns how many were queued again.
    async fn replay_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        subscription_id: ID,
        delivery_ids: Option<Vec<ID>>,
    ) -> ApiResult<i64> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::WebhookReplay, Action::Write)?;
        let db = db(ctx)?;
        let subscription = visible_subscription(db, principal, reach, subscription_id.as_str()).await?;
        if !subscription.active {
            return Err(ApiError::BadUserInput(format!(
                "l'abonnement « {} » est résilié : rien n'est renvoyé",
                subscription.id
            ))
            .into());
        }
        let request =
            (subscription.id.clone(), delivery_ids.clone().map(|ids| ids.into_iter().map(|i| i.0).collect::<Vec<_>>()));
        let mut write = Write::begin_unkeyed(db, Actor::of(principal), "replayWebhookDeliveries", &request).await?;
        let mut update = webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::State, Expr::value(state::PENDING))
            .col_expr(webhook_delivery::Column::Attempts, Expr::value(0))
            .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(epoch_ms(Utc::now())))
            .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(Option::<i64>::None))
            .col_expr(webhook_delivery::Column::LockedBy, Expr::value(Option::<String>::None))
            .filter(webhook_delivery::Column::SubscriptionId.eq(subscription.id.clone()))
            .filter(webhook_delivery::Column::State.eq(state::DEAD));
        if let Some(ids) = &request.1 {
            update = update.filter(webhook_delivery::Column::Id.is_in(ids.clone()));
        }
        let replayed = update.exec(&write.txn).await.map_err(ApiError::from)?.rows_affected as i64;
        write.audit(vec![subscription.id.clone()], content_hash(&request));
        write.commit(&replayed).await?;
        if replayed > 0 {
            outbox::DELIVERIES_QUEUED.notify_one();
        }
        Ok(replayed)
    }
}
