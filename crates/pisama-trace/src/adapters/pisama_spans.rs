//! The incumbent Python pisama's native trace: `{"trace_id", "spans": [...], "metadata"}`, a
//! bare array of spans, or one span per JSONL line. Span keys: `span_id`, `parent_id`, `name`,
//! `kind`, `start_time`, `end_time`, `status`, `error_message`, `attributes`, `input_data`,
//! `output_data`, `events`.

use std::collections::BTreeMap;

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    ErrorInfo, Format, Handoff, HandoffMode, LlmCall, Payload, Span, SpanEvent, SpanKind, Status,
    ToolCall, Usage,
};
use crate::util::{as_u64, get_str, time_value};

/// The spans of a document and where they sit in it.
struct SpanList {
    spans: Vec<Value>,
    trace_id: Option<String>,
    metadata: Option<Value>,
    /// JSON Pointer of the span array (empty when the spans are the document or its lines).
    prefix: &'static str,
    /// Line of each span in a JSONL file.
    lines: Vec<Option<u32>>,
}

fn take_envelope(mut o: Map<String, Value>, line: Option<u32>) -> Result<SpanList, AdapterError> {
    let Some(Value::Array(spans)) = o.remove("spans") else {
        return Err(AdapterError::new("expected a `spans` array"));
    };
    let trace_id = match o.remove("trace_id") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let lines = vec![line; spans.len()];
    Ok(SpanList {
        spans,
        trace_id,
        metadata: o.remove("metadata"),
        prefix: "/spans",
        lines,
    })
}

/// Takes the input by value: a 100,000-span file is mostly strings, and moving them into the
/// trace instead of copying halves the memory and the time.
pub(crate) fn parse(mut input: Input) -> AdapterResult {
    let doc = std::mem::replace(&mut input.doc, Doc::Text(String::new()));
    let SpanList {
        spans,
        trace_id,
        metadata,
        prefix,
        lines,
    } = match doc {
        Doc::Json(Value::Object(o)) => take_envelope(o, None)?,
        Doc::Json(Value::Array(items)) => {
            let n = items.len();
            SpanList {
                spans: items,
                trace_id: None,
                metadata: None,
                prefix: "",
                lines: vec![None; n],
            }
        }
        Doc::Lines(json_lines) => {
            // Either span rows, or a single trace envelope on one line.
            let single_envelope =
                json_lines.len() == 1 && json_lines[0].value.get("spans").is_some();
            if single_envelope {
                let first = json_lines.into_iter().next().map(|l| (l.value, l.line));
                match first {
                    Some((Value::Object(o), line)) => take_envelope(o, Some(line))?,
                    _ => return Err(AdapterError::new("expected a trace envelope object")),
                }
            } else {
                let lines = json_lines.iter().map(|l| Some(l.line)).collect();
                let spans = json_lines.into_iter().map(|l| l.value).collect();
                SpanList {
                    spans,
                    trace_id: None,
                    metadata: None,
                    prefix: "",
                    lines,
                }
            }
        }
        _ => return Err(AdapterError::new("expected JSON")),
    };
    let mut stream = SpanStream::with_capacity(spans.len());
    for (i, raw) in spans.into_iter().enumerate() {
        let source = match lines.get(i).copied().flatten() {
            Some(line) if prefix.is_empty() => input.at_line(line),
            _ => input.at(format!("{prefix}/{i}")),
        };
        stream.push(raw, i, source);
    }
    stream.finish(&input, trace_id, metadata)
}

/// A trace built span by span, as the spans are read. The whole-document path feeds it from
/// a parsed span array; the loader's streamed path (`crate::streamed`) feeds it each span as
/// soon as it is parsed, so a large file's spans are never all held as JSON at once. Both
/// go through this one piece of code, which is what keeps their traces identical.
pub(crate) struct SpanStream {
    builder: TraceBuilder,
    /// The first non-empty `trace_id` string found on a span (used when the envelope has none).
    span_trace_id: Option<String>,
    count: usize,
}

impl SpanStream {
    pub(crate) fn with_capacity(spans: usize) -> Self {
        // The id is known only once every span (or the envelope's `trace_id`, which may come
        // after the spans) has been read; `finish` sets it.
        let mut builder = TraceBuilder::new(Format::PisamaSpans, String::new());
        builder.reserve(spans);
        SpanStream {
            builder,
            span_trace_id: None,
            count: 0,
        }
    }

    /// Adds span `i` of the document, read from `raw`.
    pub(crate) fn push(&mut self, raw: Value, i: usize, source: crate::model::SourceRef) {
        let element = match raw {
            Value::Object(o) => SpanElement::Span(Box::new(SpanFields::from_map(o))),
            _ => SpanElement::NotObject,
        };
        self.push_element(element, i, source);
    }

    /// Adds span `i` of the document, read straight from the text.
    pub(crate) fn push_element(
        &mut self,
        element: SpanElement,
        i: usize,
        source: crate::model::SourceRef,
    ) {
        self.push_ready(ReadySpan::new(element, i, source), i);
    }

    /// Adds span `i` of the document, converted already.
    pub(crate) fn push_ready(&mut self, ready: ReadySpan, i: usize) {
        self.count += 1;
        let ReadySpan {
            span: Some(span),
            parent,
            trace_id,
        } = ready
        else {
            self.builder
                .warn(format!("span {i} is not an object; skipped"));
            return;
        };
        if self.span_trace_id.is_none() {
            self.span_trace_id = trace_id
                .as_ref()
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
        }
        let idx = self.builder.push(span);
        if let Some(p) = parent {
            self.builder.set_parent_id(idx, p);
        }
    }

    /// The trace, given the envelope's `trace_id` (a string, possibly empty) and `metadata`.
    pub(crate) fn finish(
        self,
        input: &Input,
        trace_id: Option<String>,
        metadata: Option<Value>,
    ) -> AdapterResult {
        if self.count == 0 {
            return Err(AdapterError::new("the trace has no spans"));
        }
        let mut b = self.builder;
        b.trace_mut().id = trace_id
            .or(self.span_trace_id)
            .unwrap_or_else(|| input.synth_id("pisama-spans"));
        if let Some(Value::Object(meta)) = metadata {
            if let Some(s) = meta.get("session_id").and_then(Value::as_str) {
                b.trace_mut().session_id = Some(s.to_owned());
            }
            for (k, v) in meta {
                if !v.is_null() {
                    b.trace_mut().metadata.insert(k, v);
                }
            }
        }
        Ok(vec![Parsed::unlabelled(b.finish())])
    }
}

/// A span element converted on its own: all that [`SpanStream::push_element`] does before it
/// touches the trace being built, so that it can be done for many elements at once on other
/// threads (`crate::streamed`) and the elements then added in order.
pub(crate) struct ReadySpan {
    /// `None` when the element is not an object.
    span: Option<Span>,
    /// The parent's native id.
    parent: Option<String>,
    /// The element's `trace_id`, whatever it is.
    trace_id: Option<Value>,
}

impl ReadySpan {
    /// Span `i` of the document, from `element`.
    pub(crate) fn new(element: SpanElement, i: usize, source: crate::model::SourceRef) -> Self {
        let SpanElement::Span(mut fields) = element else {
            return ReadySpan {
                span: None,
                parent: None,
                trace_id: None,
            };
        };
        let trace_id = fields.trace_id.take();
        let parent = string(fields.parent_id.take());
        let span = convert(&mut fields, i, source);
        ReadySpan {
            span: Some(span),
            parent,
            trace_id,
        }
    }
}

/// One element of a span array: a span's fields, or something that is not an object.
pub(crate) enum SpanElement {
    Span(Box<SpanFields>),
    NotObject,
}

/// The keys of a span that the adapter reads (the last one wins when a key is repeated, as in
/// a parsed map). The general path takes them out of the span's parsed map
/// ([`SpanFields::from_map`]); the streamed path deserializes them straight from the text and
/// never builds the map. Other keys are parsed and dropped on both paths.
#[derive(Default)]
pub(crate) struct SpanFields {
    span_id: Option<Value>,
    parent_id: Option<Value>,
    name: Option<Value>,
    kind: Option<Value>,
    status: Option<Value>,
    error_message: Option<Value>,
    start_time: Option<Value>,
    end_time: Option<Value>,
    /// `Some` when `attributes` is an object.
    attributes: Option<BTreeMap<String, Value>>,
    input_data: Option<Value>,
    output_data: Option<Value>,
    events: Option<Value>,
    trace_id: Option<Value>,
}

/// A span key the adapter reads.
#[derive(Clone, Copy)]
enum Key {
    SpanId,
    ParentId,
    Name,
    Kind,
    Status,
    ErrorMessage,
    StartTime,
    EndTime,
    Attributes,
    InputData,
    OutputData,
    Events,
    TraceId,
}

impl Key {
    fn of(key: &str) -> Option<Key> {
        Some(match key {
            "span_id" => Key::SpanId,
            "parent_id" => Key::ParentId,
            "name" => Key::Name,
            "kind" => Key::Kind,
            "status" => Key::Status,
            "error_message" => Key::ErrorMessage,
            "start_time" => Key::StartTime,
            "end_time" => Key::EndTime,
            "attributes" => Key::Attributes,
            "input_data" => Key::InputData,
            "output_data" => Key::OutputData,
            "events" => Key::Events,
            "trace_id" => Key::TraceId,
            _ => return None,
        })
    }
}

impl SpanFields {
    fn from_map(o: Map<String, Value>) -> Self {
        let mut fields = SpanFields::default();
        for (key, value) in o {
            if let Some(key) = Key::of(&key) {
                fields.set(key, value);
            }
        }
        fields
    }

    fn set(&mut self, key: Key, value: Value) {
        let slot = match key {
            Key::Attributes => {
                self.attributes = match value {
                    Value::Object(a) => Some(a.into_iter().collect()),
                    _ => None,
                };
                return;
            }
            Key::SpanId => &mut self.span_id,
            Key::ParentId => &mut self.parent_id,
            Key::Name => &mut self.name,
            Key::Kind => &mut self.kind,
            Key::Status => &mut self.status,
            Key::ErrorMessage => &mut self.error_message,
            Key::StartTime => &mut self.start_time,
            Key::EndTime => &mut self.end_time,
            Key::InputData => &mut self.input_data,
            Key::OutputData => &mut self.output_data,
            Key::Events => &mut self.events,
            Key::TraceId => &mut self.trace_id,
        };
        *slot = Some(value);
    }
}

/// Reads one element of a span array from the text. Every value is still parsed by
/// `serde_json` as a `Value` would be (same nesting limit, number checks and errors); only the
/// span's own map and the `attributes` map are not built as `Value`s.
impl<'de> Deserialize<'de> for SpanElement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

/// Consumes the rest of a non-object value the way a `Value` parse would.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Value>()?.is_some() {}
    Ok(())
}

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = SpanElement;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a span")
    }

    fn visit_unit<E: de::Error>(self) -> Result<SpanElement, E> {
        Ok(SpanElement::NotObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SpanElement, E> {
        Ok(SpanElement::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SpanElement, E> {
        Ok(SpanElement::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SpanElement, E> {
        Ok(SpanElement::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SpanElement, E> {
        Ok(SpanElement::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SpanElement, E> {
        Ok(SpanElement::NotObject)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<SpanElement, A::Error> {
        drain_seq(seq)?;
        Ok(SpanElement::NotObject)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpanElement, A::Error> {
        let mut fields = SpanFields::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Some(Key::Attributes) => {
                    fields.attributes = map.next_value_seed(AttributesSeed)?;
                }
                Some(key) => fields.set(key, map.next_value::<Value>()?),
                None => {
                    map.next_value::<Value>()?;
                }
            }
        }
        Ok(SpanElement::Span(Box::new(fields)))
    }
}

/// A span key without allocating it: `None` for keys the adapter does not read.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<Key>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Option<Key>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<Key>, E> {
        Ok(Key::of(key))
    }
}

/// `attributes` straight into the span's map when it is an object; `None` otherwise.
struct AttributesSeed;

impl<'de> DeserializeSeed<'de> for AttributesSeed {
    type Value = Option<BTreeMap<String, Value>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttributesSeed {
    type Value = Option<BTreeMap<String, Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("span attributes")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut attributes = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Value>()?;
            attributes.insert(key, value);
        }
        Ok(Some(attributes))
    }
}

/// A non-empty string value.
fn string(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn convert(o: &mut SpanFields, i: usize, source: crate::model::SourceRef) -> Span {
    let attributes: BTreeMap<String, Value> = o.attributes.take().unwrap_or_default();
    let attr_str = |k: &str| {
        attributes
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let attr_u64 = |k: &str| attributes.get(k).and_then(as_u64);
    let name = string(o.name.take()).unwrap_or_else(|| "unnamed".to_owned());
    let kind_name = string(o.kind.take()).unwrap_or_else(|| "system".to_owned());
    let kind = match kind_name.as_str() {
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
    let status_name = string(o.status.take()).unwrap_or_else(|| "unset".to_owned());
    let status = match status_name.as_str() {
        "ok" => Status::Ok,
        "error" | "timeout" | "blocked" | "cancelled" => Status::Error,
        _ => Status::Unset,
    };
    let error_message = string(o.error_message.take());
    let error = (status == Status::Error || error_message.is_some()).then(|| ErrorInfo {
        kind: (status_name != "error").then(|| status_name.clone()),
        message: error_message.unwrap_or_else(|| status_name.clone()),
        ..ErrorInfo::default()
    });
    let input_data = o.input_data.take().filter(|v| !v.is_null());
    let output_data = o.output_data.take().filter(|v| !v.is_null());
    let agent = if kind == SpanKind::Agent {
        Some(attr_str("agent_name").unwrap_or_else(|| name.clone()))
    } else {
        attr_str("agent_name").or_else(|| attr_str("agent_id"))
    };
    let model = attr_str("gen_ai.request.model").or_else(|| attr_str("model"));
    let usage = Usage {
        input: attr_u64("gen_ai.usage.input_tokens")
            .or_else(|| attr_u64("gen_ai.usage.prompt_tokens")),
        output: attr_u64("gen_ai.usage.output_tokens")
            .or_else(|| attr_u64("gen_ai.usage.completion_tokens")),
        ..Usage::default()
    };
    let llm = (kind == SpanKind::Llm || model.is_some()).then(|| LlmCall {
        request_model: model,
        response_model: attr_str("gen_ai.response.model"),
        provider: attr_str("gen_ai.system").or_else(|| attr_str("gen_ai.provider.name")),
        ..LlmCall::default()
    });
    let handoff = if kind == SpanKind::Handoff {
        attr_str("target_agent")
            .or_else(|| attr_str("to_agent"))
            .map(|to| Handoff {
                from: attr_str("source_agent").or_else(|| attr_str("from_agent")),
                to,
                mode: HandoffMode::Transfer,
            })
    } else {
        None
    };
    let tool_name = attr_str("tool_name");
    let tool_call_id = attr_str("tool_call_id");
    let status = if error.is_some() {
        Status::Error
    } else {
        status
    };
    // Tools keep their arguments and result as JSON on `tool`; their payloads carry only the
    // text, so a large trace does not hold every tool's data twice.
    let (input_data, output_data, tool) = if kind == SpanKind::Tool {
        let input_text = input_data.as_ref().map(|v| Payload::text(payload_text(v)));
        let output_text = output_data.as_ref().map(|v| Payload::text(payload_text(v)));
        let tool = ToolCall {
            name: tool_name.unwrap_or_else(|| name.clone()),
            call_id: tool_call_id,
            arguments: input_data.unwrap_or(Value::Null),
            result: output_data,
            is_error: status == Status::Error,
        };
        (input_text, output_text, Some(tool))
    } else {
        (input_data.map(payload), output_data.map(payload), None)
    };
    let mut span = Span {
        id: string(o.span_id.take()).unwrap_or_else(|| format!("span-{i}")),
        kind,
        name,
        agent,
        start_ns: o.start_time.as_ref().and_then(time_value),
        end_ns: o.end_time.as_ref().and_then(time_value),
        status,
        error: error.map(Box::new),
        input: input_data.map(Box::new),
        output: output_data.map(Box::new),
        llm: llm.map(Box::new),
        tool: tool.map(Box::new),
        usage: (!usage.is_empty()).then_some(Box::new(usage)),
        source,
        ..Span::default()
    };
    if span.agent.is_none() {
        span.agent = span.handoff.as_ref().and_then(|h| h.from.clone());
    }
    span.handoff = handoff.map(Box::new);
    if span.agent.is_none() {
        span.agent = span.handoff.as_ref().and_then(|h| h.from.clone());
    }
    if let Some(Value::Array(events)) = o.events.take() {
        for e in events {
            span.events.push(SpanEvent {
                name: get_str(&e, &["name"]).unwrap_or("event").to_owned(),
                time_ns: e.get("timestamp").and_then(time_value),
                attributes: match e {
                    Value::Object(mut m) => match m.remove("attributes") {
                        Some(Value::Object(a)) => a.into_iter().collect(),
                        _ => BTreeMap::new(),
                    },
                    _ => BTreeMap::new(),
                },
            });
        }
    }
    span.attributes = attributes;
    span
}

const TEXT_KEYS: [&str; 12] = [
    "content", "text", "prompt", "response", "output", "result", "task", "query", "message",
    "answer", "context", "messages",
];

/// The text of a free-form input/output value: the first well-known text key, else the JSON.
fn payload_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => TEXT_KEYS
            .iter()
            .find_map(|k| o.get(*k).and_then(crate::util::text_of))
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

fn payload(v: Value) -> Payload {
    match v {
        Value::String(s) => Payload::text(s),
        other => Payload {
            text: payload_text(&other),
            json: Some(other),
            mime: None,
        },
    }
}
