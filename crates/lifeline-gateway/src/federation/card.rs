//! The facts of the federated endpoints' Server Cards (`discovery.rs`): the identity and versions the gateway
//! gives on each endpoint (its own `serverInfo`, every version it bridges: `modern.rs`), so a card agrees with
//! what a client then sees (experimental-ext-server-card `docs/discovery.md` §Consistency with Runtime
//! Behavior), and, for `/servers/NAME/mcp`, the title, description and website the server gave on the health
//! check's session (its `initialize` result or `server/discover`), so no request is made for a card.

use serde_json::Value;

use super::{lock, modern, Federation, View};
use crate::config::CardFields;
use crate::discovery::Facts;

impl Federation {
    /// Every federated endpoint's path: the merged one, then `/servers/NAME/mcp` in configuration order.
    pub(crate) fn card_endpoints(&self) -> Vec<String> {
        std::iter::once(self.mcp_path.clone())
            .chain(
                self.servers
                    .iter()
                    .map(|s| format!("/servers/{}/mcp", s.cfg.name)),
            )
            .collect()
    }

    /// The facts of the endpoint at `path` and the operator's fields for it (`merged` for the merged endpoint,
    /// the server's `card:` for one server); `None` for a path that is no federated endpoint.
    pub(crate) fn card_facts(
        &self,
        path: &str,
        merged: &CardFields,
    ) -> Option<(Facts, CardFields)> {
        let view = self.view(path)?;
        let info = self.server_info(view);
        let mut facts = Facts {
            name: info["name"].as_str().map(str::to_owned),
            version: info["version"].as_str().map(str::to_owned),
            versions: modern::supported().into_iter().map(str::to_owned).collect(),
            ..Facts::default()
        };
        match view {
            View::All => {
                let names: Vec<&str> = self.servers.iter().map(|s| s.cfg.name.as_str()).collect();
                facts.description = Some(format!(
                    "{} MCP servers behind one endpoint: {}",
                    names.len(),
                    names.join(", ")
                ));
                Some((facts, merged.clone()))
            }
            View::One(i) => {
                let server = &self.servers[i];
                let init = lock(&server.health)
                    .control
                    .as_ref()
                    .map(|l| l.init.clone())
                    .unwrap_or(Value::Null);
                // What the server said of itself on the health check's session (either era).
                let upstream = Facts::of_result(&init);
                facts.title = upstream.title;
                facts.website_url = upstream.website_url;
                facts.description = upstream.description.or_else(|| {
                    upstream.name.map(|n| {
                        let v = upstream
                            .version
                            .map(|v| format!(" {v}"))
                            .unwrap_or_default();
                        format!("{n}{v}, federated as {}", server.cfg.name)
                    })
                });
                Some((facts, server.cfg.card.clone()))
            }
        }
    }
}
