//! Log lines: insert (keeping the per-function byte counts), newest-first queries with
//! filters and cursor pages, and the write-order reads live followers make.
//!
//! A line's seq is its `logs.id` (AUTOINCREMENT since migration 6: never reused). SQLite
//! has one writer at a time, so seqs become visible in increasing order and a reader
//! that has seen every line up to seq N will never see a new line at or below N.

use super::records::{DEFAULT_LIMIT, SharedText, insert_chunks};
use super::util::{col, corrupt, db, require_scope, ts_from_db, ts_to_db, u64_to_db};
use arcus_core::Result;
use arcus_core::record::{LogLine, LogStream};
use arcus_core::stats::{Cursor, Page};
use arcus_core::store::{LogQuery, LogTail};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};
use std::collections::HashMap;
use std::sync::Arc;

const COLUMNS: &str = "id, invocation_id, app, function, stream, ts, message, trace_id";

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

/// Adds `delta` message bytes to the functions' counts (negative after deletes).
pub(super) async fn add_usage(
    conn: &mut SqliteConnection,
    app: &str,
    delta: &HashMap<String, i64>,
) -> Result<()> {
    for (function, &bytes) in delta {
        add_function_usage(conn, app, function, bytes).await?;
    }
    Ok(())
}

/// Adds `bytes` message bytes to one function's count (negative after deletes).
async fn add_function_usage(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    bytes: i64,
) -> Result<()> {
    let sql = if bytes >= 0 {
        "INSERT INTO log_usage (app, function, bytes) VALUES (?1, ?2, ?3) \
         ON CONFLICT (app, function) DO UPDATE SET bytes = bytes + excluded.bytes"
    } else {
        "UPDATE log_usage SET bytes = MAX(0, bytes + ?3) WHERE app = ?1 AND function = ?2"
    };
    sqlx::query(sql)
        .bind(app)
        .bind(function)
        .bind(bytes)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Inserts log lines inside the caller's transaction, many rows per statement (they
/// keep their order: seqs follow the slice), and adds their bytes to `log_usage`.
pub(super) async fn insert(conn: &mut SqliteConnection, lines: &[LogLine]) -> Result<()> {
    let mut names = SharedText::new(16);
    // An invocation's lines are adjacent: its id and trace id are copied once.
    let mut ids = SharedText::new(2);
    for chunk in insert_chunks(lines) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "INSERT OR FAIL INTO logs ({}) ",
            &COLUMNS["id, ".len()..]
        ));
        q.push_values(chunk, |mut b, l| {
            b.push_bind(ids.get(&l.invocation_id))
                .push_bind(names.get(&l.app))
                .push_bind(names.get(&l.function))
                .push_bind(names.get(l.stream.as_str()))
                .push_bind(ts_to_db(l.timestamp))
                .push_bind(Arc::<str>::from(l.message.as_str()))
                .push_bind(l.trace_id.as_deref().map(|t| ids.get(t)));
        });
        q.build().execute(&mut *conn).await.map_err(db)?;
    }
    // Message bytes per (app, function); a batch names few functions.
    let mut usage: Vec<(&str, &str, i64)> = Vec::new();
    for l in lines {
        let bytes = i64::try_from(l.message.len()).unwrap_or(i64::MAX);
        match usage
            .iter_mut()
            .find(|(a, f, _)| *a == l.app && *f == l.function)
        {
            Some((_, _, n)) => *n = n.saturating_add(bytes),
            None => usage.push((&l.app, &l.function, bytes)),
        }
    }
    for (app, function, bytes) in usage {
        add_function_usage(conn, app, function, bytes).await?;
    }
    Ok(())
}

/// Appends the filters of `q` other than the cursor. `seek` disables the app and
/// function indexes (`+app`), so a seq-range read scans the range (or an invocation
/// read its index), not the whole function.
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

/// A page of an app's lines matching `q`, newest first (capture time, then seq).
pub(super) async fn query(
    conn: &mut SqliteConnection,
    app: &str,
    q: &LogQuery,
) -> Result<Page<LogLine>> {
    require_scope(conn, app, q.function.as_deref()).await?;
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
    let mut sql = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM logs WHERE"));
    // One invocation's lines are few: look them up by invocation, not by scanning the
    // app's or function's index.
    push_filters(&mut sql, app, q, q.invocation_id.is_some());
    if let Some(c) = q.cursor {
        sql.push(" AND (ts, id) < (").push_bind(c.time_us);
        sql.push(", ").push_bind(c.seq).push(")");
    }
    sql.push(" ORDER BY ts DESC, id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = sql.build().fetch_all(&mut *conn).await.map_err(db)?;
    let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
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

/// The highest seq ever assigned (deleted lines included).
pub(super) async fn last_seq(conn: &mut SqliteConnection) -> Result<u64> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'logs'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

/// Lines after seq `after` matching `q`, in seq order, looking at most at
/// [`TAIL_WINDOW`] seqs.
pub(super) async fn tail(
    conn: &mut SqliteConnection,
    app: &str,
    q: &LogQuery,
    after: u64,
    limit: u32,
) -> Result<LogTail> {
    require_scope(conn, app, q.function.as_deref()).await?;
    let upper = last_seq(conn).await?.min(after.saturating_add(TAIL_WINDOW));
    if upper <= after {
        return Ok(LogTail {
            lines: Vec::new(),
            scanned_to: after,
        });
    }
    let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
    let mut sql = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM logs WHERE id > "));
    sql.push_bind(u64_to_db(after))
        .push(" AND id <= ")
        .push_bind(u64_to_db(upper))
        .push(" AND");
    push_filters(&mut sql, app, q, true);
    sql.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
    let rows = sql.build().fetch_all(&mut *conn).await.map_err(db)?;
    let lines = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let scanned_to = match lines.last() {
        Some(l) if lines.len() >= limit as usize => l.seq,
        _ => upper,
    };
    Ok(LogTail { lines, scanned_to })
}

/// Bytes of an app's stored messages.
pub(super) async fn bytes(conn: &mut SqliteConnection, app: &str) -> Result<u64> {
    let sum: Option<i64> = sqlx::query_scalar("SELECT SUM(bytes) FROM log_usage WHERE app = ?")
        .bind(app)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    Ok(sum.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}
