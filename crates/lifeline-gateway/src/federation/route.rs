//! The federated endpoints' requests that fan out or route by name: merged lists (2025-11-25 `server/tools`
//! §Listing Tools, `server/prompts`, `server/resources`, with one opaque cursor holding each server's position:
//! `server/utilities/pagination`), and the calls routed to the server that owns a tool, prompt or resource
//! (`tools/call`, `prompts/get`, `resources/read|subscribe|unsubscribe`, `completion/complete`) with its original
//! name, and `logging/setLevel` to every ready server.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{
    client, error, lock, naming, Answer, ClientSession, Federation, InFlight, Relay, View,
    INVALID_PARAMS, MAX_URIS, RESOURCE_NOT_FOUND,
};
use crate::body::code;

/// The list methods merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum List {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl List {
    pub(super) fn method(self) -> &'static str {
        match self {
            List::Tools => "tools/list",
            List::Prompts => "prompts/list",
            List::Resources => "resources/list",
            List::Templates => "resources/templates/list",
        }
    }

    pub(super) fn key(self) -> &'static str {
        match self {
            List::Tools => "tools",
            List::Prompts => "prompts",
            List::Resources => "resources",
            List::Templates => "resourceTemplates",
        }
    }
}

impl Federation {
    /// A merged list (see the module docs).
    pub(super) async fn list(
        &self,
        sess: &ClientSession,
        kind: List,
        params: &Value,
        id: &Value,
    ) -> Value {
        let positions: Vec<(usize, Option<String>)> =
            match params.get("cursor").and_then(Value::as_str) {
                None => self
                    .ready_servers(sess.view)
                    .into_iter()
                    .map(|i| (i, None))
                    .collect(),
                Some(c) => match naming::decode_cursor(c) {
                    Err(msg) => return error(id, INVALID_PARAMS, &msg, Value::Null),
                    Ok(map) => map
                        .into_iter()
                        .filter_map(|(name, cur)| {
                            let i = self.servers.iter().position(|s| s.cfg.name == name)?;
                            Self::in_view(sess.view, i).then_some((i, Some(cur)))
                        })
                        .collect(),
                },
            };
        let replies = futures_util::future::join_all(positions.iter().map(|(i, cur)| {
            let params = match cur {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            async move {
                self.exchange(sess, *i, kind.method(), &params, None, None)
                    .await
            }
        }))
        .await;
        let names = match kind {
            List::Tools => Some(self.tools.read().unwrap_or_else(|p| p.into_inner()).clone()),
            List::Prompts => Some(
                self.prompts
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            ),
            _ => None,
        };
        let mut items = Vec::new();
        let mut left = BTreeMap::new();
        for ((i, _), reply) in positions.iter().zip(replies) {
            let server = &self.servers[*i];
            let result = match reply {
                Ok(r) => match r.result() {
                    Some(res) => res,
                    None => continue, // A server without this capability answers -32601: nothing to merge.
                },
                Err(refusal) => {
                    tracing::debug!(server = %server.cfg.name, message = %refusal.message, "Left out of a merged list.");
                    continue;
                }
            };
            if let Some(next) = result.get("nextCursor").and_then(Value::as_str) {
                left.insert(server.cfg.name.clone(), next.to_owned());
            }
            let Some(list) = result.get(kind.key()).and_then(Value::as_array) else {
                continue;
            };
            for item in list {
                let mut item = item.clone();
                if kind == List::Resources {
                    if let Some(uri) = item.get("uri").and_then(Value::as_str) {
                        let mut cat = lock(&server.catalog);
                        if cat.uris.len() < MAX_URIS {
                            cat.uris.insert(uri.to_owned());
                        }
                    }
                }
                if let (Some(names), View::All) = (&names, sess.view) {
                    let Some(orig) = item.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    match names.shown(*i, orig) {
                        Some(shown) => item["name"] = Value::String(shown),
                        None => continue,
                    }
                }
                items.push(item);
            }
        }
        let mut result = json!({ kind.key(): items });
        if let Some(c) = naming::encode_cursor(&left) {
            result["nextCursor"] = Value::String(c);
        }
        json!({"jsonrpc": "2.0", "id": id, "result": result})
    }

    /// `tools/call` (`tool`) or `prompts/get`: routed by `params.name`, sent with the original name.
    pub(super) async fn by_name(
        &self,
        sess: &ClientSession,
        method: &str,
        mut params: Value,
        id: &Value,
        tool: bool,
        relay: Option<&Relay>,
    ) -> Answer {
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Answer::Built(error(
                id,
                INVALID_PARAMS,
                "params.name is required",
                Value::Null,
            ));
        };
        let Some((i, orig)) = self.resolve(sess.view, name, tool) else {
            let what = if tool { "tool" } else { "prompt" };
            return Answer::Built(error(
                id,
                INVALID_PARAMS,
                &format!("Unknown {what}: {name}"),
                Value::Null,
            ));
        };
        params["name"] = Value::String(orig);
        self.relay(sess, i, method, params, id, relay).await
    }

    fn resolve(&self, view: View, name: &str, tool: bool) -> Option<(usize, String)> {
        if let View::One(i) = view {
            return Some((i, name.to_owned()));
        }
        let table = if tool { &self.tools } else { &self.prompts };
        table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .resolve(name)
    }

    /// `resources/*` by `params.uri`: the server that listed it.
    pub(super) async fn by_uri(
        &self,
        sess: &ClientSession,
        method: &str,
        params: Value,
        id: &Value,
        relay: Option<&Relay>,
    ) -> Answer {
        let Some(uri) = params.get("uri").and_then(Value::as_str) else {
            return Answer::Built(error(
                id,
                INVALID_PARAMS,
                "params.uri is required",
                Value::Null,
            ));
        };
        match self.owner_of(sess.view, uri) {
            Some(i) => self.relay(sess, i, method, params, id, relay).await,
            None => Answer::Built(error(
                id,
                RESOURCE_NOT_FOUND,
                "Resource not found",
                json!({"uri": uri}),
            )),
        }
    }

    fn owner_of(&self, view: View, uri: &str) -> Option<usize> {
        if let View::One(i) = view {
            return Some(i);
        }
        (0..self.servers.len()).find(|&i| lock(&self.servers[i].catalog).uris.contains(uri))
    }

    /// `completion/complete` (2025-11-25 `server/utilities/completion`): by the prompt's name or the resource's URI.
    pub(super) async fn complete(
        &self,
        sess: &ClientSession,
        mut params: Value,
        id: &Value,
        relay: Option<&Relay>,
    ) -> Answer {
        let target = match params["ref"]["type"].as_str() {
            Some("ref/prompt") => params["ref"]["name"]
                .as_str()
                .and_then(|n| self.resolve(sess.view, n, false))
                .map(|(i, orig)| {
                    params["ref"]["name"] = Value::String(orig);
                    i
                }),
            Some("ref/resource") => params["ref"]["uri"]
                .as_str()
                .and_then(|u| self.owner_of(sess.view, u)),
            _ => None,
        };
        match target {
            Some(i) => {
                self.relay(sess, i, "completion/complete", params, id, relay)
                    .await
            }
            None => Answer::Built(error(
                id,
                INVALID_PARAMS,
                "Unknown completion reference",
                Value::Null,
            )),
        }
    }

    /// `logging/setLevel`: to every ready legacy server of the endpoint, answered once all have; remembered for
    /// the modern ones, which have no such method and get the level on each request instead (2026-07-28
    /// `server/utilities/logging` §Per-request log level).
    pub(super) async fn set_level(&self, sess: &ClientSession, params: Value, id: &Value) -> Value {
        let Some(level) = params.get("level").and_then(Value::as_str) else {
            return error(id, INVALID_PARAMS, "params.level is required", Value::Null);
        };
        *lock(&sess.log_level) = Some(level.to_owned());
        let servers = self.ready_servers(sess.view);
        futures_util::future::join_all(servers.iter().map(|&i| {
            let params = params.clone();
            async move {
                match self.link(sess, i).await {
                    Ok(link) if !link.modern => {
                        let _ = self
                            .exchange(sess, i, "logging/setLevel", &params, None, None)
                            .await;
                    }
                    _ => {}
                }
            }
        }))
        .await;
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
    }

    /// One request to server `i`, its response returned with the client's id; open to the client's
    /// `notifications/cancelled` while it runs (`Federation::cancel`).
    async fn relay(
        &self,
        sess: &ClientSession,
        i: usize,
        method: &str,
        params: Value,
        id: &Value,
        relay: Option<&Relay>,
    ) -> Answer {
        let upstream_id = client::next_id();
        let (cancel, cancelled) = tokio::sync::oneshot::channel();
        // A second open request with the same id (a client error, or two modern clients on one implicit
        // session) is not tracked: it cannot be cancelled with `notifications/cancelled`.
        let key = id.to_string();
        let tracked = match lock(&sess.inflight).entry(key.clone()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(InFlight {
                    server: i,
                    upstream_id,
                    cancel,
                });
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        };
        let mut open = Open {
            sess,
            key: &key,
            tracked,
            server: (i, Arc::clone(&self.servers[i])),
            upstream_id,
            timeout: self.timeout,
            done: false,
        };
        let exchange = self.exchange(sess, i, method, &params, relay, Some(upstream_id));
        let result = tokio::select! {
            r = exchange => r,
            Ok(()) = cancelled => {
                open.done = true;
                return Answer::Built(error(
                    id,
                    code::SERVER_ERROR,
                    "Request cancelled by the client (notifications/cancelled)",
                    Value::Null,
                ));
            }
        };
        open.done = true;
        match result {
            Ok(reply) => Answer::Relayed {
                id: id.clone(),
                outcome: reply.outcome,
                complete: false,
            },
            Err(r) => Answer::Built(error(id, r.code, &r.message, r.data)),
        }
    }
}

/// A routed request while it runs. Dropped, it takes the request out of its session's open requests (unless a
/// cancellation took it already, or another request holds the key: only the entry with this upstream id); dropped
/// before its answer (`done` unset: the client closed the request's stream, so the exchange was dropped), on the
/// implicit session of modern clients, it cancels the request at a legacy server with `notifications/cancelled`,
/// in a task of its own: for a 2026-07-28 client the closed stream is the cancellation (`basic/patterns/
/// cancellation` §Transport-Specific Cancellation: "The server MUST treat a client disconnect as cancellation of
/// that request"), which a 2025-11-25 server only understands as the notification. A modern server saw its own
/// request's connection close when the exchange was dropped. A legacy client's request is not dropped with its
/// client (`detach.rs` runs it in a task of its own, this guard included), only when the bound on such requests
/// is reached.
struct Open<'a> {
    sess: &'a ClientSession,
    key: &'a str,
    tracked: bool,
    server: (usize, Arc<super::Server>),
    upstream_id: i64,
    timeout: std::time::Duration,
    done: bool,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if self.tracked {
            let mut inflight = lock(&self.sess.inflight);
            if inflight
                .get(self.key)
                .is_some_and(|e| e.upstream_id == self.upstream_id)
            {
                inflight.remove(self.key);
            }
        }
        if self.done || !self.sess.modern_clients {
            return;
        }
        let (i, server) = &self.server;
        // The link in use. Its slot is locked only while a request clones or makes the link; caught in that
        // instant, the cancellation is not sent, and the log says so (never a silent drop).
        let Ok(slot) = self.sess.links[*i].try_lock() else {
            tracing::warn!(server = %server.cfg.name, upstream.request_id = self.upstream_id, "A modern client closed a request's stream while the server's link was being made; the cancellation was not passed on.");
            return;
        };
        let link = slot.as_ref().map(Arc::clone).filter(|l| !l.modern);
        drop(slot);
        let (Some(link), Ok(rt)) = (link, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let (server, id, timeout) = (Arc::clone(server), self.upstream_id, self.timeout);
        rt.spawn(async move {
            let note = json!({"requestId": id, "reason": "the client closed the request's stream"});
            if let Err(e) =
                client::notify(&server.upstream, &link, "notifications/cancelled", note, timeout).await
            {
                tracing::warn!(server = %server.cfg.name, error = %e, "Passing a cancellation on failed.");
            }
        });
    }
}
