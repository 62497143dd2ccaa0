//! Symlinks in an uploaded zip: a link may stay only if it resolves inside the code root,
//! checked lexically per entry and then on the extracted tree (chains of links).

use crate::PrepareError;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Most links followed while resolving one path (Linux's `MAXSYMLINKS`).
const MAX_HOPS: usize = 40;

/// Checks the target of the link entry `rel` lexically: relative, UTF-8, no NUL, and
/// never above the root when applied to the link's directory. Returns the target.
pub(super) fn check_target(rel: &Path, raw: &[u8]) -> Result<PathBuf, PrepareError> {
    let shown = rel.display();
    let bad = |why: String| PrepareError::InvalidCode(format!("symlink {shown} {why}"));
    let target =
        std::str::from_utf8(raw).map_err(|_| bad("has a target that is not valid UTF-8".into()))?;
    if target.is_empty() || target.contains('\0') {
        return Err(bad("has an empty or invalid target".into()));
    }
    if target.starts_with('/') {
        return Err(bad(format!("points to the absolute path {target:?}")));
    }
    let mut depth: usize = rel.components().count().saturating_sub(1);
    for c in Path::new(target).components() {
        match c {
            Component::ParentDir => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad(format!("points outside the code root ({target:?})")))?;
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad(format!("points to the absolute path {target:?}")));
            }
        }
    }
    Ok(PathBuf::from(target))
}

/// Resolves `root/rel` as the kernel would (following links found on disk) and fails if
/// any step leaves `root`. A missing component ends the walk: nothing past it resolves.
pub(super) fn check_resolves_inside(root: &Path, rel: &Path) -> Result<(), PrepareError> {
    let out = || {
        PrepareError::InvalidCode(format!(
            "symlink {} resolves outside the code root",
            rel.display()
        ))
    };
    let mut queue: VecDeque<OsString> = normal_parts(rel);
    let mut cur: Vec<OsString> = Vec::new();
    let mut hops = 0usize;
    while let Some(part) = queue.pop_front() {
        if part == ".." {
            cur.pop().ok_or_else(out)?;
            continue;
        }
        if part == "." {
            continue;
        }
        cur.push(part);
        let path: PathBuf = cur.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        let Ok(md) = path.symlink_metadata() else {
            return Ok(());
        };
        if !md.file_type().is_symlink() {
            continue;
        }
        hops += 1;
        if hops > MAX_HOPS {
            return Err(PrepareError::InvalidCode(format!(
                "symlink {} has too many levels of links",
                rel.display()
            )));
        }
        let target = std::fs::read_link(&path)
            .map_err(|e| PrepareError::Internal(format!("{}: {e}", path.display())))?;
        if target.is_absolute() {
            return Err(out());
        }
        cur.pop();
        for p in normal_parts(&target).into_iter().rev() {
            queue.push_front(p);
        }
    }
    Ok(())
}

/// The components of a relative path as names, `.` and `..`.
fn normal_parts(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir => Some(".".into()),
            Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical() {
        assert!(check_target(Path::new("a"), b"b").is_ok());
        assert!(check_target(Path::new("d/a"), b"../b").is_ok());
        assert!(check_target(Path::new("a"), b"../x").is_err());
        assert!(check_target(Path::new("d/a"), b"../../x").is_err());
        assert!(check_target(Path::new("a"), b"/etc/passwd").is_err());
        assert!(check_target(Path::new("a"), b"").is_err());
        assert!(check_target(Path::new("a"), b"x/../../y").is_err());
    }

    #[test]
    fn chains_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::os::unix::fs::symlink(".", root.join("l1")).unwrap();
        std::os::unix::fs::symlink("l1/..", root.join("l2")).unwrap();
        std::os::unix::fs::symlink("l1/sub", root.join("l3")).unwrap();
        std::os::unix::fs::symlink("l4", root.join("l4")).unwrap();
        assert!(check_resolves_inside(root, Path::new("l1")).is_ok());
        assert!(check_resolves_inside(root, Path::new("l2")).is_err());
        assert!(check_resolves_inside(root, Path::new("l3")).is_ok());
        assert!(check_resolves_inside(root, Path::new("l4")).is_err());
    }
}
