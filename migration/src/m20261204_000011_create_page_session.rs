//! Sessions of the dashboard pages, held by the hub: a person signs in once (ProConnect, or the development form)
//! and the browser keeps only a random session id. The identity provider's tokens live a minute; the session lives
//! its own length, ends at sign-out on every instance, and stops with its institution's suspension.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("page_session")
                    // SHA-256 of the cookie's value, hex: a leaked table opens no session.
                    .col(string_len("id_hash", 64).primary_key())
                    // The trusted issuer the person signed in with ("dev" for the development form).
                    .col(string_len("issuer", 100))
                    .col(string_len("institution_code", 100))
                    .col(string_len("role", 20))
                    .col(text_null("agent_id"))
                    // The provider's ID token, sent back as `id_token_hint` when signing out there.
                    .col(text_null("id_token"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("page_session_expiry").table("page_session").col("expires_at").to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("page_session").to_owned()).await
    }
}
