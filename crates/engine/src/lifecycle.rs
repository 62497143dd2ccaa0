//! The node's lifecycle loop, once per [`TICK`]: wasm components idle past their
//! keep-alive are unloaded (scale to zero), and every process function that has run
//! here feeds its in-flight load to its autoscaler ([`crate::autoscale`]), whose
//! decision sets how many instances its pool keeps and starts. Decisions are logged
//! with their inputs when they change.

use crate::autoscale::{Decision, Policy, Scaler};
use crate::{Engine, Inner};
use arcus_core::model::Runtime;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// How often the loop runs (Knative's KPA ticks every 2 s).
pub const TICK: Duration = Duration::from_secs(1);

/// One function's autoscaler and its last decision.
struct Tracked {
    scaler: Scaler,
    last: Option<u32>,
}

/// Starts the loop; it ends when the engine is dropped.
pub(crate) fn start(inner: &Arc<Inner>, window: Duration) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut tracked: HashMap<(String, String), Tracked> = HashMap::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            Engine { inner }.lifecycle_tick(&mut tracked, window);
        }
    });
}

impl Engine {
    fn lifecycle_tick(&self, tracked: &mut HashMap<(String, String), Tracked>, window: Duration) {
        for (sha, idle) in self.inner.components.reclaim() {
            tracing::info!(
                sha = %&sha[..sha.len().min(12)],
                idle_s = idle.as_secs(),
                "unloaded a component idle past its keep-alive"
            );
        }
        let Some(rt) = &self.inner.process else {
            return;
        };
        let now = Instant::now();
        let loads = self.inner.activator.loads(Runtime::is_process);
        let present: HashSet<(&str, &str)> = loads
            .iter()
            .map(|l| (l.app.as_str(), l.function.as_str()))
            .collect();
        tracked.retain(|(app, f), _| present.contains(&(app.as_str(), f.as_str())));
        for load in loads {
            let arn = crate::process::function_arn(&load.app, &load.function, None);
            let ready = rt.live_instances(&arn);
            let policy = Policy {
                min: load.scaling.min_instances,
                max: load
                    .scaling
                    .max_instances
                    .min(load.app_max_instances.unwrap_or(u32::MAX)),
                target_per_instance: load.scaling.target_per_instance(load.runtime),
                keep_alive: Duration::from_secs(u64::from(load.scaling.keep_alive_s)),
            };
            let t = tracked
                .entry((load.app.clone(), load.function.clone()))
                .or_insert_with(|| Tracked {
                    scaler: Scaler::with_window(window),
                    last: None,
                });
            t.scaler
                .observe(now, f64::from(load.running + load.waiting));
            let d: Decision = t.scaler.decide(now, ready, &policy);
            if t.last != Some(d.desired) {
                tracing::info!(
                    app = %load.app,
                    function = %load.function,
                    desired = d.desired,
                    ready,
                    running = load.running,
                    waiting = load.waiting,
                    stable_avg = d.stable_avg,
                    panic_avg = d.panic_avg,
                    panic = d.panic,
                    "autoscaler decision"
                );
                t.last = Some(d.desired);
            }
            rt.scale(&arn, d.desired, load.waiting == 0);
        }
    }
}
