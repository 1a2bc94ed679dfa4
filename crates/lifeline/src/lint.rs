//! `lifeline lint` (work in progress).

/// Arguments of `lifeline lint`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `lifeline lint`; returns the exit code.
pub(crate) async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("lifeline lint is not implemented yet")
}
