//! Dev-only test support for Lifeline: launchers for the real MCP peers that `scripts/install-peers.sh` installs
//! (each in its own process group, killed on drop), misbehaving fake servers for the failure modes no real peer
//! shows, `assert_eventually!`, and Prometheus/promtool for the observability kit's tests (`prometheus`).
//!
//! Never a dependency of production code: only `[dev-dependencies]` and benches may use it.

pub mod a11y;
pub mod cli;
pub mod eventually;
pub mod fakes;
pub mod gateway;
pub mod kube;
pub mod mcp_http;
pub mod peers;
pub mod process;
pub mod prometheus;
