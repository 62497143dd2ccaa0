//! Scoped API tokens: stored by id with the sha256 of their secret, and the apps each
//! has a scope in (`token_apps`).

use super::util::{col, db, from_json, is_unique_violation, to_json, ts_from_db, ts_to_db};
use arcus_core::model::Timestamp;
use arcus_core::tokens::{Scope, StoredToken, TokenView};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use std::collections::BTreeSet;

const COLUMNS: &str = "id, name, scopes, secret_sha256, created_at, expires_at, last_used_at";

fn token_not_found(id: &str) -> Error {
    Error::new(ErrorCode::NotFound, format!("token `{id}` not found"))
}

fn token_from_row(row: &SqliteRow) -> Result<StoredToken> {
    let scopes: String = col(row, "scopes")?;
    let ts = |name: &str| -> Result<Option<Timestamp>> {
        col::<Option<i64>>(row, name)?
            .map(|us| ts_from_db(us, name))
            .transpose()
    };
    Ok(StoredToken {
        view: TokenView {
            id: col(row, "id")?,
            name: col(row, "name")?,
            scopes: from_json::<Vec<Scope>>(&scopes, "scopes")?,
            created_at: ts_from_db(col(row, "created_at")?, "created_at")?,
            expires_at: ts("expires_at")?,
            last_used_at: ts("last_used_at")?,
        },
        secret_sha256: col(row, "secret_sha256")?,
    })
}

/// The apps a token's scopes are in.
fn apps_of(scopes: &[Scope]) -> BTreeSet<&str> {
    scopes.iter().filter_map(Scope::app).collect()
}

pub(super) async fn create_token(
    conn: &mut SqliteConnection,
    token: &StoredToken,
    max_per_app: usize,
) -> Result<()> {
    let v = &token.view;
    let apps = apps_of(&v.scopes);
    for app in &apps {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_apps WHERE app = ?")
            .bind(app)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        if usize::try_from(n).unwrap_or(usize::MAX) >= max_per_app {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!("app `{app}` already has {n} tokens (the limit is {max_per_app})"),
            ));
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tokens ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )))
    .bind(&v.id)
    .bind(&v.name)
    .bind(to_json(&v.scopes, "scopes")?)
    .bind(&token.secret_sha256)
    .bind(ts_to_db(v.created_at))
    .bind(v.expires_at.map(ts_to_db))
    .bind(v.last_used_at.map(ts_to_db))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::new(ErrorCode::AlreadyExists, format!("token `{}` exists", v.id))
        } else {
            db(e)
        }
    })?;
    for app in apps {
        sqlx::query("INSERT INTO token_apps (app, token_id) VALUES (?, ?)")
            .bind(app)
            .bind(&v.id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

pub(super) async fn get_token(conn: &mut SqliteConnection, id: &str) -> Result<StoredToken> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tokens WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?
    .ok_or_else(|| token_not_found(id))?;
    token_from_row(&row)
}

pub(super) async fn list_tokens(conn: &mut SqliteConnection) -> Result<Vec<TokenView>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tokens ORDER BY created_at, id"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(|row| token_from_row(row).map(|t| t.view))
    .collect()
}

pub(super) async fn delete_token(conn: &mut SqliteConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM token_apps WHERE token_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let done = sqlx::query("DELETE FROM tokens WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(token_not_found(id));
    }
    Ok(())
}

pub(super) async fn touch_token(
    conn: &mut SqliteConnection,
    id: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE tokens SET last_used_at = ? WHERE id = ?")
        .bind(ts_to_db(at))
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Revokes every token with a scope in `app` (part of deleting the app).
pub(super) async fn delete_tokens_of_app(conn: &mut SqliteConnection, app: &str) -> Result<()> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT token_id FROM token_apps WHERE app = ?")
        .bind(app)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    for id in ids {
        delete_token(conn, &id).await?;
    }
    Ok(())
}
