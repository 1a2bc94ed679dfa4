//! Teams, Discord and Opsgenie against the flow's loopback receiver (asserting each API's documented payload
//! shapes, paths and credentials), and email through a real SMTP server (aiosmtpd, `SmtpSink`).

use lifeline_testkit::peers::smtp::SmtpSink;

use super::*;

/// The flow's body at `path` among `got`.
fn at<'a>(got: &'a [(String, Value)], path: &str) -> &'a Value {
    &got.iter()
        .find(|(p, _)| p.starts_with(path))
        .unwrap_or_else(|| panic!("nothing at {path}: {got:#?}"))
        .1
}

#[tokio::test]
async fn teams_discord_and_opsgenie_get_one_documented_message_per_open_and_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let (rx, received) = receiver().await;
    received.fail_next.store(2, Ordering::SeqCst); // retried
    let alerts = format!(
        r#"
  - {{ type: teams, webhook_url: "{rx}/teams/workflows/abc?sig=s3cret" }}
  - {{ type: discord, webhook_url: "{rx}/discord/api/webhooks/1/tok" }}
  - {{ type: opsgenie, api_key: gk-123, api_url: "{rx}/opsgenie", priority: P2 }}"#
    );
    let prober = Scripted::new(Verdict::Unhealthy);
    let m = start(config_with(&db, &alerts, false), prober.clone()).await;
    let got = exactly(&received, &prober, 3, "one alert per provider").await;

    // Teams workflow webhook: a message with one Adaptive Card.
    let teams = at(&got, "teams/workflows/abc");
    assert_eq!(teams["type"], "message");
    let att = &teams["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["version"], "1.4");
    let card = &att["content"]["body"];
    assert!(
        card[0]["text"].as_str().unwrap().contains("svc is DOWN"),
        "{card}"
    );
    assert_eq!(card[0]["color"], "Attention");
    assert_eq!(card[1]["type"], "FactSet");
    assert!(card[1]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["title"] == "Target" && f["value"] == "svc"));

    // Discord webhook: content plus one embed, mentions disabled.
    let discord = at(&got, "discord/api/webhooks/1/tok");
    assert!(discord["content"].as_str().unwrap().contains("svc is DOWN"));
    assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
    let embed = &discord["embeds"][0];
    assert_eq!(embed["color"], 0x00E0_1E5A);
    assert_eq!(embed["description"], "connection refused");
    let dedup = embed["footer"]["text"].as_str().unwrap().to_owned();
    assert!(dedup.starts_with("lifeline/svc/"), "{dedup}");

    // Opsgenie: create with the dedup key as alias, GenieKey auth.
    let (i, _) = got
        .iter()
        .enumerate()
        .find(|(_, (p, _))| p.starts_with("opsgenie"))
        .unwrap();
    let (raw, auth) = received.raw.lock().unwrap()[i].clone();
    assert_eq!(raw, "/opsgenie/v2/alerts");
    assert_eq!(auth.as_deref(), Some("GenieKey gk-123"));
    let og = &got[i].1;
    assert_eq!(og["alias"], dedup.as_str());
    assert_eq!(og["priority"], "P2");
    assert_eq!(og["entity"], "svc");
    assert!(og["message"].as_str().unwrap().chars().count() <= 130);
    assert_eq!(og["tags"], json!(["lifeline", "svc"]));

    // Recovery: one more each; Opsgenie closes by alias.
    prober.set(|m| m.verdict = Verdict::Healthy);
    let got = exactly(&received, &prober, 6, "one resolve per provider").await;
    let later = &got[3..];
    assert_eq!(
        at(later, "teams")["attachments"][0]["content"]["body"][0]["color"],
        "Good"
    );
    assert_eq!(at(later, "discord")["embeds"][0]["color"], 0x002E_B67D);
    let raws = received.raw.lock().unwrap().clone();
    let close = raws[3..]
        .iter()
        .find(|(r, _)| r.starts_with("/opsgenie"))
        .unwrap();
    let id = dedup.rsplit('/').next().unwrap();
    assert_eq!(
        close.0,
        format!("/opsgenie/v2/alerts/lifeline%2Fsvc%2F{id}/close?identifierType=alias")
    );
    assert_eq!(close.1.as_deref(), Some("GenieKey gk-123"));
    assert_eq!(at(later, "opsgenie")["source"], "lifeline monitor");
    m.stop().await;
}

#[tokio::test]
async fn email_goes_through_a_real_smtp_server_once_per_open_and_resolve_threaded() {
    let sink = SmtpSink::start("alerts", "s3cret").await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let port = sink.addr.port();
    let alerts = format!(
        r#"
  - {{ type: email, host: 127.0.0.1, port: {port}, tls: none, username: alerts, password: s3cret,
      from: "Lifeline <lifeline@example.com>", to: [oncall@example.com, "Ops <ops@example.com>"] }}
  - {{ type: email, name: bounced, host: 127.0.0.1, port: {port}, tls: none, username: alerts,
      password: s3cret, from: lifeline@example.com, to: [reject@example.com] }}
  - {{ type: email, name: needs-tls, host: 127.0.0.1, port: {port}, tls: starttls, username: alerts,
      password: s3cret, from: lifeline@example.com, to: [oncall@example.com] }}"#
    );
    let prober = Scripted::new(Verdict::Unhealthy);
    let m = start(config_with(&db, &alerts, false), prober.clone()).await;
    let failed = |counts: &Value| {
        counts["providers"]["bounced"]["opened_failed"] == 1
            && counts["providers"]["needs-tls"]["opened_failed"] == 1
    };
    let base = m.base.clone();
    assert_eventually!(
        !sink.messages().is_empty()
            && sink.rejected() >= 1
            && failed(&get(&format!("{base}/api/v1/alerts")).await),
        patience = PATIENCE,
        "timed out waiting for the first email and the bounce; sink output:\n{}",
        sink.guard.output_tail()
    );
    more_probes(&prober, 10).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    // A 550 is permanent: one attempt, no retries, the send marked failed.
    assert_eq!(sink.rejected(), 1);
    let counts = get(&format!("{}/api/v1/alerts", m.base)).await;
    assert_eq!(
        counts["providers"]["bounced"]["opened_failed"], 1,
        "{counts}"
    );
    assert_eq!(counts["providers"]["email"]["opened_sent"], 1, "{counts}");
    // `tls: starttls` against a server that offers no STARTTLS fails instead of sending the password in clear.
    assert_eq!(
        counts["providers"]["needs-tls"]["opened_failed"], 1,
        "{counts}"
    );

    let opened = &mails[0];
    assert_eq!(opened.auth_user.as_deref(), Some("alerts"));
    assert_eq!(opened.mail_from, "lifeline@example.com");
    assert_eq!(opened.rcpt_tos, ["oncall@example.com", "ops@example.com"]);
    assert!(
        opened
            .data
            .contains("Subject: svc is DOWN: connection refused"),
        "{}",
        opened.data
    );
    assert!(opened.data.contains("Target:    svc"), "{}", opened.data);
    let id_line = opened
        .data
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .unwrap_or_else(|| panic!("no Message-ID: {}", opened.data));
    let opened_id = id_line.split_once(':').unwrap().1.trim().to_owned();
    assert!(
        opened_id.starts_with("<lifeline.svc.") && opened_id.ends_with(".opened.0@example.com>"),
        "{opened_id}"
    );

    prober.set(|m| m.verdict = Verdict::Healthy);
    assert_eventually!(
        sink.messages().len() >= 2,
        patience = PATIENCE,
        "timed out waiting for the resolved email"
    );
    more_probes(&prober, 10).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let resolved = &mails[1].data;
    assert!(
        resolved.contains("Subject: svc has RECOVERED"),
        "{resolved}"
    );
    assert!(
        resolved.contains(&format!("In-Reply-To: {opened_id}")),
        "{resolved}"
    );
    m.stop().await;
}

#[tokio::test]
async fn email_over_starttls_verifies_the_server_against_the_ca_file() {
    let pem = lifeline_testkit::fakes::ca_signed_pem().unwrap();
    let sink = SmtpSink::start_starttls("alerts", "s3cret", &pem).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pem.ca_pem).unwrap();
    let port = sink.addr.port();
    let alerts = format!(
        r#"
  - {{ type: email, name: private-ca, host: 127.0.0.1, port: {port}, tls: starttls, ca_file: "{ca}",
      username: alerts, password: s3cret, from: lifeline@example.com, to: [oncall@example.com] }}
  - {{ type: email, name: public-roots, host: 127.0.0.1, port: {port}, tls: starttls, username: alerts,
      password: s3cret, from: lifeline@example.com, to: [oncall@example.com] }}"#,
        ca = ca.display()
    );
    let prober = Scripted::new(Verdict::Unhealthy);
    let m = start(config_with(&db, &alerts, false), prober.clone()).await;
    let base = m.base.clone();
    assert_eventually!(
        !sink.messages().is_empty()
            && get(&format!("{base}/api/v1/alerts")).await["providers"]["public-roots"]
                ["opened_failed"]
                == 1,
        patience = PATIENCE,
        "timed out waiting for the TLS email and the refused one; sink output:\n{}",
        sink.guard.output_tail()
    );
    more_probes(&prober, 10).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(mails[0].tls, "the message went over TLS");
    assert_eq!(mails[0].auth_user.as_deref(), Some("alerts"));
    // Without the private CA the certificate does not verify: the send fails, nothing is sent in clear.
    let counts = get(&format!("{base}/api/v1/alerts")).await;
    assert_eq!(
        counts["providers"]["public-roots"]["opened_failed"], 1,
        "{counts}"
    );
    assert_eq!(
        counts["providers"]["private-ca"]["opened_sent"], 1,
        "{counts}"
    );
    m.stop().await;
}
