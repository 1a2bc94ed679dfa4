//! `lifeline check`: probe one or more MCP servers once, print what a client would see, and exit non-zero when
//! one is broken. The post-deploy smoke test and CI gate (docs/ci-gate.md); `--json` is documented in
//! docs/check-json.md.
//!
//! Flow: validate the flags into a [`plan::Plan`] (usage errors exit 64, unreadable files 2) → probe every target,
//! `--concurrency` at a time, results in input order → compare with or write the tool snapshot → render (human,
//! `--json`, `--junit`) with every secret redacted → exit 0, 1 or 2.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use futures_util::StreamExt as _;
use lifeline_mcp::probe::{Failure, Phase, Timings};
use lifeline_mcp::{ProbeOptions, ProbeReport, Reason, Verdict};

use crate::exit;

mod card;
mod human;
mod json;
mod junit;
mod plan;
mod redact;
mod snapshot;

/// Extra time past `--timeout` before a probe that has not returned is abandoned. The engine bounds itself
/// (total plus up to 2 s of cleanup); this only keeps a CI job from hanging on a bug.
const PROBE_GRACE: Duration = Duration::from_secs(5);

const AFTER_HELP: &str = "\
Examples:
  lifeline check https://mcp.example.com/mcp
  lifeline check https://old.example.com/sse --era sse
  lifeline check --stdio -- npx -y @modelcontextprotocol/server-everything
  lifeline check URL1 URL2 --json > report.json
  lifeline check URL --update-snapshot tools.snapshot.json  # record the tools
  lifeline check URL --snapshot tools.snapshot.json  # fail on breaking drift
  lifeline check URL --junit report.xml
  lifeline check URL --transaction canary.yaml  # scripted tool calls + CEL

Authentication: --header 'Name: value' (repeatable), --bearer-token-file FILE,
or the environment variable LIFELINE_BEARER_TOKEN (the file wins when both are
given). OAuth client credentials: --oauth-client-id ID with
--oauth-client-secret-file FILE (or LIFELINE_OAUTH_CLIENT_SECRET) or
--oauth-private-key-file PEM (private_key_jwt); a refresh token with
--oauth-refresh-token-file FILE (or LIFELINE_OAUTH_REFRESH_TOKEN). The token
endpoint is discovered from the server's 401 unless --oauth-token-url is given.
Header values, tokens, secrets and keys are never printed.
  lifeline check https://mcp.example.com/mcp --oauth-client-id probe \
      --oauth-client-secret-file /run/secrets/probe --oauth-scope mcp:read

Exit codes:
  0   every target healthy (degraded too, unless --fail-on degraded)
  1   a target unhealthy or auth_required, degraded with --fail-on degraded,
      breaking tool-schema drift, or a failed transaction
  2   operational error: unreadable snapshot, token, CA or output file
  64  usage error: no target, conflicting flags, bad --args JSON, bad --header,
      an invalid --transaction file, or a transaction refused by the safety
      gate (a tool not in allow_tools, or without readOnlyHint: true and no
      allow_side_effects: true)

Docs: docs/ci-gate.md (CI use, snapshots), docs/check-json.md (--json schema),
docs/transactions.md (--transaction files).";

/// Arguments of `lifeline check`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP, after_help = "Run with --help for examples and exit codes.")]
pub(crate) struct Args {
    /// MCP endpoints to probe (http:// or https://): a Streamable HTTP endpoint of either era, or a legacy
    /// HTTP+SSE endpoint (usually ending in /sse). Several targets are probed concurrently; output keeps their
    /// order.
    #[arg(value_name = "URL")]
    pub(crate) urls: Vec<String>,

    /// Probe a stdio server instead: the command and its arguments follow `--`, e.g.
    /// `--stdio -- npx -y @modelcontextprotocol/server-everything`. The child starts with only PATH and HOME
    /// (see --env, --inherit-env) and is shut down after the probe.
    #[arg(long)]
    pub(crate) stdio: bool,

    /// The stdio server's command line (after `--`; needs --stdio).
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,

    /// Print a JSON array with one report per target instead of text (schema: docs/check-json.md, stable).
    #[arg(long)]
    pub(crate) json: bool,

    /// Also write a JUnit XML report to FILE: one testcase per target, a failure for each target that fails the
    /// gate.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,

    /// Compare the target's tools with a snapshot written by --update-snapshot and report the drift. Only
    /// breaking changes (removed tool, new required property, changed type, …) fail the check. One target only.
    #[arg(long, value_name = "FILE")]
    pub(crate) snapshot: Option<PathBuf>,

    /// Write the target's tools to FILE as a snapshot (atomically; only when the probe listed the tools). Commit
    /// it and check later deploys with --snapshot FILE. One target only.
    #[arg(long, value_name = "FILE")]
    pub(crate) update_snapshot: Option<PathBuf>,

    /// Which verdicts fail the check (exit 1). `unhealthy` fails on unhealthy and auth_required; `degraded` also
    /// on degraded (slow, expiring certificate, tool call with isError).
    #[arg(long, value_enum, default_value_t = FailOn::Unhealthy, value_name = "LEVEL")]
    pub(crate) fail_on: FailOn,

    /// Extra HTTP request header, `'Name: value'`, sent on every request; repeatable. The value is a secret:
    /// it is never printed.
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'")]
    pub(crate) headers: Vec<String>,

    /// Read a bearer token from FILE (surrounding whitespace trimmed) and send `Authorization: Bearer <token>`.
    /// Without it, the environment variable LIFELINE_BEARER_TOKEN is used when set. Never printed.
    #[arg(long, value_name = "FILE")]
    pub(crate) bearer_token_file: Option<PathBuf>,

    /// OAuth: the registered client id. Turns on the OAuth client: a token from the client-credentials grant (or
    /// the refresh-token grant with --oauth-refresh-token-file), discovered from the server's 401 (RFC 9728,
    /// RFC 8414) unless --oauth-token-url is given, sent as `Authorization: Bearer`. A credential that is
    /// rejected makes the verdict unhealthy (auth_failed).
    #[arg(long, value_name = "ID", help_heading = "OAuth")]
    pub(crate) oauth_client_id: Option<String>,

    /// OAuth: read the client secret from FILE (surrounding whitespace trimmed). Without it, the environment
    /// variable LIFELINE_OAUTH_CLIENT_SECRET is used when set. Never printed.
    #[arg(long, value_name = "FILE", help_heading = "OAuth")]
    pub(crate) oauth_client_secret_file: Option<PathBuf>,

    /// OAuth: how the client secret is presented at the token endpoint: `basic` (client_secret_basic, HTTP
    /// Basic) or `post` (client_secret_post, in the form body).
    #[arg(long, value_enum, default_value_t = SecretMethod::Basic, value_name = "METHOD", help_heading = "OAuth")]
    pub(crate) oauth_auth_method: SecretMethod,

    /// OAuth: authenticate with a JWT signed by this PEM private key instead of a secret (private_key_jwt,
    /// RFC 7523; RSA → RS256, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA).
    #[arg(long, value_name = "PEM", help_heading = "OAuth")]
    pub(crate) oauth_private_key_file: Option<PathBuf>,

    /// OAuth: the `kid` header of the private_key_jwt assertion, when the server holds several keys.
    #[arg(
        long,
        value_name = "KID",
        requires = "oauth_private_key_file",
        help_heading = "OAuth"
    )]
    pub(crate) oauth_key_id: Option<String>,

    /// OAuth: use the refresh-token grant with the refresh token in FILE (one obtained once, e.g. by an
    /// interactive login). Without it, LIFELINE_OAUTH_REFRESH_TOKEN is used when set. Never printed.
    #[arg(long, value_name = "FILE", help_heading = "OAuth")]
    pub(crate) oauth_refresh_token_file: Option<PathBuf>,

    /// OAuth: the scope to request (space-separated). Default: the 401 challenge's `scope`, else the protected
    /// resource metadata's `scopes_supported`.
    #[arg(long, value_name = "SCOPE", help_heading = "OAuth")]
    pub(crate) oauth_scope: Option<String>,

    /// OAuth: the token endpoint; skips discovery (the first request then carries a token).
    #[arg(long, value_name = "URL", help_heading = "OAuth")]
    pub(crate) oauth_token_url: Option<String>,

    /// OAuth: when the client secret expires (`client_secret_expires_at`: 2027-03-31, RFC 3339 or Unix
    /// seconds). Within --credential-warning-days the verdict is degraded (credential_expiring).
    #[arg(long, value_name = "DATE", help_heading = "OAuth")]
    pub(crate) oauth_client_secret_expires_at: Option<String>,

    /// When the API key or bearer token (--header, --bearer-token-file) expires (2027-03-31, RFC 3339 or Unix
    /// seconds). Within --credential-warning-days the verdict is degraded (credential_expiring).
    #[arg(long, value_name = "DATE")]
    pub(crate) api_key_expires_at: Option<String>,

    /// A configured credential expiring within this many days makes the verdict degraded
    /// (credential_expiring).
    #[arg(long, value_name = "DAYS", default_value_t = lifeline_mcp::probe::config::DEFAULT_CREDENTIAL_WARNING_DAYS,
          value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub(crate) credential_warning_days: i64,

    /// Call this tool after tools/list (opt-in: side effects are yours). A result with `isError: true` makes
    /// the verdict degraded (tool_error).
    #[arg(long, value_name = "TOOL")]
    pub(crate) call: Option<String>,

    /// Run the synthetic transactions in FILE (YAML: `allow_tools`, `allow_side_effects`, `transactions`; see
    /// docs/transactions.md) on each target's session after tools/list, once. A failed transaction fails the
    /// check; an invalid file, or a tool the safety gate refuses, is a usage error (exit 64). Each transaction
    /// adds its own `timeout` to --timeout.
    #[arg(long, value_name = "FILE")]
    pub(crate) transaction: Option<PathBuf>,

    /// The JSON object of arguments for --call, e.g. `'{"message":"hi"}'`. Default `{}`.
    #[arg(long, value_name = "JSON", requires = "call")]
    pub(crate) args: Option<String>,

    /// Bound on the whole probe of one target, all phases together ("10s", "1500ms", "1m").
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// Bound on the DNS lookup. Default: only --timeout bounds it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) dns_timeout: Option<Duration>,

    /// Bound on the TCP connect (over all resolved addresses); exceeding it is `connect_timeout`. Default: only
    /// --timeout bounds it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) connect_timeout: Option<Duration>,

    /// Bound on the TLS handshake. Default: only --timeout bounds it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) tls_timeout: Option<Duration>,

    /// Bound on each MCP step (request sent → reply complete: discover, initialize, tools/list, …). Default:
    /// only --timeout bounds it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) step_timeout: Option<Duration>,

    /// A certificate expiring within this many days makes the verdict degraded (cert_expiring).
    #[arg(long, value_name = "DAYS", default_value_t = lifeline_mcp::probe::config::DEFAULT_CERT_WARNING_DAYS,
          value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub(crate) cert_warning_days: i64,

    /// A probe slower than this in total is degraded (slow).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) slow: Duration,

    /// Also trust the CA certificates in this PEM file (a private CA, a self-signed server), besides the
    /// built-in Mozilla roots; repeatable.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub(crate) ca_files: Vec<PathBuf>,

    /// Follow tools/list `nextCursor` for at most this many pages; a longer list gets the warning
    /// tool_list_truncated.
    #[arg(long, value_name = "PAGES", default_value_t = lifeline_mcp::probe::config::DEFAULT_MAX_TOOL_PAGES,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) max_tool_pages: u32,

    /// Skip the extra request with a foreign Origin header that checks the server rejects it (the warning
    /// no_origin_check). HTTP only.
    #[arg(long)]
    pub(crate) no_origin_check: bool,

    /// Skip the extra GET of the target's MCP Server Card (`<url>/server-card`, the experimental Server Card
    /// extension) made after the probe of a Streamable HTTP target; the `card` finding is then absent. The card
    /// never changes the verdict either way.
    #[arg(long)]
    pub(crate) no_card: bool,

    /// Skip era detection when you know the era: `modern` (2026-07-28, server/discover), `legacy` (initialize
    /// over Streamable HTTP or stdio) or `sse` (the deprecated 2024-11-05 HTTP+SSE transport). `auto` tries
    /// them in that order.
    #[arg(long, value_enum, default_value_t = EraArg::Auto, value_name = "ERA")]
    pub(crate) era: EraArg,

    /// How many targets are probed at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) concurrency: u16,

    /// Environment variable for the stdio child, `KEY=VALUE`; repeatable. Needs --stdio. Values are treated as
    /// secrets (API keys usually travel this way): never printed.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,

    /// Let the stdio child inherit this process's whole environment (by default it gets only PATH, HOME and
    /// --env). Needs --stdio.
    #[arg(long)]
    pub(crate) inherit_env: bool,
}

/// `--fail-on`: the least severe verdict that fails the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FailOn {
    /// Fail on degraded, auth_required and unhealthy.
    Degraded,
    /// Fail on auth_required and unhealthy (the default).
    Unhealthy,
}

/// `--oauth-auth-method`: how a client secret is presented (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SecretMethod {
    /// client_secret_basic: HTTP Basic authentication.
    Basic,
    /// client_secret_post: client_id and client_secret in the form body.
    Post,
}

/// `--era`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EraArg {
    /// Detect: modern, then legacy, then HTTP+SSE.
    Auto,
    /// Only the modern era (2026-07-28).
    Modern,
    /// Only the legacy initialize handshake.
    Legacy,
    /// Only the deprecated HTTP+SSE transport.
    Sse,
}

/// One target's result as the renderers see it: the report (secrets already redacted) and the snapshot work.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The probe's report.
    pub(crate) report: ProbeReport,
    /// The comparison with `--snapshot`, when asked.
    pub(crate) drift: Option<snapshot::DriftOutcome>,
    /// What `--update-snapshot` did, when asked.
    pub(crate) snapshot_update: Option<snapshot::UpdateOutcome>,
    /// True when the verdict alone fails the gate at `--fail-on` (see [`fails`]).
    pub(crate) verdict_fails: bool,
    /// True when a transaction fails the gate at `--fail-on` (see [`transaction_fails`]).
    pub(crate) transactions_fail: bool,
    /// `--fail-on degraded`: a degraded (slow) transaction step fails too.
    pub(crate) fail_on_degraded: bool,
    /// The Server Card found for the target, compared with the probe (`check/card.rs`); never part of the gate.
    pub(crate) card: Option<lifeline_mcp::probe::card::CardCheck>,
}

impl Outcome {
    /// True when this target makes the check fail (exit 1): its verdict, breaking drift, or a transaction.
    pub(crate) fn failed(&self) -> bool {
        self.transactions_fail || self.target_failed()
    }

    /// True when the target itself fails the gate: its verdict, or breaking drift (its transactions aside).
    pub(crate) fn target_failed(&self) -> bool {
        self.verdict_fails
            || self
                .drift
                .as_ref()
                .is_some_and(snapshot::DriftOutcome::is_breaking)
    }
}

/// Runs `lifeline check`; returns the exit code.
pub(crate) async fn run(args: Args) -> anyhow::Result<u8> {
    let plan = plan::Plan::from_args(args)?;
    let reports = probe_all(&plan).await;
    let cards = card::check_all(&plan, &reports).await;

    let mut outcomes = Vec::with_capacity(reports.len());
    let mut operational_error = None;
    for (report, card) in reports.into_iter().zip(cards) {
        let report = redact::report(report, &plan.secrets);
        let drift = plan
            .snapshot
            .as_ref()
            .map(|(path, snap)| snapshot::compare(path, snap, &report));
        let snapshot_update = match &plan.update_snapshot {
            Some(path) => {
                let update = snapshot::update(path, &report);
                if let snapshot::UpdateOutcome::Failed(err) = &update {
                    operational_error = Some(anyhow::anyhow!("{err}"));
                }
                Some(update)
            }
            None => None,
        };
        outcomes.push(Outcome {
            verdict_fails: fails(&report, plan.fail_on),
            transactions_fail: report
                .transactions
                .iter()
                .any(|t| transaction_fails(t, plan.fail_on)),
            fail_on_degraded: plan.fail_on == FailOn::Degraded,
            report,
            drift,
            snapshot_update,
            card,
        });
    }

    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if plan.json {
            stdout.write_all(json::render(&outcomes)?.as_bytes())?;
            // stdout holds only the JSON; say what happened to the snapshot on stderr.
            for update in outcomes.iter().filter_map(|o| o.snapshot_update.as_ref()) {
                match update {
                    snapshot::UpdateOutcome::Written { path, tools, .. } => {
                        eprintln!(
                            "lifeline: wrote the snapshot {} (tools: {tools})",
                            path.display()
                        );
                    }
                    snapshot::UpdateOutcome::Skipped { path, why } => {
                        eprintln!(
                            "lifeline: left the snapshot {} unchanged: {why}",
                            path.display()
                        );
                    }
                    // Reported as the error at the end.
                    snapshot::UpdateOutcome::Failed(_) => {}
                }
            }
        } else {
            let colour = human::colour_wanted();
            stdout.write_all(human::render(&outcomes, colour).as_bytes())?;
        }
        stdout.flush()?;
    }
    if let Some(path) = &plan.junit {
        let xml = junit::render(&outcomes)?;
        std::fs::write(path, xml).map_err(|e| {
            anyhow::anyhow!("cannot write the JUnit report {}: {e}", path.display())
        })?;
    }
    if let Some(err) = operational_error {
        return Err(err);
    }
    if let Some(refused) = gate_refusal(&outcomes) {
        return Err(exit::UsageError(refused).into());
    }
    Ok(if outcomes.iter().any(Outcome::failed) {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

/// True when `report`'s verdict fails the gate at `fail_on`.
pub(crate) fn fails(report: &ProbeReport, fail_on: FailOn) -> bool {
    match report.verdict {
        Verdict::Healthy => false,
        Verdict::Degraded => fail_on == FailOn::Degraded,
        Verdict::AuthRequired | Verdict::Unhealthy => true,
    }
}

/// True when transaction `t` fails the gate at `fail_on`: unhealthy always, degraded (a slow step) only with
/// `--fail-on degraded`.
pub(crate) fn transaction_fails(
    t: &lifeline_mcp::transaction::TransactionReport,
    fail_on: FailOn,
) -> bool {
    match t.verdict {
        Verdict::Healthy => false,
        Verdict::Degraded => fail_on == FailOn::Degraded,
        Verdict::AuthRequired | Verdict::Unhealthy => true,
    }
}

/// The usage error for transactions the safety gate refused once the tools were listed (a tool without
/// `readOnlyHint: true` and no `allow_side_effects: true`): the operator's file, not the server, must change.
fn gate_refusal(outcomes: &[Outcome]) -> Option<String> {
    let refused: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            o.report
                .transactions
                .iter()
                .filter(|t| t.reason == Some(Reason::NotAllowed))
                .map(move |t| {
                    format!(
                        "{}: transaction {}: {}",
                        o.report.url,
                        t.name,
                        t.message.as_deref().unwrap_or_default()
                    )
                })
        })
        .collect();
    (!refused.is_empty()).then(|| refused.join("\n"))
}

/// Probes every target, at most `plan.concurrency` at once on the runtime's threads; reports in input order.
async fn probe_all(plan: &plan::Plan) -> Vec<ProbeReport> {
    let opts: Arc<ProbeOptions> = Arc::new(plan.options.clone());
    let transactions = plan
        .options
        .transactions
        .as_ref()
        .map_or(Duration::ZERO, |set| set.budget());
    let bound = plan.options.timeouts.total + transactions + PROBE_GRACE;
    futures_util::stream::iter(plan.targets.iter().cloned())
        .map(|target| {
            let opts = Arc::clone(&opts);
            let label = target.label();
            let handle = tokio::spawn(async move {
                tokio::time::timeout(bound, lifeline_mcp::probe(&target, &opts)).await
            });
            async move {
                match handle.await {
                    Ok(Ok(report)) => report,
                    Ok(Err(_elapsed)) => abandoned(
                        label,
                        bound,
                        "the probe did not return within --timeout (plus the transactions' timeouts) and a 5 s grace \
                         (a Lifeline bug: please report it)",
                    ),
                    Err(join) => abandoned(label, bound, &format!("the probe task failed: {join}")),
                }
            }
        })
        .buffered(usize::from(plan.concurrency))
        .collect()
        .await
}

/// The report for a probe that never returned: unhealthy, `timeout` in phase `total`.
fn abandoned(url: String, after: Duration, message: &str) -> ProbeReport {
    let failure = Failure::new(Reason::Timeout, message).in_phase(Phase::Total);
    let mut timings = Timings::default();
    timings.add(Phase::Total, after.as_secs_f64() * 1000.0);
    ProbeReport::failed(url, failure, timings, String::new())
}

/// `--timeout` and friends: a humantime duration ("10s", "500ms", "1m 30s"), more than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (write a number with a unit: \"10s\", \"500ms\", \"1m\")"))?;
    if d.is_zero() {
        return Err("must be more than zero".to_owned());
    }
    Ok(d)
}

/// The ProbeReport a test renders: healthy legacy Streamable HTTP with one tool and typical timings.
#[cfg(test)]
pub(crate) fn sample_report() -> ProbeReport {
    use lifeline_mcp::probe::ServerInfo;
    use lifeline_mcp::{Era, TransportKind};
    let mut timings = Timings::default();
    for (phase, ms) in [
        (Phase::Dns, 0.21),
        (Phase::Connect, 0.35),
        (Phase::FirstByte, 2.4),
        (Phase::Initialize, 2.9),
        (Phase::Initialized, 0.6),
        (Phase::ToolsList, 1.25),
        (Phase::Close, 0.5),
        (Phase::Total, 6.3),
    ] {
        timings.add(phase, ms);
    }
    ProbeReport {
        url: "http://127.0.0.1:8080/mcp".to_owned(),
        verdict: Verdict::Healthy,
        reason: None,
        failure: None,
        era: Some(Era::Legacy),
        transport: Some(TransportKind::StreamableHttp),
        protocol_version: Some("2025-11-25".to_owned()),
        server_info: Some(ServerInfo {
            name: Some("everything".to_owned()),
            version: Some("2.0.0".to_owned()),
        }),
        capabilities: Some(serde_json::json!({"tools": {}})),
        tools_count: Some(1),
        schema_hash: Some(
            "3f2a9c1b7d04e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e".to_owned(),
        ),
        timings_ms: timings,
        tls: None,
        auth: None,
        tool_call: None,
        credentials: Vec::new(),
        warnings: Vec::new(),
        started_at: "2026-08-01T12:00:00Z".to_owned(),
        transactions: Vec::new(),
        tools: vec![serde_json::json!({"name": "echo", "inputSchema": {"type": "object"}})],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_maps_verdicts_to_the_gate() {
        let cases = [
            (Verdict::Healthy, FailOn::Unhealthy, false),
            (Verdict::Degraded, FailOn::Unhealthy, false),
            (Verdict::AuthRequired, FailOn::Unhealthy, true),
            (Verdict::Unhealthy, FailOn::Unhealthy, true),
            (Verdict::Healthy, FailOn::Degraded, false),
            (Verdict::Degraded, FailOn::Degraded, true),
            (Verdict::AuthRequired, FailOn::Degraded, true),
            (Verdict::Unhealthy, FailOn::Degraded, true),
        ];
        for (verdict, fail_on, expected) in cases {
            let mut report = sample_report();
            report.verdict = verdict;
            assert_eq!(
                fails(&report, fail_on),
                expected,
                "{verdict} at {fail_on:?}"
            );
        }
    }

    #[test]
    fn durations_need_a_unit_and_more_than_zero() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("10").unwrap_err().contains("unit"));
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn abandoned_probe_is_an_unhealthy_timeout() {
        let r = abandoned("http://x/mcp".to_owned(), Duration::from_secs(15), "m");
        assert_eq!(
            (r.verdict, r.reason),
            (Verdict::Unhealthy, Some(Reason::Timeout))
        );
        assert_eq!(r.timings_ms.get(Phase::Total), Some(15_000.0));
    }
}
