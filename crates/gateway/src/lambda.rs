//! The Lambda-compatible invoke API, `POST /2015-03-31/functions/{name}/invocations`, so
//! boto3 and the AWS CLI can invoke Arcus functions by changing the endpoint. Requests
//! are signed with SigV4 by an app's access key; the name is a function of that app or an
//! ARN `arn:aws:lambda:<region>:<app>:function:<fn>[:<qualifier>]`. It keeps Lambda's
//! conventions: no `Qualifier` runs the draft (`$LATEST`); a function error is a 200
//! with `X-Amz-Function-Error`; API errors carry `x-amzn-ErrorType` and a body
//! `{"Type": "User"|"Service", "message": …}`.

use crate::AppState;
use crate::error::RequestId;
use crate::sigv4::{self, SigError, SignedRequest};
use arcus_core::events::MAX_ASYNC_PAYLOAD_BYTES;
use arcus_core::limits::MAX_SYNC_PAYLOAD_BYTES;
use arcus_core::names::Qualifier;
use arcus_core::record::TriggerKind;
use arcus_core::store::LogQuery;
use arcus_core::{Error, ErrorCode};
use arcus_engine::{Input, Invoked, RateRefusal, Target};
use axum::body::Bytes;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Most bytes of log lines `X-Amz-Log-Result` carries (the last ones), as Lambda.
pub const MAX_LOG_TAIL_BYTES: usize = 4096;

/// A Lambda-style API error: status, `x-amzn-ErrorType` and message.
#[derive(Debug)]
pub struct LambdaError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    /// `Retry-After` in seconds, for a rate-limit refusal.
    retry_after_s: Option<u64>,
}

impl LambdaError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// A request-rate refusal: 429 `TooManyRequestsException` with `Retry-After`.
    fn rate_limited(refusal: RateRefusal) -> Self {
        Self {
            retry_after_s: Some(refusal.retry_after_s),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                refusal.message,
            )
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        )
    }

    fn denied(name: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            format!("this access key may not invoke `{name}`"),
        )
    }
}

impl From<SigError> for LambdaError {
    fn from(e: SigError) -> Self {
        let kind = match e {
            SigError::Missing => "MissingAuthenticationTokenException",
            SigError::Malformed(_) => "IncompleteSignatureException",
            SigError::Skewed | SigError::Mismatch => "InvalidSignatureException",
        };
        Self::new(StatusCode::FORBIDDEN, kind, e.to_string())
    }
}

impl From<Error> for LambdaError {
    fn from(e: Error) -> Self {
        use ErrorCode::*;
        let (status, kind) = match e.code {
            AppNotFound | FunctionNotFound | VersionNotFound | AliasNotFound | NotDeployed
            | NotFound => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
            ),
            Throttled | RateLimited | NoCapacity => {
                (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException")
            }
            InvalidRequest | InvalidName => {
                (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
            }
            Unauthorized | Forbidden => (StatusCode::FORBIDDEN, "AccessDeniedException"),
            Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceException"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "ServiceException"),
        };
        Self::new(status, kind, e.message)
    }
}

impl IntoResponse for LambdaError {
    fn into_response(self) -> Response {
        let who = if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        };
        let body = serde_json::json!({"Type": who, "message": self.message});
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        if let Some(secs) = self.retry_after_s {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        resp
    }
}

type Res<T> = Result<T, LambdaError>;

/// How the caller asked to run the function (`X-Amz-Invocation-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

fn invocation_type(headers: &HeaderMap) -> Res<InvocationType> {
    match headers
        .get("x-amz-invocation-type")
        .map(HeaderValue::as_bytes)
    {
        None | Some(b"RequestResponse") => Ok(InvocationType::RequestResponse),
        Some(b"Event") => Ok(InvocationType::Event),
        Some(b"DryRun") => Ok(InvocationType::DryRun),
        Some(_) => Err(LambdaError::invalid(
            "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun",
        )),
    }
}

/// Splits a `FunctionName` into (app, function, qualifier) for a key of `key_app`: a
/// plain name (optionally `name:qualifier`), `<app>:function:<fn>[:q]` or a full ARN.
/// Another app's name is refused the same way whether it exists or not.
fn resolve_name(name: &str, key_app: &str) -> Res<(String, Option<String>)> {
    let parts: Vec<&str> = name.split(':').collect();
    let (app, function, qualifier) = match parts.as_slice() {
        [f] => (key_app, *f, None),
        [f, q] => (key_app, *f, Some(*q)),
        [app, "function", f] => (*app, *f, None),
        [app, "function", f, q] => (*app, *f, Some(*q)),
        ["arn", "aws", "lambda", _region, app, "function", f] => (*app, *f, None),
        ["arn", "aws", "lambda", _region, app, "function", f, q] => (*app, *f, Some(*q)),
        _ => {
            return Err(LambdaError::invalid(format!(
                "FunctionName `{name}` is neither a name nor arn:aws:lambda:<region>:<app>:function:<name>[:<qualifier>]"
            )));
        }
    };
    if app != key_app {
        return Err(LambdaError::denied(name));
    }
    if function.is_empty() || qualifier.is_some_and(str::is_empty) {
        return Err(LambdaError::invalid(format!(
            "FunctionName `{name}` has an empty part"
        )));
    }
    Ok((function.to_string(), qualifier.map(String::from)))
}

/// The `Qualifier` query parameter (percent-decoded), if any.
fn query_qualifier(query: Option<&str>) -> Res<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Q {
        #[serde(rename = "Qualifier")]
        qualifier: Option<String>,
    }
    let q: Q = serde_urlencoded_query(query.unwrap_or_default())?;
    Ok(q.qualifier.filter(|q| !q.is_empty()))
}

fn serde_urlencoded_query<T: serde::de::DeserializeOwned>(query: &str) -> Res<T> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| LambdaError::invalid("bad query string"))?,
    )
    .map(|q| q.0)
    .map_err(|e| LambdaError::invalid(e.body_text()))
}

fn parse_qualifier(q: Option<&str>) -> Res<Qualifier> {
    match q {
        None | Some("$LATEST") => Ok(Qualifier::Draft),
        Some(q) => Qualifier::parse(q).map_err(LambdaError::from),
    }
}

/// Verifies the request's signature; the access key's app.
async fn authenticate(
    s: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Res<String> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(SigError::Missing)?
        .to_str()
        .map_err(|_| SigError::Malformed("the Authorization header is not ASCII".into()))?;
    let cred = sigv4::parse_authorization(header)?;
    let (key, secret) = match s.engine.access_key(&cred.access_key_id).await {
        Ok(k) => k,
        Err(e) if e.code == ErrorCode::NotFound => {
            return Err(LambdaError::new(
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let body_sha = hex::encode(Sha256::digest(body));
    if let Some(claimed) = parts.headers.get("x-amz-content-sha256")
        && claimed.as_bytes() != body_sha.as_bytes()
    {
        return Err(SigError::Mismatch.into());
    }
    let req = SignedRequest {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        payload_sha256: &body_sha,
    };
    sigv4::verify(&req, &cred, &secret, time::OffsetDateTime::now_utc())?;
    Ok(key.app)
}

/// `POST /2015-03-31/functions/{name}/invocations`.
pub async fn invoke(
    State(s): State<AppState>,
    Extension(RequestId(id)): Extension<RequestId>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let mut resp = match run(&s, &id, &name, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

async fn run(s: &AppState, id: &str, name: &str, req: Request) -> Res<Response> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_SYNC_PAYLOAD_BYTES)
        .await
        .map_err(|_| {
            LambdaError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                format!("the request payload is over the limit of {MAX_SYNC_PAYLOAD_BYTES} bytes"),
            )
        })?;
    let app = authenticate(s, &parts, &body).await?;
    let kind = invocation_type(&parts.headers)?;
    let (function, name_qualifier) = resolve_name(name, &app)?;
    let query_q = query_qualifier(parts.uri.query())?;
    if let (Some(a), Some(b)) = (&name_qualifier, &query_q)
        && a != b
    {
        return Err(LambdaError::invalid(
            "the qualifier in FunctionName and the Qualifier parameter differ",
        ));
    }
    let qualifier = parse_qualifier(name_qualifier.or(query_q).as_deref())?;
    // The request-rate limits of `/fn` and `.../invoke`, once the caller and the name
    // are known and before anything runs; a DryRun runs nothing and takes no token.
    if kind != InvocationType::DryRun
        && let Some(refusal) = s.engine.admit_request(&app, &function).await?
    {
        return Err(LambdaError::rate_limited(refusal));
    }
    let payload = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return Err(LambdaError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "could not parse the request payload as JSON",
        ));
    }
    let target = Target {
        app,
        function,
        qualifier,
    };
    match kind {
        InvocationType::DryRun => {
            let version = s.engine.check_target(&target).await?;
            Ok(with_version(
                StatusCode::NO_CONTENT.into_response(),
                version,
            ))
        }
        InvocationType::Event => {
            if payload.len() > MAX_ASYNC_PAYLOAD_BYTES {
                return Err(Error::new(
                    ErrorCode::PayloadTooLarge,
                    format!("an Event payload is limited to {MAX_ASYNC_PAYLOAD_BYTES} bytes"),
                )
                .into());
            }
            s.engine
                .enqueue_traced(&target, TriggerKind::Async, payload, None, None)
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        InvocationType::RequestResponse => {
            let tail = parts
                .headers
                .get("x-amz-log-type")
                .is_some_and(|v| v.as_bytes() == b"Tail");
            let invoked = s
                .engine
                .invoke_traced(
                    &target,
                    id.to_string(),
                    TriggerKind::Api,
                    Input::Event(payload),
                    None,
                )
                .await;
            let invoked = match invoked {
                Ok(i) => i,
                Err(e) if e.code == ErrorCode::FunctionTimeout => return Ok(timed_out(&e)),
                Err(e) if e.code == ErrorCode::ResponseTooLarge => {
                    return Ok(response_too_large(&e));
                }
                Err(e) => return Err(e.into()),
            };
            respond(s, &target.app, invoked, tail).await
        }
    }
}

/// A timeout is the function's failure on Lambda: 200 with `X-Amz-Function-Error`.
fn timed_out(e: &Error) -> Response {
    function_failed("TimeoutError", &e.message)
}

/// An oversized response too: Lambda's `Function.ResponseSizeTooLarge`.
fn response_too_large(e: &Error) -> Response {
    function_failed("Function.ResponseSizeTooLarge", &e.message)
}

/// 200 with `X-Amz-Function-Error: Unhandled` and a Lambda error document.
fn function_failed(error_type: &str, message: &str) -> Response {
    let doc = serde_json::json!({"errorType": error_type, "errorMessage": message});
    let mut resp = axum::Json(doc).into_response();
    resp.headers_mut().insert(
        "x-amz-function-error",
        HeaderValue::from_static("Unhandled"),
    );
    resp
}

fn with_version(mut resp: Response, version: Option<u32>) -> Response {
    let v = version.map_or_else(|| "$LATEST".to_string(), |v| v.to_string());
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().insert("x-amz-executed-version", v);
    }
    resp
}

/// The function's answer as Lambda gives it: the payload with 200; a handler error (or
/// a wasm answer with a 5xx status) marked with `X-Amz-Function-Error: Unhandled`.
async fn respond(s: &AppState, app: &str, inv: Invoked, tail: bool) -> Res<Response> {
    let failed = inv.function_error.is_some() || inv.response.status().is_server_error();
    let content_type = inv
        .response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .cloned();
    let payload = match arcus_engine::read_response(inv.response.into_body()).await {
        Ok(p) => p,
        Err(e) if e.code == ErrorCode::ResponseTooLarge => return Ok(response_too_large(&e)),
        Err(e) => return Err(e.into()),
    };
    let mut resp = (StatusCode::OK, payload).into_response();
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("application/json")),
    );
    if failed {
        h.insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    if tail {
        let text = log_tail(s, app, &inv.invocation_id).await;
        if let Ok(v) =
            HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(text))
        {
            h.insert("x-amz-log-result", v);
        }
    }
    Ok(with_version(resp, inv.version))
}

/// The last [`MAX_LOG_TAIL_BYTES`] of an invocation's log lines. The recorder writes
/// them off the hot path, so this flushes it and looks a bounded number of times for
/// the `REPORT` line that ends them.
async fn log_tail(s: &AppState, app: &str, invocation_id: &str) -> Vec<u8> {
    let q = LogQuery {
        invocation_id: Some(invocation_id.to_string()),
        limit: 1000,
        ..LogQuery::default()
    };
    let mut lines = Vec::new();
    for _ in 0..40 {
        s.engine.flush().await;
        match s.engine.query_logs(app, &q).await {
            Ok(page) => lines = page.items,
            Err(e) => tracing::warn!("cannot read the log tail: {e}"),
        }
        if lines.iter().any(|l| l.message.starts_with("REPORT ")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    lines.sort_by_key(|l| l.seq);
    let mut text = Vec::new();
    for l in &lines {
        text.extend_from_slice(l.message.trim_end_matches('\n').as_bytes());
        text.push(b'\n');
    }
    let cut = text.len().saturating_sub(MAX_LOG_TAIL_BYTES);
    text.split_off(cut)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn function_names_and_arns_resolve_within_the_keys_app() {
        let ok = |n: &str| resolve_name(n, "shop").unwrap();
        assert_eq!(ok("cart"), ("cart".into(), None));
        assert_eq!(ok("cart:7"), ("cart".into(), Some("7".into())));
        assert_eq!(ok("shop:function:cart"), ("cart".into(), None));
        assert_eq!(
            ok("arn:aws:lambda:us-east-1:shop:function:cart:live"),
            ("cart".into(), Some("live".into()))
        );
        let other = resolve_name("arn:aws:lambda:x:bank:function:pay", "shop").unwrap_err();
        assert_eq!(other.kind, "AccessDeniedException");
        assert_eq!(
            resolve_name("a:b:c:d:e", "shop").unwrap_err().kind,
            "InvalidParameterValueException"
        );
        assert!(resolve_name("cart:", "shop").is_err());
    }

    #[test]
    fn qualifiers_follow_lambda() {
        assert_eq!(parse_qualifier(None).unwrap(), Qualifier::Draft);
        assert_eq!(parse_qualifier(Some("$LATEST")).unwrap(), Qualifier::Draft);
        assert_eq!(parse_qualifier(Some("3")).unwrap(), Qualifier::Version(3));
        assert_eq!(
            query_qualifier(Some("Qualifier=%24LATEST"))
                .unwrap()
                .as_deref(),
            Some("$LATEST")
        );
        assert_eq!(query_qualifier(None).unwrap(), None);
        let mut h = HeaderMap::new();
        assert_eq!(
            invocation_type(&h).unwrap(),
            InvocationType::RequestResponse
        );
        h.insert("x-amz-invocation-type", HeaderValue::from_static("Bogus"));
        assert!(invocation_type(&h).is_err());
    }
}
