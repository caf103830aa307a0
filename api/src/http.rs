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
use crate::error::code;
use crate::territory::service::Catalog;

/// Who may pass: the trusted issuers, the access list, the territorial catalog scopes are derived from.
#[derive(Clone)]
pub struct Gate {
    pub authenticator: Arc<Authenticator>,
    pub access: Arc<AccessList>,
    pub catalog: Arc<Catalog>,
}

/// A refused token: 401 with a GraphQL-shaped error (503 when the hub cannot check it now). The reason is logged,
/// the caller only learns its category.
fn unauthenticated(err: AuthError) -> Response {
    let (status, value) = match &err {
        AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, code::SERVICE_UNAVAILABLE),
        _ => (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED),
    };
    tracing::info!(reason = %err, "token refused");
    let body = json!({ "errors": [{ "message": err.public_message(), "extensions": { "code": value } }] });
    let mut response = (status, Json(body)).into_response();
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
    let verified = state.authenticator.verify(token).await.map_err(unauthenticated)?;
    let principal = resolve_principal(&state.access, &state.catalog, verified).map_err(unauthenticated)?;
    state.access.saw(&principal);
    Ok(Authentication::Authenticated(Box::new(principal)))
}

/// An error outside GraphQL execution, shaped as a GraphQL response so that clients read `errors[].extensions.code`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// A transport-level refusal.
pub fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    error_response(status, code::BAD_REQUEST, &message.into())
}
