//! The AWS Lambda Runtime API (2018-06-01) server of one instance, on hyper 1.
//!
//! The runtime in the instance long-polls `GET /2018-06-01/runtime/invocation/next`,
//! answers with `POST .../invocation/{id}/response` or `.../error`, or reports a failed
//! start with `POST .../runtime/init/error`. The host side hands events in with
//! [`RuntimeApi::invoke`] and waits for the start with [`RuntimeApi::ready`].
//!
//! One private endpoint serves pre-started spare runtimes (see `spare.rs`):
//! `GET /2018-06-01/runtime/arcus/assignment` long-polls until [`RuntimeApi::assign`]
//! hands over the function's environment (a JSON object of strings).
//!
//! State is a small `std` mutex that is never held across an `.await`; the long poll
//! waits on a [`Notify`]. Sockets get `TCP_NODELAY`; connections are kept alive with
//! no idle timeout (a runtime keeps one connection open across a long handler).

mod server;
#[cfg(test)]
mod tests;

use crate::InvokeRequest;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, oneshot, watch};

/// Largest response (or error) payload of a buffered invocation, as on Lambda.
pub(crate) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Largest payload of a streamed response (Lambda's streaming limit is 20 MiB).
pub(crate) const MAX_STREAMED_BYTES: usize = 20 * 1024 * 1024;
/// How many answered request ids are remembered to tell "answered" from "unknown".
const ANSWERED_MEMORY: usize = 64;

/// What the runtime posted for an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RapiEvent {
    /// `POST /invocation/{id}/response`: the raw payload (streamed chunks concatenated).
    Response(Bytes),
    /// `POST /invocation/{id}/error`, or a response over the size limit.
    Error {
        /// `Lambda-Runtime-Function-Error-Type`, else the body's `errorType`, else
        /// `Unhandled`; `Function.ResponseSizeTooLarge` for an oversized response.
        error_type: String,
        /// The error document as posted (`{"errorMessage","errorType",…}`).
        payload: Bytes,
    },
}

/// The runtime reported a failed start (`/runtime/init/error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitFailure {
    /// e.g. `Runtime.ImportModuleError`.
    pub error_type: String,
    /// The runtime's `errorMessage` (or its raw body).
    pub message: String,
}

/// Answer channel of one invocation.
type Reply = oneshot::Sender<Result<RapiEvent, InitFailure>>;

/// An invocation not yet taken by a `GET /next`.
struct Queued {
    req: InvokeRequest,
    deadline_ms: u64,
    reply: Reply,
}

/// How far the runtime got.
#[derive(Debug, Clone)]
enum Status {
    Starting,
    Ready,
    Failed(InitFailure),
}

#[derive(Default)]
struct State {
    /// Invocations waiting for a `GET /next`.
    queue: VecDeque<Queued>,
    /// Invocations handed to the runtime, by request id.
    inflight: HashMap<String, Reply>,
    /// Recently answered request ids (oldest first).
    answered: VecDeque<String>,
    /// Set by `/runtime/init/error`; fails every later invoke.
    init_failed: Option<InitFailure>,
}

/// What the server tasks and the handles share.
struct Shared {
    state: Mutex<State>,
    work: Notify,
    status: watch::Sender<Status>,
    /// The environment a spare runtime is given (`None` until it is assigned).
    assignment: watch::Sender<Option<Bytes>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-updated in a way
        // that matters more than losing the instance; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the answer channel of `id`, or says why there is none.
    fn take_inflight(&self, id: &str) -> Result<Reply, Unanswerable> {
        let mut st = self.lock();
        match st.inflight.remove(id) {
            Some(r) => {
                if st.answered.len() >= ANSWERED_MEMORY {
                    st.answered.pop_front();
                }
                st.answered.push_back(id.to_string());
                Ok(r)
            }
            None if st.answered.iter().any(|a| a == id) => Err(Unanswerable::Answered),
            None => Err(Unanswerable::Unknown),
        }
    }

    fn is_inflight(&self, id: &str) -> Result<(), Unanswerable> {
        let st = self.lock();
        if st.inflight.contains_key(id) {
            Ok(())
        } else if st.answered.iter().any(|a| a == id) {
            Err(Unanswerable::Answered)
        } else {
            Err(Unanswerable::Unknown)
        }
    }

    /// Records an init failure: fails `ready()` and every queued or running invoke.
    fn fail_init(&self, failure: InitFailure) {
        let (queued, inflight) = {
            let mut st = self.lock();
            st.init_failed = Some(failure.clone());
            (
                std::mem::take(&mut st.queue),
                std::mem::take(&mut st.inflight),
            )
        };
        for q in queued {
            let _ = q.reply.send(Err(failure.clone()));
        }
        for (_, r) in inflight {
            let _ = r.send(Err(failure.clone()));
        }
        self.status.send_replace(Status::Failed(failure));
    }

    /// Marks the runtime ready (first `GET /next`).
    fn mark_ready(&self) {
        self.status.send_if_modified(|s| {
            if matches!(s, Status::Starting) {
                *s = Status::Ready;
                true
            } else {
                false
            }
        });
    }

    /// Pops the next live queued invocation and records it as in flight.
    fn take_next(&self) -> Option<(InvokeRequest, u64)> {
        let mut st = self.lock();
        while let Some(q) = st.queue.pop_front() {
            if q.reply.is_closed() {
                continue; // the caller gave up before the runtime asked for it
            }
            st.inflight.insert(q.req.request_id.clone(), q.reply);
            return Some((q.req, q.deadline_ms));
        }
        None
    }
}

/// Why a posted answer has no invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unanswerable {
    Unknown,
    Answered,
}

/// Stops the server when the last [`RuntimeApi`] handle is dropped.
struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// A running Runtime API server of one instance. Cheap to clone; dropping the last
/// handle stops the server and closes its connections.
#[derive(Clone)]
pub(crate) struct RuntimeApi {
    inner: Arc<Handle>,
}

impl RuntimeApi {
    /// Serves the Runtime API on `listener` (bound by the caller, e.g. inside the
    /// instance's network namespace). Must be called within a tokio runtime.
    pub fn serve(listener: std::net::TcpListener) -> std::io::Result<RuntimeApi> {
        tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (status, _) = watch::channel(Status::Starting);
        let (assignment, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Notify::new(),
            status,
            assignment,
        });
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(server::accept_loop(listener, shared.clone(), stopped));
        Ok(RuntimeApi {
            inner: Arc::new(Handle {
                shared,
                addr,
                _stop: stop,
            }),
        })
    }

    /// Where the server listens (the value of `AWS_LAMBDA_RUNTIME_API`).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Answers the spare runtime's `GET .../arcus/assignment` with `env` (a JSON object).
    pub fn assign(&self, env: Bytes) {
        self.inner.shared.assignment.send_replace(Some(env));
    }

    /// Resolves when the runtime first asks for work (`GET /next`), or fails with what
    /// it posted to `/runtime/init/error`.
    pub async fn ready(&self) -> Result<(), InitFailure> {
        let mut rx = self.inner.shared.status.subscribe();
        let status = rx
            .wait_for(|s| !matches!(s, Status::Starting))
            .await
            .map(|s| s.clone())
            .unwrap_or_else(|_| Status::Failed(stopped()));
        match status {
            Status::Failed(f) => Err(f),
            Status::Ready | Status::Starting => Ok(()),
        }
    }

    /// Hands `req` to the waiting (or next) `GET /next` with the deadline `deadline_ms`
    /// (unix epoch milliseconds) and waits for the runtime's answer for that request id.
    /// Dropping the future abandons the invocation (a later answer is accepted and
    /// discarded). Fails at once if the runtime reported an init error.
    pub async fn invoke(
        &self,
        req: &InvokeRequest,
        deadline_ms: u64,
    ) -> Result<RapiEvent, InitFailure> {
        let shared = &self.inner.shared;
        let (reply, answer) = oneshot::channel();
        {
            let mut st = shared.lock();
            if let Some(f) = &st.init_failed {
                return Err(f.clone());
            }
            st.queue.push_back(Queued {
                req: req.clone(),
                deadline_ms,
                reply,
            });
        }
        shared.work.notify_one();
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The failure reported when the server went away under a waiting call.
fn stopped() -> InitFailure {
    InitFailure {
        error_type: "Runtime.Unknown".into(),
        message: "the Runtime API server stopped".into(),
    }
}
