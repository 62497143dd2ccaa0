//! Triggers: what invokes a function besides HTTP — a cron schedule, a broker
//! subscription (NATS JetStream, RabbitMQ, MQTT, Redis Streams) or a webhook. A trigger
//! is function-level (not versioned) and targets a qualifier (default `live`).
//!
//! Secrets in a config (`password`, `secret`) are write-only: [`TriggerConfig::redacted`]
//! removes them from everything the API returns. Broker URLs may not carry credentials;
//! they go in `username`/`password`.

use crate::model::Timestamp;
use crate::record::TriggerKind;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest number of triggers per function.
pub const MAX_TRIGGERS_PER_FUNCTION: usize = 16;
/// Largest `batch_size` of a broker trigger.
pub const MAX_BATCH_SIZE: u32 = 1000;
/// Largest `batch_window_ms` of a broker trigger.
pub const MAX_BATCH_WINDOW_MS: u32 = 10_000;

/// A stored trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Trigger {
    /// Unique id.
    pub id: String,
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
    /// Name, unique per function, `[a-z0-9][a-z0-9-]{0,62}`.
    pub name: String,
    /// Qualifier the events are sent to; default `live`.
    pub qualifier: String,
    /// Whether it delivers events.
    pub enabled: bool,
    /// What it listens to.
    pub config: TriggerConfig,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// The source of a trigger's events, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TriggerConfig {
    /// A schedule.
    Cron(CronConfig),
    /// A JetStream durable consumer.
    Nats(NatsConfig),
    /// A RabbitMQ queue.
    Amqp(AmqpConfig),
    /// An MQTT topic filter at QoS 1.
    Mqtt(MqttConfig),
    /// A Redis Streams consumer group.
    Redis(RedisConfig),
    /// An HTTP endpoint accepting CloudEvents.
    Webhook(WebhookConfig),
}

/// What a cron trigger does about ticks missed while the node was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissedTicks {
    /// Drop them; fire at the next tick.
    #[default]
    Skip,
    /// Fire once for all of them, at start-up.
    FireOnce,
}

/// `type: cron`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CronConfig {
    /// Cron expression with seconds: `sec min hour day-of-month month day-of-week [year]`,
    /// or the standard five fields (seconds are then 0).
    pub schedule: String,
    /// IANA time zone; default `UTC`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Missed-tick policy; default `skip`.
    #[serde(default)]
    pub missed: MissedTicks,
    /// JSON given to the function as `payload` in each event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

fn utc() -> String {
    "UTC".into()
}

/// How a broker trigger groups messages into one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Batching {
    /// Messages per invocation, 1–1000; default 1 (the event is then the message itself,
    /// otherwise `{"records": [...]}`).
    pub batch_size: u32,
    /// How long to wait for a batch to fill, 0–10000 ms; default 0.
    pub batch_window_ms: u32,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            batch_size: 1,
            batch_window_ms: 0,
        }
    }
}

/// Credentials of a broker (write-only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Credentials {
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password; never returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `type: nats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server, `nats://host:port`.
    pub url: String,
    /// JetStream stream.
    pub stream: String,
    /// Durable consumer name (created if missing).
    pub consumer: String,
    /// Subject filter; default the whole stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Credentials.
    #[serde(default, flatten)]
    pub auth: Credentials,
    /// Batching.
    #[serde(default, flatten)]
    pub batching: Batching,
}

/// `type: amqp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// Server, `amqp://host:port[/vhost]`.
    pub url: String,
    /// Queue consumed (declared durable if missing).
    pub queue: String,
    /// Credentials.
    #[serde(default, flatten)]
    pub auth: Credentials,
    /// Batching.
    #[serde(default, flatten)]
    pub batching: Batching,
}

/// `type: mqtt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Server, `mqtt://host:port`.
    pub url: String,
    /// Topic filter (`+` and `#` allowed), subscribed at QoS 1.
    pub topic: String,
    /// Client id (a persistent session); default derived from the trigger id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Credentials.
    #[serde(default, flatten)]
    pub auth: Credentials,
    /// Batching.
    #[serde(default, flatten)]
    pub batching: Batching,
}

/// `type: redis`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Server, `redis://host:port[/db]`.
    pub url: String,
    /// Stream key.
    pub stream: String,
    /// Consumer group (created at the stream's end if missing).
    pub group: String,
    /// Credentials.
    #[serde(default, flatten)]
    pub auth: Credentials,
    /// Batching.
    #[serde(default, flatten)]
    pub batching: Batching,
}

/// `type: webhook`: `POST /hooks/{trigger id}` accepts CloudEvents (binary or
/// structured mode) and queues each as an async invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// When set, requests must carry `x-arcus-signature: sha256=<hex HMAC-SHA256 of the
    /// body>`; never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl TriggerConfig {
    /// The kind recorded on the invocations it starts.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Self::Cron(_) => TriggerKind::Cron,
            Self::Nats(_) => TriggerKind::Nats,
            Self::Amqp(_) => TriggerKind::Amqp,
            Self::Mqtt(_) => TriggerKind::Mqtt,
            Self::Redis(_) => TriggerKind::Redis,
            Self::Webhook(_) => TriggerKind::Webhook,
        }
    }

    /// The config without its write-only secrets (what the API returns). Whether a
    /// secret is set shows as `"********"`.
    pub fn redacted(&self) -> Self {
        const MASK: &str = "********";
        let mask = |s: &Option<String>| s.as_ref().map(|_| MASK.to_string());
        let mut c = self.clone();
        match &mut c {
            Self::Cron(_) => {}
            Self::Nats(x) => x.auth.password = mask(&x.auth.password),
            Self::Amqp(x) => x.auth.password = mask(&x.auth.password),
            Self::Mqtt(x) => x.auth.password = mask(&x.auth.password),
            Self::Redis(x) => x.auth.password = mask(&x.auth.password),
            Self::Webhook(x) => x.secret = mask(&x.secret),
        }
        c
    }

    /// The batching of a broker trigger.
    pub fn batching(&self) -> Option<Batching> {
        match self {
            Self::Nats(x) => Some(x.batching),
            Self::Amqp(x) => Some(x.batching),
            Self::Mqtt(x) => Some(x.batching),
            Self::Redis(x) => Some(x.batching),
            Self::Cron(_) | Self::Webhook(_) => None,
        }
    }
}

impl Batching {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(Error::invalid(format!(
                "config.batch_size must be between 1 and {MAX_BATCH_SIZE}"
            )));
        }
        if self.batch_window_ms > MAX_BATCH_WINDOW_MS {
            return Err(Error::invalid(format!(
                "config.batch_window_ms must be at most {MAX_BATCH_WINDOW_MS}"
            )));
        }
        Ok(())
    }
}

/// Connection state of a trigger on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerState {
    /// Receiving events (a broker connection is up; a schedule is armed; a webhook listens).
    Connected,
    /// Trying to connect (see `last_error`), with backoff.
    Connecting,
    /// Disabled: delivers nothing.
    Disabled,
}

/// What a trigger is doing now, on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TriggerStatus {
    /// Connection state.
    pub state: TriggerState,
    /// The last connection or delivery error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Messages waiting in the broker for this trigger, when the broker says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// Events delivered to the function since the node started.
    pub delivered: u64,
    /// Deliveries that failed since the node started.
    pub failed: u64,
    /// Next fire time of a cron trigger.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_fire_at: Option<Timestamp>,
}

/// A trigger with its status, as the API returns it (secrets redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TriggerView {
    /// The trigger.
    #[serde(flatten)]
    pub trigger: Trigger,
    /// Its status.
    pub status: TriggerStatus,
    /// The public path events are posted to (webhook triggers): `/hooks/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `POST .../triggers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    /// Name, unique per function.
    pub name: String,
    /// What it listens to.
    pub config: TriggerConfig,
    /// Qualifier; default `live`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `PATCH .../triggers/{name}`: present fields are replaced. A new `config` of the same
/// type without a password or secret keeps the stored one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTrigger {
    /// New config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<TriggerConfig>,
    /// New qualifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// Enable or disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_by_type_and_redact_secrets() {
        let c: TriggerConfig = serde_json::from_value(serde_json::json!({
            "type": "amqp", "url": "amqp://127.0.0.1:5672", "queue": "q",
            "username": "guest", "password": "guest", "batch_size": 10
        }))
        .unwrap();
        let TriggerConfig::Amqp(a) = &c else {
            panic!("not amqp")
        };
        assert_eq!(a.batching.batch_size, 10);
        let shown = serde_json::to_value(c.redacted()).unwrap();
        assert_eq!(shown["password"], "********");
        assert_eq!(shown["username"], "guest");
        let bad = serde_json::from_value::<TriggerConfig>(serde_json::json!({"type": "kafka"}));
        assert!(bad.unwrap_err().to_string().contains("kafka"));
    }
}
