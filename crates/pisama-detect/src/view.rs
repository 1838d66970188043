//! [`TraceView`]: a trace plus the indexes detectors share, built once per trace.
//!
//! Detectors must stay O(n log n) in spans. Anything several of them need (children lists,
//! the conversation in step order, tool calls in order, lower-cased text, word tokens) is
//! computed here once, lazily, and shared.

use std::sync::OnceLock;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use pisama_trace::{Role, Span, SpanKind, Status, Trace};

use crate::detectors::dialogue::{Speaker, compute_speaker};
use crate::detectors::tool_facts::ToolFacts;
use crate::detectors::turns::{Turn, compute_turns};
use crate::text::{numbers, sorted_word_shingles};

/// Index of a span in `Trace::spans`.
pub type Idx = usize;

/// A trace with shared, lazily built indexes.
#[derive(Debug)]
pub struct TraceView<'t> {
    pub trace: &'t Trace,
    children: Vec<Vec<Idx>>,
    conversation: Vec<Idx>,
    tools: Vec<Idx>,
    /// Lower-cased text per span; `None` where the text has no upper case (the trace's own
    /// text is used then, which saves a copy of most of the text).
    lower: OnceLock<Vec<Option<Box<str>>>>,
    words: OnceLock<WordTable>,
    shingles: OnceLock<Vec<Vec<u64>>>,
    /// [`ToolFacts`] of every tool span (`None` for other spans), asked by several detectors.
    tool_facts: OnceLock<Vec<Option<ToolFacts<'t>>>>,
    /// Compact JSON of each tool call's arguments; `None` without a call or arguments. Made
    /// per span by the first detector that asks (not in [`TraceView::build_caches`], which
    /// every detector waits for).
    arguments_json: OnceLock<Vec<OnceLock<Option<Box<str>>>>>,
    /// [`crate::text::numbers`] of each span's text, made per span on first request.
    numbers: OnceLock<Vec<OnceLock<Box<[f64]>>>>,
    turns: OnceLock<Vec<Turn<'t>>>,
    speakers: OnceLock<Vec<Speaker>>,
}

/// Word ids of every span, in chunks of [`CHUNK`] spans: span `i` owns
/// `chunks[i / CHUNK].ids[starts[i % CHUNK]..starts[i % CHUNK + 1]]`. One vector per chunk
/// instead of one per span keeps 100,000 spans from costing 100,000 allocations; keeping the
/// chunks as they were built (ids rewritten in place to the shared vocabulary) saves copying
/// every id into one vector, which cost more than building them.
#[derive(Debug, Default)]
struct WordTable {
    chunks: Vec<WordChunk>,
    /// Ids in order of first occurrence (span order, then position in the span).
    vocabulary: FxHashMap<Box<str>, u32>,
}

#[derive(Debug, Default)]
struct WordChunk {
    ids: Vec<u32>,
    starts: Vec<usize>,
}

/// Word-shingle length of [`TraceView::conversation_shingles`].
pub const CONVERSATION_SHINGLE: usize = 3;

/// Spans per parallel work item when building the shared indexes.
const CHUNK: usize = 2048;

impl<'t> TraceView<'t> {
    pub fn new(trace: &'t Trace) -> Self {
        let n = trace.spans.len();
        let mut children = vec![Vec::new(); n];
        for (i, s) in trace.spans.iter().enumerate() {
            if let Some(p) = s.parent
                && let Some(list) = children.get_mut(p as usize)
            {
                list.push(i);
            }
        }
        let tools = (0..n)
            .filter(|&i| trace.spans[i].kind == SpanKind::Tool)
            .collect();
        TraceView {
            trace,
            children,
            conversation: conversation_order(trace),
            tools,
            lower: OnceLock::new(),
            words: OnceLock::new(),
            shingles: OnceLock::new(),
            tool_facts: OnceLock::new(),
            arguments_json: OnceLock::new(),
            numbers: OnceLock::new(),
            turns: OnceLock::new(),
            speakers: OnceLock::new(),
        }
    }

    /// The trace this view is over.
    pub fn trace(&self) -> &'t Trace {
        self.trace
    }

    pub fn span(&self, i: Idx) -> &'t Span {
        &self.trace.spans[i]
    }

    pub fn len(&self) -> usize {
        self.trace.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trace.spans.is_empty()
    }

    pub fn children(&self, i: Idx) -> &[Idx] {
        &self.children[i]
    }

    /// The messages of the run in order: one span per step for formats with steps (the first
    /// span of each step), otherwise the model calls, human inputs, agent and step spans that
    /// carry text, in time order. Tools are not in it; see [`TraceView::tools`].
    pub fn conversation(&self) -> &[Idx] {
        &self.conversation
    }

    /// Tool spans in time order.
    pub fn tools(&self) -> &[Idx] {
        &self.tools
    }

    /// What a span said or returned: its output text, else its input text.
    pub fn text(&self, i: Idx) -> &'t str {
        let s = &self.trace.spans[i];
        match s.kind {
            SpanKind::Human | SpanKind::System => s.input.as_ref().or(s.output.as_ref()),
            _ => s.output.as_ref().or(s.input.as_ref()),
        }
        .map_or("", |p| p.text.as_str())
    }

    /// [`TraceView::text`] lower-cased.
    pub fn lower(&self, i: Idx) -> &str {
        let all = self
            .lower
            .get_or_init(|| (0..self.len()).map(|j| lower_of(self.text(j))).collect());
        all[i].as_deref().unwrap_or_else(|| self.text(i))
    }

    /// Word ids of a span's text (lower-cased alphanumeric runs, shared vocabulary).
    pub fn words(&self, i: Idx) -> &[u32] {
        let chunk = &self.word_table().chunks[i / CHUNK];
        let j = i % CHUNK;
        &chunk.ids[chunk.starts[j]..chunk.starts[j + 1]]
    }

    fn word_table(&self) -> &WordTable {
        // Built in this thread: a parallel build here could run another detector's job on
        // this thread while it waits, and that job would wait on this very cell.
        self.words.get_or_init(|| build_word_table(self, false))
    }

    /// The id of a word in this trace's vocabulary, if it occurs.
    pub fn word_id(&self, word: &str) -> Option<u32> {
        self.word_table()
            .vocabulary
            .get(word.to_lowercase().as_str())
            .copied()
    }

    /// Number of distinct words in the trace (word ids are below it).
    pub fn vocabulary_len(&self) -> usize {
        self.word_table().vocabulary.len()
    }

    /// A table over the vocabulary: `table[id]` tells whether `test` holds for that word.
    pub fn vocabulary_table(&self, test: impl Fn(&str) -> bool) -> Vec<bool> {
        let vocabulary = &self.word_table().vocabulary;
        let mut table = vec![false; vocabulary.len()];
        for (word, &id) in vocabulary {
            table[id as usize] = test(word);
        }
        table
    }

    /// The id of a word exactly as written (the vocabulary is lower case, so a word with
    /// upper case has none).
    pub fn exact_word_id(&self, word: &str) -> Option<u32> {
        self.word_table().vocabulary.get(word).copied()
    }

    /// Sorted, distinct hashes of the [`CONVERSATION_SHINGLE`]-word shingles of the
    /// conversation message at position `pos` of [`TraceView::conversation`] (as
    /// [`crate::text::word_shingles`] gives them), shared by the repetition detectors.
    pub fn conversation_shingles(&self, pos: usize) -> &[u64] {
        &self.shingles.get_or_init(|| {
            self.conversation
                .iter()
                .map(|&i| sorted_word_shingles(self.words(i), CONVERSATION_SHINGLE))
                .collect()
        })[pos]
    }

    /// Builds the shared text indexes now, in parallel (rayon), instead of lazily in whichever
    /// detector asks first, which would make every other detector wait for one core. The
    /// result is the same as the lazy build: word ids are given in order of first occurrence
    /// by merging per-chunk vocabularies in chunk order.
    pub fn build_caches(&self) {
        if self.lower.get().is_none() {
            let lower: Vec<Option<Box<str>>> = (0..self.len())
                .into_par_iter()
                .with_min_len(CHUNK)
                .map(|j| lower_of(self.text(j)))
                .collect();
            let _ = self.lower.set(lower);
        }
        if self.words.get().is_none() {
            let _ = self.words.set(build_word_table(self, true));
        }
        if self.shingles.get().is_none() {
            let shingles: Vec<Vec<u64>> = self
                .conversation
                .par_iter()
                .with_min_len(256)
                .map(|&i| sorted_word_shingles(self.words(i), CONVERSATION_SHINGLE))
                .collect();
            let _ = self.shingles.set(shingles);
        }
        if self.tool_facts.get().is_none() {
            let facts: Vec<Option<ToolFacts<'t>>> = (0..self.len())
                .into_par_iter()
                .with_min_len(CHUNK)
                .map(|j| self.tool_facts_of(j))
                .collect();
            let _ = self.tool_facts.set(facts);
        }
    }

    /// The shared [`ToolFacts`] of a tool span; `None` for other spans.
    pub(crate) fn tool_facts(&self, i: Idx) -> Option<ToolFacts<'t>> {
        self.tool_facts
            .get_or_init(|| (0..self.len()).map(|j| self.tool_facts_of(j)).collect())
            .get(i)
            .copied()
            .flatten()
    }

    fn tool_facts_of(&self, i: Idx) -> Option<ToolFacts<'t>> {
        (self.trace.spans[i].kind == SpanKind::Tool).then(|| ToolFacts::of(self, i))
    }

    /// The arguments of a span's tool call as compact JSON (`serde_json`'s `to_string`, so
    /// equal arguments read equal); `None` when it has no call or the arguments are null.
    /// Several detectors compare or scan the arguments of every call.
    pub fn arguments_json(&self, i: Idx) -> Option<&str> {
        self.arguments_json
            .get_or_init(|| (0..self.len()).map(|_| OnceLock::new()).collect())
            .get(i)?
            .get_or_init(|| self.arguments_json_of(i))
            .as_deref()
    }

    /// Who produced a span's text ([`crate::detectors::dialogue::speaker`]).
    pub(crate) fn speaker(&self, i: Idx) -> Speaker {
        self.speakers
            .get_or_init(|| (0..self.len()).map(|j| compute_speaker(self, j)).collect())[i]
    }

    /// The conversation's turns ([`crate::detectors::turns::turns`]).
    pub(crate) fn turns(&self) -> &[Turn<'t>] {
        self.turns.get_or_init(|| compute_turns(self))
    }

    /// The numbers in [`TraceView::text`] ([`crate::text::numbers`]), which the fact and
    /// verification detectors each collect from every tool result and user message.
    pub fn numbers(&self, i: Idx) -> &[f64] {
        self.numbers
            .get_or_init(|| (0..self.len()).map(|_| OnceLock::new()).collect())
            .get(i)
            .map_or(&[], |n| {
                n.get_or_init(|| numbers(self.text(i)).into_boxed_slice())
            })
    }

    fn arguments_json_of(&self, i: Idx) -> Option<Box<str>> {
        self.trace.spans[i]
            .tool
            .as_ref()
            .filter(|t| !t.arguments.is_null())
            .map(|t| t.arguments.to_string().into_boxed_str())
    }

    /// The agent of a span, or `"?"`.
    pub fn agent(&self, i: Idx) -> &'t str {
        self.trace.spans[i].agent.as_deref().unwrap_or("?")
    }

    /// Whether the span failed.
    pub fn failed(&self, i: Idx) -> bool {
        self.trace.spans[i].status == Status::Error
    }

    /// The conversation position of a step index, for "what came next" questions.
    pub fn position_of(&self, i: Idx) -> Option<usize> {
        self.conversation.iter().position(|&c| c == i)
    }
}

/// The word table of a view, chunk by chunk (in parallel with rayon when `parallel`): each
/// chunk is tokenized against a vocabulary of its own, then the chunk vocabularies are merged
/// in chunk order, which gives every word the id of its first occurrence in the whole trace,
/// and each chunk's ids are rewritten in place.
fn build_word_table(view: &TraceView<'_>, parallel: bool) -> WordTable {
    let ranges =
        (0..view.len().div_ceil(CHUNK)).map(|c| (c * CHUNK, ((c + 1) * CHUNK).min(view.len())));
    let mut chunks: Vec<(WordChunk, Vec<&str>)> = if parallel {
        ranges
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(from, to)| intern_range(view, from, to))
            .collect()
    } else {
        ranges
            .map(|(from, to)| intern_range(view, from, to))
            .collect()
    };
    let mut vocabulary: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let global: Vec<Vec<u32>> = chunks
        .iter()
        .map(|(_, words)| {
            words
                .iter()
                .map(|&w| {
                    if let Some(&id) = vocabulary.get(w) {
                        return id;
                    }
                    let id = vocabulary.len() as u32;
                    vocabulary.insert(Box::from(w), id);
                    id
                })
                .collect()
        })
        .collect();
    let remap = |((chunk, _), map): (&mut (WordChunk, Vec<&str>), &Vec<u32>)| {
        for id in &mut chunk.ids {
            *id = map[*id as usize];
        }
    };
    if parallel {
        chunks.par_iter_mut().zip(&global).for_each(remap);
    } else {
        chunks.iter_mut().zip(&global).for_each(remap);
    }
    WordTable {
        chunks: chunks.into_iter().map(|(chunk, _)| chunk).collect(),
        vocabulary,
    }
}

/// Lower-case text, or `None` when lower-casing changes nothing. ASCII text (most of it)
/// takes the byte-wise path, which gives the same result as `str::to_lowercase` there.
fn lower_of(text: &str) -> Option<Box<str>> {
    if text.is_ascii() {
        return text
            .bytes()
            .any(|b| b.is_ascii_uppercase())
            .then(|| text.to_ascii_lowercase().into_boxed_str());
    }
    let lower = text.to_lowercase();
    (lower != text).then(|| lower.into_boxed_str())
}

/// Word ids of spans `from..to` against a vocabulary of their own: the ids, where each
/// span's ids start (plus the end), and the words in order of first occurrence.
fn intern_range<'v>(view: &'v TraceView<'_>, from: Idx, to: Idx) -> (WordChunk, Vec<&'v str>) {
    let mut vocabulary: FxHashMap<&str, u32> = FxHashMap::default();
    let mut words: Vec<&str> = Vec::new();
    let mut ids = Vec::new();
    let mut starts = Vec::with_capacity(to - from + 1);
    for j in from..to {
        starts.push(ids.len());
        for w in tokenize(view.lower(j)) {
            let id = *vocabulary.entry(w).or_insert_with(|| {
                words.push(w);
                (words.len() - 1) as u32
            });
            ids.push(id);
        }
    }
    starts.push(ids.len());
    (WordChunk { ids, starts }, words)
}

/// Alphanumeric words (with `_`) of at least 2 bytes: the pieces of
/// `text.split(|c| !(c.is_alphanumeric() || c == '_'))` that long, found byte-wise where the
/// text is ASCII.
pub fn tokenize(text: &str) -> Tokens<'_> {
    Tokens { text, pos: 0 }
}

/// Iterator of [`tokenize`].
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let len = self.text.len();
        loop {
            while self.pos < len {
                let (word, width) = word_char_at(self.text, self.pos);
                if word {
                    break;
                }
                self.pos += width;
            }
            if self.pos >= len {
                return None;
            }
            let start = self.pos;
            while self.pos < len {
                let (word, width) = word_char_at(self.text, self.pos);
                if !word {
                    break;
                }
                self.pos += width;
            }
            if self.pos - start >= 2 {
                return Some(&self.text[start..self.pos]);
            }
        }
    }
}

/// Whether the character at byte `pos` belongs to a word, and its width in bytes.
#[inline]
fn word_char_at(text: &str, pos: usize) -> (bool, usize) {
    let b = text.as_bytes()[pos];
    if b.is_ascii() {
        return (b.is_ascii_alphanumeric() || b == b'_', 1);
    }
    text[pos..]
        .chars()
        .next()
        .map_or((false, 1), |c| (c.is_alphanumeric(), c.len_utf8()))
}

fn conversation_order(trace: &Trace) -> Vec<Idx> {
    let has_steps = trace.spans.iter().any(|s| s.step.is_some());
    if has_steps {
        let mut first_of_step: Vec<(u32, Idx)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, s) in trace.spans.iter().enumerate() {
            if let Some(step) = s.step
                && (s.kind != SpanKind::Tool || !is_merged_tool(s))
                && seen.insert(step)
            {
                first_of_step.push((step, i));
            }
        }
        first_of_step.sort_unstable();
        return first_of_step.into_iter().map(|(_, i)| i).collect();
    }
    trace
        .spans
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            matches!(
                s.kind,
                SpanKind::Llm | SpanKind::Human | SpanKind::Step | SpanKind::Agent
            ) && (s.output.is_some() || s.input.is_some() || s.llm.is_some())
        })
        .map(|(i, _)| i)
        .collect()
}

/// A tool span that shares its step with the model call that requested it.
fn is_merged_tool(s: &Span) -> bool {
    s.parent.is_some()
}

/// Role of the speaker of a conversation span, for detectors that care about users.
pub fn is_user(span: &Span) -> bool {
    span.kind == SpanKind::Human
        || span
            .llm
            .as_ref()
            .and_then(|l| l.output_messages.first())
            .is_some_and(|m| m.role == Role::User)
}
