//! Async invocations (issue 6): `--async-events` (default 20 000) events posted to
//! `POST /api/v1/apps/bench/functions/async/invoke?mode=async` by `--async-clients`
//! (default 64) keep-alive connections, against the baseline of the same number of
//! synchronous invokes (`POST .../invoke`) of the same no-op wasm function with the same
//! clients, measured first in the same run.
//!
//! Two async rates are reported: accepted/s (202s over the time from the first post to
//! the last 202) and end-to-end/s (events over the time from the first post until the
//! function's queue is empty: `GET .../async-invocations?status=queued|running|failed&limit=1`
//! all list nothing, twice in a row). A sample of the accepted ids is then checked with
//! `GET /api/v1/invocations/{id}`, and the dead letters are counted.

use crate::api::{self, API_TIMEOUT, Api};
use crate::load::Stats;
use crate::report::{fixed, header, ratio, table, verdict_at_least};
use crate::servers::{APP, ArcusServer, HELLO};
use crate::variant::variant;
use anyhow::{Context, Result, bail};
use arcus_core::api::CreateFunction;
use arcus_core::events::AsyncConfig;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Issue 6's target: accepted async events per second on SQLite.
pub const ACCEPT_TARGET: f64 = 5_000.0;
/// The function's async concurrency (`async.concurrency`).
pub const ASYNC_CONCURRENCY: u32 = 100;
/// Longest a phase of posts may take before the remaining posts are dropped.
const PHASE_LIMIT: Duration = Duration::from_secs(300);
/// Longest the bench waits for the queue to drain after the last 202.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Pause between two polls of the queue.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Time one invoke may take.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Reconnects per client after transport errors.
const MAX_RECONNECTS: u32 = 100;
/// Accepted ids checked with `GET /api/v1/invocations/{id}`.
const SAMPLE: usize = 200;
/// The statuses of an event that is not finished.
const PENDING: [&str; 3] = ["queued", "running", "failed"];

/// The scenario's size.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Events posted (and sync invokes of the baseline).
    pub events: usize,
    /// Concurrent clients, one keep-alive connection each.
    pub clients: usize,
}

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The scenario's size.
    pub config: Config,
    /// Sync invokes: 200 with the hello body.
    pub sync: Stats,
    /// Async posts: 202 with an invocation id.
    pub accept: Stats,
    /// From the first async post until the queue was seen empty; `None` if it was not
    /// within [`DRAIN_LIMIT`] after the last 202.
    pub end_to_end: Option<Duration>,
    /// Pending events listed (per status, up to 1 each) at the drain deadline.
    pub pending_at_deadline: Vec<String>,
    /// Statuses of the sampled ids.
    pub sample: BTreeMap<String, usize>,
    /// Sampled ids with more than one attempt.
    pub sample_retried: usize,
    /// Dead letters listed (at most 1000).
    pub dead_letters: usize,
}

/// Deploys `bench/async` and runs the baseline, then the async phase.
pub async fn run(arcus: &mut ArcusServer, component: &[u8], config: Config) -> Result<Measured> {
    let spec = CreateFunction {
        name: "async".into(),
        async_config: Some(AsyncConfig {
            concurrency: ASYNC_CONCURRENCY,
            ..AsyncConfig::default()
        }),
        ..Default::default()
    };
    let code = Bytes::from(variant(component, "async")?);
    progress("async: deploying bench/async");
    arcus.deploy_in(APP, &spec, None, code, HELLO).await?;
    let api = arcus.api();
    let path = format!("/api/v1/apps/{APP}/functions/async");

    progress(&format!(
        "async: {} sync invokes (baseline), {} clients",
        config.events, config.clients
    ));
    let (sync, _) = fire(&api, &format!("{path}/invoke"), config, false).await?;
    arcus.check_running()?;

    progress(&format!(
        "async: {} async invokes, {} clients",
        config.events, config.clients
    ));
    let start = Instant::now();
    let (accept, ids) = fire(&api, &format!("{path}/invoke?mode=async"), config, true).await?;
    arcus.check_running()?;
    progress("async: waiting for the queue to drain");
    let (end_to_end, pending_at_deadline) = drain(&api, &path, start).await?;
    arcus.check_running()?;

    let mut sample = BTreeMap::new();
    let mut sample_retried = 0;
    let step = (ids.len() / SAMPLE).max(1);
    for id in ids.iter().step_by(step).take(SAMPLE) {
        let view = api.get(&format!("/api/v1/invocations/{id}")).await?;
        let status = view
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        *sample.entry(status).or_default() += 1;
        if view.get("attempts").and_then(Value::as_u64).unwrap_or(0) > 1 {
            sample_retried += 1;
        }
    }
    let dead = api.get(&format!("{path}/dead-letters?limit=1000")).await?;
    Ok(Measured {
        config,
        sync,
        accept,
        end_to_end,
        pending_at_deadline,
        sample,
        sample_retried,
        dead_letters: api::item_count(&dead)?,
    })
}

/// What one client brings back.
#[derive(Debug, Default)]
struct ClientResult {
    latencies_ns: Vec<u64>,
    ids: Vec<String>,
    errors: u64,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

impl ClientResult {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// Posts `config.events` JSON events to `path` from `config.clients` connections;
/// `is_async` expects 202 with an invocation id (collected), otherwise 200 with the
/// hello body. The window is from the first post to the last answer.
async fn fire(
    api: &Api,
    path: &str,
    config: Config,
    is_async: bool,
) -> Result<(Stats, Vec<String>)> {
    let mut senders = Vec::with_capacity(config.clients);
    for _ in 0..config.clients {
        senders.push(api.connect().await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + PHASE_LIMIT;
    let mut tasks = JoinSet::new();
    for sender in senders {
        let (api, path, next) = (api.clone(), path.to_string(), next.clone());
        tasks.spawn(async move {
            let mut r = ClientResult::default();
            let mut sender = Some(sender);
            let mut reconnects = 0;
            // Bounded by the shared counter (each index is taken once) and the deadline.
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= config.events || Instant::now() >= deadline {
                    break;
                }
                if sender.is_none() {
                    if reconnects >= MAX_RECONNECTS {
                        r.error(format!("gave up after {MAX_RECONNECTS} reconnects"));
                        break;
                    }
                    reconnects += 1;
                    match api.connect().await {
                        Ok(s) => sender = Some(s),
                        Err(e) => {
                            r.error(format!("{e:#}"));
                            continue;
                        }
                    }
                }
                let Some(conn) = sender.as_mut() else {
                    continue;
                };
                let body = Bytes::from(format!("{{\"i\":{i}}}"));
                let sent = Instant::now();
                let outcome = api
                    .call(conn, Method::POST, &path, Some(body), INVOKE_TIMEOUT)
                    .await;
                let done = Instant::now();
                match outcome {
                    Ok((StatusCode::ACCEPTED, body)) if is_async => {
                        let id = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
                            v.get("invocation_id")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        });
                        match id {
                            Some(id) => {
                                r.ids.push(id);
                                r.latencies_ns.push(nanos(done - sent));
                                r.last_done = Some(done);
                            }
                            None => r.error(format!(
                                "202 without an invocation_id: {:?}",
                                String::from_utf8_lossy(&body)
                            )),
                        }
                    }
                    Ok((StatusCode::OK, body)) if !is_async && body == HELLO => {
                        r.latencies_ns.push(nanos(done - sent));
                        r.last_done = Some(done);
                    }
                    Ok((status, body)) => r.error(format!(
                        "answered {status} {:?}",
                        String::from_utf8_lossy(&body)
                    )),
                    Err(e) => {
                        r.error(format!("{e:#}"));
                        sender = None;
                    }
                }
            }
            r
        });
    }
    let (mut latencies, mut ids, mut errors, mut first_error) = (Vec::new(), Vec::new(), 0, None);
    let mut last_done = start;
    while let Some(joined) = tasks.join_next().await {
        let r = joined.context("a client task failed")?;
        latencies.extend(r.latencies_ns);
        ids.extend(r.ids);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
        if let Some(done) = r.last_done {
            last_done = last_done.max(done);
        }
    }
    let window = last_done - start;
    Ok((
        Stats::from_latencies(latencies, errors, first_error, window),
        ids,
    ))
}

/// Polls the function's pending events until none is listed twice in a row; returns
/// the time from `start` to the first empty poll of that pair, or `None` and what was
/// still listed after [`DRAIN_LIMIT`].
async fn drain(api: &Api, path: &str, start: Instant) -> Result<(Option<Duration>, Vec<String>)> {
    let began = Instant::now();
    let max_polls = DRAIN_LIMIT.as_millis() / POLL_INTERVAL.as_millis() + 1;
    let mut sender = api.connect().await?;
    let mut empty_since: Option<Duration> = None;
    let mut listed = Vec::new();
    for _ in 0..max_polls {
        listed.clear();
        for status in PENDING {
            let query = format!("{path}/async-invocations?status={status}&limit=1");
            let (code, body) = api
                .call(&mut sender, Method::GET, &query, None, API_TIMEOUT)
                .await
                .with_context(|| format!("GET {query}"))?;
            if code != StatusCode::OK {
                bail!(
                    "GET {query} answered {code} {:?}",
                    String::from_utf8_lossy(&body)
                );
            }
            let list: Value = serde_json::from_slice(&body).context("not JSON")?;
            if api::item_count(&list)? > 0 {
                listed.push(status.to_string());
            }
        }
        if listed.is_empty() {
            if let Some(at) = empty_since {
                return Ok((Some(at), Vec::new()));
            }
            empty_since = Some(start.elapsed());
            continue;
        }
        empty_since = None;
        if began.elapsed() >= DRAIN_LIMIT {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok((None, listed))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Formats the scenario's tables and notes.
pub fn render(m: &Measured, markdown: bool) -> String {
    let n = m.config.events;
    let ms = |us: Option<f64>| fixed(us.map(|us| us / 1e3), 2);
    let e2e_rate = m
        .end_to_end
        .map(|d| m.accept.requests as f64 / d.as_secs_f64().max(1e-9));
    let mut rows = vec![header(&[
        "async (bench/async, no-op wasm)",
        "events",
        "ok",
        "errors",
        "seconds",
        "events/s",
        "p50 ms",
        "p99 ms",
    ])];
    for (label, s) in [
        ("sync invoke (baseline), 200", &m.sync),
        ("async accept, 202", &m.accept),
    ] {
        rows.push(vec![
            label.into(),
            n.to_string(),
            s.requests.to_string(),
            s.errors.to_string(),
            fixed(Some(s.window.as_secs_f64()), 2),
            format!("{:.0}", s.requests_per_sec()),
            ms(s.percentile_us(0.5)),
            ms(s.percentile_us(0.99)),
        ]);
    }
    rows.push(vec![
        "async end-to-end, queue drained".into(),
        n.to_string(),
        m.accept.requests.to_string(),
        "-".into(),
        fixed(m.end_to_end.map(|d| d.as_secs_f64()), 2),
        fixed(e2e_rate, 0),
        "-".into(),
        "-".into(),
    ]);
    let sync_rate = Some(m.sync.requests_per_sec());
    let accept_rate = Some(m.accept.requests_per_sec());
    let ratios = vec![
        header(&["async ÷ sync invoke", "events/s", "target"]),
        vec![
            "async accept ÷ sync".into(),
            ratio(accept_rate, sync_rate),
            format!(
                "≥ {ACCEPT_TARGET:.0} accepted/s: {}",
                verdict_at_least(accept_rate, ACCEPT_TARGET)
            ),
        ],
        vec![
            "async end-to-end ÷ sync".into(),
            ratio(e2e_rate, sync_rate),
            "-".into(),
        ],
    ];
    let mut out = table(&rows, markdown);
    out.push('\n');
    out.push_str(&table(&ratios, markdown));
    out.push_str(if markdown { "\n" } else { "" });
    let statuses: Vec<String> = m.sample.iter().map(|(s, c)| format!("{s} × {c}")).collect();
    let sampled: usize = m.sample.values().sum();
    let _ = writeln!(
        out,
        "async: {} clients, one keep-alive connection each, body {{\"i\":n}}; async.concurrency {ASYNC_CONCURRENCY}; \
         accept = first post to last 202; end-to-end = first post until GET .../async-invocations?status=queued|running|failed&limit=1 listed nothing (twice, {} ms apart). \
         Sampled {sampled} accepted ids: {}; {} with more than one attempt; dead letters listed: {}.",
        m.config.clients,
        POLL_INTERVAL.as_millis(),
        statuses.join(", "),
        m.sample_retried,
        m.dead_letters
    );
    for (label, s) in [("sync invoke", &m.sync), ("async accept", &m.accept)] {
        if s.errors > 0 {
            let _ = writeln!(
                out,
                "warning: {label}: {} error(s); first: {}",
                s.errors,
                s.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    if m.end_to_end.is_none() {
        let _ = writeln!(
            out,
            "warning: the queue did not drain within {} s of the last 202; still listed: {}",
            DRAIN_LIMIT.as_secs(),
            m.pending_at_deadline.join(", ")
        );
    }
    if m.sample.iter().any(|(s, _)| s != "succeeded") || m.dead_letters > 0 {
        let _ = writeln!(
            out,
            "warning: not every sampled event succeeded, or there are dead letters"
        );
    }
    out
}

/// A progress line on stderr.
fn progress(what: &str) {
    eprintln!("arcus-bench: {what}…");
}
