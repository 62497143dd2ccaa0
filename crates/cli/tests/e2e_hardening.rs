//! End-to-end: the listener's connection limits hold against hostile clients while
//! normal requests keep being served — a slow-loris head is cut off after the header
//! timeout, an oversized head or too many headers get 431, a body that never arrives
//! fails after the body timeout, and connections up to the limit that sit idle are cut
//! so a fresh client gets served. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_testkit::node::Node;
use common::{bin, get, http};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = "[server]\nheader_read_timeout_s = 2\nbody_read_timeout_s = 2\n\
                      max_header_bytes = 16384\nmax_headers = 50\nmax_connections = 12\n";

/// Reads until EOF, an error, or `limit`; what was read and whether the peer closed.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

async fn assert_serving(node: &Node) {
    let r = get(&http(), &format!("{}/healthz", node.url())).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_is_cut_off_while_others_are_served() {
    let node = Node::start_with_config(bin(), CONFIG);
    let mut slow = TcpStream::connect(node.addr()).await.unwrap();
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut_after = None;
    // One byte a second: at most the whole head (far past the 2 s timeout).
    for byte in head {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_after = Some(started.elapsed());
            break;
        }
        assert_serving(&node).await;
        let mut probe = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_after = Some(started.elapsed());
                break;
            }
            Ok(Ok(_)) => {
                cut_after = Some(started.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let cut_after = cut_after.expect("the slow client was never cut off");
    assert!(
        cut_after >= Duration::from_millis(1500) && cut_after < Duration::from_secs(8),
        "cut after {cut_after:?}"
    );
    assert_serving(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431_and_the_node_keeps_serving() {
    let node = Node::start_with_config(bin(), CONFIG);
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let many: String = (0..60).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for request in [big, many] {
        let mut s = TcpStream::connect(node.addr()).await.unwrap();
        let _ = s.write_all(request.as_bytes()).await;
        let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 431"), "{text}");
        assert!(closed, "the connection stays open after a 431");
        assert_serving(&node).await;
    }
    // Just under the limits is fine.
    let ok = http()
        .get(format!("{}/healthz", node.url()))
        .header("x-big", "a".repeat(12_000))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_fails_after_the_body_timeout() {
    let node = Node::start_with_config(bin(), CONFIG);
    let mut s = TcpStream::connect(node.addr()).await.unwrap();
    let started = Instant::now();
    let head = format!(
        "POST /api/v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":",
        node.token()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "answered after {took:?}: {text}"
    );
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 4"),
        "a timed-out body got {text}"
    );
    assert!(node.client().list_apps().await.unwrap().is_empty());
    assert_serving(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_at_the_limit_are_cut_and_a_fresh_client_is_served() {
    let node = Node::start_with_config(bin(), CONFIG);
    // 12 kept-alive connections (the limit), each served once and then left idle.
    let mut idle = Vec::new();
    for _ in 0..12 {
        let mut s = TcpStream::connect(node.addr()).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        idle.push(s);
    }
    let started = Instant::now();
    assert_serving(&node).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(10),
        "a fresh client waited {waited:?} with every slot taken"
    );
    // The idle ones were closed by the server.
    for s in &mut idle {
        let (_, closed) = read_until_closed(s, Duration::from_secs(5)).await;
        assert!(closed, "an idle connection was kept past the timeout");
    }
}
