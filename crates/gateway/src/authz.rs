//! Authorization of the REST API: a route layer that resolves the caller's identity and
//! checks the permission the route needs from its path alone — before any handler runs
//! and so before anything is looked up. A token of app A therefore gets the same 403 for
//! app B's existing and missing functions.
//!
//! | route | needs |
//! |---|---|
//! | `POST /api/v1/apps` | admin |
//! | `GET /api/v1/apps` | any valid token (lists the apps it may manage) |
//! | `/api/v1/apps/{app}/functions/{fn}/invoke` | invoke of `{app}/{fn}` |
//! | every other `/api/v1/apps/{app}/…` | manage of `{app}` |
//! | `/api/v1/tokens…`, `/api/v1/invocations/{id}`, `/api/v1/audit` | any valid token; the handler checks |
//! | anything else | admin |

use crate::AppState;
use arcus_core::ErrorCode;
use arcus_core::tokens::{Identity, Permission};
use axum::extract::{FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

use crate::error::ApiError;

fn forbidden(message: String) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, message)
}

/// Checks `identity` against what the route `matched` with `params` needs.
fn check(
    identity: &Identity,
    method: &Method,
    matched: &str,
    params: &HashMap<String, String>,
) -> Result<(), ApiError> {
    // Routes whose resource is not in the path: the handler decides.
    let handler_decides = matched.starts_with("/api/v1/tokens")
        || matched.starts_with("/api/v1/access-keys")
        || matched == "/api/v1/invocations/{id}"
        || matched == "/api/v1/audit"
        || (matched == "/api/v1/apps" && method == Method::GET);
    if handler_decides {
        return Ok(());
    }
    let app = params.get("app").map(String::as_str);
    let function = params.get("function").map(String::as_str);
    let (permission, what) = match (app, function) {
        (Some(app), Some(function)) if matched.ends_with("/invoke") => (
            Permission::Invoke { app, function },
            format!("invoke `{app}/{function}`"),
        ),
        (Some(app), _) => (Permission::Manage { app }, format!("manage app `{app}`")),
        (None, _) => (Permission::Admin, "do this (admin only)".to_string()),
    };
    if identity.allows(&permission) {
        Ok(())
    } else {
        Err(forbidden(format!("this token may not {what}")))
    }
}

/// The route layer of `/api/v1`: 401 without a valid token, 403 without the permission
/// the route needs; otherwise the [`Identity`] is passed on as a request extension.
pub(crate) async fn authorize(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let identity = match s.auth.identify(s.engine.store(), req.headers()).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let (mut parts, body) = req.into_parts();
    let matched = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let params = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &s)
        .await
        .map(|p| p.0)
        .unwrap_or_default();
    if let Err(e) = check(&identity, &parts.method, &matched, &params) {
        return e.into_response();
    }
    parts.extensions.insert(identity);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arcus_core::tokens::Scope;

    fn who(scopes: &[&str]) -> Identity {
        Identity {
            token_id: Some("t".into()),
            scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
        }
    }

    fn params(app: Option<&str>, function: Option<&str>) -> HashMap<String, String> {
        let mut m = HashMap::new();
        if let Some(a) = app {
            m.insert("app".to_string(), a.to_string());
        }
        if let Some(f) = function {
            m.insert("function".to_string(), f.to_string());
        }
        m
    }

    #[test]
    fn routes_need_the_permission_of_their_path() {
        let f = "/api/v1/apps/{app}/functions/{function}";
        let invoke = format!("{f}/invoke");
        let code = format!("{f}/code");
        type Case<'a> = (
            &'a str,
            Method,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            bool,
        );
        let cases: [Case<'_>; 12] = [
            ("app:a:manage", Method::GET, f, Some("a"), Some("f"), true),
            ("app:a:manage", Method::GET, f, Some("b"), Some("f"), false),
            ("app:a:invoke", Method::GET, f, Some("a"), Some("f"), false),
            (
                "app:a:invoke",
                Method::POST,
                &invoke,
                Some("a"),
                Some("f"),
                true,
            ),
            (
                "app:a:invoke",
                Method::POST,
                &invoke,
                Some("b"),
                Some("f"),
                false,
            ),
            (
                "function:a/f:invoke",
                Method::POST,
                &invoke,
                Some("a"),
                Some("f"),
                true,
            ),
            (
                "function:a/f:invoke",
                Method::POST,
                &invoke,
                Some("a"),
                Some("g"),
                false,
            ),
            (
                "function:a/f:invoke",
                Method::PUT,
                &code,
                Some("a"),
                Some("f"),
                false,
            ),
            (
                "app:a:manage",
                Method::POST,
                "/api/v1/apps",
                None,
                None,
                false,
            ),
            ("admin", Method::POST, "/api/v1/apps", None, None, true),
            (
                "app:a:invoke",
                Method::GET,
                "/api/v1/apps",
                None,
                None,
                true,
            ),
            (
                "app:a:invoke",
                Method::GET,
                "/api/v1/other",
                None,
                None,
                false,
            ),
        ];
        for (scope, method, route, app, function, ok) in cases {
            let got = check(&who(&[scope]), &method, route, &params(app, function));
            assert_eq!(got.is_ok(), ok, "{scope} {method} {route} {app:?}");
            if let Err(e) = got {
                assert_eq!(e.0.code, ErrorCode::Forbidden);
            }
        }
        for route in [
            "/api/v1/tokens",
            "/api/v1/tokens/{id}",
            "/api/v1/invocations/{id}",
        ] {
            assert!(
                check(
                    &who(&["function:a/f:invoke"]),
                    &Method::GET,
                    route,
                    &params(None, None)
                )
                .is_ok()
            );
        }
    }
}
