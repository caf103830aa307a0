//! HTTP surface: `POST /graphql`, `GET /graphql` (GraphiQL for a browser, queries otherwise), and the health probes.

use async_graphql::ErrorExtensions;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::{GraphiQLSource, MultipartOptions};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

use super::executor::HubExecutor;
use crate::access::principal::Authentication;
use crate::error::code;
use crate::graphql::answers::AnswerCache;
use crate::http::rate_limits::{Budget, SUBSCRIPTION_COST};
use crate::http::{Gate, authenticate, refusal};

/// What the GraphQL handlers need; shared behind one `Arc` (axum clones the state for every request: one count
/// instead of one per field).
pub struct HttpState {
    pub executor: HubExecutor,
    pub gate: Gate,
    pub reconciled: Arc<crate::reconciled::live::Reconciled>,
    pub answers: Arc<crate::graphql::answers::AnswerCache>,
    /// Where mutations run (`write_lane`).
    pub writes: Arc<super::write_lane::WriteLane>,
    pub document_limits: super::limits::DocumentLimits,
    /// Also the largest WebSocket message.
    pub max_body_bytes: usize,
    /// Whether the store answers: writes are refused at once while it does not.
    pub store: Arc<crate::db::StoreHealth>,
    /// Whether the hub is shutting down, and its open WebSockets.
    pub lifecycle: Lifecycle,
    /// The usual dashboard queries, answered from memory without the general executor.
    pub fast: Arc<super::fast::FastReads>,
}

/// The hub's shutdown as the handlers see it: a flag that turns once, and the count of open WebSockets (which the
/// server no longer tracks once upgraded).
#[derive(Clone)]
pub struct Lifecycle {
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
    websockets: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            websockets: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl Lifecycle {
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes once the hub is shutting down.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Completes once no WebSocket is open.
    pub async fn websockets_closed(&self) {
        let mut open = self.websockets.subscribe();
        let _ = open.wait_for(|open| *open == 0).await;
    }

    /// Counts a WebSocket as open until the guard is dropped.
    fn websocket_opened(&self) -> OpenWebSocket {
        self.websockets.send_modify(|open| *open += 1);
        OpenWebSocket(self.websockets.clone())
    }
}

struct OpenWebSocket(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for OpenWebSocket {
    fn drop(&mut self) {
        self.0.send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// The WebSocket close code when the hub shuts down (going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// A document refused before execution. By its limits: 400, nothing parsed beyond the limit. For a character no
/// text may hold: a request error in the media type asked for.
fn refused_document(refusal: &super::document_guard::Refusal, media: super::media::Media) -> Response {
    use super::document_guard::Refusal;
    match refusal {
        Refusal::Limit(err) => {
            tracing::info!(limit = err.limit(), "GraphQL document refused by its limits");
            let body = json!({ "errors": [super::document_guard::server_error(err)] });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
        Refusal::Text(_) => {
            let answer = async_graphql::Response::from_errors(vec![refusal.server_error()]);
            super::media::respond(answer, media)
        }
    }
}

pub async fn graphql_post(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "le corps de la requête dépasse la taille maximale acceptée (CNH_MAX_BODY_BYTES)".to_owned()
            } else {
                format!("corps de requête illisible : {}", rejection.body_text())
            };
            return refusal(status, message);
        }
    };
    let Some(media) = super::media::negotiate(&headers) else { return not_acceptable() };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(refused) = unsupported_content_type(content_type.as_deref()) {
        return refused;
    }
    let batch =
        match async_graphql::http::receive_batch_body(content_type, body.as_ref(), MultipartOptions::default()).await {
            Ok(batch) => batch,
            Err(err) => {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    format!("ce n'est pas une requête GraphQL (JSON {{\"query\": …}} attendu) : {err}"),
                );
            }
        };
    let mut request = match batch.into_single() {
        Ok(request) => request,
        Err(_) => {
            return refusal(StatusCode::BAD_REQUEST, "les requêtes groupées (tableau JSON) ne sont pas acceptées");
        }
    };
    if request.query.trim().is_empty() {
        return refusal(StatusCode::BAD_REQUEST, "la requête n'a pas de paramètre « query »");
    }
    // The token first (from memory, without reading the document): a caller whose read budget is empty is refused
    // before its document is parsed, so that throttled requests cost next to nothing.
    let authentication = match authenticate(&state.gate, &headers).await {
        Ok(authentication) => authentication,
        Err(response) => return response,
    };
    if let Some(refused) = refuse_when_exhausted(&state, &request, &authentication) {
        return refused;
    }
    if let Some(principal) = authentication.principal() {
        use super::fast::Outcome;
        let started = std::time::Instant::now();
        let charge = |cost| take(&state, principal, Budget::Reads, cost);
        match state.fast.answer(&request, principal, &state.reconciled, charge).await {
            Outcome::Answered { body, operation_name } => {
                let metrics = &crate::observe::METRICS;
                metrics.graphql(&metrics.operation_label(operation_name.as_deref()), "query", "ok", started.elapsed());
                metrics.fast_reads.inc();
                return super::media::bytes(body, media);
            }
            Outcome::Refused(refused) => return refused,
            Outcome::NotFast => {}
        }
    }
    if let Err(err) = super::document_guard::guard(&mut request, &state.document_limits) {
        return refused_document(&err, media);
    }
    if let Some(refused) = charge(&state, &mut request, &authentication) {
        return refused;
    }
    let observed = Observed::of(&mut request);
    // Reads of the reconciled state are answered from memory while the state stands (see reconciliation::answers).
    let cache_key = match authentication.principal() {
        Some(p) if crate::graphql::answers::cacheable(&mut request) => {
            Some(AnswerCache::key(&p.institution.code, p.role.as_str(), &body))
        }
        _ => None,
    };
    if let Some(key) = cache_key {
        let epoch = state.reconciled.epoch();
        if let Some(answer) = state.answers.get(&key, epoch) {
            observed.finish(None);
            return super::media::bytes(answer, media);
        }
        let response = state.executor.execute(request, authentication).await;
        observed.finish(Some(&response));
        if response.is_ok()
            && let Ok(bytes) = serde_json::to_vec(&response)
        {
            let bytes = Bytes::from(bytes);
            state.answers.put(key, epoch, bytes.clone());
            return super::media::bytes(bytes, media);
        }
        return super::media::respond(response, media);
    }
    let response = execute_request(&state, request, authentication).await;
    observed.finish(Some(&response));
    super::media::respond(response, media)
}

/// Charges a request to its institution's and token's rate limits: a mutation to the writes (a file import to the
/// imports), a query its fields once expanded plus the weight of its expensive root fields. Anonymous requests are
/// not charged: they are refused anyway. Returns the refusal, if refused.
fn charge(
    state: &HttpState,
    request: &mut async_graphql::Request,
    authentication: &Authentication,
) -> Option<Response> {
    let principal = authentication.principal()?;
    let fields = super::document_guard::expanded_fields(request);
    let operation_name = request.operation_name.clone();
    let (budget, cost) = match request.parsed_query() {
        Ok(document) => match super::executor::selected_operation(document, operation_name.as_deref()) {
            Some((ty, roots)) if ty != async_graphql::parser::types::OperationType::Query => {
                let imports = roots.contains(&"importFile");
                (if imports { Budget::Imports } else { Budget::Writes }, 1)
            }
            Some((_, roots)) => (Budget::Reads, fields.max(1) + roots.iter().map(|r| expensive_weight(r)).sum::<u64>()),
            None => (Budget::Reads, fields.max(1)),
        },
        Err(_) => (Budget::Reads, 1),
    };
    take(state, principal, budget, cost)
}

/// Charges `cost` to the principal's institution and token; the refusal, if refused.
fn take(
    state: &HttpState,
    principal: &crate::access::principal::Principal,
    budget: Budget,
    cost: u64,
) -> Option<Response> {
    crate::http::charge(&state.gate, principal, budget, cost)
}

/// Refuses a read whose institution or token has no read budget left, without parsing it. Only a document that
/// cannot be a mutation (the word does not occur in it) is refused so: a mutation is charged to the writes.
fn refuse_when_exhausted(
    state: &HttpState,
    request: &async_graphql::Request,
    authentication: &Authentication,
) -> Option<Response> {
    let principal = authentication.principal()?;
    let limiter = &state.gate.rate_limiter;
    if !limiter.charges(Budget::Reads) || request.query.contains("mutation") {
        return None;
    }
    let token = crate::http::rate_key(principal);
    let refusal = limiter.exhausted(Budget::Reads, &principal.institution.code, &token)?;
    Some(crate::http::rate_limited(&refusal, 0))
}

/// What a root field weighs beyond its fields in the rate limits: its weight in the query complexity.
fn expensive_weight(root_field: &str) -> u64 {
    match root_field {
        "reconciliation" => crate::reconciliation::RECONCILIATION_COMPLEXITY as u64,
        "verifyAuditChain" => crate::audit::AUDIT_CHAIN_COMPLEXITY as u64,
        _ => 0,
    }
}

/// An operation being served, for the metrics: its name (bounded, see `observe`), its type, when it began.
struct Observed {
    operation: String,
    kind: &'static str,
    started: std::time::Instant,
}

impl Observed {
    fn of(request: &mut async_graphql::Request) -> Observed {
        use async_graphql::parser::types::{DocumentOperations, OperationType};
        let started = std::time::Instant::now();
        let named = request.operation_name.clone();
        let (name, ty) = match request.parsed_query() {
            Ok(document) => match &document.operations {
                DocumentOperations::Single(op) => (named, Some(op.node.ty)),
                DocumentOperations::Multiple(ops) => {
                    let chosen = match &named {
                        Some(name) => ops.get_key_value(name.as_str()),
                        None if ops.len() == 1 => ops.iter().next(),
                        None => None,
                    };
                    (chosen.map(|(name, _)| name.to_string()), chosen.map(|(_, op)| op.node.ty))
                }
            },
            Err(_) => (None, None),
        };
        let kind = match ty {
            Some(OperationType::Query) => "query",
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            None => "unknown",
        };
        Observed { operation: crate::observe::METRICS.operation_label(name.as_deref()), kind, started }
    }

    /// Counts the operation with its outcome: `ok`, or the first error's code (None: an answer from the cache).
    fn finish(self, answer: Option<&async_graphql::Response>) {
        let outcome = answer
            .and_then(|a| a.errors.first())
            .map(|e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
                Some(async_graphql::Value::String(code)) => code.as_str(),
                _ => "error",
            })
            .unwrap_or("ok");
        crate::observe::METRICS.graphql(&self.operation, self.kind, outcome, self.started.elapsed());
    }
}

/// 406: the client reads neither of the GraphQL media types.
fn not_acceptable() -> Response {
    refusal(
        StatusCode::NOT_ACCEPTABLE,
        "réponses possibles : application/graphql-response+json ou application/json (en-tête Accept)",
    )
}

/// 415 unless the body is JSON (`application/json`) or a multipart upload (`multipart/form-data`, for files).
fn unsupported_content_type(content_type: Option<&str>) -> Option<Response> {
    let media_type = content_type.map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match media_type.as_deref() {
        Some("application/json" | "multipart/form-data") => None,
        Some(other) => Some(refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("type de contenu « {other} » refusé : application/json attendu"),
        )),
        None => Some(refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "en-tête Content-Type manquant : application/json attendu",
        )),
    }
}

/// Runs a mutation in its own task on the write lane, so that it finishes even when the client goes away: a write cut
/// off between its commit and the installation of the new reconciled state would leave the state in memory behind the
/// database (and its subscribers uninformed) until the next write of the region. It uses the lane's database pool
/// (request data comes before schema data when a resolver asks for the connection). A query changes nothing if it is
/// cut off, so it runs in the request's own task (a task per read cost a spawn and a wake-up on the hot path).
async fn execute_request(
    state: &HttpState,
    mut request: async_graphql::Request,
    authentication: Authentication,
) -> async_graphql::Response {
    let mutation = request.parsed_query().is_ok_and(|document| {
        document.operations.iter().any(|(_, op)| op.node.ty == async_graphql::parser::types::OperationType::Mutation)
    });
    if !mutation {
        return state.executor.execute(request, authentication).await;
    }
    if !state.store.is_up() {
        let error = async_graphql::Error::new("base de données indisponible, réessayez plus tard : rien n'a été écrit")
            .extend_with(|_, extensions| extensions.set("code", code::SERVICE_UNAVAILABLE));
        return async_graphql::Response::from_errors(vec![error.into_server_error(async_graphql::Pos::default())]);
    }
    let schema = state.executor.guarded().clone();
    let request = request.data(state.writes.db().clone()).data(authentication);
    let in_flight = crate::observe::WriteInFlight::start();
    // The write's own task keeps the request's span and id, so that its log lines name the request.
    let span = tracing::Span::current();
    let id = crate::observe::request_id().unwrap_or_else(|| crate::observe::choose_request_id(None));
    let write = async move {
        let _in_flight = in_flight;
        crate::observe::with_request_id(id, schema.execute(request)).await
    };
    match state.writes.handle().spawn(tracing::Instrument::instrument(write, span)).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "a GraphQL request's task failed");
            let error = async_graphql::Error::new("erreur interne : la requête n'a pas abouti")
                .extend_with(|_, extensions| extensions.set("code", code::INTERNAL_SERVER_ERROR));
            async_graphql::Response::from_errors(vec![error.into_server_error(async_graphql::Pos::default())])
        }
    }
}

/// Whether a request asks to switch to WebSocket (subscriptions).
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The token of a WebSocket connection: the `connection_init` payload's `Authorization` (or `authorization`,
/// `token`), else the upgrade request's header.
fn init_headers(payload: &serde_json::Value, upgrade_headers: &HeaderMap) -> HeaderMap {
    let from_payload = ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
        .or_else(|| payload.get("token").and_then(|v| v.as_str()).map(|t| format!("Bearer {t}")));
    let mut headers = HeaderMap::new();
    match from_payload.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
        Some(value) => {
            headers.insert(header::AUTHORIZATION, value);
        }
        None => {
            if let Some(value) = upgrade_headers.get(header::AUTHORIZATION) {
                headers.insert(header::AUTHORIZATION, value.clone());
            }
        }
    }
    headers
}

/// The WebSocket close code for a principal refused or no longer valid (graphql-transport-ws: Forbidden).
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// A message that is not one of the protocol's (graphql-transport-ws).
pub const CLOSE_BAD_MESSAGE: u16 = 4400;
/// An operation sent before the connection was acknowledged (graphql-transport-ws).
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// An operation started under the id of one still running (graphql-transport-ws).
pub const CLOSE_SUBSCRIBER_EXISTS: u16 = 4409;
/// No `connection_init` within [`INIT_TIMEOUT`] (graphql-transport-ws).
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// How long a connection may stay without `connection_init`.
const INIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often an open connection's token expiry is looked at; revocations and suspensions arrive at once.
const EXPIRY_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// The subprotocol asked for (graphql-transport-ws, or the older graphql-ws).
fn websocket_protocol(headers: &HeaderMap) -> Option<async_graphql::http::WebSocketProtocols> {
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|p| p.trim().parse().ok()))
}

/// A protocol message's type and id, read without the rest of it.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

fn envelope(message: &[u8]) -> Option<Envelope<'_>> {
    serde_json::from_slice(message).ok()
}

/// Whether a client message starts an operation (`subscribe`, or `start` in the older protocol).
fn starts_an_operation(message: &Envelope<'_>) -> bool {
    message.kind == "subscribe" || message.kind == "start"
}

/// The graphql-transport-ws rules the library leaves to the server: an operation before the connection is
/// acknowledged closes with 4401, a second operation under an id still running closes with 4409. `running` holds the
/// ids of the operations started and not yet completed.
fn protocol_violation(
    message: &Envelope<'_>,
    acknowledged: bool,
    running: &mut std::collections::HashSet<String>,
) -> Option<(u16, String)> {
    match (message.kind.as_ref(), message.id.as_deref()) {
        ("subscribe", _) if !acknowledged => Some((CLOSE_UNAUTHORIZED, "Unauthorized".to_owned())),
        ("subscribe", Some(id)) if !running.insert(id.to_owned()) => {
            Some((CLOSE_SUBSCRIBER_EXISTS, format!("Subscriber for {id} already exists")))
        }
        ("complete", Some(id)) => {
            running.remove(id);
            None
        }
        _ => None,
    }
}

/// The message ending an operation refused by a rate limit: `error` with the GraphQL error (`RATE_LIMITED`, and when
/// to try again), in the shape of the connection's protocol.
fn rate_limited_operation(
    protocol: async_graphql::http::WebSocketProtocols,
    id: &str,
    refusal: &crate::http::rate_limits::Refusal,
) -> String {
    let error = json!({
        "message": crate::http::rate_limit_message(refusal, SUBSCRIPTION_COST),
        "extensions": { "code": code::RATE_LIMITED, "retryAfter": refusal.retry_after }
    });
    let payload = match protocol {
        async_graphql::http::WebSocketProtocols::GraphQLWS => json!([error]),
        // subscriptions-transport-ws: one error object.
        _ => error,
    };
    json!({ "id": id, "type": "error", "payload": payload }).to_string()
}

fn close_frame(code: u16, reason: &str) -> axum::extract::ws::Message {
    // A close reason holds at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    axum::extract::ws::Message::Close(Some(axum::extract::ws::CloseFrame { code, reason: reason[..end].into() }))
}

/// GraphQL over WebSocket. The principal is established at `connection_init` (a refused or missing token closes
/// the connection with 4403), then held to the same rules as a request for as long as the connection lives: every
/// `subscribe` is checked again, and the connection is closed with 4403 the moment its token expires, is revoked,
/// or its institution is suspended (the access list tells every open connection of each change).
async fn graphql_websocket(state: Arc<HttpState>, mut parts: axum::http::request::Parts) -> Response {
    use axum::extract::FromRequestParts;
    let Some(protocol) = websocket_protocol(&parts.headers) else {
        return refusal(StatusCode::BAD_REQUEST, "sous-protocole WebSocket attendu : graphql-transport-ws");
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(err) => return err.into_response(),
    };
    let upgrade_headers = parts.headers;
    let max_message = state.max_body_bytes;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve_websocket(state, socket, protocol, upgrade_headers))
        .into_response()
}

async fn serve_websocket(
    state: Arc<HttpState>,
    socket: axum::extract::ws::WebSocket,
    protocol: async_graphql::http::WebSocketProtocols,
    upgrade_headers: HeaderMap,
) {
    use axum::extract::ws::Message;
    use futures_util::{SinkExt, StreamExt};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    let _open = state.lifecycle.websocket_opened();
    let (mut sink, mut source) = socket.split();
    let principal: Arc<Mutex<Option<crate::access::principal::Principal>>> = Arc::default();
    let refused = Arc::new(AtomicBool::new(false));
    let (to_graphql, mut from_client) = tokio::sync::mpsc::channel::<Bytes>(16);
    let input = futures_util::stream::poll_fn(move |cx| from_client.poll_recv(cx));
    let init_state = state.clone();
    let (init_principal, init_refused) = (principal.clone(), refused.clone());
    let graphql = async_graphql::http::WebSocket::new(state.executor.guarded().clone(), input, protocol)
        .on_connection_init(move |payload| async move {
            let headers = init_headers(&payload, &upgrade_headers);
            let refuse = |message: &str| {
                init_refused.store(true, Ordering::SeqCst);
                Err(async_graphql::Error::new(message.to_owned())
                    .extend_with(|_, ext| ext.set("code", code::UNAUTHENTICATED)))
            };
            match authenticate(&init_state.gate, &headers).await {
                Ok(Authentication::Authenticated(p)) => {
                    *init_principal.lock().unwrap_or_else(|e| e.into_inner()) = Some((*p).clone());
                    let mut data = async_graphql::Data::default();
                    data.insert(Authentication::Authenticated(p));
                    Ok(data)
                }
                Ok(Authentication::Anonymous) => refuse("jeton attendu dans connection_init (Authorization: Bearer …)"),
                Err(_) => refuse("jeton refusé"),
            }
        });
    futures_util::pin_mut!(graphql);
    let opened = tokio::time::Instant::now();
    let mut running = std::collections::HashSet::new();
    let mut access_changes = state.gate.access.watch();
    let mut ticks = tokio::time::interval(EXPIRY_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Why the connection's principal may no longer act, if it may not.
    let invalid = |principal: &Mutex<Option<crate::access::principal::Principal>>| {
        let held = principal.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref().and_then(|p| state.gate.access.check(p, chrono::Utc::now()).err())
    };
    // The close frame for a principal that stopped being valid (expired, revoked, suspended).
    let expired = |principal: &Mutex<Option<crate::access::principal::Principal>>| {
        invalid(principal).map(|err| {
            tracing::info!(reason = %err, "WebSocket closed: its principal may no longer act");
            close_frame(CLOSE_FORBIDDEN, err.public_message())
        })
    };
    let close = loop {
        tokio::select! {
            out = graphql.next() => match out {
                Some(async_graphql::http::WsMessage::Text(text)) => {
                    // An operation that ended (completed or failed) frees its id.
                    if let Some(sent) = envelope(text.as_bytes())
                        && (sent.kind == "complete" || sent.kind == "error")
                        && let Some(id) = sent.id
                    {
                        running.remove(id.as_ref());
                    }
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Some(async_graphql::http::WsMessage::Close(code, reason)) => {
                    // The library closes with 1002 both for a refused connection_init and for a malformed message;
                    // graphql-transport-ws wants 4403 and 4400.
                    let code = match code {
                        1002 if refused.load(Ordering::SeqCst) => CLOSE_FORBIDDEN,
                        1002 => CLOSE_BAD_MESSAGE,
                        other => other,
                    };
                    break Some(close_frame(code, &reason));
                }
                None => break None,
            },
            incoming = source.next() => {
                let bytes = match incoming {
                    Some(Ok(Message::Text(text))) => Bytes::from(text),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                };
                if let Some(message) = envelope(&bytes) {
                    if starts_an_operation(&message)
                        && let Some(err) = invalid(&principal)
                    {
                        tracing::info!(reason = %err, "subscription refused on an open WebSocket");
                        break Some(close_frame(CLOSE_FORBIDDEN, err.public_message()));
                    }
                    if protocol == async_graphql::http::WebSocketProtocols::GraphQLWS {
                        let acknowledged = principal.lock().unwrap_or_else(|e| e.into_inner()).is_some();
                        if let Some((code, reason)) = protocol_violation(&message, acknowledged, &mut running) {
                            break Some(close_frame(code, &reason));
                        }
                    }
                    // Each operation started is charged to the read budget; refused, it ends at once with an
                    // error message for its id (the protocol has no close code for it) and the socket stays open.
                    if starts_an_operation(&message)
                        && let Some(id) = message.id.as_deref()
                        && let Some(refusal) = {
                            let held = principal.lock().unwrap_or_else(|e| e.into_inner());
                            held.as_ref().and_then(|p| {
                                crate::http::refused_by_rate_limit(&state.gate, p, Budget::Reads, SUBSCRIPTION_COST)
                            })
                        }
                    {
                        running.remove(id);
                        let text = rate_limited_operation(protocol, id, &refusal);
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break None;
                        }
                        continue;
                    }
                }
                if to_graphql.send(bytes).await.is_err() {
                    break None;
                }
            },
            () = state.lifecycle.stopped() => {
                break Some(close_frame(CLOSE_GOING_AWAY, "the hub is shutting down"));
            },
            _ = access_changes.changed() => {
                if let Some(frame) = expired(&principal) {
                    break Some(frame);
                }
            },
            _ = ticks.tick() => {
                if let Some(frame) = expired(&principal) {
                    break Some(frame);
                }
                let initialised = principal.lock().unwrap_or_else(|e| e.into_inner()).is_some();
                if !initialised && !refused.load(Ordering::SeqCst) && opened.elapsed() > INIT_TIMEOUT {
                    break Some(close_frame(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout"));
                }
            },
        }
    };
    if let Some(frame) = close {
        let _ = sink.send(frame).await;
    }
    let _ = sink.close().await;
}

pub async fn graphql_get(State(state): State<Arc<HttpState>>, request: axum::extract::Request) -> Response {
    let (parts, _) = request.into_parts();
    if is_websocket_upgrade(&parts.headers) {
        return graphql_websocket(state, parts).await;
    }
    let headers = parts.headers;
    let query = parts.uri.query().map(str::to_owned);
    let wants_html =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    let query = query.unwrap_or_default();
    if query.is_empty() && wants_html {
        return Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql").finish())
            .into_response();
    }
    let Some(media) = super::media::negotiate(&headers) else { return not_acceptable() };
    let mut request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(err) => {
            return refusal(StatusCode::BAD_REQUEST, format!("paramètres de requête GraphQL illisibles : {err}"));
        }
    };
    if request.query.trim().is_empty() {
        return refusal(StatusCode::BAD_REQUEST, "la requête n'a pas de paramètre « query »");
    }
    if let Err(err) = super::document_guard::guard(&mut request, &state.document_limits) {
        return refused_document(&err, media);
    }
    // Writes travel by POST only: a GET is a read, safe to repeat and to cache.
    let writes = request.parsed_query().is_ok_and(|document| {
        document.operations.iter().any(|(_, op)| op.node.ty != async_graphql::parser::types::OperationType::Query)
    });
    if writes {
        return refusal(StatusCode::METHOD_NOT_ALLOWED, "les mutations et abonnements passent par POST, pas par GET");
    }
    let authentication = match authenticate(&state.gate, &headers).await {
        Ok(authentication) => authentication,
        Err(response) => return response,
    };
    if let Some(refused) = charge(&state, &mut request, &authentication) {
        return refused;
    }
    let observed = Observed::of(&mut request);
    let response = state.executor.execute(request, authentication).await;
    observed.finish(Some(&response));
    super::media::respond(response, media)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_before_the_ack_or_under_a_running_id_break_the_protocol() {
        let mut running = std::collections::HashSet::new();
        let subscribe = br#"{"type":"subscribe","id":"1","payload":{"query":"subscription { x }"}}"#;
        let complete = br#"{"type":"complete","id":"1"}"#;
        let first = envelope(subscribe).unwrap();
        assert_eq!(protocol_violation(&first, false, &mut running).map(|v| v.0), Some(CLOSE_UNAUTHORIZED));
        assert_eq!(protocol_violation(&first, true, &mut running), None);
        assert_eq!(protocol_violation(&first, true, &mut running).map(|v| v.0), Some(CLOSE_SUBSCRIBER_EXISTS));
        assert_eq!(protocol_violation(&envelope(complete).unwrap(), true, &mut running), None);
        assert_eq!(protocol_violation(&first, true, &mut running), None, "a completed id may be used again");
        assert!(envelope(b"not json").is_none());
    }
}
