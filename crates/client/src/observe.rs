//! Invocation records with filters and pages, stats and usage.

use crate::{Client, Result};
use arcus_core::record::InvocationRecord;
use arcus_core::stats::{Page, StatsView, UsageView};
use reqwest::Method;

/// Filters of [`Client::query_invocations`]; every field is optional (`None` fields
/// are left out of the query string).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InvocationFilter {
    /// Only this function.
    pub function: Option<String>,
    /// Only this version.
    pub version: Option<u32>,
    /// `succeeded`, `failed` or `timed_out`.
    pub status: Option<String>,
    /// Trigger kind (`http`, `api`, `async`, `cron`, …).
    pub trigger: Option<String>,
    /// Only cold or only warm invocations.
    pub cold_start: Option<bool>,
    /// Only invocations that failed with this code.
    pub error_code: Option<String>,
    /// Started at or after (RFC 3339).
    pub since: Option<String>,
    /// Started before (RFC 3339).
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1–1000).
    pub limit: Option<u32>,
}

impl Client {
    /// `GET /metrics`: the node's metrics in the Prometheus text format (admin token).
    pub async fn metrics_text(&self) -> Result<String> {
        let url = reqwest::Url::parse(&format!("{}/metrics", self.server)).map_err(|e| {
            crate::ClientError::InvalidUrl {
                url: self.server.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(self
            .send(self.request(Method::GET, url))
            .await?
            .text()
            .await?)
    }

    /// `GET /apps/{app}/invocations`: one page of an app's records, newest first.
    pub async fn query_invocations(
        &self,
        app: &str,
        filter: &InvocationFilter,
    ) -> Result<Page<InvocationRecord>> {
        let url = self.url(&["apps", app, "invocations"])?;
        self.json(self.request(Method::GET, url).query(filter))
            .await
    }

    /// `GET /apps/{app}[/functions/{fn}]/stats?window=`: stats from rollups.
    pub async fn stats(
        &self,
        app: &str,
        function: Option<&str>,
        window: &str,
    ) -> Result<StatsView> {
        let url = match function {
            Some(f) => self.url(&["apps", app, "functions", f, "stats"])?,
            None => self.url(&["apps", app, "stats"])?,
        };
        self.json(self.request(Method::GET, url).query(&[("window", window)]))
            .await
    }

    /// `GET /apps/{app}/usage[?from=&to=]`: metered use per function and hour.
    pub async fn usage(
        &self,
        app: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<UsageView> {
        let url = self.url(&["apps", app, "usage"])?;
        let mut req = self.request(Method::GET, url);
        for (k, v) in [("from", from), ("to", to)] {
            if let Some(v) = v {
                req = req.query(&[(k, v)]);
            }
        }
        self.json(req).await
    }
}
