//! End-to-end: secrets through the real `arcus` binary — set from stdin with
//! `arcus secret set`, listed without values, injected into a wasm function as an
//! environment variable — and the plain value is nowhere else: not in any API answer
//! (function, version, secrets, records, logs), not in the node's own log output, not
//! in the SQLite files' raw bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{api_get, bin, failed, get, http, ok, ok_json};
use std::io::Write;
use std::process::Stdio;

const VALUE: &str = "pl41n-s3cr3t-9d8e7f6a5b";

/// Runs `arcus secret set <app> <name>` with `value` on stdin.
fn set_from_stdin(node: &Node, app: &str, name: &str, value: &str) -> std::process::Output {
    let mut child = node
        .command(["secret", "set", app, name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{value}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn assert_absent(what: &str, haystack: &[u8]) {
    let needle = VALUE.as_bytes();
    assert!(
        !haystack.windows(needle.len()).any(|w| w == needle),
        "the secret value is in {what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_reach_the_function_and_nothing_else() {
    let node = Node::start(bin());
    node.create_app("shop").await;
    let out = set_from_stdin(&node, "shop", "DB_PASS", VALUE);
    let printed = ok(&out);
    assert!(printed.contains("DB_PASS"), "{printed}");
    assert_absent("the CLI's output", printed.as_bytes());
    // A reference to a missing secret is refused when the function is created.
    let missing = node
        .client()
        .create_function(
            "shop",
            &CreateFunction {
                name: "nope".into(),
                secrets: Some([("X".to_string(), "MISSING".to_string())].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        missing.is_code(arcus_core::ErrorCode::SecretNotFound),
        "{missing}"
    );

    node.deploy(
        "shop",
        CreateFunction {
            name: "env".into(),
            secrets: Some([("DB_PASSWORD".to_string(), "DB_PASS".to_string())].into()),
            ..Default::default()
        },
        &fixtures::path("env"),
    )
    .await;
    let http = http();
    let r = get(&http, &node.fn_url("shop/env", "/DB_PASSWORD")).await;
    assert_eq!((r.status, r.body.as_str()), (200, VALUE));
    // The function's own output is its business; everything else must not show it.
    let listed = ok_json(&node.cli(["secret", "list", "shop", "--json"]));
    assert_eq!(listed["items"][0]["name"], "DB_PASS");
    assert_absent("`secret list`", listed.to_string().as_bytes());
    let table = ok(&node.cli(["secret", "list", "shop"]));
    assert!(table.contains("DB_PASS"));
    for path in [
        "apps/shop/functions/env",
        "apps/shop/functions/env/versions",
        "apps/shop/functions/env/versions/1",
        "apps/shop/secrets",
        "apps/shop/invocations",
        "apps/shop/logs",
        "openapi.json",
    ] {
        let (status, body) = api_get(&node, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_absent(path, body.to_string().as_bytes());
    }
    let (_, f) = api_get(&node, "apps/shop/functions/env").await;
    assert_eq!(f["secrets"]["DB_PASSWORD"], "DB_PASS");
    let shown = ok(&node.cli(["fn", "get", "shop/env"]));
    assert!(shown.contains("DB_PASSWORD=secret:DB_PASS"), "{shown}");
    assert_absent("`fn get`", shown.as_bytes());
    // `--secret` on the CLI sets a reference (checked against the app's secrets).
    let refused = failed(&node.cli(["fn", "create", "shop/other", "--secret", "X=NOPE"]));
    assert!(refused.contains("secret_not_found"), "{refused}");
    ok(&node.cli(["fn", "create", "shop/other", "--secret", "X=DB_PASS"]));

    // Deleting the secret: the next call fails naming the variable, not the value.
    ok(&node.cli(["secret", "delete", "shop", "DB_PASS"]));
    let r = get(&http, &node.fn_url("shop/env", "/DB_PASSWORD")).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.error_code().as_deref(), Some("init_error"));
    assert!(r.body.contains("DB_PASSWORD"));
    let gone = failed(&node.cli(["secret", "delete", "shop", "DB_PASS"]));
    assert!(gone.contains("secret_not_found"), "{gone}");

    // Raw bytes of the store (database and WAL) and the node's log output.
    for file in ["arcus.db", "arcus.db-wal"] {
        if let Ok(bytes) = std::fs::read(node.data_dir().join(file)) {
            assert_absent(file, &bytes);
        }
    }
    assert_absent("the node's log output", node.stderr_text().as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_sealed_at_rest_and_survive_a_restart_with_the_key_file() {
    let node = Node::start(bin());
    node.create_app("shop").await;
    ok(&node.cli(["secret", "set", "shop", "TOKEN", "--value", VALUE]));
    let key_file = node.data_dir().join("secret-key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    node.deploy(
        "shop",
        CreateFunction {
            name: "env".into(),
            secrets: Some([("TOKEN".to_string(), "TOKEN".to_string())].into()),
            ..Default::default()
        },
        &fixtures::path("env"),
    )
    .await;
    let node = node.restart();
    let r = get(&http(), &node.fn_url("shop/env", "/TOKEN")).await;
    assert_eq!((r.status, r.body.as_str()), (200, VALUE));
    for file in ["arcus.db", "arcus.db-wal"] {
        if let Ok(bytes) = std::fs::read(node.data_dir().join(file)) {
            assert_absent(file, &bytes);
        }
    }
}

#[test]
fn a_bad_secret_key_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("ARCUS_SECRET_KEY", "too-short")
        .env_remove("ARCUS_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ARCUS_SECRET_KEY"), "{err}");
    assert!(!err.contains("too-short"), "{err}");
}

/// `POST .../triggers` with a JSON body; status and body.
async fn create_trigger(node: &Node, body: serde_json::Value) -> (u16, serde_json::Value) {
    let resp = http()
        .post(format!(
            "{}/api/v1/apps/shop/functions/env/triggers",
            node.url()
        ))
        .bearer_auth(node.token())
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_trigger_reads_its_password_from_a_secret() {
    if std::net::TcpStream::connect("127.0.0.1:5672").is_err() {
        eprintln!("RabbitMQ is not running on 127.0.0.1:5672; skipped");
        return;
    }
    let node = Node::start(bin());
    node.create_app("shop").await;
    node.deploy(
        "shop",
        CreateFunction {
            name: "env".into(),
            ..Default::default()
        },
        &fixtures::path("env"),
    )
    .await;
    let trigger = |password: &str| {
        serde_json::json!({ "name": "mq", "config": {
            "type": "amqp", "url": "amqp://127.0.0.1:5672/%2f", "queue": "arcus-secret-ref",
            "username": "guest", "password": password } })
    };
    // A reference to a secret the app does not have: refused, nothing created.
    let (status, body) = create_trigger(&node, trigger("${secret:MQ_PASS}")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "secret_not_found");
    ok(&node.cli(["secret", "set", "shop", "MQ_PASS", "--value", "guest"]));
    let (status, body) = create_trigger(&node, trigger("${secret:MQ_PASS}")).await;
    assert_eq!(status, 201, "{body}");
    // The trigger connects with the secret's value (RabbitMQ refuses a wrong password).
    let path = "apps/shop/functions/env/triggers/mq";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, view) = api_get(&node, path).await;
        if view["status"]["state"] == "connected" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the trigger never connected: {view}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Stored as written: the reference, not the value.
    let stored = node
        .client()
        .get_trigger("shop", "env", "mq")
        .await
        .unwrap();
    assert_eq!(stored.trigger.name, "mq");
    let raw = std::fs::read(node.data_dir().join("arcus.db-wal"))
        .or_else(|_| std::fs::read(node.data_dir().join("arcus.db")))
        .unwrap();
    let reference = b"${secret:MQ_PASS}";
    assert!(raw.windows(reference.len()).any(|w| w == reference));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_function_gets_its_secret_and_a_rotated_value_in_a_new_instance() {
    let node = Node::start(bin());
    node.create_app("py").await;
    ok(&node.cli(["secret", "set", "py", "HELLO", "--value", VALUE]));
    let spec = CreateFunction {
        name: "echo".into(),
        runtime: Some(arcus_core::model::Runtime::Python3),
        handler: Some("app.handler".into()),
        secrets: Some([("GREETING".to_string(), "HELLO".to_string())].into()),
        ..Default::default()
    };
    node.deploy_code("py", spec, fixtures::handler_zip("python"))
        .await;
    let (status, _, first) = common::invoke_api(&node, "py/echo", serde_json::json!({})).await;
    if status == 503 {
        eprintln!("process runtimes are unavailable here ({first}); skipped");
        return;
    }
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["greeting"], VALUE);
    // A new value: the next call runs in a new process (the env is part of its pool key).
    ok(&node.cli(["secret", "set", "py", "HELLO", "--value", "rotated"]));
    let (_, _, second) = common::invoke_api(&node, "py/echo", serde_json::json!({})).await;
    assert_eq!(second["greeting"], "rotated");
    assert_eq!(
        second["count"], 1,
        "a warm process with the old value was reused"
    );
    for file in ["arcus.db", "arcus.db-wal"] {
        if let Ok(bytes) = std::fs::read(node.data_dir().join(file)) {
            assert_absent(file, &bytes);
        }
    }
    assert_absent("the node's log output", node.stderr_text().as_bytes());
}
