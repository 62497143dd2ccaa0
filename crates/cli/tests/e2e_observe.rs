//! End-to-end: invocation records with filters and cursor pages, stats from rollups and
//! metered usage through the real `arcus` binary, reconciled against the records, plus
//! the CLI's `invocations`, `stats` and `usage`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{api_get as get, api_get_ok as get_ok, bin, http, metric_sample as sample};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn plain(name: &str) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        ..Default::default()
    }
}

/// Polls `path` every 200 ms (10 s at most) until `done` holds for its body.
async fn wait_for(node: &Node, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = get_ok(node, path).await;
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never matched: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap()
}

/// 5 echo calls (bodies of known sizes) and 3 trapping calls.
async fn seed(node: &Node) -> u64 {
    node.create_app("obs").await;
    node.deploy("obs", plain("echo"), &fixtures::path("echo"))
        .await;
    node.deploy("obs", plain("boom"), &fixtures::path("trap"))
        .await;
    let client = http();
    let mut received = 0;
    for i in 0..5 {
        let resp = client
            .post(node.fn_url("obs/echo", "/x"))
            .body("y".repeat(100 * i))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        received += resp.bytes().await.unwrap().len() as u64;
    }
    for _ in 0..3 {
        let resp = client
            .get(node.fn_url("obs/boom", "/"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_server_error(), "{}", resp.status());
    }
    received
}

#[tokio::test]
async fn records_stats_and_usage_agree() {
    let node = Node::start(bin());
    let received = seed(&node).await;
    let all = wait_for(&node, "apps/obs/invocations", |p| items(p).len() == 8).await;
    let records = items(&all);

    // Filters.
    let count = |q: &'static str| {
        let node = &node;
        async move { items(&get_ok(node, &format!("apps/obs/invocations?{q}")).await).len() }
    };
    assert_eq!(count("function=boom").await, 3);
    assert_eq!(count("status=failed").await, 3);
    assert_eq!(count("status=failed&function=echo").await, 0);
    assert_eq!(count("error_code=function_error").await, 3);
    assert_eq!(count("trigger=http").await, 8);
    assert_eq!(count("trigger=cron").await, 0);
    // Publishing pre-warms, so a cold start is possible but not certain here.
    let cold = records.iter().filter(|r| r["cold_start"] == true).count();
    assert_eq!(count("cold_start=true").await, cold);
    assert_eq!(count("cold_start=false").await, 8 - cold);
    assert_eq!(count("version=1").await, 8);
    assert_eq!(count("version=2").await, 0);
    assert_eq!(count("until=2000-01-01T00:00:00Z").await, 0);
    assert_eq!(count("since=2000-01-01T00:00:00Z").await, 8);
    let per_fn = get_ok(
        &node,
        "apps/obs/functions/echo/invocations?status=succeeded",
    )
    .await;
    assert_eq!(items(&per_fn).len(), 5);

    // Cursor pages of 3: 3, 3, 2, every record once, newest first.
    let mut ids = Vec::new();
    let mut path = "apps/obs/invocations?limit=3".to_string();
    for expected in [3, 3, 2] {
        let page = get_ok(&node, &path).await;
        assert_eq!(items(&page).len(), expected, "{page}");
        ids.extend(
            items(&page)
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("apps/obs/invocations?limit=3&cursor={c}"),
            None => assert_eq!(expected, 2, "only the last page has no cursor"),
        }
    }
    let all_ids: Vec<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, all_ids);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 8);

    // Egress is what the client received.
    let egress: u64 = records
        .iter()
        .map(|r| r["egress_bytes"].as_u64().unwrap())
        .sum();
    let echo_egress: u64 = records
        .iter()
        .filter(|r| r["function"] == "echo")
        .map(|r| r["egress_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(echo_egress, received);

    // Stats.
    let stats = get_ok(&node, "apps/obs/stats?window=1h").await;
    assert_eq!(stats["calls"], 8, "{stats}");
    assert_eq!(stats["errors"], 3);
    assert_eq!(stats["success_rate"], 0.625);
    assert_eq!(stats["cold_start_rate"], cold as f64 / 8.0);
    assert_eq!(stats["errors_by_code"]["function_error"], 3);
    assert_eq!(stats["resolution"], "minute");
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    assert_eq!(
        buckets
            .iter()
            .map(|b| b["calls"].as_u64().unwrap())
            .sum::<u64>(),
        8
    );
    let max_ms = records
        .iter()
        .map(|r| r["duration_us"].as_u64().unwrap())
        .max()
        .unwrap() as f64
        / 1000.0;
    let p99 = stats["p99_ms"].as_f64().unwrap();
    assert!(
        p99 >= max_ms && p99 <= max_ms * 1.1 + 0.011,
        "p99 {p99} vs max {max_ms}"
    );
    let echo = get_ok(&node, "apps/obs/functions/echo/stats?window=7d").await;
    assert_eq!(
        (echo["calls"].as_u64(), echo["errors"].as_u64()),
        (Some(5), Some(0))
    );
    assert_eq!(echo["success_rate"], 1.0);
    assert_eq!(echo["buckets"].as_array().unwrap().len(), 168);
    let day = get_ok(&node, "apps/obs/stats?window=24h").await;
    assert_eq!(day["calls"], 8);

    // Usage reconciles with the records.
    let usage = get_ok(&node, "apps/obs/usage").await;
    let total = &usage["total"];
    assert_eq!(total["invocations"], 8, "{usage}");
    let mib_ms: u64 = records
        .iter()
        .map(|r| {
            r["memory_mb"].as_u64().unwrap() * r["duration_us"].as_u64().unwrap().div_ceil(1000)
        })
        .sum();
    assert!(mib_ms > 0);
    assert_eq!(total["mib_ms"], mib_ms);
    assert_eq!(
        total["gb_seconds"],
        ((mib_ms as f64 / 1_024_000.0) * 1e6).round() / 1e6
    );
    let compute: u64 = records
        .iter()
        .map(|r| r["duration_us"].as_u64().unwrap())
        .sum();
    assert_eq!(total["compute_us"], compute);
    assert_eq!(total["egress_bytes"], egress);
    let fns: HashSet<&str> = usage["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["function"].as_str().unwrap())
        .collect();
    assert_eq!(fns, HashSet::from(["echo", "boom"]));
}

#[tokio::test]
async fn bad_queries_are_refused_and_the_cli_reads_the_same() {
    let node = Node::start(bin());
    seed(&node).await;
    wait_for(&node, "apps/obs/invocations", |p| items(p).len() == 8).await;
    for (path, status, code) in [
        ("apps/obs/invocations?status=bogus", 400, "invalid_request"),
        ("apps/obs/invocations?trigger=bogus", 400, "invalid_request"),
        (
            "apps/obs/invocations?since=yesterday",
            400,
            "invalid_request",
        ),
        ("apps/obs/invocations?cursor=zzz", 400, "invalid_request"),
        ("apps/obs/invocations?limit=0", 400, "invalid_request"),
        (
            "apps/obs/invocations?function=nope",
            404,
            "function_not_found",
        ),
        ("apps/nope/invocations", 404, "app_not_found"),
        ("apps/obs/stats?window=2h", 400, "invalid_request"),
        ("apps/obs/functions/nope/stats", 404, "function_not_found"),
        (
            "apps/obs/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "invalid_request",
        ),
        (
            "apps/obs/usage?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "invalid_request",
        ),
    ] {
        let (got, body) = get(&node, path).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }

    let out = node.cli(["invocations", "obs", "--status", "failed", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(items(&page).len(), 3);
    assert!(items(&page).iter().all(|r| r["function"] == "boom"));
    let out = node.cli([
        "invocations",
        "obs/echo",
        "--limit",
        "2",
        "--fn-version",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("next cursor: "),
        "{text}"
    );
    let out = node.cli(["stats", "obs/echo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("calls 5  errors 0  success 100.00 %"),
        "{text}"
    );
    let out = node.cli(["usage", "obs", "--json"]);
    let usage: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(usage["total"]["invocations"], 8);
    let out = node.cli(["invocations", "obs", "--status", "bogus"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid_request"),
        "{out:?}"
    );
}

async fn scrape(node: &Node) -> String {
    let r = http()
        .get(format!("{}/metrics", node.url()))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// `/metrics` beyond the counters: version labels only for aliased versions, gauges of
/// in-flight invocations and busy components sampled while a call runs, throttles, cold
/// starts with their init duration, the async queue's depth and age, trigger lag, and
/// store and compile timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_versions_gauges_throttles_queue_and_timings() {
    use arcus_core::api::PublishVersion;
    use arcus_core::events::AsyncConfig;
    use arcus_core::scaling::Scaling;
    let node = Node::start(bin());
    node.create_app("met").await;
    let one_slot = Scaling {
        max_instances: 1,
        concurrency_per_instance: Some(1),
        queue_timeout_ms: 100,
        ..Default::default()
    };
    let spec = CreateFunction {
        scaling: Some(one_slot),
        ..plain("nap")
    };
    node.deploy("met", spec, &fixtures::path("sleep")).await;
    let client = node.client();
    let v2 = client
        .publish_version("met", "nap", &PublishVersion::default())
        .await
        .unwrap();
    let h = http();
    for target in [
        "met/nap",
        "met/nap@live",
        &format!("met/nap@{}", v2.version),
    ] {
        let r = h
            .get(node.fn_url(target, "sleep?ms=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{target}");
    }
    // While one call holds the only slot: it is in flight, its component busy, and a
    // second call is throttled.
    let busy = h.get(node.fn_url("met/nap", "sleep?ms=1500")).send();
    let during = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let text = scrape(&node).await;
        let late = h
            .get(node.fn_url("met/nap", "sleep?ms=1"))
            .send()
            .await
            .unwrap();
        (text, late.status())
    };
    let (busy, (text, late)) = tokio::join!(busy, during);
    assert_eq!(busy.unwrap().status(), 200);
    assert_eq!(late, 429);
    let labels = ["app=\"met\"", "function=\"nap\""];
    assert_eq!(
        sample(&text, "arcus_in_flight", &labels),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "arcus_wasm_components", &["state=\"busy\""]),
        Some(1.0)
    );

    // A draft that was never pre-warmed starts cold.
    client.create_function("met", &plain("cold")).await.unwrap();
    let echo = std::fs::read(fixtures::path("echo")).unwrap();
    client.upload_code("met", "cold", echo).await.unwrap();
    let r = h
        .get(node.fn_url("met/cold@draft", "/"))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An async event whose retry is a minute away stays in the queue as `failed`.
    let retry_later = AsyncConfig {
        max_retries: 1,
        retry_base_ms: 60_000,
        ..AsyncConfig::default()
    };
    let spec = CreateFunction {
        async_config: Some(retry_later),
        ..plain("flaky")
    };
    node.deploy("met", spec, &fixtures::path("flaky")).await;
    let r = h
        .post(format!(
            "{}/api/v1/apps/met/functions/flaky/invoke?mode=async",
            node.url()
        ))
        .bearer_auth(node.token())
        .json(&serde_json::json!({"fail_until": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&node).await;
        let failed = ["function=\"flaky\"", "status=\"failed\""];
        if sample(&text, "arcus_queue_depth", &failed) == Some(1.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "the event never failed: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ok = |version: &str| {
        let v = format!("version=\"{version}\"");
        sample(
            &text,
            "arcus_invocations_total",
            &["function=\"nap\"", &v, "status=\"succeeded\""],
        )
    };
    assert_eq!(ok("1"), Some(3.0), "{text}");
    assert_eq!(ok("other"), Some(1.0), "v2 has no alias: {text}");
    assert_eq!(
        sample(&text, "arcus_invocations_total", &["version=\"2\""]),
        None
    );
    assert_eq!(
        sample(
            &text,
            "arcus_throttles_total",
            &["function=\"nap\"", "code=\"throttled\""]
        ),
        Some(1.0)
    );
    let cold = ["function=\"cold\""];
    assert_eq!(sample(&text, "arcus_cold_starts_total", &cold), Some(1.0));
    assert_eq!(
        sample(&text, "arcus_init_duration_seconds_count", &cold),
        Some(1.0)
    );
    let count = |name: &str, labels: &[&str]| sample(&text, name, labels).unwrap_or(0.0);
    assert!(count("arcus_queue_oldest_age_seconds", &["function=\"flaky\""]) > 0.0);
    assert_eq!(
        count("arcus_trigger_lag_seconds_count", &["trigger=\"async\""]),
        1.0
    );
    let compile = "arcus_compile_duration_seconds_count";
    assert!(
        count(compile, &["runtime=\"wasm\"", "phase=\"build\""]) >= 3.0,
        "{text}"
    );
    assert!(
        count(compile, &["runtime=\"wasm\"", "phase=\"load\""]) >= 3.0,
        "{text}"
    );
    let store = "arcus_store_operation_duration_seconds_count";
    for op in [
        "insert_invocations",
        "enqueue_events",
        "claim_events",
        "load_route",
    ] {
        assert!(
            count(store, &[&format!("op=\"{op}\"")]) >= 1.0,
            "{op}: {text}"
        );
    }
    assert_eq!(sample(&text, "arcus_in_flight", &labels), Some(0.0));
}

/// `arcus top` shows the busy function first with its request rate and latency while
/// load runs, and ends after `--iterations` refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_shows_the_busiest_function_first() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let node = Node::start(bin());
    node.create_app("top").await;
    node.deploy("top", plain("busy"), &fixtures::path("echo"))
        .await;
    node.deploy("top", plain("quiet"), &fixtures::path("echo"))
        .await;
    let r = http()
        .get(node.fn_url("top/quiet", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (url, stop) = (node.fn_url("top/busy", "/"), stop.clone());
        tokio::spawn(async move {
            let client = http();
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && sent < 20_000 && Instant::now() < deadline {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                sent += 1;
            }
            sent
        })
    };
    let cmd = node.command(["top", "top", "--iterations", "2", "--interval-ms", "500"]);
    let out = tokio::task::spawn_blocking(move || { cmd }.output().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(load.await.unwrap() > 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let frames: Vec<&str> = text
        .split("arcus top  ")
        .filter(|f| !f.is_empty())
        .collect();
    assert_eq!(frames.len(), 2, "{text}");
    let last: Vec<&str> = frames[1].lines().collect();
    assert!(last[0].starts_with("2 functions"), "{text}");
    assert!(last[1].starts_with("FUNCTION"), "{text}");
    let busy: Vec<&str> = last[2].split_whitespace().collect();
    assert_eq!(busy[0], "top/busy", "{text}");
    assert!(busy[1].parse::<f64>().unwrap() > 0.0, "{text}");
    assert_ne!(busy[2], "-", "a p99 while it ran: {text}");
    assert!(last[3].starts_with("top/quiet"), "{text}");
    let out = node.cli(["top", "--interval-ms", "5"]);
    assert!(!out.status.success(), "an interval below 100 ms is refused");
}

/// `[observability] records = false, metrics = false`: invocations still run, nothing is
/// recorded or logged, and `/metrics` is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observability_can_be_switched_off() {
    let config = "[observability]\nrecords = false\nmetrics = false\n";
    let node = Node::start_with_config(bin(), config);
    node.create_app("quiet").await;
    node.deploy("quiet", plain("echo"), &fixtures::path("echo"))
        .await;
    for _ in 0..3 {
        let r = http()
            .get(node.fn_url("quiet/echo", "/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http()
        .get(format!("{}/metrics", node.url()))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Past the recorder's 50 ms batch window several times over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(items(&get_ok(&node, "apps/quiet/invocations").await).is_empty());
    assert!(items(&get_ok(&node, "apps/quiet/logs").await).is_empty());
}
