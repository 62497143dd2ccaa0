//! The isolation of every process instance and dependency build. The only module of
//! Arcus allowed to use `unsafe` (pre-exec hooks and the few syscalls without a safe
//! wrapper), each use with a `// SAFETY:` comment.
//!
//! A sandboxed process is started by bubblewrap (`bwrap`) as an unprivileged host user,
//! with its own user, mount, PID, IPC and UTS namespaces, a read-only view of the system,
//! its code read-only at `/var/task`, a size-limited `/tmp`, a seccomp filter and
//! `no_new_privs`; it joins a per-instance cgroup (v1 or v2, detected at start-up)
//! limiting memory, pids and CPU weight, and a per-instance network namespace created by
//! the node in which only loopback exists (plus slirp4netns for outbound, when enabled).
//!
//! The view: `/usr` read-only (with `/lib`, `/lib64`, `/bin`, `/sbin` as on the host:
//! symlinks into `/usr` or read-only binds), a few files of `/etc` (loader cache, TLS
//! roots, resolver, time zone, alternatives; never the host's `passwd`, `group` or `shadow`:
//! a generated `passwd`/`group` names only the sandbox user, home `/tmp`), a fresh `/proc` of
//! the sandbox's PID namespace, a minimal read-only `/dev`, a tmpfs `/tmp` of
//! `tmp_size_mb`, the spec's binds, and a read-only root. Host paths of binds must be
//! reachable by the sandbox user, since bwrap runs as that user.
//!
//! Layout: [`cgroup`], [`netns`], [`seccomp`] build the parts; `exec` is the child's
//! pre-exec hook; `run` runs a process to completion (dependency builds).
#![allow(unsafe_code)]

mod cgroup;
mod exec;
mod netns;
mod run;
mod seccomp;
#[cfg(test)]
pub(crate) mod tests;

pub use cgroup::{Cgroup, CgroupVersion};
pub use netns::NetNs;
#[allow(unused_imports)]
pub(crate) use run::{RunOutput, run_to_completion};

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

/// Files and directories of `/etc` bound read-only when they exist.
const ETC: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/alternatives",
];

/// Top-level system paths that usr-merged hosts make symlinks into `/usr`.
const USR_LINKS: &[&str] = &["/lib", "/lib64", "/lib32", "/bin", "/sbin"];

/// What the host offers, detected once at start-up.
#[derive(Debug, Clone)]
pub struct SandboxSupport {
    /// The cgroup hierarchy in use.
    pub cgroup: CgroupVersion,
    /// bubblewrap's version string.
    pub bwrap_version: String,
    /// Where cgroups are created.
    pub(crate) cgroup_base: cgroup::CgroupBase,
    /// How `/lib`, `/bin`, … appear inside.
    system: Vec<SystemPath>,
}

/// One top-level system path as it appears inside the sandbox.
#[derive(Debug, Clone)]
enum SystemPath {
    /// A symlink (`/lib -> usr/lib`).
    Symlink { target: PathBuf, path: PathBuf },
    /// A real directory, bound read-only.
    Dir(PathBuf),
}

impl SandboxSupport {
    /// Checks bubblewrap, the cgroup hierarchy and that a sandbox starts as the default
    /// sandbox user (65534). Fails with a message naming what is missing.
    pub fn detect(bwrap: &Path) -> Result<SandboxSupport, String> {
        Self::detect_as(bwrap, 65534, 65534)
    }

    /// [`SandboxSupport::detect`], probing with the given sandbox user.
    pub fn detect_as(bwrap: &Path, uid: u32, gid: u32) -> Result<SandboxSupport, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("the process runtimes need root (cgroups, network namespaces)".to_string());
        }
        let out = std::process::Command::new(bwrap)
            .arg("--version")
            .output()
            .map_err(|e| format!("bubblewrap not usable at {}: {e}", bwrap.display()))?;
        let bwrap_version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let (cgroup, cgroup_base) = cgroup::CgroupBase::detect()?;
        let system = USR_LINKS
            .iter()
            .filter_map(|p| {
                let path = PathBuf::from(p);
                let meta = std::fs::symlink_metadata(&path).ok()?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).ok()?;
                    Some(SystemPath::Symlink { target, path })
                } else {
                    meta.is_dir().then_some(SystemPath::Dir(path))
                }
            })
            .collect();
        let support = SandboxSupport {
            cgroup,
            bwrap_version,
            cgroup_base,
            system,
        };
        support.probe(bwrap, uid, gid)?;
        Ok(support)
    }

    /// Starts `/usr/bin/true` in a sandbox as `uid`/`gid`, with a network namespace.
    fn probe(&self, bwrap: &Path, uid: u32, gid: u32) -> Result<(), String> {
        let netns = NetNs::new().map_err(|e| format!("cannot create a network namespace: {e}"))?;
        let spec = SandboxSpec {
            ro_binds: Vec::new(),
            rw_binds: Vec::new(),
            tmp_size_mb: 1,
            cwd: PathBuf::from("/"),
            memory_mb: 64,
            pids_max: 16,
            netns: Some(Arc::new(netns)),
            uid,
            gid,
        };
        let mut cmd = std_command(
            self,
            bwrap,
            &spec,
            None,
            Path::new("/usr/bin/true"),
            &[],
            &[],
        )
        .map_err(|e| format!("cannot prepare a sandbox: {e}"))?;
        let out = cmd
            .output()
            .map_err(|e| format!("cannot start bubblewrap as uid {uid}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "bubblewrap failed as uid {uid} ({}; are unprivileged user namespaces \
                 enabled, and is bubblewrap ≥ 0.8?): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }
}

/// How one sandboxed process is set up.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Host directories bound read-only: (host path, path inside).
    pub ro_binds: Vec<(PathBuf, PathBuf)>,
    /// Host directories bound read-write (dependency builds only): (host, inside).
    pub rw_binds: Vec<(PathBuf, PathBuf)>,
    /// Size of the tmpfs at `/tmp` in MiB.
    pub tmp_size_mb: u32,
    /// Working directory inside.
    pub cwd: PathBuf,
    /// Memory limit in MiB (cgroup).
    pub memory_mb: u32,
    /// pids limit (cgroup).
    pub pids_max: u32,
    /// Network namespace to join; `None` = the host's network (dependency builds only).
    pub netns: Option<std::sync::Arc<NetNs>>,
    /// Host uid and gid to run as (never 0).
    pub uid: u32,
    /// Host gid.
    pub gid: u32,
}

/// A command that starts `program args` in the sandbox described by `spec`, in `cgroup`
/// (if any), with exactly `env` as its environment: stdin null, stdout and stderr piped,
/// killed when dropped. Spawning it needs root (the child drops to `spec.uid`).
pub(crate) fn command(
    support: &SandboxSupport,
    bwrap: &Path,
    spec: &SandboxSpec,
    cgroup: Option<&Cgroup>,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
) -> std::io::Result<tokio::process::Command> {
    let std_cmd = std_command(support, bwrap, spec, cgroup, program, args, env)?;
    let mut cmd = tokio::process::Command::from(std_cmd);
    cmd.kill_on_drop(true);
    Ok(cmd)
}

/// [`command`] as a `std` command.
fn std_command(
    support: &SandboxSupport,
    bwrap: &Path,
    spec: &SandboxSpec,
    cgroup: Option<&Cgroup>,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
) -> std::io::Result<std::process::Command> {
    if spec.uid == 0 || spec.gid == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "sandboxed processes never run as root (uid/gid 0)",
        ));
    }
    let setup = exec::ChildSetup {
        cgroup_procs: match cgroup {
            Some(cg) => cg.open_procs()?,
            None => Vec::new(),
        },
        netns: spec.netns.clone(),
        uid: spec.uid,
        gid: spec.gid,
        inherited: vec![
            seccomp::memfd()?,
            exec::memfd_with(c"arcus-passwd", passwd(spec).as_bytes())?,
            exec::memfd_with(c"arcus-group", group(spec).as_bytes())?,
        ],
    };
    let fds = ArgFds {
        seccomp: setup.inherited[0].as_raw_fd(),
        passwd: setup.inherited[1].as_raw_fd(),
        group: setup.inherited[2].as_raw_fd(),
    };
    let mut cmd = std::process::Command::new(bwrap);
    cmd.args(bwrap_args(support, spec, &fds, program, args))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: `ChildSetup::run` is async-signal-safe (raw syscalls on descriptors and ids
    // prepared before the fork, no allocation), as required between fork and exec.
    unsafe {
        cmd.pre_exec(move || setup.run());
    }
    Ok(cmd)
}

/// The user name of the sandbox user inside (Lambda's look like `sbx_user1051`).
pub(crate) const SANDBOX_USER: &str = "sbx_user";

/// The sandbox's `/etc/passwd`: only its own user (home `/tmp`).
fn passwd(spec: &SandboxSpec) -> String {
    format!(
        "{SANDBOX_USER}:x:{}:{}::/tmp:/usr/sbin/nologin\n",
        spec.uid, spec.gid
    )
}

/// The sandbox's `/etc/group`: only its own group.
fn group(spec: &SandboxSpec) -> String {
    format!("{SANDBOX_USER}:x:{}:\n", spec.gid)
}

/// Descriptors (open in the child) that bwrap reads.
struct ArgFds {
    /// The seccomp program.
    seccomp: i32,
    /// Content of `/etc/passwd`.
    passwd: i32,
    /// Content of `/etc/group`.
    group: i32,
}

/// bubblewrap's arguments for `spec` and the descriptors in `fds`, then the program and
/// its arguments.
fn bwrap_args(
    support: &SandboxSupport,
    spec: &SandboxSpec,
    fds: &ArgFds,
    program: &Path,
    args: &[String],
) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::with_capacity(64 + args.len());
    let mut push = |items: &[&std::ffi::OsStr]| a.extend(items.iter().map(|s| s.into()));
    push(&[
        "--unshare-user".as_ref(),
        "--disable-userns".as_ref(),
        "--unshare-pid".as_ref(),
        "--unshare-ipc".as_ref(),
        "--unshare-uts".as_ref(),
        "--unshare-cgroup-try".as_ref(),
        "--hostname".as_ref(),
        "arcus".as_ref(),
        "--die-with-parent".as_ref(),
        "--new-session".as_ref(),
        "--cap-drop".as_ref(),
        "ALL".as_ref(),
        "--ro-bind".as_ref(),
        "/usr".as_ref(),
        "/usr".as_ref(),
    ]);
    for entry in &support.system {
        match entry {
            SystemPath::Symlink { target, path } => {
                push(&["--symlink".as_ref(), target.as_os_str(), path.as_os_str()]);
            }
            SystemPath::Dir(path) => {
                push(&["--ro-bind".as_ref(), path.as_os_str(), path.as_os_str()]);
            }
        }
    }
    for etc in ETC {
        push(&["--ro-bind-try".as_ref(), etc.as_ref(), etc.as_ref()]);
    }
    let (passwd_fd, group_fd) = (fds.passwd.to_string(), fds.group.to_string());
    push(&[
        "--ro-bind-data".as_ref(),
        passwd_fd.as_ref(),
        "/etc/passwd".as_ref(),
        "--ro-bind-data".as_ref(),
        group_fd.as_ref(),
        "/etc/group".as_ref(),
    ]);
    let tmp_bytes = (u64::from(spec.tmp_size_mb.max(1)) * 1024 * 1024).to_string();
    push(&[
        "--proc".as_ref(),
        "/proc".as_ref(),
        "--dev".as_ref(),
        "/dev".as_ref(),
        "--remount-ro".as_ref(),
        "/dev".as_ref(),
        "--size".as_ref(),
        tmp_bytes.as_ref(),
        "--tmpfs".as_ref(),
        "/tmp".as_ref(),
    ]);
    for (host, inside) in &spec.ro_binds {
        push(&["--ro-bind".as_ref(), host.as_os_str(), inside.as_os_str()]);
    }
    for (host, inside) in &spec.rw_binds {
        push(&["--bind".as_ref(), host.as_os_str(), inside.as_os_str()]);
    }
    let fd = fds.seccomp.to_string();
    push(&[
        "--remount-ro".as_ref(),
        "/".as_ref(),
        "--chdir".as_ref(),
        spec.cwd.as_os_str(),
        "--seccomp".as_ref(),
        fd.as_ref(),
        "--".as_ref(),
        program.as_os_str(),
    ]);
    a.extend(args.iter().map(OsString::from));
    a
}
