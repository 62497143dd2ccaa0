//! `arcus invoke`: call a function through the API and print what it answered.

use crate::opts::ClientOpts;
use crate::output::print_json;
use crate::target::Target;
use anyhow::Context as _;
use arcus_core::api::InvokeResult;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::process::ExitCode;

/// `arcus invoke <app>/<fn>[@qualifier]`.
#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The function, as <app>/<fn>[@qualifier]; the qualifier is a version number, an
    /// alias or `draft`. Without one the server's default (alias `live`) runs.
    target: Target,
    /// The event: JSON text, @FILE to read it from a file, or @- to read stdin
    /// [default: {}].
    #[arg(long, short = 'd', value_name = "JSON|@FILE")]
    data: Option<String>,
    /// Also print the HTTP status, invocation id and version to stderr.
    #[arg(long, short = 'i')]
    include: bool,
    /// Queue the event and print its invocation id instead of waiting for the response
    /// (see `arcus invocation <id>`).
    #[arg(long = "async")]
    is_async: bool,
    /// With --async: repeats with the same key within 24 h return the first id.
    #[arg(long, value_name = "KEY", requires = "is_async")]
    idempotency_key: Option<String>,
}

/// Runs `invoke`: the body goes to stdout; exits 1 when the status is 4xx or 5xx.
/// With `--json`, prints `{invocation_id, version, status, body}` instead.
pub async fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let event = read_event(args.data.as_deref())?;
    let ctx = args.opts.connect()?;
    let Target {
        function: f,
        qualifier,
    } = &args.target;
    let qualifier = qualifier.as_ref().map(ToString::to_string);
    if args.is_async {
        let id = ctx
            .client
            .invoke_async(
                &f.app,
                &f.function,
                qualifier.as_deref(),
                event,
                args.idempotency_key.as_deref(),
            )
            .await?;
        if ctx.json {
            print_json(&serde_json::json!({ "invocation_id": id }))?;
        } else {
            println!("{id}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let resp = ctx
        .client
        .invoke(&f.app, &f.function, qualifier.as_deref(), event)
        .await?;

    if args.include {
        eprintln!("status: {}", resp.status);
        eprintln!(
            "invocation-id: {}",
            resp.invocation_id.as_deref().unwrap_or("-")
        );
        let version = resp.version.map_or("draft".to_string(), |v| v.to_string());
        eprintln!("version: {version}");
    }
    if ctx.json {
        let body = serde_json::from_slice(&resp.body)
            .unwrap_or_else(|_| serde_json::Value::String(resp.text().into_owned()));
        print_json(&InvokeResult {
            invocation_id: resp.invocation_id.clone().unwrap_or_default(),
            version: resp.version,
            status: resp.status,
            body,
        })?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(&resp.body)?;
        if out.is_terminal() && !resp.body.is_empty() && !resp.body.ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    Ok(if resp.status >= 400 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The event bytes of `--data`, checked to be JSON.
fn read_event(data: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let bytes = match data {
        None => b"{}".to_vec(),
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read the event from stdin")?;
            buf
        }
        Some(s) => match s.strip_prefix('@') {
            Some(path) => std::fs::read(path).with_context(|| format!("cannot read {path}"))?,
            None => s.as_bytes().to_vec(),
        },
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .context("the event (--data) is not valid JSON")?;
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events() {
        assert_eq!(read_event(None).unwrap(), b"{}");
        assert_eq!(read_event(Some(r#"{"a":1}"#)).unwrap(), br#"{"a":1}"#);
        assert!(read_event(Some("{nope")).is_err());
        assert!(read_event(Some("@/nonexistent/event.json")).is_err());
        let path = std::env::temp_dir().join(format!("arcus-event-{}.json", std::process::id()));
        std::fs::write(&path, "[1, 2]").unwrap();
        let data = format!("@{}", path.display());
        assert_eq!(read_event(Some(&data)).unwrap(), b"[1, 2]");
        std::fs::remove_file(&path).unwrap();
    }
}
