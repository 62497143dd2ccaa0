//! Logs: queries, live followers and the retention task (ADR 0011; the platform
//! lines are derived from records by the store, ADR 0019).
//!
//! Followers read the store, never an in-memory copy of the lines: the record writer
//! bumps a `watch` counter after each batch it writes, which wakes every follower to
//! read the lines after the last seq it has seen. A slow follower cannot lag behind a
//! channel (there is nothing queued for it), and lines other nodes write reach it by
//! the fallback poll.

use crate::Engine;
use crate::Inner;
use arcus_core::Result;
use arcus_core::limits::LOG_FOLLOW_BATCH;
use arcus_core::model::Timestamp;
use arcus_core::record::LogLine;
use arcus_core::stats::{Page, Resolution};
use arcus_core::store::{LogQuery, Store};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How long a caught-up follower waits before reading the store again without being
/// woken (lines written by other nodes, or a missed wake-up).
pub const FOLLOW_POLL: Duration = Duration::from_secs(1);
/// How often the retention task runs by default.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(300);
/// Rows one retention transaction deletes at most (so writers wait little).
pub const RETENTION_BATCH: u32 = 5_000;
/// Pause between two retention batches, letting queued writes through.
const RETENTION_PAUSE: Duration = Duration::from_millis(20);

/// A live reader of an app's (or function's) new log lines, in write order.
pub struct LogFollower {
    store: Arc<dyn Store>,
    app: String,
    query: LogQuery,
    scanned_to: u64,
    writes: watch::Receiver<u64>,
}

impl LogFollower {
    /// Every line up to this seq has been returned or did not match.
    pub fn position(&self) -> u64 {
        self.scanned_to
    }

    /// Waits for the next matching lines and returns them (at least one), oldest first;
    /// fails when the app or function is gone, or the store fails.
    pub async fn next_lines(&mut self) -> Result<Vec<LogLine>> {
        loop {
            // Marked seen before reading: a batch written during the read wakes us again.
            self.writes.borrow_and_update();
            let tail = self
                .store
                .tail_logs(&self.app, &self.query, self.scanned_to, LOG_FOLLOW_BATCH)
                .await?;
            let moved = tail.scanned_to > self.scanned_to;
            self.scanned_to = tail.scanned_to;
            if !tail.lines.is_empty() {
                return Ok(tail.lines);
            }
            if moved {
                continue;
            }
            tokio::select! {
                changed = self.writes.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(FOLLOW_POLL).await;
                    }
                }
                () = tokio::time::sleep(FOLLOW_POLL) => {}
            }
        }
    }
}

impl Engine {
    /// An app's log lines matching `q`, newest first, one page.
    pub async fn query_logs(&self, app: &str, q: &LogQuery) -> Result<Page<LogLine>> {
        self.inner.store.query_logs(app, q).await
    }

    /// Follows an app's (or, with `q.function`, a function's) log lines matching `q`:
    /// those stored after seq `after`, then new ones as they are written; without
    /// `after`, only lines written from now on. Checks that the app or function exists.
    pub async fn follow_logs(
        &self,
        app: &str,
        q: LogQuery,
        after: Option<u64>,
    ) -> Result<LogFollower> {
        let store = self.inner.store.clone();
        let scanned_to = match after {
            Some(seq) => seq,
            None => store.last_log_seq().await?,
        };
        // Fails now (not on the first read) when the app or function does not exist.
        store.tail_logs(app, &q, scanned_to, 1).await?;
        Ok(LogFollower {
            store,
            app: app.to_string(),
            query: LogQuery { cursor: None, ..q },
            scanned_to,
            writes: self.inner.recorder.log_writes(),
        })
    }

    /// Applies every app's retention once: deletes its log lines and invocation records
    /// older than its `log_retention_days` and its oldest lines past `log_retention_mb`,
    /// then rollups past their resolution's retention, [`RETENTION_BATCH`] rows per
    /// transaction. Returns (lines, records) deleted.
    pub async fn enforce_retention(&self, now: Timestamp) -> Result<(u64, u64)> {
        let store = &self.inner.store;
        let (mut lines, mut records) = (0, 0);
        for app in store.list_apps().await? {
            let cutoff = now - time::Duration::days(i64::from(app.quotas.retention_days()));
            let max_bytes = app.quotas.retention_bytes();
            loop {
                let n = store
                    .purge_logs(&app.name, cutoff, max_bytes, RETENTION_BATCH)
                    .await?;
                lines += n;
                if n < u64::from(RETENTION_BATCH) {
                    break;
                }
                tokio::time::sleep(RETENTION_PAUSE).await;
            }
            loop {
                let n = store
                    .purge_invocations(&app.name, cutoff, RETENTION_BATCH)
                    .await?;
                records += n;
                if n < u64::from(RETENTION_BATCH) {
                    break;
                }
                tokio::time::sleep(RETENTION_PAUSE).await;
            }
        }
        for res in Resolution::ALL {
            let cutoff = now - res.retention();
            while store.purge_rollups(res, cutoff, RETENTION_BATCH).await?
                == u64::from(RETENTION_BATCH)
            {
                tokio::time::sleep(RETENTION_PAUSE).await;
            }
        }
        let audit_cutoff =
            now - time::Duration::days(i64::from(arcus_core::audit::DEFAULT_AUDIT_RETENTION_DAYS));
        while store.purge_audit(audit_cutoff, RETENTION_BATCH).await? == u64::from(RETENTION_BATCH)
        {
            tokio::time::sleep(RETENTION_PAUSE).await;
        }
        self.inner.rates.prune_idle();
        Ok((lines, records))
    }
}

/// Starts the retention task: a pass every `interval` (the first one after a minute, or
/// after `interval` when that is shorter); it ends when the engine is dropped.
pub(crate) fn start_retention(inner: &Arc<Inner>, interval: Duration) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + interval.min(Duration::from_secs(60));
        let mut tick = tokio::time::interval_at(first, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            let engine = Engine { inner };
            match engine.enforce_retention(Timestamp::now_utc()).await {
                Ok((0, 0)) => {}
                Ok((lines, records)) => {
                    tracing::info!(lines, records, "retention: deleted old logs and records");
                }
                Err(e) => tracing::warn!("retention pass failed: {e}"),
            }
        }
    });
}
