//! One fetch of a pull source and what came of it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pull_run")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub source_id: String,
    /// The hub instance that ran it.
    pub instance: String,
    pub started_at: DateTimeWithTimeZone,
    pub finished_at: DateTimeWithTimeZone,
    /// ACCEPTED, UNCHANGED, NOT_MODIFIED, REJECTED or FAILED.
    pub outcome: String,
    pub http_status: Option<i32>,
    pub attempts: i32,
    pub rows_accepted: i64,
    pub submission_id: Option<String>,
    pub content_hash: Option<String>,
    /// JSON list of { path, code, message }.
    pub errors: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
