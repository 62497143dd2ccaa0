//! Apps, functions and versions.

use super::*;

/// App create / get / list / duplicate / not found / delete (with and without force).
pub async fn apps(s: &dyn Store) {
    assert!(s.list_apps().await.unwrap().is_empty());
    s.create_app(&app("zeta")).await.unwrap();
    s.create_app(&app("alpha")).await.unwrap();
    assert_eq!(s.get_app("alpha").await.unwrap(), app("alpha"));
    let names: Vec<_> = s
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);

    let mut dup = app("alpha");
    dup.description = "another".to_string();
    fails_unchanged(s, ErrorCode::AlreadyExists, s.create_app(&dup)).await;
    assert_eq!(
        s.get_app("alpha").await.unwrap().description,
        "the alpha app"
    );
    assert_err(s.get_app("missing").await, ErrorCode::AppNotFound);
    fails_unchanged(s, ErrorCode::AppNotFound, s.delete_app("missing", true)).await;

    // Update replaces description and quotas; an unknown app is not created.
    let mut limited = app("alpha");
    limited.description = "limited".to_string();
    limited.quotas = arcus_core::scaling::AppQuotas {
        max_instances: Some(3),
        max_memory_mb: Some(512),
        log_retention_days: Some(3),
        log_retention_mb: None,
        rate_limit_rps: Some(50),
        rate_limit_burst: None,
    };
    s.update_app(&limited).await.unwrap();
    assert_eq!(s.get_app("alpha").await.unwrap(), limited);
    assert_eq!(s.list_apps().await.unwrap()[0], limited);
    fails_unchanged(s, ErrorCode::AppNotFound, s.update_app(&app("missing"))).await;
    s.update_app(&app("alpha")).await.unwrap();

    // Deleting an empty app needs no force.
    s.delete_app("zeta", false).await.unwrap();
    assert_err(s.get_app("zeta").await, ErrorCode::AppNotFound);

    // With functions: conflict unless forced; force deletes everything under it.
    s.create_function(&function("alpha", "f")).await.unwrap();
    s.publish_version("alpha", "f", "v1", at(2)).await.unwrap();
    s.put_alias("alpha", "f", "live", to(1), at(3))
        .await
        .unwrap();
    fails_unchanged(s, ErrorCode::Conflict, s.delete_app("alpha", false)).await;
    s.delete_app("alpha", true).await.unwrap();
    assert!(s.list_apps().await.unwrap().is_empty());
    assert_err(s.get_function("alpha", "f").await, ErrorCode::AppNotFound);
    assert_err(s.list_functions("alpha").await, ErrorCode::AppNotFound);

    // A recreated app starts empty.
    s.create_app(&app("alpha")).await.unwrap();
    assert!(s.list_functions("alpha").await.unwrap().is_empty());
    s.create_function(&function("alpha", "f")).await.unwrap();
    assert!(s.list_versions("alpha", "f").await.unwrap().is_empty());
    assert!(s.list_aliases("alpha", "f").await.unwrap().is_empty());
}

/// Function create / get / list / update / duplicates / not found.
pub async fn functions(s: &dyn Store) {
    fails_unchanged(
        s,
        ErrorCode::AppNotFound,
        s.create_function(&function("nope", "f")),
    )
    .await;
    s.create_app(&app("a")).await.unwrap();
    s.create_app(&app("b")).await.unwrap();
    let f2 = function("a", "f2");
    let mut f1 = function("a", "f1");
    f1.code = None;
    f1.meta = FunctionMeta::default();
    s.create_function(&f2).await.unwrap();
    s.create_function(&f1).await.unwrap();
    s.create_function(&function("b", "f1")).await.unwrap();

    assert_eq!(s.get_function("a", "f1").await.unwrap(), f1);
    assert_eq!(s.get_function("a", "f2").await.unwrap(), f2);
    assert_eq!(
        s.list_functions("a").await.unwrap(),
        vec![f1.clone(), f2.clone()]
    );
    assert_eq!(s.list_functions("b").await.unwrap().len(), 1);
    assert_err(s.list_functions("nope").await, ErrorCode::AppNotFound);
    assert_err(
        s.get_function("a", "nope").await,
        ErrorCode::FunctionNotFound,
    );
    assert_err(s.get_function("nope", "f1").await, ErrorCode::AppNotFound);

    // Duplicate name (with another id), duplicate id (with another name).
    let mut dup = function("a", "f1");
    dup.id = "another-id".to_string();
    fails_unchanged(s, ErrorCode::AlreadyExists, s.create_function(&dup)).await;
    let mut dup_id = function("a", "f3");
    dup_id.id = f1.id.clone();
    fails_unchanged(s, ErrorCode::AlreadyExists, s.create_function(&dup_id)).await;

    // Update replaces config, meta, code and updated_at; not id or created_at.
    let mut changed = f1.clone();
    changed.config = config(512);
    changed.meta.description = "changed".to_string();
    changed.meta.tags = vec!["x".to_string()];
    changed.code = Some(CodeRef {
        sha256: sha('b'),
        size: 7,
    });
    changed.updated_at = at(50);
    let mut sneaky = changed.clone();
    sneaky.created_at = at(40);
    s.update_function(&sneaky).await.unwrap();
    assert_eq!(s.get_function("a", "f1").await.unwrap(), changed);
    // Code can be removed again.
    changed.code = None;
    s.update_function(&changed).await.unwrap();
    assert_eq!(s.get_function("a", "f1").await.unwrap(), changed);

    let mut missing = function("a", "nope");
    fails_unchanged(s, ErrorCode::FunctionNotFound, s.update_function(&missing)).await;
    missing.app = "nope".to_string();
    fails_unchanged(s, ErrorCode::AppNotFound, s.update_function(&missing)).await;

    // Delete.
    fails_unchanged(
        s,
        ErrorCode::FunctionNotFound,
        s.delete_function("a", "nope", false),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::AppNotFound,
        s.delete_function("nope", "f1", false),
    )
    .await;
    s.delete_function("a", "f1", false).await.unwrap();
    assert_err(s.get_function("a", "f1").await, ErrorCode::FunctionNotFound);
    assert_eq!(s.list_functions("a").await.unwrap(), vec![f2]);
    assert_eq!(
        s.list_functions("b").await.unwrap().len(),
        1,
        "same name in another app"
    );
}

/// Deleting a function deletes its versions, aliases, alias history, records and logs;
/// a function recreated under the same name starts from scratch.
pub async fn function_delete_cascades(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "other")).await.unwrap();
    s.publish_version("a", "f", "v1", at(2)).await.unwrap();
    s.publish_version("a", "f", "v2", at(3)).await.unwrap();
    s.put_alias("a", "f", "live", to(1), at(4)).await.unwrap();
    s.put_alias("a", "f", "live", to(2), at(5)).await.unwrap();
    s.insert_invocations(&[
        invocation("i1", "a", "f", 6).into(),
        invocation("o1", "a", "other", 6).into(),
    ])
    .await
    .unwrap();
    s.insert_logs(&[
        log("i1", "a", "f", 6, "hello"),
        log("o1", "a", "other", 6, "hi"),
    ])
    .await
    .unwrap();
    s.publish_version("a", "other", "o1", at(7)).await.unwrap();
    s.put_alias("a", "other", "live", to(1), at(7))
        .await
        .unwrap();
    let other_before = (
        s.list_versions("a", "other").await.unwrap(),
        s.list_aliases("a", "other").await.unwrap(),
        s.list_invocations("a", "other", &query(None, 0))
            .await
            .unwrap(),
        s.list_logs("a", "other", &query(None, 0)).await.unwrap(),
    );

    s.delete_function("a", "f", false).await.unwrap();
    assert_err(s.get_function("a", "f").await, ErrorCode::FunctionNotFound);
    assert_err(s.list_versions("a", "f").await, ErrorCode::FunctionNotFound);
    assert_err(
        s.get_alias("a", "f", "live").await,
        ErrorCode::FunctionNotFound,
    );

    assert_err(s.get_invocation("i1").await, ErrorCode::InvocationNotFound);
    s.create_function(&function("a", "f")).await.unwrap();
    assert!(s.list_versions("a", "f").await.unwrap().is_empty());
    assert!(s.list_aliases("a", "f").await.unwrap().is_empty());
    assert!(
        s.list_invocations("a", "f", &query(None, 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_logs("a", "f", &query(None, 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.publish_version("a", "f", "again", at(8))
            .await
            .unwrap()
            .version,
        1
    );
    let alias = s.put_alias("a", "f", "live", to(1), at(9)).await.unwrap();
    assert_eq!(alias.previous, None, "no history survives the delete");

    let other_after = (
        s.list_versions("a", "other").await.unwrap(),
        s.list_aliases("a", "other").await.unwrap(),
        s.list_invocations("a", "other", &query(None, 0))
            .await
            .unwrap(),
        s.list_logs("a", "other", &query(None, 0)).await.unwrap(),
    );
    assert_eq!(
        other_before, other_after,
        "the sibling function is untouched"
    );
}

/// Versions snapshot the draft, are immutable, numbered 1, 2, 3… never reused.
pub async fn versions(s: &dyn Store) {
    let mut f = app_with_function(s, "a", "f").await;
    f.code = None;
    s.update_function(&f).await.unwrap();
    fails_unchanged(
        s,
        ErrorCode::Conflict,
        s.publish_version("a", "f", "no code", at(2)),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::FunctionNotFound,
        s.publish_version("a", "g", "", at(2)),
    )
    .await;
    fails_unchanged(
        s,
        ErrorCode::AppNotFound,
        s.publish_version("b", "f", "", at(2)),
    )
    .await;

    f.code = Some(CodeRef {
        sha256: sha('1'),
        size: 1,
    });
    f.config = config(100);
    s.update_function(&f).await.unwrap();
    let v1 = s.publish_version("a", "f", "first", at(3)).await.unwrap();
    let expected = Version {
        version: 1,
        description: "first".to_string(),
        sha256: sha('1'),
        config: config(100),
        created_at: at(3),
    };
    assert_eq!(v1, expected);
    assert_eq!(s.get_version("a", "f", 1).await.unwrap(), expected);

    // Changing the draft does not change version 1.
    f.code = Some(CodeRef {
        sha256: sha('2'),
        size: 2,
    });
    f.config = config(200);
    s.update_function(&f).await.unwrap();
    assert_eq!(s.get_version("a", "f", 1).await.unwrap(), expected);
    let v2 = s.publish_version("a", "f", "second", at(4)).await.unwrap();
    assert_eq!(
        (v2.version, v2.sha256.as_str(), &v2.config),
        (2, sha('2').as_str(), &config(200))
    );
    assert_eq!(
        s.list_versions("a", "f").await.unwrap(),
        vec![expected.clone(), v2.clone()]
    );

    assert_err(s.get_version("a", "f", 3).await, ErrorCode::VersionNotFound);
    assert_err(s.get_version("a", "f", 0).await, ErrorCode::VersionNotFound);
    assert_err(
        s.get_version("a", "g", 1).await,
        ErrorCode::FunctionNotFound,
    );
    assert_err(s.list_versions("a", "g").await, ErrorCode::FunctionNotFound);
    fails_unchanged(s, ErrorCode::VersionNotFound, s.delete_version("a", "f", 3)).await;
    fails_unchanged(
        s,
        ErrorCode::FunctionNotFound,
        s.delete_version("a", "g", 1),
    )
    .await;

    // Numbers are never reused, even after deleting the newest.
    s.delete_version("a", "f", 2).await.unwrap();
    assert_err(s.get_version("a", "f", 2).await, ErrorCode::VersionNotFound);
    assert_eq!(
        s.publish_version("a", "f", "third", at(5))
            .await
            .unwrap()
            .version,
        3
    );
    s.delete_version("a", "f", 1).await.unwrap();
    s.delete_version("a", "f", 3).await.unwrap();
    assert!(s.list_versions("a", "f").await.unwrap().is_empty());
    assert_eq!(
        s.publish_version("a", "f", "fourth", at(6))
            .await
            .unwrap()
            .version,
        4
    );
    assert_eq!(numbers(&s.list_versions("a", "f").await.unwrap()), [4]);
    // The function itself is unchanged by publishing.
    assert_eq!(s.get_function("a", "f").await.unwrap(), f);
}
