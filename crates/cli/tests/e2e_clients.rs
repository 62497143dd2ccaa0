//! End-to-end: the real AWS Lambda runtime clients run unmodified as `custom` bootstraps
//! against Arcus's Runtime API — the Rust `lambda_runtime` crate and the Node.js
//! `aws-lambda-ric` package (Python's `awslambdaric` is in `e2e_process.rs`). Each
//! answers an event with its request id and ARN, serves a second event from the same
//! process, and reports a function error as a 502 `function_error`.
//!
//! Both are prebuilt by `tests/fixtures/build.sh` (groups `lambda-rust` and `node-ric`)
//! into `tests/fixtures/out/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_core::model::Runtime;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, invoke_api};
use serde_json::json;
use std::path::PathBuf;

/// `tests/fixtures/` of the repository.
fn fixtures_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A build output under `tests/fixtures/out/`; panics with instructions if missing.
fn built(rel: &str) -> PathBuf {
    let p = fixtures_root().join("out").join(rel);
    assert!(
        p.exists(),
        "fixture tests/fixtures/out/{rel} is not built: run tests/fixtures/build.sh \
         (scripts/test.sh does)"
    );
    p
}

fn custom(name: &str, handler: &str) -> CreateFunction {
    CreateFunction {
        name: name.into(),
        runtime: Some(Runtime::Custom),
        handler: Some(handler.into()),
        memory_mb: Some(256),
        timeout_ms: Some(60_000),
        ..Default::default()
    }
}

fn request_id(headers: &reqwest::header::HeaderMap) -> String {
    headers["x-arcus-request-id"].to_str().unwrap().to_string()
}

/// Drives one deployed client through a success, a warm second call, a function error
/// (whose handler raised `error_type`) and a call after it.
async fn exercise(node: &Node, app: &str, function: &str, client: &str, error_type: &str) {
    let target = format!("{app}/{function}");
    // Qualified by the alias the invoke went through (`live`).
    let arn = format!("arn:aws:lambda:arcus-local:{app}:function:{function}:live");

    let event = json!({"a": [1, 2], "s": "ünïcode", "nested": {"k": null}});
    let (status, headers, first) = invoke_api(node, &target, event.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["client"], client, "{first}");
    assert_eq!(first["event"], event);
    assert_eq!(first["request_id"], request_id(&headers).as_str());
    assert_eq!(first["arn"], arn.as_str(), "{first}");
    assert_eq!(first["count"], 1, "{first}");

    // Warm: the same process answers the next event.
    let (status, headers, second) = invoke_api(node, &target, json!({"n": 2})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["event"], json!({"n": 2}));
    assert_eq!(second["count"], 2, "a second process answered: {second}");
    assert_eq!(second["request_id"], request_id(&headers).as_str());
    assert_ne!(second["request_id"], first["request_id"]);

    // A function error: a 502 with the error's type in the header.
    let (status, headers, body) = invoke_api(node, &target, json!({"fail": true})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "function_error", "{body}");
    let header = headers
        .get("x-arcus-function-error")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(header.as_deref(), Some(error_type), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("asked to fail"), "{body}");

    // The function still serves after its error.
    let (status, _, after) = invoke_api(node, &target, json!({"n": 3})).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["event"], json!({"n": 3}));
}

/// The Rust runtime (`lambda_runtime` from crates.io) as the function's `bootstrap`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_runtime_crate_works_unmodified() {
    let bootstrap = built("lambda-rust/bootstrap");
    let zip = fixtures::zip_dirs(&[(&bootstrap, "bootstrap")]);
    let node = Node::start(bin());
    node.create_app("rs").await;
    node.deploy_code("rs", custom("ric", "bootstrap"), zip)
        .await;
    // lambda_runtime posts `lambda-runtime-function-error-type: unhandled` for every error;
    // the type is the document's `errorType`.
    exercise(&node, "rs", "ric", "lambda_runtime", "FixtureError").await;
}

/// The Node.js runtime interface client (`aws-lambda-ric` from npm, with its native
/// Runtime API client) started by a shell `bootstrap`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_lambda_ric_works_unmodified() {
    let node_modules = built("node-ric/node_modules");
    assert!(
        node_modules
            .join("aws-lambda-ric/rapid-client.node")
            .exists(),
        "tests/fixtures/out/node-ric has no native client: run tests/fixtures/build.sh"
    );
    let src = fixtures_root().join("node-ric");
    let zip = fixtures::zip_dirs(&[
        (&src.join("bootstrap"), "bootstrap"),
        (&src.join("index.js"), "index.js"),
        (&node_modules, "node_modules"),
    ]);
    let node = Node::start(bin());
    node.create_app("js").await;
    node.deploy_code("js", custom("ric", "index.handler"), zip)
        .await;
    // The native client posts errors with no type header, only the document.
    exercise(&node, "js", "ric", "aws-lambda-ric", "TypeError").await;
}
