//! Log routes: the app-wide listing, filters and their validation, and the SSE follow
//! stream (event ids, replay after `Last-Event-ID`, new lines, keep-open).

use crate::common::*;
use arcus_core::record::{LogLine, LogStream};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

/// Invokes `logger` printing `n` lines; returns the invocation id once its REPORT line
/// is stored.
async fn logged(h: &Harness, n: u32) -> String {
    let r = h
        .send(req("GET", &format!("/fn/app/logger/?lines={n}")))
        .await;
    r.expect(200);
    let id = r.header(arcus_gateway::REQUEST_ID).unwrap().to_string();
    h.wait_logs("app", "logger", &id, |l| {
        l.last()
            .is_some_and(|l| l["message"].as_str().unwrap().starts_with("REPORT"))
    })
    .await;
    id
}

fn messages(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect()
}

/// Reads SSE frames until `count` more events with data have arrived; returns their
/// (id, data).
async fn read_events(body: &mut Body, count: usize) -> Vec<(u64, Value)> {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let events: Vec<(u64, Value)> = text
            .split("\n\n")
            .filter(|e| e.contains("data:"))
            .filter_map(|e| {
                let id = e.lines().find_map(|l| l.strip_prefix("id:"))?;
                let data = e.lines().find_map(|l| l.strip_prefix("data:"))?;
                Some((
                    id.trim().parse().ok()?,
                    serde_json::from_str(data.trim()).ok()?,
                ))
            })
            .collect();
        if events.len() >= count && text.ends_with("\n\n") {
            return events;
        }
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("{count} SSE events in time; got {text:?}"))
            .expect("stream open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_logs_filter_and_follow() {
    let h = Harness::new().await;
    h.deploy("app", "logger", "logger", json!({})).await;
    let first = logged(&h, 1).await;
    let second = logged(&h, 2).await;

    // App-wide, newest first; stream and text filters; cursor pages.
    let all = h.get_json("/api/v1/apps/app/logs?limit=100").await;
    assert_eq!(all["items"].as_array().unwrap().len(), (2 + 3) + (3 + 3));
    assert_eq!(all["items"][0]["invocation_id"], json!(second));
    assert!(all.get("next_cursor").is_none_or(Value::is_null));
    let platform = h
        .get_json(&format!(
            "/api/v1/apps/app/logs?stream=platform&invocation_id={first}"
        ))
        .await;
    let platform = messages(&platform);
    assert_eq!(platform.len(), 3);
    assert!(platform[0].starts_with("REPORT") && platform[2].starts_with("START"));
    let text = h.get_json("/api/v1/apps/app/logs?text=line%202").await;
    assert_eq!(messages(&text), ["stdout line 2"]);
    let page = h.get_json("/api/v1/apps/app/logs?limit=4").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = h
        .get_json(&format!("/api/v1/apps/app/logs?limit=100&cursor={cursor}"))
        .await;
    let mut joined = messages(&page);
    joined.extend(messages(&next));
    assert_eq!(joined, messages(&all));

    for bad in [
        "stream=stdin",
        "since=yesterday",
        "until=2024-13-01T00:00:00Z",
        "cursor=nope",
        "limit=0",
        "text=",
        "follow=maybe",
        "after=-1",
    ] {
        h.fails(
            req("GET", &format!("/api/v1/apps/app/logs?{bad}")).token(),
            400,
            "invalid_request",
        )
        .await;
    }
    h.fails(
        req("GET", "/api/v1/apps/nope/logs?follow=true").token(),
        404,
        "app_not_found",
    )
    .await;
    h.fails(
        req("GET", "/api/v1/apps/app/functions/nope/logs?follow=true").token(),
        404,
        "function_not_found",
    )
    .await;
    h.fails(
        req("GET", "/api/v1/apps/app/logs?follow=true")
            .token()
            .header("last-event-id", "x"),
        400,
        "invalid_request",
    )
    .await;

    // Follow after the first invocation's REPORT: the second's lines, then new ones.
    let mut oldest_first: Vec<Value> = all["items"].as_array().unwrap().clone();
    oldest_first.reverse();
    let after = oldest_first[4]["seq"].as_u64().unwrap();
    let sse = Request::get("/api/v1/apps/app/functions/logger/logs?follow=true")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("last-event-id", after.to_string())
        .body(Body::empty())
        .unwrap();
    let resp = h.app.clone().oneshot(sse).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = resp.into_body();
    let replayed = read_events(&mut body, 6).await;
    let want: Vec<u64> = oldest_first[5..]
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    let got: Vec<u64> = replayed.iter().map(|e| e.0).collect();
    assert_eq!(got, want);
    assert!(replayed.iter().all(|(seq, l)| l["seq"] == json!(seq)));
    let third = logged(&h, 1).await;
    let live = read_events(&mut body, 5).await;
    assert!(live.iter().all(|(_, l)| l["invocation_id"] == json!(third)));
    assert_eq!(live[0].0, replayed[5].0 + 1, "no line skipped");
    assert!(live.windows(2).all(|w| w[0].0 < w[1].0));
}

fn old_line(app: &str, f: &str, at: time::OffsetDateTime, message: &str) -> LogLine {
    LogLine {
        seq: 0,
        invocation_id: "old".into(),
        app: app.into(),
        function: f.into(),
        stream: LogStream::Stdout,
        timestamp: at,
        message: message.into(),
        trace_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_by_age_and_size_per_app() {
    let h = Harness::new().await;
    h.deploy("app", "logger", "logger", json!({})).await;
    h.deploy("small", "logger", "logger", json!({})).await;
    h.call_json(
        "PATCH",
        "/api/v1/apps/small",
        json!({"quotas": {"log_retention_days": 1, "log_retention_mb": 1}}),
    )
    .await
    .expect(200);
    h.fails(
        req("PATCH", "/api/v1/apps/small")
            .token()
            .json(&json!({"quotas": {"log_retention_days": 0}})),
        400,
        "invalid_request",
    )
    .await;
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let store = h.engine.store();
    let kib = "x".repeat(1024);
    let mut lines = vec![
        old_line("app", "logger", now - day * 8, "past the default 7 days"),
        old_line("app", "logger", now - day * 6, "within 7 days"),
        old_line("small", "logger", now - day * 2, "past 1 day"),
    ];
    // 1.5 MiB of recent lines in `small`: the oldest half MiB goes.
    lines.extend((0..1536).map(|i| {
        old_line(
            "small",
            "logger",
            now - time::Duration::seconds(3000 - i),
            &kib,
        )
    }));
    store.insert_logs(&lines).await.unwrap();
    let (deleted, _) = h.engine.enforce_retention(now).await.unwrap();
    assert_eq!(deleted, 1 + 1 + 512);
    let app = h.get_json("/api/v1/apps/app/logs?limit=1000").await;
    assert_eq!(messages(&app), ["within 7 days"]);
    assert_eq!(store.log_bytes("small").await.unwrap(), 1 << 20);
    assert_eq!(h.engine.enforce_retention(now).await.unwrap(), (0, 0));
}

/// The background task runs a pass every `retention_interval`: an old line of a
/// node with a short interval goes without anyone calling `enforce_retention`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_task_runs_at_the_configured_interval() {
    let dir = tempfile::tempdir().unwrap();
    let config = arcus_engine::EngineConfig {
        retention_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let engine = arcus_testkit::engine::engine_with(dir.path(), config).await;
    let store = engine.store();
    store
        .create_app(&arcus_core::model::App {
            name: "app".into(),
            description: String::new(),
            quotas: Default::default(),
            created_at: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let old = time::OffsetDateTime::now_utc() - time::Duration::days(8);
    store
        .insert_logs(&[old_line("app", "f", old, "eight days old")])
        .await
        .unwrap();
    assert_eq!(store.log_bytes("app").await.unwrap(), 14);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.log_bytes("app").await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no retention pass in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_minute_rollups_after_two_days_and_keeps_hour_ones() {
    use arcus_core::record::{InvocationRecord, InvocationStatus, TriggerKind};
    use arcus_core::stats::{Resolution, RollupQuery};
    let h = Harness::new().await;
    h.deploy("app", "logger", "logger", json!({})).await;
    let now = time::OffsetDateTime::now_utc();
    let record = |id: &str, age: time::Duration| InvocationRecord {
        id: id.into(),
        app: "app".into(),
        function: "logger".into(),
        version: Some(1),
        trigger: TriggerKind::Http,
        status: InvocationStatus::Succeeded,
        error_code: None,
        http_status: Some(200),
        duration_us: 1_000,
        cold_start: false,
        started_at: now - age,
        init_duration_us: None,
        max_memory_mb: None,
        memory_mb: 128,
        egress_bytes: 0,
        trace_id: None,
    };
    let store = h.engine.store();
    store
        .insert_invocations(&[
            record("three-days", time::Duration::days(3)).into(),
            record("one-day", time::Duration::days(1)).into(),
        ])
        .await
        .unwrap();
    h.engine.enforce_retention(now).await.unwrap();
    let rollups = |resolution| {
        let query = RollupQuery {
            function: None,
            resolution,
            from: (now - time::Duration::days(4)).unix_timestamp(),
            to: now.unix_timestamp(),
        };
        async move { store.rollups("app", &query).await.unwrap() }
    };
    let calls = |rows: Vec<arcus_core::stats::RollupRow>| -> u64 {
        rows.iter().map(|r| r.rollup.calls).sum()
    };
    assert_eq!(
        calls(rollups(Resolution::Minute).await),
        1,
        "only the day-old minute"
    );
    assert_eq!(calls(rollups(Resolution::Hour).await), 2, "hours are kept");
}
