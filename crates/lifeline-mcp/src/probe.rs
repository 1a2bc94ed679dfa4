//! The probe sequence: era detection, handshake, `tools/list`, `ping`, the opt-in tool call and cleanup, with a
//! timing per phase and one verdict at the end.

pub mod card;
pub mod config;
pub mod oauth;
pub mod report;

mod auth;
pub(crate) mod ctx;
mod http;
mod http_sse;
mod stdio;
pub(crate) mod steps;
pub(crate) mod streamable;

pub use config::{
    CredentialExpiry, ProbeOptions, Secret, StdioCommand, Target, Timeouts, ToolCall,
};
pub use oauth::{
    ClientAuth, OAuthClient, OAuthConfig, OAuthStats, RefreshTokenStore, SecretSource,
};
pub use report::{
    AuthInfo, CredentialKind, CredentialStatus, Failure, Phase, ProbeReport, ServerInfo, Timings,
    TlsInfo, ToolCallOutcome,
};

use ctx::{ms, Ctx};

use crate::verdict::{Reason, Verdict, Warning};

/// Probes `target` once and reports what a client would see.
///
/// Never fails: every failure becomes a report with a verdict other than `healthy` and one [`crate::Reason`].
/// Takes at most `opts.timeouts.total`, plus up to two seconds to end a legacy session or to shut a stdio child
/// down when an earlier step used the whole budget. Never leaves a legacy session open on a server that lets
/// clients end it, and never opens a standalone GET stream on Streamable HTTP.
pub async fn probe(target: &Target, opts: &ProbeOptions) -> ProbeReport {
    let started_at = ProbeReport::now_rfc3339();
    let mut ctx = Ctx::new(opts);
    ctx.trace(target);
    let result = match target {
        Target::Http(url) => streamable::run(&mut ctx, url.clone()).await,
        Target::Stdio(cmd) => stdio::run(&mut ctx, cmd).await,
    };
    finish(ctx, target.label(), started_at, result)
}

/// Turns what the probe found into the report and its one verdict.
fn finish(
    mut ctx: Ctx<'_>,
    url: String,
    started_at: String,
    result: Result<(), Failure>,
) -> ProbeReport {
    let total = ctx.started.elapsed();
    ctx.timings.add(Phase::Total, ms(total));
    let credentials = credential_statuses(&ctx.opts.credential_expiry);
    // The transactions have their own bounds (max_latency, timeout): they do not make the probe `slow`.
    let transactions_ms = ctx.timings.get(Phase::Transactions).unwrap_or_default();
    let probe_only =
        total.saturating_sub(std::time::Duration::from_secs_f64(transactions_ms / 1000.0));
    let failure = match result {
        Err(f) => Some(f),
        Ok(()) => {
            // Degraded findings, most urgent first; the others become a warning.
            let mut degraded = Vec::new();
            if let Some(call) = &ctx.tool_call {
                if call.is_error {
                    degraded.push(
                        Failure::new(
                            Reason::ToolError,
                            format!("tools/call {} returned isError: true", call.name),
                        )
                        .in_phase(Phase::ToolsCall),
                    );
                }
            }
            if let Some(days) = ctx.tls.as_ref().and_then(|t| t.days_left) {
                if days < ctx.opts.cert_warning_days {
                    degraded.push(Failure::new(
                        Reason::CertExpiring,
                        format!("the certificate expires in {days} days"),
                    ));
                }
            }
            if let Some(c) = credentials
                .iter()
                .filter(|c| c.days_left < ctx.opts.credential_warning_days)
                .min_by_key(|c| c.days_left)
            {
                let when = if c.days_left < 0 {
                    format!("expired {} days ago", -c.days_left)
                } else {
                    format!("expires in {} days", c.days_left)
                };
                degraded.push(Failure::new(
                    Reason::CredentialExpiring,
                    format!("{} {when} ({})", c.kind.describe(), c.expires_at),
                ));
            }
            if probe_only > ctx.opts.slow_after {
                degraded.push(Failure::new(
                    Reason::Slow,
                    format!(
                        "the probe took {} ms (bound {} ms)",
                        probe_only.as_millis(),
                        ctx.opts.slow_after.as_millis()
                    ),
                ));
            }
            if degraded.len() > 1 {
                ctx.warn(Warning::AlsoDegraded);
            }
            degraded.into_iter().next()
        }
    };
    ctx.end_trace(failure.as_ref());
    let transactions = match (ctx.transactions.take(), &ctx.opts.transactions, &failure) {
        (Some(ran), _, _) => ran,
        (None, Some(set), Some(f)) => crate::transaction::not_run(set, f),
        (None, Some(set), None) => crate::transaction::not_run(
            set,
            &Failure::new(
                Reason::ProtocolError,
                "the session ended before the transactions",
            ),
        ),
        (None, None, _) => Vec::new(),
    };
    let tools = ctx.tools.take().unwrap_or_default();
    let listed = ctx.timings.get(Phase::ToolsList).is_some();
    ProbeReport {
        url,
        verdict: failure
            .as_ref()
            .map_or(Verdict::Healthy, |f| f.reason.verdict()),
        reason: failure.as_ref().map(|f| f.reason),
        failure,
        era: ctx.era,
        transport: ctx.transport,
        protocol_version: ctx.protocol_version,
        server_info: ctx.server_info,
        capabilities: ctx.capabilities,
        tools_count: listed.then_some(tools.len()),
        schema_hash: listed.then(|| crate::schema::schema_hash(&tools)),
        timings_ms: ctx.timings,
        tls: ctx.tls,
        auth: ctx.auth,
        tool_call: ctx.tool_call,
        credentials,
        warnings: ctx.warnings.into_iter().collect(),
        started_at,
        transactions,
        tools,
    }
}

/// The configured expiry dates as the report shows them, with whole days left from now (rounded down).
fn credential_statuses(expiries: &[config::CredentialExpiry]) -> Vec<CredentialStatus> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    expiries
        .iter()
        .map(|e| CredentialStatus {
            kind: e.kind,
            expires_at: time::OffsetDateTime::from_unix_timestamp(e.expires_at_unix)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            days_left: (e.expires_at_unix - now).div_euclid(86_400),
        })
        .collect()
}
