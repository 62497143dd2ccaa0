//! The persistence traits. Implementations live in `arcus-store` (SQLite now, PostgreSQL
//! later); callers only see these traits, picked by config.

use crate::Result;
use crate::access_keys::{AccessKeyView, StoredAccessKey};
use crate::audit::{AuditEntry, AuditQuery};
use crate::events::{AttemptResult, Event, EventStatus, NewEvent, QueueDepth};
use crate::model::{Alias, AliasTarget, App, CodeRef, Function, Timestamp, Version};
use crate::record::{InvocationRecord, LogLine, LogStream, RecordedInvocation};
use crate::secret::SealedSecret;
use crate::stats::{Cursor, InvocationQuery, Page, Resolution, RollupQuery, RollupRow};
use crate::tokens::{StoredToken, TokenView};
use crate::trigger::Trigger;
use async_trait::async_trait;

/// Filters for listing invocation records and log lines of one function.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    /// Only this invocation.
    pub invocation_id: Option<String>,
    /// At most this many rows, newest first.
    pub limit: u32,
}

/// Filters for listing log lines of an app (or one of its functions).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only this function.
    pub function: Option<String>,
    /// Only this invocation.
    pub invocation_id: Option<String>,
    /// Only this stream.
    pub stream: Option<LogStream>,
    /// Only lines whose message contains this text (case-sensitive substring).
    pub text: Option<String>,
    /// Captured at or after.
    pub since: Option<Timestamp>,
    /// Captured before.
    pub until: Option<Timestamp>,
    /// Continue after this page (a `next_cursor` of an earlier answer; newest-first
    /// listings only).
    pub cursor: Option<Cursor>,
    /// At most this many (0 = the store's default).
    pub limit: u32,
}

/// What [`Store::tail_logs`] read: matching lines in write order, and how far it looked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogTail {
    /// Lines with a seq above the one asked for, oldest (lowest seq) first.
    pub lines: Vec<LogLine>,
    /// Every stored line up to this seq has been looked at: the next read continues
    /// after it. Never below the seq asked for.
    pub scanned_to: u64,
}

/// A function with async events that may start now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DueFunction {
    /// The function's id (events of a deleted and recreated function stay apart).
    pub function_id: String,
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
}

/// Filters for listing a function's async events.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events in this status.
    pub status: Option<EventStatus>,
    /// At most this many, newest first.
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
    /// Deletes a function with its versions and aliases. With async events still to
    /// run: `conflict` unless `force`, which marks them cancelled.
    async fn delete_function(&self, app: &str, name: &str, force: bool) -> Result<()>;

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

    /// Appends invocation records with their log lines (a batch, one transaction),
    /// and adds them to the rollups. Each invocation's lines (with its derived platform
    /// lines) get consecutive seqs, in batch order. A record whose id is stored already
    /// is skipped with its lines, so a retried batch neither fails nor counts twice.
    async fn insert_invocations(&self, batch: &[RecordedInvocation]) -> Result<()>;
    /// Appends log lines that belong to no recorded invocation (a batch, one
    /// transaction).
    async fn insert_logs(&self, lines: &[LogLine]) -> Result<()>;
    /// Lists an app's invocation records matching `query`, newest first, one page;
    /// `app_not_found` / `function_not_found` when the filter names neither.
    async fn query_invocations(
        &self,
        app: &str,
        query: &InvocationQuery,
    ) -> Result<Page<InvocationRecord>>;
    /// Lists a function's invocation records, newest first.
    async fn list_invocations(
        &self,
        app: &str,
        function: &str,
        query: &RecordQuery,
    ) -> Result<Vec<InvocationRecord>> {
        let q = InvocationQuery {
            id: query.invocation_id.clone(),
            function: Some(function.to_string()),
            limit: query.limit,
            ..InvocationQuery::default()
        };
        Ok(self.query_invocations(app, &q).await?.items)
    }
    /// Reads an app's rollup rows (kept as records are inserted), oldest first.
    async fn rollups(&self, app: &str, query: &RollupQuery) -> Result<Vec<RollupRow>>;
    /// Reads one invocation record by id; `not_found`.
    async fn get_invocation(&self, id: &str) -> Result<InvocationRecord>;
    /// Lists an app's log lines matching `query`, newest first (by capture time, then
    /// seq), one page; `app_not_found` / `function_not_found` when the filter names
    /// neither.
    async fn query_logs(&self, app: &str, query: &LogQuery) -> Result<Page<LogLine>>;
    /// Lists a function's log lines, newest first.
    async fn list_logs(
        &self,
        app: &str,
        function: &str,
        query: &RecordQuery,
    ) -> Result<Vec<LogLine>> {
        let q = LogQuery {
            function: Some(function.to_string()),
            invocation_id: query.invocation_id.clone(),
            limit: query.limit,
            ..LogQuery::default()
        };
        Ok(self.query_logs(app, &q).await?.items)
    }
    /// Reads an app's lines stored after seq `after` that match `query` (its `cursor`
    /// is ignored), in write order: at most `limit` lines, looking at a bounded range
    /// of seqs per call so each call is cheap (continue from `scanned_to`). Seqs are
    /// never reused, so a follower that resumes after the last seq it saw misses
    /// nothing.
    async fn tail_logs(
        &self,
        app: &str,
        query: &LogQuery,
        after: u64,
        limit: u32,
    ) -> Result<LogTail>;
    /// The highest seq stored so far (0 when no line ever was).
    async fn last_log_seq(&self) -> Result<u64>;
    /// Bytes of log messages an app has stored (what size retention counts: the
    /// captured lines, not the platform lines derived from records).
    async fn log_bytes(&self, app: &str) -> Result<u64>;
    /// Deletes up to `limit` of an app's oldest log lines (one short transaction): first
    /// the ones captured before `older_than`, then, while its messages take more than
    /// `max_bytes`, the oldest others. Returns how many went; call again until 0.
    async fn purge_logs(
        &self,
        app: &str,
        older_than: Timestamp,
        max_bytes: u64,
        limit: u32,
    ) -> Result<u64>;
    /// Deletes up to `limit` of an app's invocation records started before `older_than`
    /// (one short transaction). Returns how many went; call again until 0.
    async fn purge_invocations(&self, app: &str, older_than: Timestamp, limit: u32) -> Result<u64>;
    /// Deletes up to `limit` rollups of resolution `res` (every app) whose bucket began
    /// before `older_than`. Returns how many went; call again until 0.
    async fn purge_rollups(
        &self,
        res: Resolution,
        older_than: Timestamp,
        limit: u32,
    ) -> Result<u64>;

    /// Stores async events in one transaction (durable when it returns). Per event: the
    /// id it is known by — an earlier event's id when its idempotency key was used on
    /// the same function within 24 h — or `function_not_found`.
    async fn enqueue_events(&self, events: &[NewEvent]) -> Result<Vec<Result<String>>>;
    /// Unfinished events (queued, failed with a retry scheduled, running) by function
    /// and status, with the oldest one's acceptance time: the queue metrics.
    async fn queue_depths(&self) -> Result<Vec<QueueDepth>>;
    /// Functions with events that may start at `now`, and the next later due time.
    async fn due_functions(&self, now: Timestamp) -> Result<(Vec<DueFunction>, Option<Timestamp>)>;
    /// Leases up to `limit` due events of a function (oldest first) to `owner` until
    /// `lease_until`, counting an attempt each; a running event whose lease ended is due
    /// again. With `ordered`, only the oldest unfinished event, and only if it is due.
    /// (PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`.)
    #[allow(clippy::too_many_arguments)]
    async fn claim_events(
        &self,
        function_id: &str,
        limit: u32,
        ordered: bool,
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Event>>;
    /// Records how attempts ended (a batch, one transaction) and enqueues their
    /// follow-ups; results of attempts that no longer hold their event are ignored.
    async fn finish_attempts(&self, results: &[AttemptResult]) -> Result<()>;
    /// Reads an event; `not_found`.
    async fn get_event(&self, id: &str) -> Result<Event>;
    /// A function's events, newest first.
    async fn list_events(
        &self,
        app: &str,
        function: &str,
        query: &EventQuery,
    ) -> Result<Vec<Event>>;
    /// Queues dead-lettered events again (one by id, or all); returns how many.
    async fn redrive_events(
        &self,
        app: &str,
        function: &str,
        id: Option<&str>,
        now: Timestamp,
    ) -> Result<u64>;
    /// Deletes finished events: succeeded and cancelled ones last changed before
    /// `finished_before`, dead-lettered ones before `dead_before`; returns how many.
    async fn purge_events(&self, finished_before: Timestamp, dead_before: Timestamp)
    -> Result<u64>;
    /// Ends every lease `owner` holds, so its running events are due at once (a node
    /// that restarted calls this with its own id).
    async fn release_leases(&self, owner: &str, now: Timestamp) -> Result<u64>;

    /// Reads a node setting (e.g. the admin token hash).
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Writes a node setting.
    async fn put_setting(&self, key: &str, value: &str) -> Result<()>;

    // --- Triggers (function-level; deleted with their function or app) ---

    /// Creates a trigger (config stored with its secrets); `app_not_found`,
    /// `function_not_found`, `already_exists` (same function and name).
    async fn create_trigger(&self, trigger: &Trigger) -> Result<()>;
    /// Reads a trigger by function and name; `app_not_found`, `function_not_found`,
    /// `not_found`.
    async fn get_trigger(&self, app: &str, function: &str, name: &str) -> Result<Trigger>;
    /// Reads a trigger by id; `not_found`.
    async fn get_trigger_by_id(&self, id: &str) -> Result<Trigger>;
    /// Lists a function's triggers by name; `app_not_found`, `function_not_found`.
    async fn list_triggers(&self, app: &str, function: &str) -> Result<Vec<Trigger>>;
    /// Lists every trigger of every function (what a node's trigger manager runs).
    async fn list_all_triggers(&self) -> Result<Vec<Trigger>>;
    /// Replaces a trigger's qualifier, enabled flag, config and `updated_at` (by id);
    /// `not_found`.
    async fn update_trigger(&self, trigger: &Trigger) -> Result<()>;
    /// Deletes a trigger and its cron state; `app_not_found`, `function_not_found`,
    /// `not_found`.
    async fn delete_trigger(&self, app: &str, function: &str, name: &str) -> Result<()>;
    /// Records `tick` as the last fired tick of a cron trigger if it is later than the
    /// recorded one; true only for the first caller per tick (across nodes and
    /// restarts), so each tick fires once.
    async fn claim_cron_tick(&self, trigger_id: &str, tick: Timestamp) -> Result<bool>;
    /// The last tick claimed for a cron trigger.
    async fn last_cron_tick(&self, trigger_id: &str) -> Result<Option<Timestamp>>;

    // --- Secrets (app-level, sealed by the engine; deleted with their app) ---

    /// Creates or replaces a sealed secret (a replacement keeps `created_at`); returns
    /// true when it was created. `app_not_found`; `conflict` when creating one more
    /// would make the app hold more than `max_per_app`.
    async fn put_secret(&self, secret: &SealedSecret, max_per_app: u32) -> Result<bool>;
    /// Reads a sealed secret; `app_not_found`, `secret_not_found`.
    async fn get_secret(&self, app: &str, name: &str) -> Result<SealedSecret>;
    /// An app's sealed secrets by name; `app_not_found`.
    async fn list_secrets(&self, app: &str) -> Result<Vec<SealedSecret>>;
    /// Deletes a secret; `app_not_found`, `secret_not_found`.
    async fn delete_secret(&self, app: &str, name: &str) -> Result<()>;

    // --- Tokens (revoked with any app they have a scope in) ---

    /// Stores a new token; `already_exists` if its id is taken, `conflict` if one of the
    /// apps it has a scope in already has `max_per_app` tokens.
    async fn create_token(&self, token: &StoredToken, max_per_app: usize) -> Result<()>;
    /// Reads a token by id (with its secret's hash); `not_found`.
    async fn get_token(&self, id: &str) -> Result<StoredToken>;
    /// Lists every token, oldest first (never their hashes).
    async fn list_tokens(&self) -> Result<Vec<TokenView>>;
    /// Deletes (revokes) a token; `not_found`.
    async fn delete_token(&self, id: &str) -> Result<()>;
    /// Records that a token was used at `at` (a no-op for a deleted token).
    async fn touch_token(&self, id: &str, at: Timestamp) -> Result<()>;

    // --- Access keys (deleted with their app) ---

    /// Stores a new access key; `app_not_found`, `already_exists` if its id is taken,
    /// `conflict` if its app already has `max_per_app` keys.
    async fn create_access_key(&self, key: &StoredAccessKey, max_per_app: usize) -> Result<()>;
    /// Reads an access key by id (with its sealed secret); `not_found`.
    async fn get_access_key(&self, id: &str) -> Result<StoredAccessKey>;
    /// Lists access keys (of one app, or all), oldest first, never their secrets;
    /// `app_not_found` for a named app that does not exist.
    async fn list_access_keys(&self, app: Option<&str>) -> Result<Vec<AccessKeyView>>;
    /// Deletes an access key; `not_found`.
    async fn delete_access_key(&self, id: &str) -> Result<()>;
    /// Replaces an access key's sealed secret (`key_id`, `nonce`, `ciphertext`) after a
    /// secret-key rotation, keeping its view; `not_found`.
    async fn reseal_access_key(&self, key: &StoredAccessKey) -> Result<()>;

    // --- Audit log (kept past the deletion of what it names; purged by age) ---

    /// Appends an audit entry; `already_exists` if its id is taken.
    async fn insert_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Lists audit entries matching `query`, newest first (time, then insertion), one
    /// page.
    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>>;
    /// Deletes up to `limit` audit entries recorded before `older_than` (one short
    /// transaction). Returns how many went; call again until 0.
    async fn purge_audit(&self, older_than: Timestamp, limit: u32) -> Result<u64>;
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
