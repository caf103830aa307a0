//! National steering's figures and the committee's pack on a small hand-computed scenario: two regions (84
//! Auvergne-Rhône-Alpes, 11 Île-de-France), three years (2025-2027), the CNSA's trajectory and drawing rights, an
//! ARS's forecast; the pack as of an earlier instant reproduces that instant exactly after the data moved on.

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::programming::{COMMIT, UPSERT};
use crate::support::error_codes;

fn measure(
    reference: &str,
    departement: &str,
    category: &str,
    compartment: &str,
    publics: &[&str],
    solutions: i64,
    installation: &str,
) -> Value {
    json!({ "reference": reference, "label": format!("Mesure {reference}"), "departementCode": departement,
        "categoryCode": category, "publics": publics, "solutions": solutions, "unit": "PLACES_INSTALLEES",
        "nature": "CREATION", "procedure": "APPEL_A_PROJETS", "compartment": compartment, "plannedInstallation": installation })
}

fn commitment(
    measure: &str,
    component: &str,
    amount: &str,
    capacity: i64,
    installation: &str,
    schedule: &[(i32, &str)],
) -> Value {
    json!({ "measureId": measure, "costComponent": component, "fullYearAmount": amount, "decisionRef": "Arrêté",
        "capacity": capacity, "installationDate": installation,
        "schedule": schedule.iter().map(|(y, a)| json!({ "year": y, "amount": a })).collect::<Vec<_>>() })
}

const TRAJECTORY: &str = "mutation ($points: [TrajectoryPointInput!]!, $key: String) { submitTrajectory(points: $points, idempotencyKey: $key) { accepted replayed } }";
const RIGHTS: &str = "mutation ($rights: [DrawingRightInput!]!) { setDrawingRights(rights: $rights) { accepted } }";
const FORECAST: &str =
    "mutation ($input: InstallationForecastInput!) { submitInstallationForecast(input: $input) { accepted } }";
const PACK: &str = "query ($asOf: DateTime) { steeringReport(asOf: $asOf) { asOf regions
    envelopes { regionCode compartment notified programmed committed installed cpCalled }
    solutions { regionCode categoryCode publics measures solutions installedSolutions }
    credits { regionCode compartment year aeProgrammed cpCalled trajectoryAe trajectoryCp }
    drawing { regionCode year cpCalled drawingRights forecastCp forecastSolutions }
    statuses { regionCode status count }
    findings { regionCode code subject message }
    openEscalations { regionCode open } } }";

fn point(region: &str, compartment: &str, year: i32, ae: &str, cp: &str) -> Value {
    json!({ "regionCode": region, "compartment": compartment, "year": year, "ae": ae, "cp": cp })
}

fn rows<'a>(pack: &'a Value, part: &str, region: &str) -> Vec<&'a Value> {
    pack[part].as_array().map(|a| a.iter().filter(|r| r["regionCode"] == region).collect()).unwrap_or_default()
}

fn codes(pack: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = pack["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| (f["code"].as_str().unwrap_or("").to_owned(), f["subject"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

db_test! {
    async fn the_committee_pack_adds_up_compares_with_the_trajectory_and_reproduces_an_earlier_date(hub) {
        let ars84 = hub.as_role(Role::Ars, Some("84"));
        let ars11 = hub.as_role(Role::Ars, Some("11"));
        let cnsa = hub.as_cnsa();
        // Region 84: an IME (socle) installed in September 2025, 100 000 € a year; a PCO (précoce) in March 2026,
        // 50 000 €. Region 11: a MAS (socle) in January 2026, 200 000 €.
        let mut ids = Vec::new();
        for (caller, input) in [
            (&ars84, measure("PACK-84-IME", "69", "183", "SOCLE_ENFANTS", &["ENFANTS"], 10, "2025-09-01")),
            (&ars84, measure("PACK-84-PCO", "69", "PCO", "PRECOCE", &["ENFANTS", "TND"], 5, "2026-03-01")),
            (&ars11, measure("PACK-11-MAS", "75", "255", "SOCLE_ADULTES", &["ADULTES"], 20, "2026-01-15")),
        ] {
            let answer = caller.graphql(UPSERT, json!({ "input": input })).await?;
            ids.push(answer["data"]["upsertMeasure"]["measure"]["id"].as_str().ok_or(format!("{answer}"))?.to_owned());
        }
        for (caller, input) in [
            (&ars84, commitment(&ids[0], "GLOBAL", "100000", 10, "2025-09-01", &[(2025, "40000"), (2026, "100000"), (2027, "100000")])),
            (&ars84, commitment(&ids[1], "MEDICO_SOCIAL", "50000", 5, "2026-03-01", &[(2026, "50000"), (2027, "50000")])),
            (&ars11, commitment(&ids[2], "GLOBAL", "200000", 20, "2026-01-15", &[(2026, "200000"), (2027, "200000")])),
        ] {
            let answer = caller.graphql(COMMIT, json!({ "input": input })).await?;
            assert!(answer.get("errors").is_none(), "{answer}");
        }
        // The CNSA's trajectory: region 84's socle and region 11 as programmed; region 84's précoce expects twice
        // the AE in 2026 and 100 000 € of CP a year.
        let points = json!([
            point("84", "SOCLE", 2025, "100000", "40000"), point("84", "SOCLE", 2026, "0", "100000"), point("84", "SOCLE", 2027, "0", "100000"),
            point("84", "PRECOCE", 2026, "100000", "100000"), point("84", "PRECOCE", 2027, "0", "100000"),
            point("11", "SOCLE", 2026, "200000", "200000"), point("11", "SOCLE", 2027, "0", "200000"),
        ]);
        let sent = cnsa.graphql(TRAJECTORY, json!({ "points": points, "key": "trajectoire-1" })).await?;
        assert_eq!(sent["data"]["submitTrajectory"], json!({ "accepted": 7, "replayed": false }), "{sent}");
        let again = cnsa.graphql(TRAJECTORY, json!({ "points": points, "key": "trajectoire-1" })).await?;
        assert_eq!(again["data"]["submitTrajectory"]["replayed"], true, "an idempotent replay stores nothing twice");
        let rights = json!([{ "regionCode": "84", "year": 2026, "cp": "140000" }, { "regionCode": "11", "year": 2026, "cp": "200000" }]);
        assert!(cnsa.graphql(RIGHTS, json!({ "rights": rights })).await?.get("errors").is_none());
        let forecast = json!({ "regionCode": "84", "lines": [{ "compartment": "SOCLE", "year": 2027, "solutions": 12, "cp": "100000" }] });
        let forecasted = ars84.graphql(FORECAST, json!({ "input": forecast })).await?;
        assert!(forecasted.get("errors").is_none(), "{forecasted}");

        // Who may write what, and bad input refused whole, with nothing stored.
        let forbidden = ars84.graphql(TRAJECTORY, json!({ "points": [point("84", "SOCLE", 2026, "1", "1")] })).await?;
        assert_eq!(error_codes(&forbidden), ["FORBIDDEN"], "{forbidden}");
        let elsewhere = ars11.graphql(FORECAST, json!({ "input": forecast })).await?;
        assert_eq!(error_codes(&elsewhere), ["VALIDATION_FAILED"], "{elsewhere}");
        let bad = cnsa.graphql(TRAJECTORY, json!({ "points": [point("99", "SOCLE", 2026, "1", "1"), point("84", "SOCLE", 2031, "-1", "1"),
            point("84", "ECOLE", 2026, "1", "1"), point("84", "ECOLE", 2026, "2", "2")] })).await?;
        assert_eq!(error_codes(&bad), ["VALIDATION_FAILED"], "{bad}");
        let text = bad.to_string();
        for expected in ["points[0].regionCode", "UNKNOWN_REGION", "points[1].year", "YEAR_OUT_OF_RANGE", "NEGATIVE_AMOUNT", "points[3].year", "DUPLICATE_ROW"] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        let figures = cnsa.data(r#"{ steeringFigures(filter: { kind: TRAJECTORY, regionCode: "84" }) { compartment year ae cp } }"#).await?;
        assert_eq!(figures["steeringFigures"].as_array().map(Vec::len), Some(5), "nothing of the refused batch: {figures}");
        // An ARS reads its region's figures only (the territory is in the query).
        let own = ars11.data("{ steeringFigures { regionCode } }").await?;
        assert!(own["steeringFigures"].as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|f| f["regionCode"] == "11")), "{own}");

        // The pack now, by hand.
        let pack = cnsa.data(PACK).await?["steeringReport"].clone();
        let notified = cnsa.data("{ envelopes { regionCode compartment notified } }").await?;
        let notified_of = |region: &str, compartment: &str| -> String {
            notified["envelopes"].as_array().and_then(|a| a.iter().find(|e| e["regionCode"] == region && e["compartment"] == compartment))
                .map(|e| e["notified"].as_str().unwrap_or("").to_owned()).unwrap_or_default()
        };
        let socle_84 = rows(&pack, "envelopes", "84").into_iter().find(|e| e["compartment"] == "SOCLE").cloned().ok_or("84 socle")?;
        assert_eq!(socle_84, json!({ "regionCode": "84", "compartment": "SOCLE", "notified": notified_of("84", "SOCLE"),
            "programmed": "100000.00", "committed": "0.00", "installed": "0.00", "cpCalled": "140000.00" }));
        let precoce_84 = rows(&pack, "envelopes", "84").into_iter().find(|e| e["compartment"] == "PRECOCE").cloned().ok_or("84 précoce")?;
        assert_eq!((&precoce_84["programmed"], &precoce_84["cpCalled"]), (&json!("50000.00"), &json!("50000.00")));
        // The country's rows are the sum of the regions', and its notified AE the annex's.
        let cents = |v: &Value| -> i64 { v.as_str().map(|s| (s.parse::<f64>().unwrap_or(0.0) * 100.0).round() as i64).unwrap_or(0) };
        for compartment in ["SOCLE", "PRECOCE", "ECOLE"] {
            let regional: Vec<&Value> = pack["envelopes"].as_array().ok_or("envelopes")?.iter()
                .filter(|e| e["compartment"] == compartment && e["regionCode"] != "FR").collect();
            assert_eq!(regional.len(), 18, "every region, {compartment}");
            let national = pack["envelopes"].as_array().ok_or("envelopes")?.iter()
                .find(|e| e["compartment"] == compartment && e["regionCode"] == "FR").ok_or("FR")?;
            for field in ["notified", "programmed", "committed", "installed", "cpCalled"] {
                assert_eq!(cents(&national[field]), regional.iter().map(|e| cents(&e[field])).sum::<i64>(), "{compartment} {field}");
            }
            let annex: i64 = notified["envelopes"].as_array().ok_or("annex")?.iter().filter(|e| e["compartment"] == compartment).map(|e| cents(&e["notified"])).sum();
            assert_eq!(cents(&national["notified"]), annex, "{compartment}: the annex");
        }
        assert_eq!(rows(&pack, "solutions", "84"), vec![
            &json!({ "regionCode": "84", "categoryCode": "183", "publics": "ENFANTS", "measures": 1, "solutions": 10, "installedSolutions": 0 }),
            &json!({ "regionCode": "84", "categoryCode": "PCO", "publics": "ENFANTS+TND", "measures": 1, "solutions": 5, "installedSolutions": 0 }),
        ]);
        assert_eq!(rows(&pack, "statuses", "11"), vec![&json!({ "regionCode": "11", "status": "SINGLE_FUNDER", "count": 1 })]);
        let precoce_2026 = rows(&pack, "credits", "84").into_iter().find(|c| c["compartment"] == "PRECOCE" && c["year"] == 2026).cloned().ok_or("credits")?;
        assert_eq!(precoce_2026, json!({ "regionCode": "84", "compartment": "PRECOCE", "year": 2026, "aeProgrammed": "50000.00",
            "cpCalled": "50000.00", "trajectoryAe": "100000.00", "trajectoryCp": "100000.00" }));
        assert_eq!(rows(&pack, "drawing", "84").into_iter().find(|d| d["year"] == 2026).cloned(), Some(json!({ "regionCode": "84", "year": 2026,
            "cpCalled": "150000.00", "drawingRights": "140000.00", "forecastCp": null, "forecastSolutions": null })));
        // Région 84's précoce: 50 000 € of AE by the end of 2026 for 100 000 € projected (-50 %); its CP 50 000 €
        // for 100 000 €, then 100 000 € for 200 000 €; its CP in 2026, 150 000 € for 140 000 € of drawing rights.
        let expected_now = vec![
            ("CP_EXCEEDS_DRAWING_RIGHTS".to_owned(), "84/2026".to_owned()),
            ("TRAJECTORY_AE_BEHIND".to_owned(), "84/PRECOCE/2026".to_owned()),
            ("TRAJECTORY_AE_BEHIND".to_owned(), "84/PRECOCE/2027".to_owned()),
            ("TRAJECTORY_CP_BEHIND".to_owned(), "84/PRECOCE/2026".to_owned()),
            ("TRAJECTORY_CP_BEHIND".to_owned(), "84/PRECOCE/2027".to_owned()),
        ];
        assert_eq!(codes(&pack), expected_now, "{}", pack["findings"]);
        let behind = pack["findings"].as_array().ok_or("findings")?.iter().find(|f| f["subject"] == "84/PRECOCE/2026" && f["code"] == "TRAJECTORY_AE_BEHIND").ok_or("behind")?;
        assert!(behind["message"].as_str().is_some_and(|m| m.contains("50,0 % de retard") && m.contains("tolérance 10,0 %")), "{behind}");
        assert_eq!(rows(&pack, "openEscalations", "84"), vec![&json!({ "regionCode": "84", "open": 0 })]);
        // The same findings in the live reconciliation.
        let live = ars84.data("{ reconciliation { findings { code subject } } }").await?;
        assert!(live.to_string().contains("84/PRECOCE/2026") && live.to_string().contains("CP_EXCEEDS_DRAWING_RIGHTS"), "{live}");

        // Time passes: the ARS raises the IME to 120 000 € a year, the CNSA raises 11's drawing rights, an escalation opens.
        let before = pack.clone();
        let as_of = before["asOf"].clone();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let raised = ars84.graphql(COMMIT, json!({ "input": commitment(&ids[0], "GLOBAL", "120000", 10, "2025-09-01",
            &[(2025, "40000"), (2026, "120000"), (2027, "120000")]), "version": 1 })).await?;
        assert!(raised.get("errors").is_none(), "{raised}");
        let rights = json!([{ "regionCode": "11", "year": 2026, "cp": "150000" }]);
        assert!(cnsa.graphql(RIGHTS, json!({ "rights": rights })).await?.get("errors").is_none());
        let escalated = ars84.graphql("mutation ($m: ID!) { escalate(input: { measureId: $m, reason: \"Retard du cofinancement\" }) { id } }", json!({ "m": ids[1] })).await?;
        assert!(escalated.get("errors").is_none(), "{escalated}");

        let now = cnsa.data(PACK).await?["steeringReport"].clone();
        let socle_84 = rows(&now, "envelopes", "84").into_iter().find(|e| e["compartment"] == "SOCLE").cloned().ok_or("84 socle")?;
        assert_eq!((&socle_84["programmed"], &socle_84["cpCalled"]), (&json!("120000.00"), &json!("160000.00")));
        // 84's socle is now ahead: 120 000 € for 100 000 € (+20 %) at the end of each year; its CP 160 000 € for
        // 140 000 € at the end of 2026 (+14,2 %) and 280 000 € for 240 000 € in 2027 (+16,6 %). 11's CP in 2026,
        // 200 000 €, exceed its new rights.
        let mut expected = expected_now.clone();
        expected.extend([
            ("CP_EXCEEDS_DRAWING_RIGHTS".to_owned(), "11/2026".to_owned()),
            ("TRAJECTORY_AE_AHEAD".to_owned(), "84/SOCLE/2025".to_owned()),
            ("TRAJECTORY_AE_AHEAD".to_owned(), "84/SOCLE/2026".to_owned()),
            ("TRAJECTORY_AE_AHEAD".to_owned(), "84/SOCLE/2027".to_owned()),
            ("TRAJECTORY_CP_AHEAD".to_owned(), "84/SOCLE/2026".to_owned()),
            ("TRAJECTORY_CP_AHEAD".to_owned(), "84/SOCLE/2027".to_owned()),
        ]);
        expected.sort();
        assert_eq!(codes(&now), expected, "{}", now["findings"]);
        assert_eq!(rows(&now, "openEscalations", "84"), vec![&json!({ "regionCode": "84", "open": 1 })]);

        // The pack as of the first instant is the first pack, figure for figure.
        let again = cnsa.graphql(PACK, json!({ "asOf": as_of })).await?;
        assert!(again.get("errors").is_none(), "{again}");
        assert_eq!(again["data"]["steeringReport"], before, "an as-of pack reproduces the earlier state exactly");

        // An ARS's pack is its region's; a future instant is refused; a collectivité has no pack.
        let own = ars84.data("{ steeringReport { regions envelopes { regionCode } } }").await?;
        assert_eq!(own["steeringReport"]["regions"], json!(["84"]));
        assert!(own["steeringReport"]["envelopes"].as_array().is_some_and(|a| a.iter().all(|e| e["regionCode"] == "84")), "{own}");
        let future = cnsa.graphql(PACK, json!({ "asOf": "2099-01-01T00:00:00Z" })).await?;
        assert_eq!(error_codes(&future), ["BAD_USER_INPUT"], "{future}");
        let refused = hub.as_role(Role::Collectivite, Some("69")).graphql(PACK, json!({})).await?;
        assert_eq!(error_codes(&refused), ["FORBIDDEN"], "{refused}");

        // The workbook: the same pack, as of the same instant, for the CNSA.
        let url = format!("/exports/steering-report.xlsx?asOf={}", as_of.as_str().unwrap_or("").replace('+', "%2B"));
        let workbook = cnsa.get(&url).await?;
        assert_eq!(workbook.status(), reqwest::StatusCode::OK);
        let bytes = workbook.bytes().await?;
        assert!(bytes.starts_with(b"PK"), "an XLSX (zip) workbook");
        let csv = cnsa.get("/exports/steering-report.csv").await?;
        assert_eq!(csv.status(), reqwest::StatusCode::NOT_FOUND);
        let bad_date = cnsa.get("/exports/steering-report.xlsx?asOf=hier").await?;
        assert_eq!(bad_date.status(), reqwest::StatusCode::BAD_REQUEST);
        let trajectory_sheet = cnsa.get("/exports/steering-figures.csv?regionCode=84").await?.text().await?;
        assert!(trajectory_sheet.contains("TRAJECTORY;84;PRECOCE;2026;100000,00;100000,00"), "{trajectory_sheet}");

        // The trajectory as a spreadsheet, through the same write: a line refused refuses the sheet, by its line.
        let sheet = "Région;Enveloppe;Année;AE;CP\n84;précoce;2026;50 000,00;50 000,00\n84;école;2026;1 000;500\n";
        let imported = crate::files::upload(&cnsa, &hub, "TRAJECTORY", "trajectoire.csv", sheet.as_bytes().to_vec(), None).await?;
        assert_eq!(imported["data"]["importFile"]["created"], 2, "{imported}");
        let bad_sheet = "Région;Enveloppe;Année;AE;CP\n84;précoce;2026;50 000,00;50 000,00\n84;école;2040;1 000;500\n";
        let refused = crate::files::upload(&cnsa, &hub, "TRAJECTORY", "trajectoire.csv", bad_sheet.as_bytes().to_vec(), None).await?;
        assert!(refused.to_string().contains("YEAR_OUT_OF_RANGE"), "{refused}");
        let precoce = cnsa.data(r#"{ steeringFigures(filter: { kind: TRAJECTORY, regionCode: "84", year: 2026 }) { compartment ae } }"#).await?;
        assert!(precoce.to_string().contains(r#"{"ae":"50000.00","compartment":"PRECOCE"}"#), "the sheet's figure is in force: {precoce}");
        // An ARS may not send the CNSA's trajectory as a sheet either.
        let by_ars = crate::files::upload(&ars84, &hub, "TRAJECTORY", "trajectoire.csv", sheet.as_bytes().to_vec(), None).await?;
        assert_eq!(error_codes(&by_ars), ["FORBIDDEN"], "{by_ars}");
        Ok(())
    }
}
