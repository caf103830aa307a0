//! An institution exchanging data through the hub (ARS, collectivité, MDPH, rectorat, CNSA, operator).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "institution")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    /// CNSA, ARS, COLLECTIVITE, MDPH, RECTORAT or OPERATEUR.
    pub kind: String,
    pub name: String,
    pub siret: Option<String>,
    /// Region, collectivité, département or académie code, depending on `kind`; "FR" for the CNSA.
    pub territory_code: Option<String>,
    /// A suspended institution's tokens are refused on the next request.
    pub suspended: bool,
    pub suspension_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
