//! The three servers under test: `arcus serve` and `wasmtime serve` as subprocesses (killed
//! by a guard on drop, also on error), and a minimal hyper server on its own runtime.

use crate::load::{self, Target};
use anyhow::{Context, Result, anyhow, bail};
use arcus_core::api::{CreateApp, CreateFunction, PublishVersion, PutAlias};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// What every server answers.
pub const HELLO: &[u8] = b"hello, world\n";
/// How long a subprocess may take to start listening and answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Lines of a subprocess's stderr kept for error messages.
const KEPT_LINES: usize = 40;
/// Lines of a subprocess's stderr forwarded line by line; the rest is drained unread.
const MAX_FORWARDED_LINES: usize = 100_000;
/// Connections the in-process hyper server accepts before it stops accepting.
const MAX_ACCEPTS: usize = 1_000_000;

/// A running subprocess, killed (SIGKILL) and reaped when dropped. Its stderr is drained
/// by a thread so the child never blocks on a full pipe; the last lines are kept.
#[derive(Debug)]
pub struct ChildGuard {
    name: &'static str,
    child: Child,
    recent: Arc<Mutex<VecDeque<String>>>,
}

impl ChildGuard {
    /// Starts `command` with stdin and stdout closed and stderr piped; the returned
    /// receiver gets each stderr line (up to [`MAX_FORWARDED_LINES`]).
    fn spawn(
        name: &'static str,
        mut command: Command,
    ) -> Result<(Self, mpsc::UnboundedReceiver<String>)> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        let stderr = child.stderr.take();
        let guard = Self {
            name,
            child,
            recent: Arc::default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let recent = guard.recent.clone();
        if let Some(stderr) = stderr {
            std::thread::Builder::new()
                .name(format!("{name}-stderr"))
                .spawn(move || drain(stderr, &recent, &tx))
                .context("cannot start the stderr reader thread")?;
        }
        Ok((guard, rx))
    }

    /// The last lines the subprocess wrote to stderr, for error messages.
    fn recent_output(&self) -> String {
        match self.recent.lock() {
            Ok(lines) if !lines.is_empty() => {
                let text: Vec<&str> = lines.iter().map(String::as_str).collect();
                format!(
                    "\n--- last lines of {}'s stderr ---\n{}",
                    self.name,
                    text.join("\n")
                )
            }
            _ => String::new(),
        }
    }

    /// An error if the subprocess has exited.
    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => bail!(
                "{} exited early ({status}){}",
                self.name,
                self.recent_output()
            ),
            Ok(None) => Ok(()),
            Err(e) => Err(anyhow!("cannot check on {}: {e}", self.name)),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Errors mean the process is already gone; nothing else to do in a destructor.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stderr` line by line until EOF (the child's exit), keeping the last lines and
/// forwarding them; after [`MAX_FORWARDED_LINES`] the rest is discarded unread.
fn drain(stderr: impl Read, recent: &Mutex<VecDeque<String>>, tx: &mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(stderr);
    for line in reader.by_ref().lines().take(MAX_FORWARDED_LINES) {
        let Ok(line) = line else { break };
        if let Ok(mut kept) = recent.lock() {
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(line.clone());
        }
        let _ = tx.send(line);
    }
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
}

/// A running `arcus serve` with `hello` deployed as `bench/hello` behind alias `live`.
#[derive(Debug)]
pub struct ArcusServer {
    // Field order matters: the process goes before its data directory.
    child: ChildGuard,
    _data_dir: tempfile::TempDir,
    /// The function's route.
    pub target: Target,
}

/// Starts `arcus serve` on a free loopback port with a fresh data dir, deploys `code` as
/// `bench/hello` through the REST API and checks the answer.
pub async fn start_arcus(bin: &Path, code: Bytes) -> Result<ArcusServer> {
    let data_dir = tempfile::Builder::new()
        .prefix("arcus-bench-")
        .tempdir()
        .context("cannot create a temp dir")?;
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("ARCUS_LOG", "warn");
    for var in [
        "ARCUS_CONFIG",
        "ARCUS_LISTEN",
        "ARCUS_DATA_DIR",
        "ARCUS_ADMIN_TOKEN",
    ] {
        command.env_remove(var);
    }
    let (mut child, mut lines) = ChildGuard::spawn("arcus", command)?;
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => {
                if let Some(rest) = line.strip_prefix("arcus listening on http://") {
                    break rest
                        .trim()
                        .parse::<SocketAddr>()
                        .with_context(|| format!("cannot parse {line:?}"))?;
                }
            }
            Ok(None) => {
                child.check_running()?;
                bail!(
                    "arcus closed its stderr without saying where it listens{}",
                    child.recent_output()
                );
            }
            Err(_) => bail!(
                "arcus did not start listening within {START_TIMEOUT:?}{}",
                child.recent_output()
            ),
        }
    };
    let token_path = data_dir.path().join("admin-token");
    let token = std::fs::read_to_string(&token_path)
        .with_context(|| format!("cannot read the admin token from {}", token_path.display()))?;
    deploy_hello(addr, token.trim(), code)
        .await
        .with_context(|| format!("cannot deploy hello to arcus{}", child.recent_output()))?;
    let target = Target::new(addr, "/fn/bench/hello/", HELLO)?;
    if let Err(e) = load::verify("arcus", &target).await {
        return Err(e.context(child.recent_output()));
    }
    Ok(ArcusServer {
        child,
        _data_dir: data_dir,
        target,
    })
}

impl ArcusServer {
    /// An error if the process has died (e.g. during a scenario).
    pub fn check_running(&mut self) -> Result<()> {
        self.child.check_running()
    }
}

/// `POST /apps`, `POST .../functions`, `PUT .../code`, `POST .../versions`, `PUT .../aliases/live`.
async fn deploy_hello(addr: SocketAddr, token: &str, code: Bytes) -> Result<()> {
    let client = arcus_client::Client::new(format!("http://{addr}"), Some(token.to_string()))?;
    client
        .create_app(&CreateApp {
            name: "bench".into(),
            description: "arcus-bench".into(),
        })
        .await?;
    client
        .create_function(
            "bench",
            &CreateFunction {
                name: "hello".into(),
                ..Default::default()
            },
        )
        .await?;
    client.upload_code("bench", "hello", code).await?;
    let version = client
        .publish_version("bench", "hello", &PublishVersion::default())
        .await?;
    client
        .put_alias(
            "bench",
            "hello",
            "live",
            &PutAlias {
                version: version.version,
                canary: None,
            },
        )
        .await?;
    Ok(())
}

/// A running `wasmtime serve -Scli` of the hello component.
#[derive(Debug)]
pub struct WasmtimeServer {
    child: ChildGuard,
    /// The component's route (`/`).
    pub target: Target,
}

/// Starts `wasmtime serve -Scli --addr 127.0.0.1:<free port> <component>` and waits until
/// it answers with the hello body.
pub async fn start_wasmtime(bin: &Path, component: &Path) -> Result<WasmtimeServer> {
    let addr = free_loopback_port()?;
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg("-Scli")
        .arg("--addr")
        .arg(addr.to_string())
        .arg(component);
    let (mut child, _lines) = ChildGuard::spawn("wasmtime serve", command)?;
    let target = Target::new(addr, "/", HELLO)?;
    let deadline = Instant::now() + START_TIMEOUT;
    let max_probes = START_TIMEOUT.as_millis() / PROBE_INTERVAL.as_millis();
    for _ in 0..max_probes {
        child.check_running()?;
        if load::get_once(&target).await.is_ok() {
            load::verify("wasmtime serve", &target).await?;
            return Ok(WasmtimeServer { child, target });
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    bail!(
        "wasmtime serve did not answer on {addr} within {START_TIMEOUT:?}{}",
        child.recent_output()
    )
}

impl WasmtimeServer {
    /// An error if the process has died (e.g. during a scenario).
    pub fn check_running(&mut self) -> Result<()> {
        self.child.check_running()
    }
}

/// A port that was free a moment ago (bound, then released).
fn free_loopback_port() -> Result<SocketAddr> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    listener
        .local_addr()
        .context("cannot read the bound address")
}

/// `wasmtime --version`, e.g. `wasmtime 48.0.8 (…)`.
pub fn wasmtime_version(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} --version", bin.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The first `wasmtime` executable on `PATH`.
pub fn wasmtime_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("wasmtime"))
        .find(|p| p.is_file())
}

/// A minimal hyper HTTP/1.1 server answering [`HELLO`] to every request, on its own tokio
/// runtime (not the load generator's); stopped and joined when dropped.
#[derive(Debug)]
pub struct HyperServer {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The server's route (`/`).
    pub target: Target,
}

impl HyperServer {
    /// Binds a free loopback port and serves it on a multi-thread runtime with
    /// `worker_threads` workers.
    pub fn start(worker_threads: usize) -> Result<Self> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .thread_name("hyper-baseline")
            .enable_all()
            .build()
            .context("cannot build the hyper server's runtime")?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("hyper-baseline".into())
            .spawn(move || runtime.block_on(serve(listener, stopped)))
            .context("cannot start the hyper server thread")?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            target: Target::new(addr, "/", HELLO)?,
        })
    }
}

impl Drop for HyperServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The accept loop of [`HyperServer`]: one task per connection, `TCP_NODELAY`, keep-alive.
async fn serve(listener: std::net::TcpListener, mut stopped: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    for _ in 0..MAX_ACCEPTS {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                    let mut response = Response::new(Full::new(Bytes::from_static(HELLO)));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    Ok::<_, Infallible>(response)
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
