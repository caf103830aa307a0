//! The page channel: the dashboard people open every morning, served by the hub itself (server-rendered HTML,
//! charts drawn as SVG, in French). Every figure on a page is the answer of a GraphQL operation executed for the
//! signed-in person on the same schema, policy table, masking and reconciled state as the API: a page cannot show
//! what the API would not. Live updates come from the co-financing status subscription, as server-sent events.
//!
//! Sign-in: with the issuer marked for people (ProConnect: OpenID Connect, code flow with PKCE, `oidc`) and, in
//! development, a form for a chosen role and territory. Either opens a session held by the hub (`session`): the
//! browser keeps its random id in an HttpOnly, SameSite=Lax cookie (Secure outside development). Every form carries a CSRF token
//! (double submit: a cookie and a hidden field that must match), and a POST from another origin is refused.

pub mod oidc;
mod session;
mod views;

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use async_graphql::{Request, Variables};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::authenticator::{Identity, principal_of};
use crate::access::dev::{DevTokenRequest, institution_for};
use crate::access::principal::{Authentication, Role};
use crate::files::tabular::{CellKind, write_csv, write_xlsx};
use crate::graphql::executor::HubExecutor;
use crate::http::Gate;

/// The session cookie: the random id of a session the hub holds.
const SESSION_COOKIE: &str = "cnh_session";
/// The CSRF cookie, echoed in every form.
const CSRF_COOKIE: &str = "cnh_csrf";
/// How long a session lasts, whoever signed in (the provider's ID token lives a minute: the session is the hub's).
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// What the pages need.
#[derive(Clone)]
pub struct PagesState {
    pub executor: HubExecutor,
    /// Where sessions are kept (shared by every instance).
    pub db: sea_orm::DatabaseConnection,
    pub gate: Gate,
    /// The development issuer's secret: the sign-in form exists only with it, outside production.
    pub dev_secret: Option<String>,
    /// Cookies are marked Secure (HTTPS only) outside development.
    pub secure_cookies: bool,
    /// The issuer people sign in with (ProConnect), when configured.
    pub oidc: Option<oidc::OidcSignIn>,
    /// For the issuer's discovery and token endpoints.
    pub http: reqwest::Client,
    /// Live streams end when the hub shuts down.
    pub lifecycle: crate::graphql::http::Lifecycle,
    /// Counts of people below it are masked (the committee's workbook, outside the CNSA).
    pub masking_threshold: i64,
}

/// The static files of the pages.
pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("style.css")).into_response()
}

pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("app.js")).into_response()
}

fn cookies(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("cnh_invalid=; Path=/"))
}

fn new_csrf() -> String {
    format!("{:032x}", uuid::Uuid::new_v4().as_u128())
}

/// The CSRF token of this browser, and the cookie to set when it had none.
fn csrf_of(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    match cookies(headers).get(CSRF_COOKIE).filter(|t| t.len() == 32) {
        Some(token) => (token.clone(), None),
        None => {
            let token = new_csrf();
            let set = cookie(CSRF_COOKIE, &token, None, secure);
            (token, Some(set))
        }
    }
}

/// A form's CSRF field matches the cookie, and the request comes from this origin (when the browser says).
fn csrf_ok(headers: &HeaderMap, field: &str) -> bool {
    let same_origin = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or_default();
            let host = host.to_str().unwrap_or_default();
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        }
        _ => true,
    };
    same_origin && cookies(headers).get(CSRF_COOKIE).is_some_and(|c| c.len() == 32 && c == field)
}

fn html(status: StatusCode, body: maud::Markup, csrf_cookie: Option<HeaderValue>) -> Response {
    let mut response =
        (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body.into_string()).into_response();
    let headers = response.headers_mut();
    // Scripts and styles from the hub only; no framing.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(set) = csrf_cookie {
        headers.append(header::SET_COOKIE, set);
    }
    response
}

/// Charges a page view (or file) to its session's read budget; refused, a page saying when to come back (429,
/// `Retry-After`), as a person reads it rather than the API's JSON.
fn throttled(state: &PagesState, principal: &crate::access::principal::Principal, cost: u64) -> Option<Response> {
    use crate::http::rate_limits::Budget;
    let refusal = crate::http::refused_by_rate_limit(&state.gate, principal, Budget::Reads, cost)?;
    let message = crate::http::rate_limit_message(&refusal, cost);
    let mut response = html(StatusCode::TOO_MANY_REQUESTS, views::throttled(&message, refusal.retry_after), None);
    if let Ok(value) = HeaderValue::from_str(&refusal.retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Some(response)
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// The signed-in person, from the session cookie: None when there is none or it no longer holds (expired, revoked,
/// institution suspended).
async fn session(state: &PagesState, headers: &HeaderMap) -> Option<Authentication> {
    let id = session_id(headers)?;
    let auth = session::find(&state.db, &state.gate, &id).await?;
    // A development sign-in made before the hub left development mode holds no longer.
    match auth.principal() {
        Some(p) if p.issuer == session::DEVELOPMENT && state.dev_secret.is_none() => None,
        _ => Some(auth),
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    cookies(headers).remove(SESSION_COOKIE).filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Ends the session this browser held before signing in again (a new id each sign-in: no session fixation, and no
/// forgotten session left open).
async fn end_previous(state: &PagesState, headers: &HeaderMap) {
    if let Some(previous) = session_id(headers)
        && let Err(err) = session::end(&state.db, &previous).await
    {
        tracing::warn!(%err, "previous page session not ended");
    }
}

/// The answer that lands a newly signed-in person on the overview: the session cookie and a fresh CSRF token.
fn signed_in_at(state: &PagesState, session: &str) -> Response {
    let mut response = redirect("/tableau");
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookie(SESSION_COOKIE, session, Some(SESSION_TTL.as_secs()), state.secure_cookies));
    response.headers_mut().append(header::SET_COOKIE, cookie(CSRF_COOKIE, &new_csrf(), None, state.secure_cookies));
    response
}

/// Runs a GraphQL operation for the signed-in person; the errors' messages when it fails.
async fn ask(state: &PagesState, auth: &Authentication, query: &str, variables: Value) -> Result<Value, Vec<String>> {
    let request = Request::new(query).variables(Variables::from_json(variables));
    let response = state.executor.execute(request, auth.clone()).await;
    if !response.errors.is_empty() {
        return Err(response.errors.into_iter().map(|e| e.message).collect());
    }
    serde_json::to_value(&response.data).map_err(|e| vec![e.to_string()])
}

/// A page for the signed-in person, or the way to the sign-in form.
macro_rules! signed_in {
    ($state:expr, $headers:expr) => {
        signed_in!($state, $headers, crate::http::rate_limits::PAGE_COST)
    };
    // Each page view, or file, is charged to its institution's and session's read budget, as queries are.
    ($state:expr, $headers:expr, $cost:expr) => {
        match session(&$state, &$headers).await {
            Some(auth) => {
                if let Some(principal) = auth.principal()
                    && let Some(refused) = throttled(&$state, principal, $cost)
                {
                    return refused;
                }
                auth
            }
            None => return redirect("/tableau/connexion"),
        }
    };
}

/// Who is signed in, as the header shows it.
async fn who(state: &PagesState, auth: &Authentication) -> views::Who {
    let me = ask(state, auth, "{ me { role institution { code name } } }", json!({})).await.unwrap_or_default();
    views::Who {
        role: me["me"]["role"].as_str().unwrap_or_default().to_owned(),
        institution: me["me"]["institution"]["name"].as_str().unwrap_or_default().to_owned(),
        code: me["me"]["institution"]["code"].as_str().unwrap_or_default().to_owned(),
    }
}

const OVERVIEW: &str = "{
  reconciliation {
    envelopes { regionCode compartment notified committed headroom }
    statusCounts { status count }
    findingCounts { code severity count }
    needsCoverage { masked threshold rows { regionCode departementCode orientationCodes peopleWaiting cretonAdults programmedSolutions coverageRatio } }
    schoolMatching { regionCode academieCode year plannedCost committed balance }
  }
}";

const MEASURES: &str = "query ($status: CoFinancingStatus) {
  coFinancingStatus(filter: { status: $status }, first: 100) {
    totalCount
    nodes { status awaitedCofinancerCode measure { id reference label departementCode categoryCode solutions } findings { code message } }
  }
}";

/// `GET /tableau`: where the territory stands.
pub async fn overview(State(state): State<PagesState>, headers: HeaderMap) -> Response {
    let auth = signed_in!(state, headers);
    let (csrf, set) = csrf_of(&headers, state.secure_cookies);
    let who = who(&state, &auth).await;
    let report = ask(&state, &auth, OVERVIEW, json!({})).await;
    // Measure by measure only for those who may see them (a dashboard sees aggregates).
    let measures = ask(&state, &auth, MEASURES, json!({ "status": null })).await.ok();
    let live = matches!(&auth, Authentication::Authenticated(p) if may_follow_live(p));
    html(StatusCode::OK, views::overview(&who, &csrf, report, measures.as_ref(), live), set)
}

#[derive(Deserialize, Default)]
pub struct MeasuresQuery {
    statut: Option<String>,
}

/// `GET /tableau/mesures?statut=…`: the measures behind a co-financing status.
pub async fn measures(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Query(query): Query<MeasuresQuery>,
) -> Response {
    let auth = signed_in!(state, headers);
    let (csrf, set) = csrf_of(&headers, state.secure_cookies);
    let who = who(&state, &auth).await;
    let status = query.statut.filter(|s| !s.is_empty());
    let answer = ask(&state, &auth, MEASURES, json!({ "status": status })).await;
    html(StatusCode::OK, views::measures(&who, &csrf, status.as_deref(), answer), set)
}

const FINDINGS: &str = "{ reconciliation { findings { code severity message regionCode departementCodes subject subjectKind figures { name value unit } } } }";

/// Filters of the findings list (French names, as in the page's address).
#[derive(Deserialize, Default, Clone)]
pub struct FindingFilter {
    pub code: Option<String>,
    pub severite: Option<String>,
    pub departement: Option<String>,
    pub categorie: Option<String>,
    pub annee: Option<String>,
}

impl FindingFilter {
    fn given(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }

    /// Whether a finding passes the filters; a category or a year is matched against the finding's figures.
    /// Whether a finding passes the code, severity and département filters (a category or a year is a measure's:
    /// `findings_of` asks the API for the measures that have them).
    fn keeps(&self, finding: &Value) -> bool {
        Self::given(&self.code).is_none_or(|c| finding["code"] == c)
            && Self::given(&self.severite).is_none_or(|s| finding["severity"] == s)
            && Self::given(&self.departement)
                .is_none_or(|d| finding["departementCodes"].as_array().is_some_and(|ds| ds.iter().any(|x| x == d)))
    }

    fn query_string(&self) -> String {
        let pairs = [
            ("code", &self.code),
            ("severite", &self.severite),
            ("departement", &self.departement),
            ("categorie", &self.categorie),
            ("annee", &self.annee),
        ];
        pairs
            .iter()
            .filter_map(|(k, v)| Self::given(v).map(|v| format!("{k}={}", percent(v))))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes a query value (letters, digits and `-_.~` as they are).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The findings of the measures of a category or an installation year, as the API filters them.
const MEASURE_FINDINGS: &str = "query ($category: String, $year: Int, $after: String) {
  coFinancingStatus(filter: { categoryCode: $category, year: $year }, first: 1000, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { findings { code severity message regionCode departementCodes subject subjectKind figures { name value unit } } }
  }
}";

/// Every finding the person sees, and those the filters keep.
async fn findings_of(
    state: &PagesState,
    auth: &Authentication,
    filter: &FindingFilter,
) -> Result<(Vec<Value>, Vec<Value>), Vec<String>> {
    let answer = ask(state, auth, FINDINGS, json!({})).await?;
    let all: Vec<Value> = answer["reconciliation"]["findings"].as_array().cloned().unwrap_or_default();
    let category = FindingFilter::given(&filter.categorie);
    let year = FindingFilter::given(&filter.annee);
    if category.is_none() && year.is_none() {
        let kept = all.iter().filter(|f| filter.keeps(f)).cloned().collect();
        return Ok((all, kept));
    }
    let year: Option<i64> = match year.map(str::parse).transpose() {
        Ok(year) => year,
        Err(_) => return Err(vec!["Année : un nombre est attendu (2026).".to_owned()]),
    };
    let mut kept = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let variables = json!({ "category": category, "year": year, "after": after });
        let page = ask(state, auth, MEASURE_FINDINGS, variables).await?;
        let connection = &page["coFinancingStatus"];
        for node in connection["nodes"].as_array().into_iter().flatten() {
            kept.extend(node["findings"].as_array().into_iter().flatten().filter(|f| filter.keeps(f)).cloned());
        }
        match connection["pageInfo"]["endCursor"].as_str() {
            Some(cursor) if connection["pageInfo"]["hasNextPage"] == true => after = Some(cursor.to_owned()),
            _ => break,
        }
    }
    Ok((all, kept))
}

/// `GET /tableau/constats`: the findings, filtered.
pub async fn findings(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Query(filter): Query<FindingFilter>,
) -> Response {
    let auth = signed_in!(state, headers, crate::http::rate_limits::EXPORT_COST);
    let (csrf, set) = csrf_of(&headers, state.secure_cookies);
    let who = who(&state, &auth).await;
    let found = findings_of(&state, &auth, &filter).await;
    html(StatusCode::OK, views::findings(&who, &csrf, &filter, &filter.query_string(), found), set)
}

/// `GET /tableau/export/constats.csv` and `.xlsx`: the same filtered list as a spreadsheet.
pub async fn findings_export(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Path(file): Path<String>,
    Query(filter): Query<FindingFilter>,
) -> Response {
    let auth = signed_in!(state, headers);
    let (kept, format) = match (findings_of(&state, &auth, &filter).await, file.as_str()) {
        (Ok((_, kept)), "constats.csv") => (kept, "csv"),
        (Ok((_, kept)), "constats.xlsx") => (kept, "xlsx"),
        (Err(messages), _) => {
            let status = if messages.iter().any(|m| m.starts_with("Année")) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::FORBIDDEN
            };
            return (status, messages.join(" ; ")).into_response();
        }
        _ => return (StatusCode::NOT_FOUND, "export inconnu : constats.csv ou constats.xlsx").into_response(),
    };
    let headers_row = ["Code", "Gravité", "Région", "Départements", "Objet", "Message", "Chiffres"];
    let rows: Vec<Vec<String>> = kept
        .iter()
        .map(|f| {
            let figures: Vec<String> = f["figures"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| format!("{} = {} {}", text(&g["name"]), text(&g["value"]), text(&g["unit"])).trim().to_owned())
                .collect();
            vec![
                text(&f["code"]),
                text(&f["severity"]),
                text(&f["regionCode"]),
                f["departementCodes"].as_array().into_iter().flatten().map(text).collect::<Vec<_>>().join(", "),
                text(&f["subject"]),
                text(&f["message"]),
                figures.join(" | "),
            ]
        })
        .collect();
    // Findings are not for shared caches.
    let no_store = (header::CACHE_CONTROL, "no-store");
    if format == "csv" {
        return ([(header::CONTENT_TYPE, "text/csv; charset=utf-8"), no_store], write_csv(&headers_row, &rows))
            .into_response();
    }
    match write_xlsx("Constats", &headers_row, &[CellKind::Text; 7], &rows) {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), no_store],
            bytes,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err).into_response(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

const MEASURE: &str = "query ($id: ID!) {
  measure(id: $id) {
    id reference label regionCode departementCode categoryCode solutions unit nature compartment plannedInstallation status version updatedAt updatedBy
    commitments { id funder funderCode costComponent fullYearAmount capacity installationDate decisionRef status version }
    history {
      versions { version recordedAt recordedBy submissionId measure { label solutions plannedInstallation status } }
      statusChanges { previousStatus status findingCodes recordedAt }
    }
  }
}";

/// `GET /tableau/mesures/{id}`: a measure, its commitments, versions and status history.
pub async fn measure(State(state): State<PagesState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let auth = signed_in!(state, headers);
    let (csrf, set) = csrf_of(&headers, state.secure_cookies);
    let who = who(&state, &auth).await;
    let answer = ask(&state, &auth, MEASURE, json!({ "id": id })).await;
    // Its escalations, for those who may read them.
    let escalations = ask(
        &state,
        &auth,
        "query ($id: ID!) { escalations(filter: { measureId: $id }) { state findingCode reason openedBy createdAt messages { institutionCode text stateAfter createdAt } } }",
        json!({ "id": id }),
    )
    .await
    .ok();
    let status = if answer.is_ok() { StatusCode::OK } else { StatusCode::NOT_FOUND };
    html(status, views::measure(&who, &csrf, answer, escalations.as_ref()), set)
}

/// `GET /tableau/campagnes`: per institution, submitted, late or missing against each campaign's deadline.
pub async fn campaigns(State(state): State<PagesState>, headers: HeaderMap) -> Response {
    let auth = signed_in!(state, headers);
    let (csrf, set) = csrf_of(&headers, state.secure_cookies);
    let who = who(&state, &auth).await;
    let listed = ask(&state, &auth, "{ campaigns { id name dataKind opensOn deadline closesOn } }", json!({})).await;
    let mut campaigns = Vec::new();
    if let Ok(listed) = &listed {
        for campaign in listed["campaigns"].as_array().into_iter().flatten() {
            let status = ask(
                &state,
                &auth,
                "query ($id: ID!) { campaignStatus(campaignId: $id) { institutionCode institutionName standing submissions lastSubmissionAt } }",
                json!({ "id": campaign["id"] }),
            )
            .await;
            campaigns.push((campaign.clone(), status));
        }
    }
    html(StatusCode::OK, views::campaigns(&who, &csrf, listed.map(|_| campaigns)), set)
}

const STEERING: &str = "query ($asOf: DateTime) { steeringReport(asOf: $asOf) { asOf regions
    envelopes { regionCode compartment notified programmed committed installed cpCalled }
    credits { regionCode compartment year aeProgrammed cpCalled trajectoryAe trajectoryCp }
    drawing { regionCode year cpCalled drawingRights forecastCp forecastSolutions }
    statuses { regionCode status count } findings { code message } openEscalations { regionCode open } } }";

#[derive(Deserialize)]
pub struct SteeringQuery {
    date: Option<String>,
}

/// The pack's instant from the page's date field (the end of that day, Paris time; now for today): None without a
/// date, Err when unreadable.
fn pack_instant(date: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    match date.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(|day| Some(crate::calendar::deadline_end(day).with_timezone(&chrono::Utc).min(chrono::Utc::now())))
            .map_err(|_| format!("date « {d} » illisible : AAAA-MM-JJ attendu")),
    }
}

/// `GET /tableau/pilotage?date=`: the national steering committee's pack as of a date.
pub async fn steering(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Query(query): Query<SteeringQuery>,
) -> Response {
    let auth = signed_in!(state, headers);
    let (csrf, set) = csrf_of(&headers, state.secure_cookies);
    let who = who(&state, &auth).await;
    let date = query.date.as_deref().map(str::trim).filter(|d| !d.is_empty());
    let answer = match pack_instant(date) {
        Ok(at) => ask(&state, &auth, STEERING, json!({ "asOf": at })).await,
        Err(message) => Err(vec![message]),
    };
    let allowed = auth.principal().is_some_and(|p| {
        crate::access::policy::reach(
            p.role,
            crate::access::policy::Resource::SteeringReport,
            crate::access::policy::Action::Read,
        )
        .is_some()
    });
    let status = match (&answer, allowed) {
        (Ok(_), _) => StatusCode::OK,
        (Err(_), false) => StatusCode::FORBIDDEN,
        (Err(_), true) => StatusCode::BAD_REQUEST,
    };
    html(status, views::steering(&who, &csrf, date, answer), set)
}

/// `GET /tableau/export/dossier.xlsx?date=`: the same pack as a workbook, for the signed-in person.
pub async fn steering_export(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Query(query): Query<SteeringQuery>,
) -> Response {
    let auth = signed_in!(state, headers, crate::http::rate_limits::EXPORT_COST);
    let Some(principal) = auth.principal() else { return redirect("/tableau/connexion") };
    let at = match pack_instant(query.date.as_deref()) {
        Ok(at) => at.unwrap_or_else(chrono::Utc::now),
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let reach = match crate::access::policy::require(
        principal,
        crate::access::policy::Resource::SteeringReport,
        crate::access::policy::Action::Read,
    ) {
        Ok(reach) => reach,
        Err(err) => return (StatusCode::FORBIDDEN, err.to_string()).into_response(),
    };
    let catalog = &state.gate.catalog;
    let regions = match crate::steering::report::regions_of(principal, reach, catalog, None) {
        Ok(regions) => regions,
        Err(err) => return (StatusCode::FORBIDDEN, err.to_string()).into_response(),
    };
    let territory = std::sync::Arc::new(crate::reconciled::snapshot::territory(catalog));
    let unmasked = principal.scope.is_national() && reach == crate::access::policy::Reach::Everything;
    let pack =
        crate::steering::report::build(&state.db, catalog, territory, regions, at, unmasked, state.masking_threshold)
            .await;
    let bytes = match pack.map_err(|e| e.to_string()).and_then(|pack| crate::files::export::steering_workbook(&pack)) {
        Ok(bytes) => bytes,
        Err(err) => return (StatusCode::BAD_REQUEST, err).into_response(),
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    );
    headers
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"dossier-comite.xlsx\""));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /tableau/direct`: co-financing status changes of the person's territory as server-sent events, from the
/// GraphQL subscription (same policy and territory). The stream ends when the session stops being valid (expired,
/// revoked, institution suspended: checked on every access-list change and every second) or the hub shuts down.
pub async fn live(State(state): State<PagesState>, headers: HeaderMap) -> Response {
    let (Some(auth), Some(session_id)) = (session(&state, &headers).await, session_id(&headers)) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Authentication::Authenticated(principal) = &auth else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    // Refused before streaming (EventSource gives up on a non-200): no reconnection loop for a dashboard.
    if !may_follow_live(principal) {
        return StatusCode::FORBIDDEN.into_response();
    }
    // A stream opened is charged as a page view: reopening it in a loop spends the session's read budget.
    if let Some(refused) = throttled(&state, principal, crate::http::rate_limits::PAGE_COST) {
        return refused;
    }
    let principal = (**principal).clone();
    let access = state.gate.access.clone();
    let lifecycle = state.lifecycle.clone();
    let db = state.db.clone();
    let end = async move {
        let mut changes = access.watch();
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let still_valid = async {
            for tick in 1u64.. {
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = ticks.tick() => {}
                }
                if access.check(&principal, chrono::Utc::now()).is_err() {
                    return;
                }
                // A sign-out (in another tab, on another instance) is seen within SESSION_RECHECK ticks.
                if tick % SESSION_RECHECK == 0 && !session::is_open(&db, &session_id).await {
                    return;
                }
            }
        };
        tokio::select! {
            () = still_valid => {}
            () = lifecycle.stopped() => {}
        }
    };
    let request = Request::new(
        "subscription { coFinancingStatusChanged { measureId regionCode departementCode previousStatus status findingCodes at } }",
    )
    .data(auth);
    let stream = state.executor.guarded().execute_stream(request).take_until(Box::pin(end)).map(|response| {
        let event = if response.errors.is_empty() {
            let data = serde_json::to_value(&response.data).unwrap_or_default();
            Event::default().event("statut").data(data["coFinancingStatusChanged"].to_string())
        } else {
            Event::default().event("erreur").data(response.errors[0].message.clone())
        };
        Ok::<_, Infallible>(event)
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Every how many seconds a live stream asks whether its session was ended.
const SESSION_RECHECK: u64 = 5;

/// Whether the person may follow status changes live (the overview shows the live list only then).
fn may_follow_live(principal: &crate::access::principal::Principal) -> bool {
    crate::access::policy::reach(
        principal.role,
        crate::access::policy::Resource::CoFinancing,
        crate::access::policy::Action::Read,
    )
    .is_some()
}

/// `GET /tableau/connexion`: the sign-in form (development: a role and a territory).
pub async fn sign_in_form(State(state): State<PagesState>, headers: HeaderMap) -> Response {
    let (csrf, set) = csrf_of(&headers, state.secure_cookies);
    html(
        StatusCode::OK,
        views::sign_in(&csrf, state.dev_secret.is_some(), state.oidc.as_ref().map(|o| o.name.as_str()), None),
        set,
    )
}

#[derive(Deserialize)]
pub struct SignIn {
    csrf: String,
    role: String,
    territoire: Option<String>,
}

/// `POST /tableau/connexion`: mints a development token for the chosen role and territory, kept as the session.
pub async fn sign_in(State(state): State<PagesState>, headers: HeaderMap, Form(form): Form<SignIn>) -> Response {
    let (csrf, set) = csrf_of(&headers, state.secure_cookies);
    let refuse = |status, message: &str| {
        html(
            status,
            views::sign_in(
                &csrf,
                state.dev_secret.is_some(),
                state.oidc.as_ref().map(|o| o.name.as_str()),
                Some(message),
            ),
            set.clone(),
        )
    };
    if !csrf_ok(&headers, &form.csrf) {
        return refuse(StatusCode::FORBIDDEN, "Le formulaire a expiré : rechargez la page et recommencez.");
    }
    if state.dev_secret.is_none() {
        return refuse(StatusCode::NOT_FOUND, "La connexion de développement n'est pas disponible sur ce hub.");
    };
    let Some(role) = Role::parse(&form.role) else {
        return refuse(StatusCode::BAD_REQUEST, "Rôle inconnu.");
    };
    let territory = form.territoire.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let mut request = DevTokenRequest { role: Some(role), ..Default::default() };
    match role {
        Role::Ars | Role::Dashboard => request.region = territory,
        Role::Collectivite | Role::Mdph => request.departement = territory,
        Role::Rectorat => request.academie = territory,
        Role::Cnsa | Role::Admin => {}
    }
    let reference = match migration::reference::parse::parse(&migration::reference::Sources::embedded()) {
        Ok(reference) => reference,
        Err(err) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    };
    let institution = match institution_for(&request, &reference) {
        Ok(code) => state.gate.access.institution(&code),
        Err(err) => return refuse(StatusCode::BAD_REQUEST, &format!("Territoire refusé : {err}")),
    };
    let Some(institution) = institution else {
        return refuse(StatusCode::BAD_REQUEST, "Institution inconnue du hub.");
    };
    let identity = Identity {
        asked_role: Some(role.as_str()),
        agent_id: Some("agent.tableau@cnh-hub.invalid".to_owned()),
        token_id: None,
        issuer: session::DEVELOPMENT.to_owned(),
        expires_at: None,
        service_account: false,
    };
    let principal = match principal_of(&state.gate.catalog, institution, identity) {
        Ok(principal) => principal,
        Err(err) => return refuse(StatusCode::FORBIDDEN, &format!("Connexion refusée : {}", err.public_message())),
    };
    end_previous(&state, &headers).await;
    match session::open(&state.db, &principal, None, SESSION_TTL).await {
        Ok(session) => signed_in_at(&state, &session),
        Err(err) => {
            tracing::warn!(%err, "page session not stored");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "Session impossible à ouvrir : réessayez.")
        }
    }
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: String,
}

/// `POST /tableau/deconnexion`: ends the session (on every instance), then, for a ProConnect session, signs out at
/// the provider too, which sends the person back to the sign-in form.
pub async fn sign_out(State(state): State<PagesState>, headers: HeaderMap, Form(form): Form<SignOut>) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return (StatusCode::FORBIDDEN, "Formulaire expiré : rechargez la page.").into_response();
    }
    let ended = match session_id(&headers) {
        Some(id) => match session::end(&state.db, &id).await {
            Ok(ended) => ended,
            Err(err) => {
                tracing::warn!(%err, "page session not ended");
                return (StatusCode::SERVICE_UNAVAILABLE, "Déconnexion impossible pour l'instant : réessayez.")
                    .into_response();
            }
        },
        None => None,
    };
    let at_provider = match (&state.oidc, ended) {
        (Some(oidc), Some(row)) if row.issuer == oidc.name => match row.id_token {
            Some(hint) => oidc::end_session_url(&state, oidc, &hint).await,
            None => None,
        },
        _ => None,
    };
    let mut response = redirect(at_provider.as_deref().unwrap_or("/tableau/connexion"));
    response.headers_mut().append(header::SET_COOKIE, cookie(SESSION_COOKIE, "", Some(0), state.secure_cookies));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_header_line() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; cnh_csrf=0123456789abcdef0123456789abcdef"));
        headers.append(header::COOKIE, HeaderValue::from_static("cnh_session=tok"));
        let read = cookies(&headers);
        assert_eq!(read.get("cnh_session").map(String::as_str), Some("tok"));
        assert!(csrf_ok(&headers, "0123456789abcdef0123456789abcdef"));
        assert!(!csrf_ok(&headers, "ffff456789abcdef0123456789abcdef"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        headers.insert(header::HOST, HeaderValue::from_static("hub.example"));
        assert!(!csrf_ok(&headers, "0123456789abcdef0123456789abcdef"), "another origin is refused");
    }

    #[test]
    fn filters_keep_what_they_name() {
        let finding = json!({ "code": "ENVELOPE_EXCEEDED", "severity": "ERROR", "departementCodes": ["69"] });
        let filter = |code: &str, dep: &str, severity: &str| FindingFilter {
            code: Some(code.into()),
            departement: Some(dep.into()),
            severite: Some(severity.into()),
            ..Default::default()
        };
        assert!(filter("ENVELOPE_EXCEEDED", "69", "ERROR").keeps(&finding));
        assert!(filter("", "", "").keeps(&finding));
        assert!(!filter("OTHER", "", "").keeps(&finding));
        assert!(!filter("", "75", "").keeps(&finding));
        assert!(!filter("", "", "WARNING").keeps(&finding));
        assert_eq!(filter("A B", "", "").query_string(), "code=A%20B");
    }
}
