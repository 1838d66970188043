//! OTLP/JSON writer (`pisama convert --to otlp`): one [`Trace`] as one `TracesData` with
//! OpenTelemetry GenAI attributes (semantic conventions `gen-ai/1.42.0`), so any OTLP tool can
//! read it, plus `pisama.*` attributes that carry what OpenTelemetry has no place for. The OTLP
//! adapter reads both back, so a round trip keeps agents, span kinds, steps, tool calls,
//! errors (handled or not), handoffs, token usage and costs.
//!
//! Per span:
//! - `gen_ai.operation.name` from the kind (`invoke_agent`, `chat`, `execute_tool`,
//!   `embeddings`, `retrieval`); other kinds have no GenAI operation and rely on
//!   `pisama.span.kind`.
//! - `gen_ai.agent.name` and `pisama.agent` for the span's agent; agent spans also get
//!   `gen_ai.agent.id` / `gen_ai.agent.description` from the trace's agent list.
//! - Model calls: provider, models, `gen_ai.request.*` parameters, finish reasons, and the
//!   messages as GenAI JSON strings (`{role, parts[]}`).
//! - Usage as `gen_ai.usage.*` (input includes cached tokens, as in the canonical model), with
//!   `pisama.usage.total`, `pisama.usage.scope` and `pisama.usage.estimated`.
//! - Tools: `gen_ai.tool.name`, `gen_ai.tool.call.id|arguments|result` and
//!   `pisama.tool.is_error`.
//! - Errors: status code 2 with the message, `error.type`, and an `exception` event unless the
//!   span already has one; `pisama.error.handled` for errors the workflow caught.
//! - Inputs and outputs as `input.value` / `output.value` (the keys Phoenix and others read).
//! - Ids: the native id when it is hex of the right length, else a stable hash, with the
//!   original kept in `pisama.span.id` (and the trace id in the resource's `pisama.trace.id`).
//! - `pisama.llm` / `pisama.tool` (booleans) only where a span's model-call or tool details do
//!   not follow from its kind (an agent span that carries a model, a tool span without a call).
//! - Every other canonical attribute is written under its own key, after the mapped ones.
//!
//! Trace-level fields (task, final output, status, session, declared agents, metadata, the
//! source format) are `pisama.*` resource attributes.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::model::{
    CostSource, HandoffMode, Message, Part, Payload, Role, Span, SpanKind, Status, Trace,
    UsageScope,
};
use crate::util::{maybe_json, stable_id};

/// The GenAI semantic-conventions schema the writer follows.
const GENAI_SCHEMA_URL: &str = "https://opentelemetry.io/schemas/gen-ai/1.42.0";

/// Canonical attributes that the OTLP adapter derives itself; copying them back would be stale.
const DERIVED_KEYS: [&str; 2] = ["otel.span_kind", "otel.trace_state"];

/// Writes a trace as OTLP/JSON `TracesData`.
pub fn to_otlp(trace: &Trace) -> Value {
    let trace_id = hex_id(&trace.id, 16).unwrap_or_else(|| hashed_id(&[&trace.id], 16));
    let span_ids = span_ids(trace);
    let spans: Vec<Value> = trace
        .spans
        .iter()
        .enumerate()
        .map(|(i, span)| span_json(trace, span, &trace_id, &span_ids, i))
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": resource_attributes(trace)},
            "scopeSpans": [{
                "scope": {"name": "pisama", "version": env!("CARGO_PKG_VERSION")},
                "schemaUrl": GENAI_SCHEMA_URL,
                "spans": spans,
            }],
        }],
    })
}

/// `id` lower-cased when it is `bytes` bytes of hex and not all zeros.
fn hex_id(id: &str, bytes: usize) -> Option<String> {
    let ok = id.len() == bytes * 2
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !id.bytes().all(|b| b == b'0');
    ok.then(|| id.to_ascii_lowercase())
}

/// A stable hex id of `bytes` (8 or 16) bytes from `parts`.
fn hashed_id(parts: &[&str], bytes: usize) -> String {
    let mut id = stable_id(parts);
    while id.len() < bytes * 2 {
        let salted: Vec<&str> = parts.iter().copied().chain([id.as_str()]).collect();
        id.push_str(&stable_id(&salted));
    }
    id.truncate(bytes * 2);
    id
}

/// One unique OTLP span id per span: the native id when it is already a span id.
fn span_ids(trace: &Trace) -> Vec<String> {
    let mut used: HashSet<String> = HashSet::with_capacity(trace.spans.len());
    let mut ids = Vec::with_capacity(trace.spans.len());
    for (i, span) in trace.spans.iter().enumerate() {
        let native = hex_id(&span.id, 8).filter(|id| !used.contains(id));
        let id = native.unwrap_or_else(|| {
            let position = i.to_string();
            let mut salt = 0u32;
            loop {
                let candidate = hashed_id(&[&trace.id, &span.id, &position, &salt.to_string()], 8);
                if !used.contains(&candidate) && hex_id(&candidate, 8).is_some() {
                    break candidate;
                }
                salt += 1;
            }
        });
        used.insert(id.clone());
        ids.push(id);
    }
    ids
}

fn resource_attributes(trace: &Trace) -> Vec<Value> {
    let mut attrs = AttrList::default();
    let service = trace
        .metadata
        .get("service.name")
        .and_then(Value::as_str)
        .unwrap_or("pisama");
    attrs.put("service.name", Value::String(service.to_owned()));
    attrs.put("pisama.trace.id", Value::String(trace.id.clone()));
    // A trace read from an earlier export keeps naming its original source.
    let source_format = trace
        .metadata
        .get("pisama.source.format")
        .and_then(Value::as_str)
        .unwrap_or(trace.format.name());
    attrs.put(
        "pisama.source.format",
        Value::String(source_format.to_owned()),
    );
    let source_version = trace
        .metadata
        .get("pisama.source.format_version")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| trace.format_version.clone());
    attrs.put_opt(
        "pisama.source.format_version",
        source_version.map(Value::String),
    );
    attrs.put_opt(
        "pisama.session.id",
        trace.session_id.clone().map(Value::String),
    );
    attrs.put_opt("pisama.trace.task", trace.task.clone().map(Value::String));
    attrs.put_opt(
        "pisama.trace.final_output",
        trace.final_output.clone().map(Value::String),
    );
    attrs.put(
        "pisama.trace.status",
        Value::String(status_name(trace.status).to_owned()),
    );
    if !trace.agents.is_empty() {
        attrs.put("pisama.agents", Value::String(json_text(&trace.agents)));
    }
    let metadata: Map<String, Value> = trace
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with("pisama.source.") && *k != "service.name")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !metadata.is_empty() {
        attrs.put(
            "pisama.metadata",
            Value::String(Value::Object(metadata).to_string()),
        );
    }
    attrs.items
}

fn span_json(trace: &Trace, span: &Span, trace_id: &str, ids: &[String], i: usize) -> Value {
    let mut attrs = AttrList::default();
    attrs.put(
        "pisama.span.kind",
        Value::String(span.kind.name().to_owned()),
    );
    if let Some(op) = operation_of(span.kind) {
        attrs.put("gen_ai.operation.name", Value::String(op.to_owned()));
    }
    if ids[i] != span.id {
        attrs.put("pisama.span.id", Value::String(span.id.clone()));
    }
    if let Some(agent) = &span.agent {
        attrs.put("gen_ai.agent.name", Value::String(agent.clone()));
        attrs.put("pisama.agent", Value::String(agent.clone()));
        if span.kind == SpanKind::Agent
            && let Some(info) = trace.agents.iter().find(|a| &a.name == agent)
        {
            attrs.put_opt("gen_ai.agent.id", info.id.clone().map(Value::String));
            attrs.put_opt(
                "gen_ai.agent.description",
                info.role.clone().map(Value::String),
            );
        }
    }
    if span.parent.is_none() {
        attrs.put_opt(
            "gen_ai.conversation.id",
            trace.session_id.clone().map(Value::String),
        );
    }
    attrs.put_opt("pisama.step", span.step.map(Value::from));
    if span.time_inferred {
        attrs.put("pisama.time_inferred", Value::Bool(true));
    }
    if !span.links.is_empty() {
        attrs.put("pisama.links", Value::String(json_text(&span.links)));
    }
    put_payload(&mut attrs, "input", span.input.as_deref());
    put_payload(&mut attrs, "output", span.output.as_deref());
    put_llm(&mut attrs, span);
    put_usage_and_cost(&mut attrs, span);
    put_tool(&mut attrs, span);
    if let Some(h) = &span.handoff {
        attrs.put("pisama.handoff.to", Value::String(h.to.clone()));
        attrs.put_opt("pisama.handoff.from", h.from.clone().map(Value::String));
        attrs.put(
            "pisama.handoff.mode",
            Value::String(handoff_mode_name(h.mode).to_owned()),
        );
    }
    let error = span.error.as_ref().filter(|_| span.status == Status::Error);
    if let Some(e) = error {
        attrs.put(
            "error.type",
            Value::String(e.kind.clone().unwrap_or_else(|| "_OTHER".to_owned())),
        );
        if e.handled {
            attrs.put("pisama.error.handled", Value::Bool(true));
        }
    }
    for (k, v) in &span.attributes {
        let stale = DERIVED_KEYS.contains(&k.as_str()) || (k == "error.type" && error.is_none());
        if !stale {
            attrs.put(k, v.clone());
        }
    }

    let mut events: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            let mut event = json!({
                "name": e.name,
                "attributes": e.attributes.iter().map(|(k, v)| key_value(k, v.clone())).collect::<Vec<_>>(),
            });
            if let Some(t) = e.time_ns {
                event["timeUnixNano"] = Value::String(t.to_string());
            }
            event
        })
        .collect();
    if let Some(e) = error
        && !span.events.iter().any(|ev| ev.name == "exception")
    {
        let mut event_attrs = AttrList::default();
        event_attrs.put_opt("exception.type", e.kind.clone().map(Value::String));
        event_attrs.put("exception.message", Value::String(e.message.clone()));
        event_attrs.put_opt("exception.stacktrace", e.stack.clone().map(Value::String));
        let mut event = json!({"name": "exception", "attributes": event_attrs.items});
        if let Some(t) = span.end_ns.or(span.start_ns) {
            event["timeUnixNano"] = Value::String(t.to_string());
        }
        events.push(event);
    }

    let otel_kind = match span
        .attributes
        .get("otel.span_kind")
        .and_then(Value::as_str)
    {
        Some("server") => 2,
        Some("client") => 3,
        Some("producer") => 4,
        Some("consumer") => 5,
        Some("internal") => 1,
        _ if matches!(
            span.kind,
            SpanKind::Llm | SpanKind::Embedding | SpanKind::Retrieval
        ) =>
        {
            3
        }
        _ => 1,
    };
    let mut out = json!({
        "traceId": trace_id,
        "spanId": ids[i],
        "parentSpanId": span.parent.and_then(|p| ids.get(p as usize)).cloned().unwrap_or_default(),
        "name": span.name,
        "kind": otel_kind,
        "startTimeUnixNano": span.start_ns.map_or_else(|| "0".to_owned(), |t| t.to_string()),
        "endTimeUnixNano": span.end_ns.map_or_else(|| "0".to_owned(), |t| t.to_string()),
        "attributes": attrs.items,
    });
    if !events.is_empty() {
        out["events"] = Value::Array(events);
    }
    match span.status {
        Status::Error => {
            let message = span
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            out["status"] = json!({"code": 2, "message": message});
        }
        Status::Ok => out["status"] = json!({"code": 1}),
        Status::Unset => {}
    }
    out
}

fn operation_of(kind: SpanKind) -> Option<&'static str> {
    match kind {
        SpanKind::Agent => Some("invoke_agent"),
        SpanKind::Llm => Some("chat"),
        SpanKind::Tool => Some("execute_tool"),
        SpanKind::Embedding => Some("embeddings"),
        SpanKind::Retrieval => Some("retrieval"),
        SpanKind::Step
        | SpanKind::Handoff
        | SpanKind::Human
        | SpanKind::System
        | SpanKind::Other => None,
    }
}

/// `input.value` with a MIME type. JSON payloads whose text is not the JSON itself keep the
/// JSON in `pisama.<which>.json`; plain text that looks like JSON is marked `text/plain` so it
/// is not parsed on the way back.
fn put_payload(attrs: &mut AttrList, which: &str, payload: Option<&Payload>) {
    let Some(p) = payload else { return };
    attrs.put(&format!("{which}.value"), Value::String(p.text.clone()));
    let text_is_json = p.json.as_ref().is_some_and(|j| maybe_json(&p.text) == *j);
    let mime = p.mime.clone().or_else(|| {
        if text_is_json {
            Some("application/json".to_owned())
        } else if p.json.is_none()
            && matches!(maybe_json(&p.text), Value::Object(_) | Value::Array(_))
        {
            Some("text/plain".to_owned())
        } else {
            None
        }
    });
    attrs.put_opt(&format!("{which}.mime_type"), mime.map(Value::String));
    if let Some(json) = p.json.as_ref().filter(|_| !text_is_json) {
        attrs.put(
            &format!("pisama.{which}.json"),
            Value::String(json.to_string()),
        );
    }
}

fn put_llm(attrs: &mut AttrList, span: &Span) {
    let default = matches!(span.kind, SpanKind::Llm | SpanKind::Embedding);
    if span.llm.is_some() != default {
        attrs.put("pisama.llm", Value::Bool(span.llm.is_some()));
    }
    let Some(llm) = &span.llm else { return };
    attrs.put_opt(
        "gen_ai.provider.name",
        llm.provider.clone().map(Value::String),
    );
    attrs.put_opt(
        "gen_ai.request.model",
        llm.request_model.clone().map(Value::String),
    );
    attrs.put_opt(
        "gen_ai.response.model",
        llm.response_model.clone().map(Value::String),
    );
    if let Some(reason) = &llm.finish_reason {
        attrs.put("gen_ai.response.finish_reasons", json!([reason]));
    }
    for (k, v) in &llm.params {
        attrs.put(&format!("gen_ai.request.{k}"), v.clone());
    }
    if !llm.input_messages.is_empty() {
        let messages: Vec<Value> = llm
            .input_messages
            .iter()
            .map(|m| message_json(m, None))
            .collect();
        attrs.put(
            "gen_ai.input.messages",
            Value::String(Value::Array(messages).to_string()),
        );
    }
    if !llm.output_messages.is_empty() {
        let last = llm.output_messages.len() - 1;
        let messages: Vec<Value> = llm
            .output_messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                message_json(
                    m,
                    (i == last)
                        .then_some(llm.finish_reason.as_deref())
                        .flatten(),
                )
            })
            .collect();
        attrs.put(
            "gen_ai.output.messages",
            Value::String(Value::Array(messages).to_string()),
        );
    }
}

/// A GenAI message: `{role, parts[], name?, finish_reason?}`.
fn message_json(m: &Message, finish_reason: Option<&str>) -> Value {
    let parts: Vec<Value> = m
        .parts
        .iter()
        .map(|p| match p {
            Part::Text { text } => json!({"type": "text", "content": text}),
            Part::Reasoning { text } => json!({"type": "reasoning", "content": text}),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                let mut part = json!({"type": "tool_call", "name": name, "arguments": arguments});
                if let Some(id) = id {
                    part["id"] = Value::String(id.clone());
                }
                part
            }
            Part::ToolResult {
                id,
                content,
                is_error,
            } => {
                let mut part = json!({"type": "tool_call_response", "response": content});
                if let Some(id) = id {
                    part["id"] = Value::String(id.clone());
                }
                if *is_error {
                    part["is_error"] = Value::Bool(true);
                }
                part
            }
            Part::Media { mime, uri } => {
                let mut part = json!({"type": "uri"});
                if let Some(mime) = mime {
                    part["mime_type"] = Value::String(mime.clone());
                }
                if let Some(uri) = uri {
                    part["uri"] = Value::String(uri.clone());
                }
                part
            }
        })
        .collect();
    let mut out = json!({"role": role_name(m.role), "parts": parts});
    if let Some(name) = &m.name {
        out["name"] = Value::String(name.clone());
    }
    if let Some(reason) = finish_reason {
        out["finish_reason"] = Value::String(reason.to_owned());
    }
    out
}

fn put_usage_and_cost(attrs: &mut AttrList, span: &Span) {
    if let Some(u) = &span.usage {
        attrs.put_opt("gen_ai.usage.input_tokens", u.input.map(Value::from));
        attrs.put_opt("gen_ai.usage.output_tokens", u.output.map(Value::from));
        attrs.put_opt(
            "gen_ai.usage.cache_read.input_tokens",
            u.cache_read.map(Value::from),
        );
        attrs.put_opt(
            "gen_ai.usage.cache_creation.input_tokens",
            u.cache_write.map(Value::from),
        );
        attrs.put_opt(
            "gen_ai.usage.reasoning.output_tokens",
            u.reasoning.map(Value::from),
        );
        attrs.put_opt("pisama.usage.total", u.total.map(Value::from));
        if u.estimated {
            attrs.put("pisama.usage.estimated", Value::Bool(true));
        }
        let scope = match span.usage_scope {
            UsageScope::SelfOnly => "self_only",
            UsageScope::Subtree => "subtree",
        };
        attrs.put("pisama.usage.scope", Value::String(scope.to_owned()));
    }
    if let Some(c) = &span.cost {
        attrs.put("pisama.cost.amount", json!(c.amount));
        attrs.put("pisama.cost.currency", Value::String(c.currency.clone()));
        let source = match c.source {
            CostSource::Reported => "reported",
            CostSource::Estimated => "estimated",
        };
        attrs.put("pisama.cost.source", Value::String(source.to_owned()));
    }
}

fn put_tool(attrs: &mut AttrList, span: &Span) {
    if span.tool.is_some() != (span.kind == SpanKind::Tool) {
        attrs.put("pisama.tool", Value::Bool(span.tool.is_some()));
    }
    let Some(tool) = &span.tool else { return };
    attrs.put("gen_ai.tool.name", Value::String(tool.name.clone()));
    attrs.put_opt(
        "gen_ai.tool.call.id",
        tool.call_id.clone().map(Value::String),
    );
    if !tool.arguments.is_null() {
        attrs.put(
            "gen_ai.tool.call.arguments",
            Value::String(json_or_text(&tool.arguments)),
        );
    }
    if let Some(result) = tool.result.as_ref().filter(|r| !r.is_null()) {
        attrs.put(
            "gen_ai.tool.call.result",
            Value::String(json_or_text(result)),
        );
    }
    attrs.put("pisama.tool.is_error", Value::Bool(tool.is_error));
}

/// Strings as they are, anything else as JSON text (the GenAI attributes are strings).
fn json_or_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
        Role::Other => "other",
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Unset => "unset",
        Status::Ok => "ok",
        Status::Error => "error",
    }
}

fn handoff_mode_name(mode: HandoffMode) -> &'static str {
    match mode {
        HandoffMode::Transfer => "transfer",
        HandoffMode::Delegate => "delegate",
        HandoffMode::Return => "return",
        HandoffMode::Message => "message",
    }
}

/// OTLP `KeyValue` list under construction: the first value written for a key wins, so mapped
/// attributes take precedence over copied ones, and nulls are left out.
#[derive(Debug, Default)]
struct AttrList {
    items: Vec<Value>,
    keys: HashSet<String>,
}

impl AttrList {
    fn put(&mut self, key: &str, value: Value) {
        if value.is_null() || !self.keys.insert(key.to_owned()) {
            return;
        }
        self.items.push(key_value(key, value));
    }

    fn put_opt(&mut self, key: &str, value: Option<Value>) {
        if let Some(v) = value {
            self.put(key, v);
        }
    }
}

fn key_value(key: &str, value: Value) -> Value {
    json!({"key": key, "value": any_value(value)})
}

/// Plain JSON as an OTLP `AnyValue`; integers are written as strings, as OTLP/JSON requires.
fn any_value(v: Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!({"intValue": i.to_string()})
            } else if let Some(u) = n.as_u64() {
                json!({"intValue": u.to_string()})
            } else {
                json!({"doubleValue": n.as_f64().unwrap_or_default()})
            }
        }
        Value::String(s) => json!({"stringValue": s}),
        Value::Array(items) => {
            let values: Vec<Value> = items.into_iter().map(any_value).collect();
            json!({"arrayValue": {"values": values}})
        }
        Value::Object(map) => {
            let values: Vec<Value> = map.into_iter().map(|(k, v)| key_value(&k, v)).collect();
            json!({"kvlistValue": {"values": values}})
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::builder::TraceBuilder;
    use crate::model::{
        Cost, ErrorInfo, Format, Handoff, Link, LinkKind, LlmCall, ToolCall, Usage,
    };
    use crate::testing::{fixture, inline};

    fn kind_counts(t: &Trace) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for s in &t.spans {
            *counts.entry(s.kind.name()).or_insert(0) += 1;
        }
        counts
    }

    fn tools(t: &Trace) -> Vec<(String, bool, Status)> {
        t.spans
            .iter()
            .filter_map(|s| {
                s.tool
                    .as_ref()
                    .map(|tool| (tool.name.clone(), tool.is_error, s.status))
            })
            .collect()
    }

    /// Exports `t`, serializes, loads it back through detection, and returns the copy.
    fn through_otlp(t: &Trace) -> Trace {
        let text = serde_json::to_string(&to_otlp(t)).unwrap();
        let (summary, back) = inline("round-trip.otlp.json", &text);
        assert_eq!(summary.format, Format::Otlp);
        assert_eq!(back.len(), 1);
        back.into_iter().next().unwrap().trace
    }

    fn assert_same(original: &Trace, copy: &Trace, what: &str) {
        let names = |t: &Trace| t.agents.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
        assert_eq!(copy.id, original.id, "{what}: trace id");
        assert_eq!(names(copy), names(original), "{what}: agents");
        assert_eq!(
            kind_counts(copy),
            kind_counts(original),
            "{what}: spans per kind"
        );
        assert_eq!(tools(copy), tools(original), "{what}: tools");
        assert_eq!(copy.usage, original.usage, "{what}: usage");
        assert_eq!(copy.cost, original.cost, "{what}: cost");
        let steps = |t: &Trace| {
            t.spans
                .iter()
                .map(|s| (s.id.clone(), s.kind, s.step, s.parent))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            steps(copy),
            steps(original),
            "{what}: ids, kinds, steps, parents in order"
        );
        let agents_per_span =
            |t: &Trace| t.spans.iter().map(|s| s.agent.clone()).collect::<Vec<_>>();
        assert_eq!(
            agents_per_span(copy),
            agents_per_span(original),
            "{what}: span agents"
        );
        let errors = |t: &Trace| {
            t.spans
                .iter()
                .map(|s| s.error.as_ref().map(|e| (e.message.clone(), e.handled)))
                .collect::<Vec<_>>()
        };
        assert_eq!(errors(copy), errors(original), "{what}: errors");
        let handoffs = |t: &Trace| {
            t.spans
                .iter()
                .filter_map(|s| s.handoff.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(handoffs(copy), handoffs(original), "{what}: handoffs");
        assert_eq!(copy.status, original.status, "{what}: status");
        assert_eq!(copy.session_id, original.session_id, "{what}: session");
        assert_eq!(copy.task, original.task, "{what}: task");
        assert_eq!(
            copy.final_output, original.final_output,
            "{what}: final output"
        );
        assert_eq!(
            (copy.start_ns, copy.end_ns),
            (original.start_ns, original.end_ns),
            "{what}: bounds"
        );
    }

    #[test]
    fn fixtures_round_trip() {
        for rel in [
            "otlp/genai-two-agents.json",
            "otlp/openllmetry-support.json",
            "otlp/openinference-jaeger.json",
            "otlp/encoding-quirks.json",
            "openinference-spans/phoenix-travel.json",
            "trail/gaia-melting-point.json",
            "trail/swe-row-labelled.json",
            "who-and-when/algorithm-generated.json",
            "who-and-when/hand-crafted.json",
            "generic-chat/support-chat.json",
            "pisama-spans/generated-30.json",
        ] {
            let (_, traces) = fixture(rel);
            for loaded in &traces {
                let copy = through_otlp(&loaded.trace);
                assert_same(&loaded.trace, &copy, rel);
                assert_eq!(
                    copy.metadata.get("pisama.source.format"),
                    Some(&Value::String(loaded.trace.format.name().to_owned())),
                    "{rel}"
                );
                // A second round trip changes nothing more.
                assert_same(&copy, &through_otlp(&copy), rel);
            }
        }
    }

    #[test]
    fn otlp_output_follows_genai_conventions() {
        let (_, traces) = fixture("otlp/genai-two-agents.json");
        let out = to_otlp(&traces[0].trace);
        let spans = out["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap();
        assert_eq!(
            out["resourceSpans"][0]["scopeSpans"][0]["schemaUrl"],
            GENAI_SCHEMA_URL
        );
        let attr = |span: &Value, key: &str| {
            span["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|kv| kv["key"] == key)
                .map(|kv| kv["value"].clone())
        };
        let failed = spans.iter().find(|s| s["status"]["code"] == 2).unwrap();
        assert_eq!(
            failed["spanId"], "a1b2c3d4e5f60005",
            "native hex ids are kept"
        );
        assert_eq!(
            attr(failed, "gen_ai.operation.name"),
            Some(json!({"stringValue": "execute_tool"}))
        );
        assert_eq!(
            attr(failed, "gen_ai.tool.name"),
            Some(json!({"stringValue": "run_sql"}))
        );
        assert_eq!(
            attr(failed, "error.type"),
            Some(json!({"stringValue": "psycopg.errors.UndefinedTable"}))
        );
        assert_eq!(
            failed["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["name"] == "exception")
                .count(),
            1
        );
        let chat = spans
            .iter()
            .find(|s| attr(s, "gen_ai.usage.cache_read.input_tokens").is_some())
            .unwrap();
        assert_eq!(
            attr(chat, "gen_ai.usage.input_tokens"),
            Some(json!({"intValue": "2400"}))
        );
        assert_eq!(chat["kind"], 3);
        assert!(
            attr(chat, "gen_ai.input.messages").unwrap()["stringValue"]
                .as_str()
                .unwrap()
                .contains("\"parts\"")
        );
        // The synthesized handoff is written out explicitly, with a hashed id.
        let handoff = spans
            .iter()
            .find(|s| attr(s, "pisama.span.kind") == Some(json!({"stringValue": "handoff"})))
            .unwrap();
        assert_eq!(
            attr(handoff, "pisama.span.id"),
            Some(json!({"stringValue": "a1b2c3d4e5f60003.handoff"}))
        );
        assert_eq!(handoff["spanId"].as_str().unwrap().len(), 16);
        assert_eq!(
            out["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"],
            "7d3c0a9e5b1f4c2d8e6a4b2c1d0e9f87"
        );
    }

    #[test]
    fn non_hex_ids_are_hashed_and_unique() {
        let (_, traces) = fixture("who-and-when/algorithm-generated.json");
        let out = to_otlp(&traces[0].trace);
        let spans = out["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap();
        let trace_id = spans[0]["traceId"].as_str().unwrap();
        assert_eq!(trace_id.len(), 32);
        assert!(trace_id.bytes().all(|b| b.is_ascii_hexdigit()));
        let ids: HashSet<&str> = spans
            .iter()
            .map(|s| s["spanId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), spans.len());
        assert!(
            ids.iter()
                .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        assert_eq!(hashed_id(&["x"], 16), hashed_id(&["x"], 16));
    }

    #[test]
    fn hand_built_trace_keeps_every_detail() {
        let mut b = TraceBuilder::new(Format::GenericChat, "hand-built");
        b.trace_mut().session_id = Some("s-1".to_owned());
        let agent = b.push(Span {
            id: "agent".into(),
            kind: SpanKind::Agent,
            name: "planner".into(),
            start_ns: Some(1_000),
            end_ns: Some(9_000),
            usage: Some(Box::new(Usage {
                input: Some(500),
                output: Some(50),
                ..Usage::default()
            })),
            usage_scope: UsageScope::Subtree,
            ..Span::default()
        });
        b.push_child(
            agent,
            Span {
                id: "llm-1".into(),
                kind: SpanKind::Llm,
                name: "chat".into(),
                step: Some(0),
                start_ns: Some(1_100),
                end_ns: Some(2_000),
                time_inferred: true,
                llm: Some(Box::new(LlmCall {
                    request_model: Some("unknown-model".into()),
                    input_messages: vec![Message {
                        role: Role::User,
                        name: Some("ana".into()),
                        parts: vec![
                            Part::Text {
                                text: "{\"looks\": \"like json\"}".into(),
                            },
                            Part::Media {
                                mime: Some("image/png".into()),
                                uri: Some("file://a.png".into()),
                            },
                        ],
                    }],
                    output_messages: vec![Message {
                        role: Role::Assistant,
                        name: None,
                        parts: vec![
                            Part::Reasoning {
                                text: "think".into(),
                            },
                            Part::ToolCall {
                                id: Some("c1".into()),
                                name: "fetch".into(),
                                arguments: json!({"u": 1}),
                            },
                        ],
                    }],
                    finish_reason: Some("tool_calls".into()),
                    ..LlmCall::default()
                })),
                usage: Some(Box::new(Usage {
                    input: Some(400),
                    output: Some(40),
                    total: Some(999),
                    estimated: true,
                    ..Usage::default()
                })),
                cost: Some(Cost {
                    amount: 0.25,
                    currency: "EUR".into(),
                    source: CostSource::Reported,
                }),
                links: vec![Link {
                    kind: LinkKind::FollowsFrom,
                    target: "elsewhere".into(),
                }],
                ..Span::default()
            },
        );
        b.push_child(
            agent,
            Span {
                id: "tool-1".into(),
                kind: SpanKind::Tool,
                name: "fetch".into(),
                step: Some(1),
                start_ns: Some(2_100),
                end_ns: Some(3_000),
                status: Status::Error,
                error: Some(Box::new(ErrorInfo {
                    kind: None,
                    message: "HTTP 500".into(),
                    stack: None,
                    handled: true,
                })),
                input: Some(Box::new(Payload {
                    text: "u=1".into(),
                    json: Some(json!({"u": 1})),
                    mime: None,
                })),
                tool: Some(Box::new(ToolCall {
                    name: "fetch".into(),
                    call_id: Some("c1".into()),
                    arguments: json!({"u": 1}),
                    result: Some(json!("HTTP 500")),
                    is_error: true,
                })),
                ..Span::default()
            },
        );
        b.push_child(
            agent,
            Span {
                id: "handoff-1".into(),
                kind: SpanKind::Handoff,
                name: "transfer".into(),
                start_ns: Some(3_100),
                end_ns: Some(3_100),
                handoff: Some(Box::new(Handoff {
                    from: Some("planner".into()),
                    to: "writer".into(),
                    mode: HandoffMode::Transfer,
                })),
                ..Span::default()
            },
        );
        let original = b.finish();
        let copy = through_otlp(&original);
        assert_same(&original, &copy, "hand-built");
        let llm_span = copy.spans.iter().find(|s| s.id == "llm-1").unwrap();
        assert!(llm_span.time_inferred);
        assert_eq!(llm_span.links, original.spans[1].links);
        assert_eq!(llm_span.llm, original.spans[1].llm);
        assert_eq!(llm_span.usage, original.spans[1].usage);
        let tool_span = copy.spans.iter().find(|s| s.id == "tool-1").unwrap();
        assert_eq!(tool_span.input, original.spans[2].input);
        assert_eq!(tool_span.tool, original.spans[2].tool);
        assert_eq!(
            copy.status,
            Status::Unset,
            "a handled error does not fail the trace"
        );
        assert_eq!(copy.format, Format::Otlp);
    }

    /// One generated span: its kind, agent, parent (an earlier span), timing, failure and the
    /// kind's own payload.
    #[derive(Debug, Clone)]
    struct SpanPlan {
        kind: usize,
        agent: Option<usize>,
        parent: Option<usize>,
        start: i64,
        duration: i64,
        failed: Option<bool>,
        tokens: (u64, u64),
        text: String,
    }

    fn span_plan() -> impl proptest::strategy::Strategy<Value = SpanPlan> {
        use proptest::prelude::*;
        (
            0..SpanKind::ALL.len(),
            proptest::option::of(0..3usize),
            proptest::option::of(any::<usize>()),
            0..1_000_000_000i64,
            1..1_000_000i64,
            proptest::option::of(any::<bool>()),
            (1..100_000u64, 1..10_000u64),
            "[a-zA-Z0-9 .,:{}\"é€-]{0,40}",
        )
            .prop_map(
                |(kind, agent, parent, start, duration, failed, tokens, text)| SpanPlan {
                    kind,
                    agent,
                    parent,
                    start,
                    duration,
                    failed,
                    tokens,
                    text,
                },
            )
    }

    fn build(plans: &[SpanPlan]) -> Trace {
        const AGENTS: [&str; 3] = ["planner", "coder", "Verification_Expert"];
        let mut b = TraceBuilder::new(Format::GenericChat, "generated");
        for (i, plan) in plans.iter().enumerate() {
            let kind = SpanKind::ALL[plan.kind];
            let mut span = Span {
                id: format!("s{i}"),
                kind,
                name: format!("{}-{i}", kind.name()),
                agent: plan.agent.map(|a| AGENTS[a].to_owned()),
                step: Some(u32::try_from(i).unwrap()),
                start_ns: Some(plan.start),
                end_ns: Some(plan.start + plan.duration),
                output: (!plan.text.is_empty()).then(|| Box::new(Payload::text(plan.text.clone()))),
                ..Span::default()
            };
            match plan.failed {
                Some(true) => {
                    span.status = Status::Error;
                    span.error = Some(Box::new(ErrorInfo {
                        message: format!("failure {i}"),
                        ..ErrorInfo::default()
                    }));
                }
                Some(false) => span.status = Status::Ok,
                None => {}
            }
            match kind {
                SpanKind::Llm => {
                    span.llm = Some(Box::new(LlmCall {
                        request_model: Some("gpt-4o".into()),
                        ..LlmCall::default()
                    }));
                    span.usage = Some(Box::new(Usage {
                        input: Some(plan.tokens.0),
                        output: Some(plan.tokens.1),
                        ..Usage::default()
                    }));
                }
                SpanKind::Tool => {
                    span.tool = Some(Box::new(ToolCall {
                        name: format!("tool_{}", i % 4),
                        call_id: Some(format!("call-{i}")),
                        arguments: json!({"q": plan.text, "n": i}),
                        result: None,
                        is_error: plan.failed == Some(true),
                    }));
                }
                _ => {}
            }
            let idx = match plan.parent {
                Some(p) if i > 0 => b.push_child(p % i, span),
                _ => b.push(span),
            };
            debug_assert_eq!(idx, i);
        }
        b.finish()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any trace the builder can make survives OTLP export and re-reading: agents, kinds,
        /// steps, parents, tool calls, errors, tokens and cost; and a second trip changes
        /// nothing more.
        #[test]
        fn generated_traces_round_trip_through_otlp(plans in proptest::collection::vec(span_plan(), 1..40)) {
            let original = build(&plans);
            let copy = through_otlp(&original);
            assert_same(&original, &copy, "generated");
            assert_same(&copy, &through_otlp(&copy), "generated, second trip");
        }
    }
}
