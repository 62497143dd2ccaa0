//! `arcus logs` and `arcus invocations`.

use crate::opts::ClientOpts;
use crate::output::{Table, duration_us, outln, print_json_list, time, time_ms};
use crate::target::FnRef;

/// `arcus logs <app>/<fn>`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The function, as <app>/<fn>.
    target: FnRef,
    /// Only the lines of this invocation.
    #[arg(long, value_name = "ID")]
    invocation: Option<String>,
    /// How many of the newest lines to fetch (1–1000) [server default].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
}

/// `arcus invocations <app>/<fn>`.
#[derive(Debug, clap::Args)]
pub struct InvocationsArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The function, as <app>/<fn>.
    target: FnRef,
    /// How many of the newest invocations to fetch (1–1000) [server default].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
}

/// Prints log lines oldest first: `timestamp stream invocation-id message`.
/// With `--json`, prints the API's answer (newest first).
pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let FnRef { app, function } = &args.target;
    let lines = ctx
        .client
        .list_logs(app, function, args.limit, args.invocation.as_deref())
        .await?;
    if ctx.json {
        return print_json_list(&lines);
    }
    for line in lines.iter().rev() {
        outln!(
            "{} {:<8} {} {}",
            time_ms(line.timestamp),
            line.stream.as_str(),
            line.invocation_id,
            line.message
        );
    }
    Ok(())
}

/// Prints recent invocations, newest first.
pub async fn invocations(args: InvocationsArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let FnRef { app, function } = &args.target;
    let records = ctx
        .client
        .list_invocations(app, function, args.limit)
        .await?;
    if ctx.json {
        return print_json_list(&records);
    }
    let mut table = Table::new(&[
        "STARTED", "ID", "VERSION", "TRIGGER", "STATUS", "HTTP", "DURATION", "COLD", "ERROR",
    ]);
    for r in &records {
        table.row(vec![
            time(r.started_at),
            r.id.clone(),
            r.version.map_or("draft".to_string(), |v| v.to_string()),
            r.trigger.as_str().to_string(),
            r.status.as_str().to_string(),
            r.http_status.map_or("-".to_string(), |s| s.to_string()),
            duration_us(r.duration_us),
            if r.cold_start { "yes" } else { "no" }.to_string(),
            r.error_code.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    table.print()
}
