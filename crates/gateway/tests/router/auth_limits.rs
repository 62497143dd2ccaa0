//! Auth and size-limit error paths: 401 on every REST endpoint and on `@draft`, 413 for
//! code over 100 MiB and payloads over 6 MiB; each leaves the store exactly as it was.

use crate::common::{F, Harness, TOKEN, req, setup};
use arcus_core::limits::{MAX_SYNC_PAYLOAD_BYTES, MAX_WASM_CODE_BYTES};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_over_100_mib_is_payload_too_large() {
    let h = setup().await;
    let code_before = h.get_json(F).await["code"].clone();
    let big = vec![0u8; MAX_WASM_CODE_BYTES + 1];
    let put = req("PUT", &format!("{F}/code"))
        .token()
        .header("content-type", "application/wasm")
        .body(big);
    h.fails(put, 413, "payload_too_large").await;
    assert_eq!(h.get_json(F).await["code"], code_before);
}

/// Every REST endpoint behind the token, with a body that would otherwise succeed.
fn protected_requests() -> Vec<(&'static str, String, Option<serde_json::Value>)> {
    vec![
        (
            "POST",
            "/api/v1/apps".into(),
            Some(json!({"name": "other"})),
        ),
        ("GET", "/api/v1/apps".into(), None),
        ("GET", "/api/v1/apps/shop".into(), None),
        ("DELETE", "/api/v1/apps/shop?force=true".into(), None),
        (
            "POST",
            "/api/v1/apps/shop/functions".into(),
            Some(json!({"name": "g"})),
        ),
        ("GET", "/api/v1/apps/shop/functions".into(), None),
        ("GET", F.into(), None),
        ("PATCH", F.into(), Some(json!({"timeout_ms": 1000}))),
        ("DELETE", F.into(), None),
        ("PUT", format!("{F}/code"), None),
        ("POST", format!("{F}/versions"), None),
        ("GET", format!("{F}/versions"), None),
        ("GET", format!("{F}/versions/2"), None),
        ("DELETE", format!("{F}/versions/2"), None),
        ("GET", format!("{F}/aliases"), None),
        (
            "PUT",
            format!("{F}/aliases/live"),
            Some(json!({"version": 2})),
        ),
        ("GET", format!("{F}/aliases/live"), None),
        ("DELETE", format!("{F}/aliases/live"), None),
        ("POST", format!("{F}/aliases/live/rollback"), None),
        ("POST", format!("{F}/invoke"), Some(json!({}))),
        ("GET", format!("{F}/invocations"), None),
        ("GET", format!("{F}/logs"), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_endpoint_needs_a_valid_token() {
    let h = setup().await;
    for (method, uri, body) in protected_requests() {
        let build = |auth: Option<&str>| {
            let mut r = req(method, &uri);
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            match (&body, uri.ends_with("/code")) {
                (Some(b), _) => r.json(b),
                (None, true) => r
                    .header("content-type", "application/wasm")
                    .body(arcus_testkit::fixtures::bytes("echo")),
                (None, false) => r,
            }
        };
        h.fails(build(None), 401, "unauthorized").await;
        h.fails(build(Some("Bearer wrong-token")), 401, "unauthorized")
            .await;
        h.fails(build(Some(&format!("Basic {TOKEN}"))), 401, "unauthorized")
            .await;
        h.fails(build(Some("Bearer ")), 401, "unauthorized").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_on_fn_needs_a_token() {
    let h = setup().await;
    h.fails(req("GET", "/fn/shop/cart@draft/"), 401, "unauthorized")
        .await;
    h.fails(req("GET", "/fn/shop/cart@latest/"), 401, "unauthorized")
        .await;
    h.fails(req("GET", "/fn/shop/cart@$LATEST/"), 401, "unauthorized")
        .await;
    h.fails(
        req("POST", "/fn/shop/cart@draft/x")
            .bearer("wrong")
            .body("hi"),
        401,
        "unauthorized",
    )
    .await;
    // Nothing ran: no invocation was recorded.
    h.engine.flush().await;
    assert_eq!(
        h.get_json(&format!("{F}/invocations")).await["items"],
        json!([])
    );
    // With the token the draft answers; versions and aliases stay public.
    h.send(req("GET", "/fn/shop/cart@draft/").token())
        .await
        .expect(200);
    h.send(req("GET", "/fn/shop/cart@1/")).await.expect(200);
    h.send(req("GET", "/fn/shop/cart/")).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_over_6_mib_are_payload_too_large() {
    let h = Harness::new().await;
    h.deploy("shop", "echo", "echo", json!({})).await;
    let big = vec![b'a'; MAX_SYNC_PAYLOAD_BYTES + 1];
    // Without a content-length (streamed) and with one (rejected before reading).
    h.fails(
        req("POST", "/fn/shop/echo/").body(big.clone()),
        413,
        "payload_too_large",
    )
    .await;
    let len = big.len().to_string();
    let r = req("POST", "/fn/shop/echo/")
        .header("content-length", &len)
        .body(big.clone());
    h.fails(r, 413, "payload_too_large").await;
    h.fails(
        req("POST", "/fn/shop/echo@draft/").token().body(big),
        413,
        "payload_too_large",
    )
    .await;
    // The JSON event of /invoke has the same limit.
    let event = json!("a".repeat(MAX_SYNC_PAYLOAD_BYTES + 1)).to_string();
    let uri = "/api/v1/apps/shop/functions/echo/invoke";
    h.fails(
        req("POST", uri).token().raw_json(event),
        413,
        "payload_too_large",
    )
    .await;
    h.engine.flush().await;
    let records = h
        .get_json("/api/v1/apps/shop/functions/echo/invocations")
        .await;
    assert_eq!(
        records["items"],
        json!([]),
        "a rejected payload must not run the function"
    );
    // Up to the limit is fine, even past the 1 MiB of control-plane bodies.
    let event = json!("b".repeat(2 * 1024 * 1024)).to_string();
    let r = h
        .send(req("POST", uri).token().raw_json(event.clone()))
        .await;
    r.expect(200);
    assert_eq!(r.json()["body"].as_str().unwrap().len(), event.len());
}
