//! The `[tracing]` config section and the optional OTLP/HTTP span exporter (ADR 0011).
//! Without `otlp_endpoint` nothing is built: the engine gets no tracer and builds no
//! spans.

use anyhow::Result;
use arcus_engine::trace::Spans;
use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Validated `[tracing]`.
#[derive(Debug, Clone)]
pub struct TracingConfig {
    /// Where spans are POSTed (`…/v1/traces`); `None`: no export.
    pub traces_url: Option<String>,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// Time between batch exports.
    pub batch_delay: Duration,
}

impl TracingConfig {
    /// Validates the section alone; `env_endpoint` (`ARCUS_OTLP_ENDPOINT`) wins over the
    /// file (`Config::load` validates it with the rest through [`Self::from_settings`]).
    #[cfg(test)]
    pub fn load(
        f: crate::config_file::TracingFileConfig,
        env_endpoint: Option<String>,
    ) -> Result<Self> {
        Self::from_settings(crate::config_file::tracing(&f, env_endpoint.as_deref())?)
    }

    /// Completes the validated section with the URL spans are sent to.
    pub fn from_settings(s: crate::config_file::TracingSettings) -> Result<Self> {
        Ok(Self {
            traces_url: s.otlp_endpoint.map(|e| traces_url(&e)).transpose()?,
            service_name: s.service_name,
            batch_delay: s.batch_delay,
        })
    }
}

/// `http://host:port[/base]` → `http://host:port[/base]/v1/traces` (kept if it already
/// ends so). Only plain HTTP: this build has no TLS client.
fn traces_url(endpoint: &str) -> Result<String> {
    let bad = |why: &str| {
        anyhow::anyhow!("invalid `tracing.otlp_endpoint` (ARCUS_OTLP_ENDPOINT): {endpoint:?} {why}")
    };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| bad("is not a URL like http://127.0.0.1:4318"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "uses https, which this build cannot send (use a local collector on http)",
            ));
        }
        _ => return Err(bad("is not a URL like http://127.0.0.1:4318")),
    }
    if uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        return Err(bad("needs a host and no query"));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    })
}

/// The running exporter; shut it down to send what is buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Exports the spans still buffered and stops the batch thread.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // Blocks until the batch thread is done, and that thread waits for an HTTP
        // request running on this runtime: so not on a runtime worker.
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            tracing::warn!("span exporter shutdown: {e}");
        }
    }
}

/// Builds the node's span sink: no tracer without an endpoint, else a batch exporter
/// of OTLP protobuf over HTTP. Call inside the tokio runtime.
pub fn start(config: &TracingConfig) -> Result<(Spans, Option<Exporter>)> {
    let Some(url) = &config.traces_url else {
        return Ok((Spans::default(), None));
    };
    let client = ReqwestOnTokio {
        client: reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?,
        runtime: tokio::runtime::Handle::current(),
        failing: Arc::new(AtomicBool::new(false)),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(config.batch_delay)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("arcus");
    tracing::info!(%url, "exporting spans over OTLP/HTTP");
    Ok((
        Spans::new(Some(BoxedTracer::new(Box::new(tracer)))),
        Some(Exporter { provider }),
    ))
}

/// The exporter's HTTP client: the batch processor runs on its own thread, so each
/// request is spawned on the node's tokio runtime and awaited from there.
#[derive(Debug, Clone)]
struct ReqwestOnTokio {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    /// Set after a failed export, so a down collector is logged once, not per batch.
    failing: Arc<AtomicBool>,
}

#[async_trait]
impl HttpClient for ReqwestOnTokio {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> std::result::Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let (parts, body) = request.into_parts();
        let task = self.runtime.spawn(async move {
            let resp = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        let result = match task.await {
            Ok(Ok((status, body))) if status.is_success() => {
                self.failing.store(false, Ordering::Relaxed);
                let mut resp = http::Response::new(body);
                *resp.status_mut() = status;
                return Ok(resp);
            }
            Ok(Ok((status, body))) => {
                let mut resp = http::Response::new(body);
                *resp.status_mut() = status;
                Ok(resp)
            }
            Ok(Err(e)) => Err(Box::new(e) as HttpError),
            Err(e) => Err(Box::new(e) as HttpError),
        };
        if !self.failing.swap(true, Ordering::Relaxed) {
            match &result {
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "span export refused by the collector")
                }
                Err(e) => tracing::warn!("span export failed: {e}"),
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::TracingFileConfig;

    #[test]
    fn endpoint_becomes_the_traces_url() {
        let load = |e: &str| TracingConfig::load(TracingFileConfig::default(), Some(e.into()));
        assert_eq!(
            load("http://127.0.0.1:4318").unwrap().traces_url.as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            load("http://c:4318/otel/").unwrap().traces_url.as_deref(),
            Some("http://c:4318/otel/v1/traces")
        );
        assert_eq!(
            load("http://c:4318/v1/traces")
                .unwrap()
                .traces_url
                .as_deref(),
            Some("http://c:4318/v1/traces")
        );
        for bad in ["nope", "https://c:4318", "ftp://c", "http://c:4318/?x=1"] {
            let e = load(bad).unwrap_err().to_string();
            assert!(e.contains("tracing.otlp_endpoint"), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_and_ranges() {
        let c = TracingConfig::load(TracingFileConfig::default(), None).unwrap();
        assert!(c.traces_url.is_none());
        assert_eq!(c.service_name, "arcus");
        assert_eq!(c.batch_delay, Duration::from_secs(5));
        let file = TracingFileConfig {
            otlp_endpoint: Some("http://file:4318".into()),
            ..Default::default()
        };
        let c = TracingConfig::load(file, Some("http://env:4318".into())).unwrap();
        assert_eq!(c.traces_url.as_deref(), Some("http://env:4318/v1/traces"));
        let file = TracingFileConfig {
            batch_delay_ms: Some(0),
            ..Default::default()
        };
        let e = TracingConfig::load(file, None).unwrap_err().to_string();
        assert!(e.contains("tracing.batch_delay_ms"), "{e}");
    }

    #[tokio::test]
    async fn no_endpoint_builds_no_exporter() {
        let c = TracingConfig::load(TracingFileConfig::default(), None).unwrap();
        let (spans, exporter) = start(&c).unwrap();
        assert!(!spans.enabled());
        assert!(exporter.is_none());
    }
}
