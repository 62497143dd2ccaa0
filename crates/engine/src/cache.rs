//! In-memory caches of the hot path: resolved routes (function + aliases + versions) and
//! loaded components. Control-plane writes through the engine invalidate routes.

use arcus_core::model::{AliasTarget, Function, Version};
use arcus_runtime_wasm::LoadedComponent;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::OnceCell;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Cache maps stay consistent under a panic elsewhere: every update is one insert/remove.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the dispatcher needs to route calls to one function.
pub(crate) struct Route {
    pub function: Function,
    pub aliases: HashMap<String, AliasTarget>,
    versions: Mutex<HashMap<u32, Arc<Version>>>,
}

impl Route {
    pub fn new(function: Function, aliases: HashMap<String, AliasTarget>) -> Self {
        Self {
            function,
            aliases,
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

type Key = (String, String);

/// Routes by `(app, function)`. A generation counter stops a slow reader from caching a
/// route that was invalidated while it was being read.
#[derive(Default)]
pub(crate) struct RouteCache {
    map: Mutex<HashMap<Key, Arc<Route>>>,
    generation: AtomicU64,
}

impl RouteCache {
    pub fn get(&self, app: &str, function: &str) -> Option<Arc<Route>> {
        lock(&self.map)
            .get(&(app.to_string(), function.to_string()))
            .cloned()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn insert_if_current(&self, app: &str, function: &str, route: Arc<Route>, generation: u64) {
        let mut map = lock(&self.map);
        if self.generation.load(Ordering::SeqCst) == generation {
            map.insert((app.to_string(), function.to_string()), route);
        }
    }

    pub fn invalidate(&self, app: &str, function: Option<&str>) {
        let mut map = lock(&self.map);
        self.generation.fetch_add(1, Ordering::SeqCst);
        match function {
            Some(f) => {
                map.remove(&(app.to_string(), f.to_string()));
            }
            None => map.retain(|(a, _), _| a != app),
        }
    }
}

struct Slot {
    cell: Arc<OnceCell<Arc<LoadedComponent>>>,
    last_used: u64,
}

/// Loaded components by code sha256, least recently used evicted past `capacity`.
/// Identical code shared by many functions is loaded once.
pub(crate) struct ComponentCache {
    slots: Mutex<HashMap<String, Slot>>,
    clock: AtomicU64,
    capacity: usize,
}

impl ComponentCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::default(),
            clock: AtomicU64::new(0),
            capacity: capacity.max(1),
        }
    }

    /// The cell for `sha`, created empty if absent; the caller initialises it once.
    pub fn cell(&self, sha: &str) -> Arc<OnceCell<Arc<LoadedComponent>>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get_mut(sha) {
            slot.last_used = now;
            return slot.cell.clone();
        }
        if slots.len() >= self.capacity {
            let oldest = slots
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                slots.remove(&k);
            }
        }
        let cell = Arc::new(OnceCell::new());
        slots.insert(
            sha.to_string(),
            Slot {
                cell: cell.clone(),
                last_used: now,
            },
        );
        cell
    }

    /// Whether the component of `sha` is loaded (without touching its recency).
    pub fn is_loaded(&self, sha: &str) -> bool {
        lock(&self.slots)
            .get(sha)
            .is_some_and(|s| s.cell.initialized())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.slots).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_used() {
        let cache = ComponentCache::new(2);
        let a = cache.cell("a");
        let _b = cache.cell("b");
        assert!(Arc::ptr_eq(&a, &cache.cell("a")));
        let _c = cache.cell("c");
        assert_eq!(cache.len(), 2);
        assert!(
            Arc::ptr_eq(&a, &cache.cell("a")),
            "a was used recently and must stay"
        );
    }
}
