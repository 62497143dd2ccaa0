//! `arcus serve`: wires store, runtime, engine and gateway into a running node and stops
//! it gracefully on SIGTERM/SIGINT.

use crate::config::{Config, Overrides};
use anyhow::{Context, Result};
use arcus_engine::{Engine, EngineConfig};
use arcus_gateway::{AppState, Auth};
use arcus_runtime_process::ProcessRuntime;
use arcus_runtime_wasm::{WasmConfig, WasmRuntime};
use arcus_store::{LocalBlobStore, SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Flags of `arcus serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, env = "ARCUS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ARCUS_LISTEN")]
    listen: Option<String>,
    /// Data directory [default: ./arcus-data].
    #[arg(long, env = "ARCUS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// OTLP/HTTP collector to export spans to (`http://host:4318`) [default: none].
    #[arg(long, env = "ARCUS_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// Runs the node until SIGTERM/SIGINT.
pub async fn run(args: ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARCUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: piped or redirected logs (files, journald, tests) get
    // plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
    let config = Config::load(Overrides {
        config_file: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
        admin_token: std::env::var("ARCUS_ADMIN_TOKEN").ok(),
        otlp_endpoint: args.otlp_endpoint,
        secret_key: std::env::var("ARCUS_SECRET_KEY").ok(),
        tls_cert: std::env::var_os("ARCUS_TLS_CERT").map(PathBuf::from),
        tls_key: std::env::var_os("ARCUS_TLS_KEY").map(PathBuf::from),
    })?;
    let (spans, exporter) = crate::otlp::start(&config.tracing)?;
    let data = &config.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data dir {}", data.display()))?;
    let store = Arc::new(
        SqliteStore::open(&data.join("arcus.db"))
            .await
            .context("cannot open the store")?,
    );
    let blobs = Arc::new(LocalBlobStore::new(data.join("blobs")));
    let auth = admin_auth(&*store, &config, data).await?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut wasm_config = WasmConfig::new(data.join("artefacts"));
    wasm_config.max_instances = config.wasm_max_instances;
    let wasm = WasmRuntime::new(wasm_config)?;
    let process = process_runtime(&config);
    let engine = Engine::new(
        store,
        blobs,
        wasm,
        process,
        EngineConfig {
            max_loaded_components: config.max_loaded_components,
            protected_addrs: vec![addr],
            wasm_memory_budget_mb: config.wasm_memory_budget_mb,
            autoscale_window: config.autoscale_window,
            node_id: node_id(data)?,
            spans,
            records: config.records,
            retention_interval: config.retention_interval,
        },
    );
    engine.set_publisher(Arc::new(arcus_triggers::Publishers::new()));
    let secret_key = match &config.secret_key {
        Some(key) => key.clone(),
        None => crate::netsec::secret_key_file(data)?,
    };
    engine.set_secret_keys(&secret_key, &config.previous_secret_keys);
    for (what, resealed) in [
        ("secret(s)", engine.reseal_secrets().await),
        ("access key(s)", engine.reseal_access_keys().await),
    ] {
        match resealed {
            Ok(0) => {}
            Ok(n) => tracing::info!("re-sealed {n} {what} with the current secret key"),
            Err(e) => tracing::warn!("cannot re-seal {what}: {}", e.message),
        }
    }
    let triggers = arcus_triggers::Manager::new(engine.store().clone(), Arc::new(engine.clone()));
    triggers.start();
    let app = arcus_gateway::router(AppState {
        engine: engine.clone(),
        auth,
        triggers: triggers.clone(),
        metrics: config.metrics.then(install_metrics).transpose()?,
    });
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!("arcus listening on {scheme}://{addr}");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (tls, limits) = (config.tls.clone(), config.server);
    let server = tokio::spawn(async move {
        arcus_gateway::server::serve(listener, app, tls, limits, async move {
            let _ = stop_rx.await;
        })
        .await;
    });
    shutdown_signal().await;
    eprintln!(
        "arcus: shutting down; waiting up to {:?} for in-flight requests",
        config.shutdown_grace
    );
    let _ = stop_tx.send(());
    match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(joined) => joined.context("server failed")?,
        Err(_) => eprintln!("arcus: grace period over; closing remaining connections"),
    }
    triggers.shutdown().await;
    engine.stop_instances().await;
    engine.flush().await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    eprintln!("arcus: stopped");
    Ok(())
}

/// The process runtimes, or `None` (with the reason logged) when this host cannot
/// sandbox processes; wasm functions work either way.
fn process_runtime(config: &Config) -> Option<ProcessRuntime> {
    let built = ProcessRuntime::new(config.process.clone());
    match built {
        Ok(rt) => {
            tracing::info!(cgroup = ?rt.support().cgroup, "process runtimes ready");
            Some(rt)
        }
        Err(e) => {
            tracing::warn!("process runtimes (python3, node, custom) are disabled: {e}");
            None
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Resolves the admin token: `ARCUS_ADMIN_TOKEN` if set; else the stored hash; else a new
/// token, printed once, stored hashed, and written to `<data-dir>/admin-token` (0600).
async fn admin_auth(
    store: &dyn arcus_core::store::Store,
    config: &Config,
    data: &Path,
) -> Result<Auth> {
    let hash = match &config.admin_token {
        Some(token) => Auth::hash(token),
        None => match store.get_setting(ADMIN_TOKEN_SETTING).await? {
            Some(hash) => hash,
            None => {
                let token = hex::encode(rand::random::<[u8; 32]>());
                let hash = Auth::hash(&token);
                write_private_file(&data.join("admin-token"), &token)?;
                store.put_setting(ADMIN_TOKEN_SETTING, &hash).await?;
                eprintln!(
                    "arcus: generated admin token (shown once; also in {}/admin-token):\n{token}",
                    data.display()
                );
                hash
            }
        },
    };
    Auth::from_hash_hex(&hash).context("stored admin token hash is corrupt")
}

/// Installs the process-wide Prometheus recorder the engine's metrics go to.
fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle> {
    // Seconds; from sub-millisecond wasm calls to the 900 s timeout.
    const BUCKETS: [f64; 14] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 900.0,
    ];
    let mut builder = metrics_exporter_prometheus::PrometheusBuilder::new();
    for name in arcus_engine::metrics::DURATION_HISTOGRAMS {
        builder = builder
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(name.to_string()),
                &BUCKETS,
            )
            .context("bad histogram buckets")?;
    }
    builder
        .install_recorder()
        .context("cannot install the metrics recorder")
        .inspect(|handle| {
            // Drains recorded histogram samples into their buckets even when nobody
            // scrapes, so they never pile up in memory.
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
        })
}

/// This node's lasting identity (`<data-dir>/node-id`, created once): the owner name of
/// its async event leases, so after a restart it resumes them at once.
fn node_id(data: &Path) -> Result<String> {
    let path = data.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, &id)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(id)
        }
    }
}

/// Writes a file only its owner may read (mode 0600): tokens and keys.
pub(crate) fn write_private_file(path: &Path, token: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(token.as_bytes())?;
    Ok(())
}
