//! Invocation records, log lines and node settings.

use super::util::{col, corrupt, db, function_id, ts_from_db, ts_to_db, version_from_db};
use arcus_core::Result;
use arcus_core::record::{InvocationRecord, InvocationStatus, LogLine, LogStream, TriggerKind};
use arcus_core::store::RecordQuery;
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};

/// The number of rows a list returns when the query's `limit` is 0.
pub const DEFAULT_LIMIT: u32 = 100;

const INVOCATION_COLUMNS: &str = "id, app, function, version, trigger_kind, status, error_code, \
     http_status, duration_us, cold_start, started_at, memory_mb, egress_bytes, trace_id";

const LOG_COLUMNS: &str = "invocation_id, app, function, stream, ts, message, trace_id";

fn limit(query: &RecordQuery) -> i64 {
    i64::from(if query.limit == 0 {
        DEFAULT_LIMIT
    } else {
        query.limit
    })
}

fn invocation_from_row(row: &SqliteRow) -> Result<InvocationRecord> {
    let trigger: String = col(row, "trigger_kind")?;
    let status: String = col(row, "status")?;
    let version: Option<i64> = col(row, "version")?;
    let http_status: Option<i64> = col(row, "http_status")?;
    let duration_us: i64 = col(row, "duration_us")?;
    let memory_mb: i64 = col(row, "memory_mb")?;
    let egress_bytes: i64 = col(row, "egress_bytes")?;
    Ok(InvocationRecord {
        id: col(row, "id")?,
        app: col(row, "app")?,
        function: col(row, "function")?,
        version: version.map(|v| version_from_db(v, "version")).transpose()?,
        trigger: TriggerKind::parse(&trigger).ok_or_else(|| corrupt("trigger_kind"))?,
        status: InvocationStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        error_code: col(row, "error_code")?,
        http_status: http_status
            .map(|s| u16::try_from(s).map_err(|_| corrupt("http_status")))
            .transpose()?,
        duration_us: u64::try_from(duration_us).map_err(|_| corrupt("duration_us"))?,
        cold_start: col(row, "cold_start")?,
        started_at: ts_from_db(col(row, "started_at")?, "started_at")?,
        memory_mb: u32::try_from(memory_mb).map_err(|_| corrupt("memory_mb"))?,
        egress_bytes: u64::try_from(egress_bytes).map_err(|_| corrupt("egress_bytes"))?,
        trace_id: col(row, "trace_id")?,
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
const ROWS_PER_INSERT: usize = 256;

/// Inserts records inside the caller's transaction, many rows per statement so a batch
/// costs a few round trips to SQLite's worker thread rather than one per row. A record
/// whose id is already stored is skipped, so a retried batch does not fail.
pub(super) async fn insert_invocations(
    conn: &mut SqliteConnection,
    records: &[InvocationRecord],
) -> Result<()> {
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("INSERT INTO invocations ({INVOCATION_COLUMNS}) "));
        q.push_values(chunk, |mut b, r| {
            b.push_bind(&r.id)
                .push_bind(&r.app)
                .push_bind(&r.function)
                .push_bind(r.version.map(i64::from))
                .push_bind(r.trigger.as_str())
                .push_bind(r.status.as_str())
                .push_bind(r.error_code.as_deref())
                .push_bind(r.http_status.map(i64::from))
                .push_bind(i64::try_from(r.duration_us).unwrap_or(i64::MAX))
                .push_bind(r.cold_start)
                .push_bind(ts_to_db(r.started_at))
                .push_bind(i64::from(r.memory_mb))
                .push_bind(i64::try_from(r.egress_bytes).unwrap_or(i64::MAX))
                .push_bind(r.trace_id.as_deref());
        });
        q.push(" ON CONFLICT (id) DO NOTHING");
        q.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

/// Inserts log lines like [`insert_invocations`]; they keep their order (the row id
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

/// One record by invocation id.
pub(super) async fn get_invocation(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<InvocationRecord> {
    let sql = format!("SELECT {INVOCATION_COLUMNS} FROM invocations WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            arcus_core::Error::new(
                arcus_core::ErrorCode::InvocationNotFound,
                format!("invocation {id} not found"),
            )
        })?;
    invocation_from_row(&row)
}

pub(super) async fn list_invocations(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    query: &RecordQuery,
) -> Result<Vec<InvocationRecord>> {
    function_id(conn, app, function).await?;
    let rows = match &query.invocation_id {
        Some(id) => {
            let sql = format!(
                "SELECT {INVOCATION_COLUMNS} FROM invocations \
                 WHERE app = ? AND function = ? AND id = ? LIMIT ?"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(app)
                .bind(function)
                .bind(id)
                .bind(limit(query))
                .fetch_all(&mut *conn)
                .await
        }
        None => {
            let sql = format!(
                "SELECT {INVOCATION_COLUMNS} FROM invocations WHERE app = ? AND function = ? \
                 ORDER BY started_at DESC, seq DESC LIMIT ?"
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
    rows.iter().map(invocation_from_row).collect()
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
