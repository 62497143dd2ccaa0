//! Trigger CRUD as the API does it: validate, write the store, then resync the
//! [`Manager`] so the change takes effect on this node at once.

use crate::Manager;
use crate::validate::validate_config;
use arcus_core::model::Timestamp;
use arcus_core::names::{Qualifier, validate_name};
use arcus_core::trigger::{
    CreateTrigger, MAX_TRIGGERS_PER_FUNCTION, Trigger, TriggerConfig, TriggerView, UpdateTrigger,
};
use arcus_core::{Error, ErrorCode, Result};

impl Manager {
    /// Creates a trigger of `app/function`; `invalid_request` (nothing created) for a bad
    /// config or when the function has [`MAX_TRIGGERS_PER_FUNCTION`] already.
    pub async fn create(
        &self,
        app: &str,
        function: &str,
        req: CreateTrigger,
    ) -> Result<TriggerView> {
        validate_name("trigger", &req.name)?;
        let qualifier = req
            .qualifier
            .unwrap_or_else(|| Qualifier::DEFAULT_ALIAS.to_string());
        Qualifier::parse(&qualifier)
            .map_err(|e| Error::invalid(format!("qualifier: {}", e.message)))?;
        validate_config(&req.config)?;
        crate::secrets::check(self.sink(), app, &req.config).await?;
        let store = self.store();
        let existing = store.list_triggers(app, function).await?;
        if existing.iter().any(|t| t.name == req.name) {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "trigger `{}` of function `{app}/{function}` already exists",
                    req.name
                ),
            ));
        }
        if existing.len() >= MAX_TRIGGERS_PER_FUNCTION {
            return Err(Error::invalid(format!(
                "a function may have at most {MAX_TRIGGERS_PER_FUNCTION} triggers"
            )));
        }
        let now = Timestamp::now_utc();
        let trigger = Trigger {
            id: uuid::Uuid::now_v7().simple().to_string(),
            app: app.to_string(),
            function: function.to_string(),
            name: req.name,
            qualifier,
            enabled: req.enabled.unwrap_or(true),
            config: req.config,
            created_at: now,
            updated_at: now,
        };
        store.create_trigger(&trigger).await?;
        self.reload_logged().await;
        Ok(self.view(&trigger))
    }

    /// A function's triggers, redacted, with their status.
    pub async fn list(&self, app: &str, function: &str) -> Result<Vec<TriggerView>> {
        let triggers = self.store().list_triggers(app, function).await?;
        Ok(triggers.iter().map(|t| self.view(t)).collect())
    }

    /// One trigger, redacted, with its status.
    pub async fn get(&self, app: &str, function: &str, name: &str) -> Result<TriggerView> {
        let t = self.store().get_trigger(app, function, name).await?;
        Ok(self.view(&t))
    }

    /// Applies a `PATCH`: present fields are replaced; a new config of the same type
    /// without a password or secret keeps the stored one.
    pub async fn update(
        &self,
        app: &str,
        function: &str,
        name: &str,
        req: UpdateTrigger,
    ) -> Result<TriggerView> {
        let store = self.store();
        let mut t = store.get_trigger(app, function, name).await?;
        if let Some(q) = req.qualifier {
            Qualifier::parse(&q)
                .map_err(|e| Error::invalid(format!("qualifier: {}", e.message)))?;
            t.qualifier = q;
        }
        if let Some(enabled) = req.enabled {
            t.enabled = enabled;
        }
        if let Some(mut config) = req.config {
            keep_secrets(&t.config, &mut config);
            validate_config(&config)?;
            crate::secrets::check(self.sink(), app, &config).await?;
            t.config = config;
        }
        t.updated_at = Timestamp::now_utc().max(t.updated_at);
        store.update_trigger(&t).await?;
        self.reload_logged().await;
        Ok(self.view(&t))
    }

    /// Deletes a trigger and stops it.
    pub async fn delete(&self, app: &str, function: &str, name: &str) -> Result<()> {
        self.store().delete_trigger(app, function, name).await?;
        self.reload_logged().await;
        Ok(())
    }

    async fn reload_logged(&self) {
        // The change is stored; the periodic sync retries if this one fails.
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "triggers: resync after a change failed");
        }
    }
}

/// Copies the stored password or secret into a same-type config that leaves it out.
fn keep_secrets(old: &TriggerConfig, new: &mut TriggerConfig) {
    use TriggerConfig as C;
    match (old, new) {
        (C::Nats(o), C::Nats(n)) if n.auth.password.is_none() => {
            n.auth.password.clone_from(&o.auth.password)
        }
        (C::Amqp(o), C::Amqp(n)) if n.auth.password.is_none() => {
            n.auth.password.clone_from(&o.auth.password)
        }
        (C::Mqtt(o), C::Mqtt(n)) if n.auth.password.is_none() => {
            n.auth.password.clone_from(&o.auth.password)
        }
        (C::Redis(o), C::Redis(n)) if n.auth.password.is_none() => {
            n.auth.password.clone_from(&o.auth.password)
        }
        (C::Webhook(o), C::Webhook(n)) if n.secret.is_none() => n.secret.clone_from(&o.secret),
        _ => {}
    }
}
