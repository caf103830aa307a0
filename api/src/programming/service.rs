//! Storing and reading measures and commitments. Territory restrictions are predicates of the SQL queries.

use std::sync::Arc;

use crate::reconciled::live::Reconciled;

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use entities::{commitment, commitment_revision, measure, measure_revision};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};

use super::types::{
    CommitmentInput, CommitmentPayload, CommitmentRecord, MeasureFilter, MeasureInput, MeasurePayload, MeasureRecord,
    ViolationView,
};
use super::validation::{check_commitment, check_measure};
use crate::access::filters::{TerritoryFilter, check_territory_filter};
use crate::access::policy::Reach;
use crate::access::principal::{Principal, Role, ScopeLevel};
use crate::error::ApiError;
use crate::kernel::audit_log::{self as audit, Actor};
use crate::kernel::receipts::{Channel, record_submission};
use crate::kernel::write::{Begun, Write, content_hash, is_unique_violation};
use crate::territory::service::Catalog;
use crate::validation::Violations;
use crate::vocabulary::{CommitmentStatus, DataKind, MeasureStatus, Payer};

pub use crate::access::filters::measure_scope;

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("aucune mesure « {id} » dans votre territoire"))
}

/// `expectedVersion` is not the stored version: the answer gives the stored one (`extensions.currentVersion`).
fn conflict(what: &str, expected: i32, stored: i32) -> ApiError {
    ApiError::version_conflict(
        format!(
            "{what} a changé entre-temps (version {stored}, vous attendiez {expected}) : relisez-la avant de la modifier ; rien n'a été écrit"
        ),
        Some(stored),
    )
}

/// The region of a stored measure (the one whose reconciliation a commitment on it changes).
pub async fn region_of_measure<C: ConnectionTrait>(conn: &C, id: &str) -> Result<String, ApiError> {
    measure::Entity::find_by_id(id.to_owned()).one(conn).await?.map(|m| m.region_code).ok_or_else(|| not_found(id))
}

/// The measure visible to the principal, by id.
pub async fn find_measure<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    reach: Reach,
    id: &str,
) -> Result<measure::Model, ApiError> {
    measure::Entity::find_by_id(id.to_owned())
        .filter(measure_scope(principal, reach))
        .one(conn)
        .await?
        .ok_or_else(|| not_found(id))
}

async fn record_measure_revision(
    write: &mut Write,
    record: &MeasureRecord,
    submission_id: &str,
) -> Result<(), ApiError> {
    let insert = measure_revision::Entity::insert(measure_revision::ActiveModel {
        measure_id: Set(record.id.clone()),
        version: Set(record.version),
        snapshot: Set(serde_json::to_string(record).map_err(|e| ApiError::Internal(Box::new(e)))?),
        recorded_at: Set(record.updated_at),
        recorded_by: Set(record.updated_by.clone()),
        submission_id: Set(Some(submission_id.to_owned())),
    });
    // Nothing reads the revision back before the commit.
    write.defer_insert(insert).await
}

/// Creates the measure of this reference, or updates it at `expected_version`.
/// The region of the ARS that programmes, or FORBIDDEN.
pub fn programming_region(principal: &Principal) -> Result<String, ApiError> {
    match (principal.role, principal.scope.region_codes.as_slice()) {
        (Role::Ars, [region]) => Ok(region.clone()),
        _ => Err(ApiError::Forbidden("seule une ARS programme des mesures, dans sa région".into())),
    }
}

#[expect(clippy::too_many_arguments, reason = "the write's stores, its caller and its request options")]
pub async fn upsert_measure(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    catalog: &Catalog,
    principal: &Principal,
    input: MeasureInput,
    idempotency_key: Option<String>,
    expected_version: Option<i32>,
    channel: Channel,
) -> Result<MeasurePayload, ApiError> {
    let region = programming_region(principal)?;
    let request = (&input, expected_version);
    let mut write = match Write::begin(db, Actor::of(principal), "upsertMeasure", idempotency_key, &request).await? {
        Begun::Replayed(answer) => return Ok(answer),
        Begun::Fresh(write) => write,
    };
    let hash = content_hash(&input);
    let receipt = record_submission(&mut write, DataKind::Measures, &hash, 1, channel).await?;
    let payload = apply_measure(&mut write, catalog, &region, &input, expected_version, &receipt.submission_id).await?;
    write.audit(vec![payload.measure.id.clone()], hash);
    write.touches_measure(reconciled, &region, &payload.measure.id);
    write.commit(&payload).await?;
    Ok(payload)
}

/// Validates and stores one measure inside a write (a single upsert, or a row of an imported file).
pub async fn apply_measure(
    write: &mut Write,
    catalog: &Catalog,
    region: &str,
    input: &MeasureInput,
    expected_version: Option<i32>,
    submission_id: &str,
) -> Result<MeasurePayload, ApiError> {
    let (txn, actor) = (&write.txn, &write.actor);
    let existing = measure::Entity::find()
        .filter(measure::Column::RegionCode.eq(region.to_owned()))
        .filter(measure::Column::Reference.eq(input.reference.trim()))
        .one(txn)
        .await?;
    let previous_status = existing.as_ref().and_then(|m| MeasureStatus::from_stored(&m.status));
    let mut violations = Violations::new();
    let warnings = check_measure(input, region, previous_status, catalog, &mut violations);
    violations.into_result()?;

    let now = audit::now_micros();
    let by = actor.label();
    let publics = input.publics.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",");
    let (row, created) = match &existing {
        Some(stored) => {
            // Without expectedVersion the update would be blind: a conflict naming the stored version.
            let expected = expected_version.ok_or_else(|| {
                ApiError::version_conflict(
                    format!(
                        "la mesure « {} » existe déjà (version {}) : donnez expectedVersion: {} pour la modifier ; rien n'a été écrit",
                        stored.reference, stored.version, stored.version
                    ),
                    Some(stored.version),
                )
            })?;
            if expected != stored.version {
                return Err(conflict("la mesure", expected, stored.version));
            }
            let updated = measure::Entity::update_many()
                .col_expr(measure::Column::Label, Expr::value(input.label.trim()))
                .col_expr(measure::Column::DepartementCode, Expr::value(input.departement_code.clone()))
                .col_expr(measure::Column::Finess, Expr::value(input.finess.clone()))
                .col_expr(measure::Column::CommuneCode, Expr::value(input.commune_code.clone()))
                .col_expr(measure::Column::ExpectedCofinancerCode, Expr::value(input.expected_cofinancer_code.clone()))
                .col_expr(measure::Column::CategoryCode, Expr::value(input.category_code.clone()))
                .col_expr(measure::Column::Publics, Expr::value(publics.clone()))
                .col_expr(measure::Column::Solutions, Expr::value(input.solutions))
                .col_expr(measure::Column::Unit, Expr::value(input.unit.as_str()))
                .col_expr(measure::Column::Nature, Expr::value(input.nature.as_str()))
                .col_expr(measure::Column::Procedure, Expr::value(input.procedure.as_str()))
                .col_expr(measure::Column::Compartment, Expr::value(input.compartment.as_str()))
                .col_expr(measure::Column::PlannedInstallation, Expr::value(input.planned_installation))
                .col_expr(measure::Column::Status, Expr::value(input.status.as_str()))
                .col_expr(measure::Column::Version, Expr::value(expected + 1))
                .col_expr(measure::Column::UpdatedAt, Expr::value(now))
                .col_expr(measure::Column::UpdatedBy, Expr::value(by.clone()))
                .filter(measure::Column::Id.eq(stored.id.clone()))
                .filter(measure::Column::Version.eq(expected))
                .exec_with_returning(txn)
                .await?;
            let Some(row) = updated.into_iter().next() else {
                let now = measure::Entity::find_by_id(stored.id.clone()).one(txn).await?.map(|m| m.version);
                return Err(conflict("la mesure", expected, now.unwrap_or(expected + 1)));
            };
            (row, false)
        }
        None => {
            if let Some(expected) = expected_version.filter(|v| *v != 0) {
                return Err(ApiError::version_conflict(
                    format!(
                        "aucune mesure « {} » n'existe encore (expectedVersion {expected}) ; rien n'a été écrit",
                        input.reference.trim()
                    ),
                    None,
                ));
            }
            let inserted = measure::Entity::insert(measure::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                region_code: Set(region.to_owned()),
                departement_code: Set(input.departement_code.clone()),
                reference: Set(input.reference.trim().to_owned()),
                label: Set(input.label.trim().to_owned()),
                finess: Set(input.finess.clone()),
                commune_code: Set(input.commune_code.clone()),
                expected_cofinancer_code: Set(input.expected_cofinancer_code.clone()),
                category_code: Set(input.category_code.clone()),
                publics: Set(publics.clone()),
                solutions: Set(input.solutions),
                unit: Set(input.unit.as_str().to_owned()),
                nature: Set(input.nature.as_str().to_owned()),
                procedure: Set(input.procedure.as_str().to_owned()),
                compartment: Set(input.compartment.as_str().to_owned()),
                planned_installation: Set(input.planned_installation),
                status: Set(input.status.as_str().to_owned()),
                version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
                updated_by: Set(by.clone()),
            })
            // The row comes back with the insert (RETURNING): no read after it.
            .exec_with_returning(txn)
            .await;
            match inserted {
                Ok(row) => (row, true),
                // Another request created this reference a moment ago.
                Err(err) if is_unique_violation(&err) => {
                    return Err(ApiError::version_conflict(
                        format!(
                            "la mesure « {} » vient d'être créée par une autre requête : relisez-la ; rien n'a été écrit",
                            input.reference.trim()
                        ),
                        None,
                    ));
                }
                Err(err) => return Err(err.into()),
            }
        }
    };
    let record = MeasureRecord::try_from(&row)?;
    record_measure_revision(write, &record, submission_id).await?;
    Ok(MeasurePayload {
        measure: record,
        created,
        warnings: warnings.into_vec().into_iter().map(ViolationView::from).collect(),
    })
}

/// A page of measures within the principal's reach.
/// Whether a measure is within a principal's reach: `measure_scope`'s rule, for reads from the reconciled state.
pub fn measure_in_reach(principal: &Principal, reach: Reach, measure: &MeasureRecord) -> bool {
    match (reach, principal.scope.level) {
        (Reach::Everything, _) | (_, ScopeLevel::National) => true,
        (_, ScopeLevel::Region) => principal.scope.region_codes.contains(&measure.region_code),
        _ => principal.scope.departement_codes.contains(&measure.departement_code),
    }
}

/// The regions whose measures a principal may reach, looked up by key in the reconciled state.
fn regions_in_reach(reconciled: &Reconciled, principal: &Principal, reach: Reach) -> Vec<String> {
    if reach == Reach::Everything || principal.scope.level == ScopeLevel::National {
        reconciled.catalog().regions.iter().map(|r| r.code.clone()).collect()
    } else {
        principal.scope.region_codes.clone()
    }
}

fn matches(filter: &MeasureFilter, m: &MeasureRecord) -> bool {
    filter.region_code.as_ref().is_none_or(|r| *r == m.region_code)
        && filter.departement_code.as_ref().is_none_or(|d| *d == m.departement_code)
        && filter.category_code.as_ref().is_none_or(|c| *c == m.category_code)
        && filter.compartment.is_none_or(|c| c == m.compartment)
        && filter.status.is_none_or(|s| s == m.status)
        && filter.year.is_none_or(|y| m.planned_installation.year() == y)
}

/// A page of the measures within reach that match the filter, in id order (oldest first), from the reconciled state:
/// no database query once the regions are loaded. Returns the page, the total and whether more follow.
pub async fn list_measures(
    reconciled: &Reconciled,
    principal: &Principal,
    reach: Reach,
    filter: &MeasureFilter,
    limit: u64,
    after: Option<&str>,
) -> Result<(Vec<MeasureRecord>, u64, bool), ApiError> {
    let territory = TerritoryFilter {
        region: filter.region_code.as_deref(),
        departement: filter.departement_code.as_deref(),
        academie: None,
    };
    check_territory_filter(principal, reach, reconciled.catalog(), territory)?;
    let mut states = Vec::new();
    for region in regions_in_reach(reconciled, principal, reach) {
        if filter.region_code.as_ref().is_none_or(|r| *r == region) {
            states.push(reconciled.region(&region).await?);
        }
    }
    let mut selected: Vec<&MeasureRecord> = states
        .iter()
        .flat_map(|state| state.records())
        .filter(|m| measure_in_reach(principal, reach, m) && matches(filter, m))
        .collect();
    if states.len() > 1 {
        selected.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    }
    let total = selected.len() as u64;
    let start = after.map_or(0, |a| selected.partition_point(|m| m.id.as_str() <= a));
    let end = (start + limit as usize).min(selected.len());
    Ok((selected[start..end].iter().map(|m| (*m).clone()).collect(), total, end < selected.len()))
}

/// The current version of a measure within reach, from the reconciled state; NOT_FOUND (as a missing one) outside.
pub async fn find_measure_record(
    reconciled: &Reconciled,
    principal: &Principal,
    reach: Reach,
    id: &str,
) -> Result<MeasureRecord, ApiError> {
    for region in regions_in_reach(reconciled, principal, reach) {
        let state = reconciled.region(&region).await?;
        if let Some(m) = state.measure(id) {
            return if measure_in_reach(principal, reach, m) { Ok(m.clone()) } else { Err(not_found(id)) };
        }
    }
    Err(not_found(id))
}

/// The measure as it stood at an instant: the last revision recorded at or before it, or None if it did not
/// exist yet. The caller has checked the measure is within reach.
pub async fn measure_as_of(
    db: &DatabaseConnection,
    id: &str,
    as_of: DateTime<FixedOffset>,
) -> Result<Option<MeasureRecord>, ApiError> {
    // Stored instants are UTC: compare in UTC so that text comparison on SQLite holds too.
    let as_of = as_of.with_timezone(&Utc).fixed_offset();
    let revision = measure_revision::Entity::find()
        .filter(measure_revision::Column::MeasureId.eq(id))
        .filter(measure_revision::Column::RecordedAt.lte(as_of))
        .order_by_desc(measure_revision::Column::Version)
        .one(db)
        .await?;
    revision.map(|r| serde_json::from_str(&r.snapshot).map_err(|e| ApiError::Internal(Box::new(e)))).transpose()
}

fn funder_of(principal: &Principal) -> Result<Payer, ApiError> {
    match principal.role {
        Role::Ars => Ok(Payer::AssuranceMaladie),
        Role::Collectivite => Ok(Payer::Collectivite),
        _ => Err(ApiError::Forbidden("seuls l'ARS et les collectivités engagent des financements".into())),
    }
}

async fn record_commitment_revision(write: &mut Write, record: &CommitmentRecord) -> Result<(), ApiError> {
    let insert = commitment_revision::Entity::insert(commitment_revision::ActiveModel {
        commitment_id: Set(record.id.clone()),
        version: Set(record.version),
        snapshot: Set(serde_json::to_string(record).map_err(|e| ApiError::Internal(Box::new(e)))?),
        recorded_at: Set(record.updated_at),
        recorded_by: Set(record.updated_by.clone()),
    });
    // Nothing reads the revision back before the commit.
    write.defer_insert(insert).await
}

async fn reload_commitment<C: ConnectionTrait>(conn: &C, id: &str) -> Result<CommitmentRecord, ApiError> {
    let row = commitment::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::Internal("commitment vanished inside its transaction".into()))?;
    CommitmentRecord::try_from(&row)
}

/// Records the principal's own view of a measure: created the first time for (measure, funder, component),
/// updated at `expected_version` afterwards.
#[expect(clippy::too_many_arguments, reason = "the write's stores, its caller and its request options")]
pub async fn commit(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    principal: &Principal,
    reach: Reach,
    input: CommitmentInput,
    idempotency_key: Option<String>,
    expected_version: Option<i32>,
    channel: Channel,
) -> Result<CommitmentPayload, ApiError> {
    funder_of(principal)?;
    let request = (&input, expected_version);
    let mut write = match Write::begin(db, Actor::of(principal), "commit", idempotency_key, &request).await? {
        Begun::Replayed(answer) => return Ok(answer),
        Begun::Fresh(write) => write,
    };
    let hash = content_hash(&input);
    record_submission(&mut write, DataKind::Commitments, &hash, 1, channel).await?;
    let AppliedCommitment { payload, region } =
        apply_commitment(&mut write, principal, reach, &input, expected_version).await?;
    write.audit(vec![payload.commitment.id.clone(), payload.commitment.measure_id.clone()], hash);
    write.touches_measure(reconciled, &region, &payload.commitment.measure_id);
    write.commit(&payload).await?;
    Ok(payload)
}

/// Validates and stores one funder's commitment inside a write (a single call, or a row of an imported file).
pub async fn apply_commitment(
    write: &mut Write,
    principal: &Principal,
    reach: Reach,
    input: &CommitmentInput,
    expected_version: Option<i32>,
) -> Result<AppliedCommitment, ApiError> {
    let (txn, actor) = (&write.txn, &write.actor);
    let funder = funder_of(principal)?;
    let funder_code = principal.institution.code.clone();
    let measure = find_measure(txn, principal, reach, input.measure_id.as_str()).await?;
    let mut violations = Violations::new();
    check_commitment(input, &mut violations);
    violations.into_result()?;
    let existing = commitment::Entity::find()
        .filter(commitment::Column::MeasureId.eq(measure.id.clone()))
        .filter(commitment::Column::FunderCode.eq(funder_code.clone()))
        .filter(commitment::Column::CostComponent.eq(input.cost_component.as_str()))
        .one(txn)
        .await?;
    let now = audit::now_micros();
    let by = actor.label();
    let schedule = serde_json::to_string(&input.schedule).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let (row, created) = match existing {
        Some(stored) => {
            // Without expectedVersion the update would be blind: a conflict naming the stored version.
            let expected = expected_version.ok_or_else(|| {
                ApiError::version_conflict(
                    format!(
                        "votre engagement sur cette mesure existe déjà (version {}) : donnez expectedVersion: {} pour le modifier ; rien n'a été écrit",
                        stored.version, stored.version
                    ),
                    Some(stored.version),
                )
            })?;
            if expected != stored.version {
                return Err(conflict("l'engagement", expected, stored.version));
            }
            let updated = commitment::Entity::update_many()
                .col_expr(commitment::Column::FullYearAmountCents, Expr::value(input.full_year_amount.0))
                .col_expr(commitment::Column::Schedule, Expr::value(schedule))
                .col_expr(commitment::Column::DecisionRef, Expr::value(input.decision_ref.trim()))
                .col_expr(commitment::Column::Capacity, Expr::value(input.capacity))
                .col_expr(commitment::Column::InstallationDate, Expr::value(input.installation_date))
                .col_expr(commitment::Column::Status, Expr::value(CommitmentStatus::Active.as_str()))
                .col_expr(commitment::Column::WithdrawalReason, Expr::value(Option::<String>::None))
                .col_expr(commitment::Column::Version, Expr::value(expected + 1))
                .col_expr(commitment::Column::UpdatedAt, Expr::value(now))
                .col_expr(commitment::Column::UpdatedBy, Expr::value(by.clone()))
                .filter(commitment::Column::Id.eq(stored.id.clone()))
                .filter(commitment::Column::Version.eq(expected))
                .exec_with_returning(txn)
                .await?;
            let Some(row) = updated.into_iter().next() else {
                let now = commitment::Entity::find_by_id(stored.id.clone()).one(txn).await?.map(|c| c.version);
                return Err(conflict("l'engagement", expected, now.unwrap_or(expected + 1)));
            };
            (row, false)
        }
        None => {
            if let Some(expected) = expected_version.filter(|v| *v != 0) {
                return Err(ApiError::version_conflict(
                    format!(
                        "aucun engagement n'existe encore sur cette mesure (expectedVersion {expected}) ; rien n'a été écrit"
                    ),
                    None,
                ));
            }
            let inserted = commitment::Entity::insert(commitment::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                measure_id: Set(measure.id.clone()),
                funder: Set(funder.as_str().to_owned()),
                funder_code: Set(funder_code.clone()),
                cost_component: Set(input.cost_component.as_str().to_owned()),
                full_year_amount_cents: Set(input.full_year_amount.0),
                schedule: Set(schedule),
                decision_ref: Set(input.decision_ref.trim().to_owned()),
                capacity: Set(input.capacity),
                installation_date: Set(input.installation_date),
                status: Set(CommitmentStatus::Active.as_str().to_owned()),
                withdrawal_reason: Set(None),
                version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
                updated_by: Set(by.clone()),
            })
            // The row comes back with the insert (RETURNING): no read after it.
            .exec_with_returning(txn)
            .await;
            match inserted {
                Ok(row) => (row, true),
                Err(err) if is_unique_violation(&err) => {
                    return Err(ApiError::version_conflict(
                        "cet engagement vient d'être créé par une autre requête : relisez-le ; rien n'a été écrit",
                        None,
                    ));
                }
                Err(err) => return Err(err.into()),
            }
        }
    };
    let record = CommitmentRecord::try_from(&row)?;
    record_commitment_revision(write, &record).await?;
    Ok(AppliedCommitment { payload: CommitmentPayload { commitment: record, created }, region: measure.region_code })
}

/// A commitment stored by `apply_commitment`, with the region of its measure (whose reconciliation it touches).
pub struct AppliedCommitment {
    pub payload: CommitmentPayload,
    pub region: String,
}

/// Withdraws the principal's own commitment, keeping it (and the reason) on record.
pub async fn withdraw(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    principal: &Principal,
    id: &str,
    reason: &str,
    expected_version: i32,
    idempotency_key: Option<String>,
) -> Result<CommitmentPayload, ApiError> {
    funder_of(principal)?;
    let mut v = Violations::new();
    v.text("reason", reason, 1, 500);
    v.into_result()?;
    let request = (id, reason, expected_version);
    let mut write =
        match Write::begin(db, Actor::of(principal), "withdrawCommitment", idempotency_key, &request).await? {
            Begun::Replayed(answer) => return Ok(answer),
            Begun::Fresh(write) => write,
        };
    // Only the funder's own commitments: anyone else's is not found, as a missing one.
    let stored = commitment::Entity::find_by_id(id.to_owned())
        .filter(commitment::Column::FunderCode.eq(principal.institution.code.clone()))
        .one(&write.txn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("aucun engagement « {id} » de votre institution")))?;
    if stored.version != expected_version {
        return Err(conflict("l'engagement", expected_version, stored.version));
    }
    if stored.status == CommitmentStatus::Withdrawn.as_str() {
        let mut v = Violations::new();
        v.add("id", "ALREADY_WITHDRAWN", "cet engagement est déjà retiré");
        v.into_result()?;
    }
    let updated = commitment::Entity::update_many()
        .col_expr(commitment::Column::Status, Expr::value(CommitmentStatus::Withdrawn.as_str()))
        .col_expr(commitment::Column::WithdrawalReason, Expr::value(reason.trim()))
        .col_expr(commitment::Column::Version, Expr::value(expected_version + 1))
        .col_expr(commitment::Column::UpdatedAt, Expr::value(audit::now_micros()))
        .col_expr(commitment::Column::UpdatedBy, Expr::value(write.actor.label()))
        .filter(commitment::Column::Id.eq(id))
        .filter(commitment::Column::Version.eq(expected_version))
        .exec(&write.txn)
        .await?;
    if updated.rows_affected != 1 {
        let now = commitment::Entity::find_by_id(id.to_owned()).one(&write.txn).await?.map(|c| c.version);
        return Err(conflict("l'engagement", expected_version, now.unwrap_or(expected_version + 1)));
    }
    let record = reload_commitment(&write.txn, id).await?;
    record_commitment_revision(&mut write, &record).await?;
    let region = region_of_measure(&write.txn, &stored.measure_id).await?;
    write.touches_measure(reconciled, &region, &stored.measure_id);
    write.audit(vec![id.to_owned(), stored.measure_id], content_hash(&request));
    let payload = CommitmentPayload { commitment: record, created: false };
    write.commit(&payload).await?;
    Ok(payload)
}
