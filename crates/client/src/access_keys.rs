//! Access keys of the Lambda-compatible API: create (the secret comes back once), list
//! and delete.

use crate::{Client, Result};
use arcus_core::access_keys::{AccessKeyView, CreateAccessKey, CreatedAccessKey};
use reqwest::Method;

impl Client {
    /// `POST /access-keys`: the answer's `secret_access_key` is shown only this once.
    pub async fn create_access_key(&self, body: &CreateAccessKey) -> Result<CreatedAccessKey> {
        let url = self.url(&["access-keys"])?;
        self.json(self.request(Method::POST, url).json(body)).await
    }

    /// `GET /access-keys[?app=]`: the keys of the apps the caller may manage.
    pub async fn list_access_keys(&self, app: Option<&str>) -> Result<Vec<AccessKeyView>> {
        let mut url = self.url(&["access-keys"])?;
        if let Some(app) = app {
            url.query_pairs_mut().append_pair("app", app);
        }
        self.list(self.request(Method::GET, url)).await
    }

    /// `DELETE /access-keys/{id}`: the key stops working at once.
    pub async fn delete_access_key(&self, id: &str) -> Result<()> {
        let url = self.url(&["access-keys", id])?;
        self.empty(self.request(Method::DELETE, url)).await
    }
}
