//! JSON calls of the REST API that `arcus-client` has no method for (async invoke,
//! invocation status, triggers), on keep-alive loopback connections with the admin
//! token; bodies are parsed as `serde_json::Value` so the bench depends on the wire
//! format, not on the server's types.

use crate::load;
use crate::servers::ArcusServer;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// Time allowed for one API call.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection's request sender.
pub type Sender = SendRequest<Full<Bytes>>;

/// Where the API is and the token it takes.
#[derive(Debug, Clone)]
pub struct Api {
    /// The node's address (loopback).
    pub addr: SocketAddr,
    token: String,
}

impl ArcusServer {
    /// The node's REST API.
    pub fn api(&self) -> Api {
        Api {
            addr: self.addr,
            token: self.token.clone(),
        }
    }
}

impl Api {
    /// A fresh keep-alive connection.
    pub async fn connect(&self) -> Result<Sender> {
        load::connect(self.addr).await
    }

    /// `method path` with `body` (JSON) on `sender`, within `limit`.
    pub async fn call(
        &self,
        sender: &mut Sender,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        limit: Duration,
    ) -> Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string())
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .context("cannot build the request")?;
        load::exchange(sender, request, limit).await
    }

    /// `method path` on a fresh connection; an error unless the answer is `expect`;
    /// the body parsed as JSON (`null` if empty).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expect: StatusCode,
    ) -> Result<Value> {
        let mut sender = self.connect().await?;
        let body = body.map(|b| Bytes::from(b.to_string()));
        let (status, bytes) = self
            .call(&mut sender, method.clone(), path, body, API_TIMEOUT)
            .await
            .with_context(|| format!("{method} {path}"))?;
        if status != expect {
            bail!(
                "{method} {path} answered {status} {:?}; expected {expect}",
                String::from_utf8_lossy(&bytes)
            );
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{method} {path}: the answer is not JSON"))
    }

    /// `GET path` expecting 200 and a JSON answer.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.json(Method::GET, path, None, StatusCode::OK).await
    }
}

/// The length of the `items` array of a `List` answer.
pub fn item_count(list: &Value) -> Result<usize> {
    list.get("items")
        .and_then(Value::as_array)
        .map(Vec::len)
        .with_context(|| format!("no items array in {list}"))
}
