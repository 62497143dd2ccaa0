//! Checks at upload that unpacked code has what its runtime will start: the handler's
//! module (python3), the handler's file (node) or an executable `bootstrap` (custom).

use crate::{PrepareError, ProcessKind};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Checks that `dir` (unpacked code) holds the entry point of `handler` for `kind`.
///
/// - python3: `handler` = `module.function`; the module may be dotted or use `/`
///   (`pkg.mod.fn` → `pkg/mod.py` or `pkg/mod/__init__.py`).
/// - node: `handler` = `file.export`; the file may be a path (`src/app.handler` →
///   `src/app.js`, `.mjs` or `.cjs`).
/// - custom: `bootstrap` at the root, a regular file (or a link to one inside the code)
///   with an execute bit; `handler` is ignored.
///
/// Fails with [`PrepareError::InvalidCode`] naming what is missing.
pub fn check_entrypoint(kind: ProcessKind, handler: &str, dir: &Path) -> Result<(), PrepareError> {
    match kind {
        ProcessKind::Python3 => check_python(handler, dir),
        ProcessKind::Node => check_node(handler, dir),
        ProcessKind::Custom => check_bootstrap(dir),
    }
}

fn invalid(msg: String) -> PrepareError {
    PrepareError::InvalidCode(msg)
}

/// Splits `module.function`-style handlers at the last `.`, both sides non-empty.
fn split_last_dot(handler: &str) -> Option<(&str, &str)> {
    let (m, f) = handler.rsplit_once('.')?;
    (!m.is_empty() && !f.is_empty()).then_some((m, f))
}

/// Whether every `/`-separated part is a plain name (no `..`, no empty parts).
fn plain_parts(path: &str) -> bool {
    path.split('/')
        .all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains('\\'))
}

fn is_file(p: &Path) -> bool {
    p.metadata().is_ok_and(|m| m.is_file())
}

fn check_python(handler: &str, dir: &Path) -> Result<(), PrepareError> {
    let (module, _function) = split_last_dot(handler).ok_or_else(|| {
        invalid(format!(
            "bad handler '{handler}': expected 'module.function' (e.g. 'app.handler')"
        ))
    })?;
    let rel = module.replace('.', "/");
    if !plain_parts(&rel) {
        return Err(invalid(format!(
            "bad handler '{handler}': invalid module name"
        )));
    }
    let candidates = [
        format!("{rel}.py"),
        format!("{rel}/__init__.py"),
        format!("{rel}.pyc"),
    ];
    if candidates.iter().any(|c| is_file(&dir.join(c))) {
        return Ok(());
    }
    Err(invalid(format!(
        "handler module {rel}.py not found in the zip (handler '{handler}'; \
         Lambda would report: Unable to import module '{module}': No module named '{module}')"
    )))
}

fn check_node(handler: &str, dir: &Path) -> Result<(), PrepareError> {
    let (dir_part, base) = match handler.rsplit_once('/') {
        Some((d, b)) => (Some(d), b),
        None => (None, handler),
    };
    let bad = || {
        invalid(format!(
            "bad handler '{handler}': expected 'file.export' (e.g. 'index.handler')"
        ))
    };
    let (file, export) = base.split_once('.').ok_or_else(bad)?;
    if file.is_empty() || export.is_empty() || export.split('.').any(str::is_empty) {
        return Err(bad());
    }
    let rel = match dir_part {
        Some(d) => format!("{d}/{file}"),
        None => file.to_string(),
    };
    if !plain_parts(&rel) {
        return Err(bad());
    }
    let candidates: Vec<PathBuf> = ["js", "mjs", "cjs"]
        .iter()
        .map(|ext| dir.join(format!("{rel}.{ext}")))
        .collect();
    if candidates.iter().any(|c| is_file(c)) {
        return Ok(());
    }
    Err(invalid(format!(
        "handler file {rel}.js (or .mjs, .cjs) not found in the zip (handler '{handler}')"
    )))
}

fn check_bootstrap(dir: &Path) -> Result<(), PrepareError> {
    let path = dir.join("bootstrap");
    let Ok(md) = path.metadata() else {
        return Err(invalid(
            "custom runtime: no 'bootstrap' file at the root of the zip".into(),
        ));
    };
    if !md.is_file() {
        return Err(invalid(
            "custom runtime: 'bootstrap' at the root of the zip is not a regular file".into(),
        ));
    }
    let mode = md.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(invalid(format!(
            "custom runtime: 'bootstrap' is not executable (mode {:o}); set its execute \
             bit before zipping (chmod 755 bootstrap; zips made on Windows carry no \
             unix mode)",
            mode & 0o7777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, rel: &str, mode: u32) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, "x").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn python() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "app.py", 0o644);
        write(d.path(), "pkg/mod.py", 0o644);
        write(d.path(), "pkg2/mod/__init__.py", 0o644);
        let ok = |h| check_entrypoint(ProcessKind::Python3, h, d.path());
        assert!(ok("app.handler").is_ok());
        assert!(ok("pkg.mod.handler").is_ok());
        assert!(ok("pkg/mod.handler").is_ok());
        assert!(ok("pkg2.mod.handler").is_ok());
        assert!(ok("handler").is_err());
        assert!(ok("app.").is_err());
        let e = ok("missing.handler").unwrap_err().to_string();
        assert!(e.contains("missing.py not found"), "{e}");
        assert!(ok("...x").is_err());
    }

    #[test]
    fn node() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "index.js", 0o644);
        write(d.path(), "src/app.mjs", 0o644);
        write(d.path(), "lib/x.cjs", 0o644);
        let ok = |h| check_entrypoint(ProcessKind::Node, h, d.path());
        assert!(ok("index.handler").is_ok());
        assert!(ok("src/app.handler").is_ok());
        assert!(ok("lib/x.a.b").is_ok());
        assert!(ok("index").is_err());
        assert!(ok("../index.handler").is_err());
        let e = ok("nope.handler").unwrap_err().to_string();
        assert!(e.contains("nope.js"), "{e}");
    }

    #[test]
    fn custom() {
        let d = tempfile::tempdir().unwrap();
        let r = check_entrypoint(ProcessKind::Custom, "", d.path());
        assert!(r.unwrap_err().to_string().contains("no 'bootstrap'"));
        write(d.path(), "bootstrap", 0o644);
        let r = check_entrypoint(ProcessKind::Custom, "", d.path());
        assert!(r.unwrap_err().to_string().contains("not executable"));
        fs::set_permissions(
            d.path().join("bootstrap"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert!(check_entrypoint(ProcessKind::Custom, "", d.path()).is_ok());
    }
}
