//! Records and lines in volume: several batches of hundreds of invocations of two
//! functions, started out of order and with repeated start times, read back whole and
//! in pages of any size, filtered, tailed and purged a few at a time.

use super::*;
use arcus_core::record::{CapturedLine, RecordedInvocation};
use arcus_core::stats::{Cursor, InvocationQuery};
use arcus_core::store::LogQuery;
use std::collections::HashSet;

const BATCHES: i64 = 3;
const PER_BATCH: i64 = 400;

/// Invocation `n`: of `g` every third, else of `f`; starts a permutation of 0..600 s
/// (each twice), every fifth failed, every other one ran (platform lines), every
/// seventh printed two lines, the first of them before `START` every fourth.
fn nth(n: i64) -> RecordedInvocation {
    let f = if n % 3 == 0 { "g" } else { "f" };
    let secs = (n * 7919) % (BATCHES * PER_BATCH / 2);
    let mut r = invocation(&format!("r{n}"), "a", f, secs);
    if n % 5 == 0 {
        r.status = InvocationStatus::Failed;
        r.error_code = Some("boom".into());
    }
    let lines = if n % 7 == 0 {
        ["one", "two"]
            .iter()
            .map(|m| CapturedLine {
                stream: LogStream::Stdout,
                timestamp: at(secs),
                message: format!("{m} of r{n}"),
            })
            .collect()
    } else {
        Vec::new()
    };
    RecordedInvocation {
        record: r,
        lines,
        platform_lines: n % 2 == 0,
        init_lines: usize::from(n % 4 == 0),
    }
}

async fn setup(s: &dyn Store) -> Vec<RecordedInvocation> {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    let mut all = Vec::new();
    for b in 0..BATCHES {
        let batch: Vec<RecordedInvocation> =
            (b * PER_BATCH..(b + 1) * PER_BATCH).map(nth).collect();
        s.insert_invocations(&batch).await.unwrap();
        all.extend(batch);
    }
    all
}

/// Every page of `q` with `limit`, concatenated.
async fn records_paged(s: &dyn Store, q: &InvocationQuery, limit: u32) -> Vec<InvocationRecord> {
    let mut q = InvocationQuery { limit, ..q.clone() };
    let mut out = Vec::new();
    loop {
        let page = s.query_invocations("a", &q).await.unwrap();
        assert!(page.items.len() <= limit as usize);
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Some(Cursor::parse(&c).unwrap()),
            None => return out,
        }
    }
}

/// Record listings hold every matching record once, newest start first, the same in
/// one page as in pages of any size; lookups by id find each.
pub async fn records_in_volume(s: &dyn Store) {
    let all = setup(s).await;
    let queries = [
        InvocationQuery::default(),
        InvocationQuery {
            function: Some("f".into()),
            ..InvocationQuery::default()
        },
        InvocationQuery {
            status: Some(InvocationStatus::Failed),
            ..InvocationQuery::default()
        },
        InvocationQuery {
            function: Some("g".into()),
            error_code: Some("boom".into()),
            since: Some(at(100)),
            until: Some(at(300)),
            ..InvocationQuery::default()
        },
    ];
    for q in &queries {
        let expected: HashSet<&str> = all
            .iter()
            .map(|r| &r.record)
            .filter(|r| q.function.as_ref().is_none_or(|f| r.function == *f))
            .filter(|r| q.status.is_none_or(|st| r.status == st))
            .filter(|r| q.error_code.is_none() || r.error_code == q.error_code)
            .filter(|r| q.since.is_none_or(|t| r.started_at >= t))
            .filter(|r| q.until.is_none_or(|t| r.started_at < t))
            .map(|r| r.id.as_str())
            .collect();
        let whole = records_paged(s, q, 5000).await;
        assert_eq!(whole.len(), expected.len(), "{q:?}");
        assert_eq!(
            whole.iter().map(|r| r.id.as_str()).collect::<HashSet<_>>(),
            expected
        );
        assert!(
            whole.windows(2).all(|w| w[0].started_at >= w[1].started_at),
            "{q:?}"
        );
        for limit in [7, 100] {
            assert_eq!(records_paged(s, q, limit).await, whole, "{q:?} by {limit}");
        }
    }
    for n in [0, 1, 255, 256, 257, 399, 400, 1199] {
        let r = &all[n].record;
        assert_eq!(&s.get_invocation(&r.id).await.unwrap(), r);
    }
}

/// Log listings and tails over many invocations hold each line once in their order,
/// the same whatever the page size.
pub async fn logs_in_volume(s: &dyn Store) {
    let all = setup(s).await;
    let expected: usize = all
        .iter()
        .map(|r| r.lines.len() + if r.platform_lines { 3 } else { 0 })
        .sum();
    let q = |limit: u32, function: Option<&str>| LogQuery {
        limit,
        function: function.map(str::to_string),
        ..LogQuery::default()
    };
    let mut whole = Vec::new();
    let mut page_q = q(5000, None);
    loop {
        let page = s.query_logs("a", &page_q).await.unwrap();
        whole.extend(page.items);
        match page.next_cursor {
            Some(c) => page_q.cursor = Some(Cursor::parse(&c).unwrap()),
            None => break,
        }
    }
    assert_eq!(whole.len(), expected);
    assert!(
        whole
            .windows(2)
            .all(|w| (w[0].timestamp, w[0].seq) > (w[1].timestamp, w[1].seq))
    );
    for limit in [37, 500] {
        let mut paged = Vec::new();
        let mut page_q = q(limit, None);
        loop {
            let page = s.query_logs("a", &page_q).await.unwrap();
            paged.extend(page.items);
            match page.next_cursor {
                Some(c) => page_q.cursor = Some(Cursor::parse(&c).unwrap()),
                None => break,
            }
        }
        assert_eq!(paged, whole, "pages of {limit}");
    }
    let mut by_seq = whole.clone();
    by_seq.sort_by_key(|l| l.seq);
    for (function, limit) in [(None, 41), (Some("g"), 1000)] {
        let mut tailed = Vec::new();
        let mut pos = 0;
        loop {
            let t = s.tail_logs("a", &q(0, function), pos, limit).await.unwrap();
            if t.scanned_to == pos {
                break;
            }
            tailed.extend(t.lines);
            pos = t.scanned_to;
        }
        let want: Vec<LogLine> = by_seq
            .iter()
            .filter(|l| function.is_none_or(|f| l.function == f))
            .cloned()
            .collect();
        assert_eq!(tailed, want, "tail of {function:?} by {limit}");
    }
}

/// Purging old records a few at a time deletes exactly the old ones, whichever
/// batches and functions they were written with; a purged id can be recorded again.
pub async fn record_purge_in_volume(s: &dyn Store) {
    let all = setup(s).await;
    let cutoff = at(250);
    let old = all.iter().filter(|r| r.record.started_at < cutoff).count() as u64;
    let mut purged = 0;
    loop {
        let n = s.purge_invocations("a", cutoff, 97).await.unwrap();
        assert!(n <= 97);
        if n == 0 {
            break;
        }
        purged += n;
    }
    assert_eq!(purged, old);
    let left = records_paged(s, &InvocationQuery::default(), 5000).await;
    assert_eq!(left.len(), all.len() - old as usize);
    assert!(left.iter().all(|r| r.started_at >= cutoff));
    let gone = all.iter().find(|r| r.record.started_at < cutoff).unwrap();
    assert_err(
        s.get_invocation(&gone.record.id).await,
        ErrorCode::InvocationNotFound,
    );
    let mut again = gone.record.clone();
    again.started_at = at(900);
    s.insert_invocations(&[again.clone().into()]).await.unwrap();
    assert_eq!(s.get_invocation(&again.id).await.unwrap(), again);
}
