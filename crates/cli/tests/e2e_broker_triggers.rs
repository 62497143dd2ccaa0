//! End-to-end: a NATS JetStream trigger created with the CLI on the real `arcus` binary
//! delivers every message published to its stream to a wasm function and acks them all;
//! a trigger on an unreachable broker is created anyway and shows `connecting` with the
//! error; its password is never shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use async_nats::jetstream::{self, stream};
use common::{bin, poll};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "CLI failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn status(node: &Node, name: &str) -> Value {
    let out = ok(&node.cli(["trigger", "--json", "get", "shop/cart", name]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_trigger_delivers_and_acks_every_message() {
    let js = jetstream::new(async_nats::connect("127.0.0.1:4222").await.unwrap());
    let name = format!("ARCUS_E2E_{}", uuid::Uuid::new_v4().simple());
    let subject = format!("e2e.{}", uuid::Uuid::new_v4().simple());
    let mut stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{subject}.>")],
            ..Default::default()
        })
        .await
        .unwrap();

    let node = Node::start(bin());
    node.create_app("shop").await;
    let spec = CreateFunction {
        name: "cart".to_string(),
        ..Default::default()
    };
    node.deploy("shop", spec, &fixtures::path("echo")).await;
    let config = serde_json::json!({
        "type": "nats", "url": "nats://127.0.0.1:4222", "stream": name,
        "consumer": "arcus", "batch_size": 5, "batch_window_ms": 50
    });
    ok(&node.cli([
        "trigger",
        "create",
        "shop/cart",
        "orders",
        "--config",
        &config.to_string(),
    ]));
    poll("connected", Duration::from_secs(30), || async {
        (status(&node, "orders")["state"] == "connected").then_some(())
    })
    .await;

    for n in 0..40 {
        js.publish(
            format!("{subject}.o{}", n % 4),
            format!(r#"{{"n":{n}}}"#).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let st = poll("40 delivered", Duration::from_secs(60), || async {
        let s = status(&node, "orders");
        (s["delivered"].as_u64() >= Some(40)).then_some(s)
    })
    .await;
    assert_eq!(st["failed"], 0, "{st}");
    // All acked: nothing pending or waiting for an ack on the durable consumer.
    let consumer: jetstream::consumer::PullConsumer = stream.get_consumer("arcus").await.unwrap();
    let info = poll("all acked", Duration::from_secs(30), || {
        let c = consumer.clone();
        async move {
            let i = c.get_info().await.ok()?;
            (i.num_pending == 0 && i.num_ack_pending == 0).then_some(i)
        }
    })
    .await;
    assert_eq!(info.delivered.stream_sequence, 40);
    assert_eq!(stream.info().await.unwrap().state.messages, 40);

    // An unreachable broker is not a bad config: created, connecting with the error.
    let dead = serde_json::json!({
        "type": "nats", "url": "nats://127.0.0.1:1", "stream": name, "consumer": "x",
        "username": "u", "password": "secret-pw"
    });
    let out = ok(&node.cli([
        "trigger",
        "--json",
        "create",
        "shop/cart",
        "dead",
        "--config",
        &dead.to_string(),
    ]));
    assert!(!out.contains("secret-pw"), "{out}");
    let st = poll(
        "connecting with an error",
        Duration::from_secs(30),
        || async {
            let s = status(&node, "dead");
            (s["state"] == "connecting" && s["last_error"].is_string()).then_some(s)
        },
    )
    .await;
    assert!(st["last_error"].as_str().unwrap().contains("nats"), "{st}");
    ok(&node.cli(["trigger", "delete", "shop/cart", "dead"]));
    ok(&node.cli(["trigger", "delete", "shop/cart", "orders"]));
    js.delete_stream(&name).await.unwrap();
}
