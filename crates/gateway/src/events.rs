//! Async invocation endpoints: an invocation's state, a function's dead letters and
//! their redrive, and the helpers the invoke routes share for `202 Accepted`.

use crate::AppState;
use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::params::page_limit;
use arcus_core::ErrorCode;
use arcus_core::api::List;
use arcus_core::error::ErrorBody;
use arcus_core::events::{Accepted, EventStatus, InvocationView};
use arcus_core::store::EventQuery;
use arcus_core::tokens::{Identity, Permission};
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Header making repeats of an async invocation return the first one's id.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

type Res<T> = Result<T, ApiError>;

/// The `idempotency-key` header, if any (must be visible ASCII).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Res<Option<String>> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(v) => v.to_str().map(|k| Some(k.to_string())).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "idempotency-key must be visible ASCII",
            )
        }),
    }
}

/// `202 Accepted` with the invocation id (also in `x-arcus-invocation-id`).
pub(crate) fn accepted(invocation_id: String) -> Response {
    let mut resp = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            invocation_id: invocation_id.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&invocation_id) {
        resp.headers_mut().insert("x-arcus-invocation-id", v);
    }
    resp
}

/// `?limit=` of dead-letter lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeadLetterQuery {
    /// Newest N (default 100, max 1000).
    pub limit: Option<u32>,
}

/// `?status=&limit=` of a function's async invocations.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AsyncListQuery {
    /// Only this status (`queued`, `running`, `succeeded`, `failed`, `dead_lettered`,
    /// `cancelled`).
    pub status: Option<EventStatus>,
    /// Newest N (default 100, max 1000).
    pub limit: Option<u32>,
}

/// Result of a redrive.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Redriven {
    /// How many dead-lettered invocations were queued again.
    pub redriven: u64,
}

/// The state of an invocation: async ones (queued … dead_lettered) with attempts and
/// result; finished sync ones from their record.
#[utoipa::path(get, path = "/api/v1/invocations/{id}", tag = "async",
    responses((status = 200, body = InvocationView), (status = 404, body = ErrorBody)))]
pub async fn get_invocation(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
    ApiPath(id): ApiPath<String>,
) -> Res<Json<InvocationView>> {
    let view = s.engine.invocation(&id).await?;
    // Another app's invocation answers as a missing one does.
    if !identity.allows(&Permission::Manage { app: &view.app }) {
        return Err(ApiError::new(
            ErrorCode::InvocationNotFound,
            format!("invocation `{id}` not found"),
        ));
    }
    Ok(Json(view))
}

/// A function's dead-lettered async invocations, newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/dead-letters", tag = "async",
    params(DeadLetterQuery),
    responses((status = 200, body = List<InvocationView>), (status = 404, body = ErrorBody)))]
pub async fn dead_letters(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> Res<Json<List<InvocationView>>> {
    let query = EventQuery {
        status: Some(EventStatus::DeadLettered),
        limit: page_limit(q.limit)?,
    };
    list(&s, &app, &f, &query).await
}

/// A function's async invocations (its queue and their outcomes), newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/async-invocations", tag = "async",
    params(AsyncListQuery),
    responses((status = 200, body = List<InvocationView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn async_invocations(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<AsyncListQuery>,
) -> Res<Json<List<InvocationView>>> {
    let query = EventQuery {
        status: q.status,
        limit: page_limit(q.limit)?,
    };
    list(&s, &app, &f, &query).await
}

async fn list(
    s: &AppState,
    app: &str,
    f: &str,
    query: &EventQuery,
) -> Res<Json<List<InvocationView>>> {
    let items = s.engine.events(app, f, query).await?;
    Ok(Json(List {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Queues every dead-lettered invocation of the function again (attempts and age start
/// over).
#[utoipa::path(post, path = "/api/v1/apps/{app}/functions/{function}/dead-letters/redrive", tag = "async",
    responses((status = 200, body = Redriven), (status = 404, body = ErrorBody)))]
pub async fn redrive_all(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
) -> Res<Json<Redriven>> {
    let redriven = s.engine.redrive(&app, &f, None).await?;
    Ok(Json(Redriven { redriven }))
}

/// Queues one dead-lettered invocation again.
#[utoipa::path(post, path = "/api/v1/apps/{app}/functions/{function}/dead-letters/{id}/redrive", tag = "async",
    responses((status = 200, body = Redriven), (status = 404, body = ErrorBody)))]
pub async fn redrive_one(
    State(s): State<AppState>,
    ApiPath((app, f, id)): ApiPath<(String, String, String)>,
) -> Res<Json<Redriven>> {
    let redriven = s.engine.redrive(&app, &f, Some(&id)).await?;
    Ok(Json(Redriven { redriven }))
}
