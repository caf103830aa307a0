//! Every bad request gets a clear error with a stable `extensions.code`, and the probes answer.

use serde_json::json;

use crate::support::{TestResult, error_codes};

db_test! {
    async fn a_malformed_query_is_a_parse_error(hub) {
        let answer = hub.graphql("{ regions { code ", json!({})).await?;
        assert_eq!(error_codes(&answer), ["GRAPHQL_PARSE_FAILED"]);
        Ok(())
    }
}

db_test! {
    async fn a_field_outside_the_schema_is_a_validation_error(hub) {
        let answer = hub.graphql("{ regions { code population } }", json!({})).await?;
        assert_eq!(error_codes(&answer), ["GRAPHQL_VALIDATION_FAILED"]);
        assert!(answer["errors"][0]["message"].as_str().unwrap().contains("population"));
        Ok(())
    }
}

db_test! {
    async fn a_variable_of_the_wrong_type_is_refused_with_a_code(hub) {
        let answer = hub.graphql("query($code: String!) { region(code: $code) { name } }", json!({ "code": 84 })).await?;
        let codes = error_codes(&answer);
        assert_eq!(codes.len(), 1, "{answer}");
        assert!(codes[0] == "GRAPHQL_VALIDATION_FAILED" || codes[0] == "BAD_USER_INPUT", "{answer}");
        Ok(())
    }
}

db_test! {
    async fn a_body_that_is_not_graphql_gets_a_bad_request(hub) {
        let response = hub.client.post(hub.url("/graphql")).header("content-type", "application/json").body("{not json").send().await?;
        assert_eq!(response.status(), 400);
        let answer: serde_json::Value = response.json().await?;
        assert_eq!(error_codes(&answer), ["BAD_REQUEST"]);
        let batch = hub.client.post(hub.url("/graphql")).json(&json!([{ "query": "{ regions { code } }" }])).send().await?;
        assert_eq!(batch.status(), 400);
        Ok(())
    }
}

/// The limit is configuration; a small one keeps the body within socket buffers, so that the client has sent it
/// all before the hub answers (a large body cut short makes the client see a reset, not the answer).
#[tokio::test]
async fn an_oversized_body_is_refused_before_parsing() -> TestResult {
    let hub = crate::support::TestHub::start_configured(|config| {
        config.limits.max_body_bytes = 2_048;
        config.dev_jwt_secret = Some(api::config::Secret::new(crate::support::TEST_SECRET));
    })
    .await?;
    let huge = format!("{{ regions {{ code }} }} #{}", "x".repeat(8_000));
    let response = hub.as_cnsa().request(&huge, json!({})).send().await?;
    assert_eq!(response.status(), 413);
    assert_eq!(error_codes(&response.json().await?), ["BAD_REQUEST"]);
    let fits = hub.as_cnsa().graphql("{ regions { code } }", json!({})).await?;
    assert_eq!(fits["data"]["regions"].as_array().map(Vec::len), Some(18));
    Ok(())
}

db_test! {
    async fn a_too_deep_query_is_refused(hub) {
        let deep = format!("{{ regions {{ {} code {} }} }}", "departements { region { ".repeat(8), "} } ".repeat(8));
        let answer = hub.graphql(&deep, json!({})).await?;
        assert_eq!(error_codes(&answer), ["GRAPHQL_VALIDATION_FAILED"], "{answer}");
        Ok(())
    }
}

db_test! {
    async fn probes_and_graphiql_answer(hub) {
        let health: serde_json::Value = hub.client.get(hub.url("/healthz")).send().await?.json().await?;
        assert_eq!(health, json!({ "status": "ok" }));
        let ready = hub.client.get(hub.url("/readyz")).send().await?;
        assert_eq!(ready.status(), 200);
        let page = hub.client.get(hub.url("/graphql")).header("accept", "text/html").send().await?;
        assert_eq!(page.status(), 200);
        assert!(page.text().await?.contains("graphiql"));
        let token = hub.as_cnsa().token.unwrap_or_default();
        let by_get: serde_json::Value = hub.client.get(hub.url("/graphql?query=%7B%20regions%20%7B%20code%20%7D%20%7D")).bearer_auth(token).send().await?.json().await?;
        assert_eq!(by_get["data"]["regions"].as_array().map(Vec::len), Some(18));
        let mutation_by_get = hub.client.get(hub.url("/graphql")).query(&[("query", r#"mutation { revokeToken(tokenId: "x", reason: "y") { tokenId } }"#)]).bearer_auth(hub.as_admin().token.unwrap()).send().await?;
        assert_eq!(mutation_by_get.status(), 405);
        assert_eq!(error_codes(&mutation_by_get.json().await?), ["BAD_REQUEST"]);
        Ok(())
    }
}
