//! A measure's commune (INSEE code), where the département is shared between two collectivités (the Rhône and the
//! Métropole de Lyon), and the co-financer the ARS designates as expected.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column at a time.
        manager
            .alter_table(Table::alter().table("measure").add_column(string_len_null("commune_code", 5)).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table("measure").add_column(string_len_null("expected_cofinancer_code", 40)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("measure").drop_column("expected_cofinancer_code").to_owned()).await?;
        manager.alter_table(Table::alter().table("measure").drop_column("commune_code").to_owned()).await
    }
}
