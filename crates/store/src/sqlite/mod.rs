//! [`SqliteStore`]: the `Store` over one SQLite file (WAL mode).
//!
//! Write methods run in one `BEGIN IMMEDIATE` transaction (so two writers never
//! deadlock on a lock upgrade; the busy timeout queues them instead), multi-statement
//! reads in one deferred transaction (a consistent snapshot).

mod access_keys;
mod apps;
mod audit;
mod events;
mod invocations;
mod log_reads;
mod logs;
mod records;
mod retention;
mod rollups;
mod schema;
mod secrets;
mod segments;
mod tokens;
mod triggers;
mod util;
mod versions;

pub use records::DEFAULT_LIMIT as DEFAULT_RECORD_LIMIT;
pub use schema::SCHEMA_VERSION;
pub use versions::ALIAS_HISTORY_LIMIT;

use arcus_core::access_keys::{AccessKeyView, StoredAccessKey};
use arcus_core::audit::{AuditEntry, AuditQuery};
use arcus_core::events::{AttemptResult, Event, NewEvent, QueueDepth};
use arcus_core::model::{Alias, AliasTarget, App, Function, Timestamp, Version};
use arcus_core::record::{InvocationRecord, LogLine, RecordedInvocation};
use arcus_core::secret::SealedSecret;
use arcus_core::stats::{InvocationQuery, Page, Resolution, RollupQuery, RollupRow};
use arcus_core::store::{DueFunction, EventQuery, LogQuery, LogTail, Store};
use arcus_core::tokens::{StoredToken, TokenView};
use arcus_core::trigger::Trigger;
use arcus_core::{Error, Result};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::time::Duration;

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in the pool of a file database (WAL: many readers, one writer at a time).
const MAX_CONNECTIONS: u32 = 4;

/// The SQLite implementation of [`Store`].
///
/// Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its directory if missing) the database file at `path` and
    /// brings its schema up to date. WAL journal, `synchronous=NORMAL`, foreign keys on,
    /// a busy timeout and a small connection pool.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                tracing::error!(error = %e, path = %parent.display(), "store: cannot create directory");
                Error::internal(format!("cannot create the directory {}", parent.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(BUSY_TIMEOUT * 2)
            .connect_with(options)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, path = %path.display(), "store: cannot open database");
                Error::internal(format!(
                    "cannot open the metadata store at {}",
                    path.display()
                ))
            })?;
        Self::init(pool).await
    }

    /// Opens a fresh in-memory database (for tests). It lives as long as this store and
    /// its clones; it uses a single connection.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(util::db)?;
        Self::init(pool).await
    }

    async fn init(pool: SqlitePool) -> Result<Self> {
        schema::migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// The schema version of the open database (the highest applied migration).
    pub async fn schema_version(&self) -> Result<i64> {
        schema::current_version(&self.pool).await
    }

    /// Closes the pool, waiting for connections to be returned (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`).
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(util::db)
    }

    /// Starts a read transaction (a snapshot).
    async fn read(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool.begin().await.map_err(util::db)
    }
}

/// Commits a transaction, mapping failures.
async fn commit(tx: Transaction<'static, Sqlite>) -> Result<()> {
    tx.commit().await.map_err(util::db)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_app(&self, app: &App) -> Result<()> {
        let mut tx = self.write().await?;
        apps::create_app(&mut tx, app).await?;
        commit(tx).await
    }

    async fn update_app(&self, app: &App) -> Result<()> {
        let mut tx = self.write().await?;
        apps::update_app(&mut tx, app).await?;
        commit(tx).await
    }

    async fn get_app(&self, name: &str) -> Result<App> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        apps::get_app(&mut conn, name).await
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        apps::list_apps(&mut conn).await
    }

    async fn delete_app(&self, name: &str, force: bool) -> Result<()> {
        let mut tx = self.write().await?;
        apps::delete_app(&mut tx, name, force).await?;
        commit(tx).await
    }

    async fn create_function(&self, function: &Function) -> Result<()> {
        let mut tx = self.write().await?;
        apps::create_function(&mut tx, function).await?;
        commit(tx).await
    }

    async fn get_function(&self, app: &str, name: &str) -> Result<Function> {
        let mut tx = self.read().await?;
        apps::get_function(&mut tx, app, name).await
    }

    async fn list_functions(&self, app: &str) -> Result<Vec<Function>> {
        let mut tx = self.read().await?;
        apps::list_functions(&mut tx, app).await
    }

    async fn update_function(&self, function: &Function) -> Result<()> {
        let mut tx = self.write().await?;
        apps::update_function(&mut tx, function).await?;
        commit(tx).await
    }

    async fn delete_function(&self, app: &str, name: &str, force: bool) -> Result<()> {
        let mut tx = self.write().await?;
        apps::delete_function(&mut tx, app, name, force).await?;
        commit(tx).await
    }

    async fn publish_version(
        &self,
        app: &str,
        function: &str,
        description: &str,
        now: Timestamp,
    ) -> Result<Version> {
        let mut tx = self.write().await?;
        let version = versions::publish_version(&mut tx, app, function, description, now).await?;
        commit(tx).await?;
        Ok(version)
    }

    async fn list_versions(&self, app: &str, function: &str) -> Result<Vec<Version>> {
        let mut tx = self.read().await?;
        versions::list_versions(&mut tx, app, function).await
    }

    async fn get_version(&self, app: &str, function: &str, version: u32) -> Result<Version> {
        let mut tx = self.read().await?;
        versions::get_version(&mut tx, app, function, version).await
    }

    async fn delete_version(&self, app: &str, function: &str, version: u32) -> Result<()> {
        let mut tx = self.write().await?;
        versions::delete_version(&mut tx, app, function, version).await?;
        commit(tx).await
    }

    async fn put_alias(
        &self,
        app: &str,
        function: &str,
        name: &str,
        target: AliasTarget,
        now: Timestamp,
    ) -> Result<Alias> {
        let mut tx = self.write().await?;
        let alias = versions::put_alias(&mut tx, app, function, name, target, now).await?;
        commit(tx).await?;
        Ok(alias)
    }

    async fn get_alias(&self, app: &str, function: &str, name: &str) -> Result<Alias> {
        let mut tx = self.read().await?;
        versions::get_alias(&mut tx, app, function, name).await
    }

    async fn list_aliases(&self, app: &str, function: &str) -> Result<Vec<Alias>> {
        let mut tx = self.read().await?;
        versions::list_aliases(&mut tx, app, function).await
    }

    async fn delete_alias(&self, app: &str, function: &str, name: &str) -> Result<()> {
        let mut tx = self.write().await?;
        versions::delete_alias(&mut tx, app, function, name).await?;
        commit(tx).await
    }

    async fn rollback_alias(
        &self,
        app: &str,
        function: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<Alias> {
        let mut tx = self.write().await?;
        let alias = versions::rollback_alias(&mut tx, app, function, name, now).await?;
        commit(tx).await?;
        Ok(alias)
    }

    async fn insert_invocations(&self, batch: &[RecordedInvocation]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        invocations::insert(&mut tx, batch).await?;
        commit(tx).await
    }

    async fn insert_logs(&self, lines: &[LogLine]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        logs::insert_loose(&mut tx, lines).await?;
        commit(tx).await
    }

    async fn query_invocations(
        &self,
        app: &str,
        query: &InvocationQuery,
    ) -> Result<Page<InvocationRecord>> {
        let mut tx = self.read().await?;
        invocations::query(&mut tx, app, query).await
    }

    async fn rollups(&self, app: &str, query: &RollupQuery) -> Result<Vec<RollupRow>> {
        let mut tx = self.read().await?;
        rollups::read(&mut tx, app, query).await
    }

    async fn get_invocation(&self, id: &str) -> Result<InvocationRecord> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        invocations::get(&mut conn, id).await
    }

    async fn query_logs(&self, app: &str, query: &LogQuery) -> Result<Page<LogLine>> {
        let mut tx = self.read().await?;
        log_reads::query(&mut tx, app, query).await
    }

    async fn tail_logs(
        &self,
        app: &str,
        query: &LogQuery,
        after: u64,
        limit: u32,
    ) -> Result<LogTail> {
        let mut tx = self.read().await?;
        log_reads::tail(&mut tx, app, query, after, limit).await
    }

    async fn last_log_seq(&self) -> Result<u64> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        logs::last_seq(&mut conn).await
    }

    async fn log_bytes(&self, app: &str) -> Result<u64> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        logs::bytes(&mut conn, app).await
    }

    async fn purge_logs(
        &self,
        app: &str,
        older_than: Timestamp,
        max_bytes: u64,
        limit: u32,
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = retention::purge_logs(&mut tx, app, older_than, max_bytes, limit).await?;
        commit(tx).await?;
        Ok(n)
    }

    async fn purge_invocations(&self, app: &str, older_than: Timestamp, limit: u32) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = retention::purge_invocations(&mut tx, app, older_than, limit).await?;
        commit(tx).await?;
        Ok(n)
    }

    async fn purge_rollups(
        &self,
        res: Resolution,
        older_than: Timestamp,
        limit: u32,
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = rollups::purge(&mut tx, res, older_than, limit).await?;
        commit(tx).await?;
        Ok(n)
    }

    async fn enqueue_events(&self, events: &[NewEvent]) -> Result<Vec<Result<String>>> {
        let mut tx = self.write().await?;
        let ids = events::enqueue(&mut tx, events).await?;
        commit(tx).await?;
        Ok(ids)
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        let mut tx = self.read().await?;
        events::depths(&mut tx).await
    }

    async fn due_functions(&self, now: Timestamp) -> Result<(Vec<DueFunction>, Option<Timestamp>)> {
        let mut tx = self.read().await?;
        events::due(&mut tx, now).await
    }

    async fn claim_events(
        &self,
        function_id: &str,
        limit: u32,
        ordered: bool,
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        let mut tx = self.write().await?;
        let claimed = events::claim(
            &mut tx,
            function_id,
            limit,
            ordered,
            owner,
            lease_until,
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(claimed)
    }

    async fn finish_attempts(&self, results: &[AttemptResult]) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        events::finish(&mut tx, results).await?;
        commit(tx).await
    }

    async fn get_event(&self, id: &str) -> Result<Event> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        events::get(&mut conn, id).await
    }

    async fn list_events(
        &self,
        app: &str,
        function: &str,
        query: &EventQuery,
    ) -> Result<Vec<Event>> {
        let mut tx = self.read().await?;
        events::list(&mut tx, app, function, query).await
    }

    async fn redrive_events(
        &self,
        app: &str,
        function: &str,
        id: Option<&str>,
        now: Timestamp,
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = events::redrive(&mut tx, app, function, id, now).await?;
        commit(tx).await?;
        Ok(n)
    }

    async fn purge_events(
        &self,
        finished_before: Timestamp,
        dead_before: Timestamp,
    ) -> Result<u64> {
        let mut total = 0;
        loop {
            let mut tx = self.write().await?;
            let n = events::purge(&mut tx, finished_before, dead_before).await?;
            commit(tx).await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn release_leases(&self, owner: &str, now: Timestamp) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = events::release_leases(&mut tx, owner, now).await?;
        commit(tx).await?;
        Ok(n)
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        records::get_setting(&mut conn, key).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        records::put_setting(&mut conn, key, value).await
    }

    async fn create_trigger(&self, trigger: &Trigger) -> Result<()> {
        let mut tx = self.write().await?;
        triggers::create_trigger(&mut tx, trigger).await?;
        commit(tx).await
    }

    async fn get_trigger(&self, app: &str, function: &str, name: &str) -> Result<Trigger> {
        let mut tx = self.read().await?;
        triggers::get_trigger(&mut tx, app, function, name).await
    }

    async fn get_trigger_by_id(&self, id: &str) -> Result<Trigger> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        triggers::get_trigger_by_id(&mut conn, id).await
    }

    async fn list_triggers(&self, app: &str, function: &str) -> Result<Vec<Trigger>> {
        let mut tx = self.read().await?;
        triggers::list_triggers(&mut tx, app, function).await
    }

    async fn list_all_triggers(&self) -> Result<Vec<Trigger>> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        triggers::list_all_triggers(&mut conn).await
    }

    async fn update_trigger(&self, trigger: &Trigger) -> Result<()> {
        let mut tx = self.write().await?;
        triggers::update_trigger(&mut tx, trigger).await?;
        commit(tx).await
    }

    async fn delete_trigger(&self, app: &str, function: &str, name: &str) -> Result<()> {
        let mut tx = self.write().await?;
        triggers::delete_trigger(&mut tx, app, function, name).await?;
        commit(tx).await
    }

    async fn claim_cron_tick(&self, trigger_id: &str, tick: Timestamp) -> Result<bool> {
        let mut tx = self.write().await?;
        let claimed = triggers::claim_cron_tick(&mut tx, trigger_id, tick).await?;
        commit(tx).await?;
        Ok(claimed)
    }

    async fn last_cron_tick(&self, trigger_id: &str) -> Result<Option<Timestamp>> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        triggers::last_cron_tick(&mut conn, trigger_id).await
    }

    async fn put_secret(&self, secret: &SealedSecret, max_per_app: u32) -> Result<bool> {
        let mut tx = self.write().await?;
        let created = secrets::put_secret(&mut tx, secret, max_per_app).await?;
        commit(tx).await?;
        Ok(created)
    }

    async fn get_secret(&self, app: &str, name: &str) -> Result<SealedSecret> {
        let mut tx = self.read().await?;
        secrets::get_secret(&mut tx, app, name).await
    }

    async fn list_secrets(&self, app: &str) -> Result<Vec<SealedSecret>> {
        let mut tx = self.read().await?;
        secrets::list_secrets(&mut tx, app).await
    }

    async fn delete_secret(&self, app: &str, name: &str) -> Result<()> {
        let mut tx = self.write().await?;
        secrets::delete_secret(&mut tx, app, name).await?;
        commit(tx).await
    }

    async fn create_token(&self, token: &StoredToken, max_per_app: usize) -> Result<()> {
        let mut tx = self.write().await?;
        tokens::create_token(&mut tx, token, max_per_app).await?;
        commit(tx).await
    }

    async fn get_token(&self, id: &str) -> Result<StoredToken> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        tokens::get_token(&mut conn, id).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenView>> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        tokens::list_tokens(&mut conn).await
    }

    async fn delete_token(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        tokens::delete_token(&mut tx, id).await?;
        commit(tx).await
    }

    async fn touch_token(&self, id: &str, at: Timestamp) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        tokens::touch_token(&mut conn, id, at).await
    }

    async fn create_access_key(&self, key: &StoredAccessKey, max_per_app: usize) -> Result<()> {
        let mut tx = self.write().await?;
        access_keys::create_access_key(&mut tx, key, max_per_app).await?;
        commit(tx).await
    }

    async fn get_access_key(&self, id: &str) -> Result<StoredAccessKey> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        access_keys::get_access_key(&mut conn, id).await
    }

    async fn list_access_keys(&self, app: Option<&str>) -> Result<Vec<AccessKeyView>> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        access_keys::list_access_keys(&mut conn, app).await
    }

    async fn delete_access_key(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        access_keys::delete_access_key(&mut tx, id).await?;
        commit(tx).await
    }

    async fn reseal_access_key(&self, key: &StoredAccessKey) -> Result<()> {
        let mut tx = self.write().await?;
        access_keys::reseal_access_key(&mut tx, key).await?;
        commit(tx).await
    }

    async fn insert_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut tx = self.write().await?;
        audit::insert(&mut tx, entry).await?;
        commit(tx).await
    }

    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>> {
        let mut conn = self.pool.acquire().await.map_err(util::db)?;
        audit::query(&mut conn, query).await
    }

    async fn purge_audit(&self, older_than: Timestamp, limit: u32) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = audit::purge(&mut tx, older_than, limit).await?;
        commit(tx).await?;
        Ok(n)
    }
}
