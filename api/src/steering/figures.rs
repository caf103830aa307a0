//! The figures of national steering, submitted through the one write path (validation, idempotency, receipt,
//! audit): the CNSA's projected trajectory per region × compartment × year and the year's drawing rights in CP per
//! region; each ARS's forecast of installations and CP for a year (the campaign that ends 30 June of the year
//! before). Rows are appended, never updated: the figure in force for a key is its latest row, and any past date's
//! figures can be read back (`asOf`). The reconciliation compares them with what is programmed and called.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, FixedOffset, Utc};
use entities::steering_figure;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::Principal;
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::audit_log::Actor;
use crate::kernel::receipts::{Channel, SubmissionReceipt, record_submission};
use crate::kernel::write::{Begun, Write, content_hash};
use crate::money::Euros;
use crate::reconciled::live::Reconciled;
use crate::territory::service::{Catalog, catalog};
use crate::validation::Violations;
use crate::vocabulary::{Compartment, DataKind};

/// The plan's years.
pub const YEARS: std::ops::RangeInclusive<i32> = 2024..=2030;
/// The largest batch of figures in one submission (18 regions × 3 compartments × 7 years is 378).
pub const MAX_FIGURES: usize = 5_000;
/// No single figure of the plan comes near 10 billion euros.
const MAX_CENTS: i64 = 1_000_000_000_000;

/// A point of the CNSA's projected trajectory.
#[derive(InputObject, Serialize, Clone, Debug)]
pub struct TrajectoryPointInput {
    pub region_code: String,
    pub compartment: Compartment,
    pub year: i32,
    /// AE projected for the measures installed that year (full year).
    pub ae: Euros,
    /// CP projected to be called that year.
    pub cp: Euros,
}

#[derive(InputObject, Serialize, Clone, Debug)]
pub struct DrawingRightInput {
    pub region_code: String,
    pub year: i32,
    /// The CP the region may call that year, every compartment together.
    pub cp: Euros,
}

/// An ARS's forecast for one compartment and year.
#[derive(InputObject, Serialize, Clone, Debug)]
pub struct InstallationForecastLineInput {
    pub compartment: Compartment,
    pub year: i32,
    /// Solutions expected to be installed that year.
    pub solutions: i64,
    /// CP the ARS expects to call that year.
    pub cp: Euros,
}

#[derive(InputObject, Serialize, Clone, Debug)]
pub struct InstallationForecastInput {
    pub region_code: String,
    pub lines: Vec<InstallationForecastLineInput>,
}

/// A batch of steering figures of one kind, as every channel (GraphQL, file, pull) hands it to the write.
#[derive(Serialize, Clone, Debug)]
pub enum SteeringBatch {
    Trajectory(Vec<TrajectoryPointInput>),
    DrawingRights(Vec<DrawingRightInput>),
    InstallationForecast(InstallationForecastInput),
}

/// One figure as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    region: String,
    compartment: Option<Compartment>,
    year: i32,
    ae: Option<i64>,
    cp: Option<i64>,
    solutions: Option<i64>,
}

impl SteeringBatch {
    pub fn kind(&self) -> DataKind {
        match self {
            SteeringBatch::Trajectory(_) => DataKind::Trajectory,
            SteeringBatch::DrawingRights(_) => DataKind::DrawingRights,
            SteeringBatch::InstallationForecast(_) => DataKind::InstallationForecast,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SteeringBatch::Trajectory(points) => points.len(),
            SteeringBatch::DrawingRights(rights) => rights.len(),
            SteeringBatch::InstallationForecast(input) => input.lines.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The list a failing row is named in (`points[3]`).
    pub fn list_name(&self) -> &'static str {
        match self {
            SteeringBatch::Trajectory(_) => "points",
            SteeringBatch::DrawingRights(_) => "rights",
            SteeringBatch::InstallationForecast(_) => "lines",
        }
    }

    fn operation(&self) -> &'static str {
        match self {
            SteeringBatch::Trajectory(_) => "submitTrajectory",
            SteeringBatch::DrawingRights(_) => "setDrawingRights",
            SteeringBatch::InstallationForecast(_) => "submitInstallationForecast",
        }
    }

    fn rows(&self) -> Vec<Row> {
        match self {
            SteeringBatch::Trajectory(points) => points
                .iter()
                .map(|p| Row {
                    region: p.region_code.clone(),
                    compartment: Some(p.compartment),
                    year: p.year,
                    ae: Some(p.ae.0),
                    cp: Some(p.cp.0),
                    solutions: None,
                })
                .collect(),
            SteeringBatch::DrawingRights(rights) => rights
                .iter()
                .map(|r| Row {
                    region: r.region_code.clone(),
                    compartment: None,
                    year: r.year,
                    ae: None,
                    cp: Some(r.cp.0),
                    solutions: None,
                })
                .collect(),
            SteeringBatch::InstallationForecast(input) => input
                .lines
                .iter()
                .map(|l| Row {
                    region: input.region_code.clone(),
                    compartment: Some(l.compartment),
                    year: l.year,
                    ae: None,
                    cp: Some(l.cp.0),
                    solutions: Some(l.solutions),
                })
                .collect(),
        }
    }

    /// The policy resource its write needs.
    pub fn resource(&self) -> Resource {
        match self {
            SteeringBatch::Trajectory(_) | SteeringBatch::DrawingRights(_) => Resource::NationalCredits,
            SteeringBatch::InstallationForecast(_) => Resource::InstallationForecast,
        }
    }
}

/// Checks a whole batch and reports every failing row by its index.
pub fn check_batch(batch: &SteeringBatch, principal: &Principal, catalog: &Catalog) -> Violations {
    let mut v = Violations::new();
    let list = batch.list_name();
    if batch.is_empty() {
        v.add(list, "REQUIRED", "au moins une ligne");
    }
    if batch.len() > MAX_FIGURES {
        v.add(list, "BATCH_TOO_LARGE", format!("{} lignes : {MAX_FIGURES} au plus par envoi", batch.len()));
        return v;
    }
    if let SteeringBatch::InstallationForecast(input) = batch {
        if catalog.region(&input.region_code).is_none() {
            v.add("regionCode", "UNKNOWN_REGION", format!("région « {} » inconnue", input.region_code));
        } else if !principal.scope.covers_region(&input.region_code) {
            v.add(
                "regionCode",
                "OUTSIDE_TERRITORY",
                format!("votre ARS ne transmet pas la prévision de la région {}", input.region_code),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, row) in batch.rows().iter().enumerate() {
        let mut r = Violations::new();
        if !matches!(batch, SteeringBatch::InstallationForecast(_)) && catalog.region(&row.region).is_none() {
            r.add("regionCode", "UNKNOWN_REGION", format!("région « {} » inconnue", row.region));
        }
        r.check(
            YEARS.contains(&row.year),
            "year",
            "YEAR_OUT_OF_RANGE",
            format!("année {} hors du plan ({}-{})", row.year, YEARS.start(), YEARS.end()),
        );
        for (field, cents) in [("ae", row.ae), ("cp", row.cp)] {
            if let Some(cents) = cents {
                r.check(cents >= 0, field, "NEGATIVE_AMOUNT", "un montant ne peut pas être négatif");
                r.check(cents <= MAX_CENTS, field, "AMOUNT_TOO_LARGE", "montant invraisemblable");
            }
        }
        if let Some(solutions) = row.solutions {
            r.check(solutions >= 0, "solutions", "NEGATIVE_COUNT", "un nombre de solutions ne peut pas être négatif");
            r.check(solutions <= 100_000, "solutions", "COUNT_TOO_LARGE", "nombre de solutions invraisemblable");
        }
        r.check(
            seen.insert((row.region.clone(), row.compartment, row.year)),
            "year",
            "DUPLICATE_ROW",
            "même région, enveloppe et année qu'une ligne précédente",
        );
        if !r.is_empty() {
            v.extend_at(&format!("{list}[{i}]"), r);
        }
    }
    v
}

/// Records a batch in one transaction: a receipt, a row per figure, an audit entry; the regions it concerns are
/// reconciled again.
pub async fn submit(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    catalog: &Catalog,
    principal: &Principal,
    batch: SteeringBatch,
    idempotency_key: Option<String>,
    channel: Channel,
) -> Result<SubmissionReceipt, ApiError> {
    policy::require(principal, batch.resource(), Action::Write)?;
    check_batch(&batch, principal, catalog).into_result()?;
    let mut write = match Write::begin(db, Actor::of(principal), batch.operation(), idempotency_key, &batch).await? {
        Begun::Replayed(answer) => return Ok(SubmissionReceipt::as_replay(answer)),
        Begun::Fresh(write) => write,
    };
    let hash = content_hash(&batch);
    let rows = batch.rows();
    let receipt = record_submission(&mut write, batch.kind(), &hash, rows.len() as i64, channel).await?;
    let kind = batch.kind().as_str();
    for chunk in rows.chunks(1_000) {
        steering_figure::Entity::insert_many(chunk.iter().map(|row| steering_figure::ActiveModel {
            kind: Set(kind.to_owned()),
            region_code: Set(row.region.clone()),
            compartment: Set(row.compartment.map(|c| c.as_str().to_owned())),
            year: Set(row.year),
            ae_cents: Set(row.ae),
            cp_cents: Set(row.cp),
            solutions: Set(row.solutions),
            submission_id: Set(receipt.submission_id.clone()),
            recorded_by: Set(principal.institution.code.clone()),
            recorded_at: Set(receipt.received_at),
            ..Default::default()
        }))
        .exec_without_returning(&write.txn)
        .await?;
    }
    let regions: BTreeSet<&str> = rows.iter().map(|r| r.region.as_str()).collect();
    write.audit(
        std::iter::once(receipt.submission_id.clone()).chain(regions.iter().map(|r| format!("{kind}@{r}"))).collect(),
        hash,
    );
    for region in regions {
        write.stales_region(reconciled, region);
    }
    write.commit(&receipt).await?;
    Ok(receipt)
}

/// A steering figure in force (or as of a date).
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct SteeringFigure {
    pub kind: DataKind,
    pub region_code: String,
    pub compartment: Option<Compartment>,
    pub year: i32,
    pub ae: Option<Euros>,
    pub cp: Option<Euros>,
    pub solutions: Option<i64>,
    pub submission_id: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<FixedOffset>,
}

#[derive(InputObject, Default)]
pub struct SteeringFigureFilter {
    /// TRAJECTORY, DRAWING_RIGHTS or INSTALLATION_FORECAST.
    pub kind: Option<DataKind>,
    pub region_code: Option<String>,
    pub year: Option<i32>,
    /// The figures as they stood at this instant (default: now).
    pub as_of: Option<DateTime<Utc>>,
}

const STEERING_KINDS: [DataKind; 3] = [DataKind::Trajectory, DataKind::DrawingRights, DataKind::InstallationForecast];

/// The rows recorded (by `asOf`) for the principal's territory, oldest first: the territory is a predicate of the
/// query.
pub async fn recorded_rows(
    db: &impl sea_orm::ConnectionTrait,
    principal: &Principal,
    reach: Reach,
    filter: &SteeringFigureFilter,
) -> Result<Vec<steering_figure::Model>, ApiError> {
    let kinds: Vec<&str> = match filter.kind {
        Some(kind) if STEERING_KINDS.contains(&kind) => vec![kind.as_str()],
        Some(kind) => {
            return Err(ApiError::BadUserInput(format!("{} n'est pas une donnée de pilotage", kind.as_str())));
        }
        None => STEERING_KINDS.iter().map(|k| k.as_str()).collect(),
    };
    let mut query = steering_figure::Entity::find()
        .filter(steering_figure::Column::Kind.is_in(kinds))
        .order_by_asc(steering_figure::Column::Id);
    if reach != Reach::Everything && !principal.scope.is_national() {
        query = query.filter(steering_figure::Column::RegionCode.is_in(principal.scope.region_codes.clone()));
    }
    if let Some(region) = &filter.region_code {
        query = query.filter(steering_figure::Column::RegionCode.eq(region.clone()));
    }
    if let Some(year) = filter.year {
        query = query.filter(steering_figure::Column::Year.eq(year));
    }
    if let Some(at) = filter.as_of {
        query = query.filter(steering_figure::Column::RecordedAt.lte(at));
    }
    Ok(query.all(db).await?)
}

/// The latest row of each key (kind, region, compartment, year), in key order.
pub fn in_force(rows: Vec<steering_figure::Model>) -> Vec<steering_figure::Model> {
    let mut latest: std::collections::BTreeMap<(String, String, Option<String>, i32), steering_figure::Model> =
        Default::default();
    for row in rows {
        latest.insert((row.kind.clone(), row.region_code.clone(), row.compartment.clone(), row.year), row);
    }
    latest.into_values().collect()
}

impl TryFrom<steering_figure::Model> for SteeringFigure {
    type Error = ApiError;

    fn try_from(row: steering_figure::Model) -> Result<Self, ApiError> {
        Ok(SteeringFigure {
            kind: crate::error::stored(DataKind::from_stored(&row.kind), "data kind", &row.kind)?,
            compartment: match &row.compartment {
                Some(c) => Some(crate::error::stored(Compartment::from_stored(c), "compartment", c)?),
                None => None,
            },
            region_code: row.region_code,
            year: row.year,
            ae: row.ae_cents.map(Euros),
            cp: row.cp_cents.map(Euros),
            solutions: row.solutions,
            submission_id: row.submission_id,
            recorded_by: row.recorded_by,
            recorded_at: row.recorded_at,
        })
    }
}

#[derive(Default)]
pub struct SteeringFiguresQuery;

#[Object]
impl SteeringFiguresQuery {
    /// The steering figures in force (or as they stood at `asOf`): the CNSA's trajectory and drawing rights, the
    /// ARS's installation forecasts, within the caller's territory.
    async fn steering_figures(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: SteeringFigureFilter,
    ) -> ApiResult<Vec<SteeringFigure>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::SteeringFigures, Action::Read)?;
        if let Some(region) = &filter.region_code
            && catalog(ctx)?.region(region).is_none()
        {
            return Err(ApiError::BadUserInput(format!("région « {region} » inconnue")).into());
        }
        let rows = recorded_rows(db(ctx)?, principal, reach, &filter).await?;
        Ok(in_force(rows).into_iter().map(SteeringFigure::try_from).collect::<Result<_, _>>()?)
    }
}

#[derive(Default)]
pub struct SteeringFiguresMutation;

#[Object]
impl SteeringFiguresMutation {
    /// The CNSA's projected trajectory (AE and CP per region × compartment × year): all-or-nothing, every failing
    /// point reported by its index; each point replaces the one in force for its key, which stays readable as of
    /// earlier dates.
    async fn submit_trajectory(
        &self,
        ctx: &Context<'_>,
        points: Vec<TrajectoryPointInput>,
        idempotency_key: Option<String>,
    ) -> ApiResult<SubmissionReceipt> {
        run(ctx, SteeringBatch::Trajectory(points), idempotency_key).await
    }

    /// The year's drawing rights in CP per region, set by the CNSA after the annual exchange on forecasts.
    async fn set_drawing_rights(
        &self,
        ctx: &Context<'_>,
        rights: Vec<DrawingRightInput>,
        idempotency_key: Option<String>,
    ) -> ApiResult<SubmissionReceipt> {
        run(ctx, SteeringBatch::DrawingRights(rights), idempotency_key).await
    }

    /// An ARS's forecast of installations and CP for coming years (the campaign that ends 30 June stabilises the
    /// next year's): changes after that deadline beyond the tolerance are findings.
    async fn submit_installation_forecast(
        &self,
        ctx: &Context<'_>,
        input: InstallationForecastInput,
        idempotency_key: Option<String>,
    ) -> ApiResult<SubmissionReceipt> {
        run(ctx, SteeringBatch::InstallationForecast(input), idempotency_key).await
    }
}

async fn run(ctx: &Context<'_>, batch: SteeringBatch, idempotency_key: Option<String>) -> ApiResult<SubmissionReceipt> {
    let principal = policy::principal(ctx)?;
    Ok(submit(
        db(ctx)?,
        crate::reconciled::reconciled(ctx)?,
        catalog(ctx)?,
        principal,
        batch,
        idempotency_key,
        Channel::Graphql,
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_row(kind: &str, region: &str, year: i32, id: i64, cp: i64) -> steering_figure::Model {
        steering_figure::Model {
            id,
            kind: kind.into(),
            region_code: region.into(),
            compartment: None,
            year,
            ae_cents: None,
            cp_cents: Some(cp),
            solutions: None,
            submission_id: "s".into(),
            recorded_by: "CNSA".into(),
            recorded_at: chrono::Utc::now().fixed_offset(),
        }
    }

    #[test]
    fn the_latest_row_of_a_key_is_in_force() {
        let rows = vec![
            in_row("DRAWING_RIGHTS", "84", 2025, 1, 100),
            in_row("DRAWING_RIGHTS", "11", 2025, 2, 7),
            in_row("DRAWING_RIGHTS", "84", 2025, 3, 120),
        ];
        let force = in_force(rows);
        assert_eq!(
            force.iter().map(|r| (r.region_code.as_str(), r.cp_cents)).collect::<Vec<_>>(),
            vec![("11", Some(7)), ("84", Some(120))]
        );
    }
}
