//! `arcus logs`: a page of an app's or function's log lines, or (`-f`) a live follow
//! that reconnects after a dropped connection and resumes after the last line seen.

use super::records::Scope;
use crate::opts::ClientOpts;
use crate::output::{outln, print_json, time_ms};
use arcus_client::{Client, ClientError, LogFilter};
use arcus_core::record::LogLine;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Lines shown before following, when `--limit` is not given.
const FOLLOW_BACKLOG: u32 = 20;
/// Wait before reconnecting a dropped follow (doubles up to [`MAX_RECONNECT_DELAY`]).
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Longest wait between two reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);

/// `arcus logs <app>[/<fn>]`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// An app, or one function as <app>/<fn>.
    target: Scope,
    /// Keep printing new lines as they are written (reconnects and resumes by itself).
    #[arg(short, long)]
    follow: bool,
    /// Only the lines of this invocation.
    #[arg(long, value_name = "ID")]
    invocation: Option<String>,
    /// Only this stream: stdout, stderr or platform.
    #[arg(long)]
    stream: Option<String>,
    /// Only lines containing this text (case-sensitive).
    #[arg(long, visible_alias = "text", value_name = "TEXT")]
    grep: Option<String>,
    /// Only lines captured at or after: an RFC 3339 time, or an age like 30s, 15m, 2h, 7d.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<String>,
    /// Only lines captured before: an RFC 3339 time, or an age like 30s, 15m, 2h, 7d.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<String>,
    /// How many of the newest lines to fetch (1–1000) [server default; 20 before -f].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
}

/// An RFC 3339 time as given, or `<n>s|m|h|d` ago as RFC 3339.
fn parse_time(s: &str) -> Result<String, String> {
    if OffsetDateTime::parse(s, &Rfc3339).is_ok() {
        return Ok(s.to_string());
    }
    let bad = || format!("{s:?}: expected an RFC 3339 time or an age like 15m, 2h, 7d");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    (OffsetDateTime::now_utc() - time::Duration::seconds(secs))
        .format(&Rfc3339)
        .map_err(|_| bad())
}

fn print_line(line: &LogLine, json: bool, app_wide: bool) -> anyhow::Result<()> {
    if json {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, line)?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }
    if app_wide {
        outln!(
            "{} {} {:<8} {} {}",
            time_ms(line.timestamp),
            line.function,
            line.stream.as_str(),
            line.invocation_id,
            line.message
        );
    } else {
        outln!(
            "{} {:<8} {} {}",
            time_ms(line.timestamp),
            line.stream.as_str(),
            line.invocation_id,
            line.message
        );
    }
    Ok(())
}

/// Prints log lines oldest first: `timestamp [function] stream invocation-id message`.
/// With `--json`, prints the API's page (newest first), or with `-f` one JSON line per
/// log line.
pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let Scope { app, function } = &args.target;
    let filter = LogFilter {
        invocation_id: args.invocation,
        stream: args.stream,
        text: args.grep,
        since: args.since,
        until: args.until,
        cursor: None,
        limit: args.limit.or(args.follow.then_some(FOLLOW_BACKLOG)),
    };
    let page = ctx
        .client
        .query_logs(app, function.as_deref(), &filter)
        .await?;
    let app_wide = function.is_none();
    if !args.follow {
        if ctx.json {
            return print_json(&page);
        }
        for line in page.items.iter().rev() {
            print_line(line, false, app_wide)?;
        }
        return Ok(());
    }
    for line in page.items.iter().rev() {
        print_line(line, ctx.json, app_wide)?;
    }
    let after = page.items.iter().map(|l| l.seq).max();
    follow(
        &ctx.client,
        app,
        function.as_deref(),
        &filter,
        after,
        ctx.json,
    )
    .await
}

/// Whether following again cannot help: the server refused the request itself (4xx).
fn is_final(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { status, .. } | ClientError::UnexpectedStatus { status, .. } if *status < 500)
}

/// Follows until interrupted; an API error (the app or function is gone, a bad
/// filter) ends it, a dropped connection is retried after the last seq printed.
async fn follow(
    client: &Client,
    app: &str,
    function: Option<&str>,
    filter: &LogFilter,
    mut after: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let mut delay = RECONNECT_DELAY;
    loop {
        let dropped = match client.follow_logs(app, function, filter, after).await {
            Ok(mut events) => loop {
                match events.next().await {
                    Ok(Some(line)) => {
                        after = Some(line.seq);
                        delay = RECONNECT_DELAY;
                        print_line(&line, json, function.is_none())?;
                    }
                    Ok(None) => break "the server closed the stream".to_string(),
                    Err(e) if is_final(&e) => return Err(e.into()),
                    Err(e) => break e.to_string(),
                }
            },
            Err(e) if is_final(&e) => return Err(e.into()),
            Err(e) => e.to_string(),
        };
        eprintln!("arcus: log stream interrupted ({dropped}); reconnecting in {delay:?}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_ages() {
        assert_eq!(
            parse_time("2024-05-01T10:00:00Z").unwrap(),
            "2024-05-01T10:00:00Z"
        );
        let an_hour_ago = OffsetDateTime::parse(&parse_time("1h").unwrap(), &Rfc3339).unwrap();
        let off = OffsetDateTime::now_utc() - an_hour_ago - time::Duration::hours(1);
        assert!(off.abs() < time::Duration::seconds(5));
        for bad in ["", "h", "1w", "yesterday", "-"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
