//! A token id (`jti`) the hub has accepted at least once, recorded off the request path.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "seen_token")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_id: String,
    /// The trusted issuer's name.
    pub issuer: String,
    pub institution_code: String,
    pub agent_id: Option<String>,
    pub expires_at: Option<DateTimeWithTimeZone>,
    pub first_seen_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
