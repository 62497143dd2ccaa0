//! Happy paths of every REST endpoint, the health endpoints and the OpenAPI document.

use crate::common::{Harness, req};
use arcus_gateway::REQUEST_ID as REQUEST_ID_HEADER;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

const F: &str = "/api/v1/apps/shop/functions/cart";

fn names(list: &Value, key: &str) -> Vec<Value> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let h = Harness::new().await;
    let a = h.send(req("GET", "/healthz")).await;
    a.expect(200);
    assert_eq!(a.text(), "ok");
    let b = h.send(req("GET", "/readyz")).await;
    b.expect(200);
    assert_eq!(b.text(), "ready");
    let (ida, idb) = (
        a.header(REQUEST_ID_HEADER).unwrap(),
        b.header(REQUEST_ID_HEADER).unwrap(),
    );
    assert!(!ida.is_empty());
    assert_ne!(ida, idb, "every response gets its own request id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_endpoints() {
    let h = Harness::new().await;
    assert_eq!(h.get_json("/api/v1/apps").await, json!({ "items": [] }));
    let r = h
        .call_json(
            "POST",
            "/api/v1/apps",
            json!({"name": "shop", "description": "the shop"}),
        )
        .await;
    r.expect(201);
    let shop = r.json();
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["description"], "the shop");
    assert!(shop["created_at"].as_str().unwrap().contains('T'), "{shop}");
    let other = h.create_app("other").await;
    assert_eq!(other["description"], "");

    let list = h.get_json("/api/v1/apps").await;
    assert_eq!(names(&list, "name"), [json!("other"), json!("shop")]);
    assert_eq!(h.get_json("/api/v1/apps/shop").await, shop);

    // An empty app is deleted without force.
    h.call("DELETE", "/api/v1/apps/other").await.expect(204);
    h.call("GET", "/api/v1/apps/other")
        .await
        .expect_error(404, "app_not_found");
    assert_eq!(
        names(&h.get_json("/api/v1/apps").await, "name"),
        [json!("shop")]
    );

    // With force, an app goes with its functions, versions and aliases.
    h.deploy("shop", "cart", "hello", json!({})).await;
    h.send(req("GET", "/fn/shop/cart/")).await.expect(200);
    h.call("DELETE", "/api/v1/apps/shop?force=true")
        .await
        .expect(204);
    h.call("GET", "/api/v1/apps/shop")
        .await
        .expect_error(404, "app_not_found");
    h.call("GET", F).await.expect_error(404, "app_not_found");
    h.send(req("GET", "/fn/shop/cart/"))
        .await
        .expect_error(404, "app_not_found");
    assert_eq!(h.get_json("/api/v1/apps").await, json!({ "items": [] }));
    // The name is free again.
    h.create_app("shop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_endpoints() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    let list = "/api/v1/apps/shop/functions";
    assert_eq!(h.get_json(list).await, json!({ "items": [] }));

    let body = json!({
        "name": "cart", "memory_mb": 64, "timeout_ms": 2000, "env": {"MODE": "test"},
        "allowed_hosts": ["example.com"], "description": "the cart", "tags": ["a", "b"],
        "input_schema": {"type": "object"},
        "error_codes": [{"code": "E1", "description": "bad"}],
    });
    let cart = h.create_function("shop", body).await;
    assert_eq!(cart["app"], "shop");
    assert_eq!(cart["name"], "cart");
    assert_eq!(cart["runtime"], "wasm");
    assert_eq!(cart["memory_mb"], 64);
    assert_eq!(cart["timeout_ms"], 2000);
    assert_eq!(cart["env"], json!({"MODE": "test"}));
    assert_eq!(cart["allowed_hosts"], json!(["example.com"]));
    assert_eq!(cart["description"], "the cart");
    assert_eq!(cart["tags"], json!(["a", "b"]));
    assert_eq!(cart["input_schema"], json!({"type": "object"}));
    assert_eq!(
        cart["error_codes"],
        json!([{"code": "E1", "description": "bad"}])
    );
    assert_eq!(cart["code"], Value::Null);
    assert!(cart["id"].as_str().is_some_and(|id| !id.is_empty()));

    // Defaults.
    let plain = h.create_function("shop", json!({"name": "plain"})).await;
    assert_eq!(
        (plain["memory_mb"].clone(), plain["timeout_ms"].clone()),
        (json!(128), json!(30000))
    );
    assert_eq!(plain["env"], json!({}));
    assert_ne!(plain["id"], cart["id"]);

    assert_eq!(
        names(&h.get_json(list).await, "name"),
        [json!("cart"), json!("plain")]
    );
    assert_eq!(h.get_json(F).await, cart);

    // PATCH changes only the given fields.
    let r = h
        .call_json(
            "PATCH",
            F,
            json!({"timeout_ms": 5000, "env": {"MODE": "prod"}, "tags": []}),
        )
        .await;
    r.expect(200);
    let patched = r.json();
    assert_eq!(patched["timeout_ms"], 5000);
    assert_eq!(patched["env"], json!({"MODE": "prod"}));
    assert_eq!(patched["tags"], json!([]));
    assert_eq!(patched["memory_mb"], 64);
    assert_eq!(patched["description"], "the cart");
    assert_eq!(patched["id"], cart["id"]);
    assert_eq!(h.get_json(F).await, patched);

    h.call("DELETE", F).await.expect(204);
    h.call("GET", F)
        .await
        .expect_error(404, "function_not_found");
    assert_eq!(names(&h.get_json(list).await, "name"), [json!("plain")]);
    // The name can be reused; the new function has a new id.
    let again = h.create_function("shop", json!({"name": "cart"})).await;
    assert_ne!(again["id"], cart["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_and_version_endpoints() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_function("shop", json!({"name": "cart", "memory_mb": 64}))
        .await;
    let hello = arcus_testkit::fixtures::bytes("hello");
    let f = h.upload("shop", "cart", "hello").await;
    let sha = hex::encode(Sha256::digest(&hello));
    assert_eq!(f["code"], json!({"sha256": sha, "size": hello.len()}));
    assert_eq!(h.get_json(F).await["code"]["sha256"], sha);
    // application/octet-stream is accepted too.
    let echo = arcus_testkit::fixtures::bytes("echo");
    let r = h
        .upload_bytes("shop", "cart", echo.clone(), "application/octet-stream")
        .await;
    r.expect(200);
    let echo_sha = hex::encode(Sha256::digest(&echo));
    assert_eq!(r.json()["code"]["sha256"], echo_sha);
    h.upload("shop", "cart", "hello").await;

    assert_eq!(
        h.get_json(&format!("{F}/versions")).await,
        json!({ "items": [] })
    );
    let r = h
        .call_json(
            "POST",
            &format!("{F}/versions"),
            json!({"description": "first"}),
        )
        .await;
    r.expect(201);
    let v1 = r.json();
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["description"], "first");
    assert_eq!(v1["sha256"], sha);
    assert_eq!(v1["config"]["memory_mb"], 64);
    // An empty body is an empty description.
    let r = h.call("POST", &format!("{F}/versions")).await;
    r.expect(201);
    assert_eq!(
        (r.json()["version"].clone(), r.json()["description"].clone()),
        (json!(2), json!(""))
    );

    let versions = h.get_json(&format!("{F}/versions")).await;
    assert_eq!(names(&versions, "version"), [json!(1), json!(2)]);
    assert_eq!(h.get_json(&format!("{F}/versions/1")).await, v1);

    h.call("DELETE", &format!("{F}/versions/2"))
        .await
        .expect(204);
    h.call("GET", &format!("{F}/versions/2"))
        .await
        .expect_error(404, "version_not_found");
    assert_eq!(
        names(&h.get_json(&format!("{F}/versions")).await, "version"),
        [json!(1)]
    );
    // Numbers are never reused.
    assert_eq!(h.publish("shop", "cart").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_endpoints() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_function("shop", json!({"name": "cart"})).await;
    h.upload("shop", "cart", "hello").await;
    for n in 1..=3 {
        assert_eq!(h.publish("shop", "cart").await, n);
    }
    assert_eq!(
        h.get_json(&format!("{F}/aliases")).await,
        json!({ "items": [] })
    );

    let live = h
        .put_alias("shop", "cart", "live", json!({"version": 1}))
        .await;
    assert_eq!(live["name"], "live");
    assert_eq!(live["version"], 1);
    assert!(live.get("canary").is_none_or(Value::is_null), "{live}");
    assert!(live.get("previous").is_none_or(Value::is_null), "{live}");
    assert_eq!(h.get_json(&format!("{F}/aliases/live")).await, live);

    let moved = h
        .put_alias(
            "shop",
            "cart",
            "live",
            json!({"version": 2, "canary": {"version": 3, "weight": 25}}),
        )
        .await;
    assert_eq!(moved["version"], 2);
    assert_eq!(moved["canary"], json!({"version": 3, "weight": 25}));
    assert_eq!(moved["previous"], json!({"version": 1}));

    h.put_alias("shop", "cart", "beta", json!({"version": 3}))
        .await;
    let list = h.get_json(&format!("{F}/aliases")).await;
    assert_eq!(names(&list, "name"), [json!("beta"), json!("live")]);

    let r = h.call("POST", &format!("{F}/aliases/live/rollback")).await;
    r.expect(200);
    let back = r.json();
    assert_eq!(back["version"], 1);
    assert!(back.get("canary").is_none_or(Value::is_null), "{back}");
    assert_eq!(h.get_json(&format!("{F}/aliases/live")).await["version"], 1);

    h.call("DELETE", &format!("{F}/aliases/beta"))
        .await
        .expect(204);
    h.call("GET", &format!("{F}/aliases/beta"))
        .await
        .expect_error(404, "alias_not_found");
    assert_eq!(
        names(&h.get_json(&format!("{F}/aliases")).await, "name"),
        [json!("live")]
    );
    // Version 3 is no longer referenced and can go.
    h.call("DELETE", &format!("{F}/versions/3"))
        .await
        .expect(204);
}

/// The REST paths the router serves, with their methods (the route table in `lib.rs`).
fn served_paths() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("/api/v1/apps", &["get", "post"]),
        ("/api/v1/apps/{app}", &["delete", "get", "patch"]),
        ("/api/v1/apps/{app}/functions", &["get", "post"]),
        (
            "/api/v1/apps/{app}/functions/{function}",
            &["delete", "get", "patch"],
        ),
        ("/api/v1/apps/{app}/functions/{function}/code", &["put"]),
        (
            "/api/v1/apps/{app}/functions/{function}/versions",
            &["get", "post"],
        ),
        (
            "/api/v1/apps/{app}/functions/{function}/versions/{version}",
            &["delete", "get"],
        ),
        ("/api/v1/apps/{app}/functions/{function}/aliases", &["get"]),
        (
            "/api/v1/apps/{app}/functions/{function}/aliases/{alias}",
            &["delete", "get", "put"],
        ),
        (
            "/api/v1/apps/{app}/functions/{function}/aliases/{alias}/rollback",
            &["post"],
        ),
        ("/api/v1/apps/{app}/functions/{function}/invoke", &["post"]),
        (
            "/api/v1/apps/{app}/functions/{function}/invocations",
            &["get"],
        ),
        ("/api/v1/apps/{app}/functions/{function}/logs", &["get"]),
        ("/api/v1/apps/{app}/functions/{function}/stats", &["get"]),
        ("/api/v1/apps/{app}/invocations", &["get"]),
        ("/api/v1/apps/{app}/stats", &["get"]),
        ("/api/v1/apps/{app}/usage", &["get"]),
        ("/api/v1/apps/{app}/logs", &["get"]),
        ("/api/v1/apps/{app}/secrets", &["get"]),
        ("/api/v1/apps/{app}/secrets/{name}", &["delete", "put"]),
        (
            "/api/v1/apps/{app}/functions/{function}/instances",
            &["get"],
        ),
        (
            "/api/v1/apps/{app}/functions/{function}/triggers",
            &["get", "post"],
        ),
        (
            "/api/v1/apps/{app}/functions/{function}/triggers/{trigger}",
            &["delete", "get", "patch"],
        ),
        ("/hooks/{trigger_id}", &["post"]),
        ("/api/v1/invocations/{id}", &["get"]),
        ("/api/v1/tokens", &["get", "post"]),
        ("/api/v1/tokens/{id}", &["delete"]),
        ("/api/v1/access-keys", &["get", "post"]),
        ("/api/v1/access-keys/{id}", &["delete"]),
        ("/api/v1/audit", &["get"]),
        (
            "/api/v1/apps/{app}/functions/{function}/async-invocations",
            &["get"],
        ),
        (
            "/api/v1/apps/{app}/functions/{function}/dead-letters",
            &["get"],
        ),
        (
            "/api/v1/apps/{app}/functions/{function}/dead-letters/redrive",
            &["post"],
        ),
        (
            "/api/v1/apps/{app}/functions/{function}/dead-letters/{id}/redrive",
            &["post"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_the_api() {
    let h = Harness::new().await;
    // Served without a token.
    let r = h.send(req("GET", "/api/v1/openapi.json")).await;
    r.expect(200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let doc = r.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "openapi = {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let served: BTreeSet<&str> = served_paths().iter().map(|(p, _)| *p).collect();
    assert_eq!(
        documented, served,
        "documented paths differ from served ones"
    );
    for (path, methods) in served_paths() {
        let item = paths[path].as_object().unwrap();
        let mut ops: Vec<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "parameters")
            .collect();
        ops.sort_unstable();
        assert_eq!(ops, methods, "methods of {path}");
    }
    // Errors are documented with their shape, and the bearer scheme is declared.
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Each served path answers (not the router's 404) when called with the token.
    for (path, _) in served_paths() {
        let concrete = path
            .replace("{app}", "shop")
            .replace("{function}", "cart")
            .replace("{version}", "1")
            .replace("{alias}", "live")
            .replace("{id}", "x");
        let method = if path.ends_with("/rollback")
            || path.ends_with("/invoke")
            || path.ends_with("/redrive")
        {
            "POST"
        } else {
            "GET"
        };
        let method = if path.ends_with("/code") {
            "PUT"
        } else {
            method
        };
        let r = h.call(method, &concrete).await;
        let code = r.json()["error"]["code"].clone();
        assert_ne!(code, "not_found", "{method} {concrete} is not routed");
    }
}
