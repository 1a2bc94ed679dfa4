//! The HTTP/1.1 server of both listeners (the client listener and the admin listener): the accept loop (one task
//! per connection, `TCP_NODELAY`, a back-off after a failed accept) and the graceful close when told to stop.
//! Each connection is served by `conn.rs`, with the message syntax in `wire.rs` and request bodies in `body.rs`.
//!
//! This is the proxy path, the core the project writes itself (issue 17), for the reason the upstream client is
//! its own (`upstream/http/h1.rs`): hyper's server connection cost about 17.5k user-space instructions of a
//! proxied request's 42.7k (its dispatcher, the body channel, a second pass over every header), more than
//! nginx's whole request. Here the connection's task parses the head (`httparse`) into the `http` types the
//! handlers take, hands over a body that arrived with its head as one buffer, awaits the handler while watching
//! the socket for the client's close, and writes the head and a whole body in one call. hyper is still the
//! library the gateway's tests and fakes use; the shared message syntax is `crate::http1`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::body::Body;

mod body;
mod conn;
#[cfg(test)]
mod tests;
mod wire;

pub(crate) use body::RequestBody;

/// Bound on the wait for a request's head on a connection, idle keep-alive time included: 30 s.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Back-off after a failed `accept` (out of file descriptors, …).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `listener` until `stop` resolves, then asks every connection to finish its current response and
/// close (idle ones close at once), waiting at most `grace` for them.
pub(crate) async fn serve<H, Fut>(
    name: &'static str,
    listener: TcpListener,
    handler: H,
    stop: impl Future<Output = ()>,
    grace: Duration,
) where
    H: Fn(Request<RequestBody>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let opts = conn::Options {
        header_timeout: HEADER_READ_TIMEOUT,
    };
    serve_with(name, listener, handler, stop, grace, opts).await;
}

async fn serve_with<H, Fut>(
    name: &'static str,
    listener: TcpListener,
    handler: H,
    stop: impl Future<Output = ()>,
    grace: Duration,
    opts: conn::Options,
) where
    H: Fn(Request<RequestBody>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let (stopping, stopping_rx) = watch::channel(false);
    // Every connection holds a sender; `recv` returns `None` once the last one has gone.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!(listener = name, error = %err, "Accept failed.");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let stopping = stopping_rx.clone();
                let alive = alive.clone();
                tokio::spawn(async move {
                    conn::run(stream, peer, handler, stopping, opts).await;
                    drop(alive);
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(alive);
    if tokio::time::timeout(grace, all_closed.recv())
        .await
        .is_err()
    {
        tracing::debug!(
            listener = name,
            "Connections still open at exit; closing them."
        );
    }
}
