//! The built-in runtime clients of the python3 and node runtimes: small scripts (Python
//! stdlib, Node without npm packages) embedded in the binary that speak the Lambda
//! Runtime API and call a handler `(event, context)` the way Lambda's runtimes do.
//!
//! [`materialize`] writes them once under the work dir (content-addressed, atomically);
//! that directory is mounted read-only at [`RUNTIME_MOUNT`] in every sandbox, and
//! [`command`] gives the interpreter and arguments that start one.

#[cfg(test)]
mod tests;

use crate::ProcessKind;
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// The Python runtime client (`python/bootstrap.py`).
const PYTHON_BOOTSTRAP: &str = include_str!("python/bootstrap.py");
/// The Node runtime client (`node/bootstrap.js`).
const NODE_BOOTSTRAP: &str = include_str!("node/bootstrap.js");
/// Where the materialized directory is mounted inside the sandbox.
pub(crate) const RUNTIME_MOUNT: &str = "/var/runtime";

/// The embedded files: (path relative to the runtime dir, contents).
const FILES: [(&str, &str); 2] = [
    ("python/bootstrap.py", PYTHON_BOOTSTRAP),
    ("node/bootstrap.js", NODE_BOOTSTRAP),
];

/// Short hash of every embedded file, naming the runtime dir (new scripts, new dir).
fn content_hash() -> String {
    let mut h = Sha256::new();
    for (name, text) in FILES {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..6])
}

/// Writes the embedded scripts to `<work_dir>/runtime/<hash>/{python/bootstrap.py,
/// node/bootstrap.js}` unless already there, and returns that directory (to be mounted
/// read-only at `/var/runtime`). The files are written to a temp dir and renamed into
/// place, so a concurrent or interrupted call never leaves a partial directory.
pub(crate) fn materialize(work_dir: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let parent = work_dir.join("runtime");
    let dir = parent.join(content_hash());
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&parent)?;
    let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        for (name, text) in FILES {
            let path = tmp.join(name);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p)?;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
            }
            std::fs::write(&path, text)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
    })();
    let renamed = written.and_then(|()| std::fs::rename(&tmp, &dir));
    match renamed {
        Ok(()) => Ok(dir),
        // Another process won the race: its copy is identical.
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// The program and arguments that start the built-in runtime client of `kind` inside
/// the sandbox, or `None` for custom (the zip's `/var/task/bootstrap` runs).
///
/// Python runs with `-S` (no `site` import: ~10 % of a bare start here); the client puts
/// `/var/task` and `/opt/python` first on `sys.path` itself and processes `.pth` files
/// of `/opt/python` only when there are any.
pub(crate) fn command(
    kind: ProcessKind,
    python3: &Path,
    node: &Path,
) -> Option<(PathBuf, Vec<String>)> {
    match kind {
        ProcessKind::Python3 => Some((
            python3.to_path_buf(),
            vec!["-S".into(), format!("{RUNTIME_MOUNT}/python/bootstrap.py")],
        )),
        ProcessKind::Node => Some((
            node.to_path_buf(),
            vec![format!("{RUNTIME_MOUNT}/node/bootstrap.js")],
        )),
        ProcessKind::Custom => None,
    }
}
