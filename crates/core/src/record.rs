//! Invocation records and log lines.

use crate::model::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How an invocation ended. A closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvocationStatus {
    /// The function answered.
    Succeeded,
    /// The function trapped, crashed or reported an error.
    Failed,
    /// The function ran past its deadline and was stopped.
    TimedOut,
}

impl InvocationStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Succeeded => "succeeded",
            InvocationStatus::Failed => "failed",
            InvocationStatus::TimedOut => "timed_out",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            "timed_out" => Some(Self::TimedOut),
            _ => None,
        }
    }
}

/// What started an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A request on `/fn/...`.
    Http,
    /// `POST .../invoke` on the REST API.
    Api,
    /// An async invocation (`?mode=async`, or `x-arcus-invocation-type: event`).
    Async,
    /// A cron trigger.
    Cron,
    /// A NATS JetStream trigger.
    Nats,
    /// A RabbitMQ (AMQP) trigger.
    Amqp,
    /// An MQTT trigger.
    Mqtt,
    /// A Redis Streams trigger.
    Redis,
    /// A webhook (CloudEvents) trigger.
    Webhook,
    /// A destination record of another function's async invocation.
    Destination,
}

impl TriggerKind {
    /// Every kind, in wire order.
    pub const ALL: [TriggerKind; 10] = [
        Self::Http,
        Self::Api,
        Self::Async,
        Self::Cron,
        Self::Nats,
        Self::Amqp,
        Self::Mqtt,
        Self::Redis,
        Self::Webhook,
        Self::Destination,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Api => "api",
            Self::Async => "async",
            Self::Cron => "cron",
            Self::Nats => "nats",
            Self::Amqp => "amqp",
            Self::Mqtt => "mqtt",
            Self::Redis => "redis",
            Self::Webhook => "webhook",
            Self::Destination => "destination",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One execution of a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvocationRecord {
    /// Invocation id (also the request id of a sync call).
    pub id: String,
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
    /// Version run; `None` for the draft.
    pub version: Option<u32>,
    /// What started it.
    pub trigger: TriggerKind,
    /// How it ended.
    pub status: InvocationStatus,
    /// Error code when it did not succeed.
    pub error_code: Option<String>,
    /// HTTP status the function answered with, if any.
    pub http_status: Option<u16>,
    /// Wall-clock duration in microseconds.
    pub duration_us: u64,
    /// Whether the component had to be loaded for this call.
    pub cold_start: bool,
    /// Memory size the invocation ran with, MiB (what metering bills).
    #[serde(default)]
    pub memory_mb: u32,
    /// Bytes of response body the function sent back.
    #[serde(default)]
    pub egress_bytes: u64,
    /// W3C trace id (32 hex digits) the invocation ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// Microseconds its cold start took (loading the component, or starting the
    /// process until it asked for its first event); only on cold starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_duration_us: Option<u64>,
    /// Peak memory of the instance that ran it, MiB, where the runtime measures it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
}

/// The billed duration of a wall-clock duration in µs: rounded up to the next
/// millisecond.
pub fn billed_ms(duration_us: u64) -> u64 {
    duration_us.div_ceil(1000)
}

impl InvocationRecord {
    /// Billed duration: the wall-clock duration rounded up to the next millisecond.
    pub fn billed_ms(&self) -> u64 {
        billed_ms(self.duration_us)
    }

    /// Memory × billed duration, in MiB·ms (1 GB-second = 1,024,000 MiB·ms).
    pub fn mib_ms(&self) -> u64 {
        u64::from(self.memory_mb).saturating_mul(self.billed_ms())
    }
}

/// One line an invocation printed, as captured (before it is stored).
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedLine {
    /// Which stream.
    pub stream: LogStream,
    /// When it was captured.
    pub timestamp: Timestamp,
    /// The text, without the trailing newline.
    pub message: String,
}

/// What the recorder hands the store for one invocation: its record and its lines.
///
/// With `platform_lines`, the store also shows Lambda's `START`, `END` and `REPORT`
/// lines for it, derived from the record when logs are read (ADR 0019): `START` after
/// the lines its instance printed while starting (the first `init_lines`) and before
/// the others, at `started_at` or that last start-up line's time if later; after them,
/// `END` and `REPORT` at its end (`started_at + duration_us`, never before its last
/// line).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedInvocation {
    /// The record.
    pub record: InvocationRecord,
    /// Its lines in capture order.
    pub lines: Vec<CapturedLine>,
    /// Whether it ran (and so has platform lines); `false` for one refused before it
    /// reached an instance.
    pub platform_lines: bool,
    /// How many of `lines`, from the first, its instance printed while it started (a
    /// cold start's init phase): they come before `START`, as in Lambda.
    pub init_lines: usize,
}

impl From<InvocationRecord> for RecordedInvocation {
    /// A record with no lines and no platform lines.
    fn from(record: InvocationRecord) -> Self {
        Self {
            record,
            lines: Vec::new(),
            platform_lines: false,
            init_lines: 0,
        }
    }
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Guest standard output.
    Stdout,
    /// Guest standard error.
    Stderr,
    /// Lines written by the platform about the invocation (errors, traps).
    Platform,
}

impl LogStream {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Platform => "platform",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdout" => Some(Self::Stdout),
            "stderr" => Some(Self::Stderr),
            "platform" => Some(Self::Platform),
            _ => None,
        }
    }
}

/// One line of output of an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// The line's position in the store, increasing in write order (0 until stored).
    /// Resume a follow after it (`Last-Event-ID` / `?after=`).
    #[serde(default)]
    pub seq: u64,
    /// The invocation that wrote it.
    pub invocation_id: String,
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
    /// Which stream.
    pub stream: LogStream,
    /// When it was captured.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    /// The text, without the trailing newline.
    pub message: String,
    /// W3C trace id of the invocation that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}
