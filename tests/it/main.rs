//! Black-box tests of the `pisama` binary: what a user runs, through one `check`-style helper
//! per area. One integration binary keeps link time down.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod bad_input;
mod bench_data;
mod brain;
mod cli;
mod detect_cli;
mod detectors;
mod fuzz_regressions;
mod judge;
mod mcp;
mod support;
