//! Log lines: inserts (keeping the per-function byte counts), the seq counter shared
//! with records, and byte counts. Reads (stored lines merged with the platform lines
//! derived from records) are in `log_reads`.
//!
//! A line's seq is its `logs.id`. Since migration 12 records and lines take their seqs
//! from one counter (the `logs` row of `sqlite_sequence`, never reused), reserved by the
//! inserting transaction. SQLite has one writer at a time, so seqs become visible in
//! increasing order and a reader that has seen every line up to seq N will never see a
//! new line at or below N.

use super::records::{SharedText, insert_chunks};
use super::util::{db, ts_to_db};
use arcus_core::Result;
use arcus_core::model::Timestamp;
use arcus_core::record::{LogLine, LogStream};
use sqlx::sqlite::Sqlite;
use sqlx::{QueryBuilder, SqliteConnection};
use std::collections::HashMap;
use std::sync::Arc;

/// One line to insert, with the seq reserved for it.
pub(super) struct NewLine<'a> {
    pub seq: i64,
    pub invocation_id: &'a str,
    pub app: &'a str,
    pub function: &'a str,
    pub trace_id: Option<&'a str>,
    pub stream: LogStream,
    pub timestamp: Timestamp,
    pub message: &'a str,
}

impl<'a> From<(i64, &'a LogLine)> for NewLine<'a> {
    fn from((seq, l): (i64, &'a LogLine)) -> Self {
        Self {
            seq,
            invocation_id: &l.invocation_id,
            app: &l.app,
            function: &l.function,
            trace_id: l.trace_id.as_deref(),
            stream: l.stream,
            timestamp: l.timestamp,
            message: &l.message,
        }
    }
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

/// Inserts lines with their reserved seqs inside the caller's transaction, many rows
/// per statement, and adds their bytes to `log_usage`.
pub(super) async fn insert(conn: &mut SqliteConnection, lines: &[NewLine<'_>]) -> Result<()> {
    let mut names = SharedText::new(16);
    // An invocation's lines are adjacent: its id and trace id are copied once.
    let mut ids = SharedText::new(2);
    for chunk in insert_chunks(lines) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR FAIL INTO logs \
             (id, invocation_id, app, function, stream, ts, message, trace_id) ",
        );
        q.push_values(chunk, |mut b, l| {
            b.push_bind(l.seq)
                .push_bind(ids.get(l.invocation_id))
                .push_bind(names.get(l.app))
                .push_bind(names.get(l.function))
                .push_bind(names.get(l.stream.as_str()))
                .push_bind(ts_to_db(l.timestamp))
                .push_bind(Arc::<str>::from(l.message))
                .push_bind(l.trace_id.map(|t| ids.get(t)));
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
            None => usage.push((l.app, l.function, bytes)),
        }
    }
    for (app, function, bytes) in usage {
        add_function_usage(conn, app, function, bytes).await?;
    }
    Ok(())
}

/// Inserts lines of no recorded invocation inside the caller's transaction: reserves
/// a seq for each, in slice order.
pub(super) async fn insert_loose(conn: &mut SqliteConnection, lines: &[LogLine]) -> Result<()> {
    let first = seq_to_db(last_seq(conn).await?) + 1;
    let rows: Vec<NewLine<'_>> = (first..).zip(lines).map(NewLine::from).collect();
    insert(conn, &rows).await?;
    match rows.last() {
        Some(l) => set_last_seq(conn, l.seq).await,
        None => Ok(()),
    }
}

/// A seq as stored.
pub(super) fn seq_to_db(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// The highest seq ever reserved (deleted lines and records included).
pub(super) async fn last_seq(conn: &mut SqliteConnection) -> Result<u64> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'logs'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

/// Moves the shared counter to `seq`, the last one the caller's transaction reserved.
pub(super) async fn set_last_seq(conn: &mut SqliteConnection, seq: i64) -> Result<()> {
    sqlx::query("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'logs'")
        .bind(seq)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
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
