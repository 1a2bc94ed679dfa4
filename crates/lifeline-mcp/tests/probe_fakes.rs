//! The probe against the testkit's misbehaving servers: each failure mode gives its documented verdict, reason
//! and phase, within the time bound, and leaves no session behind.

use std::time::{Duration, Instant};

use lifeline_mcp::probe::{Phase, ProbeOptions, Secret, Target, Timeouts, ToolCall};
use lifeline_mcp::{probe, Era, ProbeReport, Reason, TransportKind, Verdict, Warning};
use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts, ModernOpts, TlsKind};
use serde_json::json;

fn opts() -> ProbeOptions {
    ProbeOptions {
        timeouts: Timeouts {
            total: Duration::from_secs(3),
            ..Timeouts::default()
        },
        ..ProbeOptions::default()
    }
}

async fn run(fake: &FakeServer, opts: &ProbeOptions) -> ProbeReport {
    let target = Target::Http(fake.url().parse().expect("fake URL parses"));
    let t = Instant::now();
    let report = probe(&target, opts).await;
    // The bound: total timeout plus the cleanup grace.
    assert!(
        t.elapsed() < opts.timeouts.total + Duration::from_secs(3),
        "probe overran its bound: {:?}",
        t.elapsed()
    );
    report
}

#[track_caller]
fn expect(report: &ProbeReport, verdict: Verdict, reason: Option<Reason>, phase: Option<Phase>) {
    let json = serde_json::to_string_pretty(report).unwrap();
    assert_eq!(report.verdict, verdict, "{json}");
    assert_eq!(report.reason, reason, "{json}");
    if phase.is_some() {
        assert_eq!(
            report.failure.as_ref().and_then(|f| f.phase),
            phase,
            "{json}"
        );
    }
}

/// A fake, and the verdict, reason and phase it must produce.
type Case = (
    &'static str,
    FakeKind,
    Verdict,
    Option<Reason>,
    Option<Phase>,
);

#[tokio::test]
async fn each_failure_mode_gives_its_reason() {
    let cases: Vec<Case> = vec![
        (
            "closed port",
            FakeKind::ClosedPort,
            Verdict::Unhealthy,
            Some(Reason::ConnectRefused),
            Some(Phase::Connect),
        ),
        (
            "accept then hang",
            FakeKind::AcceptThenHang,
            Verdict::Unhealthy,
            Some(Reason::Timeout),
            Some(Phase::FirstByte),
        ),
        (
            "502 page",
            FakeKind::BadGateway502,
            Verdict::Unhealthy,
            Some(Reason::HttpStatus),
            None,
        ),
        (
            "html 200",
            FakeKind::Html200,
            Verdict::Unhealthy,
            Some(Reason::NotMcp),
            None,
        ),
        (
            "invalid json",
            FakeKind::InvalidJson,
            Verdict::Unhealthy,
            Some(Reason::ProtocolError),
            None,
        ),
        (
            "json-rpc error",
            FakeKind::RpcError,
            Verdict::Unhealthy,
            Some(Reason::RpcError),
            Some(Phase::Initialize),
        ),
        (
            "unsupported version",
            FakeKind::UnsupportedVersion,
            Verdict::Unhealthy,
            Some(Reason::UnsupportedVersion),
            None,
        ),
        (
            "slow initialize",
            FakeKind::SlowInitialize {
                delay: Duration::from_secs(30),
            },
            Verdict::Unhealthy,
            Some(Reason::Timeout),
            Some(Phase::Initialize),
        ),
        (
            "sse never sends",
            FakeKind::SseNeverSends,
            Verdict::Unhealthy,
            Some(Reason::Timeout),
            Some(Phase::Initialize),
        ),
        (
            "session lost",
            FakeKind::SessionLost,
            Verdict::Unhealthy,
            Some(Reason::SessionLost),
            Some(Phase::ToolsList),
        ),
        (
            "auth required",
            FakeKind::AuthRequired { token: None },
            Verdict::AuthRequired,
            Some(Reason::AuthRequired),
            None,
        ),
        (
            "empty tool list",
            FakeKind::Healthy(HealthyOpts {
                tools: vec![],
                ..HealthyOpts::default()
            }),
            Verdict::Unhealthy,
            Some(Reason::NoTools),
            Some(Phase::ToolsList),
        ),
        (
            "100 MB reply",
            FakeKind::Healthy(HealthyOpts {
                reply_bytes: Some(100 * 1024 * 1024),
                ..HealthyOpts::default()
            }),
            Verdict::Unhealthy,
            Some(Reason::ProtocolError),
            Some(Phase::Initialize),
        ),
        (
            "endless SSE",
            FakeKind::Healthy(HealthyOpts {
                endless_sse: true,
                ..HealthyOpts::default()
            }),
            Verdict::Unhealthy,
            Some(Reason::Timeout),
            Some(Phase::Initialize),
        ),
        (
            "self-signed certificate",
            FakeKind::Healthy(HealthyOpts {
                tls: Some(TlsKind::SelfSigned),
                ..HealthyOpts::default()
            }),
            Verdict::Unhealthy,
            Some(Reason::TlsFailed),
            Some(Phase::Tls),
        ),
        (
            "expired certificate",
            FakeKind::Healthy(HealthyOpts {
                tls: Some(TlsKind::Expired),
                ..HealthyOpts::default()
            }),
            Verdict::Unhealthy,
            Some(Reason::TlsExpired),
            Some(Phase::Tls),
        ),
    ];
    let opts = opts();
    for (name, kind, verdict, reason, phase) in cases {
        let fake = FakeServer::start(kind).await.expect("fake starts");
        let report = run(&fake, &opts).await;
        eprintln!("{name}: {:?} {:?}", report.verdict, report.failure);
        expect(&report, verdict, reason, phase);
        assert_eq!(fake.sessions_open(), 0, "{name}: a session was left open");
    }
}

#[tokio::test]
async fn healthy_legacy_json_and_sse() {
    for sse_replies in [false, true] {
        let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
            sse_replies,
            tools: lifeline_testkit::fakes::numbered_tools(7),
            page_size: 3,
            ..HealthyOpts::default()
        }))
        .await
        .unwrap();
        let report = run(&fake, &opts()).await;
        expect(&report, Verdict::Healthy, None, None);
        assert_eq!(report.era, Some(Era::Legacy));
        assert_eq!(report.transport, Some(TransportKind::StreamableHttp));
        assert_eq!(report.protocol_version.as_deref(), Some("2025-11-25"));
        assert_eq!(report.tools_count, Some(7), "pagination followed");
        assert!(report.schema_hash.as_ref().is_some_and(|h| h.len() == 64));
        for key in [
            "dns",
            "connect",
            "first_byte",
            "discover",
            "initialize",
            "initialized",
            "tools_list",
            "ping",
            "close",
            "total",
        ] {
            let phase: Phase = serde_json::from_value(json!(key)).unwrap();
            assert!(
                report.timings_ms.get(phase).is_some(),
                "timing {key} missing"
            );
        }
        assert!(
            !report.warnings.contains(&Warning::NoOriginCheck),
            "{:?}",
            report.warnings
        );
        assert_eq!(fake.sessions_open(), 0, "the probe ended its session");
        let methods = fake.rpc_methods();
        assert!(
            methods.iter().any(|m| m == "notifications/initialized"),
            "{methods:?}"
        );
    }
}

#[tokio::test]
async fn healthy_modern() {
    for sse_replies in [false, true] {
        let fake = FakeServer::start(FakeKind::Modern(ModernOpts {
            sse_replies,
            ..ModernOpts::default()
        }))
        .await
        .unwrap();
        let mut o = opts();
        o.call = Some(ToolCall {
            name: "echo".into(),
            arguments: json!({"message": "hi"}),
        });
        let report = run(&fake, &o).await;
        expect(&report, Verdict::Healthy, None, None);
        assert_eq!(report.era, Some(Era::Modern));
        assert_eq!(report.protocol_version.as_deref(), Some("2026-07-28"));
        assert_eq!(report.tools_count, Some(1));
        assert!(
            report.timings_ms.get(Phase::Ping).is_none(),
            "no ping in the modern era"
        );
        assert_eq!(report.tool_call.as_ref().map(|c| c.is_error), Some(false));
    }
}

#[tokio::test]
async fn legacy_sse_transport() {
    let fake = FakeServer::start(FakeKind::LegacySse).await.unwrap();
    let report = run(&fake, &opts()).await;
    expect(&report, Verdict::Healthy, None, None);
    assert_eq!(report.era, Some(Era::Sse));
    assert_eq!(report.transport, Some(TransportKind::HttpSse));
    assert!(report.warnings.contains(&Warning::DeprecatedTransport));
    assert_eq!(report.tools_count, Some(1));
}

#[tokio::test]
async fn degraded_findings() {
    // isError on the opt-in call.
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tool_is_error: true,
        ..HealthyOpts::default()
    }))
    .await
    .unwrap();
    let mut o = opts();
    o.call = Some(ToolCall {
        name: "echo".into(),
        arguments: json!({"message": "x"}),
    });
    let report = run(&fake, &o).await;
    expect(
        &report,
        Verdict::Degraded,
        Some(Reason::ToolError),
        Some(Phase::ToolsCall),
    );

    // A trusted certificate that expires in 5 days.
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tls: Some(TlsKind::CaSigned { days_left: 5 }),
        ..HealthyOpts::default()
    }))
    .await
    .unwrap();
    let mut o = opts();
    o.extra_roots_pem = vec![fake.ca_pem().unwrap().as_bytes().to_vec()];
    let report = run(&fake, &o).await;
    expect(&report, Verdict::Degraded, Some(Reason::CertExpiring), None);
    let tls = report.tls.expect("tls info");
    assert!(tls.valid);
    assert!((4..=5).contains(&tls.days_left.unwrap()), "{tls:?}");
    assert!(tls.issuer.is_some() && tls.not_after.is_some());
    assert!(report.timings_ms.get(Phase::Tls).is_some());

    // The same with 60 days left is healthy.
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tls: Some(TlsKind::CaSigned { days_left: 60 }),
        ..HealthyOpts::default()
    }))
    .await
    .unwrap();
    let mut o = opts();
    o.extra_roots_pem = vec![fake.ca_pem().unwrap().as_bytes().to_vec()];
    expect(&run(&fake, &o).await, Verdict::Healthy, None, None);
}

#[tokio::test]
async fn auth_required_reports_resource_metadata_and_token_unlocks() {
    let fake = FakeServer::start(FakeKind::AuthRequired {
        token: Some("s3cret".into()),
    })
    .await
    .unwrap();
    let report = run(&fake, &opts()).await;
    expect(
        &report,
        Verdict::AuthRequired,
        Some(Reason::AuthRequired),
        None,
    );
    let auth = report.auth.as_ref().expect("auth info");
    assert_eq!(auth.status, 401);
    assert!(auth
        .resource_metadata_url
        .as_deref()
        .unwrap()
        .ends_with("/.well-known/oauth-protected-resource/mcp"));
    assert_eq!(auth.authorization_servers.len(), 1, "{auth:?}");
    assert!(auth.authorization_servers[0].ends_with("/oauth"));

    let mut o = opts();
    o.bearer_token = Some(Secret::new("s3cret"));
    let report = run(&fake, &o).await;
    expect(&report, Verdict::Healthy, None, None);
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("s3cret"), "the token leaked into the report");
}

#[tokio::test]
async fn missing_origin_check_and_buffering_header_are_warnings() {
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        origin_check: false,
        x_accel_buffering: false,
        sse_replies: true,
        ..HealthyOpts::default()
    }))
    .await
    .unwrap();
    let report = run(&fake, &opts()).await;
    expect(&report, Verdict::Healthy, None, None);
    assert!(
        report.warnings.contains(&Warning::NoOriginCheck),
        "{:?}",
        report.warnings
    );
    assert!(
        report.warnings.contains(&Warning::MissingXAccelBuffering),
        "{:?}",
        report.warnings
    );
    assert_eq!(fake.sessions_open(), 0);
}

#[tokio::test]
async fn slow_probe_is_degraded() {
    let fake = FakeServer::start(FakeKind::SlowInitialize {
        delay: Duration::from_millis(300),
    })
    .await
    .unwrap();
    let mut o = opts();
    o.slow_after = Duration::from_millis(100);
    let report = run(&fake, &o).await;
    expect(&report, Verdict::Degraded, Some(Reason::Slow), None);
    assert_eq!(fake.sessions_open(), 0);
}

#[tokio::test]
async fn dns_failure() {
    let target = Target::Http(
        "http://lifeline-does-not-exist.invalid/mcp"
            .parse()
            .unwrap(),
    );
    let report = probe(&target, &opts()).await;
    assert_eq!(report.reason, Some(Reason::DnsFailed), "{report:?}");
}
