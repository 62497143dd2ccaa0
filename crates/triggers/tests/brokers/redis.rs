//! Redis Streams source against the Redis on 127.0.0.1:6379.

use super::common::*;
use arcus_core::trigger::{Batching, Credentials, RedisConfig, TriggerConfig, TriggerState};
use arcus_testkit::proxy::Proxy;
use arcus_triggers::redis::RedisSource;
use redis::AsyncCommands as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

const REDIS: &str = "127.0.0.1:6379";

struct TestStream {
    conn: redis::aio::MultiplexedConnection,
    key: String,
}

impl TestStream {
    async fn new() -> Self {
        let client = redis::Client::open(format!("redis://{REDIS}/")).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        Self {
            conn,
            key: unique("arcus-test"),
        }
    }

    fn config(&self, addr: &str, batch_size: u32, window: u32) -> TriggerConfig {
        TriggerConfig::Redis(RedisConfig {
            url: format!("redis://{addr}/"),
            stream: self.key.clone(),
            group: "arcus".into(),
            auth: Credentials::default(),
            batching: Batching {
                batch_size,
                batch_window_ms: window,
            },
        })
    }

    async fn publish(&self, n: u64) {
        let mut c = self.conn.clone();
        let _: String = c
            .xadd(
                &self.key,
                "*",
                &[("n", n.to_string()), ("kind", "test".into())],
            )
            .await
            .unwrap();
    }

    async fn pending(&self) -> usize {
        let mut c = self.conn.clone();
        let r: redis::streams::StreamPendingReply = c.xpending(&self.key, "arcus").await.unwrap();
        r.count()
    }

    async fn delete(self) {
        let mut c = self.conn.clone();
        let _: () = c.del(&self.key).await.unwrap();
    }
}

#[tokio::test]
async fn redis_creates_the_group_and_delivers_every_entry_once() {
    let s = TestStream::new().await;
    let run = start(
        Box::new(RedisSource),
        s.config(REDIS, 1, 0),
        Opts::default(),
    );
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..50 {
        s.publish(n).await;
    }
    run.wait_all(50, Duration::from_secs(20)).await;
    assert!(run.seen().values().all(|&c| c == 1), "{:?}", run.seen());
    let r = run
        .records()
        .into_iter()
        .find(|r| data_n(r) == Some(9))
        .unwrap();
    assert_eq!(r["type"], "redis");
    assert_eq!(r["stream"], s.key.as_str());
    assert_eq!(r["group"], "arcus");
    assert_eq!(r["fields"]["kind"], "test");
    assert!(r["id"].as_str().unwrap().contains('-'));
    assert!(run.fake.max_running.load(Ordering::SeqCst) <= 4);
    // Everything acked: nothing pending, no lag.
    assert!(
        poll(Duration::from_secs(10), || run.status.snapshot().lag
            == Some(0))
        .await
    );
    assert_eq!(s.pending().await, 0);
    run.stop().await;
    s.delete().await;
}

#[tokio::test]
async fn redis_failure_stays_pending_and_is_claimed_again() {
    let s = TestStream::new().await;
    let (handler, failures) = fail_first(3, 1);
    let opts = Opts {
        handler,
        ..Opts::default()
    };
    let run = start(Box::new(RedisSource), s.config(REDIS, 1, 0), opts);
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..10 {
        s.publish(n).await;
    }
    // Claimed again once idle for 5 s.
    run.wait_all(10, Duration::from_secs(30)).await;
    assert_eq!(failures.load(Ordering::SeqCst), 1);
    assert_eq!(run.seen()[&3], 2);
    assert_eq!(run.status.snapshot().failed, 1);
    run.stop().await;
    assert_eq!(s.pending().await, 0);
    s.delete().await;
}

#[tokio::test]
async fn redis_batches_hold_at_most_batch_size_and_respect_concurrency() {
    let s = TestStream::new().await;
    let opts = Opts {
        concurrency: 2,
        delay: Duration::from_millis(50),
        ..Opts::default()
    };
    let run = start(Box::new(RedisSource), s.config(REDIS, 10, 300), opts);
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..45 {
        s.publish(n).await;
    }
    run.wait_all(45, Duration::from_secs(20)).await;
    let sizes = batch_sizes(&run, 10);
    assert!(sizes.iter().any(|&n| n > 1), "no batching: {sizes:?}");
    assert!(run.fake.max_running.load(Ordering::SeqCst) <= 2);
    run.stop().await;
    s.delete().await;
}

#[tokio::test]
async fn redis_connection_cut_loses_nothing() {
    let s = TestStream::new().await;
    let proxy = Proxy::start(REDIS).await;
    let opts = Opts {
        delay: Duration::from_millis(5),
        ..Opts::default()
    };
    let run = start(
        Box::new(RedisSource),
        s.config(&proxy.host_port(), 1, 0),
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
async fn redis_unreachable_server_shows_connecting_with_the_error() {
    let port = dead_port().await;
    let s = TestStream::new().await;
    let run = start(
        Box::new(RedisSource),
        s.config(&format!("127.0.0.1:{port}"), 1, 0),
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
    assert!(st.last_error.unwrap().contains("redis"));
    run.stop().await;
}
