//! The async event queue: enqueue with idempotency, claims with leases and limits,
//! FIFO claims, guarded finishes with follow-ups, dead letters, redrive, cancellation on
//! forced delete, lease release, purge.

use super::*;
use arcus_core::events::{AttemptResult, EventStatus, NewEvent, PayloadKind};
use arcus_core::record::TriggerKind;
use arcus_core::store::EventQuery;

fn event(id: &str, f: &str, secs: i64, key: Option<&str>) -> NewEvent {
    NewEvent {
        id: id.to_string(),
        app: "a".to_string(),
        function: f.to_string(),
        qualifier: "live".to_string(),
        trigger: TriggerKind::Async,
        kind: PayloadKind::Json,
        payload: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        idempotency_key: key.map(String::from),
        now: at(secs),
        // Kept as given, present or not (round trip checked by `assert_eq!` on `new`).
        traceparent: key.map(|_| format!("00-{:032x}-00f067aa0ba902b7-01", secs + 1)),
    }
}

fn done(id: &str, attempt: u32, status: EventStatus, secs: i64) -> AttemptResult {
    AttemptResult {
        id: id.to_string(),
        attempt,
        status,
        retry_at: None,
        result: Some(serde_json::json!({"ok": id})),
        error_code: None,
        follow_ups: Vec::new(),
        now: at(secs),
    }
}

async fn status(s: &dyn Store, id: &str) -> (EventStatus, u32) {
    let e = s.get_event(id).await.unwrap();
    (e.status, e.attempts)
}

/// Enqueues `queued` events `e0…` on function `a/f` (created here), leases the first
/// `run` of them and finishes those with `results`; returns the function.
async fn with_finished(
    s: &dyn Store,
    queued: i64,
    run: u32,
    results: &[AttemptResult],
) -> arcus_core::model::Function {
    let f = app_with_function(s, "a", "f").await;
    let batch: Vec<_> = (0..queued)
        .map(|i| event(&format!("e{i}"), "f", i, None))
        .collect();
    s.enqueue_events(&batch).await.unwrap();
    s.claim_events(&f.id, run, false, "n", at(100), at(10))
        .await
        .unwrap();
    s.finish_attempts(results).await.unwrap();
    f
}

/// Enqueue: ids per event, idempotency keys within 24 h, unknown functions refused
/// without failing the batch; every field round-trips.
pub async fn event_enqueue(s: &dyn Store) {
    let f = app_with_function(s, "a", "f").await;
    let ids = s
        .enqueue_events(&[
            event("e1", "f", 0, Some("k")),
            event("e2", "f", 1, Some("k")),
            event("e3", "nope", 1, None),
            event("e4", "f", 2, None),
        ])
        .await
        .unwrap();
    assert_eq!(ids[0].as_deref().unwrap(), "e1");
    assert_eq!(ids[1].as_deref().unwrap(), "e1", "same key in one batch");
    assert_eq!(
        ids[2].as_ref().unwrap_err().code,
        ErrorCode::FunctionNotFound
    );
    assert_eq!(ids[3].as_deref().unwrap(), "e4");
    let later = s
        .enqueue_events(&[event("e5", "f", 3600, Some("k"))])
        .await
        .unwrap();
    assert_eq!(
        later[0].as_deref().unwrap(),
        "e1",
        "same key later the same day"
    );
    let next_day = s
        .enqueue_events(&[event("e6", "f", 25 * 3600, Some("k"))])
        .await
        .unwrap();
    assert_eq!(next_day[0].as_deref().unwrap(), "e6", "the key expired");
    let e = s.get_event("e1").await.unwrap();
    assert_eq!(e.new, event("e1", "f", 0, Some("k")));
    assert_eq!(
        (e.status, e.attempts, e.due_at),
        (EventStatus::Queued, 0, at(0))
    );
    assert_err(s.get_event("e2").await, ErrorCode::InvocationNotFound);
    let (due, _) = s.due_functions(at(10)).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].function_id, f.id);
    assert_eq!((due[0].app.as_str(), due[0].function.as_str()), ("a", "f"));
}

/// Claims: oldest first, at most `limit`, lease until; an expired lease is due again;
/// a stale finish is ignored; follow-ups of a finish are enqueued.
pub async fn event_claims_and_finishes(s: &dyn Store) {
    let f = app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    let batch: Vec<_> = (0..5)
        .map(|i| event(&format!("e{i}"), "f", i, None))
        .collect();
    s.enqueue_events(&batch).await.unwrap();
    let got = s
        .claim_events(&f.id, 2, false, "n1", at(100), at(10))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.new.id.as_str()).collect::<Vec<_>>(),
        ["e0", "e1"]
    );
    assert!(
        got.iter()
            .all(|e| e.status == EventStatus::Running && e.attempts == 1)
    );
    let rest = s
        .claim_events(&f.id, 10, false, "n2", at(100), at(10))
        .await
        .unwrap();
    assert_eq!(rest.len(), 3);
    assert!(
        s.claim_events(&f.id, 10, false, "n2", at(100), at(10))
            .await
            .unwrap()
            .is_empty()
    );
    let (due, next) = s.due_functions(at(10)).await.unwrap();
    assert!(due.is_empty());
    assert_eq!(next, Some(at(100)), "the lease end is the next due time");

    // e0 succeeds (with a follow-up to g); e1's lease expires and another worker retries it.
    let mut ok = done("e0", 1, EventStatus::Succeeded, 11);
    ok.follow_ups = vec![event("d0", "g", 11, Some("destination:e0"))];
    s.finish_attempts(&[ok]).await.unwrap();
    assert_eq!(status(s, "e0").await, (EventStatus::Succeeded, 1));
    assert_eq!(
        s.get_event("e0").await.unwrap().result,
        Some(serde_json::json!({"ok": "e0"}))
    );
    assert_eq!(status(s, "d0").await, (EventStatus::Queued, 0));
    let again = s
        .claim_events(&f.id, 10, false, "n3", at(300), at(150))
        .await
        .unwrap();
    let again_ids: Vec<_> = again.iter().map(|e| e.new.id.as_str()).collect();
    assert_eq!(again_ids, ["e1", "e2", "e3", "e4"]);
    assert_eq!(again[0].attempts, 2);
    // The first worker's late result for e1 (attempt 1) changes nothing.
    let mut stale = done("e1", 1, EventStatus::Succeeded, 151);
    stale.follow_ups = vec![event("d1", "g", 151, None)];
    s.finish_attempts(&[stale]).await.unwrap();
    assert_eq!(status(s, "e1").await, (EventStatus::Running, 2));
    assert_err(s.get_event("d1").await, ErrorCode::InvocationNotFound);
    // A failure with a retry time is due again only then.
    let mut failed = done("e1", 2, EventStatus::Failed, 152);
    failed.retry_at = Some(at(200));
    failed.error_code = Some("function_error".into());
    s.finish_attempts(&[failed, done("e2", 2, EventStatus::DeadLettered, 152)])
        .await
        .unwrap();
    assert!(
        s.claim_events(&f.id, 10, false, "n3", at(400), at(199))
            .await
            .unwrap()
            .iter()
            .all(|e| e.new.id != "e1"),
        "e1 is not due before its retry time"
    );
    let e1 = s.get_event("e1").await.unwrap();
    assert_eq!(
        (e1.status, e1.due_at, e1.error_code.as_deref()),
        (EventStatus::Failed, at(200), Some("function_error"))
    );
}

/// Ordered claims take only the head, and nothing while the head runs or waits.
pub async fn event_fifo_claims(s: &dyn Store) {
    let f = app_with_function(s, "a", "f").await;
    let batch: Vec<_> = (0..3)
        .map(|i| event(&format!("e{i}"), "f", i, None))
        .collect();
    s.enqueue_events(&batch).await.unwrap();
    let head = s
        .claim_events(&f.id, 10, true, "n", at(100), at(10))
        .await
        .unwrap();
    assert_eq!(head.len(), 1);
    assert_eq!(head[0].new.id, "e0");
    assert!(
        s.claim_events(&f.id, 10, true, "n", at(100), at(10))
            .await
            .unwrap()
            .is_empty()
    );
    let mut failed = done("e0", 1, EventStatus::Failed, 11);
    failed.retry_at = Some(at(50));
    s.finish_attempts(&[failed]).await.unwrap();
    assert!(
        s.claim_events(&f.id, 10, true, "n", at(100), at(20))
            .await
            .unwrap()
            .is_empty(),
        "a head waiting for its retry holds the queue"
    );
    let retry = s
        .claim_events(&f.id, 10, true, "n", at(100), at(50))
        .await
        .unwrap();
    assert_eq!(retry[0].new.id, "e0");
    s.finish_attempts(&[done("e0", 2, EventStatus::Succeeded, 51)])
        .await
        .unwrap();
    let next = s
        .claim_events(&f.id, 10, true, "n", at(100), at(52))
        .await
        .unwrap();
    assert_eq!(next[0].new.id, "e1");
}

/// Dead letters are listed and redriven (one or all); lists filter by status.
pub async fn event_dead_letters(s: &dyn Store) {
    with_finished(
        s,
        3,
        3,
        &[
            done("e0", 1, EventStatus::DeadLettered, 11),
            done("e1", 1, EventStatus::DeadLettered, 12),
            done("e2", 1, EventStatus::Succeeded, 13),
        ],
    )
    .await;
    let dl = EventQuery {
        status: Some(EventStatus::DeadLettered),
        limit: 10,
    };
    let dead = s.list_events("a", "f", &dl).await.unwrap();
    assert_eq!(
        dead.iter().map(|e| e.new.id.as_str()).collect::<Vec<_>>(),
        ["e1", "e0"]
    );
    assert_eq!(
        s.list_events(
            "a",
            "f",
            &EventQuery {
                status: None,
                limit: 2
            }
        )
        .await
        .unwrap()
        .len(),
        2
    );
    assert_err(
        s.list_events("a", "nope", &dl).await,
        ErrorCode::FunctionNotFound,
    );
    assert_eq!(
        s.redrive_events("a", "f", Some("e0"), at(20))
            .await
            .unwrap(),
        1
    );
    let e0 = s.get_event("e0").await.unwrap();
    assert_eq!(
        (e0.status, e0.attempts, e0.new.now),
        (EventStatus::Queued, 0, at(20))
    );
    assert_err(
        s.redrive_events("a", "f", Some("e2"), at(20)).await,
        ErrorCode::InvocationNotFound,
    );
    assert_eq!(s.redrive_events("a", "f", None, at(21)).await.unwrap(), 1);
    assert_eq!(status(s, "e1").await, (EventStatus::Queued, 0));
}

/// Deleting a function with events to run needs force and cancels them; a restarted
/// node releases its own leases only.
pub async fn event_cancel_and_release(s: &dyn Store) {
    let f = app_with_function(s, "a", "f").await;
    s.enqueue_events(&[event("e0", "f", 0, None), event("e1", "f", 1, None)])
        .await
        .unwrap();
    s.claim_events(&f.id, 1, false, "n1", at(1000), at(10))
        .await
        .unwrap();
    s.create_function(&function("a", "g")).await.unwrap();
    let g = s.get_function("a", "g").await.unwrap();
    s.enqueue_events(&[event("g0", "g", 0, None)])
        .await
        .unwrap();
    s.claim_events(&g.id, 1, false, "n2", at(1000), at(10))
        .await
        .unwrap();
    assert_eq!(s.release_leases("n1", at(20)).await.unwrap(), 1);
    let (due, _) = s.due_functions(at(20)).await.unwrap();
    assert_eq!(due.len(), 1, "only n1's lease ended: {due:?}");
    assert_eq!(due[0].function, "f");

    fails_unchanged(s, ErrorCode::Conflict, s.delete_function("a", "f", false)).await;
    s.delete_function("a", "f", true).await.unwrap();
    assert_eq!(status(s, "e0").await.0, EventStatus::Cancelled);
    assert_eq!(status(s, "e1").await.0, EventStatus::Cancelled);
    // A late result for a cancelled event changes nothing.
    s.finish_attempts(&[done("e0", 1, EventStatus::Succeeded, 30)])
        .await
        .unwrap();
    assert_eq!(status(s, "e0").await.0, EventStatus::Cancelled);
    s.delete_app("a", true).await.unwrap();
    assert_eq!(status(s, "g0").await.0, EventStatus::Cancelled);
}

/// Purge deletes finished events past their retention, dead letters by their own.
pub async fn event_purge(s: &dyn Store) {
    with_finished(
        s,
        4,
        3,
        &[
            done("e0", 1, EventStatus::Succeeded, 11),
            done("e1", 1, EventStatus::DeadLettered, 11),
            done("e2", 1, EventStatus::Succeeded, 50),
        ],
    )
    .await;
    assert_eq!(s.purge_events(at(20), at(5)).await.unwrap(), 1);
    assert_err(s.get_event("e0").await, ErrorCode::InvocationNotFound);
    for kept in ["e1", "e2", "e3"] {
        s.get_event(kept).await.unwrap();
    }
    assert_eq!(s.purge_events(at(20), at(20)).await.unwrap(), 1);
    assert_err(s.get_event("e1").await, ErrorCode::InvocationNotFound);
}

/// Queue depths: unfinished events by function and status with the oldest acceptance
/// time; finished events are not counted.
pub async fn event_queue_depths(s: &dyn Store) {
    assert!(s.queue_depths().await.unwrap().is_empty());
    let f = app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    let mut batch: Vec<_> = (0..4)
        .map(|i| event(&format!("e{i}"), "f", i, None))
        .collect();
    batch.push(event("g0", "g", 7, None));
    s.enqueue_events(&batch).await.unwrap();
    s.claim_events(&f.id, 2, false, "n", at(100), at(10))
        .await
        .unwrap();
    s.finish_attempts(&[done("e0", 1, EventStatus::Succeeded, 11)])
        .await
        .unwrap();
    let mut got: Vec<_> = s
        .queue_depths()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.function, d.status, d.count, d.oldest))
        .collect();
    got.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    assert_eq!(
        got,
        [
            ("f".to_string(), EventStatus::Queued, 2, at(2)),
            ("f".to_string(), EventStatus::Running, 1, at(1)),
            ("g".to_string(), EventStatus::Queued, 1, at(7)),
        ]
    );
}
