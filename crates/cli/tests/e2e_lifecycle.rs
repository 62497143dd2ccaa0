//! End-to-end: the life of a node process — a restart on the same data dir keeps every
//! answer without recompiling, and SIGTERM lets an in-flight request finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_testkit::fixtures;
use arcus_testkit::node::{Node, unread_bytes};
use common::{bin, get, http, ok, poll};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Name → (size, mtime) of every file in `dir`.
fn files(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (meta.len(), meta.modified().unwrap()),
            )
        })
        .collect()
}

/// The `bytes=N` field of every `compiling component` log line.
fn compiled_sizes(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter(|l| l.contains("compiling component"))
        .map(|l| {
            let n = l.split("bytes=").nth(1).expect("a bytes field");
            n.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// The answers that must survive a restart.
async fn answers(node: &Node, http: &reqwest::Client) -> Vec<(u16, Option<u32>, String)> {
    let mut out = Vec::new();
    for (target, path) in [
        ("demo/hello", ""),
        ("demo/env", "GREETING"),
        ("demo/env@1", "GREETING"),
        ("demo/env@2", "GREETING"),
        ("demo/echo", "a/b?x=1"),
    ] {
        let r = get(http, &node.fn_url(target, path)).await;
        let body = if target == "demo/echo" {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            format!("{} {} {}", v["method"], v["path"], v["query"])
        } else {
            r.body
        };
        out.push((r.status, r.version, body));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_state_and_does_not_recompile() {
    let mut node = Node::start(bin());
    let http = http();
    ok(&node.cli(["app", "create", "demo"]));
    let (hello, env, echo) = (
        fixtures::path("hello"),
        fixtures::path("env"),
        fixtures::path("echo"),
    );
    ok(&node.cli(["deploy".as_ref(), "demo/hello".as_ref(), hello.as_os_str()]));
    ok(&node.cli(["deploy".as_ref(), "demo/echo".as_ref(), echo.as_os_str()]));
    for v in ["v1", "v2"] {
        let kv = format!("GREETING={v}");
        ok(&node.cli([
            "deploy".as_ref(),
            "demo/env".as_ref(),
            env.as_os_str(),
            "--env".as_ref(),
            kv.as_ref(),
        ]));
    }
    let before = answers(&node, &http).await;
    assert_eq!(
        before,
        [
            (200, Some(1), "hello, world\n".to_string()),
            (200, Some(2), "v2".to_string()),
            (200, Some(1), "v1".to_string()),
            (200, Some(2), "v2".to_string()),
            (200, Some(1), r#""GET" "/a/b" "x=1""#.to_string()),
        ]
    );
    let token = node.token().to_string();
    let artefacts = node.data_dir().join("artefacts");

    node.sigterm();
    let status = node
        .wait_exit(Duration::from_secs(30))
        .expect("node exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let first = node.stderr_text();
    // The first node compiled each distinct component exactly once (env's code was
    // uploaded twice; the second upload reused the cached artefact).
    let mut sizes = compiled_sizes(&first);
    sizes.sort_unstable();
    let mut want: Vec<u64> = [&hello, &env, &echo]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    want.sort_unstable();
    assert_eq!(sizes, want, "compile lines of the first node:\n{first}");
    let cached = files(&artefacts);
    assert_eq!(cached.len(), 3, "{cached:?}");

    let node = node.restart();
    assert_eq!(node.token(), token, "the admin token survives a restart");
    assert_eq!(answers(&node, &http).await, before);
    // Versions, aliases and records written before the restart are all there.
    let client = node.client();
    assert_eq!(client.list_versions("demo", "env").await.unwrap().len(), 2);
    let live = client.get_alias("demo", "env", "live").await.unwrap();
    assert_eq!((live.target.version, live.target.canary), (2, None));
    let records = client.list_invocations("demo", "env", None).await.unwrap();
    assert!(
        records.len() >= 3,
        "records flushed at shutdown are kept: {records:?}"
    );

    // No recompilation: artefacts were loaded, not rebuilt or rewritten.
    let second = node.stderr_text();
    assert!(
        !second.contains("compiling component"),
        "the restarted node compiled:\n{second}"
    );
    assert_eq!(files(&artefacts), cached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let mut node = Node::start(bin());
    node.create_app("demo").await;
    let slow = arcus_core::api::CreateFunction {
        name: "slow".into(),
        timeout_ms: Some(10_000),
        ..Default::default()
    };
    node.deploy("demo", slow, &fixtures::path("sleep")).await;
    // Warm it so the request below spends its time in the guest, not loading.
    let r = get(&http(), &node.fn_url("demo/slow", "sleep?ms=1")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "slept 1"));

    // Send the slow request on a raw connection, and wait until the server has read it
    // (its socket's receive queue is empty): from then on it is in flight.
    let addr = node.addr();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        "GET /fn/demo/slow/sleep?ms=2000 HTTP/1.1\r\nhost: arcus\r\nconnection: close\r\n\r\n";
    conn.write_all(request.as_bytes()).await.unwrap();
    let sent = Instant::now();
    let me = conn.local_addr().unwrap();
    poll(
        "the server to read the request",
        Duration::from_secs(5),
        || async { (unread_bytes(addr, me) == Some(0)).then_some(()) },
    )
    .await;
    assert!(
        sent.elapsed() < Duration::from_millis(1500),
        "the request was read late"
    );

    node.sigterm();
    // The listener closes at once: new connections are refused while the request runs.
    poll(
        "new connections to be refused",
        Duration::from_secs(5),
        || async {
            tokio::net::TcpStream::connect(addr)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;

    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), conn.read_to_end(&mut raw))
        .await
        .expect("the response within 15 s")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {raw:?}"));
    assert!(head.starts_with("HTTP/1.1 200 "), "{raw}");
    assert_eq!(body, "slept 2000");
    assert!(sent.elapsed() >= Duration::from_millis(2000));

    let status = node
        .wait_exit(Duration::from_secs(15))
        .expect("node exits after the request");
    assert!(status.success(), "{status:?}");
    let stderr = node.stderr_text();
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.trim_end().ends_with("arcus: stopped"), "{stderr}");
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        refused.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "connections after exit"
    );
}
