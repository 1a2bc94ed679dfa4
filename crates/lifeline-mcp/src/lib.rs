//! The MCP protocol as Lifeline speaks it: JSON-RPC and SSE framing, the two protocol eras and their versions,
//! the client transports (Streamable HTTP, HTTP+SSE, stdio), and the probe sequence that `check`, `scan`,
//! `monitor` and the gateway's `/ready` share, with its bounded vocabulary of verdicts and the tool-schema hash.
//!
//! This crate never reads the process environment, never exits the process and never spawns a task that outlives
//! the call that started it. It depends on no other Lifeline crate but `lifeline-core`. The one file it reads is a
//! secret the caller named (`probe::SecretSource::File`: an OAuth client secret, key or refresh token), when a
//! token is requested, so a rotated secret is used without a restart.
//!
//! Why our own client instead of an SDK (rmcp): a probe must time every phase (DNS, connect, TLS, first byte,
//! each MCP step), inspect the certificate even when verification fails, bound every read, speak both eras and the
//! deprecated HTTP+SSE transport, and classify each failure into one reason. No SDK exposes those seams, so the
//! prober owns its connection (tokio + rustls + hyper's HTTP/1 client connection) and uses plain `serde_json`
//! values for the few message shapes it reads.

pub mod era;
pub mod jsonrpc;
pub mod probe;
pub mod schema;
pub mod sse;
mod tls;
pub mod transaction;
pub mod verdict;

pub use era::{Era, EraHint, TransportKind};
pub use probe::{probe, ProbeOptions, ProbeReport, Target};
pub use verdict::{Reason, Verdict, Warning};
