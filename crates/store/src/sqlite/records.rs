//! Constants shared by the record and log modules, and node settings.

use super::util::db;
use arcus_core::Result;
use sqlx::SqliteConnection;
use std::sync::Arc;

/// The number of rows a list returns when the query's `limit` is 0.
pub const DEFAULT_LIMIT: u32 = 100;

/// Rows per multi-row `INSERT` (SQLite allows 32,766 bound values per statement); a
/// power of two (see [`insert_chunks`]).
pub(super) const ROWS_PER_INSERT: usize = 256;

/// Splits `rows` into the slices of one multi-row `INSERT` each: [`ROWS_PER_INSERT`]
/// rows while that many remain, then decreasing powers of two. A batch of any size is
/// thus written by statements of at most nine distinct shapes, which stay prepared in
/// the connection's statement cache (a last chunk of arbitrary size would be parsed and
/// planned anew by nearly every batch, and evict statements worth keeping).
pub(super) fn insert_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = if rows.len() >= ROWS_PER_INSERT {
            ROWS_PER_INSERT
        } else {
            1 << rows.len().ilog2()
        };
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// Shared copies of the text a batch binds over and over (app and function names, enum
/// values, an invocation's id on each of its lines). sqlx binds an `Arc<str>` as it is,
/// but copies a `&str` or `&String` into a new `Arc<String>` (two allocations) per value.
pub(super) struct SharedText {
    recent: Vec<Arc<str>>,
    keep: usize,
}

impl SharedText {
    /// Remembers the `keep` most recently first-used strings.
    pub(super) fn new(keep: usize) -> Self {
        Self {
            recent: Vec::with_capacity(keep),
            keep: keep.max(1),
        }
    }

    /// A shared copy of `s`: a remembered one, or a new one (then remembered).
    pub(super) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.recent.iter().rev().find(|a| ***a == *s) {
            return a.clone();
        }
        if self.recent.len() >= self.keep {
            self.recent.remove(0);
        }
        let a: Arc<str> = Arc::from(s);
        self.recent.push(a.clone());
        a
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_chunks_cover_the_rows_in_order_with_few_shapes() {
        for n in [0, 1, 2, 3, 255, 256, 257, 700, 2048, 2049] {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = insert_chunks(&rows).collect();
            assert_eq!(chunks.concat(), rows, "{n} rows");
            assert!(
                chunks
                    .iter()
                    .all(|c| c.len().is_power_of_two() && c.len() <= ROWS_PER_INSERT)
            );
            // Full chunks first, then strictly decreasing sizes.
            let tail: Vec<usize> = chunks
                .iter()
                .map(|c| c.len())
                .filter(|&l| l < ROWS_PER_INSERT)
                .collect();
            assert!(tail.windows(2).all(|w| w[0] > w[1]), "{n}: {tail:?}");
        }
        assert_eq!(
            insert_chunks(&[0; 700])
                .map(<[i32]>::len)
                .collect::<Vec<_>>(),
            [256, 256, 128, 32, 16, 8, 4]
        );
    }

    #[test]
    fn shared_text_reuses_remembered_copies() {
        let mut t = SharedText::new(2);
        let a = t.get("app");
        assert!(Arc::ptr_eq(&a, &t.get("app")));
        let f = t.get("fn");
        assert!(Arc::ptr_eq(&f, &t.get("fn")));
        t.get("other"); // forgets "app", the oldest
        assert!(!Arc::ptr_eq(&a, &t.get("app")));
        assert_eq!(&*t.get("fn"), "fn");
    }
}
