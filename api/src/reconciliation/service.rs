//! Loading a reconciliation snapshot from the database, restricted in SQL to the caller's territory.

use entities::{commitment, envelope_allocation, financing_rule, measure, school_plan};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};

use super::engine::{CommitmentFact, MeasureFact, RuleFact, SchoolPlanFact, Snapshot};
use crate::auth::policy::Reach;
use crate::auth::principal::{Principal, ScopeLevel};
use crate::error::{ApiError, stored};
use crate::programming::service::measure_scope;
use crate::programming::types::{CommitmentRecord, MeasureRecord};
use crate::territory::service::Catalog;
use crate::vocabulary::{CommitmentStatus, Compartment, CostComponent, MeasureNature, Payer};

/// What a snapshot covers: the caller's reach, narrowed by an optional region or département.
pub struct SnapshotScope<'a> {
    pub principal: &'a Principal,
    pub reach: Reach,
    pub region: Option<String>,
    pub departement: Option<String>,
}

impl SnapshotScope<'_> {
    /// Envelopes are regional: they are reconciled only for a whole region (national and ARS reaches).
    fn covers_whole_regions(&self) -> bool {
        self.departement.is_none()
            && (self.reach == Reach::Everything
                || matches!(self.principal.scope.level, ScopeLevel::National | ScopeLevel::Region))
    }
}

pub async fn load_snapshot(
    db: &DatabaseConnection,
    catalog: &Catalog,
    scope: &SnapshotScope<'_>,
) -> Result<Snapshot, ApiError> {
    let mut condition = measure_scope(scope.principal, scope.reach);
    if let Some(region) = &scope.region {
        condition = condition.add(measure::Column::RegionCode.eq(region.clone()));
    }
    if let Some(departement) = &scope.departement {
        condition = condition.add(measure::Column::DepartementCode.eq(departement.clone()));
    }
    let measures = measure::Entity::find().filter(condition).all(db).await?;
    let ids: Vec<String> = measures.iter().map(|m| m.id.clone()).collect();
    let mut commitments = Vec::new();
    for chunk in ids.chunks(1000) {
        commitments.extend(
            commitment::Entity::find()
                .filter(commitment::Column::MeasureId.is_in(chunk.iter().cloned()))
                .filter(commitment::Column::Status.eq(CommitmentStatus::Active.as_str()))
                .all(db)
                .await?,
        );
    }
    let mut snapshot = Snapshot {
        legacy_categories: catalog.categories.iter().filter(|c| c.legacy).map(|c| c.code.clone()).collect(),
        academie_of: catalog.departements.iter().map(|d| (d.code.clone(), d.academie_code.clone())).collect(),
        ..Snapshot::default()
    };
    for m in &measures {
        let record = MeasureRecord::try_from(m)?;
        snapshot.measures.push(MeasureFact {
            id: record.id,
            reference: record.reference,
            region: record.region_code,
            departement: record.departement_code,
            category: record.category_code,
            compartment: record.compartment,
            publics: record.publics,
            solutions: record.solutions,
            planned_installation: record.planned_installation,
            status: record.status,
            creation: record.nature == MeasureNature::Creation,
        });
    }
    for c in &commitments {
        let record = CommitmentRecord::try_from(c)?;
        snapshot.commitments.push(CommitmentFact {
            id: record.id,
            measure_id: record.measure_id,
            funder: record.funder,
            funder_code: record.funder_code,
            component: record.cost_component,
            full_year_cents: record.full_year_amount.0,
            schedule: record.schedule.iter().map(|y| (y.year, y.amount.0)).collect(),
            capacity: record.capacity,
            installation: record.installation_date,
        });
    }
    for r in financing_rule::Entity::find().all(db).await? {
        snapshot.rules.push(RuleFact {
            component: stored(CostComponent::from_stored(&r.cost_component), "cost component", &r.cost_component)?,
            payer: stored(Payer::from_stored(&r.payer), "payer", &r.payer)?,
            category: r.category_code,
            share_bp: r.share_bp,
            departement: r.departement_code,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
        });
    }
    if scope.covers_whole_regions() {
        let regions: Vec<String> =
            match (&scope.region, scope.reach == Reach::Everything || scope.principal.scope.is_national()) {
                (Some(region), _) => vec![region.clone()],
                (None, true) => catalog.regions.iter().map(|r| r.code.clone()).collect(),
                (None, false) => scope.principal.scope.region_codes.clone(),
            };
        let allowed: Vec<String> = regions
            .into_iter()
            .filter(|r| scope.reach == Reach::Everything || scope.principal.scope.covers_region(r))
            .collect();
        for row in envelope_allocation::Entity::find()
            .filter(envelope_allocation::Column::RegionCode.is_in(allowed.clone()))
            .all(db)
            .await?
        {
            let compartment = stored(Compartment::from_stored(&row.compartment), "compartment", &row.compartment)?;
            snapshot.envelopes.insert((row.region_code, compartment), row.notified_cents);
        }
        let academies: Vec<String> =
            allowed.iter().flat_map(|r| catalog.academies_of_region(r).map(|a| a.code.clone())).collect();
        for plan in school_plan::Entity::find()
            .filter(Condition::all().add(school_plan::Column::AcademieCode.is_in(academies)))
            .all(db)
            .await?
        {
            snapshot.school_plans.push(SchoolPlanFact {
                id: plan.id,
                academie: plan.academie_code,
                departement: plan.departement_code,
                cost_cents: plan.medico_social_cost_cents,
                year: plan.year,
            });
        }
    }
    Ok(snapshot)
}
