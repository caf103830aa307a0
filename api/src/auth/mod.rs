//! The identity capability as the API shows it: who the caller is (`me`), and the operator's tools over access
//! (token revocation, institution suspension, SIRETs). The machinery beneath (tokens, principals, the policy table,
//! the access list) is `crate::access`.

pub mod fast;

use async_graphql::{Context, Object, SimpleObject};
use entities::{institution, revoked_token};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};

use crate::access::list as access;
use crate::access::policy::principal;
use crate::access::principal::{Principal, Role, ScopeLevel};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::audit_log::Actor;
use crate::kernel::write::{Begun, Write, content_hash};
use crate::vocabulary::InstitutionKind;

/// An institution exchanging data through the hub.
#[derive(SimpleObject, serde::Serialize, serde::Deserialize)]
pub struct Institution {
    /// The hub's code ("ARS-84", "CD-69", "MDPH-69", "RECTORAT-LYON", "CNSA").
    pub code: String,
    pub kind: InstitutionKind,
    pub name: String,
    pub siret: Option<String>,
    /// Region, collectivité, département or académie code it answers for; "FR" for the CNSA.
    pub territory_code: Option<String>,
    pub suspended: bool,
    pub suspension_reason: Option<String>,
}

impl TryFrom<institution::Model> for Institution {
    type Error = ApiError;

    fn try_from(row: institution::Model) -> Result<Self, ApiError> {
        let kind = InstitutionKind::from_stored(&row.kind)
            .ok_or_else(|| ApiError::Internal(format!("stored institution kind « {} »", row.kind).into()))?;
        Ok(Institution {
            code: row.code,
            kind,
            name: row.name,
            siret: row.siret,
            territory_code: row.territory_code,
            suspended: row.suspended,
            suspension_reason: row.suspension_reason,
        })
    }
}

/// The territory a principal answers for.
#[derive(SimpleObject)]
pub struct TerritoryScope {
    pub level: ScopeLevel,
    /// Region, collectivité, département or académie code; null when national.
    pub code: Option<String>,
    /// Regions the scope touches; empty when national.
    pub region_codes: Vec<String>,
    /// Départements the scope covers; empty when national or regional (the region is the filter).
    pub departement_codes: Vec<String>,
}

/// Who the caller is, as the hub sees it.
#[derive(SimpleObject)]
pub struct PrincipalView {
    pub institution: Institution,
    pub role: Role,
    pub scope: TerritoryScope,
    /// The agent (ProConnect uid or e-mail) or service account behind the token.
    pub agent_id: Option<String>,
    pub service_account: bool,
    /// The token's id (`jti`), by which the operator can revoke it.
    pub token_id: Option<String>,
    /// The trusted issuer that signed the token.
    pub issuer: String,
}

impl TryFrom<&Principal> for PrincipalView {
    type Error = ApiError;

    fn try_from(p: &Principal) -> Result<Self, ApiError> {
        Ok(PrincipalView {
            institution: Institution::try_from(p.institution.clone())?,
            role: p.role,
            scope: TerritoryScope {
                level: p.scope.level,
                code: p.scope.code.clone(),
                region_codes: p.scope.region_codes.clone(),
                departement_codes: p.scope.departement_codes.clone(),
            },
            agent_id: p.agent_id.clone(),
            service_account: p.service_account,
            token_id: p.token_id.clone(),
            issuer: p.issuer.clone(),
        })
    }
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The caller: institution, role, territorial scope, agent or service account, token id.
    #[graphql(name = "me")]
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<PrincipalView> {
        Ok(PrincipalView::try_from(principal(ctx)?)?)
    }
}

fn reason_checked(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::BadUserInput("le motif est obligatoire (500 caractères au plus)".into()));
    }
    Ok(reason.to_owned())
}

/// The outcome of a revocation.
#[derive(SimpleObject, serde::Serialize, serde::Deserialize)]
pub struct RevokedToken {
    pub token_id: String,
    pub revoked_at: chrono::DateTime<chrono::FixedOffset>,
    pub reason: String,
    pub revoked_by: String,
    /// Whether the hub had ever accepted a request carrying this token id. A revocation of an id never seen is
    /// recorded all the same (the token may not have been used yet), and `note` says so.
    pub seen_by_hub: bool,
    /// Whether the id was already revoked (the first revocation is kept).
    pub already_revoked: bool,
    /// In French, what the revocation does.
    pub note: String,
}

fn access_list<'a>(ctx: &Context<'a>) -> Result<&'a std::sync::Arc<access::AccessList>, ApiError> {
    ctx.data::<std::sync::Arc<access::AccessList>>()
        .map_err(|_| ApiError::Internal("access list missing from the schema data".into()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SuspensionChange {
    Suspend,
    Reinstate,
}

async fn change_suspension(
    ctx: &Context<'_>,
    code: &str,
    change: SuspensionChange,
    reason: Option<String>,
    idempotency_key: Option<String>,
) -> ApiResult<Institution> {
    let principal = principal(ctx)?;
    let operation = if change == SuspensionChange::Suspend { "suspendInstitution" } else { "reinstateInstitution" };
    let request = (code, &reason);
    let mut write = match Write::begin(db(ctx)?, Actor::of(principal), operation, idempotency_key, &request).await? {
        Begun::Replayed(answer) => return Ok(answer),
        Begun::Fresh(write) => write,
    };
    let row = institution::Entity::find_by_id(code.to_owned())
        .one(&write.txn)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("aucune institution de code « {code} »")))?;
    if row.kind == InstitutionKind::Operateur.as_str() && change == SuspensionChange::Suspend {
        return Err(ApiError::BadUserInput("l'opérateur du hub ne peut pas se suspendre lui-même".into()).into());
    }
    let mut active = row.into_active_model();
    active.suspended = Set(change == SuspensionChange::Suspend);
    active.suspension_reason = Set(reason.clone());
    let updated = active.update(&write.txn).await.map_err(ApiError::from)?;
    access::AccessList::notify_in(&write.txn, &format!("institution:{code}")).await.map_err(ApiError::from)?;
    tracing::warn!(institution = code, by = %write.actor.label(), suspended = updated.suspended, reason = ?reason, "institution access changed");
    let answer = Institution::try_from(updated.clone())?;
    write.audit(vec![code.to_owned()], content_hash(&request));
    write.commit(&answer).await?;
    access_list(ctx)?.institution_changed(updated);
    Ok(answer)
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Refuses a token from the next request on, by its id (`jti`), on every instance; its open subscriptions are
    /// closed. Operator only. Revoking twice keeps the first; revoking an id the hub never saw is recorded and says so.
    async fn revoke_token(
        &self,
        ctx: &Context<'_>,
        token_id: String,
        reason: String,
        idempotency_key: Option<String>,
    ) -> ApiResult<RevokedToken> {
        let principal = principal(ctx)?;
        let reason = reason_checked(&reason)?;
        if token_id.trim().is_empty() || token_id.len() > 200 {
            return Err(ApiError::BadUserInput("identifiant de jeton vide ou trop long".into()).into());
        }
        let request = (token_id.clone(), reason.clone());
        let mut write =
            match Write::begin(db(ctx)?, Actor::of(principal), "revokeToken", idempotency_key, &request).await? {
                Begun::Replayed(answer) => return Ok(answer),
                Begun::Fresh(write) => write,
            };
        let access = access_list(ctx)?;
        let already_revoked = revoked_token::Entity::find_by_id(token_id.clone())
            .one(&write.txn)
            .await
            .map_err(ApiError::from)?
            .is_some();
        let seen_by_hub = access.was_seen(&write.txn, &token_id).await.map_err(ApiError::from)?;
        let row = revoked_token::ActiveModel {
            token_id: Set(token_id.clone()),
            revoked_at: Set(crate::kernel::audit_log::now_micros()),
            reason: Set(reason.clone()),
            revoked_by: Set(write.actor.label()),
        };
        revoked_token::Entity::insert(row)
            .on_conflict(OnConflict::column(revoked_token::Column::TokenId).do_nothing().to_owned())
            .exec_without_returning(&write.txn)
            .await
            .map_err(ApiError::from)?;
        let stored = revoked_token::Entity::find_by_id(token_id.clone())
            .one(&write.txn)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::Internal("revocation not stored".into()))?;
        access::AccessList::notify_in(&write.txn, &format!("revoked:{}", stored.token_id))
            .await
            .map_err(ApiError::from)?;
        tracing::warn!(token_id = %stored.token_id, by = %write.actor.label(), seen_by_hub, already_revoked, "token revoked");
        let note = match (already_revoked, seen_by_hub) {
            (true, _) => "ce jeton était déjà révoqué : la première révocation est conservée",
            (false, true) => "jeton révoqué : il est refusé dès la prochaine requête, et ses abonnements sont fermés",
            (false, false) => {
                "aucune requête portant cet identifiant n'a encore été reçue par le hub : la révocation est enregistrée \
                 et s'appliquera si ce jeton est présenté ; vérifiez l'identifiant"
            }
        };
        let answer = RevokedToken {
            token_id: stored.token_id,
            revoked_at: stored.revoked_at,
            reason: stored.reason,
            revoked_by: stored.revoked_by,
            seen_by_hub,
            already_revoked,
            note: note.to_owned(),
        };
        write.audit(vec![answer.token_id.clone()], content_hash(&request));
        write.commit(&answer).await?;
        access.revoked(&answer.token_id);
        Ok(answer)
    }

    /// Suspends an institution: every token speaking for it is refused from the next request on. Operator only.
    async fn suspend_institution(
        &self,
        ctx: &Context<'_>,
        code: String,
        reason: String,
        idempotency_key: Option<String>,
    ) -> ApiResult<Institution> {
        let reason = reason_checked(&reason)?;
        change_suspension(ctx, &code, SuspensionChange::Suspend, Some(reason), idempotency_key).await
    }

    /// Sets (or clears, with null) the SIRET by which ProConnect agents of an institution are recognised. Operator
    /// only; audited; effective on every instance at once. Two institutions cannot share a SIRET.
    async fn set_institution_siret(
        &self,
        ctx: &Context<'_>,
        code: String,
        siret: Option<String>,
        idempotency_key: Option<String>,
    ) -> ApiResult<Institution> {
        let principal = principal(ctx)?;
        let siret = siret.map(|s| s.split_whitespace().collect::<String>()).filter(|s| !s.is_empty());
        if let Some(siret) = &siret
            && !crate::validation::identifiers::siret_valid(siret)
        {
            return Err(ApiError::BadUserInput(format!(
                "SIRET invalide : « {siret} » (14 chiffres dont le dernier est une clé de Luhn)"
            ))
            .into());
        }
        let request = (code.clone(), siret.clone());
        let mut write =
            match Write::begin(db(ctx)?, Actor::of(principal), "setInstitutionSiret", idempotency_key, &request).await?
            {
                Begun::Replayed(answer) => return Ok(answer),
                Begun::Fresh(write) => write,
            };
        let row = institution::Entity::find_by_id(code.clone())
            .one(&write.txn)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("aucune institution de code « {code} »")))?;
        if let Some(siret) = &siret {
            use sea_orm::{ColumnTrait, QueryFilter};
            let holder = institution::Entity::find()
                .filter(institution::Column::Siret.eq(siret.clone()))
                .filter(institution::Column::Code.ne(code.clone()))
                .one(&write.txn)
                .await
                .map_err(ApiError::from)?;
            if let Some(holder) = holder {
                return Err(ApiError::BadUserInput(format!(
                    "le SIRET {siret} est déjà celui de l'institution {}",
                    holder.code
                ))
                .into());
            }
        }
        let mut active = row.into_active_model();
        active.siret = Set(siret);
        let updated = active.update(&write.txn).await.map_err(ApiError::from)?;
        access::AccessList::notify_in(&write.txn, &format!("institution:{code}")).await.map_err(ApiError::from)?;
        let answer = Institution::try_from(updated.clone())?;
        write.audit(vec![code.clone()], content_hash(&request));
        write.commit(&answer).await?;
        access_list(ctx)?.institution_changed(updated);
        Ok(answer)
    }

    /// Lifts a suspension. Operator only.
    async fn reinstate_institution(
        &self,
        ctx: &Context<'_>,
        code: String,
        idempotency_key: Option<String>,
    ) -> ApiResult<Institution> {
        change_suspension(ctx, &code, SuspensionChange::Reinstate, None, idempotency_key).await
    }
}
