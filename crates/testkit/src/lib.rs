//! Test-only helpers shared by Arcus's test suites: guest fixtures, an in-process engine
//! on a temporary data dir, and a real `arcus` node process. Never a runtime dependency.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod engine;
pub mod fixtures;
pub mod node;
pub mod proxy;

/// The `Max Memory Used: N MB` figure of a Lambda-style `REPORT` line; panics with the
/// line if it has none.
pub fn report_max_memory_mb(report: &str) -> u64 {
    report
        .split_once("Max Memory Used: ")
        .and_then(|(_, rest)| rest.split(" MB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Max Memory Used in {report:?}"))
}
