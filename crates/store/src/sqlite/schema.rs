//! The versioned schema: migrations embedded in the binary, run with sqlx's migrator.
//!
//! Each file in `crates/store/migrations/` is one migration, numbered from 1. Applied
//! migrations are recorded (with a checksum) in `_sqlx_migrations`, so running the
//! migrator again is a no-op, and editing an applied migration is detected. Never
//! edit a released migration: add the next numbered file and list it here.

use arcus_core::{Error, Result};
use sqlx::SqlSafeStr;
use sqlx::SqlitePool;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// The migrations, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "app quotas",
        include_str!("../../migrations/0002_app_quotas.sql"),
    ),
    (
        3,
        "async events",
        include_str!("../../migrations/0003_async_events.sql"),
    ),
    (
        4,
        "triggers",
        include_str!("../../migrations/0004_triggers.sql"),
    ),
    (
        5,
        "observability",
        include_str!("../../migrations/0005_observability.sql"),
    ),
    (6, "logs", include_str!("../../migrations/0006_logs.sql")),
    (
        7,
        "event_trace",
        include_str!("../../migrations/0007_event_trace.sql"),
    ),
    (
        8,
        "tokens",
        include_str!("../../migrations/0008_tokens.sql"),
    ),
    (
        9,
        "secrets",
        include_str!("../../migrations/0009_secrets.sql"),
    ),
    (
        10,
        "access_keys",
        include_str!("../../migrations/0010_access_keys.sql"),
    ),
    (11, "audit", include_str!("../../migrations/0011_audit.sql")),
    (
        12,
        "platform lines",
        include_str!("../../migrations/0012_platform_lines.sql"),
    ),
    (
        13,
        "record segments",
        include_str!("../../migrations/0013_record_segments.sql"),
    ),
];

/// The schema version a fresh database ends up at.
pub const SCHEMA_VERSION: i64 = 13;

fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = migrations
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Brings the database up to [`SCHEMA_VERSION`].
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<()> {
    migrator(MIGRATIONS).run(pool).await.map_err(|e| {
        tracing::error!(error = %e, "store: migration failed");
        Error::internal(format!(
            "metadata store migration failed: {}",
            migrate_reason(&e)
        ))
    })
}

/// A short, SQL-free reason for a migration failure.
fn migrate_reason(err: &sqlx::migrate::MigrateError) -> String {
    use sqlx::migrate::MigrateError;
    match err {
        MigrateError::VersionMissing(v) => {
            format!(
                "the database has migration {v}, which this binary does not know (newer binary?)"
            )
        }
        MigrateError::VersionMismatch(v) => format!("applied migration {v} was modified"),
        MigrateError::Dirty(v) => format!("migration {v} was left partially applied"),
        _ => "database error".to_string(),
    }
}

/// The highest applied migration version.
pub(crate) async fn current_version(pool: &SqlitePool) -> Result<i64> {
    sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE",
    )
    .fetch_one(pool)
    .await
    .map(|v| v.unwrap_or(0))
    .map_err(super::util::db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }

    /// A database of schema 11 with a record and a line: after migration 12 the shared
    /// counter starts above both, the old line stays and new records get derived lines.
    #[tokio::test]
    async fn migration_12_starts_the_shared_seqs_above_old_records_and_lines() {
        use arcus_core::model::{App, Timestamp};
        use arcus_core::record::{InvocationStatus, RecordedInvocation, TriggerKind};
        use arcus_core::store::{LogQuery, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = SqlitePool::connect(&url).await.unwrap();
        migrator(&MIGRATIONS[..11]).run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO invocations (seq, id, app, function, trigger_kind, status, \
             duration_us, cold_start, started_at) \
             VALUES (500, 'old', 'a', 'f', 'http', 'succeeded', 1, 0, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO logs (invocation_id, app, function, stream, ts, message) \
             VALUES ('old', 'a', 'f', 'stdout', 0, 'old line')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = crate::SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(store.last_log_seq().await.unwrap(), 500);
        let now = Timestamp::now_utc();
        let app = App {
            name: "a".into(),
            description: String::new(),
            quotas: Default::default(),
            created_at: now,
        };
        store.create_app(&app).await.unwrap();
        let old = store.get_invocation("old").await.unwrap();
        let mut record = old.clone();
        record.id = "new".into();
        record.status = InvocationStatus::Succeeded;
        record.trigger = TriggerKind::Http;
        record.started_at = now;
        let new = RecordedInvocation {
            record,
            lines: Vec::new(),
            platform_lines: true,
            init_lines: 0,
        };
        store.insert_invocations(&[new]).await.unwrap();
        let q = LogQuery {
            limit: 10,
            ..LogQuery::default()
        };
        let lines = store.query_logs("a", &q).await.unwrap().items;
        let seqs: Vec<(u64, &str)> = lines.iter().map(|l| (l.seq, l.message.as_str())).collect();
        assert_eq!(seqs.len(), 4, "{seqs:?}");
        assert_eq!(seqs[3], (1, "old line"));
        assert_eq!(seqs[2], (501, "START RequestId: new Version: $LATEST"));
        assert_eq!(store.last_log_seq().await.unwrap(), 503);
    }

    /// A database of schema 12 with a record that ran (a captured line between its
    /// platform lines) and one refused: after migration 13 both are found by id and in
    /// listings, the platform lines keep their seqs, and a retried id is still skipped.
    #[tokio::test]
    async fn migration_13_moves_records_into_segments() {
        use arcus_core::model::{App, Timestamp};
        use arcus_core::stats::InvocationQuery;
        use arcus_core::store::{LogQuery, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = SqlitePool::connect(&url).await.unwrap();
        migrator(&MIGRATIONS[..12]).run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO invocations (seq, id, app, function, version, trigger_kind, status, \
             http_status, duration_us, cold_start, started_at, memory_mb, init_duration_us, \
             log_lines, ended_at) \
             VALUES (14, 'ran', 'a', 'f', 2, 'http', 'succeeded', 200, 1500, 1, 1000000, 128, \
             700, 1, 1001500)",
            "INSERT INTO logs (id, invocation_id, app, function, stream, ts, message) \
             VALUES (12, 'ran', 'a', 'f', 'stdout', 1000100, 'hello')",
            "INSERT INTO invocations (seq, id, app, function, trigger_kind, status, \
             error_code, duration_us, cold_start, started_at) \
             VALUES (15, 'refused', 'a', 'f', 'api', 'failed', 'throttled', 0, 0, 2000000)",
            "UPDATE sqlite_sequence SET seq = 15 WHERE name = 'logs'",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = crate::SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let app = App {
            name: "a".into(),
            description: String::new(),
            quotas: Default::default(),
            created_at: Timestamp::now_utc(),
        };
        store.create_app(&app).await.unwrap();
        let ran = store.get_invocation("ran").await.unwrap();
        assert_eq!(
            (ran.version, ran.cold_start, ran.init_duration_us),
            (Some(2), true, Some(700))
        );
        let refused = store.get_invocation("refused").await.unwrap();
        assert_eq!(refused.error_code.as_deref(), Some("throttled"));
        assert!(!refused.cold_start);
        let listed = store
            .query_invocations("a", &InvocationQuery::default())
            .await
            .unwrap();
        let ids: Vec<&str> = listed.items.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["refused", "ran"]);
        let tail = store
            .tail_logs("a", &LogQuery::default(), 0, 100)
            .await
            .unwrap();
        let seqs: Vec<(u64, &str)> = tail
            .lines
            .iter()
            .map(|l| (l.seq, l.message.split('\t').next().unwrap_or("")))
            .collect();
        assert_eq!(
            seqs,
            [
                (11, "START RequestId: ran Version: 2"),
                (12, "hello"),
                (13, "END RequestId: ran"),
                (14, "REPORT RequestId: ran"),
            ]
        );
        assert_eq!(
            tail.lines[3].timestamp,
            ran.started_at + time::Duration::microseconds(1500)
        );
        // A retried batch with an old id stores nothing; a new record goes after.
        store
            .insert_invocations(&[ran.clone().into()])
            .await
            .unwrap();
        let mut new = ran.clone();
        new.id = "new".into();
        store.insert_invocations(&[new.into()]).await.unwrap();
        let listed = store
            .query_invocations("a", &InvocationQuery::default())
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 3);
        assert_eq!(store.last_log_seq().await.unwrap(), 17);
    }
}
