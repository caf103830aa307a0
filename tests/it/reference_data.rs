//! The plan's reference data, as any client reads it.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::support::{TestResult, error_codes};

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item[key] == value))
        .unwrap_or_else(|| panic!("no item with {key} = {value} in {list}"))
}

fn cents(amount: &Value) -> i64 {
    api::money::Euros::parse(amount.as_str().expect("amounts are strings")).expect("an exact decimal").cents()
}

db_test! {
    async fn the_eighteen_regions_come_with_their_departements_and_annex_envelopes(hub) {
        let data = hub.data("{ regions { code name isOverseas departements { code } envelopes { compartment notified } } }").await?;
        let regions = &data["regions"];
        assert_eq!(regions.as_array().map(Vec::len), Some(18));
        let departements: usize = regions.as_array().unwrap().iter().map(|r| r["departements"].as_array().unwrap().len()).sum();
        assert_eq!(departements, 101);
        let ara = find(regions, "code", "84");
        assert_eq!(ara["name"], "Auvergne-Rhône-Alpes");
        assert_eq!(ara["departements"].as_array().unwrap().len(), 12);
        assert_eq!(
            ara["envelopes"],
            json!([
                { "compartment": "SOCLE", "notified": "70520000.00" },
                { "compartment": "PRECOCE", "notified": "13110000.00" },
                { "compartment": "ECOLE", "notified": "50450000.00" },
            ])
        );
        let overseas: Vec<&str> = regions.as_array().unwrap().iter().filter(|r| r["isOverseas"] == true).map(|r| r["code"].as_str().unwrap()).collect();
        assert_eq!(overseas, ["01", "02", "03", "04", "06"]);
        let national: i64 = regions.as_array().unwrap().iter().flat_map(|r| r["envelopes"].as_array().unwrap()).map(|e| cents(&e["notified"])).sum();
        assert_eq!(national, 149_497_000_000, "the annex's regional rows sum to 1 494.97 M€");
        Ok(())
    }
}

db_test! {
    async fn a_region_lists_its_academies_and_cofinancers(hub) {
        let data = hub.data(r#"{ region(code: "84") { academies { code } collectivites { code } } }"#).await?;
        let academies: Vec<&str> = data["region"]["academies"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect();
        assert_eq!(academies, ["clermont-ferrand", "grenoble", "lyon"]);
        let collectivites = data["region"]["collectivites"].as_array().unwrap();
        assert_eq!(collectivites.len(), 13, "12 départements, and the Métropole de Lyon beside the Rhône");
        Ok(())
    }
}

db_test! {
    async fn the_rhone_has_two_cofinancers_and_corsica_one_for_two_departements(hub) {
        let data = hub.data(r#"{
            rhone: departement(code: "69") { name region { code } academie { code name } cofinancers { code kind } }
            corse: departement(code: "2A") { cofinancers { code kind departements { code } } }
            alsace: departement(code: "68") { cofinancers { code } }
        }"#).await?;
        assert_eq!(data["rhone"]["name"], "Rhône");
        assert_eq!(data["rhone"]["region"]["code"], "84");
        assert_eq!(data["rhone"]["academie"], json!({ "code": "lyon", "name": "Lyon" }));
        assert_eq!(
            data["rhone"]["cofinancers"],
            json!([{ "code": "CD-69", "kind": "DEPARTEMENT" }, { "code": "METROPOLE-LYON", "kind": "METROPOLE" }])
        );
        assert_eq!(
            data["corse"]["cofinancers"],
            json!([{ "code": "CORSE", "kind": "COLLECTIVITE_STATUT_PARTICULIER", "departements": [{ "code": "2A" }, { "code": "2B" }] }])
        );
        assert_eq!(data["alsace"]["cofinancers"], json!([{ "code": "ALSACE" }]));
        Ok(())
    }
}

db_test! {
    async fn thirty_academies_each_within_one_region(hub) {
        let data = hub.data("{ academies { code region { code } departements { code region { code } } } }").await?;
        let academies = data["academies"].as_array().unwrap();
        assert_eq!(academies.len(), 30);
        for academie in academies {
            for departement in academie["departements"].as_array().unwrap() {
                assert_eq!(departement["region"]["code"], academie["region"]["code"], "{academie}");
            }
        }
        let covered: usize = academies.iter().map(|a| a["departements"].as_array().unwrap().len()).sum();
        assert_eq!(covered, 101, "each département is in exactly one académie");
        Ok(())
    }
}

db_test! {
    async fn unknown_and_malformed_codes_get_specific_errors(hub) {
        let unknown = hub.graphql(r#"{ region(code: "99") { name } }"#, json!({})).await?;
        assert_eq!(error_codes(&unknown), ["NOT_FOUND"]);
        assert!(unknown["errors"][0]["message"].as_str().unwrap().contains("99"));
        assert_eq!(unknown["data"]["region"], Value::Null);

        let malformed = hub.graphql(r#"{ region(code: "Rhône") { name } }"#, json!({})).await?;
        assert_eq!(error_codes(&malformed), ["BAD_USER_INPUT"]);

        let departement = hub.graphql(r#"{ departement(code: "20") { name } }"#, json!({})).await?;
        assert_eq!(error_codes(&departement), ["NOT_FOUND"], "20 is not a département since 1976");

        let envelopes = hub.graphql(r#"{ envelopes(regionCode: "99") { notified } }"#, json!({})).await?;
        assert_eq!(error_codes(&envelopes), ["NOT_FOUND"]);

        let rules = hub.graphql(r#"{ financingRules(categoryCode: "999") { payer } }"#, json!({})).await?;
        assert_eq!(error_codes(&rules), ["NOT_FOUND"]);
        Ok(())
    }
}

db_test! {
    async fn envelopes_are_listed_per_region_and_compartment(hub) {
        let data = hub.data(r#"{ all: envelopes { regionCode } mayotte: envelopes(regionCode: "06") { compartment notified source region { name } } }"#).await?;
        assert_eq!(data["all"].as_array().unwrap().len(), 54);
        assert_eq!(data["mayotte"][2]["compartment"], "ECOLE");
        assert_eq!(data["mayotte"][2]["notified"], "9950000.00");
        assert_eq!(data["mayotte"][0]["region"]["name"], "Mayotte");
        assert!(data["mayotte"][0]["source"].as_str().unwrap().contains("2023/176"));
        Ok(())
    }
}

db_test! {
    async fn annex_integrity_reports_the_real_rounding_gaps(hub) {
        let data = hub.data("{ annexIntegrity { scope compartment computedTotal printedTotal gap consistent message } }").await?;
        let checks = data["annexIntegrity"].as_array().unwrap();
        assert_eq!(checks.len(), 4 + 4 + 18, "national and DOM per column, and each region's row");
        let check = |scope: &str, column: &str| {
            checks.iter().find(|c| c["scope"] == scope && c["compartment"] == column).unwrap_or_else(|| panic!("{scope} {column}"))
        };
        let socle = check("FR", "SOCLE");
        assert_eq!((&socle["computedTotal"], &socle["printedTotal"], &socle["gap"]), (&json!("984970000.00"), &json!("985000000.00"), &json!("-30000.00")));
        assert!(socle["message"].as_str().unwrap().contains("984,97 M€"));
        let total = check("FR", "TOTAL");
        assert_eq!((&total["computedTotal"], &total["printedTotal"], &total["consistent"]), (&json!("1494970000.00"), &json!("1495000000.00"), &json!(false)));
        for column in ["PRECOCE", "ECOLE"] {
            assert_eq!(check("FR", column)["consistent"], true, "{column}");
        }
        for column in ["SOCLE", "PRECOCE", "ECOLE", "TOTAL"] {
            assert_eq!(check("DOM", column)["consistent"], true, "DOM {column}");
        }
        assert_eq!(checks.iter().filter(|c| c["consistent"] == false).count(), 2, "only the socle and total columns are off");

        let weights = hub.data("{ annexWeightIntegrity { scope computedWeight printedWeight consistent } }").await?;
        assert_eq!(weights["annexWeightIntegrity"], json!([{ "scope": "DOM", "computedWeight": "23.19", "printedWeight": "22.90", "consistent": false }]));
        Ok(())
    }
}

db_test! {
    async fn annex_integrity_is_computed_from_the_stored_rows(hub) {
        hub.db.execute_unprepared("UPDATE envelope_allocation SET notified_cents = notified_cents + 1 WHERE region_code = '84' AND compartment = 'PRECOCE'").await?;
        let data = hub.data("{ annexIntegrity { scope compartment gap } }").await?;
        let gap = |scope: &str, column: &str| {
            data["annexIntegrity"].as_array().unwrap().iter().find(|c| c["scope"] == scope && c["compartment"] == column).unwrap()["gap"].clone()
        };
        assert_eq!(gap("FR", "PRECOCE"), "0.01");
        assert_eq!(gap("FR", "TOTAL"), "-29999.99");
        assert_eq!(gap("84", "TOTAL"), "0.01");
        assert_eq!(gap("DOM", "PRECOCE"), "0.00");
        Ok(())
    }
}

db_test! {
    async fn financing_rules_say_who_pays_what(hub) {
        let data = hub.data(r#"{
            camsp: financingRules(categoryCode: "190") { costComponent payer share }
            eam: financingRules(categoryCode: "448") { costComponent payer share }
            fam: categories { code legacy successor { code } }
            esat: financingRules(categoryCode: "246", on: "2016-06-01") { payer }
        }"#).await?;
        assert_eq!(data["camsp"], json!([
            { "costComponent": "GLOBAL", "payer": "ASSURANCE_MALADIE", "share": "80.00" },
            { "costComponent": "GLOBAL", "payer": "COLLECTIVITE", "share": "20.00" },
        ]));
        assert_eq!(data["eam"], json!([
            { "costComponent": "SOINS", "payer": "ASSURANCE_MALADIE", "share": null },
            { "costComponent": "HEBERGEMENT", "payer": "COLLECTIVITE", "share": null },
        ]));
        let fam = find(&data["fam"], "code", "437");
        assert_eq!((&fam["legacy"], &fam["successor"]["code"]), (&json!(true), &json!("448")));
        assert_eq!(data["esat"], json!([]), "ESAT is financed by assurance maladie only since 2017");
        Ok(())
    }
}

db_test! {
    async fn a_departement_convention_applies_there_only(hub) {
        hub.db.execute_unprepared("INSERT INTO financing_rule (category_code, cost_component, payer, share_bp, departement_code, valid_from, source) VALUES ('190', 'GLOBAL', 'ASSURANCE_MALADIE', 9000, '38', '2025-01-01', 'convention test')").await?;
        let data = hub.data(r#"{
            isere: financingRules(categoryCode: "190", departementCode: "38") { share departementCode }
            ain: financingRules(categoryCode: "190", departementCode: "01") { share departementCode }
        }"#).await?;
        assert_eq!(data["isere"].as_array().unwrap().len(), 3);
        assert!(data["isere"].as_array().unwrap().iter().any(|r| r["departementCode"] == "38" && r["share"] == "90.00"));
        assert_eq!(data["ain"].as_array().unwrap().len(), 2);
        Ok(())
    }
}

db_test! {
    async fn reloading_the_reference_data_duplicates_nothing_and_keeps_operator_edits(hub) {
        hub.db.execute_unprepared("UPDATE institution SET siret = '13000548100010', suspended = TRUE WHERE code = 'ARS-84'").await?;
        hub.db.execute_unprepared("UPDATE financing_rule SET note = 'revu par la CNSA' WHERE category_code = '190' AND payer = 'COLLECTIVITE'").await?;
        let hub = hub.restart().await?;
        let count = |table: &'static str| {
            let db = &hub.db;
            async move {
                let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), format!("SELECT COUNT(*) AS n FROM {table}"))).await?.unwrap();
                row.try_get::<i64>("", "n")
            }
        };
        assert_eq!(count("region").await?, 18);
        assert_eq!(count("departement").await?, 101);
        assert_eq!(count("institution").await?, 251);
        assert_eq!(count("envelope_allocation").await?, 54);
        assert_eq!(count("financing_rule").await?, 43);
        let row = hub.db.query_one_raw(sea_orm::Statement::from_string(hub.db.get_database_backend(), "SELECT siret, suspended FROM institution WHERE code = 'ARS-84'")).await?.unwrap();
        assert_eq!(row.try_get::<Option<String>>("", "siret")?, Some("13000548100010".to_owned()));
        assert!(row.try_get::<bool>("", "suspended")?);
        let rules = hub.data(r#"{ financingRules(categoryCode: "190") { payer note } }"#).await?;
        assert_eq!(rules["financingRules"][1]["note"], "revu par la CNSA");
        Ok(())
    }
}

db_test! {
    async fn orientation_codes_point_to_their_categories(hub) {
        let data = hub.data("{ orientationCodes { code public category { code } } }").await?;
        let mas = find(&data["orientationCodes"], "code", "13.3");
        assert_eq!((&mas["public"], &mas["category"]["code"]), (&json!("ADULTES"), &json!("255")));
        Ok(())
    }
}
