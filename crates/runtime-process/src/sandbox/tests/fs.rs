//! Filesystem escapes: reading what is not bound, writing outside `/tmp`, filling `/tmp`,
//! seeing host processes, acting as root on the host.

use super::*;
use std::os::unix::fs::MetadataExt;

#[tokio::test]
async fn sandbox_cannot_see_data_dir_or_other_code() {
    let Some(s) = support() else { return };
    let data = dir();
    std::fs::write(data.path().join("secret.db"), "secret").unwrap();
    let other = dir();
    std::fs::write(other.path().join("other.py"), "TOKEN = 'x'").unwrap();
    let code = dir();
    std::fs::write(code.path().join("handler.py"), "def h(e, c): pass").unwrap();
    let script = format!(
        r#"
import os
print("data", os.path.exists({data:?}))
print("other", os.path.exists({other:?}))
print("task", sorted(os.listdir("/var/task")))
print("root", sorted(os.listdir("/")))
print("etc", sorted(os.listdir("/etc")))
import getpass, pwd
print("passwd", open("/etc/passwd").read().strip())
print("user", getpass.getuser(), pwd.getpwuid(os.getuid()).pw_dir)
"#,
        data = data.path().join("secret.db"),
        other = other.path().join("other.py"),
    );
    let ran = py(&s, &spec(code.path()), None, &script).await;
    assert_eq!(ran.code, Some(0));
    let l = lines(&ran.out);
    assert_eq!(l["data"], "False");
    assert_eq!(l["other"], "False");
    assert_eq!(l["task"], "['handler.py']");
    let allowed = [
        "bin", "dev", "etc", "lib", "lib32", "lib64", "proc", "sbin", "tmp", "usr", "var",
    ];
    let root = l["root"].trim_matches(['[', ']']).replace('\'', "");
    for entry in root.split(", ") {
        assert!(allowed.contains(&entry), "/{entry} visible: {}", l["root"]);
    }
    assert_eq!(
        l["passwd"],
        "sbx_user:x:65534:65534::/tmp:/usr/sbin/nologin"
    );
    assert_eq!(l["user"], "sbx_user /tmp");
    for file in ["shadow", "gshadow", "sudoers", "ssh"] {
        assert!(
            !l["etc"].contains(&format!("'{file}'")),
            "{file}: {}",
            l["etc"]
        );
    }
}

#[tokio::test]
async fn sandbox_cannot_write_outside_tmp() {
    let Some(s) = support() else { return };
    let code = dir();
    let script = r#"
import os
for p in ["/var/task/x", "/usr/x", "/usr/bin/x", "/x", "/etc/x", "/etc/hosts", "/dev/x",
          "/dev/shm/x", "/proc/sys/kernel/hostname", "/opt"]:
    try:
        if p == "/opt":
            os.mkdir(p)
        else:
            open(p, "a").write("x")
        print(p, "written")
    except OSError as e:
        print(p, e.errno)
open("/tmp/ok", "w").write("x")
print("tmp", "ok")
"#;
    let ran = py(&s, &spec(code.path()), None, script).await;
    assert_eq!(ran.code, Some(0));
    let l = lines(&ran.out);
    assert_eq!(l["tmp"], "ok");
    let allowed = [libc::EROFS.to_string(), libc::EACCES.to_string()];
    for (path, result) in l.iter().filter(|(p, _)| p.starts_with('/')) {
        assert!(allowed.contains(result), "{path}: {result}");
    }
    assert_eq!(l.len(), 11);
    assert!(!code.path().join("x").exists());
}

#[tokio::test]
async fn sandbox_tmp_is_size_limited() {
    let Some(s) = support() else { return };
    let code = dir();
    let mut sp = spec(code.path());
    sp.tmp_size_mb = 2;
    let script = r#"
open("/tmp/small", "wb").write(b"x" * 1024 * 1024)
print("small ok")
try:
    with open("/tmp/big", "wb") as f:
        f.write(b"x" * 4 * 1024 * 1024)
    print("big written")
except OSError as e:
    print("big", e.errno)
"#;
    let ran = py(&s, &sp, None, script).await;
    let l = lines(&ran.out);
    assert_eq!(l["small"], "ok");
    assert_eq!(l["big"], libc::ENOSPC.to_string());
}

#[tokio::test]
async fn sandbox_cannot_see_host_processes() {
    let Some(s) = support() else { return };
    let code = dir();
    let script = r#"
import os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("pids", pids)
print("count", len(pids))
print("max", max(pids))
print("init", open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode())
"#;
    let ran = py(&s, &spec(code.path()), None, script).await;
    assert_eq!(ran.code, Some(0));
    let l = lines(&ran.out);
    // bwrap's init (pid 1) and the program.
    assert!(l["count"].parse::<u32>().unwrap() <= 3, "{}", l["pids"]);
    assert!(l["max"].parse::<u32>().unwrap() < 10, "{}", l["pids"]);
    assert!(l["init"].contains("bwrap"), "pid 1 is {}", l["init"]);
    let host_pid = std::process::id().to_string();
    assert!(!l["pids"].contains(&host_pid) || host_pid.len() == 1);
}

#[tokio::test]
async fn sandbox_files_created_are_owned_by_sandbox_user_on_host() {
    let Some(s) = support() else { return };
    let code = dir();
    let out = dir();
    std::os::unix::fs::chown(out.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let mut sp = spec(code.path());
    sp.rw_binds
        .push((out.path().to_path_buf(), PathBuf::from("/out")));
    let script = r#"
import os
open("/out/made", "w").write("x")
print("uid", os.getuid())
try:
    os.chown("/out/made", 0, 0)
    print("chown done")
except OSError as e:
    print("chown", e.errno)
"#;
    let ran = py(&s, &sp, None, script).await;
    assert_eq!(ran.code, Some(0));
    let meta = std::fs::metadata(out.path().join("made")).unwrap();
    assert_eq!(meta.uid(), NOBODY);
    assert_eq!(meta.gid(), NOBODY);
    assert_ne!(lines(&ran.out)["chown"], "done");
}

#[tokio::test]
async fn sandbox_sets_no_new_privs() {
    let Some(s) = support() else { return };
    let code = dir();
    let script = r#"
for line in open("/proc/self/status"):
    if line.startswith(("NoNewPrivs", "Seccomp:", "CapEff", "CapPrm")):
        k, v = line.split(":", 1)
        print(k, v.strip())
"#;
    let ran = py(&s, &spec(code.path()), None, script).await;
    let l = lines(&ran.out);
    assert_eq!(l["NoNewPrivs"], "1");
    assert_eq!(l["Seccomp"], "2", "seccomp filter mode");
    assert_eq!(l["CapEff"], "0000000000000000");
    assert_eq!(l["CapPrm"], "0000000000000000");
}
