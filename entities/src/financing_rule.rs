//! A dated rule of who pays which cost component of a kind of structure.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "financing_rule")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub category_code: String,
    pub cost_component: String,
    pub payer: String,
    /// Share of the component in basis points (8000 = 80 %); None when not a flat percentage.
    pub share_bp: Option<i32>,
    /// A convention for one département overrides the national rule there.
    pub departement_code: Option<String>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub note: Option<String>,
    pub source: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
