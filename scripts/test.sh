#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test (unit, integration, black-box), then
# the MCP server against MCP clients this project did not write (scripts/mcp-clients.sh: it
# installs Node 22, the MCP Inspector, the conformance suite and the Python SDK from the npm
# registry and PyPI into target/mcp-clients/; set PISAMA_SKIP_MCP_CLIENTS=1 to skip that step).
# Needs the Rust toolchain, npm and python3; uses cargo-nextest when it is installed.
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

if [[ ${PISAMA_SKIP_MCP_CLIENTS:-} == 1 ]]; then
    echo "== MCP clients: skipped (PISAMA_SKIP_MCP_CLIENTS=1)"
else
    echo "== MCP clients"
    ./scripts/mcp-clients.sh
fi
