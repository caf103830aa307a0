//! Pull sources: institutions' systems (real local HTTP servers) the hub fetches on schedule: a good pull, 304s,
//! unchanged documents, 500s then recovery, the circuit breaker, timeouts, slow bodies, malformed JSON, oversized
//! answers, invalid rows (nothing stored, every problem recorded), a GraphQL source behind OAuth2, a hub killed
//! during a pull, and two instances on one PostgreSQL that never pull one source at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::access::principal::Role;
use api::pulls::PullSettings;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support::{Caller, TestHub, TestResult, error_codes};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the source answers to a request.
#[derive(Clone, Debug)]
enum Reply {
    /// 200 with this body and, if given, this ETag (a matching If-None-Match gets 304).
    Document {
        body: String,
        etag: Option<String>,
    },
    Status(u16),
    /// Never answers.
    Hang,
    /// Answers 200 at once, then sends its body a few bytes every 300 ms.
    Slow(String),
    /// A 200 body of this many bytes, streamed without a Content-Length.
    Big(usize),
}

#[derive(Clone, Debug, Default)]
struct Seen {
    authorization: Option<String>,
    if_none_match: Option<String>,
    body: String,
}

#[derive(Clone)]
struct Source {
    url: String,
    token_url: String,
    plan: Arc<Mutex<VecDeque<Reply>>>,
    otherwise: Arc<Mutex<Reply>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests being answered now, and the most seen at once.
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// Wait before answering each request.
    delay: Arc<Mutex<Duration>>,
}

impl Source {
    async fn start(otherwise: Reply) -> Result<Source, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let source = Source {
            url: format!("{base}/export"),
            token_url: format!("{base}/token"),
            plan: Arc::default(),
            otherwise: Arc::new(Mutex::new(otherwise)),
            seen: Arc::default(),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
            delay: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/export", axum::routing::get(answer).post(answer))
            .route("/token", axum::routing::post(token))
            .with_state(source.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(source)
    }

    fn then(&self, replies: &[Reply]) {
        self.plan.lock().unwrap().extend(replies.iter().cloned());
    }

    fn otherwise(&self, reply: Reply) {
        *self.otherwise.lock().unwrap() = reply;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(State(source): State<Source>, headers: HeaderMap, body: String) -> Response {
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let seen =
        Seen { authorization: header(header::AUTHORIZATION), if_none_match: header(header::IF_NONE_MATCH), body };
    source.seen.lock().unwrap().push(seen.clone());
    // The reply is taken as the request is seen: a request whose client dies before the reply is written (the
    // handler is then dropped) has still used its turn, as the test that kills a hub mid-pull expects.
    let reply = source.plan.lock().unwrap().pop_front().unwrap_or_else(|| source.otherwise.lock().unwrap().clone());
    let now = source.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    source.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = *source.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    source.in_flight.fetch_sub(1, Ordering::SeqCst);
    match reply {
        Reply::Document { body, etag } => {
            if etag.is_some() && seen.if_none_match == etag {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(etag) = etag {
                response.headers_mut().insert(header::ETAG, etag.parse().unwrap());
            }
            response
        }
        Reply::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Reply::Hang => std::future::pending().await,
        Reply::Slow(body) => {
            let chunks: Vec<String> =
                body.as_bytes().chunks(8).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
            let stream = futures_util::stream::unfold(chunks.into_iter(), |mut chunks| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                chunks.next().map(|c| (Ok::<_, std::io::Error>(c), chunks))
            });
            Body::from_stream(stream).into_response()
        }
        Reply::Big(size) => {
            let chunk = "x".repeat(16 * 1024);
            let count = size / chunk.len() + 1;
            let stream = futures_util::stream::iter((0..count).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            Body::from_stream(stream).into_response()
        }
    }
}

/// An OAuth2 token endpoint: client `hub` with secret `s3cret` gets `issued-token`.
async fn token(headers: HeaderMap, body: String) -> Response {
    let expected = format!("Basic {}", base64_encode(b"hub:s3cret"));
    let authorized = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !authorized || !body.contains("grant_type=client_credentials") {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"invalid_client\"}").into_response();
    }
    axum::Json(json!({ "access_token": "issued-token", "token_type": "Bearer", "expires_in": 300 })).into_response()
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Settings for tests: short timeouts and waits, a small size cap.
fn fast(config: &mut api::Config) {
    config.pulls = PullSettings {
        poll: Duration::from_millis(100),
        min_interval: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_millis(1500),
        max_bytes: 64 * 1024,
        attempts: 3,
        retry_base: Duration::from_millis(50),
        retry_cap: Duration::from_millis(200),
        lease: Duration::from_secs(8),
        degraded_after: 3,
        breaker_cap: Duration::from_secs(2),
    };
}

/// A needs document of the JSON exchange format for the Rhône, `value` people waiting.
fn needs_document(value: i64) -> String {
    json!({
        "format": "cnh-hub/1",
        "kind": "NEEDS",
        "asOf": "2026-11-30T18:00:00+01:00",
        "data": {
            "departementCode": "69",
            "referenceDate": "2026-06-30",
            "indicators": [
                { "orientationCode": "7.1", "ageBand": "TOUS", "indicator": "EN_ATTENTE_ADMISSION", "value": value },
                { "orientationCode": "7.8", "ageBand": "TOUS", "indicator": "EN_ATTENTE_ADMISSION", "value": 3 }
            ]
        }
    })
    .to_string()
}

const REGISTER: &str = "mutation ($input: PullSourceInput!) {
  registerPullSource(input: $input) { id institutionCode kind format auth status intervalSeconds }
}";

async fn register(caller: &Caller<'_>, input: Value) -> Result<String, BoxError> {
    let answer = caller.graphql(REGISTER, json!({ "input": input })).await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    Ok(answer["data"]["registerPullSource"]["id"].as_str().unwrap().to_owned())
}

async fn runs(caller: &Caller<'_>, source: &str) -> Result<Vec<Value>, BoxError> {
    let answer = caller
        .graphql(
            "query ($id: ID!) { pullRuns(sourceId: $id, first: 500) {
                id outcome httpStatus attempts rowsAccepted submissionId contentHash instance errors { path code message } } }",
            json!({ "id": source }),
        )
        .await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    Ok(answer["data"]["pullRuns"].as_array().cloned().unwrap_or_default())
}

/// Waits until the source has `count` runs (15 s at most); returns them, newest first.
async fn wait_runs(caller: &Caller<'_>, source: &str, count: usize) -> Result<Vec<Value>, BoxError> {
    for _ in 0..300 {
        let runs = runs(caller, source).await?;
        if runs.len() >= count {
            return Ok(runs);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{count} runs of {source} not recorded within 15 s: {:#?}", runs(caller, source).await?).into())
}

/// Asks for a pull now and waits for its run; returns it.
async fn pull_now(caller: &Caller<'_>, source: &str) -> Result<Value, BoxError> {
    let before = runs(caller, source).await?.len();
    let answer =
        caller.graphql("mutation ($id: ID!) { pullSourceNow(id: $id) { id } }", json!({ "id": source })).await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    Ok(wait_runs(caller, source, before + 1).await?[0].clone())
}

async fn source_state(caller: &Caller<'_>, source: &str) -> Result<Value, BoxError> {
    let sources = caller.data("{ pullSources { id status consecutiveFailures nextPullAt lastSuccessAt } }").await?;
    Ok(sources["pullSources"].as_array().unwrap().iter().find(|s| s["id"] == source).cloned().unwrap_or(Value::Null))
}

async fn needs_values(caller: &Caller<'_>) -> Result<Vec<(String, i64)>, BoxError> {
    let data = caller.data("{ needs(first: 100) { nodes { orientationCode value } } }").await?;
    Ok(data["needs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["orientationCode"].as_str().unwrap().to_owned(), n["value"].as_i64().unwrap()))
        .collect())
}

db_test! {
    async fn a_pulled_document_is_stored_like_a_push_and_not_twice(hub) {
        let hub = hub.restart_with(fast).await?;
        let source = Source::start(Reply::Document { body: needs_document(12), etag: Some("\"v1\"".into()) }).await?;
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let id = register(&mdph, json!({
            "name": "SI de la MDPH du Rhône", "url": source.url, "kind": "NEEDS", "bearerToken": "mdph-69-token",
            "intervalSeconds": 3600
        })).await?;
        // Registered: pulled at once.
        let first = wait_runs(&mdph, &id, 1).await?[0].clone();
        assert_eq!(first["outcome"], "ACCEPTED", "{first}");
        assert_eq!(first["httpStatus"], 200);
        assert_eq!(first["rowsAccepted"], 2);
        assert_eq!(source.seen()[0].authorization.as_deref(), Some("Bearer mdph-69-token"));
        let mut stored = needs_values(&mdph).await?;
        stored.sort();
        assert_eq!(stored, [("7.1".to_owned(), 12), ("7.8".to_owned(), 3)]);
        // Its provenance: the pull, its source and the document's asOf.
        let data = mdph.data("{ needs(first: 1) { nodes { provenance { channel sourceId asOf institutionCode submissionId } } } }").await?;
        let provenance = &data["needs"]["nodes"][0]["provenance"];
        assert_eq!(provenance["channel"], "PULL");
        assert_eq!(provenance["sourceId"], id.as_str());
        // The same instant (PostgreSQL gives it back in UTC).
        let as_of = chrono::DateTime::parse_from_rfc3339(provenance["asOf"].as_str().unwrap())?;
        assert_eq!(as_of, chrono::DateTime::parse_from_rfc3339("2026-11-30T18:00:00+01:00")?);
        assert_eq!(provenance["institutionCode"], "MDPH-69");
        assert_eq!(provenance["submissionId"], first["submissionId"]);
        // The write was audited as the MDPH's, by the source.
        let audit = mdph.data("{ auditTrail(first: 20) { nodes { operation agentId } } }").await?;
        assert!(audit["auditTrail"]["nodes"].as_array().unwrap().iter().any(|n| n["operation"] == "submitNeeds"
            && n["agentId"] == format!("pull:{id}")), "{audit}");

        // The same ETag: a conditional request, a 304, nothing to do.
        let second = pull_now(&mdph, &id).await?;
        assert_eq!(second["outcome"], "NOT_MODIFIED", "{second}");
        assert_eq!(source.seen().last().unwrap().if_none_match.as_deref(), Some("\"v1\""));

        // The same data laid out otherwise, without validators: recognised by its hash, not stored twice.
        let relaid: Value = serde_json::from_str(&needs_document(12))?;
        source.otherwise(Reply::Document { body: serde_json::to_string_pretty(&relaid)?, etag: None });
        let third = pull_now(&mdph, &id).await?;
        assert_eq!(third["outcome"], "UNCHANGED", "{third}");
        assert_eq!(third["contentHash"], first["contentHash"]);
        let receipts = mdph.data("{ auditTrail(first: 100) { nodes { operation } } }").await?;
        let submits = receipts["auditTrail"]["nodes"].as_array().unwrap().iter().filter(|n| n["operation"] == "submitNeeds").count();
        assert_eq!(submits, 1, "an unchanged document is not submitted again");

        // New data: stored.
        source.otherwise(Reply::Document { body: needs_document(15), etag: Some("\"v2\"".into()) });
        let fourth = pull_now(&mdph, &id).await?;
        assert_eq!(fourth["outcome"], "ACCEPTED", "{fourth}");
        assert!(needs_values(&mdph).await?.contains(&("7.1".to_owned(), 15)));
        let state = source_state(&mdph, &id).await?;
        assert_eq!(state["status"], "ACTIVE");
        assert!(state["lastSuccessAt"].is_string());

        // Back and forth between two documents (counts go up and down): stored at every change, never replayed.
        for value in [12, 15, 12, 15] {
            source.otherwise(Reply::Document { body: needs_document(value), etag: None });
            let run = pull_now(&mdph, &id).await?;
            assert_eq!(run["outcome"], "ACCEPTED", "{value}: {run}");
            assert!(needs_values(&mdph).await?.contains(&("7.1".to_owned(), value)), "{value} stored");
        }
        let accepted = runs(&mdph, &id).await?.iter().filter(|r| r["outcome"] == "ACCEPTED").count();
        assert_eq!(accepted, 2 + 4, "the first two documents, then each of the four changes");
        Ok(())
    }
}

db_test! {
    async fn failures_are_retried_then_degrade_the_source_which_recovers_by_itself(hub) {
        let hub = hub.restart_with(fast).await?;
        let source = Source::start(Reply::Document { body: needs_document(7), etag: None }).await?;
        // Two 500s, then the document: one run, three attempts.
        source.then(&[Reply::Status(500), Reply::Status(503)]);
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let id = register(&mdph, json!({ "name": "MDPH", "url": source.url, "kind": "NEEDS", "intervalSeconds": 1 })).await?;
        let first = wait_runs(&mdph, &id, 1).await?[0].clone();
        assert_eq!(first["outcome"], "ACCEPTED", "{first}");
        assert_eq!(first["attempts"], 3);

        // Down for good: each run tries three times, then fails; after three failed runs the breaker trips.
        source.otherwise(Reply::Status(500));
        let mut degraded = Value::Null;
        for _ in 0..200 {
            degraded = source_state(&mdph, &id).await?;
            if degraded["status"] == "DEGRADED" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(degraded["status"], "DEGRADED", "{degraded}");
        assert!(degraded["consecutiveFailures"].as_i64().unwrap() >= 3);
        let failed = runs(&mdph, &id).await?;
        let last = &failed[0];
        assert_eq!(last["outcome"], "FAILED", "{last}");
        assert_eq!(last["httpStatus"], 500);
        assert_eq!(last["attempts"], 3);
        assert_eq!(last["errors"][0]["code"], "FETCH_FAILED");
        // Nothing but the first document is stored.
        assert!(needs_values(&mdph).await?.contains(&("7.1".to_owned(), 7)));

        // Back up: the next scheduled pull succeeds and the source is ACTIVE again, with no one asking.
        source.otherwise(Reply::Document { body: needs_document(9), etag: None });
        let mut recovered = Value::Null;
        for _ in 0..200 {
            recovered = source_state(&mdph, &id).await?;
            if recovered["status"] == "ACTIVE" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(recovered["status"], "ACTIVE", "{recovered}");
        assert_eq!(recovered["consecutiveFailures"], 0);
        assert!(needs_values(&mdph).await?.contains(&("7.1".to_owned(), 9)));
        Ok(())
    }
}

db_test! {
    async fn timeouts_slow_bodies_bad_documents_and_invalid_rows_store_nothing_and_say_why(hub) {
        let hub = hub.restart_with(fast).await?;
        let source = Source::start(Reply::Document { body: needs_document(4), etag: None }).await?;
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let id = register(&mdph, json!({ "name": "MDPH", "url": source.url, "kind": "NEEDS", "intervalSeconds": 3600 })).await?;
        assert_eq!(wait_runs(&mdph, &id, 1).await?[0]["outcome"], "ACCEPTED");
        let before = needs_values(&mdph).await?;

        // No answer at all: a timeout on each attempt.
        source.then(&[Reply::Hang, Reply::Hang, Reply::Hang]);
        let run = pull_now(&mdph, &id).await?;
        assert_eq!(run["outcome"], "FAILED", "{run}");
        assert_eq!(run["attempts"], 3);
        assert!(run["errors"][0]["message"].as_str().unwrap().contains("délai dépassé"), "{run}");

        // Headers at once, a body too slow to arrive within the total timeout.
        let slow = Reply::Slow(needs_document(5));
        source.then(&[slow.clone(), slow.clone(), slow]);
        let run = pull_now(&mdph, &id).await?;
        assert_eq!(run["outcome"], "FAILED", "{run}");
        assert_eq!(run["httpStatus"], 200);

        // Not JSON.
        source.then(&[Reply::Document { body: "{ \"format\": \"cnh-hub/1\", ".into(), etag: None }]);
        let run = pull_now(&mdph, &id).await?;
        assert_eq!(run["outcome"], "REJECTED", "{run}");
        assert_eq!(run["errors"][0]["code"], "MALFORMED_DOCUMENT");
        assert_eq!(run["attempts"], 1, "a malformed document is not fetched again in the same run");

        // Larger than the cap (64 KiB here), streamed without a length: cut off, not retried.
        source.then(&[Reply::Big(200 * 1024)]);
        let run = pull_now(&mdph, &id).await?;
        assert_eq!(run["outcome"], "FAILED", "{run}");
        assert_eq!(run["attempts"], 1);
        assert!(run["errors"][0]["message"].as_str().unwrap().contains("trop volumineuse"), "{run}");

        // Readable, but rows break the rules: nothing stored, every problem recorded by its path.
        let mut invalid: Value = serde_json::from_str(&needs_document(6))?;
        invalid["data"]["indicators"][0]["orientationCode"] = json!("99.99");
        invalid["data"]["indicators"][1]["value"] = json!(-3);
        source.then(&[Reply::Document { body: invalid.to_string(), etag: None }]);
        let run = pull_now(&mdph, &id).await?;
        assert_eq!(run["outcome"], "REJECTED", "{run}");
        let paths: Vec<&str> = run["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
        assert!(paths.iter().any(|p| p.starts_with("indicators[0]")), "{run}");
        assert!(paths.iter().any(|p| p.starts_with("indicators[1]")), "{run}");
        // A document of the wrong kind.
        source.then(&[Reply::Document { body: needs_document(6).replace("\"NEEDS\"", "\"SCHOOL_PLANS\""), etag: None }]);
        let run = pull_now(&mdph, &id).await?;
        assert_eq!(run["outcome"], "REJECTED", "{run}");
        assert_eq!(run["errors"][0]["path"], "kind");

        assert_eq!(needs_values(&mdph).await?, before, "no failed pull stored anything");
        // Six failed runs in a row: the breaker has tripped.
        let state = source_state(&mdph, &id).await?;
        assert_eq!(state["status"], "DEGRADED", "{state}");
        Ok(())
    }
}

db_test! {
    async fn a_graphql_source_behind_oauth2_client_credentials(hub) {
        // With a key: the client secret is stored sealed, and opened for the token request only.
        let hub = hub
            .restart_with(|config| {
                fast(config);
                config.secrets_key = Some(api::config::Secret::new(crate::webhooks::SECRETS_KEY));
            })
            .await?;
        let answer = json!({ "data": { "besoins": serde_json::from_str::<Value>(&needs_document(21))?["data"] } });
        let source = Source::start(Reply::Document { body: answer.to_string(), etag: None }).await?;
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let query = "{ besoins: exportBesoins(departement: \"69\") { departementCode referenceDate indicators { orientationCode ageBand indicator value } } }";
        let id = register(&mdph, json!({
            "name": "API GraphQL du SI MDPH", "url": source.url, "kind": "NEEDS", "format": "GRAPHQL", "graphqlQuery": query,
            "oauth2": { "tokenUrl": source.token_url, "clientId": "hub", "clientSecret": "s3cret", "scope": "besoins" },
            "intervalSeconds": 3600
        })).await?;
        let run = wait_runs(&mdph, &id, 1).await?[0].clone();
        assert_eq!(run["outcome"], "ACCEPTED", "{run}");
        let seen = source.seen();
        assert_eq!(seen[0].authorization.as_deref(), Some("Bearer issued-token"));
        {
            use sea_orm::EntityTrait;
            let row = entities::pull_source::Entity::find_by_id(id.clone()).one(&hub.db).await?.ok_or("the source")?;
            let stored = row.oauth_client_secret.unwrap_or_default();
            assert!(api::secrets::is_sealed(&stored) && !stored.contains("s3cret"), "stored sealed: {stored}");
        }
        let sent: Value = serde_json::from_str(&seen[0].body)?;
        assert_eq!(sent["query"], query);
        assert!(needs_values(&mdph).await?.contains(&("7.1".to_owned(), 21)));
        // The source's GraphQL errors refuse the answer.
        source.then(&[Reply::Document { body: json!({ "errors": [{ "message": "champ inconnu" }] }).to_string(), etag: None }]);
        let run = pull_now(&mdph, &id).await?;
        assert_eq!(run["outcome"], "REJECTED");
        assert!(run["errors"][0]["message"].as_str().unwrap().contains("champ inconnu"));
        // Credentials are never shown back, whatever is asked for.
        let everything = "{ pullSources { id institutionCode name url kind format graphqlQuery auth oauthTokenUrl
            oauthClientId intervalSeconds status consecutiveFailures nextPullAt lastSuccessAt createdAt
            lastRun { id errors { message } } } }";
        let listed = mdph.data(everything).await?;
        assert_eq!(listed["pullSources"][0]["auth"], "OAUTH2_CLIENT_CREDENTIALS");
        assert_eq!(listed["pullSources"][0]["oauthClientId"], "hub");
        assert!(!listed.to_string().contains("s3cret") && !listed.to_string().contains("issued-token"), "{listed}");
        Ok(())
    }
}

db_test! {
    async fn sources_are_checked_scoped_and_paused(hub) {
        let hub = hub.restart_with(fast).await?;
        let source = Source::start(Reply::Document { body: needs_document(1), etag: None }).await?;
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let refused = [
            (json!({ "name": "x", "url": "http://mdph.example.org/export", "kind": "NEEDS" }), "BAD_USER_INPUT"),
            (json!({ "name": "x", "url": "https://user:pw@mdph.example.org/export", "kind": "NEEDS" }), "BAD_USER_INPUT"),
            (json!({ "name": "x", "url": source.url, "kind": "NEEDS", "intervalSeconds": 0 }), "BAD_USER_INPUT"),
            (json!({ "name": "x", "url": source.url, "kind": "NEEDS", "format": "GRAPHQL" }), "BAD_USER_INPUT"),
            (json!({ "name": "x", "url": source.url, "kind": "NEEDS", "format": "GRAPHQL", "graphqlQuery": "{ oops" }), "BAD_USER_INPUT"),
            (json!({ "name": "x", "url": source.url, "kind": "NEEDS", "bearerToken": "a",
                     "oauth2": { "tokenUrl": source.token_url, "clientId": "a", "clientSecret": "b" } }), "BAD_USER_INPUT"),
            // Internal addresses (server-side request forgery): the source, or its token endpoint.
            (json!({ "name": "x", "url": "https://169.254.169.254/latest/meta-data/", "kind": "NEEDS" }), "BAD_USER_INPUT"),
            (json!({ "name": "x", "url": source.url, "kind": "NEEDS",
                     "oauth2": { "tokenUrl": "https://10.0.0.5/token", "clientId": "a", "clientSecret": "b" } }), "BAD_USER_INPUT"),
            // An MDPH does not submit commitments: its source may not either.
            (json!({ "name": "x", "url": source.url, "kind": "COMMITMENTS" }), "FORBIDDEN"),
            (json!({ "name": "x", "url": source.url, "kind": "NEEDS", "institutionCode": "MDPH-13" }), "FORBIDDEN"),
        ];
        for (input, code) in refused {
            let answer = mdph.graphql(REGISTER, json!({ "input": input })).await?;
            assert_eq!(error_codes(&answer), [code], "{input}: {answer}");
        }
        assert_eq!(mdph.data("{ pullSources { id } }").await?["pullSources"], json!([]), "nothing was registered");

        // The operator registers on an institution's behalf, and must name it.
        let admin = hub.as_admin();
        let answer = admin.graphql(REGISTER, json!({ "input": { "name": "x", "url": source.url, "kind": "NEEDS" } })).await?;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"]);
        let id = register(&admin, json!({ "name": "Pour la MDPH du Rhône", "url": source.url, "kind": "NEEDS",
            "institutionCode": "MDPH-69", "intervalSeconds": 3600 })).await?;
        assert_eq!(wait_runs(&mdph, &id, 1).await?[0]["outcome"], "ACCEPTED");

        // Another MDPH neither sees nor drives it.
        let other = hub.as_role(Role::Mdph, Some("13"));
        assert_eq!(other.data("{ pullSources { id } }").await?["pullSources"], json!([]));
        let answer = other.graphql("mutation ($id: ID!) { pullSourceNow(id: $id) { id } }", json!({ "id": id })).await?;
        assert_eq!(error_codes(&answer), ["NOT_FOUND"]);
        let answer = other.graphql("query ($id: ID!) { pullRuns(sourceId: $id) { id } }", json!({ "id": id })).await?;
        assert_eq!(error_codes(&answer), ["NOT_FOUND"]);
        // A dashboard has no pull sources.
        let answer = hub.as_role(Role::Dashboard, None).graphql("{ pullSources { id } }", json!({})).await?;
        assert_eq!(error_codes(&answer), ["FORBIDDEN"]);

        // Paused: not pulled, not pullable now; resumed: pulled at once.
        let paused = mdph.graphql("mutation ($id: ID!) { pausePullSource(id: $id) { status nextPullAt } }", json!({ "id": id })).await?;
        assert_eq!(paused["data"]["pausePullSource"]["status"], "PAUSED", "{paused}");
        let answer = mdph.graphql("mutation ($id: ID!) { pullSourceNow(id: $id) { id } }", json!({ "id": id })).await?;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"]);
        let count = runs(&mdph, &id).await?.len();
        let resumed = mdph.graphql("mutation ($id: ID!) { resumePullSource(id: $id) { status } }", json!({ "id": id })).await?;
        assert_eq!(resumed["data"]["resumePullSource"]["status"], "ACTIVE", "{resumed}");
        wait_runs(&mdph, &id, count + 1).await?;
        // Every change is audited.
        let audit = admin.data("{ auditTrail(first: 100) { nodes { operation } } }").await?;
        let operations: Vec<&str> = audit["auditTrail"]["nodes"].as_array().unwrap().iter().filter_map(|n| n["operation"].as_str()).collect();
        for operation in ["registerPullSource", "pausePullSource", "resumePullSource"] {
            assert!(operations.contains(&operation), "{operation} in {operations:?}");
        }
        Ok(())
    }
}

db_test! {
    async fn a_hub_killed_during_a_pull_pulls_again_once_restarted(hub) {
        let hub = hub.restart_with(|c| {
            fast(c);
            c.pulls.lease = Duration::from_secs(4);
            c.pulls.timeout = Duration::from_secs(30);
        }).await?;
        let source = Source::start(Reply::Document { body: needs_document(31), etag: None }).await?;
        source.then(&[Reply::Hang]);
        let id = register(&hub.as_role(Role::Mdph, Some("69")), json!({
            "name": "MDPH", "url": source.url, "kind": "NEEDS", "intervalSeconds": 3600 })).await?;
        // The first request hangs; the hub dies with it, leaving no run.
        for _ in 0..100 {
            if !source.seen().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(source.seen().len(), 1);
        let hub = hub.restart_with(|c| {
            fast(c);
            c.pulls.lease = Duration::from_secs(2);
        }).await?;
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        // Once the dead instance's lease lapses, the source is pulled again, once.
        let run = wait_runs(&mdph, &id, 1).await?[0].clone();
        assert_eq!(run["outcome"], "ACCEPTED", "{run}");
        assert!(needs_values(&mdph).await?.contains(&("7.1".to_owned(), 31)));
        assert_eq!(runs(&mdph, &id).await?.len(), 1);
        Ok(())
    }
}

/// Two hub processes on one PostgreSQL: each due pull is claimed by one of them; never two at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_never_pull_one_source_at_once() -> TestResult {
    let Some(backend) = crate::support::Backend::postgres()? else { return Ok(()) };
    let first = TestHub::start(backend).await?.restart_with(fast).await?;
    let second = first.second_instance_with(fast).await?;
    let source = Source::start(Reply::Document { body: needs_document(2), etag: None }).await?;
    // Each answer takes a while, so that a second concurrent pull would be seen.
    *source.delay.lock().unwrap() = Duration::from_millis(300);
    let mdph = first.as_role(Role::Mdph, Some("69"));
    let id =
        register(&mdph, json!({ "name": "MDPH", "url": source.url, "kind": "NEEDS", "intervalSeconds": 1 })).await?;
    let recorded = wait_runs(&second.as_role(Role::Mdph, Some("69")), &id, 5).await?;
    assert_eq!(source.most_in_flight.load(Ordering::SeqCst), 1, "two pulls of one source ran at once");
    // Every request the source served is one run (the last may still be under way).
    let served = source.seen().len();
    assert!((recorded.len()..=recorded.len() + 2).contains(&served), "{served} served, {} runs", recorded.len());
    let outcomes: Vec<&str> = recorded.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "ACCEPTED").count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| *o == "ACCEPTED" || *o == "UNCHANGED"), "{outcomes:?}");
    drop(second);
    Ok(())
}

db_test! {
    async fn sources_runs_subscriptions_and_deliveries_export_as_spreadsheets_within_their_owner(hub) {
        let hub = hub.restart_with(fast).await?;
        let source = Source::start(Reply::Document { body: needs_document(8), etag: None }).await?;
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        // Told of its own receipts, pulled ones included (nobody listens there: the delivery waits, pending).
        let subscribed = mdph.graphql(
            "mutation ($url: String!) { subscribeWebhook(input: { url: $url, events: [SUBMISSION_RECEIPT] }) { subscription { id } } }",
            json!({ "url": "http://127.0.0.1:9/hook" }),
        ).await?;
        assert!(subscribed.get("errors").is_none(), "{subscribed}");
        let id = register(&mdph, json!({ "name": "SI MDPH 69", "url": source.url, "kind": "NEEDS", "bearerToken": "secret-bearer",
            "intervalSeconds": 3600 })).await?;
        let run = wait_runs(&mdph, &id, 1).await?[0].clone();
        assert_eq!(run["outcome"], "ACCEPTED", "{run}");
        let get = |caller: &Caller<'_>, path: &str| {
            let request = hub.client.get(hub.url(path)).bearer_auth(caller.token.clone().unwrap_or_default());
            async move {
                let answer = request.send().await?;
                Ok::<_, reqwest::Error>((answer.status().as_u16(), answer.bytes().await?.to_vec()))
            }
        };
        let (status, body) = get(&mdph, "/exports/pull-sources.csv").await?;
        assert_eq!(status, 200);
        let text = String::from_utf8(body)?;
        assert!(text.contains("SI MDPH 69") && text.contains("BEARER"), "{text}");
        assert!(!text.contains("secret-bearer"), "credentials never leave the hub: {text}");
        let (status, body) = get(&mdph, "/exports/pull-runs.csv").await?;
        assert_eq!(status, 200);
        let text = String::from_utf8(body)?;
        assert!(text.contains("ACCEPTED") && text.contains(run["submissionId"].as_str().unwrap()), "{text}");
        let (status, body) = get(&mdph, "/exports/webhook-subscriptions.csv").await?;
        assert_eq!(status, 200);
        assert!(String::from_utf8(body)?.contains("SUBMISSION_RECEIPT"));
        let (status, body) = get(&mdph, "/exports/webhook-deliveries.csv").await?;
        assert_eq!(status, 200);
        let text = String::from_utf8(body)?;
        assert!(text.contains(&format!("receipt:{}", run["submissionId"].as_str().unwrap())), "{text}");
        let (status, body) = get(&mdph, "/exports/pull-runs.xlsx").await?;
        assert_eq!(status, 200);
        assert_eq!(&body[..2], b"PK", "an XLSX file is a zip");
        // Another MDPH's lists hold none of it; the operator's hold all; a dashboard gets none.
        let other = hub.as_role(Role::Mdph, Some("13"));
        for list in ["pull-sources", "pull-runs", "webhook-subscriptions", "webhook-deliveries"] {
            let (status, body) = get(&other, &format!("/exports/{list}.csv")).await?;
            assert_eq!(status, 200, "{list}");
            assert_eq!(String::from_utf8(body)?.trim_end().lines().count(), 1, "{list}: headers only");
            let (status, body) = get(&hub.as_admin(), &format!("/exports/{list}.csv")).await?;
            assert_eq!(status, 200, "{list}");
            assert!(String::from_utf8(body)?.trim_end().lines().count() >= 2, "{list}: the operator sees all");
        }
        let (status, _) = get(&hub.as_role(Role::Dashboard, None), "/exports/pull-sources.csv").await?;
        assert_eq!(status, 403);
        Ok(())
    }
}

db_test! {
    async fn runs_are_listed_newest_first_page_after_page(hub) {
        let hub = hub.restart_with(fast).await?;
        let source = Source::start(Reply::Document { body: needs_document(4), etag: None }).await?;
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let id = register(&mdph, json!({ "name": "Pages", "url": source.url, "kind": "NEEDS", "intervalSeconds": 3600 })).await?;
        wait_runs(&mdph, &id, 1).await?;
        pull_now(&mdph, &id).await?;
        pull_now(&mdph, &id).await?;
        let all: Vec<String> = runs(&mdph, &id).await?.iter().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect();
        assert_eq!(all.len(), 3);
        let page = "query ($id: ID!, $before: ID) { pullRuns(sourceId: $id, first: 2, before: $before) { id } }";
        let ids = |answer: &Value| -> Vec<String> {
            answer["data"]["pullRuns"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect()
        };
        let first = ids(&mdph.graphql(page, json!({ "id": id })).await?);
        assert_eq!(first, all[..2]);
        let second = ids(&mdph.graphql(page, json!({ "id": id, "before": first[1] })).await?);
        assert_eq!(second, all[2..]);
        let answer = mdph.graphql(page, json!({ "id": id, "before": "no-such-run" })).await?;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
        Ok(())
    }
}
