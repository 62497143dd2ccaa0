//! End-to-end: how a real node runs misbehaving and network-using functions — timeouts,
//! traps, memory limits, egress policy — and components written in JS and Python.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, get, http, ok, poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn spec(name: &str) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_answer_504_and_the_node_keeps_serving() {
    let node = Node::start(bin());
    let http = http();
    node.create_app("demo").await;
    let slow = CreateFunction {
        timeout_ms: Some(1000),
        ..spec("slow")
    };
    node.deploy("demo", slow, &fixtures::path("sleep")).await;
    node.deploy("demo", spec("hello"), &fixtures::path("hello"))
        .await;

    // Blocked in a host call (sleep), then a pure compute loop that never yields to the host.
    for path in ["sleep?ms=10000", "spin"] {
        let started = Instant::now();
        let r = get(&http, &node.fn_url("demo/slow", path)).await;
        let took = started.elapsed();
        assert_eq!(r.status, 504, "{path}: {r:?}");
        assert_eq!(
            r.error_code().as_deref(),
            Some("function_timeout"),
            "{path}: {r:?}"
        );
        assert!(
            took >= Duration::from_millis(950),
            "{path}: answered after {took:?}"
        );
        assert!(
            took < Duration::from_secs(4),
            "{path}: answered after {took:?}"
        );
    }

    // Other functions and other requests of the same function still work.
    let r = get(&http, &node.fn_url("demo/hello", "")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "hello, world\n"));
    let r = get(&http, &node.fn_url("demo/slow", "sleep?ms=10")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "slept 10"));
    let r = get(&http, &node.fn_url("demo/slow", "spin?ms=10")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "spun 10"));

    // The records say timed_out, and the log says why.
    let client = node.client();
    let records = poll(
        "4 records of demo/slow",
        Duration::from_secs(10),
        || async {
            let r = client.list_invocations("demo", "slow", None).await.unwrap();
            (r.len() >= 4).then_some(r)
        },
    )
    .await;
    let statuses: Vec<&str> = records.iter().rev().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["timed_out", "timed_out", "succeeded", "succeeded"]
    );
    let timed_out = &records[records.len() - 1];
    assert_eq!(timed_out.error_code.as_deref(), Some("function_timeout"));
    let logs = client
        .list_logs("demo", "slow", None, Some(&timed_out.id))
        .await
        .unwrap();
    assert!(
        logs.iter()
            .any(|l| l.message.contains("timed out after 1.000 seconds")),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_answer_502_and_are_logged() {
    let node = Node::start(bin());
    let http = http();
    node.create_app("demo").await;
    node.deploy("demo", spec("trap"), &fixtures::path("trap"))
        .await;

    let r = get(&http, &node.fn_url("demo/trap", "")).await;
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.error_code().as_deref(), Some("function_error"), "{r:?}");

    let text = poll(
        "the trap's panic message in `arcus logs`",
        Duration::from_secs(10),
        || async {
            let text = ok(&node.cli(["logs", "demo/trap"]));
            text.contains("deliberate trap for testing").then_some(text)
        },
    )
    .await;
    assert!(
        text.lines()
            .any(|l| l.contains(" stderr ") && l.contains("panicked")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" platform ") && l.contains("trapped")),
        "{text}"
    );
    let inv = ok(&node.cli(["invocations", "demo/trap"]));
    let row = inv.lines().nth(1).expect("a record");
    assert!(
        row.contains("failed") && row.contains("function_error"),
        "{inv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_fails_the_hog_only() {
    let node = Node::start(bin());
    let http = http();
    node.create_app("demo").await;
    let hog = CreateFunction {
        memory_mb: Some(32),
        ..spec("memhog")
    };
    node.deploy("demo", hog, &fixtures::path("memhog")).await;
    node.deploy("demo", spec("hello"), &fixtures::path("hello"))
        .await;

    let r = get(&http, &node.fn_url("demo/memhog", "?mb=100")).await;
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.error_code().as_deref(), Some("function_error"), "{r:?}");

    let r = get(&http, &node.fn_url("demo/hello", "")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "hello, world\n"));
    let r = get(&http, &node.fn_url("demo/memhog", "?mb=4")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "allocated 4 MiB"));

    let client = node.client();
    poll(
        "the allocation failure in the logs",
        Duration::from_secs(10),
        || async {
            let logs = client
                .list_logs("demo", "memhog", None, None)
                .await
                .unwrap();
            logs.iter()
                .any(|l| l.message.contains("memory allocation of"))
                .then_some(())
        },
    )
    .await;
}

/// A one-route HTTP/1.1 server on a free loopback port answering every request with
/// 200 `pong`; runs until the test's runtime ends.
async fn pong_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\
                            connection: close\r\n\r\npong";
                let _ = conn.write_all(resp.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_follows_the_allow_list() {
    let node = Node::start(bin());
    let http = http();
    let pong = pong_server().await;
    node.create_app("demo").await;
    let node_host = format!("127.0.0.1:{}", node.addr().port());
    node.deploy("demo", spec("closed"), &fixtures::path("outbound"))
        .await;
    let open = CreateFunction {
        allowed_hosts: Some(vec![
            format!("127.0.0.1:{}", pong.port()),
            node_host.clone(),
        ]),
        ..spec("open")
    };
    node.deploy("demo", open, &fixtures::path("outbound")).await;
    let target = |f: &str, url: &str| node.fn_url(f, &format!("?url={}", urlencode(url)));

    // No allowed hosts: the host refuses the request and the fixture reports it.
    let r = get(
        &http,
        &target("demo/closed", &format!("http://{pong}/ping")),
    )
    .await;
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("HttpRequestDenied"), "{r:?}");

    // Allowed: the request reaches the test's server.
    let r = get(&http, &target("demo/open", &format!("http://{pong}/ping"))).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "status=200\npong"),
        "{r:?}"
    );
    // Another port of the same IP is not in the list.
    let r = get(&http, &target("demo/open", "http://127.0.0.1:1/")).await;
    assert!(
        r.status == 502 && r.body.contains("HttpRequestDenied"),
        "{r:?}"
    );

    // The node itself is never reachable, even when listed, by IP or by name.
    let by_name = CreateFunction {
        allowed_hosts: Some(vec![format!("localhost:{}", node.addr().port())]),
        ..spec("by-name")
    };
    node.deploy("demo", by_name, &fixtures::path("outbound"))
        .await;
    for (f, url) in [
        ("demo/open", format!("http://{node_host}/healthz")),
        (
            "demo/by-name",
            format!("http://localhost:{}/healthz", node.addr().port()),
        ),
    ] {
        let r = get(&http, &target(f, &url)).await;
        assert_eq!(r.status, 502, "{url}: {r:?}");
        assert!(!r.body.contains("status=200"), "{url}: {r:?}");
        assert!(r.body.contains("DestinationIpProhibited"), "{url}: {r:?}");
    }
    // And the node still serves the test directly.
    assert_eq!(
        get(&http, &format!("{}/healthz", node.url())).await.body,
        "ok"
    );
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_and_python_components() {
    let node = Node::start(bin());
    let http = http();
    node.create_app("demo").await;
    // Each takes seconds to compile at upload; do both at once.
    let js = fixtures::path("js-hello");
    let py = fixtures::path("py-hello");
    tokio::join!(
        node.deploy("demo", spec("js"), &js),
        node.deploy("demo", spec("py"), &py)
    );

    for (f, want) in [
        ("demo/js", "hello from javascript\n"),
        ("demo/py", "hello from python\n"),
    ] {
        for _ in 0..2 {
            let r = get(&http, &node.fn_url(f, "any/path")).await;
            assert_eq!(
                (r.status, r.body.as_str(), r.version),
                (200, want, Some(1)),
                "{f}"
            );
        }
    }
}
