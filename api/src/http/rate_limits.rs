//! Rate limits: token buckets per institution and per token, for three budgets counted apart: query points (a
//! query costs its fields once fragments are expanded, plus the weight of its expensive fields), mutations, and file
//! imports. A request that would overdraw a bucket is refused with 429 `RATE_LIMITED`, `Retry-After`, and the
//! `RateLimit-Policy` / `RateLimit` headers of the IETF draft (draft-ietf-httpapi-ratelimit-headers).
//!
//! Why per instance: a shared bucket would put a database round trip (or a lock in it) on every request, which the
//! hub keeps off its hot path. Each instance enforces its share, the configured quota divided by
//! `CNH_INSTANCES`; behind a load balancer spreading requests evenly, an institution gets its quota in all.
//! Buckets live in memory and are forgotten when full (an idle institution costs nothing).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a file export (`/exports/…`, the pages' spreadsheets) weighs in the read budget: as much as the largest
/// query admitted by default (`CNH_MAX_QUERY_COMPLEXITY`), since it reads as many rows. With the default quota, an
/// institution downloads 60 files a minute, a token or session half of it.
pub const EXPORT_COST: u64 = 10_000;

/// What a page view of `/tableau` weighs in the read budget: about the fields its queries ask for.
pub const PAGE_COST: u64 = 1_000;

/// What starting a subscription over a WebSocket weighs in the read budget: opening and closing subscriptions in a
/// loop is throttled like queries.
pub const SUBSCRIPTION_COST: u64 = 100;

/// A budget counted apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Query points per window.
    Reads,
    /// Mutations per window (file imports aside).
    Writes,
    /// File imports per window.
    Imports,
}

impl Budget {
    pub fn name(self) -> &'static str {
        match self {
            Budget::Reads => "reads",
            Budget::Writes => "writes",
            Budget::Imports => "imports",
        }
    }
}

/// One budget's quota: `quota` units per `window`; 0 means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub quota: u64,
    pub window: Duration,
}

/// The configured quotas, for one institution (the whole hub, all instances together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub reads: Quota,
    pub writes: Quota,
    pub imports: Quota,
    /// A token may use this percentage of its institution's quotas (one agent cannot exhaust the institution's).
    pub token_share_percent: u64,
    /// Instances sharing the load: each enforces its share of the quotas.
    pub instances: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            // About 4 000 dashboard queries of ~150 fields a minute per institution.
            reads: Quota { quota: 600_000, window: Duration::from_secs(60) },
            writes: Quota { quota: 1_200, window: Duration::from_secs(60) },
            imports: Quota { quota: 120, window: Duration::from_secs(3600) },
            token_share_percent: 50,
            instances: 1,
        }
    }
}

impl RateLimits {
    /// No limit at all (benchmarks of raw throughput).
    pub fn unlimited() -> RateLimits {
        let none = Quota { quota: 0, window: Duration::from_secs(60) };
        RateLimits { reads: none, writes: none, imports: none, ..RateLimits::default() }
    }

    fn quota(&self, budget: Budget) -> Quota {
        match budget {
            Budget::Reads => self.reads,
            Budget::Writes => self.writes,
            Budget::Imports => self.imports,
        }
    }

    /// This instance's capacity for a budget, for an institution or (`token`) one of its tokens.
    fn capacity(&self, budget: Budget, token: bool) -> u64 {
        let quota = self.quota(budget).quota / self.instances.max(1);
        if token { quota * self.token_share_percent.min(100) / 100 } else { quota }
    }
}

/// Why a request is refused: the budget, what it allows, and when to come back.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub budget: Budget,
    /// Whether the token's bucket refused (else the institution's).
    pub token: bool,
    /// The bucket's capacity on this instance, and its window.
    pub capacity: u64,
    pub window: Duration,
    /// Units left now.
    pub remaining: u64,
    /// Seconds until the request would fit.
    pub retry_after: u64,
    /// Seconds until the bucket is full again.
    pub reset: u64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// What the last request charged here cost (or would have): the threshold under which the next one is refused
    /// before it is weighed.
    last_cost: u64,
}

/// The buckets of one instance.
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(Budget, bool, String), Bucket>>,
}

/// Buckets kept before the full ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter { limits, buckets: Mutex::default() }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The refusal a request of `budget` would likely get, when the institution's or the token's bucket holds less
    /// than the last request charged to it cost (at least one unit): lets the caller refuse before weighing the
    /// request (parsing its document). A throttled client repeating its query is refused for the price of a lookup;
    /// a cheaper query than the last may be refused early too, and is told when to come back.
    /// Whether requests are charged to `budget` at all (a quota of 0 turns it off, e.g. behind a gateway that
    /// limits the rate itself): when not, callers need not even name the buckets.
    pub fn charges(&self, budget: Budget) -> bool {
        self.limits.quota(budget).quota > 0
    }

    pub fn exhausted(&self, budget: Budget, institution: &str, token: &str) -> Option<Refusal> {
        self.exhausted_at(budget, institution, token, Instant::now())
    }

    fn exhausted_at(&self, budget: Budget, institution: &str, token: &str, now: Instant) -> Option<Refusal> {
        let quota = self.limits.quota(budget);
        if quota.quota == 0 {
            return None;
        }
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        [(false, institution), (true, token)].into_iter().find_map(|(is_token, key)| {
            let bucket = buckets.get(&(budget, is_token, key.to_owned()))?;
            let capacity = self.limits.capacity(budget, is_token).max(1);
            let rate = capacity as f64 / quota.window.as_secs_f64();
            let tokens =
                (bucket.tokens + rate * now.saturating_duration_since(bucket.at).as_secs_f64()).min(capacity as f64);
            let threshold = bucket.last_cost.clamp(1, capacity) as f64;
            (tokens < threshold).then(|| Refusal {
                budget,
                token: is_token,
                capacity,
                window: quota.window,
                remaining: tokens.floor() as u64,
                retry_after: ((threshold - tokens) / rate).ceil().max(1.0) as u64,
                reset: ((capacity as f64 - tokens) / rate).ceil() as u64,
            })
        })
    }

    /// Takes `cost` units of `budget` from the institution's bucket and the token's, or refuses without taking any.
    pub fn take(&self, budget: Budget, institution: &str, token: &str, cost: u64) -> Result<(), Refusal> {
        self.take_at(budget, institution, token, cost, Instant::now())
    }

    fn take_at(&self, budget: Budget, institution: &str, token: &str, cost: u64, now: Instant) -> Result<(), Refusal> {
        let window = self.limits.quota(budget).window;
        if self.limits.quota(budget).quota == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let limits = self.limits;
            buckets.retain(|(budget, token, _), bucket| {
                let capacity = limits.capacity(*budget, *token) as f64;
                let rate = capacity / limits.quota(*budget).window.as_secs_f64();
                bucket.tokens + rate * now.duration_since(bucket.at).as_secs_f64() < capacity
            });
        }
        // Both buckets are refilled and checked before either is charged.
        let mut checked = [(false, institution, 0.0f64, 0u64), (true, token, 0.0, 0)];
        for (is_token, key, tokens, capacity) in &mut checked {
            *capacity = self.limits.capacity(budget, *is_token).max(1);
            let rate = *capacity as f64 / window.as_secs_f64();
            let bucket = buckets.entry((budget, *is_token, (*key).to_owned())).or_insert(Bucket {
                tokens: *capacity as f64,
                at: now,
                last_cost: 0,
            });
            bucket.last_cost = cost;
            bucket.tokens =
                (bucket.tokens + rate * now.saturating_duration_since(bucket.at).as_secs_f64()).min(*capacity as f64);
            bucket.at = now;
            *tokens = bucket.tokens;
            if bucket.tokens < cost as f64 {
                let missing = cost as f64 - bucket.tokens;
                return Err(Refusal {
                    budget,
                    token: *is_token,
                    capacity: *capacity,
                    window,
                    remaining: bucket.tokens.floor() as u64,
                    // A request costing more than the whole bucket waits for a full bucket and is refused again:
                    // it says so by the window.
                    retry_after: if cost > *capacity { window.as_secs() } else { (missing / rate).ceil() as u64 }
                        .max(1),
                    reset: ((*capacity as f64 - bucket.tokens) / rate).ceil() as u64,
                });
            }
        }
        for (is_token, key, _, _) in checked {
            if let Some(bucket) = buckets.get_mut(&(budget, is_token, key.to_owned())) {
                bucket.tokens -= cost as f64;
            }
        }
        Ok(())
    }
}

impl Refusal {
    /// `RateLimit-Policy`: the policy's name, its quota and window (draft-ietf-httpapi-ratelimit-headers).
    pub fn policy_header(&self) -> String {
        format!("\"{}\";q={};w={}", self.policy_name(), self.capacity, self.window.as_secs())
    }

    /// `RateLimit`: the policy's name, what remains and when the bucket is full again.
    pub fn limit_header(&self) -> String {
        format!("\"{}\";r={};t={}", self.policy_name(), self.remaining, self.reset)
    }

    fn policy_name(&self) -> String {
        format!("{}-per-{}", self.budget.name(), if self.token { "token" } else { "institution" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        RateLimits {
            reads: Quota { quota: 100, window: Duration::from_secs(10) },
            writes: Quota { quota: 4, window: Duration::from_secs(60) },
            imports: Quota { quota: 0, window: Duration::from_secs(60) },
            token_share_percent: 50,
            instances: 1,
        }
    }

    #[test]
    fn a_bucket_empties_refuses_and_refills_with_time() {
        let limiter = RateLimiter::new(limits());
        let t0 = Instant::now();
        // The token's bucket (50 % of 100) is the first to run dry.
        assert!(limiter.take_at(Budget::Reads, "ARS-84", "t1", 30, t0).is_ok());
        let refused = limiter.take_at(Budget::Reads, "ARS-84", "t1", 30, t0).unwrap_err();
        assert!(refused.token);
        assert_eq!((refused.capacity, refused.remaining), (50, 20));
        // 10 points missing at 5 points a second: 2 s.
        assert_eq!(refused.retry_after, 2);
        assert_eq!(refused.policy_header(), "\"reads-per-token\";q=50;w=10");
        assert_eq!(refused.limit_header(), "\"reads-per-token\";r=20;t=6");
        // Another token of the institution still has its share, until the institution's bucket runs dry.
        assert!(limiter.take_at(Budget::Reads, "ARS-84", "t2", 50, t0).is_ok());
        let institution = limiter.take_at(Budget::Reads, "ARS-84", "t3", 30, t0).unwrap_err();
        assert!(!institution.token);
        // Another institution is not affected.
        assert!(limiter.take_at(Budget::Reads, "ARS-11", "t4", 50, t0).is_ok());
        // Time refills.
        assert!(limiter.take_at(Budget::Reads, "ARS-84", "t1", 30, t0 + Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn an_empty_bucket_is_seen_before_the_request_is_weighed() {
        let limiter = RateLimiter::new(limits());
        let t0 = Instant::now();
        assert!(limiter.exhausted_at(Budget::Reads, "ARS-84", "t1", t0).is_none(), "no bucket yet: full");
        assert!(limiter.take_at(Budget::Reads, "ARS-84", "t1", 40, t0).is_ok());
        // 10 points left, the last request cost 40: the next is refused unweighed, until 40 are back (6 s).
        let refused = limiter.exhausted_at(Budget::Reads, "ARS-84", "t1", t0).expect("below the last cost");
        assert!(refused.token);
        assert_eq!((refused.remaining, refused.retry_after), (10, 6));
        assert!(limiter.exhausted_at(Budget::Reads, "ARS-84", "t2", t0).is_none(), "another token still has its share");
        assert!(limiter.exhausted_at(Budget::Reads, "ARS-84", "t1", t0 + Duration::from_secs(6)).is_none());
        assert!(limiter.exhausted_at(Budget::Writes, "ARS-84", "t1", t0).is_none(), "budgets apart");
    }

    #[test]
    fn budgets_are_counted_apart_and_zero_means_unlimited() {
        let limiter = RateLimiter::new(limits());
        let t0 = Instant::now();
        assert!(limiter.take_at(Budget::Writes, "CD-69", "t", 2, t0).is_ok());
        assert_eq!(limiter.take_at(Budget::Writes, "CD-69", "t", 1, t0).unwrap_err().budget, Budget::Writes);
        assert!(limiter.take_at(Budget::Reads, "CD-69", "t", 40, t0).is_ok());
        for _ in 0..1000 {
            assert!(limiter.take_at(Budget::Imports, "CD-69", "t", 1, t0).is_ok());
        }
    }

    #[test]
    fn a_refused_request_takes_nothing_and_instances_share_the_quota() {
        let limiter = RateLimiter::new(RateLimits { instances: 2, ..limits() });
        let t0 = Instant::now();
        // 100 / 2 instances = 50 for the institution, 25 for a token.
        assert!(limiter.take_at(Budget::Reads, "X", "a", 25, t0).is_ok());
        assert!(limiter.take_at(Budget::Reads, "X", "b", 20, t0).is_ok());
        // b's bucket would allow 5 more, the institution's 5: a request of 10 is refused and takes nothing.
        assert!(limiter.take_at(Budget::Reads, "X", "b", 10, t0).is_err());
        assert!(limiter.take_at(Budget::Reads, "X", "b", 5, t0).is_ok());
        let too_big = limiter.take_at(Budget::Reads, "Y", "c", 80, t0).unwrap_err();
        assert_eq!(too_big.retry_after, 10, "more than a bucket: come back after a window");
    }
}
