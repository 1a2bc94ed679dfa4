//! Lifeline's shared runtime primitives: the shutdown signal that every long-running loop selects on,
//! process signal handling, and telemetry (tracing) setup.
//!
//! This crate owns no protocol and no service. It must not depend on any other Lifeline crate.
