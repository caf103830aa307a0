//! Reconciliation state kept with the data: each measure's co-financing status as of the last write that touched its
//! region, the log of status changes (what subscribers on every hub instance are told), and a generation counter
//! per region that orders the recomputations (and, on PostgreSQL, serialises the writers of one region).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("reconciliation_region")
                    .col(string_len("region_code", 3).primary_key())
                    .col(big_integer("generation"))
                    .col(timestamp_with_time_zone("reconciled_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("measure_co_financing")
                    .col(string_len("measure_id", 36).primary_key())
                    .col(string_len("region_code", 3))
                    .col(string_len("departement_code", 3))
                    .col(string_len("status", 30))
                    .col(text("finding_codes"))
                    .col(big_integer("generation"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_measure_co_financing_region")
                    .table("measure_co_financing")
                    .col("region_code")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("co_financing_event")
                    .col(big_integer("id").auto_increment().primary_key())
                    .col(string_len("region_code", 3))
                    .col(big_integer("generation"))
                    .col(string_len("measure_id", 36))
                    .col(string_len("departement_code", 3))
                    .col(string_len_null("previous_status", 30))
                    .col(string_len_null("status", 30))
                    .col(text("finding_codes"))
                    .col(timestamp_with_time_zone("recorded_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_co_financing_event_region_generation")
                    .table("co_financing_event")
                    .col("region_code")
                    .col("generation")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["co_financing_event", "measure_co_financing", "reconciliation_region"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
