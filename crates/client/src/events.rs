//! Async invocations: enqueue, status, a function's queue, dead letters and redrive.

use crate::{Client, Result};
use arcus_core::events::{Accepted, EventStatus, InvocationView};
use bytes::Bytes;
use reqwest::Method;

/// How many invocations a redrive queued again.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Redriven {
    /// The count.
    pub redriven: u64,
}

impl Client {
    /// `POST .../invoke?mode=async`: queues a JSON event and returns its invocation id
    /// once stored. A repeated `idempotency_key` within 24 h returns the first id.
    pub async fn invoke_async(
        &self,
        app: &str,
        function: &str,
        qualifier: Option<&str>,
        event: impl Into<Bytes>,
        idempotency_key: Option<&str>,
    ) -> Result<String> {
        let url = self.url(&["apps", app, "functions", function, "invoke"])?;
        let mut req = self
            .request(Method::POST, url)
            .query(&[("mode", "async")])
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event.into());
        if let Some(q) = qualifier {
            req = req.query(&[("qualifier", q)]);
        }
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        Ok(self.json::<Accepted>(req).await?.invocation_id)
    }

    /// `GET /invocations/{id}`: where an invocation is.
    pub async fn get_invocation(&self, id: &str) -> Result<InvocationView> {
        let url = self.url(&["invocations", id])?;
        self.json(self.request(Method::GET, url)).await
    }

    /// `GET .../async-invocations`: a function's async invocations, newest first.
    pub async fn list_async_invocations(
        &self,
        app: &str,
        function: &str,
        status: Option<EventStatus>,
        limit: u32,
    ) -> Result<Vec<InvocationView>> {
        let url = self.url(&["apps", app, "functions", function, "async-invocations"])?;
        let mut req = self
            .request(Method::GET, url)
            .query(&[("limit", limit.to_string())]);
        if let Some(s) = status {
            req = req.query(&[("status", s.as_str())]);
        }
        self.list(req).await
    }

    /// `POST .../dead-letters[/{id}]/redrive`: queues one or every dead-lettered
    /// invocation again.
    pub async fn redrive(&self, app: &str, function: &str, id: Option<&str>) -> Result<u64> {
        let url = match id {
            Some(id) => self.url(&[
                "apps",
                app,
                "functions",
                function,
                "dead-letters",
                id,
                "redrive",
            ])?,
            None => self.url(&[
                "apps",
                app,
                "functions",
                function,
                "dead-letters",
                "redrive",
            ])?,
        };
        Ok(self
            .json::<Redriven>(self.request(Method::POST, url))
            .await?
            .redriven)
    }
}
