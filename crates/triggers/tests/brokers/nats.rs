//! NATS JetStream source against the NATS server on 127.0.0.1:4222.

use super::common::*;
use arcus_core::trigger::{Batching, Credentials, NatsConfig, TriggerConfig, TriggerState};
use arcus_testkit::proxy::Proxy;
use arcus_triggers::nats::NatsSource;
use async_nats::jetstream::{self, stream};
use std::sync::atomic::Ordering;
use std::time::Duration;

const NATS: &str = "127.0.0.1:4222";

struct TestStream {
    js: jetstream::Context,
    name: String,
    prefix: String,
}

impl TestStream {
    async fn new() -> Self {
        let client = async_nats::connect(NATS).await.unwrap();
        let js = jetstream::new(client);
        let name = unique("ARCUS_T");
        let prefix = format!("t.{}", uuid::Uuid::new_v4().simple());
        js.create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
        Self { js, name, prefix }
    }

    fn config(&self, url: &str, batch_size: u32, window: u32) -> TriggerConfig {
        TriggerConfig::Nats(NatsConfig {
            url: url.into(),
            stream: self.name.clone(),
            consumer: "arcus".into(),
            subject: None,
            auth: Credentials::default(),
            batching: Batching {
                batch_size,
                batch_window_ms: window,
            },
        })
    }

    async fn publish(&self, n: u64) {
        self.js
            .publish(
                format!("{}.n{}", self.prefix, n % 3),
                format!(r#"{{"n":{n}}}"#).into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn delete(self) {
        self.js.delete_stream(&self.name).await.unwrap();
    }
}

fn url(addr: &str) -> String {
    format!("nats://{addr}")
}

#[tokio::test]
async fn nats_delivers_every_message_once_with_its_record() {
    let s = TestStream::new().await;
    let run = start(
        Box::new(NatsSource),
        s.config(&url(NATS), 1, 0),
        Opts::default(),
    );
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..50 {
        s.publish(n).await;
    }
    run.wait_all(50, Duration::from_secs(20)).await;
    assert!(run.seen().values().all(|&c| c == 1), "{:?}", run.seen());
    let first = run
        .records()
        .into_iter()
        .find(|r| data_n(r) == Some(0))
        .unwrap();
    assert_eq!(first["type"], "nats");
    assert_eq!(first["stream"], s.name.as_str());
    assert_eq!(first["subject"], format!("{}.n0", s.prefix).as_str());
    assert!(first["sequence"].as_u64().unwrap() >= 1);
    assert!(first["headers"].is_object());
    assert!(run.fake.max_running.load(Ordering::SeqCst) <= 4);
    assert_eq!(run.status.snapshot().delivered, 50);
    // The lag comes from the consumer info and reaches 0.
    assert!(
        poll(Duration::from_secs(10), || run.status.snapshot().lag
            == Some(0))
        .await
    );
    run.stop().await;
    s.delete().await;
}

#[tokio::test]
async fn nats_failure_is_nacked_and_redelivered() {
    let s = TestStream::new().await;
    let (handler, failures) = fail_first(3, 2);
    let opts = Opts {
        handler,
        ..Opts::default()
    };
    let run = start(Box::new(NatsSource), s.config(&url(NATS), 1, 0), opts);
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..10 {
        s.publish(n).await;
    }
    run.wait_all(10, Duration::from_secs(20)).await;
    assert_eq!(failures.load(Ordering::SeqCst), 2);
    assert_eq!(
        run.seen()[&3],
        3,
        "2 failed deliveries and the successful one"
    );
    let status = run.status.snapshot();
    assert_eq!(status.failed, 2);
    // Redeliveries say so.
    let last = run.records().into_iter().rfind(|r| data_n(r) == Some(3));
    assert_eq!(last.unwrap()["delivered"], 3);
    run.stop().await;
    s.delete().await;
}

#[tokio::test]
async fn nats_batches_hold_at_most_batch_size_and_respect_concurrency() {
    let s = TestStream::new().await;
    for n in 0..45 {
        s.publish(n).await;
    }
    let opts = Opts {
        concurrency: 2,
        delay: Duration::from_millis(50),
        ..Opts::default()
    };
    let run = start(Box::new(NatsSource), s.config(&url(NATS), 10, 300), opts);
    // The consumer is created with DeliverPolicy::All: earlier messages count too.
    run.wait_all(45, Duration::from_secs(20)).await;
    let sizes = batch_sizes(&run, 10);
    assert!(sizes.iter().any(|&n| n > 1), "no batching: {sizes:?}");
    assert!(run.fake.max_running.load(Ordering::SeqCst) <= 2);
    run.stop().await;
    s.delete().await;
}

#[tokio::test]
async fn nats_connection_cut_loses_nothing() {
    let s = TestStream::new().await;
    let proxy = Proxy::start(NATS).await;
    let opts = Opts {
        delay: Duration::from_millis(5),
        ..Opts::default()
    };
    let run = start(
        Box::new(NatsSource),
        s.config(&url(&proxy.host_port()), 1, 0),
        opts,
    );
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..100 {
        s.publish(n).await;
    }
    assert!(poll(Duration::from_secs(10), || run.seen().len() >= 20).await);
    proxy.break_all();
    let down = run
        .wait_state(TriggerState::Connecting, Duration::from_secs(10))
        .await;
    assert!(down.last_error.is_some());
    for n in 100..200 {
        s.publish(n).await;
    }
    proxy.resume();
    run.wait_state(TriggerState::Connected, Duration::from_secs(15))
        .await;
    run.wait_all(200, Duration::from_secs(40)).await;
    assert!(proxy.connections() >= 2);
    run.stop().await;
    s.delete().await;
}

#[tokio::test]
async fn nats_unreachable_server_shows_connecting_with_the_error() {
    let port = dead_port().await;
    let s = TestStream::new().await;
    let run = start(
        Box::new(NatsSource),
        s.config(&format!("nats://127.0.0.1:{port}"), 1, 0),
        Opts::default(),
    );
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
        st.last_error.unwrap().contains("nats"),
        "error names the broker"
    );
    run.stop().await;
    s.delete().await;
}
