//! [`TraceView`]: a trace plus the indexes detectors share, built once per trace.
//!
//! Detectors must stay O(n log n) in spans. Anything several of them need (children lists,
//! the conversation in step order, tool calls in order, lower-cased text, word tokens) is
//! computed here once, lazily, and shared.

use std::collections::HashMap;
use std::sync::OnceLock;

use pisama_trace::{Role, Span, SpanKind, Status, Trace};

/// Index of a span in `Trace::spans`.
pub type Idx = usize;

/// A trace with shared, lazily built indexes.
#[derive(Debug)]
pub struct TraceView<'t> {
    pub trace: &'t Trace,
    children: Vec<Vec<Idx>>,
    conversation: Vec<Idx>,
    tools: Vec<Idx>,
    lower: OnceLock<Vec<String>>,
    words: OnceLock<Vec<Vec<u32>>>,
    vocabulary: OnceLock<HashMap<String, u32>>,
}

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
            vocabulary: OnceLock::new(),
        }
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
        let all = self.lower.get_or_init(|| {
            (0..self.len())
                .map(|j| self.text(j).to_lowercase())
                .collect()
        });
        &all[i]
    }

    /// Word ids of a span's text (lower-cased alphanumeric runs, shared vocabulary).
    pub fn words(&self, i: Idx) -> &[u32] {
        &self.word_table()[i]
    }

    fn word_table(&self) -> &Vec<Vec<u32>> {
        self.words.get_or_init(|| {
            let mut vocab: HashMap<String, u32> = HashMap::new();
            let table = (0..self.len())
                .map(|j| {
                    tokenize(self.lower(j))
                        .map(|w| {
                            let next = vocab.len() as u32;
                            *vocab.entry(w.to_owned()).or_insert(next)
                        })
                        .collect()
                })
                .collect();
            let _ = self.vocabulary.set(vocab);
            table
        })
    }

    /// The id of a word in this trace's vocabulary, if it occurs.
    pub fn word_id(&self, word: &str) -> Option<u32> {
        let _ = self.word_table();
        self.vocabulary
            .get()
            .and_then(|v| v.get(&word.to_lowercase()).copied())
    }

    /// Builds every lazily built index now (for benchmarks, and for callers that know every
    /// detector will run).
    pub fn build_caches(&self) {
        let _ = self.word_table();
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

/// Lower-case alphanumeric words (with `_`), at least 2 characters.
pub fn tokenize(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 2)
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
