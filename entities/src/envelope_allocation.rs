//! Commitment authority (AE) notified to a region for one compartment, in euro cents.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "envelope_allocation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub region_code: String,
    /// SOCLE, PRECOCE or ECOLE.
    #[sea_orm(primary_key, auto_increment = false)]
    pub compartment: String,
    pub notified_cents: i64,
    pub source: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
