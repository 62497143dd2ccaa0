//! Aliases and their rollback history.

use super::*;

/// Aliases: create, canary, validation of targets, listing, deleting, protection of
/// the versions they use.
pub async fn aliases(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    for i in 1..=3 {
        s.publish_version("a", "f", &format!("v{i}"), at(i))
            .await
            .unwrap();
    }
    fails_unchanged(
        s,
        ErrorCode::VersionNotFound,
        s.put_alias("a", "f", "live", to(9), at(5)),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::VersionNotFound,
        s.put_alias("a", "f", "live", canary(1, 9, 10), at(5)),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::FunctionNotFound,
        s.put_alias("a", "g", "live", to(1), at(5)),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::InvalidRequest,
        s.put_alias("a", "f", "live", canary(1, 2, 101), at(5)),
    )
    .await;

    let live = s
        .put_alias("a", "f", "live", canary(1, 2, 10), at(6))
        .await
        .unwrap();
    let expected = Alias {
        name: "live".to_string(),
        target: canary(1, 2, 10),
        previous: None,
        updated_at: at(6),
    };
    assert_eq!(live, expected);
    assert_eq!(s.get_alias("a", "f", "live").await.unwrap(), expected);
    let beta = s.put_alias("a", "f", "beta", to(3), at(7)).await.unwrap();
    assert_eq!(
        s.list_aliases("a", "f").await.unwrap(),
        vec![beta.clone(), expected.clone()]
    );
    assert_err(
        s.get_alias("a", "f", "nope").await,
        ErrorCode::AliasNotFound,
    );
    assert_err(
        s.get_alias("a", "g", "live").await,
        ErrorCode::FunctionNotFound,
    );
    assert_err(s.list_aliases("a", "g").await, ErrorCode::FunctionNotFound);

    // Moving an existing alias to an unknown version changes nothing.
    fails_unchanged(
        s,
        ErrorCode::VersionNotFound,
        s.put_alias("a", "f", "live", canary(3, 9, 50), at(8)),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::VersionNotFound,
        s.put_alias("a", "f", "live", to(0), at(8)),
    )
    .await;

    // Versions in use (main or canary) cannot be deleted.
    fails_unchanged(s, ErrorCode::Conflict, s.delete_version("a", "f", 1)).await;
    fails_unchanged(s, ErrorCode::Conflict, s.delete_version("a", "f", 2)).await;
    fails_unchanged(s, ErrorCode::Conflict, s.delete_version("a", "f", 3)).await;

    // Dropping the canary frees its version.
    let moved = s.put_alias("a", "f", "live", to(1), at(9)).await.unwrap();
    assert_eq!(moved.target, to(1));
    assert_eq!(moved.previous, Some(canary(1, 2, 10)));
    s.delete_version("a", "f", 2).await.unwrap();

    fails_unchanged(
        s,
        ErrorCode::AliasNotFound,
        s.delete_alias("a", "f", "nope"),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::FunctionNotFound,
        s.delete_alias("a", "g", "live"),
    )
    .await;
    s.delete_alias("a", "f", "beta").await.unwrap();
    assert_err(
        s.get_alias("a", "f", "beta").await,
        ErrorCode::AliasNotFound,
    );
    s.delete_version("a", "f", 3).await.unwrap();
    assert_eq!(s.list_aliases("a", "f").await.unwrap().len(), 1);

    // Deleting an alias deletes its history.
    s.delete_alias("a", "f", "live").await.unwrap();
    let fresh = s.put_alias("a", "f", "live", to(1), at(10)).await.unwrap();
    assert_eq!(fresh.previous, None);
    fails_unchanged(
        s,
        ErrorCode::Conflict,
        s.rollback_alias("a", "f", "live", at(11)),
    )
    .await;
}

/// Rollback pops the alias's history: v1 → v2 → v3, back to v2, back to v1, conflict.
pub async fn alias_rollback(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    for i in 1..=4 {
        s.publish_version("a", "f", &format!("v{i}"), at(i))
            .await
            .unwrap();
    }
    assert_eq!(
        s.put_alias("a", "f", "live", to(1), at(10))
            .await
            .unwrap()
            .previous,
        None
    );
    assert_eq!(
        s.put_alias("a", "f", "live", to(2), at(11))
            .await
            .unwrap()
            .previous,
        Some(to(1))
    );
    let a = s.put_alias("a", "f", "live", to(3), at(12)).await.unwrap();
    assert_eq!((a.target, a.previous), (to(3), Some(to(2))));
    // Putting the current target again only touches the timestamp.
    let same = s.put_alias("a", "f", "live", to(3), at(13)).await.unwrap();
    assert_eq!(
        (same.target, same.previous, same.updated_at),
        (to(3), Some(to(2)), at(13))
    );

    let back = s.rollback_alias("a", "f", "live", at(14)).await.unwrap();
    assert_eq!(
        back,
        Alias {
            name: "live".to_string(),
            target: to(2),
            previous: Some(to(1)),
            updated_at: at(14)
        }
    );
    assert_eq!(s.get_alias("a", "f", "live").await.unwrap(), back);
    let back = s.rollback_alias("a", "f", "live", at(15)).await.unwrap();
    assert_eq!((back.target, back.previous), (to(1), None));
    fails_unchanged(
        s,
        ErrorCode::Conflict,
        s.rollback_alias("a", "f", "live", at(16)),
    )
    .await;
    assert_eq!(s.get_alias("a", "f", "live").await.unwrap().target, to(1));
    fails_unchanged(
        s,
        ErrorCode::AliasNotFound,
        s.rollback_alias("a", "f", "nope", at(16)),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::FunctionNotFound,
        s.rollback_alias("a", "g", "live", at(16)),
    )
    .await;

    // Canaries are part of the remembered target.
    s.put_alias("a", "f", "live", canary(1, 2, 25), at(17))
        .await
        .unwrap();
    s.put_alias("a", "f", "live", to(3), at(18)).await.unwrap();
    let back = s.rollback_alias("a", "f", "live", at(19)).await.unwrap();
    assert_eq!(
        (back.target, back.previous),
        (canary(1, 2, 25), Some(to(1)))
    );

    // History entries of a deleted version are forgotten: rollback never targets it.
    s.put_alias("a", "f", "live", to(4), at(20)).await.unwrap(); // history: 1, 1+2c
    s.put_alias("a", "f", "live", to(3), at(21)).await.unwrap(); // history: 1, 1+2c, 4
    s.delete_version("a", "f", 4).await.unwrap();
    let a = s.get_alias("a", "f", "live").await.unwrap();
    assert_eq!(a.previous, Some(canary(1, 2, 25)));
    s.delete_version("a", "f", 2).await.unwrap();
    assert_eq!(
        s.get_alias("a", "f", "live").await.unwrap().previous,
        Some(to(1))
    );
    let back = s.rollback_alias("a", "f", "live", at(22)).await.unwrap();
    assert_eq!((back.target, back.previous), (to(1), None));
}
