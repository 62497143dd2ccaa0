//! Invocation queries (filters, cursor pages) and rollups.

use super::*;
use arcus_core::stats::{Cursor, InvocationQuery, Resolution, RollupQuery};

fn q() -> InvocationQuery {
    InvocationQuery::default()
}

/// Every filter, app-wide and per function, and cursor pages that neither skip nor
/// repeat a record.
pub async fn invocation_queries(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    let mut batch = Vec::new();
    for i in 0..25 {
        let mut r = invocation(&format!("f{i:02}"), "a", "f", i / 2); // ties on time
        r.cold_start = i % 5 == 0;
        r.version = Some(if i < 10 { 1 } else { 2 });
        if i % 7 == 3 {
            r.status = InvocationStatus::Failed;
            r.error_code = Some("function_error".into());
        }
        batch.push(r);
    }
    let mut g = invocation("g1", "a", "g", 100);
    g.trigger = TriggerKind::Cron;
    g.status = InvocationStatus::TimedOut;
    g.error_code = Some("function_timeout".into());
    batch.push(g);
    batch.push(invocation("x1", "b", "f", 5));
    s.insert_invocations(&recorded(&batch)).await.unwrap();

    let all = s.query_invocations("a", &q()).await.unwrap();
    assert_eq!(all.items.len(), 26);
    assert_eq!(all.items[0].id, "g1");
    assert_eq!(all.next_cursor, None);

    // Cursor pages of 10 over function f: 10, 10, 5, in the full order.
    let mut seen = Vec::new();
    let mut cursor = None;
    for expected in [10, 10, 5] {
        let page = s
            .query_invocations(
                "a",
                &InvocationQuery {
                    function: Some("f".into()),
                    cursor,
                    limit: 10,
                    ..q()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), expected);
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        cursor = page
            .next_cursor
            .as_deref()
            .map(|c| Cursor::parse(c).unwrap());
    }
    assert_eq!(cursor, None);
    let full: Vec<String> = all.items[1..].iter().map(|r| r.id.clone()).collect();
    assert_eq!(seen, full);
    // Newest first, later insertion first on ties.
    assert_eq!(&seen[..3], ["f24", "f23", "f22"]);

    let count = |query: InvocationQuery| async move {
        s.query_invocations("a", &query).await.unwrap().items.len()
    };
    assert_eq!(
        count(InvocationQuery {
            version: Some(1),
            ..q()
        })
        .await,
        10
    );
    assert_eq!(
        count(InvocationQuery {
            cold_start: Some(true),
            ..q()
        })
        .await,
        5
    );
    assert_eq!(
        count(InvocationQuery {
            status: Some(InvocationStatus::Failed),
            ..q()
        })
        .await,
        4
    );
    assert_eq!(
        count(InvocationQuery {
            error_code: Some("function_timeout".into()),
            ..q()
        })
        .await,
        1
    );
    assert_eq!(
        count(InvocationQuery {
            trigger: Some(TriggerKind::Cron),
            ..q()
        })
        .await,
        1
    );
    assert_eq!(
        count(InvocationQuery {
            since: Some(at(10)),
            ..q()
        })
        .await,
        6
    );
    assert_eq!(
        count(InvocationQuery {
            since: Some(at(2)),
            until: Some(at(4)),
            ..q()
        })
        .await,
        4
    );
    assert_eq!(
        count(InvocationQuery {
            id: Some("x1".into()),
            ..q()
        })
        .await,
        0
    );
    assert_err(
        s.query_invocations(
            "a",
            &InvocationQuery {
                function: Some("h".into()),
                ..q()
            },
        )
        .await,
        ErrorCode::FunctionNotFound,
    );
    assert_err(
        s.query_invocations("nope", &q()).await,
        ErrorCode::AppNotFound,
    );
    assert!(Cursor::parse("12").is_err() && Cursor::parse("a.b").is_err());
}

/// Rollups sum exactly what was inserted, per minute and hour, and a re-sent batch is
/// not counted twice.
pub async fn invocation_rollups(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    let base = (at(0).unix_timestamp() / 3600 + 1) * 3600; // an hour boundary
    let t = |secs: i64| OffsetDateTime::from_unix_timestamp(base + secs).unwrap();
    let mut batch = Vec::new();
    for (i, (secs, duration_us, memory)) in [
        (0, 1_500, 128),
        (30, 2_000, 128),
        (61, 10, 256),
        (3_700, 999_001, 512),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = invocation(&format!("r{i}"), "a", "f", 0);
        r.started_at = t(secs);
        r.duration_us = duration_us;
        r.memory_mb = memory;
        r.egress_bytes = 100;
        r.cold_start = i == 0;
        if i == 1 {
            r.status = InvocationStatus::Failed;
            r.error_code = Some("function_error".into());
        }
        batch.push(r);
    }
    let mut g = invocation("g", "a", "g", 0);
    g.started_at = t(5);
    batch.push(g);
    s.insert_invocations(&recorded(&batch)).await.unwrap();
    s.insert_invocations(&recorded(&batch[..2])).await.unwrap(); // a retried batch

    let read = |function: Option<&str>, resolution| {
        let query = RollupQuery {
            function: function.map(str::to_string),
            resolution,
            from: base,
            to: base + 7200,
        };
        async move { s.rollups("a", &query).await.unwrap() }
    };
    let minutes = read(Some("f"), Resolution::Minute).await;
    let buckets: Vec<i64> = minutes.iter().map(|r| r.bucket - base).collect();
    assert_eq!(buckets, [0, 60, 3660]);
    let first = &minutes[0].rollup;
    assert_eq!((first.calls, first.errors, first.cold_starts), (2, 1, 1));
    assert_eq!(first.duration_us, 3_500);
    assert_eq!(first.billed_ms, 4);
    assert_eq!(first.mib_ms, 128 * 2 + 128 * 2);
    assert_eq!(first.error_codes.get("function_error"), Some(&1));
    assert_eq!(first.histogram.0.values().sum::<u64>(), 2);

    let hours = read(None, Resolution::Hour).await;
    let summary: Vec<(i64, &str, u64)> = hours
        .iter()
        .map(|r| (r.bucket - base, r.function.as_str(), r.rollup.calls))
        .collect();
    assert_eq!(summary, [(0, "f", 3), (0, "g", 1), (3600, "f", 1)]);
    assert_eq!(hours[2].rollup.mib_ms, 512 * 1000);
    assert_eq!(hours[2].rollup.egress_bytes, 100);
    let records = s.query_invocations("a", &q()).await.unwrap().items;
    let from_records: u64 = records.iter().map(InvocationRecord::mib_ms).sum();
    let from_rollups: u64 = hours.iter().map(|r| r.rollup.mib_ms).sum();
    assert_eq!(from_records, from_rollups);

    // A batch mixing stored and new records: only the new ones are stored and counted.
    let mut late = invocation("late", "a", "g", 0);
    late.started_at = t(7);
    late.duration_us = 4_000;
    let mut later = late.clone();
    later.id = "later".into();
    s.insert_invocations(&recorded(&[
        batch[0].clone(),
        late,
        batch[4].clone(),
        later,
    ]))
    .await
    .unwrap();
    let g_hour = read(Some("g"), Resolution::Hour).await;
    assert_eq!(g_hour.len(), 1);
    assert_eq!(g_hour[0].rollup.calls, 3);
    assert_eq!(g_hour[0].rollup.duration_us, 8_000 + batch[4].duration_us);
    let f_hours = read(Some("f"), Resolution::Hour).await;
    assert_eq!(f_hours.iter().map(|r| r.rollup.calls).sum::<u64>(), 4);
    let ids: Vec<String> = s
        .query_invocations("a", &q())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), 7);
    assert!(ids.contains(&"late".to_string()) && ids.contains(&"later".to_string()));
    assert_err(
        s.rollups(
            "nope",
            &RollupQuery {
                function: None,
                resolution: Resolution::Hour,
                from: 0,
                to: 1,
            },
        )
        .await,
        ErrorCode::AppNotFound,
    );

    // Retention: minute rollups before base+60 go (one per call here), hour ones stay.
    let cutoff = t(60);
    assert_eq!(
        s.purge_rollups(Resolution::Minute, cutoff, 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.purge_rollups(Resolution::Minute, cutoff, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.purge_rollups(Resolution::Minute, cutoff, 10)
            .await
            .unwrap(),
        0
    );
    let left: Vec<i64> = read(None, Resolution::Minute)
        .await
        .iter()
        .map(|r| r.bucket - base)
        .collect();
    assert_eq!(left, [60, 3660]);
    assert_eq!(read(None, Resolution::Hour).await.len(), 3);
}
