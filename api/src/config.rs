//! The hub's typed configuration: read once at start-up from environment variables (overridable by command-line
//! flags, see the binary), checked, and passed down. A wrong setting stops start-up with one clear line.

use std::net::SocketAddr;

/// Default database: an SQLite file in the working directory, created on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://cnh-hub.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Every environment variable of the hub. A `CNH_*` variable not listed here is refused, so that a typo
/// (`CNH_LISEN`) is noticed instead of silently ignored.
pub const KNOWN_VARIABLES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database URL: sqlite://FILE?mode=rwc or postgres://USER@HOST:PORT/DB"),
    ("CNH_LISTEN", "address the HTTP server listens on (default 127.0.0.1:8080)"),
    ("CNH_PROFILE", "development (default) or production"),
    ("CNH_LOG", "log level: error, warn, info (default), debug, trace"),
    ("CNH_MAX_QUERY_DEPTH", "deepest GraphQL selection accepted (default 15)"),
    ("CNH_MAX_QUERY_COMPLEXITY", "largest GraphQL query complexity accepted (default 10000)"),
    ("CNH_MAX_BODY_BYTES", "largest request body accepted, in bytes (default 8 MiB)"),
    ("CNH_MAX_QUERY_TOKENS", "most lexical tokens in a GraphQL document (default 20000)"),
    ("CNH_MAX_VALUE_DEPTH", "deepest nesting of lists and input objects in arguments and variables (default 12)"),
    ("CNH_MAX_SELECTION_NESTING", "deepest nesting of selection sets as written (default 32)"),
    ("CNH_MAX_FRAGMENTS", "most fragment definitions in a GraphQL document (default 100)"),
    ("CNH_MAX_FRAGMENT_DEPTH", "longest chain of fragment spreads (default 10)"),
    ("CNH_MAX_EXPANDED_FIELDS", "most fields in a GraphQL document once its fragments are expanded (default 5000)"),
    (
        "CNH_SMALL_COUNT_THRESHOLD",
        "counts of people from 1 to this minus one are masked outside the MDPH and the CNSA (default 11)",
    ),
    (
        "CNH_RATE_LIMIT_READS",
        "query points (fields, expensive ones weighed) per minute per institution; 0: no limit (default 600000)",
    ),
    ("CNH_RATE_LIMIT_WRITES", "mutations per minute per institution, file imports aside; 0: no limit (default 1200)"),
    ("CNH_RATE_LIMIT_IMPORTS", "file imports per hour per institution; 0: no limit (default 120)"),
    ("CNH_RATE_LIMIT_TOKEN_SHARE", "percentage of its institution's quotas one token may use (default 50)"),
    ("CNH_INSTANCES", "hub instances sharing the load: each enforces its share of the rate limits (default 1)"),
    (
        "CNH_SHUTDOWN_GRACE_SECONDS",
        "on SIGTERM, how long in-flight requests may take before the hub exits (default 20)",
    ),
    (
        "CNH_WEBHOOK_MAX_ATTEMPTS",
        "attempts of a webhook delivery before it is dead, replayable by the operator (default 8)",
    ),
    (
        "CNH_WEBHOOK_RETRY_BASE_MS",
        "wait after a webhook delivery's first failure, doubled after each next one, with jitter (default 10000)",
    ),
    (
        "CNH_WEBHOOK_LEASE_SECONDS",
        "how long an instance's claim on a webhook delivery holds before another may send it (default 60)",
    ),
    ("CNH_WEBHOOK_POLL_MS", "how often the webhook outbox is looked at when no write woke it (default 1000)"),
    ("CNH_PULL_POLL_MS", "how often due pull sources are looked for when nothing woke the puller (default 1000)"),
    ("CNH_PULL_MIN_INTERVAL_SECONDS", "shortest interval between two pulls a source may register (default 60)"),
    ("CNH_PULL_TIMEOUT_SECONDS", "total time of one request to a pull source, body included (default 30)"),
    ("CNH_PULL_MAX_BYTES", "largest answer read from a pull source (default 8388608)"),
    ("CNH_PULL_ATTEMPTS", "requests per pull when the source fails in a way that may pass (default 3)"),
    ("CNH_PULL_DEGRADED_AFTER", "failed pulls in a row after which a source is DEGRADED (default 3)"),
    (
        "CNH_PULL_LEASE_SECONDS",
        "how long an instance's claim on a pull source holds before another may pull it (default 300)",
    ),
    (
        "CNH_OUTBOUND_ALLOWED_NETWORKS",
        "internal networks webhooks and pulls may reach besides the public internet, comma-separated \
         (10.20.0.0/16,fd12::/16); the local machine is allowed in development (default none)",
    ),
    ("CNH_RETENTION_DAYS", "days ended webhook deliveries and pull runs are kept before they are deleted (default 90)"),
    ("CNH_DEMO", "development: load the demo data before serving when the store holds no measure (default off)"),
    ("CNH_LOG_FORMAT", "text (default) or json: one JSON object per log line, for a log collector"),
    ("CNH_ISSUERS_FILE", "JSON file listing the trusted token issuers (OpenID Connect or, in development, HS256)"),
    ("CNH_SECRETS_KEY", "64 hexadecimal digits: the key stored credentials are sealed with (required in production)"),
    (
        "CNH_SECRETS_PREVIOUS_KEY",
        "while rotating CNH_SECRETS_KEY: the key being replaced (still opens, sealed values are moved to the new key)",
    ),
    ("CNH_DEV_JWT_SECRET", "secret of the built-in development issuer (32+ characters; refused in production)"),
];

/// A secret setting: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Local work and tests: development conveniences allowed.
    Development,
    /// A deployed hub: development conveniences refused.
    Production,
}

/// Limits that protect the hub from oversized or abusive requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_query_depth: usize,
    pub max_query_complexity: usize,
    pub max_body_bytes: usize,
    /// Bounds on GraphQL documents, checked before parsing and expansion.
    pub document: crate::graphql::limits::DocumentLimits,
    /// Counts of people from 1 to this minus one are shown as "<N" outside the producing MDPH and the CNSA.
    pub small_count_threshold: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_query_depth: 15,
            max_query_complexity: 10_000,
            max_body_bytes: 8 * 1024 * 1024,
            document: crate::graphql::limits::DocumentLimits::default(),
            small_count_threshold: 11,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub profile: Profile,
    pub limits: Limits,
    /// Trusted issuers file (`CNH_ISSUERS_FILE`).
    pub issuers_file: Option<String>,
    /// Secret of the development issuer (`CNH_DEV_JWT_SECRET`).
    pub dev_jwt_secret: Option<Secret>,
    /// On SIGTERM, how long in-flight requests may take before the hub exits (`CNH_SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: std::time::Duration,
    /// Quotas per institution and per token (`CNH_RATE_LIMIT_*`, `CNH_INSTANCES`).
    pub rate_limits: crate::http::rate_limits::RateLimits,
    /// How webhook deliveries are sent and retried (`CNH_WEBHOOK_*`).
    pub webhooks: crate::exchange::dispatch::WebhookSettings,
    /// How pull sources are fetched (`CNH_PULL_*`).
    pub pulls: crate::pulls::PullSettings,
    /// Where webhooks and pulls may send requests (`CNH_OUTBOUND_ALLOWED_NETWORKS`, the profile).
    pub outbound: crate::exchange::outbound::Destinations,
    /// Days ended webhook deliveries and pull runs are kept (`CNH_RETENTION_DAYS`, `kernel::retention`).
    pub retention_days: u32,
    /// The key stored credentials are sealed with (`CNH_SECRETS_KEY`, `secrets`), checked well-formed.
    pub secrets_key: Option<Secret>,
    /// While rotating: the key being replaced (`CNH_SECRETS_PREVIOUS_KEY`), which only opens.
    pub secrets_previous_key: Option<Secret>,
}

/// Default of `CNH_SHUTDOWN_GRACE_SECONDS`: within the 30 s an orchestrator usually waits before killing.
pub const DEFAULT_SHUTDOWN_GRACE_SECONDS: usize = 20;

/// The raw settings as given (environment or flags), before checking.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub profile: Option<String>,
    pub max_query_depth: Option<String>,
    pub max_query_complexity: Option<String>,
    pub max_body_bytes: Option<String>,
    pub max_query_tokens: Option<String>,
    pub max_value_depth: Option<String>,
    pub max_selection_nesting: Option<String>,
    pub max_fragments: Option<String>,
    pub max_fragment_depth: Option<String>,
    pub max_expanded_fields: Option<String>,
    pub small_count_threshold: Option<String>,
    pub issuers_file: Option<String>,
    pub dev_jwt_secret: Option<String>,
    pub shutdown_grace_seconds: Option<String>,
    pub rate_limit_reads: Option<String>,
    pub rate_limit_writes: Option<String>,
    pub rate_limit_imports: Option<String>,
    pub rate_limit_token_share: Option<String>,
    pub instances: Option<String>,
    pub webhook_max_attempts: Option<String>,
    pub webhook_retry_base_ms: Option<String>,
    pub webhook_lease_seconds: Option<String>,
    pub webhook_poll_ms: Option<String>,
    pub pull_poll_ms: Option<String>,
    pub pull_min_interval_seconds: Option<String>,
    pub pull_timeout_seconds: Option<String>,
    pub pull_max_bytes: Option<String>,
    pub pull_attempts: Option<String>,
    pub pull_degraded_after: Option<String>,
    pub pull_lease_seconds: Option<String>,
    pub outbound_allowed_networks: Option<String>,
    pub retention_days: Option<String>,
    pub secrets_key: Option<String>,
    pub secrets_previous_key: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "DATABASE_URL « {0} » is not a database URL: expected sqlite://FILE?mode=rwc or postgres://USER@HOST:PORT/DB"
    )]
    DatabaseUrl(String),
    #[error("CNH_LISTEN « {0} » is not an address to listen on: expected HOST:PORT, e.g. 127.0.0.1:8080")]
    Listen(String),
    #[error("CNH_PROFILE « {0} » is unknown: expected development or production")]
    Profile(String),
    #[error("{name} « {value} » is not a positive whole number")]
    Number { name: &'static str, value: String },
    #[error("{name} « {value} » is not a whole number (0 for no limit)")]
    Quota { name: &'static str, value: String },
    #[error("CNH_RATE_LIMIT_TOKEN_SHARE « {0} » is not a percentage from 1 to 100")]
    Share(String),
    #[error("{0}")]
    SecretsKey(crate::secrets::SecretError),
    #[error("CNH_SECRETS_PREVIOUS_KEY is the key being rotated away from: set the new one in CNH_SECRETS_KEY")]
    PreviousKeyAlone,
    #[error("CNH_OUTBOUND_ALLOWED_NETWORKS: {0}")]
    Networks(String),
    #[error("unknown setting {0} (known: {1})")]
    UnknownVariable(String, String),
}

fn positive(name: &'static str, value: Option<String>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::Number { name, value: text }),
        },
    }
}

fn rate_limits(settings: &Settings) -> Result<crate::http::rate_limits::RateLimits, ConfigError> {
    use crate::http::rate_limits::{Quota, RateLimits};
    let defaults = RateLimits::default();
    let with = |base: Quota, name, value: &Option<String>| {
        quota(name, value.clone(), base.quota).map(|quota| Quota { quota, ..base })
    };
    let share = match &settings.rate_limit_token_share {
        None => defaults.token_share_percent,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(ConfigError::Share(text.clone())),
        },
    };
    Ok(RateLimits {
        reads: with(defaults.reads, "CNH_RATE_LIMIT_READS", &settings.rate_limit_reads)?,
        writes: with(defaults.writes, "CNH_RATE_LIMIT_WRITES", &settings.rate_limit_writes)?,
        imports: with(defaults.imports, "CNH_RATE_LIMIT_IMPORTS", &settings.rate_limit_imports)?,
        token_share_percent: share,
        instances: positive("CNH_INSTANCES", settings.instances.clone(), defaults.instances as usize)? as u64,
    })
}

/// The networks webhooks and pulls may reach besides the public internet; in development, the local machine too.
fn outbound(networks: Option<&str>, profile: Profile) -> Result<crate::exchange::outbound::Destinations, ConfigError> {
    let allowed = networks
        .unwrap_or_default()
        .split(',')
        .filter(|n| !n.trim().is_empty())
        .map(str::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ConfigError::Networks)?;
    let destinations = crate::exchange::outbound::Destinations::new(allowed);
    Ok(if profile == Profile::Development { destinations.with_loopback() } else { destinations })
}

fn webhooks(settings: &Settings) -> Result<crate::exchange::dispatch::WebhookSettings, ConfigError> {
    use std::time::Duration;
    let defaults = crate::exchange::dispatch::WebhookSettings::default();
    let millis = |d: Duration| d.as_millis() as usize;
    Ok(crate::exchange::dispatch::WebhookSettings {
        max_attempts: positive(
            "CNH_WEBHOOK_MAX_ATTEMPTS",
            settings.webhook_max_attempts.clone(),
            defaults.max_attempts as usize,
        )?
        .min(u32::MAX as usize) as u32,
        retry_base: Duration::from_millis(positive(
            "CNH_WEBHOOK_RETRY_BASE_MS",
            settings.webhook_retry_base_ms.clone(),
            millis(defaults.retry_base),
        )? as u64),
        lease: Duration::from_secs(positive(
            "CNH_WEBHOOK_LEASE_SECONDS",
            settings.webhook_lease_seconds.clone(),
            defaults.lease.as_secs() as usize,
        )? as u64),
        poll: Duration::from_millis(positive(
            "CNH_WEBHOOK_POLL_MS",
            settings.webhook_poll_ms.clone(),
            millis(defaults.poll),
        )? as u64),
        ..defaults
    })
}

fn pulls(settings: &Settings) -> Result<crate::pulls::PullSettings, ConfigError> {
    use std::time::Duration;
    let defaults = crate::pulls::PullSettings::default();
    let seconds = |name, value: &Option<String>, default: Duration| {
        positive(name, value.clone(), default.as_secs() as usize).map(|n| Duration::from_secs(n as u64))
    };
    Ok(crate::pulls::PullSettings {
        poll: Duration::from_millis(positive(
            "CNH_PULL_POLL_MS",
            settings.pull_poll_ms.clone(),
            defaults.poll.as_millis() as usize,
        )? as u64),
        min_interval: seconds(
            "CNH_PULL_MIN_INTERVAL_SECONDS",
            &settings.pull_min_interval_seconds,
            defaults.min_interval,
        )?,
        timeout: seconds("CNH_PULL_TIMEOUT_SECONDS", &settings.pull_timeout_seconds, defaults.timeout)?,
        max_bytes: positive("CNH_PULL_MAX_BYTES", settings.pull_max_bytes.clone(), defaults.max_bytes)?,
        attempts: positive("CNH_PULL_ATTEMPTS", settings.pull_attempts.clone(), defaults.attempts as usize)?.min(20)
            as u32,
        degraded_after: positive(
            "CNH_PULL_DEGRADED_AFTER",
            settings.pull_degraded_after.clone(),
            defaults.degraded_after as usize,
        )?
        .min(1000) as u32,
        lease: seconds("CNH_PULL_LEASE_SECONDS", &settings.pull_lease_seconds, defaults.lease)?,
        ..defaults
    })
}

/// A quota: a whole number, 0 meaning no limit.
fn quota(name: &'static str, value: Option<String>, default: u64) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => text.trim().parse::<u64>().map_err(|_| ConfigError::Quota { name, value: text }),
    }
}

pub use crate::db::redact_url;

impl Config {
    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        let settings_rates = settings.clone();
        let database_url = settings.database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let known_scheme = ["sqlite:", "postgres://", "postgresql://"].iter().any(|s| database_url.starts_with(s));
        let has_target = database_url.split_once(':').is_some_and(|(_, rest)| !rest.trim_start_matches('/').is_empty());
        if !known_scheme || !has_target {
            return Err(ConfigError::DatabaseUrl(redact_url(&database_url)));
        }
        let listen_text = settings.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|_| ConfigError::Listen(listen_text.clone()))?;
        let profile = match settings.profile.as_deref().map(str::trim) {
            None | Some("development") => Profile::Development,
            Some("production") => Profile::Production,
            Some(other) => return Err(ConfigError::Profile(other.to_owned())),
        };
        let defaults = Limits::default();
        let doc = defaults.document;
        let limits = Limits {
            max_query_depth: positive("CNH_MAX_QUERY_DEPTH", settings.max_query_depth, defaults.max_query_depth)?,
            max_query_complexity: positive(
                "CNH_MAX_QUERY_COMPLEXITY",
                settings.max_query_complexity,
                defaults.max_query_complexity,
            )?,
            max_body_bytes: positive("CNH_MAX_BODY_BYTES", settings.max_body_bytes, defaults.max_body_bytes)?,
            document: crate::graphql::limits::DocumentLimits {
                max_tokens: positive("CNH_MAX_QUERY_TOKENS", settings.max_query_tokens, doc.max_tokens)?,
                max_value_depth: positive("CNH_MAX_VALUE_DEPTH", settings.max_value_depth, doc.max_value_depth)?,
                max_selection_nesting: positive(
                    "CNH_MAX_SELECTION_NESTING",
                    settings.max_selection_nesting,
                    doc.max_selection_nesting,
                )?,
                max_fragments: positive("CNH_MAX_FRAGMENTS", settings.max_fragments, doc.max_fragments)?,
                max_fragment_depth: positive(
                    "CNH_MAX_FRAGMENT_DEPTH",
                    settings.max_fragment_depth,
                    doc.max_fragment_depth,
                )?,
                max_expanded_fields: positive(
                    "CNH_MAX_EXPANDED_FIELDS",
                    settings.max_expanded_fields,
                    doc.max_expanded_fields,
                )?,
            },
            small_count_threshold: positive(
                "CNH_SMALL_COUNT_THRESHOLD",
                settings.small_count_threshold,
                defaults.small_count_threshold,
            )?,
        };
        Ok(Config {
            database_url,
            listen,
            profile,
            limits,
            issuers_file: settings.issuers_file.filter(|f| !f.trim().is_empty()),
            dev_jwt_secret: settings.dev_jwt_secret.filter(|s| !s.is_empty()).map(Secret),
            shutdown_grace: std::time::Duration::from_secs(positive(
                "CNH_SHUTDOWN_GRACE_SECONDS",
                settings.shutdown_grace_seconds,
                DEFAULT_SHUTDOWN_GRACE_SECONDS,
            )? as u64),
            rate_limits: rate_limits(&settings_rates)?,
            webhooks: webhooks(&settings_rates)?,
            pulls: pulls(&settings_rates)?,
            outbound: outbound(settings_rates.outbound_allowed_networks.as_deref(), profile)?,
            retention_days: positive(
                "CNH_RETENTION_DAYS",
                settings_rates.retention_days.clone(),
                crate::kernel::retention::DEFAULT_RETENTION_DAYS as usize,
            )?
            .min(36_500) as u32,
            secrets_key: match settings_rates.secrets_key.clone().filter(|k| !k.trim().is_empty()) {
                Some(key) => {
                    crate::secrets::SecretBox::from_hex(&key).map_err(ConfigError::SecretsKey)?;
                    Some(Secret(key.trim().to_owned()))
                }
                None => None,
            },
            secrets_previous_key: match settings_rates.secrets_previous_key.filter(|k| !k.trim().is_empty()) {
                Some(_) if settings_rates.secrets_key.as_deref().is_none_or(|k| k.trim().is_empty()) => {
                    return Err(ConfigError::PreviousKeyAlone);
                }
                Some(key) => {
                    crate::secrets::SecretBox::from_hex(&key).map_err(ConfigError::SecretsKey)?;
                    Some(Secret(key.trim().to_owned()))
                }
                None => None,
            },
        })
    }

    /// Refuses `CNH_*` variables the hub does not know.
    pub fn check_environment<I: IntoIterator<Item = String>>(names: I) -> Result<(), ConfigError> {
        for name in names {
            if name.starts_with("CNH_") && !KNOWN_VARIABLES.iter().any(|(known, _)| *known == name) {
                let known: Vec<&str> =
                    KNOWN_VARIABLES.iter().map(|(k, _)| *k).filter(|k| k.starts_with("CNH_")).collect();
                return Err(ConfigError::UnknownVariable(name, known.join(", ")));
            }
        }
        Ok(())
    }

    /// A configuration for tests and tools: the given database, an ephemeral local port, development profile.
    pub fn for_database(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            profile: Profile::Development,
            limits: Limits::default(),
            issuers_file: None,
            dev_jwt_secret: None,
            shutdown_grace: std::time::Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECONDS as u64),
            rate_limits: crate::http::rate_limits::RateLimits::default(),
            webhooks: crate::exchange::dispatch::WebhookSettings::default(),
            pulls: crate::pulls::PullSettings::default(),
            outbound: crate::exchange::outbound::Destinations::default().with_loopback(),
            retention_days: crate::kernel::retention::DEFAULT_RETENTION_DAYS,
            secrets_key: None,
            secrets_previous_key: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_an_sqlite_file_and_a_local_port() {
        let config = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.profile, Profile::Development);
    }

    #[test]
    fn the_secrets_keys_are_checked_and_the_previous_one_needs_a_new_one() {
        let key = "ab".repeat(32);
        let settings = |key: Option<&str>, previous: Option<&str>| Settings {
            secrets_key: key.map(str::to_owned),
            secrets_previous_key: previous.map(str::to_owned),
            ..Default::default()
        };
        let config = Config::from_settings(settings(Some(&key), Some(&"cd".repeat(32)))).unwrap();
        assert_eq!(config.secrets_key.as_ref().map(Secret::expose), Some(key.as_str()));
        assert!(config.secrets_previous_key.is_some());
        assert_eq!(Config::from_settings(settings(None, Some(&key))).unwrap_err(), ConfigError::PreviousKeyAlone);
        assert!(matches!(
            Config::from_settings(settings(Some("short"), None)).unwrap_err(),
            ConfigError::SecretsKey(crate::secrets::SecretError::MalformedKey)
        ));
        assert!(!format!("{config:?}").contains(&key), "keys are never printed");
    }

    #[test]
    fn malformed_settings_are_refused_with_their_name() {
        let bad_url = Settings { database_url: Some("mysql://x".into()), ..Default::default() };
        assert!(matches!(Config::from_settings(bad_url), Err(ConfigError::DatabaseUrl(_))));
        let bad_listen = Settings { listen: Some("localhost".into()), ..Default::default() };
        assert!(matches!(Config::from_settings(bad_listen), Err(ConfigError::Listen(_))));
        let bad_depth = Settings { max_query_depth: Some("0".into()), ..Default::default() };
        assert!(Config::from_settings(bad_depth).unwrap_err().to_string().contains("CNH_MAX_QUERY_DEPTH"));
    }

    #[test]
    fn rate_limits_are_read_and_checked() {
        let settings = Settings {
            rate_limit_reads: Some("0".into()),
            rate_limit_writes: Some("60".into()),
            instances: Some("3".into()),
            ..Default::default()
        };
        let limits = Config::from_settings(settings).unwrap().rate_limits;
        assert_eq!((limits.reads.quota, limits.writes.quota, limits.instances), (0, 60, 3));
        let share = Settings { rate_limit_token_share: Some("0".into()), ..Default::default() };
        assert!(matches!(Config::from_settings(share), Err(ConfigError::Share(_))));
        let words = Settings { rate_limit_imports: Some("many".into()), ..Default::default() };
        assert!(Config::from_settings(words).unwrap_err().to_string().contains("CNH_RATE_LIMIT_IMPORTS"));
        let grace = Settings { shutdown_grace_seconds: Some("-1".into()), ..Default::default() };
        assert!(Config::from_settings(grace).unwrap_err().to_string().contains("CNH_SHUTDOWN_GRACE_SECONDS"));
    }

    #[test]
    fn an_unknown_cnh_variable_is_refused() {
        let err = Config::check_environment(["PATH".to_owned(), "CNH_LISEN".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("CNH_LISEN"));
        assert!(Config::check_environment(["CNH_LISTEN".to_owned()]).is_ok());
    }

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(redact_url("postgres://hub:s3cret@db:5432/hub"), "postgres://hub:***@db:5432/hub");
        assert_eq!(redact_url("postgres://hub@db/hub"), "postgres://hub@db/hub");
        let err = Config::from_settings(Settings { database_url: Some("pg://u:pw@h/d".into()), ..Default::default() });
        assert!(!err.unwrap_err().to_string().contains("pw"));
    }
}
