//! Dify workflow node executions and chat/agent messages (`formats.md` §6).
//!
//! **Node executions** (`Format::DifyNodes`): the console API's `{data: [NodeExecution]}`, a
//! bare array, or one execution per JSONL line; one trace per file (one workflow run).
//! - One span per execution (id = `id`, name = `title`, `step` = `index` − 1). Kinds by
//!   `node_type`: `llm`/`question-classifier`/`parameter-extractor` → Llm, `tool`/
//!   `http-request`/`code` → Tool, `agent` → Agent, `knowledge-retrieval` → Retrieval,
//!   `human-input` → Human, others → Step. Spans are roots, except iteration and loop passes,
//!   which sit under the latest execution of their `iteration_id`/`loop_id` node;
//!   `predecessor_node_id` becomes a `DataFlow` link to that node's latest execution.
//! - Times are epoch seconds; the end is `created_at + elapsed_time` (finer than
//!   `finished_at`). `failed` → Error, `exception` (the node's error strategy caught it) and
//!   `retry` → Error handled, `stopped` → Error of kind `stopped`.
//! - LLM nodes: model and prompts from `process_data`, usage from `process_data.usage` (else
//!   `outputs.usage`), and the reported price (`total_price`, a decimal string, in its own
//!   `currency`, which may not be USD). A zero price means Dify had no price for the model,
//!   so no cost is set and the estimate applies. An agent node's usage is an aggregate of its
//!   log (`Subtree`).
//! - An agent node's `execution_metadata.agent_log` becomes its children (id
//!   `"{node execution}/{log id}"`, nested by `parent_id`): "<model> Thought" → Llm (usage from
//!   `metadata.total_tokens`, only a total), "CALL <tool>" → Tool, rounds and others → Step.
//!   The log's `data` depends on the strategy plugin; only its common keys are read and the
//!   rest is kept in attributes.
//!
//! **Messages** (`Format::DifyMessages`): `{data: [messages]}` (service API `/v1/messages`), a
//! bare array or single message; one trace per `conversation_id`, messages in time order.
//! - Per message: a Human span for `query` and an Agent span `assistant` (the app speaks as one
//!   agent; Dify does not name it) with `step` = the message's position. Each agent thought is
//!   an Llm child; each tool of its `tool` field (several joined by `;`) is a Tool child of the
//!   thought, with input and observation taken from the JSON objects keyed by tool name (or
//!   the whole text). An observation saying "tool invoke error"/"error:" fails the tool,
//!   handled (the agent went on). Thoughts and tools end when the next thought starts
//!   (`time_inferred`).
//! - Usage and price exist only on console messages (`message_tokens`, `answer_tokens`,
//!   `total_price`): they are per message, so they sit on the message span as a `Subtree`
//!   aggregate and the trace totals are their sum.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::generic_chat::looks_like_error;
use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    Cost, CostSource, ErrorInfo, Format, LinkKind, LlmCall, Message, Part, Payload, Role,
    SourceRef, Span, SpanKind, Status, ToolCall, Usage, UsageScope,
};
use crate::util::{
    as_f64, as_u64, flatten_into, get_str, maybe_json, text_of, time_value, truncate,
};

/// An item of the input with where it came from.
struct Item<'a> {
    value: &'a Map<String, Value>,
    source: SourceRef,
}

/// Items of `{data: [...]}`, a bare array, a single object, or JSONL lines of either.
fn items_of<'a>(
    input: &'a Input,
    is_item: fn(&Map<String, Value>) -> bool,
) -> Result<Vec<Item<'a>>, AdapterError> {
    let mut out = Vec::new();
    let mut push_doc = |v: &'a Value, line: Option<u32>| {
        let source = |pointer: String| match line {
            Some(l) => SourceRef {
                file: Some(input.file.clone()),
                line: Some(l),
                pointer: (!pointer.is_empty()).then_some(pointer),
            },
            None => input.at(pointer),
        };
        match v {
            Value::Object(o) if is_item(o) => out.push(Item {
                value: o,
                source: source(String::new()),
            }),
            Value::Object(o) => {
                if let Some(Value::Array(items)) = o.get("data") {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(obj) = item.as_object().filter(|o| is_item(o)) {
                            out.push(Item {
                                value: obj,
                                source: source(format!("/data/{i}")),
                            });
                        }
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(obj) = item.as_object().filter(|o| is_item(o)) {
                        out.push(Item {
                            value: obj,
                            source: source(format!("/{i}")),
                        });
                    }
                }
            }
            _ => {}
        }
    };
    match &input.doc {
        Doc::Json(v) => push_doc(v, None),
        Doc::Lines(lines) => {
            for line in lines {
                push_doc(&line.value, Some(line.line));
            }
        }
        Doc::Text(_) => return Err(AdapterError::new("Dify exports are JSON, got text")),
    }
    Ok(out)
}

fn str_of<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `created_at` plus `elapsed_time` seconds, else `finished_at`.
fn end_of(o: &Map<String, Value>, start: Option<i64>) -> Option<i64> {
    let elapsed = o
        .get("elapsed_time")
        .and_then(as_f64)
        .filter(|e| e.is_finite() && *e >= 0.0);
    match (start, elapsed) {
        (Some(s), Some(e)) => s.checked_add((e * 1e9) as i64),
        _ => o.get("finished_at").and_then(time_value),
    }
}

/// Dify `LLMUsage`: token counts and a price given as decimal strings.
fn dify_usage(u: &Value) -> Option<(Usage, Option<Cost>)> {
    let usage = Usage {
        input: u.get("prompt_tokens").and_then(as_u64),
        output: u.get("completion_tokens").and_then(as_u64),
        total: u.get("total_tokens").and_then(as_u64),
        ..Usage::default()
    };
    if usage.is_empty() {
        return None;
    }
    Some((usage, dify_cost(u)))
}

/// `total_price` + `currency`; a zero price means "unknown" in Dify, so none.
fn dify_cost(v: &Value) -> Option<Cost> {
    let amount = v.get("total_price").and_then(as_f64)?;
    (amount.is_finite() && amount > 0.0).then(|| Cost {
        amount,
        currency: get_str(v, &["currency"]).unwrap_or("USD").to_owned(),
        source: CostSource::Reported,
    })
}

/// `langgenius/openai/openai` → `openai`.
fn provider_name(provider: &str) -> String {
    provider.rsplit('/').next().unwrap_or(provider).to_owned()
}

fn parse_error(text: &str, handled: bool, kind: Option<&str>) -> ErrorInfo {
    let first = text.lines().next().unwrap_or_default().trim();
    let rest = text.trim().get(first.len()..).unwrap_or_default().trim();
    ErrorInfo {
        kind: kind.map(str::to_owned),
        message: truncate(first, 1000),
        stack: (!rest.is_empty()).then(|| rest.to_owned()),
        handled,
    }
}

/// A readable payload: a lone text output (`text`, `answer`, `result`, `output`) as text,
/// else compact JSON; the JSON is kept.
fn payload(v: Option<&Value>) -> Option<Payload> {
    let v = v.filter(|v| !v.is_null())?;
    if v.as_object().is_some_and(Map::is_empty) {
        return None;
    }
    let text = ["text", "answer", "result", "output", "query"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .map_or_else(|| text_of(v).unwrap_or_default(), str::to_owned);
    Some(Payload {
        text,
        json: (!v.is_string()).then(|| v.clone()),
        mime: None,
    })
}

// ---- node executions -----------------------------------------------------------------------

fn is_node(o: &Map<String, Value>) -> bool {
    o.contains_key("node_type") && o.contains_key("node_id")
}

pub(crate) fn parse_nodes(input: &Input) -> AdapterResult {
    let mut items = items_of(input, is_node)?;
    if items.is_empty() {
        return Err(AdapterError::new(
            "expected Dify node executions: items with `node_type` and `node_id`, \
             in `{\"data\": [...]}` or an array",
        ));
    }
    // Console responses are in `index` order already; sort to be safe, keeping ties stable.
    items.sort_by_key(|i| i.value.get("index").and_then(as_u64).unwrap_or(u64::MAX));
    let run_id = items.iter().find_map(|i| {
        i.value
            .get("inputs")
            .and_then(|v| get_str(v, &["sys.workflow_run_id"]))
            .or_else(|| str_of(i.value, "workflow_run_id"))
            .map(str::to_owned)
    });
    let mut b = TraceBuilder::new(
        Format::DifyNodes,
        run_id
            .clone()
            .unwrap_or_else(|| input.synth_id("dify-nodes")),
    );
    // The latest execution of each node id, for links and iteration parents.
    let mut latest: HashMap<String, usize> = HashMap::new();
    let mut any_failed = false;
    let mut all_done = true;
    for item in &items {
        let node = item.value;
        let idx = b.push(node_span(node, item.source.clone()));
        let meta = node.get("execution_metadata").and_then(Value::as_object);
        let container = meta
            .and_then(|m| str_of(m, "iteration_id").or_else(|| str_of(m, "loop_id")))
            .map(str::to_owned);
        if let Some(container) = container {
            match latest.get(&container) {
                Some(&p) => b.set_parent(idx, p),
                None => b.warn(format!(
                    "node `{}` runs inside `{container}`, whose execution is not in the file",
                    b.span(idx).id
                )),
            }
        }
        if let Some(pred) = str_of(node, "predecessor_node_id") {
            let target = latest
                .get(pred)
                .map_or_else(|| pred.to_owned(), |&p| b.span(p).id.clone());
            b.span_mut(idx).links.push(crate::model::Link {
                kind: LinkKind::DataFlow,
                target,
            });
        }
        if b.span(idx).kind == SpanKind::Agent {
            agent_log(&mut b, idx, meta, &item.source);
        }
        match str_of(node, "status") {
            Some("failed" | "stopped") => any_failed = true,
            Some("succeeded" | "exception") => {}
            _ => all_done = false,
        }
        if let Some(node_id) = str_of(node, "node_id") {
            latest.insert(node_id.to_owned(), idx);
        }
    }
    describe_run(&mut b, &items, any_failed, all_done);
    Ok(vec![Parsed::unlabelled(b.finish())])
}

/// Trace-level fields from the start node's `sys.*` inputs and the end node's outputs.
fn describe_run(b: &mut TraceBuilder, items: &[Item<'_>], failed: bool, all_done: bool) {
    let trace = b.trace_mut();
    trace.status = if failed {
        Status::Error
    } else if all_done {
        Status::Ok
    } else {
        Status::Unset
    };
    let start = items
        .iter()
        .find(|i| str_of(i.value, "node_type") == Some("start"))
        .or_else(|| items.first());
    if let Some(Value::Object(inputs)) = start.and_then(|i| i.value.get("inputs")) {
        trace.session_id = str_of(inputs, "sys.conversation_id").map(str::to_owned);
        trace.task = str_of(inputs, "sys.query")
            .or_else(|| {
                inputs
                    .iter()
                    .filter(|(k, _)| !k.starts_with("sys."))
                    .find_map(|(_, v)| v.as_str().filter(|s| !s.is_empty()))
            })
            .map(str::to_owned);
        for key in ["sys.app_id", "sys.workflow_id", "sys.user_id"] {
            if let Some(v) = inputs.get(key).filter(|v| !v.is_null()) {
                trace.metadata.insert(key.to_owned(), v.clone());
            }
        }
    }
    let end = items
        .iter()
        .rev()
        .find(|i| matches!(str_of(i.value, "node_type"), Some("end" | "answer")));
    if let Some(Value::Object(outputs)) = end.and_then(|i| i.value.get("outputs")) {
        trace.final_output = ["answer", "text", "result", "output"]
            .iter()
            .find_map(|k| str_of(outputs, k))
            .or_else(|| {
                outputs
                    .values()
                    .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
            })
            .map(str::to_owned);
    }
}

fn node_kind(node_type: &str) -> SpanKind {
    match node_type {
        "llm" | "question-classifier" | "parameter-extractor" => SpanKind::Llm,
        "tool" | "http-request" | "code" => SpanKind::Tool,
        "agent" => SpanKind::Agent,
        "knowledge-retrieval" => SpanKind::Retrieval,
        "human-input" => SpanKind::Human,
        _ => SpanKind::Step,
    }
}

/// Node fields mapped elsewhere; the rest goes to attributes.
const NODE_MAPPED: [&str; 14] = [
    "id",
    "title",
    "inputs",
    "outputs",
    "process_data",
    "status",
    "error",
    "elapsed_time",
    "created_at",
    "finished_at",
    "execution_metadata",
    "created_by_account",
    "created_by_end_user",
    "extras",
];

fn node_span(node: &Map<String, Value>, source: SourceRef) -> Span {
    let node_type = str_of(node, "node_type").unwrap_or("unknown");
    let kind = node_kind(node_type);
    let start = node.get("created_at").and_then(time_value);
    let status_name = str_of(node, "status");
    let error_text = node
        .get("error")
        .filter(|e| !e.is_null())
        .and_then(text_of)
        .filter(|t| !t.trim().is_empty());
    let meta = node.get("execution_metadata");
    let (status, error) = match status_name {
        Some("failed") => (
            Status::Error,
            Some(parse_error(
                error_text.as_deref().unwrap_or("node failed"),
                false,
                None,
            )),
        ),
        Some("exception" | "retry") => (
            Status::Error,
            Some(parse_error(
                error_text.as_deref().unwrap_or("node failed"),
                true,
                meta.and_then(|m| get_str(m, &["error_strategy"])),
            )),
        ),
        Some("stopped") => (
            Status::Error,
            Some(parse_error(
                error_text.as_deref().unwrap_or("stopped"),
                false,
                Some("stopped"),
            )),
        ),
        Some("succeeded") => (Status::Ok, None),
        _ => (Status::Unset, None),
    };
    let mut span = Span {
        id: str_of(node, "id")
            .or_else(|| str_of(node, "node_id"))
            .unwrap_or("node")
            .to_owned(),
        kind,
        name: str_of(node, "title").unwrap_or(node_type).to_owned(),
        step: node
            .get("index")
            .and_then(as_u64)
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| u32::try_from(i).ok()),
        start_ns: start,
        end_ns: end_of(node, start),
        status,
        error: error.map(Box::new),
        input: (payload(node.get("inputs"))).map(Box::new),
        output: (payload(node.get("outputs"))).map(Box::new),
        source,
        ..Span::default()
    };
    for (k, v) in node {
        if !v.is_null() && !NODE_MAPPED.contains(&k.as_str()) {
            span.attributes.insert(k.clone(), v.clone());
        }
    }
    if let Some(role) = str_of(node, "created_by_role") {
        span.attributes
            .insert("created_by_role".to_owned(), Value::from(role));
    }
    let process = node.get("process_data").filter(|p| p.is_object());
    if let Some(Value::Object(p)) = process {
        for (k, v) in p {
            if !matches!(k.as_str(), "prompts" | "usage") {
                flatten_into(&format!("process_data.{k}"), v, &mut span.attributes);
            }
        }
    }
    if let Some(Value::Object(m)) = meta {
        for (k, v) in m {
            if k != "agent_log" {
                flatten_into(&format!("execution_metadata.{k}"), v, &mut span.attributes);
            }
        }
    }
    let outputs = node.get("outputs");
    let usage = process
        .and_then(|p| p.get("usage"))
        .or_else(|| outputs.and_then(|o| o.get("usage")))
        .and_then(dify_usage)
        .or_else(|| meta.and_then(dify_usage));
    match kind {
        SpanKind::Llm => {
            span.llm = Some(Box::new(node_llm(process, outputs)));
            if let Some((u, c)) = usage {
                span.usage = Some(Box::new(u));
                span.cost = c;
            }
        }
        SpanKind::Agent => {
            if let Some((u, c)) = usage {
                span.usage = Some(Box::new(u));
                span.cost = c;
                span.usage_scope = UsageScope::Subtree;
            }
        }
        SpanKind::Tool => {
            span.tool = Some(Box::new(ToolCall {
                name: span.name.clone(),
                call_id: None,
                arguments: node.get("inputs").cloned().unwrap_or(Value::Null),
                result: outputs.filter(|o| !o.is_null()).cloned(),
                is_error: span.status == Status::Error,
            }));
        }
        _ => {}
    }
    span
}

fn node_llm(process: Option<&Value>, outputs: Option<&Value>) -> LlmCall {
    let input_messages = process
        .and_then(|p| p.get("prompts"))
        .and_then(Value::as_array)
        .map(|prompts| {
            prompts
                .iter()
                .filter_map(|p| {
                    let role = get_str(p, &["role"]).map_or(Role::User, Role::parse);
                    let text = p.get("text").and_then(text_of)?;
                    Some(Message::text(role, text))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(r) = outputs.and_then(|o| get_str(o, &["reasoning_content"])) {
        parts.push(Part::Reasoning { text: r.to_owned() });
    }
    if let Some(t) = outputs.and_then(|o| get_str(o, &["text"])) {
        parts.push(Part::Text { text: t.to_owned() });
    }
    let finish = process
        .and_then(|p| get_str(p, &["finish_reason"]))
        .or_else(|| outputs.and_then(|o| get_str(o, &["finish_reason"])));
    LlmCall {
        provider: process
            .and_then(|p| get_str(p, &["model_provider"]))
            .map(provider_name),
        request_model: process
            .and_then(|p| get_str(p, &["model_name"]))
            .map(str::to_owned),
        input_messages,
        output_messages: if parts.is_empty() {
            Vec::new()
        } else {
            vec![Message {
                role: Role::Assistant,
                name: None,
                parts,
            }]
        },
        finish_reason: finish.map(str::to_owned),
        ..LlmCall::default()
    }
}

/// An agent node's `agent_log` tree as child spans.
fn agent_log(
    b: &mut TraceBuilder,
    agent: usize,
    meta: Option<&Map<String, Value>>,
    source: &SourceRef,
) {
    let Some(Value::Array(entries)) = meta.and_then(|m| m.get("agent_log")) else {
        return;
    };
    let agent_id = b.span(agent).id.clone();
    let agent_ok = b.span(agent).status == Status::Ok;
    let mut by_log_id: HashMap<String, usize> = HashMap::new();
    let mut pending_parents: Vec<(usize, String)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(e) = entry.as_object() else { continue };
        let log_id = str_of(e, "id").map_or_else(|| format!("log{i}"), str::to_owned);
        let label = str_of(e, "label").unwrap_or("log");
        let mut span = log_span(e, &agent_id, &log_id, label, agent_ok);
        span.source = SourceRef {
            pointer: source
                .pointer
                .as_ref()
                .map(|p| format!("{p}/execution_metadata/agent_log/{i}")),
            ..source.clone()
        };
        let idx = b.push_child(agent, span);
        by_log_id.insert(log_id, idx);
        if let Some(parent) = str_of(e, "parent_id") {
            pending_parents.push((idx, parent.to_owned()));
        }
    }
    let mut missing = 0usize;
    for (idx, parent) in pending_parents {
        match by_log_id.get(&parent) {
            Some(&p) if p != idx => b.set_parent(idx, p),
            _ => missing += 1,
        }
    }
    if missing > 0 {
        b.warn(format!(
            "{missing} agent_log entries of `{agent_id}` name a parent_id not in the log; kept under the agent node"
        ));
    }
}

fn log_span(
    e: &Map<String, Value>,
    agent_id: &str,
    log_id: &str,
    label: &str,
    agent_ok: bool,
) -> Span {
    let meta = e.get("metadata");
    let output = e
        .get("data")
        .and_then(|d| d.get("output"))
        .filter(|o| !o.is_null());
    let (kind, name, model) = if let Some(tool) = label.strip_prefix("CALL ") {
        (SpanKind::Tool, tool.trim().to_owned(), None)
    } else if let Some(model) = label.strip_suffix("Thought") {
        let model = model.trim();
        (
            SpanKind::Llm,
            label.to_owned(),
            (!model.is_empty()).then(|| model.to_owned()),
        )
    } else {
        (SpanKind::Step, label.to_owned(), None)
    };
    let start = meta.and_then(|m| m.get("started_at")).and_then(time_value);
    let end = meta
        .and_then(|m| m.get("finished_at"))
        .and_then(time_value)
        .or_else(|| {
            let elapsed = meta.and_then(|m| m.get("elapsed_time")).and_then(as_f64)?;
            start?.checked_add((elapsed * 1e9) as i64)
        });
    let error_text = e
        .get("error")
        .filter(|v| !v.is_null())
        .and_then(text_of)
        .filter(|t| !t.trim().is_empty());
    let tool_response = output.and_then(|o| o.get("tool_response"));
    let response_text = tool_response.and_then(text_of).unwrap_or_default();
    let failed = str_of(e, "status") == Some("error")
        || error_text.is_some()
        || (kind == SpanKind::Tool && is_tool_error_text(&response_text));
    let mut span = Span {
        id: format!("{agent_id}/{log_id}"),
        kind,
        name: name.clone(),
        start_ns: start,
        end_ns: end,
        status: if failed {
            Status::Error
        } else if str_of(e, "status") == Some("success") {
            Status::Ok
        } else {
            Status::Unset
        },
        error: (failed.then(|| {
            parse_error(
                error_text.as_deref().unwrap_or(&response_text),
                agent_ok,
                None,
            )
        }))
        .map(Box::new),
        ..Span::default()
    };
    span.attributes
        .insert("label".to_owned(), Value::from(label));
    if let Some(Value::Object(m)) = meta {
        for (k, v) in m {
            if !v.is_null() {
                flatten_into(&format!("metadata.{k}"), v, &mut span.attributes);
            }
        }
    }
    if let Some(data) = e.get("data").filter(|d| !d.is_null()) {
        flatten_into("data", data, &mut span.attributes);
    }
    let usage = meta
        .and_then(|m| m.get("total_tokens"))
        .and_then(as_u64)
        .map(|t| Usage {
            total: Some(t),
            ..Usage::default()
        });
    let cost = meta.and_then(dify_cost);
    match kind {
        SpanKind::Llm => {
            let mut parts = Vec::new();
            if let Some(text) = output.and_then(|o| get_str(o, &["llm_response"])) {
                parts.push(Part::Text {
                    text: text.to_owned(),
                });
                span.output = Some(Box::new(Payload::text(text)));
            }
            if let Some(Value::Array(calls)) = output.and_then(|o| o.get("tool_calls")) {
                for c in calls {
                    parts.push(Part::ToolCall {
                        id: get_str(c, &["id"]).map(str::to_owned),
                        name: get_str(c, &["name"]).unwrap_or("tool").to_owned(),
                        arguments: c
                            .get("args")
                            .or_else(|| c.get("arguments"))
                            .cloned()
                            .unwrap_or(Value::Null),
                    });
                }
            }
            span.llm = Some(Box::new(LlmCall {
                provider: meta
                    .and_then(|m| get_str(m, &["provider"]))
                    .map(provider_name),
                request_model: model,
                output_messages: if parts.is_empty() {
                    Vec::new()
                } else {
                    vec![Message {
                        role: Role::Assistant,
                        name: None,
                        parts,
                    }]
                },
                ..LlmCall::default()
            }));
            span.usage = usage.map(Box::new);
            span.cost = cost;
        }
        SpanKind::Tool => {
            let args = output
                .and_then(|o| o.get("tool_call_input"))
                .cloned()
                .unwrap_or(Value::Null);
            span.input =
                ((!args.is_null()).then(|| Payload::from_json(args.clone()))).map(Box::new);
            span.output = (tool_response.map(|r| Payload::from_json(r.clone()))).map(Box::new);
            span.tool = Some(Box::new(ToolCall {
                name: output
                    .and_then(|o| get_str(o, &["tool_call_name"]))
                    .unwrap_or(&name)
                    .to_owned(),
                call_id: output
                    .and_then(|o| get_str(o, &["tool_call_id"]))
                    .map(str::to_owned),
                arguments: args,
                result: tool_response.cloned(),
                is_error: failed,
            }));
        }
        _ => {
            if usage.is_some() || cost.is_some() {
                span.usage = usage.map(Box::new);
                span.cost = cost;
                span.usage_scope = UsageScope::Subtree;
            }
        }
    }
    span
}

/// Tool output that reports a failure in its text (Dify agents pass errors as observations).
fn is_tool_error_text(text: &str) -> bool {
    looks_like_error(text) || text.to_ascii_lowercase().contains("tool invoke error")
}

// ---- messages ---------------------------------------------------------------------------------

fn is_message(o: &Map<String, Value>) -> bool {
    o.contains_key("agent_thoughts")
        || (o.contains_key("conversation_id") && o.contains_key("query"))
}

pub(crate) fn parse_messages(input: &Input) -> AdapterResult {
    let items = items_of(input, is_message)?;
    if items.is_empty() {
        return Err(AdapterError::new(
            "expected Dify messages: items with `conversation_id` and `agent_thoughts`, \
             in `{\"data\": [...]}` or an array",
        ));
    }
    // Group by conversation, keeping first-appearance order.
    let mut groups: Vec<(Option<String>, Vec<&Item<'_>>)> = Vec::new();
    for item in &items {
        let conv = str_of(item.value, "conversation_id").map(str::to_owned);
        match groups.iter_mut().find(|(c, _)| *c == conv) {
            Some((_, list)) => list.push(item),
            None => groups.push((conv, vec![item])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(conv, mut messages)| {
            messages.sort_by_key(|m| {
                m.value
                    .get("created_at")
                    .and_then(time_value)
                    .unwrap_or(i64::MIN)
            });
            Parsed::unlabelled(conversation(input, conv, &messages))
        })
        .collect())
}

const AGENT_NAME: &str = "assistant";

fn conversation(
    input: &Input,
    conv: Option<String>,
    messages: &[&Item<'_>],
) -> crate::model::Trace {
    let id = conv
        .clone()
        .unwrap_or_else(|| input.synth_id("dify-messages"));
    let mut b = TraceBuilder::new(Format::DifyMessages, id);
    let mut total = Usage::default();
    let mut total_cost: Option<Cost> = None;
    let mut currencies_agree = true;
    let mut failed = false;
    for (k, item) in messages.iter().enumerate() {
        let m = item.value;
        let step = u32::try_from(k).ok();
        let msg_id = str_of(m, "id").map_or_else(|| format!("message{k}"), str::to_owned);
        let start = m.get("created_at").and_then(time_value);
        if let Some(query) = str_of(m, "query") {
            b.push(Span {
                id: format!("{msg_id}/query"),
                kind: SpanKind::Human,
                name: "user".to_owned(),
                step,
                status: Status::Ok,
                start_ns: start,
                end_ns: start,
                input: Some(Box::new(Payload::text(query))),
                source: item.source.clone(),
                ..Span::default()
            });
        }
        let message_span = message_span(m, &msg_id, step, start, item.source.clone());
        failed |= message_span.status == Status::Error;
        if let Some(u) = &message_span.usage {
            total.add(u);
        }
        if let Some(c) = &message_span.cost {
            total_cost = Some(match total_cost.take() {
                None => c.clone(),
                Some(mut acc) => {
                    currencies_agree &= acc.currency == c.currency;
                    acc.amount += c.amount;
                    acc
                }
            });
        }
        let message_ok = message_span.status != Status::Error;
        let msg_idx = b.push(message_span);
        thoughts(&mut b, msg_idx, m, step, message_ok, &item.source);
        retrieval(&mut b, msg_idx, m, step, start, &item.source);
    }
    let first = messages.first().map(|i| i.value);
    let last = messages.last().map(|i| i.value);
    let trace = b.trace_mut();
    trace.session_id = conv;
    trace.task = first.and_then(|m| str_of(m, "query")).map(str::to_owned);
    trace.final_output = last.and_then(|m| str_of(m, "answer")).map(str::to_owned);
    trace.status = if failed { Status::Error } else { Status::Ok };
    if let Some(Value::Object(inputs)) = first.and_then(|m| m.get("inputs"))
        && !inputs.is_empty()
    {
        trace
            .metadata
            .insert("inputs".to_owned(), Value::Object(inputs.clone()));
    }
    if !total.is_empty() {
        trace.usage = total;
    }
    if currencies_agree {
        trace.cost = total_cost;
    }
    b.finish()
}

fn message_span(
    m: &Map<String, Value>,
    msg_id: &str,
    step: Option<u32>,
    start: Option<i64>,
    source: SourceRef,
) -> Span {
    let error_text = m
        .get("error")
        .filter(|e| !e.is_null())
        .and_then(text_of)
        .filter(|t| !t.trim().is_empty());
    let failed = error_text.is_some() || str_of(m, "status") == Some("error");
    let last_thought = m
        .get("agent_thoughts")
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .filter_map(|t| t.get("created_at").and_then(time_value))
                .max()
        });
    let mut span = Span {
        id: msg_id.to_owned(),
        kind: SpanKind::Agent,
        name: AGENT_NAME.to_owned(),
        step,
        start_ns: start,
        end_ns: last_thought.or(start),
        time_inferred: true,
        status: if failed { Status::Error } else { Status::Ok },
        error: (failed.then(|| {
            parse_error(
                error_text.as_deref().unwrap_or("message failed"),
                false,
                None,
            )
        }))
        .map(Box::new),
        input: (str_of(m, "query").map(Payload::text)).map(Box::new),
        output: (str_of(m, "answer").map(Payload::text)).map(Box::new),
        source,
        ..Span::default()
    };
    if let Some(parent) = str_of(m, "parent_message_id") {
        span.links.push(crate::model::Link {
            kind: LinkKind::FollowsFrom,
            target: parent.to_owned(),
        });
    }
    for key in [
        "status",
        "feedback",
        "message_files",
        "provider_response_latency",
        "from_source",
    ] {
        if let Some(v) = m
            .get(key)
            .filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        {
            flatten_into(key, v, &mut span.attributes);
        }
    }
    // Console messages carry per-message usage and price: an aggregate over the thoughts.
    let usage = Usage {
        input: m.get("message_tokens").and_then(as_u64),
        output: m.get("answer_tokens").and_then(as_u64),
        ..Usage::default()
    };
    if !usage.is_empty() {
        span.usage = Some(Box::new(usage));
        span.usage_scope = UsageScope::Subtree;
    }
    if let Some(cost) = dify_cost(&Value::Object(
        ["total_price", "currency"]
            .iter()
            .filter_map(|k| m.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect(),
    )) {
        span.cost = Some(cost);
        span.usage_scope = UsageScope::Subtree;
    }
    span
}

/// One value per tool from a `tool_input`/`observation` string: a JSON object keyed by tool
/// name, else the whole text for a lone tool.
fn per_tool(raw: Option<&Value>, tool: &str, tools: usize) -> Value {
    let parsed = match raw {
        Some(Value::String(s)) if !s.trim().is_empty() => maybe_json(s),
        Some(v @ Value::Object(_)) => v.clone(),
        _ => return Value::Null,
    };
    match &parsed {
        Value::Object(o) if o.contains_key(tool) => o.get(tool).cloned().unwrap_or(Value::Null),
        _ if tools == 1 => parsed,
        _ => Value::Null,
    }
}

fn thoughts(
    b: &mut TraceBuilder,
    msg: usize,
    m: &Map<String, Value>,
    step: Option<u32>,
    message_ok: bool,
    source: &SourceRef,
) {
    let Some(Value::Array(list)) = m.get("agent_thoughts") else {
        return;
    };
    let mut ordered: Vec<(usize, &Map<String, Value>)> = list
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_object().map(|o| (i, o)))
        .collect();
    ordered.sort_by_key(|(i, t)| (t.get("position").and_then(as_u64).unwrap_or(u64::MAX), *i));
    let starts: Vec<Option<i64>> = ordered
        .iter()
        .map(|(_, t)| t.get("created_at").and_then(time_value))
        .collect();
    let msg_id = b.span(msg).id.clone();
    for (n, (i, t)) in ordered.iter().enumerate() {
        let start = starts.get(n).copied().flatten();
        let next = starts.get(n + 1).copied().flatten();
        let thought_id =
            str_of(t, "id").map_or_else(|| format!("{msg_id}/thought{i}"), str::to_owned);
        let text = str_of(t, "thought").unwrap_or_default();
        let tools: Vec<&str> = str_of(t, "tool")
            .map(|s| {
                s.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(Part::Text {
                text: text.to_owned(),
            });
        }
        let calls: Vec<(String, Value)> = tools
            .iter()
            .map(|tool| {
                (
                    (*tool).to_owned(),
                    per_tool(t.get("tool_input"), tool, tools.len()),
                )
            })
            .collect();
        for (tool, args) in &calls {
            parts.push(Part::ToolCall {
                id: None,
                name: tool.clone(),
                arguments: args.clone(),
            });
        }
        let pointer = source
            .pointer
            .as_ref()
            .map(|p| format!("{p}/agent_thoughts/{i}"));
        let thought_source = SourceRef {
            pointer: pointer.clone(),
            ..source.clone()
        };
        let mut span = Span {
            id: thought_id.clone(),
            kind: SpanKind::Llm,
            name: "thought".to_owned(),
            agent: Some(AGENT_NAME.to_owned()),
            step,
            start_ns: start,
            end_ns: next.or(start),
            time_inferred: true,
            status: Status::Ok,
            output: ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new),
            llm: Some(Box::new(LlmCall {
                output_messages: if parts.is_empty() {
                    Vec::new()
                } else {
                    vec![Message {
                        role: Role::Assistant,
                        name: None,
                        parts,
                    }]
                },
                ..LlmCall::default()
            })),
            source: thought_source.clone(),
            ..Span::default()
        };
        if let Some(p) = t.get("position") {
            span.attributes.insert("position".to_owned(), p.clone());
        }
        if let Some(Value::Array(files)) = t.get("files")
            && !files.is_empty()
        {
            span.attributes
                .insert("files".to_owned(), Value::Array(files.clone()));
        }
        let llm = b.push_child(msg, span);
        for (j, (tool, args)) in calls.into_iter().enumerate() {
            let observation = per_tool(t.get("observation"), &tool, tools.len());
            let observed = text_of(&observation).unwrap_or_default();
            let failed = is_tool_error_text(&observed);
            let mut tool_span = Span {
                id: format!("{thought_id}/{j}"),
                kind: SpanKind::Tool,
                name: tool.clone(),
                step,
                start_ns: start,
                end_ns: next.or(start),
                time_inferred: true,
                status: if failed { Status::Error } else { Status::Ok },
                error: (failed.then(|| parse_error(&observed, message_ok, None))).map(Box::new),
                input: ((!args.is_null()).then(|| Payload::from_json(args.clone()))).map(Box::new),
                output: ((!observation.is_null()).then(|| Payload::from_json(observation.clone())))
                    .map(Box::new),
                tool: Some(Box::new(ToolCall {
                    name: tool.clone(),
                    call_id: None,
                    arguments: args,
                    result: (!observation.is_null()).then_some(observation),
                    is_error: failed,
                })),
                source: thought_source.clone(),
                ..Span::default()
            };
            if let Some(label) = t
                .get("tool_labels")
                .and_then(|l| l.get(&tool))
                .and_then(|l| get_str(l, &["en_US"]))
            {
                tool_span
                    .attributes
                    .insert("label".to_owned(), Value::from(label));
            }
            b.push_child(llm, tool_span);
        }
    }
}

/// `retriever_resources` of a message as one Retrieval span.
fn retrieval(
    b: &mut TraceBuilder,
    msg: usize,
    m: &Map<String, Value>,
    step: Option<u32>,
    start: Option<i64>,
    source: &SourceRef,
) {
    let Some(Value::Array(resources)) = m.get("retriever_resources") else {
        return;
    };
    if resources.is_empty() {
        return;
    }
    let msg_id = b.span(msg).id.clone();
    let mut attributes = BTreeMap::new();
    attributes.insert("documents".to_owned(), Value::from(resources.len()));
    b.push_child(
        msg,
        Span {
            id: format!("{msg_id}/retrieval"),
            kind: SpanKind::Retrieval,
            name: "retrieval".to_owned(),
            step,
            start_ns: start,
            end_ns: start,
            status: Status::Ok,
            output: Some(Box::new(Payload::from_json(Value::Array(
                resources.clone(),
            )))),
            attributes,
            source: source.clone(),
            ..Span::default()
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn per_tool_values() {
        let raw = json!("{\"a\": {\"x\": 1}, \"b\": \"text\"}");
        assert_eq!(per_tool(Some(&raw), "a", 2), json!({"x": 1}));
        assert_eq!(per_tool(Some(&raw), "b", 2), json!("text"));
        assert_eq!(per_tool(Some(&raw), "c", 2), Value::Null);
        assert_eq!(per_tool(Some(&json!("plain")), "a", 1), json!("plain"));
        assert_eq!(per_tool(Some(&json!("")), "a", 1), Value::Null);
        assert_eq!(per_tool(Some(&json!(3)), "a", 1), Value::Null);
    }

    #[test]
    fn prices_and_providers() {
        let cost = dify_cost(&json!({"total_price": "5.52e-05", "currency": "RMB"})).unwrap();
        assert!((cost.amount - 5.52e-05).abs() < 1e-12);
        assert_eq!(cost.currency, "RMB");
        assert!(dify_cost(&json!({"total_price": "0"})).is_none());
        assert!(dify_cost(&json!({"total_price": "abc"})).is_none());
        assert_eq!(provider_name("langgenius/openai/openai"), "openai");
        assert_eq!(node_kind("parameter-extractor"), SpanKind::Llm);
        assert_eq!(node_kind("if-else"), SpanKind::Step);
    }

    #[test]
    fn text_is_refused() {
        let input = Input {
            file: "x.txt".into(),
            doc: Doc::Text("x".into()),
            companions: Vec::new(),
            record: None,
        };
        assert!(parse_nodes(&input).is_err());
        assert!(parse_messages(&input).is_err());
        let input = Input {
            file: "x.json".into(),
            doc: Doc::Json(json!({"data": [1, 2]})),
            companions: Vec::new(),
            record: None,
        };
        assert!(
            parse_nodes(&input)
                .unwrap_err()
                .message
                .contains("node_type")
        );
        assert!(
            parse_messages(&input)
                .unwrap_err()
                .message
                .contains("agent_thoughts")
        );
    }
}

#[cfg(test)]
mod fixture_tests {
    use crate::model::{CostSource, Format, LinkKind, SpanKind, Status, UsageScope};
    use crate::testing::{fixture, inline};

    #[test]
    fn node_executions_with_two_agents() {
        let (summary, traces) = fixture("dify-nodes/visa-chatflow-nodes.json");
        assert_eq!(summary.format, Format::DifyNodes);
        let t = &traces[0].trace;
        assert_eq!(t.id, "a7c1e2d3-4b5f-4a6e-8c7d-9e0f1a2b3c4d");
        assert_eq!(
            t.session_id.as_deref(),
            Some("5e6f7a8b-1111-4c2d-9e3f-000000000777")
        );
        assert_eq!(t.status, Status::Error, "Notify CRM failed");
        assert!(
            t.task
                .as_deref()
                .unwrap()
                .starts_with("I have a Kenyan passport")
        );
        assert!(
            t.final_output
                .as_deref()
                .unwrap()
                .starts_with("You need a short-term visa")
        );
        // RMB and USD prices are not added together.
        assert_eq!(
            t.warnings,
            ["costs are in several currencies (RMB, USD); no total is given"]
        );
        assert!(t.cost.is_none());
        let agents: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(agents, ["Visa Agent", "Booking Agent"]);

        // Iteration passes sit under the iteration node.
        let iteration = t
            .spans
            .iter()
            .position(|s| s.name == "Check Each Document")
            .unwrap();
        let passes: Vec<_> = t.spans.iter().filter(|s| s.name == "OCR Scan").collect();
        assert_eq!(passes.len(), 2);
        assert!(passes.iter().all(|s| s.parent == Some(iteration as u32)));
        let failed_pass = passes[1];
        assert_eq!(failed_pass.status, Status::Error);
        let err = failed_pass.error.as_ref().unwrap();
        assert!(err.handled);
        assert_eq!(err.kind.as_deref(), Some("fail-branch"));
        assert_eq!(failed_pass.tool.as_ref().unwrap().name, "OCR Scan");
        assert_eq!(
            failed_pass.attributes["execution_metadata.iteration_index"],
            1
        );

        let crm = t.spans.iter().find(|s| s.name == "Notify CRM").unwrap();
        assert_eq!(crm.kind, SpanKind::Tool);
        assert!(!crm.error.as_ref().unwrap().handled);
        assert_eq!(crm.step, Some(9));
        let reply = t.spans.iter().find(|s| s.name == "Reply").unwrap();
        assert!(
            crm.links
                .iter()
                .any(|l| l.kind == LinkKind::DataFlow && l.target == reply.id)
        );

        let classify = t
            .spans
            .iter()
            .find(|s| s.name == "Classify Intent")
            .unwrap();
        assert_eq!(classify.kind, SpanKind::Llm);
        let llm = classify.llm.as_ref().unwrap();
        assert_eq!(llm.provider.as_deref(), Some("deepseek"));
        assert_eq!(llm.request_model.as_deref(), Some("deepseek-chat"));
        assert_eq!(llm.input_messages.len(), 2);
        let cost = classify.cost.as_ref().unwrap();
        assert_eq!(
            (cost.currency.as_str(), cost.source),
            ("RMB", CostSource::Reported)
        );
        assert_eq!(classify.usage.as_ref().unwrap().input, Some(188));
        assert!(classify.end_ns.unwrap() - classify.start_ns.unwrap() == 840_000_000);

        // Agent nodes: aggregates kept as Subtree; the log gives rounds, thoughts and calls.
        let visa = t.spans.iter().position(|s| s.name == "Visa Agent").unwrap();
        assert_eq!(t.spans[visa].usage_scope, UsageScope::Subtree);
        let calls: Vec<_> = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Tool && s.agent.as_deref() == Some("Visa Agent"))
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].status,
            Status::Error,
            "tool invoke error in the response"
        );
        assert!(calls[0].error.as_ref().unwrap().handled);
        assert_eq!(
            calls[0].tool.as_ref().unwrap().call_id.as_deref(),
            Some("call_e1")
        );
        let round = &t.spans[calls[0].parent.unwrap() as usize];
        assert_eq!(
            (round.name.as_str(), round.kind),
            ("ROUND 1", SpanKind::Step)
        );
        let thoughts: Vec<_> = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Llm && s.agent.as_deref() == Some("Visa Agent"))
            .collect();
        assert_eq!(thoughts.len(), 3);
        assert_eq!(
            thoughts[0].llm.as_ref().unwrap().request_model.as_deref(),
            Some("gpt-4o-mini")
        );
        let booking_call = t
            .spans
            .iter()
            .find(|s| s.name == "book_appointment")
            .unwrap();
        assert_eq!(
            booking_call.error.as_ref().unwrap().message,
            "slot already taken"
        );

        // Usage: LLM nodes plus thoughts (which report only totals); agent aggregates excluded.
        assert_eq!(t.usage.input, Some(188));
        assert_eq!(t.usage.total, Some(194 + 640 + 705 + 795 + 472 + 489));
        assert_eq!(
            t.spans_of(SpanKind::Handoff).count(),
            0,
            "Dify has no agent-to-agent handoff"
        );
    }

    #[test]
    fn messages_one_trace_per_conversation() {
        let (summary, traces) = fixture("dify-messages/store-assistant-messages.json");
        assert_eq!(summary.format, Format::DifyMessages);
        assert_eq!(traces.len(), 2);
        let t = &traces[0].trace;
        assert_eq!(t.id, "77d0c1b2-aaaa-4bbb-8ccc-000000000101");
        assert_eq!(t.status, Status::Ok);
        assert!(
            t.task.as_deref().unwrap().starts_with("Where is my order"),
            "messages sorted by time"
        );
        assert_eq!(
            t.final_output.as_deref(),
            Some("I could not confirm Sunday hours for the Berlin store.")
        );
        assert_eq!(t.metadata["inputs"]["plan"], "pro");
        let tools: Vec<&str> = t
            .spans_of(SpanKind::Tool)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(tools, ["order_status", "store_hours", "store_hours"]);
        let multi = t.spans.iter().find(|s| s.name == "order_status").unwrap();
        assert_eq!(multi.tool.as_ref().unwrap().arguments["order_id"], "4471");
        assert_eq!(multi.attributes["label"], "Order Status");
        assert_eq!(t.spans[multi.parent.unwrap() as usize].kind, SpanKind::Llm);
        let failed = t.spans.iter().find(|s| s.status == Status::Error).unwrap();
        assert_eq!(failed.tool.as_ref().unwrap().name, "store_hours");
        assert!(failed.error.as_ref().unwrap().handled);
        assert_eq!(failed.step, Some(1));
        assert!(failed.time_inferred);
        // Console usage is per message: kept as aggregates, summed for the trace.
        assert_eq!(t.usage.input, Some(1288 + 903));
        assert_eq!(t.usage.output, Some(57 + 41));
        let cost = t.cost.as_ref().unwrap();
        assert_eq!(cost.source, CostSource::Reported);
        assert!((cost.amount - 0.001_460_5).abs() < 1e-9);
        let second = t
            .spans
            .iter()
            .find(|s| s.id == "5a4b3c2d-0002-4e5f-9a0b-1c2d3e4f5a02")
            .unwrap();
        assert_eq!(second.usage_scope, UsageScope::Subtree);
        assert!(second.links.iter().any(|l| l.kind == LinkKind::FollowsFrom));
        assert_eq!(t.spans_of(SpanKind::Retrieval).count(), 1);
        assert_eq!(t.spans_of(SpanKind::Human).count(), 2);

        let failed_conv = &traces[1].trace;
        assert_eq!(failed_conv.status, Status::Error);
        let message = failed_conv
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Agent)
            .unwrap();
        assert!(
            message
                .error
                .as_ref()
                .unwrap()
                .message
                .contains("Rate limit")
        );
        let tool = failed_conv.spans_of(SpanKind::Tool).next().unwrap();
        assert_eq!(
            tool.tool.as_ref().unwrap().arguments,
            "plain text request: cancel"
        );
        assert!(
            !tool.error.as_ref().unwrap().handled,
            "the message itself failed"
        );
    }

    #[test]
    fn bare_arrays_and_missing_fields() {
        let text = r#"[
            {"node_type": "start", "node_id": "s", "predecessor_node_id": null},
            {"node_type": "iteration", "node_id": "it", "execution_metadata": {}, "status": "running"},
            {"node_type": "code", "node_id": "c", "execution_metadata": {"loop_id": "nope"}, "status": "stopped", "created_at": "x", "elapsed_time": -1, "index": 0},
            {"node_type": "agent", "node_id": "a", "execution_metadata": {"agent_log": [3, {"label": "CALL x", "parent_id": "ghost", "status": "error"}, {"id": "t", "label": "Thought", "data": {"output": {"tool_calls": "no"}}}]}}
        ]"#;
        let (summary, traces) = inline("nodes.json", text);
        assert_eq!(summary.format, Format::DifyNodes);
        let t = &traces[0].trace;
        assert_eq!(t.status, Status::Error, "a stopped node");
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("whose execution is not in the file")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("parent_id not in the log")),
            "{:?}",
            t.warnings
        );
        let code = t.spans.iter().find(|s| s.id == "c").unwrap();
        assert_eq!(
            code.error.as_ref().unwrap().kind.as_deref(),
            Some("stopped")
        );
        let call = t.spans.iter().find(|s| s.name == "x").unwrap();
        assert_eq!(call.status, Status::Error);
        assert!(
            t.spans
                .iter()
                .any(|s| s.kind == SpanKind::Llm && s.name == "Thought")
        );
    }

    #[test]
    fn a_single_message_object() {
        let text = r#"{"id": "m", "conversation_id": "c", "query": "hi", "answer": "hello", "created_at": 1767225600,
            "agent_thoughts": [{"id": "t", "position": 1, "thought": "hello", "tool": " ;search; ", "tool_input": "{bad json", "observation": null}]}"#;
        let (summary, traces) = inline("message.json", text);
        assert_eq!(summary.format, Format::DifyMessages);
        let t = &traces[0].trace;
        assert_eq!(t.id, "c");
        let tool = t.spans_of(SpanKind::Tool).next().unwrap();
        assert_eq!(tool.name, "search");
        assert_eq!(tool.tool.as_ref().unwrap().arguments, "{bad json");
        assert_eq!(tool.status, Status::Ok);
        assert!(t.usage.is_empty());
    }
}
