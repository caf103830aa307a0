//! An endpoint of an institution's system the hub fetches data from on a schedule.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pull_source")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub institution_code: String,
    pub name: String,
    pub url: String,
    /// NEEDS, SCHOOL_PLANS, COMMITMENTS or MEASURES.
    pub data_kind: String,
    /// JSON or GRAPHQL.
    pub format: String,
    pub graphql_query: Option<String>,
    /// NONE, BEARER or OAUTH2_CLIENT_CREDENTIALS.
    pub auth_kind: String,
    pub bearer_token: Option<String>,
    pub oauth_token_url: Option<String>,
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<String>,
    pub oauth_scope: Option<String>,
    pub interval_seconds: i32,
    /// ACTIVE, DEGRADED or PAUSED.
    pub status: String,
    pub consecutive_failures: i32,
    /// Milliseconds since the epoch.
    pub next_pull_at: i64,
    pub locked_until: Option<i64>,
    pub locked_by: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_content_hash: Option<String>,
    pub last_success_at: Option<DateTimeWithTimeZone>,
    /// The submission the last accepted document became.
    pub last_submission_id: Option<String>,
    pub agent_id: Option<String>,
    pub created_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
