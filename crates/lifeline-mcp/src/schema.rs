//! Tool-schema canonical form, hash and drift (work in progress).
