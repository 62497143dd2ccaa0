//! The `gateway` span of invocation requests (`/fn/...` and `POST .../invoke`): a server
//! span, a child of the caller's `traceparent` (or the root of a new trace), and the
//! parent of what the engine does for the request, which handlers find as a
//! [`TraceCtx`] request extension (ADR 0011).

use crate::AppState;
use crate::error::RequestId;
use arcus_core::trace::TRACEPARENT;
use arcus_engine::trace::{KeyValue, SpanKind, SpanSpec, TraceCtx, new_span_id};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::time::SystemTime;

/// App and function named by an invocation path (`/fn/{app}/{fn}[@q]/…` or
/// `/api/v1/apps/{app}/functions/{fn}/invoke`).
fn target_of(path: &str) -> (&str, &str) {
    let mut it = path.split('/').filter(|s| !s.is_empty());
    let (app, function) = match it.next() {
        Some("fn") => (it.next(), it.next()),
        _ => (it.nth(2), it.nth(1)),
    };
    let function = function.unwrap_or_default();
    let function = function.split_once('@').map_or(function, |(f, _)| f);
    (app.unwrap_or_default(), function)
}

/// Middleware: runs the request in its `gateway` span and exports the span when the
/// response head is ready.
pub(crate) async fn gateway_span(
    State(s): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let spans = s.engine.spans().clone();
    let incoming =
        TraceCtx::from_header(req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()));
    let span_id = new_span_id();
    req.extensions_mut().insert(TraceCtx {
        parent: Some(span_id),
        ..incoming
    });
    if !spans.enabled() {
        return next.run(req).await;
    }
    let start = SystemTime::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let error_code = resp
        .headers()
        .get("x-arcus-function-error")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let error = (status >= 500).then(|| format!("HTTP {status}"));
    spans.emit(
        SpanSpec {
            name: "gateway",
            kind: SpanKind::Server,
            ctx: &incoming,
            span_id,
            start,
            end: SystemTime::now(),
            error,
        },
        || {
            let (app, function) = target_of(&path);
            let mut attrs = vec![
                KeyValue::new("http.request.method", method),
                KeyValue::new("url.path", path.clone()),
                KeyValue::new("http.response.status_code", i64::from(status)),
                KeyValue::new("arcus.request_id", request_id),
                KeyValue::new("arcus.app", app.to_string()),
                KeyValue::new("arcus.function", function.to_string()),
            ];
            if let Some(code) = error_code {
                attrs.push(KeyValue::new("arcus.function_error", code));
            }
            attrs
        },
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::target_of;

    #[test]
    fn names_the_target_of_invocation_paths() {
        assert_eq!(target_of("/fn/shop/cart@v2/items/1"), ("shop", "cart"));
        assert_eq!(target_of("/fn/shop/cart"), ("shop", "cart"));
        assert_eq!(
            target_of("/api/v1/apps/shop/functions/cart/invoke"),
            ("shop", "cart")
        );
        assert_eq!(target_of("/fn"), ("", ""));
    }
}
