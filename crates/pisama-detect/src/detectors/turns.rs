//! Small helpers shared by the coordination and termination detectors: who acts, who speaks,
//! what a handoff points at, and content words of a text.

use pisama_trace::{HandoffMode, Span, SpanKind};

use crate::view::{Idx, TraceView, is_user, tokenize};

/// The name a tool span reports (its tool name, else the span name).
pub(crate) fn tool_name(span: &Span) -> &str {
    span.tool
        .as_ref()
        .map_or(span.name.as_str(), |t| t.name.as_str())
}

/// Whether a span is something an agent did (thought, called, ran), as opposed to an input,
/// a bookkeeping record or a handoff marker.
pub(crate) fn is_action(span: &Span) -> bool {
    matches!(
        span.kind,
        SpanKind::Agent | SpanKind::Llm | SpanKind::Tool | SpanKind::Step | SpanKind::Retrieval
    )
}

/// A handoff span, read out: who hands over to whom, and the position from which the target
/// is expected to act.
#[derive(Debug, Clone)]
pub(crate) struct HandoffRef {
    pub span: Idx,
    pub from: String,
    pub to: String,
    pub mode: HandoffMode,
    /// Where the handoff happened in span order. Adapters without timestamps append handoff
    /// markers after the whole parent subtree, so then the parent's position is the safe one
    /// (it never makes a target that did act look idle).
    pub anchor: Idx,
}

/// Every handoff span with a known target, in span order.
pub(crate) fn handoffs(view: &TraceView<'_>) -> Vec<HandoffRef> {
    (0..view.len())
        .filter_map(|i| {
            let span = view.span(i);
            let handoff = span.handoff.as_ref()?;
            let to = handoff.to.trim();
            if to.is_empty() {
                return None;
            }
            let from = handoff
                .from
                .as_deref()
                .or(span.agent.as_deref())
                .unwrap_or("?")
                .trim()
                .to_owned();
            let anchor = if span.start_ns.is_some() {
                i
            } else {
                span.parent.map_or(i, |p| (p as usize).min(i))
            };
            Some(HandoffRef {
                span: i,
                from,
                to: to.to_owned(),
                mode: handoff.mode,
                anchor,
            })
        })
        .collect()
}

/// Names that stand for the end user or the end of the graph rather than an agent: control
/// handed there is meant to leave the agents.
pub(crate) fn is_exit_target(name: &str) -> bool {
    let key: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        key.as_str(),
        "user"
            | "human"
            | "customer"
            | "client"
            | "end"
            | "finish"
            | "finished"
            | "stop"
            | "terminate"
            | "humanagent"
            | "humanagents"
    )
}

/// A turn in the conversation: a span with text, its speaker and whether that is a user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn<'t> {
    pub span: Idx,
    pub speaker: &'t str,
    pub user: bool,
}

/// Conversation spans that carry text, with their speaker. Spans without an agent are users
/// when they are human input, and are skipped otherwise (system prompts, bookkeeping).
/// Worked out once per trace by the view (several detectors ask).
pub(crate) fn turns<'t>(view: &TraceView<'t>) -> Vec<Turn<'t>> {
    view.turns().to_vec()
}

/// [`turns`], computed.
pub(crate) fn compute_turns<'t>(view: &TraceView<'t>) -> Vec<Turn<'t>> {
    view.conversation()
        .iter()
        .copied()
        .filter(|&i| !view.text(i).trim().is_empty())
        .filter_map(|i| {
            let span = view.span(i);
            if span.kind == SpanKind::System {
                return None;
            }
            // Containers (an agent run, a turn) repeat their children's text as a roll-up;
            // the children are the turns. Model calls keep their tool calls as children.
            if span.kind != SpanKind::Llm && !view.children(i).is_empty() {
                return None;
            }
            let user = is_user(span);
            let speaker = match (&span.agent, user) {
                (_, true) => "user",
                (Some(a), false) => a.as_str(),
                (None, false) => return None,
            };
            Some(Turn {
                span: i,
                speaker,
                user,
            })
        })
        .collect()
}

/// Function words that carry no topic; kept small on purpose.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had",
    "has", "have", "he", "her", "here", "him", "his", "how", "if", "in", "into", "is", "it", "its",
    "just", "let", "me", "more", "my", "no", "not", "now", "of", "on", "one", "or", "our", "out",
    "please", "she", "should", "so", "some", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "to", "up", "us", "was", "we", "were", "what",
    "when", "where", "which", "who", "why", "will", "with", "would", "you", "your", "yes", "ok",
    "okay", "thanks", "thank", "sure", "need", "want", "like", "get", "know", "tell", "give",
    "make", "check", "see",
];

/// Lower-cased topic words of a text: at least three characters, not a function word.
pub(crate) fn content_words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out: Vec<String> = tokenize(&lower)
        .filter(|w| w.len() >= 3 && !STOPWORDS.contains(w))
        .map(str::to_owned)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Splits a text into sentences at `.`, `!`, `?` and line breaks (keeping the mark).
pub(crate) fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    // Byte-wise: the marks are ASCII, and no byte of a multi-byte character is ASCII, so a
    // mark's byte is always a whole character.
    for (i, &b) in text.as_bytes().iter().enumerate() {
        // A mark ends a sentence only before white space or the end (`orders.csv`, `3.5`
        // and URLs stay whole).
        let boundary = b == b'\n'
            || (matches!(b, b'.' | b'!' | b'?')
                && text[i + 1..].chars().next().is_none_or(char::is_whitespace));
        if boundary {
            let end = i + 1;
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The last `max_chars` characters of a text, cut at a character boundary.
pub(crate) fn tail(text: &str, max_chars: usize) -> &str {
    let count = text.chars().count();
    if count <= max_chars {
        return text;
    }
    let skip = count - max_chars;
    text.char_indices()
        .nth(skip)
        .map_or(text, |(b, _)| &text[b..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_and_tail() {
        assert_eq!(sentences("One. Two? Three"), vec!["One.", "Two?", "Three"]);
        assert!(sentences("").is_empty());
        assert_eq!(
            sentences("Read orders.csv now. Done"),
            vec!["Read orders.csv now.", "Done"]
        );
        assert_eq!(
            sentences("Été fini.\u{a0}Ça va?\nOui! 3.5 ok…"),
            vec!["Été fini.", "Ça va?", "Oui!", "3.5 ok…"]
        );
        assert_eq!(tail("héllo", 3), "llo");
        assert_eq!(tail("ab", 5), "ab");
    }

    #[test]
    fn content_words_drop_function_words() {
        assert_eq!(
            content_words("Can you check the baggage allowance?"),
            vec!["allowance", "baggage"]
        );
    }

    #[test]
    fn exit_targets() {
        assert!(is_exit_target("User"));
        assert!(is_exit_target("__end__"));
        assert!(!is_exit_target("billing"));
    }
}
