//! Log lines: filtered pages, and a live follow over server-sent events that can
//! resume after the last line it delivered.

use crate::{Client, ClientError, Result, error_from_parts};
use arcus_core::ErrorCode;
use arcus_core::record::LogLine;
use arcus_core::stats::Page;
use reqwest::{Method, Response};

/// Filters of [`Client::query_logs`] and [`Client::follow_logs`]; every field is
/// optional.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only this invocation.
    pub invocation_id: Option<String>,
    /// `stdout`, `stderr` or `platform`.
    pub stream: Option<String>,
    /// Only lines containing this text (case-sensitive).
    pub text: Option<String>,
    /// Captured at or after (RFC 3339).
    pub since: Option<String>,
    /// Captured before (RFC 3339).
    pub until: Option<String>,
    /// The `next_cursor` of the previous page (pages only).
    pub cursor: Option<String>,
    /// Page size, 1–1000 (pages only).
    pub limit: Option<u32>,
}

impl LogFilter {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        let mut put = |k, v: &Option<String>| {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        };
        put("invocation_id", &self.invocation_id);
        put("stream", &self.stream);
        put("text", &self.text);
        put("since", &self.since);
        put("until", &self.until);
        q
    }
}

impl Client {
    fn logs_url(&self, app: &str, function: Option<&str>) -> Result<reqwest::Url> {
        match function {
            Some(f) => self.url(&["apps", app, "functions", f, "logs"]),
            None => self.url(&["apps", app, "logs"]),
        }
    }

    /// `GET /apps/{app}[/functions/{fn}]/logs`: one page of lines, newest first.
    pub async fn query_logs(
        &self,
        app: &str,
        function: Option<&str>,
        filter: &LogFilter,
    ) -> Result<Page<LogLine>> {
        let mut q = filter.pairs();
        if let Some(c) = &filter.cursor {
            q.push(("cursor", c.clone()));
        }
        if let Some(l) = filter.limit {
            q.push(("limit", l.to_string()));
        }
        let url = self.logs_url(app, function)?;
        self.json(self.request(Method::GET, url).query(&q)).await
    }

    /// `GET .../logs?follow=true`: lines as they are written. With `after` (sent as
    /// `Last-Event-ID`), first the stored lines after that seq, so a reconnect that
    /// passes the last seq it got misses nothing and repeats nothing.
    pub async fn follow_logs(
        &self,
        app: &str,
        function: Option<&str>,
        filter: &LogFilter,
        after: Option<u64>,
    ) -> Result<LogEvents> {
        let mut q = filter.pairs();
        q.push(("follow", "true".to_string()));
        let url = self.logs_url(app, function)?;
        let mut req = self
            .request(Method::GET, url)
            .query(&q)
            .header("accept", "text/event-stream");
        if let Some(seq) = after {
            req = req.header("last-event-id", seq.to_string());
        }
        Ok(LogEvents {
            resp: self.send(req).await?,
            buf: Vec::new(),
        })
    }
}

/// A live stream of log lines (see [`Client::follow_logs`]).
pub struct LogEvents {
    resp: Response,
    buf: Vec<u8>,
}

impl LogEvents {
    /// The next line; `None` when the server closed the stream. A dropped connection
    /// is an error: follow again after the last line's `seq`.
    pub async fn next(&mut self) -> Result<Option<LogLine>> {
        loop {
            while let Some(end) = find_blank_line(&self.buf) {
                let block: Vec<u8> = self.buf.drain(..end.1).collect();
                if let Some(line) = parse_event(&block[..end.0])? {
                    return Ok(Some(line));
                }
            }
            match self.resp.chunk().await? {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
    }
}

/// The end of the first event in `buf`: (where its text ends, where the next starts).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// One event: a log line, nothing (comments, keep-alives), or the stream's error.
fn parse_event(block: &[u8]) -> Result<Option<LogLine>> {
    let text = String::from_utf8_lossy(block);
    let mut event = "message";
    let mut data = String::new();
    for line in text.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value,
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    if data.is_empty() {
        return Ok(None);
    }
    if event == "error" {
        // The stream was already 200: take the status the error's code stands for.
        let status = serde_json::from_str::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| serde_json::from_value::<ErrorCode>(v["error"]["code"].clone()).ok())
            .map_or(500, ErrorCode::status);
        return Err(error_from_parts(status, None, data.as_bytes()));
    }
    serde_json::from_str(&data)
        .map(Some)
        .map_err(|e| ClientError::Decode {
            status: 200,
            reason: e.to_string(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_and_parsed() {
        let line = r#"{"seq":7,"invocation_id":"i","app":"a","function":"f","stream":"stdout","timestamp":"2024-01-01T00:00:00Z","message":"hi"}"#;
        let buf = format!(":\n\nid: 7\ndata: {line}\n\n");
        let first = find_blank_line(buf.as_bytes()).unwrap();
        assert_eq!(parse_event(&buf.as_bytes()[..first.0]).unwrap(), None);
        let rest = &buf.as_bytes()[first.1..];
        let second = find_blank_line(rest).unwrap();
        let got = parse_event(&rest[..second.0]).unwrap().unwrap();
        assert_eq!((got.seq, got.message.as_str()), (7, "hi"));
        let err = r#"event: error
data: {"error":{"code":"app_not_found","message":"gone","request_id":""}}"#;
        let e = parse_event(err.as_bytes()).unwrap_err();
        assert_eq!((e.code(), e.status()), (Some("app_not_found"), Some(404)));
    }
}
