//! Request and response bodies of the REST API, with their validation.

use crate::events::AsyncConfig;
use crate::limits::*;
use crate::model::{
    AliasTarget, App, Canary, ExecConfig, FunctionAuth, FunctionErrorCode, FunctionMeta, Network,
    Runtime,
};
use crate::scaling::{AppQuotas, Scaling};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /apps`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// App name, `[a-z0-9][a-z0-9-]{0,62}`.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `PATCH /apps/{app}`: fields present are replaced. (Quotas are set here; a new app
/// has none.)
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The app's quotas (replaced as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<AppQuotas>,
}

/// `POST /apps/{app}/functions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFunction {
    /// Function name, `[a-z0-9][a-z0-9-]{0,62}`.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub name: String,
    /// Runtime; default `wasm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// Memory in MiB; default 128, wasm range 16–4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// Timeout in ms; default 30000, max 900000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Environment variables set from the app's secrets: variable → secret name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, String>>,
    /// Hosts the function may call over HTTP; default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Handler: `module.function` (python3), `file.export` (node); required for those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Outbound network of a process function; default `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// JSON Schema of the input event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input_schema: Option<serde_json::Value>,
    /// JSON Schema of the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<serde_json::Value>,
    /// Documented error codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_codes: Option<Vec<FunctionErrorCode>>,
    /// Scaling settings (replaced whole when given); defaults in `docs/limits.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    /// Async invocation settings (replaced whole when given): retries, event age,
    /// concurrency, ordering, destinations.
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub async_config: Option<AsyncConfig>,
    /// Who may call the function's HTTP route: `public` (default) or `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<FunctionAuth>,
}

/// `PATCH /apps/{app}/functions/{fn}`: every field optional; absent fields are kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFunction {
    /// Memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// Timeout in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Replaces the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Replaces the secret references (variable → secret name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, String>>,
    /// Replaces the allowed hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Replaces the handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Replaces the outbound network setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Replaces the tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// JSON Schema of the input event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input_schema: Option<serde_json::Value>,
    /// JSON Schema of the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<serde_json::Value>,
    /// Documented error codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_codes: Option<Vec<FunctionErrorCode>>,
    /// Scaling settings (replaced whole when given); defaults in `docs/limits.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    /// Async invocation settings (replaced whole when given): retries, event age,
    /// concurrency, ordering, destinations.
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub async_config: Option<AsyncConfig>,
    /// Who may call the function's HTTP route: `public` (default) or `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<FunctionAuth>,
}

/// `POST .../versions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishVersion {
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `PUT .../aliases/{alias}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutAlias {
    /// Main version.
    pub version: u32,
    /// Optional weighted canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

impl PutAlias {
    /// Checks the weight range and that the canary differs from the main version.
    pub fn validate(&self) -> Result<AliasTarget> {
        if let Some(c) = self.canary {
            if c.weight > 100 {
                return Err(Error::invalid("canary.weight must be between 0 and 100"));
            }
            if c.version == self.version {
                return Err(Error::invalid("canary.version must differ from version"));
            }
        }
        Ok(AliasTarget {
            version: self.version,
            canary: self.canary,
        })
    }
}

/// A list response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct List<T> {
    /// The items.
    pub items: Vec<T>,
}

/// `GET /apps` etc. return apps in a list.
pub type AppList = List<App>;

/// Result of `POST .../invoke`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvokeResult {
    /// Invocation id.
    pub invocation_id: String,
    /// Version that ran (`None` for the draft).
    pub version: Option<u32>,
    /// HTTP status the function answered with.
    pub status: u16,
    /// The response body: JSON if it parses as JSON, otherwise a string.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

fn validate_meta_fields(
    description: Option<&String>,
    tags: Option<&Vec<String>>,
    schemas: [Option<&serde_json::Value>; 2],
) -> Result<()> {
    if description.is_some_and(|d| d.len() > MAX_DESCRIPTION_BYTES) {
        return Err(Error::invalid(format!(
            "description is longer than {MAX_DESCRIPTION_BYTES} bytes"
        )));
    }
    if let Some(tags) = tags {
        if tags.len() > MAX_TAGS {
            return Err(Error::invalid(format!(
                "at most {MAX_TAGS} tags are allowed"
            )));
        }
        if tags.iter().any(|t| t.is_empty() || t.len() > 64) {
            return Err(Error::invalid("tags must be 1–64 bytes long"));
        }
    }
    for schema in schemas.into_iter().flatten() {
        if !schema.is_object() && !schema.is_boolean() {
            return Err(Error::invalid(
                "input_schema and output_schema must be JSON Schema objects",
            ));
        }
    }
    Ok(())
}

/// Validates an execution config against the limits of its runtime.
pub fn validate_exec_config(c: &ExecConfig) -> Result<()> {
    let (min, max) = match c.runtime {
        Runtime::Wasm => (MIN_WASM_MEMORY_MB, MAX_WASM_MEMORY_MB),
        Runtime::Python3 | Runtime::Node | Runtime::Custom => {
            (MIN_PROCESS_MEMORY_MB, MAX_PROCESS_MEMORY_MB)
        }
    };
    validate_handler(c)?;
    if c.memory_mb < min || c.memory_mb > max {
        return Err(Error::invalid(format!(
            "memory_mb must be between {min} and {max} for runtime {}",
            c.runtime.as_str()
        )));
    }
    if c.timeout_ms == 0 || c.timeout_ms > MAX_TIMEOUT_MS {
        return Err(Error::invalid(format!(
            "timeout_ms must be between 1 and {MAX_TIMEOUT_MS}"
        )));
    }
    let env_size: usize = c.env.iter().map(|(k, v)| k.len() + v.len()).sum();
    if env_size > MAX_ENV_BYTES {
        return Err(Error::invalid(format!(
            "env is {env_size} bytes; the limit is {MAX_ENV_BYTES}"
        )));
    }
    for key in c.env.keys().chain(c.secrets.keys()) {
        let valid = !key.is_empty()
            && !key.as_bytes()[0].is_ascii_digit()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(Error::invalid(format!(
                "env name {key:?} must match [A-Za-z_][A-Za-z0-9_]*"
            )));
        }
    }
    validate_secret_refs(c)?;
    if c.allowed_hosts.len() > MAX_ALLOWED_HOSTS {
        return Err(Error::invalid(format!(
            "at most {MAX_ALLOWED_HOSTS} allowed_hosts are allowed"
        )));
    }
    for host in &c.allowed_hosts {
        let valid = !host.is_empty()
            && host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]*".contains(&b));
        if !valid {
            return Err(Error::invalid(format!(
                "allowed_hosts entry {host:?} must be a host or host:port"
            )));
        }
    }
    Ok(())
}

/// Checks a config's secret references: at most [`MAX_SECRET_REFS`], valid secret names,
/// and no variable both in `env` and `secrets`.
fn validate_secret_refs(c: &ExecConfig) -> Result<()> {
    if c.secrets.len() > MAX_SECRET_REFS {
        return Err(Error::invalid(format!(
            "at most {MAX_SECRET_REFS} secret references are allowed"
        )));
    }
    for (var, secret) in &c.secrets {
        crate::secret::validate_secret_name(secret)?;
        if c.env.contains_key(var) {
            return Err(Error::invalid(format!(
                "{var:?} is set both in env and in secrets"
            )));
        }
    }
    Ok(())
}

/// Checks a handler against its runtime: python3 `module.function` (dotted modules
/// allowed), node `file.export` (the file may be a relative path).
fn validate_handler(c: &ExecConfig) -> Result<()> {
    let kind = match c.runtime {
        Runtime::Python3 => "module.function",
        Runtime::Node => "file.export",
        Runtime::Custom => return Ok(()),
        Runtime::Wasm if c.handler.is_some() => {
            return Err(Error::invalid(
                "a wasm function has no handler (its component's wasi:http handler runs)",
            ));
        }
        Runtime::Wasm => return Ok(()),
    };
    let Some(h) = c.handler.as_deref() else {
        return Err(Error::invalid(format!(
            "runtime {} needs a handler ({kind})",
            c.runtime.as_str()
        )));
    };
    let ident = |s: &str| {
        !s.is_empty()
            && !s.as_bytes()[0].is_ascii_digit()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    };
    let valid = h.len() <= MAX_HANDLER_BYTES
        && match h.rsplit_once('.') {
            Some((module, func)) if ident(func) => match c.runtime {
                Runtime::Python3 => module.split('.').all(ident),
                _ => module.split('/').all(|seg| {
                    !seg.is_empty()
                        && seg != ".."
                        && seg != "."
                        && seg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
                }),
            },
            _ => false,
        };
    if !valid {
        return Err(Error::invalid(format!(
            "handler {h:?} must look like {kind}"
        )));
    }
    Ok(())
}

impl CreateFunction {
    /// Applies defaults and validates; returns the draft config and metadata.
    pub fn into_parts(self) -> Result<(String, ExecConfig, FunctionMeta)> {
        crate::names::validate_name("function", &self.name)?;
        validate_meta_fields(
            self.description.as_ref(),
            self.tags.as_ref(),
            [self.input_schema.as_ref(), self.output_schema.as_ref()],
        )?;
        let config = ExecConfig {
            runtime: self.runtime.unwrap_or_default(),
            memory_mb: self.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
            timeout_ms: self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            env: self.env.unwrap_or_default(),
            secrets: self.secrets.unwrap_or_default(),
            allowed_hosts: self.allowed_hosts.unwrap_or_default(),
            handler: self.handler,
            network: self.network.unwrap_or_default(),
        };
        validate_exec_config(&config)?;
        let meta = FunctionMeta {
            description: self.description.unwrap_or_default(),
            tags: self.tags.unwrap_or_default(),
            input_schema: self.input_schema,
            output_schema: self.output_schema,
            error_codes: self.error_codes.unwrap_or_default(),
            scaling: self.scaling.unwrap_or_default(),
            async_config: self.async_config.unwrap_or_default(),
            auth: self.auth.unwrap_or_default(),
        };
        meta.scaling.validate(config.runtime)?;
        meta.async_config.validate()?;
        Ok((self.name, config, meta))
    }
}

impl UpdateFunction {
    /// Applies the present fields to a draft config and metadata, then validates.
    pub fn apply(self, config: &mut ExecConfig, meta: &mut FunctionMeta) -> Result<()> {
        validate_meta_fields(
            self.description.as_ref(),
            self.tags.as_ref(),
            [self.input_schema.as_ref(), self.output_schema.as_ref()],
        )?;
        let mut next = config.clone();
        if let Some(v) = self.memory_mb {
            next.memory_mb = v;
        }
        if let Some(v) = self.timeout_ms {
            next.timeout_ms = v;
        }
        if let Some(v) = self.env {
            next.env = v;
        }
        if let Some(v) = self.secrets {
            next.secrets = v;
        }
        if let Some(v) = self.allowed_hosts {
            next.allowed_hosts = v;
        }
        if self.handler.is_some() {
            next.handler = self.handler;
        }
        if let Some(v) = self.network {
            next.network = v;
        }
        validate_exec_config(&next)?;
        let scaling = self.scaling.unwrap_or(meta.scaling);
        scaling.validate(next.runtime)?;
        if let Some(a) = &self.async_config {
            a.validate()?;
        }
        *config = next;
        meta.scaling = scaling;
        if let Some(a) = self.async_config {
            meta.async_config = a;
        }
        if let Some(v) = self.description {
            meta.description = v;
        }
        if let Some(v) = self.tags {
            meta.tags = v;
        }
        if self.input_schema.is_some() {
            meta.input_schema = self.input_schema;
        }
        if self.output_schema.is_some() {
            meta.output_schema = self.output_schema;
        }
        if let Some(v) = self.error_codes {
            meta.error_codes = v;
        }
        if let Some(v) = self.auth {
            meta.auth = v;
        }
        Ok(())
    }
}

/// State of an instance in `GET .../instances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Being started (a cold start, or pre-started by the autoscaler).
    Starting,
    /// Warm, waiting for an invocation.
    Idle,
    /// Running an invocation.
    Busy,
    /// Being stopped (reclaimed or evicted); it runs nothing.
    Draining,
}

/// One warm instance of a function on this node: a process, or (wasm) a loaded component
/// whose in-flight requests each run in a fresh instance of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceView {
    /// Instance id (for wasm, the code's sha256).
    pub id: String,
    /// The version it runs (`$LATEST` for the draft of a process function, or every version
    /// sharing the code for wasm).
    pub version: String,
    /// Idle or busy.
    pub state: InstanceState,
    /// Invocations running on it now.
    pub in_flight: u32,
    /// Milliseconds since it started.
    pub age_ms: u64,
    /// Milliseconds since its last invocation ended (0 while busy).
    pub idle_ms: u64,
    /// How long it took to start, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_limits() {
        let (name, c, _) = CreateFunction {
            name: "f".into(),
            ..Default::default()
        }
        .into_parts()
        .unwrap();
        assert_eq!(name, "f");
        assert_eq!((c.memory_mb, c.timeout_ms), (128, 30_000));
        for bad in [
            CreateFunction {
                name: "f".into(),
                memory_mb: Some(8),
                ..Default::default()
            },
            CreateFunction {
                name: "f".into(),
                memory_mb: Some(5000),
                ..Default::default()
            },
            CreateFunction {
                name: "f".into(),
                timeout_ms: Some(0),
                ..Default::default()
            },
            CreateFunction {
                name: "f".into(),
                timeout_ms: Some(900_001),
                ..Default::default()
            },
            CreateFunction {
                name: "f".into(),
                env: Some([("1X".to_string(), "v".to_string())].into()),
                ..Default::default()
            },
            CreateFunction {
                name: "f".into(),
                env: Some([("BIG".to_string(), "v".repeat(5000))].into()),
                ..Default::default()
            },
            CreateFunction {
                name: "f".into(),
                allowed_hosts: Some(vec!["a b".into()]),
                ..Default::default()
            },
        ] {
            assert!(bad.clone().into_parts().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn handlers_are_checked_per_runtime() {
        let f = |runtime, handler: Option<&str>, memory_mb| {
            CreateFunction {
                name: "f".into(),
                runtime: Some(runtime),
                handler: handler.map(String::from),
                memory_mb,
                ..Default::default()
            }
            .into_parts()
        };
        assert!(f(Runtime::Python3, Some("app.handler"), None).is_ok());
        assert!(f(Runtime::Python3, Some("pkg.mod.fn"), None).is_ok());
        assert!(f(Runtime::Node, Some("src/app.handler"), None).is_ok());
        assert!(f(Runtime::Custom, None, None).is_ok());
        assert!(f(Runtime::Custom, Some("anything.at-all"), None).is_ok());
        for bad in [
            None,
            Some("app"),
            Some("app."),
            Some(".fn"),
            Some("1app.fn"),
            Some("a-b.fn"),
        ] {
            assert!(f(Runtime::Python3, bad, None).is_err(), "{bad:?}");
        }
        for bad in [Some("../x.fn"), Some("/abs.fn"), Some("a//b.fn"), None] {
            assert!(f(Runtime::Node, bad, None).is_err(), "{bad:?}");
        }
        assert!(f(Runtime::Wasm, Some("main"), None).is_err());
        // Process memory range is 64–10240 MiB.
        assert!(f(Runtime::Python3, Some("a.b"), Some(32)).is_err());
        assert!(f(Runtime::Python3, Some("a.b"), Some(10_240)).is_ok());
        assert!(f(Runtime::Python3, Some("a.b"), Some(10_241)).is_err());
    }

    #[test]
    fn update_is_all_or_nothing() {
        let (_, mut c, mut m) = CreateFunction {
            name: "f".into(),
            ..Default::default()
        }
        .into_parts()
        .unwrap();
        let before = c.clone();
        let err = UpdateFunction {
            memory_mb: Some(1),
            timeout_ms: Some(5),
            ..Default::default()
        }
        .apply(&mut c, &mut m);
        assert!(err.is_err());
        assert_eq!(c, before);
        UpdateFunction {
            timeout_ms: Some(5),
            ..Default::default()
        }
        .apply(&mut c, &mut m)
        .unwrap();
        assert_eq!(c.timeout_ms, 5);
    }

    #[test]
    fn alias_validation() {
        let ok = PutAlias {
            version: 1,
            canary: Some(Canary {
                version: 2,
                weight: 50,
            }),
        };
        assert!(ok.validate().is_ok());
        let same = PutAlias {
            version: 1,
            canary: Some(Canary {
                version: 1,
                weight: 5,
            }),
        };
        assert!(same.validate().is_err());
        let heavy = PutAlias {
            version: 1,
            canary: Some(Canary {
                version: 2,
                weight: 101,
            }),
        };
        assert!(heavy.validate().is_err());
    }

    #[test]
    fn secret_references_are_validated() {
        let make = |env: &[(&str, &str)], secrets: &[(&str, &str)]| CreateFunction {
            name: "f".into(),
            env: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            secrets: Some(
                secrets
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        let (_, c, _) = make(&[("MODE", "x")], &[("DB_PASSWORD", "db-pass")])
            .into_parts()
            .unwrap();
        assert_eq!(c.secrets["DB_PASSWORD"], "db-pass");
        for bad in [
            make(&[("X", "1")], &[("X", "s")]),
            make(&[], &[("1X", "s")]),
            make(&[], &[("X", "bad name")]),
        ] {
            assert!(bad.into_parts().is_err());
        }
        let many: Vec<(String, String)> = (0..=MAX_SECRET_REFS)
            .map(|i| (format!("V{i}"), "s".to_string()))
            .collect();
        let f = CreateFunction {
            name: "f".into(),
            secrets: Some(many.into_iter().collect()),
            ..Default::default()
        };
        assert!(f.into_parts().is_err());
    }
}
