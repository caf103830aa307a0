//! `cnh-hub`: serve the hub (default), apply migrations, or export the GraphQL schema.
//! Settings come from environment variables; flags override them. Any start-up failure prints one line and exits
//! with a non-zero status.

use std::process::ExitCode;

use api::{App, Config, Settings};
use clap::{Args, Parser, Subcommand};

/// Small, short-lived allocations dominate a GraphQL answer; mimalloc serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cnh-hub", version, about = "Data-exchange hub of the plan of 50 000 solutions (CNH 2023)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (the default).
    Serve,
    /// Apply pending migrations and load the reference data, then exit.
    Migrate,
    /// Print the GraphQL schema (SDL), or write it to a file.
    ExportSchema {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Print a token of the development issuer (needs CNH_DEV_JWT_SECRET; refused in production).
    Token(TokenArgs),
    /// Submit a spreadsheet (CSV or XLSX) on behalf of an institution, as an upload would.
    Import(ImportArgs),
    /// Load a deterministic synthetic national programming (about 5 000 measures × scale) into an empty hub.
    Demo {
        /// Multiply the volume (1 to 100).
        #[arg(long, default_value_t = 1)]
        scale: usize,
    },
    /// Write the national steering committee's pack (XLSX) as of a date, for every region and the country.
    Report {
        /// The instant (RFC 3339) or the date (AAAA-MM-JJ: the end of that day, Paris time); default: now.
        #[arg(long)]
        as_of: Option<String>,
        /// One region only.
        #[arg(long)]
        region: Option<String>,
        /// The workbook to write.
        #[arg(long)]
        output: std::path::PathBuf,
    },
}

#[derive(Args)]
struct ImportArgs {
    /// measures, commitments, needs, school-plans, trajectory, drawing-rights or installation-forecast.
    #[arg(long)]
    kind: String,
    /// The CSV or XLSX file.
    #[arg(long)]
    file: std::path::PathBuf,
    /// The institution submitting it ("MDPH-69", "ARS-84", "RECTORAT-LYON").
    #[arg(long)]
    institution: String,
    /// Replaying the same file with the same key stores nothing twice.
    #[arg(long)]
    idempotency_key: Option<String>,
}

fn data_kind(text: &str) -> Option<api::vocabulary::DataKind> {
    use api::vocabulary::DataKind;
    match text.trim() {
        "measures" => Some(DataKind::Measures),
        "commitments" => Some(DataKind::Commitments),
        "needs" => Some(DataKind::Needs),
        "school-plans" => Some(DataKind::SchoolPlans),
        "trajectory" => Some(DataKind::Trajectory),
        "drawing-rights" => Some(DataKind::DrawingRights),
        "installation-forecast" => Some(DataKind::InstallationForecast),
        _ => None,
    }
}

#[derive(Args)]
struct TokenArgs {
    /// cnsa, ars, collectivite, mdph, rectorat, dashboard or admin.
    #[arg(long)]
    role: Option<String>,
    /// Region code, for ars (and a regional dashboard).
    #[arg(long)]
    region: Option<String>,
    /// Département code, for mdph and collectivite.
    #[arg(long)]
    departement: Option<String>,
    /// Académie code, for rectorat ("lyon").
    #[arg(long)]
    academie: Option<String>,
    /// Collectivité code, where several cover a département ("METROPOLE-LYON").
    #[arg(long)]
    collectivite: Option<String>,
    /// An institution code, instead of a role and a territory.
    #[arg(long)]
    institution: Option<String>,
    /// The agent the token speaks for.
    #[arg(long)]
    agent: Option<String>,
    /// Lifetime: 90s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    #[arg(long, env = "CNH_DEV_JWT_SECRET", hide = true, hide_env_values = true)]
    dev_jwt_secret: Option<String>,
}

#[derive(Args)]
struct DatabaseArgs {
    /// Database URL [default: sqlite://cnh-hub.db?mode=rwc, a file in the working directory].
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// development or production [default: development].
    #[arg(long, env = "CNH_PROFILE", global = true)]
    profile: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CNH_LISTEN", global = true)]
    listen: Option<String>,
    /// Deepest GraphQL selection accepted [default: 15].
    #[arg(long, env = "CNH_MAX_QUERY_DEPTH", global = true)]
    max_query_depth: Option<String>,
    /// Largest GraphQL query complexity accepted [default: 10000].
    #[arg(long, env = "CNH_MAX_QUERY_COMPLEXITY", global = true)]
    max_query_complexity: Option<String>,
    /// Largest request body accepted, in bytes [default: 8388608].
    #[arg(long, env = "CNH_MAX_BODY_BYTES", global = true)]
    max_body_bytes: Option<String>,
    /// Most lexical tokens in a GraphQL document [default: 20000].
    #[arg(long, env = "CNH_MAX_QUERY_TOKENS", global = true)]
    max_query_tokens: Option<String>,
    /// Deepest nesting of lists and input objects in arguments and variables [default: 12].
    #[arg(long, env = "CNH_MAX_VALUE_DEPTH", global = true)]
    max_value_depth: Option<String>,
    /// Deepest nesting of selection sets as written [default: 32].
    #[arg(long, env = "CNH_MAX_SELECTION_NESTING", global = true)]
    max_selection_nesting: Option<String>,
    /// Most fragment definitions in a document [default: 100].
    #[arg(long, env = "CNH_MAX_FRAGMENTS", global = true)]
    max_fragments: Option<String>,
    /// Longest chain of fragment spreads [default: 10].
    #[arg(long, env = "CNH_MAX_FRAGMENT_DEPTH", global = true)]
    max_fragment_depth: Option<String>,
    /// Most fields once fragments are expanded [default: 5000].
    #[arg(long, env = "CNH_MAX_EXPANDED_FIELDS", global = true)]
    max_expanded_fields: Option<String>,
    /// Counts of people below this are masked outside the producing MDPH and the CNSA [default: 11].
    #[arg(long, env = "CNH_SMALL_COUNT_THRESHOLD", global = true)]
    small_count_threshold: Option<String>,
    /// JSON file of trusted token issuers.
    #[arg(long, env = "CNH_ISSUERS_FILE", global = true)]
    issuers_file: Option<String>,
    /// On SIGTERM, seconds in-flight requests may take before the hub exits [default: 20].
    #[arg(long, env = "CNH_SHUTDOWN_GRACE_SECONDS", global = true)]
    shutdown_grace_seconds: Option<String>,
    /// Query points per minute per institution, 0 for no limit [default: 600000].
    #[arg(long, env = "CNH_RATE_LIMIT_READS", global = true)]
    rate_limit_reads: Option<String>,
    /// Mutations per minute per institution, file imports aside, 0 for no limit [default: 1200].
    #[arg(long, env = "CNH_RATE_LIMIT_WRITES", global = true)]
    rate_limit_writes: Option<String>,
    /// File imports per hour per institution, 0 for no limit [default: 120].
    #[arg(long, env = "CNH_RATE_LIMIT_IMPORTS", global = true)]
    rate_limit_imports: Option<String>,
    /// Percentage of its institution's quotas one token may use [default: 50].
    #[arg(long, env = "CNH_RATE_LIMIT_TOKEN_SHARE", global = true)]
    rate_limit_token_share: Option<String>,
    /// Hub instances sharing the load; each enforces its share of the quotas [default: 1].
    #[arg(long, env = "CNH_INSTANCES", global = true)]
    instances: Option<String>,
    /// Attempts of a webhook delivery before it is dead [default: 8].
    #[arg(long, env = "CNH_WEBHOOK_MAX_ATTEMPTS", global = true)]
    webhook_max_attempts: Option<String>,
    /// Wait after a webhook delivery's first failure, in ms, doubled after each next one [default: 10000].
    #[arg(long, env = "CNH_WEBHOOK_RETRY_BASE_MS", global = true)]
    webhook_retry_base_ms: Option<String>,
    /// Seconds an instance's claim on a webhook delivery holds [default: 60].
    #[arg(long, env = "CNH_WEBHOOK_LEASE_SECONDS", global = true)]
    webhook_lease_seconds: Option<String>,
    /// How often the webhook outbox is looked at when no write woke it, in ms [default: 1000].
    #[arg(long, env = "CNH_WEBHOOK_POLL_MS", global = true)]
    webhook_poll_ms: Option<String>,
    /// How often due pull sources are looked for when nothing woke the puller, in ms [default: 1000].
    #[arg(long, env = "CNH_PULL_POLL_MS", global = true)]
    pull_poll_ms: Option<String>,
    /// Shortest interval between two pulls a source may register, in seconds [default: 60].
    #[arg(long, env = "CNH_PULL_MIN_INTERVAL_SECONDS", global = true)]
    pull_min_interval_seconds: Option<String>,
    /// Total time of one request to a pull source, body included, in seconds [default: 30].
    #[arg(long, env = "CNH_PULL_TIMEOUT_SECONDS", global = true)]
    pull_timeout_seconds: Option<String>,
    /// Largest answer read from a pull source, in bytes [default: 8388608].
    #[arg(long, env = "CNH_PULL_MAX_BYTES", global = true)]
    pull_max_bytes: Option<String>,
    /// Requests per pull when the source fails in a way that may pass [default: 3].
    #[arg(long, env = "CNH_PULL_ATTEMPTS", global = true)]
    pull_attempts: Option<String>,
    /// Failed pulls in a row after which a source is DEGRADED [default: 3].
    #[arg(long, env = "CNH_PULL_DEGRADED_AFTER", global = true)]
    pull_degraded_after: Option<String>,
    /// Seconds an instance's claim on a pull source holds [default: 300].
    #[arg(long, env = "CNH_PULL_LEASE_SECONDS", global = true)]
    pull_lease_seconds: Option<String>,
    /// Internal networks webhooks and pulls may reach besides the public internet, comma-separated (the local
    /// machine is allowed in development) [default: none].
    #[arg(long, env = "CNH_OUTBOUND_ALLOWED_NETWORKS", global = true)]
    outbound_allowed_networks: Option<String>,
    /// Days ended webhook deliveries and pull runs are kept before they are deleted [default: 90].
    #[arg(long, env = "CNH_RETENTION_DAYS", global = true)]
    retention_days: Option<String>,
    /// Development: load the demo data (scale 1) before serving, if the store holds no measure yet.
    #[arg(long, env = "CNH_DEMO", action = clap::ArgAction::Set, num_args = 0..=1, default_value_t = false,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    demo: bool,
}

fn token(args: TokenArgs, profile: Option<&str>) -> ExitCode {
    if profile.map(str::trim) == Some("production") {
        return fail("the development issuer is refused in the production profile: no token minted");
    }
    let role = match args.role.as_deref().map(|r| api::access::principal::Role::parse(r).ok_or(r)) {
        Some(Ok(role)) => Some(role),
        Some(Err(r)) => {
            return fail(format_args!(
                "unknown role « {r} »: cnsa, ars, collectivite, mdph, rectorat, dashboard or admin"
            ));
        }
        None => None,
    };
    let ttl = match api::access::dev::parse_ttl(&args.ttl) {
        Ok(ttl) => ttl,
        Err(err) => return fail(err),
    };
    let request = api::access::dev::DevTokenRequest {
        role,
        region: args.region,
        departement: args.departement,
        academie: args.academie,
        collectivite: args.collectivite,
        institution: args.institution,
        agent: args.agent,
    };
    api::access::install_crypto();
    match api::access::dev::mint(args.dev_jwt_secret.as_deref(), &request, ttl) {
        Ok(token) => {
            eprintln!("Development token, valid {}; send it as « Authorization: Bearer <token> »:", args.ttl);
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

fn init_logging() {
    let level = match std::env::var("CNH_LOG").ok().as_deref().map(str::trim) {
        Some("error") => tracing::Level::ERROR,
        Some("warn") => tracing::Level::WARN,
        Some("debug") => tracing::Level::DEBUG,
        Some("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_target(false);
    // One JSON object per line for a log collector; each line of a request carries its span (and so its id).
    if std::env::var("CNH_LOG_FORMAT").is_ok_and(|f| f.trim() == "json") {
        logs.json().with_current_span(true).with_span_list(false).init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("cnh-hub: error: {message}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ExportSchema { output }) = &cli.command {
        let sdl = api::graphql::sdl();
        return match output {
            Some(path) => match std::fs::write(path, sdl) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => fail(format_args!("cannot write {}: {err}", path.display())),
            },
            None => {
                print!("{sdl}");
                ExitCode::SUCCESS
            }
        };
    }
    if let Some(Command::Token(_)) = &cli.command {
        let Some(Command::Token(args)) = cli.command else { unreachable!() };
        return token(args, cli.database.profile.as_deref());
    }
    if let Ok(format) = std::env::var("CNH_LOG_FORMAT")
        && !matches!(format.trim(), "text" | "json")
    {
        return fail(format_args!("CNH_LOG_FORMAT: « {format} » is neither text nor json"));
    }
    init_logging();
    if let Err(err) = Config::check_environment(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())) {
        return fail(err);
    }
    let settings = Settings {
        database_url: cli.database.database_url,
        listen: cli.serve.listen,
        profile: cli.database.profile,
        max_query_depth: cli.serve.max_query_depth,
        max_query_complexity: cli.serve.max_query_complexity,
        max_body_bytes: cli.serve.max_body_bytes,
        max_query_tokens: cli.serve.max_query_tokens,
        max_value_depth: cli.serve.max_value_depth,
        max_selection_nesting: cli.serve.max_selection_nesting,
        max_fragments: cli.serve.max_fragments,
        max_fragment_depth: cli.serve.max_fragment_depth,
        max_expanded_fields: cli.serve.max_expanded_fields,
        small_count_threshold: cli.serve.small_count_threshold,
        issuers_file: cli.serve.issuers_file,
        shutdown_grace_seconds: cli.serve.shutdown_grace_seconds,
        rate_limit_reads: cli.serve.rate_limit_reads,
        rate_limit_writes: cli.serve.rate_limit_writes,
        rate_limit_imports: cli.serve.rate_limit_imports,
        rate_limit_token_share: cli.serve.rate_limit_token_share,
        webhook_max_attempts: cli.serve.webhook_max_attempts,
        webhook_retry_base_ms: cli.serve.webhook_retry_base_ms,
        webhook_lease_seconds: cli.serve.webhook_lease_seconds,
        webhook_poll_ms: cli.serve.webhook_poll_ms,
        pull_poll_ms: cli.serve.pull_poll_ms,
        pull_min_interval_seconds: cli.serve.pull_min_interval_seconds,
        pull_timeout_seconds: cli.serve.pull_timeout_seconds,
        pull_max_bytes: cli.serve.pull_max_bytes,
        pull_attempts: cli.serve.pull_attempts,
        pull_degraded_after: cli.serve.pull_degraded_after,
        pull_lease_seconds: cli.serve.pull_lease_seconds,
        outbound_allowed_networks: cli.serve.outbound_allowed_networks,
        retention_days: cli.serve.retention_days,
        instances: cli.serve.instances,
        dev_jwt_secret: std::env::var("CNH_DEV_JWT_SECRET").ok(),
        // Like the development secret, from the environment only: a flag would show in the process list.
        secrets_key: std::env::var("CNH_SECRETS_KEY").ok(),
        secrets_previous_key: std::env::var("CNH_SECRETS_PREVIOUS_KEY").ok(),
    };
    let demo = cli.serve.demo;
    let config = match Config::from_settings(settings) {
        Ok(config) => config,
        Err(err) => return fail(err),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => match api::db::connect(&config.database_url).await {
            Ok(db) => match api::db::prepare(&db, &config.database_url).await {
                Ok(report) => {
                    tracing::info!(?report, "migrations applied, reference data loaded");
                    ExitCode::SUCCESS
                }
                Err(err) => fail(err),
            },
            Err(err) => fail(err),
        },
        Command::Serve => {
            if demo {
                if config.profile == api::Profile::Production {
                    return fail(
                        "CNH_DEMO is for development: the demo data is never loaded in the production profile",
                    );
                }
                if let Err(err) = demo_if_empty(&config.database_url).await {
                    return fail(err);
                }
            }
            let app = match App::build(config).await {
                Ok(app) => app,
                Err(err) => return fail(err),
            };
            let addr = app.local_addr();
            tracing::info!(
                "listening on http://{addr} (GraphiQL: http://{addr}/graphql, dashboard: http://{addr}/tableau)"
            );
            match app.run().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => fail(format_args!("server stopped: {err}")),
            }
        }
        Command::Demo { scale } => {
            let loaded = async {
                let db = api::db::connect(&config.database_url).await.map_err(|e| e.to_string())?;
                api::db::prepare(&db, &config.database_url).await.map_err(|e| e.to_string())?;
                let catalog = api::territory::service::Catalog::load(&db).await.map_err(|e| e.to_string())?;
                api::demo::load(&db, catalog, scale).await.map_err(|e| format!("{e}: {e:?}"))
            }
            .await;
            match loaded {
                Ok(report) => {
                    println!(
                        "demo data loaded: {} measures, {} commitments, {} needs indicators, {} school plans",
                        report.measures, report.commitments, report.needs_indicators, report.school_plans
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => fail(err),
            }
        }
        Command::Report { as_of, region, output } => {
            let Some(at) = api::files::export::as_of_or_now(as_of.as_deref()) else {
                return fail("--as-of: an RFC 3339 instant or a date AAAA-MM-JJ");
            };
            let written = async {
                let db = api::db::connect(&config.database_url).await.map_err(|e| e.to_string())?;
                api::db::prepare(&db, &config.database_url).await.map_err(|e| e.to_string())?;
                let catalog = api::territory::service::Catalog::load(&db).await.map_err(|e| e.to_string())?;
                let regions: Vec<String> = match &region {
                    Some(code) if catalog.region(code).is_none() => return Err(format!("unknown region {code}")),
                    Some(code) => vec![code.clone()],
                    None => catalog.regions.iter().map(|r| r.code.clone()).collect(),
                };
                let territory = std::sync::Arc::new(api::reconciled::snapshot::territory(&catalog));
                // The operator's pack is the CNSA's: counts of people unmasked.
                let threshold = config.limits.small_count_threshold as i64;
                let pack = api::steering::report::build(&db, &catalog, territory, regions, at, true, threshold)
                    .await
                    .map_err(|e| e.to_string())?;
                let bytes = api::files::export::steering_workbook(&pack)?;
                std::fs::write(&output, bytes).map_err(|e| format!("{}: {e}", output.display()))?;
                Ok::<_, String>(pack)
            }
            .await;
            match written {
                Ok(pack) => {
                    println!(
                        "steering pack as of {} written to {} ({} regions)",
                        pack.as_of.to_rfc3339(),
                        output.display(),
                        pack.regions.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => fail(err),
            }
        }
        Command::Import(args) => {
            let Some(kind) = data_kind(&args.kind) else {
                return fail(format_args!(
                    "unknown kind « {} »: measures, commitments, needs or school-plans",
                    args.kind
                ));
            };
            match api::files::import::import_from_cli(
                &config.database_url,
                &args.institution,
                kind,
                &args.file,
                args.idempotency_key,
            )
            .await
            {
                Ok(report) => {
                    println!(
                        "{} rows read from {} ({:?}): {} created, {} updated; submission {} (SHA-256 {})",
                        report.rows,
                        args.file.display(),
                        report.format,
                        report.created,
                        report.updated,
                        report.receipt.submission_id,
                        report.receipt.content_hash
                    );
                    for warning in &report.warnings {
                        println!("  warning {} [{}] {}", warning.path, warning.code, warning.message);
                    }
                    if !report.ignored_columns.is_empty() {
                        println!("  ignored columns: {}", report.ignored_columns.join(", "));
                    }
                    ExitCode::SUCCESS
                }
                Err(err) => fail(err),
            }
        }
        Command::ExportSchema { .. } | Command::Token(_) => unreachable!("handled before start-up"),
    }
}

/// Loads the demo data (scale 1) unless the store already holds measures: a first `CNH_DEMO=1 cargo run` shows a
/// populated dashboard, a restart keeps what is there.
async fn demo_if_empty(database_url: &str) -> Result<(), String> {
    let db = api::db::connect(database_url).await.map_err(|e| e.to_string())?;
    api::db::prepare(&db, database_url).await.map_err(|e| e.to_string())?;
    if api::demo::has_measures(&db).await.map_err(|e| e.to_string())? {
        tracing::info!("CNH_DEMO: the store already holds measures, the demo data is not loaded again");
        return Ok(());
    }
    let catalog = api::territory::service::Catalog::load(&db).await.map_err(|e| e.to_string())?;
    let report = api::demo::load(&db, catalog, 1).await.map_err(|e| format!("{e}: {e:?}"))?;
    tracing::info!(measures = report.measures, commitments = report.commitments, "CNH_DEMO: demo data loaded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variable a flag reads is one the hub knows: else setting it would stop start-up as unknown.
    #[test]
    fn every_flag_s_variable_is_a_known_setting() {
        use clap::CommandFactory;
        let mut names = Vec::new();
        let command = Cli::command();
        for command in std::iter::once(&command).chain(command.get_subcommands()) {
            for argument in command.get_arguments() {
                if let Some(env) = argument.get_env() {
                    names.push(env.to_string_lossy().into_owned());
                }
            }
        }
        assert!(names.iter().any(|n| n == "CNH_RATE_LIMIT_READS"), "{names:?}");
        for name in names {
            assert!(Config::check_environment([name.clone()]).is_ok(), "{name} is read by a flag but refused");
        }
    }
}
