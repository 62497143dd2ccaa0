//! One process instance: a sandboxed process, its Runtime API server, its cgroup and
//! network namespace, and the capture of its output. An instance serves one invocation
//! at a time; any failure other than a function error ends it.

use crate::bootstrap;
use crate::output::{Output, platform};
use crate::pool::Pools;
use crate::rapi::{InitFailure, RapiEvent, RuntimeApi};
use crate::sandbox::{self, Cgroup, NetNs, SandboxSpec};
use crate::{InvokeRequest, NetworkMode, ProcessKind, ProcessLogLine, ProcessOutcome, ProcessSpec};
use arcus_core::model::Timestamp;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::Child;

/// Port of the Runtime API inside each instance's own network namespace.
const RUNTIME_API_PORT: u16 = 9001;
/// Longest time an instance may take to start (as Lambda's init phase).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// A running instance.
pub(crate) struct Instance {
    pub id: String,
    pub started: Instant,
    pub last_used: Instant,
    /// Time from spawn to the runtime's first `next` (reported once, on the cold start).
    pub init_duration: Option<Duration>,
    child: Child,
    rapi: RuntimeApi,
    cgroup: Cgroup,
    _netns: Arc<NetNs>,
    logs: Arc<Output>,
    /// Whether its bootstrap prints end marks (python3 and node; see `output`).
    marks: bool,
    _slot: Option<crate::spare::Slot>,
    _reservation: crate::pool::Reservation,
}

/// How starting an instance failed.
pub(crate) struct StartFailure {
    pub outcome: ProcessOutcome,
    pub logs: Vec<ProcessLogLine>,
}

pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> StartFailure {
    StartFailure {
        outcome: ProcessOutcome::Internal(format!("{what}: {e}")),
        logs: Vec::new(),
    }
}

/// What to launch in a fresh sandbox.
pub(crate) struct LaunchSpec<'a> {
    pub kind: ProcessKind,
    pub memory_mb: u32,
    pub network: NetworkMode,
    /// Read-only binds besides the runtime dir: (host, inside).
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// The process's environment, given the Runtime API's port.
    pub env: &'a dyn Fn(u16) -> Vec<(String, String)>,
}

/// A sandboxed runtime process just spawned, with its Runtime API, cgroup, network
/// namespace and output capture; not yet known to be ready.
pub(crate) struct Launched {
    pub id: String,
    pub child: Child,
    pub rapi: RuntimeApi,
    pub cgroup: Cgroup,
    pub netns: Arc<NetNs>,
    pub logs: Arc<Output>,
    /// Whether its bootstrap prints end marks.
    pub marks: bool,
    pub spawned_at: Instant,
    /// The directories a spare's code is linked into (removed with the instance).
    pub slot: Option<crate::spare::Slot>,
}

impl Launched {
    /// Drops the output captured so far.
    pub fn clear_logs(&self) {
        self.logs.clear();
    }
}

/// Spawns `l.kind`'s runtime in a new sandbox (network namespace with the Runtime API,
/// cgroup, bubblewrap).
pub(crate) fn launch(pools: &Pools, l: &LaunchSpec<'_>) -> Result<Launched, StartFailure> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let netns = Arc::new(NetNs::new().map_err(|e| internal("network namespace", e))?);
    let listener = netns
        .bind_tcp(RUNTIME_API_PORT)
        .map_err(|e| internal("runtime API socket", e))?;
    let rapi = RuntimeApi::serve(listener).map_err(|e| internal("runtime API", e))?;
    if l.network == NetworkMode::Outbound {
        netns
            .start_outbound(&pools.config().slirp4netns)
            .map_err(|e| internal("outbound network", e))?;
    }
    let cgroup = Cgroup::create(pools.support(), &id, l.memory_mb, pools.config().pids_max)
        .map_err(|e| internal("cgroup", e))?;
    let sandbox_spec = sandbox_spec(pools, l, netns.clone());
    let (program, args) = entrypoint(pools, l.kind);
    let env = (l.env)(rapi.addr().port());
    let mut cmd = sandbox::command(
        pools.support(),
        &pools.config().bwrap,
        &sandbox_spec,
        Some(&cgroup),
        &program,
        &args,
        &env,
    )
    .map_err(|e| internal("sandbox", e))?;
    let spawned_at = Instant::now();
    let mut child = cmd.spawn().map_err(|e| internal("spawn", e))?;
    let logs = Arc::new(Output::default());
    logs.capture(child.stdout.take(), child.stderr.take());
    Ok(Launched {
        id,
        child,
        rapi,
        cgroup,
        netns,
        logs,
        marks: matches!(l.kind, ProcessKind::Python3 | ProcessKind::Node),
        spawned_at,
        slot: None,
    })
}

impl Instance {
    /// Starts an instance for `spec` — from a spare runtime where one fits, else in a
    /// sandbox of its own — and waits until its runtime asks for work.
    pub async fn start(
        pools: &Pools,
        spec: &ProcessSpec,
        reservation: crate::pool::Reservation,
    ) -> Result<Instance, StartFailure> {
        let launched = if crate::spare::fits(pools, spec) {
            let spare = match pools.spares().take(spec.kind) {
                Some(s) => s,
                None => crate::spare::launch(pools, spec.kind)?,
            };
            crate::spare::assign(pools, spare, spec)?
        } else {
            let env = |port| lambda_env(spec, port);
            let mut binds = vec![(
                pools.code_dir(&spec.code_sha256),
                PathBuf::from("/var/task"),
            )];
            if let Some(layer) = pools.layer_of(&spec.code_sha256) {
                binds.push((layer, PathBuf::from("/opt")));
            }
            let l = LaunchSpec {
                kind: spec.kind,
                memory_mb: spec.memory_mb,
                network: spec.network,
                binds,
                env: &env,
            };
            launch(pools, &l)?
        };
        Self::until_ready(launched, reservation).await
    }

    /// Waits for a launched runtime's first `next` (its init), up to [`INIT_TIMEOUT`].
    /// The init duration counts from `launched.spawned_at` (for a spare: its assignment).
    async fn until_ready(
        l: Launched,
        reservation: crate::pool::Reservation,
    ) -> Result<Instance, StartFailure> {
        let mut inst = Instance {
            id: l.id,
            started: l.spawned_at,
            last_used: Instant::now(),
            init_duration: None,
            child: l.child,
            rapi: l.rapi,
            cgroup: l.cgroup,
            _netns: l.netns,
            logs: l.logs,
            marks: l.marks,
            _slot: l.slot,
            _reservation: reservation,
        };
        let outcome = tokio::select! {
            ready = inst.rapi.ready() => match ready {
                Ok(()) => None,
                Err(InitFailure { error_type, message }) => Some(ProcessOutcome::InitError { error_type, message }),
            },
            status = inst.child.wait() => Some(ProcessOutcome::InitError {
                error_type: "Runtime.ExitError".into(),
                message: match status {
                    Ok(s) => format!("the runtime exited before asking for an invocation ({s})"),
                    Err(e) => format!("the runtime could not be awaited: {e}"),
                },
            }),
            () = tokio::time::sleep(INIT_TIMEOUT) => Some(ProcessOutcome::InitError {
                error_type: "Runtime.InitTimeout".into(),
                message: format!("the runtime did not start within {} s", INIT_TIMEOUT.as_secs()),
            }),
        };
        match outcome {
            None => {
                inst.init_duration = Some(inst.started.elapsed());
                Ok(inst)
            }
            Some(outcome) => {
                inst.stop().await;
                let mut logs = inst.take_logs(None).await;
                if let ProcessOutcome::InitError {
                    error_type,
                    message,
                } = &outcome
                {
                    logs.push(platform(format!(
                        "INIT_REPORT Status: error Error Type: {error_type} {message}"
                    )));
                }
                Err(StartFailure { outcome, logs })
            }
        }
    }

    /// Runs one invocation. Returns the outcome and its duration; after any outcome but
    /// `Ok` and `FunctionError` the instance is dead and must be dropped.
    pub async fn invoke(
        &mut self,
        req: &InvokeRequest,
        timeout: Duration,
    ) -> (ProcessOutcome, Duration) {
        let started = Instant::now();
        let deadline_ms = SystemTime::now()
            .checked_add(timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let outcome = tokio::select! {
            r = self.rapi.invoke(req, deadline_ms) => match r {
                Ok(RapiEvent::Response(payload)) => ProcessOutcome::Ok(payload),
                Ok(RapiEvent::Error { error_type, payload }) => ProcessOutcome::FunctionError {
                    error_type: document_type(&payload).unwrap_or(error_type),
                    payload,
                },
                Err(InitFailure { error_type, message }) => ProcessOutcome::InitError { error_type, message },
            },
            status = self.child.wait() => {
                if self.cgroup.oom_killed() {
                    ProcessOutcome::OutOfMemory
                } else {
                    ProcessOutcome::Crashed(match status {
                        Ok(s) => s.to_string(),
                        Err(e) => e.to_string(),
                    })
                }
            }
            () = tokio::time::sleep(timeout) => ProcessOutcome::Timeout,
        };
        let duration = started.elapsed();
        self.last_used = Instant::now();
        if !matches!(
            outcome,
            ProcessOutcome::Ok(_) | ProcessOutcome::FunctionError { .. }
        ) {
            self.stop().await;
            if self.cgroup.oom_killed() && !matches!(outcome, ProcessOutcome::Timeout) {
                return (ProcessOutcome::OutOfMemory, duration);
            }
        }
        (outcome, duration)
    }

    /// Peak memory of the instance in MiB.
    pub fn max_memory_mb(&self) -> Option<u64> {
        self.cgroup
            .peak_memory_bytes()
            .map(|b| b.div_ceil(1024 * 1024))
    }

    /// Takes the output read so far; for an invocation `answered` by a bootstrap that
    /// prints end marks, every line it printed (see `output`).
    pub async fn take_logs(&self, answered: Option<&str>) -> Vec<ProcessLogLine> {
        self.logs.take(answered.filter(|_| self.marks)).await
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the whole process tree.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        self.cgroup.kill_all();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
    }
}

/// The `errorType` of an error document: more telling than the runtime's header, which
/// clients often set to a generic `Unhandled`.
fn document_type(payload: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let t = doc.get("errorType")?.as_str()?;
    (!t.is_empty()).then(|| t.to_string())
}

fn sandbox_spec(pools: &Pools, l: &LaunchSpec<'_>, netns: Arc<NetNs>) -> SandboxSpec {
    let mut ro_binds = vec![(
        pools.runtime_dir().to_path_buf(),
        PathBuf::from("/var/runtime"),
    )];
    ro_binds.extend(l.binds.iter().cloned());
    SandboxSpec {
        ro_binds,
        rw_binds: Vec::new(),
        tmp_size_mb: pools.config().tmp_size_mb,
        cwd: PathBuf::from("/var/task"),
        memory_mb: l.memory_mb,
        pids_max: pools.config().pids_max,
        netns: Some(netns),
        uid: pools.config().sandbox_uid,
        gid: pools.config().sandbox_gid,
    }
}

fn entrypoint(pools: &Pools, kind: ProcessKind) -> (PathBuf, Vec<String>) {
    let c = pools.config();
    bootstrap::command(kind, &c.python3, &c.node)
        .unwrap_or_else(|| (PathBuf::from("/var/task/bootstrap"), Vec::new()))
}

/// The part of Lambda's environment that is the same for every function of a runtime:
/// what a spare runtime starts with (and what the interpreter reads at start-up).
pub(crate) fn base_env(kind: ProcessKind, port: u16) -> Vec<(String, String)> {
    let runtime = match kind {
        ProcessKind::Python3 => "python3",
        ProcessKind::Node => "nodejs",
        ProcessKind::Custom => "provided",
    };
    [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{runtime}")),
        ("PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin".into()),
        ("LANG", "C.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("HOME", "/tmp".into()),
        ("PYTHONPATH", "/var/runtime:/var/task:/opt/python".into()),
        (
            "NODE_PATH",
            "/opt/nodejs/node_modules:/var/runtime:/var/task".into(),
        ),
        ("LD_LIBRARY_PATH", "/var/task:/var/task/lib:/opt/lib".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The environment Lambda gives a function, plus the function's own variables (which
/// may not override the reserved ones).
pub(crate) fn lambda_env(spec: &ProcessSpec, port: u16) -> Vec<(String, String)> {
    let mut reserved = base_env(spec.kind, port);
    reserved.extend(
        [
            ("_HANDLER", spec.handler.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", spec.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", spec.function_version.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_LOG_GROUP_NAME", spec.log_group.clone()),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("{}/[{}]", today(), spec.function_version),
            ),
            ("AWS_REGION", spec.region.clone()),
            ("AWS_DEFAULT_REGION", spec.region.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v)),
    );
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .filter(|(k, _)| !reserved.iter().any(|(r, _)| r == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(reserved);
    env
}

fn today() -> String {
    let d = Timestamp::now_utc().date();
    format!("{:04}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}
