//! `arcus token create|list|revoke`: scoped API tokens. The plain token is printed once,
//! at creation; it cannot be shown again.

use crate::opts::ClientOpts;
use crate::output::{Table, or_dash, outln, print_json, print_json_list, time};
use arcus_core::tokens::{CreateToken, Scope};

/// `arcus token ...`.
#[derive(Debug, clap::Args)]
pub struct TokenCmd {
    #[command(flatten)]
    opts: ClientOpts,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create a token and print it (only now).
    Create {
        /// A scope: admin, app:<app>:manage, app:<app>:invoke or
        /// function:<app>/<fn>:invoke; repeatable.
        #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        name: String,
        /// Lifetime: a number with s, m, h or d (e.g. 30d) [default: never expires].
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// List the tokens this token may manage (never their secrets).
    List,
    /// Revoke a token at once.
    Revoke {
        /// The token's id.
        id: String,
    },
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s).map_err(|e| e.message)
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs a `token` subcommand.
pub async fn run(cmd: TokenCmd) -> anyhow::Result<()> {
    let ctx = cmd.opts.connect()?;
    let client = &ctx.client;
    match cmd.command {
        TokenCommand::Create {
            scopes,
            name,
            expires_in,
        } => {
            let body = CreateToken {
                scopes,
                name,
                expires_in,
                expires_at: None,
            };
            let created = client.create_token(&body).await?;
            if ctx.json {
                print_json(&created)?;
            } else {
                outln!("{}", created.token);
                eprintln!(
                    "token {} ({}) created; this is the only time it is shown",
                    created.view.id,
                    scopes_text(&created.view.scopes)
                );
            }
        }
        TokenCommand::List => {
            let tokens = client.list_tokens().await?;
            if ctx.json {
                return print_json_list(&tokens);
            }
            let mut table =
                Table::new(&["ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED"]);
            for t in &tokens {
                table.row(vec![
                    t.id.clone(),
                    or_dash(&t.name),
                    scopes_text(&t.scopes),
                    time(t.created_at),
                    t.expires_at.map(time).unwrap_or_else(|| "-".into()),
                    t.last_used_at.map(time).unwrap_or_else(|| "-".into()),
                ]);
            }
            table.print()?;
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(&id).await?;
            if !ctx.json {
                outln!("revoked token {id}");
            }
        }
    }
    Ok(())
}
