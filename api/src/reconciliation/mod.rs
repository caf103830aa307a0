//! Reconciliation: what disagrees between institutions, and why. The engine is pure; the service loads a snapshot
//! of the caller's territory; the queries show per-measure co-financing status, envelopes and findings.
//! Still to come (issue 5): needs coverage with masking, campaign and annex findings in the report, the live
//! subscription, in-memory state for dashboards, demo data.

pub mod engine;
pub mod service;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use entities::measure;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::auth::policy::{self, Action, Reach, Resource};
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::{catalog, db};
use crate::graphql::pagination::{ConnectionFields, page_size};
use crate::money::{Euros, basis_points_to_percent};
use crate::programming::types::MeasureRecord;
use crate::vocabulary::Compartment;
use engine::{CoFinancingStatus, FigureValue, Severity, SubjectKind};
use service::{SnapshotScope, load_snapshot};

/// A figure a finding compares.
#[derive(SimpleObject)]
pub struct Figure {
    pub name: String,
    /// The value as text: an exact amount ("450000.00"), a count, a percentage ("80.00") or a year.
    pub value: String,
    /// EUROS, COUNT, PERCENT or YEAR.
    pub unit: String,
}

/// Something that disagrees, and why.
#[derive(SimpleObject)]
pub struct Finding {
    /// Stable code ("CAPACITY_MISMATCH", "ENVELOPE_EXCEEDED"…).
    pub code: String,
    pub severity: Severity,
    pub subject_kind: SubjectKind,
    /// Measure id, commitment id, "84/SOCLE", "lyon/2026".
    pub subject: String,
    pub region_code: String,
    pub figures: Vec<Figure>,
    /// In plain French, for a programming officer.
    pub message: String,
}

impl From<&engine::Finding> for Finding {
    fn from(f: &engine::Finding) -> Self {
        Finding {
            code: f.code.to_owned(),
            severity: f.severity,
            subject_kind: f.subject_kind,
            subject: f.subject.clone(),
            region_code: f.region.clone(),
            figures: f
                .figures
                .iter()
                .map(|(name, value)| {
                    let (value, unit) = match value {
                        FigureValue::Cents(c) => (Euros(*c).to_decimal_string(), "EUROS"),
                        FigureValue::Count(n) => (n.to_string(), "COUNT"),
                        FigureValue::BasisPoints(bp) => (basis_points_to_percent(*bp), "PERCENT"),
                        FigureValue::Year(y) => (y.to_string(), "YEAR"),
                    };
                    Figure { name: (*name).to_owned(), value, unit: unit.to_owned() }
                })
                .collect(),
            message: f.message.clone(),
        }
    }
}

/// A measure's standing between its funders.
#[derive(SimpleObject)]
pub struct CoFinancing {
    pub measure: MeasureRecord,
    pub status: CoFinancingStatus,
    pub findings: Vec<Finding>,
}

/// An envelope's use: notified, committed by assurance maladie, headroom.
#[derive(SimpleObject)]
pub struct EnvelopeStatus {
    pub region_code: String,
    pub compartment: Compartment,
    pub notified: Euros,
    pub committed: Euros,
    /// notified − committed; negative when the ceiling is passed.
    pub headroom: Euros,
}

#[derive(SimpleObject)]
pub struct FindingCount {
    pub code: String,
    pub severity: Severity,
    pub count: i64,
}

#[derive(SimpleObject)]
pub struct ReconciliationReport {
    pub envelopes: Vec<EnvelopeStatus>,
    /// Every finding in detail (empty for a dashboard, which gets the counts only).
    pub findings: Vec<Finding>,
    /// How many findings of each code.
    pub finding_counts: Vec<FindingCount>,
    /// How many measures stand in each co-financing status.
    pub status_counts: Vec<StatusCount>,
}

#[derive(SimpleObject)]
pub struct StatusCount {
    pub status: CoFinancingStatus,
    pub count: i64,
}

#[derive(InputObject, Default)]
pub struct CoFinancingFilter {
    pub region_code: Option<String>,
    pub departement_code: Option<String>,
    pub status: Option<CoFinancingStatus>,
    pub category_code: Option<String>,
    /// Year of the planned installation.
    pub year: Option<i32>,
}

#[derive(Default)]
pub struct ReconciliationQuery;

#[Object]
impl ReconciliationQuery {
    /// Each measure of the caller's territory with its co-financing status and the findings behind it.
    async fn co_financing_status(
        &self,
        ctx: &Context<'_>,
        filter: Option<CoFinancingFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, CoFinancing, ConnectionFields>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::CoFinancing, Action::Read)?;
        let limit = page_size(first)?;
        let filter = filter.unwrap_or_default();
        let db = db(ctx)?;
        let scope = SnapshotScope {
            principal,
            reach,
            region: filter.region_code.clone(),
            departement: filter.departement_code.clone(),
        };
        let snapshot = load_snapshot(db, catalog(ctx)?, &scope).await?;
        let report = engine::reconcile(&snapshot);
        let measures: std::collections::HashMap<&str, &engine::MeasureFact> =
            snapshot.measures.iter().map(|m| (m.id.as_str(), m)).collect();
        let mut selected: Vec<&engine::MeasureStatusReport> = report
            .statuses
            .iter()
            .filter(|s| filter.status.is_none_or(|wanted| s.status == wanted))
            .filter(|s| {
                let m = measures[s.measure_id.as_str()];
                filter.category_code.as_ref().is_none_or(|c| *c == m.category)
                    && filter.year.is_none_or(|y| chrono::Datelike::year(&m.planned_installation) == y)
            })
            .collect();
        selected.sort_by(|a, b| a.measure_id.cmp(&b.measure_id));
        let total = selected.len() as u64;
        let start = after.as_ref().map_or(0, |a| selected.partition_point(|s| s.measure_id.as_str() <= a.as_str()));
        let page: Vec<_> = selected.iter().skip(start).take(limit as usize).collect();
        let has_next = start + page.len() < selected.len();
        let mut connection =
            Connection::with_additional_fields(start > 0, has_next, ConnectionFields { total_count: total });
        // One query for the page's measures, not one per edge.
        let ids: Vec<String> = page.iter().map(|s| s.measure_id.clone()).collect();
        let rows: std::collections::HashMap<String, measure::Model> = measure::Entity::find()
            .filter(measure::Column::Id.is_in(ids))
            .all(db)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|m| (m.id.clone(), m))
            .collect();
        for status in page {
            let row = rows
                .get(&status.measure_id)
                .ok_or_else(|| ApiError::Internal("measure vanished while reconciling".into()))?;
            connection.edges.push(Edge::new(
                status.measure_id.clone(),
                CoFinancing {
                    measure: MeasureRecord::try_from(row)?,
                    status: status.status,
                    findings: status.findings.iter().map(|i| Finding::from(&report.findings[*i])).collect(),
                },
            ));
        }
        Ok(connection)
    }

    /// Envelopes (notified, committed, headroom per region and compartment) and every finding of the caller's
    /// territory. A dashboard gets the envelopes and the counts, not the detail.
    async fn reconciliation(
        &self,
        ctx: &Context<'_>,
        region_code: Option<String>,
        departement_code: Option<String>,
    ) -> ApiResult<ReconciliationReport> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Reconciliation, Action::Read)?;
        // A dashboard reads the aggregates of its institution's territory.
        let snapshot_reach = if reach == Reach::AggregatesOnly { Reach::OwnTerritory } else { reach };
        let scope =
            SnapshotScope { principal, reach: snapshot_reach, region: region_code, departement: departement_code };
        let snapshot = load_snapshot(db(ctx)?, catalog(ctx)?, &scope).await?;
        let report = engine::reconcile(&snapshot);
        let mut finding_counts: std::collections::BTreeMap<(&str, Severity), i64> = Default::default();
        for f in &report.findings {
            *finding_counts.entry((f.code, f.severity)).or_default() += 1;
        }
        let mut status_counts: std::collections::BTreeMap<CoFinancingStatus, i64> = Default::default();
        for s in &report.statuses {
            *status_counts.entry(s.status).or_default() += 1;
        }
        Ok(ReconciliationReport {
            envelopes: report
                .envelopes
                .iter()
                .map(|e| EnvelopeStatus {
                    region_code: e.region.clone(),
                    compartment: e.compartment,
                    notified: Euros(e.notified),
                    committed: Euros(e.committed),
                    headroom: Euros(e.headroom()),
                })
                .collect(),
            findings: if reach == Reach::AggregatesOnly {
                Vec::new()
            } else {
                report.findings.iter().map(Finding::from).collect()
            },
            finding_counts: finding_counts
                .into_iter()
                .map(|((code, severity), count)| FindingCount { code: code.to_owned(), severity, count })
                .collect(),
            status_counts: status_counts.into_iter().map(|(status, count)| StatusCount { status, count }).collect(),
        })
    }
}
