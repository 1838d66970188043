//! An agent sends near-duplicate messages: the same text, or nearly, again and again within
//! one run. Found with `MinHash` over word shingles and banded buckets, so each message is
//! compared only with a few earlier candidates, never with all of them.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::{fnv, jaccard_sorted, minhash};
use crate::view::{CONVERSATION_SHINGLE, Idx, TraceView};

use super::tool_facts::is_agent_message;

pub(crate) struct RepeatedMessage;

// Shingles come from `TraceView::conversation_shingles` (3 words).
const _: () = assert!(CONVERSATION_SHINGLE == 3);
const BANDS: usize = 16;
const ROWS: usize = 4;
const MAX_PER_AGENT: usize = 3;
/// No candidate in a band.
const NONE: u32 = u32::MAX;

impl Detector for RepeatedMessage {
    fn id(&self) -> &'static str {
        "repeated-message"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_words = params.usize("min_words", 8).max(1);
        let threshold = params.f64("similarity", 0.7).clamp(0.1, 1.0);
        let min_repeats = params.usize("min_repeats", 2).max(2);
        // (span, conversation position) of each agent message long enough to compare.
        let (messages, conversation_pos): (Vec<Idx>, Vec<usize>) = view
            .conversation()
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, i)| is_agent_message(view, i) && view.words(i).len() >= min_words)
            .map(|(p, i)| (i, p))
            .unzip();
        // Position of each message among everything said in the run: the same text twice in
        // a row with nothing in between is one message logged twice (a turn and its summary
        // record), not an agent repeating itself to someone.
        let spoken: FxHashMap<Idx, usize> = view
            .conversation()
            .iter()
            .copied()
            .filter(|&i| !view.text(i).trim().is_empty())
            .enumerate()
            .map(|(p, i)| (i, p))
            .collect();
        let position: Vec<usize> = messages
            .iter()
            .map(|i| spoken.get(i).copied().unwrap_or(usize::MAX - 1))
            .collect();
        let shingles: Vec<&[u64]> = conversation_pos
            .iter()
            .map(|&p| view.conversation_shingles(p))
            .collect();
        // Identifiers and numbers in each message: a template filled in for another booking,
        // file or step ("reservation HSR97W has been cancelled" after "... FDZ0T5 ...") is
        // progress, not repetition.
        // (As sorted word ids: the same sets, compared without re-reading the text.)
        let has_digit = view.vocabulary_table(|w| w.chars().any(|c| c.is_ascii_digit()));
        let identifiers: Vec<Vec<u32>> = messages
            .iter()
            .map(|&i| {
                let mut ids: Vec<u32> = view
                    .words(i)
                    .iter()
                    .copied()
                    .filter(|&w| has_digit[w as usize])
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            })
            .collect();
        let mut parent: Vec<usize> = (0..messages.len()).collect();
        // Similarity of each message to the earlier one it repeats.
        let mut similarity: Vec<f64> = vec![0.0; messages.len()];
        // The earlier candidates of each message: per band, the latest earlier message of the
        // same agent whose band hash is the same (`NONE` if there is none), band by band. One
        // small table per band, reused, instead of one table of every (agent, band, hash):
        // that table grew to millions of entries at 100,000 spans.
        let band_hashes: Vec<[u64; BANDS]> = shingles
            .iter()
            .map(|shingles| {
                let signature = minhash(shingles, BANDS * ROWS);
                let mut hashes = [0u64; BANDS];
                for (hash, rows) in hashes.iter_mut().zip(signature.chunks(ROWS)) {
                    let mut bytes = [0u8; 8 * ROWS];
                    for (slot, r) in bytes.chunks_exact_mut(8).zip(rows) {
                        slot.copy_from_slice(&r.to_le_bytes());
                    }
                    *hash = fnv(&bytes[..8 * rows.len()]);
                }
                hashes
            })
            .collect();
        let mut agent_ids: FxHashMap<&str, u32> = FxHashMap::default();
        let agent_of: Vec<u32> = messages
            .iter()
            .map(|&i| {
                let next = agent_ids.len() as u32;
                *agent_ids.entry(view.agent(i)).or_insert(next)
            })
            .collect();
        let mut candidates: Vec<[u32; BANDS]> = vec![[NONE; BANDS]; messages.len()];
        let mut latest: FxHashMap<(u32, u64), u32> = FxHashMap::default();
        latest.reserve(messages.len());
        for b in 0..BANDS {
            latest.clear();
            for (k, hashes) in band_hashes.iter().enumerate() {
                if let Some(c) = latest.insert((agent_of[k], hashes[b]), k as u32) {
                    candidates[k][b] = c;
                }
            }
        }
        for (k, &i) in messages.iter().enumerate() {
            let mut best: Option<(usize, f64)> = None;
            let mut seen = Vec::new();
            for c in candidates[k]
                .iter()
                .filter(|&&c| c != NONE)
                .map(|&c| c as usize)
            {
                if !seen.contains(&c) {
                    seen.push(c);
                    // A span and its ancestor carrying the same text is one message reported
                    // twice (an agent turn and its model call), not a repeat.
                    if identifiers[k] != identifiers[c]
                        || nested(view, messages[c], i)
                        || position[k] == position[c].saturating_add(1)
                    {
                        continue;
                    }
                    let sim = jaccard_sorted(shingles[k], shingles[c]);
                    if sim >= threshold && best.is_none_or(|(_, s)| sim > s) {
                        best = Some((c, sim));
                    }
                }
            }
            if let Some((c, sim)) = best {
                let root = find(&mut parent, c);
                parent[k] = root;
                similarity[k] = sim;
            }
        }
        let mut clusters: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for k in 0..messages.len() {
            let root = find(&mut parent, k);
            clusters.entry(root).or_default().push(k);
        }
        // Largest clusters first; one loop often repeats several messages, so each agent
        // gets at most `MAX_PER_AGENT` findings.
        let mut ranked: Vec<&Vec<usize>> = clusters
            .values()
            .filter(|m| m.len() >= min_repeats)
            .collect();
        ranked.sort_by_key(|m| (std::cmp::Reverse(m.len()), m.first().copied()));
        let mut per_agent: BTreeMap<&str, usize> = BTreeMap::new();
        let mut hits = Vec::new();
        for members in ranked {
            let Some(&head_member) = members.first() else {
                continue;
            };
            let count = per_agent
                .entry(view.agent(messages[head_member]))
                .or_default();
            *count += 1;
            if *count > MAX_PER_AGENT {
                continue;
            }
            let (Some(&first), Some(&second), Some(&last)) =
                (members.first(), members.get(1), members.last())
            else {
                continue;
            };
            let repeats = &members[1..];
            let mean_sim =
                repeats.iter().map(|&k| similarity[k]).sum::<f64>() / repeats.len() as f64;
            let copies = members.len();
            let score = mean_sim * (1.0 - 0.5f64.powi(copies as i32 - 1));
            let severity = match copies {
                2 => Severity::Low,
                3 | 4 => Severity::Medium,
                _ => Severity::High,
            };
            let agent = view.agent(messages[first]);
            let mut evidence = vec![
                HitEvidence::new(messages[first], "first time"),
                HitEvidence::new(
                    messages[second],
                    format!("repeated ({:.0}% the same)", similarity[second] * 100.0),
                ),
            ];
            if last != second {
                evidence.push(HitEvidence::new(
                    messages[last],
                    format!("copy {copies} of {copies}"),
                ));
            }
            hits.push(Hit {
                score,
                severity: Some(severity),
                summary: format!(
                    "`{agent}` sent {copies} near-identical messages ({:.0}% of word sequences shared on average)",
                    mean_sim * 100.0
                ),
                // The first repeat is where the agent started going round in circles.
                at: Some(messages[second]),
                evidence,
                ..Hit::default()
            });
        }
        hits
    }
}

/// Whether one span contains the other (bounded walk up the parent chain).
fn nested(view: &TraceView<'_>, a: Idx, b: Idx) -> bool {
    let is_ancestor = |anc: Idx, mut node: Idx| {
        for _ in 0..64 {
            match view.span(node).parent {
                Some(p) if p as usize == anc => return true,
                Some(p) if (p as usize) < view.len() => node = p as usize,
                _ => return false,
            }
        }
        false
    };
    is_ancestor(a, b) || is_ancestor(b, a)
}

/// Union-find root with path halving.
fn find(parent: &mut [usize], mut k: usize) -> usize {
    while parent[k] != k {
        parent[k] = parent[parent[k]];
        k = parent[k];
    }
    k
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
        RepeatedMessage.detect(&TraceView::new(&trace), &Params::default())
    }

    #[test]
    fn duplicates_of_one_agent_cluster() {
        let text = "I will now check the inventory database for the requested item and report back shortly";
        let hits = run(vec![
            message("a", text),
            message("b", text),
            message(
                "a",
                "Something entirely different about the weather in Porto this afternoon, sunny and warm",
            ),
            message("a", &format!("{text} again")),
            message("a", text),
        ]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(3));
        assert_eq!(hits[0].severity, Some(Severity::Medium));
        assert!(hits[0].summary.contains("3 near-identical"));
    }

    #[test]
    fn short_and_empty_inputs_are_quiet() {
        assert!(run(Vec::new()).is_empty());
        assert!(run(vec![message("a", "ok thanks"), message("a", "ok thanks")]).is_empty());
    }

    #[test]
    fn many_messages_stay_fast() {
        let spans: Vec<Span> = (0..5000)
            .map(|k| {
                message(
                    "a",
                    &format!(
                        "status report number {k} says that the queue holds {} items and grows",
                        k * 7
                    ),
                )
            })
            .collect();
        // Each differs in its numbers only, which keeps similarity below the threshold.
        let _ = run(spans);
    }
}
