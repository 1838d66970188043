//! The YAML subset of record frontmatter: a parsed tree that keeps line numbers (for errors that
//! name the line of a bad field) and a canonical emitter (for byte-identical re-saves).
//!
//! Parsing accepts any YAML a person may write (block or flow style, any quoting); emitting
//! produces one canonical spelling per value, so `emit(parse(emit(v))) == emit(v)`.

use std::fmt::Write as _;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML value with the 1-based line it started on (0 for values built in code).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
}

/// A YAML value. Maps keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn new(value: Value) -> Self {
        Node { line: 0, value }
    }

    pub fn str(s: impl Into<String>) -> Self {
        Node::new(Value::Str(s.into()))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// Calls `f` on every string in the tree (keys excluded).
    pub fn for_each_str_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
        match &mut self.value {
            Value::Str(s) => f(s),
            Value::List(items) => items.iter_mut().for_each(|n| n.for_each_str_mut(f)),
            Value::Map(m) => m.iter_mut().for_each(|(_, n)| n.for_each_str_mut(f)),
            Value::Null | Value::Bool(_) | Value::Int(_) => {}
        }
    }
}

/// A YAML syntax error with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug)]
enum Frame {
    List(usize, Vec<Node>),
    Map(usize, Vec<(String, Node)>, Option<(String, usize)>),
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::List(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, key)) => match key.take() {
                None => match node.value {
                    Value::Str(k) => *key = Some((k, node.line)),
                    Value::Int(i) => *key = Some((i.to_string(), node.line)),
                    Value::Bool(b) => *key = Some((b.to_string(), node.line)),
                    _ => {
                        if self.error.is_none() {
                            self.error = Some(SyntaxError {
                                line: node.line,
                                message: "a map key must be a plain string".into(),
                            });
                        }
                    }
                },
                Some((k, line)) => {
                    if entries.iter().any(|(e, _)| *e == k) {
                        if self.error.is_none() {
                            self.error = Some(SyntaxError {
                                line,
                                message: format!("duplicate key `{k}`"),
                            });
                        }
                    } else {
                        entries.push((k, node));
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, _, _) => {
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Value::Str(text)
                };
                self.push_value(Node { line, value });
            }
            Event::SequenceStart(..) => self.stack.push(Frame::List(line, Vec::new())),
            Event::MappingStart(..) => self.stack.push(Frame::Map(line, Vec::new(), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::List(l, items)) => Node {
                        line: l,
                        value: Value::List(items),
                    },
                    Some(Frame::Map(l, entries, _)) => Node {
                        line: l,
                        value: Value::Map(entries),
                    },
                    None => return,
                };
                self.push_value(node);
            }
            Event::Alias(_) if self.error.is_none() => {
                self.error = Some(SyntaxError {
                    line,
                    message: "YAML aliases are not supported in frontmatter".into(),
                });
            }
            _ => {}
        }
    }
}

fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            if !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && let Ok(i) = text.parse::<i64>()
            {
                return Value::Int(i);
            }
            Value::Str(text.to_owned())
        }
    }
}

/// Parses one YAML document. `first_line` is added to every line number (the frontmatter
/// starts after the `---` line of the file).
pub fn parse(text: &str, first_line: usize) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        return Err(SyntaxError {
            line: e.marker().line() + first_line,
            message: e.info().to_owned(),
        });
    }
    if let Some(mut e) = builder.error {
        e.line += first_line;
        return Err(e);
    }
    let mut root = builder.root.unwrap_or(Node::new(Value::Map(Vec::new())));
    shift_lines(&mut root, first_line);
    Ok(root)
}

fn shift_lines(node: &mut Node, by: usize) {
    node.line += by;
    match &mut node.value {
        Value::List(items) => items.iter_mut().for_each(|n| shift_lines(n, by)),
        Value::Map(m) => m.iter_mut().for_each(|(_, n)| shift_lines(n, by)),
        _ => {}
    }
}

/// Emits a top-level map in canonical block style; each line ends with `\n`.
pub fn emit_map(entries: &[(String, Node)]) -> String {
    let mut out = String::new();
    emit_entries(&mut out, entries, 0);
    out
}

const INLINE_MAX: usize = 100;

fn emit_entries(out: &mut String, entries: &[(String, Node)], indent: usize) {
    for (key, node) in entries {
        pad(out, indent);
        out.push_str(&key_text(key));
        out.push(':');
        emit_after_key(out, node, indent);
    }
}

/// Writes the value after `key:` (the colon is already written), ending with a newline.
fn emit_after_key(out: &mut String, node: &Node, indent: usize) {
    if let Some(inline) = inline(node) {
        out.push(' ');
        out.push_str(&inline);
        out.push('\n');
        return;
    }
    out.push('\n');
    match &node.value {
        Value::Map(m) => emit_entries(out, m, indent + 2),
        Value::List(items) => emit_list(out, items, indent + 2),
        _ => {}
    }
}

fn emit_list(out: &mut String, items: &[Node], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        if let Some(inline) = inline(item) {
            out.push(' ');
            out.push_str(&inline);
            out.push('\n');
            continue;
        }
        match &item.value {
            Value::Map(m) => {
                // `- key: value` on the dash line, the rest aligned under it.
                let mut first = true;
                for (key, node) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        pad(out, indent + 2);
                    }
                    out.push_str(&key_text(key));
                    out.push(':');
                    emit_after_key(out, node, indent + 2);
                }
            }
            Value::List(inner) => {
                out.push('\n');
                emit_list(out, inner, indent + 2);
            }
            _ => out.push('\n'),
        }
    }
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// The one-line spelling of a value when it has one short enough: scalars always, lists of
/// scalars and maps of scalars (or of lists of scalars) when they fit.
fn inline(node: &Node) -> Option<String> {
    match &node.value {
        Value::List(items) => {
            if items.is_empty() {
                return Some("[]".into());
            }
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                parts.push(scalar(&item.value, true)?);
            }
            let s = format!("[{}]", parts.join(", "));
            (s.len() <= INLINE_MAX).then_some(s)
        }
        Value::Map(m) => {
            if m.is_empty() {
                return Some("{}".into());
            }
            let mut parts = Vec::with_capacity(m.len());
            for (k, v) in m {
                let value = match &v.value {
                    Value::List(items) => {
                        let mut inner = Vec::with_capacity(items.len());
                        for item in items {
                            inner.push(scalar(&item.value, true)?);
                        }
                        format!("[{}]", inner.join(", "))
                    }
                    other => scalar(other, true)?,
                };
                parts.push(format!("{}: {value}", key_text(k)));
            }
            let s = format!("{{{}}}", parts.join(", "));
            (s.len() <= INLINE_MAX).then_some(s)
        }
        other => scalar(other, false),
    }
}

fn scalar(value: &Value, flow: bool) -> Option<String> {
    match value {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Str(s) => Some(if plain_ok(s, flow) {
            s.clone()
        } else {
            quote(s)
        }),
        Value::List(_) | Value::Map(_) => None,
    }
}

fn key_text(key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with('-');
    if simple { key.to_owned() } else { quote(key) }
}

/// Whether `s` reads back as the same string when written without quotes.
fn plain_ok(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if first.is_whitespace() || s.ends_with(char::is_whitespace) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.chars().any(|c| c.is_control() || c == '\u{feff}')
    {
        return false;
    }
    if flow && s.contains([',', '[', ']', '{', '}', ':']) {
        return false;
    }
    if resolve_plain(s) != Value::Str(s.to_owned()) {
        return false;
    }
    // Strings another YAML reader would take for a number or a YAML 1.1 boolean.
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "yes" | "no" | "on" | "off" | "y" | "n" | ".inf" | "-.inf" | ".nan"
    ) || s.parse::<f64>().is_ok()
        || lower.starts_with("0x")
        || lower.starts_with("0o")
    {
        return false;
    }
    true
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        let node = parse(text, 0).unwrap();
        let Value::Map(m) = node.value else {
            panic!("not a map")
        };
        emit_map(&m)
    }

    #[test]
    fn canonical_output_is_a_fixed_point() {
        let text = r#"id: 01JDQ3K8Z6Q2W7X9Y4T5R1M0AB
title: "a: b # c"
authors: [human:alice, 'agent:x']
n: 3
flag: yes
empty: ''
nested:
  actor: agent
  list:
  - {path: a/b.rs, lines: 10-42, blob: 3f2a9c1}
  - path: c
    note: "multi\nline"
num_str: "42"
long: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb, ccccccccccccccccccccccccc]
"#;
        let once = roundtrip(text);
        let twice = roundtrip(&once);
        assert_eq!(once, twice);
        assert!(
            once.contains("authors: [\"human:alice\", \"agent:x\"]\n"),
            "{once}"
        );
        assert!(once.contains("num_str: \"42\"\n"), "{once}");
        assert!(once.contains("flag: \"yes\"\n"), "{once}");
        assert!(
            once.contains("  - {path: a/b.rs, lines: 10-42, blob: 3f2a9c1}\n"),
            "{once}"
        );
    }

    #[test]
    fn strings_survive_every_spelling() {
        for s in [
            "",
            " lead",
            "trail ",
            "- dash",
            "a: b",
            "x #y",
            "true",
            "null",
            "12",
            "1.5",
            "0x1f",
            "quote\"s",
            "back\\slash",
            "tab\tx",
            "new\nline",
            "ünïcødé",
            "[x]",
            "{y}",
            "a,b",
            "~",
            "2026-11-23T17:02:11Z",
            "@at",
            "`tick`",
            "%pct",
            "key:",
            "off",
        ] {
            let entries = vec![
                ("k".to_owned(), Node::str(s)),
                (
                    "l".to_owned(),
                    Node::new(Value::List(vec![Node::str(s), Node::str("z")])),
                ),
            ];
            let text = emit_map(&entries);
            let back = parse(&text, 0).unwrap();
            assert_eq!(back.get("k").unwrap().as_str(), Some(s), "{text}");
            let Value::List(l) = &back.get("l").unwrap().value else {
                panic!()
            };
            assert_eq!(l[0].as_str(), Some(s), "{text}");
        }
    }

    #[test]
    fn errors_carry_lines() {
        let e = parse("a: 1\nb: [unclosed\nc: 2\n", 1).unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        let e = parse("a: 1\na: 2\n", 1).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("duplicate key"));
        let node = parse("a: 1\nb: x\n", 1).unwrap();
        assert_eq!(node.get("b").unwrap().line, 3);
    }
}
