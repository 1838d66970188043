//! `pisama detect`, `pisama detectors`, `pisama explain`.
//!
//! Traces are detected as they are read, in batches run in parallel, and results are written
//! in input order. JSON Lines output is streamed, so memory stays bounded on large inputs.

#![allow(clippy::print_stdout, reason = "command output goes to stdout")]

use std::io::{self, IsTerminal, Write};
use std::str::FromStr;
use std::time::{Duration, Instant};

use pisama_detect::{Engine, EngineConfig, Severity, TraceReport};
use pisama_trace::LoadedTrace;
use rayon::prelude::*;
use serde_json::json;

use crate::args::{DetectArgs, DetectFormat, DetectorsArgs, ExplainArgs, FailOn, ReportFormat};
use crate::config::{self, Config};
use crate::judge;
use crate::output;
use crate::report;
use crate::{Exit, Failure};
use pisama_detect::TraceResult;

/// Traces detected together; large enough to keep both cores busy, small enough to stream.
const BATCH: usize = 64;
/// A batch is also cut once it holds this many spans, so large traces are not held 64 at a time.
const BATCH_SPANS: usize = 20_000;
/// Traces the reader may have parsed ahead of detection.
const READ_AHEAD: usize = 8;
/// Stack of the reader thread: the main thread's default on Linux.
const READER_STACK: usize = 8 * 1024 * 1024;

pub(crate) fn run(args: &DetectArgs) -> Result<Exit, Failure> {
    let config = config::load(args.config.as_deref())?;
    let fail_on = resolve_fail_on(args.fail_on, &config)?;
    let min_severity = resolve_min_severity(args.min_severity.as_deref(), &config)?;
    let engine = build_engine(args, &config)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .map_err(|e| Failure::from(anyhow::anyhow!("thread pool: {e}")))?;

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let progress = progress_bar();
    let mut results: Vec<TraceResult> = Vec::new();
    let mut pending: Vec<LoadedTrace> = Vec::new();
    let mut worst: Option<Severity> = None;
    let mut write_error: Option<io::Error> = None;
    let streaming = args.format == DetectFormat::Jsonl;
    // Where the time goes (logged with `-vv`): reading and parsing, detection, writing.
    let started = Instant::now();
    let mut detecting = Duration::ZERO;

    // The traces of the batch detected last, freed when the next batch is done with, and
    // never for the final batch (see the end of this function).
    let mut retired: Vec<LoadedTrace> = Vec::new();
    let mut judge = judge::Session::start(&args.judge, &config)?;
    let dry_run = judge.as_ref().is_some_and(judge::Session::dry_run);
    let mut flush =
        |pending: &mut Vec<LoadedTrace>, results: &mut Vec<TraceResult>, out: &mut dyn Write| {
            let batch = std::mem::take(pending);
            let batch_started = Instant::now();
            let done: Vec<(LoadedTrace, TraceReport)> = pool.install(|| {
                batch
                    .into_par_iter()
                    .map(|t| {
                        let report = engine.run(&t.trace);
                        (t, report)
                    })
                    .collect()
            });
            detecting += batch_started.elapsed();
            if let Some(p) = &progress {
                p.inc(done.len() as u64);
            }
            let mut detected = Vec::with_capacity(done.len());
            for (t, mut report) in done {
                // The judge asks one question at a time, in input order, so the budget is
                // spent the same way on every run.
                let verdict = judge
                    .as_mut()
                    .map(|j| j.review(&t.source.to_string(), &t.trace, &mut report, &engine));
                let mut r = TraceResult::new(&t, report);
                r.judge = verdict;
                detected.push(t);
                if let Some(top) = r.report.findings.iter().map(|f| f.severity).max() {
                    worst = worst.max(Some(top));
                }
                r.report.findings.retain(|f| f.severity >= min_severity);
                if dry_run {
                    continue;
                }
                if streaming {
                    if write_error.is_none()
                        && let Err(e) = report::write_jsonl(out, &r)
                    {
                        write_error = Some(e);
                    }
                } else {
                    results.push(r);
                }
            }
            // The final call may have nothing left to detect; what it would retire is the
            // batch before.
            if !detected.is_empty() {
                retired = detected;
            }
        };

    // Reading runs on its own thread, ahead of detection by at most READ_AHEAD traces, so
    // the two overlap on a batch of many traces; the channel bounds the memory held.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<LoadedTrace>(READ_AHEAD);
    let input = &args.input;
    let mut waiting = Duration::ZERO;
    let load = std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("pisama-reader".into())
            // Adapters recurse over nested documents; give them the main thread's room.
            .stack_size(READER_STACK)
            .spawn_scoped(scope, move || {
                output::load_inputs(input, &mut |t| {
                    // A send fails only when the receiver is gone, i.e. never before the end.
                    let _ = sender.send(t);
                })
            })
            .map_err(|e| Failure::from(anyhow::anyhow!("reader thread: {e}")))?;
        let mut pending_spans = 0usize;
        loop {
            let wait_started = Instant::now();
            let Ok(t) = receiver.recv() else { break };
            waiting += wait_started.elapsed();
            pending_spans += t.trace.spans.len();
            pending.push(t);
            if pending.len() >= BATCH || pending_spans >= BATCH_SPANS {
                flush(&mut pending, &mut results, &mut out);
                pending_spans = 0;
            }
        }
        flush(&mut pending, &mut results, &mut out);
        match reader.join() {
            Ok(load) => load,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })?;
    // The process ends once the results are written, and the system takes the memory back
    // at once; freeing a 100,000-span trace here is hundreds of thousands of frees (about
    // 0.05 s) that writing the results would wait for.
    std::mem::forget(retired);
    // `load_ms` is the time detection waited for the reader: all of the reading for one
    // trace, only the part that did not overlap with detection for many.
    let loaded_and_detected = started.elapsed();
    tracing::debug!(
        detect_ms = detecting.as_millis(),
        load_ms = waiting.as_millis(),
        total_ms = loaded_and_detected.as_millis(),
        "inputs read and detected"
    );
    if let Some(p) = &progress {
        p.finish_and_clear();
    }
    if let Some(e) = write_error {
        return Err(Failure::from(e));
    }
    for (path, reason) in &load.skipped {
        output::warning_line(&format!("skipped {path}: {reason}"));
    }
    let errors: Vec<String> = load.failed.iter().map(ToString::to_string).collect();
    if let Some(j) = &judge {
        if dry_run {
            j.write_plan(&mut out, args.format != DetectFormat::Text)?;
            out.flush()?;
            drop(out);
            for e in &errors {
                output::error_line(e);
            }
            return Ok(if errors.is_empty() {
                Exit::Ok
            } else {
                Exit::Input
            });
        }
        j.print_summary();
    }
    match args.format {
        DetectFormat::Jsonl => {}
        DetectFormat::Text => report::write_text(&mut out, &results, &load.files)?,
        DetectFormat::Json => report::write_json(&mut out, &results, &errors, engine.ids().len())?,
        DetectFormat::Sarif => report::write_sarif(&mut out, &results, &engine)?,
        DetectFormat::Junit => report::write_junit(&mut out, &results, &errors)?,
        DetectFormat::Markdown => report::write_markdown(&mut out, &results)?,
    }
    out.flush()?;
    drop(out);
    tracing::debug!(
        write_ms = started
            .elapsed()
            .saturating_sub(loaded_and_detected)
            .as_millis(),
        "report written"
    );
    for e in &errors {
        output::error_line(e);
    }
    if !errors.is_empty() {
        return Ok(Exit::Input);
    }
    let failing = match fail_on {
        None => false,
        Some(threshold) => worst.is_some_and(|w| w >= threshold),
    };
    Ok(if failing { Exit::Findings } else { Exit::Ok })
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos} traces checked ({per_sec}) {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

pub(crate) fn engine_from_config(config: &Config, assume_failed: bool) -> Result<Engine, Failure> {
    build(&[], &[], config, assume_failed)
}

fn build_engine(args: &DetectArgs, config: &Config) -> Result<Engine, Failure> {
    build(&args.detectors, &args.exclude, config, args.assume_failed)
}

fn build(
    only_flag: &[String],
    exclude_flag: &[String],
    config: &Config,
    assume_failed: bool,
) -> Result<Engine, Failure> {
    let engine_config = engine_config(only_flag, exclude_flag, config, assume_failed);
    Engine::new(&engine_config).map_err(|e| config_error(config, &e))
}

/// A configuration mistake, prefixed with the file it came from.
pub(crate) fn config_error(config: &Config, e: &dyn std::fmt::Display) -> Failure {
    let origin = config
        .path
        .as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default();
    Failure::input(format!("{origin}{e}"))
}

/// The engine configuration from flags and `pisama.toml` (flags win for `only`; excludes add).
pub(crate) fn engine_config(
    only_flag: &[String],
    exclude_flag: &[String],
    config: &Config,
    assume_failed: bool,
) -> EngineConfig {
    let only = if only_flag.is_empty() {
        config.detect.detectors.clone()
    } else {
        only_flag.to_vec()
    };
    let mut exclude = config.detect.exclude.clone();
    exclude.extend(exclude_flag.iter().cloned());
    EngineConfig {
        only: only
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        exclude: exclude
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        params: config.detectors.clone(),
        fail_threshold: config.detect.fail_threshold,
        pass_threshold: config.detect.pass_threshold,
        assume_failed,
    }
}

fn resolve_fail_on(flag: Option<FailOn>, config: &Config) -> Result<Option<Severity>, Failure> {
    let name = match flag {
        Some(FailOn::Never) => return Ok(None),
        Some(f) => format!("{f:?}").to_ascii_lowercase(),
        None => config
            .detect
            .fail_on
            .clone()
            .unwrap_or_else(|| "high".to_owned()),
    };
    if name.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    Severity::from_str(&name)
        .map(Some)
        .map_err(|e| Failure::input(format!("fail_on: {e}")))
}

pub(crate) fn resolve_min_severity(
    flag: Option<&str>,
    config: &Config,
) -> Result<Severity, Failure> {
    let name = flag
        .map(str::to_owned)
        .or_else(|| config.detect.min_severity.clone())
        .unwrap_or_else(|| "low".to_owned());
    Severity::from_str(&name).map_err(|e| Failure::input(format!("--min-severity: {e}")))
}

pub(crate) fn list(args: &DetectorsArgs) -> Result<Exit, Failure> {
    let engine =
        Engine::new(&EngineConfig::default()).map_err(|e| Failure::from(anyhow::anyhow!("{e}")))?;
    let mut out = io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            let list: Vec<_> = engine.metas().collect();
            serde_json::to_writer_pretty(&mut out, &json!({ "detectors": list }))
                .map_err(io::Error::from)?;
            writeln!(out)?;
        }
        ReportFormat::Text => {
            writeln!(
                out,
                "{:<30} {:<4} {:<9} {:<7} title",
                "id", "tier", "severity", "MAST"
            )?;
            for m in engine.metas() {
                writeln!(
                    out,
                    "{:<30} {:<4} {:<9} {:<7} {}",
                    m.id,
                    m.tier.to_string(),
                    m.severity.name(),
                    m.mast.map_or("-", |x| x.code()),
                    m.title
                )?;
            }
            writeln!(
                out,
                "\n{} detectors. `pisama explain ID` tells more about one.",
                engine.ids().len()
            )?;
        }
    }
    Ok(Exit::Ok)
}

pub(crate) fn explain(args: &ExplainArgs) -> Result<Exit, Failure> {
    let engine =
        Engine::new(&EngineConfig::default()).map_err(|e| Failure::from(anyhow::anyhow!("{e}")))?;
    let Some(meta) = engine.metas().find(|m| m.id == args.id) else {
        let ids = engine.ids();
        let close: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| id.contains(args.id.as_str()) || args.id.contains(id))
            .collect();
        let hint = if close.is_empty() {
            String::new()
        } else {
            format!("; did you mean {}?", close.join(", "))
        };
        return Err(Failure::input(format!(
            "unknown detector {:?}{hint} (`pisama detectors` lists them)",
            args.id
        )));
    };
    let mut out = io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, meta).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        ReportFormat::Text => {
            writeln!(out, "{} — {}", meta.id, meta.title)?;
            writeln!(
                out,
                "tier {} · default severity {} · category {}{}{}",
                meta.tier,
                meta.severity,
                meta.category,
                meta.mast
                    .map(|m| format!(" · MAST {} {}", m.code(), m.paper_name()))
                    .unwrap_or_default(),
                meta.trail
                    .as_ref()
                    .map(|t| format!(" · TRAIL {t}"))
                    .unwrap_or_default()
            )?;
            writeln!(out, "\nWhat it catches\n  {}", paragraph(&meta.description))?;
            writeln!(out, "\nHow to fix it\n  {}", paragraph(&meta.remediation))?;
            if !meta.params.0.is_empty() {
                writeln!(
                    out,
                    "\nParameters (override in pisama.toml under [detectors.{}])",
                    meta.id
                )?;
                for (k, v) in &meta.params.0 {
                    let doc = meta.param_docs.get(k).map_or("", String::as_str);
                    let value = match v {
                        pisama_detect::Param::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                            format!("{}", *n as i64)
                        }
                        other => serde_json::to_string(other).unwrap_or_default(),
                    };
                    writeln!(out, "  {k} = {value}  — {doc}")?;
                }
            }
            if !meta.calibration.points.is_empty() {
                writeln!(
                    out,
                    "\nConfidence calibration: {} point(s){}",
                    meta.calibration.points.len(),
                    meta.calibration
                        .source
                        .as_ref()
                        .map(|s| format!(", from {s}"))
                        .unwrap_or_default()
                )?;
            }
            if !meta.references.is_empty() {
                writeln!(out, "\nReferences")?;
                for r in &meta.references {
                    writeln!(out, "  - {r}")?;
                }
            }
        }
    }
    Ok(Exit::Ok)
}

fn paragraph(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
