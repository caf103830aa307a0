//! The figures of national steering, append-only so that any past date can be reproduced: the CNSA's projected
//! trajectory (AE and CP per region × compartment × year), the drawing rights in CP it sets per region × year, and
//! each ARS's forecast of installations and CP for a year. The figure in force for a key is its latest row; the
//! figure as of a date, its latest row recorded by then.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // INSTALLATION_FORECAST is a kind of data (submissions, campaigns) longer than the 20 characters first given.
        // SQLite does not bound text lengths (and cannot alter a column): PostgreSQL only.
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            for (table, column) in [("submission", "kind"), ("campaign", "data_kind")] {
                manager
                    .alter_table(Table::alter().table(table).modify_column(string_len(column, 40)).to_owned())
                    .await?;
            }
        }
        manager
            .create_table(
                Table::create()
                    .table("steering_figure")
                    // Increasing: the latest row of a key is the one in force.
                    .col(big_integer("id").auto_increment().primary_key())
                    // TRAJECTORY, DRAWING_RIGHTS or INSTALLATION_FORECAST.
                    .col(string_len("kind", 30))
                    .col(string_len("region_code", 3))
                    // SOCLE, PRECOCE or ECOLE; none for drawing rights (a region's, all compartments).
                    .col(string_len_null("compartment", 20))
                    .col(integer("year"))
                    .col(big_integer_null("ae_cents"))
                    .col(big_integer_null("cp_cents"))
                    // Installations forecast (solutions).
                    .col(big_integer_null("solutions"))
                    .col(string_len("submission_id", 36))
                    .col(string_len("recorded_by", 100))
                    .col(timestamp_with_time_zone("recorded_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("steering_figure_of_region")
                    .table("steering_figure")
                    .col("region_code")
                    .col("kind")
                    .col("year")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("steering_figure").to_owned()).await
        // The widened columns stay wide: narrowing them could fail on rows already stored.
    }
}
