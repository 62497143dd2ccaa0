//! The pure part of the node's configuration: the TOML file's sections, the values given
//! by flags and `ARCUS_*` variables, their merging, defaults and range checks — everything
//! that needs neither the engine nor the file system. It depends only on std, serde and
//! toml, so the `config` fuzz target (`fuzz/fuzz_targets/config.rs`) compiles this very
//! file. The engine-owned checks (TLS files, secret keys, the OTLP URL, interpreter
//! binaries) are done on top of it in `config.rs`, `netsec.rs` and `otlp.rs`.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration value that is not accepted; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// Returns `Err(Invalid)` from the enclosing function with a formatted message.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(Invalid(format!($($arg)*)))
    };
}

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
    pub tracing: TracingFileConfig,
    /// Listener limits.
    #[serde(default)]
    pub server: ServerFileConfig,
    /// HTTPS certificate and key.
    #[serde(default)]
    pub tls: TlsFileConfig,
    /// Secret sealing key.
    #[serde(default)]
    pub secrets: SecretsFileConfig,
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
    /// Seconds between two retention passes (logs, records, rollups, audit); default
    /// 300, 10–86,400.
    pub retention_interval_s: Option<u64>,
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
    /// Spare runtimes kept started per built-in runtime for cold starts; default 1.
    pub spares: Option<u32>,
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

/// `[tracing]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingFileConfig {
    /// OTLP/HTTP collector base URL (`http://host:4318`); spans go to `<it>/v1/traces`.
    /// Unset: no spans are exported. `ARCUS_OTLP_ENDPOINT` overrides it.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans; default `arcus`.
    pub service_name: Option<String>,
    /// Milliseconds between batch exports; default 5000.
    pub batch_delay_ms: Option<u64>,
}

/// `[server]` section: limits of the HTTP listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFileConfig {
    /// Seconds a client has to send a request head (also the idle keep-alive timeout);
    /// default 10.
    pub header_read_timeout_s: Option<u64>,
    /// Largest request head in bytes; default 65536.
    pub max_header_bytes: Option<usize>,
    /// Most header fields per request; default 100.
    pub max_headers: Option<usize>,
    /// Seconds a client has to send a request body; default 60.
    pub body_read_timeout_s: Option<u64>,
    /// Most connections open at once; default 10000.
    pub max_connections: Option<usize>,
}

/// `[tls]` section: serve HTTPS with this certificate chain and private key (PEM).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFileConfig {
    /// Certificate chain (PEM), leaf first.
    pub cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// `[secrets]` section.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsFileConfig {
    /// The 32-byte key secrets are sealed with: 64 hex digits or base64.
    pub key: Option<String>,
    /// Keys secrets may still be sealed with (a rotation): opened with them and
    /// re-sealed with `key` at start-up.
    pub previous_keys: Option<Vec<String>>,
}

impl std::fmt::Debug for SecretsFileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsFileConfig { .. }")
    }
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

/// Defaults that the engine and the gateway own, passed in so this module needs
/// neither (`config::engine_defaults` builds the real ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineDefaults {
    /// Default `wasm.memory_budget_mb`.
    pub wasm_memory_budget_mb: u32,
    /// Default `server.header_read_timeout_s`.
    pub header_read_timeout: Duration,
    /// Default `server.max_header_bytes`.
    pub max_header_bytes: usize,
    /// Smallest `server.max_header_bytes` the listener accepts.
    pub min_header_bytes: usize,
    /// Default `server.max_headers`.
    pub max_headers: usize,
    /// Default `server.body_read_timeout_s`.
    pub body_read_timeout: Duration,
    /// Default `server.max_connections`.
    pub max_connections: usize,
}

/// Validated `[process]`, before its interpreter paths are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// `process.python3` as given (`None`: the default).
    pub python3: Option<PathBuf>,
    /// `process.node` as given (`None`: the default).
    pub node: Option<PathBuf>,
    /// bubblewrap.
    pub bwrap: PathBuf,
    /// slirp4netns.
    pub slirp4netns: PathBuf,
    /// Host uid of the sandboxed processes (never 0).
    pub sandbox_uid: u32,
    /// Host gid of the sandboxed processes (never 0).
    pub sandbox_gid: u32,
    /// Size of each instance's /tmp in MiB.
    pub tmp_size_mb: u32,
    /// Processes/threads per instance.
    pub pids_max: u32,
    /// Live process instances per node.
    pub max_instances: usize,
    /// MiB the live process instances may hold together.
    pub memory_budget_mb: u32,
    /// How long an idle instance is kept.
    pub idle_timeout: Duration,
    /// Spare runtimes kept started per built-in runtime (0: none).
    pub spares: u32,
}

/// Validated `[server]`: the listener's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Time to send a request head (and the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Largest request head in bytes.
    pub max_header_bytes: usize,
    /// Most header fields per request.
    pub max_headers: usize,
    /// Time to send a request body.
    pub body_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Validated `[tracing]`, before the endpoint is turned into a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingSettings {
    /// `ARCUS_OTLP_ENDPOINT` (if set and not empty) or `tracing.otlp_endpoint`.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans (1–255 characters).
    pub service_name: String,
    /// Time between batch exports.
    pub batch_delay: Duration,
}

/// Everything of the configuration that is checked without the engine or the file
/// system: the file's values merged with the overrides, defaults applied, ranges checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Admin token (at least 16 characters), if set.
    pub admin_token: Option<String>,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_grace: Duration,
    /// Concurrent wasm instances.
    pub wasm_max_instances: u32,
    /// Loaded components kept in memory.
    pub max_loaded_components: usize,
    /// MiB running wasm instances may hold at once.
    pub wasm_memory_budget_mb: u32,
    /// The autoscaler's stable window.
    pub autoscale_window: Duration,
    /// `[process]`.
    pub process: ProcessSettings,
    /// `[server]`.
    pub server: ServerSettings,
    /// `[tracing]`.
    pub tracing: TracingSettings,
    /// Invocation records and logs are written.
    pub records: bool,
    /// Metrics are kept and `/metrics` served.
    pub metrics: bool,
    /// Time between two retention passes.
    pub retention_interval: Duration,
}

/// Parses the text of a config file (unknown keys are errors naming them).
pub fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

/// `v` if it is in `lo..=hi`, else an error naming `key`.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, Invalid> {
    if v < lo || v > hi {
        invalid!("invalid `{key}`: {v} is not in {lo}..={hi}");
    }
    Ok(v)
}

/// Merges the file with the overrides (which win) and checks every value this module
/// can check. The file's `[tls]` and `[secrets]` are left to the caller.
pub fn validate(f: &FileConfig, o: &Overrides, d: &EngineDefaults) -> Result<Settings, Invalid> {
    let listen_text = o
        .listen
        .clone()
        .or_else(|| f.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let Ok(listen) = listen_text.parse() else {
        invalid!(
            "invalid `listen` (--listen / ARCUS_LISTEN): {listen_text:?} is not an address like 127.0.0.1:8080"
        );
    };
    let shutdown_grace_s = f.shutdown_grace_s.unwrap_or(30);
    if shutdown_grace_s > 3600 {
        invalid!("invalid `shutdown_grace_s`: {shutdown_grace_s} is over 3600");
    }
    let wasm_max_instances = in_range(
        "wasm.max_instances",
        f.wasm.max_instances.unwrap_or(1000),
        1,
        100_000,
    )?;
    let max_loaded_components = in_range(
        "wasm.max_loaded_components",
        f.wasm.max_loaded_components.unwrap_or(256),
        1,
        100_000,
    )?;
    let wasm_memory_budget_mb = in_range(
        "wasm.memory_budget_mb",
        f.wasm.memory_budget_mb.unwrap_or(d.wasm_memory_budget_mb),
        16,
        16 << 20,
    )?;
    let stable_window_s = in_range(
        "autoscale.stable_window_s",
        f.autoscale.stable_window_s.unwrap_or(60),
        6,
        3600,
    )?;
    let retention_interval_s = in_range(
        "observability.retention_interval_s",
        f.observability.retention_interval_s.unwrap_or(300),
        10,
        86_400,
    )?;
    let data_dir = o
        .data_dir
        .clone()
        .or_else(|| f.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./arcus-data"));
    let admin_token = o.admin_token.clone().filter(|t| !t.is_empty());
    if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
        invalid!("invalid `ARCUS_ADMIN_TOKEN`: it must be at least 16 characters");
    }
    Ok(Settings {
        listen,
        data_dir,
        admin_token,
        shutdown_grace: Duration::from_secs(shutdown_grace_s),
        wasm_max_instances,
        max_loaded_components,
        wasm_memory_budget_mb,
        autoscale_window: Duration::from_secs(stable_window_s),
        server: server(&f.server, d)?,
        tracing: tracing(&f.tracing, o.otlp_endpoint.as_deref())?,
        process: process(&f.process)?,
        records: f.observability.records.unwrap_or(true),
        metrics: f.observability.metrics.unwrap_or(true),
        retention_interval: Duration::from_secs(retention_interval_s),
    })
}

/// Validates `[server]`.
pub fn server(f: &ServerFileConfig, d: &EngineDefaults) -> Result<ServerSettings, Invalid> {
    let secs = |key, v: Option<u64>, default: Duration| -> Result<Duration, Invalid> {
        let s = in_range(key, v.unwrap_or(default.as_secs()), 1, 3600)?;
        Ok(Duration::from_secs(s))
    };
    Ok(ServerSettings {
        header_read_timeout: secs(
            "server.header_read_timeout_s",
            f.header_read_timeout_s,
            d.header_read_timeout,
        )?,
        max_header_bytes: in_range(
            "server.max_header_bytes",
            f.max_header_bytes.unwrap_or(d.max_header_bytes),
            d.min_header_bytes,
            1 << 20,
        )?,
        max_headers: in_range(
            "server.max_headers",
            f.max_headers.unwrap_or(d.max_headers),
            8,
            1000,
        )?,
        body_read_timeout: secs(
            "server.body_read_timeout_s",
            f.body_read_timeout_s,
            d.body_read_timeout,
        )?,
        max_connections: in_range(
            "server.max_connections",
            f.max_connections.unwrap_or(d.max_connections),
            1,
            1_000_000,
        )?,
    })
}

/// Validates `[tracing]`; `env_endpoint` (`ARCUS_OTLP_ENDPOINT`) wins over the file
/// unless it is empty.
pub fn tracing(
    f: &TracingFileConfig,
    env_endpoint: Option<&str>,
) -> Result<TracingSettings, Invalid> {
    let otlp_endpoint = env_endpoint
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .or_else(|| f.otlp_endpoint.clone());
    let service_name = f.service_name.clone().unwrap_or_else(|| "arcus".into());
    if service_name.is_empty() || service_name.len() > 255 {
        invalid!("invalid `tracing.service_name`: it must be 1–255 characters");
    }
    let delay = f.batch_delay_ms.unwrap_or(5000);
    if !(10..=60_000).contains(&delay) {
        invalid!("invalid `tracing.batch_delay_ms`: {delay} is not in 10..=60000");
    }
    Ok(TracingSettings {
        otlp_endpoint,
        service_name,
        batch_delay: Duration::from_millis(delay),
    })
}

/// Validates `[process]` (the interpreter paths are resolved by the caller).
pub fn process(f: &ProcessFileConfig) -> Result<ProcessSettings, Invalid> {
    let sandbox_uid = f.sandbox_uid.unwrap_or(65534);
    let sandbox_gid = f.sandbox_gid.unwrap_or(65534);
    if sandbox_uid == 0 || sandbox_gid == 0 {
        invalid!(
            "invalid `process.sandbox_uid`/`process.sandbox_gid`: functions never run as root (0)"
        );
    }
    Ok(ProcessSettings {
        python3: f.python3.clone(),
        node: f.node.clone(),
        bwrap: f.bwrap.clone().unwrap_or_else(|| "/usr/bin/bwrap".into()),
        slirp4netns: f
            .slirp4netns
            .clone()
            .unwrap_or_else(|| "/usr/bin/slirp4netns".into()),
        sandbox_uid,
        sandbox_gid,
        tmp_size_mb: in_range(
            "process.tmp_size_mb",
            f.tmp_size_mb.unwrap_or(512),
            1,
            10_240,
        )?,
        pids_max: in_range("process.pids_max", f.pids_max.unwrap_or(256), 8, 65_536)?,
        max_instances: in_range(
            "process.max_instances",
            f.max_instances.unwrap_or(64),
            1,
            10_000,
        )?,
        memory_budget_mb: in_range(
            "process.memory_budget_mb",
            f.memory_budget_mb.unwrap_or(16 * 1024),
            64,
            16 << 20,
        )?,
        idle_timeout: Duration::from_secs(in_range(
            "process.idle_timeout_s",
            f.idle_timeout_s.unwrap_or(300),
            1,
            86_400,
        )?),
        spares: in_range("process.spares", f.spares.unwrap_or(1), 0, 16)?,
    })
}

/// The defaults of today's engine and gateway, for the fuzz target (which cannot link
/// them); a test in `config.rs` checks they match the real ones.
#[doc(hidden)]
#[cfg_attr(not(test), allow(dead_code))]
pub const FUZZ_DEFAULTS: EngineDefaults = EngineDefaults {
    wasm_memory_budget_mb: 16 * 1024,
    header_read_timeout: Duration::from_secs(10),
    max_header_bytes: 64 * 1024,
    min_header_bytes: 8192,
    max_headers: 100,
    body_read_timeout: Duration::from_secs(60),
    max_connections: 10_000,
};

/// Body of the `config` fuzz target, shared with the stable corpus replay test below.
///
/// The input is the text of a config file. It is parsed and validated without
/// overrides; parsing and validation never panic, and a config that validates has every
/// value in its documented range (checked again here independently of [`validate`]).
#[doc(hidden)]
#[cfg_attr(not(test), allow(dead_code))]
pub fn fuzz_config(data: &[u8]) -> Result<Settings, String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let file = parse(text).map_err(|e| e.to_string())?;
    let s = validate(&file, &Overrides::default(), &FUZZ_DEFAULTS).map_err(|e| e.0)?;
    assert!(s.shutdown_grace <= Duration::from_secs(3600));
    assert!((1..=100_000).contains(&s.wasm_max_instances));
    assert!((1..=100_000).contains(&s.max_loaded_components));
    assert!((16..=16 << 20).contains(&s.wasm_memory_budget_mb));
    let window = s.autoscale_window.as_secs();
    assert!((6..=3600).contains(&window));
    let p = &s.process;
    assert!(p.sandbox_uid != 0 && p.sandbox_gid != 0, "root sandbox");
    assert!((1..=10_240).contains(&p.tmp_size_mb));
    assert!((8..=65_536).contains(&p.pids_max));
    assert!((1..=10_000).contains(&p.max_instances));
    assert!((64..=16 << 20).contains(&p.memory_budget_mb));
    assert!((1..=86_400).contains(&p.idle_timeout.as_secs()));
    assert!(p.spares <= 16);
    let v = &s.server;
    for t in [v.header_read_timeout, v.body_read_timeout] {
        assert!((1..=3600).contains(&t.as_secs()));
    }
    assert!((8192..=1 << 20).contains(&v.max_header_bytes));
    assert!((8..=1000).contains(&v.max_headers));
    assert!((1..=1_000_000).contains(&v.max_connections));
    let t = &s.tracing;
    assert!((1..=255).contains(&t.service_name.len()));
    assert!((10..=60_000).contains(&t.batch_delay.as_millis()));
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod fuzz_corpus {
    /// Replays `fuzz/corpus/config/` through [`super::fuzz_config`] on stable: no input
    /// panics, the hand-written `ok-*` seeds validate and the `bad-*` seeds are refused
    /// (inputs a fuzz run added, named by their hash, only have to not panic).
    #[test]
    fn config_corpus_replays_without_a_finding() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        let (mut ok, mut bad) = (0, 0);
        for p in paths {
            eprintln!("replaying {}", p.display());
            let result = super::fuzz_config(&std::fs::read(&p).unwrap());
            let name = p.file_name().unwrap().to_string_lossy();
            if name.starts_with("ok-") {
                assert!(result.is_ok(), "{name}: {result:?}");
                ok += 1;
            } else if name.starts_with("bad-") {
                assert!(result.is_err(), "{name} was accepted: {result:?}");
                bad += 1;
            }
        }
        assert!(
            ok >= 3 && bad >= 8,
            "{}: {ok} ok-, {bad} bad- seeds",
            dir.display()
        );
    }
}
