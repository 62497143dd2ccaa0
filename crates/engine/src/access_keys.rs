//! Access keys of the Lambda-compatible API: generated here, their secrets sealed with
//! the node's secret key (the same XChaCha20-Poly1305 sealing as app secrets, with the
//! key's app and id as associated data) and opened only to verify a SigV4 signature.

use crate::{Engine, Target};
use arcus_core::Result;
use arcus_core::access_keys::{
    ACCESS_KEY_ID_LEN, ACCESS_KEY_ID_PREFIX, ACCESS_KEY_SECRET_LEN, AccessKeyView, CreateAccessKey,
    CreatedAccessKey, MAX_ACCESS_KEYS_PER_APP, StoredAccessKey, access_key_not_found,
    is_access_key_id,
};
use arcus_core::secret::SealedSecret;
use time::OffsetDateTime;

/// Base32 letters (AWS's key ids use them too); 32 divides 256, so no bias.
const ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// 64 characters, so each takes 6 random bits exactly (40 of them: 240 bits).
const SECRET_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `n` characters of `alphabet` (a power-of-two size ≤ 256) from the OS-seeded generator.
fn random_text(alphabet: &[u8], n: usize) -> String {
    let mask = alphabet.len() - 1;
    (0..n)
        .map(|_| char::from(alphabet[usize::from(rand::random::<u8>()) & mask]))
        .collect()
}

/// The associated-data "app" of a key's sealed secret: `:` never occurs in app names,
/// so no app secret's row can be swapped for it.
fn seal_scope(app: &str) -> String {
    format!("access-key:{app}")
}

/// A stored key's secret in the shape the sealer opens (its app scope and id as
/// associated data).
fn as_sealed(stored: &StoredAccessKey) -> SealedSecret {
    SealedSecret {
        app: seal_scope(&stored.view.app),
        name: stored.view.id.clone(),
        key_id: stored.key_id.clone(),
        nonce: stored.nonce.clone(),
        ciphertext: stored.ciphertext.clone(),
        created_at: stored.view.created_at,
        updated_at: stored.view.created_at,
    }
}

impl Engine {
    /// Creates an access key for an app; the answer holds its secret, shown only now.
    /// `app_not_found`, `conflict` past [`MAX_ACCESS_KEYS_PER_APP`], `unavailable`
    /// without a secret key.
    pub async fn create_access_key(&self, req: CreateAccessKey) -> Result<CreatedAccessKey> {
        req.validate()?;
        let sealer = self.inner.secrets.sealer()?;
        let id = format!(
            "{ACCESS_KEY_ID_PREFIX}{}",
            random_text(ID_ALPHABET, ACCESS_KEY_ID_LEN - ACCESS_KEY_ID_PREFIX.len())
        );
        let secret = random_text(SECRET_ALPHABET, ACCESS_KEY_SECRET_LEN);
        let (nonce, ciphertext) = sealer.seal(&seal_scope(&req.app), &id, &secret)?;
        let view = AccessKeyView {
            id,
            app: req.app,
            name: req.name,
            created_at: OffsetDateTime::now_utc(),
        };
        let stored = StoredAccessKey {
            view: view.clone(),
            key_id: sealer.key_id.clone(),
            nonce,
            ciphertext,
        };
        self.store()
            .create_access_key(&stored, MAX_ACCESS_KEYS_PER_APP)
            .await?;
        Ok(CreatedAccessKey {
            secret_access_key: secret,
            view,
        })
    }

    /// An access key and its opened secret (to verify a signature); `not_found` for an
    /// unknown or malformed id.
    pub async fn access_key(&self, id: &str) -> Result<(AccessKeyView, String)> {
        if !is_access_key_id(id) {
            return Err(access_key_not_found(id));
        }
        let stored = self.store().get_access_key(id).await?;
        let secret = self.inner.secrets.sealer()?.open(&as_sealed(&stored))?;
        Ok((stored.view, secret))
    }

    /// Re-seals with the current secret key every access key sealed with a previous one
    /// (after a rotation, as [`Engine::reseal_secrets`] does for app secrets); returns how
    /// many. A key no configured secret key opens is left as it is, with a warning.
    pub async fn reseal_access_keys(&self) -> Result<u64> {
        let sealer = self.inner.secrets.sealer()?;
        let mut moved = 0;
        for view in self.store().list_access_keys(None).await? {
            let stored = self.store().get_access_key(&view.id).await?;
            if stored.key_id == sealer.key_id {
                continue;
            }
            let secret = match sealer.open(&as_sealed(&stored)) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot re-seal access key `{}`: {}", view.id, e.message);
                    continue;
                }
            };
            let (nonce, ciphertext) = sealer.seal(&seal_scope(&view.app), &view.id, &secret)?;
            let resealed = StoredAccessKey {
                key_id: sealer.key_id.clone(),
                nonce,
                ciphertext,
                ..stored
            };
            self.store().reseal_access_key(&resealed).await?;
            moved += 1;
        }
        Ok(moved)
    }

    /// Checks that a target could run now (its function exists and the qualifier names
    /// built code) without running it; the version it names (`None`: the draft).
    pub async fn check_target(&self, target: &Target) -> Result<Option<u32>> {
        let route = self.route(&target.app, &target.function).await?;
        Ok(self.resolve(&route, &target.qualifier).await?.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_and_secrets_have_their_form() {
        let id = format!("{ACCESS_KEY_ID_PREFIX}{}", random_text(ID_ALPHABET, 17));
        assert!(is_access_key_id(&id), "{id}");
        let a = random_text(SECRET_ALPHABET, ACCESS_KEY_SECRET_LEN);
        let b = random_text(SECRET_ALPHABET, ACCESS_KEY_SECRET_LEN);
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
    }
}
