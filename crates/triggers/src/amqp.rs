//! `type: amqp`: consumes a RabbitMQ queue. The queue is checked with a passive declare
//! and, only when it does not exist, declared durable (an existing queue of any kind —
//! classic, quorum, with arguments — is used as it is). Prefetch (`basic.qos`) is
//! concurrency × batch size; a message is acked after its invocation succeeded and
//! nacked with `requeue = true` 500 ms after it failed (the delay keeps a failing
//! function from spinning on the same message).

use crate::batch::{self, Batcher, Pipeline, Session, Settle};
use crate::source::{Source, SourceCtx};
use arcus_core::trigger::{AmqpConfig, TriggerConfig};
use async_trait::async_trait;
use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long a failed message is held before it is requeued.
const NACK_DELAY: Duration = Duration::from_millis(500);

/// The RabbitMQ trigger source; reads its [`AmqpConfig`] from the trigger.
pub struct AmqpSource;

/// The source for `type: amqp` triggers.
pub(crate) fn source() -> Box<dyn Source> {
    Box::new(AmqpSource)
}

#[async_trait]
impl Source for AmqpSource {
    async fn run(self: Box<Self>, ctx: SourceCtx) {
        let TriggerConfig::Amqp(config) = &ctx.trigger.config else {
            ctx.status.connecting("not an amqp trigger");
            return;
        };
        let b = config.batching;
        let pipeline = Pipeline::new(&ctx, b.batch_size, b.batch_window_ms, false);
        let session = AmqpSession {
            config: config.clone(),
            tag: format!("arcus-trigger-{}", ctx.trigger.id),
            connection: None,
        };
        batch::run_source(session, pipeline).await;
    }
}

struct AmqpSession {
    config: AmqpConfig,
    tag: String,
    connection: Option<Arc<Connection>>,
}

/// Opens a connection to `url` with `auth` in it.
pub(crate) async fn connect(url: &str, name: &str) -> Result<Connection, String> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, props)
        .await
        .map_err(|e| format!("amqp connect: {e}"))
}

/// The queue, declared durable when it does not exist; returns its ready message count.
async fn ensure_queue(conn: &Connection, queue: &str) -> Result<u32, String> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| format!("amqp channel: {e}"))?;
    let passive = QueueDeclareOptions::default().passive();
    match ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
    {
        Ok(q) => {
            let _ = ch.close(200, "OK".into()).await;
            Ok(q.message_count())
        }
        Err(_) => {
            // A failed passive declare closes the channel (404): declare on a new one.
            let ch = conn
                .create_channel()
                .await
                .map_err(|e| format!("amqp channel: {e}"))?;
            let q = ch
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("amqp queue {queue}: {e}"))?;
            let _ = ch.close(200, "OK".into()).await;
            Ok(q.message_count())
        }
    }
}

#[async_trait]
impl Session for AmqpSession {
    async fn session(&mut self, p: &mut Pipeline) -> Result<(), String> {
        if let Some(old) = self.connection.take() {
            close(&old, "reconnecting").await;
        }
        let url = batch::url_with_credentials(&self.config.url, &self.config.auth)?;
        let conn = Arc::new(connect(&url, &self.tag).await?);
        self.connection = Some(conn.clone());
        let queue = self.config.queue.clone();
        let lag = ensure_queue(&conn, &queue).await?;
        p.status.set_lag(Some(u64::from(lag)));
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| format!("amqp channel: {e}"))?;
        let prefetch = u16::try_from(p.capacity()).unwrap_or(u16::MAX);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| format!("amqp basic.qos: {e}"))?;
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                format!("{}-{}", self.tag, uuid::Uuid::new_v4().simple())
                    .as_str()
                    .into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("amqp consume {queue}: {e}"))?;
        p.set_connected();
        let lag_channel = conn
            .create_channel()
            .await
            .map_err(|e| format!("amqp channel: {e}"))?;
        let lag_queue = queue.clone();
        let _lag = batch::spawn_lag(p.status.clone(), &p.cancel, move || {
            let (ch, q) = (lag_channel.clone(), lag_queue.clone());
            async move { queue_length(&ch, &q).await }
        });
        let mut batcher = Batcher::new(Arc::new(AmqpSettle));
        loop {
            tokio::select! {
                biased;
                _ = p.cancel.cancelled() => return Ok(()),
                d = consumer.next() => match d {
                    Some(Ok(delivery)) => {
                        let record = record(&queue, &delivery);
                        p.push(&mut batcher, record, delivery.acker).await;
                    }
                    Some(Err(e)) => return Err(format!("amqp consumer: {e}")),
                    None => return Err("amqp consumer cancelled by the server".into()),
                },
                _ = batcher.due() => p.flush(&mut batcher).await,
            }
        }
    }

    async fn close(&mut self) {
        if let Some(c) = self.connection.take() {
            close(&c, "trigger stopped").await;
        }
    }
}

/// Closes a connection, giving up after 1 s (a dead one may never answer).
async fn close(conn: &Connection, why: &str) {
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.close(200, why.into())).await;
}

/// Ready messages of `queue` (passive declare), `None` on error.
async fn queue_length(ch: &Channel, queue: &str) -> Option<u64> {
    let passive = QueueDeclareOptions::default().passive();
    ch.queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .ok()
        .map(|q| u64::from(q.message_count()))
}

/// The event record of one delivery (see docs/triggers.md).
fn record(queue: &str, d: &lapin::message::Delivery) -> Value {
    let mut r = Map::new();
    r.insert("type".into(), "amqp".into());
    r.insert("queue".into(), queue.into());
    r.insert("exchange".into(), d.exchange.as_str().into());
    r.insert("routing_key".into(), d.routing_key.as_str().into());
    r.insert("delivery_tag".into(), d.delivery_tag.into());
    r.insert("redelivered".into(), d.redelivered.into());
    let p = &d.properties;
    let mut props = Map::new();
    let mut put = |k: &str, v: Option<&lapin::types::ShortString>| {
        if let Some(v) = v {
            props.insert(k.into(), v.as_str().into());
        }
    };
    put("content_type", p.content_type().as_ref());
    put("content_encoding", p.content_encoding().as_ref());
    put("message_id", p.message_id().as_ref());
    put("correlation_id", p.correlation_id().as_ref());
    put("reply_to", p.reply_to().as_ref());
    put("type", p.kind().as_ref());
    put("app_id", p.app_id().as_ref());
    if let Some(t) = p.timestamp() {
        props.insert("timestamp".into(), (*t).into());
    }
    r.insert("properties".into(), Value::Object(props));
    let mut headers = Map::new();
    if let Some(h) = p.headers() {
        for (k, v) in h.inner() {
            headers.insert(k.to_string(), amqp_value(v));
        }
    }
    r.insert("headers".into(), Value::Object(headers));
    batch::put_data(&mut r, &d.data);
    Value::Object(r)
}

/// A header value as JSON (numbers, booleans, strings; bytes as text or base64).
fn amqp_value(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => (*b).into(),
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::Float(n) => (*n).into(),
        AMQPValue::Double(n) => (*n).into(),
        AMQPValue::ShortString(s) => s.as_str().into(),
        AMQPValue::LongString(s) => batch::text_or_base64(s.as_bytes()),
        AMQPValue::ByteArray(b) => batch::text_or_base64(b.as_slice()),
        AMQPValue::Timestamp(t) => (*t).into(),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(amqp_value).collect()),
        AMQPValue::FieldTable(t) => Value::Object(
            t.inner()
                .iter()
                .map(|(k, v)| (k.to_string(), amqp_value(v)))
                .collect(),
        ),
        AMQPValue::DecimalValue(d) => format!("{d:?}").into(),
        AMQPValue::Void => Value::Null,
    }
}

struct AmqpSettle;

#[async_trait]
impl Settle for AmqpSettle {
    type Handle = lapin::Acker;

    async fn ack(&self, handles: Vec<lapin::Acker>) {
        for a in handles {
            if let Err(e) = a.ack(BasicAckOptions::default()).await {
                tracing::debug!(error = %e, "amqp ack failed (the message will be redelivered)");
            }
        }
    }

    async fn nack(&self, handles: Vec<lapin::Acker>) {
        tokio::time::sleep(NACK_DELAY).await;
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        for a in handles {
            if let Err(e) = a.nack(requeue).await {
                tracing::debug!(error = %e, "amqp nack failed (the message will be redelivered)");
            }
        }
    }
}
