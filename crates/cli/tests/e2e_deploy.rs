//! End-to-end: deploying through the `arcus` CLI against a real `arcus serve`, canary
//! routing and rollback, and bad input rejected by the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, failed, get, http, ok, ok_json, poll};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_deploy_invoke_and_observe() {
    let node = Node::start(bin());
    let http = http();

    assert_eq!(
        ok(&node.cli(["app", "create", "demo"])),
        "created app demo\n"
    );

    let hello = fixtures::path("hello");
    let out = node.cli(["deploy".as_ref(), "demo/hello".as_ref(), hello.as_os_str()]);
    let url = format!("{}/fn/demo/hello/", node.url());
    assert_eq!(ok(&out), format!("deployed demo/hello version 1\n{url}\n"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("created function demo/hello"),
        "{out:?}"
    );

    // The printed URL answers, as curl would see it.
    let r = get(&http, &url).await;
    assert_eq!(
        (r.status, r.body.as_str(), r.version),
        (200, "hello, world\n", Some(1))
    );

    assert_eq!(ok(&node.cli(["invoke", "demo/hello"])), "hello, world\n");
    let inv = ok_json(&node.cli(["invoke", "demo/hello@1", "--json"]));
    assert_eq!(inv["status"], 200);
    assert_eq!(inv["version"], 1);
    assert_eq!(inv["body"], "hello, world\n");

    // versions: table names the live alias; JSON lists version 1.
    let table = ok(&node.cli(["versions", "demo/hello"]));
    let row = table.lines().nth(1).expect("a version row");
    assert!(row.starts_with("1 ") && row.contains("live"), "{table}");
    let versions = ok_json(&node.cli(["versions", "demo/hello", "--json"]));
    let items = versions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{versions}");
    assert_eq!(items[0]["version"], 1);

    // fn list.
    assert!(
        ok(&node.cli(["fn", "list", "demo"]))
            .lines()
            .any(|l| l.starts_with("hello "))
    );
    let fns = ok_json(&node.cli(["fn", "list", "demo", "--json"]));
    let names: Vec<&str> = fns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello"]);

    // invocations: the /fn GET and the two invokes, all succeeded (records are written
    // off the hot path, so poll).
    let records = poll(
        "3 invocation records of demo/hello",
        Duration::from_secs(10),
        || async {
            let v = ok_json(&node.cli(["invocations", "demo/hello", "--json"]));
            let items = v["items"].as_array().unwrap().clone();
            (items.len() >= 3).then_some(items)
        },
    )
    .await;
    assert_eq!(records.len(), 3, "{records:?}");
    for r in &records {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["http_status"], 200, "{r}");
        assert_eq!(r["version"], 1, "{r}");
    }
    let triggers: Vec<&str> = records
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(
        triggers.iter().filter(|t| **t == "http").count(),
        1,
        "{triggers:?}"
    );
    assert_eq!(
        triggers.iter().filter(|t| **t == "api").count(),
        2,
        "{triggers:?}"
    );
    let table = ok(&node.cli(["invocations", "demo/hello"]));
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.lines().skip(1).all(|l| l.contains("succeeded")),
        "{table}"
    );

    // logs: hello prints nothing, so only the platform's START/END/REPORT of each call.
    let text = poll(
        "hello's platform lines",
        Duration::from_secs(10),
        || async {
            let text = ok(&node.cli(["logs", "demo/hello"]));
            (text.lines().count() >= 3 * 3).then_some(text)
        },
    )
    .await;
    assert_eq!(text.lines().count(), 3 * 3, "{text}");
    assert!(text.lines().all(|l| l.contains(" platform ")), "{text}");
    let logs = ok_json(&node.cli(["logs", "demo/hello", "--json", "--stream", "stdout"]));
    assert_eq!(logs["items"].as_array().map(Vec::len), Some(0), "{logs}");

    // A function that prints: its lines come back through `arcus logs`.
    let logger = fixtures::path("logger");
    ok(&node.cli([
        "deploy".as_ref(),
        "demo/logger".as_ref(),
        logger.as_os_str(),
    ]));
    let r = get(&http, &node.fn_url("demo/logger", "?lines=2")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "logged 2"));
    let text = poll("logger's log lines", Duration::from_secs(10), || async {
        let text = ok(&node.cli(["logs", "demo/logger"]));
        (text.lines().count() >= 6).then_some(text)
    })
    .await;
    let messages: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
        .map(|m| match m.as_str() {
            "stdout line 1" => "1",
            "stdout line 2" => "2",
            "stderr line" => "e",
            m if m.starts_with("START RequestId: ") => "START",
            m if m.starts_with("END RequestId: ") => "END",
            m if m.starts_with("REPORT RequestId: ") => "REPORT",
            _ => "?",
        })
        .collect();
    assert_eq!(
        messages,
        ["START", "1", "2", "e", "END", "REPORT"],
        "{text}"
    );
    let logs = ok_json(&node.cli(["logs", "demo/logger", "--json"]));
    let streams: Vec<&str> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["stream"].as_str().unwrap())
        .collect();
    assert_eq!(
        streams.iter().filter(|s| **s == "stdout").count(),
        2,
        "{logs}"
    );
    assert_eq!(
        streams.iter().filter(|s| **s == "stderr").count(),
        1,
        "{logs}"
    );
}

/// Sends `n` unqualified requests to the env fixture and returns how many ran version 2,
/// checking that every body matches the version that served it.
async fn count_v2(node: &Node, http: &reqwest::Client, n: usize) -> usize {
    let url = node.fn_url("demo/env", "GREETING");
    let mut v2 = 0;
    for _ in 0..n {
        let r = get(http, &url).await;
        assert_eq!(r.status, 200, "{r:?}");
        match (r.version, r.body.as_str()) {
            (Some(1), "v1") => {}
            (Some(2), "v2") => v2 += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    v2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_split_and_rollback() {
    let node = Node::start(bin());
    let http = http();
    ok(&node.cli(["app", "create", "demo"]));
    let env = fixtures::path("env");
    let deploy = |value: &str| {
        node.cli([
            "deploy".as_ref(),
            "demo/env".as_ref(),
            env.as_os_str(),
            "--env".as_ref(),
            format!("GREETING={value}").as_ref(),
        ])
    };
    assert!(ok(&deploy("v1")).starts_with("deployed demo/env version 1\n"));
    assert_eq!(count_v2(&node, &http, 5).await, 0);
    assert!(ok(&deploy("v2")).starts_with("deployed demo/env version 2\n"));
    assert_eq!(count_v2(&node, &http, 5).await, 5);
    // Versions are immutable: version 1 still sees its own environment.
    let r = get(&http, &node.fn_url("demo/env@1", "GREETING")).await;
    assert_eq!((r.status, r.body.as_str(), r.version), (200, "v1", Some(1)));

    let out = node.cli([
        "alias", "set", "demo/env", "live", "1", "--canary", "2", "--weight", "50",
    ]);
    assert_eq!(
        ok(&out),
        "alias live of demo/env -> version 1 (canary 2 at 50%)\n"
    );
    let v2 = count_v2(&node, &http, 400).await;
    assert!(
        (160..=240).contains(&v2),
        "version 2 served {v2} of 400 requests; expected 40–60 %"
    );

    // Rollback pops the alias history: first to live→2 (what deploy set), then to 1.
    let out = node.cli(["rollback", "demo/env"]);
    assert_eq!(
        ok(&out),
        "alias live of demo/env -> version 2 (was 1 (canary 2 at 50%))\n"
    );
    assert_eq!(count_v2(&node, &http, 20).await, 20);
    let alias = ok_json(&node.cli(["rollback", "demo/env", "--json"]));
    assert_eq!(alias["version"], 1, "{alias}");
    assert!(alias["canary"].is_null(), "{alias}");
    assert_eq!(count_v2(&node, &http, 20).await, 0);
    // Nothing left to roll back to.
    let err = failed(&node.cli(["rollback", "demo/env"]));
    assert!(err.contains("conflict"), "{err}");
    assert_eq!(count_v2(&node, &http, 5).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_by_the_binary() {
    let node = Node::start(bin());
    ok(&node.cli(["app", "create", "demo"]));

    // A text file is not a component: non-zero exit, invalid_code, nothing deployed.
    let text = node.data_dir().join("not-a-wasm-file.txt");
    std::fs::write(&text, "this is not WebAssembly\n").unwrap();
    let out = node.cli(["deploy".as_ref(), "demo/x".as_ref(), text.as_os_str()]);
    let err = failed(&out);
    assert!(err.contains("error: invalid_code: "), "{err}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let versions = ok_json(&node.cli(["versions", "demo/x", "--json"]));
    assert_eq!(
        versions["items"].as_array().map(Vec::len),
        Some(0),
        "{versions}"
    );
    let r = get(&http(), &node.fn_url("demo/x", "")).await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("not_deployed")),
        "{r:?}"
    );

    // Deploying into a missing app says how to fix it.
    let hello = fixtures::path("hello");
    let err = failed(&node.cli(["deploy".as_ref(), "nope/x".as_ref(), hello.as_os_str()]));
    assert!(err.contains("app_not_found"), "{err}");
    assert!(err.contains("arcus app create nope"), "{err}");

    // A wrong token: 401 from the server, reported as unauthorized with a hint.
    let out = node
        .command(["app", "list"])
        .env("ARCUS_TOKEN", "not-the-admin-token")
        .output()
        .unwrap();
    let err = failed(&out);
    assert!(err.contains("error: unauthorized"), "{err}");
    assert!(err.contains("hint: "), "{err}");
    // And the right one works.
    assert!(
        ok(&node.cli(["app", "list"]))
            .lines()
            .any(|l| l.starts_with("demo "))
    );
}
