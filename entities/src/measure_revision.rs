//! A past state of a measure: every version is kept.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "measure_revision")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub measure_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    /// The measure as JSON.
    pub snapshot: String,
    pub recorded_at: DateTimeWithTimeZone,
    pub recorded_by: String,
    pub submission_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
