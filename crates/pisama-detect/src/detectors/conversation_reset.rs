//! An agent restarts the task from scratch mid-run: late in the conversation it restates the
//! original task (or repeats its own opening plan) nearly word for word, as if nothing had been
//! done yet, discarding the progress made since.
//!
//! Each later turn is compared with two fixed references only (the task and the agent's
//! opening message), so the cost is linear in the number of turns.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use rustc_hash::FxHashMap;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::text::{common_sorted, sorted_word_shingles};
use crate::view::{CONVERSATION_SHINGLE, Idx, TraceView, tokenize};
use pisama_trace::SpanKind;

use super::turns::{Turn, tool_name, turns};

pub(crate) struct ConversationReset;

/// Word 3-shingles: a restatement keeps phrases, not only topic words.
const SHINGLE: usize = 3;
/// References shorter than this (in shingles) are too generic to recognise a restart by.
const MIN_REFERENCE: usize = 8;

impl Detector for ConversationReset {
    fn id(&self) -> &'static str {
        "conversation-reset"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_similarity = params.f64("min_similarity", 0.6).clamp(0.1, 1.0);
        let min_turns_before = params.usize("min_turns_before", 3).max(1);
        let turns = turns(view);
        if turns.len() <= min_turns_before {
            return Vec::new();
        }
        // The task: the first user turn, else the trace's task, else the first turn.
        let task_turn = turns.iter().find(|t| t.user).or(turns.first());
        let task_text = task_turn
            .map(|t| view.text(t.span))
            .or(view.trace.task.as_deref())
            .unwrap_or("");
        // Shingles over the view's word ids (the same 3-word sequences as over the words
        // themselves); words outside the trace's vocabulary get ids of their own.
        let position: FxHashMap<Idx, usize> = view
            .conversation()
            .iter()
            .enumerate()
            .map(|(p, &i)| (i, p))
            .collect();
        let mut extra: FxHashMap<String, u32> = FxHashMap::default();
        let task = match task_turn {
            Some(t) if task_text == view.text(t.span) => {
                span_prose_shingles(view, t.span, &position, &mut extra)
            }
            _ => Cow::Owned(prose_shingles(view, task_text, &mut extra)),
        };
        // With a single agent talking to a user, repeated stock replies ("I'm unable to…") are
        // common and are not restarts; there only restating the task counts.
        let speakers: HashSet<&str> = turns
            .iter()
            .filter(|t| !t.user && view.span(t.span).kind != SpanKind::Tool)
            .map(|t| t.speaker)
            .collect();
        let compare_openings = speakers.len() >= 2;
        // Each agent's opening message, by agent.
        let mut openings: BTreeMap<&str, (usize, Idx, Cow<'_, [u64]>)> = BTreeMap::new();
        // Every restatement found: (turn position, similarity, what, reference, key). The key
        // groups restatements of the same reference.
        let mut found: Vec<(usize, f64, &'static str, Option<Idx>, String)> = Vec::new();
        for (pos, t) in turns.iter().enumerate() {
            // Users may repeat themselves, and tool output repeats by nature; only agents
            // restart.
            if t.user || view.span(t.span).kind == SpanKind::Tool {
                continue;
            }
            let own = span_prose_shingles(view, t.span, &position, &mut extra);
            let Some((first_pos, first_span, opening)) = openings.get(t.speaker) else {
                openings.insert(t.speaker, (pos, t.span, own));
                continue;
            };
            if pos < min_turns_before || own.len() < MIN_REFERENCE {
                continue;
            }
            let restates_task =
                task.len() >= MIN_REFERENCE && Some(t.span) != task_turn.map(|x| x.span);
            let task_sim = if restates_task {
                overlap(&own, &task)
            } else {
                0.0
            };
            // The opening only counts as restarted when real work happened in between.
            let open_sim = if compare_openings
                && opening.len() >= MIN_REFERENCE
                && pos - first_pos > min_turns_before
            {
                overlap(&own, opening)
            } else {
                0.0
            };
            if task_sim >= open_sim && task_sim >= min_similarity {
                found.push((
                    pos,
                    task_sim,
                    "the original task",
                    task_turn.map(|x| x.span),
                    String::new(),
                ));
            } else if open_sim >= min_similarity {
                found.push((
                    pos,
                    open_sim,
                    "its own opening message",
                    Some(*first_span),
                    t.speaker.to_owned(),
                ));
            }
        }
        // An opening that other agents open with too is the framework's preamble, not a plan
        // of this agent's. Compared agent by agent, over a bounded number of agents.
        let firsts: Vec<(&str, &[u64])> = openings
            .iter()
            .take(64)
            .map(|(name, (_, _, set))| (*name, set.as_ref()))
            .collect();
        let shared: BTreeSet<&str> = firsts
            .iter()
            .filter(|(name, set)| {
                set.len() >= MIN_REFERENCE
                    && firsts
                        .iter()
                        .any(|(other, o)| other != name && overlap(set, o) >= min_similarity)
            })
            .map(|(name, _)| *name)
            .collect();
        found.retain(|f| f.4.is_empty() || !shared.contains(f.4.as_str()));
        // A text restated again and again is a template the framework sends each phase (or a
        // loop, which other detectors report), not a one-off restart.
        let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &found {
            *per_key.entry(f.4.as_str()).or_default() += 1;
        }
        // The earliest strongest restart is the one that discarded the progress.
        let best = found
            .iter()
            .filter(|f| per_key.get(f.4.as_str()).copied().unwrap_or(0) < 2)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some(&(pos, sim, what, reference, _)) = best else {
            return Vec::new();
        };
        let turn = &turns[pos];
        let repeated = repeated_tool_calls(view, turn);
        let mut score = 0.4 + 0.5 * sim;
        if repeated > 0 {
            score += 0.1;
        }
        let mut evidence = vec![HitEvidence::new(
            turn.span,
            format!("{} starts over", turn.speaker),
        )];
        if let Some(r) = reference {
            evidence.push(HitEvidence::new(
                r,
                format!("{what}, restated {:.0}% verbatim", sim * 100.0),
            ));
        }
        vec![Hit {
            score: score.min(1.0),
            severity: None,
            summary: format!(
                "{} restated {what} at turn {} of {}, as if starting over{}",
                turn.speaker,
                pos + 1,
                turns.len(),
                if repeated > 0 {
                    format!("; {repeated} earlier tool calls were then repeated")
                } else {
                    String::new()
                }
            ),
            at: Some(turn.span),
            evidence,
            ..Hit::default()
        }]
    }
}

// Shingles come from `TraceView::conversation_shingles` (3 words) where they can.
const _: () = assert!(SHINGLE == CONVERSATION_SHINGLE);

/// [`prose_shingles`] of a conversation span's text; text without code fences is all prose,
/// and its shingles are already in the view.
fn span_prose_shingles<'v>(
    view: &'v TraceView<'_>,
    i: Idx,
    position: &FxHashMap<Idx, usize>,
    extra: &mut FxHashMap<String, u32>,
) -> Cow<'v, [u64]> {
    match position.get(&i) {
        Some(&p) if !view.text(i).contains("```") => Cow::Borrowed(view.conversation_shingles(p)),
        _ => Cow::Owned(prose_shingles(view, view.text(i), extra)),
    }
}

/// Shingles (sorted, distinct) of the prose of a text: fenced code is left out, because
/// re-running the same script after a fix is a retry, not a restart.
fn prose_shingles(
    view: &TraceView<'_>,
    text: &str,
    extra: &mut FxHashMap<String, u32>,
) -> Vec<u64> {
    let mut prose = String::with_capacity(text.len());
    for (k, part) in text.split("```").enumerate() {
        if k % 2 == 0 {
            prose.push_str(part);
            prose.push(' ');
        }
    }
    let lower = prose.to_lowercase();
    let base = view.vocabulary_len() as u32;
    let ids: Vec<u32> = tokenize(&lower)
        .map(|w| {
            view.exact_word_id(w).unwrap_or_else(|| {
                let next = base + extra.len() as u32;
                *extra.entry(w.to_owned()).or_insert(next)
            })
        })
        .collect();
    sorted_word_shingles(&ids, SHINGLE)
}

/// Share of the smaller set found in the larger: high when one text restates the other, even
/// with a few words added around it. (Sets as sorted lists without duplicates.)
fn overlap(a: &[u64], b: &[u64]) -> f64 {
    let smaller = a.len().min(b.len());
    if smaller == 0 {
        return 0.0;
    }
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    // Containment only counts when the texts are of comparable size; a long report that
    // quotes the task is not a restart.
    if large.len() > 3 * small.len() {
        return 0.0;
    }
    common_sorted(small, large) as f64 / smaller as f64
}

/// Tool calls after the restart that repeat one made before it (same tool, same arguments).
fn repeated_tool_calls(view: &TraceView<'_>, turn: &Turn) -> usize {
    let key = |i: Idx| {
        let s = view.span(i);
        (
            tool_name(s).to_owned(),
            s.tool
                .as_ref()
                .map(|t| t.arguments.to_string())
                .unwrap_or_default(),
        )
    };
    let before: HashSet<(String, String)> = view
        .tools()
        .iter()
        .copied()
        .filter(|&i| i < turn.span)
        .map(key)
        .collect();
    view.tools()
        .iter()
        .copied()
        .filter(|&i| i > turn.span && before.contains(&key(i)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use crate::detectors::test_support::said;
    use pisama_trace::Trace;

    #[test]
    fn empty_and_short_traces_are_quiet() {
        let t = Trace::default();
        assert!(
            ConversationReset
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
        let one = Trace {
            spans: vec![said("a", 0, "hello")],
            ..Trace::default()
        };
        assert!(
            ConversationReset
                .detect(&TraceView::new(&one), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn restated_opening_fires() {
        let plan = "Plan: first load the sales table, then group the rows by region, then compute the median order value for each region and report it.";
        let t = Trace {
            spans: vec![
                said("lead", 0, plan),
                said(
                    "coder",
                    1,
                    "Loaded the sales table: 1,204 rows across 5 regions.",
                ),
                said("lead", 2, "Good. Now group them by region."),
                said(
                    "coder",
                    3,
                    "Grouped; medians computed for north and south so far.",
                ),
                said("lead", 4, plan),
            ],
            ..Trace::default()
        };
        let hits = ConversationReset.detect(&TraceView::new(&t), &Params::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(4));
    }

    #[test]
    fn overlap_needs_comparable_sizes() {
        let a: Vec<u64> = (0..10).collect();
        let b: Vec<u64> = (0..100).collect();
        assert!(overlap(&a, &b).abs() < f64::EPSILON);
        assert!((overlap(&a, &a) - 1.0).abs() < f64::EPSILON);
    }
}
