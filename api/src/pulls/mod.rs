//! The pull channel: institutions whose systems do not push register an endpoint (URL, kind of data, format,
//! credentials, schedule) and the hub fetches it (`fetch`), reads the document (`document`) and submits it through
//! the same write as a pushed submission (`files::import::submit_batch`: validation, idempotency, audit,
//! reconciliation), keyed by content hash. Each pull is recorded as a run (`scheduler`); a source that keeps
//! failing is DEGRADED and pulled less often until it recovers.

pub mod document;
pub mod fetch;
pub mod scheduler;

use std::time::Duration;

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use entities::{institution, pull_run, pull_source};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::{Principal, Role};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::exchange::outbound::Destinations;
use crate::exchange::{check_url, destinations, secret_box};
use crate::files::import::resource_of;
use crate::kernel::audit_log::{self as audit, Actor};
use crate::kernel::outbox::epoch_ms;
use crate::kernel::write::{Write, content_hash};
use crate::programming::types::ViolationView;
use crate::secrets::SecretBox;
use crate::vocabulary::{DataKind, InstitutionKind};

/// Most sources one institution may register (paused ones included).
pub const MAX_SOURCES_PER_INSTITUTION: u64 = 20;
/// Longest GraphQL query a source may register.
pub const MAX_QUERY_LENGTH: usize = 20_000;
/// Longest interval between pulls: 31 days.
pub const MAX_INTERVAL_SECONDS: i32 = 31 * 24 * 3600;
/// Most runs one `pullRuns` page lists.
pub const MAX_RUNS_PAGE: u64 = 500;

/// Stored spellings.
pub mod format {
    pub const JSON: &str = "JSON";
    pub const GRAPHQL: &str = "GRAPHQL";
}
pub mod auth_kind {
    pub const NONE: &str = "NONE";
    pub const BEARER: &str = "BEARER";
    pub const OAUTH2: &str = "OAUTH2_CLIENT_CREDENTIALS";
}
pub mod status {
    pub const ACTIVE: &str = "ACTIVE";
    pub const DEGRADED: &str = "DEGRADED";
    pub const PAUSED: &str = "PAUSED";
}
pub mod outcome {
    pub const ACCEPTED: &str = "ACCEPTED";
    pub const UNCHANGED: &str = "UNCHANGED";
    pub const NOT_MODIFIED: &str = "NOT_MODIFIED";
    pub const REJECTED: &str = "REJECTED";
    pub const FAILED: &str = "FAILED";
}

/// How sources are pulled (`CNH_PULL_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullSettings {
    /// How often due sources are looked for when nothing woke the puller.
    pub poll: Duration,
    /// Shortest interval a source may ask for.
    pub min_interval: Duration,
    pub connect_timeout: Duration,
    /// Total time of one request, body included: a source sending its body too slowly fails.
    pub timeout: Duration,
    /// Largest answer read.
    pub max_bytes: usize,
    /// Requests per run when the source fails in a way that may pass (timeout, refused connection, 5xx, 429).
    pub attempts: u32,
    /// Wait after a failed request, doubled after each next one (with jitter), up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long an instance's claim on a source holds: past it, another instance (or this one restarted) pulls it.
    pub lease: Duration,
    /// Failed runs in a row after which the source is DEGRADED (the circuit breaker trips).
    pub degraded_after: u32,
    /// Longest wait between two pulls of a DEGRADED source.
    pub breaker_cap: Duration,
}

impl Default for PullSettings {
    fn default() -> Self {
        PullSettings {
            poll: Duration::from_secs(1),
            min_interval: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_bytes: 8 * 1024 * 1024,
            attempts: 3,
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(60),
            lease: Duration::from_secs(300),
            degraded_after: 3,
            breaker_cap: Duration::from_secs(6 * 3600),
        }
    }
}

/// What a source answers.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PullFormat {
    /// The hub's JSON exchange format (README, "Pull sources").
    Json,
    /// A GraphQL endpoint, sent the registered query; its one top-level field holds the data.
    Graphql,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullAuth {
    None,
    Bearer,
    #[graphql(name = "OAUTH2_CLIENT_CREDENTIALS")]
    Oauth2ClientCredentials,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullSourceStatus {
    Active,
    /// Failed `CNH_PULL_DEGRADED_AFTER` runs in a row: pulled less and less often until it answers again.
    Degraded,
    /// Not pulled until resumed.
    Paused,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullOutcome {
    /// A new document, stored as a submission.
    Accepted,
    /// The same data as the last document accepted: nothing stored.
    Unchanged,
    /// The source answered 304 to the conditional request: nothing to do.
    NotModified,
    /// The document was unreadable or broke the rules: nothing stored, every problem listed.
    Rejected,
    /// The source could not be fetched (after the retries), or the submission could not be written.
    Failed,
}

/// An endpoint the hub pulls. Its credentials are never shown.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct PullSource {
    pub id: ID,
    pub institution_code: String,
    pub name: String,
    pub url: String,
    pub kind: DataKind,
    pub format: PullFormat,
    pub graphql_query: Option<String>,
    pub auth: PullAuth,
    pub oauth_token_url: Option<String>,
    pub oauth_client_id: Option<String>,
    pub interval_seconds: i32,
    pub status: PullSourceStatus,
    pub consecutive_failures: i32,
    /// When it is next pulled (none while paused).
    pub next_pull_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<FixedOffset>>,
    pub created_at: DateTime<FixedOffset>,
}

impl From<pull_source::Model> for PullSource {
    fn from(row: pull_source::Model) -> Self {
        let status = match row.status.as_str() {
            status::DEGRADED => PullSourceStatus::Degraded,
            status::PAUSED => PullSourceStatus::Paused,
            _ => PullSourceStatus::Active,
        };
        PullSource {
            id: ID(row.id),
            institution_code: row.institution_code,
            name: row.name,
            url: row.url,
            kind: DataKind::from_stored(&row.data_kind).unwrap_or(DataKind::Needs),
            format: if row.format == format::GRAPHQL { PullFormat::Graphql } else { PullFormat::Json },
            graphql_query: row.graphql_query,
            auth: match row.auth_kind.as_str() {
                auth_kind::BEARER => PullAuth::Bearer,
                auth_kind::OAUTH2 => PullAuth::Oauth2ClientCredentials,
                _ => PullAuth::None,
            },
            oauth_token_url: row.oauth_token_url,
            oauth_client_id: row.oauth_client_id,
            interval_seconds: row.interval_seconds,
            next_pull_at: (status != PullSourceStatus::Paused)
                .then(|| Utc.timestamp_millis_opt(row.next_pull_at).single())
                .flatten(),
            status,
            consecutive_failures: row.consecutive_failures,
            last_success_at: row.last_success_at,
            created_at: row.created_at,
        }
    }
}

#[ComplexObject]
impl PullSource {
    /// Its latest run.
    async fn last_run(&self, ctx: &Context<'_>) -> ApiResult<Option<PullRun>> {
        let row = pull_run::Entity::find()
            .filter(pull_run::Column::SourceId.eq(self.id.0.clone()))
            .order_by_desc(pull_run::Column::StartedAt)
            .order_by_desc(pull_run::Column::Id)
            .one(db(ctx)?)
            .await
            .map_err(ApiError::from)?;
        Ok(row.map(PullRun::from))
    }
}

/// One pull of a source.
#[derive(SimpleObject, Clone, Debug)]
pub struct PullRun {
    pub id: ID,
    pub source_id: ID,
    /// The hub instance that ran it.
    pub instance: String,
    pub started_at: DateTime<FixedOffset>,
    pub finished_at: DateTime<FixedOffset>,
    pub outcome: PullOutcome,
    /// The source's HTTP status, if it answered.
    pub http_status: Option<i32>,
    /// Requests made (retries included).
    pub attempts: i32,
    /// Rows the submission stored (0 unless ACCEPTED).
    pub rows_accepted: i64,
    /// The submission it stored (ACCEPTED): its receipt, audit records and provenance.
    pub submission_id: Option<String>,
    /// SHA-256 of the document's kind and data.
    pub content_hash: Option<String>,
    /// What went wrong (or, when ACCEPTED, the warnings).
    pub errors: Vec<ViolationView>,
}

impl From<pull_run::Model> for PullRun {
    fn from(row: pull_run::Model) -> Self {
        PullRun {
            id: ID(row.id),
            source_id: ID(row.source_id),
            instance: row.instance,
            started_at: row.started_at,
            finished_at: row.finished_at,
            outcome: match row.outcome.as_str() {
                outcome::ACCEPTED => PullOutcome::Accepted,
                outcome::UNCHANGED => PullOutcome::Unchanged,
                outcome::NOT_MODIFIED => PullOutcome::NotModified,
                outcome::REJECTED => PullOutcome::Rejected,
                _ => PullOutcome::Failed,
            },
            http_status: row.http_status,
            attempts: row.attempts,
            rows_accepted: row.rows_accepted,
            submission_id: row.submission_id,
            content_hash: row.content_hash,
            errors: serde_json::from_str(&row.errors).unwrap_or_default(),
        }
    }
}

/// OAuth2 client credentials (RFC 6749 §4.4): the hub asks the token URL for an access token before each pull.
#[derive(InputObject, Serialize, Clone)]
#[graphql(name = "OAuth2ClientCredentialsInput")]
pub struct OAuth2ClientCredentialsInput {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
}

#[derive(InputObject, Serialize, Clone)]
pub struct PullSourceInput {
    pub name: String,
    /// `https://…` (plain `http://` only to the local machine, for development).
    pub url: String,
    pub kind: DataKind,
    #[graphql(default_with = "PullFormat::Json")]
    pub format: PullFormat,
    /// For a GRAPHQL source: the query sent, whose one top-level field answers the data.
    pub graphql_query: Option<String>,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    pub oauth2: Option<OAuth2ClientCredentialsInput>,
    /// Seconds between two pulls (at least `CNH_PULL_MIN_INTERVAL_SECONDS`, 60 by default; at most 31 days).
    #[graphql(default = 3600)]
    pub interval_seconds: i32,
    /// The operator registers a source on an institution's behalf; an institution registers its own.
    pub institution_code: Option<String>,
}

impl PullSourceInput {
    /// What the audit trail fingerprints: the input without its secrets.
    fn redacted(&self) -> PullSourceInput {
        PullSourceInput {
            bearer_token: self.bearer_token.as_ref().map(|_| "***".to_owned()),
            oauth2: self.oauth2.clone().map(|o| OAuth2ClientCredentialsInput { client_secret: "***".to_owned(), ..o }),
            ..self.clone()
        }
    }
}

/// The sources a principal may see: its institution's, or every one for the operator.
fn visible(principal: &Principal, reach: Reach) -> Condition {
    match reach {
        Reach::Everything => Condition::all(),
        _ => Condition::all().add(pull_source::Column::InstitutionCode.eq(principal.institution.code.clone())),
    }
}

async fn visible_source(
    db: &DatabaseConnection,
    principal: &Principal,
    reach: Reach,
    id: &str,
) -> Result<pull_source::Model, ApiError> {
    pull_source::Entity::find_by_id(id.to_owned())
        .filter(visible(principal, reach))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("aucune source « {id} » parmi les vôtres")))
}

/// The institution a source is registered for, and the role it submits with.
async fn owner(
    db: &DatabaseConnection,
    principal: &Principal,
    reach: Reach,
    asked: Option<&str>,
) -> Result<(String, Role), ApiError> {
    match (reach, asked) {
        (Reach::Everything, Some(code)) => {
            let row = institution::Entity::find_by_id(code.to_owned())
                .one(db)
                .await?
                .ok_or_else(|| ApiError::BadUserInput(format!("institutionCode : institution « {code} » inconnue")))?;
            let kind = InstitutionKind::from_stored(&row.kind).ok_or_else(|| {
                ApiError::BadUserInput(format!("institutionCode : « {code} » ne soumet pas de données"))
            })?;
            Ok((row.code, Role::of_institution(kind)))
        }
        (Reach::Everything, None) => Err(ApiError::BadUserInput(
            "institutionCode : l'opérateur enregistre une source pour le compte d'une institution, nommez-la".into(),
        )),
        (_, Some(code)) if code != principal.institution.code => Err(ApiError::Forbidden(format!(
            "institutionCode : vous ne pouvez enregistrer de source que pour votre institution ({})",
            principal.institution.code
        ))),
        _ => Ok((principal.institution.code.clone(), principal.role)),
    }
}

/// Checks a registration; returns the stored row's credential fields (auth kind, bearer, OAuth2).
fn check_input(
    input: &PullSourceInput,
    settings: &PullSettings,
    destinations: &Destinations,
    secrets: &SecretBox,
) -> Result<pull_source::Model, ApiError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadUserInput("name : de 1 à 200 caractères".into()));
    }
    let url = check_url(&input.url, destinations)?;
    let min = settings.min_interval.as_secs().min(i32::MAX as u64) as i32;
    if input.interval_seconds < min.max(1) || input.interval_seconds > MAX_INTERVAL_SECONDS {
        return Err(ApiError::BadUserInput(format!(
            "intervalSeconds : de {} à {MAX_INTERVAL_SECONDS} secondes",
            min.max(1)
        )));
    }
    let query = input.graphql_query.as_deref().map(str::trim).filter(|q| !q.is_empty());
    match (input.format, query) {
        (PullFormat::Graphql, None) => {
            return Err(ApiError::BadUserInput("graphqlQuery : une source GRAPHQL a besoin de sa requête".into()));
        }
        (PullFormat::Graphql, Some(q)) if q.len() > MAX_QUERY_LENGTH => {
            return Err(ApiError::BadUserInput(format!("graphqlQuery : {MAX_QUERY_LENGTH} caractères au plus")));
        }
        (PullFormat::Graphql, Some(q)) => {
            async_graphql::parser::parse_query(q)
                .map_err(|e| ApiError::BadUserInput(format!("graphqlQuery : requête illisible ({e})")))?;
        }
        (PullFormat::Json, Some(_)) => {
            return Err(ApiError::BadUserInput("graphqlQuery : seulement pour une source GRAPHQL".into()));
        }
        (PullFormat::Json, None) => {}
    }
    let bearer = input.bearer_token.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let (auth, token_url) = match (bearer, &input.oauth2) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadUserInput("bearerToken et oauth2 : l'un ou l'autre, pas les deux".into()));
        }
        (Some(token), None) if token.len() > 4096 || token.contains(['\r', '\n']) => {
            return Err(ApiError::BadUserInput("bearerToken : jeton illisible".into()));
        }
        (Some(_), None) => (auth_kind::BEARER, None),
        (None, Some(oauth)) => {
            if oauth.client_id.trim().is_empty() || oauth.client_secret.is_empty() {
                return Err(ApiError::BadUserInput("oauth2 : clientId et clientSecret obligatoires".into()));
            }
            (auth_kind::OAUTH2, Some(check_url(&oauth.token_url, destinations)?))
        }
        (None, None) => (auth_kind::NONE, None),
    };
    let oauth = input.oauth2.as_ref();
    Ok(pull_source::Model {
        id: uuid::Uuid::now_v7().to_string(),
        institution_code: String::new(),
        name: name.to_owned(),
        url,
        data_kind: input.kind.as_str().to_owned(),
        format: match input.format {
            PullFormat::Json => format::JSON,
            PullFormat::Graphql => format::GRAPHQL,
        }
        .to_owned(),
        graphql_query: query.map(str::to_owned),
        auth_kind: auth.to_owned(),
        bearer_token: bearer.map(|token| secrets.seal(BEARER_COLUMN, token)),
        oauth_token_url: token_url,
        oauth_client_id: oauth.map(|o| o.client_id.trim().to_owned()),
        oauth_client_secret: oauth.map(|o| secrets.seal(CLIENT_SECRET_COLUMN, &o.client_secret)),
        oauth_scope: oauth.and_then(|o| o.scope.clone()),
        interval_seconds: input.interval_seconds,
        status: status::ACTIVE.to_owned(),
        consecutive_failures: 0,
        next_pull_at: epoch_ms(Utc::now()),
        locked_until: None,
        locked_by: None,
        etag: None,
        last_modified: None,
        last_content_hash: None,
        last_success_at: None,
        last_submission_id: None,
        agent_id: None,
        created_at: audit::now_micros(),
    })
}

/// Where a source's credentials are stored, sealed (`secrets`): the associated data of their sealing.
pub const BEARER_COLUMN: &str = "pull_source.bearer_token";
pub const CLIENT_SECRET_COLUMN: &str = "pull_source.oauth_client_secret";

/// Seals the sources' credentials stored in clear (before the hub had a key) or under the previous key; how many
/// values. One that opens with neither key is left as it is (its pulls fail and say why).
pub async fn seal_stored_credentials(
    db: &sea_orm::DatabaseConnection,
    secrets: &SecretBox,
) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut sealed = 0;
    for row in pull_source::Entity::find().all(db).await? {
        for (column, name, value) in [
            (pull_source::Column::BearerToken, BEARER_COLUMN, &row.bearer_token),
            (pull_source::Column::OauthClientSecret, CLIENT_SECRET_COLUMN, &row.oauth_client_secret),
        ] {
            let Some(value) = value.as_deref() else { continue };
            let Ok(Some(resealed)) = secrets.resealed(name, value) else { continue };
            pull_source::Entity::update_many()
                .col_expr(column, Expr::value(resealed))
                .filter(pull_source::Column::Id.eq(row.id.as_str()))
                .filter(column.eq(value))
                .exec(db)
                .await?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

fn settings(ctx: &Context<'_>) -> PullSettings {
    ctx.data_opt::<PullSettings>().copied().unwrap_or_default()
}

#[derive(Default)]
pub struct PullsQuery;

#[Object]
impl PullsQuery {
    /// Your institution's pull sources (the operator: everyone's).
    async fn pull_sources(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = true)] include_paused: bool,
    ) -> ApiResult<Vec<PullSource>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::PullSource, Action::Read)?;
        let mut query = pull_source::Entity::find().filter(visible(principal, reach));
        if !include_paused {
            query = query.filter(pull_source::Column::Status.ne(status::PAUSED));
        }
        let rows = query.order_by_asc(pull_source::Column::CreatedAt).all(db(ctx)?).await.map_err(ApiError::from)?;
        Ok(rows.into_iter().map(PullSource::from).collect())
    }

    /// A source's runs, newest first.
    async fn pull_runs(
        &self,
        ctx: &Context<'_>,
        source_id: ID,
        #[graphql(default = 50)] first: i32,
        #[graphql(desc = "The id of the last run of the previous page: the runs older than it.")] before: Option<ID>,
    ) -> ApiResult<Vec<PullRun>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::PullSource, Action::Read)?;
        if first < 1 || first as u64 > MAX_RUNS_PAGE {
            return Err(ApiError::BadUserInput(format!("first : de 1 à {MAX_RUNS_PAGE}")).into());
        }
        let db = db(ctx)?;
        let source = visible_source(db, principal, reach, source_id.as_str()).await?;
        let mut query = pull_run::Entity::find().filter(pull_run::Column::SourceId.eq(source.id.as_str()));
        if let Some(before) = before {
            // Keyset: the runs after it in the list's order (started_at, then id, both descending).
            let last = pull_run::Entity::find_by_id(before.to_string())
                .filter(pull_run::Column::SourceId.eq(source.id.as_str()))
                .one(db)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(|| {
                    ApiError::BadUserInput(format!("before : aucune collecte « {} » de cette source", before.as_str()))
                })?;
            query = query.filter(crate::pagination::older_than(
                pull_run::Column::StartedAt,
                pull_run::Column::Id,
                last.started_at,
                last.id,
            ));
        }
        let rows = query
            .order_by_desc(pull_run::Column::StartedAt)
            .order_by_desc(pull_run::Column::Id)
            .limit(first as u64)
            .all(db)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(PullRun::from).collect())
    }
}

#[derive(Default)]
pub struct PullsMutation;

/// Sets a visible source's schedule fields, audited; returns the row as stored.
async fn change_source(
    ctx: &Context<'_>,
    operation: &'static str,
    id: &ID,
    change: impl FnOnce(&pull_source::Model) -> Result<Vec<(pull_source::Column, sea_orm::Value)>, ApiError>,
) -> ApiResult<PullSource> {
    let principal = policy::principal(ctx)?;
    let reach = policy::require(principal, Resource::PullSource, Action::Write)?;
    let db = db(ctx)?;
    let existing = visible_source(db, principal, reach, id.as_str()).await?;
    let columns = change(&existing)?;
    let mut write = Write::begin_unkeyed(db, Actor::of(principal), operation, &id.0).await?;
    let mut update = pull_source::Entity::update_many();
    for (column, value) in columns {
        update = update.col_expr(column, Expr::value(value));
    }
    update.filter(pull_source::Column::Id.eq(existing.id.clone())).exec(&write.txn).await.map_err(ApiError::from)?;
    let stored = pull_source::Entity::find_by_id(existing.id.clone())
        .one(&write.txn)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("aucune source « {} »", existing.id)))?;
    write.audit(vec![existing.id.clone()], content_hash(&(operation, &existing.id)));
    write.commit(&existing.id).await?;
    scheduler::PULL_REQUESTED.notify_one();
    Ok(stored.into())
}

#[Object]
impl PullsMutation {
    /// Registers a source the hub pulls on schedule (the first pull at once). What it brings goes through the
    /// same validation, idempotency and audit as a pushed submission of its kind, for the institution.
    async fn register_pull_source(&self, ctx: &Context<'_>, input: PullSourceInput) -> ApiResult<PullSource> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::PullSource, Action::Write)?;
        // The input's own faults first, whoever sends it.
        let mut row = check_input(&input, &settings(ctx), &destinations(ctx), &secret_box(ctx))?;
        let db = db(ctx)?;
        let (institution_code, role) = owner(db, principal, reach, input.institution_code.as_deref()).await?;
        if policy::reach(role, resource_of(input.kind), Action::Write).is_none() {
            return Err(ApiError::Forbidden(format!(
                "le rôle {} ne soumet pas de données {} : une source ne peut pas le faire pour lui",
                role.as_str(),
                input.kind.as_str()
            ))
            .into());
        }
        let held = pull_source::Entity::find()
            .filter(pull_source::Column::InstitutionCode.eq(institution_code.clone()))
            .count(db)
            .await
            .map_err(ApiError::from)?;
        if held >= MAX_SOURCES_PER_INSTITUTION {
            return Err(ApiError::BadUserInput(format!(
                "l'institution {institution_code} a déjà {held} sources ({MAX_SOURCES_PER_INSTITUTION} au plus)"
            ))
            .into());
        }
        row.institution_code = institution_code;
        row.agent_id = principal.agent_id.clone();
        let redacted = input.redacted();
        let mut write = Write::begin_unkeyed(db, Actor::of(principal), "registerPullSource", &redacted).await?;
        pull_source::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&write.txn)
            .await
            .map_err(ApiError::from)?;
        write.audit(vec![row.id.clone()], content_hash(&redacted));
        write.commit(&row.id).await?;
        scheduler::PULL_REQUESTED.notify_one();
        Ok(row.into())
    }

    /// Pulls a source at once (not a paused one).
    async fn pull_source_now(&self, ctx: &Context<'_>, id: ID) -> ApiResult<PullSource> {
        change_source(ctx, "pullSourceNow", &id, |source| {
            if source.status == status::PAUSED {
                return Err(ApiError::BadUserInput(format!("la source « {} » est en pause : reprenez-la", source.id)));
            }
            Ok(vec![(pull_source::Column::NextPullAt, epoch_ms(Utc::now()).into())])
        })
        .await
    }

    /// Stops pulling a source until it is resumed.
    async fn pause_pull_source(&self, ctx: &Context<'_>, id: ID) -> ApiResult<PullSource> {
        change_source(ctx, "pausePullSource", &id, |_| Ok(vec![(pull_source::Column::Status, status::PAUSED.into())]))
            .await
    }

    /// Resumes a source (ACTIVE, its failures forgotten) and pulls it at once.
    async fn resume_pull_source(&self, ctx: &Context<'_>, id: ID) -> ApiResult<PullSource> {
        change_source(ctx, "resumePullSource", &id, |_| {
            Ok(vec![
                (pull_source::Column::Status, status::ACTIVE.into()),
                (pull_source::Column::ConsecutiveFailures, 0i32.into()),
                (pull_source::Column::NextPullAt, epoch_ms(Utc::now()).into()),
            ])
        })
        .await
    }
}
