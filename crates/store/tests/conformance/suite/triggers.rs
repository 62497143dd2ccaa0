//! Triggers: CRUD, their errors, deletion with the function or app, and the cron tick
//! compare-and-set.

use super::{app, app_with_function, assert_err, at, function};
use arcus_core::ErrorCode;
use arcus_core::store::Store;
use arcus_core::trigger::{CronConfig, MissedTicks, Trigger, TriggerConfig, WebhookConfig};

fn trigger(id: &str, app: &str, function: &str, name: &str) -> Trigger {
    Trigger {
        id: id.to_string(),
        app: app.to_string(),
        function: function.to_string(),
        name: name.to_string(),
        qualifier: "live".to_string(),
        enabled: true,
        config: TriggerConfig::Cron(CronConfig {
            schedule: "*/5 * * * * *".to_string(),
            timezone: "Europe/Berlin".to_string(),
            missed: MissedTicks::FireOnce,
            payload: Some(serde_json::json!({"k": [1, 2]})),
        }),
        created_at: at(1),
        updated_at: at(1),
    }
}

/// Create, read, list, update, delete, with their error codes.
pub async fn triggers(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    let t1 = trigger("t1", "a", "f", "tick");
    s.create_trigger(&t1).await.unwrap();
    let mut t2 = trigger("t2", "a", "f", "hook");
    t2.config = TriggerConfig::Webhook(WebhookConfig {
        secret: Some("s".into()),
    });
    s.create_trigger(&t2).await.unwrap();
    // Same name on another function is fine.
    s.create_trigger(&trigger("t3", "a", "g", "tick"))
        .await
        .unwrap();

    assert_eq!(s.get_trigger("a", "f", "tick").await.unwrap(), t1);
    assert_eq!(s.get_trigger_by_id("t2").await.unwrap(), t2);
    let names: Vec<String> = s
        .list_triggers("a", "f")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["hook", "tick"]);
    assert_eq!(s.list_all_triggers().await.unwrap().len(), 3);

    assert_err(
        s.create_trigger(&trigger("t4", "a", "f", "tick")).await,
        ErrorCode::AlreadyExists,
    );
    assert_err(
        s.create_trigger(&trigger("t1", "a", "g", "other")).await,
        ErrorCode::AlreadyExists,
    );
    assert_err(
        s.create_trigger(&trigger("t5", "nope", "f", "x")).await,
        ErrorCode::AppNotFound,
    );
    assert_err(
        s.create_trigger(&trigger("t5", "a", "nope", "x")).await,
        ErrorCode::FunctionNotFound,
    );
    assert_err(s.get_trigger("a", "f", "nope").await, ErrorCode::NotFound);
    assert_err(
        s.get_trigger("a", "nope", "tick").await,
        ErrorCode::FunctionNotFound,
    );
    assert_err(s.get_trigger_by_id("nope").await, ErrorCode::NotFound);
    assert_err(s.list_triggers("nope", "f").await, ErrorCode::AppNotFound);

    let mut changed = t1.clone();
    changed.enabled = false;
    changed.qualifier = "3".into();
    changed.updated_at = at(9);
    s.update_trigger(&changed).await.unwrap();
    assert_eq!(s.get_trigger("a", "f", "tick").await.unwrap(), changed);
    assert_err(
        s.update_trigger(&trigger("nope", "a", "f", "x")).await,
        ErrorCode::NotFound,
    );

    s.delete_trigger("a", "f", "tick").await.unwrap();
    assert_err(s.get_trigger("a", "f", "tick").await, ErrorCode::NotFound);
    assert_err(
        s.delete_trigger("a", "f", "tick").await,
        ErrorCode::NotFound,
    );
    // A new trigger of the same name starts without the old one's cron state.
    s.claim_cron_tick("t3", at(5)).await.unwrap();
    s.delete_trigger("a", "g", "tick").await.unwrap();
    s.create_trigger(&trigger("t3", "a", "g", "tick"))
        .await
        .unwrap();
    assert_eq!(s.last_cron_tick("t3").await.unwrap(), None);
}

/// Each tick is claimed once; earlier ticks cannot be claimed after a later one.
pub async fn cron_tick_claims(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_trigger(&trigger("t1", "a", "f", "tick"))
        .await
        .unwrap();
    assert_eq!(s.last_cron_tick("t1").await.unwrap(), None);
    assert!(s.claim_cron_tick("t1", at(10)).await.unwrap());
    assert!(!s.claim_cron_tick("t1", at(10)).await.unwrap());
    assert!(!s.claim_cron_tick("t1", at(5)).await.unwrap());
    assert_eq!(s.last_cron_tick("t1").await.unwrap(), Some(at(10)));
    assert!(s.claim_cron_tick("t1", at(15)).await.unwrap());
    assert_eq!(s.last_cron_tick("t1").await.unwrap(), Some(at(15)));
    assert_err(s.claim_cron_tick("nope", at(1)).await, ErrorCode::NotFound);
}

/// Deleting a function or an app deletes its triggers and their cron state.
pub async fn triggers_deleted_with_function_and_app(s: &dyn Store) {
    app_with_function(s, "a", "f").await;
    s.create_function(&function("a", "g")).await.unwrap();
    s.create_app(&app("b")).await.unwrap();
    s.create_function(&function("b", "h")).await.unwrap();
    s.create_trigger(&trigger("t1", "a", "f", "x"))
        .await
        .unwrap();
    s.create_trigger(&trigger("t2", "a", "g", "x"))
        .await
        .unwrap();
    s.create_trigger(&trigger("t3", "b", "h", "x"))
        .await
        .unwrap();
    s.claim_cron_tick("t1", at(3)).await.unwrap();
    s.claim_cron_tick("t3", at(3)).await.unwrap();

    s.delete_function("a", "f", false).await.unwrap();
    assert_err(s.get_trigger_by_id("t1").await, ErrorCode::NotFound);
    assert_eq!(s.get_trigger_by_id("t2").await.unwrap().function, "g");
    s.delete_app("b", true).await.unwrap();
    let left: Vec<String> = s
        .list_all_triggers()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, ["t2"]);
    // A recreated function does not inherit anything.
    s.create_function(&function("a", "f")).await.unwrap();
    assert!(s.list_triggers("a", "f").await.unwrap().is_empty());
}
