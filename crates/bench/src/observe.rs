//! Issue 7's numbers. **Cost of observability**: warm throughput of the hello component
//! on a node with records, logs and metrics on (the default) against a second node with
//! `[observability] records = false, metrics = false`, in interleaved rounds of the same
//! load in the same run. **Stats over many records**: `--stats-records` (default
//! 1 000 000) invocation records spread over the last 23 hours written to a fresh SQLite
//! store through `insert_invocations` (so rollups are maintained as the node does), then
//! the stats query of each window — the store's rollup read plus `StatsView::build`, what
//! `GET /api/v1/apps/{app}/stats` runs — against a raw SQL aggregate of the same records
//! (count, errors, cold starts and p99 duration over the 24 h window) as the baseline;
//! then two record listings over the same records (the newest page, and a filter that
//! matches none, so every record is read).

use crate::load::{self, LoadConfig, Stats};
use crate::report::{fixed, header, ratio, table, verdict};
use crate::servers::{self, ArcusServer, HELLO};
use anyhow::{Context, Result};
use arcus_core::api::CreateFunction;
use arcus_core::model::{App, Timestamp};
use arcus_core::record::{InvocationRecord, InvocationStatus, RecordedInvocation, TriggerKind};
use arcus_core::stats::{InvocationQuery, RollupQuery, StatsView, StatsWindow};
use arcus_core::store::{LogQuery, Store};
use arcus_store::SqliteStore;
use bytes::Bytes;
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// The node config of the "off" side.
const OFF: &str = "[observability]\nrecords = false\nmetrics = false\n";
/// Issue 7's limit on the throughput cost of observability, percent.
pub const COST_LIMIT_PCT: f64 = 10.0;
/// Issue 7's limit on a stats query over a million records, milliseconds.
pub const STATS_LIMIT_MS: f64 = 50.0;
/// Records per `insert_invocations` batch (the node's recorder writes up to 2048).
const BATCH: usize = 2048;
/// Timed repetitions of each query (the median is reported).
const REPEATS: usize = 21;

/// The scenario's size.
#[derive(Debug, Clone)]
pub struct Config {
    /// Each round's load (one per side).
    pub load: LoadConfig,
    /// Rounds per side, interleaved on/off/on/off.
    pub rounds: usize,
    /// Records of the stats part.
    pub records: usize,
}

/// What the scenario measured.
#[derive(Debug)]
pub struct Measured {
    config: Config,
    on: Vec<Stats>,
    off: Vec<Stats>,
    /// Node CPU time per counted request of each round, microseconds (`None` when
    /// `/proc` could not be read).
    on_cpu: Vec<Option<f64>>,
    off_cpu: Vec<Option<f64>>,
    fill: Duration,
    /// Median milliseconds of the stats query per window.
    stats_ms: Vec<(StatsWindow, f64)>,
    /// Median milliseconds of the raw aggregate.
    raw_ms: f64,
    /// Median milliseconds of record and log listings over the same records (what
    /// `GET …/invocations` and `GET …/logs` run), by description.
    listings: Vec<(&'static str, f64)>,
}

/// Runs both parts: `on` is the main node, a second node is started with everything off.
pub async fn run(bin: &Path, on: &ArcusServer, code: &[u8], config: Config) -> Result<Measured> {
    crate::progress("starting an arcus with records, logs and metrics off");
    let off = servers::start_arcus_with(bin, Some(OFF)).await?;
    let spec = CreateFunction {
        name: "observed".into(),
        ..Default::default()
    };
    let code = Bytes::copy_from_slice(code);
    let targets = [
        on.deploy(&spec, code.clone(), HELLO).await?,
        off.deploy(&spec, code, HELLO).await?,
    ];
    let pids = [on.child.pid(), off.child.pid()];
    let (mut on_runs, mut off_runs) = (Vec::new(), Vec::new());
    let (mut on_cpu, mut off_cpu) = (Vec::new(), Vec::new());
    for round in 0..config.rounds {
        // Alternate which side goes first so drift of the machine hits both alike.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            crate::progress(&format!("observability round {round}: side {side}"));
            let cpu = tokio::spawn(window_cpu(pids[side], config.load));
            let stats = load::run(&targets[side], config.load).await?;
            let per_request = cpu
                .await
                .ok()
                .flatten()
                .filter(|_| stats.requests > 0)
                .map(|secs| secs * 1e6 / stats.requests as f64);
            if side == 0 {
                on_runs.push(stats);
                on_cpu.push(per_request);
            } else {
                off_runs.push(stats);
                off_cpu.push(per_request);
            }
        }
    }
    drop(off);
    crate::progress(&format!("writing {} invocation records", config.records));
    let (fill, stats_ms, raw_ms, listings) = stats_query(config.records).await?;
    Ok(Measured {
        config,
        on: on_runs,
        off: off_runs,
        on_cpu,
        off_cpu,
        fill,
        stats_ms,
        raw_ms,
        listings,
    })
}

/// CPU seconds (user + system) process `pid` used during the measured window of a load
/// run with `load`'s timing that starts now.
async fn window_cpu(pid: u32, load: LoadConfig) -> Option<f64> {
    tokio::time::sleep(load.warmup).await;
    let before = process_cpu(pid)?;
    tokio::time::sleep(load.duration).await;
    Some(process_cpu(pid)? - before)
}

/// CPU seconds process `pid` has used so far: `utime + stime` of `/proc/<pid>/stat`, in
/// clock ticks of 1/100 s (Linux's `USER_HZ`).
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_ticks(&stat).map(|ticks| ticks as f64 / 100.0)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name
/// (field 2, in parentheses) may contain spaces, so fields are counted after its `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn record(i: usize, now: Timestamp, span_us: i64, n: usize) -> InvocationRecord {
    let failed = i.is_multiple_of(100);
    // Spread evenly over the span, oldest first; 1 % fail, 0.5 % are cold.
    let offset = span_us - span_us * i64::try_from(i).unwrap_or(0) / i64::try_from(n).unwrap_or(1);
    InvocationRecord {
        id: format!("r{i:08}"),
        app: "bench".into(),
        function: "f".into(),
        version: Some(1),
        trigger: TriggerKind::Http,
        status: if failed {
            InvocationStatus::Failed
        } else {
            InvocationStatus::Succeeded
        },
        error_code: failed.then(|| "function_error".into()),
        http_status: Some(200),
        duration_us: 200 + u64::try_from(i % 5000).unwrap_or(0),
        cold_start: i.is_multiple_of(200),
        started_at: now - time::Duration::microseconds(offset),
        init_duration_us: None,
        max_memory_mb: None,
        memory_mb: 128,
        egress_bytes: 5,
        trace_id: None,
    }
}

fn window_name(w: StatsWindow) -> &'static str {
    match w {
        StatsWindow::Hour => "1h",
        StatsWindow::Day => "24h",
        StatsWindow::Week => "7d",
    }
}

fn median(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
}

/// What [`stats_query`] measured: fill time, the stats query's median per window, the
/// raw aggregate's median and the record listings' medians.
type StatsTimes = (
    Duration,
    Vec<(StatsWindow, f64)>,
    f64,
    Vec<(&'static str, f64)>,
);

/// Fills a fresh store and times the stats query, the raw aggregate and record
/// listings over it.
async fn stats_query(n: usize) -> Result<StatsTimes> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("arcus.db");
    let store = SqliteStore::open(&path).await?;
    let now = Timestamp::now_utc();
    let app = App {
        name: "bench".into(),
        description: String::new(),
        quotas: Default::default(),
        created_at: now,
    };
    store.create_app(&app).await?;
    let span_us = 23 * 3600 * 1_000_000;
    let started = Instant::now();
    for start in (0..n).step_by(BATCH) {
        let batch: Vec<_> = (start..(start + BATCH).min(n))
            .map(|i| RecordedInvocation {
                record: record(i, now, span_us, n),
                lines: Vec::new(),
                platform_lines: true,
                init_lines: 0,
            })
            .collect();
        store.insert_invocations(&batch).await?;
    }
    let fill = started.elapsed();
    let mut per_window = Vec::new();
    for window in [StatsWindow::Hour, StatsWindow::Day, StatsWindow::Week] {
        let mut ms = Vec::with_capacity(REPEATS);
        for _ in 0..REPEATS {
            let t = Instant::now();
            let now = Timestamp::now_utc();
            let (from, to) = window.range(now);
            let query = RollupQuery {
                function: None,
                resolution: window.resolution(),
                from,
                to,
            };
            let rows = store.rollups("bench", &query).await?;
            let view = StatsView::build("bench", None, window, now, &rows);
            std::hint::black_box(view);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        per_window.push((window, median(ms)));
    }
    let listings = listings(&store).await?;
    store.close().await;
    let raw = raw_aggregate(&path, now).await?;
    Ok((fill, per_window, raw, listings))
}

/// Median milliseconds of record listings of the bench app (its records are all of one
/// function): the newest page, a filter no record matches (every record is read), and
/// a log text search no line matches.
async fn listings(store: &SqliteStore) -> Result<Vec<(&'static str, f64)>> {
    let newest = InvocationQuery::default();
    let none = InvocationQuery {
        status: Some(InvocationStatus::TimedOut),
        ..InvocationQuery::default()
    };
    let mut out = Vec::new();
    for (label, q, repeats) in [
        ("GET …/invocations (newest 100)", newest, REPEATS),
        ("GET …/invocations?status=timed_out (matches none)", none, 3),
    ] {
        let mut ms = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let t = Instant::now();
            std::hint::black_box(store.query_invocations("bench", &q).await?);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        out.push((label, median(ms)));
    }
    // Every record's START, END and REPORT are derived and searched.
    let text = LogQuery {
        text: Some("no such text".into()),
        ..LogQuery::default()
    };
    let mut ms = Vec::with_capacity(3);
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(store.query_logs("bench", &text).await?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    out.push(("GET …/logs?text=… (matches none)", median(ms)));
    Ok(out)
}

/// The bench function's records started at or after `?`, unpacked from their segments
/// (fields by position, see migration 13).
macro_rules! records {
    () => {
        "WITH r AS (SELECT j.value ->> 4 AS status, j.value ->> 7 AS duration_us, \
     j.value ->> 8 AS cold_start FROM invocation_segments s, json_each(s.records) j \
     WHERE s.app = 'bench' AND s.function = 'f' AND s.max_started >= ?1 \
     AND j.value ->> 9 >= ?1)"
    };
}

/// The baseline: the same figures straight from the records (no rollups).
async fn raw_aggregate(path: &Path, now: Timestamp) -> Result<f64> {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .context("cannot open the bench store for the raw aggregate")?;
    let since = (now - time::Duration::hours(24)).unix_timestamp_nanos() / 1000;
    let since = i64::try_from(since)?;
    let mut ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (calls, errors, cold): (i64, i64, i64) = sqlx::query_as(concat!(
            records!(),
            " SELECT COUNT(*), SUM(status <> 'succeeded'), SUM(cold_start) FROM r"
        ))
        .bind(since)
        .fetch_one(&pool)
        .await?;
        let p99: Option<i64> = sqlx::query_scalar(concat!(
            records!(),
            " SELECT duration_us FROM r ORDER BY duration_us LIMIT 1 OFFSET ?"
        ))
        .bind(since)
        .bind(calls * 99 / 100)
        .fetch_optional(&pool)
        .await?;
        std::hint::black_box((calls, errors, cold, p99));
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    pool.close().await;
    Ok(median(ms))
}

/// Formats the scenario's tables.
pub fn render(m: &Measured, markdown: bool) -> String {
    let ms = |us: Option<f64>| fixed(us.map(|us| us / 1e3), 3);
    let mut rows = vec![header(&[
        "observability (bench/observed, hello)",
        "round",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "node CPU µs/req",
    ])];
    for (label, runs, cpu) in [
        ("on (records, logs, metrics)", &m.on, &m.on_cpu),
        ("off", &m.off, &m.off_cpu),
    ] {
        for (i, (s, c)) in runs.iter().zip(cpu).enumerate() {
            rows.push(vec![
                label.into(),
                i.to_string(),
                format!("{:.0}", s.requests_per_sec()),
                ms(s.percentile_us(0.5)),
                ms(s.percentile_us(0.99)),
                s.errors.to_string(),
                fixed(*c, 1),
            ]);
        }
    }
    let mean = |runs: &[Stats]| {
        let rates: Vec<f64> = runs.iter().map(Stats::requests_per_sec).collect();
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
    };
    let (on, off) = (mean(&m.on), mean(&m.off));
    let cost = on.zip(off).map(|(on, off)| (1.0 - on / off) * 100.0);
    let mut out = table(&rows, markdown);
    let _ = writeln!(
        out,
        "\n{} connection(s); on/off throughput {}; cost {} % (limit {COST_LIMIT_PCT} %): {}\n",
        m.config.load.connections,
        ratio(on, off),
        fixed(cost, 1),
        verdict(cost, COST_LIMIT_PCT)
    );
    // Each round's two sides run back to back: their ratio shares the machine's state,
    // so the median over rounds resists a round disturbed by something else.
    let pairs: Vec<f64> =
        m.on.iter()
            .zip(&m.off)
            .filter(|(_, off)| off.requests_per_sec() > 0.0)
            .map(|(on, off)| (1.0 - on.requests_per_sec() / off.requests_per_sec()) * 100.0)
            .collect();
    if !pairs.is_empty() {
        let costs: Vec<String> = pairs.iter().map(|c| format!("{c:.1}")).collect();
        let _ = writeln!(
            out,
            "Cost per round pair: {} %; median {:.1} %.\n",
            costs.join(", "),
            median(pairs)
        );
    }
    // CPU per request varies far less with the machine's other load than throughput.
    let mean_cpu = |cpu: &[Option<f64>]| -> Option<f64> {
        let known: Vec<f64> = cpu.iter().flatten().copied().collect();
        (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
    };
    if let (Some(on), Some(off)) = (mean_cpu(&m.on_cpu), mean_cpu(&m.off_cpu)) {
        let _ = writeln!(
            out,
            "Node CPU per request (mean of rounds): on {on:.1} µs, off {off:.1} µs: \
             observability costs {:.1} µs ({:.1} %) of node CPU per request.\n",
            on - off,
            (on / off - 1.0) * 100.0
        );
    }
    let mut rows = vec![header(&[
        "stats query",
        "records",
        "median ms",
        "raw SQL ÷ this",
        "limit",
    ])];
    for (window, q) in &m.stats_ms {
        rows.push(vec![
            format!("GET …/stats?window={}", window_name(*window)),
            m.config.records.to_string(),
            fixed(Some(*q), 3),
            ratio(Some(m.raw_ms), Some(*q)),
            verdict(Some(*q), STATS_LIMIT_MS),
        ]);
    }
    for (label, q) in &m.listings {
        rows.push(vec![
            (*label).into(),
            m.config.records.to_string(),
            fixed(Some(*q), 3),
            ratio(Some(m.raw_ms), Some(*q)),
            "-".into(),
        ]);
    }
    rows.push(vec![
        "raw SQL aggregate over the records, 24 h (baseline)".into(),
        m.config.records.to_string(),
        fixed(Some(m.raw_ms), 3),
        "1.00".into(),
        "-".into(),
    ]);
    out.push_str(&table(&rows, markdown));
    let _ = writeln!(
        out,
        "\n{} records written in {:.1} s ({:.0} records/s with rollups).",
        m.config.records,
        m.fill.as_secs_f64(),
        m.config.records as f64 / m.fill.as_secs_f64().max(1e-9)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::cpu_ticks;

    #[test]
    fn cpu_ticks_add_utime_and_stime_after_the_command_name() {
        let stat = "4242 (arcus (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    731 52 0 0 20 0 9 0 123456 100000 2000 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(783));
        assert_eq!(cpu_ticks("4242 (arcus) S 1"), None);
        assert_eq!(cpu_ticks("no parenthesis"), None);
    }
}
