//! The audit log: appends, newest-first pages (time, then seq) filtered by app and time,
//! and the bounded deletes of the retention task.

use super::records::DEFAULT_LIMIT;
use super::util::{col, db, from_json, to_json, ts_from_db, ts_to_db};
use arcus_core::audit::{AuditEntry, AuditQuery};
use arcus_core::model::Timestamp;
use arcus_core::stats::{Cursor, Page};
use arcus_core::{Error, Result};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};

const COLUMNS: &str = "seq, id, at, actor, method, route, app, function, resource, status, \
                       client_ip, forwarded_for, request_id, before, after";

fn doc(row: &SqliteRow, name: &str) -> Result<Option<serde_json::Value>> {
    let text: Option<String> = col(row, name)?;
    text.map(|t| from_json(&t, name)).transpose()
}

fn from_row(row: &SqliteRow) -> Result<(i64, AuditEntry)> {
    let status: i64 = col(row, "status")?;
    let entry = AuditEntry {
        id: col(row, "id")?,
        at: ts_from_db(col(row, "at")?, "at")?,
        actor: col(row, "actor")?,
        method: col(row, "method")?,
        route: col(row, "route")?,
        app: col(row, "app")?,
        function: col(row, "function")?,
        resource: col(row, "resource")?,
        status: u16::try_from(status).map_err(|_| super::util::corrupt("status"))?,
        client_ip: col(row, "client_ip")?,
        forwarded_for: col(row, "forwarded_for")?,
        request_id: col(row, "request_id")?,
        before: doc(row, "before")?,
        after: doc(row, "after")?,
    };
    Ok((col(row, "seq")?, entry))
}

fn json_col(v: Option<&serde_json::Value>, what: &str) -> Result<Option<String>> {
    v.map(|d| to_json(d, what)).transpose()
}

/// Appends one entry.
pub(super) async fn insert(conn: &mut SqliteConnection, e: &AuditEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, method, route, app, function, resource, status, \
         client_ip, forwarded_for, request_id, before, after) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&e.id)
    .bind(ts_to_db(e.at))
    .bind(&e.actor)
    .bind(&e.method)
    .bind(&e.route)
    .bind(e.app.as_deref())
    .bind(e.function.as_deref())
    .bind(e.resource.as_deref())
    .bind(i64::from(e.status))
    .bind(e.client_ip.as_deref())
    .bind(e.forwarded_for.as_deref())
    .bind(&e.request_id)
    .bind(json_col(e.before.as_ref(), "before")?)
    .bind(json_col(e.after.as_ref(), "after")?)
    .execute(&mut *conn)
    .await
    .map_err(|err| {
        if super::util::is_unique_violation(&err) {
            Error::new(arcus_core::ErrorCode::AlreadyExists, "audit entry id taken")
        } else {
            db(err)
        }
    })?;
    Ok(())
}

/// A page of entries matching `q`, newest first.
pub(super) async fn query(conn: &mut SqliteConnection, q: &AuditQuery) -> Result<Page<AuditEntry>> {
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
    let mut sql =
        QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM audit_log WHERE 1 = 1"));
    if let Some(app) = &q.app {
        sql.push(" AND app = ").push_bind(app.clone());
    }
    if let Some(t) = q.since {
        sql.push(" AND at >= ").push_bind(ts_to_db(t));
    }
    if let Some(t) = q.until {
        sql.push(" AND at < ").push_bind(ts_to_db(t));
    }
    if let Some(c) = q.cursor {
        sql.push(" AND (at, seq) < (").push_bind(c.time_us);
        sql.push(", ").push_bind(c.seq).push(")");
    }
    sql.push(" ORDER BY at DESC, seq DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = sql.build().fetch_all(&mut *conn).await.map_err(db)?;
    let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|(seq, e)| {
            Cursor {
                time_us: ts_to_db(e.at),
                seq: *seq,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Page {
        items: items.into_iter().map(|(_, e)| e).collect(),
        next_cursor,
    })
}

/// Deletes up to `limit` entries recorded before `older_than`; returns how many.
pub(super) async fn purge(
    conn: &mut SqliteConnection,
    older_than: Timestamp,
    limit: u32,
) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM audit_log WHERE seq IN \
         (SELECT seq FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)",
    )
    .bind(ts_to_db(older_than))
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}
