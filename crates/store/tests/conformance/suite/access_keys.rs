//! Access keys: create, read (with the sealed secret), list per app and all, delete, the
//! per-app limit, re-sealing, and deletion with their app.

use super::{app, assert_err, at};
use arcus_core::ErrorCode;
use arcus_core::access_keys::{AccessKeyView, StoredAccessKey};
use arcus_core::store::Store;

fn key(id: &str, app: &str, secs: i64) -> StoredAccessKey {
    StoredAccessKey {
        view: AccessKeyView {
            id: id.to_string(),
            app: app.to_string(),
            name: format!("key {id}"),
            created_at: at(secs),
        },
        key_id: "k1".to_string(),
        nonce: vec![7; 24],
        ciphertext: vec![1, 2, 3, 255],
    }
}

/// Create, get, list, delete, and their errors; keys go with their app.
pub async fn access_keys(s: &dyn Store) {
    s.create_app(&app("a")).await.unwrap();
    s.create_app(&app("b")).await.unwrap();
    s.create_access_key(&key("ARCAAAAAAAAAAAAAAAA1", "a", 2), 10)
        .await
        .unwrap();
    s.create_access_key(&key("ARCAAAAAAAAAAAAAAAA0", "a", 1), 10)
        .await
        .unwrap();
    s.create_access_key(&key("ARCBBBBBBBBBBBBBBBB0", "b", 3), 10)
        .await
        .unwrap();
    let got = s.get_access_key("ARCAAAAAAAAAAAAAAAA1").await.unwrap();
    assert_eq!(got, key("ARCAAAAAAAAAAAAAAAA1", "a", 2));
    assert_err(
        s.create_access_key(&key("ARCAAAAAAAAAAAAAAAA1", "b", 4), 10)
            .await,
        ErrorCode::AlreadyExists,
    );
    assert_err(
        s.create_access_key(&key("ARCCCCCCCCCCCCCCCCC0", "nope", 4), 10)
            .await,
        ErrorCode::AppNotFound,
    );
    let ids = |v: Vec<AccessKeyView>| v.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_access_keys(Some("a")).await.unwrap()),
        ["ARCAAAAAAAAAAAAAAAA0", "ARCAAAAAAAAAAAAAAAA1"]
    );
    assert_eq!(s.list_access_keys(None).await.unwrap().len(), 3);
    assert_err(
        s.list_access_keys(Some("nope")).await,
        ErrorCode::AppNotFound,
    );

    s.delete_access_key("ARCAAAAAAAAAAAAAAAA0").await.unwrap();
    assert_err(
        s.get_access_key("ARCAAAAAAAAAAAAAAAA0").await,
        ErrorCode::NotFound,
    );
    assert_err(
        s.delete_access_key("ARCAAAAAAAAAAAAAAAA0").await,
        ErrorCode::NotFound,
    );

    s.delete_app("b", false).await.unwrap();
    assert_err(
        s.get_access_key("ARCBBBBBBBBBBBBBBBB0").await,
        ErrorCode::NotFound,
    );
    assert_eq!(
        ids(s.list_access_keys(None).await.unwrap()),
        ["ARCAAAAAAAAAAAAAAAA1"]
    );
}

/// An app's keys stop at the limit, and a refused create stores nothing.
pub async fn access_keys_per_app_limit(s: &dyn Store) {
    s.create_app(&app("a")).await.unwrap();
    s.create_access_key(&key("ARCAAAAAAAAAAAAAAAA0", "a", 1), 1)
        .await
        .unwrap();
    assert_err(
        s.create_access_key(&key("ARCAAAAAAAAAAAAAAAA1", "a", 2), 1)
            .await,
        ErrorCode::Conflict,
    );
    assert_err(
        s.get_access_key("ARCAAAAAAAAAAAAAAAA1").await,
        ErrorCode::NotFound,
    );
}

/// A re-seal replaces only the sealed secret; an unknown key is `not_found`.
pub async fn access_key_reseal(s: &dyn Store) {
    s.create_app(&app("a")).await.unwrap();
    let old = key("ARCAAAAAAAAAAAAAAAA0", "a", 1);
    s.create_access_key(&old, 10).await.unwrap();
    let mut new = old.clone();
    new.key_id = "k2".to_string();
    new.nonce = vec![9; 24];
    new.ciphertext = vec![4, 5, 6];
    // Only the seal moves: a changed view in the argument is ignored.
    let mut arg = new.clone();
    arg.view.name = "renamed".to_string();
    s.reseal_access_key(&arg).await.unwrap();
    assert_eq!(s.get_access_key("ARCAAAAAAAAAAAAAAAA0").await.unwrap(), new);
    assert_err(
        s.reseal_access_key(&key("ARCZZZZZZZZZZZZZZZZ0", "a", 2))
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(s.list_access_keys(None).await.unwrap().len(), 1);
}
