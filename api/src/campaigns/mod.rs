//! Campaigns: the CNSA declares what each kind of institution must submit, and by when (Paris calendar days); who
//! has submitted, late or not at all.

pub mod deadlines;

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::calendar::deadline_end;
use entities::{campaign, institution, submission};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};

use crate::access::policy::{self, Action, Reach, Resource};
use crate::access::principal::{Principal, Scope};
use crate::context::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::audit_log::{self as audit, Actor};
use crate::kernel::write::{Begun, Write, content_hash};
use crate::territory::service::Catalog;
use crate::territory::service::catalog;
use crate::validation::Violations;
use crate::vocabulary::{DataKind, InstitutionKind};

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
            _ if principal.role == crate::access::principal::Role::Ars => {
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
pub struct CampaignQuery;

#[Object]
impl CampaignQuery {
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
pub struct CampaignMutation;

#[Object]
impl CampaignMutation {
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
        let reconciled = crate::reconciled::reconciled(ctx)?;
        for region in &catalog(ctx)?.regions {
            write.stales_region(reconciled, &region.code);
        }
        write.commit(&answer).await?;
        deadlines::CAMPAIGN_DECLARED.notify_waiters();
        Ok(answer)
    }
}
