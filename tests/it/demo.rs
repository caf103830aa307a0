//! `cnh-hub demo`: a national synthetic programming with every kind of disagreement, reconciled as writes are.

use api::access::principal::Role;

use serde_json::{Value, json};

use crate::support::TestResult;

db_test! {
    async fn the_demo_programming_shows_the_hub_at_work(hub) {
        let catalog = api::territory::service::Catalog::load(&hub.db).await?;
        let report = api::demo::load(&hub.db, catalog.clone(), 1).await?;
        assert!((4_500..5_500).contains(&report.measures), "{report:?}");
        assert!(report.commitments > report.measures, "{report:?}");
        assert_eq!(report.needs_indicators, 101 * 12 * 4, "every département, every orientation code, four indicators");
        assert!(report.school_plans >= 30 * 3 * 2, "{report:?}");
        // Deterministic: the same seed gives the same programming.
        let again = api::demo::load(&hub.db, catalog, 1).await;
        assert!(again.is_err(), "the demo loads only into an empty programming");
        // Written straight into the database, under the running hub (which loaded its empty regions at start-up).
        let hub = hub.restart().await?;

        let national = hub.as_cnsa().data("{ reconciliation { findingCounts { code count } statusCounts { status count } envelopes { headroom } } }").await?;
        let counts = national["reconciliation"]["findingCounts"].as_array().unwrap();
        let codes: Vec<&str> = counts.iter().map(|c| c["code"].as_str().unwrap()).collect();
        for expected in ["CAPACITY_MISMATCH", "SCHEDULE_MISMATCH", "SHARE_MISMATCH", "COMPONENT_MISMATCH",
            "UNEXPECTED_COFINANCER", "COLLECTIVITE_ONLY_CONSUMES_AE", "AWAITING_COFINANCER", "POSSIBLE_DUPLICATE",
            "CP_BEFORE_INSTALLATION", "ENVELOPE_EXCEEDED", "NEEDS_UNCOVERED", "SCHOOL_PLAN_UNMATCHED",
            "CAMPAIGN_SUBMISSION_MISSING", "CAMPAIGN_SUBMISSION_LATE", "ANNEX_ROUNDING_GAP", "ORPHAN_COMMITMENT",
            "TRAJECTORY_AE_AHEAD", "TRAJECTORY_AE_BEHIND", "CP_EXCEEDS_DRAWING_RIGHTS", "FORECAST_CHANGED_AFTER_DEADLINE"] {
            assert!(codes.contains(&expected), "{expected} missing from {codes:?}");
        }
        let statuses = national["reconciliation"]["statusCounts"].as_array().unwrap();
        let balanced = statuses.iter().find(|s| s["status"] == "BALANCED").unwrap()["count"].as_i64().unwrap();
        let total: i64 = statuses.iter().map(|s| s["count"].as_i64().unwrap()).sum();
        assert_eq!(total as usize, report.measures);
        assert!(balanced * 20 > total, "a realistic share is balanced: {statuses:?}");
        let exceeded = national["reconciliation"]["envelopes"].as_array().unwrap().iter()
            .filter(|e| e["headroom"].as_str().unwrap().starts_with('-')).count();
        assert!((1..=6).contains(&exceeded), "most regions stay within their envelopes: {exceeded} of 54 exceeded");

        // Statuses were stored as a write stores them, and an ARS sees its own region only.
        let stored = sea_orm::ConnectionTrait::query_one_raw(&hub.db, sea_orm::Statement::from_string(
            hub.db.get_database_backend(), "SELECT COUNT(*) AS n FROM measure_co_financing".to_owned())).await?.unwrap();
        assert_eq!(stored.try_get::<i64>("", "n")? as usize, report.measures);
        // Each measure's first version is in the revisions, as a write records it (the as-of packs read them).
        let revisions = sea_orm::ConnectionTrait::query_one_raw(&hub.db, sea_orm::Statement::from_string(
            hub.db.get_database_backend(), "SELECT COUNT(*) AS n FROM measure_revision".to_owned())).await?.unwrap();
        assert_eq!(revisions.try_get::<i64>("", "n")? as usize, report.measures);
        let ara = hub.as_role(Role::Ars, Some("84")).data("{ coFinancingStatus(first: 1) { totalCount } }").await?;
        let ara_total = ara["coFinancingStatus"]["totalCount"].as_i64().unwrap();
        assert!(ara_total > 300 && ara_total < total / 4, "{ara_total}");

        // The committee's pack of the demo: the country's rows are the sum of the regions', and its notified AE the
        // annex's; its steering findings are the reconciliation's.
        let pack = hub.as_cnsa().data("{ steeringReport { envelopes { regionCode compartment notified programmed cpCalled } findings { code } statuses { count } } }").await?;
        let cents = |v: &serde_json::Value| -> i64 { v.as_str().map(|s| (s.parse::<f64>().unwrap_or(0.0) * 100.0).round() as i64).unwrap_or(0) };
        let envelopes = pack["steeringReport"]["envelopes"].as_array().unwrap();
        let annex = hub.as_cnsa().data("{ envelopes { compartment notified } }").await?;
        for compartment in ["SOCLE", "PRECOCE", "ECOLE"] {
            let national = envelopes.iter().find(|e| e["regionCode"] == "FR" && e["compartment"] == compartment).unwrap();
            for field in ["notified", "programmed", "cpCalled"] {
                let sum: i64 = envelopes.iter().filter(|e| e["regionCode"] != "FR" && e["compartment"] == compartment).map(|e| cents(&e[field])).sum();
                assert_eq!(cents(&national[field]), sum, "{compartment} {field}");
            }
            let printed: i64 = annex["envelopes"].as_array().unwrap().iter().filter(|e| e["compartment"] == compartment).map(|e| cents(&e["notified"])).sum();
            assert_eq!(cents(&national["notified"]), printed, "{compartment}: the annex");
        }
        let pack_total: i64 = pack["steeringReport"]["statuses"].as_array().unwrap().iter().map(|s| s["count"].as_i64().unwrap()).sum();
        assert_eq!(pack_total, total, "the pack's statuses are the reconciliation's");
        let steering_codes = |code: &str| counts.iter().find(|c| c["code"] == code).map_or(0, |c| c["count"].as_i64().unwrap());
        for code in ["TRAJECTORY_AE_AHEAD", "CP_EXCEEDS_DRAWING_RIGHTS", "FORECAST_CHANGED_AFTER_DEADLINE"] {
            let in_pack = pack["steeringReport"]["findings"].as_array().unwrap().iter().filter(|f| f["code"] == code).count() as i64;
            assert_eq!(in_pack, steering_codes(code), "{code}");
        }
        Ok(())
    }
}

db_test! {
    async fn writes_patch_the_demo_state_into_the_one_a_fresh_start_computes(hub) {
        // Each write reconciles only the measures it touched (the other measures' outcomes are kept) and recomputes
        // the region's sums and groupings: after writes of every kind on the demo programming, the state in memory is
        // the one a restarted hub computes from the database, finding for finding.
        let catalog = api::territory::service::Catalog::load(&hub.db).await?;
        api::demo::load(&hub.db, catalog, 1).await?;
        let hub = hub.restart().await?;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let listed = ars.data(r#"{ measures(filter: { regionCode: "84" }, first: 24) { edges { node {
            id reference label departementCode categoryCode publics solutions unit nature procedure compartment
            plannedInstallation status finess communeCode expectedCofinancerCode version
            commitments { id funderCode costComponent fullYearAmount capacity installationDate decisionRef version status } } } } }"#).await?;
        let measures = listed["measures"]["edges"].as_array().ok_or("no measures")?.clone();
        assert_eq!(measures.len(), 24);
        let input = |m: &Value| {
            let mut input = m.clone();
            let object = input.as_object_mut().expect("a measure");
            for key in ["id", "version", "commitments"] {
                object.remove(key);
            }
            // The demo has transformations without FINESS (loaded directly, as bulk loads did): a write must say
            // what it is.
            if input["nature"] == "TRANSFORMATION" && input["finess"].is_null() {
                input["nature"] = json!("CREATION");
            }
            input
        };
        for (i, edge) in measures.iter().enumerate() {
            let m = &edge["node"];
            let version = m["version"].clone();
            let answer = match i % 4 {
                // More solutions: coverage, duplicates and the measure's own checks move.
                0 => {
                    let mut changed = input(m);
                    changed["solutions"] = json!(m["solutions"].as_i64().unwrap_or(0) + 5);
                    ars.graphql(UPSERT_DEMO, json!({ "input": changed, "version": version })).await?
                }
                // Abandoned: its commitments become orphans, envelopes and coverage lose it.
                1 => {
                    let mut changed = input(m);
                    changed["status"] = json!("ABANDONNEE");
                    ars.graphql(UPSERT_DEMO, json!({ "input": changed, "version": version })).await?
                }
                // The ARS's own commitment, new or corrected: envelopes, payment credits, the measure's status.
                2 => {
                    let own = m["commitments"].as_array().and_then(|list| {
                        list.iter().find(|c| c["funderCode"] == "ARS-84" && c["status"] == "ACTIVE").cloned()
                    });
                    let (component, expected) = match &own {
                        Some(c) => (c["costComponent"].clone(), c["version"].clone()),
                        None => (json!("SOINS"), Value::Null),
                    };
                    ars.graphql(COMMIT_DEMO, json!({ "input": { "measureId": m["id"], "costComponent": component,
                        "fullYearAmount": "123456.78", "decisionRef": "Arrêté ARS 2026-1", "capacity": 12,
                        "installationDate": "2027-03-01" }, "version": expected })).await?
                }
                // A twin under another reference: a possible duplicate of the first.
                _ => {
                    let mut twin = input(m);
                    twin["reference"] = json!(format!("{}-BIS", m["reference"].as_str().unwrap_or("X")));
                    twin["status"] = json!("PROGRAMMEE");
                    ars.graphql(UPSERT_DEMO, json!({ "input": twin })).await?
                }
            };
            assert!(answer.get("errors").is_none(), "write {i}: {answer}");
        }
        let region = r#"{ coFinancingStatus(filter: { regionCode: "84" }, first: 1000) { totalCount edges { node {
                status awaitedCofinancerCode findings { code severity message figures { name value } }
                measure { id version solutions status commitments { id version status fullYearAmount } } } } } }"#;
        let national = r#"{ reconciliation { envelopes { regionCode compartment committed headroom }
                findingCounts { code count } statusCounts { status count } findings { code subject message }
                needsCoverage { rows { departementCode programmedSolutions peopleWaiting } }
                schoolMatching { academieCode year committed } } }"#;
        let patched = (ars.data(region).await?, hub.as_cnsa().data(national).await?);
        assert!(patched.0["coFinancingStatus"]["totalCount"].as_i64() > Some(400), "{}", patched.0["coFinancingStatus"]["totalCount"]);
        let restarted = hub.restart().await?;
        let ars = restarted.as_role(Role::Ars, Some("84"));
        let fresh = (ars.data(region).await?, restarted.as_cnsa().data(national).await?);
        assert_eq!(first_difference(&patched.0, &fresh.0, String::new()), None, "region 84, patched against a fresh start");
        assert_eq!(first_difference(&patched.1, &fresh.1, String::new()), None, "the nation, patched against a fresh start");
        Ok(())
    }
}

const UPSERT_DEMO: &str = "mutation($input: MeasureInput!, $version: Int) {
  upsertMeasure(input: $input, expectedVersion: $version) { created measure { id version } } }";

const COMMIT_DEMO: &str = "mutation($input: CommitmentInput!, $version: Int) {
  commit(input: $input, expectedVersion: $version) { created commitment { id version } } }";

/// Where two answers first differ (a JSON path and both values), to read a failure without printing megabytes.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).find_map(|k| match (x.get(k), y.get(k)) {
            (Some(p), Some(q)) => first_difference(p, q, format!("{path}.{k}")),
            (p, q) => Some(format!("{path}.{k}: {p:?} against {q:?}")),
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (p, q))| first_difference(p, q, format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} against {b}")),
    }
}
