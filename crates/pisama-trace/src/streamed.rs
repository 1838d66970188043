//! One pass over a whole JSON object document that hands the span list of the two large
//! formats to their adapter element by element, instead of building the document's `Value`
//! tree first.
//!
//! A 100,000-span file parsed into a `Value` is several hundred MB of maps that are all alive
//! while the trace is built, and most of the load time was the kernel zeroing those fresh
//! pages. Here the top-level object is read key by key: every key is parsed to a `Value` as
//! usual, except the span list of a candidate format (`spans` of the incumbent's envelope,
//! `resourceSpans` of OTLP/JSON), whose elements go to the adapter one at a time and are
//! dropped once read, so the next element reuses the same memory.
//!
//! The sniff rules stay authoritative. They run on a *skeleton*: the document with the
//! streamed array cut down to its first element, which is an object. Every rule that reads
//! these arrays looks only at whether they are arrays, or at their first object element, so the
//! skeleton gets the same decision as the whole document. When the decision is not the
//! candidate's format, the caller reads the text again the general way ([`Read::Reparse`]);
//! when no array was streamed, the skeleton *is* the document ([`Read::Document`]) and nothing
//! is read twice.
//!
//! Every element is still parsed by `serde_json` as the general path would (the spans after
//! the first from their own text, in parallel batches: [`read_span_elements`]), so nesting
//! limits and number ranges are those of the general path; any error sends the caller back to
//! the general path, which reports it, with its position, as before.

use std::fmt;

use rayon::prelude::*;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::adapters::otlp::{Collected, DocPlace};
use crate::adapters::pisama_spans::{ReadySpan, SpanElement, SpanStream};
use crate::adapters::{AdapterResult, Doc, Input};
use crate::model::Format;
use crate::sniff::{self, Detection, Framing};

/// What reading an object document gave.
pub(crate) enum Read {
    /// Nothing was streamed: the whole document, exactly as `serde_json` parses it.
    Document(Value),
    /// A span list was streamed and the sniff rules chose its format: the adapter's result.
    Built(Detection, AdapterResult),
    /// A span list was streamed but the document turned out to be something else (or an odd
    /// shape, such as the span key given twice): read the text again the general way.
    Reparse,
}

/// Reads `text`, a JSON document starting with `{`, named `file` in source references.
/// An error means the text is not valid JSON; the general path reports it.
pub(crate) fn read_object(text: &str, file: &str) -> Result<Read, serde_json::Error> {
    let input = Input {
        file: file.to_owned(),
        doc: Doc::Text(String::new()),
        companions: Vec::new(),
        record: None,
    };
    let mut top = Top {
        input: &input,
        text_len: text.len(),
        entries: Vec::new(),
        stream: None,
        streamed_key: None,
        streamed_key_repeated: false,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    TopSeed { top: &mut top }.deserialize(&mut de)?;
    de.end()?;
    let Top {
        entries,
        stream,
        streamed_key,
        streamed_key_repeated,
        ..
    } = top;
    // The map `serde_json` would have built: a repeated key keeps its first position and its
    // last value.
    let mut skeleton = Map::with_capacity(entries.len());
    for (key, value) in entries {
        skeleton.insert(key, value);
    }
    let Some(stream) = stream else {
        return Ok(Read::Document(Value::Object(skeleton)));
    };
    if streamed_key_repeated || matches!(stream, Stream::NotAList) {
        return Ok(Read::Reparse);
    }
    let skeleton = Value::Object(skeleton);
    let Some(detection) = sniff::sniff_json(&skeleton, file) else {
        return Ok(Read::Reparse);
    };
    let Value::Object(mut skeleton) = skeleton else {
        return Ok(Read::Reparse);
    };
    let result = match stream {
        Stream::PisamaSpans(spans) if detection.format == Format::PisamaSpans => {
            // What the adapter takes from the envelope besides the spans.
            let trace_id = match skeleton.remove("trace_id") {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            spans.finish(&input, trace_id, skeleton.remove("metadata"))
        }
        // The adapter reads `resourceSpans` before `resource_spans` when a document has both.
        Stream::Otlp(collected)
            if detection.format == Format::Otlp
                && !(streamed_key.as_deref() == Some("resource_spans")
                    && skeleton.get("resourceSpans").is_some_and(Value::is_array)) =>
        {
            collected.finish(&input)
        }
        _ => return Ok(Read::Reparse),
    };
    debug_assert_eq!(detection.framing, Framing::Whole);
    Ok(Read::Built(detection, result))
}

/// A guess at the number of spans in a document of `text_len` bytes whose first span is
/// `first`, to size the span table once: growing it by doubling copies it and touches fresh
/// memory each time. Only capacity depends on it; a span is taken to be at least 64 bytes.
fn expected_spans(text_len: usize, first: &Value) -> usize {
    let first_len = serde_json::to_string(first).map_or(0, |s| s.len());
    text_len / first_len.max(64)
}

/// The same guess for OTLP, from the first `resourceSpans` element and its span count.
fn expected_otlp_spans(text_len: usize, first: &Value) -> usize {
    let spans: usize = ["scopeSpans", "scope_spans"]
        .iter()
        .filter_map(|key| first.get(key).and_then(Value::as_array))
        .flatten()
        .filter_map(|scope| scope.get("spans").and_then(Value::as_array))
        .map(Vec::len)
        .sum();
    let first_len = serde_json::to_string(first).map_or(0, |s| s.len());
    // At least 64 bytes a span.
    (text_len / first_len.max(1))
        .saturating_mul(spans)
        .min(text_len / 64)
}

/// Span elements parsed per parallel batch. A document with fewer spans than this after
/// the first is read on the calling thread alone.
const PARSE_BATCH: usize = 1024;

/// Deepest nesting of a span element read in a batch, the element itself being level 1.
/// `serde_json` fails at 128 levels; inside the document an element starts two levels down
/// (the object, the `spans` array), so it may nest 125 deep, where parsed on its own it could
/// nest 127. A deeper element is not parsed here: the read fails, and the general path reports
/// the error as before.
const MAX_ELEMENT_DEPTH: usize = 125;

/// Reads the span elements after the first into `spans`, in document order. The document's
/// deserializer only finds where each element ends (as a `&RawValue`, checking the JSON
/// syntax on the way); the elements of a batch are then parsed and converted to spans on the
/// rayon pool while this thread finds the next batch and adds the one before to the trace.
/// Parsing and converting were most of the reading and ran on one core. Each element is
/// parsed by the same `SpanElement` deserializer and converted by the same code as before, so
/// a document that reads without error gives the same trace; any error (including an element
/// nested deeper than the document would allow) fails the read, and the caller reads the text
/// again the general way, which reports it.
fn read_span_elements<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    spans: &mut SpanStream,
    input: &Input,
) -> Result<(), A::Error> {
    // Index of the first element of `current` (the first span was read before).
    let mut first = 1;
    let mut current = next_batch(seq)?;
    if current.len() < PARSE_BATCH {
        // A small document: not worth waking the pool.
        for (k, raw) in current.iter().enumerate() {
            let i = first + k;
            let element = parse_element(raw).map_err(de::Error::custom)?;
            spans.push_element(element, i, input.at(format!("/spans/{i}")));
        }
        return Ok(());
    }
    let mut ready: Vec<ReadySpan> = Vec::new();
    while !(current.is_empty() && ready.is_empty()) {
        // A batch shorter than a full one was the last.
        let more = current.len() == PARSE_BATCH;
        let mut converting = Ok(Vec::new());
        let mut scanned = Ok(Vec::new());
        rayon::in_place_scope(|scope| {
            scope.spawn(|_| {
                converting = current
                    .par_iter()
                    .enumerate()
                    .with_min_len(64)
                    .map(|(k, raw)| {
                        let i = first + k;
                        let element = parse_element(raw)?;
                        Ok(ReadySpan::new(element, i, input.at(format!("/spans/{i}"))))
                    })
                    .collect::<Result<Vec<_>, serde_json::Error>>();
            });
            if more {
                scanned = next_batch(seq);
            }
            // The batch before, in order.
            let before = first - ready.len();
            for (k, span) in ready.drain(..).enumerate() {
                spans.push_ready(span, before + k);
            }
        });
        ready = converting.map_err(de::Error::custom)?;
        first += current.len();
        current = scanned?;
    }
    Ok(())
}

/// The text of the next [`PARSE_BATCH`] elements at most (fewer at the end of the array).
fn next_batch<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Vec<&'de str>, A::Error> {
    let mut batch = Vec::with_capacity(PARSE_BATCH);
    while batch.len() < PARSE_BATCH {
        match seq.next_element::<&'de RawValue>()? {
            Some(raw) => batch.push(raw.get()),
            None => break,
        }
    }
    Ok(batch)
}

/// One span element parsed on its own (see [`read_span_elements`]).
fn parse_element(raw: &str) -> Result<SpanElement, serde_json::Error> {
    if nesting_depth(raw) > MAX_ELEMENT_DEPTH {
        return Err(de::Error::custom("span element nested too deeply"));
    }
    serde_json::from_str(raw)
}

/// The deepest nesting of arrays and objects in `raw`, valid JSON text, or (where that is
/// at most [`MAX_ELEMENT_DEPTH`]) its number of opening brackets, which bounds it: a quick
/// count that settles almost every element.
fn nesting_depth(raw: &str) -> usize {
    let bytes = raw.as_bytes();
    let opening = bytes.iter().filter(|&&b| b == b'{' || b == b'[').count();
    if opening <= MAX_ELEMENT_DEPTH {
        return opening;
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The span list being streamed, and where its elements go.
enum Stream {
    PisamaSpans(Box<SpanStream>),
    Otlp(Collected),
    /// The key's value is not an array, which no rule of these formats accepts.
    NotAList,
}

struct Top<'i> {
    input: &'i Input,
    text_len: usize,
    /// The top-level keys in document order; the streamed key holds its first element only.
    entries: Vec<(String, Value)>,
    stream: Option<Stream>,
    /// The key whose value was handed to `stream`.
    streamed_key: Option<String>,
    streamed_key_repeated: bool,
}

/// The keys whose arrays may be streamed, and the format each would be.
fn candidate(key: &str) -> Option<Format> {
    match key {
        "spans" => Some(Format::PisamaSpans),
        "resourceSpans" | "resource_spans" => Some(Format::Otlp),
        _ => None,
    }
}

struct TopSeed<'t, 'i> {
    top: &'t mut Top<'i>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let top = self.top;
        while let Some(key) = map.next_key::<String>()? {
            let fresh = top.stream.is_none() && !top.entries.iter().any(|(k, _)| *k == key);
            let value = if let Some(format) = candidate(&key).filter(|_| fresh) {
                let (value, stream) = map.next_value_seed(ListSeed {
                    format,
                    text_len: top.text_len,
                    key: &key,
                    input: top.input,
                })?;
                if stream.is_some() {
                    top.stream = stream;
                    top.streamed_key = Some(key.clone());
                }
                value
            } else {
                if top.streamed_key.as_deref() == Some(key.as_str()) {
                    top.streamed_key_repeated = true;
                }
                map.next_value::<Value>()?
            };
            top.entries.push((key, value));
        }
        Ok(())
    }
}

/// Reads the value of a candidate key. An array whose first element is an object that fits
/// the format is streamed; anything else is parsed whole, as a `Value`. Returns the value for
/// the skeleton and, when streamed, the adapter's state.
struct ListSeed<'k, 'i> {
    format: Format,
    /// Length of the whole document.
    text_len: usize,
    key: &'k str,
    input: &'i Input,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = (Value, Option<Stream>);

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// A value that is not an array: the format's rules cannot match on it, so it is only
/// checked and the caller reads the document again (rare: `"spans": null`).
fn not_a_list() -> (Value, Option<Stream>) {
    (Value::Null, Some(Stream::NotAList))
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = (Value, Option<Stream>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(not_a_list())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(not_a_list())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(not_a_list())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(not_a_list())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(not_a_list())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(not_a_list())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(not_a_list())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Some(first) = seq.next_element::<Value>()? else {
            return Ok((Value::Array(Vec::new()), None));
        };
        let fits = first.as_object().is_some_and(|o| match self.format {
            Format::PisamaSpans => sniff::is_pisama_span(o),
            _ => true,
        });
        if !fits {
            let mut items = vec![first];
            while let Some(item) = seq.next_element::<Value>()? {
                items.push(item);
            }
            return Ok((Value::Array(items), None));
        }
        let skeleton = Value::Array(vec![first.clone()]);
        let stream = if self.format == Format::PisamaSpans {
            let mut spans = Box::new(SpanStream::with_capacity(expected_spans(
                self.text_len,
                &first,
            )));
            spans.push(first, 0, self.input.at("/spans/0"));
            read_span_elements(&mut seq, &mut spans, self.input)?;
            Stream::PisamaSpans(spans)
        } else {
            // The JSON Pointer of the array, as the adapter names it.
            let container = if self.key == "resourceSpans" {
                "/resourceSpans"
            } else {
                "/resource_spans"
            };
            let mut collected = Collected::default();
            collected.first_trace_capacity = expected_otlp_spans(self.text_len, &first);
            let place = DocPlace {
                line: None,
                pointer: String::new(),
            };
            let mut r = 0;
            let mut next = Some(first);
            while let Some(mut item) = next {
                collected.read_resource_spans(
                    self.input,
                    &mut item,
                    r,
                    container,
                    &place,
                    "the document",
                );
                // Dropped before the next element is parsed, which then reuses its memory.
                drop(item);
                r += 1;
                next = seq.next_element::<Value>()?;
            }
            Stream::Otlp(collected)
        };
        Ok((skeleton, Some(stream)))
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::adapters;

    /// The general path: the whole document as one `Value`, sniffed, handed to the adapter.
    fn general(text: &str, file: &str) -> Option<(Detection, AdapterResult)> {
        let value: Value = serde_json::from_str(text).ok()?;
        let detection = sniff::sniff_json(&value, file)?;
        let input = Input {
            file: file.to_owned(),
            doc: Doc::Json(value),
            companions: Vec::new(),
            record: None,
        };
        Some((detection, adapters::parse(detection.format, input)))
    }

    /// What the one-pass read gave, after checking it against the general path.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Built,
        Document,
        Reparse,
        Invalid,
    }

    fn check(text: &str, file: &str) -> Outcome {
        match read_object(text, file) {
            Ok(Read::Built(detection, result)) => {
                let (expected, expected_result) =
                    general(text, file).expect("the general path reads it too");
                assert_eq!(detection.format, expected.format, "{file}");
                assert_eq!(detection.rule, expected.rule, "{file}");
                assert_eq!(detection.framing, expected.framing, "{file}");
                match (result, expected_result) {
                    (Ok(got), Ok(want)) => {
                        assert_eq!(got.len(), want.len(), "{file}");
                        for (g, w) in got.iter().zip(&want) {
                            assert_eq!(g.trace, w.trace, "{file}");
                            assert_eq!(g.labels, w.labels, "{file}");
                            // Same key order too (map equality ignores it).
                            assert_eq!(
                                serde_json::to_string(&g.trace).unwrap(),
                                serde_json::to_string(&w.trace).unwrap(),
                                "{file}"
                            );
                        }
                    }
                    (Err(got), Err(want)) => assert_eq!(got.message, want.message, "{file}"),
                    (got, want) => panic!("{file}: streamed {got:?}, general {want:?}"),
                }
                Outcome::Built
            }
            Ok(Read::Document(value)) => {
                let expected: Value = serde_json::from_str(text).unwrap();
                assert_eq!(
                    serde_json::to_string(&value).unwrap(),
                    serde_json::to_string(&expected).unwrap(),
                    "{file}"
                );
                Outcome::Document
            }
            Ok(Read::Reparse) => {
                assert!(serde_json::from_str::<Value>(text).is_ok(), "{file}");
                Outcome::Reparse
            }
            Err(_) => {
                assert!(serde_json::from_str::<Value>(text).is_err(), "{file}");
                Outcome::Invalid
            }
        }
    }

    #[test]
    fn fixtures_read_the_same_as_the_general_path() {
        let mut built = 0;
        let mut others = 0;
        for entry in crate::load::walk(&crate::testing::fixtures_dir()).unwrap() {
            let Ok(text) = std::fs::read_to_string(&entry) else {
                continue;
            };
            let start = text.trim_start_matches('\u{feff}').trim_start();
            if !start.starts_with('{') {
                continue;
            }
            let name = entry.display().to_string();
            match check(start, &name) {
                Outcome::Built => built += 1,
                _ => others += 1,
            }
        }
        // The object fixtures of the two formats stream: generated-30 and three OTLP files
        // (the fourth keeps its spans under `result`, which is read the general way).
        assert!(built >= 4, "only {built} fixtures streamed");
        assert!(others > 10, "only {others} other object fixtures");
    }

    /// A deterministic pseudo-random sequence (no dependency, reproducible failures).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    const WORDS: [&str; 8] = [
        "alpha",
        "beta",
        "report",
        "error",
        "tool",
        "search",
        "Berlin",
        "quote\\\"d",
    ];

    fn incumbent_span(rng: &mut Lcg, i: u64) -> String {
        let kinds = [
            "agent",
            "llm",
            "tool",
            "handoff",
            "retrieval",
            "task",
            "user_input",
            "weird",
        ];
        let statuses = ["ok", "error", "timeout", "unset", ""];
        let kind = kinds[rng.next(kinds.len() as u64) as usize];
        let mut s = format!(r#"{{"span_id": "s{i}", "kind": "{kind}""#);
        if rng.next(3) > 0 && i > 0 {
            let _ = write!(s, r#", "parent_id": "s{}""#, rng.next(i));
        } else if rng.next(2) == 0 {
            s.push_str(r#", "parent_id": null"#);
        }
        if rng.next(4) > 0 {
            let _ = write!(s, r#", "name": "{}""#, WORDS[rng.next(8) as usize]);
        }
        let _ = write!(
            s,
            r#", "status": "{}""#,
            statuses[rng.next(statuses.len() as u64) as usize]
        );
        if rng.next(5) == 0 {
            s.push_str(r#", "error_message": "it broke""#);
        }
        match rng.next(3) {
            0 => {
                let _ = write!(s, r#", "start_time": "2026-01-01T00:00:{:02}Z""#, i % 60);
            }
            1 => {
                let _ = write!(s, r#", "start_time": {}"#, 1_767_225_600 + i);
            }
            _ => {}
        }
        if rng.next(2) == 0 {
            s.push_str(r#", "end_time": "2026-01-01T00:01:00+00:00""#);
        }
        let _ = write!(
            s,
            r#", "attributes": {{"agent_name": "{}", "model": "m{}", "gen_ai.usage.input_tokens": {}, "nested": {{"a": [1, 2.5, true, null]}}}}"#,
            WORDS[rng.next(3) as usize],
            rng.next(3),
            rng.next(1000)
        );
        match rng.next(4) {
            0 => s.push_str(r#", "input_data": {"query": "what is beta", "k": 3}"#),
            1 => s.push_str(r#", "input_data": "plain text in""#),
            2 => s.push_str(r#", "input_data": [1, 2]"#),
            _ => {}
        }
        match rng.next(4) {
            0 => s.push_str(r#", "output_data": {"result": "done", "extra": {"x": 1}}"#),
            1 => s.push_str(r#", "output_data": null"#),
            2 => s.push_str(r#", "output_data": {"nothing": "known"}"#),
            _ => {}
        }
        if rng.next(4) == 0 {
            s.push_str(
                r#", "events": [{"name": "retry", "timestamp": "2026-01-01T00:00:01Z", "attributes": {"n": 1}}, 7]"#,
            );
        }
        if rng.next(6) == 0 {
            s.push_str(r#", "trace_id": "from-span""#);
        }
        if rng.next(8) == 0 {
            s.push_str(r#", "unknown_key": {"deep": [[]]}, "kind": "tool""#);
        }
        s.push('}');
        s
    }

    fn incumbent_doc(rng: &mut Lcg, spans: u64) -> String {
        let mut list = Vec::new();
        for i in 0..spans {
            list.push(if i > 0 && rng.next(15) == 0 {
                ["42", "\"text\"", "null", "[]"][rng.next(4) as usize].to_owned()
            } else {
                incumbent_span(rng, i)
            });
        }
        let spans = format!(r#""spans": [{}]"#, list.join(", "));
        let meta = r#""metadata": {"session_id": "sess", "nulled": null, "n": 2}"#;
        match rng.next(4) {
            0 => format!(r#"{{"trace_id": "t-1", {spans}, {meta}}}"#),
            1 => format!(r#"{{{spans}, "trace_id": "", {meta}}}"#),
            2 => format!("{{{meta}, {spans}}}"),
            _ => format!(r#"{{{spans}, "trace_id": 5}}"#),
        }
    }

    fn otlp_span(rng: &mut Lcg, trace: u64, i: u64) -> String {
        let mut s = format!(
            r#"{{"traceId": "{trace:032x}", "spanId": "{:016x}", "name": "{}""#,
            i + 1,
            [
                "invoke_agent Planner",
                "chat gpt-4o",
                "execute_tool search",
                "step"
            ][rng.next(4) as usize]
        );
        if i > 0 && rng.next(3) > 0 {
            let _ = write!(s, r#", "parentSpanId": "{:016x}""#, rng.next(i) + 1);
        }
        let _ = write!(
            s,
            r#", "kind": {}, "startTimeUnixNano": "{}", "endTimeUnixNano": {}"#,
            rng.next(6),
            1_767_225_600_000_000_000_u64 + i * 1_000_000,
            1_767_225_600_000_000_000_u64 + i * 1_000_000 + 500
        );
        let op = ["invoke_agent", "chat", "execute_tool", "create_agent"][rng.next(4) as usize];
        let _ = write!(
            s,
            r#", "attributes": [{{"key": "gen_ai.operation.name", "value": {{"stringValue": "{op}"}}}}, {{"key": "gen_ai.agent.name", "value": {{"stringValue": "{}"}}}}, {{"key": "gen_ai.usage.input_tokens", "value": {{"intValue": "{}"}}}}, {{"key": "gen_ai.tool.name", "value": {{"stringValue": "search"}}}}, {{"key": "input.value", "value": {{"stringValue": "{}"}}}}]"#,
            WORDS[rng.next(3) as usize],
            rng.next(500),
            WORDS[rng.next(8) as usize]
        );
        if rng.next(3) == 0 {
            s.push_str(r#", "status": {"code": 2, "message": "failed"}"#);
        }
        if rng.next(4) == 0 {
            s.push_str(
                r#", "events": [{"name": "exception", "timeUnixNano": "1767225600000000001", "attributes": [{"key": "exception.message", "value": {"stringValue": "boom"}}]}]"#,
            );
        }
        s.push('}');
        s
    }

    fn otlp_doc(rng: &mut Lcg, resources: u64, key: &str) -> String {
        let mut list = Vec::new();
        let mut i = 0;
        for r in 0..resources {
            let mut scopes = Vec::new();
            for sc in 0..=rng.next(2) {
                let mut spans = Vec::new();
                for _ in 0..rng.next(6) {
                    let trace = rng.next(3);
                    spans.push(if rng.next(20) == 0 {
                        "\"not a span\"".to_owned()
                    } else {
                        otlp_span(rng, trace, i)
                    });
                    i += 1;
                }
                scopes.push(format!(
                    r#"{{"scope": {{"name": "lib{sc}", "version": "1.{sc}"}}, "schemaUrl": "https://opentelemetry.io/schemas/gen-ai/1.3{sc}.0", "spans": [{}]}}"#,
                    spans.join(", ")
                ));
            }
            let scope_key = if rng.next(5) == 0 {
                "scope_spans"
            } else {
                "scopeSpans"
            };
            list.push(if rng.next(12) == 0 {
                r#"{"resource": {}}"#.to_owned()
            } else {
                format!(
                    r#"{{"resource": {{"attributes": [{{"key": "service.name", "value": {{"stringValue": "svc{r}"}}}}, {{"key": "pisama.trace.task", "value": {{"stringValue": "task {r}"}}}}]}}, "{scope_key}": [{}]}}"#,
                    scopes.join(", ")
                )
            });
        }
        format!(r#"{{"{key}": [{}]}}"#, list.join(", "))
    }

    #[test]
    fn generated_incumbent_documents_read_the_same() {
        let mut rng = Lcg(7);
        for n in 0..60 {
            let doc = incumbent_doc(&mut rng, 1 + n % 23);
            assert_eq!(
                check(&doc, &format!("gen-{n}.json")),
                Outcome::Built,
                "{doc}"
            );
        }
    }

    #[test]
    fn generated_otlp_documents_read_the_same() {
        let mut rng = Lcg(11);
        for n in 0..60 {
            let key = if n % 3 == 0 {
                "resource_spans"
            } else {
                "resourceSpans"
            };
            let doc = otlp_doc(&mut rng, 1 + n % 7, key);
            assert_eq!(
                check(&doc, &format!("gen-{n}.json")),
                Outcome::Built,
                "{doc}"
            );
        }
    }

    #[test]
    fn large_documents_read_the_same() {
        let mut rng = Lcg(13);
        let incumbent = incumbent_doc(&mut rng, 4000);
        let otlp = otlp_doc(&mut rng, 700, "resourceSpans");
        for doc in [incumbent, otlp] {
            assert!(doc.len() > 1 << 20, "{}", doc.len());
            assert_eq!(check(&doc, "large.json"), Outcome::Built);
            // Broken near the end, after thousands of spans went to the adapter: the general
            // path reports it.
            let cut = &doc[..doc.len() - 300];
            assert_eq!(check(cut, "large.json"), Outcome::Invalid);
        }
    }

    #[test]
    fn odd_shapes_fall_back_or_match() {
        let span = r#"{"span_id": "a", "name": "x", "kind": "llm"}"#;
        let cases = [
            // The span key twice: the general path keeps the last array.
            (
                format!(r#"{{"spans": [{span}], "spans": [{span}, {span}]}}"#),
                Outcome::Reparse,
            ),
            // OTLP's rule comes first: not the incumbent's format after all.
            (
                format!(r#"{{"spans": [{span}], "resourceSpans": []}}"#),
                Outcome::Reparse,
            ),
            // Both OTLP keys: the adapter reads `resourceSpans`.
            (
                r#"{"resource_spans": [{"scopeSpans": [{"spans": [{"spanId": "01"}]}]}], "resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "02"}]}]}]}"#
                    .to_owned(),
                Outcome::Reparse,
            ),
            (r#"{"spans": null, "x": 1}"#.to_owned(), Outcome::Reparse),
            (r#"{"spans": {"a": [1]}}"#.to_owned(), Outcome::Reparse),
            (r#"{"spans": []}"#.to_owned(), Outcome::Document),
            (
                format!(r#"{{"spans": [1, {span}]}}"#),
                Outcome::Document,
            ),
            // TRAIL spans are not the incumbent's.
            (
                r#"{"trace_id": "t", "spans": [{"span_id": "a", "span_attributes": {}}]}"#
                    .to_owned(),
                Outcome::Document,
            ),
            (
                format!(r#"{{"spans": [{span}, {span}"#),
                Outcome::Invalid,
            ),
            (
                format!(r#"{{"spans": [{span}, {}]}}"#, "[".repeat(200) + &"]".repeat(200)),
                Outcome::Invalid,
            ),
            (
                format!(r#"{{"spans": [{span}, 1e999]}}"#),
                Outcome::Invalid,
            ),
            (format!(r#"{{"spans": [{span}]}} x"#), Outcome::Invalid),
            (format!(r#"{{"spans": [{span}]}}"#), Outcome::Built),
        ];
        for (doc, want) in cases {
            assert_eq!(check(&doc, "odd.json"), want, "{doc}");
        }
    }

    #[test]
    fn batched_elements_match_the_general_path() {
        // Past the first element, spans are cut out of the text and parsed on their own, in
        // batches on several threads: odd elements anywhere in a batch, at its edges and in
        // the last (short, full or empty) batch must read as in the general path.
        let span = |i: usize, extra: &str| {
            format!(r#"{{"span_id": "s{i}", "name": "x [ {{ \" \\", "kind": "llm"{extra}}}"#)
        };
        let doc = |n: usize, odd_at: usize, odd: &str| {
            let spans: Vec<String> = (0..n)
                .map(|i| {
                    if i == odd_at {
                        odd.to_owned()
                    } else {
                        span(i, "")
                    }
                })
                .collect();
            format!("{{\"spans\": [\n{}\n]}}", spans.join(",\n  "))
        };
        for n in [
            PARSE_BATCH,
            PARSE_BATCH + 1,
            2 * PARSE_BATCH + 1,
            3 * PARSE_BATCH,
        ] {
            for odd_at in [1, PARSE_BATCH, PARSE_BATCH + 1, n - 1] {
                if odd_at >= n {
                    continue;
                }
                assert_eq!(check(&doc(n, odd_at, "42"), "odd.json"), Outcome::Built);
                assert_eq!(
                    check(&doc(n, odd_at, r#"{"span_id": }"#), "odd.json"),
                    Outcome::Invalid
                );
                for depth in 121..=126 {
                    let deep = "[".repeat(depth) + &"]".repeat(depth);
                    let text = doc(
                        n,
                        odd_at,
                        &span(odd_at, &format!(r#", "attributes": {{"d": {deep}}}"#)),
                    );
                    let streamed_ok = !matches!(check(&text, "deep.json"), Outcome::Invalid);
                    assert_eq!(
                        streamed_ok,
                        serde_json::from_str::<Value>(&text).is_ok(),
                        "{n} {odd_at} {depth}"
                    );
                }
            }
        }
    }

    #[test]
    fn nesting_at_the_limit_matches_the_general_path() {
        // Around serde_json's depth limit the streamed elements must fail or pass exactly
        // where the whole-document parse does.
        for depth in 120..130 {
            let deep = "[".repeat(depth) + &"]".repeat(depth);
            let doc = format!(
                r#"{{"spans": [{{"span_id": "a", "name": "x", "attributes": {{"d": {deep}}}}}]}}"#
            );
            let streamed_ok = !matches!(check(&doc, "deep.json"), Outcome::Invalid);
            assert_eq!(
                streamed_ok,
                serde_json::from_str::<Value>(&doc).is_ok(),
                "{depth}"
            );
        }
    }
}
