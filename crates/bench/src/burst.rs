//! Burst from zero (issue 5): a wasm hello function that has never been invoked, with
//! `max_instances` 4 × `concurrency_per_instance` 10 (and `keep_alive_s` 1, so that it
//! is at zero even if publishing loaded it: the bench waits up to [`RECLAIM_LIMIT`] for
//! `GET .../instances` to list nothing), gets `--burst-requests` (default 200) requests
//! at the same moment, one per connection; the same burst then hits the now-warm
//! function and the raw hyper server (the baseline).
//!
//! Every connection is opened before the burst (connects are not timed); a barrier then
//! releases all requests at once. The bench reports the time from the first request
//! sent to the last answer, p50/p99 of the single requests, and every answer that is not
//! 200 with the hello body.

use crate::cold::RECLAIM_LIMIT;
use crate::load::{self, Stats, Target};
use crate::node::Reclaim;
use crate::report::{fixed, header, table};
use crate::servers::{APP, ArcusServer, HELLO};
use crate::variant::variant;
use anyhow::{Context, Result};
use arcus_core::api::CreateFunction;
use arcus_core::scaling::Scaling;
use bytes::Bytes;
use hyper::StatusCode;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Time one burst request may take: past the default `queue_timeout_ms` (10 s) a queued
/// request gets its 429/503, which is counted, so this only catches a hung server.
const BURST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The function's scaling limits (issue 5: at most 4 instances × 10).
const MAX_INSTANCES: u32 = 4;
/// Concurrent requests per loaded component.
const CONCURRENCY: u32 = 10;
/// Idle seconds before the node may unload the component, so that it gets to zero
/// before the burst if publishing loaded it.
const KEEP_ALIVE_S: u32 = 1;

/// One burst: every request's outcome.
#[derive(Debug, Clone)]
pub struct Burst {
    /// Which server and state, e.g. `arcus, from zero`.
    pub label: String,
    /// Requests sent.
    pub requests: usize,
    /// From the first request sent to the last answer.
    pub completion: Duration,
    /// Latencies of the 200 answers with the hello body.
    pub ok: Stats,
    /// Answers other than 200 with the hello body, by status code.
    pub bad_status: BTreeMap<u16, usize>,
    /// Requests with no answer (transport error or [`BURST_REQUEST_TIMEOUT`]).
    pub transport_errors: usize,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

/// Runs the scenario: the wasm function from zero, the same function warm, then hyper.
pub async fn run(
    arcus: &mut ArcusServer,
    hyper: &Target,
    component: &[u8],
    requests: usize,
) -> Result<(Vec<Burst>, usize)> {
    let spec = CreateFunction {
        name: "burst".into(),
        ..Default::default()
    };
    let scaling = Scaling {
        max_instances: MAX_INSTANCES,
        concurrency_per_instance: Some(CONCURRENCY),
        keep_alive_s: KEEP_ALIVE_S,
        ..Scaling::default()
    };
    // A variant of hello, so no component of it is loaded by another scenario.
    let code = Bytes::from(variant(component, "burst")?);
    progress("burst: deploying bench/burst (max_instances 4 × concurrency 10)");
    let target = arcus
        .deploy_in(APP, &spec, Some(scaling), code, HELLO)
        .await?;
    // Publishing may load the component; wait until the node lists none (at zero).
    let listed_before = match arcus.wait_reclaimed(APP, "burst", RECLAIM_LIMIT).await? {
        Reclaim::Reclaimed(_) => 0,
        Reclaim::NotReclaimed(listed) => listed,
    };
    let mut out = Vec::new();
    for (label, target) in [
        ("arcus, from zero", &target),
        ("arcus, warm", &target),
        ("hyper", hyper),
    ] {
        progress(&format!("burst: {requests} concurrent requests to {label}"));
        out.push(burst(label, target, requests).await?);
        arcus.check_running()?;
    }
    Ok((out, listed_before))
}

/// Opens `n` connections to `target`, then sends one request on each at the same moment.
pub async fn burst(label: &str, target: &Target, n: usize) -> Result<Burst> {
    let mut senders = Vec::with_capacity(n);
    for i in 0..n {
        let sender = load::connect(target.addr)
            .await
            .with_context(|| format!("{label}: cannot open connection {i} of {n}"))?;
        senders.push(sender);
    }
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut tasks = JoinSet::new();
    for mut sender in senders {
        let (barrier, target) = (barrier.clone(), target.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let start = Instant::now();
            let outcome = load::send_within(&mut sender, &target, BURST_REQUEST_TIMEOUT).await;
            (start, Instant::now(), outcome)
        });
    }
    barrier.wait().await;
    let mut b = Burst {
        label: label.to_string(),
        requests: n,
        completion: Duration::ZERO,
        ok: Stats::from_latencies(Vec::new(), 0, None, Duration::ZERO),
        bad_status: BTreeMap::new(),
        transport_errors: 0,
        first_error: None,
    };
    let (mut first_start, mut last_end) = (None::<Instant>, None::<Instant>);
    let mut latencies = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        let (start, end, outcome) = joined.context("a burst task failed")?;
        first_start = Some(first_start.map_or(start, |t| t.min(start)));
        last_end = Some(last_end.map_or(end, |t| t.max(end)));
        match outcome {
            Ok((StatusCode::OK, body)) if body == target.expected_body => {
                latencies.push(u64::try_from((end - start).as_nanos()).unwrap_or(u64::MAX));
            }
            Ok((status, body)) => {
                *b.bad_status.entry(status.as_u16()).or_default() += 1;
                b.first_error.get_or_insert_with(|| {
                    format!("{status} {:?}", String::from_utf8_lossy(&body))
                });
            }
            Err(e) => {
                b.transport_errors += 1;
                b.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    if let (Some(s), Some(e)) = (first_start, last_end) {
        b.completion = e - s;
    }
    b.ok = Stats::from_latencies(latencies, 0, None, b.completion);
    Ok(b)
}

/// Formats the burst table and its notes; `listed_before` is what `GET .../instances`
/// listed for the function just before its first burst.
pub fn render(bursts: &[Burst], listed_before: usize, markdown: bool) -> String {
    let mut rows = vec![header(&[
        "burst",
        "requests",
        "completion ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "non-200",
        "no answer",
        "target zero errors",
    ])];
    let ms = |us: Option<f64>| fixed(us.map(|us| us / 1e3), 2);
    let mut notes = String::new();
    for b in bursts {
        let non_200: usize = b.bad_status.values().sum();
        let errors = non_200 + b.transport_errors;
        rows.push(vec![
            b.label.clone(),
            b.requests.to_string(),
            fixed(Some(b.completion.as_secs_f64() * 1e3), 1),
            ms(b.ok.percentile_us(0.5)),
            ms(b.ok.percentile_us(0.99)),
            ms(b.ok.percentile_us(1.0)),
            non_200.to_string(),
            b.transport_errors.to_string(),
            if errors == 0 { "met" } else { "missed" }.into(),
        ]);
        if errors > 0 {
            let statuses: Vec<String> = b
                .bad_status
                .iter()
                .map(|(status, count)| format!("{status} × {count}"))
                .collect();
            let _ = writeln!(
                notes,
                "warning: {}: {errors} failed ({}; {} without an answer); first: {}",
                b.label,
                statuses.join(", "),
                b.transport_errors,
                b.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    let mut out = table(&rows, markdown);
    out.push_str(if markdown { "\n" } else { "" });
    let _ = writeln!(
        out,
        "burst: every request on its own connection, released together; completion = first request sent to last answer; p50/p99/max over the 200 answers. \
         bench/burst: max_instances {MAX_INSTANCES} × concurrency_per_instance {CONCURRENCY}, keep_alive_s {KEEP_ALIVE_S}, queue_timeout_ms default; {}.",
        if listed_before == 0 {
            "at zero before the first burst (GET .../instances listed none)".to_string()
        } else {
            format!(
                "NOT at zero: {listed_before} instance(s) still listed {} s after publishing",
                RECLAIM_LIMIT.as_secs()
            )
        }
    );
    out.push_str(&notes);
    out
}

/// A progress line on stderr.
fn progress(what: &str) {
    eprintln!("arcus-bench: {what}…");
}
