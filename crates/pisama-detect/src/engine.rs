//! The engine: runs the selected detectors over traces in parallel (rayon), isolates panics,
//! turns raw hits into findings, and aggregates them into a verdict and an attribution.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use pisama_trace::{Trace, util::truncate};

use crate::catalog::{self, CatalogError, DetectorMeta, Param, Params};
use crate::detectors;
use crate::finding::{Attribution, Diagnostic, Evidence, Finding, Severity, Verdict};
use crate::verdict;
use crate::view::{Idx, TraceView};

/// What a detector reports: a raw score in 0..1 (calibrated into a confidence by the engine)
/// and where the problem is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hit {
    /// Strength of the signal, 0..1, before calibration.
    pub score: f64,
    /// A different severity than the catalogue's default, when the detector can tell.
    pub severity: Option<Severity>,
    pub summary: String,
    /// The span where the failure happened (its agent and step are taken from it unless
    /// given below).
    pub at: Option<Idx>,
    pub agent: Option<String>,
    pub step: Option<u32>,
    pub evidence: Vec<HitEvidence>,
}

/// A span that supports a hit, with what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct HitEvidence {
    pub span: Idx,
    pub note: String,
    /// A quote; when `None` the engine quotes the start of the span's text.
    pub quote: Option<String>,
}

impl HitEvidence {
    pub fn new(span: Idx, note: impl Into<String>) -> Self {
        HitEvidence {
            span,
            note: note.into(),
            quote: None,
        }
    }

    pub fn quoted(span: Idx, note: impl Into<String>, quote: impl Into<String>) -> Self {
        HitEvidence {
            span,
            note: note.into(),
            quote: Some(quote.into()),
        }
    }
}

/// A detector: a pure, deterministic function of a trace and its parameters. No I/O, no
/// clock, no randomness, no labels (it only ever receives a `Trace`).
pub trait Detector: Send + Sync {
    /// The id of its catalogue file (`detectors/<id>.toml`).
    fn id(&self) -> &'static str;
    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit>;
}

/// Which detectors run and with what parameters.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Run only these (ids); empty means all.
    pub only: Vec<String>,
    pub exclude: Vec<String>,
    /// Parameter overrides per detector id (from `pisama.toml`).
    pub params: BTreeMap<String, BTreeMap<String, Param>>,
    /// Score at or above which a trace fails.
    pub fail_threshold: Option<f64>,
    /// Score below which a trace passes; between the two it is `unsure`.
    pub pass_threshold: Option<f64>,
    /// The runs are known to have failed: always name the most likely decisive step, even
    /// when no finding points at one.
    pub assume_failed: bool,
}

/// A configuration mistake: unknown detector or parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("unknown detector {0:?}; `pisama detectors` lists them")]
    UnknownDetector(String),
    #[error("detector {detector:?} has no parameter {param:?}; it has: {known}")]
    UnknownParam {
        detector: String,
        param: String,
        known: String,
    },
    #[error("parameter {param:?} of detector {detector:?} expects {expected}")]
    ParamType {
        detector: String,
        param: String,
        expected: &'static str,
    },
    #[error("detector {0:?} has a catalogue file but no implementation")]
    Unimplemented(String),
}

/// Everything detection says about one trace.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TraceReport {
    pub verdict: Verdict,
    pub score: f64,
    /// State-changing tool calls that went through: the run's exposure, part of the score.
    pub state_changes: u32,
    pub attribution: Option<Attribution>,
    pub findings: Vec<Finding>,
    /// Findings the optional judge rejected as false positives, with its reason. They no
    /// longer count towards the score, the verdict or the attribution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dismissed: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
}

struct Loaded {
    meta: DetectorMeta,
    params: Params,
    detector: Box<dyn Detector>,
}

/// Detectors that take longest on large traces, longest first (per-detector timings of
/// `pisama detect -vv` at 100,000 spans). They are started before the others so that the
/// detectors still running at the end are short ones and the cores finish together. Only the
/// start order depends on this list, never the findings (collected in catalogue order).
const LONGEST_FIRST: &[&str] = &[
    "repeated-message",
    "loss-of-conversation-history",
    "contradiction",
    "task-derailment",
    "fact-drift",
    "fabricated-data",
    "secret-leak",
    "incorrect-verification",
    "ignored-agent-input",
    "tool-call-cycle",
    "unaware-of-termination",
    "pii-leak",
    "role-violation",
    "conversation-reset",
    "prompt-injection",
];

/// The configured set of detectors.
pub struct Engine {
    detectors: Vec<Loaded>,
    /// Indexes into `detectors` in the order they are started: [`LONGEST_FIRST`], then the
    /// rest in catalogue order.
    start_order: Vec<usize>,
    fail_threshold: f64,
    pass_threshold: f64,
    assume_failed: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("detectors", &self.ids())
            .finish()
    }
}

impl Engine {
    /// The built-in catalogue with a configuration.
    pub fn new(config: &EngineConfig) -> Result<Engine, EngineError> {
        let metas = catalog::builtin()?;
        let mut impls: BTreeMap<&'static str, Box<dyn Detector>> =
            detectors::all().into_iter().map(|d| (d.id(), d)).collect();
        for id in config
            .only
            .iter()
            .chain(&config.exclude)
            .chain(config.params.keys())
        {
            if !metas.iter().any(|m| &m.id == id) {
                return Err(EngineError::UnknownDetector(id.clone()));
            }
        }
        let mut detectors = Vec::new();
        for meta in metas {
            let detector = impls
                .remove(meta.id.as_str())
                .ok_or_else(|| EngineError::Unimplemented(meta.id.clone()))?;
            let selected = (config.only.is_empty() || config.only.contains(&meta.id))
                && !config.exclude.contains(&meta.id);
            if !selected {
                continue;
            }
            let mut params = meta.params.clone();
            if let Some(overrides) = config.params.get(&meta.id) {
                for (key, value) in overrides {
                    let Some(default) = meta.params.0.get(key) else {
                        return Err(EngineError::UnknownParam {
                            detector: meta.id.clone(),
                            param: key.clone(),
                            known: meta.params.0.keys().cloned().collect::<Vec<_>>().join(", "),
                        });
                    };
                    if std::mem::discriminant(default) != std::mem::discriminant(value) {
                        return Err(EngineError::ParamType {
                            detector: meta.id.clone(),
                            param: key.clone(),
                            expected: match default {
                                Param::Bool(_) => "true or false",
                                Param::Number(_) => "a number",
                                Param::Text(_) => "a string",
                                Param::List(_) => "a list of strings",
                            },
                        });
                    }
                    params.0.insert(key.clone(), value.clone());
                }
            }
            detectors.push(Loaded {
                meta,
                params,
                detector,
            });
        }
        let mut start_order: Vec<usize> = (0..detectors.len()).collect();
        start_order.sort_by_key(|&d| {
            LONGEST_FIRST
                .iter()
                .position(|&id| id == detectors[d].meta.id)
                .unwrap_or(LONGEST_FIRST.len())
        });
        Ok(Engine {
            detectors,
            start_order,
            fail_threshold: config.fail_threshold.unwrap_or(verdict::FAIL_THRESHOLD),
            pass_threshold: config.pass_threshold.unwrap_or(verdict::PASS_THRESHOLD),
            assume_failed: config.assume_failed,
        })
    }

    /// Ids of the detectors that will run.
    pub fn ids(&self) -> Vec<&str> {
        self.detectors.iter().map(|d| d.meta.id.as_str()).collect()
    }

    /// Catalogue entries of the detectors that will run.
    pub fn metas(&self) -> impl Iterator<Item = &DetectorMeta> {
        self.detectors.iter().map(|d| &d.meta)
    }

    /// Runs every detector on one trace (detectors in parallel).
    pub fn run(&self, trace: &Trace) -> TraceReport {
        self.run_cancellable(trace, &AtomicBool::new(false))
    }

    /// Like [`Engine::run`]; detectors not yet started when `cancel` is set are skipped.
    pub fn run_cancellable(&self, trace: &Trace, cancel: &AtomicBool) -> TraceReport {
        // Per-detector timings are logged at debug level (`pisama detect -vv`); they are
        // what the profiling notes in ARCHITECTURE.md are made of. Detectors never see a clock.
        let timed = tracing::enabled!(tracing::Level::DEBUG);
        let started = timed.then(Instant::now);
        let view = TraceView::new(trace);
        // Most detectors read the shared text indexes: built here in parallel, once, rather
        // than by the first detector that asks while the others wait for it.
        view.build_caches();
        if let Some(t) = started {
            tracing::debug!(
                trace = %trace.id,
                spans = trace.spans.len(),
                ms = ms(t),
                "trace view built"
            );
        }
        // One worker per thread, each taking the next detector in `start_order` until none
        // is left: the longest start first (a parallel iterator would split the list in
        // halves and start one thread in the middle of it).
        let slots: Vec<OnceLock<Result<Vec<Finding>, Diagnostic>>> =
            self.detectors.iter().map(|_| OnceLock::new()).collect();
        let next = AtomicUsize::new(0);
        let run_one = |d: &Loaded| -> Result<Vec<Finding>, Diagnostic> {
            if cancel.load(Ordering::Relaxed) {
                return Ok(Vec::new());
            }
            let started = timed.then(Instant::now);
            let hits = catch_unwind(AssertUnwindSafe(|| d.detector.detect(&view, &d.params)));
            if let Some(t) = started {
                tracing::debug!(
                    trace = %trace.id,
                    detector = %d.meta.id,
                    hits = hits.as_ref().map_or(0, Vec::len),
                    ms = ms(t),
                    "detector finished"
                );
            }
            match hits {
                Ok(hits) => Ok(hits
                    .into_iter()
                    .map(|h| to_finding(&view, &d.meta, h))
                    .collect()),
                Err(panic) => Err(Diagnostic {
                    detector: d.meta.id.clone(),
                    message: panic_message(panic.as_ref()),
                }),
            }
        };
        rayon::scope(|scope| {
            for _ in 0..rayon::current_num_threads().clamp(1, self.detectors.len().max(1)) {
                scope.spawn(|_| {
                    while let Some(&d) = self.start_order.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let _ = slots[d].set(run_one(&self.detectors[d]));
                    }
                });
            }
        });
        let outcomes = slots.into_iter().filter_map(OnceLock::into_inner);
        let mut findings = Vec::new();
        let mut diagnostics = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(f) => findings.extend(f),
                Err(d) => {
                    tracing::warn!(detector = %d.detector, "detector failed: {}", d.message);
                    diagnostics.push(d);
                }
            }
        }
        let mut report = TraceReport {
            verdict: Verdict::Pass,
            score: 0.0,
            state_changes: 0,
            attribution: None,
            findings: verdict::merge_overlapping(findings),
            dismissed: Vec::new(),
            diagnostics,
        };
        self.conclude(&view, &mut report);
        report
    }

    /// Recomputes the score, the verdict and the attribution from `report.findings` after
    /// they changed (the judge rejected or re-graded some): the same rules as [`Engine::run`].
    pub fn rescore(&self, trace: &Trace, report: &mut TraceReport) {
        report.findings = verdict::merge_overlapping(std::mem::take(&mut report.findings));
        self.conclude(&TraceView::new(trace), report);
    }

    /// The score thresholds in use: (fail at or above, pass below).
    pub fn thresholds(&self) -> (f64, f64) {
        (self.fail_threshold, self.pass_threshold)
    }

    fn conclude(&self, view: &TraceView<'_>, report: &mut TraceReport) {
        report.state_changes = verdict::state_changes(view);
        report.score = verdict::score(&report.findings, report.state_changes);
        report.verdict = verdict::decide(report.score, self.fail_threshold, self.pass_threshold);
        report.attribution = if report.verdict == Verdict::Pass && !self.assume_failed {
            None
        } else {
            verdict::attribute(view, &report.findings, self.assume_failed)
        };
    }

    /// Runs over many traces in parallel; the reports keep the input order.
    pub fn run_many(&self, traces: &[Trace]) -> Vec<TraceReport> {
        traces.par_iter().map(|t| self.run(t)).collect()
    }
}

/// Milliseconds since `t`, with microsecond resolution, for timing logs.
fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the detector panicked".to_owned())
}

const QUOTE_CHARS: usize = 200;

fn to_finding(view: &TraceView<'_>, meta: &DetectorMeta, hit: Hit) -> Finding {
    let at = hit.at.filter(|&i| i < view.len());
    let agent = hit
        .agent
        .or_else(|| at.and_then(|i| view.span(i).agent.clone()));
    let step = hit.step.or_else(|| at.and_then(|i| view.span(i).step));
    let evidence = hit
        .evidence
        .into_iter()
        .filter(|e| e.span < view.len())
        .map(|e| {
            let span = view.span(e.span);
            let quote = e.quote.or_else(|| {
                let text = view.text(e.span).trim();
                (!text.is_empty()).then(|| text.to_owned())
            });
            Evidence {
                span_id: span.id.clone(),
                step: span.step,
                agent: span.agent.clone(),
                quote: quote.map(|q| truncate(&collapse_whitespace(&q), QUOTE_CHARS)),
                line: span.source.line,
                pointer: span.source.pointer.clone(),
                note: e.note,
            }
        })
        .collect();
    Finding {
        detector: meta.id.clone(),
        title: meta.title.clone(),
        category: meta.category.clone(),
        mast: meta.mast,
        trail: meta.trail.clone(),
        tier: meta.tier,
        severity: hit.severity.unwrap_or(meta.severity),
        confidence: round3(meta.calibration.apply(hit.score)),
        summary: hit.summary,
        agent,
        step,
        evidence,
        remediation: collapse_whitespace(&meta.remediation),
        merged: Vec::new(),
        judge: None,
        raw_score: hit.score,
    }
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
