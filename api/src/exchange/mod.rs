//! Exchange: the write path shared by every channel, submissions and their receipts, and the CNSA's campaigns.

pub mod export;
pub mod files;
pub mod import;
pub mod write;

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use entities::{campaign, institution, submission};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor};
use crate::auth::policy::{self, Action, Reach, Resource};
use crate::auth::principal::{Principal, Scope};
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::{catalog, db};
use crate::territory::service::Catalog;
use crate::validation::Violations;
use crate::vocabulary::{DataKind, InstitutionKind};
use write::{Begun, Write, content_hash};

/// How a submission reached the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Graphql,
    File,
    Cli,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Graphql => "GRAPHQL",
            Channel::File => "FILE",
            Channel::Cli => "CLI",
        }
    }
}

/// What a submission's sender gets back.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SubmissionReceipt {
    pub submission_id: String,
    pub kind: DataKind,
    /// How many rows (indicators, plans…) were accepted.
    pub accepted: i64,
    /// SHA-256 of the submitted content.
    pub content_hash: String,
    /// The campaign it counts for, if one of its kind was open.
    pub campaign_id: Option<String>,
    pub campaign_name: Option<String>,
    /// Received by the campaign's deadline.
    pub on_time: Option<bool>,
    pub received_at: DateTime<FixedOffset>,
}

/// The last Sunday of a month (EU summer time starts on March's and ends on October's).
fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    use chrono::Datelike;
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let last = first_of_next.pred_opt()?;
    last.checked_sub_days(chrono::Days::new(u64::from(last.weekday().num_days_from_sunday())))
}

/// Paris's offset from UTC at the end of a day (metropolitan France: CET, CEST in summer).
pub(crate) fn paris_offset_at_end_of(day: NaiveDate) -> FixedOffset {
    use chrono::Datelike;
    let summer = match (last_sunday(day.year(), 3), last_sunday(day.year(), 10)) {
        (Some(start), Some(end)) => day >= start && day < end,
        _ => false,
    };
    FixedOffset::east_opt(if summer { 7200 } else { 3600 }).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap())
}

/// End of a campaign's deadline day, in Paris time (the CNSA's deadlines are French calendar days): submissions
/// received by then are on time.
pub(crate) fn deadline_end(deadline: NaiveDate) -> DateTime<FixedOffset> {
    let local = deadline.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
    let offset = paris_offset_at_end_of(deadline);
    (local - chrono::Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc().fixed_offset()
}

/// Records an accepted submission, counted for the open campaign of its kind.
pub async fn record_submission<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    kind: DataKind,
    content_hash: &str,
    accepted: i64,
    channel: Channel,
) -> Result<SubmissionReceipt, ApiError> {
    let received_at = audit::now_micros();
    let today = received_at.date_naive();
    let open = campaign::Entity::find()
        .filter(campaign::Column::DataKind.eq(kind.as_str()))
        .filter(campaign::Column::OpensOn.lte(today))
        .filter(Condition::any().add(campaign::Column::ClosesOn.is_null()).add(campaign::Column::ClosesOn.gte(today)))
        .order_by_desc(campaign::Column::OpensOn)
        .one(conn)
        .await?;
    let id = uuid::Uuid::now_v7().to_string();
    submission::Entity::insert(submission::ActiveModel {
        id: Set(id.clone()),
        kind: Set(kind.as_str().to_owned()),
        institution_code: Set(actor.institution_code.clone()),
        agent_id: Set(actor.agent_id.clone()),
        token_id: Set(actor.token_id.clone()),
        campaign_id: Set(open.as_ref().map(|c| c.id.clone())),
        content_hash: Set(content_hash.to_owned()),
        accepted_count: Set(accepted),
        channel: Set(channel.as_str().to_owned()),
        received_at: Set(received_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(SubmissionReceipt {
        submission_id: id,
        kind,
        accepted,
        content_hash: content_hash.to_owned(),
        on_time: open.as_ref().map(|c| received_at <= deadline_end(c.deadline)),
        campaign_id: open.as_ref().map(|c| c.id.clone()),
        campaign_name: open.map(|c| c.name),
        received_at,
    })
}

/// A campaign: a kind of data expected from institutions by a deadline.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub data_kind: DataKind,
    pub opens_on: NaiveDate,
    /// Submissions received by the end of this day (Paris time) count as on time.
    pub deadline: NaiveDate,
    /// After this day, submissions of its kind no longer count for it.
    pub closes_on: Option<NaiveDate>,
}

impl TryFrom<campaign::Model> for Campaign {
    type Error = ApiError;

    fn try_from(row: campaign::Model) -> Result<Self, ApiError> {
        Ok(Campaign {
            data_kind: DataKind::from_stored(&row.data_kind)
                .ok_or_else(|| ApiError::Internal(format!("stored data kind « {} »", row.data_kind).into()))?,
            id: row.id,
            name: row.name,
            opens_on: row.opens_on,
            deadline: row.deadline,
            closes_on: row.closes_on,
        })
    }
}

#[derive(InputObject, Serialize)]
pub struct CampaignInput {
    /// "Programmation 2024-2030", "Prévision d'installation 2025".
    pub name: String,
    pub data_kind: DataKind,
    pub opens_on: NaiveDate,
    pub deadline: NaiveDate,
    pub closes_on: Option<NaiveDate>,
}

/// Where an expected institution stands in a campaign.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmissionStanding {
    /// Submitted by the deadline.
    OnTime,
    /// Submitted, but only after the deadline.
    Late,
    /// Nothing submitted for the campaign.
    Missing,
}

#[derive(SimpleObject)]
pub struct CampaignSubmissionStatus {
    pub institution_code: String,
    pub institution_name: String,
    pub standing: SubmissionStanding,
    pub submissions: i64,
    pub first_submission_at: Option<DateTime<FixedOffset>>,
    pub last_submission_at: Option<DateTime<FixedOffset>>,
    pub last_submission_id: Option<String>,
}

fn region_of(institution: &institution::Model, catalog: &Catalog) -> Vec<String> {
    InstitutionKind::from_stored(&institution.kind)
        .and_then(|kind| Scope::of_institution(kind, institution.territory_code.as_deref(), catalog))
        .map(|scope| scope.region_codes)
        .unwrap_or_default()
}

/// The institutions a principal may see in a campaign's status: all, those of its region, or itself.
fn visible_institutions<'a>(
    principal: &Principal,
    reach: Reach,
    expected: InstitutionKind,
    catalog: &'a Catalog,
) -> Vec<&'a institution::Model> {
    catalog
        .institutions
        .iter()
        .filter(|i| i.kind == expected.as_str())
        .filter(|i| match reach {
            Reach::Everything => true,
            _ if principal.role == crate::auth::principal::Role::Ars => {
                region_of(i, catalog).iter().any(|r| principal.scope.region_codes.contains(r))
            }
            _ => i.code == principal.institution.code,
        })
        .collect()
}

pub async fn campaign_status(
    db: &DatabaseConnection,
    catalog: &Catalog,
    principal: &Principal,
    reach: Reach,
    campaign: &campaign::Model,
) -> Result<Vec<CampaignSubmissionStatus>, ApiError> {
    let kind =
        DataKind::from_stored(&campaign.data_kind).ok_or_else(|| ApiError::Internal("stored data kind".into()))?;
    let institutions = visible_institutions(principal, reach, kind.expected_from(), catalog);
    let codes: Vec<String> = institutions.iter().map(|i| i.code.clone()).collect();
    let submissions = submission::Entity::find()
        .filter(submission::Column::CampaignId.eq(campaign.id.clone()))
        .filter(submission::Column::InstitutionCode.is_in(codes))
        .order_by_asc(submission::Column::ReceivedAt)
        .all(db)
        .await?;
    let mut by_institution: BTreeMap<&str, Vec<&submission::Model>> = BTreeMap::new();
    for s in &submissions {
        by_institution.entry(s.institution_code.as_str()).or_default().push(s);
    }
    let deadline = deadline_end(campaign.deadline);
    Ok(institutions
        .into_iter()
        .map(|institution| {
            let list = by_institution.get(institution.code.as_str()).cloned().unwrap_or_default();
            let standing = match list.first() {
                None => SubmissionStanding::Missing,
                Some(first) if first.received_at <= deadline => SubmissionStanding::OnTime,
                Some(_) => SubmissionStanding::Late,
            };
            CampaignSubmissionStatus {
                institution_code: institution.code.clone(),
                institution_name: institution.name.clone(),
                standing,
                submissions: list.len() as i64,
                first_submission_at: list.first().map(|s| s.received_at),
                last_submission_at: list.last().map(|s| s.received_at),
                last_submission_id: list.last().map(|s| s.id.clone()),
            }
        })
        .collect())
}

#[derive(Default)]
pub struct ExchangeQuery;

#[Object]
impl ExchangeQuery {
    /// The CNSA's campaigns, newest first.
    async fn campaigns(&self, ctx: &Context<'_>, data_kind: Option<DataKind>) -> ApiResult<Vec<Campaign>> {
        policy::require(policy::principal(ctx)?, Resource::Campaign, Action::Read)?;
        let mut query = campaign::Entity::find();
        if let Some(kind) = data_kind {
            query = query.filter(campaign::Column::DataKind.eq(kind.as_str()));
        }
        let rows = query.order_by_desc(campaign::Column::OpensOn).all(db(ctx)?).await.map_err(ApiError::from)?;
        rows.into_iter().map(Campaign::try_from).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Per expected institution, its submissions for a campaign and whether they came on time, late or not at all.
    /// The CNSA sees every institution, an ARS those of its region, any other institution itself.
    async fn campaign_status(
        &self,
        ctx: &Context<'_>,
        campaign_id: async_graphql::ID,
    ) -> ApiResult<Vec<CampaignSubmissionStatus>> {
        let principal = policy::principal(ctx)?;
        let reach = policy::require(principal, Resource::Campaign, Action::Read)?;
        let db = db(ctx)?;
        let campaign = campaign::Entity::find_by_id(campaign_id.to_string())
            .one(db)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("aucune campagne « {} »", campaign_id.as_str())))?;
        Ok(campaign_status(db, catalog(ctx)?, principal, reach, &campaign).await?)
    }
}

#[derive(Default)]
pub struct ExchangeMutation;

#[Object]
impl ExchangeMutation {
    /// Submits a spreadsheet (multipart upload): CSV (`;`, decimal comma, UTF-8 or Windows-1252) or XLSX, with the
    /// columns of the matching export. Same validation, idempotency and audit as the GraphQL writes; all-or-nothing,
    /// every problem reported with its spreadsheet line.
    async fn import_file(
        &self,
        ctx: &Context<'_>,
        kind: DataKind,
        file: async_graphql::Upload,
        idempotency_key: Option<String>,
    ) -> ApiResult<import::ImportReport> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::FileImport, Action::Write)?;
        let mut upload = file.value(ctx).map_err(|e| ApiError::BadUserInput(format!("fichier illisible : {e}")))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut upload.content, &mut bytes)
            .map_err(|e| ApiError::BadUserInput(format!("fichier illisible : {e}")))?;
        Ok(import::import_file(
            db(ctx)?,
            crate::reconciliation::reconciled(ctx)?,
            catalog(ctx)?,
            principal,
            kind,
            &bytes,
            idempotency_key,
            Channel::File,
        )
        .await?)
    }

    /// Declares a campaign (CNSA). Submissions of its kind received while it is open count for it.
    async fn declare_campaign(
        &self,
        ctx: &Context<'_>,
        input: CampaignInput,
        idempotency_key: Option<String>,
    ) -> ApiResult<Campaign> {
        let principal = policy::principal(ctx)?;
        policy::require(principal, Resource::Campaign, Action::Write)?;
        let mut v = Violations::new();
        v.text("input.name", &input.name, 1, 200);
        v.check(
            input.opens_on <= input.deadline,
            "input.deadline",
            "DEADLINE_BEFORE_OPENING",
            "l'échéance précède l'ouverture",
        );
        if let Some(closes_on) = input.closes_on {
            v.check(
                closes_on >= input.deadline,
                "input.closesOn",
                "CLOSING_BEFORE_DEADLINE",
                "la clôture précède l'échéance",
            );
        }
        v.into_result()?;
        let db = db(ctx)?;
        let mut write = match Write::begin(db, Actor::of(principal), "declareCampaign", idempotency_key, &input).await?
        {
            Begun::Replayed(answer) => return Ok(answer),
            Begun::Fresh(write) => write,
        };
        let id = uuid::Uuid::now_v7().to_string();
        campaign::Entity::insert(campaign::ActiveModel {
            id: Set(id.clone()),
            name: Set(input.name.trim().to_owned()),
            data_kind: Set(input.data_kind.as_str().to_owned()),
            opens_on: Set(input.opens_on),
            deadline: Set(input.deadline),
            closes_on: Set(input.closes_on),
            created_at: Set(audit::now_micros()),
            created_by: Set(write.actor.label()),
        })
        .exec_without_returning(&write.txn)
        .await
        .map_err(ApiError::from)?;
        let answer = Campaign {
            id: id.clone(),
            name: input.name.trim().to_owned(),
            data_kind: input.data_kind,
            opens_on: input.opens_on,
            deadline: input.deadline,
            closes_on: input.closes_on,
        };
        write.audit(vec![id], content_hash(&input));
        // Every region now expects submissions for it.
        let reconciled = crate::reconciliation::reconciled(ctx)?;
        for region in &catalog(ctx)?.regions {
            write.stales_region(reconciled, &region.code);
        }
        write.commit(&answer).await?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_end_at_midnight_in_paris() {
        // 31 May 2024 (summer time): 23:59:59+02:00 = 21:59:59 UTC.
        let may = deadline_end(NaiveDate::from_ymd_opt(2024, 5, 31).unwrap());
        assert_eq!(may.to_rfc3339(), "2024-05-31T21:59:59+00:00");
        // 31 January (winter time): 22:59:59 UTC.
        let january = deadline_end(NaiveDate::from_ymd_opt(2025, 1, 31).unwrap());
        assert_eq!(january.to_rfc3339(), "2025-01-31T22:59:59+00:00");
        // The switch days themselves: 31 March 2024 was summer by its end, 27 October 2024 winter.
        assert_eq!(paris_offset_at_end_of(NaiveDate::from_ymd_opt(2024, 3, 31).unwrap()).local_minus_utc(), 7200);
        assert_eq!(paris_offset_at_end_of(NaiveDate::from_ymd_opt(2024, 3, 30).unwrap()).local_minus_utc(), 3600);
        assert_eq!(paris_offset_at_end_of(NaiveDate::from_ymd_opt(2024, 10, 27).unwrap()).local_minus_utc(), 3600);
        assert_eq!(paris_offset_at_end_of(NaiveDate::from_ymd_opt(2024, 10, 26).unwrap()).local_minus_utc(), 7200);
    }
}
