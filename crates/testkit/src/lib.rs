//! Test-only helpers shared by Arcus's test suites: guest fixtures, an in-process engine
//! on a temporary data dir, and a real `arcus` node process. Never a runtime dependency.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod engine;
pub mod fixtures;
pub mod node;
pub mod proxy;
