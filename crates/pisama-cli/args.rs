//! Command-line arguments. Help texts are the user's first documentation: they say what each
//! option does and show an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "pisama",
    version,
    about = "Find what went wrong in AI-agent traces, locally",
    long_about = "pisama reads AI-agent traces in the formats they are on disk (OpenTelemetry, \
OpenInference, LangSmith, LangGraph, n8n, Dify, OpenClaw, Claude Code, Codex, ATIF, AutoGen, AG2, \
Who&When, MAST, tau-bench, chat logs, ...), normalizes them into one model and reports on them. \
Nothing leaves the machine.",
    after_help = "Examples:\n  pisama inspect fixtures/traces/otlp/\n  pisama inspect trace.json --format json\n  pisama convert session.jsonl --to otlp > trace.otlp.json\n  pisama formats"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    /// More log output on stderr (-v info, -vv debug); `RUST_LOG` overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show what a trace file is: format, agents, spans, tools, tokens, cost, duration
    #[command(
        after_help = "Examples:\n  pisama inspect run.json\n  pisama inspect ~/.claude/projects/my-app/\n  cat traces.jsonl | pisama inspect -\n  pisama inspect traces/ --format json | jq '.files[].traces[].agents'"
    )]
    Inspect(InspectArgs),
    /// Write traces in another format: OTLP/JSON, ATIF or pisama's canonical JSON
    #[command(
        after_help = "One trace is written as one JSON document; several as JSON Lines (one \
per line). Every output reads back with `pisama inspect`.\n\nExamples:\n  pisama convert \
session.jsonl --to otlp > session.otlp.json\n  pisama convert runs/ --to pisama -o all.jsonl"
    )]
    Convert(ConvertArgs),
    /// List the trace formats pisama reads, with the names --input-format accepts
    Formats(FormatsArgs),
    /// Project brain: reviewable project memory in `.brain/` (decisions, specs, conventions, ...)
    Brain(crate::brain::BrainArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InputArgs {
    /// Trace files, folders (read recursively) or `-` for stdin. Gzip and zstd are read transparently.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,

    /// Skip format detection and read every input as this format (see `pisama formats`)
    #[arg(long, value_name = "NAME")]
    pub(crate) input_format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Readable report
    Text,
    /// One JSON document (keys documented in the README)
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,

    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConvertTarget {
    /// OTLP/JSON with OpenTelemetry GenAI attributes
    Otlp,
    /// ATIF v1.7 trajectory
    Atif,
    /// pisama's canonical JSON (lossless, includes labels)
    Pisama,
}

#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,

    /// Target format
    #[arg(long, value_enum)]
    pub(crate) to: ConvertTarget,

    /// Write to this file (atomically) instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Write JSON Lines even for a single trace
    #[arg(long)]
    pub(crate) jsonl: bool,
}

#[derive(Debug, Args)]
pub(crate) struct FormatsArgs {
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}
