//! A campaign of the CNSA: a kind of data expected from institutions by a deadline.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaign")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// MEASURES, COMMITMENTS, NEEDS or SCHOOL_PLANS.
    pub data_kind: String,
    pub opens_on: Date,
    pub deadline: Date,
    pub closes_on: Option<Date>,
    pub created_at: DateTimeWithTimeZone,
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
