//! Submission receipts: every accepted submission is recorded, in the write's transaction, with its content hash,
//! its channel and the open campaign of its kind it counts for.

use async_graphql::SimpleObject;
use chrono::{DateTime, FixedOffset};
use entities::{campaign, submission};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};

use super::audit_log::{self as audit, Actor};
use super::outbox::{self, EventKind, OutboundEvent};
use crate::calendar::deadline_end;
use crate::error::ApiError;
use crate::vocabulary::DataKind;

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
    /// True when this answer repeats an earlier submission with the same idempotency key and content: nothing was
    /// written this time, and the receipt is the first one's.
    #[serde(default)]
    pub replayed: bool,
}

impl SubmissionReceipt {
    /// The first submission's receipt, given again to a replay of it.
    pub fn as_replay(mut self) -> Self {
        self.replayed = true;
        self
    }
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
    let receipt = SubmissionReceipt {
        submission_id: id,
        kind,
        accepted,
        content_hash: content_hash.to_owned(),
        on_time: open.as_ref().map(|c| received_at <= deadline_end(c.deadline)),
        campaign_id: open.as_ref().map(|c| c.id.clone()),
        campaign_name: open.map(|c| c.name),
        received_at,
        replayed: false,
    };
    let event = OutboundEvent {
        kind: EventKind::SubmissionReceipt,
        key: format!("receipt:{}", receipt.submission_id),
        region: None,
        departement: None,
        institution: Some(actor.institution_code.clone()),
        occurred_at: received_at.to_utc(),
        data: serde_json::to_value(&receipt).unwrap_or_default(),
    };
    outbox::enqueue(conn, &[event]).await?;
    Ok(receipt)
}
