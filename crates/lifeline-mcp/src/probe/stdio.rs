//! Probing a stdio server: start the child, detect the era with `server/discover`, run the steps, and shut the
//! child down in the spec's order.
//!
//! Spec: 2026-07-28 `basic/transports/stdio` (§Backward Compatibility: probe with `server/discover`, fall back on
//! any error that is not a recognized modern error or on silence); 2025-11-25 `basic/transports` §stdio and
//! `basic/lifecycle` §Shutdown (close stdin, wait, SIGTERM, wait, SIGKILL).

use std::time::Duration;

use lifeline_core::child::{self, LineRead};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

use super::config::StdioCommand;
use super::ctx::{timeout_failure, Ctx};
use super::report::{Failure, Phase, ServerInfo};
use super::steps::{self, rpc_failure, Channel};
use crate::era::{self, modern_error, Era, TransportKind, MODERN_VERSION};
use crate::jsonrpc::{self, Message, RpcError};
use crate::verdict::Reason;

/// Each shutdown step's wait: after closing stdin, after SIGTERM, after SIGKILL.
const SHUTDOWN_STEP: Duration = Duration::from_millis(1500);
/// The tail of the child's stderr kept for error messages: 4 KiB.
const STDERR_TAIL_BYTES: usize = 4096;

/// Starts the child, probes it, and always shuts it down.
pub(crate) async fn run(ctx: &mut Ctx<'_>, cmd: &StdioCommand) -> Result<(), Failure> {
    ctx.transport = Some(TransportKind::Stdio);
    let t = ctx.clock(Phase::Spawn);
    let child = spawn(cmd)?;
    ctx.time(Phase::Spawn, t);
    let (mut process, group) = (child.process, child.group);
    let stderr_task = tokio::spawn(tail(child.stderr));
    let mut ch = StdioChannel {
        stdin: Some(child.stdin),
        stdout: BufReader::new(child.stdout),
        modern: false,
        line: Vec::new(),
    };
    let result = session(&mut ch, ctx).await;
    let t = ctx.clock(Phase::Close);
    // 2025-11-25 `basic/lifecycle` §Shutdown (stdio): close stdin first, then the staged signals.
    drop(ch);
    let status = child::stop(&mut process, group, SHUTDOWN_STEP)
        .await
        .map(|s| s.to_string());
    ctx.time(Phase::Close, t);
    let stderr = collect_tail(stderr_task).await;
    result.map_err(|mut f| {
        if f.message.contains("exited") || f.message.contains("closed its stdout") {
            if let Some(status) = status {
                f.message.push_str(&format!(" ({status})"));
            }
            if !stderr.trim().is_empty() {
                f.message
                    .push_str(&format!("; stderr: {}", last_line(&stderr)));
            }
        }
        f
    })
}

fn spawn(cmd: &StdioCommand) -> Result<child::Spawned, Failure> {
    child::spawn(&child::Spec {
        program: &cmd.program,
        args: &cmd.args,
        env: &cmd.env,
        inherit_env: cmd.inherit_env,
        cwd: cmd.cwd.as_deref(),
    })
    .map_err(|e| {
        Failure::new(
            Reason::ConnectRefused,
            format!("cannot start {:?}: {e}", cmd.program),
        )
        .in_phase(Phase::Spawn)
    })
}

async fn session(ch: &mut StdioChannel, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let mut pending_discover = None;
    if matches!(ctx.opts.era_hint, era::EraHint::Auto | era::EraHint::Modern) {
        let t = ctx.clock(Phase::Discover);
        let modern = discover(ch, ctx).await;
        ctx.time(Phase::Discover, t);
        match modern? {
            Discovered::Modern => {
                ch.modern = true;
                return steps::after_handshake(ch, ctx).await;
            }
            Discovered::Legacy => {}
            Discovered::Silent(id) => pending_discover = Some(id),
        }
        if ctx.opts.era_hint == era::EraHint::Modern {
            return Err(Failure::new(
                Reason::UnsupportedVersion,
                "the server does not speak the modern era",
            )
            .in_phase(Phase::Discover));
        }
    }
    let t = ctx.clock(Phase::Initialize);
    let id = ctx.next_id();
    let params = era::initialize_params(&ctx.opts.client_name, &ctx.opts.client_version);
    ch.send(&ctx.traced(jsonrpc::request(id, "initialize", params)))
        .await
        .map_err(|f| f.in_phase(Phase::Initialize))?;
    // A server that was only slow to start may still answer the discover probe first: a modern answer wins (the
    // initialize it then rejects is ignored), anything else waits for the initialize response.
    let ids: Vec<i64> = pending_discover.into_iter().chain([id]).collect();
    let outcome = loop {
        let (got, outcome) = ctx
            .bounded(
                Phase::Initialize,
                ctx.opts.timeouts.step,
                ch.response_any(ctx, &ids, Phase::Initialize),
            )
            .await
            .inspect_err(|_| ctx.time(Phase::Initialize, t))?;
        if Some(got) != pending_discover {
            break outcome;
        }
        if let Ok(result) = &outcome {
            if modern_result(ctx, result)? {
                ctx.time(Phase::Initialize, t);
                ch.modern = true;
                return steps::after_handshake(ch, ctx).await;
            }
        }
    };
    ctx.time(Phase::Initialize, t);
    let result = outcome.map_err(|e| rpc_failure(Phase::Initialize, "initialize", e))?;
    steps::accept_initialize(ctx, &result, Era::Legacy)?;
    let t = ctx.clock(Phase::Initialized);
    let r = ch
        .send(&ctx.traced(jsonrpc::notification(
            "notifications/initialized",
            Value::Null,
        )))
        .await;
    ctx.time(Phase::Initialized, t);
    r.map_err(|f| f.in_phase(Phase::Initialized))?;
    steps::after_handshake(ch, ctx).await
}

/// The outcome of the `server/discover` era probe.
enum Discovered {
    Modern,
    Legacy,
    /// No answer within the wait: taken as legacy, but the answer to this id may still come.
    Silent(i64),
}

async fn discover(ch: &mut StdioChannel, ctx: &mut Ctx<'_>) -> Result<Discovered, Failure> {
    let id = ctx.next_id();
    let params = era::modern_params(Value::Null, &ctx.opts.client_name, &ctx.opts.client_version);
    ch.send(&ctx.traced(jsonrpc::request(id, "server/discover", params)))
        .await
        .map_err(|f| f.in_phase(Phase::Discover))?;
    let wait = ctx.budget(Some(ctx.opts.stdio_discover_wait));
    let outcome = match tokio::time::timeout(wait, ch.response_any(ctx, &[id], Phase::Discover))
        .await
    {
        Err(_) if ctx.remaining().is_zero() => return Err(timeout_failure(Phase::Discover, wait)),
        // Silence: a legacy server that ignores unknown requests before initialize, or a slow start.
        Err(_) => return Ok(Discovered::Silent(id)),
        Ok(r) => r?.1,
    };
    match outcome {
        Ok(result) => Ok(if modern_result(ctx, &result)? {
            Discovered::Modern
        } else {
            Discovered::Legacy
        }),
        Err(e) if e.code == modern_error::UNSUPPORTED_PROTOCOL_VERSION => {
            let legacy_ok = e
                .data
                .as_ref()
                .and_then(|d| d.get("supported"))
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().filter_map(Value::as_str).any(era::is_known_legacy));
            if legacy_ok {
                Ok(Discovered::Legacy)
            } else {
                Err(rpc_failure(Phase::Discover, "server/discover", e))
            }
        }
        Err(e) if modern_error::is_recognized(e.code) => {
            Err(rpc_failure(Phase::Discover, "server/discover", e))
        }
        // The fallback must not be keyed to one error code (stdio §Backward Compatibility).
        Err(_) => Ok(Discovered::Legacy),
    }
}

/// Reads a `DiscoverResult`: `Ok(true)` (and the server's facts recorded) when it supports the modern version,
/// `Ok(false)` when it is not a modern result or lists only legacy versions, an error when no version is shared.
fn modern_result(ctx: &mut Ctx<'_>, result: &Value) -> Result<bool, Failure> {
    let supported: Vec<&str> = result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if supported.contains(&MODERN_VERSION) {
        ctx.era = Some(Era::Modern);
        ctx.protocol_version = Some(MODERN_VERSION.to_owned());
        ctx.server_info = result
            .get("_meta")
            .and_then(|m| m.get(era::META_SERVER_INFO))
            .map(server_info);
        ctx.capabilities = result.get("capabilities").cloned();
        Ok(true)
    } else if supported.is_empty() || supported.iter().any(|v| era::is_known_legacy(v)) {
        Ok(false)
    } else {
        Err(Failure::new(
            Reason::UnsupportedVersion,
            format!("the server supports {}", supported.join(", ")),
        )
        .in_phase(Phase::Discover))
    }
}

fn server_info(v: &Value) -> ServerInfo {
    ServerInfo {
        name: v.get("name").and_then(Value::as_str).map(str::to_owned),
        version: v.get("version").and_then(Value::as_str).map(str::to_owned),
    }
}

struct StdioChannel {
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    modern: bool,
    line: Vec<u8>,
}

impl StdioChannel {
    async fn send(&mut self, message: &[u8]) -> Result<(), Failure> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Failure::new(Reason::ProtocolError, "stdin is closed"))?;
        // Messages are newline-delimited and MUST NOT contain embedded newlines (serde_json never writes one).
        let mut framed = Vec::with_capacity(message.len() + 1);
        framed.extend_from_slice(message);
        framed.push(b'\n');
        stdin.write_all(&framed).await.map_err(|e| {
            Failure::new(
                Reason::ProtocolError,
                format!("the server exited or closed its stdin: {e}"),
            )
        })?;
        stdin
            .flush()
            .await
            .map_err(|e| Failure::new(Reason::ProtocolError, format!("the server exited: {e}")))
    }

    /// Reads lines until the response to `id`. Notifications are skipped; a server request is answered with
    /// "method not found" (the probe declares no client capabilities). A line that is not JSON-RPC is a
    /// `protocol_error`: the server MUST NOT write anything else to stdout (2025-11-25 `basic/transports` §stdio).
    async fn response_any(
        &mut self,
        ctx: &Ctx<'_>,
        ids: &[i64],
        phase: Phase,
    ) -> Result<(i64, Result<Value, RpcError>), Failure> {
        let limit = ctx.opts.max_reply_bytes;
        loop {
            let read = child::read_line(&mut self.stdout, &mut self.line, limit)
                .await
                .map_err(|e| {
                    Failure::new(Reason::ProtocolError, format!("reading stdout: {e}"))
                        .in_phase(phase)
                })?;
            match read {
                LineRead::Line(_) => {}
                LineRead::Eof => {
                    return Err(Failure::new(
                        Reason::ProtocolError,
                        "the server exited (closed its stdout) before answering",
                    )
                    .in_phase(phase))
                }
                LineRead::TooLong => {
                    return Err(Failure::new(
                        Reason::ProtocolError,
                        format!("a stdout line is longer than {limit} bytes"),
                    )
                    .in_phase(phase))
                }
            }
            let text = self.line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let value: Value = serde_json::from_slice(text).map_err(|_| {
                Failure::new(
                    Reason::ProtocolError,
                    format!(
                        "the server wrote a non-JSON line to stdout: {}",
                        super::http::snippet(&String::from_utf8_lossy(text))
                    ),
                )
                .in_phase(phase)
            })?;
            match Message::parse(value) {
                Ok(Message::Response { id: rid, outcome }) => {
                    if let Some(id) = ids
                        .iter()
                        .copied()
                        .find(|id| jsonrpc::id_matches(&rid, *id))
                    {
                        return Ok((id, outcome));
                    }
                }
                Ok(Message::Request { id: rid, .. }) => {
                    let reply = jsonrpc::error_response(
                        &rid,
                        jsonrpc::code::METHOD_NOT_FOUND,
                        "not supported by a probe",
                    );
                    let _ = self.send(&reply).await;
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(
                        Failure::new(Reason::ProtocolError, format!("stdout: {e}")).in_phase(phase)
                    );
                }
            }
        }
    }
}

impl Channel for StdioChannel {
    async fn call(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        method: &str,
        params: Value,
    ) -> Result<Value, Failure> {
        let id = ctx.next_id();
        let params = if self.modern {
            era::modern_params(params, &ctx.opts.client_name, &ctx.opts.client_version)
        } else {
            params
        };
        self.send(&ctx.traced(jsonrpc::request(id, method, params)))
            .await
            .map_err(|f| f.in_phase(phase))?;
        let (_, outcome) = ctx
            .bounded(
                phase,
                ctx.opts.timeouts.step,
                self.response_any(ctx, &[id], phase),
            )
            .await?;
        outcome.map_err(|e| rpc_failure(phase, method, e))
    }

    fn is_modern(&self) -> bool {
        self.modern
    }
}

/// Keeps the last [`STDERR_TAIL_BYTES`] of a stream.
async fn tail(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut keep = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        keep.extend_from_slice(&buf[..n]);
        if keep.len() > STDERR_TAIL_BYTES {
            let cut = keep.len() - STDERR_TAIL_BYTES;
            keep.drain(..cut);
        }
    }
    keep
}

async fn collect_tail(mut task: JoinHandle<Vec<u8>>) -> String {
    // A grandchild may hold stderr open after the child is gone: don't wait for it.
    match tokio::time::timeout(Duration::from_millis(200), &mut task).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => {
            task.abort();
            String::new()
        }
    }
}

fn last_line(s: &str) -> String {
    let line = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().take(200).collect()
}
