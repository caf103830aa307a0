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
    verified: VerifiedTokens,
}

/// Bearer tokens already verified, by their text. A client sends the same token with every request for as long as it
/// lives (an hour or so), and checking its signature again each time cost as much as answering a small query: the
/// second request with a token is served from this map. Only what verification proves is kept (the signature, the
/// issuer, the audience, the claims); what can change is checked on every request all the same: the expiry here,
/// revocation and suspension against the access list. A token whose key the issuer no longer publishes (as last
/// fetched) is verified afresh, and refused; every entry is verified afresh after [`VERIFIED_TTL`] anyway.
#[derive(Default)]
struct VerifiedTokens {
    entries: std::sync::Mutex<std::collections::HashMap<Box<str>, VerifiedEntry>>,
}

struct VerifiedEntry {
    token: Arc<VerifiedToken>,
    /// The verifier (index in `Authenticator::verifiers`) and key id that verified it: a key the issuer no longer
    /// publishes stops being honoured as soon as the hub has seen its key set without it.
    verifier: usize,
    kid: Option<Box<str>>,
    verified_at: std::time::Instant,
    /// `exp`, in seconds since the epoch, and the issuer's leeway.
    expires: u64,
    leeway: u64,
}

/// How long a verification stands before the signature is checked again.
pub const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Tokens remembered at most: beyond, what would be verified afresh anyway (stale or expired) is forgotten, then the
/// least recently verified half — never everything at once, which would make every client's next request pay a
/// signature check together (a flood of distinct forged tokens fails verification and is never stored; distinct
/// valid tokens are bounded by what the issuers sign).
const VERIFIED_CAPACITY: usize = 10_000;

impl VerifiedTokens {
    fn get(&self, token: &str, verifiers: &[Verifier]) -> Option<Result<Arc<VerifiedToken>, AuthError>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(token)?;
        let key_retired = match (&verifiers[entry.verifier].keys, &entry.kid) {
            (Keys::Oidc(keys), Some(kid)) => !keys.publishes(kid),
            (Keys::Oidc(_), None) => true,
            (Keys::Secret(_), _) => false,
        };
        if key_retired || entry.verified_at.elapsed() >= VERIFIED_TTL {
            entries.remove(token);
            return None;
        }
        // The rule jsonwebtoken applies: expired once `exp` is more than the leeway behind the clock.
        if entry.expires < jsonwebtoken::get_current_timestamp().saturating_sub(entry.leeway) {
            entries.remove(token);
            return Some(Err(AuthError::Expired));
        }
        Some(Ok(entry.token.clone()))
    }

    fn put(&self, token: &str, verified: Arc<VerifiedToken>, verifier: usize, kid: Option<String>, leeway: u64) {
        // A bearer token always carries `exp` (a required claim); a number too large to be seconds is not kept.
        let Some(expires) = verified.claims.get("exp").and_then(Value::as_u64) else { return };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= VERIFIED_CAPACITY {
            make_room(&mut entries, jsonwebtoken::get_current_timestamp());
        }
        let entry = VerifiedEntry {
            token: verified,
            verifier,
            kid: kid.map(String::into_boxed_str),
            verified_at: std::time::Instant::now(),
            expires,
            leeway,
        };
        entries.insert(token.into(), entry);
    }
}

/// Frees room in a full map of verified tokens: first what would be verified afresh anyway, then, if that is not
/// enough, the least recently verified half (one pass to find the median instant, one to drop what is older).
fn make_room(entries: &mut std::collections::HashMap<Box<str>, VerifiedEntry>, now: u64) {
    entries.retain(|_, e| e.verified_at.elapsed() < VERIFIED_TTL && e.expires >= now.saturating_sub(e.leeway));
    if entries.len() < VERIFIED_CAPACITY {
        return;
    }
    let mut instants: Vec<std::time::Instant> = entries.values().map(|e| e.verified_at).collect();
    let middle = instants.len() / 2;
    let (_, median, _) = instants.select_nth_unstable(middle);
    let median = *median;
    entries.retain(|_, e| e.verified_at >= median);
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
        Authenticator { verifiers, verified: VerifiedTokens::default() }
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

    /// A bearer token: every rule of its issuer, its signature checked on its first use and then again once a minute
    /// or as soon as its key leaves the issuer's key set (see [`VerifiedTokens`]).
    pub async fn verify(&self, token: &str) -> Result<Arc<VerifiedToken>, AuthError> {
        if let Some(known) = self.verified.get(token, &self.verifiers) {
            return known;
        }
        let verified = Arc::new(self.verify_for(token, Purpose::Bearer).await?);
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|header| header.kid);
        if let Some(at) = self.verifiers.iter().position(|v| v.config.name == verified.issuer_name) {
            self.verified.put(token, verified.clone(), at, kid, self.verifiers[at].config.leeway_seconds);
        }
        Ok(verified)
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
pub fn resolve_principal(
    access: &AccessList,
    catalog: &Catalog,
    token: &VerifiedToken,
) -> Result<Principal, AuthError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a development secret of 32 bytes+";

    fn authenticator() -> Authenticator {
        let issuer = super::super::issuers::dev_issuer(SECRET, false).unwrap();
        Authenticator::new(vec![issuer], reqwest::Client::new())
    }

    #[test]
    fn a_full_cache_of_verified_tokens_forgets_the_stale_then_the_oldest_half_never_everything() {
        let now = jsonwebtoken::get_current_timestamp();
        let verified = Arc::new(VerifiedToken {
            issuer_name: "development".into(),
            claims: Map::new(),
            mapping: super::super::issuers::ClaimMapping::default(),
            service_account: false,
        });
        let entry = |age: std::time::Duration, expires: u64| VerifiedEntry {
            token: verified.clone(),
            verifier: 0,
            kid: None,
            verified_at: std::time::Instant::now() - age,
            expires,
            leeway: 0,
        };
        let mut entries = std::collections::HashMap::new();
        for i in 0..VERIFIED_CAPACITY {
            let (age, expires) = match i % 4 {
                0 => (VERIFIED_TTL * 2, now + 3600),                // stale: verified afresh anyway
                1 => (std::time::Duration::from_secs(1), now - 10), // expired
                _ => (std::time::Duration::from_millis(i as u64 % 50_000), now + 3600), // current, of various ages
            };
            entries.insert(format!("t{i}").into_boxed_str(), entry(age, expires));
        }
        make_room(&mut entries, now);
        assert_eq!(entries.len(), VERIFIED_CAPACITY / 2, "stale and expired ones only, when that is enough");
        assert!(entries.keys().all(|k| k[1..].parse::<usize>().unwrap() % 4 >= 2));
        // Full of current entries: the least recently verified half goes, the newest stay.
        let mut entries: std::collections::HashMap<Box<str>, VerifiedEntry> = (0..VERIFIED_CAPACITY)
            .map(|i| (format!("t{i}").into_boxed_str(), entry(std::time::Duration::from_millis(i as u64), now + 3600)))
            .collect();
        make_room(&mut entries, now);
        assert!((VERIFIED_CAPACITY / 2..=VERIFIED_CAPACITY / 2 + 1).contains(&entries.len()), "{}", entries.len());
        assert!(entries.contains_key("t0") && !entries.contains_key(format!("t{}", VERIFIED_CAPACITY - 1).as_str()));
    }

    fn token(ttl_seconds: u64) -> String {
        super::super::dev::sign(SECRET, "ARS-84", false, "agent", std::time::Duration::from_secs(ttl_seconds)).unwrap()
    }

    #[tokio::test]
    async fn a_token_is_verified_once_and_its_expiry_still_checked_on_every_use() {
        let authenticator = authenticator();
        let good = token(3600);
        let first = authenticator.verify(&good).await.unwrap();
        let again = authenticator.verify(&good).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second use is served from the verified tokens");
        // A token whose expiry passes while it is remembered is refused as expired.
        let expiring = token(3600);
        authenticator.verify(&expiring).await.unwrap();
        authenticator.verified.entries.lock().unwrap().get_mut(expiring.as_str()).unwrap().expires = 1;
        assert!(matches!(authenticator.verify(&expiring).await, Err(AuthError::Expired)));
        // A forged token is never remembered: the same forgery is checked, and refused, each time.
        let at = good.len() - 10;
        let swapped = if &good[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &good[..at], &good[at + 1..]);
        for _ in 0..2 {
            assert!(matches!(authenticator.verify(&forged).await, Err(AuthError::Invalid(_))));
        }
        assert!(!authenticator.verified.entries.lock().unwrap().contains_key(forged.as_str()));
    }
}
