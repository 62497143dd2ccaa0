//! `arcus deploy`: create-or-update a function, upload its code, publish a version
//! and point alias `live` at it.

use crate::commands::function::FnConfigArgs;
use crate::errors::Hinted;
use crate::opts::ClientOpts;
use crate::output::{outln, print_json};
use crate::target::FnRef;
use anyhow::Context as _;
use arcus_client::{Client, ClientError};
use arcus_core::ErrorCode;
use arcus_core::api::{PublishVersion, PutAlias};
use arcus_core::model::Function;
use arcus_core::names::Qualifier;
use std::path::PathBuf;

/// `arcus deploy <app>/<fn> <file.wasm|file.zip>`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The function, as <app>/<fn>; created if it does not exist (the app must exist).
    target: FnRef,
    /// The code: a WebAssembly component, or a zip for python3, node and custom functions.
    file: PathBuf,
    /// Description of the published version.
    #[arg(long)]
    description: Option<String>,
    /// Applied when creating the function, or PATCHed onto an existing one.
    #[command(flatten)]
    config: FnConfigArgs,
}

/// Runs `deploy`.
pub async fn run(args: DeployArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let client = &ctx.client;
    let FnRef { app, function } = &args.target;
    let code = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;

    if let Err(error) = client.get_app(app).await {
        if error.is_code(ErrorCode::AppNotFound) {
            let hint = format!("create it first with `arcus app create {app}`");
            return Err(Hinted { error, hint }.into());
        }
        return Err(error.into());
    }
    let created = ensure_function(client, &args).await?;
    if !ctx.json {
        let note = match (created, args.config.is_empty()) {
            (true, _) => "created",
            (false, false) => "updated",
            (false, true) => "found",
        };
        eprintln!("{note} function {app}/{function}");
    }

    let f = client.upload_code(app, function, code).await?;
    let body = PublishVersion {
        description: args.description.clone().unwrap_or_default(),
    };
    let version = client.publish_version(app, function, &body).await?;
    let live = PutAlias {
        version: version.version,
        canary: None,
    };
    let alias = client
        .put_alias(app, function, Qualifier::DEFAULT_ALIAS, &live)
        .await?;
    let url = client.function_url(app, function, None);

    if ctx.json {
        print_json(&serde_json::json!({
            "function": f,
            "version": version,
            "alias": alias,
            "url": url,
        }))?;
    } else {
        outln!("deployed {app}/{function} version {}", version.version);
        outln!("{url}");
    }
    Ok(())
}

/// Creates the function with the config flags, or PATCHes them onto the existing
/// one. Returns whether it was created.
async fn ensure_function(client: &Client, args: &DeployArgs) -> anyhow::Result<bool> {
    let FnRef { app, function } = &args.target;
    match client.get_function(app, function).await {
        Ok(_) => {
            update(client, args).await?;
            Ok(false)
        }
        Err(e) if e.is_code(ErrorCode::FunctionNotFound) => {
            match client
                .create_function(app, &args.config.to_create(function, None))
                .await
            {
                Ok(_) => Ok(true),
                // Created concurrently: treat like an existing function.
                Err(e) if e.is_code(ErrorCode::AlreadyExists) => {
                    update(client, args).await?;
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn update(client: &Client, args: &DeployArgs) -> Result<Option<Function>, ClientError> {
    if args.config.is_empty() {
        return Ok(None);
    }
    let FnRef { app, function } = &args.target;
    client
        .update_function(app, function, &args.config.to_update())
        .await
        .map(Some)
}
