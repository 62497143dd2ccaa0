//! The token API through the router: the per-app token limit (409, nothing stored), what
//! a token's view shows (never its secret or hash), and an admin-scoped token acting as
//! admin.

use crate::common::{Harness, req};
use arcus_core::tokens::MAX_TOKENS_PER_APP;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_per_app_are_limited() {
    let h = Harness::new().await;
    for i in 0..MAX_TOKENS_PER_APP {
        let scope = if i % 2 == 0 {
            "app:a:invoke"
        } else {
            "function:a/f:invoke"
        };
        h.call_json("POST", "/api/v1/tokens", json!({"scopes": [scope]}))
            .await
            .expect(201);
    }
    let over = h
        .call_json(
            "POST",
            "/api/v1/tokens",
            json!({"scopes": ["app:b:invoke", "app:a:manage"]}),
        )
        .await;
    over.expect_error(409, "conflict");
    let listed = h.get_json("/api/v1/tokens").await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), MAX_TOKENS_PER_APP);
    assert!(!listed.to_string().contains("app:b:invoke"));
    // Other apps have room.
    h.call_json(
        "POST",
        "/api/v1/tokens",
        json!({"scopes": ["app:b:invoke"]}),
    )
    .await
    .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_tokens_show_their_secret_once() {
    let h = Harness::new().await;
    let r = h
        .call_json(
            "POST",
            "/api/v1/tokens",
            json!({"scopes": ["admin"], "name": "ops", "expires_in": "2h"}),
        )
        .await;
    r.expect(201);
    let created = r.json();
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap();
    assert_eq!(token.len(), "arcus_".len() + 16 + 1 + 64);
    assert!(token.starts_with(&format!("arcus_{id}_")));
    assert_eq!(created["scopes"], json!(["admin"]));
    assert!(created["expires_at"].is_string());
    assert!(created["last_used_at"].is_null());
    // An admin-scoped token is an admin: it creates apps.
    let app = h
        .send(
            req("POST", "/api/v1/apps")
                .bearer(&token)
                .json(&json!({"name": "x"})),
        )
        .await;
    app.expect(201);
    let listed = h.get_json("/api/v1/tokens").await.to_string();
    let secret = token.rsplit('_').next().unwrap();
    assert!(!listed.contains(secret), "{listed}");
    assert!(!listed.contains("sha256"), "{listed}");
    // Unknown fields and bad scopes are refused.
    for body in [
        json!({"scopes": ["admin"], "secret": "mine"}),
        json!({"scopes": ["app:x:own"]}),
        json!({"scopes": "admin"}),
    ] {
        h.call_json("POST", "/api/v1/tokens", body)
            .await
            .expect_error(400, "invalid_request");
    }
    h.call("DELETE", "/api/v1/tokens/nope")
        .await
        .expect_error(404, "not_found");
}
