//! Process-runtime scenarios (issue 4): python3 and node hello handlers deployed to the
//! same `arcus` node, measured cold and warm against baselines from the same run.
//!
//! - **cold**: the first request to a freshly published function (nothing pre-warmed for
//!   it, so the node starts an instance for it — from a generic spare runtime, ADR 0018),
//!   once per fresh function, alternating with a bare start of the same interpreter
//!   (`python3 -c pass`, `node -e 0`), [`SPARE_REFILL`] apart so the node's one spare is
//!   back (cold starts closer together than that pay the spare's own start);
//! - **warm**: back-to-back requests on one connection to a function whose instance is
//!   already running, next to the raw hyper round-trip (the HTTP floor) and a direct call
//!   of the same handler in a loop inside the interpreter (the handler's own cost).

use crate::load::{self, LoadConfig, Stats, Target};
use crate::servers::{ArcusServer, HELLO};
use anyhow::{Context, Result, bail};
use arcus_core::api::CreateFunction;
use arcus_core::model::Runtime;
use bytes::Bytes;
use hyper::StatusCode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Pause between two cold starts: ample time for the node to start the next spare.
const SPARE_REFILL: Duration = Duration::from_millis(500);
/// Time allowed for one interpreter subprocess (bare start or direct-call loop).
const SUBPROCESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Handler calls of the direct-call loop (it also stops after 2 s, see the scripts).
const DIRECT_CALLS: u32 = 20_000;

/// The python3 hello handler: an API Gateway response with the hello body.
const PY_HANDLER: &str = "def handler(event, context):\n    \
    return {\"statusCode\": 200, \"body\": \"hello, world\\n\"}\n";
/// The node hello handler, async like most Lambda handlers written today.
const NODE_HANDLER: &str = "exports.handler = async (event, context) => \
    ({ statusCode: 200, body: 'hello, world\\n' });\n";

/// Python loop timing `handler({}, None)`; argv: handler dir, calls. Prints the median µs.
const PY_DIRECT: &str = "import sys, time
sys.path.insert(0, sys.argv[1])
from app import handler
n, ts, end = int(sys.argv[2]), [], time.monotonic() + 2
for _ in range(n):
    t = time.perf_counter_ns(); handler({}, None); ts.append(time.perf_counter_ns() - t)
    if time.monotonic() > end: break
ts.sort(); print(ts[len(ts) // 2] / 1000)
";
/// Node loop timing `await handler({}, {})`; argv: handler dir, calls. Prints the median µs.
const NODE_DIRECT: &str =
    "const { handler } = require(require('path').join(process.argv[1], 'index.js'));
(async () => {
  const n = Number(process.argv[2]), ts = [], end = Date.now() + 2000;
  for (let i = 0; i < n && Date.now() < end; i++) {
    const t = process.hrtime.bigint(); await handler({}, {});
    ts.push(Number(process.hrtime.bigint() - t));
  }
  ts.sort((a, b) => a - b); console.log(ts[Math.floor(ts.length / 2)] / 1000);
})();
";

/// A process runtime the bench deploys a hello handler for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// `runtime: python3`, handler `app.handler`.
    Python3,
    /// `runtime: node`, handler `index.handler`.
    Node,
}

impl Lang {
    /// The runtime's wire name, also used in function names and the report.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Python3 => "python3",
            Lang::Node => "node",
        }
    }

    fn runtime(self) -> Runtime {
        match self {
            Lang::Python3 => Runtime::Python3,
            Lang::Node => Runtime::Node,
        }
    }

    fn parts(self) -> Parts {
        match self {
            Lang::Python3 => Parts {
                handler: "app.handler",
                file: "app.py",
                source: PY_HANDLER,
                flag: "-c",
                bare: "pass",
                direct: PY_DIRECT,
            },
            Lang::Node => Parts {
                handler: "index.handler",
                file: "index.js",
                source: NODE_HANDLER,
                flag: "-e",
                bare: "0",
                direct: NODE_DIRECT,
            },
        }
    }
}

/// The fixed pieces of one runtime's scenarios.
#[derive(Debug, Clone, Copy)]
struct Parts {
    /// The function's `handler`.
    handler: &'static str,
    /// The handler's file name in the zip.
    file: &'static str,
    /// The handler's source.
    source: &'static str,
    /// The interpreter's flag for inline code (`-c`, `-e`).
    flag: &'static str,
    /// The inline code of a bare start.
    bare: &'static str,
    /// The inline code of the direct-call loop.
    direct: &'static str,
}

/// What the process scenarios need from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// The interpreter for each runtime — the same binaries the node runs.
    pub interpreters: Vec<(Lang, PathBuf)>,
    /// Fresh functions deployed (and bare interpreter starts) per runtime.
    pub cold_runs: usize,
    /// Warm-up and window of the warm scenario (one connection).
    pub warm: LoadConfig,
}

/// The measurements of one runtime.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Which runtime.
    pub lang: Lang,
    /// The interpreter the baselines ran.
    pub interpreter: PathBuf,
    /// First-request latencies of fresh functions, ms, sorted.
    pub cold_ms: Vec<f64>,
    /// Bare interpreter start-to-exit times, ms, sorted.
    pub bare_ms: Vec<f64>,
    /// Median of one direct handler call inside the interpreter, µs.
    pub direct_us: f64,
    /// Warm requests through Arcus, one connection.
    pub warm: Stats,
    /// Raw hyper round-trips, one connection, right after `warm`.
    pub hyper: Stats,
}

/// Runs the cold and warm scenarios of every runtime in `config`.
pub async fn run(
    arcus: &mut ArcusServer,
    hyper: &Target,
    config: &Config,
) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    for (lang, interpreter) in &config.interpreters {
        out.push(measure(arcus, hyper, config, *lang, interpreter).await?);
    }
    Ok(out)
}

async fn measure(
    arcus: &mut ArcusServer,
    hyper: &Target,
    config: &Config,
    lang: Lang,
    interpreter: &Path,
) -> Result<Measured> {
    let name = lang.name();
    let parts = lang.parts();
    let code = hello_zip(lang)?;
    progress(&format!(
        "deploying {} fresh {name} functions",
        config.cold_runs
    ));
    let mut fresh = Vec::with_capacity(config.cold_runs);
    for i in 0..config.cold_runs {
        let spec = hello_spec(lang, format!("{name}-{i}"));
        fresh.push(arcus.deploy(&spec, code.clone(), HELLO).await?);
    }

    progress(&format!(
        "{name}: cold starts, alternating with bare interpreter starts"
    ));
    let (mut cold_ms, mut bare_ms) = (Vec::new(), Vec::new());
    for target in &fresh {
        tokio::time::sleep(SPARE_REFILL).await;
        bare_ms.push(bare_start(interpreter, &[parts.flag, parts.bare]).await?);
        cold_ms.push(first_request(target).await?);
        arcus.check_running()?;
    }
    cold_ms.sort_by(f64::total_cmp);
    bare_ms.sort_by(f64::total_cmp);

    progress(&format!("{name}: direct handler calls in the interpreter"));
    let direct_us = direct_call(interpreter, parts).await?;

    let warm_target = fresh.last().context("--cold-runs must be at least 1")?;
    progress(&format!("{name}: warm requests on 1 connection"));
    let warm = load::run(warm_target, config.warm).await?;
    arcus.check_running()?;
    progress(&format!("{name}: hyper baseline on 1 connection"));
    let hyper = load::run(hyper, config.warm).await?;
    Ok(Measured {
        lang,
        interpreter: interpreter.to_path_buf(),
        cold_ms,
        bare_ms,
        direct_us,
        warm,
        hyper,
    })
}

/// The function `name` running `lang`'s hello handler, with default settings.
pub fn hello_spec(lang: Lang, name: String) -> CreateFunction {
    CreateFunction {
        name,
        runtime: Some(lang.runtime()),
        handler: Some(lang.parts().handler.into()),
        ..Default::default()
    }
}

/// `lang`'s hello handler zipped, as a user would upload it.
pub fn hello_zip(lang: Lang) -> Result<Bytes> {
    let parts = lang.parts();
    Ok(Bytes::from(handler_zip(parts.file, parts.source)?))
}

/// A zip holding one handler file, as a user would upload it.
fn handler_zip(file: &str, source: &str) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    zip.start_file(file, options)?;
    zip.write_all(source.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

/// One request on a freshly opened connection, in ms (the TCP connect is not counted):
/// the first request to a fresh function, or the first after its instance was reclaimed.
/// The answer must be the hello body.
pub async fn first_request(target: &Target) -> Result<f64> {
    let mut sender = load::connect(target.addr).await?;
    let start = Instant::now();
    let (status, body) = load::send(&mut sender, target).await?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if status != StatusCode::OK || body != target.expected_body {
        bail!(
            "GET {} answered {status} {:?}",
            target.path,
            String::from_utf8_lossy(&body)
        );
    }
    Ok(ms)
}

/// Spawns `interpreter args` and waits for it to exit 0; its start-to-exit time in ms.
async fn bare_start(interpreter: &Path, args: &[&str]) -> Result<f64> {
    let mut command = tokio::process::Command::new(interpreter);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let start = Instant::now();
    let status = tokio::time::timeout(SUBPROCESS_TIMEOUT, command.status())
        .await
        .with_context(|| format!("{} did not exit in time", interpreter.display()))?
        .with_context(|| format!("cannot run {}", interpreter.display()))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if !status.success() {
        bail!("{} {args:?} failed: {status}", interpreter.display());
    }
    Ok(ms)
}

/// Writes the handler to a temp dir and runs the direct-call loop in `interpreter`, which
/// calls the handler in a loop and prints the median call time in µs.
async fn direct_call(interpreter: &Path, parts: Parts) -> Result<f64> {
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    std::fs::write(dir.path().join(parts.file), parts.source)
        .context("cannot write the handler")?;
    let mut command = tokio::process::Command::new(interpreter);
    command
        .arg(parts.flag)
        .arg(parts.direct)
        .arg(dir.path())
        .arg(DIRECT_CALLS.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(SUBPROCESS_TIMEOUT, command.output())
        .await
        .with_context(|| {
            format!(
                "the direct-call loop in {} timed out",
                interpreter.display()
            )
        })?
        .with_context(|| format!("cannot run {}", interpreter.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the direct-call loop in {} failed ({}): {}",
            interpreter.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    text.trim()
        .parse()
        .with_context(|| format!("the direct-call loop printed {text:?}, not a number"))
}

/// Nearest-rank `p`-quantile (`p` in 0..=1) of ascending `sorted`.
pub fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    let rank = (p.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(n.checked_sub(1)?))
        .copied()
}

/// A progress line on stderr.
fn progress(what: &str) {
    eprintln!("arcus-bench: {what}…");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_zip_holds_the_handler() {
        let bytes = handler_zip("app.py", PY_HANDLER).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut text = String::new();
        archive
            .by_name("app.py")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, PY_HANDLER);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
