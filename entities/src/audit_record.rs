//! An audit record, chained to the previous one by hash.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_record")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub recorded_at: DateTimeWithTimeZone,
    pub institution_code: String,
    pub agent_id: Option<String>,
    pub token_id: Option<String>,
    pub operation: String,
    /// JSON list of the ids of the objects written or read.
    pub object_ids: String,
    pub content_hash: String,
    pub previous_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
