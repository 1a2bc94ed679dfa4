//! `lifeline monitor` (work in progress).

/// Arguments of `lifeline monitor`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `lifeline monitor`; returns the exit code.
pub(crate) async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("lifeline monitor is not implemented yet")
}
