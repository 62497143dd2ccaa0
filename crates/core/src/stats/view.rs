//! What the stats and usage endpoints answer, computed from rollup rows.

use super::{Histogram, Resolution, Rollup, RollupRow};
use crate::model::Timestamp;
use crate::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// How far back stats look. A closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum StatsWindow {
    /// The last hour, in minute buckets.
    #[serde(rename = "1h")]
    Hour,
    /// The last 24 hours, in hour buckets.
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days, in hour buckets.
    #[serde(rename = "7d")]
    Week,
}

impl StatsWindow {
    /// Parses `1h`, `24h` or `7d`; `invalid_request` otherwise.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "1h" => Ok(Self::Hour),
            "24h" => Ok(Self::Day),
            "7d" => Ok(Self::Week),
            _ => Err(Error::new(
                ErrorCode::InvalidRequest,
                "window must be 1h, 24h or 7d",
            )),
        }
    }

    /// The bucket size answered with.
    pub fn resolution(self) -> Resolution {
        match self {
            Self::Hour => Resolution::Minute,
            Self::Day | Self::Week => Resolution::Hour,
        }
    }

    /// Number of buckets, the current (partial) one included.
    pub fn buckets(self) -> i64 {
        match self {
            Self::Hour => 60,
            Self::Day => 24,
            Self::Week => 168,
        }
    }

    /// The bucket range `[from, to)` (unix seconds) ending with the bucket of `now`.
    pub fn range(self, now: Timestamp) -> (i64, i64) {
        let res = self.resolution();
        let to = res.bucket_of(now) + res.seconds();
        (to - self.buckets() * res.seconds(), to)
    }
}

/// Stats of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsBucket {
    /// Bucket start.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// Invocations.
    pub calls: u64,
    /// Invocations that did not succeed.
    pub errors: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Median duration, ms (upper bound of its histogram bucket, within 10 %).
    pub p50_ms: Option<f64>,
    /// 95th percentile duration, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile duration, ms.
    pub p99_ms: Option<f64>,
}

/// `GET .../stats`: totals over a window and its buckets, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    /// App name.
    pub app: String,
    /// Function name; absent for a whole app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The window.
    pub window: StatsWindow,
    /// Bucket size.
    pub resolution: Resolution,
    /// Invocations.
    pub calls: u64,
    /// Invocations that did not succeed.
    pub errors: u64,
    /// Succeeded / calls (1 when there were no calls).
    pub success_rate: f64,
    /// Failed invocations by error code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Cold starts / calls (0 when there were no calls).
    pub cold_start_rate: f64,
    /// Median duration, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile duration, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile duration, ms.
    pub p99_ms: Option<f64>,
    /// Every bucket of the window, empty ones included.
    pub buckets: Vec<StatsBucket>,
}

fn ratio(n: u64, d: u64, empty: f64) -> f64 {
    if d == 0 {
        return empty;
    }
    #[allow(clippy::cast_precision_loss)]
    let r = n as f64 / d as f64;
    (r * 1e6).round() / 1e6
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_unix_timestamp(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn quantiles(h: &Histogram) -> [Option<f64>; 3] {
    [0.5, 0.95, 0.99].map(|q| h.quantile_ms(q))
}

impl StatsView {
    /// Builds the view of `window` ending now from rollup rows of that range.
    pub fn build(
        app: &str,
        function: Option<&str>,
        window: StatsWindow,
        now: Timestamp,
        rows: &[RollupRow],
    ) -> Self {
        let res = window.resolution();
        let (from, to) = window.range(now);
        let mut by_bucket: BTreeMap<i64, Rollup> = BTreeMap::new();
        let mut total = Rollup::default();
        for row in rows.iter().filter(|r| (from..to).contains(&r.bucket)) {
            by_bucket.entry(row.bucket).or_default().merge(&row.rollup);
            total.merge(&row.rollup);
        }
        let buckets = (0..window.buckets())
            .map(|i| {
                let start = from + i * res.seconds();
                let r = by_bucket.remove(&start).unwrap_or_default();
                let [p50_ms, p95_ms, p99_ms] = quantiles(&r.histogram);
                StatsBucket {
                    start: ts(start),
                    calls: r.calls,
                    errors: r.errors,
                    cold_starts: r.cold_starts,
                    p50_ms,
                    p95_ms,
                    p99_ms,
                }
            })
            .collect();
        let [p50_ms, p95_ms, p99_ms] = quantiles(&total.histogram);
        Self {
            app: app.to_string(),
            function: function.map(str::to_string),
            window,
            resolution: res,
            calls: total.calls,
            errors: total.errors,
            success_rate: ratio(total.calls - total.errors, total.calls, 1.0),
            errors_by_code: total.error_codes,
            cold_start_rate: ratio(total.cold_starts, total.calls, 0.0),
            p50_ms,
            p95_ms,
            p99_ms,
            buckets,
        }
    }
}

/// Metered use of one function in one hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageHour {
    /// Function name.
    pub function: String,
    /// Hour start.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub hour: Timestamp,
    /// Invocations.
    pub invocations: u64,
    /// Memory × billed duration (each invocation rounded up to 1 ms), GB-seconds
    /// (1 GB-s = 1024 MiB × 1000 ms).
    pub gb_seconds: f64,
    /// The same, exact, in MiB·ms.
    pub mib_ms: u64,
    /// Billed duration, ms.
    pub billed_ms: u64,
    /// Wall-clock compute time, µs.
    pub compute_us: u64,
    /// Response bytes sent.
    pub egress_bytes: u64,
}

/// `GET /apps/{app}/usage`: per function and hour, with totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageView {
    /// App name.
    pub app: String,
    /// First hour included.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// End of the last hour included (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Rows, by hour then function.
    pub hours: Vec<UsageHour>,
    /// Sums over the rows (function `*`, hour = `from`).
    pub total: UsageHour,
}

/// MiB·ms → GB-seconds, rounded to 6 decimals.
fn gb_seconds(mib_ms: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let gbs = mib_ms as f64 / 1_024_000.0;
    (gbs * 1e6).round() / 1e6
}

fn usage_hour(function: &str, hour: i64, r: &Rollup) -> UsageHour {
    UsageHour {
        function: function.to_string(),
        hour: ts(hour),
        invocations: r.calls,
        gb_seconds: gb_seconds(r.mib_ms),
        mib_ms: r.mib_ms,
        billed_ms: r.billed_ms,
        compute_us: r.duration_us,
        egress_bytes: r.egress_bytes,
    }
}

impl UsageView {
    /// Builds the view from hourly rollup rows of `[from, to)` (unix seconds).
    pub fn build(app: &str, from: i64, to: i64, rows: &[RollupRow]) -> Self {
        let mut total = Rollup::default();
        let mut hours: Vec<UsageHour> = rows
            .iter()
            .map(|row| {
                total.merge(&row.rollup);
                usage_hour(&row.function, row.bucket, &row.rollup)
            })
            .collect();
        hours.sort_by(|a, b| (a.hour, &a.function).cmp(&(b.hour, &b.function)));
        Self {
            app: app.to_string(),
            from: ts(from),
            to: ts(to),
            hours,
            total: usage_hour("*", from, &total),
        }
    }
}
