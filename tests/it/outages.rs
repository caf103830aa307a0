//! The store going away: backends terminated under writes, and the database unreachable behind a cut proxy. Every
//! failure is `SERVICE_UNAVAILABLE` (503, retryable), never `INTERNAL_SERVER_ERROR`; reads from memory keep
//! answering; the hub recovers by itself. PostgreSQL only: it is the store that can be cut off from the hub.

use std::time::{Duration, Instant};

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::programming::{UPSERT, measure};
use crate::support::{Backend, Proxy, TestHub, TestResult, error_codes};

fn admin_url() -> Result<Option<String>, String> {
    Ok(match Backend::postgres()? {
        Some(Backend::Postgres { admin_url }) => Some(admin_url),
        _ => None,
    })
}

/// Terminates every backend of the hub's database but the test's own connection.
async fn terminate_backends(hub: &TestHub) -> Result<(), sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    hub.db
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await
        .map(|_| ())
}

async fn measures_stored(hub: &TestHub) -> Result<i64, sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    let row = hub
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            hub.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM measure",
        ))
        .await?;
    row.expect("a count").try_get::<i64>("", "n")
}

/// Sends a write and returns (status, codes, created).
async fn write(hub: &TestHub, token: &str, reference: &str) -> Result<(u16, Vec<String>, bool), reqwest::Error> {
    let response = hub
        .client
        .post(hub.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": UPSERT, "variables": { "input": measure(reference) } }))
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer: Value = response.json().await?;
    let created = answer["data"]["upsertMeasure"]["created"] == json!(true);
    Ok((status, error_codes(&answer), created))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_under_terminated_backends_are_retryable_and_none_is_half_written() -> TestResult {
    let Some(admin_url) = admin_url()? else { return Ok(()) };
    let hub = TestHub::start(Backend::Postgres { admin_url }).await?;
    let token = hub.as_role(Role::Ars, Some("84")).token.unwrap();
    let (mut created, mut refused) = (0, 0);
    for round in 0..4 {
        let references: Vec<String> = (0..12).map(|i| format!("OUT-{round}-{i}")).collect();
        let writes: Vec<_> = references.iter().map(|reference| write(&hub, &token, reference)).collect();
        let (answers, terminated) = tokio::join!(futures_util::future::join_all(writes), async {
            tokio::time::sleep(Duration::from_millis(15)).await;
            terminate_backends(&hub).await
        });
        terminated?;
        for answer in answers {
            let (status, codes, was_created) = answer?;
            if was_created {
                created += 1;
                assert_eq!(status, 200);
            } else {
                assert_eq!(codes, ["SERVICE_UNAVAILABLE"], "a failure under terminated backends is retryable");
                assert_eq!(status, 503);
                refused += 1;
            }
        }
    }
    // What was acknowledged is stored. A write cut during its COMMIT may have committed without being acknowledged
    // (the outcome a client cannot know, and why it retries with an idempotency key); no more than those.
    let stored = measures_stored(&hub).await?;
    assert!(
        created <= stored && stored <= created + refused,
        "{created} acknowledged, {refused} refused, {stored} stored"
    );
    // The hub recovers by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, codes, was_created) = write(&hub, &token, "OUT-AFTER").await?;
        if was_created {
            break;
        }
        assert_eq!((status, codes), (503, vec!["SERVICE_UNAVAILABLE".to_owned()]));
        assert!(Instant::now() < deadline, "the hub did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ars = hub.as_role(Role::Ars, Some("84"));
    assert_eq!(ars.data("{ measures { totalCount } }").await?["measures"]["totalCount"], json!(stored + 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_keeps_reads_answering_refuses_writes_fast_and_is_survived() -> TestResult {
    let Some(admin_url) = admin_url()? else { return Ok(()) };
    let proxy = Proxy::to_postgres(&admin_url).await?;
    let hub = TestHub::start_behind(&admin_url, &proxy).await?;
    let ars = hub.as_role(Role::Ars, Some("84"));
    let token = ars.token.clone().unwrap();
    crate::programming::create_measure(&ars, "CUT-1").await?;
    let read = "{ coFinancingStatus(first: 10) { totalCount edges { node { status measure { reference } } } } measures { totalCount } }";
    let before = ars.data(read).await?;

    proxy.cut();
    // Within a second the hub knows; then every refusal is immediate.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = Instant::now();
    let ready = hub.client.get(hub.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let (status, codes, _) = write(&hub, &token, "CUT-2").await?;
    assert_eq!((status, codes), (503, vec!["SERVICE_UNAVAILABLE".to_owned()]));
    assert!(started.elapsed() < Duration::from_secs(1), "refused within a second: {:?}", started.elapsed());
    // Reads served from memory, authenticated from memory, keep answering.
    assert_eq!(ars.data(read).await?, before);
    assert_eq!(measures_stored(&hub).await?, 1, "nothing written while cut off");

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, created) = write(&hub, &token, "CUT-2").await?;
        if created {
            break;
        }
        assert!(Instant::now() < deadline, "the hub did not recover once the store came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(hub.client.get(hub.url("/readyz")).send().await?.status(), 200);
    assert_eq!(ars.data("{ measures { totalCount } }").await?["measures"]["totalCount"], 2);
    Ok(())
}

db_test! {
    async fn on_shutdown_the_write_under_way_finishes_and_websockets_close_going_away(hub) {
        let mut hub = hub;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let token = ars.token.clone().unwrap();
        let mut subscription = ars.subscribe("subscription { coFinancingStatusChanged { measureId } }").await?;
        // A file of 400 measures: a write long enough to be under way when the signal comes.
        let mut csv = String::from("Référence;Libellé;Département;FINESS;Catégorie;Publics;Nombre de solutions;Unité;Nature;Procédure;Compartiment;Date d'installation prévue;Statut\n");
        for i in 0..400 {
            csv.push_str(&format!("SHUT-{i};SESSAD TND;69;;182;Enfants, TND;30;Places installées;Création;Appel à projets;Socle enfants;01/09/2026;Programmée\n"));
        }
        let operations = json!({
            "query": "mutation($file: Upload!) { importFile(kind: MEASURES, file: $file) { created } }",
            "variables": { "file": null }
        });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", r#"{ "0": ["variables.file"] }"#)
            .part("0", reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("mesures.csv"));
        let import = hub.client.post(hub.url("/graphql")).bearer_auth(&token).multipart(form).send();
        let (answer, exited) = tokio::join!(import, async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            hub.shut_down(Duration::from_secs(30)).await
        });
        let answer: Value = answer?.json().await?;
        assert_eq!(answer["data"]["importFile"]["created"], 400, "the write under way finished: {answer}");
        assert!(exited.is_some(), "the hub exited within its grace period");
        assert_eq!(subscription.closed_within(Duration::from_secs(5)).await?, Some(1001));
        assert_eq!(measures_stored(&hub).await?, 400);
        Ok(())
    }
}
