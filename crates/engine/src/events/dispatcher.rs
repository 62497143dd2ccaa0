//! The dispatch loop: asks the store which functions have due events, leases as many
//! of each as its async concurrency leaves free on this node, and runs each as an
//! attempt task. It wakes on enqueue, on finished attempts, at the next due time (a
//! retry's backoff), and at least every second (events other nodes accepted).

use super::attempt::Attempt;
use crate::{Engine, Inner};
use arcus_core::model::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Longest sleep between two scans of the queue.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// How long a lease outlives the function's timeout (a worker that dies holding it
/// is noticed this much later by other nodes; the same node releases its own leases at
/// start-up).
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// How often finished events past their retention are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Attempts running on this node, per function id.
#[derive(Clone, Default)]
pub(super) struct InFlight(Arc<Mutex<HashMap<String, u32>>>);

impl InFlight {
    fn get(&self, id: &str) -> u32 {
        self.0
            .lock()
            .map(|m| m.get(id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn add(&self, id: &str, n: u32) {
        crate::metrics::in_flight(f64::from(n));
        if let Ok(mut m) = self.0.lock() {
            *m.entry(id.to_string()).or_default() += n;
        }
    }

    /// One attempt of the function ended.
    pub fn done(&self, id: &str) {
        crate::metrics::in_flight(-1.0);
        if let Ok(mut m) = self.0.lock()
            && let Some(n) = m.get_mut(id)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(id);
            }
        }
    }
}

pub(super) fn start(weak: Weak<Inner>) {
    tokio::spawn(async move {
        let inflight = InFlight::default();
        if let Some(inner) = weak.upgrade() {
            let q = &inner.queue;
            match inner
                .store
                .release_leases(&q.node_id, Timestamp::now_utc())
                .await
            {
                Ok(n) if n > 0 => tracing::info!(
                    count = n,
                    "resuming async invocations this node was running"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot release this node's old leases: {e}"),
            }
        }
        let mut last_purge = tokio::time::Instant::now();
        loop {
            let Some(inner) = weak.upgrade() else { return };
            if last_purge.elapsed() >= PURGE_EVERY {
                last_purge = tokio::time::Instant::now();
                tokio::spawn(purge(inner.store.clone()));
            }
            let wake = inner.queue.wake.clone();
            let engine = Engine { inner };
            let pause = engine.dispatch_round(&inflight).await;
            drop(engine);
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    });
}

/// Deletes events past their retention (`docs/async.md`).
async fn purge(store: std::sync::Arc<dyn arcus_core::store::Store>) {
    use arcus_core::events::{DEAD_LETTER_RETENTION_S, FINISHED_RETENTION_S};
    let now = Timestamp::now_utc();
    let finished = now - time::Duration::seconds(FINISHED_RETENTION_S);
    let dead = now - time::Duration::seconds(DEAD_LETTER_RETENTION_S);
    match store.purge_events(finished, dead).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            count = n,
            "purged finished async invocations past retention"
        ),
        Err(e) => tracing::warn!("cannot purge old async invocations: {e}"),
    }
}

impl Engine {
    /// One scan: claims and starts what may run; returns how long to sleep.
    async fn dispatch_round(&self, inflight: &InFlight) -> Duration {
        let now = Timestamp::now_utc();
        let started = std::time::Instant::now();
        let due = self.inner.store.due_functions(now).await;
        crate::metrics::store_op("due_functions", started);
        let (due, next) = match due {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("cannot scan the async queue: {e}");
                return MAX_IDLE;
            }
        };
        for f in due {
            let route = match self.route(&f.app, &f.function).await {
                Ok(r) if r.function.id == f.function_id => r,
                // Deleted (its events are cancelled in the same transaction) or replaced.
                _ => continue,
            };
            let cfg = &route.function.meta.async_config;
            let running = inflight.get(&f.function_id);
            let free = if cfg.ordered {
                u32::from(running == 0)
            } else {
                cfg.concurrency.saturating_sub(running)
            };
            if free == 0 {
                continue;
            }
            let timeout = Duration::from_millis(route.function.config.timeout_ms);
            let lease = now + (timeout * 2 + LEASE_MARGIN);
            let started = std::time::Instant::now();
            let claimed = self
                .inner
                .store
                .claim_events(
                    &f.function_id,
                    free,
                    cfg.ordered,
                    &self.inner.queue.node_id,
                    lease,
                    now,
                )
                .await;
            crate::metrics::store_op("claim_events", started);
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(app = %f.app, function = %f.function, "cannot claim async events: {e}");
                    continue;
                }
            };
            inflight.add(
                &f.function_id,
                u32::try_from(claimed.len()).unwrap_or(u32::MAX),
            );
            for event in claimed {
                let attempt = Attempt {
                    engine: self.clone(),
                    event,
                    config: cfg.clone(),
                    function_id: f.function_id.clone(),
                    inflight: inflight.clone(),
                };
                tokio::spawn(attempt.run());
            }
        }
        next.map_or(MAX_IDLE, |t| {
            let wait = (t - Timestamp::now_utc()).max(time::Duration::ZERO);
            Duration::try_from(wait).unwrap_or(MAX_IDLE).min(MAX_IDLE)
        })
    }
}
