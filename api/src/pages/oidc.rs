//! Signing in to the pages with the issuer marked for people (ProConnect): OpenID Connect authorization code flow
//! with PKCE (RFC 7636, S256), `state` against cross-site requests and `nonce` against a replayed ID token. The
//! ID token is then verified as any token of that issuer (keys, audience, expiry, institution by SIRET) and kept
//! as the session.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{PagesState, cookie, cookies, html, redirect, views};
use crate::access::issuers::SignInClient;
use crate::access::principal::Authentication;
use crate::http::authenticate_token;

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

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// The PKCE challenge of a verifier: BASE64URL(SHA-256(verifier)).
pub fn challenge(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

fn random_hex() -> String {
    format!("{:032x}", uuid::Uuid::new_v4().as_u128())
}

/// The issuer's endpoints, from its discovery document.
async fn endpoints(state: &PagesState, oidc: &OidcSignIn) -> Result<(String, String), String> {
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
    let field =
        |name: &str| document[name].as_str().map(str::to_owned).ok_or(format!("{name} absent de la découverte"));
    Ok((field("authorization_endpoint")?, field("token_endpoint")?))
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
    let (authorize, _) = match endpoints(&state, &oidc).await {
        Ok(endpoints) => endpoints,
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
    let (_, token_endpoint) = match endpoints(&state, &oidc).await {
        Ok(endpoints) => endpoints,
        Err(message) => return failed(&state, &headers, StatusCode::BAD_GATEWAY, &message),
    };
    let exchanged = state
        .http
        .post(&token_endpoint)
        .basic_auth(&oidc.client.client_id, Some(&oidc.client.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", oidc.client.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await;
    let answer: Value = match exchanged {
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
    // Signature, issuer, audience, expiry, institution: as for any token of this issuer.
    let principal = match authenticate_token(&state.gate, id_token).await {
        // Another trusted issuer's token has no business here.
        Ok(Authentication::Authenticated(principal)) if principal.issuer == oidc.name => principal,
        Ok(_) => return failed(&state, &headers, StatusCode::UNAUTHORIZED, "Jeton d'identité refusé."),
        Err(err) => {
            return failed(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &format!("Jeton d'identité refusé : {}", err.public_message()),
            );
        }
    };
    let claims =
        id_token.split('.').nth(1).and_then(base64url_decode).and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let claims = claims.unwrap_or_default();
    if claims["nonce"].as_str() != Some(nonce) {
        return failed(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            "Jeton d'identité rejoué ou destiné à une autre connexion.",
        );
    }
    let lifetime = principal.expires_at.map(|exp| (exp - chrono::Utc::now()).num_seconds().max(0) as u64);
    let mut response = redirect("/tableau");
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookie(super::SESSION_COOKIE, id_token, lifetime, state.secure_cookies));
    response.headers_mut().append(header::SET_COOKIE, cookie(FLOW_COOKIE, "", Some(0), state.secure_cookies));
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookie(super::CSRF_COOKIE, &super::new_csrf(), None, state.secure_cookies));
    response.into_response()
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
        assert_eq!(base64url_decode(&base64url(b"hello, world")).unwrap(), b"hello, world");
    }
}
