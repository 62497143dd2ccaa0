//! Helpers shared by the SQLite store modules: error mapping, value conversions and
//! the name → id lookups every function-scoped method starts with.

use arcus_core::model::{AliasTarget, Canary, ExecConfig, Timestamp};
use arcus_core::{Error, ErrorCode, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

/// Maps a database failure to an `internal` error. The full error (which may contain
/// SQL) goes to the log only; the returned message is safe to show to clients.
pub(crate) fn db(err: sqlx::Error) -> Error {
    let busy = err
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok())
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        .is_some_and(|code| matches!(code & 0xff, 5 | 6));
    tracing::error!(error = %err, "store: database error");
    if busy || matches!(err, sqlx::Error::PoolTimedOut) {
        Error::internal("the metadata store is busy, try again")
    } else {
        Error::internal("metadata store error")
    }
}

/// Whether `err` is a violated UNIQUE or PRIMARY KEY constraint.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// A corrupt or unreadable stored value: an `internal` error that names the column.
pub(crate) fn corrupt(what: &str) -> Error {
    tracing::error!(column = what, "store: corrupt value in the metadata store");
    Error::internal(format!("corrupt value in the metadata store ({what})"))
}

/// A timestamp as stored: unix microseconds, UTC (sub-microsecond precision is dropped).
pub(crate) fn ts_to_db(t: Timestamp) -> i64 {
    let us = t.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
}

/// A stored timestamp back as a UTC `OffsetDateTime`.
pub(crate) fn ts_from_db(us: i64, what: &str) -> Result<Timestamp> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).map_err(|_| corrupt(what))
}

/// Serialises a value for a JSON TEXT column.
pub(crate) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, column = what, "store: cannot serialise value");
        Error::internal(format!("cannot serialise {what}"))
    })
}

/// Parses a JSON TEXT column.
pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|_| corrupt(what))
}

/// Reads a column, mapping decode failures to `internal`.
pub(crate) fn col<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name).map_err(|e| {
        tracing::error!(error = %e, column = name, "store: cannot decode column");
        corrupt(name)
    })
}

/// A stored version number (BIGINT) as the API's `u32`.
pub(crate) fn version_from_db(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(what))
}

/// Reads an `AliasTarget` from the columns `{prefix}version`, `{prefix}canary_version`
/// and `{prefix}canary_weight`.
pub(crate) fn target_from_row(row: &SqliteRow, prefix: &str) -> Result<AliasTarget> {
    let version: i64 = col(row, &format!("{prefix}version"))?;
    let canary_version: Option<i64> = col(row, &format!("{prefix}canary_version"))?;
    let canary_weight: Option<i64> = col(row, &format!("{prefix}canary_weight"))?;
    let canary = match (canary_version, canary_weight) {
        (Some(v), Some(w)) => Some(Canary {
            version: version_from_db(v, "canary_version")?,
            weight: u8::try_from(w).map_err(|_| corrupt("canary_weight"))?,
        }),
        (None, None) => None,
        _ => return Err(corrupt("canary")),
    };
    Ok(AliasTarget {
        version: version_from_db(version, "version")?,
        canary,
    })
}

/// The canary columns of a target as bind values.
pub(crate) fn canary_to_db(target: &AliasTarget) -> (Option<i64>, Option<i64>) {
    match target.canary {
        Some(c) => (Some(i64::from(c.version)), Some(i64::from(c.weight))),
        None => (None, None),
    }
}

/// A count or size as stored (BIGINT), saturating at `i64::MAX`.
pub(crate) fn u64_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Fails with `app_not_found` or `function_not_found` unless the app (and the
/// function, when one is named) exists.
pub(crate) async fn require_scope(
    conn: &mut SqliteConnection,
    app: &str,
    function: Option<&str>,
) -> Result<()> {
    match function {
        Some(f) => function_id(conn, app, f).await.map(drop),
        None => require_app(conn, app).await,
    }
}

/// Fails with `app_not_found` unless the app exists.
pub(crate) async fn require_app(conn: &mut SqliteConnection, app: &str) -> Result<()> {
    let found = sqlx::query("SELECT 1 FROM apps WHERE name = ?")
        .bind(app)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::new(
            ErrorCode::AppNotFound,
            format!("app `{app}` not found"),
        )),
    }
}

/// The id of a function; `app_not_found` or `function_not_found` if absent.
pub(crate) async fn function_id(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
) -> Result<String> {
    let row = sqlx::query("SELECT id FROM functions WHERE app = ? AND name = ?")
        .bind(app)
        .bind(function)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    match row {
        Some(row) => col(&row, "id"),
        None => {
            require_app(conn, app).await?;
            Err(function_not_found(app, function))
        }
    }
}

/// The `function_not_found` error.
pub(crate) fn function_not_found(app: &str, function: &str) -> Error {
    Error::new(
        ErrorCode::FunctionNotFound,
        format!("function `{app}/{function}` not found"),
    )
}

/// The `version_not_found` error.
pub(crate) fn version_not_found(function: &str, version: u32) -> Error {
    Error::new(
        ErrorCode::VersionNotFound,
        format!("version {version} of function `{function}` not found"),
    )
}

/// The `alias_not_found` error.
pub(crate) fn alias_not_found(function: &str, alias: &str) -> Error {
    Error::new(
        ErrorCode::AliasNotFound,
        format!("alias `{alias}` of function `{function}` not found"),
    )
}

/// Parses an `ExecConfig` JSON column.
pub(crate) fn config_from_db(text: &str) -> Result<ExecConfig> {
    from_json(text, "config")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_roundtrip_at_microsecond_precision() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let back = ts_from_db(ts_to_db(t), "t").unwrap();
        assert_eq!(back.unix_timestamp_nanos(), 1_700_000_000_123_456_000);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1_500).unwrap();
        assert_eq!(ts_to_db(before_epoch), -2);
    }
}
