//! The audit log: entries read back as written, newest first with cursor pages,
//! filtered by app and time, kept past their app's deletion, purged by age.

use super::{app, at};
use arcus_core::ErrorCode;
use arcus_core::audit::{AuditEntry, AuditQuery};
use arcus_core::stats::Cursor;
use arcus_core::store::Store;

fn entry(n: i64, app: Option<&str>) -> AuditEntry {
    AuditEntry {
        id: format!("entry-{n}"),
        at: at(n),
        actor: "tok1".into(),
        method: "PATCH".into(),
        route: "/api/v1/apps/{app}".into(),
        app: app.map(String::from),
        function: None,
        resource: None,
        status: 200,
        client_ip: Some("127.0.0.1".into()),
        forwarded_for: None,
        request_id: format!("req-{n}"),
        before: Some(serde_json::json!({"description": "old"})),
        after: Some(serde_json::json!({"description": "new"})),
    }
}

/// Insert, read back, filter, paginate; duplicates refused.
pub async fn audit_log(s: &dyn Store) {
    s.create_app(&app("alpha")).await.unwrap();
    for n in 0..5 {
        s.insert_audit(&entry(n, Some("alpha"))).await.unwrap();
    }
    s.insert_audit(&entry(10, Some("beta"))).await.unwrap();
    s.insert_audit(&entry(11, None)).await.unwrap();
    let dup = s.insert_audit(&entry(1, Some("alpha"))).await.unwrap_err();
    assert_eq!(dup.code, ErrorCode::AlreadyExists);

    let all = s.query_audit(&AuditQuery::default()).await.unwrap();
    let ids: Vec<_> = all.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "entry-11", "entry-10", "entry-4", "entry-3", "entry-2", "entry-1", "entry-0"
        ]
    );
    assert_eq!(all.items[2], entry(4, Some("alpha")));
    assert!(all.next_cursor.is_none());

    let mut q = AuditQuery {
        app: Some("alpha".into()),
        limit: 2,
        ..AuditQuery::default()
    };
    let mut seen = Vec::new();
    for _ in 0..5 {
        let page = s.query_audit(&q).await.unwrap();
        seen.extend(page.items.iter().map(|e| e.id.clone()));
        match page.next_cursor {
            Some(c) => q.cursor = Some(Cursor::parse(&c).unwrap()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["entry-4", "entry-3", "entry-2", "entry-1", "entry-0"]
    );

    let window = AuditQuery {
        app: Some("alpha".into()),
        since: Some(at(1)),
        until: Some(at(3)),
        ..AuditQuery::default()
    };
    let got = s.query_audit(&window).await.unwrap();
    let ids: Vec<_> = got.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["entry-2", "entry-1"]);

    // History outlives the app.
    s.delete_app("alpha", true).await.unwrap();
    let kept = s
        .query_audit(&AuditQuery {
            app: Some("alpha".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(kept.items.len(), 5);
}

/// Purges delete only entries older than the cut-off, at most `limit` per call.
pub async fn audit_purge(s: &dyn Store) {
    for n in 0..6 {
        s.insert_audit(&entry(n, Some("alpha"))).await.unwrap();
    }
    assert_eq!(s.purge_audit(at(4), 3).await.unwrap(), 3);
    assert_eq!(s.purge_audit(at(4), 3).await.unwrap(), 1);
    assert_eq!(s.purge_audit(at(4), 3).await.unwrap(), 0);
    let left = s.query_audit(&AuditQuery::default()).await.unwrap();
    let ids: Vec<_> = left.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["entry-5", "entry-4"]);
}
