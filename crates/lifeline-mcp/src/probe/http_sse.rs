//! Probing the deprecated HTTP+SSE transport (2024-11-05 `basic/transports` §HTTP with SSE): GET opens the
//! stream, whose first event `endpoint` names where to POST; every response arrives on the stream. The session
//! ends when the stream closes.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::Method;
use serde_json::Value;

use super::auth;
use super::ctx::Ctx;
use super::http::{
    http_status_failure, read_body, response_in_event, snippet, Exchange, HttpClient, SseReader,
};
use super::report::{Failure, Phase};
use super::steps::{self, rpc_failure, Channel};
use crate::era::{self, Era, TransportKind};
use crate::jsonrpc::{self, RpcError};
use crate::sse;
use crate::verdict::{Reason, Warning};

/// Opens the stream on `client` (whose URL is the SSE endpoint) and runs the whole probe over it.
pub(crate) async fn run(ctx: &mut Ctx<'_>, mut client: HttpClient) -> Result<(), Failure> {
    let url = client.url.clone();
    let t = ctx.clock(Phase::SseEndpoint);
    let resp = client
        .send(ctx, Phase::SseEndpoint, |c| {
            c.request(
                Method::GET,
                &url,
                &[("accept", "text/event-stream".to_owned())],
                Bytes::new(),
            )
        })
        .await?;
    let status = resp.status();
    let is_sse = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
    if auth::is_auth_challenge(status, resp.headers()) {
        let headers = resp.headers().clone();
        return Err(auth::auth_required(ctx, &url, status, &headers, Phase::SseEndpoint).await);
    }
    if !status.is_success() || !is_sse {
        let body = read_body(ctx, Phase::SseEndpoint, resp.into_body(), 64 * 1024)
            .await
            .unwrap_or_default();
        let what = String::from_utf8_lossy(&body);
        return Err(Failure::new(
            Reason::NotMcp,
            format!(
                "GET is not an SSE stream (HTTP {}, {})",
                status.as_u16(),
                snippet(&what)
            ),
        )
        .in_phase(Phase::SseEndpoint)
        .with_status(status.as_u16()));
    }
    if !resp
        .headers()
        .get("x-accel-buffering")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("no"))
    {
        ctx.warn(Warning::MissingXAccelBuffering);
    }
    let mut stream = Stream(SseReader::new(resp.into_body(), ctx.opts.max_reply_bytes));
    let endpoint = ctx
        .bounded(Phase::SseEndpoint, ctx.opts.timeouts.step, async {
            loop {
                let event = stream
                    .next_event(ctx.opts.max_reply_bytes, Phase::SseEndpoint)
                    .await?;
                if event.kind() == "endpoint" {
                    return Ok(event.data);
                }
            }
        })
        .await?;
    let endpoint = url.join(endpoint.trim()).map_err(|e| {
        Failure::new(
            Reason::ProtocolError,
            format!("the endpoint event is not a URL: {e}"),
        )
        .in_phase(Phase::SseEndpoint)
    })?;
    if endpoint.origin() != url.origin() {
        // 2024-11-05: the endpoint must be on the same origin; POSTing elsewhere could leak credentials.
        return Err(Failure::new(
            Reason::ProtocolError,
            format!(
                "the endpoint event names another origin ({})",
                endpoint.origin().ascii_serialization()
            ),
        )
        .in_phase(Phase::SseEndpoint));
    }
    ctx.time(Phase::SseEndpoint, t);
    ctx.era = Some(Era::Sse);
    ctx.transport = Some(TransportKind::HttpSse);
    ctx.warn(Warning::DeprecatedTransport);

    let poster = client.sibling(endpoint.clone());
    let mut ch = SseChannel {
        poster,
        endpoint,
        stream,
        stream_client: client,
    };
    let result = session(&mut ch, ctx).await;
    // Closing the stream ends the session (2024-11-05 `basic/transports` §HTTP with SSE).
    let t = ctx.clock(Phase::Close);
    drop(ch);
    ctx.time(Phase::Close, t);
    result
}

async fn session(ch: &mut SseChannel, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let t = ctx.clock(Phase::Initialize);
    let r = ch
        .call(
            ctx,
            Phase::Initialize,
            "initialize",
            era::initialize_params(&ctx.opts.client_name, &ctx.opts.client_version),
        )
        .await;
    ctx.time(Phase::Initialize, t);
    let result = r?;
    steps::accept_initialize(ctx, &result, Era::Sse)?;

    let t = ctx.clock(Phase::Initialized);
    let r = ch
        .post(
            ctx,
            Phase::Initialized,
            jsonrpc::notification("notifications/initialized", Value::Null),
        )
        .await;
    ctx.time(Phase::Initialized, t);
    r?;
    steps::after_handshake(ch, ctx).await
}

/// The session's long-lived stream.
struct Stream(SseReader);

impl Stream {
    /// The next event; the stream closing is a `protocol_error`.
    async fn next_event(&mut self, limit: usize, phase: Phase) -> Result<sse::Event, Failure> {
        // The stream is long-lived: `limit` bounds what one wait may read (the caller resets the count), not the
        // stream's lifetime total.
        self.0
            .next_event(limit, phase, too_large)
            .await?
            .ok_or_else(|| {
                Failure::new(Reason::ProtocolError, "the server closed the SSE stream")
                    .in_phase(phase)
            })
    }
}

fn too_large(phase: Phase, e: sse::TooLarge) -> Failure {
    Failure::new(
        Reason::ProtocolError,
        format!("the SSE stream sent too much: {e}"),
    )
    .in_phase(phase)
}

struct SseChannel {
    poster: HttpClient,
    endpoint: url::Url,
    stream: Stream,
    // Keeps the GET connection (and so the session) open until the channel is dropped.
    #[allow(dead_code)]
    stream_client: HttpClient,
}

impl SseChannel {
    /// POSTs a message; the answer is 202 (or any 2xx) with the response, if any, on the stream.
    async fn post(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        body: Vec<u8>,
    ) -> Result<Option<Result<Value, RpcError>>, Failure> {
        let endpoint = self.endpoint.clone();
        match self
            .poster
            .post_rpc(ctx, phase, &endpoint, &[], body, None)
            .await?
        {
            Exchange::Http { status, .. } if status.is_success() => Ok(None),
            Exchange::Rpc { outcome, .. } => Ok(Some(outcome)),
            Exchange::Http {
                status,
                headers,
                body,
            } => {
                if auth::is_auth_challenge(status, &headers) {
                    return Err(auth::auth_required(ctx, &endpoint, status, &headers, phase).await);
                }
                if status == http::StatusCode::NOT_FOUND {
                    return Err(Failure::new(
                        Reason::SessionLost,
                        "the message endpoint answered 404",
                    )
                    .in_phase(phase)
                    .with_status(404));
                }
                Err(http_status_failure(status, &body, phase))
            }
        }
    }
}

impl Channel for SseChannel {
    async fn call(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        method: &str,
        params: Value,
    ) -> Result<Value, Failure> {
        let id = ctx.next_id();
        if let Some(outcome) = self
            .post(ctx, phase, jsonrpc::request(id, method, params))
            .await?
        {
            return outcome.map_err(|e| rpc_failure(phase, method, e));
        }
        let limit = ctx.opts.max_reply_bytes;
        let stream = &mut self.stream;
        stream.0.read = 0;
        let outcome = ctx
            .bounded(phase, ctx.opts.timeouts.step, async {
                loop {
                    let event = stream.next_event(limit, phase).await?;
                    if let Some(outcome) = response_in_event(&event, id, phase)? {
                        return Ok(outcome);
                    }
                }
            })
            .await?;
        outcome.map_err(|e| rpc_failure(phase, method, e))
    }

    fn is_modern(&self) -> bool {
        false
    }
}
