//! MQTT source against the Mosquitto on 127.0.0.1:1883.

use super::common::*;
use arcus_core::trigger::{Batching, Credentials, MqttConfig, TriggerConfig, TriggerState};
use arcus_testkit::proxy::Proxy;
use arcus_triggers::mqtt::MqttSource;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::Ordering;
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

    fn config(&self, addr: &str, batch_size: u32, window: u32) -> TriggerConfig {
        TriggerConfig::Mqtt(MqttConfig {
            url: format!("mqtt://{addr}"),
            topic: format!("{}/#", self.base),
            client_id: Some(self.client_id.clone()),
            auth: Credentials::default(),
            batching: Batching {
                batch_size,
                batch_window_ms: window,
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
    async fn delete(self) {
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
}

#[tokio::test]
async fn mqtt_delivers_every_message_with_its_record() {
    let t = TestTopic::new().await;
    let run = start(
        Box::new(MqttSource),
        t.config(MOSQUITTO, 1, 0),
        Opts::default(),
    );
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..50 {
        t.publish(n).await;
    }
    run.wait_all(50, Duration::from_secs(20)).await;
    assert!(run.seen().values().all(|&c| c == 1), "{:?}", run.seen());
    let r = run
        .records()
        .into_iter()
        .find(|r| data_n(r) == Some(4))
        .unwrap();
    assert_eq!(r["type"], "mqtt");
    assert_eq!(r["topic"], format!("{}/d1", t.base).as_str());
    assert_eq!(r["qos"], 1);
    assert!(run.fake.max_running.load(Ordering::SeqCst) <= 4);
    run.stop().await;
    t.delete().await;
}

#[tokio::test]
async fn mqtt_failure_is_retried_until_it_succeeds() {
    let t = TestTopic::new().await;
    let (handler, failures) = fail_first(3, 2);
    let opts = Opts {
        handler,
        ..Opts::default()
    };
    let run = start(Box::new(MqttSource), t.config(MOSQUITTO, 1, 0), opts);
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..10 {
        t.publish(n).await;
    }
    run.wait_all(10, Duration::from_secs(20)).await;
    assert_eq!(failures.load(Ordering::SeqCst), 2);
    assert_eq!(run.seen()[&3], 3);
    assert_eq!(run.status.snapshot().failed, 2);
    run.stop().await;
    t.delete().await;
}

#[tokio::test]
async fn mqtt_batches_hold_at_most_batch_size_and_respect_concurrency() {
    let t = TestTopic::new().await;
    let opts = Opts {
        concurrency: 2,
        delay: Duration::from_millis(50),
        ..Opts::default()
    };
    let run = start(Box::new(MqttSource), t.config(MOSQUITTO, 10, 300), opts);
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..45 {
        t.publish(n).await;
    }
    run.wait_all(45, Duration::from_secs(20)).await;
    let sizes = batch_sizes(&run, 10);
    assert!(sizes.iter().any(|&n| n > 1), "no batching: {sizes:?}");
    assert!(run.fake.max_running.load(Ordering::SeqCst) <= 2);
    run.stop().await;
    t.delete().await;
}

#[tokio::test]
async fn mqtt_connection_cut_loses_nothing() {
    let t = TestTopic::new().await;
    let proxy = Proxy::start(MOSQUITTO).await;
    let opts = Opts {
        delay: Duration::from_millis(5),
        ..Opts::default()
    };
    let run = start(
        Box::new(MqttSource),
        t.config(&proxy.host_port(), 1, 0),
        opts,
    );
    run.wait_state(TriggerState::Connected, Duration::from_secs(10))
        .await;
    for n in 0..100 {
        t.publish(n).await;
    }
    assert!(poll(Duration::from_secs(10), || run.seen().len() >= 20).await);
    proxy.break_all();
    let down = run
        .wait_state(TriggerState::Connecting, Duration::from_secs(10))
        .await;
    assert!(down.last_error.is_some());
    // Queued by the broker for the persistent session while it is away.
    for n in 100..200 {
        t.publish(n).await;
    }
    proxy.resume();
    run.wait_state(TriggerState::Connected, Duration::from_secs(15))
        .await;
    run.wait_all(200, Duration::from_secs(40)).await;
    assert!(proxy.connections() >= 2);
    run.stop().await;
    t.delete().await;
}

#[tokio::test]
async fn mqtt_unreachable_broker_shows_connecting_with_the_error() {
    let port = dead_port().await;
    let t = TestTopic::new().await;
    let run = start(
        Box::new(MqttSource),
        t.config(&format!("127.0.0.1:{port}"), 1, 0),
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
    assert!(st.last_error.unwrap().contains("mqtt"));
    run.stop().await;
    t.task.abort();
}
