//! The co-financer a programming officer would sign for: the expected collectivité named, the Métropole de Lyon told
//! from the Département du Rhône by the commune, double co-financing caught, abandoned measures awaiting nobody.

use std::time::Duration;

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::programming::{COMMIT, UPSERT};
use crate::support::{TestHub, error_codes, mint};

fn eam(reference: &str, commune: Option<&str>, designated: Option<&str>) -> Value {
    json!({ "reference": reference, "label": "EAM du Rhône", "departementCode": "69", "categoryCode": "448",
        "publics": ["ADULTES"], "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION",
        "procedure": "APPEL_A_PROJETS", "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01",
        "communeCode": commune, "expectedCofinancerCode": designated })
}

fn commitment(id: &str, component: &str, amount: &str) -> Value {
    json!({ "measureId": id, "costComponent": component, "fullYearAmount": amount,
        "decisionRef": "Délibération", "capacity": 30, "installationDate": "2026-09-01" })
}

const STATUS: &str = r#"query($f: CoFinancingFilter) { coFinancingStatus(filter: $f) { totalCount edges { node {
    status awaitedCofinancerCode measure { id communeCode expectedCofinancerCode }
    findings { code message figures { name value unit } } } } } }"#;

async fn create(hub: &TestHub, input: Value) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let answer = hub.as_role(Role::Ars, Some("84")).graphql(UPSERT, json!({ "input": input })).await?;
    Ok(answer["data"]["upsertMeasure"]["measure"]["id"].as_str().ok_or(format!("not created: {answer}"))?.to_owned())
}

async fn standing(hub: &TestHub, id: &str) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let all = hub.as_cnsa().graphql(STATUS, json!({ "f": { "regionCode": "84" } })).await?;
    let edges = all["data"]["coFinancingStatus"]["edges"].as_array().ok_or(format!("{all}"))?;
    Ok(edges.iter().find(|e| e["node"]["measure"]["id"] == id).ok_or("measure not found")?["node"].clone())
}

fn codes(node: &Value) -> Vec<&str> {
    node["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect()
}

db_test! {
    async fn the_ars_designates_the_co_financer_within_the_measure_s_territory(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        // Lyon (69123) is the Métropole's: the Département cannot be designated there.
        let refused = ars.graphql(UPSERT, json!({ "input": eam("EAM-LYON", Some("69123"), Some("CD-69")) })).await?;
        assert_eq!(error_codes(&refused), ["VALIDATION_FAILED"], "{refused}");
        let violation = &refused["errors"][0]["extensions"]["violations"][0];
        assert_eq!(violation["path"], "expectedCofinancerCode");
        assert!(violation["message"].as_str().unwrap().contains("CD-69 ne couvre pas la commune 69123"), "{violation}");
        let elsewhere = ars.graphql(UPSERT, json!({ "input": eam("EAM-X", Some("01053"), None) })).await?;
        assert_eq!(elsewhere["errors"][0]["extensions"]["violations"][0]["code"], "COMMUNE_OUTSIDE_DEPARTEMENT", "{elsewhere}");
        let unknown = ars.graphql(UPSERT, json!({ "input": eam("EAM-Y", None, Some("CD-99")) })).await?;
        assert_eq!(unknown["errors"][0]["extensions"]["violations"][0]["code"], "UNKNOWN_COLLECTIVITE", "{unknown}");

        // Designated, the Métropole is named as awaited, and finds the measure in its own view.
        let id = create(&hub, eam("EAM-LYON", Some("69123"), Some("METROPOLE-LYON"))).await?;
        ars.graphql(COMMIT, json!({ "input": commitment(&id, "SOINS", "900000") })).await?;
        let node = standing(&hub, &id).await?;
        assert_eq!((&node["status"], &node["awaitedCofinancerCode"]), (&json!("AWAITING_COFINANCER"), &json!("METROPOLE-LYON")));
        assert_eq!(node["measure"]["communeCode"], "69123");
        let message = node["findings"].as_array().unwrap().iter().find(|f| f["code"] == "AWAITING_COFINANCER").unwrap()["message"].clone();
        assert!(message.as_str().unwrap().contains("collectivité METROPOLE-LYON"), "{message}");
        let metropole = hub.with_token(mint("METROPOLE-LYON", false, Duration::from_secs(600)));
        let mine = metropole.graphql(STATUS, json!({ "f": { "awaitingCofinancerCode": "METROPOLE-LYON" } })).await?;
        assert_eq!(mine["data"]["coFinancingStatus"]["totalCount"], 1, "{mine}");
        let rhone = hub.as_role(Role::Collectivite, Some("69"));
        let not_theirs = rhone.graphql(STATUS, json!({ "f": { "awaitingCofinancerCode": "CD-69" } })).await?;
        assert_eq!(not_theirs["data"]["coFinancingStatus"]["totalCount"], 0, "{not_theirs}");

        // The Département commits in Lyon anyway: outside its territory.
        let answer = rhone.graphql(COMMIT, json!({ "input": commitment(&id, "HEBERGEMENT", "1200000") })).await?;
        assert!(answer.get("errors").is_none(), "{answer}");
        let node = standing(&hub, &id).await?;
        assert_eq!(node["status"], "UNEXPECTED_COFINANCER");
        assert_eq!(codes(&node), ["COFINANCER_OUTSIDE_TERRITORY"]);
        // Then the Métropole commits the same accommodation: two collectivités pay one cost.
        metropole.graphql(COMMIT, json!({ "input": commitment(&id, "HEBERGEMENT", "1200000") })).await?;
        let node = standing(&hub, &id).await?;
        assert_eq!(codes(&node), ["COFINANCER_OUTSIDE_TERRITORY", "DOUBLE_COFINANCING"], "{node}");
        let double = node["findings"].as_array().unwrap().iter().find(|f| f["code"] == "DOUBLE_COFINANCING").unwrap();
        assert_eq!(double["figures"], json!([
            { "name": "montant", "value": "1200000.00", "unit": "EUROS" },
            { "name": "montant", "value": "1200000.00", "unit": "EUROS" }]));
        Ok(())
    }
}

db_test! {
    async fn without_a_commune_the_rhone_asks_for_a_designation_and_an_abandoned_measure_awaits_nobody(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let id = create(&hub, eam("EAM-RHONE", None, None)).await?;
        ars.graphql(COMMIT, json!({ "input": commitment(&id, "SOINS", "900000") })).await?;
        let node = standing(&hub, &id).await?;
        assert_eq!((&node["status"], &node["awaitedCofinancerCode"]), (&json!("AWAITING_COFINANCER"), &Value::Null));
        let message = node["findings"][0]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("à désigner parmi CD-69, METROPOLE-LYON"), "{message}");
        // In Villefranche-sur-Saône only the Département can: it is named without a designation.
        let villefranche = create(&hub, eam("EAM-VILLEFRANCHE", Some("69264"), None)).await?;
        ars.graphql(COMMIT, json!({ "input": commitment(&villefranche, "SOINS", "900000") })).await?;
        assert_eq!(standing(&hub, &villefranche).await?["awaitedCofinancerCode"], "CD-69");
        // Abandoned: no co-financing awaited any more; the assurance-maladie commitment left on it is an orphan.
        let mut abandoned = eam("EAM-RHONE", None, None);
        abandoned["status"] = json!("ABANDONNEE");
        let answer = ars.graphql(UPSERT, json!({ "input": abandoned, "version": 1 })).await?;
        assert!(answer.get("errors").is_none(), "{answer}");
        let node = standing(&hub, &id).await?;
        assert_eq!((&node["status"], &node["awaitedCofinancerCode"]), (&json!("ABANDONED"), &Value::Null));
        assert_eq!(codes(&node), ["ORPHAN_COMMITMENT"]);
        Ok(())
    }
}
