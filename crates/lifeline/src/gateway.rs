//! `lifeline gateway` (work in progress).

/// Arguments of `lifeline gateway`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `lifeline gateway`; returns the exit code.
pub(crate) async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("lifeline gateway is not implemented yet")
}
