//! Process runtimes of Arcus: `python3`, `node` and `custom` functions, each instance a
//! sandboxed process that speaks the AWS Lambda Runtime API (2018-06-01) to a server the
//! node runs for it.
//!
//! - [`package`] unpacks an uploaded zip safely (no traversal, no links out, bounded size)
//!   and [`deps`] installs its `requirements.txt` / `package.json` inside the sandbox.
//! - `sandbox` builds the isolation of every process (namespaces through bubblewrap,
//!   cgroups v1/v2, seccomp, a private network namespace); the only module with `unsafe`.
//! - `rapi` serves the Runtime API of one instance; `instance` runs one process;
//!   `pool` keeps warm instances per version and reuses them.
//! - `bootstrap` holds the built-in runtime clients for python3 and node that call a
//!   handler `(event, context)` the way Lambda does.

pub mod deps;
pub mod package;

mod bootstrap;
mod instance;
mod output;
mod pool;
mod rapi;
mod sandbox;
mod spare;

pub use sandbox::{CgroupVersion, SandboxSupport};

use arcus_core::model::Timestamp;
use arcus_core::record::LogStream;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which interpreter or executable starts an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessKind {
    /// `handler` = `module.function`, run by the built-in Python bootstrap.
    Python3,
    /// `handler` = `file.export`, run by the built-in Node bootstrap.
    Node,
    /// The zip's executable `bootstrap` speaks the Runtime API itself.
    Custom,
}

/// Outbound network of a function's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkMode {
    /// Only the instance's own loopback (where its Runtime API listens).
    #[default]
    None,
    /// User-mode outbound networking (slirp4netns); the host's loopback stays unreachable.
    Outbound,
}

/// Settings of the process runtimes, fixed at node start-up.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Where unpacked code, dependency layers, build logs and cgroups' names live.
    pub work_dir: PathBuf,
    /// The real python3 binary (never a shell shim).
    pub python3: PathBuf,
    /// The real node binary.
    pub node: PathBuf,
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// The slirp4netns binary, for `NetworkMode::Outbound`.
    pub slirp4netns: PathBuf,
    /// Host uid/gid the sandboxed processes run as (never root).
    pub sandbox_uid: u32,
    /// Host gid the sandboxed processes run as.
    pub sandbox_gid: u32,
    /// Size of each instance's writable `/tmp` in MiB.
    pub tmp_size_mb: u32,
    /// Largest number of processes/threads in one instance.
    pub pids_max: u32,
    /// Largest number of live process instances on the node.
    pub max_instances: usize,
    /// MiB the node's live process instances may hold together (each its `memory_mb`).
    pub memory_budget_mb: u32,
    /// The longest an idle instance is kept on this node, whatever its function's
    /// `keep_alive_s` asks for.
    pub idle_timeout: Duration,
    /// Spare runtimes kept started per built-in runtime (python3, node) for cold starts
    /// (see ADR 0018); 0 starts none ahead.
    pub spares: u32,
}

/// What one version's instances run: everything that identifies a pool of instances.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessSpec {
    /// Pool key: instances are shared only between invocations with equal specs.
    pub kind: ProcessKind,
    /// sha256 of the uploaded zip (names the unpacked code directory).
    pub code_sha256: String,
    /// `module.function` / `file.export`; ignored for custom.
    pub handler: String,
    /// Memory limit (cgroup) in MiB.
    pub memory_mb: u32,
    /// Wall-clock limit of one invocation.
    pub timeout: Duration,
    /// Environment variables set by the function's config (the Lambda ones are added).
    pub env: BTreeMap<String, String>,
    /// Outbound network.
    pub network: NetworkMode,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION` (`$LATEST` for the draft).
    pub function_version: String,
    /// The function's ARN (`arn:aws:lambda:<region>:<app>:function:<fn>`).
    pub function_arn: String,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`.
    pub log_group: String,
    /// `AWS_REGION`.
    pub region: String,
}

/// Function-level lifecycle settings of a pool. Not part of the spec: changing them keeps
/// the function's warm instances. (How many invocations run at once is the engine's
/// activator's business: each one here gets an instance.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolPolicy {
    /// Idle instances kept even past `keep_alive`.
    pub min_instances: u32,
    /// Idle time before an instance is stopped.
    pub keep_alive: Duration,
}

/// One invocation's request.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The JSON event.
    pub event: Bytes,
    /// `Lambda-Runtime-Invoked-Function-Arn` (with the qualifier when one was used).
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id`, if any.
    pub trace_id: Option<String>,
    /// `Lambda-Runtime-Client-Context`, if any.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`, if any.
    pub cognito_identity: Option<String>,
}

/// A captured output line of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessLogLine {
    /// stdout, stderr or platform (errors; `START`, `END` and `REPORT` are derived
    /// from the invocation's record by the store).
    pub stream: LogStream,
    /// When it was read.
    pub timestamp: Timestamp,
    /// The text without its newline.
    pub message: String,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessOutcome {
    /// The runtime posted a response: the raw payload.
    Ok(Bytes),
    /// The runtime posted an error (`errorType`, and the raw JSON error document).
    FunctionError {
        /// `Lambda-Runtime-Function-Error-Type` or the document's `errorType`.
        error_type: String,
        /// The error document (`{"errorMessage","errorType","stackTrace"}`).
        payload: Bytes,
    },
    /// Init failed (`/runtime/init/error`, or the process exited before asking for work).
    InitError {
        /// The error type reported.
        error_type: String,
        /// The runtime's message (or the exit status and last output).
        message: String,
    },
    /// The deadline passed; the process tree was killed.
    Timeout,
    /// The instance went over its memory limit and was killed.
    OutOfMemory,
    /// The process died during the invocation (exit status and signal in the message).
    Crashed(String),
    /// No instance could be started within the node's limits.
    NoCapacity(String),
    /// A host-side failure unrelated to the function.
    Internal(String),
}

/// The result of one invocation, with what it printed and what it cost.
#[derive(Debug, Clone)]
pub struct ProcessCompletion {
    /// How it ended.
    pub outcome: ProcessOutcome,
    /// Output and platform lines of this invocation.
    pub logs: Vec<ProcessLogLine>,
    /// How many of `logs`, from the first, a new instance printed while it started.
    pub init_lines: usize,
    /// From handing the event to the runtime to its answer.
    pub duration: Duration,
    /// Whether a new instance had to be started.
    pub cold_start: bool,
    /// Time to start the instance (process start to first `next`), for cold starts.
    pub init_duration: Option<Duration>,
    /// Peak memory of the instance in MiB, where the cgroup reports it.
    pub max_memory_mb: Option<u64>,
}

/// Failure of preparing code (unpack or dependency build).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The zip is unusable (broken, traversal, link out, too large, missing handler…).
    #[error("{0}")]
    InvalidCode(String),
    /// The unpacked size is over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// Installing dependencies failed; the build log is attached.
    #[error("dependency build failed: {message}")]
    BuildFailed {
        /// Short reason.
        message: String,
        /// The build's output (tail).
        log: String,
    },
    /// Host-side failure.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The process runtimes of a node: prepares code and runs invocations on pooled,
/// sandboxed instances. Cheap to clone.
#[derive(Clone)]
pub struct ProcessRuntime {
    inner: Arc<pool::Pools>,
}

/// A point-in-time view of one instance (for the instances API and scaling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// Instance id.
    pub id: String,
    /// The spec's function ARN (names the app and function).
    pub function_arn: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION` of the spec.
    pub function_version: String,
    /// Starting, idle, busy (running an invocation) or draining (being stopped).
    pub state: arcus_core::api::InstanceState,
    /// Time since the process started.
    pub age: Duration,
    /// Time since its last invocation ended (zero while busy).
    pub idle_for: Duration,
    /// How long the instance took to start (its cold start).
    pub init_duration: Option<Duration>,
}

impl ProcessRuntime {
    /// Checks the host (bubblewrap, cgroups, user namespaces) and builds the runtimes.
    /// Fails with a message naming what is missing.
    /// Must be called inside a tokio runtime (it starts the reaper of idle instances).
    pub fn new(config: ProcessConfig) -> Result<Self, PrepareError> {
        let pools = Arc::new(pool::Pools::new(config)?);
        pools.start_reaper();
        spare::start_keeper(&pools);
        Ok(Self { inner: pools })
    }

    /// What the host's sandbox support looks like (cgroup version, …).
    pub fn support(&self) -> &SandboxSupport {
        self.inner.support()
    }

    /// Unpacks `zip` (sha256 `sha256`) and installs its dependencies, unless that was
    /// done before (the result is kept on disk under the work dir). Returns the build log.
    pub async fn prepare(
        &self,
        kind: ProcessKind,
        sha256: &str,
        zip: Vec<u8>,
    ) -> Result<String, PrepareError> {
        self.inner.prepare(kind, sha256, zip).await
    }

    /// Checks that prepared code has what `kind` needs to start: the handler's module or
    /// file (python3, node) or an executable `bootstrap` (custom).
    pub fn check_entrypoint(
        &self,
        kind: ProcessKind,
        sha256: &str,
        handler: &str,
    ) -> Result<(), PrepareError> {
        package::check_entrypoint(kind, handler, &self.inner.code_dir(sha256))
    }

    /// Whether the code with this sha256 is unpacked and built on this node.
    pub fn is_prepared(&self, sha256: &str) -> bool {
        self.inner.is_prepared(sha256)
    }

    /// Runs one invocation on a warm instance of `spec`, starting one if none is idle.
    pub async fn invoke(
        &self,
        spec: &ProcessSpec,
        policy: &PoolPolicy,
        req: InvokeRequest,
    ) -> ProcessCompletion {
        self.inner.invoke(spec, policy, req).await
    }

    /// Starts instances of `spec` until `policy.min_instances` are idle (pre-warm at
    /// publish).
    pub async fn prewarm(&self, spec: &ProcessSpec, policy: &PoolPolicy) {
        self.inner.prewarm(spec, policy).await;
    }

    /// Live instances (starting, idle or busy) of the function with this ARN (unqualified).
    pub fn live_instances(&self, function_arn: &str) -> u32 {
        self.inner.live(function_arn)
    }

    /// Sets the instances the autoscaler wants for a function: that many idle ones are
    /// kept past keep-alive, and with `start_missing` missing ones start now in free
    /// slots. (Requests that find no idle instance start their own, so the engine asks
    /// for starts only while none queue: the two never race past `max_instances`.)
    pub fn scale(&self, function_arn: &str, desired: u32, start_missing: bool) {
        self.inner.scale(function_arn, desired, start_missing);
    }

    /// Every live instance.
    pub fn instances(&self) -> Vec<InstanceInfo> {
        self.inner.instances()
    }

    /// Stops every instance (node shutdown).
    pub async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}
