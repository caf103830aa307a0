//! The `cnh-hub` binary as a newcomer runs it: on its embedded default, and refusing wrong settings with one line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::support::TestResult;

const BIN: &str = env!("CARGO_BIN_EXE_cnh-hub");

/// The binary with a clean configuration: no inherited DATABASE_URL nor CNH_* setting.
fn hub_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env_remove("DATABASE_URL").env("CNH_LOG", "info");
    for (name, _) in std::env::vars() {
        if name.starts_with("CNH_") && name != "CNH_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// Runs the binary to completion and returns (exit success, stderr lines).
fn run_failing(command: &mut Command) -> (bool, Vec<String>) {
    let output = command.stdin(Stdio::null()).output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).lines().map(str::to_owned).collect();
    (output.status.success(), stderr)
}

fn assert_one_clear_line(stderr: &[String], expected: &str) {
    let errors: Vec<&String> = stderr.iter().filter(|l| l.starts_with("cnh-hub: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line expected in {stderr:#?}");
    assert!(errors[0].contains(expected), "{:?} does not say {expected:?}", errors[0]);
    assert_eq!(stderr.last(), Some(errors[0]), "the error is the last word");
    assert!(!stderr.iter().any(|l| l.contains("panicked") || l.contains("RUST_BACKTRACE")), "{stderr:#?}");
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cnh-hub serve` and waits for the address it logs.
fn serve(mut command: Command) -> (Running, String) {
    let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(Ok(rest.split_whitespace().next().unwrap_or_default().to_owned()));
            } else if line.contains("error") {
                let _ = tx.send(Err(line));
            }
        }
    });
    let running = Running(child);
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(addr)) => (running, addr),
        Ok(Err(line)) => panic!("the hub failed to start: {line}"),
        Err(_) => panic!("the hub did not report its address in time"),
    }
}

#[tokio::test]
async fn a_fresh_folder_gets_an_sqlite_file_and_a_hub_serving_the_annex() -> TestResult {
    let dir = tempfile::tempdir()?;
    const SECRET: &str = "a-newcomer-s-local-development-secret";
    let mut command = hub_command(dir.path());
    command.env("CNH_LISTEN", "127.0.0.1:0").env("CNH_DEV_JWT_SECRET", SECRET);
    let (_hub, addr) = serve(command);
    assert!(dir.path().join("cnh-hub.db").exists(), "the default store is cnh-hub.db in the working directory");
    let minted = hub_command(dir.path())
        .args(["token", "--role", "cnsa", "--ttl", "10m"])
        .env("CNH_DEV_JWT_SECRET", SECRET)
        .output()?;
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let stdout = String::from_utf8(minted.stdout)?;
    let token = stdout.lines().last().expect("the token is on the last line").trim().to_owned();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "{ regions { code name departements { code } envelopes { compartment notified } } }" }))
        .send()
        .await?
        .json()
        .await?;
    let regions = answer["data"]["regions"].as_array().expect("regions");
    assert_eq!(regions.len(), 18);
    let ara = regions.iter().find(|r| r["code"] == "84").expect("ARA");
    assert_eq!(ara["envelopes"][0], json!({ "compartment": "SOCLE", "notified": "70520000.00" }));
    Ok(())
}

#[test]
fn migrate_prepares_a_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let (ok, stderr) = run_failing(hub_command(dir.path()).arg("migrate").env("DATABASE_URL", &url));
    assert!(ok, "{stderr:#?}");
    assert!(dir.path().join("m.db").exists());
}

#[test]
fn export_schema_prints_the_sdl() {
    let output = Command::new(BIN).arg("export-schema").output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), api::graphql::sdl());
}

#[test]
fn a_malformed_database_url_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stderr) = run_failing(hub_command(dir.path()).env("DATABASE_URL", "mysql://hub:secret@db/hub"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "DATABASE_URL");
    assert!(!stderr.iter().any(|l| l.contains("secret")), "the password is never printed");
}

#[test]
fn an_unreachable_database_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stderr) =
        run_failing(hub_command(dir.path()).env("DATABASE_URL", "postgres://hub:secret@127.0.0.1:1/hub"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "cannot open the database postgres://hub:***@127.0.0.1:1/hub");
}

#[test]
fn an_sqlite_file_in_a_missing_folder_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("no/such/folder/hub.db").display());
    let (ok, stderr) = run_failing(hub_command(dir.path()).env("DATABASE_URL", url));
    assert!(!ok);
    assert_one_clear_line(&stderr, "cannot open the database");
}

#[test]
fn a_port_in_use_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (ok, stderr) = run_failing(hub_command(dir.path()).env("CNH_LISTEN", &addr));
    assert!(!ok);
    assert_one_clear_line(&stderr, &format!("cannot listen on {addr}"));
}

#[test]
fn token_minting_needs_the_development_secret_and_a_known_territory() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stderr) = run_failing(hub_command(dir.path()).args(["token", "--role", "ars", "--region", "84"]));
    assert!(!ok);
    assert_one_clear_line(&stderr, "CNH_DEV_JWT_SECRET is not set");
    let secret = "x".repeat(40);
    let (ok, stderr) = run_failing(
        hub_command(dir.path()).args(["token", "--role", "ars", "--region", "99"]).env("CNH_DEV_JWT_SECRET", &secret),
    );
    assert!(!ok);
    assert_one_clear_line(&stderr, "ARS-99");
    let (ok, stderr) = run_failing(
        hub_command(dir.path())
            .args(["token", "--role", "cnsa"])
            .env("CNH_DEV_JWT_SECRET", &secret)
            .env("CNH_PROFILE", "production"),
    );
    assert!(!ok);
    assert_one_clear_line(&stderr, "production");
}

#[test]
fn the_development_issuer_is_refused_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stderr) =
        run_failing(hub_command(dir.path()).env("CNH_PROFILE", "production").env("CNH_DEV_JWT_SECRET", "y".repeat(40)));
    assert!(!ok);
    assert_one_clear_line(&stderr, "refused in the production profile");
}

#[test]
fn a_misspelt_setting_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stderr) = run_failing(hub_command(dir.path()).env("CNH_LISEN", "127.0.0.1:9"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "unknown setting CNH_LISEN");
    let (ok, stderr) = run_failing(hub_command(dir.path()).env("CNH_LISTEN", "localhost"));
    assert!(!ok);
    assert_one_clear_line(&stderr, "CNH_LISTEN « localhost »");
}

#[tokio::test]
async fn with_cnh_demo_a_first_start_serves_the_demo_data_on_the_dashboard_and_a_restart_keeps_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    const SECRET: &str = "a-newcomer-s-local-development-secret";
    let start = || {
        let mut command = hub_command(dir.path());
        command.env("CNH_LISTEN", "127.0.0.1:0").env("CNH_DEV_JWT_SECRET", SECRET).env("CNH_DEMO", "1");
        serve(command)
    };
    let measures = |addr: String| async move {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let form = client.get(format!("http://{addr}/tableau/connexion")).send().await?;
        let csrf = form
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|l| l.strip_prefix("cnh_csrf=").map(|v| v.split(';').next().unwrap_or_default().to_owned()))
            .ok_or("no CSRF cookie")?;
        let signed = client
            .post(format!("http://{addr}/tableau/connexion"))
            .header("cookie", format!("cnh_csrf={csrf}"))
            .form(&[("csrf", csrf.as_str()), ("role", "cnsa"), ("territoire", "")])
            .send()
            .await?;
        let session = signed
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|l| l.strip_prefix("cnh_session=").map(|v| v.split(';').next().unwrap_or_default().to_owned()))
            .ok_or("no session")?;
        let page = client
            .get(format!("http://{addr}/tableau"))
            .header("cookie", format!("cnh_session={session}"))
            .send()
            .await?;
        let text = page.text().await?;
        let total = text
            .split(" mesure(s) en tout")
            .next()
            .and_then(|t| t.rsplit('>').next())
            .unwrap_or_default()
            .trim()
            .to_owned();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(total)
    };
    let (hub, addr) = start();
    let first = measures(addr).await?;
    assert!(first.parse::<u32>().is_ok_and(|n| n > 4000), "the demo's measures on the dashboard: {first:?}");
    drop(hub);
    let (_hub, addr) = start();
    assert_eq!(measures(addr).await?, first, "loaded once: a restart keeps the store as it is");
    let (ok, stderr) = run_failing(
        hub_command(dir.path())
            .env("CNH_PROFILE", "production")
            .env("CNH_DEMO", "1")
            .env("CNH_ISSUERS_FILE", "/nonexistent"),
    );
    assert!(!ok);
    assert_one_clear_line(&stderr, "CNH_DEMO is for development");
    Ok(())
}
