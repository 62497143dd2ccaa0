//! The cron source: fires at each tick of a schedule in its time zone. A tick fires
//! only after the store's compare-and-set [`Store::claim_cron_tick`] says this caller
//! is the first for it, so a tick fires once across restarts and nodes; the event is
//! then queued as a durable async invocation (idempotency key `cron:{id}:{unix tick}`).

use crate::source::{Source, SourceCtx};
use arcus_core::model::Timestamp;
use arcus_core::store::Store;
use arcus_core::trigger::{CronConfig, MissedTicks, TriggerConfig};
use arcus_core::{Error, Result};
use async_trait::async_trait;
use bytes::Bytes;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The wall clock a source reads (tests use one that follows paused tokio time).
pub(crate) type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock.
pub(crate) fn system_clock() -> Clock {
    Arc::new(Timestamp::now_utc)
}

/// How late a tick may fire before the source gives up on it and waits for the next.
const MAX_LATENESS: time::Duration = time::Duration::seconds(5);
/// Attempts to queue a claimed tick's event.
const ENQUEUE_ATTEMPTS: u32 = 3;

/// A parsed cron schedule in its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    schedule: cron::Schedule,
    tz: chrono_tz::Tz,
}

impl CronSchedule {
    /// Parses an expression (5 standard fields get a `0` seconds field in front; 6 or 7
    /// fields are taken as is) and an IANA time zone. Errors name `config.schedule` or
    /// `config.timezone`.
    pub fn parse(expr: &str, timezone: &str) -> Result<Self> {
        let fields = expr.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {expr}"),
            6 | 7 => expr.to_string(),
            _ => {
                return Err(Error::invalid(format!(
                    "config.schedule: {expr:?} has {fields} fields; expected 5 (min hour \
                     day month weekday), 6 (with seconds first) or 7 (with a year last)"
                )));
            }
        };
        let schedule = cron::Schedule::from_str(&full)
            .map_err(|e| Error::invalid(format!("config.schedule: {expr:?} is not valid: {e}")))?;
        let tz = chrono_tz::Tz::from_str(timezone).map_err(|_| {
            Error::invalid(format!(
                "config.timezone: {timezone:?} is not a known IANA time zone"
            ))
        })?;
        Ok(Self { schedule, tz })
    }

    fn to_chrono(&self, t: Timestamp) -> Option<chrono::DateTime<chrono_tz::Tz>> {
        chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())
            .map(|d| d.with_timezone(&self.tz))
    }

    fn from_chrono(d: chrono::DateTime<chrono_tz::Tz>) -> Option<Timestamp> {
        Timestamp::from_unix_timestamp(d.timestamp()).ok()
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let from = self.to_chrono(t)?;
        self.schedule
            .after(&from)
            .find_map(Self::from_chrono)
            .filter(|tick| *tick > t)
    }

    /// The latest tick in `(after, until]`.
    pub fn latest_in(&self, after: Timestamp, until: Timestamp) -> Option<Timestamp> {
        let from = self.to_chrono(until + time::Duration::seconds(1))?;
        let mut ticks = self.schedule.after(&from);
        while let Some(tick) = ticks.next_back() {
            let tick = Self::from_chrono(tick)?;
            if tick <= until {
                return (tick > after).then_some(tick);
            }
        }
        None
    }
}

/// Where a cron source claims its ticks (the store; a fake in tests).
#[async_trait]
pub(crate) trait Ticks: Send + Sync + 'static {
    /// See [`Store::claim_cron_tick`].
    async fn claim(&self, trigger_id: &str, tick: Timestamp) -> Result<bool>;
    /// See [`Store::last_cron_tick`].
    async fn last(&self, trigger_id: &str) -> Result<Option<Timestamp>>;
}

struct StoreTicks(Arc<dyn Store>);

#[async_trait]
impl Ticks for StoreTicks {
    async fn claim(&self, trigger_id: &str, tick: Timestamp) -> Result<bool> {
        self.0.claim_cron_tick(trigger_id, tick).await
    }
    async fn last(&self, trigger_id: &str) -> Result<Option<Timestamp>> {
        self.0.last_cron_tick(trigger_id).await
    }
}

/// The [`Source`] of `type: cron` triggers.
pub(crate) struct CronSource {
    ticks: Arc<dyn Ticks>,
    clock: Clock,
}

impl CronSource {
    /// A source claiming its ticks in `store`.
    pub(crate) fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self::with_ticks(Arc::new(StoreTicks(store)), clock)
    }

    pub(crate) fn with_ticks(ticks: Arc<dyn Ticks>, clock: Clock) -> Self {
        Self { ticks, clock }
    }

    /// Claims `tick` and, when this caller is first, queues its event.
    async fn fire(&self, ctx: &SourceCtx, config: &CronConfig, tick: Timestamp) {
        let trigger = &ctx.trigger;
        match self.ticks.claim(&trigger.id, tick).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                ctx.status.failed(1);
                ctx.status
                    .set_error(Some(format!("cannot claim tick: {}", e.message)));
                return;
            }
        }
        let event = serde_json::json!({
            "type": "cron",
            "trigger": trigger.name,
            "scheduled_time": rfc3339(tick),
            "fired_at": rfc3339((self.clock)()),
            "payload": config.payload,
        });
        let key = format!("cron:{}:{}", trigger.id, tick.unix_timestamp());
        let body = Bytes::from(event.to_string());
        for attempt in 1..=ENQUEUE_ATTEMPTS {
            match ctx.invoker.enqueue(body.clone(), Some(key.clone())).await {
                Ok(_) => {
                    ctx.status.delivered(1);
                    return;
                }
                Err(e) if attempt == ENQUEUE_ATTEMPTS => {
                    tracing::warn!(trigger = %trigger.id, error = %e, "cron: cannot queue event");
                    ctx.status.failed(1);
                    ctx.status.set_error(Some(e.message));
                }
                Err(_) => {
                    tokio::select! {
                        _ = ctx.cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))) => {}
                    }
                }
            }
        }
    }

    /// Fires the latest tick missed since the last claimed one (or since the trigger
    /// was created), for `missed: fire_once`.
    async fn catch_up(&self, ctx: &SourceCtx, config: &CronConfig, schedule: &CronSchedule) {
        let last = loop {
            match self.ticks.last(&ctx.trigger.id).await {
                Ok(last) => break last,
                Err(e) => {
                    ctx.status.connecting(e.message);
                    tokio::select! {
                        _ = ctx.cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        let since = last.map_or(ctx.trigger.created_at, |l| l.max(ctx.trigger.created_at));
        if let Some(tick) = schedule.latest_in(since, (self.clock)()) {
            self.fire(ctx, config, tick).await;
        }
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[async_trait]
impl Source for CronSource {
    async fn run(self: Box<Self>, ctx: SourceCtx) {
        let TriggerConfig::Cron(config) = &ctx.trigger.config else {
            ctx.status.connecting("not a cron trigger");
            return ctx.cancel.cancelled().await;
        };
        let schedule = match CronSchedule::parse(&config.schedule, &config.timezone) {
            Ok(s) => s,
            Err(e) => {
                ctx.status.connecting(e.message);
                return ctx.cancel.cancelled().await;
            }
        };
        if config.missed == MissedTicks::FireOnce {
            self.catch_up(&ctx, config, &schedule).await;
        }
        ctx.status
            .set_state(arcus_core::trigger::TriggerState::Connected);
        let mut after = (self.clock)();
        loop {
            let Some(tick) = schedule.next_after(after) else {
                // A schedule with no future tick (e.g. a past year).
                ctx.status.set_next_fire(None);
                return ctx.cancel.cancelled().await;
            };
            ctx.status.set_next_fire(Some(tick));
            loop {
                let now = (self.clock)();
                if now >= tick {
                    break;
                }
                let wait = Duration::try_from(tick - now).unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            if ctx.cancel.is_cancelled() {
                return;
            }
            self.fire(&ctx, config, tick).await;
            after = tick.max((self.clock)() - MAX_LATENESS);
        }
    }
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
