//! Benchmark (not a test): the cost of opening a sealed session id, which every request of a session pays with
//! `--session-key-file` (issue 15's goal: under 5 µs). Prints figures, asserts nothing.
//!
//! ```text
//! cargo bench -p lifeline-gateway --bench sealed_ids
//! ```
//!
//! Rows (one thread, `BENCH_ITERS` iterations each, default 200,000, after a warm-up of a tenth of that): opening a
//! typical token (a pool endpoint URL, a 32-hex upstream id, the `initialize` params of the Python SDK client,
//! about 300 characters) with the current key; the same token after a rotation (the current key fails first,
//! the previous one opens it: the worst case); a token no key opens (refused); and sealing one (once per new
//! session). Each row shows the mean per operation and the token's length.

use std::hint::black_box;
use std::time::Instant;

use lifeline_gateway::sealed_ids::Keyed;

const PARAMS: &str = r#"{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"elicitation":{},"roots":{"listChanged":true}},"clientInfo":{"name":"mcp","version":"2.3.0"}}"#;

fn row(name: &str, iters: u32, mut op: impl FnMut() -> usize) {
    for _ in 0..iters / 10 {
        black_box(op());
    }
    let start = Instant::now();
    let mut sink = 0usize;
    for _ in 0..iters {
        sink = sink.wrapping_add(black_box(op()));
    }
    let per = start.elapsed().as_secs_f64() * 1e9 / f64::from(iters);
    black_box(sink);
    println!("{name:<44} {per:>9.0} ns/op  ({:.2} µs)", per / 1000.0);
}

fn main() {
    let iters: u32 = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let old = Keyed::new([7; 32], None);
    let current = Keyed::new([9; 32], None);
    let rotated = Keyed::new([9; 32], Some([7; 32]));
    let endpoint = "http://10.1.2.3:3000/mcp";
    let upstream_id = "8c0f4d1e2a3b4c5d6e7f8091a2b3c4d5";
    let token = current.seal(endpoint, upstream_id, PARAMS);
    let old_token = old.seal(endpoint, upstream_id, PARAMS);
    assert!(current.open(&token).is_some() && rotated.open(&old_token).is_some());
    println!(
        "sealed session ids: token {} characters, {iters} iterations per row",
        token.len()
    );
    row("open (current key)", iters, || {
        current.open(black_box(&token)).unwrap_or(0)
    });
    row("open (previous key, after a rotation)", iters, || {
        rotated.open(black_box(&old_token)).unwrap_or(0)
    });
    row("open refused (no key opens it)", iters, || {
        current.open(black_box(&old_token)).map_or(1, |_| 0)
    });
    row("seal (once per new session)", iters, || {
        current.seal(endpoint, black_box(upstream_id), PARAMS).len()
    });
    println!("goal: opening under 5 µs (issue 15)");
}
