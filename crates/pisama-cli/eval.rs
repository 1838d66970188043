//! `pisama eval`: runs detection on labelled data and scores it. Labels are taken from the
//! loaded traces' `labels` only after detection ran on the traces alone.

#![allow(clippy::print_stdout, reason = "command output goes to stdout")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use pisama_detect::TraceReport;
use pisama_detect::eval::{
    AttributionCase, Metric, VerdictCase, score_attribution, score_verdicts, verdict_case,
    who_when_answer,
};
use pisama_trace::load::InputOutcome;
use pisama_trace::{LoadOptions, LoadedTrace, Loader, SpanKind};
use rayon::prelude::*;
use serde_json::json;

use crate::args::{Dataset, EvalArgs, ReportFormat};
use crate::config;
use crate::detect::engine_from_config;
use crate::judge;
use crate::{Exit, Failure};

pub(crate) fn run(args: &EvalArgs) -> Result<Exit, Failure> {
    let config = config::load(args.config.as_deref())?;
    // Who&When runs are all failures and the task is to say where: attribution is forced.
    let engine = engine_from_config(&config, args.dataset == Dataset::WhoAndWhen)?;
    if !args.path.exists() {
        return Err(Failure::input(format!(
            "{}: no such file or directory",
            args.path.display()
        )));
    }
    let mut traces: Vec<LoadedTrace> = Vec::new();
    let mut loader = Loader::new(LoadOptions::default());
    let mut problems = Vec::new();
    for outcome in loader.load_paths(std::slice::from_ref(&args.path), &mut |t| traces.push(t)) {
        match outcome {
            InputOutcome::Loaded(_) => {}
            InputOutcome::Skipped { path, reason } => {
                problems.push(format!("skipped {path}: {reason}"));
            }
            InputOutcome::Failed(e) => problems.push(e.to_string()),
        }
    }
    if traces.is_empty() {
        return Err(Failure::input(format!(
            "{}: no traces to evaluate ({})",
            args.path.display(),
            problems.join("; ")
        )));
    }
    let mut reports: Vec<_> = traces.par_iter().map(|t| engine.run(&t.trace)).collect();
    let mut out = io::stdout().lock();
    // With --judge the metrics are of the judged reports, beside the same metrics without it.
    let mut judged = None;
    if let Some(mut session) = judge::Session::start(&args.judge, &config)? {
        let baseline = reports.clone();
        for (t, r) in traces.iter().zip(reports.iter_mut()) {
            session.review(&t.source.to_string(), &t.trace, r, &engine);
        }
        if session.dry_run() {
            session.write_plan(&mut out, args.format == ReportFormat::Json)?;
            out.flush()?;
            return Ok(Exit::Ok);
        }
        session.print_summary();
        judged = Some(Judged {
            baseline,
            stats: serde_json::to_value(session.stats()).unwrap_or_default(),
        });
    }
    let judged = judged.as_ref();
    match args.dataset {
        Dataset::WhoAndWhen => who_and_when(&mut out, args, &traces, &reports, &problems, judged)?,
        Dataset::TauBench => tau_bench(&mut out, args, &traces, &reports, &problems, judged)?,
        Dataset::Mast => mast(&mut out, args, &traces, &reports, &problems)?,
    }
    out.flush()?;
    Ok(Exit::Ok)
}

fn pct(m: &Metric) -> String {
    if m.value.is_nan() {
        return "n/a".to_owned();
    }
    format!(
        "{:5.1}%  [{:.1}–{:.1}]  N={}",
        m.value * 100.0,
        m.ci_low * 100.0,
        m.ci_high * 100.0,
        m.n
    )
}

fn num(m: &Metric) -> String {
    if m.value.is_nan() {
        return "n/a".to_owned();
    }
    format!(
        "{:.3}  [{:.3}–{:.3}]  N={}",
        m.value, m.ci_low, m.ci_high, m.n
    )
}

fn first_speaker(t: &LoadedTrace) -> Option<String> {
    t.trace
        .spans
        .iter()
        .filter(|s| s.kind != SpanKind::Human)
        .find_map(|s| s.agent.clone())
}

/// What `--judge` adds to an evaluation: the reports before the judge and its run totals.
struct Judged {
    baseline: Vec<TraceReport>,
    stats: serde_json::Value,
}

fn attribution_cases(traces: &[LoadedTrace], reports: &[TraceReport]) -> Vec<AttributionCase> {
    let mut cases = Vec::new();
    for (t, r) in traces.iter().zip(reports) {
        let Some((agent, step)) = who_when_answer(&t.labels) else {
            continue;
        };
        cases.push(AttributionCase {
            source: t.source.to_string(),
            true_agent: agent,
            true_step: step,
            predicted_agent: r.attribution.as_ref().and_then(|a| a.agent.clone()),
            predicted_step: r.attribution.as_ref().and_then(|a| a.step),
            first_speaker: first_speaker(t),
        });
    }
    cases
}

fn who_and_when(
    out: &mut impl Write,
    args: &EvalArgs,
    traces: &[LoadedTrace],
    reports: &[TraceReport],
    problems: &[String],
    judged: Option<&Judged>,
) -> Result<(), Failure> {
    let cases = attribution_cases(traces, reports);
    if cases.is_empty() {
        return Err(Failure::input(format!(
            "{}: no Who&When labels (mistake_agent / mistake_step) in {} trace(s)",
            args.path.display(),
            traces.len()
        )));
    }
    let m = score_attribution(&cases);
    let without = judged.map(|j| score_attribution(&attribution_cases(traces, &j.baseline)));
    if args.format == ReportFormat::Json {
        let mut doc =
            json!({"dataset": "who-and-when", "metrics": m, "cases": cases, "problems": problems});
        if let Some(j) = judged {
            doc["judge"] = json!({"run": j.stats, "metrics_without_judge": without});
        }
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "Who&When attribution — {} labelled case(s) from {}",
        cases.len(),
        args.path.display()
    )?;
    writeln!(out, "  (value, 95% bootstrap interval, N)\n")?;
    writeln!(out, "  agent accuracy      {}", pct(&m.agent_accuracy))?;
    writeln!(out, "  step exact          {}", pct(&m.step_exact))?;
    writeln!(out, "  step within ±1      {}", pct(&m.step_within_1))?;
    writeln!(out, "  step within ±2      {}", pct(&m.step_within_2))?;
    writeln!(out, "  step within ±5      {}", pct(&m.step_within_5))?;
    writeln!(
        out,
        "  no attribution      {} case(s) (counted as misses)\n",
        m.unattributed
    )?;
    if let Some(w) = &without {
        writeln!(out, "  without the judge (T1/T2 only, same cases)")?;
        writeln!(out, "    agent accuracy    {}", pct(&w.agent_accuracy))?;
        writeln!(out, "    step exact        {}", pct(&w.step_exact))?;
        writeln!(out, "    step within ±1    {}\n", pct(&w.step_within_1))?;
    }
    writeln!(out, "  baselines")?;
    for b in &m.baselines {
        writeln!(out, "    {}", b.name)?;
        if let Some(a) = &b.agent_accuracy {
            writeln!(out, "      agent accuracy  {}", pct(a))?;
        }
        if let Some(s) = &b.step_exact {
            writeln!(out, "      step exact      {}", pct(s))?;
        }
    }
    writeln!(
        out,
        "    published GPT-4o (Who&When paper, Table 1): all-at-once 51.1% agent / 13.5% step; step-by-step 26.0% / 15.3%; binary search 30.1% / 16.6%"
    )?;
    if args.cases {
        writeln!(
            out,
            "\n  {:<60} {:>24} {:>24}",
            "case", "answer", "predicted"
        )?;
        for c in &cases {
            writeln!(
                out,
                "  {:<60} {:>24} {:>24}",
                pisama_trace::util::truncate(&c.source, 60),
                format!("{}@{}", c.true_agent, c.true_step),
                format!(
                    "{}@{}",
                    c.predicted_agent.as_deref().unwrap_or("-"),
                    c.predicted_step
                        .map_or_else(|| "-".to_owned(), |s| s.to_string())
                )
            )?;
        }
    }
    write_problems(out, problems)
}

fn verdict_cases(traces: &[LoadedTrace], reports: &[TraceReport]) -> Vec<VerdictCase> {
    let mut cases = Vec::new();
    for (t, r) in traces.iter().zip(reports) {
        let reward = t
            .labels
            .iter()
            .find(|l| l.source == "tau-bench" && l.category == "reward")
            .and_then(|l| l.value);
        let Some(reward) = reward else { continue };
        cases.push(verdict_case(r, reward < 1.0));
    }
    cases
}

fn tau_bench(
    out: &mut impl Write,
    args: &EvalArgs,
    traces: &[LoadedTrace],
    reports: &[TraceReport],
    problems: &[String],
    judged: Option<&Judged>,
) -> Result<(), Failure> {
    let cases = verdict_cases(traces, reports);
    if cases.is_empty() {
        return Err(Failure::input(format!(
            "{}: no tau-bench rewards in {} trace(s)",
            args.path.display(),
            traces.len()
        )));
    }
    let m = score_verdicts(&cases);
    let without = judged.map(|j| score_verdicts(&verdict_cases(traces, &j.baseline)));
    let mut by_detector: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (t, r) in traces.iter().zip(reports) {
        let failed = t
            .labels
            .iter()
            .any(|l| l.category == "reward" && l.value.is_some_and(|v| v < 1.0));
        let mut seen = std::collections::BTreeSet::new();
        for f in &r.findings {
            if seen.insert(f.detector.as_str()) {
                let e = by_detector.entry(f.detector.as_str()).or_default();
                if failed { e.0 += 1 } else { e.1 += 1 }
            }
        }
    }
    if args.calibrate {
        calibrate(out, args, traces, reports)?;
        return Ok(());
    }
    if args.format == ReportFormat::Json {
        let detectors: BTreeMap<&str, serde_json::Value> = by_detector
            .iter()
            .map(|(k, (f, s))| (*k, json!({"failed_runs": f, "successful_runs": s})))
            .collect();
        let mut doc = json!({"dataset": "tau-bench", "metrics": m, "detectors": detectors, "problems": problems});
        if let Some(j) = judged {
            doc["judge"] = json!({"run": j.stats, "metrics_without_judge": without});
        }
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "tau-bench verdicts — {} run(s): {} failed, {} successful ({})",
        cases.len(),
        m.failed_runs,
        m.successful_runs,
        args.path.display()
    )?;
    writeln!(
        out,
        "  (`fail` verdicts scored against reward < 1; value, 95% bootstrap interval, N)\n"
    )?;
    writeln!(out, "  precision               {}", pct(&m.precision))?;
    writeln!(out, "  recall                  {}", pct(&m.recall))?;
    writeln!(out, "  F1                      {}", num(&m.f1))?;
    writeln!(
        out,
        "  false-positive rate     {}   (fail verdicts on successful runs)",
        pct(&m.false_positive_rate)
    )?;
    writeln!(
        out,
        "  high/critical on OK     {}   (successful runs with a high or critical finding)",
        pct(&m.severe_on_successful)
    )?;
    writeln!(out, "  AUROC of score          {}", num(&m.auroc))?;
    writeln!(out, "  unsure verdicts         {}\n", m.unsure)?;
    if let Some(w) = &without {
        writeln!(out, "  without the judge (T1/T2 only, same runs)")?;
        writeln!(out, "    precision             {}", pct(&w.precision))?;
        writeln!(out, "    recall                {}", pct(&w.recall))?;
        writeln!(
            out,
            "    false-positive rate   {}",
            pct(&w.false_positive_rate)
        )?;
        writeln!(out, "    AUROC of score        {}", num(&w.auroc))?;
        writeln!(out, "    unsure verdicts       {}\n", w.unsure)?;
    }
    writeln!(out, "  baselines")?;
    for b in &m.baselines {
        writeln!(
            out,
            "    {:<32} precision {:.3}  recall {:.3}  F1 {:.3}  FPR {:.3}",
            b.name, b.precision, b.recall, b.f1, b.false_positive_rate
        )?;
    }
    writeln!(
        out,
        "\n  runs with a finding, per detector (failed / successful)"
    )?;
    for (d, (f, s)) in &by_detector {
        writeln!(out, "    {d:<32} {f:>4} / {s:<4}")?;
    }
    write_problems(out, problems)
}

/// Smallest number of runs a detector must fire on before its calibration is fitted.
const MIN_CALIBRATION_RUNS: usize = 8;

fn calibrate(
    out: &mut impl Write,
    args: &EvalArgs,
    traces: &[LoadedTrace],
    reports: &[TraceReport],
) -> Result<(), Failure> {
    // Per detector: the strongest raw score it gave each run, and whether the run failed.
    let mut observations: BTreeMap<String, Vec<(f64, bool)>> = BTreeMap::new();
    for (t, r) in traces.iter().zip(reports) {
        let Some(reward) = t
            .labels
            .iter()
            .find(|l| l.category == "reward")
            .and_then(|l| l.value)
        else {
            continue;
        };
        let mut best: BTreeMap<&str, f64> = BTreeMap::new();
        for f in &r.findings {
            let e = best.entry(f.detector.as_str()).or_insert(0.0);
            *e = e.max(f.raw_score);
        }
        for (d, s) in best {
            observations
                .entry(d.to_owned())
                .or_default()
                .push((s, reward < 1.0));
        }
    }
    let source = format!(
        "{}: P(run failed | finding), {} runs, fitted by `pisama eval --calibrate`",
        args.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("labelled data"),
        traces.len()
    );
    writeln!(
        out,
        "calibration (raw score → probability that a run with this finding failed)"
    )?;
    for (detector, obs) in &observations {
        let points = pisama_detect::eval::fit_calibration(obs, 4, MIN_CALIBRATION_RUNS);
        let fails = obs.iter().filter(|o| o.1).count();
        if points.is_empty() {
            writeln!(
                out,
                "  {detector:<32} fired on {} run(s) ({fails} failed): too few to fit",
                obs.len()
            )?;
            continue;
        }
        writeln!(
            out,
            "  {detector:<32} fired on {} run(s) ({fails} failed): {points:?}",
            obs.len()
        )?;
        if let Some(dir) = &args.write_calibration {
            write_calibration(&dir.join(format!("{detector}.toml")), &points, &source)?;
        }
    }
    Ok(())
}

/// Replaces (or appends) the `[calibration]` table of a catalogue file, atomically.
fn write_calibration(
    path: &std::path::Path,
    points: &[[f64; 2]],
    source: &str,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let kept: Vec<&str> = match text.find("\n[calibration]") {
        Some(i) => {
            let rest = &text[i + 1..];
            let end = rest[1..].find("\n[").map_or(rest.len(), |j| j + 2);
            vec![&text[..=i], &rest[end.min(rest.len())..]]
        }
        None => vec![text.as_str()],
    };
    let mut new_text = kept.concat().trim_end().to_owned();
    new_text.push('\n');
    let pts: Vec<String> = points
        .iter()
        .map(|p| format!("[{}, {}]", p[0], p[1]))
        .collect();
    let _ = write!(
        new_text,
        "
[calibration]
source = {source:?}
points = [{}]
",
        pts.join(", ")
    );
    crate::output::write_atomic(path, new_text.as_bytes())
        .map_err(|e| Failure::input(format!("{}: cannot write: {e}", path.display())))
}

fn mast(
    out: &mut impl Write,
    args: &EvalArgs,
    traces: &[LoadedTrace],
    reports: &[TraceReport],
    problems: &[String],
) -> Result<(), Failure> {
    let mut rows = Vec::new();
    for (t, r) in traces.iter().zip(reports) {
        let labelled: Vec<String> = t
            .labels
            .iter()
            .filter(|l| l.source == "mast" && l.value.is_none_or(|v| v >= 0.5))
            .map(|l| l.category.clone())
            .collect();
        let mut detected: Vec<String> = r
            .findings
            .iter()
            .filter_map(|f| f.mast.map(|m| m.code().to_owned()))
            .collect();
        detected.sort();
        detected.dedup();
        rows.push((t.source.to_string(), labelled, detected, r.verdict));
    }
    if args.format == ReportFormat::Json {
        let doc = json!({
            "dataset": "mast",
            "note": "qualitative only: the released human labels are inconsistent (three taxonomy versions, repeated blocks)",
            "traces": rows.iter().map(|(s, l, d, v)| json!({"source": s, "labelled": l, "detected": d, "verdict": v})).collect::<Vec<_>>(),
            "problems": problems,
        });
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "MAST failure modes — {} trace(s), qualitative only",
        rows.len()
    )?;
    writeln!(
        out,
        "  (the released human labels are inconsistent: three taxonomy versions, repeated blocks; no score is computed)\n"
    )?;
    for (source, labelled, detected, verdict) in &rows {
        writeln!(out, "  {source}  verdict {verdict}")?;
        writeln!(
            out,
            "    annotators (majority): {}",
            if labelled.is_empty() {
                "-".to_owned()
            } else {
                labelled.join("; ")
            }
        )?;
        writeln!(
            out,
            "    detected MAST modes:   {}",
            if detected.is_empty() {
                "-".to_owned()
            } else {
                detected.join(", ")
            }
        )?;
    }
    write_problems(out, problems)
}

fn write_problems(out: &mut impl Write, problems: &[String]) -> Result<(), Failure> {
    if !problems.is_empty() {
        writeln!(out, "\n  input problems:")?;
        for p in problems {
            writeln!(out, "    {p}")?;
        }
    }
    Ok(())
}
