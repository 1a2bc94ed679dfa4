//! The upstream pool's metrics, one series set per endpoint, with a bounded label set:
//!
//! | name | type | labels |
//! |---|---|---|
//! | `lifeline_gateway_upstream_endpoint_healthy` | gauge | `endpoint` (1 when it takes new sessions: its last probe passed, not ejected, not draining) |
//! | `lifeline_gateway_upstream_endpoint_draining` | gauge | `endpoint` (1 while it drains: it answered 503, or its sidecar's `/ready`, read with `ready_port`, did not answer 200) |
//! | `lifeline_gateway_upstream_endpoint_requests_total` | counter | `endpoint` (requests sent to it, retries included) |
//! | `lifeline_gateway_upstream_endpoint_errors_total` | counter | `endpoint`, `reason` (`connect`, `timeout`, `protocol`, `status_5xx`) |
//! | `lifeline_gateway_upstream_endpoint_ejections_total` | counter | `endpoint` (passive outlier ejections) |
//! | `lifeline_gateway_upstream_group_weight` | gauge | `group` (its traffic weight, 0..=100: the percent of new sessions and stateless requests; bounded by the configured groups) |
//!
//! `endpoint` is the endpoint's URL (for a DNS-discovered one, with the address in place of the name). At most
//! [`MAX_LABELLED_ENDPOINTS`] endpoints are labelled at a time; the counters of any further endpoint add up under
//! `endpoint="other"` and their health is not exported per endpoint (`/healthz` lists every endpoint). An
//! endpoint that leaves the pool (DNS) releases its label and its series.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Most endpoints with their own label values at a time; the rest count under `endpoint="other"`.
pub(crate) const MAX_LABELLED_ENDPOINTS: usize = 64;
/// The label value of the endpoints beyond [`MAX_LABELLED_ENDPOINTS`].
const OTHER: &str = "other";
/// The bounded `reason` values of `…_endpoint_errors_total`.
pub(crate) const ERROR_REASONS: [&str; 4] = ["connect", "timeout", "protocol", "status_5xx"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointReasonLabel {
    endpoint: String,
    reason: &'static str,
}

/// The families, registered once.
#[derive(Debug, Default)]
pub(crate) struct EndpointFamilies {
    healthy: Family<EndpointLabel, Gauge>,
    draining: Family<EndpointLabel, Gauge>,
    requests: Family<EndpointLabel, Counter>,
    errors: Family<EndpointReasonLabel, Counter>,
    ejections: Family<EndpointLabel, Counter>,
    group_weight: Family<GroupLabel, Gauge>,
    labelled: Mutex<HashSet<String>>,
}

/// One endpoint's handles: updating them needs no lookup. Handles of a released endpoint still work but are
/// no longer exported.
#[derive(Debug, Clone, Default)]
pub(crate) struct EndpointMetrics {
    /// `…_endpoint_healthy`.
    pub(crate) healthy: Gauge,
    /// `…_endpoint_draining`.
    pub(crate) draining: Gauge,
    /// `…_endpoint_requests_total`.
    pub(crate) requests: Counter,
    /// `…_endpoint_errors_total`, in the order of [`ERROR_REASONS`].
    pub(crate) errors: [Counter; 4],
    /// `…_endpoint_ejections_total`.
    pub(crate) ejections: Counter,
}

impl EndpointFamilies {
    pub(crate) fn register(registry: &mut Registry) -> EndpointFamilies {
        let f = EndpointFamilies::default();
        registry.register(
            "lifeline_gateway_upstream_endpoint_healthy",
            "1 when the pool endpoint takes new sessions (last probe passed, not ejected, not draining), else 0",
            f.healthy.clone(),
        );
        registry.register(
            "lifeline_gateway_upstream_endpoint_draining",
            "1 while the pool endpoint drains (it answered 503, or its sidecar's /ready did not answer 200): no new sessions, its sessions stay",
            f.draining.clone(),
        );
        registry.register(
            "lifeline_gateway_upstream_endpoint_requests",
            "Requests sent to each pool endpoint (at most 64 endpoints labelled; the rest as endpoint=\"other\")",
            f.requests.clone(),
        );
        registry.register(
            "lifeline_gateway_upstream_endpoint_errors",
            "Failed requests to each pool endpoint, by reason (connect, timeout, protocol, status_5xx)",
            f.errors.clone(),
        );
        registry.register(
            "lifeline_gateway_upstream_endpoint_ejections",
            "Passive outlier ejections of each pool endpoint",
            f.ejections.clone(),
        );
        registry.register(
            "lifeline_gateway_upstream_group_weight",
            "Traffic weight of each pool group (0..=100, the percent of new sessions and stateless requests it gets)",
            f.group_weight.clone(),
        );
        f
    }

    /// Sets `lifeline_gateway_upstream_group_weight{group}` to `weight` (0..=100). The groups are the
    /// configured ones (at most `MAX_ENDPOINTS` entries, names validated), so the label set is bounded.
    pub(crate) fn set_group_weight(&self, group: &str, weight: u32) {
        self.group_weight
            .get_or_create(&GroupLabel {
                group: group.to_owned(),
            })
            .set(i64::from(weight));
    }

    fn labelled(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.labelled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handles of the endpoint labelled `label`: its own series while fewer than
    /// [`MAX_LABELLED_ENDPOINTS`] are labelled, else the shared `other` counters and an unexported gauge.
    pub(crate) fn endpoint(&self, label: &str) -> EndpointMetrics {
        let own = {
            let mut set = self.labelled();
            set.contains(label)
                || (set.len() < MAX_LABELLED_ENDPOINTS && set.insert(label.to_owned()))
        };
        let name = if own { label } else { OTHER };
        let l = EndpointLabel {
            endpoint: name.to_owned(),
        };
        let errors = ERROR_REASONS.map(|reason| {
            self.errors
                .get_or_create(&EndpointReasonLabel {
                    endpoint: name.to_owned(),
                    reason,
                })
                .clone()
        });
        EndpointMetrics {
            healthy: if own {
                self.healthy.get_or_create(&l).clone()
            } else {
                Gauge::default()
            },
            draining: if own {
                self.draining.get_or_create(&l).clone()
            } else {
                Gauge::default()
            },
            requests: self.requests.get_or_create(&l).clone(),
            errors,
            ejections: self.ejections.get_or_create(&l).clone(),
        }
    }

    /// Forgets the endpoint labelled `label` (it left the pool): its series disappear and its label is free.
    pub(crate) fn release(&self, label: &str) {
        if !self.labelled().remove(label) {
            return;
        }
        let l = EndpointLabel {
            endpoint: label.to_owned(),
        };
        self.healthy.remove(&l);
        self.draining.remove(&l);
        self.requests.remove(&l);
        self.ejections.remove(&l);
        for reason in ERROR_REASONS {
            self.errors.remove(&EndpointReasonLabel {
                endpoint: label.to_owned(),
                reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_capped_and_released() {
        let f = EndpointFamilies::default();
        for i in 0..MAX_LABELLED_ENDPOINTS {
            f.endpoint(&format!("http://10.0.0.{i}:80/mcp"))
                .requests
                .inc();
        }
        let extra = f.endpoint("http://10.0.1.1:80/mcp");
        extra.requests.inc();
        extra.healthy.set(1);
        assert_eq!(f.labelled().len(), MAX_LABELLED_ENDPOINTS);
        assert_eq!(
            f.requests
                .get_or_create(&EndpointLabel {
                    endpoint: OTHER.to_owned()
                })
                .get(),
            1
        );
        f.release("http://10.0.0.0:80/mcp");
        assert_eq!(f.labelled().len(), MAX_LABELLED_ENDPOINTS - 1);
        let again = f.endpoint("http://10.0.1.1:80/mcp");
        again.healthy.set(1);
        assert!(f.labelled().contains("http://10.0.1.1:80/mcp"));
    }
}
