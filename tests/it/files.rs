//! Spreadsheets in and out: uploads (GraphQL multipart), `cnh-hub import`, and exports back to CSV and XLSX.

use api::access::principal::Role;
use api::files::tabular::{CellKind, read_table, write_xlsx};
use serde_json::{Value, json};

use crate::support::{Caller, TestHub, TestResult, error_codes};

const IMPORT: &str = "mutation($kind: DataKind!, $file: Upload!, $key: String) {
  importFile(kind: $kind, file: $file, idempotencyKey: $key) {
    kind format rows created updated ignoredColumns warnings { path code message } receipt { kind accepted submissionId }
  } }";

/// Uploads a file as a GraphQL multipart request.
pub(crate) async fn upload(
    caller: &Caller<'_>,
    hub: &TestHub,
    kind: &str,
    name: &str,
    bytes: Vec<u8>,
    key: Option<&str>,
) -> Result<Value, reqwest::Error> {
    let operations = json!({ "query": IMPORT, "variables": { "kind": kind, "file": null, "key": key } });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", r#"{ "0": ["variables.file"] }"#)
        .part("0", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()));
    let mut request = hub.client.post(hub.url("/graphql")).multipart(form);
    if let Some(token) = &caller.token {
        request = request.bearer_auth(token);
    }
    request.send().await?.json().await
}

/// Encodes text as Windows-1252, as French Excel saves "CSV (séparateur : point-virgule)".
fn windows_1252(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            'é' => 0xE9,
            'è' => 0xE8,
            'à' => 0xE0,
            'â' => 0xE2,
            'ô' => 0xF4,
            'ç' => 0xE7,
            '’' => 0x92,
            c if c.is_ascii() => c as u8,
            other => panic!("no Windows-1252 byte for {other}"),
        })
        .collect()
}

fn violations(answer: &Value) -> Vec<String> {
    answer["errors"][0]["extensions"]["violations"]
        .as_array()
        .map(|v| {
            v.iter().map(|v| format!("{} {}", v["path"].as_str().unwrap(), v["message"].as_str().unwrap())).collect()
        })
        .unwrap_or_default()
}

db_test! {
    async fn an_mdph_uploads_its_needs_as_a_french_excel_csv(hub) {
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let csv = windows_1252(
            "Département;Date de référence;Code orientation;Tranche d'âge;Indicateur;Nombre;Commentaire\r\n\
             69;30/06/2026;7.1;6-11;En attente d'admission;42;liste à jour\r\n\
             69;30/06/2026;7.1;TOUS;En attente d'admission;97;\r\n\
             69;30/06/2026;13.3;20-24;Adultes Creton;8;\r\n",
        );
        let answer = upload(&mdph, &hub, "NEEDS", "besoins-69.csv", csv, Some("export-juin")).await?;
        let report = &answer["data"]["importFile"];
        assert_eq!((&report["format"], &report["rows"], &report["created"]), (&json!("CSV"), &json!(3), &json!(3)), "{answer}");
        assert_eq!(report["ignoredColumns"], json!(["Commentaire"]));
        assert_eq!(report["receipt"]["kind"], "NEEDS");
        let read = mdph.data("{ needs { totalCount } }").await?;
        assert_eq!(read["needs"]["totalCount"], 3);
        let again = upload(&mdph, &hub, "NEEDS", "besoins-69.csv", windows_1252("Département;Date de référence;Code orientation;Tranche d'âge;Indicateur;Nombre\n69;30/06/2026;7.1;TOUS;PAG;1\n"), Some("export-juin")).await?;
        assert_eq!(error_codes(&again), ["IDEMPOTENCY_CONFLICT"]);
        Ok(())
    }
}

db_test! {
    async fn a_bad_file_is_refused_whole_with_its_lines_named(hub) {
        let mdph = hub.as_role(Role::Mdph, Some("69"));
        let csv = "Date de référence;Code orientation;Tranche d'âge;Indicateur;Nombre\n\
                   30/06/2026;7.1;6-11;En attente d'admission;quarante\n\
                   30/06/2026;9.9;6-11;En attente d'admission;4\n\
                   30/06/2026;7.1;TOUS;Inventé;4\n";
        let answer = upload(&mdph, &hub, "NEEDS", "besoins.csv", csv.as_bytes().to_vec(), None).await?;
        assert_eq!(error_codes(&answer), ["VALIDATION_FAILED"]);
        let found = violations(&answer);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("rows[0].value ligne 2"), "{found:?}");
        assert!(found[1].starts_with("rows[2].indicator ligne 4"), "{found:?}");
        let missing_column = upload(&mdph, &hub, "NEEDS", "besoins.csv", b"Date;Orientation\n".to_vec(), None).await?;
        assert!(violations(&missing_column).iter().any(|v| v.contains("Tranche d'âge")));
        let garbage = upload(&mdph, &hub, "NEEDS", "x.xlsx", b"PK\x03\x04garbage".to_vec(), None).await?;
        assert_eq!(error_codes(&garbage), ["BAD_USER_INPUT"]);
        assert_eq!(mdph.data("{ needs { totalCount } }").await?["needs"]["totalCount"], 0);
        let not_mine = upload(&hub.as_role(Role::Rectorat, Some("lyon")), &hub, "NEEDS", "besoins.csv", csv.as_bytes().to_vec(), None).await?;
        assert_eq!(error_codes(&not_mine), ["FORBIDDEN"], "a rectorat does not submit needs");
        Ok(())
    }
}

db_test! {
    async fn measures_go_out_as_xlsx_and_come_back_with_changes(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let headers = ["Référence", "Libellé", "Département", "FINESS", "Catégorie", "Publics", "Nombre de solutions", "Unité", "Nature", "Procédure", "Compartiment", "Date d'installation prévue", "Statut"];
        let rows = vec![
            ["ARA-01", "SESSAD TND", "69", "", "182", "Enfants, TND", "30", "Places installées", "Création", "Appel à projets", "Socle enfants", "01/09/2026", "Programmée"],
            ["ARA-02", "EAM Isère", "38", "", "448", "Adultes", "24", "Places installées", "Création", "AAP", "Socle adultes", "01/01/2027", ""],
        ].into_iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect::<Vec<Vec<String>>>();
        let mut kinds = vec![CellKind::Text; headers.len()];
        kinds[6] = CellKind::Integer;
        let xlsx = write_xlsx("Programmation", &headers, &kinds, &rows)?;
        let answer = upload(&ars, &hub, "MEASURES", "programmation.xlsx", xlsx, None).await?;
        let report = &answer["data"]["importFile"];
        assert_eq!((&report["format"], &report["created"], &report["updated"]), (&json!("XLSX"), &json!(2), &json!(0)), "{answer}");

        let exported = hub.client.get(hub.url("/exports/measures.csv")).bearer_auth(ars.token.clone().unwrap()).send().await?;
        assert_eq!(exported.status(), 200);
        assert!(exported.headers()["content-type"].to_str()?.starts_with("text/csv"));
        let bytes = exported.bytes().await?.to_vec();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "a BOM, for spreadsheet software");
        let (_, table) = read_table(&bytes)?;
        assert_eq!(table.rows.len(), 2);
        assert_eq!(&table.headers[..3], ["Identifiant", "Référence", "Libellé"]);
        // The officer raises the first line's solutions and sends the sheet back: an update at its version.
        let text = String::from_utf8(bytes)?.replacen(";30;", ";35;", 1);
        let back = upload(&ars, &hub, "MEASURES", "retour.csv", text.into_bytes(), None).await?;
        assert_eq!((&back["data"]["importFile"]["created"], &back["data"]["importFile"]["updated"]), (&json!(0), &json!(2)), "{back}");
        let read = ars.data(r#"{ measures(filter: { departementCode: "69" }) { edges { node { solutions version } } } }"#).await?;
        assert_eq!(read["measures"]["edges"][0]["node"], json!({ "solutions": 35, "version": 2 }));

        let xlsx = hub.client.get(hub.url("/exports/measures.xlsx")).bearer_auth(ars.token.clone().unwrap()).send().await?;
        let (format, table) = read_table(&xlsx.bytes().await?)?;
        assert_eq!((format, table.rows.len()), (api::files::tabular::FileFormat::Xlsx, 2));
        // A stale sheet (version 1 again) is refused, line by line.
        let stale = upload(&ars, &hub, "MEASURES", "retour.csv", String::from_utf8(hub.client.get(hub.url("/exports/measures.csv")).bearer_auth(ars.token.clone().unwrap()).send().await?.bytes().await?.to_vec())?.replace(";2\r\n", ";1\r\n").replace(";2\n", ";1\n").into_bytes(), None).await?;
        assert_eq!(error_codes(&stale), ["VALIDATION_FAILED"], "{stale}");
        assert!(violations(&stale).iter().all(|v| v.contains("VERSION") || v.contains("version")), "{stale}");
        Ok(())
    }
}

db_test! {
    async fn a_collectivite_uploads_its_commitments_by_measure_reference_with_year_columns(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        crate::programming::create_measure(&ars, "ARA-EAM-1").await?;
        let cd = hub.as_role(Role::Collectivite, Some("69"));
        let csv = "Référence mesure;Composante;Montant annuel;Référence décision;Capacité;Date d'installation;2026;2027\n\
                   ARA-EAM-1;Hébergement;300 000,00;Délibération 2024-05;25;01/01/2027;0;300 000\n";
        let answer = upload(&cd, &hub, "COMMITMENTS", "engagements.csv", csv.as_bytes().to_vec(), None).await?;
        assert_eq!(answer["data"]["importFile"]["created"], 1, "{answer}");
        let read = cd.data("{ measures { edges { node { commitments { funderCode costComponent fullYearAmount capacity schedule { year amount } } } } } }").await?;
        assert_eq!(read["measures"]["edges"][0]["node"]["commitments"][0], json!({
            "funderCode": "CD-69", "costComponent": "HEBERGEMENT", "fullYearAmount": "300000.00", "capacity": 25,
            "schedule": [{ "year": 2026, "amount": "0.00" }, { "year": 2027, "amount": "300000.00" }]
        }));
        let exported = hub.client.get(hub.url("/exports/commitments.csv")).bearer_auth(cd.token.clone().unwrap()).send().await?;
        let (_, table) = read_table(&exported.bytes().await?)?;
        assert_eq!(table.rows.len(), 1);
        let elsewhere = upload(&hub.as_role(Role::Collectivite, Some("75")), &hub, "COMMITMENTS", "engagements.csv", csv.as_bytes().to_vec(), None).await?;
        assert!(violations(&elsewhere).iter().any(|v| v.contains("NOT_FOUND") || v.contains("aucune mesure")), "{elsewhere}");
        Ok(())
    }
}

db_test! {
    async fn exports_follow_the_policy_and_the_territory(hub) {
        let get = |caller: Option<String>, path: &str| {
            let mut request = hub.client.get(hub.url(path));
            if let Some(token) = caller {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let anonymous = get(None, "/exports/measures.csv").await?;
        assert_eq!(anonymous.status(), 401);
        let ars = hub.as_role(Role::Ars, Some("84")).token;
        let needs = get(ars.clone(), "/exports/needs.csv").await?;
        assert_eq!(needs.status(), 403);
        assert_eq!(error_codes(&needs.json().await?), ["FORBIDDEN"]);
        assert_eq!(get(ars.clone(), "/exports/secrets.csv").await?.status(), 404);
        assert_eq!(get(ars.clone(), "/exports/measures.pdf").await?.status(), 404);
        let plans = get(hub.as_role(Role::Rectorat, Some("lyon")).token, "/exports/school-plans.xlsx").await?;
        assert_eq!(plans.status(), 200);
        let audit = get(hub.as_admin().token, "/exports/audit-trail.csv").await?;
        assert_eq!(audit.status(), 200);
        let campaign = hub.as_cnsa().data(r#"mutation { declareCampaign(input: { name: "Besoins", dataKind: NEEDS, opensOn: "2026-01-01", deadline: "2030-12-31" }) { id } }"#).await?;
        let id = campaign["declareCampaign"]["id"].as_str().unwrap().to_owned();
        let status = get(hub.as_cnsa().token, &format!("/exports/campaign-status.csv?campaignId={id}")).await?;
        let (_, table) = read_table(&status.bytes().await?)?;
        assert_eq!(table.rows.len(), 101);
        assert_eq!(get(hub.as_cnsa().token, "/exports/campaign-status.csv").await?.status(), 400, "which campaign?");
        let dashboard = get(hub.as_role(Role::Dashboard, None).token, "/exports/audit-trail.csv").await?;
        assert_eq!(dashboard.status(), 403);
        Ok(())
    }
}

db_test! {
    async fn a_plan_without_uai_or_finess_is_refused_naming_both_and_its_line(hub) {
        let rectorat = hub.as_role(Role::Rectorat, Some("lyon"));
        let csv = "Référence;Département;Type;UAI;FINESS;ETP Éducation nationale;ETP médico-social;Coût médico-social;Année\n\
                   PAS-01;69;PAS;0690001B;;1;2,5;180 000;2026\n\
                   PAS-02;69;PAS;;;1;1;90 000;2026\n";
        let answer = upload(&rectorat, &hub, "SCHOOL_PLANS", "plans.csv", csv.as_bytes().to_vec(), None).await?;
        assert_eq!(error_codes(&answer), ["VALIDATION_FAILED"], "{answer}");
        let found = violations(&answer);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("plans[1].uai ligne 3 (« PAS-02 ») : ni uai ni finess"), "{found:?}");
        assert!(found[0].contains("UAI") && found[0].contains("FINESS"), "{found:?}");
        assert_eq!(rectorat.data("{ schoolPlans { totalCount } }").await?["schoolPlans"]["totalCount"], 0);
        Ok(())
    }
}

/// A GET of an export with a token; the status and the answer's body.
async fn export(hub: &TestHub, caller: &Caller<'_>, path: &str) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let answer = hub.client.get(hub.url(path)).bearer_auth(caller.token.clone().unwrap_or_default()).send().await?;
    Ok((answer.status().as_u16(), answer.bytes().await?.to_vec()))
}

/// The code and the message of an export's error answer.
fn refusal(body: &[u8]) -> (String, String) {
    let answer: Value = serde_json::from_slice(body).unwrap_or_default();
    let code = error_codes(&answer).join(",");
    (code, answer["errors"][0]["message"].as_str().unwrap_or_default().to_owned())
}

db_test! {
    async fn an_unknown_export_filter_is_named_with_the_accepted_ones(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let (status, body) = export(&hub, &ars, "/exports/measures.csv?regionCode=84&colour=blue&departement=69").await?;
        assert_eq!(status, 400, "{body:?}");
        let (code, message) = refusal(&body);
        assert_eq!(code, "BAD_USER_INPUT", "{body:?}");
        assert!(message.contains("« colour »") && message.contains("« departement »"), "the unknown ones: {message}");
        assert!(!message.contains("« regionCode »"), "a known one is not unknown: {message}");
        for accepted in ["regionCode", "departementCode", "academieCode", "year", "campaignId"] {
            assert!(message.contains(accepted), "{accepted} is listed: {message}");
        }
        let (status, body) = export(&hub, &ars, "/exports/measures.xlsx?year=deux-mille").await?;
        assert_eq!((status, refusal(&body).0.as_str()), (400, "BAD_USER_INPUT"), "{body:?}");
        assert!(refusal(&body).1.contains("« deux-mille »"), "{body:?}");
        let (status, _) = export(&hub, &ars, "/exports/measures.csv?regionCode=84&year=2026").await?;
        assert_eq!(status, 200);
        Ok(())
    }
}

db_test! {
    async fn the_school_plans_export_is_filtered_by_academie_within_the_callers_reach(hub) {
        let plan = |reference: &str, departement: &str, uai: &str| json!({ "reference": reference, "departementCode": departement,
            "kind": "PAS", "uai": uai, "etpEducationNationale": "1", "etpMedicoSocial": "2.5", "medicoSocialCost": "180000.00", "year": 2026 });
        let submit = "mutation($input: SchoolPlansInput!) { submitSchoolPlans(input: $input) { accepted } }";
        let lyon = hub.as_role(Role::Rectorat, Some("lyon"));
        let answer = lyon.graphql(submit, json!({ "input": { "academieCode": "lyon", "plans": [plan("PAS-69-01", "69", "0690001B"), plan("PAS-42-01", "42", "0420001Y")] } })).await?;
        assert_eq!(answer["data"]["submitSchoolPlans"]["accepted"], 2, "{answer}");
        let grenoble = hub.as_role(Role::Rectorat, Some("grenoble"));
        let answer = grenoble.graphql(submit, json!({ "input": { "academieCode": "grenoble", "plans": [plan("PAS-38-01", "38", "0380001V")] } })).await?;
        assert_eq!(answer["data"]["submitSchoolPlans"]["accepted"], 1, "{answer}");

        let rows = |body: &[u8]| read_table(body).map(|(_, t)| t.rows.len()).unwrap_or(usize::MAX);
        // A rectorat, its region's ARS and the CNSA filter by académie, in the query itself.
        for (who, caller) in [("the rectorat", &lyon), ("the ARS", &hub.as_role(Role::Ars, Some("84"))), ("the CNSA", &hub.as_cnsa())] {
            for spelling in ["academie", "academieCode"] {
                let (status, body) = export(&hub, caller, &format!("/exports/school-plans.csv?{spelling}=lyon")).await?;
                assert_eq!((status, rows(&body)), (200, 2), "{who}, {spelling}: {}", String::from_utf8_lossy(&body));
            }
        }
        let (_, body) = export(&hub, &hub.as_cnsa(), "/exports/school-plans.csv?academie=grenoble").await?;
        assert_eq!(rows(&body), 1);
        let (status, body) = export(&hub, &hub.as_role(Role::Ars, Some("84")), "/exports/school-plans.xlsx?academie=grenoble&year=2026").await?;
        assert_eq!((status, rows(&body)), (200, 1), "an XLSX, filtered by académie and year");

        // Outside the caller's reach: FORBIDDEN naming the académie; unknown: BAD_USER_INPUT naming it.
        for (caller, path) in [(&lyon, "/exports/school-plans.csv?academie=grenoble"), (&hub.as_role(Role::Ars, Some("11")), "/exports/school-plans.xlsx?academie=lyon")] {
            let (status, body) = export(&hub, caller, path).await?;
            let (code, message) = refusal(&body);
            assert_eq!((status, code.as_str()), (403, "FORBIDDEN"), "{path}: {body:?}");
            let wanted = path.rsplit('=').next().unwrap_or_default();
            assert!(message.contains(&format!("« {wanted} »")), "{message}");
        }
        let (status, body) = export(&hub, &lyon, "/exports/school-plans.csv?academie=atlantide").await?;
        let (code, message) = refusal(&body);
        assert_eq!((status, code.as_str()), (400, "BAD_USER_INPUT"), "{body:?}");
        assert!(message.contains("« atlantide »"), "{message}");
        // The académie filters school plans only.
        let (status, body) = export(&hub, &hub.as_role(Role::Ars, Some("84")), "/exports/measures.csv?academie=lyon").await?;
        assert_eq!((status, refusal(&body).0.as_str()), (400, "BAD_USER_INPUT"), "{body:?}");
        assert!(refusal(&body).1.contains("school-plans"), "{body:?}");

        // The GraphQL read applies the same rule to its académie filter.
        let q = "query($a: String) { schoolPlans(filter: { academieCode: $a }) { totalCount } }";
        assert_eq!(lyon.graphql(q, json!({ "a": "lyon" })).await?["data"]["schoolPlans"]["totalCount"], 2);
        let outside = lyon.graphql(q, json!({ "a": "grenoble" })).await?;
        assert_eq!(error_codes(&outside), ["FORBIDDEN"], "{outside}");
        assert!(outside["errors"][0]["message"].as_str().unwrap_or_default().contains("« grenoble »"), "{outside}");
        let unknown = lyon.graphql(q, json!({ "a": "atlantide" })).await?;
        assert_eq!(error_codes(&unknown), ["BAD_USER_INPUT"], "{unknown}");
        assert!(unknown["errors"][0]["message"].as_str().unwrap_or_default().contains("« atlantide »"), "{unknown}");
        Ok(())
    }
}

#[test]
fn the_command_line_imports_a_rectorat_s_plans_through_the_same_checks() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let file = dir.path().join("plans.csv");
    std::fs::write(
        &file,
        "Référence;Département;Type;UAI;FINESS;ETP Éducation nationale;ETP médico-social;Coût médico-social;Année\n\
        PAS-01;69;Pôle d'appui à la scolarité;0690001B;;1;2,5;180 000;2026\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cnh-hub"))
            .args(["import", "--kind", "school-plans", "--institution", "RECTORAT-LYON", "--file"])
            .arg(&file)
            .args(extra)
            .env("DATABASE_URL", &url)
            .env_remove("CNH_DEV_JWT_SECRET")
            .output()
            .unwrap()
    };
    let output = run(&["--idempotency-key", "k1"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 rows read") && stdout.contains("1 created"), "{stdout}");
    std::fs::write(
        &file,
        "Référence;Département;Type;UAI;FINESS;ETP Éducation nationale;ETP médico-social;Coût médico-social;Année\n\
        PAS-02;38;PAS;0690001A;;1;1;-5;2026\n",
    )
    .unwrap();
    let refused = run(&[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("DEPARTEMENT_OUTSIDE_ACADEMIE") && stderr.contains("UAI_INVALID") && stderr.contains("ligne 2"),
        "{stderr}"
    );
    let wrong_kind = Command::new(env!("CARGO_BIN_EXE_cnh-hub"))
        .args(["import", "--kind", "plans", "--institution", "X", "--file", "x"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!wrong_kind.status.success());
}
