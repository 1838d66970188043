//! Batch detection: 10,000 small traces (5 to 50 spans each) in one JSONL file, the shape of a
//! nightly export or a folder of test runs. Reading and detection are measured apart; the
//! whole process, reading overlapped with detection, is `benches/compare.py --batch 10000`.
//!
//! Input: `.bench-data/batch_10000.jsonl` (git-ignored), written on first use by
//! `benches/gen_batch.py` from `../shared/bench/gen/gen_trace.py`.
//!
//! Run: `cargo bench --bench batch`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use pisama_detect::{Engine, EngineConfig};
use pisama_trace::Trace;
use pisama_trace::load::{LoadOptions, load_bytes};

/// The same allocator as the `pisama` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRACES: usize = 10_000;

fn main() {
    divan::main();
}

fn batch_path() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(".bench-data");
    std::fs::create_dir_all(&dir).expect("create .bench-data");
    let path = dir.join(format!("batch_{TRACES}.jsonl"));
    if !path.exists() {
        let ok = Command::new("python3")
            .arg(root.join("benches/gen_batch.py"))
            .args(["--traces", &TRACES.to_string(), "--out"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not run benches/gen_batch.py (python3 and ../shared needed)"
        );
    }
    path
}

fn batch_bytes() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| std::fs::read(batch_path()).expect("read the batch file"))
}

/// Read whole, not streamed: this measures parsing, not the streaming reader.
fn options() -> LoadOptions {
    LoadOptions {
        stream_threshold: 1024 * 1024 * 1024,
        ..LoadOptions::default()
    }
}

fn batch_traces() -> &'static [Trace] {
    static DATA: OnceLock<Vec<Trace>> = OnceLock::new();
    DATA.get_or_init(|| {
        let (_, loaded) = load_bytes("batch.jsonl", batch_bytes(), &options()).expect("loads");
        assert_eq!(loaded.len(), TRACES, "one trace per line");
        loaded.into_iter().map(|t| t.trace).collect()
    })
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn read_10000_traces(bencher: Bencher) {
    let bytes = batch_bytes();
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        let (_, traces) =
            load_bytes("batch.jsonl", divan::black_box(bytes), &options()).expect("loads");
        traces.len()
    });
}

/// All detectors over every trace, in parallel across traces (as `pisama detect` does).
#[divan::bench(sample_count = 5, sample_size = 1)]
fn detect_10000_traces(bencher: Bencher) {
    let traces = batch_traces();
    let engine = Engine::new(&EngineConfig::default()).expect("the catalogue builds");
    bencher.counter(ItemsCount::new(traces.len())).bench(|| {
        engine
            .run_many(divan::black_box(traces))
            .iter()
            .map(|r| r.findings.len())
            .sum::<usize>()
    });
}
