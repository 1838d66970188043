//! The `pisama` command line: argument parsing, logging, exit codes. Every subcommand's work
//! lives in a library crate; this binary only wires it to the terminal.
//!
//! Exit codes: 0 success, 1 findings at or above `--fail-on` (detection), 2 usage or input
//! error, 3 internal error. A closed stdout (`pisama inspect ... | head`) is a success.

mod args;
mod brain;
mod config;
mod convert;
mod detect;
mod eval;
mod inspect;
mod judge;
mod mcp;
mod output;
mod report;

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// Parsing a trace allocates millions of small strings and maps; mimalloc makes that about
/// twice as fast as the system allocator (measured with `cargo bench --bench parse`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok = 0,
    /// Findings (detection) or problems (`pisama brain check`).
    Findings = 1,
    Input = 2,
    Internal = 3,
}

/// An error that maps to an exit code; its message is printed once, without a backtrace.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Input,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::BrokenPipe
        {
            return Failure {
                exit: Exit::Ok,
                message: String::new(),
            };
        }
        Failure {
            exit: Exit::Internal,
            message: format!("{e:#}"),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::from(anyhow::Error::from(e))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(&a),
        Command::Convert(a) => convert::run(&a),
        Command::Detect(a) => detect::run(&a),
        Command::Detectors(a) => detect::list(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Explain(a) => detect::explain(&a),
        Command::Formats(a) => inspect::formats(&a),
        Command::Schema => report::print_schema(),
        Command::Brain(a) => brain::run(&a),
        Command::Mcp(a) => mcp::run(&a),
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(f) => {
            if !f.message.is_empty() {
                output::error_line(&f.message);
            }
            ExitCode::from(f.exit as u8)
        }
    }
}

/// Logs go to stderr (stdout belongs to command output). `RUST_LOG` overrides `-v`/`-q`.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // async-openai logs response bodies and rate-limit headers at `warn`; the judge reports
    // failures itself, without payloads, so the library is held to errors by default.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default},async_openai=error"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .without_time()
        .try_init();
}
