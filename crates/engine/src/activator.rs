//! The activator: the gates in front of every invocation, taken in order.
//!
//! 1. The function's gate: `max_instances × concurrency_per_instance` invocations at once.
//! 2. The app's quotas: instances (one per running invocation) and their memory.
//! 3. For wasm, the node's memory budget (process instances are budgeted by their pool
//!    when they start).
//!
//! A request waits in arrival order (tokio's semaphores are fair) at the first gate that
//! is full, for at most `queue_timeout_ms` in all; then it gets 429 `throttled` (function
//! or app limit) or 503 `no_capacity` (node budget), both with `Retry-After`.

use arcus_core::model::Runtime;
use arcus_core::scaling::{AppQuotas, Scaling};
use arcus_core::{Error, ErrorCode, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Gate maps stay consistent under a panic elsewhere: each update is one insert/remove.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A limit whose permits are handed out fairly.
struct Limit {
    size: u32,
    permits: Arc<Semaphore>,
}

impl Limit {
    fn new(size: u32) -> Self {
        Self {
            size,
            permits: Arc::new(Semaphore::new(size as usize)),
        }
    }

    /// The permits of a limit of `size`: replaced when the size changed (holders of the
    /// old ones finish normally).
    fn sized(&mut self, size: u32) -> Arc<Semaphore> {
        if self.size != size {
            *self = Limit::new(size);
        }
        self.permits.clone()
    }

    /// Like [`Limit::sized`] for a limit that may be unset.
    fn optional(slot: &mut Option<Limit>, size: Option<u32>) -> Option<Arc<Semaphore>> {
        match size {
            None => {
                *slot = None;
                None
            }
            Some(n) => Some(slot.get_or_insert_with(|| Limit::new(n)).sized(n)),
        }
    }
}

struct Gate {
    limit: Limit,
    waiting: Arc<AtomicU32>,
    runtime: Runtime,
    scaling: Scaling,
    app_max_instances: Option<u32>,
}

#[derive(Default)]
struct AppGate {
    instances: Option<Limit>,
    memory: Option<Limit>,
}

/// What one invocation asks of the gates.
pub(crate) struct Demand<'a> {
    pub app: &'a str,
    pub function: &'a str,
    pub runtime: Runtime,
    pub memory_mb: u32,
    pub scaling: &'a Scaling,
    pub quotas: &'a AppQuotas,
}

/// The load on one function's gate, for the autoscaler.
#[derive(Debug, Clone)]
pub(crate) struct GateLoad {
    pub app: String,
    pub function: String,
    pub runtime: Runtime,
    pub scaling: Scaling,
    /// The app's instance quota.
    pub app_max_instances: Option<u32>,
    /// Invocations running now.
    pub running: u32,
    /// Invocations waiting for a slot.
    pub waiting: u32,
}

/// The gates of every function and app on the node, and the node's wasm memory budget.
pub(crate) struct Activator {
    gates: Mutex<HashMap<String, HashMap<String, Gate>>>,
    apps: Mutex<HashMap<String, AppGate>>,
    wasm_memory: Limit,
}

/// What an admitted invocation holds until it has finished (guest done, body sent).
#[derive(Debug)]
pub(crate) struct Slot {
    _held: Vec<OwnedSemaphorePermit>,
}

/// Counts a waiter while it waits.
struct Waiting(Arc<AtomicU32>);

impl Waiting {
    fn new(counter: Arc<AtomicU32>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes `n` permits, waiting until `deadline`; `None` past it.
async fn take(sem: Arc<Semaphore>, n: u32, deadline: Instant) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = sem.clone().try_acquire_many_owned(n) {
        return Some(p);
    }
    tokio::time::timeout_at(deadline, sem.acquire_many_owned(n))
        .await
        .ok()?
        .ok()
}

impl Activator {
    /// An activator whose wasm invocations may hold `wasm_memory_mb` MiB at once.
    pub fn new(wasm_memory_mb: u32) -> Self {
        Self {
            gates: Mutex::default(),
            apps: Mutex::default(),
            wasm_memory: Limit::new(wasm_memory_mb.max(1)),
        }
    }

    /// The function's gate (sized for its current scaling) and its waiting counter.
    fn function_gate(&self, d: &Demand<'_>) -> (Arc<Semaphore>, Arc<AtomicU32>) {
        let capacity = d
            .scaling
            .max_instances
            .saturating_mul(d.scaling.concurrency(d.runtime))
            .max(1);
        let mut gates = lock(&self.gates);
        let per_app = match gates.get_mut(d.app) {
            Some(m) => m,
            None => gates.entry(d.app.to_string()).or_default(),
        };
        let gate = match per_app.get_mut(d.function) {
            Some(g) => g,
            None => per_app.entry(d.function.to_string()).or_insert(Gate {
                limit: Limit::new(capacity),
                waiting: Arc::default(),
                runtime: d.runtime,
                scaling: *d.scaling,
                app_max_instances: d.quotas.max_instances,
            }),
        };
        gate.runtime = d.runtime;
        gate.scaling = *d.scaling;
        gate.app_max_instances = d.quotas.max_instances;
        (gate.limit.sized(capacity), gate.waiting.clone())
    }

    fn app_gates(&self, d: &Demand<'_>) -> (Option<Arc<Semaphore>>, Option<Arc<Semaphore>>) {
        let q = d.quotas;
        let mut apps = lock(&self.apps);
        if q.max_instances.is_none() && q.max_memory_mb.is_none() {
            apps.remove(d.app);
            return (None, None);
        }
        let gate = match apps.get_mut(d.app) {
            Some(g) => g,
            None => apps.entry(d.app.to_string()).or_default(),
        };
        (
            Limit::optional(&mut gate.instances, q.max_instances),
            Limit::optional(&mut gate.memory, q.max_memory_mb),
        )
    }

    /// Waits for every gate `d` passes through, or fails past the queue timeout.
    pub async fn admit(&self, d: Demand<'_>) -> Result<Slot> {
        let wait = Duration::from_millis(u64::from(d.scaling.queue_timeout_ms));
        let deadline = Instant::now() + wait;
        let mut held = Vec::with_capacity(4);
        let (gate, waiting) = self.function_gate(&d);
        let permit = match gate.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let _w = Waiting::new(waiting);
                take(gate, 1, deadline).await
            }
        };
        held.push(permit.ok_or_else(|| {
            throttled(format!(
                "{}/{} is at its limit of {} concurrent invocations (max_instances {} × {} \
                 per instance) and none freed within {} ms",
                d.app,
                d.function,
                d.scaling
                    .max_instances
                    .saturating_mul(d.scaling.concurrency(d.runtime)),
                d.scaling.max_instances,
                d.scaling.concurrency(d.runtime),
                d.scaling.queue_timeout_ms
            ))
        })?);
        let (instances, memory) = self.app_gates(&d);
        if let Some(sem) = instances {
            let p = take(sem, 1, deadline).await.ok_or_else(|| {
                throttled(format!(
                    "app {} is at its quota of {} running instances",
                    d.app,
                    d.quotas.max_instances.unwrap_or_default()
                ))
            })?;
            held.push(p);
        }
        if let Some(sem) = memory {
            let quota = d.quotas.max_memory_mb.unwrap_or_default();
            if d.memory_mb > quota {
                return Err(throttled(format!(
                    "{}/{} needs {} MiB, more than app {}'s memory quota of {quota} MiB",
                    d.app, d.function, d.memory_mb, d.app
                )));
            }
            let p = take(sem, d.memory_mb, deadline).await.ok_or_else(|| {
                throttled(format!(
                    "app {} is at its memory quota of {quota} MiB",
                    d.app
                ))
            })?;
            held.push(p);
        }
        if !d.runtime.is_process() {
            let p = take(self.wasm_memory.permits.clone(), d.memory_mb, deadline)
                .await
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::NoCapacity,
                        format!(
                            "the node's wasm memory budget of {} MiB is in use",
                            self.wasm_memory.size
                        ),
                    )
                })?;
            held.push(p);
        }
        Ok(Slot { _held: held })
    }

    /// The load on the gate of every function whose runtime `keep` accepts, for the
    /// autoscaler.
    pub fn loads(&self, keep: impl Fn(Runtime) -> bool) -> Vec<GateLoad> {
        let gates = lock(&self.gates);
        let mut out = Vec::new();
        for (app, fns) in gates.iter() {
            for (function, g) in fns.iter().filter(|(_, g)| keep(g.runtime)) {
                let free = u32::try_from(g.limit.permits.available_permits()).unwrap_or(0);
                out.push(GateLoad {
                    app: app.clone(),
                    function: function.clone(),
                    runtime: g.runtime,
                    scaling: g.scaling,
                    app_max_instances: g.app_max_instances,
                    running: g.limit.size.saturating_sub(free),
                    waiting: g.waiting.load(Ordering::Acquire),
                });
            }
        }
        out
    }

    /// Forgets a deleted function's gate.
    pub fn forget(&self, app: &str, function: &str) {
        if let Some(fns) = lock(&self.gates).get_mut(app) {
            fns.remove(function);
        }
    }

    /// Forgets a deleted app's gates and quotas.
    pub fn forget_app(&self, app: &str) {
        lock(&self.gates).remove(app);
        lock(&self.apps).remove(app);
    }
}

fn throttled(message: String) -> Error {
    Error::new(ErrorCode::Throttled, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaling(max: u32, concurrency: u32, queue_ms: u32) -> Scaling {
        Scaling {
            max_instances: max,
            concurrency_per_instance: Some(concurrency),
            queue_timeout_ms: queue_ms,
            ..Default::default()
        }
    }

    const NO_QUOTAS: AppQuotas = AppQuotas {
        max_instances: None,
        max_memory_mb: None,
        log_retention_days: None,
        log_retention_mb: None,
        rate_limit_rps: None,
        rate_limit_burst: None,
    };

    fn wasm<'a>(function: &'a str, scaling: &'a Scaling, quotas: &'a AppQuotas) -> Demand<'a> {
        Demand {
            app: "app",
            function,
            runtime: Runtime::Wasm,
            memory_mb: 128,
            scaling,
            quotas,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn admits_up_to_capacity_then_queues_fifo_then_throttles() {
        let a = Arc::new(Activator::new(1 << 20));
        let s = scaling(2, 2, 1000);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(a.admit(wasm("f", &s, &NO_QUOTAS)).await.unwrap());
        }
        // The fifth waits (and is counted as waiting); freeing one slot lets it in.
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.admit(wasm("f", &s, &NO_QUOTAS)).await.ok() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let load = a.loads(|_| true);
        assert_eq!((load[0].running, load[0].waiting), (4, 1));
        held.pop();
        held.push(waiter.await.unwrap().expect("admitted once a slot freed"));
        // Nothing frees: throttled after the queue timeout.
        let err = a.admit(wasm("f", &s, &NO_QUOTAS)).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Throttled);
        // Other functions are not affected.
        assert!(a.admit(wasm("g", &s, &NO_QUOTAS)).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn process_functions_get_one_slot_per_instance() {
        let a = Activator::new(1);
        let s = Scaling {
            concurrency_per_instance: None,
            ..scaling(1, 1, 0)
        };
        let demand = || Demand {
            runtime: Runtime::Python3,
            ..wasm("p", &s, &NO_QUOTAS)
        };
        // Process functions do not draw on the wasm memory budget (1 MiB here).
        let _one = a.admit(demand()).await.unwrap();
        let err = a.admit(demand()).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Throttled);
    }

    #[tokio::test(start_paused = true)]
    async fn app_quotas_bound_instances_and_memory_across_functions() {
        let a = Activator::new(1 << 20);
        let s = scaling(10, 10, 500);
        let quotas = AppQuotas {
            max_instances: Some(3),
            max_memory_mb: Some(1024),
            ..NO_QUOTAS
        };
        let held = [
            a.admit(wasm("f", &s, &quotas)).await.unwrap(),
            a.admit(wasm("g", &s, &quotas)).await.unwrap(),
            a.admit(wasm("g", &s, &quotas)).await.unwrap(),
        ];
        let err = a.admit(wasm("h", &s, &quotas)).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Throttled);
        assert!(
            err.message.contains("quota of 3 running instances"),
            "{}",
            err.message
        );
        drop(held);
        // Memory: 1024 MiB holds two 512 MiB invocations, and never one of 2048.
        let mem = AppQuotas {
            max_instances: None,
            ..quotas
        };
        let big = |mb| Demand {
            memory_mb: mb,
            ..wasm("m", &s, &mem)
        };
        let _m1 = a.admit(big(512)).await.unwrap();
        let _m2 = a.admit(big(512)).await.unwrap();
        assert_eq!(
            a.admit(big(512)).await.unwrap_err().code,
            ErrorCode::Throttled
        );
        let err = a.admit(big(2048)).await.unwrap_err();
        assert!(err.message.contains("more than app"), "{}", err.message);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_app_leaves_no_gates_behind() {
        let a = Activator::new(1 << 20);
        let s = scaling(1, 1, 0);
        let quotas = AppQuotas {
            max_instances: Some(1),
            ..NO_QUOTAS
        };
        drop(a.admit(wasm("f", &s, &quotas)).await.unwrap());
        assert_eq!(a.loads(|_| true).len(), 1);
        a.forget_app("app");
        assert!(a.loads(|_| true).is_empty());
        assert!(lock(&a.apps).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_node_wasm_memory_budget_answers_no_capacity() {
        let a = Activator::new(256);
        let s = scaling(10, 10, 200);
        let _one = a.admit(wasm("f", &s, &NO_QUOTAS)).await.unwrap();
        let _two = a.admit(wasm("g", &s, &NO_QUOTAS)).await.unwrap();
        let err = a.admit(wasm("h", &s, &NO_QUOTAS)).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::NoCapacity);
    }
}
