//! The audit log: one entry per control-plane change (who, what, before/after, when,
//! from where, how it ended), and the filters of its listing.
//!
//! Entries never hold a secret: the actor is a token id (or `admin` for the bootstrap
//! token), a secret appears by name only, and before/after are what the API itself shows
//! of the resource, with credential fields removed (see [`redact`]).

use crate::model::Timestamp;
use crate::stats::Cursor;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Default days audit entries are kept before the retention task deletes them.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;
/// Largest serialized `before` or `after` kept in an entry (16 KiB); a larger document
/// is replaced by `{"truncated": true, "bytes": N}`.
pub const MAX_AUDIT_DOC_BYTES: usize = 16 * 1024;
/// The actor of changes made with the node's bootstrap admin token.
pub const BOOTSTRAP_ACTOR: &str = "admin";

/// Field names whose values are credentials; they are removed from audited documents
/// wherever they appear.
const REDACTED_FIELDS: &[&str] = &[
    "token",
    "secret",
    "secret_key",
    "secret_access_key",
    "secret_sha256",
    "value",
    "password",
];

/// One recorded control-plane change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Unique id (a UUIDv7).
    pub id: String,
    /// When the change was answered.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Who: the token id, or `admin` for the bootstrap admin token. Never a secret.
    pub actor: String,
    /// HTTP method (`POST`, `PUT`, `PATCH`, `DELETE`).
    pub method: String,
    /// The route template, e.g. `/api/v1/apps/{app}/functions/{function}`.
    pub route: String,
    /// The app the change is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The function the change is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The resource's own name below the function or app (alias, version, trigger,
    /// secret name, token id…), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// The peer address of the connection (a proxy's, behind one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// The request's `x-forwarded-for` header as sent: recorded, not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_for: Option<String>,
    /// The request id (`x-arcus-request-id`).
    pub request_id: String,
    /// The resource before the change, as the API shows it (absent if it did not exist
    /// or is not cheap to read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The resource after the change: the answer's JSON body, redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

/// Filters of an audit listing (newest first).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only entries about this app.
    pub app: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
    /// Continue after this page.
    pub cursor: Option<Cursor>,
    /// At most this many (0 = the store's default).
    pub limit: u32,
}

/// Removes credential fields (at any depth) and bounds the size of a document bound for
/// the audit log.
pub fn redact(mut doc: serde_json::Value) -> serde_json::Value {
    strip(&mut doc);
    let bytes = serde_json::to_vec(&doc).map(|v| v.len()).unwrap_or(0);
    if bytes > MAX_AUDIT_DOC_BYTES {
        return serde_json::json!({ "truncated": true, "bytes": bytes });
    }
    doc
}

fn strip(doc: &mut serde_json::Value) {
    match doc {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !REDACTED_FIELDS.contains(&k.as_str()));
            map.values_mut().for_each(strip);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_at_any_depth_and_big_documents_bounded() {
        let doc = serde_json::json!({
            "id": "t1", "token": "arcus_t1_s3cret",
            "items": [{"name": "DB", "value": "pw"}],
            "config": {"password": "pw", "url": "amqp://h"}
        });
        let out = redact(doc);
        let text = out.to_string();
        assert!(!text.contains("s3cret") && !text.contains("pw\""), "{text}");
        assert_eq!(out["items"][0]["name"], "DB");
        assert_eq!(out["config"]["url"], "amqp://h");
        let big = serde_json::json!({ "env": "x".repeat(MAX_AUDIT_DOC_BYTES) });
        assert_eq!(redact(big)["truncated"], true);
    }
}
