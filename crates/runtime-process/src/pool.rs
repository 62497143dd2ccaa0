//! Warm instances per spec: reuse an idle one, start one when none is idle (within the
//! node's instance and memory budget, evicting idle instances of other functions first),
//! replace failed ones, and stop idle ones after the idle timeout.

use crate::instance::{Instance, StartFailure};
use crate::output::{INIT_MARK, platform};
use crate::package::{self, UnpackLimits};
use crate::sandbox::SandboxSupport;
use crate::{
    InstanceInfo, InvokeRequest, PoolPolicy, PrepareError, ProcessCompletion, ProcessConfig,
    ProcessKind, ProcessLogLine, ProcessOutcome, ProcessSpec, bootstrap, deps,
};
use arcus_core::api::InstanceState;
use arcus_core::limits::{MAX_UNZIPPED_CODE_BYTES, MAX_ZIP_ENTRIES};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

/// How often idle instances are checked against their keep-alive.
const REAP_TICK: Duration = Duration::from_secs(1);
/// How long an invocation waits for a free instance slot before `NoCapacity`.
const CAPACITY_WAIT: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Pool maps stay consistent under a panic elsewhere: each update is one push/pop.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a live instance holds of the node until it stops: one instance slot and its
/// function's memory.
pub(crate) struct Reservation {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _memory: tokio::sync::OwnedSemaphorePermit,
}

/// An idle instance with the spec it belongs to.
struct Idle {
    spec: ProcessSpec,
    policy: PoolPolicy,
    instance: Instance,
    /// What a pre-warmed instance printed while it started, kept for its first
    /// invocation's log (before its `START`); empty once it has served one.
    start_up: Vec<ProcessLogLine>,
}

/// What is known of an instance while it runs an invocation.
struct Busy {
    spec: ProcessSpec,
    started: Instant,
    init_duration: Option<Duration>,
}

/// Every pool of a node.
pub(crate) struct Pools {
    config: ProcessConfig,
    support: SandboxSupport,
    runtime_dir: PathBuf,
    /// Slots for live instances (idle or busy).
    slots: Arc<Semaphore>,
    /// The node's memory budget for live instances, in MiB (each holds its `memory_mb`).
    memory: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    busy: Mutex<HashMap<String, Busy>>,
    prepares: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
    /// Code known to be prepared, so warm invocations do not touch the disk.
    ready: Mutex<std::collections::HashSet<String>>,
    /// What the autoscaler wants per function (by ARN).
    targets: Mutex<HashMap<String, ScaleTarget>>,
    /// Instances being started or stopped, by a key of their own.
    transitions: Mutex<HashMap<u64, Transition>>,
    next_transition: std::sync::atomic::AtomicU64,
    /// Pre-started runtimes for cold starts.
    spares: crate::spare::SparePool,
}

/// An instance on its way in or out, for the instances view.
struct Transition {
    id: String,
    spec: ProcessSpec,
    state: InstanceState,
    since: Instant,
}

/// Removes its transition when dropped.
struct InTransition<'a> {
    pools: &'a Pools,
    key: u64,
}

impl Drop for InTransition<'_> {
    fn drop(&mut self) {
        lock(&self.pools.transitions).remove(&self.key);
    }
}

/// A function's autoscaler target: the spec it last ran and the instances wanted.
struct ScaleTarget {
    spec: ProcessSpec,
    policy: PoolPolicy,
    desired: u32,
}

impl Pools {
    pub fn new(config: ProcessConfig) -> Result<Self, PrepareError> {
        let support =
            SandboxSupport::detect_as(&config.bwrap, config.sandbox_uid, config.sandbox_gid)
                .map_err(PrepareError::Internal)?;
        // Spare slots of an earlier run are stale.
        let _ = std::fs::remove_dir_all(config.work_dir.join("spares"));
        for dir in ["code", "layers", "spares"] {
            std::fs::create_dir_all(config.work_dir.join(dir))
                .map_err(|e| PrepareError::Internal(format!("create work dir: {e}")))?;
        }
        check_traversable(&config.work_dir, config.sandbox_uid)?;
        let runtime_dir = bootstrap::materialize(&config.work_dir)
            .map_err(|e| PrepareError::Internal(format!("write the runtime bootstraps: {e}")))?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(config.max_instances)),
            memory: Arc::new(Semaphore::new(config.memory_budget_mb as usize)),
            config,
            support,
            runtime_dir,
            idle: Mutex::default(),
            busy: Mutex::default(),
            prepares: Mutex::default(),
            ready: Mutex::default(),
            targets: Mutex::default(),
            transitions: Mutex::default(),
            next_transition: Default::default(),
            spares: Default::default(),
        })
    }

    /// Starts the reaper of idle instances; it ends when the pools are dropped.
    pub fn start_reaper(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let tick = REAP_TICK;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(pools) = weak.upgrade() else { return };
                pools.reap().await;
            }
        });
    }

    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    pub fn spares(&self) -> &crate::spare::SparePool {
        &self.spares
    }

    /// Where spare runtimes' slots live.
    pub fn spares_dir(&self) -> PathBuf {
        self.config.work_dir.join("spares")
    }

    pub fn support(&self) -> &SandboxSupport {
        &self.support
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    pub fn code_dir(&self, sha256: &str) -> PathBuf {
        self.config.work_dir.join("code").join(sha256)
    }

    fn ready_marker(&self, sha256: &str) -> PathBuf {
        self.config
            .work_dir
            .join("code")
            .join(format!("{sha256}.ready"))
    }

    /// The dependency layer built for this code, if it has one.
    pub fn layer_of(&self, sha256: &str) -> Option<PathBuf> {
        let text = std::fs::read_to_string(self.ready_marker(sha256)).ok()?;
        let layer = text.lines().next().filter(|l| !l.is_empty())?;
        Some(PathBuf::from(layer))
    }

    pub async fn prepare(
        &self,
        kind: ProcessKind,
        sha256: &str,
        zip: Vec<u8>,
    ) -> Result<String, PrepareError> {
        if !sha256.bytes().all(|b| b.is_ascii_hexdigit()) || sha256.len() != 64 {
            return Err(PrepareError::Internal(format!("bad code hash {sha256:?}")));
        }
        let cell = lock(&self.prepares)
            .entry(sha256.to_string())
            .or_default()
            .clone();
        let result = cell
            .get_or_try_init(|| self.prepare_once(kind, sha256, zip))
            .await
            .cloned();
        if result.is_err() {
            lock(&self.prepares).remove(sha256);
        }
        result
    }

    async fn prepare_once(
        &self,
        kind: ProcessKind,
        sha256: &str,
        zip: Vec<u8>,
    ) -> Result<String, PrepareError> {
        if self.is_prepared(sha256) {
            return Ok(String::new());
        }
        let dir = self.code_dir(sha256);
        if dir.exists() {
            // Left over from an interrupted prepare: unpack again.
            std::fs::remove_dir_all(&dir).map_err(|e| PrepareError::Internal(e.to_string()))?;
        }
        let limits = UnpackLimits {
            max_unzipped_bytes: MAX_UNZIPPED_CODE_BYTES,
            max_entries: MAX_ZIP_ENTRIES,
        };
        let unpack_dir = dir.clone();
        tokio::task::spawn_blocking(move || package::unpack(&zip, &unpack_dir, &limits))
            .await
            .map_err(|e| PrepareError::Internal(e.to_string()))??;
        let built = deps::build(&self.config, &self.support, deps_kind(kind, &dir), &dir).await;
        let (layer, log) = match built {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let marker = layer.map(|l| l.display().to_string()).unwrap_or_default();
        std::fs::write(self.ready_marker(sha256), format!("{marker}\n"))
            .map_err(|e| PrepareError::Internal(format!("write ready marker: {e}")))?;
        Ok(log)
    }

    pub fn is_prepared(&self, sha256: &str) -> bool {
        if lock(&self.ready).contains(sha256) {
            return true;
        }
        let on_disk = self.ready_marker(sha256).exists() && self.code_dir(sha256).is_dir();
        if on_disk {
            lock(&self.ready).insert(sha256.to_string());
        }
        on_disk
    }

    pub async fn invoke(
        &self,
        spec: &ProcessSpec,
        policy: &PoolPolicy,
        req: InvokeRequest,
    ) -> ProcessCompletion {
        let (mut instance, cold, mut logs) = match self.checkout(spec).await {
            Ok(got) => got,
            Err(StartFailure { outcome, logs }) => {
                return ProcessCompletion {
                    outcome,
                    init_lines: logs.len(),
                    logs,
                    duration: Duration::ZERO,
                    cold_start: true,
                    init_duration: None,
                    max_memory_mb: None,
                };
            }
        };
        self.note_target(spec, policy);
        let init_lines = logs.len();
        let busy = Busy {
            spec: spec.clone(),
            started: instance.started,
            init_duration: instance.init_duration,
        };
        lock(&self.busy).insert(instance.id.clone(), busy);
        let (outcome, duration) = instance.invoke(&req, spec.timeout).await;
        lock(&self.busy).remove(&instance.id);
        let answered = matches!(
            outcome,
            ProcessOutcome::Ok(_) | ProcessOutcome::FunctionError { .. }
        );
        let id = answered.then_some(req.request_id.as_str());
        logs.extend(instance.take_logs(id).await);
        if let ProcessOutcome::Timeout = outcome {
            logs.push(platform(format!(
                "{} Task timed out after {:.2} seconds",
                req.request_id,
                spec.timeout.as_secs_f64()
            )));
        }
        let init_duration = if cold { instance.init_duration } else { None };
        let max_memory_mb = instance.max_memory_mb();
        let reusable = matches!(
            outcome,
            ProcessOutcome::Ok(_) | ProcessOutcome::FunctionError { .. }
        ) && instance.is_alive();
        if reusable {
            lock(&self.idle).push(Idle {
                spec: spec.clone(),
                policy: *policy,
                instance,
                start_up: Vec::new(),
            });
        }
        ProcessCompletion {
            outcome,
            logs,
            init_lines,
            duration,
            cold_start: cold,
            init_duration,
            max_memory_mb,
        }
    }

    /// An idle instance of `spec` (warm), or a new one (cold), with the start-up output
    /// not yet logged (a new or pre-warmed instance's).
    async fn checkout(
        &self,
        spec: &ProcessSpec,
    ) -> Result<(Instance, bool, Vec<ProcessLogLine>), StartFailure> {
        loop {
            let found = {
                let mut idle = lock(&self.idle);
                // Most recently used first, so the others age out.
                idle.iter()
                    .rposition(|i| &i.spec == spec)
                    .map(|pos| idle.remove(pos))
            };
            let Some(mut i) = found else { break };
            if i.instance.is_alive() {
                return Ok((i.instance, false, i.start_up));
            }
            i.instance.stop().await;
        }
        let reservation = self.reserve(spec).await?;
        let instance = self.start(spec, reservation).await?;
        let logs = instance.take_logs(Some(INIT_MARK)).await;
        Ok((instance, true, logs))
    }

    fn transition(&self, id: String, spec: &ProcessSpec, state: InstanceState) -> InTransition<'_> {
        let key = self
            .next_transition
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = Transition {
            id,
            spec: spec.clone(),
            state,
            since: Instant::now(),
        };
        lock(&self.transitions).insert(key, t);
        InTransition { pools: self, key }
    }

    /// Starts an instance, shown as starting meanwhile.
    async fn start(
        &self,
        spec: &ProcessSpec,
        reservation: Reservation,
    ) -> Result<Instance, StartFailure> {
        let placeholder = format!("starting-{}", uuid::Uuid::now_v7().simple());
        let _shown = self.transition(placeholder, spec, InstanceState::Starting);
        Instance::start(self, spec, reservation).await
    }

    /// Stops an instance (it runs nothing), shown as draining meanwhile.
    async fn drain(&self, spec: &ProcessSpec, mut instance: Instance) {
        let _shown = self.transition(instance.id.clone(), spec, InstanceState::Draining);
        instance.stop().await;
    }

    /// An instance slot and `memory_mb` of the node's budget, if both are free now.
    fn try_reserve(&self, memory_mb: u32) -> Option<Reservation> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        let memory = self.memory.clone().try_acquire_many_owned(memory_mb).ok()?;
        Some(Reservation {
            _slot: slot,
            _memory: memory,
        })
    }

    /// The least recently used idle instance, of another function than `spec`'s if
    /// there is one, taken out of the pool.
    fn take_victim(&self, spec: &ProcessSpec) -> Option<Idle> {
        let mut idle = lock(&self.idle);
        let oldest = idle
            .iter()
            .enumerate()
            .min_by_key(|(_, i)| {
                (
                    i.spec.function_arn == spec.function_arn,
                    i.instance.last_used,
                )
            })
            .map(|(n, _)| n)?;
        Some(idle.remove(oldest))
    }

    /// Room for a new instance of `spec`: free now, else made by stopping idle
    /// instances (least recently used, other functions' first) until it fits, else the
    /// first freed within `CAPACITY_WAIT`.
    async fn reserve(&self, spec: &ProcessSpec) -> Result<Reservation, StartFailure> {
        let no_capacity = |why: String| StartFailure {
            outcome: ProcessOutcome::NoCapacity(why),
            logs: Vec::new(),
        };
        if spec.memory_mb > self.config.memory_budget_mb {
            return Err(no_capacity(format!(
                "the function needs {} MiB, more than the node's process memory budget of {} MiB",
                spec.memory_mb, self.config.memory_budget_mb
            )));
        }
        loop {
            if let Some(r) = self.try_reserve(spec.memory_mb) {
                return Ok(r);
            }
            let Some(victim) = self.take_victim(spec) else {
                break;
            };
            self.drain(&victim.spec, victim.instance).await;
        }
        let wait = async {
            let slot = self.slots.clone().acquire_owned().await.ok()?;
            let memory = self
                .memory
                .clone()
                .acquire_many_owned(spec.memory_mb)
                .await
                .ok()?;
            Some(Reservation {
                _slot: slot,
                _memory: memory,
            })
        };
        match tokio::time::timeout(CAPACITY_WAIT, wait).await {
            Ok(Some(r)) => Ok(r),
            _ => Err(no_capacity(format!(
                "the node's {} process instance slots or {} MiB of process memory are in use",
                self.config.max_instances, self.config.memory_budget_mb
            ))),
        }
    }

    /// Remembers the spec a function last ran, which the autoscaler scales.
    fn note_target(&self, spec: &ProcessSpec, policy: &PoolPolicy) {
        let mut targets = lock(&self.targets);
        match targets.get_mut(&spec.function_arn) {
            Some(t) if &t.spec == spec => t.policy = *policy,
            Some(t) => {
                t.spec = spec.clone();
                t.policy = *policy;
            }
            None => {
                targets.insert(
                    spec.function_arn.clone(),
                    ScaleTarget {
                        spec: spec.clone(),
                        policy: *policy,
                        desired: 0,
                    },
                );
            }
        }
    }

    /// Live instances (starting, idle or busy) of a function.
    pub fn live(&self, function_arn: &str) -> u32 {
        let idle = lock(&self.idle)
            .iter()
            .filter(|i| i.spec.function_arn == function_arn)
            .count();
        let busy = lock(&self.busy)
            .values()
            .filter(|b| b.spec.function_arn == function_arn)
            .count();
        let starting = lock(&self.transitions)
            .values()
            .filter(|t| t.state == InstanceState::Starting && t.spec.function_arn == function_arn)
            .count();
        u32::try_from(idle + busy + starting).unwrap_or(u32::MAX)
    }

    /// Sets the instances the autoscaler wants for a function: idle ones up to that many
    /// are kept past keep-alive, and with `start_missing` missing ones are started now
    /// (in free slots only, never by evicting others). A function that has not run here
    /// yet is ignored.
    pub fn scale(self: &Arc<Self>, function_arn: &str, desired: u32, start_missing: bool) {
        let (spec, policy) = {
            let mut targets = lock(&self.targets);
            let Some(t) = targets.get_mut(function_arn) else {
                return;
            };
            t.desired = desired;
            (t.spec.clone(), t.policy)
        };
        let missing = desired.saturating_sub(self.live(function_arn));
        if missing == 0 || !start_missing {
            return;
        }
        let pools = self.clone();
        tokio::spawn(async move {
            for _ in 0..missing {
                if !pools.start_idle(&spec, &policy).await {
                    return;
                }
            }
        });
    }

    /// Starts one idle instance in a free slot; `false` if there is none or it failed.
    async fn start_idle(&self, spec: &ProcessSpec, policy: &PoolPolicy) -> bool {
        let Some(reservation) = self.try_reserve(spec.memory_mb) else {
            return false;
        };
        match self.start(spec, reservation).await {
            Ok(instance) => {
                let start_up = instance.take_logs(Some(INIT_MARK)).await;
                lock(&self.idle).push(Idle {
                    spec: spec.clone(),
                    policy: *policy,
                    instance,
                    start_up,
                });
                true
            }
            Err(f) => {
                tracing::warn!(function = %spec.function_name, "pre-warm failed: {:?}", f.outcome);
                false
            }
        }
    }

    pub async fn prewarm(&self, spec: &ProcessSpec, policy: &PoolPolicy) {
        let have = lock(&self.idle).iter().filter(|i| &i.spec == spec).count();
        for _ in have..policy.min_instances as usize {
            if !self.start_idle(spec, policy).await {
                return;
            }
        }
    }

    pub fn instances(&self) -> Vec<InstanceInfo> {
        let now = Instant::now();
        let mut out: Vec<InstanceInfo> = lock(&self.idle)
            .iter()
            .map(|i| InstanceInfo {
                id: i.instance.id.clone(),
                function_arn: i.spec.function_arn.clone(),
                function_version: i.spec.function_version.clone(),
                state: InstanceState::Idle,
                age: now - i.instance.started,
                idle_for: now - i.instance.last_used,
                init_duration: i.instance.init_duration,
            })
            .collect();
        out.extend(lock(&self.busy).iter().map(|(id, b)| InstanceInfo {
            id: id.clone(),
            function_arn: b.spec.function_arn.clone(),
            function_version: b.spec.function_version.clone(),
            state: InstanceState::Busy,
            age: now - b.started,
            idle_for: Duration::ZERO,
            init_duration: b.init_duration,
        }));
        out.extend(lock(&self.transitions).values().map(|t| InstanceInfo {
            id: t.id.clone(),
            function_arn: t.spec.function_arn.clone(),
            function_version: t.spec.function_version.clone(),
            state: t.state,
            age: now - t.since,
            idle_for: Duration::ZERO,
            init_duration: None,
        }));
        out
    }

    /// The floor of idle instances kept for a spec: its `min_instances`, or what the
    /// autoscaler wants if this is the spec its function last ran.
    fn floor(&self, spec: &ProcessSpec, policy: &PoolPolicy) -> u32 {
        let desired = lock(&self.targets)
            .get(&spec.function_arn)
            .filter(|t| &t.spec == spec)
            .map_or(0, |t| t.desired);
        policy.min_instances.max(desired)
    }

    /// Stops instances idle for longer than their keep-alive, keeping each spec's floor
    /// ([`Pools::floor`]; the most recently used ones).
    async fn reap(&self) {
        let floors: HashMap<ProcessSpec, u32> = lock(&self.idle)
            .iter()
            .map(|i| (i.spec.clone(), self.floor(&i.spec, &i.policy)))
            .collect();
        let expired: Vec<Idle> = {
            let mut idle = lock(&self.idle);
            let mut kept: HashMap<ProcessSpec, u32> = HashMap::new();
            let cap = self.config.idle_timeout;
            let mut expired = Vec::new();
            let mut keep = Vec::new();
            // Newest first, so the floor keeps the most recently used.
            for i in std::mem::take(&mut *idle).into_iter().rev() {
                let floor = kept.entry(i.spec.clone()).or_default();
                if *floor
                    < floors
                        .get(&i.spec)
                        .copied()
                        .unwrap_or(i.policy.min_instances)
                    || i.instance.last_used.elapsed() < i.policy.keep_alive.min(cap)
                {
                    *floor += 1;
                    keep.push(i);
                } else {
                    expired.push(i);
                }
            }
            keep.reverse();
            *idle = keep;
            expired
        };
        for i in expired {
            tracing::debug!(instance = %i.instance.id, function = %i.spec.function_name, "stopping idle instance");
            self.drain(&i.spec, i.instance).await;
        }
    }

    pub async fn shutdown(&self) {
        self.spares.clear();
        let all: Vec<Idle> = lock(&self.idle).drain(..).collect();
        for mut i in all {
            i.instance.stop().await;
        }
    }
}

/// bubblewrap binds code as the sandbox user, so every directory above the work dir must
/// let that user through (`o+x`, or owned by it). Fails with the directory to fix.
fn check_traversable(work_dir: &Path, uid: u32) -> Result<(), PrepareError> {
    use std::os::unix::fs::MetadataExt;
    let dir = std::fs::canonicalize(work_dir)
        .map_err(|e| PrepareError::Internal(format!("work dir {}: {e}", work_dir.display())))?;
    for d in dir.ancestors() {
        let meta = std::fs::metadata(d)
            .map_err(|e| PrepareError::Internal(format!("{}: {e}", d.display())))?;
        if meta.mode() & 0o001 == 0 && meta.uid() != uid {
            return Err(PrepareError::Internal(format!(
                "the sandbox user (uid {uid}) cannot enter {}: allow it (chmod o+x) or put the data dir elsewhere",
                d.display()
            )));
        }
    }
    Ok(())
}

/// Whose dependency manifest a zip has: its runtime's, or for a custom runtime (which
/// may well be a Python or Node program, e.g. a Lambda runtime client) whichever of
/// `requirements.txt` / `package.json` it holds.
fn deps_kind(kind: ProcessKind, dir: &Path) -> ProcessKind {
    match kind {
        ProcessKind::Custom if dir.join("requirements.txt").is_file() => ProcessKind::Python3,
        ProcessKind::Custom if dir.join("package.json").is_file() => ProcessKind::Node,
        other => other,
    }
}
