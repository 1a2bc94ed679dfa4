//! The Server Card part of `lifeline check` (issue 16 §Discovery): after the probe of a Streamable HTTP target
//! that answered, GET `<url>/server-card` (experimental-ext-server-card `docs/discovery.md` §Hosted Server Card
//! Location) and compare it with what the server said (`lifeline_mcp::probe::card::check`: name, version, the
//! protocol version spoken; cards list no tools). A finding only: it never changes the verdict or the exit code
//! (the card is advisory: §Consistency with Runtime Behavior). Shown as the `card` line of the human output and
//! the `card` object of `--json` (docs/check-json.md).

use futures_util::StreamExt as _;
use lifeline_mcp::probe::card::{self, CardCheck};
use lifeline_mcp::{ProbeReport, Target, TransportKind};

use super::plan::Plan;

/// One card check per report (same order as `plan.targets`); `None` for a stdio or HTTP+SSE target, one whose
/// probe never reached an MCP server (no `serverInfo`), and every target with `--no-card`.
pub(crate) async fn check_all(plan: &Plan, reports: &[ProbeReport]) -> Vec<Option<CardCheck>> {
    futures_util::stream::iter(plan.targets.iter().zip(reports))
        .map(|(target, report)| async move {
            let Target::Http(url) = target else {
                return None;
            };
            let asked = plan.card
                && report.server_info.is_some()
                && report.transport == Some(TransportKind::StreamableHttp);
            if !asked {
                return None;
            }
            Some(card::check(url, report, &plan.options).await)
        })
        .buffered(usize::from(plan.concurrency))
        .collect()
        .await
}

/// The human `card` line(s): presence and agreement, then one `warning` per disagreement and a `note` per
/// problem.
pub(crate) fn human_lines(c: &CardCheck) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !c.present {
        let why = match (c.status, &c.error) {
            (Some(s), _) => format!("HTTP {s}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "no answer".to_owned(),
        };
        out.push(("card", format!("none at {} ({why})", c.url)));
        return out;
    }
    let state = if c.disagreements.is_empty() {
        "agrees with the server"
    } else {
        "disagrees with the server"
    };
    out.push(("card", format!("{} {state}", c.url)));
    for d in &c.disagreements {
        out.push((
            "warning",
            format!(
                "card_mismatch: {}: the card says {:?}, the server says {:?}",
                d.field, d.card, d.server
            ),
        ));
    }
    for p in &c.problems {
        out.push(("", format!("card: {p}")));
    }
    out
}
