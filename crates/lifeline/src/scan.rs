//! `lifeline scan` (work in progress).

/// Arguments of `lifeline scan`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `lifeline scan`; returns the exit code.
pub(crate) async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("lifeline scan is not implemented yet")
}
