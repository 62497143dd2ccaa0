//! `arcus`: runs an Arcus node (`arcus serve`) and is the command-line client of its
//! REST API (apps, functions, deploys, invocations, aliases, logs).

mod commands;
mod config;
mod config_file;
mod errors;
mod netsec;
mod opts;
mod otlp;
mod output;
mod serve;
mod target;

use clap::{Parser, Subcommand};
use commands::{
    access_key, alias, app, audit, deploy, function, invoke, observe, queue, records, secret,
    token, top, trigger, versions,
};
use std::process::ExitCode;

/// Arcus: a self-hosted Function-as-a-Service platform for WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "arcus", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an Arcus node.
    Serve(serve::ServeArgs),
    /// Create, list and delete apps.
    App(app::AppCmd),
    /// Create, list, show and delete functions.
    #[command(name = "fn")]
    Function(function::FnCmd),
    /// Upload a component, publish it as a version and point alias `live` at it.
    Deploy(deploy::DeployArgs),
    /// Invoke a function with a JSON event and print its response.
    Invoke(invoke::InvokeArgs),
    /// List a function's published versions.
    Versions(versions::VersionsArgs),
    /// Publish a function's draft as a new version.
    Publish(versions::PublishArgs),
    /// Set, list and delete aliases.
    Alias(alias::AliasCmd),
    /// Point an alias back at its previous target.
    Rollback(alias::RollbackArgs),
    /// Show an app's or function's log lines, oldest first; -f follows them live.
    Logs(observe::LogsArgs),
    /// List invocation records of an app or function, newest first, with filters.
    Invocations(records::InvocationsArgs),
    /// Calls, success rate, latency percentiles and cold starts over 1h, 24h or 7d.
    Stats(records::StatsArgs),
    /// Metered use (invocations, GB-seconds, egress) per function and hour.
    Usage(records::UsageArgs),
    /// A live view of the functions by request rate: rps, p99, errors, instances.
    Top(top::TopArgs),
    /// Show where one invocation is (async: queued … dead_lettered, with attempts).
    Invocation(queue::InvocationArgs),
    /// List a function's async invocations and redrive its dead letters.
    Queue(queue::QueueCmd),
    /// Create, list, show, enable, disable and delete triggers (cron, webhook, brokers).
    Trigger(trigger::TriggerCmd),
    /// Set, list and delete an app's secrets (encrypted at rest, never shown).
    Secret(secret::SecretCmd),
    /// Create, list and revoke scoped API tokens.
    Token(token::TokenCmd),
    /// Create, list and delete access keys for the Lambda-compatible API (boto3, AWS CLI).
    AccessKey(access_key::AccessKeyCmd),
    /// Show the audit log of control-plane changes (who, what, before/after, when, from where).
    Audit(audit::AuditArgs),
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::run(args).await?,
        Command::App(cmd) => app::run(cmd).await?,
        Command::Function(cmd) => function::run(cmd).await?,
        Command::Deploy(args) => deploy::run(args).await?,
        Command::Invoke(args) => return invoke::run(args).await,
        Command::Versions(args) => versions::list(args).await?,
        Command::Publish(args) => versions::publish(args).await?,
        Command::Alias(cmd) => alias::run(cmd).await?,
        Command::Rollback(args) => alias::rollback(args).await?,
        Command::Logs(args) => observe::logs(args).await?,
        Command::Invocations(args) => records::invocations(args).await?,
        Command::Stats(args) => records::stats(args).await?,
        Command::Usage(args) => records::usage(args).await?,
        Command::Top(args) => top::run(args).await?,
        Command::Trigger(cmd) => trigger::run(cmd).await?,
        Command::Secret(cmd) => secret::run(cmd).await?,
        Command::Token(cmd) => token::run(cmd).await?,
        Command::AccessKey(cmd) => access_key::run(cmd).await?,
        Command::Audit(args) => audit::run(args).await?,
        Command::Invocation(args) => queue::invocation(args).await?,
        Command::Queue(cmd) => queue::run(cmd).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// mimalloc: the request path allocates and frees many small objects across threads,
/// where it is measurably cheaper than glibc's allocator (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command).await {
        Ok(code) => code,
        Err(err) if errors::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            errors::report(&err);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("arcus").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_after_subcommands() {
        let cli = parse(&[
            "app",
            "list",
            "--json",
            "--server",
            "http://h:1",
            "--token",
            "t",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = parse(&["alias", "--json", "set", "a/f", "live", "3"]);
        assert!(cli.is_ok(), "{cli:?}");
        assert!(
            parse(&[
                "deploy",
                "a/f",
                "x.wasm",
                "--data-dir",
                "/tmp/d",
                "--memory",
                "64"
            ])
            .is_ok()
        );
    }

    #[test]
    fn bad_forms_are_rejected() {
        for bad in [
            &["fn", "get", "a"][..],
            &["fn", "get", "a/f@1"],
            &["invoke", "a/f@"],
            &["invoke", "a/f@0"],
            &["deploy", "a/f"],
            &["alias", "set", "a/f", "live", "0"],
            &["alias", "set", "a/f", "live", "1", "--canary", "2"],
            &[
                "alias", "set", "a/f", "live", "1", "--canary", "2", "--weight", "101",
            ],
            &["alias", "set", "a/f", "draft", "1"],
            &["logs", "a/f", "--limit", "0"],
            &["fn", "create", "a/f", "--env", "1X=y"],
            &["app", "create", "Shop"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse(&[
                "alias", "set", "a/f", "live", "1", "--canary", "2", "--weight", "10"
            ])
            .is_ok()
        );
        assert!(parse(&["invoke", "a/f@live", "--data", "@event.json", "-i"]).is_ok());
        assert!(parse(&["rollback", "a/f"]).is_ok());
    }
}
