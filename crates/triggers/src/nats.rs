//! `type: nats`: a JetStream durable pull consumer on an existing stream. The consumer
//! is created if missing (explicit ack, `max_ack_pending` = concurrency × batch size,
//! filter = the config's subject). Each pull asks for at most the free capacity; a
//! message is acked after its invocation succeeded and nacked with a delay
//! (100 ms · 2^(deliveries-1), at most 30 s) after it failed; while an invocation runs,
//! its messages are marked in progress every 10 s so the 30 s ack wait does not expire.

use crate::batch::{self, Batcher, Pipeline, Session, Settle};
use crate::source::{Source, SourceCtx, StatusHandle};
use arcus_core::trigger::{NatsConfig, TriggerConfig};
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, consumer::pull};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long one pull request waits for messages.
const PULL_EXPIRES: Duration = Duration::from_secs(2);
/// How long the server waits for an ack before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How often a running invocation's messages are marked in progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Largest nak delay.
const NAK_CAP: Duration = Duration::from_secs(30);

/// The NATS JetStream trigger source; reads its [`NatsConfig`] from the trigger.
pub struct NatsSource;

/// The source for `type: nats` triggers.
pub(crate) fn source() -> Box<dyn Source> {
    Box::new(NatsSource)
}

#[async_trait]
impl Source for NatsSource {
    async fn run(self: Box<Self>, ctx: SourceCtx) {
        let TriggerConfig::Nats(config) = &ctx.trigger.config else {
            ctx.status.connecting("not a nats trigger");
            return;
        };
        let b = config.batching;
        let pipeline = Pipeline::new(&ctx, b.batch_size, b.batch_window_ms, false);
        let session = NatsSession {
            config: config.clone(),
            name: format!("arcus-trigger-{}", ctx.trigger.id),
            client: None,
            ready: Arc::new(AtomicBool::new(false)),
        };
        batch::run_source(session, pipeline).await;
    }
}

struct NatsSession {
    config: NatsConfig,
    name: String,
    client: Option<async_nats::Client>,
    /// Subscribed at least once: a reconnect of the client then means `connected`.
    ready: Arc<AtomicBool>,
}

impl NatsSession {
    /// The client, connecting it the first time. It reconnects by itself afterwards
    /// (100 ms → 5 s), reporting through the status.
    async fn client(&mut self, status: &StatusHandle) -> Result<async_nats::Client, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut opts = async_nats::ConnectOptions::new()
            .name(&self.name)
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None::<usize>)
            .reconnect_delay_callback(|n| {
                batch::attempt_delay(u32::try_from(n).unwrap_or(u32::MAX), Duration::from_secs(5))
            });
        if let (Some(u), Some(p)) = (&self.config.auth.username, &self.config.auth.password) {
            opts = opts.user_and_password(u.clone(), p.clone());
        }
        let (status, ready) = (status.clone(), self.ready.clone());
        opts = opts.event_callback(move |event| {
            let (status, ready) = (status.clone(), ready.clone());
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        status.connecting("disconnected from the NATS server")
                    }
                    async_nats::Event::Connected if ready.load(Ordering::SeqCst) => {
                        status.connected()
                    }
                    _ => {}
                }
            }
        });
        let client = opts
            .connect(self.config.url.as_str())
            .await
            .map_err(|e| format!("nats connect to {}: {e}", self.config.url))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn consumer(
        &mut self,
        p: &Pipeline,
        client: async_nats::Client,
    ) -> Result<PullConsumer, String> {
        let js = jetstream::new(client);
        let stream = js
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| format!("nats stream {}: {e}", self.config.stream))?;
        let config = pull::Config {
            durable_name: Some(self.config.consumer.clone()),
            filter_subject: self.config.subject.clone().unwrap_or_default(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: i64::try_from(p.capacity()).unwrap_or(i64::MAX),
            ..Default::default()
        };
        stream
            .get_or_create_consumer(&self.config.consumer, config)
            .await
            .map_err(|e| format!("nats consumer {}: {e}", self.config.consumer))
    }
}

#[async_trait]
impl Session for NatsSession {
    async fn session(&mut self, p: &mut Pipeline) -> Result<(), String> {
        let client = self.client(&p.status).await?;
        let consumer = self.consumer(p, client).await?;
        self.ready.store(true, Ordering::SeqCst);
        p.set_connected();
        let lag_consumer = consumer.clone();
        let _lag = batch::spawn_lag(p.status.clone(), &p.cancel, move || {
            let c = lag_consumer.clone();
            async move { c.get_info().await.ok().map(|i| i.num_pending) }
        });
        let mut batcher = Batcher::new(Arc::new(NatsSettle));
        // One continuous pull: the client keeps requests outstanding, and the server
        // sends no more than `max_ack_pending` (the pipeline's capacity) unacked
        // messages, so nothing is pulled beyond what the function may run.
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(p.capacity())
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(|e| format!("nats pull: {e}"))?;
        loop {
            tokio::select! {
                biased;
                _ = p.cancel.cancelled() => return Ok(()),
                m = futures::StreamExt::next(&mut messages) => match m {
                    Some(Ok(msg)) => {
                        let record = record(&msg);
                        p.push(&mut batcher, record, msg).await;
                    }
                    Some(Err(e)) => return Err(format!("nats pull: {e}")),
                    None => return Err("nats pull ended".into()),
                },
                _ = batcher.due() => p.flush(&mut batcher).await,
            }
        }
    }
}

/// The event record of one message (see docs/triggers.md).
fn record(msg: &jetstream::Message) -> Value {
    let m = &msg.message;
    let mut r = Map::new();
    r.insert("type".into(), "nats".into());
    r.insert("subject".into(), m.subject.as_str().into());
    if let Ok(info) = msg.info() {
        r.insert("stream".into(), info.stream.into());
        r.insert("consumer".into(), info.consumer.into());
        r.insert("sequence".into(), info.stream_sequence.into());
        r.insert("delivered".into(), info.delivered.into());
        if let Ok(t) = info
            .published
            .format(&time::format_description::well_known::Rfc3339)
        {
            r.insert("published".into(), t.into());
        }
    }
    let mut headers = Map::new();
    if let Some(h) = &m.headers {
        for (name, values) in h.iter() {
            let mut vs: Vec<Value> = values.iter().map(|v| v.as_str().into()).collect();
            let v = if vs.len() == 1 {
                vs.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(vs)
            };
            headers.insert(name.to_string(), v);
        }
    }
    r.insert("headers".into(), Value::Object(headers));
    batch::put_data(&mut r, &m.payload);
    Value::Object(r)
}

struct NatsSettle;

#[async_trait]
impl Settle for NatsSettle {
    type Handle = jetstream::Message;

    async fn ack(&self, handles: Vec<jetstream::Message>) {
        for m in handles {
            if let Err(e) = m.ack().await {
                tracing::debug!(error = %e, "nats ack failed (the message will be redelivered)");
            }
        }
    }

    async fn nack(&self, handles: Vec<jetstream::Message>) {
        for m in handles {
            let delivered = m.info().map(|i| i.delivered).unwrap_or(1);
            let delay = batch::attempt_delay(u32::try_from(delivered).unwrap_or(1), NAK_CAP);
            if let Err(e) = m.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::debug!(error = %e, "nats nak failed (the message will be redelivered)");
            }
        }
    }

    fn dropped(&self, handles: Vec<jetstream::Message>) {
        // Redeliver now rather than after the ack wait.
        tokio::spawn(async move {
            for m in handles {
                let _ = m.ack_with(AckKind::Nak(None)).await;
            }
        });
    }

    async fn progress(&self, handles: &[jetstream::Message]) {
        for m in handles {
            let _ = m.ack_with(AckKind::Progress).await;
        }
    }

    fn progress_every(&self) -> Option<Duration> {
        Some(PROGRESS_EVERY)
    }
}
