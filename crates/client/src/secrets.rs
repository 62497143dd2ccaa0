//! Secrets: set, list and delete an app's secrets (values go in, never come back).

use crate::{Client, Result};
use arcus_core::secret::{PutSecret, SecretInfo};
use reqwest::Method;

impl Client {
    /// `PUT /apps/{app}/secrets/{name}`: creates or replaces a secret.
    pub async fn put_secret(&self, app: &str, name: &str, value: &str) -> Result<SecretInfo> {
        let url = self.url(&["apps", app, "secrets", name])?;
        let body = PutSecret {
            value: value.to_string(),
        };
        self.json(self.request(Method::PUT, url).json(&body)).await
    }

    /// `GET /apps/{app}/secrets`: names and times, by name.
    pub async fn list_secrets(&self, app: &str) -> Result<Vec<SecretInfo>> {
        let url = self.url(&["apps", app, "secrets"])?;
        self.list(self.request(Method::GET, url)).await
    }

    /// `DELETE /apps/{app}/secrets/{name}`.
    pub async fn delete_secret(&self, app: &str, name: &str) -> Result<()> {
        let url = self.url(&["apps", app, "secrets", name])?;
        self.empty(self.request(Method::DELETE, url)).await
    }
}
