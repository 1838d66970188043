//! MAD, the dataset of the MAST failure taxonomy (`formats.md` §10.2): records with
//! `mas_name`, a raw framework log in `trace` (a string in the human-labelled file,
//! `{key, index, trajectory}` in the full dataset) and failure annotations.
//!
//! The log is plain framework output, so each `mas_name` has its own splitter that cuts it into
//! messages (`ChatDev`, `MetaGPT`, Magentic-One, `OpenManus`, AG2, `AppWorld`, `HyperAgent`). Each
//! message is one span whose `step` is its index in the parsed message list: `Step` for an
//! agent's message (agent = speaker), `Human` for the task, `System` for framework
//! bookkeeping, `Tool` where the log clearly delimits tool or code-execution output, `Llm`
//! where it logs one model call's token usage, and `Handoff` where it logs a delegation. When no
//! splitter finds structure, the whole text is one `Step` with a warning.
//!
//! Some human-labelled records wrap the log in JSON that also holds answers (`other_data`,
//! annotator `note`s, the `Evaluation` of `AppWorld`). Those go to labels, never into the trace, as do
//! the annotations:
//! - `mast_annotation` (`{"1.1": 0|1, ...}`): each code marked 1 is a label named with the
//!   final taxonomy ([`MAST_MODES`]).
//! - `annotations` (per-annotator booleans): the human file uses three taxonomy versions, so a
//!   label keeps the annotation's own code and name, with the fraction of annotators who
//!   marked it as its value.
//!
//! The human file has records whose `mas_name` is the benchmark (`GAIA`) and whose
//! `benchmark_name` is the framework; the framework is taken from whichever field names one.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::generic_chat::looks_like_error;
use super::{AdapterError, AdapterResult, Input, Parsed, expect_json};
use crate::builder::TraceBuilder;
use crate::model::{
    Cost, CostSource, ErrorInfo, Format, Handoff, HandoffMode, Label, Payload, Span, SpanKind,
    Status, ToolCall, Usage,
};
use crate::util::{as_f64, get_str, text_of, truncate};

/// The final MAST taxonomy (Cemri et al. 2025, "Why Do Multi-Agent LLM Systems Fail?").
pub(crate) const MAST_MODES: [(&str, &str); 14] = [
    ("1.1", "Disobey Task Specification"),
    ("1.2", "Disobey Role Specification"),
    ("1.3", "Step Repetition"),
    ("1.4", "Loss of Conversation History"),
    ("1.5", "Unaware of Termination Conditions"),
    ("2.1", "Conversation Reset"),
    ("2.2", "Fail to Ask for Clarification"),
    ("2.3", "Task Derailment"),
    ("2.4", "Information Withholding"),
    ("2.5", "Ignored Other Agent's Input"),
    ("2.6", "Reasoning-Action Mismatch"),
    ("3.1", "Premature Termination"),
    ("3.2", "No or Incomplete Verification"),
    ("3.3", "Incorrect Verification"),
];

/// Frameworks with a splitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framework {
    ChatDev,
    MetaGpt,
    Magentic,
    OpenManus,
    Ag2,
    AppWorld,
    HyperAgent,
}

impl Framework {
    fn from_name(name: &str) -> Option<Framework> {
        let n = name.to_ascii_lowercase().replace(['-', '_', ' '], "");
        Some(match n.as_str() {
            "chatdev" => Framework::ChatDev,
            "metagpt" => Framework::MetaGpt,
            "magentic" | "magenticone" => Framework::Magentic,
            "openmanus" | "manus" => Framework::OpenManus,
            "ag2" | "autogen" => Framework::Ag2,
            "appworld" => Framework::AppWorld,
            "hyperagent" => Framework::HyperAgent,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Framework::ChatDev => "ChatDev",
            Framework::MetaGpt => "MetaGPT",
            Framework::Magentic => "Magentic",
            Framework::OpenManus => "OpenManus",
            Framework::Ag2 => "AG2",
            Framework::AppWorld => "AppWorld",
            Framework::HyperAgent => "HyperAgent",
        }
    }

    /// Guesses the framework from the log's own markers (for unknown `mas_name`s).
    fn sniff(text: &str) -> Option<Framework> {
        if RE_CHATDEV_HEADER.as_ref().is_some_and(|r| r.is_match(text)) {
            Some(Framework::ChatDev)
        } else if text.contains("---------- ") && text.contains(" ----------") {
            Some(Framework::Magentic)
        } else if text.contains("Response from Supervisor Agent") {
            Some(Framework::AppWorld)
        } else if text.contains("Planner's Response:") {
            Some(Framework::HyperAgent)
        } else if text.contains("app.agent") {
            Some(Framework::OpenManus)
        } else if text.contains("NEW MESSAGES:") || text.contains("metagpt.") {
            Some(Framework::MetaGpt)
        } else if text.contains("trajectory:") || text.contains("\"trajectory\"") {
            Some(Framework::Ag2)
        } else {
            None
        }
    }
}

/// One message cut from the log.
#[derive(Debug, Clone, Default)]
struct Msg {
    kind: MsgKind,
    agent: Option<String>,
    name: String,
    text: String,
    time: Option<i64>,
    /// 1-based line in the trajectory text where the message starts.
    line: u32,
    tool: Option<(String, bool)>,
    usage: Option<Usage>,
    cost: Option<f64>,
    handoff: Option<Handoff>,
    attrs: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum MsgKind {
    #[default]
    Step,
    Human,
    System,
    Tool,
    Llm,
    Handoff,
}

/// What the record holds besides the log text.
#[derive(Default)]
struct Extracted {
    task: Option<String>,
    labels: Vec<Label>,
    metadata: Map<String, Value>,
    cost: Option<f64>,
    /// AG2 JSON trajectories are already messages.
    ag2_messages: Option<Vec<Value>>,
}

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let doc = expect_json(input, Format::Mad)?;
    let record = doc
        .as_object()
        .ok_or_else(|| AdapterError::new("expected a MAD record object"))?;
    let mas_name = get_str(doc, &["mas_name"]).unwrap_or_default();
    let benchmark = get_str(doc, &["benchmark_name"]).unwrap_or_default();
    let (raw, pointer) = match record.get("trace") {
        Some(Value::String(s)) => (s.clone(), "/trace".to_owned()),
        Some(Value::Object(t)) => match t.get("trajectory") {
            Some(Value::String(s)) => (s.clone(), "/trace/trajectory".to_owned()),
            Some(Value::Array(lines)) => (
                lines
                    .iter()
                    .filter_map(text_of)
                    .collect::<Vec<_>>()
                    .join("\n"),
                "/trace/trajectory".to_owned(),
            ),
            Some(other) => (other.to_string(), "/trace/trajectory".to_owned()),
            None => {
                return Err(AdapterError::new(
                    "expected `trace.trajectory` to hold the raw log",
                ));
            }
        },
        _ => {
            return Err(AdapterError::new(
                "expected `trace` to be the raw log string or {key, index, trajectory}",
            ));
        }
    };
    let id = trace_id(doc).unwrap_or_else(|| input.synth_id("mad"));
    let mut b = TraceBuilder::new(Format::Mad, id);
    let human_file = record.contains_key("annotations");

    // The framework, and the log text with any JSON wrapper taken off.
    let mut framework = Framework::from_name(mas_name);
    if framework.is_none()
        && let Some(f) = Framework::from_name(benchmark)
    {
        {
            b.warn(format!(
                "mas_name `{mas_name}` is not a multi-agent framework but benchmark_name `{benchmark}` is; the two fields are read swapped"
            ));
            framework = Some(f);
        }
    }
    let mut extracted = Extracted::default();
    let text = unwrap_json_log(&raw, &mut extracted);
    if framework.is_none() {
        framework = Framework::sniff(&text);
        match framework {
            Some(f) => b.warn(format!(
                "unknown mas_name `{mas_name}`; the log looks like {}",
                f.name()
            )),
            None => b.warn(format!(
                "unknown mas_name `{mas_name}` and no known log markers"
            )),
        }
    }
    {
        let t = b.trace_mut();
        t.format_version = Some(format!(
            "{}/{}",
            if human_file { "mad-human" } else { "mad" },
            framework.map_or("unknown", Framework::name)
        ));
        for key in ["mas_name", "benchmark_name", "llm_name", "trace_id"] {
            if let Some(v) = record.get(key).filter(|v| !v.is_null()) {
                t.metadata.insert(key.to_owned(), v.clone());
            }
        }
        if let Some(Value::Object(tr)) = record.get("trace") {
            for key in ["key", "index"] {
                if let Some(v) = tr.get(key) {
                    t.metadata.insert(format!("trace.{key}"), v.clone());
                }
            }
        }
        if let Some(f) = framework {
            t.metadata
                .insert("framework".to_owned(), Value::String(f.name().to_owned()));
        }
        for (k, v) in std::mem::take(&mut extracted.metadata) {
            t.metadata.insert(k, v);
        }
        t.task.clone_from(&extracted.task);
        if let Some(amount) = extracted.cost {
            t.cost = Some(Cost {
                amount,
                currency: "USD".to_owned(),
                source: CostSource::Reported,
            });
        }
    }

    let mut text = text;
    let mut labels = std::mem::take(&mut extracted.labels);
    let mut messages = match framework {
        Some(Framework::ChatDev) => split_chatdev(&text, &mut b),
        Some(Framework::MetaGpt) => split_metagpt(&text),
        Some(Framework::Magentic) => split_magentic(&text, &mut b),
        Some(Framework::OpenManus) => split_openmanus(&text, &mut b),
        Some(Framework::Ag2) => match extracted.ag2_messages.take() {
            Some(items) => ag2_json_messages(&items),
            None => split_ag2_yaml(&text),
        },
        Some(Framework::AppWorld) => {
            let (kept, evaluation) = split_off_evaluation(&text);
            if let Some(eval) = evaluation {
                labels.extend(evaluation_labels(&eval));
                text = kept;
            }
            split_appworld(&text)
        }
        Some(Framework::HyperAgent) => split_hyperagent(&text),
        None => Vec::new(),
    };
    if messages.is_empty() {
        if let Some(f) = framework {
            b.warn(format!(
                "no {} message markers found; the whole log is one step",
                f.name()
            ));
        }
        messages.push(Msg {
            text: text.clone(),
            name: "log".to_owned(),
            line: 1,
            ..Msg::default()
        });
    }
    if b.trace_mut().task.is_none() {
        b.trace_mut().task = messages
            .iter()
            .find(|m| m.kind == MsgKind::Human)
            .map(|m| m.text.clone());
    }
    push_spans(input, &mut b, &messages, &pointer);
    labels.extend(annotation_labels(record, &mut b));
    Ok(vec![Parsed {
        trace: b.finish(),
        labels,
    }])
}

fn trace_id(doc: &Value) -> Option<String> {
    let mas = get_str(doc, &["mas_name"]).unwrap_or("mad");
    let tid = doc
        .get("trace_id")
        .filter(|v| !v.is_null())
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let key = get_str(doc, &["trace", "key"]);
    match (tid, key) {
        (Some(t), _) => Some(format!("{mas}-{t}")),
        (None, Some(k)) => Some(format!("{mas}-{k}")),
        (None, None) => None,
    }
}

/// Human-labelled records of AG2, `HyperAgent` and `MetaGPT` hold JSON: the log text, the task,
/// and dataset answers (`other_data`, annotator `note`). Returns the log text.
fn unwrap_json_log(raw: &str, out: &mut Extracted) -> String {
    let trimmed = raw.trim_start();
    if !trimmed.starts_with('{') {
        return raw.to_owned();
    }
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(trimmed) else {
        return raw.to_owned();
    };
    out.task = o
        .get("problem_statement")
        .or_else(|| o.get("prompt"))
        .or_else(|| o.get("question"))
        .and_then(text_of)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    for key in ["instance_id", "run_id", "timestamp", "log_file"] {
        if let Some(v) = o.get(key).filter(|v| !v.is_null()) {
            out.metadata.insert(key.to_owned(), v.clone());
        }
    }
    out.cost = o.get("cost").and_then(as_f64);
    if let Some(Value::Object(other)) = o.get("other_data") {
        for (k, v) in other {
            out.labels
                .push(value_label("mad", &format!("other_data.{k}"), v));
        }
    }
    if let Some(note) = o.get("note") {
        if let Some(t) = note
            .get("text")
            .and_then(text_of)
            .filter(|t| !t.trim().is_empty())
        {
            out.labels.push(Label {
                source: "mad-note".to_owned(),
                category: "annotator note".to_owned(),
                text: Some(t),
                ..Label::default()
            });
        }
        if let Some(Value::Object(options)) = note.get("options") {
            for (option, answer) in options {
                if answer
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case("yes"))
                    || answer.as_bool() == Some(true)
                {
                    out.labels.push(Label {
                        source: "mad-note".to_owned(),
                        category: option.clone(),
                        value: Some(1.0),
                        ..Label::default()
                    });
                }
            }
        }
    }
    match o.get("trajectory").or_else(|| o.get("content")) {
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::Array(items)) => {
            out.ag2_messages = Some(items.clone());
            String::new()
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => raw.to_owned(),
    }
}

fn value_label(source: &str, category: &str, v: &Value) -> Label {
    let mut label = Label {
        source: source.to_owned(),
        category: category.to_owned(),
        ..Label::default()
    };
    match v {
        Value::Bool(b) => label.value = Some(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => label.value = n.as_f64(),
        other => label.text = text_of(other),
    }
    label
}

fn annotation_labels(record: &Map<String, Value>, b: &mut TraceBuilder) -> Vec<Label> {
    let mut labels = Vec::new();
    if let Some(ann) = record.get("mast_annotation") {
        match ann {
            Value::Object(codes) => {
                for (code, v) in codes {
                    let marked = match v {
                        Value::Bool(x) => *x,
                        Value::Number(n) => n.as_f64().is_some_and(|f| f > 0.0),
                        Value::String(s) => matches!(s.trim(), "1" | "true" | "yes"),
                        _ => false,
                    };
                    if !marked {
                        continue;
                    }
                    let code = code.trim();
                    let category =
                        if let Some((_, name)) = MAST_MODES.iter().find(|(c, _)| *c == code) {
                            format!("MAST FM-{code} {name}")
                        } else {
                            b.warn(format!(
                            "mast_annotation code `{code}` is not in the MAST taxonomy; kept as is"
                        ));
                            format!("MAST FM-{code}")
                        };
                    labels.push(Label {
                        source: "mast".to_owned(),
                        category,
                        value: Some(1.0),
                        ..Label::default()
                    });
                }
            }
            _ => b.warn("mast_annotation is not an object of codes; ignored"),
        }
    }
    if let Some(list) = record.get("annotations") {
        let round = record
            .get("round")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(items) = list.as_array() else {
            b.warn("annotations is not a list; ignored");
            return labels;
        };
        for item in items {
            let Some(mode) =
                get_str(item, &["failure mode"]).or_else(|| get_str(item, &["failure_mode"]))
            else {
                continue;
            };
            let votes: Vec<bool> = item
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| k.starts_with("annotator"))
                        .filter_map(|(_, v)| v.as_bool())
                        .collect()
                })
                .unwrap_or_default();
            let yes = votes.iter().filter(|v| **v).count();
            if yes == 0 {
                continue;
            }
            let mut lines = mode.trim().splitn(2, '\n');
            let head = lines.next().unwrap_or_default().trim();
            let definition = lines.next().map(str::trim).filter(|d| !d.is_empty());
            let text = match (&round, definition) {
                (Some(r), Some(d)) => Some(format!("{r}: {d}")),
                (Some(r), None) => Some(r.clone()),
                (None, d) => d.map(str::to_owned),
            };
            labels.push(Label {
                source: "mast".to_owned(),
                category: format!("MAST {head}"),
                text,
                value: Some(yes as f64 / votes.len() as f64),
                ..Label::default()
            });
        }
    }
    labels
}

fn push_spans(input: &Input, b: &mut TraceBuilder, messages: &[Msg], pointer: &str) {
    for (i, m) in messages.iter().enumerate() {
        let next_time = messages.iter().skip(i + 1).find_map(|n| n.time);
        let kind = match m.kind {
            MsgKind::Step => SpanKind::Step,
            MsgKind::Human => SpanKind::Human,
            MsgKind::System => SpanKind::System,
            MsgKind::Tool => SpanKind::Tool,
            MsgKind::Llm => SpanKind::Llm,
            MsgKind::Handoff => SpanKind::Handoff,
        };
        let mut span = Span {
            id: format!("m{i}"),
            kind,
            name: if m.name.is_empty() {
                m.agent.clone().unwrap_or_else(|| "message".to_owned())
            } else {
                m.name.clone()
            },
            agent: m.agent.clone(),
            step: Some(i as u32),
            start_ns: m.time,
            end_ns: if kind == SpanKind::Handoff {
                m.time
            } else {
                next_time.filter(|n| m.time.is_some_and(|t| *n >= t))
            },
            usage: (m.usage.clone()).map(Box::new),
            cost: m.cost.map(|amount| Cost {
                amount,
                currency: "USD".to_owned(),
                source: CostSource::Reported,
            }),
            handoff: (m.handoff.clone()).map(Box::new),
            source: input.at(pointer.to_owned()),
            ..Span::default()
        };
        span.time_inferred = kind != SpanKind::Handoff && span.end_ns.is_some();
        span.attributes
            .insert("text_line".to_owned(), Value::from(m.line));
        for (k, v) in &m.attrs {
            span.attributes.insert(k.clone(), v.clone());
        }
        let text = m.text.trim().to_owned();
        match kind {
            SpanKind::Human | SpanKind::System | SpanKind::Handoff => {
                span.input = Some(Box::new(Payload::text(text)));
            }
            _ => {
                span.output = ((!text.is_empty() || kind == SpanKind::Step)
                    .then(|| Payload::text(text.clone())))
                .map(Box::new);
            }
        }
        if kind == SpanKind::Llm {
            span.llm = Some(Box::new(crate::model::LlmCall::default()));
        }
        if let Some((name, failed)) = &m.tool {
            span.tool = Some(Box::new(ToolCall {
                name: name.clone(),
                result: Some(Value::String(m.text.trim().to_owned())),
                is_error: *failed,
                ..ToolCall::default()
            }));
            span.status = if *failed { Status::Error } else { Status::Ok };
            if *failed {
                span.error = Some(Box::new(ErrorInfo {
                    message: error_line(&m.text),
                    ..ErrorInfo::default()
                }));
            }
        }
        b.push(span);
    }
}

/// The line that best names a failure in tool output.
fn error_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.contains("Error") || l.contains("error") || l.contains("exitcode"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or_default();
    truncate(line, 300)
}

/// Code or tool output that reports a failure.
fn output_failed(text: &str) -> bool {
    let t = text.trim_start();
    looks_like_error(t)
        || t.contains("Traceback (most recent call last)")
        || t.contains("Execution failed")
        || t.contains("'success': False")
        || RE_EXITCODE
            .as_ref()
            .and_then(|r| r.captures(t))
            .and_then(|c| c.get(1))
            .is_some_and(|m| m.as_str() != "0")
}

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static RE_EXITCODE: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"exitcode: (-?\d+)"));

/// Line numbers of byte offsets, for `text_line`.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        LineIndex(text.match_indices('\n').map(|(i, _)| i).collect())
    }

    fn line_of(&self, offset: usize) -> u32 {
        (self.0.partition_point(|&nl| nl < offset) + 1) as u32
    }
}

// ---- ChatDev ---------------------------------------------------------------------------

static RE_CHATDEV_HEADER: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?m)^\[(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) (\w+)\] ?(.*)$"));
static RE_CHATDEV_TURN: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^(.+?): \*\*(.+?)<->(.+?) on : (\w+), turn (\d+)\*\*"));
static RE_CHATDEV_SPEAKER: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^([A-Za-z][A-Za-z ]{0,40}): (.*)$"));
static RE_CHATDEV_BRACKET: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^(?:(\w+): )?\*\*\[([^\]]+)\]\*\*"));
static RE_CHATDEV_TASK: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?s)\*\*task_prompt\*\*: (.*?)\n\n\*\*"));
static RE_CHATDEV_ASSISTANT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"\| \*\*assistant_role_name\*\* \| ([^|]+?) \|"));
static RE_KV_NUMBER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(prompt_tokens|completion_tokens|total_tokens|cost)\W{0,6}[:=]\s*\$?([0-9.]+)")
});

/// `ChatDev` logs `[YYYY-DD-MM HH:MM:SS LEVEL] Speaker: ...` (its date format puts the day
/// before the month); a middle field above 12 cannot be a month, so either order is read.
fn chatdev_time(c: &regex::Captures<'_>) -> Option<i64> {
    let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
    let (y, a, b) = (num(1)?, num(2)?, num(3)?);
    let (month, day) = if b <= 12 && a > 12 {
        (b, a)
    } else if a <= 12 && b > 12 {
        (a, b)
    } else {
        (b, a)
    };
    let iso = format!(
        "{y:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        num(4)?,
        num(5)?,
        num(6)?
    );
    crate::util::parse_time(&iso)
}

fn split_chatdev(text: &str, b: &mut TraceBuilder) -> Vec<Msg> {
    let Some(header) = RE_CHATDEV_HEADER.as_ref() else {
        return Vec::new();
    };
    let lines = LineIndex::new(text);
    let heads: Vec<regex::Captures<'_>> = header.captures_iter(text).collect();
    let mut out: Vec<Msg> = Vec::new();
    let mut phase_assistant: Option<String> = None;
    let mut last_speaker: Option<String> = None;
    for (k, c) in heads.iter().enumerate() {
        let Some(whole) = c.get(0) else { continue };
        let body_end = heads
            .get(k + 1)
            .and_then(|n| n.get(0))
            .map_or(text.len(), |m| m.start());
        let head = c.get(8).map_or("", |m| m.as_str()).trim();
        let body = text.get(whole.end()..body_end).unwrap_or_default().trim();
        if head.contains("flask app.py did not start") || head.starts_with("HTTP Request:") {
            continue;
        }
        let mut msg = Msg {
            time: chatdev_time(c),
            line: lines.line_of(whole.start()),
            text: body.to_owned(),
            ..Msg::default()
        };
        if let Some(level) = c.get(7).map(|m| m.as_str()).filter(|l| *l != "INFO") {
            msg.attrs
                .insert("level".to_owned(), Value::String(level.to_owned()));
        }
        if let Some(t) = RE_CHATDEV_TURN.as_ref().and_then(|r| r.captures(head)) {
            let speaker = t.get(1).map_or("", |m| m.as_str()).trim().to_owned();
            let (a, bb) = (
                t.get(2).map_or("", |m| m.as_str()),
                t.get(3).map_or("", |m| m.as_str()),
            );
            let other = if a.trim() == speaker { bb } else { a };
            msg.kind = MsgKind::Step;
            msg.agent = Some(speaker.clone());
            msg.name.clone_from(&speaker);
            msg.attrs.insert(
                "phase".to_owned(),
                Value::String(t.get(4).map_or("", |m| m.as_str()).to_owned()),
            );
            msg.attrs.insert(
                "turn".to_owned(),
                t.get(5)
                    .and_then(|m| m.as_str().parse::<u64>().ok())
                    .map_or(Value::Null, Value::from),
            );
            msg.attrs.insert(
                "counterpart".to_owned(),
                Value::String(other.trim().to_owned()),
            );
            last_speaker = Some(speaker);
        } else if let Some(br) = RE_CHATDEV_BRACKET.as_ref().and_then(|r| r.captures(head)) {
            let who = br.get(1).map(|m| m.as_str().to_owned());
            let tag = br.get(2).map_or("", |m| m.as_str()).to_owned();
            match (who.as_deref(), tag.as_str()) {
                (_, "OpenAI_Usage_Info Receive") => {
                    let mut u = Usage::default();
                    for f in RE_KV_NUMBER.iter().flat_map(|r| r.captures_iter(body)) {
                        let value = f.get(2).map_or("", |m| m.as_str());
                        match f.get(1).map(|m| m.as_str()) {
                            Some("prompt_tokens") => u.input = value.parse().ok(),
                            Some("completion_tokens") => u.output = value.parse().ok(),
                            Some("total_tokens") => u.total = value.parse().ok(),
                            Some("cost") => msg.cost = value.parse().ok(),
                            _ => {}
                        }
                    }
                    msg.kind = MsgKind::Llm;
                    "model call".clone_into(&mut msg.name);
                    msg.usage = Some(u).filter(|u| !u.is_empty());
                    msg.text = String::new();
                }
                (_, tag) if tag.starts_with("OpenAI_Usage_Info") => continue,
                (Some("System"), tag) => {
                    msg.kind = MsgKind::System;
                    tag.clone_into(&mut msg.name);
                    if tag == "chatting" {
                        phase_assistant = RE_CHATDEV_ASSISTANT
                            .as_ref()
                            .and_then(|r| r.captures(body))
                            .and_then(|m| m.get(1))
                            .map(|m| m.as_str().trim().to_owned());
                    }
                }
                (Some(speaker), "Start Chat") => {
                    msg.kind = MsgKind::Step;
                    msg.agent = Some(speaker.to_owned());
                    msg.name = format!("{speaker} (start chat)");
                    last_speaker = Some(speaker.to_owned());
                }
                (_, "Seminar Conclusion") => {
                    msg.kind = MsgKind::Step;
                    msg.agent = phase_assistant.clone().or_else(|| last_speaker.clone());
                    "seminar conclusion".clone_into(&mut msg.name);
                }
                (_, "Test Reports") => {
                    msg.kind = MsgKind::Tool;
                    "test_run".clone_into(&mut msg.name);
                    msg.tool = Some((
                        "test_run".to_owned(),
                        output_failed(body) || body.contains("Error"),
                    ));
                }
                (_, "Preprocessing") => {
                    msg.kind = MsgKind::System;
                    "preprocessing".clone_into(&mut msg.name);
                    let task = RE_CHATDEV_TASK
                        .as_ref()
                        .and_then(|r| r.captures(body))
                        .and_then(|m| m.get(1))
                        .map(|m| m.as_str().trim().to_owned());
                    if let Some(task) = task
                        && b.trace_mut().task.is_none()
                    {
                        b.trace_mut().task = Some(task);
                    }
                }
                (_, tag) => {
                    msg.kind = MsgKind::System;
                    tag.clone_into(&mut msg.name);
                    if tag == "Post Info" {
                        for f in RE_CHATDEV_POST.iter().flat_map(|r| r.captures_iter(body)) {
                            if let (Some(k), Some(v)) = (f.get(1), f.get(2)) {
                                let value =
                                    v.as_str().parse::<f64>().map_or(Value::Null, Value::from);
                                b.trace_mut()
                                    .metadata
                                    .insert(format!("chatdev.{}", k.as_str()), value);
                            }
                        }
                    }
                }
            }
        } else if let Some(s) = RE_CHATDEV_SPEAKER.as_ref().and_then(|r| r.captures(head)) {
            let speaker = s.get(1).map_or("", |m| m.as_str()).trim().to_owned();
            msg.kind = MsgKind::Step;
            msg.agent = Some(speaker.clone());
            msg.name.clone_from(&speaker);
            format!("{}\n{body}", s.get(2).map_or("", |m| m.as_str()))
                .trim()
                .clone_into(&mut msg.text);
            last_speaker = Some(speaker);
        } else {
            msg.kind = MsgKind::System;
            msg.name = truncate(head, 60);
            format!("{head}\n{body}").trim().clone_into(&mut msg.text);
        }
        out.push(msg);
    }
    // A usage record precedes the message its call produced: give it that message's speaker.
    for k in 0..out.len() {
        if out[k].kind == MsgKind::Llm {
            let next_agent = out
                .iter()
                .skip(k + 1)
                .find(|m| m.kind == MsgKind::Step)
                .and_then(|m| m.agent.clone());
            out[k].agent = next_agent;
        }
    }
    out
}

static RE_CHATDEV_POST: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"\*\*(\w+)\*\*=\$?(-?[0-9.]+)"));

// ---- MetaGPT ---------------------------------------------------------------------------

static RE_METAGPT_BLOCK: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?m)^\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\] (FROM: (.*)|NEW MESSAGES:)\s*$")
});
static RE_LOGURU: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+) \| (\w+)\s*\| ([^\s:|]+):([^\s:|]+):(\d+) - ")
});
static RE_METAGPT_ACT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^(\w+)\((\w+)\): to do (\w+)"));
static RE_SPEAKER_LINE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?m)\A\s*(\w[\w ]{0,40}):[ \t]*(.*)$"));

fn split_metagpt(text: &str) -> Vec<Msg> {
    let communication = split_metagpt_blocks(text);
    if !communication.is_empty() {
        return communication;
    }
    // `metagpt.roles.role:_act` loguru lines: `Alice(SimpleCoder): to do SimpleWriteCode(...)`.
    loguru_entries(text)
        .into_iter()
        .map(|e| {
            let mut msg = Msg {
                time: e.time,
                line: e.line,
                ..Msg::default()
            };
            let first = e.message.lines().next().unwrap_or_default();
            let rest = e.message.split_once('\n').map_or("", |(_, r)| r);
            if let Some(c) = RE_METAGPT_ACT.as_ref().and_then(|r| r.captures(first)) {
                let role = c.get(2).map_or("", |m| m.as_str()).to_owned();
                msg.agent = Some(role.clone());
                msg.name = role;
                rest.trim().clone_into(&mut msg.text);
                msg.attrs.insert(
                    "alias".to_owned(),
                    Value::String(c.get(1).map_or("", |m| m.as_str()).to_owned()),
                );
                msg.attrs.insert(
                    "action".to_owned(),
                    Value::String(c.get(3).map_or("", |m| m.as_str()).to_owned()),
                );
            } else {
                msg.kind = MsgKind::System;
                msg.name.clone_from(&e.module);
                e.message.trim().clone_into(&mut msg.text);
            }
            msg
        })
        .collect()
}

/// The communication-log form: `[ts] FROM: X TO: ...` / `[ts] NEW MESSAGES:` blocks.
fn split_metagpt_blocks(text: &str) -> Vec<Msg> {
    let Some(block) = RE_METAGPT_BLOCK.as_ref() else {
        return Vec::new();
    };
    let lines = LineIndex::new(text);
    let heads: Vec<regex::Captures<'_>> = block.captures_iter(text).collect();
    let mut out = Vec::new();
    for (k, c) in heads.iter().enumerate() {
        let Some(whole) = c.get(0) else { continue };
        let end = heads
            .get(k + 1)
            .and_then(|n| n.get(0))
            .map_or(text.len(), |m| m.start());
        let body = text.get(whole.end()..end).unwrap_or_default();
        let body = strip_separators(body);
        let time = c.get(1).and_then(|m| crate::util::parse_time(m.as_str()));
        let line = lines.line_of(whole.start());
        if let Some(from) = c.get(3) {
            let sender = from
                .as_str()
                .split(" TO:")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let content = body
                .split_once("CONTENT:")
                .map_or(body.as_str(), |(_, c)| c)
                .trim()
                .to_owned();
            let mut msg = Msg {
                time,
                line,
                text: content,
                ..Msg::default()
            };
            if let Some(action) = body.lines().find_map(|l| l.trim().strip_prefix("ACTION:")) {
                msg.attrs
                    .insert("action".to_owned(), Value::String(action.trim().to_owned()));
            }
            if sender.eq_ignore_ascii_case("human") || sender.eq_ignore_ascii_case("user") {
                msg.kind = MsgKind::Human;
                msg.name = sender;
            } else {
                msg.agent = Some(sender.clone());
                msg.name = sender;
            }
            out.push(msg);
        } else {
            let trimmed = body.trim_start();
            let Some(s) = RE_SPEAKER_LINE.as_ref().and_then(|r| r.captures(trimmed)) else {
                out.push(Msg {
                    time,
                    line,
                    kind: MsgKind::System,
                    name: "new messages".to_owned(),
                    text: body.trim().to_owned(),
                    ..Msg::default()
                });
                continue;
            };
            let speaker = s.get(1).map_or("", |m| m.as_str()).trim().to_owned();
            let first = s.get(2).map_or("", |m| m.as_str());
            let rest = trimmed.split_once('\n').map_or("", |(_, r)| r);
            out.push(Msg {
                time,
                line,
                agent: Some(speaker.clone()),
                name: speaker,
                text: format!("{first}\n{rest}").trim().to_owned(),
                ..Msg::default()
            });
        }
    }
    out
}

/// Drops dashed separator lines and `=== ... ===` banners.
fn strip_separators(body: &str) -> String {
    body.lines()
        .filter(|l| {
            let t = l.trim();
            let dashes = t.len() >= 10 && t.chars().all(|c| c == '-');
            let banner = t.starts_with("===") && t.ends_with("===");
            !dashes && !banner
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One loguru record: `YYYY-mm-dd HH:MM:SS.fff | LEVEL | module:function:line - message`,
/// with continuation lines. Records can start mid-line when output was not newline-terminated.
struct LoguruEntry {
    time: Option<i64>,
    level: String,
    module: String,
    message: String,
    line: u32,
}

fn loguru_entries(text: &str) -> Vec<LoguruEntry> {
    let Some(re_entry) = RE_LOGURU.as_ref() else {
        return Vec::new();
    };
    let lines = LineIndex::new(text);
    let heads: Vec<regex::Captures<'_>> = re_entry.captures_iter(text).collect();
    heads
        .iter()
        .enumerate()
        .filter_map(|(k, c)| {
            let whole = c.get(0)?;
            let end = heads
                .get(k + 1)
                .and_then(|n| n.get(0))
                .map_or(text.len(), |m| m.start());
            Some(LoguruEntry {
                time: c.get(1).and_then(|m| crate::util::parse_time(m.as_str())),
                level: c.get(2).map_or("", |m| m.as_str()).to_owned(),
                module: c.get(3).map_or("", |m| m.as_str()).to_owned(),
                message: text
                    .get(whole.end()..end)
                    .unwrap_or_default()
                    .trim_end()
                    .to_owned(),
                line: lines.line_of(whole.start()),
            })
        })
        .collect()
}

// ---- Magentic-One ------------------------------------------------------------------------

static RE_MAGENTIC: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?m)^---------- (.+?) ----------\s*$"));
static RE_RUNTIME: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"SCENARIO\.PY RUNTIME: (\d+)"));

fn split_magentic(text: &str, b: &mut TraceBuilder) -> Vec<Msg> {
    let Some(header) = RE_MAGENTIC.as_ref() else {
        return Vec::new();
    };
    let start = text.find("SCENARIO.PY STARTING").unwrap_or(0);
    let end = text
        .find("SCENARIO.PY COMPLETE")
        .filter(|e| *e >= start)
        .unwrap_or(text.len());
    let runtime = RE_RUNTIME
        .as_ref()
        .and_then(|r| r.captures(text))
        .and_then(|c| c.get(1))
        .and_then(|m| m.as_str().parse::<u64>().ok());
    if let Some(secs) = runtime {
        b.trace_mut()
            .metadata
            .insert("scenario_runtime_s".to_owned(), Value::from(secs));
    }
    let core = text.get(start..end).unwrap_or_default();
    let lines = LineIndex::new(text);
    let heads: Vec<regex::Captures<'_>> = header.captures_iter(core).collect();
    let mut out = Vec::new();
    for (k, c) in heads.iter().enumerate() {
        let Some(whole) = c.get(0) else { continue };
        let body_end = heads
            .get(k + 1)
            .and_then(|n| n.get(0))
            .map_or(core.len(), |m| m.start());
        let body = core
            .get(whole.end()..body_end)
            .unwrap_or_default()
            .trim()
            .to_owned();
        let speaker = c.get(1).map_or("", |m| m.as_str()).trim().to_owned();
        let mut msg = Msg {
            line: lines.line_of(start + whole.start()),
            text: body,
            ..Msg::default()
        };
        let compact = speaker.to_ascii_lowercase().replace(['_', ' '], "");
        if compact == "user" || compact == "human" {
            msg.kind = MsgKind::Human;
            msg.name = speaker;
        } else if compact == "computerterminal"
            || compact == "executor"
            || compact == "codeexecutor"
        {
            msg.kind = MsgKind::Tool;
            msg.agent = Some(speaker.clone());
            "code_execution".clone_into(&mut msg.name);
            msg.tool = Some(("code_execution".to_owned(), output_failed(&msg.text)));
        } else {
            msg.agent = Some(speaker.clone());
            msg.name = speaker;
        }
        out.push(msg);
    }
    out
}

// ---- OpenManus ---------------------------------------------------------------------------

static RE_MANUS_THOUGHTS: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"(\S+)'s thoughts:\s?"));
static RE_MANUS_USAGE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"Token usage: Input=(\d+), Completion=(\d+)"));
static RE_MANUS_ACTIVATE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"Activating tool: '([^']+)'"));
static RE_MANUS_DONE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"Tool '([^']+)' completed its mission! Result: ?"));
static RE_MANUS_STEP: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"Executing step (\d+)/(\d+)"));
static RE_MANUS_SELECTED: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(\S+) selected (\d+) tools"));

fn split_openmanus(text: &str, b: &mut TraceBuilder) -> Vec<Msg> {
    let entries = loguru_entries(text);
    let mut out: Vec<Msg> = Vec::new();
    let mut current_agent: Option<String> = None;
    let mut pending_args: Option<Value> = None;
    let mut open_tool: Option<usize> = None;
    let mut plan_step: Option<u64> = None;
    for e in &entries {
        let first = e.message.lines().next().unwrap_or_default();
        let rest = e.message.split_once('\n').map_or("", |(_, r)| r).trim();
        let mut msg = Msg {
            time: e.time,
            line: e.line,
            ..Msg::default()
        };
        if let Some(n) = plan_step {
            msg.attrs
                .insert("openmanus.step".to_owned(), Value::from(n));
        }
        if let Some(c) = RE_MANUS_STEP.as_ref().and_then(|r| r.captures(first)) {
            plan_step = c.get(1).and_then(|m| m.as_str().parse().ok());
            continue;
        }
        if let Some(c) = RE_MANUS_USAGE.as_ref().and_then(|r| r.captures(first)) {
            let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u64>().ok());
            msg.kind = MsgKind::Llm;
            "model call".clone_into(&mut msg.name);
            msg.usage = Some(Usage {
                input: n(1),
                output: n(2),
                ..Usage::default()
            });
            // A streamed answer is printed after the usage line.
            rest.clone_into(&mut msg.text);
            out.push(msg);
            continue;
        }
        if let Some(c) = RE_MANUS_THOUGHTS.as_ref().and_then(|r| r.captures(first)) {
            let agent = c.get(1).map_or("", |m| m.as_str()).to_owned();
            let after = c.get(0).map_or(first.len(), |m| m.end());
            msg.agent = Some(agent.clone());
            msg.name = format!("{agent} thoughts");
            format!("{}\n{rest}", first.get(after..).unwrap_or_default())
                .trim()
                .clone_into(&mut msg.text);
            current_agent = Some(agent);
            out.push(msg);
            continue;
        }
        if let Some(c) = RE_MANUS_SELECTED.as_ref().and_then(|r| r.captures(first)) {
            let agent = c.get(1).map(|m| m.as_str().to_owned());
            if let Some(last) = out
                .last_mut()
                .filter(|m| m.kind == MsgKind::Step && m.agent == agent)
            {
                let n = c.get(2).and_then(|m| m.as_str().parse::<u64>().ok());
                last.attrs.insert(
                    "tools_selected".to_owned(),
                    n.map_or(Value::Null, Value::from),
                );
            }
            current_agent = agent.or(current_agent);
            continue;
        }
        if let Some(args) = first.split_once("Tool arguments:").map(|(_, a)| a) {
            let args = format!("{}\n{rest}", args.trim());
            pending_args = Some(
                serde_json::from_str(args.trim()).unwrap_or(Value::String(args.trim().to_owned())),
            );
            continue;
        }
        if first.contains("Tools being prepared:") {
            continue;
        }
        if let Some(c) = RE_MANUS_ACTIVATE.as_ref().and_then(|r| r.captures(first)) {
            let name = c.get(1).map_or("tool", |m| m.as_str()).to_owned();
            msg.kind = MsgKind::Tool;
            msg.agent.clone_from(&current_agent);
            msg.name.clone_from(&name);
            msg.tool = Some((name, false));
            if let Some(args) = pending_args.take() {
                msg.attrs.insert("arguments".to_owned(), args);
            }
            open_tool = Some(out.len());
            out.push(msg);
            continue;
        }
        if let Some(c) = RE_MANUS_DONE.as_ref().and_then(|r| r.captures(first)) {
            let name = c.get(1).map_or("tool", |m| m.as_str()).to_owned();
            let after = c.get(0).map_or(first.len(), |m| m.end());
            let result = format!("{}\n{rest}", first.get(after..).unwrap_or_default())
                .trim()
                .to_owned();
            let observed = result
                .split_once("executed:")
                .map_or(result.as_str(), |(_, r)| r);
            let failed = output_failed(observed);
            let opened = open_tool
                .take()
                .filter(|&i| out.get(i).is_some_and(|m| m.name == name));
            if let Some(m) = opened.and_then(|i| out.get_mut(i)) {
                m.text = result;
                m.tool = Some((name, failed));
            } else {
                msg.kind = MsgKind::Tool;
                msg.agent.clone_from(&current_agent);
                msg.name.clone_from(&name);
                msg.text = result;
                msg.tool = Some((name, failed));
                out.push(msg);
            }
            continue;
        }
        if first.contains("Request processed in") {
            let secs = first
                .split("Request processed in")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse::<f64>().ok());
            if let Some(v) = secs {
                b.trace_mut()
                    .metadata
                    .insert("request_seconds".to_owned(), Value::from(v));
            }
            continue;
        }
        if e.module.starts_with("app.flow") {
            msg.agent = Some("PlanningFlow".to_owned());
            "PlanningFlow".clone_into(&mut msg.name);
            e.message.trim().clone_into(&mut msg.text);
            out.push(msg);
            continue;
        }
        if e.module == "__main__" && first.starts_with("Step ") {
            "run summary".clone_into(&mut msg.name);
            e.message.trim().clone_into(&mut msg.text);
            out.push(msg);
            continue;
        }
        if matches!(e.level.as_str(), "WARNING" | "ERROR" | "CRITICAL")
            && e.module.starts_with("app.tool")
        {
            // Trouble inside the running tool: keep it on the tool.
            if let Some(m) = open_tool.and_then(|i| out.get_mut(i)) {
                let key = format!("log.{}", e.level.to_ascii_lowercase());
                let entry = m
                    .attrs
                    .entry(key)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    items.push(Value::String(truncate(first, 300)));
                }
            }
        }
    }
    // A model call's agent is the agent whose thoughts follow it, else the planner.
    for k in 0..out.len() {
        if out[k].kind == MsgKind::Llm {
            let next = out
                .iter()
                .skip(k + 1)
                .take(3)
                .find(|m| m.kind == MsgKind::Step)
                .and_then(|m| m.agent.clone());
            out[k].agent = Some(next.unwrap_or_else(|| "PlanningFlow".to_owned()));
        }
    }
    out
}

// ---- AG2 ---------------------------------------------------------------------------------

/// The human file's JSON trajectory: `[{content: [lines] | text, role, name}]`.
fn ag2_json_messages(items: &[Value]) -> Vec<Msg> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let o = m.as_object()?;
            let text = match o.get("content") {
                Some(Value::Array(lines)) => lines
                    .iter()
                    .filter_map(text_of)
                    .collect::<Vec<_>>()
                    .join("\n"),
                Some(other) => text_of(other).unwrap_or_default(),
                None => String::new(),
            };
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            let mut msg = Msg {
                line: i as u32 + 1,
                text,
                ..Msg::default()
            };
            if let Some(role) = o.get("role") {
                msg.attrs.insert("role".to_owned(), role.clone());
            }
            msg.name = name.clone().unwrap_or_else(|| "message".to_owned());
            msg.agent = name;
            Some(msg)
        })
        .collect()
}

static RE_YAML_ITEM: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"^(\s*)- content:\s?(.*)$"));
static RE_YAML_KEY: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"^\s*(role|name):\s*(.*)$"));

/// The full dataset's YAML-like dump: `trajectory:` then `- content: ...` items with `role:` and
/// `name:` keys.
fn split_ag2_yaml(text: &str) -> Vec<Msg> {
    let (Some(item_re), Some(key_re)) = (RE_YAML_ITEM.as_ref(), RE_YAML_KEY.as_ref()) else {
        return Vec::new();
    };
    let start_line = text
        .lines()
        .position(|l| l.trim_start().starts_with("trajectory:"))
        .map_or(0, |p| p + 1);
    let mut out: Vec<Msg> = Vec::new();
    let mut item_indent = None;
    for (n, line) in text.lines().enumerate().skip(start_line) {
        if let Some(c) = item_re.captures(line) {
            let indent = c.get(1).map_or(0, |m| m.as_str().len());
            if item_indent.is_none_or(|i| i == indent) {
                item_indent = Some(indent);
                let inline = yaml_scalar(c.get(2).map_or("", |m| m.as_str()));
                out.push(Msg {
                    line: n as u32 + 1,
                    text: inline,
                    ..Msg::default()
                });
                continue;
            }
        }
        let Some(cur) = out.last_mut() else { continue };
        let indent = line.len() - line.trim_start().len();
        if let (Some(c), Some(base)) = (key_re.captures(line), item_indent)
            && indent == base + 2
        {
            let value = yaml_scalar(c.get(2).map_or("", |m| m.as_str()));
            if c.get(1).map(|m| m.as_str()) == Some("name") {
                cur.name.clone_from(&value);
                cur.agent = Some(value);
            } else {
                cur.attrs.insert("role".to_owned(), Value::String(value));
            }
            continue;
        }
        let piece = line.trim();
        let piece = piece.strip_prefix("- ").unwrap_or(piece);
        if !cur.text.is_empty() {
            cur.text.push('\n');
        }
        cur.text.push_str(&yaml_scalar(piece));
    }
    for m in &mut out {
        if m.name.is_empty() {
            "message".clone_into(&mut m.name);
        }
    }
    out
}

/// A YAML scalar with its quotes removed.
fn yaml_scalar(s: &str) -> String {
    let t = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    if t == "|" || t == ">" || t == "|-" || t == ">-" {
        String::new()
    } else {
        t.to_owned()
    }
}

// ---- AppWorld ----------------------------------------------------------------------------

static RE_APPWORLD_HEADER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?m)^[ \t]*(\*{5,} Task .*\*{5,}|Response from (.+?) Agent|Response from (\w+) API|Code Execution Output|Entering (.+?) Agent message loop|Exiting (.+?) Agent message loop|Message to (.+?) Agent|Reply from (.+?) Agent to (.+?))[ \t]*$",
    )
});

/// Separates the trailing `Evaluation` block (the benchmark's verdict) from the log.
fn split_off_evaluation(text: &str) -> (String, Option<String>) {
    let marker = "\nEvaluation\n";
    match text.rfind(marker) {
        Some(at) => (
            text.get(..at).unwrap_or_default().to_owned(),
            text.get(at + marker.len()..).map(str::to_owned),
        ),
        None => (text.to_owned(), None),
    }
}

fn evaluation_labels(eval: &str) -> Vec<Label> {
    let parsed = serde_json::from_str::<Value>(eval.trim()).ok();
    let mut labels = Vec::new();
    if let Some(v) = parsed.as_ref() {
        for key in ["success", "num_tests", "difficulty"] {
            if let Some(x) = v.get(key) {
                labels.push(value_label("appworld", &format!("evaluation.{key}"), x));
            }
        }
    }
    labels.push(Label {
        source: "appworld".to_owned(),
        category: "evaluation".to_owned(),
        text: Some(truncate(eval.trim(), 4000)),
        ..Label::default()
    });
    labels
}

fn split_appworld(text: &str) -> Vec<Msg> {
    let Some(header) = RE_APPWORLD_HEADER.as_ref() else {
        return Vec::new();
    };
    let lines = LineIndex::new(text);
    let heads: Vec<regex::Captures<'_>> = header.captures_iter(text).collect();
    let mut names = AgentNames::default();
    let mut out: Vec<Msg> = Vec::new();
    // Agents whose message loops are open, innermost last.
    let mut loops: Vec<String> = Vec::new();
    let mut last_responder: Option<String> = None;
    let mut previous: Option<&str> = None;
    for (k, c) in heads.iter().enumerate() {
        let Some(whole) = c.get(0) else { continue };
        let end = heads
            .get(k + 1)
            .and_then(|n| n.get(0))
            .map_or(text.len(), |m| m.start());
        let body = dedent(text.get(whole.end()..end).unwrap_or_default());
        let head = c.get(1).map_or("", |m| m.as_str()).trim();
        let mut msg = Msg {
            line: lines.line_of(whole.start()),
            text: body.clone(),
            ..Msg::default()
        };
        let outer = loops
            .iter()
            .rev()
            .nth(1)
            .cloned()
            .unwrap_or_else(|| "Supervisor".to_owned());
        let kind_tag;
        if head.starts_with("*****") {
            msg.kind = MsgKind::Human;
            head.trim_matches('*').trim().clone_into(&mut msg.name);
            kind_tag = "task";
        } else if let Some(agent) = c.get(2) {
            let agent = names.canonical(agent.as_str());
            msg.agent = Some(agent.clone());
            msg.name.clone_from(&agent);
            last_responder = Some(agent);
            kind_tag = "response";
        } else if let Some(api) = c.get(3) {
            let api = api.as_str().to_owned();
            msg.kind = MsgKind::Tool;
            msg.agent.clone_from(&last_responder);
            msg.name.clone_from(&api);
            msg.tool = Some((api, output_failed(&body)));
            kind_tag = "api";
        } else if head == "Code Execution Output" {
            msg.kind = MsgKind::Tool;
            msg.agent.clone_from(&last_responder);
            "code_execution".clone_into(&mut msg.name);
            msg.tool = Some(("code_execution".to_owned(), output_failed(&body)));
            kind_tag = "execution";
        } else if let Some(agent) = c.get(4) {
            let agent = names.canonical(agent.as_str());
            let from = loops
                .last()
                .cloned()
                .or_else(|| last_responder.clone())
                .unwrap_or_else(|| "Supervisor".to_owned());
            msg.kind = MsgKind::Handoff;
            msg.agent = Some(from.clone());
            msg.name = format!("delegate to {agent}");
            msg.handoff = Some(Handoff {
                from: Some(from),
                to: agent.clone(),
                mode: HandoffMode::Delegate,
            });
            loops.push(agent);
            kind_tag = "enter";
        } else if let Some(agent) = c.get(5) {
            let agent = names.canonical(agent.as_str());
            if let Some(pos) = loops.iter().rposition(|a| *a == agent) {
                loops.truncate(pos);
            }
            let to = loops
                .last()
                .cloned()
                .unwrap_or_else(|| "Supervisor".to_owned());
            msg.kind = MsgKind::Handoff;
            msg.agent = Some(agent.clone());
            msg.name = format!("return to {to}");
            msg.handoff = Some(Handoff {
                from: Some(agent),
                to: to.clone(),
                mode: HandoffMode::Return,
            });
            last_responder = Some(to);
            kind_tag = "exit";
        } else if let Some(agent) = c.get(6) {
            let agent = names.canonical(agent.as_str());
            msg.name = format!("message to {agent}");
            if previous == Some("enter") {
                // The delegator's request that opens the loop.
                msg.agent = Some(outer.clone());
            } else if loops.last() == Some(&agent) {
                // Inside a sub-agent's loop, the environment returns the output of its code.
                msg.kind = MsgKind::Tool;
                msg.agent = Some(agent.clone());
                "code_execution".clone_into(&mut msg.name);
                msg.tool = Some(("code_execution".to_owned(), output_failed(&body)));
            } else {
                // The supervisor's observation, repeating the output just logged above it.
                msg.attrs.insert("echo".to_owned(), Value::Bool(true));
            }
            kind_tag = "message";
        } else if let Some(agent) = c.get(7) {
            let agent = names.canonical(agent.as_str());
            msg.agent = Some(agent.clone());
            msg.name = format!("{agent} reply");
            if let Some(to) = c.get(8) {
                msg.attrs.insert(
                    "reply_to".to_owned(),
                    Value::String(to.as_str().trim().to_owned()),
                );
            }
            kind_tag = "reply";
        } else {
            kind_tag = "other";
        }
        previous = Some(kind_tag);
        out.push(msg);
    }
    out
}

/// Keeps one spelling per agent (`AppWorld` logs both `spotify` and `Spotify`).
#[derive(Default)]
struct AgentNames(Vec<String>);

impl AgentNames {
    fn canonical(&mut self, name: &str) -> String {
        let name = name.trim();
        if let Some(known) = self.0.iter().find(|k| k.eq_ignore_ascii_case(name)) {
            return known.clone();
        }
        self.0.push(name.to_owned());
        name.to_owned()
    }
}

/// Removes the common indentation of a block.
fn dedent(body: &str) -> String {
    let indent = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.lines()
        .map(|l| l.get(indent..).unwrap_or_else(|| l.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

// ---- HyperAgent --------------------------------------------------------------------------

static RE_HYPER_HEADER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?m)^(?:HyperAgent\S* - \w+ - )?(Planner's Response|Inner-(\w+)-Assistant's Response|(\w+)->(\w+)|Initialized [^\n]*)(?::[ \t]?|$)",
    )
});
static RE_INTERN: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"(?m)^Intern Name: (.+?)\s*$"));

/// Interns are named `Codebase Navigator`, `Codebase Editor`, `Executor`; their own responses
/// say `Navigator`, `Editor`, `Executor`.
fn intern_agent(name: &str) -> String {
    name.split_whitespace().last().unwrap_or(name).to_owned()
}

fn split_hyperagent(text: &str) -> Vec<Msg> {
    let Some(header) = RE_HYPER_HEADER.as_ref() else {
        return Vec::new();
    };
    let lines = LineIndex::new(text);
    let heads: Vec<regex::Captures<'_>> = header.captures_iter(text).collect();
    let mut out = Vec::new();
    for (k, c) in heads.iter().enumerate() {
        let Some(whole) = c.get(0) else { continue };
        let end = heads
            .get(k + 1)
            .and_then(|n| n.get(0))
            .map_or(text.len(), |m| m.start());
        let body = text
            .get(whole.end()..end)
            .unwrap_or_default()
            .trim()
            .to_owned();
        let head = c.get(1).map_or("", |m| m.as_str());
        let line = lines.line_of(whole.start());
        let mut msg = Msg {
            line,
            text: body.clone(),
            ..Msg::default()
        };
        if head == "Planner's Response" {
            msg.agent = Some("Planner".to_owned());
            "Planner".clone_into(&mut msg.name);
            out.push(msg);
            // A subgoal for an intern is a delegation.
            for intern in RE_INTERN.iter().flat_map(|r| r.captures_iter(&body)) {
                let to = intern_agent(intern.get(1).map_or("", |m| m.as_str()));
                out.push(Msg {
                    kind: MsgKind::Handoff,
                    agent: Some("Planner".to_owned()),
                    name: format!("delegate to {to}"),
                    text: intern.get(0).map_or("", |m| m.as_str()).trim().to_owned(),
                    line,
                    handoff: Some(Handoff {
                        from: Some("Planner".to_owned()),
                        to,
                        mode: HandoffMode::Delegate,
                    }),
                    ..Msg::default()
                });
            }
        } else if let Some(inner) = c.get(2) {
            let agent = inner.as_str().to_owned();
            msg.agent = Some(agent.clone());
            msg.name = agent;
            out.push(msg);
        } else if let (Some(from), Some(to)) = (c.get(3), c.get(4)) {
            let (from, to) = (from.as_str().to_owned(), to.as_str().to_owned());
            msg.agent = Some(from.clone());
            msg.name = format!("{from} report");
            out.push(msg);
            out.push(Msg {
                kind: MsgKind::Handoff,
                agent: Some(from.clone()),
                name: format!("return to {to}"),
                line,
                handoff: Some(Handoff {
                    from: Some(from),
                    to,
                    mode: HandoffMode::Return,
                }),
                ..Msg::default()
            });
        } else {
            msg.kind = MsgKind::System;
            msg.name = truncate(head, 60);
            out.push(msg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::MAST_MODES;
    use crate::load::LoadOptions;
    use crate::model::{CostSource, Format, HandoffMode, SpanKind, Status};
    use crate::testing::{fixture, inline};

    #[test]
    fn chatdev_record_with_mast_annotation() {
        let (summary, traces) = fixture("mad/chatdev-record.json");
        assert_eq!(summary.format, Format::Mad);
        assert_eq!(traces.len(), 1);
        let loaded = &traces[0];
        let t = &loaded.trace;
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.id, "ChatDev-42");
        assert_eq!(t.format_version.as_deref(), Some("mad/ChatDev"));
        assert!(
            t.task
                .as_deref()
                .unwrap()
                .starts_with("Build a command-line pomodoro timer")
        );
        for agent in [
            "Chief Executive Officer",
            "Chief Product Officer",
            "Programmer",
            "Code Reviewer",
        ] {
            assert!(
                t.agents.iter().any(|a| a.name == agent),
                "{agent}: {:?}",
                t.agents
            );
        }
        // Steps are the parsed messages in order; the noise lines are not messages.
        let steps: Vec<u32> = t.spans.iter().filter_map(|s| s.step).collect();
        assert_eq!(steps, (0..t.spans.len() as u32).collect::<Vec<_>>());
        assert!(
            t.spans
                .iter()
                .all(|s| !s.output.as_ref().is_some_and(|o| o.text.contains("flask")))
        );
        // ChatDev writes day before month: 2026-14-03 is 14 March.
        assert_eq!(t.start_ns, crate::util::parse_time("2026-03-14T09:12:00Z"));

        let failed: Vec<_> = t
            .spans
            .iter()
            .filter(|s| s.status == Status::Error)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].kind, SpanKind::Tool);
        assert_eq!(failed[0].tool.as_ref().unwrap().name, "test_run");
        assert!(
            failed[0]
                .error
                .as_ref()
                .unwrap()
                .message
                .contains("ModuleNotFoundError")
        );

        // Usage records are model calls of the agent that speaks next.
        assert_eq!(t.usage.input, Some(612 + 1480 + 1733));
        assert_eq!(t.usage.output, Some(41 + 702 + 96));
        assert_eq!(
            t.cost.as_ref().map(|c| c.source),
            Some(CostSource::Reported)
        );
        let calls: Vec<_> = t
            .spans_of(SpanKind::Llm)
            .map(|s| s.agent.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(calls, ["Chief Product Officer", "Programmer", "Programmer"]);
        let conclusion = t
            .spans
            .iter()
            .find(|s| s.name == "seminar conclusion")
            .unwrap();
        assert_eq!(conclusion.agent.as_deref(), Some("Chief Product Officer"));
        assert_eq!(t.metadata["chatdev.num_total_tokens"], 4664.0);

        let categories: BTreeSet<&str> =
            loaded.labels.iter().map(|l| l.category.as_str()).collect();
        assert_eq!(
            categories,
            BTreeSet::from([
                "MAST FM-1.1 Disobey Task Specification",
                "MAST FM-2.6 Reasoning-Action Mismatch",
                "MAST FM-3.2 No or Incomplete Verification"
            ])
        );
        assert!(loaded.labels.iter().all(|l| l.source == "mast"));
        // Answers never reach the trace.
        let json = serde_json::to_string(t).unwrap();
        assert!(!json.contains("FM-") && !json.contains("mast_annotation"));
    }

    #[test]
    fn human_labelled_magentic_record() {
        let (_, traces) = fixture("mad/human-labelled-magentic.json");
        let loaded = &traces[0];
        let t = &loaded.trace;
        assert_eq!(t.format_version.as_deref(), Some("mad-human/Magentic"));
        assert!(
            t.warnings.iter().any(|w| w.contains("read swapped")),
            "{:?}",
            t.warnings
        );
        assert_eq!(t.spans_of(SpanKind::Human).count(), 1);
        assert!(t.task.as_deref().unwrap().starts_with("Which element"));
        let names: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert!(
            names.contains(&"MagenticOneOrchestrator") && names.contains(&"FileSurfer"),
            "{names:?}"
        );
        let runs: Vec<_> = t.spans_of(SpanKind::Tool).collect();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].status, Status::Error);
        assert_eq!(runs[0].tool.as_ref().unwrap().name, "code_execution");
        assert!(
            runs[0]
                .error
                .as_ref()
                .unwrap()
                .message
                .contains("SyntaxError")
        );
        assert_eq!(runs[1].status, Status::Ok);
        // The pip preamble is not a message; the runtime goes to metadata.
        assert!(t.spans.iter().all(|s| {
            !s.output
                .as_ref()
                .is_some_and(|o| o.text.contains("Requirement already"))
        }));
        assert_eq!(t.metadata["scenario_runtime_s"], 74);
        assert_eq!(t.final_output.as_deref(), Some("FINAL ANSWER: molybdenum"));
        assert_eq!(t.spans.len(), 10);

        // Labels keep the annotation's own code and name, valued by annotator agreement.
        let mut labels: Vec<(&str, f64)> = loaded
            .labels
            .iter()
            .map(|l| (l.category.as_str(), l.value.unwrap()))
            .collect();
        labels.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[0].0, "MAST 3.2 No or Incomplete Verification");
        assert!((labels[0].1 - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(labels[1].0, "MAST 3.3 Incorrect Verification");
        assert!(
            loaded.labels[0]
                .text
                .as_deref()
                .unwrap()
                .starts_with("Generalizability: ")
        );
    }

    #[test]
    fn unknown_frameworks_fall_back_to_one_step() {
        let doc = r#"{"mas_name": "SecretTeam", "trace": "agent A did things\nagent B did more", "mast_annotation": {"1.3": 1, "9.9": 1, "2.1": "0"}}"#;
        let (summary, traces) = inline("r.json", doc);
        assert_eq!(summary.format, Format::Mad);
        let t = &traces[0].trace;
        assert_eq!(t.spans.len(), 1);
        assert_eq!(t.spans[0].kind, SpanKind::Step);
        assert!(t.warnings.iter().any(|w| w.contains("SecretTeam")));
        assert!(t.warnings.iter().any(|w| w.contains("9.9")));
        let cats: Vec<&str> = traces[0]
            .labels
            .iter()
            .map(|l| l.category.as_str())
            .collect();
        assert_eq!(cats, ["MAST FM-1.3 Step Repetition", "MAST FM-9.9"]);
        // A known framework whose markers are missing also falls back, with a warning.
        let doc = r#"{"mas_name": "HyperAgent", "trace": {"key": "k", "index": 1, "trajectory": "nothing structured"}, "mast_annotation": {}}"#;
        let (_, traces) = inline("r.json", doc);
        assert!(
            traces[0]
                .trace
                .warnings
                .iter()
                .any(|w| w.contains("no HyperAgent message markers"))
        );
        assert_eq!(traces[0].trace.id, "HyperAgent-k");
    }

    #[test]
    fn splitters_on_small_logs() {
        let yaml = "instance_id: x\ntrajectory:\n- content:\n  - 'Solve 2+2.'\n  role: assistant\n  name: mathproxyagent\n- content: The answer is \\boxed{4}.\n  role: user\n  name: assistant\n";
        let doc = serde_json::json!({"mas_name": "AG2", "trace": {"key": "k", "index": 0, "trajectory": yaml}, "mast_annotation": {"1.5": 1}});
        let (_, traces) = inline("r.json", &doc.to_string());
        let t = &traces[0].trace;
        let agents: Vec<&str> = t.spans.iter().filter_map(|s| s.agent.as_deref()).collect();
        assert_eq!(agents, ["mathproxyagent", "assistant"]);
        assert_eq!(
            t.spans[1].output.as_ref().unwrap().text,
            "The answer is \\boxed{4}."
        );

        let manus = "Enter your prompt: 2026-01-05 10:00:00.001 | INFO     | app.agent.base:run:140 - Executing step 1/20\n2026-01-05 10:00:01.500 | INFO     | app.llm:update_token_count:250 - Token usage: Input=100, Completion=20, Cumulative Input=100\n2026-01-05 10:00:01.501 | INFO     | app.agent.toolcall:think:81 - ✨ Manus's thoughts: I will compute it.\n2026-01-05 10:00:01.502 | INFO     | app.agent.toolcall:think:89 - 🔧 Tool arguments: {\"code\": \"print(x)\"}\n2026-01-05 10:00:01.503 | INFO     | app.agent.toolcall:execute_tool:180 - 🔧 Activating tool: 'python_execute'...\n2026-01-05 10:00:02.000 | INFO     | app.agent.toolcall:act:150 - 🎯 Tool 'python_execute' completed its mission! Result: Observed output of cmd `python_execute` executed:\n{'observation': \"name 'x' is not defined\", 'success': False}\n";
        let doc = serde_json::json!({"mas_name": "OpenManus", "trace": manus, "annotations": []});
        let (_, traces) = inline("r.json", &doc.to_string());
        let t = &traces[0].trace;
        assert_eq!(t.usage.input, Some(100));
        let tool = t.spans_of(SpanKind::Tool).next().unwrap();
        assert_eq!(
            (tool.name.as_str(), tool.status),
            ("python_execute", Status::Error)
        );
        assert_eq!(tool.attributes["arguments"]["code"], "print(x)");
        assert_eq!(
            t.spans_of(SpanKind::Llm).next().unwrap().agent.as_deref(),
            Some("Manus")
        );

        let hyper = "HyperAgent_x - INFO - Planner's Response: Thought: look at the code.\n\nIntern Name: Codebase Navigator\nSubgoal: find foo\nHyperAgent_x - INFO - Inner-Navigator-Assistant's Response: Thought: searching\nHyperAgent_x - INFO - Navigator->Planner: foo is in bar.py";
        let doc = serde_json::json!({"mas_name": "HyperAgent", "trace": hyper, "annotations": []});
        let (_, traces) = inline("r.json", &doc.to_string());
        let t = &traces[0].trace;
        let modes: Vec<HandoffMode> = t
            .spans_of(SpanKind::Handoff)
            .filter_map(|s| s.handoff.as_ref().map(|h| h.mode))
            .collect();
        assert_eq!(modes, [HandoffMode::Delegate, HandoffMode::Return]);
        assert!(t.agents.iter().any(|a| a.name == "Navigator"));
    }

    #[test]
    fn hostile_records_do_not_panic() {
        for doc in [
            r#"{"mas_name": "ChatDev", "trace": "[2026-99-99 99:99:99 INFO] **[", "mast_annotation": []}"#,
            r#"{"mas_name": "AppWorld", "trace": "Evaluation\n{", "annotations": [null, {"failure mode": 5}, {"failure mode": "x", "annotator_1": true}]}"#,
            r#"{"mas_name": "AG2", "trace": "{\"trajectory\": [1, null, {\"content\": 3}], \"note\": {\"options\": {\"a\": \"yes\"}}}", "annotations": "no"}"#,
            r#"{"mas_name": "MetaGPT", "trace": {"trajectory": ["a", 2]}, "mast_annotation": {"1.1": null}}"#,
        ] {
            let (_, traces) = inline("h.json", doc);
            assert_eq!(traces.len(), 1, "{doc}");
        }
    }

    #[test]
    fn taxonomy_has_fourteen_modes() {
        assert_eq!(MAST_MODES.len(), 14);
        assert!(
            MAST_MODES
                .iter()
                .any(|(c, n)| *c == "2.5" && *n == "Ignored Other Agent's Input")
        );
    }

    /// Replaces Python's non-standard `NaN` / `Infinity` tokens outside strings with `null`.
    fn nan_to_null(json: &str) -> String {
        let mut out = String::with_capacity(json.len());
        let mut in_string = false;
        let mut escaped = false;
        let mut rest = json;
        while let Some(ch) = rest.chars().next() {
            if in_string {
                in_string = escaped || ch != '"';
                escaped = !escaped && ch == '\\';
            } else if ch == '"' {
                in_string = true;
            } else {
                let token = ["-Infinity", "Infinity", "NaN"]
                    .into_iter()
                    .find(|t| rest.starts_with(t));
                if let Some(t) = token {
                    out.push_str("null");
                    rest = &rest[t.len()..];
                    continue;
                }
            }
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
        out
    }

    /// The released human-labelled file (19 records, 7 frameworks), when it is available.
    #[test]
    fn real_human_labelled_dataset() {
        let path =
            std::path::Path::new("/work/shared/bench/mast-human/MAD_human_labelled_dataset.json");
        if !path.exists() {
            #[allow(clippy::print_stdout, reason = "tells why the test did nothing")]
            {
                println!("skipped: {} is not on this machine", path.display());
            }
            return;
        }
        // The release was written by Python's `json.dump` and holds bare `NaN` annotator
        // votes, which strict JSON readers (and so the loader) refuse.
        let raw = std::fs::read_to_string(path).unwrap();
        let (summary, traces) = crate::load::load_bytes(
            "MAD_human_labelled_dataset.json",
            nan_to_null(&raw).as_bytes(),
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(summary.format, Format::Mad);
        assert_eq!(traces.len(), 19, "{:?}", summary.warnings);
        let mut frameworks = BTreeSet::new();
        for loaded in &traces {
            let t = &loaded.trace;
            let framework = t.metadata["framework"].as_str().unwrap().to_owned();
            let who = format!("{} ({framework})", t.id);
            assert!(
                !t.warnings
                    .iter()
                    .any(|w| w.contains("whole log is one step")),
                "{who}: {:?}",
                t.warnings
            );
            assert!(t.spans.len() > 1, "{who}: {} spans", t.spans.len());
            assert!(t.agents.len() >= 2, "{who}: agents {:?}", t.agents);
            assert!(t.spans.iter().all(|s| s.step.is_some()), "{who}");
            // Dataset answers stay out of the trace.
            let json = serde_json::to_string(t).unwrap();
            for leak in [
                "annotator_1",
                "\"other_data\"",
                "seed_answer",
                "Evaluation\n{",
            ] {
                assert!(!json.contains(leak), "{who}: trace contains {leak}");
            }
            frameworks.insert(framework);
        }
        assert_eq!(frameworks.len(), 7, "{frameworks:?}");
        // One record (GAIA/OpenManus) has no failure mode any annotator marked.
        assert!(traces.iter().filter(|t| !t.labels.is_empty()).count() >= 15);
    }
}
