//! `lifeline check` (work in progress).

/// Arguments of `lifeline check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `lifeline check`; returns the exit code.
pub(crate) async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("lifeline check is not implemented yet")
}
