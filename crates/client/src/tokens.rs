//! Tokens: create (the plain token comes back once), list and revoke scoped tokens.

use crate::{Client, Result};
use arcus_core::tokens::{CreateToken, CreatedToken, TokenView};
use reqwest::Method;

impl Client {
    /// `POST /tokens`: the answer's `token` is the only time the plain token is shown.
    pub async fn create_token(&self, body: &CreateToken) -> Result<CreatedToken> {
        let url = self.url(&["tokens"])?;
        self.json(self.request(Method::POST, url).json(body)).await
    }

    /// `GET /tokens`: the tokens the caller may manage.
    pub async fn list_tokens(&self) -> Result<Vec<TokenView>> {
        let url = self.url(&["tokens"])?;
        self.list(self.request(Method::GET, url)).await
    }

    /// `DELETE /tokens/{id}`: revokes a token at once.
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        let url = self.url(&["tokens", id])?;
        self.empty(self.request(Method::DELETE, url)).await
    }
}
