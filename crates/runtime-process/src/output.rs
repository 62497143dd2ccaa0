//! Capture of an instance's stdout and stderr: lines read by one task per pipe into a
//! shared buffer, drained per invocation.
//!
//! Lines written just before a runtime answers may still be in a pipe when the answer
//! arrives. The python3 and node bootstraps therefore print an end mark naming the
//! request ([`end_mark`]) on both streams before they answer; draining an answered
//! invocation waits (up to [`MARK_WAIT`]) until both readers have seen it, so every
//! line it printed is attributed to it, not to the next one. They also mark the end of
//! their start-up output with [`INIT_MARK`] before asking for their first event, so a
//! cold start's output is told from its first invocation's. Marks are never stored.

use crate::ProcessLogLine;
use arcus_core::model::Timestamp;
use arcus_core::record::LogStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::Notify;

/// The id whose end mark the bootstraps print after loading the handler (no request id
/// looks like it).
pub const INIT_MARK: &str = "init";
/// Longest captured output kept between two drains (1 MiB); more is dropped.
const MAX_BUFFERED_LOG_BYTES: usize = 1024 * 1024;
/// How long a drain waits for the end marks of an answered invocation.
const MARK_WAIT: Duration = Duration::from_millis(200);
/// What an end mark starts and ends with (ASCII record separators around it).
const MARK_START: &str = "\u{1e}arcus-end ";
const MARK_END: char = '\u{1e}';

/// The line the bootstraps print on stdout and stderr after invocation `request_id`.
#[cfg(test)]
fn end_mark(request_id: &str) -> String {
    format!("{MARK_START}{request_id}{MARK_END}")
}

/// Output lines read from the process, waiting to be attributed to an invocation.
#[derive(Default)]
struct Buffer {
    lines: Vec<ProcessLogLine>,
    bytes: usize,
    dropped: usize,
    /// The request id of the last end mark seen on stdout and on stderr.
    ended: [Option<String>; 2],
}

/// The output of one process, shared by its two readers and the instance.
#[derive(Default)]
pub(crate) struct Output {
    buf: Mutex<Buffer>,
    marked: Notify,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned buffer only holds log lines; keep using it.
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the two reader tasks of a process's pipes.
    pub fn capture(
        self: &Arc<Self>,
        stdout: Option<impl AsyncRead + Unpin + Send + 'static>,
        stderr: Option<impl AsyncRead + Unpin + Send + 'static>,
    ) {
        if let Some(out) = stdout {
            tokio::spawn(read_lines(out, LogStream::Stdout, self.clone()));
        }
        if let Some(err) = stderr {
            tokio::spawn(read_lines(err, LogStream::Stderr, self.clone()));
        }
    }

    /// Drops the output captured so far.
    pub fn clear(&self) {
        let mut buf = self.lock();
        buf.lines.clear();
        buf.bytes = 0;
        buf.dropped = 0;
    }

    /// Takes the output read so far. For an invocation `answered` by a runtime that
    /// prints end marks (or [`INIT_MARK`] for start-up output), first waits for its
    /// marks; otherwise waits a moment for lines still in the pipes.
    pub async fn take(&self, answered: Option<&str>) -> Vec<ProcessLogLine> {
        match answered {
            Some(id) => {
                let _ = tokio::time::timeout(MARK_WAIT, self.until_marked(id)).await;
            }
            None => {
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
            }
        }
        let mut buf = self.lock();
        let mut lines = std::mem::take(&mut buf.lines);
        if buf.dropped > 0 {
            lines.push(platform(format!(
                "{} bytes of output were dropped (over the {} byte limit)",
                buf.dropped, MAX_BUFFERED_LOG_BYTES
            )));
        }
        buf.bytes = 0;
        buf.dropped = 0;
        lines
    }

    async fn until_marked(&self, id: &str) {
        loop {
            let notified = self.marked.notified();
            tokio::pin!(notified);
            // Registered before the check, so a mark read in between still wakes us.
            notified.as_mut().enable();
            if self.lock().ended.iter().all(|e| e.as_deref() == Some(id)) {
                return;
            }
            notified.await;
        }
    }

    /// Adds one line read from `stream`, or notes the end mark it carries (after any
    /// text the function printed without a newline).
    fn push(&self, stream: LogStream, mut text: String) {
        let mut buf = self.lock();
        if let Some(at) = text.rfind(MARK_START).filter(|_| text.ends_with(MARK_END)) {
            let id = text[at + MARK_START.len()..text.len() - MARK_END.len_utf8()].to_string();
            text.truncate(at);
            buf.ended[usize::from(stream == LogStream::Stderr)] = Some(id);
            self.marked.notify_waiters();
            if text.is_empty() {
                return;
            }
        }
        if buf.bytes + text.len() > MAX_BUFFERED_LOG_BYTES {
            buf.dropped += text.len();
            return;
        }
        buf.bytes += text.len();
        buf.lines.push(ProcessLogLine {
            stream,
            timestamp: Timestamp::now_utc(),
            message: text,
        });
    }
}

/// A platform line (an error or note of the node about the instance), captured now.
pub(crate) fn platform(message: String) -> ProcessLogLine {
    ProcessLogLine {
        stream: LogStream::Platform,
        timestamp: Timestamp::now_utc(),
        message,
    }
}

async fn read_lines(pipe: impl AsyncRead + Unpin, stream: LogStream, output: Arc<Output>) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned();
        output.push(stream, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_waits_for_both_end_marks_and_keeps_text_before_them() {
        let out = Arc::new(Output::default());
        out.push(LogStream::Stdout, "hello".into());
        out.push(LogStream::Stdout, format!("no newline{}", end_mark("r1")));
        let late = {
            let out = out.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                out.push(LogStream::Stderr, "late line".into());
                out.push(LogStream::Stderr, end_mark("r1"));
            })
        };
        let lines = out.take(Some("r1")).await;
        late.await.unwrap();
        let text: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(text, ["hello", "no newline", "late line"]);
        // A mark of an older request does not end a newer one's wait early.
        out.push(LogStream::Stdout, "second".into());
        let started = std::time::Instant::now();
        let lines = out.take(Some("r2")).await;
        assert!(started.elapsed() >= MARK_WAIT);
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn the_bootstraps_print_the_end_mark() {
        let python = include_str!("bootstrap/python/bootstrap.py");
        let node = include_str!("bootstrap/node/bootstrap.js");
        assert!(python.contains(r#""\x1earcus-end %s\x1e\n""#));
        assert!(node.contains(r"`\x1earcus-end ${id}\x1e\n`"));
        assert_eq!(end_mark("x"), "\x1earcus-end x\x1e");
    }
}
