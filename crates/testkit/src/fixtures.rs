//! Guest fixtures built by `tests/fixtures/build.sh` into `tests/fixtures/out/`.

use std::path::PathBuf;

/// The names of every fixture component.
pub const ALL: [&str; 10] =
    ["hello", "echo", "env", "sleep", "trap", "memhog", "logger", "outbound", "js-hello", "py-hello"];

/// Path of a built fixture; panics with instructions if it was not built.
pub fn path(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/out").join(format!("{name}.wasm"));
    assert!(p.exists(), "fixture {name} is not built: run tests/fixtures/build.sh (scripts/test.sh does)");
    p
}

/// Bytes of a built fixture.
pub fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).expect("read fixture")
}
