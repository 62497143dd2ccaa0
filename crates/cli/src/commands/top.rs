//! `arcus top`: a live view of the node's functions sorted by request rate — rps, p99
//! latency, errors per second, invocations in flight and instances — computed from the
//! differences between consecutive scrapes of `/metrics` (admin token).

use crate::opts::ClientOpts;
use crate::output::{Table, duration_us, outln};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// `arcus top [<app>]`.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// Only this app's functions.
    app: Option<String>,
    /// Milliseconds between refreshes (100–60000).
    #[arg(long, default_value_t = 1000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    interval_ms: u64,
    /// Stop after this many refreshes (default: until interrupted).
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
}

/// One sample of the text format: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format, skipping comments and lines it cannot read.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.trim().rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` with `\"`, `\\` and `\n` escapes in values.
fn parse_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let (key, rest) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.insert(key.trim_start_matches(',').to_string(), value);
        s = rest[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// What one scrape says about one function.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counters {
    calls: f64,
    errors: f64,
    /// Cumulative duration histogram: (upper bound in seconds, count).
    buckets: Vec<(f64, f64)>,
    in_flight: f64,
    instances: f64,
}

type Key = (String, String);

/// The per-function counters of one scrape, of `app` only when given.
fn counters(samples: &[Sample], app: Option<&str>) -> BTreeMap<Key, Counters> {
    let mut out: BTreeMap<Key, Counters> = BTreeMap::new();
    for s in samples {
        let (Some(a), Some(f)) = (s.labels.get("app"), s.labels.get("function")) else {
            continue;
        };
        if app.is_some_and(|app| app != a) {
            continue;
        }
        let c = out.entry((a.clone(), f.clone())).or_default();
        match s.name.as_str() {
            "arcus_invocations_total" => {
                c.calls += s.value;
                if s.labels.get("status").is_some_and(|st| st != "succeeded") {
                    c.errors += s.value;
                }
            }
            "arcus_invocation_duration_seconds_bucket" => {
                let le = s.labels.get("le").and_then(|le| match le.as_str() {
                    "+Inf" => Some(f64::INFINITY),
                    v => v.parse().ok(),
                });
                if let Some(le) = le {
                    c.buckets.push((le, s.value));
                }
            }
            "arcus_in_flight" => c.in_flight = s.value,
            "arcus_instances" => c.instances += s.value,
            _ => {}
        }
    }
    for c in out.values_mut() {
        c.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The `q` quantile of the observations between two cumulative histograms, linearly
/// interpolated inside its bucket (as Prometheus' `histogram_quantile`); `None` without
/// observations.
fn quantile(prev: &[(f64, f64)], cur: &[(f64, f64)], q: f64) -> Option<f64> {
    let delta = |le: f64, count: f64| {
        let before = prev.iter().find(|p| p.0 == le).map_or(0.0, |p| p.1);
        (count - before).max(0.0)
    };
    let total = cur.last().map(|&(le, c)| delta(le, c))?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, count) in cur {
        let n = delta(le, count);
        if n >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = n - below;
            let frac = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return Some(lower + (le - lower) * frac);
        }
        (lower, below) = (le, n);
    }
    Some(lower)
}

/// One line of the view.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    app: String,
    function: String,
    rps: f64,
    p99_s: Option<f64>,
    errors_per_s: f64,
    in_flight: f64,
    instances: f64,
}

/// Rates between two scrapes `seconds` apart, busiest first.
fn rows(prev: &BTreeMap<Key, Counters>, cur: &BTreeMap<Key, Counters>, seconds: f64) -> Vec<Row> {
    let empty = Counters::default();
    let mut rows: Vec<Row> = cur
        .iter()
        .map(|((app, function), c)| {
            let p = prev.get(&(app.clone(), function.clone())).unwrap_or(&empty);
            let rate = |now: f64, before: f64| (now - before).max(0.0) / seconds.max(1e-3);
            Row {
                app: app.clone(),
                function: function.clone(),
                rps: rate(c.calls, p.calls),
                p99_s: quantile(&p.buckets, &c.buckets, 0.99),
                errors_per_s: rate(c.errors, p.errors),
                in_flight: c.in_flight,
                // A wasm request runs in an instance of its own: in flight = instances.
                instances: if c.instances > 0.0 {
                    c.instances
                } else {
                    c.in_flight
                },
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.rps
            .total_cmp(&a.rps)
            .then_with(|| (&a.app, &a.function).cmp(&(&b.app, &b.function)))
    });
    rows
}

fn render(rows: &[Row], seconds: f64) -> String {
    let total: f64 = rows.iter().map(|r| r.rps).sum();
    let mut t = Table::new(&["FUNCTION", "RPS", "P99", "ERR/S", "IN-FLIGHT", "INSTANCES"]);
    for r in rows {
        t.row(vec![
            format!("{}/{}", r.app, r.function),
            format!("{:.1}", r.rps),
            r.p99_s.map_or_else(
                || "-".to_string(),
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                |s| duration_us((s * 1e6) as u64),
            ),
            format!("{:.1}", r.errors_per_s),
            format!("{}", r.in_flight),
            format!("{}", r.instances),
        ]);
    }
    format!(
        "arcus top  {} functions  {total:.1} req/s  (over {seconds:.1}s)\n{}",
        rows.len(),
        t.render()
    )
}

/// Runs the view until interrupted or `--iterations` refreshes were shown.
pub async fn run(args: TopArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let app = args.app.as_deref();
    let interval = Duration::from_millis(args.interval_ms);
    let tty = std::io::stdout().is_terminal();
    let mut prev = counters(&parse(&ctx.client.metrics_text().await?), app);
    let mut at = Instant::now();
    let mut shown = 0;
    while args.iterations.is_none_or(|n| shown < n) {
        tokio::time::sleep(interval).await;
        let cur = counters(&parse(&ctx.client.metrics_text().await?), app);
        let now = Instant::now();
        let seconds = now.duration_since(at).as_secs_f64();
        let frame = render(&rows(&prev, &cur, seconds), seconds);
        if tty {
            // Clear the screen and home the cursor before each frame.
            outln!("\x1b[2J\x1b[H{frame}");
        } else {
            outln!("{frame}");
        }
        (prev, at, shown) = (cur, now, shown + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP arcus_invocations_total x
# TYPE arcus_invocations_total counter
arcus_invocations_total{app="a",function="f",version="1",status="succeeded",trigger="http"} 90
arcus_invocations_total{app="a",function="f",version="1",status="failed",trigger="http"} 10
arcus_invocations_total{app="b",function="g",version="draft",status="succeeded",trigger="api"} 5
arcus_invocation_duration_seconds_bucket{app="a",function="f",le="0.001"} 50
arcus_invocation_duration_seconds_bucket{app="a",function="f",le="0.01"} 99
arcus_invocation_duration_seconds_bucket{app="a",function="f",le="+Inf"} 100
arcus_in_flight{app="a",function="f"} 2
arcus_instances{app="b",function="g",state="idle"} 1
arcus_instances{app="b",function="g",state="busy"} 2
arcus_async_in_flight 0
"#;

    #[test]
    fn parses_the_text_format_with_escapes() {
        let s = parse_line(r#"m{a="x\"y",b="1\\2"} 3.5"#).unwrap();
        assert_eq!(s.name, "m");
        assert_eq!(s.labels["a"], "x\"y");
        assert_eq!(s.labels["b"], "1\\2");
        assert_eq!(s.value, 3.5);
        assert_eq!(parse_line("plain 7").unwrap().value, 7.0);
        assert!(parse_line("garbage").is_none());
        assert_eq!(parse(SCRAPE).len(), 10);
    }

    #[test]
    fn rates_errors_p99_and_instances_between_two_scrapes() {
        let cur = counters(&parse(SCRAPE), None);
        let rows = rows(&BTreeMap::new(), &cur, 2.0);
        assert_eq!(rows.len(), 2);
        let f = &rows[0];
        assert_eq!((f.app.as_str(), f.function.as_str()), ("a", "f"));
        assert_eq!((f.rps, f.errors_per_s), (50.0, 5.0));
        // Rank 99 of 100 falls at the top of the (1 ms, 10 ms] bucket.
        assert!((f.p99_s.unwrap() - 0.01).abs() < 1e-9, "{:?}", f.p99_s);
        assert_eq!((f.in_flight, f.instances), (2.0, 2.0));
        let g = &rows[1];
        assert_eq!((g.rps, g.instances, g.p99_s), (2.5, 3.0, None));
        let only_b = counters(&parse(SCRAPE), Some("b"));
        assert_eq!(only_b.len(), 1);
        // No new calls since the previous scrape: zero rates, no p99.
        let idle = super::rows(&cur, &cur, 1.0);
        assert!(idle.iter().all(|r| r.rps == 0.0 && r.p99_s.is_none()));
        let text = render(&rows, 2.0);
        assert!(
            text.starts_with("arcus top  2 functions  52.5 req/s"),
            "{text}"
        );
        assert!(text.contains("a/f"), "{text}");
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let cur = [(0.001, 50.0), (0.01, 100.0), (f64::INFINITY, 100.0)];
        let p50 = quantile(&[], &cur, 0.5).unwrap();
        assert!((p50 - 0.001).abs() < 1e-12);
        let p75 = quantile(&[], &cur, 0.75).unwrap();
        assert!((p75 - 0.0055).abs() < 1e-12, "{p75}");
        let over = [(0.001, 0.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(&[], &over, 0.99), Some(0.001));
    }
}
