//! The node's typed configuration: defaults, then a TOML file, then `ARCUS_*` environment
//! variables, then flags. Validated at start-up; unknown keys and bad values are errors
//! that name the key.

use crate::config_file::{EngineDefaults, ProcessSettings};
use anyhow::{Context, Result, bail};
use arcus_runtime_process::ProcessConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::config_file::Overrides;

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
    /// Time between two retention passes (default 5 min).
    pub retention_interval: Duration,
    /// Metrics are kept and `/metrics` served (default true).
    pub metrics: bool,
}

/// The defaults the engine and the gateway own, for [`crate::config_file::validate`].
pub fn engine_defaults() -> EngineDefaults {
    let server = arcus_gateway::server::ServerLimits::default();
    EngineDefaults {
        wasm_memory_budget_mb: arcus_engine::DEFAULT_WASM_MEMORY_BUDGET_MB,
        header_read_timeout: server.header_read_timeout,
        max_header_bytes: server.max_header_bytes,
        min_header_bytes: arcus_gateway::server::MIN_HEADER_BYTES,
        max_headers: server.max_headers,
        body_read_timeout: server.body_read_timeout,
        max_connections: server.max_connections,
    }
}

/// The validated `[process]` as the runtime's config, its work dir under `data_dir` and
/// its interpreters resolved.
fn process_config(p: ProcessSettings, data_dir: &Path) -> Result<ProcessConfig> {
    Ok(ProcessConfig {
        work_dir: data_dir.join("process"),
        python3: real_binary("process.python3", p.python3, "/usr/bin/python3")?,
        node: real_binary("process.node", p.node, "/usr/bin/node")?,
        bwrap: p.bwrap,
        slirp4netns: p.slirp4netns,
        sandbox_uid: p.sandbox_uid,
        sandbox_gid: p.sandbox_gid,
        tmp_size_mb: p.tmp_size_mb,
        pids_max: p.pids_max,
        max_instances: p.max_instances,
        memory_budget_mb: p.memory_budget_mb,
        idle_timeout: p.idle_timeout,
        spares: p.spares,
    })
}

/// Resolves an interpreter once to the binary it really is (following symlinks). It
/// must be a regular file with an execute bit — checked on its metadata, before it is
/// ever opened, so a FIFO or a device (`/dev/zero`) is refused instead of blocking or
/// being read — and not a script (such as pyenv's shell shims): spawning through a shim
/// costs ~100 ms per cold start. A missing default is kept as is (the runtime then
/// reports it when a function needs it); an existing one is checked like a given path.
fn real_binary(key: &str, given: Option<PathBuf>, default: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let explicit = given.is_some();
    let path = given.unwrap_or_else(|| PathBuf::from(default));
    let Ok(real) = std::fs::canonicalize(&path) else {
        if explicit {
            bail!("invalid `{key}`: {} does not exist", path.display());
        }
        return Ok(path);
    };
    let meta = std::fs::metadata(&real)
        .with_context(|| format!("invalid `{key}`: cannot stat {}", real.display()))?;
    if !meta.is_file() {
        bail!(
            "invalid `{key}`: {} is not a regular file (a {})",
            real.display(),
            file_kind(&meta.file_type())
        );
    }
    if meta.permissions().mode() & 0o111 == 0 {
        bail!("invalid `{key}`: {} is not executable", real.display());
    }
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

/// What a file that is not a regular file is, for error messages.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

impl Config {
    /// Builds and validates the configuration.
    pub fn load(o: Overrides) -> Result<Self> {
        let file = match &o.config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                crate::config_file::parse(&text)
                    .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?
            }
            None => crate::config_file::FileConfig::default(),
        };
        let s = crate::config_file::validate(&file, &o, &engine_defaults())?;
        Ok(Self {
            listen: s.listen,
            server: crate::netsec::limits(s.server),
            tls: crate::netsec::tls(file.tls, o.tls_cert, o.tls_key)?,
            secret_key: crate::netsec::secret_key(&file.secrets, o.secret_key)?,
            previous_secret_keys: crate::netsec::previous_keys(&file.secrets)?,
            tracing: crate::otlp::TracingConfig::from_settings(s.tracing)?,
            process: process_config(s.process, &s.data_dir)?,
            data_dir: s.data_dir,
            admin_token: s.admin_token,
            shutdown_grace: s.shutdown_grace,
            wasm_max_instances: s.wasm_max_instances,
            max_loaded_components: s.max_loaded_components,
            wasm_memory_budget_mb: s.wasm_memory_budget_mb,
            autoscale_window: s.autoscale_window,
            records: s.records,
            metrics: s.metrics,
            retention_interval: s.retention_interval,
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
        assert_eq!(c.retention_interval, Duration::from_secs(300));
        let c = with_file("[observability]\nrecords = false\nretention_interval_s = 60\n").unwrap();
        assert!(!c.records && c.metrics);
        assert_eq!(c.retention_interval, Duration::from_secs(60));
        let e = with_file("[observability]\nretention_interval_s = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("observability.retention_interval_s"), "{e}");
        let e = with_file("[observability]\nlogs = false\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("logs"), "{e}");
    }

    #[test]
    fn the_fuzz_targets_defaults_are_the_engines() {
        assert_eq!(crate::config_file::FUZZ_DEFAULTS, engine_defaults());
    }

    /// An executable regular file in `dir` that is not a script.
    fn fake_binary(dir: &Path, name: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, b"\x7fELF not really").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn interpreters_resolve_to_an_executable_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_binary(dir.path(), "python3", 0o755);
        let link = dir.path().join("python3-link");
        std::os::unix::fs::symlink(&bin, &link).unwrap();
        let real = real_binary("process.python3", Some(link), "/nonexistent").unwrap();
        assert_eq!(real, std::fs::canonicalize(&bin).unwrap());
        // A missing default is kept (the runtime reports it if a function needs it) …
        let missing = real_binary("process.node", None, "/nonexistent/node").unwrap();
        assert_eq!(missing, PathBuf::from("/nonexistent/node"));
        // … a missing explicit path is an error.
        let e = real_binary("process.node", Some("/nonexistent/node".into()), "/x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("process.node") && e.contains("does not exist"),
            "{e}"
        );
        let script = dir.path().join("shim");
        std::fs::write(&script, "#!/bin/sh\nexec python3 \"$@\"\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let e = real_binary("process.python3", Some(script), "/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.python3") && e.contains("script"), "{e}");
    }

    #[test]
    fn interpreters_that_are_not_executable_regular_files_are_refused_unopened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let plain = fake_binary(dir.path(), "not-executable", 0o644);
        let cases = [
            (fifo, "not a regular file (a FIFO)"),
            (
                "/dev/zero".into(),
                "not a regular file (a character device)",
            ),
            (dir.path().to_path_buf(), "not a regular file (a directory)"),
            (plain, "is not executable"),
        ];
        for (path, why) in cases {
            // Opening the FIFO would block this thread forever (no writer): an answer at
            // all shows it was refused from its metadata.
            let e = real_binary("process.node", Some(path.clone()), "/usr/bin/node")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("`process.node`") && e.contains(why),
                "{path:?}: {e}"
            );
        }
        // And through the config file, naming the key.
        let e = with_file("[process]\npython3 = \"/dev/zero\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`process.python3`"), "{e}");
    }
}
