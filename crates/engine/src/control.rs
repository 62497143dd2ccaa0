//! Control-plane operations: validated, stored, and reflected in the routing cache.

use crate::Engine;
use arcus_core::api::{
    CreateApp, CreateFunction, InstanceState, InstanceView, PublishVersion, PutAlias, UpdateApp,
    UpdateFunction,
};
use arcus_core::model::{Alias, App, Function, Runtime, Timestamp, Version};
use arcus_core::names::{validate_alias, validate_name};
use arcus_core::{Error, ErrorCode, Result, limits};
use arcus_runtime_wasm::WasmError;
use sha2::{Digest, Sha256};

/// The current time at the store's precision (whole microseconds), so what a control
/// operation answers equals what later reads of the same resource return.
fn now() -> Timestamp {
    let t = Timestamp::now_utc();
    // Cannot fail: the truncated value is below one second.
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

pub(crate) fn wasm_error(e: WasmError) -> Error {
    match e {
        WasmError::InvalidCode(m) => Error::new(ErrorCode::InvalidCode, m),
        WasmError::Internal(m) => Error::internal(m),
    }
}

impl Engine {
    /// Creates an app.
    pub async fn create_app(&self, req: CreateApp) -> Result<App> {
        validate_name("app", &req.name)?;
        if req.description.len() > arcus_core::limits::MAX_DESCRIPTION_BYTES {
            return Err(Error::invalid("description is too long"));
        }
        let app = App {
            name: req.name,
            description: req.description,
            quotas: Default::default(),
            created_at: now(),
        };
        self.inner.store.create_app(&app).await?;
        Ok(app)
    }

    /// Changes an app's description or quotas; quotas apply to the next invocations.
    pub async fn update_app(&self, name: &str, req: UpdateApp) -> Result<App> {
        let mut app = self.inner.store.get_app(name).await?;
        if let Some(description) = req.description {
            if description.len() > arcus_core::limits::MAX_DESCRIPTION_BYTES {
                return Err(Error::invalid("description is too long"));
            }
            app.description = description;
        }
        if let Some(quotas) = req.quotas {
            quotas.validate()?;
            app.quotas = quotas;
        }
        self.inner.store.update_app(&app).await?;
        self.inner.routes.invalidate(name, None);
        Ok(app)
    }

    /// Deletes an app (with its functions when `force`).
    pub async fn delete_app(&self, name: &str, force: bool) -> Result<()> {
        self.inner.store.delete_app(name, force).await?;
        self.inner.routes.invalidate(name, None);
        self.inner.activator.forget_app(name);
        self.inner.rates.forget_app(name);
        Ok(())
    }

    /// Creates a function with a draft config and no code.
    pub async fn create_function(&self, app: &str, req: CreateFunction) -> Result<Function> {
        let (name, config, meta) = req.into_parts()?;
        // Checked before the insert, not in its transaction: concurrent creates can
        // pass it together by a few (docs/limits.md).
        let existing = self.inner.store.list_functions(app).await?.len();
        if existing >= limits::MAX_FUNCTIONS_PER_APP {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!(
                    "app `{app}` already has {existing} functions; the limit is {}",
                    limits::MAX_FUNCTIONS_PER_APP
                ),
            ));
        }
        self.check_secrets_exist(app, config.secrets.values().map(String::as_str))
            .await?;
        let t = now();
        let function = Function {
            id: uuid::Uuid::now_v7().to_string(),
            app: app.to_string(),
            name,
            config,
            meta,
            code: None,
            created_at: t,
            updated_at: t,
        };
        self.inner.store.create_function(&function).await?;
        Ok(function)
    }

    /// Changes a function's draft config and metadata.
    pub async fn update_function(
        &self,
        app: &str,
        name: &str,
        req: UpdateFunction,
    ) -> Result<Function> {
        let mut f = self.inner.store.get_function(app, name).await?;
        req.apply(&mut f.config, &mut f.meta)?;
        self.check_secrets_exist(app, f.config.secrets.values().map(String::as_str))
            .await?;
        f.updated_at = now();
        self.inner.store.update_function(&f).await?;
        self.inner.routes.invalidate(app, Some(name));
        Ok(f)
    }

    /// Deletes a function with its versions and aliases; with async invocations still
    /// to run only when `force` (they are marked cancelled).
    pub async fn delete_function(&self, app: &str, name: &str, force: bool) -> Result<()> {
        self.inner.store.delete_function(app, name, force).await?;
        self.inner.routes.invalidate(app, Some(name));
        self.inner.activator.forget(app, name);
        self.inner.rates.forget(app, name);
        Ok(())
    }

    /// Validates, precompiles and stores new draft code. Nothing changes if it is invalid.
    pub async fn upload_code(&self, app: &str, name: &str, code: Vec<u8>) -> Result<Function> {
        let mut f = self.inner.store.get_function(app, name).await?;
        let sha = hex::encode(Sha256::digest(&code));
        match crate::process::kind(f.config.runtime) {
            None => {
                if code.len() > limits::MAX_WASM_CODE_BYTES {
                    return Err(Error::new(
                        ErrorCode::PayloadTooLarge,
                        "code is over 100 MiB",
                    ));
                }
                let started = std::time::Instant::now();
                self.inner
                    .wasm
                    .prepare(&sha, code.clone())
                    .await
                    .map_err(wasm_error)?;
                crate::metrics::compile(Runtime::Wasm, "build", started.elapsed());
            }
            Some(kind) => {
                if code.len() > limits::MAX_ZIP_CODE_BYTES {
                    return Err(Error::new(
                        ErrorCode::PayloadTooLarge,
                        "the zip is over 50 MiB",
                    ));
                }
                let rt = self.process_runtime()?;
                let started = std::time::Instant::now();
                rt.prepare(kind, &sha, code.clone())
                    .await
                    .map_err(crate::process::prepare_error)?;
                crate::metrics::compile(f.config.runtime, "build", started.elapsed());
                let handler = f.config.handler.clone().unwrap_or_default();
                rt.check_entrypoint(kind, &sha, &handler)
                    .map_err(crate::process::prepare_error)?;
            }
        }
        let code_ref = self.inner.blobs.put(&code).await?;
        f.code = Some(code_ref);
        f.updated_at = now();
        self.inner.store.update_function(&f).await?;
        self.inner.routes.invalidate(app, Some(name));
        Ok(f)
    }

    /// Publishes the draft as a new immutable version and pre-warms it.
    pub async fn publish(&self, app: &str, name: &str, req: PublishVersion) -> Result<Version> {
        if req.description.len() > arcus_core::limits::MAX_DESCRIPTION_BYTES {
            return Err(Error::invalid("description is too long"));
        }
        let draft = self.inner.store.get_function(app, name).await?;
        self.check_secrets_exist(app, draft.config.secrets.values().map(String::as_str))
            .await?;
        let v = self
            .inner
            .store
            .publish_version(app, name, &req.description, now())
            .await?;
        let f = self.inner.store.get_function(app, name).await?;
        if let Some(kind) = crate::process::kind(v.config.runtime) {
            let target = crate::Target {
                app: app.to_string(),
                function: name.to_string(),
                qualifier: arcus_core::names::Qualifier::Version(v.version),
            };
            let resolved = crate::dispatch::Resolved {
                version: Some(v.version),
                sha256: v.sha256.clone(),
                config: v.config.clone(),
                scaling: f.meta.scaling,
                secret_env: Vec::new(),
            };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.prewarm_process(&target, resolved, kind).await {
                    tracing::warn!(function = %target.function, "pre-warm failed: {e}");
                }
            });
            return Ok(v);
        }
        // Wasm: load the component now (it then idles out after keep-alive, unless
        // `min_instances` pins it).
        let this = self.clone();
        let sha = v.sha256.clone();
        tokio::spawn(async move {
            if let Err(e) = this.component(&sha, &f.meta.scaling).await {
                tracing::warn!(%sha, "pre-warm failed: {e}");
            }
        });
        Ok(v)
    }

    /// Deletes a version no alias points at.
    pub async fn delete_version(&self, app: &str, name: &str, version: u32) -> Result<()> {
        self.inner.store.delete_version(app, name, version).await?;
        self.inner.routes.invalidate(app, Some(name));
        Ok(())
    }

    /// Creates or moves an alias.
    pub async fn put_alias(
        &self,
        app: &str,
        name: &str,
        alias: &str,
        req: PutAlias,
    ) -> Result<Alias> {
        validate_alias(alias)?;
        let target = req.validate()?;
        let a = self
            .inner
            .store
            .put_alias(app, name, alias, target, now())
            .await?;
        self.inner.routes.invalidate(app, Some(name));
        Ok(a)
    }

    /// Deletes an alias.
    pub async fn delete_alias(&self, app: &str, name: &str, alias: &str) -> Result<()> {
        self.inner.store.delete_alias(app, name, alias).await?;
        self.inner.routes.invalidate(app, Some(name));
        Ok(())
    }

    /// Points an alias back at its previous target.
    pub async fn rollback_alias(&self, app: &str, name: &str, alias: &str) -> Result<Alias> {
        let a = self
            .inner
            .store
            .rollback_alias(app, name, alias, now())
            .await?;
        self.inner.routes.invalidate(app, Some(name));
        Ok(a)
    }

    /// The function's warm instances on this node.
    pub async fn instances(&self, app: &str, name: &str) -> Result<Vec<InstanceView>> {
        let f = self.inner.store.get_function(app, name).await?;
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if f.config.runtime.is_process() {
            let arn = crate::process::function_arn(app, name, None);
            let Ok(rt) = self.process_runtime() else {
                return Ok(Vec::new());
            };
            return Ok(rt
                .instances()
                .into_iter()
                .filter(|i| i.function_arn == arn)
                .map(|i| InstanceView {
                    id: i.id,
                    version: i.function_version,
                    state: i.state,
                    in_flight: u32::from(i.state == InstanceState::Busy),
                    age_ms: ms(i.age),
                    idle_ms: ms(i.idle_for),
                    cold_start_ms: i.init_duration.map(ms),
                })
                .collect());
        }
        // Wasm: one entry per loaded component of the draft or a version.
        let mut shas: Vec<(String, String)> = f
            .code
            .iter()
            .map(|c| (c.sha256.clone(), "draft".to_string()))
            .collect();
        for v in self.inner.store.list_versions(app, name).await? {
            match shas.iter_mut().find(|(sha, _)| *sha == v.sha256) {
                Some((_, label)) => label.push_str(&format!(",{}", v.version)),
                None => shas.push((v.sha256.clone(), v.version.to_string())),
            }
        }
        Ok(shas
            .into_iter()
            .filter_map(|(sha, version)| {
                let c = self.inner.components.state(&sha)?;
                Some(InstanceView {
                    id: sha,
                    version,
                    state: if c.in_flight > 0 {
                        InstanceState::Busy
                    } else {
                        InstanceState::Idle
                    },
                    in_flight: c.in_flight,
                    age_ms: ms(c.age),
                    idle_ms: ms(c.idle_for),
                    cold_start_ms: Some(ms(c.load_time)),
                })
            })
            .collect())
    }
}
