//! `arcus serve`: wires store, runtime, engine and gateway into a running node.

/// Flags of `arcus serve` (placeholder until the node is wired).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs the node until SIGTERM/SIGINT.
pub async fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("serve is not wired yet")
}
