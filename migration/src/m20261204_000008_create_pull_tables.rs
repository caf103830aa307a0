//! Pull sources: endpoints of institutions' systems the hub fetches on a schedule, each fetch recorded as a run; a
//! submission records the source and the `asOf` of what it brought.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("pull_source")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("institution_code", 100))
                    .col(string_len("name", 200))
                    .col(text("url"))
                    // NEEDS, SCHOOL_PLANS, COMMITMENTS or MEASURES.
                    .col(string_len("data_kind", 30))
                    // JSON (the hub's exchange format) or GRAPHQL (with the query below).
                    .col(string_len("format", 20))
                    .col(text_null("graphql_query"))
                    // NONE, BEARER or OAUTH2_CLIENT_CREDENTIALS; the secrets are needed to fetch, so they are kept.
                    .col(string_len("auth_kind", 40))
                    .col(text_null("bearer_token"))
                    .col(text_null("oauth_token_url"))
                    .col(text_null("oauth_client_id"))
                    .col(text_null("oauth_client_secret"))
                    .col(text_null("oauth_scope"))
                    .col(integer("interval_seconds"))
                    // ACTIVE, DEGRADED (the circuit breaker tripped) or PAUSED.
                    .col(string_len("status", 20))
                    .col(integer("consecutive_failures"))
                    // Milliseconds since the epoch: compared as numbers on both stores.
                    .col(big_integer("next_pull_at"))
                    .col(big_integer_null("locked_until"))
                    .col(string_len_null("locked_by", 100))
                    // Conditional request validators of the last accepted answer.
                    .col(text_null("etag"))
                    .col(text_null("last_modified"))
                    // Content hash of the last document accepted: the same document is not stored twice.
                    .col(string_len_null("last_content_hash", 64))
                    .col(timestamp_with_time_zone_null("last_success_at"))
                    .col(text_null("agent_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("pull_source_due")
                    .table("pull_source")
                    .col("status")
                    .col("next_pull_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("pull_run")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("source_id", 36))
                    .col(string_len("instance", 100))
                    .col(timestamp_with_time_zone("started_at"))
                    .col(timestamp_with_time_zone("finished_at"))
                    // ACCEPTED, UNCHANGED, NOT_MODIFIED, REJECTED or FAILED.
                    .col(string_len("outcome", 20))
                    .col(integer_null("http_status"))
                    .col(integer("attempts"))
                    .col(big_integer("rows_accepted"))
                    .col(string_len_null("submission_id", 36))
                    .col(string_len_null("content_hash", 64))
                    // JSON list of { path, code, message }.
                    .col(text("errors"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("pull_run_of_source")
                    .table("pull_run")
                    .col("source_id")
                    .col("started_at")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table("submission").add_column(string_len_null("source_id", 36)).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table("submission").add_column(timestamp_with_time_zone_null("as_of")).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("submission").drop_column("as_of").to_owned()).await?;
        manager.alter_table(Table::alter().table("submission").drop_column("source_id").to_owned()).await?;
        manager.drop_table(Table::drop().table("pull_run").to_owned()).await?;
        manager.drop_table(Table::drop().table("pull_source").to_owned()).await
    }
}
