//! Sealed federated session ids (`session_key_file`, the same AEAD tokens as the proxied pool's:
//! `sessions/seal.rs`): with a key file, the `Mcp-Session-Id` the gateway gives a legacy client at `initialize`
//! is a token any gateway replica holding the keys opens, so a client's session goes on whichever replica its next
//! request reaches: no affinity, no shared store.
//!
//! **What a token holds** (a `Sealed`): as `endpoint`, the federated endpoint it was made for ([`label`]:
//! `federation:*` for the merged one, `federation:NAME` for `/servers/NAME/mcp`); as `upstream_id`, 128 random
//! bits (the session's identity); and the client's `initialize` params (at most 4 KiB). Its associated data binds
//! it to the verified principal that opened it (with auth on), as for the pool.
//!
//! **What a replica does with a token it does not know**: it opens it (a token no key opens, made for another
//! endpoint or another principal, or ended here with `DELETE`, is 404: 2025-11-25 `basic/transports` §Session
//! Management 3–4) and adopts the session: a new client session in its own table under the same token, whose
//! upstream sessions are made per server on first use like any other (`Federation::link`), each server's on its
//! own. Nothing the client sees changes: its id stays, the merged names are the same on every replica (they
//! follow the configuration order). What does not follow a client to another replica: the upstream sessions'
//! own state (a `logging/setLevel` sent on the old replica, `resources/subscribe`), which lives in the
//! upstream sessions the old replica holds (ended by its idle sweep after `session_idle_ttl`).
//!
//! **Ending**: `DELETE` ends the session on the replica it reaches, which then answers 404 to the token for
//! `session_idle_ttl` (a bounded set, at most `max_sessions` tokens); another replica that still holds the
//! session ends its upstream sessions at its idle sweep, and one that never saw the `DELETE` would adopt the token
//! again (the spec's 404 after termination holds per replica: `docs/gateway-federation.md` §Limits).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{lock, ClientSession, Federation, View};
use crate::sessions::seal::Sealed;

/// The prefix of a federated token's endpoint label (a pool's label is a URL, so the two never meet).
const LABEL_PREFIX: &str = "federation:";

/// Tokens ended with `DELETE` on this replica, each until `session_idle_ttl` after its end.
#[derive(Debug, Default)]
pub(super) struct Ended(HashMap<String, Instant>);

impl Ended {
    /// Remembers `token` as ended now; at most `max` are kept (the expired go first, then the oldest).
    pub(super) fn insert(&mut self, token: String, ttl: Duration, max: usize) {
        if self.0.len() >= max {
            self.0.retain(|_, at| at.elapsed() <= ttl);
        }
        if self.0.len() >= max {
            if let Some(oldest) = self
                .0
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
            {
                self.0.remove(&oldest);
            }
        }
        if max > 0 {
            self.0.insert(token, Instant::now());
        }
    }

    /// Whether `token` was ended less than `ttl` ago.
    pub(super) fn contains(&self, token: &str, ttl: Duration) -> bool {
        self.0.get(token).is_some_and(|at| at.elapsed() <= ttl)
    }

    /// Forgets the tokens ended more than `ttl` ago (the idle sweep).
    pub(super) fn prune(&mut self, ttl: Duration) {
        self.0.retain(|_, at| at.elapsed() <= ttl);
    }
}

/// The endpoint label a token of the endpoint `view` carries.
pub(super) fn label(fed: &Federation, view: View) -> String {
    match view {
        View::All => format!("{LABEL_PREFIX}*"),
        View::One(i) => format!("{LABEL_PREFIX}{}", fed.servers[i].cfg.name),
    }
}

impl Federation {
    /// The id of a new session on `view` opened by `principal` with `params`: a sealed token with a key file,
    /// else 128 random bits in hex. `Err` when the system's randomness failed (the caller answers 500).
    pub(super) fn new_session_id(
        &self,
        view: View,
        params: &Value,
        principal: Option<&str>,
    ) -> Result<String, String> {
        let raw = super::mint_session_id().map_err(|e| e.to_string())?;
        let Some(sealer) = &self.sealer else {
            return Ok(raw);
        };
        let sealed = Sealed {
            endpoint: label(self, view),
            upstream_id: raw,
            init_params: Some(params.to_string()),
        };
        sealer.seal(&sealed, principal).map_err(str::to_owned)
    }

    /// A session this replica does not hold, adopted from its sealed id (see the module docs); `None` when there
    /// is no key file, the token does not open for `principal`, names another endpoint, was ended here, or
    /// `max_sessions` are open (the caller answers 404).
    pub(super) fn adopt(
        &self,
        view: View,
        token: &str,
        principal: Option<&str>,
    ) -> Option<Arc<ClientSession>> {
        let sealer = self.sealer.as_ref()?;
        let sealed = sealer.open(token, principal)?;
        if sealed.endpoint != label(self, view) || lock(&self.ended).contains(token, self.idle_ttl)
        {
            return None;
        }
        let mut sessions = lock(&self.sessions);
        if let Some(s) = sessions.get(token) {
            // Adopted meanwhile by a concurrent request.
            return Some(Arc::clone(s));
        }
        if sessions.len() >= self.max_sessions {
            tracing::warn!("A sealed federated session cannot be adopted: max_sessions reached.");
            return None;
        }
        let sess = self.new_session(view, principal.map(Arc::from), false);
        sessions.insert(token.to_owned(), Arc::clone(&sess));
        self.metrics.session_recovery("recovered");
        tracing::info!(endpoint = %sealed.endpoint, "Federated session adopted from its sealed id.");
        Some(sess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_tokens_are_bounded_and_expire() {
        let mut e = Ended::default();
        let ttl = Duration::from_secs(60);
        for i in 0..5 {
            e.insert(format!("t{i}"), ttl, 3);
        }
        assert_eq!(e.0.len(), 3, "at most max");
        assert!(e.contains("t4", ttl));
        assert!(!e.contains("t0", ttl), "the oldest went first");
        e.prune(ttl);
        assert_eq!(e.0.len(), 3, "none is older than the TTL");
        let mut none = Ended::default();
        none.insert("t".into(), ttl, 0);
        assert!(!none.contains("t", ttl));
    }
}
