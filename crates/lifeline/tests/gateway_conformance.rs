//! The official conformance suite's server scenarios (`@modelcontextprotocol/conformance` 0.1.16, default active
//! suite) against our fixture server (`tests/peers/conformance_fixture.py`), first directly and then through
//! `lifeline gateway`. The gateway must add no failure, at the level of scenarios and of single checks, and must make
//! `dns-rebinding-protection` pass although the fixture deliberately has no Host/Origin check. Needs
//! `scripts/install-peers.sh`.

#[path = "gateway_support/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use harness::Gw;
use lifeline_testkit::peers::conformance::{run_server_suite, ServerSuiteRun};
use lifeline_testkit::peers::{Conformance, Peer};

/// A whole suite run takes ~2 s on an idle machine; this bounds it on a busy 2-core one.
const SUITE_PATIENCE: Duration = Duration::from_secs(90);

/// The scenario the gateway must fix: the fixture has no Host/Origin check, the gateway does.
const DNS_REBINDING: &str = "dns-rebinding-protection";

/// Every scenario that fails against the fixture directly, with the reason. The test fails if another scenario
/// fails directly (a fixture or suite regression) or if one of these starts passing (a stale entry).
const KNOWN_DIRECT_FAILURES: &[(&str, &str)] = &[(
    DNS_REBINDING,
    "the fixture turns the SDK's Host/Origin check off on purpose, so a foreign Host gets 200, not 4xx",
)];

#[tokio::test]
async fn conformance_server_scenarios_pass_through_the_gateway() {
    let started = Instant::now();
    let fixture = Peer::conformance_fixture().await;
    let direct_dir = tempfile::tempdir().expect("a temporary directory");
    let direct = run_server_suite(
        Conformance::Stable,
        &fixture.url,
        direct_dir.path(),
        &[],
        SUITE_PATIENCE,
    )
    .await;
    assert_complete(&direct, "directly");

    let gw = Gw::start(&fixture.url, &[]).await;
    gw.wait_ready(Duration::from_secs(20)).await;
    let gateway_dir = tempfile::tempdir().expect("a temporary directory");
    let through = run_server_suite(
        Conformance::Stable,
        &gw.mcp(),
        gateway_dir.path(),
        &[],
        SUITE_PATIENCE,
    )
    .await;
    assert_complete(&through, "through the gateway");
    eprintln!(
        "conformance: {} scenarios; failing directly {:?}, through the gateway {:?}; {:.1?} in all",
        direct.scenarios.len(),
        direct.failed(),
        through.failed(),
        started.elapsed()
    );

    // The fixture fails exactly the known scenarios: a new failure, or a stale entry, is caught here.
    let failing: BTreeSet<&str> = direct.failed().into_iter().collect();
    let known: BTreeSet<&str> = KNOWN_DIRECT_FAILURES.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        failing,
        known,
        "scenarios failing directly against the fixture differ from KNOWN_DIRECT_FAILURES:\n{}",
        failures_of(&direct)
    );

    // Same scenarios in both runs.
    assert_eq!(
        direct.scenarios.keys().collect::<Vec<_>>(),
        through.scenarios.keys().collect::<Vec<_>>(),
        "the two runs covered different scenarios"
    );

    // (a) The gateway adds no failure: every scenario, and every single check, that passes directly passes
    // through the gateway.
    for (name, result) in &direct.scenarios {
        let via = &through.scenarios[name];
        if result.passed() {
            assert!(
                via.passed(),
                "{name} passes directly but fails through the gateway: {:?}\ngateway logs:\n{}",
                via.failures,
                gw.logs()
            );
        }
        for check in result.successes() {
            assert_eq!(
                via.checks.get(check).map(String::as_str),
                Some("SUCCESS"),
                "{name}: check {check} succeeds directly but not through the gateway: {:?}",
                via.failures
            );
        }
    }

    // (b) The gateway supplies the DNS-rebinding protection the fixture lacks: directly, the foreign Host/Origin
    // is accepted (only that check fails); through the gateway it gets a 4xx and the localhost one still a 2xx.
    let dns_direct = &direct.scenarios[DNS_REBINDING];
    assert_eq!(
        dns_direct
            .checks
            .get("localhost-host-rebinding-rejected")
            .map(String::as_str),
        Some("FAILURE"),
        "{dns_direct:?}"
    );
    assert_eq!(
        dns_direct
            .checks
            .get("localhost-host-valid-accepted")
            .map(String::as_str),
        Some("SUCCESS"),
        "{dns_direct:?}"
    );
    let dns_via = &through.scenarios[DNS_REBINDING];
    assert!(dns_via.passed(), "{dns_via:?}");
    assert_eq!(dns_via.checks.len(), 2, "{dns_via:?}");

    // Nothing fails through the gateway, so the suite's own verdict is a pass.
    assert!(through.failed().is_empty(), "{}", failures_of(&through));
    assert_eq!(through.exit_code, Some(0), "{}", through.output);
    assert_eq!(direct.exit_code, Some(1), "{}", direct.output);
}

/// Every scenario the suite announced wrote its results.
fn assert_complete(run: &ServerSuiteRun, how: &str) {
    let announced = run.announced.unwrap_or_else(|| {
        panic!(
            "no 'Running active suite (N scenarios)' line {how}:\n{}",
            run.output
        )
    });
    assert!(
        announced >= 30,
        "the active suite shrank to {announced} scenarios {how}"
    );
    assert_eq!(
        run.scenarios.len(),
        announced,
        "{announced} scenarios announced but {} wrote results {how}:\n{}",
        run.scenarios.len(),
        run.output
    );
}

fn failures_of(run: &ServerSuiteRun) -> String {
    run.scenarios
        .iter()
        .filter(|(_, r)| !r.passed())
        .map(|(name, r)| format!("  {name}: {}", r.failures.join("; ")))
        .collect::<Vec<_>>()
        .join("\n")
}
