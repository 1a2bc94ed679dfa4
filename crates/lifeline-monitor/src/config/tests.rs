use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "EVERYTHING_TOKEN" => Some("tok".into()),
        "SLACK_URL" => Some("https://hooks.slack.com/services/X".into()),
        "PD_KEY" => Some("pdkey".into()),
        "GENIE_KEY" => Some("geniekey".into()),
        "SMTP_PASSWORD" => Some("smtppass".into()),
        "TEAMS_URL" => Some(
            "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=teamsig".into(),
        ),
        "AM_TOKEN" => Some("amtoken".into()),
        _ => None,
    }
}

const FULL: &str = r#"
storage: sqlite://lifeline.db
listen: 127.0.0.1:8080
defaults: { interval: 60s, timeout: 10s, failure_threshold: 3, success_threshold: 2, reminder_interval: 1h }
targets:
  - name: everything
    url: https://mcp.example.com/mcp
    headers: { Authorization: "Bearer ${EVERYTHING_TOKEN}" }
    call: { tool: echo, args: { message: ping } }
  - name: second
    url: http://127.0.0.1:3001/mcp
    interval: 30s
alerts:
  - { type: webhook, url: https://hooks.example.com/x }
  - { type: slack, webhook_url: "${SLACK_URL}" }
  - { type: pagerduty, routing_key: "${PD_KEY}" }
maintenance:
  - { targets: [everything], cron: "0 3 * * SUN", duration: 30m }
"#;

#[test]
fn the_issue_example_validates() {
    let c = Config::from_yaml(FULL, &env).unwrap();
    assert_eq!(c.targets.len(), 2);
    assert_eq!(c.targets[0].headers[0].1.expose(), "Bearer tok");
    assert_eq!(
        c.targets[0].call.as_ref().unwrap().arguments["message"],
        "ping"
    );
    assert_eq!(c.targets[1].interval, Duration::from_secs(30));
    assert_eq!(
        c.targets[0].reminder_interval,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        c.alerts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["webhook", "slack", "pagerduty"]
    );
    assert!(!c.summary().contains("tok") && !c.summary().contains("pdkey"));
}

#[test]
fn errors_name_the_field_path() {
    let cases: &[(&str, &str)] = &[
        ("targets:\n  - { name: a, url: 'http://h/mcp', interval: 1s }\n", "targets[0].interval: must be at least 5s"),
        ("targets:\n  - { name: a, url: 'http://h/mcp', interval: soon }\n", "targets[0].interval: `soon` is not a duration"),
        ("targets:\n  - { name: a, url: 'http://h/mcp', headers: { X: '${NOPE}' } }\n", "targets[0].headers.X: environment variable NOPE is not set"),
        ("targets:\n  - { name: a, url: 'ftp://h/' }\n", "targets[0].url: must be an http or https URL"),
        ("targets:\n  - { name: 'a b', url: 'http://h/mcp' }\n", "targets[0].name: must be 1-64 characters"),
        ("targets:\n  - { name: a, url: 'http://h/mcp' }\n  - { name: a, url: 'http://h/mcp' }\n", "targets[1].name: `a` is used by another target"),
        ("targets:\n  - { name: a, url: 'http://h/mcp', failure_threshold: 0 }\n", "targets[0].failure_threshold: must be at least 1"),
        ("targets:\n  - { name: a, url: 'http://h/mcp', intervl: 5s }\n", "unknown field `intervl`"),
        ("defaults: { intervl: 5s }\n", "unknown field `intervl`"),
        ("defaults: { slow_after: 0s }\n", "defaults.slow_after: must be at least"),
        ("targets:\n  - { name: a, url: 'http://h/mcp', reminder_interval: never }\n", "targets[0].reminder_interval: `never` is not a duration"),
        ("alerts:\n  - { type: pagerduty, routing_key: '' }\n", "alerts[0].routing_key: must not be empty"),
        ("alerts:\n  - { type: fax, to: x }\n", "unknown variant `fax`"),
        ("alerts:\n  - { type: alertmanager, url: 'http://am:9093', resend_interval: 1s }\n", "alerts[0].resend_interval: must be at least 5s"),
        ("alerts:\n  - { type: alertmanager, url: 'http://am:9093', labels: { 1team: x } }\n", "alerts[0].labels.1team: a label name must match"),
        ("alerts:\n  - { type: alertmanager, url: 'http://am:9093', labels: { team: '' } }\n", "alerts[0].labels.team: must not be empty"),
        ("alerts:\n  - { type: alertmanager, url: 'http://am:9093', lables: {} }\n", "unknown field `lables`"),
        ("alerts:\n  - { type: teams, webhook_url: 'not a url' }\n", "alerts[0].webhook_url: not a URL"),
        ("alerts:\n  - { type: discord, webhook_url: 'ftp://x/' }\n", "alerts[0].webhook_url: must be an http or https URL"),
        ("alerts:\n  - { type: opsgenie, api_key: '' }\n", "alerts[0].api_key: must not be empty"),
        ("alerts:\n  - { type: opsgenie, api_key: k, priority: P9 }\n", "alerts[0].priority: `P9` is not one of P1"),
        ("alerts:\n  - { type: email, host: h, from: a@b.c, to: [] }\n", "alerts[0].to: must name at least one recipient"),
        ("alerts:\n  - { type: email, host: h, from: 'not an address', to: [a@b.c] }\n", "alerts[0].from: `not an address` is not a mailbox"),
        ("alerts:\n  - { type: email, host: h, from: a@b.c, to: [a@b.c, 'x y'] }\n", "alerts[0].to[1]: `x y` is not a mailbox"),
        ("alerts:\n  - { type: email, host: h, from: a@b.c, to: [a@b.c], tls: ssl }\n", "alerts[0].tls: `ssl` is not one of starttls, tls, none"),
        ("alerts:\n  - { type: email, host: h, from: a@b.c, to: [a@b.c], username: u }\n", "alerts[0].password: username and password must be set together"),
        ("alerts:\n  - { type: email, host: h, from: a@b.c, to: [a@b.c], tls: none, ca_file: /ca.pem }\n", "alerts[0].ca_file: needs tls: starttls or tls"),
        ("alerts:\n  - { type: email, host: h, from: a@b.c, to: [a@b.c], password: '${NOPE}', username: u }\n", "alerts[0].password: environment variable NOPE is not set"),
        ("maintenance:\n  - { cron: 'not cron', duration: 30m }\n", "maintenance[0].cron: `not cron` is not a cron expression"),
        ("maintenance:\n  - { targets: [zz], cron: '0 3 * * SUN', duration: 30m }\n", "maintenance[0].targets[0]: no target is named `zz`"),
        ("storage: mysql://x\n", "storage: must start with sqlite:// or postgres://"),
        ("listen: nowhere\n", "listen: `nowhere` is not an address"),
        ("shutdown: { probe_grace: soon }\n", "shutdown.probe_grace: `soon` is not a duration"),
        ("shutdown: { grace: 5s }\n", "unknown field `grace`"),
    ];
    for (yaml, want) in cases {
        let err = Config::from_yaml(yaml, &env).unwrap_err().to_string();
        assert!(err.contains(want), "{yaml}\n→ {err}\nwant: {want}");
    }
}

#[test]
fn serde_errors_keep_the_path() {
    let err = Config::from_yaml(
        "targets:\n  - { name: a, url: 'http://h/mcp', bogus: 1 }\n",
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("targets[0]"), "{err}");
}

#[test]
fn quick_start_names_targets_after_hosts() {
    let urls = [
        Url::parse("https://a.example/mcp").unwrap(),
        Url::parse("https://a.example/other").unwrap(),
    ];
    let c = Config::quick_start(&urls).unwrap();
    assert_eq!(c.targets[0].name, "a.example");
    assert_eq!(c.targets[1].name, "a.example-2");
    assert_eq!(c.storage, DEFAULT_STORAGE);
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn maintenance_windows_cover_their_duration() {
    let c = Config::from_yaml(
        "targets:\n  - { name: a, url: 'http://h/mcp' }\nmaintenance:\n  - { cron: '0 3 * * SUN', duration: 30m }\n",
        &env,
    )
    .unwrap();
    // Sunday 2026-05-03 03:00 UTC.
    let start = 1_777_777_200_000_i64;
    assert!(chrono::DateTime::from_timestamp_millis(start)
        .unwrap()
        .to_rfc3339()
        .starts_with("2026-05-03T03:00"));
    assert_eq!(c.maintenance_until("a", start), Some(start + 30 * 60_000));
    assert_eq!(
        c.maintenance_until("a", start + 29 * 60_000),
        Some(start + 30 * 60_000)
    );
    assert_eq!(c.maintenance_until("a", start + 30 * 60_000), None);
    assert_eq!(c.maintenance_until("a", start - 1), None);
}

#[test]
fn the_effective_config_redacts_secrets_by_type() {
    let c = Config::from_yaml(FULL, &env).unwrap();
    let text = serde_json::to_string(&c).unwrap();
    for secret in ["Bearer tok", "pdkey", "services/X"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["targets"][0]["headers"]["Authorization"], "<redacted>");
    assert_eq!(
        v["alerts"][1]["webhook_url"],
        "https://hooks.slack.com/<redacted>"
    );
    assert_eq!(v["alerts"][2]["type"], "pagerduty");
    assert_eq!(v["retention"]["hourly"], "100d");
    assert_eq!(v["maintenance"][0]["duration"], "30m");
}

#[test]
fn overrides_win_over_the_file_and_are_validated_at_the_field() {
    let over = Overrides {
        listen: Some("0.0.0.0:9000".into()),
        storage: Some("postgres://u:pa$$word@db/x".into()),
        log_format: Some("json".into()),
    };
    let c = Config::from_yaml_with(FULL, &env, &over).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(
        c.storage, "postgres://u:pa$$word@db/x",
        "a flag is taken literally"
    );
    assert_eq!(c.log_format, lifeline_core::LogFormat::Json);
    let bad = Overrides {
        listen: Some("nowhere".into()),
        storage: Some("mysql://x".into()),
        ..Overrides::default()
    };
    let err = Config::from_yaml_with(FULL, &env, &bad).unwrap_err();
    let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["storage", "listen"], "{err}");
}

#[test]
fn shutdown_grace_periods_are_settings_with_the_lifecycle_defaults() {
    let c = Config::from_yaml("targets: []\n", &env).expect("valid");
    assert_eq!(c.shutdown, crate::Lifecycle::default());
    let c = Config::from_yaml(
        "shutdown: { drain_delay: 5s, probe_grace: 30s, alert_grace: 10s, web_grace: 1s }\n",
        &env,
    )
    .expect("valid");
    assert_eq!(c.shutdown.drain_delay, std::time::Duration::from_secs(5));
    assert_eq!(c.shutdown.probe_grace, std::time::Duration::from_secs(30));
    assert_eq!(c.shutdown.alert_grace, std::time::Duration::from_secs(10));
    assert_eq!(c.shutdown.web_grace, std::time::Duration::from_secs(1));
    assert_eq!(
        c.shutdown.drain_plan().timeout,
        std::time::Duration::from_secs(35)
    );
}

#[test]
fn the_new_providers_validate_with_defaults_and_redact_their_secrets() {
    let yaml = r#"
alerts:
  - { type: alertmanager, url: "http://alertmanager:9093/", labels: { team: mcp }, headers: { Authorization: "Bearer ${AM_TOKEN}" } }
  - { type: teams, webhook_url: "${TEAMS_URL}" }
  - { type: discord, webhook_url: "https://discord.com/api/webhooks/1/discordtok" }
  - { type: opsgenie, api_key: "${GENIE_KEY}" }
  - { type: email, host: smtp.example.com, username: alerts, password: "${SMTP_PASSWORD}",
      from: "Lifeline <alerts@example.com>", to: [oncall@example.com] }
  - { type: email, host: relay.local, tls: tls, ca_file: /etc/lifeline/ca.pem, from: alerts@example.com, to: [a@example.com] }
"#;
    let c = Config::from_yaml(yaml, &env).unwrap();
    assert_eq!(
        c.alerts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        [
            "alertmanager",
            "teams",
            "discord",
            "opsgenie",
            "email",
            "email-2"
        ]
    );
    match &c.alerts[0].kind {
        AlertKind::Alertmanager {
            resend_interval,
            labels,
            ..
        } => {
            assert_eq!(*resend_interval, DEFAULT_RESEND_INTERVAL);
            assert_eq!(labels["team"], "mcp");
        }
        other => panic!("{other:?}"),
    }
    match &c.alerts[3].kind {
        AlertKind::Opsgenie {
            api_key,
            api_url,
            priority,
        } => {
            assert_eq!(api_key.expose(), "geniekey");
            assert_eq!(api_url.as_str(), "https://api.opsgenie.com/");
            assert_eq!(priority, "P1");
        }
        other => panic!("{other:?}"),
    }
    match (&c.alerts[4].kind, &c.alerts[5].kind) {
        (AlertKind::Email(a), AlertKind::Email(b)) => {
            assert_eq!((a.tls, a.port), (SmtpTls::Starttls, 587));
            assert_eq!(a.password.as_ref().unwrap().expose(), "smtppass");
            assert_eq!((b.tls, b.port), (SmtpTls::Tls, 465));
            assert_eq!(
                b.ca_file.as_deref(),
                Some(std::path::Path::new("/etc/lifeline/ca.pem"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.alerts[0].kind.takes_reminders());
    assert!(!c.alerts[3].kind.takes_reminders());
    assert!(c.alerts[1].kind.takes_reminders() && c.alerts[4].kind.takes_reminders());

    let text = serde_json::to_string(&c).unwrap();
    for secret in ["amtoken", "teamsig", "discordtok", "geniekey", "smtppass"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["alerts"][0]["type"], "alertmanager");
    assert_eq!(v["alerts"][0]["resend_interval"], "1m");
    assert_eq!(
        v["alerts"][1]["webhook_url"],
        "https://x.logic.azure.com/<redacted>"
    );
    assert_eq!(v["alerts"][3]["api_key"], "<redacted>");
    assert_eq!(v["alerts"][4]["type"], "email");
    assert_eq!(v["alerts"][4]["from"], "Lifeline <alerts@example.com>");
    assert_eq!(
        v["alerts"][4]["to"],
        serde_json::json!(["oncall@example.com"])
    );
    assert_eq!(v["alerts"][4]["password"], "<redacted>");
}

const AUTH: &str = r#"
targets:
  - name: search
    url: https://mcp.example.com/mcp
    auth:
      client_id: lifeline-probe
      client_secret: "${PD_KEY}"
      scope: mcp:read
      client_secret_expires_at: 2027-03-31
      warning_days: 14
  - name: search-2
    url: https://mcp.example.com/other
    auth: { client_id: lifeline-probe, client_secret: "${PD_KEY}", scope: mcp:read }
  - name: keyed
    url: https://mcp.example.com/jwt
    auth:
      client_id: jwt-probe
      private_key_file: /run/secrets/key.pem
      key_id: k1
      token_url: https://as.example.com/token
  - name: refreshed
    url: https://mcp.example.com/r
    auth:
      client_id: public-probe
      refresh_token_file: /run/secrets/refresh
      refresh_token_issued_at: 2026-12-01
      refresh_token_max_age: 90days
  - name: static
    url: https://mcp.example.com/s
    bearer_token: "${EVERYTHING_TOKEN}"
    auth: { api_key_expires_at: "2027-01-01T00:00:00Z" }
"#;

#[test]
fn auth_blocks_validate_share_clients_and_redact_secrets() {
    let c = Config::from_yaml(AUTH, &env).unwrap();
    let auth = |i: usize| c.targets[i].auth.as_ref().unwrap();
    let search = auth(0).oauth.as_ref().unwrap();
    assert_eq!(search.config().client_id, "lifeline-probe");
    assert_eq!(search.config().auth.method_name(), "client_secret_basic");
    assert_eq!(auth(0).warning_days, 14);
    assert_eq!(auth(0).expiry[0].expires_at_unix, 1_806_451_200);
    // The same credential on two targets: one client, so one refresh at a time.
    assert!(Arc::ptr_eq(search, auth(1).oauth.as_ref().unwrap()));
    assert_eq!(
        auth(2).oauth.as_ref().unwrap().config().auth.method_name(),
        "private_key_jwt"
    );
    assert_eq!(
        auth(3).oauth.as_ref().unwrap().config().auth.method_name(),
        "none"
    );
    assert_eq!(auth(3).expiry[0].kind.as_str(), "refresh_token");
    assert_eq!(
        auth(3).expiry[0].expires_at_unix,
        1_796_083_200 + 90 * 86_400
    );
    assert!(auth(4).oauth.is_none());
    let opts = c.targets[0].probe_options();
    assert!(opts.oauth.is_some());
    assert_eq!(opts.credential_warning_days, 14);

    let text = serde_json::to_string(&c).unwrap();
    assert!(!text.contains("pdkey"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["targets"][0]["auth"]["client_secret"], "<redacted>");
    assert_eq!(
        v["targets"][2]["auth"]["private_key"],
        "file /run/secrets/key.pem"
    );
    assert_eq!(
        v["targets"][3]["auth"]["refresh_token"],
        "file /run/secrets/refresh"
    );
}

#[test]
fn auth_block_errors_name_the_field() {
    let t =
        |auth: &str| format!("targets:\n  - {{ name: a, url: 'http://h/mcp', auth: {auth} }}\n");
    let cases = [
        (t("{ client_secret: x }"), "targets[0].auth.client_secret: needs client_id"),
        (t("{ client_id: p }"), "targets[0].auth.client_id: needs a credential"),
        (t("{ client_id: p, client_secret: x, client_secret_file: /f }"), "targets[0].auth.client_secret_file: give client_secret or client_secret_file"),
        (t("{ client_id: p, client_secret: x, private_key_file: /k }"), "targets[0].auth.private_key_file: give a client secret or private_key_file"),
        (t("{ client_id: p, client_secret: x, auth_method: private_key_jwt }"), "targets[0].auth.auth_method: `private_key_jwt` does not fit"),
        (t("{ client_id: p, client_secret: x, client_secret_expires_at: soon }"), "targets[0].auth.client_secret_expires_at: \"soon\" is not a date"),
        (t("{ client_id: p, client_secret: x, token_url: 'ftp://x/' }"), "targets[0].auth.token_url: must be an http or https URL"),
        (t("{ client_id: p, refresh_token: r, refresh_token_max_age: 90d }"), "targets[0].auth.refresh_token_issued_at: refresh_token_max_age needs"),
        (t("{ client_id: p, client_secret: x, warning_days: -1 }"), "targets[0].auth.warning_days: must be between 0 and 3650"),
        (t("{ client_id: p, client_secret: x, clientsecret: y }"), "unknown field `clientsecret`"),
        (t("{}"), "targets[0].auth: is empty"),
        ("targets:\n  - { name: a, url: 'http://h/mcp', bearer_token: t, auth: { client_id: p, client_secret: x } }\n".to_owned(), "targets[0].bearer_token: give either bearer_token or an OAuth client"),
    ];
    for (yaml, expected) in cases {
        let err = Config::from_yaml(&yaml, &env).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{yaml}\n→ {err}\n(expected {expected})"
        );
    }
}

const WITH_TRANSACTIONS: &str = r#"
targets:
  - name: search
    url: http://127.0.0.1:3001/mcp
    interval: 30s
    allow_tools: [search, fetch]
    transactions:
      - name: roundtrip
        interval: 5m
        steps:
          - tool: search
            arguments: { query: "lifeline-canary" }
            expect: ['size(result.structuredContent.items) > 0']
            max_latency: { degraded: 800ms, unhealthy: 5s }
            save: { first_id: 'result.structuredContent.items[0].id' }
          - tool: fetch
            arguments: { id: '${first_id}' }
      - name: status
        timeout: 5s
        steps: [{ resource: 'status://health' }]
"#;

#[test]
fn each_transaction_becomes_a_target_of_its_own() {
    let c = Config::from_yaml(WITH_TRANSACTIONS, &env).unwrap();
    let names: Vec<&str> = c.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["search", "search.roundtrip", "search.status"]);
    assert!(c.targets[0].transaction.is_none());
    let rt = &c.targets[1];
    let job = rt.transaction.as_ref().unwrap();
    assert_eq!(
        (job.parent.as_str(), job.name.as_str()),
        ("search", "roundtrip")
    );
    assert_eq!(rt.maintenance_name(), "search");
    assert_eq!(rt.interval, Duration::from_secs(300));
    // The target's timeout plus the transaction's (30 s by default).
    assert_eq!(rt.timeout, DEFAULT_TIMEOUT + Duration::from_secs(30));
    assert_eq!(rt.url, c.targets[0].url);
    // `${first_id}` is the transaction's own substitution, not an environment variable.
    let step = &job.set.transactions[0].steps[1];
    assert_eq!(
        step.action,
        lifeline_mcp::transaction::Action::Tool {
            name: "fetch".into(),
            arguments: serde_json::json!({"id": "${first_id}"}),
        }
    );
    let opts = rt.probe_options();
    assert_eq!(opts.transactions.as_ref().unwrap().transactions.len(), 1);
    assert!(c.targets[0].probe_options().transactions.is_none());
    assert_eq!(c.targets[2].interval, Duration::from_secs(30));
    assert_eq!(c.targets[2].timeout, Duration::from_secs(15));
    // Without its own interval a transaction runs at the target's: 30 s is less than 10 s + 30 s of timeouts.
    let err = Config::from_yaml(
        &WITH_TRANSACTIONS
            .replace("interval: 5m", "interval: 1s")
            .replace("timeout: 5s", "timeout: 30s"),
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("targets[0].transactions[0].interval: must be at least 5s"),
        "{err}"
    );
    assert!(
        err.contains("targets[0].transactions[1].timeout: the target's timeout plus the transaction's (40s) must not exceed its interval (30s)"),
        "{err}"
    );
}

#[test]
fn the_safety_gate_refuses_at_check_config() {
    let yaml = WITH_TRANSACTIONS.replace("allow_tools: [search, fetch]", "allow_tools: [search]");
    let err = Config::from_yaml(&yaml, &env).unwrap_err().to_string();
    assert!(
        err.contains("targets[0].transactions[0].steps[1].tool: the safety gate refuses \"fetch\": list it in allow_tools"),
        "{err}"
    );
    let yaml = WITH_TRANSACTIONS.replace("'size(result", "'size(result(");
    let err = Config::from_yaml(&yaml, &env).unwrap_err().to_string();
    assert!(
        err.contains("targets[0].transactions[0].steps[0].expect[0]: "),
        "{err}"
    );
}

const REGIONS: &str = r#"
agents:
  - { name: eu-1, region: eu-west, token_files: [/run/eu-1.sha256] }
  - { name: us-1, region: us-east, token_files: [/run/us-1.sha256, /run/us-1.next.sha256] }
  - { name: ap-1, region: ap-south, token_files: [/run/ap-1.sha256] }
targets:
  - name: api
    url: https://mcp.example.com/mcp
    regions: [eu-west, us-east, ap-south]
  - name: strict
    url: https://mcp.example.com/mcp
    regions: [eu-west, us-east, ap-south]
    quorum: { min_failing: 3, page_regional: true }
  - name: local
    url: https://mcp.example.com/mcp
"#;

#[test]
fn regions_default_to_a_majority_quorum() {
    let c = Config::from_yaml(REGIONS, &env).unwrap();
    assert_eq!(c.agents.len(), 3);
    assert_eq!(c.agents[1].token_files.len(), 2);
    let r = c.targets[0].regions.as_ref().unwrap();
    assert_eq!(r.regions, ["eu-west", "us-east", "ap-south"]);
    assert_eq!((r.quorum.min_failing, r.quorum.min_reporting), (2, 2));
    // min_reporting follows a larger min_failing when not written.
    let r = c.targets[1].regions.as_ref().unwrap();
    assert_eq!((r.quorum.min_failing, r.quorum.min_reporting), (3, 3));
    assert!(r.quorum.page_regional);
    assert!(!c.targets[0].regions.as_ref().unwrap().quorum.page_regional);
    assert!(c.targets[2].regions.is_none());
    let effective = serde_json::to_string(&c).unwrap();
    assert!(
        effective.contains(r#""quorum":{"min_failing":2,"min_reporting":2,"page_regional":false}"#)
    );
}

#[test]
fn bad_regions_and_agents_name_their_field() {
    let bad = r#"
agents:
  - { name: eu-1, region: eu-west, token_files: [] }
  - { name: eu-1, region: "no way", token_files: [a, b, c] }
targets:
  - name: api
    url: https://mcp.example.com/mcp
    regions: [eu-west, eu-west]
    quorum: { min_failing: 1, min_reporting: 3 }
  - name: far
    url: https://mcp.example.com/mcp
    regions: [eu-west, mars]
    auth: { client_id: c, client_secret: s, refresh_token: r }
  - name: q
    url: https://mcp.example.com/mcp
    quorum: { min_failing: 1 }
"#;
    let e = Config::from_yaml(bad, &env).unwrap_err().to_string();
    for needle in [
        "agents[0].token_files: give 1 to 2 files",
        "agents[1].name: `eu-1` is used by another agent",
        "agents[1].region: must be",
        "agents[1].token_files: give 1 to 2 files (two overlap during a rotation), not 3",
        "targets[0].regions[1]: `eu-west` is listed twice",
        "targets[0].quorum.min_reporting: must be between min_failing (1) and the number of regions (1), not 3",
        "targets[1].regions[1]: no agent in agents: probes from region `mars`",
        "targets[1].auth.refresh_token: cannot be used with regions:",
        "targets[2].quorum: needs regions:",
    ] {
        assert!(e.contains(needle), "missing `{needle}` in:\n{e}");
    }
}
