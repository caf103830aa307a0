//! What runs no SQL: authenticating a request (the access list is in memory) and reading the reconciled state once
//! it is loaded (`coFinancingStatus`, `reconciliation`, `measures`, `measure` and the commitments and findings under
//! them), whatever the request's text. Counted from the hub's own connection.

use std::sync::atomic::Ordering;
use std::time::Duration;

use api::access::principal::Role;
use serde_json::json;

use crate::programming::{COMMIT, UPSERT};

db_test! {
    async fn authentication_and_reconciled_reads_run_no_sql(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let created = ars.graphql(UPSERT, json!({ "input": {
            "reference": "EAM-SQL", "label": "EAM", "departementCode": "69", "categoryCode": "448", "publics": ["ADULTES"],
            "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION", "procedure": "APPEL_A_PROJETS",
            "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01" } })).await?;
        let id = created["data"]["upsertMeasure"]["measure"]["id"].as_str().expect("created").to_owned();
        let committed = ars.graphql(COMMIT, json!({ "input": { "measureId": id, "costComponent": "SOINS",
            "fullYearAmount": "450000.00", "decisionRef": "Arrêté ARS 2024-123", "capacity": 30,
            "installationDate": "2026-09-01" } })).await?;
        assert!(committed.get("errors").is_none(), "{committed}");
        let cd = hub.as_role(Role::Collectivite, Some("69"));
        cd.data("{ me { role } }").await?;
        // The first sight of a token is recorded off the request path, and the first read loads the state.
        ars.data("{ me { role } }").await?;
        ars.data(r#"{ coFinancingStatus(filter: { regionCode: "84" }) { totalCount } reconciliation(regionCode: "84") { findingCounts { code } } }"#).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = hub.statements.load(Ordering::SeqCst);
        for i in 0..30 {
            ars.data("{ me { role institution { code } scope { regionCodes } } }").await?;
            // A different text each time, as real dashboards send: no answer cache can serve it.
            let query = format!(
                r#"{{ a{i}: coFinancingStatus(filter: {{ regionCode: "84" }}, first: {}) {{ edges {{ node {{ status measure {{ id reference }} findings {{ code message }} }} }} }}
                   b{i}: reconciliation(regionCode: "84") {{ envelopes {{ compartment headroom }} findingCounts {{ code count }} needsCoverage {{ rows {{ departementCode }} }} }} }}"#,
                10 + i
            );
            ars.data(&query).await?;
            // Measures, one measure and their commitments, as an ARS and as a collectivité (a département's reach).
            let query = format!(
                r#"{{ m{i}: measures(filter: {{ regionCode: "84" }}, first: {}) {{ totalCount edges {{ node {{ id reference commitments {{ id funderCode fullYearAmount status }} }} }} }}
                   one{i}: measure(id: "{id}") {{ id label version commitments {{ id capacity }} }}
                   s{i}: coFinancingStatus(first: 5) {{ edges {{ node {{ measure {{ id commitments {{ id }} }} }} }} }} }}"#,
                1 + i
            );
            let answer = ars.data(&query).await?;
            assert_eq!(answer[format!("one{i}")]["commitments"].as_array().map(Vec::len), Some(1), "{answer}");
            let answer = cd.data(&query.replace("regionCode: \"84\"", "departementCode: \"69\"")).await?;
            assert_eq!(answer[format!("one{i}")]["id"], json!(id), "{answer}");
        }
        let after = hub.statements.load(Ordering::SeqCst);
        assert_eq!(after - before, 0, "SQL statements run by 120 authenticated reads of the reconciled state");
        // The counter does count: a write runs statements.
        ars.graphql(UPSERT, json!({ "input": {
            "reference": "EAM-SQL-2", "label": "EAM", "departementCode": "69", "categoryCode": "448", "publics": ["ADULTES"],
            "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION", "procedure": "APPEL_A_PROJETS",
            "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01" } })).await?;
        assert!(hub.statements.load(Ordering::SeqCst) > after, "a write is counted");
        Ok(())
    }
}
