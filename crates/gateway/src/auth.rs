//! Who is calling: bearer tokens resolved to an [`Identity`] — the bootstrap admin token
//! of the node's config (checked against its sha256) or a stored scoped token
//! `arcus_<id>_<secret>` (looked up by id, its secret's sha256 compared in constant time,
//! expiry checked on every request, so a revoked or expired token fails at once).

use crate::error::ApiError;
use arcus_core::ErrorCode;
use arcus_core::store::Store;
use arcus_core::tokens::{Identity, split_token};
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// How stale a token's `last_used_at` may get before a request updates it.
const LAST_USED_GRANULARITY: Duration = Duration::minutes(1);

/// Resolves bearer tokens to identities.
#[derive(Debug, Clone)]
pub struct Auth {
    admin_sha256: [u8; 32],
}

/// Compares two digests without stopping at the first difference.
fn same_digest(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

impl Auth {
    /// Builds a verifier from the hex sha256 of the admin token.
    pub fn from_hash_hex(hex_hash: &str) -> Option<Self> {
        let bytes = hex::decode(hex_hash).ok()?;
        Some(Self {
            admin_sha256: bytes.try_into().ok()?,
        })
    }

    /// Hashes a token the way it is stored.
    pub fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    /// The bearer token of a request: `None` without an `Authorization` header, 401 when
    /// the header is not `Bearer <token>`.
    pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value
            .to_str()
            .map_err(|_| unauthorized("expected `Authorization: Bearer <token>`"))?;
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(|t| Some(t.trim()))
            .ok_or_else(|| unauthorized("expected `Authorization: Bearer <token>`"))
    }

    /// The caller's identity from `Authorization: Bearer …`: 401 when missing, malformed,
    /// unknown, revoked or expired.
    pub async fn identify(
        &self,
        store: &Arc<dyn Store>,
        headers: &HeaderMap,
    ) -> Result<Identity, ApiError> {
        match Self::bearer(headers)? {
            Some(token) => self.identify_token(store, token).await,
            None => Err(unauthorized("missing bearer token")),
        }
    }

    /// The identity a presented token stands for; 401 unless it is valid now.
    pub async fn identify_token(
        &self,
        store: &Arc<dyn Store>,
        token: &str,
    ) -> Result<Identity, ApiError> {
        let Some((id, secret)) = split_token(token) else {
            let digest = Sha256::digest(token.as_bytes());
            return if same_digest(&digest, &self.admin_sha256) {
                Ok(Identity::bootstrap_admin())
            } else {
                Err(unauthorized("invalid token"))
            };
        };
        let stored = match store.get_token(id).await {
            Ok(t) => t,
            // A revoked token and one that never existed look the same.
            Err(e) if e.code == ErrorCode::NotFound => return Err(unauthorized("invalid token")),
            Err(e) => return Err(e.into()),
        };
        let expected = hex::decode(&stored.secret_sha256).unwrap_or_default();
        if !same_digest(&Sha256::digest(secret.as_bytes()), &expected) {
            return Err(unauthorized("invalid token"));
        }
        let now = OffsetDateTime::now_utc();
        if stored.view.expired(now) {
            return Err(unauthorized("token expired"));
        }
        let stale = stored
            .view
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_GRANULARITY);
        if stale {
            let (store, id) = (store.clone(), id.to_string());
            tokio::spawn(async move {
                if let Err(e) = store.touch_token(&id, now).await {
                    tracing::warn!(token = %id, "cannot record token use: {e}");
                }
            });
        }
        Ok(Identity {
            token_id: Some(stored.view.id),
            scopes: stored.view.scopes,
        })
    }

    /// 401 unless the request carries the bootstrap admin token or an admin-scoped one.
    pub async fn require_admin(
        &self,
        store: &Arc<dyn Store>,
        headers: &HeaderMap,
    ) -> Result<Identity, ApiError> {
        let identity = self.identify(store, headers).await?;
        if identity.is_admin() {
            Ok(identity)
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                "this needs an admin token",
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers_are_parsed() {
        let mut h = HeaderMap::new();
        assert_eq!(Auth::bearer(&h).unwrap(), None);
        h.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert_eq!(Auth::bearer(&h).unwrap(), Some("s3cret"));
        h.insert("authorization", "Basic s3cret".parse().unwrap());
        assert!(Auth::bearer(&h).is_err());
        assert!(Auth::from_hash_hex("zz").is_none());
        assert!(same_digest(b"abc", b"abc") && !same_digest(b"abc", b"abd"));
        assert!(!same_digest(b"abc", b"ab"));
    }
}
