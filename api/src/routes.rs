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

/// What `/metrics` reads at each scrape besides the counters: the pools and the store's health.
#[derive(Clone)]
pub struct Probes {
    pub store: Arc<StoreHealth>,
    /// The hub's connection pools, by name (`main`, `writes`, `background`, and `durability` on PostgreSQL).
    pub pools: Vec<(&'static str, sea_orm::DatabaseConnection)>,
}

pub fn router(
    graphql_state: HttpState,
    exports: ExportState,
    pages: crate::pages::PagesState,
    probes: Probes,
    max_body_bytes: usize,
) -> Router {
    use crate::pages as p;
    Router::new()
        .route("/graphql", get(graphql::graphql_get).post(graphql::graphql_post))
        .with_state(std::sync::Arc::new(graphql_state))
        .merge(Router::new().route("/exports/{file}", get(export::export)).with_state(exports))
        .merge(
            Router::new()
                .route("/tableau", get(p::overview))
                .route("/tableau/mesures", get(p::measures))
                .route("/tableau/mesures/{id}", get(p::measure))
                .route("/tableau/constats", get(p::findings))
                .route("/tableau/export/{file}", get(p::findings_export))
                .route("/tableau/campagnes", get(p::campaigns))
                .route("/tableau/pilotage", get(p::steering))
                .route("/tableau/export/dossier.xlsx", get(p::steering_export))
                .route("/tableau/direct", get(p::live))
                .route("/tableau/connexion", get(p::sign_in_form).post(p::sign_in))
                .route("/tableau/connexion/oidc", get(p::oidc::start))
                .route("/tableau/connexion/retour", get(p::oidc::finish))
                .route("/tableau/deconnexion", axum::routing::post(p::sign_out))
                .route("/tableau/style.css", get(p::stylesheet))
                .route("/tableau/app.js", get(p::script))
                .with_state(pages),
        )
        .merge(
            Router::new()
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz))
                .route("/metrics", get(metrics))
                .with_state(probes),
        )
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(crate::http::track))
}

/// The metrics in Prometheus' text format. Like the probes, it needs no token: serve it on the internal network
/// only (it names operations and counts, never data).
async fn metrics(State(probes): State<Probes>) -> Response {
    let metrics = &crate::observe::METRICS;
    metrics.store_up.set(i64::from(probes.store.is_up()));
    for (name, db) in &probes.pools {
        let (size, idle) = crate::db::pool_figures(db);
        metrics.db_connections.with_label_values(&[name, "in_use"]).set(size.saturating_sub(idle) as i64);
        metrics.db_connections.with_label_values(&[name, "idle"]).set(idle as i64);
    }
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], metrics.render())
        .into_response()
}

/// The process is alive.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The hub can serve: its store answered the last health check (`db::StoreHealth`, at most a second old).
async fn readyz(State(probes): State<Probes>) -> Response {
    if probes.store.is_up() {
        return Json(json!({ "status": "ready" })).into_response();
    }
    let mut response =
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database" })))
            .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    response
}
