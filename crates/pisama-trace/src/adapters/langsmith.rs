//! LangSmith runs (`formats.md` §4.2, §4.4).
//!
//! Accepted containers, in any mix: a nested run tree (`child_runs`, as `read_run(...,
//! load_child_runs=True)` returns it), a flat array or JSONL of runs linked by
//! `parent_run_id` (as `list_runs` returns them), a `{"runs": [...]}` wrapper (`/runs/query`),
//! and ingest batches `{"post": [...], "patch": [...]}` whose patch fields are merged into the
//! posted run with the same `id`. A run seen twice is merged the same way.
//!
//! Mapping decisions:
//! - Parent = `parent_run_id`, else the `child_runs` nesting, else the second-to-last segment
//!   of `dotted_order`. Runs are grouped into traces by the root's `trace_id` (else the first
//!   `dotted_order` segment, else the root's id); each group is one [`Parsed`].
//! - Kinds: `llm` → Llm, `tool` → Tool, `retriever` → Retrieval, `embedding` → Embedding,
//!   others → Step. A `chain` whose name equals its `extra.metadata.langgraph_node` and that
//!   contains an `llm` run is an Agent, unless an ancestor already is one: the inner `agent` /
//!   `tools` nodes of a `ReAct` sub-graph then stay Steps of the outer agent node. When nothing
//!   qualifies (plain LangChain, no LangGraph), a root chain containing model calls is the
//!   agent.
//! - Agent of a span: the nearest Agent ancestor; for tool runs outside any agent (a shared
//!   `tools` node), the agent whose model requested the call (matched by `tool_call_id`, else
//!   by tool name in time order).
//! - `transfer_to_<x>` / `transfer_back_to_<x>` tools get a zero-length Handoff span beside
//!   them (Transfer / Return). A model's `transfer_to_*` tool call that no tool run executed
//!   gets the Handoff beside the model run instead. Failed transfers get none.
//! - Usage and cost count on `llm` runs only (`prompt_tokens`/`completion_tokens`, else the
//!   message's `usage_metadata`, else `llm_output.token_usage`); other runs that carry totals
//!   keep them as `Subtree` aggregates. LangSmith costs are reported in USD.
//! - `error` strings: the first line is the message (its exception class the kind), the rest
//!   the stack. A tool whose `ToolMessage` says `status: "error"` failed but was handled (the
//!   graph passed the error back to the model).
//! - `step` = `extra.metadata.langgraph_step`, the graph's own step number.
//!
//! The same run-tree builder also serves LangChain `astream_events` (see `langgraph.rs`),
//! whose events are first assembled into runs of this shape.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::generic_chat::{looks_like_error, openai_usage};
use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    Cost, CostSource, ErrorInfo, Format, Handoff, HandoffMode, LlmCall, Message, Part, Payload,
    Role, SourceRef, Span, SpanEvent, SpanKind, Status, ToolCall, Usage, UsageScope,
};
use crate::util::{as_f64, as_u64, flatten_into, get, get_str, maybe_json, text_of, time_value};

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let mut collector = Collector::new(input);
    match &input.doc {
        Doc::Json(v) => collector.document(v, "", None),
        Doc::Lines(lines) => {
            for line in lines {
                collector.document(&line.value, "", Some(line.line));
            }
        }
        Doc::Text(_) => {
            return Err(AdapterError::new(
                "LangSmith runs must be JSON or JSONL, got text",
            ));
        }
    }
    if collector.runs.is_empty() {
        return Err(AdapterError::new(
            "expected LangSmith runs: objects with `id` and `run_type` (a `child_runs` tree, a list \
             linked by `parent_run_id`, `{\"runs\": [...]}` or `{\"post\": [...], \"patch\": [...]}`)",
        ));
    }
    let Collector { runs, warnings, .. } = collector;
    let (nodes, tree_warnings) = link_runs(runs);
    let mut out = Vec::new();
    for group in group_into_traces(nodes) {
        let mut b = build_run_trace(Format::LangSmith, group.id, &group.nodes);
        for w in warnings.iter().chain(&tree_warnings) {
            b.warn(w.clone());
        }
        describe_trace(&mut b, &group.nodes);
        out.push(Parsed::unlabelled(b.finish()));
    }
    Ok(out)
}

/// Trace-level fields taken from the root run: session, task, final output, status, SDK.
pub(super) fn describe_trace(b: &mut TraceBuilder, nodes: &[RunNode]) {
    let Some(root) = nodes.iter().find(|n| n.parent.is_none()) else {
        return;
    };
    let trace = b.trace_mut();
    trace.session_id = root
        .meta_str("thread_id")
        .or_else(|| root.meta_str("session_id"))
        .or_else(|| root.meta_str("conversation_id"))
        .map(str::to_owned);
    if let Some(project) = root.str("session_id") {
        trace
            .metadata
            .insert("project_id".to_owned(), Value::String(project.to_owned()));
    }
    if let Some(name) = root.str("name") {
        trace
            .metadata
            .insert("root_run".to_owned(), Value::String(name.to_owned()));
    }
    if let Some(runtime) = root.fields.get("extra").and_then(|e| e.get("runtime"))
        && let (Some(sdk), Some(version)) = (
            get_str(runtime, &["sdk"]),
            get_str(runtime, &["sdk_version"]),
        )
    {
        trace.format_version = Some(format!("{sdk}/{version}"));
    }
    if let Some(task) = root.fields.get("inputs").and_then(first_user_text) {
        trace.task = Some(task);
    }
    if let Some(output) = root.fields.get("outputs").and_then(payload_of) {
        trace.final_output = Some(output.text);
    }
    trace.status = run_status(root);
}

// ---- collecting runs out of their containers ---------------------------------------------

/// One run as found, before parents are resolved.
#[derive(Debug)]
struct RawRun {
    fields: Map<String, Value>,
    /// The run whose `child_runs` held this one.
    nest_parent: Option<usize>,
    source: SourceRef,
}

struct Collector<'i> {
    input: &'i Input,
    runs: Vec<RawRun>,
    by_id: HashMap<String, usize>,
    warnings: Vec<String>,
    skipped: usize,
}

impl<'i> Collector<'i> {
    fn new(input: &'i Input) -> Self {
        Collector {
            input,
            runs: Vec::new(),
            by_id: HashMap::new(),
            warnings: Vec::new(),
            skipped: 0,
        }
    }

    fn source(&self, line: Option<u32>, pointer: &str) -> SourceRef {
        match line {
            Some(line) => SourceRef {
                file: Some(self.input.file.clone()),
                line: Some(line),
                pointer: (!pointer.is_empty()).then(|| pointer.to_owned()),
            },
            None => self.input.at(pointer),
        }
    }

    /// A document or JSONL line: a run tree, a list, a `runs` wrapper or an ingest batch.
    fn document(&mut self, v: &Value, pointer: &str, line: Option<u32>) {
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.document(item, &format!("{pointer}/{i}"), line);
                }
            }
            Value::Object(o) if looks_like_run(o) => self.tree(v, pointer, line),
            Value::Object(o)
                if o.contains_key("runs") || o.contains_key("post") || o.contains_key("patch") =>
            {
                for key in ["runs", "post"] {
                    if let Some(Value::Array(items)) = o.get(key) {
                        for (i, item) in items.iter().enumerate() {
                            self.tree(item, &format!("{pointer}/{key}/{i}"), line);
                        }
                    }
                }
                if let Some(Value::Array(patches)) = o.get("patch") {
                    for (i, patch) in patches.iter().enumerate() {
                        self.tree(patch, &format!("{pointer}/patch/{i}"), line);
                    }
                }
            }
            _ => self.skipped += 1,
        }
        if self.skipped > 0 && pointer.is_empty() {
            let skipped = std::mem::take(&mut self.skipped);
            let place = line.map_or_else(String::new, |l| format!(" on line {l}"));
            self.warnings.push(format!(
                "{skipped} value(s){place} are not LangSmith runs; skipped"
            ));
        }
    }

    /// A run and its `child_runs`, depth first, keeping source order.
    fn tree(&mut self, root: &Value, pointer: &str, line: Option<u32>) {
        let mut stack: Vec<(&Value, String, Option<usize>)> =
            vec![(root, pointer.to_owned(), None)];
        while let Some((v, ptr, nest_parent)) = stack.pop() {
            let Some(o) = v.as_object() else {
                self.skipped += 1;
                continue;
            };
            // Copy the run without its children: they are added as runs of their own.
            let fields: Map<String, Value> = o
                .iter()
                .filter(|(k, _)| k.as_str() != "child_runs")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let idx = self.add(fields, nest_parent, self.source(line, &ptr));
            if let Some(Value::Array(children)) = o.get("child_runs") {
                for (i, child) in children.iter().enumerate().rev() {
                    stack.push((child, format!("{ptr}/child_runs/{i}"), Some(idx)));
                }
            }
        }
    }

    /// Adds a run, or merges it into the run already seen with the same id (ingest patches,
    /// duplicates across pages). Returns its index.
    fn add(
        &mut self,
        fields: Map<String, Value>,
        nest_parent: Option<usize>,
        source: SourceRef,
    ) -> usize {
        let id = fields
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if let Some(existing) = id.as_ref().and_then(|id| self.by_id.get(id)).copied() {
            let run = &mut self.runs[existing];
            for (k, v) in fields {
                if !v.is_null() {
                    run.fields.insert(k, v);
                }
            }
            if run.nest_parent.is_none() {
                run.nest_parent = nest_parent;
            }
            return existing;
        }
        let idx = self.runs.len();
        let mut fields = fields;
        let id = id.unwrap_or_else(|| {
            let synth = format!("run-{idx}");
            fields.insert("id".to_owned(), Value::String(synth.clone()));
            self.warnings
                .push(format!("a run without an `id` was named `{synth}`"));
            synth
        });
        self.by_id.insert(id, idx);
        self.runs.push(RawRun {
            fields,
            nest_parent,
            source,
        });
        idx
    }
}

fn looks_like_run(o: &Map<String, Value>) -> bool {
    o.contains_key("run_type")
        || (o.contains_key("id")
            && ["child_runs", "parent_run_id", "dotted_order", "trace_id"]
                .iter()
                .any(|k| o.contains_key(*k)))
}

// ---- the run tree ----------------------------------------------------------------------------

/// One run with its parent resolved to an index in the same list.
#[derive(Debug, Clone, Default)]
pub(super) struct RunNode {
    /// The run's own fields (LangSmith names), without `child_runs`.
    pub(super) fields: Map<String, Value>,
    pub(super) parent: Option<usize>,
    pub(super) source: SourceRef,
}

impl RunNode {
    pub(super) fn str(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub(super) fn id(&self) -> &str {
        self.str("id").unwrap_or_default()
    }

    fn run_type(&self) -> &str {
        self.str("run_type").unwrap_or("chain")
    }

    fn name(&self) -> &str {
        self.str("name").unwrap_or_else(|| self.run_type())
    }

    fn metadata(&self) -> Option<&Map<String, Value>> {
        self.fields
            .get("extra")
            .and_then(|e| e.get("metadata"))
            .and_then(Value::as_object)
    }

    pub(super) fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata()
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    fn start_ns(&self) -> Option<i64> {
        self.fields.get("start_time").and_then(time_value)
    }

    fn end_ns(&self) -> Option<i64> {
        self.fields.get("end_time").and_then(time_value)
    }
}

/// Resolves parents and breaks cycles.
fn link_runs(runs: Vec<RawRun>) -> (Vec<RunNode>, Vec<String>) {
    let by_id: HashMap<String, usize> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.fields
                .get("id")
                .and_then(Value::as_str)
                .map(|id| (id.to_owned(), i))
        })
        .collect();
    let mut warnings = Vec::new();
    let mut missing = 0usize;
    let mut parents: Vec<Option<usize>> = Vec::with_capacity(runs.len());
    for (i, run) in runs.iter().enumerate() {
        let named = run
            .fields
            .get("parent_run_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let parent = match named {
            Some(pid) => {
                let found = by_id.get(pid).copied();
                if found.is_none() {
                    missing += 1;
                }
                found.or(run.nest_parent)
            }
            None => run.nest_parent.or_else(|| {
                run.fields
                    .get("dotted_order")
                    .and_then(Value::as_str)
                    .and_then(dotted_parent)
                    .and_then(|pid| by_id.get(pid).copied())
            }),
        };
        parents.push(parent.filter(|&p| p != i));
    }
    if missing > 0 {
        warnings.push(format!(
            "{missing} run(s) name a `parent_run_id` that is not in the input; kept as roots"
        ));
    }
    let broken = break_cycles(&mut parents);
    if broken > 0 {
        warnings.push(format!("{broken} parent cycle(s) among runs broken"));
    }
    let nodes = runs
        .into_iter()
        .zip(parents)
        .map(|(r, parent)| RunNode {
            fields: r.fields,
            parent,
            source: r.source,
        })
        .collect();
    (nodes, warnings)
}

/// Cuts parent edges that close a cycle (or point outside the list). Returns how many.
pub(super) fn break_cycles(parents: &mut [Option<usize>]) -> usize {
    let n = parents.len();
    let mut state = vec![0u8; n]; // 0 unvisited, 1 on the current path, 2 done
    let mut broken = 0;
    for start in 0..n {
        let mut path = Vec::new();
        let mut cur = start;
        loop {
            if state[cur] == 2 {
                break;
            }
            if state[cur] == 1 {
                if let Some(&last) = path.last() {
                    parents[last] = None;
                    broken += 1;
                }
                break;
            }
            state[cur] = 1;
            path.push(cur);
            match parents[cur] {
                Some(p) if p < n => cur = p,
                Some(_) => {
                    parents[cur] = None;
                    broken += 1;
                    break;
                }
                None => break,
            }
        }
        for i in path {
            state[i] = 2;
        }
    }
    broken
}

/// The parent id in a `dotted_order`: the run id that ends the second-to-last segment.
fn dotted_parent(dotted: &str) -> Option<&str> {
    let mut segments = dotted.rsplit('.');
    segments.next()?;
    segments.next().and_then(dotted_segment_id)
}

/// `20260101T090000000000Z<uuid>` → `<uuid>`.
fn dotted_segment_id(segment: &str) -> Option<&str> {
    segment
        .split_once('Z')
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
}

/// The runs of one trace, parents re-indexed within the group.
pub(super) struct RunGroup {
    pub(super) id: String,
    pub(super) nodes: Vec<RunNode>,
}

/// Groups runs by trace. Parents must already be cycle-free.
pub(super) fn group_into_traces(nodes: Vec<RunNode>) -> Vec<RunGroup> {
    let n = nodes.len();
    let root_of = |mut i: usize| {
        let mut hops = 0;
        while let Some(p) = nodes[i].parent {
            i = p;
            hops += 1;
            if hops > n {
                break;
            }
        }
        i
    };
    let mut group_of_key: HashMap<String, usize> = HashMap::new();
    let mut members: Vec<(String, Vec<usize>)> = Vec::new();
    let mut group_of_node = vec![0usize; n];
    for i in 0..n {
        let root = &nodes[root_of(i)];
        let key = root
            .str("trace_id")
            .or_else(|| {
                root.str("dotted_order")
                    .and_then(|d| d.split('.').next())
                    .and_then(dotted_segment_id)
            })
            .unwrap_or_else(|| root.id())
            .to_owned();
        let g = *group_of_key.entry(key.clone()).or_insert_with(|| {
            members.push((key, Vec::new()));
            members.len() - 1
        });
        members[g].1.push(i);
        group_of_node[i] = g;
    }
    let mut local = vec![0usize; n];
    for (_, list) in &members {
        for (li, &i) in list.iter().enumerate() {
            local[i] = li;
        }
    }
    let mut slots: Vec<Option<RunNode>> = nodes.into_iter().map(Some).collect();
    members
        .into_iter()
        .map(|(id, list)| {
            let nodes = list
                .iter()
                .filter_map(|&i| {
                    let mut node = slots[i].take()?;
                    node.parent = node
                        .parent
                        .filter(|&p| group_of_node[p] == group_of_node[i])
                        .map(|p| local[p]);
                    Some(node)
                })
                .collect();
            RunGroup { id, nodes }
        })
        .collect()
}

// ---- building the trace ---------------------------------------------------------------------

/// A tool call requested by a model run, waiting for the tool run that executes it.
#[derive(Debug, Clone)]
struct RequestedCall {
    id: Option<String>,
    name: String,
    args: Value,
    llm: usize,
    taken: bool,
}

/// Builds spans for one trace's runs (parents are indices into `nodes`, cycle-free).
/// Returns the builder so callers can add trace-level fields before `finish`.
pub(super) fn build_run_trace(format: Format, id: String, nodes: &[RunNode]) -> TraceBuilder {
    let n = nodes.len();
    let mut b = TraceBuilder::new(format, id);
    let ancestors = |mut i: usize| {
        let mut out = Vec::new();
        while let Some(p) = nodes[i].parent {
            out.push(p);
            i = p;
            if out.len() > n {
                break;
            }
        }
        out
    };

    // Which chains contain a model call.
    let mut has_llm = vec![false; n];
    for (i, node) in nodes.iter().enumerate() {
        if node.run_type() == "llm" {
            for a in ancestors(i) {
                if has_llm[a] {
                    break;
                }
                has_llm[a] = true;
            }
        }
    }
    let candidate: Vec<bool> = (0..n)
        .map(|i| {
            let node = &nodes[i];
            node.run_type() == "chain"
                && has_llm[i]
                && node.meta_str("langgraph_node") == Some(node.name())
        })
        .collect();
    let mut is_agent: Vec<bool> = (0..n)
        .map(|i| candidate[i] && !ancestors(i).into_iter().any(|a| candidate[a]))
        .collect();
    if !is_agent.iter().any(|a| *a) {
        for i in 0..n {
            is_agent[i] = nodes[i].parent.is_none() && nodes[i].run_type() == "chain" && has_llm[i];
        }
    }
    let agent_names: HashSet<&str> = (0..n)
        .filter(|&i| is_agent[i])
        .map(|i| nodes[i].name())
        .collect();
    let mut agent_of: Vec<Option<String>> = (0..n)
        .map(|i| {
            std::iter::once(i)
                .chain(ancestors(i))
                .find(|&a| is_agent[a])
                .map(|a| nodes[a].name().to_owned())
        })
        .collect();

    // Pair tool runs with the model tool calls they execute, in time order.
    let order = time_order(nodes);
    let mut requested: Vec<RequestedCall> = Vec::new();
    let mut call_of_tool: Vec<Option<usize>> = vec![None; n];
    for &i in &order {
        match nodes[i].run_type() {
            "llm" => {
                for (call_id, name, args) in output_tool_calls(&nodes[i]) {
                    requested.push(RequestedCall {
                        id: call_id,
                        name,
                        args,
                        llm: i,
                        taken: false,
                    });
                }
            }
            "tool" => {
                let own_id = tool_call_id(&nodes[i]);
                let name = nodes[i].name();
                let found = match &own_id {
                    Some(id) => requested
                        .iter()
                        .position(|c| !c.taken && c.id.as_deref() == Some(id)),
                    None => requested.iter().position(|c| !c.taken && c.name == name),
                };
                if let Some(k) = found {
                    requested[k].taken = true;
                    call_of_tool[i] = Some(k);
                }
            }
            _ => {}
        }
    }
    for i in 0..n {
        if agent_of[i].is_some() {
            continue;
        }
        let requester = call_of_tool[i].and_then(|k| agent_of[requested[k].llm].clone());
        agent_of[i] = requester.or_else(|| {
            std::iter::once(i)
                .chain(ancestors(i))
                .find_map(|a| {
                    nodes[a]
                        .meta_str("langgraph_node")
                        .filter(|node| agent_names.contains(node))
                })
                .map(str::to_owned)
        });
    }

    let mut built = Vec::with_capacity(n);
    for i in 0..n {
        let kind = if is_agent[i] {
            SpanKind::Agent
        } else {
            kind_of(nodes[i].run_type())
        };
        let call = call_of_tool[i].and_then(|k| requested.get(k));
        let span = run_span(&nodes[i], kind, agent_of[i].clone(), call, nodes);
        built.push(b.push(span));
    }
    for (i, node) in nodes.iter().enumerate() {
        let Some(p) = node.parent else { continue };
        b.set_parent(built[i], built[p]);
        // An exception that stopped at a parent which then succeeded was caught there (a
        // `ToolNode` turning it into a message for the model, a fallback chain).
        if run_status(&nodes[p]) == Status::Ok
            && let Some(error) = b.span_mut(built[i]).error.as_mut()
        {
            error.handled = true;
        }
    }

    // Handoffs beside transfer tools, and beside model calls whose transfer no tool ran.
    for i in 0..n {
        if nodes[i].run_type() != "tool" || b.span(built[i]).status == Status::Error {
            continue;
        }
        if let Some((to, mode)) = transfer_target(nodes[i].name()) {
            let tool_span = b.span(built[i]);
            let at = tool_span.end_ns.or(tool_span.start_ns);
            let span = handoff_span(
                format!("{}/handoff", nodes[i].id()),
                nodes[i].name(),
                agent_of[i].clone(),
                to,
                mode,
                at,
                nodes[i].source.clone(),
            );
            let h = b.push(span);
            if let Some(p) = nodes[i].parent {
                b.set_parent(h, built[p]);
            }
        }
    }
    for call in requested.iter().filter(|c| !c.taken) {
        let Some((to, mode)) = transfer_target(&call.name) else {
            continue;
        };
        let llm = &nodes[call.llm];
        let llm_span = b.span(built[call.llm]);
        let at = llm_span.end_ns.or(llm_span.start_ns);
        let id = format!(
            "{}/handoff/{}",
            llm.id(),
            call.id.as_deref().unwrap_or(&call.name)
        );
        let span = handoff_span(
            id,
            &call.name,
            agent_of[call.llm].clone(),
            to,
            mode,
            at,
            llm.source.clone(),
        );
        let h = b.push(span);
        if let Some(p) = llm.parent {
            b.set_parent(h, built[p]);
        }
    }
    b
}

/// Indices ordered by start time; runs without one stay after their predecessor.
fn time_order(nodes: &[RunNode]) -> Vec<usize> {
    let mut last = i64::MIN;
    let keys: Vec<i64> = nodes
        .iter()
        .map(|n| {
            if let Some(s) = n.start_ns() {
                last = s;
            }
            last
        })
        .collect();
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&i| (keys[i], i));
    order
}

fn kind_of(run_type: &str) -> SpanKind {
    match run_type {
        "llm" => SpanKind::Llm,
        "tool" => SpanKind::Tool,
        "retriever" => SpanKind::Retrieval,
        "embedding" => SpanKind::Embedding,
        _ => SpanKind::Step,
    }
}

/// `transfer_to_<x>` → (x, Transfer); `transfer_back_to_<x>` → (x, Return).
pub(super) fn transfer_target(tool: &str) -> Option<(String, HandoffMode)> {
    let (rest, mode) = if let Some(rest) = tool.strip_prefix("transfer_back_to_") {
        (rest, HandoffMode::Return)
    } else {
        (tool.strip_prefix("transfer_to_")?, HandoffMode::Transfer)
    };
    (!rest.is_empty()).then(|| (rest.to_owned(), mode))
}

pub(super) fn handoff_span(
    id: String,
    tool: &str,
    from: Option<String>,
    to: String,
    mode: HandoffMode,
    at: Option<i64>,
    source: SourceRef,
) -> Span {
    Span {
        id,
        kind: SpanKind::Handoff,
        name: tool.to_owned(),
        agent: from.clone(),
        start_ns: at,
        end_ns: at,
        status: Status::Ok,
        handoff: Some(Box::new(Handoff { from, to, mode })),
        source,
        ..Span::default()
    }
}

fn run_status(node: &RunNode) -> Status {
    let has_error = node
        .fields
        .get("error")
        .is_some_and(|e| !e.is_null() && e.as_str() != Some(""));
    let ended = node.fields.get("end_time").is_some_and(|t| !t.is_null());
    match node.str("status") {
        _ if has_error => Status::Error,
        Some("error" | "failed" | "failure") => Status::Error,
        Some("success" | "ok" | "completed") => Status::Ok,
        // Older exports carry no status; a run that ended without an error succeeded.
        None if ended => Status::Ok,
        _ => Status::Unset,
    }
}

/// Fields consumed by the mapping; everything else goes to attributes.
const MAPPED_FIELDS: [&str; 25] = [
    "id",
    "name",
    "run_type",
    "start_time",
    "end_time",
    "status",
    "error",
    "inputs",
    "outputs",
    "extra",
    "events",
    "child_runs",
    "child_run_ids",
    "parent_run_id",
    "parent_run_ids",
    "trace_id",
    "dotted_order",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_cost",
    "completion_cost",
    "total_cost",
    "serialized",
    "session_id",
];

fn run_span(
    node: &RunNode,
    kind: SpanKind,
    agent: Option<String>,
    call: Option<&RequestedCall>,
    nodes: &[RunNode],
) -> Span {
    let inputs = node.fields.get("inputs").unwrap_or(&Value::Null);
    let outputs = node.fields.get("outputs").unwrap_or(&Value::Null);
    let status = run_status(node);
    let error = node.fields.get("error").and_then(|e| match e {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(parse_exception(s)),
        other => text_of(other).map(|t| parse_exception(&t)),
    });
    let mut span = Span {
        id: node.id().to_owned(),
        kind,
        name: node.name().to_owned(),
        agent,
        step: node
            .metadata()
            .and_then(|m| m.get("langgraph_step"))
            .and_then(Value::as_u64)
            .map(|s| s as u32),
        start_ns: node.start_ns(),
        end_ns: node.end_ns(),
        status: if error.is_some() {
            Status::Error
        } else {
            status
        },
        error: (error.clone()).map(Box::new),
        input: (payload_of(inputs)).map(Box::new),
        output: (payload_of(outputs)).map(Box::new),
        source: node.source.clone(),
        ..Span::default()
    };
    fill_attributes(&mut span, node);
    fill_events(&mut span, node);
    let usage = run_usage(node);
    let cost = run_cost(node);
    match kind {
        SpanKind::Llm => {
            span.llm = Some(Box::new(llm_call(node, inputs, outputs)));
            span.usage = (usage.or_else(|| message_usage(outputs))).map(Box::new);
            span.cost = cost;
        }
        _ => {
            if usage.is_some() || cost.is_some() {
                span.usage = usage.map(Box::new);
                span.cost = cost;
                span.usage_scope = UsageScope::Subtree;
            }
        }
    }
    if kind == SpanKind::Tool {
        fill_tool(&mut span, node, inputs, outputs, call, nodes);
    }
    span
}

fn fill_attributes(span: &mut Span, node: &RunNode) {
    span.attributes.insert(
        "run_type".to_owned(),
        Value::String(node.run_type().to_owned()),
    );
    if let Some(Value::Object(extra)) = node.fields.get("extra") {
        for (k, v) in extra {
            match k.as_str() {
                "metadata" => flatten_into("metadata", v, &mut span.attributes),
                // Runtime is the same on every run (trace format_version); invocation params
                // go to `llm.params`.
                "runtime" | "invocation_params" => {}
                _ => flatten_into(&format!("extra.{k}"), v, &mut span.attributes),
            }
        }
    }
    for (k, v) in &node.fields {
        if !v.is_null() && !MAPPED_FIELDS.contains(&k.as_str()) && v != &Value::Array(Vec::new()) {
            flatten_into(k, v, &mut span.attributes);
        }
    }
}

fn fill_events(span: &mut Span, node: &RunNode) {
    let Some(Value::Array(events)) = node.fields.get("events") else {
        return;
    };
    let mut tokens = 0u64;
    for e in events {
        let name = get_str(e, &["name"]).unwrap_or("event");
        // Streaming runs log one event per token; keep the count, not the events.
        if name == "new_token" {
            tokens += 1;
            continue;
        }
        span.events.push(SpanEvent {
            name: name.to_owned(),
            time_ns: e.get("time").and_then(time_value),
            ..SpanEvent::default()
        });
    }
    if tokens > 0 {
        span.attributes
            .insert("events.new_token".to_owned(), Value::from(tokens));
    }
}

fn fill_tool(
    span: &mut Span,
    node: &RunNode,
    inputs: &Value,
    outputs: &Value,
    call: Option<&RequestedCall>,
    nodes: &[RunNode],
) {
    let call_id = tool_call_id(node).or_else(|| call.and_then(|c| c.id.clone()));
    let own_args = match inputs {
        Value::Object(o) if o.len() == 1 && o.contains_key("input") => match o.get("input") {
            Some(Value::String(s)) => maybe_json(s),
            Some(other) => other.clone(),
            None => Value::Null,
        },
        other => other.clone(),
    };
    // Tools log their input as a Python repr string; the model's call has the real JSON.
    let arguments = match (call, &own_args) {
        (Some(c), Value::String(_) | Value::Null) if !c.args.is_null() => c.args.clone(),
        _ => own_args,
    };
    let message = outputs.get("output").and_then(lc_view);
    let result = match (&message, outputs) {
        (Some(m), _) => m.fields.get("content").cloned(),
        (None, Value::Object(o)) => o.get("output").cloned().or_else(|| Some(outputs.clone())),
        (None, Value::Null) => None,
        (None, other) => Some(other.clone()),
    };
    let message_error = message
        .as_ref()
        .is_some_and(|m| m.fields.get("status").and_then(Value::as_str) == Some("error"));
    let result_text = result.as_ref().and_then(text_of).unwrap_or_default();
    if span.status != Status::Error && (message_error || looks_like_error(&result_text)) {
        span.status = Status::Error;
        span.error = Some(Box::new(ErrorInfo {
            message: crate::util::truncate(
                result_text.lines().next().unwrap_or_default().trim(),
                500,
            ),
            handled: true,
            ..ErrorInfo::default()
        }));
    }
    if let Some(c) = call {
        span.links.push(crate::model::Link {
            kind: crate::model::LinkKind::CallResult,
            target: nodes[c.llm].id().to_owned(),
        });
    }
    span.tool = Some(Box::new(ToolCall {
        name: node.name().to_owned(),
        call_id,
        arguments,
        result,
        is_error: span.status == Status::Error,
    }));
}

/// The `tool_call_id` a tool run answered: from its `ToolMessage` output or its inputs.
fn tool_call_id(node: &RunNode) -> Option<String> {
    let outputs = node.fields.get("outputs")?;
    outputs
        .get("output")
        .and_then(lc_view)
        .and_then(|m| {
            m.fields
                .get("tool_call_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| get_str(outputs, &["tool_call_id"]).map(str::to_owned))
        .or_else(|| {
            node.fields
                .get("inputs")
                .and_then(|i| get_str(i, &["tool_call_id"]))
                .map(str::to_owned)
        })
}

/// The tool calls a model run asked for: (id, name, args).
fn output_tool_calls(node: &RunNode) -> Vec<(Option<String>, String, Value)> {
    let Some(outputs) = node.fields.get("outputs") else {
        return Vec::new();
    };
    output_messages(outputs)
        .iter()
        .flat_map(|m| m.parts.iter())
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some((id.clone(), name.clone(), arguments.clone())),
            _ => None,
        })
        .collect()
}

fn llm_call(node: &RunNode, inputs: &Value, outputs: &Value) -> LlmCall {
    let invocation = node
        .fields
        .get("extra")
        .and_then(|e| e.get("invocation_params"));
    let generation = get(outputs, &["generations"])
        .and_then(Value::as_array)
        .and_then(|g| g.first())
        .and_then(|g| g.as_array().and_then(|inner| inner.first()).or(Some(g)));
    let message = generation
        .and_then(|g| g.get("message"))
        .or(Some(outputs))
        .and_then(lc_view);
    let response_meta = message
        .as_ref()
        .and_then(|m| m.fields.get("response_metadata"));
    let mut params = std::collections::BTreeMap::new();
    if let Some(t) = node
        .metadata()
        .and_then(|m| m.get("ls_temperature"))
        .filter(|v| !v.is_null())
    {
        params.insert("temperature".to_owned(), t.clone());
    }
    if let Some(Value::Object(inv)) = invocation {
        for (k, v) in inv {
            let lower = k.to_ascii_lowercase();
            if v.is_null()
                || lower.contains("key")
                || lower.contains("secret")
                || (lower.contains("token") && lower.contains("api"))
            {
                continue;
            }
            if !matches!(k.as_str(), "model" | "model_name" | "_type") {
                params.insert(k.clone(), v.clone());
            }
        }
    }
    LlmCall {
        provider: node.meta_str("ls_provider").map(str::to_owned),
        request_model: node
            .meta_str("ls_model_name")
            .or_else(|| {
                invocation
                    .and_then(|i| get_str(i, &["model"]).or_else(|| get_str(i, &["model_name"])))
            })
            .map(str::to_owned),
        response_model: response_meta
            .and_then(|r| get_str(r, &["model_name"]).or_else(|| get_str(r, &["model"])))
            .or_else(|| get_str(outputs, &["llm_output", "model_name"]))
            .map(str::to_owned),
        input_messages: input_messages(inputs),
        output_messages: output_messages(outputs),
        finish_reason: response_meta
            .and_then(|r| get_str(r, &["finish_reason"]).or_else(|| get_str(r, &["stop_reason"])))
            .or_else(|| generation.and_then(|g| get_str(g, &["generation_info", "finish_reason"])))
            .map(str::to_owned),
        params,
    }
}

/// Token usage reported on the run itself (LangSmith computes it for llm runs and sums it on
/// their ancestors).
fn run_usage(node: &RunNode) -> Option<Usage> {
    let f = &node.fields;
    let usage = Usage {
        input: f.get("prompt_tokens").and_then(as_u64),
        output: f.get("completion_tokens").and_then(as_u64),
        cache_read: f
            .get("prompt_token_details")
            .and_then(|d| d.get("cache_read"))
            .and_then(as_u64),
        cache_write: f
            .get("prompt_token_details")
            .and_then(|d| d.get("cache_creation"))
            .and_then(as_u64),
        reasoning: f
            .get("completion_token_details")
            .and_then(|d| d.get("reasoning"))
            .and_then(as_u64),
        total: f.get("total_tokens").and_then(as_u64),
        estimated: false,
    };
    (!usage.is_empty() && usage.total_tokens() != Some(0)).then_some(usage)
}

/// Usage from the model's output message (`usage_metadata`) or `llm_output.token_usage`.
fn message_usage(outputs: &Value) -> Option<Usage> {
    let generation_message = get(outputs, &["generations"])
        .and_then(Value::as_array)
        .and_then(|g| g.first())
        .and_then(|g| g.as_array().and_then(|inner| inner.first()))
        .and_then(|g| g.get("message"))
        .or(Some(outputs))
        .and_then(lc_view);
    generation_message
        .and_then(|m| m.fields.get("usage_metadata").map(usage_metadata))
        .or_else(|| get(outputs, &["llm_output", "token_usage"]).map(openai_usage))
        .filter(|u| !u.is_empty())
}

/// LangChain `usage_metadata`: `input_tokens` already includes cached tokens.
pub(super) fn usage_metadata(u: &Value) -> Usage {
    Usage {
        input: u.get("input_tokens").and_then(as_u64),
        output: u.get("output_tokens").and_then(as_u64),
        cache_read: get(u, &["input_token_details", "cache_read"]).and_then(as_u64),
        cache_write: get(u, &["input_token_details", "cache_creation"]).and_then(as_u64),
        reasoning: get(u, &["output_token_details", "reasoning"]).and_then(as_u64),
        total: u.get("total_tokens").and_then(as_u64),
        estimated: false,
    }
}

fn run_cost(node: &RunNode) -> Option<Cost> {
    let f = &node.fields;
    let amount = f.get("total_cost").and_then(as_f64).or_else(|| {
        match (
            f.get("prompt_cost").and_then(as_f64),
            f.get("completion_cost").and_then(as_f64),
        ) {
            (None, None) => None,
            (p, c) => Some(p.unwrap_or(0.0) + c.unwrap_or(0.0)),
        }
    })?;
    (amount.is_finite() && amount >= 0.0).then(|| Cost {
        amount,
        currency: "USD".to_owned(),
        source: CostSource::Reported,
    })
}

/// Splits a Python error string: `repr(exc)` on the first line, then the traceback.
pub(super) fn parse_exception(text: &str) -> ErrorInfo {
    let trimmed = text.trim();
    let mut lines = trimmed.lines();
    let first = lines.next().unwrap_or_default().trim();
    let (message, stack) = if first.starts_with("Traceback (most recent call last)") {
        // A bare traceback ends with `ErrorClass: message`.
        let last = trimmed
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(first)
            .trim();
        (last, Some(trimmed))
    } else {
        let rest = trimmed.get(first.len()..).unwrap_or_default().trim();
        (first, (!rest.is_empty()).then_some(rest))
    };
    ErrorInfo {
        kind: exception_class(message),
        message: crate::util::truncate(message, 1000),
        stack: stack.map(str::to_owned),
        handled: false,
    }
}

/// `ReadTimeout('...')` or `httpx.ReadTimeout: ...` → the class name.
pub(super) fn exception_class(message: &str) -> Option<String> {
    let end = message.find(['(', ':'])?;
    let head = message.get(..end)?.trim();
    let ok = !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && head
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    ok.then(|| head.rsplit('.').next().unwrap_or(head).to_owned())
}

// ---- LangChain messages -------------------------------------------------------------------

/// A LangChain message in any of its JSON shapes, seen through one lens: `fields` are the
/// constructor kwargs of `{"lc":1,"type":"constructor",...}` or the plain dict itself.
#[derive(Debug, Clone)]
pub(super) struct LcView<'a> {
    pub(super) role: Role,
    pub(super) fields: &'a Map<String, Value>,
}

/// Reads a LangChain-serialized message or a plain `{type|role, content}` dict.
pub(super) fn lc_view(v: &Value) -> Option<LcView<'_>> {
    let o = v.as_object()?;
    if let Some(kwargs) = o
        .get("kwargs")
        .and_then(Value::as_object)
        .filter(|_| o.contains_key("lc"))
    {
        let class = o
            .get("id")
            .and_then(Value::as_array)
            .and_then(|id| id.last())
            .and_then(Value::as_str)
            .unwrap_or_default();
        let type_name = kwargs.get("type").and_then(Value::as_str).unwrap_or(class);
        return Some(LcView {
            role: lc_role(type_name, kwargs),
            fields: kwargs,
        });
    }
    let type_name = o
        .get("type")
        .or_else(|| o.get("role"))
        .and_then(Value::as_str)?;
    if !(o.contains_key("content") || o.contains_key("tool_calls")) {
        return None;
    }
    Some(LcView {
        role: lc_role(type_name, o),
        fields: o,
    })
}

fn lc_role(type_name: &str, fields: &Map<String, Value>) -> Role {
    let base = type_name
        .trim_end_matches("Chunk")
        .trim_end_matches("Message");
    match base.to_ascii_lowercase().as_str() {
        "human" | "user" => Role::User,
        "ai" | "assistant" => Role::Assistant,
        "tool" | "function" => Role::Tool,
        "system" | "developer" => Role::System,
        "chat" | "generic" => fields
            .get("role")
            .and_then(Value::as_str)
            .map_or(Role::Other, Role::parse),
        other => Role::parse(other),
    }
}

impl LcView<'_> {
    pub(super) fn str(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The text content (string content, or the text blocks of a content list).
    pub(super) fn text(&self) -> String {
        match self.fields.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(blocks)) => blocks
                .iter()
                .filter_map(|b| match b {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(o)
                        if o.get("type")
                            .and_then(Value::as_str)
                            .is_none_or(|t| t == "text") =>
                    {
                        o.get("text").and_then(Value::as_str)
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }

    /// `tool_calls` as (id, name, args); falls back to OpenAI `additional_kwargs.tool_calls`.
    pub(super) fn tool_calls(&self) -> Vec<(Option<String>, String, Value)> {
        let mut out: Vec<(Option<String>, String, Value)> = Vec::new();
        if let Some(Value::Array(calls)) = self.fields.get("tool_calls") {
            for c in calls {
                let Some(name) = get_str(c, &["name"]) else {
                    continue;
                };
                out.push((
                    get_str(c, &["id"]).map(str::to_owned),
                    name.to_owned(),
                    c.get("args").cloned().unwrap_or(Value::Null),
                ));
            }
        }
        if out.is_empty()
            && let Some(Value::Array(calls)) = self
                .fields
                .get("additional_kwargs")
                .and_then(|a| a.get("tool_calls"))
        {
            for c in calls {
                let Some(name) = get_str(c, &["function", "name"]) else {
                    continue;
                };
                let args = match get(c, &["function", "arguments"]) {
                    Some(Value::String(s)) => maybe_json(s),
                    Some(other) => other.clone(),
                    None => Value::Null,
                };
                out.push((
                    get_str(c, &["id"]).map(str::to_owned),
                    name.to_owned(),
                    args,
                ));
            }
        }
        out
    }

    pub(super) fn to_message(&self) -> Message {
        let mut parts = Vec::new();
        if self.role == Role::Tool {
            parts.push(Part::ToolResult {
                id: self.str("tool_call_id").map(str::to_owned),
                content: self.fields.get("content").cloned().unwrap_or(Value::Null),
                is_error: self.str("status") == Some("error"),
            });
        } else {
            if let Some(Value::Array(blocks)) = self.fields.get("content") {
                for block in blocks {
                    if let Some(part) = content_block(block) {
                        parts.push(part);
                    }
                }
            } else {
                let text = self.text();
                if !text.is_empty() {
                    parts.push(Part::Text { text });
                }
            }
            for (id, name, arguments) in self.tool_calls() {
                let known = parts.iter().any(|p| matches!(p, Part::ToolCall { id: existing, .. } if existing.is_some() && *existing == id));
                if !known {
                    parts.push(Part::ToolCall {
                        id,
                        name,
                        arguments,
                    });
                }
            }
        }
        Message {
            role: self.role,
            name: self.str("name").map(str::to_owned),
            parts,
        }
    }
}

fn content_block(block: &Value) -> Option<Part> {
    match block {
        Value::String(s) => Some(Part::Text { text: s.clone() }),
        Value::Object(o) => match o.get("type").and_then(Value::as_str).unwrap_or("text") {
            "text" => o
                .get("text")
                .and_then(Value::as_str)
                .map(|t| Part::Text { text: t.to_owned() }),
            "thinking" | "reasoning" => o
                .get("thinking")
                .or_else(|| o.get("reasoning"))
                .or_else(|| o.get("text"))
                .and_then(Value::as_str)
                .map(|t| Part::Reasoning { text: t.to_owned() }),
            "tool_use" => Some(Part::ToolCall {
                id: o.get("id").and_then(Value::as_str).map(str::to_owned),
                name: o
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("tool")
                    .to_owned(),
                arguments: o.get("input").cloned().unwrap_or(Value::Null),
            }),
            "image_url" | "image" | "file" | "audio" => Some(Part::Media {
                mime: o
                    .get("mime_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                uri: o
                    .get("image_url")
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Value::as_str)
                    .or_else(|| o.get("url").and_then(Value::as_str))
                    .map(|u| crate::util::truncate(u, 200)),
            }),
            _ => None,
        },
        _ => None,
    }
}

/// A message from any shape LangChain accepts: serialized, dict, `[role, text]` or a string.
pub(super) fn any_message(v: &Value) -> Option<Message> {
    if let Some(view) = lc_view(v) {
        return Some(view.to_message());
    }
    match v {
        Value::String(s) => Some(Message::text(Role::User, s.clone())),
        Value::Array(pair) if pair.len() == 2 => {
            let role = pair.first().and_then(Value::as_str)?;
            let text = pair.get(1).and_then(text_of)?;
            Some(Message::text(lc_role(role, &Map::new()), text))
        }
        _ => None,
    }
}

/// Messages of a list, or of a list of lists (chat model batches), in order.
pub(super) fn message_list(v: &Value) -> Vec<Message> {
    let Some(items) = v.as_array() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::Array(inner) if inner.first().is_some_and(|f| f.is_object() || f.is_array()) => {
                out.extend(inner.iter().filter_map(any_message));
            }
            other => out.extend(any_message(other)),
        }
    }
    out
}

fn input_messages(inputs: &Value) -> Vec<Message> {
    if let Some(msgs) = inputs.get("messages") {
        return message_list(msgs);
    }
    if let Some(Value::Array(prompts)) = inputs.get("prompts") {
        return prompts
            .iter()
            .filter_map(text_of)
            .map(|p| Message::text(Role::User, p))
            .collect();
    }
    inputs
        .get("input")
        .and_then(text_of)
        .map(|t| vec![Message::text(Role::User, t)])
        .unwrap_or_default()
}

/// The messages a model run produced: `generations[0][*]`, or a bare message output.
fn output_messages(outputs: &Value) -> Vec<Message> {
    if let Some(Value::Array(generations)) = outputs.get("generations") {
        let first = generations.first();
        let candidates: Vec<&Value> = match first {
            Some(Value::Array(inner)) => inner.iter().collect(),
            Some(other) => vec![other],
            None => Vec::new(),
        };
        return candidates
            .into_iter()
            .filter_map(|g| {
                g.get("message").and_then(any_message).or_else(|| {
                    g.get("text")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(|t| Message::text(Role::Assistant, t))
                })
            })
            .collect();
    }
    lc_view(outputs)
        .or_else(|| outputs.get("output").and_then(lc_view))
        .map(|m| vec![m.to_message()])
        .unwrap_or_default()
}

/// The first user text of run inputs (`messages`, `input`, `question`, `query`).
fn first_user_text(inputs: &Value) -> Option<String> {
    if let Some(msgs) = inputs.get("messages")
        && let Some(m) = message_list(msgs)
            .into_iter()
            .find(|m| m.role == Role::User)
    {
        let text = m.joined_text();
        if !text.is_empty() {
            return Some(text);
        }
    }
    ["input", "question", "query", "task"]
        .iter()
        .find_map(|k| inputs.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

/// A readable payload for run inputs and outputs: the last message's text, a lone text
/// field, else compact JSON. The JSON is kept beside the text.
pub(super) fn payload_of(v: &Value) -> Option<Payload> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Payload::text(s.clone())),
        Value::Object(o) if o.is_empty() => None,
        Value::Object(o) => {
            let text = summary_text(o).unwrap_or_else(|| v.to_string());
            Some(Payload {
                text,
                json: Some(v.clone()),
                mime: None,
            })
        }
        other => Some(Payload::from_json(other.clone())),
    }
}

fn summary_text(o: &Map<String, Value>) -> Option<String> {
    if let Some(msgs) = o.get("messages")
        && let Some(last) = message_list(msgs).last()
    {
        let text = last.joined_text();
        if !text.is_empty() {
            return Some(text);
        }
    }
    for key in [
        "output", "input", "question", "query", "answer", "text", "content", "result",
    ] {
        match o.get(key) {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(v @ Value::Object(_)) => {
                if let Some(m) = lc_view(v) {
                    return Some(m.text());
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_order_gives_the_parent() {
        let d = "20260101T090000000000Zaaa.20260101T090001000000Zbbb.20260101T090002000000Zccc";
        assert_eq!(dotted_parent(d), Some("bbb"));
        assert_eq!(dotted_parent("20260101T090000000000Zaaa"), None);
        assert_eq!(dotted_parent(""), None);
        assert_eq!(dotted_segment_id("20260101T090000000000Z"), None);
    }

    #[test]
    fn python_errors_split_into_kind_message_and_stack() {
        let e = parse_exception(
            "ReadTimeout('timed out')\n\nTraceback (most recent call last):\n  File \"x.py\"",
        );
        assert_eq!(e.kind.as_deref(), Some("ReadTimeout"));
        assert_eq!(e.message, "ReadTimeout('timed out')");
        assert!(e.stack.unwrap().starts_with("Traceback"));
        let e = parse_exception(
            "Traceback (most recent call last):\n  File \"x\"\nhttpx.ConnectError: refused",
        );
        assert_eq!(e.kind.as_deref(), Some("ConnectError"));
        assert_eq!(e.message, "httpx.ConnectError: refused");
        let e = parse_exception("something odd happened");
        assert_eq!(e.kind, None);
        assert_eq!(e.stack, None);
    }

    #[test]
    fn langchain_messages_in_every_shape() {
        let serialized = serde_json::json!({"lc": 1, "type": "constructor",
            "id": ["langchain", "schema", "messages", "AIMessageChunk"],
            "kwargs": {"content": [{"type": "text", "text": "hi"}, {"type": "thinking", "thinking": "hmm"}],
                       "tool_calls": [{"id": "c1", "name": "f", "args": {"x": 1}}]}});
        let m = any_message(&serialized).unwrap();
        assert_eq!(m.role, Role::Assistant);
        assert_eq!(m.parts.len(), 3);
        let tool = serde_json::json!({"type": "tool", "content": "boom", "tool_call_id": "c1", "status": "error"});
        let m = any_message(&tool).unwrap();
        assert!(matches!(
            &m.parts[0],
            Part::ToolResult { is_error: true, .. }
        ));
        let pair = serde_json::json!(["human", "hello"]);
        assert_eq!(any_message(&pair).unwrap().role, Role::User);
        let batch = serde_json::json!([[{"type": "system", "content": "s"}, {"role": "user", "content": "u"}]]);
        assert_eq!(message_list(&batch).len(), 2);
        let openai = serde_json::json!({"type": "ai", "content": "",
            "additional_kwargs": {"tool_calls": [{"id": "c2", "function": {"name": "g", "arguments": "{\"q\": 2}"}}]}});
        let calls = lc_view(&openai).unwrap().tool_calls();
        assert_eq!(calls[0].2, serde_json::json!({"q": 2}));
    }

    #[test]
    fn text_input_is_refused_with_a_reason() {
        let input = Input {
            file: "x.log".into(),
            doc: Doc::Text("hello".into()),
            companions: Vec::new(),
            record: None,
        };
        let err = parse(&input).unwrap_err();
        assert!(err.message.contains("JSON"));
        let input = Input {
            file: "x.json".into(),
            doc: Doc::Json(serde_json::json!({"runs": [1, 2]})),
            companions: Vec::new(),
            record: None,
        };
        assert!(parse(&input).unwrap_err().message.contains("run_type"));
    }
}

#[cfg(test)]
mod fixture_tests {
    use crate::model::{CostSource, Format, HandoffMode, LinkKind, SpanKind, Status, UsageScope};
    use crate::testing::{fixture, inline};

    #[test]
    fn nested_run_tree() {
        let (summary, traces) = fixture("langsmith/trip-planner-tree.json");
        assert_eq!(summary.format, Format::LangSmith);
        assert_eq!(traces.len(), 1);
        let t = &traces[0].trace;
        assert_eq!(t.id, "0195a3c1-7d2e-7f10-9b4a-5c6d7e8f9001");
        assert_eq!(t.format_version.as_deref(), Some("langsmith-py/0.4.31"));
        assert_eq!(t.session_id.as_deref(), Some("trip-7781"));
        assert_eq!(t.status, Status::Ok);
        assert!(
            t.task
                .as_deref()
                .unwrap()
                .starts_with("Plan a day in Kyoto")
        );
        assert!(
            t.final_output
                .as_deref()
                .unwrap()
                .starts_with("Saturday plan")
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);

        let agents: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(agents, ["supervisor", "weather_agent"]);
        assert_eq!(
            t.spans_of(SpanKind::Agent).count(),
            3,
            "supervisor twice, weather_agent once"
        );
        let root = t.spans.iter().find(|s| s.name == "LangGraph").unwrap();
        assert_eq!(root.kind, SpanKind::Step);
        assert_eq!(root.usage_scope, UsageScope::Subtree);

        // The failed tool: error parsed, handled because its agent node went on.
        let tool = t.spans.iter().find(|s| s.name == "get_forecast").unwrap();
        assert_eq!(tool.kind, SpanKind::Tool);
        assert_eq!(tool.status, Status::Error);
        assert_eq!(tool.agent.as_deref(), Some("weather_agent"));
        let err = tool.error.as_ref().unwrap();
        assert_eq!(err.kind.as_deref(), Some("HTTPStatusError"));
        assert!(err.handled);
        assert!(err.stack.as_deref().unwrap().contains("raise_for_status"));
        let call = tool.tool.as_ref().unwrap();
        assert_eq!(call.call_id.as_deref(), Some("call_fc1"));
        assert_eq!(call.arguments["city"], "Kyoto");
        assert!(call.is_error);
        assert!(tool.links.iter().any(|l| l.kind == LinkKind::CallResult));
        assert_eq!(tool.step, Some(2));

        // Usage: llm runs only, cache reads kept as a subset of input.
        assert_eq!(t.usage.input, Some(1567));
        assert_eq!(t.usage.output, Some(118));
        assert_eq!(t.usage.cache_read, Some(256));
        let cost = t.cost.as_ref().unwrap();
        assert_eq!(cost.source, CostSource::Reported);
        assert!((cost.amount - 0.000_294_45).abs() < 1e-9);

        let llm = t.spans.iter().find(|s| s.id.ends_with("9003")).unwrap();
        let call = llm.llm.as_ref().unwrap();
        assert_eq!(call.provider.as_deref(), Some("openai"));
        assert_eq!(call.request_model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(
            call.response_model.as_deref(),
            Some("gpt-4o-mini-2024-07-18")
        );
        assert_eq!(call.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(call.input_messages.len(), 2);
        assert_eq!(
            call.params.get("temperature"),
            Some(&serde_json::json!(0.2))
        );
        assert!(!call.params.contains_key("openai_api_key"));
        assert_eq!(
            llm.attributes.get("events.new_token"),
            Some(&serde_json::json!(2))
        );
        assert_eq!(llm.agent.as_deref(), Some("supervisor"));

        let handoffs: Vec<_> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!(
            (h.from.as_deref(), h.to.as_str()),
            (Some("supervisor"), "weather_agent")
        );
        assert_eq!(h.mode, HandoffMode::Transfer);
    }

    #[test]
    fn flat_jsonl_in_reverse_order() {
        let (summary, traces) = fixture("langsmith/support-swarm-runs.jsonl");
        assert_eq!(summary.format, Format::LangSmith);
        assert_eq!(traces.len(), 1);
        let t = &traces[0].trace;
        assert_eq!(t.spans.len(), 15, "14 runs and one handoff");
        assert!(t.spans.windows(2).all(|w| w[0].start_ns <= w[1].start_ns));
        let agents: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(agents, ["triage", "billing"]);
        // Run 9 has no parent_run_id; its dotted_order names the billing node.
        let orphan = t.spans.iter().find(|s| s.id.ends_with("00000009")).unwrap();
        let parent = &t.spans[orphan.parent.unwrap() as usize];
        assert_eq!(parent.name, "billing");
        let failed: Vec<_> = t
            .spans
            .iter()
            .filter(|s| s.status == Status::Error)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].tool.as_ref().unwrap().name, "lookup_invoice");
        assert_eq!(
            failed[0].error.as_ref().unwrap().kind.as_deref(),
            Some("KeyError")
        );
        assert!(failed[0].error.as_ref().unwrap().handled);
        assert_eq!(
            failed[0].tool.as_ref().unwrap().call_id.as_deref(),
            Some("toolu_02")
        );
        assert_eq!(t.usage.input, Some(4679));
        assert_eq!(t.usage.output, Some(177));
        assert_eq!(t.usage.cache_write, Some(512));
        // One model reported its cost, the others are priced from the table.
        assert_eq!(t.cost.as_ref().unwrap().source, CostSource::Estimated);
        assert_eq!(t.spans_of(SpanKind::Retrieval).count(), 1);
        let h = t.spans_of(SpanKind::Handoff).next().unwrap();
        assert_eq!(h.handoff.as_ref().unwrap().to, "billing");
        assert_eq!(h.agent.as_deref(), Some("triage"));
        let first_llm = t.spans.iter().find(|s| s.id.ends_with("00000003")).unwrap();
        let parts = &first_llm.llm.as_ref().unwrap().output_messages[0].parts;
        assert_eq!(
            parts.len(),
            2,
            "text block + tool_use (deduplicated against tool_calls)"
        );
    }

    #[test]
    fn ingest_batches_merge_patches_by_id() {
        let text = r#"{"post": [
            {"id": "r1", "trace_id": "r1", "name": "Agent", "run_type": "chain", "start_time": "2026-01-01T00:00:00", "status": "pending", "inputs": {"input": "hi"}, "end_time": null},
            {"id": "r2", "trace_id": "r1", "parent_run_id": "r1", "name": "llm", "run_type": "llm", "start_time": "2026-01-01T00:00:01", "inputs": {"prompts": ["Human: hi"]}}
          ],
          "patch": [
            {"id": "r1", "trace_id": "r1", "end_time": "2026-01-01T00:00:05", "status": "success", "outputs": {"output": "hello"}},
            {"id": "r2", "trace_id": "r1", "end_time": "2026-01-01T00:00:04", "outputs": {"generations": [[{"text": "hello"}]], "llm_output": {"token_usage": {"prompt_tokens": 5, "completion_tokens": 2}}}}
          ]}"#;
        let (summary, traces) = inline("batch.json", text);
        assert_eq!(summary.format, Format::LangSmith);
        let t = &traces[0].trace;
        assert_eq!(t.spans.len(), 2);
        let root = &t.spans[0];
        assert_eq!(root.status, Status::Ok);
        assert_eq!(root.output.as_ref().unwrap().text, "hello");
        assert_eq!(
            root.kind,
            SpanKind::Agent,
            "a plain LangChain root with a model call"
        );
        assert_eq!(t.usage.input, Some(5));
        assert_eq!(t.task.as_deref(), Some("hi"));
        assert!(t.spans[1].end_ns.is_some());
    }

    #[test]
    fn jsonl_batches_merge_across_lines() {
        let text = r#"{"post": [{"id": "r1", "trace_id": "r1", "name": "Agent", "run_type": "chain", "start_time": "2026-01-01T00:00:00", "status": "pending"}]}
{"patch": [{"id": "r1", "trace_id": "r1", "end_time": "2026-01-01T00:00:03", "error": "TimeoutError()"}]}
"#;
        let (summary, traces) = inline("batches.jsonl", text);
        assert_eq!(summary.format, Format::LangSmith);
        assert_eq!(traces.len(), 1);
        let root = &traces[0].trace.spans[0];
        assert_eq!(root.status, Status::Error);
        assert_eq!(
            root.error.as_ref().unwrap().kind.as_deref(),
            Some("TimeoutError")
        );
        assert_eq!(root.source.line, Some(1));
    }

    #[test]
    fn one_trace_per_trace_id() {
        let text = r#"[
            {"id": "a1", "trace_id": "a1", "name": "x", "run_type": "chain"},
            {"id": "b1", "trace_id": "b1", "name": "y", "run_type": "chain"},
            {"id": "a2", "trace_id": "a1", "parent_run_id": "a1", "name": "t", "run_type": "tool", "error": "ValueError: bad"}
        ]"#;
        let (_, traces) = inline("two.json", text);
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0].trace.id, "a1");
        assert_eq!(traces[0].trace.spans.len(), 2);
        assert_eq!(traces[0].trace.status, Status::Unset);
        let failed = &traces[0].trace.spans[1];
        assert_eq!(failed.status, Status::Error);
        assert!(
            !failed.error.as_ref().unwrap().handled,
            "its parent did not succeed"
        );
        assert_eq!(traces[1].trace.id, "b1");
    }

    #[test]
    fn a_transfer_call_no_tool_ran_still_hands_off() {
        let text = r#"{"id": "r", "run_type": "chain", "name": "LangGraph", "trace_id": "r", "child_runs": [
            {"id": "s", "run_type": "chain", "name": "supervisor", "extra": {"metadata": {"langgraph_node": "supervisor"}}, "child_runs": [
                {"id": "l", "run_type": "llm", "name": "ChatOpenAI", "extra": {"metadata": {"langgraph_node": "supervisor"}},
                 "outputs": {"generations": [[{"message": {"type": "ai", "content": "", "tool_calls": [{"id": "c", "name": "transfer_to_researcher", "args": {}}]}}]]}}
            ]}]}"#;
        let (_, traces) = inline("tree.json", text);
        let t = &traces[0].trace;
        let h = t
            .spans_of(SpanKind::Handoff)
            .next()
            .expect("a synthesized handoff");
        assert_eq!(h.handoff.as_ref().unwrap().to, "researcher");
        assert_eq!(h.agent.as_deref(), Some("supervisor"));
        assert_eq!(t.spans[h.parent.unwrap() as usize].name, "supervisor");
    }

    #[test]
    fn hostile_values_do_not_panic() {
        let text = r#"[
            {"id": "x", "trace_id": 7, "run_type": "llm", "name": 3, "inputs": 5, "outputs": "plain",
             "start_time": 12, "end_time": "not a time", "prompt_tokens": "abc", "total_cost": "NaN",
             "child_runs": "none", "extra": [], "events": {"a": 1}, "error": {"message": "bad"}, "status": 4,
             "dotted_order": "Z", "parent_run_id": 9},
            {"id": "y", "trace_id": "t", "run_type": "tool", "parent_run_id": "z", "outputs": {"output": {"lc": 1, "kwargs": 3}}},
            {"id": "z", "trace_id": "t", "run_type": "chain", "parent_run_id": "y"},
            {"id": "w", "trace_id": "t", "run_type": "chain", "parent_run_id": "missing", "inputs": {"messages": [[1, 2], null, "text"]}}
        ]"#;
        let (_, traces) = inline("bad.json", text);
        assert!(!traces.is_empty());
        let all: Vec<&str> = traces
            .iter()
            .flat_map(|t| t.trace.warnings.iter().map(String::as_str))
            .collect();
        assert!(all.iter().any(|w| w.contains("cycle")), "{all:?}");
        assert!(
            all.iter().any(|w| w.contains("not in the input")),
            "{all:?}"
        );
        let x = traces
            .iter()
            .flat_map(|t| &t.trace.spans)
            .find(|s| s.id == "x")
            .unwrap();
        assert_eq!(x.status, Status::Error);
        assert_eq!(x.error.as_ref().unwrap().message, r#"{"message":"bad"}"#);
        assert!(x.usage.is_none());
    }
}

/// Wrong-type mutations of every fixture of this module and its sibling adapters (LangGraph,
/// n8n, Dify): no input may make an adapter panic.
#[cfg(test)]
mod hostile_mutations {
    use serde_json::Value;

    use crate::adapters::{Doc, Input, JsonLine, parse};
    use crate::model::Format;
    use crate::testing::fixtures_dir;

    /// Paths (as key/index lists) of all values, in document order.
    fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    prefix.push(k.clone());
                    paths(child, prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    prefix.push(i.to_string());
                    paths(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }

    fn replace(v: &mut Value, path: &[String], with: &Value) {
        let mut cur = v;
        for key in path {
            let next = match cur {
                Value::Object(o) => o.get_mut(key),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
                _ => None,
            };
            match next {
                Some(n) => cur = n,
                None => return,
            }
        }
        *cur = with.clone();
    }

    fn check(format: Format, rel: &str) {
        let text = std::fs::read_to_string(fixtures_dir().join(rel)).unwrap();
        let lines = std::path::Path::new(rel)
            .extension()
            .is_some_and(|e| e == "jsonl");
        let doc: Value = if lines {
            Value::Array(
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect(),
            )
        } else {
            serde_json::from_str(&text).unwrap()
        };
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        let stride = (all.len() / 150).max(1);
        let replacements = [
            Value::Null,
            Value::from(-7),
            Value::from("x"),
            Value::Array(Vec::new()),
        ];
        for (n, path) in all.iter().enumerate().filter(|(n, _)| n % stride == 0) {
            let with = &replacements[n % replacements.len()];
            let mut mutated = doc.clone();
            replace(&mut mutated, path, with);
            let doc = match (lines, mutated) {
                (true, Value::Array(items)) => Doc::Lines(
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, value)| JsonLine {
                            line: i as u32 + 1,
                            value,
                        })
                        .collect(),
                ),
                (_, other) => Doc::Json(other),
            };
            let input = Input {
                file: rel.to_owned(),
                doc,
                companions: Vec::new(),
                record: None,
            };
            // Either result is fine; a panic fails the test.
            let _ = parse(format, input);
        }
    }

    #[test]
    fn wrong_types_anywhere_do_not_panic() {
        for (format, rel) in [
            (Format::LangSmith, "langsmith/trip-planner-tree.json"),
            (Format::LangSmith, "langsmith/support-swarm-runs.jsonl"),
            (Format::LangGraph, "langgraph/ci-fix-debug-subgraphs.jsonl"),
            (
                Format::LangGraph,
                "langgraph/fx-supervisor-astream-events.jsonl",
            ),
            (Format::N8n, "n8n/support-orchestrator-execution.json"),
            (Format::N8n, "n8n/feed-digest-flatted.json"),
            (Format::DifyNodes, "dify-nodes/visa-chatflow-nodes.json"),
            (
                Format::DifyMessages,
                "dify-messages/store-assistant-messages.json",
            ),
        ] {
            check(format, rel);
        }
    }
}
