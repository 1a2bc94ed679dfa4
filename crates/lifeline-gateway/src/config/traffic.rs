//! Traffic switching settings (`docs/gateway-replicas.md` §Switching versions): the admin token that guards
//! `POST /admin/traffic`, and the initial group weights of the pool.
//!
//! - `admin_token_file` (`--admin-token-file`, `LIFELINE_ADMIN_TOKEN_FILE`): a file whose first line is the
//!   token (at least [`MIN_ADMIN_TOKEN_BYTES`] bytes, surrounding whitespace ignored; a Kubernetes Secret). It
//!   is read at start-up to check it, and again on every admin call, so a rotated Secret takes effect without a
//!   restart. Without it, `/admin/traffic` answers 403 and changes nothing: the admin port is never an open
//!   switch.
//! - `traffic` (config file only): `{group: weight}` in percent, every configured group at most once, each
//!   0..=100, summing to 100; groups not listed get 0. Without it the balancer has no group stage and every
//!   endpoint is drawn by its own weight.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lifeline_core::FieldErrors;
use serde::Serialize;

use super::{EndpointConfig, ReadFile};

/// Shortest admin token accepted: 16 bytes (a guessable token on a port that switches traffic is no guard).
pub(crate) const MIN_ADMIN_TOKEN_BYTES: usize = 16;

/// The validated traffic settings. Serialized as `admin_token_file` (the path, never the token) and `traffic`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficConfig {
    /// The admin token file; `None` disables `POST /admin/traffic` (403).
    pub admin_token_file: Option<PathBuf>,
    /// Initial group weights (percent, summing to 100, every configured group present); `None` when not set.
    #[serde(rename = "traffic", skip_serializing_if = "Option::is_none")]
    pub weights: Option<BTreeMap<String, u32>>,
}

/// The token of an admin token file's text: its first line, trimmed. Errors: a human sentence when it is empty
/// or shorter than [`MIN_ADMIN_TOKEN_BYTES`].
pub(crate) fn parse_admin_token(text: &str) -> Result<String, String> {
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err("the admin token file is empty".to_owned());
    }
    if token.len() < MIN_ADMIN_TOKEN_BYTES {
        return Err(format!(
            "the admin token must be at least {MIN_ADMIN_TOKEN_BYTES} bytes long"
        ));
    }
    Ok(token.to_owned())
}

/// Checks `admin_token_file` (read once through `read_file`) and `traffic` against the pool's `endpoints`.
pub(crate) fn validate(
    admin_token_file: Option<&PathBuf>,
    weights: Option<&BTreeMap<String, u32>>,
    endpoints: &[EndpointConfig],
    e: &mut FieldErrors,
    read_file: ReadFile<'_>,
) -> TrafficConfig {
    if let Some(path) = admin_token_file {
        match read_file(path) {
            Ok(text) => {
                e.check("admin_token_file", parse_admin_token(&text));
            }
            Err(err) => e.push(
                "admin_token_file",
                format!("cannot read {}: {err}", path.display()),
            ),
        }
    }
    let weights = weights.and_then(|w| {
        let before = e.len();
        if endpoints.is_empty() {
            e.push(
                "traffic",
                "group weights need an HTTP pool (upstream or upstreams)",
            );
            return None;
        }
        let mut out: BTreeMap<String, u32> =
            endpoints.iter().map(|x| (x.group.clone(), 0)).collect();
        for (group, weight) in w {
            if !out.contains_key(group) {
                e.push(
                    format!("traffic.{group}"),
                    "no entry of upstreams has this group",
                );
            } else if *weight > 100 {
                e.push(format!("traffic.{group}"), "must be between 0 and 100");
            } else {
                out.insert(group.clone(), *weight);
            }
        }
        let sum: u32 = w.values().map(|v| (*v).min(101)).sum();
        if e.len() == before && sum != 100 {
            e.push(
                "traffic",
                format!("the group weights must add up to 100 (they add up to {sum})"),
            );
        }
        (e.len() == before).then_some(out)
    });
    TrafficConfig {
        admin_token_file: admin_token_file.cloned(),
        weights,
    }
}
