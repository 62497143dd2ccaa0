//! End-to-end: schemathesis (PyPI, installed by scripts/test.sh) generates requests
//! from the node's own OpenAPI document, with the admin token, and checks that no
//! answer is a 5xx and every status and body conforms to the document, for every
//! operation (code uploads and trigger configs through `schemathesis_hooks.py`). Bounded in
//! examples per operation and in wall time, so it costs about a minute.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_testkit::node::Node;
use common::bin;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest the whole schemathesis run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_generated_requests_without_5xx_or_schema_violations() {
    let node = Node::start(bin());
    node.create_app("shop").await;
    let exe = std::env::var("ARCUS_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let report = node.data_dir().join("schemathesis.txt");
    let mut child = Command::new(&exe)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", node.url()))
        .args(["-H", &format!("Authorization: Bearer {}", node.token())])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance",
        ])
        .args(["--max-examples", "5", "--generation-deterministic"])
        .args(["--phases", "examples,fuzzing", "--request-timeout", "10"])
        // Wasm upload bodies and trigger configs come from the hooks (schemathesis has no
        // generator for application/wasm; broker configs would dial generated hosts).
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/tests"))
        .env("ARCUS_HOOK_WASM", arcus_testkit::fixtures::path("hello"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(std::fs::File::create(&report).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {exe} (pip install schemathesis): {e}"));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("schemathesis ran longer than {RUN_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(status.success(), "schemathesis found problems:\n{text}");
    assert!(text.contains("API Operations"), "no summary:\n{text}");
}
