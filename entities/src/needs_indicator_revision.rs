//! A needs value replaced by a later submission.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "needs_indicator_revision")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub departement_code: String,
    pub orientation_code: String,
    pub age_band: String,
    pub indicator: String,
    pub reference_date: Date,
    pub value: i64,
    pub submission_id: String,
    pub recorded_at: DateTimeWithTimeZone,
    /// The submission that replaced it.
    pub superseded_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
