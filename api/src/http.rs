//! What every HTTP channel shares beneath its handlers: the gate that authenticates a request (bearer token →
//! principal, from the access list in memory) and the GraphQL-shaped error answers. Handlers use it; they do not
//! know the routes (`routes` does).

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::access::authenticator::{AuthError, Authenticator, resolve_principal};
use crate::access::list::AccessList;
use crate::access::principal::Authentication;
use crate::access::principal::Principal;
use crate::error::code;
use crate::territory::service::Catalog;

pub mod rate_limits;

/// Who may pass: the trusted issuers, the access list, the territorial catalog scopes are derived from, and the
/// rate limits every channel charges (one set of buckets per instance, whatever the channel).
#[derive(Clone)]
pub struct Gate {
    pub authenticator: Arc<Authenticator>,
    pub access: Arc<AccessList>,
    pub catalog: Arc<Catalog>,
    pub rate_limiter: Arc<rate_limits::RateLimiter>,
}

/// A refused token: 401 with a GraphQL-shaped error (503 when the hub cannot check it now). The reason is logged,
/// the caller only learns its category.
fn unauthenticated(err: AuthError) -> Response {
    let (status, value) = match &err {
        AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, code::SERVICE_UNAVAILABLE),
        _ => (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED),
    };
    tracing::info!(reason = %err, "token refused");
    crate::observe::METRICS.auth_failures.with_label_values(&[err.reason()]).inc();
    let mut response = error_response(status, value, err.public_message());
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer error=\"invalid_token\""));
    response
}

/// Authenticates once per request: no header is anonymous (each operation then asks for a token), a header that
/// does not hold an acceptable bearer token ends the request.
pub async fn authenticate(state: &Gate, headers: &HeaderMap) -> Result<Authentication, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(Authentication::Anonymous) };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated(AuthError::Malformed))?;
    authenticate_token(state, token).await.map_err(unauthenticated)
}

/// The principal a token stands for (from a header, or the pages' session cookie).
pub async fn authenticate_token(state: &Gate, token: &str) -> Result<Authentication, AuthError> {
    let verified = state.authenticator.verify(token).await?;
    let principal = resolve_principal(&state.access, &state.catalog, &verified)?;
    state.access.saw(&principal);
    Ok(Authentication::Authenticated(Box::new(principal)))
}

/// An error outside GraphQL execution, shaped as a GraphQL response so that clients read `errors[].extensions.code`
/// (and `requestId`, to quote to an operator).
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = match crate::observe::request_id() {
        Some(id) => json!({ "errors": [{ "message": message, "extensions": { "code": code, "requestId": &*id } }] }),
        None => json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }),
    };
    (status, Json(body)).into_response()
}

/// Every request: an id (kept from `x-request-id` when sane), a span carrying it so that every log line of the
/// request names it, the id in the answer's `x-request-id`, and the request counted by route and status.
pub async fn track(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let id = crate::observe::choose_request_id(request.headers().get("x-request-id").and_then(|v| v.to_str().ok()));
    let route = request.extensions().get::<axum::extract::MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    let span = tracing::info_span!("request", id = %id, method = %request.method(), route = %route);
    let mut response = crate::observe::with_request_id(id.clone(), next.run(request)).instrument(span).await;
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let metrics = &crate::observe::METRICS;
    metrics.http_requests.with_label_values(&[route, response.status().as_str()]).inc();
    metrics.http_duration.with_label_values(&[route]).observe(started.elapsed().as_secs_f64());
    response
}

/// Charges `cost` to the principal's institution and token in `budget`; the 429 answer, if refused. Nothing is
/// built when the budget is off (quota 0).
pub fn charge(gate: &Gate, principal: &Principal, budget: rate_limits::Budget, cost: u64) -> Option<Response> {
    let refusal = refused_by_rate_limit(gate, principal, budget, cost)?;
    Some(rate_limited(&refusal, cost))
}

/// Charges `cost` as `charge` does; the refusal itself, for a channel that answers otherwise than over HTTP.
pub fn refused_by_rate_limit(
    gate: &Gate,
    principal: &Principal,
    budget: rate_limits::Budget,
    cost: u64,
) -> Option<rate_limits::Refusal> {
    if !gate.rate_limiter.charges(budget) {
        return None;
    }
    let token = rate_key(principal);
    gate.rate_limiter.take(budget, &principal.institution.code, &token, cost).err()
}

/// The key of a token's buckets: its id (or its agent), within its institution.
pub fn rate_key(principal: &Principal) -> String {
    let token = principal.token_id.as_deref().or(principal.agent_id.as_deref()).unwrap_or("");
    format!("{}/{token}", principal.institution.code)
}

/// What a refusal says: which budget ran out, for whom, when to try again; logged and counted.
pub fn rate_limit_message(refusal: &rate_limits::Refusal, cost: u64) -> String {
    tracing::info!(budget = refusal.budget.name(), per_token = refusal.token, cost, "rate limit reached");
    crate::observe::METRICS.rate_limited.with_label_values(&[refusal.budget.name()]).inc();
    format!(
        "limite de débit atteinte ({} par {}) : réessayez dans {} s",
        refusal.budget.name(),
        if refusal.token { "jeton" } else { "institution" },
        refusal.retry_after
    )
}

/// The 429 answer to a refusal, with `Retry-After` and the `RateLimit` headers.
pub fn rate_limited(refusal: &rate_limits::Refusal, cost: u64) -> Response {
    let message = rate_limit_message(refusal, cost);
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, code::RATE_LIMITED, &message);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::RETRY_AFTER.as_str(), refusal.retry_after.to_string()),
        ("ratelimit-policy", refusal.policy_header()),
        ("ratelimit", refusal.limit_header()),
    ] {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// A transport-level refusal.
pub fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    error_response(status, code::BAD_REQUEST, &message.into())
}
