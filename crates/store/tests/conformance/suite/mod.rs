//! The `Store` conformance suite: backend-independent checks written against
//! `&dyn Store`. Every backend runs every public test function on a fresh, empty store.
//!
//! - `catalog`: apps, functions, versions;
//! - `aliases`: aliases and their rollback history;
//! - `records`: invocation records, log lines, settings;
//! - `logs`: log queries, tails and retention;
//! - `stats`: invocation queries and rollups;
//! - `triggers`: triggers and cron tick claims;
//! - `tokens`: scoped API tokens;
//! - `access_keys`: access keys of the Lambda-compatible API;
//! - `audit`: the audit log;
//! - here: fixtures, helpers, and `seed` / `verify_seeded` for persistence checks.

mod access_keys;
mod aliases;
mod audit;
mod catalog;
mod events;
mod logs;
mod platform_lines;
mod records;
mod secrets;
mod stats;
mod tokens;
mod triggers;
mod volume;

pub use access_keys::{access_key_reseal, access_keys, access_keys_per_app_limit};
pub use aliases::{alias_rollback, aliases};
pub use audit::{audit_log, audit_purge};
pub use catalog::{apps, function_delete_cascades, functions, versions};
pub use events::{
    event_cancel_and_release, event_claims_and_finishes, event_dead_letters, event_enqueue,
    event_fifo_claims, event_purge, event_queue_depths,
};
pub use logs::{log_queries, log_retention, log_tails};
pub use platform_lines::{
    platform_line_filters, platform_line_retries, platform_line_tails,
    platform_lines_after_start_up_output, platform_lines_from_records,
};
pub use records::{invocation_records, log_lines, settings};
pub use secrets::{secrets, secrets_deleted_with_app, secrets_per_app_limit};
pub use stats::{invocation_queries, invocation_rollups};
pub use tokens::{token_limit_per_app, tokens, tokens_revoked_with_their_app};
pub use triggers::{cron_tick_claims, triggers, triggers_deleted_with_function_and_app};
pub use volume::{logs_in_volume, record_purge_in_volume, records_in_volume};

use arcus_core::model::{
    Alias, AliasTarget, App, Canary, CodeRef, ExecConfig, Function, FunctionErrorCode,
    FunctionMeta, Runtime, Timestamp, Version,
};
use arcus_core::record::{
    InvocationRecord, InvocationStatus, LogLine, LogStream, RecordedInvocation, TriggerKind,
};
use arcus_core::store::{RecordQuery, Store};
use arcus_core::{ErrorCode, Result};
use std::collections::BTreeMap;
use std::fmt::Debug;
use time::OffsetDateTime;

// ---------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------

/// A timestamp `secs` after a fixed base (microsecond precision, as stores keep).
pub fn at(secs: i64) -> Timestamp {
    OffsetDateTime::from_unix_timestamp_nanos(
        (1_700_000_000 + i128::from(secs)) * 1_000_000_000 + 123_456_000,
    )
    .unwrap()
}

/// A fake sha256: `c` 64 times.
pub fn sha(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

/// An app fixture.
pub fn app(name: &str) -> App {
    App {
        name: name.to_string(),
        description: format!("the {name} app"),
        quotas: Default::default(),
        created_at: at(0),
    }
}

/// An execution config fixture.
pub fn config(memory_mb: u32) -> ExecConfig {
    ExecConfig {
        runtime: Runtime::Wasm,
        memory_mb,
        timeout_ms: 5_000,
        env: BTreeMap::from([("MODE".to_string(), format!("m{memory_mb}"))]),
        secrets: BTreeMap::new(),
        allowed_hosts: vec!["api.example.com".to_string(), "db:5432".to_string()],
        handler: Some("app.handler".to_string()),
        network: arcus_core::model::Network::Outbound,
    }
}

/// A function fixture with code.
pub fn function(app: &str, name: &str) -> Function {
    Function {
        id: format!("id-{app}-{name}"),
        app: app.to_string(),
        name: name.to_string(),
        config: config(128),
        meta: FunctionMeta {
            description: format!("the {name} function"),
            tags: vec!["a".to_string(), "b".to_string()],
            input_schema: Some(serde_json::json!({"type": "object"})),
            output_schema: None,
            error_codes: vec![FunctionErrorCode {
                code: "bad_input".to_string(),
                description: "the input is bad".to_string(),
            }],
            scaling: arcus_core::scaling::Scaling {
                min_instances: 1,
                keep_alive_s: 60,
                ..Default::default()
            },
            async_config: arcus_core::events::AsyncConfig {
                max_retries: 5,
                ordered: true,
                ..Default::default()
            },
            auth: arcus_core::model::FunctionAuth::Token,
        },
        code: Some(CodeRef {
            sha256: sha('a'),
            size: 42,
        }),
        created_at: at(1),
        updated_at: at(1),
    }
}

/// Asserts that `result` failed with `code`.
#[track_caller]
pub fn assert_err<T: Debug>(result: Result<T>, code: ErrorCode) {
    match result {
        Ok(v) => panic!("expected `{code}`, got Ok({v:?})"),
        Err(e) => assert_eq!(e.code, code, "unexpected error: {e}"),
    }
}

/// Everything readable through the trait (settings aside, which cannot be listed).
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    apps: Vec<(App, Vec<FunctionState>)>,
}

/// One function and everything under it.
#[derive(Debug, PartialEq)]
pub struct FunctionState {
    function: Function,
    versions: Vec<Version>,
    aliases: Vec<Alias>,
    invocations: Vec<InvocationRecord>,
    logs: Vec<LogLine>,
}

/// Reads the whole store.
pub async fn snapshot(store: &dyn Store) -> Snapshot {
    let all = RecordQuery {
        invocation_id: None,
        limit: 100_000,
    };
    let mut apps = Vec::new();
    for app in store.list_apps().await.unwrap() {
        let mut functions = Vec::new();
        for function in store.list_functions(&app.name).await.unwrap() {
            let (a, f) = (&app.name, &function.name);
            functions.push(FunctionState {
                versions: store.list_versions(a, f).await.unwrap(),
                aliases: store.list_aliases(a, f).await.unwrap(),
                invocations: store.list_invocations(a, f, &all).await.unwrap(),
                logs: store.list_logs(a, f, &all).await.unwrap(),
                function,
            });
        }
        apps.push((app, functions));
    }
    Snapshot { apps }
}

/// Runs `op`, asserts that it fails with `code` and that the store did not change.
pub async fn fails_unchanged<T: Debug>(
    store: &dyn Store,
    code: ErrorCode,
    op: impl Future<Output = Result<T>>,
) {
    let before = snapshot(store).await;
    assert_err(op.await, code);
    assert_eq!(
        snapshot(store).await,
        before,
        "a failed `{code}` operation changed the store"
    );
}

/// Creates app `a` with function `f` (with code).
pub async fn app_with_function(store: &dyn Store, a: &str, f: &str) -> Function {
    store.create_app(&app(a)).await.unwrap();
    let function = function(a, f);
    store.create_function(&function).await.unwrap();
    function
}

/// An alias target without canary.
pub fn to(version: u32) -> AliasTarget {
    AliasTarget {
        version,
        canary: None,
    }
}

/// An alias target with a canary.
pub fn canary(version: u32, canary: u32, weight: u8) -> AliasTarget {
    AliasTarget {
        version,
        canary: Some(Canary {
            version: canary,
            weight,
        }),
    }
}

/// Records as a batch without lines.
pub fn recorded(records: &[InvocationRecord]) -> Vec<RecordedInvocation> {
    records.iter().cloned().map(Into::into).collect()
}

/// An invocation record fixture.
pub fn invocation(id: &str, app: &str, function: &str, secs: i64) -> InvocationRecord {
    InvocationRecord {
        id: id.to_string(),
        app: app.to_string(),
        function: function.to_string(),
        version: Some(3),
        trigger: TriggerKind::Http,
        status: InvocationStatus::Succeeded,
        error_code: None,
        http_status: Some(200),
        duration_us: 1_234,
        cold_start: false,
        started_at: at(secs),
        init_duration_us: None,
        max_memory_mb: None,
        memory_mb: 128,
        egress_bytes: 42,
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_string()),
    }
}

/// A log line fixture.
pub fn log(invocation: &str, app: &str, function: &str, secs: i64, message: &str) -> LogLine {
    LogLine {
        invocation_id: invocation.to_string(),
        app: app.to_string(),
        function: function.to_string(),
        stream: LogStream::Stdout,
        timestamp: at(secs),
        message: message.to_string(),
        trace_id: None,
        seq: 0,
    }
}

pub fn ids(records: &[InvocationRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

pub fn messages(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.message.as_str()).collect()
}

pub fn numbers(versions: &[Version]) -> Vec<u32> {
    versions.iter().map(|v| v.version).collect()
}

pub fn query(invocation_id: Option<&str>, limit: u32) -> RecordQuery {
    RecordQuery {
        invocation_id: invocation_id.map(str::to_string),
        limit,
    }
}

/// Fills a store with one of everything (for persistence checks); returns what a
/// [`snapshot`] of it looks like.
pub async fn seed(s: &dyn Store) -> Snapshot {
    app_with_function(s, "shop", "checkout").await;
    s.create_app(&app("empty")).await.unwrap();
    s.publish_version("shop", "checkout", "v1", at(2))
        .await
        .unwrap();
    s.publish_version("shop", "checkout", "v2", at(3))
        .await
        .unwrap();
    s.publish_version("shop", "checkout", "v3", at(3))
        .await
        .unwrap();
    s.delete_version("shop", "checkout", 3).await.unwrap();
    s.put_alias("shop", "checkout", "live", to(1), at(4))
        .await
        .unwrap();
    s.put_alias("shop", "checkout", "live", canary(2, 1, 5), at(5))
        .await
        .unwrap();
    s.insert_invocations(&[invocation("i1", "shop", "checkout", 6).into()])
        .await
        .unwrap();
    s.insert_logs(&[log("i1", "shop", "checkout", 6, "paid")])
        .await
        .unwrap();
    s.put_setting("k", "v").await.unwrap();
    snapshot(s).await
}

/// Checks a store holds what [`seed`] wrote, including the things a snapshot does not
/// show (version counter, alias history, settings).
pub async fn verify_seeded(s: &dyn Store, seeded: &Snapshot) {
    assert_eq!(&snapshot(s).await, seeded);
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some("v"));
    let alias = s
        .rollback_alias("shop", "checkout", "live", at(7))
        .await
        .unwrap();
    assert_eq!((alias.target, alias.previous), (to(1), None));
    let next = s
        .publish_version("shop", "checkout", "v4", at(8))
        .await
        .unwrap();
    assert_eq!(next.version, 4, "the version counter survives");
}
