//! End-to-end: the Lambda-compatible invoke API with real AWS clients. A node runs wasm
//! and python3 functions; an access key is created over the REST API (its secret shown
//! once, never listed); a boto3 script (`lambda_api.py`) checks RequestResponse, Event,
//! DryRun, Qualifier and ARN names, LogType=Tail, function errors, Lambda's error types,
//! another app's functions, a wrong secret, an unknown key and a function's request-rate
//! limit (TooManyRequestsException); then `aws lambda invoke`
//! (the AWS CLI from PyPI) invokes with the same key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_core::model::Runtime;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::http;
use serde_json::{Value, json};
use std::process::Command;

fn py(name: &str, handler: &str) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        runtime: Some(Runtime::Python3),
        handler: Some(format!("app.{handler}")),
        ..Default::default()
    }
}

fn wasm(name: &str) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        ..Default::default()
    }
}

async fn create_key(node: &Node, app: &str) -> (u16, Value) {
    let resp = http()
        .post(format!("{}/api/v1/access-keys", node.url()))
        .bearer_auth(node.token())
        .json(&json!({"app": app, "name": "boto3"}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The environment of an AWS client run: only the given key, no config files.
fn aws_env(cmd: &mut Command, dir: &std::path::Path, id: &str, secret: &str) {
    cmd.env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", dir.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"))
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_the_aws_cli_invoke_through_access_keys() {
    let node = Node::start(common::bin());
    node.create_app("shop").await;
    node.create_app("other").await;
    let zip = fixtures::handler_zip("python");
    node.deploy_code("shop", py("py", "handler"), zip.clone())
        .await;
    node.deploy_code("shop", py("pyfail", "fail"), zip).await;
    node.deploy("shop", wasm("echo"), &fixtures::path("echo"))
        .await;
    node.deploy("other", wasm("secret-fn"), &fixtures::path("echo"))
        .await;
    // A function with a small request-rate limit (set after its first, cold, call).
    node.deploy("shop", wasm("limited"), &fixtures::path("echo"))
        .await;
    let warm = http()
        .get(format!("{}/fn/shop/limited/", node.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status().as_u16(), 200);
    let patched = http()
        .patch(format!("{}/api/v1/apps/shop/functions/limited", node.url()))
        .bearer_auth(node.token())
        .json(&json!({"scaling": {"rate_limit_rps": 1, "rate_limit_burst": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status().as_u16(), 200);

    // The key is made with the CLI; its secret is printed once and never listed.
    let key =
        common::ok_json(&node.cli(["access-key", "--json", "create", "shop", "--name", "boto3"]));
    let id = key["id"].as_str().unwrap().to_string();
    let secret = key["secret_access_key"].as_str().unwrap().to_string();
    assert!(id.starts_with("ARC") && id.len() == 20, "{id}");
    assert_eq!(secret.len(), 40);
    let (status, _) = create_key(&node, "other").await;
    assert_eq!(status, 201);
    let (status, err) = create_key(&node, "missing-app").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("app_not_found"))
    );
    let listed = http()
        .get(format!("{}/api/v1/access-keys?app=shop", node.url()))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains(&id) && !listed.contains(&secret),
        "{listed}"
    );

    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lambda_api.py");
    let mut cmd = Command::new("python3");
    cmd.args([script, &node.url(), "shop", &id, &secret]);
    aws_env(&mut cmd, dir.path(), &id, &secret);
    let out = cmd
        .output()
        .expect("python3 with boto3 (pip install boto3)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "boto3 checks failed:\n{text}");
    assert!(text.contains("all checks passed"), "{text}");

    // The AWS CLI, with the same key.
    let outfile = dir.path().join("out.json");
    let mut cmd = Command::new("aws");
    cmd.args(["lambda", "invoke", "--endpoint-url", &node.url()])
        .args(["--function-name", "py", "--qualifier", "1"])
        .args(["--payload", r#"{"from":"cli"}"#])
        .arg(&outfile);
    aws_env(&mut cmd, dir.path(), &id, &secret);
    let out = cmd.output().expect("aws (pip install awscli)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "aws lambda invoke failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(meta["StatusCode"], 200, "{meta}");
    assert_eq!(meta["ExecutedVersion"], "1", "{meta}");
    let payload: Value = serde_json::from_slice(&std::fs::read(&outfile).unwrap()).unwrap();
    assert_eq!(payload["event"], json!({"from": "cli"}));

    // A wrong secret is refused by the CLI's call too, and a deleted key stops at once.
    let mut cmd = Command::new("aws");
    cmd.args(["lambda", "invoke", "--endpoint-url", &node.url()])
        .args(["--function-name", "py"])
        .arg(dir.path().join("bad.json"));
    aws_env(&mut cmd, dir.path(), &id, &"y".repeat(40));
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && stderr.contains("InvalidSignatureException"),
        "{stderr}"
    );
    let del = http()
        .delete(format!("{}/api/v1/access-keys/{id}", node.url()))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 204);
    let mut cmd = Command::new("aws");
    cmd.args(["lambda", "invoke", "--endpoint-url", &node.url()])
        .args(["--function-name", "py"])
        .arg(dir.path().join("gone.json"));
    aws_env(&mut cmd, dir.path(), &id, &secret);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stderr.contains("UnrecognizedClientException"), "{stderr}");
}

/// `aws lambda invoke` of `function` with a key; its output.
fn aws_invoke(
    node: &Node,
    dir: &std::path::Path,
    id: &str,
    secret: &str,
    function: &str,
) -> std::process::Output {
    let mut cmd = Command::new("aws");
    cmd.args(["lambda", "invoke", "--endpoint-url", &node.url()])
        .args(["--function-name", function, "--payload", "{}"])
        .arg(dir.join("out.json"));
    aws_env(&mut cmd, dir, id, secret);
    cmd.output().expect("aws (pip install awscli)")
}

fn secrets_config(key: &str, previous: &[&str]) -> String {
    let previous: Vec<String> = previous.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        "[secrets]\nkey = \"{key}\"\nprevious_keys = [{}]\n",
        previous.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_are_resealed_when_the_secret_key_rotates() {
    let (k1, k2) = ("a1".repeat(32), "b2".repeat(32));
    let node = Node::start_with_config(common::bin(), &secrets_config(&k1, &[]));
    node.create_app("shop").await;
    node.deploy("shop", wasm("echo"), &fixtures::path("echo"))
        .await;
    let key = common::ok_json(&node.cli(["access-key", "--json", "create", "shop"]));
    let (id, secret) = (
        key["id"].as_str().unwrap().to_string(),
        key["secret_access_key"].as_str().unwrap().to_string(),
    );
    let dir = tempfile::tempdir().unwrap();
    let invoked = |node: &Node| {
        let out = aws_invoke(node, dir.path(), &id, &secret, "echo");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = invoked(&node);
    assert!(ok, "{text}");

    // K2 with K1 as a previous key: the key still verifies, and start-up re-sealed it…
    let config = node.data_dir().join("arcus.toml");
    std::fs::write(&config, secrets_config(&k2, &[&k1])).unwrap();
    let node = node.restart();
    let (ok, text) = invoked(&node);
    assert!(ok, "{text}");
    // …so K2 alone opens it.
    std::fs::write(&config, secrets_config(&k2, &[])).unwrap();
    let node = node.restart();
    let (ok, text) = invoked(&node);
    assert!(ok, "after dropping the previous key: {text}");

    // A node on a key that never sealed it cannot verify it (and says so as a 5xx, not
    // as a wrong signature).
    std::fs::write(&config, secrets_config(&"c3".repeat(32), &[])).unwrap();
    let node = node.restart();
    let (ok, text) = invoked(&node);
    assert!(!ok && !text.contains("InvalidSignatureException"), "{text}");
}
