//! Density (issue 5): on a node of its own (a fresh `arcus serve`, so the RSS before is
//! an empty node's), `--density-functions` (default 10 000) wasm functions in one app
//! `density`, sharing [`VARIANTS`] distinct code blobs (the hello component with a custom
//! section naming its variant), each published with alias `live`; the server's resident
//! memory before and after, idle; then [`ROUND_ROBIN`] distinct functions invoked round
//! robin for [`ROUNDS`] rounds, against one function invoked as often (the baseline).
//!
//! Deployments run [`DEPLOY_IN_FLIGHT`] at a time; every loop is bounded in count and time.

use crate::load::{self, Stats, Target};
use crate::report::{fixed, header, latency, table, verdict};
use crate::servers::{ArcusServer, HELLO, deploy_steps};
use crate::variant::variant;
use anyhow::{Context, Result, bail};
use arcus_core::api::{CreateApp, CreateFunction};
use bytes::Bytes;
use hyper::StatusCode;
use std::fmt::Write;
use std::ops::Range;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The app the functions are deployed in.
const APP: &str = "density";
/// Distinct code blobs the functions share.
const VARIANTS: usize = 100;
/// Deployments in flight at once.
const DEPLOY_IN_FLIGHT: usize = 8;
/// Longest the deployments may take before the scenario gives up.
const DEPLOY_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Interval of the RSS samples taken while the idle server settles.
const SETTLE_INTERVAL: Duration = Duration::from_millis(500);
/// Consecutive samples within [`SETTLE_TOLERANCE_KIB`] of each other that count as settled.
const SETTLE_SAMPLES: usize = 4;
/// How far settled samples may differ, KiB.
const SETTLE_TOLERANCE_KIB: u64 = 1024;
/// Longest wait for the RSS to settle; the last sample is used after that.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);
/// Distinct functions invoked round robin.
const ROUND_ROBIN: usize = 1000;
/// Rounds over those functions.
const ROUNDS: usize = 3;
/// Longest the round robin (all rounds) may take; the baseline gets a third of it.
const ROUND_ROBIN_LIMIT: Duration = Duration::from_secs(180);
/// Issue 5's target: idle memory per deployed wasm function, KiB.
const KIB_PER_FUNCTION_TARGET: f64 = 50.0;

/// The measurements of the scenario.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Functions deployed.
    pub functions: usize,
    /// Distinct code blobs among them.
    pub variants: usize,
    /// Time to deploy them all.
    pub deploy: Duration,
    /// Server RSS before the first deployment, KiB.
    pub rss_before_kib: u64,
    /// Server RSS with the first function of each code blob deployed and idle, KiB.
    pub rss_blobs_kib: u64,
    /// Server RSS with all functions deployed and idle, KiB.
    pub rss_deployed_kib: u64,
    /// Server RSS after the round robin, KiB.
    pub rss_after_kib: u64,
    /// One entry per round robin round, then the one-function baseline.
    pub rounds: Vec<(String, usize, Stats)>,
}

/// Runs the scenario with `functions` functions built from `component`.
pub async fn run(arcus: &mut ArcusServer, component: &[u8], functions: usize) -> Result<Measured> {
    let variants = functions.min(VARIANTS);
    let codes: Vec<Bytes> = (0..variants)
        .map(|i| variant(component, &format!("density-{i}")).map(Bytes::from))
        .collect::<Result<_>>()?;
    let rss_before_kib = arcus.rss_kib()?;
    let app = CreateApp {
        name: APP.into(),
        description: "arcus-bench density".into(),
    };
    arcus
        .client
        .create_app(&app)
        .await
        .with_context(|| format!("cannot create the app {APP}"))?;
    progress(&format!(
        "density: deploying {functions} functions ({variants} distinct code blobs, {DEPLOY_IN_FLIGHT} in flight)"
    ));
    // First one function per code blob (every blob stored and compiled), then the rest.
    let mut deploy = deploy_all(arcus, &codes, 0..variants, functions).await?;
    let rss_blobs_kib = settled_rss(arcus).await?;
    deploy += deploy_all(arcus, &codes, variants..functions, functions).await?;
    let rss_deployed_kib = settled_rss(arcus).await?;
    progress(&format!(
        "density: RSS {} MiB before, {} MiB with {functions} functions deployed",
        rss_before_kib / 1024,
        rss_deployed_kib / 1024
    ));
    let rounds = round_robin(arcus, functions.min(ROUND_ROBIN)).await?;
    let rss_after_kib = arcus.rss_kib()?;
    Ok(Measured {
        functions,
        variants,
        deploy,
        rss_before_kib,
        rss_blobs_kib,
        rss_deployed_kib,
        rss_after_kib,
        rounds,
    })
}

/// The server's RSS once idle: sampled every [`SETTLE_INTERVAL`] until
/// [`SETTLE_SAMPLES`] in a row lie within [`SETTLE_TOLERANCE_KIB`] (or [`SETTLE_LIMIT`]
/// has passed), KiB.
async fn settled_rss(arcus: &mut ArcusServer) -> Result<u64> {
    let start = Instant::now();
    let mut recent = std::collections::VecDeque::with_capacity(SETTLE_SAMPLES);
    let max_samples = SETTLE_LIMIT.as_millis() / SETTLE_INTERVAL.as_millis() + 1;
    for _ in 0..max_samples {
        tokio::time::sleep(SETTLE_INTERVAL).await;
        arcus.check_running()?;
        if recent.len() == SETTLE_SAMPLES {
            recent.pop_front();
        }
        recent.push_back(arcus.rss_kib()?);
        let (lo, hi) = (recent.iter().min(), recent.iter().max());
        if let (Some(lo), Some(hi)) = (lo, hi)
            && recent.len() == SETTLE_SAMPLES
            && hi - lo <= SETTLE_TOLERANCE_KIB
        {
            break;
        }
        if start.elapsed() >= SETTLE_LIMIT {
            break;
        }
    }
    recent.back().copied().context("no RSS sample")
}

/// The name of function `i`.
fn name(i: usize) -> String {
    format!("d-{i:05}")
}

/// Deploys functions `range` (of `functions` in all), function `i` with
/// `codes[i % codes.len()]`, at most [`DEPLOY_IN_FLIGHT`] at once; stops at the first
/// failure.
async fn deploy_all(
    arcus: &ArcusServer,
    codes: &[Bytes],
    range: Range<usize>,
    functions: usize,
) -> Result<Duration> {
    let start = Instant::now();
    let deadline = start + DEPLOY_LIMIT;
    let mut tasks = JoinSet::new();
    let (mut next, mut done) = (range.start, range.start);
    let mut last_report = start;
    while done < range.end {
        while next < range.end && tasks.len() < DEPLOY_IN_FLIGHT {
            let client = arcus.client.clone();
            let code = codes
                .get(next % codes.len().max(1))
                .context("no code variants")?
                .clone();
            let spec = CreateFunction {
                name: name(next),
                ..Default::default()
            };
            tasks.spawn(async move {
                let result = deploy_steps(&client, APP, &spec, None, code).await;
                result.with_context(|| format!("cannot deploy {APP}/{}", spec.name))
            });
            next += 1;
        }
        let Ok(joined) = tokio::time::timeout_at(deadline, tasks.join_next()).await else {
            bail!("density: only {done} of {functions} functions deployed in {DEPLOY_LIMIT:?}");
        };
        let Some(joined) = joined else { break };
        if let Err(e) = joined.context("a deploy task failed")? {
            bail!(
                "density: {e:#} (after {done} deployed){}",
                arcus.child.recent_output()
            );
        }
        done += 1;
        if done % 500 == 0 || done == range.end || last_report.elapsed() >= Duration::from_secs(15)
        {
            last_report = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            progress(&format!(
                "density: {done}/{functions} deployed ({:.0}/s), RSS {} MiB",
                (done - range.start) as f64 / secs.max(1e-9),
                arcus.rss_kib().unwrap_or(0) / 1024
            ));
        }
    }
    Ok(start.elapsed())
}

/// Invokes functions `0..n` round robin on one keep-alive connection for [`ROUNDS`]
/// rounds, then one function `n` times; each request must answer 200 hello.
async fn round_robin(arcus: &mut ArcusServer, n: usize) -> Result<Vec<(String, usize, Stats)>> {
    let targets: Vec<Target> = (0..n)
        .map(|i| Target::new(arcus.addr, &format!("/fn/{APP}/{}/", name(i)), HELLO))
        .collect::<Result<_>>()?;
    let deadline = Instant::now() + ROUND_ROBIN_LIMIT;
    let mut out = Vec::new();
    for round in 1..=ROUNDS {
        progress(&format!(
            "density: round {round} of {ROUNDS} over {n} functions"
        ));
        let stats = sequential(arcus, targets.iter(), deadline).await?;
        out.push((format!("round robin, round {round}"), n, stats));
    }
    let one = targets.first().context("no function to invoke")?;
    progress(&format!("density: one function {n} times (baseline)"));
    let deadline = Instant::now() + ROUND_ROBIN_LIMIT / 3;
    let stats = sequential(arcus, std::iter::repeat_n(one, n), deadline).await?;
    out.push(("one function (baseline)".into(), 1, stats));
    Ok(out)
}

/// Sends one request to each of `targets` in order on one connection (reopened after a
/// transport error), until `deadline`.
async fn sequential<'a>(
    arcus: &mut ArcusServer,
    targets: impl Iterator<Item = &'a Target>,
    deadline: Instant,
) -> Result<Stats> {
    let start = Instant::now();
    let mut sender = None;
    let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0, None);
    for target in targets {
        if Instant::now() >= deadline {
            first_error.get_or_insert_with(|| "stopped at the time limit".to_string());
            break;
        }
        let conn = match sender.as_mut() {
            Some(conn) => conn,
            None => sender.insert(load::connect(target.addr).await?),
        };
        let begin = Instant::now();
        match load::send(conn, target).await {
            Ok((StatusCode::OK, body)) if body == target.expected_body => {
                latencies.push(u64::try_from(begin.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            Ok((status, body)) => {
                errors += 1;
                first_error.get_or_insert_with(|| {
                    format!(
                        "{} answered {status} {:?}",
                        target.path,
                        String::from_utf8_lossy(&body)
                    )
                });
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{}: {e:#}", target.path));
                sender = None;
                arcus.check_running()?;
            }
        }
    }
    Ok(Stats::from_latencies(
        latencies,
        errors,
        first_error,
        start.elapsed(),
    ))
}

/// Formats the density tables.
pub fn render(m: &Measured, markdown: bool) -> String {
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    // Signed: RSS can shrink when the allocator returns memory freed after compiling.
    let grown = m.rss_deployed_kib as f64 - m.rss_before_kib as f64;
    let per_function = (m.functions > 0).then(|| grown / m.functions as f64);
    let more = m.functions.saturating_sub(m.variants);
    let marginal = m.rss_deployed_kib as f64 - m.rss_blobs_kib as f64;
    let per_more = (more > 0).then(|| marginal / more as f64);
    let secs = m.deploy.as_secs_f64();
    let memory = vec![
        header(&[
            "functions",
            "code blobs",
            "deploy s",
            "deploys/s",
            "RSS before MiB",
            "RSS one per blob MiB",
            "RSS all deployed MiB",
            "KiB per function",
            "target ≤ 50 KiB",
            "KiB per function past the blobs",
            "RSS after round robin MiB",
        ]),
        vec![
            m.functions.to_string(),
            m.variants.to_string(),
            fixed(Some(secs), 0),
            fixed((secs > 0.0).then(|| m.functions as f64 / secs), 0),
            mib(m.rss_before_kib),
            mib(m.rss_blobs_kib),
            mib(m.rss_deployed_kib),
            fixed(per_function, 1),
            verdict(per_function, KIB_PER_FUNCTION_TARGET),
            fixed(per_more, 1),
            mib(m.rss_after_kib),
        ],
    ];
    let mut calls = vec![header(&[
        "requests",
        "distinct functions",
        "answered",
        "requests/s",
        "p50 µs",
        "p99 µs",
        "errors",
    ])];
    let mut notes = String::new();
    for (label, distinct, s) in &m.rounds {
        calls.push(vec![
            label.clone(),
            distinct.to_string(),
            s.requests.to_string(),
            format!("{:.0}", s.requests_per_sec()),
            latency(s.percentile_us(0.5)),
            latency(s.percentile_us(0.99)),
            s.errors.to_string(),
        ]);
        if let Some(first) = &s.first_error {
            let _ = writeln!(
                notes,
                "warning: {label}: {} error(s); first: {first}",
                s.errors
            );
        }
    }
    let mut out = table(&memory, markdown);
    out.push('\n');
    out.push_str(&table(&calls, markdown));
    out.push_str(if markdown { "\n" } else { "" });
    let _ = writeln!(
        out,
        "RSS = VmRSS of the arcus process, idle, once {SETTLE_SAMPLES} samples {} ms apart lie within {SETTLE_TOLERANCE_KIB} KiB (at most {} s) after the last deployment of each phase: first one function per code blob ({} functions), then the rest. \
         KiB per function = (RSS all deployed − RSS before) ÷ functions; past the blobs = (RSS all deployed − RSS one per blob) ÷ the other {more} functions. \
         Round robin: one request to each function in turn on 1 keep-alive connection.",
        SETTLE_INTERVAL.as_millis(),
        SETTLE_LIMIT.as_secs(),
        m.variants
    );
    out.push_str(&notes);
    out
}

/// A progress line on stderr.
fn progress(what: &str) {
    eprintln!("arcus-bench: {what}…");
}
