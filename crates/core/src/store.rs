//! The persistence traits. Implementations live in `arcus-store` (SQLite now, PostgreSQL
//! later); callers only see these traits, picked by config.

use crate::Result;
use crate::model::{Alias, AliasTarget, App, CodeRef, Function, Timestamp, Version};
use crate::record::{InvocationRecord, LogLine};
use async_trait::async_trait;

/// Filters for listing invocation records and log lines of one function.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    /// Only this invocation.
    pub invocation_id: Option<String>,
    /// At most this many rows, newest first.
    pub limit: u32,
}

/// Metadata store: apps, functions, versions, aliases, records, logs, settings.
///
/// Every method is atomic: a failed call leaves the store as it was. Errors use the
/// `ErrorCode`s of `arcus-core` (`app_not_found`, `already_exists`, `conflict`, …) so
/// callers can pass them to clients unchanged.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an app; `already_exists` if the name is taken.
    async fn create_app(&self, app: &App) -> Result<()>;
    /// Replaces an app's description and quotas; `app_not_found` if absent.
    async fn update_app(&self, app: &App) -> Result<()>;
    /// Reads an app; `app_not_found` if absent.
    async fn get_app(&self, name: &str) -> Result<App>;
    /// Lists apps by name.
    async fn list_apps(&self) -> Result<Vec<App>>;
    /// Deletes an app. With functions in it: `conflict` unless `force`, which deletes them too.
    async fn delete_app(&self, name: &str, force: bool) -> Result<()>;

    /// Creates a function; `app_not_found`, `already_exists`.
    async fn create_function(&self, function: &Function) -> Result<()>;
    /// Reads a function; `app_not_found`, `function_not_found`.
    async fn get_function(&self, app: &str, name: &str) -> Result<Function>;
    /// Lists an app's functions by name; `app_not_found`.
    async fn list_functions(&self, app: &str) -> Result<Vec<Function>>;
    /// Replaces a function's draft config, metadata, code and `updated_at`.
    async fn update_function(&self, function: &Function) -> Result<()>;
    /// Deletes a function with its versions and aliases.
    async fn delete_function(&self, app: &str, name: &str) -> Result<()>;

    /// Snapshots the draft as the next version number; `conflict` when it has no code.
    async fn publish_version(
        &self,
        app: &str,
        function: &str,
        description: &str,
        now: Timestamp,
    ) -> Result<Version>;
    /// Lists versions, oldest first.
    async fn list_versions(&self, app: &str, function: &str) -> Result<Vec<Version>>;
    /// Reads one version; `version_not_found`.
    async fn get_version(&self, app: &str, function: &str, version: u32) -> Result<Version>;
    /// Deletes a version; `conflict` while an alias (or its canary) points at it.
    async fn delete_version(&self, app: &str, function: &str, version: u32) -> Result<()>;

    /// Creates or moves an alias, remembering its previous target for rollback;
    /// `version_not_found` if a target version does not exist.
    async fn put_alias(
        &self,
        app: &str,
        function: &str,
        name: &str,
        target: AliasTarget,
        now: Timestamp,
    ) -> Result<Alias>;
    /// Reads an alias; `alias_not_found`.
    async fn get_alias(&self, app: &str, function: &str, name: &str) -> Result<Alias>;
    /// Lists a function's aliases by name.
    async fn list_aliases(&self, app: &str, function: &str) -> Result<Vec<Alias>>;
    /// Deletes an alias and its history.
    async fn delete_alias(&self, app: &str, function: &str, name: &str) -> Result<()>;
    /// Points an alias back at its previous target; `conflict` if it has none.
    async fn rollback_alias(
        &self,
        app: &str,
        function: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<Alias>;

    /// Appends invocation records (a batch, one transaction).
    async fn insert_invocations(&self, records: &[InvocationRecord]) -> Result<()>;
    /// Appends log lines (a batch, one transaction).
    async fn insert_logs(&self, lines: &[LogLine]) -> Result<()>;
    /// Lists a function's invocation records, newest first.
    async fn list_invocations(
        &self,
        app: &str,
        function: &str,
        query: &RecordQuery,
    ) -> Result<Vec<InvocationRecord>>;
    /// Lists a function's log lines, newest first.
    async fn list_logs(
        &self,
        app: &str,
        function: &str,
        query: &RecordQuery,
    ) -> Result<Vec<LogLine>>;

    /// Reads a node setting (e.g. the admin token hash).
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Writes a node setting.
    async fn put_setting(&self, key: &str, value: &str) -> Result<()>;
}

/// Content-addressed storage of code blobs, keyed by hex sha256.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores bytes (idempotent) and returns their address.
    async fn put(&self, bytes: &[u8]) -> Result<CodeRef>;
    /// Reads a blob; `not_found` if absent.
    async fn get(&self, sha256: &str) -> Result<Vec<u8>>;
    /// Whether a blob exists.
    async fn contains(&self, sha256: &str) -> Result<bool>;
}
