//! ARS measures and funders' commitments: validation that explains, versions, idempotency under concurrency,
//! history, territory.

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::support::{Caller, TestResult, error_codes};

pub const UPSERT: &str = "mutation($input: MeasureInput!, $key: String, $version: Int) {
  upsertMeasure(input: $input, idempotencyKey: $key, expectedVersion: $version) {
    created warnings { path code }
    measure { id reference version status solutions departementCode regionCode updatedBy publics }
  } }";

pub const COMMIT: &str = "mutation($input: CommitmentInput!, $key: String, $version: Int) {
  commit(input: $input, idempotencyKey: $key, expectedVersion: $version) {
    created commitment { id funder funderCode costComponent fullYearAmount capacity version status schedule { year amount } }
  } }";

/// A valid SESSAD creation in the Rhône.
pub fn measure(reference: &str) -> Value {
    json!({
        "reference": reference, "label": "SESSAD TND Lyon Est", "departementCode": "69", "categoryCode": "182",
        "publics": ["ENFANTS", "TND"], "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION",
        "procedure": "APPEL_A_PROJETS", "compartment": "SOCLE_ENFANTS", "plannedInstallation": "2026-09-01"
    })
}

fn with(mut value: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        value[k] = v.clone();
    }
    value
}

pub async fn create_measure(
    ars: &Caller<'_>,
    reference: &str,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let answer = ars.graphql(UPSERT, json!({ "input": measure(reference) })).await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    Ok(answer["data"]["upsertMeasure"]["measure"].clone())
}

fn violation_codes(answer: &Value) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = answer["errors"][0]["extensions"]["violations"]
        .as_array()
        .map(|v| {
            v.iter().map(|v| (v["path"].as_str().unwrap().to_owned(), v["code"].as_str().unwrap().to_owned())).collect()
        })
        .unwrap_or_default();
    list.sort();
    list
}

async fn count(hub: &crate::support::TestHub, table: &str) -> Result<i64, sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = hub.db.query_one_raw(sea_orm::Statement::from_string(hub.db.get_database_backend(), sql)).await?;
    row.expect("a count").try_get::<i64>("", "n")
}

db_test! {
    async fn an_ars_creates_then_updates_a_measure_at_its_version(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let created = ars.graphql(UPSERT, json!({ "input": measure("ARA-2024-001") })).await?;
        let payload = &created["data"]["upsertMeasure"];
        assert_eq!(payload["created"], true, "{created}");
        assert_eq!(payload["measure"]["version"], 1);
        assert_eq!(payload["measure"]["regionCode"], "84");
        assert_eq!(payload["measure"]["status"], "PROGRAMMEE");
        assert!(payload["measure"]["updatedBy"].as_str().unwrap().starts_with("ARS-84/"));

        // An update without expectedVersion is a conflict naming the stored version, as a stale one is.
        let without_version = ars.graphql(UPSERT, json!({ "input": with(measure("ARA-2024-001"), json!({ "solutions": 35 })) })).await?;
        assert_eq!(error_codes(&without_version), ["VERSION_CONFLICT"], "{without_version}");
        assert_eq!(without_version["errors"][0]["extensions"]["currentVersion"], 1, "{without_version}");
        let message = without_version["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("ARA-2024-001") && message.contains("version 1") && message.contains("expectedVersion: 1"), "{message}");
        let stale = ars.graphql(UPSERT, json!({ "input": with(measure("ARA-2024-001"), json!({ "solutions": 35 })), "version": 7 })).await?;
        assert_eq!(error_codes(&stale), ["VERSION_CONFLICT"]);
        assert_eq!(stale["errors"][0]["extensions"]["currentVersion"], 1, "{stale}");
        assert!(stale["errors"][0]["message"].as_str().unwrap_or_default().contains("version 1"), "{stale}");
        assert_eq!(count(&hub, "measure_revision").await?, 1, "nothing written");
        let updated = ars.graphql(UPSERT, json!({ "input": with(measure("ARA-2024-001"), json!({ "solutions": 35, "status": "AUTORISEE" })), "version": 1 })).await?;
        let payload = &updated["data"]["upsertMeasure"];
        assert_eq!((&payload["created"], &payload["measure"]["version"], &payload["measure"]["solutions"]), (&json!(false), &json!(2), &json!(35)));

        let back = ars.data("{ measures { totalCount edges { node { reference version status commitments { id } } } } }").await?;
        assert_eq!(back["measures"]["totalCount"], 1);
        assert_eq!(back["measures"]["edges"][0]["node"], json!({ "reference": "ARA-2024-001", "version": 2, "status": "AUTORISEE", "commitments": [] }));
        assert_eq!(count(&hub, "measure_revision").await?, 2);
        Ok(())
    }
}

db_test! {
    async fn a_bad_measure_gets_every_violation_and_nothing_is_stored(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let bad = with(measure(""), json!({
            "departementCode": "75", "categoryCode": "183", "compartment": "PRECOCE", "finess": "690000002",
            "solutions": 0, "plannedInstallation": "2031-01-15", "nature": "TRANSFORMATION", "publics": [],
            "status": "INSTALLEE"
        }));
        let answer = ars.graphql(UPSERT, json!({ "input": bad })).await?;
        assert_eq!(error_codes(&answer), ["VALIDATION_FAILED"]);
        let codes = violation_codes(&answer);
        let expected: Vec<(String, String)> = [
            ("compartment", "CATEGORY_NOT_IN_COMPARTMENT"),
            ("departementCode", "DEPARTEMENT_OUTSIDE_REGION"),
            ("finess", "FINESS_CHECK_DIGIT"),
            ("plannedInstallation", "DATE_OUT_OF_PLAN"),
            ("publics", "REQUIRED"),
            ("reference", "REQUIRED"),
            ("solutions", "SOLUTIONS_OUT_OF_RANGE"),
            ("status", "STATUS_TRANSITION"),
        ].iter().map(|(p, c)| (p.to_string(), c.to_string())).collect();
        assert_eq!(codes, expected, "{answer}");
        let unknown = ars.graphql(UPSERT, json!({ "input": with(measure("X"), json!({ "categoryCode": "999", "departementCode": "99" })) })).await?;
        assert_eq!(violation_codes(&unknown), [("categoryCode".to_owned(), "UNKNOWN_CATEGORY".to_owned()), ("departementCode".to_owned(), "UNKNOWN_DEPARTEMENT".to_owned())]);
        let wrong_type = ars.graphql(UPSERT, json!({ "input": with(measure("X"), json!({ "solutions": "thirty" })) })).await?;
        assert_eq!(error_codes(&wrong_type).len(), 1);
        assert_eq!(count(&hub, "measure").await?, 0);
        assert_eq!(count(&hub, "audit_record").await?, 0, "a refused write leaves no trace but its absence");
        Ok(())
    }
}

db_test! {
    async fn a_legacy_category_on_a_creation_is_accepted_with_a_warning(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let fam = with(measure("FAM-1"), json!({ "categoryCode": "437", "compartment": "SOCLE_ADULTES", "publics": ["ADULTES"] }));
        let answer = ars.graphql(UPSERT, json!({ "input": fam })).await?;
        assert_eq!(answer["data"]["upsertMeasure"]["warnings"], json!([{ "path": "categoryCode", "code": "LEGACY_CATEGORY_ON_CREATION" }]));
        Ok(())
    }
}

db_test! {
    async fn a_replayed_write_returns_the_first_answer_and_another_input_under_its_key_is_refused(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let first = ars.graphql(UPSERT, json!({ "input": measure("IDEM-1"), "key": "seppia-export-2024-05-31" })).await?;
        let again = ars.graphql(UPSERT, json!({ "input": measure("IDEM-1"), "key": "seppia-export-2024-05-31" })).await?;
        assert_eq!(first["data"], again["data"]);
        let other = ars.graphql(UPSERT, json!({ "input": measure("IDEM-2"), "key": "seppia-export-2024-05-31" })).await?;
        assert_eq!(error_codes(&other), ["IDEMPOTENCY_CONFLICT"]);
        // Keys are per institution: another ARS may use the same words.
        let elsewhere = hub.as_role(Role::Ars, Some("11")).graphql(UPSERT, json!({ "input": with(measure("IDEM-1"), json!({ "departementCode": "75" })), "key": "seppia-export-2024-05-31" })).await?;
        assert!(elsewhere.get("errors").is_none(), "{elsewhere}");
        assert_eq!(count(&hub, "measure").await?, 2);
        assert_eq!(count(&hub, "measure_revision").await?, 2);
        Ok(())
    }
}

db_test! {
    async fn fifty_parallel_replays_store_the_measure_once(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let calls = (0..50).map(|_| ars.graphql(UPSERT, json!({ "input": measure("RACE-1"), "key": "race" })));
        let answers = futures_join_all(calls).await;
        let ids: std::collections::BTreeSet<String> = answers.iter().map(|a| {
            let a = a.as_ref().expect("answered");
            assert!(a.get("errors").is_none(), "{a}");
            a["data"]["upsertMeasure"]["measure"]["id"].as_str().unwrap().to_owned()
        }).collect();
        assert_eq!(ids.len(), 1);
        assert_eq!(count(&hub, "measure").await?, 1);
        assert_eq!(count(&hub, "measure_revision").await?, 1);
        assert_eq!(count(&hub, "submission").await?, 1);
        assert_eq!(count(&hub, "audit_record").await?, 1);
        Ok(())
    }
}

db_test! {
    async fn fifty_parallel_updates_against_one_version_let_exactly_one_win(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        create_measure(&ars, "RACE-2").await?;
        let calls = (0..50).map(|i| ars.graphql(UPSERT, json!({ "input": with(measure("RACE-2"), json!({ "solutions": 100 + i })), "version": 1 })));
        let answers = futures_join_all(calls).await;
        let (mut won, mut conflicts) = (0, 0);
        for answer in &answers {
            let answer = answer.as_ref().expect("answered");
            match error_codes(answer).as_slice() {
                [] => won += 1,
                [code] if code == "VERSION_CONFLICT" => {
                    assert_eq!(answer["errors"][0]["extensions"]["currentVersion"], 2, "the winner's version: {answer}");
                    conflicts += 1
                }
                other => panic!("unexpected {other:?}: {answer}"),
            }
        }
        assert_eq!((won, conflicts), (1, 49));
        let back = ars.data("{ measures { edges { node { version } } } }").await?;
        assert_eq!(back["measures"]["edges"][0]["node"]["version"], 2);
        assert_eq!(count(&hub, "measure_revision").await?, 2);
        Ok(())
    }
}

db_test! {
    async fn a_measure_reads_back_as_it_stood_at_an_instant(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let before = chrono::Utc::now() - chrono::Duration::seconds(5);
        let created = create_measure(&ars, "HIST-1").await?;
        let id = created["id"].as_str().unwrap().to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let between = chrono::Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ars.graphql(UPSERT, json!({ "input": with(measure("HIST-1"), json!({ "solutions": 45 })), "version": 1 })).await?;
        let q = "query($id: ID!, $at: DateTime) { measure(id: $id, asOf: $at) { version solutions } }";
        let then = ars.graphql(q, json!({ "id": id, "at": between.to_rfc3339() })).await?;
        assert_eq!(then["data"]["measure"], json!({ "version": 1, "solutions": 30 }));
        // The same instant written in Paris time reads the same state.
        let paris = between.with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap()).to_rfc3339();
        let then_paris = ars.graphql(q, json!({ "id": id, "at": paris })).await?;
        assert_eq!(then_paris["data"]["measure"], json!({ "version": 1, "solutions": 30 }));
        let now = ars.graphql(q, json!({ "id": id, "at": null })).await?;
        assert_eq!(now["data"]["measure"], json!({ "version": 2, "solutions": 45 }));
        let earlier = ars.graphql(q, json!({ "id": id, "at": before.to_rfc3339() })).await?;
        assert_eq!(earlier["data"]["measure"], Value::Null, "it did not exist yet");
        Ok(())
    }
}

db_test! {
    async fn each_institution_reads_measures_of_its_territory_only(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let id = create_measure(&ars, "TERR-1").await?["id"].as_str().unwrap().to_owned();
        let q = "query($id: ID!) { measure(id: $id) { reference } }";
        for (role, territory) in [(Role::Collectivite, "69"), (Role::Mdph, "69"), (Role::Rectorat, "lyon"), (Role::Cnsa, "")] {
            let caller = hub.as_role(role, (!territory.is_empty()).then_some(territory));
            let answer = caller.graphql(q, json!({ "id": id })).await?;
            assert_eq!(answer["data"]["measure"]["reference"], "TERR-1", "{role:?}: {answer}");
        }
        for (role, territory) in [(Role::Ars, "11"), (Role::Collectivite, "38"), (Role::Mdph, "75"), (Role::Rectorat, "grenoble")] {
            let caller = hub.as_role(role, Some(territory));
            let answer = caller.graphql(q, json!({ "id": id })).await?;
            assert_eq!(error_codes(&answer), ["NOT_FOUND"], "{role:?} {territory}");
            let list = caller.data("{ measures { totalCount } }").await?;
            assert_eq!(list["measures"]["totalCount"], 0, "{role:?} {territory}");
        }
        let missing = ars.graphql(q, json!({ "id": "01900000-0000-7000-8000-000000000000" })).await?;
        assert_eq!(error_codes(&missing), ["NOT_FOUND"], "outside one's territory reads exactly as missing");
        Ok(())
    }
}

db_test! {
    async fn each_funder_records_its_own_view_of_a_measure(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let id = create_measure(&ars, "COFI-1").await?["id"].as_str().unwrap().to_owned();
        let ars_view = json!({ "measureId": id, "costComponent": "SOINS", "fullYearAmount": "450000.00",
            "schedule": [{ "year": 2026, "amount": "150000" }, { "year": 2027, "amount": "450000.00" }],
            "decisionRef": "Arrêté ARS 2024-123", "capacity": 30, "installationDate": "2026-09-01" });
        let answer = ars.graphql(COMMIT, json!({ "input": ars_view })).await?;
        let c = &answer["data"]["commit"]["commitment"];
        assert_eq!((&c["funder"], &c["funderCode"], &c["fullYearAmount"]), (&json!("ASSURANCE_MALADIE"), &json!("ARS-84"), &json!("450000.00")), "{answer}");
        assert_eq!(c["schedule"][0], json!({ "year": 2026, "amount": "150000.00" }));

        let cd = hub.as_role(Role::Collectivite, Some("69"));
        let cd_view = json!({ "measureId": id, "costComponent": "HEBERGEMENT", "fullYearAmount": "300000",
            "decisionRef": "Délibération CD69 2024-05", "capacity": 25, "installationDate": "2027-01-01" });
        let answer = cd.graphql(COMMIT, json!({ "input": cd_view.clone() })).await?;
        let cd_commitment = answer["data"]["commit"]["commitment"].clone();
        assert_eq!((&cd_commitment["funder"], &cd_commitment["funderCode"], &cd_commitment["capacity"]), (&json!("COLLECTIVITE"), &json!("CD-69"), &json!(25)));

        let listed = cd.data(&format!(r#"{{ measure(id: "{id}") {{ commitments {{ funderCode costComponent capacity }} }} }}"#)).await?;
        assert_eq!(listed["measure"]["commitments"].as_array().unwrap().len(), 2);

        let corrected = cd.graphql(COMMIT, json!({ "input": with(cd_view.clone(), json!({ "capacity": 30 })), "version": 1 })).await?;
        assert_eq!(corrected["data"]["commit"]["commitment"]["version"], 2);

        let paris = hub.as_role(Role::Collectivite, Some("75")).graphql(COMMIT, json!({ "input": cd_view.clone() })).await?;
        assert_eq!(error_codes(&paris), ["NOT_FOUND"], "another collectivité's territory");
        let negative = cd.graphql(COMMIT, json!({ "input": with(cd_view, json!({ "fullYearAmount": "-1.00", "capacity": 0, "schedule": [{ "year": 2023, "amount": "1" }] })), "version": 2 })).await?;
        assert_eq!(violation_codes(&negative), [
            ("capacity".to_owned(), "CAPACITY_OUT_OF_RANGE".to_owned()),
            ("fullYearAmount".to_owned(), "NEGATIVE_AMOUNT".to_owned()),
            ("schedule[0].year".to_owned(), "YEAR_OUT_OF_PLAN".to_owned()),
        ]);
        let float = cd.graphql(COMMIT, json!({ "input": { "measureId": id, "costComponent": "HEBERGEMENT", "fullYearAmount": 300000.5,
            "decisionRef": "x", "capacity": 25, "installationDate": "2027-01-01" } })).await?;
        assert_eq!(error_codes(&float).len(), 1, "amounts are never floats: {float}");

        let withdraw = "mutation($id: ID!, $v: Int!) { withdrawCommitment(id: $id, reason: \"Délibération annulée\", expectedVersion: $v) { commitment { status withdrawalReason version } } }";
        let by_ars = ars.graphql(withdraw, json!({ "id": cd_commitment["id"], "v": 2 })).await?;
        assert_eq!(error_codes(&by_ars), ["NOT_FOUND"], "only its funder withdraws a commitment");
        let stale = cd.graphql(withdraw, json!({ "id": cd_commitment["id"], "v": 1 })).await?;
        assert_eq!(error_codes(&stale), ["VERSION_CONFLICT"]);
        let withdrawn = cd.graphql(withdraw, json!({ "id": cd_commitment["id"], "v": 2 })).await?;
        assert_eq!(withdrawn["data"]["withdrawCommitment"]["commitment"], json!({ "status": "WITHDRAWN", "withdrawalReason": "Délibération annulée", "version": 3 }));
        assert_eq!(count(&hub, "commitment_revision").await?, 4);
        Ok(())
    }
}

db_test! {
    async fn committing_again_without_expected_version_is_a_conflict_giving_the_current_version(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let id = create_measure(&ars, "VERS-1").await?["id"].as_str().unwrap().to_owned();
        let cd = hub.as_role(Role::Collectivite, Some("69"));
        let view = json!({ "measureId": id, "costComponent": "HEBERGEMENT", "fullYearAmount": "300000",
            "decisionRef": "Délibération CD69", "capacity": 25, "installationDate": "2026-09-01" });
        assert!(cd.graphql(COMMIT, json!({ "input": view.clone() })).await?.get("errors").is_none());
        assert!(cd.graphql(COMMIT, json!({ "input": with(view.clone(), json!({ "capacity": 28 })), "version": 1 })).await?.get("errors").is_none());
        let (commitments, revisions, audit) = (count(&hub, "commitment").await?, count(&hub, "commitment_revision").await?, count(&hub, "audit_record").await?);

        let blind = cd.graphql(COMMIT, json!({ "input": with(view.clone(), json!({ "capacity": 30 })) })).await?;
        assert_eq!(error_codes(&blind), ["VERSION_CONFLICT"], "{blind}");
        assert_eq!(blind["errors"][0]["extensions"]["currentVersion"], 2, "{blind}");
        let message = blind["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("version 2") && message.contains("expectedVersion: 2"), "{message}");
        let stale = cd.graphql(COMMIT, json!({ "input": with(view.clone(), json!({ "capacity": 30 })), "version": 1 })).await?;
        assert_eq!(error_codes(&stale), ["VERSION_CONFLICT"], "{stale}");
        assert_eq!(stale["errors"][0]["extensions"]["currentVersion"], 2, "{stale}");
        assert_eq!(
            (count(&hub, "commitment").await?, count(&hub, "commitment_revision").await?, count(&hub, "audit_record").await?),
            (commitments, revisions, audit),
            "nothing written"
        );

        // The client retries with the version it was given.
        let retried = cd.graphql(COMMIT, json!({ "input": with(view, json!({ "capacity": 30 })), "version": blind["errors"][0]["extensions"]["currentVersion"] })).await?;
        assert_eq!(retried["data"]["commit"]["commitment"]["version"], 3, "{retried}");
        assert_eq!(retried["data"]["commit"]["commitment"]["capacity"], 30);
        Ok(())
    }
}

db_test! {
    async fn a_measure_moves_forward_through_its_statuses_only(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        create_measure(&ars, "STAT-1").await?;
        let step = |status: &str, version: i64| json!({ "input": with(measure("STAT-1"), json!({ "status": status })), "version": version });
        assert!(ars.graphql(UPSERT, step("AUTORISEE", 1)).await?.get("errors").is_none());
        assert!(ars.graphql(UPSERT, step("INSTALLEE", 2)).await?.get("errors").is_none());
        let back = ars.graphql(UPSERT, step("PROGRAMMEE", 3)).await?;
        assert_eq!(violation_codes(&back), [("status".to_owned(), "STATUS_TRANSITION".to_owned())]);
        Ok(())
    }
}

/// Runs futures concurrently on the test's runtime.
pub async fn futures_join_all<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut results = Vec::with_capacity(set.len());
    // Poll them all together: each HTTP call progresses while others wait on the server.
    let joined = async_join(set).await;
    results.extend(joined);
    results
}

async fn async_join<T, F: std::future::Future<Output = T> + Unpin>(mut futures: Vec<F>) -> Vec<T> {
    use std::task::Poll;
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    Poll::Ready(v) => outputs[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}
