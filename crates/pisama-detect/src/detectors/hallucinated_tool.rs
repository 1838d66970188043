//! The agent called a tool that does not exist: the framework answered "unknown tool" / "no
//! such function" / "is not a valid tool", or the run declares its tools (OpenTelemetry
//! `gen_ai.tool.definitions`, ATIF `tool_definitions`, OpenInference `llm.tools`, a request's
//! `tools`) and the called name is not among them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

use super::tool_facts::{failure_text, has_outcome, head, is_code_tool, result_text, tool_name};

pub(crate) struct HallucinatedTool;

/// Answers a framework gives when asked to run a tool it does not have.
fn unknown_tool_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?i)\b(?:unknown|unrecognized|unrecognised|unsupported|nonexistent|non-existent|undefined|invalid)\s+(?:tool|function|action)(?:\s+name)?\b(?:\s+(\w+))?|\bno\s+such\s+(?:tool|function)\b|\bno\s+(?:tool|function)\s+(?:named|called|with\s+(?:the\s+)?name)\b|\b(?:tool|function)\s+(?:[`'"]?[\w.\-]+[`'"]?\s+)?(?:not\s+found|does\s+not\s+exist|doesn't\s+exist|is\s+not\s+(?:available|registered|defined|supported))|\bis\s+not\s+a\s+valid\s+(?:tool|function)\b"#,
        )
        .expect("valid regex")
    })
}

/// Words after "invalid tool ..." that blame the call's arguments, not the tool's existence.
const NOT_EXISTENCE: &[&str] = &[
    "argument",
    "arguments",
    "args",
    "input",
    "inputs",
    "parameter",
    "parameters",
    "call",
    "calls",
    "output",
    "result",
    "schema",
    "use",
    "usage",
];

/// Whether a tool's result says the tool does not exist; returns the matched phrase.
fn says_unknown_tool(text: &str) -> Option<&str> {
    let head = head(text, 400);
    unknown_tool_pattern().captures_iter(head).find_map(|c| {
        let after = c.get(1).map(|m| m.as_str().to_ascii_lowercase());
        if after.is_some_and(|w| NOT_EXISTENCE.contains(&w.as_str())) {
            return None;
        }
        c.get(0).map(|m| m.as_str())
    })
}

impl Detector for HallucinatedTool {
    fn id(&self) -> &'static str {
        "hallucinated-tool"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let use_definitions = params.bool("use_definitions", true);
        let tools = view.tools();
        if tools.is_empty() {
            return Vec::new();
        }
        let declared = if use_definitions {
            declared_tools(view)
        } else {
            BTreeMap::new()
        };
        // Declarations only count when they name tools the same way the calls do: at least
        // one called tool must be among them.
        let declared_usable = !declared.is_empty()
            && tools.iter().any(|&t| {
                let name = tool_name(view, t).to_lowercase();
                declared.values().any(|set| set.contains(&name))
            });
        // A call is judged against its own agent's declarations plus the run-wide ones; an
        // agent that declares nothing of its own is not judged by another agent's list.
        let undeclared = |t: Idx| {
            if !declared_usable {
                return false;
            }
            let own = declared.get(&view.span(t).agent.as_deref());
            let global = declared.get(&None);
            if own.is_none() && (global.is_none() || declared.len() > 1) {
                return false;
            }
            let name = tool_name(view, t).to_lowercase();
            !own.is_some_and(|s| s.contains(&name)) && !global.is_some_and(|s| s.contains(&name))
        };
        // name -> (calls, matched phrase of the first call that had one)
        let mut by_name: BTreeMap<&str, (Vec<Idx>, Option<&str>)> = BTreeMap::new();
        for &t in tools {
            if is_code_tool(view, t) {
                // A program's own "name is not defined" is about the program, not the tool.
                continue;
            }
            let name = tool_name(view, t);
            let failed = failure_text(view, t).is_some() || !has_outcome(view.span(t));
            if !failed {
                continue;
            }
            let phrase = says_unknown_tool(result_text(view, t));
            if phrase.is_some() || undeclared(t) {
                let entry = by_name.entry(name).or_default();
                entry.0.push(t);
                if entry.1.is_none() {
                    entry.1 = phrase;
                }
            }
        }
        let mut hits = Vec::new();
        for (name, (calls, phrase)) in by_name {
            let Some(&first) = calls.first() else {
                continue;
            };
            let undeclared = undeclared(first);
            let base: f64 = match (phrase.is_some(), undeclared) {
                (true, true) => 0.95,
                (true, false) => 0.85,
                _ => 0.7,
            };
            let score = 1.0 - (1.0 - base) * 0.7f64.powi(calls.len() as i32 - 1);
            let why = match (phrase, undeclared) {
                (Some(p), true) => format!(
                    "it is not among the run's declared tools and the call was answered \"{p}\""
                ),
                (Some(p), false) => format!("the call was answered \"{p}\""),
                (None, _) => {
                    "it is not among the run's declared tools and the call did not succeed"
                        .to_owned()
                }
            };
            let mut evidence: Vec<HitEvidence> = calls
                .iter()
                .take(3)
                .map(|&t| match says_unknown_tool(result_text(view, t)) {
                    Some(p) => HitEvidence::quoted(t, format!("call to `{name}`"), p),
                    None => HitEvidence::new(t, format!("call to `{name}`")),
                })
                .collect();
            if undeclared && evidence.len() < 4 {
                evidence.push(HitEvidence::quoted(
                    first,
                    "declared tools",
                    declared_for(&declared, view.span(first).agent.as_deref()),
                ));
            }
            hits.push(Hit {
                score,
                severity: Some(if calls.len() >= 2 {
                    Severity::High
                } else {
                    Severity::Medium
                }),
                summary: format!(
                    "`{}` called the tool `{name}`{}, which does not exist: {why}",
                    view.agent(first),
                    if calls.len() > 1 {
                        format!(" {} times", calls.len())
                    } else {
                        String::new()
                    }
                ),
                at: Some(first),
                evidence,
                ..Hit::default()
            });
        }
        hits
    }
}

/// Tool names the run declares, lower-cased, per agent (declarations on an agent's spans or
/// model requests) and for everyone (`None`: trace metadata, spans without an agent).
fn declared_tools<'t>(view: &TraceView<'t>) -> BTreeMap<Option<&'t str>, BTreeSet<String>> {
    let mut names: BTreeMap<Option<&str>, BTreeSet<String>> = BTreeMap::new();
    for (key, value) in &view.trace.metadata {
        if is_tool_list_key(key) {
            collect_names(value, key, names.entry(None).or_default());
        }
    }
    for i in 0..view.len() {
        let s = view.span(i);
        let owner = s.agent.as_deref();
        for (key, value) in &s.attributes {
            if is_tool_list_key(key) {
                collect_names(value, key, names.entry(owner).or_default());
            }
        }
        if let Some(llm) = &s.llm {
            for (key, value) in &llm.params {
                if is_tool_list_key(key) {
                    collect_names(value, key, names.entry(owner).or_default());
                }
            }
        }
    }
    names.retain(|_, set| !set.is_empty());
    names
}

/// The declarations that apply to an agent, for evidence.
fn declared_for(
    declared: &BTreeMap<Option<&str>, BTreeSet<String>>,
    agent: Option<&str>,
) -> String {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for key in [agent, None] {
        if let Some(set) = declared.get(&key) {
            names.extend(set.iter().map(String::as_str));
        }
    }
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// Keys under which sources keep tool declarations, also when flattened with `.`.
fn is_tool_list_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("tool.definitions")
        || k.contains("tool_definitions")
        || k.contains("tool_names")
        || k.starts_with("llm.tools")
        || k == "tools"
        || k.rsplit('.').next() == Some("tools")
        || k.contains(".tools.")
}

/// Names from a declaration value: a list of names, objects with `name` or `function.name`,
/// or JSON text holding either. A bare string is a name only where the key says so.
fn collect_names(value: &Value, key: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with('[') || t.starts_with('{') {
                if let Ok(parsed) = serde_json::from_str::<Value>(t) {
                    collect_names(&parsed, "", out);
                }
            } else if (key.is_empty() || key.ends_with("name") || key.ends_with("tool_names"))
                && is_identifier(t)
            {
                out.insert(t.to_lowercase());
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) if is_identifier(s.trim()) => {
                        out.insert(s.trim().to_lowercase());
                    }
                    other => collect_names(other, "", out),
                }
            }
        }
        Value::Object(o) => {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .or_else(|| {
                    o.get("function")
                        .and_then(|f| f.get("name"))
                        .and_then(Value::as_str)
                })
                .filter(|n| is_identifier(n));
            if let Some(n) = name {
                out.insert(n.to_lowercase());
            }
        }
        _ => {}
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::load::{LoadOptions, load_bytes};
    use serde_json::json;

    fn run(json: &str) -> Vec<Hit> {
        let (_, traces) = load_bytes("t.json", json.as_bytes(), &LoadOptions::default()).unwrap();
        let view = TraceView::new(&traces[0].trace);
        HallucinatedTool.detect(&view, &Params::default())
    }

    #[test]
    fn phrases() {
        assert!(says_unknown_tool("Error: Unknown tool 'get_weather_v2'").is_some());
        assert!(
            says_unknown_tool("lookup_flight is not a valid tool, try one of [a, b].").is_some()
        );
        assert!(says_unknown_tool("Error: Function fetch_data not found").is_some());
        assert!(says_unknown_tool("No such tool available: Browse").is_some());
        assert!(says_unknown_tool("Error: invalid tool arguments: missing 'city'").is_none());
        assert!(says_unknown_tool("Error: flight HAT123 not found").is_none());
        assert!(says_unknown_tool("").is_none());
        assert!(says_unknown_tool(&"é".repeat(500)).is_none());
    }

    #[test]
    fn declarations_are_read_from_many_shapes() {
        let mut out = BTreeSet::new();
        collect_names(&json!(["Read", "Bash"]), "tools", &mut out);
        collect_names(
            &json!(r#"[{"type": "function", "function": {"name": "get_x"}}]"#),
            "gen_ai.tool.definitions",
            &mut out,
        );
        collect_names(
            &json!(r#"{"type": "function", "function": {"name": "get_y"}}"#),
            "llm.tools.0.tool.json_schema",
            &mut out,
        );
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            ["bash", "get_x", "get_y", "read"]
        );
        assert!(!is_tool_list_key("tool_responses"));
    }

    #[test]
    fn quiet_without_tools() {
        assert!(
            run(r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Unknown tool? No."}]}"#)
                .is_empty()
        );
    }
}
