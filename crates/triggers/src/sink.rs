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
    /// `secret_not_found` unless every named secret exists in `app` (a sink without
    /// secrets knows none).
    async fn check_secrets(&self, app: &str, names: &[String]) -> Result<()> {
        let _ = app;
        match names.first() {
            None => Ok(()),
            Some(name) => Err(arcus_core::Error::new(
                arcus_core::ErrorCode::SecretNotFound,
                format!("secret `{name}` does not exist"),
            )),
        }
    }
    /// `text` with its `${secret:NAME}` references replaced by the app's values.
    async fn expand_secrets(&self, app: &str, text: &str) -> Result<String> {
        let _ = app;
        arcus_core::secret::expand_secret_refs(text, |_| None)
    }
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

    async fn check_secrets(&self, app: &str, names: &[String]) -> Result<()> {
        self.check_secrets_exist(app, names.iter().map(String::as_str))
            .await
    }

    async fn expand_secrets(&self, app: &str, text: &str) -> Result<String> {
        Engine::expand_secrets(self, app, text).await
    }
}
