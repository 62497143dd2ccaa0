//! The one API error type, the request-id middleware that renders it, and extractors
//! whose rejections use the same error shape.

use arcus_core::error::{ErrorBody, ErrorDetail};
use arcus_core::{Error, ErrorCode};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// Header carrying the request id on every response.
pub const REQUEST_ID: &str = "x-arcus-request-id";
/// Header naming the error code on platform errors, so clients can tell them from a
/// function's own error responses.
pub const ERROR_CODE: &str = "x-arcus-error";

/// The id of the current request (also the invocation id of function calls).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// An error returned by a handler; rendered as `{"error": {...}}` with its status.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl ApiError {
    /// Shorthand for an error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Error::new(code, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = status.into_response();
        // The middleware renders the body once it knows the request id.
        resp.extensions_mut().insert(PendingError(self.0));
        resp
    }
}

#[derive(Clone)]
struct PendingError(Error);

/// Assigns a request id, exposes it to handlers, stamps it on the response, and renders
/// pending API errors with it. Unmatched routes become `not_found` in the same shape.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::now_v7().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Some(PendingError(e)) = resp.extensions_mut().remove::<PendingError>() {
        if e.code == ErrorCode::Internal {
            tracing::error!(request_id = %id, "internal error: {}", e.message);
        }
        let retry_after = matches!(
            e.code,
            ErrorCode::Throttled | ErrorCode::RateLimited | ErrorCode::NoCapacity
        );
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code.as_str().to_string(),
                message: e.message,
                request_id: id.clone(),
            },
        };
        let status = resp.status();
        let mut rendered = (status, axum::Json(body)).into_response();
        // Headers a handler set on the error (e.g. `x-arcus-function-error`) are kept.
        for (name, value) in resp.headers() {
            if name != axum::http::header::CONTENT_TYPE
                && name != axum::http::header::CONTENT_LENGTH
            {
                rendered.headers_mut().insert(name.clone(), value.clone());
            }
        }
        rendered
            .headers_mut()
            .insert(ERROR_CODE, HeaderValue::from_static(e.code.as_str()));
        // A handler that knows better (a rate limit's wait) sets its own Retry-After.
        if retry_after && !rendered.headers().contains_key("retry-after") {
            rendered
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        resp = rendered;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

/// Fallback for known routes called with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
}

/// `axum::Json` with rejections in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a JSON body with content-type: application/json",
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "request body is over the limit",
                ))
            }
            Err(e) => Err(ApiError::new(ErrorCode::InvalidRequest, e.body_text())),
        }
    }
}

/// `axum::extract::Path` with rejections in the API's error shape.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e: PathRejection| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}

/// `axum::extract::Query` with rejections in the API's error shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}
