//! A programming measure (one SEPPIA line): solutions created or transformed in a département.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "measure")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub region_code: String,
    pub departement_code: String,
    /// The ARS's own reference of the line, unique in its region.
    pub reference: String,
    pub label: String,
    pub finess: Option<String>,
    pub category_code: String,
    /// Comma-separated public codes.
    pub publics: String,
    pub solutions: i64,
    pub unit: String,
    pub nature: String,
    pub procedure: String,
    pub compartment: String,
    pub planned_installation: Date,
    pub status: String,
    pub version: i32,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    pub updated_by: String,
    /// INSEE code of the commune, where it decides the co-financer (Métropole de Lyon vs the rest of the Rhône).
    pub commune_code: Option<String>,
    /// The collectivité the ARS designates as the expected co-financer.
    pub expected_cofinancer_code: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
