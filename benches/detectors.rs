//! Where detection time goes: each detector alone on one large generated trace, after the
//! shared indexes of `TraceView` are built (they are timed on their own line), so a slow
//! detector shows up as itself and not as "whoever touched the cache first".
//!
//! Input: a mixed trace written by `../shared/bench/gen/gen_trace.py` into `.bench-data/`
//! (git-ignored), 100,000 spans unless told otherwise.
//!
//! Run: `cargo bench --bench detectors` (all detectors, 100k spans), or
//! `cargo bench --bench detectors -- --spans 10000 --only repeated-message,pii-leak`.
//! `--runs N` repeats each measurement and keeps the fastest (default 3). Detector times are
//! thread CPU time (Linux), so they hold on a busy machine. The binary under
//! `target/release/deps/detectors-*` is what to hand to `perf record` for one detector.

#![allow(clippy::print_stdout, reason = "a benchmark report goes to stdout")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pisama_detect::catalog;
use pisama_detect::detectors;
use pisama_detect::view::TraceView;
use pisama_trace::load::{LoadOptions, load_all};

/// The same allocator as the `pisama` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    spans: usize,
    runs: usize,
    only: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        spans: 100_000,
        runs: 3,
        only: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spans" => args.spans = it.next().and_then(|v| v.parse().ok()).unwrap_or(100_000),
            "--runs" => args.runs = it.next().and_then(|v| v.parse().ok()).unwrap_or(3).max(1),
            "--only" => {
                args.only = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect();
            }
            // `cargo bench` passes `--bench`; anything else is ignored likewise.
            _ => {}
        }
    }
    args
}

fn trace_file(spans: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(".bench-data");
    std::fs::create_dir_all(&dir).expect("create .bench-data");
    let path = dir.join(format!("mixed_{spans}.json"));
    if !path.exists() {
        let generator = root.join("../shared/bench/gen/gen_trace.py");
        let ok = Command::new("python3")
            .arg(&generator)
            .args(["--spans", &spans.to_string(), "--out"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not run {} (python3 needed)", generator.display());
    }
    path
}

/// On-CPU time of the calling thread (Linux `schedstat`, nanoseconds): on a machine shared
/// with other work, wall time measures the neighbours as much as the code.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Fastest of `runs` runs of a single-threaded `f`, in thread CPU time where the system
/// reports it, else in wall time.
fn fastest(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let (cpu, wall) = (thread_cpu(), Instant::now());
        out = f();
        let took = match (cpu, thread_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => wall.elapsed(),
        };
        best = best.min(took);
    }
    (best, out)
}

/// Fastest of `runs` runs of `f` in wall time (for the parallel parts).
fn fastest_wall(runs: usize, mut f: impl FnMut() -> usize) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
    }
    best
}

fn main() {
    let args = parse_args();
    let path = trace_file(args.spans);
    let t = Instant::now();
    let (_, traces) = load_all(&path, &LoadOptions::default()).expect("the trace loads");
    println!(
        "{:<34} {:>10.1} ms",
        "load + parse",
        t.elapsed().as_secs_f64() * 1e3
    );
    let trace = &traces[0].trace;
    let (view_new, _) = fastest(args.runs, || TraceView::new(trace).len());
    println!(
        "{:<34} {:>10.1} ms",
        "TraceView::new",
        view_new.as_secs_f64() * 1e3
    );
    let caches = fastest_wall(args.runs, || {
        let v = TraceView::new(trace);
        v.build_caches();
        v.len()
    });
    println!(
        "{:<34} {:>10.1} ms wall (parallel)",
        "TraceView shared text caches",
        caches.as_secs_f64() * 1e3
    );
    let (caches_cpu, _) = fastest(args.runs, || {
        let v = TraceView::new(trace);
        if !v.conversation().is_empty() {
            let _ = v.conversation_shingles(0);
        }
        v.len()
    });
    println!(
        "{:<34} {:>10.1} ms (one thread)",
        "TraceView shared text caches",
        caches_cpu.as_secs_f64() * 1e3
    );
    let view = TraceView::new(trace);
    view.build_caches();
    let metas = catalog::builtin().expect("the catalogue parses");
    let mut rows = Vec::new();
    for d in detectors::all() {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == d.id()) {
            continue;
        }
        let params = metas
            .iter()
            .find(|m| m.id == d.id())
            .map(|m| m.params.clone())
            .unwrap_or_default();
        let (time, hits) = fastest(args.runs, || d.detect(&view, &params).len());
        rows.push((time, d.id(), hits));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let total: Duration = rows.iter().map(|r| r.0).sum();
    for (time, id, hits) in &rows {
        println!(
            "{id:<34} {:>10.1} ms  {:>6.0} ns/span  {hits} hits",
            time.as_secs_f64() * 1e3,
            time.as_secs_f64() * 1e9 / trace.spans.len().max(1) as f64
        );
    }
    println!(
        "{:<34} {:>10.1} ms  ({} spans)",
        "all detectors (sequential)",
        total.as_secs_f64() * 1e3,
        trace.spans.len()
    );
}
