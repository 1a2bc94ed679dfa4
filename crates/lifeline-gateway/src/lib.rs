//! lifeline-gateway (work in progress).
