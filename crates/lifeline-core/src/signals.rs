//! Process signals that ask a service to stop: SIGTERM (Kubernetes, Docker, systemd) and SIGINT (Ctrl-C, PM2).

use tokio::signal::unix::{signal, Signal, SignalKind as UnixSignalKind};

/// A stop signal received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
}

impl SignalKind {
    /// `SIGTERM` or `SIGINT`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Term => "SIGTERM",
            SignalKind::Int => "SIGINT",
        }
    }
}

/// Listens for SIGTERM and SIGINT from the moment it is created: once a service holds a `Signals`, those
/// signals no longer kill the process, they are delivered to [`Signals::recv`]. Create it early, before
/// binding listeners, so a signal during start-up is not lost.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers. Must be called inside a tokio runtime.
    ///
    /// Errors: the OS refused to install a handler.
    pub fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(UnixSignalKind::terminate())?,
            int: signal(UnixSignalKind::interrupt())?,
        })
    }

    /// The next stop signal. Cancel-safe: a signal that arrives while no one is waiting is kept for the next call.
    pub async fn recv(&mut self) -> SignalKind {
        tokio::select! {
            _ = self.term.recv() => SignalKind::Term,
            _ = self.int.recv() => SignalKind::Int,
        }
    }
}
