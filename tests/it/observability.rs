//! What an operator sees: a request id end to end, and the metrics scraped from `/metrics`.

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::support::{TestResult, error_codes};

/// The value of a sample line `name{labels} value` of the scraped text (labels in the exporter's order).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

db_test! {
    async fn every_request_has_an_id_in_its_answer_and_its_errors(hub) {
        let cnsa = hub.as_cnsa();
        let response = cnsa.request("{ regions { population } }", json!({})).header("x-request-id", "gateway-42").send().await?;
        assert_eq!(response.headers()["x-request-id"], "gateway-42");
        let answer: Value = response.json().await?;
        assert_eq!(answer["errors"][0]["extensions"]["requestId"], "gateway-42", "{answer}");
        // A refusal before any GraphQL, with an id of the hub's making.
        let refused = hub.client.post(hub.url("/graphql")).bearer_auth("forged").json(&json!({ "query": "{ me { role } }" })).send().await?;
        let id = refused.headers()["x-request-id"].to_str()?.to_owned();
        let answer: Value = refused.json().await?;
        assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"]);
        assert_eq!(answer["errors"][0]["extensions"]["requestId"], json!(id));
        assert_eq!(id.len(), 32);
        Ok(())
    }
}

db_test! {
    async fn metrics_count_operations_writes_refusals_and_connections(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let named = ars.graphql("query ObservabilityProbe { me { role } }", json!({})).await?;
        assert!(named.get("errors").is_none(), "{named}");
        crate::programming::create_measure(&ars, "OBS-1").await?;
        let forged = hub.client.post(hub.url("/graphql")).bearer_auth("not.a.token").json(&json!({ "query": "{ me { role } }" })).send().await?;
        assert_eq!(forged.status(), 401);

        let scraped = hub.client.get(hub.url("/metrics")).send().await?;
        assert_eq!(scraped.status(), 200);
        assert!(scraped.headers()["content-type"].to_str()?.starts_with("text/plain; version=0.0.4"));
        let text = scraped.text().await?;
        let at_least_one = |series: &str| {
            let value = sample(&text, series);
            assert!(value.is_some_and(|v| v >= 1.0), "{series} = {value:?} in\n{text}");
        };
        at_least_one(r#"cnh_graphql_operations_total{operation="ObservabilityProbe",outcome="ok",type="query"}"#);
        at_least_one(r#"cnh_graphql_operations_total{operation="anonymous",outcome="ok",type="mutation"}"#);
        at_least_one(r#"cnh_auth_failures_total{reason="malformed"}"#);
        at_least_one(r#"cnh_http_requests_total{route="/graphql",status="401"}"#);
        at_least_one("cnh_reconciliation_recompute_seconds_count");
        at_least_one("cnh_write_region_lock_held_seconds_count");
        // On PostgreSQL a write commits without waiting for the disk, then waits for it before it is acknowledged.
        assert!(sample(&text, "cnh_write_durability_wait_seconds_count").is_some(), "{text}");
        if hub.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            at_least_one("cnh_write_durability_wait_seconds_count");
            assert!(sample(&text, r#"cnh_db_connections{pool="durability",state="in_use"}"#).is_some(), "{text}");
        }
        at_least_one(r#"cnh_graphql_operation_duration_seconds_bucket{type="query",le="+Inf"}"#);
        assert!(sample(&text, r#"cnh_db_connections{pool="main",state="idle"}"#).is_some(), "{text}");
        assert!(sample(&text, r#"cnh_db_connections{pool="writes",state="in_use"}"#).is_some(), "{text}");
        assert_eq!(sample(&text, "cnh_store_up"), Some(1.0));
        // The metrics are the process's: other tests' hubs may be waiting for a connection right now.
        assert!(sample(&text, "cnh_db_pool_waiting").is_some_and(|n| n >= 0.0), "{text}");
        at_least_one("cnh_db_begin_seconds_count");
        Ok(())
    }
}
