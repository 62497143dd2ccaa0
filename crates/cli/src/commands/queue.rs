//! `arcus invocation <id>` (where an invocation is) and `arcus queue` (a function's
//! async invocations, dead letters and their redrive).

use crate::opts::ClientOpts;
use crate::output::{Table, outln, print_json, print_json_list, time};
use crate::target::FnRef;
use arcus_core::events::{EventStatus, InvocationView};

/// `arcus invocation <id>`.
#[derive(Debug, clap::Args)]
pub struct InvocationArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The invocation id (as `invoke --async` printed it).
    id: String,
}

/// `arcus queue ...`.
#[derive(Debug, clap::Args)]
pub struct QueueCmd {
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(Debug, clap::Subcommand)]
enum QueueCommand {
    /// List a function's async invocations, newest first.
    List {
        #[command(flatten)]
        opts: ClientOpts,
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Only this status (queued, running, succeeded, failed, dead_lettered, cancelled).
        #[arg(long, value_parser = parse_status)]
        status: Option<EventStatus>,
        /// How many (1–1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Queue dead-lettered invocations again: one by id, or all.
    Redrive {
        #[command(flatten)]
        opts: ClientOpts,
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// The invocation to redrive [default: every dead-lettered one].
        #[arg(long)]
        id: Option<String>,
    },
}

fn parse_status(s: &str) -> Result<EventStatus, String> {
    EventStatus::parse(s).ok_or_else(|| format!("unknown status {s:?}"))
}

/// Prints one invocation's state.
pub async fn invocation(args: InvocationArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let v = ctx.client.get_invocation(&args.id).await?;
    if ctx.json {
        return print_json(&v);
    }
    outln!("id:        {}", v.id);
    outln!("function:  {}/{}@{}", v.app, v.function, v.qualifier);
    outln!("trigger:   {}", v.trigger.as_str());
    outln!("status:    {}", v.status.as_str());
    outln!("attempts:  {}", v.attempts);
    outln!("created:   {}", time(v.created_at));
    outln!("updated:   {}", time(v.updated_at));
    if let Some(next) = v.next_attempt_at {
        outln!("next try:  {}", time(next));
    }
    if let Some(code) = &v.error_code {
        outln!("error:     {code}");
    }
    if let Some(result) = &v.result {
        outln!("result:    {result}");
    }
    Ok(())
}

/// Runs a `queue` subcommand.
pub async fn run(cmd: QueueCmd) -> anyhow::Result<()> {
    match cmd.command {
        QueueCommand::List {
            opts,
            target,
            status,
            limit,
        } => {
            let ctx = opts.connect()?;
            let items = ctx
                .client
                .list_async_invocations(&target.app, &target.function, status, limit)
                .await?;
            if ctx.json {
                return print_json_list(&items);
            }
            table(&items).print()
        }
        QueueCommand::Redrive { opts, target, id } => {
            let ctx = opts.connect()?;
            let n = ctx
                .client
                .redrive(&target.app, &target.function, id.as_deref())
                .await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "redriven": n }));
            }
            outln!("redriven {n} invocation(s) of {target}");
            Ok(())
        }
    }
}

fn table(items: &[InvocationView]) -> Table {
    let mut t = Table::new(&["CREATED", "ID", "TRIGGER", "STATUS", "ATTEMPTS", "ERROR"]);
    for v in items {
        t.row(vec![
            time(v.created_at),
            v.id.clone(),
            v.trigger.as_str().to_string(),
            v.status.as_str().to_string(),
            v.attempts.to_string(),
            v.error_code.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    t
}
