//! Domains in the input (issue 16 §Discovery): a bare host or an AI Catalog URL ([`crate::input::Domain`]) is
//! read as the extension `modelcontextprotocol/experimental-ext-server-card` tells a client to
//! (`docs/discovery.md` §Client Discovery Flow): fetch the catalog, keep the entries of type
//! `application/mcp-server-card+json`, take each card inline (`data`) or from its `url`, and scan the endpoints
//! of the card's `remotes` (`lifeline_mcp::probe::card`). Nothing is dropped silently: a domain without a catalog,
//! a catalog that lists no MCP card, a card that cannot be fetched or lists no connectable remote are each a
//! census row (the catalog's or the card's URL, `http_status`, `not_mcp` or the fetch's own failure).

use std::time::{Duration, Instant};

use lifeline_mcp::probe::card::{self, CardRef, CARD_MEDIA_TYPE, CATALOG_MEDIA_TYPE};
use lifeline_mcp::probe::{Failure, Phase, Timings};
use lifeline_mcp::{ProbeOptions, ProbeReport, Reason};
use url::Url;

use crate::input::{self, Endpoint};
use crate::record::{now_rfc3339, ScanRecord};

/// Most MCP card entries read from one catalog, and most endpoints taken from one domain: 100.
pub(super) const MAX_PER_DOMAIN: usize = 100;

/// What a domain gave.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// The endpoints to scan.
    pub(super) endpoints: Vec<Endpoint>,
    /// The rows of what could not be read (the catalog, a card).
    pub(super) rows: Vec<ScanRecord>,
}

/// Reads the catalog at `catalog` and its cards with `opts` (no credential is sent: both are public documents).
/// Card URLs on other hosts pass the address check unless `allow_private`.
pub(super) async fn discover(
    catalog: &Url,
    opts: &ProbeOptions,
    allow_private: bool,
    resolve_timeout: Duration,
) -> Found {
    let mut found = Found::default();
    let accept = format!("{CATALOG_MEDIA_TYPE}, application/json");
    let fetched = match card::fetch(catalog, &accept, opts).await {
        Ok(f) => f,
        Err(f) => return row(catalog, f),
    };
    if let Some(f) = card::catalog_failure(catalog, &fetched) {
        return row(catalog, f);
    }
    let doc = fetched.body.unwrap_or_default();
    let entries = match card::catalog_entries(&doc, catalog, MAX_PER_DOMAIN) {
        Ok(e) => e,
        Err(msg) => return row(catalog, not_mcp(format!("{catalog}: {msg}"))),
    };
    if entries.is_empty() {
        return row(
            catalog,
            not_mcp(format!(
                "the AI Catalog at {catalog} lists no MCP Server Card"
            )),
        );
    }
    for entry in entries {
        let (doc, at) = match entry.card {
            CardRef::Data(doc) => (doc, catalog.clone()),
            CardRef::Url(url) => {
                if !allow_private {
                    if let Some(refused) = super::admit(&url, None, resolve_timeout).await {
                        found.rows.push(refused);
                        continue;
                    }
                }
                match card::fetch(&url, CARD_MEDIA_TYPE, opts).await {
                    Ok(card::Fetched {
                        body: Some(doc), ..
                    }) => (doc, url),
                    Ok(f) => {
                        let mut fail = Failure::new(
                            Reason::HttpStatus,
                            format!("the Server Card at {url} did not come: HTTP {}", f.status),
                        )
                        .in_phase(Phase::Discover);
                        fail.http_status = Some(f.status);
                        found.rows.extend(row(&url, fail).rows);
                        continue;
                    }
                    Err(f) => {
                        found.rows.extend(row(&url, f).rows);
                        continue;
                    }
                }
            }
        };
        let name = doc["name"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| (!entry.identifier.is_empty()).then(|| entry.identifier.clone()));
        let urls = card::card_endpoints(&doc);
        if urls.is_empty() {
            found.rows.extend(
                row(
                    &at,
                    not_mcp(format!(
                        "the Server Card {} lists no connectable remote (streamable-http or sse, no URL template)",
                        name.as_deref().unwrap_or("(unnamed)")
                    )),
                )
                .rows,
            );
        }
        for url in urls {
            if found.endpoints.len() >= MAX_PER_DOMAIN {
                break;
            }
            if let Ok(url) = input::normalise(url.as_str()) {
                found.endpoints.push(Endpoint {
                    url,
                    name: name.clone(),
                });
            }
        }
    }
    found
}

fn not_mcp(message: String) -> Failure {
    Failure::new(Reason::NotMcp, message).in_phase(Phase::Discover)
}

/// One row for `url` that failed with `failure`.
fn row(url: &Url, failure: Failure) -> Found {
    let started_at = now_rfc3339();
    let t0 = Instant::now();
    let mut timings = Timings::default();
    timings.add(Phase::Total, t0.elapsed().as_secs_f64() * 1000.0);
    let report = ProbeReport::failed(url.to_string(), failure, timings, started_at);
    Found {
        endpoints: Vec::new(),
        rows: vec![ScanRecord::probed(url.clone(), None, 1, report)],
    }
}
