//! HTTP side of the Runtime API: the accept loop and one handler per endpoint, with the
//! status codes and error documents of Lambda's emulator (`{"errorMessage","errorType"}`).

use super::{InitFailure, MAX_RESPONSE_BYTES, MAX_STREAMED_BYTES, RapiEvent, Shared, Unanswerable};
use crate::InvokeRequest;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Every endpoint lives under this prefix.
const PREFIX: &str = "/2018-06-01/runtime/";
/// Header naming the error type of `/error` and `/init/error` posts (and stream trailers).
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";
/// Trailer with the base64 error document of a failed streamed response.
const ERROR_BODY: &str = "lambda-runtime-function-error-body";
/// Header selecting the response mode of a `/response` post.
const RESPONSE_MODE: &str = "lambda-runtime-function-response-mode";
/// Largest `/init/error` body kept.
const MAX_INIT_ERROR_BYTES: usize = 1024 * 1024;

type Resp = Response<Full<Bytes>>;

/// Accepts connections until `stopped` fires (the last handle was dropped), then drops
/// every connection task.
pub(super) async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "runtime API: TCP_NODELAY failed");
                    }
                    let shared = shared.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| route(shared.clone(), req));
                        let conn = http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), svc);
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "runtime API connection ended");
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(error = %e, "runtime API accept failed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        while conns.try_join_next().is_some() {}
    }
}

/// Dispatches one request.
async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(not_found());
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let method = req.method().clone();
    let resp = match (parts.as_slice(), method) {
        (["invocation", "next"], Method::GET) => next(&shared).await,
        (["invocation", id, "response"], Method::POST) if !id.is_empty() => {
            response(&shared, id, req).await
        }
        (["invocation", id, "error"], Method::POST) if !id.is_empty() => {
            error(&shared, id, req).await
        }
        (["init", "error"], Method::POST) => init_error(&shared, req).await,
        (["arcus", "assignment"], Method::GET) => assignment(&shared).await,
        (
            ["invocation", "next"] | ["invocation", _, "response" | "error"] | ["init", "error"],
            _,
        ) => json_status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Method not allowed",
        ),
        _ => not_found(),
    };
    Ok(resp)
}

/// `GET /arcus/assignment`: long-polls until the spare runtime is given a function.
async fn assignment(shared: &Shared) -> Resp {
    let mut rx = shared.assignment.subscribe();
    let env = match rx.wait_for(Option::is_some).await {
        Ok(env) => env.clone().unwrap_or_default(),
        Err(_) => return not_found(),
    };
    let mut resp = Response::new(Full::new(env));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `GET /invocation/next`: long-polls until an invocation is queued.
async fn next(shared: &Shared) -> Resp {
    shared.mark_ready();
    loop {
        let notified = shared.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some((req, deadline_ms)) = shared.take_next() {
            return event_response(&req, deadline_ms);
        }
        notified.await;
    }
}

/// The 200 answer to `GET /next` carrying one event.
fn event_response(req: &InvokeRequest, deadline_ms: u64) -> Resp {
    let mut resp = Response::new(Full::new(req.event.clone()));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut set = |name: &'static str, value: &str| match HeaderValue::from_str(value) {
        Ok(v) => {
            h.insert(HeaderName::from_static(name), v);
        }
        Err(_) => tracing::warn!(header = name, "runtime API: invalid header value dropped"),
    };
    set("lambda-runtime-aws-request-id", &req.request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        &req.invoked_function_arn,
    );
    let optional = [
        ("lambda-runtime-trace-id", &req.trace_id),
        ("lambda-runtime-client-context", &req.client_context),
        ("lambda-runtime-cognito-identity", &req.cognito_identity),
    ];
    for (name, value) in optional {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            set(name, v);
        }
    }
    resp
}

/// `POST /invocation/{id}/response` (buffered or streamed).
async fn response(shared: &Shared, id: &str, req: Request<Incoming>) -> Resp {
    if let Err(u) = shared.is_inflight(id) {
        return invalid_id(u);
    }
    let streaming =
        header(req.headers(), RESPONSE_MODE).is_some_and(|m| m.eq_ignore_ascii_case("streaming"));
    let limit = if streaming {
        MAX_STREAMED_BYTES
    } else {
        MAX_RESPONSE_BYTES
    };
    let Ok(body) = read_body(req.into_body(), limit).await else {
        return truncated();
    };
    let reply = match shared.take_inflight(id) {
        Ok(r) => r,
        Err(u) => return invalid_id(u),
    };
    if body.over {
        let _ = reply.send(Ok(too_large_event(body.total, limit)));
        return too_large(limit);
    }
    let event = match body.trailers.as_ref().and_then(|t| header(t, ERROR_TYPE)) {
        Some(error_type) => {
            let payload = body
                .trailers
                .as_ref()
                .and_then(|t| header(t, ERROR_BODY))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(Bytes::from)
                .unwrap_or_else(|| error_doc(&error_type, "the response stream failed"));
            RapiEvent::Error {
                error_type,
                payload,
            }
        }
        None => RapiEvent::Response(body.data),
    };
    let _ = reply.send(Ok(event));
    accepted()
}

/// `POST /invocation/{id}/error`.
async fn error(shared: &Shared, id: &str, req: Request<Incoming>) -> Resp {
    if let Err(u) = shared.is_inflight(id) {
        return invalid_id(u);
    }
    let header_type = header(req.headers(), ERROR_TYPE).filter(|t| !t.is_empty());
    let Ok(body) = read_body(req.into_body(), MAX_RESPONSE_BYTES).await else {
        return truncated();
    };
    let reply = match shared.take_inflight(id) {
        Ok(r) => r,
        Err(u) => return invalid_id(u),
    };
    if body.over {
        let _ = reply.send(Ok(too_large_event(body.total, MAX_RESPONSE_BYTES)));
        return too_large(MAX_RESPONSE_BYTES);
    }
    let doc: Option<serde_json::Value> = serde_json::from_slice(&body.data).ok();
    let error_type = header_type
        .or_else(|| body_str(doc.as_ref(), "errorType"))
        .unwrap_or_else(|| "Unhandled".into());
    let payload = if body.data.is_empty() {
        error_doc(&error_type, "Unhandled")
    } else {
        body.data
    };
    let _ = reply.send(Ok(RapiEvent::Error {
        error_type,
        payload,
    }));
    accepted()
}

/// `POST /runtime/init/error`: fails `ready()` and every pending invoke.
async fn init_error(shared: &Shared, req: Request<Incoming>) -> Resp {
    let header_type = header(req.headers(), ERROR_TYPE).filter(|t| !t.is_empty());
    let Ok(body) = read_body(req.into_body(), MAX_INIT_ERROR_BYTES).await else {
        return truncated();
    };
    let doc: Option<serde_json::Value> = serde_json::from_slice(&body.data).ok();
    let error_type = header_type
        .or_else(|| body_str(doc.as_ref(), "errorType"))
        .unwrap_or_else(|| "Runtime.Unknown".into());
    let message = body_str(doc.as_ref(), "errorMessage")
        .unwrap_or_else(|| String::from_utf8_lossy(&body.data).into_owned());
    shared.fail_init(InitFailure {
        error_type,
        message,
    });
    accepted()
}

/// A request body read up to a limit (the rest drained and counted).
struct ReadBody {
    data: Bytes,
    total: u64,
    over: bool,
    trailers: Option<HeaderMap>,
}

/// Reads `body`, keeping at most `limit` bytes; past it, keeps reading (so the
/// connection stays usable and the runtime sees the 413) but discards the data.
async fn read_body(mut body: Incoming, limit: usize) -> Result<ReadBody, hyper::Error> {
    let mut buf = BytesMut::new();
    let mut out = ReadBody {
        data: Bytes::new(),
        total: 0,
        over: false,
        trailers: None,
    };
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(chunk) => {
                out.total += chunk.len() as u64;
                if !out.over && buf.len() + chunk.len() > limit {
                    out.over = true;
                    buf = BytesMut::new();
                }
                if !out.over {
                    buf.extend_from_slice(&chunk);
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    out.trailers = Some(t);
                }
            }
        }
    }
    out.data = buf.freeze();
    Ok(out)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_string)
}

fn body_str(doc: Option<&serde_json::Value>, key: &str) -> Option<String> {
    doc?.get(key)?.as_str().map(str::to_string)
}

/// `{"errorMessage": message, "errorType": error_type}` as bytes.
fn error_doc(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string())
}

fn too_large_event(total: u64, limit: usize) -> RapiEvent {
    let error_type = "Function.ResponseSizeTooLarge";
    let message = format!(
        "Response payload size ({total} bytes) exceeded maximum allowed payload size \
         ({limit} bytes)."
    );
    RapiEvent::Error {
        error_type: error_type.into(),
        payload: error_doc(error_type, &message),
    }
}

fn json_status(status: StatusCode, error_type: &str, message: &str) -> Resp {
    let mut resp = Response::new(Full::new(error_doc(error_type, message)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn accepted() -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")));
    *resp.status_mut() = StatusCode::ACCEPTED;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn invalid_id(u: Unanswerable) -> Resp {
    let message = match u {
        Unanswerable::Unknown => "Invalid request ID",
        Unanswerable::Answered => "Invalid request ID: a response was already sent",
    };
    json_status(StatusCode::BAD_REQUEST, "InvalidRequestID", message)
}

fn too_large(limit: usize) -> Resp {
    json_status(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &format!("Exceeded maximum allowed payload size ({limit} bytes)."),
    )
}

fn truncated() -> Resp {
    json_status(
        StatusCode::BAD_REQUEST,
        "TruncatedHTTPRequest",
        "HTTP request detected as truncated",
    )
}

fn not_found() -> Resp {
    json_status(StatusCode::NOT_FOUND, "NotFound", "Not found")
}
