//! MDPH needs, rectorat school plans, CNSA campaigns and the audit chain, as each institution submits and reads them.

use api::access::principal::Role;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::support::{TestHub, TestResult, error_codes};

const SUBMIT_NEEDS: &str = "mutation($input: NeedsSubmissionInput!, $key: String) {
  submitNeeds(input: $input, idempotencyKey: $key) { submissionId kind accepted contentHash campaignName onTime receivedAt } }";

const SUBMIT_PLANS: &str = "mutation($input: SchoolPlansInput!, $key: String) {
  submitSchoolPlans(input: $input, idempotencyKey: $key) { submissionId accepted campaignName onTime } }";

fn indicator(orientation: &str, age: &str, indicator: &str, value: i64) -> Value {
    json!({ "orientationCode": orientation, "ageBand": age, "indicator": indicator, "value": value })
}

fn needs(departement: &str, date: &str, indicators: Vec<Value>) -> Value {
    json!({ "departementCode": departement, "referenceDate": date, "indicators": indicators })
}

fn plan(reference: &str) -> Value {
    json!({ "reference": reference, "departementCode": "69", "kind": "PAS", "uai": "0690001B",
        "etpEducationNationale": "1", "etpMedicoSocial": "2.5", "medicoSocialCost": "180000.00", "year": 2026 })
}

async fn count(hub: &TestHub, sql: &str) -> Result<i64, sea_orm::DbErr> {
    let row =
        hub.db.query_one_raw(sea_orm::Statement::from_string(hub.db.get_database_backend(), sql.to_owned())).await?;
    row.expect("a count").try_get::<i64>("", "n")
}

fn violation_paths(answer: &Value) -> Vec<String> {
    answer["errors"][0]["extensions"]["violations"]
        .as_array()
        .map(|v| v.iter().map(|v| format!("{}:{}", v["path"].as_str().unwrap(), v["code"].as_str().unwrap())).collect())
        .unwrap_or_default()
}

db_test! {
    async fn an_mdph_submits_its_needs_and_a_new_picture_keeps_the_old_one(hub) {
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let first = mdph.graphql(SUBMIT_NEEDS, json!({ "input": needs("69", "2026-06-30", vec![
            indicator("7.1", "6-11", "EN_ATTENTE_ADMISSION", 42),
            indicator("7.1", "TOUS", "EN_ATTENTE_ADMISSION", 97),
            indicator("13.3", "20-24", "ADULTES_CRETON", 8),
        ]) })).await?;
        let receipt = &first["data"]["submitNeeds"];
        assert_eq!((&receipt["kind"], &receipt["accepted"]), (&json!("NEEDS"), &json!(3)), "{first}");
        assert_eq!(receipt["contentHash"].as_str().map(str::len), Some(64));
        assert_eq!(receipt["campaignName"], Value::Null, "no campaign open");

        let second = mdph.graphql(SUBMIT_NEEDS, json!({ "input": needs("69", "2026-06-30", vec![
            indicator("7.1", "TOUS", "EN_ATTENTE_ADMISSION", 95),
        ]) })).await?;
        assert_eq!(second["data"]["submitNeeds"]["accepted"], 1);
        let read = mdph.data("{ needs { totalCount edges { node { orientationCode ageBand indicator value referenceDate } } } }").await?;
        assert_eq!(read["needs"]["totalCount"], 1);
        assert_eq!(read["needs"]["edges"][0]["node"], json!({ "orientationCode": "7.1", "ageBand": "TOUS", "indicator": "EN_ATTENTE_ADMISSION", "value": 95, "referenceDate": "2026-06-30" }));
        assert_eq!(count(&hub, "SELECT COUNT(*) AS n FROM needs_indicator_revision").await?, 3, "the first picture is kept");

        let cnsa = hub.as_cnsa().data(r#"{ needs(filter: { regionCode: "84" }) { totalCount } }"#).await?;
        assert_eq!(cnsa["needs"]["totalCount"], 1);
        let elsewhere = hub.as_role(Role::Mdph, Some("75")).data("{ needs { totalCount } }").await?;
        assert_eq!(elsewhere["needs"]["totalCount"], 0);
        let ars = hub.as_role(Role::Ars, Some("84")).graphql("{ needs { totalCount } }", json!({})).await?;
        assert_eq!(error_codes(&ars), ["FORBIDDEN"], "counts of people are not shown in detail to the ARS");

        let audited = hub.as_cnsa().data(r#"{ auditTrail(filter: { operation: "needs" }) { totalCount edges { node { institutionCode objectIds } } } }"#).await?;
        assert_eq!(audited["auditTrail"]["totalCount"], 3, "every read of needs is recorded");
        Ok(())
    }
}

db_test! {
    async fn a_needs_batch_with_bad_rows_is_refused_whole_with_each_row_named(hub) {
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let answer = mdph.graphql(SUBMIT_NEEDS, json!({ "input": needs("69", "2026-06-30", vec![
            indicator("7.1", "6-11", "EN_ATTENTE_ADMISSION", 4),
            indicator("9.9", "6-11", "EN_ATTENTE_ADMISSION", 4),
            indicator("7.8", "six", "EN_ATTENTE_ADMISSION", -2),
            indicator("7.1", "6-11", "EN_ATTENTE_ADMISSION", 5),
        ]) })).await?;
        assert_eq!(error_codes(&answer), ["VALIDATION_FAILED"]);
        assert_eq!(violation_paths(&answer), [
            "indicators[1].orientationCode:UNKNOWN_ORIENTATION",
            "indicators[2].ageBand:AGE_BAND_MALFORMED",
            "indicators[2].value:NEGATIVE_COUNT",
            "indicators[3].indicator:DUPLICATE_ROW",
        ]);
        let foreign = mdph.graphql(SUBMIT_NEEDS, json!({ "input": needs("75", "2026-06-30", vec![indicator("7.1", "TOUS", "PAG", 3)]) })).await?;
        assert_eq!(violation_paths(&foreign), ["departementCode:OUTSIDE_TERRITORY"]);
        assert_eq!(count(&hub, "SELECT COUNT(*) AS n FROM needs_indicator").await?, 0);
        assert_eq!(count(&hub, "SELECT COUNT(*) AS n FROM submission").await?, 0);
        Ok(())
    }
}

db_test! {
    async fn a_rectorat_submits_school_plans_that_its_region_s_ars_reads(hub) {
        let rectorat = hub.as_role(Role::Rectorat, Some("lyon"));
        let answer = rectorat.graphql(SUBMIT_PLANS, json!({ "input": { "academieCode": "lyon", "plans": [plan("PAS-69-01"), plan("PAS-69-02")] } })).await?;
        assert_eq!(answer["data"]["submitSchoolPlans"]["accepted"], 2, "{answer}");
        let again = rectorat.graphql(SUBMIT_PLANS, json!({ "input": { "academieCode": "lyon", "plans": [
            { "reference": "PAS-69-01", "departementCode": "42", "kind": "UEE", "finess": null, "uai": "0420001Y",
              "etpEducationNationale": "0.5", "etpMedicoSocial": "1", "medicoSocialCost": "60000", "year": 2027 }] } })).await?;
        assert!(again.get("errors").is_none(), "{again}");
        let q = "{ schoolPlans { totalCount edges { node { reference departementCode kind version etpMedicoSocial medicoSocialCost } } } }";
        let read = rectorat.data(q).await?;
        assert_eq!(read["schoolPlans"]["totalCount"], 2);
        assert_eq!(read["schoolPlans"]["edges"][0]["node"], json!({ "reference": "PAS-69-01", "departementCode": "42", "kind": "UEE", "version": 2, "etpMedicoSocial": "1.00", "medicoSocialCost": "60000.00" }));
        assert_eq!(hub.as_role(Role::Ars, Some("84")).data(q).await?["schoolPlans"]["totalCount"], 2);
        assert_eq!(hub.as_role(Role::Ars, Some("11")).data(q).await?["schoolPlans"]["totalCount"], 0);
        assert_eq!(hub.as_role(Role::Rectorat, Some("grenoble")).data(q).await?["schoolPlans"]["totalCount"], 0);
        assert_eq!(count(&hub, "SELECT COUNT(*) AS n FROM school_plan_revision").await?, 3);
        Ok(())
    }
}

db_test! {
    async fn bad_school_plans_are_refused_with_every_violation(hub) {
        let rectorat = hub.as_role(Role::Rectorat, Some("lyon"));
        let mut bad = plan("BAD-1");
        bad["uai"] = json!("0690001A");
        bad["departementCode"] = json!("38");
        bad["etpMedicoSocial"] = json!("1,5");
        bad["medicoSocialCost"] = json!("-10");
        let mut no_site = plan("BAD-2");
        no_site["uai"] = Value::Null;
        let answer = rectorat.graphql(SUBMIT_PLANS, json!({ "input": { "academieCode": "lyon", "plans": [plan("OK-1"), bad, no_site] } })).await?;
        assert_eq!(violation_paths(&answer), [
            "plans[1].departementCode:DEPARTEMENT_OUTSIDE_ACADEMIE",
            "plans[1].uai:UAI_INVALID",
            "plans[1].etpMedicoSocial:FTE_MALFORMED",
            "plans[1].medicoSocialCost:NEGATIVE_AMOUNT",
            "plans[2].uai:SITE_REQUIRED",
        ]);
        // The message names both fields and the plan concerned.
        let site = answer["errors"][0]["extensions"]["violations"].as_array().unwrap().iter()
            .find(|v| v["code"] == "SITE_REQUIRED").cloned().unwrap_or_default();
        let message = site["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("plans[2] (« BAD-2 »)"), "{message}");
        assert!(message.contains("uai") && message.contains("finess"), "{message}");
        let other = rectorat.graphql(SUBMIT_PLANS, json!({ "input": { "academieCode": "grenoble", "plans": [plan("X")] } })).await?;
        assert!(violation_paths(&other).contains(&"academieCode:OUTSIDE_TERRITORY".to_owned()));
        assert_eq!(count(&hub, "SELECT COUNT(*) AS n FROM school_plan").await?, 0);
        Ok(())
    }
}

db_test! {
    async fn campaigns_tell_who_submitted_on_time_late_or_not_at_all(hub) {
        let cnsa = hub.as_cnsa();
        let declare = "mutation($input: CampaignInput!) { declareCampaign(input: $input) { id name } }";
        let open = cnsa.graphql(declare, json!({ "input": { "name": "Besoins 2026", "dataKind": "NEEDS", "opensOn": "2026-01-01", "deadline": "2030-12-31" } })).await?;
        let open_id = open["data"]["declareCampaign"]["id"].as_str().unwrap().to_owned();
        let past = cnsa.graphql(declare, json!({ "input": { "name": "Plans d'appui 2026", "dataKind": "SCHOOL_PLANS", "opensOn": "2026-01-01", "deadline": "2026-03-31", "closesOn": "2030-12-31" } })).await?;
        let past_id = past["data"]["declareCampaign"]["id"].as_str().unwrap().to_owned();
        let backwards = cnsa.graphql(declare, json!({ "input": { "name": "x", "dataKind": "MEASURES", "opensOn": "2026-06-01", "deadline": "2026-05-31" } })).await?;
        assert_eq!(violation_paths(&backwards), ["input.deadline:DEADLINE_BEFORE_OPENING"]);

        let receipt = hub.as_role(Role::Mdph, Some("69")).graphql(SUBMIT_NEEDS, json!({ "input": needs("69", "2026-06-30", vec![indicator("7.1", "TOUS", "PAG", 12)]) })).await?;
        assert_eq!((&receipt["data"]["submitNeeds"]["campaignName"], &receipt["data"]["submitNeeds"]["onTime"]), (&json!("Besoins 2026"), &json!(true)));
        let late = hub.as_role(Role::Rectorat, Some("lyon")).graphql(SUBMIT_PLANS, json!({ "input": { "academieCode": "lyon", "plans": [plan("P1")] } })).await?;
        assert_eq!(late["data"]["submitSchoolPlans"]["onTime"], false);

        let status = "query($id: ID!) { campaignStatus(campaignId: $id) { institutionCode standing submissions } }";
        let national = cnsa.graphql(status, json!({ "id": open_id })).await?;
        let rows = national["data"]["campaignStatus"].as_array().unwrap();
        assert_eq!(rows.len(), 101, "one MDPH per département");
        let standing = |rows: &[Value], code: &str| rows.iter().find(|r| r["institutionCode"] == code).unwrap()["standing"].clone();
        assert_eq!(standing(rows, "MDPH-69"), "ON_TIME");
        assert_eq!(standing(rows, "MDPH-38"), "MISSING");
        let regional = hub.as_role(Role::Ars, Some("84")).graphql(status, json!({ "id": open_id })).await?;
        assert_eq!(regional["data"]["campaignStatus"].as_array().unwrap().len(), 12, "an ARS sees its region's MDPH");
        let own = hub.as_role(Role::Mdph, Some("38")).graphql(status, json!({ "id": open_id })).await?;
        assert_eq!(own["data"]["campaignStatus"], json!([{ "institutionCode": "MDPH-38", "standing": "MISSING", "submissions": 0 }]));
        let rectorats = cnsa.graphql(status, json!({ "id": past_id })).await?;
        assert_eq!(standing(rectorats["data"]["campaignStatus"].as_array().unwrap(), "RECTORAT-LYON"), "LATE");
        let listed = hub.as_role(Role::Mdph, Some("69")).data("{ campaigns(dataKind: NEEDS) { name deadline } }").await?;
        assert_eq!(listed["campaigns"], json!([{ "name": "Besoins 2026", "deadline": "2030-12-31" }]));
        Ok(())
    }
}

db_test! {
    async fn the_audit_chain_detects_an_altered_or_deleted_record(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        for reference in ["A-1", "A-2", "A-3", "A-4"] {
            crate::programming::create_measure(&ars, reference).await?;
        }
        let verify = "{ verifyAuditChain { ok checked firstBrokenAt } }";
        assert_eq!(hub.as_admin().data(verify).await?["verifyAuditChain"], json!({ "ok": true, "checked": 4, "firstBrokenAt": null }));

        let trail = ars.data("{ auditTrail { totalCount edges { node { seq operation institutionCode objectIds contentHash previousHash hash } } } }").await?;
        assert_eq!(trail["auditTrail"]["totalCount"], 4);
        let first = &trail["auditTrail"]["edges"][0]["node"];
        assert_eq!((&first["operation"], &first["institutionCode"]), (&json!("upsertMeasure"), &json!("ARS-84")));
        assert_eq!(first["previousHash"], "0".repeat(64));
        assert_eq!(trail["auditTrail"]["edges"][1]["node"]["previousHash"], first["hash"]);
        assert_eq!(hub.as_role(Role::Ars, Some("11")).data("{ auditTrail { totalCount } }").await?["auditTrail"]["totalCount"], 0, "an institution sees its own records");

        hub.db.execute_unprepared(r#"UPDATE audit_record SET object_ids = '["forged"]' WHERE seq = 2"#).await?;
        assert_eq!(hub.as_cnsa().data(verify).await?["verifyAuditChain"], json!({ "ok": false, "checked": 1, "firstBrokenAt": 2 }));
        Ok(())
    }
}

db_test! {
    async fn deleting_an_audit_record_or_the_last_ones_is_detected(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        for reference in ["D-1", "D-2", "D-3"] {
            crate::programming::create_measure(&ars, reference).await?;
        }
        let verify = "{ verifyAuditChain { ok firstBrokenAt } }";
        hub.db.execute_unprepared("DELETE FROM audit_record WHERE seq = 3").await?;
        assert_eq!(hub.as_admin().data(verify).await?["verifyAuditChain"], json!({ "ok": false, "firstBrokenAt": 3 }), "a removed tail");
        hub.db.execute_unprepared("DELETE FROM audit_record WHERE seq = 1").await?;
        assert_eq!(hub.as_admin().data(verify).await?["verifyAuditChain"], json!({ "ok": false, "firstBrokenAt": 1 }));
        let ars_verify = ars.graphql(verify, json!({})).await?;
        assert_eq!(error_codes(&ars_verify), ["FORBIDDEN"]);
        Ok(())
    }
}
