//! The development issuer: tokens signed with `CNH_DEV_JWT_SECRET`, minted by `cnh-hub token` and by the tests.
//! The institution is found in the shipped reference data, so minting needs no database.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use migration::reference::{ReferenceSet, Sources, parse::parse as parse_reference};
use serde_json::json;

use super::issuers::{DEV_AUDIENCE, DEV_ISSUER};
use super::principal::Role;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DevTokenError {
    #[error("CNH_DEV_JWT_SECRET is not set: the development issuer is off, no token can be minted")]
    NoSecret,
    #[error("{0}")]
    Territory(String),
    #[error("« {0} » is not a duration: write 90s, 30m, 1h or 7d")]
    Ttl(String),
    #[error("cannot sign the token: {0}")]
    Signing(String),
}

/// What `cnh-hub token` is asked for.
#[derive(Clone, Debug, Default)]
pub struct DevTokenRequest {
    pub role: Option<Role>,
    pub region: Option<String>,
    pub departement: Option<String>,
    pub academie: Option<String>,
    pub collectivite: Option<String>,
    /// An explicit institution code, instead of a role and a territory.
    pub institution: Option<String>,
    pub agent: Option<String>,
}

/// Parses "90s", "30m", "1h", "7d" or a number of seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, DevTokenError> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| DevTokenError::Ttl(text.to_owned()))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(DevTokenError::Ttl(text.to_owned())),
    };
    if seconds == 0 {
        return Err(DevTokenError::Ttl(text.to_owned()));
    }
    Ok(Duration::from_secs(seconds))
}

fn territory(message: impl Into<String>) -> DevTokenError {
    DevTokenError::Territory(message.into())
}

/// The institution a development token speaks for, from a role and a territory.
pub fn institution_for(request: &DevTokenRequest, reference: &ReferenceSet) -> Result<String, DevTokenError> {
    let exists = |code: &str| reference.institutions.iter().any(|i| i.code == code);
    if let Some(code) = &request.institution {
        return if exists(code) { Ok(code.clone()) } else { Err(territory(format!("no institution {code}"))) };
    }
    let role = request.role.ok_or_else(|| territory("give --role (or --institution)"))?;
    let need = |value: &Option<String>, flag: &str| {
        value.clone().ok_or_else(|| territory(format!("--role {} needs {flag}", role.as_str())))
    };
    let collectivite_of = |departement: &str| -> Result<String, DevTokenError> {
        let covering: Vec<_> = reference
            .collectivites
            .iter()
            .filter(|c| c.departements.split_whitespace().any(|d| d == departement))
            .collect();
        match covering.as_slice() {
            [] => Err(territory(format!("no collectivité covers the département {departement}"))),
            [only] => Ok(only.code.clone()),
            // In the Rhône, the conseil départemental unless --collectivite METROPOLE-LYON is given.
            several => several
                .iter()
                .find(|c| c.nature == "DEPARTEMENT")
                .map(|c| c.code.clone())
                .ok_or_else(|| territory(format!("several collectivités cover {departement}: give --collectivite"))),
        }
    };
    let code = match role {
        Role::Cnsa => "CNSA".to_owned(),
        Role::Admin => "HUB".to_owned(),
        Role::Ars => format!("ARS-{}", need(&request.region, "--region")?),
        Role::Mdph => format!("MDPH-{}", need(&request.departement, "--departement")?),
        Role::Rectorat => format!("RECTORAT-{}", need(&request.academie, "--academie")?.to_uppercase()),
        Role::Collectivite => match (&request.collectivite, &request.departement) {
            (Some(code), _) => code.clone(),
            (None, Some(departement)) => collectivite_of(departement)?,
            (None, None) => return Err(territory("--role collectivite needs --departement or --collectivite")),
        },
        Role::Dashboard => match (&request.region, &request.departement, &request.academie) {
            (Some(region), _, _) => format!("ARS-{region}"),
            (None, Some(departement), _) => collectivite_of(departement)?,
            (None, None, Some(academie)) => format!("RECTORAT-{}", academie.to_uppercase()),
            (None, None, None) => "CNSA".to_owned(),
        },
    };
    if exists(&code) { Ok(code) } else { Err(territory(format!("no institution {code} for this territory"))) }
}

/// Signs a development token for an institution. `dashboard` asks for the read-only dashboard role.
pub fn sign(
    secret: &str,
    institution: &str,
    dashboard: bool,
    agent: &str,
    ttl: Duration,
) -> Result<String, DevTokenError> {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": agent,
        "institution": institution,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "nbf": now,
        "exp": now + ttl.as_secs(),
    });
    if dashboard {
        claims["cnh_role"] = json!("dashboard");
    }
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .map_err(|e| DevTokenError::Signing(e.to_string()))
}

/// Mints a token as `cnh-hub token` does.
pub fn mint(secret: Option<&str>, request: &DevTokenRequest, ttl: Duration) -> Result<String, DevTokenError> {
    let secret = secret.filter(|s| !s.is_empty()).ok_or(DevTokenError::NoSecret)?;
    let reference = parse_reference(&Sources::embedded()).map_err(|e| territory(e.to_string()))?;
    let institution = institution_for(request, &reference)?;
    let agent = request.agent.clone().unwrap_or_else(|| "agent.dev@cnh-hub.invalid".to_owned());
    sign(secret, &institution, request.role == Some(Role::Dashboard), &agent, ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> ReferenceSet {
        parse_reference(&Sources::embedded()).unwrap()
    }

    fn req(role: Role) -> DevTokenRequest {
        DevTokenRequest { role: Some(role), ..Default::default() }
    }

    #[test]
    fn roles_and_territories_name_their_institution() {
        let r = reference();
        assert_eq!(
            institution_for(&DevTokenRequest { region: Some("84".into()), ..req(Role::Ars) }, &r),
            Ok("ARS-84".into())
        );
        assert_eq!(
            institution_for(&DevTokenRequest { departement: Some("69".into()), ..req(Role::Collectivite) }, &r),
            Ok("CD-69".into())
        );
        assert_eq!(
            institution_for(&DevTokenRequest { departement: Some("2B".into()), ..req(Role::Collectivite) }, &r),
            Ok("CORSE".into())
        );
        assert_eq!(
            institution_for(&DevTokenRequest { departement: Some("69".into()), ..req(Role::Mdph) }, &r),
            Ok("MDPH-69".into())
        );
        assert_eq!(
            institution_for(&DevTokenRequest { academie: Some("lyon".into()), ..req(Role::Rectorat) }, &r),
            Ok("RECTORAT-LYON".into())
        );
        assert_eq!(institution_for(&req(Role::Dashboard), &r), Ok("CNSA".into()));
        assert_eq!(institution_for(&req(Role::Admin), &r), Ok("HUB".into()));
    }

    #[test]
    fn a_missing_or_unknown_territory_is_refused() {
        let r = reference();
        assert!(institution_for(&req(Role::Ars), &r).is_err());
        assert!(institution_for(&DevTokenRequest { region: Some("99".into()), ..req(Role::Ars) }, &r).is_err());
    }

    #[test]
    fn ttls_read_like_durations() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("1 week").is_err());
        assert!(parse_ttl("0s").is_err());
    }

    #[test]
    fn without_a_secret_nothing_is_minted() {
        assert_eq!(mint(None, &req(Role::Cnsa), Duration::from_secs(60)), Err(DevTokenError::NoSecret));
    }
}
