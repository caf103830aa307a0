//! A past state of a school-support plan.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "school_plan_revision")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub school_plan_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub snapshot: String,
    pub recorded_at: DateTimeWithTimeZone,
    pub submission_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
