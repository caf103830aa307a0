//! The access list: institutions (with their suspension) and revoked token ids, held in memory so that
//! authenticating a request runs no SQL, and kept current:
//! - on this instance, by the operator's mutations once they commit;
//! - on the others, through PostgreSQL `LISTEN/NOTIFY` on [`CHANNEL`] (the notification leaves with the commit), with
//!   a full reload whenever the listening connection is (re)established, so a missed notification cannot leave an
//!   instance stale;
//! - and by a full reload every [`FULL_RELOAD`], for edits made straight in the database.
//!
//! Every change bumps a version that open WebSocket connections watch, so a revoked, suspended or expired principal
//! loses its subscriptions at once (see `graphql::http`).
//!
//! It also remembers which token ids it has accepted (`seen_token`, written by a background task, never by the
//! request itself), so that revoking an id the hub never saw says so.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entities::{institution, revoked_token, seen_token};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Statement,
};
use tokio::sync::{mpsc, watch};

use super::authenticator::AuthError;
use super::principal::Principal;

/// The PostgreSQL channel on which instances tell each other of revocations and suspensions.
pub const CHANNEL: &str = "cnh_access";

/// How often the whole list is read again regardless of notifications.
pub const FULL_RELOAD: Duration = Duration::from_secs(60);

/// Token ids remembered in memory as already recorded; beyond, the set starts afresh (the table keeps them).
const SEEN_MEMORY: usize = 100_000;

#[derive(Default)]
struct Lists {
    institutions: HashMap<String, institution::Model>,
    /// SIRET → institution code.
    by_siret: HashMap<String, String>,
    revoked: HashSet<String>,
}

impl Lists {
    fn put_institution(&mut self, row: institution::Model) {
        self.by_siret.retain(|_, code| *code != row.code);
        if let Some(siret) = row.siret.clone().filter(|s| !s.is_empty()) {
            self.by_siret.insert(siret, row.code.clone());
        }
        self.institutions.insert(row.code.clone(), row);
    }
}

/// A token id accepted for the first time, to record.
struct Seen {
    token_id: String,
    issuer: String,
    institution: String,
    agent: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
}

pub struct AccessList {
    db: DatabaseConnection,
    lists: RwLock<Lists>,
    version: watch::Sender<u64>,
    seen: Mutex<HashSet<String>>,
    to_record: mpsc::UnboundedSender<Seen>,
    to_record_rx: Mutex<Option<mpsc::UnboundedReceiver<Seen>>>,
}

async fn read_all(db: &DatabaseConnection) -> Result<Lists, DbErr> {
    let mut lists = Lists::default();
    for row in institution::Entity::find().all(db).await? {
        lists.put_institution(row);
    }
    lists.revoked = revoked_token::Entity::find().all(db).await?.into_iter().map(|r| r.token_id).collect();
    Ok(lists)
}

impl AccessList {
    /// Reads the whole list once.
    pub async fn load(db: DatabaseConnection) -> Result<Arc<AccessList>, DbErr> {
        let lists = read_all(&db).await?;
        let (to_record, rx) = mpsc::unbounded_channel();
        Ok(Arc::new(AccessList {
            db,
            lists: RwLock::new(lists),
            version: watch::channel(0).0,
            seen: Mutex::new(HashSet::new()),
            to_record,
            to_record_rx: Mutex::new(Some(rx)),
        }))
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Bumped on every change of the list.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn institution(&self, code: &str) -> Option<institution::Model> {
        self.lists.read().unwrap_or_else(|e| e.into_inner()).institutions.get(code).cloned()
    }

    pub fn institution_by_siret(&self, siret: &str) -> Option<institution::Model> {
        let lists = self.lists.read().unwrap_or_else(|e| e.into_inner());
        lists.by_siret.get(siret).and_then(|code| lists.institutions.get(code)).cloned()
    }

    pub fn is_revoked(&self, token_id: &str) -> bool {
        self.lists.read().unwrap_or_else(|e| e.into_inner()).revoked.contains(token_id)
    }

    /// Whether a principal established earlier may still act: its token has not expired or been revoked, its
    /// institution is not suspended.
    pub fn check(&self, principal: &Principal, now: DateTime<Utc>) -> Result<(), AuthError> {
        if principal.expires_at.is_some_and(|exp| exp <= now) {
            return Err(AuthError::Expired);
        }
        if let Some(jti) = &principal.token_id
            && self.is_revoked(jti)
        {
            return Err(AuthError::Revoked);
        }
        match self.institution(&principal.institution.code) {
            None => Err(AuthError::UnknownInstitution),
            Some(row) if row.suspended => Err(AuthError::Suspended),
            Some(_) => Ok(()),
        }
    }

    /// A revocation committed on this instance.
    pub fn revoked(&self, token_id: &str) {
        // The version moves while the lists are held, so a reload under way sees the change (`reload_all`).
        let mut lists = self.lists.write().unwrap_or_else(|e| e.into_inner());
        lists.revoked.insert(token_id.to_owned());
        self.changed();
    }

    /// An institution changed (suspended, reinstated) on this instance.
    pub fn institution_changed(&self, row: institution::Model) {
        let mut lists = self.lists.write().unwrap_or_else(|e| e.into_inner());
        lists.put_institution(row);
        self.changed();
    }

    /// Tells the other instances, in the write's transaction (sent only if it commits). `what` is
    /// `revoked:<jti>` or `institution:<code>`.
    pub async fn notify_in<C: ConnectionTrait>(txn: &C, what: &str) -> Result<(), DbErr> {
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), what.into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// Reads the whole list again. A change applied while the read was under way (a commit on this instance, a
    /// notification) may be missing from what was read: the read is then done again, so a reload never undoes a
    /// newer change; revocations, which are never lifted, are kept whatever happens.
    async fn reload_all(&self) -> Result<(), DbErr> {
        for _ in 0..3 {
            let before = *self.version.borrow();
            let mut lists = read_all(&self.db).await?;
            let mut held = self.lists.write().unwrap_or_else(|e| e.into_inner());
            lists.revoked.extend(held.revoked.iter().cloned());
            if *self.version.borrow() == before {
                *held = lists;
                self.changed();
                return Ok(());
            }
            // Keep at least the revocations read; try again for the rest.
            held.revoked = lists.revoked;
        }
        Ok(())
    }

    async fn on_notification(&self, payload: &str) -> Result<(), DbErr> {
        match payload.split_once(':') {
            Some(("revoked", jti)) => {
                self.revoked(jti);
                Ok(())
            }
            Some(("institution", code)) => {
                match institution::Entity::find_by_id(code.to_owned()).one(&self.db).await? {
                    Some(row) => self.institution_changed(row),
                    None => {
                        let mut lists = self.lists.write().unwrap_or_else(|e| e.into_inner());
                        lists.institutions.remove(code);
                        self.changed();
                    }
                }
                Ok(())
            }
            _ => self.reload_all().await,
        }
    }

    /// Notes a token id accepted by a request; the first time, it is queued for the `seen_token` table.
    pub fn saw(&self, principal: &Principal) {
        let Some(jti) = &principal.token_id else { return };
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.contains(jti) {
                return;
            }
            if seen.len() >= SEEN_MEMORY {
                seen.clear();
            }
            seen.insert(jti.clone());
        }
        let _ = self.to_record.send(Seen {
            token_id: jti.clone(),
            issuer: principal.issuer.clone(),
            institution: principal.institution.code.clone(),
            agent: principal.agent_id.clone(),
            expires_at: principal.expires_at,
            at: Utc::now(),
        });
    }

    /// Whether a token id was ever accepted (by any instance, or by this one and not yet written).
    pub async fn was_seen<C: ConnectionTrait>(&self, conn: &C, token_id: &str) -> Result<bool, DbErr> {
        if self.seen.lock().unwrap_or_else(|e| e.into_inner()).contains(token_id) {
            return Ok(true);
        }
        Ok(seen_token::Entity::find().filter(seen_token::Column::TokenId.eq(token_id)).one(conn).await?.is_some())
    }

    /// Starts the background work: recording seen token ids, the periodic reload and, on PostgreSQL, listening.
    pub fn spawn(self: &Arc<Self>) {
        if let Some(mut rx) = self.to_record_rx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let db = self.db.clone();
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < 500
                        && let Ok(more) = rx.try_recv()
                    {
                        batch.push(more);
                    }
                    let rows = batch.into_iter().map(|s| seen_token::ActiveModel {
                        token_id: Set(s.token_id),
                        issuer: Set(s.issuer),
                        institution_code: Set(s.institution),
                        agent_id: Set(s.agent),
                        expires_at: Set(s.expires_at.map(|t| t.fixed_offset())),
                        first_seen_at: Set(s.at.fixed_offset()),
                    });
                    let insert = seen_token::Entity::insert_many(rows)
                        .on_conflict(OnConflict::column(seen_token::Column::TokenId).do_nothing().to_owned())
                        .exec_without_returning(&db)
                        .await;
                    if let Err(err) = insert {
                        tracing::warn!(error = %err, "could not record seen token ids");
                    }
                }
            });
        }
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FULL_RELOAD);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(this) = this.upgrade() else { return };
                if let Err(err) = this.reload_all().await {
                    tracing::warn!(error = %err, "periodic reload of the access list failed");
                }
            }
        });
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            return;
        }
        let this = Arc::downgrade(self);
        let pool = self.db.get_postgres_connection_pool().clone();
        tokio::spawn(async move {
            loop {
                let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(listener) => listener,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot listen for revocations and suspensions; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(err) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %err, "LISTEN on the access channel failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                // Whatever happened while not listening is read afresh.
                match this.upgrade() {
                    Some(this) => {
                        if let Err(err) = this.reload_all().await {
                            tracing::warn!(error = %err, "reloading the access list failed");
                        }
                    }
                    None => return,
                }
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            let Some(this) = this.upgrade() else { return };
                            if let Err(err) = this.on_notification(notification.payload()).await {
                                tracing::warn!(error = %err, "applying an access notification failed");
                            }
                        }
                        Ok(None) => {
                            let Some(this) = this.upgrade() else { return };
                            if let Err(err) = this.reload_all().await {
                                tracing::warn!(error = %err, "reloading the access list failed");
                            }
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "access listener stopped; reconnecting");
                            break;
                        }
                    }
                }
            }
        });
    }
}
