//! Fetching a source over HTTP: connect and total timeouts, a cap on the answer's size (read as it streams),
//! conditional requests (a 304 means nothing to do), credentials (bearer token or OAuth2 client credentials),
//! retries of what may pass on a second try with exponential backoff and jitter.

use entities::pull_source;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde_json::json;

use super::PullSettings;
use super::{auth_kind, format};
use crate::exchange::dispatch::{backoff_delay, unit_random};

/// What the source answered.
#[derive(Debug)]
pub enum Fetched {
    /// 304: the document has not changed since the validators sent.
    NotModified,
    /// A 2xx answer's body, with its validators for the next request.
    Body { status: u16, bytes: Vec<u8>, etag: Option<String>, last_modified: Option<String> },
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    pub status: Option<u16>,
    pub message: String,
    /// Worth another attempt within the run: connection refused, timeout, 5xx, 408, 429.
    pub retryable: bool,
}

impl FetchError {
    fn new(status: Option<u16>, message: impl Into<String>, retryable: bool) -> Self {
        FetchError { status, message: message.into(), retryable }
    }
}

fn transport(err: &reqwest::Error, what: &str) -> FetchError {
    let kind = if err.is_timeout() {
        "délai dépassé"
    } else if err.is_connect() {
        "connexion impossible"
    } else {
        "échec de la requête"
    };
    // Timeouts and refused connections pass; a malformed URL or TLS refusal will not.
    FetchError::new(None, format!("{what} : {kind} ({err})"), err.is_timeout() || err.is_connect() || err.is_request())
}

fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS
}

/// Reads a body up to `max_bytes`, refusing a larger one as soon as it shows (announced or streamed).
async fn capped_body(mut response: reqwest::Response, max_bytes: usize, what: &str) -> Result<Vec<u8>, FetchError> {
    let status = Some(response.status().as_u16());
    let too_large = |seen: u64| {
        FetchError::new(
            status,
            format!("{what} : réponse trop volumineuse ({seen} octets au moins, {max_bytes} au plus)"),
            false,
        )
    };
    if let Some(length) = response.content_length()
        && length > max_bytes as u64
    {
        return Err(too_large(length));
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > max_bytes {
                    return Err(too_large((bytes.len() + chunk.len()) as u64));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(err) => return Err(FetchError { status, ..transport(&err, what) }),
        }
    }
}

/// An access token from the source's OAuth2 token endpoint (client credentials grant, RFC 6749 §4.4).
async fn oauth_token(
    client: &reqwest::Client,
    source: &pull_source::Model,
    settings: &PullSettings,
) -> Result<String, FetchError> {
    let what = "jeton OAuth2";
    let (Some(url), Some(id), Some(secret)) =
        (&source.oauth_token_url, &source.oauth_client_id, &source.oauth_client_secret)
    else {
        return Err(FetchError::new(None, format!("{what} : identifiants client incomplets"), false));
    };
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = source.oauth_scope.as_deref().filter(|s| !s.is_empty()) {
        form.push(("scope", scope));
    }
    let response = client
        .post(url)
        .basic_auth(id, Some(secret))
        .header(ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| transport(&e, what))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::new(
            Some(status.as_u16()),
            format!("{what} : le serveur d'autorisation a répondu HTTP {}", status.as_u16()),
            retryable_status(status),
        ));
    }
    let body = capped_body(response, settings.max_bytes.min(64 * 1024), what).await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| FetchError::new(Some(status.as_u16()), format!("{what} : réponse illisible"), false))?;
    value
        .get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| FetchError::new(Some(status.as_u16()), format!("{what} : pas d'access_token"), false))
}

/// One request to the source.
async fn fetch_once(
    client: &reqwest::Client,
    source: &pull_source::Model,
    settings: &PullSettings,
    token: Option<&str>,
) -> Result<Fetched, FetchError> {
    let what = "source";
    let mut headers = HeaderMap::new();
    let mut request = if source.format == format::GRAPHQL {
        let query = source.graphql_query.clone().unwrap_or_default();
        headers.insert(ACCEPT, "application/graphql-response+json, application/json".parse().expect("static header"));
        headers.insert(CONTENT_TYPE, "application/json".parse().expect("static header"));
        client.post(&source.url).body(json!({ "query": query }).to_string())
    } else {
        headers.insert(ACCEPT, "application/json".parse().expect("static header"));
        // Validators of the last document accepted: an unchanged one costs the source a 304 and the hub nothing.
        if let Some(etag) = source.etag.as_deref().and_then(|e| e.parse().ok()) {
            headers.insert(IF_NONE_MATCH, etag);
        }
        if let Some(date) = source.last_modified.as_deref().and_then(|d| d.parse().ok()) {
            headers.insert(IF_MODIFIED_SINCE, date);
        }
        client.get(&source.url)
    };
    request = request.headers(headers);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| transport(&e, what))?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(FetchError::new(
            Some(status.as_u16()),
            format!("{what} : HTTP {}", status.as_u16()),
            retryable_status(status),
        ));
    }
    let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
    let bytes = capped_body(response, settings.max_bytes, what).await?;
    Ok(Fetched::Body { status: status.as_u16(), bytes, etag, last_modified })
}

/// Fetches a source, trying again what may pass (up to `settings.attempts` in all). Returns the outcome and the
/// attempts made.
pub async fn fetch(
    client: &reqwest::Client,
    source: &pull_source::Model,
    settings: &PullSettings,
) -> (Result<Fetched, FetchError>, u32) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let token = match source.auth_kind.as_str() {
            auth_kind::BEARER => Ok(source.bearer_token.clone()),
            auth_kind::OAUTH2 => oauth_token(client, source, settings).await.map(Some),
            _ => Ok(None),
        };
        let outcome = match token {
            Ok(token) => fetch_once(client, source, settings, token.as_deref()).await,
            Err(err) => Err(err),
        };
        match outcome {
            Err(err) if err.retryable && attempts < settings.attempts => {
                let wait = backoff_delay(settings.retry_base, settings.retry_cap, attempts, unit_random());
                tracing::info!(source = %source.id, attempt = attempts, error = %err.message, wait_ms = wait.as_millis() as u64, "pull failed, trying again");
                tokio::time::sleep(wait).await;
            }
            other => return (other, attempts),
        }
    }
}
