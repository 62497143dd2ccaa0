//! Background writer of invocation records and log lines, in batches, off the hot path.

use arcus_core::ErrorCode;
use arcus_core::model::Timestamp;
use arcus_core::record::{
    CapturedLine, InvocationRecord, InvocationStatus, LogStream, RecordedInvocation,
};
use arcus_core::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Largest batch written in one transaction.
const MAX_BATCH: usize = 2048;
/// How long an item may wait for its batch.
const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Items buffered before `record` starts dropping (and counting) them.
const QUEUE_CAPACITY: usize = 100_000;

enum Item {
    Record(Box<RecordedInvocation>),
    Flush(oneshot::Sender<()>),
}

/// Queues records for the writer task; never blocks the caller.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Item>,
    /// Off: records and their lines are dropped.
    enabled: bool,
    /// Bumped after each batch with log lines is written (wakes log followers).
    log_writes: watch::Receiver<u64>,
}

impl Recorder {
    /// Starts the writer task on the current runtime; a disabled recorder drops what it
    /// is given.
    pub fn start(store: Arc<dyn Store>, enabled: bool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (written, log_writes) = watch::channel(0);
        tokio::spawn(run(store, rx, written));
        Self {
            tx,
            enabled,
            log_writes,
        }
    }

    /// A counter bumped after every batch of log lines is stored (the lines are
    /// readable from the store when it changes).
    pub fn log_writes(&self) -> watch::Receiver<u64> {
        self.log_writes.clone()
    }

    /// Queues one invocation's record and log lines.
    pub fn record(&self, recorded: RecordedInvocation) {
        if self.enabled && self.tx.try_send(Item::Record(Box::new(recorded))).is_err() {
            tracing::warn!("record queue full; dropping an invocation record");
        }
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// One invocation's record, filled in as the invocation runs and submitted when it ends.
pub(crate) struct PendingRecord {
    recorder: Recorder,
    /// The record so far.
    pub record: InvocationRecord,
    /// The invocation's spans, when the node exports them.
    pub spans: Option<Box<crate::trace::InvocationSpans>>,
    /// Its `version` metric label (see [`crate::metrics::version_label`]).
    pub version_label: String,
    /// How many of its lines, from the first, its instance printed while starting.
    pub init_lines: usize,
}

impl PendingRecord {
    pub fn new(recorder: Recorder, record: InvocationRecord, version_label: String) -> Self {
        Self {
            recorder,
            record,
            spans: None,
            version_label,
            init_lines: 0,
        }
    }

    /// Notes how long its cold start took, if it had one.
    pub fn set_init(&mut self, init: Option<Duration>) {
        self.record.init_duration_us =
            init.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Completes the record with how the invocation ended and queues it with the
    /// lines it printed (`(stream, timestamp, message)`); with `ran`, the invocation
    /// reached an instance and its log shows platform lines.
    pub fn finish(
        mut self,
        duration: Duration,
        status: InvocationStatus,
        code: Option<ErrorCode>,
        ran: bool,
        lines: impl IntoIterator<Item = (LogStream, Timestamp, String)>,
    ) {
        let r = &mut self.record;
        r.duration_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        r.status = status;
        r.error_code = code.map(|c| c.as_str().to_string());
        let lines: Vec<CapturedLine> = lines
            .into_iter()
            .map(|(stream, timestamp, message)| CapturedLine {
                stream,
                timestamp,
                message,
            })
            .collect();
        crate::metrics::invocation(&self.record, self.version_label);
        if let Some(spans) = self.spans.take() {
            spans.finish(&self.record);
        }
        self.recorder.record(RecordedInvocation {
            record: self.record,
            init_lines: self.init_lines.min(lines.len()),
            lines,
            platform_lines: ran,
        });
    }
}

/// The writer: waits for a first item, lets more gather for [`BATCH_WINDOW`] without
/// being woken by each one (the receiver is not polled while it sleeps), then writes
/// everything queued (up to [`MAX_BATCH`]) in one go. With a backlog, or when someone
/// waits for a flush, it writes at once.
async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Item>, written: watch::Sender<u64>) {
    let mut batch = Vec::new();
    let mut waiters = Vec::new();
    let mut backlog = false;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        if !backlog && !matches!(next, Some(Item::Flush(_))) {
            tokio::time::sleep(BATCH_WINDOW).await;
        }
        while let Some(item) = next.take() {
            match item {
                Item::Record(r) => batch.push(*r),
                Item::Flush(w) => waiters.push(w),
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        backlog = batch.len() >= MAX_BATCH;
        let with_logs = batch
            .iter()
            .any(|r| r.platform_lines || !r.lines.is_empty());
        write(&*store, &mut batch).await;
        if with_logs {
            written.send_modify(|n| *n = n.wrapping_add(1));
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
    write(&*store, &mut batch).await;
}

async fn write(store: &dyn Store, batch: &mut Vec<RecordedInvocation>) {
    if batch.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let result = store.insert_invocations(batch).await;
    crate::metrics::store_op("insert_invocations", started);
    if let Err(e) = result {
        tracing::error!(count = batch.len(), "cannot write invocation records: {e}");
    }
    batch.clear();
}
