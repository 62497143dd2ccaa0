//! The activator: a per-function FIFO gate in front of every invocation. A function may
//! run `max_instances × concurrency_per_instance` invocations at once; the others wait in
//! arrival order (tokio's semaphore is fair) until a slot frees, for at most
//! `queue_timeout_ms`, then get 429 `throttled` with `Retry-After`.

use arcus_core::model::Runtime;
use arcus_core::scaling::Scaling;
use arcus_core::{Error, ErrorCode, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

struct Gate {
    capacity: u32,
    permits: Arc<Semaphore>,
}

/// The gates of every function on the node.
#[derive(Default)]
pub(crate) struct Activator {
    gates: Mutex<HashMap<(String, String), Gate>>,
}

/// A slot held for the whole invocation (until the guest has finished).
pub(crate) type Slot = OwnedSemaphorePermit;

impl Activator {
    /// The gate of a function, replaced when its capacity changed (invocations holding
    /// slots of the old gate finish normally).
    fn gate(&self, app: &str, function: &str, capacity: u32) -> Arc<Semaphore> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        let key = (app.to_string(), function.to_string());
        let gate = gates.entry(key).or_insert_with(|| Gate {
            capacity,
            permits: Arc::new(Semaphore::new(capacity as usize)),
        });
        if gate.capacity != capacity {
            *gate = Gate {
                capacity,
                permits: Arc::new(Semaphore::new(capacity as usize)),
            };
        }
        gate.permits.clone()
    }

    /// Waits for a slot of `app/function`, or fails with `throttled` after the queue timeout.
    pub async fn admit(
        &self,
        app: &str,
        function: &str,
        runtime: Runtime,
        scaling: &Scaling,
    ) -> Result<Slot> {
        let capacity = scaling
            .max_instances
            .saturating_mul(scaling.concurrency(runtime))
            .max(1);
        let gate = self.gate(app, function, capacity);
        if let Ok(slot) = gate.clone().try_acquire_owned() {
            return Ok(slot);
        }
        let wait = Duration::from_millis(u64::from(scaling.queue_timeout_ms));
        match tokio::time::timeout(wait, gate.acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(Error::new(
                ErrorCode::Throttled,
                format!(
                    "{app}/{function} is at its limit of {capacity} concurrent invocations \
                     (max_instances {} × {} per instance) and none freed within {} ms",
                    scaling.max_instances,
                    scaling.concurrency(runtime),
                    scaling.queue_timeout_ms
                ),
            )),
        }
    }

    /// Invocations of `app/function` running now.
    pub fn in_flight(&self, app: &str, function: &str) -> u32 {
        let gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates
            .get(&(app.to_string(), function.to_string()))
            .map_or(0, |g| {
                let free = u32::try_from(g.permits.available_permits()).unwrap_or(u32::MAX);
                g.capacity.saturating_sub(free)
            })
    }

    /// Forgets a deleted function's gate.
    pub fn forget(&self, app: &str, function: &str) {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates.remove(&(app.to_string(), function.to_string()));
    }
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

    #[tokio::test(start_paused = true)]
    async fn admits_up_to_capacity_then_queues_fifo_then_throttles() {
        let a = Activator::default();
        let s = scaling(2, 2, 1000);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(a.admit("app", "f", Runtime::Wasm, &s).await.unwrap());
        }
        // The fifth waits; freeing one slot lets it in.
        let a = Arc::new(a);
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.admit("app", "f", Runtime::Wasm, &s).await.ok() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        held.pop();
        held.push(waiter.await.unwrap().expect("admitted once a slot freed"));
        // Nothing frees: throttled after the queue timeout.
        let err = a.admit("app", "f", Runtime::Wasm, &s).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Throttled);
        // Other functions are not affected.
        assert!(a.admit("app", "g", Runtime::Wasm, &s).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn process_functions_get_one_slot_per_instance() {
        let a = Activator::default();
        let s = scaling(1, 1, 0);
        let _one = a
            .admit(
                "app",
                "p",
                Runtime::Python3,
                &Scaling {
                    concurrency_per_instance: None,
                    ..s
                },
            )
            .await
            .unwrap();
        let err = a
            .admit(
                "app",
                "p",
                Runtime::Python3,
                &Scaling {
                    concurrency_per_instance: None,
                    ..s
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Throttled);
    }
}
