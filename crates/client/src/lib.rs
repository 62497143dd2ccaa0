//! A typed async client of the Arcus REST API (`<server>/api/v1`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), arcus_client::ClientError> {
//! let client = arcus_client::Client::new("http://127.0.0.1:8080", Some("token".into()))?;
//! for app in client.list_apps().await? {
//!     println!("{}", app.name);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every method maps one endpoint and returns the types of `arcus_core`; API errors
//! come back as [`ClientError::Api`] with the server's code, message and request id.

mod access_keys;
mod audit;
mod error;
mod events;
mod invoke;
mod logs;
mod observe;
mod secrets;
mod tokens;
mod triggers;

pub use audit::AuditFilter;
pub use error::ClientError;
pub use events::Redriven;
pub use invoke::InvokeResponse;
pub use logs::{LogEvents, LogFilter};
pub use observe::InvocationFilter;

use arcus_core::api::{
    CreateApp, CreateFunction, InstanceView, List, PublishVersion, PutAlias, UpdateApp,
    UpdateFunction,
};
use arcus_core::error::ErrorBody;
use arcus_core::model::{Alias, App, Function, Version};
use arcus_core::record::{InvocationRecord, LogLine};
use bytes::Bytes;
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Header carrying the request id on every response.
pub const REQUEST_ID_HEADER: &str = "x-arcus-request-id";
/// Header carrying the invocation id on invoke responses.
pub const INVOCATION_ID_HEADER: &str = "x-arcus-invocation-id";
/// Header carrying the version that ran on invoke responses (absent for the draft).
pub const VERSION_HEADER: &str = "x-arcus-version";

/// Result alias of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A client of one Arcus server. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Server root without a trailing slash, e.g. `http://127.0.0.1:8080`.
    server: String,
    /// `<server>/api/v1`.
    api: Url,
    token: Option<String>,
}

impl Client {
    /// Builds a client of the server at `base_url` (e.g. `http://127.0.0.1:8080`; a
    /// trailing `/api/v1` is accepted and ignored). `token` is sent as a bearer token.
    pub fn new(base_url: impl AsRef<str>, token: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("arcus-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Self::with_http_client(http, base_url, token)
    }

    /// Like [`Client::new`] with a caller-configured `reqwest::Client`
    /// (timeouts, proxies, ...).
    pub fn with_http_client(
        http: reqwest::Client,
        base_url: impl AsRef<str>,
        token: Option<String>,
    ) -> Result<Self> {
        let raw = base_url.as_ref();
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: raw.to_string(),
            reason: reason.to_string(),
        };
        let mut server = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(server.scheme(), "http" | "https") || server.cannot_be_a_base() {
            return Err(invalid("expected an http:// or https:// URL"));
        }
        if server.query().is_some() || server.fragment().is_some() {
            return Err(invalid("a server URL has no query or fragment"));
        }
        let path = server.path().trim_end_matches('/');
        let path = path.strip_suffix("/api/v1").unwrap_or(path).to_string();
        server.set_path(&path);
        let server = server.as_str().trim_end_matches('/').to_string();
        let api = Url::parse(&format!("{server}/api/v1")).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self {
            http,
            server,
            api,
            token,
        })
    }

    /// The server root without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The public URL of a function: `<server>/fn/{app}/{fn}[@{qualifier}]/`.
    pub fn function_url(&self, app: &str, function: &str, qualifier: Option<&str>) -> String {
        match qualifier {
            Some(q) => format!("{}/fn/{app}/{function}@{q}/", self.server),
            None => format!("{}/fn/{app}/{function}/", self.server),
        }
    }

    // ----- apps -------------------------------------------------------------------

    /// `POST /apps`.
    pub async fn create_app(&self, body: &CreateApp) -> Result<App> {
        let url = self.url(&["apps"])?;
        self.json(self.request(Method::POST, url).json(body)).await
    }

    /// `GET /apps`.
    pub async fn list_apps(&self) -> Result<Vec<App>> {
        let url = self.url(&["apps"])?;
        self.list(self.request(Method::GET, url)).await
    }

    /// `GET /apps/{app}`.
    pub async fn get_app(&self, app: &str) -> Result<App> {
        let url = self.url(&["apps", app])?;
        self.json(self.request(Method::GET, url)).await
    }

    /// `PATCH /apps/{app}`: description and quotas.
    pub async fn update_app(&self, app: &str, body: &UpdateApp) -> Result<App> {
        let url = self.url(&["apps", app])?;
        self.json(self.request(Method::PATCH, url).json(body)).await
    }

    /// `DELETE /apps/{app}?force=...`; with `force` the app's functions go too.
    pub async fn delete_app(&self, app: &str, force: bool) -> Result<()> {
        let url = self.url(&["apps", app])?;
        let force = if force { "true" } else { "false" };
        self.empty(self.request(Method::DELETE, url).query(&[("force", force)]))
            .await
    }

    // ----- functions --------------------------------------------------------------

    /// `POST /apps/{app}/functions`.
    pub async fn create_function(&self, app: &str, body: &CreateFunction) -> Result<Function> {
        let url = self.url(&["apps", app, "functions"])?;
        self.json(self.request(Method::POST, url).json(body)).await
    }

    /// `GET /apps/{app}/functions`.
    pub async fn list_functions(&self, app: &str) -> Result<Vec<Function>> {
        let url = self.url(&["apps", app, "functions"])?;
        self.list(self.request(Method::GET, url)).await
    }

    /// `GET /apps/{app}/functions/{fn}`.
    pub async fn get_function(&self, app: &str, function: &str) -> Result<Function> {
        let url = self.url(&["apps", app, "functions", function])?;
        self.json(self.request(Method::GET, url)).await
    }

    /// `PATCH /apps/{app}/functions/{fn}`: changes the draft's config and metadata.
    pub async fn update_function(
        &self,
        app: &str,
        function: &str,
        body: &UpdateFunction,
    ) -> Result<Function> {
        let url = self.url(&["apps", app, "functions", function])?;
        self.json(self.request(Method::PATCH, url).json(body)).await
    }

    /// `DELETE /apps/{app}/functions/{fn}?force=...`; with `force` its queued async
    /// invocations are cancelled (without, their presence is a 409 `conflict`).
    pub async fn delete_function(&self, app: &str, function: &str, force: bool) -> Result<()> {
        let url = self.url(&["apps", app, "functions", function])?;
        let force = if force { "true" } else { "false" };
        self.empty(self.request(Method::DELETE, url).query(&[("force", force)]))
            .await
    }

    /// `PUT /apps/{app}/functions/{fn}/code`: uploads a wasm component or a zip as the
    /// draft's code. The server validates and builds it before answering.
    pub async fn upload_code(
        &self,
        app: &str,
        function: &str,
        code: impl Into<Bytes>,
    ) -> Result<Function> {
        let url = self.url(&["apps", app, "functions", function, "code"])?;
        let code: Bytes = code.into();
        let req = self
            .request(Method::PUT, url)
            .header(reqwest::header::CONTENT_TYPE, code_content_type(&code))
            .body(code);
        self.json(req).await
    }

    // ----- versions ---------------------------------------------------------------

    /// `POST .../versions`: snapshots the draft as a new version.
    pub async fn publish_version(
        &self,
        app: &str,
        function: &str,
        body: &PublishVersion,
    ) -> Result<Version> {
        let url = self.url(&["apps", app, "functions", function, "versions"])?;
        self.json(self.request(Method::POST, url).json(body)).await
    }

    /// `GET .../versions`.
    pub async fn list_versions(&self, app: &str, function: &str) -> Result<Vec<Version>> {
        let url = self.url(&["apps", app, "functions", function, "versions"])?;
        self.list(self.request(Method::GET, url)).await
    }

    /// `GET .../versions/{n}`.
    pub async fn get_version(&self, app: &str, function: &str, version: u32) -> Result<Version> {
        let n = version.to_string();
        let url = self.url(&["apps", app, "functions", function, "versions", &n])?;
        self.json(self.request(Method::GET, url)).await
    }

    /// `DELETE .../versions/{n}`.
    pub async fn delete_version(&self, app: &str, function: &str, version: u32) -> Result<()> {
        let n = version.to_string();
        let url = self.url(&["apps", app, "functions", function, "versions", &n])?;
        self.empty(self.request(Method::DELETE, url)).await
    }

    // ----- aliases ----------------------------------------------------------------

    /// `PUT .../aliases/{alias}`: creates or moves an alias.
    pub async fn put_alias(
        &self,
        app: &str,
        function: &str,
        alias: &str,
        body: &PutAlias,
    ) -> Result<Alias> {
        let url = self.url(&["apps", app, "functions", function, "aliases", alias])?;
        self.json(self.request(Method::PUT, url).json(body)).await
    }

    /// `GET .../aliases`.
    pub async fn list_aliases(&self, app: &str, function: &str) -> Result<Vec<Alias>> {
        let url = self.url(&["apps", app, "functions", function, "aliases"])?;
        self.list(self.request(Method::GET, url)).await
    }

    /// `GET .../aliases/{alias}`.
    pub async fn get_alias(&self, app: &str, function: &str, alias: &str) -> Result<Alias> {
        let url = self.url(&["apps", app, "functions", function, "aliases", alias])?;
        self.json(self.request(Method::GET, url)).await
    }

    /// `DELETE .../aliases/{alias}`.
    pub async fn delete_alias(&self, app: &str, function: &str, alias: &str) -> Result<()> {
        let url = self.url(&["apps", app, "functions", function, "aliases", alias])?;
        self.empty(self.request(Method::DELETE, url)).await
    }

    /// `POST .../aliases/{alias}/rollback`: restores the alias's previous target.
    pub async fn rollback_alias(&self, app: &str, function: &str, alias: &str) -> Result<Alias> {
        let url = self.url(&[
            "apps",
            app,
            "functions",
            function,
            "aliases",
            alias,
            "rollback",
        ])?;
        self.json(self.request(Method::POST, url)).await
    }

    // ----- invocation and observation ---------------------------------------------

    /// `POST .../invoke[?qualifier=q]` with `event` (JSON text) as the body.
    ///
    /// The function's own response is returned whatever its status; a response with
    /// an error status whose body is in the platform's error shape (`function_error`,
    /// `function_timeout`, `not_deployed`, ...) is returned as [`ClientError::Api`].
    pub async fn invoke(
        &self,
        app: &str,
        function: &str,
        qualifier: Option<&str>,
        event: impl Into<Bytes>,
    ) -> Result<InvokeResponse> {
        let url = self.url(&["apps", app, "functions", function, "invoke"])?;
        let mut req = self
            .request(Method::POST, url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event.into());
        if let Some(q) = qualifier {
            req = req.query(&[("qualifier", q)]);
        }
        let resp = req.send().await?;
        let resp = InvokeResponse::read(resp).await?;
        match resp.platform_error() {
            Some(err) => Err(err),
            None => Ok(resp),
        }
    }

    /// Like [`Client::invoke`] with an event serialised from `event`.
    pub async fn invoke_json<T: Serialize + ?Sized>(
        &self,
        app: &str,
        function: &str,
        qualifier: Option<&str>,
        event: &T,
    ) -> Result<InvokeResponse> {
        let body = serde_json::to_vec(event).map_err(|e| ClientError::Decode {
            status: 0,
            reason: format!("cannot serialise the event: {e}"),
        })?;
        self.invoke(app, function, qualifier, body).await
    }

    /// `GET /apps/{app}/functions/{fn}/instances`: the function's warm instances.
    pub async fn list_instances(&self, app: &str, function: &str) -> Result<Vec<InstanceView>> {
        let url = self.url(&["apps", app, "functions", function, "instances"])?;
        self.list(self.request(Method::GET, url)).await
    }

    /// `GET .../invocations[?limit=N]`: recent invocation records, newest first.
    pub async fn list_invocations(
        &self,
        app: &str,
        function: &str,
        limit: Option<u32>,
    ) -> Result<Vec<InvocationRecord>> {
        let url = self.url(&["apps", app, "functions", function, "invocations"])?;
        let mut req = self.request(Method::GET, url);
        if let Some(limit) = limit {
            req = req.query(&[("limit", limit)]);
        }
        self.list(req).await
    }

    /// `GET .../logs[?limit=N][&invocation_id=ID]`: log lines, newest first.
    pub async fn list_logs(
        &self,
        app: &str,
        function: &str,
        limit: Option<u32>,
        invocation_id: Option<&str>,
    ) -> Result<Vec<LogLine>> {
        let url = self.url(&["apps", app, "functions", function, "logs"])?;
        let mut req = self.request(Method::GET, url);
        if let Some(limit) = limit {
            req = req.query(&[("limit", limit)]);
        }
        if let Some(id) = invocation_id {
            req = req.query(&[("invocation_id", id)]);
        }
        self.list(req).await
    }

    // ----- plumbing ---------------------------------------------------------------

    /// `<server>/api/v1/<segments...>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidUrl {
                url: self.server.clone(),
                reason: "cannot be a base URL".to_string(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let req = self.http.request(method, url);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends a request and turns an error status into a [`ClientError`].
    async fn send(&self, req: RequestBuilder) -> Result<Response> {
        let resp = req.send().await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(error_from(resp).await)
        }
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let resp = self.send(req).await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
            status,
            reason: e.to_string(),
        })
    }

    async fn list<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<Vec<T>> {
        Ok(self.json::<List<T>>(req).await?.items)
    }

    async fn empty(&self, req: RequestBuilder) -> Result<()> {
        let resp = self.send(req).await?;
        // Drain the body so the connection can be reused.
        resp.bytes().await?;
        Ok(())
    }
}

/// Builds the error of a response with an error status, reading its body.
async fn error_from(resp: Response) -> ClientError {
    let status = resp.status().as_u16();
    let header_id = header_str(resp.headers(), REQUEST_ID_HEADER);
    match resp.bytes().await {
        Ok(body) => error_from_parts(status, header_id, &body),
        Err(e) => ClientError::Transport(e),
    }
}

/// Builds the error of an error status and its body: [`ClientError::Api`] when the
/// body is in the API's error shape, [`ClientError::UnexpectedStatus`] otherwise.
pub(crate) fn error_from_parts(
    status: u16,
    header_request_id: Option<String>,
    body: &[u8],
) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => ClientError::Api {
            status,
            code: error.code,
            message: error.message,
            request_id: if error.request_id.is_empty() {
                header_request_id.unwrap_or_default()
            } else {
                error.request_id
            },
        },
        Err(_) => {
            const MAX: usize = 512;
            let text = String::from_utf8_lossy(body);
            let mut body: String = text.chars().take(MAX).collect();
            if text.chars().nth(MAX).is_some() {
                body.push('…');
            }
            ClientError::UnexpectedStatus {
                status,
                body,
                request_id: header_request_id,
            }
        }
    }
}

/// A header's value as a string, if present and valid UTF-8.
pub(crate) fn header_str(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The content type of uploaded code, from its first bytes: a zip (python3, node and
/// custom functions) or a wasm component.
pub fn code_content_type(code: &[u8]) -> &'static str {
    if code.starts_with(b"PK\x03\x04") || code.starts_with(b"PK\x05\x06") {
        "application/zip"
    } else {
        "application/wasm"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for (given, server) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("http://h:1/api/v1", "http://h:1"),
            ("http://h:1/api/v1/", "http://h:1"),
            ("https://h/prefix/", "https://h/prefix"),
        ] {
            let c = Client::new(given, None).unwrap();
            assert_eq!(c.server_url(), server, "{given}");
            assert_eq!(c.api.as_str(), format!("{server}/api/v1"));
        }
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://h",
            "mailto:x@y",
            "http://h/?a=b",
        ] {
            assert!(Client::new(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_encoded() {
        let c = Client::new("http://h:1/", None).unwrap();
        let url = c.url(&["apps", "a b/c", "functions"]).unwrap();
        assert_eq!(url.as_str(), "http://h:1/api/v1/apps/a%20b%2Fc/functions");
        assert_eq!(c.function_url("a", "f", None), "http://h:1/fn/a/f/");
        assert_eq!(c.function_url("a", "f", Some("3")), "http://h:1/fn/a/f@3/");
    }

    #[test]
    fn error_bodies() {
        let body = br#"{"error":{"code":"app_not_found","message":"no app","request_id":"r1"}}"#;
        let err = error_from_parts(404, Some("hdr".into()), body);
        assert_eq!(err.to_string(), "app_not_found: no app");
        assert_eq!(err.request_id(), Some("r1"));
        assert!(err.is_code(arcus_core::ErrorCode::AppNotFound));
        let err = error_from_parts(502, Some("hdr".into()), b"Bad Gateway");
        assert!(matches!(
            err,
            ClientError::UnexpectedStatus { status: 502, .. }
        ));
        assert_eq!(err.request_id(), Some("hdr"));
    }
}
