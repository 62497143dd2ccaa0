//! The audit log: one page of control-plane changes, newest first.

use crate::{Client, Result};
use arcus_core::audit::AuditEntry;
use arcus_core::stats::Page;
use reqwest::Method;

/// Filters of [`Client::audit`]; `None` fields are left out of the query string.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditFilter {
    /// Only entries about this app (required unless the token is admin).
    pub app: Option<String>,
    /// At or after (RFC 3339).
    pub since: Option<String>,
    /// Before (RFC 3339).
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1–1000).
    pub limit: Option<u32>,
}

impl Client {
    /// `GET /audit`: one page of audit entries, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Page<AuditEntry>> {
        let url = self.url(&["audit"])?;
        self.json(self.request(Method::GET, url).query(filter))
            .await
    }
}
