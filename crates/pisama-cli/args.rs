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
    /// Find what went wrong: run the detectors over traces and report verdicts and findings
    #[command(
        after_help = "Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or input error, 3 internal error.\n\nConfiguration: flags > environment (PISAMA_FAIL_ON, PISAMA_MIN_SEVERITY) > pisama.toml (this folder, then the user config folder) > detector defaults.\n\nExamples:\n  pisama detect run.json\n  pisama detect traces/ --format sarif > pisama.sarif\n  pisama detect traces/ --format junit --fail-on medium > report.xml\n  cat many.jsonl | pisama detect - --format jsonl\n  pisama detect run.json --detectors tool-retry-storm,unverified-success-claim\n  pisama detect run.json --judge-dry-run   (what the LLM judge would send; sends nothing)\n  pisama detect run.json --judge --judge-base-url http://localhost:11434/v1 --judge-model llama3.1:8b"
    )]
    Detect(DetectArgs),
    /// List the detectors: id, tier, severity, MAST mode, title
    Detectors(DetectorsArgs),
    /// Score detection against labelled data (Who&When, tau-bench, MAST)
    #[command(
        after_help = "Every figure comes with N and a 95% bootstrap interval (1,000 resamples, fixed seed), beside trivial baselines.\n\nExamples:\n  pisama eval ../shared/bench/who-and-when/Algorithm-Generated --dataset who-and-when\n  pisama eval ../shared/bench/tau-bench-airline --dataset tau-bench --format json\n  pisama eval ../shared/bench/who-and-when/Hand-Crafted --dataset who-and-when --judge-dry-run   (cost of judging it)\n  pisama eval ../shared/bench/who-and-when/Hand-Crafted --dataset who-and-when --judge   (metrics with and without the LLM judge)"
    )]
    Eval(EvalArgs),
    /// Explain one detector: what it catches, why it matters, how to fix it, its parameters
    Explain(ExplainArgs),
    /// List the trace formats pisama reads, with the names --input-format accepts
    Formats(FormatsArgs),
    /// Print the JSON Schema of a trace result from `pisama detect --format json|jsonl`
    Schema,
    /// Project brain: reviewable project memory in `.brain/` (decisions, specs, conventions, ...)
    Brain(crate::brain::BrainArgs),
    /// MCP server for editors (Cursor, Claude Desktop, Claude Code, Windsurf): stdio, or --http on loopback
    Mcp(crate::mcp::McpArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DetectFormat {
    /// Readable report, grouped by trace
    Text,
    /// One JSON document with every trace (schema: docs/detect.schema.json)
    Json,
    /// One JSON object per trace per line (same trace objects as json), streamed
    Jsonl,
    /// SARIF 2.1.0 for GitHub code scanning and other static-analysis viewers
    Sarif,
    /// JUnit XML: one test case per trace, failing when its verdict is fail
    Junit,
    /// Markdown, for pull-request comments and CI summaries
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FailOn {
    Info,
    Low,
    Medium,
    High,
    Critical,
    Never,
}

#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,

    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = DetectFormat::Text)]
    pub(crate) format: DetectFormat,

    /// Exit 1 when a finding at or above this severity is found [default: high]
    #[arg(long, value_enum, env = "PISAMA_FAIL_ON")]
    pub(crate) fail_on: Option<FailOn>,

    /// Show only findings at or above this severity (does not change the exit code) [default: low]
    #[arg(long, value_name = "SEVERITY", env = "PISAMA_MIN_SEVERITY")]
    pub(crate) min_severity: Option<String>,

    /// Run only these detectors (comma-separated ids)
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub(crate) detectors: Vec<String>,

    /// Do not run these detectors (comma-separated ids)
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub(crate) exclude: Vec<String>,

    /// Configuration file (default: ./pisama.toml, then the user config folder's pisama/pisama.toml)
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Worker threads (default: all cores)
    #[arg(long, short = 'j', value_name = "N")]
    pub(crate) jobs: Option<usize>,

    /// The runs are known to have failed (a failed test, a bad answer): always name the most
    /// likely decisive agent and step, even when no finding points at one
    #[arg(long)]
    pub(crate) assume_failed: bool,

    #[command(flatten)]
    pub(crate) judge: JudgeArgs,
}

/// The optional LLM judge (tier T3). Nothing is sent without `--judge`, and only to the
/// endpoint the user configured.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "LLM judge (optional; sends redacted excerpts to YOUR endpoint)")]
#[command(group(clap::ArgGroup::new("judge_mode").args(["judge", "judge_dry_run"])))]
pub(crate) struct JudgeArgs {
    /// Ask the configured LLM about unsure findings and attributions. Needs an endpoint, a
    /// model and the name of the variable holding the key (`[judge]` in pisama.toml or the flags
    /// below); never falls back to `OPENAI_API_KEY` or a default endpoint
    #[arg(long, conflicts_with = "judge_dry_run")]
    pub(crate) judge: bool,

    /// Print exactly what --judge would send (redacted request bodies, token and cost
    /// estimates) instead of the report, and send nothing
    #[arg(long)]
    pub(crate) judge_dry_run: bool,

    /// OpenAI-compatible base URL, with /v1 (`http://localhost:11434/v1`, `https://api.openai.com/v1`)
    #[arg(long, value_name = "URL", env = "PISAMA_JUDGE_BASE_URL")]
    pub(crate) judge_base_url: Option<String>,

    /// Model name as the endpoint knows it
    #[arg(long, value_name = "NAME", env = "PISAMA_JUDGE_MODEL")]
    pub(crate) judge_model: Option<String>,

    /// NAME of the environment variable that holds the API key (not the key itself)
    #[arg(long, value_name = "VAR", env = "PISAMA_JUDGE_API_KEY_ENV")]
    pub(crate) judge_api_key_env: Option<String>,

    /// Cache folder for answers [default: `$XDG_CACHE_HOME/pisama/judge`]
    #[arg(long, value_name = "DIR", requires = "judge_mode")]
    pub(crate) judge_cache_dir: Option<PathBuf>,

    /// Do not read or write cached answers
    #[arg(long, requires = "judge_mode")]
    pub(crate) judge_no_cache: bool,

    /// At most this many requests per run [default: 25]
    #[arg(long, value_name = "N", requires = "judge_mode")]
    pub(crate) judge_max_calls: Option<u32>,

    /// At most this many US dollars per run (estimated before each request)
    #[arg(long, value_name = "USD", requires = "judge_mode")]
    pub(crate) judge_max_cost: Option<f64>,

    /// Seconds to wait for one answer [default: 60]
    #[arg(long, value_name = "SECS", requires = "judge_mode")]
    pub(crate) judge_timeout: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Dataset {
    /// Who&When: which agent and which step caused the failure
    WhoAndWhen,
    /// tau-bench: did the run fail (reward below 1)
    TauBench,
    /// MAST: which failure modes the annotators saw (qualitative)
    Mast,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// Labelled data: a file or a folder
    #[arg(value_name = "PATH")]
    pub(crate) path: PathBuf,

    /// Which labels to score against
    #[arg(long, value_enum)]
    pub(crate) dataset: Dataset,

    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,

    /// Also list every case (text output)
    #[arg(long)]
    pub(crate) cases: bool,

    /// Configuration file (as for `pisama detect`)
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// tau-bench only: fit each detector's confidence calibration (raw score → probability
    /// that a run it fires on failed) and print it
    #[arg(long)]
    pub(crate) calibrate: bool,

    /// With --calibrate: write the fitted `[calibration]` tables into DIR/<id>.toml (the
    /// repository's `detectors/` folder)
    #[arg(long, value_name = "DIR", requires = "calibrate")]
    pub(crate) write_calibration: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) judge: JudgeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DetectorsArgs {
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// Detector id (see `pisama detectors`)
    pub(crate) id: String,

    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
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
