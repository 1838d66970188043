//! What is sent: a system message (the role and the answer's schema) and a user message (the
//! question, the automated analysis so far, and an excerpt of the trace). The user message is
//! redacted as a whole just before it is used, so nothing built here can leak a secret past it.
//!
//! Long traces are not sent whole: the excerpt is the messages and tool calls around the
//! evidence (`window` on each side), with gaps marked; when that is still over the per-call
//! token limit, each message is cut shorter, then the window narrows.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use pisama_detect::{Finding, TraceReport, TraceView};
use pisama_trace::util::truncate;
use pisama_trace::{SpanKind, Status};

/// Changes whenever the wording or the structure of a prompt changes; part of the cache key,
/// so a new prompt never reuses an answer to an old one.
pub const PROMPT_VERSION: &str = "judge-prompt/1";

/// Rough tokens in a text: one per four characters, rounded up. Real tokenizers give 3–5
/// characters per token for English and JSON, so this is an estimate for budgets and dry runs,
/// not a bill; the endpoint's reported usage replaces it after a call.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Tokens a chat message costs beyond its text (role and separators), per message.
const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// The messages of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Messages {
    pub system: String,
    pub user: String,
}

impl Messages {
    pub fn estimated_tokens(&self) -> u64 {
        estimate_tokens(&self.system) + estimate_tokens(&self.user) + 2 * MESSAGE_OVERHEAD_TOKENS
    }
}

const SYSTEM_FINDING: &str = "You review the findings of an automated failure detector for \
AI-agent runs. You get one finding and an excerpt of the run (messages and tool calls, with \
their step numbers). Decide from the excerpt alone whether the finding describes a real failure. \
Some secrets in the excerpt are replaced by [REDACTED:...] tags; that is expected. Reply with \
one JSON object and nothing else, matching this JSON Schema:\n";

const SYSTEM_ATTRIBUTION: &str = "You find the decisive failure in AI-agent runs: the agent and \
the step whose action caused the run to fail (the root cause, not a later symptom). You get the \
automated analysis so far and an excerpt of the run (messages and tool calls, with their step \
numbers). Some secrets in the excerpt are replaced by [REDACTED:...] tags; that is expected. \
Use agent names exactly as they appear. Reply with one JSON object and nothing else, matching \
this JSON Schema:\n";

/// Characters one message may take in the excerpt, tried in this order until it fits.
const PER_MESSAGE_CHARS: [usize; 5] = [1_500, 800, 400, 200, 100];

/// The messages asking about one finding.
pub fn finding_messages(
    view: &TraceView<'_>,
    report: &TraceReport,
    finding: &Finding,
    window: usize,
    max_tokens: u64,
) -> Messages {
    let (_, schema) = crate::answer::finding_schema();
    let system = format!("{SYSTEM_FINDING}{schema}");
    let mut head = String::new();
    let _ = writeln!(
        head,
        "A detector flagged a possible failure in this AI-agent run. Is it a real failure?\n"
    );
    let _ = writeln!(head, "Finding");
    describe_finding(&mut head, finding, true);
    let _ = writeln!(
        head,
        "- the trace's failure score so far: {:.2} ({})",
        report.score, report.verdict
    );
    let focus = focus_spans(view, std::slice::from_ref(finding));
    let budget = char_budget(&system, &head, max_tokens);
    let excerpt = excerpt(view, &focus, window, budget, false);
    let user = format!(
        "{head}\n{excerpt}\nAnswer with the JSON object only: confirm, reject, or adjust (with the right severity)."
    );
    Messages { system, user }
}

/// The messages asking who and where the decisive failure was.
pub fn attribution_messages(
    view: &TraceView<'_>,
    report: &TraceReport,
    window: usize,
    max_tokens: u64,
) -> Messages {
    let (_, schema) = crate::answer::attribution_schema();
    let system = format!("{SYSTEM_ATTRIBUTION}{schema}");
    let mut head = String::new();
    let _ = writeln!(
        head,
        "This AI-agent run may have failed. Which agent, at which step, made the decisive mistake?\n"
    );
    let _ = writeln!(head, "Automated analysis so far");
    let _ = writeln!(
        head,
        "- verdict: {} (failure score {:.2})",
        report.verdict, report.score
    );
    match &report.attribution {
        Some(a) => {
            let _ = writeln!(
                head,
                "- current attribution: {} at step {} ({}, confidence {:.2})",
                a.agent.as_deref().unwrap_or("unknown agent"),
                a.step.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                a.category,
                a.confidence
            );
        }
        None => {
            let _ = writeln!(head, "- current attribution: none");
        }
    }
    if report.findings.is_empty() {
        let _ = writeln!(head, "- findings: none");
    } else {
        let _ = writeln!(head, "- findings (strongest first):");
        for f in report.findings.iter().take(8) {
            let _ = writeln!(
                head,
                "  - [{}] {}{}: {}",
                f.severity,
                f.detector,
                place(f.agent.as_deref(), f.step),
                truncate(&f.summary, 300)
            );
        }
    }
    let mut focus = focus_spans(view, &report.findings);
    if let Some(step) = report.attribution.as_ref().and_then(|a| a.step) {
        focus.extend((0..view.len()).filter(|&i| view.span(i).step == Some(step)));
    }
    if let Some(i) = pisama_detect::verdict::first_substantive_action(view) {
        focus.insert(i);
    }
    let budget = char_budget(&system, &head, max_tokens);
    let excerpt = excerpt(view, &focus, window, budget, true);
    let user = format!(
        "{head}\n{excerpt}\nAnswer with the JSON object only. Use a step number shown in the excerpt."
    );
    Messages { system, user }
}

fn place(agent: Option<&str>, step: Option<u32>) -> String {
    match (agent, step) {
        (Some(a), Some(s)) => format!(" ({a}, step {s})"),
        (Some(a), None) => format!(" ({a})"),
        (None, Some(s)) => format!(" (step {s})"),
        (None, None) => String::new(),
    }
}

fn describe_finding(out: &mut String, f: &Finding, with_evidence: bool) {
    let _ = writeln!(out, "- detector: {} — {}", f.detector, f.title);
    let _ = writeln!(
        out,
        "- category: {}{}",
        f.category,
        f.mast
            .map(|m| format!(" (MAST {} {})", m.code(), m.paper_name()))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "- severity: {}, detector confidence {:.2}",
        f.severity, f.confidence
    );
    if f.agent.is_some() || f.step.is_some() {
        let _ = writeln!(out, "- where:{}", place(f.agent.as_deref(), f.step));
    }
    let _ = writeln!(
        out,
        "- what the detector says: {}",
        truncate(&f.summary, 500)
    );
    if with_evidence && !f.evidence.is_empty() {
        let _ = writeln!(out, "- evidence:");
        for e in f.evidence.iter().take(6) {
            let at = e
                .step
                .map_or_else(|| format!("span {}", e.span_id), |s| format!("step {s}"));
            match &e.quote {
                Some(q) => {
                    let _ = writeln!(out, "  - {at}: {} — \"{}\"", e.note, truncate(q, 200));
                }
                None => {
                    let _ = writeln!(out, "  - {at}: {}", e.note);
                }
            }
        }
    }
}

/// Span indices named by the findings' evidence (and their steps).
fn focus_spans(view: &TraceView<'_>, findings: &[Finding]) -> BTreeSet<usize> {
    let ids: BTreeSet<&str> = findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(|e| e.span_id.as_str()))
        .collect();
    let steps: BTreeSet<u32> = findings.iter().filter_map(|f| f.step).collect();
    (0..view.len())
        .filter(|&i| {
            let s = view.span(i);
            ids.contains(s.id.as_str()) || s.step.is_some_and(|st| steps.contains(&st))
        })
        .collect()
}

fn char_budget(system: &str, head: &str, max_tokens: u64) -> usize {
    let used = estimate_tokens(system) + estimate_tokens(head) + 2 * MESSAGE_OVERHEAD_TOKENS + 40;
    (max_tokens.saturating_sub(used) * 4) as usize
}

/// The spans an excerpt is made of: the conversation, the tool calls and the focus spans, in
/// trace order (spans are sorted by start time). Messages without text (a model call that only
/// requested a tool, whose tool span follows) say nothing and are left out.
fn timeline(view: &TraceView<'_>, focus: &BTreeSet<usize>) -> Vec<usize> {
    let mut all: BTreeSet<usize> = view
        .conversation()
        .iter()
        .copied()
        .filter(|&i| !view.text(i).trim().is_empty() || view.span(i).status == Status::Error)
        .collect();
    all.extend(view.tools().iter().copied());
    all.extend(focus.iter().copied());
    if all.is_empty() {
        all.extend(0..view.len());
    }
    all.into_iter().collect()
}

fn excerpt(
    view: &TraceView<'_>,
    focus: &BTreeSet<usize>,
    window: usize,
    budget: usize,
    whole_if_it_fits: bool,
) -> String {
    let line_of = timeline(view, focus);
    let total = line_of.len();
    let agents: Vec<&str> = view.trace.agents.iter().map(|a| a.name.as_str()).collect();
    let mut head = String::new();
    if let Some(task) = &view.trace.task {
        let _ = writeln!(head, "Task: {}", truncate(&one_line(task), 1_000));
    }
    if !agents.is_empty() {
        let _ = writeln!(head, "Agents: {}", agents.join(", "));
    }
    let budget = budget.saturating_sub(head.chars().count() + 80);
    let focus_pos: Vec<usize> = line_of
        .iter()
        .enumerate()
        .filter(|(_, i)| focus.contains(i))
        .map(|(p, _)| p)
        .collect();
    let mut windows: Vec<Option<usize>> = Vec::new();
    if whole_if_it_fits || focus_pos.is_empty() {
        windows.push(None);
    }
    if !focus_pos.is_empty() {
        let mut w = window;
        loop {
            windows.push(Some(w));
            if w == 0 {
                break;
            }
            w /= 2;
        }
    }
    let mut last = String::new();
    for w in windows {
        let shown: Vec<usize> = match w {
            None => (0..total).collect(),
            Some(w) => (0..total)
                .filter(|p| focus_pos.iter().any(|f| p.abs_diff(*f) <= w))
                .collect(),
        };
        for chars in PER_MESSAGE_CHARS {
            let body = render(view, &line_of, &shown, chars);
            if body.chars().count() <= budget {
                return format!(
                    "Trace excerpt ({} of {} messages and tool calls{})\n{head}{body}",
                    shown.len(),
                    total,
                    if shown.len() < total {
                        ", windowed around the evidence"
                    } else {
                        ""
                    }
                );
            }
            last = body;
        }
    }
    // Even the narrowest window at the shortest cut is over the limit: cut the text itself.
    format!(
        "Trace excerpt (cut to fit the request limit)\n{head}{}",
        truncate(&last, budget)
    )
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn render(view: &TraceView<'_>, line_of: &[usize], shown: &[usize], chars: usize) -> String {
    let mut out = String::new();
    let mut next = 0;
    for &p in shown {
        if p > next {
            let _ = writeln!(out, "  … {} not shown …", plural(p - next));
        }
        next = p + 1;
        let i = line_of[p];
        let s = view.span(i);
        let at = s
            .step
            .map_or_else(|| format!("[#{p}]"), |st| format!("[step {st}]"));
        let who = s.agent.as_deref().unwrap_or("-");
        let kind = match s.kind {
            SpanKind::Tool => format!(
                "tool {}",
                s.tool.as_ref().map_or(s.name.as_str(), |t| t.name.as_str())
            ),
            SpanKind::Human => "user".to_owned(),
            SpanKind::System => "system".to_owned(),
            SpanKind::Llm => "model call".to_owned(),
            _ => "message".to_owned(),
        };
        let text = one_line(view.text(i));
        let failed = if s.status == Status::Error {
            let msg = one_line(s.error.as_ref().map_or("", |e| e.message.as_str()));
            if msg.is_empty() || text.starts_with(&msg) {
                " FAILED".to_owned()
            } else {
                format!(" FAILED ({})", truncate(&msg, 200))
            }
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{at} {who} ({kind}){failed}: {}",
            truncate(&text, chars)
        );
    }
    if next < line_of.len() {
        let _ = writeln!(out, "  … {} not shown …", plural(line_of.len() - next));
    }
    out
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 message".to_owned()
    } else {
        format!("{n} messages")
    }
}
