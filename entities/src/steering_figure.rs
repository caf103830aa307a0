//! A figure of national steering as recorded (append-only): a trajectory point, a drawing right or a forecast line.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "steering_figure")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// TRAJECTORY, DRAWING_RIGHTS or INSTALLATION_FORECAST.
    pub kind: String,
    pub region_code: String,
    pub compartment: Option<String>,
    pub year: i32,
    pub ae_cents: Option<i64>,
    pub cp_cents: Option<i64>,
    pub solutions: Option<i64>,
    pub submission_id: String,
    pub recorded_by: String,
    pub recorded_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
