//! AMQP source against the RabbitMQ on 127.0.0.1:5672 (guest/guest).

use super::common::*;
use arcus_core::trigger::{AmqpConfig, Batching, Credentials, TriggerConfig};
use arcus_triggers::Source;
use arcus_triggers::amqp::AmqpSource;
use lapin::options::{BasicPublishOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

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
}

impl TestBroker for TestQueue {
    const ADDR: &'static str = RABBIT;
    const NAME: &'static str = "amqp";

    fn source(&self) -> Box<dyn Source> {
        Box::new(AmqpSource)
    }

    fn config(&self, addr: &str, batch_size: u32, window_ms: u32) -> TriggerConfig {
        TriggerConfig::Amqp(AmqpConfig {
            url: format!("amqp://{addr}/%2f"),
            queue: self.name.clone(),
            auth: Credentials {
                username: Some("guest".into()),
                password: Some("guest".into()),
            },
            batching: Batching {
                batch_size,
                batch_window_ms: window_ms,
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

    async fn cleanup(self) {
        let _ = self
            .ch
            .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    async fn check_delivered(&self, run: &Running) {
        let r = run
            .records()
            .into_iter()
            .find(|r| data_n(r) == Some(7))
            .unwrap();
        assert_eq!(r["type"], "amqp");
        assert_eq!(r["queue"], self.name.as_str());
        assert_eq!(r["routing_key"], self.name.as_str());
        assert_eq!(r["redelivered"], false);
        assert_eq!(r["properties"]["message_id"], "m7");
        assert_lag_reaches_zero(run).await;
    }

    async fn check_redelivered(&self, run: &Running) {
        let last = run
            .records()
            .into_iter()
            .rfind(|r| data_n(r) == Some(3))
            .unwrap();
        assert_eq!(last["redelivered"], true);
    }
}

/// The source declares the missing queue (durable) before it is connected.
#[tokio::test]
async fn amqp_declares_the_queue_and_delivers_every_message_once() {
    scenario::delivers_every_message_once(TestQueue::new().await).await;
}

#[tokio::test]
async fn amqp_failure_is_requeued_and_redelivered() {
    scenario::failure_is_redelivered(TestQueue::new().await).await;
}

#[tokio::test]
async fn amqp_batches_hold_at_most_batch_size_and_respect_concurrency() {
    scenario::batches_respect_size_and_concurrency(TestQueue::new().await, false).await;
}

#[tokio::test]
async fn amqp_connection_cut_loses_nothing() {
    scenario::connection_cut_loses_nothing(TestQueue::new().await).await;
}

#[tokio::test]
async fn amqp_unreachable_broker_shows_connecting_with_the_error() {
    scenario::unreachable_broker_shows_connecting_with_the_error(TestQueue::new().await).await;
}
