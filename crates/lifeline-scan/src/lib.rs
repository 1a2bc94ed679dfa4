//! lifeline-scan (work in progress).
