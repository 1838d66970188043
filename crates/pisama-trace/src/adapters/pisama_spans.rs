//! The incumbent Python pisama's native trace: `{"trace_id", "spans": [...], "metadata"}`, a
//! bare array of spans, or one span per JSONL line. Span keys: `span_id`, `parent_id`, `name`,
//! `kind`, `start_time`, `end_time`, `status`, `error_message`, `attributes`, `input_data`,
//! `output_data`, `events`.

use serde_json::{Map, Value};

use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    ErrorInfo, Format, Handoff, HandoffMode, LlmCall, Payload, Span, SpanEvent, SpanKind, Status,
    ToolCall, Usage,
};
use crate::util::{as_u64, get_str, time_value};

/// The spans of a document and where they sit in it.
struct SpanList<'a> {
    spans: Vec<&'a Value>,
    trace_id: Option<String>,
    metadata: Option<&'a Value>,
    /// JSON Pointer of the span array (empty when the spans are the document or its lines).
    prefix: &'static str,
    /// Line of each span in a JSONL file.
    lines: Vec<Option<u32>>,
}

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let SpanList {
        spans,
        trace_id,
        metadata,
        prefix,
        lines,
    } = match &input.doc {
        Doc::Json(Value::Object(o)) => {
            let spans = o
                .get("spans")
                .and_then(Value::as_array)
                .ok_or_else(|| AdapterError::new("expected a `spans` array"))?;
            let id = o.get("trace_id").and_then(Value::as_str).map(str::to_owned);
            SpanList {
                spans: spans.iter().collect(),
                trace_id: id,
                metadata: o.get("metadata"),
                prefix: "/spans",
                lines: vec![None; spans.len()],
            }
        }
        Doc::Json(Value::Array(items)) => SpanList {
            spans: items.iter().collect(),
            trace_id: None,
            metadata: None,
            prefix: "",
            lines: vec![None; items.len()],
        },
        Doc::Lines(lines) => {
            // Either span rows, or a single trace envelope on one line.
            if lines.len() == 1 && lines[0].value.get("spans").is_some() {
                let o = &lines[0].value;
                let spans = o["spans"]
                    .as_array()
                    .ok_or_else(|| AdapterError::new("`spans` must be an array"))?;
                let id = o.get("trace_id").and_then(Value::as_str).map(str::to_owned);
                SpanList {
                    spans: spans.iter().collect(),
                    trace_id: id,
                    metadata: o.get("metadata"),
                    prefix: "/spans",
                    lines: vec![Some(lines[0].line); spans.len()],
                }
            } else {
                SpanList {
                    spans: lines.iter().map(|l| &l.value).collect(),
                    trace_id: None,
                    metadata: None,
                    prefix: "",
                    lines: lines.iter().map(|l| Some(l.line)).collect(),
                }
            }
        }
        _ => return Err(AdapterError::new("expected JSON")),
    };
    if spans.is_empty() {
        return Err(AdapterError::new("the trace has no spans"));
    }
    let id = trace_id
        .or_else(|| {
            spans
                .iter()
                .find_map(|s| get_str(s, &["trace_id"]).map(str::to_owned))
        })
        .unwrap_or_else(|| input.synth_id("pisama-spans"));
    let mut b = TraceBuilder::new(Format::PisamaSpans, id);
    if let Some(Value::Object(meta)) = metadata {
        for (k, v) in meta {
            if !v.is_null() {
                b.trace_mut().metadata.insert(k.clone(), v.clone());
            }
        }
        if let Some(s) = meta.get("session_id").and_then(Value::as_str) {
            b.trace_mut().session_id = Some(s.to_owned());
        }
    }
    for (i, raw) in spans.iter().enumerate() {
        let Some(o) = raw.as_object() else {
            b.warn(format!("span {i} is not an object; skipped"));
            continue;
        };
        let source = match lines[i] {
            Some(line) if prefix.is_empty() => input.at_line(line),
            _ => input.at(format!("{prefix}/{i}")),
        };
        let span = convert(o, i, source);
        let parent = get_str(raw, &["parent_id"]).map(str::to_owned);
        let idx = b.push(span);
        if let Some(p) = parent {
            b.set_parent_id(idx, p);
        }
    }
    Ok(vec![Parsed::unlabelled(b.finish())])
}

fn convert(o: &Map<String, Value>, i: usize, source: crate::model::SourceRef) -> Span {
    let attrs = o.get("attributes").and_then(Value::as_object);
    let attr = |k: &str| attrs.and_then(|a| a.get(k));
    let attr_str = |k: &str| {
        attr(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("unnamed")
        .to_owned();
    let kind_name = o.get("kind").and_then(Value::as_str).unwrap_or("system");
    let kind = match kind_name {
        "agent" | "agent_turn" => SpanKind::Agent,
        "llm" => SpanKind::Llm,
        "tool" => SpanKind::Tool,
        "retrieval" => SpanKind::Retrieval,
        "handoff" => SpanKind::Handoff,
        "user_input" => SpanKind::Human,
        "system" | "hook" => SpanKind::System,
        "task" | "workflow" | "chain" | "message" | "user_output" => SpanKind::Step,
        _ => SpanKind::Other,
    };
    let status_name = o.get("status").and_then(Value::as_str).unwrap_or("unset");
    let status = match status_name {
        "ok" => Status::Ok,
        "error" | "timeout" | "blocked" | "cancelled" => Status::Error,
        _ => Status::Unset,
    };
    let error_message = o
        .get("error_message")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let error = (status == Status::Error || error_message.is_some()).then(|| ErrorInfo {
        kind: (status_name != "error").then(|| status_name.to_owned()),
        message: error_message.unwrap_or(status_name).to_owned(),
        ..ErrorInfo::default()
    });
    let input_data = o.get("input_data").filter(|v| !v.is_null());
    let output_data = o.get("output_data").filter(|v| !v.is_null());
    let agent = if kind == SpanKind::Agent {
        Some(attr_str("agent_name").unwrap_or_else(|| name.clone()))
    } else {
        attr_str("agent_name").or_else(|| attr_str("agent_id"))
    };
    let mut span = Span {
        id: o
            .get("span_id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("span-{i}"), str::to_owned),
        kind,
        name: name.clone(),
        agent,
        start_ns: o.get("start_time").and_then(time_value),
        end_ns: o.get("end_time").and_then(time_value),
        status: if error.is_some() {
            Status::Error
        } else {
            status
        },
        error,
        input: input_data.map(payload),
        output: output_data.map(payload),
        source,
        ..Span::default()
    };
    if let Some(a) = attrs {
        for (k, v) in a {
            span.attributes.insert(k.clone(), v.clone());
        }
    }
    let model = attr_str("gen_ai.request.model").or_else(|| attr_str("model"));
    let usage = Usage {
        input: attr("gen_ai.usage.input_tokens")
            .or_else(|| attr("gen_ai.usage.prompt_tokens"))
            .and_then(as_u64),
        output: attr("gen_ai.usage.output_tokens")
            .or_else(|| attr("gen_ai.usage.completion_tokens"))
            .and_then(as_u64),
        ..Usage::default()
    };
    if kind == SpanKind::Llm || model.is_some() {
        span.llm = Some(LlmCall {
            request_model: model,
            response_model: attr_str("gen_ai.response.model"),
            provider: attr_str("gen_ai.system").or_else(|| attr_str("gen_ai.provider.name")),
            ..LlmCall::default()
        });
    }
    if !usage.is_empty() {
        span.usage = Some(usage);
    }
    if kind == SpanKind::Tool {
        span.tool = Some(ToolCall {
            name: attr_str("tool_name").unwrap_or(name),
            call_id: attr_str("tool_call_id"),
            arguments: input_data.cloned().unwrap_or(Value::Null),
            result: output_data.cloned(),
            is_error: span.status == Status::Error,
        });
    }
    if kind == SpanKind::Handoff {
        let to = attr_str("target_agent").or_else(|| attr_str("to_agent"));
        if let Some(to) = to {
            span.handoff = Some(Handoff {
                from: attr_str("source_agent").or_else(|| attr_str("from_agent")),
                to,
                mode: HandoffMode::Transfer,
            });
            if span.agent.is_none() {
                span.agent
                    .clone_from(&span.handoff.as_ref().and_then(|h| h.from.clone()));
            }
        }
    }
    if let Some(Value::Array(events)) = o.get("events") {
        for e in events {
            span.events.push(SpanEvent {
                name: get_str(e, &["name"]).unwrap_or("event").to_owned(),
                time_ns: e.get("timestamp").and_then(time_value),
                attributes: e
                    .get("attributes")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            });
        }
    }
    span
}

/// Text of the incumbent's free-form input/output dicts: the first well-known text key, else
/// the JSON.
fn payload(v: &Value) -> Payload {
    const TEXT_KEYS: [&str; 12] = [
        "content", "text", "prompt", "response", "output", "result", "task", "query", "message",
        "answer", "context", "messages",
    ];
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => TEXT_KEYS
            .iter()
            .find_map(|k| o.get(*k).and_then(crate::util::text_of))
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    };
    Payload {
        text,
        json: if v.is_string() { None } else { Some(v.clone()) },
        mime: None,
    }
}
