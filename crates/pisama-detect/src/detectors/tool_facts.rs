//! Facts about tool calls that several tool and loop detectors share: a call's name, what it
//! returned, whether it failed (by status or by unmistakable error text), whether it runs code,
//! and which spans are an agent's own messages.
//!
//! Sources disagree on how a failure is recorded: some set a status, some only return
//! `Error: ...` as the tool's text, code runners print an exit code. Reading all of them here
//! keeps the detectors consistent with each other.

use std::borrow::Cow;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use pisama_trace::{Span, SpanKind, Status};
use serde_json::Value;

use super::missing_confirmation::action_stem;
use crate::view::{Idx, TraceView};

/// The tool's name: the tool call's own name, else the span's.
pub(crate) fn tool_name<'t>(view: &TraceView<'t>, i: Idx) -> &'t str {
    let s = view.span(i);
    s.tool.as_ref().map_or(s.name.as_str(), |t| t.name.as_str())
}

/// What the tool returned: its output text, else the error message, else a string result.
/// Never the arguments (which [`TraceView::text`] falls back to).
pub(crate) fn result_text<'t>(view: &TraceView<'t>, i: Idx) -> &'t str {
    let s = view.span(i);
    if let Some(out) = &s.output {
        return out.text.as_str();
    }
    if let Some(e) = &s.error {
        return e.message.as_str();
    }
    match s.tool.as_ref().and_then(|t| t.result.as_ref()) {
        Some(Value::String(text)) => text.as_str(),
        _ => "",
    }
}

/// Whether the call returned anything at all (a result, an output, an error or a status).
pub(crate) fn has_outcome(span: &Span) -> bool {
    span.output.is_some()
        || span.error.is_some()
        || span.status != Status::Unset
        || span
            .tool
            .as_ref()
            .is_some_and(|t| t.is_error || t.result.is_some())
}

/// What the tool detectors ask of every tool call, worked out once per trace by
/// [`TraceView`] (half a dozen detectors read every tool result; each used to redo the exit
/// code and error scans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ToolFacts<'t> {
    failure: Option<&'t str>,
    code_tool: bool,
    /// [`super::missing_confirmation::action_stem`] of the tool's name.
    action_stem: Option<&'static str>,
}

impl<'t> ToolFacts<'t> {
    /// The facts of span `i`, computed (not cached).
    pub(crate) fn of(view: &TraceView<'t>, i: Idx) -> Self {
        let exit_code = exit_code(view, i);
        ToolFacts {
            failure: failure_text_uncached(view, i, exit_code),
            code_tool: is_code_tool_uncached(view, i, exit_code),
            action_stem: call_action_stem(view, i),
        }
    }
}

/// [`action_stem`] of a call's tool name, unless the call hands the conversation to another
/// agent of the run (`transfer_to_billing` in a swarm, or a call the adapter marked as a
/// handoff): passing the turn is not an action on the world.
fn call_action_stem(view: &TraceView<'_>, i: Idx) -> Option<&'static str> {
    let name = tool_name(view, i);
    let stem = action_stem(name)?;
    if view.span(i).handoff.is_some() {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    // `transfer_to_user` hands the turn back to the user (AutoGen swarms).
    if matches!(lower.as_str(), "transfer_to_user" | "handoff_to_user") {
        return None;
    }
    let names_agent = view.trace().agents.iter().any(|a| {
        let agent = a.name.to_ascii_lowercase();
        agent.len() >= 3 && lower.len() > agent.len() && lower.ends_with(&agent)
    });
    (!names_agent).then_some(stem)
}

/// The consequential action a tool call performs ([`action_stem`] of its [`tool_name`]).
pub(crate) fn tool_action_stem(view: &TraceView<'_>, i: Idx) -> Option<&'static str> {
    match view.tool_facts(i) {
        Some(facts) => facts.action_stem,
        None => call_action_stem(view, i),
    }
}

/// The failure text of a tool call, if it failed: by status, by its error flag, by a non-zero
/// exit code, or by a result that plainly starts as an error report. Calls the user declined
/// are not failures of the tool.
pub(crate) fn failure_text<'t>(view: &TraceView<'t>, i: Idx) -> Option<&'t str> {
    match view.tool_facts(i) {
        Some(facts) => facts.failure,
        None => failure_text_uncached(view, i, exit_code(view, i)),
    }
}

fn failure_text_uncached<'t>(
    view: &TraceView<'t>,
    i: Idx,
    exit_code: Option<i64>,
) -> Option<&'t str> {
    let s = view.span(i);
    let result = result_text(view, i);
    if is_user_rejection(result) {
        return None;
    }
    let flagged = s.status == Status::Error || s.tool.as_ref().is_some_and(|t| t.is_error);
    if flagged {
        let message = s.error.as_ref().map_or("", |e| e.message.as_str());
        if is_user_rejection(message) {
            return None;
        }
        // Adapters sometimes keep only a generic message ("error") or the first line; the
        // result then says more.
        let message = message.trim();
        let result_says_more =
            !result.trim().is_empty() && (message.len() < 16 || result.contains(message));
        return Some(if result_says_more || message.is_empty() {
            result
        } else {
            message
        });
    }
    if exit_code.is_some_and(|c| c != 0) || reads_as_error(result) {
        return Some(result);
    }
    None
}

/// The user refused the call (a permission prompt), which is not the tool failing.
fn is_user_rejection(text: &str) -> bool {
    static PHRASES: OnceLock<AhoCorasick> = OnceLock::new();
    let mut buf = [0u8; 200];
    let head = lower_head(text, &mut buf);
    PHRASES
        .get_or_init(|| {
            AhoCorasick::new([
                "doesn't want to proceed",
                "does not want to proceed",
                "rejected by the user",
                "tool use was rejected",
                "user denied",
            ])
            .expect("valid phrases")
        })
        .is_match(head.as_ref())
}

/// A result that opens as an error report (`Error: ...`, `Traceback (most recent call last)`,
/// a JSON object whose `error` is set or whose `status` is `error`/`failed`). Only the start
/// counts: a document that merely mentions errors further down is not a failure.
pub(crate) fn reads_as_error(text: &str) -> bool {
    let t = text.trim_start();
    let mut buf = [0u8; 40];
    let head = lower_head(t, &mut buf);
    let starts_word = |w: &str| {
        head.strip_prefix(w)
            .is_some_and(|rest| rest.starts_with([':', ' ', '!', '(', '-', '\n']))
    };
    if starts_word("error")
        || starts_word("exception")
        || starts_word("fatal")
        || starts_word("failed")
        || starts_word("failure")
        || head.starts_with("traceback (most recent call last)")
        || head.starts_with("<tool_use_error>")
    {
        return true;
    }
    if t.starts_with('{')
        && let Ok(Value::Object(o)) = serde_json::from_str::<Value>(t)
    {
        let error_set = o.get("error").is_some_and(|e| match e {
            Value::Null | Value::Bool(false) => false,
            Value::String(s) => !s.trim().is_empty(),
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        });
        let status_failed = o
            .get("status")
            .and_then(Value::as_str)
            .is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "error" | "failed"));
        return error_set || status_failed;
    }
    false
}

/// The exit code of a command or code execution: from an `exit_code`-like attribute, else
/// from `exitcode: N` / `exit code N` / `exit status N` near the start of the output.
fn exit_code(view: &TraceView<'_>, i: Idx) -> Option<i64> {
    let s = view.span(i);
    for (key, value) in &s.attributes {
        if (ends_with_ignore_case(key, "exit_code") || ends_with_ignore_case(key, "exitcode"))
            && let Some(code) = value
                .as_i64()
                .or_else(|| value.as_str().and_then(|v| v.trim().parse().ok()))
        {
            return Some(code);
        }
    }
    exit_code_in_text(result_text(view, i))
}

fn exit_code_in_text(text: &str) -> Option<i64> {
    static MARKERS: OnceLock<AhoCorasick> = OnceLock::new();
    let mut buf = [0u8; 300];
    let head = lower_head(text, &mut buf);
    // Most results name no exit code at all: one scan for any marker first.
    let any = MARKERS.get_or_init(|| {
        AhoCorasick::new([
            "exitcode",
            "exit code",
            "exit status",
            "exit_code",
            "returncode",
        ])
        .expect("valid markers")
    });
    if !any.is_match(head.as_ref()) {
        return None;
    }
    for marker in [
        "exitcode",
        "exit code",
        "exit status",
        "exit_code",
        "returncode",
    ] {
        let mut from = 0;
        while let Some(pos) = head[from..].find(marker) {
            let after = &head[from + pos + marker.len()..];
            let digits: String = after
                .trim_start_matches([':', ' ', '=', '"', '\''])
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            if let Ok(code) = digits.parse() {
                return Some(code);
            }
            from += pos + marker.len();
        }
    }
    None
}

/// The first `N` characters of a text lower-cased into `buf`, when they are all ASCII (then
/// they are the first `N` bytes, and ASCII lower-casing is what `to_lowercase` does); `None`
/// otherwise, and the caller takes the general path. Tool results are read for every tool
/// call by several detectors, so this saves two allocations per call and detector.
fn ascii_lower_head<'b, const N: usize>(text: &str, buf: &'b mut [u8; N]) -> Option<&'b str> {
    let bytes = &text.as_bytes()[..text.len().min(N)];
    if !bytes.is_ascii() {
        return None;
    }
    let out = &mut buf[..bytes.len()];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b.to_ascii_lowercase();
    }
    std::str::from_utf8(out).ok()
}

/// The first `N` characters of a text lower-cased: in `buf` when they are ASCII, else
/// allocated.
fn lower_head<'b, const N: usize>(text: &str, buf: &'b mut [u8; N]) -> Cow<'b, str> {
    match ascii_lower_head(text, buf) {
        Some(head) => Cow::Borrowed(head),
        None => Cow::Owned(text.chars().take(N).collect::<String>().to_lowercase()),
    }
}

/// `key.to_ascii_lowercase().ends_with(suffix)` for a lower-case ASCII `suffix`, without the
/// copy.
fn ends_with_ignore_case(key: &str, suffix: &str) -> bool {
    key.len() >= suffix.len()
        && key.as_bytes()[key.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Name parts that mark a tool as running code or shell commands.
const CODE_TOOL_WORDS: &[&str] = &[
    "exec",
    "execute",
    "execution",
    "executor",
    "bash",
    "shell",
    "terminal",
    "python",
    "jupyter",
    "ipython",
    "interpreter",
    "repl",
    "powershell",
    "cmd",
    "command",
    "sandbox",
    "script",
];

/// Whether a tool runs code or commands: by the words in its name, or because its output
/// reports an exit code. An executor agent's name (AG2's `Computer_terminal`) counts only for
/// calls without arguments, where the agent itself is the tool.
pub(crate) fn is_code_tool(view: &TraceView<'_>, i: Idx) -> bool {
    match view.tool_facts(i) {
        Some(facts) => facts.code_tool,
        None => is_code_tool_uncached(view, i, exit_code(view, i)),
    }
}

fn is_code_tool_uncached(view: &TraceView<'_>, i: Idx, exit_code: Option<i64>) -> bool {
    let named = has_code_word;
    let s = view.span(i);
    let argless = s.tool.as_ref().is_none_or(|t| t.arguments.is_null());
    named(tool_name(view, i))
        || (argless && s.agent.as_deref().is_some_and(named))
        || exit_code.is_some()
}

/// Whether one of [`name_words`] of a name is in `CODE_TOOL_WORDS`, without building the
/// words: the same splitting over byte ranges of the name. Only an ASCII word can lower-case to
/// one of those (ASCII) words, so ASCII case-insensitive equality decides.
fn has_code_word(name: &str) -> bool {
    let is_code =
        |w: &str| w.is_ascii() && CODE_TOOL_WORDS.iter().any(|c| c.eq_ignore_ascii_case(w));
    let mut start: Option<usize> = None;
    let mut prev_lower = false;
    for (k, c) in name.char_indices() {
        if !c.is_alphanumeric() {
            if let Some(s) = start.take()
                && is_code(&name[s..k])
            {
                return true;
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase()
            && prev_lower
            && let Some(s) = start.take()
            && is_code(&name[s..k])
        {
            return true;
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        start.get_or_insert(k);
    }
    start.is_some_and(|s| is_code(&name[s..]))
}

/// Lower-case words of an identifier: splits on non-alphanumerics and camel case. The
/// reference that [`has_code_word`] is tested against.
#[cfg(test)]
fn name_words(name: &str) -> impl Iterator<Item = String> + '_ {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words.into_iter()
}

/// Whether a span is something an agent said: a model call, step or agent turn with text.
pub(crate) fn is_agent_message(view: &TraceView<'_>, i: Idx) -> bool {
    matches!(
        view.span(i).kind,
        SpanKind::Llm | SpanKind::Step | SpanKind::Agent
    ) && !view.text(i).trim().is_empty()
}

/// The message that made a tool call: its parent model call or agent turn, else (for an
/// executor that runs whatever the previous speaker wrote, as in AG2 group chats) the nearest
/// earlier message by another agent, preferring one that holds a code block.
pub(crate) fn caller_message(view: &TraceView<'_>, t: Idx) -> Option<Idx> {
    let s = view.span(t);
    if let Some(p) = s.parent.map(|p| p as usize).filter(|&p| p < view.len())
        && matches!(
            view.span(p).kind,
            SpanKind::Llm | SpanKind::Agent | SpanKind::Step
        )
    {
        return Some(p);
    }
    let argless = s.tool.as_ref().is_none_or(|c| c.arguments.is_null());
    if !argless {
        return None;
    }
    let earlier: Vec<Idx> = (t.saturating_sub(8)..t)
        .rev()
        .filter(|&j| is_agent_message(view, j) && view.span(j).agent != s.agent)
        .take(3)
        .collect();
    earlier
        .iter()
        .copied()
        .find(|&j| view.text(j).contains("```"))
        .or_else(|| earlier.first().copied())
}

/// The line of an error report that names the error (the last `...Error: ...` line of a
/// traceback), else the start of the text.
pub(crate) fn error_line(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            let head: String = l.chars().take(80).collect();
            (head.contains("Error") || head.contains("Exception") || head.starts_with("error"))
                && !head.starts_with("File ")
        })
        .unwrap_or_else(|| text.trim())
}

/// The first `max_bytes` bytes of a text, cut back to a character boundary.
pub(crate) fn head(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_read_from_the_start_only() {
        assert!(reads_as_error("Error: flight not found"));
        assert!(reads_as_error("  error - timeout"));
        assert!(reads_as_error("Traceback (most recent call last):\n  File"));
        assert!(reads_as_error(r#"{"status": "error", "message": "bad"}"#));
        assert!(reads_as_error(r#"{"error": "quota exceeded"}"#));
        assert!(!reads_as_error(r#"{"error": null, "value": 3}"#));
        assert!(!reads_as_error("Errors are rare in this system."));
        assert!(!reads_as_error("The log shows: Error: disk full"));
        assert!(!reads_as_error(""));
    }

    #[test]
    fn exit_codes_are_found_in_text() {
        assert_eq!(
            exit_code_in_text("exitcode: 1 (execution failed)\nCode output:"),
            Some(1)
        );
        assert_eq!(exit_code_in_text("Process finished, exit code 0"), Some(0));
        assert_eq!(exit_code_in_text("no code here"), None);
        assert_eq!(exit_code_in_text("exit code: unknown"), None);
    }

    #[test]
    fn code_words_match_the_word_split() {
        for name in [
            "Computer_terminal",
            "runPythonCode",
            "lookup_zip_code",
            "BashTool",
            "exec",
            "PYTHON",
            "ÉxecShell",
            "my-sandbox2",
            "scriptRunner",
            "",
            "__",
        ] {
            let slow = name_words(name).any(|w| CODE_TOOL_WORDS.contains(&w.as_str()));
            assert_eq!(has_code_word(name), slow, "{name}");
        }
    }

    #[test]
    fn identifiers_split_into_words() {
        let words: Vec<String> = name_words("Computer_terminal").collect();
        assert_eq!(words, ["computer", "terminal"]);
        let words: Vec<String> = name_words("runPythonCode").collect();
        assert_eq!(words, ["run", "python", "code"]);
        assert!(!name_words("lookup_zip_code").any(|w| CODE_TOOL_WORDS.contains(&w.as_str())));
    }

    /// Every detector of the tools-and-loops batch on degenerate and oversized inputs: no
    /// panic, and nothing found where there is nothing to find.
    #[test]
    fn batch_survives_degenerate_traces() {
        use crate::catalog::Params;
        use crate::engine::Detector;
        use pisama_trace::{Payload, ToolCall, Trace};

        let batch: Vec<Box<dyn Detector>> = vec![
            Box::new(super::super::code_execution_failed::CodeExecutionFailed),
            Box::new(super::super::hallucinated_tool::HallucinatedTool),
            Box::new(super::super::invalid_tool_arguments::InvalidToolArguments),
            Box::new(super::super::missing_file_reference::MissingFileReference),
            Box::new(super::super::orphan_tool_call::OrphanToolCall),
            Box::new(super::super::repeated_message::RepeatedMessage),
            Box::new(super::super::stalled_progress::StalledProgress),
            Box::new(super::super::tool_call_cycle::ToolCallCycle),
            Box::new(super::super::tool_error_ignored::ToolErrorIgnored),
            Box::new(super::super::tool_error_rate::ToolErrorRate),
        ];
        let run = |trace: &Trace| -> usize {
            let view = TraceView::new(trace);
            batch
                .iter()
                .map(|d| d.detect(&view, &Params::default()).len())
                .sum()
        };
        assert_eq!(run(&Trace::default()), 0);
        let bare = |kind: SpanKind| Span {
            kind,
            ..Span::default()
        };
        for kind in SpanKind::ALL {
            assert_eq!(
                run(&Trace {
                    spans: vec![bare(kind)],
                    ..Trace::default()
                }),
                0
            );
        }
        // A dangling parent, odd text, and a tool without a call record.
        let odd = Span {
            kind: SpanKind::Tool,
            parent: Some(999),
            status: Status::Error,
            output: Some(Box::new(Payload::text("é\u{0}’ exitcode: -"))),
            ..Span::default()
        };
        let _ = run(&Trace {
            spans: vec![odd],
            ..Trace::default()
        });
        // Ten thousand failing calls and messages: bounded work, no panic.
        let mut spans = Vec::new();
        for k in 0..10_000 {
            spans.push(Span {
                kind: SpanKind::Llm,
                agent: Some("a".to_owned()),
                output: Some(Box::new(Payload::text(format!(
                    "attempt {} of the same thing again and again",
                    k % 3
                )))),
                ..Span::default()
            });
            spans.push(Span {
                kind: SpanKind::Tool,
                agent: Some("a".to_owned()),
                status: Status::Error,
                tool: Some(Box::new(ToolCall {
                    name: "read_file".to_owned(),
                    arguments: serde_json::json!({ "path": format!("/tmp/f{}.txt", k % 2) }),
                    ..ToolCall::default()
                })),
                output: Some(Box::new(Payload::text(
                    "Error: ENOENT: no such file or directory",
                ))),
                ..Span::default()
            });
        }
        assert!(
            run(&Trace {
                spans,
                ..Trace::default()
            }) > 0
        );
    }
}
