//! In-process tests of `lifeline-gateway`: a [`Gateway`] bound on `127.0.0.1:0` in front of a real upstream
//! (server-everything, from `scripts/install-peers.sh`; `LIFELINE_PEERS_DIR` points at the peers), driven
//! through the injected [`lifeline_core::Shutdown`] instead of OS signals. One module per area; `harness`
//! holds the in-process [`harness::TestGateway`] (its own runtime thread, port 0, injected shutdown). Tests that
//! need a real OS process (signals, exit codes, PID 1, the HAProxy roll, CLI parsing) stay in the binary crate's
//! `tests/cli`.

mod auth;
mod auth_clients;
mod conformance;
mod discovery;
mod drain;
mod edge;
mod federation;
mod federation_disconnect;
mod harness;
mod peers;
mod policy;
mod pools;
mod probes;
mod ready_paths;
mod reload;
mod sessions;
mod stdio;
mod traffic;

use std::time::Duration;

use lifeline_gateway::{Gateway, RawConfig};
use lifeline_testkit::mcp_http::{open_session, INIT};
use lifeline_testkit::peers::raw_http::{self, RawResponse};

/// A gateway bound on loopback port 0 in front of `upstream`, with `drain_delay` and `drain_timeout` (humantime
/// strings), not yet running.
async fn bind_gateway(upstream: &str, drain_delay: &str, drain_timeout: &str) -> Gateway {
    let cfg = RawConfig {
        upstream: Some(vec![upstream.to_owned()]),
        listen: Some("127.0.0.1:0".to_owned()),
        admin_listen: Some("127.0.0.1:0".to_owned()),
        drain_delay: Some(drain_delay.to_owned()),
        drain_timeout: Some(drain_timeout.to_owned()),
        ..RawConfig::default()
    }
    .validate(&|path| std::fs::read_to_string(path))
    .expect("a valid configuration");
    Gateway::bind(cfg).await.expect("bind on port 0")
}

/// `GET http://ADDR/PATH` on the admin listener.
async fn admin_get(gateway_admin: &str, path: &str) -> RawResponse {
    raw_http::request(
        "GET",
        &format!("http://{gateway_admin}{path}"),
        &[],
        None,
        Duration::from_secs(5),
    )
    .await
    .expect("an admin answer")
}
