//! Transparent recovery: a legacy session whose upstream is gone is re-initialized on a healthy endpoint with
//! the client's original `initialize` params (from its sealed id), sent `notifications/initialized`, and the
//! request goes on there; the client never re-initializes.
//!
//! **The design: the client's id never changes.** The spec defines `Mcp-Session-Id` only on the answer to
//! `initialize` (2025-11-25 `basic/transports` §Session Management 1), and the real clients disagree on a
//! later one: the TypeScript SDK (1.32.2, `StreamableHTTPClientTransport.send`) adopts an `Mcp-Session-Id`
//! from any POST answer, the Python SDK (2.3.0, `StreamableHTTPTransport._handle_post_request`) only from the
//! answer to `initialize`. So the gateway keeps the client's token and each gateway replica recovers on its
//! own: the new upstream session is tracked in the replica's table (linked from the token's upstream id), so a
//! replica holds at most one upstream session per client session, ended by the idle sweeper like any other.
//! Two replicas that both see the session's endpoint gone each open their own upstream session.
//!
//! **What is replayed.** A request is sent again on the new session only when it certainly never ran on the
//! old one: the connection could not be made (refused: nothing was sent), or the old endpoint answered 404
//! for the session (it no longer has it: a restarted replica, or one that ended it while draining), or it
//! answered a 400 whose JSON-RPC error says the session is unknown (below). A request
//! that may have run there (a timeout after sending, a connection broken mid-answer) is not replayed: the proxy
//! answers it with a JSON-RPC error carrying its `id`, and the session recovers on the next request that finds
//! the endpoint gone. Server state held inside the lost replica is gone; the MCP session is not.
//!
//! **A 400 for an unknown session.** 2025-11-25 `basic/transports` §Session Management 3: a server that
//! terminated a session "MUST respond to requests containing that session ID with HTTP 404 Not Found" (and 2:
//! a 400 is for a request *without* a session id). server-everything (2026.8.31, `dist/transports/streamableHttp.js`)
//! answers an id it does not know, a restarted replica's old sessions included, with 400 and the JSON-RPC error
//! `-32000 "Bad Request: No valid session ID provided"`: a server bug, but a common one (older Python SDKs said
//! the same in plain text). The server rejected such a request before running it, so it is recovered and
//! replayed like a 404, on a narrow match only ([`says_session_unknown`]): status 400, a JSON body of at most
//! [`MAX_SESSION_400_BYTES`] with a `Content-Length`, a JSON-RPC 2.0 error whose message names the session as
//! unknown or invalid ([`UNKNOWN_SESSION_PHRASES`]). Any other 400 (a bad protocol version, a malformed
//! request) goes back to the client as it came.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;

use super::{Sessions, Unsealed};
use crate::body::Body;
use crate::proxy::{served_by, session_id, SESSION_HEADER};
use crate::upstream::{Endpoint, EndpointRef, Forward, Forwarded, Route, Upstream, UpstreamError};

/// Bound on the answer to the recovery's `initialize` the gateway reads (and discards): 1 MiB.
const MAX_INIT_ANSWER_BYTES: usize = 1024 * 1024;
/// The JSON-RPC id of the recovery's `initialize` (the client never sees its answer).
const RECOVERY_ID: &str = "lifeline-recover";
/// Endpoints a recovery's `initialize` tries before giving up.
const RECOVERY_ATTEMPTS: usize = 3;
/// Longest 400 answer read to tell whether it says the session is unknown: 4 KiB (server-everything's is 110
/// bytes). A longer one, or one without a `Content-Length`, is relayed unread.
const MAX_SESSION_400_BYTES: u64 = 4096;
/// Bound on reading such an answer.
const SESSION_400_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// What a 400's JSON-RPC error message says (lower-cased, as a substring) when the server does not know the
/// session: server-everything's "No valid session ID provided", and the wordings of other servers that answer
/// 400 where the spec says 404.
const UNKNOWN_SESSION_PHRASES: [&str; 4] = [
    "no valid session",
    "invalid session",
    "unknown session",
    "session not found",
];

/// Forwards `fwd` (a request of the session `unsealed`, if any) and recovers the session when its upstream is
/// gone: on a connect failure, a 404, or a 400 saying the session is unknown (module docs) from the endpoint, the
/// session is re-initialized on the balancer's
/// choice and `fwd` is sent again there. A new session that is gone at once too (a 404 to the replay: an
/// endpoint that started draining between the recovery's `initialize` and the replay ended it) is recovered
/// again, at most [`RECOVERY_ATTEMPTS`] recoveries a request. Without a sealed id carrying `initialize` params
/// this is `upstream.forward(fwd)`.
///
/// Errors: as `Upstream::forward`; when the recovery itself fails, the last attempt's outcome is returned
/// (the client then sees the 502 or the 404, and re-initializes on its own).
pub(crate) async fn forward(
    sessions: &Sessions,
    upstream: &Upstream,
    fwd: Forward,
    unsealed: Option<&Unsealed>,
    subject: Option<&str>,
) -> Result<Response<Body>, UpstreamError> {
    match unsealed.filter(|u| u.sealed.init_params.is_some() && upstream.pool().is_some()) {
        None => upstream.forward(fwd).await,
        // Boxed: the recovery's state (its `initialize`, the replays) stays out of the future of every request,
        // which is moved whole at each await on the way down (issue 17: those copies were a large share of the
        // instructions per request).
        Some(u) => Box::pin(forward_recovering(sessions, upstream, fwd, u, subject)).await,
    }
}

/// [`forward`] for a sealed session that can be recovered.
async fn forward_recovering(
    sessions: &Sessions,
    upstream: &Upstream,
    fwd: Forward,
    u: &Unsealed,
    subject: Option<&str>,
) -> Result<Response<Body>, UpstreamError> {
    let (method, endpoint, mut headers, body, forwarded) = (
        fwd.method.clone(),
        fwd.endpoint.clone(),
        fwd.headers.clone(),
        fwd.body.clone(),
        fwd.forwarded.clone(),
    );
    let mut last = upstream.forward(fwd).await;
    // The upstream id the last attempt carried: a recovery replaces it.
    let mut failed: Box<str> = u.current.clone();
    for attempt in 0..=RECOVERY_ATTEMPTS {
        let gone;
        (gone, last) = match last {
            Err(e @ UpstreamError::Connect(_)) => (true, Err(e)),
            Ok(resp) if resp.status() == StatusCode::NOT_FOUND => (true, Ok(resp)),
            Ok(resp) if resp.status() == StatusCode::BAD_REQUEST => unknown_session_400(resp).await,
            Err(e @ (UpstreamError::Timeout(_) | UpstreamError::Protocol(_))) => {
                // It may have run there: answered with the JSON-RPC error, never replayed.
                sessions.count_recovery("in_flight_error");
                (false, Err(e))
            }
            other => (false, other),
        };
        if !gone {
            return last;
        }
        if attempt == RECOVERY_ATTEMPTS {
            break;
        }
        let Some((id, home)) = sessions
            .reinitialize(upstream, u, &failed, &headers, subject)
            .await
        else {
            sessions.count_recovery("failed");
            return last;
        };
        drop(last);
        let Ok(value) = HeaderValue::from_str(&id) else {
            return Err(UpstreamError::Protocol(
                "the recovered session id is not a header value".into(),
            ));
        };
        headers.insert(SESSION_HEADER, value);
        last = upstream
            .forward(Forward {
                method: method.clone(),
                endpoint: endpoint.clone(),
                headers: headers.clone(),
                body: body.clone(),
                route: Route::to(home.as_ref()),
                forwarded: forwarded.clone(),
            })
            .await;
        failed = id;
    }
    sessions.count_recovery("failed");
    last
}

impl Sessions {
    /// Opens a new upstream session for the client session `u`, whose upstream session `failed` is gone (one
    /// recovery at a time per client session; a recovery that finished meanwhile, to another id, is reused)
    /// and returns its id and endpoint; `None` when it failed.
    async fn reinitialize(
        &self,
        upstream: &Upstream,
        u: &Unsealed,
        failed: &str,
        client_headers: &HeaderMap,
        subject: Option<&str>,
    ) -> Option<(Box<str>, Option<EndpointRef>)> {
        let original = u.sealed.upstream_id.as_str();
        let lock = self.recovery_lock(original);
        let _held = lock.lock().await;
        if let Some(m) = self.moved().get(original) {
            if *m.id != *failed {
                return Some((m.id.clone(), m.home.clone()));
            }
        }
        let params = u.sealed.init_params.as_deref()?;
        let mut headers = client_headers.clone();
        headers.remove(SESSION_HEADER);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        let init = format!(
            r#"{{"jsonrpc":"2.0","id":"{RECOVERY_ID}","method":"initialize","params":{params}}}"#
        );
        // A draining endpoint refuses the initialize (503, and the pool stops choosing it) or ends the new
        // session before its `notifications/initialized` (404), or no connection could be made: try another, at
        // most RECOVERY_ATTEMPTS times.
        let mut minted = None;
        for _ in 0..RECOVERY_ATTEMPTS {
            let resp = match upstream
                .forward(post(headers.clone(), init.clone(), Route::Balanced))
                .await
            {
                Ok(r) => r,
                Err(err) => {
                    // The balancer's two picks were refused too (replicas dying at once, not ejected yet): the
                    // pool counted it, the next attempt picks among the others.
                    tracing::warn!(error = %err, "Session recovery: the initialize found no endpoint.");
                    continue;
                }
            };
            let status = resp.status();
            let id = session_id(resp.headers());
            let home = served_by(&resp);
            let answer = read_bounded(resp).await;
            let Some(id) =
                id.filter(|_| status.is_success() && answer.is_some_and(|a| !is_error(&a)))
            else {
                tracing::warn!(%status, "Session recovery: an endpoint refused the initialize.");
                continue;
            };
            let Ok(value) = HeaderValue::from_str(&id) else {
                return None;
            };
            let mut with_id = headers.clone();
            with_id.insert(SESSION_HEADER, value);
            let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned();
            match upstream
                .forward(post(with_id, note, Route::to(home.as_ref())))
                .await
            {
                Ok(r) if r.status().is_success() => {
                    let _ = read_bounded(r).await;
                    minted = Some((id, home));
                    break;
                }
                other => {
                    tracing::warn!(status = ?other.as_ref().map(|r| r.status()).ok(), "Session recovery: notifications/initialized was refused.");
                }
            }
        }
        let (id, home) = minted?;
        self.count_recovery("recovered");
        tracing::info!(
            from = %u.sealed.endpoint,
            to = home.as_ref().map_or("", |h| h.label()),
            "Session recovered on another endpoint."
        );
        self.record_move(original, &id, home.clone(), subject);
        Some((id.into(), home))
    }
}

fn post(headers: HeaderMap, body: String, route: Route) -> Forward {
    Forward {
        method: Method::POST,
        endpoint: Endpoint::Mcp,
        headers,
        body: Bytes::from(body),
        route,
        // The gateway's own requests (the client's replayed request keeps its fields).
        forwarded: Forwarded::default(),
    }
}

/// The whole answer, at most [`MAX_INIT_ANSWER_BYTES`] (an SSE answer ends when the server closes the stream
/// after its response), within 30 s; `None` when it broke, was too long or too slow.
async fn read_bounded(resp: Response<Body>) -> Option<Bytes> {
    let mut body = resp.into_body();
    let read = async {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.ok()?.into_data() {
                if out.len() + data.len() > MAX_INIT_ANSWER_BYTES {
                    return None;
                }
                out.extend_from_slice(&data);
            }
        }
        Some(Bytes::from(out))
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .ok()
        .flatten()
}

/// Reads a 400 answer that may say the session is unknown (a small JSON body with a `Content-Length`, read within
/// [`SESSION_400_READ_TIMEOUT`]) and returns whether it does ([`says_session_unknown`]) with the answer rebuilt
/// from the bytes read; any other 400 comes back unread. A body that breaks while read is a protocol error.
async fn unknown_session_400(
    resp: Response<Body>,
) -> (bool, Result<Response<Body>, UpstreamError>) {
    // Only the headers are looked at here (the closure borrowing the answer ends before the read below).
    let small_json = {
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let json = header(CONTENT_TYPE).is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
        let small = header(CONTENT_LENGTH)
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n <= MAX_SESSION_400_BYTES);
        json && small
    };
    if !small_json {
        return (false, Ok(resp));
    }
    let (parts, body) = resp.into_parts();
    let bytes = match tokio::time::timeout(SESSION_400_READ_TIMEOUT, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) => {
            return (
                false,
                Err(UpstreamError::Protocol(format!(
                    "reading a 400 answer: {e}"
                ))),
            )
        }
        Err(_) => {
            return (
                false,
                Err(UpstreamError::Protocol(
                    "a 400 answer's body did not arrive in time".to_owned(),
                )),
            )
        }
    };
    let unknown = says_session_unknown(&bytes);
    if unknown {
        tracing::debug!(
            "Upstream answered 400 for an unknown session (the spec says 404): recovering."
        );
    }
    (
        unknown,
        Ok(Response::from_parts(parts, crate::body::full(bytes))),
    )
}

/// Whether `body` is a JSON-RPC 2.0 error answer whose message says the session is unknown or invalid (one of
/// [`UNKNOWN_SESSION_PHRASES`], case-insensitive): the narrow match that lets a 400 count as the spec's 404
/// (module docs).
fn says_session_unknown(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    if v.get("jsonrpc").and_then(|j| j.as_str()) != Some("2.0") {
        return false;
    }
    let Some(message) = v
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
    else {
        return false;
    };
    let message = message.to_ascii_lowercase();
    UNKNOWN_SESSION_PHRASES.iter().any(|p| message.contains(p))
}

/// Whether an answer (JSON or SSE) carries a JSON-RPC error for the recovery's request.
fn is_error(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    text.contains(r#""error""#) && !text.contains(r#""result""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_json_rpc_error_naming_an_unknown_session_counts() {
        let cases: [(&str, bool); 9] = [
            // server-everything 2026.8.31, verbatim.
            (
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":7}"#,
                true,
            ),
            (
                r#"{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}"#,
                true,
            ),
            (
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Invalid session ID"}}"#,
                true,
            ),
            // A 400 the spec means: no session id at all, or a bad protocol version.
            (
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Mcp-Session-Id header is required"},"id":1}"#,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Unsupported protocol version"},"id":1}"#,
                false,
            ),
            // Not a JSON-RPC error: plain text, another JSON shape, a result.
            ("Bad Request: No valid session ID provided", false),
            (r#"{"error":"no valid session"}"#, false),
            (
                r#"{"jsonrpc":"2.0","result":{"note":"no valid session"},"id":1}"#,
                false,
            ),
            ("", false),
        ];
        for (body, want) in cases {
            assert_eq!(says_session_unknown(body.as_bytes()), want, "{body}");
        }
    }
}
