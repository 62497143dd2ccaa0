//! The node's typed configuration: defaults, then a TOML file, then `ARCUS_*` environment
//! variables, then flags. Validated at start-up; unknown keys and bad values are errors
//! that name the key.

use anyhow::{Context, Result, bail};
use arcus_runtime_process::ProcessConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The settings a TOML config file may contain (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Directory of the database, code blobs and compiled artefacts.
    pub data_dir: Option<PathBuf>,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_s: Option<u64>,
    /// Wasm runtime settings.
    #[serde(default)]
    pub wasm: WasmFileConfig,
    /// Process runtime settings (python3, node, custom).
    #[serde(default)]
    pub process: ProcessFileConfig,
    /// Autoscaler settings.
    #[serde(default)]
    pub autoscale: AutoscaleFileConfig,
    /// Trace export settings.
    #[serde(default)]
    pub tracing: crate::otlp::TracingFileConfig,
    /// Listener limits.
    #[serde(default)]
    pub server: crate::netsec::ServerFileConfig,
    /// HTTPS certificate and key.
    #[serde(default)]
    pub tls: crate::netsec::TlsFileConfig,
    /// Secret sealing key.
    #[serde(default)]
    pub secrets: crate::netsec::SecretsFileConfig,
    /// Invocation records, logs and metrics.
    #[serde(default)]
    pub observability: ObservabilityFileConfig,
}

/// `[observability]` section: both on by default; off is for measuring their cost or
/// for nodes whose owners want no records at all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityFileConfig {
    /// Write invocation records and log lines (and so stats, usage and `arcus logs`).
    pub records: Option<bool>,
    /// Keep Prometheus metrics and serve `/metrics`.
    pub metrics: Option<bool>,
}

/// `[autoscale]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleFileConfig {
    /// Seconds of in-flight load the autoscaler averages over; default 60 (the panic
    /// window is a tenth of it).
    pub stable_window_s: Option<u64>,
}

/// `[process]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessFileConfig {
    /// The python3 interpreter (a real binary, not a shim); default `/usr/bin/python3`.
    pub python3: Option<PathBuf>,
    /// The node binary; default `/usr/bin/node`.
    pub node: Option<PathBuf>,
    /// bubblewrap; default `/usr/bin/bwrap`.
    pub bwrap: Option<PathBuf>,
    /// slirp4netns (outbound network); default `/usr/bin/slirp4netns`.
    pub slirp4netns: Option<PathBuf>,
    /// Host uid the sandboxed processes run as; default 65534.
    pub sandbox_uid: Option<u32>,
    /// Host gid the sandboxed processes run as; default 65534.
    pub sandbox_gid: Option<u32>,
    /// Size of each instance's /tmp in MiB; default 512.
    pub tmp_size_mb: Option<u32>,
    /// Processes/threads per instance; default 256.
    pub pids_max: Option<u32>,
    /// Live process instances per node; default 64.
    pub max_instances: Option<usize>,
    /// MiB the live process instances of the node may hold together; default 16384.
    pub memory_budget_mb: Option<u32>,
    /// Seconds an idle instance is kept; default 300.
    pub idle_timeout_s: Option<u64>,
}

/// `[wasm]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmFileConfig {
    /// Wasm instances that may run at once on this node.
    pub max_instances: Option<u32>,
    /// Loaded components kept in memory.
    pub max_loaded_components: Option<usize>,
    /// MiB the running wasm instances may hold at once (each counts its `memory_mb`).
    pub memory_budget_mb: Option<u32>,
}

/// Validated configuration of `arcus serve`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Data directory (default `./arcus-data`).
    pub data_dir: PathBuf,
    /// Admin token from `ARCUS_ADMIN_TOKEN`, if set.
    pub admin_token: Option<String>,
    /// Grace period for in-flight requests at shutdown (default 30 s).
    pub shutdown_grace: Duration,
    /// Concurrent wasm instances (default 1000).
    pub wasm_max_instances: u32,
    /// Loaded components kept in memory (default 256).
    pub max_loaded_components: usize,
    /// MiB running wasm instances may hold at once (default 16384).
    pub wasm_memory_budget_mb: u32,
    /// The autoscaler's stable window (default 60 s).
    pub autoscale_window: Duration,
    /// Process runtime settings.
    pub process: ProcessConfig,
    /// Trace export settings.
    pub tracing: crate::otlp::TracingConfig,
    /// Listener limits.
    pub server: arcus_gateway::server::ServerLimits,
    /// TLS server config (`None`: plain HTTP).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The configured secret key (`None`: the data dir's key file is used).
    pub secret_key: Option<arcus_engine::SecretKey>,
    /// Keys secrets may still be sealed with (re-sealed at start-up).
    pub previous_secret_keys: Vec<arcus_engine::SecretKey>,
    /// Invocation records and logs are written (default true).
    pub records: bool,
    /// Metrics are kept and `/metrics` served (default true).
    pub metrics: bool,
}

/// Validates `[process]` into the runtime's config, its work dir under `data_dir`.
fn process_config(f: ProcessFileConfig, data_dir: &std::path::Path) -> Result<ProcessConfig> {
    let sandbox_uid = f.sandbox_uid.unwrap_or(65534);
    let sandbox_gid = f.sandbox_gid.unwrap_or(65534);
    if sandbox_uid == 0 || sandbox_gid == 0 {
        bail!(
            "invalid `process.sandbox_uid`/`process.sandbox_gid`: functions never run as root (0)"
        );
    }
    let tmp_size_mb = f.tmp_size_mb.unwrap_or(512);
    if !(1..=10_240).contains(&tmp_size_mb) {
        bail!("invalid `process.tmp_size_mb`: {tmp_size_mb} is not in 1..=10240");
    }
    let pids_max = f.pids_max.unwrap_or(256);
    if !(8..=65_536).contains(&pids_max) {
        bail!("invalid `process.pids_max`: {pids_max} is not in 8..=65536");
    }
    let max_instances = f.max_instances.unwrap_or(64);
    if !(1..=10_000).contains(&max_instances) {
        bail!("invalid `process.max_instances`: {max_instances} is not in 1..=10000");
    }
    let memory_budget_mb = f.memory_budget_mb.unwrap_or(16 * 1024);
    if !(64..=16 << 20).contains(&memory_budget_mb) {
        bail!("invalid `process.memory_budget_mb`: {memory_budget_mb} is not in 64..=16777216");
    }
    let idle_timeout_s = f.idle_timeout_s.unwrap_or(300);
    if !(1..=86_400).contains(&idle_timeout_s) {
        bail!("invalid `process.idle_timeout_s`: {idle_timeout_s} is not in 1..=86400");
    }
    Ok(ProcessConfig {
        work_dir: data_dir.join("process"),
        python3: real_binary("process.python3", f.python3, "/usr/bin/python3")?,
        node: real_binary("process.node", f.node, "/usr/bin/node")?,
        bwrap: f.bwrap.unwrap_or_else(|| "/usr/bin/bwrap".into()),
        slirp4netns: f
            .slirp4netns
            .unwrap_or_else(|| "/usr/bin/slirp4netns".into()),
        sandbox_uid,
        sandbox_gid,
        tmp_size_mb,
        pids_max,
        max_instances,
        memory_budget_mb,
        idle_timeout: Duration::from_secs(idle_timeout_s),
    })
}

/// Resolves an interpreter once to the binary it really is (following symlinks), and
/// refuses a script (such as pyenv's shell shims) given explicitly: spawning through a
/// shim costs ~100 ms per cold start. A missing default is kept as is (the runtime then
/// reports it when a function needs it).
fn real_binary(key: &str, given: Option<PathBuf>, default: &str) -> Result<PathBuf> {
    let explicit = given.is_some();
    let path = given.unwrap_or_else(|| PathBuf::from(default));
    let Ok(real) = std::fs::canonicalize(&path) else {
        if explicit {
            bail!("invalid `{key}`: {} does not exist", path.display());
        }
        return Ok(path);
    };
    let mut head = [0u8; 2];
    let is_script = std::fs::File::open(&real)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head == b"#!");
    if is_script {
        bail!(
            "invalid `{key}`: {} is a script (a shim?), not an interpreter binary",
            real.display()
        );
    }
    Ok(real)
}

/// Values given on the command line or in the environment (already merged by clap).
#[derive(Debug, Default)]
pub struct Overrides {
    /// Path of a TOML file.
    pub config_file: Option<PathBuf>,
    /// `--listen` / `ARCUS_LISTEN`.
    pub listen: Option<String>,
    /// `--data-dir` / `ARCUS_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `ARCUS_ADMIN_TOKEN`.
    pub admin_token: Option<String>,
    /// `--otlp-endpoint` / `ARCUS_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// `ARCUS_SECRET_KEY`.
    pub secret_key: Option<String>,
    /// `ARCUS_TLS_CERT`.
    pub tls_cert: Option<PathBuf>,
    /// `ARCUS_TLS_KEY`.
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// Builds and validates the configuration.
    pub fn load(o: Overrides) -> Result<Self> {
        let file = match &o.config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen_text = o
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_text
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid `listen` (--listen / ARCUS_LISTEN): {listen_text:?} is not an address like 127.0.0.1:8080"))?;
        let shutdown_grace_s = file.shutdown_grace_s.unwrap_or(30);
        if shutdown_grace_s > 3600 {
            bail!("invalid `shutdown_grace_s`: {shutdown_grace_s} is over 3600");
        }
        let wasm_max_instances = file.wasm.max_instances.unwrap_or(1000);
        if !(1..=100_000).contains(&wasm_max_instances) {
            bail!("invalid `wasm.max_instances`: {wasm_max_instances} is not in 1..=100000");
        }
        let max_loaded_components = file.wasm.max_loaded_components.unwrap_or(256);
        if !(1..=100_000).contains(&max_loaded_components) {
            bail!(
                "invalid `wasm.max_loaded_components`: {max_loaded_components} is not in 1..=100000"
            );
        }
        let wasm_memory_budget_mb = file
            .wasm
            .memory_budget_mb
            .unwrap_or(arcus_engine::DEFAULT_WASM_MEMORY_BUDGET_MB);
        if !(16..=16 << 20).contains(&wasm_memory_budget_mb) {
            bail!(
                "invalid `wasm.memory_budget_mb`: {wasm_memory_budget_mb} is not in 16..=16777216"
            );
        }
        let stable_window_s = file.autoscale.stable_window_s.unwrap_or(60);
        if !(6..=3600).contains(&stable_window_s) {
            bail!("invalid `autoscale.stable_window_s`: {stable_window_s} is not in 6..=3600");
        }
        let data_dir = o
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./arcus-data"));
        let admin_token = o.admin_token.filter(|t| !t.is_empty());
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            bail!("invalid `ARCUS_ADMIN_TOKEN`: it must be at least 16 characters");
        }
        Ok(Self {
            listen,
            server: crate::netsec::server_limits(&file.server)?,
            tls: crate::netsec::tls(file.tls, o.tls_cert, o.tls_key)?,
            secret_key: crate::netsec::secret_key(&file.secrets, o.secret_key)?,
            previous_secret_keys: crate::netsec::previous_keys(&file.secrets)?,
            tracing: crate::otlp::TracingConfig::load(file.tracing, o.otlp_endpoint)?,
            process: process_config(file.process, &data_dir)?,
            data_dir,
            admin_token,
            shutdown_grace: Duration::from_secs(shutdown_grace_s),
            wasm_max_instances,
            max_loaded_components,
            wasm_memory_budget_mb,
            autoscale_window: Duration::from_secs(stable_window_s),
            records: file.observability.records.unwrap_or(true),
            metrics: file.observability.metrics.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("arcus.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Overrides {
            config_file: Some(path),
            ..Default::default()
        })
    }

    #[test]
    fn defaults() {
        let c = Config::load(Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./arcus-data"));
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
    }

    #[test]
    fn file_then_flags() {
        let c = with_file("listen = \"127.0.0.1:9000\"\n[wasm]\nmax_instances = 10\n").unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.wasm_max_instances, 10);
        let c = Config::load(Overrides {
            listen: Some("127.0.0.1:9100".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9100);
    }

    #[test]
    fn errors_name_the_key() {
        let e = with_file("listen = \"127.0.0.1:9000\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = with_file("[wasm]\nmax_instances = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wasm.max_instances"), "{e}");
        let e = Config::load(Overrides {
            listen: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("listen"), "{e}");
        let e = Config::load(Overrides {
            admin_token: Some("short".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("ARCUS_ADMIN_TOKEN"), "{e}");
    }

    #[test]
    fn observability_is_on_unless_switched_off() {
        let c = Config::load(Overrides::default()).unwrap();
        assert!(c.records && c.metrics);
        let c = with_file("[observability]\nrecords = false\n").unwrap();
        assert!(!c.records && c.metrics);
        let e = with_file("[observability]\nlogs = false\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("logs"), "{e}");
    }
}
