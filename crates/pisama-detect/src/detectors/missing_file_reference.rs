//! "Hallucinated files": a tool or program failed with a file-not-found error (ENOENT,
//! "No such file or directory", `FileNotFoundError`, "does not exist") on a path the agent made
//! up itself: the path was not given by the user, the task or any earlier tool output.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use pisama_trace::{Role, SpanKind};
use regex::Regex;
use serde_json::Value;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

use super::tool_facts::{caller_message, failure_text, head, is_code_tool, result_text, tool_name};

pub(crate) struct MissingFileReference;

/// Errors that say a file or path is missing. Group 1 is set for the unambiguous ones; the
/// generic "not found" / "does not exist" only count with a path on the same line.
fn not_found_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(no such file or directory|\benoent\b|filenotfounderror|\bfile not found\b|\bfile does not exist\b|\bpath does not exist\b|\bno such file\b|\b(?:cannot|can't|could not|couldn't|unable to) (?:find|open|locate|read) (?:the )?(?:file|path|directory)\b|\bdirectory does not exist\b)|\bdoes not exist\b|\bdoesn't exist\b|\bnot found\b",
        )
        .expect("valid regex")
    })
}

fn quoted_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r#"['"`]([^'"`\n]{1,300})['"`]"#).expect("valid regex"))
}

/// Extensions that make a bare name a file name.
const FILE_EXTENSIONS: &[&str] = &[
    "txt", "csv", "tsv", "json", "jsonl", "py", "ipynb", "md", "pdf", "xlsx", "xls", "docx", "doc",
    "pptx", "png", "jpg", "jpeg", "gif", "svg", "webp", "yaml", "yml", "toml", "ini", "cfg",
    "conf", "env", "lock", "rs", "js", "ts", "tsx", "jsx", "html", "css", "xml", "log", "zip",
    "gz", "tar", "mp3", "mp4", "wav", "mov", "sql", "db", "sqlite", "parquet", "sh", "c", "cpp",
    "h", "hpp", "java", "go", "rb", "php", "kt", "swift", "r", "pkl", "npy", "pt", "bin",
];

/// Whether a string looks like a file path: a separator or a known extension, no URL, no
/// e-mail, no spaces unless there is a separator.
fn is_path_like(s: &str) -> bool {
    let s = s.trim();
    if s.len() < 3 || s.len() > 300 || s.contains("://") || s.contains('@') || s.contains('\n') {
        return false;
    }
    let has_sep = s.contains('/') || s.contains('\\');
    if s.contains(' ') && !has_sep {
        return false;
    }
    let last = s.rsplit(['/', '\\']).next().unwrap_or(s);
    let has_extension = has_known_extension(last);
    if has_sep {
        // "and/or" is not a path; "/etc/hosts", "./run.sh", "a/b/c" and "src/x.rs" are.
        let anchored = s.starts_with(['/', '.', '~']) || s.get(1..3) == Some(":\\");
        let separators = s.matches(['/', '\\']).count();
        return !s.contains(' ')
            && s.chars().any(char::is_alphanumeric)
            && (anchored || separators >= 2 || has_extension);
    }
    has_extension
}

fn has_known_extension(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.is_empty()
                && stem.chars().any(char::is_alphabetic)
                && FILE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        }
        None => false,
    }
}

#[cfg(test)]
fn missing_path_in(view: &TraceView<'_>, error: &str) -> Option<(String, String)> {
    missing_path(view, usize::MAX, error)
}

/// The path a not-found error is about: quoted or bare on the error's line, else the
/// path-like argument of the call.
fn missing_path(view: &TraceView<'_>, t: Idx, error: &str) -> Option<(String, String)> {
    let error = head(error, 2000);
    for m in not_found_pattern().captures_iter(error) {
        let Some(whole) = m.get(0) else { continue };
        let strong = m.get(1).is_some();
        let line_start = error[..whole.start()].rfind('\n').map_or(0, |p| p + 1);
        let line_end = error[whole.end()..]
            .find('\n')
            .map_or(error.len(), |p| whole.end() + p);
        // A strong error names its path anywhere on its line; a generic "not found" only
        // counts for a path right before it ("File 'a.csv' does not exist", "x.txt: not
        // found"), not for one a compiler mentions in passing.
        let scope_end = if strong { line_end } else { whole.start() };
        let scope = &error[line_start..scope_end];
        let near_end = |end: usize| strong || scope.len() - end <= 12;
        let quoted = quoted_pattern()
            .captures_iter(scope)
            .filter_map(|c| c.get(1).map(|g| (g.end(), g.as_str())));
        let from_line = quoted
            .chain(word_spans(scope))
            .map(|(end, w)| {
                (
                    end,
                    w.trim_matches(|c: char| {
                        matches!(c, ',' | ';' | ':' | '(' | ')' | '\'' | '"' | '`')
                    }),
                )
            })
            .find(|&(end, w)| near_end(end) && is_path_like(w))
            .map(|(_, w)| w);
        if let Some(p) = from_line {
            return Some((p.to_owned(), whole.as_str().to_owned()));
        }
        if strong && let Some(p) = path_argument(view, t) {
            return Some((p, whole.as_str().to_owned()));
        }
    }
    None
}

/// Whitespace-separated words with their end offsets.
fn word_spans(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((i, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((text.len(), &text[s..]));
    }
    out.into_iter()
}

/// A path-like string among the call's arguments, preferring keys that name a path or file.
fn path_argument(view: &TraceView<'_>, t: Idx) -> Option<String> {
    if t >= view.len() {
        return None;
    }
    let args = view.span(t).tool.as_ref().map(|c| &c.arguments)?;
    let mut found: Vec<(bool, String)> = Vec::new();
    collect_strings(args, "", &mut found);
    found.sort_by_key(|(preferred, _)| !preferred);
    found.into_iter().map(|(_, s)| s).find(|s| is_path_like(s))
}

fn collect_strings(value: &Value, key: &str, out: &mut Vec<(bool, String)>) {
    match value {
        Value::String(s) => {
            let k = key.to_ascii_lowercase();
            out.push((
                k.contains("path") || k.contains("file") || k.contains("dir"),
                s.clone(),
            ));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, key, out)),
        Value::Object(o) => o.iter().for_each(|(k, v)| collect_strings(v, k, out)),
        _ => {}
    }
}

impl Detector for MissingFileReference {
    fn id(&self) -> &'static str {
        "missing-file-reference"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_paths = params.usize("max_paths", 20).max(1);
        // path -> failing calls (with the error phrase)
        let mut by_path: BTreeMap<String, Vec<(Idx, String)>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for &t in view.tools() {
            let Some(error) = failure_text(view, t).or_else(|| {
                // Code runners print the error in an output whose status may be unset.
                let out = result_text(view, t);
                not_found_pattern()
                    .captures(head(out, 2000))
                    .and_then(|c| c.get(1))
                    .map(|_| out)
            }) else {
                continue;
            };
            let Some((path, phrase)) = missing_path(view, t, error) else {
                continue;
            };
            if !by_path.contains_key(&path) {
                if order.len() >= max_paths {
                    continue;
                }
                order.push(path.clone());
            }
            by_path.entry(path).or_default().push((t, phrase));
        }
        let mut hits = Vec::new();
        for path in order {
            let Some(calls) = by_path.get(&path) else {
                continue;
            };
            let Some(&(first, ref phrase)) = calls.first() else {
                continue;
            };
            let needle = path.to_lowercase();
            let base = basename(&needle);
            if was_given(view, first, &needle, base) {
                continue;
            }
            let origin = introduced_at(view, first, &needle)
                .unwrap_or_else(|| caller_message(view, first).unwrap_or(first));
            let name = tool_name(view, first);
            // Recovered: a later call of the same tool went through. A code runner succeeds
            // on all kinds of code, so there the later code must use the same path.
            let code = is_code_tool(view, first);
            let recovered = view.tools().iter().any(|&u| {
                u > first
                    && tool_name(view, u) == name
                    && failure_text(view, u).is_none()
                    && (!code
                        || caller_message(view, u).is_some_and(|m| view.lower(m).contains(&needle)))
            });
            let n = calls.len();
            let score = (0.6 + 0.1 * (n as f64 - 1.0)).min(0.9) * if recovered { 0.7 } else { 1.0 };
            let severity = if recovered {
                Severity::Low
            } else if n >= 2 {
                Severity::High
            } else {
                Severity::Medium
            };
            let mut evidence = Vec::new();
            if origin != first {
                evidence.push(HitEvidence::quoted(
                    origin,
                    "the agent brought up this path",
                    path.clone(),
                ));
            }
            evidence.push(HitEvidence::quoted(
                first,
                format!("`{name}`: {phrase}"),
                context(view, first, phrase),
            ));
            if n > 1
                && let Some(&(last, ref p)) = calls.last()
            {
                evidence.push(HitEvidence::quoted(
                    last,
                    format!("still missing, attempt {n}"),
                    context(view, last, p),
                ));
            }
            hits.push(Hit {
                score,
                severity: Some(severity),
                summary: format!(
                    "`{}` used the path `{path}`, which nobody gave it, and it does not exist ({phrase}{})",
                    view.agent(origin),
                    if recovered {
                        "; a later call found its way"
                    } else {
                        ""
                    }
                ),
                at: Some(origin),
                evidence,
                ..Hit::default()
            });
        }
        hits
    }
}

fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Whether the path (or its file name) came from outside the agent before the failing call:
/// the task, the opening message, user and system messages, tool outputs, or what the first
/// model call was given by the user and system.
fn was_given(view: &TraceView<'_>, before: Idx, path: &str, base: &str) -> bool {
    let mentions = |text: &str| {
        let lower = text.to_lowercase();
        lower.contains(path) || (base.len() >= 3 && lower.contains(base))
    };
    if view.trace.task.as_deref().is_some_and(mentions) {
        return true;
    }
    if let Some(&opening) = view.conversation().first()
        && opening < before
        && mentions(view.text(opening))
    {
        return true;
    }
    if let Some(first_llm) = (0..before).find(|&i| view.span(i).kind == SpanKind::Llm)
        && let Some(llm) = &view.span(first_llm).llm
        && llm
            .input_messages
            .iter()
            .filter(|m| matches!(m.role, Role::User | Role::System))
            .any(|m| mentions(&m.joined_text()))
    {
        return true;
    }
    (0..before).any(|i| {
        let s = view.span(i);
        match s.kind {
            SpanKind::Human | SpanKind::System => mentions(view.text(i)),
            SpanKind::Tool => mentions(result_text(view, i)),
            _ => false,
        }
    })
}

/// The first agent message or tool call (by its arguments) that mentions the path.
fn introduced_at(view: &TraceView<'_>, upto: Idx, path: &str) -> Option<Idx> {
    (0..=upto)
        .find(|&i| {
            let s = view.span(i);
            match s.kind {
                SpanKind::Llm | SpanKind::Step | SpanKind::Agent => view.lower(i).contains(path),
                SpanKind::Tool => s
                    .input
                    .as_ref()
                    .is_some_and(|p| p.text.to_lowercase().contains(path)),
                _ => false,
            }
        })
        .map(|i| {
            // A call's arguments were written by the model call that issued it.
            if view.span(i).kind == SpanKind::Tool {
                caller_message(view, i).unwrap_or(i)
            } else {
                i
            }
        })
}

fn context(view: &TraceView<'_>, t: Idx, phrase: &str) -> String {
    let text = failure_text(view, t).unwrap_or_else(|| result_text(view, t));
    let line = text.lines().find(|l| l.contains(phrase)).unwrap_or(text);
    head(line.trim(), 200).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_shapes() {
        assert!(is_path_like("/home/u/data.csv"));
        assert!(is_path_like("report_2024.xlsx"));
        assert!(is_path_like("src/main.rs"));
        assert!(!is_path_like("example.com"));
        assert!(!is_path_like("a@b.com"));
        assert!(!is_path_like("12.50"));
        assert!(!is_path_like("https://x.org/a.pdf"));
        assert!(!is_path_like("HAT030"));
        assert!(!is_path_like("payment method"));
    }

    #[test]
    fn generic_not_found_needs_the_path_right_before_it() {
        let trace = pisama_trace::Trace::default();
        let view = TraceView::new(&trace);
        let m = |e: &str| missing_path_in(&view, e).map(|(p, _)| p);
        assert_eq!(
            m("Error: file 'a.csv' does not exist").as_deref(),
            Some("a.csv")
        );
        assert_eq!(
            m("src/x.ts(27,18): error TS2339: Property 'id' does not exist on type 'User'."),
            None
        );
        assert_eq!(
            m("FileNotFoundError: [Errno 2] No such file or directory: 'b.txt'").as_deref(),
            Some("b.txt")
        );
    }

    #[test]
    fn empty_trace_is_quiet() {
        let trace = pisama_trace::Trace::default();
        assert!(
            MissingFileReference
                .detect(&TraceView::new(&trace), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn invented_path_fires_and_given_path_does_not() {
        use pisama_trace::load::{LoadOptions, load_bytes};
        let invented = r#"{"messages": [
            {"role": "user", "content": "What is in my notes?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "r", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\": \"/home/me/notes.txt\"}"}}]},
            {"role": "tool", "tool_call_id": "r", "content": "Error: ENOENT: no such file or directory, open '/home/me/notes.txt'"},
            {"role": "assistant", "content": "Your notes say to buy milk."}]}"#;
        let given = invented.replace("What is in my notes?", "What is in /home/me/notes.txt?");
        let run = |text: &str| {
            let (_, traces) =
                load_bytes("t.json", text.as_bytes(), &LoadOptions::default()).unwrap();
            MissingFileReference.detect(&TraceView::new(&traces[0].trace), &Params::default())
        };
        let hits = run(invented);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(1));
        assert!(run(&given).is_empty());
    }
}
