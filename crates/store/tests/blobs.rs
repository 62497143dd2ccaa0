//! `LocalBlobStore` tests.
#![allow(clippy::unwrap_used)]

use arcus_core::ErrorCode;
use arcus_core::store::BlobStore;
use arcus_store::LocalBlobStore;

/// sha256 of `hello`.
const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn store() -> (tempfile::TempDir, LocalBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::new(dir.path().join("blobs"));
    (dir, store)
}

#[tokio::test]
async fn put_get_roundtrip() {
    let (_dir, store) = store();
    let code = store.put(b"hello").await.unwrap();
    assert_eq!(code.sha256, HELLO);
    assert_eq!(code.size, 5);
    assert!(store.contains(HELLO).await.unwrap());
    assert_eq!(store.get(HELLO).await.unwrap(), b"hello");
    let path = store.dir().join(&HELLO[..2]).join(HELLO);
    assert_eq!(std::fs::read(path).unwrap(), b"hello");

    let empty = store.put(b"").await.unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(store.get(&empty.sha256).await.unwrap(), b"");
}

#[tokio::test]
async fn put_is_idempotent_and_leaves_no_temp_files() {
    let (_dir, store) = store();
    let first = store.put(b"hello").await.unwrap();
    let second = store.put(b"hello").await.unwrap();
    assert_eq!(first, second);
    let (a, b) = tokio::join!(store.put(b"same"), store.put(b"same"));
    assert_eq!(a.unwrap(), b.unwrap());
    let mut files = Vec::new();
    for shard in std::fs::read_dir(store.dir()).unwrap() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            files.push(file.unwrap().file_name().into_string().unwrap());
        }
    }
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.len() == 64), "{files:?}");
    assert_eq!(store.get(HELLO).await.unwrap(), b"hello");
}

#[tokio::test]
async fn bad_sha_is_invalid_request() {
    let (_dir, store) = store();
    store.put(b"hello").await.unwrap();
    for bad in [
        "",
        "abc",
        &HELLO.to_uppercase(),
        &format!("{HELLO}0"),
        &format!("../../{}", &HELLO[6..]),
        &format!("{}/{}", &HELLO[..2], &HELLO[3..]),
    ] {
        assert_eq!(
            store.get(bad).await.unwrap_err().code,
            ErrorCode::InvalidRequest,
            "{bad}"
        );
        assert_eq!(
            store.contains(bad).await.unwrap_err().code,
            ErrorCode::InvalidRequest,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn missing_blob_is_not_found() {
    let (_dir, store) = store();
    let missing = "0".repeat(64);
    assert_eq!(
        store.get(&missing).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert!(!store.contains(&missing).await.unwrap());
    store.put(b"hello").await.unwrap();
    assert_eq!(
        store.get(&missing).await.unwrap_err().code,
        ErrorCode::NotFound
    );
}
