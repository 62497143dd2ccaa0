//! Checks of query parameters the listing endpoints share, with errors in the API's
//! shape (400 `invalid_request`).

use crate::error::ApiError;
use arcus_core::ErrorCode;
use arcus_core::limits::MAX_LIST_LIMIT;
use arcus_core::model::Timestamp;
use time::format_description::well_known::Rfc3339;

/// A 400 `invalid_request` with `message`.
pub(crate) fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// An optional RFC 3339 time parameter called `name`.
pub(crate) fn time_param(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| {
            Timestamp::parse(v, &Rfc3339)
                .map_err(|_| invalid(format!("{name} must be an RFC 3339 time, got `{v}`")))
        })
        .transpose()
}

/// A page size: 1–[`MAX_LIST_LIMIT`], default 100.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIST_LIMIT {
        return Err(invalid(format!("limit must be 1–{MAX_LIST_LIMIT}")));
    }
    Ok(limit)
}
