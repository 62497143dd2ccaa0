//! The load generator: N keep-alive HTTP/1.1 connections (hyper client connections), each
//! sending `GET` requests back-to-back, with a warm-up and a measured window.
//!
//! Only requests that start after the warm-up and complete before the end of the window
//! are counted; their latencies are kept in a plain `Vec` and sorted once at the end.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};

/// Upper bound on requests per connection per scenario, so every loop is bounded in count
/// as well as in time (about 100× what one connection manages here in 5 s).
const MAX_REQUESTS_PER_CONNECTION: u64 = 50_000_000;
/// Upper bound on reconnects per connection per scenario after transport errors.
const MAX_RECONNECTS: u32 = 100;
/// Time allowed for one connect or one request before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What to load: a loopback address and a path; `Host` is the address.
#[derive(Debug, Clone)]
pub struct Target {
    /// Server address (loopback only).
    pub addr: SocketAddr,
    /// Request path, e.g. `/fn/bench/hello/`.
    pub path: String,
    /// The exact body every answer must have.
    pub expected_body: Bytes,
}

impl Target {
    /// A target on `addr` answering `path` with `expected_body`.
    pub fn new(addr: SocketAddr, path: &str, expected_body: &'static [u8]) -> Result<Self> {
        if !addr.ip().is_loopback() {
            bail!("refusing to load {addr}: only loopback addresses may be targeted");
        }
        Ok(Self {
            addr,
            path: path.to_string(),
            expected_body: Bytes::from_static(expected_body),
        })
    }

    fn request(&self) -> Result<Request<Empty<Bytes>>> {
        Request::get(self.path.as_str())
            .header(header::HOST, self.addr.to_string())
            .body(Empty::new())
            .context("cannot build the request")
    }
}

/// How hard and how long to load a target.
#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// Results of one scenario.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Successful requests completed inside the measured window.
    pub requests: u64,
    /// Failed requests (transport error, timeout, wrong status or body), warm-up included.
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Length of the measured window.
    pub window: Duration,
    /// Latencies of the counted requests in nanoseconds, sorted ascending.
    latencies_ns: Vec<u64>,
}

impl Stats {
    /// Stats of `latencies_ns` (any order) measured over `window`, with `errors` failures.
    pub fn from_latencies(
        mut latencies_ns: Vec<u64>,
        errors: u64,
        first_error: Option<String>,
        window: Duration,
    ) -> Self {
        latencies_ns.sort_unstable();
        Self {
            requests: latencies_ns.len() as u64,
            errors,
            first_error,
            window,
            latencies_ns,
        }
    }

    /// Requests per second over the measured window.
    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`-quantile latency (`p` in 0..=1, nearest rank) in microseconds, if any
    /// request was counted.
    pub fn percentile_us(&self, p: f64) -> Option<f64> {
        let n = self.latencies_ns.len();
        if n == 0 {
            return None;
        }
        let rank = (p.clamp(0.0, 1.0) * n as f64).ceil() as usize;
        let index = rank.saturating_sub(1).min(n - 1);
        self.latencies_ns.get(index).map(|ns| *ns as f64 / 1_000.0)
    }
}

/// What one connection task brings back.
#[derive(Debug, Default)]
struct ConnectionResult {
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl ConnectionResult {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

/// Opens one keep-alive HTTP/1.1 connection (`TCP_NODELAY` set) and spawns its driver;
/// `B` is the request body type (`Empty` for `GET`s, `Full` for JSON posts).
pub async fn connect<B>(addr: SocketAddr) -> Result<SendRequest<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = timeout(REQUEST_TIMEOUT, TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr} timed out"))?
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake failed")?;
    // The driver ends when the sender is dropped or the server closes the connection.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request on `sender` and reads the whole answer, within [`REQUEST_TIMEOUT`].
pub async fn send(
    sender: &mut SendRequest<Empty<Bytes>>,
    target: &Target,
) -> Result<(StatusCode, Bytes)> {
    send_within(sender, target, REQUEST_TIMEOUT).await
}

/// Like [`send`] with the time limit `limit` (e.g. for requests that may queue).
pub async fn send_within(
    sender: &mut SendRequest<Empty<Bytes>>,
    target: &Target,
    limit: Duration,
) -> Result<(StatusCode, Bytes)> {
    exchange(sender, target.request()?, limit).await
}

/// Sends `request` on `sender` and reads the whole answer, within `limit`.
pub async fn exchange<B>(
    sender: &mut SendRequest<B>,
    request: hyper::Request<B>,
    limit: Duration,
) -> Result<(StatusCode, Bytes)>
where
    B: hyper::body::Body + 'static,
{
    let exchange = async {
        sender.ready().await.context("connection closed")?;
        let response = sender
            .send_request(request)
            .await
            .context("request failed")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("cannot read the body")?
            .to_bytes();
        anyhow::Ok((status, body))
    };
    timeout(limit, exchange)
        .await
        .context("request timed out")?
}

/// Sends one request on a fresh connection; for readiness checks and body verification.
pub async fn get_once(target: &Target) -> Result<(StatusCode, Bytes)> {
    let mut sender = connect(target.addr).await?;
    send(&mut sender, target).await
}

/// Checks that `target` answers 200 with exactly the expected body.
pub async fn verify(name: &str, target: &Target) -> Result<()> {
    let (status, body) = get_once(target)
        .await
        .with_context(|| format!("{name}: no answer from {}", target.addr))?;
    if status != StatusCode::OK || body != target.expected_body {
        bail!(
            "{name}: GET {} answered {status} {:?}; expected 200 {:?}",
            target.path,
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&target.expected_body)
        );
    }
    Ok(())
}

/// Runs one scenario: connects `config.connections` connections, loads them through the
/// warm-up and the measured window, and merges what they recorded.
pub async fn run(target: &Target, config: LoadConfig) -> Result<Stats> {
    let mut senders = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        senders.push(connect(target.addr).await?);
    }
    let warm_end = Instant::now() + config.warmup;
    let end = warm_end + config.duration;
    let mut tasks = JoinSet::new();
    for sender in senders {
        let target = target.clone();
        tasks.spawn(connection_loop(sender, target, warm_end, end));
    }
    let mut stats = Stats {
        requests: 0,
        errors: 0,
        first_error: None,
        window: config.duration,
        latencies_ns: Vec::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        let result = joined.context("a load connection task failed")?;
        stats.errors += result.errors;
        if stats.first_error.is_none() {
            stats.first_error = result.first_error;
        }
        stats.latencies_ns.extend(result.latencies_ns);
    }
    stats.latencies_ns.sort_unstable();
    stats.requests = stats.latencies_ns.len() as u64;
    Ok(stats)
}

/// One connection: requests back-to-back until `end` (or the request cap), reconnecting
/// after transport errors (at most [`MAX_RECONNECTS`] times).
async fn connection_loop(
    sender: SendRequest<Empty<Bytes>>,
    target: Target,
    warm_end: Instant,
    end: Instant,
) -> ConnectionResult {
    let mut result = ConnectionResult::default();
    let mut sender = Some(sender);
    let mut reconnects = 0;
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        if Instant::now() >= end {
            break;
        }
        if sender.is_none() {
            if reconnects >= MAX_RECONNECTS {
                result.error(format!("gave up after {MAX_RECONNECTS} reconnects"));
                break;
            }
            reconnects += 1;
            match connect(target.addr).await {
                Ok(conn) => sender = Some(conn),
                Err(e) => {
                    result.error(format!("{e:#}"));
                    continue;
                }
            }
        }
        let Some(conn) = sender.as_mut() else {
            continue;
        };
        let start = Instant::now();
        let outcome = send(conn, &target).await;
        let done = Instant::now();
        match outcome {
            Ok((StatusCode::OK, body)) if body == target.expected_body => {
                if start >= warm_end && done <= end {
                    let ns =
                        u64::try_from(done.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
                    result.latencies_ns.push(ns);
                }
            }
            Ok((status, body)) => {
                result.error(format!(
                    "answered {status} {:?}",
                    String::from_utf8_lossy(&body)
                ));
            }
            Err(e) => {
                result.error(format!("{e:#}"));
                sender = None;
            }
        }
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stats(latencies_ns: Vec<u64>) -> Stats {
        Stats {
            requests: latencies_ns.len() as u64,
            errors: 0,
            first_error: None,
            window: Duration::from_secs(2),
            latencies_ns,
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let s = stats((1..=100).map(|us| us * 1_000).collect());
        assert_eq!(s.percentile_us(0.5), Some(50.0));
        assert_eq!(s.percentile_us(0.99), Some(99.0));
        assert_eq!(s.percentile_us(1.0), Some(100.0));
        assert_eq!(s.percentile_us(0.0), Some(1.0));
        assert_eq!(s.requests_per_sec(), 50.0);
    }

    #[test]
    fn empty_stats_have_no_percentiles() {
        assert_eq!(stats(Vec::new()).percentile_us(0.5), None);
    }

    #[test]
    fn only_loopback_targets() {
        let addr: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert!(Target::new(addr, "/", b"x").is_err());
    }
}
