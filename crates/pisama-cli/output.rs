//! Terminal output helpers and the shared input-loading step of every subcommand.

#![allow(
    clippy::print_stderr,
    reason = "this module is where the CLI talks to the terminal"
)]

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use pisama_trace::load::InputOutcome;
use pisama_trace::{FileSummary, Format, LoadOptions, LoadedTrace, Loader};

use crate::Failure;
use crate::args::InputArgs;

/// Prints `error: ...` on stderr, in red on a terminal unless `NO_COLOR` is set.
pub(crate) fn error_line(message: &str) {
    let (start, end) = if color_stderr() {
        ("\x1b[31;1m", "\x1b[0m")
    } else {
        ("", "")
    };
    eprintln!("{start}error{end}: {message}");
}

/// Prints `warning: ...` on stderr.
pub(crate) fn warning_line(message: &str) {
    let (start, end) = if color_stderr() {
        ("\x1b[33;1m", "\x1b[0m")
    } else {
        ("", "")
    };
    eprintln!("{start}warning{end}: {message}");
}

fn color_stderr() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Whether stdout is a terminal that accepts colour.
pub(crate) fn color_stdout() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// What loading the inputs produced besides the traces.
#[derive(Debug, Default)]
pub(crate) struct LoadReport {
    pub(crate) files: Vec<FileSummary>,
    pub(crate) skipped: Vec<(String, String)>,
    pub(crate) failed: Vec<pisama_trace::Error>,
}

/// Parses `--input-format`.
pub(crate) fn input_format(args: &InputArgs) -> Result<Option<Format>, Failure> {
    match &args.input_format {
        None => Ok(None),
        Some(name) => Format::from_name(name).map(Some).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            Failure::input(format!(
                "unknown --input-format {name:?}; expected one of: {}",
                names.join(", ")
            ))
        }),
    }
}

/// Reads every input, handing traces to `sink`. Inputs that fail are collected, not fatal.
pub(crate) fn load_inputs(
    args: &InputArgs,
    sink: &mut dyn FnMut(LoadedTrace),
) -> Result<LoadReport, Failure> {
    let options = LoadOptions {
        format: input_format(args)?,
        ..LoadOptions::default()
    };
    for path in &args.paths {
        if path.as_os_str() != "-" && !path.exists() && !Path::new(path).is_symlink() {
            return Err(Failure::input(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
    }
    let mut loader = Loader::new(options);
    let mut report = LoadReport::default();
    for outcome in loader.load_paths(&args.paths, sink) {
        match outcome {
            InputOutcome::Loaded(s) => report.files.push(s),
            InputOutcome::Skipped { path, reason } => report.skipped.push((path, reason)),
            InputOutcome::Failed(e) => report.failed.push(e),
        }
    }
    Ok(report)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename,
/// so a reader never sees half a file and a failure leaves the old file intact.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Groups digits: 1234567 → "1,234,567".
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in ms as "850 ms", "4.2 s", "3 min 12 s", "2 h 5 min".
pub(crate) fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms < 3_600_000.0 {
        let s = (ms / 1000.0) as u64;
        format!("{} min {} s", s / 60, s % 60)
    } else {
        let m = (ms / 60_000.0) as u64;
        format!("{} h {} min", m / 60, m % 60)
    }
}

/// Terminal colours for stdout, or none when stdout is not a terminal or `NO_COLOR` is set.
pub(crate) struct Style {
    pub(crate) bold: &'static str,
    pub(crate) dim: &'static str,
    pub(crate) red: &'static str,
    pub(crate) yellow: &'static str,
    pub(crate) green: &'static str,
    pub(crate) cyan: &'static str,
    pub(crate) reset: &'static str,
}

impl Style {
    pub(crate) fn new() -> Self {
        if color_stdout() {
            Style {
                bold: "\x1b[1m",
                dim: "\x1b[2m",
                red: "\x1b[31m",
                yellow: "\x1b[33m",
                green: "\x1b[32m",
                cyan: "\x1b[36m",
                reset: "\x1b[0m",
            }
        } else {
            Style {
                bold: "",
                dim: "",
                red: "",
                yellow: "",
                green: "",
                cyan: "",
                reset: "",
            }
        }
    }

    pub(crate) fn severity(&self, s: pisama_detect::Severity) -> &'static str {
        match s {
            pisama_detect::Severity::Critical | pisama_detect::Severity::High => self.red,
            pisama_detect::Severity::Medium => self.yellow,
            pisama_detect::Severity::Low => self.cyan,
            pisama_detect::Severity::Info => self.dim,
        }
    }

    pub(crate) fn verdict(&self, v: pisama_detect::Verdict) -> &'static str {
        match v {
            pisama_detect::Verdict::Fail => self.red,
            pisama_detect::Verdict::Unsure => self.yellow,
            pisama_detect::Verdict::Pass => self.green,
        }
    }
}
