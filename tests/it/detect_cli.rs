//! `pisama detect`, `detectors`, `explain`, `schema` and `eval` end to end.

use crate::support::{bench_dir, files_under, fixtures, pisama, pisama_stdin, root, s};

fn positive(id: &str) -> std::path::PathBuf {
    root().join("fixtures/detectors").join(id).join("positive")
}

#[test]
fn exit_codes_follow_fail_on() {
    let dir = positive("unverified-success-claim");
    let high = pisama(&["detect", s(&dir), "--fail-on", "high"]);
    assert_eq!(high.code, 1, "{}", high.stderr);
    let never = pisama(&["detect", s(&dir), "--fail-on", "never"]);
    assert_eq!(never.code, 0);
    let clean = pisama(&[
        "detect",
        s(&fixtures().join("tau-bench/airline-two-runs.json")),
        "--detectors",
        "tool-retry-storm",
    ]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    let missing = pisama(&["detect", "/nope.json"]);
    assert_eq!(missing.code, 2);
    let unknown = pisama(&["detect", s(&dir), "--detectors", "no-such-detector"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("unknown detector"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn json_and_jsonl_follow_the_schema() {
    let dir = positive("unverified-success-claim");
    let doc = pisama(&["detect", s(&dir), "--format", "json", "--fail-on", "never"]).json();
    assert_eq!(doc["schema_version"], 1);
    let traces = doc["traces"].as_array().unwrap();
    assert_eq!(traces.len(), files_under(&dir).len());
    let schema = pisama(&["schema"]).json();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for t in traces {
        for key in &required {
            assert!(t.get(*key).is_some(), "missing `{key}` in {t}");
        }
        for key in [
            "source",
            "format",
            "verdict",
            "score",
            "attribution",
            "findings",
        ] {
            assert!(t.get(key).is_some(), "missing `{key}`");
        }
    }
    let lines = pisama(&["detect", s(&dir), "--format", "jsonl", "--fail-on", "never"]);
    assert_eq!(lines.stdout.lines().count(), files_under(&dir).len());
    for line in lines.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["schema_version"], 1);
    }
}

#[test]
fn the_schema_file_is_current() {
    let generated = pisama(&["schema"]).json();
    let path = root().join("docs/detect.schema.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        generated, committed,
        "docs/detect.schema.json is stale: run `pisama schema > docs/detect.schema.json`"
    );
}

#[test]
fn sarif_is_2_1_0_with_rules_and_locations() {
    let dir = positive("unverified-success-claim");
    let doc = pisama(&["detect", s(&dir), "--format", "sarif", "--fail-on", "never"]).json();
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        let rule = r["ruleId"].as_str().unwrap();
        assert!(rules.contains(&rule));
        assert_eq!(rules[r["ruleIndex"].as_u64().unwrap() as usize], rule);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(
            std::path::Path::new(loc["artifactLocation"]["uri"].as_str().unwrap())
                .extension()
                .is_some_and(|e| e == "json")
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn junit_and_markdown_render() {
    let dir = positive("unverified-success-claim");
    let junit = pisama(&["detect", s(&dir), "--format", "junit", "--fail-on", "never"]).stdout;
    assert!(junit.starts_with("<?xml"));
    assert_eq!(junit.matches("<testcase").count(), files_under(&dir).len());
    assert_eq!(junit.matches("<failure").count(), 1);
    assert!(junit.trim_end().ends_with("</testsuites>"));
    let md = pisama(&[
        "detect",
        s(&dir),
        "--format",
        "markdown",
        "--fail-on",
        "never",
    ])
    .stdout;
    let heading = format!("## pisama: {} trace(s)", files_under(&dir).len());
    assert!(md.starts_with(&heading), "{md}");
    assert!(md.contains("| severity | detector |"));
}

#[test]
fn stdin_jsonl_stream_in_equals_out() {
    let text = std::fs::read_to_string(fixtures().join("tau-bench/airline-two-runs.json")).unwrap();
    let converted = pisama_stdin(
        &["convert", "-", "--to", "pisama", "--jsonl"],
        text.as_bytes(),
    );
    let run = pisama_stdin(
        &["detect", "-", "--format", "jsonl", "--fail-on", "never"],
        converted.stdout.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2);
}

#[test]
fn config_file_overrides_parameters_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pisama.toml");
    std::fs::write(&cfg, "[detectors.tool-retry-storm]\nmin_repeats = 10\n").unwrap();
    let storm = positive("tool-retry-storm");
    let quiet = pisama(&[
        "detect",
        s(&storm),
        "--config",
        s(&cfg),
        "--detectors",
        "tool-retry-storm",
        "--format",
        "json",
    ])
    .json();
    assert_eq!(quiet["traces"][0]["findings"].as_array().unwrap().len(), 0);
    std::fs::write(&cfg, "[detectors.tool-retry-storm]\nmin_repeatz = 10\n").unwrap();
    let bad = pisama(&["detect", s(&storm), "--config", s(&cfg)]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("min_repeatz") && bad.stderr.contains("pisama.toml"),
        "{}",
        bad.stderr
    );
}

#[test]
fn detectors_and_explain() {
    let list = pisama(&["detectors", "--format", "json"]).json();
    assert!(list["detectors"].as_array().unwrap().len() >= 3);
    let explain = pisama(&["explain", "tool-retry-storm"]);
    assert_eq!(explain.code, 0);
    assert!(explain.stdout.contains("How to fix it"));
    let unknown = pisama(&["explain", "retry"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("did you mean"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn eval_prints_metrics_with_intervals_and_baselines() {
    let Some(bench) = bench_dir() else { return };
    let ww = pisama(&[
        "eval",
        s(&bench.join("who-and-when/Algorithm-Generated")),
        "--dataset",
        "who-and-when",
        "--format",
        "json",
    ])
    .json();
    assert_eq!(ww["metrics"]["agent_accuracy"]["n"], 126);
    assert!(ww["metrics"]["baselines"].as_array().unwrap().len() >= 2);
    let tau = pisama(&[
        "eval",
        s(&bench.join("tau-bench-airline")),
        "--dataset",
        "tau-bench",
        "--format",
        "json",
    ])
    .json();
    assert_eq!(tau["metrics"]["failed_runs"], 116);
    assert_eq!(tau["metrics"]["successful_runs"], 84);
    let ci = &tau["metrics"]["auroc"];
    assert!(ci["ci_low"].as_f64().unwrap() <= ci["value"].as_f64().unwrap());
}
