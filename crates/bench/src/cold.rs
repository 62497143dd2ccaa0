//! Scale-from-zero latency (issue 5): the first request after the node has reclaimed a
//! function's last instance, for the Rust hello component and a python3 hello handler,
//! against the warm latency of the same function in the same run.
//!
//! Each function is deployed with `scaling.keep_alive_s = 1` (set by `PATCH`, as
//! `arcus fn scale` does), published and invoked once; then, `--cold-runs` times, the
//! bench polls `GET .../instances` until it lists nothing and times one request on a
//! fresh connection. If instances are still listed [`RECLAIM_LIMIT`] after the last
//! request, the function is reported as "not reclaimed" and has no cold samples.

use crate::load::{self, LoadConfig, Stats};
use crate::node::Reclaim;
use crate::process::{self, Lang, first_request};
use crate::report::{fixed, header, table, verdict};
use crate::servers::{APP, ArcusServer, HELLO};
use crate::variant::variant;
use anyhow::Result;
use arcus_core::api::CreateFunction;
use arcus_core::scaling::Scaling;
use bytes::Bytes;
use std::fmt::Write;
use std::time::Duration;

/// How long the bench waits for the node to reclaim an idle instance.
pub const RECLAIM_LIMIT: Duration = Duration::from_secs(10);
/// The scale-to-zero idle time the functions are deployed with, seconds.
const KEEP_ALIVE_S: u32 = 1;
/// Issue 5's target for the Rust hello component: cold p50 at most this, ms.
const WASM_COLD_TARGET_MS: f64 = 5.0;

/// What the cold scenario needs from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// The hello component (a variant of it is deployed, so its code is not shared with
    /// the `wasm` scenario's function).
    pub component: Bytes,
    /// Cold samples per function.
    pub runs: usize,
    /// Warm-up and window of the warm baseline (one connection).
    pub warm: LoadConfig,
}

/// The measurements of one function.
#[derive(Debug, Clone)]
pub struct Measured {
    /// What was deployed, e.g. `wasm hello`.
    pub label: &'static str,
    /// Whether issue 5's 5 ms target applies.
    pub wasm: bool,
    /// The first request after publishing, ms.
    pub first_ms: f64,
    /// Instances listed right after that request (0 would make the samples suspect).
    pub listed_when_warm: usize,
    /// Requests after a reclaim, ms, sorted.
    pub cold_ms: Vec<f64>,
    /// How long each reclaim took to show after the previous request, s, sorted.
    pub reclaim_s: Vec<f64>,
    /// Instances still listed [`RECLAIM_LIMIT`] after a request, if that happened.
    pub not_reclaimed: Option<usize>,
    /// Failed cold requests, and the first failure.
    pub errors: (u64, Option<String>),
    /// Warm requests to the same function on one connection.
    pub warm: Stats,
}

/// Runs the scenario for the wasm hello component and the python3 hello handler.
pub async fn run(arcus: &mut ArcusServer, config: &Config) -> Result<Vec<Measured>> {
    let wasm = CreateFunction {
        name: "cold-wasm".into(),
        ..Default::default()
    };
    let code = Bytes::from(variant(&config.component, "cold")?);
    let mut out = vec![measure(arcus, config, "wasm hello", wasm, code).await?];
    let python = process::hello_spec(Lang::Python3, "cold-python3".into());
    let code = process::hello_zip(Lang::Python3)?;
    out.push(measure(arcus, config, "python3 hello", python, code).await?);
    Ok(out)
}

/// Deploys one function with a 1 s keep-alive and measures it.
async fn measure(
    arcus: &mut ArcusServer,
    config: &Config,
    label: &'static str,
    spec: CreateFunction,
    code: Bytes,
) -> Result<Measured> {
    let scaling = Scaling {
        keep_alive_s: KEEP_ALIVE_S,
        ..Scaling::default()
    };
    let wasm = !spec.runtime.is_some_and(|r| r.is_process());
    let name = spec.name.clone();
    progress(&format!(
        "{label}: deploying {APP}/{name} with keep_alive_s {KEEP_ALIVE_S}"
    ));
    let target = arcus
        .deploy_in(APP, &spec, Some(scaling), code, HELLO)
        .await?;
    let first_ms = first_request(&target).await?;
    let listed_when_warm = arcus.instance_count(APP, &name).await?;
    let mut m = Measured {
        label,
        wasm,
        first_ms,
        listed_when_warm,
        cold_ms: Vec::new(),
        reclaim_s: Vec::new(),
        not_reclaimed: None,
        errors: (0, None),
        warm: Stats::from_latencies(Vec::new(), 0, None, config.warm.duration),
    };
    progress(&format!(
        "{label}: {} cold requests, each after a reclaim",
        config.runs
    ));
    for _ in 0..config.runs {
        match arcus.wait_reclaimed(APP, &name, RECLAIM_LIMIT).await? {
            Reclaim::Reclaimed(after) => m.reclaim_s.push(after.as_secs_f64()),
            Reclaim::NotReclaimed(listed) => {
                progress(&format!(
                    "{label}: {listed} instance(s) still listed after {RECLAIM_LIMIT:?}; not reclaimed"
                ));
                m.not_reclaimed = Some(listed);
                break;
            }
        }
        match first_request(&target).await {
            Ok(ms) => m.cold_ms.push(ms),
            Err(e) => {
                m.errors.0 += 1;
                m.errors.1.get_or_insert_with(|| format!("{e:#}"));
            }
        }
        arcus.check_running()?;
    }
    m.cold_ms.sort_by(f64::total_cmp);
    m.reclaim_s.sort_by(f64::total_cmp);
    progress(&format!("{label}: warm requests on 1 connection"));
    m.warm = load::run(&target, config.warm).await?;
    arcus.check_running()?;
    Ok(m)
}

/// Formats the scale-from-zero table and its notes.
pub fn render(results: &[Measured], markdown: bool) -> String {
    let mut rows = vec![header(&[
        "function",
        "cold runs",
        "first request ms",
        "cold p50 ms",
        "cold p99 ms",
        "warm p50 ms",
        "warm p99 ms",
        "cold − warm p50 ms",
        "reclaimed after p50 s",
        "target ≤ 5 ms p50",
    ])];
    let mut notes = String::new();
    for m in results {
        let q = |p| process::quantile(&m.cold_ms, p);
        let warm_ms = |p| m.warm.percentile_us(p).map(|us| us / 1e3);
        let cold = |p| match m.not_reclaimed {
            Some(_) if m.cold_ms.is_empty() => "not reclaimed".to_string(),
            _ => fixed(q(p), 2),
        };
        let target = if m.wasm {
            verdict(q(0.5), WASM_COLD_TARGET_MS)
        } else {
            "-".into()
        };
        rows.push(vec![
            m.label.into(),
            m.cold_ms.len().to_string(),
            fixed(Some(m.first_ms), 2),
            cold(0.5),
            cold(0.99),
            fixed(warm_ms(0.5), 3),
            fixed(warm_ms(0.99), 3),
            fixed(q(0.5).zip(warm_ms(0.5)).map(|(c, w)| c - w), 2),
            fixed(process::quantile(&m.reclaim_s, 0.5), 2),
            target,
        ]);
        if let Some(listed) = m.not_reclaimed {
            let _ = writeln!(
                notes,
                "{}: not reclaimed — {listed} instance(s) still listed by GET .../instances {} s after the last request (keep_alive_s {KEEP_ALIVE_S}); {} cold sample(s) before that.",
                m.label,
                RECLAIM_LIMIT.as_secs(),
                m.cold_ms.len()
            );
        }
        if m.listed_when_warm == 0 {
            let _ = writeln!(
                notes,
                "warning: {}: GET .../instances listed nothing right after a request, so \"reclaimed\" may not mean cold.",
                m.label
            );
        }
        if let (n @ 1.., Some(first)) = (m.errors.0, &m.errors.1) {
            let _ = writeln!(
                notes,
                "warning: {}: {n} cold request(s) failed; first: {first}",
                m.label
            );
        }
        if m.warm.errors > 0 {
            let first = m.warm.first_error.as_deref().unwrap_or("?");
            let _ = writeln!(
                notes,
                "warning: {}: {} warm error(s); first: {first}",
                m.label, m.warm.errors
            );
        }
    }
    let mut out = table(&rows, markdown);
    out.push_str(if markdown { "\n" } else { "" });
    let _ = writeln!(
        out,
        "cold: one request on a fresh connection once GET .../instances lists no instance (keep_alive_s {KEEP_ALIVE_S}); first request: the first after publishing; warm: back-to-back requests on 1 connection to the same function."
    );
    out.push_str(&notes);
    out
}

/// A progress line on stderr.
fn progress(what: &str) {
    eprintln!("arcus-bench: {what}…");
}
