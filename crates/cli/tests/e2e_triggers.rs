//! End-to-end: triggers through the real `arcus` binary and its CLI — a per-second cron
//! schedule queues one async invocation per tick with the documented event and does not
//! fire a tick twice across a restart; a webhook accepts a CloudEvent; enable, disable
//! and delete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_core::record::TriggerKind;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, http, poll};
use serde_json::Value;
use std::collections::BTreeSet;
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

/// The events (what the echo function received) of every finished cron invocation.
async fn cron_events(node: &Node) -> Vec<Value> {
    let items = node
        .client()
        .list_async_invocations("shop", "cart", None, 1000)
        .await
        .unwrap();
    items
        .iter()
        .filter(|i| i.trigger == TriggerKind::Cron)
        .filter_map(|i| i.result.as_ref())
        .filter_map(|r| serde_json::from_str(r["body"].as_str()?).ok())
        .collect()
}

/// Polls until at least `n` cron events ran; returns them.
async fn wait_events(node: &Node, n: usize) -> Vec<Value> {
    poll(
        &format!("{n} cron events"),
        Duration::from_secs(60),
        || async {
            let events = cron_events(node).await;
            (events.len() >= n).then_some(events)
        },
    )
    .await
}

fn scheduled(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["scheduled_time"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_fires_once_per_tick_across_a_restart() {
    let node = Node::start(bin());
    node.create_app("shop").await;
    let spec = CreateFunction {
        name: "cart".to_string(),
        ..Default::default()
    };
    node.deploy("shop", spec, &fixtures::path("echo")).await;

    let out = ok(&node.cli([
        "trigger",
        "create",
        "shop/cart",
        "tick",
        "--cron",
        "*/1 * * * * *",
        "--payload",
        r#"{"n": 1}"#,
    ]));
    assert!(out.contains("type:       cron"), "{out}");

    let events = wait_events(&node, 2).await;
    let first = &events[0];
    assert_eq!(first["type"], "cron");
    assert_eq!(first["trigger"], "tick");
    assert_eq!(first["payload"]["n"], 1);
    assert!(first["fired_at"].is_string());
    let get = ok(&node.cli(["trigger", "get", "shop/cart", "tick"]));
    assert!(get.contains("state:      connected"), "{get}");
    assert!(get.contains("next fire:"), "{get}");
    let list = ok(&node.cli(["trigger", "list", "shop/cart"]));
    assert!(list.contains("tick") && list.contains("cron"), "{list}");

    // Restart: it keeps firing, and no tick is fired twice.
    let before = cron_events(&node).await.len();
    let node = node.restart();
    let events = wait_events(&node, before + 2).await;
    let times = scheduled(&events);
    let distinct: BTreeSet<&String> = times.iter().collect();
    assert_eq!(distinct.len(), times.len(), "a tick fired twice: {times:?}");

    // Disabled: the status says so.
    ok(&node.cli(["trigger", "disable", "shop/cart", "tick"]));
    let get = ok(&node.cli(["trigger", "--json", "get", "shop/cart", "tick"]));
    let view: Value = serde_json::from_str(&get).unwrap();
    assert_eq!(view["status"]["state"], "disabled");
    ok(&node.cli(["trigger", "enable", "shop/cart", "tick"]));
    ok(&node.cli(["trigger", "delete", "shop/cart", "tick"]));
    let out = node.cli(["trigger", "get", "shop/cart", "tick"]);
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_created_with_the_cli_accepts_cloudevents() {
    let node = Node::start(bin());
    node.create_app("shop").await;
    let spec = CreateFunction {
        name: "cart".to_string(),
        ..Default::default()
    };
    node.deploy("shop", spec, &fixtures::path("echo")).await;
    let out = ok(&node.cli([
        "trigger",
        "--json",
        "create",
        "shop/cart",
        "hook",
        "--webhook",
        "--secret",
        "k",
    ]));
    let view: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["config"]["secret"], "********");
    let url = format!("{}{}", node.url(), view["url"].as_str().unwrap());
    let body = r#"{"order": 7}"#;
    let resp = http()
        .post(&url)
        .header("ce-id", "e1")
        .header("ce-source", "/shop")
        .header("ce-type", "order.created")
        .header("ce-specversion", "1.0")
        .header("content-type", "application/json")
        .header(
            "x-arcus-signature",
            arcus_triggers::webhook::sign("k", body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let id = resp.json::<Value>().await.unwrap()["invocation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let client = node.client();
    let event: Value = poll(
        "the webhook invocation",
        Duration::from_secs(30),
        || async {
            let v = client.get_invocation(&id).await.ok()?;
            let body = v.result.as_ref()?["body"].as_str()?.to_string();
            serde_json::from_str(&body).ok()
        },
    )
    .await;
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], "e1");
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["data"]["order"], 7);
    // Unsigned: refused.
    let resp = http()
        .post(&url)
        .header("ce-id", "e2")
        .header("ce-source", "/shop")
        .header("ce-type", "order.created")
        .header("ce-specversion", "1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}
