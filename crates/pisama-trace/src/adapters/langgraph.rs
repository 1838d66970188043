//! LangGraph stream output (`formats.md` §4.3, §4.4): the `stream_mode="debug"` chunks a user
//! wrote to JSONL, and LangChain `astream_events(version="v2")` events.
//!
//! **Debug stream.** Each line is `{type: checkpoint|task|task_result, step, timestamp,
//! payload}`, bare or wrapped as `[namespace, "debug", chunk]` / `[namespace, chunk]` /
//! `["debug", chunk]` (`subgraphs=True`, several stream modes). Chunks of other modes
//! (`values`, `updates`, `messages`) are counted in `metadata.ignored_stream_modes`. Mapping:
//! - A synthetic root Step `graph`, one Step per top-level `step` (id `step:N`), and one span per
//!   task (id = task id, `step` = the debug step) under its step. A task of a sub-graph (its
//!   namespace `node:<task_id>`) sits under the parent graph's task instead.
//! - Checkpoints are zero-length System spans (id = `checkpoint_id`) under their step, so the
//!   state history stays visible on the timeline; the state itself is not copied, only its
//!   size, `next` and `source`.
//! - `task_result` closes its task (`error` → Error, unhandled). Each new `AIMessage` in the
//!   result becomes an Llm child (model, finish reason, `usage_metadata`); each new
//!   `ToolMessage` a Tool child paired with the `AIMessage` tool call of the same `tool_call_id`
//!   (`status: "error"` → Error, handled: the graph returned it to the model). Messages are
//!   deduplicated by id, because a sub-graph's messages reappear in its parent task's result.
//! - A task that produced model calls (itself or through a sub-graph) is an Agent named after
//!   the task, unless an enclosing task already is one. A task that only ran tools (a shared
//!   `tools` node) takes the agent whose model requested them.
//! - `transfer_to_<x>` tool messages add a zero-length Handoff beside the tool, to `x` (or the
//!   next task's name when `x` is not a task of the graph).
//! - Model and tool spans have no timestamps of their own: they take their task's start and
//!   result times, marked `time_inferred`.
//!
//! **`astream_events` v2.** Events `on_<kind>_<start|end|stream|error>` are paired by `run_id`
//! into runs (parent = the nearest of `parent_ids` that is present) and built like LangSmith
//! runs (see `langsmith.rs`). Events carry no timestamps, so spans keep arrival order; runs
//! that never ended are left `Unset` with a warning.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::generic_chat::looks_like_error;
use super::langsmith::{
    RunNode, break_cycles, build_run_trace, describe_trace, exception_class, group_into_traces,
    handoff_span, lc_view, message_list, payload_of, transfer_target, usage_metadata,
};
use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    ErrorInfo, Format, Link, LinkKind, LlmCall, Message, Role, SourceRef, Span, SpanEvent,
    SpanKind, Status, ToolCall,
};
use crate::util::{flatten_into, get_str, text_of, time_value, truncate};

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let items = stream_items(input)?;
    let mut debug = Vec::new();
    let mut events = Vec::new();
    let mut other_modes: BTreeMap<String, u64> = BTreeMap::new();
    let mut unknown = 0usize;
    for item in &items {
        match classify(item.value) {
            Chunk::Debug { namespace, chunk } => {
                debug.push((item.source.clone(), namespace, chunk));
            }
            Chunk::Event(e) => events.push((item.source.clone(), e)),
            Chunk::OtherMode(mode) => *other_modes.entry(mode).or_default() += 1,
            Chunk::Unknown => unknown += 1,
        }
    }
    let mut parsed = if !debug.is_empty() {
        let mut state = DebugStream::new(input);
        for (source, namespace, chunk) in debug {
            state.chunk(source, &namespace, chunk);
        }
        if !events.is_empty() {
            state.b.warn(format!(
                "{} astream_events line(s) mixed into a debug stream; ignored",
                events.len()
            ));
        }
        vec![state.finish(&other_modes)]
    } else if !events.is_empty() {
        from_events(&events)
    } else {
        return Err(AdapterError::new(
            "expected LangGraph debug chunks ({type: checkpoint|task|task_result, step, payload}) \
             or astream_events ({event: \"on_...\", run_id})",
        ));
    };
    if unknown > 0 {
        for p in &mut parsed {
            p.trace.warnings.push(format!(
                "{unknown} line(s) are neither debug chunks nor events; skipped"
            ));
        }
    }
    Ok(parsed)
}

/// One line (or array element) with where it came from.
struct Item<'a> {
    value: &'a Value,
    source: SourceRef,
}

fn stream_items(input: &Input) -> Result<Vec<Item<'_>>, AdapterError> {
    let at = |i: usize| input.at(format!("/{i}"));
    Ok(match &input.doc {
        Doc::Lines(lines) => lines
            .iter()
            .map(|l| Item {
                value: &l.value,
                source: input.at_line(l.line),
            })
            .collect(),
        Doc::Json(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| Item {
                value: v,
                source: at(i),
            })
            .collect(),
        Doc::Json(doc @ Value::Object(o)) => match o.get("events") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Item {
                    value: v,
                    source: input.at(format!("/events/{i}")),
                })
                .collect(),
            _ => vec![Item {
                value: doc,
                source: input.at(""),
            }],
        },
        Doc::Json(_) | Doc::Text(_) => {
            return Err(AdapterError::new(
                "LangGraph streams must be JSON lines or a JSON array of chunks",
            ));
        }
    })
}

enum Chunk<'a> {
    Debug {
        namespace: Vec<String>,
        chunk: &'a Map<String, Value>,
    },
    Event(&'a Map<String, Value>),
    OtherMode(String),
    Unknown,
}

const STREAM_MODES: [&str; 8] = [
    "values",
    "updates",
    "messages",
    "custom",
    "checkpoints",
    "tasks",
    "events",
    "debug",
];

fn is_debug_chunk(o: &Map<String, Value>) -> bool {
    matches!(
        o.get("type").and_then(Value::as_str),
        Some("checkpoint" | "task" | "task_result")
    ) && o.contains_key("payload")
}

fn is_event(o: &Map<String, Value>) -> bool {
    o.get("event")
        .and_then(Value::as_str)
        .is_some_and(|e| e.starts_with("on_"))
        && o.contains_key("run_id")
}

fn classify(v: &Value) -> Chunk<'_> {
    match v {
        Value::Object(o) if is_debug_chunk(o) => Chunk::Debug {
            namespace: Vec::new(),
            chunk: o,
        },
        Value::Object(o) if is_event(o) => Chunk::Event(o),
        Value::Array(parts) => {
            let Some((last, head)) = parts.split_last() else {
                return Chunk::Unknown;
            };
            let mode = head
                .iter()
                .filter_map(Value::as_str)
                .find(|s| STREAM_MODES.contains(s));
            let namespace = head.iter().find_map(namespace_of).unwrap_or_default();
            match (mode, last) {
                (Some("debug") | None, Value::Object(o)) if is_debug_chunk(o) => Chunk::Debug {
                    namespace,
                    chunk: o,
                },
                (Some(m), _) if m != "debug" => Chunk::OtherMode(m.to_owned()),
                (None, Value::Object(o)) if is_event(o) => Chunk::Event(o),
                _ => Chunk::Unknown,
            }
        }
        _ => Chunk::Unknown,
    }
}

/// A namespace tuple (`["researcher:<task_id>", ...]`) or its string form (`a:1|b:2`).
fn namespace_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Value::String(s) if s.contains(':') => Some(s.split('|').map(str::to_owned).collect()),
        _ => None,
    }
}

// ---- debug stream ----------------------------------------------------------------------------

/// A model tool call waiting for its `ToolMessage`.
struct PendingCall {
    llm: usize,
    task: usize,
    name: String,
    args: Value,
}

struct TaskState {
    name: String,
    start: Option<i64>,
    parent_task: Option<usize>,
    /// The last few input messages, given to each model call of the task as its context.
    context: Vec<Message>,
    ended: bool,
    failed: bool,
    has_model: bool,
}

struct HandoffNote {
    span: usize,
    issuer: Option<usize>,
    task: usize,
    target: String,
}

struct DebugStream<'i> {
    input: &'i Input,
    b: TraceBuilder,
    root: usize,
    steps: HashMap<i64, usize>,
    tasks_by_id: HashMap<String, usize>,
    tasks: HashMap<usize, TaskState>,
    /// Top-level tasks in order, for handoff targets.
    top_tasks: Vec<usize>,
    seen_messages: HashSet<String>,
    calls: HashMap<String, PendingCall>,
    tool_issuer: Vec<(usize, usize)>,
    handoffs: Vec<HandoffNote>,
    threads: Vec<String>,
    first_checkpoint: Option<String>,
    task_text: Option<String>,
    final_text: Option<String>,
}

const CONTEXT_MESSAGES: usize = 8;

impl<'i> DebugStream<'i> {
    fn new(input: &'i Input) -> Self {
        let mut b = TraceBuilder::new(Format::LangGraph, String::new());
        let root = b.push(Span {
            id: "graph".to_owned(),
            kind: SpanKind::Step,
            name: "graph".to_owned(),
            source: input.at(""),
            ..Span::default()
        });
        DebugStream {
            input,
            b,
            root,
            steps: HashMap::new(),
            tasks_by_id: HashMap::new(),
            tasks: HashMap::new(),
            top_tasks: Vec::new(),
            seen_messages: HashSet::new(),
            calls: HashMap::new(),
            tool_issuer: Vec::new(),
            handoffs: Vec::new(),
            threads: Vec::new(),
            first_checkpoint: None,
            task_text: None,
            final_text: None,
        }
    }

    fn chunk(&mut self, source: SourceRef, namespace: &[String], chunk: &Map<String, Value>) {
        let step = chunk.get("step").and_then(Value::as_i64);
        let at = chunk.get("timestamp").and_then(time_value);
        let empty = Map::new();
        let payload = chunk
            .get("payload")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        match chunk.get("type").and_then(Value::as_str) {
            Some("checkpoint") => self.checkpoint(source, namespace, step, at, payload),
            Some("task") => {
                self.task_start(source, namespace, step, at, payload);
            }
            Some("task_result") => self.task_result(&source, namespace, step, at, payload),
            _ => {}
        }
    }

    /// The span a chunk of this namespace and step belongs under.
    fn container(&mut self, namespace: &[String], step: Option<i64>) -> usize {
        if let Some(last) = namespace.last() {
            let task_id = last.rsplit_once(':').map_or(last.as_str(), |(_, id)| id);
            if let Some(&task) = self.tasks_by_id.get(task_id) {
                return task;
            }
            self.b.warn(format!(
                "namespace `{}` names no task seen earlier; placed under the graph",
                namespace.join("|")
            ));
            return self.root;
        }
        match step {
            Some(n) if n >= 0 => self.step_span(n),
            _ => self.root,
        }
    }

    fn step_span(&mut self, n: i64) -> usize {
        if let Some(&idx) = self.steps.get(&n) {
            return idx;
        }
        let span = Span {
            id: format!("step:{n}"),
            kind: SpanKind::Step,
            name: format!("step {n}"),
            step: u32::try_from(n).ok(),
            source: self.input.at(""),
            ..Span::default()
        };
        let idx = self.b.push_child(self.root, span);
        self.steps.insert(n, idx);
        idx
    }

    fn checkpoint(
        &mut self,
        source: SourceRef,
        namespace: &[String],
        step: Option<i64>,
        at: Option<i64>,
        payload: &Map<String, Value>,
    ) {
        let configurable = payload.get("config").and_then(|c| c.get("configurable"));
        let checkpoint_id = configurable.and_then(|c| get_str(c, &["checkpoint_id"]));
        if namespace.is_empty() {
            if let Some(thread) = configurable.and_then(|c| get_str(c, &["thread_id"]))
                && !self.threads.iter().any(|t| t == thread)
            {
                self.threads.push(thread.to_owned());
            }
            if self.first_checkpoint.is_none() {
                self.first_checkpoint = checkpoint_id.map(str::to_owned);
            }
        }
        let mut span = Span {
            id: checkpoint_id.map_or_else(
                || format!("checkpoint@{}", step.unwrap_or(-1)),
                str::to_owned,
            ),
            kind: SpanKind::System,
            name: "checkpoint".to_owned(),
            status: Status::Ok,
            step: step.and_then(|s| u32::try_from(s).ok()),
            start_ns: at,
            end_ns: at,
            source,
            ..Span::default()
        };
        let attrs = &mut span.attributes;
        if let Some(s) = step {
            attrs.insert("langgraph.step".to_owned(), Value::from(s));
        }
        if let Some(parent) = payload
            .get("parent_config")
            .and_then(|c| get_str(c, &["configurable", "checkpoint_id"]))
        {
            attrs.insert("parent_checkpoint_id".to_owned(), Value::from(parent));
        }
        if let Some(meta) = payload.get("metadata") {
            for key in ["source", "step"] {
                if let Some(v) = meta.get(key) {
                    attrs.insert(format!("metadata.{key}"), v.clone());
                }
            }
        }
        if let Some(next) = payload.get("next") {
            attrs.insert("next".to_owned(), next.clone());
        }
        if let Some(Value::Object(values)) = payload.get("values") {
            attrs.insert(
                "values.channels".to_owned(),
                Value::from(values.keys().cloned().collect::<Vec<_>>()),
            );
            if let Some(Value::Array(msgs)) = values.get("messages") {
                attrs.insert("values.messages".to_owned(), Value::from(msgs.len()));
            }
        }
        let parent = self.container(namespace, step);
        self.b.push_child(parent, span);
    }

    fn task_start(
        &mut self,
        source: SourceRef,
        namespace: &[String],
        step: Option<i64>,
        at: Option<i64>,
        payload: &Map<String, Value>,
    ) -> usize {
        let name = payload
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("task")
            .to_owned();
        let id = payload
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(
                || format!("task:{name}@{}", step.unwrap_or(-1)),
                str::to_owned,
            );
        let input = payload.get("input").unwrap_or(&Value::Null);
        let context = input.get("messages").map(message_list).unwrap_or_default();
        if self.task_text.is_none() {
            self.task_text = context
                .iter()
                .find(|m| m.role == Role::User)
                .map(Message::joined_text)
                .filter(|t| !t.is_empty());
        }
        let mut span = Span {
            id: id.clone(),
            kind: SpanKind::Step,
            name: name.clone(),
            step: step.and_then(|s| u32::try_from(s).ok()),
            start_ns: at,
            input: (payload_of(input)).map(Box::new),
            source,
            ..Span::default()
        };
        if let Some(triggers) = payload.get("triggers") {
            span.attributes
                .insert("triggers".to_owned(), triggers.clone());
        }
        let parent = self.container(namespace, step);
        let parent_task = self.tasks.contains_key(&parent).then_some(parent);
        let idx = self.b.push_child(parent, span);
        if parent_task.is_none() {
            self.top_tasks.push(idx);
        }
        self.tasks_by_id.insert(id, idx);
        let skip = context.len().saturating_sub(CONTEXT_MESSAGES);
        self.tasks.insert(
            idx,
            TaskState {
                name,
                start: at,
                parent_task,
                context: context.into_iter().skip(skip).collect(),
                ended: false,
                failed: false,
                has_model: false,
            },
        );
        idx
    }

    fn task_result(
        &mut self,
        source: &SourceRef,
        namespace: &[String],
        step: Option<i64>,
        at: Option<i64>,
        payload: &Map<String, Value>,
    ) {
        let id = payload
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let task = if let Some(&t) = self.tasks_by_id.get(id) {
            t
        } else {
            self.b.warn(format!(
                "task_result for task `{id}` without its task chunk; span made from the result"
            ));
            self.task_start(source.clone(), namespace, step, at, payload)
        };
        let error = payload
            .get("error")
            .filter(|e| !e.is_null())
            .and_then(text_of);
        let result = payload.get("result").unwrap_or(&Value::Null);
        {
            let span = self.b.span_mut(task);
            span.end_ns = at;
            span.output = (payload_of(result)).map(Box::new);
            span.status = if error.is_some() {
                Status::Error
            } else {
                Status::Ok
            };
            span.error = (error.as_deref().map(super::langsmith::parse_exception)).map(Box::new);
            if let Some(Value::Array(interrupts)) = payload.get("interrupts") {
                for interrupt in interrupts {
                    let mut attributes = std::collections::BTreeMap::new();
                    flatten_into("value", interrupt, &mut attributes);
                    span.events.push(SpanEvent {
                        name: "interrupt".to_owned(),
                        time_ns: at,
                        attributes,
                    });
                }
            }
        }
        if let Some(state) = self.tasks.get_mut(&task) {
            state.ended = true;
            state.failed = error.is_some();
        }
        for (k, message) in result_messages(result).into_iter().enumerate() {
            self.message(task, k, message, at, source);
        }
    }

    fn message(
        &mut self,
        task: usize,
        k: usize,
        message: &Value,
        at: Option<i64>,
        source: &SourceRef,
    ) {
        let Some(view) = lc_view(message) else { return };
        if !matches!(view.role, Role::Assistant | Role::Tool) {
            return;
        }
        if let Some(id) = view.str("id")
            && !self.seen_messages.insert(id.to_owned())
        {
            return;
        }
        let task_id = self.b.span(task).id.clone();
        let span_id = view
            .str("id")
            .map_or_else(|| format!("{task_id}/m{k}"), str::to_owned);
        let Some(state) = self.tasks.get(&task) else {
            return;
        };
        let start = state.start;
        if view.role == Role::Assistant {
            let text = view.text();
            if !text.is_empty() {
                self.final_text = Some(text.clone());
            }
            let response = view.fields.get("response_metadata");
            let model = response
                .and_then(|r| get_str(r, &["model_name"]).or_else(|| get_str(r, &["model"])));
            let span = Span {
                id: span_id,
                kind: SpanKind::Llm,
                name: model.unwrap_or("model").to_owned(),
                step: self.b.span(task).step,
                start_ns: start,
                end_ns: at,
                time_inferred: true,
                status: Status::Ok,
                output: ((!text.is_empty()).then(|| crate::model::Payload::text(text)))
                    .map(Box::new),
                llm: Some(Box::new(LlmCall {
                    provider: response
                        .and_then(|r| get_str(r, &["model_provider"]))
                        .map(str::to_owned),
                    response_model: model.map(str::to_owned),
                    finish_reason: response
                        .and_then(|r| {
                            get_str(r, &["finish_reason"]).or_else(|| get_str(r, &["stop_reason"]))
                        })
                        .map(str::to_owned),
                    input_messages: state.context.clone(),
                    output_messages: vec![view.to_message()],
                    ..LlmCall::default()
                })),
                usage: (view
                    .fields
                    .get("usage_metadata")
                    .map(usage_metadata)
                    .filter(|u| !u.is_empty()))
                .map(Box::new),
                source: source.clone(),
                ..Span::default()
            };
            let llm = self.b.push_child(task, span);
            for (call_id, name, args) in view.tool_calls() {
                if let Some(call_id) = call_id {
                    self.calls.insert(
                        call_id,
                        PendingCall {
                            llm,
                            task,
                            name,
                            args,
                        },
                    );
                }
            }
            if let Some(state) = self.tasks.get_mut(&task) {
                state.has_model = true;
            }
            return;
        }
        // A ToolMessage: the result of a call made by some earlier model message.
        let call_id = view.str("tool_call_id").map(str::to_owned);
        let call = call_id.as_deref().and_then(|c| self.calls.get(c));
        let name = view
            .str("name")
            .or(call.map(|c| c.name.as_str()))
            .unwrap_or("tool")
            .to_owned();
        let content = view.fields.get("content").cloned().unwrap_or(Value::Null);
        let text = view.text();
        let failed = view.str("status") == Some("error") || looks_like_error(&text);
        let mut span = Span {
            id: span_id,
            kind: SpanKind::Tool,
            name: name.clone(),
            step: self.b.span(task).step,
            start_ns: start,
            end_ns: at,
            time_inferred: true,
            status: if failed { Status::Error } else { Status::Ok },
            error: (failed.then(|| tool_error(&text))).map(Box::new),
            output: Some(Box::new(crate::model::Payload::text(text))),
            tool: Some(Box::new(ToolCall {
                name: name.clone(),
                call_id: call_id.clone(),
                arguments: call.map_or(Value::Null, |c| c.args.clone()),
                result: Some(content),
                is_error: failed,
            })),
            source: source.clone(),
            ..Span::default()
        };
        let issuer = call.map(|c| (c.llm, c.task));
        if let Some((llm, _)) = issuer {
            span.links.push(Link {
                kind: LinkKind::CallResult,
                target: self.b.span(llm).id.clone(),
            });
        }
        let tool = self.b.push_child(task, span);
        if let Some((_, issuer_task)) = issuer {
            self.tool_issuer.push((tool, issuer_task));
        }
        if !failed && let Some((target, mode)) = transfer_target(&name) {
            let handoff = handoff_span(
                format!("{}/handoff", self.b.span(tool).id),
                &name,
                None,
                target.clone(),
                mode,
                at,
                source.clone(),
            );
            let span = self.b.push_child(task, handoff);
            self.handoffs.push(HandoffNote {
                span,
                issuer: issuer.map(|(_, t)| t),
                task,
                target,
            });
        }
    }

    /// The agent a task acts for: itself when it is an agent, else its nearest agent task.
    fn agent_of(&self, task: usize, agents: &HashSet<usize>) -> Option<String> {
        let mut cur = Some(task);
        let mut hops = 0;
        while let Some(t) = cur {
            if agents.contains(&t) {
                return self.tasks.get(&t).map(|s| s.name.clone());
            }
            cur = self.tasks.get(&t).and_then(|s| s.parent_task);
            hops += 1;
            if hops > self.tasks.len() {
                break;
            }
        }
        None
    }

    /// The top-level step a task was placed under.
    fn step_of(&self, task: usize) -> Option<i64> {
        let parent = self.b.parent_of(task)?;
        self.steps
            .iter()
            .find_map(|(&n, &idx)| (idx == parent).then_some(n))
    }

    fn ancestors(&self, task: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut cur = self.tasks.get(&task).and_then(|s| s.parent_task);
        while let Some(t) = cur {
            if out.contains(&t) || out.len() > self.tasks.len() {
                break;
            }
            out.push(t);
            cur = self.tasks.get(&t).and_then(|s| s.parent_task);
        }
        out
    }

    fn finish(mut self, other_modes: &BTreeMap<String, u64>) -> Parsed {
        // Agents: tasks with model calls, directly or in a sub-graph, not inside another agent.
        let mut with_model: HashSet<usize> = HashSet::new();
        for (&t, state) in &self.tasks {
            if state.has_model {
                with_model.insert(t);
                with_model.extend(self.ancestors(t));
            }
        }
        let agents: HashSet<usize> = with_model
            .iter()
            .copied()
            .filter(|&t| !self.ancestors(t).iter().any(|a| with_model.contains(a)))
            .collect();
        for &t in &agents {
            let span = self.b.span_mut(t);
            span.kind = SpanKind::Agent;
        }
        // Tools run by a non-agent task act for the agent whose model asked for them.
        let mut acting_for: HashMap<usize, HashSet<String>> = HashMap::new();
        for &(tool, issuer) in &self.tool_issuer {
            if let Some(agent) = self.agent_of(issuer, &agents) {
                self.b.span_mut(tool).agent = Some(agent.clone());
                if let Some(task) = self.b.parent_of(tool) {
                    acting_for.entry(task).or_default().insert(agent);
                }
            }
        }
        for (task, names) in acting_for {
            if names.len() == 1 && self.agent_of(task, &agents).is_none() {
                self.b.span_mut(task).agent = names.into_iter().next();
            }
        }
        let task_names: HashSet<String> = self.tasks.values().map(|s| s.name.clone()).collect();
        for note in std::mem::take(&mut self.handoffs) {
            let from = note
                .issuer
                .and_then(|t| self.agent_of(t, &agents))
                .or_else(|| self.agent_of(note.task, &agents));
            let next_task = self
                .top_tasks
                .iter()
                .skip_while(|&&t| t != note.task && !self.ancestors(note.task).contains(&t))
                .nth(1)
                .and_then(|t| self.tasks.get(t))
                .map(|s| s.name.clone());
            let to = match next_task {
                Some(next) if !task_names.contains(&note.target) => next,
                _ => note.target,
            };
            let span = self.b.span_mut(note.span);
            span.agent.clone_from(&from);
            span.handoff = Some(Box::new(crate::model::Handoff {
                from,
                to,
                mode: span.handoff.as_ref().map(|h| h.mode).unwrap_or_default(),
            }));
        }
        let unfinished = self.tasks.values().filter(|s| !s.ended).count();
        if unfinished > 0 {
            self.b.warn(format!(
                "{unfinished} task(s) have no task_result; the stream may have been cut off"
            ));
        }
        self.fill_container_times();
        for (&step, &idx) in &self.steps {
            let tasks: Vec<&TaskState> = self
                .tasks
                .iter()
                .filter(|(t, state)| state.parent_task.is_none() && self.step_of(**t) == Some(step))
                .map(|(_, state)| state)
                .collect();
            let status = if tasks.iter().any(|s| s.failed) {
                Status::Error
            } else if tasks.iter().all(|s| s.ended) {
                Status::Ok
            } else {
                Status::Unset
            };
            self.b.span_mut(idx).status = status;
        }
        let failed = self.tasks.values().any(|s| s.failed);
        let status = if failed {
            Status::Error
        } else if unfinished == 0 && !self.tasks.is_empty() {
            Status::Ok
        } else {
            Status::Unset
        };
        self.b.span_mut(self.root).status = status;
        let thread = self.threads.first().cloned();
        let id = match (&thread, &self.first_checkpoint) {
            (Some(t), Some(c)) => format!("{t}:{c}"),
            (Some(t), None) => t.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => self.input.synth_id("langgraph"),
        };
        let trace = self.b.trace_mut();
        trace.id = id;
        trace.session_id = thread;
        trace.status = status;
        trace.task = self.task_text.take();
        trace.final_output = self.final_text.take();
        trace
            .metadata
            .insert("langgraph.stream".to_owned(), Value::from("debug"));
        if self.threads.len() > 1 {
            trace
                .metadata
                .insert("thread_ids".to_owned(), Value::from(self.threads.clone()));
        }
        if !other_modes.is_empty() {
            let counts: Map<String, Value> = other_modes
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(*v)))
                .collect();
            trace
                .metadata
                .insert("ignored_stream_modes".to_owned(), Value::Object(counts));
        }
        Parsed::unlabelled(self.b.finish())
    }

    /// Step spans and the root span cover their children.
    fn fill_container_times(&mut self) {
        let mut bounds: HashMap<usize, (Option<i64>, Option<i64>)> = HashMap::new();
        let containers: HashSet<usize> = self
            .steps
            .values()
            .copied()
            .chain(std::iter::once(self.root))
            .collect();
        // Steps first (their children are tasks and checkpoints), then the root.
        for pass in 0..2 {
            for i in 0..self.b.len() {
                let Some(parent) = self.b.parent_of(i) else {
                    continue;
                };
                if !containers.contains(&parent) || (pass == 0) == (parent == self.root) {
                    continue;
                }
                let span = self.b.span(i);
                let (start, end) = (span.start_ns, span.end_ns.or(span.start_ns));
                let entry = bounds.entry(parent).or_default();
                entry.0 = match (entry.0, start) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                entry.1 = match (entry.1, end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            for (&idx, &(start, end)) in &bounds {
                let span = self.b.span_mut(idx);
                span.start_ns = start;
                span.end_ns = end;
            }
        }
    }
}

/// `Error: ReadTimeout('...')\n Please fix your mistakes.` → kind `ReadTimeout`.
fn tool_error(text: &str) -> ErrorInfo {
    let first = text.lines().next().unwrap_or_default().trim();
    let body = first.strip_prefix("Error:").map_or(first, str::trim);
    ErrorInfo {
        kind: exception_class(body),
        message: truncate(first, 500),
        stack: None,
        handled: true,
    }
}

/// The messages written to the `messages` channel by a task result (`{channel: value}` or
/// `[[channel, value], ...]`).
fn result_messages(result: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let values: Vec<&Value> = match result {
        Value::Object(o) => o.get("messages").into_iter().collect(),
        Value::Array(pairs) => pairs
            .iter()
            .filter_map(|p| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(channel), value]) if channel == "messages" => Some(value),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for v in values {
        match v {
            Value::Array(items) => out.extend(items.iter()),
            Value::Object(_) => out.push(v),
            _ => {}
        }
    }
    out
}

// ---- astream_events ----------------------------------------------------------------------------

/// Assembles `astream_events` into runs and builds them like LangSmith runs.
fn from_events(events: &[(SourceRef, &Map<String, Value>)]) -> Vec<Parsed> {
    let mut nodes: Vec<RunNode> = Vec::new();
    let mut parent_ids: Vec<Vec<String>> = Vec::new();
    let mut by_run: HashMap<String, usize> = HashMap::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut orphans = 0usize;
    for (source, e) in events {
        let event = e.get("event").and_then(Value::as_str).unwrap_or_default();
        let Some(run_id) = e
            .get("run_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            orphans += 1;
            continue;
        };
        let body = event.strip_prefix("on_").unwrap_or(event);
        let (kind, phase) = body.rsplit_once('_').unwrap_or((body, ""));
        let data = e.get("data");
        let idx = if let Some(&i) = by_run.get(run_id) {
            i
        } else {
            let mut fields = Map::new();
            fields.insert("id".to_owned(), Value::from(run_id));
            fields.insert("status".to_owned(), Value::from("pending"));
            nodes.push(RunNode {
                fields,
                parent: None,
                source: source.clone(),
            });
            parent_ids.push(Vec::new());
            by_run.insert(run_id.to_owned(), nodes.len() - 1);
            nodes.len() - 1
        };
        let node = &mut nodes[idx];
        if kind == "custom" {
            let name = e.get("name").and_then(Value::as_str).unwrap_or("custom");
            push_event(&mut node.fields, name, data);
            continue;
        }
        let run_type = match kind {
            "chat_model" | "llm" => "llm",
            "tool" => "tool",
            "retriever" => "retriever",
            "prompt" => "prompt",
            "parser" => "parser",
            "embedding" | "embeddings" => "embedding",
            _ => "chain",
        };
        let f = &mut node.fields;
        f.entry("run_type").or_insert_with(|| Value::from(run_type));
        if let Some(name) = e.get("name").and_then(Value::as_str) {
            f.entry("name").or_insert_with(|| Value::from(name));
        }
        if let Some(Value::Object(meta)) = e.get("metadata") {
            let extra = f
                .entry("extra")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(extra) = extra {
                extra
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(meta.clone()));
            }
        }
        if let Some(Value::Array(tags)) = e.get("tags") {
            f.entry("tags")
                .or_insert_with(|| Value::Array(tags.clone()));
        }
        if let Some(Value::Array(ids)) = e.get("parent_ids")
            && parent_ids[idx].is_empty()
        {
            parent_ids[idx] = ids
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        let input = data.and_then(|d| d.get("input")).filter(|v| !v.is_null());
        match phase {
            "start" => {
                node.source = source.clone();
                if let Some(input) = input {
                    node.fields.insert("inputs".to_owned(), input.clone());
                }
            }
            "end" => {
                if let Some(input) = input
                    && node.fields.get("inputs").is_none_or(Value::is_null)
                {
                    node.fields.insert("inputs".to_owned(), input.clone());
                }
                let output = data
                    .and_then(|d| d.get("output"))
                    .cloned()
                    .unwrap_or(Value::Null);
                // Tool runs keep their ToolMessage under `output`, as LangSmith logs them.
                let output = if run_type == "tool" {
                    let mut wrapped = Map::new();
                    wrapped.insert("output".to_owned(), output);
                    Value::Object(wrapped)
                } else {
                    output
                };
                node.fields.insert("outputs".to_owned(), output);
                if node.fields.get("error").is_none() {
                    node.fields
                        .insert("status".to_owned(), Value::from("success"));
                }
            }
            "error" => {
                let error = data
                    .and_then(|d| d.get("error"))
                    .and_then(|e| {
                        get_str(e, &["message"])
                            .map(str::to_owned)
                            .or_else(|| text_of(e))
                    })
                    .unwrap_or_else(|| "error".to_owned());
                node.fields.insert("error".to_owned(), Value::from(error));
                node.fields
                    .insert("status".to_owned(), Value::from("error"));
            }
            "stream" => {
                let count = node
                    .fields
                    .get("stream_chunks")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                node.fields
                    .insert("stream_chunks".to_owned(), Value::from(count + 1));
            }
            _ => {}
        }
    }
    if orphans > 0 {
        warnings.push(format!("{orphans} event(s) without a `run_id`; skipped"));
    }
    let pending = nodes
        .iter()
        .filter(|n| n.str("status") == Some("pending"))
        .count();
    if pending > 0 {
        warnings.push(format!(
            "{pending} run(s) started but never ended (the stream stopped or raised)"
        ));
    }
    let mut parents: Vec<Option<usize>> = parent_ids
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            ids.iter()
                .rev()
                .find_map(|id| by_run.get(id).copied())
                .filter(|&p| p != i)
        })
        .collect();
    let broken = break_cycles(&mut parents);
    if broken > 0 {
        warnings.push(format!("{broken} parent cycle(s) among runs broken"));
    }
    for (node, parent) in nodes.iter_mut().zip(parents) {
        node.parent = parent;
    }
    group_into_traces(nodes)
        .into_iter()
        .map(|group| {
            let mut b = build_run_trace(Format::LangGraph, group.id, &group.nodes);
            describe_trace(&mut b, &group.nodes);
            b.trace_mut()
                .metadata
                .insert("langgraph.stream".to_owned(), Value::from("astream_events"));
            for w in &warnings {
                b.warn(w.clone());
            }
            Parsed::unlabelled(b.finish())
        })
        .collect()
}

fn push_event(fields: &mut Map<String, Value>, name: &str, data: Option<&Value>) {
    let events = fields
        .entry("events")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = events {
        let mut event = Map::new();
        event.insert("name".to_owned(), Value::from(name));
        if let Some(d) = data {
            event.insert("kwargs".to_owned(), d.clone());
        }
        list.push(Value::Object(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(doc: Doc) -> Input {
        Input {
            file: "x.jsonl".into(),
            doc,
            companions: Vec::new(),
            record: None,
        }
    }

    #[test]
    fn chunk_wrappers() {
        let bare = serde_json::json!({"type": "task", "step": 1, "payload": {}});
        assert!(matches!(classify(&bare), Chunk::Debug { .. }));
        let wrapped =
            serde_json::json!([["a:1"], "debug", {"type": "task", "step": 1, "payload": {}}]);
        let Chunk::Debug { namespace, .. } = classify(&wrapped) else {
            panic!()
        };
        assert_eq!(namespace, ["a:1"]);
        let two =
            serde_json::json!([["a:1", "b:2"], {"type": "task_result", "step": 1, "payload": {}}]);
        let Chunk::Debug { namespace, .. } = classify(&two) else {
            panic!()
        };
        assert_eq!(namespace.len(), 2);
        let other = serde_json::json!(["values", {"messages": []}]);
        assert!(matches!(classify(&other), Chunk::OtherMode(m) if m == "values"));
        assert!(matches!(classify(&serde_json::json!([])), Chunk::Unknown));
        assert!(matches!(classify(&serde_json::json!(3)), Chunk::Unknown));
    }

    #[test]
    fn result_channels_in_both_shapes() {
        let pairs =
            serde_json::json!([["messages", [{"type": "ai", "content": "a"}]], ["other", 1]]);
        assert_eq!(result_messages(&pairs).len(), 1);
        let map = serde_json::json!({"messages": {"type": "ai", "content": "a"}});
        assert_eq!(result_messages(&map).len(), 1);
        assert!(result_messages(&serde_json::json!("x")).is_empty());
    }

    #[test]
    fn nothing_recognizable_is_an_error() {
        let lines = vec![crate::adapters::JsonLine {
            line: 1,
            value: serde_json::json!(["values", {"messages": []}]),
        }];
        let err = parse(&input(Doc::Lines(lines))).unwrap_err();
        assert!(err.message.contains("debug chunks"));
        assert!(parse(&input(Doc::Text("x".into()))).is_err());
    }
}

#[cfg(test)]
mod fixture_tests {
    use crate::model::{Format, HandoffMode, LinkKind, SpanKind, Status};
    use crate::testing::{fixture, inline};

    #[test]
    fn debug_stream_with_a_subgraph() {
        let (summary, traces) = fixture("langgraph/ci-fix-debug-subgraphs.jsonl");
        assert_eq!(summary.format, Format::LangGraph);
        let t = &traces[0].trace;
        assert_eq!(t.id, "fix-ci-0042:1f02c7d0-aaaa-6001-8000-000000000001");
        assert_eq!(t.session_id.as_deref(), Some("fix-ci-0042"));
        assert_eq!(t.status, Status::Ok);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.metadata["ignored_stream_modes"]["updates"], 2);
        let agents: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(agents, ["triage", "coder"]);

        // The sub-graph's inner `agent` tasks stay steps of the `coder` agent.
        let coder = t.spans.iter().position(|s| s.name == "coder").unwrap();
        assert_eq!(t.spans[coder].kind, SpanKind::Agent);
        let inner: Vec<_> = t.spans.iter().filter(|s| s.name == "agent").collect();
        assert_eq!(inner.len(), 2);
        assert!(inner.iter().all(|s| s.kind == SpanKind::Step
            && s.parent == Some(coder as u32)
            && s.agent.as_deref() == Some("coder")));
        assert_eq!(inner[1].step, Some(3), "the sub-graph's own step");

        // Messages repeated in the parent's result are not counted twice.
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 3);
        assert_eq!(t.usage.input, Some(2750));
        assert_eq!(t.usage.output, Some(202));
        assert_eq!(t.usage.cache_read, Some(512));

        let failed = t.spans.iter().find(|s| s.status == Status::Error).unwrap();
        assert_eq!(failed.kind, SpanKind::Tool);
        let call = failed.tool.as_ref().unwrap();
        assert_eq!(call.name, "run_tests");
        assert_eq!(call.call_id.as_deref(), Some("call_r1"));
        assert_eq!(call.arguments["platform"], "windows");
        let err = failed.error.as_ref().unwrap();
        assert_eq!(err.kind.as_deref(), Some("CalledProcessError"));
        assert!(err.handled);
        assert_eq!(failed.agent.as_deref(), Some("coder"));
        assert!(failed.time_inferred);
        assert!(
            failed
                .links
                .iter()
                .any(|l| l.kind == LinkKind::CallResult && l.target == "run-ai-2")
        );

        let handoffs: Vec<_> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!(
            (h.from.as_deref(), h.to.as_str(), h.mode),
            (Some("triage"), "coder", HandoffMode::Transfer)
        );

        let checkpoints = t.spans_of(SpanKind::System).count();
        assert_eq!(checkpoints, 5);
        let step2 = t.spans.iter().find(|s| s.id == "step:2").unwrap();
        assert_eq!(step2.status, Status::Ok);
        assert!(step2.start_ns.is_some() && step2.end_ns > step2.start_ns);
        assert!(t.final_output.as_deref().unwrap().contains("splitlines"));
        assert!(t.task.as_deref().unwrap().starts_with("Why does"));
    }

    #[test]
    fn astream_events_pair_by_run_id() {
        let (summary, traces) = fixture("langgraph/fx-supervisor-astream-events.jsonl");
        assert_eq!(summary.format, Format::LangGraph);
        let t = &traces[0].trace;
        assert_eq!(t.metadata["langgraph.stream"], "astream_events");
        assert_eq!(t.session_id.as_deref(), Some("fx-311"));
        let agents: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(agents, ["supervisor", "analyst"]);
        assert_eq!(t.usage.input, Some(1093));
        assert_eq!(t.usage.output, Some(68));
        let failed = t.spans.iter().find(|s| s.status == Status::Error).unwrap();
        assert_eq!(failed.tool.as_ref().unwrap().name, "fetch_fx_rates");
        assert_eq!(
            failed.tool.as_ref().unwrap().call_id.as_deref(),
            Some("call_fx1")
        );
        assert_eq!(
            failed.error.as_ref().unwrap().kind.as_deref(),
            Some("RateLimitError")
        );
        assert!(
            failed.error.as_ref().unwrap().handled,
            "the analyst node carried on"
        );
        let h = t.spans_of(SpanKind::Handoff).next().unwrap();
        assert_eq!(h.handoff.as_ref().unwrap().to, "analyst");
        let streamed = t
            .spans
            .iter()
            .find(|s| s.id.ends_with("000000000008"))
            .unwrap();
        assert_eq!(streamed.attributes["stream_chunks"], 3);
        let analyst = t.spans.iter().find(|s| s.name == "analyst").unwrap();
        assert_eq!(analyst.events[0].name, "progress");
        // No timestamps in astream_events: arrival order is kept.
        assert!(t.spans.iter().all(|s| s.start_ns.is_none()));
        assert!(t.spans.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(
            t.final_output
                .as_deref()
                .unwrap()
                .starts_with("I could not fetch")
        );
    }

    #[test]
    fn failed_and_unfinished_tasks() {
        let text = r#"{"type": "task", "step": 1, "timestamp": "2026-01-01T00:00:00+00:00", "payload": {"id": "t1", "name": "fetch", "input": {}}}
{"type": "task_result", "step": 1, "timestamp": "2026-01-01T00:00:02+00:00", "payload": {"id": "t1", "name": "fetch", "error": "ConnectionError('refused')", "result": []}}
{"type": "task", "step": 2, "timestamp": "2026-01-01T00:00:03+00:00", "payload": {"id": "t2", "name": "retry"}}
"#;
        let (_, traces) = inline("run.jsonl", text);
        let t = &traces[0].trace;
        assert_eq!(t.status, Status::Error);
        let fetch = t.spans.iter().find(|s| s.name == "fetch").unwrap();
        assert_eq!(fetch.status, Status::Error);
        assert_eq!(
            fetch.error.as_ref().unwrap().kind.as_deref(),
            Some("ConnectionError")
        );
        assert!(!fetch.error.as_ref().unwrap().handled);
        assert_eq!(
            t.spans.iter().find(|s| s.name == "retry").unwrap().status,
            Status::Unset
        );
        assert!(
            t.warnings.iter().any(|w| w.contains("no task_result")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn hostile_chunks_do_not_panic() {
        let text = r#"{"type": "task", "step": "x", "payload": {"id": 5, "name": [], "input": "str"}}
{"type": "task_result", "step": 1, "payload": {"id": "nope", "result": {"messages": "not a list"}, "error": {"message": "boom"}}}
{"type": "checkpoint", "step": 1, "payload": {"config": 3, "values": [], "next": null}}
{"type": "task_result", "step": 1, "payload": {"id": "nope", "result": {"messages": [{"type": "tool", "content": [1, 2], "tool_call_id": 7}, {"type": "ai", "content": null, "tool_calls": "x", "usage_metadata": "y"}]}}}
[["ghost:123"], "debug", {"type": "task", "step": 1, "payload": {"id": "g"}}]
[1]
"#;
        let (_, traces) = inline("bad.jsonl", text);
        let t = &traces[0].trace;
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("without its task chunk")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings.iter().any(|w| w.contains("names no task")),
            "{:?}",
            t.warnings
        );
        assert!(t.spans.iter().any(|s| s.kind == SpanKind::Tool));
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("neither debug chunks")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn several_stream_modes_in_one_file() {
        let text = r#"["updates", {"agent": {"messages": []}}]
[[], {"type": "task", "step": 1, "timestamp": "2026-01-01T00:00:00Z", "payload": {"id": "t1", "name": "agent"}}]
[[], "values", {"messages": []}]
[[], {"type": "task_result", "step": 1, "timestamp": "2026-01-01T00:00:01Z", "payload": {"id": "t1", "name": "agent", "error": null, "result": {"messages": [{"type": "ai", "content": "done", "id": "a1"}]}}}]
"#;
        let (summary, traces) = inline("modes.jsonl", text);
        assert_eq!(summary.format, Format::LangGraph);
        let t = &traces[0].trace;
        assert_eq!(t.metadata["ignored_stream_modes"]["updates"], 1);
        assert_eq!(t.metadata["ignored_stream_modes"]["values"], 1);
        assert_eq!(t.spans_of(SpanKind::Agent).count(), 1);
        assert_eq!(t.final_output.as_deref(), Some("done"));
    }

    #[test]
    fn events_that_never_end_are_reported() {
        let text = r#"{"event": "on_chain_start", "name": "LangGraph", "run_id": "r", "parent_ids": [], "data": {"input": {"question": "q?"}}}
{"event": "on_tool_start", "name": "search", "run_id": "s", "parent_ids": ["r", "gone"], "data": {"input": {"q": 1}}}
{"event": "on_tool_end", "name": "search", "run_id": "s", "parent_ids": ["r"], "data": {"output": "Error: nothing found"}}
{"event": "on_chain_stream", "run_id": "", "data": {}}
"#;
        let (_, traces) = inline("events.jsonl", text);
        let t = &traces[0].trace;
        assert!(
            t.warnings.iter().any(|w| w.contains("never ended")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings.iter().any(|w| w.contains("without a `run_id`")),
            "{:?}",
            t.warnings
        );
        let search = t.spans.iter().find(|s| s.name == "search").unwrap();
        assert_eq!(search.parent, Some(0));
        assert_eq!(
            search.status,
            Status::Error,
            "error text in the tool output"
        );
        assert_eq!(t.task.as_deref(), Some("q?"));
    }
}
