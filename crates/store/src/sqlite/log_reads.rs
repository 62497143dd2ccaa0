//! Log reads: newest-first queries with filters and cursor pages, and the write-order
//! reads live followers make. Both merge the stored lines (`logs`) with the `START`,
//! `END` and `REPORT` lines derived from records (ADR 0019): each source is read in
//! its own index order with its own limit, and one compound `SELECT` merges them.
//!
//! A recorded invocation's seqs form one block: `START` (record seq − lines − 2), its
//! stored lines, `END` (record seq − 1), `REPORT` (the record's seq).

use super::logs::{last_seq, seq_to_db};
use super::records::DEFAULT_LIMIT;
use super::util::{col, corrupt, db, require_scope, ts_from_db, ts_to_db, u64_to_db};
use arcus_core::Result;
use arcus_core::record::{LogLine, LogStream};
use arcus_core::stats::{Cursor, Page};
use arcus_core::store::{LogQuery, LogTail};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};

/// Seqs one [`tail`] call looks at, at most: bounds its cost whatever the filters.
pub(super) const TAIL_WINDOW: u64 = 20_000;

/// A duration column (µs) as Lambda prints milliseconds: two decimals, half up.
macro_rules! ms {
    ($us:literal) => {
        concat!(
            "printf('%d.%02d', (",
            $us,
            " + 5) / 1000, (",
            $us,
            " + 5) / 10 % 100)"
        )
    };
}

/// `REPORT`'s text: Lambda's fields, tab-separated.
const REPORT: &str = concat!(
    "'REPORT RequestId: ' || invocations.id || char(9) || 'Duration: ' || ",
    ms!("duration_us"),
    " || ' ms' || char(9) || 'Billed Duration: ' || MAX(1, (duration_us + 999) / 1000) \
     || ' ms' || char(9) || 'Memory Size: ' || memory_mb || ' MB' \
     || CASE WHEN max_memory_mb IS NULL THEN '' \
        ELSE char(9) || 'Max Memory Used: ' || max_memory_mb || ' MB' END \
     || CASE WHEN init_duration_us IS NULL THEN '' \
        ELSE char(9) || 'Init Duration: ' || ",
    ms!("init_duration_us"),
    " || ' ms' END"
);

/// Where a kind of line is read from: the `logs` table, or one of the platform lines
/// of every record that has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Stored,
    Start,
    End,
    Report,
}

impl Source {
    const ALL: [Self; 4] = [Self::Stored, Self::Start, Self::End, Self::Report];

    /// SQL of the line's seq.
    fn seq(self) -> &'static str {
        match self {
            Self::Stored => "id",
            Self::Start => "seq - log_lines - 2",
            Self::End => "seq - 1",
            Self::Report => "seq",
        }
    }

    /// SQL of the line's capture time.
    fn ts(self) -> &'static str {
        match self {
            Self::Stored => "ts",
            Self::Start => "started_at",
            Self::End | Self::Report => "ended_at",
        }
    }

    /// SQL of the line's text.
    fn message(self) -> &'static str {
        match self {
            Self::Stored => "message",
            Self::Start => {
                "'START RequestId: ' || invocations.id || ' Version: ' \
                 || COALESCE(version, '$LATEST')"
            }
            Self::End => "'END RequestId: ' || invocations.id",
            Self::Report => REPORT,
        }
    }

    /// SQL of the invocation id (`invocations.id`: in a derived source `id` is the
    /// line's seq).
    fn invocation(self) -> &'static str {
        match self {
            Self::Stored => "invocation_id",
            _ => "invocations.id",
        }
    }

    /// Whether the source has lines of `stream`.
    fn has(self, stream: Option<LogStream>) -> bool {
        self == Self::Stored || stream.is_none_or(|s| s == LogStream::Platform)
    }

    /// `SELECT <the line's columns> FROM <table> WHERE`.
    fn select(self) -> String {
        let (stream, from) = match self {
            Self::Stored => ("stream", "logs WHERE"),
            _ => ("'platform'", "invocations WHERE log_lines IS NOT NULL AND"),
        };
        format!(
            "SELECT {} AS id, {} AS invocation_id, app, function, {stream} AS stream, \
             {} AS ts, {} AS message, trace_id FROM {from}",
            self.seq(),
            self.invocation(),
            self.ts(),
            self.message(),
        )
    }

    /// `ORDER BY` of newest first, in the order of the source's index (a derived
    /// source's seqs grow with the record's).
    fn newest_first(self) -> &'static str {
        match self {
            Self::Stored => " ORDER BY ts DESC, id DESC",
            Self::Start => " ORDER BY started_at DESC, seq DESC",
            Self::End | Self::Report => " ORDER BY ended_at DESC, seq DESC",
        }
    }

    /// `ORDER BY` of write order.
    fn oldest_first(self) -> &'static str {
        match self {
            Self::Stored => " ORDER BY id",
            _ => " ORDER BY seq",
        }
    }
}

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

/// Appends the filters of `q` other than the cursor. `seek` disables the app and
/// function indexes (`+app`), so a seq-range read scans the range (or an invocation
/// read its index), not the whole function.
fn push_filters(sql: &mut QueryBuilder<Sqlite>, src: Source, app: &str, q: &LogQuery, seek: bool) {
    let plus = if seek { "+" } else { "" };
    sql.push(format!(" {plus}app = "))
        .push_bind(app.to_string());
    if let Some(f) = &q.function {
        sql.push(format!(" AND {plus}function = "))
            .push_bind(f.clone());
    }
    if let Some(id) = &q.invocation_id {
        sql.push(format!(" AND {} = ", src.invocation()))
            .push_bind(id.clone());
    }
    if let (Some(s), Source::Stored) = (q.stream, src) {
        sql.push(" AND stream = ").push_bind(s.as_str());
    }
    if let Some(text) = &q.text {
        // instr: a case-sensitive substring test, with no wildcards to escape.
        sql.push(format!(" AND instr({}, ", src.message()))
            .push_bind(text.clone());
        sql.push(") > 0");
    }
    let ts = src.ts();
    if let Some(t) = q.since {
        sql.push(format!(" AND {ts} >= ")).push_bind(ts_to_db(t));
    }
    if let Some(t) = q.until {
        sql.push(format!(" AND {ts} < ")).push_bind(ts_to_db(t));
    }
}

/// Reads the lines of every source `q` can match, each source's part built by `arm`
/// (filters, order, limit), merged in `order` up to `limit` lines.
async fn merged(
    conn: &mut SqliteConnection,
    q: &LogQuery,
    order: &str,
    limit: i64,
    mut arm: impl FnMut(&mut QueryBuilder<Sqlite>, Source),
) -> Result<Vec<LogLine>> {
    let mut sql = QueryBuilder::<Sqlite>::new("");
    for (i, src) in Source::ALL
        .into_iter()
        .filter(|s| s.has(q.stream))
        .enumerate()
    {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push("SELECT * FROM (").push(src.select());
        arm(&mut sql, src);
        sql.push(" LIMIT ").push_bind(limit).push(")");
    }
    sql.push(order).push(" LIMIT ").push_bind(limit);
    let rows = sql.build().fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(from_row).collect()
}

/// A page of an app's lines matching `q`, newest first (capture time, then seq).
pub(super) async fn query(
    conn: &mut SqliteConnection,
    app: &str,
    q: &LogQuery,
) -> Result<Page<LogLine>> {
    require_scope(conn, app, q.function.as_deref()).await?;
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
    let order = " ORDER BY ts DESC, id DESC";
    let mut items = merged(conn, q, order, i64::from(limit) + 1, |sql, src| {
        // One invocation's lines are few: look them up by invocation, not by scanning
        // the app's or function's index.
        push_filters(sql, src, app, q, q.invocation_id.is_some());
        if let Some(c) = q.cursor {
            let (ts, seq) = (src.ts(), src.seq());
            sql.push(format!(" AND {ts} <= ")).push_bind(c.time_us);
            sql.push(format!(" AND ({ts}, {seq}) < ("))
                .push_bind(c.time_us)
                .push(", ")
                .push_bind(c.seq)
                .push(")");
        }
        sql.push(src.newest_first());
    })
    .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
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
    let upper = window_end(conn, after, last).await?;
    if upper <= after {
        return Ok(LogTail {
            lines: Vec::new(),
            scanned_to: after,
        });
    }
    let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
    let (low, high) = (seq_to_db(after), seq_to_db(upper));
    let lines = merged(conn, q, " ORDER BY id", i64::from(limit), |sql, src| {
        // Blocks do not cross `upper`, so a derived line is in the window when its
        // record is and the line is after `after`.
        if src != Source::Stored {
            sql.push(" seq > ").push_bind(low);
            sql.push(" AND seq <= ").push_bind(high).push(" AND");
        }
        sql.push(format!(" {} > ", src.seq())).push_bind(low);
        sql.push(format!(" AND {} <= ", src.seq()))
            .push_bind(high)
            .push(" AND");
        push_filters(sql, src, app, q, true);
        sql.push(src.oldest_first());
    })
    .await?;
    let scanned_to = match lines.last() {
        Some(l) if lines.len() >= limit as usize => l.seq,
        _ => upper,
    };
    Ok(LogTail { lines, scanned_to })
}

/// The last seq of the window a tail after `after` reads: `after + TAIL_WINDOW` or the
/// last seq reserved, moved down to before a block that would cross it (or, when that
/// block starts right after `after`, up to its end), so no block is split.
async fn window_end(conn: &mut SqliteConnection, after: u64, last: u64) -> Result<u64> {
    let upper = last.min(after.saturating_add(TAIL_WINDOW));
    if upper == last {
        // Blocks are written whole: none crosses the last seq.
        return Ok(upper);
    }
    let next: Option<(i64, i64)> = sqlx::query_as(
        "SELECT seq - log_lines - 2, seq FROM invocations \
         WHERE seq > ? AND log_lines IS NOT NULL ORDER BY seq LIMIT 1",
    )
    .bind(seq_to_db(upper))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
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
