//! TRAIL benchmark traces (`formats.md` §3.3–3.4): smolagents runs instrumented with
//! OpenInference, stored as `{"trace_id", "spans": [Span]}` where each span nests its children
//! in `child_spans`. A dataset row wraps the trace and its labels as JSON strings:
//! `{"trace": "<json>", "labels": "<json>"}`.
//!
//! Mapping:
//! - Containment comes from the `child_spans` nesting; `parent_span_id` is only used for
//!   top-level spans (a flattened export).
//! - `span_attributes` are OpenInference keys (sometimes nested) and go through the shared
//!   OpenTelemetry mapping in [`super::otlp::map_span`], so kinds, agents (`search_agent.run` →
//!   `search_agent`), messages, tokens and costs are read the same way as in OTLP. A managed
//!   agent's `AGENT` span inside another agent's step becomes a delegation `Handoff`.
//! - Times: ISO `timestamp` plus an ISO-8601 `duration` (`PT1.5S`); a bare number is taken as
//!   nanoseconds, as in the ClickHouse schema the layout follows.
//! - `events` (`Timestamp`/`Name`/`Attributes`, either case) become span events, so
//!   `exception` events give the error type and message; `logs` become events named `log`.
//! - smolagents' `Step N` chain spans get `step = N - 1` (their position in the agent's step
//!   list).
//! - Labels (`errors[]`: category, location = span id, evidence, description, impact; and
//!   `scores`) go to `Parsed.labels` with source `trail`, never into the trace.
//!
//! Source pointers of a row-wrapped trace address the parsed `trace` string, prefixed with
//! `/trace`.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::otlp::{
    Draft, DraftParent, assemble, flatten_attributes, map_span, otel_span_kind, status_of,
};
use super::{AdapterError, AdapterResult, Input, Parsed, expect_json};
use crate::builder::TraceBuilder;
use crate::model::{Format, Label, Link, LinkKind, Span, SpanEvent, SpanKind, Trace};
use crate::util::{as_u64, parse_iso_duration, time_value};

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let doc = expect_json(input, Format::Trail)?;
    let Some(obj) = doc.as_object() else {
        return Err(AdapterError::new(
            "expected an object with `trace_id` and `spans`, or a dataset row `{trace, labels}`",
        ));
    };
    let mut warnings = Vec::new();
    let (trace, labels, pointer_prefix): (Cow<'_, Value>, Option<Value>, &str) =
        match obj.get("trace") {
            Some(Value::String(inner)) => {
                let trace = serde_json::from_str::<Value>(inner).map_err(|e| {
                    AdapterError::new(format!(
                        "field `trace`: expected a JSON string holding the trace: {e}"
                    ))
                })?;
                let labels = match obj.get("labels") {
                    Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            warnings.push(format!(
                                "field `labels` is not valid JSON ({e}); labels skipped"
                            ));
                            None
                        }
                    },
                    Some(v @ Value::Object(_)) => Some(v.clone()),
                    _ => None,
                };
                (Cow::Owned(trace), labels, "/trace")
            }
            Some(trace @ Value::Object(_)) => {
                (Cow::Borrowed(trace), obj.get("labels").cloned(), "/trace")
            }
            _ => (Cow::Borrowed(doc), None, ""),
        };
    let spans = trace
        .get("spans")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            AdapterError::new("expected a `spans` array (TRAIL layout: `{trace_id, spans: [...]}`)")
        })?;
    let id = match trace.get("trace_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => input.synth_id("trail"),
    };
    let mut b = TraceBuilder::new(Format::Trail, id);
    for w in warnings {
        b.warn(w);
    }
    if let Value::Object(top) = trace.as_ref() {
        for (k, v) in top {
            if !matches!(k.as_str(), "trace_id" | "spans") && !v.is_null() {
                b.trace_mut().metadata.insert(k.clone(), v.clone());
            }
        }
    }

    let drafts = read_spans(input, spans, pointer_prefix, &mut b);
    if drafts.is_empty() {
        return Err(AdapterError::new("the `spans` array holds no span objects"));
    }
    assemble(&mut b, drafts);
    let trace = b.finish();
    let labels = labels.map(|l| labels_of(&l, &trace)).unwrap_or_default();
    Ok(vec![Parsed { trace, labels }])
}

/// Walks the span tree depth-first in source order, so parents precede their children.
fn read_spans(input: &Input, spans: &[Value], prefix: &str, b: &mut TraceBuilder) -> Vec<Draft> {
    let mut drafts: Vec<Draft> = Vec::new();
    let mut stack: Vec<(&Value, Option<usize>, String)> = spans
        .iter()
        .enumerate()
        .rev()
        .map(|(i, s)| (s, None, format!("{prefix}/spans/{i}")))
        .collect();
    while let Some((value, parent, pointer)) = stack.pop() {
        let Some(o) = value.as_object() else {
            b.warn(format!(
                "{pointer} is not a span object; skipped with its children"
            ));
            continue;
        };
        let draft = read_span(input, o, parent, &pointer, drafts.len());
        let me = drafts.len();
        drafts.push(draft);
        match o.get("child_spans") {
            Some(Value::Array(children)) => {
                for (i, child) in children.iter().enumerate().rev() {
                    stack.push((child, Some(me), format!("{pointer}/child_spans/{i}")));
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => b.warn(format!("{pointer}/child_spans is not an array; ignored")),
        }
    }
    drafts
}

/// Span keys that are mapped here rather than copied into attributes.
const SPAN_KEYS: [&str; 20] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "span_name",
    "name",
    "span_kind",
    "service_name",
    "resource_attributes",
    "scope_name",
    "scope_version",
    "timestamp",
    "duration",
    "end_time",
    "status_code",
    "status_message",
    "span_attributes",
    "events",
    "links",
    "logs",
    "child_spans",
];

fn read_span(
    input: &Input,
    o: &Map<String, Value>,
    parent: Option<usize>,
    pointer: &str,
    position: usize,
) -> Draft {
    let text = |k: &str| match o.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let native_id = text("span_id").unwrap_or_default();
    let start_ns = o.get("timestamp").and_then(time_value);
    let end_ns = match (start_ns, o.get("duration")) {
        (Some(start), Some(Value::String(d))) => parse_iso_duration(d)
            .or_else(|| d.trim().parse::<i64>().ok())
            .map(|dur| start.saturating_add(dur)),
        (Some(start), Some(d @ Value::Number(_))) => as_u64(d)
            .and_then(|n| i64::try_from(n).ok())
            .map(|dur| start.saturating_add(dur)),
        _ => None,
    }
    .or_else(|| o.get("end_time").and_then(time_value));
    let mut span = Span {
        id: if native_id.is_empty() {
            format!("span-{position}")
        } else {
            native_id.clone()
        },
        name: text("span_name")
            .or_else(|| text("name"))
            .unwrap_or_default(),
        start_ns,
        end_ns,
        status: o
            .get("status_code")
            .map_or_else(Default::default, status_of),
        source: input.at(pointer),
        ..Span::default()
    };
    if let Some(Value::Array(events)) = o.get("events") {
        span.events
            .extend(events.iter().filter_map(|e| event_of(e, "event")));
    }
    if let Some(Value::Array(logs)) = o.get("logs") {
        span.events
            .extend(logs.iter().filter_map(|l| event_of(l, "log")));
    }
    if let Some(Value::Array(links)) = o.get("links") {
        for link in links {
            let target = ["span_id", "SpanId", "spanId"]
                .iter()
                .find_map(|k| link.get(*k).and_then(Value::as_str))
                .filter(|s| !s.is_empty());
            if let Some(target) = target {
                span.links.push(Link {
                    kind: LinkKind::FollowsFrom,
                    target: target.to_owned(),
                });
            }
        }
    }
    let mut attrs = o
        .get("span_attributes")
        .map(flatten_attributes)
        .unwrap_or_default();
    if let Some(kind) = o.get("span_kind").and_then(otel_span_kind) {
        attrs.insert("otel.span_kind".to_owned(), Value::String(kind.to_owned()));
    }
    let mapped = map_span(&mut span, attrs, text("status_message"));

    if let Some(service) = text("service_name") {
        span.attributes
            .insert("resource.service.name".to_owned(), Value::String(service));
    }
    if let Some(resource) = o.get("resource_attributes") {
        for (k, v) in flatten_attributes(resource) {
            span.attributes.entry(format!("resource.{k}")).or_insert(v);
        }
    }
    for (key, name) in [
        ("scope_name", "scope.name"),
        ("scope_version", "scope.version"),
    ] {
        if let Some(v) = text(key) {
            span.attributes.insert(name.to_owned(), Value::String(v));
        }
    }
    for (k, v) in o {
        if !SPAN_KEYS.contains(&k.as_str()) && !v.is_null() {
            span.attributes
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
    }
    if span.kind == SpanKind::Step && span.step.is_none() {
        span.step = smolagents_step(&span.name);
    }
    let parent = match parent {
        Some(p) => DraftParent::Index(p),
        None => text("parent_span_id").map_or(DraftParent::None, DraftParent::Id),
    };
    Draft {
        span,
        native_id,
        parent,
        mapped,
    }
}

/// An event or log record: `{Timestamp, Name, Attributes}` in either case; a log's other fields
/// (body, severity) become attributes.
fn event_of(v: &Value, default_name: &str) -> Option<SpanEvent> {
    let o = v.as_object()?;
    let field = |names: &[&str]| names.iter().find_map(|k| o.get(*k));
    let name = field(&["Name", "name", "event_name"])
        .and_then(Value::as_str)
        .unwrap_or(default_name)
        .to_owned();
    let time_ns = field(&["Timestamp", "timestamp", "time"]).and_then(time_value);
    let mut attributes = field(&["Attributes", "attributes"])
        .map(flatten_attributes)
        .unwrap_or_default();
    for (k, v) in o {
        let known = matches!(
            k.as_str(),
            "Name"
                | "name"
                | "event_name"
                | "Timestamp"
                | "timestamp"
                | "time"
                | "Attributes"
                | "attributes"
        );
        if !known && !v.is_null() {
            attributes.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Some(SpanEvent {
        name,
        time_ns,
        attributes,
    })
}

/// `Step 3` → 2.
fn smolagents_step(name: &str) -> Option<u32> {
    let n: u32 = name.strip_prefix("Step ")?.trim().parse().ok()?;
    n.checked_sub(1)
}

/// The step of a span or of its nearest ancestor that has one (a model call inside `Step 2`).
fn enclosing_step(trace: &Trace, mut idx: usize) -> Option<u32> {
    for _ in 0..trace.spans.len() {
        let span = trace.spans.get(idx)?;
        if span.step.is_some() {
            return span.step;
        }
        idx = span.parent? as usize;
    }
    None
}

/// TRAIL labels: each `errors[]` item on the span its `location` names, and each score.
fn labels_of(labels: &Value, trace: &Trace) -> Vec<Label> {
    let mut out = Vec::new();
    if let Some(Value::Array(errors)) = labels.get("errors") {
        for e in errors {
            let str_of = |k: &str| e.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let location = str_of("location").map(str::to_owned);
            let span = location
                .as_deref()
                .and_then(|id| trace.spans.iter().position(|s| s.id == id));
            let mut text = str_of("description").unwrap_or_default().to_owned();
            for (key, title) in [("evidence", "Evidence"), ("impact", "Impact")] {
                if let Some(v) = str_of(key) {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    let _ = write!(text, "{title}: {v}");
                }
            }
            out.push(Label {
                source: "trail".to_owned(),
                category: str_of("category").unwrap_or("error").to_owned(),
                span: location,
                agent: span.and_then(|i| trace.spans[i].agent.clone()),
                step: span.and_then(|i| enclosing_step(trace, i)),
                text: (!text.is_empty()).then_some(text),
                value: None,
            });
        }
    }
    let scores: Vec<&Value> = match labels.get("scores") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(obj @ Value::Object(_)) => vec![obj],
        _ => Vec::new(),
    };
    for score in scores {
        let Some(map) = score.as_object() else {
            continue;
        };
        for (name, v) in map {
            if let Some(value) = crate::util::as_f64(v) {
                out.push(Label {
                    source: "trail".to_owned(),
                    category: format!("score.{name}"),
                    value: Some(value),
                    ..Label::default()
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::smolagents_step;
    use crate::load::{LoadOptions, load_bytes};
    use crate::model::{CostSource, Format, HandoffMode, Role, Span, SpanKind, Status, Trace};
    use crate::testing::{fixture, inline, inline_err};
    use serde_json::json;

    fn named<'t>(t: &'t Trace, name: &str) -> Vec<&'t Span> {
        t.spans.iter().filter(|s| s.name == name).collect()
    }

    #[test]
    fn step_names() {
        assert_eq!(smolagents_step("Step 1"), Some(0));
        assert_eq!(smolagents_step("Step 12"), Some(11));
        assert_eq!(smolagents_step("Step 0"), None);
        assert_eq!(smolagents_step("Stepper"), None);
    }

    #[test]
    fn plain_trace_with_managed_agent() {
        let (summary, traces) = fixture("trail/gaia-melting-point.json");
        assert_eq!(summary.format, Format::Trail);
        assert_eq!(traces.len(), 1);
        assert!(traces[0].labels.is_empty());
        let t = &traces[0].trace;
        assert_eq!(t.id, "e41f6a2b9c0d4e8fa7b3c5d1e9f20468");
        assert_eq!(
            t.spans.len(),
            14 + 1,
            "fourteen spans plus the synthesized handoff"
        );
        let agents: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(agents, ["manager_agent", "search_agent"]);

        // Containment from nesting; the delegation sits in the manager's first step.
        let handoffs: Vec<&Span> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!(
            (h.from.as_deref(), h.to.as_str(), h.mode),
            (Some("manager_agent"), "search_agent", HandoffMode::Delegate)
        );
        let parent = &t.spans[handoffs[0].parent.unwrap() as usize];
        assert_eq!(
            (parent.name.as_str(), parent.agent.as_deref()),
            ("Step 1", Some("manager_agent"))
        );

        // Steps are 0-based per agent step list.
        let steps: Vec<(Option<&str>, Option<u32>)> = t
            .spans_of(SpanKind::Step)
            .map(|s| (s.agent.as_deref(), s.step))
            .collect();
        assert_eq!(
            steps,
            [
                (Some("manager_agent"), Some(0)),
                (Some("search_agent"), Some(0)),
                (Some("search_agent"), Some(1)),
                (Some("manager_agent"), Some(1))
            ]
        );

        // The failed tool: status message, exception event, arguments from kwargs.
        let failed: Vec<&Span> = t
            .spans
            .iter()
            .filter(|s| s.status == Status::Error)
            .collect();
        assert_eq!(failed.len(), 1);
        let tool = failed[0].tool.as_ref().unwrap();
        assert_eq!(tool.name, "visit_webpage");
        assert!(tool.is_error);
        assert_eq!(
            tool.arguments,
            json!({"url": "https://periodic.example.org/elements/tin"})
        );
        let err = failed[0].error.as_ref().unwrap();
        assert_eq!(err.kind.as_deref(), Some("requests.exceptions.HTTPError"));
        assert!(err.message.starts_with("HTTPError: 403"));
        assert_eq!(failed[0].agent.as_deref(), Some("search_agent"));
        let log = failed[0].events.iter().find(|e| e.name == "log").unwrap();
        assert_eq!(log.attributes.get("SeverityText"), Some(&json!("WARN")));
        assert!(log.time_ns.is_some());

        // Times from timestamp + ISO duration.
        let root = named(t, "manager_agent.run")[0];
        assert_eq!(
            root.end_ns.unwrap() - root.start_ns.unwrap(),
            13_200_000_000
        );
        assert_eq!(
            root.attributes.get("scope.name"),
            Some(&json!("openinference.instrumentation.smolagents"))
        );
        assert_eq!(
            root.attributes.get("resource.telemetry.sdk.name"),
            Some(&json!("opentelemetry"))
        );
        assert_eq!(root.attributes.get("smolagents.max_steps"), Some(&json!(8)));

        // Usage: four model calls; the managed agent's counts are an aggregate.
        assert_eq!(t.usage.input, Some(2210 + 1450 + 1790 + 2460));
        assert_eq!(t.usage.output, Some(71 + 62 + 48 + 30));
        assert_eq!(t.usage.cache_read, Some(1700 + 1400 + 2080));
        assert_eq!(t.usage.cache_write, Some(380));
        let search = named(t, "search_agent.run")[0];
        assert_eq!(search.usage_scope, crate::model::UsageScope::Subtree);

        // Positional-only final answer, messages, task and answer.
        let finals = named(t, "FinalAnswerTool");
        assert_eq!(
            finals[1].tool.as_ref().unwrap().arguments,
            json!(["505.08"])
        );
        assert_eq!(
            finals[0].tool.as_ref().unwrap().arguments,
            json!({"answer": "505.08 K"})
        );
        let llm = named(t, "LiteLLMModel.generate")[0].llm.as_ref().unwrap();
        assert_eq!(llm.input_messages[0].role, Role::System);
        assert_eq!(llm.params.get("max_tokens"), Some(&json!(4096)));
        assert_eq!(
            t.task.as_deref(),
            Some(
                "New task: What is the melting point of the element with atomic number 50, in kelvin?"
            )
        );
        assert_eq!(t.final_output.as_deref(), Some("505.08"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn dataset_row_with_labels() {
        let (summary, traces) = fixture("trail/swe-row-labelled.json");
        assert_eq!(summary.format, Format::Trail);
        let loaded = &traces[0];
        let t = &loaded.trace;
        assert_eq!(t.id, "7a0b1c2d3e4f40519e8d7c6b5a493827");
        let agents: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(agents, ["CodeAgent", "test_runner"]);
        assert_eq!(t.spans_of(SpanKind::Handoff).count(), 1);
        let failed = t.spans.iter().find(|s| s.status == Status::Error).unwrap();
        assert_eq!(failed.tool.as_ref().unwrap().name, "python_interpreter");
        assert_eq!(
            failed.error.as_ref().unwrap().kind.as_deref(),
            Some("SyntaxError")
        );
        assert_eq!(t.usage.input, Some(3100 + 3420 + 900));
        let cost = t.cost.as_ref().unwrap();
        assert_eq!(cost.source, CostSource::Reported);
        assert!((cost.amount - 0.0144).abs() < 1e-9);
        assert_eq!(
            failed.source.pointer.as_deref(),
            Some("/trace/spans/0/child_spans/0/child_spans/1")
        );

        // Labels sit beside the trace, on the spans they name.
        let labels = &loaded.labels;
        assert_eq!(labels.len(), 2 + 5);
        let formatting = &labels[0];
        assert_eq!(formatting.source, "trail");
        assert_eq!(formatting.category, "Formatting Errors");
        assert_eq!(formatting.span.as_deref(), Some("0d00000000000004"));
        assert_eq!(formatting.agent.as_deref(), Some("CodeAgent"));
        assert_eq!(formatting.step, Some(0));
        assert!(
            formatting
                .text
                .as_deref()
                .unwrap()
                .contains("Impact: MEDIUM")
        );
        assert_eq!(labels[1].step, Some(1));
        let overall = labels
            .iter()
            .find(|l| l.category == "score.overall")
            .unwrap();
        assert_eq!(overall.value, Some(3.0));
        let trace_json = serde_json::to_string(t).unwrap();
        assert!(
            !trace_json.contains("Formatting Errors") && !trace_json.contains("reliability_score")
        );
    }

    #[test]
    fn rows_as_jsonl_and_broken_labels() {
        let trace = |id: &str| {
            serde_json::to_string(
                &json!({"trace_id": id, "spans": [{"span_id": "a", "span_name": "x.run",
                "span_attributes": {"openinference.span.kind": "AGENT"}, "child_spans": []}]}),
            )
            .unwrap()
        };
        let rows = [
            json!({"trace": trace("t1"), "labels": "{\"errors\": []}"}).to_string(),
            json!({"trace": trace("t2"), "labels": "{not json"}).to_string(),
        ]
        .join("\n");
        let (summary, traces) = inline("trail.jsonl", &rows);
        assert_eq!(summary.format, Format::Trail);
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[1].trace.id, "t2");
        assert!(traces[1].labels.is_empty());
        assert!(
            traces[1]
                .trace
                .warnings
                .iter()
                .any(|w| w.contains("labels")),
            "{:?}",
            traces[1].trace.warnings
        );
        assert_eq!(traces[0].trace.agents[0].name, "x");
    }

    #[test]
    fn sparse_and_odd_spans() {
        let doc = json!({"trace_id": 5, "extra": "kept", "spans": [
            {"span_id": "root", "span_attributes": {"llm": {"model_name": "m", "token_count": {"prompt": "12", "completion": 3}}},
             "timestamp": "2026-01-01T00:00:00Z", "duration": 2_500_000_000u64,
             "child_spans": [7, {"span_name": "orphan-free", "status_code": "Error", "span_attributes": "oops", "child_spans": "no",
                                 "events": [{"Name": "exception", "Attributes": {"exception.message": "boom"}}, 3]}]},
            {"span_id": "flat", "parent_span_id": "root", "span_name": "Step 2", "span_attributes": {"openinference.span.kind": "CHAIN"},
             "timestamp": "not a time", "duration": "forever"}
        ]});
        let (_, traces) = inline("odd.json", &doc.to_string());
        let t = &traces[0].trace;
        assert_eq!(t.id, "5");
        assert_eq!(t.metadata.get("extra"), Some(&json!("kept")));
        assert_eq!(t.spans.len(), 3);
        let root = t.spans.iter().find(|s| s.id == "root").unwrap();
        assert_eq!(
            root.kind,
            SpanKind::Llm,
            "a model name without a kind makes a model call"
        );
        assert_eq!(root.end_ns.unwrap() - root.start_ns.unwrap(), 2_500_000_000);
        assert_eq!(t.usage.input, Some(12));
        let child = t.spans.iter().find(|s| s.name == "orphan-free").unwrap();
        assert_eq!(child.id, "span-1");
        assert_eq!(child.status, Status::Error);
        assert_eq!(child.error.as_ref().unwrap().message, "boom");
        let flat = t.spans.iter().find(|s| s.id == "flat").unwrap();
        assert_eq!(t.spans[flat.parent.unwrap() as usize].id, "root");
        assert_eq!(flat.step, Some(1));
        assert_eq!(flat.start_ns, None);
        assert!(
            t.warnings.iter().any(|w| w.contains("not a span object")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("child_spans is not an array")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn unusable_documents_are_errors() {
        // Detection needs the inner JSON; forced, the adapter names the field.
        let forced = LoadOptions {
            format: Some(Format::Trail),
            ..LoadOptions::default()
        };
        let err = load_bytes(
            "bad.json",
            br#"{"trace": "{broken", "labels": "{}"}"#,
            &forced,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("field `trace`"), "{err}");
        let err = load_bytes("bad.json", br#"{"steps": []}"#, &forced)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`spans` array"), "{err}");
        let err = inline_err(
            "bad.json",
            br#"{"trace_id": "t", "spans": [1, 2], "x": {"span_id": 1}}"#,
        );
        assert!(
            err.contains("no span objects") || err.contains("unrecognized"),
            "{err}"
        );
    }
}
