//! NATS → function throughput (issue 6): `--nats-messages` (default 20 000) messages
//! published to a fresh JetStream stream on the local NATS server, then drained twice
//! by two durable consumers of that stream: first a plain `async-nats` pull consumer
//! that acks each message and does nothing else (the baseline), then an Arcus `nats`
//! trigger (`batch_size` from `--nats-batch-size`, default 1) on a no-op wasm function (`bench/nats`,
//! `async.concurrency` [`CONCURRENCY`], which is how many invocations the trigger runs
//! at once).
//!
//! Each drain is timed from just before its consumer is created (the bench creates the
//! baseline's; the node creates the trigger's after `POST .../triggers`) until the
//! consumer's info (`$JS.API.CONSUMER.INFO`, polled every [`POLL_INTERVAL`] by the
//! bench for both) shows the ack floor at the stream's last sequence with nothing
//! pending or awaiting ack. Stream and consumer names are unique per run; the stream
//! (and its consumers) is deleted at the end, also after an error.

use crate::api::Api;
use crate::report::{fixed, header, ratio, table, verdict_at_least};
use crate::servers::{APP, ArcusServer, HELLO};
use crate::variant::variant;
use anyhow::{Context, Result, bail};
use arcus_core::api::CreateFunction;
use arcus_core::events::AsyncConfig;
use arcus_core::trigger::{Batching, CreateTrigger, Credentials, NatsConfig, TriggerConfig};
use async_nats::jetstream::{self, consumer::pull, stream::Stream};
use bytes::Bytes;
use futures::StreamExt;
use hyper::{Method, StatusCode};
use serde_json::Value;
use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Issue 6's target: the trigger at least this fraction of the bare consumer's rate.
pub const TARGET_FRACTION: f64 = 0.5;
/// The function's async concurrency: the trigger's invocations in flight.
pub const CONCURRENCY: u32 = 100;
/// Messages published before their acks are awaited.
const PUBLISH_WINDOW: usize = 1000;
/// Longest the bench waits for one consumer to drain the stream.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Pause between two consumer-info polls.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Time allowed for connecting, publishing one window, one JetStream API call.
const NATS_TIMEOUT: Duration = Duration::from_secs(30);
/// The trigger's name.
const TRIGGER: &str = "n";

/// The scenario's size and server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Messages published.
    pub messages: usize,
    /// The NATS server, `nats://host:port`.
    pub url: String,
    /// The trigger's `batch_size` (messages per invocation).
    pub batch_size: u32,
}

/// One consumer's drain of the stream.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    /// Until the ack floor reached the last sequence; `None` if not within [`DRAIN_LIMIT`].
    pub elapsed: Option<Duration>,
    /// Messages the consumer handled: acked by the baseline, `status.delivered` of the
    /// trigger.
    pub handled: u64,
    /// Failed deliveries (`status.failed` of the trigger).
    pub failed: u64,
    /// Redeliveries the server counted.
    pub redelivered: usize,
    /// The last consumer info (or its error), for the report if it did not drain.
    pub last_info: String,
    /// The trigger's state and last error.
    pub state: String,
}

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The scenario's size.
    pub config: Config,
    /// The stream used.
    pub stream: String,
    /// Publishing every message with its ack.
    pub publish: Duration,
    /// The plain pull consumer.
    pub bare: Drain,
    /// The Arcus trigger.
    pub trigger: Drain,
    /// Whether the stream was deleted at the end.
    pub deleted: bool,
}

/// Runs the scenario (see the module doc).
pub async fn run(arcus: &mut ArcusServer, component: &[u8], config: &Config) -> Result<Measured> {
    let spec = CreateFunction {
        name: "nats".into(),
        async_config: Some(AsyncConfig {
            concurrency: CONCURRENCY,
            ..AsyncConfig::default()
        }),
        ..Default::default()
    };
    let code = Bytes::from(variant(component, "nats")?);
    progress("nats: deploying bench/nats");
    arcus.deploy_in(APP, &spec, None, code, HELLO).await?;

    let client = tokio::time::timeout(NATS_TIMEOUT, async_nats::connect(config.url.as_str()))
        .await
        .with_context(|| format!("connecting to {} timed out", config.url))?
        .with_context(|| format!("cannot connect to {}", config.url))?;
    let js = jetstream::new(client);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let unique = format!("{}_{millis}", std::process::id());
    let name = format!("ARCUS_BENCH_{unique}");
    let subject = format!("arcus-bench.{unique}");
    js.create_stream(jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        ..Default::default()
    })
    .await
    .with_context(|| format!("cannot create the stream {name}"))?;
    let api = arcus.api();
    let result = measure(arcus, &api, &js, &name, &subject, config).await;
    // Clean up whatever happened: the trigger (so it stops consuming), then the stream.
    let trigger_path = format!("/api/v1/apps/{APP}/functions/nats/triggers/{TRIGGER}");
    let _ = api
        .json(Method::DELETE, &trigger_path, None, StatusCode::NO_CONTENT)
        .await;
    let deleted = js.delete_stream(&name).await.is_ok();
    let (publish, bare, trigger) = result?;
    Ok(Measured {
        config: config.clone(),
        stream: name,
        publish,
        bare,
        trigger,
        deleted,
    })
}

/// Publishes, then drains with the baseline consumer and with the trigger.
async fn measure(
    arcus: &mut ArcusServer,
    api: &Api,
    js: &jetstream::Context,
    name: &str,
    subject: &str,
    config: &Config,
) -> Result<(Duration, Drain, Drain)> {
    progress(&format!(
        "nats: publishing {} messages to {name}",
        config.messages
    ));
    let started = Instant::now();
    let mut i = 0;
    while i < config.messages {
        let end = (i + PUBLISH_WINDOW).min(config.messages);
        let window = async {
            let mut acks = Vec::with_capacity(end - i);
            for n in i..end {
                let payload = Bytes::from(format!("{{\"i\":{n}}}"));
                acks.push(js.publish(subject.to_string(), payload).await?);
            }
            for ack in acks {
                ack.await?;
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(NATS_TIMEOUT, window)
            .await
            .context("publishing timed out")?
            .context("cannot publish")?;
        i = end;
    }
    let publish = started.elapsed();
    let mut stream = js.get_stream(name).await.context("cannot get the stream")?;
    let state = stream.info().await.context("stream info")?.state.clone();
    if state.messages != config.messages as u64 {
        bail!(
            "the stream {name} holds {} messages, {} were published",
            state.messages,
            config.messages
        );
    }
    let last = state.last_sequence;

    progress("nats: draining with a plain async-nats pull consumer (baseline)");
    let start = Instant::now();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bare".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .context("cannot create the baseline consumer")?;
    let messages = config.messages;
    let task = tokio::spawn(async move {
        let mut acked = 0u64;
        let Ok(mut stream) = consumer.messages().await else {
            return acked;
        };
        let deadline = Instant::now() + DRAIN_LIMIT;
        while acked < messages as u64 {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(m))) => {
                    if m.ack().await.is_ok() {
                        acked += 1;
                    }
                }
                Ok(Some(Err(_))) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        acked
    });
    let mut bare = wait_drained(&stream, "bare", last, start).await;
    task.abort();
    bare.handled = task.await.unwrap_or_default();
    arcus.check_running()?;

    progress("nats: draining with the arcus nats trigger");
    let create = CreateTrigger {
        name: TRIGGER.into(),
        config: TriggerConfig::Nats(NatsConfig {
            url: config.url.clone(),
            stream: name.to_string(),
            consumer: "trigger".into(),
            subject: None,
            auth: Credentials::default(),
            batching: Batching {
                batch_size: config.batch_size,
                batch_window_ms: 0,
            },
        }),
        qualifier: None,
        enabled: None,
    };
    let body = serde_json::to_value(&create).context("cannot encode the trigger")?;
    let triggers = format!("/api/v1/apps/{APP}/functions/nats/triggers");
    let start = Instant::now();
    api.json(Method::POST, &triggers, Some(&body), StatusCode::CREATED)
        .await?;
    let mut trigger = wait_drained(&stream, "trigger", last, start).await;
    arcus.check_running()?;
    let view = api.get(&format!("{triggers}/{TRIGGER}")).await?;
    let status = view.get("status").cloned().unwrap_or(Value::Null);
    trigger.handled = status.get("delivered").and_then(Value::as_u64).unwrap_or(0);
    trigger.failed = status.get("failed").and_then(Value::as_u64).unwrap_or(0);
    trigger.state = format!(
        "{}{}",
        status.get("state").and_then(Value::as_str).unwrap_or("?"),
        status
            .get("last_error")
            .and_then(Value::as_str)
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default()
    );
    Ok((publish, bare, trigger))
}

/// Polls `consumer`'s info until its ack floor is at `last` with nothing pending.
async fn wait_drained(stream: &Stream, consumer: &str, last: u64, start: Instant) -> Drain {
    let mut drain = Drain::default();
    let max_polls = DRAIN_LIMIT.as_millis() / POLL_INTERVAL.as_millis() + 1;
    for _ in 0..max_polls {
        match tokio::time::timeout(NATS_TIMEOUT, stream.consumer_info(consumer)).await {
            Ok(Ok(info)) => {
                drain.redelivered = info.num_redelivered;
                drain.last_info = format!(
                    "ack floor {}/{last}, pending {}, awaiting ack {}, redelivered {}",
                    info.ack_floor.stream_sequence,
                    info.num_pending,
                    info.num_ack_pending,
                    info.num_redelivered
                );
                if info.ack_floor.stream_sequence >= last
                    && info.num_pending == 0
                    && info.num_ack_pending == 0
                {
                    drain.elapsed = Some(start.elapsed());
                    return drain;
                }
            }
            Ok(Err(e)) => drain.last_info = format!("consumer info: {e}"),
            Err(_) => drain.last_info = "consumer info timed out".into(),
        }
        if start.elapsed() >= DRAIN_LIMIT {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    drain
}

/// Formats the scenario's tables and notes.
pub fn render(m: &Measured, markdown: bool) -> String {
    let n = m.config.messages as f64;
    let rate = |d: &Drain| d.elapsed.map(|e| n / e.as_secs_f64().max(1e-9));
    let mut rows = vec![header(&[
        "nats → consumer",
        "messages",
        "handled",
        "failed",
        "redelivered",
        "seconds",
        "messages/s",
    ])];
    for (label, d) in [
        ("plain async-nats pull consumer (baseline)", &m.bare),
        ("arcus nats trigger → bench/nats", &m.trigger),
    ] {
        rows.push(vec![
            label.into(),
            m.config.messages.to_string(),
            d.handled.to_string(),
            d.failed.to_string(),
            d.redelivered.to_string(),
            fixed(d.elapsed.map(|e| e.as_secs_f64()), 2),
            fixed(rate(d), 0),
        ]);
    }
    let (t, b) = (rate(&m.trigger), rate(&m.bare));
    let fraction = t.zip(b).map(|(t, b)| t / b.max(1e-9));
    let ratios = vec![
        header(&["trigger ÷ baseline", "messages/s", "target ≥ 0.50×"]),
        vec![
            "arcus nats trigger ÷ plain consumer".into(),
            ratio(t, b),
            verdict_at_least(fraction, TARGET_FRACTION),
        ],
    ];
    let mut out = table(&rows, markdown);
    out.push('\n');
    out.push_str(&table(&ratios, markdown));
    out.push_str(if markdown { "\n" } else { "" });
    let _ = writeln!(
        out,
        "nats: {} messages ({{\"i\":n}}) published to stream {} on {} in {:.2} s ({:.0}/s, acks awaited per {PUBLISH_WINDOW}); \
         each drain timed from just before its durable consumer is created until its consumer info shows the ack floor at the last sequence, \
         nothing pending and nothing awaiting ack (polled every {} ms). Trigger: batch_size {}, async.concurrency {CONCURRENCY}; state at the end: {}. Stream deleted: {}.",
        m.config.messages,
        m.stream,
        m.config.url,
        m.publish.as_secs_f64(),
        n / m.publish.as_secs_f64().max(1e-9),
        POLL_INTERVAL.as_millis(),
        m.config.batch_size,
        m.trigger.state,
        if m.deleted { "yes" } else { "NO" }
    );
    for (label, d) in [("baseline", &m.bare), ("trigger", &m.trigger)] {
        if d.elapsed.is_none() {
            let _ = writeln!(
                out,
                "warning: the {label} consumer did not drain within {} s; last: {}",
                DRAIN_LIMIT.as_secs(),
                d.last_info
            );
        }
    }
    if m.trigger.failed > 0 || m.trigger.handled != m.config.messages as u64 {
        let _ = writeln!(
            out,
            "warning: the trigger delivered {} and failed {} of {} messages",
            m.trigger.handled, m.trigger.failed, m.config.messages
        );
    }
    out
}

/// A progress line on stderr.
fn progress(what: &str) {
    eprintln!("arcus-bench: {what}…");
}
