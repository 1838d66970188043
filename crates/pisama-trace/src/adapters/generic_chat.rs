//! Generic chat messages (`formats.md` §10.5): `{"messages"|"conversation"|"history": [...]}`,
//! a bare array of messages, or one message per JSONL line, in the OpenAI chat shape
//! (`role`, `content`, `name`, `tool_calls`, `tool_call_id`).
//!
//! Each message is one span whose `step` is its index. Assistant messages are `Llm` spans;
//! each of their tool calls is a `Tool` child whose result is taken from the matching `tool`
//! message. User messages are `Human`, system messages `System`.

use std::collections::HashMap;

use serde_json::Value;

use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    ErrorInfo, Format, LlmCall, Message, Part, Payload, Role, Span, SpanKind, Status, ToolCall,
    Trace, Usage,
};
use crate::util::{as_u64, get_str, maybe_json, text_of, time_value};

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let (messages, prefix, meta): (Vec<Value>, String, Option<&Value>) = match &input.doc {
        Doc::Json(Value::Array(items)) => (items.clone(), String::new(), None),
        Doc::Json(v @ Value::Object(o)) => {
            let key = ["messages", "conversation", "history", "conversations"]
                .into_iter()
                .find(|k| o.get(*k).is_some_and(Value::is_array))
                .ok_or_else(|| {
                    AdapterError::new("expected `messages`, `conversation` or `history` array")
                })?;
            (
                o[key].as_array().cloned().unwrap_or_default(),
                format!("/{key}"),
                Some(v),
            )
        }
        Doc::Lines(lines) => (
            lines.iter().map(|l| l.value.clone()).collect(),
            LINES_PREFIX.to_owned(),
            None,
        ),
        _ => return Err(AdapterError::new("expected chat messages as JSON")),
    };
    let id = meta
        .and_then(|m| get_str(m, &["id"]).or_else(|| get_str(m, &["conversation_id"])))
        .map_or_else(|| input.synth_id("chat"), str::to_owned);
    let mut trace = build_conversation(
        input,
        Format::GenericChat,
        id,
        &messages,
        &prefix,
        "assistant",
    )?;
    if let Some(Value::Object(o)) = meta {
        for key in ["model", "title", "session_id", "metadata"] {
            if let Some(v) = o.get(key) {
                trace.metadata.insert(key.to_owned(), v.clone());
            }
        }
    }
    Ok(vec![Parsed::unlabelled(trace)])
}

/// Marks messages that are the lines of a JSONL input, so sources name their line.
const LINES_PREFIX: &str = "\u{0}lines";

fn source_for(input: &Input, pointer_prefix: &str, i: usize) -> crate::model::SourceRef {
    match &input.doc {
        Doc::Lines(lines) if pointer_prefix == LINES_PREFIX => lines
            .get(i)
            .map_or_else(|| input.at(format!("/{i}")), |l| input.at_line(l.line)),
        _ => input.at(format!("{pointer_prefix}/{i}")),
    }
}

/// Builds a trace from OpenAI-style chat messages. `pointer_prefix` is the JSON Pointer of
/// the message array; `default_agent` names assistant messages that carry no `name`.
pub(crate) fn build_conversation(
    input: &Input,
    format: Format,
    id: String,
    messages: &[Value],
    pointer_prefix: &str,
    default_agent: &str,
) -> Result<Trace, AdapterError> {
    if messages.is_empty() {
        return Err(AdapterError::new("the message list is empty"));
    }
    let mut b = TraceBuilder::new(format, id);
    let mut calls: HashMap<String, usize> = HashMap::new();
    let mut history: Vec<Message> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let Some(obj) = msg.as_object() else {
            b.warn(format!("message {i} is not an object; skipped"));
            continue;
        };
        let role_name = obj.get("role").and_then(Value::as_str).unwrap_or("other");
        let role = Role::parse(role_name);
        let text = obj.get("content").and_then(text_of).unwrap_or_default();
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let step = i as u32;
        let source = source_for(input, pointer_prefix, i);
        let start = ["timestamp", "created_at", "time"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(time_value));
        match role {
            Role::Tool => {
                let call_id = obj.get("tool_call_id").and_then(Value::as_str);
                let is_error = looks_like_error(&text);
                if let Some(&idx) = call_id.and_then(|c| calls.get(c)) {
                    let span = b.span_mut(idx);
                    if let Some(tool) = &mut span.tool {
                        tool.result = Some(maybe_json(&text));
                        tool.is_error = is_error;
                    }
                    span.output = Some(Box::new(Payload::text(text.clone())));
                    span.attributes
                        .insert("result_step".to_owned(), Value::from(step));
                    set_tool_status(span, is_error, &text);
                } else {
                    let tool_name = name.unwrap_or("tool").to_owned();
                    let mut span = Span {
                        id: format!("m{i}"),
                        kind: SpanKind::Tool,
                        name: tool_name.clone(),
                        step: Some(step),
                        start_ns: start,
                        output: Some(Box::new(Payload::text(text.clone()))),
                        tool: Some(Box::new(ToolCall {
                            name: tool_name,
                            call_id: call_id.map(str::to_owned),
                            result: Some(maybe_json(&text)),
                            is_error,
                            ..ToolCall::default()
                        })),
                        source,
                        ..Span::default()
                    };
                    set_tool_status(&mut span, is_error, &text);
                    b.push(span);
                }
                history.push(Message {
                    role,
                    name: name.map(str::to_owned),
                    parts: vec![Part::ToolResult {
                        id: call_id.map(str::to_owned),
                        content: Value::String(text),
                        is_error,
                    }],
                });
            }
            Role::Assistant => {
                let agent = name.unwrap_or(default_agent).to_owned();
                let mut parts = Vec::new();
                if !text.is_empty() {
                    parts.push(Part::Text { text: text.clone() });
                }
                let tool_calls = obj
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut parsed_calls = Vec::new();
                for (k, call) in tool_calls.iter().enumerate() {
                    let f = call.get("function").unwrap_or(call);
                    let tool_name = get_str(f, &["name"]).unwrap_or("tool").to_owned();
                    let args = match f.get("arguments") {
                        Some(Value::String(s)) => maybe_json(s),
                        Some(v) => v.clone(),
                        None => Value::Null,
                    };
                    let call_id =
                        get_str(call, &["id"]).map_or_else(|| format!("m{i}.{k}"), str::to_owned);
                    parts.push(Part::ToolCall {
                        id: Some(call_id.clone()),
                        name: tool_name.clone(),
                        arguments: args.clone(),
                    });
                    parsed_calls.push((call_id, tool_name, args));
                }
                let usage = obj.get("usage").map(openai_usage).filter(|u| !u.is_empty());
                let out_msg = Message {
                    role,
                    name: name.map(str::to_owned),
                    parts,
                };
                let span = Span {
                    id: format!("m{i}"),
                    kind: SpanKind::Llm,
                    name: agent.clone(),
                    agent: Some(agent.clone()),
                    step: Some(step),
                    start_ns: start,
                    status: Status::Ok,
                    output: ((!text.is_empty()).then(|| Payload::text(text.clone()))).map(Box::new),
                    llm: Some(Box::new(LlmCall {
                        request_model: get_str(msg, &["model"]).map(str::to_owned),
                        input_messages: tail(&history, 6),
                        output_messages: vec![out_msg.clone()],
                        ..LlmCall::default()
                    })),
                    usage: usage.map(Box::new),
                    source: source.clone(),
                    ..Span::default()
                };
                let llm_idx = b.push(span);
                for (k, (call_id, tool_name, args)) in parsed_calls.into_iter().enumerate() {
                    let tool_span = Span {
                        id: call_id.clone(),
                        kind: SpanKind::Tool,
                        name: tool_name.clone(),
                        agent: Some(agent.clone()),
                        step: Some(step),
                        start_ns: start,
                        input: Some(Box::new(Payload::from_json(args.clone()))),
                        tool: Some(Box::new(ToolCall {
                            name: tool_name,
                            call_id: Some(call_id.clone()),
                            arguments: args,
                            ..ToolCall::default()
                        })),
                        source: if pointer_prefix == LINES_PREFIX {
                            source_for(input, pointer_prefix, i)
                        } else {
                            input.at(format!("{pointer_prefix}/{i}/tool_calls/{k}"))
                        },
                        ..Span::default()
                    };
                    let idx = b.push_child(llm_idx, tool_span);
                    calls.insert(call_id, idx);
                }
                history.push(out_msg);
            }
            Role::User | Role::System | Role::Other => {
                let kind = match role {
                    Role::User => SpanKind::Human,
                    Role::System => SpanKind::System,
                    _ => SpanKind::Step,
                };
                let span = Span {
                    id: format!("m{i}"),
                    kind,
                    name: name.unwrap_or(role_name).to_owned(),
                    agent: if role == Role::Other {
                        name.map(str::to_owned)
                    } else {
                        None
                    },
                    step: Some(step),
                    start_ns: start,
                    input: Some(Box::new(Payload::text(text.clone()))),
                    source,
                    ..Span::default()
                };
                b.push(span);
                history.push(Message {
                    role,
                    name: name.map(str::to_owned),
                    parts: vec![Part::Text { text }],
                });
            }
        }
    }
    Ok(b.finish())
}

fn tail(history: &[Message], n: usize) -> Vec<Message> {
    history[history.len().saturating_sub(n)..].to_vec()
}

fn set_tool_status(span: &mut Span, is_error: bool, text: &str) {
    span.status = if is_error { Status::Error } else { Status::Ok };
    span.error = (is_error.then(|| ErrorInfo {
        message: crate::util::truncate(text.lines().next().unwrap_or(text), 300),
        ..ErrorInfo::default()
    }))
    .map(Box::new);
}

/// Tool output that reports a failure in its text (many sources have no error flag).
pub(crate) fn looks_like_error(text: &str) -> bool {
    let t = text.trim_start();
    let head: String = t.chars().take(40).collect::<String>().to_ascii_lowercase();
    head.starts_with("error")
        || head.starts_with("exception")
        || head.starts_with("traceback (most recent call last)")
        || head.starts_with("tool invoke error")
        || head.starts_with("there was an error")
        || head.starts_with("failed:")
}

/// OpenAI-style `usage` (`prompt_tokens` include cached ones).
pub(crate) fn openai_usage(u: &Value) -> Usage {
    Usage {
        input: u
            .get("prompt_tokens")
            .or_else(|| u.get("input_tokens"))
            .and_then(as_u64),
        output: u
            .get("completion_tokens")
            .or_else(|| u.get("output_tokens"))
            .and_then(as_u64),
        cache_read: crate::util::get(u, &["prompt_tokens_details", "cached_tokens"])
            .and_then(as_u64),
        cache_write: None,
        reasoning: crate::util::get(u, &["completion_tokens_details", "reasoning_tokens"])
            .and_then(as_u64),
        total: u.get("total_tokens").and_then(as_u64),
        estimated: false,
    }
}
