//! A measure's co-financing status as of the last recomputation of its region.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "measure_co_financing")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub measure_id: String,
    pub region_code: String,
    pub departement_code: String,
    pub status: String,
    /// The codes of the measure's findings, comma-separated.
    pub finding_codes: String,
    pub generation: i64,
    pub updated_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
