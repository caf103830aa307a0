//! GraphQL types of the reference data. They are built from storage rows but are the published contract: a table
//! change must not change them silently.

use async_graphql::{ComplexObject, Context, Object, SimpleObject};
use entities::{
    academie, collectivite, departement, envelope_allocation, financing_rule, orientation_code, region,
    structure_category,
};
use sea_orm::prelude::Date;

use super::annex::{SumCheck, WeightCheck};
use crate::error::{ApiError, ApiResult, stored};
use crate::money::{Euros, basis_points_to_french_percent, basis_points_to_percent};
use crate::territory::service::catalog;
use crate::vocabulary::{AnnexColumn, CategoryNature, CollectiviteKind, Compartment, CostComponent, Payer, Public};

/// The region of a stored code (its absence from the catalog is a fault of the hub).
fn region_by_code(ctx: &Context<'_>, code: &str) -> ApiResult<Region> {
    let region = catalog(ctx)?.region(code).cloned();
    Ok(Region(stored(region, "region", code)?))
}

/// A region (INSEE code) and its ARS.
pub struct Region(pub region::Model);

#[Object]
impl Region {
    /// INSEE region code, as a string ("84").
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// One of the five overseas regions, whose rows make the annex's DOM subtotal.
    async fn is_overseas(&self) -> bool {
        self.0.is_overseas
    }

    /// Its départements, by code.
    async fn departements(&self, ctx: &Context<'_>) -> ApiResult<Vec<Departement>> {
        Ok(catalog(ctx)?.departements_of_region(&self.0.code).cloned().map(Departement).collect())
    }

    /// Its académies: école money is split by académie where a region has several.
    async fn academies(&self, ctx: &Context<'_>) -> ApiResult<Vec<Academie>> {
        Ok(catalog(ctx)?.academies_of_region(&self.0.code).cloned().map(Academie).collect())
    }

    /// The collectivités with departmental powers on its territory: the co-financers of its measures.
    async fn collectivites(&self, ctx: &Context<'_>) -> ApiResult<Vec<Collectivite>> {
        catalog(ctx)?
            .collectivites_of_region(&self.0.code)
            .cloned()
            .map(Collectivite::try_from)
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// The commitment authority notified to the region, per compartment (annex of the circular).
    async fn envelopes(&self, ctx: &Context<'_>) -> ApiResult<Vec<Envelope>> {
        let loader = ctx.data::<async_graphql::dataloader::DataLoader<super::service::EnvelopeLoader>>()?;
        let rows = loader.load_one(self.0.code.clone()).await?.unwrap_or_default();
        rows.into_iter().map(Envelope::try_from).collect::<Result<_, _>>().map_err(Into::into)
    }
}

/// A département (INSEE code kept as a string: "01", "2A", "971").
pub struct Departement(pub departement::Model);

#[Object]
impl Departement {
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn region_code(&self) -> &str {
        &self.0.region_code
    }

    async fn region(&self, ctx: &Context<'_>) -> ApiResult<Region> {
        region_by_code(ctx, &self.0.region_code)
    }

    async fn academie_code(&self) -> &str {
        &self.0.academie_code
    }

    /// The académie (and so the rectorat) it belongs to.
    async fn academie(&self, ctx: &Context<'_>) -> ApiResult<Academie> {
        let academie = catalog(ctx)?.academie(&self.0.academie_code).cloned();
        Ok(Academie(stored(academie, "académie", &self.0.academie_code)?))
    }

    /// The collectivités that co-finance measures here. Usually its conseil départemental; in the Rhône both the
    /// Département and the Métropole de Lyon; in Corsica, Alsace, Paris, Martinique and Guyane the collectivité that
    /// holds departmental powers.
    async fn cofinancers(&self, ctx: &Context<'_>) -> ApiResult<Vec<Collectivite>> {
        catalog(ctx)?
            .cofinancers_of_departement(&self.0.code)
            .cloned()
            .map(Collectivite::try_from)
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }
}

/// An académie: the territory of a rectorat, within one region.
pub struct Academie(pub academie::Model);

#[Object]
impl Academie {
    /// The hub's code for the académie: lower-case, hyphenated ("lyon", "aix-marseille").
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn region_code(&self) -> &str {
        &self.0.region_code
    }

    async fn region(&self, ctx: &Context<'_>) -> ApiResult<Region> {
        region_by_code(ctx, &self.0.region_code)
    }

    async fn departements(&self, ctx: &Context<'_>) -> ApiResult<Vec<Departement>> {
        Ok(catalog(ctx)?.departements_of_academie(&self.0.code).cloned().map(Departement).collect())
    }
}

/// A collectivité exercising departmental powers: the co-financer of measures on the départements it covers.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Collectivite {
    /// The hub's code ("CD-01", "METROPOLE-LYON", "CORSE", "ALSACE", "PARIS", "MARTINIQUE", "GUYANE").
    pub code: String,
    pub name: String,
    pub kind: CollectiviteKind,
}

impl TryFrom<collectivite::Model> for Collectivite {
    type Error = ApiError;

    fn try_from(row: collectivite::Model) -> Result<Self, ApiError> {
        Ok(Collectivite {
            kind: stored(CollectiviteKind::from_stored(&row.kind), "collectivité kind", &row.kind)?,
            code: row.code,
            name: row.name,
        })
    }
}

#[ComplexObject]
impl Collectivite {
    /// The départements it covers (two for Corsica and Alsace).
    async fn departements(&self, ctx: &Context<'_>) -> ApiResult<Vec<Departement>> {
        Ok(catalog(ctx)?.departements_of_collectivite(&self.code).cloned().map(Departement).collect())
    }
}

/// The commitment authority (AE) notified to a region for one compartment.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Envelope {
    pub region_code: String,
    pub compartment: Compartment,
    /// Notified AE: the full-year recurring cost the region may commit in this compartment over 2024-2030.
    pub notified: Euros,
    /// Where the amount comes from.
    pub source: String,
}

impl TryFrom<envelope_allocation::Model> for Envelope {
    type Error = ApiError;

    fn try_from(row: envelope_allocation::Model) -> Result<Self, ApiError> {
        Ok(Envelope {
            compartment: stored(Compartment::from_stored(&row.compartment), "compartment", &row.compartment)?,
            region_code: row.region_code,
            notified: Euros(row.notified_cents),
            source: row.source,
        })
    }
}

#[ComplexObject]
impl Envelope {
    async fn region(&self, ctx: &Context<'_>) -> ApiResult<Region> {
        region_by_code(ctx, &self.region_code)
    }
}

fn column_label(column: AnnexColumn) -> &'static str {
    match column {
        AnnexColumn::Socle => "socle",
        AnnexColumn::Precoce => "précoce",
        AnnexColumn::Ecole => "école",
        AnnexColumn::Total => "total",
    }
}

/// A printed total of the annex compared with the sum of the stored regional amounts it covers.
pub struct AnnexCheck {
    pub check: SumCheck,
    pub scope_label: String,
}

#[Object]
impl AnnexCheck {
    /// "FR" for the printed national total, "DOM" for the printed overseas subtotal, or a region code for a region's
    /// printed total against its three compartments.
    async fn scope(&self) -> &str {
        &self.check.scope
    }

    async fn scope_label(&self) -> &str {
        &self.scope_label
    }

    /// The annex column checked.
    async fn compartment(&self) -> AnnexColumn {
        self.check.column
    }

    /// The sum of the stored, unrounded regional amounts.
    async fn computed_total(&self) -> Euros {
        self.check.computed
    }

    /// The figure printed in the annex.
    async fn printed_total(&self) -> Euros {
        self.check.printed
    }

    /// computedTotal − printedTotal.
    async fn gap(&self) -> Euros {
        self.check.gap()
    }

    async fn consistent(&self) -> bool {
        self.check.gap().0 == 0
    }

    /// How many regional rows were summed.
    async fn rows_summed(&self) -> usize {
        self.check.rows
    }

    /// The finding in plain French.
    async fn message(&self) -> String {
        let column = column_label(self.check.column);
        let (computed, printed, gap) =
            (self.check.computed.to_french(), self.check.printed.to_french(), self.check.gap().to_french());
        let what = if self.check.rows == 1 && self.check.scope.len() == 2 && self.check.scope != "FR" {
            format!("Annexe, ligne {} : socle + précoce + école", self.scope_label)
        } else {
            format!(
                "Annexe, {}, colonne {column} : la somme des {} lignes régionales",
                self.scope_label, self.check.rows
            )
        };
        if self.check.gap().0 == 0 {
            format!("{what} ({computed}) est égale au montant imprimé.")
        } else {
            format!(
                "{what} fait {computed} alors que le montant imprimé est {printed}, soit un écart de {gap}. \
                 Le hub calcule sur les montants régionaux non arrondis."
            )
        }
    }
}

/// Weights are printed with two decimals from regional weights themselves rounded: a recomputed weight within this
/// many basis points of the printed one is consistent.
pub const WEIGHT_TOLERANCE_BP: i64 = 10;

/// The printed DOM weight ("poids CNH / DRL 2023") against the weight implied by the five overseas regions' rows.
pub struct AnnexWeightCheck(pub WeightCheck);

#[Object]
impl AnnexWeightCheck {
    async fn scope(&self) -> &str {
        &self.0.scope
    }

    /// Weight implied by the regional rows (Σ total / Σ DRL, each DRL = total / printed weight), in percent.
    async fn computed_weight(&self) -> String {
        basis_points_to_percent(self.0.computed_bp)
    }

    /// Weight printed in the annex, in percent.
    async fn printed_weight(&self) -> String {
        basis_points_to_percent(self.0.printed_bp)
    }

    /// computedWeight − printedWeight, in percentage points.
    async fn gap(&self) -> String {
        basis_points_to_percent(self.0.computed_bp - self.0.printed_bp)
    }

    /// Within the tolerance of the printed rounding (0.10 point).
    async fn consistent(&self) -> bool {
        (self.0.computed_bp - self.0.printed_bp).abs() <= WEIGHT_TOLERANCE_BP
    }

    async fn message(&self) -> String {
        let fr = basis_points_to_french_percent;
        if (self.0.computed_bp - self.0.printed_bp).abs() <= WEIGHT_TOLERANCE_BP {
            format!(
                "Annexe, poids CNH / DRL 2023 des DOM : {} %, cohérent avec les poids régionaux.",
                fr(self.0.printed_bp)
            )
        } else {
            format!(
                "Annexe, poids CNH / DRL 2023 des DOM : l'annexe imprime {} % mais les cinq lignes régionales \
                 impliquent {} % (écart de {} point).",
                fr(self.0.printed_bp),
                fr(self.0.computed_bp),
                fr(self.0.computed_bp - self.0.printed_bp)
            )
        }
    }
}

/// A kind of structure: a FINESS establishment category (active or legacy) or a dispositif without one.
pub struct StructureCategory(pub structure_category::Model);

#[Object]
impl StructureCategory {
    /// FINESS category code ("183") or the hub's dispositif code ("PCO").
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn nature(&self) -> ApiResult<CategoryNature> {
        Ok(stored(CategoryNature::from_stored(&self.0.nature), "category nature", &self.0.nature)?)
    }

    async fn label(&self) -> &str {
        &self.0.label
    }

    async fn public(&self) -> ApiResult<Public> {
        Ok(stored(Public::from_stored(&self.0.public), "public", &self.0.public)?)
    }

    /// Closed in the 2018 reform of the FINESS nomenclature: accepted on existing establishments, flagged on new
    /// creations.
    async fn legacy(&self) -> bool {
        self.0.legacy
    }

    /// The category that replaced a legacy one.
    async fn successor(&self, ctx: &Context<'_>) -> ApiResult<Option<StructureCategory>> {
        let Some(code) = &self.0.successor_code else {
            return Ok(None);
        };
        Ok(catalog(ctx)?.category(code).cloned().map(StructureCategory))
    }

    async fn closed_on(&self) -> Option<Date> {
        self.0.closed_on
    }
}

/// A dated rule: who pays which cost component of a kind of structure.
pub struct FinancingRule(pub financing_rule::Model);

#[Object]
impl FinancingRule {
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.to_string())
    }

    async fn category_code(&self) -> &str {
        &self.0.category_code
    }

    async fn category(&self, ctx: &Context<'_>) -> ApiResult<StructureCategory> {
        let category = catalog(ctx)?.category(&self.0.category_code).cloned();
        Ok(StructureCategory(stored(category, "category", &self.0.category_code)?))
    }

    async fn cost_component(&self) -> ApiResult<CostComponent> {
        Ok(stored(CostComponent::from_stored(&self.0.cost_component), "cost component", &self.0.cost_component)?)
    }

    async fn payer(&self) -> ApiResult<Payer> {
        Ok(stored(Payer::from_stored(&self.0.payer), "payer", &self.0.payer)?)
    }

    /// The payer's share of the component in percent ("80.00"); null when the component is not split by a flat
    /// percentage (a care lump sum, an accommodation price, a share set by each authorisation).
    async fn share(&self) -> Option<String> {
        self.0.share_bp.map(|bp| basis_points_to_percent(i64::from(bp)))
    }

    /// Set when the rule is a convention for one département, overriding the national rule there.
    async fn departement_code(&self) -> Option<&str> {
        self.0.departement_code.as_deref()
    }

    async fn valid_from(&self) -> Date {
        self.0.valid_from
    }

    async fn valid_to(&self) -> Option<Date> {
        self.0.valid_to
    }

    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }

    async fn source(&self) -> &str {
        &self.0.source
    }
}

/// An MDPH orientation decision code (CDAPH) and the kind of structure it points to.
pub struct OrientationCode(pub orientation_code::Model);

#[Object]
impl OrientationCode {
    /// The decision code ("7.1", "13.3").
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn label(&self) -> &str {
        &self.0.label
    }

    async fn public(&self) -> ApiResult<Public> {
        Ok(stored(Public::from_stored(&self.0.public), "public", &self.0.public)?)
    }

    async fn category(&self, ctx: &Context<'_>) -> ApiResult<Option<StructureCategory>> {
        let Some(code) = &self.0.category_code else {
            return Ok(None);
        };
        Ok(catalog(ctx)?.category(code).cloned().map(StructureCategory))
    }
}
