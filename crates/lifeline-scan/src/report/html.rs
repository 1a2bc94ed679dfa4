//! `report.html`: one self-contained file (inline CSS and a few lines of JS, no external asset) with the summary
//! and a table of every endpoint. The table is readable without JavaScript; with it, column headers sort and a
//! box filters rows. Rows are streamed to a side file while the scan runs and stitched in at the end, so the
//! report costs no memory per endpoint. Everything a server sent is HTML-escaped.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use lifeline_mcp::probe::Phase;

use crate::category::Category;
use crate::record::{Outcome, ScanRecord};
use crate::summary::{Latency, Share, SummaryReport};

/// Writes `report.html`.
pub(crate) struct HtmlWriter {
    path: PathBuf,
    rows_path: PathBuf,
    rows: BufWriter<File>,
}

impl HtmlWriter {
    pub(crate) fn create(path: &Path) -> io::Result<HtmlWriter> {
        let rows_path = path.with_extension("rows.partial");
        let rows = BufWriter::new(File::create(&rows_path)?);
        Ok(HtmlWriter {
            path: path.to_owned(),
            rows_path,
            rows,
        })
    }

    pub(crate) fn write(&mut self, record: &ScanRecord) -> io::Result<()> {
        self.rows.write_all(row(record).as_bytes())
    }

    pub(crate) fn finish(mut self, summary: &SummaryReport) -> io::Result<()> {
        self.rows.flush()?;
        drop(self.rows);
        let mut out = BufWriter::new(File::create(&self.path)?);
        out.write_all(head(summary).as_bytes())?;
        io::copy(&mut File::open(&self.rows_path)?, &mut out)?;
        out.write_all(TAIL.as_bytes())?;
        out.flush()?;
        fs::remove_file(&self.rows_path)
    }
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn cell(text: &str) -> String {
    format!("<td>{}</td>", esc(text))
}

fn num_cell(value: Option<f64>, shown: String) -> String {
    match value {
        Some(v) => format!("<td class=\"n\" data-v=\"{v}\">{}</td>", esc(&shown)),
        None => "<td class=\"n\" data-v=\"\"></td>".to_owned(),
    }
}

fn row(record: &ScanRecord) -> String {
    let c = record.category.as_str();
    let mut s = format!("<tr class=\"c-{c}\">");
    s.push_str(&format!(
        "<td class=\"url\">{}</td>",
        esc(record.url.as_str())
    ));
    s.push_str(&cell(record.name.as_deref().unwrap_or("")));
    s.push_str(&format!(
        "<td data-v=\"{}\"><span class=\"badge {c}\">{c}</span></td>",
        record.category.rank()
    ));
    match &record.outcome {
        Outcome::Probed(r) => {
            let failure = r.failure.as_ref();
            let mut detail = failure.map(|f| f.message.clone()).unwrap_or_default();
            if let Some(status) = failure.and_then(|f| f.http_status) {
                detail = format!("HTTP {status}: {detail}");
            }
            s.push_str(&cell(r.reason.map_or("", |x| x.as_str())));
            s.push_str(&format!("<td class=\"msg\">{}</td>", esc(&detail)));
            s.push_str(&cell(r.era.map_or("", |e| e.as_str())));
            s.push_str(&cell(r.protocol_version.as_deref().unwrap_or("")));
            let server = r
                .server_info
                .as_ref()
                .map(|i| {
                    format!(
                        "{} {}",
                        i.name.as_deref().unwrap_or(""),
                        i.version.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_default();
            s.push_str(&cell(server.trim()));
            s.push_str(&num_cell(
                r.tools_count.map(|n| n as f64),
                opt(r.tools_count),
            ));
            let total = r.timings_ms.get(Phase::Total);
            s.push_str(&num_cell(
                total,
                total.map(|ms| format!("{ms:.0} ms")).unwrap_or_default(),
            ));
            let days = r.tls.as_ref().and_then(|t| t.days_left);
            s.push_str(&num_cell(days.map(|d| d as f64), opt(days)));
            let warnings: Vec<&str> = r.warnings.iter().map(|w| w.as_str()).collect();
            s.push_str(&cell(&warnings.join(" ")));
        }
        Outcome::Refused { refusal, .. } => {
            s.push_str(&cell(""));
            let detail = format!(
                "not probed: resolves to {} ({})",
                refusal.refused, refusal.range
            );
            s.push_str(&format!("<td class=\"msg\">{}</td>", esc(&detail)));
            for _ in 0..3 {
                s.push_str(&cell(""));
            }
            for _ in 0..3 {
                s.push_str(&num_cell(None, String::new()));
            }
            s.push_str(&cell(""));
        }
    }
    s.push_str(&num_cell(
        Some(f64::from(record.attempts)),
        record.attempts.to_string(),
    ));
    s.push_str("</tr>\n");
    s
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn share_table(title: &str, shares: &[Share], bars: bool) -> String {
    if shares.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "<section><h2>{}</h2><table class=\"small\"><tbody>",
        esc(title)
    );
    let widest = shares.iter().map(|x| x.count).max().unwrap_or(1).max(1);
    for x in shares {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}%</td>",
            esc(&x.label),
            x.count,
            x.percent
        );
        if bars {
            let w = (x.count as f64 * 100.0 / widest as f64).max(0.5);
            let _ = write!(
                s,
                "<td class=\"bar\"><span style=\"width:{w:.1}%\"></span></td>"
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></section>\n");
    s
}

fn latency_row(label: &str, l: &Option<Latency>) -> String {
    match l {
        Some(l) => format!(
            "<tr><td>{label}</td><td class=\"n\">{}</td><td class=\"n\">{} ms</td><td class=\"n\">{} ms</td>\
             <td class=\"n\">{} ms</td><td class=\"n\">{} ms</td></tr>",
            l.count, l.p50, l.p90, l.p99, l.max
        ),
        None => format!("<tr><td>{label}</td><td class=\"n\">0</td><td></td><td></td><td></td><td></td></tr>"),
    }
}

fn head(summary: &SummaryReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>MCP census: {} endpoints</title><style>{STYLE}</style></head><body>\n",
        summary.endpoints
    );
    let _ = write!(
        s,
        "<header><h1>MCP census</h1><p>{} endpoints from <code>{}</code>, started {}, {:.1} s \
         ({:.1} probes/s). Concurrency {}, {} per host, {} attempt(s), timeout {:.0} s, latency bound {:.0} s{}.</p>",
        summary.endpoints,
        esc(&summary.run.input),
        esc(&summary.started_at),
        summary.run.elapsed_s,
        summary.probes_per_s,
        summary.run.settings.concurrency,
        summary.run.settings.per_host,
        summary.run.settings.attempts,
        summary.run.settings.timeout_s,
        summary.run.settings.latency_bound_s,
        if summary.run.settings.allow_private { ", private addresses allowed" } else { "" },
    );
    if summary.run.partial {
        let _ = write!(
            s,
            "<p class=\"partial\">Partial report{}: {} probes abandoned in flight, {} endpoints not started.</p>",
            if summary.run.interrupted { " (interrupted)" } else { "" },
            summary.run.abandoned,
            summary.run.not_started
        );
    }
    if let Some(err) = &summary.run.input_error {
        let _ = write!(s, "<p class=\"partial\">Input error: {}</p>", esc(err));
    }
    s.push_str("</header>\n<section class=\"cards\">");
    for x in &summary.categories {
        let _ = write!(
            s,
            "<div class=\"card {l}\"><div class=\"big\">{}</div><div>{l}</div><div class=\"pct\">{:.1}%</div></div>",
            x.count,
            x.percent,
            l = esc(&x.label)
        );
    }
    s.push_str("</section>\n<div class=\"stack\" role=\"img\" aria-label=\"categories\">");
    for x in summary.categories.iter().filter(|x| x.count > 0) {
        let _ = write!(
            s,
            "<span class=\"{l}\" style=\"width:{:.2}%\" title=\"{l} {:.1}%\"></span>",
            x.percent,
            x.percent,
            l = esc(&x.label)
        );
    }
    s.push_str("</div>\n<div class=\"grid\">");
    s.push_str(&share_table("Reasons", &summary.reasons, true));
    s.push_str(&share_table("Eras", &summary.eras, false));
    s.push_str(&share_table(
        "Protocol versions",
        &summary.protocol_versions,
        false,
    ));
    s.push_str(&share_table("Transports", &summary.transports, false));
    s.push_str(&share_table("Warnings", &summary.warnings, false));
    s.push_str(
        "<section><h2>Latency (total probe)</h2><table class=\"small\"><thead><tr><th></th><th>n</th><th>p50</th>\
         <th>p90</th><th>p99</th><th>max</th></tr></thead><tbody>",
    );
    s.push_str(&latency_row("usable", &summary.latency_usable_ms));
    s.push_str(&latency_row("all probed", &summary.latency_probed_ms));
    s.push_str("</tbody></table></section>\n");
    let _ = write!(
        s,
        "<section><h2>Certificates expiring within {} days: {}</h2>",
        summary.cert_window_days, summary.certs_expiring
    );
    if !summary.certs.is_empty() {
        s.push_str("<table class=\"small\"><tbody>");
        for c in &summary.certs {
            let _ = write!(
                s,
                "<tr><td class=\"n\">{} d</td><td>{}</td><td>{}</td></tr>",
                c.days_left,
                esc(&c.url),
                esc(c.not_after.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");
    if let Some(diff) = &summary.diff {
        let _ = write!(
            s,
            "<section><h2>Changes since <code>{}</code></h2><table class=\"small\"><tbody>",
            esc(&diff.baseline)
        );
        for (kind, n) in &diff.counts {
            let shown = if kind == "gone" && diff.gone_not_computed {
                "not computed".to_owned()
            } else {
                n.to_string()
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(kind),
                esc(&shown)
            );
        }
        s.push_str("</tbody></table><ul>");
        for c in &diff.samples {
            let _ = write!(
                s,
                "<li>{}: <code>{}</code> {} → {}</li>",
                c.kind.as_str(),
                esc(&c.url),
                c.before.map_or("-", Category::as_str),
                c.after.map_or("-", Category::as_str)
            );
        }
        s.push_str("</ul></section>\n");
    }
    if !summary.skipped.is_empty() {
        s.push_str("<section><h2>Skipped input entries</h2><table class=\"small\"><tbody>");
        for (k, n) in &summary.skipped {
            let _ = write!(s, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", esc(k));
        }
        s.push_str("</tbody></table></section>\n");
    }
    s.push_str(
        "</div>\n<section><h2>Endpoints</h2><p class=\"hint\"><label>Filter <input id=\"q\" type=\"search\" \
         placeholder=\"text in any column\"></label> Click a column header to sort.</p>\
         <div class=\"wrap\"><table id=\"endpoints\"><thead><tr><th>URL</th><th>name</th><th>category</th>\
         <th>reason</th><th>detail</th><th>era</th><th>protocol</th><th>server</th><th>tools</th><th>total</th>\
         <th>TLS days</th><th>warnings</th><th>attempts</th></tr></thead><tbody>\n",
    );
    s
}

const TAIL: &str = "</tbody></table></div></section>\n<footer>Generated by <code>lifeline scan</code>.</footer>\n\
<script>\n(function(){\nvar t=document.getElementById('endpoints');if(!t)return;var b=t.tBodies[0];\n\
function key(td){var v=td.getAttribute('data-v');if(v!==null){return v===''?Infinity:parseFloat(v);}return td.textContent.toLowerCase();}\n\
Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){th.tabIndex=0;th.title='sort';var asc=true;\n\
function sort(){var rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){var a=key(x.cells[i]),c=key(y.cells[i]);\n\
if(a<c)return asc?-1:1;if(a>c)return asc?1:-1;return 0;});rows.forEach(function(r){b.appendChild(r);});\n\
Array.prototype.forEach.call(t.tHead.rows[0].cells,function(h){h.removeAttribute('aria-sort');});th.setAttribute('aria-sort',asc?'ascending':'descending');asc=!asc;}\n\
th.addEventListener('click',sort);th.addEventListener('keydown',function(e){if(e.key==='Enter')sort();});});\n\
var q=document.getElementById('q');q.addEventListener('input',function(){var s=q.value.toLowerCase();\n\
Array.prototype.forEach.call(b.rows,function(r){r.style.display=!s||r.textContent.toLowerCase().indexOf(s)>=0?'':'none';});});\n\
})();\n</script>\n</body></html>\n";

const STYLE: &str = "\
:root{--healthy:#1a7f37;--degraded:#bf8700;--auth_gated:#0969da;--broken:#cf222e;--dead:#57606a;--refused_private:#8250df;}\
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1400px;padding:1rem;color:#1f2328;}\
h1{margin:.2rem 0}h2{font-size:1.05rem;margin:.6rem 0 .3rem}code{font-size:.92em}\
.partial{background:#fff8c5;border:1px solid #d4a72c;padding:.4rem .6rem;border-radius:6px}\
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:.8rem 0}\
.card{flex:1 1 120px;border:1px solid #d0d7de;border-left:6px solid #999;border-radius:6px;padding:.4rem .7rem}\
.card .big{font-size:1.6rem;font-weight:600}.card .pct{color:#57606a}\
.card.healthy{border-left-color:var(--healthy)}.card.degraded{border-left-color:var(--degraded)}\
.card.auth_gated{border-left-color:var(--auth_gated)}.card.broken{border-left-color:var(--broken)}\
.card.dead{border-left-color:var(--dead)}.card.refused_private{border-left-color:var(--refused_private)}\
.stack{display:flex;height:14px;border-radius:4px;overflow:hidden;margin-bottom:1rem;background:#eaeef2}\
.stack span{display:block;height:100%}\
.stack .healthy,.badge.healthy{background:var(--healthy)}.stack .degraded,.badge.degraded{background:var(--degraded)}\
.stack .auth_gated,.badge.auth_gated{background:var(--auth_gated)}.stack .broken,.badge.broken{background:var(--broken)}\
.stack .dead,.badge.dead{background:var(--dead)}.stack .refused_private,.badge.refused_private{background:var(--refused_private)}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:0 1.5rem}\
table{border-collapse:collapse}td,th{padding:.2rem .45rem;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
td.bar{width:120px}td.bar span{display:block;height:.7rem;background:#8c959f;border-radius:2px}\
.wrap{overflow-x:auto}#endpoints{width:100%;font-size:13px}#endpoints th{position:sticky;top:0;background:#f6f8fa;cursor:pointer}\
#endpoints td.url{word-break:break-all;min-width:16rem}#endpoints td.msg{max-width:28rem;color:#57606a}\
.badge{color:#fff;border-radius:10px;padding:0 .45rem;font-size:12px;white-space:nowrap}\
.hint{color:#57606a}footer{color:#57606a;margin-top:1rem}\
@media (prefers-color-scheme:dark){body{background:#0d1117;color:#e6edf3}#endpoints th{background:#161b22}\
td,th{border-color:#30363d}.card{border-color:#30363d}.partial{background:#3b2e00}}";

#[cfg(test)]
mod tests {
    use lifeline_mcp::{Reason, Verdict};

    use super::*;
    use crate::summary::{RunFacts, Summary};
    use crate::testutil::record;

    #[test]
    fn escapes_everything_a_server_controls() {
        assert_eq!(
            esc("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
        let mut r = record(
            "https://a.example/mcp",
            Verdict::Unhealthy,
            Some(Reason::RpcError),
        );
        if let Outcome::Probed(rep) = &mut r.outcome {
            rep.failure.as_mut().unwrap().message = "<img src=x onerror=alert(1)>".into();
            rep.server_info = Some(lifeline_mcp::probe::ServerInfo {
                name: Some("</td><script>".into()),
                version: None,
            });
        }
        let html = row(&r);
        assert!(
            !html.contains("<img") && !html.contains("<script"),
            "{html}"
        );
        assert_eq!(html.matches("<td").count(), 13, "{html}");
    }

    #[test]
    fn whole_report_is_self_contained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        let mut w = HtmlWriter::create(&path).unwrap();
        let mut summary = Summary::new(14);
        for r in [
            record("https://a.example/mcp", Verdict::Healthy, None),
            record(
                "https://b.example/mcp",
                Verdict::Unhealthy,
                Some(Reason::Timeout),
            ),
        ] {
            w.write(&r).unwrap();
            summary.add(&r);
        }
        let report = summary.finish(
            RunFacts {
                partial: true,
                interrupted: true,
                ..RunFacts::default()
            },
            None,
        );
        w.finish(&report).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("Partial report (interrupted)"));
        assert_eq!(html.matches("<tr class=\"c-").count(), 2);
        assert!(
            !html.contains("http://") || !html.contains("src=\"http"),
            "no external assets"
        );
        assert!(!html.contains("<link") && !html.contains("src="));
        assert!(!dir.path().join("report.rows.partial").exists());
    }
}
