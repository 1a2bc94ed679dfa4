//! Naming on the federated endpoint (pure logic): which name each server's tool or prompt is offered under, which
//! server and original name a client's name routes to, the collisions, and the merged pagination cursor.
//!
//! Rules (`docs/gateway-federation.md` §Naming), servers taken in configuration order:
//! - `prefix: always`: `NAME__tool`;
//! - `prefix: never`: `tool`; if an earlier server already offers `tool`, a collision: the earlier server keeps
//!   it, this one's `tool` is not offered;
//! - `prefix: on_collision`: `tool`, or `NAME__tool` when an earlier server already offers `tool`.
//!
//! Adding a server after the others never renames theirs. Resource URIs are never renamed (they keep their own
//! schemes); a map from URI to server routes `resources/read`.
//!
//! The cursor (2025-11-25 `server/utilities/pagination`: opaque to the client) is base64url of a JSON object
//! `{server name: that server's own cursor}` listing only the servers with pages left; a server absent from it
//! is done.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::config::federation::{PrefixMode, PREFIX_SEPARATOR};

/// Longest cursor the federation decodes: 64 KiB (a client cannot make it parse more).
const MAX_CURSOR_BYTES: usize = 64 * 1024;

/// One server's entry for [`Names::build`]: its name, rule, and the names it is known to offer.
pub(crate) struct Offer<'a> {
    /// The server's name.
    pub(crate) server: &'a str,
    /// Its rule.
    pub(crate) prefix: PrefixMode,
    /// The tool (or prompt) names it offered at its last listing.
    pub(crate) names: &'a [String],
}

/// The naming table of one kind (tools, or prompts) over every server.
#[derive(Debug, Default, Clone)]
pub(crate) struct Names {
    /// Per server (config order): its original name → the offered name (absent: hidden by a collision).
    shown: Vec<HashMap<String, String>>,
    /// Offered name → (server index, original name).
    route: HashMap<String, (usize, String)>,
    /// Each server's name and rule (for names not yet in the table).
    servers: Vec<(String, PrefixMode)>,
    /// One line per collision.
    collisions: Vec<String>,
}

impl Names {
    /// Builds the table from every server's known names.
    pub(crate) fn build(offers: &[Offer<'_>]) -> Names {
        let mut names = Names {
            servers: offers
                .iter()
                .map(|o| (o.server.to_owned(), o.prefix))
                .collect(),
            ..Names::default()
        };
        for (i, offer) in offers.iter().enumerate() {
            let mut shown = HashMap::new();
            for orig in offer.names {
                let plain_taken = names.route.contains_key(orig);
                let offered = match offer.prefix {
                    PrefixMode::Always => Some(prefixed(offer.server, orig)),
                    PrefixMode::Never if plain_taken => None,
                    PrefixMode::Never => Some(orig.clone()),
                    PrefixMode::OnCollision if plain_taken => Some(prefixed(offer.server, orig)),
                    PrefixMode::OnCollision => Some(orig.clone()),
                };
                match offered {
                    Some(name) if !names.route.contains_key(&name) => {
                        names.route.insert(name.clone(), (i, orig.clone()));
                        shown.insert(orig.clone(), name);
                    }
                    other => {
                        let name = other.unwrap_or_else(|| orig.clone());
                        let owner = names
                            .route
                            .get(&name)
                            .map_or("?", |(j, _)| offers[*j].server);
                        names.collisions.push(format!(
                            "{name:?} of server {} collides with server {owner}, which keeps it (prefix: {})",
                            offer.server,
                            mode_str(offer.prefix),
                        ));
                    }
                }
            }
            names.shown.push(shown);
        }
        names
    }

    /// The name server `i`'s `orig` is offered under; `None` when a collision hides it. A name the table has not
    /// seen yet follows the server's rule against the names it knows.
    pub(crate) fn shown(&self, i: usize, orig: &str) -> Option<String> {
        if let Some(name) = self.shown.get(i).and_then(|m| m.get(orig)) {
            return Some(name.clone());
        }
        let (server, prefix) = self.servers.get(i)?;
        let taken = |n: &str| self.route.get(n).is_some_and(|(j, _)| *j != i);
        match prefix {
            PrefixMode::Always => Some(prefixed(server, orig)),
            PrefixMode::Never => (!taken(orig)).then(|| orig.to_owned()),
            PrefixMode::OnCollision if taken(orig) => Some(prefixed(server, orig)),
            PrefixMode::OnCollision => Some(orig.to_owned()),
        }
    }

    /// The server index and original name a client's `name` routes to; `None` when no server offers it.
    pub(crate) fn resolve(&self, name: &str) -> Option<(usize, String)> {
        if let Some(hit) = self.route.get(name) {
            return Some(hit.clone());
        }
        // Not listed yet: `NAME__rest` for a server that prefixes.
        if let Some((server, rest)) = name.split_once(PREFIX_SEPARATOR) {
            if let Some(i) = self
                .servers
                .iter()
                .position(|(s, p)| s == server && *p != PrefixMode::Never)
            {
                return Some((i, rest.to_owned()));
            }
        }
        None
    }

    /// Every collision, one line each.
    pub(crate) fn collisions(&self) -> &[String] {
        &self.collisions
    }
}

/// `NAME__orig`.
pub(crate) fn prefixed(server: &str, orig: &str) -> String {
    format!("{server}{PREFIX_SEPARATOR}{orig}")
}

fn mode_str(m: PrefixMode) -> &'static str {
    match m {
        PrefixMode::Always => "always",
        PrefixMode::Never => "never",
        PrefixMode::OnCollision => "on_collision",
    }
}

/// The merged cursor for the servers that have pages left (`None` when none has: the last page).
pub(crate) fn encode_cursor(left: &BTreeMap<String, String>) -> Option<String> {
    if left.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(left).expect("a map of strings serializes");
    Some(URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a merged cursor.
///
/// Errors: a message for the client's `-32602 Invalid params` (2025-11-25 `server/utilities/pagination`
/// §Error Handling: "Invalid cursors SHOULD result in an error with code -32602").
pub(crate) fn decode_cursor(cursor: &str) -> Result<BTreeMap<String, String>, String> {
    if cursor.len() > MAX_CURSOR_BYTES {
        return Err("invalid cursor: too long".to_owned());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| "invalid cursor: not one this gateway issued".to_owned())?;
    serde_json::from_slice(&bytes)
        .map_err(|_| "invalid cursor: not one this gateway issued".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn each_rule_names_and_routes_back() {
        let a = names(&["echo", "add"]);
        let b = names(&["echo", "sum"]);
        let c = names(&["echo", "mul"]);
        let d = names(&["echo", "sub"]);
        let t = Names::build(&[
            Offer {
                server: "a",
                prefix: PrefixMode::Never,
                names: &a,
            },
            Offer {
                server: "b",
                prefix: PrefixMode::OnCollision,
                names: &b,
            },
            Offer {
                server: "c",
                prefix: PrefixMode::Always,
                names: &c,
            },
            Offer {
                server: "d",
                prefix: PrefixMode::Never,
                names: &d,
            },
        ]);
        assert_eq!(t.shown(0, "echo").as_deref(), Some("echo"));
        assert_eq!(t.shown(1, "echo").as_deref(), Some("b__echo"));
        assert_eq!(t.shown(1, "sum").as_deref(), Some("sum"));
        assert_eq!(t.shown(2, "echo").as_deref(), Some("c__echo"));
        assert_eq!(t.shown(3, "echo"), None, "a never-server's clash is hidden");
        assert_eq!(t.shown(3, "sub").as_deref(), Some("sub"));
        assert_eq!(t.collisions().len(), 1, "{:?}", t.collisions());
        assert!(t.collisions()[0].contains("server d collides with server a"));
        for (name, want) in [
            ("echo", (0, "echo")),
            ("b__echo", (1, "echo")),
            ("sum", (1, "sum")),
            ("c__mul", (2, "mul")),
            ("sub", (3, "sub")),
        ] {
            assert_eq!(t.resolve(name), Some((want.0, want.1.to_owned())), "{name}");
        }
        // Not listed yet: a prefixed name routes by its prefix; an unknown plain name nowhere.
        assert_eq!(t.resolve("c__new"), Some((2, "new".to_owned())));
        assert_eq!(t.resolve("nothing"), None);
        assert_eq!(t.resolve("a__echo"), None, "a never-server has no prefix");
    }

    #[test]
    fn adding_a_server_renames_nobody_before_it() {
        let a = names(&["echo"]);
        let b = names(&["echo"]);
        let one = Names::build(&[Offer {
            server: "a",
            prefix: PrefixMode::OnCollision,
            names: &a,
        }]);
        let two = Names::build(&[
            Offer {
                server: "a",
                prefix: PrefixMode::OnCollision,
                names: &a,
            },
            Offer {
                server: "b",
                prefix: PrefixMode::OnCollision,
                names: &b,
            },
        ]);
        assert_eq!(one.shown(0, "echo"), two.shown(0, "echo"));
        assert_eq!(two.shown(1, "echo").as_deref(), Some("b__echo"));
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let mut left = BTreeMap::new();
        assert_eq!(encode_cursor(&left), None);
        left.insert("a".to_owned(), "page-2".to_owned());
        let c = encode_cursor(&left).expect("a cursor");
        assert_eq!(decode_cursor(&c).expect("decodes"), left);
        for bad in ["!!", "bm90IGpzb24", &"A".repeat(MAX_CURSOR_BYTES + 1)] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
