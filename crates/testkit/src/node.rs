//! A real `arcus serve` process for end-to-end tests.
//!
//! [`Node::start`] runs the binary on a fresh temporary data dir, listening on a free
//! loopback port, captures its stderr (the tracing logs) in memory, and waits until it
//! prints `arcus listening on http://ADDR`. The same binary then serves as the CLI
//! ([`Node::cli`]) with `ARCUS_URL`/`ARCUS_TOKEN` pointing at the node. Dropping a
//! [`Node`] kills the process; if the test is panicking, the node's stderr is printed
//! so the failure can be read next to the assertion.

use arcus_client::Client;
use arcus_core::api::{CreateApp, CreateFunction, PublishVersion, PutAlias};
use arcus_core::model::Version;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a node may take to print its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The line prefix `arcus serve` prints once it accepts connections.
const LISTENING: &str = "arcus listening on http://";

/// Environment variables of the test process that would change how the node or the
/// CLI behaves; they are removed from every child so tests are hermetic.
const HOSTILE_ENV: [&str; 7] = [
    "ARCUS_CONFIG",
    "ARCUS_LISTEN",
    "ARCUS_DATA_DIR",
    "ARCUS_ADMIN_TOKEN",
    "ARCUS_URL",
    "ARCUS_TOKEN",
    "ARCUS_LOG",
];

/// The config file [`Node::start_with_config`] writes into the data dir.
const CONFIG_FILE: &str = "arcus.toml";

/// Where a node keeps its data: a temporary dir it owns, or one the caller gave.
#[derive(Debug)]
enum DataDir {
    Temp(TempDir),
    Given(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Temp(t) => t.path(),
            DataDir::Given(p) => p,
        }
    }
}

/// A running (or stopped) `arcus serve` child process.
#[derive(Debug)]
pub struct Node {
    bin: PathBuf,
    dir: DataDir,
    child: Child,
    exit: Option<ExitStatus>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    addr: SocketAddr,
    token: String,
}

fn lock(m: &Mutex<String>) -> MutexGuard<'_, String> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Node {
    /// Starts `bin serve` on a fresh temporary data dir and `127.0.0.1:0`, and waits
    /// (polling, up to [`START_TIMEOUT`]) until it listens. Panics with the node's
    /// stderr if it exits or does not come up in time.
    pub fn start(bin: &Path) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("arcus-e2e-")
            .tempdir()
            .expect("create a temporary data dir");
        Self::spawn(bin, DataDir::Temp(dir))
    }

    /// [`Node::start`] with a TOML config file (written as `arcus.toml` in the data dir,
    /// which every start of the node then reads).
    pub fn start_with_config(bin: &Path, toml: &str) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("arcus-e2e-")
            .tempdir()
            .expect("create a temporary data dir");
        std::fs::write(dir.path().join(CONFIG_FILE), toml).expect("write the node's config");
        Self::spawn(bin, DataDir::Temp(dir))
    }

    /// Starts `bin serve` on the given data dir (created if missing, never deleted).
    pub fn start_in(bin: &Path, dir: &Path) -> Node {
        Self::spawn(bin, DataDir::Given(dir.to_path_buf()))
    }

    /// Stops this node (SIGTERM, then waits for it to exit 0) if it is still running,
    /// and starts a new one on the same data dir. The new node listens on a new port;
    /// the admin token stays the same.
    pub fn restart(mut self) -> Node {
        if self.exit.is_none() {
            self.sigterm();
        }
        let status = self.wait_exit(Duration::from_secs(45));
        assert!(
            status.is_some_and(|s| s.success()),
            "node did not exit cleanly before restart ({status:?}); stderr:\n{}",
            self.stderr_text()
        );
        let path = self.data_dir().to_path_buf();
        let dir = std::mem::replace(&mut self.dir, DataDir::Given(path));
        Self::spawn(&self.bin, dir)
    }

    /// Kills this node with SIGKILL (no shutdown at all) and starts a new one on the
    /// same data dir.
    pub fn kill9_and_restart(mut self) -> Node {
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        assert!(
            self.wait_exit(Duration::from_secs(10)).is_some(),
            "node did not die"
        );
        let path = self.data_dir().to_path_buf();
        let dir = std::mem::replace(&mut self.dir, DataDir::Given(path));
        Self::spawn(&self.bin, dir)
    }

    fn spawn(bin: &Path, dir: DataDir) -> Node {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .env("ARCUS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for var in HOSTILE_ENV {
            if var != "ARCUS_LOG" {
                cmd.env_remove(var);
            }
        }
        let config = dir.path().join(CONFIG_FILE);
        if config.exists() {
            cmd.arg("--config").arg(config);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        let reader = std::thread::Builder::new()
            .name("arcus-node-stderr".into())
            .spawn(move || {
                let mut lines = BufReader::new(pipe);
                let mut line = Vec::new();
                // Byte lines, so non-UTF-8 output cannot stop the reader.
                while lines.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                    lock(&sink).push_str(&String::from_utf8_lossy(&line));
                    line.clear();
                }
            })
            .expect("spawn the stderr reader");

        let mut node = Node {
            bin: bin.to_path_buf(),
            dir,
            child,
            exit: None,
            stderr,
            reader: Some(reader),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: String::new(),
        };
        node.addr = node.wait_listening();
        let token_file = node.data_dir().join("admin-token");
        node.token = std::fs::read_to_string(&token_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", token_file.display()))
            .trim()
            .to_string();
        assert!(!node.token.is_empty(), "{} is empty", token_file.display());
        node
    }

    /// Polls the captured stderr for the `listening on` line and parses the address.
    fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(addr) = parse_listening(&self.stderr_text()) {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                self.join_reader();
                panic!(
                    "arcus serve exited with {status} before listening; stderr:\n{}",
                    self.stderr_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "arcus serve did not print {LISTENING:?} within {START_TIMEOUT:?}; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's root URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// URL of a function route: `<url>/fn/{target}/{path}`, where `target` is
    /// `app/fn[@qualifier]` and `path` has no leading slash (it may carry a query).
    pub fn fn_url(&self, target: &str, path: &str) -> String {
        format!("{}/fn/{target}/{path}", self.url())
    }

    /// The admin token (from `<data-dir>/admin-token`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A REST client of this node, authenticated with the admin token.
    pub fn client(&self) -> Client {
        Client::new(self.url(), Some(self.token.clone())).expect("client of the node")
    }

    /// The binary as a CLI command with `ARCUS_URL`/`ARCUS_TOKEN` set for this node
    /// (other `ARCUS_*` variables removed), ready for more `env`/`args` before running.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        for var in HOSTILE_ENV {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .env("ARCUS_URL", self.url())
            .env("ARCUS_TOKEN", &self.token)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the binary as a CLI against this node and returns its exit status and output.
    pub fn cli<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command(args).output().expect("run the arcus CLI")
    }

    /// Everything the node has written to stderr so far (complete after
    /// [`Node::wait_exit`] returned a status).
    pub fn stderr_text(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Sends SIGTERM (graceful shutdown) to the node.
    pub fn sigterm(&self) {
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("send SIGTERM to the node");
    }

    /// Waits, polling, up to `timeout` for the node to exit; its status, or `None` if
    /// it is still running. Once it has exited, the captured stderr is complete.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.exit.is_none() {
            match self.child.try_wait().expect("wait for the node") {
                Some(status) => {
                    self.exit = Some(status);
                    self.join_reader();
                }
                None if Instant::now() >= deadline => return None,
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        self.exit
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Creates an app (ignoring `already_exists`).
    pub async fn create_app(&self, app: &str) {
        let body = CreateApp {
            name: app.to_string(),
            description: String::new(),
        };
        match self.client().create_app(&body).await {
            Ok(_) => {}
            Err(e) if e.is_code(arcus_core::ErrorCode::AlreadyExists) => {}
            Err(e) => panic!("create app {app}: {e}"),
        }
    }

    /// Deploys through the REST API what `arcus deploy` does: creates function
    /// `spec.name` in `app` (which must exist) with `spec`, uploads the `wasm` file,
    /// publishes a version and points alias `live` at it. Returns the version.
    pub async fn deploy(&self, app: &str, spec: CreateFunction, wasm: &Path) -> Version {
        let code = std::fs::read(wasm).unwrap_or_else(|e| panic!("read {}: {e}", wasm.display()));
        self.deploy_code(app, spec, code).await
    }

    /// [`Node::deploy`] with the code given as bytes (a component or a zip).
    pub async fn deploy_code(&self, app: &str, spec: CreateFunction, code: Vec<u8>) -> Version {
        let client = self.client();
        let name = spec.name.clone();
        client
            .create_function(app, &spec)
            .await
            .unwrap_or_else(|e| panic!("create function {app}/{name}: {e}"));
        client
            .upload_code(app, &name, code)
            .await
            .unwrap_or_else(|e| panic!("upload code of {app}/{name}: {e}"));
        let version = client
            .publish_version(app, &name, &PublishVersion::default())
            .await
            .unwrap_or_else(|e| panic!("publish {app}/{name}: {e}"));
        let live = PutAlias {
            version: version.version,
            canary: None,
        };
        client
            .put_alias(app, &name, "live", &live)
            .await
            .unwrap_or_else(|e| panic!("point live of {app}/{name} at {}: {e}", version.version));
        version
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.exit = Some(status);
            }
            self.join_reader();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- stderr of arcus node {} ({}) -----\n{}----- end of node stderr -----",
                self.addr,
                self.data_dir().display(),
                self.stderr_text()
            );
        }
    }
}

/// The address of the first `arcus listening on http://ADDR` line, if printed yet.
fn parse_listening(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|line| {
        let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
        rest.split_whitespace()
            .next()?
            .trim_end_matches('/')
            .parse()
            .ok()
    })
}

/// Bytes received on the server side of the loopback TCP connection `server`⇄`client`
/// that the server process has not read yet, from `/proc/net/tcp`; `None` if the kernel
/// lists no such established connection. `Some(0)` after the client sent a request means
/// the server has accepted the connection and read the request: it is in flight.
pub fn unread_bytes(server: SocketAddr, client: SocketAddr) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want = (hex_v4(server)?, hex_v4(client)?);
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx_queue:rx_queue ...; 01 = ESTABLISHED.
        if f.len() < 5 || f[3] != "01" || (f[1], f[2]) != (want.0.as_str(), want.1.as_str()) {
            return None;
        }
        let rx = f[4].split_once(':')?.1;
        u32::from_str_radix(rx, 16).ok()
    })
}

/// An IPv4 socket address as `/proc/net/tcp` prints it: the address's bytes in host
/// order as `%08X`, then `:%04X` of the port.
fn hex_v4(addr: SocketAddr) -> Option<String> {
    let SocketAddr::V4(a) = addr else { return None };
    let ip = u32::from_ne_bytes(a.ip().octets());
    Some(format!("{ip:08X}:{:04X}", a.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        let text = "arcus: generated admin token\nabc\narcus listening on http://127.0.0.1:4321\n";
        assert_eq!(
            parse_listening(text),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(parse_listening("arcus listening on http://127.0.0"), None);
        assert_eq!(parse_listening("starting\n"), None);
    }

    #[test]
    fn proc_net_tcp_addresses() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(hex_v4(a).unwrap(), "0100007F:1F90");
        }
    }

    #[test]
    fn unread_bytes_of_a_live_connection() {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(b"12345").unwrap();
        let server = listener.local_addr().unwrap();
        let me = client.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while unread_bytes(server, me) != Some(5) {
            assert!(Instant::now() < deadline, "{:?}", unread_bytes(server, me));
            std::thread::sleep(Duration::from_millis(5));
        }
        let (mut accepted, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        std::io::Read::read_exact(&mut accepted, &mut buf).unwrap();
        assert_eq!(unread_bytes(server, me), Some(0));
    }
}
