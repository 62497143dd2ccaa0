//! `arcus-bench`: throughput and latency of Arcus serving the `hello` component, against two
//! baselines measured in the same run — `wasmtime serve` of the same component and a
//! minimal in-process hyper server answering the same text — and, for the process
//! runtimes, python3 and node hello handlers cold and warm against the bare interpreters
//! and a direct call of the handler ([`process`]); and the lifecycle scenarios of issue 5:
//! scale-from-zero latency ([`cold`]), a burst of concurrent requests to a function at
//! zero ([`burst`]) and thousands of deployed functions on one node ([`density`]); and
//! issue 6's event scenarios: async enqueue and end-to-end rates against sync invokes
//! ([`queue`]) and a NATS trigger against a plain `async-nats` consumer ([`nats`]).
//!
//! Every server is loaded by the same in-process load generator ([`load`]) at each
//! requested number of concurrent keep-alive HTTP/1.1 connections, for a bounded time per
//! scenario; the program prints requests/s, p50 and p99 latency, and the ratios of Arcus to
//! each baseline. Machines here are shared and noisy, so only the ratios from one run mean
//! much (design.md, conventions 8). See `docs/benchmarks.md`.

mod api;
mod burst;
mod child;
mod cold;
mod density;
mod load;
mod nats;
mod node;
mod observe;
mod process;
mod queue;
mod report;
mod servers;
mod variant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use load::{LoadConfig, Target};
use report::Row;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "arcus-bench",
    version,
    about = "Benchmarks Arcus against wasmtime serve, a raw hyper server and bare interpreters"
)]
struct Args {
    /// Which scenarios to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "wasm,process,cold,burst,density,async,nats,observe"
    )]
    scenarios: Vec<Scenario>,
    /// The `arcus` binary (build it with `cargo build --release -p arcus-cli`).
    #[arg(long, default_value = "target/release/arcus")]
    arcus_bin: PathBuf,
    /// The `wasmtime` binary [default: `wasmtime` on PATH; skipped if there is none].
    #[arg(long)]
    wasmtime_bin: Option<PathBuf>,
    /// The hello component every wasm server runs.
    #[arg(long, default_value = "tests/fixtures/out/hello.wasm")]
    component: PathBuf,
    /// Measured seconds per scenario.
    #[arg(long, default_value = "5", value_parser = parse_seconds)]
    duration: Duration,
    /// Unmeasured warm-up seconds per scenario, on the same connections.
    #[arg(long, default_value = "1", value_parser = parse_seconds)]
    warmup: Duration,
    /// Concurrent keep-alive connections, one scenario per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64", value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: Vec<u16>,
    /// Worker threads of the load generator's runtime (1 = a current-thread runtime).
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u16).range(1..=64))]
    client_threads: u16,
    /// Worker threads of the in-process hyper server's runtime.
    #[arg(long, default_value = "2", value_parser = clap::value_parser!(u16).range(1..=64))]
    server_threads: u16,
    /// Fresh functions (cold starts) and bare interpreter starts per process runtime; cold
    /// requests after a reclaim per function (`cold`).
    #[arg(long, default_value = "10", value_parser = clap::value_parser!(u16).range(1..=100))]
    cold_runs: u16,
    /// `process.spares` of the node under test (spare runtimes per built-in runtime, ADR
    /// 0018); the node's default (1) when not given. `0` measures cold starts without spares.
    #[arg(long, value_parser = clap::value_parser!(u16).range(0..=16))]
    process_spares: Option<u16>,
    /// Concurrent requests of the `burst` scenario, one connection each.
    #[arg(long, default_value = "200", value_parser = clap::value_parser!(u16).range(1..=1000))]
    burst_requests: u16,
    /// Functions deployed by the `density` scenario.
    #[arg(long, default_value = "10000", value_parser = clap::value_parser!(u32).range(1..=20000))]
    density_functions: u32,
    /// Events posted by the `async` scenario (and sync invokes of its baseline).
    #[arg(long, default_value = "20000", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    async_events: u32,
    /// Concurrent clients of the `async` scenario, one keep-alive connection each.
    #[arg(long, default_value = "64", value_parser = clap::value_parser!(u16).range(1..=1024))]
    async_clients: u16,
    /// Messages published by the `nats` scenario.
    #[arg(long, default_value = "20000", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    nats_messages: u32,
    /// The NATS server (JetStream enabled) of the `nats` scenario; never restarted.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// `batch_size` of the `nats` scenario's trigger (1–1000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    nats_batch_size: u32,
    /// The python3 interpreter the node runs (its default) and the baselines use.
    #[arg(long, default_value = "/usr/bin/python3")]
    python3: PathBuf,
    /// The node binary the node runs (its default) and the baselines use.
    #[arg(long, default_value = "/usr/bin/node")]
    node: PathBuf,
    /// Invocation records written for the `observe` scenario's stats query.
    #[arg(long, default_value = "1000000", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    stats_records: u32,
    /// Interleaved rounds per side (on, off) of the `observe` scenario's load.
    #[arg(long, default_value = "3", value_parser = clap::value_parser!(u16).range(1..=20))]
    observe_rounds: u16,
    /// Print the tables as markdown (for docs/benchmarks.md).
    #[arg(long)]
    markdown: bool,
}

/// A group of scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// The hello component: arcus, wasmtime serve and hyper at each connection count.
    Wasm,
    /// python3 and node hello handlers: cold and warm, against bare interpreters.
    Process,
    /// Scale from zero: the first request after the node reclaimed the instance, wasm and
    /// python3, against warm requests to the same function.
    Cold,
    /// 200 concurrent requests to a wasm function at zero (4 instances × 10), and to hyper.
    Burst,
    /// 10 000 deployed functions: RSS per function, 1000-function round robin.
    Density,
    /// Async invoke: events accepted/s and end-to-end/s against sync invokes.
    Async,
    /// A NATS JetStream trigger's throughput against a plain async-nats consumer.
    Nats,
    /// Warm throughput with records, logs and metrics on vs off; stats over 1M records.
    Observe,
}

/// Parses seconds (fractions allowed) in 0..=3600.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("{secs} is not between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.duration.is_zero() {
        bail!("--duration must be more than 0 seconds");
    }
    let mut builder = if args.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(usize::from(args.client_threads));
        b
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot build the load generator's runtime")?;
    runtime.block_on(run(args))
}

/// Starts the servers, runs every scenario, prints the report; the servers stop when
/// their guards drop, on success or error.
async fn run(args: Args) -> Result<()> {
    let arcus_bin = resolve(&args.arcus_bin);
    if !arcus_bin.is_file() {
        bail!(
            "no arcus binary at {}; build it with `cargo build --release -p arcus-cli` or pass --arcus-bin",
            arcus_bin.display()
        );
    }
    let mut notes = vec![format!(
        "{} s per load scenario after a {} s warm-up; load generator on {} thread(s); hyper baseline on {} worker thread(s).",
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        args.client_threads,
        args.server_threads
    )];
    progress("starting the in-process hyper server");
    let hyper = servers::HyperServer::start(usize::from(args.server_threads))?;
    load::verify("hyper", &hyper.target).await?;
    progress(&format!("starting {}", arcus_bin.display()));
    let config = args
        .process_spares
        .map(|n| format!("[process]\nspares = {n}\n"));
    let mut arcus = servers::start_arcus_with(&arcus_bin, config.as_deref()).await?;

    let mut out = String::new();
    if args.scenarios.contains(&Scenario::Wasm) {
        let rows = run_wasm(&args, &mut arcus, &hyper.target, &mut notes).await?;
        out.push_str(&report::render(&rows, args.markdown));
    }
    if args.scenarios.contains(&Scenario::Process) {
        let config = process::Config {
            interpreters: vec![
                (process::Lang::Python3, args.python3.clone()),
                (process::Lang::Node, args.node.clone()),
            ],
            cold_runs: usize::from(args.cold_runs),
            warm: LoadConfig {
                connections: 1,
                warmup: args.warmup,
                duration: args.duration,
            },
        };
        let measured = process::run(&mut arcus, &hyper.target, &config).await?;
        for m in &measured {
            notes.push(format!(
                "{}: interpreter {}; {} cold runs.",
                m.lang.name(),
                m.interpreter.display(),
                m.cold_ms.len()
            ));
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&report::render_process(&measured, args.markdown));
    }

    let lifecycle = [
        Scenario::Cold,
        Scenario::Burst,
        Scenario::Density,
        Scenario::Async,
        Scenario::Nats,
        Scenario::Observe,
    ];
    for scenario in lifecycle.into_iter().filter(|s| args.scenarios.contains(s)) {
        let section = match run_lifecycle(&args, scenario, &mut arcus, &hyper.target).await {
            Ok(section) => section,
            Err(e) => {
                // A dead server ends the run; another failure is reported with the rest.
                arcus.check_running()?;
                progress(&format!("{scenario:?} failed: {e:#}"));
                format!("{scenario:?} scenario failed: {e:#}\n")
            }
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&section);
    }

    for note in &notes {
        println!("{note}");
        if args.markdown {
            println!();
        }
    }
    if !args.markdown {
        println!();
    }
    print!("{out}");
    drop(arcus);
    drop(hyper);
    Ok(())
}

/// Runs one of issue 5's or issue 6's scenarios and renders its tables.
async fn run_lifecycle(
    args: &Args,
    scenario: Scenario,
    arcus: &mut servers::ArcusServer,
    hyper: &Target,
) -> Result<String> {
    let component = read_component(args)?;
    Ok(match scenario {
        Scenario::Cold => {
            let config = cold::Config {
                component: component.into(),
                runs: usize::from(args.cold_runs),
                warm: LoadConfig {
                    connections: 1,
                    warmup: args.warmup,
                    duration: args.duration,
                },
            };
            let measured = cold::run(arcus, &config).await?;
            cold::render(&measured, args.markdown)
        }
        Scenario::Burst => {
            let requests = usize::from(args.burst_requests);
            let (bursts, listed) = burst::run(arcus, hyper, &component, requests).await?;
            burst::render(&bursts, listed, args.markdown)
        }
        Scenario::Density => {
            // A node of its own, so RSS before is an empty node's and the other
            // scenarios' functions and pools neither count nor get in the way.
            progress("starting a fresh arcus for the density scenario");
            let mut fresh = servers::start_arcus(&resolve(&args.arcus_bin)).await?;
            let functions = usize::try_from(args.density_functions)?;
            let measured = density::run(&mut fresh, &component, functions).await?;
            density::render(&measured, args.markdown)
        }
        Scenario::Async => {
            let config = queue::Config {
                events: usize::try_from(args.async_events)?,
                clients: usize::from(args.async_clients),
            };
            let measured = queue::run(arcus, &component, config).await?;
            queue::render(&measured, args.markdown)
        }
        Scenario::Nats => {
            let config = nats::Config {
                messages: usize::try_from(args.nats_messages)?,
                url: args.nats_url.clone(),
                batch_size: args.nats_batch_size,
            };
            let measured = nats::run(arcus, &component, &config).await?;
            nats::render(&measured, args.markdown)
        }
        Scenario::Observe => {
            let config = observe::Config {
                load: LoadConfig {
                    connections: usize::from(args.connections.iter().copied().max().unwrap_or(16)),
                    warmup: args.warmup,
                    duration: args.duration,
                },
                rounds: usize::from(args.observe_rounds),
                records: usize::try_from(args.stats_records)?,
            };
            let bin = resolve(&args.arcus_bin);
            let measured = observe::run(&bin, arcus, &component, config).await?;
            observe::render(&measured, args.markdown)
        }
        Scenario::Wasm | Scenario::Process => String::new(),
    })
}

/// The hello component's bytes.
fn read_component(args: &Args) -> Result<Vec<u8>> {
    let component = resolve(&args.component);
    std::fs::read(&component).with_context(|| {
        format!(
            "cannot read the hello component {} (build it with tests/fixtures/build.sh)",
            component.display()
        )
    })
}

/// The wasm scenarios: deploys hello, starts `wasmtime serve` if there is one (stopped on
/// return), and loads arcus, wasmtime serve and hyper at each connection count.
async fn run_wasm(
    args: &Args,
    arcus: &mut servers::ArcusServer,
    hyper: &Target,
    notes: &mut Vec<String>,
) -> Result<Vec<Row>> {
    let component = resolve(&args.component);
    let code = read_component(args)?;
    let wasmtime_bin = match &args.wasmtime_bin {
        Some(bin) if !bin.is_file() => bail!("no wasmtime binary at {}", bin.display()),
        Some(bin) => Some(bin.clone()),
        None => servers::wasmtime_on_path(),
    };
    let mut wasmtime = match wasmtime_bin {
        Some(bin) => {
            let version = servers::wasmtime_version(&bin)?;
            if !version.contains("48.0.8") {
                notes.push(format!(
                    "note: the baseline is wasmtime-cli 48.0.8, but {} is {version:?}",
                    bin.display()
                ));
            }
            progress(&format!("starting wasmtime serve ({version})"));
            notes.push(format!(
                "wasmtime serve: {version}, `wasmtime serve -Scli`."
            ));
            Some(servers::start_wasmtime(&bin, &component).await?)
        }
        None => {
            notes.push(
                "wasmtime serve: skipped (wasmtime-cli 48.0.8 not installed; cargo install --locked wasmtime-cli@48.0.8)"
                    .into(),
            );
            None
        }
    };
    progress("deploying hello");
    let hello = arcus.deploy_hello(code.into()).await?;

    let mut targets: Vec<(&'static str, Target)> = vec![(report::ARCUS, hello)];
    if let Some(w) = &wasmtime {
        targets.push(("wasmtime serve", w.target.clone()));
    }
    targets.push(("hyper", hyper.clone()));

    let mut rows = Vec::new();
    for &connections in &args.connections {
        for (server, target) in &targets {
            progress(&format!(
                "loading {server} with {connections} connection(s)"
            ));
            let config = LoadConfig {
                connections: usize::from(connections),
                warmup: args.warmup,
                duration: args.duration,
            };
            let stats = load::run(target, config)
                .await
                .with_context(|| format!("{server}: load failed"))?;
            arcus.check_running()?;
            if let Some(w) = wasmtime.as_mut() {
                w.check_running()?;
            }
            rows.push(Row {
                server,
                connections: usize::from(connections),
                stats,
            });
        }
    }
    Ok(rows)
}

/// A relative path that is missing from the current directory is looked up in the
/// workspace root this binary was built from, so the defaults work from anywhere.
fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidate = root.join(path);
    if candidate.exists() {
        candidate
    } else {
        path.to_path_buf()
    }
}

/// A progress line on stderr (stdout carries only the report).
fn progress(what: &str) {
    eprintln!("arcus-bench: {what}…");
}
