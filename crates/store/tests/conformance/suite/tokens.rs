//! Tokens: create, read, list, revoke, last use, the per-app limit, and revocation with
//! an app they have a scope in.

use super::{app, assert_err, at};
use arcus_core::ErrorCode;
use arcus_core::store::Store;
use arcus_core::tokens::{Scope, StoredToken, TokenView};

fn token(id: &str, scopes: &[&str], secs: i64) -> StoredToken {
    StoredToken {
        view: TokenView {
            id: id.to_string(),
            name: format!("token {id}"),
            scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
            created_at: at(secs),
            expires_at: Some(at(secs + 3600)),
            last_used_at: None,
        },
        secret_sha256: format!("{id:0>64}"),
    }
}

/// Create, read (with the hash), list (oldest first, views only), touch, delete.
pub async fn tokens(s: &dyn Store) {
    let t1 = token("t1", &["app:a:manage", "function:b/f:invoke"], 2);
    let mut t2 = token("t2", &["admin"], 1);
    t2.view.expires_at = None;
    s.create_token(&t1, 10).await.unwrap();
    s.create_token(&t2, 10).await.unwrap();
    assert_eq!(s.get_token("t1").await.unwrap(), t1);
    assert_eq!(s.get_token("t2").await.unwrap(), t2);
    assert_err(s.get_token("t3").await, ErrorCode::NotFound);
    assert_err(s.create_token(&t1, 10).await, ErrorCode::AlreadyExists);
    let listed = s.list_tokens().await.unwrap();
    assert_eq!(listed, vec![t2.view.clone(), t1.view.clone()]);

    s.touch_token("t1", at(50)).await.unwrap();
    assert_eq!(
        s.get_token("t1").await.unwrap().view.last_used_at,
        Some(at(50))
    );
    s.touch_token("gone", at(50)).await.unwrap();

    s.delete_token("t1").await.unwrap();
    assert_err(s.get_token("t1").await, ErrorCode::NotFound);
    assert_err(s.delete_token("t1").await, ErrorCode::NotFound);
    assert_eq!(s.list_tokens().await.unwrap(), vec![t2.view]);
    // A deleted token's id frees its place in the per-app count.
    s.create_token(&token("t3", &["app:a:invoke"], 3), 1)
        .await
        .unwrap();
}

/// `max_per_app` counts tokens per app they have a scope in; over it is `conflict` and
/// nothing is stored.
pub async fn token_limit_per_app(s: &dyn Store) {
    s.create_token(&token("t1", &["app:a:manage"], 1), 2)
        .await
        .unwrap();
    s.create_token(&token("t2", &["app:a:invoke", "app:b:invoke"], 2), 2)
        .await
        .unwrap();
    let over = token("t3", &["function:a/f:invoke", "app:c:invoke"], 3);
    assert_err(s.create_token(&over, 2).await, ErrorCode::Conflict);
    assert_err(s.get_token("t3").await, ErrorCode::NotFound);
    assert_eq!(s.list_tokens().await.unwrap().len(), 2);
    // Other apps still have room; admin tokens count for no app.
    s.create_token(&token("t4", &["app:b:manage"], 4), 2)
        .await
        .unwrap();
    s.create_token(&token("t5", &["admin"], 5), 0)
        .await
        .unwrap();
}

/// Deleting an app revokes every token with a scope in it, and only those.
pub async fn tokens_revoked_with_their_app(s: &dyn Store) {
    s.create_app(&app("a")).await.unwrap();
    s.create_app(&app("b")).await.unwrap();
    s.create_token(&token("only-a", &["app:a:manage"], 1), 10)
        .await
        .unwrap();
    s.create_token(&token("a-and-b", &["app:a:invoke", "app:b:invoke"], 2), 10)
        .await
        .unwrap();
    s.create_token(&token("only-b", &["function:b/f:invoke"], 3), 10)
        .await
        .unwrap();
    s.delete_app("a", false).await.unwrap();
    let left: Vec<String> = s
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, vec!["only-b"]);
    // A new app of the same name inherits nothing, and its count starts at zero.
    s.create_app(&app("a")).await.unwrap();
    s.create_token(&token("new-a", &["app:a:manage"], 4), 1)
        .await
        .unwrap();
}
