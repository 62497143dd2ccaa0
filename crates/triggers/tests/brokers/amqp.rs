//! AMQP source against the RabbitMQ on 127.0.0.1:5672 (guest/guest).

use super::common::*;
use arcus_core::trigger::{AmqpConfig, Batching, Credentials, TriggerConfig, TriggerState};
use arcus_testkit::proxy::Proxy;
use arcus_triggers::amqp::AmqpSource;
use lapin::options::{BasicPublishOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::sync::atomic::Ordering;
use std::time::Duration;

const RABBIT: &str = "127.0.0.1:5672";

struct TestQueue {
    _conn: Connection,
    ch: Channel,
    name: String,
}

impl TestQueue {
    async fn new() -> Self {
        let conn = Connection::connect(
            &format!("amqp://guest:guest@{RABBIT}/%2f"),
            ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        Self {
            _conn: conn,
            ch,
            name: unique("arcus-test"),
        }
    }

    fn config(&self, addr: &str, batch_size: u32, window: u32) -> TriggerConfig {
        TriggerConfig::Amqp(AmqpConfig {
            url: format!("amqp://{addr}/%2f"),
            queue: self.name.clone(),
            auth: Credentials {
                username: Some("guest".into()),
                password: Some("guest".into()),
            },
            batching: Batching {
                batch_size,
                batch_window_ms: window,
            },
        })
    }

    /// Publishes `{"n": n}` to the queue through the default exchange, confirmed.
    async fn publish(&self, n: u64) {
        let body = format!(r#"{{"n":{n}}}"#);
        self.ch
            .basic_publish(
                "".into(),
                self.name.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default().with_message_id(format!("m{n}").into()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn delete(self) {
        let _ = self
            .ch
            .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}

#[tokio::test]
async fn amqp_declares_the_queue_and_delivers_every_message_once() {
    let q = TestQueue::new().await;
    let run = start(
        Box::new(AmqpSource),
        q.config(RABBIT, 1, 0),
        Opts::default(),
    );
    // The source declares the missing queue (durable) before it is connected.
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..50 {
        q.publish(n).await;
    }
    run.wait_all(50, Duration::from_secs(20)).await;
    assert!(run.seen().values().all(|&c| c == 1), "{:?}", run.seen());
    let r = run
        .records()
        .into_iter()
        .find(|r| data_n(r) == Some(7))
        .unwrap();
    assert_eq!(r["type"], "amqp");
    assert_eq!(r["queue"], q.name.as_str());
    assert_eq!(r["routing_key"], q.name.as_str());
    assert_eq!(r["redelivered"], false);
    assert_eq!(r["properties"]["message_id"], "m7");
    assert!(run.fake.max_running.load(Ordering::SeqCst) <= 4);
    assert!(
        poll(Duration::from_secs(10), || run.status.snapshot().lag
            == Some(0))
        .await
    );
    run.stop().await;
    q.delete().await;
}

#[tokio::test]
async fn amqp_failure_is_requeued_and_redelivered() {
    let q = TestQueue::new().await;
    let (handler, failures) = fail_first(3, 2);
    let opts = Opts {
        handler,
        ..Opts::default()
    };
    let run = start(Box::new(AmqpSource), q.config(RABBIT, 1, 0), opts);
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..10 {
        q.publish(n).await;
    }
    run.wait_all(10, Duration::from_secs(20)).await;
    assert_eq!(failures.load(Ordering::SeqCst), 2);
    assert_eq!(run.seen()[&3], 3);
    let last = run
        .records()
        .into_iter()
        .rfind(|r| data_n(r) == Some(3))
        .unwrap();
    assert_eq!(last["redelivered"], true);
    assert_eq!(run.status.snapshot().failed, 2);
    run.stop().await;
    q.delete().await;
}

#[tokio::test]
async fn amqp_batches_hold_at_most_batch_size_and_respect_concurrency() {
    let q = TestQueue::new().await;
    let opts = Opts {
        concurrency: 2,
        delay: Duration::from_millis(50),
        ..Opts::default()
    };
    let run = start(Box::new(AmqpSource), q.config(RABBIT, 10, 300), opts);
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..45 {
        q.publish(n).await;
    }
    run.wait_all(45, Duration::from_secs(20)).await;
    let sizes = batch_sizes(&run, 10);
    assert!(sizes.iter().any(|&n| n > 1), "no batching: {sizes:?}");
    assert!(run.fake.max_running.load(Ordering::SeqCst) <= 2);
    run.stop().await;
    q.delete().await;
}

#[tokio::test]
async fn amqp_connection_cut_loses_nothing() {
    let q = TestQueue::new().await;
    let proxy = Proxy::start(RABBIT).await;
    let opts = Opts {
        delay: Duration::from_millis(5),
        ..Opts::default()
    };
    let run = start(
        Box::new(AmqpSource),
        q.config(&proxy.host_port(), 1, 0),
        opts,
    );
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..100 {
        q.publish(n).await;
    }
    assert!(poll(Duration::from_secs(10), || run.seen().len() >= 20).await);
    proxy.break_all();
    let down = run
        .wait_state(TriggerState::Connecting, Duration::from_secs(10))
        .await;
    assert!(down.last_error.is_some());
    for n in 100..200 {
        q.publish(n).await;
    }
    proxy.resume();
    run.wait_state(TriggerState::Connected, Duration::from_secs(15))
        .await;
    run.wait_all(200, Duration::from_secs(40)).await;
    assert!(proxy.connections() >= 2);
    run.stop().await;
    q.delete().await;
}

#[tokio::test]
async fn amqp_unreachable_broker_shows_connecting_with_the_error() {
    let port = dead_port().await;
    let q = TestQueue::new().await;
    let run = start(
        Box::new(AmqpSource),
        q.config(&format!("127.0.0.1:{port}"), 1, 0),
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
    assert!(st.last_error.unwrap().contains("amqp"));
    run.stop().await;
}
