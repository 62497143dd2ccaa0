//! Options shared by every client subcommand: where the server is, how to
//! authenticate, and how to print.

use anyhow::Context as _;
use arcus_client::Client;
use std::path::{Path, PathBuf};

/// Name of the file in the data directory that holds the admin token.
const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Connection and output options of the client subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientOpts {
    /// URL of the Arcus server.
    #[arg(
        long,
        env = "ARCUS_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL",
        global = true
    )]
    pub server: String,

    /// API token [default: the contents of <DATA_DIR>/admin-token].
    #[arg(
        long,
        env = "ARCUS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true
    )]
    pub token: Option<String>,

    /// Data directory of a local server, where the admin token is read from when no
    /// token is given.
    #[arg(
        long,
        env = "ARCUS_DATA_DIR",
        default_value = "./arcus-data",
        value_name = "DIR",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What a command needs to run: a client and the output mode.
pub struct Ctx {
    /// The API client.
    pub client: Client,
    /// Print JSON rather than text.
    pub json: bool,
}

impl ClientOpts {
    /// Resolves the token and builds the client.
    pub fn connect(&self) -> anyhow::Result<Ctx> {
        let token = match self.token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => Some(t.to_string()),
            _ => read_token_file(&self.data_dir)?,
        };
        let client = Client::new(&self.server, token)?;
        Ok(Ctx {
            client,
            json: self.json,
        })
    }
}

/// Reads `<data_dir>/admin-token`; a missing file means no token.
fn read_token_file(data_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s.trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_file() {
        let dir = std::env::temp_dir().join(format!("arcus-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_token_file(&dir).unwrap(), None);
        std::fs::write(dir.join(ADMIN_TOKEN_FILE), "secret\n").unwrap();
        assert_eq!(read_token_file(&dir).unwrap().as_deref(), Some("secret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
