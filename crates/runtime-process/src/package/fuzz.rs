//! The body of the `unzip` fuzz target (`fuzz/fuzz_targets/unzip.rs`), shared with the
//! stable test that replays the committed corpus (`tests/fuzz_corpus.rs`).
//!
//! Properties checked on every input: [`unpack`](super::unpack) never panics; a bad
//! zip is an [`InvalidCode`](PrepareError::InvalidCode) or
//! [`TooLarge`](PrepareError::TooLarge) error (never an internal one) that leaves
//! nothing beside the destination; a good one writes exactly what its report says,
//! only under the code root, with every symlink resolving inside it.

use super::{UnpackLimits, UnpackReport, unpack};
use crate::PrepareError;
use std::fs;
use std::path::Path;

/// Limits small enough that one input runs in milliseconds.
const FUZZ_LIMITS: UnpackLimits = UnpackLimits {
    max_unzipped_bytes: 1024 * 1024,
    max_entries: 256,
};

/// Unpacks `data` into a fresh scratch dir and asserts the properties above; panics
/// (which the fuzzer reports as a crash) when one does not hold.
#[doc(hidden)]
pub fn fuzz_unpack(data: &[u8]) {
    let base = std::env::temp_dir().join(format!("arcus-fuzz-{}", uuid::Uuid::new_v4().simple()));
    if fs::create_dir(&base).is_err() {
        return; // host trouble, not a finding
    }
    let dest = base.join("code");
    let result = unpack(data, &dest, &FUZZ_LIMITS);
    let left: Vec<_> = fs::read_dir(&base)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default();
    match &result {
        Ok(report) => {
            assert_eq!(left, ["code"], "only the destination is written");
            check_tree(&dest, report);
        }
        Err(PrepareError::InvalidCode(_) | PrepareError::TooLarge(_)) => {
            assert!(left.is_empty(), "a failed unpack leaves {left:?}");
        }
        Err(e) => panic!("bad input gave a non-input error: {e:?}"),
    }
    let _ = fs::remove_dir_all(&base);
}

/// Walks the unpacked tree (never following links) and compares it with the report.
fn check_tree(root: &Path, report: &UnpackReport) {
    let canonical_root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut seen = UnpackReport::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            panic!("unpacked dir {} is unreadable", dir.display());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(md) = path.symlink_metadata() else {
                continue;
            };
            if md.file_type().is_symlink() {
                seen.symlinks += 1;
                if let Ok(real) = fs::canonicalize(&path) {
                    assert!(
                        real.starts_with(&canonical_root),
                        "{} resolves to {} outside the root",
                        path.display(),
                        real.display()
                    );
                }
            } else if md.is_dir() {
                seen.dirs += 1;
                stack.push(path);
            } else {
                seen.files += 1;
            }
        }
    }
    assert_eq!(
        (seen.files, seen.dirs, seen.symlinks),
        (report.files, report.dirs, report.symlinks),
        "the tree differs from the report"
    );
    assert!(report.bytes <= FUZZ_LIMITS.max_unzipped_bytes);
}
