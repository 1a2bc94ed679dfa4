//! lifeline-monitor (work in progress).
