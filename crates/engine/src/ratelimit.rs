//! Request-rate limits: a token bucket (GCRA, the `governor` crate) per function and per
//! app, on this node only, checked before a request does any work.
//!
//! Buckets are keyed by names and built on first use from the function's
//! `scaling.rate_limit_*` and the app's `quotas.rate_limit_*`; a changed limit gets a
//! fresh bucket. Memory stays bounded: deleting a function or app drops its buckets, a
//! removed limit drops its bucket, and the retention pass drops buckets idle long enough
//! to be full again (which a new bucket also is, so nothing is forgotten).

use crate::Engine;
use arcus_core::Result;
use arcus_core::scaling::RateLimit;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each update is one insert/remove or a limiter check: consistent after a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One bucket and the limit it was built from.
struct Bucket {
    limit: RateLimit,
    limiter: DefaultDirectRateLimiter,
    last_used: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        let rps = NonZeroU32::new(limit.rps).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limit.burst).unwrap_or(rps);
        Self {
            limit,
            limiter: DefaultDirectRateLimiter::direct(Quota::per_second(rps).allow_burst(burst)),
            last_used: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        self.last_used = now;
        self.limiter
            .check()
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Whether the bucket has refilled completely since it was last used.
    fn idle_full(&self, now: Instant) -> bool {
        let refill =
            Duration::from_secs_f64(f64::from(self.limit.burst) / f64::from(self.limit.rps));
        now.duration_since(self.last_used) > refill
    }
}

/// Takes a token from the bucket of `key` in `map` for `limit` (none: no bucket).
fn take<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Bucket>,
    key: K,
    limit: Option<RateLimit>,
    now: Instant,
) -> Option<Duration> {
    let Some(limit) = limit else {
        map.remove(&key);
        return None;
    };
    let bucket = map.entry(key).or_insert_with(|| Bucket::new(limit));
    if bucket.limit != limit {
        *bucket = Bucket::new(limit);
    }
    bucket.take(now)
}

/// A request refused by a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRefusal {
    /// Seconds until a retry may pass (rounded up, at least 1): `Retry-After`.
    pub retry_after_s: u64,
    /// What was over its limit, for the error message.
    pub message: String,
}

/// The node's rate buckets.
#[derive(Default)]
pub(crate) struct RateLimits {
    apps: Mutex<HashMap<String, Bucket>>,
    functions: Mutex<HashMap<(String, String), Bucket>>,
}

impl RateLimits {
    /// Takes one request from the function's bucket, then the app's (a request refused
    /// by the app's limit has used its function's token, as with several nginx zones).
    fn check(
        &self,
        app: &str,
        function: &str,
        fn_limit: Option<RateLimit>,
        app_limit: Option<RateLimit>,
    ) -> Option<RateRefusal> {
        let now = Instant::now();
        let refuse = |wait: Duration, what: String, limit: Option<RateLimit>| {
            let rps = limit.map_or(0, |l| l.rps);
            RateRefusal {
                retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
                message: format!("{what} is over its rate limit of {rps} requests/s"),
            }
        };
        let key = (app.to_string(), function.to_string());
        if let Some(wait) = take(&mut lock(&self.functions), key, fn_limit, now) {
            return Some(refuse(
                wait,
                format!("function `{app}/{function}`"),
                fn_limit,
            ));
        }
        take(&mut lock(&self.apps), app.to_string(), app_limit, now)
            .map(|wait| refuse(wait, format!("app `{app}`"), app_limit))
    }

    /// Drops a function's bucket (it was deleted).
    pub fn forget(&self, app: &str, function: &str) {
        lock(&self.functions).remove(&(app.to_string(), function.to_string()));
    }

    /// Drops an app's buckets and its functions' (it was deleted).
    pub fn forget_app(&self, app: &str) {
        lock(&self.apps).remove(app);
        lock(&self.functions).retain(|(a, _), _| a != app);
    }

    /// Drops buckets that have refilled completely since their last use.
    pub fn prune_idle(&self) {
        let now = Instant::now();
        lock(&self.apps).retain(|_, b| !b.idle_full(now));
        lock(&self.functions).retain(|_, b| !b.idle_full(now));
    }

    /// How many buckets are held (apps, functions).
    pub fn len(&self) -> (usize, usize) {
        (lock(&self.apps).len(), lock(&self.functions).len())
    }
}

impl Engine {
    /// Admits one request of a function (an HTTP call or an API invoke) against its own
    /// and its app's rate limits, read from the routing cache: `Ok(None)` when it may
    /// run, `Ok(Some(refusal))` when a limit is reached; `app_not_found` /
    /// `function_not_found` when it does not exist.
    pub async fn admit_request(&self, app: &str, function: &str) -> Result<Option<RateRefusal>> {
        let route = self.route(app, function).await?;
        Ok(self.inner.rates.check(
            app,
            function,
            route.function.meta.scaling.rate_limit(),
            route.quotas.rate_limit(),
        ))
    }

    /// Rate buckets held on this node (apps, functions): bounded by what exists and is
    /// in use.
    pub fn rate_buckets(&self) -> (usize, usize) {
        self.inner.rates.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FIVE: RateLimit = RateLimit { rps: 1, burst: 5 };

    #[test]
    fn buckets_refuse_past_the_burst_and_stay_apart() {
        let r = RateLimits::default();
        for _ in 0..5 {
            assert_eq!(r.check("a", "f", Some(FIVE), None), None);
        }
        let refused = r.check("a", "f", Some(FIVE), None).unwrap();
        assert_eq!(refused.retry_after_s, 1);
        assert!(refused.message.contains("a/f"), "{}", refused.message);
        assert_eq!(r.check("a", "g", None, None), None);
        // A changed limit starts a fresh bucket; a removed one drops it.
        let more = RateLimit { rps: 1, burst: 6 };
        assert_eq!(r.check("a", "f", Some(more), None), None);
        assert_eq!(r.len(), (0, 1));
        assert_eq!(r.check("a", "f", None, None), None);
        assert_eq!(r.len(), (0, 0));
    }

    #[test]
    fn the_app_bucket_caps_the_sum_and_deletions_drop_buckets() {
        let r = RateLimits::default();
        let app = Some(RateLimit { rps: 1, burst: 3 });
        let admitted = ["f", "g", "f", "g", "f", "g"]
            .iter()
            .filter(|f| r.check("a", f, None, app).is_none())
            .count();
        assert_eq!(admitted, 3);
        assert!(
            r.check("a", "h", None, app)
                .unwrap()
                .message
                .contains("app `a`")
        );
        r.check("a", "f", Some(FIVE), app);
        r.check("b", "f", Some(FIVE), None);
        assert_eq!(r.len(), (1, 2));
        r.forget("b", "f");
        assert_eq!(r.len(), (1, 1));
        r.forget_app("a");
        assert_eq!(r.len(), (0, 0));
    }

    #[test]
    fn idle_full_buckets_are_pruned() {
        let r = RateLimits::default();
        let fast = RateLimit {
            rps: 1_000_000,
            burst: 1,
        };
        r.check("a", "f", Some(fast), None);
        r.check("a", "g", Some(FIVE), None);
        std::thread::sleep(Duration::from_millis(5));
        r.prune_idle();
        assert_eq!(r.len(), (0, 1));
    }
}
