//! Revoked tokens: a token whose id (`jti`) is listed here is refused from the next request on.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("revoked_token")
                    .col(string_len("token_id", 200).primary_key())
                    .col(timestamp_with_time_zone("revoked_at"))
                    .col(text("reason"))
                    .col(string_len("revoked_by", 200))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table("institution").add_column(text_null("suspension_reason")).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("institution").drop_column("suspension_reason").to_owned()).await?;
        manager.drop_table(Table::drop().table("revoked_token").to_owned()).await
    }
}
