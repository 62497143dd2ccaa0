//! Router tests: the real gateway router over a real engine (SQLite store, local blob
//! store and wasm runtime on a temp dir), driven with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "router/common.rs"]
mod common;

#[path = "router/api.rs"]
mod api;
#[path = "router/audit.rs"]
mod audit;
#[path = "router/auth_limits.rs"]
mod auth_limits;
#[path = "router/errors.rs"]
mod errors;
#[path = "router/invoke.rs"]
mod invoke;
#[path = "router/logs.rs"]
mod logs;
#[path = "router/rate_limits.rs"]
mod rate_limits;
#[path = "router/secrets.rs"]
mod secrets;
#[path = "router/tokens.rs"]
mod tokens;
#[path = "router/triggers.rs"]
mod triggers;
