//! AG2 / AutoGen 0.2 `runtime.log` written by the file logger (`formats.md` §10.4).
//!
//! Line 1 is `Started new session with Session ID: <uuid>`; every later line is one JSON
//! record whose kind is told by its keys. A file where logging was started more than once holds
//! several sessions; each becomes its own trace. Mapping decisions:
//! - chat completion (`invocation_id` + `request` + `response`) → `Llm` span of `source_name`
//!   (else the agent that last received a message). `response` is usually the Python repr of
//!   the OpenAI `ChatCompletion`, read with regular expressions for the model, usage, finish
//!   reason, content and tool calls; a dict response is read directly. `cost` is reported USD.
//! - function use (`input_args` + `returns`) → `Tool` span of `source_name` (the executing
//!   agent). The log has no call id or function name, so the call is matched to a tool call
//!   requested by an earlier completion: same arguments first, else the oldest open request.
//!   It becomes a child of that completion. Error text in `returns` marks it failed.
//! - `received_message` events → the message as a `Step` of its speaker, or `Human` when a user
//!   proxy speaks plain text. Other events are `Step` spans named by the event.
//! - new agent / client / wrapper lines → `AgentInfo` (with the wrapper's model) and metadata.
//! - `step` is the record's 0-based index among the session's JSON lines.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::generic_chat::{looks_like_error, openai_usage};
use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    AgentInfo, Cost, CostSource, ErrorInfo, Format, LlmCall, Message, Part, Payload, Role, Span,
    SpanKind, Status, ToolCall, Usage,
};
use crate::util::{as_f64, get_str, maybe_json, parse_time, text_of, truncate};

const HEADER: &str = "Started new session with Session ID:";

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let Doc::Text(text) = &input.doc else {
        return Err(AdapterError::new("expected the text of an AG2 runtime.log"));
    };
    let mut sessions: Vec<Session> = Vec::new();
    let mut stray = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n as u32 + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix(HEADER) {
            sessions.push(Session {
                id: rest.trim().to_owned(),
                line: line_no,
                records: Vec::new(),
                bad: Vec::new(),
            });
            continue;
        }
        let Some(session) = sessions.last_mut() else {
            stray.push(line_no);
            continue;
        };
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => session.records.push((line_no, o)),
            Ok(_) => session
                .bad
                .push(format!("line {line_no}: not a JSON object; skipped")),
            Err(e) => session
                .bad
                .push(format!("line {line_no}: skipped, not valid JSON ({e})")),
        }
    }
    if sessions.is_empty() {
        return Err(AdapterError::new(format!(
            "expected line 1 to read `{HEADER} <uuid>`"
        )));
    }
    let mut out = Vec::new();
    for (k, session) in sessions.into_iter().enumerate() {
        let mut trace = build(input, session);
        if k == 0 && !stray.is_empty() {
            trace.warnings.push(format!(
                "{} line(s) before the session header skipped (first: line {})",
                stray.len(),
                stray[0]
            ));
        }
        out.push(Parsed::unlabelled(trace));
    }
    Ok(out)
}

struct Session {
    id: String,
    line: u32,
    records: Vec<(u32, Map<String, Value>)>,
    bad: Vec<String>,
}

/// A tool call requested by a completion and not yet matched to a function-use line.
struct OpenCall {
    llm_idx: usize,
    id: Option<String>,
    name: String,
    arguments: Value,
}

struct Ag2<'a> {
    input: &'a Input,
    b: TraceBuilder,
    /// Model of each wrapper / client id (from their `json_state`).
    models: HashMap<String, String>,
    /// Declared agents by name, with their class.
    agent_types: HashMap<String, String>,
    open_calls: Vec<OpenCall>,
    /// The agent that received the latest message (it is the one that answers next).
    last_receiver: Option<String>,
}

fn build(input: &Input, session: Session) -> crate::model::Trace {
    let id = if session.id.is_empty() {
        input.synth_id(&format!("ag2-{}", session.line))
    } else {
        session.id.clone()
    };
    let mut b = TraceBuilder::new(Format::Ag2RuntimeLog, id);
    b.trace_mut().format_version = Some("ag2-file-logger".to_owned());
    b.trace_mut().session_id = (!session.id.is_empty()).then(|| session.id.clone());
    for w in session.bad {
        b.warn(w);
    }
    let mut ag2 = Ag2 {
        input,
        b,
        models: HashMap::new(),
        agent_types: HashMap::new(),
        open_calls: Vec::new(),
        last_receiver: None,
    };
    for (step, (line, record)) in session.records.iter().enumerate() {
        ag2.record(step as u32, *line, record);
    }
    if !ag2.open_calls.is_empty() {
        let names: Vec<&str> = ag2.open_calls.iter().map(|c| c.name.as_str()).collect();
        ag2.b.warn(format!(
            "tool call(s) requested but never executed in this log: {}",
            names.join(", ")
        ));
    }
    ag2.b.finish()
}

impl Ag2<'_> {
    fn record(&mut self, step: u32, line: u32, o: &Map<String, Value>) {
        let has = |k: &str| o.contains_key(k);
        if has("invocation_id") && has("request") && has("response") {
            self.completion(step, line, o);
        } else if has("input_args") && has("returns") {
            self.function_use(step, line, o);
        } else if has("event_name") && has("source_name") {
            self.event(step, line, o);
        } else if has("agent_name") && has("agent_type") {
            self.new_agent(o);
        } else if has("client_id") && has("class") {
            self.remember_model(o, "client_id");
            self.meta_push("clients", o, &["client_id", "class", "json_state"]);
        } else if has("wrapper_id") && has("json_state") {
            self.remember_model(o, "wrapper_id");
            self.meta_push("wrappers", o, &["wrapper_id", "json_state"]);
        } else {
            let keys: Vec<&str> = o.keys().take(6).map(String::as_str).collect();
            self.b.warn(format!(
                "line {line}: unknown record kind (keys: {}); skipped",
                keys.join(", ")
            ));
        }
    }

    fn meta_push(&mut self, key: &str, o: &Map<String, Value>, fields: &[&str]) {
        let mut entry = Map::new();
        for f in fields {
            if let Some(v) = o.get(*f) {
                let v = match v {
                    Value::String(s) if *f == "json_state" => maybe_json(s),
                    other => other.clone(),
                };
                entry.insert((*f).to_owned(), v);
            }
        }
        let list = self
            .b
            .trace_mut()
            .metadata
            .entry(key.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.push(Value::Object(entry));
        }
    }

    /// Wrapper and client states name the model (`config_list[0].model` or `model`).
    fn remember_model(&mut self, o: &Map<String, Value>, id_key: &str) {
        let state = o
            .get("json_state")
            .and_then(Value::as_str)
            .map_or(Value::Null, maybe_json);
        let model = get_str(&state, &["model"]).or_else(|| {
            state
                .get("config_list")
                .and_then(|c| c.get(0))
                .and_then(|c| get_str(c, &["model"]))
        });
        if let (Some(id), Some(model)) = (o.get(id_key).map(id_string), model) {
            self.models.insert(id, model.to_owned());
        }
    }

    fn new_agent(&mut self, o: &Map<String, Value>) {
        let Some(name) = o
            .get("agent_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return;
        };
        let agent_type = o
            .get("agent_type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let model = o
            .get("wrapper_id")
            .map(id_string)
            .and_then(|w| self.models.get(&w).cloned());
        if let Some(t) = &agent_type {
            self.agent_types.insert(name.to_owned(), t.clone());
        }
        self.b.agent(AgentInfo {
            name: name.to_owned(),
            id: o.get("id").map(id_string).filter(|s| !s.is_empty()),
            role: agent_type,
            model,
            parent_agent: None,
        });
    }

    fn completion(&mut self, step: u32, line: u32, o: &Map<String, Value>) {
        let agent = o
            .get("source_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| self.last_receiver.clone());
        let request = o.get("request").cloned().unwrap_or(Value::Null);
        let response = o.get("response").cloned().unwrap_or(Value::Null);
        let parsed = match &response {
            Value::String(s) => read_repr(s),
            Value::Object(_) => read_dict(&response),
            _ => Completion::default(),
        };
        let start = o
            .get("start_time")
            .and_then(Value::as_str)
            .and_then(parse_time);
        let end = o
            .get("end_time")
            .and_then(Value::as_str)
            .and_then(parse_time);
        let request_model = get_str(&request, &["model"])
            .map(str::to_owned)
            .or_else(|| {
                o.get("client_id")
                    .map(id_string)
                    .and_then(|c| self.models.get(&c).cloned())
            });
        let mut parts = Vec::new();
        if let Some(c) = parsed.content.clone().filter(|c| !c.is_empty()) {
            parts.push(Part::Text { text: c });
        }
        for call in &parsed.tool_calls {
            parts.push(Part::ToolCall {
                id: call.0.clone(),
                name: call.1.clone(),
                arguments: call.2.clone(),
            });
        }
        let mut span = Span {
            id: o
                .get("invocation_id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("L{line}"), str::to_owned),
            kind: SpanKind::Llm,
            name: agent
                .clone()
                .unwrap_or_else(|| "chat_completion".to_owned()),
            agent: agent.clone(),
            step: Some(step),
            start_ns: start,
            end_ns: end,
            output: (parsed
                .content
                .clone()
                .filter(|c| !c.is_empty())
                .map(Payload::text))
            .map(Box::new),
            usage: (parsed.usage.clone().filter(|u| !u.is_empty())).map(Box::new),
            cost: o.get("cost").and_then(as_f64).map(|amount| Cost {
                amount,
                currency: "USD".to_owned(),
                source: CostSource::Reported,
            }),
            llm: Some(Box::new(LlmCall {
                provider: None,
                request_model,
                response_model: parsed.model.clone(),
                input_messages: request_messages(&request),
                output_messages: vec![Message {
                    role: Role::Assistant,
                    name: agent.clone(),
                    parts,
                }],
                finish_reason: parsed.finish_reason.clone(),
                params: request_params(&request),
            })),
            source: self.input.at_line(line),
            ..Span::default()
        };
        if let Some(v) = o.get("is_cached") {
            span.attributes.insert("is_cached".to_owned(), v.clone());
        }
        if let Some(id) = &parsed.id {
            span.attributes
                .insert("response.id".to_owned(), Value::String(id.clone()));
        }
        if parsed.unreadable {
            let text = response.as_str().unwrap_or_default();
            span.status = Status::Error;
            span.error = Some(Box::new(ErrorInfo {
                message: truncate(text, 300),
                ..ErrorInfo::default()
            }));
            self.b.warn(format!(
                "line {line}: response is not a ChatCompletion; kept as a failed call"
            ));
        } else {
            span.status = Status::Ok;
        }
        let llm_idx = self.b.push(span);
        for (id, name, arguments) in parsed.tool_calls {
            self.open_calls.push(OpenCall {
                llm_idx,
                id,
                name,
                arguments,
            });
        }
    }

    fn function_use(&mut self, step: u32, line: u32, o: &Map<String, Value>) {
        let agent = o
            .get("source_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let args = o.get("input_args").map_or(Value::Null, decode_logged);
        let returns = o.get("returns").map_or(Value::Null, decode_logged);
        let text = text_of(&returns).unwrap_or_default();
        let failed = looks_like_error(&text);
        let at = o
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_time);
        // Same arguments first, else the oldest open request.
        let pos = self
            .open_calls
            .iter()
            .position(|c| c.arguments == args)
            .or_else(|| (!self.open_calls.is_empty()).then_some(0));
        let call = pos.map(|p| self.open_calls.remove(p));
        if call.is_none() {
            self.b.warn(format!(
                "line {line}: function use without a requested tool call; name unknown"
            ));
        }
        let name = call
            .as_ref()
            .map_or_else(|| "function".to_owned(), |c| c.name.clone());
        let call_id = call.as_ref().and_then(|c| c.id.clone());
        let parent = call.as_ref().map(|c| c.llm_idx);
        let start = parent
            .and_then(|p| self.b.span(p).end_ns)
            .filter(|s| at.is_none_or(|a| *s <= a))
            .or(at);
        let mut span = Span {
            id: call_id.clone().unwrap_or_else(|| format!("L{line}")),
            kind: SpanKind::Tool,
            name: name.clone(),
            agent,
            step: Some(step),
            start_ns: start,
            end_ns: at,
            input: Some(Box::new(Payload::from_json(args.clone()))),
            output: Some(Box::new(Payload::text(text.clone()))),
            tool: Some(Box::new(ToolCall {
                name,
                call_id,
                arguments: args,
                result: Some(returns),
                is_error: failed,
            })),
            source: self.input.at_line(line),
            ..Span::default()
        };
        for key in ["agent_class", "agent_module"] {
            if let Some(v) = o.get(key) {
                span.attributes.insert(key.to_owned(), v.clone());
            }
        }
        span.status = if failed { Status::Error } else { Status::Ok };
        if failed {
            span.error = Some(Box::new(ErrorInfo {
                message: truncate(text.lines().next().unwrap_or(""), 300),
                ..ErrorInfo::default()
            }));
        }
        match parent {
            Some(p) => self.b.push_child(p, span),
            None => self.b.push(span),
        };
    }

    fn event(&mut self, step: u32, line: u32, o: &Map<String, Value>) {
        let receiver = o
            .get("source_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let event = o
            .get("event_name")
            .and_then(Value::as_str)
            .unwrap_or("event")
            .to_owned();
        let state = o.get("json_state").map_or(Value::Null, |v| match v {
            Value::String(s) => maybe_json(s),
            other => other.clone(),
        });
        let at = o
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_time);
        let mut span = Span {
            id: format!("L{line}"),
            step: Some(step),
            start_ns: at,
            end_ns: at,
            source: self.input.at_line(line),
            ..Span::default()
        };
        span.attributes
            .insert("event_name".to_owned(), Value::String(event.clone()));
        span.attributes
            .insert("receiver".to_owned(), Value::String(receiver.clone()));
        if event != "received_message" {
            span.kind = SpanKind::Step;
            span.name.clone_from(&event);
            span.agent = (!receiver.is_empty()).then(|| receiver.clone());
            span.output = ((!state.is_null()).then(|| Payload::from_json(state))).map(Box::new);
            self.b.push(span);
            return;
        }
        let message = state.get("message").cloned().unwrap_or(Value::Null);
        let sender = get_str(&state, &["sender"]).map(str::to_owned);
        let speaker = get_str(&message, &["name"])
            .map(str::to_owned)
            .or(sender.clone());
        let text = match &message {
            Value::String(s) => s.clone(),
            m => m.get("content").and_then(text_of).unwrap_or_default(),
        };
        let is_tool_response =
            message.get("tool_responses").is_some() || get_str(&message, &["role"]) == Some("tool");
        let from_user_proxy = speaker
            .as_deref()
            .and_then(|s| self.agent_types.get(s))
            .is_some_and(|t| t.contains("UserProxy"));
        if let Some(s) = &sender {
            span.attributes
                .insert("sender".to_owned(), Value::String(s.clone()));
        }
        if let Some(valid) = state.get("valid") {
            span.attributes.insert("valid".to_owned(), valid.clone());
        }
        span.name = format!("message to {receiver}");
        if from_user_proxy && !is_tool_response {
            // The task or a human turn relayed by a user proxy.
            span.kind = SpanKind::Human;
            span.input = Some(Box::new(Payload::text(text)));
        } else {
            span.kind = SpanKind::Step;
            span.agent = speaker;
            span.output = Some(Box::new(Payload::text(text)));
            if is_tool_response {
                span.attributes
                    .insert("tool_responses".to_owned(), Value::Bool(true));
            }
        }
        self.b.push(span);
        if !receiver.is_empty() {
            self.last_receiver = Some(receiver);
        }
    }
}

/// The logger writes `input_args` and `returns` with `json.dumps`, so a returned string
/// arrives quoted: decode any JSON value, and keep text that is not JSON as it is.
fn decode_logged(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => other.clone(),
    }
}

/// AG2 writes ids as integers or strings; compare them as strings.
fn id_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn request_messages(request: &Value) -> Vec<Message> {
    let Some(msgs) = request.get("messages").and_then(Value::as_array) else {
        return Vec::new();
    };
    msgs.iter()
        .map(|m| {
            let role = Role::parse(get_str(m, &["role"]).unwrap_or("other"));
            let mut parts = Vec::new();
            if let Some(t) = m.get("content").and_then(text_of) {
                if role == Role::Tool {
                    parts.push(Part::ToolResult {
                        id: get_str(m, &["tool_call_id"]).map(str::to_owned),
                        content: Value::String(t),
                        is_error: false,
                    });
                } else {
                    parts.push(Part::Text { text: t });
                }
            }
            for call in m
                .get("tool_calls")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
            {
                parts.push(Part::ToolCall {
                    id: get_str(call, &["id"]).map(str::to_owned),
                    name: get_str(call, &["function", "name"])
                        .unwrap_or("tool")
                        .to_owned(),
                    arguments: get_str(call, &["function", "arguments"])
                        .map_or(Value::Null, maybe_json),
                });
            }
            Message {
                role,
                name: get_str(m, &["name"]).map(str::to_owned),
                parts,
            }
        })
        .collect()
}

/// Request parameters worth keeping: everything but the messages and model, with tool
/// schemas reduced to their names.
fn request_params(request: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(o) = request.as_object() else {
        return out;
    };
    for (k, v) in o {
        if !matches!(k.as_str(), "messages" | "tools" | "model") && !v.is_null() {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some(Value::Array(tools)) = o.get("tools") {
        let names: Vec<Value> = tools
            .iter()
            .filter_map(|t| get_str(t, &["function", "name"]))
            .map(|n| Value::String(n.to_owned()))
            .collect();
        out.insert("tools".to_owned(), Value::Array(names));
    }
    out
}

/// What is read from a completion response.
#[derive(Debug, Default)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    content: Option<String>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// (call id, function name, arguments)
    tool_calls: Vec<(Option<String>, String, Value)>,
    /// A string that is not a `ChatCompletion` repr (an error message, a cache marker).
    unreadable: bool,
}

// Fixed patterns; `patterns_compile` tests them. Held as `Option` so that reading a log can
// never panic, even in theory.
static RE_ID: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"^ChatCompletion\(id='([^']*)'"));
static RE_MODEL: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"\bmodel='([^']*)', object="));
static RE_MODEL_ANY: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"\bmodel='([^']*)'"));
static RE_FINISH: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"\bfinish_reason='([^']*)'"));
static RE_CONTENT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r#"ChatCompletionMessage\(content=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|None)"#)
});
static RE_TOOL_CALL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r#"ToolCall\(id='([^']*)', function=Function\(arguments=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"), name='([^']*)'\)"#,
    )
});
static RE_USAGE_FIELD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"\b(prompt_tokens|completion_tokens|total_tokens|cached_tokens|reasoning_tokens)=(\d+)")
});

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// The first capture group of `re` in `s`.
fn first_group(re: Option<&Regex>, s: &str) -> Option<String> {
    re?.captures(s)?.get(1).map(|m| m.as_str().to_owned())
}

/// Reads the Python repr of an OpenAI `ChatCompletion`.
fn read_repr(s: &str) -> Completion {
    let mut c = Completion::default();
    if !s.trim_start().starts_with("ChatCompletion(") {
        c.unreadable = true;
        return c;
    }
    c.id = first_group(RE_ID.as_ref(), s);
    c.model = first_group(RE_MODEL.as_ref(), s).or_else(|| first_group(RE_MODEL_ANY.as_ref(), s));
    c.finish_reason = first_group(RE_FINISH.as_ref(), s);
    c.content = first_group(RE_CONTENT.as_ref(), s).and_then(|lit| py_string(&lit));
    for m in RE_TOOL_CALL.iter().flat_map(|r| r.captures_iter(s)) {
        let id = m.get(1).map(|x| x.as_str().to_owned());
        let args = m
            .get(2)
            .and_then(|x| py_string(x.as_str()))
            .map_or(Value::Null, |a| maybe_json(&a));
        let name = m.get(3).map_or("tool", |x| x.as_str()).to_owned();
        c.tool_calls.push((id, name, args));
    }
    if let Some(at) = s.find("usage=CompletionUsage(") {
        let mut u = Usage::default();
        let tail = s.get(at..).unwrap_or_default();
        for m in RE_USAGE_FIELD.iter().flat_map(|r| r.captures_iter(tail)) {
            let n = m.get(2).and_then(|x| x.as_str().parse::<u64>().ok());
            match m.get(1).map(|x| x.as_str()) {
                Some("prompt_tokens") => u.input = u.input.or(n),
                Some("completion_tokens") => u.output = u.output.or(n),
                Some("total_tokens") => u.total = u.total.or(n),
                Some("cached_tokens") => u.cache_read = u.cache_read.or(n).filter(|v| *v > 0),
                Some("reasoning_tokens") => u.reasoning = u.reasoning.or(n).filter(|v| *v > 0),
                _ => {}
            }
        }
        c.usage = Some(u);
    }
    c
}

/// Reads a `ChatCompletion` logged as a dict.
fn read_dict(v: &Value) -> Completion {
    let choice = v.get("choices").and_then(|c| c.get(0));
    let message = choice.and_then(|c| c.get("message"));
    Completion {
        id: get_str(v, &["id"]).map(str::to_owned),
        model: get_str(v, &["model"]).map(str::to_owned),
        content: message.and_then(|m| m.get("content")).and_then(text_of),
        finish_reason: choice
            .and_then(|c| get_str(c, &["finish_reason"]))
            .map(str::to_owned),
        usage: v.get("usage").map(openai_usage),
        tool_calls: message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|call| {
                (
                    get_str(call, &["id"]).map(str::to_owned),
                    get_str(call, &["function", "name"])
                        .unwrap_or("tool")
                        .to_owned(),
                    get_str(call, &["function", "arguments"]).map_or(Value::Null, maybe_json),
                )
            })
            .collect(),
        unreadable: false,
    }
}

/// A Python string literal from a repr (`'...'` or `"..."`), unescaped; `None` for `None`.
fn py_string(lit: &str) -> Option<String> {
    let quote = lit.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let inner = lit.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CostSource, Format, SpanKind, Status};
    use crate::testing::{fixture, inline};

    #[test]
    fn patterns_compile() {
        for re in [
            &RE_ID,
            &RE_MODEL,
            &RE_MODEL_ANY,
            &RE_FINISH,
            &RE_CONTENT,
            &RE_TOOL_CALL,
            &RE_USAGE_FIELD,
        ] {
            assert!(re.is_some());
        }
        assert_eq!(py_string(r"'it\'s\nok'").as_deref(), Some("it's\nok"));
        assert_eq!(py_string("None"), None);
    }

    #[test]
    fn runtime_log_fixture() {
        let (summary, traces) = fixture("ag2-runtime-log/runtime.log");
        assert_eq!(summary.format, Format::Ag2RuntimeLog);
        assert_eq!(traces.len(), 1);
        let t = &traces[0].trace;
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.id, "7d41c0e2-95ab-4f3e-b1c8-2e6a90f4d7a3");
        assert_eq!(t.session_id.as_deref(), Some(t.id.as_str()));
        let names: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        for n in ["climate_analyst", "user_proxy", "chat_manager"] {
            assert!(names.contains(&n), "{names:?}");
        }
        let analyst = t
            .agents
            .iter()
            .find(|a| a.name == "climate_analyst")
            .unwrap();
        assert_eq!(analyst.role.as_deref(), Some("ConversableAgent"));
        assert_eq!(analyst.model.as_deref(), Some("gpt-4.1-mini"));

        let llms: Vec<_> = t.spans_of(SpanKind::Llm).collect();
        assert_eq!(llms.len(), 3);
        let first = llms[0].llm.as_ref().unwrap();
        assert_eq!(
            first.response_model.as_deref(),
            Some("gpt-4.1-mini-2025-04-14")
        );
        assert_eq!(first.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(first.input_messages.len(), 2);
        assert_eq!(t.usage.input, Some(318 + 402 + 489));
        assert_eq!(t.usage.output, Some(27 + 26 + 31));
        assert_eq!(t.usage.cache_read, Some(256));
        let cost = t.cost.as_ref().unwrap();
        assert_eq!(cost.source, CostSource::Reported);
        assert!((cost.amount - (0.000_170_4 + 0.000_150_4 + 0.000_245_2)).abs() < 1e-12);

        // Function uses are matched to the requested calls and nested under them.
        let tools: Vec<_> = t.spans_of(SpanKind::Tool).collect();
        assert_eq!(tools.len(), 2);
        let failed = tools[0];
        assert_eq!(failed.tool.as_ref().unwrap().name, "fetch_climate_series");
        assert_eq!(
            failed.tool.as_ref().unwrap().call_id.as_deref(),
            Some("call_w81")
        );
        assert_eq!(failed.status, Status::Error);
        assert!(
            failed
                .error
                .as_ref()
                .unwrap()
                .message
                .contains("StationNotFound")
        );
        assert_eq!(failed.agent.as_deref(), Some("user_proxy"));
        assert_eq!(t.spans[failed.parent.unwrap() as usize].kind, SpanKind::Llm);
        assert_eq!(tools[1].status, Status::Ok);

        assert_eq!(
            t.task.as_deref(),
            Some(
                "What is the average October rainfall in Bergen, Norway? Give the 1991-2020 normal."
            )
        );
        assert!(t.final_output.as_deref().unwrap().contains("283 mm"));
        assert_eq!(
            t.spans_of(SpanKind::Handoff).count(),
            0,
            "AG2 logs carry no handoffs"
        );
        // Steps index the session's JSON records; line 1 is the header.
        assert!(
            t.spans
                .iter()
                .all(|s| s.step.is_some_and(|st| s.source.line == Some(st + 2)))
        );
    }

    #[test]
    fn broken_lines_sessions_and_dict_responses() {
        let log = concat!(
            "Started new session with Session ID: s-1\n",
            "{\"invocation_id\": \"i1\", \"request\": {\"messages\": []}, \"response\": {\"id\": \"r\", \"model\": \"m1\", \"choices\": [{\"message\": {\"content\": \"hi\"}, \"finish_reason\": \"stop\"}], \"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 2}}, \"cost\": 0.1, \"source_name\": \"a\", \"start_time\": \"2026-01-01 00:00:00.000001\"}\n",
            "{\"invocation_id\": \"i2\", \"request\": {}, \"response\": \"Rate limit exceeded\", \"source_name\": \"a\"}\n",
            "{\"truncated\": \n",
            "{\"mystery\": 1}\n",
            "{\"source_name\": \"b\", \"input_args\": \"{}\", \"returns\": \"ok\"}\n",
            "Started new session with Session ID: s-2\n",
            "{\"source_name\": \"x\", \"event_name\": \"reply_func_executed\", \"json_state\": \"{}\"}\n",
        );
        let (summary, traces) = inline("runtime.log", log);
        assert_eq!(summary.format, Format::Ag2RuntimeLog);
        assert_eq!(traces.len(), 2);
        let t = &traces[0].trace;
        assert!(
            t.warnings.iter().any(|w| w.contains("line 4")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("line 5") && w.contains("unknown"))
        );
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("line 6") && w.contains("without a requested tool call"))
        );
        let ok = t.spans.iter().find(|s| s.id == "i1").unwrap();
        assert_eq!(ok.usage.as_ref().unwrap().input, Some(5));
        assert_eq!(ok.output.as_ref().unwrap().text, "hi");
        assert_eq!(
            t.spans.iter().find(|s| s.id == "i2").unwrap().status,
            Status::Error
        );
        assert_eq!(traces[1].trace.id, "s-2");
    }
}
