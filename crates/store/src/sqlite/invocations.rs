//! Invocation records: insert (with their rollups), read one, query with filters and
//! cursor pagination.

use super::records::{DEFAULT_LIMIT, ROWS_PER_INSERT};
use super::util::{col, corrupt, db, require_scope, ts_from_db, ts_to_db, u64_to_db};
use super::{rollups, util::version_from_db};
use arcus_core::record::{InvocationRecord, InvocationStatus, TriggerKind};
use arcus_core::stats::{Cursor, InvocationQuery, Page};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, Row, SqliteConnection};
use std::collections::HashSet;

const COLUMNS: &str = "seq, id, app, function, version, trigger_kind, status, error_code, \
     http_status, duration_us, cold_start, started_at, memory_mb, egress_bytes, trace_id";

fn from_row(row: &SqliteRow) -> Result<InvocationRecord> {
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

/// Inserts records inside the caller's transaction, many rows per statement, and adds
/// the ones actually inserted to their rollups. A record whose id is already stored is
/// skipped (and not counted again), so a retried batch neither fails nor double-counts.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    records: &[InvocationRecord],
) -> Result<()> {
    let mut inserted = HashSet::new();
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO invocations ({}) ",
            &COLUMNS["seq, ".len()..]
        ));
        q.push_values(chunk, |mut b, r| {
            b.push_bind(&r.id)
                .push_bind(&r.app)
                .push_bind(&r.function)
                .push_bind(r.version.map(i64::from))
                .push_bind(r.trigger.as_str())
                .push_bind(r.status.as_str())
                .push_bind(r.error_code.as_deref())
                .push_bind(r.http_status.map(i64::from))
                .push_bind(u64_to_db(r.duration_us))
                .push_bind(r.cold_start)
                .push_bind(ts_to_db(r.started_at))
                .push_bind(i64::from(r.memory_mb))
                .push_bind(u64_to_db(r.egress_bytes))
                .push_bind(r.trace_id.as_deref());
        });
        q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
        for row in q.build().fetch_all(&mut *conn).await.map_err(db)? {
            inserted.insert(row.try_get::<String, _>("id").map_err(db)?);
        }
    }
    let fresh = records.iter().filter(|r| inserted.contains(&r.id));
    rollups::add(conn, fresh).await
}

/// One record by invocation id; `invocation_not_found`.
pub(super) async fn get(conn: &mut SqliteConnection, id: &str) -> Result<InvocationRecord> {
    let sql = format!("SELECT {COLUMNS} FROM invocations WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvocationNotFound,
                format!("invocation {id} not found"),
            )
        })?;
    from_row(&row)
}

/// A page of an app's records matching `q`, newest first.
pub(super) async fn query(
    conn: &mut SqliteConnection,
    app: &str,
    q: &InvocationQuery,
) -> Result<Page<InvocationRecord>> {
    require_scope(conn, app, q.function.as_deref()).await?;
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
    let mut sql =
        QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM invocations WHERE app = "));
    sql.push_bind(app);
    if let Some(f) = &q.function {
        sql.push(" AND function = ").push_bind(f);
    }
    if let Some(id) = &q.id {
        sql.push(" AND id = ").push_bind(id);
    }
    if let Some(v) = q.version {
        sql.push(" AND version = ").push_bind(i64::from(v));
    }
    if let Some(s) = q.status {
        sql.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(t) = q.trigger {
        sql.push(" AND trigger_kind = ").push_bind(t.as_str());
    }
    if let Some(c) = q.cold_start {
        sql.push(" AND cold_start = ").push_bind(c);
    }
    if let Some(code) = &q.error_code {
        sql.push(" AND error_code = ").push_bind(code);
    }
    if let Some(t) = q.since {
        sql.push(" AND started_at >= ").push_bind(ts_to_db(t));
    }
    if let Some(t) = q.until {
        sql.push(" AND started_at < ").push_bind(ts_to_db(t));
    }
    if let Some(c) = q.cursor {
        sql.push(" AND (started_at, seq) < (")
            .push_bind(c.time_us)
            .push(", ")
            .push_bind(c.seq)
            .push(")");
    }
    sql.push(" ORDER BY started_at DESC, seq DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = sql.build().fetch_all(&mut *conn).await.map_err(db)?;
    let more = rows.len() > limit as usize;
    let mut items = Vec::with_capacity(rows.len().min(limit as usize));
    let mut last = None;
    for row in rows.iter().take(limit as usize) {
        items.push(from_row(row)?);
        last = Some(Cursor {
            time_us: col(row, "started_at")?,
            seq: col(row, "seq")?,
        });
    }
    Ok(Page {
        items,
        next_cursor: last.filter(|_| more).map(Cursor::encode),
    })
}
