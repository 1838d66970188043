//! A long stretch of consecutive messages that add almost nothing new: nearly every word
//! sequence in them already appeared in the last few messages. The run is spinning (thanks,
//! restated plans, "TERMINATE" ping-pong, the same status again) instead of moving on.

use rustc_hash::FxHashMap;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{CONVERSATION_SHINGLE, Idx, TraceView};
use pisama_trace::SpanKind;

use super::tool_facts::is_agent_message;

pub(crate) struct StalledProgress;

// Shingles come from `TraceView::conversation_shingles` (3 words).
const _: () = assert!(CONVERSATION_SHINGLE == 3);

impl Detector for StalledProgress {
    fn id(&self) -> &'static str {
        "stalled-progress"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let window = params.usize("window", 6).max(1);
        let max_novelty = params.f64("max_novelty", 0.2).clamp(0.0, 1.0);
        let min_stretch = params.usize("min_stretch", 4).max(2);
        let (messages, conversation_pos): (Vec<Idx>, Vec<usize>) = view
            .conversation()
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, i)| !view.words(i).is_empty())
            .map(|(c, i)| (i, c))
            .unzip();
        // Share of each message's shingles not seen in the `window` messages before it; one
        // map of "last seen at" keeps this linear in the text.
        let mut last_seen: FxHashMap<u64, usize> = FxHashMap::default();
        let mut novelty = Vec::with_capacity(messages.len());
        for (p, &c) in conversation_pos.iter().enumerate() {
            let shingles = view.conversation_shingles(c);
            let fresh = shingles
                .iter()
                .filter(|h| last_seen.get(h).is_none_or(|&q| q + window < p))
                .count();
            novelty.push(fresh as f64 / shingles.len().max(1) as f64);
            for &h in shingles {
                last_seen.insert(h, p);
            }
        }
        let mut hits = Vec::new();
        let mut p = 0;
        while p < messages.len() {
            // The first message has nothing to repeat.
            if p == 0 || novelty[p] > max_novelty {
                p += 1;
                continue;
            }
            let start = p;
            while p < messages.len() && novelty[p] <= max_novelty {
                p += 1;
            }
            let len = p - start;
            if len < min_stretch {
                continue;
            }
            let stretch = &messages[start..p];
            let mean = novelty[start..p].iter().sum::<f64>() / len as f64;
            let to_the_end = p == messages.len();
            let score = (1.0 - mean) * (1.0 - 0.7f64.powi((len + 1 - min_stretch) as i32));
            let severity = if to_the_end && len >= 2 * min_stretch {
                Severity::High
            } else if len >= min_stretch + 2 || to_the_end {
                Severity::Medium
            } else {
                Severity::Low
            };
            let mut speakers: Vec<&str> = stretch
                .iter()
                .map(|&i| {
                    if view.span(i).kind == SpanKind::Human {
                        "user"
                    } else {
                        view.agent(i)
                    }
                })
                .collect();
            speakers.sort_unstable();
            speakers.dedup();
            let mut evidence = vec![HitEvidence::new(
                stretch[0],
                "first message with nothing new",
            )];
            if len > 2 {
                evidence.push(HitEvidence::new(stretch[len / 2], "still nothing new"));
            }
            evidence.push(HitEvidence::new(
                stretch[len - 1],
                if to_the_end {
                    "the run ended still stalled"
                } else {
                    "last message of the stretch"
                },
            ));
            hits.push(Hit {
                score,
                severity: Some(severity),
                summary: format!(
                    "{len} consecutive messages (from {}) added almost nothing new ({:.0}% new word sequences on average){}",
                    speakers
                        .iter()
                        .take(4)
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    mean * 100.0,
                    if to_the_end {
                        ", up to the end of the run"
                    } else {
                        ""
                    }
                ),
                // Agents, not users or executors, are the ones who can break a stall.
                at: Some(
                    stretch
                        .iter()
                        .copied()
                        .find(|&i| is_agent_message(view, i))
                        .unwrap_or(stretch[0]),
                ),
                evidence,
                ..Hit::default()
            });
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_support::message;
    use pisama_trace::{Span, Trace};

    fn run(spans: Vec<Span>) -> Vec<Hit> {
        let trace = Trace {
            spans,
            ..Trace::default()
        };
        StalledProgress.detect(&TraceView::new(&trace), &Params::default())
    }

    #[test]
    fn ping_pong_stalls_and_a_real_exchange_does_not() {
        let mut spans = vec![message(
            "a",
            "We need the population of Braga in 2021 from the census tables",
        )];
        for k in 0..6 {
            spans.push(message(if k % 2 == 0 { "b" } else { "a" }, "TERMINATE"));
        }
        let hits = run(spans);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(2));
        let exchange: Vec<Span> = (0..10)
            .map(|k| {
                message(
                    "a",
                    &format!(
                        "step {k}: fetched table {k} and found {} new rows for district {}",
                        k * 13,
                        k + 40
                    ),
                )
            })
            .collect();
        assert!(run(exchange).is_empty());
    }

    #[test]
    fn empty_is_quiet() {
        assert!(run(Vec::new()).is_empty());
        assert!(run(vec![message("a", "")]).is_empty());
    }
}
