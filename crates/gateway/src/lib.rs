//! The HTTP face of an Arcus node: function routes (`/fn/...`), the REST API
//! (`/api/v1/...`) with its OpenAPI document, and health endpoints. Every response carries
//! `x-arcus-request-id`; every error has the shape `{"error": {code, message, request_id}}`.

mod access_keys;
mod api;
mod audit;
mod auth;
mod authz;
mod error;
mod events;
mod invoke;
mod lambda;
mod logs;
mod observe;
mod openapi;
mod params;
mod ratelimit;
mod secrets;
pub mod server;
mod sigv4;
mod tokens;
mod trace;
mod triggers;

pub use auth::Auth;
pub use error::{ApiError, ERROR_CODE, REQUEST_ID};
pub use openapi::ApiDoc;

use arcus_core::limits::MAX_API_BODY_BYTES;
use arcus_engine::Engine;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use utoipa::OpenApi;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The node's engine.
    pub engine: Engine,
    /// Token verification.
    pub auth: Auth,
    /// The node's triggers.
    pub triggers: arcus_triggers::Manager,
    /// The Prometheus exporter behind `/metrics` (`None`: the route answers 404).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// `GET /metrics`: Prometheus text format (admin token required: series name apps and
/// functions).
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Err(e) = s.auth.require_admin(s.engine.store(), &headers).await {
        return e.into_response();
    }
    let Some(handle) = &s.metrics else {
        return error::not_found().await.into_response();
    };
    // The gauges are sampled before the counters are rendered, so whatever state they
    // show (an event failed, an instance started) is already counted: the other order
    // lets the store answer with a newer state than the counters rendered before it.
    let gauges = s.engine.gauges().await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render() + &gauges,
    )
        .into_response()
}

/// The REST API router (`/api/v1/...`): every route but the OpenAPI document needs a
/// token with the permission its path asks for (see [`authz`]).
fn api_router(state: AppState) -> Router<AppState> {
    let fn_path = "/api/v1/apps/{app}/functions/{function}";
    let protected = Router::new()
        .route("/api/v1/apps", post(api::create_app).get(api::list_apps))
        .route(
            "/api/v1/apps/{app}",
            get(api::get_app)
                .patch(api::update_app)
                .delete(api::delete_app),
        )
        .route(
            "/api/v1/apps/{app}/functions",
            post(api::create_function).get(api::list_functions),
        )
        .route(
            fn_path,
            get(api::get_function)
                .patch(api::update_function)
                .delete(api::delete_function),
        )
        .route(
            &format!("{fn_path}/code"),
            axum::routing::put(api::put_code),
        )
        .route(
            &format!("{fn_path}/versions"),
            post(api::publish).get(api::list_versions),
        )
        .route(
            &format!("{fn_path}/versions/{{version}}"),
            get(api::get_version).delete(api::delete_version),
        )
        .route(&format!("{fn_path}/aliases"), get(api::list_aliases))
        .route(
            &format!("{fn_path}/aliases/{{alias}}"),
            axum::routing::put(api::put_alias)
                .get(api::get_alias)
                .delete(api::delete_alias),
        )
        .route(
            &format!("{fn_path}/aliases/{{alias}}/rollback"),
            post(api::rollback_alias),
        )
        .route(
            &format!("{fn_path}/invoke"),
            post(api::invoke).layer(middleware::from_fn_with_state(
                state.clone(),
                trace::gateway_span,
            )),
        )
        .route(
            &format!("{fn_path}/invocations"),
            get(observe::function_invocations),
        )
        .route(&format!("{fn_path}/stats"), get(observe::function_stats))
        .route(
            "/api/v1/apps/{app}/invocations",
            get(observe::app_invocations),
        )
        .route("/api/v1/apps/{app}/stats", get(observe::app_stats))
        .route("/api/v1/apps/{app}/usage", get(observe::usage))
        .route("/api/v1/apps/{app}/secrets", get(secrets::list_secrets))
        .route(
            "/api/v1/apps/{app}/secrets/{name}",
            axum::routing::put(secrets::put_secret).delete(secrets::delete_secret),
        )
        .route(&format!("{fn_path}/logs"), get(logs::function_logs))
        .route("/api/v1/apps/{app}/logs", get(logs::app_logs))
        .route(&format!("{fn_path}/instances"), get(api::instances))
        .route("/api/v1/invocations/{id}", get(events::get_invocation))
        .route(
            "/api/v1/tokens",
            post(tokens::create_token).get(tokens::list_tokens),
        )
        .route("/api/v1/audit", get(audit::list_audit))
        .route(
            "/api/v1/access-keys",
            post(access_keys::create_access_key).get(access_keys::list_access_keys),
        )
        .route(
            "/api/v1/access-keys/{id}",
            axum::routing::delete(access_keys::delete_access_key),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(tokens::delete_token),
        )
        .route(
            &format!("{fn_path}/async-invocations"),
            get(events::async_invocations),
        )
        .route(
            &format!("{fn_path}/dead-letters"),
            get(events::dead_letters),
        )
        .route(
            &format!("{fn_path}/dead-letters/redrive"),
            post(events::redrive_all),
        )
        .route(
            &format!("{fn_path}/dead-letters/{{id}}/redrive"),
            post(events::redrive_one),
        )
        .route(
            &format!("{fn_path}/triggers"),
            post(triggers::create_trigger).get(triggers::list_triggers),
        )
        .route(
            &format!("{fn_path}/triggers/{{trigger}}"),
            get(triggers::get_trigger)
                .patch(triggers::update_trigger)
                .delete(triggers::delete_trigger),
        )
        .layer(DefaultBodyLimit::max(MAX_API_BODY_BYTES))
        .route_layer(middleware::from_fn_with_state(state.clone(), audit::record))
        .route_layer(middleware::from_fn_with_state(state, authz::authorize));
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        )
        .merge(protected)
}

async fn ready(State(s): State<AppState>) -> Result<&'static str, ApiError> {
    s.engine.store().get_setting("ready-probe").await?;
    Ok("ready")
}

/// The whole node router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/fn/{*path}",
            any(invoke::fn_route).layer(middleware::from_fn_with_state(
                state.clone(),
                trace::gateway_span,
            )),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(lambda::invoke).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/hooks/{trigger_id}",
            post(triggers::webhook).layer(DefaultBodyLimit::disable()),
        )
        .merge(api_router(state.clone()))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn(error::request_id))
        .with_state(state)
}
