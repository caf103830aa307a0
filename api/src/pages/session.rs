//! Page sessions held by the hub. The browser keeps a random id in an HttpOnly cookie; the hub keeps its SHA-256
//! with who signed in, until when, and the provider's ID token for signing out there. So a session outlives the
//! provider's minute-long ID token, ends on every instance at sign-out (the row is shared), and is judged on every
//! page against the access list in memory: a suspended institution's sessions stop at once.

use std::time::Duration;

use chrono::Utc;
use entities::page_session;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use crate::access::authenticator::{Identity, principal_of};
use crate::access::principal::{Authentication, Principal};
use crate::http::Gate;

/// The issuer recorded for a sign-in through the development form.
pub const DEVELOPMENT: &str = "development";

/// Ended and expired sessions are kept this long (an operator may look at recent sign-ins), then purged.
const KEPT_AFTER_END: chrono::Duration = chrono::Duration::days(1);

fn hash(cookie_value: &str) -> String {
    Sha256::digest(cookie_value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens a session for a principal; the cookie's value. 244 random bits (two v4 UUIDs, from the OS generator).
pub async fn open(
    db: &DatabaseConnection,
    principal: &Principal,
    id_token: Option<&str>,
    ttl: Duration,
) -> Result<String, DbErr> {
    let value = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(8));
    // Sign-ins are rare: each one sweeps what ended long ago.
    page_session::Entity::delete_many()
        .filter(page_session::Column::ExpiresAt.lt(now - KEPT_AFTER_END))
        .exec(db)
        .await?;
    page_session::Entity::insert(page_session::ActiveModel {
        id_hash: Set(hash(&value)),
        issuer: Set(principal.issuer.clone()),
        institution_code: Set(principal.institution.code.clone()),
        role: Set(principal.role.as_str().to_owned()),
        agent_id: Set(principal.agent_id.clone()),
        id_token: Set(id_token.map(str::to_owned)),
        created_at: Set(now.into()),
        expires_at: Set((now + ttl).into()),
        ended_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(value)
}

/// The signed-in person of a cookie: None when the session is unknown, ended or expired, or its institution is
/// suspended or gone.
pub async fn find(db: &DatabaseConnection, gate: &Gate, cookie_value: &str) -> Option<Authentication> {
    let row = page_session::Entity::find_by_id(hash(cookie_value))
        .filter(page_session::Column::EndedAt.is_null())
        .filter(page_session::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await
        .inspect_err(|err| tracing::warn!(%err, "page session lookup failed"))
        .ok()??;
    let institution = gate.access.institution(&row.institution_code)?;
    let identity = Identity {
        asked_role: Some(row.role.as_str()),
        agent_id: row.agent_id.clone(),
        token_id: None,
        issuer: row.issuer.clone(),
        expires_at: Some(row.expires_at.with_timezone(&Utc)),
        service_account: false,
    };
    let principal = principal_of(&gate.catalog, institution, identity).ok()?;
    Some(Authentication::Authenticated(Box::new(principal)))
}

/// Whether a session is still open (a live stream asks now and then: a sign-out elsewhere ends it).
pub async fn is_open(db: &DatabaseConnection, cookie_value: &str) -> bool {
    page_session::Entity::find_by_id(hash(cookie_value))
        .filter(page_session::Column::EndedAt.is_null())
        .filter(page_session::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await
        // A database hiccup does not cut a stream; the next check decides.
        .map_or(true, |row| row.is_some())
}

/// Ends a session; the row as it was (its issuer and ID token, to sign out at the provider too).
pub async fn end(db: &DatabaseConnection, cookie_value: &str) -> Result<Option<page_session::Model>, DbErr> {
    let id = hash(cookie_value);
    let Some(row) =
        page_session::Entity::find_by_id(id.clone()).filter(page_session::Column::EndedAt.is_null()).one(db).await?
    else {
        return Ok(None);
    };
    page_session::Entity::update_many()
        .col_expr(page_session::Column::EndedAt, Expr::value(Utc::now()))
        .filter(page_session::Column::IdHash.eq(id))
        .exec(db)
        .await?;
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stored_id_is_a_digest_of_the_cookie() {
        let h = super::hash("abc");
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_ne!(h, "abc");
    }
}
