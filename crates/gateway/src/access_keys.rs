//! `/api/v1/access-keys`: create (the secret is shown once), list and delete the
//! app-scoped access keys that sign Lambda-compatible API calls. Each needs manage of
//! the key's app; keys of apps the caller may not manage look like keys that do not
//! exist.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use arcus_core::ErrorCode;
use arcus_core::access_keys::{AccessKeyView, CreateAccessKey, CreatedAccessKey};
use arcus_core::api::List;
use arcus_core::error::ErrorBody;
use arcus_core::tokens::{Identity, Permission};
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::Deserialize;

type Res<T> = Result<T, ApiError>;

/// `?app=` of the listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AccessKeyQuery {
    /// Only this app's keys.
    pub app: Option<String>,
}

fn may_manage(identity: &Identity, app: &str) -> bool {
    identity.allows(&Permission::Manage { app })
}

/// Creates an access key of an app; the answer holds its secret, never shown again.
#[utoipa::path(post, path = "/api/v1/access-keys", tag = "access-keys", request_body = CreateAccessKey,
    responses((status = 201, body = CreatedAccessKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_access_key(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
    ApiJson(req): ApiJson<CreateAccessKey>,
) -> Res<(StatusCode, Json<CreatedAccessKey>)> {
    if !may_manage(&identity, &req.app) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this token may not manage app `{}`", req.app),
        ));
    }
    let created = s.engine.create_access_key(req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists the access keys of the apps the caller may manage (never their secrets).
#[utoipa::path(get, path = "/api/v1/access-keys", tag = "access-keys", params(AccessKeyQuery),
    responses((status = 200, body = List<AccessKeyView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_access_keys(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
    ApiQuery(q): ApiQuery<AccessKeyQuery>,
) -> Res<Json<List<AccessKeyView>>> {
    if let Some(app) = &q.app
        && !may_manage(&identity, app)
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this token may not manage app `{app}`"),
        ));
    }
    let items = s
        .engine
        .store()
        .list_access_keys(q.app.as_deref())
        .await?
        .into_iter()
        .filter(|k| may_manage(&identity, &k.app))
        .collect();
    Ok(Json(List { items }))
}

/// Deletes an access key at once; 404 for a key of an app the caller may not manage,
/// as for one that does not exist.
#[utoipa::path(delete, path = "/api/v1/access-keys/{id}", tag = "access-keys",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_access_key(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
    ApiPath(id): ApiPath<String>,
) -> Res<StatusCode> {
    let store = s.engine.store();
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("access key `{id}` not found"));
    let key = match store.get_access_key(&id).await {
        Ok(k) => k,
        Err(e) if e.code == ErrorCode::NotFound => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if !may_manage(&identity, &key.view.app) {
        return Err(not_found());
    }
    store.delete_access_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
