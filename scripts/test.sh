#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test (unit, integration, black-box).
# Needs only the Rust toolchain; uses cargo-nextest when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_INCREMENTAL=0
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Snapshots are never rewritten by a test run.
export INSTA_UPDATE=no

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --profile ci
else
    cargo test --workspace
fi
