//! The harness of the router tests: a real engine on a temp dir behind the real router,
//! driven with `tower::ServiceExt::oneshot`, plus helpers to build requests, read
//! responses, assert the error shape and snapshot the store.

use arcus_engine::Engine;
use arcus_gateway::{AppState, Auth, ERROR_CODE, REQUEST_ID, router};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tower::ServiceExt;

/// The admin token the test router accepts.
pub const TOKEN: &str = "test-token-0123456789";

/// How long a poll for background writes may take before the test fails.
const POLL_DEADLINE: Duration = Duration::from_secs(15);

/// A router over a real engine; each test builds its own.
pub struct Harness {
    pub app: Router,
    pub engine: Engine,
    pub dir: TempDir,
}

/// A fully read response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts the status (showing the body on failure).
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts an API error: status, `error.code`, a message, and that `error.request_id`
    /// equals the `x-arcus-request-id` header.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        self.expect(status);
        let body = self.json();
        assert_eq!(
            body["error"]["code"], code,
            "wrong error code; body: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without a message: {body}"
        );
        let header = self.header(REQUEST_ID).expect("x-arcus-request-id header");
        assert!(!header.is_empty());
        assert_eq!(
            body["error"]["request_id"], header,
            "request_id must equal the header"
        );
        assert_eq!(
            self.header(ERROR_CODE),
            Some(code),
            "x-arcus-error names the code"
        );
    }
}

/// A request builder: `req("GET", "/x")`, then `.token()`, `.json(...)` etc.
pub struct Req {
    builder: axum::http::request::Builder,
    body: Body,
}

/// Starts a request without credentials.
pub fn req(method: &str, uri: &str) -> Req {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    Req {
        builder: Request::builder().method(method).uri(uri),
        body: Body::empty(),
    }
}

impl Req {
    /// Adds the admin bearer token.
    pub fn token(self) -> Self {
        self.bearer(TOKEN)
    }

    /// Adds a bearer token.
    pub fn bearer(self, token: &str) -> Self {
        self.header(header::AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A JSON body with its content type.
    pub fn json(self, v: &Value) -> Self {
        self.raw_json(v.to_string())
    }

    /// Raw text sent as `application/json` (for malformed bodies).
    pub fn raw_json(self, text: impl Into<String>) -> Self {
        self.header("content-type", "application/json")
            .body(text.into().into_bytes())
    }

    /// A raw body.
    pub fn body(mut self, bytes: impl Into<Bytes>) -> Self {
        self.body = Body::from(bytes.into());
        self
    }

    fn build(self) -> Request<Body> {
        self.builder.body(self.body).unwrap()
    }
}

/// Everything the control plane stores, for "a failed operation changes nothing" checks.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    state: Value,
    blobs: Vec<String>,
}

fn list_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

impl Harness {
    /// A router over a fresh engine on a temp dir.
    pub async fn new() -> Self {
        let (engine, dir) = arcus_testkit::engine::engine().await;
        let auth = Auth::from_hash_hex(&Auth::hash(TOKEN)).unwrap();
        let triggers = arcus_triggers::Manager::new(
            engine.store().clone(),
            std::sync::Arc::new(engine.clone()),
        );
        let app = router(AppState {
            engine: engine.clone(),
            auth,
            triggers,
            metrics: None,
        });
        Self { app, engine, dir }
    }

    /// Sends one request through a clone of the router and reads the whole response.
    pub async fn send(&self, r: Req) -> Resp {
        let resp = self.app.clone().oneshot(r.build()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Sends one request and returns the response with its body unread (for bodies that
    /// fail mid-stream).
    pub async fn send_streaming(&self, r: Req) -> axum::response::Response {
        self.app.clone().oneshot(r.build()).await.unwrap()
    }

    /// An authenticated request without a body.
    pub async fn call(&self, method: &str, uri: &str) -> Resp {
        self.send(req(method, uri).token()).await
    }

    /// An authenticated request with a JSON body.
    pub async fn call_json(&self, method: &str, uri: &str, body: Value) -> Resp {
        self.send(req(method, uri).token().json(&body)).await
    }

    /// An authenticated GET answering 200 with JSON.
    pub async fn get_json(&self, uri: &str) -> Value {
        let r = self.call("GET", uri).await;
        r.expect(200);
        r.json()
    }

    /// Creates an app (201).
    pub async fn create_app(&self, name: &str) -> Value {
        let r = self
            .call_json("POST", "/api/v1/apps", json!({ "name": name }))
            .await;
        r.expect(201);
        r.json()
    }

    /// Creates a function from a full request body (201).
    pub async fn create_function(&self, app: &str, body: Value) -> Value {
        let r = self
            .call_json("POST", &format!("/api/v1/apps/{app}/functions"), body)
            .await;
        r.expect(201);
        r.json()
    }

    /// Uploads a fixture as the draft code (200).
    pub async fn upload(&self, app: &str, f: &str, fixture: &str) -> Value {
        let r = self
            .upload_bytes(
                app,
                f,
                arcus_testkit::fixtures::bytes(fixture),
                "application/wasm",
            )
            .await;
        r.expect(200);
        r.json()
    }

    /// Uploads raw bytes with a content type.
    pub async fn upload_bytes(
        &self,
        app: &str,
        f: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Resp {
        let uri = format!("/api/v1/apps/{app}/functions/{f}/code");
        self.send(
            req("PUT", &uri)
                .token()
                .header("content-type", content_type)
                .body(bytes),
        )
        .await
    }

    /// Publishes the draft (201) and returns the version number.
    pub async fn publish(&self, app: &str, f: &str) -> u32 {
        let r = self
            .call(
                "POST",
                &format!("/api/v1/apps/{app}/functions/{f}/versions"),
            )
            .await;
        r.expect(201);
        u32::try_from(r.json()["version"].as_u64().unwrap()).unwrap()
    }

    /// Creates or moves an alias (200).
    pub async fn put_alias(&self, app: &str, f: &str, alias: &str, body: Value) -> Value {
        let r = self
            .call_json(
                "PUT",
                &format!("/api/v1/apps/{app}/functions/{f}/aliases/{alias}"),
                body,
            )
            .await;
        r.expect(200);
        r.json()
    }

    /// Creates app (if absent) and function, uploads the fixture, publishes v1 and points
    /// `live` at it.
    pub async fn deploy(&self, app: &str, f: &str, fixture: &str, extra: Value) {
        if self.engine.store().get_app(app).await.is_err() {
            self.create_app(app).await;
        }
        let mut body = json!({ "name": f });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.create_function(app, body).await;
        self.upload(app, f, fixture).await;
        let v = self.publish(app, f).await;
        self.put_alias(app, f, "live", json!({ "version": v }))
            .await;
    }

    /// Everything stored about apps, functions, versions and aliases, plus the blob files.
    pub async fn snapshot(&self) -> Snapshot {
        let store = self.engine.store();
        let mut apps = Vec::new();
        for app in store.list_apps().await.unwrap() {
            let mut functions = Vec::new();
            for f in store.list_functions(&app.name).await.unwrap() {
                let versions = store.list_versions(&app.name, &f.name).await.unwrap();
                let aliases = store.list_aliases(&app.name, &f.name).await.unwrap();
                let triggers = store.list_triggers(&app.name, &f.name).await.unwrap();
                functions.push(
                    json!({ "function": f, "versions": versions, "aliases": aliases,
                    "triggers": triggers }),
                );
            }
            apps.push(json!({ "app": app, "functions": functions }));
        }
        Snapshot {
            state: Value::Array(apps),
            blobs: list_files(&self.dir.path().join("blobs")),
        }
    }

    /// Sends a request that must fail with `status`/`code` and leave the store unchanged.
    #[track_caller]
    pub fn fails(
        &self,
        r: Req,
        status: u16,
        code: &'static str,
    ) -> impl Future<Output = Resp> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            let before = self.snapshot().await;
            let resp = self.send(r).await;
            assert_eq!(
                resp.status.as_u16(),
                status,
                "at {caller}: unexpected status; body: {}",
                resp.text()
            );
            resp.expect_error(status, code);
            let after = self.snapshot().await;
            assert_eq!(
                before, after,
                "at {caller}: a failed request changed the store"
            );
            resp
        }
    }

    /// Polls `GET .../invocations?invocation_id=` until the record appears.
    pub async fn wait_record(&self, app: &str, f: &str, id: &str) -> Value {
        let uri = format!("/api/v1/apps/{app}/functions/{f}/invocations?invocation_id={id}");
        let start = Instant::now();
        loop {
            let items = self.get_json(&uri).await["items"]
                .as_array()
                .unwrap()
                .clone();
            if let Some(r) = items.into_iter().next() {
                return r;
            }
            assert!(
                start.elapsed() < POLL_DEADLINE,
                "no invocation record for {id} after {POLL_DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `GET .../logs?invocation_id=` until `done` holds for the lines (oldest first).
    pub async fn wait_logs(
        &self,
        app: &str,
        f: &str,
        id: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let uri = format!("/api/v1/apps/{app}/functions/{f}/logs?invocation_id={id}");
        let start = Instant::now();
        loop {
            let mut items = self.get_json(&uri).await["items"]
                .as_array()
                .unwrap()
                .clone();
            items.reverse();
            if done(&items) {
                return items;
            }
            assert!(
                start.elapsed() < POLL_DEADLINE,
                "logs of {id} incomplete after {POLL_DEADLINE:?}: {items:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The function every error test works on.
pub const F: &str = "/api/v1/apps/shop/functions/cart";

/// App `shop` with function `cart` (hello code, versions 1 and 2, `live` → 1) and function
/// `empty` (no code).
pub async fn setup() -> Harness {
    let h = Harness::new().await;
    h.deploy("shop", "cart", "hello", json!({})).await;
    assert_eq!(h.publish("shop", "cart").await, 2);
    h.create_function("shop", json!({ "name": "empty" })).await;
    h
}
