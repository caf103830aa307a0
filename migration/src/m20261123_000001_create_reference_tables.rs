//! Reference tables: territories, institutions, the annex of the circular, structure categories, MDPH orientation
//! codes and financing rules. Shipped: never edit, add a new migration instead.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(from_table: &str, from_col: &str, to_table: &str, to_col: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(Alias::new(from_table), Alias::new(from_col))
        .to(Alias::new(to_table), Alias::new(to_col))
        .on_delete(ForeignKeyAction::Restrict)
        .on_update(ForeignKeyAction::Restrict)
        .to_owned()
}

fn composite_pk(name: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(format!("pk_{name}"));
    for col in cols {
        index.col(Alias::new(*col));
    }
    index.primary().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table("region")
                .col(string_len("code", 3).primary_key())
                .col(string("name"))
                .col(boolean("is_overseas"))
                .to_owned(),
            Table::create()
                .table("academie")
                .col(string_len("code", 40).primary_key())
                .col(string("name"))
                .col(string_len("region_code", 3))
                .foreign_key(&mut fk("academie", "region_code", "region", "code"))
                .to_owned(),
            Table::create()
                .table("departement")
                .col(string_len("code", 3).primary_key())
                .col(string("name"))
                .col(string_len("region_code", 3))
                .col(string_len("academie_code", 40))
                .col(string_len("article", 8))
                .foreign_key(&mut fk("departement", "region_code", "region", "code"))
                .foreign_key(&mut fk("departement", "academie_code", "academie", "code"))
                .to_owned(),
            Table::create()
                .table("collectivite")
                .col(string_len("code", 40).primary_key())
                .col(string("name"))
                .col(string_len("kind", 40))
                .to_owned(),
            Table::create()
                .table("collectivite_departement")
                .col(string_len("collectivite_code", 40))
                .col(string_len("departement_code", 3))
                .primary_key(&mut composite_pk("collectivite_departement", &["collectivite_code", "departement_code"]))
                .foreign_key(&mut fk("collectivite_departement", "collectivite_code", "collectivite", "code"))
                .foreign_key(&mut fk("collectivite_departement", "departement_code", "departement", "code"))
                .to_owned(),
            Table::create()
                .table("institution")
                .col(string_len("code", 60).primary_key())
                .col(string_len("kind", 20))
                .col(string("name"))
                .col(string_len_null("siret", 14).unique_key())
                .col(string_len_null("territory_code", 40))
                .col(boolean("suspended").default(false))
                .to_owned(),
            Table::create()
                .table("envelope_allocation")
                .col(string_len("region_code", 3))
                .col(string_len("compartment", 20))
                .col(big_integer("notified_cents"))
                .col(string("source"))
                .primary_key(&mut composite_pk("envelope_allocation", &["region_code", "compartment"]))
                .foreign_key(&mut fk("envelope_allocation", "region_code", "region", "code"))
                .check(Expr::col("notified_cents").gte(0))
                .to_owned(),
            Table::create()
                .table("annex_printed_figure")
                .col(string_len("scope", 3))
                .col(string_len("figure", 20))
                .col(big_integer("value"))
                .col(string_len("unit", 20))
                .col(string("source"))
                .primary_key(&mut composite_pk("annex_printed_figure", &["scope", "figure"]))
                .to_owned(),
            Table::create()
                .table("national_target")
                .col(string_len("code", 40).primary_key())
                .col(big_integer("amount_cents"))
                .col(string("source"))
                .to_owned(),
            Table::create()
                .table("structure_category")
                .col(string_len("code", 40).primary_key())
                .col(string_len("nature", 20))
                .col(string("label"))
                .col(string_len("public", 20))
                .col(boolean("legacy"))
                .col(string_len_null("successor_code", 40))
                .col(date_null("closed_on"))
                .foreign_key(&mut fk("structure_category", "successor_code", "structure_category", "code"))
                .to_owned(),
            Table::create()
                .table("orientation_code")
                .col(string_len("code", 10).primary_key())
                .col(string("label"))
                .col(string_len("public", 20))
                .col(string_len_null("category_code", 40))
                .foreign_key(&mut fk("orientation_code", "category_code", "structure_category", "code"))
                .to_owned(),
            Table::create()
                .table("financing_rule")
                .col(pk_auto("id"))
                .col(string_len("category_code", 40))
                .col(string_len("cost_component", 40))
                .col(string_len("payer", 40))
                .col(integer_null("share_bp"))
                .col(string_len_null("departement_code", 3))
                .col(date("valid_from"))
                .col(date_null("valid_to"))
                .col(text_null("note"))
                .col(string("source"))
                .foreign_key(&mut fk("financing_rule", "category_code", "structure_category", "code"))
                .foreign_key(&mut fk("financing_rule", "departement_code", "departement", "code"))
                .check(Expr::col("share_bp").is_null().or(Expr::col("share_bp").between(0, 10_000)))
                .to_owned(),
        ];
        for table in tables {
            manager.create_table(table).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ux_financing_rule_natural_key")
                    .table("financing_rule")
                    .col("category_code")
                    .col("cost_component")
                    .col("payer")
                    .col("departement_code")
                    .col("valid_from")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("ix_departement_region").table("departement").col("region_code").to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "financing_rule",
            "orientation_code",
            "structure_category",
            "national_target",
            "annex_printed_figure",
            "envelope_allocation",
            "institution",
            "collectivite_departement",
            "collectivite",
            "departement",
            "academie",
            "region",
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
