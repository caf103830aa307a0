//! The application as a value: built from a configuration (database ready, reference data loaded, port bound), then
//! run. Tests build it on port 0 and talk to it over real HTTP.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::access::authenticator::Authenticator;
use crate::access::issuers::{self, IssuerConfigError};
use crate::access::list::AccessList;
use crate::config::{Config, Profile};
use crate::db::{self, DbSetupError};
use crate::graphql::{self, http};
use crate::kernel::receipts::ProvenanceLoader;
use crate::territory::service::{Catalog, EnvelopeLoader};
use crate::{reconciled::live::Reconciled, reconciliation::MaskingThreshold};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("cannot read the reference data back from the database: {0}")]
    Catalog(String),
    #[error(transparent)]
    Issuers(#[from] IssuerConfigError),
    #[error("cannot read the institutions and revoked tokens: {0}")]
    Access(String),
    #[error(
        "the production profile stores credentials sealed: set CNH_SECRETS_KEY (64 hexadecimal digits, e.g. `openssl rand -hex 32`)"
    )]
    NoSecretsKey,
    #[error("cannot seal the credentials stored in clear: {0}")]
    Sealing(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    db: DatabaseConnection,
    addr: SocketAddr,
    statements: Arc<std::sync::atomic::AtomicU64>,
    reconciled: Arc<Reconciled>,
    lifecycle: http::Lifecycle,
    grace: std::time::Duration,
    /// The webhook dispatcher, the campaign clock, the puller and the retention sweeper run as long as the application.
    _background: [crate::kernel::outbox::BackgroundTask; 4],
}

impl App {
    pub async fn build(config: Config) -> Result<App, StartupError> {
        crate::access::install_crypto();
        let production = config.profile == Profile::Production;
        let mut trusted = match &config.issuers_file {
            Some(path) => issuers::load_issuers_file(path, production)?,
            None => Vec::new(),
        };
        if let Some(secret) = &config.dev_jwt_secret {
            trusted.push(issuers::dev_issuer(secret.expose(), production)?);
        }
        if trusted.is_empty() {
            tracing::warn!(
                "no trusted token issuer configured (CNH_ISSUERS_FILE, CNH_DEV_JWT_SECRET): every call but the probes will be refused"
            );
        }
        let secrets = Arc::new(match (&config.secrets_key, &config.secrets_previous_key) {
            (Some(key), previous) => {
                let sealing =
                    crate::secrets::SecretBox::from_hex(key.expose()).map_err(|_| StartupError::NoSecretsKey)?;
                match previous {
                    Some(previous) => {
                        sealing.with_previous_hex(previous.expose()).map_err(|_| StartupError::NoSecretsKey)?
                    }
                    None => sealing,
                }
            }
            (None, _) if production => return Err(StartupError::NoSecretsKey),
            (None, _) => crate::secrets::SecretBox::without_key(),
        });
        let lifecycle = http::Lifecycle::default();
        let mut db = db::connect(&config.database_url).await?;
        let store = Arc::new(db::StoreHealth::default());
        store.spawn_watch(&config.database_url);
        let statements = db::count_statements(&mut db);
        let mut writes = graphql::write_lane::WriteLane::start(&config.database_url).await?;
        db::count_statements_into(writes.db_mut(), statements.clone());
        let report = db::prepare(&db, &config.database_url).await?;
        tracing::info!(?report, "database ready, reference data loaded");
        if secrets.has_key() {
            // Credentials stored before a key was set (or by a hub without one) are sealed now.
            let sealed = crate::exchange::seal_stored_secrets(&db, &secrets)
                .await
                .map_err(|e| StartupError::Sealing(e.to_string()))?
                + crate::pulls::seal_stored_credentials(&db, &secrets)
                    .await
                    .map_err(|e| StartupError::Sealing(e.to_string()))?;
            if sealed > 0 {
                tracing::info!(
                    sealed,
                    "credentials stored in clear or under the previous key sealed with CNH_SECRETS_KEY"
                );
            }
        }
        // Background work (the webhook dispatcher, the campaign clock, the puller) on a small pool of its own: it
        // never takes a connection a request needs, and requests' statements stay countable apart.
        let background_db = db::connect_pool(&config.database_url, Some(4)).await?;
        let catalog: Arc<Catalog> = Catalog::load(&db).await.map_err(|e| StartupError::Catalog(e.to_string()))?;
        let access = AccessList::load(db.clone()).await.map_err(|e| StartupError::Access(e.to_string()))?;
        access.spawn();
        let reconciled = Reconciled::new(db.clone(), catalog.clone());
        if let Some(barrier) = writes.barrier() {
            reconciled.commit_writes_asynchronously(barrier);
        }
        reconciled.spawn_listener();
        // Every region loaded in the background once serving: the first write of a region then patches its state
        // instead of loading the whole region under the region's lock, and the first dashboard waits for nothing.
        let warming = reconciled.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match warming.all_regions().await {
                Ok(states) => tracing::info!(
                    regions = states.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "reconciled state loaded"
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "loading the reconciled state ahead of use failed; regions load on first use")
                }
            }
        });
        let http_reconciled = reconciled.clone();
        let reconciled_handle = reconciled.clone();
        let escalation_events = crate::steering::EscalationEvents::default();
        let outbound = Arc::new(config.outbound.clone());
        // Two builds over the same data (see graphql::executor): guarded, and plain for admitted queries.
        let with_data = |builder: async_graphql::SchemaBuilder<_, _, _>| {
            builder
                .data(db.clone())
                .data(catalog.clone())
                .data(access.clone())
                .data(reconciled.clone())
                .data(MaskingThreshold(config.limits.small_count_threshold as i64))
                .data(DataLoader::new(EnvelopeLoader { db: db.clone() }, tokio::spawn))
                .data(DataLoader::new(ProvenanceLoader { db: db.clone() }, tokio::spawn))
                .data(DataLoader::new(crate::reconciliation::OpenEscalationsLoader { db: db.clone() }, tokio::spawn))
                .data(config.pulls)
                .data(outbound.clone())
                .data(secrets.clone())
                .data(escalation_events.clone())
                .limit_depth(config.limits.max_query_depth)
                .limit_complexity(config.limits.max_query_complexity)
        };
        let guarded = with_data(graphql::schema_builder_with(production))
            .extension(graphql::document_guard::DocumentGuard(config.limits.document))
            .finish();
        let executor =
            graphql::executor::HubExecutor::new(guarded, with_data(graphql::plain_schema_builder()).finish());
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartupError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind { addr: config.listen, source })?;
        let http_client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| StartupError::Catalog(format!("HTTP client: {e}")))?;
        // The issuer people sign in with to the pages (ProConnect), if one is marked.
        let sign_in = trusted.iter().find_map(|issuer| match (&issuer.sign_in, &issuer.keys) {
            (Some(client), crate::access::issuers::KeySource::Oidc { discovery_url, .. }) => {
                Some(crate::pages::oidc::OidcSignIn {
                    name: issuer.name.clone(),
                    discovery_url: discovery_url.clone(),
                    client: client.clone(),
                })
            }
            _ => None,
        });
        let authenticator = Authenticator::new(trusted, http_client.clone());
        authenticator.spawn_key_refresh();
        tracing::info!(issuers = ?authenticator.issuer_names(), "trusted token issuers");
        let gate = crate::http::Gate {
            authenticator: Arc::new(authenticator),
            access,
            catalog,
            rate_limiter: Arc::new(crate::http::rate_limits::RateLimiter::new(config.rate_limits)),
        };
        let probes = crate::routes::Probes {
            store: store.clone(),
            pools: [("main", db.clone()), ("writes", writes.db().clone()), ("background", background_db.clone())]
                .into_iter()
                .chain(writes.barrier().map(|barrier| ("durability", barrier.db().clone())))
                .collect(),
        };
        let state = http::HttpState {
            executor,
            gate: gate.clone(),
            reconciled: http_reconciled,
            answers: Arc::default(),
            writes: Arc::new(writes),
            document_limits: config.limits.document,
            max_body_bytes: config.limits.max_body_bytes,
            store: store.clone(),
            lifecycle: lifecycle.clone(),
            fast: Arc::new(graphql::fast::FastReads::new(
                crate::selection::plan::Bounds {
                    max_depth: config.limits.max_query_depth,
                    max_complexity: config.limits.max_query_complexity,
                },
                config.limits.document,
            )),
        };
        let deadlines = crate::campaigns::deadlines::spawn_watch(background_db.clone(), gate.catalog.clone());
        let gate_catalog = gate.catalog.clone();
        let pages = crate::pages::PagesState {
            executor: state.executor.clone(),
            db: db.clone(),
            gate: gate.clone(),
            dev_secret: config.dev_jwt_secret.as_ref().filter(|_| !production).map(|s| s.expose().to_owned()),
            secure_cookies: production,
            oidc: sign_in,
            http: http_client,
            lifecycle: lifecycle.clone(),
            masking_threshold: config.limits.small_count_threshold as i64,
        };
        let exports = crate::files::export::ExportState {
            db: db.clone(),
            gate,
            masking_threshold: config.limits.small_count_threshold as i64,
        };
        let dispatcher =
            crate::exchange::dispatch::spawn(background_db.clone(), config.webhooks, outbound.clone(), secrets.clone());
        let sweeper = crate::kernel::retention::spawn(background_db.clone(), config.retention_days);
        let puller = crate::pulls::scheduler::spawn(
            background_db,
            reconciled.clone(),
            gate_catalog,
            config.pulls,
            outbound,
            secrets,
        );
        let router = crate::routes::router(state, exports, pages, probes, config.limits.max_body_bytes);
        Ok(App {
            listener,
            router,
            db,
            addr,
            statements,
            reconciled: reconciled_handle,
            lifecycle,
            grace: config.shutdown_grace,
            _background: [dispatcher, deadlines, puller, sweeper],
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Forgets the reconciled state held in memory (rebuilt on next use): for data written straight into the
    /// database by this process (`demo::load` into a built hub, as the benchmarks do).
    pub fn forget_reconciled_state(&self) {
        self.reconciled.invalidate_all();
    }

    /// How many SQL statements the hub has run since it was built (migrations and reference data included).
    pub fn statements(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.statements.clone()
    }

    /// Serves until `shutdown` completes; then stops accepting, lets the requests under way (writes included)
    /// finish, closes every WebSocket with 1001 (going away), and returns, or returns anyway once the grace period
    /// (`CNH_SHUTDOWN_GRACE_SECONDS`) has passed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let lifecycle = self.lifecycle.clone();
        let stopping = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connection; finishing the requests under way");
            lifecycle.stop();
        };
        let grace = self.grace;
        let over = async {
            self.lifecycle.stopped().await;
            tokio::time::sleep(grace).await;
        };
        let drained = async {
            axum::serve(self.listener, self.router).with_graceful_shutdown(stopping).await?;
            // Upgraded connections (WebSockets) are no longer the server's: wait for them to send their close frame.
            self.lifecycle.websockets_closed().await;
            Ok(())
        };
        tokio::select! {
            served = drained => served,
            () = over => {
                tracing::warn!(grace_seconds = grace.as_secs(), "grace period over: exiting with requests unfinished");
                Ok(())
            }
        }
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
