//! Redis Streams source against the Redis on 127.0.0.1:6379.

use super::common::*;
use arcus_core::trigger::{Batching, Credentials, RedisConfig, TriggerConfig};
use arcus_triggers::Source;
use arcus_triggers::redis::RedisSource;
use redis::AsyncCommands as _;
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

    async fn pending(&self) -> usize {
        let mut c = self.conn.clone();
        let r: redis::streams::StreamPendingReply = c.xpending(&self.key, "arcus").await.unwrap();
        r.count()
    }
}

impl TestBroker for TestStream {
    const ADDR: &'static str = REDIS;
    const NAME: &'static str = "redis";
    const FAILURES: usize = 1;
    /// Claimed again once idle for 5 s.
    const REDELIVERY_WITHIN: Duration = Duration::from_secs(30);

    fn source(&self) -> Box<dyn Source> {
        Box::new(RedisSource)
    }

    fn config(&self, addr: &str, batch_size: u32, window_ms: u32) -> TriggerConfig {
        TriggerConfig::Redis(RedisConfig {
            url: format!("redis://{addr}/"),
            stream: self.key.clone(),
            group: "arcus".into(),
            auth: Credentials::default(),
            batching: Batching {
                batch_size,
                batch_window_ms: window_ms,
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

    async fn cleanup(self) {
        let mut c = self.conn.clone();
        let _: () = c.del(&self.key).await.unwrap();
    }
    async fn check_delivered(&self, run: &Running) {
        let r = run
            .records()
            .into_iter()
            .find(|r| data_n(r) == Some(9))
            .unwrap();
        assert_eq!(r["type"], "redis");
        assert_eq!(r["stream"], self.key.as_str());
        assert_eq!(r["group"], "arcus");
        assert_eq!(r["fields"]["kind"], "test");
        assert!(r["id"].as_str().unwrap().contains('-'));
        // Everything acked: nothing pending, no lag.
        assert_lag_reaches_zero(run).await;
        assert_eq!(self.pending().await, 0);
    }

    async fn check_after_redelivery(&self) {
        assert_eq!(self.pending().await, 0);
    }
}

#[tokio::test]
async fn redis_creates_the_group_and_delivers_every_entry_once() {
    scenario::delivers_every_message_once(TestStream::new().await).await;
}

#[tokio::test]
async fn redis_failure_stays_pending_and_is_claimed_again() {
    scenario::failure_is_redelivered(TestStream::new().await).await;
}

#[tokio::test]
async fn redis_batches_hold_at_most_batch_size_and_respect_concurrency() {
    scenario::batches_respect_size_and_concurrency(TestStream::new().await, false).await;
}

#[tokio::test]
async fn redis_connection_cut_loses_nothing() {
    scenario::connection_cut_loses_nothing(TestStream::new().await).await;
}

#[tokio::test]
async fn redis_unreachable_server_shows_connecting_with_the_error() {
    scenario::unreachable_broker_shows_connecting_with_the_error(TestStream::new().await).await;
}
