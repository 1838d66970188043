//! Claude Code transcripts (`formats.md` §8.1, §8.4, §8.5): the session JSONL that Claude
//! Code writes under `~/.claude/projects/<slug>/<sessionId>.jsonl`, its sub-agent side chains,
//! and the headless `claude -p --output-format stream-json` output.
//!
//! Session lines are `user`, `assistant` and `system` messages with `uuid`, `parentUuid`,
//! `sessionId` and `timestamp`, plus bookkeeping lines (`summary`, `file-history-snapshot`,
//! `queue-operation`, `progress`, `custom-title`). Mapping decisions:
//!
//! - **Tree.** One root `Agent` span for the session's agent ("main"). Each human prompt opens
//!   a `Step` span "turn N"; the prompt (`Human`), the model calls (`Llm`) and the tool calls
//!   (`Tool`) of that turn are its children. Tools sit beside the `Llm` span that requested
//!   them (containment is the turn) and carry a `FollowsFrom` link to it. `parentUuid` and
//!   `logicalParentUuid` become `FollowsFrom` links, resolved to span ids where possible.
//! - **Split assistant lines.** Claude Code writes each content block of one API response as
//!   its own line, repeating `message.id` and `usage`. Lines are grouped by `message.id` into
//!   one `Llm` span; usage comes from the group's *last* line and is never summed.
//! - **Tokens.** Anthropic `input_tokens` excludes cache reads and writes, so
//!   `input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens`.
//! - **Tools.** A `tool_use` block is a `Tool` span; its result comes from the `tool_result`
//!   block with the same `tool_use_id` (text as the output, the structured `toolUseResult` as
//!   the output JSON). `is_error`, or a `toolUseResult` string starting with "Error", fails it.
//! - **Sub-agents.** A `Task`/`Agent` tool call (or any tool whose result names an `agentId`)
//!   is a delegation: a zero-length `Handoff(Delegate)` span beside the tool, and an `Agent`
//!   span under the tool holding the sub-agent's own spans. Side-chain lines come from
//!   companion files (`<sid>/subagents/agent-*.jsonl`, `agent-*.jsonl`), from inline side-chain
//!   lines (1.x), or from `parent_tool_use_id` (stream-json). They are matched by the result's
//!   `agentId`, by `parent_tool_use_id`, and last by the first side-chain prompt equal to the
//!   tool input's `prompt`. The agent is named after the tool input's `name`, else its
//!   `subagent_type`, else the `agentId`. The result's aggregate `usage` stays on the `Agent`
//!   span as `Subtree`. `SendMessage` is a `Handoff(Message)`.
//! - **Errors.** `isApiErrorMessage` (or an `error` field) fails the `Llm` span; `system`
//!   lines with `level: "error"` are failed `System` spans (handled when they announce a
//!   retry); "[Request interrupted by user…]" is a `Human` span with `interrupted = true`.
//! - **Times.** A message span ends at the next message line's timestamp (`time_inferred`);
//!   a tool ends when its result line was written. Stream-json has no timestamps.
//! - **`step`** is the 0-based index of the line among the parsed lines of its own file (the
//!   main file, or the side-chain file for sub-agent spans); a grouped `Llm` span takes the
//!   index of its first line.
//! - **Cost.** Only 1.x lines (`costUSD`) and the stream-json `result` line report cost.
//! - **Stream-json.** `system/init` gives the session id, model and version; the final
//!   `result` line gives the trace's reported cost (`total_cost_usd`), the final answer, and
//!   the session's aggregate usage (kept on the root span as `Subtree`).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{AdapterError, AdapterResult, Input, JsonLine, Parsed, lines_of};
use crate::builder::TraceBuilder;
use crate::model::{
    AgentInfo, Cost, CostSource, ErrorInfo, Format, Handoff, HandoffMode, Link, LinkKind, LlmCall,
    Message, Part, Payload, Role, SourceRef, Span, SpanEvent, SpanKind, Status, ToolCall, Usage,
    UsageScope,
};
use crate::util::{as_f64, as_u64, flatten_into, get_str, maybe_json, parse_time, truncate};

/// The session's own agent.
const MAIN_AGENT: &str = "main";
/// Claude Code writes this text (with a suffix such as " for tool use]") when the user stops it.
const INTERRUPTED: &str = "[Request interrupted by user";
/// Envelope keys that repeat on every line: they go to trace metadata once.
const SESSION_KEYS: [&str; 6] = [
    "cwd",
    "gitBranch",
    "version",
    "userType",
    "slug",
    "entrypoint",
];
/// Keys mapped explicitly; everything else on a line goes to span attributes.
const MAPPED_KEYS: [&str; 19] = [
    "type",
    "uuid",
    "parentUuid",
    "logicalParentUuid",
    "sessionId",
    "session_id",
    "timestamp",
    "message",
    "toolUseResult",
    "tool_use_result",
    "isSidechain",
    "agentId",
    "parent_tool_use_id",
    "isApiErrorMessage",
    "content",
    "level",
    "subtype",
    "error",
    "costUSD",
];

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let lines = lines_of(input);
    if lines.is_empty() {
        return Err(AdapterError::new(
            "expected Claude Code JSONL: objects with `type` user/assistant/system, `sessionId` and `uuid`",
        ));
    }
    let stream = is_stream_json(&lines);
    let side_chain_only = !stream
        && lines.iter().any(|l| l.value.get("type").is_some())
        && lines
            .iter()
            .filter(|l| is_message_line(&l.value))
            .all(|l| l.value.get("isSidechain").and_then(Value::as_bool) == Some(true));
    let session_id = lines.iter().find_map(|l| {
        get_str(&l.value, &["sessionId"]).or_else(|| get_str(&l.value, &["session_id"]))
    });
    let standalone_agent = if side_chain_only {
        lines
            .iter()
            .find_map(|l| get_str(&l.value, &["agentId"]))
            .map(str::to_owned)
    } else {
        None
    };
    let trace_id = match (session_id, &standalone_agent) {
        (Some(sid), Some(agent)) => format!("{sid}/agent-{agent}"),
        (Some(sid), None) => sid.to_owned(),
        (None, _) => input.synth_id("claude-code"),
    };
    let main_name = standalone_agent
        .clone()
        .unwrap_or_else(|| MAIN_AGENT.to_owned());

    let mut b = TraceBuilder::new(Format::ClaudeCode, trace_id);
    b.trace_mut().session_id = session_id.map(str::to_owned);
    if stream {
        b.trace_mut()
            .metadata
            .insert("variant".to_owned(), Value::from("stream-json"));
    }
    let root = b.push(Span {
        id: format!("agent-{main_name}"),
        kind: SpanKind::Agent,
        name: main_name.clone(),
        agent: Some(main_name.clone()),
        source: input.at_line(lines[0].line),
        ..Span::default()
    });
    if let Some(agent) = &standalone_agent {
        b.agent(AgentInfo {
            name: agent.clone(),
            id: Some(agent.clone()),
            role: Some("subagent".to_owned()),
            ..AgentInfo::default()
        });
        b.warn(
            "this is a sub-agent side chain read without its parent session; \
             read the session file to see the delegation",
        );
    }

    let mut session = Session {
        input,
        b,
        root,
        stream,
        llm_by_message: HashMap::new(),
        tools: HashMap::new(),
        span_of_uuid: HashMap::new(),
        delegations: Vec::new(),
        delegation_of_tool: HashMap::new(),
        warned: HashSet::new(),
        messages_seen: 0,
        orphan_results: 0,
    };

    // The main chain is every line that is not part of a side chain (unless the whole file is
    // one side chain, read on its own).
    let mut side_chains: Vec<SideChain<'_>> = Vec::new();
    let mut group_of_key: HashMap<String, usize> = HashMap::new();
    let mut group_of_uuid: HashMap<&str, usize> = HashMap::new();
    let mut main_lines: Vec<(usize, &JsonLine)> = Vec::new();
    for (pos, line) in lines.iter().enumerate() {
        let v = &line.value;
        let parent_tool = if stream {
            get_str(v, &["parent_tool_use_id"])
        } else {
            None
        };
        let sidechain =
            !side_chain_only && v.get("isSidechain").and_then(Value::as_bool) == Some(true);
        let group = if let Some(tool) = parent_tool {
            Some(group_for(
                &mut side_chains,
                &mut group_of_key,
                format!("tool:{tool}"),
                &input.file,
            ))
        } else if sidechain {
            // Inline side chains (1.x): by `agentId`, else the chain of the parent line.
            let by_parent = get_str(v, &["parentUuid"]).and_then(|p| group_of_uuid.get(p).copied());
            Some(match (get_str(v, &["agentId"]), by_parent) {
                (Some(agent), _) => group_for(
                    &mut side_chains,
                    &mut group_of_key,
                    format!("agent:{agent}"),
                    &input.file,
                ),
                (None, Some(g)) => g,
                (None, None) => group_for(
                    &mut side_chains,
                    &mut group_of_key,
                    format!("chain:{pos}"),
                    &input.file,
                ),
            })
        } else {
            None
        };
        match group.and_then(|g| side_chains.get_mut(g).map(|c| (g, c))) {
            Some((g, chain)) => {
                chain.lines.push((pos, line));
                if let Some(tool) = parent_tool {
                    chain.parent_tool = Some(tool.to_owned());
                }
                if let Some(uuid) = get_str(v, &["uuid"]) {
                    group_of_uuid.insert(uuid, g);
                }
            }
            None => main_lines.push((pos, line)),
        }
    }
    // Companion files; the same sub-agent found twice (old and new layout) is read once.
    let mut seen_uuids: HashSet<&str> = lines
        .iter()
        .filter_map(|l| get_str(&l.value, &["uuid"]))
        .collect();
    for companion in &input.companions {
        for (pos, line) in companion.lines.iter().enumerate() {
            if let Some(uuid) = get_str(&line.value, &["uuid"])
                && !seen_uuids.insert(uuid)
            {
                continue;
            }
            let key = get_str(&line.value, &["agentId"]).map_or_else(
                || format!("file:{}", companion.file),
                |a| format!("agent:{a}"),
            );
            let g = group_for(&mut side_chains, &mut group_of_key, key, &companion.file);
            if let Some(chain) = side_chains.get_mut(g) {
                chain.lines.push((pos, line));
            }
        }
    }
    for chain in &mut side_chains {
        chain.agent_id = chain
            .lines
            .iter()
            .find_map(|(_, l)| get_str(&l.value, &["agentId"]))
            .map(str::to_owned);
    }

    let mut main = Chain::new(main_name.clone(), input.file.clone(), root, true);
    for (pos, line) in main_lines {
        session.line(&mut main, pos, line);
    }
    session.close_turn(&mut main);
    session.attach_side_chains(side_chains);
    session.finish(root, &main)
}

/// `claude -p --output-format stream-json` output: snake-case `session_id`, no `sessionId`.
fn is_stream_json(lines: &[JsonLine]) -> bool {
    let first_init = lines.first().is_some_and(|l| {
        get_str(&l.value, &["type"]) == Some("system")
            && get_str(&l.value, &["subtype"]) == Some("init")
    });
    let snake = lines.iter().any(|l| l.value.get("session_id").is_some());
    let camel = lines.iter().any(|l| l.value.get("sessionId").is_some());
    first_init || (snake && !camel)
}

fn is_message_line(v: &Value) -> bool {
    matches!(get_str(v, &["type"]), Some("user" | "assistant" | "system"))
}

/// The index of the side chain for `key`, created on first use.
fn group_for(
    chains: &mut Vec<SideChain<'_>>,
    keys: &mut HashMap<String, usize>,
    key: String,
    file: &str,
) -> usize {
    *keys.entry(key).or_insert_with(|| {
        chains.push(SideChain::new(file.to_owned()));
        chains.len() - 1
    })
}

/// Lines of one sub-agent, wherever they were found.
#[derive(Debug)]
struct SideChain<'a> {
    file: String,
    lines: Vec<(usize, &'a JsonLine)>,
    agent_id: Option<String>,
    parent_tool: Option<String>,
}

impl SideChain<'_> {
    fn new(file: String) -> Self {
        SideChain {
            file,
            lines: Vec::new(),
            agent_id: None,
            parent_tool: None,
        }
    }

    /// The first prompt the sub-agent received (to match it to the delegating tool call).
    fn first_prompt(&self) -> Option<String> {
        self.lines.iter().find_map(|(_, l)| {
            if get_str(&l.value, &["type"]) != Some("user") {
                return None;
            }
            let content = l.value.get("message")?.get("content")?;
            if has_tool_results(content) {
                return None;
            }
            Some(content_text(content)).filter(|t| !t.is_empty())
        })
    }

    fn first_time(&self) -> Option<i64> {
        self.lines.iter().find_map(|(_, l)| line_time(&l.value))
    }

    fn last_time(&self) -> Option<i64> {
        self.lines
            .iter()
            .rev()
            .find_map(|(_, l)| line_time(&l.value))
    }
}

/// One delegation to a sub-agent, as seen from the calling side.
#[derive(Debug)]
struct Delegation {
    tool_use_id: String,
    tool: usize,
    handoff: usize,
    /// The tool input's `name` or `subagent_type`.
    display: Option<String>,
    prompt: Option<String>,
    model: Option<String>,
    from: String,
    agent_id: Option<String>,
    /// The structured `toolUseResult` of the call.
    result: Option<Value>,
    attached: bool,
}

/// Parsing state of one conversation chain: the main session or one sub-agent.
#[derive(Debug)]
struct Chain {
    agent: String,
    file: String,
    /// The span that holds this chain's spans when no turn is open.
    container: usize,
    is_main: bool,
    turn: Option<usize>,
    turns: usize,
    /// Messages since the last model call, given to the next `Llm` span as its input.
    pending_input: Vec<Message>,
    /// Spans whose end is the next message line's timestamp.
    open: Vec<usize>,
    /// `message.id` of the assistant group being written.
    current_group: Option<String>,
    last_llm: Option<usize>,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

impl Chain {
    fn new(agent: String, file: String, container: usize, is_main: bool) -> Self {
        Chain {
            agent,
            file,
            container,
            is_main,
            turn: None,
            turns: 0,
            pending_input: Vec::new(),
            open: Vec::new(),
            current_group: None,
            last_llm: None,
            first_ts: None,
            last_ts: None,
        }
    }

    fn parent(&self) -> usize {
        self.turn.unwrap_or(self.container)
    }
}

struct Session<'i> {
    input: &'i Input,
    b: TraceBuilder,
    root: usize,
    stream: bool,
    llm_by_message: HashMap<String, usize>,
    tools: HashMap<String, usize>,
    /// Line `uuid` → id of the span that line became part of (to resolve `parentUuid`).
    span_of_uuid: HashMap<String, String>,
    delegations: Vec<Delegation>,
    delegation_of_tool: HashMap<String, usize>,
    warned: HashSet<String>,
    messages_seen: usize,
    orphan_results: usize,
}

impl Session<'_> {
    fn source(&self, chain: &Chain, line: u32) -> SourceRef {
        if chain.file == self.input.file {
            self.input.at_line(line)
        } else {
            SourceRef {
                file: Some(chain.file.clone()),
                line: Some(line),
                pointer: None,
            }
        }
    }

    fn warn_once(&mut self, key: &str, message: String) {
        if self.warned.insert(key.to_owned()) {
            self.b.warn(message);
        }
    }

    fn line(&mut self, chain: &mut Chain, pos: usize, jl: &JsonLine) {
        let Some(obj) = jl.value.as_object() else {
            self.b
                .warn(format!("line {}: not a JSON object; skipped", jl.line));
            return;
        };
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
        let ts = line_time(&jl.value);
        let is_message = matches!(kind, "user" | "assistant" | "system");
        if is_message {
            self.messages_seen += 1;
            let continues_group = kind == "assistant"
                && chain
                    .current_group
                    .as_deref()
                    .is_some_and(|g| message_id(obj) == Some(g));
            if let Some(t) = ts
                && !continues_group
            {
                self.close_open(chain, t);
            }
            self.note_session_keys(obj);
        }
        if let Some(t) = ts {
            chain.first_ts = chain.first_ts.or(Some(t));
            chain.last_ts = Some(t);
        }
        match kind {
            "user" => {
                chain.current_group = None;
                self.user(chain, pos, jl, obj, ts);
            }
            "assistant" => self.assistant(chain, pos, jl, obj, ts),
            "system" => {
                chain.current_group = None;
                self.system(chain, pos, jl, obj, ts);
            }
            "result" => self.result(jl, obj),
            "summary" => {
                let mut span = self.bookkeeping(chain, pos, jl, obj, "summary", ts);
                span.output = (get_str(&jl.value, &["summary"]).map(Payload::text)).map(Box::new);
                self.b.push_child(chain.container, span);
            }
            "queue-operation" => {
                let op = get_str(&jl.value, &["operation"]).unwrap_or("queue");
                let mut span =
                    self.bookkeeping(chain, pos, jl, obj, &format!("queue-operation: {op}"), ts);
                span.input = (obj
                    .get("content")
                    .map(content_text)
                    .filter(|t| !t.is_empty())
                    .map(Payload::text))
                .map(Box::new);
                let parent = chain.parent();
                self.b.push_child(parent, span);
            }
            "progress" => self.progress(jl, obj, ts),
            "custom-title" => {
                if let Some(title) =
                    get_str(&jl.value, &["customTitle"]).or_else(|| get_str(&jl.value, &["title"]))
                {
                    self.b
                        .trace_mut()
                        .metadata
                        .insert("title".to_owned(), Value::from(title));
                }
            }
            // File backups for undo, and partial stream events: nothing to trace.
            "file-history-snapshot" | "stream_event" => {}
            "" => self.warn_once(
                "<no type>",
                format!(
                    "line {}: a line without a `type` string; such lines were skipped",
                    jl.line
                ),
            ),
            other => self.warn_once(
                other,
                format!(
                    "line {}: unknown line type `{other}`; lines of this type were skipped",
                    jl.line
                ),
            ),
        }
        // The open turn lasts until its last event (after the match: a prompt opens a new turn).
        if let (Some(t), Some(turn)) = (ts, chain.turn) {
            let span = self.b.span_mut(turn);
            span.end_ns = Some(span.end_ns.map_or(t, |e| e.max(t)));
            span.time_inferred = true;
        }
    }

    /// Ends every open message span at `t` (the next message's time).
    fn close_open(&mut self, chain: &mut Chain, t: i64) {
        for idx in chain.open.drain(..) {
            let span = self.b.span_mut(idx);
            if span.end_ns.is_none() && span.start_ns.is_none_or(|s| s <= t) {
                span.end_ns = Some(t);
                span.time_inferred = true;
            }
        }
    }

    fn note_session_keys(&mut self, obj: &Map<String, Value>) {
        for key in SESSION_KEYS {
            if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
                let meta = &mut self.b.trace_mut().metadata;
                if !meta.contains_key(key) {
                    meta.insert(key.to_owned(), v.clone());
                }
            }
        }
        if self.b.trace_mut().format_version.is_none()
            && let Some(v) = obj.get("version").and_then(Value::as_str)
        {
            self.b.trace_mut().format_version = Some(format!("claude-code/{v}"));
        }
    }

    /// A span for a line that is not a message (summary, queue operation).
    fn bookkeeping(
        &self,
        chain: &Chain,
        pos: usize,
        jl: &JsonLine,
        obj: &Map<String, Value>,
        name: &str,
        ts: Option<i64>,
    ) -> Span {
        Span {
            id: get_str(&jl.value, &["uuid"])
                .map_or_else(|| format!("L{}", jl.line), str::to_owned),
            kind: SpanKind::System,
            name: name.to_owned(),
            step: Some(pos as u32),
            start_ns: ts,
            attributes: unmapped(obj),
            source: self.source(chain, jl.line),
            ..Span::default()
        }
    }

    /// Links from the line's `parentUuid`/`logicalParentUuid` to the spans they name.
    fn links(&self, obj: &Map<String, Value>, own_id: &str) -> Vec<Link> {
        let mut links = Vec::new();
        for key in ["parentUuid", "logicalParentUuid"] {
            if let Some(parent) = obj
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                let target = self
                    .span_of_uuid
                    .get(parent)
                    .cloned()
                    .unwrap_or_else(|| parent.to_owned());
                if target != own_id && !links.iter().any(|l: &Link| l.target == target) {
                    links.push(Link {
                        kind: LinkKind::FollowsFrom,
                        target,
                    });
                }
            }
        }
        links
    }

    fn remember_uuid(&mut self, obj: &Map<String, Value>, span_id: &str) {
        if let Some(uuid) = obj.get("uuid").and_then(Value::as_str) {
            self.span_of_uuid
                .insert(uuid.to_owned(), span_id.to_owned());
        }
    }

    // ---- user lines -------------------------------------------------------------------

    fn user(
        &mut self,
        chain: &mut Chain,
        pos: usize,
        jl: &JsonLine,
        obj: &Map<String, Value>,
        ts: Option<i64>,
    ) {
        let content = obj
            .get("message")
            .and_then(|m| m.get("content"))
            .unwrap_or(&Value::Null);
        if has_tool_results(content) {
            let blocks = content.as_array().map(Vec::as_slice).unwrap_or_default();
            let results: Vec<&Value> = blocks
                .iter()
                .filter(|b| block_type(b) == Some("tool_result"))
                .collect();
            let structured = obj
                .get("toolUseResult")
                .or_else(|| obj.get("tool_use_result"));
            let single = results.len() == 1;
            let mut first_id = None;
            for block in results {
                let idx = self.tool_result(
                    chain,
                    pos,
                    jl,
                    block,
                    if single { structured } else { None },
                    ts,
                );
                first_id.get_or_insert_with(|| self.b.span(idx).id.clone());
            }
            if let Some(id) = first_id {
                self.remember_uuid(obj, &id);
            }
            // Text beside tool results: the interruption marker, or the user's own words.
            for block in blocks.iter().filter(|b| block_type(b) == Some("text")) {
                let text = get_str(block, &["text"]).unwrap_or_default();
                if !text.trim().is_empty() {
                    self.human(chain, pos, jl, obj, ts, text.to_owned(), false);
                }
            }
            return;
        }
        let text = content_text(content);
        let meta = obj.get("isMeta").and_then(Value::as_bool) == Some(true);
        let compact = obj.get("isCompactSummary").and_then(Value::as_bool) == Some(true);
        if meta || compact {
            let id = line_id(obj, jl.line);
            let span = Span {
                id: id.clone(),
                kind: SpanKind::System,
                name: if compact { "compact summary" } else { "meta" }.to_owned(),
                step: Some(pos as u32),
                start_ns: ts,
                input: Some(Box::new(Payload::text(text.clone()))),
                links: self.links(obj, &id),
                attributes: unmapped(obj),
                source: self.source(chain, jl.line),
                ..Span::default()
            };
            let parent = chain.parent();
            let idx = self.b.push_child(parent, span);
            chain.open.push(idx);
            self.remember_uuid(obj, &id);
            chain.pending_input.push(Message::text(Role::User, text));
            return;
        }
        self.human(chain, pos, jl, obj, ts, text, true);
    }

    /// A user message with text: a new turn (main chain), an interruption, or a prompt from
    /// the delegating agent (side chains).
    #[allow(
        clippy::too_many_arguments,
        reason = "one line's context, passed as is"
    )]
    fn human(
        &mut self,
        chain: &mut Chain,
        pos: usize,
        jl: &JsonLine,
        obj: &Map<String, Value>,
        ts: Option<i64>,
        text: String,
        may_open_turn: bool,
    ) {
        let interrupted = text.trim_start().starts_with(INTERRUPTED);
        let mut id = line_id(obj, jl.line);
        if self.b.find(&id).is_some() {
            id = format!("{id}.text");
        }
        let kind = if chain.is_main || interrupted {
            SpanKind::Human
        } else {
            SpanKind::Step
        };
        if chain.is_main && may_open_turn && !interrupted {
            self.close_turn(chain);
            chain.turns += 1;
            let turn = Span {
                id: format!("turn-{}", chain.turns),
                kind: SpanKind::Step,
                name: format!("turn {}", chain.turns),
                step: Some(pos as u32),
                start_ns: ts,
                source: self.source(chain, jl.line),
                ..Span::default()
            };
            chain.turn = Some(self.b.push_child(chain.container, turn));
            chain.last_llm = None;
        }
        let mut span = Span {
            id: id.clone(),
            kind,
            name: if kind == SpanKind::Human {
                "user"
            } else {
                "prompt"
            }
            .to_owned(),
            step: Some(pos as u32),
            start_ns: ts,
            input: Some(Box::new(Payload::text(text.clone()))),
            links: self.links(obj, &id),
            attributes: unmapped(obj),
            source: self.source(chain, jl.line),
            ..Span::default()
        };
        if interrupted {
            span.attributes
                .insert("interrupted".to_owned(), Value::Bool(true));
            if let Some(turn) = chain.turn {
                self.b
                    .span_mut(turn)
                    .attributes
                    .insert("interrupted".to_owned(), Value::Bool(true));
            }
        }
        if kind == SpanKind::Step {
            span.attributes
                .insert("prompt.from".to_owned(), Value::from("delegating agent"));
        }
        let parent = chain.parent();
        let idx = self.b.push_child(parent, span);
        chain.open.push(idx);
        self.remember_uuid(obj, &id);
        chain.pending_input.push(Message::text(Role::User, text));
    }

    /// Fills the tool span named by a `tool_result` block; returns its index.
    fn tool_result(
        &mut self,
        chain: &mut Chain,
        pos: usize,
        jl: &JsonLine,
        block: &Value,
        structured: Option<&Value>,
        ts: Option<i64>,
    ) -> usize {
        let tool_use_id = get_str(block, &["tool_use_id"]).map(str::to_owned);
        let content = block.get("content").unwrap_or(&Value::Null);
        let text = content_text(content);
        let flagged = block.get("is_error").and_then(Value::as_bool) == Some(true);
        let error_string = structured
            .and_then(Value::as_str)
            .is_some_and(|s| s.trim_start().starts_with("Error"));
        let is_error = flagged || error_string;
        let idx = if let Some(&idx) = tool_use_id.as_deref().and_then(|id| self.tools.get(id)) {
            idx
        } else {
            {
                self.orphan_results += 1;
                let id = tool_use_id
                    .clone()
                    .unwrap_or_else(|| format!("L{}.result", jl.line));
                let span = Span {
                    id: id.clone(),
                    kind: SpanKind::Tool,
                    name: "unknown".to_owned(),
                    step: Some(pos as u32),
                    start_ns: ts,
                    tool: Some(Box::new(ToolCall {
                        name: "unknown".to_owned(),
                        call_id: tool_use_id.clone(),
                        ..ToolCall::default()
                    })),
                    source: self.source(chain, jl.line),
                    ..Span::default()
                };
                let parent = chain.parent();
                let idx = self.b.push_child(parent, span);
                if let Some(id) = &tool_use_id {
                    self.tools.insert(id.clone(), idx);
                }
                idx
            }
        };
        let result_value = match content {
            Value::String(s) => maybe_json(s),
            Value::Null => Value::Null,
            other => Value::String(if text.is_empty() {
                other.to_string()
            } else {
                text.clone()
            }),
        };
        {
            let span = self.b.span_mut(idx);
            if ts.is_some() {
                span.end_ns = ts;
                span.time_inferred = false;
            }
            span.output = Some(Box::new(Payload {
                text: text.clone(),
                json: structured
                    .filter(|v| v.is_object() || v.is_array())
                    .cloned(),
                mime: None,
            }));
            if let Some(tool) = &mut span.tool {
                tool.result = Some(result_value);
                tool.is_error = is_error;
            }
            span.attributes
                .insert("result.step".to_owned(), Value::from(pos as u32));
            if let Some(Value::Object(o)) = structured
                && o.get("interrupted").and_then(Value::as_bool) == Some(true)
            {
                span.attributes
                    .insert("interrupted".to_owned(), Value::Bool(true));
            }
            if is_error {
                let message = if text.trim().is_empty() {
                    structured
                        .and_then(Value::as_str)
                        .unwrap_or("tool error")
                        .to_owned()
                } else {
                    text.clone()
                };
                span.status = Status::Error;
                span.error = Some(Box::new(ErrorInfo {
                    message: first_line(&message),
                    ..ErrorInfo::default()
                }));
            } else {
                span.status = Status::Ok;
            }
        }
        // Delegations: known by the tool name, or revealed by an `agentId` in the result.
        let agent_id = structured
            .and_then(|v| get_str(v, &["agentId"]))
            .map(str::to_owned);
        let delegation = match tool_use_id
            .as_deref()
            .and_then(|id| self.delegation_of_tool.get(id))
        {
            Some(&d) => Some(d),
            None if agent_id.is_some() => {
                let args = self
                    .b
                    .span(idx)
                    .tool
                    .as_ref()
                    .map(|t| t.arguments.clone())
                    .unwrap_or_default();
                Some(self.delegate(chain, idx, tool_use_id.clone().unwrap_or_default(), &args))
            }
            None => None,
        };
        if let Some(d) = delegation.and_then(|d| self.delegations.get_mut(d)) {
            if agent_id.is_some() {
                d.agent_id = agent_id;
            }
            d.result = structured
                .cloned()
                .or_else(|| Some(Value::String(text.clone())));
        }
        chain.pending_input.push(Message {
            role: Role::Tool,
            name: None,
            parts: vec![Part::ToolResult {
                id: tool_use_id,
                content: Value::String(text),
                is_error,
            }],
        });
        idx
    }

    // ---- assistant lines --------------------------------------------------------------

    fn assistant(
        &mut self,
        chain: &mut Chain,
        pos: usize,
        jl: &JsonLine,
        obj: &Map<String, Value>,
        ts: Option<i64>,
    ) {
        let msg = obj.get("message").unwrap_or(&Value::Null);
        let group = message_id(obj).map_or_else(|| line_id(obj, jl.line), str::to_owned);
        let model = get_str(msg, &["model"])
            .filter(|m| *m != "<synthetic>")
            .map(str::to_owned);
        let idx = if let Some(&idx) = self.llm_by_message.get(&group) {
            idx
        } else {
            let span = Span {
                id: group.clone(),
                kind: SpanKind::Llm,
                name: model.clone().unwrap_or_else(|| "assistant".to_owned()),
                step: Some(pos as u32),
                start_ns: ts,
                status: Status::Ok,
                llm: Some(Box::new(LlmCall {
                    provider: Some("anthropic".to_owned()),
                    response_model: model.clone(),
                    input_messages: std::mem::take(&mut chain.pending_input),
                    ..LlmCall::default()
                })),
                links: self.links(obj, &group),
                attributes: unmapped(obj),
                source: self.source(chain, jl.line),
                ..Span::default()
            };
            let parent = chain.parent();
            let idx = self.b.push_child(parent, span);
            self.llm_by_message.insert(group.clone(), idx);
            chain.open.push(idx);
            idx
        };
        chain.current_group = Some(group.clone());
        chain.last_llm = Some(idx);
        self.remember_uuid(obj, &group);
        if let Some(uuid) = obj.get("uuid").and_then(Value::as_str) {
            let attrs = &mut self.b.span_mut(idx).attributes;
            let uuids = attrs
                .entry("uuids".to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = uuids {
                list.push(Value::from(uuid));
            }
        }

        let mut parts = Vec::new();
        let mut tool_calls = Vec::new();
        match msg.get("content") {
            Some(Value::String(s)) => parts.push(Part::Text { text: s.clone() }),
            Some(Value::Array(blocks)) => {
                for (k, block) in blocks.iter().enumerate() {
                    match block_type(block) {
                        Some("text") => {
                            parts.push(Part::Text {
                                text: get_str(block, &["text"]).unwrap_or_default().to_owned(),
                            });
                        }
                        Some("thinking") => {
                            let text = get_str(block, &["thinking"]).unwrap_or_default().to_owned();
                            parts.push(Part::Reasoning { text });
                        }
                        Some("redacted_thinking") => parts.push(Part::Reasoning {
                            text: "[redacted]".to_owned(),
                        }),
                        Some("tool_use" | "server_tool_use") => {
                            let name = get_str(block, &["name"]).unwrap_or("tool").to_owned();
                            let call_id = get_str(block, &["id"])
                                .map_or_else(|| format!("L{}.{k}", jl.line), str::to_owned);
                            let args = block.get("input").cloned().unwrap_or(Value::Null);
                            parts.push(Part::ToolCall {
                                id: Some(call_id.clone()),
                                name: name.clone(),
                                arguments: args.clone(),
                            });
                            tool_calls.push((
                                call_id,
                                name,
                                args,
                                block_type(block) == Some("server_tool_use"),
                            ));
                        }
                        Some(t) if t.ends_with("_tool_result") => {
                            // Server-side tool results arrive inside the assistant message.
                            if let Some(&tool) =
                                get_str(block, &["tool_use_id"]).and_then(|id| self.tools.get(id))
                            {
                                let content = block.get("content").cloned().unwrap_or(Value::Null);
                                let failed = content
                                    .get("type")
                                    .and_then(Value::as_str)
                                    .is_some_and(|t| t.ends_with("_error"));
                                let span = self.b.span_mut(tool);
                                span.output = Some(Box::new(Payload::from_json(content.clone())));
                                span.status = if failed { Status::Error } else { Status::Ok };
                                if failed {
                                    span.error = Some(Box::new(ErrorInfo {
                                        kind: get_str(&content, &["error_code"]).map(str::to_owned),
                                        message: content.to_string(),
                                        ..ErrorInfo::default()
                                    }));
                                }
                                if let Some(t) = &mut span.tool {
                                    t.result = Some(content);
                                    t.is_error = failed;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        let llm_id = self.b.span(idx).id.clone();
        for (call_id, name, args, server_side) in tool_calls {
            self.tool_call(
                chain,
                pos,
                jl,
                ts,
                &llm_id,
                call_id,
                &name,
                &args,
                server_side,
            );
        }

        let api_error = obj.get("isApiErrorMessage").and_then(Value::as_bool) == Some(true);
        let error_kind = obj.get("error").and_then(|e| {
            e.as_str()
                .map(str::to_owned)
                .or_else(|| get_str(e, &["type"]).map(str::to_owned))
        });
        let usage = msg.get("usage").and_then(anthropic_usage);
        let extra_usage = msg.get("usage").map(usage_extras).unwrap_or_default();
        let stop = get_str(msg, &["stop_reason"]).map(str::to_owned);
        // Claude Code 1.x wrote the cost of each response on its line.
        let reported_cost = obj
            .get("costUSD")
            .and_then(as_f64)
            .filter(|c| c.is_finite())
            .map(|amount| Cost {
                amount,
                currency: "USD".to_owned(),
                source: CostSource::Reported,
            });
        let span = self.b.span_mut(idx);
        if let Some(llm) = &mut span.llm {
            if llm.output_messages.is_empty() {
                llm.output_messages.push(Message {
                    role: Role::Assistant,
                    name: None,
                    parts: Vec::new(),
                });
            }
            if let Some(out) = llm.output_messages.first_mut() {
                out.parts.extend(parts);
            }
            if stop.is_some() {
                llm.finish_reason = stop;
            }
            if llm.response_model.is_none() {
                llm.response_model = model;
            }
        }
        if usage.is_some() {
            // Every split line repeats the usage so far: the last line's figure wins.
            span.usage = usage.map(Box::new);
            for (k, v) in extra_usage {
                span.attributes.insert(k, v);
            }
        }
        let text = span
            .llm
            .as_ref()
            .and_then(|l| l.output_messages.first())
            .map(Message::joined_text)
            .unwrap_or_default();
        if !text.is_empty() {
            span.output = Some(Box::new(Payload::text(text.clone())));
        }
        if reported_cost.is_some() {
            span.cost = reported_cost;
        }
        if api_error || error_kind.is_some() {
            span.status = Status::Error;
            span.error = Some(Box::new(ErrorInfo {
                kind: error_kind.or_else(|| Some("api_error".to_owned())),
                message: if text.is_empty() {
                    "API error".to_owned()
                } else {
                    first_line(&text)
                },
                ..ErrorInfo::default()
            }));
            if api_error {
                span.attributes
                    .insert("isApiErrorMessage".to_owned(), Value::Bool(true));
            }
        }
    }

    /// A `Tool` span for one `tool_use` block, plus a handoff for delegations and messages.
    #[allow(
        clippy::too_many_arguments,
        reason = "one block's context, passed as is"
    )]
    fn tool_call(
        &mut self,
        chain: &mut Chain,
        pos: usize,
        jl: &JsonLine,
        ts: Option<i64>,
        llm_id: &str,
        call_id: String,
        name: &str,
        args: &Value,
        server_side: bool,
    ) {
        let mut span = Span {
            id: call_id.clone(),
            kind: SpanKind::Tool,
            name: name.to_owned(),
            step: Some(pos as u32),
            start_ns: ts,
            input: Some(Box::new(Payload::from_json(args.clone()))),
            tool: Some(Box::new(ToolCall {
                name: name.to_owned(),
                call_id: Some(call_id.clone()),
                arguments: args.clone(),
                ..ToolCall::default()
            })),
            links: vec![Link {
                kind: LinkKind::FollowsFrom,
                target: llm_id.to_owned(),
            }],
            source: self.source(chain, jl.line),
            ..Span::default()
        };
        if server_side {
            span.attributes
                .insert("server_side".to_owned(), Value::Bool(true));
        }
        let parent = chain.parent();
        let idx = self.b.push_child(parent, span);
        self.tools.insert(call_id.clone(), idx);
        match name {
            "Task" | "Agent" => {
                self.delegate(chain, idx, call_id, args);
            }
            "SendMessage" => {
                let to = ["to", "recipient", "agent", "agent_name", "name", "target"]
                    .iter()
                    .find_map(|k| get_str(args, &[k]))
                    .unwrap_or("unknown")
                    .to_owned();
                let handoff = Span {
                    id: format!("{call_id}.handoff"),
                    kind: SpanKind::Handoff,
                    name: format!("message to {to}"),
                    step: Some(pos as u32),
                    start_ns: ts,
                    end_ns: ts,
                    handoff: Some(Box::new(Handoff {
                        from: Some(chain.agent.clone()),
                        to,
                        mode: HandoffMode::Message,
                    })),
                    links: vec![Link {
                        kind: LinkKind::FollowsFrom,
                        target: call_id,
                    }],
                    source: self.source(chain, jl.line),
                    ..Span::default()
                };
                self.b.push_child(parent, handoff);
            }
            _ => {}
        }
    }

    /// Registers a delegation for the tool span `tool` and puts a handoff span beside it.
    fn delegate(&mut self, chain: &Chain, tool: usize, tool_use_id: String, args: &Value) -> usize {
        let display = get_str(args, &["name"])
            .or_else(|| get_str(args, &["subagent_type"]))
            .map(str::to_owned);
        let span = self.b.span(tool);
        let (start, step, source) = (span.start_ns, span.step, span.source.clone());
        let parent = self.b.parent_of(tool).unwrap_or(chain.container);
        let to = display.clone().unwrap_or_else(|| "subagent".to_owned());
        let handoff = self.b.push_child(
            parent,
            Span {
                id: format!("{tool_use_id}.handoff"),
                kind: SpanKind::Handoff,
                name: format!("delegate to {to}"),
                step,
                start_ns: start,
                end_ns: start,
                handoff: Some(Box::new(Handoff {
                    from: Some(chain.agent.clone()),
                    to,
                    mode: HandoffMode::Delegate,
                })),
                links: vec![Link {
                    kind: LinkKind::FollowsFrom,
                    target: tool_use_id.clone(),
                }],
                source,
                ..Span::default()
            },
        );
        self.delegations.push(Delegation {
            tool_use_id: tool_use_id.clone(),
            tool,
            handoff,
            display,
            prompt: get_str(args, &["prompt"]).map(str::to_owned),
            model: get_str(args, &["model"]).map(str::to_owned),
            from: chain.agent.clone(),
            agent_id: None,
            result: None,
            attached: false,
        });
        let d = self.delegations.len() - 1;
        self.delegation_of_tool.insert(tool_use_id, d);
        d
    }

    // ---- system, progress and result lines ---------------------------------------------

    fn system(
        &mut self,
        chain: &mut Chain,
        pos: usize,
        jl: &JsonLine,
        obj: &Map<String, Value>,
        ts: Option<i64>,
    ) {
        let subtype = obj.get("subtype").and_then(Value::as_str);
        if self.stream && subtype == Some("init") {
            self.init(obj);
        }
        let level = obj.get("level").and_then(Value::as_str);
        let text = obj
            .get("content")
            .map(content_text)
            .filter(|t| !t.is_empty())
            .or_else(|| {
                obj.get("error")
                    .map(|e| get_str(e, &["message"]).map_or_else(|| e.to_string(), str::to_owned))
            })
            .unwrap_or_default();
        let id = line_id(obj, jl.line);
        let mut span = Span {
            id: id.clone(),
            kind: SpanKind::System,
            name: match subtype {
                Some("compact_boundary") => "compaction".to_owned(),
                Some(s) => s.to_owned(),
                None => "system".to_owned(),
            },
            step: Some(pos as u32),
            start_ns: ts,
            output: ((!text.is_empty()).then(|| Payload::text(text.clone()))).map(Box::new),
            links: self.links(obj, &id),
            attributes: unmapped(obj),
            source: self.source(chain, jl.line),
            ..Span::default()
        };
        if let Some(level) = level {
            span.attributes
                .insert("level".to_owned(), Value::from(level));
        }
        if level == Some("error") || subtype == Some("api_error") {
            span.status = Status::Error;
            span.error = Some(Box::new(ErrorInfo {
                kind: subtype.map(str::to_owned),
                message: if text.is_empty() {
                    "error".to_owned()
                } else {
                    first_line(&text)
                },
                // A retry is announced: the run goes on.
                handled: obj.contains_key("retryAttempt") || obj.contains_key("retryInMs"),
                ..ErrorInfo::default()
            }));
        }
        let parent = chain.parent();
        let idx = self.b.push_child(parent, span);
        chain.open.push(idx);
        self.remember_uuid(obj, &id);
    }

    /// `system/init` of stream-json: session-level facts.
    fn init(&mut self, obj: &Map<String, Value>) {
        let trace = self.b.trace_mut();
        if let Some(sid) = obj.get("session_id").and_then(Value::as_str) {
            trace.session_id = Some(sid.to_owned());
        }
        if let Some(v) = obj.get("claude_code_version").and_then(Value::as_str) {
            trace.format_version = Some(format!("claude-code/{v}"));
        }
        for key in [
            "model",
            "cwd",
            "permissionMode",
            "apiKeySource",
            "output_style",
        ] {
            if let Some(v) = obj.get(key) {
                trace.metadata.insert(key.to_owned(), v.clone());
            }
        }
        if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
            trace
                .metadata
                .insert("tools".to_owned(), Value::Array(tools.clone()));
        }
    }

    /// Progress lines (hooks, running tools, sub-agent activity) become events on the tool
    /// they report on. Their embedded sub-agent messages repeat the side-chain file, so they
    /// are never counted as model calls.
    fn progress(&mut self, jl: &JsonLine, obj: &Map<String, Value>, ts: Option<i64>) {
        let tool_id = ["parentToolUseID", "toolUseID", "parent_tool_use_id"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str));
        let data = obj.get("data").unwrap_or(&Value::Null);
        let kind = get_str(data, &["type"]).unwrap_or("progress");
        if let (Some(tool_id), Some(agent_id)) = (tool_id, get_str(data, &["agentId"]))
            && let Some(&d) = self.delegation_of_tool.get(tool_id)
            && let Some(d) = self.delegations.get_mut(d)
        {
            d.agent_id.get_or_insert_with(|| agent_id.to_owned());
        }
        if let Some(&tool) = tool_id.and_then(|id| self.tools.get(id)) {
            let mut attributes = std::collections::BTreeMap::new();
            attributes.insert("line".to_owned(), Value::from(jl.line));
            for key in ["agentId", "hookName", "hookEvent", "command"] {
                if let Some(v) = data.get(key) {
                    attributes.insert(key.to_owned(), v.clone());
                }
            }
            self.b.span_mut(tool).events.push(SpanEvent {
                name: format!("progress.{kind}"),
                time_ns: ts,
                attributes,
            });
        }
    }

    /// The final `result` line of stream-json.
    fn result(&mut self, jl: &JsonLine, obj: &Map<String, Value>) {
        let is_error = obj.get("is_error").and_then(Value::as_bool) == Some(true);
        let subtype = obj.get("subtype").and_then(Value::as_str);
        let text = obj
            .get("result")
            .map(content_text)
            .filter(|t| !t.is_empty());
        if let Some(cost) = obj.get("total_cost_usd").and_then(as_f64) {
            self.b.trace_mut().cost = Some(Cost {
                amount: cost,
                currency: "USD".to_owned(),
                source: CostSource::Reported,
            });
        }
        for key in [
            "num_turns",
            "duration_ms",
            "duration_api_ms",
            "subtype",
            "modelUsage",
            "permission_denials",
        ] {
            if let Some(v) = obj.get(key) {
                self.b
                    .trace_mut()
                    .metadata
                    .insert(format!("result.{key}"), v.clone());
            }
        }
        if let Some(t) = &text {
            self.b.trace_mut().final_output = Some(t.clone());
        }
        let usage = obj.get("usage").and_then(anthropic_usage);
        let root = self.root;
        let span = self.b.span_mut(root);
        span.attributes
            .insert("result.line".to_owned(), Value::from(jl.line));
        if let Some(t) = text {
            span.output = Some(Box::new(Payload::text(t)));
        }
        if usage.is_some() {
            span.usage = usage.map(Box::new);
            span.usage_scope = UsageScope::Subtree;
        }
        if is_error || subtype.is_some_and(|s| s.starts_with("error")) {
            span.status = Status::Error;
            span.error = Some(Box::new(ErrorInfo {
                kind: subtype.map(str::to_owned),
                message: span.output.as_ref().map_or_else(
                    || subtype.unwrap_or("error").to_owned(),
                    |p| first_line(&p.text),
                ),
                ..ErrorInfo::default()
            }));
            self.b.trace_mut().status = Status::Error;
        } else {
            span.status = Status::Ok;
            self.b.trace_mut().status = Status::Ok;
        }
    }

    /// Closes the chain's open turn: it failed when its last model call failed.
    fn close_turn(&mut self, chain: &mut Chain) {
        let Some(turn) = chain.turn.take() else {
            return;
        };
        let failed = chain
            .last_llm
            .map(|l| self.b.span(l))
            .filter(|s| s.status == Status::Error)
            .and_then(|s| s.error.clone());
        let span = self.b.span_mut(turn);
        if let Some(error) = failed {
            span.status = Status::Error;
            span.error = Some(Box::new(*error));
        } else if chain.last_llm.is_some() {
            span.status = Status::Ok;
        }
        if let Some(last) = chain.last_llm {
            let output = self.b.span(last).output.clone();
            self.b.span_mut(turn).output = output;
        }
    }

    // ---- sub-agents ------------------------------------------------------------------

    /// Puts each side chain under the tool call that started it; repeats so that delegations
    /// made inside a side chain can take their own side chains.
    fn attach_side_chains(&mut self, mut chains: Vec<SideChain<'_>>) {
        loop {
            let found = chains
                .iter()
                .enumerate()
                .find_map(|(i, c)| self.match_delegation(c).map(|d| (i, d)));
            let Some((i, d)) = found else { break };
            let chain = chains.remove(i);
            self.run_side_chain(&chain, Some(d));
        }
        for chain in chains {
            let who = chain.agent_id.clone().unwrap_or_else(|| "?".to_owned());
            self.b.warn(format!(
                "side chain of sub-agent {who} ({}) matches no delegating tool call; kept under the session agent",
                chain.file
            ));
            self.run_side_chain(&chain, None);
        }
        // Delegations whose sub-agent transcript was not found still get their Agent span.
        let mut missing = 0;
        for d in 0..self.delegations.len() {
            if !self.delegations[d].attached {
                if self.delegations[d].agent_id.is_some() {
                    missing += 1;
                }
                self.agent_span(d, None);
            }
        }
        if missing > 0 {
            self.b.warn(format!(
                "{missing} sub-agent transcript(s) not found; their Agent spans carry only the reported result"
            ));
        }
    }

    fn match_delegation(&self, chain: &SideChain<'_>) -> Option<usize> {
        if let Some(agent) = &chain.agent_id
            && let Some(i) = self
                .delegations
                .iter()
                .position(|d| !d.attached && d.agent_id.as_ref() == Some(agent))
        {
            return Some(i);
        }
        if let Some(tool) = &chain.parent_tool
            && let Some(i) = self
                .delegations
                .iter()
                .position(|d| !d.attached && &d.tool_use_id == tool)
        {
            return Some(i);
        }
        let prompt = chain.first_prompt()?;
        self.delegations.iter().position(|d| {
            !d.attached
                && (chain.agent_id.is_none() || d.agent_id.is_none())
                && d.prompt
                    .as_deref()
                    .is_some_and(|p| p.trim() == prompt.trim())
        })
    }

    /// Creates the `Agent` span of a delegation (or of an unmatched side chain).
    fn agent_span(&mut self, delegation: usize, chain: Option<&SideChain<'_>>) -> usize {
        let d = &self.delegations[delegation];
        let agent_id = d
            .agent_id
            .clone()
            .or_else(|| chain.and_then(|c| c.agent_id.clone()));
        let name = d
            .display
            .clone()
            .or_else(|| agent_id.clone())
            .unwrap_or_else(|| "subagent".to_owned());
        let tool = self.b.span(d.tool);
        let tool_start = tool.start_ns;
        let tool_end = tool.end_ns;
        let tool_failed = tool.status == Status::Error;
        let tool_output = tool.output.as_ref().map(|p| p.text.clone());
        let result = d.result.clone().unwrap_or(Value::Null);
        let duration = get_f(&result, "totalDurationMs");
        let start = chain.and_then(SideChain::first_time).or(tool_start);
        let end = match (tool_start, duration) {
            (Some(s), Some(ms)) => Some(s + (ms * 1e6) as i64),
            _ => chain.and_then(SideChain::last_time).or(tool_end),
        };
        let status_word = get_str(&result, &["status"]);
        let status = if tool_failed
            || status_word.is_some_and(|s| matches!(s, "failed" | "error" | "errored"))
        {
            Status::Error
        } else if matches!(status_word, Some("completed"))
            || (d.result.is_some() && status_word.is_none())
        {
            Status::Ok
        } else {
            Status::Unset
        };
        let mut attributes = std::collections::BTreeMap::new();
        if let Value::Object(o) = &result {
            for (k, v) in o {
                if !matches!(k.as_str(), "content" | "prompt" | "usage") {
                    attributes.insert(k.clone(), v.clone());
                }
            }
        }
        let (from, tool_idx, handoff_idx, model, prompt) = (
            d.from.clone(),
            d.tool,
            d.handoff,
            d.model.clone(),
            d.prompt.clone(),
        );
        let span = Span {
            id: format!(
                "agent-{}",
                agent_id.clone().unwrap_or_else(|| d.tool_use_id.clone())
            ),
            kind: SpanKind::Agent,
            name: name.clone(),
            agent: Some(name.clone()),
            step: chain.and_then(|c| c.lines.first()).map(|(p, _)| *p as u32),
            start_ns: start,
            end_ns: end,
            status,
            error: ((status == Status::Error).then(|| ErrorInfo {
                message: tool_output
                    .clone()
                    .map_or_else(|| "sub-agent failed".to_owned(), |t| first_line(&t)),
                ..ErrorInfo::default()
            }))
            .map(Box::new),
            input: (prompt.map(Payload::text)).map(Box::new),
            output: (tool_output.filter(|t| !t.is_empty()).map(Payload::text)).map(Box::new),
            usage: (result.get("usage").and_then(anthropic_usage)).map(Box::new),
            usage_scope: UsageScope::Subtree,
            attributes,
            source: chain.and_then(|c| c.lines.first()).map_or_else(
                || self.b.span(tool_idx).source.clone(),
                |(_, l)| SourceRef {
                    file: chain.map(|c| c.file.clone()),
                    line: Some(l.line),
                    pointer: None,
                },
            ),
            ..Span::default()
        };
        let idx = self.b.push_child(tool_idx, span);
        if let Some(h) = &mut self.b.span_mut(handoff_idx).handoff {
            h.to.clone_from(&name);
        }
        self.b.span_mut(handoff_idx).name = format!("delegate to {name}");
        self.b.agent(AgentInfo {
            name,
            id: agent_id.clone(),
            role: get_str(&result, &["agentType"]).map(str::to_owned),
            model,
            parent_agent: Some(from),
        });
        let d = &mut self.delegations[delegation];
        d.attached = true;
        d.agent_id = agent_id;
        idx
    }

    fn run_side_chain(&mut self, chain: &SideChain<'_>, delegation: Option<usize>) {
        let (container, agent) = if let Some(d) = delegation {
            let idx = self.agent_span(d, Some(chain));
            (idx, self.b.span(idx).name.clone())
        } else {
            {
                let name = chain
                    .agent_id
                    .clone()
                    .unwrap_or_else(|| "subagent".to_owned());
                let first = chain.lines.first();
                let span = Span {
                    id: format!("agent-{name}"),
                    kind: SpanKind::Agent,
                    name: name.clone(),
                    agent: Some(name.clone()),
                    step: first.map(|(p, _)| *p as u32),
                    start_ns: chain.first_time(),
                    end_ns: chain.last_time(),
                    attributes: std::iter::once((
                        "delegation".to_owned(),
                        Value::from("unmatched"),
                    ))
                    .collect(),
                    source: SourceRef {
                        file: Some(chain.file.clone()),
                        line: first.map(|(_, l)| l.line),
                        pointer: None,
                    },
                    ..Span::default()
                };
                let root = self.root;
                let idx = self.b.push_child(root, span);
                self.b.agent(AgentInfo {
                    name: name.clone(),
                    id: chain.agent_id.clone(),
                    parent_agent: Some(self.b.span(self.root).name.clone()),
                    ..AgentInfo::default()
                });
                (idx, name)
            }
        };
        let mut sub = Chain::new(agent, chain.file.clone(), container, false);
        for (pos, line) in &chain.lines {
            self.line(&mut sub, *pos, line);
        }
    }

    // ---- the end ---------------------------------------------------------------------

    fn finish(mut self, root: usize, main: &Chain) -> AdapterResult {
        if self.messages_seen == 0 {
            return Err(AdapterError::new(
                "no user, assistant or system lines found; expected Claude Code session lines with `type`, `message` and `uuid`",
            ));
        }
        if self.orphan_results > 0 {
            let n = self.orphan_results;
            self.b.warn(format!(
                "{n} tool result(s) name a tool_use id that is not in the transcript"
            ));
        }
        let last_llm_error = main
            .last_llm
            .map(|l| self.b.span(l))
            .and_then(|s| s.error.clone().filter(|_| s.status == Status::Error));
        let last_output = main.last_llm.and_then(|l| self.b.span(l).output.clone());
        let span = self.b.span_mut(root);
        span.start_ns = span.start_ns.or(main.first_ts);
        span.end_ns = span.end_ns.or(main.last_ts);
        if span.output.is_none() {
            span.output = last_output;
        }
        if span.status == Status::Unset {
            if let Some(error) = last_llm_error {
                span.status = Status::Error;
                span.error = Some(Box::new(*error));
            } else if main.last_llm.is_some() {
                span.status = Status::Ok;
            }
        }
        if self.b.trace_mut().format_version.is_none() && self.stream {
            self.b.trace_mut().format_version = Some("claude-code/stream-json".to_owned());
        }
        Ok(vec![Parsed::unlabelled(self.b.finish())])
    }
}

// ---- small readers ---------------------------------------------------------------------

fn line_time(v: &Value) -> Option<i64> {
    v.get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_time)
}

fn line_id(obj: &Map<String, Value>, line: u32) -> String {
    obj.get("uuid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("L{line}"), str::to_owned)
}

fn message_id(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("message")
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn block_type(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

fn has_tool_results(content: &Value) -> bool {
    content
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|b| block_type(b) == Some("tool_result")))
}

/// Text of message content: a string, or the text blocks of a block list (images and other
/// binary blocks are named, never inlined).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            let mut out: Vec<String> = Vec::new();
            for block in blocks {
                match block {
                    Value::String(s) => out.push(s.clone()),
                    Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                        Some("text") => out.push(
                            o.get("text")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                        Some("image") => out.push("[image]".to_owned()),
                        Some("document") => out.push("[document]".to_owned()),
                        Some("tool_result") => {
                            out.push(o.get("content").map(content_text).unwrap_or_default());
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
            out.join("\n")
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn first_line(text: &str) -> String {
    truncate(text.trim().lines().next().unwrap_or_default(), 300)
}

fn get_f(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(as_f64)
}

/// Anthropic usage, normalized so that `input` includes cache reads and writes.
pub(crate) fn anthropic_usage(u: &Value) -> Option<Usage> {
    let base = u.get("input_tokens").and_then(as_u64);
    let read = u.get("cache_read_input_tokens").and_then(as_u64);
    let write = u.get("cache_creation_input_tokens").and_then(as_u64);
    let output = u.get("output_tokens").and_then(as_u64);
    if base.is_none() && read.is_none() && write.is_none() && output.is_none() {
        return None;
    }
    // Saturating: counts come from the file, and a hostile one must not overflow.
    let input = base
        .unwrap_or(0)
        .saturating_add(read.unwrap_or(0))
        .saturating_add(write.unwrap_or(0));
    Some(Usage {
        input: Some(input),
        output,
        cache_read: read,
        cache_write: write,
        reasoning: None,
        total: Some(input.saturating_add(output.unwrap_or(0))),
        estimated: false,
    })
}

/// Usage fields with no canonical slot (`service_tier`, the cache split by lifetime,
/// server-tool counts), kept as `usage.*` attributes.
fn usage_extras(u: &Value) -> Vec<(String, Value)> {
    let mut flat = std::collections::BTreeMap::new();
    if let Value::Object(o) = u {
        for (k, v) in o {
            if !matches!(
                k.as_str(),
                "input_tokens"
                    | "output_tokens"
                    | "cache_read_input_tokens"
                    | "cache_creation_input_tokens"
            ) && !v.is_null()
            {
                flatten_into(&format!("usage.{k}"), v, &mut flat);
            }
        }
    }
    flat.into_iter().collect()
}

/// Line fields that have no canonical slot.
fn unmapped(obj: &Map<String, Value>) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in obj {
        if MAPPED_KEYS.contains(&k.as_str()) || SESSION_KEYS.contains(&k.as_str()) || v.is_null() {
            continue;
        }
        flatten_into(k, v, &mut out);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::load::{InputOutcome, LoadOptions, Loader};
    use crate::model::{CostSource, Format, HandoffMode, SpanKind, Status, Trace, UsageScope};
    use crate::testing::{fixture, fixtures_dir, inline};

    const SESSION: &str = "claude-code/7d1e4c2a-5b8f-4a63-9e0d-2c4b6a8f1e35.jsonl";
    const SIDE_CHAIN: &str =
        "claude-code/7d1e4c2a-5b8f-4a63-9e0d-2c4b6a8f1e35/subagents/agent-a3f9c1e07b24d5e68.jsonl";

    fn span<'t>(t: &'t Trace, id: &str) -> &'t crate::model::Span {
        t.spans
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no span {id}"))
    }

    fn parent<'t>(t: &'t Trace, s: &crate::model::Span) -> Option<&'t crate::model::Span> {
        s.parent.map(|p| &t.spans[p as usize])
    }

    #[test]
    fn session_with_sub_agent_file() {
        let (summary, traces) = fixture(SESSION);
        assert_eq!(summary.format, Format::ClaudeCode);
        assert_eq!(traces.len(), 1);
        let t = &traces[0].trace;
        assert_eq!(t.id, "7d1e4c2a-5b8f-4a63-9e0d-2c4b6a8f1e35");
        assert_eq!(t.format_version.as_deref(), Some("claude-code/2.1.74"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let names: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["main", "Explore"]);
        let explore = &t.agents[1];
        assert_eq!(explore.id.as_deref(), Some("a3f9c1e07b24d5e68"));
        assert_eq!(explore.parent_agent.as_deref(), Some("main"));

        // The sub-agent sits under the Agent tool call, with its own spans inside.
        let agent = span(t, "agent-a3f9c1e07b24d5e68");
        assert_eq!(agent.kind, SpanKind::Agent);
        assert_eq!(
            parent(t, agent).map(|p| p.id.as_str()),
            Some("toolu_01Rk4mExplore")
        );
        assert_eq!(agent.usage_scope, UsageScope::Subtree);
        let grep = span(t, "toolu_01SubGrep");
        assert_eq!(grep.agent.as_deref(), Some("Explore"));
        assert_eq!(
            parent(t, grep).map(|p| p.id.as_str()),
            Some(agent.id.as_str())
        );
        assert!(
            grep.source
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("agent-a3f9c1e07b24d5e68.jsonl"))
        );
        let sub_read = span(t, "toolu_01SubRead1");
        assert_eq!(
            (sub_read.name.as_str(), sub_read.status),
            ("Read", Status::Error)
        );

        // One delegation, beside the tool that made it.
        let handoffs: Vec<_> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!(
            (h.from.as_deref(), h.to.as_str(), h.mode),
            (Some("main"), "Explore", HandoffMode::Delegate)
        );
        assert_eq!(handoffs[0].parent, span(t, "toolu_01Rk4mExplore").parent);

        // The failing test run.
        let bash = span(t, "toolu_01Bash1");
        assert_eq!(
            (bash.kind, bash.name.as_str(), bash.status),
            (SpanKind::Tool, "Bash", Status::Error)
        );
        assert!(bash.tool.as_ref().unwrap().is_error);
        assert!(
            bash.error
                .as_ref()
                .unwrap()
                .message
                .starts_with("running 3 tests")
        );
        assert_eq!(
            bash.end_ns,
            crate::util::parse_time("2026-02-11T10:14:49.700Z")
        );
        assert_eq!(parent(t, bash).map(|p| p.name.as_str()), Some("turn 1"));

        // Split assistant lines: one Llm span, usage of the last line (not the sum).
        let first = span(t, "msg_01HqB7");
        assert_eq!(first.step, Some(2));
        assert_eq!(first.source.line, Some(3));
        let u = first.usage.as_ref().unwrap();
        assert_eq!(
            (u.input, u.output, u.cache_read, u.cache_write),
            (Some(15_096), Some(187), Some(12_880), Some(2_210))
        );
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 10);

        // Totals: 6 main + 4 sub-agent calls, input including cache reads and writes.
        assert_eq!(t.usage.input, Some(162_410));
        assert_eq!(t.usage.output, Some(1_411));
        assert_eq!(t.usage.cache_read, Some(149_410));
        assert_eq!(t.usage.cache_write, Some(12_950));
        assert_eq!(
            t.cost.as_ref().map(|c| c.source),
            Some(CostSource::Estimated)
        );

        // Retried API error, interruption, turns, links.
        let api = t.spans.iter().find(|s| s.name == "api_error").unwrap();
        assert_eq!(api.status, Status::Error);
        assert!(api.error.as_ref().unwrap().handled);
        let interrupted: Vec<SpanKind> = t
            .spans
            .iter()
            .filter(|s| s.attributes.get("interrupted") == Some(&true.into()))
            .map(|s| s.kind)
            .collect();
        assert_eq!(interrupted, [SpanKind::Step, SpanKind::Human]);
        assert_eq!(
            t.spans
                .iter()
                .filter(|s| s.name.starts_with("turn "))
                .count(),
            2
        );
        assert!(
            span(t, "msg_01Jx2c")
                .links
                .iter()
                .any(|l| l.target == "toolu_01Rk4mExplore")
        );
        assert_eq!(
            t.task.as_deref().map(|s| s.starts_with("cargo test fails")),
            Some(true)
        );
        assert!(
            t.final_output
                .as_deref()
                .is_some_and(|o| o.starts_with("Fixed:"))
        );
    }

    #[test]
    fn folder_walk_reads_the_side_chain_once() {
        let mut loader = Loader::new(LoadOptions::default());
        let mut traces = Vec::new();
        let outcomes = loader.load_paths(&[fixtures_dir().join("claude-code")], &mut |t| {
            traces.push(t);
        });
        let loaded = outcomes
            .iter()
            .filter(|o| matches!(o, InputOutcome::Loaded(_)))
            .count();
        assert_eq!(loaded, 2, "{outcomes:?}");
        assert_eq!(traces.len(), 2);
        assert!(traces.iter().all(|t| !t.trace.id.contains("/agent-")));
        let session = traces
            .iter()
            .find(|t| t.trace.id.starts_with("7d1e4c2a"))
            .unwrap();
        assert!(session.trace.agents.iter().any(|a| a.name == "Explore"));
    }

    #[test]
    fn standalone_side_chain_is_its_own_trace() {
        let (summary, traces) = fixture(SIDE_CHAIN);
        assert_eq!(summary.format, Format::ClaudeCode);
        let t = &traces[0].trace;
        assert_eq!(
            t.id,
            "7d1e4c2a-5b8f-4a63-9e0d-2c4b6a8f1e35/agent-a3f9c1e07b24d5e68"
        );
        assert_eq!(t.agents[0].name, "a3f9c1e07b24d5e68");
        assert!(t.warnings.iter().any(|w| w.contains("side chain")));
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 4);
        assert!(
            t.spans
                .iter()
                .any(|s| s.name == "Read" && s.status == Status::Error)
        );
        assert_eq!(t.usage.input, Some(60_898));
    }

    #[test]
    fn stream_json_with_reported_cost() {
        let (summary, traces) = fixture("claude-code/headless-review.stream.jsonl");
        assert_eq!(summary.format, Format::ClaudeCode);
        let t = &traces[0].trace;
        assert_eq!(t.id, "e4b0c6d2-31f7-4a9e-8c55-0d9a7b3e2f18");
        assert_eq!(t.status, Status::Ok);
        let cost = t.cost.as_ref().unwrap();
        assert_eq!((cost.amount, cost.source), (0.0418, CostSource::Reported));
        assert!(t.agents.iter().any(|a| a.name == "code-reviewer"));
        let agent = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Agent && s.name == "code-reviewer")
            .unwrap();
        assert_eq!(
            parent(t, agent).map(|p| p.id.as_str()),
            Some("toolu_01TaskRev")
        );
        let clippy = span(t, "toolu_01RevClippy");
        assert_eq!(
            (clippy.name.as_str(), clippy.status),
            ("Bash", Status::Error)
        );
        assert_eq!(clippy.agent.as_deref(), Some("code-reviewer"));
        assert_eq!(t.spans_of(SpanKind::Handoff).count(), 1);
        // Aggregate usage of the result line is kept on the root, never summed.
        let root = &t.spans[0];
        assert_eq!(root.usage_scope, UsageScope::Subtree);
        // 142 + 88 (main, last line of each group) + 61 + 58 + 96 (sub-agent).
        assert_eq!(t.usage.output, Some(445));
        assert!(
            t.final_output
                .as_deref()
                .is_some_and(|o| o.starts_with("Review found one bug"))
        );
    }

    fn line(v: &serde_json::Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn user(uuid: &str, parent: Option<&str>, content: &str) -> serde_json::Value {
        serde_json::json!({"type": "user", "sessionId": "s1", "uuid": uuid, "parentUuid": parent,
            "timestamp": "2026-03-01T10:00:00Z", "message": {"role": "user", "content": content}})
    }

    #[test]
    fn unknown_types_warn_once_and_odd_fields_do_not_panic() {
        let text = [
            line(&user("u1", None, "hi")),
            line(&serde_json::json!({"type": "mystery", "x": 1})),
            line(&serde_json::json!({"type": "mystery", "x": 2})),
            line(&serde_json::json!({"no_type": true})),
            line(&serde_json::json!({"type": "assistant", "sessionId": "s1", "uuid": "a1", "parentUuid": "u1",
                "timestamp": 17, "message": {"id": 5, "content": 3, "usage": {"input_tokens": "12", "output_tokens": null}}})),
            line(&serde_json::json!({"type": "assistant", "sessionId": "s1", "uuid": "a2", "parentUuid": "a1",
                "message": "not an object"})),
            line(&serde_json::json!({"type": "user", "sessionId": "s1", "uuid": "u2", "parentUuid": "a2",
                "message": {"content": [{"type": "tool_result", "tool_use_id": 7, "content": {"odd": true}}, 5, null]}})),
            line(&serde_json::json!([1, 2, 3])),
            line(&serde_json::json!({"type": "system", "sessionId": "s1", "uuid": "x1", "parentUuid": null, "level": 3})),
        ]
        .join("\n");
        let (_, traces) = inline("s1.jsonl", &text);
        let t = &traces[0].trace;
        let mystery = t
            .warnings
            .iter()
            .filter(|w| w.contains("`mystery`"))
            .count();
        assert_eq!(mystery, 1, "{:?}", t.warnings);
        assert!(t.warnings.iter().any(|w| w.contains("without a `type`")));
        assert!(t.warnings.iter().any(|w| w.contains("tool_use id")));
        assert!(t.warnings.iter().any(|w| w.contains("not a JSON object")));
        // A usage count given as a string still counts.
        assert_eq!(t.usage.input, Some(12));
        assert_eq!(t.spans_of(SpanKind::Llm).count(), 2);
    }

    #[test]
    fn version_1_cost_is_reported() {
        let text = [
            line(&user("u1", None, "hi")),
            line(&serde_json::json!({"type": "assistant", "sessionId": "s1", "uuid": "a1", "parentUuid": "u1",
                "timestamp": "2026-03-01T10:00:05Z", "costUSD": 0.0123, "durationMs": 2100,
                "message": {"id": "m1", "model": "claude-3-7-sonnet-20250219", "role": "assistant",
                    "content": [{"type": "text", "text": "hello"}],
                    "usage": {"input_tokens": 10, "output_tokens": 3}}})),
        ]
        .join("\n");
        let (_, traces) = inline("s1.jsonl", &text);
        let t = &traces[0].trace;
        let cost = t.cost.as_ref().unwrap();
        assert_eq!((cost.amount, cost.source), (0.0123, CostSource::Reported));
        let llm = t.spans_of(SpanKind::Llm).next().unwrap();
        assert_eq!(llm.attributes.get("durationMs"), Some(&2100.into()));
    }

    #[test]
    fn api_error_message_fails_the_model_call() {
        let text = [
            line(&user("u1", None, "deploy it")),
            line(&serde_json::json!({"type": "assistant", "sessionId": "s1", "uuid": "a1", "parentUuid": "u1",
                "timestamp": "2026-03-01T10:00:05Z", "isApiErrorMessage": true, "error": "rate_limit",
                "message": {"id": "m1", "model": "<synthetic>", "role": "assistant",
                    "content": [{"type": "text", "text": "API Error: 429 rate limit exceeded"}],
                    "usage": {"input_tokens": 0, "output_tokens": 0}}})),
        ]
        .join("\n");
        let (_, traces) = inline("s1.jsonl", &text);
        let t = &traces[0].trace;
        let llm = t.spans_of(SpanKind::Llm).next().unwrap();
        assert_eq!(llm.status, Status::Error);
        let error = llm.error.as_ref().unwrap();
        assert_eq!(error.kind.as_deref(), Some("rate_limit"));
        assert!(error.message.contains("429"));
        assert_eq!(llm.llm.as_ref().unwrap().response_model, None);
        // The session ended on that failure.
        assert_eq!(t.status, Status::Error);
    }

    #[test]
    fn inline_side_chain_matched_by_prompt() {
        // 1.x: side-chain lines live in the main file and carry no agentId.
        let prompt = "List the TODO comments in src/";
        let text = [
            line(&user("u1", None, "clean up the TODOs")),
            line(&serde_json::json!({"type": "assistant", "sessionId": "s1", "uuid": "a1", "parentUuid": "u1",
                "timestamp": "2026-03-01T10:00:02Z", "message": {"id": "m1", "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "Task",
                    "input": {"description": "find todos", "prompt": prompt}}]}})),
            line(&serde_json::json!({"type": "user", "sessionId": "s1", "uuid": "s-u1", "parentUuid": null,
                "isSidechain": true, "timestamp": "2026-03-01T10:00:03Z",
                "message": {"role": "user", "content": prompt}})),
            line(&serde_json::json!({"type": "assistant", "sessionId": "s1", "uuid": "s-a1", "parentUuid": "s-u1",
                "isSidechain": true, "timestamp": "2026-03-01T10:00:06Z", "message": {"id": "m-s1",
                "role": "assistant", "content": [{"type": "text", "text": "3 TODOs in src/lib.rs"}]}})),
            line(&serde_json::json!({"type": "user", "sessionId": "s1", "uuid": "u2", "parentUuid": "a1",
                "timestamp": "2026-03-01T10:00:07Z", "message": {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "3 TODOs in src/lib.rs"}]}})),
        ]
        .join("\n");
        let (_, traces) = inline("s1.jsonl", &text);
        let t = &traces[0].trace;
        let agent = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Agent && s.name != "main")
            .unwrap();
        assert_eq!(parent(t, agent).map(|p| p.id.as_str()), Some("t1"));
        let sub_llm = span(t, "m-s1");
        assert_eq!(
            parent(t, sub_llm).map(|p| p.id.as_str()),
            Some(agent.id.as_str())
        );
        assert_eq!(t.spans_of(SpanKind::Handoff).count(), 1);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn delegation_without_transcript_and_send_message() {
        let text = [
            line(&user("u1", None, "coordinate the team")),
            line(&serde_json::json!({"type": "assistant", "sessionId": "s1", "uuid": "a1", "parentUuid": "u1",
                "timestamp": "2026-03-01T10:00:02Z", "message": {"id": "m1", "role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "Agent",
                        "input": {"prompt": "write tests", "name": "tester", "run_in_background": true}},
                    {"type": "tool_use", "id": "t2", "name": "SendMessage",
                        "input": {"to": "tester", "message": "focus on parsing"}}]}})),
            line(&serde_json::json!({"type": "user", "sessionId": "s1", "uuid": "u2", "parentUuid": "a1",
                "timestamp": "2026-03-01T10:00:03Z", "toolUseResult": {"status": "async_launched", "agentId": "ab12"},
                "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "launched"}]}})),
        ]
        .join("\n");
        let (_, traces) = inline("s1.jsonl", &text);
        let t = &traces[0].trace;
        let agent = span(t, "agent-ab12");
        assert_eq!(
            (agent.name.as_str(), agent.status),
            ("tester", Status::Unset)
        );
        let modes: Vec<HandoffMode> = t
            .spans_of(SpanKind::Handoff)
            .map(|s| s.handoff.as_ref().unwrap().mode)
            .collect();
        assert_eq!(modes, [HandoffMode::Delegate, HandoffMode::Message]);
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("transcript(s) not found"))
        );
    }

    #[test]
    fn nothing_usable_is_an_error() {
        let options = LoadOptions {
            format: Some(Format::ClaudeCode),
            ..LoadOptions::default()
        };
        let text =
            "{\"type\":\"summary\",\"summary\":\"x\"}\n{\"type\":\"file-history-snapshot\"}\n";
        let err = crate::load::load_bytes("x.jsonl", text.as_bytes(), &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no user, assistant or system lines"), "{err}");
    }

    /// Variants of a JSONL text: each line deleted, and each field of each line (and of its
    /// `message`/`payload`/`data`/`item` object) replaced by a value of the wrong type.
    pub(crate) fn mutated_variants(text: &str) -> Vec<String> {
        let lines: Vec<&str> = text.lines().collect();
        let wrong = [
            serde_json::Value::Null,
            7.into(),
            "x".into(),
            serde_json::json!([1]),
            serde_json::json!({"k": 1}),
        ];
        let mut out = Vec::new();
        for (i, raw) in lines.iter().enumerate() {
            let with = |replacement: &str| {
                let mut copy = lines.clone();
                copy[i] = replacement;
                copy.join("\n")
            };
            out.push(with("{}"));
            let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(raw)
            else {
                continue;
            };
            for key in obj.keys() {
                for w in &wrong {
                    let mut m = obj.clone();
                    m.insert(key.clone(), w.clone());
                    out.push(with(&serde_json::Value::Object(m).to_string()));
                }
            }
            for outer in ["message", "payload", "data", "item"] {
                let Some(serde_json::Value::Object(inner)) = obj.get(outer) else {
                    continue;
                };
                for key in inner.keys() {
                    for w in &wrong {
                        let mut m = obj.clone();
                        let mut changed = inner.clone();
                        changed.insert(key.clone(), w.clone());
                        m.insert(outer.to_owned(), serde_json::Value::Object(changed));
                        out.push(with(&serde_json::Value::Object(m).to_string()));
                    }
                }
            }
        }
        out
    }

    /// Every variant either loads or fails with an error; none panics.
    pub(crate) fn assert_no_panics(fixture_rel: &str, name: &str) {
        let text = std::fs::read_to_string(fixtures_dir().join(fixture_rel)).unwrap();
        for (n, variant) in mutated_variants(&text).into_iter().enumerate() {
            let result = std::panic::catch_unwind(|| {
                let _ = crate::load::load_bytes(name, variant.as_bytes(), &LoadOptions::default());
            });
            assert!(
                result.is_ok(),
                "variant {n} of {fixture_rel} panicked:\n{variant}"
            );
        }
    }

    #[test]
    fn mutated_fixtures_never_panic() {
        assert_no_panics(SESSION, "s.jsonl");
        assert_no_panics(SIDE_CHAIN, "agent-x.jsonl");
        assert_no_panics("claude-code/headless-review.stream.jsonl", "h.jsonl");
    }
}
