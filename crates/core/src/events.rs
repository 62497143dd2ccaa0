//! Async invocations: the per-function retry policy and destinations (function-level,
//! not versioned), the stored event, its status and the view the API returns.

use crate::model::Timestamp;
use crate::record::TriggerKind;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest async invocation payload (256 KiB).
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 256 * 1024;
/// Default retries after a failed async attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Largest `max_retries`.
pub const MAX_MAX_RETRIES: u32 = 10;
/// Default and largest age of an event before it is dead-lettered unprocessed (6 h).
pub const MAX_EVENT_AGE_S: u32 = 6 * 3600;
/// Default first backoff between attempts (doubled per retry, with jitter).
pub const DEFAULT_RETRY_BASE_MS: u32 = 1000;
/// Largest backoff between two attempts (5 min).
pub const MAX_RETRY_BACKOFF_MS: u64 = 300_000;
/// Default async invocations of one function running at once on a node.
pub const DEFAULT_ASYNC_CONCURRENCY: u32 = 32;
/// Largest async concurrency per function.
pub const MAX_ASYNC_CONCURRENCY: u32 = 1000;
/// How long an `idempotency-key` maps to its first invocation.
pub const IDEMPOTENCY_WINDOW_S: i64 = 24 * 3600;
/// How long succeeded and cancelled events stay queryable (7 days).
pub const FINISHED_RETENTION_S: i64 = 7 * 24 * 3600;
/// How long dead-lettered events are kept for inspection and redrive (14 days).
pub const DEAD_LETTER_RETENTION_S: i64 = 14 * 24 * 3600;
/// Largest `idempotency-key` header in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;

/// How a function's async invocations are retried, throttled, ordered and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AsyncConfig {
    /// Retries after the first failed attempt; default 2, at most 10.
    pub max_retries: u32,
    /// Seconds after which an event not yet processed is dead-lettered; default and
    /// at most 21600 (6 h).
    pub max_event_age_s: u32,
    /// First backoff in ms; each retry doubles it (full jitter, capped at 5 min).
    pub retry_base_ms: u32,
    /// Async invocations of this function running at once on a node; default 32.
    pub concurrency: u32,
    /// Run events one at a time in the order they were accepted (FIFO).
    pub ordered: bool,
    /// Where a record of each successful invocation goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Destination>,
    /// Where a record of each event that finally failed goes (besides the dead letters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<Destination>,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            max_event_age_s: MAX_EVENT_AGE_S,
            retry_base_ms: DEFAULT_RETRY_BASE_MS,
            concurrency: DEFAULT_ASYNC_CONCURRENCY,
            ordered: false,
            on_success: None,
            on_failure: None,
        }
    }
}

impl AsyncConfig {
    /// Checks every range and destination.
    pub fn validate(&self) -> Result<()> {
        if self.max_retries > MAX_MAX_RETRIES {
            return Err(Error::invalid(format!(
                "async.max_retries must be between 0 and {MAX_MAX_RETRIES}"
            )));
        }
        if !(1..=MAX_EVENT_AGE_S).contains(&self.max_event_age_s) {
            return Err(Error::invalid(format!(
                "async.max_event_age_s must be between 1 and {MAX_EVENT_AGE_S}"
            )));
        }
        if !(10..=60_000).contains(&self.retry_base_ms) {
            return Err(Error::invalid(
                "async.retry_base_ms must be between 10 and 60000",
            ));
        }
        if !(1..=MAX_ASYNC_CONCURRENCY).contains(&self.concurrency) {
            return Err(Error::invalid(format!(
                "async.concurrency must be between 1 and {MAX_ASYNC_CONCURRENCY}"
            )));
        }
        for (field, d) in [
            ("on_success", &self.on_success),
            ("on_failure", &self.on_failure),
        ] {
            if let Some(d) = d {
                d.validate()
                    .map_err(|e| Error::invalid(format!("async.{field}: {}", e.message)))?;
            }
        }
        Ok(())
    }

    /// The backoff before retry number `retry` (1-based), given a uniform roll in
    /// `0.0..1.0`: full jitter over `[base·2^(retry-1) / 2, base·2^(retry-1)]`.
    pub fn backoff_ms(&self, retry: u32, roll: f64) -> u64 {
        let exp = u64::from(self.retry_base_ms)
            .saturating_mul(1u64 << retry.saturating_sub(1).min(20))
            .min(MAX_RETRY_BACKOFF_MS);
        let half = exp / 2;
        half + (roll.clamp(0.0, 1.0) * (exp - half) as f64) as u64
    }
}

/// Where an async invocation's result record is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Destination {
    /// Another function of the same app, invoked asynchronously with the record as event.
    Function {
        /// Function name.
        function: String,
        /// Qualifier; default `live`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qualifier: Option<String>,
    },
    /// `POST` of the record as JSON to a URL (http or https).
    Http {
        /// The URL.
        url: String,
    },
    /// A NATS subject the record is published on.
    Nats {
        /// Server, `nats://host:port`.
        url: String,
        /// Subject.
        subject: String,
    },
    /// An AMQP exchange the record is published to.
    Amqp {
        /// Server, `amqp://user:pass@host:port/vhost`.
        url: String,
        /// Exchange (empty for the default exchange).
        exchange: String,
        /// Routing key.
        #[serde(default)]
        routing_key: String,
    },
}

impl Destination {
    /// Checks names and URLs.
    pub fn validate(&self) -> Result<()> {
        let scheme_ok = |url: &str, schemes: &[&str]| {
            schemes
                .iter()
                .any(|s| url.strip_prefix(s).is_some_and(|r| r.starts_with("://")))
                && url.len() <= 2048
        };
        match self {
            Destination::Function {
                function,
                qualifier,
            } => {
                crate::names::validate_name("function", function)?;
                if let Some(q) = qualifier {
                    crate::names::Qualifier::parse(q)?;
                }
            }
            Destination::Http { url } if !scheme_ok(url, &["http", "https"]) => {
                return Err(Error::invalid("url must be an http:// or https:// URL"));
            }
            Destination::Nats { url, subject } => {
                if !scheme_ok(url, &["nats"]) {
                    return Err(Error::invalid("url must be a nats:// URL"));
                }
                if subject.is_empty() || subject.len() > 256 || subject.contains(' ') {
                    return Err(Error::invalid("subject must be 1–256 bytes without spaces"));
                }
            }
            Destination::Amqp { url, exchange, .. } => {
                if !scheme_ok(url, &["amqp", "amqps"]) {
                    return Err(Error::invalid("url must be an amqp:// URL"));
                }
                if exchange.len() > 255 {
                    return Err(Error::invalid("exchange must be at most 255 bytes"));
                }
            }
            Destination::Http { .. } => {}
        }
        Ok(())
    }
}

/// Where an async invocation is. A closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Accepted, waiting for its first attempt (or redriven).
    Queued,
    /// An attempt is running (leased by a worker).
    Running,
    /// An attempt succeeded.
    Succeeded,
    /// An attempt failed and a retry is scheduled (`next_attempt_at`).
    Failed,
    /// Retries or event age ran out: it is in the function's dead letters.
    DeadLettered,
    /// Cancelled (its function was deleted with `force=true`).
    Cancelled,
}

impl EventStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::DeadLettered,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether no more attempts will be made.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::DeadLettered | Self::Cancelled)
    }
}

/// How an event is delivered to the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// A JSON event (`POST /` for wasm, `event` for handlers).
    Json,
    /// An HTTP request accepted on `/fn/...` (JSON-encoded [`StoredRequest`]), replayed as is.
    Http,
    /// A destination record to deliver (JSON-encoded [`Delivery`]) for the function's
    /// `on_success`/`on_failure` (HTTP, NATS, AMQP); retried like an event.
    Delivery,
}

/// A destination record waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it goes.
    pub destination: Destination,
    /// The record (JSON).
    pub record: serde_json::Value,
}

/// An HTTP request kept for a later async attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRequest {
    /// Method.
    pub method: String,
    /// Path and query as the function sees them.
    pub uri: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body, base64.
    pub body_b64: String,
}

/// A new async invocation to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Invocation id (uuid v7).
    pub id: String,
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
    /// Qualifier text as given (`live` by default).
    pub qualifier: String,
    /// What produced it.
    pub trigger: TriggerKind,
    /// How the payload is delivered.
    pub kind: PayloadKind,
    /// The payload.
    pub payload: Vec<u8>,
    /// Repeats with the same key within 24 h return the first id.
    pub idempotency_key: Option<String>,
    /// When it was accepted.
    pub now: Timestamp,
    /// The W3C `traceparent` of the span that accepted it: every attempt runs in this
    /// trace, as a child of that span.
    pub traceparent: Option<String>,
}

/// A stored async invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What was accepted.
    pub new: NewEvent,
    /// Where it is.
    pub status: EventStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// When the next attempt may start (queued/failed), or when the current lease ends.
    pub due_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The last attempt's result (a response body) or error document.
    pub result: Option<serde_json::Value>,
    /// Error code of the last failed attempt.
    pub error_code: Option<String>,
}

/// How many unfinished events a function has in one status, for the queue metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
    /// Queued, failed (a retry is scheduled) or running.
    pub status: EventStatus,
    /// Events in that status.
    pub count: u64,
    /// When the oldest of them was accepted.
    pub oldest: Timestamp,
}

/// How one attempt of an event ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    /// Invocation id.
    pub id: String,
    /// The attempt number this result belongs to (a stale lease's result is ignored).
    pub attempt: u32,
    /// The status to move to (`succeeded`, `failed` with a retry, `dead_lettered`).
    pub status: EventStatus,
    /// For `failed`: when the retry may start.
    pub retry_at: Option<Timestamp>,
    /// Result or error document.
    pub result: Option<serde_json::Value>,
    /// Error code of a failure.
    pub error_code: Option<String>,
    /// Events to enqueue in the same transaction (function destinations, deliveries).
    pub follow_ups: Vec<NewEvent>,
    /// When it ended.
    pub now: Timestamp,
}

/// `GET /api/v1/invocations/{id}` and dead-letter lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvocationView {
    /// Invocation id.
    pub id: String,
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
    /// Qualifier it was sent to.
    pub qualifier: String,
    /// What produced it.
    pub trigger: TriggerKind,
    /// Where it is.
    pub status: EventStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// When it was accepted.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When the next attempt may start, for `queued` and `failed`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    /// The last attempt's response body (JSON, or a string) or error document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Error code of the last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// W3C trace id (32 hex digits) it runs under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl From<Event> for InvocationView {
    fn from(e: Event) -> Self {
        let waiting = matches!(e.status, EventStatus::Queued | EventStatus::Failed);
        let trace_id = e
            .new
            .traceparent
            .as_deref()
            .and_then(crate::trace::TraceParent::parse)
            .map(|t| t.trace_id_hex());
        Self {
            id: e.new.id,
            app: e.new.app,
            function: e.new.function,
            qualifier: e.new.qualifier,
            trigger: e.new.trigger,
            status: e.status,
            attempts: e.attempts,
            created_at: e.new.now,
            updated_at: e.updated_at,
            next_attempt_at: waiting.then_some(e.due_at),
            result: e.result,
            error_code: e.error_code,
            trace_id,
        }
    }
}

impl InvocationView {
    /// The view of a finished synchronous invocation, from its record.
    pub fn from_record(r: crate::record::InvocationRecord) -> Self {
        use crate::record::InvocationStatus;
        let finished = r.started_at
            + time::Duration::microseconds(i64::try_from(r.duration_us).unwrap_or(i64::MAX));
        Self {
            id: r.id,
            app: r.app,
            function: r.function,
            qualifier: r
                .version
                .map_or_else(|| "draft".to_string(), |v| v.to_string()),
            trigger: r.trigger,
            status: match r.status {
                InvocationStatus::Succeeded => EventStatus::Succeeded,
                InvocationStatus::Failed | InvocationStatus::TimedOut => EventStatus::Failed,
            },
            attempts: 1,
            created_at: r.started_at,
            updated_at: finished,
            next_attempt_at: None,
            result: None,
            error_code: r.error_code,
            trace_id: r.trace_id,
        }
    }
}

/// Answer of an async invoke (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The invocation id to poll at `GET /api/v1/invocations/{id}`.
    pub invocation_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let c = AsyncConfig::default();
        assert_eq!(c.backoff_ms(1, 0.0), 500);
        assert_eq!(c.backoff_ms(1, 1.0), 1000);
        assert_eq!(c.backoff_ms(2, 1.0), 2000);
        assert_eq!(c.backoff_ms(3, 0.5), 3000);
        assert_eq!(c.backoff_ms(30, 1.0), MAX_RETRY_BACKOFF_MS);
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = AsyncConfig {
            max_retries: 11,
            ..AsyncConfig::default()
        };
        assert!(c.validate().unwrap_err().message.contains("max_retries"));
        c.max_retries = 0;
        c.on_failure = Some(Destination::Http {
            url: "ftp://x".into(),
        });
        assert!(c.validate().unwrap_err().message.contains("on_failure"));
        c.on_failure = Some(Destination::Nats {
            url: "nats://127.0.0.1:4222".into(),
            subject: "a.b".into(),
        });
        c.validate().unwrap();
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "queued",
            "running",
            "succeeded",
            "failed",
            "dead_lettered",
            "cancelled",
        ] {
            assert_eq!(EventStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(EventStatus::parse("lost").is_none());
    }
}
