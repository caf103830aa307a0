//! Keys of an OpenID Connect issuer: discovery document, then JWKS, fetched with reqwest, cached, refreshed
//! periodically and on an unknown `kid` (at most every `min_refresh`), and kept when the issuer is briefly
//! unreachable: the last good keys go on serving.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum KeyFetchError {
    #[error("fetching {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("discovery document of {url} names issuer {found}, expected {expected}")]
    IssuerMismatch { url: String, found: String, expected: String },
    #[error("JWKS of {url} holds no usable key")]
    NoKeys { url: String },
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Default)]
struct KeyState {
    keys: HashMap<String, DecodingKey>,
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
}

pub struct OidcKeys {
    issuer: String,
    discovery_url: String,
    min_refresh: Duration,
    http: reqwest::Client,
    state: RwLock<KeyState>,
    // One refresh at a time: concurrent requests with a new kid wait for the same fetch.
    refreshing: tokio::sync::Mutex<()>,
}

impl OidcKeys {
    pub fn new(issuer: String, discovery_url: String, min_refresh: Duration, http: reqwest::Client) -> Arc<OidcKeys> {
        Arc::new(OidcKeys {
            issuer,
            discovery_url,
            min_refresh,
            http,
            state: RwLock::new(KeyState::default()),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.state.read().ok()?.keys.get(kid).cloned()
    }

    /// The key with this `kid`; an unknown kid triggers a refresh unless one was attempted within `min_refresh`.
    /// Whether the last key set fetched holds `kid`.
    pub fn publishes(&self, kid: &str) -> bool {
        self.state.read().is_ok_and(|s| s.keys.contains_key(kid))
    }

    pub async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let _guard = self.refreshing.lock().await;
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let due =
            self.state.read().ok().is_none_or(|s| s.last_attempt.is_none_or(|at| at.elapsed() >= self.min_refresh));
        if due && let Err(err) = self.fetch_and_store().await {
            tracing::warn!(issuer = %self.issuer, error = %err, "key refresh failed, keeping the last good keys");
        }
        self.cached(kid)
    }

    /// Fetches the keys now; on failure the previous keys stay in place.
    pub async fn refresh(&self) -> Result<usize, KeyFetchError> {
        let _guard = self.refreshing.lock().await;
        self.fetch_and_store().await
    }

    async fn fetch_and_store(&self) -> Result<usize, KeyFetchError> {
        if let Ok(mut state) = self.state.write() {
            state.last_attempt = Some(Instant::now());
        }
        let keys = self.fetch().await?;
        let count = keys.len();
        if let Ok(mut state) = self.state.write() {
            state.keys = keys;
            state.last_success = Some(Instant::now());
        }
        tracing::info!(issuer = %self.issuer, keys = count, "issuer keys refreshed");
        Ok(count)
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, KeyFetchError> {
        let http_error = |reason: String| KeyFetchError::Http { url: url.to_owned(), reason };
        let response = self.http.get(url).send().await.map_err(|e| http_error(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(http_error(format!("HTTP {}", response.status())));
        }
        response.json().await.map_err(|e| http_error(e.without_url().to_string()))
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, KeyFetchError> {
        let discovery: Discovery = self.get_json(&self.discovery_url).await?;
        if discovery.issuer != self.issuer {
            return Err(KeyFetchError::IssuerMismatch {
                url: self.discovery_url.clone(),
                found: discovery.issuer,
                expected: self.issuer.clone(),
            });
        }
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let keys: HashMap<String, DecodingKey> = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        if keys.is_empty() {
            return Err(KeyFetchError::NoKeys { url: discovery.jwks_uri });
        }
        Ok(keys)
    }

    /// Refreshes every `period` for as long as the keys are in use.
    pub fn spawn_periodic_refresh(self: &Arc<Self>, period: Duration) {
        let weak: Weak<OidcKeys> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(keys) = weak.upgrade() else { break };
                if let Err(err) = keys.refresh().await {
                    tracing::warn!(issuer = %keys.issuer, error = %err, "periodic key refresh failed, keeping the last good keys");
                }
            }
        });
    }
}
