//! Project brain: reindex 10,000 generated records, then search latency over 1,000 queries.
//!
//! Targets (product.md, "Performance"): reindex under 5 s, search p99 under 5 ms.
//! Run: `cargo bench --bench brain`. The reindex time and the p50/p99 of 1,000 queries are
//! printed first; divan then measures a few single queries.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pisama_brain::index::{BrainIndex, SearchQuery};
use pisama_brain::model::{Kind, Record, Review};
use pisama_brain::store::{Brain, write_atomic};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: usize = 10_000;
const QUERIES: usize = 1_000;

const WORDS: &[&str] = &[
    "tantivy",
    "index",
    "search",
    "parser",
    "trace",
    "span",
    "agent",
    "loop",
    "retry",
    "timeout",
    "cache",
    "schema",
    "journal",
    "review",
    "approve",
    "redaction",
    "secret",
    "token",
    "budget",
    "context",
    "decision",
    "spec",
    "plan",
    "memory",
    "workflow",
    "prompt",
    "adapter",
    "format",
    "otlp",
    "langgraph",
    "detector",
    "finding",
    "severity",
    "benchmark",
    "latency",
    "throughput",
    "lock",
    "atomic",
    "rename",
    "fsync",
    "manifest",
    "anchor",
    "stale",
    "glob",
    "export",
    "import",
    "convention",
    "gotcha",
    "command",
    "release",
    "migration",
    "database",
    "sqlite",
    "postgres",
];

/// A small deterministic generator (xorshift), so every run indexes the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn word(&mut self) -> &'static str {
        WORDS[(self.next() % WORDS.len() as u64) as usize]
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    brain: Brain,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let brain = Brain::init(dir.path()).expect("init");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for i in 0..RECORDS {
            let kind = Kind::ALL[i % Kind::ALL.len()];
            let title: Vec<&str> = (0..5).map(|_| rng.word()).collect();
            let mut body = String::from("## Context\n\n");
            for p in 0..4 {
                let words: Vec<&str> = (0..40).map(|_| rng.word()).collect();
                body.push_str(&words.join(" "));
                body.push_str(if p == 1 {
                    "\n\n## Decision\n\n"
                } else {
                    ".\n\n"
                });
            }
            let mut r = Record::new(kind, title.join(" "), body);
            r.review = if i % 3 == 0 {
                Review::Proposed
            } else {
                Review::Approved
            };
            r.tags = vec![rng.word().to_owned(), rng.word().to_owned()];
            let path = brain.dir().join(kind.folder()).join(r.file_name());
            write_atomic(&path, r.to_markdown().as_bytes()).expect("write record");
        }
        Fixture { _dir: dir, brain }
    })
}

fn queries() -> Vec<SearchQuery> {
    let mut rng = Rng(42);
    (0..QUERIES)
        .map(|i| {
            let text = match i % 4 {
                0 => rng.word().to_owned(),
                1 => format!("{} {}", rng.word(), rng.word()),
                2 => format!("\"{} {}\"", rng.word(), rng.word()),
                _ => format!("+{} -{}", rng.word(), rng.word()),
            };
            SearchQuery {
                text,
                kinds: if i % 5 == 0 {
                    vec![Kind::Decision]
                } else {
                    Vec::new()
                },
                reviews: if i % 2 == 0 {
                    vec![Review::Approved]
                } else {
                    Vec::new()
                },
                limit: 10,
                ..SearchQuery::default()
            }
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let f = fixture();
    let start = Instant::now();
    let report = f.brain.reindex().expect("reindex");
    let reindex = start.elapsed();
    assert_eq!(report.documents, RECORDS as u64);
    let (ix, _) = f.brain.fresh_index().expect("open index");
    let qs = queries();
    let mut times = Vec::with_capacity(qs.len());
    for q in &qs {
        let t = Instant::now();
        let hits = ix.search(q).expect("search");
        times.push(t.elapsed());
        std::hint::black_box(hits);
    }
    times.sort();
    println!(
        "brain: reindex {RECORDS} records in {:.2} s; search over {QUERIES} queries: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        reindex.as_secs_f64(),
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
    divan::main();
}

fn index() -> &'static BrainIndex {
    static IX: OnceLock<BrainIndex> = OnceLock::new();
    IX.get_or_init(|| fixture().brain.fresh_index().expect("index").0)
}

#[divan::bench(args = ["tantivy", "retry timeout", "\"atomic rename\"", "+cache -sqlite"])]
fn search(q: &str) -> usize {
    index()
        .search(&SearchQuery {
            text: q.to_owned(),
            limit: 10,
            ..SearchQuery::default()
        })
        .expect("search")
        .len()
}
