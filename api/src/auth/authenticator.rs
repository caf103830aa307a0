//! Verifying bearer tokens against the trusted issuers, then resolving the principal against the hub's own tables
//! (institution, suspension, revoked token ids) at every request, so revocation takes effect without a restart.

use std::sync::Arc;

use entities::{institution, revoked_token};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use serde_json::{Map, Value};

use super::issuers::{ClaimMapping, KeySource, TrustedIssuer};
use super::keys::OidcKeys;
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
    /// The message the caller sees, in French, without internal detail.
    pub fn public_message(&self) -> &'static str {
        match self {
            AuthError::Expired => "jeton expiré : obtenez-en un nouveau",
            AuthError::NotYetValid => "jeton pas encore valide",
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

    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
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
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = config.leeway_seconds;
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                other => AuthError::Invalid(format!("{other:?}")),
            })?;
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

/// Resolves a verified token to a principal, reading the institution and the revocation list fresh.
pub async fn resolve_principal(
    db: &DatabaseConnection,
    catalog: &Catalog,
    token: VerifiedToken,
) -> Result<Principal, AuthError> {
    let mapping = &token.mapping;
    let institution = if let Some(code) = claim(&token.claims, mapping.institution.as_deref()) {
        institution::Entity::find_by_id(code.to_owned()).one(db).await
    } else if let Some(siret) = claim(&token.claims, mapping.siret.as_deref()) {
        institution::Entity::find().filter(institution::Column::Siret.eq(siret)).one(db).await
    } else {
        return Err(AuthError::UnknownInstitution);
    }
    .map_err(AuthError::Unavailable)?
    .ok_or(AuthError::UnknownInstitution)?;
    if institution.suspended {
        return Err(AuthError::Suspended);
    }
    let token_id = claim(&token.claims, Some("jti")).map(str::to_owned);
    if let Some(jti) = &token_id {
        let revoked = revoked_token::Entity::find_by_id(jti.clone()).one(db).await.map_err(AuthError::Unavailable)?;
        if revoked.is_some() {
            return Err(AuthError::Revoked);
        }
    }
    let kind = InstitutionKind::from_stored(&institution.kind).ok_or(AuthError::UnknownInstitution)?;
    let natural = Role::of_institution(kind);
    let role = match claim(&token.claims, Some(mapping.role.as_str())).map(Role::parse) {
        None => natural,
        Some(Some(Role::Dashboard)) => Role::Dashboard,
        Some(Some(asked)) if asked == natural => natural,
        Some(_) => return Err(AuthError::Invalid("role claim asks for a role the institution does not hold".into())),
    };
    let scope = Scope::of_institution(kind, institution.territory_code.as_deref(), catalog)
        .ok_or(AuthError::UnknownInstitution)?;
    let agent_id = claim(&token.claims, Some(mapping.agent.as_str()))
        .or_else(|| claim(&token.claims, Some("sub")))
        .map(str::to_owned);
    Ok(Principal {
        institution,
        institution_kind: kind,
        role,
        scope,
        agent_id,
        service_account: token.service_account,
        token_id,
        issuer: token.issuer_name,
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
    })
}
