//! `arcus versions` and `arcus publish`.

use crate::opts::ClientOpts;
use crate::output::{Table, or_dash, outln, print_json, print_json_list, short_sha, time};
use crate::target::FnRef;
use arcus_core::api::PublishVersion;

/// `arcus versions <app>/<fn>`.
#[derive(Debug, clap::Args)]
pub struct VersionsArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The function, as <app>/<fn>.
    target: FnRef,
}

/// `arcus publish <app>/<fn>`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The function, as <app>/<fn>.
    target: FnRef,
    /// Description of the version.
    #[arg(long)]
    description: Option<String>,
}

/// Lists the published versions, with the aliases pointing at each.
pub async fn list(args: VersionsArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let FnRef { app, function } = &args.target;
    let versions = ctx.client.list_versions(app, function).await?;
    if ctx.json {
        return print_json_list(&versions);
    }
    let aliases = ctx.client.list_aliases(app, function).await?;
    let mut table = Table::new(&[
        "VERSION",
        "ALIASES",
        "CREATED",
        "SHA256",
        "MEMORY",
        "TIMEOUT",
        "DESCRIPTION",
    ]);
    for v in &versions {
        let names: Vec<String> = aliases
            .iter()
            .filter_map(|a| {
                let t = a.target;
                if t.version == v.version {
                    Some(a.name.clone())
                } else if t.canary.is_some_and(|c| c.version == v.version) {
                    Some(format!("{} (canary)", a.name))
                } else {
                    None
                }
            })
            .collect();
        table.row(vec![
            v.version.to_string(),
            or_dash(&names.join(", ")),
            time(v.created_at),
            short_sha(&v.sha256).to_string(),
            format!("{} MB", v.config.memory_mb),
            format!("{} ms", v.config.timeout_ms),
            or_dash(&v.description),
        ]);
    }
    table.print()
}

/// Publishes the draft as a new version.
pub async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let FnRef { app, function } = &args.target;
    let body = PublishVersion {
        description: args.description.unwrap_or_default(),
    };
    let version = ctx.client.publish_version(app, function, &body).await?;
    if ctx.json {
        print_json(&version)?;
    } else {
        outln!("published {app}/{function} version {}", version.version);
    }
    Ok(())
}
