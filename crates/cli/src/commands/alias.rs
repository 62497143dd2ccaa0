//! `arcus alias set|list|delete` and `arcus rollback`.

use crate::opts::ClientOpts;
use crate::output::{Table, alias_target, outln, print_json, print_json_list, time};
use crate::target::{FnRef, parse_alias};
use arcus_core::api::PutAlias;
use arcus_core::model::Canary;
use arcus_core::names::Qualifier;

/// `arcus alias ...`.
#[derive(Debug, clap::Args)]
pub struct AliasCmd {
    #[command(flatten)]
    opts: ClientOpts,
    #[command(subcommand)]
    command: AliasCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AliasCommand {
    /// Point an alias at a version, optionally with a weighted canary.
    Set {
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Alias name, e.g. live.
        #[arg(value_parser = parse_alias)]
        alias: String,
        /// The version receiving the traffic.
        #[arg(value_name = "VERSION", value_parser = clap::value_parser!(u32).range(1..))]
        number: u32,
        /// A second version receiving --weight percent of the traffic.
        #[arg(long, value_name = "VERSION", requires = "weight",
              value_parser = clap::value_parser!(u32).range(1..))]
        canary: Option<u32>,
        /// Percentage (0–100) of requests sent to the canary.
        #[arg(long, value_name = "PERCENT", requires = "canary",
              value_parser = clap::value_parser!(u8).range(0..=100))]
        weight: Option<u8>,
    },
    /// List a function's aliases.
    List {
        /// The function, as <app>/<fn>.
        target: FnRef,
    },
    /// Delete an alias.
    Delete {
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Alias name.
        #[arg(value_parser = parse_alias)]
        alias: String,
    },
}

/// `arcus rollback <app>/<fn>`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The function, as <app>/<fn>.
    target: FnRef,
    /// The alias to restore to its previous target.
    #[arg(long, default_value = Qualifier::DEFAULT_ALIAS, value_parser = parse_alias)]
    alias: String,
}

/// Runs an `alias` subcommand.
pub async fn run(cmd: AliasCmd) -> anyhow::Result<()> {
    let ctx = cmd.opts.connect()?;
    let client = &ctx.client;
    match cmd.command {
        AliasCommand::Set {
            target,
            alias,
            number,
            canary,
            weight,
        } => {
            let canary = canary
                .zip(weight)
                .map(|(version, weight)| Canary { version, weight });
            let body = PutAlias {
                version: number,
                canary,
            };
            let a = client
                .put_alias(&target.app, &target.function, &alias, &body)
                .await?;
            if ctx.json {
                print_json(&a)?;
            } else {
                outln!(
                    "alias {} of {target} -> version {}",
                    a.name,
                    alias_target(&a.target)
                );
            }
        }
        AliasCommand::List { target } => {
            let aliases = client.list_aliases(&target.app, &target.function).await?;
            if ctx.json {
                return print_json_list(&aliases);
            }
            let mut table = Table::new(&["ALIAS", "VERSION", "CANARY", "PREVIOUS", "UPDATED"]);
            for a in &aliases {
                table.row(vec![
                    a.name.clone(),
                    a.target.version.to_string(),
                    a.target.canary.map_or("-".to_string(), |c| {
                        format!("{} at {}%", c.version, c.weight)
                    }),
                    a.previous.as_ref().map_or("-".to_string(), alias_target),
                    time(a.updated_at),
                ]);
            }
            table.print()?;
        }
        AliasCommand::Delete { target, alias } => {
            client
                .delete_alias(&target.app, &target.function, &alias)
                .await?;
            if !ctx.json {
                outln!("deleted alias {alias} of {target}");
            }
        }
    }
    Ok(())
}

/// Runs `rollback`: the alias goes back to its previous target.
pub async fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let FnRef { app, function } = &args.target;
    // The target before the rollback, for the message: the answer's `previous` is what
    // a further rollback would restore, not what the alias pointed at until now.
    let before = if ctx.json {
        None
    } else {
        ctx.client
            .get_alias(app, function, &args.alias)
            .await
            .ok()
            .map(|a| a.target)
    };
    let a = ctx
        .client
        .rollback_alias(app, function, &args.alias)
        .await?;
    if ctx.json {
        print_json(&a)?;
    } else {
        let from = before.map(|t| format!(" (was {})", alias_target(&t)));
        outln!(
            "alias {} of {}/{} -> version {}{}",
            a.name,
            app,
            function,
            alias_target(&a.target),
            from.unwrap_or_default()
        );
    }
    Ok(())
}
