//! Dependency layers: a zip's `requirements.txt` (python3) or `package.json` (node) is
//! installed *inside the sandbox* as the unprivileged sandbox user, with the host's
//! network (registries), `HOME=/tmp`, the code read-only at `/var/task` and only the
//! layer being built writable (at `/opt`).
//!
//! The result is laid out as a Lambda layer and mounted read-only at `/opt` in every
//! instance: Python packages in `python/` (on `PYTHONPATH` as `/opt/python`), Node modules
//! in `nodejs/node_modules` (on `NODE_PATH`). Layers are cached by the sha256 of the
//! runtime kind and the manifest files under `<work_dir>/layers/<hash>/` (with the build
//! log beside it as `<hash>.log`): a build goes to a temporary directory that is renamed
//! into place when it succeeds, so a failed or interrupted build leaves nothing behind.
//! Finished layers are owned by root and read-only for the sandbox user.
//!
//! Host paths must be reachable by the sandbox user (bubblewrap binds them as that user):
//! the work directory and the unpacked code need `o+x` on their parents and `o+r` files.

use crate::sandbox::{self, SandboxSpec, SandboxSupport};
use crate::{PrepareError, ProcessConfig, ProcessKind};
use sha2::{Digest, Sha256};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest a dependency build may take.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// Memory limit of a dependency build in MiB.
pub const BUILD_MEMORY_MB: u32 = 2048;
/// pids limit of a dependency build.
pub const BUILD_PIDS_MAX: u32 = 1024;
/// Size of a build's `/tmp` (pip's and npm's scratch space) in MiB.
pub const BUILD_TMP_MB: u32 = 1024;

/// Host environment variables passed on to builds (registry mirrors and proxies).
const PASSED_ENV: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_DEFAULT_TIMEOUT",
    "npm_config_registry",
];

/// The system's CA bundle (visible inside through the bound `/etc/ssl`).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The manifest files of `kind` present in `code_dir`, in hashing order.
fn manifests(kind: ProcessKind, code_dir: &Path) -> Vec<&'static str> {
    let names: &[&'static str] = match kind {
        ProcessKind::Python3 => &["requirements.txt"],
        ProcessKind::Node => &["package.json", "package-lock.json"],
        ProcessKind::Custom => &[],
    };
    let primary = names.first().copied();
    let present: Vec<_> = names
        .iter()
        .copied()
        .filter(|n| fs::symlink_metadata(code_dir.join(n)).is_ok_and(|m| m.file_type().is_file()))
        .collect();
    // A lockfile alone is not a manifest.
    if present.first().copied() == primary {
        present
    } else {
        Vec::new()
    }
}

/// The cache key of the code's dependencies, or `None` when it has no manifest.
pub fn manifest_hash(kind: ProcessKind, code_dir: &Path) -> io::Result<Option<String>> {
    let files = manifests(kind, code_dir);
    if files.is_empty() {
        return Ok(None);
    }
    let mut h = Sha256::new();
    h.update(format!("arcus-layer-v1\0{kind:?}\0"));
    for name in files {
        let content = fs::read(code_dir.join(name))?;
        h.update(format!("{name}\0{}\0", content.len()));
        h.update(&content);
    }
    Ok(Some(hex::encode(h.finalize())))
}

/// The already-built layer of this code's dependencies, if there is one.
pub fn existing_layer(work_dir: &Path, kind: ProcessKind, code_dir: &Path) -> Option<PathBuf> {
    let hash = manifest_hash(kind, code_dir).ok()??;
    let path = work_dir.join("layers").join(hash);
    path.is_dir().then_some(path)
}

/// Installs the dependencies of the code unpacked in `code_dir` (see the module doc), or
/// finds the cached layer. Returns the layer directory (`None` when the code has no
/// manifest) and the build log (the cached build's log for a cached layer).
pub async fn build(
    config: &ProcessConfig,
    support: &SandboxSupport,
    kind: ProcessKind,
    code_dir: &Path,
) -> Result<(Option<PathBuf>, String), PrepareError> {
    let internal = |what: &str, e: io::Error| PrepareError::Internal(format!("{what}: {e}"));
    let Some(hash) = manifest_hash(kind, code_dir).map_err(|e| internal("manifest", e))? else {
        return Ok((None, String::new()));
    };
    let layers = config.work_dir.join("layers");
    let final_dir = layers.join(&hash);
    let log_file = layers.join(format!("{hash}.log"));
    if final_dir.is_dir() {
        let log = fs::read_to_string(&log_file).unwrap_or_default();
        return Ok((Some(final_dir), log));
    }
    fs::create_dir_all(&layers).map_err(|e| internal("layers dir", e))?;
    fs::set_permissions(&layers, fs::Permissions::from_mode(0o755))
        .map_err(|e| internal("layers dir", e))?;
    let tmp = layers.join(format!(".build-{}", uuid::Uuid::new_v4().simple()));
    let result = build_into(support, config, kind, code_dir, &tmp).await;
    let log = match result {
        Ok(log) => log,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let finish = || -> io::Result<()> {
        seal(&tmp)?;
        fs::write(&log_file, &log)?;
        match fs::rename(&tmp, &final_dir) {
            // A concurrent build of the same manifests won: use its layer.
            Err(_) if final_dir.is_dir() => fs::remove_dir_all(&tmp),
            other => other,
        }
    };
    if let Err(e) = finish() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(internal("finishing the layer", e));
    }
    Ok((Some(final_dir), log))
}

/// Runs the installer into `tmp` (created here); returns the build log.
async fn build_into(
    support: &SandboxSupport,
    config: &ProcessConfig,
    kind: ProcessKind,
    code_dir: &Path,
    tmp: &Path,
) -> Result<String, PrepareError> {
    let internal = |what: &str, e: io::Error| PrepareError::Internal(format!("{what}: {e}"));
    fs::create_dir(tmp).map_err(|e| internal("build dir", e))?;
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), "/tmp".into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    env.extend(
        PASSED_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))),
    );
    let (program, args, cwd, what) = match kind {
        ProcessKind::Python3 => {
            if Path::new(CA_BUNDLE).exists() {
                env.push(("PIP_CERT".into(), CA_BUNDLE.into()));
            }
            let args = [
                "-m",
                "pip",
                "install",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--no-input",
                "--progress-bar",
                "off",
                "--target",
                "/opt/python",
                "-r",
                "/var/task/requirements.txt",
            ];
            let args = args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            (config.python3.clone(), args, "/var/task", "pip install")
        }
        ProcessKind::Node => {
            let node_dir = tmp.join("nodejs");
            fs::create_dir(&node_dir).map_err(|e| internal("build dir", e))?;
            let files = manifests(kind, code_dir);
            for name in &files {
                fs::copy(code_dir.join(name), node_dir.join(name))
                    .map_err(|e| internal("copying the manifest", e))?;
            }
            std::os::unix::fs::chown(
                &node_dir,
                Some(config.sandbox_uid),
                Some(config.sandbox_gid),
            )
            .map_err(|e| internal("build dir", e))?;
            env.push(("npm_config_cache".into(), "/tmp/.npm".into()));
            env.push(("npm_config_update_notifier".into(), "false".into()));
            if Path::new(CA_BUNDLE).exists() {
                env.push(("npm_config_cafile".into(), CA_BUNDLE.into()));
            }
            let verb = if files.contains(&"package-lock.json") {
                "ci"
            } else {
                "install"
            };
            let mut args: Vec<String> = Vec::new();
            let npm = npm_cli(&config.node);
            let program = if npm.extension().is_some_and(|e| e == "js") {
                args.push(npm.display().to_string());
                config.node.clone()
            } else {
                npm
            };
            args.extend(
                [verb, "--omit=dev", "--no-audit", "--no-fund"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            let what = if verb == "ci" {
                "npm ci"
            } else {
                "npm install"
            };
            (program, args, "/opt/nodejs", what)
        }
        ProcessKind::Custom => return Ok(String::new()),
    };
    std::os::unix::fs::chown(tmp, Some(config.sandbox_uid), Some(config.sandbox_gid))
        .map_err(|e| internal("build dir", e))?;
    let spec = SandboxSpec {
        ro_binds: vec![(code_dir.to_path_buf(), PathBuf::from("/var/task"))],
        rw_binds: vec![(tmp.to_path_buf(), PathBuf::from("/opt"))],
        tmp_size_mb: BUILD_TMP_MB,
        cwd: PathBuf::from(cwd),
        memory_mb: BUILD_MEMORY_MB,
        pids_max: BUILD_PIDS_MAX,
        netns: None,
        uid: config.sandbox_uid,
        gid: config.sandbox_gid,
    };
    let out = sandbox::run_to_completion(
        support,
        &config.bwrap,
        &spec,
        &program,
        &args,
        &env,
        BUILD_TIMEOUT,
    )
    .await
    .map_err(|e| internal("starting the dependency build", e))?;
    let log = format!("$ {what}\n{}", out.output);
    let message = if out.timed_out {
        format!("{what} timed out after {} s", BUILD_TIMEOUT.as_secs())
    } else if out.oom_killed {
        format!("{what} ran out of memory ({BUILD_MEMORY_MB} MiB)")
    } else {
        match out.status {
            Some(0) => return Ok(log),
            Some(code) => format!("{what} exited with status {code}"),
            None => format!("{what} was killed"),
        }
    };
    Err(PrepareError::BuildFailed { message, log })
}

/// npm's entry point next to `node` (`/usr/bin/npm` → `…/npm-cli.js`).
fn npm_cli(node: &Path) -> PathBuf {
    let npm = node.parent().unwrap_or(Path::new("/usr/bin")).join("npm");
    fs::canonicalize(&npm).unwrap_or(npm)
}

/// Makes a finished layer root-owned and readable (not writable) by everyone.
fn seal(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    std::os::unix::fs::lchown(dir, Some(0), Some(0))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777 & !0o6022;
    let mode = if meta.is_dir() || mode & 0o100 != 0 {
        mode | 0o555
    } else {
        mode | 0o444
    };
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    if meta.is_dir() {
        for entry in fs::read_dir(dir)? {
            seal(&entry?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "sandbox/tests/deps.rs"]
mod tests;
