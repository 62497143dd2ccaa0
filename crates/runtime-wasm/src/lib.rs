//! The WebAssembly runtime of Arcus: compiles and caches `wasi:http/proxy` components,
//! and runs each request in a fresh instance from a pre-instantiated component, with a
//! memory limit, a wall-clock deadline, captured output and an egress policy.

mod artefact;
mod host;
mod invoke;
mod logs;

pub use host::EgressPolicy;
pub use invoke::{Completion, Invocation, InvokeSpec, OnDone, Outcome, ResponseBody};
pub use logs::{CapturedLine, LogSink};

use host::Host;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// Why code could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The bytes are not a valid `wasi:http/proxy` component (message for the user).
    #[error("{0}")]
    InvalidCode(String),
    /// Something failed on the host side.
    #[error("{0}")]
    Internal(String),
}

/// Tunables of the wasm runtime; defaults fit a small node.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Where precompiled artefacts are cached.
    pub cache_dir: PathBuf,
    /// Instances that may exist at once across all functions (pooling allocator slots).
    pub max_instances: u32,
    /// Largest linear memory any instance may grow to, in MiB.
    pub max_memory_mb: u32,
    /// Period of the epoch ticker that lets long computations yield.
    pub epoch_tick: Duration,
    /// Largest captured output per invocation, in bytes.
    pub max_log_bytes: usize,
    /// Bytes of each pooled linear memory kept resident between instances and reset in
    /// place (only the dirtied pages, where the kernel can say which); the rest is
    /// returned to the kernel.
    pub keep_resident_bytes: usize,
}

impl WasmConfig {
    /// Defaults with the given cache directory.
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            max_instances: 1000,
            max_memory_mb: arcus_core::limits::MAX_WASM_MEMORY_MB,
            epoch_tick: Duration::from_millis(10),
            max_log_bytes: arcus_core::limits::MAX_LOG_BYTES_PER_INVOCATION,
            keep_resident_bytes: 4 << 20,
        }
    }
}

/// A component ready to serve requests: compiled code plus resolved imports.
pub struct LoadedComponent {
    pub(crate) pre: ProxyPre<Host>,
    /// sha256 of the component's bytes.
    pub sha256: String,
}

/// How a component was obtained by [`WasmRuntime::load`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Deserialised from a cached artefact on disk.
    Artefact,
    /// Compiled from the component's bytes (and the artefact written).
    Compiled,
}

/// The wasmtime engine, linker and artefact cache shared by all functions of a node.
#[derive(Clone)]
pub struct WasmRuntime {
    engine: Engine,
    linker: Arc<Linker<Host>>,
    artefacts: Arc<artefact::ArtefactCache>,
    config: Arc<WasmConfig>,
    _ticker: Arc<EpochTicker>,
}

impl WasmRuntime {
    /// Builds the engine with the pooling allocator and starts the epoch ticker.
    pub fn new(config: WasmConfig) -> Result<Self, WasmError> {
        let mut pool = PoolingAllocationConfig::new();
        let instances = config.max_instances.max(1);
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .max_core_instances_per_component(64)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            .table_elements(64 * 1024)
            .max_memory_size(config.max_memory_mb as usize * 1024 * 1024)
            .linear_memory_keep_resident(config.keep_resident_bytes)
            .table_keep_resident(64 * 1024)
            // Reset only the pages a request dirtied (Linux ≥ 6.7), by copying them back
            // from the image, instead of `madvise` + page faults on the next request:
            // the `madvise` forces a TLB shoot-down on every core (ADR 0007).
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wt = Config::new();
        wt.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wt).map_err(|e| WasmError::Internal(format!("engine: {e:?}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .map_err(|e| WasmError::Internal(format!("linker: {e:?}")))?;
        let artefacts = artefact::ArtefactCache::new(&engine, config.cache_dir.clone())?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick);
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            artefacts: Arc::new(artefacts),
            config: Arc::new(config),
            _ticker: Arc::new(ticker),
        })
    }

    /// Validates `bytes` as a proxy component, compiles it and caches the artefact.
    /// Used at upload time, so a later load never compiles. Code whose artefact is
    /// already cached (the same bytes uploaded again) is not compiled again.
    pub async fn prepare(&self, sha256: &str, bytes: Vec<u8>) -> Result<(), WasmError> {
        artefact::check_component_header(&bytes)?;
        let this = self.clone();
        let sha = sha256.to_string();
        tokio::task::spawn_blocking(move || {
            if let Some(component) = this.artefacts.load(&this.engine, &sha) {
                return this.pre(&component, &sha).map(drop);
            }
            let component = this.compile(&bytes)?;
            this.pre(&component, &sha)?;
            this.artefacts.store(&sha, &component)
        })
        .await
        .map_err(|e| WasmError::Internal(format!("compile task: {e}")))?
    }

    /// Loads a component: from its artefact if cached, else compiles `bytes()`.
    pub async fn load<F, Fut>(
        &self,
        sha256: &str,
        bytes: F,
    ) -> Result<(Arc<LoadedComponent>, LoadSource), WasmError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, WasmError>>,
    {
        let this = self.clone();
        let sha = sha256.to_string();
        let cached = tokio::task::spawn_blocking(move || this.artefacts.load(&this.engine, &sha))
            .await
            .map_err(|e| WasmError::Internal(format!("load task: {e}")))?;
        let (component, source) = match cached {
            Some(c) => (c, LoadSource::Artefact),
            None => {
                let bytes = bytes().await?;
                let this = self.clone();
                let sha = sha256.to_string();
                let component = tokio::task::spawn_blocking(move || {
                    let c = this.compile(&bytes)?;
                    this.artefacts.store(&sha, &c)?;
                    Ok::<_, WasmError>(c)
                })
                .await
                .map_err(|e| WasmError::Internal(format!("compile task: {e}")))??;
                (component, LoadSource::Compiled)
            }
        };
        let pre = self.pre(&component, sha256)?;
        Ok((
            Arc::new(LoadedComponent {
                pre,
                sha256: sha256.to_string(),
            }),
            source,
        ))
    }

    fn compile(&self, bytes: &[u8]) -> Result<Component, WasmError> {
        tracing::info!(bytes = bytes.len(), "compiling component");
        Component::new(&self.engine, bytes)
            .map_err(|e| WasmError::InvalidCode(format!("not a valid WebAssembly component: {e}")))
    }

    fn pre(&self, component: &Component, sha: &str) -> Result<ProxyPre<Host>, WasmError> {
        let instance_pre = self.linker.instantiate_pre(component).map_err(|e| {
            WasmError::InvalidCode(format!(
                "component {sha:.12} imports something the wasi:http/proxy host does not provide: {e}"
            ))
        })?;
        ProxyPre::new(instance_pre).map_err(|e| {
            WasmError::InvalidCode(format!(
                "component does not export wasi:http/incoming-handler: {e}"
            ))
        })
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &WasmConfig {
        &self.config
    }
}

/// Background thread that advances the engine's epoch so guests yield periodically.
struct EpochTicker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("arcus-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start epoch ticker; timeouts of busy guests will be late: {e}");
        }
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_prepares_of_the_same_new_code_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let rt = WasmRuntime::new(WasmConfig {
            max_instances: 8,
            ..WasmConfig::new(dir.path().to_path_buf())
        })
        .unwrap();
        let hello = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/out/hello.wasm"
        );
        let bytes = std::fs::read(hello).expect("run tests/fixtures/build.sh first");
        let sha = "a".repeat(64);
        let uploads = (0..4).map(|_| rt.prepare(&sha, bytes.clone()));
        for result in futures::future::join_all(uploads).await {
            result.unwrap();
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
