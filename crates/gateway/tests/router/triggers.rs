//! Trigger CRUD, validation (400 naming the field, nothing stored), redaction and the
//! public webhook endpoint.

use crate::common::{Harness, req};
use arcus_core::trigger::MAX_TRIGGERS_PER_FUNCTION;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const T: &str = "/api/v1/apps/shop/functions/cart/triggers";

async fn with_function() -> Harness {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_function("shop", json!({"name": "cart"})).await;
    h
}

/// Polls a trigger until `done` holds for its view.
async fn wait_view(h: &Harness, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = h.get_json(&format!("{T}/{name}")).await;
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "trigger {name}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_crud_round_trip_with_status_and_redaction() {
    let h = with_function().await;
    let r = h
        .call_json(
            "POST",
            T,
            json!({"name": "tick", "config": {"type": "cron",
            "schedule": "0 0 * * *", "timezone": "Europe/Berlin", "payload": {"k": 1}}}),
        )
        .await;
    r.expect(201);
    let v = r.json();
    assert_eq!(v["name"], "tick");
    assert_eq!(v["qualifier"], "live");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["config"]["type"], "cron");
    assert_eq!(v["config"]["missed"], "skip");
    let v = wait_view(&h, "tick", |v| v["status"]["state"] == "connected").await;
    assert!(
        v["status"]["next_fire_at"]
            .as_str()
            .unwrap()
            .ends_with(":00:00Z")
    );

    let r = h
        .call_json(
            "POST",
            T,
            json!({"name": "hook",
            "config": {"type": "webhook", "secret": "s3cret"}}),
        )
        .await;
    r.expect(201);
    let hook = r.json();
    assert_eq!(hook["config"]["secret"], "********");
    let id = hook["id"].as_str().unwrap();
    assert_eq!(hook["url"], format!("/hooks/{id}"));
    assert!(!h.call("GET", T).await.text().contains("s3cret"));

    let list = h.get_json(T).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hook", "tick"]);

    // Disable: the status says so and the task stops.
    let r = h
        .call_json("PATCH", &format!("{T}/tick"), json!({"enabled": false}))
        .await;
    r.expect(200);
    assert_eq!(r.json()["status"]["state"], "disabled");
    assert_eq!(r.json()["enabled"], false);
    // A same-type config without the secret keeps the stored one.
    h.call_json(
        "PATCH",
        &format!("{T}/hook"),
        json!({"config": {"type": "webhook"}}),
    )
    .await
    .expect(200);
    let stored = h
        .engine
        .store()
        .get_trigger("shop", "cart", "hook")
        .await
        .unwrap();
    assert_eq!(
        stored.config,
        arcus_core::trigger::TriggerConfig::Webhook(arcus_core::trigger::WebhookConfig {
            secret: Some("s3cret".into())
        })
    );

    h.call("DELETE", &format!("{T}/tick")).await.expect(204);
    h.call("GET", &format!("{T}/tick"))
        .await
        .expect_error(404, "not_found");
    h.call("GET", "/api/v1/apps/shop/functions/nope/triggers")
        .await
        .expect_error(404, "function_not_found");
    // Deleting the function deletes its triggers.
    h.call("DELETE", "/api/v1/apps/shop/functions/cart")
        .await
        .expect(204);
    assert!(
        h.engine
            .store()
            .list_all_triggers()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_trigger_input_is_a_400_naming_the_field_and_stores_nothing() {
    let h = with_function().await;
    let cases = [
        (
            json!({"name": "t", "config": {"type": "cron", "schedule": "61 * * * *"}}),
            "config.schedule",
        ),
        (
            json!({"name": "t", "config": {"type": "cron", "schedule": "* * * * *",
            "timezone": "Mars/Olympus"}}),
            "config.timezone",
        ),
        (json!({"name": "t", "config": {"type": "kafka"}}), "kafka"),
        (
            json!({"name": "t", "config": {"type": "amqp", "url": "amqp://h"}}),
            "queue",
        ),
        (
            json!({"name": "t", "config": {"type": "amqp", "url": "amqp://u:p@h", "queue": "q"}}),
            "credentials",
        ),
        (
            json!({"name": "t", "config": {"type": "nats", "url": "nats://h", "stream": "s",
            "consumer": "c", "batch_size": 5000}}),
            "batch_size",
        ),
        (
            json!({"name": "t", "config": {"type": "webhook", "colour": "red"}}),
            "colour",
        ),
        (
            json!({"name": "t", "config": {"type": "cron", "schedule": "* * * * *",
            "colour": "red"}}),
            "colour",
        ),
        (json!({"config": {"type": "webhook"}}), "name"),
        (
            json!({"name": "t", "config": {"type": "webhook"}, "extra": 1}),
            "extra",
        ),
    ];
    for (body, field) in cases {
        let r = h
            .fails(req("POST", T).token().json(&body), 400, "invalid_request")
            .await;
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(field), "{body}: {msg}");
    }
    // A taken name is a 409; past the limit a 400.
    for i in 0..MAX_TRIGGERS_PER_FUNCTION {
        h.call_json(
            "POST",
            T,
            json!({"name": format!("w{i}"), "config": {"type": "webhook"}}),
        )
        .await
        .expect(201);
    }
    h.fails(
        req("POST", T)
            .token()
            .json(&json!({"name": "w0", "config": {"type": "webhook"}})),
        409,
        "already_exists",
    )
    .await;
    h.fails(
        req("POST", T)
            .token()
            .json(&json!({"name": "more", "config": {"type": "webhook"}})),
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_created_and_shows_connecting() {
    let h = with_function().await;
    // Nothing listens on port 1.
    h.call_json(
        "POST",
        T,
        json!({"name": "q", "config": {"type": "redis",
        "url": "redis://127.0.0.1:1", "stream": "s", "group": "g"}}),
    )
    .await
    .expect(201);
    let v = wait_view(&h, "q", |v| v["status"]["last_error"].is_string()).await;
    assert_eq!(v["status"]["state"], "connecting");
}

fn ce_headers(r: crate::common::Req, id: &str) -> crate::common::Req {
    r.header("ce-id", id)
        .header("ce-source", "/tests")
        .header("ce-type", "order.created")
        .header("ce-specversion", "1.0")
        .header("content-type", "application/json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_queue_cloudevents_once_per_id() {
    let h = Harness::new().await;
    h.deploy("shop", "cart", "echo", json!({})).await;
    let hook = h
        .call_json(
            "POST",
            T,
            json!({"name": "hook", "config": {"type": "webhook"}}),
        )
        .await
        .json();
    let url = hook["url"].as_str().unwrap().to_string();

    let body = r#"{"order": 7}"#;
    let r = h
        .send(ce_headers(req("POST", &url), "ev-1").body(body))
        .await;
    r.expect(202);
    let first = r.json()["invocation_id"].as_str().unwrap().to_string();
    // A redelivery of the same CloudEvent is the same invocation.
    let again = h
        .send(ce_headers(req("POST", &url), "ev-1").body(body))
        .await;
    assert_eq!(again.json()["invocation_id"], first.as_str());
    // Structured mode.
    let structured = json!({"specversion": "1.0", "id": "ev-2", "source": "/t",
        "type": "x", "data": {"n": 1}});
    let r = h
        .send(
            req("POST", &url)
                .header("content-type", "application/cloudevents+json")
                .body(structured.to_string()),
        )
        .await;
    r.expect(202);
    assert_ne!(r.json()["invocation_id"], first.as_str());
    let record = h.wait_record("shop", "cart", &first).await;
    assert_eq!(record["trigger"], "webhook");

    // Not a CloudEvent; too large; unknown id; disabled.
    h.send(
        req("POST", &url)
            .header("content-type", "text/plain")
            .body("hi"),
    )
    .await
    .expect_error(400, "invalid_request");
    let big = vec![b'a'; arcus_core::events::MAX_ASYNC_PAYLOAD_BYTES + 1];
    h.send(ce_headers(req("POST", &url), "ev-3").body(big))
        .await
        .expect_error(413, "payload_too_large");
    h.send(ce_headers(req("POST", "/hooks/nope"), "ev-4").body(body))
        .await
        .expect_error(404, "not_found");
    h.call_json("PATCH", &format!("{T}/hook"), json!({"enabled": false}))
        .await
        .expect(200);
    h.send(ce_headers(req("POST", &url), "ev-5").body(body))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_need_a_valid_hmac() {
    let h = Harness::new().await;
    h.deploy("shop", "cart", "echo", json!({})).await;
    let hook = h
        .call_json(
            "POST",
            T,
            json!({"name": "hook",
            "config": {"type": "webhook", "secret": "k"}}),
        )
        .await
        .json();
    let url = hook["url"].as_str().unwrap().to_string();
    let body = r#"{"order": 7}"#;
    h.send(ce_headers(req("POST", &url), "a").body(body))
        .await
        .expect_error(401, "unauthorized");
    h.send(
        ce_headers(req("POST", &url), "a")
            .header(
                "x-arcus-signature",
                &arcus_triggers::webhook::sign("wrong", body.as_bytes()),
            )
            .body(body),
    )
    .await
    .expect_error(401, "unauthorized");
    h.send(
        ce_headers(req("POST", &url), "a")
            .header(
                "x-arcus-signature",
                &arcus_triggers::webhook::sign("k", body.as_bytes()),
            )
            .body(body),
    )
    .await
    .expect(202);
}
