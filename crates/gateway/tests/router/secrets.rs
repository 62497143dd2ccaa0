//! Secrets: set, list and delete without values in any answer; limits and errors; a
//! function gets its secret references as environment variables, with rotation and
//! deletion applied to the next instance.

use crate::common::{Harness, req};
use arcus_engine::SecretKey;
use serde_json::json;

const VALUE: &str = "s3cr3t-value-7f3a9c";
const S: &str = "/api/v1/apps/shop/secrets";

async fn harness() -> Harness {
    let h = Harness::new().await;
    h.engine.set_secret_key(&SecretKey::generate());
    h.create_app("shop").await;
    h
}

fn assert_no_value(text: &str) {
    assert!(!text.contains(VALUE), "a secret value leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_set_listed_and_deleted_and_never_shown() {
    let h = harness().await;
    let r = h
        .call_json("PUT", &format!("{S}/DB_PASS"), json!({ "value": VALUE }))
        .await;
    r.expect(200);
    assert_no_value(&r.text());
    let first = r.json();
    assert_eq!(first["name"], "DB_PASS");
    assert!(first.get("value").is_none());
    assert_eq!(first["created_at"], first["updated_at"]);
    h.call_json("PUT", &format!("{S}/API_KEY"), json!({ "value": "k" }))
        .await
        .expect(200);
    // Replacing keeps created_at.
    let again = h
        .call_json("PUT", &format!("{S}/DB_PASS"), json!({ "value": "v2" }))
        .await;
    again.expect(200);
    assert_eq!(again.json()["created_at"], first["created_at"]);

    let list = h.call("GET", S).await;
    list.expect(200);
    assert_no_value(&list.text());
    let names: Vec<String> = list.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["API_KEY", "DB_PASS"]);

    h.call("DELETE", &format!("{S}/API_KEY")).await.expect(204);
    h.call("DELETE", &format!("{S}/API_KEY"))
        .await
        .expect_error(404, "secret_not_found");
    assert_eq!(h.get_json(S).await["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_secret_requests_are_refused_without_echoing_values() {
    let h = harness().await;
    let put = |name: &str, body: serde_json::Value| {
        req("PUT", &format!("{S}/{name}")).token().json(&body)
    };
    let r = h.send(put("bad%20name", json!({ "value": VALUE }))).await;
    r.expect_error(400, "invalid_name");
    assert_no_value(&r.text());
    let big = VALUE.repeat(32 * 1024 / VALUE.len() + 1);
    let r = h.send(put("BIG", json!({ "value": big }))).await;
    r.expect_error(413, "payload_too_large");
    assert_no_value(&r.text());
    let r = h
        .send(put("X", json!({ "value": VALUE, "extra": 1 })))
        .await;
    r.expect_error(400, "invalid_request");
    assert_no_value(&r.text());
    h.send(
        req("PUT", "/api/v1/apps/nope/secrets/X")
            .token()
            .json(&json!({ "value": VALUE })),
    )
    .await
    .expect_error(404, "app_not_found");
    // Without a token: refused before anything is read.
    h.send(req("PUT", &format!("{S}/X")).json(&json!({ "value": VALUE })))
        .await
        .expect_error(401, "unauthorized");
    assert!(h.get_json(S).await["items"].as_array().unwrap().is_empty());

    // At most 100 per app; replacing one is still allowed at the limit.
    for i in 0..100 {
        h.send(put(&format!("S{i}"), json!({ "value": "v" })))
            .await
            .expect(200);
    }
    h.send(put("S100", json!({ "value": "v" })))
        .await
        .expect_error(409, "conflict");
    h.send(put("S7", json!({ "value": "w" }))).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_key_refuses_secret_writes() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.call_json("PUT", &format!("{S}/X"), json!({ "value": VALUE }))
        .await
        .expect_error(503, "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_get_secrets_as_env_vars_at_instance_start() {
    let h = harness().await;
    let f = "/api/v1/apps/shop/functions";
    // A reference to a secret that does not exist: refused at create.
    h.call_json(
        "POST",
        f,
        json!({ "name": "env", "secrets": { "DB_PASSWORD": "DB_PASS" } }),
    )
    .await
    .expect_error(404, "secret_not_found");
    h.call_json("PUT", &format!("{S}/DB_PASS"), json!({ "value": VALUE }))
        .await
        .expect(200);
    h.deploy(
        "shop",
        "env",
        "env",
        json!({ "secrets": { "DB_PASSWORD": "DB_PASS" }, "env": { "MODE": "m" } }),
    )
    .await;
    // The function's and version's answers name the secret, never its value.
    let got = h.call("GET", &format!("{f}/env")).await;
    got.expect(200);
    assert_no_value(&got.text());
    assert_eq!(got.json()["secrets"]["DB_PASSWORD"], "DB_PASS");
    let v = h.call("GET", &format!("{f}/env/versions/1")).await;
    assert_no_value(&v.text());
    assert_eq!(v.json()["config"]["secrets"]["DB_PASSWORD"], "DB_PASS");

    let r = h.call("GET", "/fn/shop/env/DB_PASSWORD").await;
    r.expect(200);
    assert_eq!(r.text(), VALUE);
    // Rotation: the next instance sees the new value.
    h.call_json(
        "PUT",
        &format!("{S}/DB_PASS"),
        json!({ "value": "rotated" }),
    )
    .await
    .expect(200);
    assert_eq!(
        h.call("GET", "/fn/shop/env/DB_PASSWORD").await.text(),
        "rotated"
    );
    // Referring to a missing secret: refused at update and publish.
    h.call_json(
        "PATCH",
        &format!("{f}/env"),
        json!({ "secrets": { "OTHER": "NOPE" } }),
    )
    .await
    .expect_error(404, "secret_not_found");
    // Deleted while referenced: the invocation fails naming variable and secret.
    h.call("DELETE", &format!("{S}/DB_PASS")).await.expect(204);
    let r = h.call("GET", "/fn/shop/env/DB_PASSWORD").await;
    r.expect_error(502, "init_error");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("DB_PASSWORD") && msg.contains("DB_PASS"),
        "{msg}"
    );
    let id = r.header("x-arcus-request-id").unwrap().to_string();
    let record = h.wait_record("shop", "env", &id).await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error_code"], "init_error");
    h.call("POST", &format!("{f}/env/versions"))
        .await
        .expect_error(404, "secret_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reseals_values_under_the_new_key() {
    let old = SecretKey::generate();
    let h = Harness::new().await;
    h.engine.set_secret_key(&old);
    h.create_app("shop").await;
    h.call_json("PUT", &format!("{S}/DB_PASS"), json!({ "value": VALUE }))
        .await
        .expect(200);
    h.deploy(
        "shop",
        "env",
        "env",
        json!({ "secrets": { "DB_PASSWORD": "DB_PASS" } }),
    )
    .await;
    let before = h
        .engine
        .store()
        .get_secret("shop", "DB_PASS")
        .await
        .unwrap();
    // A new key alone cannot open the value: the error names both key ids.
    let new = SecretKey::generate();
    h.engine.set_secret_key(&new);
    let r = h.call("GET", "/fn/shop/env/DB_PASSWORD").await;
    r.expect_error(500, "internal");
    assert!(r.text().contains(&old.id()) && r.text().contains(&new.id()));
    assert_no_value(&r.text());
    // With the old key as a previous one: readable, then re-sealed under the new key.
    h.engine.set_secret_keys(&new, &[old]);
    assert_eq!(
        h.call("GET", "/fn/shop/env/DB_PASSWORD").await.text(),
        VALUE
    );
    assert_eq!(h.engine.reseal_secrets().await.unwrap(), 1);
    assert_eq!(h.engine.reseal_secrets().await.unwrap(), 0);
    let after = h
        .engine
        .store()
        .get_secret("shop", "DB_PASS")
        .await
        .unwrap();
    assert_eq!(after.key_id, new.id());
    assert_ne!(after.ciphertext, before.ciphertext);
    assert_eq!(
        (after.created_at, after.updated_at),
        (before.created_at, before.updated_at)
    );
    h.engine.set_secret_key(&new);
    assert_eq!(
        h.call("GET", "/fn/shop/env/DB_PASSWORD").await.text(),
        VALUE
    );
}
