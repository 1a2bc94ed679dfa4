//! JSON-RPC 2.0 messages (work in progress).
