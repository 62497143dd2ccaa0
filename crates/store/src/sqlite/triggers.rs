//! Triggers and the cron tick claims.

use super::util::{
    col, db, from_json, function_id, is_unique_violation, to_json, ts_from_db, ts_to_db,
};
use arcus_core::model::Timestamp;
use arcus_core::trigger::Trigger;
use arcus_core::{Error, ErrorCode, Result};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

/// Columns of a trigger joined with its function (for app and function names).
const SELECT: &str = "SELECT t.id, f.app, f.name AS function, t.name, t.qualifier, t.enabled, \
     t.config, t.created_at, t.updated_at FROM triggers t JOIN functions f ON f.id = t.function_id";

fn trigger_from_row(row: &SqliteRow) -> Result<Trigger> {
    Ok(Trigger {
        id: col(row, "id")?,
        app: col(row, "app")?,
        function: col(row, "function")?,
        name: col(row, "name")?,
        qualifier: col(row, "qualifier")?,
        enabled: col(row, "enabled")?,
        config: from_json(&col::<String>(row, "config")?, "config")?,
        created_at: ts_from_db(col(row, "created_at")?, "created_at")?,
        updated_at: ts_from_db(col(row, "updated_at")?, "updated_at")?,
    })
}

fn trigger_not_found(app: &str, function: &str, name: &str) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("trigger `{name}` of function `{app}/{function}` not found"),
    )
}

pub(super) async fn create_trigger(conn: &mut SqliteConnection, t: &Trigger) -> Result<()> {
    let fid = function_id(conn, &t.app, &t.function).await?;
    sqlx::query(
        "INSERT INTO triggers (id, function_id, name, qualifier, enabled, config, created_at, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(&fid)
    .bind(&t.name)
    .bind(&t.qualifier)
    .bind(t.enabled)
    .bind(to_json(&t.config, "config")?)
    .bind(ts_to_db(t.created_at))
    .bind(ts_to_db(t.updated_at))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "trigger `{}` of function `{}/{}` already exists",
                    t.name, t.app, t.function
                ),
            )
        } else {
            db(e)
        }
    })?;
    Ok(())
}

pub(super) async fn get_trigger(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    name: &str,
) -> Result<Trigger> {
    let fid = function_id(conn, app, function).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE t.function_id = ? AND t.name = ?"
    )))
    .bind(&fid)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    match row {
        Some(row) => trigger_from_row(&row),
        None => Err(trigger_not_found(app, function, name)),
    }
}

pub(super) async fn get_trigger_by_id(conn: &mut SqliteConnection, id: &str) -> Result<Trigger> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE t.id = ?")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    match row {
        Some(row) => trigger_from_row(&row),
        None => Err(Error::new(
            ErrorCode::NotFound,
            format!("trigger `{id}` not found"),
        )),
    }
}

pub(super) async fn list_triggers(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
) -> Result<Vec<Trigger>> {
    let fid = function_id(conn, app, function).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE t.function_id = ? ORDER BY t.name"
    )))
    .bind(&fid)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(trigger_from_row)
    .collect()
}

pub(super) async fn list_all_triggers(conn: &mut SqliteConnection) -> Result<Vec<Trigger>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} ORDER BY f.app, f.name, t.name"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(trigger_from_row)
    .collect()
}

pub(super) async fn update_trigger(conn: &mut SqliteConnection, t: &Trigger) -> Result<()> {
    let done = sqlx::query(
        "UPDATE triggers SET qualifier = ?, enabled = ?, config = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&t.qualifier)
    .bind(t.enabled)
    .bind(to_json(&t.config, "config")?)
    .bind(ts_to_db(t.updated_at))
    .bind(&t.id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(trigger_not_found(&t.app, &t.function, &t.name));
    }
    Ok(())
}

pub(super) async fn delete_trigger(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    name: &str,
) -> Result<()> {
    let fid = function_id(conn, app, function).await?;
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM triggers WHERE function_id = ? AND name = ?")
            .bind(&fid)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let Some(id) = id else {
        return Err(trigger_not_found(app, function, name));
    };
    for sql in [
        "DELETE FROM cron_state WHERE trigger_id = ?",
        "DELETE FROM triggers WHERE id = ?",
    ] {
        sqlx::query(sql)
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Deletes the triggers (and cron state) of the functions selected by `functions`, a
/// subquery over `functions` with one `?` bound to `key`.
pub(super) async fn delete_triggers_of(
    conn: &mut SqliteConnection,
    functions: &str,
    key: &str,
) -> Result<()> {
    let cron = format!(
        "DELETE FROM cron_state WHERE trigger_id IN \
         (SELECT id FROM triggers WHERE function_id IN ({functions}))"
    );
    let triggers = format!("DELETE FROM triggers WHERE function_id IN ({functions})");
    for sql in [cron, triggers] {
        // Built from constant fragments only; values are bound.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

pub(super) async fn claim_cron_tick(
    conn: &mut SqliteConnection,
    trigger_id: &str,
    tick: Timestamp,
) -> Result<bool> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM triggers WHERE id = ?")
        .bind(trigger_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    if exists.is_none() {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!("trigger `{trigger_id}` not found"),
        ));
    }
    let done = sqlx::query(
        "INSERT INTO cron_state (trigger_id, last_tick) VALUES (?, ?) \
         ON CONFLICT (trigger_id) DO UPDATE SET last_tick = excluded.last_tick \
         WHERE cron_state.last_tick < excluded.last_tick",
    )
    .bind(trigger_id)
    .bind(ts_to_db(tick))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn last_cron_tick(
    conn: &mut SqliteConnection,
    trigger_id: &str,
) -> Result<Option<Timestamp>> {
    let us: Option<i64> =
        sqlx::query_scalar("SELECT last_tick FROM cron_state WHERE trigger_id = ?")
            .bind(trigger_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    us.map(|us| ts_from_db(us, "last_tick")).transpose()
}
