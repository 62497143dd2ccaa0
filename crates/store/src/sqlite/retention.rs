//! Retention: deletes an app's old log lines (by age, then by size) and old invocation
//! records, a bounded number of rows per call so each transaction stays short.

use super::logs::{add_usage, bytes};
use super::segments::{self, Stored};
use super::util::{col, db, ts_to_db, u64_to_db};
use arcus_core::Result;
use arcus_core::model::Timestamp;
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};
use std::collections::HashMap;

/// Bound ids per `DELETE ... IN (...)` statement.
const IDS_PER_DELETE: usize = 500;

fn usage_of(rows: &[SqliteRow]) -> Result<HashMap<String, i64>> {
    let mut delta: HashMap<String, i64> = HashMap::new();
    for row in rows {
        let bytes: i64 = col(row, "bytes")?;
        *delta.entry(col(row, "function")?).or_default() -= bytes;
    }
    Ok(delta)
}

/// Deletes up to `limit` lines of `app`: first those captured before `older_than`, then
/// the oldest others while the app's messages exceed `max_bytes`. Returns the count.
pub(super) async fn purge_logs(
    conn: &mut SqliteConnection,
    app: &str,
    older_than: Timestamp,
    max_bytes: u64,
    limit: u32,
) -> Result<u64> {
    let rows = sqlx::query(
        "DELETE FROM logs WHERE id IN \
         (SELECT id FROM logs WHERE app = ? AND ts < ? LIMIT ?) \
         RETURNING function, LENGTH(CAST(message AS BLOB)) AS bytes",
    )
    .bind(app)
    .bind(ts_to_db(older_than))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    add_usage(conn, app, &usage_of(&rows)?).await?;
    let mut deleted = rows.len() as u64;
    let room = u64::from(limit).saturating_sub(deleted);
    let total = bytes(conn, app).await?;
    if room == 0 || total <= max_bytes {
        return Ok(deleted);
    }
    // Over size: the oldest lines, as many as it takes (within the room left).
    let mut excess = total - max_bytes;
    let oldest = sqlx::query(
        "SELECT id, LENGTH(CAST(message AS BLOB)) AS bytes FROM logs \
         WHERE app = ? ORDER BY ts, id LIMIT ?",
    )
    .bind(app)
    .bind(u64_to_db(room))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut ids = Vec::new();
    for row in &oldest {
        if excess == 0 {
            break;
        }
        let bytes: i64 = col(row, "bytes")?;
        excess = excess.saturating_sub(u64::try_from(bytes).unwrap_or(0));
        ids.push(col::<i64>(row, "id")?);
    }
    for chunk in ids.chunks(IDS_PER_DELETE) {
        let mut sql = QueryBuilder::<Sqlite>::new("DELETE FROM logs WHERE id IN (");
        let mut list = sql.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        sql.push(") RETURNING function, LENGTH(CAST(message AS BLOB)) AS bytes");
        let rows = sql.build().fetch_all(&mut *conn).await.map_err(db)?;
        add_usage(conn, app, &usage_of(&rows)?).await?;
        deleted += rows.len() as u64;
    }
    Ok(deleted)
}

/// Deletes up to `limit` invocation records of `app` started before `older_than`, the
/// oldest segments first: whole segments, or the old records of one that also holds
/// newer ones.
pub(super) async fn purge_invocations(
    conn: &mut SqliteConnection,
    app: &str,
    older_than: Timestamp,
    limit: u32,
) -> Result<u64> {
    let cutoff = ts_to_db(older_than);
    let mut room = limit as usize;
    let mut deleted = 0;
    for seg in segments::started_before(conn, app, cutoff, i64::from(limit)).await? {
        if room == 0 {
            break;
        }
        let (mut gone, mut kept): (Vec<Stored>, Vec<Stored>) = seg
            .records()?
            .into_iter()
            .partition(|r| r.started() < cutoff);
        gone.sort_by_key(Stored::started);
        if gone.len() > room {
            kept.extend(gone.drain(room..));
            kept.sort_by_key(|r| r.seq);
        }
        room -= gone.len();
        deleted += gone.len() as u64;
        segments::remove(conn, seg.seg, &gone, &kept).await?;
    }
    Ok(deleted)
}
