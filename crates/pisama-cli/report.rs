//! Renderers for `pisama detect`: text, JSON, JSON Lines, SARIF 2.1.0, JUnit XML, Markdown.
//!
//! The JSON and JSON Lines trace object is `pisama_detect::TraceResult`, a public, versioned
//! schema (`docs/detect.schema.json`) shared with the MCP server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::json;

use pisama_detect::result::{SCHEMA_VERSION, TraceResult, trace_result_schema};
use pisama_detect::{Engine, Finding, JudgeDecision, JudgeReview, Severity, Verdict};
use pisama_trace::FileSummary;

use crate::output::Style;

pub(crate) fn print_schema() -> Result<crate::Exit, crate::Failure> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &trace_result_schema()).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(crate::Exit::Ok)
}

pub(crate) fn write_jsonl(out: &mut dyn Write, r: &TraceResult) -> io::Result<()> {
    serde_json::to_writer(&mut *out, r).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

fn counts(results: &[TraceResult]) -> (usize, usize, usize) {
    results
        .iter()
        .fold((0, 0, 0), |(f, u, p), r| match r.report.verdict {
            Verdict::Fail => (f + 1, u, p),
            Verdict::Unsure => (f, u + 1, p),
            Verdict::Pass => (f, u, p + 1),
        })
}

pub(crate) fn write_json(
    out: &mut dyn Write,
    results: &[TraceResult],
    errors: &[String],
    detectors: usize,
) -> io::Result<()> {
    let (fail, unsure, pass) = counts(results);
    let mut by_severity: BTreeMap<&str, usize> = BTreeMap::new();
    for f in results.iter().flat_map(|r| &r.report.findings) {
        *by_severity.entry(f.severity.name()).or_default() += 1;
    }
    let doc = json!({
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "pisama", "version": env!("CARGO_PKG_VERSION")},
        "summary": {
            "traces": results.len(), "fail": fail, "unsure": unsure, "pass": pass,
            "detectors": detectors, "findings_by_severity": by_severity,
        },
        "traces": results,
        "errors": errors,
    });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

pub(crate) fn write_text(
    out: &mut dyn Write,
    results: &[TraceResult],
    files: &[FileSummary],
) -> io::Result<()> {
    let st = Style::new();
    for r in results {
        let rep = &r.report;
        writeln!(
            out,
            "{}{}{}  {}{}{}{} score {:.2}  {}[{}, {} agent(s){}]{}",
            st.bold,
            r.source,
            st.reset,
            st.bold,
            st.verdict(rep.verdict),
            rep.verdict.to_string().to_uppercase(),
            st.reset,
            rep.score,
            st.dim,
            r.format,
            r.agents.len(),
            // The exposure part of the score: without it a score with no findings is a puzzle.
            match rep.state_changes {
                0 => String::new(),
                1 => ", 1 state change".to_owned(),
                n => format!(", {n} state changes"),
            },
            st.reset
        )?;
        if let Some(a) = &rep.attribution {
            writeln!(
                out,
                "  decisive failure: {} at step {} ({}, confidence {:.2}, {})",
                a.agent.as_deref().unwrap_or("unknown agent"),
                a.step.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                a.category,
                a.confidence,
                a.tier
            )?;
            if let Some(j) = &a.judge {
                write_judge_text(out, j, &st)?;
            }
        }
        if rep.findings.is_empty() {
            writeln!(out, "  {}no findings{}", st.dim, st.reset)?;
        }
        for f in &rep.findings {
            write_finding_text(out, f, &st)?;
        }
        for f in &rep.dismissed {
            writeln!(
                out,
                "  {}dismissed by the judge: {} ({}{}){}",
                st.dim,
                f.title,
                f.detector,
                f.step.map(|s| format!(", step {s}")).unwrap_or_default(),
                st.reset
            )?;
            if let Some(j) = &f.judge {
                write_judge_text(out, j, &st)?;
            }
        }
        for d in &rep.diagnostics {
            writeln!(
                out,
                "  {}detector {} failed: {}{}",
                st.yellow, d.detector, d.message, st.reset
            )?;
        }
        writeln!(out)?;
    }
    let (fail, unsure, pass) = counts(results);
    let warnings: usize = files.iter().map(|f| f.warnings.len()).sum();
    writeln!(
        out,
        "{} trace(s): {}{fail} fail{}, {}{unsure} unsure{}, {}{pass} pass{}{}",
        results.len(),
        st.red,
        st.reset,
        st.yellow,
        st.reset,
        st.green,
        st.reset,
        if warnings > 0 {
            format!(" ({warnings} input warning(s); `pisama inspect` shows them)")
        } else {
            String::new()
        }
    )
}

fn write_finding_text(out: &mut dyn Write, f: &Finding, st: &Style) -> io::Result<()> {
    let place = match (&f.agent, f.step) {
        (Some(a), Some(s)) => format!(" — {a}, step {s}"),
        (Some(a), None) => format!(" — {a}"),
        (None, Some(s)) => format!(" — step {s}"),
        (None, None) => String::new(),
    };
    writeln!(
        out,
        "  {}{:<8}{} {}{}{} {}({}{}, {:.0}% confident){}{}",
        st.severity(f.severity),
        f.severity.name().to_uppercase(),
        st.reset,
        st.bold,
        f.title,
        st.reset,
        st.dim,
        f.detector,
        f.mast
            .map(|m| format!(", MAST {}", m.code()))
            .unwrap_or_default(),
        f.confidence * 100.0,
        st.reset,
        place
    )?;
    writeln!(out, "           {}", f.summary)?;
    for e in f.evidence.iter().take(3) {
        let at = e
            .step
            .map_or_else(|| e.span_id.clone(), |s| format!("step {s}"));
        match &e.quote {
            Some(q) => writeln!(
                out,
                "           {}{at} ({}): \"{q}\"{}",
                st.dim, e.note, st.reset
            )?,
            None => writeln!(out, "           {}{at}: {}{}", st.dim, e.note, st.reset)?,
        }
    }
    if !f.merged.is_empty() {
        writeln!(
            out,
            "           {}also reported by {} (same moment, folded in){}",
            st.dim,
            f.merged.join(", "),
            st.reset
        )?;
    }
    writeln!(out, "           fix: {}", f.remediation)?;
    if let Some(j) = &f.judge {
        write_judge_text(out, j, st)?;
    }
    Ok(())
}

fn write_judge_text(out: &mut dyn Write, j: &JudgeReview, st: &Style) -> io::Result<()> {
    let decision = match j.decision {
        JudgeDecision::Confirm => "confirmed".to_owned(),
        JudgeDecision::Reject => "rejected".to_owned(),
        JudgeDecision::Adjust => format!(
            "adjusted the severity{}",
            j.severity_before
                .map(|s| format!(" (was {s})"))
                .unwrap_or_default()
        ),
        JudgeDecision::Replace => "named the decisive step".to_owned(),
    };
    writeln!(
        out,
        "           {}judge ({}): {decision}: {}{}",
        st.dim, j.model, j.reason, st.reset
    )
}

pub(crate) fn write_markdown(out: &mut dyn Write, results: &[TraceResult]) -> io::Result<()> {
    let (fail, unsure, pass) = counts(results);
    writeln!(
        out,
        "## pisama: {} trace(s) — {fail} fail, {unsure} unsure, {pass} pass\n",
        results.len()
    )?;
    for r in results {
        let rep = &r.report;
        writeln!(
            out,
            "### `{}` — **{}** (score {:.2})\n",
            r.source, rep.verdict, rep.score
        )?;
        if let Some(a) = &rep.attribution {
            writeln!(
                out,
                "Decisive failure: **{}** at step {} ({}, confidence {:.2}, {}){}\n",
                a.agent.as_deref().unwrap_or("unknown agent"),
                a.step.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                a.category,
                a.confidence,
                a.tier,
                a.judge
                    .as_ref()
                    .map(|j| format!(" — judge: {}", md_escape(&j.reason)))
                    .unwrap_or_default()
            )?;
        }
        if rep.findings.is_empty() {
            writeln!(out, "No findings.\n")?;
            continue;
        }
        writeln!(
            out,
            "| severity | detector | where | what | confidence |\n|---|---|---|---|---|"
        )?;
        for f in &rep.findings {
            let place = match (&f.agent, f.step) {
                (Some(a), Some(s)) => format!("{a}, step {s}"),
                (Some(a), None) => a.clone(),
                (None, Some(s)) => format!("step {s}"),
                (None, None) => String::new(),
            };
            writeln!(
                out,
                "| {} | `{}` | {} | {} | {:.0}% |",
                f.severity,
                f.detector,
                md_escape(&place),
                md_escape(&f.summary)
                    + &f.judge
                        .as_ref()
                        .map(|j| format!(" (judge: {})", md_escape(&j.reason)))
                        .unwrap_or_default(),
                f.confidence * 100.0
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// SARIF 2.1.0. Each finding is a result located in the trace file (at the evidence's line
/// when the source is line-oriented, else line 1, with the JSON Pointer in the message).
pub(crate) fn write_sarif(
    out: &mut dyn Write,
    results: &[TraceResult],
    engine: &Engine,
) -> io::Result<()> {
    let rules: Vec<_> = engine
        .metas()
        .map(|m| {
            let tags: Vec<String> =
                std::iter::once(m.category.clone()).chain(m.mast.map(|x| x.code().to_owned())).collect();
            json!({
                "id": m.id,
                "name": m.title.split_whitespace().map(capitalize).collect::<String>(),
                "shortDescription": {"text": m.title},
                "fullDescription": {"text": m.description.split_whitespace().collect::<Vec<_>>().join(" ")},
                "help": {"text": m.remediation.split_whitespace().collect::<Vec<_>>().join(" ")},
                "defaultConfiguration": {"level": sarif_level(m.severity)},
                "properties": {
                    "tags": tags,
                    "problem.severity": sarif_level(m.severity),
                }
            })
        })
        .collect();
    let ids: Vec<&str> = engine.ids();
    let mut sarif_results = Vec::new();
    for r in results {
        for f in &r.report.findings {
            let first = f.evidence.first();
            let line = first.and_then(|e| e.line).unwrap_or(1).max(1);
            let mut message = format!("{}: {}", f.title, f.summary);
            if let Some(p) = first.and_then(|e| e.pointer.as_deref()) {
                let _ = write!(message, " (at {p})");
            }
            sarif_results.push(json!({
                "ruleId": f.detector,
                "ruleIndex": ids.iter().position(|i| *i == f.detector).unwrap_or(0),
                "level": sarif_level(f.severity),
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri_of(&r.source.path)},
                        "region": {"startLine": line}
                    }
                }],
                "partialFingerprints": {
                    "pisama/v1": format!("{}:{}:{}:{}", f.detector, r.trace_id, f.step.map_or(-1, i64::from), f.agent.as_deref().unwrap_or(""))
                },
                "properties": {
                    "confidence": f.confidence,
                    "severity": f.severity.name(),
                    "traceId": r.trace_id,
                    "verdict": r.report.verdict,
                    "step": f.step,
                    "agent": f.agent,
                    "judge": f.judge,
                }
            }));
        }
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "pisama",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": sarif_results,
        }]
    });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// A relative, forward-slash URI for a path (what code-scanning viewers expect).
fn uri_of(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.strip_prefix("./").unwrap_or(&p).to_owned();
    p.split('/')
        .map(|seg| seg.replace(' ', "%20"))
        .collect::<Vec<_>>()
        .join("/")
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: a test suite per input file, a test case per trace; a trace whose verdict is
/// `fail` is a failed test case, listing its findings.
pub(crate) fn write_junit(
    out: &mut dyn Write,
    results: &[TraceResult],
    errors: &[String],
) -> io::Result<()> {
    let mut suites: BTreeMap<&str, Vec<&TraceResult>> = BTreeMap::new();
    for r in results {
        suites.entry(r.source.path.as_str()).or_default().push(r);
    }
    let failures = results
        .iter()
        .filter(|r| r.report.verdict == Verdict::Fail)
        .count();
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"pisama\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\">",
        results.len(),
        errors.len()
    )?;
    for (path, rs) in &suites {
        let f = rs
            .iter()
            .filter(|r| r.report.verdict == Verdict::Fail)
            .count();
        writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\">",
            xml_escape(path),
            rs.len()
        )?;
        for r in rs {
            let name = match r.source.index {
                Some(i) => format!("#{i} {}", r.trace_id),
                None => r.trace_id.clone(),
            };
            write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml_escape(path),
                xml_escape(&name)
            )?;
            if r.report.verdict == Verdict::Fail {
                let top = r.report.findings.first();
                writeln!(out, ">")?;
                let mut body = String::new();
                for f in &r.report.findings {
                    let _ = writeln!(
                        body,
                        "[{}] {} ({}{}): {}",
                        f.severity,
                        f.title,
                        f.detector,
                        f.step.map(|s| format!(", step {s}")).unwrap_or_default(),
                        f.summary
                    );
                }
                writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    xml_escape(
                        &top.map_or_else(|| "verdict: fail".to_owned(), |f| f.summary.clone())
                    ),
                    xml_escape(top.map_or("pisama", |f| f.detector.as_str())),
                    xml_escape(&body)
                )?;
                writeln!(out, "    </testcase>")?;
            } else {
                writeln!(out, "/>")?;
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    if !errors.is_empty() {
        writeln!(
            out,
            "  <testsuite name=\"input errors\" tests=\"{}\" errors=\"{}\">",
            errors.len(),
            errors.len()
        )?;
        for (i, e) in errors.iter().enumerate() {
            writeln!(
                out,
                "    <testcase classname=\"input\" name=\"input {i}\"><error message=\"{}\"/></testcase>",
                xml_escape(e.lines().next().unwrap_or(e))
            )?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}
