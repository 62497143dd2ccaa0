//! `/api/v1/apps/{app}/secrets`: set, list and delete an app's secrets. Values go in
//! and are never sent back: answers carry names and times only.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath};
use arcus_core::api::List;
use arcus_core::error::ErrorBody;
use arcus_core::secret::{PutSecret, SecretInfo};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

type Res<T> = Result<T, ApiError>;

/// Creates or replaces a secret (stored encrypted; the answer has no value).
#[utoipa::path(put, path = "/api/v1/apps/{app}/secrets/{name}", tag = "secrets",
    request_body = PutSecret,
    responses((status = 200, body = SecretInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn put_secret(
    State(s): State<AppState>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<PutSecret>,
) -> Res<Json<SecretInfo>> {
    Ok(Json(s.engine.put_secret(&app, &name, &req.value).await?))
}

/// Lists an app's secrets by name (names and times, never values).
#[utoipa::path(get, path = "/api/v1/apps/{app}/secrets", tag = "secrets",
    responses((status = 200, body = List<SecretInfo>), (status = 404, body = ErrorBody)))]
pub async fn list_secrets(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
) -> Res<Json<List<SecretInfo>>> {
    Ok(Json(List {
        items: s.engine.list_secrets(&app).await?,
    }))
}

/// Deletes a secret; functions and triggers still referring to it fail to start until
/// it is set again.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/secrets/{name}", tag = "secrets",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_secret(
    State(s): State<AppState>,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> Res<StatusCode> {
    s.engine.delete_secret(&app, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
