//! End-to-end: python3, node and custom functions on a real node — the Lambda handler
//! contract, API Gateway mapping, warm reuse, errors, timeouts, crashes, memory limits,
//! log lines, and the sandbox seen from inside a function.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_core::model::Runtime;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, http, invoke_api, poll};
use serde_json::{Value, json};
use std::time::Duration;

fn py(name: &str, handler: &str) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        runtime: Some(Runtime::Python3),
        handler: Some(format!("app.{handler}")),
        ..Default::default()
    }
}

async fn logs_of(node: &Node, target: &str, invocation: &str) -> Vec<Value> {
    let (app, f) = target.split_once('/').unwrap();
    let url = format!(
        "{}/api/v1/apps/{app}/functions/{f}/logs?invocation_id={invocation}",
        node.url()
    );
    let v: Value = http()
        .get(url)
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// Polls until the invocation's `REPORT` line is stored; returns all its lines.
async fn wait_logs(node: &Node, target: &str, invocation: &str) -> Vec<String> {
    let lines = poll("the REPORT log line", Duration::from_secs(10), || async {
        let lines = logs_of(node, target, invocation).await;
        lines
            .iter()
            .any(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("REPORT"))
            })
            .then_some(lines)
    })
    .await;
    // The API lists newest first.
    lines
        .iter()
        .rev()
        .map(|l| {
            format!(
                "{}: {}",
                l["stream"].as_str().unwrap(),
                l["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_handlers_follow_the_lambda_contract() {
    let node = Node::start(bin());
    node.create_app("py").await;
    let code = fixtures::handler_zip("python");
    let mut spec = py("echo", "handler");
    spec.env = Some(
        [
            ("GREETING".to_string(), "hi".to_string()),
            ("SAY_AT_IMPORT".to_string(), "importing app".to_string()),
        ]
        .into(),
    );
    spec.memory_mb = Some(256);
    node.deploy_code("py", spec, code.clone()).await;

    let (status, headers, first) = invoke_api(&node, "py/echo", json!({"n": 1})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["event"], json!({"n": 1}));
    assert_eq!(first["count"], 1);
    assert_eq!(first["function_name"], "echo");
    assert_eq!(first["function_version"], "1");
    assert_eq!(first["memory_limit_in_mb"], "256");
    assert_eq!(first["greeting"], "hi");
    assert_eq!(
        first["invoked_function_arn"],
        "arn:aws:lambda:arcus-local:py:function:echo:live"
    );
    let remaining = first["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 20_000 && remaining <= 30_000, "{remaining}");
    let id = headers["x-arcus-request-id"].to_str().unwrap().to_string();
    assert_eq!(first["request_id"], id.as_str());

    // The same process serves the next call: module state survives.
    let (_, _, second) = invoke_api(&node, "py/echo", json!({"n": 2})).await;
    assert_eq!(second["count"], 2);
    let instances: Value = http()
        .get(format!(
            "{}/api/v1/apps/py/functions/echo/instances",
            node.url()
        ))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = instances["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{instances}");
    assert_eq!(
        (items[0]["version"].as_str(), items[0]["state"].as_str()),
        (Some("1"), Some("idle"))
    );
    assert!(items[0]["cold_start_ms"].as_u64().is_some(), "{instances}");

    let lines = wait_logs(&node, "py/echo", &id).await;
    let text = lines.join("\n");
    assert!(text.contains("stdout: hello from python 1"), "{text}");
    assert!(text.contains("stderr: a line on stderr"), "{text}");
    // What the module printed while the instance started comes before START, as in
    // Lambda; the handler's lines after it.
    assert_eq!(lines[0], "stdout: importing app", "{text}");
    assert!(
        lines[1].starts_with("platform: START RequestId: "),
        "{text}"
    );
    let report = lines.iter().find(|l| l.contains("REPORT")).unwrap();
    for field in [
        "Duration:",
        "Billed Duration:",
        "Memory Size: 256 MB",
        "Init Duration:",
    ] {
        assert!(report.contains(field), "{report}");
    }
    assert!(
        text.contains(&format!("platform: END RequestId: {id}")),
        "{text}"
    );
}

/// A pre-warmed instance (min_instances) keeps what it printed while starting for its
/// first invocation's log, before `START`; that call was warm, so no `Init Duration`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prewarmed_instance_logs_its_start_up_output_before_its_first_start() {
    use arcus_core::api::InstanceState;
    use arcus_core::scaling::Scaling;
    let node = Node::start(bin());
    node.create_app("warm").await;
    let mut spec = py("kept", "handler");
    spec.env = Some([("SAY_AT_IMPORT".to_string(), "importing app".to_string())].into());
    spec.scaling = Some(Scaling {
        min_instances: 1,
        ..Default::default()
    });
    node.deploy_code("warm", spec, fixtures::handler_zip("python"))
        .await;
    let client = node.client();
    poll(
        "the pre-warmed instance",
        Duration::from_secs(30),
        || async {
            let instances = client.list_instances("warm", "kept").await.unwrap();
            instances
                .iter()
                .any(|i| i.state == InstanceState::Idle)
                .then_some(())
        },
    )
    .await;

    let (status, headers, body) = invoke_api(&node, "warm/kept", json!({"n": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["count"], 1,
        "the pre-warmed instance served it: {body}"
    );
    let id = headers["x-arcus-request-id"].to_str().unwrap().to_string();
    let lines = wait_logs(&node, "warm/kept", &id).await;
    let text = lines.join("\n");
    assert_eq!(lines[0], "stdout: importing app", "{text}");
    assert_eq!(text.matches("importing app").count(), 1, "{text}");
    // In write order too (what `logs -f` follows), not only by timestamp.
    let mut by_seq = logs_of(&node, "warm/kept", &id).await;
    by_seq.sort_by_key(|l| l["seq"].as_u64().unwrap());
    let first: Vec<&str> = by_seq[..2]
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(first[0], "importing app", "{by_seq:?}");
    assert!(first[1].starts_with("START RequestId: "), "{by_seq:?}");
    let report = lines.iter().find(|l| l.contains("REPORT")).unwrap();
    assert!(!report.contains("Init Duration"), "{report}");

    // The next call on the same instance has no start-up output left to show.
    let (_, headers, body) = invoke_api(&node, "warm/kept", json!({"n": 2})).await;
    assert_eq!(body["count"], 2, "{body}");
    let id = headers["x-arcus-request-id"].to_str().unwrap().to_string();
    let lines = wait_logs(&node, "warm/kept", &id).await;
    assert!(lines[0].starts_with("platform: START"), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_events_and_responses_map_like_api_gateway() {
    let node = Node::start(bin());
    node.create_app("web").await;
    let code = fixtures::handler_zip("python");
    node.deploy_code("web", py("api", "http"), code.clone())
        .await;
    node.deploy_code("web", py("text", "text"), code).await;

    let resp = http()
        .post(node.fn_url("web/api", "items/7?a=1&a=2"))
        .header("cookie", "c=3")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-from"], "python");
    let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"path": "/items/7", "query": {"a": "1,2"}, "body": "payload", "method": "POST", "cookies": ["c=3"]})
    );

    let resp = http()
        .get(node.fn_url("web/text", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "plain text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_timeouts_crashes_and_memory() {
    let node = Node::start(bin());
    node.create_app("bad").await;
    let code = fixtures::handler_zip("python");
    node.deploy_code("bad", py("fail", "fail"), code.clone())
        .await;
    let mut slow = py("slow", "sleep");
    slow.timeout_ms = Some(1000);
    node.deploy_code("bad", slow, code.clone()).await;
    node.deploy_code("bad", py("crash", "crash"), code.clone())
        .await;
    let mut hog = py("hog", "hog");
    hog.memory_mb = Some(64);
    node.deploy_code("bad", hog, code.clone()).await;

    let resp = http()
        .get(node.fn_url("bad/fail", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-arcus-function-error"], "ValueError");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "function_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad input"),
        "{body}"
    );

    let (status, headers, body) = invoke_api(&node, "bad/slow", json!({"s": 30})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("function_timeout")),
        "{body}"
    );
    let id = headers["x-arcus-request-id"].to_str().unwrap().to_string();
    let text = wait_logs(&node, "bad/slow", &id).await.join("\n");
    assert!(text.contains("Task timed out after 1.00 seconds"), "{text}");
    // The killed instance is replaced: the next call works.
    let (status, _, body) = invoke_api(&node, "bad/slow", json!({"s": 0})).await;
    assert_eq!((status, body), (200, json!("slept")));

    let (status, _, body) = invoke_api(&node, "bad/crash", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("function_error")),
        "{body}"
    );
    let (status, _, body) = invoke_api(&node, "bad/hog", json!({"mb": 200})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("out_of_memory")),
        "{body}"
    );
    let (status, _, body) = invoke_api(&node, "bad/hog", json!({"mb": 8})).await;
    assert_eq!((status, body), (200, json!(8 * 1024 * 1024)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_custom_runtimes() {
    let node = Node::start(bin());
    node.create_app("rt").await;
    let js = fixtures::handler_zip("node");
    let nodejs = |name: &str, handler: &str| CreateFunction {
        name: name.into(),
        runtime: Some(Runtime::Node),
        handler: Some(format!("index.{handler}")),
        ..Default::default()
    };
    node.deploy_code("rt", nodejs("async", "handler"), js.clone())
        .await;
    node.deploy_code("rt", nodejs("cb", "callback"), js.clone())
        .await;
    node.deploy_code("rt", nodejs("web", "http"), js.clone())
        .await;
    node.deploy_code("rt", nodejs("fail", "fail"), js).await;
    let custom = CreateFunction {
        name: "custom".into(),
        runtime: Some(Runtime::Custom),
        ..Default::default()
    };
    node.deploy_code("rt", custom, fixtures::handler_zip("custom"))
        .await;

    let (status, _, body) = invoke_api(&node, "rt/async", json!({"k": "v"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["event"]["k"].as_str(), body["count"].as_i64()),
        (Some("v"), Some(1))
    );
    assert_eq!(body["functionName"], "async");
    let (_, _, body) = invoke_api(&node, "rt/async", json!({})).await;
    assert_eq!(body["count"], 2);
    let (_, _, body) = invoke_api(&node, "rt/cb", json!({"x": 1})).await;
    assert_eq!(body, json!({"viaCallback": true, "event": {"x": 1}}));
    let resp = http().put(node.fn_url("rt/web", "p")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "node saw PUT /p");
    let (status, headers, _) = invoke_api(&node, "rt/fail", json!({})).await;
    assert_eq!(
        (status, headers["x-arcus-function-error"].to_str().unwrap()),
        (502, "TypeError")
    );
    let (status, _, body) = invoke_api(&node, "rt/custom", json!({"c": 1})).await;
    assert_eq!(
        (status, body["custom"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    assert_eq!(body["event"], json!({"c": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_holds_from_inside_a_function() {
    let node = Node::start(bin());
    node.create_app("jail").await;
    node.deploy_code(
        "jail",
        py("probe", "probe"),
        fixtures::handler_zip("python"),
    )
    .await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = listener.local_addr().unwrap().port();
    let data_dir = node.data_dir().to_path_buf();
    let event = json!({
        "read": [data_dir.join("arcus.db"), data_dir.join("admin-token"), "/etc/shadow", "/root/.bashrc"],
        "write": ["/var/task/x", "/usr/x", "/etc/x", "/tmp/ok"],
        "connect": [node.addr().to_string(), format!("127.0.0.1:{host_port}")],
    });
    let (status, _, out) = invoke_api(&node, "jail/probe", event).await;
    assert_eq!(status, 200, "{out}");
    assert_ne!(out["uid"], 0, "{out}");
    for path in ["arcus.db", "admin-token"] {
        let key = data_dir.join(path).display().to_string();
        assert_eq!(out[&key], "FileNotFoundError", "{key}: {out}");
    }
    assert_eq!(out["/etc/shadow"], "FileNotFoundError", "{out}");
    assert_eq!(out["/root/.bashrc"], "FileNotFoundError", "{out}");
    for path in ["/var/task/x", "/usr/x", "/etc/x"] {
        assert_ne!(out[path], "writable", "{path}: {out}");
    }
    assert_eq!(out["/tmp/ok"], "writable", "{out}");
    assert_ne!(out[node.addr().to_string()], "connected", "{out}");
    assert_ne!(out[format!("127.0.0.1:{host_port}")], "connected", "{out}");
    let procs = out["procs"].as_array().unwrap();
    assert!(procs.len() <= 4, "the function sees other processes: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_zips_are_refused_at_upload() {
    let node = Node::start(bin());
    node.create_app("z").await;
    let client = node.client();
    client
        .create_function("z", &py("f", "handler"))
        .await
        .unwrap();
    let custom = CreateFunction {
        name: "c".into(),
        runtime: Some(Runtime::Custom),
        ..Default::default()
    };
    client.create_function("z", &custom).await.unwrap();

    let put = |f: &'static str, body: Vec<u8>| {
        let url = format!("{}/api/v1/apps/z/functions/{f}/code", node.url());
        let req = http()
            .put(url)
            .bearer_auth(node.token())
            .header("content-type", "application/zip")
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    assert_eq!(
        put("f", b"not a zip".to_vec()).await,
        (400, "invalid_code".into())
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.py"), "x = 1\n").unwrap();
    assert_eq!(
        put("f", fixtures::zip_dir(dir.path())).await,
        (400, "invalid_code".into())
    );
    std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").unwrap();
    assert_eq!(
        put("c", fixtures::zip_dir(dir.path())).await,
        (400, "invalid_code".into())
    );
    let wrong_type = http()
        .put(format!("{}/api/v1/apps/z/functions/f/code", node.url()))
        .bearer_auth(node.token())
        .header("content-type", "application/wasm")
        .body(fixtures::handler_zip("python"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    // Nothing was stored.
    let f = client.get_function("z", "f").await.unwrap();
    assert!(f.code.is_none());
}

/// The real AWS runtime interface client for Python (`awslambdaric` from PyPI, installed
/// from the zip's requirements.txt by the node at upload) runs as a custom bootstrap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awslambdaric_works_unmodified() {
    let node = Node::start(bin());
    node.create_app("ric").await;
    let zip = fixtures::handler_zip("awslambdaric");
    for (name, handler) in [("ok", "app.handler"), ("fail", "app.fail")] {
        let spec = CreateFunction {
            name: name.into(),
            runtime: Some(Runtime::Custom),
            handler: Some(handler.into()),
            memory_mb: Some(256),
            timeout_ms: Some(60_000),
            ..Default::default()
        };
        node.deploy_code("ric", spec, zip.clone()).await;
    }
    let (status, headers, body) = invoke_api(&node, "ric/ok", json!({"a": [1, 2]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client"], "awslambdaric");
    assert_eq!(body["event"], json!({"a": [1, 2]}));
    assert_eq!(body["function_name"], "ok");
    assert_eq!(
        body["arn"],
        "arn:aws:lambda:arcus-local:ric:function:ok:live"
    );
    assert_eq!(
        body["request_id"],
        headers["x-arcus-request-id"].to_str().unwrap()
    );
    let (status, headers, body) = invoke_api(&node, "ric/fail", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(headers["x-arcus-function-error"], "KeyError", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_failures_are_init_errors_and_do_not_affect_others() {
    let node = Node::start(bin());
    node.create_app("init").await;
    let code = fixtures::handler_zip("python");
    node.deploy_code("init", py("nofn", "does_not_exist"), code.clone())
        .await;
    node.deploy_code("init", py("fine", "text"), code).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.py"), "def handler(:\n").unwrap();
    let mut broken = py("syntax", "handler");
    broken.handler = Some("broken.handler".into());
    node.deploy_code("init", broken, fixtures::zip_dir(dir.path()))
        .await;
    let quits = tempfile::tempdir().unwrap();
    let bootstrap = quits.path().join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\necho giving up >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(
        &bootstrap,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let custom = CreateFunction {
        name: "quits".into(),
        runtime: Some(Runtime::Custom),
        ..Default::default()
    };
    node.deploy_code("init", custom, fixtures::zip_dir(quits.path()))
        .await;

    for (target, kind) in [
        ("init/nofn", "Runtime.HandlerNotFound"),
        ("init/syntax", "Runtime.UserCodeSyntaxError"),
        ("init/quits", "Runtime.ExitError"),
    ] {
        let (status, headers, body) = invoke_api(&node, target, json!({})).await;
        assert_eq!(status, 502, "{target}: {body}");
        assert_eq!(body["error"]["code"], "init_error", "{target}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(kind), "{target}: {message}");
        let id = headers["x-arcus-request-id"].to_str().unwrap().to_string();
        let logs = poll(
            "the init error's log lines",
            Duration::from_secs(10),
            || async {
                let lines = logs_of(&node, target, &id).await;
                (!lines.is_empty()).then_some(lines)
            },
        )
        .await;
        let text = format!("{logs:?}");
        assert!(text.contains("INIT_REPORT"), "{target}: {text}");
        if target == "init/quits" {
            assert!(text.contains("giving up"), "{text}");
        }
    }
    let (status, _, body) = invoke_api(&node, "init/fine", json!({})).await;
    assert_eq!((status, body), (200, json!("plain text")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_and_restart() {
    let node = Node::start(bin());
    node.create_app("keep").await;
    node.deploy_code(
        "keep",
        py("echo", "handler"),
        fixtures::handler_zip("python"),
    )
    .await;
    let draft = http()
        .post(node.fn_url("keep/echo@draft", ""))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(draft.status(), 200);
    let body: Value = draft.json().await.unwrap();
    assert_eq!(body["function_version"], "$LATEST");

    let node = node.restart();
    let (status, _, body) = invoke_api(&node, "keep/echo", json!({"after": "restart"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["event"]["after"].as_str(), body["count"].as_i64()),
        (Some("restart"), Some(1))
    );

    // Unpacked code lost (e.g. a new node on the same store): rebuilt from the blob.
    let mut node = node;
    node.sigterm();
    assert!(
        node.wait_exit(Duration::from_secs(45))
            .is_some_and(|s| s.success())
    );
    std::fs::remove_dir_all(node.data_dir().join("process/code")).unwrap();
    let node = node.restart();
    let (status, _, body) = invoke_api(&node, "keep/echo", json!({})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_queue_for_max_instances_and_throttle_past_the_timeout() {
    let node = Node::start(bin());
    node.create_app("burst").await;
    let code = fixtures::handler_zip("python");
    let mut spec = py("echo", "handler");
    spec.scaling = Some(arcus_core::scaling::Scaling {
        max_instances: 8,
        ..Default::default()
    });
    node.deploy_code("burst", spec, code.clone()).await;
    let calls = (0..50).map(|n| {
        let node = &node;
        async move { invoke_api(node, "burst/echo", json!({"n": n})).await }
    });
    let results = futures::future::join_all(calls).await;
    for (n, (status, _, body)) in results.iter().enumerate() {
        assert_eq!(*status, 200, "request {n}: {body}");
        assert_eq!(body["event"]["n"], n);
    }
    let instances: Vec<_> = results.iter().filter(|(_, _, b)| b["count"] == 1).collect();
    assert!(
        !instances.is_empty() && instances.len() <= 8,
        "{} instances started for max_instances 8",
        instances.len()
    );

    let mut one = py("slow", "sleep");
    one.scaling = Some(arcus_core::scaling::Scaling {
        max_instances: 1,
        queue_timeout_ms: 300,
        ..Default::default()
    });
    node.deploy_code("burst", one, code).await;
    let (a, b) = tokio::join!(invoke_api(&node, "burst/slow", json!({"s": 2})), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        invoke_api(&node, "burst/slow", json!({"s": 0})).await
    });
    assert_eq!(a.0, 200, "{}", a.2);
    assert_eq!(
        (b.0, b.2["error"]["code"].as_str()),
        (429, Some("throttled")),
        "{}",
        b.2
    );
    assert!(b.1.contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_starts_take_a_spare_runtime_unless_the_env_needs_its_own() {
    let node = Node::start(bin());
    node.create_app("sp").await;
    let code = fixtures::handler_zip("python");
    let mut spec = py("spare", "origin");
    spec.env = Some([("GREETING".to_string(), "hi".to_string())].into());
    node.deploy_code("sp", spec, code.clone()).await;
    // A variable the interpreter reads at start-up: a spare cannot honour it.
    let mut own = py("own", "origin");
    own.env = Some([("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string())].into());
    node.deploy_code("sp", own, code.clone()).await;
    let mut open = py("open", "origin");
    open.network = Some(arcus_core::model::Network::Outbound);
    node.deploy_code("sp", open, code).await;
    // The node keeps one spare per runtime, started in the background; give it time.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let (status, _, spare) = invoke_api(&node, "sp/spare", json!({})).await;
    assert_eq!(status, 200, "{spare}");
    assert!(
        spare["age_s"].as_f64().unwrap() > 1.5,
        "the first instance was started before its function was called: {spare}"
    );
    assert_eq!(spare["greeting"], "hi", "{spare}");
    assert_eq!(spare["spare_var"], Value::Null, "{spare}");
    assert_eq!(
        spare["files"],
        json!(["app.py"]),
        "only its own code: {spare}"
    );
    assert_eq!(spare["dont_write_bytecode"], 0);
    assert_eq!(
        spare["ifaces"],
        json!(["lo"]),
        "no network by default: {spare}"
    );

    // Outbound networking is added to a spare's namespace when it is assigned.
    let (status, _, open) = invoke_api(&node, "sp/open", json!({})).await;
    assert_eq!(status, 200, "{open}");
    assert_eq!(open["ifaces"], json!(["lo", "tap0"]), "{open}");

    let (status, _, own) = invoke_api(&node, "sp/own", json!({})).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["dont_write_bytecode"], 1, "{own}");
    assert!(own["age_s"].as_f64().unwrap() < 1.5, "{own}");
}
