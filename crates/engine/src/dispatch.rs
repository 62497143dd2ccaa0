//! The data path: resolve `app/function@qualifier` to a version, run it in its runtime
//! (a wasm component here, a process in `process.rs`), and hand the record to the
//! recorder.

use crate::Engine;
use crate::activator::Demand;
use crate::cache::{Lease, Loaded, Route, Usage};
use crate::control::wasm_error;
use crate::recorder::PendingRecord;
use crate::trace::{InvocationSpans, TraceCtx};
use arcus_core::limits::MAX_SYNC_RESPONSE_BYTES;
use arcus_core::model::{ExecConfig, Runtime, Timestamp};
use arcus_core::names::Qualifier;
use arcus_core::record::{InvocationRecord, InvocationStatus, TriggerKind};
use arcus_core::scaling::Scaling;
use arcus_core::trace::TraceParent;
use arcus_core::{Error, ErrorCode, Result};
use arcus_runtime_wasm::{
    Completion, EgressPolicy, InvokeSpec, LoadSource, LoadedComponent, Outcome,
};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What to invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
    /// Draft, version or alias.
    pub qualifier: Qualifier,
}

/// What an invocation is given.
// Moved once per invocation and never stored, so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// An HTTP request whose `/fn/...` prefix is stripped: a wasm component gets it as is,
    /// a handler function gets it as an API Gateway payload 2.0 event.
    Http(http::Request<Bytes>),
    /// A JSON event: a wasm component gets it as `POST /`, a handler as `event`.
    Event(Bytes),
    /// An attempt of a queued (async or trigger) JSON event: as `Event`, and a wasm
    /// component also gets the attempt number in `x-arcus-attempt`.
    Queued {
        /// The JSON event.
        body: Bytes,
        /// 1 for the first attempt.
        attempt: u32,
    },
}

/// Error of a function's response body while it streams.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A function's response body (streamed from a wasm guest, or whole from a handler).
pub type FnBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BodyError>;

/// A whole body.
pub(crate) fn full_body(b: Bytes) -> FnBody {
    http_body_util::Full::new(b)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A started invocation whose response head is ready.
pub struct Invoked {
    /// The invocation id (also the request id).
    pub invocation_id: String,
    /// The version that runs; `None` for the draft.
    pub version: Option<u32>,
    /// The function's response; the body streams while the function runs.
    pub response: http::Response<FnBody>,
    /// For handler functions that failed: the error type (`errorType`); the response
    /// body is then the error document (`errorMessage`, `errorType`, `stackTrace`).
    pub function_error: Option<String>,
}

pub(crate) struct Resolved {
    pub version: Option<u32>,
    pub sha256: String,
    pub config: ExecConfig,
    /// The function's (unversioned) scaling settings.
    pub scaling: Scaling,
    /// Variables set from the app's secrets (filled by `with_secret_env` just before
    /// an instance is started; empty until then).
    pub secret_env: Vec<(String, String)>,
}

/// Builds the request an event is delivered as to a wasm component: `POST /` with the
/// JSON body.
pub fn event_request(
    body: Bytes,
    trigger: TriggerKind,
    invocation_id: &str,
) -> http::Request<Bytes> {
    let mut req = http::Request::new(body);
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = http::Uri::from_static("/");
    let h = req.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-arcus-trigger",
        http::HeaderValue::from_static(trigger.as_str()),
    );
    if let Ok(v) = http::HeaderValue::from_str(invocation_id) {
        h.insert("x-arcus-invocation-id", v);
    }
    req
}

impl Engine {
    /// Runs one invocation of a function, in a new trace.
    pub async fn invoke(
        &self,
        target: &Target,
        invocation_id: String,
        trigger: TriggerKind,
        input: Input,
    ) -> Result<Invoked> {
        self.invoke_traced(target, invocation_id, trigger, input, None)
            .await
    }

    /// Runs one invocation of a function whose spans are children of `parent` (the
    /// gateway's or the queue's span); `None` starts a new trace.
    pub async fn invoke_traced(
        &self,
        target: &Target,
        invocation_id: String,
        trigger: TriggerKind,
        input: Input,
        parent: Option<TraceCtx>,
    ) -> Result<Invoked> {
        let started_at = Timestamp::now_utc();
        let ctx = parent.unwrap_or_else(TraceCtx::root);
        let function_span = crate::trace::new_span_id();
        let spans = self.inner.spans.enabled().then(|| {
            Box::new(InvocationSpans::new(
                self.inner.spans.clone(),
                ctx,
                function_span,
            ))
        });
        let traceparent = ctx.child(function_span);
        let route = self.route(&target.app, &target.function).await?;
        let resolved = self.resolve(&route, &target.qualifier).await?;
        let mut pending = PendingRecord::new(
            self.inner.recorder.clone(),
            InvocationRecord {
                id: invocation_id.clone(),
                app: target.app.clone(),
                function: target.function.clone(),
                version: resolved.version,
                trigger,
                status: InvocationStatus::Succeeded,
                error_code: None,
                http_status: None,
                duration_us: 0,
                cold_start: false,
                started_at,
                memory_mb: resolved.config.memory_mb,
                egress_bytes: 0,
                trace_id: Some(ctx.trace_id_hex()),
                init_duration_us: None,
                max_memory_mb: None,
            },
            crate::metrics::version_label(resolved.version, &route.aliases),
        );
        pending.spans = spans;
        // A secret reference that cannot be resolved fails the invocation with a record.
        let resolved = match self.with_secret_env(&target.app, resolved).await {
            Ok(r) => r,
            Err(e) => {
                pending.finish(
                    Duration::ZERO,
                    InvocationStatus::Failed,
                    Some(e.code),
                    false,
                    [],
                );
                return Err(e);
            }
        };
        let slot = self
            .inner
            .activator
            .admit(Demand {
                app: &target.app,
                function: &target.function,
                runtime: resolved.config.runtime,
                memory_mb: resolved.config.memory_mb,
                scaling: &resolved.scaling,
                quotas: &route.quotas,
            })
            .await
            .inspect_err(|e| crate::metrics::throttle(&target.app, &target.function, e.code))?;
        if let Some(kind) = crate::process::kind(resolved.config.runtime) {
            let input = with_traceparent(input, &traceparent);
            let result = self
                .invoke_process(target, resolved, kind, input, pending, &traceparent)
                .await;
            drop(slot);
            return result;
        }
        let mut req = match input {
            Input::Http(req) => req,
            Input::Event(body) => event_request(body, trigger, &invocation_id),
            Input::Queued { body, attempt } => {
                let mut req = event_request(body, trigger, &invocation_id);
                req.headers_mut()
                    .insert("x-arcus-attempt", http::HeaderValue::from(attempt));
                req
            }
        };
        set_traceparent(req.headers_mut(), &traceparent);
        self.invoke_wasm(target, resolved, req, pending, slot).await
    }

    async fn invoke_wasm(
        &self,
        target: &Target,
        resolved: Resolved,
        req: http::Request<Bytes>,
        mut pending: PendingRecord,
        slot: crate::activator::Slot,
    ) -> Result<Invoked> {
        let (component, init, lease) = self.component(&resolved.sha256, &resolved.scaling).await?;
        pending.record.cold_start = init.is_some();
        pending.set_init(init);
        if let Some(s) = &mut pending.spans {
            s.acquired(None);
        }
        let spec = self.spec(target, &resolved);
        let timeout_ms = resolved.config.timeout_ms;
        let req = req.map(http_body_util::Full::new);
        let invocation_id = pending.record.id.clone();
        let meter = crate::egress::Meter::new(MAX_SYNC_RESPONSE_BYTES);
        let on_body_sent = meter.clone();
        // The slot and the lease are held until the guest has finished, body included;
        // the record waits for the response body to be sent too, to count its bytes.
        let on_done = Box::new(move |done: Completion| {
            let _held = (slot, lease);
            pending.record.http_status = done.http_status;
            on_body_sent.on_complete(move |sent| {
                pending.record.egress_bytes = sent.bytes;
                finish_wasm(pending, done, sent.over_limit);
            });
        });
        let inv = self.inner.wasm.invoke(component, spec, req, on_done).await;
        let declared = inv.response.as_ref().ok().and_then(declared_len);
        let over = matches!(declared, Some(n) if meter.too_long(n));
        match inv.response {
            Ok(response) if over => {
                // Nothing is sent: the record completes (failed) once the guest ends.
                meter.refuse();
                drop(response);
                meter.body_done();
                Err(response_too_large())
            }
            Ok(response) => Ok(Invoked {
                invocation_id,
                version: resolved.version,
                response: response.map(|b| {
                    meter
                        .wrap(b.map_err(|e| Box::new(e) as BodyError))
                        .boxed_unsync()
                }),
                function_error: None,
            }),
            Err(early) => {
                meter.body_done();
                let outcome = tokio::time::timeout(Duration::from_secs(5), inv.outcome)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(early);
                Err(outcome_error(&outcome, timeout_ms))
            }
        }
    }

    pub(crate) async fn route(&self, app: &str, function: &str) -> Result<Arc<Route>> {
        if let Some(r) = self.inner.routes.get(app, function) {
            return Ok(r);
        }
        let generation = self.inner.routes.generation();
        let started = std::time::Instant::now();
        let store = &self.inner.store;
        let f = store.get_function(app, function).await?;
        let aliases: HashMap<_, _> = store
            .list_aliases(app, function)
            .await?
            .into_iter()
            .map(|a| (a.name, a.target))
            .collect();
        let quotas = store.get_app(app).await?.quotas;
        crate::metrics::store_op("load_route", started);
        let route = Arc::new(Route::new(f, aliases, quotas));
        self.inner
            .routes
            .insert_if_current(app, function, route.clone(), generation);
        Ok(route)
    }

    pub(crate) async fn resolve(&self, route: &Route, q: &Qualifier) -> Result<Resolved> {
        let f = &route.function;
        let n = match q {
            Qualifier::Draft => {
                let code = f.code.as_ref().ok_or_else(|| {
                    Error::new(
                        ErrorCode::NotDeployed,
                        "the function's draft has no code yet",
                    )
                })?;
                return Ok(Resolved {
                    version: None,
                    sha256: code.sha256.clone(),
                    config: f.config.clone(),
                    scaling: f.meta.scaling,
                    secret_env: Vec::new(),
                });
            }
            Qualifier::Version(n) => *n,
            Qualifier::Alias(name) => match route.aliases.get(name) {
                Some(t) => t.pick(rand::random_range(0..100u8)),
                None if name == Qualifier::DEFAULT_ALIAS => {
                    return Err(Error::new(
                        ErrorCode::NotDeployed,
                        format!(
                            "{}/{} has no `live` alias; deploy it or name a version",
                            f.app, f.name
                        ),
                    ));
                }
                None => {
                    return Err(Error::new(
                        ErrorCode::AliasNotFound,
                        format!("alias {name:?} does not exist"),
                    ));
                }
            },
        };
        let v = match route.version(n) {
            Some(v) => v,
            None => {
                let v = Arc::new(self.inner.store.get_version(&f.app, &f.name, n).await?);
                route.put_version(v.clone());
                v
            }
        };
        Ok(Resolved {
            version: Some(n),
            sha256: v.sha256.clone(),
            config: v.config.clone(),
            scaling: f.meta.scaling,
            secret_env: Vec::new(),
        })
    }

    /// The loaded component for a code hash, loading (and compiling if needed) at most once
    /// concurrently, with a lease to hold while it runs; `true` when this call had to load
    /// it (a cold start).
    pub(crate) async fn component(
        &self,
        sha: &str,
        scaling: &Scaling,
    ) -> Result<(Arc<LoadedComponent>, Option<Duration>, Lease)> {
        let usage = Usage {
            keep_alive: Duration::from_secs(u64::from(scaling.keep_alive_s)),
            pinned: scaling.min_instances > 0,
        };
        let (cell, lease) = self.inner.components.checkout(sha, usage);
        let mut init = None;
        let loaded = cell
            .get_or_try_init(|| async {
                let started = tokio::time::Instant::now();
                let blobs = self.inner.blobs.clone();
                let key = sha.to_string();
                let (c, source) = self
                    .inner
                    .wasm
                    .load(sha, || async move {
                        blobs
                            .get(&key)
                            .await
                            .map_err(|e| arcus_runtime_wasm::WasmError::Internal(e.to_string()))
                    })
                    .await
                    .map_err(wasm_error)?;
                if source == LoadSource::Compiled {
                    tracing::info!(%sha, "compiled component (no artefact was cached)");
                }
                let load_time = started.elapsed();
                crate::metrics::compile(Runtime::Wasm, "load", load_time);
                init = Some(load_time);
                Ok::<_, Error>(Loaded {
                    component: c,
                    loaded_at: tokio::time::Instant::now(),
                    load_time,
                })
            })
            .await?;
        Ok((loaded.component.clone(), init, lease))
    }

    fn spec(&self, target: &Target, r: &Resolved) -> InvokeSpec {
        let version = r
            .version
            .map_or_else(|| "draft".to_string(), |v| v.to_string());
        let mut env: Vec<(String, String)> = r
            .config
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend(r.secret_env.iter().cloned());
        env.push(("ARCUS_APP".into(), target.app.clone()));
        env.push(("ARCUS_FUNCTION".into(), target.function.clone()));
        env.push(("ARCUS_FUNCTION_VERSION".into(), version));
        env.push(("ARCUS_MEMORY_MB".into(), r.config.memory_mb.to_string()));
        InvokeSpec {
            memory_mb: r.config.memory_mb,
            timeout: Duration::from_millis(r.config.timeout_ms),
            env: Arc::new(env),
            egress: EgressPolicy {
                allowed_hosts: Arc::new(r.config.allowed_hosts.clone()),
                protected: self.inner.protected.clone(),
            },
        }
    }
}

/// Sets the `traceparent` a function sees (replacing the caller's: its parent is now
/// the invocation's `function` span).
fn set_traceparent(headers: &mut http::HeaderMap, tp: &TraceParent) {
    if let Ok(v) = http::HeaderValue::from_str(&tp.header()) {
        headers.insert(arcus_core::trace::TRACEPARENT, v);
    }
}

/// An HTTP input with the function's `traceparent` (events get theirs where they
/// become requests or handler events).
fn with_traceparent(input: Input, tp: &TraceParent) -> Input {
    match input {
        Input::Http(mut req) => {
            set_traceparent(req.headers_mut(), tp);
            Input::Http(req)
        }
        other => other,
    }
}

fn outcome_error(outcome: &Outcome, timeout_ms: u64) -> Error {
    match outcome {
        Outcome::Ok => Error::new(
            ErrorCode::FunctionError,
            "the function returned without sending a response",
        ),
        Outcome::Trap(msg) if msg.is_empty() => Error::new(
            ErrorCode::FunctionError,
            "the function failed without sending a response",
        ),
        Outcome::Trap(msg) => Error::new(
            ErrorCode::FunctionError,
            format!("the function failed: {msg}"),
        ),
        Outcome::Timeout => Error::new(
            ErrorCode::FunctionTimeout,
            format!("the function timed out after {timeout_ms} ms"),
        ),
        Outcome::NoCapacity(msg) => Error::new(
            ErrorCode::NoCapacity,
            format!("no instance available: {msg}"),
        ),
        Outcome::Internal(msg) => Error::internal(msg.clone()),
    }
}

/// A response's `content-length`, if it declares one.
fn declared_len<B>(response: &http::Response<B>) -> Option<u64> {
    response
        .headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads a function's whole response body: `response_too_large` past
/// [`MAX_SYNC_RESPONSE_BYTES`], `function_error` if the body fails.
pub async fn read_response(mut body: FnBody) -> Result<Bytes> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| body_error(&e))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_SYNC_RESPONSE_BYTES {
                return Err(response_too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// The error of a failed response body: over the limit, or the function's failure.
fn body_error(e: &BodyError) -> Error {
    if e.is::<crate::egress::OverLimit>() {
        response_too_large()
    } else {
        Error::new(
            ErrorCode::FunctionError,
            format!("the response failed: {e}"),
        )
    }
}

/// The error of a response over [`MAX_SYNC_RESPONSE_BYTES`].
pub(crate) fn response_too_large() -> Error {
    Error::new(
        ErrorCode::ResponseTooLarge,
        format!("the function's response is over the limit of {MAX_SYNC_RESPONSE_BYTES} bytes"),
    )
}

fn finish_wasm(mut pending: PendingRecord, done: Completion, over_limit: bool) {
    let (status, code) = match &done.outcome {
        _ if over_limit => (InvocationStatus::Failed, Some(ErrorCode::ResponseTooLarge)),
        Outcome::Ok => (InvocationStatus::Succeeded, None),
        Outcome::Timeout => (InvocationStatus::TimedOut, Some(ErrorCode::FunctionTimeout)),
        Outcome::Trap(_) => (InvocationStatus::Failed, Some(ErrorCode::FunctionError)),
        Outcome::NoCapacity(_) => (InvocationStatus::Failed, Some(ErrorCode::NoCapacity)),
        Outcome::Internal(_) => (InvocationStatus::Failed, Some(ErrorCode::Internal)),
    };
    pending.record.max_memory_mb = Some(done.memory_bytes.div_ceil(1024 * 1024));
    let lines = done
        .logs
        .into_iter()
        .map(|l| (l.stream, l.timestamp, l.message));
    pending.finish(done.duration, status, code, true, lines);
}
