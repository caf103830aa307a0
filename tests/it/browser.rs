//! A real browser for the page tests: Debian's Chromium, headless, driven over the Chrome DevTools Protocol (a
//! WebSocket), as a person would use the pages: load, fill in, submit, read what is shown, take screenshots.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The browser binary: `CHROMIUM` or Debian's.
fn binary() -> Option<String> {
    let candidates =
        [std::env::var("CHROMIUM").unwrap_or_default(), "/usr/bin/chromium".into(), "/usr/bin/chromium-browser".into()];
    candidates.into_iter().find(|c| !c.is_empty() && std::path::Path::new(c).exists())
}

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: Socket,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// A headless Chromium, or None when there is none on this machine (an error under CI, where `.ci/run`
    /// installs it: the page tests must not pass by being skipped).
    pub async fn launch() -> Result<Option<Browser>, BoxError> {
        let Some(binary) = binary() else {
            if std::env::var_os("CI").is_some() {
                return Err(
                    "CI is set but no Chromium was found (/usr/bin/chromium): the page tests would be skipped".into()
                );
            }
            eprintln!("no Chromium on this machine: the browser tests are skipped (apt-get install chromium)");
            return Ok(None);
        };
        let profile = tempfile::tempdir()?;
        let mut child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1280,1600",
                "--remote-debugging-port=0",
                "--lang=fr-FR",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…"
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let port = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stderr).lines();
            let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
                let rest = line.split("ws://127.0.0.1:").nth(1)?;
                rest.split('/').next()?.parse::<u16>().ok()
            });
            // Keep draining, so that the browser never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            port
        })
        .await?
        .ok_or("Chromium did not say where its DevTools listen")?;
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await?.json().await?;
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .ok_or("no page target")?
            .to_owned();
        let (socket, _) = tokio_tungstenite::connect_async(page).await?;
        let mut browser = Browser { child, _profile: profile, socket, next_id: 0 };
        browser.call("Page.enable", json!({})).await?;
        browser.call("Runtime.enable", json!({})).await?;
        Ok(Some(browser))
    }

    /// Calls a DevTools method and returns its result (events in between are skipped).
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, BoxError> {
        self.next_id += 1;
        let id = self.next_id;
        self.socket
            .send(Message::Text(json!({ "id": id, "method": method, "params": params }).to_string().into()))
            .await?;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .map_err(|_| format!("{method}: no answer from the browser within 30 s"))?
                .ok_or("the browser closed the connection")??;
            let Message::Text(text) = message else { continue };
            let value: Value = serde_json::from_str(&text)?;
            if value["id"] == id {
                if let Some(error) = value.get("error") {
                    return Err(format!("{method}: {error}").into());
                }
                return Ok(value["result"].clone());
            }
        }
    }

    /// Evaluates a JavaScript expression in the page (promises awaited) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Result<Value, BoxError> {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(format!("{expression}: {exception}").into());
        }
        Ok(result["result"]["value"].clone())
    }

    /// Waits until `condition` (a JavaScript expression) is true in the page, 15 s at most.
    pub async fn wait_for(&mut self, condition: &str) -> Result<(), BoxError> {
        for _ in 0..150 {
            if let Ok(Value::Bool(true)) = self.eval(condition).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("not true within 15 s: {condition}; the page says: {}", self.text().await.unwrap_or_default())
            .into())
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn open(&mut self, url: &str) -> Result<(), BoxError> {
        self.call("Page.navigate", json!({ "url": url })).await?;
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default().to_owned();
        self.wait_for(&format!("document.readyState === 'complete' && location.pathname === {}", json!(path))).await
    }

    /// What a person reads on the page.
    pub async fn text(&mut self) -> Result<String, BoxError> {
        Ok(self.eval("document.body ? document.body.innerText : ''").await?.as_str().unwrap_or_default().to_owned())
    }

    /// Saves a PNG of the page under `target/screenshots/` (the tests' artefacts); returns its path.
    pub async fn screenshot(&mut self, name: &str) -> Result<std::path::PathBuf, BoxError> {
        let shot =
            self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await?;
        let bytes = base64_decode(shot["data"].as_str().ok_or("no screenshot data")?)?;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>, BoxError> {
    let value = |c: u8| -> Result<u32, BoxError> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {c}").into()),
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|b| *b != b'=').collect();
        let mut n = 0u32;
        for (i, b) in data.iter().enumerate() {
            n |= value(*b)? << (18 - 6 * i);
        }
        for i in 0..data.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

#[test]
fn base64_reads_back() {
    assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
    assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
}
