//! One event to be sent to one webhook subscription: the outbox row, its attempts and its state.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    /// Sent as `cnh-delivery-id`: the same on every attempt, so that the receiver can drop duplicates.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub subscription_id: String,
    pub event_key: String,
    pub event_kind: String,
    /// The JSON body, as sent.
    pub body: String,
    /// PENDING, DELIVERED or DEAD.
    pub state: String,
    pub attempts: i32,
    /// Milliseconds since the epoch.
    pub next_attempt_at: i64,
    /// Milliseconds since the epoch: the claim of the instance sending it lapses then.
    pub locked_until: Option<i64>,
    pub locked_by: Option<String>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTimeWithTimeZone,
    pub delivered_at: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
