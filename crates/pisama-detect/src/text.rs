//! Text helpers for T2 detectors: shingles and `MinHash` similarity, TF-IDF, claim and number
//! extraction. All deterministic and linear in the text length.

use std::collections::HashSet;

use crate::view::tokenize;

/// 64-bit FNV-1a of a byte string (stable across runs and platforms, unlike `DefaultHasher`).
pub fn fnv(bytes: &[u8]) -> u64 {
    fnv_extend(FNV_OFFSET, bytes)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues an FNV-1a hash with more bytes, so a hash of pieces needs no joined copy.
fn fnv_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A set of shingle hashes. The hashes are already FNV-mixed, so a cheap hasher is enough
/// (`SipHash` cost more than the shingling itself).
pub type ShingleSet = HashSet<u64, rustc_hash::FxBuildHasher>;

/// FNV-1a of words joined by single spaces, without building the joined string.
fn fnv_words(words: &[&str]) -> u64 {
    let mut h = FNV_OFFSET;
    for (k, w) in words.iter().enumerate() {
        if k > 0 {
            h = fnv_extend(h, b" ");
        }
        h = fnv_extend(h, w.as_bytes());
    }
    h
}

/// Hashes of word `k`-shingles of a text.
pub fn shingles(text: &str, k: usize) -> ShingleSet {
    let words: Vec<&str> = tokenize(text).collect();
    let mut out = ShingleSet::default();
    if words.len() < k {
        if !words.is_empty() {
            out.insert(fnv_words(&words));
        }
        return out;
    }
    out.reserve(words.len() + 1 - k);
    for w in words.windows(k) {
        out.insert(fnv_words(w));
    }
    out
}

/// FNV-1a of word ids as little-endian bytes, without building the byte string.
fn fnv_ids(ids: &[u32]) -> u64 {
    ids.iter()
        .fold(FNV_OFFSET, |h, w| fnv_extend(h, &w.to_le_bytes()))
}

/// Hashes of `k`-shingles over word ids (as from `TraceView::words`); a text shorter than `k`
/// words gives one shingle of all its words, an empty one none.
pub fn word_shingles(words: &[u32], k: usize) -> ShingleSet {
    word_shingle_hashes(words, k).collect()
}

/// The hashes behind [`word_shingles`], one per window (duplicates included).
pub fn word_shingle_hashes(words: &[u32], k: usize) -> impl Iterator<Item = u64> + '_ {
    let k = k.max(1);
    let short = (words.len() < k && !words.is_empty()).then(|| fnv_ids(words));
    short.into_iter().chain(words.windows(k).map(fnv_ids))
}

/// [`word_shingles`] as a sorted list without duplicates: compact, and compared by merging.
pub fn sorted_word_shingles(words: &[u32], k: usize) -> Vec<u64> {
    let mut out: Vec<u64> = word_shingle_hashes(words, k).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Jaccard similarity of two sets.
pub fn jaccard(a: &ShingleSet, b: &ShingleSet) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let inter = small.iter().filter(|h| large.contains(h)).count();
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// [`jaccard`] of two sorted lists without duplicates.
pub fn jaccard_sorted(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = common_sorted(a, b);
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// How many values two sorted lists without duplicates share (one merge pass).
pub fn common_sorted<T: Ord>(a: &[T], b: &[T]) -> usize {
    let (mut x, mut y, mut common) = (0, 0, 0usize);
    while x < a.len() && y < b.len() {
        match a[x].cmp(&b[y]) {
            std::cmp::Ordering::Less => x += 1,
            std::cmp::Ordering::Greater => y += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                x += 1;
                y += 1;
            }
        }
    }
    common
}

/// A `MinHash` signature: `n` minimum hashes under `n` fixed seeds. Signatures compare in O(n)
/// whatever the text length, which keeps near-duplicate search linear.
pub fn minhash(shingles: &[u64], n: usize) -> Vec<u64> {
    const LANES: usize = 8;
    let mix = |seed: usize| (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(n);
    // Eight seeds per pass over the shingles, each minimum in its own register: the same
    // minima as one seed at a time, several times faster than updating all `n` per shingle.
    for first in (0..n).step_by(LANES) {
        let lanes = LANES.min(n - first);
        let mut mixes = [0u64; LANES];
        for (k, m) in mixes.iter_mut().enumerate().take(lanes) {
            *m = mix(first + k);
        }
        let mut acc = [u64::MAX; LANES];
        for &h in shingles {
            for (a, m) in acc.iter_mut().zip(&mixes) {
                *a = (*a).min((h ^ m).wrapping_mul(0xff51_afd7_ed55_8ccd));
            }
        }
        out.extend_from_slice(&acc[..lanes]);
    }
    out
}

/// Estimated Jaccard similarity from two `MinHash` signatures of equal length.
pub fn minhash_similarity(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// TF-IDF vectors over a set of documents (word ids), with cosine similarity.
#[derive(Debug, Clone, Default)]
pub struct TfIdf {
    /// Inverse document frequency by word id; 1.0 for words of no document.
    idf: Vec<f64>,
}

/// A sparse TF-IDF vector: weights sorted by word id, and the vector's length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TfIdfVector {
    weights: Vec<(u32, f64)>,
    norm: f64,
}

impl TfIdf {
    pub fn fit<'a>(docs: impl IntoIterator<Item = &'a [u32]>) -> Self {
        let mut df: rustc_hash::FxHashMap<u32, usize> = rustc_hash::FxHashMap::default();
        let mut n = 0usize;
        let mut unique: Vec<u32> = Vec::new();
        for doc in docs {
            n += 1;
            unique.clear();
            unique.extend_from_slice(doc);
            unique.sort_unstable();
            unique.dedup();
            for &w in &unique {
                *df.entry(w).or_default() += 1;
            }
        }
        let size = df.keys().max().map_or(0, |&w| w as usize + 1);
        let mut idf = vec![1.0; size];
        for (w, d) in df {
            idf[w as usize] = ((1 + n) as f64 / (1 + d) as f64).ln() + 1.0;
        }
        TfIdf { idf }
    }

    pub fn vector(&self, doc: &[u32]) -> TfIdfVector {
        let mut ids = doc.to_vec();
        ids.sort_unstable();
        let mut weights: Vec<(u32, f64)> = Vec::new();
        for run in ids.chunk_by(|a, b| a == b) {
            let w = run[0];
            let idf = self.idf.get(w as usize).copied().unwrap_or(1.0);
            weights.push((w, run.len() as f64 * idf));
        }
        let norm = weights.iter().map(|(_, x)| x * x).sum::<f64>().sqrt();
        TfIdfVector { weights, norm }
    }

    /// Number of distinct words of the document.
    pub fn distinct_words(v: &TfIdfVector) -> usize {
        v.weights.len()
    }

    pub fn cosine(a: &TfIdfVector, b: &TfIdfVector) -> f64 {
        if a.norm == 0.0 || b.norm == 0.0 {
            return 0.0;
        }
        // Merge of the two sorted lists: the dot product in word-id order.
        let (mut x, mut y, mut dot) = (0, 0, 0.0);
        while x < a.weights.len() && y < b.weights.len() {
            match a.weights[x].0.cmp(&b.weights[y].0) {
                std::cmp::Ordering::Less => x += 1,
                std::cmp::Ordering::Greater => y += 1,
                std::cmp::Ordering::Equal => {
                    dot += a.weights[x].1 * b.weights[y].1;
                    x += 1;
                    y += 1;
                }
            }
        }
        dot / (a.norm * b.norm)
    }
}

/// Numbers in a text (integers and decimals, thousands separators removed): runs of digits
/// with `.` and `,` inside, trailing separators dropped. Byte-wise: every character that can
/// be part of a number is ASCII.
pub fn numbers(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let flush = |run: &str, out: &mut Vec<f64>| {
        let t = run.trim_end_matches(['.', ',']);
        if t.is_empty() {
            return;
        }
        let parsed = if t.contains(',') {
            t.replace(',', "").parse::<f64>()
        } else {
            t.parse::<f64>()
        };
        if let Ok(v) = parsed {
            out.push(v);
        }
    };
    let bytes = text.as_bytes();
    let mut start: Option<usize> = None;
    for (k, &b) in bytes.iter().enumerate() {
        let in_number = b.is_ascii_digit() || ((b == b'.' || b == b',') && start.is_some());
        if in_number {
            start.get_or_insert(k);
        } else if let Some(s) = start.take() {
            flush(&text[s..k], &mut out);
        }
    }
    if let Some(s) = start {
        flush(&text[s..], &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_duplicates_score_high() {
        let a = shingles(
            "the flight HAT069 departs at six in the morning from JFK",
            2,
        );
        let b = shingles(
            "the flight HAT069 departs at six in the morning from JFK today",
            2,
        );
        let c = shingles("completely different words about baking bread at home", 2);
        assert!(jaccard(&a, &b) > 0.7);
        assert!(jaccard(&a, &c) < 0.1);
        let sorted = |s: &ShingleSet| {
            let mut v: Vec<u64> = s.iter().copied().collect();
            v.sort_unstable();
            v
        };
        let (ma, mb, mc) = (
            minhash(&sorted(&a), 64),
            minhash(&sorted(&b), 64),
            minhash(&sorted(&c), 64),
        );
        assert!(minhash_similarity(&ma, &mb) > 0.6);
        assert!(minhash_similarity(&ma, &mc) < 0.2);
    }

    #[test]
    fn word_shingles_cover_short_texts() {
        assert!(word_shingles(&[], 3).is_empty());
        assert_eq!(word_shingles(&[1, 2], 3).len(), 1);
        assert_eq!(word_shingles(&[1, 2, 3, 1, 2, 3], 3).len(), 3);
    }

    #[test]
    fn numbers_are_extracted() {
        assert_eq!(numbers("paid $1,250.50 for 3 seats."), vec![1250.5, 3.0]);
    }

    #[test]
    fn tfidf_cosine() {
        let docs: Vec<Vec<u32>> = vec![vec![1, 2, 3], vec![1, 2, 4], vec![5, 6]];
        let m = TfIdf::fit(docs.iter().map(Vec::as_slice));
        let (a, b, c) = (m.vector(&docs[0]), m.vector(&docs[1]), m.vector(&docs[2]));
        assert!(TfIdf::cosine(&a, &b) > TfIdf::cosine(&a, &c));
    }
}
