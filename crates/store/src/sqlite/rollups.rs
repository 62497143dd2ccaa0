//! Rollups of invocation records per function, minute and hour: updated in the
//! transaction that inserts the records, read by stats and usage.

use super::util::{col, db, from_json, require_scope, to_json, u64_to_db};
use arcus_core::Result;
use arcus_core::model::Timestamp;
use arcus_core::record::InvocationRecord;
use arcus_core::stats::{Histogram, Resolution, Rollup, RollupQuery, RollupRow};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use std::collections::BTreeMap;

fn unclamp(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Adds records to their minute and hour rollups: aggregates the batch in memory, then
/// one read and one upsert per (function, bucket) touched.
pub(super) async fn add<'a>(
    conn: &mut SqliteConnection,
    records: impl Iterator<Item = &'a InvocationRecord>,
) -> Result<()> {
    let mut groups: BTreeMap<(&str, &str, Resolution, i64), Rollup> = BTreeMap::new();
    for r in records {
        for res in Resolution::ALL {
            let key = (
                r.app.as_str(),
                r.function.as_str(),
                res,
                res.bucket_of(r.started_at),
            );
            groups.entry(key).or_default().add(r);
        }
    }
    for ((app, function, res, bucket), mut rollup) in groups {
        if let Some(old) = read_one(conn, app, function, res, bucket).await? {
            rollup.merge(&old);
        }
        write_one(conn, app, function, res, bucket, &rollup).await?;
    }
    Ok(())
}

async fn read_one(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    res: Resolution,
    bucket: i64,
) -> Result<Option<Rollup>> {
    let row = sqlx::query(
        "SELECT * FROM invocation_rollups WHERE app = ? AND res = ? AND bucket = ? AND function = ?",
    )
    .bind(app)
    .bind(res.as_str())
    .bind(bucket)
    .bind(function)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

async fn write_one(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    res: Resolution,
    bucket: i64,
    r: &Rollup,
) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO invocation_rollups (app, function, res, bucket, calls, errors, \
         cold_starts, duration_us, billed_ms, mib_ms, egress_bytes, error_codes, histogram) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(app)
    .bind(function)
    .bind(res.as_str())
    .bind(bucket)
    .bind(u64_to_db(r.calls))
    .bind(u64_to_db(r.errors))
    .bind(u64_to_db(r.cold_starts))
    .bind(u64_to_db(r.duration_us))
    .bind(u64_to_db(r.billed_ms))
    .bind(u64_to_db(r.mib_ms))
    .bind(u64_to_db(r.egress_bytes))
    .bind(to_json(&r.error_codes, "error_codes")?)
    .bind(to_json(&r.histogram, "histogram")?)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

fn from_row(row: &SqliteRow) -> Result<Rollup> {
    let codes: String = col(row, "error_codes")?;
    let hist: String = col(row, "histogram")?;
    Ok(Rollup {
        calls: unclamp(col(row, "calls")?),
        errors: unclamp(col(row, "errors")?),
        cold_starts: unclamp(col(row, "cold_starts")?),
        duration_us: unclamp(col(row, "duration_us")?),
        billed_ms: unclamp(col(row, "billed_ms")?),
        mib_ms: unclamp(col(row, "mib_ms")?),
        egress_bytes: unclamp(col(row, "egress_bytes")?),
        error_codes: from_json(&codes, "error_codes")?,
        histogram: from_json::<Histogram>(&hist, "histogram")?,
    })
}

/// An app's rollup rows in `[from, to)`, oldest first; `app_not_found`.
pub(super) async fn read(
    conn: &mut SqliteConnection,
    app: &str,
    q: &RollupQuery,
) -> Result<Vec<RollupRow>> {
    require_scope(conn, app, q.function.as_deref()).await?;
    let rows = sqlx::query(
        "SELECT * FROM invocation_rollups WHERE app = ? AND res = ? AND bucket >= ? \
         AND bucket < ? AND (? IS NULL OR function = ?) ORDER BY bucket, function",
    )
    .bind(app)
    .bind(q.resolution.as_str())
    .bind(q.from)
    .bind(q.to)
    .bind(q.function.as_deref())
    .bind(q.function.as_deref())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|row| {
            Ok(RollupRow {
                function: col(row, "function")?,
                bucket: col(row, "bucket")?,
                rollup: from_row(row)?,
            })
        })
        .collect()
}

/// Deletes up to `limit` rollups of `res` whose bucket began before `older_than`.
pub(super) async fn purge(
    conn: &mut SqliteConnection,
    res: Resolution,
    older_than: Timestamp,
    limit: u32,
) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM invocation_rollups WHERE rowid IN \
         (SELECT rowid FROM invocation_rollups WHERE res = ? AND bucket < ? LIMIT ?)",
    )
    .bind(res.as_str())
    .bind(older_than.unix_timestamp())
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}
