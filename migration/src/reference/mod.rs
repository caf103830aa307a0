//! Loads the shipped reference data into the database, idempotently, in one transaction.
//!
//! Territories, institutions' identity, categories and the annex are owned by the files: a re-run updates them to
//! what the files say. What the hub's operators edit at run time is preserved: an institution's SIRET once filled and
//! its suspension, and financing rules (only missing ones are inserted; an edited or added rule is kept).

pub mod parse;

use std::collections::BTreeSet;

use entities::{
    academie, annex_printed_figure, collectivite, collectivite_departement, departement, envelope_allocation,
    financing_rule, institution, national_target, orientation_code, region, structure_category,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, TransactionTrait,
};

pub use parse::{ReferenceSet, Sources};

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference file {file}, line {line}: {message}")]
    Parse { file: &'static str, line: usize, message: String },
    #[error("reference data inconsistent: {0}")]
    Inconsistent(String),
    #[error("storing reference data: {0}")]
    Database(#[from] DbErr),
}

/// What a load did, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub regions: usize,
    pub departements: usize,
    pub academies: usize,
    pub collectivites: usize,
    pub institutions: usize,
    pub allocations: usize,
    pub categories: usize,
    pub financing_rules_added: usize,
}

/// Parses the embedded files and writes them. Safe to run at every start.
pub async fn load(db: &DatabaseConnection) -> Result<LoadReport, ReferenceError> {
    let set = parse::parse(&Sources::embedded())?;
    store(db, &set).await
}

// SQLite accepts at most 32 766 bound parameters per statement; stay far below for every table.
const CHUNK: usize = 200;

async fn upsert<E, C>(
    conn: &C,
    models: Vec<E::ActiveModel>,
    key: Vec<E::Column>,
    update: Vec<E::Column>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<_> = models.by_ref().take(CHUNK).collect();
        let mut on_conflict = OnConflict::columns(key.clone());
        if update.is_empty() {
            on_conflict.do_nothing();
        } else {
            on_conflict.update_columns(update.clone());
        }
        E::insert_many(chunk).on_conflict(on_conflict).exec_without_returning(conn).await?;
    }
    Ok(())
}

async fn store(db: &DatabaseConnection, set: &ReferenceSet) -> Result<LoadReport, ReferenceError> {
    let txn = db.begin().await?;

    upsert::<region::Entity, _>(
        &txn,
        set.regions
            .iter()
            .map(|r| region::ActiveModel {
                code: Set(r.code.clone()),
                name: Set(r.nom.clone()),
                is_overseas: Set(r.outre_mer == "oui"),
            })
            .collect(),
        vec![region::Column::Code],
        vec![region::Column::Name, region::Column::IsOverseas],
    )
    .await?;

    upsert::<academie::Entity, _>(
        &txn,
        set.academies
            .iter()
            .map(|a| academie::ActiveModel {
                code: Set(a.code.clone()),
                name: Set(a.nom.clone()),
                region_code: Set(a.region.clone()),
            })
            .collect(),
        vec![academie::Column::Code],
        vec![academie::Column::Name, academie::Column::RegionCode],
    )
    .await?;

    upsert::<departement::Entity, _>(
        &txn,
        set.departements
            .iter()
            .map(|d| departement::ActiveModel {
                code: Set(d.code.clone()),
                name: Set(d.nom.clone()),
                region_code: Set(d.region.clone()),
                academie_code: Set(d.academie.clone()),
                article: Set(d.article.clone()),
            })
            .collect(),
        vec![departement::Column::Code],
        vec![
            departement::Column::Name,
            departement::Column::RegionCode,
            departement::Column::AcademieCode,
            departement::Column::Article,
        ],
    )
    .await?;

    upsert::<collectivite::Entity, _>(
        &txn,
        set.collectivites
            .iter()
            .map(|c| collectivite::ActiveModel {
                code: Set(c.code.clone()),
                name: Set(c.nom.clone()),
                kind: Set(c.nature.clone()),
            })
            .collect(),
        vec![collectivite::Column::Code],
        vec![collectivite::Column::Name, collectivite::Column::Kind],
    )
    .await?;

    upsert::<collectivite_departement::Entity, _>(
        &txn,
        set.collectivites
            .iter()
            .flat_map(|c| {
                c.departements.split_whitespace().map(|d| collectivite_departement::ActiveModel {
                    collectivite_code: Set(c.code.clone()),
                    departement_code: Set(d.to_owned()),
                })
            })
            .collect(),
        vec![collectivite_departement::Column::CollectiviteCode, collectivite_departement::Column::DepartementCode],
        vec![],
    )
    .await?;

    upsert::<institution::Entity, _>(
        &txn,
        set.institutions
            .iter()
            .map(|i| institution::ActiveModel {
                code: Set(i.code.clone()),
                kind: Set(i.nature.clone()),
                name: Set(i.nom.clone()),
                siret: Set((!i.siret.is_empty()).then(|| i.siret.clone())),
                territory_code: Set((!i.territoire.is_empty()).then(|| i.territoire.clone())),
                suspended: Set(false),
                suspension_reason: Set(None),
            })
            .collect(),
        vec![institution::Column::Code],
        vec![institution::Column::Kind, institution::Column::Name, institution::Column::TerritoryCode],
    )
    .await?;

    upsert::<envelope_allocation::Entity, _>(
        &txn,
        set.allocations
            .iter()
            .map(|a| envelope_allocation::ActiveModel {
                region_code: Set(a.region_code.clone()),
                compartment: Set(a.compartment.to_owned()),
                notified_cents: Set(a.notified_cents),
                source: Set(parse::ANNEX_SOURCE.to_owned()),
            })
            .collect(),
        vec![envelope_allocation::Column::RegionCode, envelope_allocation::Column::Compartment],
        vec![envelope_allocation::Column::NotifiedCents, envelope_allocation::Column::Source],
    )
    .await?;

    upsert::<annex_printed_figure::Entity, _>(
        &txn,
        set.printed_figures
            .iter()
            .map(|f| annex_printed_figure::ActiveModel {
                scope: Set(f.scope.clone()),
                figure: Set(f.figure.to_owned()),
                value: Set(f.value),
                unit: Set(f.unit.to_owned()),
                source: Set(parse::ANNEX_SOURCE.to_owned()),
            })
            .collect(),
        vec![annex_printed_figure::Column::Scope, annex_printed_figure::Column::Figure],
        vec![
            annex_printed_figure::Column::Value,
            annex_printed_figure::Column::Unit,
            annex_printed_figure::Column::Source,
        ],
    )
    .await?;

    upsert::<national_target::Entity, _>(
        &txn,
        set.national_targets
            .iter()
            .map(|t| national_target::ActiveModel {
                code: Set(t.code.clone()),
                amount_cents: Set(t.amount_cents),
                source: Set(format!("{} : « {} »", parse::CIRCULAR_TEXT_SOURCE, t.text)),
            })
            .collect(),
        vec![national_target::Column::Code],
        vec![national_target::Column::AmountCents, national_target::Column::Source],
    )
    .await?;

    // Successors before the legacy categories that point to them (the foreign key is checked per statement).
    let (current, legacy): (Vec<_>, Vec<_>) = set.categories.iter().partition(|c| !c.legacy);
    for group in [current, legacy] {
        upsert::<structure_category::Entity, _>(
            &txn,
            group
                .into_iter()
                .map(|c| structure_category::ActiveModel {
                    code: Set(c.code.clone()),
                    nature: Set(c.nature.clone()),
                    label: Set(c.label.clone()),
                    public: Set(c.public.clone()),
                    legacy: Set(c.legacy),
                    successor_code: Set(c.successor_code.clone()),
                    closed_on: Set(c.closed_on),
                })
                .collect(),
            vec![structure_category::Column::Code],
            vec![
                structure_category::Column::Nature,
                structure_category::Column::Label,
                structure_category::Column::Public,
                structure_category::Column::Legacy,
                structure_category::Column::SuccessorCode,
                structure_category::Column::ClosedOn,
            ],
        )
        .await?;
    }

    upsert::<orientation_code::Entity, _>(
        &txn,
        set.orientations
            .iter()
            .map(|o| orientation_code::ActiveModel {
                code: Set(o.code.clone()),
                label: Set(o.libelle.clone()),
                public: Set(o.public.clone()),
                category_code: Set((!o.categorie.is_empty()).then(|| o.categorie.clone())),
            })
            .collect(),
        vec![orientation_code::Column::Code],
        vec![orientation_code::Column::Label, orientation_code::Column::Public, orientation_code::Column::CategoryCode],
    )
    .await?;

    // Rules are edited at run time: insert only those whose natural key is absent (NULL départements compare equal
    // here, which a unique index alone would not guarantee on PostgreSQL).
    let existing: BTreeSet<_> = financing_rule::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|r| (r.category_code, r.cost_component, r.payer, r.departement_code, r.valid_from))
        .collect();
    let missing: Vec<_> = set
        .rules
        .iter()
        .filter(|r| {
            !existing.contains(&(
                r.category_code.clone(),
                r.cost_component.clone(),
                r.payer.clone(),
                r.departement_code.clone(),
                r.valid_from,
            ))
        })
        .map(|r| financing_rule::ActiveModel {
            id: NotSet,
            category_code: Set(r.category_code.clone()),
            cost_component: Set(r.cost_component.clone()),
            payer: Set(r.payer.clone()),
            share_bp: Set(r.share_bp),
            departement_code: Set(r.departement_code.clone()),
            valid_from: Set(r.valid_from),
            valid_to: Set(r.valid_to),
            note: Set(r.note.clone()),
            source: Set(parse::RULES_SOURCE.to_owned()),
        })
        .collect();
    let financing_rules_added = missing.len();
    for chunk in missing.chunks(CHUNK) {
        financing_rule::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }

    txn.commit().await?;
    Ok(LoadReport {
        regions: set.regions.len(),
        departements: set.departements.len(),
        academies: set.academies.len(),
        collectivites: set.collectivites.len(),
        institutions: set.institutions.len(),
        allocations: set.allocations.len(),
        categories: set.categories.len(),
        financing_rules_added,
    })
}
