//! Capture of a guest's stdout and stderr as timestamped lines, bounded in size.

use arcus_core::model::Timestamp;
use arcus_core::record::LogStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// One captured line.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedLine {
    /// Which stream it was written to.
    pub stream: LogStream,
    /// When its first byte was written.
    pub timestamp: Timestamp,
    /// The text without the newline (invalid UTF-8 replaced).
    pub message: String,
}

#[derive(Default)]
struct Buffer {
    lines: Vec<CapturedLine>,
    partial: [Vec<u8>; 2],
    bytes: usize,
    truncated: bool,
}

/// Shared sink for one invocation's output. Output beyond the byte budget is dropped
/// (never failing the guest's write), and a platform line notes the truncation.
#[derive(Clone)]
pub struct LogSink {
    inner: Arc<Mutex<Buffer>>,
    budget: usize,
}

impl LogSink {
    /// A sink keeping at most `budget` bytes of output.
    pub fn new(budget: usize) -> Self {
        Self {
            inner: Arc::default(),
            budget,
        }
    }

    /// A writer for one stream, to hand to the WASI context.
    pub fn stream(&self, stream: LogStream) -> LogWriter {
        LogWriter {
            sink: self.clone(),
            stream,
        }
    }

    /// Adds a platform line (errors, traps) that does not count against the budget.
    pub fn platform(&self, message: impl Into<String>) {
        let mut buf = lock(&self.inner);
        buf.lines.push(CapturedLine {
            stream: LogStream::Platform,
            timestamp: Timestamp::now_utc(),
            message: message.into(),
        });
    }

    /// Takes every complete line plus any unterminated trailing output.
    pub fn drain(&self) -> Vec<CapturedLine> {
        let mut buf = lock(&self.inner);
        for (i, stream) in [LogStream::Stdout, LogStream::Stderr]
            .into_iter()
            .enumerate()
        {
            let rest = std::mem::take(&mut buf.partial[i]);
            if !rest.is_empty() {
                let message = String::from_utf8_lossy(&rest).into_owned();
                buf.lines.push(CapturedLine {
                    stream,
                    timestamp: Timestamp::now_utc(),
                    message,
                });
            }
        }
        if std::mem::take(&mut buf.truncated) {
            buf.lines.push(CapturedLine {
                stream: LogStream::Platform,
                timestamp: Timestamp::now_utc(),
                message: format!("log output truncated after {} bytes", self.budget),
            });
        }
        std::mem::take(&mut buf.lines)
    }

    fn write(&self, stream: LogStream, data: &[u8]) {
        let mut buf = lock(&self.inner);
        let room = self.budget.saturating_sub(buf.bytes);
        let take = data.len().min(room);
        if take < data.len() {
            buf.truncated = true;
        }
        buf.bytes += take;
        let idx = usize::from(stream == LogStream::Stderr);
        for &b in &data[..take] {
            if b == b'\n' {
                let line = std::mem::take(&mut buf.partial[idx]);
                let message = String::from_utf8_lossy(&line).into_owned();
                buf.lines.push(CapturedLine {
                    stream,
                    timestamp: Timestamp::now_utc(),
                    message,
                });
            } else {
                buf.partial[idx].push(b);
            }
        }
    }
}

fn lock(m: &Mutex<Buffer>) -> std::sync::MutexGuard<'_, Buffer> {
    // A poisoned lock only means another writer panicked mid-push; the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer end of a [`LogSink`] for one stream.
#[derive(Clone)]
pub struct LogWriter {
    sink: LogSink,
    stream: LogStream,
}

impl IsTerminal for LogWriter {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogWriter {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for LogWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.sink.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_per_stream_and_truncates() {
        let sink = LogSink::new(20);
        sink.write(LogStream::Stdout, b"one\ntw");
        sink.write(LogStream::Stderr, b"err\n");
        sink.write(LogStream::Stdout, b"o\nthree is too long\n");
        let lines = sink.drain();
        let text: Vec<_> = lines
            .iter()
            .map(|l| (l.stream, l.message.as_str()))
            .collect();
        assert_eq!(
            text,
            vec![
                (LogStream::Stdout, "one"),
                (LogStream::Stderr, "err"),
                (LogStream::Stdout, "two"),
                (LogStream::Stdout, "three is"),
                (LogStream::Platform, "log output truncated after 20 bytes"),
            ]
        );
        assert!(sink.drain().is_empty());
    }
}
