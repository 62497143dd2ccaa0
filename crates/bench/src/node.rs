//! Node-level queries of a running `arcus serve` that the scenarios of issue 5 need: the
//! function's instances (`GET .../instances`, which `arcus-client` has no method for),
//! waiting for scale-to-zero, and the server's resident memory.

use crate::load;
use crate::servers::ArcusServer;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, StatusCode, header};
use std::time::Duration;
use tokio::time::Instant;

/// Time allowed for one API call of this module.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two polls of the instances endpoint.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How waiting for a function to have no instance ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reclaim {
    /// The instance list was empty after this long.
    Reclaimed(Duration),
    /// Still this many instances listed at the deadline.
    NotReclaimed(usize),
}

impl ArcusServer {
    /// The number of instances `GET /api/v1/apps/{app}/functions/{function}/instances`
    /// lists.
    ///
    /// The body is `{"items":[{"id":…,…},…]}` (`List<InstanceView>`); the instances are
    /// counted by their `"id":` keys rather than parsed, so the bench needs no JSON
    /// dependency (no other key of an `InstanceView` ends in `"id"`).
    pub async fn instance_count(&self, app: &str, function: &str) -> Result<usize> {
        let path = format!("/api/v1/apps/{app}/functions/{function}/instances");
        let (status, body) = self.admin_get(&path).await?;
        let text = String::from_utf8_lossy(&body);
        if status != StatusCode::OK || !text.trim_start().starts_with("{\"items\":[") {
            bail!("GET {path} answered {status} {text:?}");
        }
        Ok(text.matches("\"id\":").count())
    }

    /// Polls the function's instances until none is listed or `limit` has passed.
    pub async fn wait_reclaimed(
        &self,
        app: &str,
        function: &str,
        limit: Duration,
    ) -> Result<Reclaim> {
        let start = Instant::now();
        let max_polls = limit.as_millis() / POLL_INTERVAL.as_millis() + 1;
        let mut listed = 0;
        for _ in 0..max_polls {
            listed = self.instance_count(app, function).await?;
            if listed == 0 {
                return Ok(Reclaim::Reclaimed(start.elapsed()));
            }
            if start.elapsed() >= limit {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Ok(Reclaim::NotReclaimed(listed))
    }

    /// The server process's resident set (`VmRSS` of `/proc/<pid>/status`), KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.child.pid());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
    }

    /// `GET path` with the admin token, on a fresh loopback connection.
    async fn admin_get(&self, path: &str) -> Result<(StatusCode, Bytes)> {
        let mut sender = load::connect(self.addr).await?;
        let request = Request::get(path)
            .header(header::HOST, self.addr.to_string())
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Empty::<Bytes>::new())
            .context("cannot build the request")?;
        load::exchange(&mut sender, request, API_TIMEOUT)
            .await
            .with_context(|| format!("GET {path}"))
    }
}

/// The `VmRSS:  1234 kB` value of a `/proc/<pid>/status` text.
fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tarcus\nVmPeak:\t  9000 kB\nVmRSS:\t   51234 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(51_234));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }
}
