//! GraphQL over HTTP as its specification writes it (media types, status codes), and the bad inputs that used to
//! reach the store: a NUL in a text, a file in UTF-16, cells without a header, a replayed import.

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::support::{TestResult, error_codes};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn content_type(response: &reqwest::Response) -> String {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

db_test! {
    async fn the_answer_s_media_type_is_the_one_the_client_accepts(hub) {
        let cnsa = hub.as_cnsa();
        // Asked twice: the second answer comes from the answer cache, and must say the same.
        for _ in 0..2 {
            let response = cnsa.request("{ regions { code } }", json!({})).header("accept", GRAPHQL_RESPONSE).send().await?;
            assert_eq!(response.status(), 200);
            assert!(content_type(&response).starts_with(GRAPHQL_RESPONSE), "{}", content_type(&response));
            let response = cnsa.request("{ regions { code } }", json!({})).header("accept", "application/json").send().await?;
            assert_eq!(content_type(&response), "application/json");
        }
        let refused = cnsa.request("{ regions { code } }", json!({})).header("accept", "text/html").send().await?;
        assert_eq!(refused.status(), 406);
        assert_eq!(error_codes(&refused.json().await?), ["BAD_REQUEST"]);
        Ok(())
    }
}

db_test! {
    async fn request_errors_are_400_without_data_in_the_graphql_response_media_type(hub) {
        let cnsa = hub.as_cnsa();
        for (query, variables, code) in [
            ("{ regions { code ", json!({}), "GRAPHQL_PARSE_FAILED"),
            ("{ regions { population } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        ] {
            let response = cnsa.request(query, variables.clone()).header("accept", GRAPHQL_RESPONSE).send().await?;
            assert_eq!(response.status(), 400, "{query}");
            let answer: Value = response.json().await?;
            assert!(answer.get("data").is_none(), "{answer}");
            assert_eq!(error_codes(&answer), [code]);
            // The legacy media type keeps 200 and data: null.
            let response = cnsa.request(query, variables).header("accept", "application/json").send().await?;
            assert_eq!(response.status(), 200);
            let answer: Value = response.json().await?;
            assert_eq!(answer["data"], Value::Null, "{answer}");
        }
        let coercion = cnsa
            .request("query($code: String!) { region(code: $code) { name } }", json!({ "code": 84 }))
            .header("accept", GRAPHQL_RESPONSE)
            .send()
            .await?;
        assert_eq!(coercion.status(), 400);
        Ok(())
    }
}

db_test! {
    async fn a_body_that_is_not_json_or_has_no_query_is_refused(hub) {
        let token = hub.as_cnsa().token.unwrap();
        let body = json!({ "query": "{ regions { code } }" }).to_string();
        for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
            let mut request = hub.client.post(hub.url("/graphql")).bearer_auth(&token).body(body.clone());
            if let Some(value) = content_type {
                request = request.header("content-type", value);
            }
            let response = request.send().await?;
            assert_eq!(response.status(), 415, "{content_type:?}");
            assert_eq!(error_codes(&response.json().await?), ["BAD_REQUEST"]);
        }
        let charset = hub.client.post(hub.url("/graphql")).bearer_auth(&token).header("content-type", "application/json; charset=utf-8").body(body).send().await?;
        assert_eq!(charset.status(), 200);
        let no_query = hub.client.post(hub.url("/graphql")).bearer_auth(&token).json(&json!({ "variables": {} })).send().await?;
        assert_eq!(no_query.status(), 400);
        assert_eq!(error_codes(&no_query.json().await?), ["BAD_REQUEST"]);
        Ok(())
    }
}

db_test! {
    async fn a_nul_in_any_text_is_bad_input_and_nothing_is_stored(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let mut input = crate::programming::measure("ARA-NUL-1");
        input["label"] = json!("SESSAD\u{0} TND");
        let answer = ars.graphql(crate::programming::UPSERT, json!({ "input": input })).await?;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
        assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("« input »"), "{answer}");
        let key = ars.graphql(crate::programming::UPSERT, json!({ "input": crate::programming::measure("ARA-NUL-2"), "key": "k\u{0}" })).await?;
        assert_eq!(error_codes(&key), ["BAD_USER_INPUT"], "{key}");
        // Written in the document itself, as an escape.
        let literal = ars.graphql(r#"{ measure(id: "a\u0000b") { id } }"#, json!({})).await?;
        assert_eq!(error_codes(&literal), ["BAD_USER_INPUT"], "{literal}");
        let filter = ars.graphql(r#"{ measures(filter: { departementCode: "6\u00009" }) { totalCount } }"#, json!({})).await?;
        assert_eq!(error_codes(&filter), ["BAD_USER_INPUT"], "{filter}");
        assert_eq!(ars.data("{ measures { totalCount } }").await?["measures"]["totalCount"], 0);
        // The hub still writes the same measure without the NUL.
        crate::programming::create_measure(&ars, "ARA-NUL-1").await?;
        Ok(())
    }
}

const IMPORT: &str = "mutation($kind: DataKind!, $file: Upload!, $key: String) {
  importFile(kind: $kind, file: $file, idempotencyKey: $key) {
    rows created updated replayed ignoredColumns receipt { accepted replayed submissionId }
  } }";

async fn upload(
    hub: &crate::support::TestHub,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
    key: Option<&str>,
) -> Result<Value, reqwest::Error> {
    let operations = json!({ "query": IMPORT, "variables": { "kind": "NEEDS", "file": null, "key": key } });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", r#"{ "0": ["variables.file"] }"#)
        .part("0", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()));
    hub.client.post(hub.url("/graphql")).bearer_auth(token).multipart(form).send().await?.json().await
}

db_test! {
    async fn imports_read_utf16_name_cells_without_header_and_say_when_they_replay(hub) {
        let token = hub.as_role(Role::Mdph, Some("69")).token.unwrap();
        // Excel's "Unicode text": UTF-16 with its byte-order mark, tab-separated; a stray cell beyond the headers.
        let text = "Département\tDate de référence\tCode orientation\tTranche d'âge\tIndicateur\tNombre\r\n\
                    69\t30/06/2026\t7.1\tTOUS\tEn attente d'admission\t97\tà revoir\r\n";
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let first = upload(&hub, &token, "besoins.txt", utf16.clone(), Some("juin")).await?;
        let report = &first["data"]["importFile"];
        assert_eq!((&report["rows"], &report["created"], &report["replayed"]), (&json!(1), &json!(1), &json!(false)), "{first}");
        assert_eq!(report["ignoredColumns"], json!(["colonne G (sans en-tête)"]));
        let again = upload(&hub, &token, "besoins.txt", utf16, Some("juin")).await?;
        let replay = &again["data"]["importFile"];
        assert_eq!((&replay["created"], &replay["replayed"], &replay["receipt"]["replayed"]), (&json!(0), &json!(true), &json!(true)), "{again}");
        assert_eq!(replay["receipt"]["submissionId"], report["receipt"]["submissionId"]);
        let nul = upload(&hub, &token, "besoins.csv", "Département;Date de référence;Code orientation;Tranche d'âge;Indicateur;Nombre\n69;30/06/2026;7.1;TOUS;PAG\u{0};1\n".as_bytes().to_vec(), None).await?;
        assert_eq!(error_codes(&nul), ["BAD_USER_INPUT"], "{nul}");
        assert!(nul["errors"][0]["message"].as_str().unwrap_or_default().contains("colonne E"), "{nul}");
        Ok(())
    }
}

db_test! {
    async fn expensive_fields_weigh_in_the_complexity(hub) {
        let cnsa = hub.as_cnsa();
        let many = |field: &str, n: usize| format!("{{ {} }}", (0..n).map(|i| format!("a{i}: {field}")).collect::<Vec<_>>().join(" "));
        let national = many("reconciliation { envelopes { compartment } }", 40);
        let answer = cnsa.graphql(&national, json!({})).await?;
        assert_eq!(error_codes(&answer), ["GRAPHQL_VALIDATION_FAILED"], "40 national reconciliations are refused");
        assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("complex"), "{answer}");
        let few = cnsa.graphql(&many("reconciliation { envelopes { compartment } }", 3), json!({})).await?;
        assert!(few.get("errors").is_none(), "{few}");
        let chains = hub.as_admin().graphql(&many("verifyAuditChain { ok }", 10), json!({})).await?;
        assert_eq!(error_codes(&chains), ["GRAPHQL_VALIDATION_FAILED"], "{chains}");
        Ok(())
    }
}

#[tokio::test]
async fn a_noisy_institution_is_throttled_with_the_draft_headers_and_others_are_not() -> TestResult {
    use api::http::rate_limits::{Quota, RateLimits};
    use std::time::Duration;
    let hub = crate::support::TestHub::start_configured(|config| {
        config.dev_jwt_secret = Some(api::config::Secret::new(crate::support::TEST_SECRET));
        config.rate_limits = RateLimits {
            reads: Quota { quota: 100, window: Duration::from_secs(60) },
            writes: Quota { quota: 4, window: Duration::from_secs(60) },
            imports: Quota { quota: 0, window: Duration::from_secs(60) },
            token_share_percent: 50,
            instances: 1,
        };
    })
    .await?;
    let noisy = hub.as_role(Role::Ars, Some("84"));
    let query = "{ regions { code name departements { code name } } }"; // 5 fields once expanded
    let mut refused = None;
    for _ in 0..20 {
        let response = noisy.request(query, json!({})).send().await?;
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let refused = refused.expect("the token's 50 points run out within 20 queries of 5");
    let headers = refused.headers().clone();
    assert_eq!(error_codes(&refused.json().await?), ["RATE_LIMITED"]);
    let retry_after: u64 = headers["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(headers["ratelimit-policy"], "\"reads-per-token\";q=50;w=60");
    assert!(headers["ratelimit"].to_str()?.starts_with("\"reads-per-token\";r="), "{:?}", headers["ratelimit"]);
    // Another token of the same institution has its own share, then the institution's quota runs out.
    let colleague = hub.as_role(Role::Ars, Some("84"));
    let mut institution_refused = None;
    for _ in 0..20 {
        let response = colleague.request(query, json!({})).send().await?;
        if response.status() == 429 {
            institution_refused = Some(response.headers()["ratelimit-policy"].to_str()?.to_owned());
            break;
        }
    }
    assert_eq!(institution_refused.as_deref(), Some("\"reads-per-institution\";q=100;w=60"));
    // Another institution is not affected; writes are counted apart from reads.
    let quiet = hub.as_role(Role::Ars, Some("11"));
    assert_eq!(quiet.request(query, json!({})).send().await?.status(), 200);
    crate::programming::create_measure(&noisy, "RATE-1").await?;
    crate::programming::create_measure(&noisy, "RATE-2").await?;
    let third = noisy
        .request(crate::programming::UPSERT, json!({ "input": crate::programming::measure("RATE-3") }))
        .send()
        .await?;
    assert_eq!(third.status(), 429);
    assert_eq!(third.headers()["ratelimit-policy"], "\"writes-per-token\";q=2;w=60");
    Ok(())
}

#[tokio::test]
async fn subscriptions_started_over_a_websocket_spend_the_read_budget() -> TestResult {
    use api::http::rate_limits::{Quota, RateLimits, SUBSCRIPTION_COST};
    use std::time::Duration;
    let hub = crate::support::TestHub::start_configured(|config| {
        config.dev_jwt_secret = Some(api::config::Secret::new(crate::support::TEST_SECRET));
        config.rate_limits = RateLimits {
            // Per token: room for two subscriptions.
            reads: Quota { quota: 4 * SUBSCRIPTION_COST, window: Duration::from_secs(60) },
            writes: Quota { quota: 0, window: Duration::from_secs(60) },
            imports: Quota { quota: 0, window: Duration::from_secs(60) },
            token_share_percent: 50,
            instances: 1,
        };
    })
    .await?;
    let ars = hub.as_role(Role::Ars, Some("84"));
    let document = "subscription { coFinancingStatusChanged { measureId } }";
    let mut first = ars.subscribe(document).await?;
    let mut second = ars.subscribe(document).await?;
    let mut third = ars.subscribe(document).await?;
    let refused = third.next(Duration::from_secs(5)).await?.expect("the third subscription is answered at once");
    assert_eq!(error_codes(&refused), ["RATE_LIMITED"], "{refused}");
    assert!(
        refused["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| (1..=60).contains(&s)),
        "{refused}"
    );
    // The refused operation ends; its socket and the two admitted subscriptions stay open.
    assert_eq!(third.closed_within(Duration::from_millis(300)).await?, None);
    assert_eq!(first.next(Duration::from_millis(200)).await?, None, "the first subscription waits for events");
    assert_eq!(second.closed_within(Duration::from_millis(100)).await?, None);
    // Another institution subscribes.
    let mut other = hub.as_role(Role::Ars, Some("11")).subscribe(document).await?;
    assert_eq!(other.next(Duration::from_millis(300)).await?, None, "admitted: no error");
    Ok(())
}
