//! What the forked child does before it executes bubblewrap, in this order: join the
//! cgroup (so everything after is accounted), join the instance's network namespace
//! (needs root), drop to the sandbox user (supplementary groups, gid, uid), and let the
//! descriptors bwrap reads (seccomp program, passwd and group files) survive exec. Everything is prepared before the fork: the hook only
//! makes async-signal-safe syscalls and allocates nothing.

use super::NetNs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// Descriptors and ids the child needs; owned by the `pre_exec` closure.
#[derive(Debug)]
pub(crate) struct ChildSetup {
    /// `cgroup.procs` of every controller of the cgroup, opened for writing.
    pub(crate) cgroup_procs: Vec<OwnedFd>,
    /// The network namespace to join, if any.
    pub(crate) netns: Option<Arc<NetNs>>,
    /// The host uid to run as.
    pub(crate) uid: libc::uid_t,
    /// The host gid to run as.
    pub(crate) gid: libc::gid_t,
    /// Descriptors bwrap reads (seccomp program, `/etc/passwd`, `/etc/group`): kept open
    /// across exec and rewound first.
    pub(crate) inherited: Vec<OwnedFd>,
}

/// A close-on-exec memfd holding `bytes`, positioned at its start.
pub(crate) fn memfd_with(name: &std::ffi::CStr, bytes: &[u8]) -> io::Result<OwnedFd> {
    use std::io::{Seek, SeekFrom, Write};
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(OwnedFd::from(file))
}

impl ChildSetup {
    /// Runs in the child between fork and exec. Async-signal-safe.
    pub(crate) fn run(&self) -> io::Result<()> {
        for fd in &self.cgroup_procs {
            // SAFETY: writes one byte from a static buffer to an open descriptor.
            let n = unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(ns) = &self.netns {
            // SAFETY: setns takes an open namespace descriptor and a flag; no memory.
            if unsafe { libc::setns(ns.fd().as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: setgroups with a zero length reads no memory; the id calls take
        // integers. This child is single-threaded, so the glibc wrappers affect it fully.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) == -1
                || libc::setresgid(self.gid, self.gid, self.gid) == -1
                || libc::setresuid(self.uid, self.uid, self.uid) == -1
            {
                return Err(io::Error::last_os_error());
            }
        }
        // Never continue as root, whatever the calls above reported.
        // SAFETY: getuid/geteuid take no arguments and cannot fail.
        if unsafe { libc::getuid() == 0 || libc::geteuid() == 0 } {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        for fd in &self.inherited {
            // bwrap reads from the current offset; a reused command would otherwise find
            // the data at EOF after the first spawn.
            // SAFETY: lseek takes a descriptor and integers; no memory.
            if unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) } == -1 {
                return Err(io::Error::last_os_error());
            }
            super::netns::clear_cloexec(fd.as_raw_fd())?;
        }
        Ok(())
    }
}
