//! Group commit for the queue: events to enqueue and attempt results are gathered
//! while the previous transaction runs and written together, so thousands of events per
//! second cost a handful of transactions.

use arcus_core::events::{AttemptResult, NewEvent};
use arcus_core::store::Store;
use arcus_core::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// Most items written in one transaction.
const MAX_BATCH: usize = 1024;

type Pending = (NewEvent, oneshot::Sender<Result<String>>);

/// Stores events in batches; each submitter waits for its own batch's commit.
#[derive(Clone)]
pub(crate) struct EnqueueWriter {
    tx: mpsc::Sender<Pending>,
}

impl EnqueueWriter {
    pub fn start(store: Arc<dyn Store>, wake: Arc<Notify>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(MAX_BATCH * 8);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (events, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                let started = std::time::Instant::now();
                let stored = store.enqueue_events(&events).await;
                crate::metrics::store_op("enqueue_events", started);
                match stored {
                    Ok(ids) => {
                        crate::metrics::accepted(ids.iter().filter(|id| id.is_ok()).count());
                        for (reply, id) in replies.into_iter().zip(ids) {
                            let _ = reply.send(id);
                        }
                        wake.notify_one();
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Stores one event (with others submitted meanwhile) and returns its id.
    pub async fn submit(&self, event: NewEvent) -> Result<String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((event, tx))
            .await
            .map_err(|_| Error::new(arcus_core::ErrorCode::Unavailable, "the queue is stopped"))?;
        rx.await
            .map_err(|_| Error::new(arcus_core::ErrorCode::Unavailable, "the queue is stopped"))?
    }
}

/// Writes attempt results in batches, retrying on store errors (until it succeeds, the
/// events stay leased; if the node dies first, the lease ends and they run again).
#[derive(Clone)]
pub(crate) struct Finisher {
    tx: mpsc::UnboundedSender<AttemptResult>,
}

impl Finisher {
    pub fn start(store: Arc<dyn Store>, wake: Arc<Notify>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<AttemptResult>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let mut delay = Duration::from_millis(50);
                while let Err(e) = timed_finish(&*store, &batch).await {
                    tracing::warn!(count = batch.len(), "cannot record async attempts: {e}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                batch.clear();
                wake.notify_one();
            }
        });
        Self { tx }
    }

    /// Queues one result.
    pub fn finish(&self, result: AttemptResult) {
        if self.tx.send(result).is_err() {
            tracing::warn!(
                "the queue is stopped; an attempt result is dropped (it will run again)"
            );
        }
    }
}

async fn timed_finish(store: &dyn Store, batch: &[AttemptResult]) -> Result<()> {
    let started = std::time::Instant::now();
    let result = store.finish_attempts(batch).await;
    crate::metrics::store_op("finish_attempts", started);
    result
}
