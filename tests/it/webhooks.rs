//! Outbound notifications: institutions' receivers (real local HTTP servers) told of their territory's events,
//! signed, retried, dead-lettered and replayed, surviving a killed hub, and never sent twice by two instances.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::access::principal::Role;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{Caller, TestHub, TestResult, error_codes};

/// What a receiver does with a request.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Answer(u16),
    /// Never answers (the connection stays open until the sender gives up or dies).
    Hang,
}

#[derive(Clone, Debug)]
struct Received {
    delivery_id: String,
    event: String,
    signature: String,
    body: String,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// What to do with the next requests, then `otherwise`.
    plan: Arc<Mutex<VecDeque<Behaviour>>>,
    otherwise: Arc<Mutex<Behaviour>>,
}

impl Receiver {
    async fn start(otherwise: Behaviour) -> Result<Receiver, Box<dyn std::error::Error + Send + Sync>> {
        let receiver = Receiver {
            url: String::new(),
            received: Arc::default(),
            plan: Arc::default(),
            otherwise: Arc::new(Mutex::new(otherwise)),
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { url, ..receiver })
    }

    fn then(&self, behaviours: &[Behaviour]) {
        self.plan.lock().unwrap().extend(behaviours.iter().copied());
    }

    fn otherwise(&self, behaviour: Behaviour) {
        *self.otherwise.lock().unwrap() = behaviour;
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds of what was received (10 s at most).
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..200 {
            let received = self.received();
            if done(&received) {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: not received within 10 s; got {:#?}", self.received());
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    receiver.received.lock().unwrap().push(Received {
        delivery_id: header("cnh-delivery-id"),
        event: header("cnh-event"),
        signature: header("cnh-signature"),
        body,
    });
    let behaviour = receiver.plan.lock().unwrap().pop_front().unwrap_or(*receiver.otherwise.lock().unwrap());
    match behaviour {
        Behaviour::Answer(status) => StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Behaviour::Hang => std::future::pending().await,
    }
}

/// Checks a delivery's signature as a receiver would, with its own HMAC: `t=<unix>,v1=<hex>` over "<t>.<body>".
fn verify(secret: &str, received: &Received) {
    let (t, v1) = received
        .signature
        .split_once(",v1=")
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1)))
        .unwrap_or_else(|| panic!("malformed signature « {} »", received.signature));
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().expect("a timestamp");
    assert!((0..300).contains(&age), "signature timestamp {t} is {age} s old");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected, "signature of {}", received.body);
}

const SUBSCRIBE: &str = "mutation ($input: WebhookSubscriptionInput!) {
  subscribeWebhook(input: $input) { secret subscription { id url events scopeLevel regionCode departementCodes active } }
}";

/// Subscribes `url` for `events`, returning (subscription id, secret).
async fn subscribe(
    caller: &Caller<'_>,
    url: &str,
    events: &[&str],
) -> Result<(String, String), Box<dyn std::error::Error + Send + Sync>> {
    let answer = caller.graphql(SUBSCRIBE, json!({ "input": { "url": url, "events": events } })).await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    let created = &answer["data"]["subscribeWebhook"];
    Ok((created["subscription"]["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned()))
}

async fn deliveries(
    caller: &Caller<'_>,
    subscription: &str,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let answer = caller
        .graphql(
            "query ($id: ID!) { webhookDeliveries(subscriptionId: $id, first: 500) { id event eventKey state attempts lastStatus lastError } }",
            json!({ "id": subscription }),
        )
        .await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    Ok(answer["data"]["webhookDeliveries"].clone())
}

/// Waits until every delivery of a subscription is in `state` (10 s at most), returning them.
async fn settled(
    caller: &Caller<'_>,
    subscription: &str,
    state: &str,
    count: usize,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    for _ in 0..200 {
        let list = deliveries(caller, subscription).await?;
        let rows = list.as_array().unwrap();
        if rows.len() >= count && rows.iter().all(|d| d["state"] == state) {
            return Ok(list);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deliveries of {subscription} not all {state}: {}", deliveries(caller, subscription).await?);
}

/// The first delivery of a subscription that is dead (10 s at most).
async fn first_dead(
    caller: &Caller<'_>,
    subscription: &str,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    for _ in 0..200 {
        let list = deliveries(caller, subscription).await?;
        if let Some(dead) = list.as_array().unwrap().iter().find(|d| d["state"] == "DEAD") {
            return Ok(dead.clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no delivery of {subscription} dead: {}", deliveries(caller, subscription).await?);
}

/// Quick retries, for tests.
fn quick(config: &mut api::Config) {
    config.webhooks.retry_base = Duration::from_millis(50);
    config.webhooks.poll = Duration::from_millis(50);
    config.webhooks.max_attempts = 3;
    config.webhooks.lease = Duration::from_secs(1);
}

db_test! {
    async fn a_status_change_and_a_receipt_reach_the_subscribed_receiver_signed_and_nobody_else(hub) {
        let receiver = Receiver::start(Behaviour::Answer(204)).await?;
        let elsewhere = Receiver::start(Behaviour::Answer(200)).await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (subscription, secret) = subscribe(&ars, &receiver.url, &["COFINANCING_STATUS_CHANGED", "SUBMISSION_RECEIPT"]).await?;
        let other = hub.as_role(Role::Ars, Some("11"));
        let (other_subscription, _) = subscribe(&other, &elsewhere.url, &["COFINANCING_STATUS_CHANGED", "SUBMISSION_RECEIPT"]).await?;
        let listed = ars.data("{ webhookSubscriptions { id url events scopeLevel regionCode active } }").await?;
        assert_eq!(listed["webhookSubscriptions"], json!([{
            "id": subscription, "url": receiver.url, "events": ["COFINANCING_STATUS_CHANGED", "SUBMISSION_RECEIPT"],
            "scopeLevel": "REGION", "regionCode": "84", "active": true
        }]));

        let measure = crate::programming::create_measure(&ars, "HOOK-1").await?;
        let id = measure["id"].as_str().unwrap();
        let got = receiver.wait_for("a status change and a receipt", |r| r.len() >= 2).await;
        for delivery in &got {
            verify(&secret, delivery);
            let body: Value = serde_json::from_str(&delivery.body)?;
            assert_eq!(body["deliveryId"], json!(delivery.delivery_id));
            assert_eq!(body["event"], json!(delivery.event));
        }
        let status = got.iter().find(|d| d.event == "COFINANCING_STATUS_CHANGED").expect("a status change");
        let body: Value = serde_json::from_str(&status.body)?;
        assert_eq!(body["data"]["measureId"], json!(id), "{body}");
        assert_eq!(body["regionCode"], "84");
        assert!(body["data"]["status"].is_string(), "{body}");
        let receipt = got.iter().find(|d| d.event == "SUBMISSION_RECEIPT").expect("a receipt");
        let body: Value = serde_json::from_str(&receipt.body)?;
        assert_eq!(body["data"]["kind"], "MEASURES", "{body}");

        let list = settled(&ars, &subscription, "DELIVERED", 2).await?;
        assert!(list.as_array().unwrap().iter().all(|d| d["attempts"] == 1 && d["lastStatus"] == 204), "{list}");
        // Region 11 was told nothing, and cannot read region 84's deliveries.
        assert_eq!(deliveries(&other, &other_subscription).await?, json!([]));
        assert!(elsewhere.received().is_empty());
        let answer = other.graphql("query ($id: ID!) { webhookDeliveries(subscriptionId: $id) { id } }", json!({ "id": subscription })).await?;
        assert_eq!(error_codes(&answer), ["NOT_FOUND"], "{answer}");
        // Every subscription is audited.
        let audit = hub.as_cnsa().data("{ auditTrail(first: 50) { edges { node { operation } } } }").await?;
        let operations: Vec<&str> = audit["auditTrail"]["edges"].as_array().unwrap().iter().filter_map(|e| e["node"]["operation"].as_str()).collect();
        assert_eq!(operations.iter().filter(|o| **o == "subscribeWebhook").count(), 2, "{operations:?}");
        Ok(())
    }
}

db_test! {
    async fn failures_are_retried_with_one_id_then_dead_lettered_and_replayed_by_the_operator(hub) {
        let hub = hub.restart_with(quick).await?;
        let receiver = Receiver::start(Behaviour::Answer(200)).await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (subscription, secret) = subscribe(&ars, &receiver.url, &["SUBMISSION_RECEIPT"]).await?;
        // Two failures, then success: one delivery, three attempts under one id.
        receiver.then(&[Behaviour::Answer(500), Behaviour::Answer(502)]);
        crate::programming::create_measure(&ars, "HOOK-R1").await?;
        let got = receiver.wait_for("three attempts", |r| r.len() >= 3).await;
        assert!(got.iter().all(|r| r.delivery_id == got[0].delivery_id), "{got:#?}");
        got.iter().for_each(|r| verify(&secret, r));
        let list = settled(&ars, &subscription, "DELIVERED", 1).await?;
        assert_eq!(list[0]["attempts"], 3, "{list}");

        // A receiver that keeps failing: dead after three attempts, with what went wrong.
        receiver.otherwise(Behaviour::Answer(503));
        crate::programming::create_measure(&ars, "HOOK-R2").await?;
        receiver.wait_for("three failed attempts", |r| r.len() >= 6).await;
        let dead = first_dead(&ars, &subscription).await?;
        assert_eq!(dead["attempts"], 3, "{dead}");
        assert_eq!(dead["lastStatus"], 503, "{dead}");
        assert!(dead["lastError"].as_str().unwrap().contains("503"), "{dead}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.received().len(), 6, "a dead delivery is not sent again by itself");

        // Only the operator replays; then it goes through.
        let replay = "mutation ($id: ID!) { replayWebhookDeliveries(subscriptionId: $id) }";
        let answer = ars.graphql(replay, json!({ "id": subscription })).await?;
        assert_eq!(error_codes(&answer), ["FORBIDDEN"], "{answer}");
        receiver.otherwise(Behaviour::Answer(200));
        let answer = hub.as_admin().graphql(replay, json!({ "id": subscription })).await?;
        assert_eq!(answer["data"]["replayWebhookDeliveries"], 1, "{answer}");
        let got = receiver.wait_for("the replayed delivery", |r| r.len() >= 7).await;
        assert_eq!(got[6].delivery_id, dead["id"].as_str().unwrap());
        settled(&ars, &subscription, "DELIVERED", 2).await?;
        Ok(())
    }
}

db_test! {
    async fn bad_subscriptions_are_refused_by_name_and_nothing_is_stored(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        for url in ["http://example.org/hook", "ftp://127.0.0.1/hook", "https://user:pw@example.org/hook", "not a url", ""] {
            let answer = ars.graphql(SUBSCRIBE, json!({ "input": { "url": url, "events": ["SUBMISSION_RECEIPT"] } })).await?;
            assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{url}: {answer}");
        }
        let answer = ars.graphql(SUBSCRIBE, json!({ "input": { "url": "https://ars.example.org/hook", "events": [] } })).await?;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
        let answer = ars.graphql(SUBSCRIBE, json!({ "input": { "url": "https://ars.example.org/hook", "events": ["NOT_AN_EVENT"] } })).await?;
        assert!(!error_codes(&answer).is_empty(), "{answer}");
        // An MDPH cannot read co-financing statuses, so it cannot subscribe to them; a dashboard subscribes to nothing.
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let answer = mdph.graphql(SUBSCRIBE, json!({ "input": { "url": "https://mdph.example.org/hook", "events": ["COFINANCING_STATUS_CHANGED"] } })).await?;
        assert_eq!(error_codes(&answer), ["FORBIDDEN"], "{answer}");
        let dashboard = hub.as_role(Role::Dashboard, None);
        let answer = dashboard.graphql(SUBSCRIBE, json!({ "input": { "url": "https://d.example.org/hook", "events": ["SUBMISSION_RECEIPT"] } })).await?;
        assert_eq!(error_codes(&answer), ["FORBIDDEN"], "{answer}");
        let answer = hub.anonymous().graphql(SUBSCRIBE, json!({ "input": { "url": "https://d.example.org/hook", "events": ["SUBMISSION_RECEIPT"] } })).await?;
        assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"], "{answer}");
        let listed = hub.as_admin().data("{ webhookSubscriptions(includeCancelled: true) { id } }").await?;
        assert_eq!(listed["webhookSubscriptions"], json!([]));

        // A collectivité subscribes for its départements; cancelling stops what was waiting.
        let cd = hub.as_role(Role::Collectivite, Some("69"));
        let answer = cd.graphql(SUBSCRIBE, json!({ "input": { "url": "https://cd69.example.org/hook", "events": ["COFINANCING_STATUS_CHANGED", "COFINANCING_STATUS_CHANGED"] } })).await?;
        let created = &answer["data"]["subscribeWebhook"]["subscription"];
        assert_eq!(created["scopeLevel"], "DEPARTEMENTS", "{answer}");
        assert_eq!(created["departementCodes"], json!(["69"]), "{answer}");
        assert_eq!(created["events"], json!(["COFINANCING_STATUS_CHANGED"]), "{answer}");
        let id = created["id"].as_str().unwrap();
        let cancelled = cd.graphql("mutation ($id: ID!) { cancelWebhookSubscription(id: $id) { active cancelledAt } }", json!({ "id": id })).await?;
        assert_eq!(cancelled["data"]["cancelWebhookSubscription"]["active"], false, "{cancelled}");
        assert_eq!(cd.data("{ webhookSubscriptions { id } }").await?["webhookSubscriptions"], json!([]));
        // Someone else's subscription cannot be cancelled.
        let answer = ars.graphql("mutation ($id: ID!) { cancelWebhookSubscription(id: $id) { active } }", json!({ "id": id })).await?;
        assert_eq!(error_codes(&answer), ["NOT_FOUND"], "{answer}");
        Ok(())
    }
}

db_test! {
    async fn a_delivery_cut_off_by_a_killed_hub_is_sent_once_it_restarts(hub) {
        let hub = hub.restart_with(quick).await?;
        let receiver = Receiver::start(Behaviour::Answer(200)).await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (subscription, _) = subscribe(&ars, &receiver.url, &["SUBMISSION_RECEIPT"]).await?;
        receiver.then(&[Behaviour::Hang]);
        crate::programming::create_measure(&ars, "HOOK-K1").await?;
        let first = receiver.wait_for("the first attempt", |r| !r.is_empty()).await;
        drop(ars);
        // The hub dies while the receiver holds the request; the delivery's claim lapses after its lease (1 s).
        let hub = hub.restart_with(quick).await?;
        let got = receiver.wait_for("the attempt after the restart", |r| r.len() >= 2).await;
        assert_eq!(got[1].delivery_id, first[0].delivery_id);
        let ars = hub.as_role(Role::Ars, Some("84"));
        let list = settled(&ars, &subscription, "DELIVERED", 1).await?;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        Ok(())
    }
}

db_test! {
    async fn two_instances_on_one_postgresql_never_send_a_delivery_twice(hub) {
        if !hub.database_url.starts_with("postgres") {
            return Ok(()); // SQLite is the single-instance embedded store
        }
        let fast = |config: &mut api::Config| config.webhooks.poll = Duration::from_millis(10);
        let hub = hub.restart_with(fast).await?;
        let second = hub.second_instance_with(fast).await?;
        let receiver = Receiver::start(Behaviour::Answer(200)).await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (subscription, _) = subscribe(&ars, &receiver.url, &["SUBMISSION_RECEIPT", "COFINANCING_STATUS_CHANGED"]).await?;
        // Writes on both instances, so that both dispatchers are woken.
        let ars_second = second.as_role(Role::Ars, Some("84"));
        for n in 0..15 {
            crate::programming::create_measure(&ars, &format!("HOOK-2I-{n}")).await?;
            crate::programming::create_measure(&ars_second, &format!("HOOK-2J-{n}")).await?;
        }
        let list = settled(&ars, &subscription, "DELIVERED", 60).await?;
        let expected = list.as_array().unwrap().len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = receiver.received();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for r in &got {
            *seen.entry(r.delivery_id.clone()).or_default() += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "sent more than once: {twice:?}");
        assert_eq!(seen.len(), expected);
        Ok(())
    }
}

db_test! {
    async fn an_approaching_deadline_is_announced_once_per_missing_institution(hub) {
        let receiver = Receiver::start(Behaviour::Answer(200)).await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (subscription, _) = subscribe(&ars, &receiver.url, &["CAMPAIGN_DEADLINE_APPROACHING"]).await?;
        let today = chrono::Utc::now().date_naive();
        let campaign = json!({
            "name": "Besoins 2027", "dataKind": "NEEDS",
            "opensOn": (today - chrono::Days::new(10)).to_string(),
            "deadline": (today + chrono::Days::new(3)).to_string(),
        });
        let answer = hub.as_cnsa().graphql("mutation ($input: CampaignInput!) { declareCampaign(input: $input) { id } }", json!({ "input": campaign })).await?;
        assert!(answer.get("errors").is_none(), "{answer}");
        // Region 84's MDPH (one per département), none of which has submitted.
        let list = settled(&ars, &subscription, "DELIVERED", 12).await?;
        let got = receiver.wait_for("the announcements", |r| r.len() >= 12).await;
        let mut institutions: Vec<String> = got
            .iter()
            .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"]["institutionCode"].as_str().unwrap().to_owned())
            .collect();
        institutions.sort();
        institutions.dedup();
        assert_eq!(institutions.len(), got.len(), "each institution once: {institutions:?}");
        assert_eq!(list.as_array().unwrap().len(), got.len());
        for r in &got {
            let body: Value = serde_json::from_str(&r.body)?;
            assert_eq!(body["regionCode"], "84", "{body}");
            assert_eq!(body["data"]["daysLeft"].as_i64().map(|d| (2..=3).contains(&d)), Some(true), "{body}");
        }
        Ok(())
    }
}

db_test! {
    async fn internal_addresses_are_refused_when_registered_and_before_each_delivery(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        // The cloud's metadata endpoint, private and unique-local networks, an IPv4 address written as IPv6.
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.8/hook",
            "https://192.168.1.20:8443/hook",
            "https://[fd00::1]/hook",
            "https://[::ffff:a9fe:a9fe]/hook",
        ] {
            let answer = ars.graphql(SUBSCRIBE, json!({ "input": { "url": url, "events": ["SUBMISSION_RECEIPT"] } })).await?;
            assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{url}: {answer}");
            let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains("adresse interne"), "{url}: {message}");
        }
        let listed = hub.as_admin().data("{ webhookSubscriptions(includeCancelled: true) { id } }").await?;
        assert_eq!(listed["webhookSubscriptions"], json!([]));

        // A network the operator names is allowed; the others stay refused.
        let hub = hub
            .restart_with(|config| {
                quick(config);
                config.outbound = api::exchange::outbound::Destinations::new(vec!["10.20.0.0/16".parse().unwrap()])
                    .with_loopback();
            })
            .await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        subscribe(&ars, "https://10.20.3.4/hook", &["COFINANCING_STATUS_CHANGED"]).await?;
        let answer = ars.graphql(SUBSCRIBE, json!({ "input": { "url": "https://10.21.0.1/hook", "events": ["SUBMISSION_RECEIPT"] } })).await?;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");

        // Registered while the local machine was allowed, then the hub restarted without it (as in production):
        // each attempt is refused before anything is sent, and says why.
        let receiver = Receiver::start(Behaviour::Answer(200)).await?;
        let (subscription, _) = subscribe(&ars, &receiver.url, &["SUBMISSION_RECEIPT"]).await?;
        drop(ars);
        let hub = hub
            .restart_with(|config| {
                quick(config);
                config.outbound = api::exchange::outbound::Destinations::default();
            })
            .await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        crate::programming::create_measure(&ars, "HOOK-SSRF").await?;
        let dead = settled(&ars, &subscription, "DEAD", 1).await?;
        assert_eq!(dead[0]["attempts"], 3, "{dead}");
        assert!(dead[0]["lastError"].as_str().unwrap_or_default().contains("adresse interne"), "{dead}");
        assert_eq!(dead[0]["lastStatus"], Value::Null, "{dead}");
        assert!(receiver.received().is_empty(), "nothing reached the local machine");
        Ok(())
    }
}

db_test! {
    async fn ended_deliveries_old_runs_and_expired_token_ids_are_swept_after_their_keeping_and_nothing_else(hub) {
        use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait};
        let hub = hub
            .restart_with(|config| {
                quick(config);
                // A failed delivery waits an hour: it stays PENDING for the sweep below.
                config.webhooks.retry_base = Duration::from_secs(3600);
            })
            .await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let delivered_to = Receiver::start(Behaviour::Answer(200)).await?;
        let failing = Receiver::start(Behaviour::Answer(500)).await?;
        let (delivered, _) = subscribe(&ars, &delivered_to.url, &["SUBMISSION_RECEIPT"]).await?;
        let (pending, _) = subscribe(&ars, &failing.url, &["SUBMISSION_RECEIPT"]).await?;
        crate::programming::create_measure(&ars, "HOOK-KEEP").await?;
        settled(&ars, &delivered, "DELIVERED", 1).await?;
        failing.wait_for("the first failed attempt", |r| !r.is_empty()).await;

        let now = chrono::Utc::now();
        let ago = |days: i64| (now - chrono::Duration::days(days)).fixed_offset();
        let run = |id: &str, finished| entities::pull_run::ActiveModel {
            id: Set(id.to_owned()),
            source_id: Set("source-of-the-test".to_owned()),
            instance: Set("test".to_owned()),
            started_at: Set(finished),
            finished_at: Set(finished),
            outcome: Set("ACCEPTED".to_owned()),
            http_status: Set(Some(200)),
            attempts: Set(1),
            rows_accepted: Set(1),
            submission_id: Set(None),
            content_hash: Set(None),
            errors: Set("[]".to_owned()),
        };
        entities::pull_run::Entity::insert_many([run("run-old", ago(120)), run("run-recent", ago(10))])
            .exec_without_returning(&hub.db)
            .await?;
        let seen = |id: &str, expires| entities::seen_token::ActiveModel {
            token_id: Set(id.to_owned()),
            issuer: Set("development".to_owned()),
            institution_code: Set("ARS-84".to_owned()),
            agent_id: Set(None),
            expires_at: Set(expires),
            first_seen_at: Set(ago(30)),
        };
        entities::seen_token::Entity::insert_many([
            seen("jti-expired", Some(ago(3))),
            seen("jti-live", Some((now + chrono::Duration::hours(1)).fixed_offset())),
            seen("jti-without-expiry", None),
        ])
        .exec_without_returning(&hub.db)
        .await?;
        let measures = entities::measure::Entity::find().count(&hub.db).await?;
        let audit = entities::audit_record::Entity::find().count(&hub.db).await?;

        // Today: the run of 120 days ago and the token expired 3 days ago go; nothing sent today does.
        let swept = api::kernel::retention::sweep(&hub.db, now, 90).await?;
        assert_eq!(
            swept,
            api::kernel::retention::Swept { webhook_deliveries: 0, pull_runs: 1, seen_tokens: 1 },
            "{swept:?}"
        );
        let runs: Vec<String> =
            entities::pull_run::Entity::find().all(&hub.db).await?.into_iter().map(|r| r.id).collect();
        assert_eq!(runs, ["run-recent"]);
        let mut tokens: Vec<String> =
            entities::seen_token::Entity::find().all(&hub.db).await?.into_iter().map(|t| t.token_id).collect();
        tokens.retain(|t| t.starts_with("jti-"));
        tokens.sort();
        assert_eq!(tokens, ["jti-live", "jti-without-expiry"]);

        // 91 days on: the delivered delivery goes, the pending one stays to be sent; measures and audit untouched.
        let later = now + chrono::Duration::days(91);
        let swept = api::kernel::retention::sweep(&hub.db, later, 90).await?;
        assert_eq!(swept.webhook_deliveries, 1, "{swept:?}");
        assert_eq!(deliveries(&ars, &delivered).await?, json!([]));
        let left = deliveries(&ars, &pending).await?;
        assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
        assert_eq!(left[0]["state"], "PENDING", "{left}");
        assert_eq!(entities::measure::Entity::find().count(&hub.db).await?, measures);
        assert_eq!(entities::audit_record::Entity::find().count(&hub.db).await?, audit);
        // A second sweep finds nothing more to do.
        let again = api::kernel::retention::sweep(&hub.db, later, 90).await?;
        assert_eq!(again.webhook_deliveries + again.pull_runs, 0, "{again:?}");
        Ok(())
    }
}

/// A key for the tests that store credentials sealed (`CNH_SECRETS_KEY`).
pub const SECRETS_KEY: &str = "8f1c2d3e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

db_test! {
    async fn signing_secrets_are_stored_sealed_once_the_hub_has_a_key(hub) {
        use sea_orm::EntityTrait;
        let stored = |hub: &TestHub, id: String| {
            let db = hub.db.clone();
            async move {
                let row = entities::webhook_subscription::Entity::find_by_id(id).one(&db).await?;
                Ok::<String, Box<dyn std::error::Error + Send + Sync>>(row.ok_or("the subscription")?.secret)
            }
        };
        // Without a key (development), a secret is stored as given.
        let hub = hub.restart_with(quick).await?;
        let receiver = Receiver::start(Behaviour::Answer(200)).await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (subscription, secret) = subscribe(&ars, &receiver.url, &["SUBMISSION_RECEIPT"]).await?;
        assert_eq!(stored(&hub, subscription.clone()).await?, secret);
        drop(ars);

        // Started with a key: the secret stored in clear is sealed, and deliveries are still signed with it.
        let with_key = |config: &mut api::Config| {
            quick(config);
            config.secrets_key = Some(api::config::Secret::new(SECRETS_KEY));
        };
        let hub = hub.restart_with(with_key).await?;
        let sealed = stored(&hub, subscription.clone()).await?;
        assert!(api::secrets::is_sealed(&sealed) && !sealed.contains(&secret), "{sealed}");
        let ars = hub.as_role(Role::Ars, Some("84"));
        crate::programming::create_measure(&ars, "HOOK-SEAL-1").await?;
        let got = receiver.wait_for("a delivery signed with the secret", |r| !r.is_empty()).await;
        verify(&secret, &got[0]);
        // A new subscription's secret is sealed from the start; it is shown once, in clear.
        let other = Receiver::start(Behaviour::Answer(200)).await?;
        let (second, second_secret) = subscribe(&ars, &other.url, &["SUBMISSION_RECEIPT"]).await?;
        let sealed = stored(&hub, second.clone()).await?;
        assert!(api::secrets::is_sealed(&sealed) && !sealed.contains(&second_secret), "{sealed}");
        settled(&ars, &subscription, "DELIVERED", 1).await?;
        drop(ars);

        // Another key does not open them: deliveries fail and say why, nothing is sent unsigned.
        let hub = hub
            .restart_with(|config| {
                quick(config);
                config.secrets_key = Some(api::config::Secret::new(SECRETS_KEY.replace("8", "9")));
            })
            .await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        crate::programming::create_measure(&ars, "HOOK-SEAL-2").await?;
        let dead = first_dead(&ars, &second).await?;
        assert!(dead["lastError"].as_str().unwrap_or_default().contains("ne s'ouvre pas"), "{dead}");
        assert!(other.received().is_empty(), "nothing sent without its signature");
        Ok(())
    }
}

#[tokio::test]
async fn the_production_profile_refuses_to_start_without_a_secrets_key() -> TestResult {
    let refused = TestHub::start_configured(|config| {
        config.profile = api::Profile::Production;
        config.issuers_file = Some(crate::auth::write_issuers_file_for_unreachable_idp());
    })
    .await;
    let err = refused.err().expect("no key: no start").to_string();
    assert!(err.contains("CNH_SECRETS_KEY"), "{err}");
    Ok(())
}

db_test! {
    async fn deliveries_are_listed_newest_first_page_after_page(hub) {
        let hub = hub.restart_with(quick).await?;
        let receiver = Receiver::start(Behaviour::Answer(200)).await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (subscription, _) = subscribe(&ars, &receiver.url, &["SUBMISSION_RECEIPT"]).await?;
        for n in 1..=3 {
            crate::programming::create_measure(&ars, &format!("HOOK-PAGE-{n}")).await?;
        }
        let all = settled(&ars, &subscription, "DELIVERED", 3).await?;
        let ids: Vec<&str> = all.as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
        let page = "query ($id: ID!, $before: ID) { webhookDeliveries(subscriptionId: $id, first: 2, before: $before) { id } }";
        let first = ars.graphql(page, json!({ "id": subscription })).await?;
        let first: Vec<&str> = first["data"]["webhookDeliveries"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
        assert_eq!(first, ids[..2]);
        let second = ars.graphql(page, json!({ "id": subscription, "before": first[1] })).await?;
        let second: Vec<&str> = second["data"]["webhookDeliveries"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
        assert_eq!(second, ids[2..]);
        let end = ars.graphql(page, json!({ "id": subscription, "before": ids[2] })).await?;
        assert_eq!(end["data"]["webhookDeliveries"], json!([]), "{end}");
        // A cursor that is not one of this subscription's deliveries is refused, not read as "from the start".
        let (other, _) = subscribe(&ars, &receiver.url, &["COFINANCING_STATUS_CHANGED"]).await?;
        for (id, before) in [(subscription.as_str(), "no-such-delivery"), (other.as_str(), ids[0])] {
            let answer = ars.graphql(page, json!({ "id": id, "before": before })).await?;
            assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
        }
        Ok(())
    }
}

db_test! {
    async fn the_secrets_key_is_rotated_without_losing_a_delivery(hub) {
        use sea_orm::EntityTrait;
        let new_key = SECRETS_KEY.replace("8", "9");
        let hub = hub
            .restart_with(|config| {
                quick(config);
                config.secrets_key = Some(api::config::Secret::new(SECRETS_KEY));
            })
            .await?;
        let receiver = Receiver::start(Behaviour::Answer(200)).await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (subscription, secret) = subscribe(&ars, &receiver.url, &["SUBMISSION_RECEIPT"]).await?;
        drop(ars);
        // The new key, the old one as previous: the stored secret moves to the new key at start.
        let hub = hub
            .restart_with(|config| {
                quick(config);
                config.secrets_key = Some(api::config::Secret::new(new_key.clone()));
                config.secrets_previous_key = Some(api::config::Secret::new(SECRETS_KEY));
            })
            .await?;
        let row = entities::webhook_subscription::Entity::find_by_id(subscription.clone()).one(&hub.db).await?.ok_or("row")?;
        let new_only = api::secrets::SecretBox::from_hex(&new_key)?;
        assert_eq!(new_only.open(api::exchange::SECRET_COLUMN, &row.secret)?, secret);
        let ars = hub.as_role(Role::Ars, Some("84"));
        crate::programming::create_measure(&ars, "HOOK-ROTATE-1").await?;
        let got = receiver.wait_for("a delivery during the rotation", |r| !r.is_empty()).await;
        verify(&secret, &got[0]);
        drop(ars);
        // The old key dropped: deliveries go on, signed with the same secret.
        let hub = hub
            .restart_with(|config| {
                quick(config);
                config.secrets_key = Some(api::config::Secret::new(new_key.clone()));
            })
            .await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        crate::programming::create_measure(&ars, "HOOK-ROTATE-2").await?;
        let got = receiver.wait_for("a delivery after the rotation", |r| r.len() >= 2).await;
        verify(&secret, &got[1]);
        settled(&ars, &subscription, "DELIVERED", 2).await?;
        Ok(())
    }
}
