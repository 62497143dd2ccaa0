//! `arcus access-key create|list|delete`: app-scoped keys for the Lambda-compatible API
//! (boto3, the AWS CLI). The secret is printed once, at creation.

use crate::opts::ClientOpts;
use crate::output::{Table, or_dash, outln, print_json, print_json_list, time};
use arcus_core::access_keys::CreateAccessKey;

/// `arcus access-key ...`.
#[derive(Debug, clap::Args)]
pub struct AccessKeyCmd {
    #[command(flatten)]
    opts: ClientOpts,
    #[command(subcommand)]
    command: AccessKeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AccessKeyCommand {
    /// Create an access key of an app and print its id and secret (only now).
    Create {
        /// The app whose functions the key may invoke.
        app: String,
        /// What the key is for.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List access keys (never their secrets).
    List {
        /// Only this app's keys.
        #[arg(long)]
        app: Option<String>,
    },
    /// Delete an access key at once.
    Delete {
        /// The key's id (`ARC…`).
        id: String,
    },
}

/// Runs an `access-key` subcommand.
pub async fn run(cmd: AccessKeyCmd) -> anyhow::Result<()> {
    let ctx = cmd.opts.connect()?;
    let client = &ctx.client;
    match cmd.command {
        AccessKeyCommand::Create { app, name } => {
            let created = client
                .create_access_key(&CreateAccessKey { app, name })
                .await?;
            if ctx.json {
                print_json(&created)?;
            } else {
                outln!("AWS_ACCESS_KEY_ID={}", created.view.id);
                outln!("AWS_SECRET_ACCESS_KEY={}", created.secret_access_key);
                eprintln!(
                    "access key {} of app {} created; this is the only time its secret is shown",
                    created.view.id, created.view.app
                );
            }
        }
        AccessKeyCommand::List { app } => {
            let keys = client.list_access_keys(app.as_deref()).await?;
            if ctx.json {
                return print_json_list(&keys);
            }
            let mut table = Table::new(&["ID", "APP", "NAME", "CREATED"]);
            for k in &keys {
                table.row(vec![
                    k.id.clone(),
                    k.app.clone(),
                    or_dash(&k.name),
                    time(k.created_at),
                ]);
            }
            table.print()?;
        }
        AccessKeyCommand::Delete { id } => {
            client.delete_access_key(&id).await?;
            if !ctx.json {
                outln!("deleted access key {id}");
            }
        }
    }
    Ok(())
}
