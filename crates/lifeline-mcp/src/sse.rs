//! SSE framing (work in progress).
