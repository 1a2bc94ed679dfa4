//! Lifeline's shared runtime primitives: the phased [`Shutdown`] token that every service's long-running loops
//! select on (the gateway, the monitor and the scan engine take one from their caller), the [`InFlight`] tracker
//! a drain waits on, the [`drain()`] driver that walks the phases on a timetable, [`supervise`] (what the binary
//! runs around a service: signals → drain → phases), process [`Signals`] (SIGTERM/SIGINT, with the second
//! signal meaning "exit now"), the orphan [`reaper`] for PID 1, [`child`] processes (spawn in a process group,
//! bounded line reads, the staged stop), tracing [`telemetry`] setup, the [`Secret`] string every config
//! redacts by type, and the shared half of the [`config`] recipe (the [`FieldErrors`] collector and value
//! parsers), and [`cpus`]: the runtime's worker count from the container's CPU quota.
//!
//! This crate owns no protocol and no service. It must not depend on any other Lifeline crate, must not read the
//! process environment (callers pass the log filter and the traces configuration in; [`cpus::read_cpu_quota`],
//! the one exception, reads the cgroup files and is called by the binary only) and never spawns a task of its
//! own, except the trace exporter's when traces are on: the SDK's batch thread and one task per export request,
//! both ended by `telemetry::shutdown`.

pub mod child;
pub mod config;
pub mod cpus;
pub mod drain;
pub mod inflight;
pub mod reaper;
pub mod secret;
pub mod shutdown;
pub mod signals;
pub mod telemetry;

pub use config::{ConfigError, FieldError, FieldErrors};
pub use drain::{drain, supervise, DrainOutcome, DrainPlan, Supervised};
pub use inflight::{InFlight, InFlightGuard};
pub use secret::Secret;
pub use shutdown::{Phase, Shutdown};
pub use signals::{SignalKind, Signals};
pub use telemetry::LogFormat;
