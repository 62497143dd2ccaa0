//! The audit log of the REST API: a route layer that records every control-plane change
//! (POST/PUT/PATCH/DELETE under `/api/v1`, invokes excepted) once it is answered, and
//! `GET /api/v1/audit` to read it.
//!
//! The entry is written in the request, after the handler, before the answer leaves
//! (changes are rare and one insert is cheap; a reader right after a change sees it). A
//! failed write is logged as an error but does not turn a change that happened into an error. "Before" is read from the store by route
//! (app, function, alias, version, trigger, token; a secret by name only); "after" is the
//! answer's JSON body. Both go through [`arcus_core::audit::redact`].

use crate::AppState;
use crate::error::{ApiError, ApiQuery, RequestId};
use crate::params::{invalid, page_limit, time_param};
use arcus_core::ErrorCode;
use arcus_core::audit::{AuditEntry, AuditQuery, BOOTSTRAP_ACTOR, redact};
use arcus_core::error::ErrorBody;
use arcus_core::stats::{Cursor, Page};
use arcus_core::tokens::{Identity, Permission};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::{Method, header::CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Largest answer body read back as "after" (bigger ones are passed on unread).
const MAX_AFTER_BYTES: usize = 1024 * 1024;

/// Path parameters that name the resource below an app or function.
const RESOURCE_PARAMS: &[&str] = &["alias", "version", "trigger", "name", "id"];

fn is_change(method: &Method, route: &str) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && !route.ends_with("/invoke")
}

fn json<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// The resource as the API shows it before the change, where one read gets it.
async fn before(
    s: &AppState,
    route: &str,
    p: &HashMap<String, String>,
) -> Option<serde_json::Value> {
    let store = s.engine.store();
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    let (app, f) = (get("app"), get("function"));
    let fn_path = "/api/v1/apps/{app}/functions/{function}";
    let doc = match route.strip_prefix(fn_path) {
        Some("" | "/code") => json(&store.get_function(app, f).await.ok()?),
        Some("/aliases/{alias}" | "/aliases/{alias}/rollback") => {
            json(&store.get_alias(app, f, get("alias")).await.ok()?)
        }
        Some("/versions/{version}") => {
            let v = get("version").parse().ok()?;
            json(&store.get_version(app, f, v).await.ok()?)
        }
        Some("/triggers/{trigger}") => json(&store.get_trigger(app, f, get("trigger")).await.ok()?),
        Some(_) => None,
        None => match route {
            "/api/v1/apps/{app}" => json(&store.get_app(app).await.ok()?),
            "/api/v1/apps/{app}/secrets/{name}" => {
                let name = get("name");
                store.get_secret(app, name).await.ok()?;
                Some(serde_json::json!({ "name": name }))
            }
            "/api/v1/tokens/{id}" => json(&store.get_token(get("id")).await.ok()?.view),
            _ => None,
        },
    }?;
    Some(redact(doc))
}

/// Reads a successful JSON answer back (redacted) and rebuilds the response.
async fn after(resp: Response) -> (Response, Option<serde_json::Value>) {
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !resp.status().is_success() || !is_json {
        return (resp, None);
    }
    let (parts, body) = resp.into_parts();
    match axum::body::to_bytes(body, MAX_AFTER_BYTES).await {
        Ok(bytes) => {
            let doc = serde_json::from_slice(&bytes).ok().map(redact);
            (Response::from_parts(parts, Body::from(bytes)), doc)
        }
        Err(_) => (Response::from_parts(parts, Body::empty()), None),
    }
}

/// What a request is about, from its matched route and path parameters.
struct Subject {
    route: String,
    params: HashMap<String, String>,
}

impl Subject {
    fn resource(&self, after: Option<&serde_json::Value>) -> Option<String> {
        RESOURCE_PARAMS
            .iter()
            .find_map(|k| self.params.get(*k).cloned())
            .or_else(|| {
                let id = after?.get("id")?.as_str()?;
                Some(id.to_string())
            })
    }

    fn app(&self, after: Option<&serde_json::Value>) -> Option<String> {
        self.params.get("app").cloned().or_else(|| {
            // `POST /api/v1/apps` names its app in the answer.
            (self.route == "/api/v1/apps")
                .then(|| after?.get("name")?.as_str().map(String::from))
                .flatten()
        })
    }
}

/// The route layer recording changes (runs after authorization, so the caller is known).
pub(crate) async fn record(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    if !is_change(req.method(), &route) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let params = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &s)
        .await
        .map(|p| p.0)
        .unwrap_or_default();
    let subject = Subject { route, params };
    let actor = parts
        .extensions
        .get::<Identity>()
        .map(|i| {
            i.token_id
                .clone()
                .unwrap_or_else(|| BOOTSTRAP_ACTOR.to_string())
        })
        .unwrap_or_default();
    let client_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let forwarded_for = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect());
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let method = parts.method.to_string();
    let before = before(&s, &subject.route, &subject.params).await;
    let resp = next.run(Request::from_parts(parts, body)).await;
    let status = resp.status().as_u16();
    let (resp, after) = after(resp).await;
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: time::OffsetDateTime::now_utc(),
        actor,
        method,
        app: subject.app(after.as_ref()),
        function: subject.params.get("function").cloned(),
        resource: subject.resource(after.as_ref()),
        route: subject.route,
        status,
        client_ip,
        forwarded_for,
        request_id,
        before,
        after,
    };
    if let Err(e) = s.engine.store().insert_audit(&entry).await {
        tracing::error!(request_id = %entry.request_id, "cannot write the audit entry: {e}");
    }
    resp
}

/// `GET /api/v1/audit` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// Only entries about this app (required unless the token is admin).
    pub app: Option<String>,
    /// RFC 3339: entries at or after.
    pub since: Option<String>,
    /// RFC 3339: entries before.
    pub until: Option<String>,
    /// A `next_cursor` of an earlier page.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
}

/// Lists audit entries, newest first. An admin token sees every entry; a token that
/// manages an app sees that app's (and must name it with `app`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_audit(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    match p.app.as_deref() {
        None if !identity.is_admin() => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only an admin token may read the whole audit log: name an app with `app`",
            ));
        }
        Some(app) if !identity.allows(&Permission::Manage { app }) => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this token may not manage app `{app}`"),
            ));
        }
        _ => {}
    }
    let query = AuditQuery {
        app: p.app,
        since: time_param("since", p.since.as_deref())?,
        until: time_param("until", p.until.as_deref())?,
        cursor: p.cursor.as_deref().map(Cursor::parse).transpose()?,
        limit: page_limit(p.limit)?,
    };
    if let (Some(a), Some(b)) = (query.since, query.until)
        && a > b
    {
        return Err(invalid("since must not be after until".to_string()));
    }
    Ok(Json(s.engine.store().query_audit(&query).await?))
}
