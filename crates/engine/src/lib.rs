//! The engine of an Arcus node: the registry of functions (validated control-plane
//! operations over the `Store`), the dispatcher that resolves a qualifier to a version and
//! runs it in a runtime, the cache of loaded components, and the background writer of
//! invocation records and logs.

mod access;
mod access_keys;
mod activator;
pub mod apigw;
pub mod autoscale;
mod cache;
mod control;
mod dispatch;
mod egress;
mod events;
mod gauges;
mod lifecycle;
mod logs;
pub mod metrics;
pub mod observe;
mod process;
mod ratelimit;
mod recorder;
mod secrets;
pub mod trace;

pub use dispatch::{BodyError, FnBody, Input, Invoked, Target, event_request, read_response};
pub use events::{Publisher, destination_record};
pub use logs::LogFollower;
pub use process::{REGION, function_arn};
pub use ratelimit::RateRefusal;
pub use recorder::Recorder;
pub use secrets::SecretKey;

use arcus_core::store::{BlobStore, Store};
use arcus_runtime_process::ProcessRuntime;
use arcus_runtime_wasm::WasmRuntime;
use std::net::SocketAddr;
use std::sync::Arc;

/// Default [`EngineConfig::wasm_memory_budget_mb`]: 16 GiB.
pub const DEFAULT_WASM_MEMORY_BUDGET_MB: u32 = 16 * 1024;

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How many loaded components are kept in memory (least recently used go first).
    pub max_loaded_components: usize,
    /// Addresses of the node (and its services) that functions may never reach.
    pub protected_addrs: Vec<SocketAddr>,
    /// MiB the node's running wasm instances may hold at once (each counts its
    /// function's `memory_mb`); past it requests queue, then get 503 `no_capacity`.
    pub wasm_memory_budget_mb: u32,
    /// The autoscaler's stable window (its panic window is a tenth of it).
    pub autoscale_window: std::time::Duration,
    /// This node's identity as an owner of async event leases; stable across restarts
    /// so a restarted node resumes its own leases at once.
    pub node_id: String,
    /// Where the invocations' spans are exported (default: nowhere).
    pub spans: trace::Spans,
    /// Whether invocation records and log lines are written (default true; off, they
    /// are dropped when the invocation ends).
    pub records: bool,
    /// Time between two retention passes (default 5 min).
    pub retention_interval: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_loaded_components: 256,
            protected_addrs: Vec::new(),
            wasm_memory_budget_mb: DEFAULT_WASM_MEMORY_BUDGET_MB,
            autoscale_window: autoscale::STABLE_WINDOW,
            node_id: uuid::Uuid::new_v4().to_string(),
            spans: trace::Spans::default(),
            records: true,
            retention_interval: logs::RETENTION_INTERVAL,
        }
    }
}

/// A handle to the node's engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    wasm: WasmRuntime,
    process: Option<ProcessRuntime>,
    activator: activator::Activator,
    routes: cache::RouteCache,
    components: cache::ComponentCache,
    recorder: Recorder,
    protected: Arc<Vec<SocketAddr>>,
    queue: events::Queue,
    spans: trace::Spans,
    secrets: secrets::Secrets,
    rates: ratelimit::RateLimits,
}

impl Engine {
    /// Builds an engine and starts its record writer. Without a process runtime
    /// (sandbox unavailable on this host), python3/node/custom functions answer 503.
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        wasm: WasmRuntime,
        process: Option<ProcessRuntime>,
        config: EngineConfig,
    ) -> Self {
        let recorder = Recorder::start(store.clone(), config.records);
        let store_for_queue = store.clone();
        let inner = Arc::new(Inner {
            store,
            blobs,
            wasm,
            process,
            activator: activator::Activator::new(config.wasm_memory_budget_mb),
            routes: cache::RouteCache::default(),
            components: cache::ComponentCache::new(config.max_loaded_components),
            recorder,
            protected: Arc::new(config.protected_addrs),
            queue: events::Queue::new(store_for_queue, config.node_id),
            spans: config.spans,
            secrets: secrets::Secrets::default(),
            rates: ratelimit::RateLimits::default(),
        });
        lifecycle::start(&inner, config.autoscale_window);
        events::start(&inner);
        logs::start_retention(&inner, config.retention_interval);
        Self { inner }
    }

    /// The metadata store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Where the node's spans go (the gateway adds its own).
    pub fn spans(&self) -> &trace::Spans {
        &self.inner.spans
    }

    /// Writes out pending records and logs; call before exiting.
    pub async fn flush(&self) {
        self.inner.recorder.flush().await;
    }

    /// Stops every process instance (node shutdown).
    pub async fn stop_instances(&self) {
        if let Some(p) = &self.inner.process {
            p.shutdown().await;
        }
    }
}
