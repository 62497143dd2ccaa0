//! Observability endpoints: invocation records with filters and cursor pages, stats
//! from rollups, metered usage.

use crate::AppState;
use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::params::{invalid, page_limit, time_param};
use arcus_core::error::ErrorBody;
use arcus_core::record::{InvocationRecord, InvocationStatus, TriggerKind};
use arcus_core::stats::{Cursor, InvocationQuery, Page, StatsView, StatsWindow, UsageView};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

type Res<T> = Result<T, ApiError>;

/// Filters of `GET .../invocations`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct InvocationsParams {
    /// Only this function (app-wide listing only).
    pub function: Option<String>,
    /// Only this invocation.
    pub invocation_id: Option<String>,
    /// Only this version.
    pub version: Option<u32>,
    /// `succeeded`, `failed` or `timed_out`.
    pub status: Option<String>,
    /// `http`, `api`, `async`, `cron`, … (see `TriggerKind`).
    pub trigger: Option<String>,
    /// Only cold (`true`) or warm (`false`) invocations.
    pub cold_start: Option<bool>,
    /// Only invocations that failed with this error code.
    pub error_code: Option<String>,
    /// Started at or after (RFC 3339).
    pub since: Option<String>,
    /// Started before (RFC 3339).
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
}

impl InvocationsParams {
    fn into_query(self) -> Res<InvocationQuery> {
        let limit = page_limit(self.limit)?;
        let status = self
            .status
            .map(|s| {
                InvocationStatus::parse(&s).ok_or_else(|| {
                    invalid(format!(
                        "status must be succeeded, failed or timed_out, got `{s}`"
                    ))
                })
            })
            .transpose()?;
        let trigger = self
            .trigger
            .map(|t| {
                TriggerKind::parse(&t).ok_or_else(|| invalid(format!("unknown trigger `{t}`")))
            })
            .transpose()?;
        Ok(InvocationQuery {
            id: self.invocation_id,
            function: self.function,
            version: self.version,
            status,
            trigger,
            cold_start: self.cold_start,
            error_code: self.error_code,
            since: time_param("since", self.since.as_deref())?,
            until: time_param("until", self.until.as_deref())?,
            cursor: self.cursor.as_deref().map(Cursor::parse).transpose()?,
            limit,
        })
    }
}

/// An app's invocation records, newest first, filtered, one page at a time.
#[utoipa::path(get, path = "/api/v1/apps/{app}/invocations", tag = "observability", params(InvocationsParams),
    responses((status = 200, body = Page<InvocationRecord>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn app_invocations(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiQuery(p): ApiQuery<InvocationsParams>,
) -> Res<Json<Page<InvocationRecord>>> {
    Ok(Json(
        s.engine.query_invocations(&app, &p.into_query()?).await?,
    ))
}

/// A function's invocation records, newest first, filtered, one page at a time.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/invocations", tag = "observability",
    params(InvocationsParams),
    responses((status = 200, body = Page<InvocationRecord>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn function_invocations(
    State(s): State<AppState>,
    ApiPath((app, function)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<InvocationsParams>,
) -> Res<Json<Page<InvocationRecord>>> {
    let q = InvocationQuery {
        function: Some(function),
        ..p.into_query()?
    };
    Ok(Json(s.engine.query_invocations(&app, &q).await?))
}

/// `?window=` of stats.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatsParams {
    /// `1h` (minute buckets, default), `24h` or `7d` (hour buckets).
    pub window: Option<String>,
}

impl StatsParams {
    fn window(&self) -> Res<StatsWindow> {
        Ok(self
            .window
            .as_deref()
            .map(StatsWindow::parse)
            .transpose()?
            .unwrap_or(StatsWindow::Hour))
    }
}

/// Calls, success rate, errors by code, latency percentiles and cold-start rate of an
/// app over a window, in buckets.
#[utoipa::path(get, path = "/api/v1/apps/{app}/stats", tag = "observability", params(StatsParams),
    responses((status = 200, body = StatsView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn app_stats(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Res<Json<StatsView>> {
    Ok(Json(s.engine.stats(&app, None, p.window()?).await?))
}

/// The same stats for one function.
#[utoipa::path(get, path = "/api/v1/apps/{app}/functions/{function}/stats", tag = "observability",
    params(StatsParams),
    responses((status = 200, body = StatsView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn function_stats(
    State(s): State<AppState>,
    ApiPath((app, function)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Res<Json<StatsView>> {
    Ok(Json(
        s.engine.stats(&app, Some(&function), p.window()?).await?,
    ))
}

/// `?from=&to=` of usage.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UsageParams {
    /// First hour (RFC 3339, rounded down to the hour); default `to` − 24 h.
    pub from: Option<String>,
    /// End (RFC 3339, rounded down to the hour, exclusive); default the end of the
    /// current hour.
    pub to: Option<String>,
}

/// Metered use per function and hour: invocations, GB-seconds, compute time, egress.
#[utoipa::path(get, path = "/api/v1/apps/{app}/usage", tag = "observability", params(UsageParams),
    responses((status = 200, body = UsageView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn usage(
    State(s): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiQuery(p): ApiQuery<UsageParams>,
) -> Res<Json<UsageView>> {
    let from = time_param("from", p.from.as_deref())?;
    let to = time_param("to", p.to.as_deref())?;
    Ok(Json(s.engine.usage(&app, from, to).await?))
}
