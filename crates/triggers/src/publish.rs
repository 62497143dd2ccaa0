//! [`Publishers`]: delivers async-invocation destination records to an HTTP URL
//! (`POST`, JSON, 10 s timeout, 2xx = delivered), a NATS subject (one client per URL,
//! which reconnects by itself; acked by JetStream when a stream captures the subject,
//! else flushed to the server) or an AMQP exchange
//! (one connection and confirm-mode channel per URL, re-opened after a failure;
//! delivered once the broker confirms it; `mandatory`, so an unroutable record is an
//! error). Function destinations are the engine's own business and are refused here.

use arcus_core::events::Destination;
use arcus_core::{Error, ErrorCode, Result};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
#[cfg(any(feature = "nats", feature = "amqp"))]
use std::sync::Arc;
use std::time::Duration;

/// How long the answer to "does a stream capture this subject" is kept.
#[cfg(feature = "nats")]
const STREAM_RECHECK: Duration = Duration::from_secs(60);
/// Longest wait for one delivery.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The node's destination publishers; cheap to share (`Arc`).
pub struct Publishers {
    http: reqwest::Client,
    #[cfg(feature = "nats")]
    nats: tokio::sync::Mutex<HashMap<String, async_nats::Client>>,
    /// Whether a stream captures (url, subject), and when that was looked up.
    #[cfg(feature = "nats")]
    nats_streams: tokio::sync::Mutex<HashMap<(String, String), (std::time::Instant, bool)>>,
    #[cfg(feature = "amqp")]
    amqp: tokio::sync::Mutex<HashMap<String, Arc<AmqpOut>>>,
}

#[cfg(feature = "amqp")]
struct AmqpOut {
    // Kept open for the channel's sake.
    _conn: lapin::Connection,
    channel: lapin::Channel,
}

fn unavailable(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::Unavailable, msg)
}

impl Default for Publishers {
    fn default() -> Self {
        Self::new()
    }
}

impl Publishers {
    /// Publishers with no connection open yet (they open on first use).
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            #[cfg(feature = "nats")]
            nats: tokio::sync::Mutex::new(HashMap::new()),
            #[cfg(feature = "nats")]
            nats_streams: tokio::sync::Mutex::new(HashMap::new()),
            #[cfg(feature = "amqp")]
            amqp: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Sends `record` (JSON) to `destination`.
    pub async fn send(&self, destination: &Destination, record: Bytes) -> Result<()> {
        match destination {
            Destination::Http { url } => self.http_post(url, record).await,
            #[cfg(feature = "nats")]
            Destination::Nats { url, subject } => self.nats_publish(url, subject, record).await,
            #[cfg(feature = "amqp")]
            Destination::Amqp {
                url,
                exchange,
                routing_key,
            } => self.amqp_publish(url, exchange, routing_key, record).await,
            #[allow(unreachable_patterns)]
            Destination::Nats { .. } | Destination::Amqp { .. } => Err(unavailable(
                "this node was built without this destination's broker support",
            )),
            Destination::Function { .. } => Err(Error::internal(
                "function destinations are enqueued by the engine, not published",
            )),
        }
    }

    /// `POST url` with the record as JSON; a 2xx answer is success.
    pub async fn http_post(&self, url: &str, record: Bytes) -> Result<()> {
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(record)
            .send()
            .await
            .map_err(|e| unavailable(format!("http destination {url}: {e}")))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(unavailable(format!(
                "http destination {url} answered {}",
                resp.status()
            )))
        }
    }

    /// Publishes on `subject`. When a JetStream stream captures the subject, the
    /// record is published through JetStream and delivered once the stream acks it;
    /// otherwise it is a core NATS publish, delivered once flushed to the server (at
    /// most once: a connection lost right then can lose it).
    #[cfg(feature = "nats")]
    pub async fn nats_publish(&self, url: &str, subject: &str, record: Bytes) -> Result<()> {
        let client = {
            let mut clients = self.nats.lock().await;
            match clients.get(url) {
                Some(c) => c.clone(),
                None => {
                    let c = async_nats::ConnectOptions::new()
                        .connection_timeout(Duration::from_secs(5))
                        .max_reconnects(None::<usize>)
                        .connect(url)
                        .await
                        .map_err(|e| unavailable(format!("nats destination {url}: {e}")))?;
                    clients.insert(url.to_string(), c.clone());
                    c
                }
            }
        };
        let err =
            |e: &dyn std::fmt::Display| unavailable(format!("nats destination {subject}: {e}"));
        let js = async_nats::jetstream::new(client.clone());
        let captured = self.nats_captured(&js, url, subject).await;
        let send = async {
            if captured {
                let ack = js
                    .publish(subject.to_string(), record.clone())
                    .await
                    .map_err(|e| err(&e))?;
                ack.await.map(|_| ()).map_err(|e| err(&e))
            } else {
                client
                    .publish(subject.to_string(), record.clone())
                    .await
                    .map_err(|e| err(&e))?;
                client.flush().await.map_err(|e| err(&e))
            }
        };
        tokio::time::timeout(TIMEOUT, send)
            .await
            .map_err(|_| err(&"not delivered within 10 s"))?
    }

    /// Whether a JetStream stream captures `subject` (asked at most once a minute).
    #[cfg(feature = "nats")]
    async fn nats_captured(
        &self,
        js: &async_nats::jetstream::Context,
        url: &str,
        subject: &str,
    ) -> bool {
        use async_nats::jetstream::context::GetStreamByNameErrorKind;
        let key = (url.to_string(), subject.to_string());
        if let Some((at, captured)) = self.nats_streams.lock().await.get(&key)
            && at.elapsed() < STREAM_RECHECK
        {
            return *captured;
        }
        let captured = match js.stream_by_subject(subject).await {
            Ok(_) => true,
            Err(e) if e.kind() == GetStreamByNameErrorKind::NotFound => false,
            // The lookup failed (not cached): core NATS this time.
            Err(_) => return false,
        };
        self.nats_streams
            .lock()
            .await
            .insert(key, (std::time::Instant::now(), captured));
        captured
    }

    #[cfg(feature = "amqp")]
    async fn amqp_channel(&self, url: &str) -> Result<Arc<AmqpOut>> {
        let mut conns = self.amqp.lock().await;
        if let Some(c) = conns.get(url) {
            if c.channel.status().connected() {
                return Ok(c.clone());
            }
            conns.remove(url);
        }
        let conn = crate::amqp::connect(url, "arcus-destinations")
            .await
            .map_err(unavailable)?;
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| unavailable(format!("amqp channel: {e}")))?;
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .map_err(|e| unavailable(format!("amqp confirm.select: {e}")))?;
        let out = Arc::new(AmqpOut {
            _conn: conn,
            channel,
        });
        conns.insert(url.to_string(), out.clone());
        Ok(out)
    }

    /// Publishes to `exchange` with `routing_key` (persistent, JSON) and waits for the
    /// broker's confirm; an unroutable record (no queue bound) is an error.
    #[cfg(feature = "amqp")]
    pub async fn amqp_publish(
        &self,
        url: &str,
        exchange: &str,
        routing_key: &str,
        record: Bytes,
    ) -> Result<()> {
        let out = self.amqp_channel(url).await?;
        let props = lapin::BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let opts = lapin::options::BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let send = async {
            out.channel
                .basic_publish(exchange.into(), routing_key.into(), opts, &record, props)
                .await?
                .await
        };
        let err =
            |m: String| unavailable(format!("amqp destination {exchange}/{routing_key}: {m}"));
        match tokio::time::timeout(TIMEOUT, send).await {
            Ok(Ok(lapin::Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(lapin::Confirmation::Ack(Some(_)))) => {
                Err(err("unroutable (no queue bound)".into()))
            }
            Ok(Ok(other)) => Err(err(format!("not confirmed: {other:?}"))),
            Ok(Err(e)) => {
                self.amqp.lock().await.remove(url);
                Err(err(e.to_string()))
            }
            Err(_) => {
                self.amqp.lock().await.remove(url);
                Err(err("not confirmed within 10 s".into()))
            }
        }
    }
}

#[async_trait]
impl arcus_engine::Publisher for Publishers {
    async fn publish(&self, destination: &Destination, record: Bytes) -> Result<()> {
        self.send(destination, record).await
    }
}
