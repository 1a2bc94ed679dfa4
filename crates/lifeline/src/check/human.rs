//! The text output of `lifeline check`: one block per target, then a summary line when there are several.
//!
//! ```text
//! healthy  https://mcp.example.com/mcp
//!   era        legacy over streamable_http, protocol 2025-11-25
//!   server     everything 2.0.0
//!   tools      1, schema 3f2a9c1b7d04
//!   timings    dns 0.2 · connect 0.3 · first_byte 2.4 · initialize 2.9 · … · total 6.3 ms
//! ```
//!
//! Colour (the verdict word and breaking changes) only when stdout is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>).

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use lifeline_mcp::probe::Phase;
use lifeline_mcp::schema::ChangeKind;
use lifeline_mcp::transaction::{StepOutcome, TransactionReport};
use lifeline_mcp::{ProbeReport, Verdict, Warning};

use super::snapshot::{DriftOutcome, UpdateOutcome};
use super::Outcome;

/// Width of the key column inside a block.
const KEY_WIDTH: usize = 10;
/// Characters of the schema hash shown.
const SHORT_HASH: usize = 12;

/// True when colour is wanted: stdout is a terminal and `NO_COLOR` is unset or empty.
pub(crate) fn colour_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Renders every outcome, in order.
pub(crate) fn render(outcomes: &[Outcome], colour: bool) -> String {
    let mut out = String::new();
    for (i, o) in outcomes.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        block(&mut out, o, colour);
    }
    if outcomes.len() > 1 {
        out.push('\n');
        out.push_str(&summary(outcomes));
        out.push('\n');
    }
    out
}

fn block(out: &mut String, o: &Outcome, colour: bool) {
    let r = &o.report;
    let _ = writeln!(
        out,
        "{}  {}",
        paint(r.verdict.as_str(), verdict_style(r.verdict), colour),
        r.url
    );

    if let Some(f) = &r.failure {
        let mut line = f.reason.as_str().to_owned();
        if let Some(phase) = f.phase {
            let _ = write!(line, " in {}", phase.as_str());
        }
        if let Some(status) = f.http_status {
            let _ = write!(line, " (HTTP {status})");
        }
        if let Some(code) = f.rpc_code {
            match &f.rpc_message {
                Some(m) => {
                    let _ = write!(line, " (JSON-RPC {code}: {m})");
                }
                None => {
                    let _ = write!(line, " (JSON-RPC {code})");
                }
            }
        }
        if !f.message.is_empty() {
            let _ = write!(line, ": {}", f.message);
        }
        kv(out, "reason", &line);
    }

    if let Some(era) = r.era {
        let mut line = era.as_str().to_owned();
        if let Some(t) = r.transport {
            let transport = serde_json::to_value(t).ok();
            if let Some(name) = transport.as_ref().and_then(|v| v.as_str()) {
                let _ = write!(line, " over {name}");
            }
        }
        if let Some(v) = &r.protocol_version {
            let _ = write!(line, ", protocol {v}");
        }
        kv(out, "era", &line);
    }
    if let Some(info) = &r.server_info {
        let name = info.name.as_deref().unwrap_or("(unnamed)");
        let line = match &info.version {
            Some(v) => format!("{name} {v}"),
            None => name.to_owned(),
        };
        kv(out, "server", &line);
    }
    if let Some(count) = r.tools_count {
        let mut line = count.to_string();
        if let Some(hash) = &r.schema_hash {
            let _ = write!(line, ", schema {}", &hash[..hash.len().min(SHORT_HASH)]);
        }
        kv(out, "tools", &line);
    }
    if let Some(call) = &r.tool_call {
        let result = if call.is_error {
            "returned isError: true"
        } else {
            "ok"
        };
        kv(out, "call", &format!("{} {result}", call.name));
    }
    if !r.timings_ms.0.is_empty() {
        kv(out, "timings", &timings(r));
    }
    if let Some(tls) = &r.tls {
        let mut line = if tls.valid {
            "valid".to_owned()
        } else {
            "INVALID".to_owned()
        };
        if let Some(e) = &tls.error {
            let _ = write!(line, " ({e})");
        }
        if let Some(v) = &tls.version {
            let _ = write!(line, ", {v}");
        }
        if let Some(issuer) = &tls.issuer {
            let _ = write!(line, ", issuer {issuer}");
        }
        if let Some(not_after) = &tls.not_after {
            let _ = write!(line, ", not after {not_after}");
        }
        if let Some(days) = tls.days_left {
            let _ = write!(line, " ({days} days left)");
        }
        kv(out, "tls", &line);
    }
    if let Some(auth) = &r.auth {
        if let Some(url) = &auth.resource_metadata_url {
            kv(out, "auth", &format!("resource metadata {url}"));
        } else {
            kv(
                out,
                "auth",
                &format!("HTTP {}, no resource metadata advertised", auth.status),
            );
        }
        if !auth.authorization_servers.is_empty() {
            kv(
                out,
                "",
                &format!(
                    "authorization servers: {}",
                    auth.authorization_servers.join(", ")
                ),
            );
        }
    }
    for c in &r.credentials {
        kv(
            out,
            "credential",
            &format!(
                "{} expires {} ({} days left)",
                c.kind.as_str(),
                c.expires_at,
                c.days_left
            ),
        );
    }
    if r.verdict == Verdict::AuthRequired {
        kv(
            out,
            "hint",
            "pass credentials with --bearer-token-file FILE, LIFELINE_BEARER_TOKEN, --header 'Name: value' \
             or --oauth-client-id ID (see --help)",
        );
    }
    for w in &r.warnings {
        kv(out, "warning", &format!("{}: {}", w.as_str(), explain(*w)));
    }
    for (key, line) in o.card.iter().flat_map(super::card::human_lines) {
        kv(out, key, &line);
    }
    for t in &r.transactions {
        transaction(out, t, colour);
    }
    if let Some(d) = &o.drift {
        drift(out, d, colour);
    }
    if let Some(u) = &o.snapshot_update {
        let line = match u {
            UpdateOutcome::Written {
                path,
                tools,
                schema_hash,
            } => format!(
                "wrote {} ({tools} tool{}, schema {})",
                path.display(),
                if *tools == 1 { "" } else { "s" },
                &schema_hash[..schema_hash.len().min(SHORT_HASH)]
            ),
            UpdateOutcome::Skipped { path, why } => {
                format!("{} left unchanged: {why}", path.display())
            }
            UpdateOutcome::Failed(err) => format!("NOT written: {err}"),
        };
        kv(out, "snapshot", &line);
    }
}

/// A transaction: its verdict and time, then one line per step (`1 tool search  passed 20.1 ms`), with the
/// reason and message of a step that did not pass.
fn transaction(out: &mut String, t: &TransactionReport, colour: bool) {
    kv(
        out,
        "transaction",
        &format!(
            "{} {} in {:.1} ms",
            t.name,
            paint(t.verdict.as_str(), verdict_style(t.verdict), colour),
            t.duration_ms
        ),
    );
    if t.steps.iter().all(|s| s.outcome == StepOutcome::Skipped) {
        if let Some(m) = &t.message {
            kv(out, "", &format!("not run: {m}"));
        }
        return;
    }
    for (i, s) in t.steps.iter().enumerate() {
        let mut line = format!("{} {} {}  {}", i + 1, s.kind, s.target, s.outcome.as_str());
        if let Some(ms) = s.latency_ms {
            let _ = write!(line, " {ms:.1} ms");
        }
        if let (Some(reason), Some(message)) = (s.reason, &s.message) {
            let _ = write!(line, ": {} {message}", reason.as_str());
        }
        kv(out, "", &line);
    }
}

fn drift(out: &mut String, d: &DriftOutcome, colour: bool) {
    let short = |h: &str| h[..h.len().min(SHORT_HASH)].to_owned();
    let head = match &d.schema_hash {
        None => format!(
            "vs {}: {}",
            d.path.display(),
            d.note.as_deref().unwrap_or("not compared")
        ),
        Some(_) if d.drift.changes.is_empty() => {
            format!(
                "none: the tools match {} (schema {})",
                d.path.display(),
                short(&d.snapshot_hash)
            )
        }
        Some(now) => format!(
            "{} breaking, {} additive vs {} (schema {} → {})",
            d.drift.count(ChangeKind::Breaking),
            d.drift.count(ChangeKind::Additive),
            d.path.display(),
            short(&d.snapshot_hash),
            short(now)
        ),
    };
    kv(out, "drift", &head);
    // Breaking first: they are what failed the check.
    for kind in [ChangeKind::Breaking, ChangeKind::Additive] {
        for c in d.drift.changes.iter().filter(|c| c.kind == kind) {
            let label = match kind {
                ChangeKind::Breaking => paint("breaking", Style::Red, colour),
                ChangeKind::Additive => "additive".to_owned(),
            };
            let at = if c.path.is_empty() {
                String::new()
            } else {
                format!(" {}", c.path)
            };
            kv(
                out,
                "",
                &format!("{label}  {}{at}: {}", c.tool, c.description),
            );
        }
    }
    if d.compared() {
        if let Some(note) = &d.note {
            kv(out, "", &format!("note: {note}"));
        }
    }
}

fn timings(r: &ProbeReport) -> String {
    let mut parts: Vec<String> = r
        .timings_ms
        .0
        .iter()
        .filter(|(p, _)| *p != Phase::Total)
        .map(|(p, ms)| format!("{} {ms:.1}", p.as_str()))
        .collect();
    if let Some(total) = r.timings_ms.get(Phase::Total) {
        parts.push(format!("total {total:.1}"));
    }
    format!("{} ms", parts.join(" · "))
}

fn summary(outcomes: &[Outcome]) -> String {
    let failed = outcomes.iter().filter(|o| o.failed()).count();
    let mut counts = Vec::new();
    for v in [
        Verdict::Healthy,
        Verdict::Degraded,
        Verdict::AuthRequired,
        Verdict::Unhealthy,
    ] {
        let n = outcomes.iter().filter(|o| o.report.verdict == v).count();
        if n > 0 {
            counts.push(format!("{n} {v}"));
        }
    }
    let head = if failed == 0 {
        format!("all {} targets pass", outcomes.len())
    } else {
        format!("{failed} of {} targets fail", outcomes.len())
    };
    format!("{head}: {}", counts.join(", "))
}

fn kv(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "  {key:<KEY_WIDTH$} {value}");
}

/// One sentence per warning: what it means and what to do.
fn explain(w: Warning) -> &'static str {
    match w {
        Warning::DeprecatedTransport => {
            "the server speaks only the HTTP+SSE transport, deprecated since 2025-03-26; move to Streamable HTTP"
        }
        Warning::MissingXAccelBuffering => {
            "an SSE reply lacked `X-Accel-Buffering: no`, so a buffering proxy (nginx) may hold events back"
        }
        Warning::NoOriginCheck => {
            "a request with a foreign Origin was served; servers must answer 403 (DNS rebinding protection)"
        }
        Warning::SessionNotClosed => "the probe's session could not be ended with DELETE; it lingers on the server",
        Warning::SessionDeleteNotAllowed => {
            "the server refuses DELETE (405), so every session lives until the server expires it"
        }
        Warning::OldProtocolVersion => "the server negotiated an older protocol version than the newest offered",
        Warning::ToolListTruncated => "tools/list stopped at --max-tool-pages before nextCursor ran out",
        Warning::AlsoDegraded => "more than one degraded finding applied; the reason shows the most urgent",
    }
}

#[derive(Clone, Copy)]
enum Style {
    Green,
    Yellow,
    Magenta,
    Red,
}

fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Healthy => Style::Green,
        Verdict::Degraded => Style::Yellow,
        Verdict::AuthRequired => Style::Magenta,
        Verdict::Unhealthy => Style::Red,
    }
}

fn paint(text: &str, style: Style, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match style {
        Style::Green => "1;32",
        Style::Yellow => "1;33",
        Style::Magenta => "1;35",
        Style::Red => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::sample_report;
    use lifeline_mcp::probe::{AuthInfo, Failure, TlsInfo};
    use lifeline_mcp::schema::{Change, Drift};
    use lifeline_mcp::Reason;

    fn outcome(report: ProbeReport) -> Outcome {
        Outcome {
            verdict_fails: crate::check::fails(&report, crate::check::FailOn::Unhealthy),
            transactions_fail: false,
            fail_on_degraded: false,
            report,
            drift: None,
            snapshot_update: None,
            card: None,
        }
    }

    #[test]
    fn healthy_block_reads_well() {
        let text = render(&[outcome(sample_report())], false);
        let expected = "\
healthy  http://127.0.0.1:8080/mcp
  era        legacy over streamable_http, protocol 2025-11-25
  server     everything 2.0.0
  tools      1, schema 3f2a9c1b7d04
  timings    dns 0.2 · connect 0.3 · first_byte 2.4 · initialize 2.9 · initialized 0.6 · tools_list 1.2 · close 0.5 · total 6.3 ms
";
        assert_eq!(text, expected);
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn colour_only_paints_the_verdict() {
        let text = render(&[outcome(sample_report())], true);
        assert!(
            text.starts_with("\x1b[1;32mhealthy\x1b[0m  http://"),
            "{text:?}"
        );
        assert_eq!(text.matches('\x1b').count(), 2);
    }

    #[test]
    fn unhealthy_block_shows_reason_details() {
        let mut r = sample_report();
        r.verdict = Verdict::Unhealthy;
        r.reason = Some(Reason::RpcError);
        let mut f = Failure::new(Reason::RpcError, "initialize failed").in_phase(Phase::Initialize);
        f.rpc_code = Some(-32603);
        f.rpc_message = Some("Internal error".to_owned());
        r.failure = Some(f);
        r.tools_count = None;
        r.schema_hash = None;
        let text = render(&[outcome(r)], false);
        assert!(
            text.starts_with("unhealthy  http://127.0.0.1:8080/mcp\n"),
            "{text}"
        );
        assert!(
            text.contains("  reason     rpc_error in initialize (JSON-RPC -32603: Internal error): initialize failed\n"),
            "{text}"
        );
        assert!(!text.contains("  tools "), "{text}");
    }

    #[test]
    fn auth_tls_and_warnings_are_shown() {
        let mut r = sample_report();
        r.verdict = Verdict::AuthRequired;
        r.reason = Some(Reason::AuthRequired);
        r.failure =
            Some(Failure::new(Reason::AuthRequired, "the server wants a token").with_status(401));
        r.auth = Some(AuthInfo {
            status: 401,
            resource_metadata_url: Some(
                "https://mcp.example.com/.well-known/oauth-protected-resource".to_owned(),
            ),
            authorization_servers: vec!["https://auth.example.com".to_owned()],
            ..AuthInfo::default()
        });
        r.tls = Some(TlsInfo {
            valid: true,
            issuer: Some("CN=R11, O=Let's Encrypt, C=US".to_owned()),
            not_after: Some("2026-09-14T12:00:00Z".to_owned()),
            days_left: Some(44),
            version: Some("TLSv1_3".to_owned()),
            ..TlsInfo::default()
        });
        r.warnings = vec![Warning::NoOriginCheck];
        r.credentials = vec![lifeline_mcp::probe::CredentialStatus {
            kind: lifeline_mcp::probe::CredentialKind::ClientSecret,
            expires_at: "2026-08-04T00:00:00Z".to_owned(),
            days_left: 3,
        }];
        let text = render(&[outcome(r)], false);
        for needle in [
            "  credential client_secret expires 2026-08-04T00:00:00Z (3 days left)\n",
            "auth_required  http://",
            "  reason     auth_required (HTTP 401): the server wants a token\n",
            "  auth       resource metadata https://mcp.example.com/.well-known/oauth-protected-resource\n",
            "             authorization servers: https://auth.example.com\n",
            "  hint       pass credentials with --bearer-token-file",
            "  tls        valid, TLSv1_3, issuer CN=R11, O=Let's Encrypt, C=US, not after 2026-09-14T12:00:00Z (44 days left)\n",
            "  warning    no_origin_check: a request with a foreign Origin",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn drift_lists_breaking_changes_first() {
        let mut o = outcome(sample_report());
        o.drift = Some(DriftOutcome {
            path: "tools.snapshot.json".into(),
            snapshot_hash: "a".repeat(64),
            schema_hash: Some("b".repeat(64)),
            drift: Drift {
                changes: vec![
                    Change {
                        tool: "add".into(),
                        path: String::new(),
                        kind: ChangeKind::Additive,
                        description: "new tool".into(),
                    },
                    Change {
                        tool: "search".into(),
                        path: "/inputSchema/properties/q/type".into(),
                        kind: ChangeKind::Breaking,
                        description: "type changed from string to integer".into(),
                    },
                ],
            },
            note: None,
        });
        let text = render(&[o], false);
        let expected_tail = "\
  drift      1 breaking, 1 additive vs tools.snapshot.json (schema aaaaaaaaaaaa → bbbbbbbbbbbb)
             breaking  search /inputSchema/properties/q/type: type changed from string to integer
             additive  add: new tool
";
        assert!(text.ends_with(expected_tail), "{text}");
    }

    #[test]
    fn several_targets_get_a_summary() {
        let mut bad = sample_report();
        bad.verdict = Verdict::Unhealthy;
        bad.failure = Some(Failure::new(Reason::ConnectRefused, "connection refused"));
        let text = render(&[outcome(sample_report()), outcome(bad)], false);
        assert!(
            text.ends_with("\n1 of 2 targets fail: 1 healthy, 1 unhealthy\n"),
            "{text}"
        );
        assert_eq!(text.matches("http://127.0.0.1:8080/mcp").count(), 2);
    }
}
