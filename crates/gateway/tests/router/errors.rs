//! Error code paths of the REST API and `/fn` (bad code, bad JSON, unknown resources,
//! conflicts, invalid names and values): status, `error.code`, `request_id` equal to the
//! `x-arcus-request-id` header, and a store left exactly as it was.

use crate::common::{F, req, setup};
use arcus_core::limits::MAX_API_BODY_BYTES;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_code_uploads_are_rejected_and_keep_the_old_code() {
    let h = setup().await;
    let code_before = h.get_json(F).await["code"].clone();
    assert!(code_before["sha256"].is_string());
    let put = |body: Vec<u8>, ct: &str| {
        req("PUT", &format!("{F}/code"))
            .token()
            .header("content-type", ct)
            .body(body)
    };

    let r = h
        .fails(
            put(b"this is not wasm at all".to_vec(), "application/wasm"),
            400,
            "invalid_code",
        )
        .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not WebAssembly"),
        "{}",
        r.text()
    );
    let r = h
        .fails(
            put(b"\0asm\x01\0\0\0".to_vec(), "application/wasm"),
            400,
            "invalid_code",
        )
        .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("core WebAssembly module"),
        "{}",
        r.text()
    );
    // A component header with a garbage body gets past the header check into the compiler.
    let mut truncated = arcus_testkit::fixtures::bytes("hello");
    truncated.truncate(200);
    h.fails(put(truncated, "application/wasm"), 400, "invalid_code")
        .await;
    h.fails(put(Vec::new(), "application/wasm"), 400, "invalid_code")
        .await;
    h.fails(
        put(Vec::new(), "application/octet-stream"),
        400,
        "invalid_code",
    )
    .await;

    let hello = arcus_testkit::fixtures::bytes("hello");
    h.fails(
        put(hello.clone(), "text/plain"),
        415,
        "unsupported_media_type",
    )
    .await;
    h.fails(
        put(hello.clone(), "application/json"),
        415,
        "unsupported_media_type",
    )
    .await;
    h.fails(
        req("PUT", &format!("{F}/code")).token().body(hello),
        415,
        "unsupported_media_type",
    )
    .await;

    assert_eq!(
        h.get_json(F).await["code"],
        code_before,
        "failed uploads must not change the code"
    );
    // The draft still runs the old code.
    let r = h.send(req("GET", "/fn/shop/cart@draft/").token()).await;
    r.expect(200);
    assert_eq!(r.text(), "hello, world\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_json_is_invalid_request() {
    let h = setup().await;
    let cases = [
        ("POST", "/api/v1/apps".to_string(), r#"{"name": "#),
        (
            "POST",
            "/api/v1/apps".to_string(),
            r#"{"name": "x", "colour": "red"}"#,
        ),
        (
            "POST",
            "/api/v1/apps".to_string(),
            r#"{"description": "no name"}"#,
        ),
        ("POST", "/api/v1/apps".to_string(), r#""shop""#),
        (
            "POST",
            "/api/v1/apps/shop/functions".to_string(),
            r#"{"name": "x", "memory": 64}"#,
        ),
        (
            "POST",
            "/api/v1/apps/shop/functions".to_string(),
            r#"{"name": "x", "memory_mb": "lots"}"#,
        ),
        ("PATCH", F.to_string(), r#"{"timeout_ms": 10,"#),
        ("PATCH", F.to_string(), r#"{"handler": "main"}"#),
        (
            "PUT",
            format!("{F}/aliases/beta"),
            r#"{"version": 1, "weight": 5}"#,
        ),
        ("PUT", format!("{F}/aliases/beta"), "{"),
        ("POST", format!("{F}/versions"), r#"{"description": "#),
        ("POST", format!("{F}/versions"), r#"{"notes": "x"}"#),
        ("POST", format!("{F}/invoke"), r#"{"event": "#),
    ];
    for (method, uri, body) in cases {
        let r = h
            .fails(
                req(method, &uri).token().raw_json(body),
                400,
                "invalid_request",
            )
            .await;
        assert!(
            !r.json()["error"]["message"].as_str().unwrap().is_empty(),
            "{method} {uri} {body}"
        );
    }
    // A JSON endpoint without a JSON content type.
    let r = req("POST", "/api/v1/apps").token().body(r#"{"name": "x"}"#);
    h.fails(r, 415, "unsupported_media_type").await;
    // Control-plane bodies are capped at 1 MiB.
    let big = json!({ "name": "x", "description": "d".repeat(MAX_API_BODY_BYTES) });
    h.fails(
        req("POST", "/api/v1/apps").token().json(&big),
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_are_404_with_their_own_codes() {
    let h = setup().await;
    let t = |m: &str, u: &str| req(m, u).token();
    // Unknown app.
    h.fails(t("GET", "/api/v1/apps/nope"), 404, "app_not_found")
        .await;
    h.fails(t("DELETE", "/api/v1/apps/nope"), 404, "app_not_found")
        .await;
    h.fails(
        t("GET", "/api/v1/apps/nope/functions"),
        404,
        "app_not_found",
    )
    .await;
    h.fails(
        t("POST", "/api/v1/apps/nope/functions").json(&json!({"name": "f"})),
        404,
        "app_not_found",
    )
    .await;
    h.fails(
        t("GET", "/api/v1/apps/nope/functions/cart"),
        404,
        "app_not_found",
    )
    .await;
    h.fails(req("GET", "/fn/nope/cart/"), 404, "app_not_found")
        .await;
    // Unknown function.
    let nf = "/api/v1/apps/shop/functions/nope";
    h.fails(t("GET", nf), 404, "function_not_found").await;
    h.fails(
        t("PATCH", nf).json(&json!({"timeout_ms": 5})),
        404,
        "function_not_found",
    )
    .await;
    h.fails(t("DELETE", nf), 404, "function_not_found").await;
    let hello = arcus_testkit::fixtures::bytes("hello");
    let put = t("PUT", &format!("{nf}/code"))
        .header("content-type", "application/wasm")
        .body(hello);
    h.fails(put, 404, "function_not_found").await;
    h.fails(
        t("POST", &format!("{nf}/versions")),
        404,
        "function_not_found",
    )
    .await;
    h.fails(
        t("GET", &format!("{nf}/versions")),
        404,
        "function_not_found",
    )
    .await;
    h.fails(
        t("GET", &format!("{nf}/versions/1")),
        404,
        "function_not_found",
    )
    .await;
    h.fails(
        t("GET", &format!("{nf}/aliases")),
        404,
        "function_not_found",
    )
    .await;
    h.fails(
        t("PUT", &format!("{nf}/aliases/live")).json(&json!({"version": 1})),
        404,
        "function_not_found",
    )
    .await;
    h.fails(
        t("POST", &format!("{nf}/invoke")).json(&json!({})),
        404,
        "function_not_found",
    )
    .await;
    h.fails(
        t("GET", &format!("{nf}/invocations")),
        404,
        "function_not_found",
    )
    .await;
    h.fails(t("GET", &format!("{nf}/logs")), 404, "function_not_found")
        .await;
    h.fails(req("GET", "/fn/shop/nope/"), 404, "function_not_found")
        .await;
    // Unknown version.
    h.fails(
        t("GET", &format!("{F}/versions/9")),
        404,
        "version_not_found",
    )
    .await;
    h.fails(
        t("DELETE", &format!("{F}/versions/9")),
        404,
        "version_not_found",
    )
    .await;
    h.fails(
        t("PUT", &format!("{F}/aliases/live")).json(&json!({"version": 9})),
        404,
        "version_not_found",
    )
    .await;
    let canary = json!({"version": 1, "canary": {"version": 9, "weight": 10}});
    h.fails(
        t("PUT", &format!("{F}/aliases/beta")).json(&canary),
        404,
        "version_not_found",
    )
    .await;
    h.fails(req("GET", "/fn/shop/cart@9/"), 404, "version_not_found")
        .await;
    h.fails(
        t("POST", &format!("{F}/invoke?qualifier=9")).json(&json!({})),
        404,
        "version_not_found",
    )
    .await;
    // Unknown alias.
    h.fails(
        t("GET", &format!("{F}/aliases/beta")),
        404,
        "alias_not_found",
    )
    .await;
    h.fails(
        t("DELETE", &format!("{F}/aliases/beta")),
        404,
        "alias_not_found",
    )
    .await;
    h.fails(
        t("POST", &format!("{F}/aliases/beta/rollback")),
        404,
        "alias_not_found",
    )
    .await;
    h.fails(req("GET", "/fn/shop/cart@beta/"), 404, "alias_not_found")
        .await;
    h.fails(
        t("POST", &format!("{F}/invoke?qualifier=beta")).json(&json!({})),
        404,
        "alias_not_found",
    )
    .await;
    // Unknown routes.
    h.fails(req("GET", "/nope"), 404, "not_found").await;
    h.fails(t("GET", "/api/v1/nope"), 404, "not_found").await;
    h.fails(req("GET", "/api/v1/nope"), 404, "not_found").await;
    h.fails(t("GET", "/api/v2/apps"), 404, "not_found").await;
    h.fails(req("GET", "/fn/shop"), 404, "not_found").await;
    // Known routes with a method they do not serve get the error shape too.
    h.fails(t("DELETE", "/api/v1/apps"), 405, "method_not_allowed")
        .await;
    h.fails(req("POST", "/healthz"), 405, "method_not_allowed")
        .await;
    h.fails(req("GET", "/fn//cart/"), 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unqualified_calls_without_live_are_not_deployed() {
    let h = setup().await;
    h.call("DELETE", &format!("{F}/aliases/live"))
        .await
        .expect(204);
    let r = h
        .fails(req("GET", "/fn/shop/cart/"), 404, "not_deployed")
        .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("live"),
        "{}",
        r.text()
    );
    h.fails(
        req("POST", "/fn/shop/cart/x?y=1").body("hi"),
        404,
        "not_deployed",
    )
    .await;
    h.fails(
        req("POST", &format!("{F}/invoke")).token().json(&json!({})),
        404,
        "not_deployed",
    )
    .await;
    // A function without code has nothing to run, not even as a draft.
    h.fails(req("GET", "/fn/shop/empty/"), 404, "not_deployed")
        .await;
    h.fails(
        req("GET", "/fn/shop/empty@draft/").token(),
        404,
        "not_deployed",
    )
    .await;
    // Versions still answer by number.
    let r = h.send(req("GET", "/fn/shop/cart@2/")).await;
    r.expect(200);
    assert_eq!(r.header("x-arcus-version"), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_409_and_change_nothing() {
    let h = setup().await;
    let t = |m: &str, u: &str| req(m, u).token();
    h.fails(
        t("POST", "/api/v1/apps").json(&json!({"name": "shop"})),
        409,
        "already_exists",
    )
    .await;
    let dup = json!({"name": "cart", "memory_mb": 64});
    h.fails(
        t("POST", "/api/v1/apps/shop/functions").json(&dup),
        409,
        "already_exists",
    )
    .await;
    // `live` points at version 1.
    h.fails(t("DELETE", &format!("{F}/versions/1")), 409, "conflict")
        .await;
    // A canary counts as a reference too.
    h.publish("shop", "cart").await;
    h.put_alias(
        "shop",
        "cart",
        "beta",
        json!({"version": 3, "canary": {"version": 2, "weight": 10}}),
    )
    .await;
    h.fails(t("DELETE", &format!("{F}/versions/2")), 409, "conflict")
        .await;
    h.fails(t("DELETE", &format!("{F}/versions/3")), 409, "conflict")
        .await;
    // An app with functions needs force.
    h.fails(t("DELETE", "/api/v1/apps/shop"), 409, "conflict")
        .await;
    h.fails(
        t("DELETE", "/api/v1/apps/shop?force=false"),
        409,
        "conflict",
    )
    .await;
    // An alias that never moved has nothing to roll back to.
    h.fails(
        t("POST", &format!("{F}/aliases/live/rollback")),
        409,
        "conflict",
    )
    .await;
    // Nothing to publish without code.
    h.fails(
        t("POST", "/api/v1/apps/shop/functions/empty/versions"),
        409,
        "conflict",
    )
    .await;
    // The alias still routes to its version.
    let r = h.send(req("GET", "/fn/shop/cart/")).await;
    r.expect(200);
    assert_eq!(r.header("x-arcus-version"), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_and_values_are_400() {
    let h = setup().await;
    let t = |m: &str, u: &str| req(m, u).token();
    let apps = "/api/v1/apps";
    h.fails(
        t("POST", apps).json(&json!({"name": "Bad_Name"})),
        400,
        "invalid_name",
    )
    .await;
    h.fails(
        t("POST", apps).json(&json!({"name": ""})),
        400,
        "invalid_name",
    )
    .await;
    h.fails(
        t("POST", apps).json(&json!({"name": "-x"})),
        400,
        "invalid_name",
    )
    .await;
    h.fails(
        t("POST", apps).json(&json!({"name": "a".repeat(64)})),
        400,
        "invalid_name",
    )
    .await;
    let fns = "/api/v1/apps/shop/functions";
    h.fails(
        t("POST", fns).json(&json!({"name": "Bad_Name"})),
        400,
        "invalid_name",
    )
    .await;
    h.fails(
        t("POST", fns).json(&json!({"name": "a/b"})),
        400,
        "invalid_name",
    )
    .await;
    for alias in ["draft", "latest", "9x", "Live", "a_b"] {
        let r = t("PUT", &format!("{F}/aliases/{alias}")).json(&json!({"version": 1}));
        h.fails(r, 400, "invalid_name").await;
    }
    h.fails(
        t("PUT", &format!("{F}/aliases/%24LATEST")).json(&json!({"version": 1})),
        400,
        "invalid_name",
    )
    .await;
    h.fails(req("GET", "/fn/shop/cart@0/"), 400, "invalid_name")
        .await;
    h.fails(req("GET", "/fn/shop/cart@Bad/"), 400, "invalid_name")
        .await;
    h.fails(
        t("POST", &format!("{F}/invoke?qualifier=9x")).json(&json!({})),
        400,
        "invalid_name",
    )
    .await;

    // Out-of-range values.
    for bad in [
        json!({"name": "f", "memory_mb": 8}),
        json!({"name": "f", "memory_mb": 8192}),
        json!({"name": "f", "timeout_ms": 0}),
        json!({"name": "f", "env": {"1X": "v"}}),
        json!({"name": "f", "tags": [""]}),
        json!({"name": "f", "input_schema": 5}),
        json!({"name": "f", "description": "d".repeat(2000)}),
    ] {
        h.fails(t("POST", fns).json(&bad), 400, "invalid_request")
            .await;
    }
    h.fails(
        t("PATCH", F).json(&json!({"memory_mb": 8})),
        400,
        "invalid_request",
    )
    .await;
    h.fails(
        t("PATCH", F).json(&json!({"timeout_ms": 5, "memory_mb": 8})),
        400,
        "invalid_request",
    )
    .await;
    let heavy = json!({"version": 1, "canary": {"version": 2, "weight": 101}});
    h.fails(
        t("PUT", &format!("{F}/aliases/beta")).json(&heavy),
        400,
        "invalid_request",
    )
    .await;
    let same = json!({"version": 1, "canary": {"version": 1, "weight": 10}});
    h.fails(
        t("PUT", &format!("{F}/aliases/beta")).json(&same),
        400,
        "invalid_request",
    )
    .await;
    h.fails(
        t("GET", &format!("{F}/versions/abc")),
        400,
        "invalid_request",
    )
    .await;
    h.fails(
        t("GET", &format!("{F}/invocations?limit=0")),
        400,
        "invalid_request",
    )
    .await;
    h.fails(
        t("GET", &format!("{F}/logs?limit=1001")),
        400,
        "invalid_request",
    )
    .await;
    h.fails(
        t("DELETE", "/api/v1/apps/shop?force=maybe"),
        400,
        "invalid_request",
    )
    .await;
}
