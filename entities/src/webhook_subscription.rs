//! A URL an institution registered to be told of events in its territory.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_subscription")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub institution_code: String,
    pub url: String,
    /// The HMAC-SHA256 key deliveries are signed with.
    pub secret: String,
    /// Comma-separated event kinds.
    pub event_kinds: String,
    pub scope_level: String,
    pub region_code: Option<String>,
    /// Comma-separated département codes (empty for national and regional scopes).
    pub departement_codes: String,
    pub active: bool,
    pub agent_id: Option<String>,
    pub created_at: DateTimeWithTimeZone,
    pub cancelled_at: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
