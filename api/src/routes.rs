//! The routes: which handler answers which path. Routes know handlers; handlers do not know routes.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::db::StoreHealth;
use crate::graphql::media::RETRY_AFTER_SECONDS;

use crate::files::export::{self, ExportState};
use crate::graphql::http::{self as graphql, HttpState};

pub fn router(
    graphql_state: HttpState,
    exports: ExportState,
    store: Arc<StoreHealth>,
    max_body_bytes: usize,
) -> Router {
    Router::new()
        .route("/graphql", get(graphql::graphql_get).post(graphql::graphql_post))
        .with_state(graphql_state)
        .merge(Router::new().route("/exports/{file}", get(export::export)).with_state(exports))
        .merge(Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(store))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

/// The process is alive.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The hub can serve: its store answered the last health check (`db::StoreHealth`, at most a second old).
async fn readyz(State(store): State<Arc<StoreHealth>>) -> Response {
    if store.is_up() {
        return Json(json!({ "status": "ready" })).into_response();
    }
    let mut response =
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database" })))
            .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    response
}
