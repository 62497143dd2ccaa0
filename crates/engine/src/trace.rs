//! Trace context of invocations and their spans (ADR 0011).
//!
//! Every invocation runs in a trace: the caller's (`traceparent`) or a new one. Its id
//! goes on the record and the log lines, and the function gets a `traceparent` (wasm)
//! or `_X_AMZN_TRACE_ID` (handlers) whose parent is the invocation's `function` span.
//! Spans are only built when the node exports them ([`Spans::enabled`]); without an
//! exporter, tracing costs a few random bytes and a hex string per invocation.

use arcus_core::record::InvocationRecord;
use arcus_core::trace::TraceParent;
use opentelemetry::Context;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use std::sync::Arc;
use std::time::SystemTime;

pub use opentelemetry::KeyValue;
pub use opentelemetry::trace::SpanKind;

/// A random span id (never all zero).
pub fn new_span_id() -> [u8; 8] {
    loop {
        let id: [u8; 8] = rand::random();
        if id != [0; 8] {
            return id;
        }
    }
}

fn new_trace_id() -> [u8; 16] {
    loop {
        let id: [u8; 16] = rand::random();
        if id != [0; 16] {
            return id;
        }
    }
}

/// Where new spans go: a trace, the span they are children of (none for a root), and
/// the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceCtx {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The parent span; `None` starts the trace.
    pub parent: Option<[u8; 8]>,
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceCtx {
    /// A new trace, sampled.
    pub fn root() -> Self {
        Self {
            trace_id: new_trace_id(),
            parent: None,
            flags: TraceParent::SAMPLED,
        }
    }

    /// The context of a `traceparent` header; a new trace when it is missing or invalid.
    pub fn from_header(value: Option<&str>) -> Self {
        value
            .and_then(TraceParent::parse)
            .map_or_else(Self::root, Self::from)
    }

    /// The `traceparent` that makes `span_id` the parent of what comes next.
    pub fn child(&self, span_id: [u8; 8]) -> TraceParent {
        TraceParent::new(self.trace_id, span_id, self.flags)
    }

    /// The trace id as records and logs store it (32 hex digits).
    pub fn trace_id_hex(&self) -> String {
        self.child([1; 8]).trace_id_hex()
    }
}

impl From<TraceParent> for TraceCtx {
    fn from(tp: TraceParent) -> Self {
        Self {
            trace_id: tp.trace_id,
            parent: Some(tp.parent_id),
            flags: tp.flags,
        }
    }
}

/// One finished span to export.
pub struct SpanSpec<'a> {
    /// Span name (`gateway`, `queue`, `instance`, `function`…).
    pub name: &'static str,
    /// Span kind.
    pub kind: SpanKind,
    /// Trace and parent.
    pub ctx: &'a TraceCtx,
    /// This span's id (chosen before it starts, so children can name it).
    pub span_id: [u8; 8],
    /// Start time.
    pub start: SystemTime,
    /// End time.
    pub end: SystemTime,
    /// An error description makes the span's status `Error`.
    pub error: Option<String>,
}

/// The node's span exporter, if one is configured; cheap to clone.
#[derive(Clone, Default)]
pub struct Spans {
    tracer: Option<Arc<BoxedTracer>>,
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl Spans {
    /// Spans going to `tracer` (`None`: no spans are built at all).
    pub fn new(tracer: Option<BoxedTracer>) -> Self {
        Self {
            tracer: tracer.map(Arc::new),
        }
    }

    /// Whether spans are exported; check before building attributes.
    pub fn enabled(&self) -> bool {
        self.tracer.is_some()
    }

    /// Exports a finished span with its attributes (built only when enabled).
    pub fn emit(&self, spec: SpanSpec<'_>, attributes: impl FnOnce() -> Vec<KeyValue>) {
        let Some(tracer) = &self.tracer else {
            return;
        };
        let ctx = spec.ctx;
        let parent = match ctx.parent {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(ctx.trace_id),
                SpanId::from_bytes(p),
                TraceFlags::new(ctx.flags),
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let mut builder = tracer
            .span_builder(spec.name)
            .with_kind(spec.kind)
            .with_trace_id(TraceId::from_bytes(ctx.trace_id))
            .with_span_id(SpanId::from_bytes(spec.span_id))
            .with_start_time(spec.start)
            .with_attributes(attributes());
        if let Some(e) = spec.error {
            builder = builder.with_status(Status::error(e));
        }
        let mut span = builder.start_with_context(&**tracer, &parent);
        span.end_with_timestamp(spec.end);
    }
}

/// The common attributes of an invocation's spans.
pub fn record_attributes(r: &InvocationRecord) -> Vec<KeyValue> {
    let mut attrs = vec![
        KeyValue::new("arcus.app", r.app.clone()),
        KeyValue::new("arcus.function", r.function.clone()),
        KeyValue::new(
            "arcus.version",
            r.version
                .map_or_else(|| "draft".to_string(), |v| v.to_string()),
        ),
        KeyValue::new("arcus.invocation_id", r.id.clone()),
        KeyValue::new("arcus.trigger", r.trigger.as_str()),
        KeyValue::new("arcus.cold_start", r.cold_start),
        KeyValue::new("faas.invocation_id", r.id.clone()),
        KeyValue::new("faas.coldstart", r.cold_start),
    ];
    if let Some(s) = r.http_status {
        attrs.push(KeyValue::new("http.response.status_code", i64::from(s)));
    }
    attrs
}

/// The `instance` and `function` spans of one invocation, filled in as it runs and
/// exported when its record is finished.
pub(crate) struct InvocationSpans {
    spans: Spans,
    ctx: TraceCtx,
    instance_span: [u8; 8],
    function_span: [u8; 8],
    started: SystemTime,
    acquired: Option<SystemTime>,
}

impl InvocationSpans {
    /// Starts now; `function_span` is the id the function's `traceparent` names.
    pub fn new(spans: Spans, ctx: TraceCtx, function_span: [u8; 8]) -> Self {
        Self {
            spans,
            ctx,
            instance_span: new_span_id(),
            function_span,
            started: SystemTime::now(),
            acquired: None,
        }
    }

    /// The instance is ready and the function starts (now, or at a given time).
    pub fn acquired(&mut self, at: Option<SystemTime>) {
        self.acquired = Some(at.unwrap_or_else(SystemTime::now).max(self.started));
    }

    /// Exports both spans of a finished invocation.
    pub fn finish(self, r: &InvocationRecord) {
        let end = SystemTime::now();
        let acquired = self.acquired.unwrap_or(end);
        self.spans.emit(
            SpanSpec {
                name: "instance",
                kind: SpanKind::Internal,
                ctx: &self.ctx,
                span_id: self.instance_span,
                start: self.started,
                end: acquired,
                error: None,
            },
            || {
                vec![
                    KeyValue::new("arcus.app", r.app.clone()),
                    KeyValue::new("arcus.function", r.function.clone()),
                    KeyValue::new("arcus.invocation_id", r.id.clone()),
                    KeyValue::new("arcus.cold_start", r.cold_start),
                ]
            },
        );
        let error = (r.status != arcus_core::record::InvocationStatus::Succeeded).then(|| {
            r.error_code
                .clone()
                .unwrap_or_else(|| r.status.as_str().to_string())
        });
        self.spans.emit(
            SpanSpec {
                name: "function",
                kind: SpanKind::Internal,
                ctx: &self.ctx,
                span_id: self.function_span,
                start: acquired,
                end,
                error,
            },
            || {
                let mut attrs = record_attributes(r);
                attrs.push(KeyValue::new("arcus.status", r.status.as_str()));
                if let Some(code) = &r.error_code {
                    attrs.push(KeyValue::new("arcus.error_code", code.clone()));
                }
                attrs
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_header_is_continued_and_anything_else_starts_a_trace() {
        let ctx = TraceCtx::from_header(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ));
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            ctx.parent,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_eq!(ctx.flags, 0, "the caller's sampling decision is kept");
        let child = ctx.child([7; 8]);
        assert_eq!(
            child.header(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0707070707070707-00"
        );
        for bad in [
            None,
            Some(""),
            Some("00-xyz"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ] {
            let a = TraceCtx::from_header(bad);
            let b = TraceCtx::from_header(bad);
            assert_eq!(a.parent, None, "{bad:?} starts a trace");
            assert!(a.child(new_span_id()).sampled());
            assert_ne!(a.trace_id, b.trace_id, "each new trace is random");
            assert_ne!(a.trace_id, [0; 16]);
        }
    }

    #[test]
    fn without_a_tracer_nothing_is_built() {
        let spans = Spans::default();
        assert!(!spans.enabled());
        let ctx = TraceCtx::root();
        let now = SystemTime::now();
        spans.emit(
            SpanSpec {
                name: "x",
                kind: SpanKind::Internal,
                ctx: &ctx,
                span_id: new_span_id(),
                start: now,
                end: now,
                error: None,
            },
            || panic!("attributes are not built without a tracer"),
        );
    }
}
