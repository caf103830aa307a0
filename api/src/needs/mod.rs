//! Needs: aggregated indicators fed by MDPH systems (no person-level data). A submission is the complete picture
//! of a département at a reference date: it replaces the previous one, which moves to the revisions table.

use std::sync::Arc;

use crate::reconciled::live::Reconciled;
use std::collections::BTreeSet;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use entities::{needs_indicator, needs_indicator_revision};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};
use serde::Serialize;

use crate::access::filters::{TerritoryFilter, check_territory_filter};
use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::{Principal, ScopeLevel};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::audit_log::{self as audit, Actor, AuditEntry};
use crate::kernel::receipts::{Channel, Provenance, SubmissionReceipt, provenance_of, record_submission};
use crate::kernel::write::{Begun, Write, begin_transaction, content_hash};
use crate::pagination::{ConnectionFields, page_size};
use crate::territory::service::Catalog;
use crate::territory::service::catalog;
use crate::validation::Violations;
use crate::vocabulary::{DataKind, NeedsIndicatorKind};

/// The largest batch of indicators accepted in one submission.
pub const MAX_BATCH: usize = 100_000;
/// Past this many, violations are summarised rather than listed.
pub const MAX_REPORTED_VIOLATIONS: usize = 1_000;
// 8 bound values a row: 3 000 rows stay under SQLite's 32 766 parameters.
const INSERT_CHUNK: usize = 3_000;

#[derive(InputObject, Serialize, Clone, Debug)]
pub struct NeedsIndicatorInput {
    /// MDPH orientation decision code ("7.1", "13.3").
    pub orientation_code: String,
    /// Age band: "0-5", "20-24", "60+", or "TOUS".
    pub age_band: String,
    pub indicator: NeedsIndicatorKind,
    /// Number of people.
    pub value: i64,
}

#[derive(InputObject, Serialize, Clone, Debug)]
pub struct NeedsSubmissionInput {
    pub departement_code: String,
    /// The date the counts describe.
    pub reference_date: NaiveDate,
    pub indicators: Vec<NeedsIndicatorInput>,
}

fn age_band_valid(band: &str) -> bool {
    if band == "TOUS" {
        return true;
    }
    let number = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(low) = band.strip_suffix('+') {
        return number(low);
    }
    match band.split_once('-') {
        Some((low, high)) if number(low) && number(high) => low.parse::<u32>().ok() <= high.parse::<u32>().ok(),
        _ => false,
    }
}

/// Checks a whole batch and reports every failing row by its index.
pub fn check_needs(input: &NeedsSubmissionInput, principal: &Principal, catalog: &Catalog) -> Violations {
    let mut v = Violations::new();
    if catalog.departement(&input.departement_code).is_none() {
        v.add("departementCode", "UNKNOWN_DEPARTEMENT", format!("département « {} » inconnu", input.departement_code));
    } else {
        v.check(
            principal.scope.departement_codes.contains(&input.departement_code),
            "departementCode",
            "OUTSIDE_TERRITORY",
            format!("votre MDPH ne transmet pas les besoins du département {}", input.departement_code),
        );
    }
    let year = chrono::Datelike::year(&input.reference_date);
    v.check((2020..=2030).contains(&year), "referenceDate", "DATE_OUT_OF_RANGE", "date de référence hors de 2020-2030");
    if input.indicators.is_empty() {
        v.add("indicators", "REQUIRED", "au moins un indicateur");
    }
    if input.indicators.len() > MAX_BATCH {
        v.add(
            "indicators",
            "BATCH_TOO_LARGE",
            format!("{} indicateurs : {MAX_BATCH} au plus par envoi", input.indicators.len()),
        );
        return v;
    }
    let mut seen = BTreeSet::new();
    let mut failing_rows = 0usize;
    for (i, row) in input.indicators.iter().enumerate() {
        let mut r = Violations::new();
        r.check(
            catalog.orientations.iter().any(|o| o.code == row.orientation_code),
            "orientationCode",
            "UNKNOWN_ORIENTATION",
            format!("code d'orientation « {} » inconnu", row.orientation_code),
        );
        r.check(
            age_band_valid(&row.age_band),
            "ageBand",
            "AGE_BAND_MALFORMED",
            format!("tranche d'âge « {} » illisible (ex. \"0-5\", \"60+\", \"TOUS\")", row.age_band),
        );
        r.check(row.value >= 0, "value", "NEGATIVE_COUNT", "un nombre de personnes ne peut pas être négatif");
        r.check(row.value <= 10_000_000, "value", "COUNT_TOO_LARGE", "nombre de personnes invraisemblable");
        r.check(
            seen.insert((row.orientation_code.as_str(), row.age_band.as_str(), row.indicator)),
            "indicator",
            "DUPLICATE_ROW",
            "même orientation, tranche d'âge et indicateur qu'une ligne précédente",
        );
        if !r.is_empty() {
            failing_rows += 1;
            if v.len() < MAX_REPORTED_VIOLATIONS {
                v.extend_at(&format!("indicators[{i}]"), r);
            }
        }
    }
    if v.len() >= MAX_REPORTED_VIOLATIONS {
        v.add(
            "indicators",
            "TOO_MANY_VIOLATIONS",
            format!("{failing_rows} lignes en erreur ; les premières sont listées"),
        );
    }
    v
}

/// Inserts a batch. PostgreSQL takes it as one statement over arrays (UNNEST), which is many times faster than
/// multi-row VALUES; SQLite takes multi-row inserts within its bound-parameter limit.
async fn insert_indicators<C: ConnectionTrait>(
    conn: &C,
    input: &NeedsSubmissionInput,
    submission_id: &str,
    recorded_at: chrono::DateTime<chrono::FixedOffset>,
) -> Result<(), ApiError> {
    if conn.get_database_backend() == DbBackend::Postgres {
        let n = input.indicators.len();
        let (mut orientations, mut ages, mut indicators, mut values) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for row in &input.indicators {
            orientations.push(row.orientation_code.clone());
            ages.push(row.age_band.clone());
            indicators.push(row.indicator.as_str().to_owned());
            values.push(row.value);
        }
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO needs_indicator (departement_code, orientation_code, age_band, indicator, reference_date, \
             value, submission_id, recorded_at) \
             SELECT $1, t.o, t.a, t.i, $2, t.v, $3, $4 \
             FROM UNNEST($5::text[], $6::text[], $7::text[], $8::int8[]) AS t(o, a, i, v)",
            [
                Value::from(input.departement_code.clone()),
                Value::from(input.reference_date),
                Value::from(submission_id.to_owned()),
                Value::from(recorded_at),
                Value::from(orientations),
                Value::from(ages),
                Value::from(indicators),
                Value::from(values),
            ],
        );
        conn.execute_raw(statement).await?;
        return Ok(());
    }
    for chunk in input.indicators.chunks(INSERT_CHUNK) {
        let rows = chunk.iter().map(|row| needs_indicator::ActiveModel {
            id: NotSet,
            departement_code: Set(input.departement_code.clone()),
            orientation_code: Set(row.orientation_code.clone()),
            age_band: Set(row.age_band.clone()),
            indicator: Set(row.indicator.as_str().to_owned()),
            reference_date: Set(input.reference_date),
            value: Set(row.value),
            submission_id: Set(submission_id.to_owned()),
            recorded_at: Set(recorded_at),
        });
        needs_indicator::Entity::insert_many(rows).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// Stores a batch of needs indicators in one transaction.
pub async fn submit_needs(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    catalog: &Catalog,
    principal: &Principal,
    input: NeedsSubmissionInput,
    idempotency_key: Option<String>,
    channel: Channel,
) -> Result<SubmissionReceipt, ApiError> {
    check_needs(&input, principal, catalog).into_result()?;
    let mut write = match Write::begin(db, Actor::of(principal), "submitNeeds", idempotency_key, &input).await? {
        Begun::Replayed(answer) => return Ok(SubmissionReceipt::as_replay(answer)),
        Begun::Fresh(write) => write,
    };
    let hash = content_hash(&input);
    let receipt = record_submission(&mut write, DataKind::Needs, &hash, input.indicators.len() as i64, channel).await?;
    // The previous picture of this département at this date moves to the revisions, then is replaced.
    let same_picture = Condition::all()
        .add(needs_indicator::Column::DepartementCode.eq(input.departement_code.clone()))
        .add(needs_indicator::Column::ReferenceDate.eq(input.reference_date));
    let columns = [
        needs_indicator::Column::DepartementCode,
        needs_indicator::Column::OrientationCode,
        needs_indicator::Column::AgeBand,
        needs_indicator::Column::Indicator,
        needs_indicator::Column::ReferenceDate,
        needs_indicator::Column::Value,
        needs_indicator::Column::SubmissionId,
        needs_indicator::Column::RecordedAt,
    ];
    let mut select = Query::select();
    select
        .columns(columns)
        .expr(Expr::value(receipt.submission_id.clone()))
        .from(needs_indicator::Entity)
        .cond_where(same_picture.clone());
    let copy = Query::insert()
        .into_table(needs_indicator_revision::Entity)
        .columns([
            needs_indicator_revision::Column::DepartementCode,
            needs_indicator_revision::Column::OrientationCode,
            needs_indicator_revision::Column::AgeBand,
            needs_indicator_revision::Column::Indicator,
            needs_indicator_revision::Column::ReferenceDate,
            needs_indicator_revision::Column::Value,
            needs_indicator_revision::Column::SubmissionId,
            needs_indicator_revision::Column::RecordedAt,
            needs_indicator_revision::Column::SupersededBy,
        ])
        .select_from(select)
        .map_err(|e| ApiError::Internal(Box::new(e)))?
        .to_owned();
    write.txn.execute(&copy).await?;
    needs_indicator::Entity::delete_many().filter(same_picture).exec(&write.txn).await?;
    let recorded_at = receipt.received_at;
    insert_indicators(&write.txn, &input, &receipt.submission_id, recorded_at).await?;
    write.audit(
        vec![receipt.submission_id.clone(), format!("{}@{}", input.departement_code, input.reference_date)],
        hash,
    );
    if let Some(departement) = catalog.departement(&input.departement_code) {
        write.stales_region(reconciled, &departement.region_code);
    }
    write.commit(&receipt).await?;
    Ok(receipt)
}

/// A needs indicator as stored.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct NeedsIndicator {
    pub departement_code: String,
    pub orientation_code: String,
    pub age_band: String,
    pub indicator: NeedsIndicatorKind,
    pub reference_date: NaiveDate,
    /// Number of people.
    pub value: i64,
    pub submission_id: String,
}

#[async_graphql::ComplexObject]
impl NeedsIndicator {
    /// Where the value came from: its submission, channel, and for pulled data its source and `asOf`.
    async fn provenance(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Provenance>> {
        provenance_of(ctx, &self.submission_id).await
    }
}

#[derive(InputObject, Default, Serialize)]
pub struct NeedsFilter {
    pub departement_code: Option<String>,
    pub region_code: Option<String>,
    pub orientation_code: Option<String>,
    pub indicator: Option<NeedsIndicatorKind>,
    pub reference_date: Option<NaiveDate>,
}

pub fn needs_scope(principal: &Principal, reach: Reach) -> Condition {
    match (reach, principal.scope.level) {
        (Reach::Everything, _) | (_, ScopeLevel::National) => Condition::all(),
        _ => Condition::all()
            .add(needs_indicator::Column::DepartementCode.is_in(principal.scope.departement_codes.clone())),
    }
}

#[derive(Default)]
pub struct NeedsQuery;

#[Object]
impl NeedsQuery {
    /// Needs indicators in detail: the producing MDPH's own, or all of them for the CNSA. Every read is audited.
    async fn needs(
        &self,
        ctx: &Context<'_>,
        filter: Option<NeedsFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, NeedsIndicator, ConnectionFields>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Needs, Action::Read)?;
        let limit = page_size(first)?;
        let filter = filter.unwrap_or_default();
        let catalog = catalog(ctx)?;
        let territory = TerritoryFilter {
            region: filter.region_code.as_deref(),
            departement: filter.departement_code.as_deref(),
            academie: None,
        };
        check_territory_filter(principal, reach, catalog, territory)?;
        let mut condition = needs_scope(principal, reach);
        if let Some(d) = &filter.departement_code {
            condition = condition.add(needs_indicator::Column::DepartementCode.eq(d.clone()));
        }
        if let Some(region) = &filter.region_code {
            let departements: Vec<String> = catalog.departements_of_region(region).map(|d| d.code.clone()).collect();
            condition = condition.add(needs_indicator::Column::DepartementCode.is_in(departements));
        }
        if let Some(o) = &filter.orientation_code {
            condition = condition.add(needs_indicator::Column::OrientationCode.eq(o.clone()));
        }
        if let Some(i) = filter.indicator {
            condition = condition.add(needs_indicator::Column::Indicator.eq(i.as_str()));
        }
        if let Some(date) = filter.reference_date {
            condition = condition.add(needs_indicator::Column::ReferenceDate.eq(date));
        }
        let db = db(ctx)?;
        let total =
            needs_indicator::Entity::find().filter(condition.clone()).count(db).await.map_err(ApiError::from)?;
        let mut query = needs_indicator::Entity::find().filter(condition);
        if let Some(after) = &after {
            let id: i64 = after.parse().map_err(|_| ApiError::BadUserInput(format!("curseur « {after} » invalide")))?;
            query = query.filter(needs_indicator::Column::Id.gt(id));
        }
        let mut rows =
            query.order_by_asc(needs_indicator::Column::Id).limit(limit + 1).all(db).await.map_err(ApiError::from)?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        // Reading counts of people is recorded, like a write.
        let departements: BTreeSet<String> = rows.iter().map(|r| r.departement_code.clone()).collect();
        let txn = begin_transaction(db).await.map_err(ApiError::from)?;
        audit::append(
            &txn,
            &Actor::of(principal),
            &[AuditEntry {
                operation: "needs".into(),
                object_ids: departements.into_iter().collect(),
                content_hash: content_hash(&(&filter, first, &after)),
            }],
        )
        .await
        .map_err(ApiError::from)?;
        txn.commit().await.map_err(ApiError::from)?;
        let mut connection =
            Connection::with_additional_fields(after.is_some(), has_next, ConnectionFields { total_count: total });
        for row in rows {
            let indicator = NeedsIndicatorKind::from_stored(&row.indicator)
                .ok_or_else(|| ApiError::Internal(format!("stored indicator « {} »", row.indicator).into()))?;
            connection.edges.push(Edge::new(
                row.id.to_string(),
                NeedsIndicator {
                    departement_code: row.departement_code,
                    orientation_code: row.orientation_code,
                    age_band: row.age_band,
                    indicator,
                    reference_date: row.reference_date,
                    value: row.value,
                    submission_id: row.submission_id,
                },
            ));
        }
        Ok(connection)
    }
}

#[derive(Default)]
pub struct NeedsMutation;

#[Object]
impl NeedsMutation {
    /// An MDPH's needs indicators for its département at a reference date: all-or-nothing, every failing row
    /// reported by its index; it replaces the previous picture of that date, kept in the revisions.
    async fn submit_needs(
        &self,
        ctx: &Context<'_>,
        input: NeedsSubmissionInput,
        idempotency_key: Option<String>,
    ) -> ApiResult<SubmissionReceipt> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::Needs, Action::Write)?;
        Ok(submit_needs(
            db(ctx)?,
            crate::reconciled::reconciled(ctx)?,
            catalog(ctx)?,
            principal,
            input,
            idempotency_key,
            Channel::Graphql,
        )
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::age_band_valid;

    #[test]
    fn age_bands_read_like_ranges() {
        for ok in ["0-5", "20-24", "60+", "TOUS"] {
            assert!(age_band_valid(ok), "{ok}");
        }
        for bad in ["5-0", "a-b", "", "60", "+", "1000-2000"] {
            assert!(!age_band_valid(bad), "{bad}");
        }
    }
}
