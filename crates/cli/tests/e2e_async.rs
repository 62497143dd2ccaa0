//! End-to-end: async invocations through the real `arcus` binary — 202 once durable,
//! retries with exactly the allowed attempts, dead letters and redrive, destinations,
//! idempotency keys, limits, ordering and concurrency, forced deletion, and no event lost
//! across a SIGKILL of the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::{CreateFunction, PublishVersion, PutAlias, UpdateFunction};
use arcus_core::events::{AsyncConfig, Destination};
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, http, poll};
use futures::StreamExt as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

fn flaky(name: &str, async_config: AsyncConfig) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        async_config: Some(async_config),
        ..Default::default()
    }
}

/// A function with default settings.
fn plain(name: &str) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        ..Default::default()
    }
}

fn fast_retries(max_retries: u32) -> AsyncConfig {
    AsyncConfig {
        max_retries,
        retry_base_ms: 20,
        ..AsyncConfig::default()
    }
}

fn api(node: &Node, path: &str) -> String {
    format!("{}/api/v1/{path}", node.url())
}

/// `POST .../invoke?mode=async`: status and body.
async fn enqueue(node: &Node, target: &str, event: &Value, key: Option<&str>) -> (u16, Value) {
    let (app, f) = target.split_once('/').unwrap();
    let mut req = http()
        .post(api(
            node,
            &format!("apps/{app}/functions/{f}/invoke?mode=async"),
        ))
        .bearer_auth(node.token())
        .json(event);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn enqueue_ok(node: &Node, target: &str, event: &Value) -> String {
    let (status, body) = enqueue(node, target, event, None).await;
    assert_eq!(status, 202, "{body}");
    body["invocation_id"].as_str().unwrap().to_string()
}

async fn get_json(node: &Node, path: &str) -> (u16, Value) {
    let resp = http()
        .get(api(node, path))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn invocation(node: &Node, id: &str) -> Value {
    let (status, body) = get_json(node, &format!("invocations/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until an invocation reaches `status`.
async fn wait_status(node: &Node, id: &str, status: &str) -> Value {
    poll(
        &format!("{id} to be {status}"),
        Duration::from_secs(30),
        || async {
            let v = invocation(node, id).await;
            (v["status"] == status).then_some(v)
        },
    )
    .await
}

async fn async_list(node: &Node, target: &str, query: &str) -> Vec<Value> {
    let (app, f) = target.split_once('/').unwrap();
    let (status, body) = get_json(
        node,
        &format!("apps/{app}/functions/{f}/async-invocations?limit=1000{query}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn records(node: &Node, target: &str) -> Vec<Value> {
    let (app, f) = target.split_once('/').unwrap();
    let (_, body) = get_json(
        node,
        &format!("apps/{app}/functions/{f}/invocations?limit=1000"),
    )
    .await;
    body["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_fails_twice_then_succeeds_runs_exactly_three_times() {
    let node = Node::start(bin());
    node.create_app("retry").await;
    node.deploy(
        "retry",
        flaky("f", fast_retries(2)),
        &fixtures::path("flaky"),
    )
    .await;
    let id = enqueue_ok(&node, "retry/f", &json!({"fail_until": 2})).await;
    let done = wait_status(&node, &id, "succeeded").await;
    assert_eq!(done["attempts"], 3, "{done}");
    assert_eq!(done["result"]["attempt"], 3, "{done}");
    assert_eq!(done["trigger"], "async");
    // One record per attempt: the first keeps the id, retries are `<id>.<n>`.
    let recs = poll("three records", Duration::from_secs(10), || async {
        let r = records(&node, "retry/f").await;
        (r.len() >= 3).then_some(r)
    })
    .await;
    // (A wasm function that answers 500 ran fine as far as its record goes; the status
    // it answered is what made the attempt fail.)
    let mut by_id: HashMap<String, u64> = recs
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["http_status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(recs.len(), 3, "{recs:?}");
    assert_eq!(by_id.remove(&id), Some(500));
    assert_eq!(by_id.remove(&format!("{id}.2")), Some(500));
    assert_eq!(by_id.remove(&format!("{id}.3")), Some(200));
    // Nothing more runs afterwards.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(invocation(&node, &id).await["attempts"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_events_are_dead_lettered_reported_and_redriven_after_a_fix() {
    let node = Node::start(bin());
    node.create_app("dlq").await;
    node.deploy("dlq", plain("sink"), &fixtures::path("echo"))
        .await;
    let mut spec = flaky(
        "f",
        AsyncConfig {
            on_failure: Some(Destination::Function {
                function: "sink".into(),
                qualifier: None,
            }),
            ..fast_retries(1)
        },
    );
    spec.env = Some([("FLAKY_FAIL".to_string(), "always".to_string())].into());
    node.deploy("dlq", spec, &fixtures::path("flaky")).await;
    let id = enqueue_ok(&node, "dlq/f", &json!({"order": 7})).await;
    let dead = wait_status(&node, &id, "dead_lettered").await;
    assert_eq!(dead["attempts"], 2, "{dead}");
    assert_eq!(dead["error_code"], "function_error");
    let (_, dl) = get_json(&node, "apps/dlq/functions/f/dead-letters").await;
    assert_eq!(dl["items"][0]["id"], id.as_str());

    // The failure destination got a record, as an async event of `sink`.
    let delivered = poll(
        "the destination record",
        Duration::from_secs(20),
        || async {
            let items = async_list(&node, "dlq/sink", "&status=succeeded").await;
            items.into_iter().next()
        },
    )
    .await;
    assert_eq!(delivered["trigger"], "destination");
    let body: Value = serde_json::from_str(delivered["result"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["requestContext"]["requestId"], id.as_str());
    assert_eq!(body["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(body["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(body["requestPayload"], json!({"order": 7}));
    assert_eq!(body["responseContext"]["statusCode"], 500);

    // Fix the function (a new version without the failure switch), then redrive.
    let client = node.client();
    client
        .update_function(
            "dlq",
            "f",
            &UpdateFunction {
                env: Some(Default::default()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let v = client
        .publish_version("dlq", "f", &PublishVersion::default())
        .await
        .unwrap();
    client
        .put_alias(
            "dlq",
            "f",
            "live",
            &PutAlias {
                version: v.version,
                canary: None,
            },
        )
        .await
        .unwrap();
    let resp = http()
        .post(api(
            &node,
            &format!("apps/dlq/functions/f/dead-letters/{id}/redrive"),
        ))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["redriven"], 1);
    let done = wait_status(&node, &id, "succeeded").await;
    assert_eq!(
        done["attempts"], 1,
        "attempts start over on redrive: {done}"
    );
    // Redriving something that is not dead-lettered is a 404 and changes nothing.
    let again = http()
        .post(api(
            &node,
            &format!("apps/dlq/functions/f/dead-letters/{id}/redrive"),
        ))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_async_input_is_refused_and_idempotency_keys_return_the_first_id() {
    let node = Node::start(bin());
    node.create_app("in").await;
    node.deploy("in", flaky("f", fast_retries(0)), &fixtures::path("flaky"))
        .await;
    let (s1, a) = enqueue(&node, "in/f", &json!({"n": 1}), Some("order-42")).await;
    let (s2, b) = enqueue(&node, "in/f", &json!({"n": 2}), Some("order-42")).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(
        a["invocation_id"], b["invocation_id"],
        "same key, same invocation"
    );
    let (_, c) = enqueue(&node, "in/f", &json!({"n": 3}), Some("order-43")).await;
    assert_ne!(a["invocation_id"], c["invocation_id"]);

    let big = json!({"blob": "x".repeat(300 * 1024)});
    let (status, body) = enqueue(&node, "in/f", &big, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (status, body) = enqueue(&node, "in/nope", &json!({}), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("function_not_found"))
    );
    let resp = http()
        .post(api(&node, "apps/in/functions/f/invoke?mode=async"))
        .bearer_auth(node.token())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http()
        .post(api(&node, "apps/in/functions/f/invoke?mode=later"))
        .bearer_auth(node.token())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (status, _) = get_json(&node, "invocations/no-such-id").await;
    assert_eq!(status, 404);
    // Only the two accepted events exist.
    let all = async_list(&node, "in/f", "").await;
    assert_eq!(all.len(), 2, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_request_on_fn_is_queued_and_replayed_as_http() {
    let node = Node::start(bin());
    node.create_app("web").await;
    node.deploy("web", plain("echo"), &fixtures::path("echo"))
        .await;
    let resp = http()
        .put(node.fn_url("web/echo", "orders/9?x=1"))
        .header("x-arcus-invocation-type", "event")
        .header("x-custom", "kept")
        .body("hello later")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["invocation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_status(&node, &id, "succeeded").await;
    let r = &done["result"];
    assert_eq!(r["method"], "PUT", "{done}");
    assert_eq!(r["path"], "/orders/9");
    assert_eq!(r["query"], "x=1");
    assert_eq!(r["body"], "hello later");
    let headers = r["headers"].as_array().unwrap();
    assert!(
        headers.iter().any(|h| h[0] == "x-custom" && h[1] == "kept"),
        "{headers:?}"
    );
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "x-arcus-attempt" && h[1] == "1")
    );
    // Over the async limit: refused, nothing queued.
    let resp = http()
        .post(node.fn_url("web/echo", "big"))
        .header("x-arcus-invocation-type", "event")
        .body(vec![b'x'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(async_list(&node, "web/echo", "").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_functions_run_one_event_at_a_time_in_order_and_others_within_concurrency() {
    let node = Node::start(bin());
    node.create_app("ord").await;
    let ordered = AsyncConfig {
        ordered: true,
        ..fast_retries(0)
    };
    node.deploy("ord", flaky("fifo", ordered), &fixtures::path("flaky"))
        .await;
    let capped = AsyncConfig {
        concurrency: 2,
        ..fast_retries(0)
    };
    node.deploy("ord", flaky("two", capped), &fixtures::path("flaky"))
        .await;
    let mut fifo = Vec::new();
    for n in 0..12 {
        fifo.push(enqueue_ok(&node, "ord/fifo", &json!({"n": n, "sleep_ms": 5})).await);
    }
    let mut two = Vec::new();
    for n in 0..6 {
        two.push(enqueue_ok(&node, "ord/two", &json!({"n": n, "sleep_ms": 150})).await);
    }
    for id in fifo.iter().chain(&two) {
        wait_status(&node, id, "succeeded").await;
    }
    // Records: start time and duration of each run.
    let spans = |recs: Vec<Value>| -> HashMap<String, (i128, i128)> {
        recs.iter()
            .map(|r| {
                let start = time::OffsetDateTime::parse(
                    r["started_at"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap()
                .unix_timestamp_nanos()
                    / 1000;
                let end = start + i128::from(r["duration_us"].as_u64().unwrap());
                (r["id"].as_str().unwrap().to_string(), (start, end))
            })
            .collect()
    };
    let f = poll("fifo records", Duration::from_secs(10), || async {
        let s = spans(records(&node, "ord/fifo").await);
        (s.len() == 12).then_some(s)
    })
    .await;
    for pair in fifo.windows(2) {
        let (a, b) = (f[&pair[0]], f[&pair[1]]);
        assert!(
            a.1 <= b.0,
            "event {} started before {} ended",
            pair[1],
            pair[0]
        );
    }
    let t = poll("capped records", Duration::from_secs(10), || async {
        let s = spans(records(&node, "ord/two").await);
        (s.len() == 6).then_some(s)
    })
    .await;
    let intervals: Vec<_> = t.values().copied().collect();
    let max_overlap = intervals
        .iter()
        .map(|(s, _)| intervals.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap();
    assert!(
        max_overlap <= 2,
        "{max_overlap} ran at once with concurrency 2"
    );
    assert_eq!(max_overlap, 2, "the two slots were used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_dead_lettered_unrun_and_deleting_with_queued_events_needs_force() {
    let node = Node::start(bin());
    node.create_app("age").await;
    let cfg = AsyncConfig {
        ordered: true,
        max_event_age_s: 1,
        ..fast_retries(0)
    };
    node.deploy("age", flaky("f", cfg), &fixtures::path("flaky"))
        .await;
    let slow = enqueue_ok(&node, "age/f", &json!({"sleep_ms": 1500})).await;
    let stale = enqueue_ok(&node, "age/f", &json!({"n": 2})).await;
    wait_status(&node, &slow, "succeeded").await;
    let dead = wait_status(&node, &stale, "dead_lettered").await;
    assert_eq!(dead["error_code"], "event_age_exceeded");
    assert_eq!(dead["attempts"], 1);

    // A long event holds the FIFO; the rest stay queued.
    let cfg = AsyncConfig {
        ordered: true,
        ..fast_retries(0)
    };
    node.deploy("age", flaky("busy", cfg), &fixtures::path("flaky"))
        .await;
    enqueue_ok(&node, "age/busy", &json!({"sleep_ms": 3000})).await;
    let queued = enqueue_ok(&node, "age/busy", &json!({"n": 1})).await;
    let url = api(&node, "apps/age/functions/busy");
    let resp = http()
        .delete(&url)
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert_eq!(
        invocation(&node, &queued).await["status"],
        "queued",
        "a refused delete changes nothing"
    );
    let resp = http()
        .delete(format!("{url}?force=true"))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(invocation(&node, &queued).await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_survive_a_sigkill_of_the_server() {
    let node = Node::start(bin());
    node.create_app("crash").await;
    let cfg = AsyncConfig {
        concurrency: 8,
        ..fast_retries(2)
    };
    node.deploy("crash", flaky("f", cfg), &fixtures::path("flaky"))
        .await;
    let http = http();
    let url = api(&node, "apps/crash/functions/f/invoke?mode=async");
    let token = node.token().to_string();
    let calls = (0..1000).map(|n| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"n": n, "sleep_ms": 40}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["invocation_id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    });
    let ids: Vec<String> = futures::stream::iter(calls)
        .buffer_unordered(32)
        .collect()
        .await;
    // Kill once some, not all, have run.
    poll(
        "some events to succeed",
        Duration::from_secs(30),
        || async {
            let done = async_list(&node, "crash/f", "&status=succeeded")
                .await
                .len();
            (done >= 50).then_some(())
        },
    )
    .await;
    let before = async_list(&node, "crash/f", "&status=succeeded")
        .await
        .len();
    assert!(
        before < 1000,
        "everything ran before the kill; nothing was tested"
    );
    let node = node.kill9_and_restart();
    let finals = poll(
        "every event to finish",
        Duration::from_secs(120),
        || async {
            let all = async_list(&node, "crash/f", "").await;
            let finished = all
                .iter()
                .filter(|e| e["status"] == "succeeded" || e["status"] == "dead_lettered")
                .count();
            (finished == 1000).then_some(all)
        },
    )
    .await;
    let known: std::collections::HashSet<_> = finals
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        assert!(known.contains(id), "accepted event {id} was lost");
    }
    assert!(
        finals.iter().all(|e| e["status"] == "succeeded"),
        "a healthy function dead-lettered an event"
    );
    // Attempts beyond the first happen only for runs the kill interrupted (≤ the concurrency).
    let retried = finals
        .iter()
        .filter(|e| e["attempts"].as_u64().unwrap() > 1)
        .count();
    assert!(retried <= 8, "{retried} events ran more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_and_failure_records_reach_http_and_nats_destinations() {
    // An HTTP endpoint that keeps what it is sent.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await });
    // A NATS subscriber on a subject of its own.
    let subject = format!("arcus.test.dest.{}", std::process::id());
    let nats = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let mut sub = nats.subscribe(subject.clone()).await.unwrap();
    nats.flush().await.unwrap();

    let node = Node::start(bin());
    node.create_app("dest").await;
    let cfg = AsyncConfig {
        on_success: Some(Destination::Http {
            url: format!("http://{hook_addr}/hook"),
        }),
        on_failure: Some(Destination::Nats {
            url: "nats://127.0.0.1:4222".into(),
            subject: subject.clone(),
        }),
        ..fast_retries(0)
    };
    node.deploy("dest", flaky("f", cfg), &fixtures::path("flaky"))
        .await;
    let good = enqueue_ok(&node, "dest/f", &json!({"n": 1})).await;
    let bad = enqueue_ok(&node, "dest/f", &json!({"fail_until": 1})).await;

    let rec = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the HTTP destination got nothing")
        .unwrap();
    assert_eq!(rec["requestContext"]["requestId"], good.as_str());
    assert_eq!(rec["requestContext"]["condition"], "Success");
    assert_eq!(rec["responseContext"]["statusCode"], 200);
    assert_eq!(rec["responsePayload"]["attempt"], 1);
    assert_eq!(rec["requestPayload"], json!({"n": 1}));

    let msg = tokio::time::timeout(Duration::from_secs(20), futures::StreamExt::next(&mut sub))
        .await
        .expect("the NATS destination got nothing")
        .unwrap();
    let rec: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(rec["requestContext"]["requestId"], bad.as_str());
    assert_eq!(rec["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(rec["responseContext"]["functionError"], "function_error");
    assert_eq!(invocation(&node, &bad).await["status"], "dead_lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_invocations_and_async_attempts() {
    let node = Node::start(bin());
    node.create_app("m").await;
    node.deploy("m", flaky("f", fast_retries(1)), &fixtures::path("flaky"))
        .await;
    for _ in 0..3 {
        let r = http().get(node.fn_url("m/f", "x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let id = enqueue_ok(&node, "m/f", &json!({"fail_until": 1})).await;
    wait_status(&node, &id, "succeeded").await;
    let url = format!("{}/metrics", node.url());
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        401,
        "token required"
    );
    let value = common::metric_sample;
    let text = poll(
        "metrics of every invocation",
        Duration::from_secs(10),
        || async {
            let r = http()
                .get(&url)
                .bearer_auth(node.token())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let text = r.text().await.unwrap();
            let http_calls = value(
                &text,
                "arcus_invocations_total",
                &["function=\"f\"", "trigger=\"http\""],
            );
            (http_calls == Some(3.0)).then_some(text)
        },
    )
    .await;
    // Both async attempts (500, then 200) ran as invocations; the event ended succeeded.
    let async_calls = value(
        &text,
        "arcus_invocations_total",
        &["function=\"f\"", "trigger=\"async\""],
    );
    assert_eq!(async_calls, Some(2.0), "{text}");
    assert_eq!(
        value(&text, "arcus_async_attempts_total", &["status=\"failed\""]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "arcus_async_attempts_total",
            &["status=\"succeeded\""]
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "arcus_async_accepted_total", &[]), Some(1.0));
    assert_eq!(
        value(
            &text,
            "arcus_invocation_duration_seconds_count",
            &["function=\"f\""]
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(value(&text, "arcus_async_in_flight", &[]), Some(0.0));
}
