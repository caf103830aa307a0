//! A kind of structure: a FINESS category (active or legacy) or a dispositif without one.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "structure_category")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    /// FINESS or DISPOSITIF.
    pub nature: String,
    pub label: String,
    /// ENFANTS, ADULTES or TOUS.
    pub public: String,
    pub legacy: bool,
    pub successor_code: Option<String>,
    pub closed_on: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
