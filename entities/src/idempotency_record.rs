//! The first answer given to an idempotency key, per institution.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_record")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub institution_code: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub idempotency_key: String,
    pub operation: String,
    pub request_hash: String,
    /// The JSON answer returned the first time.
    pub response: String,
    pub created_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
