//! One accepted write or batch by an institution, counted for a campaign.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "submission")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    pub institution_code: String,
    pub agent_id: Option<String>,
    pub token_id: Option<String>,
    pub campaign_id: Option<String>,
    /// SHA-256 of the submitted content, hex.
    pub content_hash: String,
    pub accepted_count: i64,
    /// GRAPHQL, FILE, CLI or PULL.
    pub channel: String,
    pub received_at: DateTimeWithTimeZone,
    /// The pull source it came from (channel PULL).
    pub source_id: Option<String>,
    /// When the data was true at its source, as the source says (or when it was fetched).
    pub as_of: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
