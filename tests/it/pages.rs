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
        let (status, _, csv) = visitor.get("/tableau/export/constats.csv?code=CAPACITY_MISMATCH").await?;
        assert_eq!(status, StatusCode::OK);
        assert!(csv.lines().count() >= 2 && csv.lines().skip(1).all(|l| l.starts_with("CAPACITY_MISMATCH")), "{csv}");

        // Another region's ARS, and a dashboard: not the measure.
        let mut other = Visitor::arrive(&hub).await?;
        let csrf = other.csrf.clone();
        other.sign_in("ars", "11", &csrf).await?;
        let (_, _, page) = other.get("/tableau").await?;
        assert!(page.contains("PAGE-11-EAM") && !page.contains("PAGE-84-EAM"), "{page}");
        let (status, _, _) = other.get("/tableau/export/constats.csv?code=CAPACITY_MISMATCH").await?;
        assert_eq!(status, StatusCode::OK);
        let mut dashboard = Visitor::arrive(&hub).await?;
        let csrf = dashboard.csrf.clone();
        dashboard.sign_in("dashboard", "", &csrf).await?;
        let (_, _, page) = dashboard.get("/tableau").await?;
        assert!(page.contains("Statuts de cofinancement") && page.contains("Capacités discordantes"), "aggregates: {page}");
        assert!(!page.contains("PAGE-84-EAM") && !page.contains("PAGE-11-EAM"), "a dashboard sees no measure");

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
        Ok(())
    }
}

/// Fills in and submits the development sign-in form, as a person would.
async fn sign_in(browser: &mut Browser, hub: &TestHub, role: &str, territory: &str) -> Result<(), BoxError> {
    browser.open(&hub.url("/tableau/connexion")).await?;
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
    browser.screenshot("tableau-ars-84-constats").await?;
    browser.open(&hub.url(&format!("/tableau/mesures/{id}"))).await?;
    let measure = browser.text().await?;
    assert!(measure.contains("PAGE-84-EAM") && measure.contains("Historique du statut"), "{measure}");
    assert!(measure.contains("Capacités discordantes") && measure.contains("Équilibrée"), "the history: {measure}");
    assert!(measure.contains("CD69") || measure.contains("Délibération"), "{measure}");
    browser.screenshot("tableau-ars-84-mesure").await?;
    browser.open(&hub.url("/tableau/campagnes")).await?;
    browser.screenshot("tableau-ars-84-campagnes").await?;

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
    browser.screenshot("tableau-national-agregats").await?;
    Ok(())
}
