//! NATS JetStream source against the NATS server on 127.0.0.1:4222.

use super::common::*;
use arcus_core::trigger::{Batching, Credentials, NatsConfig, TriggerConfig};
use arcus_triggers::Source;
use arcus_triggers::nats::NatsSource;
use async_nats::jetstream::{self, stream};

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
}

impl TestBroker for TestStream {
    const ADDR: &'static str = NATS;
    const NAME: &'static str = "nats";

    fn source(&self) -> Box<dyn Source> {
        Box::new(NatsSource)
    }

    fn config(&self, addr: &str, batch_size: u32, window_ms: u32) -> TriggerConfig {
        TriggerConfig::Nats(NatsConfig {
            url: format!("nats://{addr}"),
            stream: self.name.clone(),
            consumer: "arcus".into(),
            subject: None,
            auth: Credentials::default(),
            batching: Batching {
                batch_size,
                batch_window_ms: window_ms,
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

    async fn cleanup(self) {
        self.js.delete_stream(&self.name).await.unwrap();
    }

    async fn check_delivered(&self, run: &Running) {
        let first = run
            .records()
            .into_iter()
            .find(|r| data_n(r) == Some(0))
            .unwrap();
        assert_eq!(first["type"], "nats");
        assert_eq!(first["stream"], self.name.as_str());
        assert_eq!(first["subject"], format!("{}.n0", self.prefix).as_str());
        assert!(first["sequence"].as_u64().unwrap() >= 1);
        assert!(first["headers"].is_object());
        assert_eq!(run.status.snapshot().delivered, 50);
        // The lag comes from the consumer info and reaches 0.
        assert_lag_reaches_zero(run).await;
    }

    async fn check_redelivered(&self, run: &Running) {
        // Redeliveries say so.
        let last = run.records().into_iter().rfind(|r| data_n(r) == Some(3));
        assert_eq!(last.unwrap()["delivered"], 3);
    }
}

#[tokio::test]
async fn nats_delivers_every_message_once_with_its_record() {
    scenario::delivers_every_message_once(TestStream::new().await).await;
}

#[tokio::test]
async fn nats_failure_is_nacked_and_redelivered() {
    scenario::failure_is_redelivered(TestStream::new().await).await;
}

/// The consumer is created with DeliverPolicy::All: messages published before the
/// source starts count too.
#[tokio::test]
async fn nats_batches_hold_at_most_batch_size_and_respect_concurrency() {
    scenario::batches_respect_size_and_concurrency(TestStream::new().await, true).await;
}

#[tokio::test]
async fn nats_connection_cut_loses_nothing() {
    scenario::connection_cut_loses_nothing(TestStream::new().await).await;
}

#[tokio::test]
async fn nats_unreachable_server_shows_connecting_with_the_error() {
    scenario::unreachable_broker_shows_connecting_with_the_error(TestStream::new().await).await;
}
