//! `arcus trigger create|list|get|enable|disable|delete`.

use crate::opts::ClientOpts;
use crate::output::{Table, outln, print_json, print_json_list, time};
use crate::target::FnRef;
use anyhow::{Context, bail};
use arcus_core::trigger::{
    CreateTrigger, CronConfig, MissedTicks, TriggerConfig, TriggerState, TriggerView,
    UpdateTrigger, WebhookConfig,
};

/// `arcus trigger ...`.
#[derive(Debug, clap::Args)]
pub struct TriggerCmd {
    #[command(flatten)]
    opts: ClientOpts,
    #[command(subcommand)]
    command: TriggerCommand,
}

/// `--missed` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Missed {
    /// Drop ticks missed while the node was down.
    Skip,
    /// Fire once for them at start-up.
    FireOnce,
}

#[derive(Debug, clap::Subcommand)]
enum TriggerCommand {
    /// Create a trigger: a cron schedule (--cron), a webhook (--webhook) or any type
    /// from its JSON config (--config).
    Create {
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Trigger name, unique per function.
        name: String,
        /// A cron schedule: 5 standard fields or 6–7 with seconds first.
        #[arg(long, conflicts_with_all = ["webhook", "config"])]
        cron: Option<String>,
        /// The schedule's IANA time zone (default UTC).
        #[arg(long, requires = "cron")]
        tz: Option<String>,
        /// What to do about ticks missed while the node was down.
        #[arg(long, value_enum, requires = "cron")]
        missed: Option<Missed>,
        /// JSON given to the function as `payload` in each cron event.
        #[arg(long, requires = "cron")]
        payload: Option<String>,
        /// A webhook accepting CloudEvents at /hooks/<id>.
        #[arg(long, conflicts_with = "config")]
        webhook: bool,
        /// The webhook's HMAC-SHA256 secret (requests must be signed).
        #[arg(long, requires = "webhook")]
        secret: Option<String>,
        /// The full config as JSON, e.g. '{"type":"nats","url":"nats://h:4222",...}'.
        #[arg(long)]
        config: Option<String>,
        /// Qualifier the events go to (default live).
        #[arg(long)]
        qualifier: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List a function's triggers with their status.
    List {
        /// The function, as <app>/<fn>.
        target: FnRef,
    },
    /// Show a trigger and its status.
    Get {
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Trigger name.
        name: String,
    },
    /// Enable a trigger.
    Enable {
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Trigger name.
        name: String,
    },
    /// Disable a trigger (it delivers nothing until enabled).
    Disable {
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Trigger name.
        name: String,
    },
    /// Delete a trigger.
    Delete {
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Trigger name.
        name: String,
    },
}

fn state(v: &TriggerView) -> &'static str {
    match v.status.state {
        TriggerState::Connected => "connected",
        TriggerState::Connecting => "connecting",
        TriggerState::Disabled => "disabled",
    }
}

fn print_view(v: &TriggerView) -> anyhow::Result<()> {
    let t = &v.trigger;
    outln!("name:       {}", t.name);
    outln!("id:         {}", t.id);
    outln!("type:       {}", t.config.kind().as_str());
    outln!("qualifier:  {}", t.qualifier);
    outln!("state:      {}", state(v));
    if let Some(e) = &v.status.last_error {
        outln!("last error: {e}");
    }
    if let Some(n) = v.status.next_fire_at {
        outln!("next fire:  {}", time(n));
    }
    if let Some(url) = &v.url {
        outln!("url:        {url}");
    }
    outln!(
        "delivered:  {}  failed: {}",
        v.status.delivered,
        v.status.failed
    );
    outln!("config:     {}", serde_json::to_string(&t.config)?);
    Ok(())
}

/// Builds the config of `trigger create` from its flags.
#[allow(clippy::too_many_arguments)]
fn config_of(
    cron: Option<String>,
    tz: Option<String>,
    missed: Option<Missed>,
    payload: Option<String>,
    webhook: bool,
    secret: Option<String>,
    config: Option<String>,
) -> anyhow::Result<TriggerConfig> {
    if let Some(schedule) = cron {
        let payload = payload
            .map(|p| serde_json::from_str(&p).context("--payload is not valid JSON"))
            .transpose()?;
        return Ok(TriggerConfig::Cron(CronConfig {
            schedule,
            timezone: tz.unwrap_or_else(|| "UTC".into()),
            missed: match missed {
                Some(Missed::FireOnce) => MissedTicks::FireOnce,
                Some(Missed::Skip) | None => MissedTicks::Skip,
            },
            payload,
        }));
    }
    if webhook {
        return Ok(TriggerConfig::Webhook(WebhookConfig { secret }));
    }
    match config {
        Some(c) => serde_json::from_str(&c).context("--config is not a valid trigger config"),
        None => bail!("give --cron, --webhook or --config"),
    }
}

/// Runs a `trigger` subcommand.
pub async fn run(cmd: TriggerCmd) -> anyhow::Result<()> {
    let ctx = cmd.opts.connect()?;
    let client = &ctx.client;
    let view = match cmd.command {
        TriggerCommand::Create {
            target,
            name,
            cron,
            tz,
            missed,
            payload,
            webhook,
            secret,
            config,
            qualifier,
            disabled,
        } => {
            let body = CreateTrigger {
                name,
                config: config_of(cron, tz, missed, payload, webhook, secret, config)?,
                qualifier,
                enabled: disabled.then_some(false),
            };
            client
                .create_trigger(&target.app, &target.function, &body)
                .await?
        }
        TriggerCommand::List { target } => {
            let items = client.list_triggers(&target.app, &target.function).await?;
            if ctx.json {
                return print_json_list(&items);
            }
            let mut table = Table::new(&[
                "NAME",
                "TYPE",
                "QUALIFIER",
                "STATE",
                "DELIVERED",
                "FAILED",
                "UPDATED",
            ]);
            for v in &items {
                table.row(vec![
                    v.trigger.name.clone(),
                    v.trigger.config.kind().as_str().to_string(),
                    v.trigger.qualifier.clone(),
                    state(v).to_string(),
                    v.status.delivered.to_string(),
                    v.status.failed.to_string(),
                    time(v.trigger.updated_at),
                ]);
            }
            return table.print();
        }
        TriggerCommand::Get { target, name } => {
            client
                .get_trigger(&target.app, &target.function, &name)
                .await?
        }
        TriggerCommand::Enable { target, name } => {
            let body = UpdateTrigger {
                enabled: Some(true),
                ..Default::default()
            };
            client
                .update_trigger(&target.app, &target.function, &name, &body)
                .await?
        }
        TriggerCommand::Disable { target, name } => {
            let body = UpdateTrigger {
                enabled: Some(false),
                ..Default::default()
            };
            client
                .update_trigger(&target.app, &target.function, &name, &body)
                .await?
        }
        TriggerCommand::Delete { target, name } => {
            client
                .delete_trigger(&target.app, &target.function, &name)
                .await?;
            if !ctx.json {
                outln!("deleted trigger {name} of {target}");
            }
            return Ok(());
        }
    };
    if ctx.json {
        print_json(&view)
    } else {
        print_view(&view)
    }
}
