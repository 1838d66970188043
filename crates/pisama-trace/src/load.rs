//! Reading inputs: files, folders, stdin; gzip and zstd; JSON, JSONL and text; streaming.
//!
//! Small inputs (under [`LoadOptions::stream_threshold`], 100 MiB by default) are read whole.
//! Larger ones stream: a top-level JSON array is read element by element and a JSONL file line
//! by line, so a batch of many traces needs memory for one trace at a time. A large input
//! whose format is one document (a Claude Code session, a single JSON object) is necessarily
//! read whole, which is still bounded by the largest trace.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use crate::adapters::{self, AdapterResult, Companion, Doc, Input, JsonLine, Parsed, RecordPos};
use crate::error::{Error, supported_list};
use crate::model::{Format, Labels, Trace};
use crate::sniff::{self, Detection, Framing};
use crate::streamed::{self, Read as Streamed};

/// How to read inputs.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Skip detection and read every input as this format.
    pub format: Option<Format>,
    /// Inputs larger than this many bytes (after decompression) are streamed.
    pub stream_threshold: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            format: None,
            stream_threshold: 100 * 1024 * 1024,
        }
    }
}

/// Where a trace came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TraceSource {
    pub path: String,
    /// Position of the trace in a file that holds several (array element or JSONL record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl fmt::Display for TraceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}#{i}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// One trace read from an input, with the labels that came with it.
#[derive(Debug, Clone)]
pub struct LoadedTrace {
    pub trace: Trace,
    /// Dataset answers. Never handed to detectors.
    pub labels: Labels,
    pub source: TraceSource,
}

/// What happened to one input file.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub path: String,
    pub format: Format,
    /// The detection rule that matched, or `--input-format`.
    pub rule: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<&'static str>,
    pub bytes: u64,
    pub traces: usize,
    pub streamed: bool,
    /// File-level problems (broken lines, bad records); trace-level ones are on each trace.
    pub warnings: Vec<String>,
}

/// Reads paths (files, folders, `-`) and hands each trace to a callback.
#[derive(Debug, Default)]
pub struct Loader {
    pub options: LoadOptions,
    /// Files already read as companions of another file (Claude Code side chains).
    consumed: HashSet<PathBuf>,
}

/// The outcome of one input within a multi-path load.
#[derive(Debug)]
pub enum InputOutcome {
    Loaded(FileSummary),
    /// A file inside a folder that is not a trace; reported, not fatal.
    Skipped {
        path: String,
        reason: String,
    },
    Failed(Error),
}

const TRACE_EXTENSIONS: [&str; 6] = ["json", "jsonl", "ndjson", "log", "txt", "jsonlines"];

impl Loader {
    pub fn new(options: LoadOptions) -> Self {
        Loader {
            options,
            consumed: HashSet::new(),
        }
    }

    /// Expands folders (recursively, sorted, trace-like extensions only) and reads each file.
    /// Explicit file arguments that fail are `Failed`; unreadable files found inside folders
    /// are `Skipped` with the reason.
    pub fn load_paths(
        &mut self,
        paths: &[PathBuf],
        sink: &mut dyn FnMut(LoadedTrace),
    ) -> Vec<InputOutcome> {
        let mut outcomes = Vec::new();
        for path in paths {
            if path.as_os_str() == "-" {
                let stdin = io::stdin();
                outcomes.push(
                    match self.load_reader("<stdin>", Box::new(stdin.lock()), sink) {
                        Ok(s) => InputOutcome::Loaded(s),
                        Err(e) => InputOutcome::Failed(e),
                    },
                );
                continue;
            }
            if path.is_dir() {
                let files = match walk(path) {
                    Ok(f) => f,
                    Err(e) => {
                        outcomes.push(InputOutcome::Failed(e));
                        continue;
                    }
                };
                if files.is_empty() {
                    outcomes.push(InputOutcome::Failed(Error::NoTraces {
                        path: path.display().to_string(),
                        format: Format::PisamaCanonical,
                        message: format!(
                            "the folder holds no files with a trace extension ({})",
                            TRACE_EXTENSIONS.join(", ")
                        ),
                    }));
                }
                for file in files {
                    if self.consumed.contains(&file) {
                        continue;
                    }
                    match self.load_file(&file, sink) {
                        Ok(s) => outcomes.push(InputOutcome::Loaded(s)),
                        Err(
                            e @ (Error::Unrecognized { .. }
                            | Error::Empty { .. }
                            | Error::Binary { .. }),
                        ) => {
                            outcomes.push(InputOutcome::Skipped {
                                path: file.display().to_string(),
                                reason: first_line(&e.to_string()),
                            });
                        }
                        Err(e) => outcomes.push(InputOutcome::Failed(e)),
                    }
                }
                continue;
            }
            if self.consumed.contains(path) {
                continue;
            }
            outcomes.push(match self.load_file(path, sink) {
                Ok(s) => InputOutcome::Loaded(s),
                Err(e) => InputOutcome::Failed(e),
            });
        }
        outcomes
    }

    /// Reads one file.
    pub fn load_file(
        &mut self,
        path: &Path,
        sink: &mut dyn FnMut(LoadedTrace),
    ) -> Result<FileSummary, Error> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound { path: name.clone() }
            } else {
                Error::Io {
                    path: name.clone(),
                    source: e,
                }
            }
        })?;
        if path.is_dir() {
            return Err(Error::Io {
                path: name,
                source: io::Error::other("is a folder"),
            });
        }
        let mut companions_of = |format: Format, lines: &[JsonLine]| -> Vec<Companion> {
            if format == Format::ClaudeCode {
                let found = claude_companions(path, lines);
                for c in &found {
                    self.consumed.insert(PathBuf::from(&c.file));
                }
                found
            } else {
                Vec::new()
            }
        };
        let options = self.options.clone();
        let size = file.metadata().map_or(0, |m| m.len() as usize);
        read_source(
            &name,
            Box::new(file),
            size,
            &options,
            &mut companions_of,
            sink,
        )
    }

    /// Reads a stream (stdin, a pipe, an in-memory buffer).
    pub fn load_reader(
        &mut self,
        name: &str,
        reader: Box<dyn Read + '_>,
        sink: &mut dyn FnMut(LoadedTrace),
    ) -> Result<FileSummary, Error> {
        let options = self.options.clone();
        read_source(name, reader, 0, &options, &mut |_, _| Vec::new(), sink)
    }

    /// Reads bytes already in memory (MCP inline traces, tests).
    pub fn load_bytes(
        &mut self,
        name: &str,
        bytes: &[u8],
        sink: &mut dyn FnMut(LoadedTrace),
    ) -> Result<FileSummary, Error> {
        let options = self.options.clone();
        // A plain JSON document already in memory is parsed in place: copying it into a read
        // buffer first would double the memory a large inline trace touches.
        if let Some(read) = in_place_json(bytes, name, &options) {
            let mut run = Run {
                name: name.to_owned(),
                options,
                summary: FileSummary {
                    path: name.to_owned(),
                    format: Format::PisamaCanonical,
                    rule: "",
                    compression: None,
                    bytes: bytes.len() as u64,
                    traces: 0,
                    streamed: false,
                    warnings: Vec::new(),
                },
                sink,
                companions: &mut |_, _| Vec::new(),
                failed_records: 0,
            };
            match read {
                InPlace::Built(detection, result) => run.built(detection, result)?,
                InPlace::Document(value) => run.json_document(value)?,
            }
            return run.finish();
        }
        read_source(
            name,
            Box::new(bytes),
            bytes.len(),
            &options,
            &mut |_, _| Vec::new(),
            sink,
        )
    }
}

/// A JSON document read in place.
enum InPlace {
    Document(Value),
    /// Built by the one-pass path of [`streamed`].
    Built(Detection, AdapterResult),
}

/// An uncompressed, valid UTF-8 JSON document (object or array) small enough not to stream,
/// read; `None` sends the bytes down the general path, which reports problems.
fn in_place_json(bytes: &[u8], name: &str, options: &LoadOptions) -> Option<InPlace> {
    if bytes.len() > options.stream_threshold || options.format.is_some() {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.strip_prefix('\u{feff}').unwrap_or(text).trim_start();
    if start.starts_with('{') {
        match streamed::read_object(start, name).ok()? {
            Streamed::Document(value) => return Some(InPlace::Document(value)),
            Streamed::Built(detection, result) => return Some(InPlace::Built(detection, result)),
            Streamed::Reparse => {}
        }
    } else if !start.starts_with('[') {
        return None;
    }
    serde_json::from_str(start).ok().map(InPlace::Document)
}

/// Convenience: every trace of one file, or the error.
pub fn load_all(
    path: &Path,
    options: &LoadOptions,
) -> Result<(FileSummary, Vec<LoadedTrace>), Error> {
    let mut traces = Vec::new();
    let mut loader = Loader::new(options.clone());
    let summary = loader.load_file(path, &mut |t| traces.push(t))?;
    Ok((summary, traces))
}

/// Convenience: every trace in a byte buffer.
pub fn load_bytes(
    name: &str,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<(FileSummary, Vec<LoadedTrace>), Error> {
    let mut traces = Vec::new();
    let mut loader = Loader::new(options.clone());
    let summary = loader.load_bytes(name, bytes, &mut |t| traces.push(t))?;
    Ok((summary, traces))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

/// Recursively lists trace-like files under `dir`, sorted so that runs are reproducible and
/// Claude Code main sessions come before their side-chain files.
/// The trace-like files under a folder (recursive, sorted, symbolic links not followed).
pub fn walk(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .follow_links(false)
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: io::Error::other(e.to_string()),
        })?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.into_path();
        if is_trace_like(&path) {
            files.push(path);
        }
    }
    files.sort_by_key(|p| (is_side_chain_path(p), p.clone()));
    Ok(files)
}

fn is_trace_like(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let base = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".zst"))
        .unwrap_or(&name);
    let ext = base.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    TRACE_EXTENSIONS.contains(&ext)
}

fn is_side_chain_path(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.starts_with("agent-")
        || path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "subagents")
}

/// Finds Claude Code sub-agent files for the session in `lines`: `<dir>/<sid>/subagents/*.jsonl`
/// (newer versions) and `<dir>/agent-*.jsonl` with the same `sessionId` (earlier 2.x).
fn claude_companions(path: &Path, lines: &[JsonLine]) -> Vec<Companion> {
    let Some(session) = lines
        .iter()
        .find_map(|l| l.value.get("sessionId").and_then(Value::as_str))
        .map(str::to_owned)
    else {
        return Vec::new();
    };
    // A side-chain file itself has no companions.
    if lines
        .iter()
        .all(|l| l.value.get("isSidechain").and_then(Value::as_bool) == Some(true))
    {
        return Vec::new();
    }
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let mut candidates = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join(&session).join("subagents")) {
        candidates.extend(entries.filter_map(Result::ok).map(|e| e.path()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        candidates.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("agent-") && n.to_ascii_lowercase().ends_with(".jsonl")
                    })
                }),
        );
    }
    candidates.sort();
    let mut out = Vec::new();
    for candidate in candidates {
        if candidate == path || !candidate.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&candidate) else {
            continue;
        };
        let (lines, _) = split_lines(&text);
        let belongs = lines
            .iter()
            .find_map(|l| l.value.get("sessionId").and_then(Value::as_str))
            .is_some_and(|s| s == session);
        if belongs {
            out.push(Companion {
                file: candidate.display().to_string(),
                lines,
            });
        }
    }
    out
}

// ---- the reading pipeline ----------------------------------------------------------------

type CompanionFn<'a> = dyn FnMut(Format, &[JsonLine]) -> Vec<Companion> + 'a;

struct Run<'s, 'c> {
    name: String,
    options: LoadOptions,
    summary: FileSummary,
    sink: &'s mut dyn FnMut(LoadedTrace),
    companions: &'c mut CompanionFn<'c>,
    failed_records: usize,
}

fn read_source<'c>(
    name: &str,
    reader: Box<dyn Read + '_>,
    size_hint: usize,
    options: &LoadOptions,
    companions: &'c mut CompanionFn<'c>,
    sink: &mut dyn FnMut(LoadedTrace),
) -> Result<FileSummary, Error> {
    let io_err = |e: io::Error| Error::Io {
        path: name.to_owned(),
        source: e,
    };
    let mut buffered = BufReader::with_capacity(1 << 16, reader);
    let head = buffered.fill_buf().map_err(io_err)?;
    let (mut reader, compression): (Box<dyn BufRead + '_>, Option<&'static str>) = if head
        .starts_with(&[0x1f, 0x8b])
    {
        (
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::bufread::MultiGzDecoder::new(buffered),
            )),
            Some("gzip"),
        )
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(buffered).map_err(|e| Error::Io {
            path: name.to_owned(),
            source: io::Error::other(format!("bad zstd stream: {e}")),
        })?;
        (
            Box::new(BufReader::with_capacity(1 << 16, decoder)),
            Some("zstd"),
        )
    } else {
        (Box::new(buffered), None)
    };

    let limit = options.stream_threshold;
    // Growing the buffer by doubling costs copies and page faults on big files; the size is
    // known for plain files and in-memory input.
    let capacity = if compression.is_none() {
        size_hint.min(limit) + 1
    } else {
        0
    };
    let mut buf = Vec::with_capacity(capacity);
    (&mut reader)
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| decode_error(name, compression, e))?;

    let mut run = Run {
        name: name.to_owned(),
        options: options.clone(),
        summary: FileSummary {
            path: name.to_owned(),
            format: Format::PisamaCanonical,
            rule: "",
            compression,
            bytes: 0,
            traces: 0,
            streamed: false,
            warnings: Vec::new(),
        },
        sink,
        companions,
        failed_records: 0,
    };
    if buf.len() <= limit {
        run.summary.bytes = buf.len() as u64;
        run.whole_buffer(buf)?;
    } else {
        run.summary.streamed = true;
        let rest = io::Cursor::new(buf).chain(reader);
        let mut counting = CountingReader {
            inner: rest,
            count: 0,
        };
        let result = run.streamed(&mut counting);
        run.summary.bytes = counting.count;
        result?;
    }
    run.finish()
}

fn decode_error(name: &str, compression: Option<&str>, e: io::Error) -> Error {
    match compression {
        Some(c) => Error::Io {
            path: name.to_owned(),
            source: io::Error::other(format!("{c} data is corrupt or truncated: {e}")),
        },
        None => Error::Io {
            path: name.to_owned(),
            source: e,
        },
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: Read> CountingReader<R> {
    fn buffered(&mut self) -> BufReader<&mut Self> {
        BufReader::with_capacity(1 << 16, self)
    }
}

/// Splits text into parsed JSON lines; returns the lines and one warning per broken line.
fn split_lines(text: &str) -> (Vec<JsonLine>, Vec<String>) {
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i as u32 + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Value>(trimmed).or_else(|e| {
            replace_non_finite(trimmed).map_or(Err(e), |fixed| serde_json::from_str(&fixed))
        });
        match parsed {
            Ok(value) => lines.push(JsonLine {
                line: line_no,
                value,
            }),
            Err(e) => warnings.push(format!(
                "line {line_no}: skipped, not valid JSON ({})",
                json_message(&e)
            )),
        }
    }
    (lines, warnings)
}

fn json_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if msg.contains("recursion limit exceeded") {
        format!(
            "nesting deeper than 128 levels at line {} column {}",
            e.line(),
            e.column()
        )
    } else {
        msg
    }
}

/// Parses JSON values written one after another with only whitespace between them. Returns
/// `None` unless there are at least two and all of them parse.
fn concatenated_values(text: &str, leading_lines: usize) -> Option<Vec<JsonLine>> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut values = Vec::new();
    let mut value_start = 0usize;
    while let Some(item) = stream.next() {
        let value = item.ok()?;
        let line = bytecount_newlines(&text.as_bytes()[..value_start]) + leading_lines + 1;
        values.push(JsonLine {
            line: line as u32,
            value,
        });
        let end = stream.byte_offset();
        let rest = &text[end..];
        value_start = end + (rest.len() - rest.trim_start().len());
    }
    (values.len() >= 2).then_some(values)
}

/// Makes text from bytes; invalid UTF-8 is replaced (U+FFFD) with a warning naming the line.
fn text_from(bytes: Vec<u8>, warnings: &mut Vec<String>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            let offset = std::str::from_utf8(&bytes)
                .err()
                .map_or(0, |e| e.valid_up_to());
            let line = bytecount_newlines(&bytes[..offset]) + 1;
            warnings.push(format!(
                "invalid UTF-8 at line {line} (byte offset {offset}); bad bytes replaced with U+FFFD"
            ));
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

fn bytecount_newlines(bytes: &[u8]) -> usize {
    bytes.split(|b| *b == b'\n').count() - 1
}

/// What a JSON document looks like, for "unrecognized format" messages.
fn describe_value(value: &Value) -> String {
    match value {
        Value::Object(map) => format!(
            "a JSON object with keys [{}]",
            crate::util::keys_of(map).join(", ")
        ),
        Value::Array(items) => match items.iter().find_map(Value::as_object) {
            Some(first) => format!(
                "a JSON array of {} item(s); the first object has keys [{}]",
                items.len(),
                crate::util::keys_of(first).join(", ")
            ),
            None => format!("a JSON array of {} item(s) with no objects", items.len()),
        },
        other => format!(
            "a bare JSON value ({})",
            crate::util::truncate(&other.to_string(), 60)
        ),
    }
}

fn describe_seen(text: &str) -> String {
    let trimmed = text.trim_start();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
        return format!(
            "a JSON object with keys [{}]",
            crate::util::keys_of(&map).join(", ")
        );
    }
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(trimmed) {
        return match items.iter().find_map(Value::as_object) {
            Some(first) => format!(
                "a JSON array of {} item(s); the first object has keys [{}]",
                items.len(),
                crate::util::keys_of(first).join(", ")
            ),
            None => format!("a JSON array of {} item(s) with no objects", items.len()),
        };
    }
    let first = trimmed.lines().next().unwrap_or_default();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(first) {
        return format!(
            "JSON lines; the first has keys [{}]",
            crate::util::keys_of(&map).join(", ")
        );
    }
    format!("first line {:?}", crate::util::truncate(first, 120))
}

impl Run<'_, '_> {
    fn unrecognized(&self, seen: String) -> Error {
        Error::Unrecognized {
            path: self.name.clone(),
            seen,
            supported: supported_list(),
        }
    }

    fn finish(mut self) -> Result<FileSummary, Error> {
        if self.summary.traces == 0 {
            let message = if self.summary.warnings.is_empty() {
                "the input parsed but held no trace".to_owned()
            } else {
                self.summary.warnings.join("; ")
            };
            return Err(Error::NoTraces {
                path: self.name,
                format: self.summary.format,
                message,
            });
        }
        if self.failed_records > 0 {
            self.summary.warnings.push(format!(
                "{} record(s) could not be read",
                self.failed_records
            ));
        }
        Ok(self.summary)
    }

    fn whole_buffer(&mut self, mut bytes: Vec<u8>) -> Result<(), Error> {
        if bytes.starts_with(&[0xef, 0xbb, 0xbf]) {
            bytes.drain(..3);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Empty {
                path: self.name.clone(),
            });
        }
        if let Some(offset) = bytes.iter().take(8192).position(|b| *b == 0) {
            return Err(Error::Binary {
                path: self.name.clone(),
                offset,
            });
        }
        let text = text_from(bytes, &mut self.summary.warnings);
        let start = text.trim_start();
        let first_byte = start.as_bytes().first().copied().unwrap_or(b' ');
        if first_byte == b'{' && self.options.format.is_none() {
            match streamed::read_object(start, &self.name) {
                Ok(Streamed::Document(value)) => {
                    drop(text);
                    return self.json_document(value);
                }
                Ok(Streamed::Built(detection, result)) => {
                    drop(text);
                    return self.built(detection, result);
                }
                // Not valid JSON, or not the format its span list suggested: the general
                // path below reads it (and reports errors) as it always has.
                Ok(Streamed::Reparse) | Err(_) => {}
            }
        }
        if first_byte == b'{' || first_byte == b'[' {
            let parsed = serde_json::from_str::<Value>(start).or_else(|e| {
                // Python's json module writes NaN and Infinity; read them as null rather
                // than refuse a whole dataset file.
                match replace_non_finite(start) {
                    Some(fixed) => serde_json::from_str::<Value>(&fixed).inspect(|_| {
                        self.summary.warnings.push(
                            "non-standard NaN/Infinity values (as Python writes them) read as null"
                                .to_owned(),
                        );
                    }),
                    None => Err(e),
                }
            });
            match parsed {
                Ok(value) => {
                    // The text is no longer needed; freeing it now lets the trace reuse its
                    // memory instead of touching fresh pages (a large file's cost is mostly
                    // memory).
                    drop(text);
                    return self.json_document(value);
                }
                Err(e) => {
                    let (lines, warnings) = split_lines(&text);
                    let multi_line = text.lines().filter(|l| !l.trim().is_empty()).count() > 1;
                    let containers = lines
                        .iter()
                        .filter(|l| l.value.is_object() || l.value.is_array())
                        .count();
                    if multi_line && containers > 0 {
                        self.summary.warnings.extend(warnings);
                        // Bare scalars (`42`, `"x"`) cannot be trace records: report, skip.
                        let mut kept = Vec::with_capacity(containers);
                        for l in lines {
                            if l.value.is_object() || l.value.is_array() {
                                kept.push(l);
                            } else {
                                self.warn(format!(
                                    "line {}: skipped, a bare JSON value is not a trace record",
                                    l.line
                                ));
                            }
                        }
                        return self.json_lines(kept, &text);
                    }
                    // Pretty-printed objects one after another (the OTel Python console
                    // exporter writes this): read them as a stream of records.
                    let leading_lines =
                        bytecount_newlines(&text.as_bytes()[..text.len() - start.len()]);
                    if let Some(values) = concatenated_values(start, leading_lines) {
                        return self.json_lines(values, &text);
                    }
                    return Err(Error::InvalidJson {
                        path: self.name.clone(),
                        line: e.line(),
                        column: e.column(),
                        message: json_message(&e),
                    });
                }
            }
        }
        // Text: a known text format, or JSON lines after a text header (AG2).
        if let Some(detection) = self.forced(false).or_else(|| sniff::sniff_text(&text)) {
            return self.dispatch_whole(detection, Doc::Text(text));
        }
        let (lines, warnings) = split_lines(&text);
        if lines.len() >= 2
            && lines.len() * 2 >= text.lines().filter(|l| !l.trim().is_empty()).count()
        {
            self.summary.warnings.extend(warnings);
            return self.json_lines(lines, &text);
        }
        Err(self.unrecognized(describe_seen(&text)))
    }

    fn forced(&self, is_lines: bool) -> Option<Detection> {
        self.options.format.map(|f| sniff::forced(f, is_lines))
    }

    fn json_document(&mut self, value: Value) -> Result<(), Error> {
        let detection = match self.forced(false) {
            Some(d) => Some(d),
            None => sniff::sniff_json(&value, &self.name).or_else(|| {
                // A single-line JSONL file of a line-oriented format.
                let lines = [JsonLine {
                    line: 1,
                    value: value.clone(),
                }];
                sniff::sniff_lines(&lines, &self.name).filter(|d| d.framing == Framing::Whole)
            }),
        };
        let Some(detection) = detection else {
            return Err(self.unrecognized(describe_value(&value)));
        };
        self.note(detection);
        match (detection.framing, value) {
            (Framing::Records, Value::Array(items)) => {
                for (index, item) in items.into_iter().enumerate() {
                    self.record(detection.format, item, RecordPos { index, line: None });
                }
                Ok(())
            }
            (_, value) => self.dispatch_whole(detection, Doc::Json(value)),
        }
    }

    fn json_lines(&mut self, lines: Vec<JsonLine>, text: &str) -> Result<(), Error> {
        let detection = self
            .forced(true)
            .or_else(|| sniff::sniff_lines(&lines[..lines.len().min(50)], &self.name));
        let Some(detection) = detection else {
            return Err(self.unrecognized(describe_seen(text)));
        };
        self.note(detection);
        match detection.framing {
            Framing::Records => {
                for (index, line) in lines.into_iter().enumerate() {
                    self.record(
                        detection.format,
                        line.value,
                        RecordPos {
                            index,
                            line: Some(line.line),
                        },
                    );
                }
                Ok(())
            }
            Framing::Whole => self.dispatch_whole(detection, Doc::Lines(lines)),
        }
    }

    fn note(&mut self, detection: Detection) {
        self.summary.format = detection.format;
        self.summary.rule = detection.rule;
    }

    fn dispatch_whole(&mut self, detection: Detection, doc: Doc) -> Result<(), Error> {
        self.note(detection);
        let companions = match &doc {
            Doc::Lines(lines) => (self.companions)(detection.format, lines),
            _ => Vec::new(),
        };
        let input = Input {
            file: self.name.clone(),
            doc,
            companions,
            record: None,
        };
        let result = adapters::parse(detection.format, input);
        self.built(detection, result)
    }

    /// Emits the traces an adapter built from a whole document (`dispatch_whole`, or the
    /// one-pass path of [`streamed`]).
    fn built(&mut self, detection: Detection, result: AdapterResult) -> Result<(), Error> {
        self.note(detection);
        let parsed = result.map_err(|e| Error::Adapter {
            path: self.name.clone(),
            format: detection.format,
            message: e.message,
        })?;
        let many = parsed.len() > 1;
        for (i, p) in parsed.into_iter().enumerate() {
            self.emit(p, if many { Some(i) } else { None });
        }
        Ok(())
    }

    /// One record of a batch. A record that fails is a warning naming its position; the
    /// others still load.
    fn record(&mut self, batch_format: Format, value: Value, pos: RecordPos) {
        let where_ = match pos.line {
            Some(line) => format!("line {line}"),
            None => format!("item {}", pos.index),
        };
        let format = if self.options.format.is_some() {
            batch_format
        } else if let Some((f, _)) = value
            .as_object()
            .and_then(|o| sniff::sniff_object(o, &self.name))
        {
            f
        } else {
            self.failed_records += 1;
            self.warn(format!(
                "{where_}: skipped, not a recognizable trace record"
            ));
            return;
        };
        let input = Input {
            file: self.name.clone(),
            doc: Doc::Json(value),
            companions: Vec::new(),
            record: Some(pos),
        };
        match adapters::parse(format, input) {
            Ok(parsed) => {
                let many = parsed.len() > 1;
                for (sub, p) in parsed.into_iter().enumerate() {
                    // Sub-traces of one record get consecutive indices after the record's own.
                    let index = if many {
                        pos.index * 1000 + sub
                    } else {
                        pos.index
                    };
                    self.emit(p, Some(index));
                }
            }
            Err(e) => {
                self.failed_records += 1;
                self.warn(format!("{where_}: skipped, {}", e.message));
            }
        }
    }

    fn warn(&mut self, message: String) {
        if self.summary.warnings.len() < 500 {
            self.summary.warnings.push(message);
        }
    }

    fn emit(&mut self, parsed: Parsed, index: Option<usize>) {
        self.summary.traces += 1;
        (self.sink)(LoadedTrace {
            trace: parsed.trace,
            labels: parsed.labels,
            source: TraceSource {
                path: self.name.clone(),
                index,
            },
        });
    }

    /// The large-input path: stream array elements or JSON lines.
    fn streamed<R: Read>(&mut self, reader: &mut CountingReader<R>) -> Result<(), Error> {
        let mut buffered = reader.buffered();
        // Skip a BOM and leading whitespace to see the container.
        let first = loop {
            let buf = buffered.fill_buf().map_err(|e| Error::Io {
                path: self.name.clone(),
                source: e,
            })?;
            if buf.is_empty() {
                return Err(Error::Empty {
                    path: self.name.clone(),
                });
            }
            let skip = buf
                .iter()
                .position(|b| !b.is_ascii_whitespace() && !matches!(b, 0xef | 0xbb | 0xbf))
                .unwrap_or(buf.len());
            let byte = buf.get(skip).copied();
            buffered.consume(skip);
            if let Some(b) = byte {
                break b;
            }
        };
        match first {
            b'[' => self.stream_array(buffered),
            b'{' => self.stream_lines(buffered),
            0 => Err(Error::Binary {
                path: self.name.clone(),
                offset: 0,
            }),
            _ => {
                let mut bytes = Vec::new();
                buffered.read_to_end(&mut bytes).map_err(|e| Error::Io {
                    path: self.name.clone(),
                    source: e,
                })?;
                self.whole_buffer(bytes)
            }
        }
    }

    fn stream_array<R: BufRead>(&mut self, reader: R) -> Result<(), Error> {
        let mut de = serde_json::Deserializer::from_reader(reader);
        let mut state = ArrayState {
            run: self,
            detection: None,
            whole: Vec::new(),
            index: 0,
            error: None,
        };
        let result = ArraySeed { state: &mut state }.deserialize(&mut de);
        if let Some(err) = state.error.take() {
            return Err(err);
        }
        if let Err(e) = result {
            let path = state.run.name.clone();
            if state.index > 0 {
                // Elements before the break were read; report the rest as unusable.
                state.run.warn(format!(
                    "stopped at line {}, column {}: {} (items before it were read)",
                    e.line(),
                    e.column(),
                    json_message(&e)
                ));
            } else {
                return Err(Error::InvalidJson {
                    path,
                    line: e.line(),
                    column: e.column(),
                    message: json_message(&e),
                });
            }
        }
        if let Some(detection) = state.detection
            && detection.framing == Framing::Whole
        {
            let items = std::mem::take(&mut state.whole);
            return state
                .run
                .dispatch_whole(detection, Doc::Json(Value::Array(items)));
        }
        Ok(())
    }

    fn stream_lines<R: BufRead>(&mut self, mut reader: R) -> Result<(), Error> {
        let mut head = Vec::new();
        let mut warnings = Vec::new();
        let mut line_no = 0u32;
        let mut raw = Vec::new();
        let io_err = |name: &str, e: io::Error| Error::Io {
            path: name.to_owned(),
            source: e,
        };
        let next_line = |reader: &mut R, raw: &mut Vec<u8>| -> io::Result<bool> {
            raw.clear();
            Ok(reader.read_until(b'\n', raw)? > 0)
        };
        // Read up to 50 lines to detect the format.
        while head.len() < 50 {
            if !next_line(&mut reader, &mut raw).map_err(|e| io_err(&self.name, e))? {
                break;
            }
            line_no += 1;
            if let Some(Ok(value)) = parse_line(&raw, line_no, &mut warnings) {
                head.push(JsonLine {
                    line: line_no,
                    value,
                });
            }
            if line_no == 1 && head.is_empty() {
                // A single huge JSON object spread over many lines: read it whole.
                // The line read so far becomes the buffer: copying it would hold the document
                // twice.
                let mut rest = std::mem::take(&mut raw);
                reader
                    .read_to_end(&mut rest)
                    .map_err(|e| io_err(&self.name, e))?;
                self.summary.streamed = false;
                return self.whole_buffer(rest);
            }
        }
        self.summary.warnings.append(&mut warnings);
        let detection = self
            .forced(true)
            .or_else(|| sniff::sniff_lines(&head, &self.name))
            .ok_or_else(|| {
                self.unrecognized(describe_seen(
                    &head
                        .first()
                        .map(|l| l.value.to_string())
                        .unwrap_or_default(),
                ))
            })?;
        self.note(detection);
        if detection.framing == Framing::Whole {
            let mut lines = head;
            while next_line(&mut reader, &mut raw).map_err(|e| io_err(&self.name, e))? {
                line_no += 1;
                if let Some(Ok(value)) = parse_line(&raw, line_no, &mut self.summary.warnings) {
                    lines.push(JsonLine {
                        line: line_no,
                        value,
                    });
                }
            }
            return self.dispatch_whole(detection, Doc::Lines(lines));
        }
        let mut index = 0usize;
        for line in head {
            self.record(
                detection.format,
                line.value,
                RecordPos {
                    index,
                    line: Some(line.line),
                },
            );
            index += 1;
        }
        while next_line(&mut reader, &mut raw).map_err(|e| io_err(&self.name, e))? {
            line_no += 1;
            let mut warnings = Vec::new();
            if let Some(Ok(value)) = parse_line(&raw, line_no, &mut warnings) {
                self.record(
                    detection.format,
                    value,
                    RecordPos {
                        index,
                        line: Some(line_no),
                    },
                );
                index += 1;
            }
            for w in warnings {
                self.warn(w);
            }
        }
        Ok(())
    }
}

/// Replaces bare `NaN`, `Infinity` and `-Infinity` tokens outside strings with `null`.
/// Returns `None` when there are none (so the original parse error stands).
fn replace_non_finite(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut changed = false;
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| bytes[i..].starts_with(t.as_bytes()));
        if let Some(token) = token {
            out.push_str(&text[last..i]);
            out.push_str("null");
            i += token.len();
            last = i;
            changed = true;
            continue;
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// Parses one raw JSONL line. `None` for blank lines; `Some(Err)` (with a warning) for bad ones.
fn parse_line(raw: &[u8], line_no: u32, warnings: &mut Vec<String>) -> Option<Result<Value, ()>> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return None;
    }
    let text = if let Ok(s) = std::str::from_utf8(trimmed) {
        std::borrow::Cow::Borrowed(s)
    } else {
        warnings.push(format!(
            "line {line_no}: invalid UTF-8; bad bytes replaced with U+FFFD"
        ));
        String::from_utf8_lossy(trimmed)
    };
    let parsed = serde_json::from_str::<Value>(&text).or_else(|e| {
        replace_non_finite(&text).map_or(Err(e), |fixed| serde_json::from_str(&fixed))
    });
    Some(parsed.map_err(|e| {
        warnings.push(format!(
            "line {line_no}: skipped, not valid JSON ({})",
            json_message(&e)
        ));
    }))
}

struct ArrayState<'r, 's, 'c> {
    run: &'r mut Run<'s, 'c>,
    detection: Option<Detection>,
    whole: Vec<Value>,
    index: usize,
    error: Option<Error>,
}

struct ArraySeed<'a, 'r, 's, 'c> {
    state: &'a mut ArrayState<'r, 's, 'c>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of traces")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.state;
        while let Some(item) = seq.next_element::<Value>()? {
            if state.error.is_some() {
                continue;
            }
            if state.detection.is_none() {
                let probe = Value::Array(vec![item.clone()]);
                let detection = state
                    .run
                    .forced(false)
                    .or_else(|| sniff::sniff_json(&probe, &state.run.name));
                if let Some(d) = detection {
                    state.run.note(d);
                    state.detection = Some(d);
                } else {
                    state.error = Some(state.run.unrecognized(describe_seen(&probe.to_string())));
                    continue;
                }
            }
            let Some(detection) = state.detection else {
                continue;
            };
            if detection.framing == Framing::Whole {
                state.whole.push(item);
            } else {
                state.run.record(
                    detection.format,
                    item,
                    RecordPos {
                        index: state.index,
                        line: None,
                    },
                );
            }
            state.index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with_threshold(
        text: &str,
        threshold: usize,
    ) -> Result<(FileSummary, Vec<LoadedTrace>), Error> {
        let options = LoadOptions {
            stream_threshold: threshold,
            ..LoadOptions::default()
        };
        load_bytes("mem.json", text.as_bytes(), &options)
    }

    fn tau_record(i: usize) -> String {
        format!(
            r#"{{"task_id": {i}, "trial": 0, "reward": 1.0, "traj": [{{"role": "user", "content": "hello {i}"}}, {{"role": "assistant", "content": "hi"}}]}}"#
        )
    }

    #[test]
    fn streams_a_large_json_array_record_by_record() {
        let records: Vec<String> = (0..50).map(tau_record).collect();
        let text = format!("  [{}]", records.join(",\n"));
        let (summary, traces) = load_with_threshold(&text, 256).unwrap();
        assert!(summary.streamed);
        assert_eq!(summary.format, Format::TauBench);
        assert_eq!(traces.len(), 50);
        assert_eq!(traces[49].source.index, Some(49));
        let (small, same) = load_with_threshold(&text, 1 << 20).unwrap();
        assert!(!small.streamed);
        assert_eq!(same.len(), 50);
        assert_eq!(same[7].trace, traces[7].trace);
    }

    #[test]
    fn streams_large_jsonl_and_reports_broken_lines() {
        let mut lines: Vec<String> = (0..60).map(tau_record).collect();
        lines[30] = "{\"task_id\": 30, \"traj\": [".to_owned();
        let text = lines.join("\n");
        let (summary, traces) = load_with_threshold(&text, 300).unwrap();
        assert!(summary.streamed);
        assert_eq!(traces.len(), 59);
        assert!(
            summary.warnings.iter().any(|w| w.starts_with("line 31:")),
            "{:?}",
            summary.warnings
        );
        assert_eq!(traces[30].source.index, Some(30));
    }

    #[test]
    fn a_large_single_document_is_read_whole() {
        let doc = format!(
            r#"{{"messages": [{}]}}"#,
            (0..200)
                .map(|i| format!(r#"{{"role": "user", "content": "m{i}"}}"#))
                .collect::<Vec<_>>()
                .join(",\n")
        );
        let (summary, traces) = load_with_threshold(&doc, 100).unwrap();
        assert_eq!(summary.format, Format::GenericChat);
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].trace.spans.len(), 200);
    }

    #[test]
    fn a_large_truncated_array_keeps_what_was_read() {
        let records: Vec<String> = (0..20).map(tau_record).collect();
        let mut text = format!("[{}", records.join(","));
        text.push_str(r#",{"task_id": 99, "traj": [{"role""#);
        let (summary, traces) = load_with_threshold(&text, 100).unwrap();
        assert_eq!(traces.len(), 20);
        assert!(
            summary
                .warnings
                .iter()
                .any(|w| w.contains("stopped at line"))
        );
    }

    #[test]
    fn concatenated_pretty_objects_are_a_stream() {
        let text = "{\n  \"role\": \"user\",\n  \"content\": \"a\"\n}\n{\n  \"role\": \"assistant\",\n  \"content\": \"b\"\n}\n";
        let (summary, traces) = load_with_threshold(text, 1 << 20).unwrap();
        assert_eq!(summary.format, Format::GenericChat);
        assert_eq!(traces[0].trace.spans.len(), 2);
        assert_eq!(traces[0].trace.spans[1].source.line, Some(5));
    }

    #[test]
    fn python_nan_reads_as_null() {
        let (summary, traces) = load_with_threshold(
            r#"{"messages": [{"role": "user", "content": "x", "score": NaN}]}"#,
            1 << 20,
        )
        .unwrap();
        assert_eq!(traces.len(), 1);
        assert!(summary.warnings.iter().any(|w| w.contains("NaN")));
        assert_eq!(
            replace_non_finite(r#"{"a": "NaN", "b": -Infinity}"#).unwrap(),
            r#"{"a": "NaN", "b": null}"#
        );
    }

    #[test]
    fn zstd_is_read_transparently() {
        // A zstd frame holding `{"messages":[{"role":"user","content":"hi"}]}`, stored raw
        // (block type 0), so the test needs no encoder.
        let payload = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, payload.len() as u8];
        let header = (payload.len() as u32) << 3 | 1; // last block, raw
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(payload);
        let (summary, traces) = load_bytes("x.json.zst", &frame, &LoadOptions::default()).unwrap();
        assert_eq!(summary.compression, Some("zstd"));
        assert_eq!(traces.len(), 1);
    }
}
