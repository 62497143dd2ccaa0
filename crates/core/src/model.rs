//! The platform's resources as stored and returned by the API: apps, functions,
//! versions and aliases.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A point in time, serialised as RFC 3339.
pub type Timestamp = OffsetDateTime;

/// How a function's code runs. A closed set: each variant has its own runtime crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// A WebAssembly component of the `wasi:http/proxy` world, run in wasmtime.
    #[default]
    Wasm,
    /// A Python handler `module.function(event, context)`, run as a sandboxed process.
    Python3,
    /// A Node.js handler `file.export(event, context)`, run as a sandboxed process.
    Node,
    /// An executable `bootstrap` speaking the AWS Lambda Runtime API.
    Custom,
}

impl Runtime {
    /// The wire name of the runtime.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Wasm => "wasm",
            Runtime::Python3 => "python3",
            Runtime::Node => "node",
            Runtime::Custom => "custom",
        }
    }

    /// Whether instances are processes (code is a zip) rather than wasm components.
    pub fn is_process(self) -> bool {
        !matches!(self, Runtime::Wasm)
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wasm" => Some(Runtime::Wasm),
            "python3" => Some(Runtime::Python3),
            "node" => Some(Runtime::Node),
            "custom" => Some(Runtime::Custom),
            _ => None,
        }
    }
}

/// An app: a resource group owned by a team, holding functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct App {
    /// Unique name, `[a-z0-9][a-z0-9-]{0,62}`.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Limits on what the app's functions run at once.
    #[serde(default)]
    pub quotas: crate::scaling::AppQuotas,
    /// When the app was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// What is snapshotted into a version: everything that affects execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExecConfig {
    /// How the code runs.
    pub runtime: Runtime,
    /// Memory limit in MiB.
    pub memory_mb: u32,
    /// Wall-clock timeout of one invocation in milliseconds.
    pub timeout_ms: u64,
    /// Environment variables visible to the function.
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values are the app's secrets: variable → secret
    /// name. Values are read when an instance starts, never stored here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Hosts (`host` or `host:port`) the function may send HTTP requests to (wasm).
    pub allowed_hosts: Vec<String>,
    /// The handler of a python3 (`module.function`) or node (`file.export`) function;
    /// ignored by wasm and custom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Outbound network of a process function (wasm uses `allowed_hosts`).
    #[serde(default)]
    pub network: Network,
}

/// Outbound network of a process function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Only the instance's own loopback.
    #[default]
    None,
    /// Outbound connections through user-mode networking; the node's ports stay unreachable.
    Outbound,
}

/// A documented error code a function may return (drives generated API docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FunctionErrorCode {
    /// The code, as the function reports it.
    pub code: String,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// Who may call a function's HTTP route (`/fn/{app}/{fn}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FunctionAuth {
    /// Anyone (the default, as on Knative and OpenFaaS).
    #[default]
    Public,
    /// Only callers with a bearer token that may invoke the function.
    Token,
}

/// Function-level settings that are not versioned.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct FunctionMeta {
    /// Free text.
    pub description: String,
    /// Labels for grouping and search.
    pub tags: Vec<String>,
    /// JSON Schema of the event the function accepts.
    #[schema(value_type = Option<Object>)]
    pub input_schema: Option<serde_json::Value>,
    /// JSON Schema of what the function returns.
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<serde_json::Value>,
    /// Error codes the function documents.
    pub error_codes: Vec<FunctionErrorCode>,
    /// How the function scales.
    #[serde(default)]
    pub scaling: crate::scaling::Scaling,
    /// How async invocations are retried, throttled, ordered and reported.
    #[serde(default, rename = "async")]
    pub async_config: crate::events::AsyncConfig,
    /// Who may call the function's HTTP route (`public` or `token`).
    #[serde(default)]
    pub auth: FunctionAuth,
}

/// The draft's code: a content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CodeRef {
    /// Hex sha256 of the code.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// A function: its identity, draft configuration, draft code and metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Function {
    /// Unique id (stable across renames of nothing; names are immutable).
    pub id: String,
    /// The app it belongs to.
    pub app: String,
    /// Name within the app.
    pub name: String,
    /// Draft execution config.
    #[serde(flatten)]
    pub config: ExecConfig,
    /// Unversioned metadata.
    #[serde(flatten)]
    pub meta: FunctionMeta,
    /// The draft's code, once uploaded.
    pub code: Option<CodeRef>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it was last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// An immutable snapshot of a function's draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Version {
    /// 1, 2, 3… per function.
    pub version: u32,
    /// Free text given at publish time.
    pub description: String,
    /// sha256 of the code.
    pub sha256: String,
    /// Execution config at publish time.
    pub config: ExecConfig,
    /// When it was published.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// A second version receiving a share of an alias's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Canary {
    /// The canary version.
    pub version: u32,
    /// Percentage of requests (0–100) sent to the canary.
    pub weight: u8,
}

/// Where an alias points: a version and optionally a weighted canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AliasTarget {
    /// The main version.
    pub version: u32,
    /// Optional canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

impl AliasTarget {
    /// Picks a version for one request given a uniform roll in `0..100`.
    pub fn pick(&self, roll: u8) -> u32 {
        match self.canary {
            Some(c) if roll < c.weight => c.version,
            _ => self.version,
        }
    }
}

/// A named pointer at a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alias {
    /// Alias name, e.g. `live`.
    pub name: String,
    /// Current target.
    #[serde(flatten)]
    pub target: AliasTarget,
    /// What `rollback` would restore, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<AliasTarget>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_pick_respects_weight() {
        let t = AliasTarget {
            version: 1,
            canary: Some(Canary {
                version: 2,
                weight: 10,
            }),
        };
        let to_canary = (0..100u8).filter(|r| t.pick(*r) == 2).count();
        assert_eq!(to_canary, 10);
        let none = AliasTarget {
            version: 1,
            canary: None,
        };
        assert!((0..100u8).all(|r| none.pick(r) == 1));
    }
}
