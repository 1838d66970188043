//! The escalation policy and one run's state: budget, cache, failures, the dry-run plan.
//!
//! Per trace, in order:
//! 1. **Findings** whose detector may escalate and whose confidence is in the unsure band,
//!    strongest first, at most `per_trace`. The judge confirms (the finding leaves the band:
//!    its confidence is raised to the band's upper edge), rejects (the finding moves to
//!    `dismissed` and stops counting), or adjusts the severity. Then the score, verdict and
//!    attribution are recomputed by the engine's own rules.
//! 2. **Attribution**, when the verdict is unsure, a failed trace has none, or its confidence
//!    is below `attribution_below`. The judge's agent and step must exist in the trace;
//!    agreeing with the current one confirms it, otherwise the judge's replaces it (tier T3).
//!
//! Anything that goes wrong with one escalation (timeout, HTTP error, an answer that does not
//! parse or names an agent the trace does not have) leaves the T1/T2 result as it was and is
//! reported; it never fails the run.

use serde::Serialize;

use pisama_detect::{
    Attribution, Engine, JudgeDecision, JudgeReview, MastMode, Tier, TraceReport, TraceView,
    Verdict,
};
use pisama_redact::Redactor;
use pisama_trace::Trace;

use crate::answer::{self, AttributionAnswer, FindingAnswer, FindingDecision};
use crate::cache::{self, Cache};
use crate::client::{self, Endpoint};
use crate::error::ConfigError;
use crate::prompt::{self, Messages};
use crate::settings::Settings;

pub use pisama_detect::escalation::{Escalation, Outcome, TraceJudgement};

/// Totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Requests sent (a request retried after a 429 or 5xx counts once).
    pub requests: u32,
    pub cached: u32,
    pub answered: u32,
    pub skipped: u32,
    pub failed: u32,
    pub malformed: u32,
    /// Reported by the endpoint where it reports usage, else estimated.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `None` when the model's price is unknown.
    pub cost_usd: Option<f64>,
    /// Secrets replaced by tags in what was (or would be) sent.
    pub redactions: usize,
    /// Why the judge stopped early, if it did.
    pub stopped: Option<String>,
}

/// One request of a dry run: exactly what would be sent, or why it would not be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRequest {
    pub trace: String,
    pub target: String,
    /// `send`, `cached` (answer reused, nothing sent) or `skipped`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub estimated_input_tokens: u64,
    pub max_output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
    pub redactions: usize,
    /// The JSON body that would be sent (HTTP POST) to the endpoint.
    pub body: serde_json::Value,
}

enum Asked {
    Answer {
        content: String,
        key: String,
        usage: (u64, u64),
    },
    Cached {
        content: String,
    },
    Skipped(String),
    Failed(String),
    Planned,
}

/// The judge for one run. Escalations are asked one at a time, in trace order, so the budget
/// is spent the same way on every run.
#[derive(Debug)]
pub struct Judge {
    settings: Settings,
    endpoint: Option<Endpoint>,
    cache: Option<Cache>,
    redactor: Redactor,
    stats: RunStats,
    failures_in_a_row: u32,
    plan: Option<Vec<PlannedRequest>>,
}

impl Judge {
    /// A judge that sends requests.
    pub fn new(settings: Settings, redactor: Redactor) -> Result<Judge, ConfigError> {
        let endpoint = Endpoint::new(&settings)?;
        Ok(Judge::with(settings, redactor, Some(endpoint)))
    }

    /// A judge that sends nothing and records what it would send ([`Judge::plan`]).
    pub fn dry_run(settings: Settings, redactor: Redactor) -> Judge {
        let mut j = Judge::with(settings, redactor, None);
        j.plan = Some(Vec::new());
        j
    }

    fn with(settings: Settings, redactor: Redactor, endpoint: Option<Endpoint>) -> Judge {
        let cache = settings.cache_dir.as_deref().map(Cache::new);
        let stats = RunStats {
            cost_usd: settings.price.map(|_| 0.0),
            ..RunStats::default()
        };
        Judge {
            settings,
            endpoint,
            cache,
            redactor,
            stats,
            failures_in_a_row: 0,
            plan: None,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// The dry run's requests (empty for a live judge).
    pub fn plan(&self) -> &[PlannedRequest] {
        self.plan.as_deref().unwrap_or(&[])
    }

    /// Escalates what is unsure in one trace's report and applies the answers to it.
    /// `label` names the trace in messages (its source).
    pub async fn review(
        &mut self,
        label: &str,
        trace: &Trace,
        report: &mut TraceReport,
        engine: &Engine,
    ) -> TraceJudgement {
        let mut out = TraceJudgement::default();
        if self.settings.escalate.findings {
            self.review_findings(label, trace, report, engine, &mut out)
                .await;
        }
        if self.settings.escalate.attribution && self.wants_attribution(report) {
            self.review_attribution(label, trace, report, &mut out)
                .await;
        }
        out
    }

    fn wants_attribution(&self, report: &TraceReport) -> bool {
        match &report.attribution {
            Some(a) => {
                report.verdict == Verdict::Unsure
                    || a.confidence < self.settings.escalate.attribution_below
            }
            None => report.verdict != Verdict::Pass,
        }
    }

    async fn review_findings(
        &mut self,
        label: &str,
        trace: &Trace,
        report: &mut TraceReport,
        engine: &Engine,
        out: &mut TraceJudgement,
    ) {
        let view = TraceView::new(trace);
        let wanted: Vec<usize> = (0..report.findings.len())
            .filter(|&i| {
                let f = &report.findings[i];
                self.settings
                    .escalate
                    .wants_finding(&f.detector, f.confidence)
            })
            .collect();
        let per_trace = self.settings.escalate.per_trace as usize;
        let mut answers: Vec<(usize, FindingAnswer)> = Vec::new();
        for (n, &i) in wanted.iter().enumerate() {
            let f = &report.findings[i];
            let mut esc = Escalation {
                target: "finding".into(),
                detector: Some(f.detector.clone()),
                step: f.step,
                outcome: Outcome::Skipped,
                decision: None,
                detail: None,
            };
            if n >= per_trace {
                esc.detail = Some(format!("per-trace limit ({per_trace}) reached"));
                self.note_skip(label, &esc);
                out.escalations.push(esc);
                continue;
            }
            let messages = prompt::finding_messages(
                &view,
                report,
                f,
                self.settings.escalate.window as usize,
                self.settings.budget.max_input_tokens_per_call,
            );
            let target = format!("finding {}{}", f.detector, at_step(f.step));
            let asked = self
                .ask(label, &target, messages, answer::finding_schema())
                .await;
            if let Some(a) = self.settle(label, &target, asked, &mut esc, answer::parse_finding) {
                esc.decision = Some(match a.decision {
                    FindingDecision::Confirm => JudgeDecision::Confirm,
                    FindingDecision::Reject => JudgeDecision::Reject,
                    FindingDecision::Adjust => JudgeDecision::Adjust,
                });
                answers.push((i, a));
            }
            out.escalations.push(esc);
        }
        if answers.is_empty() {
            return;
        }
        let upper = self.settings.escalate.finding_band.1;
        let model = self.settings.model.clone();
        let mut rejected = Vec::new();
        for (i, a) in answers {
            let f = &mut report.findings[i];
            let mut review = JudgeReview {
                decision: JudgeDecision::Confirm,
                reason: a.reason,
                model: model.clone(),
                severity_before: None,
            };
            match a.decision {
                FindingDecision::Confirm => {
                    f.confidence = f.confidence.max(upper);
                }
                FindingDecision::Adjust => {
                    review.decision = JudgeDecision::Adjust;
                    if let Some(s) = a.severity
                        && s != f.severity
                    {
                        review.severity_before = Some(f.severity);
                        f.severity = s;
                    }
                    f.confidence = f.confidence.max(upper);
                }
                FindingDecision::Reject => {
                    review.decision = JudgeDecision::Reject;
                    rejected.push(i);
                }
            }
            f.judge = Some(review);
        }
        rejected.sort_unstable();
        for i in rejected.into_iter().rev() {
            let f = report.findings.remove(i);
            report.dismissed.push(f);
        }
        report.dismissed.reverse();
        engine.rescore(trace, report);
    }

    async fn review_attribution(
        &mut self,
        label: &str,
        trace: &Trace,
        report: &mut TraceReport,
        out: &mut TraceJudgement,
    ) {
        let view = TraceView::new(trace);
        let messages = prompt::attribution_messages(
            &view,
            report,
            self.settings.escalate.window as usize,
            self.settings.budget.max_input_tokens_per_call,
        );
        let mut esc = Escalation {
            target: "attribution".into(),
            detector: None,
            step: report.attribution.as_ref().and_then(|a| a.step),
            outcome: Outcome::Skipped,
            decision: None,
            detail: None,
        };
        let asked = self
            .ask(label, "attribution", messages, answer::attribution_schema())
            .await;
        let parse = |text: &str| {
            answer::parse_attribution(text).and_then(|a| validate_attribution(trace, a))
        };
        if let Some(a) = self.settle(label, "attribution", asked, &mut esc, parse) {
            let review = JudgeReview {
                decision: JudgeDecision::Confirm,
                reason: a.reason.clone(),
                model: self.settings.model.clone(),
                severity_before: None,
            };
            match &mut report.attribution {
                Some(current)
                    if current.agent.as_deref().map(str::to_lowercase)
                        == a.agent.as_deref().map(str::to_lowercase)
                        && current.step == a.step =>
                {
                    current.judge = Some(review);
                    esc.decision = Some(JudgeDecision::Confirm);
                }
                _ if a.agent.is_none() && a.step.is_none() => {
                    esc.detail = Some("the judge saw no decisive failure; attribution kept".into());
                }
                slot => {
                    *slot = Some(Attribution {
                        agent: a.agent,
                        step: a.step,
                        category: MastMode::parse(&a.category)
                            .map_or(a.category, |m| m.code().to_owned()),
                        confidence: a.confidence,
                        detector: None,
                        tier: Tier::T3,
                        judge: Some(JudgeReview {
                            decision: JudgeDecision::Replace,
                            ..review
                        }),
                    });
                    esc.decision = Some(JudgeDecision::Replace);
                }
            }
            esc.step = report.attribution.as_ref().and_then(|a| a.step);
        }
        out.escalations.push(esc);
    }

    /// Turns what `ask` got into a parsed answer, or records why there is none.
    fn settle<A>(
        &mut self,
        label: &str,
        target: &str,
        asked: Asked,
        esc: &mut Escalation,
        parse: impl Fn(&str) -> Result<A, String>,
    ) -> Option<A> {
        let (content, stored) = match asked {
            Asked::Answer {
                content,
                key,
                usage,
            } => (content, Some((key, usage))),
            Asked::Cached { content } => (content, None),
            Asked::Skipped(why) => {
                esc.outcome = Outcome::Skipped;
                esc.detail = Some(why);
                self.note_skip(label, esc);
                return None;
            }
            Asked::Failed(why) => {
                esc.outcome = Outcome::Failed;
                tracing::warn!(
                    trace = label,
                    target,
                    "judge request failed, T1/T2 result kept: {why}"
                );
                esc.detail = Some(why);
                return None;
            }
            Asked::Planned => {
                esc.outcome = Outcome::Planned;
                return None;
            }
        };
        match parse(&content) {
            Ok(a) => {
                esc.outcome = match (&stored, &self.cache) {
                    (Some((key, (i, o))), Some(cache)) => {
                        cache.put(key, &self.settings.model, &content, *i, *o);
                        Outcome::Answered
                    }
                    (Some(_), None) => Outcome::Answered,
                    (None, _) => Outcome::Cached,
                };
                self.stats.answered += 1;
                Some(a)
            }
            Err(why) => {
                self.stats.malformed += 1;
                esc.outcome = Outcome::Malformed;
                tracing::warn!(
                    trace = label,
                    target,
                    "judge answer ignored, T1/T2 result kept: {why}"
                );
                esc.detail = Some(format!("answer ignored: {why}"));
                None
            }
        }
    }

    fn note_skip(&mut self, label: &str, esc: &Escalation) {
        self.stats.skipped += 1;
        tracing::info!(
            trace = label,
            target = esc.target,
            "judge escalation skipped: {}",
            esc.detail.as_deref().unwrap_or("")
        );
    }

    /// Redacts, builds the request, then: cache, stop, budget, dry run, send.
    async fn ask(
        &mut self,
        label: &str,
        target: &str,
        messages: Messages,
        schema: (&'static str, serde_json::Value),
    ) -> Asked {
        let Messages { system, mut user } = messages;
        let redactions = self.redactor.redact(&mut user).count();
        let messages = Messages { system, user };
        let request = match client::request(&self.settings, &messages, schema) {
            Ok(r) => r,
            Err(e) => return Asked::Failed(format!("cannot build the request: {e}")),
        };
        let body = serde_json::to_value(&request).unwrap_or_default();
        let key = cache::key(&self.settings.model, &body);
        let est_in = messages.estimated_tokens();
        let est_out = u64::from(self.settings.max_output_tokens);
        let est_cost = self.settings.cost(est_in, est_out);
        let mut planned = PlannedRequest {
            trace: label.to_owned(),
            target: target.to_owned(),
            status: "send",
            detail: None,
            estimated_input_tokens: est_in,
            max_output_tokens: self.settings.max_output_tokens,
            estimated_cost_usd: est_cost,
            redactions,
            body,
        };
        if let Some(entry) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&key, &self.settings.model))
        {
            self.stats.cached += 1;
            if let Some(plan) = &mut self.plan {
                planned.status = "cached";
                planned.detail = Some("answer reused from the cache; nothing would be sent".into());
                plan.push(planned);
            }
            return Asked::Cached {
                content: entry.content,
            };
        }
        let refusal = self
            .stats
            .stopped
            .clone()
            .or_else(|| self.over_budget(est_in, est_cost));
        if let Some(why) = refusal {
            if let Some(plan) = &mut self.plan {
                planned.status = "skipped";
                planned.detail = Some(why.clone());
                plan.push(planned);
            }
            return Asked::Skipped(why);
        }
        self.stats.redactions += redactions;
        self.stats.requests += 1;
        if self.plan.is_some() {
            self.stats.input_tokens += est_in;
            self.stats.output_tokens += est_out;
            self.add_cost(est_in, est_out);
            if let Some(plan) = &mut self.plan {
                plan.push(planned);
            }
            return Asked::Planned;
        }
        let Some(endpoint) = &self.endpoint else {
            return Asked::Failed("no endpoint".into());
        };
        match endpoint.send(request, self.settings.max_retries).await {
            Ok(reply) => {
                self.failures_in_a_row = 0;
                let i = reply.input_tokens.unwrap_or(est_in);
                let o = reply
                    .output_tokens
                    .unwrap_or_else(|| prompt::estimate_tokens(&reply.content));
                self.stats.input_tokens += i;
                self.stats.output_tokens += o;
                self.add_cost(i, o);
                Asked::Answer {
                    content: reply.content,
                    key,
                    usage: (i, o),
                }
            }
            Err(e) => {
                self.stats.failed += 1;
                if e.is_endpoint_failure() {
                    self.failures_in_a_row += 1;
                    if self.failures_in_a_row >= self.settings.stop_after_failures {
                        let why = format!(
                            "the judge stopped after {} failed requests in a row (last: {e})",
                            self.failures_in_a_row
                        );
                        tracing::warn!(trace = label, "{why}");
                        self.stats.stopped = Some(why);
                    }
                } else {
                    self.failures_in_a_row = 0;
                }
                Asked::Failed(e.to_string())
            }
        }
    }

    fn add_cost(&mut self, input: u64, output: u64) {
        if let (Some(total), Some(c)) =
            (&mut self.stats.cost_usd, self.settings.cost(input, output))
        {
            *total += c;
        }
    }

    fn over_budget(&self, est_in: u64, est_cost: Option<f64>) -> Option<String> {
        let b = &self.settings.budget;
        if self.stats.requests >= b.max_calls {
            return Some(format!("budget: max_calls ({}) reached", b.max_calls));
        }
        if self.stats.input_tokens + est_in > b.max_input_tokens {
            return Some(format!(
                "budget: max_input_tokens ({}) would be exceeded ({} used, ~{est_in} needed)",
                b.max_input_tokens, self.stats.input_tokens
            ));
        }
        if let (Some(max), Some(spent), Some(next)) =
            (b.max_cost_usd, self.stats.cost_usd, est_cost)
            && spent + next > max
        {
            return Some(format!(
                "budget: max_cost_usd ({max}) would be exceeded (${spent:.4} spent, ~${next:.4} needed)"
            ));
        }
        None
    }
}

fn at_step(step: Option<u32>) -> String {
    step.map(|s| format!(" at step {s}")).unwrap_or_default()
}

/// The judge must name an agent and a step that exist; the agent's spelling is taken from the
/// trace, and a step without an agent gets the step's agent.
fn validate_attribution(
    trace: &Trace,
    mut a: AttributionAnswer,
) -> Result<AttributionAnswer, String> {
    if let Some(name) = &a.agent {
        let known = trace
            .agents
            .iter()
            .map(|x| x.name.as_str())
            .chain(trace.spans.iter().filter_map(|s| s.agent.as_deref()))
            .find(|k| k.eq_ignore_ascii_case(name.trim()));
        match known {
            Some(k) => a.agent = Some(k.to_owned()),
            None => {
                return Err(format!(
                    "the answer names an agent the trace does not have ({} characters)",
                    name.chars().count()
                ));
            }
        }
    }
    if let Some(step) = a.step {
        let spans: Vec<&pisama_trace::Span> = trace
            .spans
            .iter()
            .filter(|s| s.step == Some(step))
            .collect();
        if spans.is_empty() {
            return Err(format!(
                "the answer names step {step}, which the trace does not have"
            ));
        }
        if a.agent.is_none() {
            a.agent = spans.iter().find_map(|s| s.agent.clone());
        }
    }
    Ok(a)
}
