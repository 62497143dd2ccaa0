//! Per-function scaling settings (function-level, not versioned) and their validation.

use crate::limits::{MAX_LOG_RETENTION_DAYS, MAX_LOG_RETENTION_MB};
use crate::model::Runtime;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest `min_instances`.
pub const MAX_MIN_INSTANCES: u32 = 100;
/// Largest `max_instances`.
pub const MAX_MAX_INSTANCES: u32 = 1000;
/// Default `max_instances` when none is set.
pub const DEFAULT_MAX_INSTANCES: u32 = 100;
/// Largest `concurrency_per_instance` of a wasm function.
pub const MAX_WASM_CONCURRENCY: u32 = 1000;
/// Default concurrent requests per loaded wasm component.
pub const DEFAULT_WASM_CONCURRENCY: u32 = 100;
/// Default fraction of an instance's concurrency the autoscaler aims to use.
pub const DEFAULT_TARGET_UTILIZATION: f64 = 0.7;
/// Default idle time before an instance is reclaimed, in seconds.
pub const DEFAULT_KEEP_ALIVE_S: u32 = 300;
/// Largest `keep_alive_s` (one day).
pub const MAX_KEEP_ALIVE_S: u32 = 86_400;
/// Default time a request may wait for capacity, in milliseconds.
pub const DEFAULT_QUEUE_TIMEOUT_MS: u32 = 10_000;
/// Largest `queue_timeout_ms` (the largest function timeout).
pub const MAX_QUEUE_TIMEOUT_MS: u32 = 900_000;

/// Largest `max_instances` of an app quota.
pub const MAX_APP_INSTANCES: u32 = 100_000;
/// Largest `max_memory_mb` of an app quota (10 TiB).
pub const MAX_APP_MEMORY_MB: u32 = 10 << 20;
/// Largest `rate_limit_rps` of an app or a function.
pub const MAX_RATE_LIMIT_RPS: u32 = 1_000_000;
/// Largest `rate_limit_burst` of an app or a function.
pub const MAX_RATE_LIMIT_BURST: u32 = 1_000_000;

/// A request-rate limit: a token bucket refilled at `rps` tokens a second holding at
/// most `burst` (default `rps`, one second's worth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub rps: u32,
    /// Requests that may arrive at once after an idle spell.
    pub burst: u32,
}

impl RateLimit {
    /// The limit `rps`/`burst` settings describe (`None`: no limit); `what` names the
    /// settings in errors (`quotas`, `scaling`).
    fn from_settings(what: &str, rps: Option<u32>, burst: Option<u32>) -> Result<Option<Self>> {
        let Some(rps) = rps else {
            if burst.is_some() {
                return Err(Error::invalid(format!(
                    "{what}.rate_limit_burst needs {what}.rate_limit_rps"
                )));
            }
            return Ok(None);
        };
        if rps == 0 || rps > MAX_RATE_LIMIT_RPS {
            return Err(Error::invalid(format!(
                "{what}.rate_limit_rps must be between 1 and {MAX_RATE_LIMIT_RPS}"
            )));
        }
        let burst = burst.unwrap_or(rps);
        if burst == 0 || burst > MAX_RATE_LIMIT_BURST {
            return Err(Error::invalid(format!(
                "{what}.rate_limit_burst must be between 1 and {MAX_RATE_LIMIT_BURST}"
            )));
        }
        Ok(Some(Self { rps, burst }))
    }
}

/// Per-app limits on what the app's functions run at once on a node: each running
/// invocation occupies one instance (a fresh wasm instance, or a process) and its
/// function's `memory_mb`. Unset means unlimited. Past a quota, invocations queue like
/// past a function's `max_instances`, then get 429 `throttled`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AppQuotas {
    /// Most instances running at once across the app's functions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    /// Most memory, in MiB, of the instances running at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u32>,
    /// Days log lines and invocation records are kept; default
    /// [`DEFAULT_LOG_RETENTION_DAYS`](crate::limits::DEFAULT_LOG_RETENTION_DAYS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_retention_days: Option<u32>,
    /// MiB of log messages kept (oldest lines go first past it); default
    /// [`DEFAULT_LOG_RETENTION_MB`](crate::limits::DEFAULT_LOG_RETENTION_MB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_retention_mb: Option<u32>,
    /// Requests per second the app's functions may receive together on a node (HTTP
    /// and API invokes; a token bucket); unset: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_rps: Option<u32>,
    /// Requests the app's bucket holds; default `rate_limit_rps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<u32>,
}

impl AppQuotas {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if self
            .max_instances
            .is_some_and(|n| n == 0 || n > MAX_APP_INSTANCES)
        {
            return Err(Error::invalid(format!(
                "quotas.max_instances must be between 1 and {MAX_APP_INSTANCES}"
            )));
        }
        if self
            .max_memory_mb
            .is_some_and(|m| !(crate::limits::MIN_WASM_MEMORY_MB..=MAX_APP_MEMORY_MB).contains(&m))
        {
            return Err(Error::invalid(format!(
                "quotas.max_memory_mb must be between {} and {MAX_APP_MEMORY_MB}",
                crate::limits::MIN_WASM_MEMORY_MB
            )));
        }
        if self
            .log_retention_days
            .is_some_and(|d| d == 0 || d > MAX_LOG_RETENTION_DAYS)
        {
            return Err(Error::invalid(format!(
                "quotas.log_retention_days must be between 1 and {MAX_LOG_RETENTION_DAYS}"
            )));
        }
        if self
            .log_retention_mb
            .is_some_and(|m| m == 0 || m > MAX_LOG_RETENTION_MB)
        {
            return Err(Error::invalid(format!(
                "quotas.log_retention_mb must be between 1 and {MAX_LOG_RETENTION_MB}"
            )));
        }
        RateLimit::from_settings("quotas", self.rate_limit_rps, self.rate_limit_burst)?;
        Ok(())
    }

    /// The app's request-rate limit, if any (call on validated quotas; invalid settings
    /// read as none).
    pub fn rate_limit(&self) -> Option<RateLimit> {
        RateLimit::from_settings("quotas", self.rate_limit_rps, self.rate_limit_burst)
            .ok()
            .flatten()
    }

    /// Days of logs and records kept (the override or the default).
    pub fn retention_days(&self) -> u32 {
        self.log_retention_days
            .unwrap_or(crate::limits::DEFAULT_LOG_RETENTION_DAYS)
    }

    /// Bytes of log messages kept (the override or the default).
    pub fn retention_bytes(&self) -> u64 {
        u64::from(
            self.log_retention_mb
                .unwrap_or(crate::limits::DEFAULT_LOG_RETENTION_MB),
        ) << 20
    }
}

/// How a function scales. Every field has a documented default (`docs/limits.md`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Scaling {
    /// Instances kept warm even without traffic (pre-warmed at publish); default 0.
    pub min_instances: u32,
    /// Most instances of the function on a node; default 100.
    pub max_instances: u32,
    /// Concurrent requests one instance serves: wasm default 100 per loaded component;
    /// process runtimes always 1. `None` means the runtime's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_per_instance: Option<u32>,
    /// Fraction of `concurrency_per_instance` the autoscaler aims at; default 0.7.
    pub target_utilization: f64,
    /// Idle seconds before an instance is reclaimed; default 300.
    pub keep_alive_s: u32,
    /// How long a request may wait for capacity before 429/503; default 10000 ms.
    pub queue_timeout_ms: u32,
    /// Requests per second the function may receive on a node (HTTP and API invokes;
    /// a token bucket); unset: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_rps: Option<u32>,
    /// Requests the function's bucket holds; default `rate_limit_rps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<u32>,
}

impl Default for Scaling {
    fn default() -> Self {
        Self {
            min_instances: 0,
            max_instances: DEFAULT_MAX_INSTANCES,
            concurrency_per_instance: None,
            target_utilization: DEFAULT_TARGET_UTILIZATION,
            keep_alive_s: DEFAULT_KEEP_ALIVE_S,
            queue_timeout_ms: DEFAULT_QUEUE_TIMEOUT_MS,
            rate_limit_rps: None,
            rate_limit_burst: None,
        }
    }
}

impl Scaling {
    /// Concurrent requests per instance for `runtime`.
    pub fn concurrency(&self, runtime: Runtime) -> u32 {
        if runtime.is_process() {
            1
        } else {
            self.concurrency_per_instance
                .unwrap_or(DEFAULT_WASM_CONCURRENCY)
        }
    }

    /// In-flight requests per instance the autoscaler aims at (at least a small fraction).
    pub fn target_per_instance(&self, runtime: Runtime) -> f64 {
        (f64::from(self.concurrency(runtime)) * self.target_utilization).max(0.01)
    }

    /// Checks the ranges and their relations for a function of `runtime`.
    pub fn validate(&self, runtime: Runtime) -> Result<()> {
        if self.min_instances > MAX_MIN_INSTANCES {
            return Err(Error::invalid(format!(
                "scaling.min_instances must be at most {MAX_MIN_INSTANCES}"
            )));
        }
        if self.max_instances == 0 || self.max_instances > MAX_MAX_INSTANCES {
            return Err(Error::invalid(format!(
                "scaling.max_instances must be between 1 and {MAX_MAX_INSTANCES}"
            )));
        }
        if self.min_instances > self.max_instances {
            return Err(Error::invalid(
                "scaling.min_instances must not exceed scaling.max_instances",
            ));
        }
        match (runtime.is_process(), self.concurrency_per_instance) {
            (true, Some(c)) if c != 1 => {
                return Err(Error::invalid(
                    "scaling.concurrency_per_instance of a process function is 1 (one invocation per process)",
                ));
            }
            (false, Some(c)) if c == 0 || c > MAX_WASM_CONCURRENCY => {
                return Err(Error::invalid(format!(
                    "scaling.concurrency_per_instance must be between 1 and {MAX_WASM_CONCURRENCY}"
                )));
            }
            _ => {}
        }
        if !(self.target_utilization > 0.0 && self.target_utilization <= 1.0) {
            return Err(Error::invalid(
                "scaling.target_utilization must be in (0, 1]",
            ));
        }
        if self.keep_alive_s > MAX_KEEP_ALIVE_S {
            return Err(Error::invalid(format!(
                "scaling.keep_alive_s must be at most {MAX_KEEP_ALIVE_S}"
            )));
        }
        if self.queue_timeout_ms > MAX_QUEUE_TIMEOUT_MS {
            return Err(Error::invalid(format!(
                "scaling.queue_timeout_ms must be at most {MAX_QUEUE_TIMEOUT_MS}"
            )));
        }
        RateLimit::from_settings("scaling", self.rate_limit_rps, self.rate_limit_burst)?;
        Ok(())
    }

    /// The function's request-rate limit, if any (invalid settings read as none).
    pub fn rate_limit(&self) -> Option<RateLimit> {
        RateLimit::from_settings("scaling", self.rate_limit_rps, self.rate_limit_burst)
            .ok()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_quotas_validate_their_ranges() {
        assert!(AppQuotas::default().validate().is_ok());
        let q: AppQuotas = serde_json::from_str(r#"{"max_instances": 4}"#).unwrap();
        assert_eq!((q.max_instances, q.max_memory_mb), (Some(4), None));
        assert!(q.validate().is_ok());
        for bad in [
            r#"{"max_instances": 0}"#,
            r#"{"max_memory_mb": 1}"#,
            r#"{"max_memory_mb": 4294967295}"#,
            r#"{"log_retention_days": 0}"#,
            r#"{"log_retention_days": 366}"#,
            r#"{"log_retention_mb": 0}"#,
            r#"{"log_retention_mb": 4294967295}"#,
            r#"{"rate_limit_rps": 0}"#,
            r#"{"rate_limit_rps": 1000001}"#,
            r#"{"rate_limit_burst": 5}"#,
            r#"{"rate_limit_rps": 5, "rate_limit_burst": 0}"#,
        ] {
            let q: AppQuotas = serde_json::from_str(bad).unwrap();
            assert!(q.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<AppQuotas>(r#"{"instances": 2}"#).is_err());
        let r: AppQuotas =
            serde_json::from_str(r#"{"log_retention_days": 1, "log_retention_mb": 2}"#).unwrap();
        assert!(r.validate().is_ok());
        assert_eq!((r.retention_days(), r.retention_bytes()), (1, 2 << 20));
        assert_eq!(AppQuotas::default().retention_days(), 7);
        assert_eq!(AppQuotas::default().retention_bytes(), 1 << 30);
        let rated: AppQuotas = serde_json::from_str(r#"{"rate_limit_rps": 5}"#).unwrap();
        assert!(rated.validate().is_ok());
        assert_eq!(rated.rate_limit(), Some(RateLimit { rps: 5, burst: 5 }));
        assert_eq!(AppQuotas::default().rate_limit(), None);
        let s: Scaling =
            serde_json::from_str(r#"{"rate_limit_rps": 2, "rate_limit_burst": 9}"#).unwrap();
        assert!(s.validate(Runtime::Wasm).is_ok());
        assert_eq!(s.rate_limit(), Some(RateLimit { rps: 2, burst: 9 }));
    }

    #[test]
    fn defaults_and_runtime_concurrency() {
        let s = Scaling::default();
        assert!(s.validate(Runtime::Wasm).is_ok());
        assert_eq!(s.concurrency(Runtime::Wasm), 100);
        assert_eq!(s.concurrency(Runtime::Python3), 1);
        assert!((s.target_per_instance(Runtime::Wasm) - 70.0).abs() < 1e-9);
        let parsed: Scaling = serde_json::from_str(r#"{"min_instances": 2}"#).unwrap();
        assert_eq!((parsed.min_instances, parsed.max_instances), (2, 100));
        assert!(serde_json::from_str::<Scaling>(r#"{"minimum": 2}"#).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let ok = Scaling::default();
        for (bad, runtime) in [
            (
                Scaling {
                    min_instances: 101,
                    max_instances: 200,
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    max_instances: 0,
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    max_instances: 1001,
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    min_instances: 5,
                    max_instances: 4,
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    concurrency_per_instance: Some(2),
                    ..ok
                },
                Runtime::Node,
            ),
            (
                Scaling {
                    concurrency_per_instance: Some(0),
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    target_utilization: 0.0,
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    target_utilization: 1.5,
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    target_utilization: f64::NAN,
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    keep_alive_s: 86_401,
                    ..ok
                },
                Runtime::Wasm,
            ),
            (
                Scaling {
                    queue_timeout_ms: 900_001,
                    ..ok
                },
                Runtime::Wasm,
            ),
        ] {
            assert!(bad.validate(runtime).is_err(), "{bad:?}");
        }
        let process = Scaling {
            concurrency_per_instance: Some(1),
            ..ok
        };
        assert!(process.validate(Runtime::Python3).is_ok());
    }
}
