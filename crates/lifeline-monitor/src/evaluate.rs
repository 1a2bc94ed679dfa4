//! The pure heart of the monitor: one probe report and the target's previous state in, the target's next
//! state, its result row, derived events and at most one incident change out. No I/O, so every rule here is a
//! table-driven test.
//!
//! Rules:
//! - *Up* means healthy or degraded, or `auth_required` for a target with `accept_auth_required`.
//! - Hysteresis: `failure_threshold` failures in a row open an incident; `success_threshold` successes in a row
//!   resolve it. Inside a maintenance window failures are not counted, so nothing opens and no reminder goes
//!   out; a resolution inside a window is recorded at once and its alert held until the window ends.
//! - One alert per provider on open and on resolve; reminders at most every `reminder_interval` while open,
//!   never to the providers that track the incident themselves ([`crate::config::AlertKind::takes_reminders`]: PagerDuty,
//!   Opsgenie, Alertmanager).
//! - Events: schema drift (with the diff), protocol and server version changes, a certificate crossing 30, 14
//!   or 7 days left (once per certificate and threshold).

use lifeline_mcp::probe::ProbeReport;
use lifeline_mcp::Verdict;
use serde_json::{json, Value};

use crate::config::{AlertConfig, TargetConfig};
use crate::drift::diff_tools;
use crate::store::{
    EventKind, IncidentOp, NewAlert, NewEvent, OpenIncident, ProbeRow, RecordOp, Severity,
    TargetState,
};

/// Certificate warning thresholds, in days, from the widest.
pub const CERT_THRESHOLDS_DAYS: [i64; 3] = [30, 14, 7];

/// Everything [`evaluate`] needs besides the report.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The target's configuration.
    pub target: &'a TargetConfig,
    /// Alert providers.
    pub alerts: &'a [AlertConfig],
    /// When the probe started, Unix ms.
    pub at_ms: i64,
    /// End of the maintenance window covering the target now, if any.
    pub maintenance_until: Option<i64>,
    /// The previous tool list, when the schema hash changed and it is known.
    pub old_tools: Option<&'a [Value]>,
}

/// True when the report counts as up for `target`.
pub fn is_up(report: &ProbeReport, target: &TargetConfig) -> bool {
    report.is_usable() || (report.verdict == Verdict::AuthRequired && target.accept_auth_required)
}

/// Applies one report to `prev` and returns what to write.
pub fn evaluate(prev: &TargetState, report: &ProbeReport, cx: &Context<'_>) -> RecordOp {
    let at = cx.at_ms;
    let up = is_up(report, cx.target);
    let maintenance = cx.maintenance_until.is_some();
    let result = ProbeRow::from_report(report, at, up, maintenance);
    let mut s = prev.clone();
    let mut events = Vec::new();
    let mut tools_json = None;

    s.last_checked_ms = Some(at);
    s.last_verdict = Some(report.verdict.as_str().to_owned());
    s.last_reason = report.reason.map(|r| r.as_str().to_owned());
    s.last_message = report.failure.as_ref().map(|f| f.message.clone());
    s.last_latency_ms = result.latency_ms;

    // Attributes: only compared when this probe saw them (a failed probe says nothing about versions).
    if let Some(era) = report.era {
        s.era = Some(era.as_str().to_owned());
    }
    if let Some(new) = &report.protocol_version {
        if let Some(old) = prev.protocol_version.as_ref().filter(|o| *o != new) {
            events.push(NewEvent {
                ts_ms: at,
                kind: EventKind::ProtocolVersionChanged,
                severity: Severity::Warning,
                summary: format!("{}: protocol version {old} → {new}", prev.name),
                details: json!({"from": old, "to": new, "era": report.era.map(|e| e.as_str())}),
            });
        }
        s.protocol_version = Some(new.clone());
    }
    if let Some(info) = &report.server_info {
        if let Some(new) = &info.version {
            if let Some(old) = prev.server_version.as_ref().filter(|o| *o != new) {
                events.push(NewEvent {
                    ts_ms: at,
                    kind: EventKind::ServerVersionChanged,
                    severity: Severity::Info,
                    summary: format!("{}: server version {old} → {new}", prev.name),
                    details: json!({"from": old, "to": new, "server_name": info.name}),
                });
            }
            s.server_version = Some(new.clone());
        }
        if info.name.is_some() {
            s.server_name = info.name.clone();
        }
    }
    if let Some(n) = report.tools_count {
        s.tools_count = Some(i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let Some(new) = &report.schema_hash {
        if prev.schema_hash.as_ref() != Some(new) {
            tools_json = Some(Value::Array(report.tools.clone()).to_string());
            if let Some(old) = &prev.schema_hash {
                let diff = diff_tools(cx.old_tools.unwrap_or_default(), &report.tools);
                let known = cx.old_tools.is_some();
                events.push(NewEvent {
                    ts_ms: at,
                    kind: EventKind::SchemaDrift,
                    severity: if diff.breaking {
                        Severity::Warning
                    } else {
                        Severity::Info
                    },
                    summary: format!(
                        "{}: tool schema changed ({}; +{} −{} ~{})",
                        prev.name,
                        if known {
                            diff.classification()
                        } else {
                            "unknown"
                        },
                        diff.added.len(),
                        diff.removed.len(),
                        diff.changed.len()
                    ),
                    details: json!({
                        "from_hash": old,
                        "to_hash": new,
                        "classification": if known { diff.classification() } else { "unknown" },
                        "breaking": diff.breaking,
                        "added": diff.added,
                        "removed": diff.removed,
                        "changed": diff.changed,
                        "changes": diff.changes,
                    }),
                });
            }
        }
        s.schema_hash = Some(new.clone());
    }

    // Certificates: one event per certificate and threshold crossed.
    if let Some(tls) = &report.tls {
        let tls_not_after_ms = result.tls_not_after_ms;
        if tls_not_after_ms.is_some() && tls_not_after_ms != prev.tls_not_after_ms {
            s.cert_warned_days = None; // a new certificate starts afresh
        }
        s.tls_not_after_ms = tls_not_after_ms.or(s.tls_not_after_ms);
        s.tls_days_left = tls.days_left;
        if let Some(days) = tls.days_left {
            if let Some(t) = CERT_THRESHOLDS_DAYS
                .iter()
                .copied()
                .filter(|t| days <= *t)
                .min()
            {
                if s.cert_warned_days.is_none_or(|w| w > t) {
                    s.cert_warned_days = Some(t);
                    events.push(NewEvent {
                        ts_ms: at,
                        kind: EventKind::CertExpiring,
                        severity: match t {
                            7 => Severity::Critical,
                            14 => Severity::Warning,
                            _ => Severity::Info,
                        },
                        summary: format!("{}: certificate expires in {days} days", prev.name),
                        details: json!({"days_left": days, "threshold_days": t, "not_after": tls.not_after, "subject": tls.subject}),
                    });
                }
            }
        }
    }

    // Hysteresis.
    if up {
        s.consecutive_successes += 1;
        s.consecutive_failures = 0;
    } else if maintenance {
        s.consecutive_failures = 0;
        s.consecutive_successes = 0;
    } else {
        s.consecutive_failures += 1;
        s.consecutive_successes = 0;
    }
    let context = json!({
        "verdict": report.verdict.as_str(),
        "reason": report.reason.map(|r| r.as_str()),
        "message": report.failure.as_ref().map(|f| f.message.as_str()),
        "at_ms": at,
    });
    let alerts_for = |due_ms: i64, reminder: bool| -> Vec<NewAlert> {
        cx.alerts
            .iter()
            .filter(|a| !reminder || a.kind.takes_reminders())
            .map(|a| NewAlert {
                provider: a.name.clone(),
                due_ms,
                context: context.clone(),
            })
            .collect()
    };
    let threshold_f = i64::from(cx.target.failure_threshold.get());
    let threshold_s = i64::from(cx.target.success_threshold.get());
    let incident = match &prev.open_incident {
        None if !up && !maintenance && s.consecutive_failures >= threshold_f => IncidentOp::Open {
            at_ms: at,
            reason: report.reason,
            message: s.last_message.clone(),
            summary: format!(
                "{} is down: {}",
                prev.name,
                s.last_message
                    .as_deref()
                    .or(s.last_reason.as_deref())
                    .unwrap_or(report.verdict.as_str())
            ),
            alerts: alerts_for(at, false),
        },
        Some(open) if up && s.consecutive_successes >= threshold_s => {
            s.open_incident = None;
            IncidentOp::Resolve {
                incident_id: open.id,
                at_ms: at,
                summary: format!(
                    "{} recovered after {}",
                    prev.name,
                    humantime::format_duration(std::time::Duration::from_secs(
                        u64::try_from((at - open.opened_ms) / 1000).unwrap_or(0)
                    ))
                ),
                alerts: alerts_for(cx.maintenance_until.unwrap_or(at), false),
            }
        }
        Some(open) if !up && !maintenance => match cx.target.reminder_interval {
            Some(every)
                if at - open.last_notified_ms
                    >= i64::try_from(every.as_millis()).unwrap_or(i64::MAX) =>
            {
                let seq = open.reminders + 1;
                s.open_incident = Some(OpenIncident {
                    last_notified_ms: at,
                    reminders: seq,
                    ..open.clone()
                });
                IncidentOp::Remind {
                    incident_id: open.id,
                    seq,
                    at_ms: at,
                    alerts: alerts_for(at, true),
                }
            }
            _ => IncidentOp::None,
        },
        _ => IncidentOp::None,
    };

    RecordOp {
        state: s,
        tools_json,
        result,
        events,
        incident,
    }
}

#[cfg(test)]
mod tests;
