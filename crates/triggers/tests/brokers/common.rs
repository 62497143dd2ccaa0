//! Harness of the broker tests: a real source against a real broker, delivering to a
//! fake function (a closure) that records every event it is given.

use arcus_core::names::Qualifier;
use arcus_core::record::TriggerKind;
use arcus_core::trigger::{Trigger, TriggerConfig, TriggerState, TriggerStatus};
use arcus_core::{Error, ErrorCode, Result};
use arcus_engine::Target;
use arcus_testkit::proxy::Proxy;
use arcus_triggers::{EventSink, Invoker, Source, SourceCtx, StatusHandle};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the fake function does with an event: `Ok` = success.
pub type Handler = Arc<dyn Fn(&Value) -> std::result::Result<(), String> + Send + Sync>;

/// The fake function: records events, counts concurrent invocations.
pub struct Fake {
    /// Every event given, with whether the invocation succeeded.
    pub events: Mutex<Vec<(Value, bool)>>,
    pub handler: Handler,
    pub delay: Duration,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
}

#[async_trait]
impl EventSink for Fake {
    async fn invoke(&self, _t: &Target, _k: TriggerKind, payload: Bytes) -> Result<Bytes> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let event: Value = serde_json::from_slice(&payload).expect("event is JSON");
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let r = (self.handler)(&event);
        self.events.lock().unwrap().push((event, r.is_ok()));
        self.running.fetch_sub(1, Ordering::SeqCst);
        r.map(|()| Bytes::from_static(b"{}"))
            .map_err(|e| Error::new(ErrorCode::FunctionError, e))
    }

    async fn enqueue(
        &self,
        _: &Target,
        _: TriggerKind,
        _: Bytes,
        _: Option<String>,
    ) -> Result<String> {
        unreachable!("broker sources invoke synchronously")
    }
}

/// A source running in a task.
pub struct Running {
    pub fake: Arc<Fake>,
    pub status: StatusHandle,
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// Options of [`start`].
pub struct Opts {
    pub concurrency: u32,
    pub delay: Duration,
    pub handler: Handler,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            concurrency: 4,
            delay: Duration::ZERO,
            handler: Arc::new(|_| Ok(())),
        }
    }
}

/// Starts `source` for a trigger with `config`.
pub fn start(source: Box<dyn Source>, config: TriggerConfig, opts: Opts) -> Running {
    let now = time::OffsetDateTime::now_utc();
    let trigger = Trigger {
        id: uuid::Uuid::new_v4().simple().to_string(),
        app: "app".into(),
        function: "fn".into(),
        name: "t".into(),
        qualifier: "live".into(),
        enabled: true,
        config: config.clone(),
        created_at: now,
        updated_at: now,
    };
    let fake = Arc::new(Fake {
        events: Mutex::new(Vec::new()),
        handler: opts.handler,
        delay: opts.delay,
        running: AtomicUsize::new(0),
        max_running: AtomicUsize::new(0),
    });
    let target = Target {
        app: "app".into(),
        function: "fn".into(),
        qualifier: Qualifier::parse("live").unwrap(),
    };
    let status = StatusHandle::new();
    let cancel = CancellationToken::new();
    let ctx = SourceCtx {
        trigger: Arc::new(trigger),
        invoker: Invoker::new(fake.clone(), target, config.kind()),
        status: status.clone(),
        cancel: cancel.clone(),
        concurrency: opts.concurrency,
    };
    let task = tokio::spawn(source.run(ctx));
    Running {
        fake,
        status,
        cancel,
        task,
    }
}

impl Running {
    /// Every record delivered so far (a batch's records one by one), in order.
    pub fn records(&self) -> Vec<Value> {
        self.records_where(|_| true)
    }

    fn records_where(&self, keep: impl Fn(bool) -> bool) -> Vec<Value> {
        let events = self.fake.events.lock().unwrap();
        let mut out = Vec::new();
        for (e, ok) in events.iter() {
            if !keep(*ok) {
                continue;
            }
            match e.get("records") {
                Some(Value::Array(rs)) => out.extend(rs.iter().cloned()),
                _ => out.push(e.clone()),
            }
        }
        out
    }

    /// The `n` of every delivered record whose data is `{"n": …}`, with repeats.
    pub fn seen(&self) -> BTreeMap<u64, usize> {
        let mut m = BTreeMap::new();
        for r in self.records() {
            if let Some(n) = data_n(&r) {
                *m.entry(n).or_insert(0) += 1;
            }
        }
        m
    }

    /// The `n` of every record whose invocation succeeded.
    pub fn succeeded(&self) -> BTreeSet<u64> {
        self.records_where(|ok| ok)
            .iter()
            .filter_map(data_n)
            .collect()
    }

    /// Waits until every `n` in `0..count` was delivered successfully at least once.
    pub async fn wait_all(&self, count: u64, within: Duration) {
        let want: BTreeSet<u64> = (0..count).collect();
        let ok = poll(within, || {
            want.is_subset(&self.succeeded()) && self.fake.running.load(Ordering::SeqCst) == 0
        })
        .await;
        let seen = self.succeeded();
        let missing: Vec<_> = want.difference(&seen).take(20).collect();
        assert!(
            ok,
            "not every message was delivered within {within:?}: missing {missing:?}; status {:?}",
            self.status.snapshot()
        );
    }

    /// Waits for a state; returns the status then.
    pub async fn wait_state(&self, state: TriggerState, within: Duration) -> TriggerStatus {
        let ok = poll(within, || self.status.snapshot().state == state).await;
        let s = self.status.snapshot();
        assert!(ok, "state {state:?} not reached within {within:?}: {s:?}");
        s
    }

    /// Cancels the source and waits for it to end.
    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("source stops within 15 s")
            .expect("source task did not panic");
    }
}

/// `data.n` of a record (`fields.n` for Redis entries).
pub fn data_n(r: &Value) -> Option<u64> {
    if let Some(f) = r.get("fields") {
        return f.get("n")?.as_str()?.parse().ok();
    }
    r.get("data")?.get("n")?.as_u64()
}

/// Polls `cond` every 10 ms until it holds (true) or `within` passes (false).
pub async fn poll(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A handler failing the first `times` deliveries of the message with `data.n == n`.
pub fn fail_first(n: u64, times: usize) -> (Handler, Arc<AtomicUsize>) {
    let failures = Arc::new(AtomicUsize::new(0));
    let f = failures.clone();
    let handler: Handler = Arc::new(move |event: &Value| {
        let hit = match event.get("records") {
            Some(Value::Array(rs)) => rs.iter().any(|r| data_n(r) == Some(n)),
            _ => data_n(event) == Some(n),
        };
        if hit && f.load(Ordering::SeqCst) < times {
            f.fetch_add(1, Ordering::SeqCst);
            return Err("deliberate failure".into());
        }
        Ok(())
    });
    (handler, failures)
}

/// Asserts every event holds at most `max` records and returns the batch sizes.
pub fn batch_sizes(run: &Running, max: usize) -> Vec<usize> {
    let events = run.fake.events.lock().unwrap();
    let sizes: Vec<usize> = events
        .iter()
        .map(|(e, _)| e["records"].as_array().expect("a records array").len())
        .collect();
    assert!(
        sizes.iter().all(|&s| (1..=max).contains(&s)),
        "batch sizes {sizes:?}"
    );
    sizes
}

/// A TCP port on which nothing listens.
pub async fn dead_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// One broker's test fixture (a fresh stream/queue/topic): what the shared
/// [`scenario`]s need to know about it. Broker-specific assertions go in the hooks.
pub trait TestBroker: Sized {
    /// `host:port` of the real broker on this machine.
    const ADDR: &'static str;
    /// What the broker's connection error must mention.
    const NAME: &'static str;
    /// How often the failure scenario fails message 3 before it succeeds.
    const FAILURES: usize = 2;
    /// How long the failure scenario waits for every message.
    const REDELIVERY_WITHIN: Duration = Duration::from_secs(20);

    /// The source under test.
    fn source(&self) -> Box<dyn Source>;
    /// The trigger config for the broker at `addr` (`host:port`).
    fn config(&self, addr: &str, batch_size: u32, window_ms: u32) -> TriggerConfig;
    /// Publishes message `n` (`{"n": n}`), confirmed by the broker.
    async fn publish(&self, n: u64);
    /// Removes what the test left on the broker.
    async fn cleanup(self);

    /// After the 50 messages of [`scenario::delivers_every_message_once`] were delivered.
    async fn check_delivered(&self, run: &Running) {
        let _ = run;
    }
    /// After every message of [`scenario::failure_is_redelivered`] succeeded.
    async fn check_redelivered(&self, run: &Running) {
        let _ = run;
    }
    /// After the source of [`scenario::failure_is_redelivered`] stopped.
    async fn check_after_redelivery(&self) {}
}

/// Asserts the lag reported by the source reaches 0 within 10 s.
pub async fn assert_lag_reaches_zero(run: &Running) {
    assert!(
        poll(Duration::from_secs(10), || run.status.snapshot().lag
            == Some(0))
        .await,
        "lag {:?}",
        run.status.snapshot().lag
    );
}

/// The test scenarios every broker source passes.
pub mod scenario {
    use super::*;

    /// Starts `b`'s source with `opts` for the broker at `addr`.
    fn run<B: TestBroker>(
        b: &B,
        addr: &str,
        batch_size: u32,
        window_ms: u32,
        opts: Opts,
    ) -> Running {
        start(b.source(), b.config(addr, batch_size, window_ms), opts)
    }

    /// 50 messages published while connected are each delivered once.
    pub async fn delivers_every_message_once<B: TestBroker>(b: B) {
        let run = run(&b, B::ADDR, 1, 0, Opts::default());
        run.wait_state(TriggerState::Connected, Duration::from_secs(10))
            .await;
        for n in 0..50 {
            b.publish(n).await;
        }
        run.wait_all(50, Duration::from_secs(20)).await;
        assert!(run.seen().values().all(|&c| c == 1), "{:?}", run.seen());
        assert!(run.fake.max_running.load(Ordering::SeqCst) <= 4);
        b.check_delivered(&run).await;
        run.stop().await;
        b.cleanup().await;
    }

    /// Message 3 fails `B::FAILURES` times and is delivered again until it succeeds.
    pub async fn failure_is_redelivered<B: TestBroker>(b: B) {
        let (handler, failures) = fail_first(3, B::FAILURES);
        let opts = Opts {
            handler,
            ..Opts::default()
        };
        let run = run(&b, B::ADDR, 1, 0, opts);
        run.wait_state(TriggerState::Connected, Duration::from_secs(10))
            .await;
        for n in 0..10 {
            b.publish(n).await;
        }
        run.wait_all(10, B::REDELIVERY_WITHIN).await;
        assert_eq!(failures.load(Ordering::SeqCst), B::FAILURES);
        assert_eq!(
            run.seen()[&3],
            B::FAILURES + 1,
            "{} failed deliveries and the successful one",
            B::FAILURES
        );
        assert_eq!(run.status.snapshot().failed, B::FAILURES as u64);
        b.check_redelivered(&run).await;
        run.stop().await;
        b.check_after_redelivery().await;
        b.cleanup().await;
    }

    /// 45 messages arrive in batches of at most 10, at most 2 invocations at a time.
    /// With `publish_first` they are published before the source starts.
    pub async fn batches_respect_size_and_concurrency<B: TestBroker>(b: B, publish_first: bool) {
        if publish_first {
            for n in 0..45 {
                b.publish(n).await;
            }
        }
        let opts = Opts {
            concurrency: 2,
            delay: Duration::from_millis(50),
            ..Opts::default()
        };
        let run = run(&b, B::ADDR, 10, 300, opts);
        if !publish_first {
            run.wait_state(TriggerState::Connected, Duration::from_secs(10))
                .await;
            for n in 0..45 {
                b.publish(n).await;
            }
        }
        run.wait_all(45, Duration::from_secs(20)).await;
        let sizes = batch_sizes(&run, 10);
        assert!(sizes.iter().any(|&n| n > 1), "no batching: {sizes:?}");
        assert!(run.fake.max_running.load(Ordering::SeqCst) <= 2);
        run.stop().await;
        b.cleanup().await;
    }

    /// The connection is cut through a proxy after some of 100 messages; 100 more are
    /// published while it is down; all 200 arrive after it resumes.
    pub async fn connection_cut_loses_nothing<B: TestBroker>(b: B) {
        let proxy = Proxy::start(B::ADDR).await;
        let opts = Opts {
            delay: Duration::from_millis(5),
            ..Opts::default()
        };
        let run = run(&b, &proxy.host_port(), 1, 0, opts);
        run.wait_state(TriggerState::Connected, Duration::from_secs(10))
            .await;
        for n in 0..100 {
            b.publish(n).await;
        }
        assert!(poll(Duration::from_secs(10), || run.seen().len() >= 20).await);
        proxy.break_all();
        let down = run
            .wait_state(TriggerState::Connecting, Duration::from_secs(10))
            .await;
        assert!(down.last_error.is_some());
        // Kept by the broker (for MQTT: queued for the persistent session) while away.
        for n in 100..200 {
            b.publish(n).await;
        }
        proxy.resume();
        run.wait_state(TriggerState::Connected, Duration::from_secs(15))
            .await;
        // NATS redelivers what the cut connection held only after its 30 s ack wait.
        run.wait_all(200, Duration::from_secs(90)).await;
        assert!(proxy.connections() >= 2);
        run.stop().await;
        b.cleanup().await;
    }

    /// Against a port nothing listens on the source stays connecting with the error.
    pub async fn unreachable_broker_shows_connecting_with_the_error<B: TestBroker>(b: B) {
        let port = dead_port().await;
        let run = run(&b, &format!("127.0.0.1:{port}"), 1, 0, Opts::default());
        assert!(
            poll(Duration::from_secs(10), || run
                .status
                .snapshot()
                .last_error
                .is_some())
            .await
        );
        let st = run.status.snapshot();
        assert_eq!(st.state, TriggerState::Connecting);
        assert!(
            st.last_error.unwrap().contains(B::NAME),
            "error names the broker"
        );
        run.stop().await;
        b.cleanup().await;
    }
}
