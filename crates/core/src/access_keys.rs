//! Access keys: app-scoped credentials (an id and a secret, as AWS's) that sign requests
//! to the Lambda-compatible API with Signature Version 4. The secret is needed to verify
//! a signature, so the store keeps it sealed (AEAD, never in plain form); the API shows
//! it once, when the key is created.

use crate::model::Timestamp;
use crate::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most access keys one app may have.
pub const MAX_ACCESS_KEYS_PER_APP: usize = 100;
/// Longest access key name in bytes.
pub const MAX_ACCESS_KEY_NAME_BYTES: usize = 128;
/// Every access key id starts with this (`ARC` + 17 upper-case letters and digits: 20
/// characters, the length of AWS's key ids).
pub const ACCESS_KEY_ID_PREFIX: &str = "ARC";
/// Length of an access key id.
pub const ACCESS_KEY_ID_LEN: usize = 20;
/// Length of an access key secret.
pub const ACCESS_KEY_SECRET_LEN: usize = 40;

/// `POST /api/v1/access-keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccessKey {
    /// The app whose functions the key may invoke.
    pub app: String,
    /// Free text naming what the key is for (≤ 128 bytes).
    #[serde(default)]
    pub name: String,
}

impl CreateAccessKey {
    /// Checks the name's length (the app is checked by the store).
    pub fn validate(&self) -> Result<()> {
        if self.name.len() > MAX_ACCESS_KEY_NAME_BYTES {
            return Err(Error::invalid(format!(
                "the name is {} bytes; the limit is {MAX_ACCESS_KEY_NAME_BYTES}",
                self.name.len()
            )));
        }
        if self.app.is_empty() {
            return Err(Error::invalid("`app` is required"));
        }
        Ok(())
    }
}

/// An access key as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessKeyView {
    /// The access key id (`ARC…`, 20 characters).
    pub id: String,
    /// The app whose functions it may invoke.
    pub app: String,
    /// Free text naming what the key is for.
    pub name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The answer to `POST /api/v1/access-keys`: the key and, this once, its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedAccessKey {
    /// The secret access key (40 characters); shown only now.
    pub secret_access_key: String,
    /// What is stored about it.
    #[serde(flatten)]
    pub view: AccessKeyView,
}

/// An access key as the store keeps it: its view and its secret sealed by the engine.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAccessKey {
    /// What the API shows.
    pub view: AccessKeyView,
    /// Short id of the sealing key.
    pub key_id: String,
    /// The nonce the secret was sealed with.
    pub nonce: Vec<u8>,
    /// The sealed secret with its authentication tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for StoredAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAccessKey")
            .field("view", &self.view)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Whether `id` has the form of an access key id (so lookups of junk stop early).
pub fn is_access_key_id(id: &str) -> bool {
    id.len() == ACCESS_KEY_ID_LEN
        && id.starts_with(ACCESS_KEY_ID_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The error of an unknown (or deleted) access key.
pub fn access_key_not_found(id: &str) -> Error {
    Error::new(ErrorCode::NotFound, format!("access key `{id}` not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        assert!(is_access_key_id("ARCABCDEFGHIJ0123456"));
        assert!(!is_access_key_id("ARCabcdefghij0123456"));
        assert!(!is_access_key_id("AKIAABCDEFGHIJ012345"));
        assert!(!is_access_key_id("ARC123"));
        let long = CreateAccessKey {
            app: "a".into(),
            name: "n".repeat(MAX_ACCESS_KEY_NAME_BYTES + 1),
        };
        assert!(long.validate().is_err());
        let no_app = CreateAccessKey::default();
        assert!(no_app.validate().is_err());
    }
}
