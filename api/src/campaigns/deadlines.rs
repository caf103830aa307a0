//! The campaign clock: tells webhook subscribers which expected institutions have not submitted as a deadline
//! approaches (within [`DEADLINE_WARNING_DAYS`] days) and once it has passed. Each (campaign, institution, stage)
//! is one event key, so every instance may look and each subscriber still hears of it once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use entities::{campaign, submission};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;
use tokio::sync::Notify;

use super::region_of;
use crate::error::ApiError;
use crate::kernel::outbox::{self, BackgroundTask, EventKind, OutboundEvent};
use crate::kernel::write::begin_transaction;
use crate::territory::service::Catalog;
use crate::vocabulary::DataKind;

/// How many days before its deadline a campaign's missing submissions are announced.
pub const DEADLINE_WARNING_DAYS: i64 = 7;
/// How long after its deadline a campaign's missing submissions are still announced to new subscribers.
pub const MISSED_ANNOUNCED_DAYS: i64 = 30;
/// How often the clock looks, besides when a campaign is declared.
pub const PERIOD: Duration = Duration::from_secs(300);

/// Woken when a campaign is declared, so that a deadline already near is announced at once.
pub static CAMPAIGN_DECLARED: Notify = Notify::const_new();

/// The stage of a campaign on `today`: approaching, missed, or neither.
pub fn stage(deadline: NaiveDate, today: NaiveDate) -> Option<EventKind> {
    let days_left = (deadline - today).num_days();
    if (0..=DEADLINE_WARNING_DAYS).contains(&days_left) {
        Some(EventKind::CampaignDeadlineApproaching)
    } else if (-MISSED_ANNOUNCED_DAYS..0).contains(&days_left) {
        Some(EventKind::CampaignDeadlineMissed)
    } else {
        None
    }
}

/// One look: queues, for every campaign in a stage, an event per expected institution without a submission for
/// it. Returns how many deliveries were queued.
pub async fn scan(db: &DatabaseConnection, catalog: &Catalog, today: NaiveDate) -> Result<u64, ApiError> {
    let earliest = today - chrono::Days::new(MISSED_ANNOUNCED_DAYS as u64);
    let latest = today + chrono::Days::new(DEADLINE_WARNING_DAYS as u64);
    let campaigns = campaign::Entity::find()
        .filter(campaign::Column::Deadline.between(earliest, latest))
        .filter(campaign::Column::OpensOn.lte(today))
        .all(db)
        .await?;
    let mut events = Vec::new();
    for campaign in campaigns {
        let Some(kind) = stage(campaign.deadline, today) else { continue };
        let Some(data_kind) = DataKind::from_stored(&campaign.data_kind) else { continue };
        let submitted: HashSet<String> = submission::Entity::find()
            .select_only()
            .column(submission::Column::InstitutionCode)
            .filter(submission::Column::CampaignId.eq(campaign.id.clone()))
            .into_tuple::<String>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        let stage_name = if kind == EventKind::CampaignDeadlineApproaching { "approaching" } else { "missed" };
        for institution in catalog.institutions.iter().filter(|i| i.kind == data_kind.expected_from().as_str()) {
            if submitted.contains(&institution.code) {
                continue;
            }
            events.push(OutboundEvent {
                kind,
                key: format!("campaign:{}:{stage_name}:{}", campaign.id, institution.code),
                region: region_of(institution, catalog).into_iter().next(),
                departement: None,
                institution: Some(institution.code.clone()),
                occurred_at: Utc::now(),
                data: json!({
                    "campaignId": campaign.id,
                    "campaignName": campaign.name,
                    "dataKind": data_kind.as_str(),
                    "deadline": campaign.deadline,
                    "daysLeft": (campaign.deadline - today).num_days(),
                    "institutionCode": institution.code,
                    "institutionName": institution.name,
                }),
            });
        }
    }
    if events.is_empty() {
        return Ok(0);
    }
    let txn = begin_transaction(db).await?;
    let queued = outbox::enqueue(&txn, &events).await?;
    txn.commit().await?;
    outbox::wake_dispatcher_if_queued();
    Ok(queued)
}

/// Looks at start, every [`PERIOD`], and when a campaign is declared.
pub fn spawn_watch(db: DatabaseConnection, catalog: Arc<Catalog>) -> BackgroundTask {
    BackgroundTask::new(tokio::spawn(async move {
        loop {
            // Listening before the scan: a campaign declared while it runs wakes the next one. Every hub of the
            // process is woken (`notify_waiters`): the tests run several beside each other, and one hub taking the
            // wake-up meant for another left a declared campaign unannounced until the next period.
            let declared = CAMPAIGN_DECLARED.notified();
            tokio::pin!(declared);
            declared.as_mut().enable();
            match scan(&db, &catalog, crate::calendar::paris_day(Utc::now())).await {
                Ok(0) => {}
                Ok(queued) => tracing::info!(queued, "campaign deadlines announced to webhook subscribers"),
                Err(err) => tracing::warn!(error = %err, "campaign deadlines not looked at; trying again later"),
            }
            tokio::select! {
                () = declared => {}
                () = tokio::time::sleep(PERIOD) => {}
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_approaching_for_a_week_then_missed_for_a_month() {
        let deadline = NaiveDate::from_ymd_opt(2027, 6, 30).unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2027, m, d).unwrap();
        assert_eq!(stage(deadline, day(6, 22)), None);
        assert_eq!(stage(deadline, day(6, 23)), Some(EventKind::CampaignDeadlineApproaching));
        assert_eq!(stage(deadline, day(6, 30)), Some(EventKind::CampaignDeadlineApproaching));
        assert_eq!(stage(deadline, day(7, 1)), Some(EventKind::CampaignDeadlineMissed));
        assert_eq!(stage(deadline, day(7, 30)), Some(EventKind::CampaignDeadlineMissed));
        assert_eq!(stage(deadline, day(7, 31)), None);
    }
}
