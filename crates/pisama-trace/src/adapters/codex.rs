//! Codex CLI rollouts and the `codex exec --json` event stream (`formats.md` §8.2, §8.5).
//!
//! **Rollout** (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`): every line is
//! `{timestamp, type, payload}` with `type` one of `session_meta`, `turn_context`,
//! `response_item` (OpenAI Responses items), `event_msg` (UI events) and `compacted`. Early-2025
//! files instead start with a bare `{id, timestamp, instructions}` line followed by unwrapped
//! response items. Mapping decisions:
//!
//! - **Tree.** One root `Agent` span "codex" (a sub-agent thread's own rollout, whose
//!   `session_meta.source` names a `subagent`, is rooted at that agent instead). A turn `Step`
//!   span opens at each `task_started` or `user_message`; everything of the turn is inside it.
//! - **Model calls.** Codex writes a `token_count` event after each model response, so one
//!   `Llm` span is emitted per `token_count` (with non-null `info`), holding the reasoning,
//!   assistant text and tool calls written since the previous one. Its usage is
//!   `last_token_usage` (`input_tokens` already includes `cached_input_tokens`; `output_tokens`
//!   includes reasoning). A repeated `token_count` with an unchanged cumulative total is a
//!   duplicate and skipped. The final `total_token_usage` is kept on the root span as a
//!   `Subtree` cross-check, with a warning when it disagrees with the per-call sum. A call runs
//!   from the model's previous input (prompt or tool output) to its `token_count`, both
//!   inferred. Files without `token_count` (early rollouts) end a call at the first tool
//!   output or prompt that follows it, and have no usage.
//! - **Duplicates.** User prompts and assistant text appear twice (as `event_msg` and as
//!   `response_item`). Prompts are taken from `user_message` events when the file has any, and
//!   assistant text from `message` items when it has any; injected context (`<environment_context>`,
//!   `<user_instructions>`) is a `System` span.
//! - **Tools.** `function_call`, `custom_tool_call` (e.g. `apply_patch`), `local_shell_call` and
//!   `web_search_call` are `Tool` spans beside their `Llm` span (with a `FollowsFrom` link to
//!   it); outputs pair by `call_id`. An output is a JSON string `{"output", "metadata":
//!   {"exit_code"}}`, a plain "Exit code: N" text, or `{content, success}`; a non-zero exit code
//!   or `success: false` fails the tool, and so do `exec_command_end`, `patch_apply_end` and
//!   `mcp_tool_call_end` events reporting failure.
//! - **Sub-agents** (multi-agent builds, medium confidence): `spawn_agent` → `Tool` +
//!   `Handoff(Delegate)` + an `Agent` span under the tool, named after the `agent_type`
//!   argument or the nickname/role of `collab_agent_spawn_end`, else the new thread id; the
//!   agent's own work is in its own rollout. `wait` outputs and `collab_waiting_end` statuses
//!   complete or fail it. `send_input` → `Handoff(Message)`.
//! - **Errors.** `error` and `turn_aborted` events are failed `System` spans and fail their
//!   turn; `stream_error` (a retried disconnect) is a failed span marked handled.
//! - **`step`** is the 0-based index of the line in the file.
//!
//! **`codex exec --json`**: `thread.started`, `turn.started`, `item.started|updated|completed`,
//! `turn.completed{usage}`, `turn.failed`, `error`. Items become `Tool` spans
//! (`command_execution`, `file_change`, `mcp_tool_call`, `web_search`, `collab_tool_call`) or
//! `System` spans (`todo_list`, `error`). The stream reports usage per turn only, so each turn
//! gets one `Llm` summary span holding the turn's reasoning and messages with the turn's usage
//! (attribute `llm.calls = "aggregate"`), which keeps the trace totals right. The stream has no
//! timestamps.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::{AdapterError, AdapterResult, Input, JsonLine, Parsed, lines_of};
use crate::builder::TraceBuilder;
use crate::model::{
    AgentInfo, ErrorInfo, Format, Handoff, HandoffMode, Link, LinkKind, LlmCall, Message, Part,
    Payload, Role, Span, SpanKind, Status, ToolCall, Usage, UsageScope,
};
use crate::util::{as_f64, as_u64, flatten_into, get, get_str, maybe_json, parse_time, truncate};

const AGENT: &str = "codex";
/// Response item types of early rollouts, which are written without an envelope.
const RESPONSE_ITEMS: [&str; 8] = [
    "message",
    "reasoning",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "local_shell_call",
    "web_search_call",
];
/// `event_msg` types that only repeat what other lines say, or drive the UI.
const QUIET_EVENTS: [&str; 30] = [
    "agent_reasoning",
    "agent_reasoning_raw_content",
    "agent_reasoning_section_break",
    "agent_message_delta",
    "agent_reasoning_delta",
    "reasoning_content_delta",
    "exec_command_begin",
    "exec_command_output_delta",
    "patch_apply_begin",
    "mcp_tool_call_begin",
    "web_search_begin",
    "web_search_end",
    "turn_diff",
    "plan_update",
    "background_event",
    "session_configured",
    "get_history_entry_response",
    "list_custom_prompts_response",
    "mcp_list_tools_response",
    "shutdown_complete",
    "collab_agent_spawn_begin",
    "collab_agent_interaction_begin",
    "collab_agent_interaction_end",
    "collab_waiting_begin",
    "collab_close_begin",
    "collab_close_end",
    "context_compacted",
    "item_started",
    "item_completed",
    "view_image_tool_call",
];

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let lines = lines_of(input);
    if lines.is_empty() {
        return Err(AdapterError::new(
            "expected Codex JSONL: rollout lines {timestamp, type, payload} or `codex exec --json` events",
        ));
    }
    let is_exec = lines.iter().take(20).any(|l| {
        get_str(&l.value, &["type"]).is_some_and(|t| {
            t.starts_with("thread.") || t.starts_with("turn.") || t.starts_with("item.")
        })
    });
    if is_exec {
        Ok(vec![Parsed::unlabelled(parse_exec(input, &lines))])
    } else {
        parse_rollout(input, &lines)
    }
}

// ---- rollouts ----------------------------------------------------------------------------

/// One rollout line, with the envelope (or its absence in early files) taken apart.
struct Record<'a> {
    pos: usize,
    line: u32,
    ts: Option<i64>,
    kind: &'a str,
    payload: &'a Value,
}

fn normalize(pos: usize, jl: &JsonLine) -> Option<Record<'_>> {
    let v = &jl.value;
    let ts = get_str(v, &["timestamp"]).and_then(parse_time);
    let kind = get_str(v, &["type"]);
    if let (Some(kind), Some(payload)) = (kind, v.get("payload")) {
        return Some(Record {
            pos,
            line: jl.line,
            ts,
            kind,
            payload,
        });
    }
    // Early rollouts: a bare header, then unwrapped items and `record_type` state lines.
    if pos == 0 && kind.is_none() && v.get("id").is_some() {
        return Some(Record {
            pos,
            line: jl.line,
            ts,
            kind: "session_meta",
            payload: v,
        });
    }
    match kind {
        Some(t) if RESPONSE_ITEMS.contains(&t) => Some(Record {
            pos,
            line: jl.line,
            ts,
            kind: "response_item",
            payload: v,
        }),
        Some(t) => Some(Record {
            pos,
            line: jl.line,
            ts,
            kind: t,
            payload: v,
        }),
        None if v.get("record_type").is_some() => None,
        None => Some(Record {
            pos,
            line: jl.line,
            ts,
            kind: "",
            payload: v,
        }),
    }
}

/// A model response being collected until its `token_count`.
#[derive(Debug, Default)]
struct Pending {
    parts: Vec<Part>,
    tools: Vec<usize>,
    first: Option<(usize, u32, Option<i64>)>,
    /// The model's input was complete at this time (the previous prompt or tool output).
    start: Option<i64>,
    last_ts: Option<i64>,
}

#[derive(Debug)]
struct Spawned {
    call_id: String,
    tool: usize,
    handoff: usize,
    agent_type: Option<String>,
    nickname: Option<String>,
    model: Option<String>,
    prompt: Option<String>,
    thread: Option<String>,
    /// (time, outcome word, message) from a wait result or status event.
    outcome: Option<(Option<i64>, String, Option<String>)>,
}

impl Spawned {
    fn name(&self) -> String {
        self.agent_type
            .clone()
            .or_else(|| self.nickname.clone())
            .or_else(|| self.thread.clone())
            .unwrap_or_else(|| "subagent".to_owned())
    }
}

struct Rollout<'i> {
    input: &'i Input,
    b: TraceBuilder,
    root: usize,
    agent: String,
    turn: Option<usize>,
    turns: usize,
    turn_has_prompt: bool,
    turn_context: Option<Value>,
    provider: Option<String>,
    pending: Pending,
    pending_input: Vec<Message>,
    /// When the model last received new input.
    boundary: Option<i64>,
    tools: HashMap<String, usize>,
    spawned: Vec<Spawned>,
    last_total: Option<Value>,
    per_call: Usage,
    calls: usize,
    prompts_from_events: bool,
    /// Files without `token_count` (early rollouts) end a model call at its tool outputs.
    calls_end_at_outputs: bool,
    text_from_items: bool,
    reasoning_from_items: bool,
    warned: HashSet<String>,
    orphan_outputs: usize,
    last_turn_failed: Option<ErrorInfo>,
    any_turn_completed: bool,
}

fn parse_rollout(input: &Input, raw: &[JsonLine]) -> AdapterResult {
    let lines: Vec<Record<'_>> = raw
        .iter()
        .enumerate()
        .filter_map(|(pos, jl)| normalize(pos, jl))
        .collect();
    let meta = lines
        .iter()
        .find(|l| l.kind == "session_meta")
        .map(|l| l.payload);
    let id = meta
        .and_then(|m| get_str(m, &["id"]))
        .map_or_else(|| input.synth_id("codex"), str::to_owned);
    // A sub-agent thread's own rollout is rooted at that agent.
    let source = meta.and_then(|m| m.get("source"));
    let sub = source.and_then(|s| s.get("subagent"));
    let agent = match sub {
        Some(s) => find_str(s, &["agent_nickname", "agent_role", "agent_type"])
            .unwrap_or_else(|| "subagent".to_owned()),
        None => AGENT.to_owned(),
    };
    let mut b = TraceBuilder::new(Format::Codex, id.clone());
    b.trace_mut().session_id = Some(id);
    let root = b.push(Span {
        id: format!("agent-{agent}"),
        kind: SpanKind::Agent,
        name: agent.clone(),
        agent: Some(agent.clone()),
        source: input.at_line(raw.first().map_or(1, |l| l.line)),
        ..Span::default()
    });
    if let Some(s) = sub {
        let mut parent = None;
        if let Some(thread) = find_str(s, &["parent_thread_id"]) {
            b.trace_mut()
                .metadata
                .insert("parent_thread_id".to_owned(), Value::from(thread.clone()));
            parent = Some(thread);
        }
        b.agent(AgentInfo {
            name: agent.clone(),
            role: Some("subagent".to_owned()),
            parent_agent: parent,
            ..AgentInfo::default()
        });
    }
    let mut r = Rollout {
        input,
        b,
        root,
        agent,
        turn: None,
        turns: 0,
        turn_has_prompt: false,
        turn_context: None,
        provider: None,
        pending: Pending::default(),
        pending_input: Vec::new(),
        boundary: None,
        tools: HashMap::new(),
        spawned: Vec::new(),
        last_total: None,
        per_call: Usage::default(),
        calls: 0,
        prompts_from_events: lines.iter().any(|l| {
            l.kind == "event_msg" && get_str(l.payload, &["type"]) == Some("user_message")
        }),
        calls_end_at_outputs: !lines
            .iter()
            .any(|l| l.kind == "event_msg" && get_str(l.payload, &["type"]) == Some("token_count")),
        text_from_items: lines.iter().any(|l| {
            l.kind == "response_item"
                && get_str(l.payload, &["type"]) == Some("message")
                && get_str(l.payload, &["role"]) == Some("assistant")
        }),
        reasoning_from_items: lines.iter().any(|l| {
            l.kind == "response_item" && get_str(l.payload, &["type"]) == Some("reasoning")
        }),
        warned: HashSet::new(),
        orphan_outputs: 0,
        last_turn_failed: None,
        any_turn_completed: false,
    };
    let mut known = 0usize;
    for l in &lines {
        match l.kind {
            "session_meta" => {
                r.session_meta(l);
                known += 1;
            }
            "turn_context" => {
                r.turn_context = Some(l.payload.clone());
                if let Some(turn) = r.turn {
                    let attrs = context_attributes(l.payload);
                    r.b.span_mut(turn).attributes.extend(attrs);
                }
                known += 1;
            }
            "response_item" => {
                r.response_item(l);
                known += 1;
            }
            "event_msg" => {
                r.event(l);
                known += 1;
            }
            "compacted" => {
                let mut span = r.span(l, SpanKind::System, "compaction");
                span.output = (get_str(l.payload, &["message"]).map(Payload::text)).map(Box::new);
                if let Some(history) = l
                    .payload
                    .get("replacement_history")
                    .and_then(Value::as_array)
                {
                    span.attributes.insert(
                        "replacement_history.items".to_owned(),
                        Value::from(history.len()),
                    );
                }
                r.push(span);
                known += 1;
            }
            "" => r.warn_once(
                "<none>",
                format!("line {}: no `type`; such lines were skipped", l.line),
            ),
            other => r.warn_once(
                other,
                format!(
                    "line {}: unknown line type `{other}`; lines of this type were skipped",
                    l.line
                ),
            ),
        }
    }
    if known == 0 {
        return Err(AdapterError::new(
            "no rollout lines found; expected {timestamp, type, payload} with type session_meta/turn_context/response_item/event_msg",
        ));
    }
    r.flush(None, None);
    r.close_turn();
    Ok(vec![Parsed::unlabelled(r.finish())])
}

fn find_str(v: &Value, keys: &[&str]) -> Option<String> {
    // Sub-agent sources nest their fields one level down (`{"thread_spawn": {...}}`).
    keys.iter()
        .find_map(|k| get_str(v, &[k]))
        .or_else(|| {
            v.as_object()?
                .values()
                .find_map(|inner| keys.iter().find_map(|k| get_str(inner, &[k])))
        })
        .map(str::to_owned)
}

fn context_attributes(ctx: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for key in [
        "model",
        "effort",
        "summary",
        "approval_policy",
        "sandbox_policy",
        "cwd",
    ] {
        if let Some(v) = ctx.get(key).filter(|v| !v.is_null()) {
            flatten_into(&format!("turn_context.{key}"), v, &mut out);
        }
    }
    out
}

impl Rollout<'_> {
    fn warn_once(&mut self, key: &str, message: String) {
        if self.warned.insert(key.to_owned()) {
            self.b.warn(message);
        }
    }

    fn span(&self, l: &Record<'_>, kind: SpanKind, name: &str) -> Span {
        Span {
            id: format!("L{}", l.line),
            kind,
            name: name.to_owned(),
            step: Some(l.pos as u32),
            start_ns: l.ts,
            end_ns: l.ts,
            source: self.input.at_line(l.line),
            ..Span::default()
        }
    }

    fn parent(&self) -> usize {
        self.turn.unwrap_or(self.root)
    }

    fn push(&mut self, span: Span) -> usize {
        let parent = self.parent();
        self.b.push_child(parent, span)
    }

    fn session_meta(&mut self, l: &Record<'_>) {
        let p = l.payload;
        let trace = self.b.trace_mut();
        if trace.format_version.is_none() {
            trace.format_version = Some(
                get_str(p, &["cli_version"])
                    .map_or_else(|| "codex".to_owned(), |v| format!("codex/{v}")),
            );
        }
        for key in [
            "cwd",
            "originator",
            "source",
            "model_provider",
            "git",
            "instructions",
            "timestamp",
        ] {
            if let Some(v) = p.get(key).filter(|v| !v.is_null())
                && !trace.metadata.contains_key(key)
            {
                let v = match v {
                    Value::String(s) => Value::String(truncate(s, 2000)),
                    other => other.clone(),
                };
                trace.metadata.insert(key.to_owned(), v);
            }
        }
        if self.provider.is_none() {
            self.provider = get_str(p, &["model_provider"]).map(str::to_owned);
        }
    }

    // ---- turns ---------------------------------------------------------------------

    fn open_turn(&mut self, l: &Record<'_>) {
        self.flush(None, None);
        self.close_turn();
        self.turns += 1;
        let mut span = self.span(l, SpanKind::Step, &format!("turn {}", self.turns));
        span.id = format!("turn-{}", self.turns);
        span.end_ns = None;
        if let Some(ctx) = &self.turn_context {
            span.attributes = context_attributes(ctx);
        }
        for key in ["turn_id", "model_context_window"] {
            if let Some(v) = l.payload.get(key).filter(|v| !v.is_null()) {
                span.attributes.insert(key.to_owned(), v.clone());
            }
        }
        let root = self.root;
        self.turn = Some(self.b.push_child(root, span));
        self.turn_has_prompt = false;
        self.last_turn_failed = None;
    }

    fn close_turn(&mut self) {
        self.turn = None;
    }

    fn extend_turn(&mut self, ts: Option<i64>) {
        if let (Some(t), Some(turn)) = (ts, self.turn) {
            let span = self.b.span_mut(turn);
            span.end_ns = Some(span.end_ns.map_or(t, |e| e.max(t)));
            span.time_inferred = true;
        }
    }

    fn fail_turn(&mut self, error: ErrorInfo) {
        if let Some(turn) = self.turn {
            let span = self.b.span_mut(turn);
            span.status = Status::Error;
            span.error = Some(Box::new(error.clone()));
        }
        self.last_turn_failed = Some(error);
    }

    fn prompt(&mut self, l: &Record<'_>, text: String) {
        if self.turn.is_none() || self.turn_has_prompt {
            self.open_turn(l);
        }
        self.turn_has_prompt = true;
        let mut span = self.span(l, SpanKind::Human, "user");
        span.end_ns = None;
        span.input = Some(Box::new(Payload::text(text.clone())));
        self.push(span);
        self.pending_input.push(Message::text(Role::User, text));
        self.boundary = l.ts;
    }

    // ---- events --------------------------------------------------------------------

    fn event(&mut self, l: &Record<'_>) {
        let p = l.payload;
        let kind = get_str(p, &["type"]).unwrap_or("");
        self.extend_turn(l.ts);
        match kind {
            "task_started" => self.open_turn(l),
            "user_message" => {
                if self.prompts_from_events {
                    self.flush(None, None);
                    let text = p.get("message").map(value_text).unwrap_or_default();
                    self.prompt(l, text);
                }
            }
            "agent_message" => {
                if !self.text_from_items {
                    let text = p.get("message").map(value_text).unwrap_or_default();
                    self.add_pending(l, Part::Text { text });
                }
            }
            "agent_reasoning" => {
                if !self.reasoning_from_items {
                    let text = p.get("text").map(value_text).unwrap_or_default();
                    self.add_pending(l, Part::Reasoning { text });
                }
            }
            "token_count" => self.token_count(l),
            "task_complete" => {
                self.flush(None, None);
                if let Some(turn) = self.turn {
                    let span = self.b.span_mut(turn);
                    if span.status != Status::Error {
                        span.status = Status::Ok;
                    }
                    if let Some(text) = get_str(p, &["last_agent_message"]) {
                        span.output = Some(Box::new(Payload::text(text)));
                    }
                }
                self.any_turn_completed = true;
                self.close_turn();
            }
            "turn_aborted" => {
                self.flush(None, None);
                let reason = get_str(p, &["reason"]).unwrap_or("aborted").to_owned();
                let error = ErrorInfo {
                    kind: Some("turn_aborted".to_owned()),
                    message: reason,
                    ..ErrorInfo::default()
                };
                let mut span = self.span(l, SpanKind::System, "turn_aborted");
                span.status = Status::Error;
                span.error = Some(Box::new(error.clone()));
                self.push(span);
                self.fail_turn(error);
                self.close_turn();
            }
            "error" | "stream_error" => {
                let message = get_str(p, &["message"]).unwrap_or(kind).to_owned();
                let retried = kind == "stream_error";
                let error = ErrorInfo {
                    kind: Some(kind.to_owned()),
                    message: first_line(&message),
                    handled: retried,
                    ..ErrorInfo::default()
                };
                let mut span = self.span(l, SpanKind::System, kind);
                span.status = Status::Error;
                span.error = Some(Box::new(error.clone()));
                span.attributes = payload_attributes(p, &["type", "message"]);
                self.push(span);
                if !retried {
                    self.fail_turn(error);
                }
            }
            "warning" => {
                let mut span = self.span(l, SpanKind::System, "warning");
                span.output = (get_str(p, &["message"]).map(Payload::text)).map(Box::new);
                self.push(span);
            }
            "exec_command_end" => self.exec_end(l),
            "patch_apply_end" => {
                let ok = p.get("success").and_then(Value::as_bool);
                if let (Some(&tool), Some(false)) =
                    (get_str(p, &["call_id"]).and_then(|c| self.tools.get(c)), ok)
                {
                    let stderr = get_str(p, &["stderr"]).unwrap_or("patch failed").to_owned();
                    fail(self.b.span_mut(tool), Some("patch_apply"), &stderr);
                }
            }
            "mcp_tool_call_end" => {
                let result = p.get("result");
                let err = result.and_then(|r| r.get("Err")).map(value_text);
                let flagged = result
                    .and_then(|r| r.get("Ok"))
                    .and_then(|ok| ok.get("isError"))
                    .and_then(Value::as_bool)
                    == Some(true);
                if let Some(&tool) = get_str(p, &["call_id"]).and_then(|c| self.tools.get(c))
                    && (err.is_some() || flagged)
                {
                    fail(
                        self.b.span_mut(tool),
                        Some("mcp"),
                        err.as_deref().unwrap_or("MCP tool reported isError"),
                    );
                }
            }
            "collab_agent_spawn_end" => {
                if let Some(s) = get_str(p, &["call_id"])
                    .and_then(|c| self.spawned.iter_mut().find(|s| s.call_id == c))
                {
                    if let Some(t) = find_str(p, &["new_thread_id", "new_process_id"]) {
                        s.thread = Some(t);
                    }
                    s.nickname = s
                        .nickname
                        .take()
                        .or_else(|| find_str(p, &["new_agent_nickname"]));
                    s.agent_type = s
                        .agent_type
                        .take()
                        .or_else(|| find_str(p, &["new_agent_role"]));
                    s.model = s.model.take().or_else(|| find_str(p, &["model"]));
                }
            }
            "collab_waiting_end" => {
                if let Some(statuses) = p.get("statuses") {
                    self.agent_statuses(statuses, l.ts);
                }
            }
            k if QUIET_EVENTS.contains(&k) => {}
            "" => self.warn_once(
                "<event>",
                format!("line {}: event_msg without a `type`; skipped", l.line),
            ),
            other => {
                self.warn_once(
                    &format!("event:{other}"),
                    format!(
                        "line {}: unknown event `{other}`; kept as system spans",
                        l.line
                    ),
                );
                let mut span = self.span(l, SpanKind::System, other);
                span.attributes = payload_attributes(p, &["type"]);
                self.push(span);
            }
        }
    }

    fn token_count(&mut self, l: &Record<'_>) {
        let Some(info) = l.payload.get("info").filter(|i| i.is_object()) else {
            // Rate-limit updates only.
            return;
        };
        let total = info.get("total_token_usage").cloned();
        if total.is_some() && total == self.last_total && self.pending.first.is_none() {
            // The same cumulative total again: a repeated event, not a new call.
            return;
        }
        let usage = info.get("last_token_usage").map(openai_usage);
        if let Some(u) = &usage {
            self.per_call.add(u);
        }
        self.calls += 1;
        self.last_total = total.or(self.last_total.take());
        let window = info.get("model_context_window").cloned();
        self.flush(Some((l, usage)), window);
    }

    fn exec_end(&mut self, l: &Record<'_>) {
        let p = l.payload;
        let Some(&tool) = get_str(p, &["call_id"]).and_then(|c| self.tools.get(c)) else {
            return;
        };
        let exit = p.get("exit_code").and_then(Value::as_i64);
        let span = self.b.span_mut(tool);
        if let Some(code) = exit {
            span.attributes
                .insert("exit_code".to_owned(), Value::from(code));
        }
        if span.output.is_none() {
            let text = get_str(p, &["aggregated_output"])
                .or_else(|| get_str(p, &["stdout"]))
                .unwrap_or_default();
            span.output = Some(Box::new(Payload::text(text)));
        }
        if let Some(code) = exit.filter(|c| *c != 0) {
            let detail = get_str(p, &["stderr"])
                .filter(|s| !s.trim().is_empty())
                .or_else(|| get_str(p, &["aggregated_output"]))
                .unwrap_or_default();
            fail(
                span,
                Some("exit_code"),
                &format!("exit code {code}: {}", last_line(detail)),
            );
        }
    }

    /// Statuses of sub-agent threads (`{thread: "running" | {"completed": msg} | {"errored": msg}}`).
    fn agent_statuses(&mut self, statuses: &Value, ts: Option<i64>) {
        let Some(map) = statuses.as_object() else {
            return;
        };
        for (thread, status) in map {
            let (word, message) = match status {
                Value::String(s) => (s.clone(), None),
                Value::Object(o) => match o.iter().next() {
                    Some((k, v)) => (k.clone(), v.as_str().map(str::to_owned)),
                    None => continue,
                },
                _ => continue,
            };
            // A final word replaces an earlier "running"; a later "running" does not.
            let is_final = matches!(
                word.as_str(),
                "completed" | "errored" | "shutdown" | "not_found"
            );
            if let Some(s) = self
                .spawned
                .iter_mut()
                .find(|s| s.thread.as_deref() == Some(thread.as_str()))
                && (is_final || s.outcome.is_none())
            {
                s.outcome = Some((ts, word, message));
            }
        }
    }

    // ---- response items ----------------------------------------------------------------

    fn add_pending(&mut self, l: &Record<'_>, part: Part) {
        if self.pending.first.is_none() {
            self.pending.first = Some((l.pos, l.line, l.ts));
            self.pending.start = self.boundary.or(l.ts);
        }
        self.pending.last_ts = l.ts.or(self.pending.last_ts);
        self.pending.parts.push(part);
    }

    fn response_item(&mut self, l: &Record<'_>) {
        let p = l.payload;
        let kind = get_str(p, &["type"]).unwrap_or("");
        self.extend_turn(l.ts);
        match kind {
            "message" => {
                let role = get_str(p, &["role"]).unwrap_or("");
                let text = p.get("content").map(value_text).unwrap_or_default();
                match role {
                    "assistant" => self.add_pending(l, Part::Text { text }),
                    "user" if text.trim_start().starts_with('<') => {
                        let mut span = self.span(l, SpanKind::System, "context");
                        span.input = Some(Box::new(Payload::text(text.clone())));
                        self.push(span);
                        self.pending_input.push(Message::text(Role::User, text));
                    }
                    "user" => {
                        if !self.prompts_from_events {
                            self.flush(None, None);
                            self.prompt(l, text);
                        }
                    }
                    _ => {
                        let mut span = self.span(
                            l,
                            SpanKind::System,
                            if role.is_empty() { "message" } else { role },
                        );
                        span.input = Some(Box::new(Payload::text(text.clone())));
                        self.push(span);
                        self.pending_input
                            .push(Message::text(Role::parse(role), text));
                    }
                }
            }
            "reasoning" => {
                let mut texts: Vec<String> = Vec::new();
                for key in ["summary", "content"] {
                    if let Some(items) = p.get(key).and_then(Value::as_array) {
                        texts.extend(
                            items
                                .iter()
                                .filter_map(|i| get_str(i, &["text"]))
                                .map(str::to_owned),
                        );
                    }
                }
                self.add_pending(
                    l,
                    Part::Reasoning {
                        text: texts.join("\n"),
                    },
                );
            }
            "function_call" | "custom_tool_call" | "local_shell_call" | "web_search_call" => {
                self.tool_call(l, kind);
            }
            "function_call_output" | "custom_tool_call_output" | "local_shell_call_output" => {
                self.tool_output(l);
            }
            "" => self.warn_once(
                "<item>",
                format!("line {}: response item without a `type`; skipped", l.line),
            ),
            other => {
                self.warn_once(
                    &format!("item:{other}"),
                    format!(
                        "line {}: unknown response item `{other}`; kept as system spans",
                        l.line
                    ),
                );
                let mut span = self.span(l, SpanKind::System, other);
                span.attributes = payload_attributes(p, &["type"]);
                self.push(span);
            }
        }
    }

    fn tool_call(&mut self, l: &Record<'_>, kind: &str) {
        let p = l.payload;
        let name = match kind {
            "local_shell_call" => "local_shell".to_owned(),
            "web_search_call" => "web_search".to_owned(),
            _ => get_str(p, &["name"]).unwrap_or("tool").to_owned(),
        };
        let call_id = get_str(p, &["call_id"])
            .or_else(|| get_str(p, &["id"]))
            .map_or_else(|| format!("L{}", l.line), str::to_owned);
        let args = match kind {
            "function_call" => match p.get("arguments") {
                Some(Value::String(s)) => maybe_json(s),
                Some(v) => v.clone(),
                None => Value::Null,
            },
            "custom_tool_call" => p.get("input").cloned().unwrap_or(Value::Null),
            _ => p.get("action").cloned().unwrap_or(Value::Null),
        };
        self.add_pending(
            l,
            Part::ToolCall {
                id: Some(call_id.clone()),
                name: name.clone(),
                arguments: args.clone(),
            },
        );
        let mut span = self.span(l, SpanKind::Tool, &name);
        span.id.clone_from(&call_id);
        span.end_ns = None;
        span.input = Some(Box::new(Payload::from_json(args.clone())));
        span.tool = Some(Box::new(ToolCall {
            name: name.clone(),
            call_id: Some(call_id.clone()),
            arguments: args.clone(),
            ..ToolCall::default()
        }));
        let status = get_str(p, &["status"]);
        if let Some(s) = status {
            span.attributes.insert("status".to_owned(), Value::from(s));
        }
        if kind == "web_search_call" {
            // Searches run server-side: the item is the whole call.
            span.end_ns = l.ts;
            if status == Some("failed") {
                fail(&mut span, Some("web_search"), "web search failed");
            } else if status == Some("completed") {
                span.status = Status::Ok;
            }
        }
        let tool = self.push(span);
        self.tools.insert(call_id.clone(), tool);
        self.pending.tools.push(tool);
        match name.as_str() {
            "spawn_agent" => {
                let handoff = self.handoff(l, &call_id, "subagent", HandoffMode::Delegate);
                self.spawned.push(Spawned {
                    call_id,
                    tool,
                    handoff,
                    agent_type: get_str(&args, &["agent_type"]).map(str::to_owned),
                    nickname: None,
                    model: get_str(&args, &["model"]).map(str::to_owned),
                    prompt: get_str(&args, &["message"]).map(str::to_owned),
                    thread: None,
                    outcome: None,
                });
            }
            "send_input" => {
                let target = get_str(&args, &["id"]).unwrap_or("unknown").to_owned();
                let to = self
                    .spawned
                    .iter()
                    .find(|s| s.thread.as_deref() == Some(target.as_str()))
                    .map_or(target, Spawned::name);
                self.handoff(l, &call_id, &to, HandoffMode::Message);
            }
            _ => {}
        }
    }

    fn handoff(&mut self, l: &Record<'_>, call_id: &str, to: &str, mode: HandoffMode) -> usize {
        let verb = if mode == HandoffMode::Delegate {
            "delegate to"
        } else {
            "message to"
        };
        let mut span = self.span(l, SpanKind::Handoff, &format!("{verb} {to}"));
        span.id = format!("{call_id}.handoff");
        span.handoff = Some(Box::new(Handoff {
            from: Some(self.agent.clone()),
            to: to.to_owned(),
            mode,
        }));
        span.links.push(Link {
            kind: LinkKind::FollowsFrom,
            target: call_id.to_owned(),
        });
        self.push(span)
    }

    fn tool_output(&mut self, l: &Record<'_>) {
        if self.calls_end_at_outputs {
            self.flush(None, None);
        }
        let p = l.payload;
        let call_id = get_str(p, &["call_id"]).map(str::to_owned);
        let out = read_output(p.get("output").unwrap_or(&Value::Null));
        let tool = if let Some(&tool) = call_id.as_deref().and_then(|c| self.tools.get(c)) {
            tool
        } else {
            self.orphan_outputs += 1;
            let mut span = self.span(l, SpanKind::Tool, "unknown");
            if let Some(c) = &call_id {
                span.id.clone_from(c);
            }
            span.tool = Some(Box::new(ToolCall {
                name: "unknown".to_owned(),
                call_id: call_id.clone(),
                ..ToolCall::default()
            }));
            self.push(span)
        };
        let span = self.b.span_mut(tool);
        if l.ts.is_some() {
            span.end_ns = l.ts;
        }
        span.output = Some(Box::new(Payload {
            text: out.text.clone(),
            json: out.json.clone(),
            mime: None,
        }));
        span.attributes
            .insert("result.step".to_owned(), Value::from(l.pos as u32));
        if let Some(code) = out.exit_code {
            span.attributes
                .insert("exit_code".to_owned(), Value::from(code));
        }
        if let Some(d) = out.duration {
            span.attributes
                .insert("duration_seconds".to_owned(), Value::from(d));
        }
        if let Some(t) = &mut span.tool {
            t.result = Some(
                out.json
                    .clone()
                    .unwrap_or_else(|| Value::String(out.text.clone())),
            );
        }
        let failed = out.exit_code.is_some_and(|c| c != 0) || out.success == Some(false);
        if failed {
            let detail = match out.exit_code {
                Some(code) if code != 0 => format!("exit code {code}: {}", last_line(&out.text)),
                _ => first_line(&out.text),
            };
            fail(
                span,
                Some(if out.exit_code.is_some() {
                    "exit_code"
                } else {
                    "tool_error"
                }),
                &detail,
            );
        } else if span.status != Status::Error {
            span.status = Status::Ok;
        }
        let name = span.name.clone();
        let text = out.text.clone();
        // Sub-agent bookkeeping from collaboration tool results.
        if name == "spawn_agent"
            && let Some(s) = self.spawned.iter_mut().find(|s| s.tool == tool)
            && let Some(id) = out.json.as_ref().and_then(|j| get_str(j, &["agent_id"]))
        {
            s.thread = Some(id.to_owned());
        }
        if name == "wait"
            && let Some(statuses) = out.json.as_ref().and_then(|j| j.get("status"))
        {
            let statuses = statuses.clone();
            self.agent_statuses(&statuses, l.ts);
        }
        self.pending_input.push(Message {
            role: Role::Tool,
            name: Some(name),
            parts: vec![Part::ToolResult {
                id: call_id,
                content: Value::String(text),
                is_error: failed,
            }],
        });
        self.boundary = l.ts;
    }

    /// Emits the collected model response as one `Llm` span.
    fn flush(&mut self, token: Option<(&Record<'_>, Option<Usage>)>, window: Option<Value>) {
        let pending = std::mem::take(&mut self.pending);
        let (token, usage) = match token {
            Some((l, u)) => (Some(l), u),
            None => (None, None),
        };
        if pending.first.is_none() && usage.is_none() {
            return;
        }
        let (pos, line, first_ts) = pending
            .first
            .or_else(|| token.map(|l| (l.pos, l.line, l.ts)))
            .unwrap_or((0, 1, None));
        let id = token.map_or_else(|| format!("L{line}"), |l| format!("L{}", l.line));
        let end = token.and_then(|l| l.ts).or(pending.last_ts);
        let model = self
            .turn_context
            .as_ref()
            .and_then(|c| get_str(c, &["model"]))
            .map(str::to_owned);
        let out = Message {
            role: Role::Assistant,
            name: None,
            parts: pending.parts,
        };
        let text = out.joined_text();
        let mut params = BTreeMap::new();
        if let Some(ctx) = &self.turn_context {
            for key in ["effort", "summary"] {
                if let Some(v) = ctx.get(key).filter(|v| !v.is_null()) {
                    params.insert(key.to_owned(), v.clone());
                }
            }
        }
        let mut span = Span {
            id: id.clone(),
            kind: SpanKind::Llm,
            name: model.clone().unwrap_or_else(|| "model".to_owned()),
            step: Some(pos as u32),
            start_ns: pending.start.or(first_ts),
            end_ns: end,
            time_inferred: true,
            status: Status::Ok,
            output: ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new),
            llm: Some(Box::new(LlmCall {
                provider: self.provider.clone(),
                request_model: model,
                input_messages: std::mem::take(&mut self.pending_input),
                output_messages: vec![out],
                params,
                ..LlmCall::default()
            })),
            usage: usage.map(Box::new),
            source: self.input.at_line(line),
            ..Span::default()
        };
        if let Some(w) = window {
            span.attributes.insert("model_context_window".to_owned(), w);
        }
        self.push(span);
        for tool in pending.tools {
            self.b.span_mut(tool).links.push(Link {
                kind: LinkKind::FollowsFrom,
                target: id.clone(),
            });
        }
        self.boundary = end;
    }

    fn finish(mut self) -> crate::model::Trace {
        if self.orphan_outputs > 0 {
            let n = self.orphan_outputs;
            self.b.warn(format!(
                "{n} tool output(s) name a call_id that is not in the rollout"
            ));
        }
        let spawned = std::mem::take(&mut self.spawned);
        for s in &spawned {
            self.spawned_agent(s);
        }
        let root = self.root;
        let total = self.last_total.as_ref().map(openai_usage);
        if let Some(total) = &total
            && self.calls > 0
            && (total.input != self.per_call.input || total.output != self.per_call.output)
        {
            self.b.warn(format!(
                "per-call usage sums to {} input / {} output tokens but the cumulative total_token_usage says {} / {} \
                 (a resumed or compacted session?)",
                self.per_call.input.unwrap_or(0),
                self.per_call.output.unwrap_or(0),
                total.input.unwrap_or(0),
                total.output.unwrap_or(0)
            ));
        }
        let (first, end) = {
            let starts = (0..self.b.len())
                .filter_map(|i| self.b.span(i).start_ns)
                .min();
            let ends = (0..self.b.len())
                .filter_map(|i| self.b.span(i).end_ns.or(self.b.span(i).start_ns))
                .max();
            (starts, ends)
        };
        let failed = self.last_turn_failed.clone();
        let completed = self.any_turn_completed;
        let span = self.b.span_mut(root);
        span.start_ns = first;
        span.end_ns = end;
        if let Some(total) = total {
            span.usage = Some(Box::new(total));
            span.usage_scope = UsageScope::Subtree;
        }
        if let Some(error) = failed {
            span.status = Status::Error;
            span.error = Some(Box::new(error));
        } else if completed {
            span.status = Status::Ok;
        }
        self.b.finish()
    }

    fn spawned_agent(&mut self, s: &Spawned) {
        let name = s.name();
        let tool = self.b.span(s.tool);
        let start = tool.end_ns.or(tool.start_ns);
        let (step, source) = (tool.step, tool.source.clone());
        let (end, status, output) = match &s.outcome {
            Some((ts, word, message)) => {
                let status = match word.as_str() {
                    "completed" => Status::Ok,
                    "errored" | "not_found" => Status::Error,
                    _ => Status::Unset,
                };
                (
                    if status == Status::Unset { None } else { *ts },
                    status,
                    message.clone(),
                )
            }
            None => (None, Status::Unset, None),
        };
        let mut attributes = BTreeMap::new();
        if let Some((_, word, _)) = &s.outcome {
            attributes.insert("agent_status".to_owned(), Value::from(word.clone()));
        }
        if let Some(nickname) = &s.nickname {
            attributes.insert("nickname".to_owned(), Value::from(nickname.clone()));
        }
        let span = Span {
            id: format!(
                "agent-{}",
                s.thread.clone().unwrap_or_else(|| s.call_id.clone())
            ),
            kind: SpanKind::Agent,
            name: name.clone(),
            agent: Some(name.clone()),
            step,
            start_ns: start,
            end_ns: end,
            status,
            error: ((status == Status::Error).then(|| ErrorInfo {
                message: output
                    .clone()
                    .unwrap_or_else(|| "sub-agent failed".to_owned()),
                ..ErrorInfo::default()
            }))
            .map(Box::new),
            input: (s.prompt.clone().map(Payload::text)).map(Box::new),
            output: (output.map(Payload::text)).map(Box::new),
            attributes,
            source,
            ..Span::default()
        };
        self.b.push_child(s.tool, span);
        if let Some(h) = &mut self.b.span_mut(s.handoff).handoff {
            h.to.clone_from(&name);
        }
        self.b.span_mut(s.handoff).name = format!("delegate to {name}");
        self.b.agent(AgentInfo {
            name,
            id: s.thread.clone(),
            role: s.agent_type.clone().or_else(|| Some("subagent".to_owned())),
            model: s.model.clone(),
            parent_agent: Some(self.agent.clone()),
        });
    }
}

/// A tool output taken apart.
#[derive(Debug, Default)]
struct Output {
    text: String,
    json: Option<Value>,
    exit_code: Option<i64>,
    duration: Option<f64>,
    success: Option<bool>,
}

/// Reads `function_call_output.output`: a JSON string `{"output", "metadata"}`, plain text
/// (newer builds: "Exit code: N\nWall time: …\nOutput:\n…"), or an object `{content, success}`.
fn read_output(v: &Value) -> Output {
    match v {
        Value::String(s) => {
            let parsed = maybe_json(s);
            match &parsed {
                Value::Object(o) if o.contains_key("output") || o.contains_key("metadata") => {
                    Output {
                        text: o.get("output").map(value_text).unwrap_or_default(),
                        exit_code: get(&parsed, &["metadata", "exit_code"]).and_then(Value::as_i64),
                        duration: get(&parsed, &["metadata", "duration_seconds"]).and_then(as_f64),
                        json: Some(parsed.clone()),
                        success: None,
                    }
                }
                Value::Object(_) | Value::Array(_) => Output {
                    text: s.clone(),
                    json: Some(parsed.clone()),
                    ..Output::default()
                },
                _ => Output {
                    text: s.clone(),
                    exit_code: plain_exit_code(s),
                    ..Output::default()
                },
            }
        }
        Value::Object(o) => {
            let text = o
                .get("content")
                .or_else(|| o.get("output"))
                .map(value_text)
                .unwrap_or_default();
            Output {
                exit_code: plain_exit_code(&text),
                success: o.get("success").and_then(Value::as_bool),
                json: Some(v.clone()),
                text,
                duration: None,
            }
        }
        Value::Null => Output::default(),
        other => Output {
            text: other.to_string(),
            json: Some(other.clone()),
            ..Output::default()
        },
    }
}

/// `Exit code: 1` on the first line of a plain-text shell output.
fn plain_exit_code(text: &str) -> Option<i64> {
    let first = text.lines().next()?.trim();
    first
        .strip_prefix("Exit code:")
        .and_then(|r| r.trim().parse().ok())
}

fn fail(span: &mut Span, kind: Option<&str>, message: &str) {
    span.status = Status::Error;
    span.error = Some(Box::new(ErrorInfo {
        kind: kind.map(str::to_owned),
        message: truncate(message.trim(), 300),
        ..ErrorInfo::default()
    }));
    if let Some(t) = &mut span.tool {
        t.is_error = true;
    }
}

/// Text of Responses content (`input_text`/`output_text` parts) or any other value.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("text").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn first_line(text: &str) -> String {
    truncate(text.trim().lines().next().unwrap_or_default(), 300)
}

fn last_line(text: &str) -> String {
    truncate(
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim(),
        300,
    )
}

fn payload_attributes(p: &Value, skip: &[&str]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Value::Object(o) = p {
        for (k, v) in o {
            if !skip.contains(&k.as_str()) && !v.is_null() {
                flatten_into(k, v, &mut out);
            }
        }
    }
    out
}

/// OpenAI-style usage as Codex writes it: input includes cached tokens, output includes
/// reasoning.
fn openai_usage(u: &Value) -> Usage {
    Usage {
        input: u.get("input_tokens").and_then(as_u64),
        output: u.get("output_tokens").and_then(as_u64),
        cache_read: u.get("cached_input_tokens").and_then(as_u64),
        cache_write: None,
        reasoning: u.get("reasoning_output_tokens").and_then(as_u64),
        total: u.get("total_tokens").and_then(as_u64),
        estimated: false,
    }
}

// ---- codex exec --json ---------------------------------------------------------------------

struct Exec<'i> {
    input: &'i Input,
    b: TraceBuilder,
    root: usize,
    turn: Option<usize>,
    turns: usize,
    /// Reasoning and messages of the open turn, for its model summary span.
    turn_output: Vec<Part>,
    /// The open turn's model summary span, filled when the turn ends.
    turn_model: Option<usize>,
    items: HashMap<String, usize>,
    completed: HashSet<String>,
    /// Sub-agent thread id → (name, status word, message).
    agents: Vec<(String, usize, Option<String>, Option<String>)>,
    warned: HashSet<String>,
    last_failed: Option<ErrorInfo>,
}

fn parse_exec(input: &Input, lines: &[JsonLine]) -> crate::model::Trace {
    let thread = lines.iter().find_map(|l| get_str(&l.value, &["thread_id"]));
    let id = thread.map_or_else(|| input.synth_id("codex-exec"), str::to_owned);
    let mut b = TraceBuilder::new(Format::Codex, id.clone());
    b.trace_mut().session_id = Some(id);
    b.trace_mut().format_version = Some("codex-exec-json".to_owned());
    let root = b.push(Span {
        id: format!("agent-{AGENT}"),
        kind: SpanKind::Agent,
        name: AGENT.to_owned(),
        agent: Some(AGENT.to_owned()),
        source: input.at_line(lines.first().map_or(1, |l| l.line)),
        ..Span::default()
    });
    let mut x = Exec {
        input,
        b,
        root,
        turn: None,
        turns: 0,
        turn_output: Vec::new(),
        turn_model: None,
        items: HashMap::new(),
        completed: HashSet::new(),
        agents: Vec::new(),
        warned: HashSet::new(),
        last_failed: None,
    };
    for (pos, jl) in lines.iter().enumerate() {
        let v = &jl.value;
        match get_str(v, &["type"]).unwrap_or("") {
            "thread.started" => {}
            "turn.started" => x.open_turn(pos, jl.line),
            "turn.completed" => x.close_turn(pos, jl.line, v.get("usage"), None),
            "turn.failed" => {
                let message = get(v, &["error", "message"])
                    .and_then(Value::as_str)
                    .unwrap_or("turn failed")
                    .to_owned();
                x.close_turn(pos, jl.line, v.get("usage"), Some(message));
            }
            "item.started" | "item.updated" | "item.completed" => {
                let done = get_str(v, &["type"]) == Some("item.completed");
                if let Some(item) = v.get("item").filter(|i| i.is_object()) {
                    x.item(pos, jl.line, item, done);
                } else {
                    x.b.warn(format!(
                        "line {}: item event without an `item` object; skipped",
                        jl.line
                    ));
                }
            }
            "error" => {
                let message = get_str(v, &["message"]).unwrap_or("error").to_owned();
                let error = ErrorInfo {
                    kind: Some("error".to_owned()),
                    message: first_line(&message),
                    ..ErrorInfo::default()
                };
                let span = Span {
                    id: format!("L{}", jl.line),
                    kind: SpanKind::System,
                    name: "error".to_owned(),
                    step: Some(pos as u32),
                    status: Status::Error,
                    error: Some(Box::new(error.clone())),
                    source: input.at_line(jl.line),
                    ..Span::default()
                };
                let parent = x.turn.unwrap_or(x.root);
                x.b.push_child(parent, span);
                x.last_failed = Some(error);
            }
            "" => x.warn_once(
                "<none>",
                format!(
                    "line {}: an event without `type`; such lines were skipped",
                    jl.line
                ),
            ),
            other => x.warn_once(
                other,
                format!(
                    "line {}: unknown event `{other}`; events of this type were skipped",
                    jl.line
                ),
            ),
        }
    }
    if x.turn.is_some() {
        let last = lines.last().map_or((0, 1), |l| (lines.len() - 1, l.line));
        x.close_turn(last.0, last.1, None, None);
        x.b.warn("the stream ends inside a turn (no turn.completed)");
    }
    x.finish()
}

impl Exec<'_> {
    fn warn_once(&mut self, key: &str, message: String) {
        if self.warned.insert(key.to_owned()) {
            self.b.warn(message);
        }
    }

    fn open_turn(&mut self, pos: usize, line: u32) {
        if self.turn.is_some() {
            self.close_turn(pos, line, None, None);
        }
        self.turns += 1;
        let span = Span {
            id: format!("turn-{}", self.turns),
            kind: SpanKind::Step,
            name: format!("turn {}", self.turns),
            step: Some(pos as u32),
            source: self.input.at_line(line),
            ..Span::default()
        };
        let root = self.root;
        let turn = self.b.push_child(root, span);
        self.turn = Some(turn);
        // The stream has no times, so push order is display order: the model comes first.
        let mut model = Span {
            id: format!("turn-{}.model", self.turns),
            kind: SpanKind::Llm,
            name: "model".to_owned(),
            step: Some(pos as u32),
            source: self.input.at_line(line),
            ..Span::default()
        };
        model
            .attributes
            .insert("llm.calls".to_owned(), Value::from("aggregate"));
        self.turn_model = Some(self.b.push_child(turn, model));
    }

    fn close_turn(
        &mut self,
        pos: usize,
        line: u32,
        usage: Option<&Value>,
        failure: Option<String>,
    ) {
        if self.turn.is_none() {
            self.open_turn(pos, line);
        }
        let (Some(turn), Some(model)) = (self.turn.take(), self.turn_model.take()) else {
            return;
        };
        let out = Message {
            role: Role::Assistant,
            name: None,
            parts: std::mem::take(&mut self.turn_output),
        };
        let text = out.joined_text();
        let error = failure.map(|m| ErrorInfo {
            kind: Some("turn.failed".to_owned()),
            message: first_line(&m),
            ..ErrorInfo::default()
        });
        let span = self.b.span_mut(model);
        span.status = if error.is_some() {
            Status::Error
        } else {
            Status::Ok
        };
        span.error = error.clone().map(Box::new);
        span.output = ((!text.is_empty()).then(|| Payload::text(text.clone()))).map(Box::new);
        span.llm = Some(Box::new(LlmCall {
            output_messages: vec![out],
            ..LlmCall::default()
        }));
        span.usage = (usage.map(openai_usage).filter(|u| !u.is_empty())).map(Box::new);
        span.attributes
            .insert("result.step".to_owned(), Value::from(pos as u32));
        let turn_span = self.b.span_mut(turn);
        if let Some(e) = &error {
            turn_span.status = Status::Error;
            turn_span.error = Some(Box::new(e.clone()));
        } else {
            turn_span.status = Status::Ok;
            if !text.is_empty() {
                turn_span.output = Some(Box::new(Payload::text(text)));
            }
        }
        self.last_failed = error;
    }

    fn item(&mut self, pos: usize, line: u32, item: &Value, done: bool) {
        let id = get_str(item, &["id"]).map_or_else(|| format!("L{line}"), str::to_owned);
        let kind = get_str(item, &["type"]).unwrap_or("");
        match kind {
            "agent_message" | "reasoning" => {
                if done && self.completed.insert(id) {
                    let text = get_str(item, &["text"]).unwrap_or_default().to_owned();
                    self.turn_output.push(if kind == "reasoning" {
                        Part::Reasoning { text }
                    } else {
                        Part::Text { text }
                    });
                }
                return;
            }
            "command_execution" | "file_change" | "mcp_tool_call" | "web_search"
            | "collab_tool_call" | "todo_list" | "error" => {}
            other => {
                self.warn_once(
                    &format!("item:{other}"),
                    format!("line {line}: unknown item type `{other}`; kept as system spans"),
                );
            }
        }
        let idx = if let Some(&idx) = self.items.get(&id) {
            idx
        } else {
            let span = self.new_item_span(pos, line, &id, kind, item);
            let parent = self.turn.unwrap_or(self.root);
            let idx = self.b.push_child(parent, span);
            self.items.insert(id.clone(), idx);
            idx
        };
        self.update_item(idx, kind, item);
        if done {
            self.completed.insert(id);
            self.b
                .span_mut(idx)
                .attributes
                .insert("result.step".to_owned(), Value::from(pos as u32));
            if kind == "collab_tool_call" {
                self.collab(idx, pos, line, item);
            }
        }
    }

    fn new_item_span(&self, pos: usize, line: u32, id: &str, kind: &str, item: &Value) -> Span {
        let (span_kind, name, args) = match kind {
            "command_execution" => (
                SpanKind::Tool,
                "command_execution".to_owned(),
                serde_json::json!({ "command": item.get("command") }),
            ),
            "file_change" => (
                SpanKind::Tool,
                "file_change".to_owned(),
                serde_json::json!({ "changes": item.get("changes") }),
            ),
            "mcp_tool_call" => (
                SpanKind::Tool,
                get_str(item, &["tool"])
                    .unwrap_or("mcp_tool_call")
                    .to_owned(),
                item.get("arguments").cloned().unwrap_or(Value::Null),
            ),
            "web_search" => (
                SpanKind::Tool,
                "web_search".to_owned(),
                serde_json::json!({ "query": item.get("query") }),
            ),
            "collab_tool_call" => (
                SpanKind::Tool,
                get_str(item, &["tool"])
                    .unwrap_or("collab_tool_call")
                    .to_owned(),
                serde_json::json!({ "prompt": item.get("prompt"), "receiver_thread_ids": item.get("receiver_thread_ids") }),
            ),
            other => (
                SpanKind::System,
                if other.is_empty() { "item" } else { other }.to_owned(),
                Value::Null,
            ),
        };
        let mut span = Span {
            id: id.to_owned(),
            kind: span_kind,
            name: name.clone(),
            step: Some(pos as u32),
            source: self.input.at_line(line),
            ..Span::default()
        };
        if span_kind == SpanKind::Tool {
            span.input = Some(Box::new(Payload::from_json(args.clone())));
            span.tool = Some(Box::new(ToolCall {
                name,
                call_id: Some(id.to_owned()),
                arguments: args,
                ..ToolCall::default()
            }));
            if let Some(server) = item.get("server") {
                span.attributes.insert("server".to_owned(), server.clone());
            }
        }
        span
    }

    fn update_item(&mut self, idx: usize, kind: &str, item: &Value) {
        let status = get_str(item, &["status"]);
        let span = self.b.span_mut(idx);
        if let Some(s) = status {
            span.attributes.insert("status".to_owned(), Value::from(s));
        }
        match kind {
            "command_execution" => {
                let output = get_str(item, &["aggregated_output"])
                    .unwrap_or_default()
                    .to_owned();
                let exit = item.get("exit_code").and_then(Value::as_i64);
                span.output = Some(Box::new(Payload::text(output.clone())));
                if let Some(t) = &mut span.tool {
                    t.result = Some(Value::String(output.clone()));
                }
                if let Some(code) = exit {
                    span.attributes
                        .insert("exit_code".to_owned(), Value::from(code));
                }
                match (exit, status) {
                    (Some(code), _) if code != 0 => fail(
                        span,
                        Some("exit_code"),
                        &format!("exit code {code}: {}", last_line(&output)),
                    ),
                    (_, Some("failed")) => fail(span, Some("failed"), &last_line(&output)),
                    (_, Some("declined")) => fail(span, Some("declined"), "command declined"),
                    (_, Some("completed")) => span.status = Status::Ok,
                    _ => {}
                }
            }
            "mcp_tool_call" => {
                if let Some(result) = item.get("result").filter(|r| !r.is_null()) {
                    span.output = Some(Box::new(Payload::from_json(result.clone())));
                    if let Some(t) = &mut span.tool {
                        t.result = Some(result.clone());
                    }
                }
                let error = item
                    .get("error")
                    .filter(|e| !e.is_null())
                    .map(|e| get_str(e, &["message"]).map_or_else(|| e.to_string(), str::to_owned));
                if let Some(message) = error {
                    fail(span, Some("mcp"), &message);
                } else if status == Some("failed") {
                    fail(span, Some("failed"), "MCP tool call failed");
                } else if status == Some("completed") {
                    span.status = Status::Ok;
                }
            }
            "file_change" | "web_search" | "collab_tool_call" => {
                if status == Some("failed") {
                    fail(span, Some("failed"), &format!("{kind} failed"));
                } else if status == Some("completed") || (kind == "web_search" && status.is_none())
                {
                    span.status = Status::Ok;
                }
            }
            "todo_list" => {
                let items: Vec<String> = item
                    .get("items")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .map(|i| {
                                let mark =
                                    if i.get("completed").and_then(Value::as_bool) == Some(true) {
                                        "[x]"
                                    } else {
                                        "[ ]"
                                    };
                                format!("{mark} {}", get_str(i, &["text"]).unwrap_or_default())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                span.output = Some(Box::new(Payload::text(items.join("\n"))));
            }
            "error" => {
                let message = get_str(item, &["message"]).unwrap_or("error").to_owned();
                span.status = Status::Error;
                span.error = Some(Box::new(ErrorInfo {
                    kind: Some("error".to_owned()),
                    message: first_line(&message),
                    ..ErrorInfo::default()
                }));
            }
            _ => {
                let mut attrs = BTreeMap::new();
                flatten_into("item", item, &mut attrs);
                span.attributes.extend(attrs);
            }
        }
    }

    /// `collab_tool_call` items: delegations, messages and sub-agent statuses.
    fn collab(&mut self, idx: usize, pos: usize, line: u32, item: &Value) {
        let tool = get_str(item, &["tool"]).unwrap_or("");
        let receivers: Vec<String> = item
            .get("receiver_thread_ids")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let states = item.get("agents_states").and_then(Value::as_object);
        let parent = self.b.parent_of(idx).unwrap_or(self.root);
        if tool == "spawn_agent" {
            for thread in &receivers {
                let handoff = Span {
                    id: format!("{}.handoff.{thread}", self.b.span(idx).id),
                    kind: SpanKind::Handoff,
                    name: format!("delegate to {thread}"),
                    step: Some(pos as u32),
                    handoff: Some(Box::new(Handoff {
                        from: Some(AGENT.to_owned()),
                        to: thread.clone(),
                        mode: HandoffMode::Delegate,
                    })),
                    links: vec![Link {
                        kind: LinkKind::FollowsFrom,
                        target: self.b.span(idx).id.clone(),
                    }],
                    source: self.input.at_line(line),
                    ..Span::default()
                };
                self.b.push_child(parent, handoff);
                let agent = Span {
                    id: format!("agent-{thread}"),
                    kind: SpanKind::Agent,
                    name: thread.clone(),
                    agent: Some(thread.clone()),
                    step: Some(pos as u32),
                    input: (get_str(item, &["prompt"]).map(Payload::text)).map(Box::new),
                    source: self.input.at_line(line),
                    ..Span::default()
                };
                let agent_idx = self.b.push_child(idx, agent);
                self.agents.push((thread.clone(), agent_idx, None, None));
                self.b.agent(AgentInfo {
                    name: thread.clone(),
                    id: Some(thread.clone()),
                    role: Some("subagent".to_owned()),
                    parent_agent: Some(AGENT.to_owned()),
                    ..AgentInfo::default()
                });
            }
        } else if tool == "send_input" {
            for thread in &receivers {
                let handoff = Span {
                    id: format!("{}.handoff.{thread}", self.b.span(idx).id),
                    kind: SpanKind::Handoff,
                    name: format!("message to {thread}"),
                    step: Some(pos as u32),
                    handoff: Some(Box::new(Handoff {
                        from: Some(AGENT.to_owned()),
                        to: thread.clone(),
                        mode: HandoffMode::Message,
                    })),
                    source: self.input.at_line(line),
                    ..Span::default()
                };
                self.b.push_child(parent, handoff);
            }
        }
        if let Some(states) = states {
            for (thread, state) in states {
                let word = get_str(state, &["status"]).map(str::to_owned);
                let message = get_str(state, &["message"]).map(str::to_owned);
                if let Some(entry) = self.agents.iter_mut().find(|a| &a.0 == thread) {
                    if word.is_some() {
                        entry.2 = word;
                    }
                    if message.is_some() {
                        entry.3 = message;
                    }
                }
            }
        }
    }

    fn finish(mut self) -> crate::model::Trace {
        let started = self
            .items
            .keys()
            .filter(|k| !self.completed.contains(*k))
            .count();
        if started > 0 {
            self.b
                .warn(format!("{started} item(s) started but never completed"));
        }
        for (_, idx, word, message) in std::mem::take(&mut self.agents) {
            let span = self.b.span_mut(idx);
            span.status = match word.as_deref() {
                Some("completed") => Status::Ok,
                Some("errored" | "not_found") => Status::Error,
                _ => Status::Unset,
            };
            if span.status == Status::Error {
                span.error = Some(Box::new(ErrorInfo {
                    message: message
                        .clone()
                        .unwrap_or_else(|| "sub-agent failed".to_owned()),
                    ..ErrorInfo::default()
                }));
            }
            if let Some(w) = word {
                span.attributes
                    .insert("agent_status".to_owned(), Value::from(w));
            }
            span.output = (message.map(Payload::text)).map(Box::new);
        }
        let root = self.root;
        let failed = self.last_failed.take();
        let span = self.b.span_mut(root);
        if let Some(error) = failed {
            span.status = Status::Error;
            span.error = Some(Box::new(error));
        } else if self.turns > 0 {
            span.status = Status::Ok;
        }
        self.b.finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::load::{LoadOptions, load_bytes};
    use crate::model::{Format, HandoffMode, Span, SpanKind, Status, Trace, UsageScope};
    use crate::testing::{fixture, inline};

    const ROLLOUT: &str =
        "codex/rollout-2026-03-18T14-02-00-019c8f2e-5a1b-7d3c-9e4f-a0b1c2d3e4f5.jsonl";

    fn span<'t>(t: &'t Trace, id: &str) -> &'t Span {
        t.spans
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no span {id}"))
    }

    fn parent<'t>(t: &'t Trace, s: &Span) -> Option<&'t Span> {
        s.parent.map(|p| &t.spans[p as usize])
    }

    fn jsonl(lines: &[Value]) -> String {
        lines
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn envelope(ts: &str, ty: &str, payload: &Value) -> Value {
        json!({"timestamp": format!("2026-01-01T00:00:{ts}Z"), "type": ty, "payload": payload})
    }

    #[test]
    fn rollout_fixture() {
        let (summary, traces) = fixture(ROLLOUT);
        assert_eq!(summary.format, Format::Codex);
        let t = &traces[0].trace;
        assert_eq!(t.id, "019c8f2e-5a1b-7d3c-9e4f-a0b1c2d3e4f5");
        assert_eq!(t.format_version.as_deref(), Some("codex/0.104.0"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let names: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["codex", "explorer"]);
        assert_eq!(t.agents[1].parent_agent.as_deref(), Some("codex"));
        assert_eq!(
            t.agents[1].id.as_deref(),
            Some("019c8f2f-41d7-7b20-a9c3-5e6f70819a2b")
        );

        // The failing type check: exit code from the JSON output's metadata.
        let shell = span(t, "call_Sh1a");
        assert_eq!(
            (shell.kind, shell.name.as_str(), shell.status),
            (SpanKind::Tool, "shell", Status::Error)
        );
        let error = shell.error.as_ref().unwrap();
        assert_eq!(error.kind.as_deref(), Some("exit_code"));
        assert!(error.message.starts_with("exit code 2:"));
        assert!(shell.tool.as_ref().unwrap().is_error);
        // The passing re-run: plain "Exit code: 0" text.
        let rerun = span(t, "call_Sh2a");
        assert_eq!(
            (rerun.status, rerun.attributes.get("exit_code")),
            (Status::Ok, Some(&json!(0)))
        );
        assert_eq!(span(t, "call_P1a").name, "apply_patch");

        // One Llm span per token_count; the repeated last one is skipped.
        let llms: Vec<&Span> = t.spans_of(SpanKind::Llm).collect();
        assert_eq!(llms.len(), 5);
        let first = llms[0];
        assert_eq!(
            first.llm.as_ref().unwrap().request_model.as_deref(),
            Some("gpt-5.3-codex")
        );
        assert!(
            first
                .llm
                .as_ref()
                .unwrap()
                .input_messages
                .iter()
                .any(|m| m.joined_text().starts_with("Upgrade zod"))
        );
        assert!(
            span(t, "call_Sh1a")
                .links
                .iter()
                .any(|l| l.target == first.id)
        );
        assert_eq!(parent(t, shell).map(|p| p.name.as_str()), Some("turn 1"));

        // Usage: last_token_usage per call; input already includes cached tokens.
        assert_eq!(t.usage.input, Some(69_892));
        assert_eq!(t.usage.output, Some(1_340));
        assert_eq!(t.usage.cache_read, Some(57_856));
        assert_eq!(t.usage.reasoning, Some(448));
        let root = &t.spans[0];
        assert_eq!(root.usage_scope, UsageScope::Subtree);
        assert_eq!(root.usage.as_ref().and_then(|u| u.input), Some(69_892));

        // The explorer sub-agent.
        let handoffs: Vec<&Span> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!((h.to.as_str(), h.mode), ("explorer", HandoffMode::Delegate));
        let agent = span(t, "agent-019c8f2f-41d7-7b20-a9c3-5e6f70819a2b");
        assert_eq!(parent(t, agent).map(|p| p.id.as_str()), Some("call_Sp1a"));
        assert_eq!(agent.status, Status::Ok);
        assert!(
            agent
                .output
                .as_ref()
                .is_some_and(|o| o.text.contains("src/schemas/user.ts:12"))
        );
        assert_eq!(agent.attributes.get("nickname"), Some(&json!("Noether")));

        // Retried disconnect, injected context, the turn's outcome.
        let stream = t.spans.iter().find(|s| s.name == "stream_error").unwrap();
        assert_eq!(stream.status, Status::Error);
        assert!(stream.error.as_ref().unwrap().handled);
        assert!(
            t.spans
                .iter()
                .any(|s| s.name == "context" && s.kind == SpanKind::System)
        );
        let turn = span(t, "turn-1");
        assert_eq!(turn.status, Status::Ok);
        assert_eq!(t.spans_of(SpanKind::Human).count(), 1);
        assert_eq!(span(t, "L5").step, Some(4));
        assert!(
            t.final_output
                .as_deref()
                .is_some_and(|o| o.starts_with("Upgraded zod"))
        );
    }

    #[test]
    fn exec_stream_fixture() {
        let (summary, traces) = fixture("codex/exec-ledger-fix.jsonl");
        assert_eq!(summary.format, Format::Codex);
        let t = &traces[0].trace;
        assert_eq!(t.id, "019c9a01-77e2-7f10-b3d4-112233445566");
        assert_eq!(t.format_version.as_deref(), Some("codex-exec-json"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.agents.len(), 2);
        let failed = span(t, "item_1");
        assert_eq!(
            (failed.name.as_str(), failed.status),
            ("command_execution", Status::Error)
        );
        assert!(
            failed
                .error
                .as_ref()
                .unwrap()
                .message
                .starts_with("exit code 101")
        );
        let pr = span(t, "item_7");
        assert_eq!(
            (pr.name.as_str(), pr.status),
            ("create_pull_request", Status::Error)
        );
        assert_eq!(span(t, "item_6").status, Status::Ok);
        // One aggregate model span per turn carries the turn's usage.
        let model = span(t, "turn-1.model");
        assert_eq!(model.kind, SpanKind::Llm);
        assert_eq!(model.attributes.get("llm.calls"), Some(&json!("aggregate")));
        assert_eq!(t.usage.input, Some(48_210));
        assert_eq!(t.usage.cache_read, Some(39_936));
        assert_eq!(t.usage.output, Some(2_214));
        assert!(
            model
                .output
                .as_ref()
                .is_some_and(|o| o.text.contains("Fixed Money::split"))
        );
        // Delegation to a sub-agent thread, completed according to the wait result.
        assert_eq!(t.spans_of(SpanKind::Handoff).count(), 1);
        let agent = t
            .spans_of(SpanKind::Agent)
            .find(|s| s.name.starts_with("019c9a02"))
            .unwrap();
        assert_eq!(parent(t, agent).map(|p| p.id.as_str()), Some("item_2"));
        assert_eq!(agent.status, Status::Ok);
        assert!(
            agent
                .output
                .as_ref()
                .is_some_and(|o| o.text.contains("4e1a9c2"))
        );
        let todo = span(t, "item_3");
        assert_eq!(
            todo.output.as_ref().map(|o| o.text.matches("[x]").count()),
            Some(3)
        );
    }

    #[test]
    fn early_rollout_without_envelopes() {
        let text = jsonl(&[
            json!({"id": "r-2025", "timestamp": "2025-04-20T09:00:00Z", "instructions": "Be concise."}),
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run the tests"}]}),
            json!({"record_type": "state"}),
            json!({"type": "function_call", "name": "shell", "arguments": "{\"command\": [\"pytest\"]}", "call_id": "c1"}),
            json!({"type": "function_call_output", "call_id": "c1",
                "output": "{\"output\": \"1 failed\", \"metadata\": {\"exit_code\": 1, \"duration_seconds\": 0.8}}"}),
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "One test fails."}]}),
        ]);
        let (summary, traces) = inline("rollout-old.jsonl", &text);
        assert_eq!(summary.format, Format::Codex);
        let t = &traces[0].trace;
        assert_eq!(t.id, "r-2025");
        assert_eq!(t.task.as_deref(), Some("run the tests"));
        let tool = span(t, "c1");
        assert_eq!(
            (tool.status, tool.attributes.get("duration_seconds")),
            (Status::Error, Some(&json!(0.8)))
        );
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 2);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn odd_rollout_lines_warn_and_do_not_panic() {
        let text = jsonl(&[
            envelope("00", "session_meta", &json!({"id": "s1", "cli_version": 7})),
            envelope("01", "ghost_snapshot", &json!({"commit": "abc"})),
            envelope("02", "ghost_snapshot", &json!({"commit": "def"})),
            envelope(
                "03",
                "event_msg",
                &json!({"type": "user_message", "message": ["not", "a", "string"]}),
            ),
            envelope(
                "04",
                "response_item",
                &json!({"type": "function_call", "name": "shell", "arguments": "not json", "call_id": "c1"}),
            ),
            envelope(
                "05",
                "event_msg",
                &json!({"type": "token_count", "info": null}),
            ),
            envelope(
                "06",
                "event_msg",
                &json!({"type": "token_count", "info": {
                "last_token_usage": {"input_tokens": "100", "output_tokens": 10},
                "total_token_usage": {"input_tokens": 999, "output_tokens": 10}}}),
            ),
            envelope(
                "07",
                "response_item",
                &json!({"type": "function_call_output", "call_id": "c1",
                "output": {"content": "permission denied", "success": false}}),
            ),
            envelope(
                "08",
                "response_item",
                &json!({"type": "function_call_output", "call_id": "zzz", "output": 5}),
            ),
            envelope(
                "09",
                "event_msg",
                &json!({"type": "brand_new_event", "x": 1}),
            ),
            envelope(
                "10",
                "event_msg",
                &json!({"type": "error", "message": "unexpected status 500"}),
            ),
            envelope(
                "11",
                "event_msg",
                &json!({"type": "turn_aborted", "reason": "interrupted"}),
            ),
            envelope("12", "response_item", &Value::from("a string payload")),
            json!({"timestamp": 3, "type": "compacted", "payload": {"message": 5}}),
        ]);
        let (summary, traces) = inline("s1.jsonl", &text);
        assert_eq!(summary.format, Format::Codex);
        let t = &traces[0].trace;
        let ghost = t
            .warnings
            .iter()
            .filter(|w| w.contains("ghost_snapshot"))
            .count();
        assert_eq!(ghost, 1, "{:?}", t.warnings);
        assert!(t.warnings.iter().any(|w| w.contains("brand_new_event")));
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("call_id that is not in the rollout"))
        );
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("cumulative total_token_usage"))
        );
        let tool = span(t, "c1");
        assert_eq!(tool.tool.as_ref().unwrap().arguments, json!("not json"));
        assert_eq!(
            (tool.status, tool.error.as_ref().unwrap().kind.as_deref()),
            (Status::Error, Some("tool_error"))
        );
        assert_eq!(t.usage.input, Some(100));
        assert_eq!(span(t, "turn-1").status, Status::Error);
        assert_eq!(t.status, Status::Error);
        assert!(t.spans.iter().any(|s| s.name == "compaction"));
    }

    #[test]
    fn exec_stream_failures() {
        let text = jsonl(&[
            json!({"type": "thread.started", "thread_id": "th1"}),
            json!({"type": "turn.started"}),
            json!({"type": "item.started", "item": {"id": "i1", "type": "command_execution", "command": "sleep 99", "status": "in_progress"}}),
            json!({"type": "item.completed", "item": {"id": "i2", "type": "hologram", "x": 1}}),
            json!({"type": "item.completed", "item": "nope"}),
            json!({"type": "item.completed", "item": {"id": "i3", "type": "command_execution", "command": "rm -rf /", "status": "declined"}}),
            json!({"type": "error", "message": "stream disconnected"}),
            json!({"type": "turn.failed", "error": {"message": "stream disconnected before completion"}}),
            json!({"type": "mystery.event"}),
        ]);
        let (_, traces) = inline("exec.jsonl", &text);
        let t = &traces[0].trace;
        let model = span(t, "turn-1.model");
        assert_eq!(model.status, Status::Error);
        assert_eq!(t.status, Status::Error);
        assert_eq!(
            span(t, "i3").error.as_ref().unwrap().kind.as_deref(),
            Some("declined")
        );
        for expected in [
            "started but never completed",
            "hologram",
            "without an `item`",
            "mystery.event",
        ] {
            assert!(
                t.warnings.iter().any(|w| w.contains(expected)),
                "{expected}: {:?}",
                t.warnings
            );
        }
    }

    #[test]
    fn nothing_usable_is_an_error() {
        let options = LoadOptions {
            format: Some(Format::Codex),
            ..LoadOptions::default()
        };
        let err = load_bytes("x.jsonl", b"{\"a\":1}\n{\"b\":2}\n", &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no rollout lines"), "{err}");
    }

    #[test]
    fn mutated_fixtures_never_panic() {
        use crate::adapters::claude_code::tests::assert_no_panics;
        assert_no_panics(ROLLOUT, "r.jsonl");
        assert_no_panics("codex/exec-ledger-fix.jsonl", "x.jsonl");
    }
}
