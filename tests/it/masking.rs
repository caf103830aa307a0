//! Masking of small counts of people, over HTTP: nothing an ARS or a dashboard reads (coverage rows and totals,
//! findings, counts of findings, statuses) depends on a count it is shown as "<11".

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::programming::UPSERT;
use crate::support::Caller;

const SUBMIT_NEEDS: &str = "mutation($input: NeedsSubmissionInput!) { submitNeeds(input: $input) { accepted } }";

/// Every field of the reconciliation report.
const REPORT: &str = "envelopes { regionCode compartment notified committed headroom }
    findings { code severity subjectKind subject regionCode departementCodes figures { name value unit } message }
    findingCounts { code severity count }
    statusCounts { status count }
    needsCoverage { threshold masked
        rows { regionCode departementCode orientationCodes categoryCode peopleWaiting cretonAdults programmedSolutions
            coverageRatio }
        departementTotals { departementCode peopleWaiting cretonAdults programmedSolutions coverageRatio } }
    schoolMatching { regionCode academieCode year plannedCost committed balance }";

fn reads() -> Vec<String> {
    [r#"reconciliation"#, r#"reconciliation(regionCode: "84")"#, r#"reconciliation(departementCode: "69")"#]
        .iter()
        .map(|field| format!("{{ {field} {{ {REPORT} }} }}"))
        .collect()
}

const STATUSES: &str = "{ coFinancingStatus { totalCount edges { node { status
    findings { code severity subject figures { name value unit } message } measure { id reference solutions } } } } }";

/// The answers as bytes, none of them an error.
async fn answers(
    caller: &Caller<'_>,
    queries: &[String],
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = Vec::new();
    for query in queries {
        let text = caller.request(query, json!({})).send().await?.text().await?;
        let parsed: Value = serde_json::from_str(&text)?;
        assert!(parsed.get("errors").is_none(), "{query}: {text}");
        out.push(text);
    }
    Ok(out)
}

fn mas(solutions: i64) -> Value {
    json!({ "reference": "MAS-RHONE", "label": "MAS Villeurbanne", "departementCode": "69", "categoryCode": "255",
        "publics": ["ADULTES"], "solutions": solutions, "unit": "PLACES_INSTALLEES", "nature": "CREATION",
        "procedure": "APPEL_A_PROJETS", "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01" })
}

fn needs_finding(answer: &str, subject: &str) -> Option<Value> {
    let parsed: Value = serde_json::from_str(answer).ok()?;
    parsed["data"]["reconciliation"]["findings"]
        .as_array()?
        .iter()
        .find(|f| f["subject"] == subject && f["code"].as_str().is_some_and(|c| c.starts_with("NEEDS_")))
        .cloned()
}

db_test! {
    async fn nothing_an_ars_or_a_dashboard_reads_depends_on_a_masked_count(hub) {
        let indicator = |o: &str, kind: &str, value: i64| json!({ "orientationCode": o, "ageBand": "TOUS", "indicator": kind, "value": value });
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let ars = hub.as_role(Role::Ars, Some("84"));
        let dashboard = hub.as_role(Role::Dashboard, Some("84"));
        let cnsa = hub.as_cnsa();
        let mut ars_reads = reads();
        ars_reads.push(STATUSES.to_owned());
        let cnsa_reads = vec![format!(r#"{{ reconciliation(departementCode: "69") {{ {REPORT} }} }}"#)];
        let mut version: Option<i64> = None;
        for programmed in [0, 2, 3, 5, 7, 8, 10, 12] {
            if programmed > 0 {
                let answer = ars.graphql(UPSERT, json!({ "input": mas(programmed), "version": version })).await?;
                version = Some(answer["data"]["upsertMeasure"]["measure"]["version"].as_i64().ok_or(format!("{answer}"))?);
            }
            let mut seen = Vec::new();
            // The MDPH of the Rhône counts 3, then 7, people waiting for a MAS (13.3); the rest of its picture
            // stands: 40 for an IME, 43 waiting and 7 Creton adults for an EAM.
            for waiting in [3, 7] {
                let answer = mdph.graphql(SUBMIT_NEEDS, json!({ "input": { "departementCode": "69", "referenceDate": "2026-06-30", "indicators": [
                    indicator("7.1", "EN_ATTENTE_ADMISSION", 40),
                    indicator("13.2", "EN_ATTENTE_ADMISSION", 43),
                    indicator("13.2", "ADULTES_CRETON", 7),
                    indicator("13.3", "EN_ATTENTE_ADMISSION", waiting),
                ] } })).await?;
                assert_eq!(answer["data"]["submitNeeds"]["accepted"], 4, "{answer}");
                seen.push((
                    answers(&ars, &ars_reads).await?,
                    answers(&dashboard, &reads()).await?,
                    answers(&cnsa, &cnsa_reads).await?,
                ));
            }
            let ((ars_3, dashboard_3, cnsa_3), (ars_7, dashboard_7, cnsa_7)) = (&seen[0], &seen[1]);
            assert_eq!(ars_3, ars_7, "an ARS tells 3 from 7 people with {programmed} MAS places programmed");
            assert_eq!(dashboard_3, dashboard_7, "a dashboard tells 3 from 7 people with {programmed} MAS places programmed");
            assert_ne!(cnsa_3, cnsa_7, "the CNSA sees the exact count");

            // What the ARS is told of the MAS row follows what it sees: 1 to 10 people.
            let mas_finding = needs_finding(&ars_3[2], "69/13.3");
            let expected = match programmed {
                0 => Some("NEEDS_UNCOVERED"),
                1..=9 => Some("NEEDS_COVERAGE_UNDETERMINED"),
                _ => None,
            };
            assert_eq!(mas_finding.as_ref().map(|f| f["code"].as_str().unwrap_or_default()), expected, "{programmed}: {mas_finding:?}");
            if let Some(finding) = mas_finding {
                assert!(finding["figures"].as_array().unwrap().contains(&json!({ "name": "personnesSansSolution", "value": "<11", "unit": "PEOPLE" })), "{finding}");
                assert!(finding["message"].as_str().unwrap().contains("pour <11 personnes sans solution (<11 en attente, 0 jeunes adultes Creton)"), "{finding}");
            }
            // The CNSA's finding is the engine's: 7 places cover 7 people, not 3 + 5.
            let exact = needs_finding(&cnsa_7[0], "69/13.3");
            assert_eq!(exact.is_some(), programmed < 7, "{programmed}: {exact:?}");
        }
        // The département's totals: 40 + 43 + a small count is "secret", the 7 Creton adults alone "<11".
        let last: Value = serde_json::from_str(&answers(&dashboard, &reads()).await?[2])?;
        assert_eq!(last["data"]["reconciliation"]["needsCoverage"]["departementTotals"], json!([
            { "departementCode": "69", "peopleWaiting": "secret", "cretonAdults": "<11", "programmedSolutions": 12, "coverageRatio": null }]));
        // The coverage ratio follows the counts shown: the IME row's (no place for 40), not the MAS row's (12 places
        // for <11) nor the EAM row's (no place for 43 + <11); the CNSA gets them all (12 / 7 = 171,428… %).
        let ratios = |answer: &Value| -> Vec<(String, Value)> {
            answer["data"]["reconciliation"]["needsCoverage"]["rows"].as_array().unwrap().iter()
                .map(|r| (r["orientationCodes"][0].as_str().unwrap_or_default().to_owned(), r["coverageRatio"].clone()))
                .collect()
        };
        let row_ratios = |pairs: &[(&str, Value)]| pairs.iter().map(|(o, v)| (o.to_string(), v.clone())).collect::<Vec<_>>();
        assert_eq!(ratios(&last), row_ratios(&[("7.1", json!("0.00")), ("13.3", Value::Null), ("13.2", Value::Null)]));
        let exact: Value = serde_json::from_str(&answers(&cnsa, &cnsa_reads).await?[0])?;
        assert_eq!(ratios(&exact), row_ratios(&[("7.1", json!("0.00")), ("13.3", json!("171.43")), ("13.2", json!("0.00"))]));
        // 12 places for the département's 90 waiting and 7 Creton adults: 12,371… %.
        assert_eq!(exact["data"]["reconciliation"]["needsCoverage"]["departementTotals"][0]["coverageRatio"], "12.37");
        assert_eq!(last["data"]["reconciliation"]["findings"], json!([]), "a dashboard gets counts, not findings");
        Ok(())
    }
}
