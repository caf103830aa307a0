//! Webhook signing secrets are stored sealed (`api::secrets`: AES-256-GCM, hex), about 200 characters where the
//! secret in clear took 70: the column becomes text. SQLite does not bound text lengths (and cannot alter a
//! column): PostgreSQL only.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .alter_table(Table::alter().table("webhook_subscription").modify_column(text("secret")).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .alter_table(
                    Table::alter().table("webhook_subscription").modify_column(string_len("secret", 100)).to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
