//! Signing in to the pages with the issuer marked for people (ProConnect): OpenID Connect authorization code flow
//! with PKCE (RFC 7636, S256), `state` against cross-site requests and `nonce` against a replayed ID token.
//!
//! As ProConnect behaves: its ID token lives about a minute and says little (`sub`, `nonce`, `acr`); who the person
//! is (`uid`, `email`, `siret`) comes from the userinfo endpoint, answered as a signed JWT. So the hub verifies the
//! ID token (keys, issuer, audience, expiry, nonce), fetches userinfo with the access token, verifies it when signed
//! and checks that its `sub` is the ID token's, finds the institution by SIRET as for any token of the issuer, then
//! opens a page session of its own (`session`). Signing out ends that session and, when the provider offers an
//! `end_session_endpoint`, the provider's too (`id_token_hint`, `post_logout_redirect_uri`).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{PagesState, cookie, cookies, html, redirect, views};
use crate::access::authenticator::{Purpose, VerifiedToken, resolve_principal};
use crate::access::issuers::SignInClient;

/// The cookie holding a sign-in under way: `state.nonce.verifier`, for ten minutes.
const FLOW_COOKIE: &str = "cnh_oidc";
const FLOW_SECONDS: u64 = 600;

/// The issuer people sign in with, and the hub's client registration there.
#[derive(Clone)]
pub struct OidcSignIn {
    pub name: String,
    pub discovery_url: String,
    pub client: SignInClient,
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The PKCE challenge of a verifier: BASE64URL(SHA-256(verifier)).
pub fn challenge(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

fn random_hex() -> String {
    format!("{:032x}", uuid::Uuid::new_v4().as_u128())
}

/// The issuer's endpoints, from its discovery document.
pub(super) struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    pub(super) end_session_endpoint: Option<String>,
    /// `client_secret_basic` unless the issuer offers only `client_secret_post` (ProConnect).
    secret_in_body: bool,
}

pub(super) async fn discover(state: &PagesState, oidc: &OidcSignIn) -> Result<Discovery, String> {
    let document: Value = state
        .http
        .get(&oidc.discovery_url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{} ne répond pas ({e})", oidc.name))?
        .json()
        .await
        .map_err(|e| format!("document de découverte illisible ({e})"))?;
    let optional = |name: &str| document[name].as_str().map(str::to_owned);
    let field = |name: &str| optional(name).ok_or(format!("{name} absent de la découverte"));
    // OpenID Connect Discovery: absent means client_secret_basic.
    let methods: Vec<&str> = document["token_endpoint_auth_methods_supported"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["client_secret_basic"]);
    Ok(Discovery {
        authorization_endpoint: field("authorization_endpoint")?,
        token_endpoint: field("token_endpoint")?,
        userinfo_endpoint: optional("userinfo_endpoint"),
        end_session_endpoint: optional("end_session_endpoint"),
        secret_in_body: !methods.contains(&"client_secret_basic") && methods.contains(&"client_secret_post"),
    })
}

fn failed(state: &PagesState, headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    let (csrf, set) = super::csrf_of(headers, state.secure_cookies);
    html(
        status,
        views::sign_in(&csrf, state.dev_secret.is_some(), state.oidc.as_ref().map(|o| o.name.as_str()), Some(message)),
        set,
    )
}

/// `GET /tableau/connexion/oidc`: off to the issuer, with a fresh state, nonce and PKCE verifier.
pub async fn start(State(state): State<PagesState>, headers: HeaderMap) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return failed(&state, &headers, StatusCode::NOT_FOUND, "Aucun fournisseur d'identité n'est configuré.");
    };
    let authorize = match discover(&state, &oidc).await {
        Ok(discovery) => discovery.authorization_endpoint,
        Err(message) => return failed(&state, &headers, StatusCode::BAD_GATEWAY, &message),
    };
    let (flow_state, nonce, verifier) = (random_hex(), random_hex(), format!("{}{}", random_hex(), random_hex()));
    let Ok(mut url) = reqwest::Url::parse(&authorize) else {
        return failed(&state, &headers, StatusCode::BAD_GATEWAY, "authorization_endpoint illisible");
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.client.client_id)
        .append_pair("redirect_uri", &oidc.client.redirect_uri)
        .append_pair("scope", &oidc.client.scopes)
        .append_pair("state", &flow_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    let mut response = redirect(url.as_str());
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(FLOW_COOKIE, &format!("{flow_state}.{nonce}.{verifier}"), Some(FLOW_SECONDS), state.secure_cookies),
    );
    response
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /tableau/connexion/retour`: the issuer sends the person back with a code; the hub exchanges it (with the
/// PKCE verifier), verifies the ID token and its nonce, and opens the session.
pub async fn finish(State(state): State<PagesState>, headers: HeaderMap, Query(callback): Query<Callback>) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return failed(&state, &headers, StatusCode::NOT_FOUND, "Aucun fournisseur d'identité n'est configuré.");
    };
    let flow = cookies(&headers).remove(FLOW_COOKIE).unwrap_or_default();
    let mut parts = flow.splitn(3, '.');
    let (Some(expected_state), Some(nonce), Some(verifier)) = (parts.next(), parts.next(), parts.next()) else {
        return failed(&state, &headers, StatusCode::BAD_REQUEST, "Aucune connexion en cours : recommencez.");
    };
    // The provider's refusal is told only for this browser's sign-in, in the hub's words (its text is not echoed).
    if callback.error.is_some() && callback.state.as_deref() == Some(expected_state) {
        tracing::info!(error = ?callback.error, description = ?callback.error_description, "sign-in refused by the provider");
        let message = format!("{} a refusé la connexion : recommencez.", oidc.name);
        return failed(&state, &headers, StatusCode::UNAUTHORIZED, &message);
    }
    let (Some(code), Some(given_state)) = (callback.code, callback.state) else {
        return failed(&state, &headers, StatusCode::BAD_REQUEST, "Réponse du fournisseur incomplète.");
    };
    if given_state != expected_state || expected_state.is_empty() {
        return failed(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            "Cette réponse ne correspond à aucune connexion en cours.",
        );
    }
    let discovery = match discover(&state, &oidc).await {
        Ok(discovery) => discovery,
        Err(message) => return failed(&state, &headers, StatusCode::BAD_GATEWAY, &message),
    };
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", oidc.client.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ];
    let mut exchange = state.http.post(&discovery.token_endpoint);
    if discovery.secret_in_body {
        form.extend([("client_id", oidc.client.client_id.as_str()), ("client_secret", &oidc.client.client_secret)]);
    } else {
        exchange = exchange.basic_auth(&oidc.client.client_id, Some(&oidc.client.client_secret));
    }
    let answer: Value = match exchange.form(&form).send().await {
        Ok(response) if response.status().is_success() => response.json().await.unwrap_or_default(),
        Ok(response) => {
            let status = response.status().as_u16();
            return failed(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &format!("Le fournisseur a refusé le code (HTTP {status}) : recommencez."),
            );
        }
        Err(err) => {
            return failed(&state, &headers, StatusCode::BAD_GATEWAY, &format!("{} ne répond pas ({err})", oidc.name));
        }
    };
    let Some(id_token) = answer["id_token"].as_str() else {
        return failed(&state, &headers, StatusCode::UNAUTHORIZED, "Pas de jeton d'identité dans la réponse.");
    };
    let refused = |message: String| failed(&state, &headers, StatusCode::UNAUTHORIZED, &message);
    // Signature, issuer, audience, expiry: the issuer's rules; another trusted issuer's token has no business here.
    let verified = match state.gate.authenticator.verify_for(id_token, Purpose::IdToken).await {
        Ok(verified) if verified.issuer_name == oidc.name => verified,
        Ok(_) => return refused("Jeton d'identité refusé.".to_owned()),
        Err(err) => return refused(format!("Jeton d'identité refusé : {}", err.public_message())),
    };
    if verified.claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return refused("Jeton d'identité rejoué ou destiné à une autre connexion.".to_owned());
    }
    let claims = match (&discovery.userinfo_endpoint, answer["access_token"].as_str()) {
        (Some(endpoint), Some(access_token)) => {
            match userinfo(&state, &oidc, endpoint, access_token, &verified).await {
                Ok(claims) => claims,
                Err(message) => return failed(&state, &headers, StatusCode::BAD_GATEWAY, &message),
            }
        }
        // An issuer without userinfo says everything in its ID token.
        _ => verified.claims.clone(),
    };
    let identity = VerifiedToken { claims, ..verified };
    // The institution by SIRET (or code), suspension, role: as for any token of this issuer.
    let principal = match resolve_principal(&state.gate.access, &state.gate.catalog, &identity) {
        Ok(principal) => principal,
        Err(err) => return refused(format!("Connexion refusée : {}", err.public_message())),
    };
    super::end_previous(&state, &headers).await;
    let session = match super::session::open(&state.db, &principal, Some(id_token), super::SESSION_TTL).await {
        Ok(session) => session,
        Err(err) => {
            tracing::warn!(%err, "page session not stored");
            return failed(
                &state,
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                "Session impossible à ouvrir : réessayez.",
            );
        }
    };
    let mut response = super::signed_in_at(&state, &session);
    response.headers_mut().append(header::SET_COOKIE, cookie(FLOW_COOKIE, "", Some(0), state.secure_cookies));
    response
}

/// Who the person is, from the userinfo endpoint (a signed JWT, as ProConnect answers, or JSON): the ID token's
/// claims completed by userinfo's. Its `sub` must be the ID token's (OpenID Connect Core 5.3.2).
async fn userinfo(
    state: &PagesState,
    oidc: &OidcSignIn,
    endpoint: &str,
    access_token: &str,
    verified: &VerifiedToken,
) -> Result<serde_json::Map<String, Value>, String> {
    let unavailable =
        |e: &dyn std::fmt::Display| format!("{} : informations de l'agent indisponibles ({e})", oidc.name);
    let response = state
        .http
        .get(endpoint)
        .bearer_auth(access_token)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| unavailable(&e))?;
    let signed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/jwt"));
    let text = response.text().await.map_err(|e| unavailable(&e))?;
    let info = if signed {
        let document = state
            .gate
            .authenticator
            .verify_for(text.trim(), Purpose::UserInfo)
            .await
            .map_err(|e| unavailable(&e.public_message()))?;
        if document.issuer_name != oidc.name {
            return Err(unavailable(&"signées par un autre émetteur"));
        }
        document.claims
    } else {
        serde_json::from_str(&text).map_err(|e| unavailable(&e))?
    };
    if info.get("sub") != verified.claims.get("sub") || info.get("sub").is_none() {
        return Err(unavailable(&"elles ne concernent pas la personne connectée"));
    }
    let mut claims = verified.claims.clone();
    for (name, value) in info {
        // The ID token's registered claims stay as verified.
        if !matches!(name.as_str(), "iss" | "aud" | "exp" | "iat" | "nbf" | "nonce" | "jti") {
            claims.insert(name, value);
        }
    }
    Ok(claims)
}

/// Where to send a person signing out so that the provider ends its session too: its `end_session_endpoint` with
/// the session's ID token as hint (RP-Initiated Logout 1.0). None when the provider offers none or cannot be reached:
/// the hub's session is ended anyway.
pub(super) async fn end_session_url(state: &PagesState, oidc: &OidcSignIn, id_token: &str) -> Option<String> {
    let endpoint = discover(state, oidc).await.ok()?.end_session_endpoint?;
    let mut url = reqwest::Url::parse(&endpoint).ok()?;
    let back = match &oidc.client.post_logout_redirect_uri {
        Some(uri) => uri.clone(),
        None => {
            let mut back = reqwest::Url::parse(&oidc.client.redirect_uri).ok()?;
            back.set_path("/tableau/connexion");
            back.set_query(None);
            back.to_string()
        }
    };
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("state", &random_hex())
        .append_pair("post_logout_redirect_uri", &back);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
