//! Running functions through the router: `/fn/...` by alias, version and draft, canaries,
//! rollback, `POST .../invoke`, env snapshots, records and logs, traps, timeouts, memory.

use crate::common::{Harness, Resp, req};
use arcus_gateway::REQUEST_ID;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The header pairs of the echo fixture's answer, as a lookup.
fn echo_header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap())
}

fn version_of(r: &Resp) -> Option<u32> {
    r.header("x-arcus-version").map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_through_the_live_alias() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_function("shop", json!({"name": "hello"})).await;
    h.upload("shop", "hello", "hello").await;
    assert_eq!(h.publish("shop", "hello").await, 1);
    h.put_alias("shop", "hello", "live", json!({"version": 1}))
        .await;

    // Public: no token needed for a published version.
    for path in [
        "/fn/shop/hello/",
        "/fn/shop/hello",
        "/fn/shop/hello/any/path?q=1",
    ] {
        let r = h.send(req("GET", path)).await;
        r.expect(200);
        assert_eq!(r.text(), "hello, world\n", "{path}");
        assert_eq!(r.header("x-arcus-version"), Some("1"), "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        let id = r.header(REQUEST_ID).unwrap();
        assert_eq!(
            r.header("x-arcus-invocation-id"),
            Some(id),
            "the invocation id is the request id"
        );
    }
    let r = h
        .send(req("POST", "/fn/shop/hello@1/").body("ignored"))
        .await;
    r.expect(200);
    assert_eq!(
        (r.text().as_str(), version_of(&r)),
        ("hello, world\n", Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_draft_sees_the_stripped_request() {
    let h = Harness::new().await;
    h.create_app("app").await;
    h.create_function("app", json!({"name": "echo"})).await;
    h.upload("app", "echo", "echo").await;

    let r = h
        .send(
            req("PUT", "/fn/app/echo@draft/a/b?x=1")
                .token()
                .header("x-custom", "yes")
                .body("the body"),
        )
        .await;
    r.expect(200);
    assert_eq!(
        r.header("x-arcus-version"),
        None,
        "the draft has no version"
    );
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let echo = r.json();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/a/b");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["body"], "the body");
    assert_eq!(
        echo_header(&echo, "x-forwarded-prefix"),
        Some("/fn/app/echo@draft")
    );
    assert_eq!(echo_header(&echo, "x-custom"), Some("yes"));
    assert_eq!(
        echo_header(&echo, "x-arcus-invocation-id"),
        r.header(REQUEST_ID)
    );
    assert_eq!(
        echo_header(&echo, "authorization"),
        None,
        "the token must not reach the function"
    );

    // The root path and no query.
    let r = h.send(req("GET", "/fn/app/echo@draft").token()).await;
    r.expect(200);
    let echo = r.json();
    assert_eq!(
        (
            echo["method"].clone(),
            echo["path"].clone(),
            echo["query"].clone()
        ),
        (json!("GET"), json!("/"), json!(""))
    );
    assert_eq!(echo["body"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_addressed_by_number() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_function("shop", json!({"name": "f"})).await;
    h.upload("shop", "f", "hello").await;
    assert_eq!(h.publish("shop", "f").await, 1);
    h.upload("shop", "f", "echo").await;
    assert_eq!(h.publish("shop", "f").await, 2);

    let r = h.send(req("GET", "/fn/shop/f@1/")).await;
    r.expect(200);
    assert_eq!(
        (r.text().as_str(), version_of(&r)),
        ("hello, world\n", Some(1))
    );
    let r = h.send(req("GET", "/fn/shop/f@2/x/y")).await;
    r.expect(200);
    assert_eq!(version_of(&r), Some(2));
    let echo = r.json();
    assert_eq!(echo["path"], "/x/y");
    assert_eq!(
        echo_header(&echo, "x-forwarded-prefix"),
        Some("/fn/shop/f@2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_weights_route_all_or_nothing() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_function("shop", json!({"name": "f"})).await;
    h.upload("shop", "f", "hello").await;
    h.publish("shop", "f").await;
    h.upload("shop", "f", "echo").await;
    h.publish("shop", "f").await;

    h.put_alias(
        "shop",
        "f",
        "live",
        json!({"version": 1, "canary": {"version": 2, "weight": 100}}),
    )
    .await;
    for _ in 0..20 {
        let r = h.send(req("GET", "/fn/shop/f/")).await;
        r.expect(200);
        assert_eq!(
            version_of(&r),
            Some(2),
            "weight 100 always goes to the canary"
        );
        assert_eq!(r.json()["path"], "/");
    }
    h.put_alias(
        "shop",
        "f",
        "live",
        json!({"version": 1, "canary": {"version": 2, "weight": 0}}),
    )
    .await;
    for _ in 0..20 {
        let r = h.send(req("GET", "/fn/shop/f/")).await;
        r.expect(200);
        assert_eq!(version_of(&r), Some(1), "weight 0 never goes to the canary");
        assert_eq!(r.text(), "hello, world\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_switches_routing_at_once() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_function("shop", json!({"name": "f"})).await;
    h.upload("shop", "f", "hello").await;
    h.publish("shop", "f").await;
    h.upload("shop", "f", "echo").await;
    h.publish("shop", "f").await;
    let get = || h.send(req("GET", "/fn/shop/f/"));

    h.put_alias("shop", "f", "live", json!({"version": 1}))
        .await;
    assert_eq!(version_of(&get().await), Some(1));
    let moved = h
        .put_alias("shop", "f", "live", json!({"version": 2}))
        .await;
    assert_eq!(moved["previous"], json!({"version": 1}));
    let r = get().await;
    assert_eq!(version_of(&r), Some(2));
    assert_eq!(r.json()["method"], "GET");

    let r = h
        .call(
            "POST",
            "/api/v1/apps/shop/functions/f/aliases/live/rollback",
        )
        .await;
    r.expect(200);
    assert_eq!(
        r.json()["version"],
        1,
        "rollback answers with the restored target"
    );
    let r = get().await;
    assert_eq!(version_of(&r), Some(1));
    assert_eq!(r.text(), "hello, world\n");
    // Nothing further back: the history is used up.
    h.call(
        "POST",
        "/api/v1/apps/shop/functions/f/aliases/live/rollback",
    )
    .await
    .expect_error(409, "conflict");
    assert_eq!(version_of(&get().await), Some(1));
    // Deleting the alias stops unqualified routing at once.
    h.call("DELETE", "/api/v1/apps/shop/functions/f/aliases/live")
        .await
        .expect(204);
    get().await.expect_error(404, "not_deployed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_endpoint_delivers_the_event_as_post() {
    let h = Harness::new().await;
    h.deploy("app", "echo", "echo", json!({})).await;
    let event = json!({"order": 42, "items": ["a", "b"], "note": "hé"});
    let uri = "/api/v1/apps/app/functions/echo/invoke";

    for (query, version) in [
        ("", Some(1)),
        ("?qualifier=draft", None),
        ("?qualifier=1", Some(1)),
        ("?qualifier=live", Some(1)),
    ] {
        let r = h
            .call_json("POST", &format!("{uri}{query}"), event.clone())
            .await;
        r.expect(200);
        assert_eq!(version_of(&r), version, "{query}");
        let echo = r.json();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], "/");
        assert_eq!(echo["query"], "");
        assert_eq!(echo_header(&echo, "content-type"), Some("application/json"));
        assert_eq!(echo_header(&echo, "x-arcus-trigger"), Some("api"));
        assert_eq!(
            echo_header(&echo, "x-arcus-invocation-id"),
            r.header(REQUEST_ID)
        );
        let body: Value = serde_json::from_str(echo["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, event, "{query}");
    }
    // An empty body is the empty event.
    let r = h.call("POST", uri).await;
    r.expect(200);
    assert_eq!(r.json()["body"], "{}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_keep_the_env_they_were_published_with() {
    let h = Harness::new().await;
    h.deploy("app", "env", "env", json!({"env": {"GREETING": "one"}}))
        .await;
    let f = "/api/v1/apps/app/functions/env";
    let r = h
        .call_json(
            "PATCH",
            f,
            json!({"env": {"GREETING": "two", "EXTRA": "x"}}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json()["env"], json!({"GREETING": "two", "EXTRA": "x"}));

    let draft = h
        .send(req("GET", "/fn/app/env@draft/GREETING").token())
        .await;
    draft.expect(200);
    assert_eq!(draft.text(), "two");
    let v1 = h.send(req("GET", "/fn/app/env@1/GREETING")).await;
    v1.expect(200);
    assert_eq!(v1.text(), "one");
    let live = h.send(req("GET", "/fn/app/env/GREETING")).await;
    assert_eq!(live.text(), "one");
    let missing = h.send(req("GET", "/fn/app/env/EXTRA")).await;
    missing.expect(404);
    assert_eq!(missing.text(), "EXTRA is not set\n");
    assert_eq!(
        missing.header("x-arcus-error"),
        None,
        "a function's own 404 is not a platform error"
    );
    assert_eq!(
        h.get_json(&format!("{f}/versions/1")).await["config"]["env"],
        json!({"GREETING": "one"})
    );

    // The whole environment of v1: its own variables plus the platform's.
    let all = h.send(req("GET", "/fn/app/env@1/")).await.json();
    assert_eq!(all["GREETING"], "one");
    assert_eq!(all["ARCUS_APP"], "app");
    assert_eq!(all["ARCUS_FUNCTION"], "env");
    assert_eq!(all["ARCUS_FUNCTION_VERSION"], "1");
    assert!(all.get("EXTRA").is_none());

    // Publishing snapshots the new env.
    assert_eq!(h.publish("app", "env").await, 2);
    assert_eq!(
        h.send(req("GET", "/fn/app/env@2/GREETING")).await.text(),
        "two"
    );
    assert_eq!(
        h.send(req("GET", "/fn/app/env@1/GREETING")).await.text(),
        "one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_and_logs_are_recorded() {
    let h = Harness::new().await;
    h.deploy("app", "logger", "logger", json!({})).await;
    let r = h.send(req("GET", "/fn/app/logger/?lines=2")).await;
    r.expect(200);
    assert_eq!(r.text(), "logged 2");
    let id = r.header(REQUEST_ID).unwrap().to_string();

    let rec = h.wait_record("app", "logger", &id).await;
    assert_eq!(rec["id"], id);
    assert_eq!(
        (rec["app"].clone(), rec["function"].clone()),
        (json!("app"), json!("logger"))
    );
    assert_eq!(rec["status"], "succeeded");
    assert_eq!(rec["version"], 1);
    assert_eq!(rec["trigger"], "http");
    assert_eq!(rec["http_status"], 200);
    assert_eq!(rec["error_code"], Value::Null);

    let lines = h.wait_logs("app", "logger", &id, |l| l.len() >= 6).await;
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap(),
                l["message"].as_str().unwrap(),
            )
        })
        .collect();
    // The guest's lines between the platform's START and END/REPORT (Lambda format).
    let start = format!("START RequestId: {id} Version: 1");
    let end = format!("END RequestId: {id}");
    assert_eq!(
        got[..5],
        [
            ("platform", start.as_str()),
            ("stdout", "stdout line 1"),
            ("stdout", "stdout line 2"),
            ("stderr", "stderr line"),
            ("platform", end.as_str()),
        ]
    );
    let report = got[5].1;
    assert_eq!(got[5].0, "platform");
    assert!(
        report.starts_with(&format!("REPORT RequestId: {id}\tDuration: "))
            && report.contains(" ms\tBilled Duration: ")
            && report.contains(" ms\tMemory Size: 128 MB\tMax Memory Used: ")
            && report.ends_with(" MB"),
        "{report}"
    );
    assert!(lines.iter().all(|l| l["invocation_id"] == id));

    // A draft run through the API: version null, trigger api.
    let r = h
        .call_json(
            "POST",
            "/api/v1/apps/app/functions/logger/invoke?qualifier=draft",
            json!({}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.text(), "logged 3");
    let id2 = r.header(REQUEST_ID).unwrap().to_string();
    let rec = h.wait_record("app", "logger", &id2).await;
    assert_eq!(
        (rec["version"].clone(), rec["trigger"].clone()),
        (Value::Null, json!("api"))
    );
    assert_eq!(rec["status"], "succeeded");
    h.wait_logs("app", "logger", &id2, |l| {
        l.iter().filter(|l| l["stream"] == "stdout").count() == 3
    })
    .await;

    // The unfiltered lists hold both invocations, newest first, and honour `limit`.
    let all = h
        .get_json("/api/v1/apps/app/functions/logger/invocations")
        .await;
    let ids: Vec<Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!(id2), json!(id)]);
    let one = h
        .get_json("/api/v1/apps/app/functions/logger/invocations?limit=1")
        .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let logs = h
        .get_json("/api/v1/apps/app/functions/logger/logs?limit=2")
        .await;
    assert_eq!(logs["items"].as_array().unwrap().len(), 2);
    assert_eq!(logs["items"][0]["invocation_id"], id2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_a_function_error_with_its_stderr_logged() {
    let h = Harness::new().await;
    h.deploy("app", "trap", "trap", json!({})).await;
    let r = h.send(req("GET", "/fn/app/trap/")).await;
    r.expect_error(502, "function_error");
    let id = r.header(REQUEST_ID).unwrap().to_string();

    let rec = h.wait_record("app", "trap", &id).await;
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["error_code"], "function_error");
    assert_eq!(rec["version"], 1);
    let lines = h
        .wait_logs("app", "trap", &id, |l| {
            l.iter().any(|l| {
                l["message"]
                    .as_str()
                    .unwrap()
                    .contains("deliberate trap for testing")
            })
        })
        .await;
    let panic = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .contains("deliberate trap for testing")
        })
        .unwrap();
    assert_eq!(panic["stream"], "stderr");

    // The API invoke fails the same way.
    let r = h
        .call_json("POST", "/api/v1/apps/app/functions/trap/invoke", json!({}))
        .await;
    r.expect_error(502, "function_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_stop_blocking_and_spinning_guests() {
    let h = Harness::new().await;
    h.deploy("app", "sleep", "sleep", json!({"timeout_ms": 500}))
        .await;
    // Within the deadline.
    let r = h.send(req("GET", "/fn/app/sleep/sleep?ms=10")).await;
    r.expect(200);
    assert_eq!(r.text(), "slept 10");

    for path in ["/fn/app/sleep/sleep?ms=5000", "/fn/app/sleep/spin"] {
        let start = Instant::now();
        let r = h.send(req("GET", path)).await;
        let took = start.elapsed();
        r.expect_error(504, "function_timeout");
        assert!(
            took >= Duration::from_millis(450),
            "{path} stopped too early: {took:?}"
        );
        assert!(
            took < Duration::from_secs(4),
            "{path} was not stopped at its deadline: {took:?}"
        );
        let id = r.header(REQUEST_ID).unwrap().to_string();
        let rec = h.wait_record("app", "sleep", &id).await;
        assert_eq!(rec["status"], "timed_out", "{path}");
        assert_eq!(rec["error_code"], "function_timeout", "{path}");
    }
    // The function still serves after its instances were stopped.
    h.send(req("GET", "/fn/app/sleep/")).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_is_enforced() {
    let h = Harness::new().await;
    h.deploy("app", "memhog", "memhog", json!({"memory_mb": 32}))
        .await;
    let r = h.send(req("GET", "/fn/app/memhog/?mb=8")).await;
    r.expect(200);
    assert_eq!(r.text(), "allocated 8 MiB");
    let r = h.send(req("GET", "/fn/app/memhog/?mb=64")).await;
    r.expect_error(502, "function_error");
    let id = r.header(REQUEST_ID).unwrap().to_string();
    let rec = h.wait_record("app", "memhog", &id).await;
    assert_eq!(rec["status"], "failed");
    h.wait_logs("app", "memhog", &id, |l| {
        l.iter().any(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .contains("memory allocation of")
        })
    })
    .await;
    // Raising the limit in a new version lets the same request through.
    h.call_json(
        "PATCH",
        "/api/v1/apps/app/functions/memhog",
        json!({"memory_mb": 128}),
    )
    .await
    .expect(200);
    let v = h.publish("app", "memhog").await;
    let r = h
        .send(req("GET", &format!("/fn/app/memhog@{v}/?mb=64")))
        .await;
    r.expect(200);
    assert_eq!(r.text(), "allocated 64 MiB");
    // REPORT tells how much linear memory the guest was given.
    let id = r.header(REQUEST_ID).unwrap().to_string();
    let lines = h
        .wait_logs("app", "memhog", &id, |l| {
            l.iter()
                .any(|l| l["message"].as_str().unwrap().starts_with("REPORT"))
        })
        .await;
    let report = lines
        .iter()
        .filter_map(|l| l["message"].as_str())
        .find(|m| m.starts_with("REPORT"))
        .unwrap();
    let used = arcus_testkit::report_max_memory_mb(report);
    assert!((64..=128).contains(&used), "{report}");
    // The old version keeps its limit.
    h.send(req("GET", "/fn/app/memhog/?mb=64"))
        .await
        .expect_error(502, "function_error");
}

const SIX_MIB: usize = 6 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_over_six_mib_are_cut_and_recorded_as_failed() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.deploy("shop", "echo", "echo", json!({})).await;

    // Exactly the limit, streamed with no length: all of it arrives.
    let r = h
        .send(req(
            "GET",
            &format!("/fn/shop/echo/?stream_bytes={SIX_MIB}"),
        ))
        .await;
    r.expect(200);
    assert_eq!(r.body.len(), SIX_MIB);
    let id = r.header("x-arcus-invocation-id").unwrap().to_string();
    let record = h.wait_record("shop", "echo", &id).await;
    assert_eq!(record["status"], "succeeded", "{record}");

    // One byte more: the headers are out, so the stream is cut at the limit with an error,
    // and the record says why.
    let resp = h
        .send_streaming(req(
            "GET",
            &format!("/fn/shop/echo/?stream_bytes={}", SIX_MIB + 1),
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-arcus-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let read = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
    assert!(read.is_err(), "an over-limit stream must not end cleanly");
    let record = h.wait_record("shop", "echo", &id).await;
    assert_eq!(
        (&record["status"], &record["error_code"]),
        (&json!("failed"), &json!("response_too_large")),
        "{record}"
    );
    assert_eq!(record["egress_bytes"], json!(SIX_MIB));

    // A declared length over the limit is refused before anything is sent: 502 in the
    // API's error shape (the echo of a 6 MiB body is longer than 6 MiB).
    let big = vec![b'y'; SIX_MIB - 16];
    let r = h
        .send(req("POST", "/fn/shop/echo/").body(big.clone()))
        .await;
    r.expect_error(502, "response_too_large");
    let r = h
        .send(
            req("POST", "/api/v1/apps/shop/functions/echo/invoke")
                .token()
                .raw_json(format!("\"{}\"", String::from_utf8(big).unwrap())),
        )
        .await;
    r.expect_error(502, "response_too_large");
    // The records are written in batches: wait for all three.
    let start = Instant::now();
    loop {
        let failed = h
            .get_json("/api/v1/apps/shop/functions/echo/invocations?error_code=response_too_large")
            .await;
        let n = failed["items"].as_array().unwrap().len();
        if n == 3 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{failed}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
