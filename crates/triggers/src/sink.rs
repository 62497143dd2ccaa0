//! [`EventSink`]: how trigger events reach functions. The engine is the real sink;
//! tests use a fake one.

use arcus_core::Result;
use arcus_core::record::TriggerKind;
use arcus_engine::{Engine, Target};
use async_trait::async_trait;
use bytes::Bytes;

/// Where trigger events go: a synchronous invoke (brokers, which ack on success) or a
/// durable async enqueue (cron, webhooks).
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Invokes `target` with a JSON event; `Ok(body)` when it answered below 400.
    async fn invoke(&self, target: &Target, kind: TriggerKind, payload: Bytes) -> Result<Bytes>;
    /// Queues a JSON event as an async invocation; returns its id (the first id for an
    /// `idempotency_key` already used within 24 h).
    async fn enqueue(
        &self,
        target: &Target,
        kind: TriggerKind,
        payload: Bytes,
        idempotency_key: Option<String>,
    ) -> Result<String>;
}

#[async_trait]
impl EventSink for Engine {
    async fn invoke(&self, target: &Target, kind: TriggerKind, payload: Bytes) -> Result<Bytes> {
        self.invoke_json(target, kind, payload).await
    }

    async fn enqueue(
        &self,
        target: &Target,
        kind: TriggerKind,
        payload: Bytes,
        idempotency_key: Option<String>,
    ) -> Result<String> {
        Engine::enqueue(self, target, kind, payload, idempotency_key).await
    }
}
