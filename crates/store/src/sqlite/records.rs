//! Constants shared by the record and log modules, and node settings.

use super::util::db;
use arcus_core::Result;
use sqlx::SqliteConnection;

/// The number of rows a list returns when the query's `limit` is 0.
pub const DEFAULT_LIMIT: u32 = 100;

/// Rows per multi-row `INSERT` (SQLite allows 32,766 bound values per statement).
pub(super) const ROWS_PER_INSERT: usize = 256;

pub(super) async fn get_setting(conn: &mut SqliteConnection, key: &str) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)
}

pub(super) async fn put_setting(conn: &mut SqliteConnection, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}
