//! Group traffic weights (blue-green and canary, `docs/gateway-replicas.md` §Switching versions): each group of
//! the pool gets a weight in percent, 0..=100, summing to 100 over the configured groups. The balancer
//! ([`super::Pool::pick`]) first draws a group in proportion to these weights, then picks an endpoint inside it
//! with the power of two choices over the endpoints' own weights. Only new work follows the weights: a session
//! stays on the endpoint that minted it (`Route::Pinned`) until it ends or that endpoint drains.
//!
//! Until weights are set (the `traffic:` config or `POST /admin/traffic`), there is no group stage: every
//! endpoint is drawn in proportion to its own weight, as before groups were used.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::Value;

/// The group weights of a pool, `None` until set, and the last tool list each group answered with.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    weights: RwLock<Option<Arc<BTreeMap<String, u32>>>>,
    /// Per group, the tools of its last healthy probe (active or the gate's): what the drift gate compares
    /// with when no endpoint of the live group answers. One per configured group (bounded by the config).
    snapshots: Mutex<BTreeMap<String, Arc<Snapshot>>>,
}

/// A group's tools as one of its endpoints last listed them in a healthy probe.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The endpoint that answered (its label).
    pub(crate) endpoint: String,
    /// Its tools, as the probe report holds them (`ProbeReport::tools`).
    pub(crate) tools: Vec<Value>,
    /// When.
    pub(crate) at: Instant,
}

impl Traffic {
    /// The weights set, if any.
    pub(crate) fn get(&self) -> Option<Arc<BTreeMap<String, u32>>> {
        self.weights
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the weights.
    pub(crate) fn set(&self, weights: BTreeMap<String, u32>) {
        *self.weights.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(weights));
    }

    /// Records `snapshot` as `group`'s latest.
    pub(crate) fn record_snapshot(&self, group: &str, snapshot: Snapshot) {
        let mut map = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(group.to_owned(), Arc::new(snapshot));
    }

    /// The latest snapshot of `group`, if a healthy probe of it ever listed its tools.
    pub(crate) fn snapshot(&self, group: &str) -> Option<Arc<Snapshot>> {
        let map = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        map.get(group).cloned()
    }
}

/// Splits `total` over `parts` in proportion to their sizes (equally when every size is 0), in whole numbers
/// that add up to `total` (the largest-remainder method; ties to the earlier part).
pub(crate) fn apportion(total: u32, parts: &[(String, u64)]) -> BTreeMap<String, u32> {
    let sum: u64 = parts.iter().map(|(_, n)| n).sum();
    let sizes: Vec<u64> = if sum == 0 {
        parts.iter().map(|_| 1).collect()
    } else {
        parts.iter().map(|(_, n)| *n).collect()
    };
    let sum: u64 = sizes.iter().sum();
    let mut out = BTreeMap::new();
    if sum == 0 {
        return out;
    }
    let mut shares: Vec<(usize, u64, u64)> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let exact = u64::from(total) * n;
            (i, exact / sum, exact % sum)
        })
        .collect();
    let given: u64 = shares.iter().map(|s| s.1).sum();
    let mut left = u64::from(total).saturating_sub(given);
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i].1 += 1;
        left -= 1;
    }
    for (i, share, _) in shares {
        out.insert(parts[i].0.clone(), u32::try_from(share).unwrap_or(u32::MAX));
    }
    out
}

/// The weights after giving `group` `weight` percent: every other group of `current` shares the rest in
/// proportion to its current weight (equally when none has any).
pub(crate) fn rebalance(
    current: &BTreeMap<String, u32>,
    group: &str,
    weight: u32,
) -> BTreeMap<String, u32> {
    let weight = weight.min(100);
    let others: Vec<(String, u64)> = current
        .iter()
        .filter(|(g, _)| g.as_str() != group)
        .map(|(g, w)| (g.clone(), u64::from(*w)))
        .collect();
    let mut out = if others.is_empty() {
        BTreeMap::new()
    } else {
        apportion(100 - weight, &others)
    };
    // A lone group takes everything, whatever was asked: there is nowhere else to send the rest.
    out.insert(
        group.to_owned(),
        if others.is_empty() { 100 } else { weight },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: &[(&str, u32)]) -> BTreeMap<String, u32> {
        v.iter().map(|(g, w)| ((*g).to_owned(), *w)).collect()
    }

    #[test]
    fn apportion_adds_up() {
        let parts = vec![
            ("a".to_owned(), 1),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1),
        ];
        let out = apportion(100, &parts);
        assert_eq!(out.values().sum::<u32>(), 100);
        assert_eq!(out, map(&[("a", 34), ("b", 33), ("c", 33)]));
        let zero = vec![("a".to_owned(), 0), ("b".to_owned(), 0)];
        assert_eq!(apportion(10, &zero), map(&[("a", 5), ("b", 5)]));
    }

    #[test]
    fn rebalance_moves_the_rest_proportionally() {
        let blue_green = map(&[("blue", 100), ("green", 0)]);
        assert_eq!(
            rebalance(&blue_green, "green", 10),
            map(&[("blue", 90), ("green", 10)])
        );
        assert_eq!(
            rebalance(&blue_green, "green", 100),
            map(&[("blue", 0), ("green", 100)])
        );
        // Back from all-green: the other groups had nothing, so they share the rest equally.
        let three = map(&[("a", 0), ("b", 0), ("c", 100)]);
        assert_eq!(
            rebalance(&three, "c", 50),
            map(&[("a", 25), ("b", 25), ("c", 50)])
        );
        assert_eq!(rebalance(&map(&[("x", 100)]), "x", 0), map(&[("x", 100)]));
    }
}
