//! What institutions submit: measures and commitments (with their revisions), needs indicators, school-support
//! plans, campaigns and submissions, idempotency records, and the hash-chained audit trail.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(table: &str, col: &str, to: &str, to_col: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{col}"))
        .from(Alias::new(table), Alias::new(col))
        .to(Alias::new(to), Alias::new(to_col))
        .on_delete(ForeignKeyAction::Restrict)
        .on_update(ForeignKeyAction::Restrict)
        .to_owned()
}

fn pk(name: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(format!("pk_{name}"));
    for col in cols {
        index.col(Alias::new(*col));
    }
    index.primary().to_owned()
}

fn unique(name: &str, table: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table)).unique();
    for col in cols {
        index.col(Alias::new(*col));
    }
    index.to_owned()
}

fn index(name: &str, table: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table));
    for col in cols {
        index.col(Alias::new(*col));
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table("campaign")
                .col(string_len("id", 36).primary_key())
                .col(string("name"))
                .col(string_len("data_kind", 20))
                .col(date("opens_on"))
                .col(date("deadline"))
                .col(date_null("closes_on"))
                .col(timestamp_with_time_zone("created_at"))
                .col(string_len("created_by", 200))
                .to_owned(),
            Table::create()
                .table("submission")
                .col(string_len("id", 36).primary_key())
                .col(string_len("kind", 20))
                .col(string_len("institution_code", 60))
                .col(string_len_null("agent_id", 200))
                .col(string_len_null("token_id", 200))
                .col(string_len_null("campaign_id", 36))
                .col(string_len("content_hash", 64))
                .col(big_integer("accepted_count"))
                .col(string_len("channel", 20))
                .col(timestamp_with_time_zone("received_at"))
                .foreign_key(&mut fk("submission", "institution_code", "institution", "code"))
                .foreign_key(&mut fk("submission", "campaign_id", "campaign", "id"))
                .to_owned(),
            Table::create()
                .table("idempotency_record")
                .col(string_len("institution_code", 60))
                .col(string_len("idempotency_key", 200))
                .col(string_len("operation", 60))
                .col(string_len("request_hash", 64))
                .col(text("response"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(&mut pk("idempotency_record", &["institution_code", "idempotency_key"]))
                .to_owned(),
            Table::create()
                .table("measure")
                .col(string_len("id", 36).primary_key())
                .col(string_len("region_code", 3))
                .col(string_len("departement_code", 3))
                .col(string_len("reference", 100))
                .col(string_len("label", 300))
                .col(string_len_null("finess", 9))
                .col(string_len("category_code", 40))
                .col(string_len("publics", 200))
                .col(big_integer("solutions"))
                .col(string_len("unit", 30))
                .col(string_len("nature", 30))
                .col(string_len("procedure", 30))
                .col(string_len("compartment", 30))
                .col(date("planned_installation"))
                .col(string_len("status", 20))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(string_len("updated_by", 200))
                .foreign_key(&mut fk("measure", "region_code", "region", "code"))
                .foreign_key(&mut fk("measure", "departement_code", "departement", "code"))
                .foreign_key(&mut fk("measure", "category_code", "structure_category", "code"))
                .check(Expr::col("solutions").gt(0))
                .to_owned(),
            Table::create()
                .table("measure_revision")
                .col(string_len("measure_id", 36))
                .col(integer("version"))
                .col(text("snapshot"))
                .col(timestamp_with_time_zone("recorded_at"))
                .col(string_len("recorded_by", 200))
                .col(string_len_null("submission_id", 36))
                .primary_key(&mut pk("measure_revision", &["measure_id", "version"]))
                .foreign_key(&mut fk("measure_revision", "measure_id", "measure", "id"))
                .to_owned(),
            Table::create()
                .table("commitment")
                .col(string_len("id", 36).primary_key())
                .col(string_len("measure_id", 36))
                .col(string_len("funder", 30))
                .col(string_len("funder_code", 60))
                .col(string_len("cost_component", 40))
                .col(big_integer("full_year_amount_cents"))
                .col(text("schedule"))
                .col(string_len("decision_ref", 200))
                .col(big_integer("capacity"))
                .col(date("installation_date"))
                .col(string_len("status", 20))
                .col(text_null("withdrawal_reason"))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(string_len("updated_by", 200))
                .foreign_key(&mut fk("commitment", "measure_id", "measure", "id"))
                .foreign_key(&mut fk("commitment", "funder_code", "institution", "code"))
                .check(Expr::col("full_year_amount_cents").gte(0))
                .to_owned(),
            Table::create()
                .table("commitment_revision")
                .col(string_len("commitment_id", 36))
                .col(integer("version"))
                .col(text("snapshot"))
                .col(timestamp_with_time_zone("recorded_at"))
                .col(string_len("recorded_by", 200))
                .primary_key(&mut pk("commitment_revision", &["commitment_id", "version"]))
                .foreign_key(&mut fk("commitment_revision", "commitment_id", "commitment", "id"))
                .to_owned(),
            Table::create()
                .table("needs_indicator")
                .col(big_pk_auto("id"))
                .col(string_len("departement_code", 3))
                .col(string_len("orientation_code", 10))
                .col(string_len("age_band", 10))
                .col(string_len("indicator", 40))
                .col(date("reference_date"))
                .col(big_integer("value"))
                .col(string_len("submission_id", 36))
                .col(timestamp_with_time_zone("recorded_at"))
                // No foreign keys here: batches of 50 000 rows are checked against the reference catalog before
                // insertion, and per-row foreign-key triggers more than doubled the insert time on PostgreSQL.
                .check(Expr::col("value").gte(0))
                .to_owned(),
            Table::create()
                .table("needs_indicator_revision")
                .col(big_pk_auto("id"))
                .col(string_len("departement_code", 3))
                .col(string_len("orientation_code", 10))
                .col(string_len("age_band", 10))
                .col(string_len("indicator", 40))
                .col(date("reference_date"))
                .col(big_integer("value"))
                .col(string_len("submission_id", 36))
                .col(timestamp_with_time_zone("recorded_at"))
                .col(string_len("superseded_by", 36))
                .to_owned(),
            Table::create()
                .table("school_plan")
                .col(string_len("id", 36).primary_key())
                .col(string_len("academie_code", 40))
                .col(string_len("departement_code", 3))
                .col(string_len("reference", 100))
                .col(string_len("kind", 40))
                .col(string_len_null("uai", 8))
                .col(string_len_null("finess", 9))
                .col(big_integer("etp_education_nationale_hundredths"))
                .col(big_integer("etp_medico_social_hundredths"))
                .col(big_integer("medico_social_cost_cents"))
                .col(integer("year"))
                .col(integer("version"))
                .col(string_len("submission_id", 36))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk("school_plan", "academie_code", "academie", "code"))
                .foreign_key(&mut fk("school_plan", "departement_code", "departement", "code"))
                .check(Expr::col("medico_social_cost_cents").gte(0))
                .to_owned(),
            Table::create()
                .table("school_plan_revision")
                .col(string_len("school_plan_id", 36))
                .col(integer("version"))
                .col(text("snapshot"))
                .col(timestamp_with_time_zone("recorded_at"))
                .col(string_len("submission_id", 36))
                .primary_key(&mut pk("school_plan_revision", &["school_plan_id", "version"]))
                .foreign_key(&mut fk("school_plan_revision", "school_plan_id", "school_plan", "id"))
                .to_owned(),
            Table::create()
                .table("audit_record")
                .col(big_integer("seq").primary_key())
                .col(timestamp_with_time_zone("recorded_at"))
                .col(string_len("institution_code", 60))
                .col(string_len_null("agent_id", 200))
                .col(string_len_null("token_id", 200))
                .col(string_len("operation", 60))
                .col(text("object_ids"))
                .col(string_len("content_hash", 64))
                .col(string_len("previous_hash", 64))
                .col(string_len("hash", 64))
                .to_owned(),
            // The chain's head: one row, updated by every audited write, which serialises appends.
            Table::create()
                .table("audit_head")
                .col(integer("id").primary_key())
                .col(big_integer("last_seq"))
                .col(string_len("last_hash", 64))
                .to_owned(),
        ];
        for table in tables {
            manager.create_table(table).await?;
        }
        for statement in [
            unique("ux_measure_region_reference", "measure", &["region_code", "reference"]),
            index("ix_measure_departement", "measure", &["departement_code"]),
            unique("ux_commitment_funder_component", "commitment", &["measure_id", "funder_code", "cost_component"]),
            unique(
                "ux_needs_indicator_key",
                "needs_indicator",
                &["departement_code", "orientation_code", "age_band", "indicator", "reference_date"],
            ),
            index("ix_needs_revision_departement", "needs_indicator_revision", &["departement_code", "reference_date"]),
            unique("ux_school_plan_reference", "school_plan", &["academie_code", "reference"]),
            index("ix_submission_institution", "submission", &["institution_code", "kind"]),
            index("ix_audit_institution", "audit_record", &["institution_code"]),
        ] {
            manager.create_index(statement).await?;
        }
        manager
            .exec_stmt(
                Query::insert()
                    .into_table("audit_head")
                    .columns(["id", "last_seq", "last_hash"])
                    .values_panic([1.into(), 0i64.into(), "0".repeat(64).into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "audit_head",
            "audit_record",
            "school_plan_revision",
            "school_plan",
            "needs_indicator_revision",
            "needs_indicator",
            "commitment_revision",
            "commitment",
            "measure_revision",
            "measure",
            "idempotency_record",
            "submission",
            "campaign",
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
