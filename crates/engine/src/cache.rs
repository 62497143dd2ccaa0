//! In-memory caches of the hot path: resolved routes (function + aliases + versions) and
//! loaded components. Control-plane writes through the engine invalidate routes.

use arcus_core::model::{AliasTarget, Function, Version};
use arcus_core::scaling::AppQuotas;
use arcus_runtime_wasm::LoadedComponent;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Cache maps stay consistent under a panic elsewhere: every update is one insert/remove.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the dispatcher needs to route calls to one function.
pub(crate) struct Route {
    pub function: Function,
    pub aliases: HashMap<String, AliasTarget>,
    /// The app's quotas.
    pub quotas: AppQuotas,
    versions: Mutex<HashMap<u32, Arc<Version>>>,
}

impl Route {
    pub fn new(
        function: Function,
        aliases: HashMap<String, AliasTarget>,
        quotas: AppQuotas,
    ) -> Self {
        Self {
            function,
            aliases,
            quotas,
            versions: Mutex::default(),
        }
    }

    pub fn version(&self, n: u32) -> Option<Arc<Version>> {
        lock(&self.versions).get(&n).cloned()
    }

    pub fn put_version(&self, v: Arc<Version>) {
        lock(&self.versions).insert(v.version, v);
    }
}

/// Routes by app, then function (looked up by `&str`, no allocation per request). A
/// generation counter stops a slow reader from caching a route that was invalidated
/// while it was being read.
#[derive(Default)]
pub(crate) struct RouteCache {
    map: Mutex<HashMap<String, HashMap<String, Arc<Route>>>>,
    generation: AtomicU64,
}

impl RouteCache {
    pub fn get(&self, app: &str, function: &str) -> Option<Arc<Route>> {
        lock(&self.map).get(app)?.get(function).cloned()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn insert_if_current(&self, app: &str, function: &str, route: Arc<Route>, generation: u64) {
        let mut map = lock(&self.map);
        if self.generation.load(Ordering::SeqCst) == generation {
            map.entry(app.to_string())
                .or_default()
                .insert(function.to_string(), route);
        }
    }

    pub fn invalidate(&self, app: &str, function: Option<&str>) {
        let mut map = lock(&self.map);
        self.generation.fetch_add(1, Ordering::SeqCst);
        match function {
            Some(f) => {
                if let Some(fns) = map.get_mut(app) {
                    fns.remove(f);
                }
            }
            None => {
                map.remove(app);
            }
        }
    }
}

/// What is known of a loaded component while it is in use.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicU32,
    /// When the last request started or ended.
    last_active: Mutex<Instant>,
}

/// Held by one request for as long as its guest runs; the component counts as busy
/// while any lease is out, and its idle time starts when the last one is dropped.
#[derive(Debug)]
pub(crate) struct Lease(Arc<Activity>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        *lock(&self.0.last_active) = Instant::now();
    }
}

/// A component once loaded, with how long loading took.
pub(crate) struct Loaded {
    pub component: Arc<LoadedComponent>,
    pub loaded_at: Instant,
    pub load_time: Duration,
}

struct Slot {
    cell: Arc<OnceCell<Loaded>>,
    activity: Arc<Activity>,
    /// Longest keep-alive of the functions that used it since it was loaded.
    keep_alive: Duration,
    /// Kept loaded regardless of idleness (a function using it has `min_instances` > 0).
    pinned: bool,
}

impl Slot {
    fn idle_for(&self, now: Instant) -> Option<Duration> {
        let busy = self.activity.in_flight.load(Ordering::Acquire) > 0;
        (!busy).then(|| now.saturating_duration_since(*lock(&self.activity.last_active)))
    }
}

/// How a function uses a component: its keep-alive and whether it must stay loaded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub keep_alive: Duration,
    pub pinned: bool,
}

/// The state of a loaded component, for the instances view.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ComponentState {
    pub in_flight: u32,
    pub age: Duration,
    pub idle_for: Duration,
    pub load_time: Duration,
}

/// How many components are in each state, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ComponentCounts {
    pub idle: u32,
    pub busy: u32,
    pub loading: u32,
}

/// Loaded components by code sha256. Identical code shared by many functions is loaded
/// once. A component idle past its keep-alive is unloaded by [`ComponentCache::reclaim`]
/// (scale to zero); past `capacity`, the least recently active idle one goes first.
/// Requests already running keep their own reference, so unloading never fails one.
pub(crate) struct ComponentCache {
    slots: Mutex<HashMap<String, Slot>>,
    capacity: usize,
}

impl ComponentCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// The cell for `sha` (created empty if absent; the caller initialises it once) and a
    /// lease the caller holds while the component runs.
    pub fn checkout(&self, sha: &str, usage: Usage) -> (Arc<OnceCell<Loaded>>, Lease) {
        let now = Instant::now();
        let mut slots = lock(&self.slots);
        if !slots.contains_key(sha) && slots.len() >= self.capacity {
            evict_one(&mut slots, now);
        }
        let slot = slots.entry(sha.to_string()).or_insert_with(|| Slot {
            cell: Arc::new(OnceCell::new()),
            activity: Arc::new(Activity {
                in_flight: AtomicU32::new(0),
                last_active: Mutex::new(now),
            }),
            keep_alive: Duration::ZERO,
            pinned: false,
        });
        slot.keep_alive = slot.keep_alive.max(usage.keep_alive);
        slot.pinned = usage.pinned;
        slot.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        *lock(&slot.activity.last_active) = now;
        (slot.cell.clone(), Lease(slot.activity.clone()))
    }

    /// Unloads components idle for longer than their keep-alive (unless pinned);
    /// returns each unloaded hash with how long it had been idle.
    pub fn reclaim(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let mut gone = Vec::new();
        lock(&self.slots).retain(|sha, slot| {
            let expired = slot
                .idle_for(now)
                .filter(|idle| !slot.pinned && *idle >= slot.keep_alive);
            if let Some(idle) = expired {
                gone.push((sha.clone(), idle));
            }
            expired.is_none()
        });
        gone
    }

    /// The state of the component of `sha`, if it is loaded.
    pub fn state(&self, sha: &str) -> Option<ComponentState> {
        let now = Instant::now();
        let slots = lock(&self.slots);
        let slot = slots.get(sha)?;
        let loaded = slot.cell.get()?;
        Some(ComponentState {
            in_flight: slot.activity.in_flight.load(Ordering::Acquire),
            age: now.saturating_duration_since(loaded.loaded_at),
            idle_for: slot.idle_for(now).unwrap_or_default(),
            load_time: loaded.load_time,
        })
    }

    /// How many components are loaded and idle, loaded and busy, and being loaded.
    pub fn counts(&self) -> ComponentCounts {
        let slots = lock(&self.slots);
        let mut c = ComponentCounts::default();
        for slot in slots.values() {
            let busy = slot.activity.in_flight.load(Ordering::Acquire) > 0;
            match (slot.cell.get().is_some(), busy) {
                (false, _) => c.loading += 1,
                (true, true) => c.busy += 1,
                (true, false) => c.idle += 1,
            }
        }
        c
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.slots).len()
    }
}

/// Makes room for one more component: the least recently active idle, unpinned one
/// goes; failing that, the least recently active of all (its running requests finish).
fn evict_one(slots: &mut HashMap<String, Slot>, now: Instant) {
    let victim = |only_idle: bool| {
        slots
            .iter()
            .filter(|(_, s)| !only_idle || (!s.pinned && s.idle_for(now).is_some()))
            .min_by_key(|(_, s)| *lock(&s.activity.last_active))
            .map(|(k, _)| k.clone())
    };
    if let Some(k) = victim(true).or_else(|| victim(false)) {
        slots.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRIEF: Usage = Usage {
        keep_alive: Duration::from_secs(10),
        pinned: false,
    };

    #[test]
    fn past_capacity_the_least_recently_active_idle_component_goes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let cache = ComponentCache::new(2);
            let (a, lease_a) = cache.checkout("a", BRIEF);
            drop(lease_a);
            tokio::time::advance(Duration::from_secs(1)).await;
            let (_b, lease_b) = cache.checkout("b", BRIEF);
            drop(lease_b);
            tokio::time::advance(Duration::from_secs(1)).await;
            let (a2, _busy) = cache.checkout("a", BRIEF);
            assert!(Arc::ptr_eq(&a, &a2));
            let _c = cache.checkout("c", BRIEF);
            assert_eq!(cache.len(), 2);
            assert!(
                Arc::ptr_eq(&a, &cache.checkout("a", BRIEF).0),
                "a is busy and was used recently: b must have gone"
            );
        });
    }

    #[tokio::test(start_paused = true)]
    async fn idle_components_are_unloaded_after_keep_alive_but_not_while_busy_or_pinned() {
        let cache = ComponentCache::new(10);
        let (_, lease) = cache.checkout("busy", BRIEF);
        let (_, idle) = cache.checkout("idle", BRIEF);
        drop(idle);
        let pinned = Usage {
            pinned: true,
            ..BRIEF
        };
        drop(cache.checkout("pinned", pinned).1);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(cache.reclaim().is_empty(), "nothing is past keep-alive yet");
        tokio::time::advance(Duration::from_secs(2)).await;
        let gone = cache.reclaim();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, "idle");
        assert!(gone[0].1 >= Duration::from_secs(10));
        // The busy one's idle time starts when its request ends.
        drop(lease);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(cache.reclaim().is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.reclaim()[0].0, "busy");
        assert_eq!(cache.len(), 1, "the pinned one stays");
    }
}
