//! Per-request store data: WASI and wasi:http contexts, resource limits, egress policy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

/// Who a function may call over outgoing HTTP.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// Entries `host`, `host:port` or `*.domain[:port]`; empty means no egress.
    pub allowed_hosts: Arc<Vec<String>>,
    /// Addresses of the node itself (and its store/brokers) that are never reachable.
    pub protected: Arc<Vec<SocketAddr>>,
}

impl EgressPolicy {
    /// Whether `host` (no brackets for IPv6) and `port` match an allowed entry.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.allowed_hosts.iter().any(|entry| {
            let entry = entry.to_ascii_lowercase();
            let (pattern, want_port) = split_host_port(&entry);
            if want_port.is_some_and(|p| p != port) {
                return false;
            }
            match pattern.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => pattern == host,
            }
        })
    }

    /// Whether a resolved address is one of the node's own protected endpoints.
    pub fn is_protected(&self, addr: SocketAddr) -> bool {
        self.protected.iter().any(|p| {
            p.port() == addr.port()
                && (p.ip() == addr.ip()
                    || (p.ip().is_unspecified() || p.ip().is_loopback()) && is_local(addr.ip()))
        })
    }
}

fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            return (h, p.parse().ok());
        }
        return (rest.trim_end_matches(']'), None);
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (entry, None),
    }
}

/// The data of one request's `Store`.
pub struct Host {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: EgressHooks,
    pub(crate) limits: Limits,
}

/// The store's limits, counting the linear memory its instances were given (their
/// memories only grow: the total is the peak, `Max Memory Used` of the `REPORT` line).
pub(crate) struct Limits {
    inner: StoreLimits,
    grown: usize,
}

impl Limits {
    /// Bytes of linear memory allocated to the store's instances so far.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.grown
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.grown = self.grown.saturating_add(desired.saturating_sub(current));
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl Host {
    pub(crate) fn new(wasi: WasiCtx, egress: EgressPolicy, memory_bytes: usize) -> Self {
        Self {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks: EgressHooks { policy: egress },
            limits: Limits {
                inner: StoreLimitsBuilder::new()
                    .memory_size(memory_bytes)
                    .trap_on_grow_failure(false)
                    .build(),
                grown: 0,
            },
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// wasi:http hooks that refuse requests outside the function's egress policy.
pub(crate) struct EgressHooks {
    policy: EgressPolicy,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _io: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        let policy = self.policy.clone();
        Box::new(async move {
            let uri = request.uri();
            let host = uri.host().unwrap_or_default().to_string();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            if !policy.allows(&host, port) {
                tracing::debug!(%host, port, "outgoing request refused: host not allowed");
                return Err(HttpError::HttpRequestDenied);
            }
            let addrs = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| HttpError::DestinationNotFound)?;
            if addrs.into_iter().any(|a| policy.is_protected(a)) {
                tracing::debug!(%host, port, "outgoing request refused: node address");
                return Err(HttpError::DestinationIpProhibited);
            }
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            use http_body_util::BodyExt;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], protected: &[&str]) -> EgressPolicy {
        EgressPolicy {
            allowed_hosts: Arc::new(hosts.iter().map(|s| s.to_string()).collect()),
            protected: Arc::new(protected.iter().map(|s| s.parse().unwrap()).collect()),
        }
    }

    #[test]
    fn allow_list_matching() {
        let p = policy(
            &[
                "api.example.com",
                "127.0.0.1:9000",
                "*.svc.local",
                "[::1]:81",
            ],
            &[],
        );
        assert!(p.allows("api.example.com", 443));
        assert!(p.allows("API.example.com", 80));
        assert!(p.allows("127.0.0.1", 9000));
        assert!(!p.allows("127.0.0.1", 9001));
        assert!(p.allows("a.svc.local", 80));
        assert!(!p.allows("svc.local", 80));
        assert!(p.allows("[::1]", 81));
        assert!(!p.allows("example.com", 443));
        assert!(!policy(&[], &[]).allows("anything", 80));
    }

    #[test]
    fn node_addresses_are_protected() {
        let p = policy(&[], &["127.0.0.1:8080", "0.0.0.0:9090"]);
        assert!(p.is_protected("127.0.0.1:8080".parse().unwrap()));
        assert!(p.is_protected("127.0.0.2:8080".parse().unwrap()));
        assert!(p.is_protected("127.0.0.1:9090".parse().unwrap()));
        assert!(!p.is_protected("127.0.0.1:8081".parse().unwrap()));
        assert!(!p.is_protected("10.1.2.3:8081".parse().unwrap()));
    }
}
