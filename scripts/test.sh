#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs every peer the tests talk to (pinned npm and PyPI packages,
# Debian packages), builds the workspace and runs every test, including the real-peer integration tests and the
# official MCP conformance suite. Usage: scripts/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
start=$(date +%s)

# A full disk fails late and obscurely (a linker's bus error, PostgreSQL's initdb): refuse early instead. The run
# needs about 6 GiB (target/ is 5.5 GiB after the debug build) plus the peers and a PostgreSQL cluster in /tmp.
need_gib=${LIFELINE_TEST_MIN_FREE_GIB:-7}
for dir in . "${TMPDIR:-/tmp}"; do
  free_gib=$(( $(df -Pk "$dir" | awk 'NR==2 {print $4}') / 1048576 ))
  if (( free_gib < need_gib )); then
    echo "test.sh: only ${free_gib} GiB free on the disk of '$dir'; the suite needs about ${need_gib} GiB." >&2
    echo "test.sh: free some space (old target/ directories, clones in /tmp), or set LIFELINE_TEST_MIN_FREE_GIB=0 to try anyway." >&2
    exit 1
  fi
done

echo "==> Installing peers (npm, PyPI, apt)"
scripts/install-peers.sh --apt haproxy nginx-light postgresql chromium prometheus prometheus-alertmanager

echo "==> Checking formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

echo "==> Building"
cargo build --workspace --all-targets --locked

echo "==> Starting PostgreSQL on loopback for the monitor's storage suite"
# Assigned first so that a failed start stops the run here (a failure inside `eval "$(…)"` would not).
pg_env=$(scripts/postgres.sh start)
eval "$pg_env"
trap 'scripts/postgres.sh stop "$LIFELINE_PG_DIR" || true' EXIT

echo "==> Running tests"
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
cargo test --workspace --doc --locked
cargo nextest run --workspace --locked --profile ci "$@"

echo "==> Test suite finished in $(( $(date +%s) - start )) s"
