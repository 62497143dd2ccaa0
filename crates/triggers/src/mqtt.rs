//! `type: mqtt`: a topic filter subscribed at QoS 1 on a persistent session
//! (`clean_session = false`, client id from the config or `arcus-<trigger id>`), with
//! manual acks: a message is acked (PUBACK) only after its invocation succeeded.
//!
//! MQTT has no negative ack and the broker redelivers an un-acked message only when the
//! session resumes, so after a failure the source retries the invocation itself with
//! backoff (100 ms doubling to 30 s), the message staying un-acked; if the node stops or
//! the connection drops meanwhile, the broker redelivers it on the next connection.
//! The broker bounds the messages in flight to one client (mosquitto's
//! `max_inflight_messages`, 20 by default); the source runs at most `concurrency`
//! invocations and holds at most concurrency × batch size messages.

use crate::batch::{self, Batcher, Pipeline, Session, Settle};
use crate::source::{Source, SourceCtx};
use arcus_core::trigger::{MqttConfig, TriggerConfig};
use async_trait::async_trait;
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, Publish, QoS,
    SubscribeReasonCode,
};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Largest incoming message.
const MAX_PACKET: usize = 1024 * 1024;

/// The MQTT trigger source; reads its [`MqttConfig`] from the trigger.
pub struct MqttSource;

/// The source for `type: mqtt` triggers.
pub(crate) fn source() -> Box<dyn Source> {
    Box::new(MqttSource)
}

#[async_trait]
impl Source for MqttSource {
    async fn run(self: Box<Self>, ctx: SourceCtx) {
        let TriggerConfig::Mqtt(config) = &ctx.trigger.config else {
            ctx.status.connecting("not an mqtt trigger");
            return;
        };
        let b = config.batching;
        let pipeline = Pipeline::new(&ctx, b.batch_size, b.batch_window_ms, true);
        let client_id = config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("arcus-{}", ctx.trigger.id));
        let session = MqttSession {
            config: config.clone(),
            client_id,
            conn: None,
        };
        batch::run_source(session, pipeline).await;
    }
}

struct MqttSession {
    config: MqttConfig,
    client_id: String,
    /// Kept across sessions: polling the event loop again reconnects and resumes the
    /// persistent session.
    conn: Option<(AsyncClient, EventLoop)>,
}

impl MqttSession {
    fn open(&self, capacity: usize) -> Result<(AsyncClient, EventLoop), String> {
        let u = url::Url::parse(&self.config.url).map_err(|e| format!("invalid url: {e}"))?;
        if u.scheme() != "mqtt" && u.scheme() != "tcp" {
            return Err(format!(
                "mqtt url scheme {} is not supported (use mqtt://)",
                u.scheme()
            ));
        }
        let host = u.host_str().ok_or("mqtt url has no host")?;
        let mut opts = MqttOptions::new(&self.client_id, host, u.port().unwrap_or(1883));
        opts.set_clean_session(false)
            .set_manual_acks(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(MAX_PACKET, MAX_PACKET);
        if let Some(user) = &self.config.auth.username {
            let pass = self.config.auth.password.clone().unwrap_or_default();
            opts.set_credentials(user.clone(), pass);
        }
        // Room for every ack of the messages held, so an ack never waits on the loop.
        Ok(AsyncClient::new(opts, capacity * 2 + 64))
    }
}

#[async_trait]
impl Session for MqttSession {
    async fn session(&mut self, p: &mut Pipeline) -> Result<(), String> {
        if self.conn.is_none() {
            self.conn = Some(self.open(p.capacity())?);
        }
        let Some((client, eventloop)) = self.conn.take() else {
            return Err("mqtt client not created".into());
        };
        // The event loop is polled on its own task, never held up by the pipeline:
        // acks of finished invocations go out through it while new messages wait.
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let stop = p.cancel.child_token();
        let poller = tokio::spawn(poll_loop(eventloop, tx, stop.clone()));
        let topic = self.config.topic.clone();
        let result = deliver(&topic, p, &client, &mut events).await;
        stop.cancel();
        if let Ok(mut eventloop) = poller.await {
            if result.is_err() {
                // Drop the connection (a refused subscription leaves it up): the next
                // poll reconnects, and the ConnAck makes the session subscribe again.
                eventloop.clean();
            }
            self.conn = Some((client.clone(), eventloop));
        }
        if p.cancel.is_cancelled() {
            let _ = client.try_disconnect();
        }
        result
    }
}

/// Polls `eventloop` and forwards what it yields until it fails or `stop`; hands the
/// event loop back (it keeps the session's state for the next connection).
async fn poll_loop(
    mut eventloop: EventLoop,
    tx: tokio::sync::mpsc::UnboundedSender<Result<Event, String>>,
    stop: tokio_util::sync::CancellationToken,
) -> EventLoop {
    loop {
        let ev = tokio::select! {
            ev = eventloop.poll() => ev.map_err(|e| format!("mqtt: {e}")),
            _ = stop.cancelled() => return eventloop,
        };
        let failed = ev.is_err();
        if tx.send(ev).is_err() || failed {
            return eventloop;
        }
    }
}

/// Subscribes on each (re)connection and feeds the messages to the pipeline.
async fn deliver(
    topic: &str,
    p: &mut Pipeline,
    client: &AsyncClient,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Event, String>>,
) -> Result<(), String> {
    let mut batcher = Batcher::new(Arc::new(MqttSettle {
        client: client.clone(),
    }));
    loop {
        tokio::select! {
            biased;
            _ = p.cancel.cancelled() => return Ok(()),
            ev = events.recv() => match ev {
                Some(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    if ack.code != ConnectReturnCode::Success {
                        return Err(format!("mqtt connect refused: {:?}", ack.code));
                    }
                    client
                        .try_subscribe(topic, QoS::AtLeastOnce)
                        .map_err(|e| format!("mqtt subscribe: {e}"))?;
                }
                Some(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                    if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                        return Err(format!("mqtt subscription to {topic} refused"));
                    }
                    p.set_connected();
                }
                Some(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                    let record = record(&publish);
                    p.push(&mut batcher, record, publish).await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Err("mqtt event loop ended".into()),
            },
            _ = batcher.due() => p.flush(&mut batcher).await,
        }
    }
}

/// The event record of one message (see docs/triggers.md).
fn record(m: &Publish) -> Value {
    let mut r = Map::new();
    r.insert("type".into(), "mqtt".into());
    r.insert("topic".into(), m.topic.as_str().into());
    r.insert("qos".into(), (m.qos as u8).into());
    r.insert("retain".into(), m.retain.into());
    r.insert("dup".into(), m.dup.into());
    batch::put_data(&mut r, &m.payload);
    Value::Object(r)
}

struct MqttSettle {
    client: AsyncClient,
}

#[async_trait]
impl Settle for MqttSettle {
    type Handle = Publish;

    async fn ack(&self, handles: Vec<Publish>) {
        for m in handles {
            // Never waits: while the connection is down the event loop does not drain
            // its requests; an ack that does not fit is lost and the broker redelivers.
            if let Err(e) = self.client.try_ack(&m) {
                tracing::debug!(error = %e, "mqtt ack failed (the message will be redelivered)");
            }
        }
    }

    /// Never called: failures are retried in place (see the module doc).
    async fn nack(&self, _handles: Vec<Publish>) {}
}
