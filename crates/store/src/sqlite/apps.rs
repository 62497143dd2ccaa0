//! Apps and functions.

use super::util::{
    col, config_from_db, db, from_json, function_id, function_not_found, is_unique_violation,
    require_app, to_json, ts_from_db, ts_to_db,
};
use arcus_core::model::{App, CodeRef, Function, FunctionMeta, Timestamp};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

const FUNCTION_COLUMNS: &str = "id, app, name, config, meta, code_sha256, code_size, \
     created_at, updated_at";

fn app_from_row(row: &SqliteRow) -> Result<App> {
    Ok(App {
        name: col(row, "name")?,
        description: col(row, "description")?,
        quotas: from_json(&col::<String>(row, "quotas")?, "quotas")?,
        created_at: ts_from_db(col(row, "created_at")?, "created_at")?,
    })
}

fn function_from_row(row: &SqliteRow) -> Result<Function> {
    let config: String = col(row, "config")?;
    let meta: String = col(row, "meta")?;
    let sha256: Option<String> = col(row, "code_sha256")?;
    let size: Option<i64> = col(row, "code_size")?;
    let code = match (sha256, size) {
        (Some(sha256), Some(size)) => Some(CodeRef {
            sha256,
            size: u64::try_from(size).map_err(|_| super::util::corrupt("code_size"))?,
        }),
        _ => None,
    };
    Ok(Function {
        id: col(row, "id")?,
        app: col(row, "app")?,
        name: col(row, "name")?,
        config: config_from_db(&config)?,
        meta: from_json::<FunctionMeta>(&meta, "meta")?,
        code,
        created_at: ts_from_db(col(row, "created_at")?, "created_at")?,
        updated_at: ts_from_db(col(row, "updated_at")?, "updated_at")?,
    })
}

/// The code columns of a function as bind values.
fn code_to_db(code: Option<&CodeRef>) -> (Option<&str>, Option<i64>) {
    match code {
        Some(c) => (
            Some(c.sha256.as_str()),
            Some(i64::try_from(c.size).unwrap_or(i64::MAX)),
        ),
        None => (None, None),
    }
}

pub(super) async fn create_app(conn: &mut SqliteConnection, app: &App) -> Result<()> {
    sqlx::query("INSERT INTO apps (name, description, quotas, created_at) VALUES (?, ?, ?, ?)")
        .bind(&app.name)
        .bind(&app.description)
        .bind(to_json(&app.quotas, "quotas")?)
        .bind(ts_to_db(app.created_at))
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::new(
                    ErrorCode::AlreadyExists,
                    format!("app `{}` already exists", app.name),
                )
            } else {
                db(e)
            }
        })?;
    Ok(())
}

pub(super) async fn get_app(conn: &mut SqliteConnection, name: &str) -> Result<App> {
    let row = sqlx::query("SELECT name, description, quotas, created_at FROM apps WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    match row {
        Some(row) => app_from_row(&row),
        None => Err(Error::new(
            ErrorCode::AppNotFound,
            format!("app `{name}` not found"),
        )),
    }
}

/// Replaces an app's description and quotas.
pub(super) async fn update_app(conn: &mut SqliteConnection, app: &App) -> Result<()> {
    let done = sqlx::query("UPDATE apps SET description = ?, quotas = ? WHERE name = ?")
        .bind(&app.description)
        .bind(to_json(&app.quotas, "quotas")?)
        .bind(&app.name)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(Error::new(
            ErrorCode::AppNotFound,
            format!("app `{}` not found", app.name),
        ));
    }
    Ok(())
}

pub(super) async fn list_apps(conn: &mut SqliteConnection) -> Result<Vec<App>> {
    sqlx::query("SELECT name, description, quotas, created_at FROM apps ORDER BY name")
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(app_from_row)
        .collect()
}

pub(super) async fn delete_app(conn: &mut SqliteConnection, name: &str, force: bool) -> Result<()> {
    require_app(conn, name).await?;
    let functions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM functions WHERE app = ?")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if functions > 0 && !force {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("app `{name}` still has {functions} function(s); delete them first or force"),
        ));
    }
    let now = Timestamp::now_utc();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM functions WHERE app = ?")
        .bind(name)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    for id in &ids {
        super::events::cancel_pending(conn, id, now).await?;
    }
    // Children first: the foreign keys have no cascades.
    super::triggers::delete_triggers_of(conn, "SELECT id FROM functions WHERE app = ?", name)
        .await?;
    super::tokens::delete_tokens_of_app(conn, name).await?;
    super::segments::delete_where(
        conn,
        "SELECT seg FROM invocation_segments WHERE app = ?",
        &[name],
    )
    .await?;
    for sql in [
        "DELETE FROM alias_history WHERE function_id IN (SELECT id FROM functions WHERE app = ?)",
        "DELETE FROM aliases WHERE function_id IN (SELECT id FROM functions WHERE app = ?)",
        "DELETE FROM versions WHERE function_id IN (SELECT id FROM functions WHERE app = ?)",
        "DELETE FROM logs WHERE app = ?",
        "DELETE FROM log_usage WHERE app = ?",
        "DELETE FROM functions WHERE app = ?",
        "DELETE FROM secrets WHERE app = ?",
        "DELETE FROM access_keys WHERE app = ?",
        "DELETE FROM apps WHERE name = ?",
    ] {
        sqlx::query(sql)
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

pub(super) async fn create_function(conn: &mut SqliteConnection, f: &Function) -> Result<()> {
    require_app(conn, &f.app).await?;
    let taken = sqlx::query("SELECT 1 FROM functions WHERE app = ? AND name = ?")
        .bind(&f.app)
        .bind(&f.name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    if taken.is_some() {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!("function `{}/{}` already exists", f.app, f.name),
        ));
    }
    let (sha256, size) = code_to_db(f.code.as_ref());
    sqlx::query(
        "INSERT INTO functions (id, app, name, config, meta, code_sha256, code_size, \
         next_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
    )
    .bind(&f.id)
    .bind(&f.app)
    .bind(&f.name)
    .bind(to_json(&f.config, "config")?)
    .bind(to_json(&f.meta, "meta")?)
    .bind(sha256)
    .bind(size)
    .bind(ts_to_db(f.created_at))
    .bind(ts_to_db(f.updated_at))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::new(
                ErrorCode::AlreadyExists,
                format!("a function with id `{}` already exists", f.id),
            )
        } else {
            db(e)
        }
    })?;
    Ok(())
}

pub(super) async fn get_function(
    conn: &mut SqliteConnection,
    app: &str,
    name: &str,
) -> Result<Function> {
    let sql = format!("SELECT {FUNCTION_COLUMNS} FROM functions WHERE app = ? AND name = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(app)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    match row {
        Some(row) => function_from_row(&row),
        None => {
            require_app(conn, app).await?;
            Err(function_not_found(app, name))
        }
    }
}

pub(super) async fn list_functions(
    conn: &mut SqliteConnection,
    app: &str,
) -> Result<Vec<Function>> {
    require_app(conn, app).await?;
    let sql = format!("SELECT {FUNCTION_COLUMNS} FROM functions WHERE app = ? ORDER BY name");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(app)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(function_from_row)
        .collect()
}

pub(super) async fn update_function(conn: &mut SqliteConnection, f: &Function) -> Result<()> {
    let id = function_id(conn, &f.app, &f.name).await?;
    let (sha256, size) = code_to_db(f.code.as_ref());
    sqlx::query(
        "UPDATE functions SET config = ?, meta = ?, code_sha256 = ?, code_size = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(to_json(&f.config, "config")?)
    .bind(to_json(&f.meta, "meta")?)
    .bind(sha256)
    .bind(size)
    .bind(ts_to_db(f.updated_at))
    .bind(&id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn delete_function(
    conn: &mut SqliteConnection,
    app: &str,
    name: &str,
    force: bool,
) -> Result<()> {
    let id = function_id(conn, app, name).await?;
    let pending = super::events::count_pending(conn, &id).await?;
    if pending > 0 && !force {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "{app}/{name} has {pending} async invocation(s) still to run; \
                 delete with force=true to cancel them"
            ),
        ));
    }
    super::events::cancel_pending(conn, &id, Timestamp::now_utc()).await?;
    super::triggers::delete_triggers_of(conn, "?", &id).await?;
    super::segments::delete_where(
        conn,
        "SELECT seg FROM invocation_segments WHERE app = ? AND function = ?",
        &[app, name],
    )
    .await?;
    for sql in [
        "DELETE FROM alias_history WHERE function_id = ?",
        "DELETE FROM aliases WHERE function_id = ?",
        "DELETE FROM versions WHERE function_id = ?",
        "DELETE FROM functions WHERE id = ?",
    ] {
        sqlx::query(sql)
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    for sql in [
        "DELETE FROM logs WHERE app = ? AND function = ?",
        "DELETE FROM log_usage WHERE app = ? AND function = ?",
    ] {
        sqlx::query(sql)
            .bind(app)
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}
