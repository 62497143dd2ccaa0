//! Secrets: put (create and replace), get, list, delete, the per-app limit, and deletion
//! with their app.

use super::{app, app_with_function, assert_err, at};
use arcus_core::ErrorCode;
use arcus_core::secret::SealedSecret;
use arcus_core::store::Store;

fn sealed(app: &str, name: &str, byte: u8, secs: i64) -> SealedSecret {
    SealedSecret {
        app: app.to_string(),
        name: name.to_string(),
        key_id: "k1".to_string(),
        nonce: vec![byte; 24],
        ciphertext: vec![byte, 0, 255, byte],
        created_at: at(secs),
        updated_at: at(secs),
    }
}

/// Create, replace (keeping `created_at`), read, list by name, delete, and their errors.
pub async fn secrets(s: &dyn Store) {
    s.create_app(&app("a")).await.unwrap();
    s.create_app(&app("b")).await.unwrap();
    assert!(s.put_secret(&sealed("a", "ZED", 1, 1), 10).await.unwrap());
    assert!(s.put_secret(&sealed("a", "ALPHA", 2, 2), 10).await.unwrap());
    assert!(s.put_secret(&sealed("b", "ALPHA", 3, 3), 10).await.unwrap());
    let got = s.get_secret("a", "ALPHA").await.unwrap();
    assert_eq!(got, sealed("a", "ALPHA", 2, 2));

    // A replacement keeps created_at and takes the new bytes and updated_at.
    let mut next = sealed("a", "ALPHA", 9, 50);
    next.created_at = at(40);
    assert!(!s.put_secret(&next, 10).await.unwrap());
    let got = s.get_secret("a", "ALPHA").await.unwrap();
    assert_eq!(got.ciphertext, next.ciphertext);
    assert_eq!(got.nonce, next.nonce);
    assert_eq!((got.created_at, got.updated_at), (at(2), at(50)));

    let names: Vec<String> = s
        .list_secrets("a")
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert_eq!(names, ["ALPHA", "ZED"]);
    assert_eq!(s.get_secret("b", "ALPHA").await.unwrap().nonce, vec![3; 24]);

    assert_err(s.get_secret("a", "NOPE").await, ErrorCode::SecretNotFound);
    assert_err(s.get_secret("zz", "ALPHA").await, ErrorCode::AppNotFound);
    assert_err(s.list_secrets("zz").await, ErrorCode::AppNotFound);
    assert_err(
        s.put_secret(&sealed("zz", "X", 1, 1), 10).await,
        ErrorCode::AppNotFound,
    );
    s.delete_secret("a", "ZED").await.unwrap();
    assert_err(s.delete_secret("a", "ZED").await, ErrorCode::SecretNotFound);
    assert_err(s.delete_secret("zz", "ZED").await, ErrorCode::AppNotFound);
    assert_eq!(s.list_secrets("a").await.unwrap().len(), 1);
    assert_eq!(s.list_secrets("b").await.unwrap().len(), 1);
}

/// The per-app limit counts only new names of that app; replacing is always allowed.
pub async fn secrets_per_app_limit(s: &dyn Store) {
    s.create_app(&app("a")).await.unwrap();
    s.create_app(&app("b")).await.unwrap();
    for name in ["S1", "S2", "S3"] {
        s.put_secret(&sealed("a", name, 1, 1), 3).await.unwrap();
    }
    assert_err(
        s.put_secret(&sealed("a", "S4", 1, 1), 3).await,
        ErrorCode::Conflict,
    );
    assert_eq!(s.list_secrets("a").await.unwrap().len(), 3);
    assert!(!s.put_secret(&sealed("a", "S2", 7, 2), 3).await.unwrap());
    s.put_secret(&sealed("b", "S4", 1, 1), 3).await.unwrap();
    s.delete_secret("a", "S1").await.unwrap();
    s.put_secret(&sealed("a", "S4", 1, 1), 3).await.unwrap();
}

/// Deleting an app (forced, with functions) deletes its secrets; a new app of the same
/// name starts with none.
pub async fn secrets_deleted_with_app(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.put_secret(&sealed("a", "S", 1, 1), 10).await.unwrap();
    s.delete_app("a", true).await.unwrap();
    s.create_app(&app("a")).await.unwrap();
    assert!(s.list_secrets("a").await.unwrap().is_empty());
    assert_err(s.get_secret("a", "S").await, ErrorCode::SecretNotFound);
}
