//! Subprocesses under test, killed by a guard on drop (also on error), with their stderr
//! drained by a thread and the last lines kept for error messages.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Lines of a subprocess's stderr kept for error messages.
const KEPT_LINES: usize = 40;
/// Lines of a subprocess's stderr forwarded line by line; the rest is drained unread.
const MAX_FORWARDED_LINES: usize = 100_000;

/// A running subprocess, killed (SIGKILL) and reaped when dropped. Its stderr is drained
/// by a thread so the child never blocks on a full pipe; the last lines are kept.
#[derive(Debug)]
pub struct ChildGuard {
    name: &'static str,
    child: Child,
    recent: Arc<Mutex<VecDeque<String>>>,
}

impl ChildGuard {
    /// Starts `command` with stdin and stdout closed and stderr piped; the returned
    /// receiver gets each stderr line (up to [`MAX_FORWARDED_LINES`]).
    pub fn spawn(
        name: &'static str,
        mut command: Command,
    ) -> Result<(Self, mpsc::UnboundedReceiver<String>)> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        let stderr = child.stderr.take();
        let guard = Self {
            name,
            child,
            recent: Arc::default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let recent = guard.recent.clone();
        if let Some(stderr) = stderr {
            std::thread::Builder::new()
                .name(format!("{name}-stderr"))
                .spawn(move || drain(stderr, &recent, &tx))
                .context("cannot start the stderr reader thread")?;
        }
        Ok((guard, rx))
    }

    /// The last lines the subprocess wrote to stderr, for error messages.
    pub fn recent_output(&self) -> String {
        match self.recent.lock() {
            Ok(lines) if !lines.is_empty() => {
                let text: Vec<&str> = lines.iter().map(String::as_str).collect();
                format!(
                    "\n--- last lines of {}'s stderr ---\n{}",
                    self.name,
                    text.join("\n")
                )
            }
            _ => String::new(),
        }
    }

    /// The subprocess's process id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the subprocess has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => bail!(
                "{} exited early ({status}){}",
                self.name,
                self.recent_output()
            ),
            Ok(None) => Ok(()),
            Err(e) => Err(anyhow!("cannot check on {}: {e}", self.name)),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Errors mean the process is already gone; nothing else to do in a destructor.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stderr` line by line until EOF (the child's exit), keeping the last lines and
/// forwarding them; after [`MAX_FORWARDED_LINES`] the rest is discarded unread.
fn drain(stderr: impl Read, recent: &Mutex<VecDeque<String>>, tx: &mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(stderr);
    for line in reader.by_ref().lines().take(MAX_FORWARDED_LINES) {
        let Ok(line) = line else { break };
        if let Ok(mut kept) = recent.lock() {
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(line.clone());
        }
        let _ = tx.send(line);
    }
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
}
