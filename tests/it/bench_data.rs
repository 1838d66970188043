//! Walks the labelled development data in `../shared/bench/` when it is present: every file
//! must load, with plausible agents and steps.

use crate::support::{bench_dir, pisama, s};

#[allow(
    clippy::print_stderr,
    reason = "tell the runner why the test did nothing"
)]
fn skip(what: &str) {
    eprintln!("skipping: ../shared/bench/{what} is not present");
}

#[test]
fn who_and_when_every_case_loads_with_agents_and_steps() {
    let Some(bench) = bench_dir() else {
        return skip("who-and-when");
    };
    let dir = bench.join("who-and-when/Algorithm-Generated");
    let run = pisama(&["inspect", s(&dir), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 126);
    for f in files {
        let t = &f["traces"][0];
        assert!(
            !t["agents"].as_array().unwrap().is_empty(),
            "{}: agents {}",
            f["path"],
            t["agents"]
        );
        assert!(t["steps"].as_u64().unwrap() >= 2, "{}", f["path"]);
        assert!(
            t["labels"].as_u64().unwrap_or(0) > 0,
            "{}: labels missing",
            f["path"]
        );
    }
}

#[test]
fn tau_bench_all_runs_load() {
    let Some(bench) = bench_dir() else {
        return skip("tau-bench-airline");
    };
    let run = pisama(&[
        "inspect",
        s(&bench.join("tau-bench-airline/gpt-4o-airline.json")),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    let traces = doc["files"][0]["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 200);
    for t in traces {
        assert!(t["steps"].as_u64().unwrap() >= 3);
        assert!(t["agents"].as_array().unwrap().iter().any(|a| a == "agent"));
    }
    assert!(
        traces
            .iter()
            .map(|t| t["tool_calls"].as_u64().unwrap())
            .sum::<u64>()
            > 500
    );
}

#[test]
fn mast_human_every_record_loads() {
    let Some(bench) = bench_dir() else {
        return skip("mast-human");
    };
    let run = pisama(&[
        "inspect",
        s(&bench.join("mast-human/MAD_human_labelled_dataset.json")),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    let traces = doc["files"][0]["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 19);
    for t in traces {
        assert!(t["steps"].as_u64().unwrap() >= 1);
    }
}
