use std::num::NonZeroU32;
use std::time::Duration;

use lifeline_mcp::probe::{Failure, Phase, ProbeReport, ServerInfo, Timings, TlsInfo};
use lifeline_mcp::{Era, Reason, Verdict};
use serde_json::json;
use url::Url;

use super::*;
use crate::config::{AlertConfig, AlertKind, TargetConfig};
use crate::store::{EventKind, IncidentOp, OpenIncident, TargetState};

pub(crate) fn report(verdict: Verdict) -> ProbeReport {
    let mut timings = Timings::default();
    timings.add(Phase::Total, 42.0);
    let reason = match verdict {
        Verdict::Healthy => None,
        Verdict::Degraded => Some(Reason::Slow),
        Verdict::AuthRequired => Some(Reason::AuthRequired),
        Verdict::Unhealthy => Some(Reason::ConnectRefused),
    };
    ProbeReport {
        url: "http://127.0.0.1/mcp".into(),
        verdict,
        reason,
        failure: reason.map(|r| Failure::new(r, "connection refused")),
        era: Some(Era::Legacy),
        transport: None,
        protocol_version: (verdict == Verdict::Healthy).then(|| "2025-11-25".to_owned()),
        server_info: Some(ServerInfo {
            name: Some("srv".into()),
            version: Some("1.0.0".into()),
        }),
        capabilities: None,
        tools_count: Some(1),
        schema_hash: (verdict == Verdict::Healthy).then(|| "h1".to_owned()),
        timings_ms: timings,
        tls: None,
        auth: None,
        tool_call: None,
        credentials: Vec::new(),
        warnings: Vec::new(),
        started_at: String::new(),
        transactions: Vec::new(),
        tools: vec![
            json!({"name": "echo", "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}}}),
        ],
    }
}

fn target(reminder: Option<Duration>) -> TargetConfig {
    let mut t = TargetConfig::new("t", Url::parse("http://127.0.0.1/mcp").unwrap());
    t.failure_threshold = NonZeroU32::new(3).unwrap();
    t.success_threshold = NonZeroU32::new(2).unwrap();
    t.reminder_interval = reminder;
    t
}

fn alerts() -> Vec<AlertConfig> {
    vec![
        AlertConfig {
            name: "webhook".into(),
            kind: AlertKind::Webhook {
                url: Url::parse("http://127.0.0.1/h").unwrap(),
                headers: vec![],
            },
            timeout: Duration::from_secs(1),
            retries: 0,
        },
        AlertConfig {
            name: "pagerduty".into(),
            kind: AlertKind::PagerDuty {
                routing_key: lifeline_mcp::probe::Secret::new("k"),
                events_url: Url::parse("http://127.0.0.1/pd").unwrap(),
            },
            timeout: Duration::from_secs(1),
            retries: 0,
        },
    ]
}

/// Runs a sequence of verdicts; returns the op kinds ("-", "open", "remind", "resolve") step by step.
fn run(seq: &[(Verdict, i64, bool)], t: &TargetConfig) -> Vec<&'static str> {
    let alerts = alerts();
    let mut s = TargetState {
        id: 1,
        name: "t".into(),
        ..TargetState::default()
    };
    let mut out = Vec::new();
    for (v, at, maint) in seq {
        let r = report(*v);
        let cx = Context {
            target: t,
            alerts: &alerts,
            at_ms: *at,
            maintenance_until: maint.then_some(at + 1_000_000),
            old_tools: None,
        };
        let op = evaluate(&s, &r, &cx);
        s = op.state.clone();
        out.push(match op.incident {
            IncidentOp::None => "-",
            IncidentOp::Open { .. } => {
                s.open_incident = Some(OpenIncident {
                    id: 7,
                    opened_ms: *at,
                    last_notified_ms: *at,
                    reminders: 0,
                });
                "open"
            }
            IncidentOp::Remind { .. } => "remind",
            IncidentOp::Resolve { .. } => "resolve",
        });
    }
    out
}

#[test]
fn hysteresis_table() {
    use Verdict::{Degraded as D, Healthy as H, Unhealthy as U};
    let t = target(None);
    type Case = (&'static str, Vec<(Verdict, i64, bool)>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "below threshold",
            vec![(U, 1, false), (U, 2, false), (H, 3, false)],
            vec!["-", "-", "-"],
        ),
        (
            "opens once at the threshold",
            vec![
                (U, 1, false),
                (U, 2, false),
                (U, 3, false),
                (U, 4, false),
                (U, 5, false),
            ],
            vec!["-", "-", "open", "-", "-"],
        ),
        (
            "one success does not resolve, two do",
            vec![
                (U, 1, false),
                (U, 2, false),
                (U, 3, false),
                (H, 4, false),
                (U, 5, false),
                (H, 6, false),
                (D, 7, false),
            ],
            vec!["-", "-", "open", "-", "-", "-", "resolve"],
        ),
        (
            "maintenance: failures do not count",
            vec![
                (U, 1, true),
                (U, 2, true),
                (U, 3, true),
                (U, 4, true),
                (U, 5, false),
            ],
            vec!["-", "-", "-", "-", "-"],
        ),
        (
            "a failure inside a window resets the count",
            vec![
                (U, 1, false),
                (U, 2, false),
                (U, 3, true),
                (U, 4, false),
                (U, 5, false),
            ],
            vec!["-", "-", "-", "-", "-"],
        ),
    ];
    for (name, seq, want) in cases {
        assert_eq!(run(&seq, &t), want, "{name}");
    }
}

#[test]
fn reminders_respect_the_interval_and_skip_the_providers_that_escalate_themselves() {
    use Verdict::Unhealthy as U;
    let t = target(Some(Duration::from_secs(10)));
    let seq = [
        (U, 0, false),
        (U, 1_000, false),
        (U, 2_000, false),
        (U, 5_000, false),
        (U, 12_000, false),
        (U, 13_000, false),
        (U, 22_500, false),
    ];
    assert_eq!(
        run(&seq, &t),
        vec!["-", "-", "open", "-", "remind", "-", "remind"]
    );

    // Opsgenie and Alertmanager track the incident themselves too: no reminders for them either.
    let mut alerts = alerts();
    alerts.push(AlertConfig {
        name: "opsgenie".into(),
        kind: AlertKind::Opsgenie {
            api_key: lifeline_mcp::probe::Secret::new("k"),
            api_url: Url::parse("http://127.0.0.1/og").unwrap(),
            priority: "P1".into(),
        },
        timeout: Duration::from_secs(1),
        retries: 0,
    });
    alerts.push(AlertConfig {
        name: "alertmanager".into(),
        kind: AlertKind::Alertmanager {
            url: Url::parse("http://127.0.0.1:9093").unwrap(),
            headers: vec![],
            labels: std::collections::BTreeMap::new(),
            resend_interval: Duration::from_secs(60),
        },
        timeout: Duration::from_secs(1),
        retries: 0,
    });
    let mut s = TargetState {
        id: 1,
        name: "t".into(),
        consecutive_failures: 5,
        ..TargetState::default()
    };
    s.open_incident = Some(OpenIncident {
        id: 7,
        opened_ms: 0,
        last_notified_ms: 0,
        reminders: 0,
    });
    let cx = Context {
        target: &t,
        alerts: &alerts,
        at_ms: 60_000,
        maintenance_until: None,
        old_tools: None,
    };
    match evaluate(&s, &report(U), &cx).incident {
        IncidentOp::Remind { alerts, seq, .. } => {
            assert_eq!(seq, 1);
            assert_eq!(
                alerts
                    .iter()
                    .map(|a| a.provider.as_str())
                    .collect::<Vec<_>>(),
                vec!["webhook"]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn resolve_inside_a_window_is_held_until_it_ends() {
    let t = target(None);
    let alerts = alerts();
    let mut s = TargetState {
        id: 1,
        name: "t".into(),
        consecutive_successes: 1,
        ..TargetState::default()
    };
    s.open_incident = Some(OpenIncident {
        id: 7,
        opened_ms: 0,
        last_notified_ms: 0,
        reminders: 0,
    });
    let cx = Context {
        target: &t,
        alerts: &alerts,
        at_ms: 1_000,
        maintenance_until: Some(9_000),
        old_tools: None,
    };
    match evaluate(&s, &report(Verdict::Healthy), &cx).incident {
        IncidentOp::Resolve { alerts, .. } => {
            assert!(alerts.iter().all(|a| a.due_ms == 9_000) && alerts.len() == 2)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn auth_required_counts_as_up_only_when_accepted() {
    let mut t = target(None);
    assert!(!is_up(&report(Verdict::AuthRequired), &t));
    t.accept_auth_required = true;
    assert!(is_up(&report(Verdict::AuthRequired), &t));
}

#[test]
fn drift_and_version_changes_produce_events() {
    let t = target(None);
    let alerts = alerts();
    let prev = TargetState {
        id: 1,
        name: "t".into(),
        protocol_version: Some("2025-06-18".into()),
        server_version: Some("0.9.0".into()),
        schema_hash: Some("h0".into()),
        ..TargetState::default()
    };
    let old_tools = vec![json!({"name": "gone"})];
    let cx = Context {
        target: &t,
        alerts: &alerts,
        at_ms: 5,
        maintenance_until: None,
        old_tools: Some(&old_tools),
    };
    let op = evaluate(&prev, &report(Verdict::Healthy), &cx);
    let kinds: Vec<&str> = op.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "protocol_version_changed",
            "server_version_changed",
            "schema_drift"
        ]
    );
    let drift = &op.events[2].details;
    assert_eq!(drift["classification"], "breaking");
    assert_eq!(drift["removed"], json!(["gone"]));
    assert_eq!(drift["added"], json!(["echo"]));
    assert!(op.tools_json.is_some());

    // The first sighting is a baseline, not drift; a failed probe changes nothing.
    let fresh = TargetState {
        id: 1,
        name: "t".into(),
        ..TargetState::default()
    };
    assert!(evaluate(&fresh, &report(Verdict::Healthy), &cx)
        .events
        .is_empty());
    assert!(evaluate(&op.state, &report(Verdict::Unhealthy), &cx)
        .events
        .is_empty());
}

#[test]
fn certificate_thresholds_fire_once_each() {
    let t = target(None);
    let alerts = alerts();
    let mut s = TargetState {
        id: 1,
        name: "t".into(),
        ..TargetState::default()
    };
    let mut fired = Vec::new();
    for days in [40, 30, 29, 20, 14, 13, 8, 7, 6, 5] {
        let mut r = report(Verdict::Healthy);
        r.tls = Some(TlsInfo {
            valid: true,
            days_left: Some(days),
            not_after: Some("2030-01-01T00:00:00Z".into()),
            ..TlsInfo::default()
        });
        let cx = Context {
            target: &t,
            alerts: &alerts,
            at_ms: 1,
            maintenance_until: None,
            old_tools: None,
        };
        let op = evaluate(&s, &r, &cx);
        for e in &op.events {
            if e.kind == EventKind::CertExpiring {
                fired.push(e.details["threshold_days"].as_i64().unwrap());
            }
        }
        s = op.state;
    }
    assert_eq!(fired, vec![30, 14, 7]);
    // A renewed certificate (new notAfter) starts afresh.
    let mut r = report(Verdict::Healthy);
    r.tls = Some(TlsInfo {
        valid: true,
        days_left: Some(25),
        not_after: Some("2031-01-01T00:00:00Z".into()),
        ..TlsInfo::default()
    });
    let cx = Context {
        target: &t,
        alerts: &alerts,
        at_ms: 1,
        maintenance_until: None,
        old_tools: None,
    };
    assert_eq!(evaluate(&s, &r, &cx).events.len(), 1);
}
