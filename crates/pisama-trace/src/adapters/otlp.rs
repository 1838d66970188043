//! OTLP/JSON traces (`formats.md` §2), and the attribute mapping every OpenTelemetry-shaped
//! source shares (Phoenix span JSON and TRAIL reuse it, §3).
//!
//! Containers. A `TracesData` object holds `resourceSpans[].scopeSpans[].spans[]`. Accepted
//! variants: `resource_spans` (snake-case writers), `result.resourceSpans` (Jaeger v3),
//! `batches[]` (older Tempo), `instrumentationLibrarySpans` (pre-1.0 exports), and snake-case
//! span keys. A JSON array of `TracesData` and the Collector file exporter's JSONL (one
//! `TracesData` per line) are read as one stream: spans are grouped by trace id across every
//! object and line, and one trace is returned per trace id, in first-seen order.
//!
//! Encoding. Typed `AnyValue`s are decoded to plain JSON. Ids are hex (lower-cased) or, as
//! protobuf-JSON printers write them, base64 (decoded to 16 / 8 bytes and re-encoded as hex).
//! `startTimeUnixNano` may be a string or a bare JSON number above 2^53; both are read as exact
//! integers, never through `f64`. Span kind and status code may be integers or enum names.
//!
//! Attributes. Every span goes through [`map_span`], which applies all three key families at
//! once, since one file can mix them: OpenTelemetry GenAI (current and deprecated names),
//! OpenLLMetry (`gen_ai.prompt.N.*`, `llm.usage.total_tokens`, `traceloop.*`) and
//! OpenInference (`openinference.span.kind`, `llm.*`, `input.value`, `tool.name`). Keys that
//! decide the kind stay in `attributes`; keys turned into model fields are removed; the rest are
//! kept under their original names. Resource attributes are copied onto each span under
//! `resource.`, the scope under `scope.name` / `scope.version`.
//!
//! Decisions:
//! - Kind: `pisama.span.kind` (our own exports), else `gen_ai.operation.name`, else
//!   `openinference.span.kind`, else `traceloop.span.kind` / `llm.request.type`, else the
//!   presence of tool or model keys, else `Step`.
//! - Usage on anything but a model call (an `invoke_agent`, an OpenInference `CHAIN`) is an
//!   aggregate and is marked `UsageScope::Subtree`.
//! - An `exception` event or `error.type` makes the span an error even when the status is unset.
//!   On a span whose status says `Ok`, the error was caught: it is kept with `handled: true`.
//! - The root span's output (an agent's `output.value`) is the trace's final output.
//! - Handoffs are implicit in OpenTelemetry: an agent span whose nearest agent ancestor has a
//!   different agent name is a delegation, so a zero-length `Handoff` span is added beside it.
//! - Files written by `pisama convert --to otlp` carry `pisama.*` attributes that restore what
//!   OpenTelemetry cannot say (kind, step, agent, handoffs, handled errors, ids). Their handoffs
//!   are written out explicitly, so none are synthesized for them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    AgentInfo, Cost, CostSource, ErrorInfo, Format, Handoff, HandoffMode, Link, LinkKind, LlmCall,
    Message, Part, Payload, Role, SourceRef, Span, SpanEvent, SpanKind, Status, ToolCall, Usage,
    UsageScope,
};
use crate::util::{as_f64, as_u64, maybe_json, parse_time};

// ---- reading OTLP/JSON ---------------------------------------------------------------------

/// Takes the input by value: span objects are moved out of the parsed document, and their
/// attribute values moved into the trace, instead of copied (a large OTLP file is mostly
/// attribute strings).
pub(crate) fn parse(mut input: Input) -> AdapterResult {
    let doc = std::mem::replace(&mut input.doc, Doc::Text(String::new()));
    let input = &input;
    let mut docs: Vec<(Value, DocPlace)> = Vec::new();
    match doc {
        Doc::Json(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                docs.push((
                    item,
                    DocPlace {
                        line: None,
                        pointer: format!("/{i}"),
                    },
                ));
            }
        }
        Doc::Json(value) => docs.push((
            value,
            DocPlace {
                line: None,
                pointer: String::new(),
            },
        )),
        Doc::Lines(lines) => {
            for line in lines {
                docs.push((
                    line.value,
                    DocPlace {
                        line: Some(line.line),
                        pointer: String::new(),
                    },
                ));
            }
        }
        Doc::Text(_) => {
            return Err(AdapterError::new(
                "OTLP expects JSON (TracesData), got text",
            ));
        }
    }
    let mut collected = Collected::default();
    for (value, place) in &mut docs {
        collected.read_doc(input, value, place);
    }
    drop(docs);
    collected.finish(input)
}

impl Collected {
    /// The traces, one per trace id, once every `TracesData` has been read.
    pub(crate) fn finish(mut self, input: &Input) -> AdapterResult {
        let collected = &mut self;
        if collected.traces.is_empty() {
            let mut message = "no spans found: expected `resourceSpans[].scopeSpans[].spans[]` \
                               (or `resource_spans`, `result.resourceSpans`, `batches`)"
                .to_owned();
            if let Some(first) = collected.warnings.first() {
                let _ = write!(message, "; {first}");
            }
            return Err(AdapterError::new(message));
        }
        let traces = std::mem::take(&mut collected.traces);
        let mut out = Vec::with_capacity(traces.len());
        for (i, group) in traces.into_iter().enumerate() {
            let warnings: &[String] = if i == 0 { &collected.warnings } else { &[] };
            out.push(Parsed::unlabelled(build_trace(
                input, group, collected, warnings,
            )));
        }
        Ok(out)
    }
}

/// Where one `TracesData` object sits in the input.
pub(crate) struct DocPlace {
    pub(crate) line: Option<u32>,
    pub(crate) pointer: String,
}

struct Resource {
    attrs: Vec<(String, Value)>,
    schema_url: Option<String>,
}

struct Scope {
    name: Option<String>,
    version: Option<String>,
    attrs: Vec<(String, Value)>,
    schema_url: Option<String>,
}

struct RawSpan {
    obj: Map<String, Value>,
    source: SourceRef,
    resource: usize,
    scope: usize,
}

struct TraceGroup {
    trace_id: String,
    /// The spans, already mapped.
    drafts: Vec<Draft>,
    /// The resource and scope each span came from (indices into `Collected`).
    origins: Vec<(usize, usize)>,
}

/// Spans read so far, grouped by trace id. Each span is mapped as soon as it is read, so its
/// JSON can be dropped at once: the loader's streamed path (`crate::streamed`) hands over one
/// `resourceSpans` element at a time and never holds a large file's whole document.
#[derive(Default)]
pub(crate) struct Collected {
    resources: Vec<Resource>,
    scopes: Vec<Scope>,
    traces: Vec<TraceGroup>,
    by_trace_id: HashMap<String, usize>,
    warnings: Vec<String>,
    /// Room to make for the spans of the first trace (a guess from the document's size), so
    /// a large trace's span table is allocated once instead of grown by doubling.
    pub(crate) first_trace_capacity: usize,
}

/// Where `resourceSpans` can be found, with the JSON Pointer of each place.
const RESOURCE_SPANS_PATHS: [(&str, &[&str]); 5] = [
    ("/resourceSpans", &["resourceSpans"]),
    ("/resource_spans", &["resource_spans"]),
    ("/result/resourceSpans", &["result", "resourceSpans"]),
    ("/result/resource_spans", &["result", "resource_spans"]),
    ("/batches", &["batches"]),
];

const SCOPE_SPANS_KEYS: [&str; 4] = [
    "scopeSpans",
    "scope_spans",
    "instrumentationLibrarySpans",
    "instrumentation_library_spans",
];

impl Collected {
    fn read_doc(&mut self, input: &Input, doc: &mut Value, place: &DocPlace) {
        let where_ = match place.line {
            Some(line) => format!("line {line}"),
            None if place.pointer.is_empty() => "the document".to_owned(),
            None => format!("item {}", place.pointer),
        };
        let found = RESOURCE_SPANS_PATHS
            .iter()
            .find(|(_, path)| crate::util::get(doc, path).is_some_and(Value::is_array))
            .and_then(|(pointer, path)| {
                let mut cur = &mut *doc;
                for key in *path {
                    cur = cur.get_mut(*key)?;
                }
                cur.as_array_mut().map(|list| (*pointer, list))
            });
        let Some((container, resource_spans)) = found else {
            self.warnings
                .push(format!("{where_}: no `resourceSpans` array; skipped"));
            return;
        };
        for (r, rs) in resource_spans.iter_mut().enumerate() {
            self.read_resource_spans(input, rs, r, container, place, &where_);
        }
    }

    /// Reads `resourceSpans[r]` (`rs`) of the document at `place`; `container` is the JSON
    /// Pointer of the `resourceSpans` array and `where_` names the document in warnings.
    /// Span objects are moved out of `rs`.
    pub(crate) fn read_resource_spans(
        &mut self,
        input: &Input,
        rs: &mut Value,
        r: usize,
        container: &str,
        place: &DocPlace,
        where_: &str,
    ) {
        let resource = Resource {
            attrs: decode_attributes(rs.get("resource").and_then(|res| res.get("attributes"))),
            schema_url: first_str(rs, &["schemaUrl", "schema_url"]),
        };
        self.resources.push(resource);
        let resource_idx = self.resources.len() - 1;
        let mut any_scope_list = false;
        for key in SCOPE_SPANS_KEYS {
            let Some(scope_spans) = rs.get_mut(key).and_then(Value::as_array_mut) else {
                continue;
            };
            any_scope_list = true;
            for (s, ss) in scope_spans.iter_mut().enumerate() {
                let scope_obj = ss
                    .get("scope")
                    .or_else(|| ss.get("instrumentationLibrary"))
                    .or_else(|| ss.get("instrumentation_library"));
                self.scopes.push(Scope {
                    name: scope_obj.and_then(|o| first_str(o, &["name"])),
                    version: scope_obj.and_then(|o| first_str(o, &["version"])),
                    attrs: decode_attributes(scope_obj.and_then(|o| o.get("attributes"))),
                    schema_url: first_str(ss, &["schemaUrl", "schema_url"]),
                });
                let scope_idx = self.scopes.len() - 1;
                let Some(spans) = ss.get_mut("spans").and_then(Value::as_array_mut) else {
                    continue;
                };
                for (k, span) in spans.iter_mut().enumerate() {
                    let pointer = format!("{}{container}/{r}/{key}/{s}/spans/{k}", place.pointer);
                    let Value::Object(obj) = std::mem::take(span) else {
                        self.warnings.push(format!(
                            "{where_}: span at {pointer} is not an object; skipped"
                        ));
                        continue;
                    };
                    let source = match place.line {
                        Some(line) => SourceRef {
                            pointer: Some(pointer),
                            ..input.at_line(line)
                        },
                        None => input.at(pointer),
                    };
                    let trace_id = either(&obj, "traceId", "trace_id")
                        .and_then(|v| otel_id(v, 16))
                        .unwrap_or_default();
                    self.add(
                        trace_id,
                        RawSpan {
                            obj,
                            source,
                            resource: resource_idx,
                            scope: scope_idx,
                        },
                    );
                }
            }
        }
        if !any_scope_list {
            self.warnings.push(format!(
                "{where_}: resource {r} has no `scopeSpans`; skipped"
            ));
        }
    }

    fn add(&mut self, trace_id: String, raw: RawSpan) {
        let group = self.by_trace_id.get(&trace_id).copied();
        // A span's position is its index within its trace.
        let position = group.map_or(0, |i| self.traces[i].drafts.len());
        let origin = (raw.resource, raw.scope);
        let draft = read_span(
            raw,
            position,
            &self.resources[origin.0],
            &self.scopes[origin.1],
        );
        let i = if let Some(i) = group {
            i
        } else {
            self.by_trace_id.insert(trace_id.clone(), self.traces.len());
            let capacity = std::mem::take(&mut self.first_trace_capacity);
            self.traces.push(TraceGroup {
                trace_id,
                drafts: Vec::with_capacity(capacity),
                origins: Vec::with_capacity(capacity),
            });
            self.traces.len() - 1
        };
        self.traces[i].drafts.push(draft);
        self.traces[i].origins.push(origin);
    }
}

fn build_trace(
    input: &Input,
    group: TraceGroup,
    collected: &Collected,
    warnings: &[String],
) -> crate::model::Trace {
    // Trace-level facts our own exporter records on the resource.
    let mut pisama: BTreeMap<String, Value> = BTreeMap::new();
    let mut format_version = None;
    for &(resource, scope) in &group.origins {
        let resource = &collected.resources[resource];
        for (k, v) in &resource.attrs {
            if k.starts_with("pisama.") {
                pisama.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if format_version.is_none() {
            let scope = &collected.scopes[scope];
            format_version = [&scope.schema_url, &resource.schema_url]
                .into_iter()
                .flatten()
                .find_map(|url| genai_schema_version(url));
        }
    }
    let native_trace_id = (!group.trace_id.is_empty()).then(|| group.trace_id.clone());
    let id = pisama
        .get("pisama.trace.id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| native_trace_id.clone())
        .unwrap_or_else(|| input.synth_id("otlp"));
    let mut b = TraceBuilder::new(Format::Otlp, id.clone());
    for w in warnings {
        b.warn(w.clone());
    }
    if native_trace_id.is_none() {
        b.warn("spans carry no `traceId`; they were grouped as one trace with a synthesized id");
    }
    b.trace_mut().format_version = format_version;
    if let Some(native) = native_trace_id.filter(|n| *n != id) {
        b.trace_mut()
            .metadata
            .insert("otlp.trace_id".to_owned(), Value::String(native));
    }
    apply_trace_round_trip(&mut b, &pisama);

    let first_resource = group
        .origins
        .first()
        .and_then(|&(resource, _)| collected.resources.get(resource));
    let drafts = group.drafts;
    let mut conventions = Conventions::default();
    for draft in &drafts {
        conventions.merge(draft.mapped.conventions);
    }
    if let Some((_, service)) =
        first_resource.and_then(|r| r.attrs.iter().find(|(k, _)| k == "service.name"))
    {
        b.trace_mut()
            .metadata
            .insert("service.name".to_owned(), service.clone());
    }
    let names = conventions.names();
    if !names.is_empty() {
        b.trace_mut().metadata.insert(
            "otlp.conventions".to_owned(),
            Value::Array(
                names
                    .into_iter()
                    .map(|n| Value::String(n.to_owned()))
                    .collect(),
            ),
        );
    }
    assemble(&mut b, drafts);
    b.finish()
}

/// Restores trace-level fields written by our exporter as `pisama.*` resource attributes.
fn apply_trace_round_trip(b: &mut TraceBuilder, pisama: &BTreeMap<String, Value>) {
    let text = |key: &str| {
        pisama
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let trace = b.trace_mut();
    if let Some(session) = text("pisama.session.id") {
        trace.session_id = Some(session);
    }
    trace.task = text("pisama.trace.task");
    trace.final_output = text("pisama.trace.final_output");
    if let Some(status) = text("pisama.trace.status") {
        trace.status = match status.as_str() {
            "ok" => Status::Ok,
            "error" => Status::Error,
            _ => Status::Unset,
        };
    }
    if let Some(format) = text("pisama.source.format") {
        trace
            .metadata
            .insert("pisama.source.format".to_owned(), Value::String(format));
    }
    if let Some(version) = text("pisama.source.format_version") {
        trace.metadata.insert(
            "pisama.source.format_version".to_owned(),
            Value::String(version),
        );
    }
    if let Some(Value::Object(meta)) = text("pisama.metadata").map(|s| maybe_json(&s)) {
        for (k, v) in meta {
            trace.metadata.entry(k).or_insert(v);
        }
    }
    if let Some(Value::Array(agents)) = text("pisama.agents").map(|s| maybe_json(&s)) {
        for agent in agents {
            if let Ok(info) = serde_json::from_value::<AgentInfo>(agent) {
                b.agent(info);
            }
        }
    }
}

/// `https://opentelemetry.io/schemas/gen-ai/1.42.0` → `gen-ai/1.42.0`.
pub(crate) fn genai_schema_version(url: &str) -> Option<String> {
    let at = url.find("gen-ai/")?;
    let version = url[at..].trim_end_matches('/');
    (version.len() > "gen-ai/".len()).then(|| version.to_owned())
}

fn read_span(raw: RawSpan, position: usize, resource: &Resource, scope: &Scope) -> Draft {
    let mut o = raw.obj;
    let native_id = either(&o, "spanId", "span_id")
        .and_then(|v| otel_id(v, 8))
        .unwrap_or_default();
    let parent_id = either(&o, "parentSpanId", "parent_span_id").and_then(|v| otel_id(v, 8));
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut span = Span {
        id: if native_id.is_empty() {
            format!("span-{position}")
        } else {
            native_id.clone()
        },
        name,
        start_ns: either(&o, "startTimeUnixNano", "start_time_unix_nano").and_then(unix_nanos),
        end_ns: either(&o, "endTimeUnixNano", "end_time_unix_nano").and_then(unix_nanos),
        source: raw.source,
        ..Span::default()
    };
    let status = o.get("status");
    span.status = status
        .and_then(|s| s.get("code"))
        .map_or(Status::Unset, status_of);
    let status_message = status.and_then(|s| first_str(s, &["message"]));
    if let Some(Value::Array(events)) = o.remove("events") {
        for mut e in events {
            span.events.push(SpanEvent {
                name: e
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("event")
                    .to_owned(),
                time_ns: either(&e, "timeUnixNano", "time_unix_nano").and_then(unix_nanos),
                attributes: decode_attributes_owned(e.get_mut("attributes").map(Value::take))
                    .into_iter()
                    .collect(),
            });
        }
    }
    if let Some(Value::Array(links)) = o.get("links") {
        for l in links {
            if let Some(target) = either(l, "spanId", "span_id").and_then(|v| otel_id(v, 8)) {
                span.links.push(Link {
                    kind: LinkKind::FollowsFrom,
                    target,
                });
            }
        }
    }
    let mut attrs: BTreeMap<String, Value> = decode_attributes_owned(o.remove("attributes"))
        .into_iter()
        .collect();
    if let Some(kind) = o.get("kind").and_then(otel_span_kind) {
        attrs.insert("otel.span_kind".to_owned(), Value::String(kind.to_owned()));
    }
    for (key, name) in [
        ("traceState", "otel.trace_state"),
        ("trace_state", "otel.trace_state"),
    ] {
        if let Some(v) = o
            .get(key)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            attrs.insert(name.to_owned(), v.clone());
        }
    }
    let mapped = map_span(&mut span, attrs, status_message);
    // Keys already on the span (from an earlier `pisama convert --to otlp`) are kept.
    let mut add = |key: String, value: &Value| {
        if !value.is_null() {
            span.attributes.entry(key).or_insert_with(|| value.clone());
        }
    };
    for (k, v) in &resource.attrs {
        if !k.starts_with("pisama.") {
            add(format!("resource.{k}"), v);
        }
    }
    if let Some(n) = &scope.name {
        add("scope.name".to_owned(), &Value::String(n.clone()));
    }
    if let Some(v) = &scope.version {
        add("scope.version".to_owned(), &Value::String(v.clone()));
    }
    for (k, v) in &scope.attrs {
        add(format!("scope.{k}"), v);
    }
    let parent = parent_id.map_or(DraftParent::None, DraftParent::Id);
    Draft {
        span,
        native_id,
        parent,
        mapped,
    }
}

fn either<'v>(o: &'v impl JsonGet, camel: &str, snake: &str) -> Option<&'v Value> {
    o.field(camel).or_else(|| o.field(snake))
}

/// Lets `either` work on both `Value` and `Map`.
trait JsonGet {
    fn field(&self, key: &str) -> Option<&Value>;
}

impl JsonGet for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

impl JsonGet for Map<String, Value> {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

fn first_str(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        v.get(*k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    })
}

// ---- OTLP encoding ---------------------------------------------------------------------------

/// Decodes an OTLP `AnyValue` to plain JSON. Values that are not `AnyValue` wrappers (some
/// writers put raw JSON in `attributes`) are returned as they are.
pub(crate) fn decode_any(v: &Value) -> Value {
    let Value::Object(o) = v else {
        return v.clone();
    };
    if o.is_empty() {
        return Value::Null;
    }
    if o.len() != 1 {
        return v.clone();
    }
    let Some((key, inner)) = o.iter().next() else {
        return Value::Null;
    };
    match key.as_str() {
        "stringValue" | "string_value" | "bytesValue" | "bytes_value" => inner.clone(),
        "boolValue" | "bool_value" => match inner {
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            other => other.clone(),
        },
        "intValue" | "int_value" => match inner {
            Value::String(s) => {
                let t = s.trim();
                t.parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| t.parse::<u64>().map(Value::from))
                    .unwrap_or_else(|_| inner.clone())
            }
            other => other.clone(),
        },
        "doubleValue" | "double_value" => match inner {
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| inner.clone(), Value::Number),
            other => other.clone(),
        },
        "arrayValue" | "array_value" => Value::Array(
            inner
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().map(decode_any).collect())
                .unwrap_or_default(),
        ),
        "kvlistValue" | "kvlist_value" => {
            Value::Object(decode_attributes(inner.get("values")).into_iter().collect())
        }
        _ => v.clone(),
    }
}

/// Decodes an OTLP `KeyValue` list (or, leniently, a plain JSON object) into pairs.
/// [`decode_attributes`] for an owned value: keys and values are moved, not copied.
fn decode_attributes_owned(v: Option<Value>) -> Vec<(String, Value)> {
    match v {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|kv| {
                let Value::Object(mut kv) = kv else {
                    return None;
                };
                let Some(Value::String(key)) = kv.remove("key") else {
                    return None;
                };
                Some((
                    key,
                    kv.remove("value").map_or(Value::Null, decode_any_owned),
                ))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| (k, decode_any_owned(v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// [`decode_any`] for an owned value: strings move out of their `stringValue` wrapper.
fn decode_any_owned(v: Value) -> Value {
    match v {
        Value::Object(mut o) if o.len() == 1 => {
            for key in ["stringValue", "string_value", "bytesValue", "bytes_value"] {
                if let Some(inner) = o.remove(key) {
                    return inner;
                }
            }
            decode_any(&Value::Object(o))
        }
        other => decode_any(&other),
    }
}

pub(crate) fn decode_attributes(v: Option<&Value>) -> Vec<(String, Value)> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|kv| {
                let key = kv.get("key")?.as_str()?;
                Some((
                    key.to_owned(),
                    kv.get("value").map_or(Value::Null, decode_any),
                ))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), decode_any(v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Flattens nested attribute objects into dotted keys, as Phoenix and TRAIL may nest
/// OpenInference keys (`{"llm": {"model_name": ...}}`). Lists of objects become indexed keys
/// (`llm.input_messages.0.message.role`), the flat form OpenInference defines; other lists stay
/// values.
pub(crate) fn flatten_attributes(v: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Value::Object(map) = v {
        for (k, child) in map {
            flatten_value(k, child, &mut out);
        }
    }
    out
}

fn flatten_value(key: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                flatten_value(&format!("{key}.{k}"), child, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            for (i, child) in items.iter().enumerate() {
                flatten_value(&format!("{key}.{i}"), child, out);
            }
        }
        other => {
            out.insert(key.to_owned(), other.clone());
        }
    }
}

/// A trace id (`bytes` = 16) or span id (8): hex lower-cased, base64 decoded to hex, a `0x`
/// prefix dropped. All-zero and empty ids mean "none". Anything else is kept as written.
pub(crate) fn otel_id(v: &Value, bytes: usize) -> Option<String> {
    let raw = v.as_str()?.trim();
    let raw = raw
        .strip_prefix("0x")
        .or_else(|| raw.strip_prefix("0X"))
        .unwrap_or(raw);
    if raw.is_empty() {
        return None;
    }
    let all_hex = raw.bytes().all(|b| b.is_ascii_hexdigit());
    let id = if all_hex && raw.len() == bytes * 2 {
        raw.to_ascii_lowercase()
    } else if let Some(decoded) = base64_decode(raw).filter(|d| d.len() == bytes) {
        hex(&decoded)
    } else if all_hex {
        raw.to_ascii_lowercase()
    } else {
        raw.to_owned()
    };
    (!id.bytes().all(|b| b == b'0')).then_some(id)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Standard or URL-safe base64, padding optional.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Epoch nanoseconds from a decimal string or a JSON number, exact for integers (bare numbers
/// above 2^53 must not go through `f64`). Zero means unset.
pub(crate) fn unix_nanos(v: &Value) -> Option<i64> {
    let n = match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) => i64::try_from(u).ok(),
            None => n
                .as_f64()
                .filter(|f| f.is_finite() && *f > 0.0)
                .map(|f| f as i64),
        },
        Value::String(s) => {
            let t = s.trim();
            t.parse::<u64>()
                .ok()
                .and_then(|u| i64::try_from(u).ok())
                .or_else(|| parse_time(t))
        }
        _ => None,
    }?;
    (n > 0).then_some(n)
}

/// OTLP span kind (integer or `SPAN_KIND_*`) as a lower-case name; `None` when unspecified.
pub(crate) fn otel_span_kind(v: &Value) -> Option<&'static str> {
    let code = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => match s
            .trim()
            .trim_start_matches("SPAN_KIND_")
            .trim_start_matches("SpanKind.")
            .to_ascii_uppercase()
            .as_str()
        {
            "INTERNAL" => 1,
            "SERVER" => 2,
            "CLIENT" => 3,
            "PRODUCER" => 4,
            "CONSUMER" => 5,
            digits => digits.parse().ok()?,
        },
        _ => return None,
    };
    match code {
        1 => Some("internal"),
        2 => Some("server"),
        3 => Some("client"),
        4 => Some("producer"),
        5 => Some("consumer"),
        _ => None,
    }
}

/// A status code as an integer (0, 1, 2) or a name (`STATUS_CODE_ERROR`, `ERROR`, `Error`).
pub(crate) fn status_of(v: &Value) -> Status {
    let name = match v {
        Value::Number(n) => {
            return match n.as_u64() {
                Some(1) => Status::Ok,
                Some(2) => Status::Error,
                _ => Status::Unset,
            };
        }
        Value::String(s) => s.trim().to_ascii_uppercase(),
        _ => return Status::Unset,
    };
    match name
        .trim_start_matches("STATUS_CODE_")
        .trim_start_matches("STATUSCODE.")
    {
        "OK" | "1" => Status::Ok,
        "ERROR" | "2" => Status::Error,
        _ => Status::Unset,
    }
}

// ---- spans before they join a trace ----------------------------------------------------------

/// A span read from an OpenTelemetry-shaped source, before parents and handoffs are resolved.
#[derive(Debug)]
pub(crate) struct Draft {
    pub(crate) span: Span,
    /// The id other spans name as their parent (the span's own id may be restored from
    /// `pisama.span.id`).
    pub(crate) native_id: String,
    pub(crate) parent: DraftParent,
    pub(crate) mapped: Mapped,
}

#[derive(Debug)]
pub(crate) enum DraftParent {
    None,
    /// A native parent id.
    Id(String),
    /// Another draft's position (TRAIL nesting).
    Index(usize),
}

/// Pushes drafts into the builder: resolves parents, synthesizes handoffs between nested
/// agents, declares agents, takes the session id and the mapping warnings.
pub(crate) fn assemble(b: &mut TraceBuilder, drafts: Vec<Draft>) {
    let n = drafts.len();
    b.reserve(n);
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(n);
    let mut duplicates = 0usize;
    for (i, d) in drafts.iter().enumerate() {
        if d.native_id.is_empty() {
            continue;
        }
        if by_id.insert(d.native_id.as_str(), i).is_some() {
            duplicates += 1;
        }
    }
    if duplicates > 0 {
        b.warn(format!(
            "{duplicates} span id(s) appear more than once; parents refer to the last"
        ));
    }
    let parents: Vec<Option<usize>> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| match &d.parent {
            DraftParent::None => None,
            DraftParent::Id(id) => by_id.get(id.as_str()).copied().filter(|&p| p != i),
            DraftParent::Index(p) => Some(*p).filter(|&p| p != i && p < n),
        })
        .collect();

    // Handoffs: an agent invocation under another agent's invocation.
    let round_trip = drafts.iter().any(|d| d.mapped.written_by_pisama);
    let mut handoffs: Vec<Option<(String, String)>> = vec![None; n];
    if !round_trip {
        for i in 0..n {
            if !drafts[i].mapped.invokes_agent {
                continue;
            }
            let Some(to) = drafts[i].span.agent.clone() else {
                continue;
            };
            let mut cur = parents[i];
            let mut steps = 0;
            while let Some(p) = cur {
                if drafts[p].mapped.invokes_agent || steps > n {
                    break;
                }
                cur = parents[p];
                steps += 1;
            }
            let from = cur
                .filter(|&p| drafts[p].mapped.invokes_agent)
                .and_then(|p| drafts[p].span.agent.clone());
            if let Some(from) = from.filter(|f| *f != to) {
                handoffs[i] = Some((from, to));
            }
        }
    }

    // The root span's output is the run's answer (an agent's `output.value`), when the root
    // is something that answers (as in the builder's own fallback): a root tool call's
    // result is not the run's answer.
    let root_output = drafts
        .iter()
        .find(|d| {
            matches!(d.parent, DraftParent::None)
                && d.span.output.is_some()
                && matches!(
                    d.span.kind,
                    SpanKind::Agent | SpanKind::Llm | SpanKind::Step
                )
        })
        .and_then(|d| d.span.output.as_ref())
        .map(|p| p.text.clone())
        .filter(|t| !t.is_empty());
    if b.trace_mut().final_output.is_none() {
        b.trace_mut().final_output = root_output;
    }

    let mut builder_idx = vec![0usize; n];
    let mut handoff_idx: Vec<Option<usize>> = vec![None; n];
    let mut unresolved: Vec<(usize, String)> = Vec::new();
    for (i, draft) in drafts.into_iter().enumerate() {
        if let Some((from, to)) = handoffs[i].take() {
            let span = &draft.span;
            let handoff = Span {
                id: format!("{}.handoff", span.id),
                kind: SpanKind::Handoff,
                name: format!("delegate to {to}"),
                agent: Some(from.clone()),
                start_ns: span.start_ns,
                end_ns: span.start_ns,
                handoff: Some(Box::new(Handoff {
                    from: Some(from.clone()),
                    to: to.clone(),
                    mode: HandoffMode::Delegate,
                })),
                source: span.source.clone(),
                ..Span::default()
            };
            handoff_idx[i] = Some(b.push(handoff));
            b.agent(AgentInfo {
                name: to,
                parent_agent: Some(from),
                ..AgentInfo::default()
            });
        }
        let Draft {
            span,
            parent,
            mapped,
            ..
        } = draft;
        if parents[i].is_none()
            && let DraftParent::Id(id) = parent
        {
            unresolved.push((i, id));
        }
        if let Some(session) = mapped.session_id {
            let trace = b.trace_mut();
            if trace.session_id.is_none() {
                trace.session_id = Some(session);
            }
        }
        if let Some(info) = mapped.agent_info {
            b.agent(info);
        }
        for w in mapped.warnings {
            b.warn(format!("span {}: {w}", span.id));
        }
        builder_idx[i] = b.push(span);
    }
    for i in 0..n {
        if let Some(p) = parents[i] {
            b.set_parent(builder_idx[i], builder_idx[p]);
            if let Some(h) = handoff_idx[i] {
                b.set_parent(h, builder_idx[p]);
            }
        }
    }
    for (i, id) in unresolved {
        // The builder reports parents it cannot find.
        b.set_parent_id(builder_idx[i], id);
    }
}

// ---- attribute mapping (shared with Phoenix spans and TRAIL) ---------------------------------

/// What [`map_span`] learned beyond the span itself.
#[derive(Debug, Default)]
pub(crate) struct Mapped {
    /// The span is an agent invocation (GenAI `invoke_agent`, OpenInference `AGENT`), which
    /// makes nested invocations of other agents delegations.
    pub(crate) invokes_agent: bool,
    pub(crate) session_id: Option<String>,
    pub(crate) agent_info: Option<AgentInfo>,
    /// Written by `pisama convert --to otlp` (carries `pisama.*` attributes).
    pub(crate) written_by_pisama: bool,
    pub(crate) conventions: Conventions,
    pub(crate) warnings: Vec<String>,
}

/// Which attribute families a span used.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Conventions {
    genai: bool,
    openllmetry: bool,
    openinference: bool,
}

impl Conventions {
    fn of<'k>(keys: impl Iterator<Item = &'k String>) -> Self {
        let mut c = Conventions::default();
        for k in keys {
            if k.starts_with("gen_ai.prompt.")
                || k.starts_with("gen_ai.completion.")
                || k.starts_with("traceloop.")
                || k == "llm.usage.total_tokens"
                || k == "llm.request.type"
            {
                c.openllmetry = true;
            } else if k.starts_with("gen_ai.") {
                c.genai = true;
            }
            if k == "openinference.span.kind"
                || k.starts_with("llm.token_count.")
                || k.starts_with("llm.input_messages.")
                || k == "input.value"
            {
                c.openinference = true;
            }
        }
        c
    }

    fn merge(&mut self, other: Conventions) {
        self.genai |= other.genai;
        self.openllmetry |= other.openllmetry;
        self.openinference |= other.openinference;
    }

    fn names(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.genai {
            out.push("gen_ai");
        }
        if self.openllmetry {
            out.push("openllmetry");
        }
        if self.openinference {
            out.push("openinference");
        }
        out
    }
}

/// Applies a span's flat attributes (plain JSON values, dotted keys) to `span`, whose id, name,
/// times, status and events the caller has already set. `status_message` is the source's
/// status description. Unmapped attributes end up in `span.attributes`.
pub(crate) fn map_span(
    span: &mut Span,
    attrs: BTreeMap<String, Value>,
    status_message: Option<String>,
) -> Mapped {
    let mut a = Attrs {
        map: attrs,
        warnings: Vec::new(),
    };
    let mut mapped = Mapped {
        written_by_pisama: a.map.keys().any(|k| k.starts_with("pisama.")),
        conventions: Conventions::of(a.map.keys()),
        ..Mapped::default()
    };

    let operation = a.peek_str("gen_ai.operation.name").map(str::to_owned);
    span.kind = a
        .take_str("pisama.span.kind")
        .and_then(|k| SpanKind::ALL.into_iter().find(|s| s.name() == k))
        .or_else(|| operation.as_deref().and_then(kind_of_operation))
        .or_else(|| {
            a.peek_str("openinference.span.kind")
                .and_then(kind_of_openinference)
        })
        .or_else(|| {
            a.peek_str("traceloop.span.kind")
                .and_then(kind_of_traceloop)
        })
        .or_else(|| {
            a.peek_str("llm.request.type")
                .and_then(kind_of_request_type)
        })
        .unwrap_or_else(|| fallback_kind(&a));
    mapped.invokes_agent =
        span.kind == SpanKind::Agent && operation.as_deref() != Some("create_agent");
    let traceloop_kind = a.peek_str("traceloop.span.kind").map(str::to_owned);

    // Agent and session.
    span.agent = a
        .take_str("pisama.agent")
        .or_else(|| a.take_str("gen_ai.agent.name"))
        .or_else(|| a.take_str("agent.name"))
        .or_else(|| a.take_str("graph.node.name"))
        .or_else(|| {
            (traceloop_kind.as_deref() == Some("agent"))
                .then(|| a.take_str("traceloop.entity.name"))
                .flatten()
        })
        .or_else(|| {
            (span.kind == SpanKind::Agent)
                .then(|| agent_from_span_name(&span.name))
                .flatten()
        });
    if span.kind == SpanKind::Agent
        && let Some(name) = &span.agent
    {
        mapped.agent_info = Some(AgentInfo {
            name: name.clone(),
            id: a.take_str("gen_ai.agent.id"),
            role: a.take_str("gen_ai.agent.description"),
            ..AgentInfo::default()
        });
    }
    mapped.session_id = a
        .take_str("gen_ai.conversation.id")
        .or_else(|| a.take_str("session.id"));
    if let Some(step) = a.take_u64("pisama.step") {
        span.step = u32::try_from(step).ok();
    }
    if let Some(original) = a.take_str("pisama.span.id") {
        span.id = original;
    }
    if let Some(inferred) = a.take_bool("pisama.time_inferred") {
        span.time_inferred = inferred;
    }
    if let Some(links) = a.take("pisama.links") {
        let parsed = match &links {
            Value::String(s) => serde_json::from_str::<Vec<Link>>(s).ok(),
            other => serde_json::from_value::<Vec<Link>>(other.clone()).ok(),
        };
        match parsed {
            Some(mut l) => span.links.append(&mut l),
            None => a
                .warnings
                .push("attribute `pisama.links`: expected a JSON list of links".to_owned()),
        }
    }

    // Input and output.
    let traceloop_input = a.take_payload("traceloop.entity.input", None, None);
    let traceloop_output = a.take_payload("traceloop.entity.output", None, None);
    span.input = (a
        .take_payload(
            "input.value",
            Some("input.mime_type"),
            Some("pisama.input.json"),
        )
        .or(traceloop_input))
    .map(Box::new);
    span.output = (a
        .take_payload(
            "output.value",
            Some("output.mime_type"),
            Some("pisama.output.json"),
        )
        .or(traceloop_output))
    .map(Box::new);

    apply_error(span, &mut a, status_message);
    // Our exporter says so when a span's details do not follow from its kind.
    let has_llm = a
        .take_bool("pisama.llm")
        .unwrap_or(matches!(span.kind, SpanKind::Llm | SpanKind::Embedding));
    if has_llm {
        apply_llm(span, &mut a);
    }
    apply_usage_and_cost(span, &mut a);
    if a.take_bool("pisama.tool")
        .unwrap_or(span.kind == SpanKind::Tool)
    {
        apply_tool(span, &mut a, traceloop_kind.as_deref() == Some("tool"));
    }
    if let Some(to) = a.take_str("pisama.handoff.to") {
        let mode = match a.take_str("pisama.handoff.mode").as_deref() {
            Some("delegate") => HandoffMode::Delegate,
            Some("return") => HandoffMode::Return,
            Some("message") => HandoffMode::Message,
            _ => HandoffMode::Transfer,
        };
        span.handoff = Some(Box::new(Handoff {
            from: a.take_str("pisama.handoff.from"),
            to,
            mode,
        }));
    }
    for (k, v) in a.map {
        if !v.is_null() {
            span.attributes.insert(k, v);
        }
    }
    mapped.warnings = a.warnings;
    mapped
}

fn kind_of_operation(op: &str) -> Option<SpanKind> {
    Some(match op {
        "chat" | "text_completion" | "generate_content" | "completion" => SpanKind::Llm,
        "embeddings" | "embedding" => SpanKind::Embedding,
        "retrieval" => SpanKind::Retrieval,
        "create_agent" | "invoke_agent" => SpanKind::Agent,
        "execute_tool" => SpanKind::Tool,
        "invoke_workflow" | "plan" => SpanKind::Step,
        _ => return None,
    })
}

fn kind_of_openinference(kind: &str) -> Option<SpanKind> {
    Some(match kind.to_ascii_uppercase().as_str() {
        "LLM" => SpanKind::Llm,
        "TOOL" => SpanKind::Tool,
        "AGENT" => SpanKind::Agent,
        "CHAIN" | "DECISION" | "PROMPT" => SpanKind::Step,
        "RETRIEVER" | "RERANKER" => SpanKind::Retrieval,
        "EMBEDDING" => SpanKind::Embedding,
        "GUARDRAIL" | "EVALUATOR" => SpanKind::Other,
        _ => return None,
    })
}

fn kind_of_traceloop(kind: &str) -> Option<SpanKind> {
    Some(match kind {
        "workflow" | "task" => SpanKind::Step,
        "agent" => SpanKind::Agent,
        "tool" => SpanKind::Tool,
        _ => return None,
    })
}

fn kind_of_request_type(kind: &str) -> Option<SpanKind> {
    Some(match kind {
        "chat" | "completion" => SpanKind::Llm,
        "embedding" => SpanKind::Embedding,
        "rerank" => SpanKind::Retrieval,
        _ => return None,
    })
}

/// No kind attribute: tool keys make a tool, model or message keys a model call, else a step.
fn fallback_kind(a: &Attrs) -> SpanKind {
    let has = |k: &str| a.map.contains_key(k);
    let has_prefix = |p: &str| a.map.keys().any(|k| k.starts_with(p));
    if has("gen_ai.tool.name") || has("tool.name") {
        SpanKind::Tool
    } else if has("gen_ai.request.model")
        || has("llm.model_name")
        || has_prefix("gen_ai.prompt.")
        || has_prefix("llm.input_messages.")
    {
        SpanKind::Llm
    } else {
        SpanKind::Step
    }
}

/// `invoke_agent Researcher` → `Researcher`; smolagents `search_agent.run` → `search_agent`.
fn agent_from_span_name(name: &str) -> Option<String> {
    let n = name.trim();
    let n = n
        .strip_prefix("invoke_agent ")
        .or_else(|| n.strip_prefix("create_agent "))
        .unwrap_or(n);
    let n = n.strip_suffix(".run").unwrap_or(n).trim();
    (!n.is_empty()).then(|| n.to_owned())
}

fn apply_error(span: &mut Span, a: &mut Attrs, status_message: Option<String>) {
    let exception = span.events.iter().find(|e| e.name == "exception");
    let event_str = |key: &str| {
        exception
            .and_then(|e| e.attributes.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let exception_type = event_str("exception.type");
    let exception_message = event_str("exception.message");
    let exception_stack = event_str("exception.stacktrace");
    let error_type = a.take_str("error.type").filter(|t| t != "_OTHER");
    let handled = a.take_bool("pisama.error.handled");
    let status_message = status_message.filter(|m| !m.is_empty());
    let failed = span.status == Status::Error || exception.is_some() || error_type.is_some();
    if !failed {
        if let Some(m) = status_message {
            a.map
                .insert("otel.status_message".to_owned(), Value::String(m));
        }
        return;
    }
    let message = status_message
        .or(exception_message)
        .or_else(|| error_type.clone())
        .unwrap_or_else(|| "error".to_owned());
    span.error = Some(Box::new(ErrorInfo {
        kind: exception_type.or(error_type),
        message,
        stack: exception_stack,
        // An exception recorded on a span that still ended `Ok` was caught.
        handled: handled.unwrap_or(span.status == Status::Ok),
    }));
    span.status = Status::Error;
}

fn apply_llm(span: &mut Span, a: &mut Attrs) {
    let mut llm = LlmCall {
        provider: a.take_str_any(&[
            "gen_ai.provider.name",
            "gen_ai.system",
            "llm.provider",
            "llm.system",
        ]),
        request_model: a.take_str_any(&[
            "gen_ai.request.model",
            "llm.model_name",
            "llm.request.model",
        ]),
        response_model: a.take_str_any(&["gen_ai.response.model", "llm.response.model"]),
        ..LlmCall::default()
    };
    llm.finish_reason = match a.take("gen_ai.response.finish_reasons") {
        Some(Value::Array(reasons)) => reasons.first().and_then(Value::as_str).map(str::to_owned),
        Some(Value::String(s)) => maybe_json(&s)
            .as_array()
            .and_then(|r| r.first().and_then(Value::as_str).map(str::to_owned))
            .or(Some(s)),
        _ => None,
    };
    for (k, v) in a.take_prefix("gen_ai.request.", "gen_ai.request.model") {
        llm.params.insert(k, v);
    }
    match a.take("llm.invocation_parameters") {
        Some(Value::String(s)) => {
            if let Value::Object(params) = maybe_json(&s) {
                llm.params.extend(params);
            } else {
                a.warnings.push(
                    "attribute `llm.invocation_parameters`: expected a JSON object".to_owned(),
                );
                a.map
                    .insert("llm.invocation_parameters".to_owned(), Value::String(s));
            }
        }
        Some(Value::Object(params)) => llm.params.extend(params),
        Some(other) => {
            a.map.insert("llm.invocation_parameters".to_owned(), other);
        }
        None => {}
    }

    // Messages: GenAI attributes, else OpenLLMetry indexed keys, else OpenInference indexed
    // keys, else the GenAI details event.
    let mut finish = None;
    let mut input = Vec::new();
    if let Some(v) = a.take("gen_ai.system_instructions") {
        input.push(Message {
            role: Role::System,
            name: None,
            parts: parts_of(&v),
        });
    }
    if let Some(v) = a.take("gen_ai.input.messages") {
        input.extend(genai_messages(
            v,
            Role::User,
            &mut finish,
            &mut a.warnings,
            "gen_ai.input.messages",
        ));
    }
    let mut output = match a.take("gen_ai.output.messages") {
        Some(v) => genai_messages(
            v,
            Role::Assistant,
            &mut finish,
            &mut a.warnings,
            "gen_ai.output.messages",
        ),
        None => Vec::new(),
    };
    for prefix in ["gen_ai.prompt.", "llm.input_messages."] {
        if input.is_empty() {
            for fields in a.take_indexed(prefix).into_values() {
                input.push(indexed_message(&fields, Role::User, &mut finish));
            }
        }
    }
    for prefix in ["gen_ai.completion.", "llm.output_messages."] {
        if output.is_empty() {
            for fields in a.take_indexed(prefix).into_values() {
                output.push(indexed_message(&fields, Role::Assistant, &mut finish));
            }
        }
    }
    if input.is_empty() && output.is_empty() {
        let details = span
            .events
            .iter()
            .find(|e| e.name == "gen_ai.client.inference.operation.details");
        if let Some(e) = details {
            let mut warnings = Vec::new();
            if let Some(v) = e.attributes.get("gen_ai.system_instructions") {
                input.push(Message {
                    role: Role::System,
                    name: None,
                    parts: parts_of(v),
                });
            }
            if let Some(v) = e.attributes.get("gen_ai.input.messages") {
                input.extend(genai_messages(
                    v.clone(),
                    Role::User,
                    &mut finish,
                    &mut warnings,
                    "gen_ai.input.messages",
                ));
            }
            if let Some(v) = e.attributes.get("gen_ai.output.messages") {
                output.extend(genai_messages(
                    v.clone(),
                    Role::Assistant,
                    &mut finish,
                    &mut warnings,
                    "gen_ai.output.messages",
                ));
            }
            a.warnings.append(&mut warnings);
        }
    }
    if llm.finish_reason.is_none() {
        llm.finish_reason = finish;
    }
    if span.output.is_none() {
        let text = output.last().map(Message::joined_text).unwrap_or_default();
        if !text.is_empty() {
            span.output = Some(Box::new(Payload::text(text)));
        }
    }
    llm.input_messages = input;
    llm.output_messages = output;
    span.llm = Some(Box::new(llm));
}

fn apply_usage_and_cost(span: &mut Span, a: &mut Attrs) {
    let usage = Usage {
        input: a.take_u64_any(&[
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.usage.prompt_tokens",
            "llm.token_count.prompt",
        ]),
        output: a.take_u64_any(&[
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.completion_tokens",
            "llm.token_count.completion",
        ]),
        cache_read: a.take_u64_any(&[
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ]),
        cache_write: a.take_u64_any(&[
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ]),
        reasoning: a.take_u64_any(&[
            "gen_ai.usage.reasoning.output_tokens",
            "llm.token_count.completion_details.reasoning",
        ]),
        total: a.take_u64_any(&[
            "pisama.usage.total",
            "llm.usage.total_tokens",
            "llm.token_count.total",
            "gen_ai.usage.total_tokens",
        ]),
        estimated: a.take_bool("pisama.usage.estimated").unwrap_or(false),
    };
    let scope = a.take_str("pisama.usage.scope");
    if !usage.is_empty() {
        span.usage_scope = match scope.as_deref() {
            Some("subtree") => UsageScope::Subtree,
            Some("self_only") => UsageScope::SelfOnly,
            // Counts on an agent or chain span add up its children.
            _ if matches!(span.kind, SpanKind::Llm | SpanKind::Embedding) => UsageScope::SelfOnly,
            _ => UsageScope::Subtree,
        };
        span.usage = Some(Box::new(usage));
    }
    if let Some(amount) = a.take_f64("pisama.cost.amount") {
        let currency = a
            .take_str("pisama.cost.currency")
            .unwrap_or_else(|| "USD".to_owned());
        let source = match a.take_str("pisama.cost.source").as_deref() {
            Some("estimated") => CostSource::Estimated,
            _ => CostSource::Reported,
        };
        span.cost = Some(Cost {
            amount,
            currency,
            source,
        });
    } else if let Some(amount) = a.take_f64("llm.cost.total") {
        span.cost = Some(Cost {
            amount,
            currency: "USD".to_owned(),
            source: CostSource::Reported,
        });
    }
}

fn apply_tool(span: &mut Span, a: &mut Attrs, traceloop_tool: bool) {
    let name = a
        .take_str_any(&["gen_ai.tool.name", "tool.name"])
        .or_else(|| {
            traceloop_tool
                .then(|| a.take_str("traceloop.entity.name"))
                .flatten()
        })
        .unwrap_or_else(|| {
            let n = span.name.trim();
            n.strip_prefix("execute_tool ").unwrap_or(n).to_owned()
        });
    let call_id = a.take_str_any(&["gen_ai.tool.call.id", "tool.id", "tool_call.id"]);
    let arguments = match a
        .take("gen_ai.tool.call.arguments")
        .or_else(|| a.take("tool_call.function.arguments"))
    {
        Some(Value::String(s)) => maybe_json(&s),
        Some(other) => other,
        None => span
            .input
            .as_deref()
            .map_or(Value::Null, arguments_of_input),
    };
    let result = match a.take("gen_ai.tool.call.result") {
        Some(Value::String(s)) => Some(maybe_json(&s)),
        Some(other) => Some(other),
        None => span.output.as_ref().map(|p| {
            p.json
                .clone()
                .unwrap_or_else(|| Value::String(p.text.clone()))
        }),
    };
    if span.input.is_none() && !arguments.is_null() {
        span.input = Some(Box::new(Payload::from_json(arguments.clone())));
    }
    if span.output.is_none() {
        span.output = (result.clone().map(Payload::from_json)).map(Box::new);
    }
    let is_error = a
        .take_bool("pisama.tool.is_error")
        .unwrap_or(span.status == Status::Error);
    span.tool = Some(Box::new(ToolCall {
        name,
        call_id,
        arguments,
        result,
        is_error,
    }));
}

/// Tool arguments from an `input.value`: smolagents writes `{"args": [...], "kwargs": {...}}`,
/// so the keyword arguments are the call's arguments, or the positional ones when only those
/// were given.
fn arguments_of_input(input: &Payload) -> Value {
    let Some(json) = &input.json else {
        return Value::String(input.text.clone());
    };
    if json.get("args").is_none() && json.get("kwargs").is_none() {
        return json.clone();
    }
    let args = json
        .get("args")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    let kwargs = json
        .get("kwargs")
        .and_then(Value::as_object)
        .filter(|k| !k.is_empty());
    match (args, kwargs) {
        (None, Some(kwargs)) => Value::Object(kwargs.clone()),
        (Some(args), None) => Value::Array(args.clone()),
        (None, None) => Value::Object(Map::new()),
        (Some(_), Some(_)) => json.clone(),
    }
}

/// GenAI messages (`gen_ai.input.messages` / `gen_ai.output.messages`): a JSON string or a
/// structured value, each `{role, parts[], name?, finish_reason?}`. Older writers put plain
/// `content` instead of `parts`.
fn genai_messages(
    v: Value,
    default_role: Role,
    finish: &mut Option<String>,
    warnings: &mut Vec<String>,
    key: &str,
) -> Vec<Message> {
    let v = match v {
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(parsed) => parsed,
            Err(_) => return vec![Message::text(default_role, s)],
        },
        other => other,
    };
    let items = match v {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        Value::Null => return Vec::new(),
        other => {
            warnings.push(format!(
                "attribute `{key}`: expected a list of messages, got {}",
                json_type(&other)
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let Some(o) = item.as_object() else {
            if let Some(s) = item.as_str() {
                out.push(Message::text(default_role, s));
            }
            continue;
        };
        let role = o
            .get("role")
            .and_then(Value::as_str)
            .map_or(default_role, Role::parse);
        let parts = match o.get("parts").or_else(|| o.get("content")) {
            Some(p) => parts_of(p),
            None => Vec::new(),
        };
        if let Some(r) = o.get("finish_reason").and_then(Value::as_str) {
            *finish = Some(r.to_owned());
        }
        out.push(Message {
            role,
            name: o.get("name").and_then(Value::as_str).map(str::to_owned),
            parts,
        });
    }
    out
}

/// Message parts from a list of GenAI parts, a string, or a list of content blocks.
fn parts_of(v: &Value) -> Vec<Part> {
    match v {
        Value::String(s) => match maybe_json(s) {
            parsed @ Value::Array(_) => parts_of(&parsed),
            _ => vec![Part::Text { text: s.clone() }],
        },
        Value::Array(items) => items.iter().filter_map(part_of).collect(),
        Value::Object(_) => part_of(v).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn part_of(p: &Value) -> Option<Part> {
    if let Some(s) = p.as_str() {
        return Some(Part::Text { text: s.to_owned() });
    }
    let text = || {
        p.get("content")
            .or_else(|| p.get("text"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let id = p.get("id").and_then(Value::as_str).map(str::to_owned);
    let ty = p.get("type").and_then(Value::as_str).unwrap_or("text");
    Some(match ty {
        "reasoning" | "thinking" => Part::Reasoning { text: text()? },
        "tool_call" | "function_call" | "tool_use" => Part::ToolCall {
            id,
            name: p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            arguments: match p.get("arguments").or_else(|| p.get("input")) {
                Some(Value::String(s)) => maybe_json(s),
                Some(other) => other.clone(),
                None => Value::Null,
            },
        },
        "tool_call_response" | "tool_result" | "function_call_output" => Part::ToolResult {
            id: id.or_else(|| {
                p.get("tool_use_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
            content: p
                .get("response")
                .or_else(|| p.get("result"))
                .or_else(|| p.get("content"))
                .or_else(|| p.get("output"))
                .cloned()
                .unwrap_or(Value::Null),
            is_error: p.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        },
        "blob" | "uri" | "file" | "image" | "image_url" => Part::Media {
            mime: p
                .get("mime_type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            uri: p
                .get("uri")
                .or_else(|| p.get("file_id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        _ => Part::Text { text: text()? },
    })
}

/// One message from indexed keys, relative to `…messages.N.` (OpenInference, with its
/// `message.` prefix) or `gen_ai.prompt.N.` (OpenLLMetry).
fn indexed_message(
    fields: &BTreeMap<String, Value>,
    default_role: Role,
    finish: &mut Option<String>,
) -> Message {
    let get = |k: &str| {
        fields
            .get(&format!("message.{k}"))
            .or_else(|| fields.get(k))
    };
    let get_str = |k: &str| {
        get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let role = get_str("role").map_or(default_role, |r| Role::parse(&r));
    let mut parts = Vec::new();
    let tool_call_id = get_str("tool_call_id");
    match get("content") {
        Some(Value::String(s)) if role == Role::Tool => {
            parts.push(Part::ToolResult {
                id: tool_call_id.clone(),
                content: maybe_json(s),
                is_error: false,
            });
        }
        Some(content) => parts.extend(parts_of(content)),
        None => {}
    }
    // OpenInference `message.contents.J.message_content.{type,text}`.
    for c in group_by_index(fields, "message.contents.").into_values() {
        if let Some(text) = c.get("message_content.text").and_then(Value::as_str) {
            parts.push(Part::Text {
                text: text.to_owned(),
            });
        }
    }
    for prefix in ["message.tool_calls.", "tool_calls."] {
        for call in group_by_index(fields, prefix).into_values() {
            let field = |k: &str| call.get(&format!("tool_call.{k}")).or_else(|| call.get(k));
            let name = field("function.name")
                .or_else(|| field("name"))
                .and_then(Value::as_str);
            let Some(name) = name else { continue };
            let arguments = match field("function.arguments").or_else(|| field("arguments")) {
                Some(Value::String(s)) => maybe_json(s),
                Some(other) => other.clone(),
                None => Value::Null,
            };
            parts.push(Part::ToolCall {
                id: field("id").and_then(Value::as_str).map(str::to_owned),
                name: name.to_owned(),
                arguments,
            });
        }
    }
    if let Some(r) = get_str("finish_reason") {
        *finish = Some(r);
    }
    Message {
        role,
        name: get_str("name"),
        parts,
    }
}

/// Groups `prefix.N.rest` keys of `fields` by N.
fn group_by_index(
    fields: &BTreeMap<String, Value>,
    prefix: &str,
) -> BTreeMap<u32, BTreeMap<String, Value>> {
    let mut out: BTreeMap<u32, BTreeMap<String, Value>> = BTreeMap::new();
    for (k, v) in fields {
        if let Some((i, rest)) = k.strip_prefix(prefix).and_then(split_index) {
            out.entry(i).or_default().insert(rest.to_owned(), v.clone());
        }
    }
    out
}

/// `3.message.role` → (3, `message.role`).
fn split_index(key: &str) -> Option<(u32, &str)> {
    let (head, rest) = key.split_once('.')?;
    Some((head.parse().ok()?, rest)).filter(|(_, r)| !r.is_empty())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Flat attributes being consumed: mapped keys are taken out, the rest stay.
#[derive(Debug)]
struct Attrs {
    map: BTreeMap<String, Value>,
    warnings: Vec<String>,
}

impl Attrs {
    fn peek_str(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// A string (numbers and booleans are rendered); other types stay in place.
    fn take_str(&mut self, key: &str) -> Option<String> {
        let text = match self.map.get(key)? {
            Value::String(s) if !s.trim().is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        self.map.remove(key);
        Some(text)
    }

    fn take_str_any(&mut self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.take_str(k))
    }

    /// A non-negative integer (number or decimal string); anything else stays, with a warning.
    fn take_u64(&mut self, key: &str) -> Option<u64> {
        let v = self.map.get(key)?;
        if let Some(n) = as_u64(v) {
            self.map.remove(key);
            return Some(n);
        }
        let shown = crate::util::truncate(&v.to_string(), 40);
        self.warnings.push(format!(
            "attribute `{key}`: expected a non-negative integer, got {shown}"
        ));
        None
    }

    fn take_u64_any(&mut self, keys: &[&str]) -> Option<u64> {
        keys.iter().find_map(|k| self.take_u64(k))
    }

    fn take_f64(&mut self, key: &str) -> Option<f64> {
        let n = self
            .map
            .get(key)
            .and_then(as_f64)
            .filter(|f| f.is_finite())?;
        self.map.remove(key);
        Some(n)
    }

    fn take_bool(&mut self, key: &str) -> Option<bool> {
        let b = match self.map.get(key)? {
            Value::Bool(b) => *b,
            Value::String(s) if s.eq_ignore_ascii_case("true") => true,
            Value::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => return None,
        };
        self.map.remove(key);
        Some(b)
    }

    /// Takes every `prefix…` key except `except`, with the prefix stripped.
    fn take_prefix(&mut self, prefix: &str, except: &str) -> Vec<(String, Value)> {
        let keys: Vec<String> = self
            .map
            .keys()
            .filter(|k| k.starts_with(prefix) && k.as_str() != except)
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let v = self.map.remove(&k)?;
                Some((k[prefix.len()..].to_owned(), v))
            })
            .collect()
    }

    /// Takes `prefix.N.rest` keys, grouped by N in order.
    fn take_indexed(&mut self, prefix: &str) -> BTreeMap<u32, BTreeMap<String, Value>> {
        let keys: Vec<String> = self
            .map
            .keys()
            .filter(|k| k.strip_prefix(prefix).and_then(split_index).is_some())
            .cloned()
            .collect();
        let mut out: BTreeMap<u32, BTreeMap<String, Value>> = BTreeMap::new();
        for k in keys {
            let Some(v) = self.map.remove(&k) else {
                continue;
            };
            if let Some((i, rest)) = k.strip_prefix(prefix).and_then(split_index) {
                out.entry(i).or_default().insert(rest.to_owned(), v);
            }
        }
        out
    }

    /// A payload from a value key with an optional MIME key: JSON text is parsed unless the
    /// MIME type says plain text. `json_key` holds a JSON rendering our exporter adds when the
    /// text is not the JSON itself.
    fn take_payload(
        &mut self,
        value_key: &str,
        mime_key: Option<&str>,
        json_key: Option<&str>,
    ) -> Option<Payload> {
        let value = self.take(value_key)?;
        let mime = mime_key.and_then(|k| self.take_str(k));
        let mut payload = match value {
            Value::String(text) => {
                let plain = mime.as_deref().is_some_and(|m| !m.contains("json"));
                let json = if plain {
                    None
                } else {
                    Some(maybe_json(&text)).filter(|j| j.is_object() || j.is_array())
                };
                Payload {
                    text,
                    json,
                    mime: None,
                }
            }
            other => Payload::from_json(other),
        };
        payload.mime = mime;
        if let Some(json) = json_key.and_then(|k| self.take(k)) {
            payload.json = Some(match json {
                Value::String(s) => maybe_json(&s),
                other => other,
            });
        }
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_normalized() {
        assert_eq!(
            otel_id(&json!("5B8EFFF798038103D269B633813FC60C"), 16).unwrap(),
            "5b8efff798038103d269b633813fc60c"
        );
        // base64 of 0x5b8efff798038103d269b633813fc60c
        assert_eq!(
            otel_id(&json!("W47/95gDgQPSabYzgT/GDA=="), 16).unwrap(),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(
            otel_id(&json!("0x00f067aa0ba902b7"), 8).unwrap(),
            "00f067aa0ba902b7"
        );
        assert_eq!(
            otel_id(&json!("APBnqgupArc="), 8).unwrap(),
            "00f067aa0ba902b7"
        );
        assert_eq!(otel_id(&json!(""), 8), None);
        assert_eq!(otel_id(&json!("0000000000000000"), 8), None);
        assert_eq!(otel_id(&json!(17), 8), None);
        assert_eq!(otel_id(&json!("not-an-id"), 8).unwrap(), "not-an-id");
    }

    #[test]
    fn nanos_stay_exact() {
        let big: Value = serde_json::from_str("1544712660300000123").unwrap();
        assert_eq!(unix_nanos(&big), Some(1_544_712_660_300_000_123));
        assert_eq!(
            unix_nanos(&json!("1544712660300000123")),
            Some(1_544_712_660_300_000_123)
        );
        assert_eq!(unix_nanos(&json!("0")), None);
        assert_eq!(unix_nanos(&json!(-5)), None);
        assert_eq!(unix_nanos(&json!(true)), None);
        assert_eq!(unix_nanos(&json!("18446744073709551615")), None);
    }

    #[test]
    fn any_values_decode() {
        let v = json!({"kvlistValue": {"values": [
            {"key": "s", "value": {"stringValue": "x"}},
            {"key": "i", "value": {"intValue": "-7"}},
            {"key": "d", "value": {"doubleValue": 0.5}},
            {"key": "b", "value": {"boolValue": true}},
            {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "y"}]}}},
            {"key": "e", "value": {"arrayValue": {}}},
            {"key": "n", "value": {}},
            {"key": "bytes", "value": {"bytesValue": "AQI="}}
        ]}});
        assert_eq!(
            decode_any(&v),
            json!({"s": "x", "i": -7, "d": 0.5, "b": true, "a": [1, "y"], "e": [], "n": null, "bytes": "AQI="})
        );
        assert_eq!(decode_any(&json!({"intValue": "twelve"})), json!("twelve"));
        assert_eq!(decode_any(&json!({"doubleValue": "NaN"})), json!("NaN"));
    }

    #[test]
    fn nested_attributes_flatten() {
        let nested = json!({
            "llm": {"model_name": "m", "input_messages": [{"message": {"role": "user", "content": "hi"}}]},
            "tags": ["a", "b"],
            "empty": {}
        });
        let flat = flatten_attributes(&nested);
        assert_eq!(flat.get("llm.model_name"), Some(&json!("m")));
        assert_eq!(
            flat.get("llm.input_messages.0.message.role"),
            Some(&json!("user"))
        );
        assert_eq!(flat.get("tags"), Some(&json!(["a", "b"])));
        assert_eq!(flat.get("empty"), Some(&json!({})));
        assert!(flatten_attributes(&json!("not an object")).is_empty());
    }

    #[test]
    fn kinds_and_statuses() {
        assert_eq!(otel_span_kind(&json!(3)), Some("client"));
        assert_eq!(
            otel_span_kind(&json!("SPAN_KIND_INTERNAL")),
            Some("internal")
        );
        assert_eq!(otel_span_kind(&json!("SpanKind.CLIENT")), Some("client"));
        assert_eq!(otel_span_kind(&json!(0)), None);
        assert_eq!(status_of(&json!(2)), Status::Error);
        assert_eq!(status_of(&json!("STATUS_CODE_OK")), Status::Ok);
        assert_eq!(status_of(&json!("Error")), Status::Error);
        assert_eq!(status_of(&json!("StatusCode.ERROR")), Status::Error);
        assert_eq!(status_of(&json!(null)), Status::Unset);
    }

    #[test]
    fn schema_versions() {
        assert_eq!(
            genai_schema_version("https://opentelemetry.io/schemas/gen-ai/1.42.0").unwrap(),
            "gen-ai/1.42.0"
        );
        assert_eq!(
            genai_schema_version("https://opentelemetry.io/schemas/1.26.0"),
            None
        );
    }
}

#[cfg(test)]
mod fixture_tests {
    use crate::load::LoadedTrace;
    use crate::model::{
        CostSource, Format, HandoffMode, Part, Role, Span, SpanKind, Status, Trace, UsageScope,
    };
    use crate::testing::{fixture, inline, inline_err};
    use serde_json::json;

    fn by_name<'t>(t: &'t Trace, name: &str) -> Vec<&'t Span> {
        t.spans.iter().filter(|s| s.name == name).collect()
    }

    fn agents(t: &Trace) -> Vec<&str> {
        t.agents.iter().map(|a| a.name.as_str()).collect()
    }

    fn only(traces: &[LoadedTrace]) -> &Trace {
        assert_eq!(traces.len(), 1, "expected one trace");
        &traces[0].trace
    }

    #[test]
    fn genai_two_agents() {
        let (summary, traces) = fixture("otlp/genai-two-agents.json");
        assert_eq!(summary.format, Format::Otlp);
        let t = only(&traces);
        assert_eq!(t.id, "7d3c0a9e5b1f4c2d8e6a4b2c1d0e9f87");
        assert_eq!(t.format_version.as_deref(), Some("gen-ai/1.42.0"));
        assert_eq!(t.session_id.as_deref(), Some("conv_q3_emea_0105"));
        assert_eq!(agents(t), ["Coordinator", "DataAnalyst"]);
        assert_eq!(t.agents[1].parent_agent.as_deref(), Some("Coordinator"));
        assert_eq!(t.agents[0].id.as_deref(), Some("agt_coord_7"));
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 5);
        assert_eq!(t.spans_of(SpanKind::Tool).count(), 3);
        assert_eq!(t.spans_of(SpanKind::Agent).count(), 2);

        // One implicit delegation, placed beside the delegated agent's span.
        let handoffs: Vec<&Span> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!(
            (h.from.as_deref(), h.to.as_str(), h.mode),
            (Some("Coordinator"), "DataAnalyst", HandoffMode::Delegate)
        );
        let analyst = by_name(t, "invoke_agent DataAnalyst")[0];
        assert_eq!(handoffs[0].parent, analyst.parent);
        assert_eq!(handoffs[0].start_ns, analyst.start_ns);
        assert_eq!(handoffs[0].end_ns, handoffs[0].start_ns);

        // The failed tool call, with the exception event's details.
        let failed: Vec<&Span> = t
            .spans
            .iter()
            .filter(|s| s.status == Status::Error)
            .collect();
        assert_eq!(failed.len(), 1);
        let tool = failed[0].tool.as_ref().unwrap();
        assert_eq!(tool.name, "run_sql");
        assert!(tool.is_error);
        assert_eq!(tool.call_id.as_deref(), Some("toolu_01"));
        assert!(
            tool.arguments["query"]
                .as_str()
                .unwrap()
                .contains("sales_q3")
        );
        let err = failed[0].error.as_ref().unwrap();
        assert_eq!(err.kind.as_deref(), Some("psycopg.errors.UndefinedTable"));
        assert_eq!(err.message, "relation \"sales_q3\" does not exist");
        assert!(err.stack.as_deref().unwrap().contains("tools/sql.py"));
        assert!(!err.handled);
        assert_eq!(failed[0].agent.as_deref(), Some("DataAnalyst"));
        assert_eq!(
            t.status,
            Status::Unset,
            "the error was inside the trace, the root ended Ok"
        );

        // Usage: the five model calls, never the agent's aggregate.
        assert_eq!(t.usage.input, Some(2400 + 1500 + 1700 + 2100 + 2900));
        assert_eq!(t.usage.output, Some(120 + 80 + 60 + 210 + 150));
        assert_eq!(t.usage.cache_read, Some(1800 + 1024 + 1400 + 1500 + 2200));
        assert_eq!(t.usage.cache_write, Some(300));
        assert_eq!(t.usage.reasoning, Some(64));
        assert_eq!(analyst.usage_scope, UsageScope::Subtree);
        // No reported cost in GenAI: estimated from the price table.
        assert_eq!(t.cost.as_ref().unwrap().source, CostSource::Estimated);

        // Model-call details: system instructions, parsed and structured messages, params.
        let first_chat = by_name(t, "chat claude-sonnet-4-5")[0];
        let llm = first_chat.llm.as_ref().unwrap();
        assert_eq!(llm.provider.as_deref(), Some("anthropic"));
        assert_eq!(
            llm.response_model.as_deref(),
            Some("claude-sonnet-4-5-20250929")
        );
        assert_eq!(llm.finish_reason.as_deref(), Some("stop"));
        assert_eq!(llm.input_messages[0].role, Role::System);
        assert_eq!(llm.input_messages[1].role, Role::User);
        assert_eq!(llm.params.get("temperature"), Some(&json!(0.2)));
        assert_eq!(llm.params.get("max_tokens"), Some(&json!(1024)));
        assert_eq!(
            t.task.as_deref(),
            Some("Prepare the Q3 sales summary for the EMEA region, with the top three products.")
        );
        let structured = by_name(t, "chat claude-haiku-4-5")[0].llm.as_ref().unwrap();
        assert!(
            matches!(&structured.output_messages[0].parts[0], Part::ToolCall { name, .. } if name == "run_sql")
        );
        let retry = by_name(t, "chat claude-haiku-4-5")[1].llm.as_ref().unwrap();
        assert!(
            matches!(&retry.input_messages[0].parts[0], Part::ToolResult { id: Some(id), .. } if id == "toolu_01")
        );
        assert!(matches!(
            &retry.output_messages[0].parts[0],
            Part::Reasoning { .. }
        ));

        // Resource and scope attributes, source pointers.
        assert_eq!(
            analyst.attributes.get("resource.service.name"),
            Some(&json!("reporting-crew"))
        );
        assert_eq!(
            analyst.attributes.get("scope.name"),
            Some(&json!("reporting_crew.telemetry"))
        );
        assert_eq!(
            analyst.attributes.get("otel.span_kind"),
            Some(&json!("internal"))
        );
        assert_eq!(
            analyst.source.pointer.as_deref(),
            Some("/resourceSpans/0/scopeSpans/0/spans/2")
        );
        assert!(
            t.spans
                .iter()
                .all(|s| s.attributes.keys().all(|k| !k.starts_with("gen_ai.usage.")))
        );
        assert!(
            t.final_output
                .as_deref()
                .unwrap()
                .starts_with("Q3 EMEA summary")
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn openllmetry_snake_case() {
        let (summary, traces) = fixture("otlp/openllmetry-support.json");
        assert_eq!(summary.format, Format::Otlp);
        let t = only(&traces);
        assert_eq!(t.id, "0c5e2f8a9d7b4e31a6f0b8c2d4e6a8b1");
        assert_eq!(agents(t), ["triage_agent", "billing_agent"]);
        assert_eq!(t.spans_of(SpanKind::Step).count(), 1);
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 2);
        assert_eq!(t.spans_of(SpanKind::Handoff).count(), 1);
        let tool = t.spans_of(SpanKind::Tool).next().unwrap();
        assert_eq!(tool.tool.as_ref().unwrap().name, "lookup_invoice");
        assert_eq!(
            tool.tool.as_ref().unwrap().arguments,
            json!({"invoice_id": "INV-2291"})
        );
        assert_eq!(tool.status, Status::Error);
        assert!(
            tool.error
                .as_ref()
                .unwrap()
                .message
                .starts_with("ReadTimeout")
        );
        assert_eq!(tool.agent.as_deref(), Some("triage_agent"));
        assert_eq!(t.usage.input, Some(312 + 540));
        assert_eq!(t.usage.output, Some(24 + 41));
        assert_eq!(t.usage.total, Some(336 + 581));
        let first = t.spans_of(SpanKind::Llm).next().unwrap();
        let llm = first.llm.as_ref().unwrap();
        assert_eq!(llm.provider.as_deref(), Some("openai"));
        assert_eq!(llm.input_messages.len(), 2);
        assert_eq!(llm.finish_reason.as_deref(), Some("tool_calls"));
        assert!(
            matches!(&llm.output_messages[0].parts[0], Part::ToolCall { id: Some(id), name, .. } if id == "call_lk1" && name == "lookup_invoice")
        );
        assert_eq!(
            first.attributes.get("otel.span_kind"),
            Some(&json!("client"))
        );
        assert_eq!(
            t.metadata.get("otlp.conventions"),
            Some(&json!(["gen_ai", "openllmetry"]))
        );
        let workflow = t.spans_of(SpanKind::Step).next().unwrap();
        assert_eq!(
            workflow.input.as_ref().unwrap().json,
            Some(json!({"inputs": {"ticket": "My invoice INV-2291 was charged twice."}}))
        );
    }

    #[test]
    fn openinference_attributes_with_base64_ids() {
        let (summary, traces) = fixture("otlp/openinference-jaeger.json");
        assert_eq!(summary.format, Format::Otlp);
        let t = only(&traces);
        assert_eq!(t.id, "3f9a0c1e2d4b5a6978c0e1f2a3b4c5d6");
        assert!(t.spans.iter().any(|s| s.id == "c0ffee0000000003"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(agents(t), ["planner", "coder"]);
        assert_eq!(t.session_id.as_deref(), Some("sess-4471"));
        let handoffs: Vec<&Span> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        assert_eq!(handoffs[0].handoff.as_ref().unwrap().to, "coder");
        // The handoff sits in the planner's step, beside the coder's span.
        assert_eq!(t.spans[handoffs[0].parent.unwrap() as usize].name, "Step 1");
        let tool = t.spans_of(SpanKind::Tool).next().unwrap();
        let call = tool.tool.as_ref().unwrap();
        assert_eq!(call.name, "python_interpreter");
        assert_eq!(
            call.arguments,
            json!({"code": "df = pd.read_csv('usage.csv')"})
        );
        assert_eq!(tool.status, Status::Error);
        assert_eq!(
            tool.error.as_ref().unwrap().kind.as_deref(),
            Some("FileNotFoundError")
        );
        assert_eq!(t.usage.input, Some(1880 + 1900 + 2200));
        assert_eq!(t.usage.output, Some(96 + 180 + 200));
        assert_eq!(t.usage.cache_read, Some(1024));
        assert_eq!(t.usage.reasoning, Some(40));
        let cost = t.cost.as_ref().unwrap();
        assert_eq!(cost.source, CostSource::Reported);
        assert!((cost.amount - (0.004_528 + 0.001_05 + 0.0012)).abs() < 1e-9);
        let coder = by_name(t, "coder.run")[0];
        assert_eq!(coder.usage_scope, UsageScope::Subtree);
        let llm = by_name(t, "LiteLLMModel.__call__")[0].llm.as_ref().unwrap();
        assert_eq!(llm.request_model.as_deref(), Some("gpt-4.1"));
        assert_eq!(llm.params.get("max_tokens"), Some(&json!(2048)));
        assert_eq!(
            llm.input_messages[1].joined_text(),
            "Plot monthly active users for 2025 from usage.csv"
        );
        assert!(
            matches!(&llm.output_messages[0].parts[0], Part::ToolCall { name, .. } if name == "coder")
        );
        let planner = by_name(t, "planner.run")[0];
        assert_eq!(
            planner.input.as_ref().unwrap().json,
            Some(json!({"task": "Plot monthly active users for 2025 from usage.csv"}))
        );
        assert_eq!(
            planner.output.as_ref().unwrap().json,
            None,
            "text/plain output stays text"
        );
        assert_eq!(
            t.metadata.get("otlp.conventions"),
            Some(&json!(["openinference"]))
        );
    }

    #[test]
    fn collector_lines_group_by_trace_id() {
        let (summary, traces) = fixture("otlp/collector-export.jsonl");
        assert_eq!(summary.format, Format::Otlp);
        assert_eq!(traces.len(), 2);
        let a = &traces[0].trace;
        let b = &traces[1].trace;
        assert_eq!(a.id, "aa11bb22cc33dd44ee55ff6600778899");
        assert_eq!(b.id, "0123456789abcdef0123456789abcdef");
        assert_eq!(
            a.spans.len(),
            5 + 1,
            "five spans from lines 1 and 3, plus one handoff"
        );
        assert_eq!(b.spans.len(), 2);
        assert_eq!(agents(a), ["Dispatcher", "Geocoder"]);
        let tool = a.spans_of(SpanKind::Tool).next().unwrap();
        assert_eq!(tool.tool.as_ref().unwrap().name, "geocode");
        assert_eq!(tool.status, Status::Error);
        assert_eq!(tool.source.line, Some(3));
        assert_eq!(
            tool.source.pointer.as_deref(),
            Some("/resourceSpans/0/scopeSpans/0/spans/0")
        );
        assert_eq!(tool.agent.as_deref(), Some("Geocoder"));
        // The chat on line 3 found its parent on line 1.
        let late_chat = a
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Llm)
            .nth(1)
            .unwrap();
        assert_eq!(
            a.spans[late_chat.parent.unwrap() as usize].name,
            "invoke_agent Geocoder"
        );
        assert_eq!(a.usage.input, Some(410 + 620));
        assert_eq!(b.usage.input, Some(900));
        assert!(a.warnings.is_empty() && b.warnings.is_empty());
    }

    #[test]
    fn encoding_quirks_survive_exactly() {
        let (_, traces) = fixture("otlp/encoding-quirks.json");
        let t = only(&traces);
        assert_eq!(t.id, "5b8efff798038103d269b633813fc60c");
        let root = by_name(t, "invoke_agent Tinkerer")[0];
        assert_eq!(root.id, "eee19b7ec3c1b174");
        assert_eq!(root.start_ns, Some(1_767_870_000_123_456_789));
        assert_eq!(root.end_ns, Some(1_767_870_004_987_654_321));
        let chat = by_name(t, "chat local-llama")[0];
        assert_eq!(chat.start_ns, Some(1_767_870_000_200_000_001));
        assert_eq!(chat.end_ns, Some(1_767_870_002_200_000_003));
        assert_eq!(
            t.spans[chat.parent.unwrap() as usize].id,
            "eee19b7ec3c1b174"
        );
        let tool = by_name(t, "execute_tool solder")[0];
        assert_eq!(tool.events[0].time_ns, Some(1_767_870_004_800_000_007));
        assert_eq!(
            tool.tool.as_ref().unwrap().arguments,
            json!({"joint": "J4", "temp_c": 350})
        );
        assert_eq!(
            tool.error.as_ref().unwrap().message,
            "tip at 180C, need 350C"
        );
        assert_eq!(
            tool.error.as_ref().unwrap().kind.as_deref(),
            Some("IronTooCold")
        );

        let attr = |k: &str| root.attributes.get(k).cloned();
        assert_eq!(attr("lab.string"), Some(json!("plain text")));
        assert_eq!(
            attr("lab.int.string").and_then(|v| v.as_u64()),
            Some(9_007_199_254_740_993)
        );
        assert_eq!(attr("lab.int.number"), Some(json!(42)));
        assert_eq!(attr("lab.int.negative"), Some(json!(-17)));
        assert_eq!(attr("lab.double"), Some(json!(2.5)));
        assert_eq!(attr("lab.double.string"), Some(json!(0.125)));
        assert_eq!(attr("lab.bool"), Some(json!(false)));
        assert_eq!(attr("lab.array"), Some(json!(["a", 2, true])));
        assert_eq!(attr("lab.array.empty"), Some(json!([])));
        assert_eq!(
            attr("lab.kvlist"),
            Some(json!({"inner": "x", "depth": {"n": 1.5}}))
        );
        assert_eq!(attr("lab.bytes"), Some(json!("3q2+7w==")));
        assert_eq!(attr("lab.empty"), None);
        assert_eq!(attr("otel.span_kind"), Some(json!("server")));
        assert_eq!(attr("otel.trace_state"), Some(json!("vendor=quirk")));
        assert_eq!(attr("scope.lab.scope.flag"), Some(json!(true)));
        assert_eq!(
            chat.attributes.get("otel.span_kind"),
            Some(&json!("client"))
        );
        // Deprecated GenAI names.
        let llm = chat.llm.as_ref().unwrap();
        assert_eq!(llm.provider.as_deref(), Some("ollama"));
        assert_eq!(t.usage.input, Some(256));
        assert_eq!(t.usage.output, Some(64));
        assert_eq!(agents(t), ["Tinkerer"]);
    }

    #[test]
    fn tempo_batches_and_old_scope_key() {
        let doc = r#"{"batches": [{"resource": {"attributes": []}, "instrumentationLibrarySpans": [{
            "instrumentationLibrary": {"name": "legacy-lib"},
            "spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "execute_tool ping",
                       "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}}],
                       "status": {"code": "STATUS_CODE_ERROR", "message": "timeout"}}]}]}]}"#;
        let (summary, traces) = inline("tempo.json", doc);
        assert_eq!(summary.format, Format::Otlp);
        let t = only(&traces);
        let s = &t.spans[0];
        assert_eq!(s.tool.as_ref().unwrap().name, "ping");
        assert_eq!(s.status, Status::Error);
        assert_eq!(s.attributes.get("scope.name"), Some(&json!("legacy-lib")));
        assert_eq!(t.status, Status::Error);
    }

    #[test]
    fn hostile_values_do_not_panic() {
        let doc = r#"{"resourceSpans": [
            {"resource": 5, "scopeSpans": [{"spans": [
                7,
                {"traceId": 12, "spanId": ["x"], "parentSpanId": {"a": 1}, "name": 3, "kind": "SPAN_KIND_WHATEVER",
                 "startTimeUnixNano": "soon", "endTimeUnixNano": -1, "status": "bad", "events": "none", "links": [1, {"spanId": 5}],
                 "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-3"}},
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                {"key": "gen_ai.input.messages", "value": {"stringValue": "not json at all"}},
                                {"key": "gen_ai.output.messages", "value": {"intValue": "5"}},
                                {"key": 9, "value": {"stringValue": "keyless"}},
                                {"key": "gen_ai.response.finish_reasons", "value": {"intValue": 1}}]}
            ]}, {"spans": "nope"}]},
            {"scopeSpans": "nope"}
        ]}"#;
        let (_, traces) = inline("hostile.json", doc);
        let t = only(&traces);
        assert_eq!(t.spans.len(), 1);
        let s = &t.spans[0];
        assert_eq!(s.kind, SpanKind::Llm);
        assert_eq!(s.id, "span-0");
        assert_eq!(s.start_ns, None);
        assert!(s.usage.is_none());
        assert_eq!(
            s.attributes.get("gen_ai.usage.input_tokens"),
            Some(&json!(-3))
        );
        assert_eq!(
            s.llm.as_ref().unwrap().input_messages[0].joined_text(),
            "not json at all"
        );
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("gen_ai.usage.input_tokens")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("gen_ai.output.messages")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings.iter().any(|w| w.contains("not an object")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings.iter().any(|w| w.contains("no `traceId`")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn missing_spans_is_an_error() {
        let err = inline_err("empty.json", br#"{"resourceSpans": []}"#);
        assert!(err.contains("no spans found"), "{err}");
        let err = inline_err(
            "empty.json",
            br#"{"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}"#,
        );
        assert!(
            err.contains("resourceSpans[].scopeSpans[].spans[]"),
            "{err}"
        );
    }

    #[test]
    fn exception_on_an_ok_span_is_a_handled_error() {
        let doc = r#"{"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "execute_tool retry_fetch",
             "attributes": [{"key": "gen_ai.tool.name", "value": {"stringValue": "retry_fetch"}}],
             "events": [{"name": "exception", "attributes": [{"key": "exception.message", "value": {"stringValue": "first attempt failed"}}]}],
             "status": {"code": 1}}]}]}]}"#;
        let (_, traces) = inline("handled.json", doc);
        let t = only(&traces);
        let s = &t.spans[0];
        assert_eq!(s.kind, SpanKind::Tool);
        assert_eq!(s.status, Status::Error);
        let err = s.error.as_ref().unwrap();
        assert!(err.handled);
        assert_eq!(err.message, "first attempt failed");
        assert_eq!(
            t.status,
            Status::Unset,
            "a handled error does not fail the trace"
        );
    }

    #[test]
    fn same_agent_nesting_is_not_a_handoff() {
        let span = |id: &str, parent: &str, agent: &str| {
            format!(
                r#"{{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "{id}", "parentSpanId": "{parent}", "name": "invoke_agent {agent}",
                   "attributes": [{{"key": "gen_ai.operation.name", "value": {{"stringValue": "invoke_agent"}}}},
                                  {{"key": "gen_ai.agent.name", "value": {{"stringValue": "{agent}"}}}}]}}"#
            )
        };
        let doc = format!(
            r#"{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{}, {}, {}]}}]}}]}}"#,
            span("0000000000000001", "", "Solo"),
            span("0000000000000002", "0000000000000001", "Solo"),
            span("0000000000000003", "00000000000000ff", "Orphan")
        );
        let (_, traces) = inline("nested.json", &doc);
        let t = only(&traces);
        assert_eq!(t.spans_of(SpanKind::Handoff).count(), 0);
        assert!(
            t.warnings.iter().any(|w| w.contains("parent")),
            "{:?}",
            t.warnings
        );
    }
}
