//! Lists back to spreadsheets: `GET /exports/{list}.{csv|xlsx}` with the caller's bearer token, within the same
//! policy and territory as the GraphQL reads, with the same columns the imports read (so an export can be edited
//! and imported again).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use entities::{
    audit_record, campaign, commitment, measure, needs_indicator, pull_run, pull_source, school_plan, webhook_delivery,
    webhook_subscription,
};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use super::import::{COMMITMENT_HEADERS, MEASURE_HEADERS, NEEDS_HEADERS, SCHOOL_HEADERS};
use super::tabular::{CellKind, FileFormat, french_amount, write_csv, write_xlsx};
use crate::access::policy::{self, Action, Resource};
use crate::access::principal::{Authentication, Principal};
use crate::error::{ApiError, code};
use crate::http::rate_limits::{Budget, EXPORT_COST};
use crate::http::{Gate, authenticate, error_response};
use crate::needs::needs_scope;
use crate::programming::service::measure_scope;
use crate::programming::types::{CommitmentRecord, MeasureRecord};
use crate::school::{SchoolPlanRecord, academie_filter, plan_scope};
use crate::territory::service::Catalog;
use crate::validation::{FIRST_YEAR, LAST_YEAR};

/// The query parameters an export accepts (`academieCode`, also written `academie`, for `school-plans` only;
/// `campaignId` for `campaign-status`).
/// `asOf` (an RFC 3339 instant or a date, the end of that day in Paris) for `steering-report` only.
pub const FILTERS: [&str; 6] = ["regionCode", "departementCode", "academieCode", "year", "campaignId", "asOf"];

/// Filters an export accepts as query parameters.
#[derive(Default, Debug, PartialEq)]
pub struct ExportFilter {
    region_code: Option<String>,
    departement_code: Option<String>,
    /// For `school-plans`.
    academie_code: Option<String>,
    year: Option<i32>,
    /// For `campaign-status`.
    campaign_id: Option<String>,
    /// For `steering-report`.
    as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// The instant of `text` (see `parse_as_of`), now when there is none; None when it cannot be read.
pub fn as_of_or_now(text: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
    match text {
        None => Some(chrono::Utc::now()),
        Some(text) => parse_as_of(text),
    }
}

/// An instant given as RFC 3339, or a date (the end of that day, Paris time, as deadlines are read; now for today).
pub fn parse_as_of(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&chrono::Utc)).ok().or_else(|| {
        // Today's date means now: the end of the day has not come yet.
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|d| crate::calendar::deadline_end(d).with_timezone(&chrono::Utc).min(chrono::Utc::now()))
    })
}

impl ExportFilter {
    /// Reads the query parameters. An unknown parameter is named (every unknown one, with the accepted ones), as is
    /// a parameter given twice or a year that is not a number.
    pub fn parse(pairs: &[(String, String)]) -> Result<ExportFilter, String> {
        fn canonical(name: &str) -> &str {
            if name == "academie" { "academieCode" } else { name }
        }
        let mut unknown: Vec<&str> = Vec::new();
        for (name, _) in pairs {
            if !FILTERS.contains(&canonical(name)) && !unknown.contains(&name.as_str()) {
                unknown.push(name);
            }
        }
        if !unknown.is_empty() {
            let named = unknown.iter().map(|n| format!("« {n} »")).collect::<Vec<_>>().join(", ");
            let what = if unknown.len() == 1 { "filtre inconnu" } else { "filtres inconnus" };
            return Err(format!("{what} : {named} ; filtres acceptés : {}", FILTERS.join(", ")));
        }
        let mut filter = ExportFilter::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            let name = canonical(name);
            if seen.contains(&name) {
                return Err(format!("filtre « {name} » donné deux fois"));
            }
            seen.push(name);
            let value = value.trim().to_owned();
            match name {
                "regionCode" => filter.region_code = Some(value),
                "departementCode" => filter.departement_code = Some(value),
                "academieCode" => filter.academie_code = Some(value),
                "campaignId" => filter.campaign_id = Some(value),
                "asOf" => {
                    filter.as_of = Some(parse_as_of(&value).ok_or_else(|| {
                        format!("filtre « asOf » : « {value} » n'est ni un instant RFC 3339 ni une date AAAA-MM-JJ")
                    })?)
                }
                "year" => {
                    filter.year =
                        Some(value.parse().map_err(|_| format!("filtre « year » : « {value} » n'est pas une année"))?)
                }
                // Unknown names were refused above.
                _ => {}
            }
        }
        Ok(filter)
    }
}

struct Sheet {
    name: &'static str,
    headers: Vec<String>,
    kinds: Vec<CellKind>,
    rows: Vec<Vec<String>>,
}

fn date(d: chrono::NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

fn hundredths(value: &str) -> String {
    value.replace('.', ",")
}

async fn measures_sheet(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: &ExportFilter,
) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::Measure, Action::Read)?;
    let mut query = measure::Entity::find().filter(measure_scope(principal, reach));
    if let Some(r) = &filter.region_code {
        query = query.filter(measure::Column::RegionCode.eq(r.clone()));
    }
    if let Some(d) = &filter.departement_code {
        query = query.filter(measure::Column::DepartementCode.eq(d.clone()));
    }
    let mut rows = Vec::new();
    for m in query.order_by_asc(measure::Column::Id).all(db).await? {
        let r = MeasureRecord::try_from(&m)?;
        if filter.year.is_some_and(|y| chrono::Datelike::year(&r.planned_installation) != y) {
            continue;
        }
        rows.push(vec![
            r.id,
            r.reference,
            r.label,
            r.departement_code,
            r.finess.unwrap_or_default(),
            r.category_code,
            r.publics.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
            r.solutions.to_string(),
            r.unit.as_str().to_owned(),
            r.nature.as_str().to_owned(),
            r.procedure.as_str().to_owned(),
            r.compartment.as_str().to_owned(),
            date(r.planned_installation),
            r.status.as_str().to_owned(),
            r.version.to_string(),
        ]);
    }
    let headers = std::iter::once("Identifiant").chain(MEASURE_HEADERS).map(str::to_owned).collect::<Vec<_>>();
    let mut kinds = vec![CellKind::Text; headers.len()];
    kinds[7] = CellKind::Integer;
    kinds[14] = CellKind::Integer;
    Ok(Sheet { name: "Mesures", headers, kinds, rows })
}

async fn commitments_sheet(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: &ExportFilter,
) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::Measure, Action::Read)?;
    let mut measures = measure::Entity::find().filter(measure_scope(principal, reach));
    if let Some(r) = &filter.region_code {
        measures = measures.filter(measure::Column::RegionCode.eq(r.clone()));
    }
    if let Some(d) = &filter.departement_code {
        measures = measures.filter(measure::Column::DepartementCode.eq(d.clone()));
    }
    let measures = measures.all(db).await?;
    let references: std::collections::HashMap<String, String> =
        measures.iter().map(|m| (m.id.clone(), m.reference.clone())).collect();
    let ids: Vec<String> = measures.into_iter().map(|m| m.id).collect();
    let mut rows = Vec::new();
    for chunk in ids.chunks(500) {
        for c in commitment::Entity::find()
            .filter(commitment::Column::MeasureId.is_in(chunk.iter().cloned()))
            .order_by_asc(commitment::Column::Id)
            .all(db)
            .await?
        {
            let r = CommitmentRecord::try_from(&c)?;
            let mut row = vec![
                r.measure_id.clone(),
                references.get(&r.measure_id).cloned().unwrap_or_default(),
                r.cost_component.as_str().to_owned(),
                french_amount(r.full_year_amount.0),
                r.decision_ref,
                r.capacity.to_string(),
                date(r.installation_date),
                r.version.to_string(),
            ];
            for year in FIRST_YEAR..=LAST_YEAR {
                row.push(
                    r.schedule.iter().find(|y| y.year == year).map(|y| french_amount(y.amount.0)).unwrap_or_default(),
                );
            }
            row.push(r.funder_code);
            row.push(r.status.as_str().to_owned());
            rows.push(row);
        }
    }
    let mut headers: Vec<String> = COMMITMENT_HEADERS.iter().map(|h| h.to_string()).collect();
    headers.extend((FIRST_YEAR..=LAST_YEAR).map(|y| y.to_string()));
    headers.push("Financeur".into());
    headers.push("Statut".into());
    let mut kinds = vec![CellKind::Text; headers.len()];
    kinds[3] = CellKind::Hundredths;
    kinds[5] = CellKind::Integer;
    kinds[7] = CellKind::Integer;
    for k in kinds.iter_mut().skip(8).take((LAST_YEAR - FIRST_YEAR + 1) as usize) {
        *k = CellKind::Hundredths;
    }
    Ok(Sheet { name: "Engagements", headers, kinds, rows })
}

async fn needs_sheet(
    db: &DatabaseConnection,
    catalog: &Catalog,
    principal: &Principal,
    filter: &ExportFilter,
) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::Needs, Action::Read)?;
    let mut query = needs_indicator::Entity::find().filter(needs_scope(principal, reach));
    if let Some(d) = &filter.departement_code {
        query = query.filter(needs_indicator::Column::DepartementCode.eq(d.clone()));
    }
    if let Some(region) = &filter.region_code {
        let departements: Vec<String> = catalog.departements_of_region(region).map(|d| d.code.clone()).collect();
        query = query.filter(needs_indicator::Column::DepartementCode.is_in(departements));
    }
    let rows: Vec<Vec<String>> = query
        .order_by_asc(needs_indicator::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|n| {
            vec![
                n.departement_code,
                date(n.reference_date),
                n.orientation_code,
                n.age_band,
                n.indicator,
                n.value.to_string(),
            ]
        })
        .collect();
    let mut kinds = vec![CellKind::Text; NEEDS_HEADERS.len()];
    kinds[5] = CellKind::Integer;
    Ok(Sheet { name: "Besoins", headers: NEEDS_HEADERS.iter().map(|h| h.to_string()).collect(), kinds, rows })
}

async fn school_sheet(
    db: &DatabaseConnection,
    catalog: &Catalog,
    principal: &Principal,
    filter: &ExportFilter,
) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::SchoolPlan, Action::Read)?;
    let mut query = school_plan::Entity::find().filter(plan_scope(principal, reach, catalog));
    if let Some(a) = &filter.academie_code {
        query = query.filter(academie_filter(principal, reach, catalog, a)?);
    }
    if let Some(d) = &filter.departement_code {
        query = query.filter(school_plan::Column::DepartementCode.eq(d.clone()));
    }
    if let Some(y) = filter.year {
        query = query.filter(school_plan::Column::Year.eq(y));
    }
    let mut rows = Vec::new();
    for p in query.order_by_asc(school_plan::Column::Id).all(db).await? {
        let r = SchoolPlanRecord::try_from(&p)?;
        rows.push(vec![
            r.reference,
            r.departement_code,
            r.kind.as_str().to_owned(),
            r.uai.unwrap_or_default(),
            r.finess.unwrap_or_default(),
            hundredths(&r.etp_education_nationale),
            hundredths(&r.etp_medico_social),
            french_amount(r.medico_social_cost.0),
            r.year.to_string(),
        ]);
    }
    let kinds = vec![
        CellKind::Text,
        CellKind::Text,
        CellKind::Text,
        CellKind::Text,
        CellKind::Text,
        CellKind::Hundredths,
        CellKind::Hundredths,
        CellKind::Hundredths,
        CellKind::Integer,
    ];
    Ok(Sheet { name: "Appui scolarité", headers: SCHOOL_HEADERS.iter().map(|h| h.to_string()).collect(), kinds, rows })
}

async fn audit_sheet(db: &DatabaseConnection, principal: &Principal) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::AuditTrail, Action::Read)?;
    let mut query = audit_record::Entity::find();
    if reach != crate::access::policy::Reach::Everything {
        query = query.filter(audit_record::Column::InstitutionCode.eq(principal.institution.code.clone()));
    }
    let rows = query
        .order_by_asc(audit_record::Column::Seq)
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                r.recorded_at.to_rfc3339(),
                r.institution_code,
                r.agent_id.unwrap_or_default(),
                r.token_id.unwrap_or_default(),
                r.operation,
                r.object_ids,
                r.content_hash,
                r.previous_hash,
                r.hash,
            ]
        })
        .collect();
    let headers = [
        "Séquence",
        "Horodatage",
        "Institution",
        "Agent",
        "Jeton",
        "Opération",
        "Objets",
        "Empreinte du contenu",
        "Empreinte précédente",
        "Empreinte",
    ];
    let mut kinds = vec![CellKind::Text; headers.len()];
    kinds[0] = CellKind::Integer;
    Ok(Sheet { name: "Journal", headers: headers.iter().map(|h| h.to_string()).collect(), kinds, rows })
}

/// The institution condition of an exchange list: the caller's own rows, or all with national reach.
fn own_rows<C: ColumnTrait>(principal: &Principal, reach: crate::access::policy::Reach, column: C) -> Condition {
    match reach {
        crate::access::policy::Reach::Everything => Condition::all(),
        _ => Condition::all().add(column.eq(principal.institution.code.clone())),
    }
}

fn time(at: Option<chrono::DateTime<chrono::FixedOffset>>) -> String {
    at.map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn epoch_time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn sheet(name: &'static str, headers: &[&str], integers: &[usize], rows: Vec<Vec<String>>) -> Sheet {
    let mut kinds = vec![CellKind::Text; headers.len()];
    for i in integers {
        kinds[*i] = CellKind::Integer;
    }
    Sheet { name, headers: headers.iter().map(|h| h.to_string()).collect(), kinds, rows }
}

/// The steering figures in force (trajectory, drawing rights, installation forecasts) of the caller's territory.
async fn steering_sheet(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: &ExportFilter,
) -> Result<Sheet, ApiError> {
    use crate::steering::figures::{SteeringFigureFilter, in_force, recorded_rows};
    let reach = policy::require(principal, Resource::SteeringFigures, Action::Read)?;
    let wanted =
        SteeringFigureFilter { region_code: filter.region_code.clone(), year: filter.year, ..Default::default() };
    let rows = in_force(recorded_rows(db, principal, reach, &wanted).await?);
    let cents = |c: Option<i64>| c.map(french_amount).unwrap_or_default();
    Ok(sheet(
        "Pilotage",
        &["Donnée", "Région", "Enveloppe", "Année", "AE", "CP", "Installations", "Transmis par", "Reçu le"],
        &[3, 6],
        rows.into_iter()
            .map(|r| {
                vec![
                    r.kind,
                    r.region_code,
                    r.compartment.unwrap_or_default(),
                    r.year.to_string(),
                    cents(r.ae_cents),
                    cents(r.cp_cents),
                    r.solutions.map(|s| s.to_string()).unwrap_or_default(),
                    r.recorded_by,
                    time(Some(r.recorded_at)),
                ]
            })
            .collect(),
    ))
}

/// Pull sources, their credentials left out.
async fn pull_sources_sheet(db: &DatabaseConnection, principal: &Principal) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::PullSource, Action::Read)?;
    let rows = pull_source::Entity::find()
        .filter(own_rows(principal, reach, pull_source::Column::InstitutionCode))
        .order_by_asc(pull_source::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            vec![
                r.id,
                r.institution_code,
                r.name,
                r.url,
                r.data_kind,
                r.format,
                r.auth_kind,
                r.interval_seconds.to_string(),
                r.status,
                r.consecutive_failures.to_string(),
                epoch_time(r.next_pull_at),
                time(r.last_success_at),
                r.created_at.to_rfc3339(),
            ]
        })
        .collect();
    let headers = [
        "Identifiant",
        "Institution",
        "Nom",
        "URL",
        "Type de données",
        "Format",
        "Authentification",
        "Intervalle (s)",
        "État",
        "Échecs consécutifs",
        "Prochaine collecte",
        "Dernier succès",
        "Créée le",
    ];
    Ok(sheet("Sources", &headers, &[7, 9], rows))
}

/// Pull runs of the sources the caller sees.
async fn pull_runs_sheet(db: &DatabaseConnection, principal: &Principal) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::PullSource, Action::Read)?;
    let sources = pull_source::Entity::find()
        .select_only()
        .column(pull_source::Column::Id)
        .filter(own_rows(principal, reach, pull_source::Column::InstitutionCode))
        .into_query();
    let rows = pull_run::Entity::find()
        .filter(pull_run::Column::SourceId.in_subquery(sources))
        .order_by_asc(pull_run::Column::StartedAt)
        .order_by_asc(pull_run::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            let errors: Vec<serde_json::Value> = serde_json::from_str(&r.errors).unwrap_or_default();
            let errors: Vec<String> = errors
                .iter()
                .map(|e| e.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned())
                .collect();
            vec![
                r.id,
                r.source_id,
                r.started_at.to_rfc3339(),
                r.finished_at.to_rfc3339(),
                r.outcome,
                r.http_status.map(|s| s.to_string()).unwrap_or_default(),
                r.attempts.to_string(),
                r.rows_accepted.to_string(),
                r.submission_id.unwrap_or_default(),
                r.content_hash.unwrap_or_default(),
                errors.join(" | "),
                r.instance,
            ]
        })
        .collect();
    let headers = [
        "Identifiant",
        "Source",
        "Début",
        "Fin",
        "Issue",
        "Statut HTTP",
        "Tentatives",
        "Lignes acceptées",
        "Soumission",
        "Empreinte",
        "Erreurs",
        "Instance",
    ];
    Ok(sheet("Collectes", &headers, &[6, 7], rows))
}

/// Webhook subscriptions, their secrets left out.
async fn webhook_subscriptions_sheet(db: &DatabaseConnection, principal: &Principal) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::Webhook, Action::Read)?;
    let rows = webhook_subscription::Entity::find()
        .filter(own_rows(principal, reach, webhook_subscription::Column::InstitutionCode))
        .order_by_asc(webhook_subscription::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            vec![
                r.id,
                r.institution_code,
                r.url,
                r.event_kinds,
                r.scope_level,
                r.region_code.unwrap_or_default(),
                r.departement_codes,
                if r.active { "oui" } else { "non" }.to_owned(),
                r.created_at.to_rfc3339(),
                time(r.cancelled_at),
            ]
        })
        .collect();
    let headers = [
        "Identifiant",
        "Institution",
        "URL",
        "Événements",
        "Portée",
        "Région",
        "Départements",
        "Actif",
        "Créé le",
        "Résilié le",
    ];
    Ok(sheet("Abonnements", &headers, &[], rows))
}

/// Webhook deliveries of the subscriptions the caller sees (bodies left out: the GraphQL list has them).
async fn webhook_deliveries_sheet(db: &DatabaseConnection, principal: &Principal) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::Webhook, Action::Read)?;
    let subscriptions = webhook_subscription::Entity::find()
        .select_only()
        .column(webhook_subscription::Column::Id)
        .filter(own_rows(principal, reach, webhook_subscription::Column::InstitutionCode))
        .into_query();
    let rows = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::SubscriptionId.in_subquery(subscriptions))
        .order_by_asc(webhook_delivery::Column::CreatedAt)
        .order_by_asc(webhook_delivery::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            vec![
                r.id,
                r.subscription_id,
                r.event_kind,
                r.event_key,
                r.state,
                r.attempts.to_string(),
                r.last_status.map(|s| s.to_string()).unwrap_or_default(),
                r.last_error.unwrap_or_default(),
                r.created_at.to_rfc3339(),
                time(r.delivered_at),
            ]
        })
        .collect();
    let headers = [
        "Identifiant",
        "Abonnement",
        "Événement",
        "Clé",
        "État",
        "Tentatives",
        "Dernier statut",
        "Dernière erreur",
        "Créée le",
        "Remise le",
    ];
    Ok(sheet("Notifications", &headers, &[5], rows))
}

async fn campaign_sheet(
    db: &DatabaseConnection,
    catalog: &Catalog,
    principal: &Principal,
    filter: &ExportFilter,
) -> Result<Sheet, ApiError> {
    let reach = policy::require(principal, Resource::Campaign, Action::Read)?;
    let id = filter.campaign_id.clone().ok_or_else(|| ApiError::BadUserInput("campaignId requis".into()))?;
    let campaign = campaign::Entity::find_by_id(id.clone())
        .one(db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("aucune campagne « {id} »")))?;
    let stamp = |d: Option<chrono::DateTime<chrono::FixedOffset>>| d.map(|d| d.to_rfc3339()).unwrap_or_default();
    let rows = crate::campaigns::campaign_status(db, catalog, principal, reach, &campaign)
        .await?
        .into_iter()
        .map(|s| {
            vec![
                s.institution_code,
                s.institution_name,
                format!("{:?}", s.standing).to_uppercase(),
                s.submissions.to_string(),
                stamp(s.first_submission_at),
                stamp(s.last_submission_at),
            ]
        })
        .collect();
    let headers = ["Institution", "Nom", "Situation", "Envois", "Premier envoi", "Dernier envoi"];
    let mut kinds = vec![CellKind::Text; headers.len()];
    kinds[3] = CellKind::Integer;
    Ok(Sheet { name: "Campagne", headers: headers.iter().map(|h| h.to_string()).collect(), kinds, rows })
}

/// What the export handler needs.
#[derive(Clone)]
pub struct ExportState {
    pub db: sea_orm::DatabaseConnection,
    pub gate: Gate,
    /// Counts of people below it are masked (outside the CNSA and the producing MDPH).
    pub masking_threshold: i64,
}

/// `GET /exports/{file}`: `measures`, `commitments`, `needs`, `school-plans`, `audit-trail` or `campaign-status`
/// (with `?campaignId=`), then `.csv` or `.xlsx`.
pub async fn export(
    State(state): State<ExportState>,
    headers: HeaderMap,
    Path(file): Path<String>,
    parameters: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let principal = match authenticate(&state.gate, &headers).await {
        Ok(Authentication::Authenticated(principal)) => principal,
        Ok(Authentication::Anonymous) => {
            return error_response(StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED, "authentification requise");
        }
        Err(response) => return response,
    };
    if let Some(refused) = crate::http::charge(&state.gate, &principal, Budget::Reads, EXPORT_COST) {
        return refused;
    }
    let filter = match parameters {
        Ok(Query(pairs)) => ExportFilter::parse(&pairs),
        Err(rejection) => {
            Err(format!("paramètres illisibles ({rejection}) ; filtres acceptés : {}", FILTERS.join(", ")))
        }
    };
    let filter = match filter {
        Ok(filter) => filter,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, code::BAD_USER_INPUT, &message),
    };
    let (list, format) = match file.rsplit_once('.') {
        Some((list, "csv")) => (list, FileFormat::Csv),
        Some((list, "xlsx")) => (list, FileFormat::Xlsx),
        _ => return error_response(StatusCode::NOT_FOUND, code::NOT_FOUND, "export inconnu : .csv ou .xlsx attendu"),
    };
    if list == "steering-report" {
        return steering_report_export(&state, &principal, &filter, format, &file).await;
    }
    if let Some(at) = filter.as_of.filter(|_| list != "steering-report") {
        let message = format!("filtre « asOf » (« {at} ») : réservé à l'export steering-report");
        return error_response(StatusCode::BAD_REQUEST, code::BAD_USER_INPUT, &message);
    }
    if let Some(academie) = filter.academie_code.as_ref().filter(|_| list != "school-plans") {
        let message = format!("filtre « academieCode » (« {academie} ») : réservé à l'export school-plans");
        return error_response(StatusCode::BAD_REQUEST, code::BAD_USER_INPUT, &message);
    }
    // A territory outside the caller's is refused by name, before anything is read.
    let resource = match list {
        "measures" => Some(Resource::Measure),
        "commitments" => Some(Resource::Commitment),
        "needs" => Some(Resource::Needs),
        "school-plans" => Some(Resource::SchoolPlan),
        "steering-figures" => Some(Resource::SteeringFigures),
        _ => None,
    };
    if let Some(resource) = resource
        && let Ok(reach) = policy::require(&principal, resource, Action::Read)
    {
        let territory = crate::access::filters::TerritoryFilter {
            region: filter.region_code.as_deref(),
            departement: filter.departement_code.as_deref(),
            academie: filter.academie_code.as_deref(),
        };
        if let Err(err) =
            crate::access::filters::check_territory_filter(&principal, reach, &state.gate.catalog, territory)
        {
            let status =
                if matches!(err, ApiError::Forbidden(_)) { StatusCode::FORBIDDEN } else { StatusCode::BAD_REQUEST };
            return error_response(status, err.code(), &err.to_string());
        }
    }
    let sheet = match list {
        "measures" => measures_sheet(&state.db, &principal, &filter).await,
        "commitments" => commitments_sheet(&state.db, &principal, &filter).await,
        "needs" => needs_sheet(&state.db, &state.gate.catalog, &principal, &filter).await,
        "school-plans" => school_sheet(&state.db, &state.gate.catalog, &principal, &filter).await,
        "audit-trail" => audit_sheet(&state.db, &principal).await,
        "campaign-status" => campaign_sheet(&state.db, &state.gate.catalog, &principal, &filter).await,
        "pull-sources" => pull_sources_sheet(&state.db, &principal).await,
        "pull-runs" => pull_runs_sheet(&state.db, &principal).await,
        "webhook-subscriptions" => webhook_subscriptions_sheet(&state.db, &principal).await,
        "webhook-deliveries" => webhook_deliveries_sheet(&state.db, &principal).await,
        "steering-figures" => steering_sheet(&state.db, &principal, &filter).await,
        _ => {
            return error_response(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                "export inconnu : measures, commitments, needs, school-plans, audit-trail, campaign-status, \
                 pull-sources, pull-runs, webhook-subscriptions, webhook-deliveries, steering-figures, steering-report",
            );
        }
    };
    let sheet = match sheet {
        Ok(sheet) => sheet,
        Err(err) => {
            let status = match &err {
                ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
                ApiError::NotFound(_) => StatusCode::NOT_FOUND,
                ApiError::BadUserInput(_) => StatusCode::BAD_REQUEST,
                ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let graphql: async_graphql::Error = err.into();
            let code = match graphql.extensions.as_ref().and_then(|e| e.get("code")) {
                Some(async_graphql::Value::String(c)) => c.clone(),
                _ => code::INTERNAL_SERVER_ERROR.to_owned(),
            };
            return error_response(status, &code, &graphql.message);
        }
    };
    let headers_ref: Vec<&str> = sheet.headers.iter().map(String::as_str).collect();
    let (body, content_type) = match format {
        FileFormat::Csv => (write_csv(&headers_ref, &sheet.rows), "text/csv; charset=utf-8"),
        FileFormat::Xlsx => match write_xlsx(sheet.name, &headers_ref, &sheet.kinds, &sheet.rows) {
            Ok(bytes) => (bytes, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            Err(err) => {
                tracing::error!(error = %err, "xlsx export failed");
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::INTERNAL_SERVER_ERROR,
                    "erreur interne du hub",
                );
            }
        },
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn refused(err: ApiError) -> Response {
    let status = match &err {
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::BadUserInput(_) => StatusCode::BAD_REQUEST,
        ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_response(status, err.code(), &err.to_string())
}

/// `GET /exports/steering-report.xlsx?asOf=…&regionCode=…`: the committee's pack as a workbook, a sheet per part.
async fn steering_report_export(
    state: &ExportState,
    principal: &Principal,
    filter: &ExportFilter,
    format: FileFormat,
    file: &str,
) -> Response {
    use crate::steering::report::{build, regions_of};
    if format != FileFormat::Xlsx {
        let message = "le dossier du comité de pilotage est un classeur : steering-report.xlsx";
        return error_response(StatusCode::NOT_FOUND, code::NOT_FOUND, message);
    }
    let reach = match policy::require(principal, Resource::SteeringReport, Action::Read) {
        Ok(reach) => reach,
        Err(err) => return refused(err),
    };
    let regions = match regions_of(principal, reach, &state.gate.catalog, filter.region_code.as_deref()) {
        Ok(regions) => regions,
        Err(err) => return refused(err),
    };
    let territory = std::sync::Arc::new(crate::reconciled::snapshot::territory(&state.gate.catalog));
    let unmasked = principal.scope.is_national() && reach == crate::access::policy::Reach::Everything;
    let at = filter.as_of.unwrap_or_else(chrono::Utc::now);
    let pack =
        match build(&state.db, &state.gate.catalog, territory, regions, at, unmasked, state.masking_threshold).await {
            Ok(pack) => pack,
            Err(err) => return refused(err),
        };
    match steering_workbook(&pack) {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            );
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "steering report export failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL_SERVER_ERROR, "erreur interne du hub")
        }
    }
}

/// The committee's pack as a workbook: a sheet per part, amounts as numbers with two decimals.
pub fn steering_workbook(pack: &crate::steering::report::SteeringReport) -> Result<Vec<u8>, String> {
    use super::tabular::{SheetData, write_workbook};
    use CellKind::{Hundredths as H, Integer as I, Text as T};
    let money = |e: &crate::money::Euros| french_amount(e.0);
    let maybe = |e: &Option<crate::money::Euros>| e.as_ref().map(money).unwrap_or_default();
    let at = pack.as_of.to_rfc3339();
    let about = vec![vec!["Figures au".to_owned(), at.clone()], vec!["Régions".to_owned(), pack.regions.join(", ")]];
    let envelopes: Vec<Vec<String>> = pack
        .envelopes
        .iter()
        .map(|e| {
            vec![
                e.region_code.clone(),
                e.compartment.as_str().to_owned(),
                money(&e.notified),
                money(&e.programmed),
                money(&e.committed),
                money(&e.installed),
                money(&e.cp_called),
            ]
        })
        .collect();
    let solutions: Vec<Vec<String>> = pack
        .solutions
        .iter()
        .map(|s| {
            vec![
                s.region_code.clone(),
                s.category_code.clone(),
                s.publics.clone(),
                s.measures.to_string(),
                s.solutions.to_string(),
                s.installed_solutions.to_string(),
            ]
        })
        .collect();
    let credits: Vec<Vec<String>> = pack
        .credits
        .iter()
        .map(|c| {
            vec![
                c.region_code.clone(),
                c.compartment.as_str().to_owned(),
                c.year.to_string(),
                money(&c.ae_programmed),
                maybe(&c.trajectory_ae),
                money(&c.cp_called),
                maybe(&c.trajectory_cp),
            ]
        })
        .collect();
    let drawing: Vec<Vec<String>> = pack
        .drawing
        .iter()
        .map(|d| {
            vec![
                d.region_code.clone(),
                d.year.to_string(),
                money(&d.cp_called),
                maybe(&d.drawing_rights),
                maybe(&d.forecast_cp),
                d.forecast_solutions.map(|n| n.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let statuses: Vec<Vec<String>> = pack
        .statuses
        .iter()
        .map(|s| vec![s.region_code.clone(), s.status.as_str().to_owned(), s.count.to_string()])
        .collect();
    let coverage: Vec<Vec<String>> = pack
        .needs_coverage
        .iter()
        .map(|c| {
            vec![
                c.region_code.clone(),
                c.departement_code.clone(),
                c.category_code.clone().unwrap_or_default(),
                c.people.clone(),
                c.programmed_solutions.to_string(),
            ]
        })
        .collect();
    let findings: Vec<Vec<String>> = pack
        .findings
        .iter()
        .map(|f| {
            vec![
                f.region_code.clone(),
                f.code.clone(),
                format!("{:?}", f.severity).to_uppercase(),
                f.subject.clone(),
                f.message.clone(),
            ]
        })
        .collect();
    let escalations: Vec<Vec<String>> =
        pack.open_escalations.iter().map(|e| vec![e.region_code.clone(), e.open.to_string()]).collect();
    write_workbook(&[
        SheetData { name: "Dossier", headers: &["", ""], kinds: &[T, T], rows: &about },
        SheetData {
            name: "Enveloppes",
            headers: &[
                "Région",
                "Enveloppe",
                "AE notifiées",
                "AE programmées",
                "AE engagées",
                "AE installées",
                "CP appelés",
            ],
            kinds: &[T, T, H, H, H, H, H],
            rows: &envelopes,
        },
        SheetData {
            name: "Solutions",
            headers: &["Région", "Catégorie", "Publics", "Mesures", "Solutions", "Solutions installées"],
            kinds: &[T, T, T, I, I, I],
            rows: &solutions,
        },
        SheetData {
            name: "Trajectoire",
            headers: &[
                "Région",
                "Enveloppe",
                "Année",
                "AE programmées",
                "AE trajectoire",
                "CP appelés",
                "CP trajectoire",
            ],
            kinds: &[T, T, I, H, H, H, H],
            rows: &credits,
        },
        SheetData {
            name: "Droits de tirage",
            headers: &["Région", "Année", "CP appelés", "Droits de tirage", "CP prévus", "Installations prévues"],
            kinds: &[T, I, H, H, H, I],
            rows: &drawing,
        },
        SheetData {
            name: "Cofinancements",
            headers: &["Région", "Statut", "Mesures"],
            kinds: &[T, T, I],
            rows: &statuses,
        },
        SheetData {
            name: "Besoins",
            headers: &["Région", "Département", "Catégorie", "Personnes sans solution", "Solutions programmées"],
            kinds: &[T, T, T, T, I],
            rows: &coverage,
        },
        SheetData {
            name: "Constats",
            headers: &["Région", "Code", "Gravité", "Objet", "Constat"],
            kinds: &[T, T, T, T, T],
            rows: &findings,
        },
        SheetData {
            name: "Escalades", headers: &["Région", "Escalades ouvertes"], kinds: &[T, I], rows: &escalations
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn unknown_parameters_are_named_with_the_accepted_ones() {
        let err = ExportFilter::parse(&pairs(&[("year", "2026"), ("colour", "blue"), ("regoin", "84")])).unwrap_err();
        assert!(err.starts_with("filtres inconnus : « colour », « regoin »"), "{err}");
        assert!(
            err.ends_with("filtres acceptés : regionCode, departementCode, academieCode, year, campaignId, asOf"),
            "{err}"
        );
        let one = ExportFilter::parse(&pairs(&[("colour", "blue"), ("colour", "red")])).unwrap_err();
        assert!(one.starts_with("filtre inconnu : « colour » ;"), "{one}");
    }

    #[test]
    fn known_parameters_are_read_and_a_bad_one_is_named() {
        let filter = ExportFilter::parse(&pairs(&[("academie", "lyon"), ("year", "2026")])).unwrap();
        assert_eq!((filter.academie_code.as_deref(), filter.year), (Some("lyon"), Some(2026)));
        let twice = ExportFilter::parse(&pairs(&[("academie", "lyon"), ("academieCode", "grenoble")])).unwrap_err();
        assert_eq!(twice, "filtre « academieCode » donné deux fois");
        let year = ExportFilter::parse(&pairs(&[("year", "deux-mille")])).unwrap_err();
        assert_eq!(year, "filtre « year » : « deux-mille » n'est pas une année");
    }
}
