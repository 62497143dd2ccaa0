//! The audit log through the router: changes read back with who, what, before and after;
//! secrets and token secrets never in it; reads and invokes not recorded; an app
//! manager reads only its app's entries.

use crate::common::{Harness, req};
use serde_json::{Value, json};

const F: &str = "/api/v1/apps/shop/functions/cart";

/// Every entry about `app` (admin token), newest first.
async fn entries(h: &Harness, app: &str) -> Vec<Value> {
    let page = h.get_json(&format!("/api/v1/audit?app={app}")).await;
    page["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_recorded_with_who_what_before_and_after() {
    let h = Harness::new().await;
    h.deploy("shop", "cart", "hello", json!({ "memory_mb": 128 }))
        .await;
    h.call_json("PATCH", F, json!({ "memory_mb": 256 }))
        .await
        .expect(200);
    h.get_json(F).await;
    h.call_json("POST", &format!("{F}/invoke"), json!({}))
        .await
        .expect(200);
    let got = entries(&h, "shop").await;
    // create app, create function, code, publish, alias, patch — not the GET, not the invoke.
    let routes: Vec<_> = got
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["route"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            "PATCH /api/v1/apps/{app}/functions/{function}",
            "PUT /api/v1/apps/{app}/functions/{function}/aliases/{alias}",
            "POST /api/v1/apps/{app}/functions/{function}/versions",
            "PUT /api/v1/apps/{app}/functions/{function}/code",
            "POST /api/v1/apps/{app}/functions",
            "POST /api/v1/apps",
        ]
    );
    let patch = &got[0];
    assert_eq!(patch["actor"], "admin");
    assert_eq!(patch["app"], "shop");
    assert_eq!(patch["function"], "cart");
    assert_eq!(patch["status"], 200);
    assert_eq!(patch["before"]["memory_mb"], 128);
    assert_eq!(patch["after"]["memory_mb"], 256);
    assert!(patch["request_id"].as_str().unwrap().len() > 10);
    let alias = &got[1];
    assert_eq!(alias["resource"], "live");
    assert!(alias.get("before").is_none(), "{alias}");
    assert_eq!(alias["after"]["version"], 1);

    // Moving an alias records its old target; a refused change records its status.
    h.publish("shop", "cart").await;
    h.put_alias("shop", "cart", "live", json!({ "version": 2 }))
        .await;
    let moved = &entries(&h, "shop").await[0];
    assert_eq!(moved["before"]["version"], 1);
    assert_eq!(moved["after"]["version"], 2);
    h.call_json("PATCH", F, json!({ "memory_mb": 1 }))
        .await
        .expect_error(400, "invalid_request");
    let refused = &entries(&h, "shop").await[0];
    assert_eq!(refused["status"], 400);
    assert!(refused.get("after").is_none(), "{refused}");

    // A scoped token is named by its id, and its secret is in no entry.
    let created = h
        .call_json(
            "POST",
            "/api/v1/tokens",
            json!({ "scopes": ["app:shop:manage"] }),
        )
        .await;
    created.expect(201);
    let created = created.json();
    let (token, id) = (
        created["token"].as_str().unwrap(),
        created["id"].as_str().unwrap(),
    );
    h.send(
        req("PATCH", "/api/v1/apps/shop")
            .bearer(token)
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({ "description": "by manager" })),
    )
    .await
    .expect(200);
    let by_manager = &entries(&h, "shop").await[0];
    assert_eq!(by_manager["actor"], id);
    assert_eq!(by_manager["after"]["description"], "by manager");
    assert_eq!(by_manager["forwarded_for"], "203.0.113.9");
    let all = h.get_json("/api/v1/audit?limit=1000").await;
    let token_entry = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["route"] == "/api/v1/tokens")
        .unwrap()
        .clone();
    assert_eq!(token_entry["resource"], id);
    assert_eq!(token_entry["after"]["scopes"], json!(["app:shop:manage"]));
    let secret_part = token.rsplit('_').next().unwrap();
    assert!(
        !all.to_string().contains(secret_part),
        "token secret in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_by_name_only() {
    let h = Harness::new().await;
    h.engine
        .set_secret_key(&arcus_engine::SecretKey::generate());
    h.create_app("shop").await;
    let value = "hunter2-very-secret-value";
    for _ in 0..2 {
        h.call_json(
            "PUT",
            "/api/v1/apps/shop/secrets/DB_PASS",
            json!({ "value": value }),
        )
        .await
        .expect(200);
    }
    h.call("DELETE", "/api/v1/apps/shop/secrets/DB_PASS")
        .await
        .expect(204);
    let got = entries(&h, "shop").await;
    assert_eq!(got.len(), 4, "{got:?}");
    let (deleted, replaced) = (&got[0], &got[1]);
    assert_eq!(deleted["method"], "DELETE");
    assert_eq!(deleted["resource"], "DB_PASS");
    assert_eq!(deleted["before"], json!({ "name": "DB_PASS" }));
    assert_eq!(replaced["before"], json!({ "name": "DB_PASS" }));
    assert_eq!(replaced["after"]["name"], "DB_PASS");
    let text = serde_json::to_string(&got).unwrap();
    assert!(
        !text.contains(value),
        "secret value in the audit log: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_managers_read_only_their_apps_entries() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_app("other").await;
    let token = h
        .call_json(
            "POST",
            "/api/v1/tokens",
            json!({ "scopes": ["app:shop:manage"] }),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mine = h
        .send(req("GET", "/api/v1/audit?app=shop").bearer(&token))
        .await;
    mine.expect(200);
    let items = mine.json()["items"].as_array().unwrap().clone();
    assert!(!items.is_empty() && items.iter().all(|e| e["app"] == "shop"));
    h.send(req("GET", "/api/v1/audit?app=other").bearer(&token))
        .await
        .expect_error(403, "forbidden");
    h.send(req("GET", "/api/v1/audit").bearer(&token))
        .await
        .expect_error(403, "forbidden");
    h.send(req("GET", "/api/v1/audit"))
        .await
        .expect_error(401, "unauthorized");
    h.call("GET", "/api/v1/audit?since=yesterday")
        .await
        .expect_error(400, "invalid_request");
    h.call("GET", "/api/v1/audit?cursor=x")
        .await
        .expect_error(400, "invalid_request");
    // Pages: two entries at a time, nothing lost or repeated.
    let first = h.get_json("/api/v1/audit?limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = h
        .get_json(&format!("/api/v1/audit?limit=1&cursor={cursor}"))
        .await;
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
}
