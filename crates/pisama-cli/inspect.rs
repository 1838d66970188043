//! `pisama inspect` and `pisama formats`.

#![allow(clippy::print_stdout, reason = "command output goes to stdout")]

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::json;

use pisama_trace::summary::TraceSummary;
use pisama_trace::{CostSource, FileSummary, Format, TraceSource};

use crate::args::{FormatsArgs, InspectArgs, ReportFormat};
use crate::output::{self, LoadReport, Style, duration, thousands};
use crate::{Exit, Failure};

#[derive(Debug, Serialize)]
struct InspectedTrace {
    source: TraceSource,
    #[serde(flatten)]
    summary: TraceSummary,
    /// How many dataset labels came with the trace (their content is not shown).
    labels: usize,
}

#[derive(Debug, Serialize)]
struct InspectedFile {
    #[serde(flatten)]
    file: FileSummary,
    traces_detail: Vec<InspectedTrace>,
}

pub(crate) fn run(args: &InspectArgs) -> Result<Exit, Failure> {
    let mut by_file: BTreeMap<String, Vec<InspectedTrace>> = BTreeMap::new();
    let report = output::load_inputs(&args.input, &mut |t| {
        by_file
            .entry(t.source.path.clone())
            .or_default()
            .push(InspectedTrace {
                summary: TraceSummary::of(&t.trace),
                labels: t.labels.len(),
                source: t.source,
            });
    })?;
    let files: Vec<InspectedFile> = report
        .files
        .iter()
        .map(|f| InspectedFile {
            traces_detail: by_file.remove(&f.path).unwrap_or_default(),
            file: f.clone(),
        })
        .collect();
    let mut out = io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            let doc = json!({
                "version": 1,
                "files": files.iter().map(file_json).collect::<Vec<_>>(),
                "skipped": report.skipped.iter().map(|(p, r)| json!({"path": p, "reason": r})).collect::<Vec<_>>(),
                "errors": report.failed.iter().map(|e| json!({"path": e.path(), "message": e.to_string()})).collect::<Vec<_>>(),
            });
            serde_json::to_writer_pretty(&mut out, &doc).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        ReportFormat::Text => write_text(&mut out, &files, &report)?,
    }
    out.flush()?;
    for e in &report.failed {
        output::error_line(&e.to_string());
    }
    if report.failed.is_empty() {
        Ok(Exit::Ok)
    } else {
        Ok(Exit::Input)
    }
}

fn file_json(f: &InspectedFile) -> serde_json::Value {
    let mut v = serde_json::to_value(&f.file).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "trace_count".into(),
            obj.get("traces").cloned().unwrap_or_default(),
        );
        obj.insert(
            "traces".into(),
            serde_json::to_value(&f.traces_detail).unwrap_or_default(),
        );
    }
    v
}

fn write_text(
    out: &mut impl Write,
    files: &[InspectedFile],
    report: &LoadReport,
) -> io::Result<()> {
    let st = Style::new();
    let mut total_traces = 0usize;
    for f in files {
        let file = &f.file;
        total_traces += file.traces;
        // A version is shown for the file only when all its traces share it.
        let mut versions = f
            .traces_detail
            .iter()
            .map(|t| t.summary.format_version.clone());
        let first_version = versions.next().flatten();
        let version = if versions.all(|v| v == first_version) {
            first_version
        } else {
            None
        };
        writeln!(out, "{}{}{}", st.bold, file.path, st.reset)?;
        let mut fmt_line = file.format.name().to_owned();
        if let Some(v) = version {
            fmt_line = format!("{fmt_line} ({v})");
        }
        writeln!(
            out,
            "  format     {fmt_line}  {}[{}{}{}]{}",
            st.dim,
            file.rule,
            file.compression
                .map(|c| format!(", {c}"))
                .unwrap_or_default(),
            if file.streamed { ", streamed" } else { "" },
            st.reset
        )?;
        writeln!(out, "  traces     {}", file.traces)?;
        for w in &file.warnings {
            writeln!(out, "  {}warning{}    {w}", st.yellow, st.reset)?;
        }
        // Many traces in one file: a table row each, capped; a few: full detail.
        if f.traces_detail.len() > 5 {
            write_table(out, &f.traces_detail, &st)?;
        } else {
            for t in &f.traces_detail {
                write_trace(out, t, &st)?;
            }
        }
        writeln!(out)?;
    }
    for (path, reason) in &report.skipped {
        writeln!(out, "{}skipped{} {path}: {reason}", st.dim, st.reset)?;
    }
    if files.len() + report.skipped.len() + report.failed.len() > 1 {
        writeln!(
            out,
            "{} file(s), {} trace(s){}{}",
            files.len(),
            total_traces,
            if report.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} skipped", report.skipped.len())
            },
            if report.failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed", report.failed.len())
            },
        )?;
    }
    Ok(())
}

fn write_trace(out: &mut impl Write, t: &InspectedTrace, st: &Style) -> io::Result<()> {
    let s = &t.summary;
    let label = match t.source.index {
        Some(i) => format!("trace #{i} {}", s.id),
        None => format!("trace {}", s.id),
    };
    writeln!(out, "  {}── {label}{}", st.bold, st.reset)?;
    writeln!(out, "    status     {}", status_name(s))?;
    writeln!(
        out,
        "    agents     {}",
        if s.agents.is_empty() {
            "-".to_owned()
        } else {
            s.agents.join(", ")
        }
    )?;
    let kinds: Vec<String> = s
        .spans_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(out, "    spans      {} ({})", s.spans, kinds.join(", "))?;
    writeln!(out, "    steps      {}", s.steps)?;
    let err = if s.tool_errors > 0 {
        format!("{}{} failed{}", st.red, s.tool_errors, st.reset)
    } else {
        "0 failed".to_owned()
    };
    writeln!(out, "    tool calls {} ({err})", s.tool_calls)?;
    if s.errors > s.tool_errors {
        writeln!(out, "    errors     {} span(s) in error", s.errors)?;
    }
    writeln!(out, "    handoffs   {}", s.handoffs)?;
    writeln!(out, "    tokens     {}", tokens(s))?;
    if let Some(c) = &s.cost {
        let how = match c.source {
            CostSource::Reported => "reported",
            CostSource::Estimated => "estimated",
        };
        writeln!(out, "    cost       {:.4} {} ({how})", c.amount, c.currency)?;
    }
    if let Some(ms) = s.duration_ms {
        writeln!(out, "    duration   {}", duration(ms))?;
    }
    if let Some(task) = &s.task {
        writeln!(out, "    task       {}", one_line(task))?;
    }
    if t.labels > 0 {
        writeln!(
            out,
            "    labels     {} (dataset answers; never shown to detectors)",
            t.labels
        )?;
    }
    for w in &s.warnings {
        writeln!(out, "    {}warning{}    {w}", st.yellow, st.reset)?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, traces: &[InspectedTrace], st: &Style) -> io::Result<()> {
    const SHOWN: usize = 50;
    writeln!(
        out,
        "  {}{:>6}  {:<28} {:>6} {:>6} {:>6} {:>7} {:>10}  agents{}",
        st.dim, "#", "trace", "spans", "steps", "tools", "failed", "tokens", st.reset
    )?;
    for t in traces.iter().take(SHOWN) {
        let s = &t.summary;
        writeln!(
            out,
            "  {:>6}  {:<28} {:>6} {:>6} {:>6} {:>7} {:>10}  {}",
            t.source.index.map(|i| i.to_string()).unwrap_or_default(),
            crate_truncate(&s.id, 28),
            s.spans,
            s.steps,
            s.tool_calls,
            s.tool_errors,
            s.usage.total_tokens().map_or_else(|| "-".into(), thousands),
            crate_truncate(&s.agents.join(", "), 60),
        )?;
    }
    if traces.len() > SHOWN {
        writeln!(
            out,
            "  … {} more (use --format json for all)",
            traces.len() - SHOWN
        )?;
    }
    Ok(())
}

fn crate_truncate(s: &str, max: usize) -> String {
    pisama_trace::util::truncate(s, max)
}

fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    pisama_trace::util::truncate(&flat, 110)
}

fn status_name(s: &TraceSummary) -> &'static str {
    match s.status {
        pisama_trace::Status::Ok => "ok",
        pisama_trace::Status::Error => "error",
        pisama_trace::Status::Unset => "unknown (the source does not say)",
    }
}

fn tokens(s: &TraceSummary) -> String {
    let u = &s.usage;
    if u.is_empty() {
        return "- (the source reports none)".to_owned();
    }
    let mut parts = vec![format!("in {}", thousands(u.input.unwrap_or(0)))];
    if let Some(c) = u.cache_read.filter(|c| *c > 0) {
        parts.push(format!("(cached {})", thousands(c)));
    }
    parts.push(format!("out {}", thousands(u.output.unwrap_or(0))));
    if let Some(r) = u.reasoning.filter(|r| *r > 0) {
        parts.push(format!("(reasoning {})", thousands(r)));
    }
    if u.estimated {
        parts.push("estimated".to_owned());
    }
    parts.join(" ")
}

pub(crate) fn formats(args: &FormatsArgs) -> Result<Exit, Failure> {
    let mut out = io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            let list: Vec<_> = Format::ALL
                .iter()
                .map(|f| json!({"name": f.name(), "description": f.describe()}))
                .collect();
            serde_json::to_writer_pretty(&mut out, &json!({ "formats": list }))
                .map_err(io::Error::from)?;
            writeln!(out)?;
        }
        ReportFormat::Text => {
            writeln!(
                out,
                "Formats pisama reads (detected from content; force one with --input-format NAME):\n"
            )?;
            for f in Format::ALL {
                writeln!(out, "  {:<22} {}", f.name(), f.describe())?;
            }
            writeln!(
                out,
                "\nAny of them may be gzip- or zstd-compressed, a folder of files, or a JSON array / JSON Lines stream of many traces."
            )?;
        }
    }
    Ok(Exit::Ok)
}
