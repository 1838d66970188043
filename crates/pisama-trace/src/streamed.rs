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
//! Every element is still parsed as a `Value` by the same deserializer, from the document's
//! root, so nesting limits, number ranges and error positions are those of the general path;
//! any error sends the caller back to the general path, which reports it as before.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::adapters::otlp::{Collected, DocPlace};
use crate::adapters::pisama_spans::SpanStream;
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
        Stream::Otlp(collected) if detection.format == Format::Otlp => collected.finish(&input),
        _ => return Ok(Read::Reparse),
    };
    debug_assert_eq!(detection.framing, Framing::Whole);
    Ok(Read::Built(detection, result))
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
        "resourceSpans" => Some(Format::Otlp),
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
struct ListSeed<'i> {
    format: Format,
    input: &'i Input,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
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

impl<'de> Visitor<'de> for ListSeed<'_> {
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
            let mut spans = Box::new(SpanStream::with_capacity(0));
            let mut i = 0;
            let mut next = Some(first);
            while let Some(item) = next {
                spans.push(item, i, self.input.at(format!("/spans/{i}")));
                i += 1;
                next = seq.next_element::<Value>()?;
            }
            Stream::PisamaSpans(spans)
        } else {
            let mut collected = Collected::default();
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
                    "/resourceSpans",
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
