//! A difficulty an ARS reported to the national level about a measure.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "escalation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub measure_id: String,
    pub region_code: String,
    pub departement_code: String,
    pub finding_code: Option<String>,
    /// OPEN, ANSWERED, NATIONAL_INTERVENTION_REQUESTED, RESOLVED or WITHDRAWN.
    pub state: String,
    pub reason: String,
    /// The institution that opened it (an ARS).
    pub opened_by: String,
    pub opened_by_agent: Option<String>,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    pub closed_at: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
