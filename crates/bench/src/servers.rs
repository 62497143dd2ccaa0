//! The three servers under test: `arcus serve` and `wasmtime serve` as subprocesses (killed
//! by a guard on drop, also on error), and a minimal hyper server on its own runtime.

use crate::child::ChildGuard;
use crate::load::{self, Target};
use anyhow::{Context, Result, bail};
use arcus_core::api::{CreateApp, CreateFunction, PublishVersion, PutAlias, UpdateFunction};
use arcus_core::scaling::Scaling;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What every server answers.
pub const HELLO: &[u8] = b"hello, world\n";
/// How long a subprocess may take to start listening and answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Connections the in-process hyper server accepts before it stops accepting.
const MAX_ACCEPTS: usize = 1_000_000;

/// A running `arcus serve` with an empty app `bench`; functions are deployed with
/// [`ArcusServer::deploy`]; node-level queries (scaling, instances, RSS) are in
/// [`crate::node`].
#[derive(Debug)]
pub struct ArcusServer {
    // Field order matters: the process goes before its data directory.
    pub(crate) child: ChildGuard,
    _data_dir: tempfile::TempDir,
    /// Where the node listens (loopback).
    pub addr: SocketAddr,
    pub(crate) client: arcus_client::Client,
    /// The admin token, for the API calls the client has no method for.
    pub(crate) token: String,
}

/// Starts `arcus serve` on a free loopback port with a fresh data dir and creates the app
/// `bench` through the REST API.
pub async fn start_arcus(bin: &Path) -> Result<ArcusServer> {
    start_arcus_with(bin, None).await
}

/// [`start_arcus`] with a TOML config file of the given text.
pub async fn start_arcus_with(bin: &Path, config: Option<&str>) -> Result<ArcusServer> {
    let data_dir = tempfile::Builder::new()
        .prefix("arcus-bench-")
        .tempdir()
        .context("cannot create a temp dir")?;
    // The sandbox user of process functions must be able to enter the data dir.
    std::fs::set_permissions(data_dir.path(), std::fs::Permissions::from_mode(0o711))
        .context("cannot make the data dir traversable")?;
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("ARCUS_LOG", "warn");
    if let Some(text) = config {
        let path = data_dir.path().join("arcus.toml");
        std::fs::write(&path, text).context("cannot write the node's config file")?;
        command.arg("--config").arg(path);
    }
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
    let token = token.trim().to_string();
    let client = arcus_client::Client::new(format!("http://{addr}"), Some(token.clone()))?;
    let app = CreateApp {
        name: APP.into(),
        description: "arcus-bench".into(),
    };
    if let Err(e) = client.create_app(&app).await {
        bail!("cannot create the app {APP}: {e}{}", child.recent_output());
    }
    Ok(ArcusServer {
        child,
        _data_dir: data_dir,
        addr,
        client,
        token,
    })
}

/// The app every bench function is deployed in.
pub const APP: &str = "bench";

impl ArcusServer {
    /// An error if the process has died (e.g. during a scenario).
    pub fn check_running(&mut self) -> Result<()> {
        self.child.check_running()
    }

    /// Deploys `code` as `bench/<spec.name>` through the REST API — `POST .../functions`,
    /// `PUT .../code`, `POST .../versions`, `PUT .../aliases/live` — with no invocation,
    /// and returns the function's `/fn` route answering `expected_body`.
    pub async fn deploy(
        &self,
        spec: &CreateFunction,
        code: Bytes,
        expected_body: &'static [u8],
    ) -> Result<Target> {
        self.deploy_in(APP, spec, None, code, expected_body).await
    }

    /// Like [`ArcusServer::deploy`] into `app`, with `scaling` (if any) set by
    /// `PATCH .../functions/{fn}` right after the function is created, as `arcus fn scale`
    /// does.
    pub async fn deploy_in(
        &self,
        app: &str,
        spec: &CreateFunction,
        scaling: Option<Scaling>,
        code: Bytes,
        expected_body: &'static [u8],
    ) -> Result<Target> {
        if let Err(e) = deploy_steps(&self.client, app, spec, scaling, code).await {
            bail!(
                "cannot deploy {app}/{}: {e:#}{}",
                spec.name,
                self.child.recent_output()
            );
        }
        Target::new(
            self.addr,
            &format!("/fn/{app}/{}/", spec.name),
            expected_body,
        )
    }

    /// Deploys the hello component as `bench/hello` and checks its answer.
    pub async fn deploy_hello(&mut self, code: Bytes) -> Result<Target> {
        let spec = CreateFunction {
            name: "hello".into(),
            ..Default::default()
        };
        let target = self.deploy(&spec, code, HELLO).await?;
        if let Err(e) = load::verify("arcus", &target).await {
            return Err(e.context(self.child.recent_output()));
        }
        Ok(target)
    }
}

/// The API calls of a deployment (see [`ArcusServer::deploy_in`]); a free function so
/// that spawned tasks can run it with a clone of the client.
pub async fn deploy_steps(
    client: &arcus_client::Client,
    app: &str,
    spec: &CreateFunction,
    scaling: Option<Scaling>,
    code: Bytes,
) -> Result<()> {
    let name = spec.name.as_str();
    client.create_function(app, spec).await?;
    if let Some(scaling) = scaling {
        let body = UpdateFunction {
            scaling: Some(scaling),
            ..Default::default()
        };
        client.update_function(app, name, &body).await?;
    }
    client.upload_code(app, name, code).await?;
    let version = client
        .publish_version(app, name, &PublishVersion::default())
        .await?;
    let alias = PutAlias {
        version: version.version,
        canary: None,
    };
    client.put_alias(app, name, "live", &alias).await?;
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
