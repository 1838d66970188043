//! Agents drifting away from the task: after messages that were on task, a stretch of
//! consecutive agent messages shares almost no weighted vocabulary with what was asked (the
//! task plus everything the user said so far, since users may redirect the work).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::catalog::Params;
use crate::detectors::dialogue::{
    STOPWORDS, Speaker, agent_messages, is_stopword, speaker, task, timeline,
};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::{TfIdf, TfIdfVector};
use crate::view::{Idx, TraceView, tokenize};

pub(crate) struct TaskDerailment;

/// How many of the latest user messages a message may answer besides the task.
const RECENT_REQUESTS: usize = 3;

impl Detector for TaskDerailment {
    fn id(&self) -> &'static str {
        "task-derailment"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_words = params.usize("min_words", 8).max(1);
        let min_run = params.usize("min_run", 3).max(2);
        let off_task = params.f64("off_task", 0.06);
        let on_task = params.f64("on_task", 0.15).max(off_task);
        let line = timeline(view);
        let Some((task_span, task_text)) = task(view, &line) else {
            return Vec::new();
        };
        let task_lower = task_text.to_lowercase();
        // Stop words as a table over the vocabulary: one look-up per word, no hashing.
        let mut stop = vec![false; view.vocabulary_len()];
        for id in STOPWORDS.iter().filter_map(|w| view.word_id(w)) {
            stop[id as usize] = true;
        }
        let task_words: Vec<u32> = tokenize(&task_lower)
            .filter(|w| !is_stopword(w))
            .filter_map(|w| view.word_id(w))
            .collect();
        // Sorted once here: `TfIdf::fit` and `TfIdf::vector` sort what they are given, and
        // sorting a sorted list is a single pass (the weights do not depend on word order).
        let content = |i: Idx| -> Vec<u32> {
            let mut words: Vec<u32> = view
                .words(i)
                .iter()
                .copied()
                .filter(|&w| !stop[w as usize])
                .collect();
            words.sort_unstable();
            words
        };
        if task_words.len() < 3 {
            return Vec::new();
        }
        let messages: Vec<Idx> = agent_messages(view, &line)
            .into_iter()
            .filter(|&i| Some(i) != task_span)
            .collect();
        if messages.len() < min_run + 1 {
            return Vec::new();
        }
        let users: Vec<Idx> = line
            .iter()
            .copied()
            .filter(|&i| speaker(view, i) == Speaker::User && Some(i) != task_span)
            .collect();
        let docs: FxHashMap<Idx, Vec<u32>> = messages
            .iter()
            .chain(&users)
            .map(|&i| (i, content(i)))
            .collect();
        let empty = Vec::new();
        let doc = |i: Idx| docs.get(&i).unwrap_or(&empty).as_slice();
        let model = TfIdf::fit(
            std::iter::once(task_words.as_slice())
                .chain(messages.iter().chain(&users).map(|&i| doc(i))),
        );
        let task_vector = model.vector(&task_words);
        // The user may add or change requests; a message answering one of the latest ones is
        // on task. Bounded, so the scan stays linear.
        let mut recent: VecDeque<TfIdfVector> = VecDeque::new();

        // (span, similarity to the request so far) for substantive agent messages.
        let mut scored: Vec<(Idx, f64)> = Vec::new();
        for &i in &line {
            if Some(i) == task_span {
                continue;
            }
            match speaker(view, i) {
                Speaker::User => {
                    if recent.len() == RECENT_REQUESTS {
                        recent.pop_front();
                    }
                    recent.push_back(model.vector(doc(i)));
                }
                Speaker::Agent => {
                    let v = model.vector(doc(i));
                    if TfIdf::distinct_words(&v) < min_words {
                        continue;
                    }
                    let best = recent
                        .iter()
                        .map(|r| TfIdf::cosine(&v, r))
                        .fold(TfIdf::cosine(&v, &task_vector), f64::max);
                    // Clamp rounding noise (and -0.0) so reports read cleanly.
                    scored.push((i, if best > 0.0 { best } else { 0.0 }));
                }
                _ => {}
            }
        }
        find_stretch(&scored, min_run, off_task, on_task)
            .map(|(from, to)| hit(view, &scored, from, to, off_task))
            .into_iter()
            .collect()
    }
}

/// The longest run (at least `min_run`) of off-task messages that comes after an on-task one;
/// the earliest among equally long runs.
fn find_stretch(
    scored: &[(Idx, f64)],
    min_run: usize,
    off_task: f64,
    on_task: f64,
) -> Option<(usize, usize)> {
    let mut seen_on_task = false;
    let mut best: Option<(usize, usize)> = None;
    let mut k = 0;
    while k < scored.len() {
        if scored[k].1 >= on_task {
            seen_on_task = true;
        }
        if !seen_on_task || scored[k].1 >= off_task {
            k += 1;
            continue;
        }
        let start = k;
        while k < scored.len() && scored[k].1 < off_task {
            k += 1;
        }
        let len = k - start;
        if len >= min_run && best.is_none_or(|(a, b)| len > b - a) {
            best = Some((start, k));
        }
    }
    best
}

fn hit(view: &TraceView<'_>, scored: &[(Idx, f64)], from: usize, to: usize, off_task: f64) -> Hit {
    let run = &scored[from..to];
    let mean = run.iter().map(|r| r.1).sum::<f64>() / run.len() as f64;
    let returned = scored[to..].iter().any(|r| r.1 >= off_task);
    let length_factor = 1.0 - 0.7f64.powi(run.len() as i32);
    let closeness = (mean / off_task.max(1e-9)).clamp(0.0, 1.0);
    let score = (length_factor * (1.0 - 0.4 * closeness)).clamp(0.05, 0.95);
    let first = run[0].0;
    let last = run[run.len() - 1].0;
    let mut evidence = vec![HitEvidence::new(
        first,
        format!(
            "first off-task message (similarity to the task {:.2})",
            run[0].1
        ),
    )];
    if let Some(&(before, sim)) = from.checked_sub(1).and_then(|p| scored.get(p)) {
        evidence.insert(
            0,
            HitEvidence::new(
                before,
                format!("last message before the drift (similarity {sim:.2})"),
            ),
        );
    }
    if last != first {
        evidence.push(HitEvidence::new(
            last,
            format!("still off task (similarity {:.2})", run[run.len() - 1].1),
        ));
    }
    Hit {
        score,
        severity: Some(if returned {
            Severity::Low
        } else {
            Severity::Medium
        }),
        summary: format!(
            "{} consecutive messages, starting with one from `{}`, share almost no vocabulary with the task (mean similarity {mean:.2}){}",
            run.len(),
            view.agent(first),
            if returned {
                ", before the conversation came back to it"
            } else {
                " and the run never returns to it"
            }
        ),
        at: Some(first),
        evidence,
        ..Hit::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{Payload, Span, SpanKind, Trace};

    fn trace(task: &str, msgs: &[&str]) -> Trace {
        let mut spans = vec![Span {
            kind: SpanKind::Human,
            input: Some(Box::new(Payload::text(task))),
            step: Some(0),
            ..Span::default()
        }];
        for (k, m) in msgs.iter().enumerate() {
            spans.push(Span {
                kind: SpanKind::Llm,
                agent: Some("a".into()),
                output: Some(Box::new(Payload::text(*m))),
                step: Some(k as u32 + 1),
                ..Span::default()
            });
        }
        Trace {
            task: Some(task.into()),
            spans,
            ..Trace::default()
        }
    }

    fn run(t: &Trace) -> Vec<Hit> {
        TaskDerailment.detect(&TraceView::new(t), &Params::default())
    }

    #[test]
    fn empty_and_tiny_traces_are_quiet() {
        assert!(run(&Trace::default()).is_empty());
        assert!(run(&trace("count the red apples in the basket please", &[])).is_empty());
        assert!(run(&trace("x", &["hello there"])).is_empty());
    }

    #[test]
    fn drift_is_found() {
        let t = trace(
            "count the red apples in the basket and report the number of apples",
            &[
                "I will count the red apples in the basket now and report the number",
                "The basket holds seven red apples and two green apples so the number is seven",
                "Meanwhile, the history of medieval castles in northern France is fascinating today",
                "Castles were built with thick stone walls, towers, moats and drawbridges everywhere",
                "Many castle towers later became prisons, chapels or residences for local lords",
            ],
        );
        let hits = run(&t);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(3));
    }

    #[test]
    fn stretch_needs_an_on_task_start() {
        assert_eq!(
            find_stretch(&[(0, 0.0), (1, 0.0), (2, 0.0)], 2, 0.05, 0.1),
            None
        );
        assert_eq!(
            find_stretch(&[(0, 0.3), (1, 0.0), (2, 0.0)], 2, 0.05, 0.1),
            Some((1, 3))
        );
    }
}
