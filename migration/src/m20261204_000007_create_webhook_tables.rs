//! Outbound notifications: the webhook subscriptions institutions register, and the outbox of deliveries written in
//! the same transaction as the change that causes them (claimed by one hub instance at a time, retried, dead-lettered).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_subscription")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("institution_code", 100))
                    .col(text("url"))
                    // The HMAC key: the hub needs it to sign, so it is kept (shown to the subscriber once).
                    .col(string_len("secret", 100))
                    // Comma-separated event kinds.
                    .col(text("event_kinds"))
                    .col(string_len("scope_level", 20))
                    .col(string_len_null("region_code", 3))
                    // Comma-separated département codes (empty for national and regional scopes).
                    .col(text("departement_codes"))
                    .col(boolean("active"))
                    .col(text_null("agent_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("cancelled_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_delivery")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("subscription_id", 36))
                    // What the delivery tells, unique per subscription: an event is queued once for each subscriber.
                    .col(string_len("event_key", 200))
                    .col(string_len("event_kind", 50))
                    .col(text("body"))
                    .col(string_len("state", 20))
                    .col(integer("attempts"))
                    // Milliseconds since the epoch: compared as numbers on both stores.
                    .col(big_integer("next_attempt_at"))
                    .col(big_integer_null("locked_until"))
                    .col(string_len_null("locked_by", 100))
                    .col(integer_null("last_status"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_delivery_once_per_subscription")
                    .table("webhook_delivery")
                    .col("subscription_id")
                    .col("event_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_delivery_due")
                    .table("webhook_delivery")
                    .col("state")
                    .col("next_attempt_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("webhook_delivery").to_owned()).await?;
        manager.drop_table(Table::drop().table("webhook_subscription").to_owned()).await
    }
}
