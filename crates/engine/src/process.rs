//! The data path of process functions (python3, node, custom): the request becomes a
//! Lambda event, runs on a pooled sandboxed instance, and the handler's result becomes
//! the response.

use crate::apigw::{self, EventContext};
use crate::dispatch::{FnBody, Input, Invoked, Resolved, Target, full_body};
use crate::{Engine, recorder::PendingRecord};
use arcus_core::model::{Network, Runtime};
use arcus_core::record::InvocationStatus;
use arcus_core::scaling::Scaling;
use arcus_core::{Error, ErrorCode, Result};
use arcus_runtime_process::{
    InvokeRequest, NetworkMode, PoolPolicy, PrepareError, ProcessCompletion, ProcessKind,
    ProcessOutcome, ProcessRuntime, ProcessSpec,
};
use bytes::Bytes;
use std::time::Duration;

/// The region name functions see (`AWS_REGION`, ARNs).
pub const REGION: &str = "arcus-local";

/// The process kind of a runtime (`None` for wasm).
pub(crate) fn kind(runtime: Runtime) -> Option<ProcessKind> {
    match runtime {
        Runtime::Wasm => None,
        Runtime::Python3 => Some(ProcessKind::Python3),
        Runtime::Node => Some(ProcessKind::Node),
        Runtime::Custom => Some(ProcessKind::Custom),
    }
}

/// The ARN of a function as Lambda's API and `context.invoked_function_arn` spell it.
pub fn function_arn(app: &str, function: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("arn:aws:lambda:{REGION}:{app}:function:{function}:{q}"),
        None => format!("arn:aws:lambda:{REGION}:{app}:function:{function}"),
    }
}

/// The pool limits of a function's scaling settings.
pub(crate) fn pool_policy(s: &Scaling) -> PoolPolicy {
    PoolPolicy {
        min_instances: s.min_instances,
        keep_alive: Duration::from_secs(u64::from(s.keep_alive_s)),
    }
}

/// Maps a preparation failure to the API error.
pub(crate) fn prepare_error(e: PrepareError) -> Error {
    match e {
        PrepareError::InvalidCode(m) => Error::new(ErrorCode::InvalidCode, m),
        PrepareError::TooLarge(m) => Error::new(ErrorCode::PayloadTooLarge, m),
        PrepareError::BuildFailed { message, log } => Error::new(
            ErrorCode::BuildFailed,
            format!("{message}\n--- build log ---\n{log}"),
        ),
        PrepareError::Internal(m) => Error::internal(m),
    }
}

impl Engine {
    pub(crate) fn process_runtime(&self) -> Result<&ProcessRuntime> {
        self.inner.process.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::Unavailable,
                "process runtimes (python3, node, custom) are not available on this node; see its start-up log",
            )
        })
    }

    /// Makes sure the code is unpacked and built on this node (after a restart or on a
    /// node that did not receive the upload), fetching it from the blob store.
    async fn ensure_prepared(
        &self,
        rt: &ProcessRuntime,
        kind: ProcessKind,
        sha: &str,
    ) -> Result<()> {
        if rt.is_prepared(sha) {
            return Ok(());
        }
        let zip = self.inner.blobs.get(sha).await?;
        rt.prepare(kind, sha, zip)
            .await
            .map(drop)
            .map_err(prepare_error)
    }

    pub(crate) fn process_spec(
        &self,
        target: &Target,
        r: &Resolved,
        kind: ProcessKind,
    ) -> ProcessSpec {
        let version = r
            .version
            .map_or_else(|| "$LATEST".to_string(), |v| v.to_string());
        ProcessSpec {
            kind,
            code_sha256: r.sha256.clone(),
            handler: r.config.handler.clone().unwrap_or_default(),
            memory_mb: r.config.memory_mb,
            timeout: Duration::from_millis(r.config.timeout_ms),
            env: r
                .config
                .env
                .clone()
                .into_iter()
                .chain(r.secret_env.iter().cloned())
                .collect(),
            network: match r.config.network {
                Network::None => NetworkMode::None,
                Network::Outbound => NetworkMode::Outbound,
            },
            function_name: target.function.clone(),
            function_version: version,
            function_arn: function_arn(&target.app, &target.function, None),
            log_group: format!("/arcus/{}/{}", target.app, target.function),
            region: REGION.to_string(),
        }
    }

    /// Pre-warms `min_instances` of a just-published version of a process function.
    pub(crate) async fn prewarm_process(
        &self,
        target: &Target,
        resolved: Resolved,
        kind: ProcessKind,
    ) -> Result<()> {
        if resolved.scaling.min_instances == 0 {
            return Ok(());
        }
        let rt = self.process_runtime()?;
        self.ensure_prepared(rt, kind, &resolved.sha256).await?;
        let resolved = self.with_secret_env(&target.app, resolved).await?;
        let spec = self.process_spec(target, &resolved, kind);
        rt.prewarm(&spec, &pool_policy(&resolved.scaling)).await;
        Ok(())
    }

    pub(crate) async fn invoke_process(
        &self,
        target: &Target,
        resolved: Resolved,
        kind: ProcessKind,
        input: Input,
        mut pending: PendingRecord,
        traceparent: &arcus_core::trace::TraceParent,
    ) -> Result<Invoked> {
        let rt = self.process_runtime()?;
        self.ensure_prepared(rt, kind, &resolved.sha256).await?;
        let spec = self.process_spec(target, &resolved, kind);
        let id = pending.record.id.clone();
        let (event, http_call) = match input {
            Input::Event(body) | Input::Queued { body, .. } => (body, false),
            Input::Http(req) => {
                let (parts, body) = req.into_parts();
                let stage = target.qualifier.to_string();
                let ctx = EventContext {
                    request_id: &id,
                    app: &target.app,
                    function: &target.function,
                    stage: &stage,
                    source_ip: parts
                        .headers
                        .get("x-forwarded-for")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from),
                    time_epoch_ms: (pending.record.started_at.unix_timestamp_nanos() / 1_000_000)
                        as i64,
                };
                (apigw::request_event(&parts, &body, &ctx), true)
            }
        };
        let qualifier = match &target.qualifier {
            arcus_core::names::Qualifier::Draft => None,
            q => Some(q.to_string()),
        };
        let req = InvokeRequest {
            request_id: id.clone(),
            event,
            invoked_function_arn: function_arn(&target.app, &target.function, qualifier.as_deref()),
            trace_id: Some(traceparent.xray()),
            client_context: None,
            cognito_identity: None,
        };
        let done = rt.invoke(&spec, &pool_policy(&resolved.scaling), req).await;
        pending.record.cold_start = done.cold_start;
        pending.set_init(done.init_duration);
        if let Some(s) = &mut pending.spans {
            s.acquired(std::time::SystemTime::now().checked_sub(done.duration));
        }
        let result = outcome_response(&done, &spec, http_call, resolved.version, &id);
        if let Ok(inv) = &result {
            pending.record.http_status = Some(inv.response.status().as_u16());
            pending.record.egress_bytes = http_body::Body::size_hint(inv.response.body())
                .exact()
                .unwrap_or(0);
        }
        finish_record(pending, done);
        result
    }
}

/// Turns a completed invocation into the caller's response or error.
fn outcome_response(
    done: &ProcessCompletion,
    spec: &ProcessSpec,
    http_call: bool,
    version: Option<u32>,
    id: &str,
) -> Result<Invoked> {
    let invoked = |response: http::Response<FnBody>, function_error| Invoked {
        invocation_id: id.to_string(),
        version,
        response,
        function_error,
    };
    match &done.outcome {
        ProcessOutcome::Ok(payload) if http_call => {
            let resp = apigw::result_response(payload)
                .map_err(|e| Error::new(ErrorCode::FunctionError, e.to_string()))?;
            Ok(invoked(resp.map(full_body), None))
        }
        ProcessOutcome::Ok(payload) => Ok(invoked(json_response(200, payload.clone()), None)),
        ProcessOutcome::FunctionError {
            error_type,
            payload,
        } => Ok(invoked(
            json_response(502, payload.clone()),
            Some(error_type.clone()),
        )),
        ProcessOutcome::InitError {
            error_type,
            message,
        } => Err(Error::new(
            ErrorCode::InitError,
            format!("{error_type}: {message}"),
        )),
        ProcessOutcome::Timeout => Err(Error::new(
            ErrorCode::FunctionTimeout,
            format!(
                "Task timed out after {:.2} seconds",
                spec.timeout.as_secs_f64()
            ),
        )),
        ProcessOutcome::OutOfMemory => Err(Error::new(
            ErrorCode::OutOfMemory,
            format!(
                "the function used more than its {} MiB of memory",
                spec.memory_mb
            ),
        )),
        ProcessOutcome::Crashed(m) => Err(Error::new(
            ErrorCode::FunctionError,
            format!("the function's process exited during the invocation: {m}"),
        )),
        ProcessOutcome::NoCapacity(m) => Err(Error::new(ErrorCode::NoCapacity, m.clone())),
        ProcessOutcome::Internal(m) => Err(Error::internal(m.clone())),
    }
}

fn json_response(status: u16, payload: Bytes) -> http::Response<FnBody> {
    let mut resp = http::Response::new(full_body(payload));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn finish_record(mut pending: PendingRecord, done: ProcessCompletion) {
    pending.init_lines = done.init_lines;
    let (status, code) = match &done.outcome {
        ProcessOutcome::Ok(_) => (InvocationStatus::Succeeded, None),
        ProcessOutcome::Timeout => (InvocationStatus::TimedOut, Some(ErrorCode::FunctionTimeout)),
        ProcessOutcome::FunctionError { .. } | ProcessOutcome::Crashed(_) => {
            (InvocationStatus::Failed, Some(ErrorCode::FunctionError))
        }
        ProcessOutcome::InitError { .. } => (InvocationStatus::Failed, Some(ErrorCode::InitError)),
        ProcessOutcome::OutOfMemory => (InvocationStatus::Failed, Some(ErrorCode::OutOfMemory)),
        ProcessOutcome::NoCapacity(_) => (InvocationStatus::Failed, Some(ErrorCode::NoCapacity)),
        ProcessOutcome::Internal(_) => (InvocationStatus::Failed, Some(ErrorCode::Internal)),
    };
    pending.record.max_memory_mb = done.max_memory_mb;
    let lines = done
        .logs
        .into_iter()
        .map(|l| (l.stream, l.timestamp, l.message));
    pending.finish(done.duration, status, code, true, lines);
}
