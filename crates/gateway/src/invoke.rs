//! The function routes: `ANY /fn/{app}/{function}[@{qualifier}]/{path…}`.

use crate::AppState;
use crate::Auth;
use crate::api::read_body;
use crate::error::{ApiError, RequestId};
use arcus_core::ErrorCode;
use arcus_core::events::MAX_ASYNC_PAYLOAD_BYTES;
use arcus_core::limits::MAX_SYNC_PAYLOAD_BYTES;
use arcus_core::model::FunctionAuth;
use arcus_core::names::Qualifier;
use arcus_core::record::TriggerKind;
use arcus_core::tokens::Permission;
use arcus_engine::trace::TraceCtx;
use arcus_engine::{Input, Invoked, Target};
use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};

/// Request header asking for an async invocation (`event`), as Lambda's
/// `X-Amz-Invocation-Type`.
pub const INVOCATION_TYPE: &str = "x-arcus-invocation-type";

/// Header naming the error type of a handler function's error.
pub const FUNCTION_ERROR: &str = "x-arcus-function-error";

/// Turns an engine response into an HTTP response with Arcus's headers. A handler's
/// error becomes a 502 `function_error` in the API's error shape, its type in
/// `x-arcus-function-error` and its message in the error message.
pub(crate) async fn function_response(inv: Invoked) -> Response {
    if let Some(error_type) = inv.function_error {
        let doc = axum::body::to_bytes(Body::new(inv.response.into_body()), MAX_SYNC_PAYLOAD_BYTES)
            .await
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&doc)
            .ok()
            .and_then(|v| {
                v.get("errorMessage")
                    .and_then(|m| m.as_str())
                    .map(String::from)
            })
            .unwrap_or_default();
        let mut resp = ApiError::new(ErrorCode::FunctionError, format!("{error_type}: {message}"))
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&error_type) {
            resp.headers_mut().insert(FUNCTION_ERROR, v);
        }
        stamp(&mut resp, &inv.invocation_id, inv.version);
        return resp;
    }
    let mut resp = inv.response.map(Body::new);
    stamp(&mut resp, &inv.invocation_id, inv.version);
    resp
}

/// Adds the invocation id and the version that ran.
fn stamp(resp: &mut Response, invocation_id: &str, version: Option<u32>) {
    if let Ok(v) = HeaderValue::from_str(invocation_id) {
        resp.headers_mut().insert("x-arcus-invocation-id", v);
    }
    if let Some(v) = version {
        resp.headers_mut()
            .insert("x-arcus-version", HeaderValue::from(v));
    }
}

/// Splits `/fn/{app}/{fn}[@q]/{rest}` into the target, the prefix and the rest (raw).
fn parse_fn_path(path: &str) -> Result<(String, String, Option<&str>, &str, &str), ApiError> {
    let tail = path.strip_prefix("/fn/").unwrap_or_default();
    let mut it = tail.splitn(3, '/');
    let app = it.next().unwrap_or_default();
    let fnq = it.next().unwrap_or_default();
    let rest = it.next().unwrap_or_default();
    if app.is_empty() || fnq.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "expected /fn/{app}/{function}[@qualifier]/{path}",
        ));
    }
    let (name, qualifier) = match fnq.split_once('@') {
        Some((n, q)) => (n, Some(q)),
        None => (fnq, None),
    };
    let prefix_len = "/fn/".len() + app.len() + 1 + fnq.len();
    Ok((
        app.to_string(),
        name.to_string(),
        qualifier,
        &path[..prefix_len],
        rest,
    ))
}

/// Decides whether a `/fn` call may run. A public function's call passes untouched (its
/// `Authorization` header, if any, is the function's business). A call of an
/// `auth: token` function, of `@draft` (which needs manage of the app), or of a function
/// that does not exist needs a bearer token allowed to make it: 401 without a valid token,
/// 403 with one that lacks the permission — for a missing function too, so a token of
/// another app cannot tell what exists. The header Arcus consumed is removed, so it never
/// reaches the function or the stored async event.
async fn authorize_call(
    s: &AppState,
    headers: &mut HeaderMap,
    app: &str,
    function: &str,
    draft: bool,
) -> Result<(), ApiError> {
    let looked_up = match s.engine.function_auth(app, function).await {
        Ok(auth) => Ok(auth),
        Err(e) if matches!(e.code, ErrorCode::AppNotFound | ErrorCode::FunctionNotFound) => {
            Err(ApiError::from(e))
        }
        Err(e) => return Err(e.into()),
    };
    if !draft && matches!(looked_up, Ok(FunctionAuth::Public)) {
        return Ok(());
    }
    let Some(token) = Auth::bearer(headers)? else {
        return match looked_up {
            Ok(_) => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "this function needs a bearer token",
            )),
            Err(missing) => Err(missing),
        };
    };
    let identity = s.auth.identify_token(s.engine.store(), token).await?;
    let (permission, what) = if draft {
        (Permission::Manage { app }, "call the draft of")
    } else {
        (Permission::Invoke { app, function }, "invoke")
    };
    if !identity.allows(&permission) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this token may not {what} `{app}/{function}`"),
        ));
    }
    headers.remove(axum::http::header::AUTHORIZATION);
    looked_up.map(|_| ())
}

/// Serves a request with a function.
pub async fn fn_route(
    State(s): State<AppState>,
    Extension(RequestId(id)): Extension<RequestId>,
    Extension(trace): Extension<TraceCtx>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let (app, function, qualifier, prefix, rest) = parse_fn_path(&path)?;
    let qualifier = match qualifier {
        None => Qualifier::live(),
        Some(q) => Qualifier::parse(q)?,
    };
    authorize_call(
        &s,
        &mut parts.headers,
        &app,
        &function,
        qualifier == Qualifier::Draft,
    )
    .await?;
    if let Some(refused) = crate::ratelimit::admit(&s, &app, &function).await? {
        return Ok(refused);
    }
    if let Some(len) = parts.headers.get(axum::http::header::CONTENT_LENGTH) {
        let too_big = len
            .to_str()
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|l| l > MAX_SYNC_PAYLOAD_BYTES);
        if too_big {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request body is over the limit of {MAX_SYNC_PAYLOAD_BYTES} bytes"),
            ));
        }
    }
    let is_async = parts
        .headers
        .get(INVOCATION_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"event"));
    let limit = if is_async {
        MAX_ASYNC_PAYLOAD_BYTES
    } else {
        MAX_SYNC_PAYLOAD_BYTES
    };
    let payload = read_body(body, limit).await?;
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    parts.uri = Uri::try_from(path_and_query)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("bad path: {e}")))?;
    if let Ok(v) = HeaderValue::from_str(prefix) {
        parts.headers.insert("x-forwarded-prefix", v);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        parts.headers.insert("x-arcus-invocation-id", v);
    }
    let req = axum::http::Request::from_parts(parts, payload);
    let target = Target {
        app,
        function,
        qualifier,
    };
    if is_async {
        let key = crate::events::idempotency_key(req.headers())?;
        let invocation_id = s
            .engine
            .enqueue_http(&target, req, key, Some(trace))
            .await?;
        return Ok(crate::events::accepted(invocation_id));
    }
    let invoked = s
        .engine
        .invoke_traced(
            &target,
            id,
            TriggerKind::Http,
            Input::Http(req),
            Some(trace),
        )
        .await?;
    Ok(function_response(invoked).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_function_paths() {
        let (a, f, q, prefix, rest) = parse_fn_path("/fn/shop/cart@v2/items/1").unwrap();
        assert_eq!(
            (a.as_str(), f.as_str(), q, prefix, rest),
            ("shop", "cart", Some("v2"), "/fn/shop/cart@v2", "items/1")
        );
        let (_, f, q, prefix, rest) = parse_fn_path("/fn/shop/cart").unwrap();
        assert_eq!(
            (f.as_str(), q, prefix, rest),
            ("cart", None, "/fn/shop/cart", "")
        );
        let (_, _, _, _, rest) = parse_fn_path("/fn/shop/cart/").unwrap();
        assert_eq!(rest, "");
        assert!(parse_fn_path("/fn/shop").is_err());
        assert!(parse_fn_path("/fn//x").is_err());
    }
}
