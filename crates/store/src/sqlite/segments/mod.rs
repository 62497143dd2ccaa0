//! Invocation records in segments (ADR 0020): the records one batch wrote for one
//! function, up to [`RECORDS_PER_SEGMENT`] of them, are one row of
//! `invocation_segments` (a JSON array of [`Wire`] records) with the bounds reads
//! select segments by. Writing a record thus costs one small entry of the id index
//! instead of a row and five index entries; reads decode the segments their bounds
//! cannot rule out.
//!
//! A segment's records have consecutive blocks of seqs (the inserting batch numbers
//! each segment's records together), so segments never overlap in seqs and
//! `first_seq` grows with `last_seq`.

mod wire;

pub(super) use wire::{Platform, Stored, View};

use super::util::{col, corrupt, db, to_json, ts_to_db};
use arcus_core::model::Timestamp;
use arcus_core::record::InvocationRecord;
use arcus_core::{Error, Result};
use futures::TryStreamExt;
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};
use wire::{Text, Wire, block_start};

/// Records per segment, at most: bounds what a read decodes to find a few records.
pub(super) const RECORDS_PER_SEGMENT: usize = 256;

/// One stored segment as read; its records are decoded on demand.
#[derive(Debug)]
pub(super) struct Segment {
    /// Its rowid.
    pub seg: i64,
    /// The key the read that found it orders by.
    pub key: i64,
    /// Its app.
    pub app: String,
    /// Its function.
    pub function: String,
    /// Its records' JSON.
    text: String,
}

impl Segment {
    /// Its records in seq order.
    pub fn records(&self) -> Result<Vec<Stored>> {
        self.records_where(|_| true)
    }

    /// Its records that pass `keep`, in seq order: only those are copied out.
    pub fn records_where(&self, keep: impl Fn(&View<'_>) -> bool) -> Result<Vec<Stored>> {
        let mut kept = Vec::new();
        for w in self.wires()? {
            if keep(&w.view()?) {
                kept.push(w.into_stored(&self.app, &self.function)?);
            }
        }
        Ok(kept)
    }

    /// Calls `f` with a view of each of its records, in seq order, copying nothing.
    pub fn each(&self, mut f: impl FnMut(&View<'_>) -> Result<()>) -> Result<()> {
        for w in self.wires()? {
            f(&w.view()?)?;
        }
        Ok(())
    }

    fn wires(&self) -> Result<Vec<Wire<Text<'_>>>> {
        serde_json::from_str(&self.text).map_err(|_| corrupt("records"))
    }
}

fn decode(row: &SqliteRow) -> Result<Segment> {
    Ok(Segment {
        seg: col(row, "seg")?,
        key: col(row, "k")?,
        app: col(row, "app")?,
        function: col(row, "function")?,
        text: col(row, "records")?,
    })
}

/// Writes `records` (one function's, in seq order, at least one and at most
/// [`RECORDS_PER_SEGMENT`]) as a new segment, or as the new content of segment `seg`.
/// Returns the segment's rowid.
pub(super) async fn write(
    conn: &mut SqliteConnection,
    seg: Option<i64>,
    records: &[(i64, &InvocationRecord, Option<Platform>)],
) -> Result<i64> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err(Error::internal("an empty segment cannot be written"));
    };
    let (app, function) = (&first.1.app, &first.1.function);
    let wires: Vec<Wire<&str>> = records
        .iter()
        .map(|&(seq, r, p)| Wire::of(seq, r, p))
        .collect();
    let started = records.iter().map(|(_, r, _)| ts_to_db(r.started_at));
    let min_started = started.clone().min().unwrap_or(0);
    let max_started = started.max().unwrap_or(0);
    let max_ended = records
        .iter()
        .filter_map(|(_, _, p)| p.map(|p| p.ended_at))
        .max();
    let first_seq = block_start(first.0, first.2);
    let sql = match seg {
        None => {
            "INSERT INTO invocation_segments (app, function, first_seq, last_seq, \
             min_started, max_started, max_ended, records) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        }
        Some(_) => {
            "UPDATE invocation_segments SET app = ?, function = ?, first_seq = ?, \
             last_seq = ?, min_started = ?, max_started = ?, max_ended = ?, records = ? \
             WHERE seg = ?"
        }
    };
    let mut q = sqlx::query(sql)
        .bind(app)
        .bind(function)
        .bind(first_seq)
        .bind(last.0)
        .bind(min_started)
        .bind(max_started)
        .bind(max_ended)
        .bind(to_json(&wires, "records")?);
    if let Some(seg) = seg {
        q = q.bind(seg);
    }
    let done = q.execute(&mut *conn).await.map_err(db)?;
    Ok(seg.unwrap_or_else(|| done.last_insert_rowid()))
}

/// The segment a record's id points at, decoded.
pub(super) async fn by_id(conn: &mut SqliteConnection, id: &str) -> Result<Option<Segment>> {
    let row = sqlx::query(
        "SELECT s.seg, s.seg AS k, s.app, s.function, s.records FROM invocation_ids i \
         JOIN invocation_segments s ON s.seg = i.seg WHERE i.id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.as_ref().map(decode).transpose()
}

/// What a newest-first scan of segments orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    /// The newest start (`max_started`): record listings.
    Started,
    /// The newest platform line (`max_ended`): log listings; segments without
    /// platform lines are left out.
    Ended,
}

/// Which segments a scan may return: its records can match only if they pass these.
#[derive(Debug, Clone)]
pub(super) struct Bounds<'a> {
    /// Only this function's.
    function: Option<&'a str>,
    /// Some record started before (unix µs).
    started_before: Option<i64>,
    /// Some record started at or before (unix µs).
    started_by: Option<i64>,
    /// The scan's key is at or after (unix µs).
    key_since: Option<i64>,
}

impl<'a> Bounds<'a> {
    /// The bounds of a newest-first listing: of `function`, items at or after `since`
    /// and before `until` (the key of a record or line is its time, no earlier than
    /// its start), continuing after a cursor at time `cursor`.
    pub fn listing(
        function: Option<&'a str>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        cursor: Option<i64>,
    ) -> Self {
        Self {
            function,
            started_before: until.map(ts_to_db),
            started_by: cursor,
            key_since: since.map(ts_to_db),
        }
    }
}

/// Calls `visit` with each segment of `app` within `bounds`, newest first by `key`
/// (then by rowid), until it returns `false`. Segments are decoded one at a time.
pub(super) async fn newest(
    conn: &mut SqliteConnection,
    app: &str,
    key: Key,
    bounds: &Bounds<'_>,
    visit: impl FnMut(Segment) -> Result<bool>,
) -> Result<()> {
    let k = match key {
        Key::Started => "max_started",
        Key::Ended => "max_ended",
    };
    let mut sql = select(k, app, bounds.function);
    if key == Key::Ended {
        sql.push(" AND max_ended IS NOT NULL");
    }
    if let Some(t) = bounds.key_since {
        sql.push(format!(" AND {k} >= ")).push_bind(t);
    }
    if let Some(t) = bounds.started_before {
        sql.push(" AND min_started < ").push_bind(t);
    }
    if let Some(t) = bounds.started_by {
        sql.push(" AND min_started <= ").push_bind(t);
    }
    sql.push(format!(" ORDER BY {k} DESC, seg DESC"));
    visit_all(conn, sql, visit).await
}

/// `SELECT` of the segments of `app` (of `function`, when given), with `key` as `k`,
/// up to the end of its `WHERE`.
fn select(key: &str, app: &str, function: Option<&str>) -> QueryBuilder<Sqlite> {
    let mut sql = QueryBuilder::<Sqlite>::new(format!(
        "SELECT seg, {key} AS k, app, function, records FROM invocation_segments WHERE app = "
    ));
    sql.push_bind(app);
    if let Some(f) = function {
        sql.push(" AND function = ").push_bind(f);
    }
    sql
}

/// Runs `sql` and calls `visit` with each segment it returns, decoded one at a time,
/// until it returns `false`.
async fn visit_all(
    conn: &mut SqliteConnection,
    mut sql: QueryBuilder<Sqlite>,
    mut visit: impl FnMut(Segment) -> Result<bool>,
) -> Result<()> {
    let mut rows = sql.build().fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(db)? {
        if !visit(decode(&row)?)? {
            break;
        }
    }
    Ok(())
}

/// Calls `visit` with each segment of `app` (of `function`, when given) whose seqs
/// end after `after`, in seq order, until it returns `false`.
pub(super) async fn after_seq(
    conn: &mut SqliteConnection,
    app: &str,
    function: Option<&str>,
    after: i64,
    visit: impl FnMut(Segment) -> Result<bool>,
) -> Result<()> {
    let mut sql = select("first_seq", app, function);
    sql.push(" AND last_seq > ")
        .push_bind(after)
        .push(" ORDER BY last_seq");
    visit_all(conn, sql, visit).await
}

/// Up to `limit` segments of `app` holding a record started before `before` (unix µs),
/// the oldest first.
pub(super) async fn started_before(
    conn: &mut SqliteConnection,
    app: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<Segment>> {
    let rows = sqlx::query(
        "SELECT seg, min_started AS k, app, function, records FROM invocation_segments \
         WHERE app = ? AND min_started < ? ORDER BY min_started LIMIT ?",
    )
    .bind(app)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.iter().map(decode).collect()
}

/// Deletes records `gone` of segment `seg`, which keeps `kept` (none: it is deleted).
pub(super) async fn remove(
    conn: &mut SqliteConnection,
    seg: i64,
    gone: &[Stored],
    kept: &[Stored],
) -> Result<()> {
    for chunk in gone.chunks(RECORDS_PER_SEGMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM invocation_ids WHERE id IN (");
        let mut list = q.separated(", ");
        for r in chunk {
            list.push_bind(r.record.id.as_str());
        }
        q.push(")");
        q.build().execute(&mut *conn).await.map_err(db)?;
    }
    if kept.is_empty() {
        return delete(conn, seg).await;
    }
    let rows: Vec<_> = kept
        .iter()
        .map(|r| (r.seq, &r.record, r.platform))
        .collect();
    write(conn, Some(seg), &rows).await.map(drop)
}

/// Deletes segment `seg` (not the id entries of its records).
pub(super) async fn delete(conn: &mut SqliteConnection, seg: i64) -> Result<()> {
    sqlx::query("DELETE FROM invocation_segments WHERE seg = ?")
        .bind(seg)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Deletes the segments `segs_sql` selects (`SELECT seg ...`, its `?`s bound to `args`
/// in order) and the id entries of their records.
pub(super) async fn delete_where(
    conn: &mut SqliteConnection,
    segs_sql: &str,
    args: &[&str],
) -> Result<()> {
    let ids = format!(
        "DELETE FROM invocation_ids WHERE id IN (SELECT json_extract(j.value, '$[1]') \
         FROM invocation_segments s, json_each(s.records) j WHERE s.seg IN ({segs_sql}))"
    );
    let segs = format!("DELETE FROM invocation_segments WHERE seg IN ({segs_sql})");
    for sql in [ids, segs] {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = q.bind(*a);
        }
        q.execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}
