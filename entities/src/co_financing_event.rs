//! A change of a measure's co-financing status, as told to subscribers.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "co_financing_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub region_code: String,
    pub generation: i64,
    pub measure_id: String,
    pub departement_code: String,
    /// None for a measure seen for the first time.
    pub previous_status: Option<String>,
    /// None for a measure that left the region.
    pub status: Option<String>,
    pub finding_codes: String,
    pub recorded_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
