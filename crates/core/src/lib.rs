//! Core types of Arcus: names and qualifiers, function specs, API request and response
//! types, error codes, invocation records, and the traits at the platform's open points
//! (`Store`, `BlobStore`). This crate does no I/O; every other crate depends on it.

pub mod access_keys;
pub mod api;
pub mod audit;
pub mod error;
pub mod events;
pub mod limits;
pub mod model;
pub mod names;
pub mod record;
pub mod scaling;
pub mod secret;
pub mod stats;
pub mod store;
pub mod tokens;
pub mod trace;
pub mod trigger;

pub use error::{Error, ErrorCode, Result};
