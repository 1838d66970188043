//! ATIF, the Agent Trajectory Interchange Format (`formats.md` §9), versions `ATIF-v1.0` to
//! `ATIF-v1.8`. Any later `ATIF-v1.x` is read the same way with a warning.
//!
//! Mapping decisions:
//! - Each trajectory (the root and every embedded sub-trajectory) is one `Agent` span named by
//!   `agent.name`. Its steps are children: `agent` steps are `Llm` spans (a step with
//!   `llm_call_count == 0` is a plain `Step`; one with `llm_call_count > 1` aggregates several
//!   calls, so its usage is marked `Subtree`), `user` steps are `Human`, `system` steps `System`.
//! - `step` is the 0-based position in the trajectory's own `steps` array. Spans of a
//!   sub-trajectory carry the attribute `trajectory_id` so their indices are not confused with the
//!   root's.
//! - Each `tool_calls[i]` is a `Tool` child of its step; the result is the observation result
//!   whose `source_call_id` equals the call's `tool_call_id` (ATIF keeps both in the same step).
//! - ATIF has no error field. A tool failed when the result's `extra` says so (`is_error`,
//!   `error`) or its text reads like an error.
//! - `subagent_trajectory_ref` is a delegation: a zero-length `Handoff` (Delegate) beside the
//!   Tool span, and the referenced embedded trajectory as an `Agent` span *under* the Tool span.
//!   References to separate files (`trajectory_path`) cannot be followed by a pure adapter: they
//!   give the Handoff only, with a warning.
//! - `final_metrics` are totals reported by the producer; they go to metadata and are checked
//!   against the per-step metrics.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::generic_chat::looks_like_error;
use super::{AdapterError, AdapterResult, Input, Parsed, expect_json};
use crate::builder::TraceBuilder;
use crate::model::{
    AgentInfo, Cost, CostSource, ErrorInfo, Format, Handoff, HandoffMode, Link, LinkKind, LlmCall,
    Message, Part, Payload, Role, Span, SpanKind, Status, ToolCall, Usage, UsageScope,
};
use crate::util::{as_f64, as_u64, flatten_into, get, get_str, parse_time, text_of, truncate};

/// The newest minor version whose fields this adapter knows.
const KNOWN_MINOR: u32 = 8;
/// Sub-trajectories nested deeper than this are not followed (guards against hostile input).
const MAX_DEPTH: usize = 16;

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let doc = expect_json(input, Format::Atif)?;
    let root = doc
        .as_object()
        .ok_or_else(|| AdapterError::new("expected an ATIF trajectory object"))?;
    if !root.get("steps").is_some_and(Value::is_array) {
        return Err(AdapterError::new(
            "expected `steps` to be an array of ATIF steps",
        ));
    }
    let version = get_str(doc, &["schema_version"])
        .unwrap_or_default()
        .to_owned();
    let id = get_str(doc, &["trajectory_id"])
        .or_else(|| get_str(doc, &["session_id"]))
        .map_or_else(|| input.synth_id("atif"), str::to_owned);
    let mut b = TraceBuilder::new(Format::Atif, id);
    check_version(&mut b, &version);
    {
        let t = b.trace_mut();
        t.format_version = (!version.is_empty()).then(|| version.clone());
        t.session_id = get_str(doc, &["session_id"]).map(str::to_owned);
        for key in [
            "notes",
            "continued_trajectory_ref",
            "extra",
            "final_metrics",
        ] {
            if let Some(v) = root.get(key).filter(|v| !v.is_null()) {
                t.metadata.insert(key.to_owned(), v.clone());
            }
        }
        if let Some(v) = get_str(doc, &["agent", "version"]) {
            t.metadata
                .insert("agent.version".to_owned(), Value::String(v.to_owned()));
        }
    }

    // Agents declared by pisama's ATIF writer (speakers of flat multi-agent traces).
    for declared in get(doc, &["agent", "extra", "agents"])
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        if let Some(name) = get_str(declared, &["name"]) {
            let field = |k: &str| get_str(declared, &[k]).map(str::to_owned);
            b.agent(AgentInfo {
                name: name.to_owned(),
                role: field("role"),
                model: field("model"),
                parent_agent: field("parent_agent"),
                ..AgentInfo::default()
            });
        }
    }

    let mut embedded = HashMap::new();
    collect_embedded(doc, "", 0, &mut embedded);
    let mut walker = Walker {
        input,
        b,
        embedded,
        used: HashSet::new(),
    };
    let mut path = Vec::new();
    let root_idx = walker.trajectory(doc, "", None, &mut path);

    // Embedded trajectories nobody references still belong to the run: keep them under the root.
    let mut unreferenced: Vec<(String, String)> = walker
        .embedded
        .iter()
        .filter(|(id, _)| !walker.used.contains(*id))
        .map(|(id, (_, pointer))| (id.clone(), pointer.clone()))
        .collect();
    unreferenced.sort_by(|a, b| a.1.cmp(&b.1));
    for (sub_id, pointer) in unreferenced {
        // An earlier unreferenced trajectory may have expanded this one already.
        if walker.used.contains(&sub_id) {
            continue;
        }
        walker.b.warn(format!(
            "embedded sub-trajectory `{sub_id}` is never referenced by a subagent_trajectory_ref; attached to the root agent"
        ));
        if let Some((sub, _)) = walker.embedded.get(&sub_id).cloned() {
            walker.used.insert(sub_id.clone());
            let mut path = vec![root_id(doc)];
            walker.trajectory(sub, &pointer, Some(root_idx), &mut path);
        }
    }

    let Walker { mut b, .. } = walker;
    if b.trace_mut().task.is_none() {
        b.trace_mut().task = first_text(doc, "user");
    }
    b.trace_mut().final_output = last_agent_text(doc);
    let mut trace = b.finish();
    if let Some(fm) = root.get("final_metrics") {
        cross_check(&mut trace, fm);
    }
    Ok(vec![Parsed::unlabelled(trace)])
}

fn root_id(doc: &Value) -> String {
    get_str(doc, &["trajectory_id"])
        .unwrap_or("<root>")
        .to_owned()
}

/// Accepts `ATIF-v1.x`; warns on anything it does not know rather than refusing the file.
fn check_version(b: &mut TraceBuilder, version: &str) {
    let minor = version
        .strip_prefix("ATIF-v1.")
        .and_then(|m| m.parse::<u32>().ok());
    match minor {
        Some(m) if m <= KNOWN_MINOR => {}
        Some(m) => b.warn(format!(
            "schema_version {version} is newer than ATIF-v1.{KNOWN_MINOR}; fields added in 1.{m} are kept as attributes"
        )),
        None => b.warn(format!("schema_version `{version}` is not an ATIF-v1.x version; read as ATIF-v1.{KNOWN_MINOR}")),
    }
}

/// Every embedded trajectory with a `trajectory_id`, at any depth, with its JSON Pointer.
fn collect_embedded<'a>(
    traj: &'a Value,
    pointer: &str,
    depth: usize,
    out: &mut HashMap<String, (&'a Value, String)>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let Some(subs) = traj.get("subagent_trajectories").and_then(Value::as_array) else {
        return;
    };
    for (i, sub) in subs.iter().enumerate() {
        let sub_pointer = format!("{pointer}/subagent_trajectories/{i}");
        let id = get_str(sub, &["trajectory_id"])
            .or_else(|| get_str(sub, &["session_id"]))
            .map_or_else(|| sub_pointer.clone(), str::to_owned);
        out.entry(id).or_insert((sub, sub_pointer.clone()));
        collect_embedded(sub, &sub_pointer, depth + 1, out);
    }
}

struct Walker<'a> {
    input: &'a Input,
    b: TraceBuilder,
    embedded: HashMap<String, (&'a Value, String)>,
    /// Sub-trajectories already placed in the tree.
    used: HashSet<String>,
}

impl<'a> Walker<'a> {
    /// Adds one trajectory as an Agent span (under `parent`) with its steps; returns the Agent
    /// span's builder index. `path` holds the trajectory ids being expanded, for the cycle guard.
    fn trajectory(
        &mut self,
        traj: &'a Value,
        pointer: &str,
        parent: Option<usize>,
        path: &mut Vec<String>,
    ) -> usize {
        let is_root = parent.is_none();
        let traj_id = get_str(traj, &["trajectory_id"]).map(str::to_owned);
        let agent_name = get_str(traj, &["agent", "name"]).map_or_else(
            || {
                self.b.warn(format!(
                    "trajectory at `{}` has no agent.name; called `agent`",
                    display_pointer(pointer)
                ));
                "agent".to_owned()
            },
            str::to_owned,
        );
        let agent_model = get_str(traj, &["agent", "model_name"]).map(str::to_owned);
        let parent_agent = parent.and_then(|p| self.b.span(p).agent.clone());
        self.b.agent(AgentInfo {
            name: agent_name.clone(),
            id: traj_id.clone(),
            model: agent_model.clone(),
            parent_agent: parent_agent.clone(),
            ..AgentInfo::default()
        });
        let mut agent_span = Span {
            id: traj_id
                .clone()
                .unwrap_or_else(|| format!("trajectory:{}", display_pointer(pointer))),
            kind: SpanKind::Agent,
            name: agent_name.clone(),
            agent: Some(agent_name.clone()),
            source: self.input.at(pointer.to_owned()),
            ..Span::default()
        };
        if let Some(agent) = traj.get("agent").and_then(Value::as_object) {
            for (k, v) in agent {
                if k != "name" && k != "tool_definitions" && !v.is_null() {
                    flatten_into(&format!("agent.{k}"), v, &mut agent_span.attributes);
                }
            }
            if let Some(Value::Array(defs)) = agent.get("tool_definitions") {
                let names: Vec<Value> = defs
                    .iter()
                    .filter_map(|d| {
                        get_str(d, &["function", "name"]).or_else(|| get_str(d, &["name"]))
                    })
                    .map(|n| Value::String(n.to_owned()))
                    .collect();
                agent_span
                    .attributes
                    .insert("agent.tool_names".to_owned(), Value::Array(names));
            }
        }
        if !is_root {
            for key in ["schema_version", "session_id", "notes"] {
                if let Some(v) = traj.get(key).filter(|v| !v.is_null()) {
                    agent_span.attributes.insert(key.to_owned(), v.clone());
                }
            }
            if let Some(fm) = traj.get("final_metrics") {
                flatten_into("final_metrics", fm, &mut agent_span.attributes);
            }
        }
        agent_span.input = (first_text(traj, "user").map(Payload::text)).map(Box::new);
        agent_span.output = (last_agent_text(traj).map(Payload::text)).map(Box::new);
        let agent_idx = match parent {
            Some(p) => self.b.push_child(p, agent_span),
            None => self.b.push(agent_span),
        };
        path.push(traj_id.clone().unwrap_or_default());

        let steps: &[Value] = traj
            .get("steps")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        if steps.is_empty() {
            self.b.warn(format!(
                "trajectory `{}` has no steps",
                traj_id.as_deref().unwrap_or(&agent_name)
            ));
        }
        let times: Vec<Option<i64>> = steps
            .iter()
            .map(|s| {
                s.get("timestamp")
                    .and_then(Value::as_str)
                    .and_then(parse_time)
            })
            .collect();
        let ctx = TrajCtx {
            agent: agent_name,
            model: agent_model,
            traj_id: if is_root { None } else { traj_id },
        };
        for (i, step) in steps.iter().enumerate() {
            let start = times.get(i).copied().flatten();
            let end = times.iter().skip(i + 1).find_map(|t| *t);
            self.step(
                step,
                i,
                &format!("{pointer}/steps/{i}"),
                start,
                end,
                agent_idx,
                &ctx,
                path,
            );
        }
        let first = times.iter().flatten().min().copied();
        let last = times.iter().flatten().max().copied();
        let span = self.b.span_mut(agent_idx);
        span.start_ns = first;
        span.end_ns = last;
        path.pop();
        agent_idx
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the arguments are the walk's state"
    )]
    fn step(
        &mut self,
        step: &'a Value,
        index: usize,
        pointer: &str,
        start: Option<i64>,
        end: Option<i64>,
        agent_idx: usize,
        ctx: &TrajCtx,
        path: &mut Vec<String>,
    ) {
        let Some(obj) = step.as_object() else {
            self.b
                .warn(format!("step at `{pointer}` is not an object; skipped"));
            return;
        };
        // pisama's ATIF writer keeps the speaker of flat multi-agent traces here.
        let speaker_ctx;
        let ctx = match get_str(step, &["extra", "agent_name"]) {
            Some(speaker) if speaker != ctx.agent => {
                speaker_ctx = TrajCtx {
                    agent: speaker.to_owned(),
                    ..ctx.clone()
                };
                &speaker_ctx
            }
            _ => ctx,
        };
        let source_kind = obj.get("source").and_then(Value::as_str).unwrap_or("");
        let step_id = obj.get("step_id").and_then(as_u64);
        let label = step_id.map_or_else(|| format!("index {index}"), |s| format!("step_id {s}"));
        let (text, media) = message_parts(obj.get("message"));
        let mut span = Span {
            id: format!(
                "{}step-{}",
                ctx.prefix(),
                step_id.map_or(index as u64 + 1, |s| s)
            ),
            step: Some(index as u32),
            start_ns: start,
            end_ns: end.filter(|e| start.is_some_and(|s| *e >= s)),
            source: self.input.at(pointer.to_owned()),
            ..Span::default()
        };
        span.time_inferred = span.end_ns.is_some();
        if let Some(t) = &ctx.traj_id {
            span.attributes
                .insert("trajectory_id".to_owned(), Value::String(t.clone()));
        }
        for (k, v) in obj {
            if matches!(
                k.as_str(),
                "source"
                    | "message"
                    | "timestamp"
                    | "tool_calls"
                    | "observation"
                    | "metrics"
                    | "reasoning_content"
                    | "model_name"
            ) || v.is_null()
            {
                continue;
            }
            flatten_into(k, v, &mut span.attributes);
        }
        match source_kind {
            "user" => {
                span.kind = SpanKind::Human;
                "user".clone_into(&mut span.name);
                span.input = Some(Box::new(Payload::text(text)));
            }
            "system" => {
                span.kind = SpanKind::System;
                "system".clone_into(&mut span.name);
                span.input = Some(Box::new(Payload::text(text)));
            }
            other => {
                if other != "agent" {
                    self.b.warn(format!(
                        "{label} of `{}` has source `{other}`; read as an agent step",
                        ctx.agent
                    ));
                }
                self.agent_step(obj, &mut span, &text, media, ctx, &label);
            }
        }
        let step_idx = self.b.push_child(agent_idx, span);
        if matches!(source_kind, "user" | "system") {
            if obj.contains_key("tool_calls") || obj.contains_key("observation") {
                self.b.warn(format!("{label} is a {source_kind} step but carries tool calls or observations; ignored"));
            }
            return;
        }
        self.tools(obj, step_idx, pointer, start, end, ctx, &label, path);
    }

    fn agent_step(
        &mut self,
        obj: &Map<String, Value>,
        span: &mut Span,
        text: &str,
        media: Vec<Part>,
        ctx: &TrajCtx,
        label: &str,
    ) {
        let calls = obj.get("llm_call_count").and_then(as_u64);
        let model = obj
            .get("model_name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| ctx.model.clone());
        span.name.clone_from(&ctx.agent);
        span.agent = Some(ctx.agent.clone());
        span.output = ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new);
        let mut parts = Vec::new();
        if let Some(r) = obj
            .get("reasoning_content")
            .and_then(text_of)
            .filter(|r| !r.is_empty())
        {
            parts.push(Part::Reasoning { text: r });
        }
        if !text.is_empty() {
            parts.push(Part::Text {
                text: text.to_owned(),
            });
        }
        parts.extend(media);
        for call in obj
            .get("tool_calls")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
        {
            parts.push(Part::ToolCall {
                id: get_str(call, &["tool_call_id"]).map(str::to_owned),
                name: get_str(call, &["function_name"])
                    .unwrap_or("tool")
                    .to_owned(),
                arguments: call.get("arguments").cloned().unwrap_or(Value::Null),
            });
        }
        let metrics = obj.get("metrics");
        span.usage = (metrics.map(usage_of).filter(|u| !u.is_empty())).map(Box::new);
        span.cost = metrics
            .and_then(|m| m.get("cost_usd"))
            .and_then(as_f64)
            .map(|amount| Cost {
                amount,
                currency: "USD".to_owned(),
                source: CostSource::Reported,
            });
        if let Some(extra) = metrics.and_then(|m| m.get("extra")) {
            flatten_into("metrics.extra", extra, &mut span.attributes);
        }
        if calls == Some(0) {
            // Not a model call (a scripted or copied step): keep it, but never as an LLM call.
            span.kind = SpanKind::Step;
            span.output = Some(Box::new(Payload::text(text)));
            if span.usage.is_some() {
                self.b.warn(format!(
                    "{label} has llm_call_count 0 but reports metrics; kept on a Step span"
                ));
            }
            return;
        }
        span.kind = SpanKind::Llm;
        if calls.is_some_and(|c| c > 1) {
            span.usage_scope = UsageScope::Subtree;
        }
        span.llm = Some(Box::new(LlmCall {
            request_model: model.clone(),
            response_model: model,
            output_messages: vec![Message {
                role: Role::Assistant,
                name: Some(ctx.agent.clone()),
                parts,
            }],
            params: obj
                .get("reasoning_effort")
                .map(|v| {
                    [("reasoning_effort".to_owned(), v.clone())]
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default(),
            ..LlmCall::default()
        }));
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the arguments are the walk's state"
    )]
    fn tools(
        &mut self,
        obj: &'a Map<String, Value>,
        step_idx: usize,
        pointer: &str,
        start: Option<i64>,
        end: Option<i64>,
        ctx: &TrajCtx,
        label: &str,
        path: &mut Vec<String>,
    ) {
        let mut by_call: HashMap<String, usize> = HashMap::new();
        let calls = obj
            .get("tool_calls")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (k, call) in calls.iter().enumerate() {
            let name = get_str(call, &["function_name"]).map_or_else(
                || {
                    self.b
                        .warn(format!("{label}: tool call {k} has no function_name"));
                    "tool".to_owned()
                },
                str::to_owned,
            );
            let call_id = get_str(call, &["tool_call_id"]).map(str::to_owned);
            let args = call.get("arguments").cloned().unwrap_or(Value::Null);
            let mut span = Span {
                id: call_id
                    .clone()
                    .unwrap_or_else(|| format!("{}.call{k}", self.b.span(step_idx).id)),
                kind: SpanKind::Tool,
                name: name.clone(),
                agent: Some(ctx.agent.clone()),
                step: self.b.span(step_idx).step,
                start_ns: start,
                end_ns: self.b.span(step_idx).end_ns,
                time_inferred: true,
                input: ((!args.is_null()).then(|| Payload::from_json(args.clone()))).map(Box::new),
                tool: Some(Box::new(ToolCall {
                    name,
                    call_id: call_id.clone(),
                    arguments: args,
                    ..ToolCall::default()
                })),
                source: self.input.at(format!("{pointer}/tool_calls/{k}")),
                ..Span::default()
            };
            if let Some(t) = &ctx.traj_id {
                span.attributes
                    .insert("trajectory_id".to_owned(), Value::String(t.clone()));
            }
            if let Some(extra) = call.get("extra") {
                flatten_into("extra", extra, &mut span.attributes);
            }
            let idx = self.b.push_child(step_idx, span);
            if let Some(id) = call_id {
                by_call.entry(id).or_insert(idx);
            }
        }

        let results = obj
            .get("observation")
            .and_then(|o| o.get("results"))
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (k, result) in results.iter().enumerate() {
            let result_pointer = format!("{pointer}/observation/results/{k}");
            let source_call = get_str(result, &["source_call_id"]);
            let target = source_call.and_then(|id| {
                let found = by_call.get(id).copied();
                if found.is_none() {
                    self.b.warn(format!(
                        "{label}: observation result {k} answers call `{id}`, which is not a tool call of this step"
                    ));
                }
                found
            });
            // An observation without its call (environment feedback) is kept as a tool result
            // of unknown name, so its content and error are not lost.
            let tool_idx = if let Some(idx) = target {
                idx
            } else {
                let span = Span {
                    id: format!("{}.obs{k}", self.b.span(step_idx).id),
                    kind: SpanKind::Tool,
                    name: "observation".to_owned(),
                    agent: Some(ctx.agent.clone()),
                    step: self.b.span(step_idx).step,
                    start_ns: start,
                    end_ns: end,
                    time_inferred: true,
                    tool: Some(Box::new(ToolCall {
                        name: "observation".to_owned(),
                        call_id: source_call.map(str::to_owned),
                        ..ToolCall::default()
                    })),
                    source: self.input.at(result_pointer.clone()),
                    ..Span::default()
                };
                self.b.push_child(step_idx, span)
            };
            self.apply_result(tool_idx, result);
            let refs = result
                .get("subagent_trajectory_ref")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for (r, reference) in refs.iter().enumerate() {
                self.delegate(
                    reference,
                    tool_idx,
                    step_idx,
                    &format!("{result_pointer}/subagent_trajectory_ref/{r}"),
                    ctx,
                    path,
                );
            }
        }
    }

    fn apply_result(&mut self, tool_idx: usize, result: &Value) {
        let content = result.get("content").filter(|c| !c.is_null());
        let text = content.and_then(text_of).unwrap_or_default();
        let extra = result.get("extra");
        let flag = extra
            .and_then(|e| e.get("is_error"))
            .and_then(Value::as_bool);
        let extra_error = extra
            .and_then(|e| e.get("error"))
            .filter(|e| !matches!(e, Value::Null | Value::Bool(false)));
        let failed = flag.unwrap_or(false)
            || extra_error.is_some()
            || (flag.is_none() && looks_like_error(&text));
        let span = self.b.span_mut(tool_idx);
        if let Some(e) = extra {
            flatten_into("result.extra", e, &mut span.attributes);
        }
        span.output = (content.map(|c| Payload::from_json(c.clone()))).map(Box::new);
        if let Some(tool) = &mut span.tool {
            tool.result = content.cloned();
            tool.is_error = failed;
        }
        span.status = if failed { Status::Error } else { Status::Ok };
        if failed {
            let message = extra_error
                .and_then(|e| e.as_str().map(str::to_owned).or_else(|| text_of(e)))
                .filter(|m| m != "true")
                .unwrap_or_else(|| {
                    text.lines()
                        .next()
                        .unwrap_or("tool reported an error")
                        .to_owned()
                });
            span.error = Some(Box::new(ErrorInfo {
                message: truncate(&message, 300),
                ..ErrorInfo::default()
            }));
        }
    }

    /// One `subagent_trajectory_ref`: a Handoff beside the tool span, and the embedded
    /// trajectory under it.
    fn delegate(
        &mut self,
        reference: &Value,
        tool_idx: usize,
        step_idx: usize,
        pointer: &str,
        ctx: &TrajCtx,
        path: &mut Vec<String>,
    ) {
        let sub_id = get_str(reference, &["trajectory_id"]);
        let sub_path = get_str(reference, &["trajectory_path"]);
        let embedded = sub_id.and_then(|id| self.embedded.get(id).cloned());
        let target_name = embedded
            .as_ref()
            .and_then(|(sub, _)| get_str(sub, &["agent", "name"]))
            .or(sub_id)
            .or(sub_path)
            .unwrap_or("subagent")
            .to_owned();
        let tool_span = self.b.span(tool_idx);
        let mut handoff = Span {
            id: format!("{}.handoff", tool_span.id),
            kind: SpanKind::Handoff,
            name: format!("delegate to {target_name}"),
            agent: Some(ctx.agent.clone()),
            step: tool_span.step,
            start_ns: tool_span.start_ns,
            end_ns: tool_span.start_ns,
            handoff: Some(Box::new(Handoff {
                from: Some(ctx.agent.clone()),
                to: target_name,
                mode: HandoffMode::Delegate,
            })),
            source: self.input.at(pointer.to_owned()),
            ..Span::default()
        };
        if let Some(t) = &ctx.traj_id {
            handoff
                .attributes
                .insert("trajectory_id".to_owned(), Value::String(t.clone()));
        }
        if let Value::Object(r) = reference {
            for (k, v) in r {
                flatten_into(&format!("ref.{k}"), v, &mut handoff.attributes);
            }
        }
        self.b.push_child(step_idx, handoff);
        if let Some(target) = sub_id.or(sub_path) {
            self.b.span_mut(tool_idx).links.push(Link {
                kind: LinkKind::SubTrajectory,
                target: target.to_owned(),
            });
        }

        let Some((sub, sub_pointer)) = embedded else {
            let what = sub_path.map_or_else(
                || {
                    format!(
                        "trajectory `{}` is not embedded in subagent_trajectories",
                        sub_id.unwrap_or("?")
                    )
                },
                |p| format!("trajectory file `{p}` is not embedded; read it separately"),
            );
            self.b.warn(format!(
                "sub-agent reference: {what}; kept as a handoff only"
            ));
            return;
        };
        let id = sub_id.unwrap_or_default().to_owned();
        if path.contains(&id) {
            self.b.warn(format!(
                "sub-trajectory `{id}` references itself through its own steps; cycle cut"
            ));
            return;
        }
        if path.len() > MAX_DEPTH {
            self.b.warn(format!(
                "sub-trajectories nested deeper than {MAX_DEPTH}; `{id}` not expanded"
            ));
            return;
        }
        if !self.used.insert(id.clone()) {
            self.b.warn(format!("sub-trajectory `{id}` is referenced more than once; expanded at its first reference"));
            return;
        }
        self.trajectory(sub, &sub_pointer, Some(tool_idx), path);
    }
}

/// What every step of one trajectory shares.
#[derive(Clone)]
struct TrajCtx {
    agent: String,
    model: Option<String>,
    /// Set for sub-trajectories only.
    traj_id: Option<String>,
}

impl TrajCtx {
    /// Prefix for synthesized span ids, so steps of different trajectories never collide.
    fn prefix(&self) -> String {
        self.traj_id
            .as_ref()
            .map(|t| format!("{t}/"))
            .unwrap_or_default()
    }
}

/// ATIF `Metrics`: `prompt_tokens` already include `cached_tokens`.
fn usage_of(m: &Value) -> Usage {
    Usage {
        input: m.get("prompt_tokens").and_then(as_u64),
        output: m.get("completion_tokens").and_then(as_u64),
        cache_read: m.get("cached_tokens").and_then(as_u64),
        ..Usage::default()
    }
}

/// Text of a step message (a string or an array of content parts) and its non-text parts.
fn message_parts(message: Option<&Value>) -> (String, Vec<Part>) {
    match message {
        None | Some(Value::Null) => (String::new(), Vec::new()),
        Some(Value::String(s)) => (s.clone(), Vec::new()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            let mut media = Vec::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") | None => {
                        if let Some(t) = part
                            .get("text")
                            .and_then(text_of)
                            .or_else(|| part.as_str().map(str::to_owned))
                        {
                            texts.push(t);
                        }
                    }
                    Some(kind) => media.push(Part::Media {
                        mime: get_str(part, &["source", "media_type"])
                            .or_else(|| get_str(part, &["mime_type"]))
                            .map_or_else(|| Some(kind.to_owned()), |m| Some(m.to_owned())),
                        uri: get_str(part, &["source", "path"])
                            .or_else(|| get_str(part, &["source", "url"]))
                            .or_else(|| get_str(part, &["url"]))
                            .map(str::to_owned),
                    }),
                }
            }
            (texts.join("\n"), media)
        }
        Some(other) => (text_of(other).unwrap_or_default(), Vec::new()),
    }
}

fn first_text(traj: &Value, source: &str) -> Option<String> {
    traj.get("steps")?
        .as_array()?
        .iter()
        .find(|s| s.get("source").and_then(Value::as_str) == Some(source))
        .map(|s| message_parts(s.get("message")).0)
        .filter(|t| !t.is_empty())
}

fn last_agent_text(traj: &Value) -> Option<String> {
    traj.get("steps")?
        .as_array()?
        .iter()
        .rev()
        .filter(|s| s.get("source").and_then(Value::as_str) == Some("agent"))
        .map(|s| message_parts(s.get("message")).0)
        .find(|t| !t.is_empty())
}

/// Compares the producer's `final_metrics` with the per-step metrics. Producers disagree on
/// whether the root totals include sub-agents, so either reading is accepted.
fn cross_check(trace: &mut crate::model::Trace, fm: &Value) {
    let reported = fm.get("total_prompt_tokens").and_then(as_u64);
    let Some(reported) = reported else { return };
    let mut all = 0u64;
    let mut root_only = 0u64;
    let mut any = false;
    for span in &trace.spans {
        if span.kind != SpanKind::Llm && span.kind != SpanKind::Step {
            continue;
        }
        let Some(input) = span.usage.as_ref().and_then(|u| u.input) else {
            continue;
        };
        any = true;
        all += input;
        if !span.attributes.contains_key("trajectory_id") {
            root_only += input;
        }
    }
    if any && reported != all && reported != root_only {
        let message = format!(
            "final_metrics.total_prompt_tokens is {reported}, but the steps report {all} (root trajectory alone: {root_only})"
        );
        if !trace.warnings.contains(&message) {
            trace.warnings.push(message);
        }
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

#[cfg(test)]
mod tests {
    use crate::model::{CostSource, Format, HandoffMode, SpanKind, Status, UsageScope};
    use crate::testing::{fixture, inline, inline_err};

    #[test]
    fn trip_planner_fixture() {
        let (summary, traces) = fixture("atif/trip-planner.json");
        assert_eq!(summary.format, Format::Atif);
        let t = &traces[0].trace;
        assert_eq!(t.id, "traj-trip-planner-01");
        assert_eq!(t.format_version.as_deref(), Some("ATIF-v1.7"));
        assert_eq!(t.session_id.as_deref(), Some("sess-4f2a-porto-weekend"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let names: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["trip-planner", "flight-scout"]);
        assert_eq!(t.agents[1].parent_agent.as_deref(), Some("trip-planner"));

        // The failed tool: flagged in `extra`, message from `extra.error`.
        let failed: Vec<_> = t
            .spans
            .iter()
            .filter(|s| s.status == Status::Error)
            .collect();
        assert_eq!(failed.len(), 1);
        let fare = failed[0];
        assert_eq!(fare.kind, SpanKind::Tool);
        assert_eq!(fare.tool.as_ref().unwrap().name, "get_fare_rules");
        assert!(fare.tool.as_ref().unwrap().is_error);
        assert!(
            fare.error
                .as_ref()
                .unwrap()
                .message
                .starts_with("TimeoutError")
        );
        assert_eq!(fare.agent.as_deref(), Some("flight-scout"));
        assert_eq!(fare.step, Some(1));
        assert_eq!(fare.attributes["trajectory_id"], "traj-flight-scout-07");

        // Usage: SelfOnly Llm spans only; the llm_call_count 2 step is an aggregate.
        assert_eq!(t.usage.input, Some(1240 + 1610 + 1702 + 890));
        assert_eq!(t.usage.output, Some(64 + 38 + 120 + 77));
        assert_eq!(t.usage.cache_read, Some(1024 + 1152 + 1536));
        let aggregate = t
            .spans
            .iter()
            .find(|s| s.usage_scope == UsageScope::Subtree)
            .unwrap();
        assert_eq!(aggregate.attributes["llm_call_count"], 2);
        let cost = t.cost.as_ref().unwrap();
        assert_eq!(cost.source, CostSource::Reported);
        assert!((cost.amount - (0.000_412 + 0.000_301 + 0.000_388 + 0.000_287)).abs() < 1e-9);

        // Delegation: one Handoff beside the delegate tool; the sub-agent sits under the tool.
        let handoffs: Vec<_> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!(
            (h.from.as_deref(), h.to.as_str(), h.mode),
            (Some("trip-planner"), "flight-scout", HandoffMode::Delegate)
        );
        let scout = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Agent && s.name == "flight-scout")
            .unwrap();
        let delegate_tool = &t.spans[scout.parent.unwrap() as usize];
        assert_eq!(delegate_tool.tool.as_ref().unwrap().name, "delegate");
        assert_eq!(handoffs[0].parent, delegate_tool.parent);

        // Steps index into each trajectory's own `steps`.
        let root_steps: Vec<u32> = t
            .spans
            .iter()
            .filter(|s| {
                s.kind != SpanKind::Tool
                    && s.kind != SpanKind::Handoff
                    && !s.attributes.contains_key("trajectory_id")
            })
            .filter_map(|s| s.step)
            .collect();
        assert_eq!(root_steps, [0, 1, 2, 3, 4]);
        assert_eq!(t.spans_of(SpanKind::Human).count(), 2);
        assert_eq!(t.spans_of(SpanKind::System).count(), 1);
        assert!(
            t.task
                .as_deref()
                .unwrap()
                .starts_with("Find me the cheapest refundable")
        );
        assert!(t.final_output.as_deref().unwrap().contains("GBP 241"));
        assert!(t.metadata.contains_key("final_metrics"));
        // Times: ends are inferred from the next step.
        let first_llm = t.spans.iter().find(|s| s.kind == SpanKind::Llm).unwrap();
        assert!(first_llm.time_inferred && first_llm.end_ns > first_llm.start_ns);
    }

    #[test]
    fn unknown_minor_version_warns_and_reads() {
        let doc = r#"{"schema_version": "ATIF-v1.12", "agent": {"name": "a"},
            "steps": [{"step_id": 1, "source": "user", "message": [{"type": "text", "text": "hi"}]},
                      {"step_id": 2, "source": "agent", "message": "ERROR? no, hello", "llm_call_count": 0}]}"#;
        let (_, traces) = inline("t.json", doc);
        let t = &traces[0].trace;
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("newer than ATIF-v1.8"))
        );
        assert_eq!(t.task.as_deref(), Some("hi"));
        // llm_call_count 0: a scripted step, never an LLM call.
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 0);
        assert_eq!(t.spans_of(SpanKind::Step).count(), 1);
    }

    #[test]
    fn unmatched_results_path_refs_and_error_text() {
        let doc = r#"{"schema_version": "ATIF-v1.4", "session_id": "s1", "agent": {"name": "boss"},
            "steps": [{"step_id": 1, "source": "agent", "message": "go",
              "tool_calls": [{"tool_call_id": "c1", "function_name": "run_tests", "arguments": {}},
                             {"tool_call_id": "c2", "function_name": "spawn", "arguments": {}}],
              "observation": {"results": [
                 {"source_call_id": "c1", "content": "Traceback (most recent call last):\n  File x\nAssertionError"},
                 {"source_call_id": "c9", "content": "stray"},
                 {"source_call_id": "c2", "content": "done", "subagent_trajectory_ref": [{"trajectory_path": "sub/worker.json"}]}]}}]}"#;
        let (_, traces) = inline("t.json", doc);
        let t = &traces[0].trace;
        assert_eq!(t.id, "s1");
        let tests = t.spans.iter().find(|s| s.name == "run_tests").unwrap();
        assert_eq!(tests.status, Status::Error);
        assert!(t.warnings.iter().any(|w| w.contains("`c9`")));
        assert!(t.warnings.iter().any(|w| w.contains("sub/worker.json")));
        let h = t.spans_of(SpanKind::Handoff).next().unwrap();
        assert_eq!(h.handoff.as_ref().unwrap().to, "sub/worker.json");
        assert_eq!(
            t.spans.iter().filter(|s| s.kind == SpanKind::Agent).count(),
            1
        );
    }

    #[test]
    fn self_referencing_sub_trajectories_do_not_loop() {
        let doc = r#"{"schema_version": "ATIF-v1.7", "trajectory_id": "root", "agent": {"name": "a"},
            "steps": [{"step_id": 1, "source": "agent", "message": "x",
               "tool_calls": [{"tool_call_id": "c", "function_name": "d", "arguments": {}}],
               "observation": {"results": [{"source_call_id": "c", "subagent_trajectory_ref": [{"trajectory_id": "loop"}]}]}}],
            "subagent_trajectories": [{"trajectory_id": "loop", "agent": {"name": "b"},
               "steps": [{"step_id": 1, "source": "agent", "message": "y",
                 "tool_calls": [{"tool_call_id": "c", "function_name": "d", "arguments": {}}],
                 "observation": {"results": [{"source_call_id": "c", "subagent_trajectory_ref": [{"trajectory_id": "loop"}]}]}}]},
              {"trajectory_id": "orphan", "agent": {"name": "c"}, "steps": []}]}"#;
        let (_, traces) = inline("t.json", doc);
        let t = &traces[0].trace;
        assert!(t.warnings.iter().any(|w| w.contains("cycle")));
        assert!(t.warnings.iter().any(|w| w.contains("`orphan`")));
        assert_eq!(t.spans_of(SpanKind::Agent).count(), 3);
    }

    #[test]
    fn hostile_shapes_do_not_panic() {
        for doc in [
            r#"{"schema_version": "ATIF-v1.7", "steps": [1, null, {"source": 5, "tool_calls": "x", "observation": {"results": [7]}}]}"#,
            r#"{"schema_version": "ATIF-v1.7", "steps": [{"source": "agent", "metrics": {"prompt_tokens": "12", "cost_usd": "x"}, "llm_call_count": 3}], "final_metrics": {"total_prompt_tokens": 99}}"#,
            r#"{"schema_version": "ATIF-vX", "agent": [], "steps": [], "subagent_trajectories": [null, 3]}"#,
        ] {
            let (_, traces) = inline("t.json", doc);
            assert_eq!(traces.len(), 1);
        }
        let (_, traces) = inline(
            "t.json",
            r#"{"schema_version": "ATIF-v1.7", "steps": [{"source": "agent", "metrics": {"prompt_tokens": 12}}], "final_metrics": {"total_prompt_tokens": 99}}"#,
        );
        assert!(
            traces[0]
                .trace
                .warnings
                .iter()
                .any(|w| w.contains("final_metrics"))
        );
        let err = inline_err("t.json", br#"{"schema_version": "ATIF-v1.7", "steps": {}}"#);
        assert!(
            err.contains("steps") || err.contains("unrecognized"),
            "{err}"
        );
    }
}
