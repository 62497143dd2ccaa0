//! Escape tests: each starts a sandboxed process that attempts to get out and asserts
//! that it fails. They need root (as CI has); they are skipped, saying so, only when
//! bubblewrap is missing.

mod fs;
mod limits;
mod net;
mod syscalls;

use super::{Cgroup, SandboxSpec, SandboxSupport};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// bubblewrap as installed by `apt-get install bubblewrap`.
pub(crate) const BWRAP: &str = "/usr/bin/bwrap";
/// Debian's python3 (readable by the sandbox user, unlike a pyenv shim).
pub(crate) const PYTHON: &str = "/usr/bin/python3";
/// The sandbox user.
pub(crate) const NOBODY: u32 = 65534;
/// Upper bound of every sandboxed test process.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// The host's support, or `None` (after printing why) when bubblewrap is missing.
pub(crate) fn support() -> Option<SandboxSupport> {
    if !Path::new(BWRAP).exists() {
        eprintln!("SKIPPED: {BWRAP} is missing (apt-get install bubblewrap slirp4netns)");
        return None;
    }
    Some(SandboxSupport::detect(Path::new(BWRAP)).unwrap())
}

/// A temporary directory the sandbox user can read (tempfile makes them 0700).
pub(crate) fn dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A spec with `code` read-only at /var/task and nothing else.
pub(crate) fn spec(code: &Path) -> SandboxSpec {
    SandboxSpec {
        ro_binds: vec![(code.to_path_buf(), PathBuf::from("/var/task"))],
        rw_binds: Vec::new(),
        tmp_size_mb: 16,
        cwd: PathBuf::from("/var/task"),
        memory_mb: 256,
        pids_max: 64,
        netns: None,
        uid: NOBODY,
        gid: NOBODY,
    }
}

/// What a sandboxed process did.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Exit code (None: killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub out: String,
    /// stderr.
    pub err: String,
}

/// Runs `python3 -c script` in the sandbox, bounded by [`LIMIT`].
pub(crate) async fn py(
    support: &SandboxSupport,
    spec: &SandboxSpec,
    cgroup: Option<&Cgroup>,
    script: &str,
) -> Ran {
    run(support, spec, cgroup, PYTHON, &["-c", script]).await
}

/// Runs `program args` in the sandbox, bounded by [`LIMIT`].
pub(crate) async fn run(
    support: &SandboxSupport,
    spec: &SandboxSpec,
    cgroup: Option<&Cgroup>,
    program: &str,
    args: &[&str],
) -> Ran {
    run_env(support, spec, cgroup, program, args, &[]).await
}

/// [`run`] with extra environment variables (besides `PATH`).
pub(crate) async fn run_env(
    support: &SandboxSupport,
    spec: &SandboxSpec,
    cgroup: Option<&Cgroup>,
    program: &str,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Ran {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let child = super::command(
        support,
        Path::new(BWRAP),
        spec,
        cgroup,
        Path::new(program),
        &args,
        &env,
    )
    .unwrap()
    .spawn()
    .unwrap();
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("sandboxed process did not finish in time")
        .unwrap();
    let ran = Ran {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("{ran:#?}");
    ran
}

/// `key value` lines of a script's output.
pub(crate) fn lines(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[tokio::test]
async fn sandbox_detects_host() {
    let Some(s) = support() else { return };
    assert!(s.bwrap_version.starts_with("bubblewrap"), "{s:?}");
    assert!(!s.cgroup_base.dirs.is_empty());
}

#[tokio::test]
async fn sandbox_runs_python_as_unprivileged_user() {
    let Some(s) = support() else { return };
    let code = dir();
    let ran = py(
        &s,
        &spec(code.path()),
        None,
        "import os; print(os.getuid(), os.getcwd())",
    )
    .await;
    assert_eq!(ran.code, Some(0));
    assert_eq!(ran.out.trim(), "65534 /var/task");
}

#[tokio::test]
async fn sandbox_refuses_root() {
    let Some(s) = support() else { return };
    let code = dir();
    let mut sp = spec(code.path());
    sp.uid = 0;
    let err = super::command(&s, Path::new(BWRAP), &sp, None, Path::new(PYTHON), &[], &[])
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn sandbox_run_to_completion_collects_output_and_times_out() {
    let Some(s) = support() else { return };
    let code = dir();
    let sp = spec(code.path());
    let args = |s: &str| vec!["-c".to_string(), s.to_string()];
    let out = super::run_to_completion(
        &s,
        Path::new(BWRAP),
        &sp,
        Path::new(PYTHON),
        &args("import sys; print('out', flush=True); print('err', file=sys.stderr); sys.exit(3)"),
        &[],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(out.status, Some(3));
    assert!(
        out.output.contains("out") && out.output.contains("err"),
        "{out:?}"
    );
    assert!(!out.timed_out && !out.oom_killed);

    let started = std::time::Instant::now();
    let out = super::run_to_completion(
        &s,
        Path::new(BWRAP),
        &sp,
        Path::new(PYTHON),
        &args("import time, os\nif os.fork() == 0: time.sleep(60)\ntime.sleep(60)"),
        &[],
        Duration::from_millis(500),
    )
    .await
    .unwrap();
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.status, None);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Output is tail-bounded.
    let out = super::run_to_completion(
        &s,
        Path::new(BWRAP),
        &sp,
        Path::new(PYTHON),
        &args("print('x' * 200000); print('END')"),
        &[],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(
        out.output.len() <= 64 * 1024 && out.output.ends_with("END\n"),
        "{}",
        out.output.len()
    );
}

#[test]
fn sandbox_bwrap_args_order() {
    let Some(s) = support() else { return };
    let mut sp = spec(Path::new("/srv/code"));
    sp.rw_binds
        .push((PathBuf::from("/srv/layer"), PathBuf::from("/opt")));
    let args: Vec<String> = super::bwrap_args(
        &s,
        &sp,
        &super::ArgFds {
            seccomp: 7,
            passwd: 8,
            group: 9,
        },
        Path::new("/usr/bin/python3"),
        &["-c".into()],
    )
    .into_iter()
    .map(|a| a.to_string_lossy().into_owned())
    .collect();
    let at = |needle: &[&str]| {
        args.windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from {args:?}"))
    };
    for flag in [
        "--unshare-user",
        "--disable-userns",
        "--unshare-pid",
        "--die-with-parent",
    ] {
        at(&[flag]);
    }
    assert!(
        !args
            .iter()
            .any(|a| a == "--unshare-net" || a == "--share-net")
    );
    let code = at(&["--ro-bind", "/srv/code", "/var/task"]);
    let layer = at(&["--bind", "/srv/layer", "/opt"]);
    let tmp = at(&["--size", "16777216", "--tmpfs", "/tmp"]);
    let root_ro = at(&["--remount-ro", "/"]);
    assert!(tmp < code && code < root_ro && layer < root_ro);
    assert_eq!(
        &args[args.len() - 5..],
        ["--seccomp", "7", "--", "/usr/bin/python3", "-c"]
    );
    assert!(!args.iter().any(|a| a.contains("shadow")));
    at(&["--ro-bind-data", "8", "/etc/passwd"]);
    at(&["--ro-bind-data", "9", "/etc/group"]);
}

#[tokio::test]
async fn sandbox_command_can_be_spawned_twice() {
    let Some(s) = support() else { return };
    let code = dir();
    let args = vec!["-c".to_string(), "print('hi')".to_string()];
    let mut cmd = super::command(
        &s,
        Path::new(BWRAP),
        &spec(code.path()),
        None,
        Path::new(PYTHON),
        &args,
        &[],
    )
    .unwrap();
    for _ in 0..2 {
        let out = tokio::time::timeout(LIMIT, cmd.output())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{out:?}");
    }
}
