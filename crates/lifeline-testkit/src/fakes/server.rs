//! The accept loop shared by every fake: TCP (optionally TLS) connections served by hyper's HTTP/1 server, the
//! per-kind dispatch, and the counters a [`super::FakeServer`] exposes.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::failures;
use super::http_util::Body;
use super::legacy::{LegacyConfig, LegacyServer, ModernReject};
use super::legacy_sse::LegacySseServer;
use super::modern::ModernServer;
use super::{FakeKind, HealthyOpts};

/// How many JSON-RPC method names [`Stats`] remembers.
const RPC_LOG_CAPACITY: usize = 1024;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters and the last request, shared by the server tasks and the [`super::FakeServer`] guard.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) requests_total: AtomicU64,
    pub(crate) sessions_open: AtomicU64,
    last_headers: Mutex<Option<HeaderMap>>,
    rpc_methods: Mutex<VecDeque<String>>,
}

/// The per-kind request handler.
pub(crate) enum Behaviour {
    Hang,
    Static(failures::StaticReply),
    RpcError,
    UnsupportedVersion,
    Auth(failures::AuthGate, Arc<LegacyServer>),
    Legacy(Arc<LegacyServer>),
    Modern(ModernServer),
    LegacySse(LegacySseServer),
}

impl Stats {
    pub(crate) fn record_request(&self, headers: &HeaderMap) {
        self.requests_total.fetch_add(1, Ordering::SeqCst);
        *self
            .last_headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(headers.clone());
    }

    pub(crate) fn record_method(&self, method: &str) {
        let mut log = self
            .rpc_methods
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if log.len() == RPC_LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(method.to_owned());
    }

    pub(crate) fn session_opened(&self) {
        self.sessions_open.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn session_closed(&self) {
        // Saturating: a close is only ever recorded for an opened session, but never wrap if that changes.
        let _ = self
            .sessions_open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            });
    }

    pub(crate) fn last_headers(&self) -> Option<HeaderMap> {
        self.last_headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn rpc_methods(&self) -> Vec<String> {
        self.rpc_methods
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

impl Behaviour {
    /// Builds the handler for `kind`, served at `base_url` (`scheme://127.0.0.1:P`). `ClosedPort` never gets
    /// here; it maps to [`Behaviour::Hang`] for completeness.
    pub(crate) fn new(kind: FakeKind, base_url: &str, stats: Arc<Stats>) -> Behaviour {
        let legacy = |opts: HealthyOpts, tweak: fn(&mut LegacyConfig)| {
            let mut config = LegacyConfig::healthy(opts);
            tweak(&mut config);
            Arc::new(LegacyServer::new(config, Arc::clone(&stats)))
        };
        match kind {
            FakeKind::ClosedPort | FakeKind::AcceptThenHang => Behaviour::Hang,
            FakeKind::BadGateway502 => Behaviour::Static(failures::StaticReply::BadGateway),
            FakeKind::Html200 => Behaviour::Static(failures::StaticReply::Html),
            FakeKind::InvalidJson => Behaviour::Static(failures::StaticReply::TruncatedJson),
            FakeKind::RpcError => Behaviour::RpcError,
            FakeKind::UnsupportedVersion => Behaviour::UnsupportedVersion,
            FakeKind::SlowInitialize { delay } => {
                let mut config = LegacyConfig::healthy(HealthyOpts::default());
                config.modern_reject = ModernReject::PlainText;
                config.init_delay = Some(delay);
                Behaviour::Legacy(Arc::new(LegacyServer::new(config, Arc::clone(&stats))))
            }
            FakeKind::SseNeverSends => Behaviour::Legacy(legacy(HealthyOpts::default(), |c| {
                c.modern_reject = ModernReject::PlainText;
                c.init_never_sends = true;
            })),
            FakeKind::SessionLost => Behaviour::Legacy(legacy(HealthyOpts::default(), |c| {
                c.modern_reject = ModernReject::PlainText;
                c.lose_sessions = true;
            })),
            FakeKind::AuthRequired { token } => Behaviour::Auth(
                failures::AuthGate::new(base_url, token),
                legacy(HealthyOpts::default(), |_| {}),
            ),
            FakeKind::Healthy(opts) => Behaviour::Legacy(legacy(opts, |_| {})),
            FakeKind::Modern(opts) => {
                Behaviour::Modern(ModernServer::new(opts, Arc::clone(&stats)))
            }
            FakeKind::LegacySse => Behaviour::LegacySse(LegacySseServer::new(Arc::clone(&stats))),
        }
    }

    async fn handle(&self, req: Request<Incoming>, stats: &Stats) -> Response<Body> {
        stats.record_request(req.headers());
        match self {
            // Unreachable: hanging kinds never run hyper. Answer something harmless rather than panic.
            Behaviour::Hang => failures::static_reply(failures::StaticReply::BadGateway),
            Behaviour::Static(kind) => failures::static_reply(*kind),
            Behaviour::RpcError => failures::rpc_error(req, stats).await,
            Behaviour::UnsupportedVersion => failures::unsupported_version(req, stats).await,
            Behaviour::Auth(gate, inner) => match gate.check(&req) {
                Some(rejection) => rejection,
                None => inner.handle(req).await,
            },
            Behaviour::Legacy(server) => server.handle(req).await,
            Behaviour::Modern(server) => server.handle(req).await,
            Behaviour::LegacySse(server) => server.handle(req).await,
        }
    }
}

/// Accepts connections until `shutdown` resolves (its sender is dropped), then drops every connection task.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    behaviour: Arc<Behaviour>,
    stats: Arc<Stats>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(
                        stream,
                        tls.clone(),
                        Arc::clone(&behaviour),
                        Arc::clone(&stats),
                    ));
                }
                Err(error) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::debug!(%error, "Fake server accept failed.");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

async fn serve_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    behaviour: Arc<Behaviour>,
    stats: Arc<Stats>,
) {
    if let Behaviour::Hang = *behaviour {
        stats.requests_total.fetch_add(1, Ordering::SeqCst);
        hang(stream).await;
        return;
    }
    let service = {
        let behaviour = Arc::clone(&behaviour);
        service_fn(move |req: Request<Incoming>| {
            let behaviour = Arc::clone(&behaviour);
            let stats = Arc::clone(&stats);
            async move { Ok::<_, Infallible>(behaviour.handle(req, &stats).await) }
        })
    };
    let builder = hyper::server::conn::http1::Builder::new();
    let result = match tls {
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => {
                    builder
                        .serve_connection(TokioIo::new(tls_stream), service)
                        .await
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "Fake server TLS handshake failed.");
                    return;
                }
                Err(_elapsed) => return,
            }
        }
        None => {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "Fake server connection ended with an error.");
    }
}

/// Reads and discards until the peer closes, never writing; then holds the socket until the task is aborted.
async fn hang(mut stream: TcpStream) {
    let mut sink = [0_u8; 4096];
    loop {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    std::future::pending::<()>().await;
}
