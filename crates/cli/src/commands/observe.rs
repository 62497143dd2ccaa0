//! `arcus logs`.

use crate::opts::ClientOpts;
use crate::output::{outln, print_json_list, time_ms};
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
