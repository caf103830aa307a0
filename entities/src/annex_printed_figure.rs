//! A figure as printed in the annex (totals, subtotals, weights), kept to be compared with computed sums.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "annex_printed_figure")]
pub struct Model {
    /// "FR" (the Total row), "DOM" (the DOM subtotal) or a region code.
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    /// SOCLE, PRECOCE, ECOLE, TOTAL or WEIGHT.
    #[sea_orm(primary_key, auto_increment = false)]
    pub figure: String,
    /// Euro cents, or basis points for WEIGHT.
    pub value: i64,
    /// CENTS or BASIS_POINTS.
    pub unit: String,
    pub source: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
