//! seccomp: namespace, mount and ptrace attempts fail with EPERM.

use super::*;

#[tokio::test]
async fn sandbox_seccomp_refuses_namespaces_mounts_and_ptrace() {
    let Some(s) = support() else { return };
    let code = dir();
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, f):
    ctypes.set_errno(0)
    r = f()
    print(name, "ok" if r == 0 else ctypes.get_errno())
attempt("unshare_user", lambda: libc.unshare(0x10000000))
attempt("unshare_mount", lambda: libc.unshare(0x00020000))
attempt("unshare_net", lambda: libc.unshare(0x40000000))
attempt("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
attempt("umount", lambda: libc.umount2(b"/tmp", 2))
attempt("ptrace_traceme", lambda: libc.ptrace(0, 0, None, None))
attempt("ptrace_attach", lambda: libc.ptrace(16, 1, None, None))
fd = os.open("/proc/self/ns/net", os.O_RDONLY)
attempt("setns", lambda: libc.setns(fd, 0))
attempt("bpf", lambda: libc.syscall(321, 0, None, 0))
attempt("keyctl", lambda: libc.syscall(250, 0, 0, 0, 0, 0))
"#;
    let ran = py(&s, &spec(code.path()), None, script).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let l = lines(&ran.out);
    let names = [
        "unshare_user",
        "unshare_mount",
        "unshare_net",
        "mount",
        "umount",
        "ptrace_traceme",
        "ptrace_attach",
        "setns",
    ];
    for name in names {
        assert_eq!(l[name], libc::EPERM.to_string(), "{name}");
    }
    if cfg!(target_arch = "x86_64") {
        assert_eq!(l["bpf"], libc::EPERM.to_string());
        assert_eq!(l["keyctl"], libc::EPERM.to_string());
    }
}

#[tokio::test]
async fn sandbox_unshare_tool_cannot_become_root() {
    let Some(s) = support() else { return };
    if !Path::new("/usr/bin/unshare").exists() {
        eprintln!("SKIPPED part: /usr/bin/unshare missing");
        return;
    }
    let code = dir();
    let ran = run(
        &s,
        &spec(code.path()),
        None,
        "/usr/bin/unshare",
        &["-r", "/usr/bin/id", "-u"],
    )
    .await;
    assert_ne!(ran.code, Some(0));
    assert!(!ran.out.contains('0'), "{ran:?}");
    assert!(ran.err.contains("Operation not permitted"), "{ran:?}");
}
