//! One funder's commitment on a measure, as that funder sees it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "commitment")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub measure_id: String,
    /// ASSURANCE_MALADIE, COLLECTIVITE...
    pub funder: String,
    /// The committing institution's code.
    pub funder_code: String,
    pub cost_component: String,
    pub full_year_amount_cents: i64,
    /// JSON list of {year, cents}.
    pub schedule: String,
    pub decision_ref: String,
    pub capacity: i64,
    pub installation_date: Date,
    /// ACTIVE or WITHDRAWN.
    pub status: String,
    pub withdrawal_reason: Option<String>,
    pub version: i32,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    pub updated_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
