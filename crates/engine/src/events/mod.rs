//! Async invocations: events are accepted durably (batched into few transactions),
//! dispatched by a loop that leases due events per function within its async
//! concurrency (one at a time, in order, for `ordered` functions), run as invocations,
//! retried with exponential backoff and jitter, dead-lettered when retries or event age
//! run out, and reported to the function's destinations. See ADR 0009.

mod attempt;
mod dispatcher;
mod writer;

pub use attempt::destination_record;

use crate::trace::{SpanKind, SpanSpec, Spans, TraceCtx, new_span_id};
use crate::{Engine, Target};
use arcus_core::events::{
    Destination, Event, InvocationView, MAX_ASYNC_PAYLOAD_BYTES, NewEvent, PayloadKind,
    StoredRequest,
};
use arcus_core::model::Timestamp;
use arcus_core::record::TriggerKind;
use arcus_core::store::EventQuery;
use arcus_core::trace::TraceParent;
use arcus_core::{Error, ErrorCode, Result};
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use opentelemetry::KeyValue;
use std::sync::Arc;
use std::time::SystemTime;

/// Delivers destination records to brokers and URLs (HTTP, NATS, AMQP); implemented
/// outside the engine (the triggers crate) and given to it with
/// [`Engine::set_publisher`]. Function destinations need none: they are enqueued.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Sends one record; an error makes the delivery retried like an event.
    async fn publish(&self, destination: &Destination, record: Bytes) -> Result<()>;
}

/// The node's queue machinery: the batching writers and the dispatcher's wake-up.
pub(crate) struct Queue {
    pub writer: writer::EnqueueWriter,
    pub finisher: writer::Finisher,
    pub wake: Arc<tokio::sync::Notify>,
    pub node_id: String,
    pub publisher: std::sync::OnceLock<Arc<dyn Publisher>>,
}

impl Queue {
    /// Starts the writers; the dispatcher starts with [`start`].
    pub fn new(store: Arc<dyn arcus_core::store::Store>, node_id: String) -> Self {
        let wake = Arc::new(tokio::sync::Notify::new());
        Self {
            writer: writer::EnqueueWriter::start(store.clone(), wake.clone()),
            finisher: writer::Finisher::start(store, wake.clone()),
            wake,
            node_id,
            publisher: std::sync::OnceLock::new(),
        }
    }
}

/// Starts the dispatcher loop; it ends when the engine is dropped.
pub(crate) fn start(inner: &Arc<crate::Inner>) {
    dispatcher::start(Arc::downgrade(inner));
}

/// The attributes of spans about a function before it runs.
fn target_attributes(target: &Target, trigger: TriggerKind, id: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("arcus.app", target.app.clone()),
        KeyValue::new("arcus.function", target.function.clone()),
        KeyValue::new("arcus.qualifier", target.qualifier.to_string()),
        KeyValue::new("arcus.trigger", trigger.as_str()),
        KeyValue::new("arcus.invocation_id", id.to_string()),
    ]
}

/// The trace an accepted event keeps. Given the accepting span, its attempts are that
/// span's children; without one, a new trace starts with an `enqueue` span (exported
/// once the event is stored).
struct EventTrace {
    traceparent: TraceParent,
    /// The `enqueue` span to end, when this started the trace.
    enqueue: Option<(TraceCtx, SystemTime)>,
}

impl EventTrace {
    fn begin(parent: Option<TraceCtx>) -> Self {
        match parent {
            Some(
                ctx @ TraceCtx {
                    parent: Some(p), ..
                },
            ) => Self {
                traceparent: ctx.child(p),
                enqueue: None,
            },
            other => {
                let ctx = other.unwrap_or_else(TraceCtx::root);
                Self {
                    traceparent: ctx.child(new_span_id()),
                    enqueue: Some((ctx, SystemTime::now())),
                }
            }
        }
    }

    fn end(self, spans: &Spans, target: &Target, trigger: TriggerKind, result: &Result<String>) {
        let Some((ctx, start)) = self.enqueue else {
            return;
        };
        spans.emit(
            SpanSpec {
                name: "enqueue",
                kind: SpanKind::Producer,
                ctx: &ctx,
                span_id: self.traceparent.parent_id,
                start,
                end: SystemTime::now(),
                error: result.as_ref().err().map(|e| e.code.as_str().to_string()),
            },
            || {
                let id = result.as_deref().unwrap_or_default();
                target_attributes(target, trigger, id)
            },
        );
    }
}

/// 413 for an event (or a request body) over the async limit.
fn check_size(len: usize) -> Result<()> {
    if len > MAX_ASYNC_PAYLOAD_BYTES {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("an async event is limited to {MAX_ASYNC_PAYLOAD_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn new_event(
    target: &Target,
    trigger: TriggerKind,
    kind: PayloadKind,
    payload: Vec<u8>,
    idempotency_key: Option<String>,
    traceparent: Option<String>,
) -> Result<NewEvent> {
    if let Some(k) = &idempotency_key
        && (k.is_empty() || k.len() > arcus_core::events::MAX_IDEMPOTENCY_KEY_BYTES)
    {
        return Err(Error::invalid(format!(
            "idempotency-key must be 1–{} bytes",
            arcus_core::events::MAX_IDEMPOTENCY_KEY_BYTES
        )));
    }
    Ok(NewEvent {
        id: uuid::Uuid::now_v7().to_string(),
        app: target.app.clone(),
        function: target.function.clone(),
        qualifier: target.qualifier.to_string(),
        trigger,
        kind,
        payload,
        idempotency_key,
        now: Timestamp::now_utc(),
        traceparent,
    })
}

impl Engine {
    /// Sets who delivers HTTP, NATS and AMQP destination records (once).
    pub fn set_publisher(&self, publisher: Arc<dyn Publisher>) {
        let _ = self.inner.queue.publisher.set(publisher);
    }

    /// Accepts a JSON event for async invocation; answers once it is durably stored,
    /// with its invocation id (the first one's, for a repeated idempotency key).
    /// 413 over 256 KiB; 404 for an unknown function or qualifier. Its attempts run in
    /// a new trace.
    pub async fn enqueue(
        &self,
        target: &Target,
        trigger: TriggerKind,
        payload: Bytes,
        idempotency_key: Option<String>,
    ) -> Result<String> {
        self.enqueue_traced(target, trigger, payload, idempotency_key, None)
            .await
    }

    /// [`Engine::enqueue`] whose attempts run as children of `parent` (the accepting
    /// request's span); `None` starts a trace with an `enqueue` span.
    pub async fn enqueue_traced(
        &self,
        target: &Target,
        trigger: TriggerKind,
        payload: Bytes,
        idempotency_key: Option<String>,
        parent: Option<TraceCtx>,
    ) -> Result<String> {
        check_size(payload.len())?;
        let trace = EventTrace::begin(parent);
        let event = new_event(
            target,
            trigger,
            PayloadKind::Json,
            payload.to_vec(),
            idempotency_key,
            Some(trace.traceparent.header()),
        )?;
        let result = self.accept(target, event).await;
        trace.end(&self.inner.spans, target, trigger, &result);
        result
    }

    /// Accepts an HTTP request (already stripped of its `/fn/...` prefix) for async
    /// invocation; it is replayed to the function as is, its attempts as children of
    /// `parent` (see [`Engine::enqueue_traced`]).
    pub async fn enqueue_http(
        &self,
        target: &Target,
        req: http::Request<Bytes>,
        idempotency_key: Option<String>,
        parent: Option<TraceCtx>,
    ) -> Result<String> {
        let (parts, body) = req.into_parts();
        check_size(body.len())?;
        let stored = StoredRequest {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            body_b64: base64::engine::general_purpose::STANDARD.encode(&body),
        };
        let payload = serde_json::to_vec(&stored).map_err(|e| Error::internal(e.to_string()))?;
        let trace = EventTrace::begin(parent);
        let event = new_event(
            target,
            TriggerKind::Async,
            PayloadKind::Http,
            payload,
            idempotency_key,
            Some(trace.traceparent.header()),
        )?;
        let result = self.accept(target, event).await;
        trace.end(&self.inner.spans, target, TriggerKind::Async, &result);
        result
    }

    async fn accept(&self, target: &Target, event: NewEvent) -> Result<String> {
        // Unknown functions, aliases and versions are refused now, not dead-lettered later.
        let route = self.route(&target.app, &target.function).await?;
        self.resolve(&route, &target.qualifier).await?;
        self.inner.queue.writer.submit(event).await
    }

    /// The state of an invocation: an async one from the queue, else a finished sync
    /// one from its record.
    pub async fn invocation(&self, id: &str) -> Result<InvocationView> {
        match self.inner.store.get_event(id).await {
            Ok(e) => Ok(e.into()),
            Err(e) if e.code == ErrorCode::InvocationNotFound => {
                self.inner.recorder.flush().await;
                let r = self.inner.store.get_invocation(id).await?;
                Ok(InvocationView::from_record(r))
            }
            Err(e) => Err(e),
        }
    }

    /// A function's async events, newest first, optionally of one status.
    pub async fn events(
        &self,
        app: &str,
        function: &str,
        query: &EventQuery,
    ) -> Result<Vec<Event>> {
        self.inner.store.list_events(app, function, query).await
    }

    /// Queues dead-lettered events again (one, or all); returns how many.
    pub async fn redrive(&self, app: &str, function: &str, id: Option<&str>) -> Result<u64> {
        let n = self
            .inner
            .store
            .redrive_events(app, function, id, Timestamp::now_utc())
            .await?;
        self.inner.queue.wake.notify_one();
        Ok(n)
    }

    /// A JSON event run synchronously (what broker triggers deliver): the response
    /// body when the function succeeded (status < 400), otherwise the error.
    pub async fn invoke_json(
        &self,
        target: &Target,
        trigger: TriggerKind,
        payload: Bytes,
    ) -> Result<Bytes> {
        let id = uuid::Uuid::now_v7().to_string();
        let ctx = TraceCtx::root();
        let span_id = new_span_id();
        let start = SystemTime::now();
        let parent = TraceCtx {
            parent: Some(span_id),
            ..ctx
        };
        let run = self
            .run_attempt(
                target,
                id.clone(),
                trigger,
                crate::Input::Event(payload),
                Some(parent),
            )
            .await;
        self.inner.spans.emit(
            SpanSpec {
                name: "trigger",
                kind: SpanKind::Consumer,
                ctx: &ctx,
                span_id,
                start,
                end: SystemTime::now(),
                error: run.error.as_ref().map(|e| e.code.as_str().to_string()),
            },
            || target_attributes(target, trigger, &id),
        );
        match run.error {
            None => Ok(run.body),
            Some(e) => Err(e),
        }
    }
}
