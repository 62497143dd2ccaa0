//! Invocation records: insert (as segments, with their rollups), read one, query with
//! filters and cursor pagination.

use super::logs::{self, NewLine, seq_to_db};
use super::records::{DEFAULT_LIMIT, insert_chunks};
use super::rollups;
use super::segments::{self, Bounds, Key, Platform, RECORDS_PER_SEGMENT, Stored, View};
use super::util::{db, require_scope, ts_to_db, u64_to_db};
use arcus_core::record::{InvocationRecord, RecordedInvocation};
use arcus_core::stats::{Cursor, InvocationQuery, Page};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::sqlite::Sqlite;
use sqlx::{QueryBuilder, SqliteConnection};
use std::collections::{HashMap, HashSet};

/// One invocation of a batch with its reserved record seq: the last of its block of
/// seqs (its start-up lines, `START`, its other lines, `END`, `REPORT`; just its lines
/// without platform lines).
type Numbered<'a> = (i64, &'a RecordedInvocation);

/// Inserts a batch inside the caller's transaction: keeps the first of each id, groups
/// the records by function (in batch order inside each), reserves each invocation's
/// block of seqs group after group, writes each group as segments and the ids of their
/// records, then the lines of the records actually inserted, and adds those to their
/// rollups. A record whose id is already stored is skipped with its lines (its seqs
/// stay unused), so a retried batch neither fails nor double-counts.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    batch: &[RecordedInvocation],
) -> Result<()> {
    let mut next = seq_to_db(logs::last_seq(conn).await?) + 1;
    let mut fresh: Vec<Numbered<'_>> = Vec::with_capacity(batch.len());
    for group in by_function(batch) {
        for chunk in group.chunks(RECORDS_PER_SEGMENT) {
            let numbered: Vec<Numbered<'_>> = chunk
                .iter()
                .map(|&r| {
                    let platform = i64::from(r.platform_lines);
                    let seq = next.saturating_add(count(r)).saturating_add(2 * platform);
                    next = seq.saturating_add(1);
                    (seq, r)
                })
                .collect();
            insert_segment(conn, &numbered, &mut fresh).await?;
        }
    }
    let lines: Vec<NewLine<'_>> = fresh.iter().flat_map(|&n| lines_of(n)).collect();
    logs::insert(conn, &lines).await?;
    if !batch.is_empty() {
        logs::set_last_seq(conn, next - 1).await?;
    }
    rollups::add(conn, fresh.into_iter().map(|(_, r)| &r.record)).await
}

/// The batch without repeated ids, grouped by (app, function) in order of first
/// appearance, each group in batch order.
fn by_function(batch: &[RecordedInvocation]) -> Vec<Vec<&RecordedInvocation>> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(batch.len());
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut groups: Vec<Vec<&RecordedInvocation>> = Vec::new();
    for r in batch {
        if !seen.insert(&r.record.id) {
            continue;
        }
        let key = (r.record.app.as_str(), r.record.function.as_str());
        let i = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(r);
    }
    groups
}

/// The stored form of a numbered invocation.
fn stored<'a>((seq, r): Numbered<'a>) -> (i64, &'a InvocationRecord, Option<Platform>) {
    let started = ts_to_db(r.record.started_at);
    let before_start = &r.lines[..init_lines(r)];
    let platform = r.platform_lines.then(|| Platform {
        lines: count(r),
        ended_at: ended_at(r),
        init_lines: i64::try_from(before_start.len()).unwrap_or(i64::MAX),
        start_at: before_start
            .last()
            .map_or(started, |l| started.max(ts_to_db(l.timestamp))),
    });
    (seq, &r.record, platform)
}

/// How many of its captured lines come before `START`.
fn init_lines(r: &RecordedInvocation) -> usize {
    if r.platform_lines {
        r.init_lines.min(r.lines.len())
    } else {
        0
    }
}

/// Writes one function's numbered records as a segment with their ids, and adds to
/// `fresh` those whose id was not stored before (rewriting the segment without the
/// others, the rare retried batch).
async fn insert_segment<'a>(
    conn: &mut SqliteConnection,
    numbered: &[Numbered<'a>],
    fresh: &mut Vec<Numbered<'a>>,
) -> Result<()> {
    if numbered.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = numbered.iter().map(|&n| stored(n)).collect();
    let seg = segments::write(conn, None, &rows).await?;
    let mut inserted = 0;
    for chunk in insert_chunks(numbered) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO invocation_ids (id, seg) ");
        q.push_values(chunk, |mut b, (_, r)| {
            b.push_bind(r.record.id.as_str()).push_bind(seg);
        });
        inserted += q
            .build()
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
    }
    if inserted == numbered.len() as u64 {
        fresh.extend(numbered);
        return Ok(());
    }
    let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM invocation_ids WHERE seg = ");
    q.push_bind(seg).push(" AND id IN (");
    let mut list = q.separated(", ");
    for (_, r) in numbered {
        list.push_bind(r.record.id.as_str());
    }
    q.push(")");
    let ours: HashSet<String> = q
        .build_query_scalar::<String>()
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
    let kept: Vec<Numbered<'a>> = numbered
        .iter()
        .copied()
        .filter(|(_, r)| ours.contains(&r.record.id))
        .collect();
    if kept.is_empty() {
        segments::delete(conn, seg).await?;
    } else {
        let rows: Vec<_> = kept.iter().map(|&n| stored(n)).collect();
        segments::write(conn, Some(seg), &rows).await?;
    }
    fresh.extend(kept);
    Ok(())
}

/// Number of captured lines, as stored.
fn count(r: &RecordedInvocation) -> i64 {
    i64::try_from(r.lines.len()).unwrap_or(i64::MAX)
}

/// The captured lines of a numbered invocation with their seqs (the block's first, or
/// after `START` from its `init_lines`-th on).
fn lines_of((seq, r): Numbered<'_>) -> impl Iterator<Item = NewLine<'_>> {
    let platform = i64::from(r.platform_lines);
    let first = seq - count(r) - 2 * platform;
    let init = init_lines(r);
    let rec = &r.record;
    let seqs = (first..)
        .enumerate()
        .map(move |(i, s)| s + platform * i64::from(i >= init));
    seqs.zip(&r.lines).map(move |(seq, l)| NewLine {
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

/// One record by invocation id; `invocation_not_found`.
pub(super) async fn get(conn: &mut SqliteConnection, id: &str) -> Result<InvocationRecord> {
    let found = match segments::by_id(conn, id).await? {
        Some(seg) => seg.records_where(|v| v.id == id)?.pop(),
        None => None,
    };
    found.map(|r| r.record).ok_or_else(|| {
        Error::new(
            ErrorCode::InvocationNotFound,
            format!("invocation {id} not found"),
        )
    })
}

/// Whether a record passes the filters of `q` other than app and function.
fn matches(q: &InvocationQuery, v: &View<'_>) -> bool {
    let started = v.started;
    q.id.as_deref().is_none_or(|id| v.id == id)
        && q.version.is_none_or(|x| v.version == Some(x))
        && q.status.is_none_or(|s| v.status == s.as_str())
        && q.trigger.is_none_or(|t| v.trigger == t.as_str())
        && q.cold_start.is_none_or(|c| v.cold_start == c)
        && q.error_code
            .as_deref()
            .is_none_or(|c| v.error_code == Some(c))
        && q.since.is_none_or(|t| started >= ts_to_db(t))
        && q.until.is_none_or(|t| started < ts_to_db(t))
        && q.cursor
            .is_none_or(|c| (started, v.seq) < (c.time_us, c.seq))
}

/// A page of an app's records matching `q`, newest first (start time, then seq).
///
/// Segments are read newest first by their newest start; once more than a page of
/// matches is gathered, a segment whose newest start is before the page's last one
/// cannot change it, and neither can any after it.
pub(super) async fn query(
    conn: &mut SqliteConnection,
    app: &str,
    q: &InvocationQuery,
) -> Result<Page<InvocationRecord>> {
    require_scope(conn, app, q.function.as_deref()).await?;
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit } as usize;
    let mut found: Vec<Stored> = Vec::new();
    if let Some(id) = &q.id {
        if let Some(seg) = segments::by_id(conn, id).await?
            && seg.app == app
            && q.function.as_ref().is_none_or(|f| seg.function == *f)
        {
            found = seg.records_where(|v| matches(q, v))?;
        }
    } else {
        let bounds = Bounds::listing(
            q.function.as_deref(),
            q.since,
            q.until,
            q.cursor.map(|c| c.time_us),
        );
        segments::newest(conn, app, Key::Started, &bounds, |seg| {
            if found.len() > limit && found.last().is_some_and(|r| seg.key < r.started()) {
                return Ok(false);
            }
            found.extend(seg.records_where(|v| matches(q, v))?);
            found.sort_unstable_by_key(|r| std::cmp::Reverse((r.started(), r.seq)));
            found.truncate(limit + 1);
            Ok(true)
        })
        .await?;
    }
    let more = found.len() > limit;
    found.truncate(limit);
    let next_cursor = found.last().filter(|_| more).map(|r| {
        Cursor {
            time_us: r.started(),
            seq: r.seq,
        }
        .encode()
    });
    Ok(Page {
        items: found.into_iter().map(|r| r.record).collect(),
        next_cursor,
    })
}
