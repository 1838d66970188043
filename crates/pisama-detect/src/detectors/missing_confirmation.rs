//! A consequential, state-changing action (cancel, delete, book, pay, refund, update, transfer,
//! send...) executed without the user confirming it in their turn right before.
//!
//! The action is recognised from the tool name's words (a leading read verb such as `get_` or
//! `search_` makes it read-only). The user turn before the call counts as confirmation when it
//! affirms ("yes", "go ahead", "I confirm") without hedging, or when it explicitly requests this
//! very action on this very object (the action verb and one of the call's argument values).
//! Changes to files named by a path argument (a coding agent editing the repository it was
//! given) are not such actions.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::detectors::dialogue::{
    Speaker, is_read_only_tool, name_words, speaker, timeline, tool_name,
};
use crate::detectors::tool_facts::tool_action_stem;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

pub(crate) struct MissingConfirmation;

/// Tool-name words that change state, with the stem a user would use to ask for it.
const ACTIONS: &[(&str, &str)] = &[
    ("cancel", "cancel"),
    ("delete", "delet"),
    ("remove", "remov"),
    ("book", "book"),
    ("reserve", "reserv"),
    ("pay", "pay"),
    ("payment", "pay"),
    ("charge", "charg"),
    ("refund", "refund"),
    ("update", "updat"),
    ("modify", "modif"),
    ("change", "chang"),
    ("edit", "edit"),
    ("transfer", "transfer"),
    ("send", "send"),
    ("email", "email"),
    ("purchase", "purchas"),
    ("buy", "buy"),
    ("order", "order"),
    ("submit", "submit"),
    ("exchange", "exchang"),
    ("return", "return"),
    ("upgrade", "upgrad"),
    ("downgrade", "downgrad"),
    ("drop", "drop"),
    ("terminate", "terminat"),
    ("close", "clos"),
    ("withdraw", "withdraw"),
    ("publish", "publish"),
    ("deploy", "deploy"),
    ("revoke", "revok"),
];

/// Words that make a "transfer" a handoff to a person, which needs no confirmation.
const HANDOFF_WORDS: &[&str] = &[
    "human",
    "agent",
    "agents",
    "operator",
    "support",
    "representative",
];

fn affirmative() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(yes|yeah|yep|yup|sure|ok|okay|confirm|confirmed|confirming|correct|proceed|go ahead|please do|do it|sounds good|absolutely|alright|approve|approved|agreed?|that works|that's fine|that is fine|let's|let us)\b")
            .expect("valid regex")
    })
}

fn hesitant() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)(^\s*no\b|\b(don't|do not|not yet|wait|hold on|hold off|stop|never mind|not sure|instead|rather not|let me think)\b)")
            .expect("valid regex")
    })
}

/// The consequential action a tool name performs, as the stem a user would write.
pub(crate) fn action_stem(name: &str) -> Option<&'static str> {
    if is_read_only_tool(name) {
        return None;
    }
    let words = name_words(name);
    if words.iter().any(|w| HANDOFF_WORDS.contains(&w.as_str())) {
        return None;
    }
    words.iter().find_map(|w| {
        ACTIONS
            .iter()
            .find(|(word, _)| w == word)
            .map(|(_, stem)| *stem)
    })
}

/// String and number leaves of a call's arguments that identify its object (ids, codes).
fn argument_values(args: &serde_json::Value, out: &mut Vec<String>) {
    match args {
        serde_json::Value::String(s) if s.trim().len() >= 4 => out.push(s.trim().to_lowercase()),
        serde_json::Value::Number(n) if n.to_string().len() >= 4 => out.push(n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| argument_values(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| argument_values(v, out)),
        _ => {}
    }
}

/// Argument names that hold a file path.
const FILE_ARGUMENTS: &[&str] = &[
    "path",
    "file_path",
    "filepath",
    "filename",
    "file",
    "target_file",
];

/// Whether the call changes a file named by a path argument (a coding agent's `Edit`,
/// `edit_file`, `delete_file`): work on the files the user handed over, under version control,
/// not a consequential action on someone's account that needs a yes first.
fn edits_workspace_file(view: &TraceView<'_>, tool: Idx) -> bool {
    view.span(tool)
        .tool
        .as_ref()
        .and_then(|call| call.arguments.as_object())
        .is_some_and(|args| {
            args.iter().any(|(k, v)| {
                v.is_string() && FILE_ARGUMENTS.iter().any(|f| k.eq_ignore_ascii_case(f))
            })
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consent {
    Affirmed,
    ExplicitRequest,
    Missing,
    Hesitant,
}

fn consent(view: &TraceView<'_>, user: Idx, tool: Idx, stem: &str) -> Consent {
    let said = view.lower(user);
    // "Yes, ... but I'm not sure of the number" is still a yes: an affirmation that opens the
    // turn wins over hedging later in it.
    let opening: String = said
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    if affirmative().is_match(&opening) && !opening.starts_with("no") {
        return Consent::Affirmed;
    }
    if hesitant().is_match(said) {
        return Consent::Hesitant;
    }
    if affirmative().is_match(said) {
        return Consent::Affirmed;
    }
    let mut values = Vec::new();
    if let Some(call) = &view.span(tool).tool {
        argument_values(&call.arguments, &mut values);
    }
    if said.contains(stem) && values.iter().any(|v| said.contains(v.as_str())) {
        return Consent::ExplicitRequest;
    }
    Consent::Missing
}

impl Detector for MissingConfirmation {
    fn id(&self) -> &'static str {
        "missing-confirmation"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let include_failed = params.bool("include_failed", true);
        let line = timeline(view);
        if !line.iter().any(|&i| speaker(view, i) == Speaker::User) {
            return Vec::new();
        }
        let mut hits = Vec::new();
        let mut last_user: Option<Idx> = None;
        // One finding per user turn: the first unconfirmed action after it.
        let mut reported_for: Option<Option<Idx>> = None;
        for &i in &line {
            match speaker(view, i) {
                Speaker::User if !view.text(i).trim().is_empty() => last_user = Some(i),
                Speaker::Tool => {
                    let name = tool_name(view, i);
                    let Some(stem) = tool_action_stem(view, i) else {
                        continue;
                    };
                    let failed = view.failed(i);
                    if (failed && !include_failed)
                        || reported_for == Some(last_user)
                        || edits_workspace_file(view, i)
                    {
                        continue;
                    }
                    let state = last_user.map_or(Consent::Missing, |u| consent(view, u, i, stem));
                    if matches!(state, Consent::Affirmed | Consent::ExplicitRequest) {
                        continue;
                    }
                    reported_for = Some(last_user);
                    hits.push(hit(view, i, name, last_user, state, failed));
                }
                _ => {}
            }
        }
        hits
    }
}

fn hit(
    view: &TraceView<'_>,
    tool: Idx,
    name: &str,
    user: Option<Idx>,
    state: Consent,
    failed: bool,
) -> Hit {
    let hesitant = state == Consent::Hesitant;
    let mut score: f64 = if hesitant { 0.85 } else { 0.6 };
    if user.is_none() {
        score -= 0.15;
    }
    if failed {
        score *= 0.75;
    }
    let mut evidence = vec![HitEvidence::new(
        tool,
        if failed {
            "state-changing call (it failed)"
        } else {
            "state-changing call"
        },
    )];
    if let Some(u) = user {
        evidence.push(HitEvidence::new(
            u,
            if hesitant {
                "the user's last turn hesitates or refuses"
            } else {
                "the user's last turn, with no confirmation"
            },
        ));
    }
    let who = match (user, hesitant) {
        (None, _) => "before the user said anything".to_owned(),
        (Some(_), true) => "although the user's last turn hesitated or said no".to_owned(),
        (Some(_), false) => "without the user confirming it in their last turn".to_owned(),
    };
    Hit {
        score,
        severity: Some(if hesitant && !failed {
            Severity::High
        } else if failed {
            Severity::Low
        } else {
            Severity::Medium
        }),
        summary: format!("`{}` called `{name}` {who}", view.agent(tool)),
        at: Some(tool),
        evidence,
        ..Hit::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{Payload, Span, SpanKind, ToolCall, Trace};

    fn user(text: &str) -> Span {
        Span {
            kind: SpanKind::Human,
            input: Some(Box::new(Payload::text(text))),
            ..Span::default()
        }
    }

    fn call(name: &str, args: serde_json::Value) -> Span {
        Span {
            kind: SpanKind::Tool,
            name: name.into(),
            agent: Some("agent".into()),
            tool: Some(Box::new(ToolCall {
                name: name.into(),
                arguments: args,
                ..ToolCall::default()
            })),
            ..Span::default()
        }
    }

    fn run(spans: Vec<Span>) -> Vec<Hit> {
        let t = Trace {
            spans,
            ..Trace::default()
        };
        MissingConfirmation.detect(&TraceView::new(&t), &Params::default())
    }

    #[test]
    fn quiet_on_empty_and_userless_runs() {
        assert!(run(vec![]).is_empty());
        assert!(run(vec![call("cancel_order", serde_json::json!({}))]).is_empty());
    }

    #[test]
    fn actions_from_tool_names() {
        assert_eq!(action_stem("cancel_reservation"), Some("cancel"));
        assert_eq!(action_stem("get_order_details"), None);
        assert_eq!(action_stem("transfer_to_human_agents"), None);
        assert_eq!(action_stem("sendEmail"), Some("send"));
        assert_eq!(action_stem("calculate"), None);
    }

    #[test]
    fn confirmation_rules() {
        let args = serde_json::json!({"reservation_id": "QX12AB"});
        assert!(
            run(vec![
                user("yes please"),
                call("cancel_reservation", args.clone())
            ])
            .is_empty()
        );
        assert!(
            run(vec![
                user("Cancel reservation QX12AB."),
                call("cancel_reservation", args.clone())
            ])
            .is_empty()
        );
        let hits = run(vec![
            user("What is the refund policy?"),
            call("cancel_reservation", args.clone()),
        ]);
        assert_eq!(hits.len(), 1);
        let hits = run(vec![user("No, wait."), call("cancel_reservation", args)]);
        assert_eq!(hits[0].severity, Some(Severity::High));
    }
}
