//! `cnh-hub demo`: a national synthetic programming with every kind of disagreement, reconciled as writes are.

use api::access::principal::Role;

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

        let national = hub.as_cnsa().data("{ reconciliation { findingCounts { code count } statusCounts { status count } envelopes { headroom } } }").await?;
        let counts = national["reconciliation"]["findingCounts"].as_array().unwrap();
        let codes: Vec<&str> = counts.iter().map(|c| c["code"].as_str().unwrap()).collect();
        for expected in ["CAPACITY_MISMATCH", "SCHEDULE_MISMATCH", "SHARE_MISMATCH", "COMPONENT_MISMATCH",
            "UNEXPECTED_COFINANCER", "COLLECTIVITE_ONLY_CONSUMES_AE", "AWAITING_COFINANCER", "POSSIBLE_DUPLICATE",
            "CP_BEFORE_INSTALLATION", "ENVELOPE_EXCEEDED", "NEEDS_UNCOVERED", "SCHOOL_PLAN_UNMATCHED",
            "CAMPAIGN_SUBMISSION_MISSING", "CAMPAIGN_SUBMISSION_LATE", "ANNEX_ROUNDING_GAP", "ORPHAN_COMMITMENT"] {
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
        let ara = hub.as_role(Role::Ars, Some("84")).data("{ coFinancingStatus(first: 1) { totalCount } }").await?;
        let ara_total = ara["coFinancingStatus"]["totalCount"].as_i64().unwrap();
        assert!(ara_total > 300 && ara_total < total / 4, "{ara_total}");
        Ok(())
    }
}
