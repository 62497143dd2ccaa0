//! Triggers: what invokes a function besides HTTP. Each trigger runs as one task of the
//! node's [`Manager`], driven by its [`Source`]: a cron schedule, a webhook endpoint or a
//! broker subscription (NATS JetStream, RabbitMQ, MQTT, Redis Streams; each behind a
//! cargo feature of the same name). Sources hand events to the engine through their
//! [`Invoker`].

mod batch;
mod cron;
mod crud;
mod manager;
mod registry;
mod secrets;
mod sink;
mod source;
pub mod validate;
pub mod webhook;

// Broker sources, one module per cargo feature.
#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "nats")]
pub mod nats;
pub mod publish;
#[cfg(feature = "redis")]
pub mod redis;

pub use cron::CronSchedule;
pub use manager::Manager;
pub use publish::Publishers;
pub use sink::EventSink;
pub use source::{Invoker, Source, SourceCtx, StatusHandle};
