//! The canonical trace model every adapter produces.
//!
//! One [`Trace`] is one run: an OTLP trace id, a LangSmith root run, an n8n execution, a Claude
//! Code session with its sub-agents, a dataset case. Spans live in an arena (`Trace::spans`) and
//! refer to each other by index. Containment (`Span::parent`) is kept apart from data-flow and
//! conversation links (`Span::links`), because the sources disagree on what "parent" means.
//!
//! Dataset answers (Who&When mistakes, tau-bench rewards, MAST codes) are *not* part of a
//! [`Trace`]: adapters return them beside it in [`Labels`], so code that only receives a `Trace`
//! cannot see them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Index of a span inside [`Trace::spans`].
pub type SpanIdx = u32;

/// One normalized trace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Trace {
    /// Native id where the source has one, else a stable hash of file path and position.
    pub id: String,
    pub format: Format,
    /// Version of the source format where known: `gen-ai/1.42.0`, `ATIF-v1.7`, `pi-session/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The first user input or question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_output: Option<String>,
    #[serde(default)]
    pub status: Status,
    /// UTC, nanoseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ns: Option<i64>,
    /// Distinct agents seen, in order of first appearance.
    #[serde(default)]
    pub agents: Vec<AgentInfo>,
    /// Arena of spans, sorted by `(start_ns, seq)`; unknown start times keep source order.
    #[serde(default)]
    pub spans: Vec<Span>,
    /// Roll-up over `Llm` spans whose usage is `SelfOnly`.
    #[serde(default)]
    pub usage: Usage,
    /// Roll-up; `Reported` only when every priced span reported its own cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// Recoverable problems met while reading this trace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Every source format pisama reads, plus its own canonical JSON. Serialized as its
/// [`Format::name`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// OTLP/JSON, with GenAI, OpenLLMetry or OpenInference attribute keys.
    Otlp,
    /// Phoenix / OpenInference span JSON or the Python console exporter (`context.trace_id`).
    OpenInferenceSpans,
    /// TRAIL dataset layout: `trace_id` + nested `spans[].child_spans`.
    Trail,
    LangSmith,
    LangGraph,
    N8n,
    DifyNodes,
    DifyMessages,
    OpenClawSession,
    OpenClawTrajectory,
    ClaudeCode,
    Codex,
    Atif,
    /// The incumbent's `{"spans": [...]}` JSON and span-per-line JSONL.
    PisamaSpans,
    AutoGenAgentChat,
    Ag2RuntimeLog,
    WhoWhen,
    Mad,
    TauBench,
    GenericChat,
    /// pisama's own canonical JSON, as written by `pisama convert --to pisama`.
    #[default]
    PisamaCanonical,
}

impl Format {
    /// All formats, in the order `pisama inspect` lists them.
    pub const ALL: [Format; 21] = [
        Format::Otlp,
        Format::OpenInferenceSpans,
        Format::Trail,
        Format::LangSmith,
        Format::LangGraph,
        Format::N8n,
        Format::DifyNodes,
        Format::DifyMessages,
        Format::OpenClawSession,
        Format::OpenClawTrajectory,
        Format::ClaudeCode,
        Format::Codex,
        Format::Atif,
        Format::PisamaSpans,
        Format::AutoGenAgentChat,
        Format::Ag2RuntimeLog,
        Format::WhoWhen,
        Format::Mad,
        Format::TauBench,
        Format::GenericChat,
        Format::PisamaCanonical,
    ];

    /// The stable name used on the command line (`--input-format`) and in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Format::Otlp => "otlp",
            Format::OpenInferenceSpans => "openinference-spans",
            Format::Trail => "trail",
            Format::LangSmith => "langsmith",
            Format::LangGraph => "langgraph",
            Format::N8n => "n8n",
            Format::DifyNodes => "dify-nodes",
            Format::DifyMessages => "dify-messages",
            Format::OpenClawSession => "openclaw-session",
            Format::OpenClawTrajectory => "openclaw-trajectory",
            Format::ClaudeCode => "claude-code",
            Format::Codex => "codex",
            Format::Atif => "atif",
            Format::PisamaSpans => "pisama-spans",
            Format::AutoGenAgentChat => "autogen-agentchat",
            Format::Ag2RuntimeLog => "ag2-runtime-log",
            Format::WhoWhen => "who-and-when",
            Format::Mad => "mad",
            Format::TauBench => "tau-bench",
            Format::GenericChat => "generic-chat",
            Format::PisamaCanonical => "pisama",
        }
    }

    /// A one-line description for `--help` and error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Otlp => "OTLP/JSON traces (OpenTelemetry GenAI, OpenLLMetry, OpenInference)",
            Format::OpenInferenceSpans => "Phoenix/OpenInference span JSON, OTel console exporter",
            Format::Trail => "TRAIL benchmark traces (OpenInference, nested child_spans)",
            Format::LangSmith => "LangSmith runs (nested run tree, flat list or ingest batch)",
            Format::LangGraph => "LangGraph debug stream or LangChain astream_events",
            Format::N8n => "n8n workflow executions",
            Format::DifyNodes => "Dify workflow node executions",
            Format::DifyMessages => "Dify chat/agent messages with agent_thoughts",
            Format::OpenClawSession => "OpenClaw / pi session transcripts (JSONL tree)",
            Format::OpenClawTrajectory => "OpenClaw runtime trajectory sidecar",
            Format::ClaudeCode => "Claude Code session JSONL with sub-agent side chains",
            Format::Codex => "Codex CLI rollouts",
            Format::Atif => "ATIF v1.x agent trajectories",
            Format::PisamaSpans => "pisama (Python) {\"spans\": [...]} JSON and span JSONL",
            Format::AutoGenAgentChat => "AutoGen AgentChat TaskResult / message dumps",
            Format::Ag2RuntimeLog => "AG2 / AutoGen 0.2 runtime.log",
            Format::WhoWhen => "Who&When failure-attribution cases",
            Format::Mad => "MAD / MAST dataset records",
            Format::TauBench => "tau-bench trajectories",
            Format::GenericChat => "generic chat messages ({messages|conversation|history: [...]})",
            Format::PisamaCanonical => "pisama canonical trace JSON (pisama convert --to pisama)",
        }
    }

    /// Parses a name as accepted by `--input-format`.
    pub fn from_name(name: &str) -> Option<Format> {
        let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
        Format::ALL.into_iter().find(|f| f.name() == wanted)
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Format::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown format {name:?}")))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_agent: Option<String>,
}

/// One unit of work: a model call, a tool execution, an agent's turn, a message.
///
/// The large optional parts (payloads, model call, tool call, usage, error, handoff) are boxed:
/// most spans have only a few of them, and a 100,000-span trace is a third of the size this way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Native id, or a synthesized one such as `L12` (line 12) or `L12.3` (its fourth block).
    pub id: String,
    /// Containment only: the span this one runs inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SpanIdx>,
    /// Order within the source (tie-breaker for equal or missing start times).
    pub seq: u32,
    pub kind: SpanKind,
    pub name: String,
    /// Effective agent: its own name for `Agent` spans, else the speaker or nearest agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// 0-based position in the source's own message or step list (Who&When: index into
    /// `history`), so attributions can be checked against labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ns: Option<i64>,
    /// True when `end_ns` was taken from the next event rather than reported.
    #[serde(default, skip_serializing_if = "is_false")]
    pub time_inferred: bool,
    #[serde(default)]
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<ErrorInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Box<Payload>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Box<Payload>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<Box<LlmCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Box<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Box<Handoff>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Box<Usage>>,
    #[serde(default, skip_serializing_if = "UsageScope::is_self_only")]
    pub usage_scope: UsageScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<SpanEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Every unmapped source field, keys flattened with `.`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    #[serde(default)]
    pub source: SourceRef,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Agent,
    Llm,
    Tool,
    Step,
    Handoff,
    Retrieval,
    Embedding,
    Human,
    System,
    #[default]
    Other,
}

impl SpanKind {
    pub const ALL: [SpanKind; 10] = [
        SpanKind::Agent,
        SpanKind::Llm,
        SpanKind::Tool,
        SpanKind::Step,
        SpanKind::Handoff,
        SpanKind::Retrieval,
        SpanKind::Embedding,
        SpanKind::Human,
        SpanKind::System,
        SpanKind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Agent => "agent",
            SpanKind::Llm => "llm",
            SpanKind::Tool => "tool",
            SpanKind::Step => "step",
            SpanKind::Handoff => "handoff",
            SpanKind::Retrieval => "retrieval",
            SpanKind::Embedding => "embedding",
            SpanKind::Human => "human",
            SpanKind::System => "system",
            SpanKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Unset,
    Ok,
    Error,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The workflow caught this error (Dify `exception`, n8n `continueOnFail`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub handled: bool,
}

/// Input or output of a span: always a text rendering, plus the JSON when the source had it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
}

impl Payload {
    pub fn text(text: impl Into<String>) -> Self {
        Payload {
            text: text.into(),
            json: None,
            mime: None,
        }
    }

    /// A payload from a JSON value: strings are kept as text only; anything else keeps the
    /// JSON and a compact rendering as text.
    pub fn from_json(value: Value) -> Self {
        match value {
            Value::String(s) => Payload::text(s),
            other => Payload {
                text: other.to_string(),
                json: Some(other),
                mime: None,
            },
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_model: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Value>,
}

impl LlmCall {
    /// The model that answered, else the one requested.
    pub fn model(&self) -> Option<&str> {
        self.response_model
            .as_deref()
            .or(self.request_model.as_deref())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub arguments: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_error: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    pub mode: HandoffMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffMode {
    /// Control passes to the other agent for good.
    #[default]
    Transfer,
    /// The other agent works for this one and returns.
    Delegate,
    /// Control comes back from a delegate.
    Return,
    /// A message to another agent without passing control.
    Message,
}

/// Token usage. `input` counts *all* prompt tokens, cached included; `output` includes reasoning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<u64>,
    /// Subset of `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<u64>,
    /// Subset of `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<u64>,
    /// Subset of `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Counts came from a tokenizer estimate, not the provider.
    #[serde(default, skip_serializing_if = "is_false")]
    pub estimated: bool,
}

impl Usage {
    pub fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none() && self.total.is_none()
    }

    /// `total` if reported, else `input + output`.
    pub fn total_tokens(&self) -> Option<u64> {
        self.total.or_else(|| match (self.input, self.output) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0).saturating_add(o.unwrap_or(0))),
        })
    }

    /// Adds another usage into this one (for roll-ups). Saturating: counts come from
    /// files, and a hostile one must not overflow.
    pub fn add(&mut self, other: &Usage) {
        fn sum(a: &mut Option<u64>, b: Option<u64>) {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0).saturating_add(b));
            }
        }
        sum(&mut self.input, other.input);
        sum(&mut self.output, other.output);
        sum(&mut self.cache_read, other.cache_read);
        sum(&mut self.cache_write, other.cache_write);
        sum(&mut self.reasoning, other.reasoning);
        sum(&mut self.total, other.total_tokens());
        self.estimated |= other.estimated;
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageScope {
    /// The span's own call.
    #[default]
    SelfOnly,
    /// An aggregate over the span's subtree: kept for cross-checks, never summed.
    Subtree,
}

impl UsageScope {
    #[allow(clippy::trivially_copy_pass_by_ref)]
    fn is_self_only(&self) -> bool {
        *self == UsageScope::SelfOnly
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub amount: f64,
    pub currency: String,
    pub source: CostSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    Reported,
    Estimated,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub kind: LinkKind,
    /// The native id of the other span (or message, or node).
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Output of the target flows into this span (n8n `source`, Dify predecessor).
    DataFlow,
    /// Conversation order (Claude Code `parentUuid`, pi `parentId`).
    FollowsFrom,
    /// This span runs the target sub-trajectory.
    SubTrajectory,
    /// This span carries the result of the target call.
    CallResult,
}

/// Where a span came from, for evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line number for line-oriented sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// JSON Pointer (RFC 6901) into the source document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// A chat message, as found in LLM inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            name: None,
            parts: vec![Part::Text { text: text.into() }],
        }
    }

    /// Concatenated text parts.
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if let Part::Text { text } = part {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(text);
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
    #[default]
    Other,
}

impl Role {
    /// Maps the role names different sources use.
    pub fn parse(role: &str) -> Role {
        match role.to_ascii_lowercase().as_str() {
            "system" | "developer" => Role::System,
            "user" | "human" => Role::User,
            "assistant" | "ai" | "model" | "agent" | "bot" => Role::Assistant,
            "tool" | "function" | "toolresult" | "tool_result" => Role::Tool,
            _ => Role::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    Reasoning {
        text: String,
    },
    ToolCall {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        name: String,
        #[serde(default)]
        arguments: Value,
    },
    ToolResult {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default)]
        content: Value,
        #[serde(default, skip_serializing_if = "is_false")]
        is_error: bool,
    },
    Media {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uri: Option<String>,
    },
}

/// Ground truth that came with a dataset case. Never given to detectors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Which dataset field this came from, e.g. `who-and-when`, `tau-bench`, `mast`, `trail`.
    pub source: String,
    /// What the label says: `mistake`, `reward`, `MAST FM-2.3 ...`, a TRAIL category.
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A numeric answer (tau-bench reward) or annotator agreement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// The labels that came with one trace.
pub type Labels = Vec<Label>;

impl Trace {
    /// Spans of one kind.
    pub fn spans_of(&self, kind: SpanKind) -> impl Iterator<Item = &Span> {
        self.spans.iter().filter(move |s| s.kind == kind)
    }

    /// Wall duration in nanoseconds, when both ends are known.
    pub fn duration_ns(&self) -> Option<i64> {
        match (self.start_ns, self.end_ns) {
            (Some(s), Some(e)) if e >= s => Some(e - s),
            _ => None,
        }
    }
}
