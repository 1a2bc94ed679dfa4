//! `report.html`: one self-contained file (inline CSS and a few lines of JS, no external asset) with the summary,
//! its charts (verdict share, reasons, latency distribution: inline SVG from [`super::chart`]) and a table of
//! every endpoint. The table is readable without JavaScript; with it, column headers sort and a
//! box filters rows. Rows are streamed to a side file while the scan runs and stitched in at the end, so the
//! report costs no memory per endpoint.
//!
//! The markup is written with `maud`, which HTML-escapes every interpolated value; text a server or the input
//! controls (URLs, names, `serverInfo`, failure messages, labels) also goes through [`Clean`], which replaces
//! control characters. `PreEscaped` is used only for the static stylesheet, script and table skeleton.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use lifeline_mcp::probe::Phase;
use lifeline_mcp::ProbeReport;
use maud::{html, Markup, PreEscaped, Render};

use super::chart::{latency_histogram, share_bars};
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

/// Text a server or the input controls, rendered escaped (by maud's `str` renderer) with control characters
/// other than newline and tab replaced by U+FFFD, so a hostile `serverInfo` cannot smuggle them into the page.
struct Clean<'a>(&'a str);

impl Render for Clean<'_> {
    fn render_to(&self, buffer: &mut String) {
        let unwanted = |c: char| c.is_control() && c != '\n' && c != '\t';
        if self.0.contains(unwanted) {
            let cleaned: String = self
                .0
                .chars()
                .map(|c| if unwanted(c) { '\u{fffd}' } else { c })
                .collect();
            cleaned.as_str().render_to(buffer);
        } else {
            self.0.render_to(buffer);
        }
    }
}

fn cell(text: &str) -> Markup {
    html! { td { (Clean(text)) } }
}

fn num_cell(value: Option<f64>, shown: &str) -> Markup {
    html! {
        @match value {
            Some(v) => td class="n" data-v=(v) { (Clean(shown)) },
            None => td class="n" data-v="" {},
        }
    }
}

/// The `server` column: `name version`, trimmed.
fn server_text(r: &ProbeReport) -> String {
    r.server_info
        .as_ref()
        .map(|i| {
            format!(
                "{} {}",
                i.name.as_deref().unwrap_or(""),
                i.version.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The `detail` column of a probed endpoint: the failure message, after the HTTP status if there is one.
fn detail_text(r: &ProbeReport) -> String {
    let failure = r.failure.as_ref();
    let detail = failure.map(|f| f.message.clone()).unwrap_or_default();
    match failure.and_then(|f| f.http_status) {
        Some(status) => format!("HTTP {status}: {detail}"),
        None => detail,
    }
}

fn row(record: &ScanRecord) -> String {
    let c = record.category.as_str();
    html! {
        tr class={ "c-" (c) } {
            td class="url" { (Clean(record.url.as_str())) }
            (cell(record.name.as_deref().unwrap_or("")))
            td data-v=(record.category.rank()) { span class={ "badge " (c) } { (c) } }
            @match &record.outcome {
                Outcome::Probed(r) => {
                    (cell(r.reason.map_or("", |x| x.as_str())))
                    td class="msg" { (Clean(&detail_text(r))) }
                    (cell(r.era.map_or("", |e| e.as_str())))
                    (cell(r.protocol_version.as_deref().unwrap_or("")))
                    (cell(&server_text(r)))
                    (num_cell(r.tools_count.map(|n| n as f64), &opt(r.tools_count)))
                    @let total = r.timings_ms.get(Phase::Total);
                    (num_cell(total, &total.map(|ms| format!("{ms:.0} ms")).unwrap_or_default()))
                    @let days = r.tls.as_ref().and_then(|t| t.days_left);
                    (num_cell(days.map(|d| d as f64), &opt(days)))
                    @let warnings: Vec<&str> = r.warnings.iter().map(|w| w.as_str()).collect();
                    (cell(&warnings.join(" ")))
                }
                Outcome::Refused { refusal, .. } => {
                    (cell(""))
                    td class="msg" {
                        (Clean(&format!("not probed: resolves to {} ({})", refusal.refused, refusal.range)))
                    }
                    @for _ in 0..3 { (cell("")) }
                    @for _ in 0..3 { (num_cell(None, "")) }
                    (cell(""))
                }
            }
            (num_cell(Some(f64::from(record.attempts)), &record.attempts.to_string()))
        }
        "\n"
    }
    .into_string()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn share_table(title: &str, shares: &[Share]) -> Markup {
    html! {
        @if !shares.is_empty() {
            section {
                h2 { (title) }
                table class="small" {
                    tbody {
                        @for x in shares {
                            tr {
                                td { (Clean(&x.label)) }
                                td class="n" { (x.count) }
                                td class="n" { (format!("{:.1}%", x.percent)) }
                            }
                        }
                    }
                }
            }
            "\n"
        }
    }
}

fn latency_row(label: &str, l: &Option<Latency>) -> Markup {
    html! {
        tr {
            td { (label) }
            @match l {
                Some(l) => {
                    td class="n" { (l.count) }
                    td class="n" { (l.p50) " ms" }
                    td class="n" { (l.p90) " ms" }
                    td class="n" { (l.p99) " ms" }
                    td class="n" { (l.max) " ms" }
                }
                None => { td class="n" { "0" } td {} td {} td {} td {} }
            }
        }
    }
}

fn head(summary: &SummaryReport) -> String {
    let run = &summary.run;
    let settings = &run.settings;
    html! {
        // `html` and `body` are left open here: the rows are streamed in after, and TAIL closes them.
        (PreEscaped("<!doctype html>\n<html lang=\"en\">"))
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width,initial-scale=1";
            title { "MCP census: " (summary.endpoints) " endpoints" }
            style { (PreEscaped(STYLE)) }
        }
        (PreEscaped("<body>"))
        "\n"
        header {
            h1 { "MCP census" }
            p {
                (summary.endpoints) " endpoints from " code { (Clean(&run.input)) } ", started "
                (Clean(&summary.started_at)) ", "
                (format!("{:.1} s ({:.1} probes/s)", run.elapsed_s, summary.probes_per_s))
                ". Concurrency " (settings.concurrency) ", " (settings.per_host) " per host, "
                (settings.attempts) " attempt(s), "
                (format!("timeout {:.0} s, latency bound {:.0} s", settings.timeout_s, settings.latency_bound_s))
                @if settings.allow_private { ", private addresses allowed" }
                "."
            }
            @if run.partial {
                p class="partial" {
                    "Partial report" @if run.interrupted { " (interrupted)" } ": "
                    (run.abandoned) " probes abandoned in flight, " (run.not_started)
                    " endpoints not started."
                }
            }
            @if let Some(err) = &run.input_error {
                p class="partial" { "Input error: " (Clean(err)) }
            }
        }
        "\n"
        section class="cards" {
            @for x in &summary.categories {
                div class={ "card " (Clean(&x.label)) } {
                    div class="big" { (x.count) }
                    div { (Clean(&x.label)) }
                    div class="pct" { (format!("{:.1}%", x.percent)) }
                }
            }
        }
        "\n"
        div class="stack" role="img" aria-label="categories" {
            @for x in summary.categories.iter().filter(|x| x.count > 0) {
                span class=(Clean(&x.label)) style=(format!("width:{:.2}%", x.percent))
                    title={ (Clean(&x.label)) (format!(" {:.1}%", x.percent)) } {}
            }
        }
        "\n"
        section class="charts" {
            figure {
                figcaption { "Verdict share" }
                (share_bars(
                    &summary.categories,
                    |l| Category::ALL.iter().find(|c| c.as_str() == l).map(|c| c.as_str()),
                    Clean,
                    "share of endpoints per category",
                ))
            }
            figure {
                figcaption { "Reasons (not healthy)" }
                (share_bars(&summary.reasons, |_| None, Clean, "endpoints per failure reason"))
            }
            figure {
                figcaption {
                    "Latency distribution (total probe, ms) "
                    span class="key usable" {} " usable " span class="key other" {} " other probed"
                }
                (latency_histogram(&summary.latency_histogram))
            }
        }
        "\n"
        div class="grid" {
            (share_table("Reasons", &summary.reasons))
            (share_table("Eras", &summary.eras))
            (share_table("Protocol versions", &summary.protocol_versions))
            (share_table("Transports", &summary.transports))
            (share_table("Warnings", &summary.warnings))
            section {
                h2 { "Latency (total probe)" }
                table class="small" {
                    thead { tr { th {} th { "n" } th { "p50" } th { "p90" } th { "p99" } th { "max" } } }
                    tbody {
                        (latency_row("usable", &summary.latency_usable_ms))
                        (latency_row("all probed", &summary.latency_probed_ms))
                    }
                }
            }
            "\n"
            section {
                h2 {
                    "Certificates expiring within " (summary.cert_window_days) " days: "
                    (summary.certs_expiring)
                }
                @if !summary.certs.is_empty() {
                    table class="small" {
                        tbody {
                            @for c in &summary.certs {
                                tr {
                                    td class="n" { (c.days_left) " d" }
                                    td { (Clean(&c.url)) }
                                    td { (Clean(c.not_after.as_deref().unwrap_or(""))) }
                                }
                            }
                        }
                    }
                }
            }
            "\n"
            @if let Some(diff) = &summary.diff {
                section {
                    h2 { "Changes since " code { (Clean(&diff.baseline)) } }
                    table class="small" {
                        tbody {
                            @for (kind, n) in &diff.counts {
                                tr {
                                    td { (Clean(kind)) }
                                    td class="n" {
                                        @if kind == "gone" && diff.gone_not_computed {
                                            "not computed"
                                        } @else {
                                            (n)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    ul {
                        @for c in &diff.samples {
                            li {
                                (c.kind.as_str()) ": " code { (Clean(&c.url)) } " "
                                (c.before.map_or("-", Category::as_str)) " → "
                                (c.after.map_or("-", Category::as_str))
                            }
                        }
                    }
                }
                "\n"
            }
            @if !summary.skipped.is_empty() {
                section {
                    h2 { "Skipped input entries" }
                    table class="small" {
                        tbody {
                            @for (k, n) in &summary.skipped {
                                tr { td { (Clean(k)) } td class="n" { (n) } }
                            }
                        }
                    }
                }
                "\n"
            }
        }
        "\n"
        (PreEscaped(ENDPOINTS_OPEN))
    }
    .into_string()
}

/// The end of [`head`]: the endpoints section up to the open `<tbody>` the streamed rows go into ([`TAIL`]
/// closes it, `body` and `html`). Static text, no interpolation.
const ENDPOINTS_OPEN: &str = "<section><h2>Endpoints</h2><p class=\"hint\"><label>Filter <input id=\"q\" type=\"search\" \
     placeholder=\"text in any column\"></label> Click a column header to sort.</p>\
     <div class=\"wrap\"><table id=\"endpoints\"><thead><tr><th>URL</th><th>name</th><th>category</th>\
     <th>reason</th><th>detail</th><th>era</th><th>protocol</th><th>server</th><th>tools</th><th>total</th>\
     <th>TLS days</th><th>warnings</th><th>attempts</th></tr></thead><tbody>\n";

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
:root{--healthy:#1a7f37;--degraded:#9a6700;--auth_gated:#0969da;--broken:#cf222e;--dead:#57606a;--refused_private:#8250df;}\
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
.wrap{overflow-x:auto}#endpoints{width:100%;font-size:13px}#endpoints th{position:sticky;top:0;background:#f6f8fa;cursor:pointer}\
#endpoints td.url{word-break:break-all;min-width:16rem}#endpoints td.msg{max-width:28rem;color:#57606a}\
.badge{color:#fff;border-radius:10px;padding:0 .45rem;font-size:12px;white-space:nowrap}\
.hint{color:#57606a}footer{color:#57606a;margin-top:1rem}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:.5rem 1.5rem;margin:0 0 .8rem}\
figure{margin:0}figcaption{font-weight:600;margin:.3rem 0}.chart{display:block;max-width:520px;font-size:11px}\
.chart text{fill:currentColor}.chart .lbl{text-anchor:end}.chart .mid{text-anchor:middle}.chart .tick{font-size:9px}\
.chart .bar.plain,.chart .other,.key.other{fill:#8c959f;background:#8c959f}.chart .usable,.key.usable{fill:var(--healthy);background:var(--healthy)}\
.chart .bar.healthy{fill:var(--healthy)}.chart .bar.degraded{fill:var(--degraded)}.chart .bar.auth_gated{fill:var(--auth_gated)}\
.chart .bar.broken{fill:var(--broken)}.chart .bar.dead{fill:var(--dead)}.chart .bar.refused_private{fill:var(--refused_private)}\
.key{display:inline-block;width:.7rem;height:.7rem;border-radius:2px;vertical-align:middle}\
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
        // maud escapes `&`, `<`, `>` and `"`; a `'` is harmless in text and in the double-quoted attributes maud
        // writes.
        assert_eq!(
            html! { (Clean("<script>alert('x')&\"</script>")) }.into_string(),
            "&lt;script&gt;alert('x')&amp;&quot;&lt;/script&gt;"
        );
        assert_eq!(
            html! { td title=(Clean("a\u{7}b\tc\nd")) { (Clean("\u{1b}[31m")) } }.into_string(),
            "<td title=\"a\u{fffd}b\tc\nd\">\u{fffd}[31m</td>"
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

    /// A report with everything a server or the input controls made hostile.
    fn hostile_report(dir: &std::path::Path) -> String {
        let path = dir.join("report.html");
        let mut w = HtmlWriter::create(&path).unwrap();
        let mut summary = Summary::new(14);
        let mut bad = record(
            "https://a.example/mcp?x=<script>&y=\"1\"",
            Verdict::Unhealthy,
            Some(Reason::RpcError),
        );
        if let Outcome::Probed(rep) = &mut bad.outcome {
            rep.failure.as_mut().unwrap().message =
                "<img src=x onerror=alert(1)> & 'q' \u{7}".into();
            rep.failure.as_mut().unwrap().http_status = Some(502);
            rep.server_info = Some(lifeline_mcp::probe::ServerInfo {
                name: Some("<script>alert('x')</script> \"q\" & co".into()),
                version: Some("1.0 <b>".into()),
            });
        }
        bad.name = Some("name <script> & \"quoted\"".into());
        for r in [
            record("https://h.example/mcp", Verdict::Healthy, None),
            bad,
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
                input: "servers <&>.txt".into(),
                input_error: Some("line 3: <bad> & \"worse\"".into()),
                ..RunFacts::default()
            },
            None,
        );
        w.finish(&report).unwrap();
        std::fs::read_to_string(&path).unwrap()
    }

    #[test]
    fn hostile_names_and_messages_are_escaped_in_the_whole_report() {
        let dir = tempfile::tempdir().unwrap();
        let html = hostile_report(dir.path());
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img") && !html.contains("<b>") && !html.contains("<bad>"));
        assert!(html.contains(
            "<td>&lt;script&gt;alert('x')&lt;/script&gt; &quot;q&quot; &amp; co 1.0 &lt;b&gt;</td>"
        ));
        assert!(html.contains("<td>name &lt;script&gt; &amp; &quot;quoted&quot;</td>"));
        assert!(html.contains(
            "<td class=\"msg\">HTTP 502: &lt;img src=x onerror=alert(1)&gt; &amp; 'q' \u{fffd}</td>"
        ));
        assert!(html.contains("<code>servers &lt;&amp;&gt;.txt</code>"));
        assert!(html.contains("Input error: line 3: &lt;bad&gt; &amp; &quot;worse&quot;"));
        // The URL is kept as the parser normalised it (percent-encoded), and the rows are all there.
        assert!(html
            .contains("<td class=\"url\">https://a.example/mcp?x=%3Cscript%3E&amp;y=%221%22</td>"));
        assert_eq!(html.matches("<tr class=\"c-").count(), 3);
        // The only script is the report's own, once, at the end.
        assert_eq!(html.matches("<script>").count(), 1);
        assert!(html.ends_with("</script>\n</body></html>\n"));
    }
}
