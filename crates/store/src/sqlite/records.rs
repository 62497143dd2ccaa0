//! Invocation records, log lines and node settings.

use super::util::{col, corrupt, db, function_id, ts_from_db, ts_to_db};
use arcus_core::Result;
use arcus_core::record::{LogLine, LogStream};
use arcus_core::store::RecordQuery;
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};

/// The number of rows a list returns when the query's `limit` is 0.
pub const DEFAULT_LIMIT: u32 = 100;

const LOG_COLUMNS: &str = "invocation_id, app, function, stream, ts, message, trace_id";

fn limit(query: &RecordQuery) -> i64 {
    i64::from(if query.limit == 0 {
        DEFAULT_LIMIT
    } else {
        query.limit
    })
}

fn log_from_row(row: &SqliteRow) -> Result<LogLine> {
    let stream: String = col(row, "stream")?;
    Ok(LogLine {
        invocation_id: col(row, "invocation_id")?,
        app: col(row, "app")?,
        function: col(row, "function")?,
        stream: LogStream::parse(&stream).ok_or_else(|| corrupt("stream"))?,
        timestamp: ts_from_db(col(row, "ts")?, "ts")?,
        message: col(row, "message")?,
        trace_id: col(row, "trace_id")?,
    })
}

/// Rows per multi-row `INSERT` (SQLite allows 32,766 bound values per statement).
pub(super) const ROWS_PER_INSERT: usize = 256;

/// Inserts log lines inside the caller's transaction, many rows per statement; they keep their order (the row id
/// breaks timestamp ties).
pub(super) async fn insert_logs(conn: &mut SqliteConnection, lines: &[LogLine]) -> Result<()> {
    for chunk in lines.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(format!("INSERT INTO logs ({LOG_COLUMNS}) "));
        q.push_values(chunk, |mut b, l| {
            b.push_bind(&l.invocation_id)
                .push_bind(&l.app)
                .push_bind(&l.function)
                .push_bind(l.stream.as_str())
                .push_bind(ts_to_db(l.timestamp))
                .push_bind(&l.message)
                .push_bind(l.trace_id.as_deref());
        });
        q.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

pub(super) async fn list_logs(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    query: &RecordQuery,
) -> Result<Vec<LogLine>> {
    function_id(conn, app, function).await?;
    let rows = match &query.invocation_id {
        Some(id) => {
            let sql = format!(
                "SELECT {LOG_COLUMNS} FROM logs WHERE invocation_id = ? AND app = ? \
                 AND function = ? ORDER BY ts DESC, id DESC LIMIT ?"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(app)
                .bind(function)
                .bind(limit(query))
                .fetch_all(&mut *conn)
                .await
        }
        None => {
            let sql = format!(
                "SELECT {LOG_COLUMNS} FROM logs WHERE app = ? AND function = ? \
                 ORDER BY ts DESC, id DESC LIMIT ?"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(app)
                .bind(function)
                .bind(limit(query))
                .fetch_all(&mut *conn)
                .await
        }
    }
    .map_err(db)?;
    rows.iter().map(log_from_row).collect()
}

pub(super) async fn get_setting(conn: &mut SqliteConnection, key: &str) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)
}

pub(super) async fn put_setting(conn: &mut SqliteConnection, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}
