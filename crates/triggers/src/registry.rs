//! Which [`Source`] runs a trigger, by its config's type.
//!
//! Broker sources live in one module each, behind the cargo feature of the same name.
//! Each such module exports `pub(crate) fn source() -> Box<dyn Source>`; the source
//! reads its config from `ctx.trigger.config`.

use crate::source::{Source, SourceCtx};
use arcus_core::store::Store;
use arcus_core::trigger::TriggerConfig;
use async_trait::async_trait;
use std::sync::Arc;

// Broker sources are declared in lib.rs (one module per feature).

/// What sources may need besides their [`SourceCtx`].
#[derive(Clone)]
pub(crate) struct Deps {
    /// The metadata store (cron tick claims).
    pub store: Arc<dyn Store>,
    /// The wall clock (a test clock follows paused tokio time).
    pub clock: crate::cron::Clock,
}

/// The source that runs a trigger of this config.
pub(crate) fn source_for(config: &TriggerConfig, deps: &Deps) -> Box<dyn Source> {
    match config {
        TriggerConfig::Cron(_) => Box::new(crate::cron::CronSource::new(
            deps.store.clone(),
            deps.clock.clone(),
        )),
        TriggerConfig::Webhook(_) => Box::new(crate::webhook::WebhookSource),
        #[cfg(feature = "nats")]
        TriggerConfig::Nats(_) => crate::nats::source(),
        #[cfg(feature = "amqp")]
        TriggerConfig::Amqp(_) => crate::amqp::source(),
        #[cfg(feature = "mqtt")]
        TriggerConfig::Mqtt(_) => crate::mqtt::source(),
        #[cfg(feature = "redis")]
        TriggerConfig::Redis(_) => crate::redis::source(),
        #[cfg(not(feature = "nats"))]
        TriggerConfig::Nats(_) => Box::new(Unavailable("nats")),
        #[cfg(not(feature = "amqp"))]
        TriggerConfig::Amqp(_) => Box::new(Unavailable("amqp")),
        #[cfg(not(feature = "mqtt"))]
        TriggerConfig::Mqtt(_) => Box::new(Unavailable("mqtt")),
        #[cfg(not(feature = "redis"))]
        TriggerConfig::Redis(_) => Box::new(Unavailable("redis")),
    }
}

/// A trigger type this binary was built without: stays `connecting` with an error.
#[allow(dead_code)]
pub(crate) struct Unavailable(pub &'static str);

#[async_trait]
impl Source for Unavailable {
    async fn run(self: Box<Self>, ctx: SourceCtx) {
        ctx.status.connecting(format!(
            "this node was built without {} trigger support (cargo feature `{}`)",
            self.0, self.0
        ));
        ctx.cancel.cancelled().await;
    }
}
