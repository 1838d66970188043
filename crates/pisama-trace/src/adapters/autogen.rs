//! AutoGen AgentChat 0.4+ message dumps (`formats.md` §10.3): a `TaskResult`
//! (`{"messages": [...], "stop_reason": ...}`), a bare array of messages, one message per JSONL
//! line, or a `team.save_state()` dump (the group chat manager's `message_thread`).
//!
//! Every message has `type`, `source` (the agent), `models_usage` and `created_at`; `step` is
//! the message's index. Mapping decisions:
//! - A message with `models_usage`, and every `ToolCallRequestEvent`, is an `Llm` span of its
//!   `source`. A `ThoughtEvent` right before such a message from the same agent is that call's
//!   reasoning; any other thought is a `Step`.
//! - Each `FunctionCall` of a request is a `Tool` child of the request's Llm span; the
//!   `ToolCallExecutionEvent` result with the same `call_id` completes it (`is_error` gives the
//!   status).
//! - `HandoffMessage` is a zero-length `Handoff` (Transfer) from `source` to `target`.
//! - `TextMessage` from `user` and `UserInputRequestedEvent` are `Human`; `CodeExecutionEvent`
//!   is a `code_execution` tool run (failed on a non-zero exit code); `MemoryQueryEvent` is a
//!   `Retrieval`. Streaming chunks repeat the final message and are skipped.
//! - `stop_reason` goes to trace metadata.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::generic_chat::looks_like_error;
use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    ErrorInfo, Format, Handoff, HandoffMode, LlmCall, Message, Part, Payload, Role, SourceRef,
    Span, SpanKind, Status, ToolCall, Usage,
};
use crate::util::{as_u64, flatten_into, get_str, maybe_json, parse_time, text_of, truncate};

/// Where a message sits in the input, for source references.
enum Origin {
    /// JSON Pointer prefix of the message array.
    Pointer(String),
    /// 1-based JSONL line of each message.
    Lines(Vec<u32>),
}

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let (messages, origin, doc): (Vec<&Value>, Origin, Option<&Value>) = match &input.doc {
        Doc::Json(v @ Value::Object(o)) => {
            if let Some(Value::Array(msgs)) = o.get("messages") {
                (
                    msgs.iter().collect(),
                    Origin::Pointer("/messages".to_owned()),
                    Some(v),
                )
            } else if o.contains_key("type") && o.contains_key("source") {
                // A JSONL dump holding a single message.
                (vec![v], Origin::Pointer(String::new()), None)
            } else if let Some((key, thread)) = saved_thread(o) {
                let pointer = format!("/agent_states/{}/message_thread", escape_pointer(key));
                (thread.iter().collect(), Origin::Pointer(pointer), Some(v))
            } else {
                return Err(AdapterError::new(
                    "expected `messages` (a TaskResult) or `agent_states.*.message_thread` (a saved team state)",
                ));
            }
        }
        Doc::Json(Value::Array(items)) => {
            (items.iter().collect(), Origin::Pointer(String::new()), None)
        }
        Doc::Lines(lines) => (
            lines.iter().map(|l| &l.value).collect(),
            Origin::Lines(lines.iter().map(|l| l.line).collect()),
            None,
        ),
        _ => return Err(AdapterError::new("expected AgentChat messages as JSON")),
    };
    if messages.is_empty() {
        return Err(AdapterError::new("the message list is empty"));
    }
    let id = doc
        .and_then(|d| get_str(d, &["id"]).or_else(|| get_str(d, &["task_id"])))
        .map_or_else(|| input.synth_id("autogen"), str::to_owned);
    let mut b = TraceBuilder::new(Format::AutoGenAgentChat, id);
    b.trace_mut().format_version = Some("autogen-agentchat/0.4+".to_owned());
    if let Some(d) = doc {
        for key in ["stop_reason", "version", "type"] {
            if let Some(v) = d.get(key).filter(|v| !v.is_null()) {
                b.trace_mut().metadata.insert(key.to_owned(), v.clone());
            }
        }
    }
    let mut conv = Conversation {
        input,
        origin,
        b,
        calls: HashMap::new(),
        history: Vec::new(),
        skipped_chunks: 0,
    };
    let times: Vec<Option<i64>> = messages
        .iter()
        .map(|m| {
            m.get("created_at")
                .and_then(Value::as_str)
                .and_then(parse_time)
        })
        .collect();
    let mut pending_thought: Option<(usize, String)> = None;
    for (i, msg) in messages.iter().enumerate() {
        let Some(obj) = msg.as_object() else {
            conv.b
                .warn(format!("message {i} is not an object; skipped"));
            continue;
        };
        let start = times.get(i).copied().flatten();
        let next = times.iter().skip(i + 1).find_map(|t| *t);
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or("");
        // A thought belongs to the model call that follows it from the same agent.
        if ty == "ThoughtEvent" {
            let text = obj.get("content").and_then(text_of).unwrap_or_default();
            let next_msg = messages.get(i + 1).and_then(|m| m.as_object());
            let same_source = next_msg.is_some_and(|n| n.get("source") == obj.get("source"));
            if same_source && next_msg.is_some_and(is_model_call) {
                pending_thought = Some((i, text));
                continue;
            }
        }
        let thought = pending_thought
            .take()
            .filter(|(at, _)| at + 1 == i)
            .map(|(_, t)| t);
        conv.message(i, obj, ty, start, next, thought);
    }
    if conv.skipped_chunks > 0 {
        let n = conv.skipped_chunks;
        conv.b
            .trace_mut()
            .metadata
            .insert("streaming_chunks_skipped".to_owned(), Value::from(n));
    }
    let open: Vec<String> = conv
        .calls
        .iter()
        .filter(|(_, idx)| {
            conv.b
                .span(**idx)
                .tool
                .as_ref()
                .is_some_and(|t| t.result.is_none())
        })
        .map(|(id, _)| id.clone())
        .collect();
    if !open.is_empty() {
        let mut open = open;
        open.sort();
        conv.b.warn(format!(
            "tool call(s) without an execution result: {}",
            open.join(", ")
        ));
    }
    Ok(vec![Parsed::unlabelled(conv.b.finish())])
}

/// The longest `message_thread` in a `save_state()` dump (the group chat manager's).
fn saved_thread(o: &Map<String, Value>) -> Option<(&str, &Vec<Value>)> {
    o.get("agent_states")?
        .as_object()?
        .iter()
        .filter_map(|(k, state)| {
            state
                .get("message_thread")
                .and_then(Value::as_array)
                .map(|t| (k.as_str(), t))
        })
        .max_by_key(|(_, t)| t.len())
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether a message is (the result of) a model call.
fn is_model_call(o: &Map<String, Value>) -> bool {
    o.get("models_usage").is_some_and(Value::is_object)
        || matches!(
            o.get("type").and_then(Value::as_str),
            Some("ToolCallRequestEvent" | "AssistantMessage")
        )
}

struct Conversation<'a> {
    input: &'a Input,
    origin: Origin,
    b: TraceBuilder,
    /// Tool span of each call id.
    calls: HashMap<String, usize>,
    /// Messages so far, as LLM context for the next call.
    history: Vec<Message>,
    skipped_chunks: u64,
}

impl Conversation<'_> {
    fn source(&self, i: usize, suffix: &str) -> SourceRef {
        match &self.origin {
            Origin::Pointer(prefix) => self.input.at(format!("{prefix}/{i}{suffix}")),
            Origin::Lines(lines) => match lines.get(i) {
                Some(&line) if suffix.is_empty() => self.input.at_line(line),
                Some(&line) => SourceRef {
                    pointer: Some(suffix.to_owned()),
                    ..self.input.at_line(line)
                },
                None => self.input.at(format!("/{i}{suffix}")),
            },
        }
    }

    fn message(
        &mut self,
        i: usize,
        obj: &Map<String, Value>,
        ty: &str,
        start: Option<i64>,
        next: Option<i64>,
        thought: Option<String>,
    ) {
        let agent = obj
            .get("source")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let text = content_text(obj.get("content"));
        let mut span = Span {
            id: obj
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("m{i}"), str::to_owned),
            name: agent.clone().unwrap_or_else(|| ty.to_owned()),
            agent: agent.clone(),
            step: Some(i as u32),
            start_ns: start,
            end_ns: next.filter(|n| start.is_some_and(|s| *n >= s)),
            source: self.source(i, ""),
            ..Span::default()
        };
        span.time_inferred = span.end_ns.is_some();
        span.attributes
            .insert("type".to_owned(), Value::String(ty.to_owned()));
        if let Some(meta) = obj
            .get("metadata")
            .filter(|m| m.as_object().is_some_and(|o| !o.is_empty()))
        {
            flatten_into("metadata", meta, &mut span.attributes);
        }
        let usage = obj
            .get("models_usage")
            .filter(|u| u.is_object())
            .map(usage_of);
        let is_user = agent.as_deref() == Some("user");
        match ty {
            "ToolCallRequestEvent" | "AssistantMessage"
                if obj.get("content").is_some_and(Value::is_array) =>
            {
                self.llm_with_calls(i, obj, span, usage, thought);
            }
            "ToolCallExecutionEvent" | "FunctionExecutionResultMessage" => {
                self.results(i, obj, agent.as_deref(), start);
            }
            "HandoffMessage" => {
                let target = obj
                    .get("target")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned();
                span.kind = SpanKind::Handoff;
                span.name = format!("handoff to {target}");
                span.end_ns = start;
                span.time_inferred = false;
                span.input = Some(Box::new(Payload::text(text.clone())));
                span.handoff = Some(Box::new(Handoff {
                    from: agent.clone(),
                    to: target,
                    mode: HandoffMode::Transfer,
                }));
                if let Some(ctx) = obj
                    .get("context")
                    .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
                {
                    span.attributes.insert("context".to_owned(), ctx.clone());
                }
                self.b.push(span);
                self.remember(Role::Assistant, agent, text);
            }
            "TextMessage" | "UserMessage" | "MultiModalMessage"
                if is_user || (ty == "UserMessage" && usage.is_none()) =>
            {
                span.kind = SpanKind::Human;
                span.agent = None;
                span.input = Some(Box::new(Payload::text(text.clone())));
                self.b.push(span);
                self.remember(Role::User, agent, text);
            }
            "UserInputRequestedEvent" => {
                span.kind = SpanKind::Human;
                span.agent = None;
                "user input requested".clone_into(&mut span.name);
                span.end_ns = start;
                span.time_inferred = false;
                self.b.push(span);
            }
            "ModelClientStreamingChunkEvent" => {
                self.skipped_chunks += 1;
            }
            "CodeExecutionEvent" => {
                self.code_execution(obj, span);
            }
            "MemoryQueryEvent" => {
                span.kind = SpanKind::Retrieval;
                "memory query".clone_into(&mut span.name);
                span.output =
                    (obj.get("content").map(|c| Payload::from_json(c.clone()))).map(Box::new);
                self.b.push(span);
            }
            "ToolCallSummaryMessage" => {
                // The summary repeats results already recorded by the execution events; tool
                // calls only known from the summary still get their Tool spans.
                span.kind = SpanKind::Step;
                span.output = Some(Box::new(Payload::text(text.clone())));
                let idx = self.b.push(span);
                self.summary_tools(i, obj, idx, agent.as_deref(), start);
                self.remember(Role::Assistant, agent, text);
            }
            _ => {
                if !KNOWN_TYPES.contains(&ty) {
                    self.b
                        .warn(format!("message {i}: unknown type `{ty}`; kept as a step"));
                }
                if let Some(u) = usage {
                    span.kind = SpanKind::Llm;
                    span.usage = Some(Box::new(u)).filter(|u| !u.is_empty());
                    let mut parts = Vec::new();
                    if let Some(t) = thought {
                        parts.push(Part::Reasoning { text: t });
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text { text: text.clone() });
                    }
                    span.llm = Some(Box::new(LlmCall {
                        input_messages: tail(&self.history, 6),
                        output_messages: vec![Message {
                            role: Role::Assistant,
                            name: agent.clone(),
                            parts,
                        }],
                        ..LlmCall::default()
                    }));
                    span.status = Status::Ok;
                } else {
                    span.kind = SpanKind::Step;
                    if ty == "ThoughtEvent" {
                        span.name = format!("{} thought", agent.as_deref().unwrap_or("agent"));
                    }
                }
                if let Some(blocks) = obj.get("code_blocks") {
                    span.attributes
                        .insert("code_blocks".to_owned(), blocks.clone());
                }
                span.output = Some(Box::new(Payload::text(text.clone())));
                self.b.push(span);
                self.remember(Role::Assistant, agent, text);
            }
        }
    }

    fn remember(&mut self, role: Role, name: Option<String>, text: String) {
        if !text.is_empty() {
            self.history.push(Message {
                role,
                name,
                parts: vec![Part::Text { text }],
            });
        }
    }

    /// A `ToolCallRequestEvent`: the model call, with one Tool child per `FunctionCall`.
    fn llm_with_calls(
        &mut self,
        i: usize,
        obj: &Map<String, Value>,
        mut span: Span,
        usage: Option<Usage>,
        thought: Option<String>,
    ) {
        let calls = obj
            .get("content")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut parts = Vec::new();
        if let Some(t) = thought {
            parts.push(Part::Reasoning { text: t });
        }
        let mut parsed = Vec::new();
        for (k, call) in calls.iter().enumerate() {
            let name = get_str(call, &["name"]).unwrap_or("tool").to_owned();
            let args = match call.get("arguments") {
                Some(Value::String(s)) => maybe_json(s),
                Some(v) => v.clone(),
                None => Value::Null,
            };
            let call_id =
                get_str(call, &["id"]).map_or_else(|| format!("{}.{k}", span.id), str::to_owned);
            parts.push(Part::ToolCall {
                id: Some(call_id.clone()),
                name: name.clone(),
                arguments: args.clone(),
            });
            parsed.push((k, call_id, name, args));
        }
        span.kind = SpanKind::Llm;
        span.status = Status::Ok;
        span.usage = (usage.filter(|u| !u.is_empty())).map(Box::new);
        span.llm = Some(Box::new(LlmCall {
            input_messages: tail(&self.history, 6),
            output_messages: vec![Message {
                role: Role::Assistant,
                name: span.agent.clone(),
                parts,
            }],
            finish_reason: Some("tool_calls".to_owned()),
            ..LlmCall::default()
        }));
        let agent = span.agent.clone();
        let start = span.start_ns;
        let llm_idx = self.b.push(span);
        for (k, call_id, name, args) in parsed {
            let tool = Span {
                id: call_id.clone(),
                kind: SpanKind::Tool,
                name: name.clone(),
                agent: agent.clone(),
                step: Some(i as u32),
                start_ns: start,
                input: Some(Box::new(Payload::from_json(args.clone()))),
                tool: Some(Box::new(ToolCall {
                    name,
                    call_id: Some(call_id.clone()),
                    arguments: args,
                    ..ToolCall::default()
                })),
                source: self.source(i, &format!("/content/{k}")),
                ..Span::default()
            };
            let idx = self.b.push_child(llm_idx, tool);
            if self.calls.insert(call_id.clone(), idx).is_some() {
                self.b.warn(format!("message {i}: call id `{call_id}` is used more than once; results go to the latest call"));
            }
        }
    }

    /// A `ToolCallExecutionEvent`: completes the matching tool spans.
    fn results(
        &mut self,
        i: usize,
        obj: &Map<String, Value>,
        agent: Option<&str>,
        at: Option<i64>,
    ) {
        let results = obj
            .get("content")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if results.is_empty() {
            self.b
                .warn(format!("message {i}: execution event without results"));
        }
        for (k, result) in results.iter().enumerate() {
            let call_id = get_str(result, &["call_id"]);
            let content = result.get("content").cloned().unwrap_or(Value::Null);
            let text = text_of(&content).unwrap_or_default();
            let is_error = result
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or_else(|| looks_like_error(&text));
            let matched = call_id.and_then(|c| self.calls.get(c)).copied();
            let idx = if let Some(idx) = matched {
                idx
            } else {
                self.b.warn(format!(
                    "message {i}: result for call `{}` has no matching request",
                    call_id.unwrap_or("?")
                ));
                let name = get_str(result, &["name"]).unwrap_or("tool").to_owned();
                let span = Span {
                    id: call_id.map_or_else(|| format!("m{i}.{k}"), str::to_owned),
                    kind: SpanKind::Tool,
                    name: name.clone(),
                    agent: agent.map(str::to_owned),
                    step: Some(i as u32),
                    start_ns: at,
                    tool: Some(Box::new(ToolCall {
                        name,
                        call_id: call_id.map(str::to_owned),
                        ..ToolCall::default()
                    })),
                    source: self.source(i, &format!("/content/{k}")),
                    ..Span::default()
                };
                self.b.push(span)
            };
            let span = self.b.span_mut(idx);
            span.end_ns = at.or(span.end_ns);
            span.output = Some(Box::new(Payload::text(text.clone())));
            span.attributes
                .insert("result_step".to_owned(), Value::from(i as u64));
            if let Some(tool) = &mut span.tool {
                tool.result = Some(match &content {
                    Value::String(s) => maybe_json(s),
                    other => other.clone(),
                });
                tool.is_error = is_error;
            }
            set_status(span, is_error, &text);
            self.history.push(Message {
                role: Role::Tool,
                name: None,
                parts: vec![Part::ToolResult {
                    id: call_id.map(str::to_owned),
                    content,
                    is_error,
                }],
            });
        }
    }

    /// Tool spans for calls only a `ToolCallSummaryMessage` mentions.
    fn summary_tools(
        &mut self,
        i: usize,
        obj: &Map<String, Value>,
        parent: usize,
        agent: Option<&str>,
        at: Option<i64>,
    ) {
        let calls = obj
            .get("tool_calls")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let results = obj
            .get("results")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (k, call) in calls.iter().enumerate() {
            let Some(call_id) = get_str(call, &["id"]) else {
                continue;
            };
            if self.calls.contains_key(call_id) {
                continue;
            }
            let name = get_str(call, &["name"]).unwrap_or("tool").to_owned();
            let args = call
                .get("arguments")
                .and_then(Value::as_str)
                .map_or(Value::Null, maybe_json);
            let result = results
                .iter()
                .find(|r| get_str(r, &["call_id"]) == Some(call_id));
            let content = result.and_then(|r| r.get("content")).cloned();
            let text = content.as_ref().and_then(text_of).unwrap_or_default();
            let is_error = result
                .and_then(|r| r.get("is_error"))
                .and_then(Value::as_bool)
                .unwrap_or_else(|| looks_like_error(&text));
            let mut span = Span {
                id: call_id.to_owned(),
                kind: SpanKind::Tool,
                name: name.clone(),
                agent: agent.map(str::to_owned),
                step: Some(i as u32),
                start_ns: at,
                input: Some(Box::new(Payload::from_json(args.clone()))),
                output: (content.as_ref().map(|_| Payload::text(text.clone()))).map(Box::new),
                tool: Some(Box::new(ToolCall {
                    name,
                    call_id: Some(call_id.to_owned()),
                    arguments: args,
                    result: content,
                    is_error,
                })),
                source: self.source(i, &format!("/tool_calls/{k}")),
                ..Span::default()
            };
            set_status(&mut span, is_error, &text);
            let idx = self.b.push_child(parent, span);
            self.calls.insert(call_id.to_owned(), idx);
        }
    }

    fn code_execution(&mut self, obj: &Map<String, Value>, mut span: Span) {
        let result = obj.get("result");
        let exit_code = result
            .and_then(|r| r.get("exit_code"))
            .and_then(Value::as_i64);
        let output = result
            .and_then(|r| r.get("output"))
            .and_then(text_of)
            .unwrap_or_default();
        let failed = exit_code.is_some_and(|c| c != 0);
        span.kind = SpanKind::Tool;
        "code_execution".clone_into(&mut span.name);
        span.output = Some(Box::new(Payload::text(output.clone())));
        span.tool = Some(Box::new(ToolCall {
            name: "code_execution".to_owned(),
            result: result.cloned(),
            is_error: failed,
            ..ToolCall::default()
        }));
        if let Some(code) = result.and_then(|r| r.get("code_file")) {
            span.attributes.insert("code_file".to_owned(), code.clone());
        }
        set_status(&mut span, failed, &output);
        if let (true, Some(e)) = (failed, span.error.as_mut()) {
            e.kind = exit_code.map(|c| format!("exit_code {c}"));
        }
        self.b.push(span);
    }
}

const KNOWN_TYPES: [&str; 8] = [
    "TextMessage",
    "MultiModalMessage",
    "StopMessage",
    "StructuredMessage",
    "ThoughtEvent",
    "CodeGenerationEvent",
    "SelectSpeakerEvent",
    "SelectorEvent",
];

fn set_status(span: &mut Span, is_error: bool, text: &str) {
    span.status = if is_error { Status::Error } else { Status::Ok };
    span.error = (is_error.then(|| ErrorInfo {
        message: truncate(text.lines().next().unwrap_or(text), 300),
        ..ErrorInfo::default()
    }))
    .map(Box::new);
}

/// `models_usage` (`RequestUsage`): OpenAI-style counts, prompt including cached.
fn usage_of(u: &Value) -> Usage {
    Usage {
        input: u.get("prompt_tokens").and_then(as_u64),
        output: u.get("completion_tokens").and_then(as_u64),
        ..Usage::default()
    }
}

/// Text of a message's `content`: a string, multimodal parts (strings and images), a
/// structured object, or a list of speaker names.
fn content_text(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                Value::Object(o) if o.contains_key("data") => "[image]".to_owned(),
                other => text_of(other).unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => text_of(other).unwrap_or_default(),
    }
}

fn tail(history: &[Message], n: usize) -> Vec<Message> {
    history[history.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use crate::model::{Format, HandoffMode, SpanKind, Status};
    use crate::testing::{fixture, inline, inline_err};

    #[test]
    fn swarm_refund_fixture() {
        let (summary, traces) = fixture("autogen-agentchat/swarm-refund.json");
        assert_eq!(summary.format, Format::AutoGenAgentChat);
        let t = &traces[0].trace;
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let names: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["triage", "billing"]);
        assert_eq!(
            t.metadata["stop_reason"],
            "Handoff to user from billing detected."
        );
        assert!(t.task.as_deref().unwrap().contains("INV-20931"));

        let failed: Vec<_> = t
            .spans
            .iter()
            .filter(|s| s.status == Status::Error)
            .collect();
        assert_eq!(failed.len(), 1);
        let refund = failed[0];
        assert_eq!(refund.kind, SpanKind::Tool);
        assert_eq!(refund.tool.as_ref().unwrap().name, "issue_refund");
        assert!(refund.tool.as_ref().unwrap().is_error);
        assert_eq!(refund.agent.as_deref(), Some("billing"));
        assert_eq!(refund.step, Some(5));
        assert_eq!(refund.attributes["result_step"], 6);
        assert!(refund.end_ns > refund.start_ns);
        // The tool sits under the model call that requested it.
        assert_eq!(t.spans[refund.parent.unwrap() as usize].kind, SpanKind::Llm);

        assert_eq!(t.usage.input, Some(512 + 688 + 901 + 1003));
        assert_eq!(t.usage.output, Some(31 + 58 + 64 + 19));
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 4);

        let handoffs: Vec<_> = t
            .spans_of(SpanKind::Handoff)
            .filter_map(|s| s.handoff.as_ref())
            .collect();
        assert_eq!(handoffs.len(), 2);
        assert_eq!(
            (handoffs[0].from.as_deref(), handoffs[0].to.as_str()),
            (Some("triage"), "billing")
        );
        assert_eq!(handoffs[0].mode, HandoffMode::Transfer);
        assert_eq!(handoffs[1].to, "user");

        // The thought became the reasoning of triage's call, not a span of its own.
        let triage_call = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Llm && s.agent.as_deref() == Some("triage"))
            .unwrap();
        assert_eq!(triage_call.step, Some(2));
        let parts = &triage_call.llm.as_ref().unwrap().output_messages[0].parts;
        assert!(
            matches!(&parts[0], crate::model::Part::Reasoning { text } if text.contains("billing matter"))
        );
        assert!(t.spans.iter().all(|s| s.step != Some(1)));
        assert!(t.final_output.as_deref().unwrap().contains("manual refund"));
    }

    #[test]
    fn jsonl_and_bare_arrays() {
        let lines = concat!(
            r#"{"type": "TextMessage", "source": "user", "content": "compute 2+2", "created_at": "2026-01-01T00:00:00Z"}"#,
            "\n",
            r#"{"type": "CodeGenerationEvent", "source": "coder", "content": "```python\nprint(2+2)\n```", "code_blocks": [{"code": "print(2+2)", "language": "python"}], "models_usage": {"prompt_tokens": 10, "completion_tokens": 5}}"#,
            "\n",
            r#"{"type": "CodeExecutionEvent", "source": "executor", "result": {"exit_code": 1, "output": "NameError: x", "code_file": null}}"#,
            "\n",
            r#"{"type": "ModelClientStreamingChunkEvent", "source": "coder", "content": "4"}"#,
            "\n",
            r#"{"type": "FancyNewEvent", "source": "coder", "content": "?"}"#,
            "\n",
        );
        let (summary, traces) = inline("chat.jsonl", lines);
        assert_eq!(summary.format, Format::AutoGenAgentChat);
        let t = &traces[0].trace;
        let exec = t.spans.iter().find(|s| s.name == "code_execution").unwrap();
        assert_eq!(exec.status, Status::Error);
        assert_eq!(exec.source.line, Some(3));
        assert_eq!(t.usage.input, Some(10));
        assert_eq!(t.metadata["streaming_chunks_skipped"], 1);
        assert!(t.warnings.iter().any(|w| w.contains("FancyNewEvent")));

        let array = r#"[{"type": "ToolCallExecutionEvent", "source": "a", "content": [{"call_id": "zz", "name": "f", "content": "Error: boom"}]},
                        {"type": "ToolCallRequestEvent", "source": "a", "content": [{"id": "c1", "name": "g", "arguments": "not json"}]}]"#;
        let (_, traces) = inline("a.json", array);
        let t = &traces[0].trace;
        assert!(t.warnings.iter().any(|w| w.contains("`zz`")));
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("without an execution result"))
        );
        assert_eq!(
            t.spans.iter().find(|s| s.name == "f").unwrap().status,
            Status::Error
        );
    }

    #[test]
    fn single_message_file() {
        let (summary, traces) = inline(
            "one.jsonl",
            r#"{"type": "TextMessage", "source": "writer", "content": "done", "models_usage": {"prompt_tokens": 1, "completion_tokens": 1}}"#,
        );
        assert_eq!(summary.format, Format::AutoGenAgentChat);
        assert_eq!(traces[0].trace.spans_of(SpanKind::Llm).count(), 1);
    }

    #[test]
    fn saved_team_state() {
        let state = r#"{"type": "TeamState", "version": "1.0.0", "agent_states": {
            "RoundRobinGroupChatManager": {"type": "RoundRobinManagerState", "message_thread": [
                {"type": "TextMessage", "source": "user", "content": "hi"},
                {"type": "TextMessage", "source": "writer", "content": "draft", "models_usage": {"prompt_tokens": 3, "completion_tokens": 2}},
                {"type": "TextMessage", "source": "critic", "content": "APPROVE", "models_usage": {"prompt_tokens": 4, "completion_tokens": 1}}]},
            "writer": {"type": "ChatAgentContainerState", "message_buffer": []}}}"#;
        let (summary, traces) = inline("state.json", state);
        assert_eq!(summary.format, Format::AutoGenAgentChat);
        let t = &traces[0].trace;
        assert_eq!(t.agents.len(), 2);
        assert_eq!(t.usage.output, Some(3));
        assert!(
            t.spans[2]
                .source
                .pointer
                .as_deref()
                .unwrap()
                .contains("message_thread/2")
        );
    }

    #[test]
    fn hostile_shapes() {
        for doc in [
            r#"{"messages": [null, 3, {"type": "HandoffMessage", "source": "a"}, {"type": "ToolCallRequestEvent", "source": "a", "content": "x", "models_usage": 7}], "stop_reason": null}"#,
            r#"[{"type": "ThoughtEvent", "source": "a", "content": "hmm"}, {"type": "ToolCallSummaryMessage", "source": "a", "tool_calls": [{"id": "q", "name": "t", "arguments": "{}"}], "results": [{"call_id": "q", "content": "ok"}]}]"#,
        ] {
            let (_, traces) = inline("h.json", doc);
            assert_eq!(traces.len(), 1);
        }
        let err = inline_err("e.json", br#"{"messages": [], "stop_reason": "x"}"#);
        assert!(
            err.contains("empty") || err.contains("unrecognized"),
            "{err}"
        );
    }
}
