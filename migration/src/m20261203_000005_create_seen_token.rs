//! Token ids the hub has seen in accepted requests: lets the operator tell a revocation of a token in use from one
//! of an id the hub never saw (a typo, another system's token).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("seen_token")
                    .col(string_len("token_id", 200).primary_key())
                    .col(string_len("issuer", 200))
                    .col(string_len("institution_code", 100))
                    .col(text_null("agent_id"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("seen_token").to_owned()).await
    }
}
