//! What runs no SQL: authenticating a request (the access list is in memory) and reading the reconciled state once
//! it is loaded, whatever the request's text. Counted from the hub's own connection.

use std::sync::atomic::Ordering;
use std::time::Duration;

use api::access::principal::Role;
use serde_json::json;

use crate::programming::UPSERT;

db_test! {
    async fn authentication_and_reconciled_reads_run_no_sql(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        ars.graphql(UPSERT, json!({ "input": {
            "reference": "EAM-SQL", "label": "EAM", "departementCode": "69", "categoryCode": "448", "publics": ["ADULTES"],
            "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION", "procedure": "APPEL_A_PROJETS",
            "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01" } })).await?;
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
        }
        let after = hub.statements.load(Ordering::SeqCst);
        assert_eq!(after - before, 0, "SQL statements run by 60 authenticated reads of the reconciled state");
        // The counter does count: a write runs statements.
        ars.graphql(UPSERT, json!({ "input": {
            "reference": "EAM-SQL-2", "label": "EAM", "departementCode": "69", "categoryCode": "448", "publics": ["ADULTES"],
            "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION", "procedure": "APPEL_A_PROJETS",
            "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01" } })).await?;
        assert!(hub.statements.load(Ordering::SeqCst) > after, "a write is counted");
        Ok(())
    }
}
