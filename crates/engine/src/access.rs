//! What the gateway needs to authorize a function call before running it.

use crate::Engine;
use arcus_core::Result;
use arcus_core::model::FunctionAuth;

impl Engine {
    /// Who may call a function's HTTP route, read from the routing cache (a change
    /// reaches every node as route invalidations do); `app_not_found` /
    /// `function_not_found` when it does not exist.
    pub async fn function_auth(&self, app: &str, function: &str) -> Result<FunctionAuth> {
        Ok(self.route(app, function).await?.function.meta.auth)
    }
}
