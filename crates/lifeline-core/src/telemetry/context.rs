//! W3C Trace Context in and out of `tracing` spans, without exposing the OpenTelemetry types: read a
//! `traceparent`/`tracestate` pair (from HTTP headers or an MCP `_meta`) into a [`RemoteContext`], make it a
//! span's parent or link, and write a span's own context back out as a [`W3cContext`] to inject downstream.
//!
//! Sources: W3C Trace Context (`traceparent` = `version-traceid-parentid-flags`, `tracestate` list); MCP
//! 2026-07-28 `basic/index` §General fields `_meta` ("OpenTelemetry trace context": the `traceparent`,
//! `tracestate` and `baggage` keys are reserved for it); OpenTelemetry semantic conventions `gen-ai/mcp.md`
//! §Context propagation (inject into `params._meta`, extract on the receiver as the remote parent).
//! Only `traceparent` and `tracestate` are carried; `baggage` is not.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C `traceparent` header / `_meta` key.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C `tracestate` header / `_meta` key.
pub const TRACESTATE: &str = "tracestate";

/// A valid span context received from a peer (its `traceparent` parsed, `tracestate` kept).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteContext(SpanContext);

/// A span's context as W3C strings, ready to send: `traceparent` (`00-<trace id>-<span id>-<flags>`) and the
/// `tracestate` (empty when there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct W3cContext {
    /// `00-<32 hex>-<16 hex>-<2 hex>`.
    pub traceparent: String,
    /// The vendor list, possibly empty.
    pub tracestate: String,
}

impl RemoteContext {
    /// Parses a `traceparent` (and optional `tracestate`). `None` for anything W3C Trace Context rejects: a bad
    /// shape, version `ff`, an all-zero trace or span id.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<RemoteContext> {
        // The propagator accepts short ids (it parses them as numbers): check the field widths first.
        let widths = traceparent.trim().split('-').map(str::len);
        let lower_hex = |p: &str| {
            p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !widths.take(4).eq([2, 32, 16, 2]) || !traceparent.trim().split('-').all(lower_hex) {
            return None;
        }
        let carrier = Pair {
            traceparent,
            tracestate,
        };
        let cx = TraceContextPropagator::new().extract(&carrier);
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(RemoteContext(sc))
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        self.0.trace_id().to_string()
    }
}

/// Makes `remote` the OpenTelemetry parent of `span` (which must not have been entered yet). A no-op when traces
/// are off or the span is disabled.
pub fn set_parent(span: &tracing::Span, remote: &RemoteContext) {
    let cx = opentelemetry::Context::new().with_remote_span_context(remote.0.clone());
    let _ = span.set_parent(cx);
}

/// Adds `remote` as a link of `span` (the semantic conventions' advice for the transport's context when the MCP
/// message carried its own parent).
pub fn add_link(span: &tracing::Span, remote: &RemoteContext) {
    span.add_link(remote.0.clone());
}

/// The context to send downstream so the next hop continues `span`'s trace as its child. `None` when traces
/// are off or the span is disabled.
pub fn outgoing(span: &tracing::Span) -> Option<W3cContext> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut out = W3cContext {
        traceparent: String::new(),
        tracestate: String::new(),
    };
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    (!out.traceparent.is_empty()).then_some(out)
}

/// The trace id of `span` (32 lowercase hex digits) when its trace is sampled, i.e. will reach the collector:
/// what an exemplar links to. `None` otherwise.
pub fn sampled_trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    (sc.is_valid() && sc.is_sampled()).then(|| sc.trace_id().to_string())
}

struct Pair<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Pair<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

impl Injector for W3cContext {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = value,
            TRACESTATE => self.tracestate = value,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_parse_per_w3c() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let rc = RemoteContext::parse(good, Some("rojo=00f067aa0ba902b7")).expect("valid");
        assert_eq!(rc.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "not a traceparent",
        ] {
            assert!(RemoteContext::parse(bad, None).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn without_an_otel_layer_spans_have_no_context() {
        let span = tracing::info_span!("x");
        assert_eq!(outgoing(&span), None);
        assert_eq!(sampled_trace_id(&span), None);
    }
}
