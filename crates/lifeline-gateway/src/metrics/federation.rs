//! The federation's per-server series (`servers:`, issue 16), labels bounded by the configuration (at most
//! `config::federation::MAX_SERVERS` names):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `lifeline_gateway_federation_server_ready` | gauge | `server` (1 while its last health check passed) |
//! | `lifeline_gateway_federation_server_state_changes_total` | counter | `server`, `state` (`ready`, `down`: transitions into it) |
//! | `lifeline_gateway_federation_requests_total` | counter | `server`, `result` (`ok`, `error`: the server failed the exchange, `unavailable`: refused because it is not ready) |
//! | `lifeline_gateway_federation_orphaned_requests_total` | counter | `result` (`discarded`: a legacy client left before its answer, the exchange ran to its end upstream (an answer, an error, or a cancellation the client sent after it left) and its answer was discarded; `dropped`: it left with `max_sessions` such requests running, so its request was dropped with it; `federation/detach.rs`) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabel {
    server: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerStateLabel {
    server: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerResultLabel {
    server: String,
    result: &'static str,
}

/// The families, registered once.
#[derive(Debug, Default)]
pub(crate) struct FederationFamilies {
    ready: Family<ServerLabel, Gauge>,
    changes: Family<ServerStateLabel, Counter>,
    requests: Family<ServerResultLabel, Counter>,
    orphaned: Family<ResultLabel, Counter>,
}

impl FederationFamilies {
    /// Registers the families in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> FederationFamilies {
        let f = FederationFamilies::default();
        registry.register(
            "lifeline_gateway_federation_server_ready",
            "1 while the federated server's last health check passed",
            f.ready.clone(),
        );
        registry.register(
            "lifeline_gateway_federation_server_state_changes",
            "Transitions of a federated server into a state (ready, down)",
            f.changes.clone(),
        );
        registry.register(
            "lifeline_gateway_federation_requests",
            "Client requests routed to a federated server, by result (ok, error, unavailable)",
            f.requests.clone(),
        );
        registry.register(
            "lifeline_gateway_federation_orphaned_requests",
            "Requests whose legacy client left before the answer, by result (discarded, dropped)",
            f.orphaned.clone(),
        );
        f
    }

    /// Records server `server`'s health: `ready`, and a transition when `changed`.
    pub(crate) fn server_state(&self, server: &str, ready: bool, changed: bool) {
        let label = ServerLabel {
            server: server.to_owned(),
        };
        self.ready.get_or_create(&label).set(i64::from(ready));
        if changed {
            self.changes
                .get_or_create(&ServerStateLabel {
                    server: server.to_owned(),
                    state: if ready { "ready" } else { "down" },
                })
                .inc();
        }
    }

    /// Counts one request routed to `server` with `result` (`ok`, `error`, `unavailable`).
    pub(crate) fn request(&self, server: &str, result: &'static str) {
        self.requests
            .get_or_create(&ServerResultLabel {
                server: server.to_owned(),
                result,
            })
            .inc();
    }

    /// Counts one request whose legacy client left before its answer: `discarded` (its exchange ran to its end,
    /// the answer thrown away) or `dropped` (no room to run on: dropped with the client).
    pub(crate) fn orphaned(&self, result: &'static str) {
        self.orphaned.get_or_create(&ResultLabel { result }).inc();
    }
}
