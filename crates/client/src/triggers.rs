//! Triggers: CRUD of a function's triggers (views come back with secrets redacted).

use crate::{Client, Result};
use arcus_core::trigger::{CreateTrigger, TriggerView, UpdateTrigger};
use reqwest::Method;

impl Client {
    /// `POST .../triggers`.
    pub async fn create_trigger(
        &self,
        app: &str,
        function: &str,
        body: &CreateTrigger,
    ) -> Result<TriggerView> {
        let url = self.url(&["apps", app, "functions", function, "triggers"])?;
        self.json(self.request(Method::POST, url).json(body)).await
    }

    /// `GET .../triggers`.
    pub async fn list_triggers(&self, app: &str, function: &str) -> Result<Vec<TriggerView>> {
        let url = self.url(&["apps", app, "functions", function, "triggers"])?;
        self.list(self.request(Method::GET, url)).await
    }

    /// `GET .../triggers/{name}`.
    pub async fn get_trigger(&self, app: &str, function: &str, name: &str) -> Result<TriggerView> {
        let url = self.url(&["apps", app, "functions", function, "triggers", name])?;
        self.json(self.request(Method::GET, url)).await
    }

    /// `PATCH .../triggers/{name}`.
    pub async fn update_trigger(
        &self,
        app: &str,
        function: &str,
        name: &str,
        body: &UpdateTrigger,
    ) -> Result<TriggerView> {
        let url = self.url(&["apps", app, "functions", function, "triggers", name])?;
        self.json(self.request(Method::PATCH, url).json(body)).await
    }

    /// `DELETE .../triggers/{name}`.
    pub async fn delete_trigger(&self, app: &str, function: &str, name: &str) -> Result<()> {
        let url = self.url(&["apps", app, "functions", function, "triggers", name])?;
        self.empty(self.request(Method::DELETE, url)).await
    }
}
