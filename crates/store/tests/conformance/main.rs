//! Runs the `Store` conformance suite (`suite.rs`) against `SqliteStore`, on a
//! temporary file and in memory, plus SQLite-specific checks (persistence across
//! reopen, migrations, concurrency).
#![allow(clippy::unwrap_used)]

mod suite;

use arcus_core::store::Store;
use arcus_store::{ALIAS_HISTORY_LIMIT, SCHEMA_VERSION, SqliteStore};
use std::sync::Arc;
use tempfile::TempDir;

/// A store on a fresh file in a temporary directory (kept alive with the store).
async fn file_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("arcus.db"))
        .await
        .unwrap();
    (dir, store)
}

/// One `#[tokio::test]` per suite function and backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_file {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dir, store) = super::file_store().await;
                    super::suite::$name(&store).await;
                }
            )*
        }
        mod in_memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = arcus_store::SqliteStore::open_in_memory().await.unwrap();
                    super::suite::$name(&store).await;
                }
            )*
        }
    };
}

conformance!(
    access_key_reseal,
    access_keys,
    access_keys_per_app_limit,
    audit_log,
    audit_purge,
    apps,
    functions,
    function_delete_cascades,
    versions,
    aliases,
    alias_rollback,
    invocation_records,
    invocation_queries,
    invocation_rollups,
    log_lines,
    log_queries,
    log_tails,
    log_retention,
    platform_lines_from_records,
    platform_line_filters,
    platform_line_tails,
    platform_line_retries,
    platform_lines_after_start_up_output,
    records_in_volume,
    logs_in_volume,
    record_purge_in_volume,
    settings,
    triggers,
    cron_tick_claims,
    triggers_deleted_with_function_and_app,
    tokens,
    token_limit_per_app,
    tokens_revoked_with_their_app,
    secrets,
    secrets_per_app_limit,
    secrets_deleted_with_app,
    event_enqueue,
    event_claims_and_finishes,
    event_fifo_claims,
    event_dead_letters,
    event_cancel_and_release,
    event_purge,
    event_queue_depths,
);

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/arcus.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let seeded = suite::seed(&store).await;
    store.close().await;
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    suite::verify_seeded(&reopened, &seeded).await;
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arcus.db");
    let first = SqliteStore::open(&path).await.unwrap();
    assert_eq!(first.schema_version().await.unwrap(), SCHEMA_VERSION);
    let seeded = suite::seed(&first).await;
    // A second store on the same file while the first is open, then a third after.
    let second = SqliteStore::open(&path).await.unwrap();
    assert_eq!(second.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(suite::snapshot(&second).await, seeded);
    first.close().await;
    second.close().await;
    let third = SqliteStore::open(&path).await.unwrap();
    assert_eq!(third.schema_version().await.unwrap(), SCHEMA_VERSION);
    suite::verify_seeded(&third, &seeded).await;
}

#[tokio::test]
async fn a_fresh_database_gets_the_current_schema() {
    let (dir, store) = file_store().await;
    assert!(dir.path().join("arcus.db-wal").exists(), "WAL mode");
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        suite::snapshot(&store).await,
        suite::snapshot(&SqliteStore::open_in_memory().await.unwrap()).await
    );
    let memory = SqliteStore::open_in_memory().await.unwrap();
    assert_eq!(memory.schema_version().await.unwrap(), SCHEMA_VERSION);
}

#[tokio::test]
async fn opening_a_directory_fails_with_internal() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert_eq!(err.code, arcus_core::ErrorCode::Internal);
}

/// Concurrent writers queue on the busy timeout instead of failing, and version numbers
/// stay unique.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_do_not_fail() {
    let (_dir, store) = file_store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    store.create_app(&suite::app("a")).await.unwrap();
    store
        .create_function(&suite::function("a", "f"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let v = store
                .publish_version("a", "f", "", suite::at(i))
                .await
                .unwrap();
            store
                .insert_logs(&[suite::log("x", "a", "f", i, "line")])
                .await
                .unwrap();
            store
                .put_alias(
                    "a",
                    "f",
                    "live",
                    arcus_core::model::AliasTarget {
                        version: v.version,
                        canary: None,
                    },
                    suite::at(i),
                )
                .await
                .unwrap();
            store.get_function("a", "f").await.unwrap();
            v.version
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=16).collect::<Vec<u32>>());
    let logs = store
        .list_logs(
            "a",
            "f",
            &arcus_core::store::RecordQuery {
                invocation_id: None,
                limit: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(logs.len(), 16);
}

/// The history stack is bounded; the oldest entries go first.
#[tokio::test]
async fn alias_history_is_bounded() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    store.create_app(&suite::app("a")).await.unwrap();
    store
        .create_function(&suite::function("a", "f"))
        .await
        .unwrap();
    store
        .publish_version("a", "f", "", suite::at(0))
        .await
        .unwrap();
    store
        .publish_version("a", "f", "", suite::at(0))
        .await
        .unwrap();
    let target = |v| arcus_core::model::AliasTarget {
        version: v,
        canary: None,
    };
    let puts = ALIAS_HISTORY_LIMIT + 10;
    for i in 0..=puts {
        let v = if i % 2 == 0 { 1 } else { 2 };
        store
            .put_alias("a", "f", "live", target(v), suite::at(i))
            .await
            .unwrap();
    }
    for _ in 0..ALIAS_HISTORY_LIMIT {
        store
            .rollback_alias("a", "f", "live", suite::at(0))
            .await
            .unwrap();
    }
    let err = store
        .rollback_alias("a", "f", "live", suite::at(0))
        .await
        .unwrap_err();
    assert_eq!(err.code, arcus_core::ErrorCode::Conflict);
}
