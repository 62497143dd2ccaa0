//! The real bootstraps (Debian's python3, node) run as plain child processes against the
//! Runtime API server: start, warm reuse, context, errors, init errors, size limit.

use super::*;
use crate::InvokeRequest;
use crate::rapi::{InitFailure, RapiEvent, RuntimeApi};
use bytes::Bytes;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PY: &str = "/usr/bin/python3";
const NODE: &str = "/usr/bin/node";
const WAIT: Duration = Duration::from_secs(20);

/// One runtime process with its server and directories.
struct Rt {
    api: RuntimeApi,
    _child: tokio::process::Child,
    _task: tempfile::TempDir,
    _work: tempfile::TempDir,
    started: Instant,
}

async fn start(kind: ProcessKind, files: &[(&str, &str)], handler: &str) -> Rt {
    let work = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = task.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let dir = materialize(work.path()).unwrap();
    let (program, args) = command(kind, Path::new(PY), Path::new(NODE)).unwrap();
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.replace(RUNTIME_MOUNT, dir.to_str().unwrap()))
        .collect();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = RuntimeApi::serve(listener).unwrap();
    let started = Instant::now();
    let child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", api.addr().to_string())
        .env("_HANDLER", handler)
        .env("LAMBDA_TASK_ROOT", task.path())
        .env("AWS_LAMBDA_FUNCTION_NAME", "hello")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream-1")
        .current_dir(task.path())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Rt {
        api,
        _child: child,
        _task: task,
        _work: work,
        started,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn req(id: &str, event: &str) -> InvokeRequest {
    InvokeRequest {
        request_id: id.into(),
        event: Bytes::from(event.to_string()),
        invoked_function_arn: "arn:aws:lambda:local:app:function:hello:live".into(),
        trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into()),
        client_context: Some(r#"{"custom":{"a":"b"},"client":{},"env":{}}"#.into()),
        cognito_identity: Some(
            r#"{"cognitoIdentityId":"id1","cognitoIdentityPoolId":"pool1"}"#.into(),
        ),
    }
}

impl Rt {
    async fn ready(&self) -> Result<(), InitFailure> {
        let r = tokio::time::timeout(WAIT, self.api.ready())
            .await
            .expect("ready timed out");
        eprintln!("start to ready: {:?}", self.started.elapsed());
        r
    }
    async fn invoke(&self, id: &str, event: &str, budget_ms: u64) -> RapiEvent {
        let r = req(id, event);
        let fut = tokio::time::timeout(WAIT, self.api.invoke(&r, now_ms() + budget_ms));
        fut.await.expect("invoke timed out").unwrap()
    }
}

fn ok_json(ev: RapiEvent) -> serde_json::Value {
    match ev {
        RapiEvent::Response(b) => serde_json::from_slice(&b).unwrap(),
        other => panic!("expected a response, got {other:?}"),
    }
}

fn err_json(ev: RapiEvent) -> (String, serde_json::Value) {
    match ev {
        RapiEvent::Error {
            error_type,
            payload,
        } => (error_type, serde_json::from_slice(&payload).unwrap()),
        other => panic!("expected an error, got {other:?}"),
    }
}

const PY_APP: &str = r#"
import os, time
count = 0
def handler(event, context):
    global count
    count += 1
    r1 = context.get_remaining_time_in_millis()
    time.sleep(0.02)
    r2 = context.get_remaining_time_in_millis()
    print("handling", count)
    return {"count": count, "event": event, "rid": context.aws_request_id,
            "fn": context.function_name, "ver": context.function_version,
            "mem": context.memory_limit_in_mb, "arn": context.invoked_function_arn,
            "lg": context.log_group_name, "ls": context.log_stream_name,
            "r1": r1, "r2": r2, "trace": os.environ.get("_X_AMZN_TRACE_ID"),
            "custom": context.client_context.custom,
            "pool": context.identity.cognito_identity_pool_id}
def boom(event, context):
    raise ValueError("bad " + str(event["k"]))
def big(event, context):
    return "a" * (7 * 1024 * 1024)
def weird(event, context):
    return object()
"#;

#[tokio::test]
async fn python_invokes_warm_with_context() {
    let rt = start(ProcessKind::Python3, &[("app.py", PY_APP)], "app.handler").await;
    rt.ready().await.unwrap();
    let t = Instant::now();
    let v = ok_json(rt.invoke("r-1", r#"{"k":1}"#, 5_000).await);
    eprintln!("python first invoke: {:?}", t.elapsed());
    assert_eq!(v["count"], 1);
    assert_eq!(v["event"]["k"], 1);
    assert_eq!(v["rid"], "r-1");
    assert_eq!(
        (v["fn"].as_str(), v["ver"].as_str(), v["mem"].as_str()),
        (Some("hello"), Some("$LATEST"), Some("128"))
    );
    assert_eq!(v["arn"], "arn:aws:lambda:local:app:function:hello:live");
    assert_eq!(
        (v["lg"].as_str(), v["ls"].as_str()),
        (Some("/aws/lambda/hello"), Some("stream-1"))
    );
    assert_eq!(
        v["trace"],
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    );
    assert_eq!(v["custom"]["a"], "b");
    assert_eq!(v["pool"], "pool1");
    let (r1, r2) = (v["r1"].as_u64().unwrap(), v["r2"].as_u64().unwrap());
    assert!(r1 <= 5_000 && r1 > 0 && r2 < r1, "{r1} {r2}");
    let t = Instant::now();
    let v = ok_json(rt.invoke("r-2", "[]", 3_000).await);
    eprintln!("python warm invoke: {:?}", t.elapsed());
    assert_eq!(v["count"], 2, "same process reused");
    assert!(v["r1"].as_u64().unwrap() <= 3_000);
}

#[tokio::test]
async fn python_errors_are_reported_like_lambda() {
    let rt = start(ProcessKind::Python3, &[("app.py", PY_APP)], "app.boom").await;
    rt.ready().await.unwrap();
    let (t, doc) = err_json(rt.invoke("e-1", r#"{"k":7}"#, 5_000).await);
    assert_eq!(t, "Unhandled");
    assert_eq!(doc["errorType"], "ValueError");
    assert_eq!(doc["errorMessage"], "bad 7");
    assert_eq!(doc["requestId"], "e-1");
    let trace = doc["stackTrace"].as_array().unwrap();
    assert!(
        trace.iter().any(|f| f.as_str().unwrap().contains("app.py")),
        "{trace:?}"
    );
    assert!(
        !trace
            .iter()
            .any(|f| f.as_str().unwrap().contains("bootstrap.py")),
        "{trace:?}"
    );
    // The process survives and serves the next one.
    let (_, doc) = err_json(rt.invoke("e-2", r#"{"k":8}"#, 5_000).await);
    assert_eq!(doc["errorMessage"], "bad 8");

    let rt = start(ProcessKind::Python3, &[("app.py", PY_APP)], "app.weird").await;
    rt.ready().await.unwrap();
    let (_, doc) = err_json(rt.invoke("m-1", "{}", 5_000).await);
    assert_eq!(doc["errorType"], "Runtime.MarshalError");
}

#[tokio::test]
async fn python_oversized_response() {
    let rt = start(ProcessKind::Python3, &[("app.py", PY_APP)], "app.big").await;
    rt.ready().await.unwrap();
    let (t, doc) = err_json(rt.invoke("b-1", "{}", 10_000).await);
    assert_eq!(
        (t.as_str(), doc["errorType"].as_str()),
        (
            "Function.ResponseSizeTooLarge",
            Some("Function.ResponseSizeTooLarge")
        )
    );
    let (t, _) = err_json(rt.invoke("b-2", "{}", 10_000).await);
    assert_eq!(
        t, "Function.ResponseSizeTooLarge",
        "still serving after a 413"
    );
}

#[tokio::test]
async fn python_init_errors() {
    for (files, handler, want, needle) in [
        (
            vec![("app.py", PY_APP)],
            "nomod.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'nomod'",
        ),
        (
            vec![("app.py", PY_APP)],
            "app.nothere",
            "Runtime.HandlerNotFound",
            "Handler 'nothere' missing on module 'app'",
        ),
        (
            vec![("bad.py", "def f(:\n")],
            "bad.f",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'bad'",
        ),
        (
            vec![("app.py", PY_APP)],
            "handler",
            "Runtime.MalformedHandlerName",
            "Bad handler 'handler'",
        ),
        (
            vec![("imp.py", "import not_there_at_all\n")],
            "imp.f",
            "Runtime.ImportModuleError",
            "No module named 'not_there_at_all'",
        ),
    ] {
        let rt = start(ProcessKind::Python3, &files, handler).await;
        let f = rt.ready().await.unwrap_err();
        assert_eq!(f.error_type, want, "{handler}: {f:?}");
        assert!(f.message.contains(needle), "{handler}: {f:?}");
    }
}

#[tokio::test]
async fn python_dotted_module_and_opt_python() {
    let files = [
        ("pkg/__init__.py", ""),
        ("pkg/mod.py", "def h(e, c):\n    return 'dotted'\n"),
    ];
    let rt = start(ProcessKind::Python3, &files, "pkg.mod.h").await;
    rt.ready().await.unwrap();
    assert_eq!(ok_json(rt.invoke("d-1", "null", 5_000).await), "dotted");
}

const NODE_CJS: &str = r#"
let count = 0;
exports.handler = async (event, context) => {
  count += 1;
  const r1 = context.getRemainingTimeInMillis();
  await new Promise((r) => setTimeout(r, 20));
  console.log('handling', count);
  return { count, event, rid: context.awsRequestId, fn: context.functionName,
    ver: context.functionVersion, mem: context.memoryLimitInMB, arn: context.invokedFunctionArn,
    lg: context.logGroupName, ls: context.logStreamName, r1, r2: context.getRemainingTimeInMillis(),
    waits: context.callbackWaitsForEmptyEventLoop, trace: process.env._X_AMZN_TRACE_ID };
};
exports.cb = (event, context, callback) => { setTimeout(() => callback(null, { cb: event.k }), 5); };
exports.done = (event, context) => { context.succeed({ done: true }); };
exports.boom = async () => { throw new TypeError('nope'); };
exports.cbErr = (event, context, callback) => callback(new Error('cb failed'));
exports.nested = { deep: async () => 'deep' };
"#;

#[tokio::test]
async fn node_async_handler_warm_with_context() {
    let rt = start(
        ProcessKind::Node,
        &[("index.js", NODE_CJS)],
        "index.handler",
    )
    .await;
    rt.ready().await.unwrap();
    let v = ok_json(rt.invoke("n-1", r#"{"k":1}"#, 5_000).await);
    assert_eq!(
        (v["count"].as_u64(), v["rid"].as_str()),
        (Some(1), Some("n-1"))
    );
    assert_eq!(v["event"]["k"], 1);
    assert_eq!(
        (v["fn"].as_str(), v["ver"].as_str(), v["mem"].as_str()),
        (Some("hello"), Some("$LATEST"), Some("128"))
    );
    assert_eq!(v["arn"], "arn:aws:lambda:local:app:function:hello:live");
    assert_eq!(
        (v["lg"].as_str(), v["ls"].as_str()),
        (Some("/aws/lambda/hello"), Some("stream-1"))
    );
    assert_eq!(v["waits"], true);
    assert_eq!(
        v["trace"],
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    );
    let (r1, r2) = (v["r1"].as_u64().unwrap(), v["r2"].as_u64().unwrap());
    assert!(r1 <= 5_000 && r2 < r1, "{r1} {r2}");
    let t = Instant::now();
    let v = ok_json(rt.invoke("n-2", "{}", 5_000).await);
    eprintln!("node warm invoke: {:?}", t.elapsed());
    assert_eq!(v["count"], 2);
}

#[tokio::test]
async fn node_callback_context_and_error_handlers() {
    for (handler, want) in [
        ("index.cb", serde_json::json!({"cb": 3})),
        ("index.done", serde_json::json!({"done": true})),
        ("index.nested.deep", serde_json::json!("deep")),
    ] {
        let rt = start(ProcessKind::Node, &[("index.js", NODE_CJS)], handler).await;
        rt.ready().await.unwrap();
        assert_eq!(
            ok_json(rt.invoke("c-1", r#"{"k":3}"#, 5_000).await),
            want,
            "{handler}"
        );
    }
    let rt = start(ProcessKind::Node, &[("index.js", NODE_CJS)], "index.boom").await;
    rt.ready().await.unwrap();
    let (t, doc) = err_json(rt.invoke("x-1", "{}", 5_000).await);
    assert_eq!(t, "Unhandled");
    assert_eq!(
        (doc["errorType"].as_str(), doc["errorMessage"].as_str()),
        (Some("TypeError"), Some("nope"))
    );
    let trace = doc["trace"].as_array().unwrap();
    assert_eq!(trace[0], "TypeError: nope");
    assert!(
        trace
            .iter()
            .any(|l| l.as_str().unwrap().contains("index.js"))
    );
    let rt = start(ProcessKind::Node, &[("index.js", NODE_CJS)], "index.cbErr").await;
    rt.ready().await.unwrap();
    let (_, doc) = err_json(rt.invoke("x-2", "{}", 5_000).await);
    assert_eq!(doc["errorMessage"], "cb failed");
}

#[tokio::test]
async fn node_esm_handlers() {
    let mjs = "let n = 0;\nexport const handler = async (e) => ({ esm: true, n: ++n });\n";
    let rt = start(
        ProcessKind::Node,
        &[("src/app.mjs", mjs)],
        "src/app.handler",
    )
    .await;
    rt.ready().await.unwrap();
    assert_eq!(ok_json(rt.invoke("m-1", "{}", 5_000).await)["esm"], true);
    assert_eq!(ok_json(rt.invoke("m-2", "{}", 5_000).await)["n"], 2);
    // `.js` in a `"type": "module"` package.
    let files = [("package.json", r#"{"type":"module"}"#), ("index.js", mjs)];
    let rt = start(ProcessKind::Node, &files, "index.handler").await;
    rt.ready().await.unwrap();
    assert_eq!(ok_json(rt.invoke("m-3", "{}", 5_000).await)["esm"], true);
}

#[tokio::test]
async fn node_init_errors() {
    for (files, handler, want) in [
        (
            vec![("index.js", NODE_CJS)],
            "missing.handler",
            "Runtime.ImportModuleError",
        ),
        (
            vec![("index.js", NODE_CJS)],
            "index.nothere",
            "Runtime.HandlerNotFound",
        ),
        (
            vec![("index.js", "exports.handler = (;\n")],
            "index.handler",
            "Runtime.UserCodeSyntaxError",
        ),
        (
            vec![("index.js", "require('not-installed');\n")],
            "index.handler",
            "Runtime.ImportModuleError",
        ),
        (
            vec![("index.js", NODE_CJS)],
            "index",
            "Runtime.MalformedHandlerName",
        ),
    ] {
        let rt = start(ProcessKind::Node, &files, handler).await;
        let f = rt.ready().await.unwrap_err();
        assert_eq!(f.error_type, want, "{handler}: {f:?}");
        assert!(!f.message.is_empty());
    }
}

#[test]
fn materialize_is_idempotent_and_commands() {
    let work = tempfile::tempdir().unwrap();
    let a = materialize(work.path()).unwrap();
    let b = materialize(work.path()).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        std::fs::read_to_string(a.join("python/bootstrap.py")).unwrap(),
        PYTHON_BOOTSTRAP
    );
    assert!(a.join("node/bootstrap.js").is_file());
    assert_eq!(
        std::fs::read_dir(work.path().join("runtime"))
            .unwrap()
            .count(),
        1
    );
    let (p, args) = command(ProcessKind::Python3, Path::new(PY), Path::new(NODE)).unwrap();
    assert_eq!(
        (p.as_path(), args.last().map(String::as_str)),
        (Path::new(PY), Some("/var/runtime/python/bootstrap.py"))
    );
    let (p, args) = command(ProcessKind::Node, Path::new(PY), Path::new(NODE)).unwrap();
    assert_eq!(
        (p.as_path(), args),
        (
            Path::new(NODE),
            vec!["/var/runtime/node/bootstrap.js".to_string()]
        )
    );
    assert!(command(ProcessKind::Custom, Path::new(PY), Path::new(NODE)).is_none());
}
