//! Guest fixtures built by `tests/fixtures/build.sh` into `tests/fixtures/out/`.

use std::path::PathBuf;

/// The names of every fixture component.
pub const ALL: [&str; 11] = [
    "hello", "echo", "env", "sleep", "trap", "memhog", "logger", "outbound", "js-hello",
    "py-hello", "flaky",
];

/// Path of a built fixture; panics with instructions if it was not built.
pub fn path(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/out")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "fixture {name} is not built: run tests/fixtures/build.sh (scripts/test.sh does)"
    );
    p
}

/// Bytes of a built fixture.
pub fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).expect("read fixture")
}

/// Directory of the handler fixtures of one process runtime (`python`, `node`, `custom`).
pub fn handler_dir(runtime: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/handlers")
        .join(runtime)
}

/// A zip of every file under `dir` (relative names, unix modes kept), as a user would
/// upload it.
pub fn zip_dir(dir: &std::path::Path) -> Vec<u8> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(mode & 0o777);
            w.start_file(name, opts).unwrap();
            w.write_all(&std::fs::read(&p).unwrap()).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// The zip of a handler fixture directory.
pub fn handler_zip(runtime: &str) -> Vec<u8> {
    zip_dir(&handler_dir(runtime))
}

/// A zip of several parts, as one upload: each `(path, prefix)` adds the files under the
/// directory `path` with names under `prefix` (`""` for the zip's root), or, when `path`
/// is a file, that file named `prefix` (its own name when `prefix` is `""`). Unix modes
/// are kept; symlinks are followed.
pub fn zip_dirs(parts: &[(&std::path::Path, &str)]) -> Vec<u8> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    type Writer = zip::ZipWriter<std::io::Cursor<Vec<u8>>>;
    fn add(w: &mut Writer, p: &std::path::Path, name: String) {
        let meta = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let opts = zip::write::SimpleFileOptions::default()
            .unix_permissions(meta.permissions().mode() & 0o777);
        w.start_file(name, opts).expect("zip entry");
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        w.write_all(&data).expect("zip write");
    }
    let mut w: Writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for &(root, prefix) in parts {
        let prefix = prefix.trim_matches('/');
        if root.is_file() {
            let name = if prefix.is_empty() {
                root.file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned()
            } else {
                prefix.to_string()
            };
            add(&mut w, root, name);
            continue;
        }
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&d)
                .unwrap_or_else(|e| panic!("read {}: {e}", d.display()))
                .map(|e| e.expect("directory entry").path())
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let rel = p
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy();
                let name = if prefix.is_empty() {
                    rel.into_owned()
                } else {
                    format!("{prefix}/{rel}")
                };
                add(&mut w, &p, name);
            }
        }
    }
    w.finish().expect("finish zip").into_inner()
}
