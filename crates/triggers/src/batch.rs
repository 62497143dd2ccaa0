//! What the broker sources share: the reconnect loop with backoff ([`run_source`]), the
//! bounded, batching [`Pipeline`] that turns received messages into invocations and
//! settles (acks or nacks) them afterwards, and the payload encoding of the event records.
//!
//! Flow control: at most `concurrency × batch_size` messages are held (received and not
//! yet settled) and at most `concurrency` invocations run at once. A source asks
//! [`Pipeline::free`] how many messages it may pull, or, when the broker pushes (AMQP
//! prefetch, MQTT), [`Pipeline::push`] waits for room.

use crate::source::{Invoker, SourceCtx, StatusHandle};
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First reconnect delay.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Largest reconnect delay.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// How long a stopping source waits for running invocations to finish and be settled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Largest delay between in-place retries (MQTT).
const RETRY_CAP: Duration = Duration::from_secs(30);
/// Longest wait for an ack or nack (a client may never answer on a dead connection; the
/// broker then redelivers the messages).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often sources refresh the lag they report.
pub(crate) const LAG_EVERY: Duration = Duration::from_secs(2);

/// Exponential backoff 100 ms → 5 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    /// Starts at 100 ms.
    pub(crate) fn new() -> Self {
        Self {
            next: BACKOFF_START,
        }
    }

    /// The delay to wait now; doubles the next one (capped at 5 s).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(BACKOFF_CAP);
        d
    }

    /// Back to 100 ms (after a successful connection).
    pub(crate) fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

/// The backoff `100 ms · 2^(n-1)` capped at `cap`, for the n-th attempt (1-based).
pub(crate) fn attempt_delay(n: u32, cap: Duration) -> Duration {
    BACKOFF_START
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(cap)
}

/// Acks or nacks the messages of one invocation on the connection they came from.
#[async_trait]
pub(crate) trait Settle: Send + Sync + 'static {
    /// What identifies a received message to its broker.
    type Handle: Send + 'static;
    /// The invocation succeeded: acknowledge.
    async fn ack(&self, handles: Vec<Self::Handle>);
    /// The invocation failed: have them redelivered.
    async fn nack(&self, handles: Vec<Self::Handle>);
    /// Called every [`Settle::progress_every`] while the invocation runs (NATS
    /// `+WPI`, so a slow function does not get its messages redelivered under it).
    async fn progress(&self, _handles: &[Self::Handle]) {}
    /// Messages dropped unsettled (the session ended or the trigger stopped before their
    /// invocation started); the broker redelivers them.
    fn dropped(&self, _handles: Vec<Self::Handle>) {}
    /// How often to call [`Settle::progress`]; `None` = never.
    fn progress_every(&self) -> Option<Duration> {
        None
    }
}

/// One connection's partial batch.
pub(crate) struct Batcher<S: Settle> {
    settle: Arc<S>,
    items: Vec<(Value, S::Handle, OwnedSemaphorePermit)>,
    deadline: Option<Instant>,
}

impl<S: Settle> Batcher<S> {
    /// An empty batch settled through `settle`.
    pub(crate) fn new(settle: Arc<S>) -> Self {
        Self {
            settle,
            items: Vec::new(),
            deadline: None,
        }
    }

    /// Resolves when the batch window of a non-empty batch has passed (never otherwise).
    /// With a zero window it is due at once, so sources poll it after the messages that
    /// are ready (a `biased` select with the message branch first): a batch is then what
    /// arrived together.
    pub(crate) async fn due(&self) {
        match self.deadline {
            Some(at) if !self.items.is_empty() => tokio::time::sleep_until(at).await,
            _ => std::future::pending().await,
        }
    }
}

impl<S: Settle> Drop for Batcher<S> {
    fn drop(&mut self) {
        if !self.items.is_empty() {
            let handles = std::mem::take(&mut self.items)
                .into_iter()
                .map(|(_, h, _)| h)
                .collect();
            self.settle.dropped(handles);
        }
    }
}

/// The shared, reconnect-surviving state of a broker source: permits, running
/// invocations, batching parameters.
pub(crate) struct Pipeline {
    invoker: Invoker,
    /// The trigger's status.
    pub(crate) status: StatusHandle,
    /// Cancelled when the trigger stops.
    pub(crate) cancel: CancellationToken,
    concurrency: usize,
    batch_size: usize,
    window: Duration,
    retry_in_place: bool,
    messages: Arc<Semaphore>,
    batches: Arc<Semaphore>,
    freed: Arc<Notify>,
    tasks: JoinSet<()>,
    connected: bool,
}

impl Pipeline {
    /// A pipeline for `ctx` delivering batches of `batch_size` (collected for at most
    /// `window_ms`). With `retry_in_place` a failed invocation is retried here with
    /// backoff instead of being nacked (for brokers that cannot redeliver on demand).
    pub(crate) fn new(ctx: &SourceCtx, batch_size: u32, window_ms: u32, retry: bool) -> Self {
        let concurrency = ctx.concurrency.max(1) as usize;
        let batch_size = batch_size.max(1) as usize;
        Self {
            invoker: ctx.invoker.clone(),
            status: ctx.status.clone(),
            cancel: ctx.cancel.clone(),
            concurrency,
            batch_size,
            window: Duration::from_millis(u64::from(window_ms)),
            retry_in_place: retry,
            messages: Arc::new(Semaphore::new(concurrency * batch_size)),
            batches: Arc::new(Semaphore::new(concurrency)),
            freed: Arc::new(Notify::new()),
            tasks: JoinSet::new(),
            connected: false,
        }
    }

    /// Most messages held at once (`concurrency × batch_size`).
    pub(crate) fn capacity(&self) -> usize {
        self.concurrency * self.batch_size
    }

    /// Messages that may be pulled now without waiting.
    pub(crate) fn free(&self) -> usize {
        self.messages.available_permits()
    }

    /// Resolves when a running invocation has released its messages.
    pub(crate) async fn freed(&self) {
        self.freed.notified().await;
    }

    /// Marks the connection up: status `connected`, and the next reconnect starts over at
    /// the shortest backoff.
    pub(crate) fn set_connected(&mut self) {
        self.connected = true;
        self.status.connected();
    }

    /// Adds a received message to `batcher`, waiting for room if the source already
    /// holds as many messages as it may, and starts the invocation once the batch is full.
    pub(crate) async fn push<S: Settle>(
        &mut self,
        batcher: &mut Batcher<S>,
        record: Value,
        handle: S::Handle,
    ) {
        let permit = match self.messages.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let acquired = tokio::select! {
                    p = self.messages.clone().acquire_owned() => p.ok(),
                    _ = self.cancel.cancelled() => None,
                };
                // Cancelled: the message is dropped unsettled and redelivered.
                let Some(p) = acquired else {
                    batcher.settle.dropped(vec![handle]);
                    return;
                };
                p
            }
        };
        if batcher.items.is_empty() {
            batcher.deadline = Some(Instant::now() + self.window);
        }
        batcher.items.push((record, handle, permit));
        if batcher.items.len() >= self.batch_size {
            self.flush(batcher).await;
        }
    }

    /// Starts the invocation of `batcher`'s messages (if any), waiting for one of the
    /// `concurrency` slots.
    pub(crate) async fn flush<S: Settle>(&mut self, batcher: &mut Batcher<S>) {
        if batcher.items.is_empty() {
            return;
        }
        let slot = tokio::select! {
            p = self.batches.clone().acquire_owned() => p.ok(),
            _ = self.cancel.cancelled() => None,
        };
        let Some(slot) = slot else { return };
        let items = std::mem::take(&mut batcher.items);
        batcher.deadline = None;
        let mut records = Vec::with_capacity(items.len());
        let mut handles = Vec::with_capacity(items.len());
        let mut permits = Vec::with_capacity(items.len());
        for (r, h, p) in items {
            records.push(r);
            handles.push(h);
            permits.push(p);
        }
        let event = if self.batch_size == 1 && records.len() == 1 {
            records.pop().unwrap_or(Value::Null)
        } else {
            serde_json::json!({ "records": records })
        };
        let event = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        let job = Job {
            invoker: self.invoker.clone(),
            status: self.status.clone(),
            cancel: self.cancel.clone(),
            settle: batcher.settle.clone(),
            retry_in_place: self.retry_in_place,
        };
        let freed = self.freed.clone();
        // Reap finished tasks so the set does not grow.
        while self.tasks.try_join_next().is_some() {}
        self.tasks.spawn(async move {
            job.run(event, handles).await;
            drop(permits);
            drop(slot);
            freed.notify_one();
        });
    }

    /// Waits (at most 10 s) for running invocations to finish and be settled; the rest
    /// are abandoned unsettled (so the broker redelivers them).
    pub(crate) async fn shutdown(mut self) {
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            self.tasks.abort_all();
        }
    }
}

struct Job<S: Settle> {
    invoker: Invoker,
    status: StatusHandle,
    cancel: CancellationToken,
    settle: Arc<S>,
    retry_in_place: bool,
}

impl<S: Settle> Job<S> {
    async fn run(self, event: Bytes, handles: Vec<S::Handle>) {
        let n = handles.len() as u64;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let invoke = self.invoker.invoke(event.clone());
            let result = match self.settle.progress_every() {
                None => invoke.await,
                Some(every) => {
                    tokio::pin!(invoke);
                    let mut tick = tokio::time::interval(every);
                    tick.tick().await;
                    loop {
                        tokio::select! {
                            r = &mut invoke => break r,
                            _ = tick.tick() => self.settle.progress(&handles).await,
                        }
                    }
                }
            };
            match result {
                Ok(_) => {
                    self.status.delivered(n);
                    let _ = tokio::time::timeout(SETTLE_TIMEOUT, self.settle.ack(handles)).await;
                    return;
                }
                Err(e) => {
                    self.status.failed(n);
                    tracing::debug!(error = %e, messages = n, "trigger delivery failed");
                    if !self.retry_in_place {
                        let nack = self.settle.nack(handles);
                        let _ = tokio::time::timeout(SETTLE_TIMEOUT, nack).await;
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(attempt_delay(attempt, RETRY_CAP)) => {}
                        // Left unacked: the broker redelivers it to the next session.
                        _ = self.cancel.cancelled() => return,
                    }
                }
            }
        }
    }
}

/// One connection of a broker source, run by [`run_source`] until it fails.
#[async_trait]
pub(crate) trait Session: Send {
    /// Connects, subscribes (then [`Pipeline::set_connected`]) and delivers until the
    /// connection fails (`Err(reason)`) or `pipeline.cancel` is cancelled (`Ok`).
    async fn session(&mut self, pipeline: &mut Pipeline) -> Result<(), String>;
    /// Called once when the source stops, after the last session.
    async fn close(&mut self) {}
}

/// Runs sessions of `source` until the trigger is cancelled: after each failure the
/// status is `connecting` with the error and the next attempt waits 100 ms → 5 s.
pub(crate) async fn run_source(mut source: impl Session, mut pipeline: Pipeline) {
    let mut backoff = Backoff::new();
    let cancel = pipeline.cancel.clone();
    while !cancel.is_cancelled() {
        pipeline.connected = false;
        match source.session(&mut pipeline).await {
            Ok(()) => break,
            Err(e) => {
                tracing::info!(error = %e, "trigger connection failed; reconnecting");
                pipeline.status.connecting(e);
            }
        }
        if pipeline.connected {
            backoff.reset();
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = cancel.cancelled() => break,
        }
    }
    source.close().await;
    pipeline.shutdown().await;
}

/// Polls `query` every [`LAG_EVERY`] and reports its answer as the trigger's lag, until
/// the returned guard is dropped (at the end of the session). A failed query (`None`)
/// leaves the last value.
pub(crate) fn spawn_lag<F, Fut>(
    status: StatusHandle,
    cancel: &CancellationToken,
    mut query: F,
) -> tokio_util::sync::DropGuard
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<u64>> + Send,
{
    let stop = cancel.child_token();
    let token = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LAG_EVERY);
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            let lag = tokio::select! {
                _ = token.cancelled() => return,
                lag = query() => lag,
            };
            if let Some(lag) = lag {
                status.set_lag(Some(lag));
            }
        }
    });
    stop.drop_guard()
}

/// Puts a message payload into a record: `"data"` is the payload's JSON when it parses,
/// else its text when it is UTF-8; otherwise `"data_base64"` holds it base64-encoded.
pub(crate) fn put_data(record: &mut Map<String, Value>, payload: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<Value>(payload) {
        record.insert("data".into(), v);
    } else if let Ok(s) = std::str::from_utf8(payload) {
        record.insert("data".into(), Value::String(s.to_string()));
    } else {
        record.insert(
            "data_base64".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(payload)),
        );
    }
}

/// A text value, or `{"base64": ...}` for bytes that are not UTF-8.
pub(crate) fn text_or_base64(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => serde_json::json!({
            "base64": base64::engine::general_purpose::STANDARD.encode(bytes)
        }),
    }
}

/// `url` with `username`/`password` put in its user info (they are kept out of stored
/// URLs). Errors name the problem without echoing the URL's secrets.
pub(crate) fn url_with_credentials(
    url: &str,
    auth: &arcus_core::trigger::Credentials,
) -> Result<String, String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("invalid url: {e}"))?;
    if let Some(user) = &auth.username {
        u.set_username(user)
            .map_err(|()| "url cannot carry a username".to_string())?;
    }
    if let Some(pass) = &auth.password {
        u.set_password(Some(pass))
            .map_err(|()| "url cannot carry a password".to_string())?;
    }
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_seconds_and_resets() {
        let mut b = Backoff::new();
        let ds: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ds, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
        assert_eq!(attempt_delay(1, RETRY_CAP).as_millis(), 100);
        assert_eq!(attempt_delay(40, RETRY_CAP), RETRY_CAP);
    }

    #[test]
    fn data_is_json_text_or_base64() {
        let mut m = Map::new();
        put_data(&mut m, br#"{"a":1}"#);
        assert_eq!(m["data"]["a"], 1);
        put_data(&mut m, b"plain text");
        assert_eq!(m["data"], "plain text");
        let mut m = Map::new();
        put_data(&mut m, &[0xff, 0x00]);
        assert_eq!(m["data_base64"], "/wA=");
        assert!(!m.contains_key("data"));
    }

    #[test]
    fn credentials_go_into_the_url() {
        let auth = arcus_core::trigger::Credentials {
            username: Some("guest".into()),
            password: Some("p@ss".into()),
        };
        let u = url_with_credentials("amqp://127.0.0.1:5672/%2f", &auth).unwrap();
        assert_eq!(u, "amqp://guest:p%40ss@127.0.0.1:5672/%2f");
        let none = arcus_core::trigger::Credentials::default();
        assert_eq!(
            url_with_credentials("redis://127.0.0.1:6379/0", &none).unwrap(),
            "redis://127.0.0.1:6379/0"
        );
    }
}
