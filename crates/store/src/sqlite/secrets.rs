//! Sealed per-app secrets (the engine encrypts; this module only stores bytes).

use super::util::{col, db, require_app, ts_from_db, ts_to_db};
use arcus_core::secret::SealedSecret;
use arcus_core::{Error, ErrorCode, Result};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

const COLUMNS: &str = "app, name, key_id, nonce, ciphertext, created_at, updated_at";

fn from_row(row: &SqliteRow) -> Result<SealedSecret> {
    Ok(SealedSecret {
        app: col(row, "app")?,
        name: col(row, "name")?,
        key_id: col(row, "key_id")?,
        nonce: col(row, "nonce")?,
        ciphertext: col(row, "ciphertext")?,
        created_at: ts_from_db(col(row, "created_at")?, "created_at")?,
        updated_at: ts_from_db(col(row, "updated_at")?, "updated_at")?,
    })
}

fn secret_not_found(app: &str, name: &str) -> Error {
    Error::new(
        ErrorCode::SecretNotFound,
        format!("secret `{name}` of app `{app}` not found"),
    )
}

pub(super) async fn put_secret(
    conn: &mut SqliteConnection,
    s: &SealedSecret,
    max_per_app: u32,
) -> Result<bool> {
    require_app(conn, &s.app).await?;
    let updated = sqlx::query(
        "UPDATE secrets SET key_id = ?, nonce = ?, ciphertext = ?, updated_at = ? \
         WHERE app = ? AND name = ?",
    )
    .bind(&s.key_id)
    .bind(&s.nonce)
    .bind(&s.ciphertext)
    .bind(ts_to_db(s.updated_at))
    .bind(&s.app)
    .bind(&s.name)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if updated.rows_affected() > 0 {
        return Ok(false);
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE app = ?")
        .bind(&s.app)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if count >= i64::from(max_per_app) {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "app `{}` already has {count} secrets; the limit is {max_per_app}",
                s.app
            ),
        ));
    }
    sqlx::query(
        "INSERT INTO secrets (app, name, key_id, nonce, ciphertext, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.app)
    .bind(&s.name)
    .bind(&s.key_id)
    .bind(&s.nonce)
    .bind(&s.ciphertext)
    .bind(ts_to_db(s.created_at))
    .bind(ts_to_db(s.updated_at))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(true)
}

pub(super) async fn get_secret(
    conn: &mut SqliteConnection,
    app: &str,
    name: &str,
) -> Result<SealedSecret> {
    require_app(conn, app).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM secrets WHERE app = ? AND name = ?"
    )))
    .bind(app)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    match row {
        Some(row) => from_row(&row),
        None => Err(secret_not_found(app, name)),
    }
}

pub(super) async fn list_secrets(
    conn: &mut SqliteConnection,
    app: &str,
) -> Result<Vec<SealedSecret>> {
    require_app(conn, app).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM secrets WHERE app = ? ORDER BY name"
    )))
    .bind(app)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn delete_secret(
    conn: &mut SqliteConnection,
    app: &str,
    name: &str,
) -> Result<()> {
    require_app(conn, app).await?;
    let done = sqlx::query("DELETE FROM secrets WHERE app = ? AND name = ?")
        .bind(app)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(secret_not_found(app, name));
    }
    Ok(())
}
