//! Per-instance cgroups limiting memory, pids and CPU weight, on either hierarchy.
//!
//! **cgroup v1** (detected by `/sys/fs/cgroup/memory/memory.limit_in_bytes`; this is what
//! the development machines have): one directory per controller, each nested under the
//! node's own cgroup of that controller (read from `/proc/self/cgroup`), so the node's own
//! limits still cover its instances: `<mount>/<own>/arcus/<name>` for `memory`, `pids`
//! and `cpu`. Limits: `memory.limit_in_bytes` and, when swap accounting is on,
//! `memory.memsw.limit_in_bytes` (same value: no swap); `pids.max`; `cpu.shares`
//! proportional to memory (1024 shares = one CPU's worth at 1769 MiB, as on Lambda).
//! OOM kills are read from `oom_kill N` of `memory.oom_control` (kernel ≥ 4.13, else
//! `memory.failcnt`), peak memory from `memory.max_usage_in_bytes`.
//!
//! **cgroup v2** (detected by `/sys/fs/cgroup/cgroup.controllers` when v1 memory is
//! absent): one directory `/sys/fs/cgroup/arcus/<name>`; `+memory +pids +cpu` are enabled
//! in the root's and in `arcus`'s `cgroup.subtree_control` (the root cgroup is exempt
//! from the "no internal processes" rule, which a non-root parent holding the node would
//! break). Limits: `memory.max`, `memory.swap.max = 0`, `pids.max`, `cpu.weight`
//! (100 = one CPU's worth at 1769 MiB, clamped to 1..=10000), `memory.oom.group = 1`
//! (an OOM kill takes the whole instance). The controllers are enabled at start-up
//! ([`super::SandboxSupport::detect`] fails with a message if they cannot be). OOM kills come from
//! `oom_kill` of `memory.events`, peak memory from `memory.peak` (kernel ≥ 5.19), and
//! `cgroup.kill` (kernel ≥ 5.14) kills the tree at once.
//!
//! A process joins by writing `0` to every `cgroup.procs` (pre-opened by
//! [`Cgroup::open_procs`], written in the child before exec). Dropping a [`Cgroup`] kills
//! what is left in it and removes its directories.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Lambda gives one vCPU's worth of CPU at this memory size.
const MB_PER_CPU: u64 = 1769;

/// The cgroup hierarchy the node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy hierarchy: one mount per controller (`memory`, `pids`, `cpu`).
    V1,
    /// Unified hierarchy: one tree with all controllers.
    V2,
}

/// Where the node's cgroups are created, found once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct CgroupBase {
    /// v1: the `arcus` directories of memory, pids and cpu (in that order);
    /// v2: the one `arcus` directory.
    pub(crate) dirs: Vec<PathBuf>,
}

impl CgroupBase {
    /// Detects the hierarchy and where the node's cgroups go.
    pub(crate) fn detect() -> Result<(CgroupVersion, CgroupBase), String> {
        let root = Path::new("/sys/fs/cgroup");
        if root.join("memory/memory.limit_in_bytes").exists() {
            let own = fs::read_to_string("/proc/self/cgroup")
                .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
            let mut dirs = Vec::new();
            for controller in ["memory", "pids", "cpu"] {
                let mount = root.join(controller);
                if !mount.join("cgroup.procs").exists() {
                    return Err(format!(
                        "cgroup v1 controller `{controller}` is not mounted at {}",
                        mount.display()
                    ));
                }
                let rel = own_v1_path(&own, controller).unwrap_or_default();
                dirs.push(mount.join(rel.trim_start_matches('/')).join("arcus"));
            }
            Ok((CgroupVersion::V1, CgroupBase { dirs }))
        } else if root.join("cgroup.controllers").exists() {
            let controllers = fs::read_to_string(root.join("cgroup.controllers"))
                .map_err(|e| format!("cannot read cgroup.controllers: {e}"))?;
            for needed in ["memory", "pids"] {
                if !controllers.split_whitespace().any(|c| c == needed) {
                    return Err(format!("cgroup v2 controller `{needed}` is not available"));
                }
            }
            let base = root.join("arcus");
            enable_v2_controllers(&base).map_err(|e| {
                format!(
                    "cannot delegate cgroup v2 controllers to {}: {e} (the node needs a \
                     writable /sys/fs/cgroup whose root holds no processes of a cgroup \
                     namespace, e.g. a host or a privileged container)",
                    base.display()
                )
            })?;
            Ok((CgroupVersion::V2, CgroupBase { dirs: vec![base] }))
        } else {
            Err(
                "no usable cgroup hierarchy under /sys/fs/cgroup (need v1 memory/pids/cpu or v2)"
                    .to_string(),
            )
        }
    }
}

/// The path of this process's cgroup for a v1 controller, from `/proc/self/cgroup`.
fn own_v1_path(proc_cgroup: &str, controller: &str) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })
}

/// One instance's (or build's) cgroup. Dropping it kills what is left and removes it.
#[derive(Debug)]
pub struct Cgroup {
    version: CgroupVersion,
    /// v1: memory, pids, cpu directories; v2: one directory.
    dirs: Vec<PathBuf>,
}

impl Cgroup {
    /// Creates `arcus/<name>` with a memory limit of `memory_mb` MiB (no swap), at most
    /// `pids_max` tasks and a CPU weight proportional to memory. `name` may hold only
    /// ASCII letters, digits, `-`, `_` and `.`.
    pub fn create(
        support: &super::SandboxSupport,
        name: &str,
        memory_mb: u32,
        pids_max: u32,
    ) -> io::Result<Cgroup> {
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid cgroup name {name:?}"),
            ));
        }
        let version = support.cgroup;
        let mut cg = Cgroup {
            version,
            dirs: Vec::new(),
        };
        if version == CgroupVersion::V2 {
            enable_v2_controllers(&support.cgroup_base.dirs[0])?;
        }
        for base in &support.cgroup_base.dirs {
            let dir = base.join(name);
            make_dir(base, &dir)?;
            // Pushed at once so that a later failure removes what was made.
            cg.dirs.push(dir);
        }
        let pids = pids_max.max(1).to_string();
        let pids_dir = match version {
            CgroupVersion::V1 => &cg.dirs[1],
            CgroupVersion::V2 => &cg.dirs[0],
        };
        write(pids_dir, "pids.max", &pids)?;
        if version == CgroupVersion::V2 {
            let dir = &cg.dirs[0];
            if dir.join("memory.swap.max").exists() {
                write(dir, "memory.swap.max", "0")?;
            }
            // An OOM kill ends the whole instance, not one of its processes.
            if dir.join("memory.oom.group").exists() {
                write(dir, "memory.oom.group", "1")?;
            }
        }
        cg.set_memory(memory_mb)?;
        Ok(cg)
    }

    /// Sets the memory limit to `memory_mb` MiB (no swap) and the CPU weight in
    /// proportion; a lower limit than the current use fails (the kernel refuses it).
    pub fn set_memory(&self, memory_mb: u32) -> io::Result<()> {
        let memory = (u64::from(memory_mb) * 1024 * 1024).to_string();
        match self.version {
            CgroupVersion::V1 => {
                let (mem, cpu) = (&self.dirs[0], &self.dirs[2]);
                // memsw may never be below the memory limit: lower memory first, and
                // raise memsw first.
                let memsw = mem.join("memory.memsw.limit_in_bytes").exists();
                let raising = read_u64(mem, "memory.limit_in_bytes")
                    .is_some_and(|cur| cur < u64::from(memory_mb) * 1024 * 1024);
                if memsw && raising {
                    write(mem, "memory.memsw.limit_in_bytes", &memory)?;
                }
                write(mem, "memory.limit_in_bytes", &memory)?;
                if memsw && !raising {
                    write(mem, "memory.memsw.limit_in_bytes", &memory)?;
                }
                let shares = (u64::from(memory_mb) * 1024 / MB_PER_CPU).clamp(2, 262_144);
                write(cpu, "cpu.shares", &shares.to_string())
            }
            CgroupVersion::V2 => {
                let dir = &self.dirs[0];
                write(dir, "memory.max", &memory)?;
                if dir.join("cpu.weight").exists() {
                    let weight = (u64::from(memory_mb) * 100 / MB_PER_CPU).clamp(1, 10_000);
                    write(dir, "cpu.weight", &weight.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// Opens every `cgroup.procs` for writing, so a child can join before exec by
    /// writing `0` to each (see `exec::ChildSetup`).
    pub(crate) fn open_procs(&self) -> io::Result<Vec<OwnedFd>> {
        self.dirs
            .iter()
            .map(|d| {
                OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
                    .map(OwnedFd::from)
            })
            .collect()
    }

    /// Whether the kernel's OOM killer killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        let dir = &self.dirs[0];
        let (file, key) = match self.version {
            CgroupVersion::V1 => ("memory.oom_control", "oom_kill"),
            CgroupVersion::V2 => ("memory.events", "oom_kill"),
        };
        match fs::read_to_string(dir.join(file)) {
            Ok(text) => match keyed_value(&text, key) {
                Some(n) => n > 0,
                // Old v1 kernels have no counter: hitting the limit is the best sign.
                None => read_u64(dir, "memory.failcnt").is_some_and(|n| n > 0),
            },
            Err(_) => false,
        }
    }

    /// The highest memory use of this cgroup in bytes, where the kernel reports it.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let file = match self.version {
            CgroupVersion::V1 => "memory.max_usage_in_bytes",
            CgroupVersion::V2 => "memory.peak",
        };
        read_u64(&self.dirs[0], file)
    }

    /// The pids in this cgroup (of the first controller's directory).
    pub fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.dirs[0].join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kills every process in the cgroup with SIGKILL and waits (up to ~2 s) until it
    /// is empty. Returns whether it is empty.
    pub fn kill_all(&self) -> bool {
        if self.dirs.is_empty() {
            return true;
        }
        if self.version == CgroupVersion::V2 && self.dirs[0].join("cgroup.kill").exists() {
            let _ = write(&self.dirs[0], "cgroup.kill", "1");
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            for pid in pids {
                if pid > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The cgroup's directories (v1: memory, pids, cpu; v2: one).
    #[cfg(test)]
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        for dir in &self.dirs {
            // rmdir fails with EBUSY while exiting tasks are still being torn down.
            for _ in 0..200 {
                match fs::remove_dir(dir) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    _ => break,
                }
            }
            // Remove the `arcus` parent too when it is empty (ENOTEMPTY/EBUSY otherwise).
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// Creates `dir` (and its parent `base`), retrying once if a concurrent drop removed
/// the empty parent in between.
fn make_dir(base: &Path, dir: &Path) -> io::Result<()> {
    for attempt in 0..3 {
        match fs::create_dir_all(base).and_then(|()| fs::create_dir(dir)) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 2 => continue,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cgroup {} already exists", dir.display()),
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create cgroup {}: {e}", dir.display()),
                ));
            }
        }
    }
    Err(io::Error::other(format!(
        "cannot create cgroup {}",
        dir.display()
    )))
}

/// v2: makes `base` and enables the controllers for its children (memory and pids are
/// required; cpu is optional, as some hosts do not delegate it).
fn enable_v2_controllers(base: &Path) -> io::Result<()> {
    let root = base.parent().unwrap_or(Path::new("/sys/fs/cgroup"));
    fs::create_dir_all(base)?;
    for dir in [root, base] {
        for controller in ["memory", "pids", "cpu"] {
            let res = write(dir, "cgroup.subtree_control", &format!("+{controller}"));
            if res.is_err() && controller != "cpu" {
                return res;
            }
        }
    }
    Ok(())
}

/// Writes `value` to the control file `dir/file`, naming the file on failure.
fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write {value:?} to {}: {e}", path.display()),
        )
    })
}

/// Reads a control file holding one number.
fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
}

/// The number after `key` in a flat-keyed control file (`key value` per line).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_own_v1_path() {
        let text = "9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/\n";
        assert_eq!(own_v1_path(text, "memory").as_deref(), Some("/a/b"));
        assert_eq!(own_v1_path(text, "cpu").as_deref(), Some("/c"));
        assert_eq!(own_v1_path(text, "pids"), None);
    }

    #[test]
    fn parses_keyed_values() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(3));
        assert_eq!(keyed_value(text, "under_oom"), Some(0));
        assert_eq!(keyed_value(text, "missing"), None);
    }
}
