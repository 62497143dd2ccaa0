//! `arcus secret set|list|delete`: an app's secrets. A value is read from `--value` or,
//! without it, from stdin (so it stays out of shell history and process lists); it is
//! never printed.

use crate::opts::ClientOpts;
use crate::output::{Table, outln, print_json, print_json_list, time};
use crate::target::parse_app;
use anyhow::Context;
use std::io::Read;

/// Largest value read from stdin: one byte over the server's limit, so an oversized
/// value gets the server's clear error instead of being cut.
const STDIN_LIMIT: u64 = arcus_core::limits::MAX_SECRET_VALUE_BYTES as u64 + 1;

/// `arcus secret ...`.
#[derive(Debug, clap::Args)]
pub struct SecretCmd {
    #[command(flatten)]
    opts: ClientOpts,
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SecretCommand {
    /// Create or replace a secret (value from --value, else stdin; one trailing newline
    /// of stdin is dropped).
    Set {
        /// App name.
        #[arg(value_parser = parse_app)]
        app: String,
        /// Secret name, [A-Za-z_][A-Za-z0-9_-]{0,127}.
        name: String,
        /// The value (prefer stdin: command lines are visible to other users).
        #[arg(long)]
        value: Option<String>,
    },
    /// List an app's secrets (names and times; values are never shown).
    List {
        /// App name.
        #[arg(value_parser = parse_app)]
        app: String,
    },
    /// Delete a secret.
    Delete {
        /// App name.
        #[arg(value_parser = parse_app)]
        app: String,
        /// Secret name.
        name: String,
    },
}

/// Reads a value from stdin, dropping one trailing `\n` (or `\r\n`).
fn read_stdin() -> anyhow::Result<String> {
    let mut value = String::new();
    std::io::stdin()
        .take(STDIN_LIMIT)
        .read_to_string(&mut value)
        .context("cannot read the secret value from stdin (it must be UTF-8)")?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}

/// Runs a `secret` subcommand.
pub async fn run(cmd: SecretCmd) -> anyhow::Result<()> {
    let ctx = cmd.opts.connect()?;
    let client = &ctx.client;
    match cmd.command {
        SecretCommand::Set { app, name, value } => {
            let value = match value {
                Some(v) => v,
                None => read_stdin()?,
            };
            let info = client.put_secret(&app, &name, &value).await?;
            if ctx.json {
                print_json(&info)?;
            } else {
                outln!("set secret {} of app {app}", info.name);
            }
        }
        SecretCommand::List { app } => {
            let secrets = client.list_secrets(&app).await?;
            if ctx.json {
                return print_json_list(&secrets);
            }
            let mut table = Table::new(&["NAME", "CREATED", "UPDATED"]);
            for s in &secrets {
                table.row(vec![s.name.clone(), time(s.created_at), time(s.updated_at)]);
            }
            table.print()?;
        }
        SecretCommand::Delete { app, name } => {
            client.delete_secret(&app, &name).await?;
            if !ctx.json {
                outln!("deleted secret {name} of app {app}");
            }
        }
    }
    Ok(())
}
