//! Versions and aliases (with their rollback history).

use super::util::{
    alias_not_found, canary_to_db, col, config_from_db, corrupt, db, function_id, target_from_row,
    ts_from_db, ts_to_db, version_from_db, version_not_found,
};
use arcus_core::model::{Alias, AliasTarget, Timestamp, Version};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

/// How many previous targets an alias remembers; older ones are dropped.
pub const ALIAS_HISTORY_LIMIT: i64 = 50;

const VERSION_COLUMNS: &str = "version, description, sha256, config, created_at";

/// An alias with its current target and the top of its history (`h_*` columns).
const ALIAS_SELECT: &str = "SELECT a.name, a.version, a.canary_version, a.canary_weight, \
     a.updated_at, h.version AS h_version, h.canary_version AS h_canary_version, \
     h.canary_weight AS h_canary_weight \
     FROM aliases a LEFT JOIN alias_history h \
     ON h.function_id = a.function_id AND h.alias = a.name AND h.seq = \
     (SELECT MAX(x.seq) FROM alias_history x WHERE x.function_id = a.function_id \
     AND x.alias = a.name) \
     WHERE a.function_id = ?";

fn version_from_row(row: &SqliteRow) -> Result<Version> {
    let config: String = col(row, "config")?;
    Ok(Version {
        version: version_from_db(col(row, "version")?, "version")?,
        description: col(row, "description")?,
        sha256: col(row, "sha256")?,
        config: config_from_db(&config)?,
        created_at: ts_from_db(col(row, "created_at")?, "created_at")?,
    })
}

fn alias_from_row(row: &SqliteRow) -> Result<Alias> {
    let previous = match col::<Option<i64>>(row, "h_version")? {
        Some(_) => Some(target_from_row(row, "h_")?),
        None => None,
    };
    Ok(Alias {
        name: col(row, "name")?,
        target: target_from_row(row, "")?,
        previous,
        updated_at: ts_from_db(col(row, "updated_at")?, "updated_at")?,
    })
}

pub(super) async fn publish_version(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    description: &str,
    now: Timestamp,
) -> Result<Version> {
    let id = function_id(conn, app, function).await?;
    let row = sqlx::query("SELECT config, code_sha256, next_version FROM functions WHERE id = ?")
        .bind(&id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let config: String = col(&row, "config")?;
    let next: i64 = col(&row, "next_version")?;
    let Some(sha256) = col::<Option<String>>(&row, "code_sha256")? else {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("function `{app}/{function}` has no code to publish"),
        ));
    };
    let number = u32::try_from(next)
        .map_err(|_| Error::new(ErrorCode::Conflict, "the function has too many versions"))?;
    let version = Version {
        version: number,
        description: description.to_string(),
        sha256,
        config: config_from_db(&config)?,
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO versions (function_id, version, description, sha256, config, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(next)
    .bind(description)
    .bind(&version.sha256)
    .bind(&config)
    .bind(ts_to_db(now))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query("UPDATE functions SET next_version = ? WHERE id = ?")
        .bind(next + 1)
        .bind(&id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(version)
}

pub(super) async fn list_versions(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
) -> Result<Vec<Version>> {
    let id = function_id(conn, app, function).await?;
    let sql =
        format!("SELECT {VERSION_COLUMNS} FROM versions WHERE function_id = ? ORDER BY version");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(version_from_row)
        .collect()
}

pub(super) async fn get_version(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    version: u32,
) -> Result<Version> {
    let id = function_id(conn, app, function).await?;
    let sql =
        format!("SELECT {VERSION_COLUMNS} FROM versions WHERE function_id = ? AND version = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&id)
        .bind(i64::from(version))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    match row {
        Some(row) => version_from_row(&row),
        None => Err(version_not_found(function, version)),
    }
}

/// Fails with `version_not_found` unless the version exists.
async fn require_version(
    conn: &mut SqliteConnection,
    id: &str,
    function: &str,
    version: u32,
) -> Result<()> {
    let found = sqlx::query("SELECT 1 FROM versions WHERE function_id = ? AND version = ?")
        .bind(id)
        .bind(i64::from(version))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    match found {
        Some(_) => Ok(()),
        None => Err(version_not_found(function, version)),
    }
}

pub(super) async fn delete_version(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    version: u32,
) -> Result<()> {
    let id = function_id(conn, app, function).await?;
    require_version(conn, &id, function, version).await?;
    let v = i64::from(version);
    let users: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM aliases WHERE function_id = ? AND (version = ? OR canary_version = ?) \
         ORDER BY name",
    )
    .bind(&id)
    .bind(v)
    .bind(v)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    if !users.is_empty() {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "version {version} of function `{function}` is used by alias(es) {}",
                users.join(", ")
            ),
        ));
    }
    // Rollback must never point at a deleted version: forget history entries using it.
    sqlx::query(
        "DELETE FROM alias_history WHERE function_id = ? AND (version = ? OR canary_version = ?)",
    )
    .bind(&id)
    .bind(v)
    .bind(v)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query("DELETE FROM versions WHERE function_id = ? AND version = ?")
        .bind(&id)
        .bind(v)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Reads one alias of function `id`, if present.
async fn find_alias(conn: &mut SqliteConnection, id: &str, name: &str) -> Result<Option<Alias>> {
    let sql = format!("{ALIAS_SELECT} AND a.name = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    row.as_ref().map(alias_from_row).transpose()
}

/// Reads one alias that was just written (it must exist).
async fn reread_alias(conn: &mut SqliteConnection, id: &str, name: &str) -> Result<Alias> {
    find_alias(conn, id, name)
        .await?
        .ok_or_else(|| corrupt("aliases"))
}

pub(super) async fn put_alias(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    name: &str,
    target: AliasTarget,
    now: Timestamp,
) -> Result<Alias> {
    let id = function_id(conn, app, function).await?;
    if let Some(c) = target.canary
        && c.weight > 100
    {
        return Err(Error::invalid(format!(
            "canary weight must be 0–100, got {}",
            c.weight
        )));
    }
    require_version(conn, &id, function, target.version).await?;
    if let Some(c) = target.canary {
        require_version(conn, &id, function, c.version).await?;
    }
    let (canary_version, canary_weight) = canary_to_db(&target);
    match find_alias(conn, &id, name).await? {
        None => {
            sqlx::query(
                "INSERT INTO aliases (function_id, name, version, canary_version, \
                 canary_weight, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(name)
            .bind(i64::from(target.version))
            .bind(canary_version)
            .bind(canary_weight)
            .bind(ts_to_db(now))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        }
        Some(current) => {
            // Re-putting the same target only touches `updated_at`: a history entry equal
            // to the current target would make the next rollback a no-op.
            if current.target != target {
                push_history(conn, &id, name, &current.target).await?;
            }
            set_target(conn, &id, name, &target, now).await?;
        }
    }
    reread_alias(conn, &id, name).await
}

/// Pushes `target` on the alias's history stack, dropping entries past the limit.
async fn push_history(
    conn: &mut SqliteConnection,
    id: &str,
    alias: &str,
    target: &AliasTarget,
) -> Result<()> {
    let (canary_version, canary_weight) = canary_to_db(target);
    sqlx::query(
        "INSERT INTO alias_history (function_id, alias, seq, version, canary_version, \
         canary_weight) VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM alias_history \
         WHERE function_id = ? AND alias = ?), ?, ?, ?)",
    )
    .bind(id)
    .bind(alias)
    .bind(id)
    .bind(alias)
    .bind(i64::from(target.version))
    .bind(canary_version)
    .bind(canary_weight)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query(
        "DELETE FROM alias_history WHERE function_id = ? AND alias = ? AND seq <= \
         (SELECT MAX(seq) FROM alias_history WHERE function_id = ? AND alias = ?) - ?",
    )
    .bind(id)
    .bind(alias)
    .bind(id)
    .bind(alias)
    .bind(ALIAS_HISTORY_LIMIT)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Points an existing alias at `target`.
async fn set_target(
    conn: &mut SqliteConnection,
    id: &str,
    name: &str,
    target: &AliasTarget,
    now: Timestamp,
) -> Result<()> {
    let (canary_version, canary_weight) = canary_to_db(target);
    sqlx::query(
        "UPDATE aliases SET version = ?, canary_version = ?, canary_weight = ?, updated_at = ? \
         WHERE function_id = ? AND name = ?",
    )
    .bind(i64::from(target.version))
    .bind(canary_version)
    .bind(canary_weight)
    .bind(ts_to_db(now))
    .bind(id)
    .bind(name)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn get_alias(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    name: &str,
) -> Result<Alias> {
    let id = function_id(conn, app, function).await?;
    find_alias(conn, &id, name)
        .await?
        .ok_or_else(|| alias_not_found(function, name))
}

pub(super) async fn list_aliases(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
) -> Result<Vec<Alias>> {
    let id = function_id(conn, app, function).await?;
    let sql = format!("{ALIAS_SELECT} ORDER BY a.name");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(alias_from_row)
        .collect()
}

pub(super) async fn delete_alias(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    name: &str,
) -> Result<()> {
    let id = function_id(conn, app, function).await?;
    sqlx::query("DELETE FROM alias_history WHERE function_id = ? AND alias = ?")
        .bind(&id)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let deleted = sqlx::query("DELETE FROM aliases WHERE function_id = ? AND name = ?")
        .bind(&id)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if deleted.rows_affected() == 0 {
        // Nothing was deleted, so the (empty) history delete above changed nothing either.
        return Err(alias_not_found(function, name));
    }
    Ok(())
}

pub(super) async fn rollback_alias(
    conn: &mut SqliteConnection,
    app: &str,
    function: &str,
    name: &str,
    now: Timestamp,
) -> Result<Alias> {
    let id = function_id(conn, app, function).await?;
    if find_alias(conn, &id, name).await?.is_none() {
        return Err(alias_not_found(function, name));
    }
    let top = sqlx::query(
        "SELECT seq, version, canary_version, canary_weight FROM alias_history \
         WHERE function_id = ? AND alias = ? ORDER BY seq DESC LIMIT 1",
    )
    .bind(&id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some(top) = top else {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("alias `{name}` of function `{function}` has no previous target"),
        ));
    };
    let seq: i64 = col(&top, "seq")?;
    let target = target_from_row(&top, "")?;
    sqlx::query("DELETE FROM alias_history WHERE function_id = ? AND alias = ? AND seq = ?")
        .bind(&id)
        .bind(name)
        .bind(seq)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    set_target(conn, &id, name, &target, now).await?;
    reread_alias(conn, &id, name).await
}
