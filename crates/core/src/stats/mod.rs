//! Invocation queries, rollups, stats and usage: the types the store keeps and the API
//! returns for "what was called, how it went and what it cost".
//!
//! Rollups are kept per function and per minute and hour bucket when records are
//! written, so stats and usage read a few hundred rows whatever the number of records.

use crate::model::Timestamp;
use crate::record::{InvocationRecord, InvocationStatus, TriggerKind};
use crate::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Filters for listing invocation records of an app (or one of its functions).
#[derive(Debug, Clone, Default)]
pub struct InvocationQuery {
    /// Only this invocation.
    pub id: Option<String>,
    /// Only this function.
    pub function: Option<String>,
    /// Only this version.
    pub version: Option<u32>,
    /// Only invocations that ended so.
    pub status: Option<InvocationStatus>,
    /// Only invocations started so.
    pub trigger: Option<TriggerKind>,
    /// Only cold (or only warm) invocations.
    pub cold_start: Option<bool>,
    /// Only invocations that failed with this error code.
    pub error_code: Option<String>,
    /// Started at or after.
    pub since: Option<Timestamp>,
    /// Started before.
    pub until: Option<Timestamp>,
    /// Continue after this page (a `next_cursor` of an earlier answer).
    pub cursor: Option<Cursor>,
    /// At most this many, newest first (0 = the store's default).
    pub limit: u32,
}

/// Where a newest-first listing stopped: the last row's start time (unix µs) and
/// insertion sequence. Shown to clients as an opaque `<time>.<seq>` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Start time of the last row returned, unix microseconds.
    pub time_us: i64,
    /// Insertion sequence of the last row returned.
    pub seq: i64,
}

impl Cursor {
    /// The wire form.
    pub fn encode(self) -> String {
        format!("{}.{}", self.time_us, self.seq)
    }

    /// Parses the wire form; `invalid_request` if it is not one.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::new(ErrorCode::InvalidRequest, "cursor is not valid");
        let (t, q) = s.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            time_us: t.parse().map_err(|_| bad())?,
            seq: q.parse().map_err(|_| bad())?,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Lower bound of the duration histogram: everything up to 10 µs is bucket 0.
const HIST_BASE_US: f64 = 10.0;
/// Ratio between the upper bounds of neighbouring buckets; a percentile read from the
/// histogram is at most this much above the true one.
const HIST_GROWTH: f64 = 1.1;

/// A sparse duration histogram: bucket index → count; bucket `i` holds durations up to
/// `10 µs × 1.1^i`. Merges by adding counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram(pub BTreeMap<u16, u64>);

impl Histogram {
    /// The bucket a duration falls in.
    pub fn bucket(duration_us: u64) -> u16 {
        #[allow(clippy::cast_precision_loss)]
        let d = duration_us as f64;
        if d <= HIST_BASE_US {
            return 0;
        }
        let i = ((d / HIST_BASE_US).ln() / HIST_GROWTH.ln()).ceil();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = i.min(f64::from(u16::MAX)) as u16;
        i
    }

    /// The upper bound of bucket `i`, µs.
    pub fn upper_us(i: u16) -> f64 {
        HIST_BASE_US * HIST_GROWTH.powi(i32::from(i))
    }

    /// Counts one duration.
    pub fn record(&mut self, duration_us: u64) {
        *self.0.entry(Self::bucket(duration_us)).or_default() += 1;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (&i, &n) in &other.0 {
            *self.0.entry(i).or_default() += n;
        }
    }

    /// The `q` quantile (0–1) in milliseconds, as the upper bound of its bucket;
    /// `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.0.values().sum();
        if total == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        #[allow(clippy::cast_sign_loss)]
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (&i, &n) in &self.0 {
            seen += n;
            if seen >= rank {
                return Some(round3(Self::upper_us(i) / 1000.0));
            }
        }
        None
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Rollup resolution.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// One-minute buckets.
    Minute,
    /// One-hour buckets.
    Hour,
}

impl Resolution {
    /// Both resolutions, each kept for every record.
    pub const ALL: [Resolution; 2] = [Self::Minute, Self::Hour];

    /// Bucket length, seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3600,
        }
    }

    /// How long rollups of this resolution are kept: minute buckets 2 days (they serve
    /// the 1 h window), hour buckets 400 days (the 24 h and 7 d windows and metered
    /// usage, kept past a year for billing).
    pub fn retention(self) -> time::Duration {
        match self {
            Self::Minute => time::Duration::days(2),
            Self::Hour => time::Duration::days(400),
        }
    }

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "m",
            Self::Hour => "h",
        }
    }

    /// The start (unix seconds) of the bucket holding `t`.
    pub fn bucket_of(self, t: Timestamp) -> i64 {
        t.unix_timestamp().div_euclid(self.seconds()) * self.seconds()
    }
}

/// Aggregates of one function's invocations in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Invocations.
    pub calls: u64,
    /// Invocations that did not succeed.
    pub errors: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Sum of wall-clock durations, µs.
    pub duration_us: u64,
    /// Sum of billed durations, ms.
    pub billed_ms: u64,
    /// Sum of memory × billed duration, MiB·ms.
    pub mib_ms: u64,
    /// Sum of response bytes.
    pub egress_bytes: u64,
    /// Failed invocations by error code.
    pub error_codes: BTreeMap<String, u64>,
    /// Durations.
    pub histogram: Histogram,
}

impl Rollup {
    /// Counts one record.
    pub fn add(&mut self, r: &InvocationRecord) {
        self.calls += 1;
        if r.status != InvocationStatus::Succeeded {
            self.errors += 1;
            let code = r.error_code.clone().unwrap_or_else(|| "unknown".into());
            *self.error_codes.entry(code).or_default() += 1;
        }
        self.cold_starts += u64::from(r.cold_start);
        self.duration_us = self.duration_us.saturating_add(r.duration_us);
        self.billed_ms = self.billed_ms.saturating_add(r.billed_ms());
        self.mib_ms = self.mib_ms.saturating_add(r.mib_ms());
        self.egress_bytes = self.egress_bytes.saturating_add(r.egress_bytes);
        self.histogram.record(r.duration_us);
    }

    /// Adds another rollup.
    pub fn merge(&mut self, o: &Rollup) {
        self.calls += o.calls;
        self.errors += o.errors;
        self.cold_starts += o.cold_starts;
        self.duration_us = self.duration_us.saturating_add(o.duration_us);
        self.billed_ms = self.billed_ms.saturating_add(o.billed_ms);
        self.mib_ms = self.mib_ms.saturating_add(o.mib_ms);
        self.egress_bytes = self.egress_bytes.saturating_add(o.egress_bytes);
        for (code, n) in &o.error_codes {
            *self.error_codes.entry(code.clone()).or_default() += n;
        }
        self.histogram.merge(&o.histogram);
    }
}

/// A stored rollup row.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// Function name.
    pub function: String,
    /// Bucket start, unix seconds.
    pub bucket: i64,
    /// The aggregates.
    pub rollup: Rollup,
}

/// Which rollups to read.
#[derive(Debug, Clone)]
pub struct RollupQuery {
    /// Only this function (else every function of the app).
    pub function: Option<String>,
    /// Bucket size.
    pub resolution: Resolution,
    /// First bucket start (unix seconds), inclusive.
    pub from: i64,
    /// Last bucket start (unix seconds), exclusive.
    pub to: i64,
}

mod view;
pub use view::{StatsBucket, StatsView, StatsWindow, UsageHour, UsageView};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_ten_percent_above() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(us * 1000); // 1 ms … 1 s
        }
        for (q, truth) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile_ms(q).unwrap();
            assert!(got >= truth && got <= truth * 1.1, "q{q}: {got} vs {truth}");
        }
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
        assert_eq!(Histogram::bucket(0), 0);
        assert_eq!(Histogram::bucket(10), 0);
        assert!(Histogram::upper_us(Histogram::bucket(900_000_000)) >= 9e8);
    }

    #[test]
    fn windows_end_with_the_current_bucket() {
        let now = Timestamp::from_unix_timestamp(7_200 + 61).unwrap();
        assert_eq!(
            StatsWindow::Hour.range(now),
            (7_200 + 120 - 3_600, 7_200 + 120)
        );
        assert_eq!(StatsWindow::Week.range(now), (10_800 - 168 * 3_600, 10_800));
        assert!(StatsWindow::parse("2h").is_err());
        assert_eq!(Cursor::parse("5.7").unwrap(), Cursor { time_us: 5, seq: 7 });
        assert_eq!(
            Cursor::parse(
                &Cursor {
                    time_us: -1,
                    seq: 2
                }
                .encode()
            )
            .unwrap()
            .time_us,
            -1
        );
    }
}
