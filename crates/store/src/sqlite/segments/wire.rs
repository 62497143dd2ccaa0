//! How a segment's records are stored: each a JSON array of fields in a fixed order
//! ([`Wire`]), read back borrowing its strings ([`Text`], [`View`]) or as a whole
//! record with its place in the shared seqs ([`Stored`], [`Platform`]).

use crate::sqlite::util::{corrupt, ts_from_db, ts_to_db};
use arcus_core::Result;
use arcus_core::record::{InvocationRecord, InvocationStatus, TriggerKind};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One record of a segment with its place in the shared seqs.
#[derive(Debug, Clone)]
pub(in crate::sqlite) struct Stored {
    /// The record's seq: the last of its block.
    pub seq: i64,
    /// Its platform lines, when it ran.
    pub platform: Option<Platform>,
    /// The record (app and function are the segment's).
    pub record: InvocationRecord,
}

/// Where a record's platform lines are. Its block of seqs: the first `init_lines`
/// captured lines (printed while its instance started), `START`, the other captured
/// lines, `END` (seq − 1) and `REPORT` (seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sqlite) struct Platform {
    /// Captured lines in the block.
    pub lines: i64,
    /// `END`'s and `REPORT`'s capture time, unix µs.
    pub ended_at: i64,
    /// Captured lines before `START`.
    pub init_lines: i64,
    /// `START`'s capture time, unix µs: the start, or the last line before it if later.
    pub start_at: i64,
}

impl Stored {
    /// Start time, unix µs.
    pub fn started(&self) -> i64 {
        ts_to_db(self.record.started_at)
    }
}

/// The first seq a read can show of the block of record seq `seq`.
pub(super) fn block_start(seq: i64, platform: Option<Platform>) -> i64 {
    platform.map_or(seq, |p| seq.saturating_sub(p.lines + 2))
}

/// A record as stored in a segment's JSON: an array, in this field order (the
/// migration that moved older records into segments builds the same arrays in SQL).
#[derive(Serialize, Deserialize)]
pub(super) struct Wire<S>(
    /// seq
    i64,
    /// id
    S,
    /// version
    Option<u32>,
    /// trigger
    S,
    /// status
    S,
    /// error_code
    Option<S>,
    /// http_status
    Option<u16>,
    /// duration_us
    u64,
    /// cold_start
    bool,
    /// started_at, unix µs
    i64,
    /// memory_mb
    u32,
    /// egress_bytes
    u64,
    /// trace_id
    Option<S>,
    /// init_duration_us
    Option<u64>,
    /// max_memory_mb
    Option<u64>,
    /// captured lines between the platform lines (`None`: no platform lines)
    Option<i64>,
    /// ended_at, unix µs (with platform lines)
    Option<i64>,
    /// lines before `START` and `START`'s time (unix µs), when some lines are before it
    /// (absent from records of migration 13)
    #[serde(default)]
    Option<(i64, i64)>,
);

impl<'a> Wire<&'a str> {
    pub(super) fn of(seq: i64, r: &'a InvocationRecord, platform: Option<Platform>) -> Self {
        Self(
            seq,
            &r.id,
            r.version,
            r.trigger.as_str(),
            r.status.as_str(),
            r.error_code.as_deref(),
            r.http_status,
            r.duration_us,
            r.cold_start,
            ts_to_db(r.started_at),
            r.memory_mb,
            r.egress_bytes,
            r.trace_id.as_deref(),
            r.init_duration_us,
            r.max_memory_mb,
            platform.map(|p| p.lines),
            platform.map(|p| p.ended_at),
            platform
                .filter(|p| p.init_lines > 0)
                .map(|p| (p.init_lines, p.start_at)),
        )
    }
}

/// A string of a segment's JSON: borrowed from the text unless it has escapes.
pub(super) struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(Visit)
    }
}

impl Text<'_> {
    fn owned(self) -> String {
        self.0.into_owned()
    }
}

/// The fields of a stored record that listings filter on and platform lines are
/// derived from, read without copying.
#[derive(Debug, Clone, Copy)]
pub(in crate::sqlite) struct View<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub version: Option<u32>,
    pub trigger: &'a str,
    pub status: &'a str,
    pub error_code: Option<&'a str>,
    pub duration_us: u64,
    pub cold_start: bool,
    /// Start time, unix µs.
    pub started: i64,
    pub memory_mb: u32,
    pub trace_id: Option<&'a str>,
    pub init_duration_us: Option<u64>,
    pub max_memory_mb: Option<u64>,
    pub platform: Option<Platform>,
}

impl View<'_> {
    /// The first seq of its block that a read can show (`START`'s, or the record's).
    pub fn first_seq(&self) -> i64 {
        block_start(self.seq, self.platform)
    }
}

impl<'a> Wire<Text<'a>> {
    pub(super) fn view(&self) -> Result<View<'_>> {
        Ok(View {
            seq: self.0,
            id: &self.1.0,
            version: self.2,
            trigger: &self.3.0,
            status: &self.4.0,
            error_code: self.5.as_ref().map(|t| &*t.0),
            duration_us: self.7,
            cold_start: self.8,
            started: self.9,
            memory_mb: self.10,
            trace_id: self.12.as_ref().map(|t| &*t.0),
            init_duration_us: self.13,
            max_memory_mb: self.14,
            platform: platform(self.15, self.16, self.17, self.9)?,
        })
    }

    pub(super) fn into_stored(self, app: &str, function: &str) -> Result<Stored> {
        let Wire(
            seq,
            id,
            version,
            trigger,
            status,
            error_code,
            http_status,
            duration_us,
            cold_start,
            started_at,
            memory_mb,
            egress_bytes,
            trace_id,
            init_duration_us,
            max_memory_mb,
            lines,
            ended_at,
            init,
        ) = self;
        Ok(Stored {
            seq,
            platform: platform(lines, ended_at, init, started_at)?,
            record: InvocationRecord {
                id: id.owned(),
                app: app.to_string(),
                function: function.to_string(),
                version,
                trigger: TriggerKind::parse(&trigger.0).ok_or_else(|| corrupt("trigger"))?,
                status: InvocationStatus::parse(&status.0).ok_or_else(|| corrupt("status"))?,
                error_code: error_code.map(Text::owned),
                http_status,
                duration_us,
                cold_start,
                memory_mb,
                egress_bytes,
                trace_id: trace_id.map(Text::owned),
                started_at: ts_from_db(started_at, "started_at")?,
                init_duration_us,
                max_memory_mb,
            },
        })
    }
}

/// A record's [`Platform`] from its wire fields (captured lines, end, lines before
/// `START` and its time) and start time.
fn platform(
    lines: Option<i64>,
    ended_at: Option<i64>,
    init: Option<(i64, i64)>,
    started_at: i64,
) -> Result<Option<Platform>> {
    let (init_lines, start_at) = init.unwrap_or((0, started_at));
    match (lines, ended_at) {
        (Some(lines), Some(ended_at)) => Ok(Some(Platform {
            lines,
            ended_at,
            init_lines,
            start_at,
        })),
        (None, _) => Ok(None),
        (Some(_), None) => Err(corrupt("records")),
    }
}
