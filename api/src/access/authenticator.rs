//! Verifying bearer tokens against the trusted issuers, then resolving the principal against the hub's access list
//! (institutions, suspensions, revoked token ids), held in memory and kept current (`access`): no SQL runs to
//! authenticate a request, and a revocation takes effect on the next one, on every instance.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entities::institution;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use serde_json::{Map, Value};

use super::issuers::{ClaimMapping, KeySource, TrustedIssuer};
use super::keys::OidcKeys;
use super::list::AccessList;
use super::principal::{Principal, Role, Scope};
use crate::territory::service::Catalog;
use crate::vocabulary::InstitutionKind;

/// Why a token was refused. Details are logged; the caller learns only the category.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("malformed token")]
    Malformed,
    #[error("token from an issuer the hub does not trust")]
    UnknownIssuer,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token issued in the future")]
    IssuedInTheFuture,
    #[error("token without an id (jti), required by its issuer's settings")]
    MissingTokenId,
    #[error("token refused: {0}")]
    Invalid(String),
    #[error("no institution matches the token's claims")]
    UnknownInstitution,
    #[error("institution suspended")]
    Suspended,
    #[error("token revoked")]
    Revoked,
    #[error("the hub cannot check the token now: {0}")]
    Unavailable(#[source] DbErr),
}

impl AuthError {
    /// A stable label for the metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Malformed => "malformed",
            AuthError::UnknownIssuer => "unknown_issuer",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::IssuedInTheFuture => "issued_in_the_future",
            AuthError::MissingTokenId => "missing_jti",
            AuthError::Invalid(_) => "invalid",
            AuthError::UnknownInstitution => "unknown_institution",
            AuthError::Suspended => "suspended",
            AuthError::Revoked => "revoked",
            AuthError::Unavailable(_) => "unavailable",
        }
    }

    /// The message the caller sees, in French, without internal detail.
    pub fn public_message(&self) -> &'static str {
        match self {
            AuthError::Expired => "jeton expiré : obtenez-en un nouveau",
            AuthError::NotYetValid => "jeton pas encore valide",
            AuthError::IssuedInTheFuture => "jeton émis dans le futur : vérifiez l'horloge de l'émetteur",
            AuthError::MissingTokenId => "jeton sans identifiant (jti) : il ne pourrait pas être révoqué seul",
            AuthError::Revoked => "jeton révoqué",
            AuthError::Suspended => "l'accès de votre institution au hub est suspendu",
            AuthError::UnknownInstitution => "aucune institution du hub ne correspond à ce jeton",
            AuthError::Unavailable(_) => "vérification du jeton impossible pour le moment, réessayez",
            AuthError::Malformed | AuthError::UnknownIssuer | AuthError::Invalid(_) => {
                "jeton invalide ou émis par un émetteur non reconnu"
            }
        }
    }
}

enum Keys {
    Secret(DecodingKey),
    Oidc(Arc<OidcKeys>),
}

struct Verifier {
    config: TrustedIssuer,
    keys: Keys,
}

/// A token whose signature and registered claims were checked.
#[derive(Debug)]
pub struct VerifiedToken {
    pub issuer_name: String,
    pub claims: Map<String, Value>,
    pub mapping: ClaimMapping,
    pub service_account: bool,
}

/// What a JWT is verified for. Bearer tokens follow every rule of their issuer. The sign-in documents of the issuer
/// people sign in with (its ID token, its signed userinfo) live a minute and carry no `jti`: they are read once to
/// open a page session, and that session, not them, is what the browser presents afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Bearer,
    IdToken,
    UserInfo,
}

pub struct Authenticator {
    verifiers: Vec<Verifier>,
}

impl Authenticator {
    pub fn new(issuers: Vec<TrustedIssuer>, http: reqwest::Client) -> Authenticator {
        let verifiers = issuers
            .into_iter()
            .map(|config| {
                let keys = match &config.keys {
                    KeySource::SharedSecret(secret) => Keys::Secret(DecodingKey::from_secret(secret)),
                    KeySource::Oidc { discovery_url, min_refresh, .. } => Keys::Oidc(OidcKeys::new(
                        config.issuer.clone(),
                        discovery_url.clone(),
                        *min_refresh,
                        http.clone(),
                    )),
                };
                Verifier { config, keys }
            })
            .collect();
        Authenticator { verifiers }
    }

    /// Starts the periodic key refresh of every OIDC issuer (the first refresh runs at once).
    pub fn spawn_key_refresh(&self) {
        for verifier in &self.verifiers {
            if let (Keys::Oidc(keys), KeySource::Oidc { refresh, .. }) = (&verifier.keys, &verifier.config.keys) {
                keys.spawn_periodic_refresh(*refresh);
            }
        }
    }

    pub fn issuer_names(&self) -> Vec<&str> {
        self.verifiers.iter().map(|v| v.config.name.as_str()).collect()
    }

    /// A bearer token: every rule of its issuer.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        self.verify_for(token, Purpose::Bearer).await
    }

    pub async fn verify_for(&self, token: &str, purpose: Purpose) -> Result<VerifiedToken, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        // The issuer is read before verification only to choose whose keys verify the token.
        let unverified: Map<String, Value> =
            jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| AuthError::Malformed)?;
        let iss = unverified.get("iss").and_then(Value::as_str).ok_or(AuthError::Malformed)?;
        let verifier = self.verifiers.iter().find(|v| v.config.issuer == iss).ok_or(AuthError::UnknownIssuer)?;
        let config = &verifier.config;
        if !config.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!("algorithm {:?} not accepted from {}", header.alg, config.name)));
        }
        let key = match &verifier.keys {
            Keys::Secret(key) => key.clone(),
            Keys::Oidc(keys) => {
                let kid = header.kid.as_deref().ok_or_else(|| AuthError::Invalid("no kid".into()))?;
                keys.key(kid).await.ok_or_else(|| AuthError::Invalid(format!("unknown kid {kid}")))?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = config.algorithms.clone();
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        // A signed userinfo answer need not expire: it is read once, right after the code exchange.
        match purpose {
            Purpose::UserInfo => validation.set_required_spec_claims(&["iss", "aud"]),
            Purpose::Bearer | Purpose::IdToken => validation.set_required_spec_claims(&["exp", "iss", "aud"]),
        }
        validation.validate_nbf = true;
        validation.leeway = config.leeway_seconds;
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                other => AuthError::Invalid(format!("{other:?}")),
            })?;
        let now = jsonwebtoken::get_current_timestamp();
        // An `iat` ahead of the hub's clock by more than the leeway is a forged or mis-clocked token.
        if let Some(iat) = data.claims.get("iat") {
            let iat = iat.as_f64().ok_or_else(|| AuthError::Invalid("iat is not a number".into()))?;
            if iat > (now + config.leeway_seconds) as f64 {
                return Err(AuthError::IssuedInTheFuture);
            }
        }
        if purpose == Purpose::Bearer && config.require_jti && claim(&data.claims, Some("jti")).is_none() {
            return Err(AuthError::MissingTokenId);
        }
        Ok(VerifiedToken {
            issuer_name: config.name.clone(),
            claims: data.claims,
            mapping: config.claims.clone(),
            service_account: config.service_accounts,
        })
    }
}

fn claim<'a>(claims: &'a Map<String, Value>, name: Option<&str>) -> Option<&'a str> {
    claims.get(name?).and_then(Value::as_str).filter(|v| !v.is_empty())
}

/// Resolves a verified token to a principal from the access list in memory.
pub fn resolve_principal(access: &AccessList, catalog: &Catalog, token: VerifiedToken) -> Result<Principal, AuthError> {
    let mapping = &token.mapping;
    let institution = if let Some(code) = claim(&token.claims, mapping.institution.as_deref()) {
        access.institution(code)
    } else if let Some(siret) = claim(&token.claims, mapping.siret.as_deref()) {
        access.institution_by_siret(siret)
    } else {
        return Err(AuthError::UnknownInstitution);
    }
    .ok_or(AuthError::UnknownInstitution)?;
    let token_id = claim(&token.claims, Some("jti")).map(str::to_owned);
    if token_id.as_deref().is_some_and(|jti| access.is_revoked(jti)) {
        return Err(AuthError::Revoked);
    }
    let agent_id = claim(&token.claims, Some(mapping.agent.as_str()))
        .or_else(|| claim(&token.claims, Some("sub")))
        .map(str::to_owned);
    let expires_at =
        token.claims.get("exp").and_then(Value::as_f64).and_then(|exp| DateTime::<Utc>::from_timestamp(exp as i64, 0));
    let identity = Identity {
        asked_role: claim(&token.claims, Some(mapping.role.as_str())),
        agent_id,
        token_id,
        issuer: token.issuer_name.clone(),
        expires_at,
        service_account: token.service_account,
    };
    principal_of(catalog, institution, identity)
}

/// Who a caller is beyond their institution.
pub struct Identity<'a> {
    /// The role asked for: none (the institution's own), or the read-only dashboard.
    pub asked_role: Option<&'a str>,
    pub agent_id: Option<String>,
    pub token_id: Option<String>,
    pub issuer: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub service_account: bool,
}

/// The principal of an institution as the access list holds it now: a suspension applies at once, the role is the
/// institution's own or the read-only dashboard, the scope follows from the institution's territory.
pub fn principal_of(
    catalog: &Catalog,
    institution: institution::Model,
    identity: Identity<'_>,
) -> Result<Principal, AuthError> {
    if institution.suspended {
        return Err(AuthError::Suspended);
    }
    let kind = InstitutionKind::from_stored(&institution.kind).ok_or(AuthError::UnknownInstitution)?;
    let natural = Role::of_institution(kind);
    let role = match identity.asked_role.map(Role::parse) {
        None => natural,
        Some(Some(Role::Dashboard)) => Role::Dashboard,
        Some(Some(asked)) if asked == natural => natural,
        Some(_) => return Err(AuthError::Invalid("role claim asks for a role the institution does not hold".into())),
    };
    let scope = Scope::of_institution(kind, institution.territory_code.as_deref(), catalog)
        .ok_or(AuthError::UnknownInstitution)?;
    Ok(Principal {
        institution,
        institution_kind: kind,
        role,
        scope,
        agent_id: identity.agent_id,
        service_account: identity.service_account,
        token_id: identity.token_id,
        issuer: identity.issuer,
        expires_at: identity.expires_at,
    })
}

/// The principal an operator acts as on the command line (`cnh-hub import --institution MDPH-69`): the institution's
/// own role and territory, no token.
pub async fn principal_for_institution(
    db: &DatabaseConnection,
    catalog: &Catalog,
    code: &str,
    agent: &str,
) -> Result<Principal, AuthError> {
    let institution = institution::Entity::find_by_id(code.to_owned())
        .one(db)
        .await
        .map_err(AuthError::Unavailable)?
        .ok_or(AuthError::UnknownInstitution)?;
    if institution.suspended {
        return Err(AuthError::Suspended);
    }
    let kind = InstitutionKind::from_stored(&institution.kind).ok_or(AuthError::UnknownInstitution)?;
    let scope = Scope::of_institution(kind, institution.territory_code.as_deref(), catalog)
        .ok_or(AuthError::UnknownInstitution)?;
    Ok(Principal {
        institution,
        institution_kind: kind,
        role: Role::of_institution(kind),
        scope,
        agent_id: Some(agent.to_owned()),
        service_account: true,
        token_id: None,
        issuer: "cli".to_owned(),
        expires_at: None,
    })
}
