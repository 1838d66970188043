//! Content-based format detection, following the priority order of `formats.md` §12.
//!
//! Rules test *keys*, never free-text values, and the first match wins. A file name only
//! breaks ties. Nothing here guesses: when no rule matches, the caller reports
//! "unrecognized format" with what was seen.

use serde_json::{Map, Value};

use crate::adapters::JsonLine;
use crate::model::Format;

/// How an input is handed to its adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The whole file is one document (which may still hold several traces).
    Whole,
    /// Every array element or JSONL line is its own record, parsed on its own.
    Records,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Detection {
    pub(crate) format: Format,
    pub(crate) framing: Framing,
    /// Which rule matched, for `pisama inspect`.
    pub(crate) rule: &'static str,
}

const fn det(format: Format, framing: Framing, rule: &'static str) -> Detection {
    Detection {
        format,
        framing,
        rule,
    }
}

/// Detects the format of one JSON document (a whole `.json` file).
pub(crate) fn sniff_json(v: &Value, file_name: &str) -> Option<Detection> {
    match v {
        Value::Object(map) => {
            sniff_object(map, file_name).map(|(f, rule)| det(f, Framing::Whole, rule))
        }
        Value::Array(items) => sniff_array(items, file_name),
        _ => None,
    }
}

fn sniff_array(items: &[Value], file_name: &str) -> Option<Detection> {
    let first = items.iter().find(|v| v.is_object())?;
    let obj = first.as_object()?;
    // Arrays that are one document rather than a batch of records.
    if is_langsmith_run(obj) {
        return Some(det(
            Format::LangSmith,
            Framing::Whole,
            "array of LangSmith runs",
        ));
    }
    if is_pisama_span(obj) {
        return Some(det(
            Format::PisamaSpans,
            Framing::Whole,
            "array of pisama spans",
        ));
    }
    if is_autogen_message(obj) {
        return Some(det(
            Format::AutoGenAgentChat,
            Framing::Whole,
            "array of AgentChat messages",
        ));
    }
    if is_langgraph_debug_item(first) {
        return Some(det(
            Format::LangGraph,
            Framing::Whole,
            "array of LangGraph debug events",
        ));
    }
    if is_chat_message(obj) {
        return Some(det(
            Format::GenericChat,
            Framing::Whole,
            "array of chat messages",
        ));
    }
    if is_phoenix_span(obj) {
        return Some(det(
            Format::OpenInferenceSpans,
            Framing::Whole,
            "array of OpenInference spans",
        ));
    }
    // One trace's spans may be split across several TracesData objects: group them together.
    if is_otlp(obj) {
        return Some(det(
            Format::Otlp,
            Framing::Whole,
            "array of OTLP TracesData",
        ));
    }
    if is_dify_node(obj) {
        return Some(det(
            Format::DifyNodes,
            Framing::Whole,
            "array of Dify node executions",
        ));
    }
    if is_dify_message(obj) {
        return Some(det(
            Format::DifyMessages,
            Framing::Whole,
            "array of Dify messages",
        ));
    }
    // Otherwise: a batch of records, each detected like a standalone document.
    sniff_object(obj, file_name).map(|(f, rule)| det(f, Framing::Records, rule))
}

/// Object rules in priority order. Returns the format and the rule's name.
pub(crate) fn sniff_object(
    o: &Map<String, Value>,
    file_name: &str,
) -> Option<(Format, &'static str)> {
    if o.contains_key("pisama_trace") && o.get("trace").is_some_and(Value::is_object) {
        return Some((Format::PisamaCanonical, "pisama_trace envelope"));
    }
    // TRAIL dataset rows wrap the trace as a JSON string.
    if let Some(Value::String(inner)) = o.get("trace")
        && let Ok(Value::Object(inner)) = serde_json::from_str::<Value>(inner)
        && is_trail(&inner)
    {
        return Some((Format::Trail, "TRAIL row (trace as JSON string)"));
    }
    // 1. ATIF
    if o.get("schema_version")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("ATIF-v"))
        && o.get("steps").is_some_and(Value::is_array)
    {
        return Some((Format::Atif, "schema_version ATIF-v* + steps"));
    }
    // 2. OTLP
    if is_otlp(o) {
        return Some((Format::Otlp, "resourceSpans"));
    }
    // 2b. Phoenix / console exporter span objects, alone or under `spans`/`data`.
    if is_phoenix_span(o) {
        return Some((Format::OpenInferenceSpans, "context.trace_id + span_id"));
    }
    for key in ["spans", "data"] {
        if let Some(Value::Array(items)) = o.get(key)
            && items
                .iter()
                .find_map(Value::as_object)
                .is_some_and(is_phoenix_span)
        {
            return Some((
                Format::OpenInferenceSpans,
                "spans[] / data[] of OpenInference spans",
            ));
        }
    }
    // 3. TRAIL
    if is_trail(o) {
        return Some((
            Format::Trail,
            "trace_id + spans[].span_attributes/child_spans",
        ));
    }
    // 9. n8n
    if is_n8n(o) {
        return Some((Format::N8n, "data.resultData.runData"));
    }
    // 10. Dify
    if let Some(Value::Array(items)) = o.get("data")
        && let Some(Value::Object(first)) = items.first()
    {
        if is_dify_node(first) {
            return Some((Format::DifyNodes, "data[] with node_type + node_id"));
        }
        if is_dify_message(first) {
            return Some((
                Format::DifyMessages,
                "data[] with agent_thoughts + conversation_id",
            ));
        }
        if is_n8n(first) {
            return Some((Format::N8n, "data[] of n8n executions"));
        }
    }
    if is_dify_node(o) {
        return Some((Format::DifyNodes, "node_type + node_id"));
    }
    if is_dify_message(o) {
        return Some((Format::DifyMessages, "agent_thoughts + conversation_id"));
    }
    // 11. LangSmith
    if is_langsmith_run(o) {
        return Some((Format::LangSmith, "run_type + id + tree keys"));
    }
    for key in ["runs", "post"] {
        if let Some(Value::Array(items)) = o.get(key)
            && items
                .iter()
                .find_map(Value::as_object)
                .is_some_and(is_langsmith_run)
        {
            return Some((Format::LangSmith, "runs[] / post[] of LangSmith runs"));
        }
    }
    // 12. LangGraph (an object wrapping the events)
    if let Some(Value::Array(items)) = o.get("events")
        && items.first().is_some_and(is_langgraph_debug_item)
    {
        return Some((Format::LangGraph, "events[] of LangGraph debug chunks"));
    }
    // 13. AutoGen AgentChat
    if let Some(Value::Array(msgs)) = o.get("messages")
        && msgs
            .iter()
            .filter_map(Value::as_object)
            .any(is_autogen_message)
    {
        return Some((
            Format::AutoGenAgentChat,
            "messages[] with AgentChat types + source",
        ));
    }
    // A saved AgentChat team state (`team.save_state()`): the manager's message thread.
    if o.get("agent_states")
        .and_then(Value::as_object)
        .is_some_and(|states| {
            states
                .values()
                .any(|s| s.get("message_thread").is_some_and(Value::is_array))
        })
    {
        return Some((
            Format::AutoGenAgentChat,
            "agent_states[*].message_thread (saved team state)",
        ));
    }
    // 15. Who&When
    if o.get("history").is_some_and(Value::is_array)
        && (o.contains_key("mistake_agent") || o.contains_key("mistake_step"))
    {
        return Some((Format::WhoWhen, "history + mistake_agent/mistake_step"));
    }
    // 16. MAD / MAST
    if o.contains_key("mas_name")
        && o.get("trace")
            .is_some_and(|t| t.is_string() || t.get("trajectory").is_some())
        && (o.contains_key("mast_annotation") || o.contains_key("annotations"))
    {
        return Some((Format::Mad, "mas_name + trace + annotations"));
    }
    // tau-bench trajectories
    if o.get("traj").and_then(Value::as_array).is_some_and(|t| {
        t.iter()
            .find_map(Value::as_object)
            .is_some_and(|m| m.contains_key("role"))
    }) {
        return Some((Format::TauBench, "traj[] of role messages"));
    }
    // The incumbent's native trace.
    if let Some(Value::Array(spans)) = o.get("spans")
        && (spans.is_empty()
            || spans
                .iter()
                .find_map(Value::as_object)
                .is_some_and(is_pisama_span))
    {
        return Some((Format::PisamaSpans, "spans[] with span_id"));
    }
    // 17. Generic chat
    for key in ["messages", "conversation", "history", "conversations"] {
        if let Some(Value::Array(msgs)) = o.get(key)
            && msgs
                .iter()
                .find_map(Value::as_object)
                .is_some_and(is_chat_message)
        {
            return Some((
                Format::GenericChat,
                "messages/conversation/history of {role, content}",
            ));
        }
    }
    let _ = file_name;
    None
}

/// Detects the format of a JSONL file from its first lines (up to 50).
pub(crate) fn sniff_lines(lines: &[JsonLine], file_name: &str) -> Option<Detection> {
    let objs: Vec<&Map<String, Value>> = lines.iter().filter_map(|l| l.value.as_object()).collect();
    let first = lines.first()?;
    let first_obj = first.value.as_object();
    // 4. OpenClaw trajectory sidecar
    if objs
        .iter()
        .any(|o| o.get("traceSchema").and_then(Value::as_str) == Some("openclaw-trajectory"))
    {
        return Some(det(
            Format::OpenClawTrajectory,
            Framing::Whole,
            "traceSchema openclaw-trajectory",
        ));
    }
    // 5. pi / OpenClaw transcript
    if let Some(o) = first_obj
        && o.get("type").and_then(Value::as_str) == Some("session")
        && o.get("version")
            .and_then(Value::as_u64)
            .is_some_and(|v| (1..=3).contains(&v))
        && (o.contains_key("cwd") || o.contains_key("id"))
    {
        return Some(det(
            Format::OpenClawSession,
            Framing::Whole,
            "session header line",
        ));
    }
    // 6. Claude Code transcript
    if objs.iter().take(20).any(|o| {
        o.contains_key("sessionId")
            && o.contains_key("uuid")
            && o.contains_key("parentUuid")
            && matches!(
                o.get("type").and_then(Value::as_str),
                Some("user" | "assistant" | "system")
            )
    }) {
        return Some(det(
            Format::ClaudeCode,
            Framing::Whole,
            "sessionId + uuid + parentUuid lines",
        ));
    }
    // 7. Codex rollout
    if !objs.is_empty()
        && objs.iter().all(|o| {
            o.contains_key("timestamp")
                && o.contains_key("payload")
                && matches!(
                    o.get("type").and_then(Value::as_str),
                    Some(
                        "session_meta"
                            | "turn_context"
                            | "response_item"
                            | "event_msg"
                            | "compacted"
                    )
                )
        })
    {
        return Some(det(
            Format::Codex,
            Framing::Whole,
            "{timestamp, type, payload} rollout lines",
        ));
    }
    // 7, relaxed: newer Codex builds add envelope types; line 1 `session_meta` still names it.
    if first_obj.is_some_and(|o| {
        o.get("type").and_then(Value::as_str) == Some("session_meta")
            && o.get("payload").is_some_and(Value::is_object)
    }) {
        return Some(det(
            Format::Codex,
            Framing::Whole,
            "rollout starting with session_meta",
        ));
    }
    // 7, early 2025 rollouts: a bare `{id, timestamp, instructions}` line, then unwrapped items.
    if first_obj.is_some_and(|o| {
        !o.contains_key("type")
            && o.contains_key("id")
            && o.contains_key("timestamp")
            && o.contains_key("instructions")
    }) && objs.iter().skip(1).any(|o| {
        o.contains_key("record_type")
            || matches!(
                o.get("type").and_then(Value::as_str),
                Some(
                    "message"
                        | "reasoning"
                        | "function_call"
                        | "function_call_output"
                        | "local_shell_call"
                )
            )
    }) {
        return Some(det(
            Format::Codex,
            Framing::Whole,
            "early rollout: {id, timestamp, instructions} + items",
        ));
    }
    // 8. Headless stream-json (Claude Code -p, Cursor) and codex exec --json.
    if let Some(o) = first_obj {
        let ty = o.get("type").and_then(Value::as_str);
        if ty == Some("system")
            && o.get("subtype").and_then(Value::as_str) == Some("init")
            && o.contains_key("session_id")
        {
            return Some(det(
                Format::ClaudeCode,
                Framing::Whole,
                "stream-json system/init",
            ));
        }
        if ty == Some("thread.started") {
            return Some(det(
                Format::Codex,
                Framing::Whole,
                "codex exec --json thread.started",
            ));
        }
    }
    // 11. LangSmith flat runs, one per line.
    if first_obj.is_some_and(is_langsmith_run) {
        return Some(det(
            Format::LangSmith,
            Framing::Whole,
            "LangSmith runs, one per line",
        ));
    }
    // 11b. LangSmith ingest batches, one `{post, patch}` per line: patches on later lines
    // complete runs posted earlier, so the file is one document.
    if first_obj.is_some_and(|o| {
        ["post", "patch", "runs"].iter().any(|k| o.contains_key(*k))
            && sniff_object(o, file_name).is_some_and(|(f, _)| f == Format::LangSmith)
    }) {
        return Some(det(
            Format::LangSmith,
            Framing::Whole,
            "LangSmith ingest batches, one per line",
        ));
    }
    // 12. LangGraph debug stream / astream_events. Several stream modes in one file start with
    // whichever mode came first (`["updates", {...}]`), so any debug line in the head counts.
    if is_langgraph_debug_item(&first.value)
        || (first.value.is_array() && lines.iter().any(|l| is_langgraph_debug_item(&l.value)))
    {
        return Some(det(
            Format::LangGraph,
            Framing::Whole,
            "LangGraph debug stream lines",
        ));
    }
    // 2b. Phoenix spans, one per line.
    if first_obj.is_some_and(is_phoenix_span) {
        return Some(det(
            Format::OpenInferenceSpans,
            Framing::Whole,
            "OpenInference spans, one per line",
        ));
    }
    // Incumbent span rows.
    if first_obj.is_some_and(is_pisama_span) {
        return Some(det(Format::PisamaSpans, Framing::Whole, "pisama span rows"));
    }
    // OTLP collector file exporter: one TracesData per line; spans of one trace may be split
    // across lines, so the adapter sees all lines.
    if first_obj.is_some_and(is_otlp) {
        return Some(det(
            Format::Otlp,
            Framing::Whole,
            "OTLP TracesData per line",
        ));
    }
    // AutoGen message dumps, one message per line.
    if first_obj.is_some_and(is_autogen_message) {
        return Some(det(
            Format::AutoGenAgentChat,
            Framing::Whole,
            "AgentChat messages, one per line",
        ));
    }
    // Chat messages one per line form one conversation.
    if first_obj.is_some_and(is_chat_message) && objs.iter().all(|o| is_chat_message(o)) {
        return Some(det(
            Format::GenericChat,
            Framing::Whole,
            "chat messages, one per line",
        ));
    }
    // Otherwise each line is a record of its own (a JSONL stream of many traces).
    let (format, rule) = sniff_object(first_obj?, file_name)?;
    Some(det(format, Framing::Records, rule))
}

/// Detects text formats from their first lines.
pub(crate) fn sniff_text(text: &str) -> Option<Detection> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    if first
        .trim_start()
        .starts_with("Started new session with Session ID:")
    {
        return Some(det(
            Format::Ag2RuntimeLog,
            Framing::Whole,
            "AG2 runtime.log header",
        ));
    }
    None
}

/// The formats a user can force with `--input-format`, and how each is framed then.
pub(crate) fn forced(format: Format, is_lines: bool) -> Detection {
    let framing = match format {
        Format::Atif
        | Format::Trail
        | Format::Mad
        | Format::WhoWhen
        | Format::TauBench
        | Format::PisamaCanonical => Framing::Records,
        Format::GenericChat | Format::N8n | Format::LangSmith if !is_lines => Framing::Whole,
        _ => Framing::Whole,
    };
    det(format, framing, "--input-format")
}

// ---- key tests -------------------------------------------------------------------------

pub(crate) fn is_otlp(o: &Map<String, Value>) -> bool {
    if o.get("resourceSpans")
        .or_else(|| o.get("resource_spans"))
        .is_some_and(Value::is_array)
    {
        return true;
    }
    if let Some(result) = o.get("result").and_then(Value::as_object)
        && result
            .get("resourceSpans")
            .or_else(|| result.get("resource_spans"))
            .is_some_and(Value::is_array)
    {
        return true;
    }
    if let Some(Value::Array(batches)) = o.get("batches") {
        return batches.iter().filter_map(Value::as_object).any(|b| {
            b.contains_key("scopeSpans") || b.contains_key("instrumentationLibrarySpans")
        });
    }
    false
}

pub(crate) fn is_phoenix_span(o: &Map<String, Value>) -> bool {
    let Some(ctx) = o.get("context").and_then(Value::as_object) else {
        return false;
    };
    ctx.contains_key("trace_id")
        && ctx.contains_key("span_id")
        && (o.contains_key("span_kind") || o.contains_key("kind"))
        && o.contains_key("attributes")
}

pub(crate) fn is_trail(o: &Map<String, Value>) -> bool {
    o.contains_key("trace_id")
        && o.get("spans")
            .and_then(Value::as_array)
            .is_some_and(|spans| {
                spans.iter().find_map(Value::as_object).is_some_and(|s| {
                    s.contains_key("span_id")
                        && (s.contains_key("span_attributes") || s.contains_key("child_spans"))
                })
            })
}

pub(crate) fn is_n8n(o: &Map<String, Value>) -> bool {
    let run_data = |v: &Value| {
        v.get("resultData")
            .and_then(|r| r.get("runData"))
            .is_some_and(Value::is_object)
    };
    let bare = o
        .get("resultData")
        .and_then(|r| r.get("runData"))
        .is_some_and(Value::is_object);
    if bare || o.get("data").is_some_and(run_data) {
        return true;
    }
    // Internal REST API: `data` is a flatted string; the response wraps the execution in
    // another `data`.
    let flatted = |o: &Map<String, Value>| {
        o.get("data")
            .and_then(Value::as_str)
            .is_some_and(|s| s.trim_start().starts_with('['))
            && o.contains_key("workflowData")
            && o.contains_key("mode")
    };
    flatted(o)
        || o.get("data")
            .and_then(Value::as_object)
            .is_some_and(flatted)
}

pub(crate) fn is_dify_node(o: &Map<String, Value>) -> bool {
    o.contains_key("node_type")
        && o.contains_key("node_id")
        && (o.contains_key("predecessor_node_id") || o.contains_key("execution_metadata"))
}

pub(crate) fn is_dify_message(o: &Map<String, Value>) -> bool {
    o.contains_key("agent_thoughts") && o.contains_key("conversation_id")
}

const LANGSMITH_RUN_TYPES: [&str; 7] = [
    "chain",
    "llm",
    "tool",
    "retriever",
    "embedding",
    "prompt",
    "parser",
];

pub(crate) fn is_langsmith_run(o: &Map<String, Value>) -> bool {
    o.contains_key("id")
        && o.get("run_type")
            .and_then(Value::as_str)
            .is_some_and(|t| LANGSMITH_RUN_TYPES.contains(&t))
        && ["dotted_order", "trace_id", "parent_run_id", "child_runs"]
            .iter()
            .any(|k| o.contains_key(*k))
}

pub(crate) fn is_langgraph_debug_item(v: &Value) -> bool {
    // `[ns, "debug", chunk]` or `["debug", chunk]` wrappers from stream(..., subgraphs=True),
    // and `[ns, chunk]` when debug is the only mode.
    if let Value::Array(parts) = v {
        return parts.last().is_some_and(is_langgraph_debug_item)
            && (parts.iter().any(|p| p.as_str() == Some("debug"))
                || (parts.len() == 2 && parts.first().is_some_and(Value::is_array)));
    }
    let Some(o) = v.as_object() else { return false };
    let debug = matches!(
        o.get("type").and_then(Value::as_str),
        Some("checkpoint" | "task" | "task_result")
    ) && o.contains_key("step")
        && o.contains_key("payload");
    let events = o
        .get("event")
        .and_then(Value::as_str)
        .is_some_and(|e| e.starts_with("on_"))
        && o.contains_key("run_id");
    debug || events
}

const AUTOGEN_TYPES: [&str; 19] = [
    "TextMessage",
    "MultiModalMessage",
    "StopMessage",
    "HandoffMessage",
    "ToolCallSummaryMessage",
    "StructuredMessage",
    "ToolCallRequestEvent",
    "ToolCallExecutionEvent",
    "ThoughtEvent",
    "CodeGenerationEvent",
    "CodeExecutionEvent",
    "SelectSpeakerEvent",
    "SelectorEvent",
    "MemoryQueryEvent",
    "UserInputRequestedEvent",
    "ModelClientStreamingChunkEvent",
    "UserMessage",
    "AssistantMessage",
    "FunctionExecutionResultMessage",
];

pub(crate) fn is_autogen_message(o: &Map<String, Value>) -> bool {
    o.contains_key("source")
        && o.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| AUTOGEN_TYPES.contains(&t))
}

pub(crate) fn is_chat_message(o: &Map<String, Value>) -> bool {
    o.get("role").is_some_and(Value::is_string)
        && (o.contains_key("content") || o.contains_key("tool_calls") || o.contains_key("parts"))
}

pub(crate) fn is_pisama_span(o: &Map<String, Value>) -> bool {
    o.contains_key("span_id")
        && !o.contains_key("span_attributes")
        && !o.contains_key("child_spans")
        && [
            "name",
            "kind",
            "start_time",
            "parent_id",
            "input_data",
            "output_data",
        ]
        .iter()
        .any(|k| o.contains_key(*k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt_of(v: &Value) -> Option<Format> {
        sniff_json(v, "x.json").map(|d| d.format)
    }

    #[test]
    fn object_rules() {
        assert_eq!(
            fmt_of(&json!({"schema_version": "ATIF-v1.7", "steps": []})),
            Some(Format::Atif)
        );
        assert_eq!(fmt_of(&json!({"resourceSpans": []})), Some(Format::Otlp));
        assert_eq!(
            fmt_of(&json!({"result": {"resourceSpans": []}})),
            Some(Format::Otlp)
        );
        assert_eq!(
            fmt_of(&json!({"history": [], "mistake_agent": "a", "question": "q"})),
            Some(Format::WhoWhen)
        );
        assert_eq!(
            fmt_of(&json!({"messages": [{"role": "user", "content": "hi"}]})),
            Some(Format::GenericChat)
        );
        assert_eq!(
            fmt_of(&json!({"spans": [{"span_id": "a", "name": "x"}]})),
            Some(Format::PisamaSpans)
        );
        assert_eq!(
            fmt_of(&json!({"task_id": 1, "traj": [{"role": "user", "content": "x"}]})),
            Some(Format::TauBench)
        );
        assert_eq!(fmt_of(&json!({"hello": "world"})), None);
    }

    #[test]
    fn arrays_are_batches_or_documents() {
        let batch = json!([{"task_id": 1, "traj": [{"role": "user", "content": "x"}]}]);
        let d = sniff_json(&batch, "x.json").unwrap();
        assert_eq!((d.format, d.framing), (Format::TauBench, Framing::Records));
        let conv = json!([{"role": "user", "content": "x"}]);
        let d = sniff_json(&conv, "x.json").unwrap();
        assert_eq!((d.format, d.framing), (Format::GenericChat, Framing::Whole));
        let otlp = json!([{"resourceSpans": []}, {"resourceSpans": []}]);
        let d = sniff_json(&otlp, "x.json").unwrap();
        assert_eq!((d.format, d.framing), (Format::Otlp, Framing::Whole));
    }

    #[test]
    fn phoenix_spans_under_a_key() {
        let span = json!({"context": {"trace_id": "t", "span_id": "s"}, "span_kind": "LLM", "attributes": {}});
        assert_eq!(
            fmt_of(&json!({"spans": [span.clone()]})),
            Some(Format::OpenInferenceSpans)
        );
        assert_eq!(
            fmt_of(&json!({"data": [span]})),
            Some(Format::OpenInferenceSpans)
        );
    }

    fn lines_of(values: Vec<Value>) -> Vec<JsonLine> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, value)| JsonLine {
                line: i as u32 + 1,
                value,
            })
            .collect()
    }

    #[test]
    fn langsmith_langgraph_n8n_and_dify_keys() {
        let run = json!({"id": "a", "run_type": "llm", "trace_id": "t"});
        assert_eq!(
            fmt_of(&json!({"id": "a", "run_type": "chain", "child_runs": []})),
            Some(Format::LangSmith)
        );
        assert_eq!(
            fmt_of(&json!({"runs": [run.clone()]})),
            Some(Format::LangSmith)
        );
        assert_eq!(
            fmt_of(&json!({"post": [run.clone()], "patch": []})),
            Some(Format::LangSmith)
        );
        let d = sniff_lines(
            &lines_of(vec![json!({"post": [run.clone()]}), json!({"patch": []})]),
            "x",
        )
        .unwrap();
        assert_eq!((d.format, d.framing), (Format::LangSmith, Framing::Whole));

        let chunk = json!({"type": "task", "step": 1, "payload": {}});
        for first in [
            chunk.clone(),
            json!([[], "debug", chunk.clone()]),
            json!([["node:1"], chunk.clone()]),
            json!({"event": "on_chain_start", "run_id": "r"}),
        ] {
            let d = sniff_lines(&lines_of(vec![first.clone()]), "x").unwrap();
            assert_eq!(d.format, Format::LangGraph, "{first}");
        }
        let mixed = lines_of(vec![
            json!(["updates", {"a": 1}]),
            json!(["debug", chunk.clone()]),
        ]);
        assert_eq!(sniff_lines(&mixed, "x").unwrap().format, Format::LangGraph);
        assert_ne!(
            sniff_lines(&lines_of(vec![json!(["updates", {"a": 1}])]), "x").map(|d| d.format),
            Some(Format::LangGraph)
        );

        let run_data = json!({"resultData": {"runData": {}}});
        assert_eq!(
            fmt_of(&json!({"id": "1", "data": run_data.clone()})),
            Some(Format::N8n)
        );
        assert_eq!(fmt_of(&run_data), Some(Format::N8n));
        assert_eq!(
            fmt_of(&json!({"data": [{"id": "1", "data": run_data}]})),
            Some(Format::N8n)
        );
        let flatted = json!({"id": "1", "mode": "manual", "workflowData": {}, "data": "[{}]"});
        assert_eq!(fmt_of(&flatted), Some(Format::N8n));
        assert_eq!(fmt_of(&json!({"data": flatted})), Some(Format::N8n));

        let node = json!({"node_type": "llm", "node_id": "1", "predecessor_node_id": null});
        assert_eq!(
            fmt_of(&json!({"data": [node.clone()]})),
            Some(Format::DifyNodes)
        );
        assert_eq!(fmt_of(&json!([node])), Some(Format::DifyNodes));
        let message = json!({"conversation_id": "c", "agent_thoughts": []});
        assert_eq!(
            fmt_of(&json!({"data": [message.clone()]})),
            Some(Format::DifyMessages)
        );
        assert_eq!(fmt_of(&message), Some(Format::DifyMessages));
    }
}
