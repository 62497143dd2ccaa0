//! Per-app secrets: their names and limits, the API bodies, the sealed form the store
//! keeps (never the plain value), and `${secret:NAME}` references in trigger configs.

use crate::limits::{MAX_SECRET_NAME_BYTES, MAX_SECRET_VALUE_BYTES};
use crate::model::Timestamp;
use crate::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /apps/{app}/secrets/{name}`: the value to store (encrypted at rest).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// The plain value, at most 32 KiB of UTF-8.
    pub value: String,
}

impl std::fmt::Debug for PutSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a value, not even in a debug log.
        f.write_str("PutSecret { value: <redacted> }")
    }
}

/// What the API says about a secret: its name and times, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretInfo {
    /// The secret's name.
    pub name: String,
    /// When it was first set.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When its value last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A secret as the store keeps it: the AEAD ciphertext, its nonce and the id of the key
/// that sealed it. Opening it needs that key and the same app and name (they are the
/// associated data).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// App the secret belongs to.
    pub app: String,
    /// Secret name.
    pub name: String,
    /// Short id of the sealing key (a hash prefix, not the key).
    pub key_id: String,
    /// The nonce used for this value.
    pub nonce: Vec<u8>,
    /// Ciphertext with its authentication tag.
    pub ciphertext: Vec<u8>,
    /// When the secret was first set (kept when its value is replaced).
    pub created_at: Timestamp,
    /// When its value was set.
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("app", &self.app)
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SealedSecret {
    /// The API view: name and times.
    pub fn info(&self) -> SecretInfo {
        SecretInfo {
            name: self.name.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Checks a secret name: `[A-Za-z_][A-Za-z0-9_-]{0,127}`.
pub fn validate_secret_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_SECRET_NAME_BYTES
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidName,
            format!("secret name {name:?} must match [A-Za-z_][A-Za-z0-9_-]{{0,127}}"),
        ))
    }
}

/// Checks a secret value's size (the message never contains the value).
pub fn validate_secret_value(value: &str) -> Result<()> {
    if value.len() > MAX_SECRET_VALUE_BYTES {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the secret value is {} bytes; the limit is {MAX_SECRET_VALUE_BYTES}",
                value.len()
            ),
        ));
    }
    Ok(())
}

const REF_OPEN: &str = "${secret:";

/// The secret names a string refers to with `${secret:NAME}`, in order; `invalid_request`
/// for an unterminated reference or a bad name.
pub fn secret_refs(text: &str) -> Result<Vec<&str>> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(REF_OPEN) {
        let after = &rest[at + REF_OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(Error::invalid("a `${secret:` reference has no closing `}`"));
        };
        let name = &after[..end];
        validate_secret_name(name).map_err(|e| Error::invalid(e.message))?;
        names.push(name);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// Replaces every `${secret:NAME}` in `text` with `lookup(NAME)`; a name `lookup` does
/// not know is a `secret_not_found` error naming it.
pub fn expand_secret_refs(
    text: &str,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(REF_OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + REF_OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(Error::invalid("a `${secret:` reference has no closing `}`"));
        };
        let name = &after[..end];
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(Error::new(
                    ErrorCode::SecretNotFound,
                    format!("secret {name:?} does not exist"),
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["DB_PASSWORD", "_x", "api-key", "a"] {
            validate_secret_name(ok).unwrap();
        }
        let long = "A".repeat(MAX_SECRET_NAME_BYTES + 1);
        for bad in ["", "1A", "a b", "a.b", "${x}", long.as_str()] {
            let e = validate_secret_name(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidName, "{bad}");
        }
    }

    #[test]
    fn value_limit_message_has_no_value() {
        validate_secret_value(&"v".repeat(MAX_SECRET_VALUE_BYTES)).unwrap();
        let big = "s3cr3t".repeat(MAX_SECRET_VALUE_BYTES / 6 + 1);
        let e = validate_secret_value(&big).unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
        assert!(!e.message.contains("s3cr3t"));
    }

    #[test]
    fn references_are_found_and_expanded() {
        let text = "amqp://u:${secret:MQ_PASS}@h/${secret:VHOST}";
        assert_eq!(secret_refs(text).unwrap(), ["MQ_PASS", "VHOST"]);
        assert!(secret_refs("no refs, $ and {} alone").unwrap().is_empty());
        let out = expand_secret_refs(text, |n| Some(n.to_lowercase())).unwrap();
        assert_eq!(out, "amqp://u:mq_pass@h/vhost");
        let e = expand_secret_refs(text, |n| (n == "MQ_PASS").then(|| "p".into())).unwrap_err();
        assert_eq!(e.code, ErrorCode::SecretNotFound);
        assert!(e.message.contains("VHOST"));
        assert!(secret_refs("${secret:OPEN").is_err());
        assert!(secret_refs("${secret:bad name}").is_err());
    }

    #[test]
    fn debug_never_shows_values() {
        let p = PutSecret {
            value: "hunter2".into(),
        };
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
