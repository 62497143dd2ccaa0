//! Counts the bytes of a streamed response body, caps them, and completes an
//! invocation's record once both the guest has finished and the body has been sent (or
//! dropped), so the record's `egress_bytes` is exact and an over-limit body is known.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

type Finish = Box<dyn FnOnce(Sent) + Send>;

/// What a metered body sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Bytes of data frames passed on.
    pub bytes: u64,
    /// Whether the body went over the limit (and was cut there with an error).
    pub over_limit: bool,
}

struct State {
    limit: u64,
    sent: Sent,
    body_done: bool,
    finish: Option<Finish>,
}

/// The error a metered body ends with when its data goes over the limit.
#[derive(Debug, thiserror::Error)]
#[error("the function's response is over the limit of {0} bytes")]
pub struct OverLimit(pub u64);

/// Shared between the body wrapper and the completion callback.
#[derive(Clone)]
pub(crate) struct Meter(Arc<Mutex<State>>);

impl Meter {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A meter whose body may pass on at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Meter(Arc::new(Mutex::new(State {
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            sent: Sent {
                bytes: 0,
                over_limit: false,
            },
            body_done: false,
            finish: None,
        })))
    }

    /// Runs `finish` with what was sent once the body is done (now, if it is).
    pub fn on_complete(&self, finish: impl FnOnce(Sent) + Send + 'static) {
        let mut s = self.lock();
        if s.body_done {
            let sent = s.sent;
            drop(s);
            finish(sent);
        } else {
            s.finish = Some(Box::new(finish));
        }
    }

    /// Marks the body done (sent, failed or dropped); runs a waiting completion.
    pub fn body_done(&self) {
        let mut s = self.lock();
        s.body_done = true;
        let (sent, finish) = (s.sent, s.finish.take());
        drop(s);
        if let Some(f) = finish {
            f(sent);
        }
    }

    /// Marks the body as over the limit without sending it (its declared length is).
    pub fn refuse(&self) {
        self.lock().sent.over_limit = true;
    }

    /// Counts `n` more bytes; `Err` (and marked over the limit) if they do not fit.
    fn add(&self, n: usize) -> Result<(), OverLimit> {
        let mut s = self.lock();
        let total = s
            .sent
            .bytes
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        if total > s.limit {
            s.sent.over_limit = true;
            return Err(OverLimit(s.limit));
        }
        s.sent.bytes = total;
        Ok(())
    }

    /// Whether a declared body length is over the limit.
    pub fn too_long(&self, declared: u64) -> bool {
        declared > self.lock().limit
    }

    /// Wraps `body` so its data frames are counted and its end is reported.
    pub fn wrap<B>(&self, body: B) -> Metered<B> {
        Metered {
            inner: body,
            meter: self.clone(),
            cut: false,
        }
    }
}

/// A body whose bytes a [`Meter`] counts; past the limit it ends with [`OverLimit`].
pub(crate) struct Metered<B> {
    inner: B,
    meter: Meter,
    cut: bool,
}

impl<B> Drop for Metered<B> {
    fn drop(&mut self) {
        self.meter.body_done();
    }
}

impl<B> http_body::Body for Metered<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: From<OverLimit>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        if self.cut {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Err(over) = self.meter.add(data.len())
        {
            self.cut = true;
            return Poll::Ready(Some(Err(over.into())));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.cut || self.inner.is_end_stream()
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

    type TestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, crate::BodyError>;

    fn full(b: &'static [u8]) -> TestBody {
        Full::new(Bytes::from_static(b))
            .map_err(|e| match e {})
            .boxed_unsync()
    }

    fn stream(chunks: Vec<&'static [u8]>) -> TestBody {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, crate::BodyError>(http_body::Frame::data(Bytes::from_static(c))));
        http_body_util::StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
    }

    #[tokio::test]
    async fn finishes_after_the_body_whichever_ends_first() {
        let seen = Arc::new(AtomicU64::new(u64::MAX));
        let meter = Meter::new(100);
        let body = meter.wrap(full(b"hello"));
        let s = seen.clone();
        meter.on_complete(move |n| s.store(n.bytes, Ordering::SeqCst));
        assert_eq!(seen.load(Ordering::SeqCst), u64::MAX, "body not sent yet");
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 5);
        assert_eq!(seen.load(Ordering::SeqCst), 5);

        let meter = Meter::new(100);
        drop(meter.wrap(full(b"unsent")));
        let s = seen.clone();
        meter.on_complete(move |n| s.store(n.bytes, Ordering::SeqCst));
        assert_eq!(
            seen.load(Ordering::SeqCst),
            0,
            "a dropped body sent nothing"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_cut_with_an_error_and_marked() {
        let meter = Meter::new(10);
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        meter.on_complete(move |sent| *s.lock().unwrap() = Some(sent));
        let mut body = meter.wrap(stream(vec![b"12345", b"67890", b"x", b"never"]));
        let mut got = Vec::new();
        let err = loop {
            match body.frame().await {
                Some(Ok(f)) => got.extend_from_slice(&f.into_data().unwrap()),
                Some(Err(e)) => break e,
                None => panic!("the body ended without an error"),
            }
        };
        assert_eq!(got, b"1234567890", "exactly the limit is passed on");
        assert!(
            err.to_string().contains("over the limit of 10 bytes"),
            "{err}"
        );
        assert!(body.frame().await.is_none(), "nothing after the cut");
        drop(body);
        let sent = seen.lock().unwrap().expect("completed");
        assert_eq!(
            sent,
            Sent {
                bytes: 10,
                over_limit: true
            }
        );
        assert!(meter.too_long(11) && !meter.too_long(10));
    }
}
