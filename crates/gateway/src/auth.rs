//! Bearer-token authentication of the REST API (the admin token for now).

use crate::error::ApiError;
use arcus_core::ErrorCode;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// Verifies bearer tokens against the sha256 of the admin token (never the plain value).
#[derive(Debug, Clone)]
pub struct Auth {
    admin_sha256: [u8; 32],
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

    /// Checks the `Authorization: Bearer …` header: 401 if missing or wrong.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "missing bearer token"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "expected `Authorization: Bearer <token>`",
                )
            })?;
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        // Constant-time comparison so the token cannot be guessed byte by byte.
        let diff = digest
            .iter()
            .zip(self.admin_sha256.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Unauthorized, "invalid token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_bearer_tokens() {
        let auth = Auth::from_hash_hex(&Auth::hash("s3cret")).unwrap();
        let mut h = HeaderMap::new();
        assert!(auth.check(&h).is_err());
        h.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(auth.check(&h).is_ok());
        h.insert("authorization", "Bearer wrong".parse().unwrap());
        assert!(auth.check(&h).is_err());
        h.insert("authorization", "Basic s3cret".parse().unwrap());
        assert!(auth.check(&h).is_err());
        assert!(Auth::from_hash_hex("zz").is_none());
    }
}
