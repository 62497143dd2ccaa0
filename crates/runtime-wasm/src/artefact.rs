//! On-disk cache of precompiled components, keyed by code hash and engine compatibility.

use crate::WasmError;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Rejects bytes that are not a component before handing them to the compiler, with a
/// message that says what they are instead.
pub(crate) fn check_component_header(bytes: &[u8]) -> Result<(), WasmError> {
    if bytes.is_empty() {
        return Err(WasmError::InvalidCode("the uploaded code is empty".into()));
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(WasmError::InvalidCode(
            "not WebAssembly: the upload must be a wasm component (wasm32-wasip2)".into(),
        ));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(WasmError::InvalidCode(
            "this is a core WebAssembly module; Arcus runs components of the wasi:http/proxy \
             world (build for wasm32-wasip2)"
                .into(),
        ));
    }
    Ok(())
}

/// Artefacts live at `<dir>/<sha256>-<engine-hash>.cwasm`; a wasmtime upgrade or a config
/// change alters the engine hash, so stale artefacts are simply not found and get rebuilt.
pub(crate) struct ArtefactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtefactCache {
    pub(crate) fn new(engine: &Engine, dir: PathBuf) -> Result<Self, WasmError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| WasmError::Internal(format!("create {}: {e}", dir.display())))?;
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        })
    }

    fn path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}-{}.cwasm", self.engine_key))
    }

    pub(crate) fn store(&self, sha: &str, component: &Component) -> Result<(), WasmError> {
        let path = self.path(sha);
        if path.exists() {
            return Ok(());
        }
        let bytes = component
            .serialize()
            .map_err(|e| WasmError::Internal(format!("serialize component: {e}")))?;
        // Unique per writer: two uploads of the same new code may compile it at once, and
        // each renames its own complete file into place (the last one wins, both valid).
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{sha}.{}.{n}.tmp", std::process::id()));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                WasmError::Internal(format!("write artefact {}: {e}", path.display()))
            })
    }

    pub(crate) fn load(&self, engine: &Engine, sha: &str) -> Option<Component> {
        let path = self.path(sha);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `store` above from `Component::serialize` of this
        // same engine configuration (the engine hash is part of its name), into a directory
        // only this node writes; wasmtime additionally checks the header's compatibility.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "discarding unusable artefact: {e}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        assert!(check_component_header(b"").is_err());
        assert!(check_component_header(b"hello world").is_err());
        let core = [0, b'a', b's', b'm', 1, 0, 0, 0];
        let err = check_component_header(&core).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        let component = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];
        assert!(check_component_header(&component).is_ok());
    }
}
