//! Territory and reference data: regions, départements, académies, collectivités, the annex's envelopes and its
//! integrity, structure categories, financing rules and MDPH orientation codes.

pub mod annex;
pub mod codes;
pub mod communes;
pub mod service;
pub mod types;

use async_graphql::{Context, Object};
use sea_orm::prelude::Date;

use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::territory::service::catalog;
use types::{
    Academie, AnnexCheck, AnnexWeightCheck, Collectivite, Departement, Envelope, FinancingRule, OrientationCode,
    Region, StructureCategory,
};

/// Checks a region code's shape, then that it exists.
fn known_region<'a>(ctx: &Context<'a>, code: &str) -> Result<&'a entities::region::Model, ApiError> {
    if !codes::is_region_code(code) {
        return Err(ApiError::BadUserInput(format!(
            "« {code} » n'est pas un code de région INSEE : deux chiffres, par exemple \"84\""
        )));
    }
    catalog(ctx)?.region(code).ok_or_else(|| ApiError::NotFound(format!("aucune région de code « {code} »")))
}

fn known_departement<'a>(ctx: &Context<'a>, code: &str) -> Result<&'a entities::departement::Model, ApiError> {
    if !codes::is_departement_code(code) {
        return Err(ApiError::BadUserInput(format!(
            "« {code} » n'est pas un code de département : deux caractères (\"01\", \"2A\") ou trois chiffres outre-mer \
             (\"971\")"
        )));
    }
    catalog(ctx)?.departement(code).ok_or_else(|| ApiError::NotFound(format!("aucun département de code « {code} »")))
}

#[derive(Default)]
pub struct TerritoryQuery;

#[Object]
impl TerritoryQuery {
    /// The 18 regions, by INSEE code.
    async fn regions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Region>> {
        Ok(catalog(ctx)?.regions.iter().cloned().map(Region).collect())
    }

    /// One region by INSEE code ("84"). An unknown code is `NOT_FOUND`; a malformed one `BAD_USER_INPUT`.
    async fn region(&self, ctx: &Context<'_>, code: String) -> ApiResult<Option<Region>> {
        Ok(Some(Region(known_region(ctx, &code)?.clone())))
    }

    /// Federation (`_entities`): a region by its key, for a national graph composed of several subgraphs.
    #[graphql(entity)]
    async fn find_region_by_code(&self, ctx: &Context<'_>, code: String) -> ApiResult<Region> {
        Ok(Region(known_region(ctx, &code)?.clone()))
    }

    /// Federation (`_entities`): a département by its key.
    #[graphql(entity)]
    async fn find_departement_by_code(&self, ctx: &Context<'_>, code: String) -> ApiResult<Departement> {
        Ok(Departement(known_departement(ctx, &code)?.clone()))
    }

    /// One département by code ("01", "2A", "971").
    async fn departement(&self, ctx: &Context<'_>, code: String) -> ApiResult<Option<Departement>> {
        Ok(Some(Departement(known_departement(ctx, &code)?.clone())))
    }

    /// The 101 départements, or those of one region.
    async fn departements(&self, ctx: &Context<'_>, region_code: Option<String>) -> ApiResult<Vec<Departement>> {
        let catalog = catalog(ctx)?;
        Ok(match region_code {
            Some(code) => {
                let region = known_region(ctx, &code)?;
                catalog.departements_of_region(&region.code).cloned().map(Departement).collect()
            }
            None => catalog.departements.iter().cloned().map(Departement).collect(),
        })
    }

    /// The 30 académies (rectorats).
    async fn academies(&self, ctx: &Context<'_>) -> ApiResult<Vec<Academie>> {
        Ok(catalog(ctx)?.academies.iter().cloned().map(Academie).collect())
    }

    /// One académie by the hub's code ("lyon", "aix-marseille").
    async fn academie(&self, ctx: &Context<'_>, code: String) -> ApiResult<Option<Academie>> {
        if !codes::is_academie_code(&code) {
            return Err(ApiError::BadUserInput(format!(
                "« {code} » n'est pas un code d'académie : minuscules et tirets, par exemple \"aix-marseille\""
            ))
            .into());
        }
        let academie = catalog(ctx)?
            .academie(&code)
            .ok_or_else(|| ApiError::NotFound(format!("aucune académie de code « {code} »")))?;
        Ok(Some(Academie(academie.clone())))
    }

    /// The collectivités with departmental powers (co-financers), or those covering one département.
    async fn collectivites(&self, ctx: &Context<'_>, departement_code: Option<String>) -> ApiResult<Vec<Collectivite>> {
        let catalog = catalog(ctx)?;
        let rows: Vec<_> = match departement_code {
            Some(code) => {
                let departement = known_departement(ctx, &code)?;
                catalog.cofinancers_of_departement(&departement.code).cloned().collect()
            }
            None => catalog.collectivites.clone(),
        };
        rows.into_iter().map(Collectivite::try_from).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Notified commitment authority per region and compartment (annex of the circular), for one region or all.
    async fn envelopes(&self, ctx: &Context<'_>, region_code: Option<String>) -> ApiResult<Vec<Envelope>> {
        let regions = match region_code {
            Some(code) => Some(vec![known_region(ctx, &code)?.code.clone()]),
            None => None,
        };
        let rows = service::allocations(db(ctx)?, regions.as_deref()).await?;
        rows.into_iter().map(Envelope::try_from).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Every printed total of the annex against the sum of the stored regional amounts it covers: the national
    /// total and the DOM subtotal per column, and each region's total. Computed at each call from the stored rows.
    async fn annex_integrity(&self, ctx: &Context<'_>) -> ApiResult<Vec<AnnexCheck>> {
        let catalog = catalog(ctx)?;
        let figures = service::annex_figures(db(ctx)?, catalog).await?;
        Ok(annex::sum_checks(&figures)
            .into_iter()
            .map(|check| {
                let scope_label = match check.scope.as_str() {
                    annex::NATIONAL => "total France".to_owned(),
                    annex::OVERSEAS => "total DOM".to_owned(),
                    code => catalog.region(code).map_or_else(|| code.to_owned(), |r| r.name.clone()),
                };
                AnnexCheck { check, scope_label }
            })
            .collect())
    }

    /// The printed DOM weight ("poids CNH / DRL 2023") against the weight the five overseas regions' rows imply.
    async fn annex_weight_integrity(&self, ctx: &Context<'_>) -> ApiResult<Vec<AnnexWeightCheck>> {
        let figures = service::annex_figures(db(ctx)?, catalog(ctx)?).await?;
        Ok(annex::overseas_weight_check(&figures).into_iter().map(AnnexWeightCheck).collect())
    }

    /// Kinds of structure: FINESS categories (with legacy ones and their successors) and dispositifs.
    async fn categories(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = true)] include_legacy: bool,
    ) -> ApiResult<Vec<StructureCategory>> {
        Ok(catalog(ctx)?
            .categories
            .iter()
            .filter(|c| include_legacy || !c.legacy)
            .cloned()
            .map(StructureCategory)
            .collect())
    }

    /// Who pays what: the dated financing rules, for one category, the rules applying in one département (national
    /// rules and its conventions), and those valid on one date.
    async fn financing_rules(
        &self,
        ctx: &Context<'_>,
        category_code: Option<String>,
        departement_code: Option<String>,
        on: Option<Date>,
    ) -> ApiResult<Vec<FinancingRule>> {
        if let Some(code) = &category_code
            && catalog(ctx)?.category(code).is_none()
        {
            return Err(ApiError::NotFound(format!("aucune catégorie FINESS ni dispositif de code « {code} »")).into());
        }
        if let Some(code) = &departement_code {
            known_departement(ctx, code)?;
        }
        let rules =
            service::financing_rules(db(ctx)?, category_code.as_deref(), departement_code.as_deref(), on).await?;
        Ok(rules.into_iter().map(FinancingRule).collect())
    }

    /// MDPH orientation decision codes used by needs indicators.
    async fn orientation_codes(&self, ctx: &Context<'_>) -> ApiResult<Vec<OrientationCode>> {
        Ok(catalog(ctx)?.orientations.iter().cloned().map(OrientationCode).collect())
    }
}
