//! OpenTelemetry spans as JSON objects rather than OTLP (`formats.md` §2.1, §3.1, rule 2b):
//!
//! - Phoenix span JSON (its REST API `{"data": [...]}`, exports and fixtures): `name`,
//!   `context{trace_id, span_id}`, `parent_id`, `span_kind` (the OpenInference kind),
//!   `start_time` / `end_time` (ISO), `status_code` / `status_message`, `attributes` (often
//!   nested: `{"llm": {"model_name": ...}}`), `events`.
//! - The Python SDK's `ConsoleSpanExporter` / `span.to_json()`: ids as `0x…`, `kind` as
//!   `SpanKind.CLIENT`, `status{status_code, description}`, flat `attributes`, `resource`.
//!
//! Accepted containers: one span object, an array, `{spans: [...]}` / `{data: [...]}`, or JSONL
//! (one span, or one array of spans, per line). Spans are grouped by trace id, one trace per id
//! in first-seen order; parents may come after their children (the console exporter prints a
//! span when it ends).
//!
//! Nested attributes are flattened to dotted keys, then mapped by the same code as OTLP
//! ([`super::otlp::map_span`]), so GenAI, OpenLLMetry and OpenInference keys all work, and
//! nested agent spans become delegation handoffs in the same way.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::otlp::{
    Draft, DraftParent, assemble, flatten_attributes, genai_schema_version, map_span, otel_id,
    otel_span_kind, status_of,
};
use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{Format, Link, LinkKind, SourceRef, Span, SpanEvent};
use crate::util::time_value;

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let mut items: Vec<(&Value, SourceRef)> = Vec::new();
    match &input.doc {
        Doc::Json(Value::Array(list)) => {
            items.extend(
                list.iter()
                    .enumerate()
                    .map(|(i, v)| (v, input.at(format!("/{i}")))),
            );
        }
        Doc::Json(doc @ Value::Object(o)) => {
            let listed = ["spans", "data"]
                .into_iter()
                .find_map(|k| o.get(k).and_then(Value::as_array).map(|list| (k, list)));
            match listed {
                Some((key, list)) if !o.contains_key("context") => {
                    items.extend(
                        list.iter()
                            .enumerate()
                            .map(|(i, v)| (v, input.at(format!("/{key}/{i}")))),
                    );
                }
                _ => items.push((doc, input.at(""))),
            }
        }
        Doc::Json(_) => {}
        Doc::Lines(lines) => {
            for line in lines {
                match &line.value {
                    Value::Array(list) => {
                        items.extend(list.iter().enumerate().map(|(i, v)| {
                            (
                                v,
                                SourceRef {
                                    pointer: Some(format!("/{i}")),
                                    ..input.at_line(line.line)
                                },
                            )
                        }));
                    }
                    v => items.push((v, input.at_line(line.line))),
                }
            }
        }
        Doc::Text(_) => {
            return Err(AdapterError::new("OpenInference spans are JSON, got text"));
        }
    }

    // Group by trace id, first-seen order.
    let mut groups: Vec<(String, Vec<SpanAt<'_>>)> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut skipped = Vec::new();
    for (value, source) in items {
        let Some(o) = value.as_object() else {
            skipped.push(format!("{} is not a span object; skipped", place(&source)));
            continue;
        };
        let trace_id = o
            .get("context")
            .and_then(|c| c.get("trace_id"))
            .and_then(|v| otel_id(v, 16))
            .unwrap_or_default();
        let at = *by_id.entry(trace_id.clone()).or_insert_with(|| {
            groups.push((trace_id, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push((o, source));
    }
    if groups.is_empty() {
        return Err(AdapterError::new(
            "no span objects found: expected spans with `context{trace_id, span_id}`, `name` and `attributes`",
        ));
    }

    let mut out = Vec::with_capacity(groups.len());
    for (g, (trace_id, spans)) in groups.into_iter().enumerate() {
        let id = if trace_id.is_empty() {
            input.synth_id("openinference")
        } else {
            trace_id.clone()
        };
        let mut b = TraceBuilder::new(Format::OpenInferenceSpans, id);
        if g == 0 {
            for w in &skipped {
                b.warn(w.clone());
            }
        }
        if trace_id.is_empty() {
            b.warn("spans carry no `context.trace_id`; they were grouped as one trace with a synthesized id");
        }
        let mut drafts = Vec::with_capacity(spans.len());
        for (position, (o, source)) in spans.into_iter().enumerate() {
            if b.trace_mut().format_version.is_none() {
                b.trace_mut().format_version = o
                    .get("resource")
                    .and_then(|r| r.get("schema_url"))
                    .and_then(Value::as_str)
                    .and_then(genai_schema_version);
            }
            drafts.push(read_span(o, source, position));
        }
        assemble(&mut b, drafts);
        out.push(Parsed::unlabelled(b.finish()));
    }
    Ok(out)
}

fn place(source: &SourceRef) -> String {
    match (source.line, &source.pointer) {
        (Some(line), _) => format!("line {line}"),
        (None, Some(p)) if !p.is_empty() => format!("item {p}"),
        _ => "the document".to_owned(),
    }
}

/// A span object with where it was found.
type SpanAt<'a> = (&'a Map<String, Value>, SourceRef);

/// Span keys mapped here rather than copied into attributes.
const SPAN_KEYS: [&str; 15] = [
    "name",
    "context",
    "parent_id",
    "parent_span_id",
    "span_kind",
    "kind",
    "start_time",
    "end_time",
    "status_code",
    "status_message",
    "status",
    "attributes",
    "events",
    "links",
    "resource",
];

fn read_span(o: &Map<String, Value>, source: SourceRef, position: usize) -> Draft {
    let context = o.get("context");
    let native_id = context
        .and_then(|c| c.get("span_id"))
        .and_then(|v| otel_id(v, 8))
        .unwrap_or_default();
    let parent_id = o
        .get("parent_id")
        .or_else(|| o.get("parent_span_id"))
        .and_then(|v| otel_id(v, 8));
    // Phoenix: `status_code` + `status_message`; console exporter: `status{status_code, description}`.
    let (status, status_message) = match o.get("status") {
        Some(Value::Object(st)) => (
            st.get("status_code")
                .map_or_else(Default::default, status_of),
            st.get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
        _ => (
            o.get("status_code")
                .map_or_else(Default::default, status_of),
            o.get("status_message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
    };
    let mut span = Span {
        id: if native_id.is_empty() {
            format!("span-{position}")
        } else {
            native_id.clone()
        },
        name: o
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        start_ns: o.get("start_time").and_then(time_value),
        end_ns: o.get("end_time").and_then(time_value),
        status,
        source,
        ..Span::default()
    };
    if let Some(Value::Array(events)) = o.get("events") {
        for e in events {
            let Some(e) = e.as_object() else { continue };
            span.events.push(SpanEvent {
                name: e
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("event")
                    .to_owned(),
                time_ns: e.get("timestamp").and_then(time_value),
                attributes: e
                    .get("attributes")
                    .map(flatten_attributes)
                    .unwrap_or_default(),
            });
        }
    }
    if let Some(Value::Array(links)) = o.get("links") {
        for link in links {
            let target = link
                .get("context")
                .and_then(|c| c.get("span_id"))
                .and_then(|v| otel_id(v, 8));
            if let Some(target) = target {
                span.links.push(Link {
                    kind: LinkKind::FollowsFrom,
                    target,
                });
            }
        }
    }

    let mut attrs = o
        .get("attributes")
        .map(flatten_attributes)
        .unwrap_or_default();
    // Phoenix's `span_kind` is the OpenInference kind; the attribute, when present, wins.
    if let Some(kind) = o
        .get("span_kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
    {
        attrs
            .entry("openinference.span.kind".to_owned())
            .or_insert_with(|| Value::String(kind.to_owned()));
    }
    if let Some(kind) = o.get("kind").and_then(otel_span_kind) {
        attrs.insert("otel.span_kind".to_owned(), Value::String(kind.to_owned()));
    }
    if let Some(state) = context
        .and_then(|c| c.get("trace_state"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "[]")
    {
        attrs.insert(
            "otel.trace_state".to_owned(),
            Value::String(state.to_owned()),
        );
    }
    let mapped = map_span(&mut span, attrs, status_message);

    if let Some(resource) = o.get("resource").and_then(|r| r.get("attributes")) {
        for (k, v) in flatten_attributes(resource) {
            if !v.is_null() {
                span.attributes.insert(format!("resource.{k}"), v);
            }
        }
    }
    for (k, v) in o {
        if !SPAN_KEYS.contains(&k.as_str()) && !v.is_null() {
            span.attributes
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
    }
    let parent = parent_id.map_or(DraftParent::None, DraftParent::Id);
    Draft {
        span,
        native_id,
        parent,
        mapped,
    }
}

#[cfg(test)]
mod tests {
    use crate::load::{LoadOptions, load_bytes};
    use crate::model::{
        Format, HandoffMode, Part, Role, Span, SpanKind, Status, Trace, UsageScope,
    };
    use crate::testing::{fixture, inline, inline_err};
    use serde_json::json;

    fn agents(t: &Trace) -> Vec<&str> {
        t.agents.iter().map(|a| a.name.as_str()).collect()
    }

    fn named<'t>(t: &'t Trace, name: &str) -> Vec<&'t Span> {
        t.spans.iter().filter(|s| s.name == name).collect()
    }

    #[test]
    fn phoenix_export_with_nested_attributes() {
        let (summary, traces) = fixture("openinference-spans/phoenix-travel.json");
        assert_eq!(summary.format, Format::OpenInferenceSpans);
        assert_eq!(traces.len(), 1);
        let t = &traces[0].trace;
        assert_eq!(t.id, "9e1d7c5b3a2f4e6d8c0b1a2f3e4d5c6b");
        assert_eq!(agents(t), ["supervisor", "flights_agent"]);
        assert_eq!(t.session_id.as_deref(), Some("trip-5531"));
        assert_eq!(t.spans.len(), 9 + 1);

        let handoffs: Vec<&Span> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!(
            (h.from.as_deref(), h.to.as_str(), h.mode),
            (Some("supervisor"), "flights_agent", HandoffMode::Delegate)
        );

        let failed: Vec<&Span> = t
            .spans
            .iter()
            .filter(|s| s.status == Status::Error)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].tool.as_ref().unwrap().name, "search_flights");
        assert!(failed[0].tool.as_ref().unwrap().is_error);
        let err = failed[0].error.as_ref().unwrap();
        assert_eq!(err.kind.as_deref(), Some("fares.GatewayTimeout"));
        assert_eq!(
            err.message,
            "GatewayTimeout: fares service did not answer in 5s"
        );
        assert!(err.stack.as_deref().unwrap().contains("fares/client.py"));
        assert_eq!(failed[0].agent.as_deref(), Some("flights_agent"));
        assert_eq!(
            failed[0].tool.as_ref().unwrap().arguments,
            json!({"origin": "LIS", "destination": "OSL", "date": "2026-03-14"})
        );
        let retry = named(t, "search_flights")[1];
        assert_eq!(
            retry.tool.as_ref().unwrap().result.as_ref().unwrap()[0]["flight"],
            json!("TP1204")
        );

        assert_eq!(t.usage.input, Some(640 + 820 + 930 + 1300));
        assert_eq!(t.usage.output, Some(18 + 35 + 35 + 80));
        assert_eq!(t.usage.cache_read, Some(512));
        assert_eq!(
            named(t, "flights_agent")[0].usage_scope,
            UsageScope::Subtree
        );

        // Messages rebuilt from nested lists.
        let chats = named(t, "ChatOpenAI");
        let first = chats[0].llm.as_ref().unwrap();
        assert_eq!(first.input_messages.len(), 2);
        assert_eq!(first.input_messages[0].role, Role::System);
        assert_eq!(first.params.get("tool_choice"), Some(&json!("auto")));
        assert!(
            matches!(&first.output_messages[0].parts[0], Part::ToolCall { name, .. } if name == "transfer_to_flights_agent")
        );
        let third = chats[2].llm.as_ref().unwrap();
        assert!(
            matches!(&third.input_messages[0].parts[0], Part::ToolResult { id: Some(id), .. } if id == "call_sf1")
        );
        assert_eq!(
            t.final_output.as_deref(),
            Some("Booked TP1204 LIS→OSL on 14 March for €212.")
        );
        assert_eq!(
            t.task.as_deref(),
            Some("Book me the cheapest flight from Lisbon to Oslo on 14 March.")
        );
        let root = named(t, "supervisor")[0];
        assert_eq!(root.attributes.get("id"), Some(&json!("U3BhbjoxMD01")));
        assert_eq!(root.source.pointer.as_deref(), Some("/data/0"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn console_exporter_lines_children_first() {
        let (summary, traces) = fixture("openinference-spans/console-exporter.jsonl");
        assert_eq!(summary.format, Format::OpenInferenceSpans);
        let t = &traces[0].trace;
        assert_eq!(t.id, "4c7e1a9b2d3f4a5b6c7d8e9f0a1b2c3d");
        assert_eq!(t.format_version.as_deref(), Some("gen-ai/1.42.0"));
        assert_eq!(t.session_id.as_deref(), Some("hw-88"));
        assert_eq!(agents(t), ["homework_router", "math_tutor"]);
        assert_eq!(
            t.spans[0].name, "invoke_agent homework_router",
            "sorted by time, not by print order"
        );
        assert!(t.spans.iter().skip(1).all(|s| s.parent.is_some()));
        assert_eq!(t.spans_of(SpanKind::Handoff).count(), 1);
        let tool = t.spans_of(SpanKind::Tool).next().unwrap();
        assert_eq!(tool.tool.as_ref().unwrap().name, "calculator");
        assert_eq!(tool.status, Status::Error);
        assert_eq!(
            tool.error.as_ref().unwrap().kind.as_deref(),
            Some("ZeroDivisionError")
        );
        assert_eq!(
            tool.error.as_ref().unwrap().message,
            "ZeroDivisionError: division by zero"
        );
        assert_eq!(tool.source.line, Some(2));
        assert_eq!(t.usage.input, Some(520 + 300));
        assert_eq!(t.usage.output, Some(90 + 40));
        assert_eq!(t.usage.reasoning, Some(64));
        let chat = named(t, "chat gpt-5-mini")[0];
        assert_eq!(
            chat.attributes.get("otel.span_kind"),
            Some(&json!("client"))
        );
        assert_eq!(
            chat.attributes.get("resource.service.name"),
            Some(&json!("homework-helper"))
        );
        assert!(!chat.attributes.contains_key("otel.trace_state"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn containers_single_object_and_spans_key() {
        let span = json!({"name": "lookup", "context": {"trace_id": "0xABCDEF0123456789ABCDEF0123456789", "span_id": "0x0000000000000001"},
                          "span_kind": "TOOL", "attributes": {"tool": {"name": "lookup"}}, "status_code": "OK"});
        let (summary, traces) = inline("one.json", &span.to_string());
        assert_eq!(summary.format, Format::OpenInferenceSpans);
        let t = &traces[0].trace;
        assert_eq!(t.id, "abcdef0123456789abcdef0123456789");
        assert_eq!(t.spans[0].tool.as_ref().unwrap().name, "lookup");
        assert_eq!(t.spans[0].status, Status::Ok);

        let mut other = span.clone();
        other["context"]["trace_id"] = json!("0x11111111111111111111111111111111");
        let (_, traces) = inline("wrapped.json", &json!({"spans": [span, other]}).to_string());
        assert_eq!(traces.len(), 2, "one trace per trace id");
        assert_eq!(
            traces[1].trace.spans[0].source.pointer.as_deref(),
            Some("/spans/1")
        );
    }

    #[test]
    fn odd_values_do_not_panic() {
        let lines = [
            json!({"name": "b", "context": {"trace_id": "", "span_id": "0x02"}, "span_kind": "LLM",
                   "attributes": {"llm": {"token_count": {"prompt": "many"}}}, "parent_id": "0x99"}),
            json!([{"name": "a", "context": {"trace_id": null, "span_id": 5}, "kind": "SpanKind.WEIRD", "attributes": "flat?",
                    "start_time": "yesterday", "status": {"status_code": 7}, "events": [1, {"name": 2}], "links": [{"context": 1}]},
                   "not a span"]),
        ];
        let text = lines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let (_, traces) = inline("odd.jsonl", &text);
        assert_eq!(traces.len(), 1);
        let t = &traces[0].trace;
        assert_eq!(t.spans.len(), 2);
        let b = t.spans.iter().find(|s| s.name == "b").unwrap();
        assert_eq!(b.kind, SpanKind::Llm);
        assert!(b.usage.is_none());
        let a = t.spans.iter().find(|s| s.name == "a").unwrap();
        assert_eq!(a.id, "span-1");
        assert_eq!(a.source.pointer.as_deref(), Some("/0"));
        assert_eq!(a.source.line, Some(2));
        let has = |needle: &str| t.warnings.iter().any(|w| w.contains(needle));
        assert!(has("not a span object"), "{:?}", t.warnings);
        assert!(has("llm.token_count.prompt"), "{:?}", t.warnings);
        assert!(has("context.trace_id"), "{:?}", t.warnings);
        assert!(has("parent"), "{:?}", t.warnings);
    }

    #[test]
    fn nothing_usable_is_an_error() {
        let forced = LoadOptions {
            format: Some(Format::OpenInferenceSpans),
            ..LoadOptions::default()
        };
        let err = load_bytes("empty.json", br#"{"data": [1, 2]}"#, &forced)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no span objects found"), "{err}");
        let err = inline_err("text.log", b"plain text, not spans\nsecond line");
        assert!(err.contains("unrecognized"), "{err}");
    }
}
