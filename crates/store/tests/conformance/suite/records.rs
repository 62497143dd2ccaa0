//! Invocation records, log lines and settings.

use super::*;

/// Invocation records: batch insert, newest first, filter, limit, default limit,
/// idempotent ids, all fields round-trip.
pub async fn invocation_records(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    s.insert_invocations(&[]).await.unwrap();
    let mut failed = invocation("i2", "a", "f", 2);
    failed.version = None;
    failed.trigger = TriggerKind::Api;
    failed.status = InvocationStatus::TimedOut;
    failed.error_code = Some("function_timeout".to_string());
    failed.http_status = None;
    failed.duration_us = u64::from(u32::MAX) * 4;
    failed.cold_start = true;
    let batch = vec![
        invocation("i3", "a", "f", 3),
        invocation("i1", "a", "f", 1),
        failed.clone(),
        invocation("g1", "a", "g", 9),
        invocation("x1", "other-app", "f", 9),
        invocation("i4", "a", "f", 3), // same start as i3, inserted later: newer
    ];
    s.insert_invocations(&recorded(&batch)).await.unwrap();

    let all = s.list_invocations("a", "f", &query(None, 0)).await.unwrap();
    assert_eq!(ids(&all), ["i4", "i3", "i2", "i1"]);
    assert_eq!(all[2], failed);
    assert_eq!(all[3], invocation("i1", "a", "f", 1));
    let two = s.list_invocations("a", "f", &query(None, 2)).await.unwrap();
    assert_eq!(ids(&two), ["i4", "i3"]);
    let one = s
        .list_invocations("a", "f", &query(Some("i2"), 0))
        .await
        .unwrap();
    assert_eq!(one, vec![failed.clone()]);
    assert!(
        s.list_invocations("a", "f", &query(Some("g1"), 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_invocations("a", "f", &query(Some("zz"), 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&s.list_invocations("a", "g", &query(None, 0)).await.unwrap()),
        ["g1"]
    );
    assert_err(
        s.list_invocations("a", "h", &query(None, 0)).await,
        ErrorCode::FunctionNotFound,
    );
    assert_err(
        s.list_invocations("b", "f", &query(None, 0)).await,
        ErrorCode::AppNotFound,
    );

    // A retried batch (same ids) is not an error and adds nothing.
    s.insert_invocations(&recorded(&batch)).await.unwrap();
    assert_eq!(
        s.list_invocations("a", "f", &query(None, 0)).await.unwrap(),
        all
    );

    // Limit 0 means 100. The batch is larger than one multi-row statement.
    let many: Vec<_> = (0..600)
        .map(|i| invocation(&format!("m{i:03}"), "a", "f", 100 + i))
        .collect();
    s.insert_invocations(&recorded(&many)).await.unwrap();
    let page = s.list_invocations("a", "f", &query(None, 0)).await.unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page[0].id, "m599");
    assert_eq!(
        s.list_invocations("a", "f", &query(None, 1000))
            .await
            .unwrap()
            .len(),
        604
    );
}

/// Log lines: batch insert, newest first (insertion order breaks ties), filter, limit.
pub async fn log_lines(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    s.insert_logs(&[]).await.unwrap();
    let mut err = log("i1", "a", "f", 1, "oops");
    err.stream = LogStream::Stderr;
    let mut platform = log("i2", "a", "f", 2, "trap: unreachable");
    platform.stream = LogStream::Platform;
    s.insert_logs(&[
        log("i1", "a", "f", 1, "one"),
        log("i1", "a", "f", 1, "two"),
        err.clone(),
        log("g1", "a", "g", 5, "elsewhere"),
    ])
    .await
    .unwrap();
    s.insert_logs(&[log("i2", "a", "f", 2, "three"), platform.clone()])
        .await
        .unwrap();

    let all = s.list_logs("a", "f", &query(None, 0)).await.unwrap();
    assert_eq!(
        messages(&all),
        ["trap: unreachable", "three", "oops", "two", "one"]
    );
    // Stored lines come back as written, with their seq.
    assert!(all[0].seq > all[2].seq && all[2].seq > 0);
    platform.seq = all[0].seq;
    err.seq = all[2].seq;
    assert_eq!(all[0], platform);
    assert_eq!(all[2], err);
    let i1 = s.list_logs("a", "f", &query(Some("i1"), 0)).await.unwrap();
    assert_eq!(messages(&i1), ["oops", "two", "one"]);
    let i1 = s.list_logs("a", "f", &query(Some("i1"), 2)).await.unwrap();
    assert_eq!(messages(&i1), ["oops", "two"]);
    assert_eq!(
        messages(&s.list_logs("a", "f", &query(None, 1)).await.unwrap()),
        ["trap: unreachable"]
    );
    assert!(
        s.list_logs("a", "f", &query(Some("g1"), 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        messages(&s.list_logs("a", "g", &query(None, 0)).await.unwrap()),
        ["elsewhere"]
    );
    assert_err(
        s.list_logs("a", "h", &query(None, 0)).await,
        ErrorCode::FunctionNotFound,
    );

    let many: Vec<_> = (0..120)
        .map(|i| log("m", "a", "g", 10 + i, &format!("m{i}")))
        .collect();
    s.insert_logs(&many).await.unwrap();
    let page = s.list_logs("a", "g", &query(None, 0)).await.unwrap();
    assert_eq!((page.len(), page[0].message.as_str()), (100, "m119"));

    // One timestamp over more lines than one multi-row statement: insertion order holds.
    let burst: Vec<_> = (0..700)
        .map(|i| log("b", "a", "g", 500, &format!("b{i}")))
        .collect();
    s.insert_logs(&burst).await.unwrap();
    let got = s
        .list_logs("a", "g", &query(Some("b"), 1000))
        .await
        .unwrap();
    let want: Vec<String> = (0..700).rev().map(|i| format!("b{i}")).collect();
    assert_eq!(messages(&got), want);
}

/// Settings: absent, put, overwrite.
pub async fn settings(s: &dyn Store) {
    assert_eq!(s.get_setting("admin_token_hash").await.unwrap(), None);
    s.put_setting("admin_token_hash", "abc").await.unwrap();
    s.put_setting("other", "").await.unwrap();
    assert_eq!(
        s.get_setting("admin_token_hash").await.unwrap().as_deref(),
        Some("abc")
    );
    s.put_setting("admin_token_hash", "def").await.unwrap();
    assert_eq!(
        s.get_setting("admin_token_hash").await.unwrap().as_deref(),
        Some("def")
    );
    assert_eq!(s.get_setting("other").await.unwrap().as_deref(), Some(""));
}
