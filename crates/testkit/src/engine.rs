//! In-process engine on a temporary data dir: the real SQLite store, the real local blob
//! store and the real wasm runtime, laid out as `arcus serve` lays out its data dir.

use arcus_engine::{Engine, EngineConfig};
use arcus_runtime_process::{ProcessConfig, ProcessRuntime};
use arcus_runtime_wasm::{WasmConfig, WasmRuntime};
use arcus_store::{LocalBlobStore, SqliteStore};
use std::path::Path;
use std::sync::Arc;
use tempfile::TempDir;

/// Pooling-allocator slots of a test engine: small, so many engines fit in one process.
pub const TEST_MAX_INSTANCES: u32 = 64;

/// Builds an engine on a fresh temporary directory: `SqliteStore` at `dir/arcus.db`,
/// `LocalBlobStore` at `dir/blobs`, `WasmRuntime` caching artefacts in `dir/artefacts`
/// with [`TEST_MAX_INSTANCES`] instance slots. Must run inside a tokio runtime (the engine
/// starts its record writer task). Panics on any set-up failure.
///
/// The directory is deleted when the returned `TempDir` is dropped, so keep it alive as
/// long as the engine is used.
pub async fn engine() -> (Engine, TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("arcus-test-")
        .tempdir()
        .expect("create temp dir");
    let engine = engine_in(dir.path()).await;
    (engine, dir)
}

/// Builds an engine on an existing data directory (e.g. to reopen one after a restart).
/// Panics on any set-up failure.
pub async fn engine_in(root: &Path) -> Engine {
    engine_with(root, EngineConfig::default()).await
}

/// Builds an engine with `config` on an existing data directory, as [`engine_in`].
pub async fn engine_with(root: &Path, config: EngineConfig) -> Engine {
    let store = SqliteStore::open(&root.join("arcus.db"))
        .await
        .expect("open sqlite store");
    let blobs = LocalBlobStore::new(root.join("blobs"));
    let wasm = WasmRuntime::new(WasmConfig {
        max_instances: TEST_MAX_INSTANCES,
        ..WasmConfig::new(root.join("artefacts"))
    })
    .expect("build wasm runtime");
    let process = ProcessRuntime::new(process_config(root))
        .map_err(|e| eprintln!("testkit: process runtimes unavailable: {e}"))
        .ok();
    Engine::new(Arc::new(store), Arc::new(blobs), wasm, process, config)
}

/// The process-runtime settings of a test node under `root`: the machine's Debian
/// interpreters, bubblewrap, the `nobody` user, small limits.
pub fn process_config(root: &Path) -> ProcessConfig {
    ProcessConfig {
        work_dir: root.join("process"),
        python3: "/usr/bin/python3".into(),
        node: "/usr/bin/node".into(),
        bwrap: "/usr/bin/bwrap".into(),
        slirp4netns: "/usr/bin/slirp4netns".into(),
        sandbox_uid: 65534,
        sandbox_gid: 65534,
        tmp_size_mb: 64,
        pids_max: 128,
        max_instances: 16,
        memory_budget_mb: 16 * 1024,
        idle_timeout: std::time::Duration::from_secs(60),
        spares: 1,
    }
}
