//! Tool calls rejected because of their arguments: a validation error, a missing required
//! parameter, a wrong type or format, a schema mismatch, arguments that do not parse. Worst
//! when the agent keeps sending bad arguments to the same tool.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

use super::tool_facts::{failure_text, head, is_code_tool, tool_name};

pub(crate) struct InvalidToolArguments;

/// Error wording that puts the blame on the call's arguments.
fn argument_blame() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?ix)
            \bvalidation\s*error
            | \bmissing\s+(?:\d+\s+)?(?:a\s+)?required\s+(?:positional\s+|keyword\s+)?(?:argument|parameter|field|property|key|input)s?
            | \brequired\s+(?:argument|parameter|field|property)s?\s+(?:is\s+|are\s+)?(?:missing|not\s+provided|absent)
            | \b(?:argument|parameter|field|property)\s+[`'"]?[\w.\-\[\]]+[`'"]?\s+is\s+(?:required|missing)
            | \bfield\s+required\b
            | \bunexpected\s+keyword\s+argument
            | \bgot\s+an\s+unexpected\s+(?:keyword\s+)?argument
            | \btakes\s+\d+\s+positional\s+arguments?\s+but
            | \binvalid\s+(?:tool\s+|function\s+)?(?:argument|parameter|input|type|format|json|value\s+for|params)
            | \bis\s+not\s+of\s+type\b
            | \bexpected\s+(?:type\s+)?(?:a\s+|an\s+)?(?:string|integer|int|number|boolean|bool|object|array|list|dict|float)\b
            | \bmust\s+be\s+(?:a|an|of\s+type)\s+(?:string|integer|int|number|boolean|object|array|list|valid)\b
            | \bschema\s+(?:validation|mismatch|error)
            | \bdoes\s+not\s+match\s+(?:the\s+)?(?:schema|pattern|format|expected\s+format)
            | \b(?:could\s+not|couldn't|failed\s+to|unable\s+to)\s+(?:parse|decode)\s+(?:the\s+)?(?:tool\s+)?(?:arguments|args|input|json|parameters)
            | \bmalformed\s+(?:arguments|json|input|parameters|request)
            | \bjsondecodeerror\b
            | \bunprocessable\s+entity\b
            | \b(?:unknown|unrecognized|unrecognised|unexpected|extra)\s+(?:argument|parameter|field|property|key)s?\b
            | \badditional\s+properties\b
            | \bnot\s+a\s+valid\s+(?:integer|number|date|datetime|email|uuid|url|enum|choice|boolean|string)\b
            "#,
        )
        .expect("valid regex")
    })
}

impl Detector for InvalidToolArguments {
    fn id(&self) -> &'static str {
        "invalid-tool-arguments"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_failures = params.usize("min_failures", 1).max(1);
        // Per (agent, tool): the calls rejected for their arguments, and whether a later call
        // to the same tool went through.
        let mut rejected: BTreeMap<(&str, &str), Vec<(Idx, &str)>> = BTreeMap::new();
        let mut fixed: BTreeMap<(&str, &str), bool> = BTreeMap::new();
        for &t in view.tools() {
            if is_code_tool(view, t) {
                // A program's TypeError is a bug in the program, not in the call.
                continue;
            }
            let key = (view.agent(t), tool_name(view, t));
            match failure_text(view, t) {
                Some(error) => {
                    if let Some(m) = argument_blame().find(head(error, 600)) {
                        rejected.entry(key).or_default().push((t, m.as_str()));
                        fixed.insert(key, false);
                    }
                }
                None => {
                    if let Some(f) = fixed.get_mut(&key) {
                        *f = true;
                    }
                }
            }
        }
        let mut hits = Vec::new();
        for ((agent, name), calls) in rejected {
            if calls.len() < min_failures {
                continue;
            }
            let Some(&(first, phrase)) = calls.first() else {
                continue;
            };
            let recovered = fixed.get(&(agent, name)).copied().unwrap_or(false);
            let n = calls.len();
            let severity = match (n, recovered) {
                (1, true) => Severity::Low,
                (k, false) if k >= 3 => Severity::High,
                _ => Severity::Medium,
            };
            let score =
                (1.0 - 0.55 * 0.6f64.powi(n as i32 - 1)) * if recovered { 0.8 } else { 1.0 };
            let mut evidence: Vec<HitEvidence> = calls
                .iter()
                .take(3)
                .map(|&(t, p)| {
                    HitEvidence::quoted(
                        t,
                        format!("`{name}` rejected its arguments"),
                        error_context(view, t, p),
                    )
                })
                .collect();
            if n > 3
                && let Some(&(last, p)) = calls.last()
            {
                evidence.push(HitEvidence::quoted(
                    last,
                    format!("rejection {n} of {n}"),
                    error_context(view, last, p),
                ));
            }
            hits.push(Hit {
                score,
                severity: Some(severity),
                summary: format!(
                    "`{name}` rejected `{agent}`'s arguments {} (\"{phrase}\"){}",
                    if n == 1 {
                        "once".to_owned()
                    } else {
                        format!("{n} times")
                    },
                    if recovered {
                        ", before a later call went through"
                    } else {
                        ", and no later call to it succeeded"
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

/// The error around the matched phrase, for the evidence quote.
fn error_context(view: &TraceView<'_>, t: Idx, phrase: &str) -> String {
    let error = failure_text(view, t).unwrap_or("");
    match error.find(phrase) {
        Some(pos) => {
            let mut start = pos.saturating_sub(80);
            while !error.is_char_boundary(start) {
                start -= 1;
            }
            head(&error[start..], 200).to_owned()
        }
        None => head(error, 200).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::load::{LoadOptions, load_bytes};

    fn run(json: &str) -> Vec<Hit> {
        let (_, traces) = load_bytes("t.json", json.as_bytes(), &LoadOptions::default()).unwrap();
        let view = TraceView::new(&traces[0].trace);
        InvalidToolArguments.detect(&view, &Params::default())
    }

    #[test]
    fn blames_arguments_not_business_rules() {
        for yes in [
            "1 validation error for SearchArgs\ncity\n  field required",
            "Error: missing required parameter 'date'",
            "TypeError: get_quote() got an unexpected keyword argument 'symbol'",
            "Error: Invalid argument: limit must be an integer",
            "error: 'abc' is not of type 'integer'",
            "Failed to parse tool arguments as JSON",
        ] {
            assert!(argument_blame().is_match(yes), "{yes}");
        }
        for no in [
            "Error: not enough seats on flight HAT229",
            "Error: payment method not found",
            "Error: 401 Unauthorized",
            "Error: invalid API key",
        ] {
            assert!(!argument_blame().is_match(no), "{no}");
        }
    }

    #[test]
    fn quiet_on_empty_and_on_clean_runs() {
        let trace = pisama_trace::Trace::default();
        assert!(
            InvalidToolArguments
                .detect(&TraceView::new(&trace), &Params::default())
                .is_empty()
        );
        assert!(
            run(r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "missing required parameter"}]}"#)
                .is_empty()
        );
    }
}
