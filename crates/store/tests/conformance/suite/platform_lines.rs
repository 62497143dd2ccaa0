//! Platform lines derived from records (ADR 0019): `START`, the captured lines, `END`
//! and `REPORT` in Lambda's format, consecutive seqs per invocation, every filter,
//! cursor pages and tails that split no invocation, and retried batches.

use super::*;
use arcus_core::record::{CapturedLine, RecordedInvocation};
use arcus_core::stats::Cursor;
use arcus_core::store::LogQuery;

fn captured(stream: LogStream, secs: i64, message: &str) -> CapturedLine {
    CapturedLine {
        stream,
        timestamp: at(secs),
        message: message.to_string(),
    }
}

fn ran(record: InvocationRecord, lines: Vec<CapturedLine>) -> RecordedInvocation {
    RecordedInvocation {
        record,
        lines,
        platform_lines: true,
        init_lines: 0,
    }
}

/// i1 (version 3, 1.2345 ms, two lines, the last after its end), i2 (draft, cold, no
/// lines) and i3 (refused before it ran: a record without platform lines), in one batch.
fn batch() -> Vec<RecordedInvocation> {
    let mut i1 = invocation("i1", "a", "f", 10);
    i1.duration_us = 1_234_500;
    i1.max_memory_mb = Some(3);
    let mut i2 = invocation("i2", "a", "g", 20);
    i2.version = None;
    i2.duration_us = 0;
    i2.cold_start = true;
    i2.init_duration_us = Some(2_500);
    i2.trace_id = None;
    let i3 = invocation("i3", "a", "f", 30);
    vec![
        ran(
            i1,
            vec![
                captured(LogStream::Stdout, 10, "hi"),
                captured(LogStream::Stderr, 13, "oops"),
            ],
        ),
        ran(i2, Vec::new()),
        i3.into(),
    ]
}

async fn setup(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    s.insert_invocations(&batch()).await.unwrap();
}

fn everything() -> LogQuery {
    LogQuery {
        limit: 1000,
        ..LogQuery::default()
    }
}

const I1_REPORT: &str = "REPORT RequestId: i1\tDuration: 1234.50 ms\tBilled Duration: 1235 ms\t\
                         Memory Size: 128 MB\tMax Memory Used: 3 MB";
const I2_REPORT: &str = "REPORT RequestId: i2\tDuration: 0.00 ms\tBilled Duration: 1 ms\t\
                         Memory Size: 128 MB\tInit Duration: 2.50 ms";

/// Lambda's lines, newest first by capture time, with the record's trace id, and one
/// block of consecutive seqs per invocation in write order.
pub async fn platform_lines_from_records(s: &dyn Store) {
    setup(s).await;
    let lines = s.query_logs("a", &everything()).await.unwrap().items;
    assert_eq!(
        messages(&lines),
        [
            // Same time: the higher seq first (REPORT, END, START).
            I2_REPORT,
            "END RequestId: i2",
            "START RequestId: i2 Version: $LATEST",
            I1_REPORT,
            "END RequestId: i1",
            "oops",
            "hi",
            "START RequestId: i1 Version: 3",
        ]
    );
    let by_msg = |m: &str| lines.iter().find(|l| l.message == m).unwrap();
    let start = by_msg("START RequestId: i1 Version: 3");
    assert_eq!(start.timestamp, at(10));
    assert_eq!(start.stream, LogStream::Platform);
    assert_eq!(start.invocation_id, "i1");
    assert_eq!(start.function, "f");
    assert_eq!(
        start.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    // END is at the invocation's end, or its last line when that is later.
    assert_eq!(by_msg("END RequestId: i1").timestamp, at(13));
    assert_eq!(by_msg(I1_REPORT).timestamp, at(13));
    assert_eq!(by_msg(I2_REPORT).timestamp, at(20));
    assert_eq!(by_msg("hi").trace_id, start.trace_id);
    // Write order: i1's block (START, hi, oops, END, REPORT), then i2's, seqs
    // consecutive inside each block.
    let mut seqs: Vec<(u64, &str)> = lines.iter().map(|l| (l.seq, l.message.as_str())).collect();
    seqs.sort_unstable();
    let order: Vec<&str> = seqs.iter().map(|(_, m)| *m).collect();
    assert_eq!(
        order,
        [
            "START RequestId: i1 Version: 3",
            "hi",
            "oops",
            "END RequestId: i1",
            I1_REPORT,
            "START RequestId: i2 Version: $LATEST",
            "END RequestId: i2",
            I2_REPORT,
        ]
    );
    assert!(
        seqs[..5].windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "{seqs:?}"
    );
    assert!(
        seqs[5..].windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "{seqs:?}"
    );
    // The refused invocation (i3) has a seq of its own but no lines: a batch numbers
    // each function's invocations together (i1 and i3 of f, then i2 of g), so it is
    // the gap between the two blocks, and the batch reserved nine seqs.
    let last = s.last_log_seq().await.unwrap();
    assert_eq!(seqs[5].0, seqs[4].0 + 2, "{seqs:?}");
    assert_eq!(last, seqs[0].0 + 8, "{last} vs {seqs:?}");
    assert!(lines.iter().all(|l| l.invocation_id != "i3"));
    // Records keep what REPORT shows.
    let i2 = s.get_invocation("i2").await.unwrap();
    assert_eq!((i2.init_duration_us, i2.max_memory_mb), (Some(2_500), None));
    assert_eq!(s.get_invocation("i1").await.unwrap().max_memory_mb, Some(3));
    // Size retention counts captured lines only.
    assert_eq!(s.log_bytes("a").await.unwrap(), 6);
}

/// Every filter applies to derived lines as to stored ones, and cursor pages of any
/// size return each line once.
pub async fn platform_line_filters(s: &dyn Store) {
    setup(s).await;
    let q = |edit: &dyn Fn(&mut LogQuery)| {
        let mut q = everything();
        edit(&mut q);
        q
    };
    let read = |q: LogQuery| async move { s.query_logs("a", &q).await.unwrap().items };
    let text = read(q(&|q| q.text = Some("Init Duration: 2.50".into()))).await;
    assert_eq!(messages(&text), [I2_REPORT]);
    let text = read(q(&|q| q.text = Some("RequestId: i1".into()))).await;
    assert_eq!(text.len(), 3);
    let platform = read(q(&|q| q.stream = Some(LogStream::Platform))).await;
    assert_eq!(platform.len(), 6);
    let stderr = read(q(&|q| q.stream = Some(LogStream::Stderr))).await;
    assert_eq!(messages(&stderr), ["oops"]);
    let g = read(q(&|q| q.function = Some("g".into()))).await;
    assert_eq!(g.len(), 3);
    assert!(g.iter().all(|l| l.invocation_id == "i2"));
    let one = read(q(&|q| q.invocation_id = Some("i1".into()))).await;
    assert_eq!(one.len(), 5);
    let none = read(q(&|q| q.invocation_id = Some("i3".into()))).await;
    assert!(none.is_empty());
    // i1's START (10) and "hi" (10) are before 11; END and REPORT (13) are not.
    let early = read(q(&|q| q.until = Some(at(11)))).await;
    assert_eq!(messages(&early), ["hi", "START RequestId: i1 Version: 3"]);
    let late = read(q(&|q| {
        q.since = Some(at(13));
        q.function = Some("f".into());
    }))
    .await;
    assert_eq!(messages(&late), [I1_REPORT, "END RequestId: i1", "oops"]);

    let full = read(everything()).await;
    for limit in [1, 2, 3] {
        let mut q = LogQuery {
            limit,
            ..LogQuery::default()
        };
        let mut paged = Vec::new();
        loop {
            let page = s.query_logs("a", &q).await.unwrap();
            assert!(page.items.len() <= limit as usize);
            paged.extend(page.items);
            match page.next_cursor {
                Some(c) => q.cursor = Some(Cursor::parse(&c).unwrap()),
                None => break,
            }
        }
        assert_eq!(paged, full, "limit {limit}");
    }
}

/// Tails return stored and derived lines in seq order from any position, in pages of
/// any size; a block larger than a tail's window is not split.
pub async fn platform_line_tails(s: &dyn Store) {
    setup(s).await;
    let all = |after: u64, limit: u32| async move {
        let mut out = Vec::new();
        let mut pos = after;
        loop {
            let t = s
                .tail_logs("a", &LogQuery::default(), pos, limit)
                .await
                .unwrap();
            if t.scanned_to == pos {
                return out;
            }
            out.extend(t.lines);
            pos = t.scanned_to;
        }
    };
    let whole = all(0, 1000).await;
    assert_eq!(whole.len(), 8);
    assert!(whole.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(whole[0].message, "START RequestId: i1 Version: 3");
    assert_eq!(whole.last().unwrap().message, I2_REPORT);
    assert_eq!(all(0, 1).await, whole, "one line per call");
    // From inside a block: the rest of it.
    let after_hi = all(whole[1].seq, 2).await;
    assert_eq!(after_hi, whole[2..]);
    let g = s
        .tail_logs(
            "a",
            &LogQuery {
                function: Some("g".into()),
                ..LogQuery::default()
            },
            0,
            100,
        )
        .await
        .unwrap();
    assert_eq!(g.lines, whole[5..]);

    // An invocation with more lines than a tail's window (20,000 seqs), after two
    // small ones: the window stops before it, then takes it whole.
    let lines: Vec<CapturedLine> = (0..25_000)
        .map(|i| captured(LogStream::Stdout, 40, &i.to_string()))
        .collect();
    let big = ran(invocation("big", "a", "f", 40), lines);
    s.insert_invocations(&[big]).await.unwrap();
    let before = whole.last().unwrap().seq;
    let tail = all(before, 30_000).await;
    assert_eq!(tail.len(), 25_003);
    assert_eq!(tail[0].message, "START RequestId: big Version: 3");
    assert_eq!(tail[1].message, "0");
    assert_eq!(tail[25_000].message, "24999");
    assert_eq!(tail[25_001].message, "END RequestId: big");
    assert!(tail[25_002].message.starts_with("REPORT RequestId: big\t"));
    let from_start = all(0, 30_000).await;
    assert_eq!(from_start.len(), 8 + 25_003);
    assert!(from_start.windows(2).all(|w| w[0].seq < w[1].seq));
}

/// A retried batch stores neither its records nor their lines again; loose lines and
/// later batches take seqs after everything before them.
pub async fn platform_line_retries(s: &dyn Store) {
    setup(s).await;
    let before = s.query_logs("a", &everything()).await.unwrap().items;
    let last = s.last_log_seq().await.unwrap();
    s.insert_invocations(&batch()).await.unwrap();
    assert_eq!(
        s.query_logs("a", &everything()).await.unwrap().items,
        before
    );
    assert_eq!(s.log_bytes("a").await.unwrap(), 6);
    s.insert_logs(&[log("loose", "a", "f", 50, "loose line")])
        .await
        .unwrap();
    let mut late = batch();
    late[0].record.id = "i4".into();
    s.insert_invocations(&late[..1]).await.unwrap();
    let tail = s
        .tail_logs("a", &LogQuery::default(), last, 100)
        .await
        .unwrap();
    assert_eq!(tail.lines.len(), 6, "{:?}", messages(&tail.lines));
    assert_eq!(tail.lines[0].message, "loose line");
    assert_eq!(tail.lines[1].message, "START RequestId: i4 Version: 3");
    assert!(tail.lines[0].seq > last);
}

/// Lines an instance printed while it started (a cold start's first `init_lines`) come
/// before `START`, which is at the last of them when that is after the invocation's
/// start; the block's seqs stay consecutive in that order.
pub async fn platform_lines_after_start_up_output(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    let mut cold = ran(
        invocation("c1", "a", "f", 10),
        vec![
            captured(LogStream::Stdout, 11, "booting"),
            captured(LogStream::Stderr, 12, "ready"),
            captured(LogStream::Stdout, 12, "handling"),
        ],
    );
    cold.init_lines = 2;
    cold.record.duration_us = 5_000_000;
    s.insert_invocations(&[cold]).await.unwrap();
    let mut lines = s.query_logs("a", &everything()).await.unwrap().items;
    lines.reverse();
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| l.message.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "booting",
            "ready",
            "START RequestId: c1 Version: 3",
            "handling",
            "END RequestId: c1",
            "REPORT RequestId: c1",
        ]
    );
    assert!(
        lines.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "{lines:?}"
    );
    assert_eq!(lines[2].timestamp, at(12));
    assert_eq!(lines[4].timestamp, at(15));
    let tail = s
        .tail_logs("a", &LogQuery::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(tail.lines, lines);
    let after_ready = s
        .tail_logs("a", &LogQuery::default(), lines[1].seq, 100)
        .await
        .unwrap();
    assert_eq!(after_ready.lines, lines[2..]);
}
