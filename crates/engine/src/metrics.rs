//! The engine's Prometheus metrics. Counters and histograms go through the `metrics`
//! facade (the node installs the exporter; without one these calls cost a no-op) and are
//! recorded when an invocation ends, not when its record is written, so they stay exact
//! when record writes fall behind. Gauges of the node's state (instances, in-flight,
//! queue depth) are sampled when `/metrics` is scraped: see [`crate::Engine::gauges`].
//!
//! Label cardinality stays bounded: app and function names, closed sets (status,
//! trigger, runtime, operation), and a `version` label only on
//! [`INVOCATIONS`], naming a version only while an alias points at it.

use arcus_core::events::EventStatus;
use arcus_core::model::{AliasTarget, Runtime};
use arcus_core::record::{InvocationRecord, TriggerKind};
use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Invocations that ended, by app, function, version, status and trigger.
pub const INVOCATIONS: &str = "arcus_invocations_total";
/// Wall-clock duration of invocations, seconds, by app and function.
pub const DURATION: &str = "arcus_invocation_duration_seconds";
/// Invocations that had to start an instance (load a component) first.
pub const COLD_STARTS: &str = "arcus_cold_starts_total";
/// How long cold starts took (component load, or process start to its first `next`).
pub const INIT_DURATION: &str = "arcus_init_duration_seconds";
/// Invocations refused for lack of capacity, by app, function and error code
/// (`throttled`, `no_capacity`).
pub const THROTTLES: &str = "arcus_throttles_total";
/// Seconds from an async or trigger event's acceptance to its first attempt, by trigger.
pub const TRIGGER_LAG: &str = "arcus_trigger_lag_seconds";
/// Duration of the store operations on the hot paths, seconds, by operation.
pub const STORE_DURATION: &str = "arcus_store_operation_duration_seconds";
/// Duration of code builds, seconds, by runtime and phase (`build`: at upload, a
/// validation and precompile or a dependency install; `load`: a component's load).
pub const COMPILE_DURATION: &str = "arcus_compile_duration_seconds";
/// Async events accepted.
pub const ASYNC_ACCEPTED: &str = "arcus_async_accepted_total";
/// Async attempts that ended, by app, function and the status they left the event in.
pub const ASYNC_ATTEMPTS: &str = "arcus_async_attempts_total";
/// Async attempts running on this node.
pub const ASYNC_IN_FLIGHT: &str = "arcus_async_in_flight";

/// Histograms whose samples are durations in seconds (the node gives them buckets).
pub const DURATION_HISTOGRAMS: [&str; 5] = [
    DURATION,
    INIT_DURATION,
    TRIGGER_LAG,
    STORE_DURATION,
    COMPILE_DURATION,
];

/// The `version` label of an invocation: its number while an alias (or an alias's
/// canary) points at it, `draft` for the draft, `other` for the rest.
pub(crate) fn version_label(
    version: Option<u32>,
    aliases: &HashMap<String, AliasTarget>,
) -> String {
    match version {
        None => "draft".to_string(),
        Some(v)
            if aliases
                .values()
                .any(|t| t.version == v || t.canary.as_ref().is_some_and(|c| c.version == v)) =>
        {
            v.to_string()
        }
        Some(_) => "other".to_string(),
    }
}

/// The series one function's invocations update, registered with the exporter on first
/// use: building a labelled key and looking it up per invocation cost more than the
/// rest of an invocation's metrics.
struct FunctionSeries {
    duration: Histogram,
    cold_starts: Counter,
    init: Histogram,
    /// Invocations by (version label, status, trigger).
    calls: Vec<((String, &'static str, &'static str), Counter)>,
}

impl FunctionSeries {
    fn new(app: &str, function: &str) -> Self {
        let labels = [("app", app.to_string()), ("function", function.to_string())];
        Self {
            duration: metrics::histogram!(DURATION, &labels),
            cold_starts: metrics::counter!(COLD_STARTS, &labels),
            init: metrics::histogram!(INIT_DURATION, &labels),
            calls: Vec::new(),
        }
    }

    fn calls(&mut self, r: &InvocationRecord, version: String) -> &Counter {
        let key = (version, r.status.as_str(), r.trigger.as_str());
        let at = match self.calls.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let counter = metrics::counter!(INVOCATIONS,
                    "app" => r.app.clone(), "function" => r.function.clone(),
                    "version" => key.0.clone(), "status" => key.1, "trigger" => key.2);
                self.calls.push((key, counter));
                self.calls.len() - 1
            }
        };
        &self.calls[at].1
    }
}

/// Registered series by app, then function.
static SERIES: LazyLock<Mutex<HashMap<String, HashMap<String, FunctionSeries>>>> =
    LazyLock::new(Mutex::default);

/// Counts one finished invocation (its cold start's duration from the record).
pub(crate) fn invocation(r: &InvocationRecord, version: String) {
    // Only counters and histograms are held: a poisoned map is still consistent.
    let mut apps = SERIES.lock().unwrap_or_else(|e| e.into_inner());
    if !apps.contains_key(&r.app) {
        apps.insert(r.app.clone(), HashMap::new());
    }
    let Some(functions) = apps.get_mut(&r.app) else {
        return;
    };
    if !functions.contains_key(&r.function) {
        let series = FunctionSeries::new(&r.app, &r.function);
        functions.insert(r.function.clone(), series);
    }
    let Some(series) = functions.get_mut(&r.function) else {
        return;
    };
    series.calls(r, version).increment(1);
    #[allow(clippy::cast_precision_loss)] // durations are far below 2^52 µs
    series.duration.record(r.duration_us as f64 / 1e6);
    if r.cold_start {
        series.cold_starts.increment(1);
        if let Some(us) = r.init_duration_us {
            #[allow(clippy::cast_precision_loss)]
            series.init.record(us as f64 / 1e6);
        }
    }
}

/// Counts an invocation refused with `code` before it started.
pub(crate) fn throttle(app: &str, function: &str, code: arcus_core::ErrorCode) {
    metrics::counter!(THROTTLES,
        "app" => app.to_string(), "function" => function.to_string(), "code" => code.as_str())
    .increment(1);
}

/// Records how long an event of `trigger` waited for its first attempt.
pub fn trigger_lag(trigger: TriggerKind, lag: Duration) {
    metrics::histogram!(TRIGGER_LAG, "trigger" => trigger.as_str()).record(lag.as_secs_f64());
}

/// Records how long the store operation `op` took since `started`.
pub(crate) fn store_op(op: &'static str, started: Instant) {
    metrics::histogram!(STORE_DURATION, "op" => op).record(started.elapsed().as_secs_f64());
}

/// Records how long a build (`phase` `build` or `load`) of `runtime` code took.
pub(crate) fn compile(runtime: Runtime, phase: &'static str, took: Duration) {
    metrics::histogram!(COMPILE_DURATION, "runtime" => runtime.as_str(), "phase" => phase)
        .record(took.as_secs_f64());
}

/// Counts accepted async events.
pub(crate) fn accepted(n: usize) {
    metrics::counter!(ASYNC_ACCEPTED).increment(u64::try_from(n).unwrap_or(u64::MAX));
}

/// Counts one ended async attempt.
pub(crate) fn attempt(app: &str, function: &str, status: EventStatus) {
    metrics::counter!(ASYNC_ATTEMPTS,
        "app" => app.to_string(), "function" => function.to_string(), "status" => status.as_str())
    .increment(1);
}

/// Moves the async in-flight gauge.
pub(crate) fn in_flight(delta: f64) {
    metrics::gauge!(ASYNC_IN_FLIGHT).increment(delta);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcus_core::model::Canary;

    #[test]
    fn version_labels_name_only_versions_an_alias_points_at() {
        let aliases = HashMap::from([
            (
                "live".to_string(),
                AliasTarget {
                    version: 3,
                    canary: Some(Canary {
                        version: 4,
                        weight: 10,
                    }),
                },
            ),
            (
                "beta".to_string(),
                AliasTarget {
                    version: 7,
                    canary: None,
                },
            ),
        ]);
        let label = |v| version_label(v, &aliases);
        assert_eq!(label(Some(3)), "3");
        assert_eq!(label(Some(4)), "4");
        assert_eq!(label(Some(7)), "7");
        assert_eq!(label(Some(5)), "other");
        assert_eq!(label(None), "draft");
    }
}
