//! Trusted token issuers, configured in a JSON file (`CNH_ISSUERS_FILE`) and, for development, the built-in issuer
//! enabled by `CNH_DEV_JWT_SECRET`.
//!
//! ```json
//! { "issuers": [
//!   { "name": "proconnect", "issuer": "https://auth.agentconnect.gouv.fr/api/v2", "audience": "cnh-hub",
//!     "algorithms": ["RS256", "ES256"],
//!     "oidc": { "refresh_seconds": 3600, "min_refresh_seconds": 30 },
//!     "claims": { "siret": "siret", "agent": "uid" } },
//!   { "name": "mdph-m2m", "issuer": "https://m2m.example/realms/mdph", "audience": "cnh-hub",
//!     "algorithms": ["ES256"], "oidc": {}, "service_accounts": true,
//!     "claims": { "institution": "cnh_institution", "agent": "client_id" }, "require_jti": true }
//! ] }
//! ```

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// Issuer, audience and claims of the built-in development issuer (`CNH_DEV_JWT_SECRET`, `cnh-hub token`).
pub const DEV_ISSUER: &str = "cnh-hub-dev";
pub const DEV_AUDIENCE: &str = "cnh-hub";

#[derive(Debug, thiserror::Error)]
pub enum IssuerConfigError {
    #[error("cannot read the issuers file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("issuers file {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("issuer {0}: a shared HS256 secret is for development and tests only, refused in the production profile")]
    SecretInProduction(String),
    #[error("CNH_DEV_JWT_SECRET is set: the development issuer is refused in the production profile")]
    DevIssuerInProduction,
    #[error("CNH_DEV_JWT_SECRET must be at least 32 characters")]
    DevSecretTooShort,
}

/// How the hub finds an issuer's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A shared HMAC secret (development and tests only).
    SharedSecret(Vec<u8>),
    /// An OpenID Connect issuer: discovery document, then its JWKS, cached and refreshed.
    Oidc { discovery_url: String, refresh: Duration, min_refresh: Duration },
}

/// Which claims of the issuer's tokens say who the caller is.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    /// Claim holding the hub's institution code ("ARS-84").
    pub institution: Option<String>,
    /// Claim holding the institution's SIRET (ProConnect's `siret`), matched against the institutions table.
    pub siret: Option<String>,
    /// Claim identifying the agent or service account (`uid`, `email`, `client_id`, `sub`).
    pub agent: String,
    /// Claim by which a token may ask to act as a read-only dashboard (`"dashboard"`); no other role can be asked.
    pub role: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            institution: Some("institution".to_owned()),
            siret: Some("siret".to_owned()),
            agent: "sub".to_owned(),
            role: "cnh_role".to_owned(),
        }
    }
}

/// The hub as an OpenID Connect client of the issuer people sign in with (ProConnect): authorization code flow
/// with PKCE, for the dashboard pages. The ID token it receives is verified as any token of the issuer, so the
/// client id must be the issuer's audience.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInClient {
    pub client_id: String,
    pub client_secret: String,
    /// The hub's callback as registered with the issuer: `https://<hub>/tableau/connexion/retour`.
    pub redirect_uri: String,
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// Where the issuer sends the person after signing out there, as registered with it. Default: the sign-in form
    /// beside `redirect_uri` (`https://<hub>/tableau/connexion`).
    #[serde(default)]
    pub post_logout_redirect_uri: Option<String>,
}

fn default_scopes() -> String {
    "openid email uid siret".to_owned()
}

impl std::fmt::Debug for SignInClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedIssuer {
    pub name: String,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    pub audience: String,
    /// Accepted algorithms, pinned: a token signed with another is refused.
    pub algorithms: Vec<Algorithm>,
    pub keys: KeySource,
    pub claims: ClaimMapping,
    pub service_accounts: bool,
    pub leeway_seconds: u64,
    /// Tokens without a `jti` are refused: they could not be revoked one by one. By default in production.
    pub require_jti: bool,
    /// Set on the issuer people sign in with to the dashboard pages.
    pub sign_in: Option<SignInClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuersFile {
    issuers: Vec<IssuerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcEntry {
    discovery_url: Option<String>,
    refresh_seconds: Option<u64>,
    min_refresh_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerEntry {
    name: String,
    issuer: String,
    audience: String,
    algorithms: Vec<String>,
    oidc: Option<OidcEntry>,
    hs256_secret: Option<String>,
    #[serde(default)]
    claims: ClaimMapping,
    #[serde(default)]
    service_accounts: bool,
    leeway_seconds: Option<u64>,
    /// Default: true in production, false in development.
    require_jti: Option<bool>,
    sign_in: Option<SignInClient>,
}

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// Parses an issuers file's text.
pub fn parse_issuers(path: &str, text: &str, production: bool) -> Result<Vec<TrustedIssuer>, IssuerConfigError> {
    let invalid = |reason: String| IssuerConfigError::Invalid { path: path.to_owned(), reason };
    let file: IssuersFile = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut issuers = Vec::new();
    for entry in file.issuers {
        let algorithms = entry
            .algorithms
            .iter()
            .map(|a| algorithm(a).ok_or_else(|| invalid(format!("issuer {}: unknown algorithm {a}", entry.name))))
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err(invalid(format!("issuer {}: no algorithm accepted", entry.name)));
        }
        let keys = match (entry.oidc, entry.hs256_secret) {
            (Some(oidc), None) => {
                if algorithms.contains(&Algorithm::HS256) {
                    return Err(invalid(format!("issuer {}: HS256 cannot be verified with public keys", entry.name)));
                }
                KeySource::Oidc {
                    discovery_url: oidc.discovery_url.unwrap_or_else(|| {
                        format!("{}/.well-known/openid-configuration", entry.issuer.trim_end_matches('/'))
                    }),
                    refresh: Duration::from_secs(oidc.refresh_seconds.unwrap_or(3600).max(1)),
                    min_refresh: Duration::from_secs(oidc.min_refresh_seconds.unwrap_or(30)),
                }
            }
            (None, Some(secret)) => {
                if production {
                    return Err(IssuerConfigError::SecretInProduction(entry.name));
                }
                if algorithms != [Algorithm::HS256] {
                    return Err(invalid(format!("issuer {}: a shared secret only verifies HS256", entry.name)));
                }
                KeySource::SharedSecret(secret.into_bytes())
            }
            _ => return Err(invalid(format!("issuer {}: give exactly one of oidc and hs256_secret", entry.name))),
        };
        if entry.claims.institution.is_none() && entry.claims.siret.is_none() {
            return Err(invalid(format!("issuer {}: no claim identifies the institution", entry.name)));
        }
        if let Some(client) = &entry.sign_in {
            if !matches!(keys, KeySource::Oidc { .. }) {
                return Err(invalid(format!("issuer {}: sign_in needs an OpenID Connect issuer (oidc)", entry.name)));
            }
            if client.client_id != entry.audience {
                return Err(invalid(format!(
                    "issuer {}: sign_in.client_id must be the audience ({}): the ID tokens are issued to it",
                    entry.name, entry.audience
                )));
            }
            // Plain HTTP only to the local machine, in development.
            let local = client.redirect_uri.starts_with("http://127.0.0.1")
                || client.redirect_uri.starts_with("http://localhost");
            let allowed = client.redirect_uri.starts_with("https://") || (local && !production);
            if !allowed {
                return Err(invalid(format!("issuer {}: sign_in.redirect_uri must be https", entry.name)));
            }
        }
        if entry.sign_in.is_some() && issuers.iter().any(|i: &TrustedIssuer| i.sign_in.is_some()) {
            return Err(invalid("only one issuer may be the sign-in issuer (sign_in)".to_owned()));
        }
        if issuers.iter().any(|i: &TrustedIssuer| i.issuer == entry.issuer) {
            return Err(invalid(format!("issuer {} is listed twice", entry.issuer)));
        }
        issuers.push(TrustedIssuer {
            name: entry.name,
            issuer: entry.issuer,
            audience: entry.audience,
            algorithms,
            keys,
            claims: entry.claims,
            service_accounts: entry.service_accounts,
            leeway_seconds: entry.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS),
            require_jti: entry.require_jti.unwrap_or(production),
            sign_in: entry.sign_in,
        });
    }
    Ok(issuers)
}

pub fn load_issuers_file(path: &str, production: bool) -> Result<Vec<TrustedIssuer>, IssuerConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| IssuerConfigError::Read { path: path.to_owned(), reason: e.to_string() })?;
    parse_issuers(path, &text, production)
}

/// The built-in development issuer.
pub fn dev_issuer(secret: &str, production: bool) -> Result<TrustedIssuer, IssuerConfigError> {
    if production {
        return Err(IssuerConfigError::DevIssuerInProduction);
    }
    if secret.len() < 32 {
        return Err(IssuerConfigError::DevSecretTooShort);
    }
    Ok(TrustedIssuer {
        name: "development".to_owned(),
        issuer: DEV_ISSUER.to_owned(),
        audience: DEV_AUDIENCE.to_owned(),
        algorithms: vec![Algorithm::HS256],
        keys: KeySource::SharedSecret(secret.as_bytes().to_vec()),
        claims: ClaimMapping { siret: None, ..ClaimMapping::default() },
        service_accounts: false,
        leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        // `cnh-hub token` always sets one.
        require_jti: true,
        sign_in: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROCONNECT: &str = r#"{ "issuers": [ { "name": "proconnect", "issuer": "https://idp.example/api/v2",
        "audience": "cnh-hub", "algorithms": ["RS256"], "oidc": {}, "claims": { "siret": "siret", "agent": "uid", "institution": null } } ] }"#;

    #[test]
    fn an_oidc_issuer_gets_its_discovery_url_and_pinned_algorithms() {
        let issuers = parse_issuers("f", PROCONNECT, true).unwrap();
        assert_eq!(issuers[0].algorithms, [Algorithm::RS256]);
        assert!(matches!(&issuers[0].keys, KeySource::Oidc { discovery_url, .. }
            if discovery_url == "https://idp.example/api/v2/.well-known/openid-configuration"));
        assert_eq!(issuers[0].claims.agent, "uid");
    }

    #[test]
    fn token_ids_are_required_in_production_unless_an_issuer_says_otherwise() {
        assert!(parse_issuers("f", PROCONNECT, true).unwrap()[0].require_jti);
        assert!(!parse_issuers("f", PROCONNECT, false).unwrap()[0].require_jti);
        let lax = PROCONNECT.replace(r#""oidc": {}"#, r#""oidc": {}, "require_jti": false"#);
        assert!(!parse_issuers("f", &lax, true).unwrap()[0].require_jti);
        let strict = PROCONNECT.replace(r#""oidc": {}"#, r#""oidc": {}, "require_jti": true"#);
        assert!(parse_issuers("f", &strict, false).unwrap()[0].require_jti);
    }

    #[test]
    fn the_sign_in_client_is_checked_and_its_secret_never_printed() {
        let with = |client: &str| PROCONNECT.replace(r#""oidc": {}"#, &format!(r#""oidc": {{}}, "sign_in": {client}"#));
        let good = with(
            r#"{ "client_id": "cnh-hub", "client_secret": "s3cret", "redirect_uri": "https://hub.example/tableau/connexion/retour" }"#,
        );
        let issuers = parse_issuers("f", &good, true).unwrap();
        let client = issuers[0].sign_in.as_ref().unwrap();
        assert_eq!(client.scopes, "openid email uid siret");
        assert!(!format!("{:?}", issuers[0]).contains("s3cret"));
        let other_audience = good.replace(r#""client_id": "cnh-hub""#, r#""client_id": "autre""#);
        assert!(parse_issuers("f", &other_audience, true).is_err());
        let plain = good.replace("https://hub.example", "http://hub.example");
        assert!(parse_issuers("f", &plain, true).is_err());
        let local = good.replace("https://hub.example", "http://127.0.0.1:8080");
        assert!(parse_issuers("f", &local, false).is_ok() && parse_issuers("f", &local, true).is_err());
    }

    #[test]
    fn shared_secrets_are_refused_in_production() {
        let text = r#"{ "issuers": [ { "name": "t", "issuer": "t", "audience": "a", "algorithms": ["HS256"], "hs256_secret": "s" } ] }"#;
        assert!(parse_issuers("f", text, false).is_ok());
        assert!(matches!(parse_issuers("f", text, true), Err(IssuerConfigError::SecretInProduction(_))));
        assert!(matches!(dev_issuer(&"x".repeat(40), true), Err(IssuerConfigError::DevIssuerInProduction)));
    }

    #[test]
    fn hs256_is_never_accepted_from_public_keys_and_unknown_fields_are_refused() {
        let confused = PROCONNECT.replace(r#"["RS256"]"#, r#"["RS256", "HS256"]"#);
        assert!(parse_issuers("f", &confused, false).is_err());
        let typo = PROCONNECT.replace("audience", "audiance");
        assert!(parse_issuers("f", &typo, false).is_err());
    }
}
