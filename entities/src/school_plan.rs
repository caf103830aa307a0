//! A school-support plan of a rectorat.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "school_plan")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub academie_code: String,
    pub departement_code: String,
    /// The rectorat's own reference, unique in its académie.
    pub reference: String,
    pub kind: String,
    pub uai: Option<String>,
    pub finess: Option<String>,
    pub etp_education_nationale_hundredths: i64,
    pub etp_medico_social_hundredths: i64,
    pub medico_social_cost_cents: i64,
    pub year: i32,
    pub version: i32,
    pub submission_id: String,
    pub updated_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
