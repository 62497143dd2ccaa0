//! MQTT source against the Mosquitto on 127.0.0.1:1883.

use super::common::*;
use arcus_core::trigger::{Batching, Credentials, MqttConfig, TriggerConfig};
use arcus_triggers::Source;
use arcus_triggers::mqtt::MqttSource;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;

const MOSQUITTO: &str = "127.0.0.1:1883";

struct TestTopic {
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
    base: String,
    client_id: String,
}

impl TestTopic {
    async fn new() -> Self {
        let mut opts = MqttOptions::new(unique("arcus-pub"), "127.0.0.1", 1883);
        opts.set_clean_session(true);
        let (client, mut el) = AsyncClient::new(opts, 256);
        let task = tokio::spawn(async move {
            loop {
                if el.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Self {
            client,
            task,
            base: format!("arcus/test/{}", uuid::Uuid::new_v4().simple()),
            client_id: unique("arcus-sub"),
        }
    }
}

impl TestBroker for TestTopic {
    const ADDR: &'static str = MOSQUITTO;
    const NAME: &'static str = "mqtt";

    fn source(&self) -> Box<dyn Source> {
        Box::new(MqttSource)
    }

    fn config(&self, addr: &str, batch_size: u32, window_ms: u32) -> TriggerConfig {
        TriggerConfig::Mqtt(MqttConfig {
            url: format!("mqtt://{addr}"),
            topic: format!("{}/#", self.base),
            client_id: Some(self.client_id.clone()),
            auth: Credentials::default(),
            batching: Batching {
                batch_size,
                batch_window_ms: window_ms,
            },
        })
    }

    async fn publish(&self, n: u64) {
        let topic = format!("{}/d{}", self.base, n % 3);
        self.client
            .publish(topic, QoS::AtLeastOnce, false, format!(r#"{{"n":{n}}}"#))
            .await
            .unwrap();
    }

    /// Ends the publisher and removes the source's persistent session from the broker.
    async fn cleanup(self) {
        self.task.abort();
        let mut opts = MqttOptions::new(&self.client_id, "127.0.0.1", 1883);
        opts.set_clean_session(true);
        let (client, mut el) = AsyncClient::new(opts, 10);
        let clean = async {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.disconnect().await;
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), clean).await;
    }
    async fn check_delivered(&self, run: &Running) {
        let r = run
            .records()
            .into_iter()
            .find(|r| data_n(r) == Some(4))
            .unwrap();
        assert_eq!(r["type"], "mqtt");
        assert_eq!(r["topic"], format!("{}/d1", self.base).as_str());
        assert_eq!(r["qos"], 1);
    }
}

#[tokio::test]
async fn mqtt_delivers_every_message_with_its_record() {
    scenario::delivers_every_message_once(TestTopic::new().await).await;
}

#[tokio::test]
async fn mqtt_failure_is_retried_until_it_succeeds() {
    scenario::failure_is_redelivered(TestTopic::new().await).await;
}

#[tokio::test]
async fn mqtt_batches_hold_at_most_batch_size_and_respect_concurrency() {
    scenario::batches_respect_size_and_concurrency(TestTopic::new().await, false).await;
}

/// Messages published while the source is away are queued by the broker for its
/// persistent session.
#[tokio::test]
async fn mqtt_connection_cut_loses_nothing() {
    scenario::connection_cut_loses_nothing(TestTopic::new().await).await;
}

#[tokio::test]
async fn mqtt_unreachable_broker_shows_connecting_with_the_error() {
    scenario::unreachable_broker_shows_connecting_with_the_error(TestTopic::new().await).await;
}
