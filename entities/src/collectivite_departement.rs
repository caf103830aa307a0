//! Which départements a collectivité covers (Corse: 2A+2B; Lyon: Rhône and the Métropole both cover 69).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "collectivite_departement")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub collectivite_code: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub departement_code: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
