//! School support: the rectorats' plans of médico-social support to schools (the *école* envelope), per académie
//! and département. Each plan is identified by the rectorat's reference; a new submission updates it, keeping the
//! previous version in the revisions.

use std::sync::Arc;

use crate::reconciled::live::Reconciled;
use std::collections::BTreeSet;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use entities::{school_plan, school_plan_revision};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};

use crate::access::filters::{TerritoryFilter, check_territory_filter};
use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::{Principal, Role, ScopeLevel};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::audit_log::Actor;
use crate::kernel::receipts::{Channel, Provenance, SubmissionReceipt, provenance_of, record_submission};
use crate::kernel::write::{Begun, Write, content_hash};
use crate::money::Euros;
use crate::pagination::{ConnectionFields, page_size};
use crate::territory::service::Catalog;
use crate::territory::service::catalog;
use crate::validation::Violations;
use crate::validation::identifiers::{FinessCheck, finess_check, uai_valid};
use crate::vocabulary::{DataKind, SchoolSupportKind};

pub const MAX_PLANS: usize = 10_000;

/// One school-support plan. One of `uai` or `finess` is required (both may be given): the schema leaves each optional
/// since either will do; a plan with neither is refused with the violation SITE_REQUIRED (path
/// `plans[i].uai`), whose message names both fields and the plan's index (its line in a file).
#[derive(InputObject, Serialize, Clone, Debug)]
pub struct SchoolPlanInput {
    /// The rectorat's own reference of the plan, unique in its académie.
    pub reference: String,
    pub departement_code: String,
    pub kind: SchoolSupportKind,
    /// The school (UAI: 7 digits and a check letter). One of uai or finess is required.
    pub uai: Option<String>,
    /// The host médico-social service (FINESS). One of uai or finess is required.
    pub finess: Option<String>,
    /// Staff FTE from Éducation nationale, a decimal with up to two decimals ("1.5").
    pub etp_education_nationale: String,
    /// Staff FTE from the médico-social side.
    pub etp_medico_social: String,
    /// Full-year médico-social cost, to be matched by an ARS commitment on the école compartment.
    pub medico_social_cost: Euros,
    pub year: i32,
}

#[derive(InputObject, Serialize, Clone, Debug)]
pub struct SchoolPlansInput {
    pub academie_code: String,
    pub plans: Vec<SchoolPlanInput>,
}

/// A school-support plan at one version.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug)]
#[graphql(name = "SchoolPlan", complex)]
pub struct SchoolPlanRecord {
    pub id: String,
    pub academie_code: String,
    pub departement_code: String,
    pub reference: String,
    pub kind: SchoolSupportKind,
    pub uai: Option<String>,
    pub finess: Option<String>,
    pub etp_education_nationale: String,
    pub etp_medico_social: String,
    pub medico_social_cost: Euros,
    pub year: i32,
    pub version: i32,
    pub submission_id: String,
}

#[async_graphql::ComplexObject]
impl SchoolPlanRecord {
    /// Where this version came from: its submission, channel, and for pulled data its source and `asOf`.
    async fn provenance(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Option<Provenance>> {
        provenance_of(ctx, &self.submission_id).await
    }
}

fn hundredths_to_decimal(value: i64) -> String {
    Euros(value).to_decimal_string()
}

impl TryFrom<&school_plan::Model> for SchoolPlanRecord {
    type Error = ApiError;

    fn try_from(p: &school_plan::Model) -> Result<Self, ApiError> {
        Ok(SchoolPlanRecord {
            id: p.id.clone(),
            academie_code: p.academie_code.clone(),
            departement_code: p.departement_code.clone(),
            reference: p.reference.clone(),
            kind: SchoolSupportKind::from_stored(&p.kind)
                .ok_or_else(|| ApiError::Internal(format!("stored school support kind « {} »", p.kind).into()))?,
            uai: p.uai.clone(),
            finess: p.finess.clone(),
            etp_education_nationale: hundredths_to_decimal(p.etp_education_nationale_hundredths),
            etp_medico_social: hundredths_to_decimal(p.etp_medico_social_hundredths),
            medico_social_cost: Euros(p.medico_social_cost_cents),
            year: p.year,
            version: p.version,
            submission_id: p.submission_id.clone(),
        })
    }
}

/// FTE in hundredths, from "1.5".
fn parse_fte(path: &str, text: &str, v: &mut Violations) -> i64 {
    match Euros::parse(text.trim()) {
        Ok(Euros(hundredths)) if (0..=100_000).contains(&hundredths) => hundredths,
        Ok(_) => {
            v.add(path, "FTE_OUT_OF_RANGE", "ETP compris entre 0 et 1 000");
            0
        }
        Err(_) => {
            v.add(path, "FTE_MALFORMED", format!("« {text} » : un ETP s'écrit comme un décimal, ex. \"1.5\""));
            0
        }
    }
}

/// Parsed figures of a valid plan.
struct PlanFigures {
    etp_en: i64,
    etp_ms: i64,
}

/// How a message names a plan of the submission: its index, and its reference when there is one. A file import
/// replaces the index by the line (`files::import`).
pub fn plan_label(index: usize, reference: &str) -> String {
    match reference.trim() {
        "" => format!("plans[{index}]"),
        reference => format!("plans[{index}] (« {reference} »)"),
    }
}

fn check_plans(input: &SchoolPlansInput, principal: &Principal, catalog: &Catalog) -> (Violations, Vec<PlanFigures>) {
    let mut v = Violations::new();
    let mut figures = Vec::with_capacity(input.plans.len());
    match catalog.academie(&input.academie_code) {
        None => v.add("academieCode", "UNKNOWN_ACADEMIE", format!("académie « {} » inconnue", input.academie_code)),
        Some(a) => {
            v.check(
                principal.scope.code.as_deref() == Some(a.code.as_str()),
                "academieCode",
                "OUTSIDE_TERRITORY",
                format!("votre rectorat ne transmet pas les plans de l'académie {}", a.code),
            );
        }
    }
    if input.plans.is_empty() {
        v.add("plans", "REQUIRED", "au moins un plan");
    }
    if input.plans.len() > MAX_PLANS {
        v.add("plans", "BATCH_TOO_LARGE", format!("{} plans : {MAX_PLANS} au plus par envoi", input.plans.len()));
        return (v, figures);
    }
    let mut references = BTreeSet::new();
    for (i, plan) in input.plans.iter().enumerate() {
        let mut r = Violations::new();
        r.text("reference", &plan.reference, 1, 100);
        r.check(
            references.insert(plan.reference.trim()),
            "reference",
            "DUPLICATE_ROW",
            "même référence qu'un plan précédent de l'envoi",
        );
        match catalog.departement(&plan.departement_code) {
            None => r.add(
                "departementCode",
                "UNKNOWN_DEPARTEMENT",
                format!("département « {} » inconnu", plan.departement_code),
            ),
            Some(d) => {
                r.check(
                    d.academie_code == input.academie_code,
                    "departementCode",
                    "DEPARTEMENT_OUTSIDE_ACADEMIE",
                    format!("le département {} n'est pas dans l'académie {}", d.code, input.academie_code),
                );
            }
        }
        r.check(
            plan.uai.is_some() || plan.finess.is_some(),
            "uai",
            "SITE_REQUIRED",
            format!(
                "{} : ni uai ni finess, l'un des deux est requis (l'école par son UAI ou le service support par son FINESS)",
                plan_label(i, &plan.reference)
            ),
        );
        if let Some(uai) = &plan.uai {
            r.check(
                uai_valid(uai),
                "uai",
                "UAI_INVALID",
                format!("« {uai} » n'est pas un UAI valide (7 chiffres et une lettre de contrôle)"),
            );
        }
        if let Some(finess) = &plan.finess {
            match finess_check(finess) {
                FinessCheck::Malformed => {
                    r.add("finess", "FINESS_MALFORMED", format!("« {finess} » n'est pas un numéro FINESS"))
                }
                FinessCheck::BadCheckDigit => {
                    r.add("finess", "FINESS_CHECK_DIGIT", format!("la clé du FINESS « {finess} » est fausse"))
                }
                FinessCheck::Valid | FinessCheck::CorsicaUnverified => {}
            }
        }
        let etp_en = parse_fte("etpEducationNationale", &plan.etp_education_nationale, &mut r);
        let etp_ms = parse_fte("etpMedicoSocial", &plan.etp_medico_social, &mut r);
        r.amount("medicoSocialCost", plan.medico_social_cost.0);
        r.year("year", plan.year);
        figures.push(PlanFigures { etp_en, etp_ms });
        if !r.is_empty() {
            v.extend_at(&format!("plans[{i}]"), r);
        }
    }
    (v, figures)
}

pub async fn submit_school_plans(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    catalog: &Catalog,
    principal: &Principal,
    input: SchoolPlansInput,
    idempotency_key: Option<String>,
    channel: Channel,
) -> Result<SubmissionReceipt, ApiError> {
    if principal.role != Role::Rectorat {
        return Err(ApiError::Forbidden("seul un rectorat transmet des plans d'appui à la scolarité".into()));
    }
    let (violations, figures) = check_plans(&input, principal, catalog);
    violations.into_result()?;
    let mut write = match Write::begin(db, Actor::of(principal), "submitSchoolPlans", idempotency_key, &input).await? {
        Begun::Replayed(answer) => return Ok(SubmissionReceipt::as_replay(answer)),
        Begun::Fresh(write) => write,
    };
    let hash = content_hash(&input);
    let receipt =
        record_submission(&mut write, DataKind::SchoolPlans, &hash, input.plans.len() as i64, channel).await?;
    let now = receipt.received_at;
    let mut ids = Vec::with_capacity(input.plans.len());
    for (plan, figures) in input.plans.iter().zip(&figures) {
        let existing = school_plan::Entity::find()
            .filter(school_plan::Column::AcademieCode.eq(input.academie_code.clone()))
            .filter(school_plan::Column::Reference.eq(plan.reference.trim()))
            .one(&write.txn)
            .await?;
        let id = match existing {
            Some(stored) => {
                school_plan::Entity::update_many()
                    .col_expr(school_plan::Column::DepartementCode, Expr::value(plan.departement_code.clone()))
                    .col_expr(school_plan::Column::Kind, Expr::value(plan.kind.as_str()))
                    .col_expr(school_plan::Column::Uai, Expr::value(plan.uai.clone()))
                    .col_expr(school_plan::Column::Finess, Expr::value(plan.finess.clone()))
                    .col_expr(school_plan::Column::EtpEducationNationaleHundredths, Expr::value(figures.etp_en))
                    .col_expr(school_plan::Column::EtpMedicoSocialHundredths, Expr::value(figures.etp_ms))
                    .col_expr(school_plan::Column::MedicoSocialCostCents, Expr::value(plan.medico_social_cost.0))
                    .col_expr(school_plan::Column::Year, Expr::value(plan.year))
                    .col_expr(school_plan::Column::Version, Expr::value(stored.version + 1))
                    .col_expr(school_plan::Column::SubmissionId, Expr::value(receipt.submission_id.clone()))
                    .col_expr(school_plan::Column::UpdatedAt, Expr::value(now))
                    .filter(school_plan::Column::Id.eq(stored.id.clone()))
                    .exec(&write.txn)
                    .await?;
                stored.id
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                school_plan::Entity::insert(school_plan::ActiveModel {
                    id: Set(id.clone()),
                    academie_code: Set(input.academie_code.clone()),
                    departement_code: Set(plan.departement_code.clone()),
                    reference: Set(plan.reference.trim().to_owned()),
                    kind: Set(plan.kind.as_str().to_owned()),
                    uai: Set(plan.uai.clone()),
                    finess: Set(plan.finess.clone()),
                    etp_education_nationale_hundredths: Set(figures.etp_en),
                    etp_medico_social_hundredths: Set(figures.etp_ms),
                    medico_social_cost_cents: Set(plan.medico_social_cost.0),
                    year: Set(plan.year),
                    version: Set(1),
                    submission_id: Set(receipt.submission_id.clone()),
                    updated_at: Set(now),
                })
                .exec_without_returning(&write.txn)
                .await?;
                id
            }
        };
        let row = school_plan::Entity::find_by_id(id.clone())
            .one(&write.txn)
            .await?
            .ok_or_else(|| ApiError::Internal("school plan vanished inside its transaction".into()))?;
        let record = SchoolPlanRecord::try_from(&row)?;
        school_plan_revision::Entity::insert(school_plan_revision::ActiveModel {
            school_plan_id: Set(id.clone()),
            version: Set(record.version),
            snapshot: Set(serde_json::to_string(&record).map_err(|e| ApiError::Internal(Box::new(e)))?),
            recorded_at: Set(now),
            submission_id: Set(receipt.submission_id.clone()),
        })
        .exec_without_returning(&write.txn)
        .await?;
        ids.push(id);
    }
    ids.push(receipt.submission_id.clone());
    write.audit(ids, hash);
    if let Some(academie) = catalog.academie(&input.academie_code) {
        write.stales_region(reconciled, &academie.region_code);
    }
    write.commit(&receipt).await?;
    Ok(receipt)
}

#[derive(InputObject, Default)]
pub struct SchoolPlanFilter {
    /// An académie of the caller's territory: an unknown code is BAD_USER_INPUT, one outside the territory FORBIDDEN.
    pub academie_code: Option<String>,
    pub region_code: Option<String>,
    pub departement_code: Option<String>,
    pub year: Option<i32>,
    pub kind: Option<SchoolSupportKind>,
}

pub fn plan_scope(principal: &Principal, reach: Reach, catalog: &Catalog) -> Condition {
    match (reach, principal.scope.level) {
        (Reach::Everything, _) | (_, ScopeLevel::National) => Condition::all(),
        (_, ScopeLevel::Region) => {
            let academies: Vec<String> = principal
                .scope
                .region_codes
                .iter()
                .flat_map(|r| catalog.academies_of_region(r).map(|a| a.code.clone()))
                .collect();
            Condition::all().add(school_plan::Column::AcademieCode.is_in(academies))
        }
        _ => {
            Condition::all().add(school_plan::Column::DepartementCode.is_in(principal.scope.departement_codes.clone()))
        }
    }
}

/// The SQL predicate of an académie filter, checked against the reader's reach: an unknown code is
/// BAD_USER_INPUT, an académie outside the reader's territory FORBIDDEN, each naming the code (never an empty answer
/// that would look like an académie without plans).
pub fn academie_filter(
    principal: &Principal,
    reach: Reach,
    catalog: &Catalog,
    code: &str,
) -> Result<Condition, ApiError> {
    check_territory_filter(principal, reach, catalog, TerritoryFilter { academie: Some(code), ..Default::default() })?;
    Ok(Condition::all().add(school_plan::Column::AcademieCode.eq(code.to_owned())))
}

#[derive(Default)]
pub struct SchoolQuery;

#[Object]
impl SchoolQuery {
    /// School-support plans: a rectorat's own, its region's for an ARS, all for the CNSA.
    async fn school_plans(
        &self,
        ctx: &Context<'_>,
        filter: Option<SchoolPlanFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, SchoolPlanRecord, ConnectionFields>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::SchoolPlan, Action::Read)?;
        let catalog = catalog(ctx)?;
        let limit = page_size(first)?;
        let filter = filter.unwrap_or_default();
        let territory = TerritoryFilter {
            region: filter.region_code.as_deref(),
            departement: filter.departement_code.as_deref(),
            academie: None,
        };
        check_territory_filter(principal, reach, catalog, territory)?;
        let mut condition = plan_scope(principal, reach, catalog);
        if let Some(a) = &filter.academie_code {
            condition = condition.add(academie_filter(principal, reach, catalog, a)?);
        }
        if let Some(region) = filter.region_code {
            let academies: Vec<String> = catalog.academies_of_region(&region).map(|a| a.code.clone()).collect();
            condition = condition.add(school_plan::Column::AcademieCode.is_in(academies));
        }
        if let Some(d) = filter.departement_code {
            condition = condition.add(school_plan::Column::DepartementCode.eq(d));
        }
        if let Some(year) = filter.year {
            condition = condition.add(school_plan::Column::Year.eq(year));
        }
        if let Some(kind) = filter.kind {
            condition = condition.add(school_plan::Column::Kind.eq(kind.as_str()));
        }
        let db = db(ctx)?;
        let total = school_plan::Entity::find().filter(condition.clone()).count(db).await.map_err(ApiError::from)?;
        let mut query = school_plan::Entity::find().filter(condition);
        if let Some(after) = &after {
            query = query.filter(school_plan::Column::Id.gt(after.clone()));
        }
        let mut rows =
            query.order_by_asc(school_plan::Column::Id).limit(limit + 1).all(db).await.map_err(ApiError::from)?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let mut connection =
            Connection::with_additional_fields(after.is_some(), has_next, ConnectionFields { total_count: total });
        for row in &rows {
            connection.edges.push(Edge::new(row.id.clone(), SchoolPlanRecord::try_from(row)?));
        }
        Ok(connection)
    }
}

#[derive(Default)]
pub struct SchoolMutation;

#[Object]
impl SchoolMutation {
    /// A rectorat's school-support plans for its académie: all-or-nothing, every failing plan reported by index.
    async fn submit_school_plans(
        &self,
        ctx: &Context<'_>,
        input: SchoolPlansInput,
        idempotency_key: Option<String>,
    ) -> ApiResult<SubmissionReceipt> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::SchoolPlan, Action::Write)?;
        Ok(submit_school_plans(
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
