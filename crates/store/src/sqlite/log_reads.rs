//! Log reads: newest-first queries with filters and cursor pages, and the write-order
//! reads live followers make. Both merge the stored lines (`logs`, read in SQL with the
//! page's limit) with the `START`, `END` and `REPORT` lines derived from records (ADR
//! 0019), read from the segments that can hold matching ones (ADR 0020).
//!
//! A recorded invocation's seqs form one block from record seq − lines − 2: the lines
//! its instance printed while starting, `START`, its other stored lines, `END` (record
//! seq − 1), `REPORT` (the record's seq).

use super::logs::{last_seq, seq_to_db};
use super::records::DEFAULT_LIMIT;
use super::segments::{self, Bounds, Key, Segment, View};
use super::util::{col, corrupt, db, require_scope, ts_from_db, ts_to_db, u64_to_db};
use arcus_core::Result;
use arcus_core::record::{LogLine, LogStream, billed_ms};
use arcus_core::stats::{Cursor, Page};
use arcus_core::store::{LogQuery, LogTail};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};
use std::cmp::Reverse;

/// Seqs one [`tail`] call looks at, at most: bounds its cost whatever the filters.
pub(super) const TAIL_WINDOW: u64 = 20_000;

fn from_row(row: &SqliteRow) -> Result<LogLine> {
    let stream: String = col(row, "stream")?;
    let id: i64 = col(row, "id")?;
    Ok(LogLine {
        seq: u64::try_from(id).map_err(|_| corrupt("id"))?,
        invocation_id: col(row, "invocation_id")?,
        app: col(row, "app")?,
        function: col(row, "function")?,
        stream: LogStream::parse(&stream).ok_or_else(|| corrupt("stream"))?,
        timestamp: ts_from_db(col(row, "ts")?, "ts")?,
        message: col(row, "message")?,
        trace_id: col(row, "trace_id")?,
    })
}

/// Appends the filters of `q` other than the cursor to a `SELECT ... FROM logs WHERE`.
/// `seek` disables the app and function indexes (`+app`), so a seq-range read scans
/// the range (or an invocation read its index), not the whole function.
fn push_filters(sql: &mut QueryBuilder<Sqlite>, app: &str, q: &LogQuery, seek: bool) {
    let plus = if seek { "+" } else { "" };
    sql.push(format!(" {plus}app = "))
        .push_bind(app.to_string());
    if let Some(f) = &q.function {
        sql.push(format!(" AND {plus}function = "))
            .push_bind(f.clone());
    }
    if let Some(id) = &q.invocation_id {
        sql.push(" AND invocation_id = ").push_bind(id.clone());
    }
    if let Some(s) = q.stream {
        sql.push(" AND stream = ").push_bind(s.as_str());
    }
    if let Some(text) = &q.text {
        // instr: a case-sensitive substring test, with no wildcards to escape.
        sql.push(" AND instr(message, ").push_bind(text.clone());
        sql.push(") > 0");
    }
    if let Some(t) = q.since {
        sql.push(" AND ts >= ").push_bind(ts_to_db(t));
    }
    if let Some(t) = q.until {
        sql.push(" AND ts < ").push_bind(ts_to_db(t));
    }
}

/// The stored lines' columns, up to `WHERE` (the filters follow).
const SELECT_STORED: &str =
    "SELECT id, invocation_id, app, function, stream, ts, message, trace_id FROM logs WHERE";

/// Runs a query of stored lines.
async fn fetch_stored(
    conn: &mut SqliteConnection,
    mut sql: QueryBuilder<Sqlite>,
) -> Result<Vec<LogLine>> {
    let rows = sql.build().fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(from_row).collect()
}

/// A duration in µs as Lambda prints milliseconds: two decimals, half up.
struct Ms(u64);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0.saturating_add(5);
        write!(f, "{}.{:02}", r / 1000, r / 10 % 100)
    }
}

/// One of a record's derived platform lines.
#[derive(Clone, Copy)]
enum Derived {
    Start,
    End,
    Report,
}

/// Writes the text of a record's derived line `kind` to `out`.
fn write_message(out: &mut String, v: &View<'_>, kind: Derived) -> std::fmt::Result {
    use std::fmt::Write;
    match kind {
        Derived::Start => match v.version {
            Some(n) => write!(out, "START RequestId: {} Version: {n}", v.id),
            None => write!(out, "START RequestId: {} Version: $LATEST", v.id),
        },
        Derived::End => write!(out, "END RequestId: {}", v.id),
        Derived::Report => {
            write!(
                out,
                "REPORT RequestId: {}\tDuration: {} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
                v.id,
                Ms(v.duration_us),
                billed_ms(v.duration_us).max(1),
                v.memory_mb
            )?;
            if let Some(m) = v.max_memory_mb {
                write!(out, "\tMax Memory Used: {m} MB")?;
            }
            match v.init_duration_us {
                Some(init) => write!(out, "\tInit Duration: {} ms", Ms(init)),
                None => Ok(()),
            }
        }
    }
}

/// Derives records' `START`, `END` and `REPORT` lines from segments, reading records
/// without copying them and formatting the lines' text in one reused buffer, so that
/// a scan copies out only the lines it keeps.
#[derive(Default)]
struct Deriver {
    buf: String,
}

impl Deriver {
    /// Appends to `out` the platform lines of the records of `seg` whose seq passes
    /// `record` that pass the filters of `q` other than the cursor, and `keep` (given a
    /// line's seq and capture time, unix µs). Lines are checked by record, seq and time
    /// before their text is formatted, and by text before they are built.
    fn lines(
        &mut self,
        seg: &Segment,
        q: &LogQuery,
        record: impl Fn(i64) -> bool,
        keep: impl Fn(i64, i64) -> bool,
        out: &mut Vec<LogLine>,
    ) -> Result<()> {
        if q.function.as_ref().is_some_and(|f| seg.function != *f) {
            return Ok(());
        }
        let (since, until) = (q.since.map(ts_to_db), q.until.map(ts_to_db));
        seg.each(|v| {
            let Some(p) = v
                .platform
                .filter(|_| record(v.seq) && q.invocation_id.as_ref().is_none_or(|id| v.id == id))
            else {
                return Ok(());
            };
            for (seq, at, kind) in [
                (v.first_seq() + p.init_lines, p.start_at, Derived::Start),
                (v.seq - 1, p.ended_at, Derived::End),
                (v.seq, p.ended_at, Derived::Report),
            ] {
                let in_range = since.is_none_or(|t| at >= t) && until.is_none_or(|t| at < t);
                if !in_range || !keep(seq, at) {
                    continue;
                }
                self.buf.clear();
                if write_message(&mut self.buf, v, kind).is_err()
                    || q.text
                        .as_ref()
                        .is_some_and(|t| !self.buf.contains(t.as_str()))
                {
                    continue;
                }
                let timestamp = ts_from_db(at, "ts")?;
                out.push(LogLine {
                    seq: u64::try_from(seq).unwrap_or(0),
                    invocation_id: v.id.to_string(),
                    app: seg.app.clone(),
                    function: seg.function.clone(),
                    stream: LogStream::Platform,
                    timestamp,
                    message: self.buf.clone(),
                    trace_id: v.trace_id.map(str::to_string),
                });
            }
            Ok(())
        })
    }
}

/// A line's newest-first order key.
fn newest_key(l: &LogLine) -> Reverse<(i64, u64)> {
    Reverse((ts_to_db(l.timestamp), l.seq))
}

/// Up to `limit` derived lines matching `q` (and before its cursor), newest first.
///
/// Segments are read newest first by their newest platform line; once `limit` lines are
/// gathered, a segment whose newest line is before the last of them cannot change
/// them, and neither can any after it.
async fn derived_newest(
    conn: &mut SqliteConnection,
    app: &str,
    q: &LogQuery,
    limit: usize,
) -> Result<Vec<LogLine>> {
    if q.stream.is_some_and(|s| s != LogStream::Platform) {
        return Ok(Vec::new());
    }
    let before_cursor = |seq: i64, at: i64| q.cursor.is_none_or(|c| (at, seq) < (c.time_us, c.seq));
    let mut found: Vec<LogLine> = Vec::new();
    let mut deriver = Deriver::default();
    let mut take = |seg: &Segment, found: &mut Vec<LogLine>| -> Result<()> {
        if seg.app == app {
            deriver.lines(seg, q, |_| true, before_cursor, found)?;
            found.sort_unstable_by_key(newest_key);
            found.truncate(limit);
        }
        Ok(())
    };
    if let Some(id) = &q.invocation_id {
        if let Some(seg) = segments::by_id(conn, id).await? {
            take(&seg, &mut found)?;
        }
        return Ok(found);
    }
    let bounds = Bounds::listing(
        q.function.as_deref(),
        q.since,
        q.until,
        q.cursor.map(|c| c.time_us),
    );
    segments::newest(conn, app, Key::Ended, &bounds, |seg| {
        if found.len() >= limit
            && found
                .last()
                .is_some_and(|l| seg.key < ts_to_db(l.timestamp))
        {
            return Ok(false);
        }
        take(&seg, &mut found)?;
        Ok(true)
    })
    .await?;
    Ok(found)
}

/// A page of an app's lines matching `q`, newest first (capture time, then seq).
pub(super) async fn query(
    conn: &mut SqliteConnection,
    app: &str,
    q: &LogQuery,
) -> Result<Page<LogLine>> {
    require_scope(conn, app, q.function.as_deref()).await?;
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit } as usize;
    let mut sql = QueryBuilder::<Sqlite>::new(SELECT_STORED);
    // One invocation's lines are few: look them up by invocation, not by scanning the
    // app's or function's index.
    push_filters(&mut sql, app, q, q.invocation_id.is_some());
    if let Some(c) = q.cursor {
        sql.push(" AND ts <= ").push_bind(c.time_us);
        sql.push(" AND (ts, id) < (")
            .push_bind(c.time_us)
            .push(", ")
            .push_bind(c.seq)
            .push(")");
    }
    sql.push(" ORDER BY ts DESC, id DESC LIMIT ")
        .push_bind(u64_to_db(limit as u64 + 1));
    let mut items = fetch_stored(conn, sql).await?;
    items.extend(derived_newest(conn, app, q, limit + 1).await?);
    items.sort_unstable_by_key(newest_key);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|l| {
            Cursor {
                time_us: ts_to_db(l.timestamp),
                seq: u64_to_db(l.seq),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Lines after seq `after` matching `q`, in seq order, looking at most at
/// [`TAIL_WINDOW`] seqs (more when one invocation's block is larger).
pub(super) async fn tail(
    conn: &mut SqliteConnection,
    app: &str,
    q: &LogQuery,
    after: u64,
    limit: u32,
) -> Result<LogTail> {
    require_scope(conn, app, q.function.as_deref()).await?;
    let last = last_seq(conn).await?;
    let upper = window_end(conn, app, after, last).await?;
    if upper <= after {
        return Ok(LogTail {
            lines: Vec::new(),
            scanned_to: after,
        });
    }
    let limit = if limit == 0 { DEFAULT_LIMIT } else { limit } as usize;
    let (low, high) = (seq_to_db(after), seq_to_db(upper));
    let mut sql = QueryBuilder::<Sqlite>::new(SELECT_STORED);
    sql.push(" id > ").push_bind(low);
    sql.push(" AND id <= ").push_bind(high).push(" AND");
    push_filters(&mut sql, app, q, true);
    sql.push(" ORDER BY id LIMIT ")
        .push_bind(u64_to_db(limit as u64));
    let mut lines = fetch_stored(conn, sql).await?;
    if q.stream.is_none_or(|s| s == LogStream::Platform) {
        // Blocks do not cross `upper`, so a derived line is in the window when its
        // record is and the line is after `after`.
        let mut deriver = Deriver::default();
        segments::after_seq(conn, app, q.function.as_deref(), low, |seg| {
            if seg.key > high {
                return Ok(false);
            }
            let in_window = |seq| seq > low && seq <= high;
            deriver.lines(&seg, q, in_window, |seq, _| seq > low, &mut lines)?;
            Ok(true)
        })
        .await?;
        lines.sort_unstable_by_key(|l| l.seq);
        lines.truncate(limit);
    }
    let scanned_to = match lines.last() {
        Some(l) if lines.len() >= limit => l.seq,
        _ => upper,
    };
    Ok(LogTail { lines, scanned_to })
}

/// The last seq of the window a tail of `app` after `after` reads: `after + TAIL_WINDOW`
/// or the last seq reserved, moved down to before a block of the app that would cross
/// it (or, when that block starts right after `after`, up to its end), so none of the
/// app's blocks is split.
async fn window_end(conn: &mut SqliteConnection, app: &str, after: u64, last: u64) -> Result<u64> {
    let upper = last.min(after.saturating_add(TAIL_WINDOW));
    if upper == last {
        // Blocks are written whole: none crosses the last seq.
        return Ok(upper);
    }
    let high = seq_to_db(upper);
    let mut next = None;
    segments::after_seq(conn, app, None, high, |seg| {
        seg.each(|v| {
            if next.is_none() && v.platform.is_some() && v.seq > high {
                next = Some((v.first_seq(), v.seq));
            }
            Ok(())
        })?;
        Ok(next.is_none())
    })
    .await?;
    let Some((start, end)) = next else {
        return Ok(upper);
    };
    let (start, end) = (
        u64::try_from(start).unwrap_or(0),
        u64::try_from(end).unwrap_or(0),
    );
    Ok(if start > upper {
        upper
    } else if start > after.saturating_add(1) {
        start - 1
    } else {
        end
    })
}
