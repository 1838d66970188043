//! OpenClaw / pi session transcripts and OpenClaw trajectory files (`formats.md` §7).
//!
//! **Transcript** (`~/.openclaw/agents/<agentId>/sessions/<sessionId>.jsonl`, pi session format
//! v1–v3): line 1 is a `session` header, every other line an entry `{type, id, parentId,
//! timestamp}`. Entries form a tree: rewinds and edits start new branches, and the *active*
//! branch is the path from the last entry back to the root. Version 1 files have no ids and are
//! linear (ids `legacy-N` are synthesized, each entry's parent is the one before); version 2
//! called custom messages `hookMessage`. Mapping decisions:
//!
//! - **Tree.** One root `Agent` span named after `agents/<agentId>/` in the file path (else
//!   "main"). Each user message opens a `Step` span "turn N"; every entry belongs to the turn of
//!   its nearest user-message ancestor *in the entry tree*, so abandoned branches stay with the
//!   turn they branched from. Spans of entries off the active branch are still emitted, with the
//!   attribute `branch.abandoned = true`. `parentId` becomes a `FollowsFrom` link.
//! - **Messages.** `user` → `Human`; `assistant` → `Llm` (text, thinking and `toolCall` parts,
//!   `stopReason`; `stopReason: error|aborted` + `errorMessage` fail it, so a retry loop of
//!   "fetch failed" is a run of failed `Llm` spans); each `toolCall` → a `Tool` span beside its
//!   `Llm` span, completed by the `toolResult` with the same `toolCallId` (failed when `isError`
//!   or `details.status` is error/failed/timeout); `bashExecution` (a command the user ran) → a
//!   `Tool` span failed by a non-zero `exitCode` or `cancelled`; `custom`, `hookMessage`,
//!   `branchSummary`, `compactionSummary` → `System`.
//! - **Other entries.** `model_change`, `thinking_level_change`, `compaction`,
//!   `branch_summary`, `custom` and unknown types → `System` (unknown types warn once each);
//!   `label` is set as an attribute on its target span; `session_info` names the session.
//! - **Sub-agents.** `sessions_spawn` → `Tool` + `Handoff(Delegate)` beside it + an `Agent` span
//!   under the tool named after the `label` argument, else the `childSessionKey` of the result
//!   details. The sub-agent runs in its own session (another file), so its `Agent` span holds no
//!   model calls; it ends when a `custom_message` whose `customType` mentions "subagent"
//!   announces the result (matched by `runId`, then `childSessionKey`), and that announcement
//!   is a `Step` span attributed to the sub-agent. `sessions_send` → `Handoff(Message)`.
//! - **Tokens and cost.** pi's `usage.input` excludes cache reads and writes, so
//!   `input = input + cacheRead + cacheWrite`; `usage.cost.total` is a `Reported` USD cost.
//! - **Times.** Entry `timestamp` (ISO), else the message's epoch-ms `timestamp`. A message span
//!   ends at the timestamp of its first child entry (`time_inferred`); a tool ends at its result.
//! - **`step`** is the 0-based index of the entry among the non-header lines.
//!
//! **Trajectory** (`<sessionId>.trajectory.jsonl` runtime sidecar, or `events.jsonl` of an
//! export bundle): envelope lines with `traceSchema: "openclaw-trajectory"`. Runtime events
//! become spans under the root agent: `model.completed` is an `Llm` summary span of the run
//! (usage, `stopReason`, prompt from the run's `prompt.submitted`; `aborted`, `timedOut`,
//! `promptError` or `terminalError` fail it); every other type is a `System` span. Export bundles
//! also carry `source: "transcript"` events rebuilt from the active branch (`user.message`,
//! `assistant.message`, `tool.result`, `session.*`): they are turned back into transcript entries
//! and mapped as above. The run summary's usage aggregates the run's model calls, so when the
//! transcript's own assistant messages carry usage the summary is kept as `Subtree`. There,
//! `step` is the 0-based index of the event line; the agent comes from `sessionKey`
//! (`agent:<agentId>:…`), else the path, else "main".

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::{AdapterError, AdapterResult, Input, Parsed, lines_of};
use crate::builder::TraceBuilder;
use crate::model::{
    AgentInfo, Cost, CostSource, ErrorInfo, Format, Handoff, HandoffMode, Link, LinkKind, LlmCall,
    Message, Part, Payload, Role, SourceRef, Span, SpanKind, Status, ToolCall, Usage, UsageScope,
};
use crate::util::{
    as_f64, as_u64, flatten_into, get, get_str, maybe_json, parse_time, time_value, truncate,
};

/// Tool-result `details.status` values that mean the call failed.
const FAILED_STATUSES: [&str; 4] = ["error", "failed", "timeout", "errored"];
/// Longest string kept in an attribute; system prompts and snapshots can be huge.
const MAX_ATTRIBUTE_CHARS: usize = 2000;

// ---- transcript ---------------------------------------------------------------------------

pub(crate) fn parse_session(input: &Input) -> AdapterResult {
    let lines = lines_of(input);
    let Some(first) = lines.first() else {
        return Err(AdapterError::new(
            "expected a pi/OpenClaw session: a `session` header line, then entry lines",
        ));
    };
    let header = (get_str(&first.value, &["type"]) == Some("session")).then(|| first.value.clone());
    let version = header
        .as_ref()
        .and_then(|h| h.get("version"))
        .and_then(as_u64)
        .unwrap_or(1);
    let agent = agent_from_path(&input.file).unwrap_or_else(|| "main".to_owned());
    let trace_id = header
        .as_ref()
        .and_then(|h| get_str(h, &["id"]))
        .map_or_else(|| input.synth_id("openclaw-session"), str::to_owned);

    let mut t = Transcript::new(
        Format::OpenClawSession,
        trace_id.clone(),
        agent,
        input.at_line(first.line),
    );
    {
        let trace = t.b.trace_mut();
        trace.session_id = Some(trace_id);
        trace.format_version = Some(format!("pi-session/{version}"));
        if let Some(Value::Object(h)) = &header {
            for (k, v) in h {
                if !matches!(k.as_str(), "type" | "id" | "version") && !v.is_null() {
                    trace.metadata.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if header.is_none() {
        t.b.warn("no `session` header line; reading the lines as entries of an unknown version");
    }

    let body = if header.is_some() {
        lines.get(1..).unwrap_or_default()
    } else {
        &lines[..]
    };
    let mut entries = Vec::with_capacity(body.len());
    let mut previous: Option<String> = None;
    for (pos, line) in body.iter().enumerate() {
        if !line.value.is_object() {
            t.b.warn(format!("line {}: not a JSON object; skipped", line.line));
            continue;
        }
        let v = &line.value;
        // Version 1 has no ids: synthesize them and chain each entry to the one before.
        let id = get_str(v, &["id"]).map_or_else(|| format!("legacy-{pos}"), str::to_owned);
        let parent = match v.get("parentId") {
            Some(Value::String(p)) if !p.is_empty() => Some(p.clone()),
            Some(_) => None,
            None => previous.clone(),
        };
        previous = Some(id.clone());
        let ts = entry_time(v);
        entries.push(Entry {
            pos,
            id,
            parent,
            ts,
            value: line.value.clone(),
            source: input.at_line(line.line),
            active: false,
        });
    }
    if entries.is_empty() {
        return Err(AdapterError::new("the session has a header but no entries"));
    }
    mark_active_branch(&mut entries, &mut t.b);
    let openclaw = input.file.contains(".openclaw")
        || entries.iter().any(|e| {
            e.value
                .get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_array)
                .is_some_and(|parts| {
                    parts
                        .iter()
                        .any(|p| get_str(p, &["name"]).is_some_and(|n| n.starts_with("sessions_")))
                })
        });
    t.b.trace_mut()
        .metadata
        .insert("openclaw".to_owned(), Value::Bool(openclaw));
    t.run(&entries);
    Ok(vec![Parsed::unlabelled(t.finish())])
}

/// The agent id from a path like `~/.openclaw/agents/<agentId>/sessions/<id>.jsonl`.
fn agent_from_path(path: &str) -> Option<String> {
    let normalized = path.replace('\\', "/");
    let mut parts = normalized.split('/');
    while let Some(part) = parts.next() {
        if part == "agents" {
            let id = parts.next()?;
            // Only a folder: the agent id is never the file itself.
            return (!id.is_empty() && parts.next().is_some()).then(|| id.to_owned());
        }
    }
    None
}

/// Entries that record user bookkeeping (labels, session names) rather than conversation.
fn is_bookkeeping(e: &Entry) -> bool {
    matches!(get_str(&e.value, &["type"]), Some("label" | "session_info"))
}

fn entry_time(v: &Value) -> Option<i64> {
    v.get("timestamp").and_then(time_value).or_else(|| {
        v.get("message")
            .and_then(|m| m.get("timestamp"))
            .and_then(time_value)
    })
}

/// One transcript entry, with its place in the tree.
#[derive(Debug)]
struct Entry {
    /// 0-based index among the non-header lines (`Span::step`).
    pos: usize,
    id: String,
    parent: Option<String>,
    ts: Option<i64>,
    value: Value,
    source: SourceRef,
    /// On the path from the last entry to the root.
    active: bool,
}

/// Marks the entries on the path from the last entry back to the root.
fn mark_active_branch(entries: &mut [Entry], b: &mut TraceBuilder) {
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .rev()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let mut on_path = HashSet::new();
    let mut cur = entries.len().checked_sub(1);
    let mut broken = false;
    while let Some(i) = cur {
        if !on_path.insert(i) {
            b.warn("the entry tree has a parentId cycle; the active branch stops there");
            break;
        }
        cur = match entries.get(i).and_then(|e| e.parent.as_deref()) {
            Some(p) => {
                let next = index.get(p).copied();
                broken |= next.is_none();
                next
            }
            None => None,
        };
    }
    if broken {
        b.warn("the active branch names a parentId that is not in the file; it starts at the last entry found");
    }
    for i in on_path {
        if let Some(e) = entries.get_mut(i) {
            e.active = true;
        }
    }
}

/// A `sessions_spawn` call and what became of it.
#[derive(Debug)]
struct Spawn {
    tool: usize,
    handoff: usize,
    label: Option<String>,
    model: Option<String>,
    task: Option<String>,
    child_key: Option<String>,
    run_id: Option<String>,
    accepted_at: Option<i64>,
    /// The announcement: time, text, outcome, source.
    announced: Option<(Option<i64>, String, Option<String>)>,
}

impl Spawn {
    fn agent_name(&self) -> String {
        self.label
            .clone()
            .or_else(|| self.child_key.clone())
            .unwrap_or_else(|| "subagent".to_owned())
    }
}

/// Builds a trace from transcript entries (read from a session file or rebuilt from
/// trajectory events).
struct Transcript {
    b: TraceBuilder,
    root: usize,
    agent: String,
    turns: usize,
    /// Entry id → the turn span it belongs to.
    turn_of: HashMap<String, usize>,
    /// Entry id → the span that entry became (for links and labels).
    span_of_entry: HashMap<String, usize>,
    /// Entry id → index in the entry list (to walk back for model inputs).
    entry_index: HashMap<String, usize>,
    tools: HashMap<String, usize>,
    spawns: Vec<Spawn>,
    warned: HashSet<String>,
    orphan_results: usize,
    missing_parents: usize,
    /// The last assistant message on the active branch.
    last_active_llm: Option<usize>,
}

impl Transcript {
    fn new(format: Format, id: String, agent: String, source: SourceRef) -> Self {
        let mut b = TraceBuilder::new(format, id);
        let root = b.push(Span {
            id: format!("agent-{agent}"),
            kind: SpanKind::Agent,
            name: agent.clone(),
            agent: Some(agent.clone()),
            source,
            ..Span::default()
        });
        Transcript {
            b,
            root,
            agent,
            turns: 0,
            turn_of: HashMap::new(),
            span_of_entry: HashMap::new(),
            entry_index: HashMap::new(),
            tools: HashMap::new(),
            spawns: Vec::new(),
            warned: HashSet::new(),
            orphan_results: 0,
            missing_parents: 0,
            last_active_llm: None,
        }
    }

    fn warn_once(&mut self, key: &str, message: String) {
        if self.warned.insert(key.to_owned()) {
            self.b.warn(message);
        }
    }

    fn run(&mut self, entries: &[Entry]) {
        for (i, e) in entries.iter().enumerate() {
            self.entry_index.entry(e.id.clone()).or_insert(i);
        }
        // A message span ends when its first child entry was written.
        // Labels and session names are written whenever the user sets them: they end nothing.
        let mut first_child_time: HashMap<&str, i64> = HashMap::new();
        for e in entries.iter().filter(|e| !is_bookkeeping(e)) {
            if let (Some(p), Some(ts)) = (e.parent.as_deref(), e.ts) {
                first_child_time.entry(p).or_insert(ts);
            }
        }
        for e in entries {
            if let Some(p) = &e.parent
                && !self.entry_index.contains_key(p)
            {
                self.missing_parents += 1;
            }
            let before = self.b.len();
            self.entry(e, entries);
            let end = first_child_time.get(e.id.as_str()).copied();
            for idx in before..self.b.len() {
                let span = self.b.span_mut(idx);
                if !e.active {
                    span.attributes
                        .insert("branch.abandoned".to_owned(), Value::Bool(true));
                }
                // Only the entry's own message span; tools end at their results.
                let is_message_span = matches!(
                    span.kind,
                    SpanKind::Llm | SpanKind::Human | SpanKind::System | SpanKind::Step
                );
                if is_message_span
                    && span.end_ns.is_none()
                    && span.id == e.id
                    && let Some(end) = end.filter(|t| span.start_ns.is_none_or(|s| s <= *t))
                {
                    span.end_ns = Some(end);
                    span.time_inferred = true;
                }
            }
            // The turn lasts until its last entry.
            if let (Some(ts), Some(&turn), false) =
                (e.ts, self.turn_of.get(&e.id), is_bookkeeping(e))
            {
                let span = self.b.span_mut(turn);
                span.end_ns = Some(span.end_ns.map_or(ts, |x| x.max(ts)));
                span.time_inferred = true;
            }
        }
    }

    /// The span that holds an entry's spans: its turn, else the root agent.
    fn container(&self, e: &Entry) -> usize {
        self.turn_of.get(&e.id).copied().unwrap_or(self.root)
    }

    fn inherit_turn(&mut self, e: &Entry) {
        if let Some(&turn) = e.parent.as_ref().and_then(|p| self.turn_of.get(p)) {
            self.turn_of.insert(e.id.clone(), turn);
        }
    }

    fn entry_span(e: &Entry, kind: SpanKind, name: &str) -> Span {
        let mut span = Span {
            id: e.id.clone(),
            kind,
            name: name.to_owned(),
            step: Some(e.pos as u32),
            start_ns: e.ts,
            source: e.source.clone(),
            ..Span::default()
        };
        if let Some(p) = &e.parent {
            span.links.push(Link {
                kind: LinkKind::FollowsFrom,
                target: p.clone(),
            });
        }
        span
    }

    fn push_entry_span(&mut self, e: &Entry, mut span: Span) -> usize {
        if get_str(&e.value, &["type"]) == Some("message") && span.id == e.id {
            // Fields with no canonical slot, on the entry and on its message.
            let msg = e.value.get("message").unwrap_or(&Value::Null);
            for (k, v) in unmapped_message(msg) {
                span.attributes.entry(k).or_insert(v);
            }
            if let Value::Object(o) = &e.value {
                for (k, v) in o {
                    if !matches!(
                        k.as_str(),
                        "type" | "id" | "parentId" | "timestamp" | "message"
                    ) && !v.is_null()
                    {
                        span.attributes
                            .entry(k.clone())
                            .or_insert_with(|| v.clone());
                    }
                }
            }
        }
        let parent = self.container(e);
        let idx = self.b.push_child(parent, span);
        self.span_of_entry.insert(e.id.clone(), idx);
        idx
    }

    fn entry(&mut self, e: &Entry, entries: &[Entry]) {
        let kind = get_str(&e.value, &["type"]).unwrap_or("");
        let is_user = kind == "message"
            && get(&e.value, &["message", "role"]).and_then(Value::as_str) == Some("user");
        if !is_user {
            self.inherit_turn(e);
        }
        match kind {
            "message" => self.message(e, entries),
            "model_change" => {
                let mut span = Self::entry_span(e, SpanKind::System, "model_change");
                span.attributes = attributes(&e.value, &["provider", "modelId"]);
                self.push_entry_span(e, span);
            }
            "thinking_level_change" => {
                let mut span = Self::entry_span(e, SpanKind::System, "thinking_level_change");
                span.attributes = attributes(&e.value, &["thinkingLevel"]);
                self.push_entry_span(e, span);
            }
            "compaction" | "branch_summary" => {
                let mut span = Self::entry_span(e, SpanKind::System, kind);
                span.output = (get_str(&e.value, &["summary"]).map(Payload::text)).map(Box::new);
                span.attributes = attributes(
                    &e.value,
                    &[
                        "firstKeptEntryId",
                        "tokensBefore",
                        "fromId",
                        "fromHook",
                        "details",
                    ],
                );
                self.push_entry_span(e, span);
            }
            "custom" => {
                let custom_type = get_str(&e.value, &["customType"]).unwrap_or("custom");
                let mut span =
                    Self::entry_span(e, SpanKind::System, &format!("custom: {custom_type}"));
                span.attributes = attributes(&e.value, &["customType", "data"]);
                self.push_entry_span(e, span);
            }
            "custom_message" => self.custom_message(e),
            "label" => {
                let target = get_str(&e.value, &["targetId"])
                    .and_then(|t| self.span_of_entry.get(t).copied());
                let label = e.value.get("label").cloned().unwrap_or(Value::Null);
                match target {
                    Some(idx) => {
                        self.b
                            .span_mut(idx)
                            .attributes
                            .insert("label".to_owned(), label);
                    }
                    None => self.b.warn(format!(
                        "entry {}: label for an unknown entry; ignored",
                        e.id
                    )),
                }
            }
            "session_info" => {
                if let Some(name) = get_str(&e.value, &["name"]) {
                    self.b
                        .trace_mut()
                        .metadata
                        .insert("session_name".to_owned(), Value::from(name));
                }
            }
            "" => self.warn_once(
                "<no type>",
                format!(
                    "entry {}: no `type`; such entries were kept as system spans",
                    e.id
                ),
            ),
            other => {
                self.warn_once(
                    other,
                    format!(
                        "unknown entry type `{other}` (first at entry {}); kept as system spans",
                        e.id
                    ),
                );
                let mut span = Self::entry_span(e, SpanKind::System, other);
                span.attributes = unmapped(&e.value);
                self.push_entry_span(e, span);
            }
        }
    }

    fn message(&mut self, e: &Entry, entries: &[Entry]) {
        let msg = e.value.get("message").unwrap_or(&Value::Null);
        let role = get_str(msg, &["role"]).unwrap_or("");
        match role {
            "user" => self.user(e, msg),
            "assistant" => self.assistant(e, msg, entries),
            "toolResult" => self.tool_result(e, msg),
            "bashExecution" => self.bash(e, msg),
            "custom" | "hookMessage" | "branchSummary" | "compactionSummary" => {
                let name = get_str(msg, &["customType"]).unwrap_or(role);
                let mut span = Self::entry_span(e, SpanKind::System, name);
                let text = msg
                    .get("content")
                    .or_else(|| msg.get("summary"))
                    .map(content_text)
                    .unwrap_or_default();
                span.output = ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new);
                span.attributes = unmapped_message(msg);
                self.push_entry_span(e, span);
            }
            other => {
                let key = format!("role:{other}");
                self.warn_once(
                    &key,
                    format!(
                        "entry {}: unknown message role `{other}`; kept as a system span",
                        e.id
                    ),
                );
                let mut span = Self::entry_span(
                    e,
                    SpanKind::System,
                    if other.is_empty() { "message" } else { other },
                );
                span.attributes = unmapped_message(msg);
                self.push_entry_span(e, span);
            }
        }
    }

    fn user(&mut self, e: &Entry, msg: &Value) {
        self.turns += 1;
        let mut turn = Self::entry_span(e, SpanKind::Step, "turn");
        turn.id = format!("turn-{}", self.turns);
        turn.name = format!("turn {}", self.turns);
        turn.links.clear();
        let turn_idx = self.b.push_child(self.root, turn);
        self.turn_of.insert(e.id.clone(), turn_idx);
        let text = msg.get("content").map(content_text).unwrap_or_default();
        let mut span = Self::entry_span(e, SpanKind::Human, "user");
        if let Some(envelope) = channel_envelope(&text) {
            span.attributes
                .insert("channel.envelope".to_owned(), Value::from(envelope));
            self.b
                .trace_mut()
                .metadata
                .insert("openclaw".to_owned(), Value::Bool(true));
        }
        if e.active && self.b.trace_mut().task.is_none() {
            // The task is the first prompt of the conversation that was kept.
            self.b.trace_mut().task = Some(text.clone()).filter(|t| !t.is_empty());
        }
        span.input = Some(Box::new(Payload::text(text)));
        self.push_entry_span(e, span);
    }

    fn assistant(&mut self, e: &Entry, msg: &Value, entries: &[Entry]) {
        let model = get_str(msg, &["model"]).map(str::to_owned);
        let stop = get_str(msg, &["stopReason"]).map(str::to_owned);
        let mut parts = Vec::new();
        let mut calls = Vec::new();
        if let Some(blocks) = msg.get("content").and_then(Value::as_array) {
            for (k, block) in blocks.iter().enumerate() {
                match get_str(block, &["type"]) {
                    Some("text") => parts.push(Part::Text {
                        text: get_str(block, &["text"]).unwrap_or_default().to_owned(),
                    }),
                    Some("thinking") => {
                        parts.push(Part::Reasoning {
                            text: get_str(block, &["thinking"]).unwrap_or_default().to_owned(),
                        });
                    }
                    Some("toolCall") => {
                        let name = get_str(block, &["name"]).unwrap_or("tool").to_owned();
                        let id = get_str(block, &["id"])
                            .map_or_else(|| format!("{}.{k}", e.id), str::to_owned);
                        let args = match block.get("arguments") {
                            Some(Value::String(s)) => maybe_json(s),
                            Some(v) => v.clone(),
                            None => Value::Null,
                        };
                        parts.push(Part::ToolCall {
                            id: Some(id.clone()),
                            name: name.clone(),
                            arguments: args.clone(),
                        });
                        calls.push((id, name, args));
                    }
                    Some("image") => parts.push(Part::Media {
                        mime: get_str(block, &["mimeType"]).map(str::to_owned),
                        uri: None,
                    }),
                    _ => {}
                }
            }
        } else if let Some(text) = msg.get("content").and_then(Value::as_str) {
            parts.push(Part::Text {
                text: text.to_owned(),
            });
        }
        let out = Message {
            role: Role::Assistant,
            name: None,
            parts,
        };
        let text = out.joined_text();
        let usage = msg.get("usage").and_then(pi_usage);
        let cost = msg.get("usage").and_then(pi_cost);
        let failed = matches!(stop.as_deref(), Some("error" | "aborted"));
        let mut span = Self::entry_span(e, SpanKind::Llm, model.as_deref().unwrap_or("assistant"));
        span.status = if failed { Status::Error } else { Status::Ok };
        if failed {
            span.error = Some(Box::new(ErrorInfo {
                kind: stop.clone(),
                message: get_str(msg, &["errorMessage"]).map_or_else(
                    || format!("model call {}", stop.clone().unwrap_or_default()),
                    first_line,
                ),
                ..ErrorInfo::default()
            }));
        }
        span.output = ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new);
        let mut params = BTreeMap::new();
        if let Some(api) = msg.get("api").filter(|v| !v.is_null()) {
            params.insert("api".to_owned(), api.clone());
        }
        span.llm = Some(Box::new(LlmCall {
            provider: get_str(msg, &["provider"]).map(str::to_owned),
            request_model: model.clone(),
            response_model: model,
            input_messages: self.model_input(e, entries),
            output_messages: vec![out],
            finish_reason: stop,
            params,
        }));
        span.usage = usage.map(Box::new);
        span.cost = cost;
        let llm_idx = self.push_entry_span(e, span);
        if e.active {
            self.last_active_llm = Some(llm_idx);
        }
        for (id, name, args) in calls {
            self.tool_call(e, &id, &name, &args);
        }
    }

    /// Messages the model saw since its previous answer on the same branch.
    fn model_input(&self, e: &Entry, entries: &[Entry]) -> Vec<Message> {
        let mut out = Vec::new();
        let mut cur = e.parent.as_deref();
        let mut budget = 64;
        while let (Some(id), true) = (cur, budget > 0) {
            budget -= 1;
            let Some(entry) = self.entry_index.get(id).and_then(|&i| entries.get(i)) else {
                break;
            };
            let msg = entry.value.get("message");
            let role = msg.and_then(|m| get_str(m, &["role"]));
            if role == Some("assistant") {
                break;
            }
            if let Some(message) = msg.and_then(as_input_message) {
                out.push(message);
            } else if get_str(&entry.value, &["type"]) == Some("custom_message") {
                let text = entry
                    .value
                    .get("content")
                    .map(content_text)
                    .unwrap_or_default();
                out.push(Message {
                    role: Role::User,
                    name: get_str(&entry.value, &["customType"]).map(str::to_owned),
                    parts: vec![Part::Text { text }],
                });
            }
            cur = entry.parent.as_deref();
        }
        out.reverse();
        out
    }

    fn tool_call(&mut self, e: &Entry, id: &str, name: &str, args: &Value) {
        let llm_id = e.id.clone();
        let mut span = Self::entry_span(e, SpanKind::Tool, name);
        id.clone_into(&mut span.id);
        span.links = vec![Link {
            kind: LinkKind::FollowsFrom,
            target: llm_id.clone(),
        }];
        span.input = Some(Box::new(Payload::from_json(args.clone())));
        span.tool = Some(Box::new(ToolCall {
            name: name.to_owned(),
            call_id: Some(id.to_owned()),
            arguments: args.clone(),
            ..ToolCall::default()
        }));
        let parent = self.container(e);
        let tool = self.b.push_child(parent, span);
        self.tools.insert(id.to_owned(), tool);
        let (mode, to) = match name {
            "sessions_spawn" => (HandoffMode::Delegate, None),
            "sessions_send" => {
                let key = get_str(args, &["sessionKey"])
                    .or_else(|| get_str(args, &["label"]))
                    .unwrap_or("unknown");
                // Messages to a spawned child go to that child's agent name.
                let to = self
                    .spawns
                    .iter()
                    .find(|s| {
                        s.child_key.as_deref() == Some(key) || s.label.as_deref() == Some(key)
                    })
                    .map_or_else(|| key.to_owned(), Spawn::agent_name);
                (HandoffMode::Message, Some(to))
            }
            _ => return,
        };
        let label = get_str(args, &["label"]).map(str::to_owned);
        let to = to.unwrap_or_else(|| label.clone().unwrap_or_else(|| "subagent".to_owned()));
        let mut handoff = Self::entry_span(
            e,
            SpanKind::Handoff,
            &format!(
                "{} {to}",
                if mode == HandoffMode::Delegate {
                    "delegate to"
                } else {
                    "message to"
                }
            ),
        );
        handoff.id = format!("{id}.handoff");
        handoff.end_ns = e.ts;
        handoff.links = vec![Link {
            kind: LinkKind::FollowsFrom,
            target: id.to_owned(),
        }];
        handoff.handoff = Some(Box::new(Handoff {
            from: Some(self.agent.clone()),
            to,
            mode,
        }));
        let handoff = self.b.push_child(parent, handoff);
        if mode == HandoffMode::Delegate {
            self.spawns.push(Spawn {
                tool,
                handoff,
                label,
                model: get_str(args, &["model"]).map(str::to_owned),
                task: get_str(args, &["task"]).map(str::to_owned),
                child_key: None,
                run_id: None,
                accepted_at: None,
                announced: None,
            });
        }
    }

    fn tool_result(&mut self, e: &Entry, msg: &Value) {
        let call_id = get_str(msg, &["toolCallId"]).map(str::to_owned);
        let tool_name = get_str(msg, &["toolName"]).unwrap_or("unknown").to_owned();
        let text = msg.get("content").map(content_text).unwrap_or_default();
        let details = msg.get("details").filter(|d| !d.is_null());
        let details_status = details.and_then(|d| get_str(d, &["status"]));
        let flagged = msg.get("isError").and_then(Value::as_bool) == Some(true);
        let status_failed = details_status.is_some_and(|s| FAILED_STATUSES.contains(&s));
        let is_error = flagged || status_failed;
        let idx = if let Some(&idx) = call_id.as_deref().and_then(|id| self.tools.get(id)) {
            idx
        } else {
            self.orphan_results += 1;
            let mut span = Self::entry_span(e, SpanKind::Tool, &tool_name);
            if let Some(id) = &call_id {
                span.id.clone_from(id);
            }
            span.tool = Some(Box::new(ToolCall {
                name: tool_name.clone(),
                call_id: call_id.clone(),
                ..ToolCall::default()
            }));
            let parent = self.container(e);
            self.b.push_child(parent, span)
        };
        self.span_of_entry.insert(e.id.clone(), idx);
        let span = self.b.span_mut(idx);
        if e.ts.is_some() {
            span.end_ns = e.ts;
            span.time_inferred = false;
        }
        span.output = Some(Box::new(Payload {
            text: text.clone(),
            json: details.cloned(),
            mime: None,
        }));
        span.attributes
            .insert("result.step".to_owned(), Value::from(e.pos as u32));
        span.attributes
            .insert("result.entry".to_owned(), Value::from(e.id.clone()));
        if let Some(tool) = &mut span.tool {
            tool.result = Some(maybe_json(&text));
            tool.is_error = is_error;
        }
        if is_error {
            let message = details.and_then(|d| get_str(d, &["error"])).map_or_else(
                || {
                    if text.trim().is_empty() {
                        "tool error".to_owned()
                    } else {
                        text.clone()
                    }
                },
                str::to_owned,
            );
            span.status = Status::Error;
            span.error = Some(Box::new(ErrorInfo {
                kind: if flagged {
                    None
                } else {
                    details_status.map(|s| format!("details.status={s}"))
                },
                message: first_line(&message),
                ..ErrorInfo::default()
            }));
        } else {
            span.status = Status::Ok;
        }
        if let Some(spawn) = self.spawns.iter_mut().find(|s| s.tool == idx) {
            spawn.child_key = details
                .and_then(|d| get_str(d, &["childSessionKey"]))
                .map(str::to_owned);
            spawn.run_id = details
                .and_then(|d| get_str(d, &["runId"]))
                .map(str::to_owned);
            spawn.accepted_at = e.ts;
        }
    }

    fn bash(&mut self, e: &Entry, msg: &Value) {
        let command = get_str(msg, &["command"]).unwrap_or_default().to_owned();
        let output = msg.get("output").map(content_text).unwrap_or_default();
        let exit = msg.get("exitCode").and_then(Value::as_i64);
        let cancelled = msg.get("cancelled").and_then(Value::as_bool) == Some(true);
        let args = serde_json::json!({ "command": command });
        let mut span = Self::entry_span(e, SpanKind::Tool, "bash");
        span.input = Some(Box::new(Payload::text(command)));
        span.output = Some(Box::new(Payload::text(output.clone())));
        span.tool = Some(Box::new(ToolCall {
            name: "bash".to_owned(),
            call_id: None,
            arguments: args,
            result: Some(Value::String(output.clone())),
            is_error: cancelled || exit.is_some_and(|c| c != 0),
        }));
        span.attributes = unmapped_message(msg);
        span.attributes
            .insert("initiator".to_owned(), Value::from("user"));
        if cancelled {
            span.status = Status::Error;
            span.error = Some(Box::new(ErrorInfo {
                kind: Some("cancelled".to_owned()),
                message: "command cancelled".to_owned(),
                ..ErrorInfo::default()
            }));
        } else if let Some(code) = exit.filter(|c| *c != 0) {
            span.status = Status::Error;
            let detail = output
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            span.error = Some(Box::new(ErrorInfo {
                kind: Some("exit_code".to_owned()),
                message: truncate(&format!("exit code {code}: {}", detail.trim()), 300),
                ..ErrorInfo::default()
            }));
        } else if exit.is_some() {
            span.status = Status::Ok;
        }
        self.push_entry_span(e, span);
    }

    fn custom_message(&mut self, e: &Entry) {
        let custom_type = get_str(&e.value, &["customType"])
            .unwrap_or("custom_message")
            .to_owned();
        let text = e.value.get("content").map(content_text).unwrap_or_default();
        let details = e.value.get("details").filter(|d| !d.is_null());
        let mut attrs = attributes(&e.value, &["customType", "display", "details"]);
        if custom_type.to_ascii_lowercase().contains("subagent") {
            let run_id = details.and_then(|d| get_str(d, &["runId"]));
            let child = details.and_then(|d| {
                get_str(d, &["childSessionKey"]).or_else(|| get_str(d, &["sessionKey"]))
            });
            let found = self
                .spawns
                .iter()
                .position(|s| {
                    s.announced.is_none() && run_id.is_some() && s.run_id.as_deref() == run_id
                })
                .or_else(|| {
                    self.spawns.iter().position(|s| {
                        s.announced.is_none() && child.is_some() && s.child_key.as_deref() == child
                    })
                })
                .or_else(|| {
                    self.spawns.iter().position(|s| {
                        s.announced.is_none()
                            && s.label.as_deref().is_some_and(|l| text.contains(l))
                    })
                });
            let outcome = details
                .and_then(|d| get_str(d, &["status"]))
                .map(str::to_owned);
            let mut span = Self::entry_span(e, SpanKind::Step, &custom_type);
            span.output = Some(Box::new(Payload::text(text.clone())));
            if let Some(i) = found {
                if let Some(spawn) = self.spawns.get_mut(i) {
                    spawn.announced = Some((e.ts, text, outcome));
                    span.agent = Some(spawn.agent_name());
                }
            } else {
                self.b.warn(format!(
                    "entry {}: sub-agent announcement matches no sessions_spawn call",
                    e.id
                ));
            }
            span.attributes = std::mem::take(&mut attrs);
            self.push_entry_span(e, span);
            return;
        }
        let mut span = Self::entry_span(e, SpanKind::System, &custom_type);
        span.output = ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new);
        span.attributes = attrs;
        self.push_entry_span(e, span);
    }

    fn finish(mut self) -> crate::model::Trace {
        if self.orphan_results > 0 {
            let n = self.orphan_results;
            self.b.warn(format!(
                "{n} tool result(s) name a toolCallId that is not in the transcript"
            ));
        }
        if self.missing_parents > 0 {
            let n = self.missing_parents;
            self.b.warn(format!(
                "{n} entries name a parentId that is not in the file"
            ));
        }
        let spawns = std::mem::take(&mut self.spawns);
        for spawn in &spawns {
            self.spawned_agent(spawn);
        }
        let root = self.root;
        let last = self.last_active_llm.map(|l| {
            (
                self.b.span(l).status,
                self.b.span(l).error.clone(),
                self.b.span(l).output.clone(),
            )
        });
        let (first, end) = {
            let spans = (0..self.b.len()).map(|i| self.b.span(i));
            let starts: Vec<i64> = spans.clone().filter_map(|s| s.start_ns).collect();
            let ends: Vec<i64> = spans.filter_map(|s| s.end_ns.or(s.start_ns)).collect();
            (starts.iter().min().copied(), ends.iter().max().copied())
        };
        let span = self.b.span_mut(root);
        span.start_ns = first;
        span.end_ns = end;
        if let Some((status, error, output)) = last {
            span.status = if status == Status::Error {
                Status::Error
            } else {
                Status::Ok
            };
            span.error = error.filter(|_| status == Status::Error);
            span.output = output;
        }
        self.b.finish()
    }

    /// The `Agent` span of a spawned sub-agent, under its `sessions_spawn` tool span.
    fn spawned_agent(&mut self, spawn: &Spawn) {
        let name = spawn.agent_name();
        let tool = self.b.span(spawn.tool);
        let abandoned = tool.attributes.get("branch.abandoned").cloned();
        let tool_failed = tool.status == Status::Error;
        let start = spawn.accepted_at.or(tool.start_ns);
        let source = tool.source.clone();
        let step = tool.step;
        let (end, output, outcome) = match &spawn.announced {
            Some((ts, text, outcome)) => (*ts, Some(text.clone()), outcome.clone()),
            None => (None, None, None),
        };
        let failed = tool_failed
            || outcome
                .as_deref()
                .is_some_and(|o| FAILED_STATUSES.contains(&o));
        let status = if failed {
            Status::Error
        } else if spawn.announced.is_some() {
            Status::Ok
        } else {
            Status::Unset
        };
        let mut attributes = BTreeMap::new();
        for (k, v) in [
            ("childSessionKey", &spawn.child_key),
            ("runId", &spawn.run_id),
            ("outcome", &outcome),
        ] {
            if let Some(v) = v {
                attributes.insert(k.to_owned(), Value::from(v.clone()));
            }
        }
        if let Some(a) = abandoned {
            attributes.insert("branch.abandoned".to_owned(), a);
        }
        let span = Span {
            id: format!(
                "agent-{}",
                spawn
                    .child_key
                    .clone()
                    .unwrap_or_else(|| format!("{}-{}", name, spawn.tool))
            ),
            kind: SpanKind::Agent,
            name: name.clone(),
            agent: Some(name.clone()),
            step,
            start_ns: start,
            end_ns: end,
            status,
            error: (failed.then(|| ErrorInfo {
                message: output
                    .clone()
                    .map_or_else(|| "sub-agent failed".to_owned(), |o| first_line(&o)),
                ..ErrorInfo::default()
            }))
            .map(Box::new),
            input: (spawn.task.clone().map(Payload::text)).map(Box::new),
            output: (output.map(Payload::text)).map(Box::new),
            attributes,
            source,
            ..Span::default()
        };
        self.b.push_child(spawn.tool, span);
        if let Some(h) = &mut self.b.span_mut(spawn.handoff).handoff {
            h.to.clone_from(&name);
        }
        self.b.span_mut(spawn.handoff).name = format!("delegate to {name}");
        self.b.agent(AgentInfo {
            name,
            id: spawn.child_key.clone(),
            role: Some("subagent".to_owned()),
            model: spawn.model.clone(),
            parent_agent: Some(self.agent.clone()),
        });
    }
}

/// A model input message from a transcript entry (user text, tool results, bash output).
fn as_input_message(msg: &Value) -> Option<Message> {
    match get_str(msg, &["role"])? {
        "user" => Some(Message::text(
            Role::User,
            msg.get("content").map(content_text).unwrap_or_default(),
        )),
        "toolResult" => Some(Message {
            role: Role::Tool,
            name: get_str(msg, &["toolName"]).map(str::to_owned),
            parts: vec![Part::ToolResult {
                id: get_str(msg, &["toolCallId"]).map(str::to_owned),
                content: Value::String(msg.get("content").map(content_text).unwrap_or_default()),
                is_error: msg.get("isError").and_then(Value::as_bool) == Some(true),
            }],
        }),
        "bashExecution" => Some(Message::text(
            Role::User,
            msg.get("output").map(content_text).unwrap_or_default(),
        )),
        _ => None,
    }
}

/// `[Telegram Alice id:4711] text` → `Telegram Alice id:4711`.
fn channel_envelope(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('[')?;
    let end = rest.find(']')?;
    let inner = rest.get(..end)?;
    (end <= 160 && inner.contains(" id:")).then_some(inner)
}

/// Text of pi content: a string, or the text parts of a part list (images are named).
fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                    Some("text") => o.get("text").and_then(Value::as_str).map(str::to_owned),
                    Some("image") => Some("[image]".to_owned()),
                    _ => None,
                },
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

/// pi usage, normalized so that `input` includes cache reads and writes.
fn pi_usage(u: &Value) -> Option<Usage> {
    let base = u.get("input").and_then(as_u64);
    let read = u.get("cacheRead").and_then(as_u64);
    let write = u.get("cacheWrite").and_then(as_u64);
    let output = u.get("output").and_then(as_u64);
    if base.is_none() && read.is_none() && write.is_none() && output.is_none() {
        return None;
    }
    let input = base
        .unwrap_or(0)
        .saturating_add(read.unwrap_or(0))
        .saturating_add(write.unwrap_or(0));
    let total = u
        .get("totalTokens")
        .or_else(|| u.get("total"))
        .and_then(as_u64);
    Some(Usage {
        input: Some(input),
        output,
        cache_read: read,
        cache_write: write,
        reasoning: None,
        total: total.or(Some(input.saturating_add(output.unwrap_or(0)))),
        estimated: false,
    })
}

fn pi_cost(u: &Value) -> Option<Cost> {
    let amount = u
        .get("cost")
        .and_then(|c| c.get("total"))
        .and_then(as_f64)?;
    amount.is_finite().then(|| Cost {
        amount,
        currency: "USD".to_owned(),
        source: CostSource::Reported,
    })
}

/// Selected fields of an entry as attributes (flattened, long strings cut).
fn attributes(v: &Value, keys: &[&str]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for key in keys {
        if let Some(x) = v.get(*key).filter(|x| !x.is_null()) {
            flatten_into(key, x, &mut out);
        }
    }
    cut_long_strings(&mut out);
    out
}

/// Entry fields with no canonical slot.
fn unmapped(v: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Value::Object(o) = v {
        for (k, x) in o {
            if !matches!(k.as_str(), "type" | "id" | "parentId" | "timestamp") && !x.is_null() {
                flatten_into(k, x, &mut out);
            }
        }
    }
    cut_long_strings(&mut out);
    out
}

/// Message fields mapped elsewhere (content, usage, model, tool ids, errors).
const MAPPED_MESSAGE_KEYS: [&str; 16] = [
    "role",
    "content",
    "timestamp",
    "command",
    "output",
    "summary",
    "usage",
    "model",
    "provider",
    "api",
    "stopReason",
    "errorMessage",
    "toolCallId",
    "toolName",
    "details",
    "isError",
];

fn unmapped_message(msg: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Value::Object(o) = msg {
        for (k, x) in o {
            if !MAPPED_MESSAGE_KEYS.contains(&k.as_str()) && !x.is_null() {
                flatten_into(k, x, &mut out);
            }
        }
    }
    cut_long_strings(&mut out);
    out
}

fn cut_long_strings(map: &mut BTreeMap<String, Value>) {
    for v in map.values_mut() {
        if let Value::String(s) = v
            && s.len() > MAX_ATTRIBUTE_CHARS
        {
            *s = truncate(s, MAX_ATTRIBUTE_CHARS);
        }
    }
}

// ---- trajectory ---------------------------------------------------------------------------

pub(crate) fn parse_trajectory(input: &Input) -> AdapterResult {
    let lines = lines_of(input);
    let events: Vec<(usize, &super::JsonLine)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| get_str(&l.value, &["traceSchema"]) == Some("openclaw-trajectory"))
        .collect();
    let Some((_, first)) = events.first() else {
        return Err(AdapterError::new(
            "expected OpenClaw trajectory lines with `traceSchema: \"openclaw-trajectory\"`",
        ));
    };
    let skipped = lines.len() - events.len();
    let fv = &first.value;
    let trace_id = get_str(fv, &["traceId"])
        .or_else(|| get_str(fv, &["sessionId"]))
        .map_or_else(|| input.synth_id("openclaw-trajectory"), str::to_owned);
    let session_key = events
        .iter()
        .find_map(|(_, l)| get_str(&l.value, &["sessionKey"]));
    let agent = session_key
        .and_then(|k| k.strip_prefix("agent:"))
        .and_then(|k| k.split(':').next())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .or_else(|| agent_from_path(&input.file))
        .unwrap_or_else(|| "main".to_owned());
    let mut t = Transcript::new(
        Format::OpenClawTrajectory,
        trace_id,
        agent,
        input.at_line(first.line),
    );
    {
        let trace = t.b.trace_mut();
        trace.format_version = Some(format!(
            "openclaw-trajectory/{}",
            fv.get("schemaVersion").map_or_else(
                || "1".to_owned(),
                |v| v.to_string().trim_matches('"').to_owned()
            )
        ));
        trace.session_id = session_key
            .or_else(|| get_str(fv, &["sessionId"]))
            .map(str::to_owned);
        for key in ["sessionId", "sessionKey", "workspaceDir"] {
            if let Some(v) = events
                .iter()
                .find_map(|(_, l)| l.value.get(key).filter(|v| !v.is_null()))
            {
                trace.metadata.insert(key.to_owned(), v.clone());
            }
        }
    }
    if skipped > 0 {
        t.b.warn(format!(
            "{skipped} line(s) without `traceSchema: \"openclaw-trajectory\"` were skipped"
        ));
    }

    // Transcript events of an export bundle, rebuilt as transcript entries.
    let mut entries = Vec::new();
    let mut runtime = Vec::new();
    for (pos, line) in &events {
        let v = &line.value;
        if get_str(v, &["source"]) == Some("transcript") {
            if let Some(entry) = transcript_entry(v, *pos, input.at_line(line.line)) {
                entries.push(entry);
            }
        } else {
            runtime.push((*pos, *line));
        }
    }
    let transcript_usage = entries.iter().any(|e| {
        get(&e.value, &["message", "role"]).and_then(Value::as_str) == Some("assistant")
            && get(&e.value, &["message", "usage"]).is_some_and(|u| !u.is_null())
    });
    if !entries.is_empty() {
        // The export holds the active branch only.
        for e in &mut entries {
            e.active = true;
        }
        t.run(&entries);
    }

    // The prompt of each run, for its model summary span.
    let mut prompts: HashMap<String, (Option<i64>, String)> = HashMap::new();
    for (_, line) in &runtime {
        let v = &line.value;
        if get_str(v, &["type"]) == Some("prompt.submitted") {
            let run = get_str(v, &["runId"]).unwrap_or_default().to_owned();
            let prompt = get(v, &["data", "prompt"])
                .map(content_text)
                .unwrap_or_default();
            prompts.insert(run, (get_str(v, &["ts"]).and_then(parse_time), prompt));
        }
    }
    let root = t.root;
    let mut last_summary = None;
    for (pos, line) in runtime {
        let span = runtime_span(pos, line, input, &prompts, transcript_usage);
        if span.kind == SpanKind::Llm {
            last_summary = Some((span.status, span.error.clone(), span.output.clone()));
        }
        t.b.push_child(root, span);
    }
    // Without transcript messages, the last run summary tells how the session ended.
    if t.last_active_llm.is_none()
        && let Some((status, error, output)) = last_summary
    {
        let span = t.b.span_mut(root);
        span.status = status;
        span.error = error;
        span.output = output;
    }
    Ok(vec![Parsed::unlabelled(t.finish())])
}

/// A transcript entry from a `source: "transcript"` trajectory event.
fn transcript_entry(v: &Value, pos: usize, source: SourceRef) -> Option<Entry> {
    let kind = get_str(v, &["type"])?;
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    let mut entry = Map::new();
    match kind {
        "user.message" | "assistant.message" | "tool.result" => {
            entry.insert("type".to_owned(), Value::from("message"));
            entry.insert(
                "message".to_owned(),
                data.get("message").cloned().unwrap_or(Value::Null),
            );
        }
        // Tool calls are also inside the assistant message they came from.
        "tool.call" => return None,
        k if k.starts_with("message.") => {
            entry.insert("type".to_owned(), Value::from("message"));
            entry.insert(
                "message".to_owned(),
                data.get("message").cloned().unwrap_or(Value::Null),
            );
        }
        k => {
            let entry_type = match k {
                "session.compaction" => "compaction",
                "session.branch_summary" => "branch_summary",
                "session.custom" => "custom",
                "session.custom_message" => "custom_message",
                "session.thinking_level_change" => "thinking_level_change",
                "session.model_change" => "model_change",
                "session.label" => "label",
                "session.info" => "session_info",
                other => other,
            };
            entry.insert("type".to_owned(), Value::from(entry_type));
            if let Value::Object(d) = data {
                entry.extend(d);
            }
        }
    }
    let id = get_str(v, &["entryId"]).map_or_else(|| format!("event-{pos}"), str::to_owned);
    let ts = get_str(v, &["ts"]).and_then(parse_time);
    Some(Entry {
        pos,
        id,
        parent: get_str(v, &["parentEntryId"]).map(str::to_owned),
        ts,
        value: Value::Object(entry),
        source,
        active: true,
    })
}

/// A span for one runtime trajectory event.
fn runtime_span(
    pos: usize,
    line: &super::JsonLine,
    input: &Input,
    prompts: &HashMap<String, (Option<i64>, String)>,
    transcript_usage: bool,
) -> Span {
    let v = &line.value;
    let kind = get_str(v, &["type"]).unwrap_or("event");
    let ts = get_str(v, &["ts"]).and_then(parse_time);
    let data = v.get("data").unwrap_or(&Value::Null);
    let mut attributes = BTreeMap::new();
    for key in [
        "source",
        "seq",
        "sourceSeq",
        "runId",
        "sessionKey",
        "entryId",
        "parentEntryId",
    ] {
        if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
            attributes.insert(key.to_owned(), x.clone());
        }
    }
    flatten_into("data", data, &mut attributes);
    attributes.retain(|k, _| {
        k != "data" && !k.starts_with("data.messagesSnapshot") && !k.starts_with("data.usage")
    });
    cut_long_strings(&mut attributes);
    let mut span = Span {
        id: v
            .get("seq")
            .and_then(as_u64)
            .map_or_else(|| format!("event-{pos}"), |s| format!("seq-{s}")),
        kind: SpanKind::System,
        name: kind.to_owned(),
        step: Some(pos as u32),
        start_ns: ts,
        end_ns: ts,
        source: input.at_line(line.line),
        ..Span::default()
    };
    let failure = ["terminalError", "promptError", "timedOut", "aborted"]
        .iter()
        .find_map(|k| match data.get(*k) {
            Some(Value::Bool(true)) => Some(((*k).to_owned(), (*k).to_owned())),
            Some(Value::String(s)) if !s.is_empty() => Some(((*k).to_owned(), s.clone())),
            Some(o @ Value::Object(_)) => Some((
                (*k).to_owned(),
                get_str(o, &["message"]).map_or_else(|| o.to_string(), str::to_owned),
            )),
            _ => None,
        });
    if kind == "model.completed" {
        let run = get_str(v, &["runId"]).unwrap_or_default();
        let (prompt_ts, prompt) = prompts.get(run).cloned().unwrap_or_default();
        let prompt = if prompt.is_empty() {
            get_str(data, &["finalPromptText"])
                .unwrap_or_default()
                .to_owned()
        } else {
            prompt
        };
        let texts: Vec<Part> = data
            .get("assistantTexts")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|t| Part::Text { text: t.to_owned() })
                    .collect()
            })
            .unwrap_or_default();
        let model = get_str(v, &["modelId"]).map(str::to_owned);
        span.kind = SpanKind::Llm;
        span.name = model
            .clone()
            .unwrap_or_else(|| "model.completed".to_owned());
        span.start_ns = prompt_ts.or(ts);
        span.time_inferred = prompt_ts.is_some();
        let out = Message {
            role: Role::Assistant,
            name: None,
            parts: texts,
        };
        let text = out.joined_text();
        span.output = ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new);
        let mut params = BTreeMap::new();
        if let Some(api) = v.get("modelApi").filter(|x| !x.is_null()) {
            params.insert("api".to_owned(), api.clone());
        }
        span.llm = Some(Box::new(LlmCall {
            provider: get_str(v, &["provider"]).map(str::to_owned),
            request_model: model.clone(),
            response_model: model,
            input_messages: if prompt.is_empty() {
                Vec::new()
            } else {
                vec![Message::text(Role::User, prompt)]
            },
            output_messages: vec![out],
            finish_reason: get_str(data, &["stopReason"]).map(str::to_owned),
            params,
        }));
        span.usage = (data.get("usage").and_then(pi_usage)).map(Box::new);
        if transcript_usage {
            // The transcript's assistant messages already count every call of the run.
            span.usage_scope = UsageScope::Subtree;
        }
        span.attributes.insert(
            "summary".to_owned(),
            Value::from("all model calls of one run"),
        );
        span.status = Status::Ok;
    } else if kind == "session.ended" || kind.starts_with("model.fallback") {
        let status = get_str(data, &["status"]);
        if let Some(s) = status.filter(|s| FAILED_STATUSES.contains(s)) {
            span.status = Status::Error;
            span.error = Some(Box::new(ErrorInfo {
                kind: Some(s.to_owned()),
                message: get_str(data, &["error"]).unwrap_or(s).to_owned(),
                // A fallback step hands the request to the next model.
                handled: kind.starts_with("model.fallback"),
                ..ErrorInfo::default()
            }));
        }
    }
    if let Some((kind_name, message)) = failure {
        span.status = Status::Error;
        span.error = Some(Box::new(ErrorInfo {
            kind: Some(kind_name),
            message: first_line(&message),
            ..ErrorInfo::default()
        }));
    }
    span.attributes.extend(attributes);
    span
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::agent_from_path;
    use crate::load::{LoadOptions, load_bytes};
    use crate::model::{
        CostSource, Format, HandoffMode, Span, SpanKind, Status, Trace, UsageScope,
    };
    use crate::testing::{fixture, inline};

    const SESSION: &str = "openclaw-session/b6f1d2c4-8a3e-4f5b-9c07-1e2d3f4a5b6c.jsonl";

    fn span<'t>(t: &'t Trace, id: &str) -> &'t Span {
        t.spans
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no span {id}"))
    }

    fn abandoned(s: &Span) -> bool {
        s.attributes.get("branch.abandoned") == Some(&Value::Bool(true))
    }

    fn jsonl(lines: &[Value]) -> String {
        lines
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn agent_ids_from_paths() {
        assert_eq!(
            agent_from_path("/home/a/.openclaw/agents/ops/sessions/x.jsonl").as_deref(),
            Some("ops")
        );
        assert_eq!(
            agent_from_path("C:\\Users\\a\\.openclaw\\agents\\main\\sessions\\x.jsonl").as_deref(),
            Some("main")
        );
        assert_eq!(agent_from_path("agents/x.jsonl"), None);
        assert_eq!(agent_from_path("session.jsonl"), None);
    }

    #[test]
    fn session_fixture() {
        let (summary, traces) = fixture(SESSION);
        assert_eq!(summary.format, Format::OpenClawSession);
        let t = &traces[0].trace;
        assert_eq!(t.id, "b6f1d2c4-8a3e-4f5b-9c07-1e2d3f4a5b6c");
        assert_eq!(t.format_version.as_deref(), Some("pi-session/3"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let names: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["main", "forecast-scout"]);
        assert_eq!(t.agents[1].parent_agent.as_deref(), Some("main"));
        assert_eq!(
            t.agents[1].id.as_deref(),
            Some("agent:main:subagent:7c1f9e2a-4b6d-4e8f-a1c3-5d7e9f0b2c4d")
        );

        // The edited first prompt and its answer are an abandoned branch; the rest is active.
        assert!(abandoned(span(t, "3f0a1c04")) && abandoned(span(t, "3f0a1c05")));
        assert!(abandoned(span(t, "turn-1")));
        assert!(!abandoned(span(t, "3f0a1c06")) && !abandoned(span(t, "3f0a1c12")));
        assert!(
            t.task
                .as_deref()
                .is_some_and(|task| task.contains("actual Saturday forecast"))
        );
        assert_eq!(
            span(t, "3f0a1c06").attributes.get("channel.envelope"),
            Some(&Value::from("WhatsApp Marta id:+351912345678"))
        );

        // The provider retry loop: two failed model calls in a row.
        let failed: Vec<&Span> = t
            .spans_of(SpanKind::Llm)
            .filter(|s| s.status == Status::Error)
            .collect();
        assert_eq!(failed.len(), 2);
        for s in &failed {
            let e = s.error.as_ref().unwrap();
            assert_eq!(
                (e.kind.as_deref(), e.message.as_str()),
                (Some("error"), "fetch failed")
            );
        }

        // `isError: false` with `details.status: "error"` still fails the tool.
        let cron = span(t, "call_p4Wx|fc_0a93");
        assert_eq!(
            (cron.kind, cron.name.as_str(), cron.status),
            (SpanKind::Tool, "cron", Status::Error)
        );
        assert!(cron.tool.as_ref().unwrap().is_error);
        assert!(cron.error.as_ref().unwrap().message.contains("in the past"));
        assert_eq!(span(t, "call_q9Zy|fc_0a94").status, Status::Ok);

        // Delegation and a follow-up message to the child session.
        let handoffs: Vec<(&str, HandoffMode)> = t
            .spans_of(SpanKind::Handoff)
            .map(|s| s.handoff.as_ref().map(|h| (h.to.as_str(), h.mode)).unwrap())
            .collect();
        assert_eq!(
            handoffs,
            [
                ("forecast-scout", HandoffMode::Delegate),
                ("forecast-scout", HandoffMode::Message)
            ]
        );
        let agent = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Agent && s.name == "forecast-scout")
            .unwrap();
        let tool = &t.spans[agent.parent.unwrap() as usize];
        assert_eq!(tool.id, "call_k2Pq|fc_0a91");
        assert_eq!(agent.status, Status::Ok);
        assert_eq!(
            agent.end_ns,
            crate::util::parse_time("2026-03-06T18:22:51.640Z")
        );
        assert_eq!(span(t, "3f0a1c0d").agent.as_deref(), Some("forecast-scout"));

        // Usage includes cache reads and every call made, the abandoned one too.
        assert_eq!(t.usage.input, Some(14_994));
        assert_eq!(t.usage.output, Some(491));
        assert_eq!(t.usage.cache_read, Some(11_776));
        let cost = t.cost.as_ref().unwrap();
        assert_eq!(cost.source, CostSource::Reported);
        assert!((cost.amount - 0.010_404_6).abs() < 1e-9);

        // Steps, sources, links, labels, inferred ends.
        let first = span(t, "3f0a1c01");
        assert_eq!((first.step, first.source.line), (Some(0), Some(2)));
        assert!(
            span(t, "3f0a1c07")
                .links
                .iter()
                .any(|l| l.target == "3f0a1c06")
        );
        assert_eq!(
            span(t, "3f0a1c12").attributes.get("label"),
            Some(&Value::from("hike-forecast"))
        );
        let retry = span(t, "3f0a1c07");
        assert!(retry.time_inferred);
        assert_eq!(
            retry.end_ns,
            crate::util::parse_time("2026-03-06T18:22:03.020Z")
        );
        // A label written a minute later does not stretch the final answer.
        assert_eq!(span(t, "3f0a1c12").end_ns, None);
    }

    #[test]
    fn trajectory_export_bundle() {
        let (summary, traces) = fixture("openclaw-trajectory/events.jsonl");
        assert_eq!(summary.format, Format::OpenClawTrajectory);
        let t = &traces[0].trace;
        assert_eq!(t.format_version.as_deref(), Some("openclaw-trajectory/1"));
        assert_eq!(
            t.session_id.as_deref(),
            Some("agent:main:telegram:direct:88412")
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert!(t.agents.len() >= 2);
        assert!(t.agents.iter().any(|a| a.name == "mail-digest"));
        let exec = span(t, "toolu_01Ex1");
        assert_eq!((exec.name.as_str(), exec.status), ("exec", Status::Error));
        assert_eq!(t.spans_of(SpanKind::Handoff).count(), 1);
        // The run summary aggregates the transcript's calls: kept, not summed.
        let summary_span = t.spans.iter().find(|s| s.id == "seq-15").unwrap();
        assert_eq!(
            (summary_span.kind, summary_span.usage_scope),
            (SpanKind::Llm, UsageScope::Subtree)
        );
        assert_eq!(
            summary_span.usage.as_ref().and_then(|u| u.input),
            Some(24_416)
        );
        assert_eq!(t.usage.input, Some(24_416));
        assert_eq!(t.usage.output, Some(288));
        assert_eq!(t.usage.cache_write, Some(6_120));
        assert_eq!(
            t.cost.as_ref().map(|c| c.source),
            Some(CostSource::Reported)
        );
        let fallback = t
            .spans
            .iter()
            .find(|s| s.name == "model.fallback_step")
            .unwrap();
        assert_eq!(fallback.status, Status::Error);
        assert!(fallback.error.as_ref().unwrap().handled);
    }

    #[test]
    fn runtime_only_trajectory() {
        let event = |seq: u64, ty: &str, data: Value| {
            json!({"traceSchema": "openclaw-trajectory", "schemaVersion": 1, "traceId": "t1", "source": "runtime",
                "type": ty, "ts": format!("2026-04-02T08:00:0{seq}.000Z"), "seq": seq, "sessionId": "s1",
                "sessionKey": "agent:ops:cron:nightly", "runId": "r1", "modelId": "gpt-5.1", "data": data})
        };
        let text = jsonl(&[
            event(1, "session.started", json!({"trigger": "cron"})),
            event(2, "prompt.submitted", json!({"prompt": "rotate the logs"})),
            event(
                3,
                "model.completed",
                json!({"aborted": false, "timedOut": false, "promptError": null,
                "terminalError": {"message": "fetch failed"}, "usage": {"input": 120, "output": 0, "cacheRead": 900, "cacheWrite": 0}}),
            ),
            event(4, "brand.new.event", json!({"x": [1, 2]})),
            json!({"not": "a trajectory line"}),
        ]);
        let (_, traces) = inline("s1.trajectory.jsonl", &text);
        let t = &traces[0].trace;
        assert_eq!(t.agents[0].name, "ops");
        let llm = t.spans_of(SpanKind::Llm).next().unwrap();
        assert_eq!(llm.status, Status::Error);
        assert_eq!(
            llm.error.as_ref().unwrap().kind.as_deref(),
            Some("terminalError")
        );
        assert_eq!(llm.usage_scope, UsageScope::SelfOnly);
        assert_eq!(t.usage.input, Some(1_020));
        assert_eq!(t.task.as_deref(), Some("rotate the logs"));
        assert_eq!(t.status, Status::Error);
        assert!(
            t.spans
                .iter()
                .any(|s| s.name == "brand.new.event" && s.kind == SpanKind::System)
        );
        assert!(t.warnings.iter().any(|w| w.contains("1 line(s) without")));
    }

    #[test]
    fn agent_id_comes_from_the_path() {
        let text = jsonl(&[
            json!({"type": "session", "version": 3, "id": "s1", "timestamp": "2026-01-01T00:00:00Z", "cwd": "/w"}),
            json!({"type": "message", "id": "e1", "parentId": null, "timestamp": "2026-01-01T00:00:01Z",
                "message": {"role": "user", "content": "hi"}}),
        ]);
        let (_, traces) = inline("/home/u/.openclaw/agents/ops/sessions/s1.jsonl", &text);
        assert_eq!(traces[0].trace.agents[0].name, "ops");
        let (_, traces) = inline("s1.jsonl", &text);
        assert_eq!(traces[0].trace.agents[0].name, "main");
    }

    #[test]
    fn version_1_bash_and_odd_entries() {
        // v1: no ids, linear; a user-run bash command that failed; odd and unknown entries.
        let text = jsonl(&[
            json!({"type": "session", "version": 1, "timestamp": "2025-06-01T10:00:00Z", "cwd": "/w"}),
            json!({"type": "message", "timestamp": "2025-06-01T10:00:01Z", "message": {"role": "user", "content": [{"type": "text", "text": "build it"}]}}),
            json!({"type": "message", "timestamp": "2025-06-01T10:00:03Z", "message": {"role": "assistant",
                "content": [{"type": "toolCall", "id": "c1", "name": "bash", "arguments": "{\"command\": \"make\"}"}],
                "usage": {"input": "40", "output": 5, "cacheRead": 100, "cacheWrite": 10, "cost": {"total": "x"}}, "stopReason": "toolUse"}}),
            json!({"type": "message", "timestamp": "2025-06-01T10:00:04Z", "message": {"role": "toolResult", "toolCallId": "c1",
                "toolName": "bash", "content": [{"type": "text", "text": "ok"}], "isError": "no"}}),
            json!({"type": "message", "timestamp": "2025-06-01T10:00:05Z", "message": {"role": "bashExecution",
                "command": "make test", "output": "FAIL: 2 tests\n", "exitCode": 2, "cancelled": false, "truncated": false}}),
            json!({"type": "message", "timestamp": "2025-06-01T10:00:06Z", "message": {"role": "hookMessage", "customType": "lint", "content": "3 warnings"}}),
            json!({"type": "reset_marker", "timestamp": "2025-06-01T10:00:07Z"}),
            json!({"type": "reset_marker", "timestamp": "2025-06-01T10:00:08Z"}),
            json!({"type": "message", "timestamp": 5, "message": "not an object"}),
            json!({"type": "message", "message": {"role": "assistant", "content": 5, "stopReason": "aborted"}}),
            json!({"type": "message", "message": {"role": "toolResult", "toolCallId": "nope", "content": null}}),
            json!([42]),
        ]);
        let (summary, traces) = inline("legacy.jsonl", &text);
        assert_eq!(summary.format, Format::OpenClawSession);
        let t = &traces[0].trace;
        assert_eq!(t.format_version.as_deref(), Some("pi-session/1"));
        // Linear: each entry follows the one before.
        assert!(
            span(t, "legacy-1")
                .links
                .iter()
                .any(|l| l.target == "legacy-0")
        );
        let call = span(t, "c1");
        assert_eq!(
            (
                call.status,
                call.tool.as_ref().unwrap().arguments["command"].as_str()
            ),
            (Status::Ok, Some("make"))
        );
        let bash = t
            .spans
            .iter()
            .find(|s| s.name == "bash" && s.id != "c1")
            .unwrap();
        assert_eq!(bash.attributes.get("truncated"), Some(&Value::Bool(false)));
        assert_eq!(bash.attributes.get("exitCode"), Some(&json!(2)));
        assert_eq!(bash.status, Status::Error);
        assert_eq!(
            bash.error.as_ref().unwrap().kind.as_deref(),
            Some("exit_code")
        );
        assert_eq!(t.usage.input, Some(150));
        assert!(
            t.spans
                .iter()
                .any(|s| s.name == "lint" && s.kind == SpanKind::System)
        );
        let unknown = t
            .warnings
            .iter()
            .filter(|w| w.contains("reset_marker"))
            .count();
        assert_eq!(unknown, 1, "{:?}", t.warnings);
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("toolCallId that is not in the transcript"))
        );
        let aborted = t
            .spans_of(SpanKind::Llm)
            .find(|s| s.status == Status::Error)
            .unwrap();
        assert_eq!(
            aborted.error.as_ref().unwrap().kind.as_deref(),
            Some("aborted")
        );
        // The last entry is on the active branch, so the session ends on that abort.
        assert_eq!(t.status, Status::Error);
    }

    #[test]
    fn empty_or_foreign_input_is_an_error() {
        let options = LoadOptions {
            format: Some(Format::OpenClawSession),
            ..LoadOptions::default()
        };
        let header = r#"{"type":"session","version":3,"id":"s1","cwd":"/w"}"#;
        let err = load_bytes("x.jsonl", header.as_bytes(), &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no entries"), "{err}");
        let options = LoadOptions {
            format: Some(Format::OpenClawTrajectory),
            ..LoadOptions::default()
        };
        let err = load_bytes("x.jsonl", b"{\"a\":1}\n{\"b\":2}\n", &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("traceSchema"), "{err}");
    }

    #[test]
    fn mutated_fixtures_never_panic() {
        use crate::adapters::claude_code::tests::assert_no_panics;
        assert_no_panics(SESSION, "s.jsonl");
        assert_no_panics("openclaw-trajectory/events.jsonl", "e.jsonl");
    }
}
