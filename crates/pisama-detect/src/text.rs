//! Text helpers for T2 detectors: shingles and `MinHash` similarity, TF-IDF, claim and number
//! extraction. All deterministic and linear in the text length.

use std::collections::{HashMap, HashSet};

use crate::view::tokenize;

/// 64-bit FNV-1a of a byte string (stable across runs and platforms, unlike `DefaultHasher`).
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Hashes of word `k`-shingles of a text.
pub fn shingles(text: &str, k: usize) -> HashSet<u64> {
    let words: Vec<&str> = tokenize(text).collect();
    let mut out = HashSet::new();
    if words.len() < k {
        if !words.is_empty() {
            out.insert(fnv(words.join(" ").as_bytes()));
        }
        return out;
    }
    for w in words.windows(k) {
        out.insert(fnv(w.join(" ").as_bytes()));
    }
    out
}

/// Hashes of `k`-shingles over word ids (as from `TraceView::words`); a text shorter than `k`
/// words gives one shingle of all its words, an empty one none.
pub fn word_shingles(words: &[u32], k: usize) -> HashSet<u64> {
    let k = k.max(1);
    let hash = |ws: &[u32]| {
        let bytes: Vec<u8> = ws.iter().flat_map(|w| w.to_le_bytes()).collect();
        fnv(&bytes)
    };
    if words.len() < k {
        return if words.is_empty() {
            HashSet::new()
        } else {
            HashSet::from([hash(words)])
        };
    }
    words.windows(k).map(hash).collect()
}

/// Jaccard similarity of two sets.
pub fn jaccard(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count();
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// A `MinHash` signature: `n` minimum hashes under `n` fixed seeds. Signatures compare in O(n)
/// whatever the text length, which keeps near-duplicate search linear.
pub fn minhash(shingles: &HashSet<u64>, n: usize) -> Vec<u64> {
    (0..n as u64)
        .map(|seed| {
            let mix = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            shingles
                .iter()
                .map(|h| (h ^ mix).wrapping_mul(0xff51_afd7_ed55_8ccd))
                .min()
                .unwrap_or(u64::MAX)
        })
        .collect()
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
    idf: HashMap<u32, f64>,
}

impl TfIdf {
    pub fn fit<'a>(docs: impl IntoIterator<Item = &'a [u32]>) -> Self {
        let mut df: HashMap<u32, usize> = HashMap::new();
        let mut n = 0usize;
        for doc in docs {
            n += 1;
            let unique: HashSet<u32> = doc.iter().copied().collect();
            for w in unique {
                *df.entry(w).or_default() += 1;
            }
        }
        let idf = df
            .into_iter()
            .map(|(w, d)| (w, ((1 + n) as f64 / (1 + d) as f64).ln() + 1.0))
            .collect();
        TfIdf { idf }
    }

    pub fn vector(&self, doc: &[u32]) -> HashMap<u32, f64> {
        let mut tf: HashMap<u32, f64> = HashMap::new();
        for w in doc {
            *tf.entry(*w).or_default() += 1.0;
        }
        for (w, v) in &mut tf {
            *v *= self.idf.get(w).copied().unwrap_or(1.0);
        }
        tf
    }

    pub fn cosine(a: &HashMap<u32, f64>, b: &HashMap<u32, f64>) -> f64 {
        let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
        let dot: f64 = small
            .iter()
            .filter_map(|(w, x)| large.get(w).map(|y| x * y))
            .sum();
        let na: f64 = a.values().map(|x| x * x).sum::<f64>().sqrt();
        let nb: f64 = b.values().map(|x| x * x).sum::<f64>().sqrt();
        if na == 0.0 || nb == 0.0 {
            0.0
        } else {
            dot / (na * nb)
        }
    }
}

/// Numbers in a text (integers and decimals, thousands separators removed).
pub fn numbers(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<f64>| {
        let t = cur.trim_end_matches(['.', ',']).replace(',', "");
        if !t.is_empty()
            && let Ok(v) = t.parse::<f64>()
        {
            out.push(v);
        }
        cur.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || ((c == '.' || c == ',') && !cur.is_empty()) {
            cur.push(c);
        } else {
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
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
        let (ma, mb, mc) = (minhash(&a, 64), minhash(&b, 64), minhash(&c, 64));
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
