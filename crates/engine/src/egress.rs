//! Counts the bytes of a streamed response body and completes an invocation's record
//! once both the guest has finished and the body has been sent (or dropped), so the
//! record's `egress_bytes` is exact.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

type Finish = Box<dyn FnOnce(u64) + Send>;

#[derive(Default)]
struct State {
    bytes: u64,
    body_done: bool,
    finish: Option<Finish>,
}

/// Shared between the body wrapper and the completion callback.
#[derive(Clone, Default)]
pub(crate) struct Meter(Arc<Mutex<State>>);

impl Meter {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `finish` with the byte count once the body is done (now, if it is).
    pub fn on_complete(&self, finish: impl FnOnce(u64) + Send + 'static) {
        let mut s = self.lock();
        if s.body_done {
            let bytes = s.bytes;
            drop(s);
            finish(bytes);
        } else {
            s.finish = Some(Box::new(finish));
        }
    }

    /// Marks the body done (sent, failed or dropped); runs a waiting completion.
    pub fn body_done(&self) {
        let mut s = self.lock();
        s.body_done = true;
        let (bytes, finish) = (s.bytes, s.finish.take());
        drop(s);
        if let Some(f) = finish {
            f(bytes);
        }
    }

    fn add(&self, n: usize) {
        let mut s = self.lock();
        s.bytes = s.bytes.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Wraps `body` so its data frames are counted and its end is reported.
    pub fn wrap<B>(&self, body: B) -> Metered<B> {
        Metered {
            inner: body,
            meter: self.clone(),
        }
    }
}

/// A body whose bytes a [`Meter`] counts.
pub(crate) struct Metered<B> {
    inner: B,
    meter: Meter,
}

impl<B> Drop for Metered<B> {
    fn drop(&mut self) {
        self.meter.body_done();
    }
}

impl<B> http_body::Body for Metered<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.meter.add(data.len());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn finishes_after_the_body_whichever_ends_first() {
        let seen = Arc::new(AtomicU64::new(u64::MAX));
        let meter = Meter::default();
        let body = meter.wrap(Full::new(Bytes::from_static(b"hello")));
        let s = seen.clone();
        meter.on_complete(move |n| s.store(n, Ordering::SeqCst));
        assert_eq!(seen.load(Ordering::SeqCst), u64::MAX, "body not sent yet");
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 5);
        assert_eq!(seen.load(Ordering::SeqCst), 5);

        let meter = Meter::default();
        drop(meter.wrap(Full::new(Bytes::from_static(b"unsent"))));
        let s = seen.clone();
        meter.on_complete(move |n| s.store(n, Ordering::SeqCst));
        assert_eq!(
            seen.load(Ordering::SeqCst),
            0,
            "a dropped body sent nothing"
        );
    }
}
