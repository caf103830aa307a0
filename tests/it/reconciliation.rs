//! Reconciliation as the funders and the CNSA see it: a measure's co-financing status through its life, envelopes.

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::programming::{COMMIT, UPSERT};
use crate::support::{TestResult, error_codes};

const STATUS: &str = "{ coFinancingStatus { totalCount edges { node { status measure { reference } findings { code severity message figures { name value unit } } } } } }";

fn eam() -> Value {
    json!({ "reference": "EAM-69-01", "label": "EAM Villeurbanne", "departementCode": "69", "categoryCode": "448",
        "publics": ["ADULTES"], "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION",
        "procedure": "APPEL_A_PROJETS", "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01" })
}

db_test! {
    async fn a_measure_goes_from_awaiting_to_capacity_mismatch_to_balanced(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let id = ars.graphql(UPSERT, json!({ "input": eam() })).await?["data"]["upsertMeasure"]["measure"]["id"].as_str().unwrap().to_owned();
        ars.graphql(COMMIT, json!({ "input": { "measureId": id, "costComponent": "SOINS", "fullYearAmount": "450000",
            "schedule": [{ "year": 2026, "amount": "150000" }, { "year": 2027, "amount": "450000" }],
            "decisionRef": "Arrêté ARS", "capacity": 30, "installationDate": "2026-09-01" } })).await?;
        let awaiting = ars.data(STATUS).await?;
        let node = &awaiting["coFinancingStatus"]["edges"][0]["node"];
        assert_eq!(node["status"], "AWAITING_COFINANCER", "{awaiting}");
        assert_eq!(node["findings"][0]["code"], "AWAITING_COFINANCER");
        assert!(node["findings"][0]["message"].as_str().unwrap().contains("la collectivité"));

        let cd = hub.as_role(Role::Collectivite, Some("69"));
        let cd_view = json!({ "measureId": id, "costComponent": "HEBERGEMENT", "fullYearAmount": "300000",
            "decisionRef": "Délibération CD69", "capacity": 25, "installationDate": "2026-09-01" });
        cd.graphql(COMMIT, json!({ "input": cd_view })).await?;
        let mismatch = cd.data(STATUS).await?;
        let node = &mismatch["coFinancingStatus"]["edges"][0]["node"];
        assert_eq!(node["status"], "CAPACITY_MISMATCH", "{mismatch}");
        assert_eq!(node["findings"][0]["figures"], json!([
            { "name": "capacite", "value": "30", "unit": "COUNT" }, { "name": "capacite", "value": "25", "unit": "COUNT" }
        ]));

        let mut corrected = cd_view.clone();
        corrected["capacity"] = json!(30);
        cd.graphql(COMMIT, json!({ "input": corrected, "version": 1 })).await?;
        let balanced = ars.data(STATUS).await?;
        assert_eq!(balanced["coFinancingStatus"]["edges"][0]["node"]["status"], "BALANCED", "{balanced}");
        assert_eq!(balanced["coFinancingStatus"]["edges"][0]["node"]["findings"], json!([]));

        assert_eq!(hub.as_role(Role::Collectivite, Some("75")).data(STATUS).await?["coFinancingStatus"]["totalCount"], 0);
        assert_eq!(hub.as_role(Role::Ars, Some("11")).data(STATUS).await?["coFinancingStatus"]["totalCount"], 0);
        let filtered = hub.as_cnsa().data(r#"{ coFinancingStatus(filter: { status: CAPACITY_MISMATCH }) { totalCount } }"#).await?;
        assert_eq!(filtered["coFinancingStatus"]["totalCount"], 0);
        Ok(())
    }
}

db_test! {
    async fn envelopes_show_what_each_region_has_committed_and_its_headroom(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let mut ime = eam();
        ime["reference"] = json!("IME-1");
        ime["categoryCode"] = json!("183");
        ime["compartment"] = json!("SOCLE_ENFANTS");
        ime["publics"] = json!(["ENFANTS"]);
        let id = ars.graphql(UPSERT, json!({ "input": ime })).await?["data"]["upsertMeasure"]["measure"]["id"].as_str().unwrap().to_owned();
        ars.graphql(COMMIT, json!({ "input": { "measureId": id, "costComponent": "GLOBAL", "fullYearAmount": "1250000.50",
            "decisionRef": "Arrêté", "capacity": 30, "installationDate": "2026-09-01" } })).await?;
        let q = r#"{ reconciliation(regionCode: "84") { envelopes { regionCode compartment notified committed headroom } statusCounts { status count } findings { code } } }"#;
        let report = ars.data(q).await?;
        let socle = report["reconciliation"]["envelopes"].as_array().unwrap().iter().find(|e| e["compartment"] == "SOCLE").unwrap().clone();
        assert_eq!(socle, json!({ "regionCode": "84", "compartment": "SOCLE", "notified": "70520000.00", "committed": "1250000.50", "headroom": "69269999.50" }));
        assert_eq!(report["reconciliation"]["statusCounts"], json!([{ "status": "SINGLE_FUNDER", "count": 1 }]));

        let dashboard = hub.as_role(Role::Dashboard, Some("84")).data(q).await?;
        assert_eq!(dashboard["reconciliation"]["envelopes"].as_array().unwrap().len(), 3);
        assert_eq!(dashboard["reconciliation"]["findings"], json!([]), "a dashboard gets aggregates only");
        let detail = hub.as_role(Role::Dashboard, Some("84")).graphql(STATUS, json!({})).await?;
        assert_eq!(error_codes(&detail), ["FORBIDDEN"]);
        let national = hub.as_cnsa().data("{ reconciliation { envelopes { regionCode } } }").await?;
        assert_eq!(national["reconciliation"]["envelopes"].as_array().unwrap().len(), 54);
        let other = hub.as_role(Role::Ars, Some("11")).graphql(q, json!({})).await?;
        assert_eq!(error_codes(&other), ["FORBIDDEN"], "another region's envelopes are not an ARS's to reconcile: {other}");
        assert!(other["errors"][0]["message"].as_str().unwrap_or_default().contains("« 84 »"), "{other}");
        Ok(())
    }
}
