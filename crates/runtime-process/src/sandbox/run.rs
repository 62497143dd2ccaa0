//! Runs one sandboxed process to completion in its own cgroup, collecting its output
//! (dependency builds).

use super::{Cgroup, SandboxSpec, SandboxSupport};
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most output kept (the tail).
const OUTPUT_LIMIT: usize = 64 * 1024;

/// How a process run by [`run_to_completion`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunOutput {
    /// Exit code (`None` if it was killed by a signal or timed out).
    pub(crate) status: Option<i32>,
    /// stdout and stderr interleaved as read, the last 64 KiB (lossy UTF-8).
    pub(crate) output: String,
    /// The timeout passed; the process tree was killed.
    pub(crate) timed_out: bool,
    /// The cgroup's OOM killer killed a process.
    pub(crate) oom_killed: bool,
}

/// Runs `program args` in a sandbox (`spec`) in a fresh cgroup with the spec's memory and
/// pids limits, for at most `timeout`; the cgroup (and whatever is left in it) is removed
/// before returning.
pub(crate) async fn run_to_completion(
    support: &SandboxSupport,
    bwrap: &Path,
    spec: &SandboxSpec,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> io::Result<RunOutput> {
    let name = format!("run-{}", uuid::Uuid::new_v4().simple());
    let cgroup = Cgroup::create(support, &name, spec.memory_mb, spec.pids_max)?;
    let result = run_in(support, bwrap, spec, &cgroup, program, args, env, timeout).await;
    let oom_killed = cgroup.oom_killed();
    // Dropping kills leftovers and waits for the cgroup to empty: keep it off the runtime.
    let _ = tokio::task::spawn_blocking(move || drop(cgroup)).await;
    result.map(|mut out| {
        out.oom_killed = oom_killed;
        out
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_in(
    support: &SandboxSupport,
    bwrap: &Path,
    spec: &SandboxSpec,
    cgroup: &Cgroup,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> io::Result<RunOutput> {
    let mut child =
        super::command(support, bwrap, spec, Some(cgroup), program, args, env)?.spawn()?;
    let tail = Mutex::new(Vec::new());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let finished = tokio::time::timeout(timeout, async {
        tokio::join!(pump(stdout, &tail), pump(stderr, &tail));
        child.wait().await
    })
    .await;
    let (status, timed_out) = match finished {
        Ok(status) => (status?.code(), false),
        Err(_) => {
            cgroup.kill_all();
            let _ = child.kill().await;
            (None, true)
        }
    };
    let output = tail.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(RunOutput {
        status,
        output: String::from_utf8_lossy(&output).into_owned(),
        timed_out,
        oom_killed: false,
    })
}

/// Appends everything read from `reader` to `tail`, keeping only the last 64 KiB.
async fn pump(reader: Option<impl AsyncRead + Unpin>, tail: &Mutex<Vec<u8>>) {
    let Some(mut reader) = reader else { return };
    let mut buf = vec![0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                t.extend_from_slice(&buf[..n]);
                if t.len() > OUTPUT_LIMIT {
                    let excess = t.len() - OUTPUT_LIMIT;
                    t.drain(..excess);
                }
            }
        }
    }
}
