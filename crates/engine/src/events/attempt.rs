//! One attempt of a leased event: run it (or deliver a destination record), decide
//! what follows — success, a retry after backoff, or the dead letters — and build the
//! destination records (`docs/async.md` documents their format).

use super::dispatcher::InFlight;
use crate::trace::{SpanKind, SpanSpec, TraceCtx, new_span_id};
use crate::{Engine, Input, Target};
use arcus_core::events::{
    AsyncConfig, AttemptResult, Delivery, Destination, Event, EventStatus, NewEvent, PayloadKind,
    StoredRequest,
};
use arcus_core::model::Timestamp;
use arcus_core::names::Qualifier;
use arcus_core::record::TriggerKind;
use arcus_core::{Error, ErrorCode, Result};
use base64::Engine as _;
use bytes::Bytes;
use opentelemetry::KeyValue;
use serde_json::{Value, json};
use std::time::SystemTime;

/// How one run of a function ended.
pub(crate) struct Run {
    /// The version that ran.
    pub version: Option<u32>,
    /// The function's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The response body, or the error document of a failure.
    pub body: Bytes,
    /// Why it counts as failed.
    pub error: Option<Error>,
}

/// A leased event and what is needed to finish it.
pub(super) struct Attempt {
    pub engine: Engine,
    pub event: Event,
    pub config: AsyncConfig,
    pub function_id: String,
    pub inflight: InFlight,
}

/// A body as JSON when it parses, else as a string.
fn body_value(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

fn error_doc(e: &Error) -> Bytes {
    Bytes::from(json!({"errorType": e.code.as_str(), "errorMessage": e.message}).to_string())
}

impl Engine {
    /// Runs one invocation to completion and classifies it: a failure is an error, a
    /// handler's reported error, or a status ≥ 400.
    pub(crate) async fn run_attempt(
        &self,
        target: &Target,
        id: String,
        trigger: TriggerKind,
        input: Input,
        parent: Option<TraceCtx>,
    ) -> Run {
        let inv = match self.invoke_traced(target, id, trigger, input, parent).await {
            Ok(inv) => inv,
            Err(e) => {
                return Run {
                    version: None,
                    status: None,
                    body: error_doc(&e),
                    error: Some(e),
                };
            }
        };
        let status = inv.response.status().as_u16();
        let body = match crate::read_response(inv.response.into_body()).await {
            Ok(b) => b,
            Err(e) => {
                return Run {
                    version: inv.version,
                    status: Some(status),
                    body: error_doc(&e),
                    error: Some(e),
                };
            }
        };
        let error = match (&inv.function_error, status) {
            (Some(t), _) => Some(Error::new(ErrorCode::FunctionError, t.clone())),
            (None, s) if s >= 400 => Some(Error::new(
                ErrorCode::FunctionError,
                format!("the function answered {s}"),
            )),
            _ => None,
        };
        Run {
            version: inv.version,
            status: Some(status),
            body,
            error,
        }
    }
}

impl Attempt {
    pub async fn run(self) {
        let now = Timestamp::now_utc();
        let age = now - self.event.new.now;
        if self.event.attempts <= 1 {
            let lag = std::time::Duration::try_from(age).unwrap_or_default();
            crate::metrics::trigger_lag(self.event.new.trigger, lag);
        }
        let result = if age.whole_seconds() >= i64::from(self.config.max_event_age_s) {
            self.dead_letter(None, "event_age_exceeded", "EventAgeExceeded", now)
        } else {
            let run = self.execute().await;
            self.conclude(run)
        };
        crate::metrics::attempt(&self.event.new.app, &self.event.new.function, result.status);
        self.engine.inner.queue.finisher.finish(result);
        self.inflight.done(&self.function_id);
    }

    fn record_id(&self) -> String {
        match self.event.attempts {
            0 | 1 => self.event.new.id.clone(),
            // Retries get their own record: `<id>.<attempt>`.
            n => format!("{}.{n}", self.event.new.id),
        }
    }

    async fn execute(&self) -> Run {
        let e = &self.event.new;
        let target = match Qualifier::parse(&e.qualifier) {
            Ok(qualifier) => Target {
                app: e.app.clone(),
                function: e.function.clone(),
                qualifier,
            },
            Err(err) => return failed_run(err),
        };
        let payload = Bytes::from(e.payload.clone());
        let input = match e.kind {
            PayloadKind::Json => Input::Queued {
                body: payload,
                attempt: self.event.attempts,
            },
            PayloadKind::Http => match replay_request(&payload, &e.id, self.event.attempts) {
                Ok(req) => Input::Http(req),
                Err(err) => return failed_run(err),
            },
            PayloadKind::Delivery => return self.deliver(&payload).await,
        };
        let id = self.record_id();
        let parent = self.queue_span(&id);
        self.engine
            .run_attempt(&target, id, e.trigger, input, Some(parent))
            .await
    }

    /// Exports the `queue` span of this attempt (from the event's acceptance to now, a
    /// child of the accepting span) and returns the context the attempt runs in.
    fn queue_span(&self, id: &str) -> TraceCtx {
        let e = &self.event.new;
        let accepted = TraceCtx::from_header(e.traceparent.as_deref());
        let span_id = new_span_id();
        self.engine.inner.spans.emit(
            SpanSpec {
                name: "queue",
                kind: SpanKind::Consumer,
                ctx: &accepted,
                span_id,
                start: SystemTime::from(e.now),
                end: SystemTime::now(),
                error: None,
            },
            || {
                vec![
                    KeyValue::new("arcus.app", e.app.clone()),
                    KeyValue::new("arcus.function", e.function.clone()),
                    KeyValue::new("arcus.trigger", e.trigger.as_str()),
                    KeyValue::new("arcus.event_id", e.id.clone()),
                    KeyValue::new("arcus.invocation_id", id.to_string()),
                    KeyValue::new("arcus.attempt", i64::from(self.event.attempts)),
                ]
            },
        );
        TraceCtx {
            parent: Some(span_id),
            ..accepted
        }
    }

    async fn deliver(&self, payload: &[u8]) -> Run {
        let delivery: Delivery = match serde_json::from_slice(payload) {
            Ok(d) => d,
            Err(e) => return failed_run(Error::internal(format!("corrupt delivery: {e}"))),
        };
        let Some(publisher) = self.engine.inner.queue.publisher.get() else {
            return failed_run(Error::new(
                ErrorCode::Unavailable,
                "this node has no publisher for HTTP, NATS and AMQP destinations",
            ));
        };
        let record = Bytes::from(delivery.record.to_string());
        match publisher.publish(&delivery.destination, record).await {
            Ok(()) => Run {
                version: None,
                status: None,
                body: Bytes::new(),
                error: None,
            },
            Err(e) => failed_run(e),
        }
    }

    fn conclude(&self, run: Run) -> AttemptResult {
        let now = Timestamp::now_utc();
        let Some(err) = &run.error else {
            let follow_ups = self.follow_up(self.config.on_success.as_ref(), "Success", &run);
            return AttemptResult {
                id: self.event.new.id.clone(),
                attempt: self.event.attempts,
                status: EventStatus::Succeeded,
                retry_at: None,
                result: Some(body_value(&run.body)),
                error_code: None,
                follow_ups,
                now,
            };
        };
        let retries_used = self.event.attempts.saturating_sub(1);
        if retries_used < self.config.max_retries {
            let backoff = self
                .config
                .backoff_ms(retries_used + 1, rand::random::<f64>());
            let retry_at =
                now + time::Duration::milliseconds(i64::try_from(backoff).unwrap_or(i64::MAX));
            return AttemptResult {
                id: self.event.new.id.clone(),
                attempt: self.event.attempts,
                status: EventStatus::Failed,
                retry_at: Some(retry_at),
                result: Some(body_value(&run.body)),
                error_code: Some(err.code.as_str().to_string()),
                follow_ups: Vec::new(),
                now,
            };
        }
        self.dead_letter(Some(&run), err.code.as_str(), "RetriesExhausted", now)
    }

    fn dead_letter(
        &self,
        run: Option<&Run>,
        code: &str,
        condition: &str,
        now: Timestamp,
    ) -> AttemptResult {
        let empty = failed_run(Error::new(ErrorCode::FunctionError, code));
        let run = run.unwrap_or(&empty);
        AttemptResult {
            id: self.event.new.id.clone(),
            attempt: self.event.attempts,
            status: EventStatus::DeadLettered,
            retry_at: None,
            result: Some(body_value(&run.body)),
            error_code: Some(code.to_string()),
            follow_ups: self.follow_up(self.config.on_failure.as_ref(), condition, run),
            now,
        }
    }

    /// The destination event, if the function has a destination for this outcome. A
    /// delivery that itself ends has none (no records about records).
    fn follow_up(&self, dest: Option<&Destination>, condition: &str, run: &Run) -> Vec<NewEvent> {
        let e = &self.event.new;
        let Some(dest) = dest.filter(|_| e.kind != PayloadKind::Delivery) else {
            return Vec::new();
        };
        let record = destination_record(
            &self.event,
            condition,
            run.status,
            run.version,
            run.error.as_ref(),
            &run.body,
        );
        let (function, qualifier, kind, payload) = match dest {
            Destination::Function {
                function,
                qualifier,
            } => (
                function.clone(),
                qualifier
                    .clone()
                    .unwrap_or_else(|| Qualifier::DEFAULT_ALIAS.to_string()),
                PayloadKind::Json,
                record.to_string().into_bytes(),
            ),
            other => {
                let d = Delivery {
                    destination: other.clone(),
                    record,
                };
                let Ok(bytes) = serde_json::to_vec(&d) else {
                    return Vec::new();
                };
                (
                    e.function.clone(),
                    e.qualifier.clone(),
                    PayloadKind::Delivery,
                    bytes,
                )
            }
        };
        vec![NewEvent {
            id: uuid::Uuid::now_v7().to_string(),
            app: e.app.clone(),
            function,
            qualifier,
            trigger: TriggerKind::Destination,
            kind,
            payload,
            idempotency_key: Some(format!("destination:{}", e.id)),
            now: Timestamp::now_utc(),
            traceparent: e.traceparent.clone(),
        }]
    }
}

fn failed_run(e: Error) -> Run {
    Run {
        version: None,
        status: None,
        body: error_doc(&e),
        error: Some(e),
    }
}

/// Rebuilds a stored `/fn/...` request, with the attempt headers.
fn replay_request(payload: &[u8], id: &str, attempt: u32) -> Result<http::Request<Bytes>> {
    let corrupt = |what: &str| Error::internal(format!("corrupt stored request ({what})"));
    let stored: StoredRequest = serde_json::from_slice(payload).map_err(|_| corrupt("json"))?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(&stored.body_b64)
        .map_err(|_| corrupt("body"))?;
    let mut b = http::Request::builder()
        .method(stored.method.as_str())
        .uri(stored.uri.as_str());
    for (k, v) in &stored.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b = b
        .header("x-arcus-invocation-type", "event")
        .header("x-arcus-event-id", id)
        .header("x-arcus-attempt", attempt);
    b.body(Bytes::from(body)).map_err(|_| corrupt("request"))
}

/// The record sent to a destination (modelled on Lambda's destination records).
pub fn destination_record(
    event: &Event,
    condition: &str,
    status: Option<u16>,
    version: Option<u32>,
    error: Option<&Error>,
    body: &[u8],
) -> Value {
    let e = &event.new;
    let request_payload = match e.kind {
        PayloadKind::Json => body_value(&e.payload),
        PayloadKind::Http | PayloadKind::Delivery => {
            serde_json::from_slice(&e.payload).unwrap_or(Value::Null)
        }
    };
    let ts = Timestamp::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "version": "1.0",
        "timestamp": ts,
        "requestContext": {
            "requestId": e.id,
            "functionArn": crate::function_arn(&e.app, &e.function, Some(&e.qualifier)),
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": request_payload,
        "responseContext": {
            "statusCode": status,
            "executedVersion": version.map_or_else(|| "$LATEST".to_string(), |v| v.to_string()),
            "functionError": error.map(|e| e.code.as_str()),
        },
        "responsePayload": body_value(body),
    })
}
