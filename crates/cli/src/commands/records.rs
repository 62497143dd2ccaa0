//! `arcus invocations`, `arcus stats` and `arcus usage`.

use crate::opts::ClientOpts;
use crate::output::{Table, duration_us, outln, print_json, time};
use arcus_client::InvocationFilter;
use arcus_core::names::validate_name;
use std::str::FromStr;

/// `<app>` or `<app>/<fn>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// App name.
    pub app: String,
    /// Function name, if one was given.
    pub function: Option<String>,
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (app, function) = match s.split_once('/') {
            Some((a, f)) => (a, Some(f)),
            None => (s, None),
        };
        validate_name("app", app).map_err(|e| e.message)?;
        if let Some(f) = function {
            validate_name("function", f).map_err(|e| e.message)?;
        }
        Ok(Self {
            app: app.to_string(),
            function: function.map(str::to_string),
        })
    }
}

/// `arcus invocations <app>[/<fn>]`.
#[derive(Debug, clap::Args)]
pub struct InvocationsArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// An app, or one function as <app>/<fn>.
    target: Scope,
    /// Only this version.
    #[arg(id = "fn_version", long = "fn-version", value_name = "N")]
    version: Option<u32>,
    /// Only this status: succeeded, failed or timed_out.
    #[arg(long)]
    status: Option<String>,
    /// Only this trigger: http, api, async, cron, nats, amqp, mqtt, redis, webhook, destination.
    #[arg(long)]
    trigger: Option<String>,
    /// Only cold starts.
    #[arg(long, conflicts_with = "warm")]
    cold: bool,
    /// Only warm invocations.
    #[arg(long)]
    warm: bool,
    /// Only invocations that failed with this error code.
    #[arg(long, value_name = "CODE")]
    error_code: Option<String>,
    /// Started at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Started before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Continue after a previous page (its `next cursor`).
    #[arg(long)]
    cursor: Option<String>,
    /// Page size (1–1000) [server default 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
}

/// Prints one page of invocations, newest first, and the cursor of the next one.
pub async fn invocations(args: InvocationsArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let filter = InvocationFilter {
        function: args.target.function.clone(),
        version: args.version,
        status: args.status,
        trigger: args.trigger,
        cold_start: (args.cold || args.warm).then_some(args.cold),
        error_code: args.error_code,
        since: args.since,
        until: args.until,
        cursor: args.cursor,
        limit: args.limit,
    };
    let page = ctx
        .client
        .query_invocations(&args.target.app, &filter)
        .await?;
    if ctx.json {
        return print_json(&page);
    }
    let mut table = Table::new(&[
        "STARTED", "ID", "FUNCTION", "VERSION", "TRIGGER", "STATUS", "HTTP", "DURATION", "COLD",
        "ERROR",
    ]);
    for r in &page.items {
        table.row(vec![
            time(r.started_at),
            r.id.clone(),
            r.function.clone(),
            r.version.map_or("draft".to_string(), |v| v.to_string()),
            r.trigger.as_str().to_string(),
            r.status.as_str().to_string(),
            r.http_status.map_or("-".to_string(), |s| s.to_string()),
            duration_us(r.duration_us),
            if r.cold_start { "yes" } else { "no" }.to_string(),
            r.error_code.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    table.print()?;
    if let Some(c) = page.next_cursor {
        outln!("next cursor: {c}");
    }
    Ok(())
}

/// `arcus stats <app>[/<fn>]`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// An app, or one function as <app>/<fn>.
    target: Scope,
    /// 1h (minute buckets), 24h or 7d (hour buckets).
    #[arg(long, default_value = "1h", value_parser = ["1h", "24h", "7d"])]
    window: String,
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.2} ms"))
}

/// Prints totals, then the non-empty buckets.
pub async fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let s = ctx
        .client
        .stats(
            &args.target.app,
            args.target.function.as_deref(),
            &args.window,
        )
        .await?;
    if ctx.json {
        return print_json(&s);
    }
    outln!(
        "calls {}  errors {}  success {:.2} %  cold starts {:.2} %  p50 {}  p95 {}  p99 {}",
        s.calls,
        s.errors,
        s.success_rate * 100.0,
        s.cold_start_rate * 100.0,
        ms(s.p50_ms),
        ms(s.p95_ms),
        ms(s.p99_ms)
    );
    for (code, n) in &s.errors_by_code {
        outln!("  {code}: {n}");
    }
    let mut table = Table::new(&["BUCKET", "CALLS", "ERRORS", "COLD", "P50", "P95", "P99"]);
    for b in s.buckets.iter().filter(|b| b.calls > 0) {
        table.row(vec![
            time(b.start),
            b.calls.to_string(),
            b.errors.to_string(),
            b.cold_starts.to_string(),
            ms(b.p50_ms),
            ms(b.p95_ms),
            ms(b.p99_ms),
        ]);
    }
    table.print()
}

/// `arcus usage <app>`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The app.
    app: String,
    /// First hour (RFC 3339) [24 h before --to].
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End (RFC 3339, exclusive) [end of the current hour].
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
}

/// Prints usage per function and hour, then the total.
pub async fn usage(args: UsageArgs) -> anyhow::Result<()> {
    let ctx = args.opts.connect()?;
    let u = ctx
        .client
        .usage(&args.app, args.from.as_deref(), args.to.as_deref())
        .await?;
    if ctx.json {
        return print_json(&u);
    }
    let mut table = Table::new(&[
        "HOUR",
        "FUNCTION",
        "INVOCATIONS",
        "GB-S",
        "BILLED MS",
        "EGRESS",
    ]);
    for h in u.hours.iter().chain(std::iter::once(&u.total)) {
        table.row(vec![
            time(h.hour),
            h.function.clone(),
            h.invocations.to_string(),
            format!("{:.6}", h.gb_seconds),
            h.billed_ms.to_string(),
            h.egress_bytes.to_string(),
        ]);
    }
    table.print()
}
