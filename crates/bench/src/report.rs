//! The printed results: one table of measurements and one of Arcus ÷ baseline ratios,
//! as aligned text or as markdown (for `docs/benchmarks.md`).

use crate::load::Stats;
use crate::process::{Measured, quantile};
use std::fmt::Write;

/// Issue 4's cold-start target: at most this much over the bare interpreter's start, ms.
pub const COLD_TARGET_MS: f64 = 25.0;
/// Issue 4's warm target: platform overhead at most this much, µs.
pub const WARM_TARGET_US: f64 = 500.0;

/// Issue 5's warm wasm target: arcus p50 at most this much over hyper's at 1 connection, µs.
pub const WASM_OVERHEAD_TARGET_US: f64 = 100.0;
/// Issue 5's warm wasm target: at least this many times `wasmtime serve`'s requests/s at
/// 16 connections.
pub const WASM_THROUGHPUT_TARGET: f64 = 2.0;

/// Name of the server the ratios are about.
pub const ARCUS: &str = "arcus";

/// One measured scenario.
#[derive(Debug, Clone)]
pub struct Row {
    /// Server name, e.g. `arcus`.
    pub server: &'static str,
    /// Concurrent connections.
    pub connections: usize,
    /// What was measured.
    pub stats: Stats,
}

/// Formats the tables; `markdown` picks markdown tables over aligned text.
pub fn render(rows: &[Row], markdown: bool) -> String {
    let mut measurements = vec![header(&[
        "server",
        "connections",
        "requests/s",
        "p50 µs",
        "p99 µs",
        "errors",
    ])];
    for row in rows {
        let s = &row.stats;
        measurements.push(vec![
            row.server.to_string(),
            row.connections.to_string(),
            format!("{:.0}", s.requests_per_sec()),
            latency(s.percentile_us(0.50)),
            latency(s.percentile_us(0.99)),
            s.errors.to_string(),
        ]);
    }
    let mut ratios = vec![header(&[
        "arcus ÷ baseline",
        "connections",
        "requests/s",
        "p50",
        "p99",
    ])];
    for arcus in rows.iter().filter(|r| r.server == ARCUS) {
        for base in rows
            .iter()
            .filter(|r| r.server != ARCUS && r.connections == arcus.connections)
        {
            let (a, b) = (&arcus.stats, &base.stats);
            ratios.push(vec![
                format!("arcus ÷ {}", base.server),
                arcus.connections.to_string(),
                ratio(Some(a.requests_per_sec()), Some(b.requests_per_sec())),
                ratio(a.percentile_us(0.50), b.percentile_us(0.50)),
                ratio(a.percentile_us(0.99), b.percentile_us(0.99)),
            ]);
        }
    }
    let mut out = table(&measurements, markdown);
    if ratios.len() > 1 {
        out.push('\n');
        out.push_str(&table(&ratios, markdown));
        out.push_str(if markdown { "\n" } else { "" });
        out.push_str(
            "requests/s ratio < 1 means Arcus serves fewer requests; latency ratio > 1 means Arcus is slower.\n",
        );
    }
    out.push_str(&issue5_targets(rows));
    for row in rows.iter().filter(|r| r.stats.errors > 0) {
        let first = row.stats.first_error.as_deref().unwrap_or("?");
        let _ = writeln!(
            out,
            "warning: {} with {} connection(s) had {} error(s); first: {first}",
            row.server, row.connections, row.stats.errors
        );
    }
    out
}

/// Issue 5's warm wasm targets, one line each when their rows were measured: platform
/// p50 overhead over hyper at 1 connection ≤ 100 µs, and ≥ 2× `wasmtime serve`'s
/// requests/s at 16 connections.
fn issue5_targets(rows: &[Row]) -> String {
    let find = |server: &str, connections: usize| {
        rows.iter()
            .find(|r| r.server == server && r.connections == connections)
            .map(|r| &r.stats)
    };
    let mut out = String::new();
    if let (Some(a), Some(h)) = (find(ARCUS, 1), find("hyper", 1)) {
        let overhead = a
            .percentile_us(0.5)
            .zip(h.percentile_us(0.5))
            .map(|(a, h)| a - h);
        let _ = writeln!(
            out,
            "issue 5: arcus p50 − hyper p50 at 1 connection = {} µs (target ≤ {WASM_OVERHEAD_TARGET_US:.0} µs: {}).",
            latency(overhead),
            verdict(overhead, WASM_OVERHEAD_TARGET_US)
        );
    }
    if let (Some(a), Some(w)) = (find(ARCUS, 16), find("wasmtime serve", 16)) {
        let r = (w.requests_per_sec() > 0.0).then(|| a.requests_per_sec() / w.requests_per_sec());
        let met = match r {
            Some(r) if r >= WASM_THROUGHPUT_TARGET => "met",
            Some(_) => "missed",
            None => "-",
        };
        let _ = writeln!(
            out,
            "issue 5: arcus ÷ wasmtime serve requests/s at 16 connections = {} (target ≥ {WASM_THROUGHPUT_TARGET:.0}×: {met}).",
            r.map_or_else(|| "-".into(), |r| format!("{r:.2}×"))
        );
    }
    out
}

/// Formats the process-runtime tables: cold starts against the bare interpreter, and warm
/// requests against the hyper floor plus a direct call of the handler.
pub fn render_process(results: &[Measured], markdown: bool) -> String {
    let mut cold = vec![header(&[
        "runtime",
        "runs",
        "cold p50 ms",
        "cold min ms",
        "bare p50 ms",
        "bare min ms",
        "cold − bare p50 ms",
        "cold ÷ bare p50",
        "target ≤ +25 ms",
    ])];
    let mut warm = vec![header(&[
        "runtime",
        "requests/s",
        "warm p50 µs",
        "warm p99 µs",
        "hyper p50 µs",
        "direct call p50 µs",
        "overhead p50 µs",
        "warm ÷ hyper p50",
        "target ≤ 500 µs",
    ])];
    for m in results {
        let (cold_p50, bare_p50) = (quantile(&m.cold_ms, 0.5), quantile(&m.bare_ms, 0.5));
        let extra = cold_p50.zip(bare_p50).map(|(c, b)| c - b);
        cold.push(vec![
            m.lang.name().into(),
            m.cold_ms.len().to_string(),
            fixed(cold_p50, 1),
            fixed(quantile(&m.cold_ms, 0.0), 1),
            fixed(bare_p50, 1),
            fixed(quantile(&m.bare_ms, 0.0), 1),
            fixed(extra, 1),
            ratio(cold_p50, bare_p50),
            verdict(extra, COLD_TARGET_MS),
        ]);
        let (warm_p50, hyper_p50) = (m.warm.percentile_us(0.5), m.hyper.percentile_us(0.5));
        let overhead = warm_p50.zip(hyper_p50).map(|(w, h)| w - h - m.direct_us);
        warm.push(vec![
            m.lang.name().into(),
            format!("{:.0}", m.warm.requests_per_sec()),
            latency(warm_p50),
            latency(m.warm.percentile_us(0.99)),
            latency(hyper_p50),
            fixed(Some(m.direct_us), 1),
            latency(overhead),
            ratio(warm_p50, hyper_p50),
            verdict(overhead, WARM_TARGET_US),
        ]);
    }
    let mut out = table(&cold, markdown);
    out.push('\n');
    out.push_str(&table(&warm, markdown));
    out.push_str(if markdown { "\n" } else { "" });
    out.push_str(
        "cold: first request to a fresh function (a new sandboxed instance), bare: the interpreter started and exited (same binary); \
         overhead = warm p50 − hyper p50 − direct call p50.\n",
    );
    for m in results {
        for (what, stats) in [("warm", &m.warm), ("hyper", &m.hyper)] {
            if stats.errors > 0 {
                let first = stats.first_error.as_deref().unwrap_or("?");
                let _ = writeln!(
                    out,
                    "warning: {} {what} had {} error(s); first: {first}",
                    m.lang.name(),
                    stats.errors
                );
            }
        }
    }
    out
}

/// `met` if `value` is at most `limit`, else `missed`.
pub(crate) fn verdict(value: Option<f64>, limit: f64) -> String {
    match value {
        Some(v) if v <= limit => "met".into(),
        Some(_) => "missed".into(),
        None => "-".into(),
    }
}

/// `met` if `value` is at least `limit`, else `missed`.
pub(crate) fn verdict_at_least(value: Option<f64>, limit: f64) -> String {
    match value {
        Some(v) if v >= limit => "met".into(),
        Some(_) => "missed".into(),
        None => "-".into(),
    }
}

/// `value` with `decimals` decimals, `-` if there is none.
pub(crate) fn fixed(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// A header row from its cells.
pub(crate) fn header(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_string()).collect()
}

/// A latency in whole µs, `-` if there is none.
pub(crate) fn latency(us: Option<f64>) -> String {
    us.map_or_else(|| "-".into(), |us| format!("{us:.0}"))
}

/// `a ÷ b` as `1.23×`, `-` if either is missing or `b` is not positive.
pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

/// Renders rows (the first is the header); text tables right-align all but the first column.
pub(crate) fn table(rows: &[Vec<String>], markdown: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, width))| {
                let pad = width.saturating_sub(cell.chars().count());
                if c == 0 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        if markdown {
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            if i == 0 {
                let rule: Vec<String> = widths
                    .iter()
                    .enumerate()
                    .map(|(c, w)| {
                        if c == 0 {
                            "-".repeat(*w)
                        } else {
                            format!("{}:", "-".repeat(w.saturating_sub(1)))
                        }
                    })
                    .collect();
                let _ = writeln!(out, "| {} |", rule.join(" | "));
            }
        } else {
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table_has_a_rule_after_the_header() {
        let rows = vec![header(&["a", "bb"]), vec!["xyz".into(), "1".into()]];
        assert_eq!(
            table(&rows, true),
            "| a   | bb |\n| --- | -: |\n| xyz |  1 |\n"
        );
        assert_eq!(table(&rows, false), "a    bb\nxyz   1\n");
    }

    #[test]
    fn verdicts_compare_with_the_target() {
        assert_eq!(verdict(Some(25.0), COLD_TARGET_MS), "met");
        assert_eq!(verdict(Some(25.1), COLD_TARGET_MS), "missed");
        assert_eq!(verdict(None, COLD_TARGET_MS), "-");
    }

    #[test]
    fn ratios_need_both_sides() {
        assert_eq!(ratio(Some(1.0), Some(4.0)), "0.25×");
        assert_eq!(ratio(None, Some(4.0)), "-");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "-");
    }
}
