//! Per-app secrets: sealed with XChaCha20-Poly1305 (a random 24-byte nonce per value,
//! the app and name as associated data) before they reach the store, opened only to
//! build a function's environment or a trigger's config. Values never go to logs,
//! errors or API answers.

use crate::Engine;
use arcus_core::limits::MAX_SECRETS_PER_APP;
use arcus_core::secret::{SealedSecret, SecretInfo, validate_secret_name, validate_secret_value};
use arcus_core::{Error, ErrorCode, Result};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// How long opened values of an app are reused before they are read again (so a change
/// made through another node applies within this time; this node's own changes apply at
/// once).
const CACHE_TTL: Duration = Duration::from_secs(1);

/// The 32-byte key secrets are sealed with.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(id {})", self.id())
    }
}

impl SecretKey {
    /// Parses a key written as 64 hex digits or as base64 (standard alphabet) of 32
    /// bytes; the error says which forms are accepted, never echoing the input.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| "not valid hex".to_string())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| "neither 64 hex digits nor base64".to_string())?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("it is {} bytes; a key is 32 bytes", b.len()))?;
        Ok(Self(key))
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// The key as 64 hex digits (what [`SecretKey::parse`] reads back).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A short public id of the key (a hash prefix), stored with each sealed value so a
    /// node started with another key says so instead of failing obscurely.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"arcus secret key id\0")
            .chain_update(self.0)
            .finalize();
        hex::encode(&digest[..6])
    }
}

/// Seals values with the current key; opens them with it or a previous one (during a
/// key rotation).
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
    pub(crate) key_id: String,
    previous: Vec<(String, XChaCha20Poly1305)>,
}

/// Associated data: binds a ciphertext to its app and name (a value copied to another
/// row fails to open).
fn aad(app: &str, name: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + app.len() + name.len());
    v.extend_from_slice(b"arcus-secret\0");
    v.extend_from_slice(app.as_bytes());
    v.push(0);
    v.extend_from_slice(name.as_bytes());
    v
}

impl Sealer {
    fn new(key: &SecretKey, previous: &[SecretKey]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.0.into()),
            key_id: key.id(),
            previous: previous
                .iter()
                .map(|k| (k.id(), XChaCha20Poly1305::new(&k.0.into())))
                .collect(),
        }
    }

    pub(crate) fn seal(&self, app: &str, name: &str, value: &str) -> Result<(Vec<u8>, Vec<u8>)> {
        let nonce: [u8; 24] = rand::random();
        let aad = aad(app, name);
        let ct = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::internal("cannot encrypt the secret"))?;
        Ok((nonce.to_vec(), ct))
    }

    pub(crate) fn open(&self, s: &SealedSecret) -> Result<String> {
        let cipher = if s.key_id == self.key_id {
            &self.cipher
        } else if let Some((_, c)) = self.previous.iter().find(|(id, _)| *id == s.key_id) {
            c
        } else {
            return Err(Error::internal(format!(
                "secret `{}` of app `{}` was sealed with key {}, but this node's key is {}",
                s.name, s.app, s.key_id, self.key_id
            )));
        };
        let aad = aad(&s.app, &s.name);
        let bad = || {
            Error::internal(format!(
                "secret `{}` of app `{}` cannot be decrypted (corrupt or moved)",
                s.name, s.app
            ))
        };
        let nonce: [u8; 24] = s.nonce.as_slice().try_into().map_err(|_| bad())?;
        let plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &s.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

/// Opened values of one app and when they were read.
struct Cached {
    values: Arc<HashMap<String, String>>,
    read_at: Instant,
}

/// The engine's secrets: the sealing key (set once at start-up) and a short-lived cache
/// of opened values per app.
#[derive(Default)]
pub(crate) struct Secrets {
    sealer: RwLock<Option<Arc<Sealer>>>,
    cache: Mutex<HashMap<String, Cached>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The cache map stays consistent under a panic elsewhere: updates are one insert/remove.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Secrets {
    pub(crate) fn sealer(&self) -> Result<Arc<Sealer>> {
        let guard = self.sealer.read().unwrap_or_else(|e| e.into_inner());
        guard.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::Unavailable,
                "this node has no secret key configured ([secrets] key / ARCUS_SECRET_KEY)",
            )
        })
    }

    fn forget(&self, app: &str) {
        lock(&self.cache).remove(app);
    }
}

impl Engine {
    /// Sets the key secrets are sealed with (at start-up, before serving).
    pub fn set_secret_key(&self, key: &SecretKey) {
        self.set_secret_keys(key, &[]);
    }

    /// Sets the sealing key and the previous keys values may still be sealed with (a
    /// rotation: [`Engine::reseal_secrets`] then moves them to the current key).
    pub fn set_secret_keys(&self, key: &SecretKey, previous: &[SecretKey]) {
        let mut guard = self
            .inner
            .secrets
            .sealer
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *guard = Some(Arc::new(Sealer::new(key, previous)));
        lock(&self.inner.secrets.cache).clear();
    }

    /// Re-seals with the current key every secret sealed with a previous one (keeping
    /// its times); returns how many. A value no configured key opens is left as it is,
    /// with a warning naming it.
    pub async fn reseal_secrets(&self) -> Result<u64> {
        let sealer = self.inner.secrets.sealer()?;
        let mut moved = 0;
        for app in self.inner.store.list_apps().await? {
            for s in self.inner.store.list_secrets(&app.name).await? {
                if s.key_id == sealer.key_id {
                    continue;
                }
                let value = match sealer.open(&s) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!("cannot re-seal: {}", e.message);
                        continue;
                    }
                };
                let (nonce, ciphertext) = sealer.seal(&s.app, &s.name, &value)?;
                let resealed = SealedSecret {
                    key_id: sealer.key_id.clone(),
                    nonce,
                    ciphertext,
                    ..s
                };
                self.inner
                    .store
                    .put_secret(&resealed, MAX_SECRETS_PER_APP)
                    .await?;
                moved += 1;
            }
            self.inner.secrets.forget(&app.name);
        }
        Ok(moved)
    }

    /// Creates or replaces a secret (sealed before it is stored); its name and times.
    pub async fn put_secret(&self, app: &str, name: &str, value: &str) -> Result<SecretInfo> {
        validate_secret_name(name)?;
        validate_secret_value(value)?;
        let sealer = self.inner.secrets.sealer()?;
        let (nonce, ciphertext) = sealer.seal(app, name, value)?;
        let now = time::OffsetDateTime::now_utc();
        let sealed = SealedSecret {
            app: app.to_string(),
            name: name.to_string(),
            key_id: sealer.key_id.clone(),
            nonce,
            ciphertext,
            created_at: now,
            updated_at: now,
        };
        self.inner
            .store
            .put_secret(&sealed, MAX_SECRETS_PER_APP)
            .await?;
        self.inner.secrets.forget(app);
        Ok(self.inner.store.get_secret(app, name).await?.info())
    }

    /// An app's secrets by name (names and times, never values).
    pub async fn list_secrets(&self, app: &str) -> Result<Vec<SecretInfo>> {
        let secrets = self.inner.store.list_secrets(app).await?;
        Ok(secrets.iter().map(SealedSecret::info).collect())
    }

    /// Deletes a secret. Functions and triggers that still refer to it fail to start
    /// (with an error naming it) until it is set again.
    pub async fn delete_secret(&self, app: &str, name: &str) -> Result<()> {
        self.inner.store.delete_secret(app, name).await?;
        self.inner.secrets.forget(app);
        Ok(())
    }

    /// `secret_not_found` unless every named secret exists in the app (what creating or
    /// publishing a function, or creating a trigger, checks).
    pub async fn check_secrets_exist<'a>(
        &self,
        app: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let mut names = names.into_iter().peekable();
        if names.peek().is_none() {
            return Ok(());
        }
        let have = self.inner.store.list_secrets(app).await?;
        for name in names {
            if !have.iter().any(|s| s.name == name) {
                return Err(Error::new(
                    ErrorCode::SecretNotFound,
                    format!("secret `{name}` does not exist in app `{app}`"),
                ));
            }
        }
        Ok(())
    }

    /// The opened values of an app's secrets (cached for [`CACHE_TTL`]).
    pub(crate) async fn secret_values(&self, app: &str) -> Result<Arc<HashMap<String, String>>> {
        if let Some(c) = lock(&self.inner.secrets.cache).get(app)
            && c.read_at.elapsed() < CACHE_TTL
        {
            return Ok(c.values.clone());
        }
        let sealer = self.inner.secrets.sealer()?;
        let sealed = self.inner.store.list_secrets(app).await?;
        let mut values = HashMap::with_capacity(sealed.len());
        for s in &sealed {
            values.insert(s.name.clone(), sealer.open(s)?);
        }
        let values = Arc::new(values);
        lock(&self.inner.secrets.cache).insert(
            app.to_string(),
            Cached {
                values: values.clone(),
                read_at: Instant::now(),
            },
        );
        Ok(values)
    }

    /// The environment variables a function's secret references give (variable →
    /// value); `init_error` naming the variable and secret when one is missing.
    pub(crate) async fn secret_env(
        &self,
        app: &str,
        refs: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let values = self.secret_values(app).await?;
        refs.iter()
            .map(|(var, secret)| match values.get(secret) {
                Some(v) => Ok((var.clone(), v.clone())),
                None => Err(Error::new(
                    ErrorCode::InitError,
                    format!(
                        "environment variable {var} refers to secret `{secret}`, which app \
                         `{app}` does not have"
                    ),
                )),
            })
            .collect()
    }

    /// `resolved` with the values of its config's secret references filled in.
    pub(crate) async fn with_secret_env(
        &self,
        app: &str,
        mut resolved: crate::dispatch::Resolved,
    ) -> Result<crate::dispatch::Resolved> {
        resolved.secret_env = self.secret_env(app, &resolved.config.secrets).await?;
        Ok(resolved)
    }

    /// `text` with every `${secret:NAME}` replaced by the app's secret (for trigger
    /// configs); `secret_not_found` naming a missing one.
    pub async fn expand_secrets(&self, app: &str, text: &str) -> Result<String> {
        if !text.contains("${secret:") {
            return Ok(text.to_string());
        }
        let values = self.secret_values(app).await?;
        arcus_core::secret::expand_secret_refs(text, |name| values.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(s: &Sealer, app: &str, name: &str, value: &str) -> SealedSecret {
        let (nonce, ciphertext) = s.seal(app, name, value).unwrap();
        SealedSecret {
            app: app.into(),
            name: name.into(),
            key_id: s.key_id.clone(),
            nonce,
            ciphertext,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn keys_parse_from_hex_and_base64_and_errors_never_echo_them() {
        let k = SecretKey::generate();
        let hex_form = k.to_hex();
        assert_eq!(SecretKey::parse(&hex_form).unwrap().0, k.0);
        let b64 = base64::engine::general_purpose::STANDARD.encode(k.0);
        assert_eq!(SecretKey::parse(&b64).unwrap().0, k.0);
        for bad in ["", "abc", &hex_form[..62], "not base64 !!"] {
            let e = SecretKey::parse(bad).unwrap_err();
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(SecretKey::parse(&short).unwrap_err().contains("16 bytes"));
        assert!(!format!("{k:?}").contains(&hex_form));
    }

    #[test]
    fn sealed_values_open_only_with_their_key_app_and_name() {
        let key = SecretKey::generate();
        let s = Sealer::new(&key, &[]);
        let a = sealed(&s, "shop", "DB", "hunter2");
        assert!(!a.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open(&a).unwrap(), "hunter2");
        // A fresh nonce per value: sealing the same value twice differs.
        let b = sealed(&s, "shop", "DB", "hunter2");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        // Moved to another app or name: refused.
        let mut moved = a.clone();
        moved.app = "other".into();
        assert!(s.open(&moved).is_err());
        let mut renamed = a.clone();
        renamed.name = "DB2".into();
        assert!(s.open(&renamed).is_err());
        // Tampered ciphertext: refused.
        let mut tampered = a.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(s.open(&tampered).is_err());
        // Another key: refused with both key ids named, never the value.
        let other = Sealer::new(&SecretKey::generate(), &[]);
        let e = other.open(&a).unwrap_err();
        assert!(e.message.contains(&a.key_id), "{}", e.message);
        assert!(!e.message.contains("hunter2"));
        // A rotated node opens values of its previous key, and seals with the new one.
        let rotated = Sealer::new(&SecretKey::generate(), &[key]);
        assert_eq!(rotated.open(&a).unwrap(), "hunter2");
        let fresh = sealed(&rotated, "shop", "DB", "hunter2");
        assert_ne!(fresh.key_id, a.key_id);
        assert!(s.open(&fresh).is_err());
    }
}
