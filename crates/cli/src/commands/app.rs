//! `arcus app create|list|quota|delete`.

use crate::opts::ClientOpts;
use crate::output::{Table, or_dash, outln, print_json, print_json_list, time};
use crate::target::parse_app;
use arcus_core::api::{CreateApp, UpdateApp};
use arcus_core::scaling::AppQuotas;

/// `arcus app ...`.
#[derive(Debug, clap::Args)]
pub struct AppCmd {
    #[command(flatten)]
    opts: ClientOpts,
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AppCommand {
    /// Create an app.
    Create {
        /// App name, [a-z0-9][a-z0-9-]{0,62}.
        #[arg(value_parser = parse_app)]
        name: String,
        /// Free-text description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List apps.
    List,
    /// Set an app's quotas: what its functions may run at once (flags left out mean
    /// unlimited) and how long its logs and records are kept (left out: the defaults,
    /// 7 days and 1024 MiB).
    Quota {
        /// App name.
        #[arg(value_parser = parse_app)]
        name: String,
        /// Most instances running at once across the app's functions.
        #[arg(long)]
        max_instances: Option<u32>,
        /// Most memory (MiB) of the instances running at once.
        #[arg(long)]
        max_memory_mb: Option<u32>,
        /// Days log lines and invocation records are kept.
        #[arg(long)]
        log_retention_days: Option<u32>,
        /// MiB of log messages kept (the oldest lines go first past it).
        #[arg(long)]
        log_retention_mb: Option<u32>,
        /// Requests per second the app's functions may receive together on a node.
        #[arg(long)]
        rate_limit_rps: Option<u32>,
        /// Requests the app's rate bucket holds (default: the rps).
        #[arg(long)]
        rate_limit_burst: Option<u32>,
    },
    /// Delete an app.
    Delete {
        /// App name.
        #[arg(value_parser = parse_app)]
        name: String,
        /// Also delete the app's functions (otherwise an app with functions is kept).
        #[arg(long)]
        force: bool,
    },
}

/// Runs an `app` subcommand.
pub async fn run(cmd: AppCmd) -> anyhow::Result<()> {
    let ctx = cmd.opts.connect()?;
    let client = &ctx.client;
    match cmd.command {
        AppCommand::Create { name, description } => {
            let body = CreateApp {
                name,
                description: description.unwrap_or_default(),
            };
            let app = client.create_app(&body).await?;
            if ctx.json {
                print_json(&app)?;
            } else {
                outln!("created app {}", app.name);
            }
        }
        AppCommand::List => {
            let apps = client.list_apps().await?;
            if ctx.json {
                return print_json_list(&apps);
            }
            let mut table = Table::new(&["NAME", "CREATED", "DESCRIPTION"]);
            for app in &apps {
                table.row(vec![
                    app.name.clone(),
                    time(app.created_at),
                    or_dash(&app.description),
                ]);
            }
            table.print()?;
        }
        AppCommand::Quota {
            name,
            max_instances,
            max_memory_mb,
            log_retention_days,
            log_retention_mb,
            rate_limit_rps,
            rate_limit_burst,
        } => {
            let body = UpdateApp {
                description: None,
                quotas: Some(AppQuotas {
                    max_instances,
                    max_memory_mb,
                    log_retention_days,
                    log_retention_mb,
                    rate_limit_rps,
                    rate_limit_burst,
                }),
            };
            let app = client.update_app(&name, &body).await?;
            if ctx.json {
                print_json(&app)?;
            } else {
                let show =
                    |v: Option<u32>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
                outln!(
                    "app {}: max_instances {}, max_memory_mb {}, log retention {} days, {} MiB",
                    app.name,
                    show(app.quotas.max_instances),
                    show(app.quotas.max_memory_mb),
                    app.quotas.retention_days(),
                    app.quotas.retention_bytes() >> 20
                );
            }
        }
        AppCommand::Delete { name, force } => {
            client.delete_app(&name, force).await?;
            if !ctx.json {
                outln!("deleted app {name}");
            }
        }
    }
    Ok(())
}
