//! The request-rate check of function calls (`/fn/...` and `.../invoke`), made before
//! the body is read or anything runs: over a limit → 429 `rate_limited` with
//! `Retry-After` in whole seconds (rounded up).

use crate::AppState;
use crate::error::ApiError;
use arcus_core::ErrorCode;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

/// `Ok(None)` when the call may go on, `Ok(Some(429 response))` when a rate limit
/// refuses it; lookup errors (`app_not_found`, …) as errors.
pub(crate) async fn admit(
    s: &AppState,
    app: &str,
    function: &str,
) -> Result<Option<Response>, ApiError> {
    let Some(refusal) = s.engine.admit_request(app, function).await? else {
        return Ok(None);
    };
    let mut resp = ApiError::new(ErrorCode::RateLimited, refusal.message).into_response();
    resp.headers_mut()
        .insert("retry-after", HeaderValue::from(refusal.retry_after_s));
    Ok(Some(resp))
}
