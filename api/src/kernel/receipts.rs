//! Submission receipts: every accepted submission is recorded, in the write's transaction, with its content hash,
//! its channel and the open campaign of its kind it counts for.

use async_graphql::SimpleObject;
use chrono::{DateTime, FixedOffset};
use entities::{campaign, submission};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};

use super::audit_log as audit;
use super::outbox::{EventKind, OutboundEvent};
use super::write::Write;
use crate::calendar::deadline_end;
use crate::error::ApiError;
use crate::vocabulary::DataKind;

/// How a submission reached the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Channel {
    Graphql,
    File,
    Cli,
    /// Fetched by the hub from a registered source, with the moment its data was true there.
    Pull {
        source_id: String,
        as_of: DateTime<FixedOffset>,
    },
}

impl Channel {
    fn as_str(&self) -> &'static str {
        match self {
            Channel::Graphql => "GRAPHQL",
            Channel::File => "FILE",
            Channel::Cli => "CLI",
            Channel::Pull { .. } => "PULL",
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
    /// The pull source the data was fetched from, when the hub fetched it.
    #[serde(default)]
    pub source_id: Option<String>,
    /// When the data was true at its source (pulled data: as the source says, or when it was fetched).
    #[serde(default)]
    pub as_of: Option<DateTime<FixedOffset>>,
}

impl SubmissionReceipt {
    /// The first submission's receipt, given again to a replay of it.
    pub fn as_replay(mut self) -> Self {
        self.replayed = true;
        self
    }
}

/// Records an accepted submission in the write's transaction, counted for the open campaign of its kind; its
/// receipt is announced to webhook subscribers with the write's other events, at its commit.
pub async fn record_submission(
    write: &mut Write,
    kind: DataKind,
    content_hash: &str,
    accepted: i64,
    channel: Channel,
) -> Result<SubmissionReceipt, ApiError> {
    let (conn, actor) = (&write.txn, &write.actor);
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
    let (source_id, as_of) = match &channel {
        Channel::Pull { source_id, as_of } => (Some(source_id.clone()), Some(*as_of)),
        _ => (None, None),
    };
    let insert = submission::Entity::insert(submission::ActiveModel {
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
        source_id: Set(source_id.clone()),
        as_of: Set(as_of),
    });
    // Nothing reads the receipt back before the commit.
    write.defer_insert(insert).await?;
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
        source_id,
        as_of,
    };
    let event = OutboundEvent {
        kind: EventKind::SubmissionReceipt,
        key: format!("receipt:{}", receipt.submission_id),
        region: None,
        departement: None,
        institution: Some(write.actor.institution_code.clone()),
        occurred_at: received_at.to_utc(),
        data: serde_json::to_value(&receipt).unwrap_or_default(),
    };
    write.announce(event);
    Ok(receipt)
}

/// Where a stored row came from: the submission that brought it, by which channel, and for pulled data its source
/// and the moment its data was true there.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub submission_id: String,
    pub institution_code: String,
    /// GRAPHQL, FILE, CLI or PULL.
    pub channel: String,
    pub received_at: DateTime<FixedOffset>,
    /// The pull source (channel PULL).
    pub source_id: Option<String>,
    /// When the data was true at its source; for pushed data, when it was received.
    pub as_of: DateTime<FixedOffset>,
}

impl From<submission::Model> for Provenance {
    fn from(row: submission::Model) -> Self {
        Provenance {
            as_of: row.as_of.unwrap_or(row.received_at),
            submission_id: row.id,
            institution_code: row.institution_code,
            channel: row.channel,
            received_at: row.received_at,
            source_id: row.source_id,
        }
    }
}

/// Loads the provenance of many rows in one query (registered on the schema, batched per request).
pub struct ProvenanceLoader {
    pub db: sea_orm::DatabaseConnection,
}

impl async_graphql::dataloader::Loader<String> for ProvenanceLoader {
    type Value = Provenance;
    type Error = std::sync::Arc<sea_orm::DbErr>;

    async fn load(&self, keys: &[String]) -> Result<std::collections::HashMap<String, Provenance>, Self::Error> {
        let rows = submission::Entity::find()
            .filter(submission::Column::Id.is_in(keys.iter().cloned()))
            .all(&self.db)
            .await
            .map_err(std::sync::Arc::new)?;
        Ok(rows.into_iter().map(|row| (row.id.clone(), Provenance::from(row))).collect())
    }
}

/// The provenance of a row stored by `submission_id`, batched with the other rows of the answer.
pub async fn provenance_of(
    ctx: &async_graphql::Context<'_>,
    submission_id: &str,
) -> async_graphql::Result<Option<Provenance>> {
    let loader = ctx.data::<async_graphql::dataloader::DataLoader<ProvenanceLoader>>()?;
    loader.load_one(submission_id.to_owned()).await.map_err(|err| ApiError::Internal(Box::new(err)).into())
}
