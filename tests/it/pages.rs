//! The dashboard pages: signed in with a session cookie and CSRF-protected forms, showing what the API shows the
//! same person and nothing else; then in a real browser (headless Chromium): sign in as an ARS and as a dashboard,
//! read the overview, filter the findings, open a measure, see a status change arrive live, with screenshots.

use std::time::Duration;

use api::access::principal::Role;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::programming::{COMMIT, UPSERT};
use crate::support::{Backend, TestHub, TestResult};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn eam(reference: &str, departement: &str) -> Value {
    json!({ "reference": reference, "label": "EAM des pages", "departementCode": departement, "categoryCode": "448",
        "publics": ["ADULTES"], "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION",
        "procedure": "APPEL_A_PROJETS", "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01" })
}

/// An EAM in the Rhône whose two funders disagree on its capacity (30 against 25), and a measure of Île-de-France.
/// Returns (the EAM's id, the collectivité's commitment as entered).
async fn scenario(hub: &TestHub) -> Result<(String, Value), BoxError> {
    let ars = hub.as_role(Role::Ars, Some("84"));
    let answer = ars.graphql(UPSERT, json!({ "input": eam("PAGE-84-EAM", "69") })).await?;
    let id = answer["data"]["upsertMeasure"]["measure"]["id"].as_str().ok_or(format!("{answer}"))?.to_owned();
    let answer = ars
        .graphql(
            COMMIT,
            json!({ "input": { "measureId": id, "costComponent": "SOINS", "fullYearAmount": "450000",
        "decisionRef": "Arrêté ARS", "capacity": 30, "installationDate": "2026-09-01" } }),
        )
        .await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    let cd_view = json!({ "measureId": id, "costComponent": "HEBERGEMENT", "fullYearAmount": "300000",
        "decisionRef": "Délibération CD69", "capacity": 25, "installationDate": "2026-09-01" });
    let answer = hub.as_role(Role::Collectivite, Some("69")).graphql(COMMIT, json!({ "input": cd_view })).await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    let other =
        hub.as_role(Role::Ars, Some("11")).graphql(UPSERT, json!({ "input": eam("PAGE-11-EAM", "75") })).await?;
    assert!(other.get("errors").is_none(), "{other}");
    Ok((id, cd_view))
}

/// Cookies a response sets: name → the whole Set-Cookie line.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|line| Some((line.split('=').next()?.to_owned(), line.to_owned())))
        .collect()
}

fn value_of(line: &str) -> String {
    line.split(';').next().and_then(|p| p.split_once('=')).map(|(_, v)| v.to_owned()).unwrap_or_default()
}

/// A person's browser without a browser: its cookies kept by hand.
struct Visitor<'a> {
    hub: &'a TestHub,
    client: reqwest::Client,
    csrf: String,
    session: Option<String>,
}

impl<'a> Visitor<'a> {
    async fn arrive(hub: &'a TestHub) -> Result<Visitor<'a>, BoxError> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let form = client.get(hub.url("/tableau/connexion")).send().await?;
        assert_eq!(form.status(), StatusCode::OK);
        let csrf = set_cookies(form.headers())
            .into_iter()
            .find(|(n, _)| n == "cnh_csrf")
            .map(|(_, l)| value_of(&l))
            .ok_or("no CSRF cookie")?;
        let body = form.text().await?;
        assert!(body.contains(&format!("value=\"{csrf}\"")), "the form carries the CSRF token");
        Ok(Visitor { hub, client, csrf, session: None })
    }

    fn cookie_header(&self) -> String {
        let mut cookie = format!("cnh_csrf={}", self.csrf);
        if let Some(session) = &self.session {
            cookie.push_str(&format!("; cnh_session={session}"));
        }
        cookie
    }

    async fn sign_in(&mut self, role: &str, territory: &str, csrf: &str) -> Result<reqwest::Response, BoxError> {
        let response = self
            .client
            .post(self.hub.url("/tableau/connexion"))
            .header("cookie", self.cookie_header())
            .form(&[("csrf", csrf), ("role", role), ("territoire", territory)])
            .send()
            .await?;
        for (name, line) in set_cookies(response.headers()) {
            match name.as_str() {
                "cnh_session" => self.session = Some(value_of(&line)),
                "cnh_csrf" => self.csrf = value_of(&line),
                _ => {}
            }
        }
        Ok(response)
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, HeaderMap, String), BoxError> {
        let response = self.client.get(self.hub.url(path)).header("cookie", self.cookie_header()).send().await?;
        Ok((response.status(), response.headers().clone(), response.text().await?))
    }
}

db_test! {
    async fn pages_need_a_session_show_only_the_persons_territory_and_refuse_forged_forms(hub) {
        scenario(&hub).await?;
        let mut visitor = Visitor::arrive(&hub).await?;
        let (status, headers, _) = visitor.get("/tableau").await?;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers.get(LOCATION).and_then(|l| l.to_str().ok()), Some("/tableau/connexion"));

        // A form without the browser's CSRF token, or from another site, is refused and signs nobody in.
        let refused = visitor.sign_in("ars", "84", "00000000000000000000000000000000").await?;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(visitor.session.is_none());
        let csrf = visitor.csrf.clone();
        let forged = visitor.client.post(hub.url("/tableau/connexion")).header("cookie", visitor.cookie_header())
            .header("origin", "https://ailleurs.example").form(&[("csrf", csrf.as_str()), ("role", "ars"), ("territoire", "84")]).send().await?;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);

        let signed = visitor.sign_in("ars", "84", &csrf).await?;
        assert_eq!(signed.status(), StatusCode::SEE_OTHER);
        let line = set_cookies(signed.headers()).into_iter().find(|(n, _)| n == "cnh_session").map(|(_, l)| l).ok_or("no session")?;
        assert!(line.contains("HttpOnly") && line.contains("SameSite=Lax"), "{line}");
        assert!(!line.contains("Secure"), "plain HTTP in development: {line}");
        let (status, headers, page) = visitor.get("/tableau").await?;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.get("content-security-policy").is_some());
        assert!(page.contains("Vue d&#39;ensemble") || page.contains("Vue d'ensemble"));
        assert!(page.contains("PAGE-84-EAM") && page.contains("Capacités discordantes"), "{page}");
        assert!(!page.contains("PAGE-11-EAM"), "another region's measure never appears");
        let (_, _, findings) = visitor.get("/tableau/constats?code=CAPACITY_MISMATCH").await?;
        assert!(findings.contains("CAPACITY_MISMATCH") && findings.contains("PAGE-84-EAM"), "{findings}");
        // By the measure's category and installation year, as the API selects measures.
        let (_, _, by_category) = visitor.get("/tableau/constats?categorie=448&annee=2026").await?;
        assert!(by_category.contains("CAPACITY_MISMATCH") && by_category.contains("PAGE-84-EAM"), "{by_category}");
        let (_, _, other_category) = visitor.get("/tableau/constats?categorie=183").await?;
        assert!(!other_category.contains("PAGE-84-EAM"), "{other_category}");
        let (_, _, other_year) = visitor.get("/tableau/constats?annee=2027").await?;
        assert!(!other_year.contains("PAGE-84-EAM"), "{other_year}");
        let (status, _, csv) = visitor.get("/tableau/export/constats.csv?code=CAPACITY_MISMATCH").await?;
        assert_eq!(status, StatusCode::OK);
        assert!(csv.lines().count() >= 2 && csv.lines().skip(1).all(|l| l.starts_with("CAPACITY_MISMATCH")), "{csv}");

        // Another region's ARS, and a dashboard: not the measure.
        let mut other = Visitor::arrive(&hub).await?;
        let csrf = other.csrf.clone();
        other.sign_in("ars", "11", &csrf).await?;
        let (_, _, page) = other.get("/tableau").await?;
        assert!(page.contains("PAGE-11-EAM") && !page.contains("PAGE-84-EAM"), "{page}");
        let (status, headers, csv) = other.get("/tableau/export/constats.csv?code=CAPACITY_MISMATCH").await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
        assert!(!csv.contains("PAGE-84-EAM") && !csv.contains(";84;"), "nothing of region 84: {csv}");
        assert_eq!(other.get("/tableau/export/constats.csv?annee=deux-mille").await?.0, StatusCode::BAD_REQUEST);
        // A collectivité: its départements' measures only.
        let mut rhone = Visitor::arrive(&hub).await?;
        let csrf = rhone.csrf.clone();
        rhone.sign_in("collectivite", "69", &csrf).await?;
        let (_, _, page) = rhone.get("/tableau").await?;
        assert!(page.contains("PAGE-84-EAM") && !page.contains("PAGE-11-EAM"), "{page}");
        let mut paris = Visitor::arrive(&hub).await?;
        let csrf = paris.csrf.clone();
        paris.sign_in("collectivite", "75", &csrf).await?;
        let (_, _, page) = paris.get("/tableau").await?;
        assert!(page.contains("PAGE-11-EAM") && !page.contains("PAGE-84-EAM"), "{page}");
        let mut dashboard = Visitor::arrive(&hub).await?;
        let csrf = dashboard.csrf.clone();
        dashboard.sign_in("dashboard", "", &csrf).await?;
        let (_, _, page) = dashboard.get("/tableau").await?;
        assert!(page.contains("Statuts de cofinancement") && page.contains("Capacités discordantes"), "aggregates: {page}");
        assert!(!page.contains("PAGE-84-EAM") && !page.contains("PAGE-11-EAM"), "a dashboard sees no measure");
        // Nor the live status changes: refused before any stream opens, and not offered on its page.
        assert!(!page.contains("data-live"));
        assert_eq!(dashboard.get("/tableau/direct").await?.0, StatusCode::FORBIDDEN);

        // A live stream ends when its session stops being valid: the institution suspended.
        let stream = visitor.client.get(hub.url("/tableau/direct")).header("cookie", visitor.cookie_header()).send().await?;
        assert_eq!(stream.status(), StatusCode::OK);
        let suspended = hub.as_admin().graphql(r#"mutation { suspendInstitution(code: "ARS-84", reason: "test des pages") { suspended } }"#, json!({})).await?;
        assert!(suspended.get("errors").is_none(), "{suspended}");
        let mut stream = stream;
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(_)) = stream.chunk().await {}
        })
        .await;
        assert!(ended.is_ok(), "the stream of a suspended institution ends");
        assert_eq!(visitor.get("/tableau").await?.0, StatusCode::SEE_OTHER, "and its pages ask to sign in again");
        let reinstated = hub.as_admin().graphql(r#"mutation { reinstateInstitution(code: "ARS-84") { suspended } }"#, json!({})).await?;
        assert!(reinstated.get("errors").is_none(), "{reinstated}");

        // The steering pack: the ARS's region, as a page and as a workbook; a dashboard has none; a bad date is named.
        let (status, _, steering) = visitor.get("/tableau/pilotage").await?;
        assert_eq!(status, StatusCode::OK, "{steering}");
        assert!(steering.contains("Pilotage national") && steering.contains("Enveloppes par r"), "{steering}");
        assert!(!steering.contains(">11<"), "no other region's row");
        let (status, headers, _) = visitor.get("/tableau/export/dossier.xlsx?date=2026-06-30").await?;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("spreadsheetml")));
        // Today's date is the pack as of now (the end of the day has not come).
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let (status, _, page) = visitor.get(&format!("/tableau/pilotage?date={today}")).await?;
        assert_eq!(status, StatusCode::OK, "{page}");
                let (status, _, page) = visitor.get("/tableau/pilotage?date=demain").await?;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("date « demain » illisible"), "{page}");
        let (status, _, page) = dashboard.get("/tableau/pilotage").await?;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("ne permet pas"), "{page}");

        // A forged or stale session is no session.
        let mut forger = Visitor::arrive(&hub).await?;
        forger.session = Some("eyJhbGciOiJIUzI1NiJ9.e30.forged".into());
        assert_eq!(forger.get("/tableau").await?.0, StatusCode::SEE_OTHER);

        // Signing out needs the form's token and forgets the session.
        let out = visitor.client.post(hub.url("/tableau/deconnexion")).header("cookie", visitor.cookie_header())
            .form(&[("csrf", "wrong")]).send().await?;
        assert_eq!(out.status(), StatusCode::FORBIDDEN);
        let csrf = visitor.csrf.clone();
        let out = visitor.client.post(hub.url("/tableau/deconnexion")).header("cookie", visitor.cookie_header())
            .form(&[("csrf", csrf.as_str())]).send().await?;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert!(set_cookies(out.headers()).iter().any(|(n, l)| n == "cnh_session" && l.contains("Max-Age=0")));
        // The session ended on the hub: its cookie, kept or stolen, opens nothing any more.
        assert_eq!(visitor.get("/tableau").await?.0, StatusCode::SEE_OTHER);
        Ok(())
    }
}

/// Fills in and submits the development sign-in form, as a person would.
async fn sign_in(browser: &mut Browser, hub: &TestHub, role: &str, territory: &str) -> Result<(), BoxError> {
    browser.open(&hub.url("/tableau/connexion")).await?;
    assert_eq!(axe(browser).await?, Vec::<String>::new(), "axe-core on the sign-in form");
    browser
        .eval(&format!(
            "document.getElementById('role').value = {}; document.getElementById('territoire').value = {};
             document.querySelector('form.connexion').submit(); true",
            json!(role),
            json!(territory)
        ))
        .await?;
    browser.wait_for("location.pathname === '/tableau' && document.readyState === 'complete'").await
}

/// What the page leaves out for people who use a keyboard or a screen reader: fields without a label, charts
/// without a title, tables without a caption, images without text, the page's language.
const ACCESSIBILITY_AUDIT: &str = "(() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push('html sans lang');
  for (const field of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!field.id || !document.querySelector('label[for=\"' + field.id + '\"]')) problems.push('champ sans étiquette: ' + field.name);
  }
  for (const svg of document.querySelectorAll('svg')) {
    if (svg.getAttribute('role') !== 'img' || !svg.querySelector('title')) problems.push('graphique sans titre');
  }
  for (const table of document.querySelectorAll('table')) {
    if (!table.querySelector('caption')) problems.push('tableau sans légende');
    if (!table.querySelector('th')) problems.push('tableau sans en-tête');
  }
  for (const img of document.querySelectorAll('img')) { if (!img.hasAttribute('alt')) problems.push('image sans alt'); }
  if (!document.querySelector('main')) problems.push('pas de main');
  if (!document.querySelector('h1')) problems.push('pas de h1');
  return problems;
})()";

/// Runs axe-core (vendored, WCAG 2 A and AA rules) on the page; returns the serious and critical violations.
async fn axe(browser: &mut Browser) -> Result<Vec<String>, BoxError> {
    const AXE: &str = include_str!("fixtures/axe-core/axe.min.js");
    if browser.eval("typeof window.axe === 'object'").await? != json!(true) {
        browser.eval(AXE).await?;
    }
    let found = browser
        .eval(
            "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
               .then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
               .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')))",
        )
        .await?;
    Ok(found.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_an_ars_and_a_dashboard_read_their_pages_and_see_a_status_change_live() -> TestResult {
    let Some(mut browser) = Browser::launch().await? else { return Ok(()) };
    let hub = TestHub::start(Backend::Sqlite).await?;
    let (id, cd_view) = scenario(&hub).await?;

    // The ARS of Auvergne-Rhône-Alpes signs in and reads its overview.
    sign_in(&mut browser, &hub, "ars", "84").await?;
    let overview = browser.text().await?;
    assert!(overview.contains("Vue d'ensemble") && overview.contains("ARS Auvergne-Rhône-Alpes"), "{overview}");
    assert!(overview.contains("PAGE-84-EAM") && overview.contains("Capacités discordantes"), "{overview}");
    assert!(!overview.contains("PAGE-11-EAM"), "another region's measure never appears");
    assert!(
        browser.eval("document.querySelectorAll('svg[role=img]').length").await?.as_u64() >= Some(2),
        "charts drawn"
    );
    let problems = browser.eval(ACCESSIBILITY_AUDIT).await?;
    assert_eq!(problems, json!([]), "accessibility of the overview");
    assert_eq!(axe(&mut browser).await?, Vec::<String>::new(), "axe-core on the overview");
    browser.screenshot("tableau-ars-84-vue-ensemble").await?;

    // The collectivité corrects its capacity: the status change arrives on the open page, without reload.
    browser.wait_for("document.getElementById('evolutions') !== null").await?;
    // The live stream is open before the change is made.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut corrected = cd_view.clone();
    corrected["capacity"] = json!(30);
    let answer = hub
        .as_role(Role::Collectivite, Some("69"))
        .graphql(COMMIT, json!({ "input": corrected, "version": 1 }))
        .await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    browser
        .wait_for(&format!(
            "document.getElementById('evolutions').innerText.includes('Équilibrée') && \
             document.querySelector('[data-measure-status=\"{id}\"]').innerText === 'Équilibrée' && \
             document.querySelector('[data-measure-findings=\"{id}\"]').innerText === '' && \
             document.querySelector('[data-status-count=\"BALANCED\"]').innerText === '1' && \
             document.querySelector('[data-status-count=\"CAPACITY_MISMATCH\"]').innerText === '0'"
        ))
        .await?;
    browser.screenshot("tableau-ars-84-en-direct").await?;

    // Findings, filtered; then the measure's page with its history.
    browser.open(&hub.url("/tableau/constats?severite=WARNING")).await?;
    let findings = browser.text().await?;
    assert!(findings.contains("constat(s) sur"), "{findings}");
    assert!(!findings.contains("PAGE-11-EAM"));
    assert_eq!(browser.eval(ACCESSIBILITY_AUDIT).await?, json!([]), "accessibility of the findings");
    assert_eq!(axe(&mut browser).await?, Vec::<String>::new(), "axe-core on the findings");
    browser.screenshot("tableau-ars-84-constats").await?;
    let escalated = hub.as_role(Role::Ars, Some("84")).graphql(
        "mutation ($id: ID!) { escalate(input: { measureId: $id, reason: \"Le département tarde à délibérer.\" }) { id } }",
        json!({ "id": id }),
    ).await?;
    assert!(escalated.get("errors").is_none(), "{escalated}");
    browser.open(&hub.url(&format!("/tableau/mesures/{id}"))).await?;
    let measure = browser.text().await?;
    assert!(
        measure.contains("Escalades au niveau national") && measure.contains("Le département tarde à délibérer."),
        "{measure}"
    );
    assert!(measure.contains("PAGE-84-EAM") && measure.contains("Historique du statut"), "{measure}");
    assert!(measure.contains("Capacités discordantes") && measure.contains("Équilibrée"), "the history: {measure}");
    assert!(measure.contains("CD69") || measure.contains("Délibération"), "{measure}");
    assert_eq!(axe(&mut browser).await?, Vec::<String>::new(), "axe-core on the measure page");
    browser.screenshot("tableau-ars-84-mesure").await?;
    browser.open(&hub.url("/tableau/campagnes")).await?;
    assert_eq!(axe(&mut browser).await?, Vec::<String>::new(), "axe-core on the campaigns");
    browser.screenshot("tableau-ars-84-campagnes").await?;
    // The steering committee's pack of the region, with its chart and its tables.
    browser.open(&hub.url("/tableau/pilotage")).await?;
    let steering = browser.text().await?;
    assert!(steering.contains("Pilotage national") && steering.contains("Enveloppes par région"), "{steering}");
    assert!(steering.contains("Escalades ouvertes à cette date"), "{steering}");
    assert!(browser.eval("document.querySelectorAll('svg[role=img]').length").await?.as_u64() >= Some(1));
    assert_eq!(axe(&mut browser).await?, Vec::<String>::new(), "axe-core on the steering pack");
    browser.screenshot("tableau-ars-84-pilotage").await?;

    // Sign out; a national dashboard sees aggregates only.
    browser.open(&hub.url("/tableau")).await?;
    browser.eval("document.querySelector('form[action=\"/tableau/deconnexion\"]').submit(); true").await?;
    browser.wait_for("location.pathname === '/tableau/connexion' && document.readyState === 'complete'").await?;
    sign_in(&mut browser, &hub, "dashboard", "").await?;
    let national = browser.text().await?;
    assert!(national.contains("Statuts de cofinancement") && national.contains("Équilibrée"), "{national}");
    assert!(
        !national.contains("PAGE-84-EAM") && !national.contains("PAGE-11-EAM"),
        "a dashboard sees no measure: {national}"
    );
    assert_eq!(browser.eval(ACCESSIBILITY_AUDIT).await?, json!([]), "accessibility of the dashboard");
    assert_eq!(axe(&mut browser).await?, Vec::<String>::new(), "axe-core on the national overview");
    browser.screenshot("tableau-national-agregats").await?;
    // The check can fail: an image without text is a critical violation.
    browser
        .eval("document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"/x.png\">'); true")
        .await?;
    let found = axe(&mut browser).await?;
    assert!(found.iter().any(|v| v.starts_with("image-alt")), "{found:?}");
    Ok(())
}

/// An identity provider for people, behaving as ProConnect does: discovery (client secret in the token request's
/// body only), an authorization endpoint that approves at once, a token endpoint that checks the client, the code,
/// the redirect URI and the PKCE verifier and answers an ID token that lives two seconds and says only `sub` and
/// `nonce`; a userinfo endpoint answering a signed JWT with `uid`, `email` and `siret`; an end-session endpoint.
mod idp {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Redirect, Response};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures");
    pub const SIRET: &str = "13000548100010";
    /// How long its ID tokens live (ProConnect's: about a minute).
    pub const ID_TOKEN_SECONDS: u64 = 2;

    /// What a code was issued for: (challenge, nonce, redirect_uri).
    type Grant = (String, String, String);

    #[derive(Clone, Default)]
    pub struct Idp {
        pub issuer: String,
        codes: Arc<Mutex<HashMap<String, Grant>>>,
        /// Access tokens issued, and the `sub` each stands for.
        access_tokens: Arc<Mutex<HashMap<String, String>>>,
        /// What the next ID token's nonce is replaced with (a replayed token).
        pub forged_nonce: Arc<Mutex<Option<String>>>,
        /// What userinfo's `sub` is replaced with (another person's answer).
        pub forged_userinfo_sub: Arc<Mutex<Option<String>>>,
        pub authorize_queries: Arc<Mutex<Vec<HashMap<String, String>>>>,
        pub end_session_queries: Arc<Mutex<Vec<HashMap<String, String>>>>,
    }

    fn base64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn signed(claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("oidc-key-1".to_owned());
        let key = EncodingKey::from_rsa_pem(&std::fs::read(format!("{FIXTURES}/oidc-key-1.pem")).unwrap()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    impl Idp {
        pub async fn start() -> Idp {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let idp = Idp { issuer: format!("http://{}", listener.local_addr().unwrap()), ..Default::default() };
            let app = axum::Router::new()
                .route("/.well-known/openid-configuration", axum::routing::get(discovery))
                .route("/jwks", axum::routing::get(jwks))
                .route("/authorize", axum::routing::get(authorize))
                .route("/token", axum::routing::post(token))
                .route("/userinfo", axum::routing::get(userinfo))
                .route("/session/end", axum::routing::get(end_session))
                .with_state(idp.clone());
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            idp
        }

        pub fn issuers_file(&self, redirect_uri: &str) -> String {
            let path = std::env::temp_dir().join(format!("cnh-issuers-{}.json", uuid::Uuid::new_v4()));
            // No leeway: an ID token two seconds old is expired, as ProConnect's are a minute after sign-in.
            let text = json!({ "issuers": [{
                "name": "ProConnect", "issuer": self.issuer, "audience": "cnh-hub", "algorithms": ["RS256"],
                "oidc": { "min_refresh_seconds": 0 }, "leeway_seconds": 0, "require_jti": true,
                "claims": { "institution": null, "siret": "siret", "agent": "uid" },
                "sign_in": { "client_id": "cnh-hub", "client_secret": "client-secret", "redirect_uri": redirect_uri }
            }] });
            std::fs::write(&path, text.to_string()).unwrap();
            path.display().to_string()
        }
    }

    async fn discovery(State(idp): State<Idp>) -> Response {
        let at = |path: &str| format!("{}{path}", idp.issuer);
        axum::Json(json!({ "issuer": idp.issuer, "jwks_uri": at("/jwks"),
            "authorization_endpoint": at("/authorize"), "token_endpoint": at("/token"),
            "userinfo_endpoint": at("/userinfo"), "end_session_endpoint": at("/session/end"),
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "userinfo_signing_alg_values_supported": ["RS256"] }))
        .into_response()
    }

    async fn jwks() -> Response {
        let all: Value = serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/oidc-jwks.json")).unwrap()).unwrap();
        axum::Json(json!({ "keys": [all["oidc-key-1"]] })).into_response()
    }

    async fn authorize(State(idp): State<Idp>, Query(query): Query<HashMap<String, String>>) -> Response {
        idp.authorize_queries.lock().unwrap().push(query.clone());
        let code = uuid::Uuid::new_v4().simple().to_string();
        let get = |k: &str| query.get(k).cloned().unwrap_or_default();
        idp.codes.lock().unwrap().insert(code.clone(), (get("code_challenge"), get("nonce"), get("redirect_uri")));
        Redirect::to(&format!("{}?code={code}&state={}", get("redirect_uri"), get("state"))).into_response()
    }

    async fn token(
        State(idp): State<Idp>,
        headers: HeaderMap,
        axum::Form(form): axum::Form<HashMap<String, String>>,
    ) -> Response {
        // client_secret_post only, as ProConnect.
        if headers.contains_key("authorization")
            || form.get("client_id").map(String::as_str) != Some("cnh-hub")
            || form.get("client_secret").map(String::as_str) != Some("client-secret")
        {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "invalid_client" }))).into_response();
        }
        // A code is used once.
        let Some((challenge, nonce, redirect_uri)) =
            idp.codes.lock().unwrap().remove(form.get("code").map(String::as_str).unwrap_or(""))
        else {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "invalid_grant" }))).into_response();
        };
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        if base64url(&Sha256::digest(verifier.as_bytes())) != challenge
            || form.get("redirect_uri") != Some(&redirect_uri)
        {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": "invalid_grant", "error_description": "PKCE" })),
            )
                .into_response();
        }
        let nonce = idp.forged_nonce.lock().unwrap().clone().unwrap_or(nonce);
        let now = jsonwebtoken::get_current_timestamp();
        // No jti, no siret: who the person is comes from userinfo.
        let id_token = signed(&json!({ "iss": idp.issuer, "aud": "cnh-hub", "sub": "sub-1", "nonce": nonce,
            "iat": now, "exp": now + ID_TOKEN_SECONDS, "acr": "eidas1", "amr": ["pwd"], "idp_id": "fia1" }));
        let access_token = uuid::Uuid::new_v4().simple().to_string();
        idp.access_tokens.lock().unwrap().insert(access_token.clone(), "sub-1".to_owned());
        axum::Json(
            json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": 60, "id_token": id_token }),
        )
        .into_response()
    }

    async fn userinfo(State(idp): State<Idp>, headers: HeaderMap) -> Response {
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let Some(sub) = token.and_then(|t| idp.access_tokens.lock().unwrap().get(t).cloned()) else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        let sub = idp.forged_userinfo_sub.lock().unwrap().clone().unwrap_or(sub);
        let now = jsonwebtoken::get_current_timestamp();
        let jwt = signed(&json!({ "iss": idp.issuer, "aud": "cnh-hub", "sub": sub, "iat": now,
            "uid": "marie.durand", "email": "marie.durand@ars.sante.fr", "given_name": "Marie", "usual_name": "Durand",
            "siret": SIRET, "idp_id": "fia1" }));
        ([("content-type", "application/jwt")], jwt).into_response()
    }

    async fn end_session(State(idp): State<Idp>, Query(query): Query<HashMap<String, String>>) -> Response {
        idp.end_session_queries.lock().unwrap().push(query.clone());
        let back = query.get("post_logout_redirect_uri").cloned().unwrap_or_default();
        Redirect::to(&back).into_response()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_with_proconnect_code_flow_and_pkce() -> TestResult {
    let idp = idp::Idp::start().await;
    // The hub's own address is known once it listens: the callback goes to a placeholder rewritten below.
    let file = idp.issuers_file("http://127.0.0.1:9/tableau/connexion/retour");
    let hub = TestHub::start_configured(|config| {
        config.issuers_file = Some(file.clone());
        config.dev_jwt_secret = Some(api::config::Secret::new(crate::support::TEST_SECRET));
    })
    .await?;
    let answer = hub
        .as_admin()
        .graphql(
            r#"mutation($s: String) { setInstitutionSiret(code: "ARS-84", siret: $s) { siret } }"#,
            json!({ "s": idp::SIRET }),
        )
        .await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let form = client.get(hub.url("/tableau/connexion")).send().await?.text().await?;
    assert!(form.contains("Se connecter avec ProConnect"), "{form}");

    // Off to the identity provider, with state, nonce and an S256 challenge.
    let start = client.get(hub.url("/tableau/connexion/oidc")).send().await?;
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let flow = set_cookies(start.headers())
        .into_iter()
        .find(|(n, _)| n == "cnh_oidc")
        .map(|(_, l)| l)
        .ok_or("no flow cookie")?;
    assert!(flow.contains("HttpOnly") && flow.contains("SameSite=Lax") && flow.contains("Max-Age=600"), "{flow}");
    let authorize = start.headers().get(LOCATION).and_then(|l| l.to_str().ok()).ok_or("no redirect")?.to_owned();
    assert!(authorize.starts_with(&format!("{}/authorize?", idp.issuer)), "{authorize}");
    for part in
        ["response_type=code", "client_id=cnh-hub", "code_challenge_method=S256", "code_challenge=", "nonce=", "state="]
    {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    // The provider approves and sends the person back with a code.
    let approved = client.get(&authorize).send().await?;
    let back = approved.headers().get(LOCATION).and_then(|l| l.to_str().ok()).ok_or("no callback")?.to_owned();
    let callback = back.replace("http://127.0.0.1:9", &hub.url(""));
    let cookie = format!("cnh_oidc={}", value_of(&flow));

    // A callback whose state is not this browser's is refused.
    let forged = callback.replace("state=", "state=x");
    let refused = client.get(&forged).header("cookie", &cookie).send().await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(set_cookies(refused.headers()).iter().all(|(n, _)| n != "cnh_session"));
    // A provider error for another sign-in is not shown, nor is its text echoed.
    let spoofed =
        client
            .get(hub.url(
                "/tableau/connexion/retour?error=access_denied&error_description=Appelez%20le%2001%2002&state=autre",
            ))
            .header("cookie", &cookie)
            .send()
            .await?;
    assert_eq!(spoofed.status(), StatusCode::BAD_REQUEST);
    assert!(!spoofed.text().await?.contains("Appelez"));
    // Without the flow's cookie (another browser), too.
    assert_eq!(client.get(&callback).send().await?.status(), StatusCode::BAD_REQUEST);

    let signed = client.get(&callback).header("cookie", &cookie).send().await?;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER, "{}", signed.text().await.unwrap_or_default());
    let session = set_cookies(signed.headers())
        .into_iter()
        .find(|(n, _)| n == "cnh_session")
        .map(|(_, l)| l)
        .ok_or("no session")?;
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    let csrf = set_cookies(signed.headers())
        .into_iter()
        .find(|(n, _)| n == "cnh_csrf")
        .map(|(_, l)| value_of(&l))
        .ok_or("no CSRF token")?;
    let browser_cookies = format!("cnh_session={}; cnh_csrf={csrf}", value_of(&session));
    // The session is the hub's: it outlives the provider's short-lived ID token, whose claims did not even name the
    // institution (its SIRET came from the signed userinfo).
    tokio::time::sleep(Duration::from_secs(idp::ID_TOKEN_SECONDS + 1)).await;
    let page = client.get(hub.url("/tableau")).header("cookie", &browser_cookies).send().await?.text().await?;
    assert!(page.contains("ARS-84") && page.contains("Vue d"), "signed in as the ARS of the SIRET: {page}");

    // Signing out ends the session on the hub, then at the provider with the ID token as hint.
    let out = client
        .post(hub.url("/tableau/deconnexion"))
        .header("cookie", &browser_cookies)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await?;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let to = out.headers().get(LOCATION).and_then(|l| l.to_str().ok()).ok_or("no redirect")?.to_owned();
    assert!(to.starts_with(&format!("{}/session/end?", idp.issuer)), "{to}");
    let ended = client.get(&to).send().await?;
    let query = idp.end_session_queries.lock().unwrap().last().cloned().ok_or("no end-session call")?;
    assert!(query.get("id_token_hint").is_some_and(|t| t.split('.').count() == 3), "{query:?}");
    assert!(query.get("state").is_some_and(|s| !s.is_empty()), "{query:?}");
    assert_eq!(
        query.get("post_logout_redirect_uri").map(String::as_str),
        Some("http://127.0.0.1:9/tableau/connexion"),
        "{query:?}"
    );
    assert_eq!(
        ended.headers().get(LOCATION).and_then(|l| l.to_str().ok()),
        Some("http://127.0.0.1:9/tableau/connexion")
    );
    // The same cookie, replayed after sign-out, opens nothing.
    let replayed = client.get(hub.url("/tableau")).header("cookie", &browser_cookies).send().await?;
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    assert_eq!(replayed.headers().get(LOCATION).and_then(|l| l.to_str().ok()), Some("/tableau/connexion"));

    // The same code again (a replayed callback) is refused by the provider: no session.
    let replayed = client.get(&callback).header("cookie", &cookie).send().await?;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);

    // An ID token carrying another sign-in's nonce is refused.
    *idp.forged_nonce.lock().unwrap() = Some("another-nonce".into());
    let start = client.get(hub.url("/tableau/connexion/oidc")).send().await?;
    let flow =
        set_cookies(start.headers()).into_iter().find(|(n, _)| n == "cnh_oidc").map(|(_, l)| l).ok_or("no flow")?;
    let authorize = start.headers().get(LOCATION).and_then(|l| l.to_str().ok()).ok_or("no redirect")?.to_owned();
    let back = client
        .get(&authorize)
        .send()
        .await?
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or("no callback")?
        .to_owned();
    let refused = client
        .get(back.replace("http://127.0.0.1:9", &hub.url("")))
        .header("cookie", format!("cnh_oidc={}", value_of(&flow)))
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await?.contains("rejoué"));

    // Userinfo about another person than the ID token's is refused: no session.
    *idp.forged_nonce.lock().unwrap() = None;
    *idp.forged_userinfo_sub.lock().unwrap() = Some("sub-2".into());
    let start = client.get(hub.url("/tableau/connexion/oidc")).send().await?;
    let flow =
        set_cookies(start.headers()).into_iter().find(|(n, _)| n == "cnh_oidc").map(|(_, l)| l).ok_or("no flow")?;
    let authorize = start.headers().get(LOCATION).and_then(|l| l.to_str().ok()).ok_or("no redirect")?.to_owned();
    let back = client
        .get(&authorize)
        .send()
        .await?
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or("no callback")?
        .to_owned();
    let refused = client
        .get(back.replace("http://127.0.0.1:9", &hub.url("")))
        .header("cookie", format!("cnh_oidc={}", value_of(&flow)))
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
    assert!(set_cookies(refused.headers()).iter().all(|(n, _)| n != "cnh_session"));
    assert!(refused.text().await?.contains("ne concernent pas la personne connectée"));
    Ok(())
}

/// Page views, their spreadsheets and `/exports` files are charged to the read budget as queries are: a script
/// reloading pages or downloading files in a loop is throttled like one sending queries.
#[tokio::test]
async fn page_views_and_file_exports_are_charged_to_the_read_budget() -> Result<(), BoxError> {
    use api::http::rate_limits::{EXPORT_COST, PAGE_COST, Quota, RateLimits};
    let hub = TestHub::start_configured(|config| {
        config.dev_jwt_secret = Some(api::config::Secret::new(crate::support::TEST_SECRET));
        config.rate_limits = RateLimits {
            // Per token or session: half of it, room for one export, or for a few page views.
            reads: Quota { quota: 3 * EXPORT_COST, window: std::time::Duration::from_secs(60) },
            writes: Quota { quota: 0, window: std::time::Duration::from_secs(60) },
            imports: Quota { quota: 0, window: std::time::Duration::from_secs(60) },
            token_share_percent: 50,
            instances: 1,
        };
    })
    .await?;
    let ars = hub.as_role(Role::Ars, Some("84"));
    let export = || hub.client.get(hub.url("/exports/measures.csv")).bearer_auth(ars.token.clone().unwrap()).send();
    assert_eq!(export().await?.status(), StatusCode::OK);
    let refused = export().await?;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["ratelimit-policy"], format!("\"reads-per-token\";q={};w=60", 3 * EXPORT_COST / 2));
    assert_eq!(crate::support::error_codes(&refused.json().await?), ["RATE_LIMITED"]);

    // A person signed in to the pages: each view costs PAGE_COST, until the session's share is spent.
    let mut visitor = Visitor::arrive(&hub).await?;
    let csrf = visitor.csrf.clone();
    visitor.sign_in("ars", "11", &csrf).await?;
    let views = 3 * EXPORT_COST / 2 / PAGE_COST;
    for view in 0..views {
        let (status, _, _) = visitor.get("/tableau").await?;
        assert_eq!(status, StatusCode::OK, "view {view}");
    }
    let (status, headers, body) = visitor.get("/tableau").await?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.contains_key("retry-after"));
    // A page for a person, not the API's JSON.
    assert!(headers["content-type"].to_str()?.starts_with("text/html"), "{headers:?}");
    assert!(body.contains("Trop de demandes") && body.contains("limite de débit atteinte"), "{body}");
    // Another institution is not affected.
    let other = hub.as_role(Role::Ars, Some("24"));
    assert_eq!(
        hub.client
            .get(hub.url("/exports/measures.csv"))
            .bearer_auth(other.token.clone().unwrap())
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    Ok(())
}
