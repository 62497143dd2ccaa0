//! What a trigger source is given and implements: [`Source`], [`SourceCtx`], the
//! [`Invoker`] that delivers events and the shared [`StatusHandle`].

use crate::sink::EventSink;
use arcus_core::Result;
use arcus_core::model::Timestamp;
use arcus_core::record::TriggerKind;
use arcus_core::trigger::{Trigger, TriggerState, TriggerStatus};
use arcus_engine::Target;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// Everything a running source needs.
pub struct SourceCtx {
    /// The trigger, with its secrets (for connecting).
    pub trigger: Arc<Trigger>,
    /// Delivers events to the trigger's target.
    pub invoker: Invoker,
    /// The trigger's status, shared with the API.
    pub status: StatusHandle,
    /// Cancelled when the trigger is stopped (deleted, disabled, changed, node shutdown).
    pub cancel: CancellationToken,
    /// Most invocations this trigger may run at once (the function's async concurrency).
    pub concurrency: u32,
}

/// A running trigger: connects, receives events and delivers them through
/// [`SourceCtx::invoker`] until [`SourceCtx::cancel`] is cancelled. It reconnects with
/// backoff by itself and reports what it does through [`SourceCtx::status`].
#[async_trait]
pub trait Source: Send + Sync {
    /// Runs until `ctx.cancel` is cancelled.
    async fn run(self: Box<Self>, ctx: SourceCtx);
}

/// Delivers a trigger's events to its target function. Cheap to clone.
#[derive(Clone)]
pub struct Invoker {
    sink: Arc<dyn EventSink>,
    target: Arc<Target>,
    kind: TriggerKind,
}

impl Invoker {
    /// An invoker of `target` recording `kind` on the invocations.
    pub fn new(sink: Arc<dyn EventSink>, target: Target, kind: TriggerKind) -> Self {
        Self {
            sink,
            target: Arc::new(target),
            kind,
        }
    }

    /// Where the events go.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Invokes the function synchronously with a JSON event: `Ok(response body)` when it
    /// answered with a status below 400, otherwise an error (`function_error`,
    /// `function_timeout`, `throttled`, …). Brokers ack on `Ok` only.
    pub async fn invoke(&self, event: Bytes) -> Result<Bytes> {
        self.sink.invoke(&self.target, self.kind, event).await
    }

    /// Queues the event as a durable async invocation and returns its id; the same
    /// `idempotency_key` within 24 h returns the first invocation's id.
    pub async fn enqueue(&self, event: Bytes, idempotency_key: Option<String>) -> Result<String> {
        self.sink
            .enqueue(&self.target, self.kind, event, idempotency_key)
            .await
    }
}

/// A trigger's status on this node, shared between its source and the API. Cheap to
/// clone.
#[derive(Clone)]
pub struct StatusHandle {
    inner: Arc<Mutex<TriggerStatus>>,
}

impl Default for StatusHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusHandle {
    /// A fresh status: `connecting`, no counts.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(TriggerStatus {
                state: TriggerState::Connecting,
                last_error: None,
                lag: None,
                delivered: 0,
                failed: 0,
                next_fire_at: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TriggerStatus> {
        // A panic while holding this lock cannot leave the plain data inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the connection state.
    pub fn set_state(&self, state: TriggerState) {
        self.lock().state = state;
    }

    /// Sets (or clears) the last error.
    pub fn set_error(&self, error: Option<String>) {
        self.lock().last_error = error;
    }

    /// Sets the broker-reported lag.
    pub fn set_lag(&self, lag: Option<u64>) {
        self.lock().lag = lag;
    }

    /// Counts `n` delivered events.
    pub fn delivered(&self, n: u64) {
        let mut s = self.lock();
        s.delivered = s.delivered.saturating_add(n);
    }

    /// Counts `n` failed deliveries.
    pub fn failed(&self, n: u64) {
        let mut s = self.lock();
        s.failed = s.failed.saturating_add(n);
    }

    /// Sets the next fire time of a cron trigger.
    pub fn set_next_fire(&self, at: Option<Timestamp>) {
        self.lock().next_fire_at = at;
    }

    /// Connected: sets the state and clears the last error.
    pub fn connected(&self) {
        let mut s = self.lock();
        s.state = TriggerState::Connected;
        s.last_error = None;
    }

    /// Connecting after a failure: sets the state and the error.
    pub fn connecting(&self, error: impl Into<String>) {
        let mut s = self.lock();
        s.state = TriggerState::Connecting;
        s.last_error = Some(error.into());
    }

    /// A copy of the status now.
    pub fn snapshot(&self) -> TriggerStatus {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_and_states() {
        let s = StatusHandle::new();
        assert_eq!(s.snapshot().state, TriggerState::Connecting);
        s.connecting("refused");
        assert_eq!(s.snapshot().last_error.as_deref(), Some("refused"));
        s.connected();
        s.delivered(3);
        s.failed(1);
        s.set_lag(Some(7));
        let snap = s.clone().snapshot();
        assert_eq!(snap.state, TriggerState::Connected);
        assert_eq!(snap.last_error, None);
        assert_eq!((snap.delivered, snap.failed, snap.lag), (3, 1, Some(7)));
    }
}
