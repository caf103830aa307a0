//! Escalations: an ARS reports to the national level a difficulty with a collectivité on a measure (or one of its
//! findings); the collectivité concerned and the CNSA answer in its thread until it is resolved or withdrawn.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("escalation")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("measure_id", 36))
                    .col(string_len("region_code", 3))
                    .col(string_len("departement_code", 3))
                    .col(string_len_null("finding_code", 60))
                    // OPEN, ANSWERED, NATIONAL_INTERVENTION_REQUESTED, RESOLVED or WITHDRAWN.
                    .col(string_len("state", 40))
                    .col(text("reason"))
                    .col(string_len("opened_by", 100))
                    .col(text_null("opened_by_agent"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("closed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("escalation_of_region")
                    .table("escalation")
                    .col("region_code")
                    .col("state")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("escalation_of_measure").table("escalation").col("measure_id").to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("escalation_message")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("escalation_id", 36))
                    .col(string_len("institution_code", 100))
                    .col(text_null("agent_id"))
                    .col(text("text"))
                    // The state the thread moved to with this message, if it moved.
                    .col(string_len_null("state_after", 40))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("escalation_message_of_thread")
                    .table("escalation_message")
                    .col("escalation_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("escalation_message").to_owned()).await?;
        manager.drop_table(Table::drop().table("escalation").to_owned()).await
    }
}
