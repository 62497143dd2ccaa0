//! [`LocalBlobStore`]: content-addressed code blobs in a local directory.

use arcus_core::model::CodeRef;
use arcus_core::store::BlobStore;
use arcus_core::{Error, ErrorCode, Result};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// A [`BlobStore`] over a directory: the blob with hash `h` lives at
/// `<dir>/<h[0..2]>/<h>`.
///
/// Writes go to a temporary file next to the target, are flushed to disk, then renamed
/// into place, so a blob file is either absent or complete. Putting the same bytes
/// twice is a no-op.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    dir: PathBuf,
}

impl LocalBlobStore {
    /// A store rooted at `dir` (created on the first `put` if missing).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with this (validated) hash lives.
    fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }
}

/// Fails with `invalid_request` unless `sha256` is 64 lowercase hex characters, which
/// also guarantees it cannot escape the store's directory.
fn validate(sha256: &str) -> Result<()> {
    let ok = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "a blob address must be 64 lowercase hex characters (sha256)",
        ))
    }
}

/// An I/O failure as an `internal` error; the path stays in the server log.
fn io_error(err: std::io::Error, action: &str, path: &Path) -> Error {
    tracing::error!(error = %err, path = %path.display(), "blob store: cannot {action}");
    Error::internal(format!("blob store: cannot {action}"))
}

/// Writes `bytes` to `tmp`, flushes it to disk and renames it to `path`.
async fn write_atomically(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = tokio::fs::File::create(tmp).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(tmp, path).await
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, bytes: &[u8]) -> Result<CodeRef> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let code = CodeRef {
            sha256,
            size: bytes.len() as u64,
        };
        let path = self.path_of(&code.sha256);
        if tokio::fs::try_exists(&path)
            .await
            .map_err(|e| io_error(e, "check a blob", &path))?
        {
            return Ok(code);
        }
        let parent = self.dir.join(&code.sha256[..2]);
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| io_error(e, "create the blob directory", &parent))?;
        let tmp = parent.join(format!(
            ".tmp-{}-{}",
            code.sha256,
            uuid::Uuid::new_v4().simple()
        ));
        if let Err(e) = write_atomically(&tmp, &path, bytes).await {
            // Best effort: the temp file may not even exist.
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(e, "write a blob", &path));
        }
        Ok(code)
    }

    async fn get(&self, sha256: &str) -> Result<Vec<u8>> {
        validate(sha256)?;
        let path = self.path_of(sha256);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::new(
                ErrorCode::NotFound,
                format!("blob {sha256} not found"),
            )),
            Err(e) => Err(io_error(e, "read a blob", &path)),
        }
    }

    async fn contains(&self, sha256: &str) -> Result<bool> {
        validate(sha256)?;
        let path = self.path_of(sha256);
        tokio::fs::try_exists(&path)
            .await
            .map_err(|e| io_error(e, "check a blob", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn only_lowercase_hex_sha256_is_valid() {
        assert!(validate(&"a".repeat(64)).is_ok());
        assert!(validate(&"0123456789abcdef".repeat(4)).is_ok());
        for bad in [
            "".to_string(),
            "A".repeat(64),
            "g".repeat(64),
            "a".repeat(63),
            "a".repeat(65),
            format!("../{}", "a".repeat(61)),
            format!("{}/..", "a".repeat(61)),
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
    }
}
