//! The engine's Prometheus metrics, through the `metrics` facade (the node installs the
//! exporter; without one these calls cost a no-op). Recorded when an invocation ends,
//! not when its record is written, so they stay exact when record writes fall behind.
//! Labels are app, function, status, trigger: versions are left out to keep the
//! number of series bounded.

use arcus_core::events::EventStatus;
use arcus_core::record::InvocationRecord;

/// Invocations that ended, by app, function, status and trigger.
pub const INVOCATIONS: &str = "arcus_invocations_total";
/// Wall-clock duration of invocations, seconds, by app and function.
pub const DURATION: &str = "arcus_invocation_duration_seconds";
/// Invocations that had to load their code first, by app and function.
pub const COLD_STARTS: &str = "arcus_cold_starts_total";
/// Async events accepted.
pub const ASYNC_ACCEPTED: &str = "arcus_async_accepted_total";
/// Async attempts that ended, by app, function and the status they left the event in.
pub const ASYNC_ATTEMPTS: &str = "arcus_async_attempts_total";
/// Async attempts running on this node.
pub const ASYNC_IN_FLIGHT: &str = "arcus_async_in_flight";

/// Counts one finished invocation.
pub(crate) fn invocation(r: &InvocationRecord) {
    let (app, function) = (r.app.clone(), r.function.clone());
    metrics::counter!(INVOCATIONS,
        "app" => app.clone(), "function" => function.clone(),
        "status" => r.status.as_str(), "trigger" => r.trigger.as_str())
    .increment(1);
    #[allow(clippy::cast_precision_loss)] // durations are far below 2^52 µs
    let seconds = r.duration_us as f64 / 1e6;
    metrics::histogram!(DURATION, "app" => app.clone(), "function" => function.clone())
        .record(seconds);
    if r.cold_start {
        metrics::counter!(COLD_STARTS, "app" => app, "function" => function).increment(1);
    }
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
