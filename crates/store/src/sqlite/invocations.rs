//! Invocation records: insert (with their rollups), read one, query with filters and
//! cursor pagination.

use super::records::{DEFAULT_LIMIT, SharedText, insert_chunks};
use super::util::{col, corrupt, db, require_scope, ts_from_db, ts_to_db, u64_to_db};
use super::{rollups, util::version_from_db};
use arcus_core::record::{InvocationRecord, InvocationStatus, TriggerKind};
use arcus_core::stats::{Cursor, InvocationQuery, Page};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::sqlite::{Sqlite, SqliteQueryResult, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};
use std::collections::HashSet;
use std::sync::Arc;

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
///
/// `INSERT OR IGNORE` needs no statement journal (a statement that may abort half-way
/// does) and returns no rows; only when a chunk inserts fewer rows than it has (some ids
/// were stored) are the new ones read back: a statement's rows get consecutive seqs,
/// ending at the last inserted rowid.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    records: &[InvocationRecord],
) -> Result<()> {
    let mut names = SharedText::new(16);
    let mut fresh: Vec<&InvocationRecord> = Vec::with_capacity(records.len());
    for chunk in insert_chunks(records) {
        let done = insert_chunk(&mut *conn, chunk, &mut names).await?;
        let n = done.rows_affected();
        if n == chunk.len() as u64 {
            fresh.extend(chunk);
        } else if n > 0 {
            let last = done.last_insert_rowid();
            let first = last - i64::try_from(n).unwrap_or(i64::MAX) + 1;
            let ids: HashSet<String> =
                sqlx::query_scalar("SELECT id FROM invocations WHERE seq BETWEEN ? AND ?")
                    .bind(first)
                    .bind(last)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db)?
                    .into_iter()
                    .collect();
            fresh.extend(chunk.iter().filter(|r| ids.contains(&r.id)));
        }
    }
    rollups::add(conn, fresh.into_iter()).await
}

/// One multi-row `INSERT OR IGNORE` of `chunk`.
async fn insert_chunk(
    conn: &mut SqliteConnection,
    chunk: &[InvocationRecord],
    names: &mut SharedText,
) -> Result<SqliteQueryResult> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "INSERT OR IGNORE INTO invocations ({}) ",
        &COLUMNS["seq, ".len()..]
    ));
    q.push_values(chunk, |mut b, r| {
        b.push_bind(Arc::<str>::from(r.id.as_str()))
            .push_bind(names.get(&r.app))
            .push_bind(names.get(&r.function))
            .push_bind(r.version.map(i64::from))
            .push_bind(names.get(r.trigger.as_str()))
            .push_bind(names.get(r.status.as_str()))
            .push_bind(r.error_code.as_deref().map(|c| names.get(c)))
            .push_bind(r.http_status.map(i64::from))
            .push_bind(u64_to_db(r.duration_us))
            .push_bind(r.cold_start)
            .push_bind(ts_to_db(r.started_at))
            .push_bind(i64::from(r.memory_mb))
            .push_bind(u64_to_db(r.egress_bytes))
            .push_bind(r.trace_id.as_deref().map(Arc::<str>::from));
    });
    q.build().execute(&mut *conn).await.map_err(db)
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
