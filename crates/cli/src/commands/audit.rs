//! `arcus audit`: the audit log of control-plane changes, newest first.

use crate::opts::ClientOpts;
use crate::output::{Table, outln, print_json, time};
use arcus_client::AuditFilter;

/// `arcus audit [--app A] [--since T] [--until T] [--limit N] [--cursor C]`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// Only changes to this app (needed unless the token is admin).
    #[arg(long)]
    app: Option<String>,
    /// Changes at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Changes before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Continue after a previous page (its `next cursor`).
    #[arg(long)]
    cursor: Option<String>,
    /// Entries per page (1–1000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Runs `arcus audit`.
pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let filter = AuditFilter {
        app: args.app,
        since: args.since,
        until: args.until,
        cursor: args.cursor,
        limit: Some(args.limit),
    };
    let page = ctx.client.audit(&filter).await?;
    if ctx.json {
        return print_json(&page);
    }
    let mut table = Table::new(&[
        "TIME", "ACTOR", "METHOD", "ROUTE", "TARGET", "STATUS", "FROM",
    ]);
    for e in &page.items {
        let target = [
            e.app.as_deref(),
            e.function.as_deref(),
            e.resource.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
        table.row(vec![
            time(e.at),
            e.actor.clone(),
            e.method.clone(),
            e.route.clone(),
            if target.is_empty() {
                "-".into()
            } else {
                target
            },
            e.status.to_string(),
            e.client_ip.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table.print()?;
    if let Some(c) = page.next_cursor {
        outln!("next cursor: {c}");
    }
    Ok(())
}
