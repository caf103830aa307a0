//! Reading the reference data: the territorial catalog (held in memory, it changes only with a release of the
//! reference files) and the editable, money-bearing tables read from the database at each request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entities::{
    academie, annex_printed_figure, collectivite, collectivite_departement, departement, envelope_allocation,
    financing_rule, institution, orientation_code, region, structure_category,
};
use sea_orm::prelude::Date;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::annex::AnnexFigures;
use crate::error::{ApiError, SharedError};
use crate::vocabulary::{AnnexColumn, Compartment};

/// Regions, départements, académies, collectivités, institutions, categories and orientation codes, with the indexes
/// that answer "which départements in this region" without a query.
#[derive(Debug, Default)]
pub struct Catalog {
    pub regions: Vec<region::Model>,
    pub departements: Vec<departement::Model>,
    pub academies: Vec<academie::Model>,
    pub collectivites: Vec<collectivite::Model>,
    pub institutions: Vec<institution::Model>,
    pub categories: Vec<structure_category::Model>,
    pub orientations: Vec<orientation_code::Model>,
    /// collectivité code → départements covered, and the reverse.
    coverage: Vec<collectivite_departement::Model>,
    region_index: HashMap<String, usize>,
    departement_index: HashMap<String, usize>,
    academie_index: HashMap<String, usize>,
    collectivite_index: HashMap<String, usize>,
    category_index: HashMap<String, usize>,
}

impl Catalog {
    pub async fn load(db: &DatabaseConnection) -> Result<Arc<Catalog>, DbErr> {
        // Sorted in byte order here, not by the database's collation: the same order on SQLite and PostgreSQL.
        fn by_code<T>(mut rows: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<T> {
            rows.sort_by(|a, b| key(a).cmp(key(b)));
            rows
        }
        let regions = by_code(region::Entity::find().all(db).await?, |r| &r.code);
        let departements = by_code(departement::Entity::find().all(db).await?, |d| &d.code);
        let academies = by_code(academie::Entity::find().all(db).await?, |a| &a.code);
        let collectivites = by_code(collectivite::Entity::find().all(db).await?, |c| &c.code);
        let institutions = by_code(institution::Entity::find().all(db).await?, |i| &i.code);
        let categories = by_code(structure_category::Entity::find().all(db).await?, |c| &c.code);
        let orientations = by_code(orientation_code::Entity::find().all(db).await?, |o| &o.code);
        let mut coverage = collectivite_departement::Entity::find().all(db).await?;
        coverage.sort_by(|a, b| {
            (&a.collectivite_code, &a.departement_code).cmp(&(&b.collectivite_code, &b.departement_code))
        });
        fn index<T>(items: &[T], key: impl Fn(&T) -> &String) -> HashMap<String, usize> {
            items.iter().enumerate().map(|(i, item)| (key(item).clone(), i)).collect()
        }
        Ok(Arc::new(Catalog {
            region_index: index(&regions, |r| &r.code),
            departement_index: index(&departements, |d| &d.code),
            academie_index: index(&academies, |a| &a.code),
            collectivite_index: index(&collectivites, |c| &c.code),
            category_index: index(&categories, |c| &c.code),
            regions,
            departements,
            academies,
            collectivites,
            institutions,
            categories,
            orientations,
            coverage,
        }))
    }

    pub fn region(&self, code: &str) -> Option<&region::Model> {
        self.region_index.get(code).map(|&i| &self.regions[i])
    }

    pub fn departement(&self, code: &str) -> Option<&departement::Model> {
        self.departement_index.get(code).map(|&i| &self.departements[i])
    }

    pub fn academie(&self, code: &str) -> Option<&academie::Model> {
        self.academie_index.get(code).map(|&i| &self.academies[i])
    }

    /// The communes whose collectivité is not simply their département's (the Métropole de Lyon's).
    pub fn commune_parts(&self) -> &crate::territory::communes::CommuneParts {
        static PARTS: std::sync::OnceLock<crate::territory::communes::CommuneParts> = std::sync::OnceLock::new();
        PARTS.get_or_init(crate::territory::communes::CommuneParts::shipped)
    }

    pub fn collectivite(&self, code: &str) -> Option<&collectivite::Model> {
        self.collectivite_index.get(code).map(|&i| &self.collectivites[i])
    }

    pub fn category(&self, code: &str) -> Option<&structure_category::Model> {
        self.category_index.get(code).map(|&i| &self.categories[i])
    }

    pub fn departements_of_region<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a departement::Model> {
        self.departements.iter().filter(move |d| d.region_code == region)
    }

    pub fn departements_of_academie<'a>(&'a self, academie: &'a str) -> impl Iterator<Item = &'a departement::Model> {
        self.departements.iter().filter(move |d| d.academie_code == academie)
    }

    pub fn academies_of_region<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a academie::Model> {
        self.academies.iter().filter(move |a| a.region_code == region)
    }

    pub fn departements_of_collectivite<'a>(
        &'a self,
        collectivite: &'a str,
    ) -> impl Iterator<Item = &'a departement::Model> {
        self.coverage
            .iter()
            .filter(move |c| c.collectivite_code == collectivite)
            .filter_map(|c| self.departement(&c.departement_code))
    }

    /// The collectivités that may co-finance in a département (two in the Rhône: the Département and the Métropole).
    pub fn cofinancers_of_departement<'a>(
        &'a self,
        departement: &'a str,
    ) -> impl Iterator<Item = &'a collectivite::Model> {
        self.coverage
            .iter()
            .filter(move |c| c.departement_code == departement)
            .filter_map(|c| self.collectivite(&c.collectivite_code))
    }

    pub fn collectivites_of_region<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a collectivite::Model> {
        self.collectivites
            .iter()
            .filter(move |c| self.departements_of_collectivite(&c.code).any(|d| d.region_code == region))
    }
}

/// Envelope allocations of the given regions (all regions when `regions` is None), ordered by region and compartment.
pub async fn allocations(
    db: &DatabaseConnection,
    regions: Option<&[String]>,
) -> Result<Vec<envelope_allocation::Model>, ApiError> {
    let mut query = envelope_allocation::Entity::find();
    if let Some(regions) = regions {
        query = query.filter(envelope_allocation::Column::RegionCode.is_in(regions.iter().cloned()));
    }
    let mut rows = query.order_by_asc(envelope_allocation::Column::RegionCode).all(db).await?;
    // The annex's column order (socle, précoce, école), not the alphabetical one.
    rows.sort_by_key(|r| (r.region_code.clone(), Compartment::from_stored(&r.compartment)));
    Ok(rows)
}

/// The stored annex, ready for the pure checks.
pub async fn annex_figures(db: &DatabaseConnection, catalog: &Catalog) -> Result<AnnexFigures, ApiError> {
    let mut figures = AnnexFigures {
        overseas_regions: catalog.regions.iter().filter(|r| r.is_overseas).map(|r| r.code.clone()).collect(),
        ..AnnexFigures::default()
    };
    for row in allocations(db, None).await? {
        let compartment = Compartment::from_stored(&row.compartment).ok_or_else(|| {
            ApiError::Internal(format!("stored compartment « {} » is unknown", row.compartment).into())
        })?;
        figures.allocations.insert((row.region_code, compartment), row.notified_cents);
    }
    for row in annex_printed_figure::Entity::find().all(db).await? {
        match (row.figure.as_str(), row.unit.as_str()) {
            ("WEIGHT", "BASIS_POINTS") => {
                figures.printed_weights.insert(row.scope, row.value);
            }
            (column, "CENTS") => {
                let column = AnnexColumn::from_stored(column)
                    .ok_or_else(|| ApiError::Internal(format!("stored annex figure « {column} » is unknown").into()))?;
                figures.printed_totals.insert((row.scope, column), row.value);
            }
            (figure, unit) => {
                return Err(ApiError::Internal(format!("annex figure {figure} stored in unit {unit}").into()));
            }
        }
    }
    Ok(figures)
}

/// Financing rules, optionally for one category, one département (national rules plus its conventions) and one date.
pub async fn financing_rules(
    db: &DatabaseConnection,
    category: Option<&str>,
    departement: Option<&str>,
    on: Option<Date>,
) -> Result<Vec<financing_rule::Model>, ApiError> {
    let mut query = financing_rule::Entity::find();
    if let Some(category) = category {
        query = query.filter(financing_rule::Column::CategoryCode.eq(category));
    }
    query = query.filter(match departement {
        Some(d) => Condition::any()
            .add(financing_rule::Column::DepartementCode.is_null())
            .add(financing_rule::Column::DepartementCode.eq(d)),
        None => Condition::all(),
    });
    if let Some(day) = on {
        query = query.filter(financing_rule::Column::ValidFrom.lte(day)).filter(
            Condition::any()
                .add(financing_rule::Column::ValidTo.is_null())
                .add(financing_rule::Column::ValidTo.gte(day)),
        );
    }
    let mut rules = query.order_by_asc(financing_rule::Column::Id).all(db).await?;
    // Byte order of the category code, identical on every backend, then the order rules were recorded in.
    rules.sort_by(|a, b| (&a.category_code, a.id).cmp(&(&b.category_code, b.id)));
    Ok(rules)
}

/// Batches the envelopes of every region a query touches into one SQL query (`regions { envelopes }`).
pub struct EnvelopeLoader {
    pub db: DatabaseConnection,
}

impl Loader<String> for EnvelopeLoader {
    type Value = Vec<envelope_allocation::Model>;
    type Error = SharedError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = allocations(&self.db, Some(keys)).await?;
        let mut by_region: BTreeMap<String, Vec<_>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for row in rows {
            by_region.entry(row.region_code.clone()).or_default().push(row);
        }
        Ok(by_region.into_iter().collect())
    }
}

/// The reference catalog, from the schema's data.
pub fn catalog<'a>(ctx: &async_graphql::Context<'a>) -> Result<&'a Catalog, ApiError> {
    ctx.data::<Arc<Catalog>>()
        .map(|c| c.as_ref())
        .map_err(|_| ApiError::Internal("reference catalog missing from the schema data".into()))
}
