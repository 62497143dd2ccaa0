//! Log endpoints: an app's or a function's lines, filtered, newest first in cursor
//! pages; with `follow=true`, a live server-sent-event stream that resumes after the
//! `Last-Event-ID` (or `after`) seq without losing lines.

use crate::AppState;
use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::params::{invalid, page_limit, time_param};
use arcus_core::error::ErrorBody;
use arcus_core::record::{LogLine, LogStream};
use arcus_core::stats::{Cursor, Page};
use arcus_core::store::LogQuery;
use arcus_engine::LogFollower;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream;
use serde::Deserialize;
use std::time::Duration;

type Res<T> = Result<T, ApiError>;

/// How often an idle follow stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Filters of `GET .../logs`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct LogsParams {
    /// Only this function (app-wide listing only).
    pub function: Option<String>,
    /// Only this invocation.
    pub invocation_id: Option<String>,
    /// `stdout`, `stderr` or `platform`.
    pub stream: Option<String>,
    /// Only lines containing this text (case-sensitive substring).
    pub text: Option<String>,
    /// Captured at or after (RFC 3339).
    pub since: Option<String>,
    /// Captured before (RFC 3339).
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Stream lines live as server-sent events (`text/event-stream`) instead of a page.
    #[serde(default)]
    pub follow: bool,
    /// With `follow`: first send the stored lines after this seq (the `Last-Event-ID`
    /// header wins when both are given); without either, only new lines.
    pub after: Option<u64>,
}

impl LogsParams {
    fn into_query(self) -> Res<(LogQuery, bool, Option<u64>)> {
        let limit = page_limit(self.limit)?;
        let stream = self
            .stream
            .map(|s| {
                LogStream::parse(&s).ok_or_else(|| {
                    invalid(format!(
                        "stream must be stdout, stderr or platform, got `{s}`"
                    ))
                })
            })
            .transpose()?;
        if self.text.as_deref() == Some("") {
            return Err(invalid("text must not be empty".to_string()));
        }
        let q = LogQuery {
            function: self.function,
            invocation_id: self.invocation_id,
            stream,
            text: self.text,
            since: time_param("since", self.since.as_deref())?,
            until: time_param("until", self.until.as_deref())?,
            cursor: self.cursor.as_deref().map(Cursor::parse).transpose()?,
            limit,
        };
        Ok((q, self.follow, self.after))
    }
}

/// The seq to resume after: `Last-Event-ID` (what an SSE client sends on reconnect),
/// else `?after=`.
fn resume_after(headers: &HeaderMap, after: Option<u64>) -> Res<Option<u64>> {
    match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| invalid("Last-Event-ID must be a log line seq".to_string())),
        None => Ok(after),
    }
}

fn line_event(line: &LogLine) -> Event {
    let event = Event::default().id(line.seq.to_string());
    match serde_json::to_string(line) {
        Ok(json) => event.data(json),
        Err(_) => event.comment("unserialisable line"),
    }
}

fn error_event(e: &arcus_core::Error) -> Event {
    let body = serde_json::json!({
        "error": {"code": e.code.as_str(), "message": e.message, "request_id": ""}
    });
    Event::default().event("error").data(body.to_string())
}

/// One SSE event per line, as the follower finds them; an `error` event ends it.
fn follow_stream(
    follower: LogFollower,
) -> impl futures::Stream<Item = Result<Event, std::convert::Infallible>> {
    stream::unfold(Some(follower), |state| async move {
        let mut follower = state?;
        match follower.next_lines().await {
            Ok(lines) => {
                let events: Vec<_> = lines.iter().map(|l| Ok(line_event(l))).collect();
                Some((stream::iter(events), Some(follower)))
            }
            Err(e) => Some((stream::iter(vec![Ok(error_event(&e))]), None)),
        }
    })
    .flatten()
}

async fn respond(
    s: AppState,
    app: String,
    headers: HeaderMap,
    params: LogsParams,
) -> Res<Response> {
    let (q, follow, after) = params.into_query()?;
    if !follow {
        return Ok(Json(s.engine.query_logs(&app, &q).await?).into_response());
    }
    let after = resume_after(&headers, after)?;
    let follower = s.engine.follow_logs(&app, q, after).await?;
    let sse = Sse::new(follow_stream(follower)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(sse.into_response())
}

/// An app's log lines, newest first, filtered, one page at a time; with
/// `follow=true`, a live `text/event-stream` of new lines (event id = the line's seq,
/// data = the line as JSON; resumes after `Last-Event-ID`; a comment every 15 s).
#[utoipa::path(get, path = "/api/v1/apps/{app}/logs", tag = "observability", params(LogsParams),
    responses((status = 200, body = Page<LogLine>, description = "A page, or with `follow=true` a `text/event-stream` of lines"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn app_logs(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<LogsParams>,
) -> Res<Response> {
    respond(s, app, headers, p).await
}

/// A function's log lines, newest first, filtered, one page at a time; with
/// `follow=true`, a live `text/event-stream` of new lines (see the app route).
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/logs", tag = "observability",
    params(LogsParams),
    responses((status = 200, body = Page<LogLine>, description = "A page, or with `follow=true` a `text/event-stream` of lines"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn function_logs(
    State(s): State<AppState>,
    ApiPath((app, function)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<LogsParams>,
) -> Res<Response> {
    let p = LogsParams {
        function: Some(function),
        ..p
    };
    respond(s, app, headers, p).await
}
