//! Numeric limits with their documented defaults (see `docs/limits.md`).

/// Largest accepted wasm component upload (100 MiB).
pub const MAX_WASM_CODE_BYTES: usize = 100 * 1024 * 1024;
/// Largest synchronous invocation payload (6 MiB).
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Largest synchronous response of a function (6 MiB), streamed or not.
pub const MAX_SYNC_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Largest JSON body accepted by control-plane endpoints (1 MiB).
pub const MAX_API_BODY_BYTES: usize = 1024 * 1024;
/// Default memory of a function in MiB.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Smallest memory of a wasm function in MiB.
pub const MIN_WASM_MEMORY_MB: u32 = 16;
/// Largest memory of a wasm function in MiB.
pub const MAX_WASM_MEMORY_MB: u32 = 4096;
/// Smallest memory of a process function (python3, node, custom) in MiB.
pub const MIN_PROCESS_MEMORY_MB: u32 = 64;
/// Largest memory of a process function in MiB.
pub const MAX_PROCESS_MEMORY_MB: u32 = 10_240;
/// Largest zipped code upload of a process function (50 MiB).
pub const MAX_ZIP_CODE_BYTES: usize = 50 * 1024 * 1024;
/// Largest unzipped size of a process function's code (250 MiB).
pub const MAX_UNZIPPED_CODE_BYTES: u64 = 250 * 1024 * 1024;
/// Largest number of entries in a code zip.
pub const MAX_ZIP_ENTRIES: usize = 20_000;
/// Largest handler string in bytes.
pub const MAX_HANDLER_BYTES: usize = 128;
/// Default timeout of an invocation in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Largest timeout of an invocation in milliseconds (900 s).
pub const MAX_TIMEOUT_MS: u64 = 900_000;
/// Largest total size of a function's environment (names + values), in bytes.
pub const MAX_ENV_BYTES: usize = 4096;
/// Largest number of allowed outbound hosts per function.
pub const MAX_ALLOWED_HOSTS: usize = 64;
/// Largest number of tags per function.
pub const MAX_TAGS: usize = 32;
/// Largest description length in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// Largest captured log output of one invocation (1 MiB); further output is dropped.
pub const MAX_LOG_BYTES_PER_INVOCATION: usize = 1024 * 1024;
/// Largest number of records or log lines one list request returns.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// Default age after which an app's log lines and invocation records are deleted (7 days).
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 7;
/// Largest `log_retention_days` of an app (365 days).
pub const MAX_LOG_RETENTION_DAYS: u32 = 365;
/// Default size of an app's stored log messages past which the oldest lines are deleted
/// (1 GiB, counted as the sum of message bytes).
pub const DEFAULT_LOG_RETENTION_MB: u32 = 1024;
/// Largest `log_retention_mb` of an app (1 TiB).
pub const MAX_LOG_RETENTION_MB: u32 = 1 << 20;
/// Lines one follow (SSE) query reads from the store at a time.
pub const LOG_FOLLOW_BATCH: u32 = 500;
/// Largest secret value (32 KiB).
pub const MAX_SECRET_VALUE_BYTES: usize = 32 * 1024;
/// Largest secret name in bytes (names match `[A-Za-z_][A-Za-z0-9_-]{0,127}`).
pub const MAX_SECRET_NAME_BYTES: usize = 128;
/// Largest number of secrets per app.
pub const MAX_SECRETS_PER_APP: u32 = 100;
/// Largest number of functions in one app.
pub const MAX_FUNCTIONS_PER_APP: usize = 1000;
/// Largest number of secret references (env var → secret) per function.
pub const MAX_SECRET_REFS: usize = 64;
