//! The seccomp filter of every sandboxed process, built with `seccompiler` and handed to
//! bubblewrap (`--seccomp FD`) as a classic BPF program, which bwrap installs right before
//! it executes the program (after its own mounts).
//!
//! Default allow; `EPERM` for the syscalls a function has no use for and that widen the
//! kernel's attack surface: mounts and namespaces (`mount`, `umount2`, `pivot_root`, the
//! new mount API, `unshare`, `setns`), tracing and other processes' memory (`ptrace`,
//! `process_vm_readv/writev`), kernel modules and `kexec`, `bpf`, `perf_event_open`, the
//! kernel keyring, `userfaultfd`, `reboot`, swap, `acct` and `open_by_handle_at`. Creating
//! user namespaces through `clone` is refused by bubblewrap's `--disable-userns`; the other
//! namespaces need capabilities the process does not have.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;

/// The syscalls refused with `EPERM`.
const DENIED: &[(&str, libc::c_long)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("open_tree", libc::SYS_open_tree),
    ("move_mount", libc::SYS_move_mount),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
];

/// Builds the filter for the host's architecture.
pub(crate) fn program() -> io::Result<BpfProgram> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| io::Error::other(format!("seccomp: unsupported architecture: {e}")))?;
    // An empty rule list matches the syscall whatever its arguments.
    // `c_long` is i64 on 64-bit targets (a no-op there) and i32 on 32-bit ones.
    #[allow(clippy::useless_conversion)]
    let rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .map(|&(_, nr)| (i64::from(nr), Vec::new()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| io::Error::other(format!("seccomp filter: {e}")))?;
    BpfProgram::try_from(filter).map_err(|e| io::Error::other(format!("seccomp compile: {e}")))
}

/// Serialises a program the way the kernel (and bwrap) read it: `struct sock_filter`
/// = u16 code, u8 jt, u8 jf, u32 k, in native byte order.
pub(crate) fn to_bytes(program: &BpfProgram) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for insn in program {
        out.extend_from_slice(&insn.code.to_ne_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_ne_bytes());
    }
    out
}

/// The serialised filter, built once per process.
fn bytes() -> io::Result<&'static [u8]> {
    static BYTES: std::sync::OnceLock<Result<Vec<u8>, String>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| program().map(|p| to_bytes(&p)).map_err(|e| e.to_string()))
        .as_deref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// A memfd holding the filter, positioned at its start (close-on-exec; the child clears
/// that flag before executing bwrap).
pub(crate) fn memfd() -> io::Result<OwnedFd> {
    super::exec::memfd_with(c"arcus-seccomp", bytes()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_seccomp_program_compiles_and_serialises() {
        let program = program().unwrap();
        assert!(program.len() > DENIED.len());
        let bytes = to_bytes(&program);
        assert_eq!(bytes.len(), program.len() * 8);
        // The last instruction of a filter is a return.
        let last = &program[program.len() - 1];
        assert_eq!(last.code & 0x07, 0x06, "BPF_RET");
    }

    #[test]
    fn sandbox_seccomp_memfd_reads_from_start() {
        use std::io::Read;
        let mut file = std::fs::File::from(memfd().unwrap());
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, bytes().unwrap());
    }
}
