//! REST API handlers under `/api/v1`.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, RequestId};
use crate::invoke::function_response;
use arcus_core::ErrorCode;
use arcus_core::api::{
    CreateApp, CreateFunction, InstanceView, List, PublishVersion, PutAlias, UpdateApp,
    UpdateFunction,
};
use arcus_core::error::ErrorBody;
use arcus_core::events::{Accepted, MAX_ASYNC_PAYLOAD_BYTES};
use arcus_core::limits::{MAX_SYNC_PAYLOAD_BYTES, MAX_WASM_CODE_BYTES, MAX_ZIP_CODE_BYTES};
use arcus_core::model::{Alias, App, Function, Version};
use arcus_core::names::Qualifier;
use arcus_core::record::TriggerKind;
use arcus_core::tokens::{Identity, Permission};
use arcus_engine::{Input, Target};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::Response;
use serde::Deserialize;

type Res<T> = Result<T, ApiError>;

/// `?force=` of app deletion.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ForceQuery {
    /// Also delete the app's functions.
    #[serde(default)]
    pub force: bool,
}

/// `?qualifier=&mode=` of invoke.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InvokeQuery {
    /// `draft`, a version number or an alias; default `live`.
    pub qualifier: Option<String>,
    /// `sync` (default) answers with the function's response; `async` answers 202 with
    /// an invocation id once the event is durably queued.
    pub mode: Option<InvokeMode>,
}

/// How `POST .../invoke` runs the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvokeMode {
    /// Wait for the function's response.
    Sync,
    /// Queue the event (202) and run it in the background, with retries.
    Async,
}

/// Creates an app.
#[utoipa::path(post, path = "/api/v1/apps", tag = "apps", request_body = CreateApp,
    responses((status = 201, body = App), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_app(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<CreateApp>,
) -> Res<(StatusCode, Json<App>)> {
    Ok((StatusCode::CREATED, Json(s.engine.create_app(req).await?)))
}

/// Lists the apps the caller may manage (every app for admin).
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps", responses((status = 200, body = List<App>)))]
pub async fn list_apps(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Res<Json<List<App>>> {
    let mut items = s.engine.store().list_apps().await?;
    items.retain(|a| identity.allows(&Permission::Manage { app: &a.name }));
    Ok(Json(List { items }))
}

/// Reads an app.
#[utoipa::path(get, path = "/api/v1/apps/{app}", tag = "apps",
    responses((status = 200, body = App), (status = 404, body = ErrorBody)))]
pub async fn get_app(State(s): State<AppState>, ApiPath(app): ApiPath<String>) -> Res<Json<App>> {
    Ok(Json(s.engine.store().get_app(&app).await?))
}

/// Changes an app's description or quotas.
#[utoipa::path(patch, path = "/api/v1/apps/{app}", tag = "apps", request_body = UpdateApp,
    responses((status = 200, body = App), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_app(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateApp>,
) -> Res<Json<App>> {
    Ok(Json(s.engine.update_app(&app, req).await?))
}

/// Deletes an app; with functions only when `force=true`.
#[utoipa::path(delete, path = "/api/v1/apps/{app}", tag = "apps", params(ForceQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_app(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiQuery(q): ApiQuery<ForceQuery>,
) -> Res<StatusCode> {
    s.engine.delete_app(&app, q.force).await?;
    if let Err(e) = s.triggers.reload().await {
        tracing::warn!("cannot reload triggers: {e}");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a function (draft config, no code yet).
#[utoipa::path(post, path = "/api/v1/apps/{app}/functions", tag = "functions", request_body = CreateFunction,
    responses((status = 201, body = Function), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_function(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiJson(req): ApiJson<CreateFunction>,
) -> Res<(StatusCode, Json<Function>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.engine.create_function(&app, req).await?),
    ))
}

/// Lists an app's functions.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions", tag = "functions",
    responses((status = 200, body = List<Function>), (status = 404, body = ErrorBody)))]
pub async fn list_functions(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
) -> Res<Json<List<Function>>> {
    Ok(Json(List {
        items: s.engine.store().list_functions(&app).await?,
    }))
}

/// Reads a function.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}", tag = "functions",
    responses((status = 200, body = Function), (status = 404, body = ErrorBody)))]
pub async fn get_function(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
) -> Res<Json<Function>> {
    Ok(Json(s.engine.store().get_function(&app, &f).await?))
}

/// Changes a function's draft config or metadata.
#[utoipa::path(patch, path = "/api/v1/apps/{app}/functions/{function}", tag = "functions", request_body = UpdateFunction,
    responses((status = 200, body = Function), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_function(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<UpdateFunction>,
) -> Res<Json<Function>> {
    Ok(Json(s.engine.update_function(&app, &f, req).await?))
}

/// Deletes a function with its versions and aliases; with async invocations still to
/// run only when `force=true` (they are marked cancelled).
#[utoipa::path(delete, path = "/api/v1/apps/{app}/functions/{function}", tag = "functions", params(ForceQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_function(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ForceQuery>,
) -> Res<StatusCode> {
    s.engine.delete_function(&app, &f, q.force).await?;
    // Its triggers went with it: stop their tasks now rather than at the next re-sync.
    if let Err(e) = s.triggers.reload().await {
        tracing::warn!("cannot reload triggers: {e}");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Uploads the draft's code — a wasm component (`application/wasm`) or, for python3, node
/// and custom functions, a zip (`application/zip`) — and builds it before answering.
#[utoipa::path(put, path = "/api/v1/apps/{app}/functions/{function}/code", tag = "functions",
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 200, body = Function), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn put_code(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Res<Json<Function>> {
    let function = s.engine.store().get_function(&app, &f).await?;
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (accepted, limit, what) = if function.config.runtime.is_process() {
        (
            matches!(ct, "application/zip" | "application/octet-stream"),
            MAX_ZIP_CODE_BYTES,
            "a zip (application/zip)",
        )
    } else {
        (
            matches!(ct, "application/wasm" | "application/octet-stream"),
            MAX_WASM_CODE_BYTES,
            "a component (application/wasm)",
        )
    };
    if !accepted {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "code of a {} function must be sent as {what}",
                function.config.runtime.as_str()
            ),
        ));
    }
    let code = read_body(body, limit).await?;
    if code.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidCode,
            "the uploaded code is empty",
        ));
    }
    Ok(Json(s.engine.upload_code(&app, &f, code.to_vec()).await?))
}

/// Reads a body up to `limit` bytes; 413 beyond.
pub(crate) async fn read_body(body: Body, limit: usize) -> Res<Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("body is over the limit of {limit} bytes"),
        )
    })
}

/// Publishes the draft as a new version.
#[utoipa::path(post, path = "/api/v1/apps/{app}/functions/{function}/versions", tag = "versions", request_body = PublishVersion,
    responses((status = 201, body = Version), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn publish(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
    body: Body,
) -> Res<(StatusCode, Json<Version>)> {
    let raw = read_body(body, arcus_core::limits::MAX_API_BODY_BYTES).await?;
    let req: PublishVersion = if raw.iter().all(u8::is_ascii_whitespace) {
        PublishVersion::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| {
            ApiError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {e}"))
        })?
    };
    Ok((
        StatusCode::CREATED,
        Json(s.engine.publish(&app, &f, req).await?),
    ))
}

/// Lists versions, oldest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/versions", tag = "versions",
    responses((status = 200, body = List<Version>), (status = 404, body = ErrorBody)))]
pub async fn list_versions(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
) -> Res<Json<List<Version>>> {
    Ok(Json(List {
        items: s.engine.store().list_versions(&app, &f).await?,
    }))
}

/// Reads a version.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/versions/{version}", tag = "versions",
    responses((status = 200, body = Version), (status = 404, body = ErrorBody)))]
pub async fn get_version(
    State(s): State<AppState>,
    ApiPath((app, f, v)): ApiPath<(String, String, u32)>,
) -> Res<Json<Version>> {
    Ok(Json(s.engine.store().get_version(&app, &f, v).await?))
}

/// Deletes a version no alias points at.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/functions/{function}/versions/{version}", tag = "versions",
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_version(
    State(s): State<AppState>,
    ApiPath((app, f, v)): ApiPath<(String, String, u32)>,
) -> Res<StatusCode> {
    s.engine.delete_version(&app, &f, v).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates or moves an alias (optionally with a weighted canary).
#[utoipa::path(put, path = "/api/v1/apps/{app}/functions/{function}/aliases/{alias}", tag = "aliases", request_body = PutAlias,
    responses((status = 200, body = Alias), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_alias(
    State(s): State<AppState>,
    ApiPath((app, f, a)): ApiPath<(String, String, String)>,
    ApiJson(req): ApiJson<PutAlias>,
) -> Res<Json<Alias>> {
    Ok(Json(s.engine.put_alias(&app, &f, &a, req).await?))
}

/// Lists aliases.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/aliases", tag = "aliases",
    responses((status = 200, body = List<Alias>), (status = 404, body = ErrorBody)))]
pub async fn list_aliases(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
) -> Res<Json<List<Alias>>> {
    s.engine.store().get_function(&app, &f).await?;
    Ok(Json(List {
        items: s.engine.store().list_aliases(&app, &f).await?,
    }))
}

/// Reads an alias.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/aliases/{alias}", tag = "aliases",
    responses((status = 200, body = Alias), (status = 404, body = ErrorBody)))]
pub async fn get_alias(
    State(s): State<AppState>,
    ApiPath((app, f, a)): ApiPath<(String, String, String)>,
) -> Res<Json<Alias>> {
    Ok(Json(s.engine.store().get_alias(&app, &f, &a).await?))
}

/// Deletes an alias.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/functions/{function}/aliases/{alias}", tag = "aliases",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_alias(
    State(s): State<AppState>,
    ApiPath((app, f, a)): ApiPath<(String, String, String)>,
) -> Res<StatusCode> {
    s.engine.delete_alias(&app, &f, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Points an alias back at what it had before its last change.
#[utoipa::path(post, path = "/api/v1/apps/{app}/functions/{function}/aliases/{alias}/rollback", tag = "aliases",
    responses((status = 200, body = Alias), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rollback_alias(
    State(s): State<AppState>,
    ApiPath((app, f, a)): ApiPath<(String, String, String)>,
) -> Res<Json<Alias>> {
    Ok(Json(s.engine.rollback_alias(&app, &f, &a).await?))
}

/// Invokes a function with a JSON event (delivered to wasm as `POST /`). Sync: answers
/// with the function's own response. Async (`mode=async`, up to 256 KiB): answers 202
/// with the invocation id once the event is stored; an `idempotency-key` header repeated
/// within 24 h returns the first id.
#[utoipa::path(post, path = "/api/v1/apps/{app}/functions/{function}/invoke", tag = "invoke", params(InvokeQuery),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "the function's response"), (status = 400, body = ErrorBody),
        (status = 202, body = Accepted),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn invoke(
    State(s): State<AppState>,
    Extension(RequestId(id)): Extension<RequestId>,
    Extension(trace): Extension<arcus_engine::trace::TraceCtx>,
    ApiPath((app, f)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<InvokeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Res<Response> {
    let qualifier = match q.qualifier.as_deref() {
        None | Some("") => Qualifier::live(),
        Some(q) => Qualifier::parse(q)?,
    };
    if let Some(refused) = crate::ratelimit::admit(&s, &app, &f).await? {
        return Ok(refused);
    }
    let is_async = q.mode == Some(InvokeMode::Async);
    let limit = if is_async {
        MAX_ASYNC_PAYLOAD_BYTES
    } else {
        MAX_SYNC_PAYLOAD_BYTES
    };
    let payload = read_body(body, limit).await?;
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the event is not valid JSON: {e}"),
        ));
    }
    let target = Target {
        app,
        function: f,
        qualifier,
    };
    if is_async {
        let key = crate::events::idempotency_key(&headers)?;
        let invocation_id = s
            .engine
            .enqueue_traced(&target, TriggerKind::Async, payload, key, Some(trace))
            .await?;
        return Ok(crate::events::accepted(invocation_id));
    }
    let invoked = s
        .engine
        .invoke_traced(
            &target,
            id,
            TriggerKind::Api,
            Input::Event(payload),
            Some(trace),
        )
        .await?;
    Ok(function_response(invoked).await)
}

/// The function's warm instances on this node.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/instances", tag = "observability",
    responses((status = 200, body = List<InstanceView>), (status = 404, body = ErrorBody)))]
pub async fn instances(
    State(s): State<AppState>,
    ApiPath((app, f)): ApiPath<(String, String)>,
) -> Res<Json<List<InstanceView>>> {
    Ok(Json(List {
        items: s.engine.instances(&app, &f).await?,
    }))
}
