//! National steering: the figures of the credits' steering (`figures`: the CNSA's trajectory and drawing rights,
//! the ARS's installation forecasts) and escalations. An ARS reports to the national level a difficulty in its cooperation with a
//! collectivité on a measure (or one of its findings) "that would need a national intervention"; the collectivité
//! concerned and the CNSA answer in its thread; the ARS may ask for the intervention or withdraw; the CNSA settles
//! it. Every step is a write (audited), queued for webhooks (`ESCALATION_CHANGED`, in the step's transaction) and
//! broadcast to the `escalationChanged` subscribers of this instance.

pub mod figures;
pub mod report;
pub mod thread;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, FixedOffset, Utc};
use entities::{escalation, escalation_message, measure};
use futures_util::Stream;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::access::filters::measure_scope;
use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::{Principal, ScopeLevel};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::audit_log::{self as audit, Actor};
use crate::kernel::outbox::{self, EventKind, OutboundEvent};
use crate::kernel::write::{Write, content_hash};
pub use thread::{EscalationState, Step};

/// Longest reason or message.
pub const MAX_TEXT: usize = 4000;
/// Most escalations one page lists.
pub const MAX_PAGE: u64 = 500;

/// A message of the thread, or a step of the escalation.
#[derive(SimpleObject, Clone, Debug, Serialize)]
pub struct EscalationMessage {
    pub id: ID,
    pub institution_code: String,
    pub agent_id: Option<String>,
    pub text: String,
    /// The state the escalation moved to with this message, if it moved.
    pub state_after: Option<EscalationState>,
    pub created_at: DateTime<FixedOffset>,
}

impl From<escalation_message::Model> for EscalationMessage {
    fn from(row: escalation_message::Model) -> Self {
        EscalationMessage {
            id: ID(row.id),
            institution_code: row.institution_code,
            agent_id: row.agent_id,
            text: row.text,
            state_after: row.state_after.as_deref().and_then(EscalationState::from_stored),
            created_at: row.created_at,
        }
    }
}

/// A difficulty an ARS reported to the national level, with its thread.
#[derive(SimpleObject, Clone, Debug, Serialize)]
pub struct Escalation {
    pub id: ID,
    pub measure_id: ID,
    pub region_code: String,
    pub departement_code: String,
    /// The finding it is about, if it is about one.
    pub finding_code: Option<String>,
    pub state: EscalationState,
    pub reason: String,
    pub opened_by: String,
    pub created_at: DateTime<FixedOffset>,
    pub updated_at: DateTime<FixedOffset>,
    pub closed_at: Option<DateTime<FixedOffset>>,
    /// Oldest first.
    pub messages: Vec<EscalationMessage>,
}

impl Escalation {
    fn of(row: escalation::Model, messages: Vec<EscalationMessage>) -> Self {
        Escalation {
            id: ID(row.id),
            measure_id: ID(row.measure_id),
            region_code: row.region_code,
            departement_code: row.departement_code,
            finding_code: row.finding_code,
            state: EscalationState::from_stored(&row.state).unwrap_or(EscalationState::Open),
            reason: row.reason,
            opened_by: row.opened_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            closed_at: row.closed_at,
            messages,
        }
    }
}

/// An escalation's change, as subscribers are told.
#[derive(SimpleObject, Clone, Debug, Serialize)]
pub struct EscalationEvent {
    pub escalation_id: ID,
    pub measure_id: ID,
    pub region_code: String,
    pub departement_code: String,
    pub state: EscalationState,
    /// Who made the change.
    pub institution_code: String,
    pub step: Step,
    pub at: DateTime<Utc>,
}

/// This hub's escalation steps, for its subscribers (schema data: one channel per application).
#[derive(Clone)]
pub struct EscalationEvents(broadcast::Sender<EscalationEvent>);

impl Default for EscalationEvents {
    fn default() -> Self {
        EscalationEvents(broadcast::channel(1024).0)
    }
}

fn events<'a>(ctx: &Context<'a>) -> Result<&'a broadcast::Sender<EscalationEvent>, ApiError> {
    ctx.data::<EscalationEvents>()
        .map(|e| &e.0)
        .map_err(|_| ApiError::Internal("escalation events missing from the schema data".into()))
}

/// The escalations a principal may see, as a SQL predicate: everything nationally, its region's, its départements'.
pub fn escalation_scope(principal: &Principal, reach: Reach) -> Condition {
    match (reach, principal.scope.level) {
        (Reach::Everything, _) | (_, ScopeLevel::National) => Condition::all(),
        (_, ScopeLevel::Region) => {
            Condition::all().add(escalation::Column::RegionCode.is_in(principal.scope.region_codes.clone()))
        }
        _ => Condition::all().add(escalation::Column::DepartementCode.is_in(principal.scope.departement_codes.clone())),
    }
}

fn sees(principal: &Principal, reach: Reach, event: &EscalationEvent) -> bool {
    match (reach, principal.scope.level) {
        (Reach::Everything, _) | (_, ScopeLevel::National) => true,
        (_, ScopeLevel::Region) => principal.scope.region_codes.contains(&event.region_code),
        _ => principal.scope.departement_codes.contains(&event.departement_code),
    }
}

fn checked_text(field: &str, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(ApiError::BadUserInput(format!("{field} : de 1 à {MAX_TEXT} caractères")));
    }
    Ok(text.to_owned())
}

async fn messages_of(db: &DatabaseConnection, ids: Vec<String>) -> Result<Vec<escalation_message::Model>, ApiError> {
    Ok(escalation_message::Entity::find()
        .filter(escalation_message::Column::EscalationId.is_in(ids))
        .order_by_asc(escalation_message::Column::CreatedAt)
        .order_by_asc(escalation_message::Column::Id)
        .all(db)
        .await?)
}

/// Escalations with their threads (one query for all the threads).
async fn with_messages(db: &DatabaseConnection, rows: Vec<escalation::Model>) -> Result<Vec<Escalation>, ApiError> {
    let mut messages = messages_of(db, rows.iter().map(|r| r.id.clone()).collect()).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (mine, rest): (Vec<_>, Vec<_>) = messages.drain(..).partition(|m| m.escalation_id == row.id);
            messages = rest;
            Escalation::of(row, mine.into_iter().map(EscalationMessage::from).collect())
        })
        .collect())
}

async fn visible(
    db: &DatabaseConnection,
    principal: &Principal,
    reach: Reach,
    id: &str,
) -> Result<escalation::Model, ApiError> {
    escalation::Entity::find_by_id(id.to_owned())
        .filter(escalation_scope(principal, reach))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("aucune escalade « {id} » dans votre territoire")))
}

#[derive(InputObject, Serialize)]
pub struct EscalationFilter {
    pub state: Option<EscalationState>,
    /// Open ones only (OPEN, ANSWERED, NATIONAL_INTERVENTION_REQUESTED).
    pub open: Option<bool>,
    pub region_code: Option<String>,
    pub measure_id: Option<ID>,
}

#[derive(Default)]
pub struct SteeringQuery;

#[Object]
impl SteeringQuery {
    /// Escalations of your territory (the CNSA: all), newest first, with their threads.
    async fn escalations(
        &self,
        ctx: &Context<'_>,
        filter: Option<EscalationFilter>,
        #[graphql(default = 100)] first: i32,
    ) -> ApiResult<Vec<Escalation>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Escalation, Action::Read)?;
        if first < 1 || first as u64 > MAX_PAGE {
            return Err(ApiError::BadUserInput(format!("first : de 1 à {MAX_PAGE}")).into());
        }
        let mut query = escalation::Entity::find().filter(escalation_scope(principal, reach));
        if let Some(filter) = filter {
            if let Some(state) = filter.state {
                query = query.filter(escalation::Column::State.eq(state.as_str()));
            }
            if let Some(open) = filter.open {
                let open_states: Vec<&str> = EscalationState::OPEN.iter().map(|s| s.as_str()).collect();
                query = if open {
                    query.filter(escalation::Column::State.is_in(open_states))
                } else {
                    query.filter(escalation::Column::State.is_not_in(open_states))
                };
            }
            if let Some(region) = filter.region_code {
                query = query.filter(escalation::Column::RegionCode.eq(region));
            }
            if let Some(measure) = filter.measure_id {
                query = query.filter(escalation::Column::MeasureId.eq(measure.0));
            }
        }
        let db = db(ctx)?;
        let rows = query
            .order_by_desc(escalation::Column::CreatedAt)
            .order_by_desc(escalation::Column::Id)
            .limit(first as u64)
            .all(db)
            .await
            .map_err(ApiError::from)?;
        Ok(with_messages(db, rows).await?)
    }

    /// One escalation of your territory, with its thread.
    async fn escalation(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Escalation> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Escalation, Action::Read)?;
        let db = db(ctx)?;
        let row = visible(db, principal, reach, id.as_str()).await?;
        Ok(with_messages(db, vec![row]).await?.remove(0))
    }
}

#[derive(InputObject, Serialize)]
pub struct EscalationInput {
    pub measure_id: ID,
    /// The finding at stake (`CAPACITY_MISMATCH`…), if the difficulty is one.
    pub finding_code: Option<String>,
    /// What the difficulty is and what national intervention could settle it.
    pub reason: String,
}

/// Adds a message to an escalation's thread, in the write's transaction.
async fn add_message(
    write: &Write,
    principal: &Principal,
    escalation_id: &str,
    text: String,
    state_after: Option<EscalationState>,
    at: DateTime<FixedOffset>,
) -> Result<(), ApiError> {
    escalation_message::Entity::insert(
        escalation_message::Model {
            id: uuid::Uuid::now_v7().to_string(),
            escalation_id: escalation_id.to_owned(),
            institution_code: principal.institution.code.clone(),
            agent_id: principal.agent_id.clone(),
            text,
            state_after: state_after.map(|s| s.as_str().to_owned()),
            created_at: at,
        }
        .into_active_model(),
    )
    .exec_without_returning(&write.txn)
    .await?;
    Ok(())
}

/// Applies a step to a visible escalation: the message, the new state, the audit record, the webhook event, in one
/// transaction; then tells this instance's subscribers.
async fn step(ctx: &Context<'_>, resource: Resource, id: &ID, step: Step, text: &str) -> ApiResult<Escalation> {
    let principal = policy::principal(ctx)?;
    policy::require(principal, resource, Action::Write)?;
    // Seeing the escalation needs its read reach; answering, its write reach within it.
    let reach = policy::require(principal, Resource::Escalation, Action::Read)?;
    let text = checked_text("texte", text)?;
    let db = db(ctx)?;
    let existing = visible(db, principal, reach, id.as_str()).await?;
    let current = EscalationState::from_stored(&existing.state)
        .ok_or_else(|| ApiError::Internal(format!("stored escalation state « {} »", existing.state).into()))?;
    let by_opener = existing.opened_by == principal.institution.code;
    let next = thread::next(current, step, by_opener).map_err(ApiError::BadUserInput)?;
    let request = (step, &existing.id, &text);
    let mut write = Write::begin_unkeyed(db, Actor::of(principal), step.operation(), &request).await?;
    let now = audit::now_micros();
    add_message(&write, principal, &existing.id, text.clone(), (next != current).then_some(next), now).await?;
    let mut update = escalation::Entity::update_many()
        .col_expr(escalation::Column::State, Expr::value(next.as_str()))
        .col_expr(escalation::Column::UpdatedAt, Expr::value(now));
    if next.is_closed() {
        update = update.col_expr(escalation::Column::ClosedAt, Expr::value(now));
    }
    // The state read above is still the stored one, or another step came first: nothing is written.
    let changed = update
        .filter(escalation::Column::Id.eq(existing.id.clone()))
        .filter(escalation::Column::State.eq(existing.state.clone()))
        .exec(&write.txn)
        .await
        .map_err(ApiError::from)?;
    if changed.rows_affected == 0 {
        return Err(ApiError::BadUserInput("l'escalade a changé entre-temps : relisez-la".into()).into());
    }
    let event = EscalationEvent {
        escalation_id: ID(existing.id.clone()),
        measure_id: ID(existing.measure_id.clone()),
        region_code: existing.region_code.clone(),
        departement_code: existing.departement_code.clone(),
        state: next,
        institution_code: principal.institution.code.clone(),
        step,
        at: now.to_utc(),
    };
    queue(&write, &event).await?;
    write.audit(vec![existing.id.clone(), existing.measure_id.clone()], content_hash(&request));
    write.commit(&existing.id).await?;
    let _ = events(ctx)?.send(event);
    let row = escalation::Entity::find_by_id(existing.id.clone())
        .one(db)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(existing.id.clone()))?;
    Ok(with_messages(db, vec![row]).await?.remove(0))
}

async fn queue(write: &Write, event: &EscalationEvent) -> Result<(), ApiError> {
    outbox::enqueue(
        &write.txn,
        &[OutboundEvent {
            kind: EventKind::EscalationChanged,
            key: format!(
                "escalation:{}:{}:{}",
                event.escalation_id.as_str(),
                event.step.as_str(),
                event.at.timestamp_micros()
            ),
            region: Some(event.region_code.clone()),
            departement: Some(event.departement_code.clone()),
            institution: None,
            occurred_at: event.at,
            data: serde_json::to_value(event).unwrap_or_default(),
        }],
    )
    .await
    .map(|_| ())
    .map_err(ApiError::from)
}

#[derive(Default)]
pub struct SteeringMutation;

#[Object]
impl SteeringMutation {
    /// An ARS reports to the national level a difficulty with a collectivité on a measure of its region (OPEN).
    async fn escalate(&self, ctx: &Context<'_>, input: EscalationInput) -> ApiResult<Escalation> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::EscalationRaise, Action::Write)?;
        let reason = checked_text("reason", &input.reason)?;
        let finding = input.finding_code.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned);
        if finding.as_ref().is_some_and(|c| c.len() > 60 || !c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_')) {
            return Err(ApiError::BadUserInput("findingCode : un code de constat (CAPACITY_MISMATCH…)".into()).into());
        }
        let db = db(ctx)?;
        let measure = measure::Entity::find_by_id(input.measure_id.0.clone())
            .filter(measure_scope(principal, reach))
            .one(db)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                ApiError::NotFound(format!("aucune mesure « {} » dans votre territoire", input.measure_id.as_str()))
            })?;
        let mut write = Write::begin_unkeyed(db, Actor::of(principal), "escalate", &input).await?;
        let now = audit::now_micros();
        let row = escalation::Model {
            id: uuid::Uuid::now_v7().to_string(),
            measure_id: measure.id.clone(),
            region_code: measure.region_code.clone(),
            departement_code: measure.departement_code.clone(),
            finding_code: finding,
            state: EscalationState::Open.as_str().to_owned(),
            reason: reason.clone(),
            opened_by: principal.institution.code.clone(),
            opened_by_agent: principal.agent_id.clone(),
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        escalation::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&write.txn)
            .await
            .map_err(ApiError::from)?;
        add_message(&write, principal, &row.id, reason, Some(EscalationState::Open), now).await?;
        let event = EscalationEvent {
            escalation_id: ID(row.id.clone()),
            measure_id: ID(row.measure_id.clone()),
            region_code: row.region_code.clone(),
            departement_code: row.departement_code.clone(),
            state: EscalationState::Open,
            institution_code: principal.institution.code.clone(),
            step: Step::Open,
            at: now.to_utc(),
        };
        queue(&write, &event).await?;
        write.audit(vec![row.id.clone(), row.measure_id.clone()], content_hash(&input));
        write.commit(&row.id).await?;
        let _ = events(ctx)?.send(event);
        Ok(with_messages(db, vec![row]).await?.remove(0))
    }

    /// A message in an escalation's thread (the ARS, the collectivité concerned, the CNSA). A first answer from
    /// another institution than the ARS makes it ANSWERED.
    async fn post_escalation_message(&self, ctx: &Context<'_>, id: ID, text: String) -> ApiResult<Escalation> {
        step(ctx, Resource::Escalation, &id, Step::Message, &text).await
    }

    /// The ARS that opened it asks for a national intervention.
    async fn request_national_intervention(&self, ctx: &Context<'_>, id: ID, reason: String) -> ApiResult<Escalation> {
        step(ctx, Resource::EscalationRaise, &id, Step::RequestIntervention, &reason).await
    }

    /// The ARS that opened it withdraws it.
    async fn withdraw_escalation(&self, ctx: &Context<'_>, id: ID, reason: String) -> ApiResult<Escalation> {
        step(ctx, Resource::EscalationRaise, &id, Step::Withdraw, &reason).await
    }

    /// The CNSA settles it, saying how.
    async fn resolve_escalation(&self, ctx: &Context<'_>, id: ID, resolution: String) -> ApiResult<Escalation> {
        step(ctx, Resource::EscalationDecision, &id, Step::Resolve, &resolution).await
    }
}

#[derive(Default)]
pub struct SteeringSubscription;

#[Subscription]
impl SteeringSubscription {
    /// Every step of the escalations of your territory, as this hub instance commits them (other instances' steps
    /// reach webhooks: subscribe to `ESCALATION_CHANGED`).
    async fn escalation_changed(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = EscalationEvent> + use<>, async_graphql::Error> {
        let principal = policy::principal(ctx)?.clone();
        let reach = policy::require(&principal, Resource::Escalation, Action::Read)?;
        let receiver = events(ctx)?.subscribe();
        Ok(futures_util::stream::unfold((receiver, principal), move |(mut receiver, principal)| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) if sees(&principal, reach, &event) => return Some((event, (receiver, principal))),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}
