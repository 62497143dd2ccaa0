//! Spare runtimes: python3 and node sandboxes started before any function needs them, so
//! a cold start skips the sandbox set-up and the interpreter's start (ADR 0018).
//!
//! A spare is a complete sandbox — network namespace with its Runtime API, cgroup,
//! bubblewrap — running the built-in runtime client with only the runtime-wide part of
//! Lambda's environment and `ARCUS_SPARE=1`. Its `/var/task` and `/opt` are bound from an
//! empty slot directory of its own. The client imports what it needs, then long-polls
//! the private `GET .../arcus/assignment`. When a function's instance starts,
//! [`assign`] links the function's code (and dependency layer) into the slot — hard
//! links, so no bytes are copied; a bound directory shows entries added later — sets the
//! cgroup's memory limit and CPU weight to the function's, starts outbound networking if
//! the function has it, and answers the assignment with the function's environment. The
//! client replaces its environment, imports the handler and asks for the first event.
//!
//! Only what can be changed after the interpreter started may differ between spares and
//! a function's own sandbox, so [`fits`] refuses functions whose variables the
//! interpreter or the loader read at start-up (`PYTHON*`, `NODE_*`, `LD_*`, …) and code
//! trees too big to link quickly; those (and `custom` runtimes) start in a sandbox of
//! their own as before. Every other start goes through a spare: one pre-started by the
//! pool when there is one, else one launched on the spot, so there is one start path.

use crate::instance::{self, LaunchSpec, Launched, StartFailure, internal};
use crate::pool::Pools;
use crate::{NetworkMode, ProcessKind, ProcessSpec};
use arcus_core::limits::MAX_PROCESS_MEMORY_MB;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Most files, directories and links a code tree (with its layer) may have to start
/// from a spare; linking more would cost more than a sandbox of its own.
pub(crate) const MAX_LINKED_ENTRIES: usize = 2000;

/// Prefixes of variables read when the interpreter or the dynamic loader starts, which a
/// spare (already started) cannot honour.
const START_UP_VARS: &[&str] = &[
    "PYTHON", "NODE_", "UV_", "LD_", "MALLOC_", "GLIBC_", "LC_", "LANGUAGE",
];

/// How long the keeper waits after a spare failed to start (or died) before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How often the keeper checks its spares without being woken.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// The runtimes spares are kept for.
const KINDS: [ProcessKind; 2] = [ProcessKind::Python3, ProcessKind::Node];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each update is one push, remove or insert: consistent under a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The node's spare runtimes and what is known of code trees' sizes.
#[derive(Default)]
pub(crate) struct SparePool {
    ready: Mutex<Vec<(ProcessKind, Launched)>>,
    wake: Arc<Notify>,
    entries: Mutex<HashMap<String, usize>>,
}

impl SparePool {
    /// A live spare of `kind`, taken out of the pool (the keeper starts another).
    pub(crate) fn take(&self, kind: ProcessKind) -> Option<Launched> {
        let mut ready = self.live();
        let pos = ready.iter().position(|(k, _)| *k == kind)?;
        let (_, spare) = ready.remove(pos);
        drop(ready);
        self.wake.notify_one();
        Some(spare)
    }

    /// The spares, locked, after dropping the ones whose process has exited.
    fn live(&self) -> MutexGuard<'_, Vec<(ProcessKind, Launched)>> {
        let mut ready = lock(&self.ready);
        ready.retain_mut(|(_, l)| matches!(l.child.try_wait(), Ok(None)));
        ready
    }

    /// Stops every spare.
    pub(crate) fn clear(&self) {
        lock(&self.ready).clear();
    }

    /// How many live spares of `kind` there are (dead ones are dropped).
    pub(crate) fn count(&self, kind: ProcessKind) -> usize {
        self.live().iter().filter(|(k, _)| *k == kind).count()
    }

    /// Entries of a code tree and its layer, counted once per code.
    pub(crate) fn tree_entries(&self, sha256: &str, count: impl FnOnce() -> usize) -> usize {
        if let Some(n) = lock(&self.entries).get(sha256) {
            return *n;
        }
        let n = count();
        lock(&self.entries).insert(sha256.to_string(), n);
        n
    }
}

/// Starts the task that keeps `config.spares` spares of each built-in runtime; it ends
/// when the pools are dropped.
pub(crate) fn start_keeper(pools: &Arc<Pools>) {
    let want = pools.config().spares as usize;
    if want == 0 {
        return;
    }
    let weak: Weak<Pools> = Arc::downgrade(pools);
    let wake = pools.spares().wake.clone();
    tokio::spawn(async move {
        loop {
            let notified = wake.notified();
            let Some(pools) = weak.upgrade() else { return };
            let failed = top_up(&pools, want);
            drop(pools);
            let pause = if failed { RETRY_AFTER } else { CHECK_EVERY };
            tokio::select! {
                () = notified, if !failed => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    });
}

/// Launches spares until each runtime has `want`; whether one failed.
fn top_up(pools: &Pools, want: usize) -> bool {
    for kind in KINDS {
        for _ in pools.spares().count(kind)..want {
            match launch(pools, kind) {
                Ok(spare) => lock(&pools.spares().ready).push((kind, spare)),
                Err(f) => {
                    tracing::warn!(?kind, "cannot start a spare runtime: {:?}", f.outcome);
                    return true;
                }
            }
        }
    }
    false
}

/// A spare's slot: `<work>/spares/<id>/{task,opt}`, bound at `/var/task` and `/opt`.
/// Removed when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    root: PathBuf,
}

impl Slot {
    fn create(pools: &Pools, id: &str) -> io::Result<Slot> {
        let slot = Slot {
            root: pools.spares_dir().join(id),
        };
        for dir in [slot.task(), slot.opt()] {
            fs::create_dir_all(&dir)?;
            fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
        Ok(slot)
    }

    fn task(&self) -> PathBuf {
        self.root.join("task")
    }

    fn opt(&self) -> PathBuf {
        self.root.join("opt")
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Whether an instance of `spec` may start from a spare.
pub(crate) fn fits(pools: &Pools, spec: &ProcessSpec) -> bool {
    matches!(spec.kind, ProcessKind::Python3 | ProcessKind::Node)
        && !spec
            .env
            .keys()
            .any(|k| START_UP_VARS.iter().any(|p| k.starts_with(p)))
        && tree_entries(pools, &spec.code_sha256) <= MAX_LINKED_ENTRIES
}

fn tree_entries(pools: &Pools, sha256: &str) -> usize {
    pools.spares().tree_entries(sha256, || {
        let code = count_entries(&pools.code_dir(sha256), MAX_LINKED_ENTRIES);
        let layer = pools
            .layer_of(sha256)
            .map_or(0, |l| count_entries(&l, MAX_LINKED_ENTRIES));
        code + layer
    })
}

/// Launches a spare runtime of `kind` (python3 or node): memory limited to the largest
/// a function may have until it is assigned, no outbound network.
pub(crate) fn launch(pools: &Pools, kind: ProcessKind) -> Result<Launched, StartFailure> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let slot = Slot::create(pools, &id).map_err(|e| internal("spare slot", e))?;
    let env = |port| {
        let mut env = instance::base_env(kind, port);
        env.push(("ARCUS_SPARE".into(), "1".into()));
        env
    };
    let l = LaunchSpec {
        kind,
        memory_mb: MAX_PROCESS_MEMORY_MB,
        network: NetworkMode::None,
        binds: vec![
            (slot.task(), PathBuf::from("/var/task")),
            (slot.opt(), PathBuf::from("/opt")),
        ],
        env: &env,
    };
    let mut launched = instance::launch(pools, &l)?;
    launched.slot = Some(slot);
    Ok(launched)
}

/// Makes a spare the instance of `spec`: links its code in, applies its limits and
/// network, and hands its environment over. Its init duration counts from now.
pub(crate) fn assign(
    pools: &Pools,
    mut spare: Launched,
    spec: &ProcessSpec,
) -> Result<Launched, StartFailure> {
    let slot = spare
        .slot
        .as_ref()
        .ok_or_else(|| internal("spare", "no slot"))?;
    let mut budget = MAX_LINKED_ENTRIES;
    link_tree(
        &pools.code_dir(&spec.code_sha256),
        &slot.task(),
        &mut budget,
    )
    .map_err(|e| internal("link the code", e))?;
    if let Some(layer) = pools.layer_of(&spec.code_sha256) {
        link_tree(&layer, &slot.opt(), &mut budget).map_err(|e| internal("link the layer", e))?;
    }
    spare
        .cgroup
        .set_memory(spec.memory_mb)
        .map_err(|e| internal("cgroup memory limit", e))?;
    if spec.network == NetworkMode::Outbound {
        spare
            .netns
            .start_outbound(&pools.config().slirp4netns)
            .map_err(|e| internal("outbound network", e))?;
    }
    let env: serde_json::Map<String, serde_json::Value> =
        instance::lambda_env(spec, spare.rapi.addr().port())
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
    let doc = serde_json::to_vec(&env).map_err(|e| internal("assignment", e))?;
    spare.clear_logs();
    spare.spawned_at = Instant::now();
    spare.rapi.assign(doc.into());
    Ok(spare)
}

/// How many entries (files, directories, links) the tree at `dir` has, counting at most
/// `limit + 1`.
pub(crate) fn count_entries(dir: &Path, limit: usize) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            n += 1;
            if n > limit {
                return n;
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    n
}

/// Recreates the tree `src` inside the existing directory `dst`: its directories (with
/// their modes), its symlinks, and hard links to its files (copies where the file system
/// refuses a link). Fails past `budget` entries.
fn link_tree(src: &Path, dst: &Path, budget: &mut usize) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| io::Error::other("too many files to link"))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir(&to)?;
            fs::set_permissions(&to, entry.metadata()?.permissions())?;
            link_tree(&from, &to, budget)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_linked_tree_shares_the_files_and_keeps_dirs_modes_and_links() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("pkg")).unwrap();
        fs::set_permissions(src.path().join("pkg"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(src.path().join("pkg/mod.py"), "x = 1\n").unwrap();
        fs::write(src.path().join("app.py"), "y = 2\n").unwrap();
        std::os::unix::fs::symlink("pkg/mod.py", src.path().join("link.py")).unwrap();
        let mut budget = 10;
        link_tree(src.path(), dst.path(), &mut budget).unwrap();
        assert_eq!(budget, 6);
        let (a, b) = (
            fs::metadata(src.path().join("pkg/mod.py")).unwrap(),
            fs::metadata(dst.path().join("pkg/mod.py")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "a hard link, not a copy");
        let mode = fs::metadata(dst.path().join("pkg")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o750);
        assert_eq!(
            fs::read_link(dst.path().join("link.py")).unwrap(),
            Path::new("pkg/mod.py")
        );
        assert_eq!(count_entries(dst.path(), 100), 4);
        assert_eq!(count_entries(dst.path(), 2), 3, "stops past the limit");

        let again = tempfile::tempdir().unwrap();
        let mut small = 3;
        assert!(link_tree(src.path(), again.path(), &mut small).is_err());
    }
}
