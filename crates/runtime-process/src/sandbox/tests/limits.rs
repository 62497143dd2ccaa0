//! cgroup limits: memory over the limit is OOM-killed, a fork bomb stops at `pids.max`.

use super::*;

fn cgroup_name(what: &str) -> String {
    format!("test-{what}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn sandbox_memory_over_limit_is_oom_killed() {
    let Some(s) = support() else { return };
    let code = dir();
    let cg = Cgroup::create(&s, &cgroup_name("oom"), 64, 64).unwrap();
    let script = r#"
import sys
chunks = []
for i in range(64):
    chunks.append(b"x" * (8 * 1024 * 1024))   # touched pages, 512 MiB in all
    print("allocated", (i + 1) * 8, flush=True)
print("survived")
"#;
    let ran = py(&s, &spec(code.path()), Some(&cg), script).await;
    assert!(!ran.out.contains("survived"), "{ran:?}");
    assert_ne!(ran.code, Some(0));
    assert!(cg.oom_killed(), "oom_killed() after {ran:?}");
    let peak = cg.peak_memory_bytes().unwrap_or(0);
    assert!(
        peak > 32 * 1024 * 1024 && peak <= 64 * 1024 * 1024,
        "peak {peak}"
    );
}

#[tokio::test]
async fn sandbox_within_limit_is_not_oom_killed() {
    let Some(s) = support() else { return };
    let code = dir();
    let cg = Cgroup::create(&s, &cgroup_name("ok"), 128, 64).unwrap();
    let ran = py(
        &s,
        &spec(code.path()),
        Some(&cg),
        "x = b'x' * (16 << 20); print('ok')",
    )
    .await;
    assert_eq!(ran.code, Some(0));
    assert!(!cg.oom_killed());
    assert!(cg.peak_memory_bytes().is_some_and(|p| p >= 16 << 20));
}

#[tokio::test]
async fn sandbox_fork_bomb_stops_at_pids_max() {
    let Some(s) = support() else { return };
    let code = dir();
    let cg = Cgroup::create(&s, &cgroup_name("forks"), 256, 32).unwrap();
    let script = r#"
import os, time
n = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
    print("forks", n)
except OSError as e:
    print("forks", n)
    print("error", e.errno)
"#;
    let ran = py(&s, &spec(code.path()), Some(&cg), script).await;
    let l = lines(&ran.out);
    let forks: u32 = l["forks"].parse().unwrap();
    assert!(forks < 32, "{forks} forks");
    assert_eq!(l["error"], libc::EAGAIN.to_string());
    // The children are gone with the sandbox's PID namespace; the cgroup drains.
    assert!(cg.kill_all());
    assert!(cg.pids().is_empty());
}

#[test]
fn sandbox_cgroup_is_created_limited_and_removed() {
    let Some(s) = support() else { return };
    let cg = Cgroup::create(&s, &cgroup_name("dirs"), 100, 7).unwrap();
    let dirs = cg.dirs().to_vec();
    assert!(dirs.iter().all(|d| d.is_dir()));
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    match s.cgroup {
        super::super::CgroupVersion::V1 => {
            assert_eq!(read(&dirs[0], "memory.limit_in_bytes").trim(), "104857600");
            assert_eq!(read(&dirs[1], "pids.max").trim(), "7");
            assert_eq!(read(&dirs[2], "cpu.shares").trim(), "57");
        }
        super::super::CgroupVersion::V2 => {
            assert_eq!(read(&dirs[0], "memory.max").trim(), "104857600");
            assert_eq!(read(&dirs[0], "pids.max").trim(), "7");
        }
    }
    assert!(Cgroup::create(&s, "../escape", 64, 8).is_err());
    assert!(Cgroup::create(&s, "", 64, 8).is_err());
    drop(cg);
    assert!(dirs.iter().all(|d| !d.exists()));
}
