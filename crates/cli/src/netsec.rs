//! Config sections of the listener and of secrets: `[server]` (connection limits),
//! `[tls]` (certificate and key, or `ARCUS_TLS_CERT`/`ARCUS_TLS_KEY`) and `[secrets]`
//! (`key`, or `ARCUS_SECRET_KEY`), validated at start-up with errors naming the key.

use crate::config_file::ServerSettings;
use crate::config_file::{SecretsFileConfig, TlsFileConfig};
use anyhow::{Result, bail};
use arcus_engine::SecretKey;
use arcus_gateway::server::ServerLimits;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Validates `[server]` alone into the listener's limits (`Config::load` validates it
/// with the rest of the file through [`crate::config_file::validate`]).
#[cfg(test)]
pub fn server_limits(f: &crate::config_file::ServerFileConfig) -> Result<ServerLimits> {
    Ok(limits(crate::config_file::server(
        f,
        &crate::config::engine_defaults(),
    )?))
}

/// The listener's limits from the validated `[server]`.
pub fn limits(s: ServerSettings) -> ServerLimits {
    ServerLimits {
        header_read_timeout: s.header_read_timeout,
        max_header_bytes: s.max_header_bytes,
        max_headers: s.max_headers,
        body_read_timeout: s.body_read_timeout,
        max_connections: s.max_connections,
    }
}

/// The TLS config from `[tls]` or `ARCUS_TLS_CERT`/`ARCUS_TLS_KEY` (the environment
/// wins), loaded now so a missing file or bad PEM stops the start; `None` for plain
/// HTTP. Both or neither must be given.
pub fn tls(
    f: TlsFileConfig,
    env_cert: Option<PathBuf>,
    env_key: Option<PathBuf>,
) -> Result<Option<Arc<rustls::ServerConfig>>> {
    let cert = env_cert.or(f.cert);
    let key = env_key.or(f.key);
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!("invalid `tls.key` (ARCUS_TLS_KEY): a certificate needs its key"),
        (None, Some(_)) => {
            bail!("invalid `tls.cert` (ARCUS_TLS_CERT): a key needs its certificate")
        }
        (Some(cert), Some(key)) => {
            for (name, path) in [("tls.cert", &cert), ("tls.key", &key)] {
                if !path.is_file() {
                    bail!(
                        "invalid `{name}`: {} is not a readable file",
                        path.display()
                    );
                }
            }
            arcus_gateway::server::load_tls(&cert, &key)
                .map(Some)
                .map_err(|(file, e)| {
                    let name = match file {
                        arcus_gateway::server::TlsFile::Cert => "tls.cert",
                        arcus_gateway::server::TlsFile::Key => "tls.key",
                    };
                    anyhow::anyhow!("invalid `{name}`: {e}")
                })
        }
    }
}

/// The secret key from `ARCUS_SECRET_KEY` or `[secrets] key` (the environment wins);
/// `None` when neither is set. A bad key is an error naming where it came from (never
/// showing it).
pub fn secret_key(f: &SecretsFileConfig, env: Option<String>) -> Result<Option<SecretKey>> {
    let (name, text) = match (env.filter(|k| !k.is_empty()), &f.key) {
        (Some(k), _) => ("ARCUS_SECRET_KEY", k),
        (None, Some(k)) => ("secrets.key", k.clone()),
        (None, None) => return Ok(None),
    };
    SecretKey::parse(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("invalid `{name}`: {e}"))
}

/// `[secrets] previous_keys`, each validated (errors name the entry, never show it).
pub fn previous_keys(f: &SecretsFileConfig) -> Result<Vec<SecretKey>> {
    f.previous_keys
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, text)| {
            SecretKey::parse(text)
                .map_err(|e| anyhow::anyhow!("invalid `secrets.previous_keys[{i}]`: {e}"))
        })
        .collect()
}

/// The key to use when none is configured: the one in `<data-dir>/secret-key`, or a new
/// one written there (mode 0600) with a warning that it must be kept with the data.
pub fn secret_key_file(data: &Path) -> Result<SecretKey> {
    use anyhow::Context;
    let path = data.join("secret-key");
    match std::fs::read_to_string(&path) {
        Ok(text) => SecretKey::parse(&text)
            .map_err(|e| anyhow::anyhow!("invalid secret key file {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            crate::serve::write_private_file(&path, &key.to_hex())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::warn!(
                "no secret key configured ([secrets] key / ARCUS_SECRET_KEY): generated one in \
                 {}; back it up with the data dir — secrets cannot be read without it",
                path.display()
            );
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::ServerFileConfig;

    #[test]
    fn server_limits_default_and_range_errors_name_the_key() {
        assert_eq!(
            server_limits(&ServerFileConfig::default()).unwrap(),
            ServerLimits::default()
        );
        let e = server_limits(&ServerFileConfig {
            max_header_bytes: Some(100),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("server.max_header_bytes"), "{e}");
        let e = server_limits(&ServerFileConfig {
            header_read_timeout_s: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("server.header_read_timeout_s"),
            "{e}"
        );
    }

    #[test]
    fn tls_errors_name_the_key() {
        let e = tls(
            TlsFileConfig::default(),
            Some("/nonexistent.pem".into()),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("tls.key"), "{e}");
        let e = tls(
            TlsFileConfig {
                cert: Some("/nonexistent/cert.pem".into()),
                key: Some("/nonexistent/key.pem".into()),
            },
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("tls.cert"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem at all").unwrap();
        let e = tls(TlsFileConfig::default(), Some(junk.clone()), Some(junk)).unwrap_err();
        assert!(e.to_string().contains("tls.cert"), "{e}");
        assert!(tls(TlsFileConfig::default(), None, None).unwrap().is_none());
    }

    #[test]
    fn secret_keys_come_from_env_or_file_and_bad_ones_name_the_key() {
        let hex_key = "ab".repeat(32);
        let f = SecretsFileConfig {
            key: Some(hex_key.clone()),
            previous_keys: None,
        };
        assert!(secret_key(&f, None).unwrap().is_some());
        let e = secret_key(&f, Some("short".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ARCUS_SECRET_KEY") && !e.contains("short"),
            "{e}"
        );
        let bad = SecretsFileConfig {
            key: Some("zz".into()),
            previous_keys: None,
        };
        assert!(
            secret_key(&bad, None)
                .unwrap_err()
                .to_string()
                .contains("secrets.key")
        );
        assert!(
            secret_key(&SecretsFileConfig::default(), None)
                .unwrap()
                .is_none()
        );
        let rotating = SecretsFileConfig {
            key: None,
            previous_keys: Some(vec!["cd".repeat(32), "nope".into()]),
        };
        let e = previous_keys(&rotating).unwrap_err().to_string();
        assert!(
            e.contains("secrets.previous_keys[1]") && !e.contains("nope"),
            "{e}"
        );
    }

    #[test]
    fn a_generated_key_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = secret_key_file(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("secret-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(secret_key_file(dir.path()).unwrap().id(), first.id());
    }
}
