//! Replays the committed corpora of the `apigw_event` and `apigw_response` fuzz
//! targets (`fuzz/corpus/<target>/`) through the bodies the fuzzer runs, on the stable
//! toolchain, so every input a fuzz run kept stays a regression test.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

/// The inputs of one target's corpus, sorted; fails if the corpus is missing or tiny.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 5,
        "corpus {} has only {} inputs",
        dir.display(),
        paths.len()
    );
    paths
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect()
}

#[test]
fn apigw_event_corpus_replays_without_a_finding() {
    for (path, data) in corpus("apigw_event") {
        eprintln!("replaying {}", path.display());
        arcus_engine::apigw::fuzz_request_event(&data);
    }
}

#[test]
fn apigw_response_corpus_replays_without_a_finding() {
    for (path, data) in corpus("apigw_response") {
        eprintln!("replaying {}", path.display());
        arcus_engine::apigw::fuzz_result_response(&data);
    }
}
