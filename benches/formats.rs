//! Parse throughput per trace format: pisama's loader (format detection, adapter, normalization)
//! over the project's own fixtures in `fixtures/traces/<format>/`, one benchmark per format.
//!
//! The fixtures are small (a few KB each), so these figures include the fixed cost of loading
//! one file (sniffing, building the trace, rolling up usage) and are lower than the large-file
//! throughput that `cargo bench --bench parse` measures for OTLP and the incumbent format. They
//! are for comparing formats with one another and for catching an adapter that becomes slow.
//!
//! Run: `cargo bench --bench formats` (or `-- otlp` for one format).

use std::path::{Path, PathBuf};

use divan::Bencher;
use divan::counter::BytesCount;
use pisama_trace::load::{LoadOptions, load_bytes};

/// The same allocator as the `pisama` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

/// One benchmark per folder of `fixtures/traces/`, so a new format is measured once its
/// fixtures exist.
fn formats() -> Vec<&'static str> {
    let mut dirs: Vec<&'static str> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/traces")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| &*e.file_name().to_string_lossy().into_owned().leak())
        .collect();
    dirs.sort_unstable();
    dirs
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/traces")
}

/// The fixture files of one format that load (name, bytes). Sub-folders hold companion files
/// (Claude Code side chains) read beside their session, not inputs of their own.
fn fixture_files(format: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir().join(format);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read fixture");
            (p.display().to_string(), bytes)
        })
        .filter(|(name, bytes)| load_bytes(name, bytes, &LoadOptions::default()).is_ok())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no loadable fixture in {}",
        dir.display()
    );
    files
}

#[divan::bench(args = formats(), sample_count = 20)]
fn load_fixtures(bencher: Bencher, format: &str) {
    let files = fixture_files(format);
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    let options = LoadOptions::default();
    bencher.counter(BytesCount::new(total)).bench(|| {
        let mut traces = 0;
        for (name, bytes) in &files {
            let (_, loaded) =
                load_bytes(name, divan::black_box(bytes), &options).expect("the fixture loads");
            traces += loaded.len();
        }
        traces
    });
}
