//! One module per source format. Each turns an [`Input`] into traces with [`TraceBuilder`].
//!
//! Detection (which adapter gets a file) lives in [`crate::sniff`]; reading files, gzip,
//! batching and streaming live in [`crate::load`]. An adapter only sees parsed JSON (or text)
//! and never does I/O.

use serde_json::Value;

use crate::model::{Format, Labels, SourceRef, Trace};

pub(crate) mod ag2;
pub(crate) mod atif;
pub(crate) mod autogen;
pub(crate) mod canonical;
pub(crate) mod claude_code;
pub(crate) mod codex;
pub(crate) mod dify;
pub(crate) mod generic_chat;
pub(crate) mod langgraph;
pub(crate) mod langsmith;
pub(crate) mod mad;
pub(crate) mod n8n;
pub(crate) mod openclaw;
pub(crate) mod openinference;
pub(crate) mod otlp;
pub(crate) mod pisama_spans;
pub(crate) mod tau_bench;
pub(crate) mod trail;
pub(crate) mod who_when;

/// One JSON line of a JSONL file, with its 1-based line number.
#[derive(Debug, Clone)]
pub(crate) struct JsonLine {
    pub(crate) line: u32,
    pub(crate) value: Value,
}

/// What an adapter is given.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "text and companions are read by adapters landing on other branches"
)]
pub(crate) enum Doc {
    /// One JSON value: a whole file, or one record of a batch.
    Json(Value),
    /// All parsed lines of a JSONL file (broken lines already reported and dropped).
    Lines(Vec<JsonLine>),
    /// A text file (AG2 runtime.log, raw framework logs).
    Text(String),
}

/// A related file read alongside the main one (Claude Code sub-agent side chains).
#[derive(Debug)]
#[allow(dead_code, reason = "read by the Claude Code adapter")]
pub(crate) struct Companion {
    pub(crate) file: String,
    pub(crate) lines: Vec<JsonLine>,
}

#[derive(Debug)]
#[allow(dead_code, reason = "companions are read by the Claude Code adapter")]
pub(crate) struct Input {
    /// Display path of the file (or `<stdin>`).
    pub(crate) file: String,
    pub(crate) doc: Doc,
    pub(crate) companions: Vec<Companion>,
    /// Set when this is one record of a batch (an array element or a JSONL line).
    pub(crate) record: Option<RecordPos>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordPos {
    pub(crate) index: usize,
    /// 1-based line of the record in a JSONL file.
    pub(crate) line: Option<u32>,
}

impl Input {
    /// A source reference for a JSON Pointer inside this input's document.
    pub(crate) fn at(&self, pointer: impl Into<String>) -> SourceRef {
        let pointer = pointer.into();
        match self.record {
            Some(RecordPos {
                line: Some(line), ..
            }) => SourceRef {
                file: Some(self.file.clone()),
                line: Some(line),
                pointer: Some(pointer),
            },
            Some(RecordPos { index, line: None }) => SourceRef {
                file: Some(self.file.clone()),
                line: None,
                pointer: Some(format!("/{index}{pointer}")),
            },
            None => SourceRef {
                file: Some(self.file.clone()),
                line: None,
                pointer: Some(pointer),
            },
        }
    }

    /// A source reference for a line of a JSONL or text input.
    pub(crate) fn at_line(&self, line: u32) -> SourceRef {
        SourceRef {
            file: Some(self.file.clone()),
            line: Some(line),
            pointer: None,
        }
    }

    /// A stable id for a trace that has no native one.
    pub(crate) fn synth_id(&self, salt: &str) -> String {
        let idx = self.record.map(|r| r.index.to_string()).unwrap_or_default();
        crate::util::stable_id(&[&self.file, &idx, salt])
    }
}

/// A trace with the dataset answers that came with it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub trace: Trace,
    pub labels: Labels,
}

impl Parsed {
    pub(crate) fn unlabelled(trace: Trace) -> Self {
        Parsed {
            trace,
            labels: Vec::new(),
        }
    }
}

/// An adapter's reason for giving up on a document.
#[derive(Debug, Clone)]
pub(crate) struct AdapterError {
    pub(crate) message: String,
}

impl AdapterError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        AdapterError {
            message: message.into(),
        }
    }
}

pub(crate) type AdapterResult = Result<Vec<Parsed>, AdapterError>;

/// Hands an input to the adapter for `format`. Adapters for formats that are benchmarked at
/// large sizes take the input by value and move its JSON into the trace instead of copying it.
pub(crate) fn parse(format: Format, input: Input) -> AdapterResult {
    match format {
        Format::PisamaSpans => pisama_spans::parse(input),
        Format::Otlp => otlp::parse(input),
        other => parse_borrowed(other, &input),
    }
}

fn parse_borrowed(format: Format, input: &Input) -> AdapterResult {
    match format {
        Format::Otlp => Err(AdapterError::new("OTLP input must be passed by value")),
        Format::OpenInferenceSpans => openinference::parse(input),
        Format::Trail => trail::parse(input),
        Format::LangSmith => langsmith::parse(input),
        Format::LangGraph => langgraph::parse(input),
        Format::N8n => n8n::parse(input),
        Format::DifyNodes => dify::parse_nodes(input),
        Format::DifyMessages => dify::parse_messages(input),
        Format::OpenClawSession => openclaw::parse_session(input),
        Format::OpenClawTrajectory => openclaw::parse_trajectory(input),
        Format::ClaudeCode => claude_code::parse(input),
        Format::Codex => codex::parse(input),
        Format::Atif => atif::parse(input),
        Format::PisamaSpans => Err(AdapterError::new(
            "pisama-spans input must be passed by value",
        )),
        Format::AutoGenAgentChat => autogen::parse(input),
        Format::Ag2RuntimeLog => ag2::parse(input),
        Format::WhoWhen => who_when::parse(input),
        Format::Mad => mad::parse(input),
        Format::TauBench => tau_bench::parse(input),
        Format::GenericChat => generic_chat::parse(input),
        Format::PisamaCanonical => canonical::parse(input),
    }
}

/// The JSON value of a `Doc::Json` input, or an error naming what the adapter expected.
pub(crate) fn expect_json(input: &Input, format: Format) -> Result<&Value, AdapterError> {
    match &input.doc {
        Doc::Json(v) => Ok(v),
        Doc::Lines(_) => Err(AdapterError::new(format!(
            "{format} expects one JSON document, got JSON lines"
        ))),
        Doc::Text(_) => Err(AdapterError::new(format!(
            "{format} expects JSON, got text"
        ))),
    }
}

/// The lines of an input: JSONL as is, or a single JSON value as line 1 (or an array's
/// items as lines 1..n), so line-oriented adapters also accept a JSON array.
#[allow(dead_code, reason = "used by line-oriented adapters")]
pub(crate) fn lines_of(input: &Input) -> Vec<JsonLine> {
    match &input.doc {
        Doc::Lines(lines) => lines.clone(),
        Doc::Json(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| JsonLine {
                line: i as u32 + 1,
                value: v.clone(),
            })
            .collect(),
        Doc::Json(v) => vec![JsonLine {
            line: 1,
            value: v.clone(),
        }],
        Doc::Text(_) => Vec::new(),
    }
}
