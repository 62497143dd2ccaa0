//! End-to-end: scoped tokens against a real node. The cross-tenant matrix — tokens of app
//! A (manage, invoke, function-invoke) against every route of app B, the same answer for
//! B's existing and missing functions — function-invoke tokens that invoke one function
//! and manage nothing, `auth: token` functions on `/fn` (sync and async, with the consumed
//! `Authorization` header never reaching the function), expiry, revocation, no privilege
//! escalation, and the `arcus token` / `arcus fn update --auth` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_core::model::FunctionAuth;
use arcus_core::tokens::{CreateToken, Scope};
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, http, ok, ok_json, poll};
use serde_json::{Value, json};
use std::time::Duration;

fn spec(name: &str, auth: FunctionAuth) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        auth: Some(auth),
        ..Default::default()
    }
}

/// A token minted by the admin client.
async fn mint(node: &Node, scopes: &[&str], expires_in: Option<&str>) -> (String, String) {
    let created = node
        .client()
        .create_token(&CreateToken {
            scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
            name: scopes.join(" "),
            expires_in: expires_in.map(String::from),
            expires_at: None,
        })
        .await
        .unwrap();
    (created.view.id, created.token)
}

/// Calls `method path` (relative to the node) with an optional bearer token and JSON
/// body: the status and the body (JSON or null).
async fn call(
    node: &Node,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http().request(method.parse().unwrap(), format!("{}{path}", node.url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Every app-scoped route of function `f` of app `app`, with a body where one is needed.
fn app_routes(app: &str, f: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let a = format!("/api/v1/apps/{app}");
    let p = format!("{a}/functions/{f}");
    vec![
        ("GET", a.clone(), None),
        ("PATCH", a.clone(), Some(json!({"description": "x"}))),
        ("DELETE", format!("{a}?force=true"), None),
        ("GET", format!("{a}/functions"), None),
        (
            "POST",
            format!("{a}/functions"),
            Some(json!({"name": "new"})),
        ),
        ("GET", p.clone(), None),
        ("PATCH", p.clone(), Some(json!({"timeout_ms": 1000}))),
        ("DELETE", format!("{p}?force=true"), None),
        ("PUT", format!("{p}/code"), None),
        ("GET", format!("{p}/versions"), None),
        ("POST", format!("{p}/versions"), None),
        ("GET", format!("{p}/versions/1"), None),
        ("DELETE", format!("{p}/versions/1"), None),
        ("GET", format!("{p}/aliases"), None),
        ("GET", format!("{p}/aliases/live"), None),
        (
            "PUT",
            format!("{p}/aliases/live"),
            Some(json!({"version": 1})),
        ),
        ("POST", format!("{p}/aliases/live/rollback"), None),
        ("GET", format!("{p}/triggers"), None),
        (
            "POST",
            format!("{p}/triggers"),
            Some(json!({"name": "t", "type": "cron", "schedule": "* * * * * *"})),
        ),
        ("GET", format!("{p}/invocations"), None),
        ("GET", format!("{p}/async-invocations"), None),
        ("GET", format!("{p}/dead-letters"), None),
        ("POST", format!("{p}/dead-letters/redrive"), None),
        ("GET", format!("{p}/logs"), None),
        ("GET", format!("{p}/stats"), None),
        ("GET", format!("{p}/instances"), None),
        ("GET", format!("{a}/invocations"), None),
        ("GET", format!("{a}/logs"), None),
        ("GET", format!("{a}/stats"), None),
        ("GET", format!("{a}/usage"), None),
        ("GET", format!("{a}/secrets"), None),
        (
            "PUT",
            format!("{a}/secrets/db"),
            Some(json!({"value": "v"})),
        ),
        ("DELETE", format!("{a}/secrets/db"), None),
        ("POST", format!("{p}/invoke"), Some(json!({}))),
    ]
}

/// Two apps, each with a public `echo` and an `auth: token` `secure` function.
async fn two_apps() -> Node {
    let node = Node::start(bin());
    for app in ["a", "b"] {
        node.create_app(app).await;
        node.deploy(
            app,
            spec("echo", FunctionAuth::Public),
            &fixtures::path("echo"),
        )
        .await;
        node.deploy(
            app,
            spec("secure", FunctionAuth::Token),
            &fixtures::path("echo"),
        )
        .await;
    }
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_one_app_touch_nothing_of_another() {
    let node = two_apps().await;
    let (_, manage) = mint(&node, &["app:a:manage"], None).await;
    let (_, invoke) = mint(&node, &["app:a:invoke"], None).await;
    let (_, one_fn) = mint(&node, &["function:a/echo:invoke"], None).await;
    let (b_id, b_invoke) = mint(&node, &["app:b:invoke"], None).await;

    for token in [&manage, &invoke, &one_fn] {
        for f in ["echo", "nope"] {
            for (method, path, body) in app_routes("b", f) {
                let (status, got) = call(&node, method, &path, Some(token), body).await;
                assert_eq!(
                    (status, code(&got)),
                    (403, "forbidden"),
                    "{method} {path}: {got}"
                );
            }
            // /fn: B's token-protected function and a missing one answer alike.
            for target in ["secure", "nope", "echo@draft", "nope@draft"] {
                let path = format!("/fn/b/{target}/");
                let (status, got) = call(&node, "GET", &path, Some(token), None).await;
                assert_eq!((status, code(&got)), (403, "forbidden"), "{path}");
            }
        }
        // B's tokens are invisible and cannot be revoked; no B scope can be minted.
        let (status, got) = call(
            &node,
            "DELETE",
            &format!("/api/v1/tokens/{b_id}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!((status, code(&got)), (404, "not_found"), "{got}");
        let (status, _) = call(
            &node,
            "POST",
            "/api/v1/tokens",
            Some(token),
            Some(json!({"scopes": ["app:b:invoke"]})),
        )
        .await;
        assert_eq!(status, 403);
        // App-level and node-level routes.
        let (status, _) = call(
            &node,
            "POST",
            "/api/v1/apps",
            Some(token),
            Some(json!({"name": "c"})),
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = call(&node, "GET", "/metrics", Some(token), None).await;
        assert_eq!(status, 403);
    }
    // Nothing of B changed, and B's token still works.
    let (status, got) = call(
        &node,
        "GET",
        "/api/v1/apps/b/functions",
        Some(node.token()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["items"].as_array().unwrap().len(), 2, "{got}");
    assert_eq!(got["items"][0]["timeout_ms"], 30000);
    let (status, _) = call(&node, "GET", "/fn/b/secure/", Some(&b_invoke), None).await;
    assert_eq!(status, 200);
    // The manage token sees its own app only, and only its own app's tokens.
    let (_, apps) = call(&node, "GET", "/api/v1/apps", Some(&manage), None).await;
    assert_eq!(apps["items"].as_array().unwrap().len(), 1, "{apps}");
    assert_eq!(apps["items"][0]["name"], "a");
    let (_, listed) = call(&node, "GET", "/api/v1/tokens", Some(&manage), None).await;
    let scopes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["scopes"].as_array().unwrap())
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        ["app:a:manage", "app:a:invoke", "function:a/echo:invoke"]
    );
    assert!(listed.to_string().find("sha256").is_none());
    // Invocation records of another app look like missing ones.
    let (status, accepted) = call(
        &node,
        "POST",
        "/api/v1/apps/b/functions/echo/invoke?mode=async",
        Some(node.token()),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 202);
    let id = accepted["invocation_id"].as_str().unwrap();
    for path in [
        format!("/api/v1/invocations/{id}"),
        "/api/v1/invocations/nope".to_string(),
    ] {
        let (status, got) = call(&node, "GET", &path, Some(&manage), None).await;
        assert_eq!(
            (status, code(&got)),
            (404, "invocation_not_found"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_tokens_invoke_and_manage_nothing() {
    let node = two_apps().await;
    let (_, one_fn) = mint(&node, &["function:a/echo:invoke"], None).await;
    let (_, invoke) = mint(&node, &["app:a:invoke"], None).await;
    let (_, manage) = mint(&node, &["app:a:manage"], None).await;
    let invoke_path = |f: &str| format!("/api/v1/apps/a/functions/{f}/invoke");
    let (status, _) = call(
        &node,
        "POST",
        &invoke_path("echo"),
        Some(&one_fn),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &node,
        "POST",
        &invoke_path("secure"),
        Some(&one_fn),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(&node, "GET", "/fn/a/secure/", Some(&one_fn), None).await;
    assert_eq!(status, 403);
    for token in [&one_fn, &invoke] {
        for (method, path, body) in app_routes("a", "echo") {
            if path.ends_with("/invoke") {
                continue;
            }
            let (status, got) = call(&node, method, &path, Some(token), body).await;
            assert_eq!((status, code(&got)), (403, "forbidden"), "{method} {path}");
        }
        // Invoke tokens mint nothing, not even their own scope.
        let (status, _) = call(
            &node,
            "POST",
            "/api/v1/tokens",
            Some(token),
            Some(json!({"scopes": ["function:a/echo:invoke"]})),
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = call(&node, "GET", "/fn/a/echo@draft/", Some(token), None).await;
        assert_eq!(status, 403);
    }
    let (status, _) = call(
        &node,
        "POST",
        &invoke_path("secure"),
        Some(&invoke),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&node, "GET", "/fn/a/secure/", Some(&invoke), None).await;
    assert_eq!(status, 200);
    // Manage covers invoking and the draft.
    let (status, _) = call(&node, "GET", "/fn/a/secure@draft/", Some(&manage), None).await;
    assert_eq!(status, 200);
    // A manage token mints within its app, never wider.
    for (scopes, want) in [
        (json!(["app:a:invoke", "function:a/secure:invoke"]), 201),
        (json!(["app:a:manage"]), 201),
        (json!(["admin"]), 403),
        (json!(["app:a:invoke", "app:b:invoke"]), 403),
    ] {
        let (status, got) = call(
            &node,
            "POST",
            "/api/v1/tokens",
            Some(&manage),
            Some(json!({"scopes": scopes})),
        )
        .await;
        assert_eq!(status, want, "{scopes}: {got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_functions_need_a_token_and_never_see_it() {
    let node = two_apps().await;
    let (_, invoke) = mint(&node, &["app:a:invoke"], None).await;
    // Without a token: 401 for the protected function; a missing one stays 404; public open.
    let (status, got) = call(&node, "GET", "/fn/a/secure/", None, None).await;
    assert_eq!((status, code(&got)), (401, "unauthorized"));
    let (status, _) = call(&node, "GET", "/fn/a/nope/", None, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&node, "GET", "/fn/a/echo/", None, None).await;
    assert_eq!(status, 200);
    for bad in ["garbage", &format!("{}x", &invoke[..invoke.len() - 1])] {
        let (status, got) = call(&node, "GET", "/fn/a/secure/", Some(bad), None).await;
        assert_eq!((status, code(&got)), (401, "unauthorized"), "{bad}");
    }
    // Sync: the function runs without the Authorization header Arcus consumed.
    let (status, echoed) = call(&node, "GET", "/fn/a/secure/x", Some(&invoke), None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = echoed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"authorization"), "{names:?}");
    assert!(names.contains(&"x-forwarded-prefix"), "{names:?}");
    // A public function gets its caller's Authorization header untouched.
    let (_, echoed) = call(&node, "GET", "/fn/a/echo/", Some("its-own"), None).await;
    assert!(
        echoed["headers"].to_string().contains("Bearer its-own"),
        "{echoed}"
    );
    // Async: the stored event has no credential either.
    let resp = http()
        .post(node.fn_url("a/secure", "/async"))
        .bearer_auth(&invoke)
        .header("x-arcus-invocation-type", "event")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["invocation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let result = poll(
        "the async call to finish",
        Duration::from_secs(20),
        || async {
            let (_, v) = call(
                &node,
                "GET",
                &format!("/api/v1/invocations/{id}"),
                Some(node.token()),
                None,
            )
            .await;
            (v["status"] == "succeeded").then(|| v["result"].clone())
        },
    )
    .await;
    assert_eq!(result["body"], "payload", "{result}");
    assert!(
        !result["headers"].to_string().contains("authorization"),
        "{result}"
    );
    let secret = invoke.rsplit('_').next().unwrap().as_bytes();
    for file in ["arcus.db", "arcus.db-wal"] {
        let db = std::fs::read(node.data_dir().join(file)).unwrap_or_default();
        assert!(
            !db.windows(secret.len()).any(|w| w == secret),
            "the token's secret is stored in plain text in {file}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_are_refused() {
    let node = two_apps().await;
    let (_, short) = mint(&node, &["app:a:manage"], Some("1s")).await;
    let (id, revoked) = mint(&node, &["app:a:manage"], None).await;
    let (status, _) = call(&node, "GET", "/api/v1/apps/a", Some(&revoked), None).await;
    assert_eq!(status, 200);
    node.client().revoke_token(&id).await.unwrap();
    for path in ["/api/v1/apps/a", "/api/v1/apps/b", "/fn/a/secure/"] {
        let (status, got) = call(&node, "GET", path, Some(&revoked), None).await;
        assert_eq!((status, code(&got)), (401, "unauthorized"), "{path}");
    }
    poll(
        "the 1 s token to expire",
        Duration::from_secs(5),
        || async {
            let (status, got) = call(&node, "GET", "/api/v1/apps/a", Some(&short), None).await;
            (status == 401).then(|| assert_eq!(got["error"]["message"], "token expired"))
        },
    )
    .await;
    let (status, _) = call(&node, "GET", "/fn/a/secure/", Some(&short), None).await;
    assert_eq!(status, 401);
    // Bad requests create nothing.
    for body in [
        json!({"scopes": []}),
        json!({"scopes": ["app:a"]}),
        json!({"scopes": ["admin"], "expires_in": "0s"}),
        json!({"scopes": ["admin"], "expires_in": "1d", "expires_at": "2999-01-01T00:00:00Z"}),
    ] {
        let (status, got) = call(
            &node,
            "POST",
            "/api/v1/tokens",
            Some(node.token()),
            Some(body.clone()),
        )
        .await;
        assert_eq!((status, code(&got)), (400, "invalid_request"), "{body}");
    }
    assert_eq!(node.client().list_tokens().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_and_revokes_tokens() {
    let node = two_apps().await;
    let out = node.cli([
        "token",
        "create",
        "--scope",
        "app:a:invoke",
        "--scope",
        "function:b/echo:invoke",
        "--name",
        "ci",
        "--expires-in",
        "30d",
    ]);
    let token = ok(&out).trim().to_string();
    assert!(token.starts_with("arcus_"), "{token}");
    let listed = ok_json(&node.cli(["token", "--json", "list"]));
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["name"], "ci");
    assert_eq!(
        items[0]["scopes"],
        json!(["app:a:invoke", "function:b/echo:invoke"])
    );
    assert!(items[0]["expires_at"].is_string());
    assert!(!listed.to_string().contains(&token));
    // The CLI with the new token: it may invoke, not manage.
    let as_token = |args: &[&str]| {
        node.command(args)
            .env("ARCUS_TOKEN", &token)
            .output()
            .unwrap()
    };
    let denied = common::failed(&as_token(&["fn", "list", "a"]));
    assert!(denied.contains("forbidden"), "{denied}");
    // `fn update --auth token` protects the route at once.
    ok(&node.cli(["fn", "update", "a/echo", "--auth", "token"]));
    let (status, _) = call(&node, "GET", "/fn/a/echo/", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = call(&node, "GET", "/fn/a/echo/", Some(&token), None).await;
    assert_eq!(status, 200);
    // Its use is recorded (to the minute, off the request path).
    poll("last_used_at to be set", Duration::from_secs(5), || async {
        let tokens = node.client().list_tokens().await.unwrap();
        tokens[0].last_used_at.map(|_| ())
    })
    .await;
    let shown = ok(&node.cli(["fn", "get", "a/echo"]));
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("auth:") && l.ends_with("token")),
        "{shown}"
    );
    let f = node.client().get_function("a", "echo").await.unwrap();
    assert_eq!(f.meta.auth, FunctionAuth::Token);
    let bad = common::failed(&node.cli(["token", "create", "--scope", "app:A:invoke"]));
    assert!(bad.contains("app"), "{bad}");
    let id = items[0]["id"].as_str().unwrap();
    ok(&node.cli(["token", "revoke", id]));
    let (status, _) = call(&node, "GET", "/fn/a/echo/", Some(&token), None).await;
    assert_eq!(status, 401);
    assert!(node.client().list_tokens().await.unwrap().is_empty());
}
