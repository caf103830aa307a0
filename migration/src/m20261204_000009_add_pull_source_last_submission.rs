//! The submission a pull source's last accepted document became: the next pull's idempotency key starts from it, so
//! a source going back and forth between two documents is stored each time it changes, and a pull retried after a
//! crash replays the first answer.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table("pull_source").add_column(string_len_null("last_submission_id", 36)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("pull_source").drop_column("last_submission_id").to_owned()).await
    }
}
