//! Test support: a real hub on an ephemeral port, on a fresh database of its own (an SQLite file in a temporary
//! folder, or a PostgreSQL database named by a UUID and dropped afterwards), and a GraphQL client over HTTP.

use std::time::Duration;

use api::access::dev::{DevTokenRequest, institution_for, sign};
use api::access::principal::Role;
use api::config::Secret;
use api::{App, Config};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The development issuer's secret in every test hub.
pub const TEST_SECRET: &str = "test-secret-of-the-development-issuer-0123456789";

/// Runs a test body once on SQLite and once on PostgreSQL (when `TEST_DATABASE_URL` is set; required under CI).
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($hub:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::support::*;

            $(#[$meta])*
            async fn body($hub: TestHub) -> TestResult $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() -> TestResult {
                body(TestHub::start(Backend::Sqlite).await?).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() -> TestResult {
                match Backend::postgres()? {
                    Some(backend) => body(TestHub::start(backend).await?).await,
                    None => Ok(()),
                }
            }
        }
    };
}

pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

impl Backend {
    /// PostgreSQL when `TEST_DATABASE_URL` is set. Under CI (`CI` set) its absence is an error, so a PostgreSQL
    /// run cannot silently pass by being skipped.
    pub fn postgres() -> Result<Option<Backend>, String> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(Some(Backend::Postgres { admin_url: url })),
            _ if std::env::var_os("CI").is_some() => {
                Err("CI is set but TEST_DATABASE_URL is not: the PostgreSQL half of the suite would be skipped".into())
            }
            _ => Ok(None),
        }
    }
}

/// The database a test owns; removed when the test ends.
enum Store {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// Another hub instance's database: left to that instance.
    Shared,
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Store::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async {
                    let admin = Database::connect(&admin_url).await.ok()?;
                    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
        }
    }
}

/// Replaces the database name of a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..cut]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Replaces the `host:port` of a PostgreSQL URL.
fn with_host(url: &str, host_port: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let credentials = authority.rfind('@').map_or("", |at| &authority[..=at]);
    format!("{}{credentials}{host_port}{}", &url[..scheme_end], &rest[authority_end..])
}

/// A TCP proxy in front of the database server that can be cut: while cut, every open connection is closed and
/// every new one is closed as soon as it is accepted, as when the network or the server goes away.
pub struct Proxy {
    pub port: u16,
    cut: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Proxy {
    /// A proxy to the server of a PostgreSQL URL.
    pub async fn to_postgres(url: &str) -> Result<Proxy, Box<dyn std::error::Error + Send + Sync>> {
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        let rest = &url[scheme_end..];
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let target = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (cut, _) = tokio::sync::watch::channel(false);
        let cut = std::sync::Arc::new(cut);
        let accepting = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut is_cut = accepting.subscribe();
                if *is_cut.borrow() {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = is_cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Ok(Proxy { port, cut })
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

pub struct TestHub {
    pub base_url: String,
    pub client: reqwest::Client,
    /// A connection of the test's own, to look at or alter what is stored.
    pub db: DatabaseConnection,
    pub database_url: String,
    /// SQL statements the hub itself has run (not the test's own connection).
    pub statements: std::sync::Arc<std::sync::atomic::AtomicU64>,
    server: tokio::task::JoinHandle<()>,
    /// Sends the hub its shutdown signal, as SIGTERM does.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _store: Store,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestHub {
    pub async fn start(backend: Backend) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        let (database_url, store) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display());
                (url, Store::Sqlite(dir))
            }
            Backend::Postgres { admin_url } => {
                let name = format!("cnh_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url).await?;
                admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
                admin.close().await?;
                (with_database(&admin_url, &name), Store::Postgres { admin_url, name })
            }
        };
        Self::start_on(database_url, store).await
    }

    async fn start_on(database_url: String, store: Store) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        let mut config = Config::for_database(database_url.clone());
        config.dev_jwt_secret = Some(Secret::new(TEST_SECRET));
        Self::start_with(config, store).await
    }

    /// Starts a hub with a configuration of the test's choosing (issuers, profile) on a fresh SQLite database.
    pub async fn start_configured(
        configure: impl FnOnce(&mut Config),
    ) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display());
        let mut config = Config::for_database(url);
        configure(&mut config);
        Self::start_with(config, Store::Sqlite(dir)).await
    }

    async fn start_with(config: Config, store: Store) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        let database_url = config.database_url.clone();
        let app = App::build(config).await?;
        let statements = app.statements();
        let base_url = format!("http://{}", app.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let signal = async move {
                // A hub dropped without a signal is aborted (Drop), not shut down.
                if stopped.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let _ = app.run_until(signal).await;
        });
        let db = Database::connect(&database_url).await?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(TestHub { base_url, client, db, database_url, statements, server, stop: Some(stop), _store: store })
    }

    /// A hub on a fresh PostgreSQL database reached through `proxy` (which forwards to the server of `admin_url`).
    pub async fn start_behind(
        admin_url: &str,
        proxy: &Proxy,
    ) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        let name = format!("cnh_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url).await?;
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
        admin.close().await?;
        let direct = with_database(admin_url, &name);
        let through = with_host(&direct, &format!("127.0.0.1:{}", proxy.port));
        let mut config = Config::for_database(through);
        config.dev_jwt_secret = Some(Secret::new(TEST_SECRET));
        let mut hub = Self::start_with(config, Store::Postgres { admin_url: admin_url.to_owned(), name }).await?;
        // The test's own connection goes straight to the server, so that it sees the store during the outage.
        hub.db = Database::connect(&direct).await?;
        Ok(hub)
    }

    /// Sends the shutdown signal (as SIGTERM does) and waits at most `wait` for the hub to exit; returns how long it
    /// took, or None if it did not exit in time.
    pub async fn shut_down(&mut self, wait: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(wait, &mut self.server).await.ok().map(|_| started.elapsed())
    }

    /// A second hub instance on the same database, as behind a load balancer.
    pub async fn second_instance(&self) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        Self::start_on(self.database_url.clone(), Store::Shared).await
    }

    /// Stops this hub (aborted, as a killed process) and starts a new one on the same database with its
    /// configuration changed by `configure`.
    pub async fn restart_with(
        mut self,
        configure: impl FnOnce(&mut Config),
    ) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        self.server.abort();
        // Gone, as a killed process is, before the next one starts: its background tasks stop with it.
        let _ = (&mut self.server).await;
        let store = std::mem::replace(&mut self._store, Store::Sqlite(tempfile::tempdir()?));
        let mut config = Config::for_database(self.database_url.clone());
        config.dev_jwt_secret = Some(Secret::new(TEST_SECRET));
        configure(&mut config);
        drop(self);
        Self::start_with(config, store).await
    }

    /// A second hub instance on the same database, with its configuration changed by `configure`.
    pub async fn second_instance_with(
        &self,
        configure: impl FnOnce(&mut Config),
    ) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        let mut config = Config::for_database(self.database_url.clone());
        config.dev_jwt_secret = Some(Secret::new(TEST_SECRET));
        configure(&mut config);
        Self::start_with(config, Store::Shared).await
    }

    /// Stops this hub and starts a new one on the same database, as a restart or a second deployment would.
    pub async fn restart(mut self) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
        self.server.abort();
        let _ = (&mut self.server).await;
        let store = std::mem::replace(&mut self._store, Store::Sqlite(tempfile::tempdir()?));
        let url = self.database_url.clone();
        drop(self);
        Self::start_on(url, store).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A caller holding a development token for this role and territory.
    pub fn as_role(&self, role: Role, territory: Option<&str>) -> Caller<'_> {
        let mut request = DevTokenRequest { role: Some(role), ..Default::default() };
        match role {
            Role::Ars => request.region = territory.map(str::to_owned),
            Role::Collectivite | Role::Mdph => request.departement = territory.map(str::to_owned),
            Role::Rectorat => request.academie = territory.map(str::to_owned),
            Role::Dashboard => request.region = territory.map(str::to_owned),
            Role::Cnsa | Role::Admin => {}
        }
        let reference =
            migration::reference::parse::parse(&migration::reference::Sources::embedded()).expect("reference data");
        let institution = institution_for(&request, &reference).expect("a test names a known territory");
        self.with_token(mint(&institution, role == Role::Dashboard, Duration::from_secs(3600)))
    }

    pub fn as_cnsa(&self) -> Caller<'_> {
        self.as_role(Role::Cnsa, None)
    }

    pub fn as_admin(&self) -> Caller<'_> {
        self.as_role(Role::Admin, None)
    }

    pub fn anonymous(&self) -> Caller<'_> {
        Caller { hub: self, token: None }
    }

    pub fn with_token(&self, token: String) -> Caller<'_> {
        Caller { hub: self, token: Some(token) }
    }

    /// A GraphQL request as the CNSA (national reach), returning the whole JSON answer.
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value, reqwest::Error> {
        self.as_cnsa().graphql(query, variables).await
    }

    /// The `data` of a query, as the CNSA, that must succeed.
    pub async fn data(&self, query: &str) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.as_cnsa().data(query).await
    }
}

/// A development token for an institution, signed with the test secret.
pub fn mint(institution: &str, dashboard: bool, ttl: Duration) -> String {
    api::access::install_crypto();
    sign(TEST_SECRET, institution, dashboard, "agent.test@cnh-hub.invalid", ttl).expect("signing works")
}

/// Someone calling the hub with a given token (or none).
pub struct Caller<'a> {
    hub: &'a TestHub,
    pub token: Option<String>,
}

impl Caller<'_> {
    pub fn request(&self, query: &str, variables: Value) -> reqwest::RequestBuilder {
        let request =
            self.hub.client.post(self.hub.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// GETs a path of the hub (an export) with the caller's token.
    pub async fn get(&self, path: &str) -> Result<reqwest::Response, reqwest::Error> {
        let request = self.hub.client.get(self.hub.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
        .await
    }

    /// POSTs a GraphQL request and returns the whole JSON answer (data and errors).
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value, reqwest::Error> {
        self.request(query, variables).send().await?.json().await
    }

    /// The `data` of a query that must succeed.
    pub async fn data(&self, query: &str) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let answer = self.graphql(query, json!({})).await?;
        if let Some(errors) = answer.get("errors") {
            return Err(format!("query failed: {errors}").into());
        }
        Ok(answer["data"].clone())
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A GraphQL subscription over WebSocket (graphql-transport-ws), as a browser or a dashboard opens it.
pub struct Subscription {
    socket: Socket,
}

impl Caller<'_> {
    /// Opens a WebSocket on /graphql, sends the token in `connection_init`, and subscribes.
    pub async fn subscribe(&self, document: &str) -> Result<Subscription, Box<dyn std::error::Error + Send + Sync>> {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};
        let mut request = self.hub.url("/graphql").replacen("http", "ws", 1).into_client_request()?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let payload = match &self.token {
            Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        socket.send(Message::text(json!({ "type": "connection_init", "payload": payload }).to_string())).await?;
        loop {
            let message =
                tokio::time::timeout(Duration::from_secs(10), socket.next()).await?.ok_or("socket closed")??;
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text)?;
                    if value["type"] == "connection_ack" {
                        break;
                    }
                }
                Message::Close(frame) => return Err(format!("connection refused: {frame:?}").into()),
                _ => {}
            }
        }
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": document } });
        socket.send(Message::text(subscribe.to_string())).await?;
        Ok(Subscription { socket })
    }
}

impl Subscription {
    /// The next result (`{data, errors}` of a `next` message, or `{errors}` of an `error` message), or None if
    /// nothing comes within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<Value>, Box<dyn std::error::Error + Send + Sync>> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(message) = tokio::time::timeout_at(deadline, self.socket.next()).await else { return Ok(None) };
            match message.ok_or("socket closed")?? {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text)?;
                    match value["type"].as_str() {
                        Some("next") => return Ok(Some(value["payload"].clone())),
                        Some("error") => return Ok(Some(json!({ "errors": value["payload"] }))),
                        _ => {}
                    }
                }
                Message::Close(_) => return Err("socket closed".into()),
                _ => {}
            }
        }
    }
}

impl Subscription {
    /// Reads until the hub closes the connection and returns the close code, or None if it stays open for `wait`.
    pub async fn closed_within(
        &mut self,
        wait: Duration,
    ) -> Result<Option<u16>, Box<dyn std::error::Error + Send + Sync>> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(message) = tokio::time::timeout_at(deadline, self.socket.next()).await else { return Ok(None) };
            match message {
                Some(Ok(Message::Close(frame))) => return Ok(Some(frame.map_or(1005, |f| u16::from(f.code)))),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(format!("socket failed before a close frame: {err}").into()),
                None => return Err("socket ended without a close frame".into()),
            }
        }
    }
}

/// Opens a WebSocket and sends `connection_init` with this payload; returns the close code if the hub closes the
/// connection instead of acknowledging it.
pub async fn websocket_init_close_code(
    hub: &TestHub,
    payload: Value,
) -> Result<Option<u16>, Box<dyn std::error::Error + Send + Sync>> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};
    let mut request = hub.url("/graphql").replacen("http", "ws", 1).into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    socket.send(Message::text(json!({ "type": "connection_init", "payload": payload }).to_string())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await?.ok_or("socket ended")?? {
            Message::Text(text) if text.contains("connection_ack") => return Ok(None),
            Message::Close(frame) => return Ok(Some(frame.map_or(1005, |f| u16::from(f.code)))),
            _ => {}
        }
    }
}

/// The `extensions.code` of each error of an answer.
pub fn error_codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["extensions"]["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn postgres_urls_get_a_new_database_name() {
    assert_eq!(with_database("postgres://postgres@127.0.0.1:5432/test", "x"), "postgres://postgres@127.0.0.1:5432/x");
    assert_eq!(with_database("postgres://u@h/db?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
}
