//! Network escapes: the host's loopback, listening for the outside, slirp's host alias.

use super::*;
use crate::sandbox::NetNs;
use std::io::{BufRead, Write};
use std::net::TcpListener;
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;

/// A script that tries to connect to each `host:port` argument and prints the result.
const CONNECT: &str = r#"
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        print(target, "connected", s.recv(16).decode().strip() or "-")
    except OSError as e:
        print(target, type(e).__name__)
    s.close()
print("ifaces", sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]))
"#;

/// A host listener on 127.0.0.1 answering "host" to every connection.
fn host_listener() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(b"host\n");
        }
    });
    port
}

fn netns_spec(code: &Path, ns: &Arc<NetNs>) -> SandboxSpec {
    let mut sp = spec(code);
    sp.netns = Some(ns.clone());
    sp
}

async fn connect(s: &SandboxSupport, sp: &SandboxSpec, targets: &[String]) -> Ran {
    let mut args = vec!["-c", CONNECT];
    args.extend(targets.iter().map(String::as_str));
    run(s, sp, None, PYTHON, &args).await
}

#[tokio::test]
async fn sandbox_host_loopback_unreachable_own_listener_reachable() {
    let Some(s) = support() else { return };
    let host = format!("127.0.0.1:{}", host_listener());
    let ns = Arc::new(NetNs::new().unwrap());
    let own = ns.bind_tcp(0).unwrap();
    let own_target = format!("127.0.0.1:{}", own.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for mut c in own.incoming().flatten() {
            let _ = c.write_all(b"own\n");
        }
    });
    let code = dir();
    let ran = connect(
        &s,
        &netns_spec(code.path(), &ns),
        &[host.clone(), own_target.clone()],
    )
    .await;
    let l = lines(&ran.out);
    assert_eq!(l[&host], "ConnectionRefusedError");
    assert_eq!(l[&own_target], "connected own");
    assert_eq!(l["ifaces"], "['lo']");
}

#[tokio::test]
async fn sandbox_listening_inside_is_not_reachable_from_host() {
    let Some(s) = support() else { return };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ns = Arc::new(NetNs::new().unwrap());
    let code = dir();
    let script = format!(
        r#"
import socket, time
a = socket.socket(); a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
a.bind(("0.0.0.0", {port})); a.listen()
print("listening", flush=True)
time.sleep(30)
"#
    );
    let env = [("PATH".to_string(), "/usr/bin".to_string())];
    let args = vec!["-c".to_string(), script];
    let mut child = crate::sandbox::command(
        &s,
        Path::new(BWRAP),
        &netns_spec(code.path(), &ns),
        None,
        Path::new(PYTHON),
        &args,
        &env,
    )
    .unwrap()
    .spawn()
    .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(LIMIT, out.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line.as_deref(), Some("listening"));
    let res = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(
        res.is_err(),
        "connected to the sandbox's port {port} from the host"
    );
    // From inside the namespace it is there (the test is not vacuous).
    let inside = ns.in_ns(|| std::net::TcpStream::connect(("127.0.0.1", port)));
    assert!(inside.is_ok());
    child.kill().await.unwrap();
}

#[tokio::test]
async fn sandbox_outbound_mode_keeps_host_loopback_unreachable() {
    let Some(s) = support() else { return };
    if !Path::new("/usr/bin/slirp4netns").exists() {
        eprintln!("SKIPPED: /usr/bin/slirp4netns is missing");
        return;
    }
    let port = host_listener();
    let ns = Arc::new(NetNs::new().unwrap());
    ns.start_outbound(Path::new("/usr/bin/slirp4netns"))
        .unwrap();
    ns.start_outbound(Path::new("/usr/bin/slirp4netns"))
        .unwrap();
    let code = dir();
    let targets = [format!("127.0.0.1:{port}"), format!("10.0.2.2:{port}")];
    let ran = connect(&s, &netns_spec(code.path(), &ns), &targets).await;
    let l = lines(&ran.out);
    for t in &targets {
        assert!(!l[t].starts_with("connected"), "{t}: {}", l[t]);
    }
    assert_eq!(l["ifaces"], "['lo', 'tap0']");
}

#[test]
fn sandbox_netns_sockets_stay_inside() {
    let ns = match NetNs::new() {
        Ok(ns) => ns,
        Err(e) => panic!("netns needs root: {e}"),
    };
    let l = ns.bind_tcp(0).unwrap();
    let port = l.local_addr().unwrap().port();
    // Not reachable from the host's namespace, reachable from inside.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let c = ns
        .in_ns(|| std::net::TcpStream::connect(("127.0.0.1", port)))
        .unwrap();
    let (srv, _) = l.accept().unwrap();
    drop(srv);
    let mut r = std::io::BufReader::new(c);
    let mut line = String::new();
    assert_eq!(r.read_line(&mut line).unwrap(), 0);
}
