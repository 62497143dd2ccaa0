//! Helpers shared by the end-to-end test binaries of `arcus`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// The `arcus` binary cargo built for these tests.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_arcus"))
}

/// An HTTP client for `/fn/...` requests (no proxy from the environment, bounded waits).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// `x-arcus-version`, if present.
    pub version: Option<u32>,
    /// The body as text.
    pub body: String,
}

impl Resp {
    /// The `error.code` of a platform error body.
    pub fn error_code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        Some(v["error"]["code"].as_str()?.to_string())
    }
}

/// `GET url`, read whole.
pub async fn get(http: &reqwest::Client, url: &str) -> Resp {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let version = resp
        .headers()
        .get("x-arcus-version")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = resp
        .text()
        .await
        .unwrap_or_else(|e| panic!("body of {url}: {e}"));
    Resp {
        status,
        version,
        body,
    }
}

/// Calls `probe` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stdout of a CLI run, asserting it exited 0.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "arcus exited with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// Stdout of a CLI run parsed as JSON, asserting it exited 0.
pub fn ok_json(out: &Output) -> serde_json::Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Stderr of a CLI run, asserting it failed.
pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "arcus unexpectedly succeeded\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `POST /api/v1/apps/{app}/functions/{fn}/invoke` of `target` (`app/fn`) with a JSON
/// event: the status, headers and body (JSON, or the text as a JSON string).
pub async fn invoke_api(
    node: &arcus_testkit::node::Node,
    target: &str,
    event: serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let (app, f) = target.split_once('/').unwrap();
    let url = format!("{}/api/v1/apps/{app}/functions/{f}/invoke", node.url());
    let resp = http()
        .post(url)
        .bearer_auth(node.token())
        .json(&event)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, headers, body)
}

/// `GET /api/v1/{path}` with the node's admin token: status and JSON body.
pub async fn api_get(node: &arcus_testkit::node::Node, path: &str) -> (u16, serde_json::Value) {
    let resp = http()
        .get(format!("{}/api/v1/{path}", node.url()))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// [`api_get`] that must answer 200; the body.
pub async fn api_get_ok(node: &arcus_testkit::node::Node, path: &str) -> serde_json::Value {
    let (status, body) = api_get(node, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The value of the first sample of `name` in Prometheus text whose line holds every
/// label of `labels` (e.g. `function="f"`).
pub fn metric_sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|lab| l.contains(lab)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
