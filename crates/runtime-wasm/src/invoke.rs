//! One request through one fresh instance: limits, deadline, captured output, and a
//! completion reported when the guest has finished (possibly after the response head).

use crate::host::{EgressPolicy, Host};
use crate::logs::{CapturedLine, LogSink};
use crate::{LoadedComponent, WasmRuntime};
use arcus_core::record::LogStream;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;
use wasmtime::Store;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// What one invocation may use and see.
#[derive(Debug, Clone)]
pub struct InvokeSpec {
    /// Linear memory limit in MiB.
    pub memory_mb: u32,
    /// Wall-clock limit for the whole request, body included.
    pub timeout: Duration,
    /// Environment variables.
    pub env: Arc<Vec<(String, String)>>,
    /// Outgoing HTTP policy.
    pub egress: EgressPolicy,
}

/// How the guest's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler returned.
    Ok,
    /// The guest trapped (panic, out-of-bounds, out of memory, …); the message says how.
    Trap(String),
    /// The deadline passed and the instance was stopped.
    Timeout,
    /// The node could not provide an instance (pool exhausted).
    NoCapacity(String),
    /// A host-side failure unrelated to the guest's code.
    Internal(String),
}

/// Reported once the guest's task has ended.
#[derive(Debug)]
pub struct Completion {
    /// How it ended.
    pub outcome: Outcome,
    /// The status of the response the guest sent, if it sent one.
    pub http_status: Option<u16>,
    /// Everything it printed, plus platform lines.
    pub logs: Vec<CapturedLine>,
    /// Time from start to end of the guest's run.
    pub duration: Duration,
    /// Linear memory the guest's instances were given, in bytes (their peak).
    pub memory_bytes: u64,
}

/// The result of starting an invocation.
pub struct Invocation {
    /// The guest's response head and streaming body, or how it failed before answering.
    pub response: Result<http::Response<ResponseBody>, Outcome>,
    /// How the guest's run ended, once it has (the same outcome `on_done` gets).
    pub outcome: oneshot::Receiver<Outcome>,
}

/// Called once, on the guest's own task, when it has finished (body included).
pub type OnDone = Box<dyn FnOnce(Completion) + Send>;

type GuestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// A guest's response body, streamed while the guest runs.
pub struct ResponseBody {
    inner: GuestBody,
}

/// Error while streaming a guest's response body.
#[derive(Debug, thiserror::Error)]
#[error("function response body failed: {0}")]
pub struct BodyError(String);

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(|e| BodyError(format!("{e:?}")))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl WasmRuntime {
    /// Runs `req` in a fresh instance of `component`; `on_done` gets the completion on
    /// the guest's task, so finishing an invocation costs no task of its own.
    pub async fn invoke<B>(
        &self,
        component: Arc<LoadedComponent>,
        spec: InvokeSpec,
        mut req: http::Request<B>,
        on_done: OnDone,
    ) -> Invocation
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let sink = LogSink::new(self.config.max_log_bytes);
        let deadline = Instant::now() + spec.timeout;
        let (outcome_tx, outcome_rx) = oneshot::channel();
        // The guest answers on `guest_tx`; its task forwards the answer on `resp_tx`,
        // noting the status for the completion.
        let (guest_tx, guest_rx) = oneshot::channel();
        let (resp_tx, resp_rx) = oneshot::channel();

        if req.uri().authority().is_none() && !req.headers().contains_key(http::header::HOST) {
            req.headers_mut().insert(
                http::header::HOST,
                http::HeaderValue::from_static("localhost"),
            );
        }
        let req = req.map(|b| {
            b.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
                .boxed_unsync()
        });

        let mut wasi = WasiCtx::builder();
        wasi.stdout(sink.stream(LogStream::Stdout))
            .stderr(sink.stream(LogStream::Stderr))
            .envs(&spec.env)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let memory = spec.memory_mb as usize * 1024 * 1024;
        let mut store = Store::new(self.engine(), Host::new(wasi.build(), spec.egress, memory));
        store.limiter(|h| &mut h.limits);
        store.epoch_deadline_async_yield_and_update(1);

        let prepared = (|| {
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(guest_tx)?;
            Ok::<_, wasmtime::Error>((req, out))
        })();
        let (guest_req, out) = match prepared {
            Ok(v) => v,
            Err(e) => {
                let outcome = Outcome::Internal(format!("cannot build request: {e}"));
                let _ = outcome_tx.send(outcome.clone());
                on_done(Completion {
                    outcome: outcome.clone(),
                    http_status: None,
                    logs: sink.drain(),
                    duration: Duration::ZERO,
                    memory_bytes: 0,
                });
                return Invocation {
                    response: Err(outcome),
                    outcome: outcome_rx,
                };
            }
        };

        let task_sink = sink.clone();
        let pre = component.pre.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let run = async {
                let proxy = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(classify_instantiate)?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, guest_req, out)
                    .await
                    .map_err(|e| Outcome::Trap(format_error(&e)))
            };
            let mut http_status = None;
            let ran = {
                let mut forward = std::pin::pin!(async {
                    if let Ok(answer) = guest_rx.await {
                        if let Ok(resp) = &answer {
                            http_status = Some(resp.status().as_u16());
                        }
                        let _ = resp_tx.send(answer);
                    }
                });
                let mut run = std::pin::pin!(tokio::time::timeout_at(deadline, run));
                let mut forwarded = false;
                let ran = loop {
                    tokio::select! {
                        biased;
                        ran = &mut run => break ran,
                        () = &mut forward, if !forwarded => forwarded = true,
                    }
                };
                // An answer sent in the run's last step is forwarded now; a guest that
                // ended (or was stopped) without answering closes the response channel.
                if !forwarded {
                    let _ = futures::FutureExt::now_or_never(forward.as_mut());
                }
                ran
            };
            let outcome = match ran {
                Ok(Ok(())) => Outcome::Ok,
                Ok(Err(outcome)) => outcome,
                Err(_) => Outcome::Timeout,
            };
            // Let the connection that is waiting for the response write it before this
            // instance is torn down (its memory reset is not on the caller's latency).
            tokio::task::yield_now().await;
            let memory_bytes =
                u64::try_from(store.data().limits.memory_bytes()).unwrap_or(u64::MAX);
            drop(store);
            record_outcome(&task_sink, &outcome, spec.timeout);
            let _ = outcome_tx.send(outcome.clone());
            on_done(Completion {
                outcome,
                http_status,
                logs: task_sink.drain(),
                duration: started.elapsed(),
                memory_bytes,
            });
        });

        let response = match tokio::time::timeout_at(deadline, resp_rx).await {
            Ok(Ok(Ok(resp))) => Ok(resp.map(|inner| ResponseBody { inner })),
            Ok(Ok(Err(code))) => Err(Outcome::Trap(format!(
                "function answered with an error: {code:?}"
            ))),
            // The guest ended without answering: its completion says why.
            Ok(Err(_closed)) => Err(Outcome::Trap(String::new())),
            Err(_elapsed) => Err(Outcome::Timeout),
        };
        Invocation {
            response,
            outcome: outcome_rx,
        }
    }

    fn engine(&self) -> &wasmtime::Engine {
        &self.engine
    }
}

fn record_outcome(sink: &LogSink, outcome: &Outcome, timeout: Duration) {
    match outcome {
        Outcome::Ok => {}
        Outcome::Trap(msg) => sink.platform(format!("function trapped: {msg}")),
        Outcome::Timeout => sink.platform(format!(
            "Task timed out after {:.3} seconds",
            timeout.as_secs_f64()
        )),
        Outcome::NoCapacity(msg) => sink.platform(format!("no capacity: {msg}")),
        Outcome::Internal(msg) => sink.platform(format!("internal error: {msg}")),
    }
}

fn classify_instantiate(e: wasmtime::Error) -> Outcome {
    if e.is::<wasmtime::PoolConcurrencyLimitError>() {
        Outcome::NoCapacity(format!("{e}"))
    } else {
        Outcome::Trap(format_error(&e))
    }
}

/// The error chain on one line, without wasmtime's multi-line backtrace.
fn format_error(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let first = text.lines().next().unwrap_or_default().trim().to_string();
        if first.starts_with("error while executing at wasm backtrace") {
            continue;
        }
        if !first.is_empty() && !parts.contains(&first) {
            parts.push(first);
        }
    }
    parts.join(": ")
}
