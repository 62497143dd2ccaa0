//! End-to-end: W3C trace context through a real node — the function sees the caller's
//! trace in `traceparent` (wasm) or `_X_AMZN_TRACE_ID` (python), the record and log lines
//! carry the trace id, and the spans (gateway → queue → instance → function) reach a
//! small OTLP/HTTP receiver started by the test, in the caller's trace, with the right
//! parents. Async attempts stay in the accepting request's trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_core::model::Runtime;
use arcus_core::trace::TraceParent;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use axum::body::Bytes;
use common::{api_get_ok as api_get, bin, http, poll};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// OTLP span kinds (`opentelemetry.proto.trace.v1.Span.SpanKind`).
const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CONSUMER: i32 = 5;

/// A received span, ids in hex.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
    kind: i32,
    attrs: HashMap<String, String>,
    service: String,
}

/// A tiny OTLP/HTTP (protobuf) trace receiver on 127.0.0.1.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

async fn start_receiver() -> Receiver {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut got = sink.lock().unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .map(|a| text(a.value.as_ref()))
                        .unwrap_or_default();
                    for s in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                        got.push(Span {
                            name: s.name,
                            trace: hex(&s.trace_id),
                            id: hex(&s.span_id),
                            parent: hex(&s.parent_span_id),
                            kind: s.kind,
                            attrs: s
                                .attributes
                                .iter()
                                .map(|a| (a.key.clone(), text(a.value.as_ref())))
                                .collect(),
                            service: service.clone(),
                        });
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, spans }
}

impl Receiver {
    /// Waits (polling every 100 ms, 15 s at most) until the trace has spans named
    /// `names`; returns the trace's spans by name.
    async fn wait_trace(&self, trace: &str, names: &[&str]) -> HashMap<String, Span> {
        poll(
            &format!("spans {names:?} of trace {trace}"),
            Duration::from_secs(15),
            || async {
                let got: HashMap<String, Span> = self
                    .spans
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|s| s.trace == trace)
                    .map(|s| (s.name.clone(), s.clone()))
                    .collect();
                if names.iter().all(|n| got.contains_key(*n)) {
                    return Some(got);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                None
            },
        )
        .await
    }
}

fn plain(name: &str) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        ..Default::default()
    }
}

/// The value of a header in the echo fixture's `headers` list.
fn echoed_header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0] == name)
        .and_then(|h| h[1].as_str())
}

/// `GET /api/v1/invocations/{id}` once it is `status`.
async fn wait_invocation(node: &Node, id: &str, status: &str) -> Value {
    poll(
        &format!("invocation {id} {status}"),
        Duration::from_secs(15),
        || async {
            let resp = http()
                .get(format!("{}/api/v1/invocations/{id}", node.url()))
                .bearer_auth(node.token())
                .send()
                .await
                .unwrap();
            if resp.status() == 200 {
                let v: Value = resp.json().await.unwrap();
                if v["status"] == status {
                    return Some(v);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        },
    )
    .await
}

/// `POST /fn/{target}{path}` with an optional `traceparent`: status, invocation id,
/// body as JSON.
async fn call(
    node: &Node,
    target: &str,
    path: &str,
    traceparent: Option<&str>,
    event: bool,
) -> (u16, String, Value) {
    let mut req = http().post(node.fn_url(target, path)).body("{}");
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    if event {
        req = req.header("x-arcus-invocation-type", "event");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let id = resp
        .headers()
        .get("x-arcus-invocation-id")
        .or_else(|| resp.headers().get("x-arcus-request-id"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, id, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_functions_records_logs_and_an_otlp_receiver() {
    let receiver = start_receiver().await;
    let node = Node::start_with_config(
        bin(),
        &format!(
            "[tracing]\notlp_endpoint = \"{}\"\nservice_name = \"arcus-e2e\"\nbatch_delay_ms = 100\n",
            receiver.url
        ),
    );
    node.create_app("tr").await;
    node.deploy("tr", plain("echo"), &fixtures::path("echo"))
        .await;
    node.deploy("tr", plain("logger"), &fixtures::path("logger"))
        .await;

    // Sync: the caller's trace reaches the function, the record and the collector.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let (status, id, echo) = call(
        &node,
        "tr/echo",
        "/x",
        Some(&format!("00-{trace}-{caller}-01")),
        false,
    )
    .await;
    assert_eq!(status, 200, "{echo}");
    let seen = TraceParent::parse(echoed_header(&echo, "traceparent").expect("traceparent header"))
        .expect("a valid traceparent");
    assert_eq!(seen.trace_id_hex(), trace);
    assert_ne!(
        seen.parent_id_hex(),
        caller,
        "the function's parent is its own span"
    );
    assert!(seen.sampled());
    let view = wait_invocation(&node, &id, "succeeded").await;
    assert_eq!(view["trace_id"], trace, "{view}");
    let records = api_get(&node, "apps/tr/functions/echo/invocations").await;
    let record = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .expect("the record");
    assert_eq!(record["trace_id"], trace);

    let spans = receiver
        .wait_trace(trace, &["gateway", "instance", "function"])
        .await;
    let (gw, inst, func) = (&spans["gateway"], &spans["instance"], &spans["function"]);
    assert_eq!(gw.kind, SERVER);
    assert_eq!(gw.parent, caller, "the gateway span is the caller's child");
    assert_eq!(gw.service, "arcus-e2e");
    assert_eq!(gw.attrs["http.response.status_code"], "200");
    assert_eq!(inst.parent, gw.id);
    assert_eq!(inst.kind, INTERNAL);
    // Publishing pre-warmed the version, so this call found its instance warm.
    assert_eq!(
        inst.attrs["arcus.cold_start"],
        record["cold_start"].to_string()
    );
    assert_eq!(func.parent, gw.id);
    assert_eq!(
        func.id,
        seen.parent_id_hex(),
        "the function's traceparent names its span"
    );
    assert_eq!(func.attrs["arcus.app"], "tr");
    assert_eq!(func.attrs["arcus.function"], "echo");
    assert_eq!(func.attrs["arcus.version"], "1");
    assert_eq!(func.attrs["arcus.invocation_id"], id);
    assert_eq!(func.attrs["arcus.trigger"], "http");
    assert_eq!(func.attrs["arcus.status"], "succeeded");

    // Log lines carry the trace id of their invocation.
    let log_trace = "0af7651916cd43dd8448eb211c80319c";
    let (status, id, _) = call(
        &node,
        "tr/logger",
        "/?lines=2",
        Some(&format!("00-{log_trace}-b7ad6b7169203331-01")),
        false,
    )
    .await;
    assert_eq!(status, 200);
    let lines = poll("the logger's lines", Duration::from_secs(15), || async {
        let v = api_get(
            &node,
            &format!("apps/tr/functions/logger/logs?invocation_id={id}"),
        )
        .await;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let printed = items
            .iter()
            .filter(|l| l["message"].as_str().is_some_and(|m| m.contains("line")))
            .count();
        if printed >= 3 {
            return Some(items);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        None
    })
    .await;
    for l in &lines {
        assert_eq!(l["trace_id"], log_trace, "{l}");
    }

    // Async: the attempt runs in the accepting request's trace, after a queue span.
    let async_trace = "11112222333344445555666677778888";
    let (status, id, accepted) = call(
        &node,
        "tr/echo",
        "/later",
        Some(&format!("00-{async_trace}-1234567890abcdef-01")),
        true,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["invocation_id"].as_str().map_or(id, String::from);
    let done = wait_invocation(&node, &id, "succeeded").await;
    assert_eq!(done["trace_id"], async_trace, "{done}");
    let seen = TraceParent::parse(
        echoed_header(&done["result"], "traceparent").expect("traceparent in the async request"),
    )
    .unwrap();
    assert_eq!(seen.trace_id_hex(), async_trace);
    let spans = receiver
        .wait_trace(async_trace, &["gateway", "queue", "instance", "function"])
        .await;
    let (gw, queue, func) = (&spans["gateway"], &spans["queue"], &spans["function"]);
    assert_eq!(gw.parent, "1234567890abcdef");
    assert_eq!(gw.attrs["http.response.status_code"], "202");
    assert_eq!(queue.kind, CONSUMER);
    assert_eq!(queue.parent, gw.id, "queued by the accepting request");
    assert_eq!(queue.attrs["arcus.attempt"], "1");
    assert_eq!(spans["instance"].parent, queue.id);
    assert_eq!(func.parent, queue.id);
    assert_eq!(func.id, seen.parent_id_hex());
    assert_eq!(func.attrs["arcus.trigger"], "async");

    // No traceparent, or an invalid one: a new trace, the gateway span its root.
    let mut fresh = Vec::new();
    for tp in [
        None,
        Some("00-zzzz-not-a-traceparent-01"),
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    ] {
        let (status, id, echo) = call(&node, "tr/echo", "/new", tp, false).await;
        assert_eq!(status, 200);
        let seen = TraceParent::parse(echoed_header(&echo, "traceparent").unwrap())
            .expect("a valid new traceparent");
        let t = seen.trace_id_hex();
        assert!(
            ![trace, log_trace, async_trace].contains(&t.as_str()),
            "{t} is new"
        );
        let view = wait_invocation(&node, &id, "succeeded").await;
        assert_eq!(view["trace_id"], t.as_str());
        let spans = receiver.wait_trace(&t, &["gateway", "function"]).await;
        assert_eq!(spans["gateway"].parent, "", "a root span");
        assert_eq!(spans["function"].parent, spans["gateway"].id);
        fresh.push(t);
    }
    let distinct: std::collections::HashSet<_> = fresh.iter().collect();
    assert_eq!(distinct.len(), 3, "each request starts its own trace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_handlers_see_the_trace_as_x_amzn_trace_id() {
    let node = Node::start(bin());
    if node
        .stderr_text()
        .contains("process runtimes (python3, node, custom) are disabled")
    {
        // This host cannot sandbox processes (no bubblewrap, …): nothing to check here.
        eprintln!("skipped: {}", node.stderr_text());
        return;
    }
    node.create_app("py").await;
    let spec = CreateFunction {
        name: "echo".to_string(),
        runtime: Some(Runtime::Python3),
        handler: Some("app.handler".to_string()),
        ..Default::default()
    };
    node.deploy_code("py", spec, fixtures::handler_zip("python"))
        .await;
    let trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    let resp = http()
        .post(format!(
            "{}/api/v1/apps/py/functions/echo/invoke",
            node.url()
        ))
        .bearer_auth(node.token())
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-arcus-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = resp.json().await.unwrap();
    let xray = body["trace"].as_str().expect("_X_AMZN_TRACE_ID is set");
    let prefix = format!("Root=1-{}-{};Parent=", &trace[..8], &trace[8..]);
    assert!(xray.starts_with(&prefix), "{xray}");
    let parent = xray[prefix.len()..].strip_suffix(";Sampled=1").expect(xray);
    assert_eq!(parent.len(), 16, "{xray}");
    assert_ne!(
        parent, "00f067aa0ba902b7",
        "the handler's parent is its own span"
    );
    let view = wait_invocation(&node, &id, "succeeded").await;
    assert_eq!(view["trace_id"], trace);
}
