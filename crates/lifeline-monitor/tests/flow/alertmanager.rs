//! The Alertmanager provider against a real Alertmanager (Debian's prometheus-alertmanager) whose route ends
//! in a webhook receiver run by the test: one firing notification per incident however many re-sends keep it
//! alive (a monitor restart included), and one resolved notification when it resolves.

use lifeline_testkit::peers::alertmanager::Alertmanager;

use super::*;

/// The notifications Alertmanager posted to the receiver (`/am-hook`), as `(status, alerts)`.
fn notifications(received: &Received) -> Vec<(String, Vec<Value>)> {
    received
        .all()
        .into_iter()
        .filter(|(p, _)| p == "am-hook")
        .map(|(_, b)| {
            (
                b["status"].as_str().unwrap_or_default().to_owned(),
                b["alerts"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

async fn resends(base: &str) -> u64 {
    let series = r#"lifeline_monitor_alert_sends_total{provider="alertmanager",kind="resend",outcome="sent"}"#;
    super::sample(base, series).await.unwrap_or(0.0) as u64
}

#[tokio::test]
async fn alertmanager_notifies_once_per_incident_while_resends_keep_it_firing_then_resolves() {
    let (rx, received) = receiver().await;
    // Small group timers so the test takes seconds; a long repeat_interval so any second firing notification
    // could only come from the monitor (a changed label set, or a lapse that resolved and re-fired the alert).
    let am = Alertmanager::start(&format!(
        r#"
route:
  receiver: hook
  group_by: [alertname, target]
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: "{rx}/am-hook"
        send_resolved: true
"#
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let alerts = format!(
        r#"
  - {{ type: alertmanager, url: "{}", labels: {{ team: mcp }} }}"#,
        am.base
    );
    let mut c = config_with(&db, &alerts, false);
    // Faster than the file allows: a re-send every 2 s, so the alert ends 8 s after the last one unless renewed.
    if let lifeline_monitor::config::AlertKind::Alertmanager {
        resend_interval, ..
    } = &mut c.alerts[0].kind
    {
        *resend_interval = Duration::from_secs(2);
    }
    let prober = Scripted::new(Verdict::Unhealthy);
    let m = start(c.clone(), prober.clone()).await;

    assert_eventually!(
        !notifications(&received).is_empty(),
        patience = PATIENCE,
        "timed out waiting for Alertmanager's firing notification; alertmanager output:\n{}",
        am.guard.output_tail()
    );
    // Several re-send rounds while firing (the open alert also went out through the outbox).
    let base = m.base.clone();
    let before = resends(&base).await;
    assert_eventually!(
        resends(&base).await >= before + 2,
        patience = PATIENCE,
        "timed out waiting for two re-send rounds"
    );
    // A restart mid-incident re-sends at once (the new process's first round) and notifies nobody again.
    m.stop().await;
    let m = start(c, prober.clone()).await;
    let base = m.base.clone();
    assert_eventually!(
        resends(&base).await >= 1,
        patience = PATIENCE,
        "timed out waiting for the restarted monitor's first re-send"
    );
    // Alertmanager holds one active alert, kept alive beyond now by the re-sends.
    let active: Value = reqwest::get(format!("{}/api/v2/alerts?active=true", am.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let active = active.as_array().unwrap();
    assert_eq!(active.len(), 1, "{active:#?}");
    assert_eq!(active[0]["status"]["state"], "active");

    let firing = notifications(&received);
    assert_eq!(
        firing.len(),
        1,
        "one notification per incident: {firing:#?}"
    );
    assert_eq!(firing[0].0, "firing");
    let alert = &firing[0].1[0];
    assert_eq!(alert["labels"]["alertname"], "LifelineTargetDown");
    assert_eq!(alert["labels"]["target"], "svc");
    assert_eq!(alert["labels"]["reason"], "connect_refused");
    assert_eq!(alert["labels"]["team"], "mcp");
    let dedup = alert["annotations"]["dedup_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(dedup.starts_with("lifeline/svc/"), "{dedup}");
    let starts = alert["startsAt"].as_str().unwrap().to_owned();

    // Recovery: one resolved notification for the same alert, endsAt set.
    prober.set(|m| m.verdict = Verdict::Healthy);
    assert_eventually!(
        notifications(&received).len() >= 2,
        patience = PATIENCE,
        "timed out waiting for the resolved notification; alertmanager output:\n{}",
        am.guard.output_tail()
    );
    let all = notifications(&received);
    assert_eq!(all[1].0, "resolved", "{all:#?}");
    let resolved = &all[1].1[0];
    assert_eq!(resolved["annotations"]["dedup_key"], dedup.as_str());
    assert_eq!(resolved["startsAt"], starts.as_str());
    let ends = resolved["endsAt"].as_str().unwrap();
    assert!(
        ends > starts.as_str() && !ends.starts_with("0001"),
        "{resolved}"
    );

    // Nothing more: no re-send of a resolved incident re-fires it.
    let after = resends(&base).await;
    more_probes(&prober, 40).await;
    assert_eq!(
        resends(&base).await,
        after,
        "no re-sends once nothing fires"
    );
    assert_eq!(
        notifications(&received).len(),
        2,
        "{:#?}",
        notifications(&received)
    );
    m.stop().await;
}
