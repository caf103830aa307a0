//! The routes: which handler answers which path. Routes know handlers; handlers do not know routes.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::files::export::{self, ExportState};
use crate::graphql::http::{self as graphql, HttpState};

pub fn router(graphql_state: HttpState, exports: ExportState, db: DatabaseConnection, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/graphql", get(graphql::graphql_get).post(graphql::graphql_post))
        .with_state(graphql_state)
        .merge(Router::new().route("/exports/{file}", get(export::export)).with_state(exports))
        .merge(Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(db))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

/// The process is alive.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The hub can serve: its database answers.
async fn readyz(State(db): State<DatabaseConnection>) -> Response {
    match db.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness probe: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database" })))
                .into_response()
        }
    }
}
