//! Replays the committed corpus of the `unzip` fuzz target (`fuzz/corpus/unzip/`)
//! through the same body the fuzzer runs, on the stable toolchain: every input a fuzz
//! run found interesting (and every crash once fixed) stays a regression test.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

#[test]
fn unzip_corpus_replays_without_a_finding() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/unzip");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 5,
        "corpus {} has only {} inputs",
        dir.display(),
        inputs.len()
    );
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        eprintln!("replaying {}", path.display());
        arcus_runtime_process::package::fuzz_unpack(&data);
    }
}
