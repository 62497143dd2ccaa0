//! The async invocation queue: enqueue (with idempotency keys), claim with a lease,
//! finish attempts (with follow-up events in the same transaction), dead letters,
//! redrive and cancellation.

use super::util::{col, corrupt, db, function_id, ts_from_db, ts_to_db};
use arcus_core::events::{
    AttemptResult, Event, EventStatus, IDEMPOTENCY_WINDOW_S, NewEvent, PayloadKind, QueueDepth,
};
use arcus_core::model::Timestamp;
use arcus_core::record::TriggerKind;
use arcus_core::store::{DueFunction, EventQuery};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};
use std::collections::HashMap;
use time::Duration;

const COLUMNS: &str = "id, app, function, qualifier, trigger_kind, payload_kind, payload, \
     idempotency_key, status, attempts, due_at, result, error_code, created_at, updated_at, \
     traceparent";

/// Rows per multi-row `INSERT`.
const ROWS_PER_INSERT: usize = 128;

/// Statuses from which an event may (still) run.
const PENDING: &str = "('queued', 'failed', 'running')";

fn payload_kind_str(k: PayloadKind) -> &'static str {
    match k {
        PayloadKind::Json => "json",
        PayloadKind::Http => "http",
        PayloadKind::Delivery => "delivery",
    }
}

fn payload_kind(s: &str) -> Result<PayloadKind> {
    match s {
        "json" => Ok(PayloadKind::Json),
        "http" => Ok(PayloadKind::Http),
        "delivery" => Ok(PayloadKind::Delivery),
        _ => Err(corrupt("payload_kind")),
    }
}

fn event_from_row(row: &SqliteRow) -> Result<Event> {
    let trigger: String = col(row, "trigger_kind")?;
    let kind: String = col(row, "payload_kind")?;
    let status: String = col(row, "status")?;
    let attempts: i64 = col(row, "attempts")?;
    let result: Option<String> = col(row, "result")?;
    Ok(Event {
        new: NewEvent {
            id: col(row, "id")?,
            app: col(row, "app")?,
            function: col(row, "function")?,
            qualifier: col(row, "qualifier")?,
            trigger: TriggerKind::parse(&trigger).ok_or_else(|| corrupt("trigger_kind"))?,
            kind: payload_kind(&kind)?,
            payload: col(row, "payload")?,
            idempotency_key: col(row, "idempotency_key")?,
            now: ts_from_db(col(row, "created_at")?, "created_at")?,
            traceparent: col(row, "traceparent")?,
        },
        status: EventStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("attempts"))?,
        due_at: ts_from_db(col(row, "due_at")?, "due_at")?,
        updated_at: ts_from_db(col(row, "updated_at")?, "updated_at")?,
        result: result
            .map(|r| serde_json::from_str(&r).map_err(|_| corrupt("result")))
            .transpose()?,
        error_code: col(row, "error_code")?,
    })
}

/// Stores events; returns, per event, the id it is known by (an earlier event's id when
/// its idempotency key was used on the same function within the window).
pub(super) async fn enqueue(
    conn: &mut SqliteConnection,
    events: &[NewEvent],
) -> Result<Vec<Result<String>>> {
    let mut ids = Vec::with_capacity(events.len());
    let mut fn_ids: HashMap<(&str, &str), Option<String>> = HashMap::new();
    let mut seen_keys: HashMap<(String, &str), String> = HashMap::new();
    let mut rows: Vec<(&NewEvent, String)> = Vec::with_capacity(events.len());
    for e in events {
        let key = (e.app.as_str(), e.function.as_str());
        let fid = match fn_ids.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.get().clone(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let id = match function_id(conn, &e.app, &e.function).await {
                    Ok(id) => Some(id),
                    Err(err) if err.code == ErrorCode::Internal => return Err(err),
                    Err(_) => None,
                };
                v.insert(id).clone()
            }
        };
        let Some(fid) = fid else {
            ids.push(Err(Error::new(
                ErrorCode::FunctionNotFound,
                format!("function {}/{} does not exist", e.app, e.function),
            )));
            continue;
        };
        if let Some(k) = e.idempotency_key.as_deref() {
            if let Some(first) = seen_keys.get(&(fid.clone(), k)) {
                ids.push(Ok(first.clone()));
                continue;
            }
            if let Some(first) = find_by_key(conn, &fid, k, e.now).await? {
                ids.push(Ok(first));
                continue;
            }
            seen_keys.insert((fid.clone(), k), e.id.clone());
        }
        ids.push(Ok(e.id.clone()));
        rows.push((e, fid));
    }
    insert_rows(conn, &rows).await?;
    Ok(ids)
}

async fn find_by_key(
    conn: &mut SqliteConnection,
    function_id: &str,
    key: &str,
    now: Timestamp,
) -> Result<Option<String>> {
    let since = ts_to_db(now - Duration::seconds(IDEMPOTENCY_WINDOW_S));
    sqlx::query_scalar(
        "SELECT id FROM events WHERE function_id = ? AND idempotency_key = ? AND created_at > ? \
         ORDER BY seq LIMIT 1",
    )
    .bind(function_id)
    .bind(key)
    .bind(since)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)
}

async fn insert_rows(conn: &mut SqliteConnection, rows: &[(&NewEvent, String)]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, function_id, app, function, qualifier, trigger_kind, \
             payload_kind, payload, idempotency_key, status, attempts, due_at, created_at, \
             updated_at, traceparent) ",
        );
        q.push_values(chunk, |mut b, (e, fid)| {
            let now = ts_to_db(e.now);
            b.push_bind(&e.id)
                .push_bind(fid)
                .push_bind(&e.app)
                .push_bind(&e.function)
                .push_bind(&e.qualifier)
                .push_bind(e.trigger.as_str())
                .push_bind(payload_kind_str(e.kind))
                .push_bind(&e.payload)
                .push_bind(&e.idempotency_key)
                .push_bind("queued")
                .push_bind(0i64)
                .push_bind(now)
                .push_bind(now)
                .push_bind(now)
                .push_bind(&e.traceparent);
        });
        q.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

/// Functions with an event that may start now, and the earliest later due time.
pub(super) async fn due(
    conn: &mut SqliteConnection,
    now: Timestamp,
) -> Result<(Vec<DueFunction>, Option<Timestamp>)> {
    let now_db = ts_to_db(now);
    let rows: Vec<(String, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT function_id, app, function FROM events \
         WHERE status IN {PENDING} AND due_at <= ?"
    )))
    .bind(now_db)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let next: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT MIN(due_at) FROM events WHERE status IN {PENDING} AND due_at > ?"
    )))
    .bind(now_db)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let due = rows
        .into_iter()
        .map(|(function_id, app, function)| DueFunction {
            function_id,
            app,
            function,
        })
        .collect();
    Ok((due, next.map(|n| ts_from_db(n, "due_at")).transpose()?))
}

/// Leases up to `limit` due events of one function to `owner` until `lease_until`,
/// counting an attempt for each. With `ordered`, only the function's oldest unfinished
/// event, and only when no attempt of it is running.
pub(super) async fn claim(
    conn: &mut SqliteConnection,
    function_id: &str,
    limit: u32,
    ordered: bool,
    owner: &str,
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<Vec<Event>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let now_db = ts_to_db(now);
    let pick = if ordered {
        // The head of the function's FIFO: claimable only if it is due.
        format!(
            "SELECT seq FROM (SELECT seq, due_at FROM events WHERE function_id = ?1 \
             AND status IN {PENDING} ORDER BY seq LIMIT MIN(?3, 1)) WHERE due_at <= ?2"
        )
    } else {
        format!(
            "SELECT seq FROM events WHERE function_id = ?1 AND status IN {PENDING} \
             AND due_at <= ?2 ORDER BY seq LIMIT ?3"
        )
    };
    let sql = format!(
        "UPDATE events SET status = 'running', attempts = attempts + 1, due_at = ?4, \
         lease_owner = ?5, updated_at = ?2 WHERE seq IN ({pick}) RETURNING {COLUMNS}, seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(function_id)
        .bind(now_db)
        .bind(i64::from(limit))
        .bind(ts_to_db(lease_until))
        .bind(owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let mut events: Vec<(i64, Event)> = rows
        .iter()
        .map(|r| Ok((col::<i64>(r, "seq")?, event_from_row(r)?)))
        .collect::<Result<_>>()?;
    events.sort_by_key(|(seq, _)| *seq);
    Ok(events.into_iter().map(|(_, e)| e).collect())
}

/// Applies attempt results; a result whose attempt is no longer the running one (its
/// lease expired and another worker took the event, or it was cancelled) is ignored,
/// and so are its follow-ups.
pub(super) async fn finish(conn: &mut SqliteConnection, results: &[AttemptResult]) -> Result<()> {
    for r in results {
        let result = r
            .result
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|_| Error::internal("cannot serialise an event result"))?;
        let due = r.retry_at.unwrap_or(r.now);
        let done = sqlx::query(
            "UPDATE events SET status = ?, due_at = ?, result = ?, error_code = ?, \
             lease_owner = NULL, updated_at = ? WHERE id = ? AND attempts = ? AND status = 'running'",
        )
        .bind(r.status.as_str())
        .bind(ts_to_db(due))
        .bind(result)
        .bind(&r.error_code)
        .bind(ts_to_db(r.now))
        .bind(&r.id)
        .bind(i64::from(r.attempt))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 && !r.follow_ups.is_empty() {
            for outcome in enqueue(conn, &r.follow_ups).await? {
                if let Err(e) = outcome {
                    tracing::warn!("dropping a follow-up event: {e}");
                }
            }
        }
    }
    Ok(())
}

/// One event by id.
pub(super) async fn get(conn: &mut SqliteConnection, id: &str) -> Result<Event> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE id = ?"
    )))
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
    event_from_row(&row)
}

/// A function's events, newest first, optionally of one status.
pub(super) async fn list(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    query: &EventQuery,
) -> Result<Vec<Event>> {
    let fid = function_id(conn, app, function).await?;
    let limit = i64::from(query.limit.max(1));
    let rows = match query.status {
        Some(s) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events WHERE function_id = ? AND status = ? \
             ORDER BY seq DESC LIMIT ?"
        )))
        .bind(&fid)
        .bind(s.as_str())
        .bind(limit),
        None => sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events WHERE function_id = ? ORDER BY seq DESC LIMIT ?"
        )))
        .bind(&fid)
        .bind(limit),
    }
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.iter().map(event_from_row).collect()
}

/// Queues dead-lettered events of a function again (one, or all): attempts and age
/// start over. Returns how many were redriven; `not_found` for an unknown id.
pub(super) async fn redrive(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    id: Option<&str>,
    now: Timestamp,
) -> Result<u64> {
    let fid = function_id(conn, app, function).await?;
    let now = ts_to_db(now);
    let base = "UPDATE events SET status = 'queued', attempts = 0, due_at = ?, created_at = ?, \
         updated_at = ?, error_code = NULL WHERE function_id = ? AND status = 'dead_lettered'";
    let q = match id {
        Some(id) => sqlx::query(sqlx::AssertSqlSafe(format!("{base} AND id = ?")))
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(&fid)
            .bind(id),
        None => sqlx::query(sqlx::AssertSqlSafe(base))
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(&fid),
    };
    let n = q.execute(&mut *conn).await.map_err(db)?.rows_affected();
    if n == 0 && id.is_some() {
        return Err(Error::new(
            ErrorCode::InvocationNotFound,
            "no dead-lettered invocation with that id",
        ));
    }
    Ok(n)
}

/// Events of a function that may still run.
pub(super) async fn count_pending(conn: &mut SqliteConnection, function_id: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM events WHERE function_id = ? AND status IN {PENDING}"
    )))
    .bind(function_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Marks a function's unfinished events cancelled (its deletion was forced).
pub(super) async fn cancel_pending(
    conn: &mut SqliteConnection,
    function_id: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE events SET status = 'cancelled', lease_owner = NULL, updated_at = ? \
         WHERE function_id = ? AND status IN {PENDING}"
    )))
    .bind(ts_to_db(now))
    .bind(function_id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Ends the leases `owner` holds (it restarted): its running events may be taken at once.
pub(super) async fn release_leases(
    conn: &mut SqliteConnection,
    owner: &str,
    now: Timestamp,
) -> Result<u64> {
    let r =
        sqlx::query("UPDATE events SET due_at = ? WHERE status = 'running' AND lease_owner = ?")
            .bind(ts_to_db(now))
            .bind(owner)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    Ok(r.rows_affected())
}

/// Rows deleted per purge statement, so a purge never holds the write lock for long.
const PURGE_CHUNK: i64 = 5000;

/// Deletes old finished events (one chunk); returns how many.
pub(super) async fn purge(
    conn: &mut SqliteConnection,
    finished_before: Timestamp,
    dead_before: Timestamp,
) -> Result<u64> {
    let r = sqlx::query(
        "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE \
         (status IN ('succeeded', 'cancelled') AND updated_at < ?) \
         OR (status = 'dead_lettered' AND updated_at < ?) LIMIT ?)",
    )
    .bind(ts_to_db(finished_before))
    .bind(ts_to_db(dead_before))
    .bind(PURGE_CHUNK)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(r.rows_affected())
}

/// Unfinished events by function and status, with the oldest one's acceptance time.
pub(super) async fn depths(conn: &mut SqliteConnection) -> Result<Vec<QueueDepth>> {
    let rows: Vec<(String, String, String, i64, i64)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT app, function, status, COUNT(*), MIN(created_at) FROM events \
         WHERE status IN {PENDING} GROUP BY app, function, status"
        )))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    rows.into_iter()
        .map(|(app, function, status, count, oldest)| {
            Ok(QueueDepth {
                app,
                function,
                status: EventStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
                count: u64::try_from(count).unwrap_or(0),
                oldest: ts_from_db(oldest, "created_at")?,
            })
        })
        .collect()
}
