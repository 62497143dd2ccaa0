//! Log lines: filtered newest-first queries with cursor pages, write-order tails for
//! live followers, and retention by age and size.

use super::*;
use arcus_core::stats::Cursor;
use arcus_core::store::LogQuery;

fn line(inv: &str, f: &str, secs: i64, stream: LogStream, message: &str) -> LogLine {
    let mut l = log(inv, "a", f, secs, message);
    l.stream = stream;
    l
}

fn everything() -> LogQuery {
    LogQuery {
        limit: 1000,
        ..LogQuery::default()
    }
}

/// Every page of `q`, following `next_cursor`; asserts pages are at most `limit`.
async fn all_pages(s: &dyn Store, app: &str, q: &LogQuery) -> Vec<LogLine> {
    let mut q = q.clone();
    let mut out = Vec::new();
    loop {
        let page = s.query_logs(app, &q).await.unwrap();
        assert!(page.items.len() <= q.limit as usize);
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Some(Cursor::parse(&c).unwrap()),
            None => return out,
        }
    }
}

/// Filters (function or app, invocation, stream, text, time range), newest first,
/// cursor pages that return every line once, and seqs in write order.
pub async fn log_queries(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    app_with_function(s, "b", "f").await;
    let out = LogStream::Stdout;
    s.insert_logs(&[
        line("i1", "f", 1, LogStream::Platform, "START RequestId: i1"),
        line("i1", "f", 1, out, "hello World"),
        line("i1", "f", 2, LogStream::Stderr, "world error"),
        line("i2", "g", 3, out, "g says hello"),
        log("x", "b", "f", 3, "other app hello"),
        line("i1", "f", 4, LogStream::Platform, "END RequestId: i1"),
    ])
    .await
    .unwrap();

    let app = all_pages(
        s,
        "a",
        &LogQuery {
            limit: 2,
            ..LogQuery::default()
        },
    )
    .await;
    assert_eq!(
        messages(&app),
        [
            "END RequestId: i1",
            "g says hello",
            "world error",
            "hello World",
            "START RequestId: i1"
        ]
    );
    let seqs: Vec<u64> = app.iter().rev().map(|l| l.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > 0,
        "{seqs:?}"
    );

    let q = |f: Option<&str>| LogQuery {
        function: f.map(str::to_string),
        limit: 100,
        ..LogQuery::default()
    };
    let by = |mut query: LogQuery, edit: &dyn Fn(&mut LogQuery)| {
        edit(&mut query);
        query
    };
    let run = |query: LogQuery| async move { all_pages(s, "a", &query).await };
    assert_eq!(run(q(Some("g"))).await.len(), 1);
    let text = by(q(None), &|q| q.text = Some("hello".into()));
    assert_eq!(messages(&run(text).await), ["g says hello", "hello World"]);
    let case = by(q(None), &|q| q.text = Some("world".into()));
    assert_eq!(
        messages(&run(case).await),
        ["world error"],
        "text is case-sensitive"
    );
    let wild = by(q(None), &|q| q.text = Some("%".into()));
    assert!(run(wild).await.is_empty(), "text has no wildcards");
    let stream = by(q(Some("f")), &|q| q.stream = Some(LogStream::Platform));
    assert_eq!(
        messages(&run(stream).await),
        ["END RequestId: i1", "START RequestId: i1"]
    );
    let range = by(q(None), &|q| {
        q.since = Some(at(2));
        q.until = Some(at(4));
    });
    assert_eq!(messages(&run(range).await), ["g says hello", "world error"]);
    let inv = by(q(Some("f")), &|q| {
        q.invocation_id = Some("i1".into());
        q.stream = Some(LogStream::Stdout);
    });
    assert_eq!(messages(&run(inv).await), ["hello World"]);

    // Many lines at one timestamp: pages split inside it without losing or repeating.
    let burst: Vec<_> = (0..25)
        .map(|i| line("burst", "g", 9, out, &format!("b{i}")))
        .collect();
    s.insert_logs(&burst).await.unwrap();
    let paged = run(by(q(Some("g")), &|q| q.limit = 7)).await;
    let mut want: Vec<String> = (0..25).rev().map(|i| format!("b{i}")).collect();
    want.push("g says hello".into());
    assert_eq!(messages(&paged), want);
    let last = s
        .query_logs("a", &by(q(Some("g")), &|q| q.limit = 26))
        .await
        .unwrap();
    assert_eq!((last.items.len(), last.next_cursor), (26, None));

    assert_err(s.query_logs("nope", &q(None)).await, ErrorCode::AppNotFound);
    assert_err(
        s.query_logs("a", &q(Some("h"))).await,
        ErrorCode::FunctionNotFound,
    );
}

/// Tails: lines after a seq in write order, filtered, paged by `limit`, bounded
/// scans that continue from `scanned_to`; seqs never go back after deletes.
pub async fn log_tails(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    assert_eq!(s.last_log_seq().await.unwrap(), 0);
    let fq = LogQuery {
        function: Some("f".into()),
        ..LogQuery::default()
    };
    let empty = s.tail_logs("a", &fq, 0, 10).await.unwrap();
    assert_eq!((empty.lines.len(), empty.scanned_to), (0, 0));

    // Written later but captured earlier: the tail follows write order.
    s.insert_logs(&[log("i", "a", "f", 5, "one"), log("i", "a", "g", 5, "g1")])
        .await
        .unwrap();
    s.insert_logs(&[log("i", "a", "f", 1, "two"), log("i", "a", "f", 6, "three")])
        .await
        .unwrap();
    let last = s.last_log_seq().await.unwrap();
    let all = s.tail_logs("a", &fq, 0, 10).await.unwrap();
    assert_eq!(messages(&all.lines), ["one", "two", "three"]);
    assert_eq!(all.scanned_to, last);
    let first_two = s.tail_logs("a", &fq, 0, 2).await.unwrap();
    assert_eq!(messages(&first_two.lines), ["one", "two"]);
    assert_eq!(first_two.scanned_to, first_two.lines[1].seq);
    let rest = s
        .tail_logs("a", &fq, first_two.scanned_to, 2)
        .await
        .unwrap();
    assert_eq!(messages(&rest.lines), ["three"]);
    let whole_app = s.tail_logs("a", &LogQuery::default(), 0, 10).await.unwrap();
    assert_eq!(messages(&whole_app.lines), ["one", "g1", "two", "three"]);
    let text = LogQuery {
        text: Some("t".into()),
        ..fq.clone()
    };
    let t = s.tail_logs("a", &text, all.lines[0].seq, 10).await.unwrap();
    assert_eq!(messages(&t.lines), ["two", "three"]);
    let at_end = s.tail_logs("a", &fq, last, 10).await.unwrap();
    assert_eq!((at_end.lines.len(), at_end.scanned_to), (0, last));

    // A long run of another function's lines is scanned in bounded steps.
    let noise: Vec<_> = (0..25_000)
        .map(|_| log("n", "a", "g", 7, "noise"))
        .collect();
    s.insert_logs(&noise).await.unwrap();
    s.insert_logs(&[log("i", "a", "f", 8, "four")])
        .await
        .unwrap();
    let mut after = last;
    let mut found = Vec::new();
    let mut calls = 0;
    while after < s.last_log_seq().await.unwrap() {
        let step = s.tail_logs("a", &fq, after, 100).await.unwrap();
        assert!(step.scanned_to > after);
        found.extend(step.lines);
        after = step.scanned_to;
        calls += 1;
    }
    assert_eq!(messages(&found), ["four"]);
    assert!(calls >= 2, "a tail call looked at {calls} window(s) only");

    // Deleting the newest lines never lets a later line reuse their seqs.
    let newest = s.last_log_seq().await.unwrap();
    while s.purge_logs("a", at(100), u64::MAX, 10_000).await.unwrap() > 0 {}
    assert!(
        s.query_logs("a", &LogQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    s.insert_logs(&[log("i", "a", "f", 9, "five")])
        .await
        .unwrap();
    let after_purge = s.tail_logs("a", &fq, newest, 10).await.unwrap();
    assert_eq!(messages(&after_purge.lines), ["five"]);
    assert!(after_purge.lines[0].seq > newest);
}

/// Retention: by age (only the app's old lines and records), by size (oldest first,
/// just enough), in batches of at most `limit`, with the byte count kept in step.
pub async fn log_retention(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    app_with_function(s, "b", "f").await;
    let ten = "0123456789";
    let mut lines: Vec<_> = (0..30).map(|i| log("i", "a", "f", i, ten)).collect();
    lines.extend((0..10).map(|i| log("j", "a", "g", 100 + i, "ééééé")));
    lines.push(log("k", "b", "f", 0, ten));
    s.insert_logs(&lines).await.unwrap();
    assert_eq!(s.log_bytes("a").await.unwrap(), 30 * 10 + 10 * 10);
    assert_eq!(s.log_bytes("b").await.unwrap(), 10);
    assert_eq!(s.log_bytes("none").await.unwrap(), 0);

    // Age: lines before t=20 go, 8 per call.
    assert_eq!(s.purge_logs("a", at(20), u64::MAX, 8).await.unwrap(), 8);
    assert_eq!(s.log_bytes("a").await.unwrap(), 22 * 10 + 100);
    let mut total = 8;
    loop {
        let n = s.purge_logs("a", at(20), u64::MAX, 8).await.unwrap();
        assert!(n <= 8);
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 20);
    let left = s.query_logs("a", &everything()).await.unwrap().items;
    assert_eq!(left.len(), 20);
    assert_eq!(left.last().unwrap().timestamp, at(20));
    assert_eq!(
        s.log_bytes("b").await.unwrap(),
        10,
        "other apps are untouched"
    );

    // Size: 200 bytes left; keep at most 145 → the 6 oldest 10-byte lines go.
    assert_eq!(s.log_bytes("a").await.unwrap(), 200);
    assert_eq!(s.purge_logs("a", at(0), 145, 100).await.unwrap(), 6);
    assert_eq!(s.log_bytes("a").await.unwrap(), 140);
    let left = s.query_logs("a", &everything()).await.unwrap();
    assert_eq!(left.items.last().unwrap().timestamp, at(26));
    assert_eq!(s.purge_logs("a", at(0), 145, 100).await.unwrap(), 0);
    // Both limits at once stay within `limit`.
    assert_eq!(s.purge_logs("a", at(28), 0, 3).await.unwrap(), 3);

    // Records: by age, only the app's, in batches.
    let recs: Vec<_> = (0..12)
        .map(|i| invocation(&format!("r{i}"), "a", "f", i))
        .chain([invocation("other", "b", "f", 0)])
        .collect();
    s.insert_invocations(&recorded(&recs)).await.unwrap();
    assert_eq!(s.purge_invocations("a", at(10), 7).await.unwrap(), 7);
    assert_eq!(s.purge_invocations("a", at(10), 7).await.unwrap(), 3);
    assert_eq!(s.purge_invocations("a", at(10), 7).await.unwrap(), 0);
    let kept = s.list_invocations("a", "f", &query(None, 0)).await.unwrap();
    assert_eq!(ids(&kept), ["r11", "r10"]);
    assert!(s.get_invocation("other").await.is_ok());

    // Deleting a function or app drops its share of the count.
    s.delete_function("a", "g", true).await.unwrap();
    assert_eq!(s.log_bytes("a").await.unwrap(), 10);
    s.delete_app("b", true).await.unwrap();
    assert_eq!(s.log_bytes("b").await.unwrap(), 0);
    // ...and its records, whose ids can be recorded again.
    assert_err(
        s.get_invocation("other").await,
        ErrorCode::InvocationNotFound,
    );
    s.create_app(&app("b")).await.unwrap();
    s.create_function(&function("b", "f")).await.unwrap();
    let again = invocation("other", "b", "f", 1);
    s.insert_invocations(&[again.clone().into()]).await.unwrap();
    assert_eq!(s.get_invocation("other").await.unwrap(), again);
}
