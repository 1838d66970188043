//! An agent acts outside its declared role:
//! - it speaks for another agent of the run ("As the `Verification_Expert`, I confirm…", or a
//!   line `Planner: …` written by someone else), taking over that agent's turn;
//! - it does something its own role text forbids ("you do not write code", "never call
//!   tools", "must not book"), as seen in its tool calls or code.
//!
//! Roles come from the agents the adapters found (`AgentInfo::role`, which keeps system prompts
//! and role descriptions); nothing is keyed on particular agent names.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::view::{Idx, TraceView};
use pisama_trace::SpanKind;

use super::turns::{tool_name, turns};

pub(crate) struct RoleViolation;

/// A prohibition in a role text, capturing the forbidden verb and what follows it.
fn prohibition() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:do\s+not|don't|never|must\s+not|mustn't|should\s+not|shouldn't|are\s+not\s+allowed\s+to|may\s+not|cannot|can't)\s+(write|execute|run|modify|edit|change|call|use|book|cancel|delete|send|create|update|implement|code)\b\s*(\w+)?",
        )
        .expect("valid regex")
    })
}

impl Detector for RoleViolation {
    fn id(&self) -> &'static str {
        "role-violation"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_findings = params.usize("max_findings", 3).max(1);
        let mut hits = impersonation(view);
        hits.extend(forbidden_actions(view));
        hits.sort_by_key(|h| h.at);
        hits.truncate(max_findings);
        hits
    }
}

/// Agents of the run: those that speak (not tools, not users) and those the source declares.
fn speaking_agents(view: &TraceView<'_>) -> Vec<String> {
    let mut names: Vec<String> = turns(view)
        .into_iter()
        .filter(|t| !t.user && view.span(t.span).kind != SpanKind::Tool)
        .map(|t| t.speaker.to_owned())
        .chain(view.trace.agents.iter().map(|a| a.name.clone()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn impersonation(view: &TraceView<'_>) -> Vec<Hit> {
    let agents = speaking_agents(view);
    if agents.len() < 2 {
        return Vec::new();
    }
    let mut hits = Vec::new();
    for t in turns(view) {
        if t.user || view.span(t.span).kind == SpanKind::Tool {
            continue;
        }
        let text = view.text(t.span);
        let Some((other, quote)) = agents
            .iter()
            .filter(|a| **a != t.speaker && a.chars().count() >= 3)
            .find_map(|a| speaks_as(text, a).map(|q| (a.clone(), q)))
        else {
            continue;
        };
        hits.push(Hit {
            score: if quote.starts_with("As ") || quote.starts_with("as ") {
                0.6
            } else {
                0.7
            },
            severity: None,
            summary: format!(
                "{} spoke as {other}, taking over that agent's turn",
                t.speaker
            ),
            at: Some(t.span),
            evidence: vec![HitEvidence::quoted(
                t.span,
                format!("{} writes as {other}", t.speaker),
                quote,
            )],
            ..Hit::default()
        });
    }
    hits
}

/// Where a text (outside code blocks) speaks as an agent: a line opening with its name and a
/// colon, or "As (the) <name>,".
fn speaks_as(text: &str, agent: &str) -> Option<String> {
    let variants = [agent.to_lowercase(), agent.to_lowercase().replace('_', " ")];
    let mut in_code = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let lower = trimmed
            .trim_start_matches(['*', '#', '>', '-', ' ', '['])
            .to_lowercase();
        for v in &variants {
            if let Some(rest) = lower.strip_prefix(v.as_str()) {
                let rest = rest.trim_start_matches([']', '*']);
                // Addressing an agent ("Planner: please check X") is fine; speaking for it
                // is writing in the first person under its name.
                if rest.starts_with(':') && first_person(&rest[1..]) {
                    return Some(pisama_trace::util::truncate(trimmed, 120));
                }
            }
            for lead in ["as the ", "as "] {
                if let Some(rest) = lower.strip_prefix(lead)
                    && let Some(after) = rest.strip_prefix(v.as_str())
                    && let Some(clause) = after.strip_prefix(',')
                    && first_person(clause)
                {
                    return Some(pisama_trace::util::truncate(trimmed, 120));
                }
            }
        }
    }
    None
}

/// Whether a line opens in the first person ("I have checked…", "We agree…").
fn first_person(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    words.iter().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        matches!(
            w.to_lowercase().as_str(),
            "i" | "i'm" | "i've" | "i'll" | "i'd" | "we" | "we've" | "we'll" | "my" | "our"
        )
    })
}

/// Actions the agent's own role text forbids.
fn forbidden_actions(view: &TraceView<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for agent in &view.trace.agents {
        let Some(role) = agent.role.as_deref() else {
            continue;
        };
        for caps in prohibition().captures_iter(role) {
            let verb = caps.get(1).map_or("", |m| m.as_str()).to_lowercase();
            let object = caps.get(2).map_or("", |m| m.as_str()).to_lowercase();
            let rule = caps.get(0).map_or("", |m| m.as_str()).trim().to_owned();
            if let Some((at, what)) = violation(view, &agent.name, &verb, &object) {
                hits.push(Hit {
                    score: 0.75,
                    severity: None,
                    summary: format!("{} {what}, although its role says \"{rule}\"", agent.name),
                    at: Some(at),
                    evidence: vec![HitEvidence::new(
                        at,
                        format!("{} acts against its role", agent.name),
                    )],
                    ..Hit::default()
                });
                break;
            }
        }
    }
    hits
}

/// The first span of the agent that does the forbidden thing: code when writing or running
/// code is forbidden, tool calls when tools (or that verb) are.
fn violation(view: &TraceView<'_>, agent: &str, verb: &str, object: &str) -> Option<(Idx, String)> {
    let about_code = matches!(verb, "code" | "implement")
        || matches!(object, "code" | "scripts" | "programs" | "python");
    let about_tools = matches!(object, "tools" | "tool" | "functions" | "apis" | "any");
    (0..view.len()).find_map(|i| {
        let s = view.span(i);
        if s.agent.as_deref() != Some(agent) {
            return None;
        }
        if about_code && s.kind != SpanKind::Tool && view.text(i).contains("```") {
            return Some((i, "wrote code".to_owned()));
        }
        if s.kind == SpanKind::Tool {
            let name = tool_name(s).to_lowercase();
            let stem: String = verb.chars().take(4).collect();
            if about_tools || (!about_code && stem.len() == 4 && name.contains(&stem)) {
                return Some((i, format!("called `{}`", tool_name(s))));
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use crate::detectors::test_support::said;
    use pisama_trace::{AgentInfo, Span, ToolCall, Trace};

    #[test]
    fn empty_trace_is_quiet() {
        let t = Trace::default();
        assert!(
            RoleViolation
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn speaking_for_another_agent_fires() {
        let t = Trace {
            spans: vec![
                said("Coder", 0, "Here is the fix."),
                said(
                    "Reviewer",
                    1,
                    "Looks fine to me.\nCoder: I will also add a test.",
                ),
            ],
            ..Trace::default()
        };
        let hits = RoleViolation.detect(&TraceView::new(&t), &Params::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(1));
        assert!(speaks_as("As the Planner, I decide", "Planner").is_some());
        assert!(speaks_as("Planner: please check the totals", "Planner").is_none());
        assert!(speaks_as("As the Planner, you should decide", "Planner").is_none());
        assert!(speaks_as("```\nPlanner: x = 1\n```", "Planner").is_none());
        assert!(speaks_as("I asked the Planner: no answer yet", "Planner").is_none());
    }

    #[test]
    fn forbidden_tool_call_fires() {
        let t = Trace {
            agents: vec![AgentInfo {
                name: "reviewer".into(),
                role: Some("You review plans. You must not call tools.".into()),
                ..AgentInfo::default()
            }],
            spans: vec![Span {
                kind: SpanKind::Tool,
                agent: Some("reviewer".into()),
                tool: Some(Box::new(ToolCall {
                    name: "book_flight".into(),
                    ..ToolCall::default()
                })),
                ..Span::default()
            }],
            ..Trace::default()
        };
        assert_eq!(
            RoleViolation
                .detect(&TraceView::new(&t), &Params::default())
                .len(),
            1
        );
    }
}
