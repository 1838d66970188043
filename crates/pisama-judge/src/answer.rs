//! The two answers the judge asks for, their JSON Schemas, and a tolerant parser.
//!
//! Endpoints differ: some enforce `response_format` (OpenAI, Ollama), some ignore it
//! (Anthropic's compatibility layer), some wrap JSON in a Markdown code fence or add a sentence
//! around it. The parser takes the first JSON object in the text, accepts a few spellings
//! (`"confirmed"`, `"step": "4"`), and rejects anything that does not answer the question,
//! with a message saying what was wrong (never the answer itself: it may quote the trace).

use serde_json::{Value, json};

use pisama_detect::Severity;

/// Verdict on one finding.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingAnswer {
    pub decision: FindingDecision,
    /// Only with `Adjust`.
    pub severity: Option<Severity>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingDecision {
    Confirm,
    Reject,
    Adjust,
}

/// Who and where the decisive failure was.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionAnswer {
    pub agent: Option<String>,
    pub step: Option<u32>,
    pub category: String,
    pub confidence: f64,
    pub reason: String,
}

/// Schema name and JSON Schema of the finding answer (strict-mode shape: every property
/// required, nullable where optional, no extra properties).
pub fn finding_schema() -> (&'static str, Value) {
    (
        "finding_review",
        json!({
            "type": "object",
            "properties": {
                "decision": {"type": "string", "enum": ["confirm", "reject", "adjust"],
                    "description": "confirm: the finding is a real failure as stated; reject: it is not a failure (false positive); adjust: real, but the severity is wrong"},
                "severity": {"type": ["string", "null"], "enum": ["info", "low", "medium", "high", "critical", null],
                    "description": "the right severity when decision is adjust, else null"},
                "reason": {"type": "string", "description": "one or two sentences citing the steps that decide it"}
            },
            "required": ["decision", "severity", "reason"],
            "additionalProperties": false
        }),
    )
}

/// Schema name and JSON Schema of the attribution answer.
pub fn attribution_schema() -> (&'static str, Value) {
    (
        "failure_attribution",
        json!({
            "type": "object",
            "properties": {
                "agent": {"type": ["string", "null"], "description": "the agent whose action decided the failure, exactly as named in the trace; null if no agent failed"},
                "step": {"type": ["integer", "null"], "description": "the step number of that action, as shown in the trace; null if none"},
                "category": {"type": "string", "description": "a MAST failure mode code (FM-1.1 ... FM-3.3) or a short category such as tool, hallucination, loop"},
                "confidence": {"type": "number", "description": "0 to 1: how sure you are of agent and step"},
                "reason": {"type": "string", "description": "one or two sentences"}
            },
            "required": ["agent", "step", "category", "confidence", "reason"],
            "additionalProperties": false
        }),
    )
}

/// The first complete JSON object in `text` (after removing code fences).
fn first_object(text: &str) -> Result<serde_json::Map<String, Value>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the answer is empty".into());
    }
    // Fast path: the whole answer is the object.
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(trimmed) {
        return Ok(m);
    }
    // Otherwise try every `{` in order and let serde find where the object ends.
    for (i, _) in trimmed.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&trimmed[i..]).into_iter::<Value>();
        if let Some(Ok(Value::Object(m))) = stream.next() {
            return Ok(m);
        }
    }
    Err(format!(
        "no JSON object in the answer ({} characters)",
        trimmed.chars().count()
    ))
}

fn text_field(m: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| m.get(*k))
        .and_then(|v| match v {
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
        .filter(|s| !s.is_empty() && s != "null")
}

fn reason(m: &serde_json::Map<String, Value>) -> Result<String, String> {
    let r = text_field(m, &["reason", "reasoning", "explanation", "rationale"])
        .ok_or("the answer has no `reason`")?;
    // A reason is shown to users next to the finding: keep it to a paragraph.
    Ok(pisama_trace::util::truncate(
        &r.split_whitespace().collect::<Vec<_>>().join(" "),
        600,
    ))
}

/// Parses a finding review.
pub fn parse_finding(text: &str) -> Result<FindingAnswer, String> {
    let m = first_object(text)?;
    let raw = text_field(&m, &["decision", "verdict"]).ok_or("the answer has no `decision`")?;
    let decision = match raw.to_ascii_lowercase().as_str() {
        "confirm" | "confirmed" | "confirms" | "true_positive" | "real" | "valid" => {
            FindingDecision::Confirm
        }
        "reject" | "rejected" | "rejects" | "false_positive" | "dismiss" | "invalid" => {
            FindingDecision::Reject
        }
        "adjust" | "adjusted" | "adjust_severity" => FindingDecision::Adjust,
        other => {
            return Err(format!(
                "`decision` is {:?}; expected confirm, reject or adjust",
                pisama_trace::util::truncate(other, 20)
            ));
        }
    };
    let severity = match text_field(&m, &["severity", "new_severity"]) {
        None => None,
        Some(s) => Some(s.parse::<Severity>().map_err(|_| {
            format!(
                "`severity` is not one of info, low, medium, high, critical ({} characters)",
                s.len()
            )
        })?),
    };
    if decision == FindingDecision::Adjust && severity.is_none() {
        return Err("`decision` is adjust but no `severity` is given".into());
    }
    Ok(FindingAnswer {
        decision,
        severity: if decision == FindingDecision::Adjust {
            severity
        } else {
            None
        },
        reason: reason(&m)?,
    })
}

/// Parses an attribution.
pub fn parse_attribution(text: &str) -> Result<AttributionAnswer, String> {
    let m = first_object(text)?;
    let agent = text_field(&m, &["agent", "mistake_agent"]);
    let step = match m.get("step").or_else(|| m.get("mistake_step")) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or("`step` is not a whole number >= 0")?,
        ),
        Some(Value::String(s)) => {
            let t = s
                .trim()
                .trim_start_matches(['#', 's', 'S'])
                .trim_start_matches("tep")
                .trim();
            if t.is_empty() || t.eq_ignore_ascii_case("null") {
                None
            } else {
                Some(
                    t.parse::<u32>()
                        .map_err(|_| "`step` is not a whole number >= 0")?,
                )
            }
        }
        Some(_) => return Err("`step` is not a number".into()),
    };
    let category = text_field(&m, &["category", "failure_mode", "mode"])
        .unwrap_or_else(|| "unknown".to_owned());
    let confidence = match m.get("confidence") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.5),
        Some(Value::String(s)) => s.trim().trim_end_matches('%').parse::<f64>().unwrap_or(0.5),
        _ => 0.5,
    };
    // Some models answer in percent.
    let confidence = if confidence > 1.0 && confidence <= 100.0 {
        confidence / 100.0
    } else {
        confidence
    };
    Ok(AttributionAnswer {
        agent,
        step,
        category: pisama_trace::util::truncate(&category, 60),
        confidence: confidence.clamp(0.0, 1.0),
        reason: reason(&m)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fenced_and_chatty_answers_parse() {
        let a = parse_finding(
            r#"{"decision":"confirm","severity":null,"reason":"step 3 retried 9 times"}"#,
        )
        .unwrap();
        assert_eq!(a.decision, FindingDecision::Confirm);
        let a = parse_finding(
            "```json\n{\"decision\": \"Rejected\", \"reason\": \"the retries succeeded\"}\n```",
        )
        .unwrap();
        assert_eq!(a.decision, FindingDecision::Reject);
        let a = parse_finding("Sure! Here is my review: {\"decision\":\"adjust\",\"severity\":\"LOW\",\"reason\":\"minor\"} Hope it helps {").unwrap();
        assert_eq!(
            (a.decision, a.severity),
            (FindingDecision::Adjust, Some(Severity::Low))
        );
        // `severity` is dropped unless adjusting.
        let a = parse_finding(r#"{"decision":"confirm","severity":"high","reason":"x"}"#).unwrap();
        assert_eq!(a.severity, None);
    }

    #[test]
    fn malformed_answers_are_errors_that_do_not_quote_the_answer() {
        for bad in [
            "",
            "I think this is fine.",
            r#"{"decision":"maybe","reason":"SECRET-QUOTE"}"#,
            r#"{"decision":"adjust","reason":"no severity"}"#,
            r#"{"decision":"confirm"}"#,
            r#"["confirm"]"#,
        ] {
            let e = parse_finding(bad).unwrap_err();
            assert!(!e.contains("SECRET-QUOTE"), "{e}");
        }
    }

    #[test]
    fn attribution_spellings() {
        let a = parse_attribution(r#"{"agent":"Coder","step":"4","category":"FM-2.6","confidence":80,"reason":"wrong formula"}"#).unwrap();
        assert_eq!((a.agent.as_deref(), a.step), (Some("Coder"), Some(4)));
        assert!((a.confidence - 0.8).abs() < 1e-9);
        let a = parse_attribution(r#"{"agent":null,"step":null,"category":"unknown","confidence":0.1,"reason":"no failure"}"#).unwrap();
        assert_eq!((a.agent, a.step), (None, None));
        assert!(parse_attribution(r#"{"agent":"x","step":-2,"reason":"r"}"#).is_err());
        assert!(parse_attribution(r#"{"agent":"x","step":2}"#).is_err());
    }
}
