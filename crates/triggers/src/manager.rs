//! [`Manager`]: runs one task per enabled trigger on this node, restarts a trigger's
//! task when it changes, stops it when it is disabled or deleted (also with its
//! function or app), and answers the API's status and webhook requests.
//!
//! The API calls [`Manager::reload`] after each change; a periodic re-sync from the
//! store ([`SYNC_INTERVAL`]) picks up changes made through another node.

use crate::cron::{Clock, system_clock};
use crate::registry::{Deps, source_for};
use crate::sink::EventSink;
use crate::source::{Invoker, SourceCtx, StatusHandle};
use arcus_core::events::{DEFAULT_ASYNC_CONCURRENCY, MAX_ASYNC_PAYLOAD_BYTES};
use arcus_core::names::Qualifier;
use arcus_core::store::Store;
use arcus_core::trigger::{Trigger, TriggerConfig, TriggerState, TriggerStatus, TriggerView};
use arcus_core::{Error, ErrorCode, Result};
use arcus_engine::Target;
use bytes::Bytes;
use http::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the manager re-reads every trigger from the store.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// The triggers of this node. Cheap to clone.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    sink: Arc<dyn EventSink>,
    deps: Deps,
    running: Mutex<HashMap<String, Running>>,
    /// Counters survive a restart of the same trigger (e.g. after an update).
    statuses: Mutex<HashMap<String, StatusHandle>>,
    /// Serialises syncs so two never start the same trigger twice.
    sync_lock: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

struct Running {
    trigger: Trigger,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Manager {
    /// A manager over the node's store, delivering to `sink` (the engine). Call
    /// [`Manager::start`] to run the triggers.
    pub fn new(store: Arc<dyn Store>, sink: Arc<dyn EventSink>) -> Self {
        Self::with_clock(store, sink, system_clock())
    }

    pub(crate) fn with_clock(
        store: Arc<dyn Store>,
        sink: Arc<dyn EventSink>,
        clock: Clock,
    ) -> Self {
        let deps = Deps {
            store: store.clone(),
            clock,
        };
        Self {
            inner: Arc::new(Inner {
                store,
                sink,
                deps,
                running: Mutex::new(HashMap::new()),
                statuses: Mutex::new(HashMap::new()),
                sync_lock: tokio::sync::Mutex::new(()),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Starts every enabled trigger and the periodic re-sync; returns at once.
    pub fn start(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.reload().await {
                    tracing::warn!(error = %e, "triggers: cannot sync from the store");
                }
                tokio::select! {
                    _ = this.inner.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(SYNC_INTERVAL) => {}
                }
            }
        });
    }

    /// Re-reads every trigger from the store: starts new and enabled ones, restarts
    /// changed ones, stops disabled and deleted ones.
    pub async fn reload(&self) -> Result<()> {
        let _guard = self.inner.sync_lock.lock().await;
        if self.inner.shutdown.is_cancelled() {
            return Ok(());
        }
        let triggers = self.inner.store.list_all_triggers().await?;
        let wanted: HashMap<&str, &Trigger> = triggers
            .iter()
            .filter(|t| t.enabled)
            .map(|t| (t.id.as_str(), t))
            .collect();
        // Stop what is gone or changed.
        let stopped: Vec<Running> = {
            let mut running = lock(&self.inner.running);
            let stale: Vec<String> = running
                .iter()
                .filter(|(id, r)| wanted.get(id.as_str()) != Some(&&r.trigger))
                .map(|(id, _)| id.clone())
                .collect();
            stale.iter().filter_map(|id| running.remove(id)).collect()
        };
        for r in stopped {
            r.cancel.cancel();
            let _ = r.task.await;
        }
        // Forget the counters of deleted triggers.
        lock(&self.inner.statuses).retain(|id, _| triggers.iter().any(|t| &t.id == id));
        // Start what is missing.
        for (id, trigger) in wanted {
            if lock(&self.inner.running).contains_key(id) {
                continue;
            }
            let concurrency = self.concurrency(trigger).await;
            self.spawn(trigger.clone(), concurrency);
        }
        Ok(())
    }

    /// The function's async concurrency (how many invocations the trigger may run).
    async fn concurrency(&self, trigger: &Trigger) -> u32 {
        match self
            .inner
            .store
            .get_function(&trigger.app, &trigger.function)
            .await
        {
            Ok(f) => f.meta.async_config.concurrency.max(1),
            Err(_) => DEFAULT_ASYNC_CONCURRENCY,
        }
    }

    fn spawn(&self, trigger: Trigger, concurrency: u32) {
        let status = lock(&self.inner.statuses)
            .entry(trigger.id.clone())
            .or_default()
            .clone();
        status.set_state(TriggerState::Connecting);
        status.set_error(None);
        status.set_next_fire(None);
        let cancel = self.inner.shutdown.child_token();
        let target = match target_of(&trigger) {
            Ok(t) => t,
            Err(e) => {
                status.connecting(e.message);
                return;
            }
        };
        let source = source_for(&trigger.config, &self.inner.deps);
        let sink = self.inner.sink.clone();
        let mut ctx = SourceCtx {
            trigger: Arc::new(trigger.clone()),
            invoker: Invoker::new(self.inner.sink.clone(), target, trigger.config.kind()),
            status: status.clone(),
            cancel: cancel.clone(),
            concurrency,
        };
        let id = trigger.id.clone();
        let task = tokio::spawn(async move {
            // The source gets a copy with its `${secret:…}` references expanded.
            let Some(live) = with_secrets(&*sink, &ctx).await else {
                return;
            };
            ctx.trigger = Arc::new(live);
            source.run(ctx).await;
            tracing::debug!(trigger = %id, "triggers: source stopped");
        });
        lock(&self.inner.running).insert(
            trigger.id.clone(),
            Running {
                trigger,
                cancel,
                task,
            },
        );
    }

    /// What a trigger is doing on this node (`disabled` for a disabled one).
    pub fn status(&self, trigger: &Trigger) -> TriggerStatus {
        let handle = lock(&self.inner.statuses).get(&trigger.id).cloned();
        let mut status = handle.unwrap_or_default().snapshot();
        if !trigger.enabled {
            status.state = TriggerState::Disabled;
            status.next_fire_at = None;
            status.lag = None;
        }
        status
    }

    /// A trigger as the API returns it: secrets redacted, with its status.
    pub fn view(&self, trigger: &Trigger) -> TriggerView {
        let mut shown = trigger.clone();
        shown.config = trigger.config.redacted();
        let url = matches!(trigger.config, TriggerConfig::Webhook(_))
            .then(|| crate::webhook::hook_path(&trigger.id));
        TriggerView {
            status: self.status(trigger),
            trigger: shown,
            url,
        }
    }

    /// Handles `POST /hooks/{trigger_id}`: checks the trigger, the size and the
    /// signature, reads the CloudEvent and queues it; returns the invocation id.
    /// `not_found` for an unknown, non-webhook or disabled trigger.
    pub async fn webhook(
        &self,
        trigger_id: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<String> {
        let not_found = || Error::new(ErrorCode::NotFound, "no such webhook");
        let trigger = match self.inner.store.get_trigger_by_id(trigger_id).await {
            Ok(t) => t,
            Err(e) if e.code == ErrorCode::NotFound => return Err(not_found()),
            Err(e) => return Err(e),
        };
        let TriggerConfig::Webhook(config) = &trigger.config else {
            return Err(not_found());
        };
        if !trigger.enabled {
            return Err(Error::new(ErrorCode::NotFound, "this webhook is disabled"));
        }
        if body.len() > MAX_ASYNC_PAYLOAD_BYTES {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("a webhook event may be at most {MAX_ASYNC_PAYLOAD_BYTES} bytes"),
            ));
        }
        if let Some(secret) = &config.secret {
            crate::webhook::verify_signature(secret, headers, &body)?;
        }
        let (ce_id, event) = crate::webhook::to_cloudevent(headers, &body)?;
        let status = lock(&self.inner.statuses)
            .entry(trigger.id.clone())
            .or_default()
            .clone();
        let target = target_of(&trigger)?;
        let key = format!("webhook:{}:{ce_id}", trigger.id);
        let result = self
            .inner
            .sink
            .enqueue(
                &target,
                trigger.config.kind(),
                Bytes::from(event.to_string()),
                Some(key),
            )
            .await;
        match &result {
            Ok(_) => status.delivered(1),
            Err(e) => {
                status.failed(1);
                status.set_error(Some(e.message.clone()));
            }
        }
        result
    }

    /// Stops every trigger task (node shutdown) and waits for them.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let _guard = self.inner.sync_lock.lock().await;
        let all: Vec<Running> = lock(&self.inner.running).drain().map(|(_, r)| r).collect();
        for r in all {
            r.cancel.cancel();
            let _ = r.task.await;
        }
    }

    /// Where the triggers' events go (the engine).
    pub(crate) fn sink(&self) -> &dyn EventSink {
        &*self.inner.sink
    }

    /// The metadata store.
    pub(crate) fn store(&self) -> &std::sync::Arc<dyn Store> {
        &self.inner.store
    }

    /// Ids of the triggers with a running task (for tests and diagnostics).
    pub fn running(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.inner.running).keys().cloned().collect();
        ids.sort();
        ids
    }
}

/// Where a trigger's events go.
/// How long a trigger whose secrets cannot be read waits before trying again.
const SECRET_RETRY: Duration = Duration::from_secs(5);

/// The trigger of `ctx` with its secret references expanded, retrying (with the error in
/// its status) until they can be read; `None` once the source is cancelled.
async fn with_secrets(sink: &dyn EventSink, ctx: &SourceCtx) -> Option<Trigger> {
    let mut live = (*ctx.trigger).clone();
    loop {
        match crate::secrets::expand(sink, &live.app, &mut live.config).await {
            Ok(()) => return Some(live),
            Err(e) => {
                live.config = ctx.trigger.config.clone();
                ctx.status.connecting(e.message);
                tokio::select! {
                    () = ctx.cancel.cancelled() => return None,
                    () = tokio::time::sleep(SECRET_RETRY) => {}
                }
            }
        }
    }
}

fn target_of(trigger: &Trigger) -> Result<Target> {
    Ok(Target {
        app: trigger.app.clone(),
        function: trigger.function.clone(),
        qualifier: Qualifier::parse(&trigger.qualifier)?,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold plain data; a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
