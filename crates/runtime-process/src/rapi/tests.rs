//! The Runtime API against a hand-written hyper client: paths, status codes, headers,
//! error documents, init errors, size limit, and stopping on drop.

use super::*;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

pub(crate) fn request(id: &str) -> InvokeRequest {
    InvokeRequest {
        request_id: id.into(),
        event: Bytes::from_static(b"{\"k\":1}"),
        invoked_function_arn: "arn:aws:lambda:local:app:function:fn".into(),
        trace_id: Some("Root=1-abc;Parent=def;Sampled=1".into()),
        client_context: None,
        cognito_identity: None,
    }
}

pub(crate) fn serve() -> RuntimeApi {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    RuntimeApi::serve(l).unwrap()
}

struct Client(SendRequest<Full<Bytes>>);

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (tx, conn) = handshake(TokioIo::new(s)).await.unwrap();
        tokio::spawn(conn);
        Client(tx)
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("/2018-06-01/runtime/{path}"))
            .header("host", "localhost");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .0
            .send_request(b.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        (
            parts.status,
            parts.headers,
            body.collect().await.unwrap().to_bytes(),
        )
    }
}

fn json(b: &Bytes) -> serde_json::Value {
    serde_json::from_slice(b).unwrap()
}

#[tokio::test]
async fn next_response_round_trip_with_headers() {
    let api = serve();
    let mut c = Client::connect(api.addr()).await;
    let a2 = api.clone();
    let inv = tokio::spawn(async move { a2.invoke(&request("r1"), 1_700_000_000_123).await });
    let (st, h, body) = c.call("GET", "invocation/next", &[], Bytes::new()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(&body[..], b"{\"k\":1}");
    assert_eq!(h["lambda-runtime-aws-request-id"], "r1");
    assert_eq!(h["lambda-runtime-deadline-ms"], "1700000000123");
    assert_eq!(
        h["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:local:app:function:fn"
    );
    assert_eq!(
        h["lambda-runtime-trace-id"],
        "Root=1-abc;Parent=def;Sampled=1"
    );
    assert_eq!(h["content-type"], "application/json");
    assert!(h.get("lambda-runtime-client-context").is_none());
    assert!(h.get("lambda-runtime-cognito-identity").is_none());
    api.ready().await.unwrap();
    let (st, _, body) = c
        .call("POST", "invocation/r1/response", &[], "\"hi\"")
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(json(&body)["status"], "OK");
    assert_eq!(
        inv.await.unwrap().unwrap(),
        RapiEvent::Response(Bytes::from_static(b"\"hi\""))
    );
}

#[tokio::test]
async fn bad_ids_double_answers_and_error_types() {
    let api = serve();
    let mut c = Client::connect(api.addr()).await;
    let (st, _, body) = c.call("POST", "invocation/nope/response", &[], "1").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["errorType"], "InvalidRequestID");
    assert!(json(&body)["errorMessage"].is_string());

    for (id, headers, body, want) in [
        (
            "e1",
            vec![("lambda-runtime-function-error-type", "Custom.Boom")],
            "{\"errorType\":\"X\"}",
            "Custom.Boom",
        ),
        (
            "e2",
            vec![],
            "{\"errorType\":\"ValueError\",\"errorMessage\":\"m\"}",
            "ValueError",
        ),
        ("e3", vec![], "", "Unhandled"),
    ] {
        let a2 = api.clone();
        let inv = tokio::spawn(async move { a2.invoke(&request(id), 0).await });
        let (st, h, _) = c.call("GET", "invocation/next", &[], Bytes::new()).await;
        assert_eq!(
            (st, h["lambda-runtime-aws-request-id"].to_str().unwrap()),
            (StatusCode::OK, id)
        );
        let (st, _, _) = c
            .call("POST", &format!("invocation/{id}/error"), &headers, body)
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        match inv.await.unwrap().unwrap() {
            RapiEvent::Error {
                error_type,
                payload,
            } => {
                assert_eq!(error_type, want);
                if !body.is_empty() {
                    assert_eq!(&payload[..], body.as_bytes());
                } else {
                    assert_eq!(json(&payload)["errorType"], "Unhandled");
                }
            }
            other => panic!("{other:?}"),
        }
        // A second answer for the same id is refused.
        let (st, _, body) = c
            .call("POST", &format!("invocation/{id}/response"), &[], "1")
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(json(&body)["errorType"], "InvalidRequestID");
    }
    assert_eq!(
        c.call("GET", "invocation/nope", &[], Bytes::new()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.call("POST", "invocation/next", &[], Bytes::new()).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn init_error_fails_ready_and_invokes() {
    let api = serve();
    let a2 = api.clone();
    let pending = tokio::spawn(async move { a2.invoke(&request("p"), 0).await });
    let mut c = Client::connect(api.addr()).await;
    let body = r#"{"errorMessage":"Unable to import module 'app': No module named 'app'","errorType":"Runtime.ImportModuleError","stackTrace":[]}"#;
    let (st, _, _) = c
        .call(
            "POST",
            "init/error",
            &[(
                "lambda-runtime-function-error-type",
                "Runtime.ImportModuleError",
            )],
            body,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let f = api.ready().await.unwrap_err();
    assert_eq!(f.error_type, "Runtime.ImportModuleError");
    assert_eq!(
        f.message,
        "Unable to import module 'app': No module named 'app'"
    );
    assert_eq!(pending.await.unwrap().unwrap_err(), f);
    assert_eq!(api.invoke(&request("q"), 0).await.unwrap_err(), f);
}

#[tokio::test]
async fn long_poll_does_not_block_other_connections() {
    let api = serve();
    let addr = api.addr();
    let poll = tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        c.call("GET", "invocation/next", &[], Bytes::new()).await
    });
    api.ready().await.unwrap();
    // While the poll waits, another connection is served.
    let mut c2 = Client::connect(addr).await;
    assert_eq!(
        c2.call("POST", "invocation/x/response", &[], "1").await.0,
        StatusCode::BAD_REQUEST
    );
    let a2 = api.clone();
    let inv = tokio::spawn(async move { a2.invoke(&request("lp"), 0).await });
    let (st, h, _) = poll.await.unwrap();
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["lambda-runtime-aws-request-id"], "lp");
    assert_eq!(
        c2.call("POST", "invocation/lp/response", &[], "2").await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        inv.await.unwrap().unwrap(),
        RapiEvent::Response(Bytes::from_static(b"2"))
    );
}

#[tokio::test]
async fn oversized_response_is_413_and_size_error() {
    let api = serve();
    let mut c = Client::connect(api.addr()).await;
    let a2 = api.clone();
    let inv = tokio::spawn(async move { a2.invoke(&request("big"), 0).await });
    c.call("GET", "invocation/next", &[], Bytes::new()).await;
    let big = vec![b'a'; MAX_RESPONSE_BYTES + 1];
    let (st, _, body) = c.call("POST", "invocation/big/response", &[], big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&body)["errorType"], "RequestEntityTooLarge");
    match inv.await.unwrap().unwrap() {
        RapiEvent::Error {
            error_type,
            payload,
        } => {
            assert_eq!(error_type, "Function.ResponseSizeTooLarge");
            assert_eq!(json(&payload)["errorType"], "Function.ResponseSizeTooLarge");
        }
        other => panic!("{other:?}"),
    }
    // Exactly the limit passes, on the same connection.
    let a2 = api.clone();
    let inv = tokio::spawn(async move { a2.invoke(&request("edge"), 0).await });
    c.call("GET", "invocation/next", &[], Bytes::new()).await;
    let edge = vec![b'a'; MAX_RESPONSE_BYTES];
    let hdr = [("lambda-runtime-function-response-mode", "streaming")];
    assert_eq!(
        c.call("POST", "invocation/edge/response", &hdr, edge)
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert!(
        matches!(inv.await.unwrap().unwrap(), RapiEvent::Response(b) if b.len() == MAX_RESPONSE_BYTES)
    );
}

#[tokio::test]
async fn abandoned_invocation_is_skipped_and_drop_stops_the_server() {
    let api = serve();
    let addr = api.addr();
    // An invoke whose caller gives up before the runtime asks is never delivered.
    let gone =
        tokio::time::timeout(Duration::from_millis(1), api.invoke(&request("gone"), 0)).await;
    assert!(gone.is_err());
    let a2 = api.clone();
    let inv = tokio::spawn(async move { a2.invoke(&request("kept"), 0).await });
    let mut c = Client::connect(addr).await;
    let (_, h, _) = c.call("GET", "invocation/next", &[], Bytes::new()).await;
    assert_eq!(h["lambda-runtime-aws-request-id"], "kept");
    c.call("POST", "invocation/kept/response", &[], "1").await;
    inv.await.unwrap().unwrap();
    drop(api);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "server still accepting after drop"
        );
        tokio::task::yield_now().await;
    }
}
