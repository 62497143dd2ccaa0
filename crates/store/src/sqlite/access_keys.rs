//! Access keys of the Lambda-compatible API: their views and sealed secrets (the engine
//! seals and opens; this module only stores bytes).

use super::util::{col, db, is_unique_violation, require_app, ts_from_db, ts_to_db};
use arcus_core::access_keys::{AccessKeyView, StoredAccessKey, access_key_not_found};
use arcus_core::{Error, ErrorCode, Result};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

const COLUMNS: &str = "id, app, name, key_id, nonce, ciphertext, created_at";

fn from_row(row: &SqliteRow) -> Result<StoredAccessKey> {
    Ok(StoredAccessKey {
        view: AccessKeyView {
            id: col(row, "id")?,
            app: col(row, "app")?,
            name: col(row, "name")?,
            created_at: ts_from_db(col(row, "created_at")?, "created_at")?,
        },
        key_id: col(row, "key_id")?,
        nonce: col(row, "nonce")?,
        ciphertext: col(row, "ciphertext")?,
    })
}

pub(super) async fn create_access_key(
    conn: &mut SqliteConnection,
    key: &StoredAccessKey,
    max_per_app: usize,
) -> Result<()> {
    let v = &key.view;
    require_app(conn, &v.app).await?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_keys WHERE app = ?")
        .bind(&v.app)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if usize::try_from(n).unwrap_or(usize::MAX) >= max_per_app {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "app `{}` already has {n} access keys (the limit is {max_per_app})",
                v.app
            ),
        ));
    }
    sqlx::query(
        "INSERT INTO access_keys (id, app, name, key_id, nonce, ciphertext, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&v.id)
    .bind(&v.app)
    .bind(&v.name)
    .bind(&key.key_id)
    .bind(&key.nonce)
    .bind(&key.ciphertext)
    .bind(ts_to_db(v.created_at))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::new(
                ErrorCode::AlreadyExists,
                format!("access key `{}` exists", v.id),
            )
        } else {
            db(e)
        }
    })?;
    Ok(())
}

pub(super) async fn get_access_key(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<StoredAccessKey> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM access_keys WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    match row {
        Some(row) => from_row(&row),
        None => Err(access_key_not_found(id)),
    }
}

pub(super) async fn list_access_keys(
    conn: &mut SqliteConnection,
    app: Option<&str>,
) -> Result<Vec<AccessKeyView>> {
    let rows = match app {
        Some(app) => {
            require_app(conn, app).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM access_keys WHERE app = ? ORDER BY created_at, id"
            )))
            .bind(app)
            .fetch_all(&mut *conn)
            .await
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM access_keys ORDER BY created_at, id"
            )))
            .fetch_all(&mut *conn)
            .await
        }
    }
    .map_err(db)?;
    rows.iter().map(|r| from_row(r).map(|k| k.view)).collect()
}

pub(super) async fn delete_access_key(conn: &mut SqliteConnection, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM access_keys WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(access_key_not_found(id));
    }
    Ok(())
}

pub(super) async fn reseal_access_key(
    conn: &mut SqliteConnection,
    key: &StoredAccessKey,
) -> Result<()> {
    let done =
        sqlx::query("UPDATE access_keys SET key_id = ?, nonce = ?, ciphertext = ? WHERE id = ?")
            .bind(&key.key_id)
            .bind(&key.nonce)
            .bind(&key.ciphertext)
            .bind(&key.view.id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(access_key_not_found(&key.view.id));
    }
    Ok(())
}
