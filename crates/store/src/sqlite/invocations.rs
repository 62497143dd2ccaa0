//! Invocation records: insert (with their rollups), read one, query with filters and
//! cursor pagination.

use super::logs::{self, NewLine, seq_to_db};
use super::records::{DEFAULT_LIMIT, SharedText, insert_chunks};
use super::util::{col, corrupt, db, require_scope, ts_from_db, ts_to_db, u64_to_db};
use super::{rollups, util::version_from_db};
use arcus_core::record::{InvocationRecord, InvocationStatus, RecordedInvocation, TriggerKind};
use arcus_core::stats::{Cursor, InvocationQuery, Page};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::sqlite::{Sqlite, SqliteQueryResult, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};
use std::collections::HashSet;
use std::sync::Arc;

const COLUMNS: &str = "seq, id, app, function, version, trigger_kind, status, error_code, \
     http_status, duration_us, cold_start, started_at, memory_mb, egress_bytes, trace_id, \
     init_duration_us, max_memory_mb";

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
        init_duration_us: optional_u64(row, "init_duration_us")?,
        max_memory_mb: optional_u64(row, "max_memory_mb")?,
    })
}

fn optional_u64(row: &SqliteRow, name: &str) -> Result<Option<u64>> {
    let v: Option<i64> = col(row, name)?;
    v.map(|v| u64::try_from(v).map_err(|_| corrupt(name)))
        .transpose()
}

/// One invocation of a batch with its reserved record seq: the last of its block of
/// seqs (`START`, its lines, `END`, `REPORT`; just its lines without platform lines).
type Numbered<'a> = (i64, &'a RecordedInvocation);

/// Inserts a batch inside the caller's transaction: reserves each invocation's block
/// of seqs, inserts the records many rows per statement and the lines of the ones
/// actually inserted, and adds those to their rollups. A record whose id is already
/// stored is skipped with its lines (its seqs stay unused), so a retried batch neither
/// fails nor double-counts.
///
/// `INSERT OR IGNORE` needs no statement journal (a statement that may abort half-way
/// does) and returns no rows; only when a chunk inserts fewer rows than it has (some ids
/// were stored) are the inserted seqs read back.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    batch: &[RecordedInvocation],
) -> Result<()> {
    let mut next = seq_to_db(logs::last_seq(conn).await?) + 1;
    let numbered: Vec<Numbered<'_>> = batch
        .iter()
        .map(|r| {
            let platform = i64::from(r.platform_lines);
            let seq = next.saturating_add(count(r)).saturating_add(2 * platform);
            next = seq.saturating_add(1);
            (seq, r)
        })
        .collect();
    let mut names = SharedText::new(16);
    let mut fresh: Vec<Numbered<'_>> = Vec::with_capacity(batch.len());
    for chunk in insert_chunks(&numbered) {
        let done = insert_chunk(&mut *conn, chunk, &mut names).await?;
        let n = done.rows_affected();
        if n == chunk.len() as u64 {
            fresh.extend(chunk);
        } else if let (Some(first), Some(last), true) = (chunk.first(), chunk.last(), n > 0) {
            let seqs: HashSet<i64> =
                sqlx::query_scalar("SELECT seq FROM invocations WHERE seq BETWEEN ? AND ?")
                    .bind(first.0)
                    .bind(last.0)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db)?
                    .into_iter()
                    .collect();
            fresh.extend(chunk.iter().filter(|(seq, _)| seqs.contains(seq)));
        }
    }
    let lines: Vec<NewLine<'_>> = fresh.iter().flat_map(|&n| lines_of(n)).collect();
    logs::insert(conn, &lines).await?;
    if let Some((last, _)) = numbered.last() {
        logs::set_last_seq(conn, *last).await?;
    }
    rollups::add(conn, fresh.into_iter().map(|(_, r)| &r.record)).await
}

/// Number of captured lines, as stored.
fn count(r: &RecordedInvocation) -> i64 {
    i64::try_from(r.lines.len()).unwrap_or(i64::MAX)
}

/// The captured lines of a numbered invocation with their seqs.
fn lines_of((seq, r): Numbered<'_>) -> impl Iterator<Item = NewLine<'_>> {
    let first = seq - count(r) - i64::from(r.platform_lines);
    let rec = &r.record;
    (first..).zip(&r.lines).map(move |(seq, l)| NewLine {
        seq,
        invocation_id: &rec.id,
        app: &rec.app,
        function: &rec.function,
        trace_id: rec.trace_id.as_deref(),
        stream: l.stream,
        timestamp: l.timestamp,
        message: &l.message,
    })
}

/// When `END` and `REPORT` are shown: the invocation's end, never before its last line.
fn ended_at(r: &RecordedInvocation) -> i64 {
    let rec = &r.record;
    let end = ts_to_db(rec.started_at).saturating_add(u64_to_db(rec.duration_us));
    r.lines
        .last()
        .map_or(end, |l| end.max(ts_to_db(l.timestamp)))
}

/// One multi-row `INSERT OR IGNORE` of `chunk`.
async fn insert_chunk(
    conn: &mut SqliteConnection,
    chunk: &[Numbered<'_>],
    names: &mut SharedText,
) -> Result<SqliteQueryResult> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "INSERT OR IGNORE INTO invocations ({COLUMNS}, log_lines, ended_at) "
    ));
    q.push_values(chunk, |mut b, &(seq, recorded)| {
        let r = &recorded.record;
        let platform = recorded.platform_lines;
        b.push_bind(seq)
            .push_bind(Arc::<str>::from(r.id.as_str()))
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
            .push_bind(r.trace_id.as_deref().map(Arc::<str>::from))
            .push_bind(r.init_duration_us.map(u64_to_db))
            .push_bind(r.max_memory_mb.map(u64_to_db))
            .push_bind(platform.then(|| count(recorded)))
            .push_bind(platform.then(|| ended_at(recorded)));
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
