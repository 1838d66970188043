//! ATIF writer: any canonical trace as an `ATIF-v1.7` trajectory (`formats.md` §9), read back
//! by the ATIF adapter.
//!
//! How the canonical model is laid onto ATIF's single-agent trajectories:
//! - `Human` spans are `user` steps, `System` spans `system` steps, `Llm` spans `agent` steps
//!   whose `Tool` children become `tool_calls` with their results in `observation.results`
//!   (`extra.is_error` / `extra.error` for failures, since ATIF has no error field).
//! - Other spans that belong to an agent (plain steps, tools run outside a model call,
//!   handoffs) are `agent` steps with `llm_call_count: 0`, so they are never mistaken for
//!   model calls.
//! - An `Agent` span nested inside another agent's work is written as an embedded
//!   `subagent_trajectories` entry, referenced from the observation of the tool that started
//!   it (or from a synthesized `delegate` call when no tool did).
//! - ATIF steps have no speaker of their own. Flat multi-agent traces (Who&When, group chats)
//!   keep each step's speaker in `extra.agent_name`, and the full agent list goes in
//!   `agent.extra.agents`; the ATIF adapter reads both back.
//! - Usage goes to `metrics` for model calls only. An aggregate (`UsageScope::Subtree`) keeps
//!   its original `llm_call_count` when known, and otherwise goes to `extra.aggregate_metrics`
//!   so it is never summed again. Only reported costs are written as `cost_usd`.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::model::{CostSource, Part, Payload, Span, SpanKind, Status, Trace, Usage, UsageScope};
use crate::util::format_time;

const SCHEMA_VERSION: &str = "ATIF-v1.7";

/// Writes a trace as an ATIF v1.7 trajectory.
pub fn to_atif(trace: &Trace) -> Value {
    let writer = Writer::new(trace);
    let roots: Vec<usize> = (0..trace.spans.len())
        .filter(|&i| trace.spans[i].parent.is_none())
        .collect();
    let root_agent = writer.root_agent(&roots);
    let mut subs = Vec::new();
    let mut ids = HashSet::new();
    ids.insert(trace.id.clone());
    let mut out = writer.trajectory(&root_agent, &roots, &trace.id, &mut subs, &mut ids);
    if let Value::Object(obj) = &mut out {
        obj.insert(
            "session_id".to_owned(),
            json!(trace.session_id.clone().unwrap_or_else(|| trace.id.clone())),
        );
        let mut notes = format!("Converted by pisama from {}", trace.format);
        if let Some(v) = &trace.format_version {
            notes = format!("{notes} ({v})");
        }
        obj.insert("notes".to_owned(), json!(notes));
        obj.insert(
            "final_metrics".to_owned(),
            final_metrics(obj.get("steps"), &subs),
        );
        if !subs.is_empty() {
            obj.insert("subagent_trajectories".to_owned(), Value::Array(subs));
        }
        if let Some(Value::Object(agent)) = obj.get_mut("agent") {
            let agents: Vec<Value> = trace
                .agents
                .iter()
                .map(|a| {
                    let mut m = Map::new();
                    m.insert("name".to_owned(), json!(a.name));
                    for (k, v) in [
                        ("role", &a.role),
                        ("model", &a.model),
                        ("parent_agent", &a.parent_agent),
                    ] {
                        if let Some(v) = v {
                            m.insert(k.to_owned(), json!(v));
                        }
                    }
                    Value::Object(m)
                })
                .collect();
            if !agents.is_empty() {
                agent.insert("extra".to_owned(), json!({ "agents": agents }));
            }
        }
    }
    out
}

struct Writer<'t> {
    trace: &'t Trace,
    children: Vec<Vec<usize>>,
}

impl<'t> Writer<'t> {
    fn new(trace: &'t Trace) -> Self {
        let mut children = vec![Vec::new(); trace.spans.len()];
        for (i, span) in trace.spans.iter().enumerate() {
            if let Some(p) = span.parent.map(|p| p as usize)
                && p < children.len()
                && p != i
            {
                children[p].push(i);
            }
        }
        Writer { trace, children }
    }

    fn span(&self, i: usize) -> &'t Span {
        &self.trace.spans[i]
    }

    /// The agent the root trajectory is written for: a root Agent span's, else the first
    /// agent that produced a model call or step, else the first declared agent.
    fn root_agent(&self, roots: &[usize]) -> String {
        roots
            .iter()
            .map(|&i| self.span(i))
            .find(|s| s.kind == SpanKind::Agent)
            .and_then(|s| s.agent.clone().or_else(|| Some(s.name.clone())))
            .or_else(|| {
                self.trace
                    .spans
                    .iter()
                    .filter(|s| matches!(s.kind, SpanKind::Llm | SpanKind::Step))
                    .find_map(|s| s.agent.clone())
            })
            .or_else(|| self.trace.agents.first().map(|a| a.name.clone()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "agent".to_owned())
    }

    /// One trajectory for `agent` whose work starts at `tops`. Nested Agent spans of other
    /// agents are written into `subs` and referenced from here.
    fn trajectory(
        &self,
        agent: &str,
        tops: &[usize],
        id: &str,
        subs: &mut Vec<Value>,
        ids: &mut HashSet<String>,
    ) -> Value {
        // Members of this trajectory in trace order, without the sub-agents' subtrees.
        let mut members = Vec::new();
        let mut stack: Vec<usize> = tops.iter().rev().copied().collect();
        let mut seen = HashSet::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            members.push(i);
            if self.is_sub_agent(i, agent, tops) {
                continue;
            }
            for &c in self.children[i].iter().rev() {
                stack.push(c);
            }
        }
        members.sort_unstable();

        let mut steps: Vec<Value> = Vec::new();
        let mut consumed: HashSet<usize> = HashSet::new();
        for &i in &members {
            if consumed.contains(&i) {
                continue;
            }
            let span = self.span(i);
            let parent_kind = span.parent.map(|p| self.span(p as usize).kind);
            if self.is_sub_agent(i, agent, tops) && parent_kind == Some(SpanKind::Tool) {
                // Written by the tool that started it (`attach_tools`).
                continue;
            }
            if self.regenerated_handoff(span) {
                continue;
            }
            if self.is_sub_agent(i, agent, tops) {
                // A sub-agent not started by a tool: a synthesized delegate call refers to it.
                let sub_id = self.write_sub(i, subs, ids);
                let target = span.agent.clone().unwrap_or_else(|| span.name.clone());
                let mut step = base_step(span);
                step.insert("source".to_owned(), json!("agent"));
                step.insert("message".to_owned(), json!(format!("delegate to {target}")));
                step.insert("llm_call_count".to_owned(), json!(0));
                let call_id = format!("delegate-{}", steps.len() + 1);
                step.insert(
                    "tool_calls".to_owned(),
                    json!([{ "tool_call_id": call_id, "function_name": "delegate", "arguments": { "agent": target } }]),
                );
                let mut result = Map::new();
                result.insert("source_call_id".to_owned(), json!(call_id));
                if let Some(out) = &span.output {
                    result.insert("content".to_owned(), json!(out.text));
                }
                result.insert(
                    "subagent_trajectory_ref".to_owned(),
                    json!([{ "trajectory_id": sub_id }]),
                );
                step.insert(
                    "observation".to_owned(),
                    json!({ "results": [Value::Object(result)] }),
                );
                self.speaker(&mut step, agent, None);
                steps.push(Value::Object(step));
                continue;
            }
            match span.kind {
                SpanKind::Agent if span.agent.as_deref().is_none_or(|a| a == agent) => {}
                SpanKind::Human | SpanKind::System => {
                    let mut step = base_step(span);
                    let source = if span.kind == SpanKind::Human {
                        "user"
                    } else {
                        "system"
                    };
                    step.insert("source".to_owned(), json!(source));
                    step.insert("message".to_owned(), json!(payload_text(span)));
                    steps.push(Value::Object(step));
                }
                SpanKind::Llm => {
                    let tools: Vec<usize> = self.tool_descendants(i, agent, tops);
                    consumed.extend(tools.iter().copied());
                    let step = self.llm_step(span, &tools, agent, subs, ids);
                    steps.push(Value::Object(step));
                }
                SpanKind::Tool => {
                    // A tool run outside a model call (code execution turns, workflow tools).
                    let mut step = base_step(span);
                    step.insert("source".to_owned(), json!("agent"));
                    step.insert("message".to_owned(), json!(""));
                    step.insert("llm_call_count".to_owned(), json!(0));
                    let mut nested = self.tool_descendants(i, agent, tops);
                    nested.retain(|&t| t != i);
                    consumed.extend(nested.iter().copied());
                    let mut tools = vec![i];
                    tools.extend(nested);
                    self.attach_tools(&mut step, &tools, subs, ids);
                    self.speaker(&mut step, agent, span.agent.as_deref());
                    steps.push(Value::Object(step));
                }
                _ => {
                    // Plain steps, handoffs, retrievals: agent work that is not a model call.
                    let mut step = base_step(span);
                    step.insert("source".to_owned(), json!("agent"));
                    let text = span
                        .output
                        .as_ref()
                        .or(span.input.as_ref())
                        .map_or_else(|| span.name.clone(), |p| p.text.clone());
                    step.insert("message".to_owned(), json!(text));
                    step.insert("llm_call_count".to_owned(), json!(0));
                    set_extra(&mut step, "span_kind", json!(span.kind.name()));
                    if let Some(h) = &span.handoff {
                        set_extra(
                            &mut step,
                            "handoff",
                            serde_json::to_value(h).unwrap_or(Value::Null),
                        );
                    }
                    if span.status == Status::Error {
                        set_extra(&mut step, "is_error", json!(true));
                    }
                    self.speaker(&mut step, agent, span.agent.as_deref());
                    steps.push(Value::Object(step));
                }
            }
        }
        for (n, step) in steps.iter_mut().enumerate() {
            if let Value::Object(obj) = step {
                let mut ordered = Map::new();
                ordered.insert("step_id".to_owned(), json!(n + 1));
                ordered.append(obj);
                *obj = ordered;
            }
        }
        if steps.is_empty() {
            // ATIF requires at least one step.
            steps.push(json!({ "step_id": 1, "source": "system", "message": "" }));
        }
        let model = self
            .trace
            .agents
            .iter()
            .find(|a| a.name == agent)
            .and_then(|a| a.model.clone());
        let mut agent_obj = Map::new();
        agent_obj.insert("name".to_owned(), json!(agent));
        agent_obj.insert(
            "version".to_owned(),
            self.trace
                .metadata
                .get("agent.version")
                .cloned()
                .unwrap_or_else(|| json!("unknown")),
        );
        if let Some(m) = model {
            agent_obj.insert("model_name".to_owned(), json!(m));
        }
        json!({
            "schema_version": SCHEMA_VERSION,
            "trajectory_id": id,
            "agent": Value::Object(agent_obj),
            "steps": steps,
        })
    }

    /// An Agent span (not a trajectory's own top) whose agent is not this trajectory's.
    fn is_sub_agent(&self, i: usize, agent: &str, tops: &[usize]) -> bool {
        let span = self.span(i);
        span.kind == SpanKind::Agent
            && !tops.contains(&i)
            && span.agent.as_deref().unwrap_or(span.name.as_str()) != agent
    }

    /// A delegation to an agent that is written as a sub-trajectory: the reader rebuilds
    /// it from the `subagent_trajectory_ref`, so it is not written twice.
    fn regenerated_handoff(&self, span: &Span) -> bool {
        let Some(h) = span
            .handoff
            .as_ref()
            .filter(|_| span.kind == SpanKind::Handoff)
        else {
            return false;
        };
        self.trace.spans.iter().any(|s| {
            s.kind == SpanKind::Agent
                && s.parent.is_some()
                && s.agent.as_deref().unwrap_or(s.name.as_str()) == h.to
        })
    }

    /// Tool spans under `i` that belong to this trajectory (not inside a sub-agent).
    fn tool_descendants(&self, i: usize, agent: &str, tops: &[usize]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = self.children[i].clone();
        let mut guard = 0usize;
        while let Some(c) = stack.pop() {
            guard += 1;
            if guard > self.trace.spans.len() {
                break;
            }
            if self.is_sub_agent(c, agent, tops) {
                continue;
            }
            if self.span(c).kind == SpanKind::Tool {
                out.push(c);
            }
            if matches!(
                self.span(c).kind,
                SpanKind::Tool | SpanKind::Step | SpanKind::Other
            ) {
                stack.extend(self.children[c].iter().copied());
            }
        }
        out.sort_unstable();
        out
    }

    fn llm_step(
        &self,
        span: &Span,
        tools: &[usize],
        agent: &str,
        subs: &mut Vec<Value>,
        ids: &mut HashSet<String>,
    ) -> Map<String, Value> {
        let mut step = base_step(span);
        step.insert("source".to_owned(), json!("agent"));
        let llm = span.llm.as_ref();
        if let Some(model) = llm.and_then(|l| l.model()) {
            step.insert("model_name".to_owned(), json!(model));
        }
        let mut reasoning = Vec::new();
        let mut texts = Vec::new();
        for msg in llm.map_or(&[][..], |l| l.output_messages.as_slice()) {
            for part in &msg.parts {
                match part {
                    Part::Reasoning { text } => reasoning.push(text.clone()),
                    Part::Text { text } => texts.push(text.clone()),
                    _ => {}
                }
            }
        }
        let message = span
            .output
            .as_ref()
            .map_or_else(|| texts.join("\n"), |p| p.text.clone());
        step.insert("message".to_owned(), json!(message));
        if !reasoning.is_empty() {
            step.insert("reasoning_content".to_owned(), json!(reasoning.join("\n")));
        }
        if let Some(v) = llm.and_then(|l| l.params.get("reasoning_effort")) {
            step.insert("reasoning_effort".to_owned(), v.clone());
        }
        let aggregate = span.usage_scope == UsageScope::Subtree;
        let known_count = span
            .attributes
            .get("llm_call_count")
            .and_then(Value::as_u64)
            .filter(|c| *c > 1);
        match (aggregate, known_count) {
            (false, _) => {
                step.insert("llm_call_count".to_owned(), json!(1));
                if let Some(m) = metrics(span.usage.as_deref(), span) {
                    step.insert("metrics".to_owned(), m);
                }
            }
            (true, Some(count)) => {
                step.insert("llm_call_count".to_owned(), json!(count));
                if let Some(m) = metrics(span.usage.as_deref(), span) {
                    step.insert("metrics".to_owned(), m);
                }
            }
            (true, None) => {
                step.insert("llm_call_count".to_owned(), json!(1));
                if let Some(m) = metrics(span.usage.as_deref(), span) {
                    set_extra(&mut step, "aggregate_metrics", m);
                }
            }
        }
        self.attach_tools(&mut step, tools, subs, ids);
        self.speaker(&mut step, agent, span.agent.as_deref());
        step
    }

    /// Writes `tool_calls` and their `observation.results`; sub-agents started by a tool are
    /// embedded and referenced from its result.
    fn attach_tools(
        &self,
        step: &mut Map<String, Value>,
        tools: &[usize],
        subs: &mut Vec<Value>,
        ids: &mut HashSet<String>,
    ) {
        if tools.is_empty() {
            return;
        }
        let mut calls = Vec::new();
        let mut results = Vec::new();
        let mut used_ids = HashSet::new();
        for (k, &t) in tools.iter().enumerate() {
            let span = self.span(t);
            let tool = span.tool.as_ref();
            let name = tool.map_or_else(|| span.name.clone(), |tc| tc.name.clone());
            let mut call_id = tool
                .and_then(|tc| tc.call_id.clone())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| {
                    if span.id.is_empty() {
                        format!("call-{k}")
                    } else {
                        span.id.clone()
                    }
                });
            if !used_ids.insert(call_id.clone()) {
                call_id = format!("{call_id}#{k}");
                used_ids.insert(call_id.clone());
            }
            let arguments = match tool.map(|tc| &tc.arguments) {
                Some(Value::Object(o)) => Value::Object(o.clone()),
                Some(Value::Null) | None => span
                    .input
                    .as_deref()
                    .map_or_else(|| json!({}), payload_json_object),
                Some(other) => json!({ "input": other }),
            };
            calls.push(
                json!({ "tool_call_id": call_id, "function_name": name, "arguments": arguments }),
            );

            let mut result = Map::new();
            result.insert("source_call_id".to_owned(), json!(call_id));
            let content = tool.and_then(|tc| tc.result.clone()).or_else(|| {
                span.output
                    .as_ref()
                    .map(|p| p.json.clone().unwrap_or_else(|| json!(p.text)))
            });
            if let Some(c) = content {
                // ATIF content is text (or content parts); structured results are serialized.
                let c = if c.is_string() {
                    c
                } else {
                    json!(c.to_string())
                };
                result.insert("content".to_owned(), c);
            }
            let failed = span.status == Status::Error || tool.is_some_and(|tc| tc.is_error);
            if failed {
                let mut extra = Map::new();
                extra.insert("is_error".to_owned(), json!(true));
                if let Some(e) = &span.error {
                    extra.insert("error".to_owned(), json!(e.message));
                }
                result.insert("extra".to_owned(), Value::Object(extra));
            }
            let sub_refs: Vec<Value> = self.children[t]
                .iter()
                .filter(|&&c| self.span(c).kind == SpanKind::Agent)
                .map(|&c| json!({ "trajectory_id": self.write_sub(c, subs, ids) }))
                .collect();
            if !sub_refs.is_empty() {
                result.insert("subagent_trajectory_ref".to_owned(), Value::Array(sub_refs));
            }
            results.push(Value::Object(result));
        }
        step.insert("tool_calls".to_owned(), Value::Array(calls));
        step.insert("observation".to_owned(), json!({ "results": results }));
    }

    /// Writes the Agent span `i` and its work as an embedded trajectory; returns its id.
    fn write_sub(&self, i: usize, subs: &mut Vec<Value>, ids: &mut HashSet<String>) -> String {
        let span = self.span(i);
        let agent = span
            .agent
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| span.name.clone());
        let mut id = if span.id.is_empty() {
            format!("sub-{i}")
        } else {
            span.id.clone()
        };
        while !ids.insert(id.clone()) {
            id = format!("{id}-{i}");
        }
        let sub = self.trajectory(&agent, &[i], &id, subs, ids);
        let mut sub = sub;
        if let (Value::Object(obj), Some(session)) = (&mut sub, &self.trace.session_id) {
            obj.insert("session_id".to_owned(), json!(session));
        }
        subs.push(sub);
        id
    }

    /// Records the speaker when it is not the trajectory's agent.
    fn speaker(&self, step: &mut Map<String, Value>, agent: &str, speaker: Option<&str>) {
        let _ = self;
        if let Some(s) = speaker.filter(|s| *s != agent) {
            set_extra(step, "agent_name", json!(s));
        }
    }
}

fn base_step(span: &Span) -> Map<String, Value> {
    let mut step = Map::new();
    if let Some(t) = span.start_ns {
        step.insert("timestamp".to_owned(), json!(format_time(t)));
    }
    step
}

/// Sets `extra.<key>` on a step, creating `extra` when missing.
fn set_extra(step: &mut Map<String, Value>, key: &str, value: Value) {
    let mut extra = match step.remove("extra") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    extra.insert(key.to_owned(), value);
    step.insert("extra".to_owned(), Value::Object(extra));
}

fn payload_text(span: &Span) -> String {
    span.input
        .as_ref()
        .or(span.output.as_ref())
        .map(|p| p.text.clone())
        .unwrap_or_default()
}

fn payload_json_object(p: &Payload) -> Value {
    match &p.json {
        Some(Value::Object(o)) => Value::Object(o.clone()),
        Some(other) => json!({ "input": other }),
        None if p.text.is_empty() => json!({}),
        None => json!({ "input": p.text }),
    }
}

fn metrics(usage: Option<&Usage>, span: &Span) -> Option<Value> {
    let mut m = Map::new();
    if let Some(u) = usage {
        if let Some(v) = u.input {
            m.insert("prompt_tokens".to_owned(), json!(v));
        }
        if let Some(v) = u.output {
            m.insert("completion_tokens".to_owned(), json!(v));
        }
        if let Some(v) = u.cache_read {
            m.insert("cached_tokens".to_owned(), json!(v));
        }
    }
    if let Some(c) = span
        .cost
        .as_ref()
        .filter(|c| c.source == CostSource::Reported && c.currency == "USD")
    {
        m.insert("cost_usd".to_owned(), json!(c.amount));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Totals over the `metrics` actually written, in the root and every sub-trajectory (so a
/// reader's per-step sums match), plus the root step count.
fn final_metrics(root_steps: Option<&Value>, subs: &[Value]) -> Value {
    let mut prompt = 0u64;
    let mut completion = 0u64;
    let mut cached = 0u64;
    let mut cost = 0f64;
    let mut any_cost = false;
    let all_steps = root_steps
        .into_iter()
        .chain(subs.iter().filter_map(|s| s.get("steps")))
        .filter_map(Value::as_array)
        .flatten();
    for m in all_steps.filter_map(|s| s.get("metrics")) {
        prompt += m.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
        completion += m
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        cached += m.get("cached_tokens").and_then(Value::as_u64).unwrap_or(0);
        if let Some(c) = m.get("cost_usd").and_then(Value::as_f64) {
            cost += c;
            any_cost = true;
        }
    }
    let mut out = Map::new();
    out.insert("total_prompt_tokens".to_owned(), json!(prompt));
    out.insert("total_completion_tokens".to_owned(), json!(completion));
    out.insert("total_cached_tokens".to_owned(), json!(cached));
    if any_cost {
        out.insert("total_cost_usd".to_owned(), json!(cost));
    }
    out.insert(
        "total_steps".to_owned(),
        json!(root_steps.and_then(Value::as_array).map_or(0, Vec::len)),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::to_atif;
    use crate::model::{Format, SpanKind, Trace};
    use crate::testing::{fixture, inline};

    fn tools(t: &Trace) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = t
            .spans_of(SpanKind::Tool)
            .filter_map(|s| s.tool.as_ref())
            .map(|tc| (tc.name.clone(), tc.is_error))
            .collect();
        out.sort();
        out
    }

    /// Writes `rel` as ATIF, reads the result back, and compares what must survive.
    fn round_trip(rel: &str) -> (Trace, Trace) {
        let (_, traces) = fixture(rel);
        let original = traces[0].trace.clone();
        let written = serde_json::to_string_pretty(&to_atif(&original)).unwrap();
        let (summary, back) = inline("converted.json", &written);
        assert_eq!(summary.format, Format::Atif, "{rel}");
        let reread = back[0].trace.clone();
        for agent in &original.agents {
            assert!(
                reread.agents.iter().any(|a| a.name == agent.name),
                "{rel}: agent {} lost",
                agent.name
            );
        }
        assert_eq!(tools(&reread), tools(&original), "{rel}: tools");
        assert_eq!(
            reread.usage.input, original.usage.input,
            "{rel}: input tokens"
        );
        assert_eq!(
            reread.usage.output, original.usage.output,
            "{rel}: output tokens"
        );
        assert_eq!(
            reread.usage.cache_read, original.usage.cache_read,
            "{rel}: cached tokens"
        );
        assert_eq!(
            reread.usage.total_tokens(),
            original.usage.total_tokens(),
            "{rel}: total tokens"
        );
        (original, reread)
    }

    #[test]
    fn atif_fixture_round_trips() {
        let (original, reread) = round_trip("atif/trip-planner.json");
        assert_eq!(
            reread.spans_of(SpanKind::Handoff).count(),
            original.spans_of(SpanKind::Handoff).count()
        );
        assert_eq!(
            reread.spans_of(SpanKind::Llm).count(),
            original.spans_of(SpanKind::Llm).count()
        );
        assert_eq!(
            reread.cost.as_ref().map(|c| c.source),
            original.cost.as_ref().map(|c| c.source)
        );
        assert!((reread.cost.unwrap().amount - original.cost.unwrap().amount).abs() < 1e-12);
        assert_eq!(reread.task, original.task);
        assert!(reread.warnings.is_empty(), "{:?}", reread.warnings);
        // The sub-agent is still nested under the tool that started it.
        let scout = reread
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Agent && s.name == "flight-scout")
            .unwrap();
        assert_eq!(
            reread.spans[scout.parent.unwrap() as usize].kind,
            SpanKind::Tool
        );
    }

    #[test]
    fn who_and_when_round_trips_with_speakers() {
        let (original, reread) = round_trip("who-and-when/algorithm-generated.json");
        // Each speaker keeps its messages and tool runs. (A tool run outside a model call
        // comes back as an agent step holding the tool call, so there may be more spans.)
        for name in [
            "Data_Analysis_Expert",
            "Verification_Expert",
            "Computer_terminal",
        ] {
            let count = |t: &Trace, tools: bool| {
                t.spans
                    .iter()
                    .filter(|s| s.kind != SpanKind::Agent && s.agent.as_deref() == Some(name))
                    .filter(|s| !tools || s.kind == SpanKind::Tool)
                    .count()
            };
            assert!(count(&reread, false) >= count(&original, false), "{name}");
            assert_eq!(count(&reread, true), count(&original, true), "{name}");
        }
    }

    #[test]
    fn generic_chat_round_trips() {
        let (original, reread) = round_trip("generic-chat/support-chat.json");
        assert_eq!(
            reread.spans_of(SpanKind::Llm).count(),
            original.spans_of(SpanKind::Llm).count()
        );
        assert_eq!(reread.spans_of(SpanKind::Human).count(), 1);
        assert!(reread.agents.iter().any(|a| a.name == "escalation"));
    }

    #[test]
    fn empty_trace_is_still_valid_atif() {
        let v = to_atif(&Trace::default());
        assert!(
            v["schema_version"]
                .as_str()
                .unwrap()
                .starts_with("ATIF-v1.")
        );
        assert_eq!(v["steps"].as_array().unwrap().len(), 1);
        let (_, back) = inline("e.json", &v.to_string());
        assert_eq!(back.len(), 1);
    }
}
