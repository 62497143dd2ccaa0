//! Trigger handlers: CRUD under `/api/v1/apps/{app}/functions/{function}/triggers` and
//! the public webhook endpoint `POST /hooks/{trigger_id}`.

use crate::AppState;
use crate::error::{ApiError, ApiPath};
use arcus_core::ErrorCode;
use arcus_core::api::List;
use arcus_core::error::ErrorBody;
use arcus_core::events::MAX_ASYNC_PAYLOAD_BYTES;
use arcus_core::trigger::{CreateTrigger, TriggerView, UpdateTrigger};
use arcus_triggers::validate::{parse_create, parse_update};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;

type Res<T> = Result<T, ApiError>;

/// The answer to an accepted webhook event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAccepted {
    /// The async invocation the event became (the first one's, for a redelivered
    /// CloudEvent id).
    pub invocation_id: String,
}

/// Creates a trigger. A bad config is a 400 naming the field; an unreachable broker is
/// not (the trigger's status shows `connecting` with the error).
#[utoipa::path(post, path = "/api/v1/apps/{app}/functions/{function}/triggers", tag = "triggers",
    request_body = CreateTrigger,
    responses((status = 201, body = TriggerView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_trigger(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
    body: Bytes,
) -> Res<(StatusCode, Json<TriggerView>)> {
    let req = parse_create(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(s.triggers.create(&app, &f, req).await?),
    ))
}

/// Lists a function's triggers (secrets redacted) with their status on this node.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/triggers", tag = "triggers",
    responses((status = 200, body = List<TriggerView>), (status = 404, body = ErrorBody)))]
pub async fn list_triggers(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
) -> Res<Json<List<TriggerView>>> {
    Ok(Json(List {
        items: s.triggers.list(&app, &f).await?,
    }))
}

/// Reads a trigger (secrets redacted) with its status on this node.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/triggers/{trigger}", tag = "triggers",
    responses((status = 200, body = TriggerView), (status = 404, body = ErrorBody)))]
pub async fn get_trigger(
    State(s): State<AppState>,
    ApiPath((app, f, t)): ApiPath<(String, String, String)>,
) -> Res<Json<TriggerView>> {
    Ok(Json(s.triggers.get(&app, &f, &t).await?))
}

/// Changes a trigger's config, qualifier or enabled flag; a same-type config without a
/// password or secret keeps the stored one.
#[utoipa::path(patch, path = "/api/v1/apps/{app}/functions/{function}/triggers/{trigger}", tag = "triggers",
    request_body = UpdateTrigger,
    responses((status = 200, body = TriggerView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_trigger(
    State(s): State<AppState>,
    ApiPath((app, f, t)): ApiPath<(String, String, String)>,
    body: Bytes,
) -> Res<Json<TriggerView>> {
    let req = parse_update(&body)?;
    Ok(Json(s.triggers.update(&app, &f, &t, req).await?))
}

/// Deletes a trigger and stops it.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/functions/{function}/triggers/{trigger}", tag = "triggers",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_trigger(
    State(s): State<AppState>,
    ApiPath((app, f, t)): ApiPath<(String, String, String)>,
) -> Res<StatusCode> {
    s.triggers.delete(&app, &f, &t).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook trigger's public endpoint (no admin token): one CloudEvent 1.0 in binary
/// mode (`ce-*` headers) or structured mode (`application/cloudevents+json`), signed
/// with `x-arcus-signature: sha256=<hex HMAC-SHA256 of the body>` when the trigger has
/// a secret. Queued as an async invocation; a redelivered event id is not run twice.
#[utoipa::path(post, path = "/hooks/{trigger_id}", tag = "triggers",
    request_body(content = Vec<u8>, content_type = "application/cloudevents+json"),
    responses((status = 202, body = WebhookAccepted), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn webhook(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Res<(StatusCode, Json<WebhookAccepted>)> {
    let body = axum::body::to_bytes(body, MAX_ASYNC_PAYLOAD_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("a webhook event may be at most {MAX_ASYNC_PAYLOAD_BYTES} bytes"),
            )
        })?;
    let invocation_id = s.triggers.webhook(&id, &headers, body).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookAccepted { invocation_id }),
    ))
}
