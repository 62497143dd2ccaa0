//! `arcus fn create|list|get|delete`, and the execution-config flags shared with
//! `arcus deploy`.

use crate::opts::ClientOpts;
use crate::output::{Table, or_dash, outln, print_json, print_json_list, short_sha, time};
use crate::target::{FnRef, parse_app, parse_env};
use arcus_core::api::{CreateFunction, UpdateFunction};
use arcus_core::model::Function;
use arcus_core::model::{FunctionAuth, Network, Runtime};
use arcus_core::scaling::Scaling;
use std::collections::BTreeMap;

/// Execution-config flags of `fn create` and `deploy`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FnConfigArgs {
    /// Runtime of a new function: wasm, python3, node or custom [server default: wasm].
    #[arg(long, value_parser = parse_runtime)]
    pub runtime: Option<Runtime>,

    /// Handler: `module.function` (python3) or `file.export` (node).
    #[arg(long)]
    pub handler: Option<String>,

    /// Outbound network of a process function: none or outbound [server default: none].
    #[arg(long, value_parser = parse_network)]
    pub network: Option<Network>,

    /// Memory limit in MiB (wasm 16–4096, processes 64–10240) [server default: 128].
    #[arg(long, value_name = "MB")]
    pub memory: Option<u32>,

    /// Timeout of one invocation in milliseconds (max 900000) [server default: 30000].
    #[arg(long, value_name = "N")]
    pub timeout_ms: Option<u64>,

    /// Environment variable; repeatable. When given, replaces the whole environment.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Environment variable set from one of the app's secrets (`arcus secret set`);
    /// repeatable. When given, replaces all secret references.
    #[arg(long = "secret", value_name = "VAR=SECRET", value_parser = parse_env)]
    pub secrets: Vec<(String, String)>,

    /// Host or host:port the function may call over HTTP; repeatable. When given,
    /// replaces the whole list.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,

    /// Who may call the function's /fn route: public or token [server default: public].
    #[arg(long, value_parser = parse_auth)]
    pub auth: Option<FunctionAuth>,
}

impl FnConfigArgs {
    /// Whether no flag was given.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.runtime.is_none()
            && self.handler.is_none()
            && self.network.is_none()
            && self.timeout_ms.is_none()
            && self.env.is_empty()
            && self.secrets.is_empty()
            && self.allow_hosts.is_empty()
            && self.auth.is_none()
    }

    fn env_map(&self) -> Option<BTreeMap<String, String>> {
        (!self.env.is_empty()).then(|| self.env.iter().cloned().collect())
    }

    fn secret_map(&self) -> Option<BTreeMap<String, String>> {
        (!self.secrets.is_empty()).then(|| self.secrets.iter().cloned().collect())
    }

    fn hosts(&self) -> Option<Vec<String>> {
        (!self.allow_hosts.is_empty()).then(|| self.allow_hosts.clone())
    }

    /// The body creating function `name` with these flags.
    pub fn to_create(&self, name: &str, description: Option<String>) -> CreateFunction {
        CreateFunction {
            name: name.to_string(),
            runtime: self.runtime,
            handler: self.handler.clone(),
            network: self.network,
            memory_mb: self.memory,
            timeout_ms: self.timeout_ms,
            env: self.env_map(),
            secrets: self.secret_map(),
            allowed_hosts: self.hosts(),
            auth: self.auth,
            description,
            ..Default::default()
        }
    }

    /// The body changing exactly the given flags.
    pub fn to_update(&self) -> UpdateFunction {
        UpdateFunction {
            handler: self.handler.clone(),
            network: self.network,
            memory_mb: self.memory,
            timeout_ms: self.timeout_ms,
            env: self.env_map(),
            secrets: self.secret_map(),
            allowed_hosts: self.hosts(),
            auth: self.auth,
            ..Default::default()
        }
    }
}

fn parse_runtime(s: &str) -> Result<Runtime, String> {
    Runtime::parse(s).ok_or_else(|| format!("unknown runtime {s:?} (wasm, python3, node, custom)"))
}

fn parse_auth(s: &str) -> Result<FunctionAuth, String> {
    match s {
        "public" => Ok(FunctionAuth::Public),
        "token" => Ok(FunctionAuth::Token),
        _ => Err(format!("unknown auth {s:?} (public, token)")),
    }
}

fn parse_network(s: &str) -> Result<Network, String> {
    match s {
        "none" => Ok(Network::None),
        "outbound" => Ok(Network::Outbound),
        _ => Err(format!("unknown network {s:?} (none, outbound)")),
    }
}

/// `arcus fn ...`.
#[derive(Debug, clap::Args)]
pub struct FnCmd {
    #[command(flatten)]
    opts: ClientOpts,
    #[command(subcommand)]
    command: FnCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FnCommand {
    /// Create a function (without code; see `arcus deploy`).
    Create {
        /// The function, as <app>/<fn>.
        target: FnRef,
        #[command(flatten)]
        config: FnConfigArgs,
        /// Free-text description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the functions of an app.
    List {
        /// App name.
        #[arg(value_parser = parse_app)]
        app: String,
    },
    /// Show a function's draft configuration.
    Get {
        /// The function, as <app>/<fn>.
        target: FnRef,
    },
    /// Delete a function with its versions and aliases.
    Delete {
        /// The function, as <app>/<fn>.
        target: FnRef,
        /// Also cancel its queued async invocations.
        #[arg(long)]
        force: bool,
    },
    /// Change a function's settings; flags not given keep their current values.
    Update {
        /// The function, as <app>/<fn>.
        target: FnRef,
        #[command(flatten)]
        config: FnConfigArgs,
    },
    /// Change how a function scales; flags not given keep their current values.
    Scale {
        /// The function, as <app>/<fn>.
        target: FnRef,
        #[command(flatten)]
        flags: ScaleArgs,
    },
}

/// Flags of `arcus fn scale`.
#[derive(Debug, Clone, Default, clap::Args)]
struct ScaleArgs {
    /// Instances kept warm without traffic (pre-warmed at publish) [default: 0].
    #[arg(long)]
    min_instances: Option<u32>,
    /// Most instances of the function [default: 100].
    #[arg(long)]
    max_instances: Option<u32>,
    /// Concurrent requests per wasm instance [default: 100; processes: 1].
    #[arg(long)]
    concurrency: Option<u32>,
    /// Fraction of the concurrency the autoscaler aims at [default: 0.7].
    #[arg(long)]
    target_utilization: Option<f64>,
    /// Idle seconds before an instance is reclaimed [default: 300].
    #[arg(long)]
    keep_alive_s: Option<u32>,
    /// How long a request may wait for capacity, in ms [default: 10000].
    #[arg(long)]
    queue_timeout_ms: Option<u32>,
}

impl ScaleArgs {
    fn apply(&self, s: &mut Scaling) {
        s.min_instances = self.min_instances.unwrap_or(s.min_instances);
        s.max_instances = self.max_instances.unwrap_or(s.max_instances);
        s.concurrency_per_instance = self.concurrency.or(s.concurrency_per_instance);
        s.target_utilization = self.target_utilization.unwrap_or(s.target_utilization);
        s.keep_alive_s = self.keep_alive_s.unwrap_or(s.keep_alive_s);
        s.queue_timeout_ms = self.queue_timeout_ms.unwrap_or(s.queue_timeout_ms);
    }
}

/// Runs an `fn` subcommand.
pub async fn run(cmd: FnCmd) -> anyhow::Result<()> {
    let ctx = cmd.opts.connect()?;
    let client = &ctx.client;
    match cmd.command {
        FnCommand::Create {
            target,
            config,
            description,
        } => {
            let body = config.to_create(&target.function, description);
            let f = client.create_function(&target.app, &body).await?;
            if ctx.json {
                print_json(&f)?;
            } else {
                outln!("created function {}/{}", f.app, f.name);
            }
        }
        FnCommand::Update { target, config } => {
            let f = client
                .update_function(&target.app, &target.function, &config.to_update())
                .await?;
            if ctx.json {
                print_json(&f)?;
            } else {
                outln!("updated function {}/{}", f.app, f.name);
            }
        }
        FnCommand::List { app } => {
            let functions = client.list_functions(&app).await?;
            if ctx.json {
                return print_json_list(&functions);
            }
            let mut table = Table::new(&[
                "NAME",
                "MEMORY",
                "TIMEOUT",
                "CODE",
                "UPDATED",
                "DESCRIPTION",
            ]);
            for f in &functions {
                table.row(vec![
                    f.name.clone(),
                    format!("{} MB", f.config.memory_mb),
                    format!("{} ms", f.config.timeout_ms),
                    f.code
                        .as_ref()
                        .map_or("-".to_string(), |c| short_sha(&c.sha256).to_string()),
                    time(f.updated_at),
                    or_dash(&f.meta.description),
                ]);
            }
            table.print()?;
        }
        FnCommand::Scale { target, flags } => {
            let f = client.get_function(&target.app, &target.function).await?;
            let mut scaling = f.meta.scaling;
            flags.apply(&mut scaling);
            let body = UpdateFunction {
                scaling: Some(scaling),
                ..Default::default()
            };
            let f = client
                .update_function(&target.app, &target.function, &body)
                .await?;
            if ctx.json {
                print_json(&f.meta.scaling)?;
            } else {
                let s = f.meta.scaling;
                outln!(
                    "{}/{}: min {} max {} keep-alive {} s queue {} ms",
                    f.app,
                    f.name,
                    s.min_instances,
                    s.max_instances,
                    s.keep_alive_s,
                    s.queue_timeout_ms
                );
            }
        }
        FnCommand::Get { target } => {
            let f = client.get_function(&target.app, &target.function).await?;
            if ctx.json {
                print_json(&f)?;
            } else {
                describe(&f)?;
            }
        }
        FnCommand::Delete { target, force } => {
            client
                .delete_function(&target.app, &target.function, force)
                .await?;
            if !ctx.json {
                outln!("deleted function {target}");
            }
        }
    }
    Ok(())
}

/// Prints a function as `key  value` lines.
fn describe(f: &Function) -> anyhow::Result<()> {
    let env = f
        .config
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>();
    let secrets = f
        .config
        .secrets
        .iter()
        .map(|(var, secret)| format!("{var}=secret:{secret}"))
        .collect::<Vec<_>>();
    let code = match &f.code {
        Some(c) => format!("sha256:{} ({} bytes)", c.sha256, c.size),
        None => "none".to_string(),
    };
    let mut t = Table::without_header();
    for (key, value) in [
        ("function", format!("{}/{}", f.app, f.name)),
        ("id", f.id.clone()),
        ("runtime", f.config.runtime.as_str().to_string()),
        ("memory", format!("{} MB", f.config.memory_mb)),
        ("timeout", format!("{} ms", f.config.timeout_ms)),
        ("env", or_dash(&env.join(" "))),
        ("secrets", or_dash(&secrets.join(" "))),
        ("allowed hosts", or_dash(&f.config.allowed_hosts.join(" "))),
        (
            "auth",
            match f.meta.auth {
                FunctionAuth::Public => "public".to_string(),
                FunctionAuth::Token => "token".to_string(),
            },
        ),
        ("code", code),
        ("description", or_dash(&f.meta.description)),
        ("tags", or_dash(&f.meta.tags.join(" "))),
        ("created", time(f.created_at)),
        ("updated", time(f.updated_at)),
    ] {
        t.row(vec![format!("{key}:"), value]);
    }
    t.print()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        config: FnConfigArgs,
    }

    #[test]
    fn config_flags() {
        let p = Probe::try_parse_from([
            "x",
            "--memory",
            "256",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--allow-host",
            "h:443",
        ])
        .unwrap();
        assert!(!p.config.is_empty());
        let update = p.config.to_update();
        assert_eq!(update.memory_mb, Some(256));
        assert_eq!(update.timeout_ms, None);
        let env = update.env.unwrap();
        assert_eq!(env.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(update.allowed_hosts, Some(vec!["h:443".to_string()]));
        let create = p.config.to_create("f", None);
        assert_eq!(create.name, "f");
        assert_eq!(create.memory_mb, Some(256));

        let none = Probe::try_parse_from(["x"]).unwrap();
        assert!(none.config.is_empty());
        let update = serde_json::to_string(&none.config.to_update()).unwrap();
        assert_eq!(update, "{}");
        assert!(Probe::try_parse_from(["x", "--env", "NOEQUALS"]).is_err());
        assert!(Probe::try_parse_from(["x", "--memory", "lots"]).is_err());
    }

    #[test]
    fn secret_flags_map_variables_to_secret_names() {
        let p = Probe::try_parse_from(["x", "--secret", "DB_PASSWORD=db-pass"]).unwrap();
        assert!(!p.config.is_empty());
        let refs = p.config.to_create("f", None).secrets.unwrap();
        assert_eq!(refs["DB_PASSWORD"], "db-pass");
        assert_eq!(
            p.config.to_update().secrets.unwrap()["DB_PASSWORD"],
            "db-pass"
        );
        assert!(Probe::try_parse_from(["x", "--secret", "NOEQUALS"]).is_err());
    }
}
