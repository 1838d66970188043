//! Detection tools: `pisama_detect`, `pisama_inspect`, `pisama_detectors`, `pisama_explain`.
//!
//! Loading and detection run on a blocking thread. The async side waits for that thread, the
//! request's cancellation and the time budget, whichever comes first; on cancellation or an
//! exhausted budget it sets a flag that the worker checks between files, traces and detectors,
//! and answers at once, so the server never hangs on a trace.

#![allow(
    deprecated,
    reason = "LoggingLevel is deprecated in rmcp 3.11 (SEP-2577) but is what today's clients speak"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, LoggingLevel, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use pisama_detect::{Engine, EngineConfig, Severity, TraceResult, Verdict};
use pisama_trace::load::InputOutcome;
use pisama_trace::summary::TraceSummary;
use pisama_trace::{Format, LoadOptions, LoadedTrace, Loader, TraceSource};

use crate::Limits;
use crate::brain_tools::StrList;
use crate::roots::Roots;
use crate::server::{PisamaServer, reply, tool_error};

/// An inline trace: JSON text (a document or JSON Lines), or the JSON value itself.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum InlineTrace {
    /// The trace as text: a JSON document or JSON Lines.
    Text(String),
    /// The trace as a JSON object (one document).
    Object(serde_json::Map<String, serde_json::Value>),
    /// The trace as a JSON array of objects (a message list, a span list or a batch).
    Array(Vec<serde_json::Map<String, serde_json::Value>>),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct DetectArgs {
    /// A trace file or folder (read recursively): relative to the workspace root, or absolute
    /// under an allowed root. Gzip and zstd are read transparently. Give `path` or `trace`.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// An inline trace in any format pisama reads (OTLP, LangSmith, Claude Code, ATIF, chat
    /// messages, ...). Give `path` or `trace`.
    #[serde(default)]
    pub(crate) trace: Option<InlineTrace>,
    /// Run only these detectors (ids from `pisama_detectors`, an array or one string with
    /// commas); default: all.
    #[serde(default)]
    pub(crate) detectors: Option<StrList>,
    /// Do not run these detectors (ids).
    #[serde(default)]
    pub(crate) exclude: Option<StrList>,
    /// Report only findings at or above this severity: info, low, medium, high or critical
    /// (default: low, or pisama.toml's). The verdict always uses every finding.
    #[serde(default)]
    pub(crate) min_severity: Option<String>,
    /// Read the input as this format instead of detecting it from the content (names as
    /// `pisama formats` lists them, e.g. `otlp`, `langsmith`, `claude-code`).
    #[serde(default)]
    pub(crate) input_format: Option<String>,
    /// The run is known to have failed: always name the most likely decisive agent and step.
    #[serde(default)]
    pub(crate) assume_failed: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct InspectArgs {
    /// A trace file or folder: relative to the workspace root, or absolute under an allowed
    /// root. Give `path` or `trace`.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// An inline trace in any format pisama reads. Give `path` or `trace`.
    #[serde(default)]
    pub(crate) trace: Option<InlineTrace>,
    /// Read the input as this format instead of detecting it.
    #[serde(default)]
    pub(crate) input_format: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct ExplainArgs {
    /// A detector id, e.g. `tool-retry-storm` (`pisama_detectors` lists them).
    pub(crate) id: String,
}

/// Counts over every trace of a detection request.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct DetectSummary {
    pub(crate) traces: usize,
    pub(crate) fail: usize,
    pub(crate) unsure: usize,
    pub(crate) pass: usize,
    /// Findings reported (after `min_severity`).
    pub(crate) findings: usize,
    /// Detectors that ran.
    pub(crate) detectors: usize,
    pub(crate) elapsed_ms: u64,
}

/// An input that could not be read, or a file in a folder that is not a trace.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct InputProblem {
    pub(crate) path: String,
    pub(crate) message: String,
}

/// The result of `pisama_detect`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DetectOutput {
    pub(crate) summary: DetectSummary,
    /// One result per trace, in input order: the object `pisama detect --format json` writes.
    pub(crate) traces: Vec<TraceResult>,
    /// Inputs that failed to load.
    pub(crate) errors: Vec<InputProblem>,
    /// Files inside a folder that are not traces.
    pub(crate) skipped: Vec<InputProblem>,
}

/// One input file as the loader saw it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct InspectedFile {
    pub(crate) path: String,
    /// Detected format name.
    pub(crate) format: String,
    /// The detection rule that matched.
    pub(crate) rule: String,
    pub(crate) bytes: u64,
    pub(crate) traces: usize,
    pub(crate) warnings: Vec<String>,
}

/// What one trace holds (the numbers `pisama inspect` prints).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct InspectedTrace {
    pub(crate) source: TraceSource,
    pub(crate) id: String,
    pub(crate) format: String,
    pub(crate) format_version: Option<String>,
    /// ok, error or unset.
    pub(crate) status: String,
    pub(crate) agents: Vec<String>,
    pub(crate) spans: usize,
    pub(crate) spans_by_kind: BTreeMap<String, usize>,
    pub(crate) steps: usize,
    pub(crate) tool_calls: usize,
    pub(crate) tool_errors: usize,
    pub(crate) errors: usize,
    pub(crate) handoffs: usize,
    /// Token usage (input includes cached tokens).
    pub(crate) usage: serde_json::Map<String, serde_json::Value>,
    /// Cost in USD, reported or estimated.
    pub(crate) cost: Option<serde_json::Map<String, serde_json::Value>>,
    pub(crate) duration_ms: Option<f64>,
    pub(crate) task: Option<String>,
    /// How many dataset labels came with the trace (never shown, never used by detectors).
    pub(crate) labels: usize,
    pub(crate) warnings: Vec<String>,
}

/// The result of `pisama_inspect`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct InspectOutput {
    pub(crate) files: Vec<InspectedFile>,
    pub(crate) traces: Vec<InspectedTrace>,
    pub(crate) errors: Vec<InputProblem>,
    pub(crate) skipped: Vec<InputProblem>,
}

/// One detector of the catalogue.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DetectorSummary {
    pub(crate) id: String,
    pub(crate) title: String,
    /// t1 (structural), t2 (textual/statistical) or t3 (judge).
    pub(crate) tier: String,
    pub(crate) severity: String,
    pub(crate) category: String,
    /// MAST failure mode code (FM-x.y), when the detector maps to one.
    pub(crate) mast: Option<String>,
    pub(crate) trail: Option<String>,
}

/// The result of `pisama_detectors`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DetectorList {
    pub(crate) count: usize,
    pub(crate) detectors: Vec<DetectorSummary>,
}

/// A detector parameter and its default.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ParamInfo {
    pub(crate) name: String,
    #[schemars(schema_with = "param_value_schema")]
    pub(crate) default: serde_json::Value,
    pub(crate) doc: String,
}

/// A parameter value: a number, a boolean, a string or a list of strings.
fn param_value_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "number"},
            {"type": "boolean"},
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}}
        ]
    })
}

/// The result of `pisama_explain`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DetectorDetail {
    #[serde(flatten)]
    pub(crate) summary: DetectorSummary,
    /// The paper name of the MAST mode.
    pub(crate) mast_name: Option<String>,
    /// What it catches and why it matters.
    pub(crate) description: String,
    /// How to fix what it finds.
    pub(crate) remediation: String,
    pub(crate) references: Vec<String>,
    /// Parameters (override them in `pisama.toml` under `[detectors.<id>]`).
    pub(crate) params: Vec<ParamInfo>,
    /// Points of the confidence calibration (raw score → probability).
    pub(crate) calibration_points: usize,
    pub(crate) calibration_source: Option<String>,
}

/// Where the traces of a request come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Path { shown: String, canonical: PathBuf },
    Inline(Vec<u8>),
}

/// Why a request stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A message for the user (a tool error).
    Error(String),
    /// The request was cancelled or ran out of time; the async side words the answer.
    Interrupted,
}

impl From<String> for Stop {
    fn from(s: String) -> Self {
        Stop::Error(s)
    }
}

/// Turns the `path` / `trace` arguments into a checked source.
pub(crate) fn source_of(
    roots: &Roots,
    limits: &Limits,
    path: Option<&str>,
    trace: Option<&InlineTrace>,
) -> Result<Source, String> {
    match (path, trace) {
        (Some(_), Some(_)) => Err("give either `path` or `trace`, not both".into()),
        (None, None) => Err(
            "give `path` (a trace file or folder under the workspace root) or `trace` (the trace itself)"
                .into(),
        ),
        (Some(p), None) => {
            let canonical = roots.resolve(p)?;
            Ok(Source::Path {
                shown: p.to_owned(),
                canonical,
            })
        }
        (None, Some(t)) => {
            let bytes = match t {
                InlineTrace::Text(s) => s.clone().into_bytes(),
                InlineTrace::Object(m) => serde_json::to_vec(m).map_err(|e| e.to_string())?,
                InlineTrace::Array(a) => serde_json::to_vec(a).map_err(|e| e.to_string())?,
            };
            if bytes.len() > limits.max_inline_bytes {
                return Err(format!(
                    "the inline trace is {} bytes, over the limit of {} bytes (pass a file `path` instead, or start the server with a larger --max-inline-bytes)",
                    bytes.len(),
                    limits.max_inline_bytes
                ));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err("the inline trace is empty".into());
            }
            Ok(Source::Inline(bytes))
        }
    }
}

fn format_option(name: Option<&str>) -> Result<Option<Format>, String> {
    match name {
        None => Ok(None),
        Some(n) => Format::from_name(n).map(Some).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!(
                "unknown input_format {n:?}; expected one of: {}",
                names.join(", ")
            )
        }),
    }
}

/// What a worker reports while it runs.
pub(crate) type Progress = tokio::sync::mpsc::UnboundedSender<(usize, usize, String)>;

/// Reads every trace of a source, checking the limits and the stop flag, and hands each trace
/// to `on_trace`. Returns the file summaries and the inputs that failed or were skipped.
pub(crate) fn load_source(
    source: &Source,
    roots: &Roots,
    limits: &Limits,
    format: Option<Format>,
    stop: &AtomicBool,
    progress: &Progress,
    on_trace: &mut dyn FnMut(LoadedTrace) -> Result<(), Stop>,
) -> Result<LoadedInputs, Stop> {
    let mut loader = Loader::new(LoadOptions {
        format,
        ..LoadOptions::default()
    });
    let mut out = LoadedInputs::default();
    let mut traces = 0usize;
    let mut failure: Option<Stop> = None;
    let mut accept = |t: LoadedTrace, failure: &mut Option<Stop>| {
        if failure.is_some() {
            return;
        }
        traces += 1;
        if traces > limits.max_traces {
            *failure = Some(Stop::Error(format!(
                "the input holds more than {} traces, the limit for one request (point `path` at a smaller folder or file, or start the server with a larger --max-traces)",
                limits.max_traces
            )));
            return;
        }
        if t.trace.spans.len() > limits.max_spans {
            *failure = Some(Stop::Error(format!(
                "trace {} ({}) has {} spans, over the limit of {} (start the server with a larger --max-spans, or use `pisama detect` on the command line)",
                t.trace.id,
                t.source,
                t.trace.spans.len(),
                limits.max_spans
            )));
            return;
        }
        if stop.load(Ordering::Relaxed) {
            *failure = Some(Stop::Interrupted);
            return;
        }
        if let Err(e) = on_trace(t) {
            *failure = Some(e);
        }
    };
    match source {
        Source::Inline(bytes) => {
            let _ = progress.send((0, 1, "reading the inline trace".into()));
            match loader.load_bytes("<inline>", bytes, &mut |t| accept(t, &mut failure)) {
                Ok(s) => out.files.push(s),
                Err(e) => return Err(Stop::Error(e.to_string())),
            }
            let _ = progress.send((1, 1, "done".into()));
        }
        Source::Path { shown, canonical } => {
            let files = if canonical.is_dir() {
                pisama_trace::load::walk(canonical).map_err(|e| Stop::Error(e.to_string()))?
            } else {
                vec![canonical.clone()]
            };
            if files.is_empty() {
                return Err(Stop::Error(format!(
                    "{shown}: the folder holds no trace files (json, jsonl, ndjson, log, txt; optionally .gz or .zst)"
                )));
            }
            let single = !canonical.is_dir();
            let total = files.len();
            for (i, file) in files.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    return Err(Stop::Interrupted);
                }
                let _ = progress.send((i, total, format!("reading file {} of {total}", i + 1)));
                // The walker does not follow symbolic links; the check is for companions and
                // for files that moved since the listing.
                let checked = std::fs::canonicalize(file)
                    .ok()
                    .filter(|c| roots.contains(c));
                let Some(checked) = checked else {
                    out.skipped.push(InputProblem {
                        path: file.display().to_string(),
                        message: "outside the allowed roots".into(),
                    });
                    continue;
                };
                let size = std::fs::metadata(&checked).map_or(0, |m| m.len());
                if size > limits.max_file_bytes {
                    let message = format!(
                        "the file is {size} bytes, over the limit of {} bytes (start the server with a larger --max-file-size, or use `pisama detect` on the command line)",
                        limits.max_file_bytes
                    );
                    if single {
                        return Err(Stop::Error(format!("{shown}: {message}")));
                    }
                    out.errors.push(InputProblem {
                        path: file.display().to_string(),
                        message,
                    });
                    continue;
                }
                for outcome in loader.load_paths(std::slice::from_ref(&checked), &mut |t| {
                    accept(t, &mut failure);
                }) {
                    match outcome {
                        InputOutcome::Loaded(s) => out.files.push(s),
                        InputOutcome::Skipped { path, reason } => out.skipped.push(InputProblem {
                            path,
                            message: reason,
                        }),
                        InputOutcome::Failed(e) => {
                            if single {
                                return Err(Stop::Error(e.to_string()));
                            }
                            out.errors.push(InputProblem {
                                path: e.path().to_owned(),
                                message: e.to_string(),
                            });
                        }
                    }
                }
                if let Some(f) = failure.take() {
                    return Err(f);
                }
            }
            let _ = progress.send((total, total, "done".into()));
        }
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if stop.load(Ordering::Relaxed) {
        return Err(Stop::Interrupted);
    }
    Ok(out)
}

/// File summaries and problems of a load.
#[derive(Debug, Default)]
pub(crate) struct LoadedInputs {
    pub(crate) files: Vec<pisama_trace::FileSummary>,
    pub(crate) errors: Vec<InputProblem>,
    pub(crate) skipped: Vec<InputProblem>,
}

/// The detection request, ready for a worker thread.
#[derive(Debug)]
pub(crate) struct DetectJob {
    pub(crate) source: Source,
    pub(crate) format: Option<Format>,
    pub(crate) engine: Engine,
    pub(crate) min_severity: Severity,
}

/// The engine for a request: the server's defaults (`pisama.toml`) with the request's choices.
pub(crate) fn engine_for(
    base: &EngineConfig,
    detectors: &[String],
    exclude: &[String],
    assume_failed: bool,
) -> Result<Engine, String> {
    let mut config = base.clone();
    if !detectors.is_empty() {
        config.only = detectors.to_vec();
    }
    config.exclude.extend(exclude.iter().cloned());
    config.assume_failed = assume_failed;
    Engine::new(&config).map_err(|e| e.to_string())
}

impl DetectJob {
    pub(crate) fn from_args(
        args: &DetectArgs,
        roots: &Roots,
        options: &crate::ServerOptions,
    ) -> Result<DetectJob, String> {
        let limits = &options.limits;
        let source = source_of(roots, limits, args.path.as_deref(), args.trace.as_ref())?;
        let format = format_option(args.input_format.as_deref())?;
        let min_severity = match &args.min_severity {
            None => options.min_severity,
            Some(s) => Severity::from_str(s).map_err(|e| format!("min_severity: {e}"))?,
        };
        let engine = engine_for(
            &options.detection,
            &args
                .detectors
                .as_ref()
                .map(StrList::values)
                .unwrap_or_default(),
            &args
                .exclude
                .as_ref()
                .map(StrList::values)
                .unwrap_or_default(),
            args.assume_failed,
        )?;
        Ok(DetectJob {
            source,
            format,
            engine,
            min_severity,
        })
    }

    /// Runs on a blocking thread.
    pub(crate) fn run(
        self,
        roots: &Roots,
        limits: &Limits,
        stop: &AtomicBool,
        progress: &Progress,
    ) -> Result<DetectOutput, Stop> {
        let started = Instant::now();
        let mut results: Vec<TraceResult> = Vec::new();
        let engine = &self.engine;
        let min = self.min_severity;
        let loaded = load_source(
            &self.source,
            roots,
            limits,
            self.format,
            stop,
            progress,
            &mut |t| {
                let report = engine.run_cancellable(&t.trace, stop);
                if stop.load(Ordering::Relaxed) {
                    return Err(Stop::Interrupted);
                }
                let mut r = TraceResult::new(&t, report);
                r.report.findings.retain(|f| f.severity >= min);
                results.push(r);
                Ok(())
            },
        )?;
        let mut summary = DetectSummary {
            traces: results.len(),
            detectors: engine.ids().len(),
            ..DetectSummary::default()
        };
        for r in &results {
            match r.report.verdict {
                Verdict::Fail => summary.fail += 1,
                Verdict::Unsure => summary.unsure += 1,
                Verdict::Pass => summary.pass += 1,
            }
            summary.findings += r.report.findings.len();
        }
        summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(DetectOutput {
            summary,
            traces: results,
            errors: loaded.errors,
            skipped: loaded.skipped,
        })
    }
}

/// Waits for a worker, the request's cancellation or the time budget. On the last two the
/// worker's stop flag is set and the request is answered at once.
pub(crate) async fn supervise<T: Send + 'static>(
    server: &PisamaServer,
    ctx: Option<&RequestContext<RoleServer>>,
    what: &'static str,
    work: impl FnOnce(&AtomicBool, &Progress) -> Result<T, Stop> + Send + 'static,
) -> Result<T, String> {
    let limits = server.options().limits.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize, String)>();
    let worker_stop = stop.clone();
    let mut handle = tokio::task::spawn_blocking(move || work(&worker_stop, &tx));
    let budget = tokio::time::sleep(limits.time_budget);
    tokio::pin!(budget);
    let token = ctx.and_then(|c| c.meta.get_progress_token());
    let never = tokio_util::sync::CancellationToken::new();
    let ct = ctx.map_or(&never, |c| &c.ct);
    loop {
        tokio::select! {
            joined = &mut handle => {
                return match joined {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(Stop::Error(e))) => Err(e),
                    Ok(Err(Stop::Interrupted)) => Err(format!("{what} was cancelled")),
                    Err(e) => Err(format!("internal error while running {what}: {e}")),
                };
            }
            Some((done, total, message)) = rx.recv() => {
                if let (Some(token), Some(c)) = (&token, ctx) {
                    let _ = c.peer.notify_progress(
                        ProgressNotificationParam::new(token.clone(), done as f64)
                            .with_total(total as f64)
                            .with_message(message),
                    ).await;
                }
            }
            () = &mut budget => {
                stop.store(true, Ordering::Relaxed);
                tracing::warn!(budget_ms = limits.time_budget.as_millis() as u64, "{what} hit the time budget");
                return Err(format!(
                    "{what} did not finish within the time budget of {:.1} s and was stopped; detect a smaller file or folder, pick detectors with `detectors`, or start the server with a larger --time-budget",
                    limits.time_budget.as_secs_f64()
                ));
            }
            () = ct.cancelled() => {
                stop.store(true, Ordering::Relaxed);
                return Err(format!("{what} was cancelled"));
            }
        }
    }
}

/// Runs a detection request with progress, cancellation and the time budget.
pub(crate) async fn detect(
    server: &PisamaServer,
    args: DetectArgs,
    ctx: Option<&RequestContext<RoleServer>>,
) -> Result<DetectOutput, String> {
    let roots = server.roots();
    let limits = server.options().limits.clone();
    let job = {
        let roots = roots.clone();
        let options = server.options().clone();
        crate::server::blocking(move || DetectJob::from_args(&args, &roots, &options)).await??
    };
    supervise(server, ctx, "detection", move |stop, progress| {
        job.run(&roots, &limits, stop, progress)
    })
    .await
}

fn detect_text(out: &DetectOutput) -> String {
    let s = &out.summary;
    let mut text = format!(
        "{} trace(s): {} fail, {} unsure, {} pass; {} finding(s) from {} detectors in {} ms.",
        s.traces, s.fail, s.unsure, s.pass, s.findings, s.detectors, s.elapsed_ms
    );
    for r in out.traces.iter().take(20) {
        let rep = &r.report;
        text.push_str(&format!(
            "\n\n{}: {} (score {:.2})",
            r.source,
            rep.verdict.to_string().to_uppercase(),
            rep.score
        ));
        if let Some(a) = &rep.attribution {
            text.push_str(&format!(
                "\n  decisive failure: {} at step {} ({}, confidence {:.2})",
                a.agent.as_deref().unwrap_or("unknown agent"),
                a.step.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                a.category,
                a.confidence
            ));
        }
        for f in rep.findings.iter().take(8) {
            let place = match (&f.agent, f.step) {
                (Some(a), Some(st)) => format!(" — {a}, step {st}"),
                (Some(a), None) => format!(" — {a}"),
                (None, Some(st)) => format!(" — step {st}"),
                (None, None) => String::new(),
            };
            text.push_str(&format!(
                "\n  [{}] {} ({}, {:.0}% confident){place}: {}\n    fix: {}",
                f.severity,
                f.title,
                f.detector,
                f.confidence * 100.0,
                f.summary,
                f.remediation
            ));
        }
        if rep.findings.len() > 8 {
            text.push_str(&format!(
                "\n  … {} more in structuredContent",
                rep.findings.len() - 8
            ));
        }
    }
    if out.traces.len() > 20 {
        text.push_str(&format!(
            "\n\n… {} more trace(s) in structuredContent",
            out.traces.len() - 20
        ));
    }
    for e in &out.errors {
        text.push_str(&format!("\n\nerror: {}", e.message));
    }
    text
}

fn inspected(t: &LoadedTrace) -> InspectedTrace {
    let s = TraceSummary::of(&t.trace);
    let to_map = |v: serde_json::Value| match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    InspectedTrace {
        source: t.source.clone(),
        id: s.id,
        format: s.format,
        format_version: s.format_version,
        status: serde_json::to_value(s.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        agents: s.agents,
        spans: s.spans,
        spans_by_kind: s
            .spans_by_kind
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        steps: s.steps,
        tool_calls: s.tool_calls,
        tool_errors: s.tool_errors,
        errors: s.errors,
        handoffs: s.handoffs,
        usage: to_map(serde_json::to_value(&s.usage).unwrap_or_default()),
        cost: s
            .cost
            .as_ref()
            .and_then(|c| serde_json::to_value(c).ok())
            .map(to_map),
        duration_ms: s.duration_ms,
        task: s.task,
        labels: t.labels.len(),
        warnings: s.warnings,
    }
}

fn summary_of(m: &pisama_detect::DetectorMeta) -> DetectorSummary {
    DetectorSummary {
        id: m.id.clone(),
        title: m.title.clone(),
        tier: m.tier.to_string(),
        severity: m.severity.name().to_owned(),
        category: m.category.clone(),
        mast: m.mast.map(|x| x.code().to_owned()),
        trail: m.trail.clone(),
    }
}

/// The whole catalogue.
pub(crate) fn detector_list() -> Result<DetectorList, String> {
    let engine = Engine::new(&EngineConfig::default()).map_err(|e| e.to_string())?;
    let detectors: Vec<DetectorSummary> = engine.metas().map(summary_of).collect();
    Ok(DetectorList {
        count: detectors.len(),
        detectors,
    })
}

fn paragraph(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn explain(id: &str) -> Result<DetectorDetail, String> {
    let engine = Engine::new(&EngineConfig::default()).map_err(|e| e.to_string())?;
    let id = id.trim();
    let Some(m) = engine.metas().find(|m| m.id == id) else {
        let close: Vec<&str> = engine
            .ids()
            .into_iter()
            .filter(|i| i.contains(id) || id.contains(i))
            .collect();
        return Err(format!(
            "unknown detector {id:?}{} (`pisama_detectors` lists them)",
            if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", close.join(", "))
            }
        ));
    };
    Ok(DetectorDetail {
        summary: summary_of(m),
        mast_name: m.mast.map(|x| x.paper_name().to_owned()),
        description: paragraph(&m.description),
        remediation: paragraph(&m.remediation),
        references: m.references.clone(),
        params: m
            .params
            .0
            .iter()
            .map(|(k, v)| ParamInfo {
                name: k.clone(),
                default: serde_json::to_value(v).unwrap_or_default(),
                doc: m.param_docs.get(k).cloned().unwrap_or_default(),
            })
            .collect(),
        calibration_points: m.calibration.points.len(),
        calibration_source: m.calibration.source.clone(),
    })
}

#[tool_router(router = detect_router, vis = "pub(crate)")]
impl PisamaServer {
    /// Find what went wrong in an AI-agent trace: runs pisama's detectors over a trace file,
    /// a folder of traces, or an inline trace, and returns per trace a verdict (fail / unsure /
    /// pass) with a score, the decisive agent and step, and ranked findings with evidence
    /// (span ids, steps, quotes) and a fix. Reads only under the workspace root and the
    /// client's roots.
    #[tool(
        name = "pisama_detect",
        title = "Detect failures in an agent trace",
        annotations(
            title = "Detect failures in an agent trace",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<DetectOutput>()
    )]
    async fn pisama_detect(
        &self,
        Parameters(args): Parameters<DetectArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        match detect(self, args, Some(&ctx)).await {
            Ok(out) => {
                self.log(
                    LoggingLevel::Info,
                    serde_json::json!({"event": "detect", "traces": out.summary.traces, "findings": out.summary.findings, "elapsed_ms": out.summary.elapsed_ms}),
                )
                .await;
                let text = detect_text(&out);
                reply(&out, text)
            }
            Err(e) => {
                self.log(
                    LoggingLevel::Warning,
                    serde_json::json!({"event": "detect failed"}),
                )
                .await;
                Ok(tool_error(e))
            }
        }
    }

    /// Describe a trace without judging it: detected format and rule, agents, spans by kind,
    /// steps, tool calls and errors, tokens, cost, duration and adapter warnings.
    #[tool(
        name = "pisama_inspect",
        title = "Inspect an agent trace",
        annotations(
            title = "Inspect an agent trace",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<InspectOutput>()
    )]
    async fn pisama_inspect(
        &self,
        Parameters(args): Parameters<InspectArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let roots = self.roots();
        let limits = self.options().limits.clone();
        let source = match source_of(&roots, &limits, args.path.as_deref(), args.trace.as_ref())
            .and_then(|s| Ok((s, format_option(args.input_format.as_deref())?)))
        {
            Ok(s) => s,
            Err(e) => return Ok(tool_error(e)),
        };
        let result = supervise(self, Some(&ctx), "inspection", move |stop, progress| {
            let mut traces = Vec::new();
            let loaded = load_source(
                &source.0,
                &roots,
                &limits,
                source.1,
                stop,
                progress,
                &mut |t| {
                    traces.push(inspected(&t));
                    Ok(())
                },
            )?;
            Ok(InspectOutput {
                files: loaded
                    .files
                    .iter()
                    .map(|f| InspectedFile {
                        path: f.path.clone(),
                        format: f.format.name().to_owned(),
                        rule: f.rule.to_owned(),
                        bytes: f.bytes,
                        traces: f.traces,
                        warnings: f.warnings.clone(),
                    })
                    .collect(),
                traces,
                errors: loaded.errors,
                skipped: loaded.skipped,
            })
        })
        .await;
        match result {
            Ok(out) => {
                let mut text = format!(
                    "{} trace(s) in {} file(s).",
                    out.traces.len(),
                    out.files.len()
                );
                for t in out.traces.iter().take(20) {
                    text.push_str(&format!(
                        "\n{}: {} {}, {} agent(s) ({}), {} spans, {} steps, {} tool calls ({} failed), {} error(s){}",
                        t.source,
                        t.format,
                        t.status,
                        t.agents.len(),
                        t.agents.join(", "),
                        t.spans,
                        t.steps,
                        t.tool_calls,
                        t.tool_errors,
                        t.errors,
                        t.duration_ms
                            .map(|d| format!(", {:.1} s", d / 1000.0))
                            .unwrap_or_default()
                    ));
                }
                for e in &out.errors {
                    text.push_str(&format!("\nerror: {}", e.message));
                }
                reply(&out, text)
            }
            Err(e) => Ok(tool_error(e)),
        }
    }

    /// List pisama's detectors: id, title, tier, default severity, category and MAST mode.
    #[tool(
        name = "pisama_detectors",
        title = "List the detectors",
        annotations(
            title = "List the detectors",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<DetectorList>()
    )]
    async fn pisama_detectors(&self) -> Result<CallToolResult, ErrorData> {
        match detector_list() {
            Ok(list) => {
                let mut text = format!("{} detectors:", list.count);
                for d in &list.detectors {
                    text.push_str(&format!(
                        "\n{} [{} {}{}] {}",
                        d.id,
                        d.tier,
                        d.severity,
                        d.mast
                            .as_deref()
                            .map(|m| format!(", MAST {m}"))
                            .unwrap_or_default(),
                        d.title
                    ));
                }
                reply(&list, text)
            }
            Err(e) => Ok(tool_error(e)),
        }
    }

    /// Explain one detector: what it catches, why it matters, how to fix what it finds, its
    /// parameters and its calibration.
    #[tool(
        name = "pisama_explain",
        title = "Explain a detector",
        annotations(
            title = "Explain a detector",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<DetectorDetail>()
    )]
    async fn pisama_explain(
        &self,
        Parameters(args): Parameters<ExplainArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        match explain(&args.id) {
            Ok(d) => {
                let text = format!(
                    "{} — {}\n\nWhat it catches: {}\n\nHow to fix it: {}",
                    d.summary.id, d.summary.title, d.description, d.remediation
                );
                reply(&d, text)
            }
            Err(e) => Ok(tool_error(e)),
        }
    }
}
