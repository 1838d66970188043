//! `inspect`, `convert` and `formats` end to end.

use crate::support::{files_under, fixtures, pisama, pisama_stdin, s};

#[test]
fn inspect_succeeds_on_every_fixture() {
    let files = files_under(&fixtures());
    assert!(files.len() >= 5, "fixtures missing");
    for file in files {
        let run = pisama(&["inspect", s(&file), "--format", "json"]);
        assert_eq!(run.code, 0, "{}: {}", file.display(), run.stderr);
        let doc = run.json();
        let traces = doc["files"][0]["traces"].as_array().expect("traces");
        assert!(!traces.is_empty(), "{}: no traces", file.display());
        for t in traces {
            assert!(
                t["spans"].as_u64().unwrap_or(0) > 0,
                "{}: a trace without spans",
                file.display()
            );
        }
    }
}

#[test]
fn inspect_text_names_format_agents_and_tools() {
    let file = fixtures().join("who-and-when/algorithm-generated.json");
    let run = pisama(&["inspect", s(&file)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("who-and-when"));
    assert!(
        run.stdout
            .contains("Data_Analysis_Expert, Computer_terminal, Verification_Expert")
    );
    assert!(run.stdout.contains("tool calls 2 (1 failed)"));
}

#[test]
fn inspect_a_folder_recursively_and_stdin() {
    let run = pisama(&["inspect", s(&fixtures()), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    assert!(doc["files"].as_array().unwrap().len() >= 5);

    let text = std::fs::read(fixtures().join("generic-chat/support-chat.json")).unwrap();
    let run = pisama_stdin(&["inspect", "-", "--format", "json"], &text);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["files"][0]["format"], "generic-chat");
}

#[test]
fn gzip_is_read_transparently() {
    use std::io::Write;
    let text = std::fs::read(fixtures().join("generic-chat/support-chat.json")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.json.gz");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let run = pisama(&["inspect", s(&path), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["files"][0]["compression"], "gzip");
    assert_eq!(doc["files"][0]["format"], "generic-chat");
}

#[test]
fn input_format_overrides_detection_and_rejects_unknown_names() {
    let file = fixtures().join("generic-chat/messages.jsonl");
    let run = pisama(&[
        "inspect",
        s(&file),
        "--input-format",
        "generic-chat",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["files"][0]["rule"], "--input-format");
    let run = pisama(&["inspect", s(&file), "--input-format", "nope"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown --input-format"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_path_is_an_input_error() {
    let run = pisama(&["inspect", "/definitely/not/here.json"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no such file or directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn convert_to_pisama_round_trips_through_inspect() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "who-and-when/algorithm-generated.json",
        "generic-chat/support-chat.json",
        "pisama-spans/generated-30.json",
    ] {
        let src = fixtures().join(rel);
        let out = dir.path().join("out.json");
        let run = pisama(&["convert", s(&src), "--to", "pisama", "-o", s(&out)]);
        assert_eq!(run.code, 0, "{rel}: {}", run.stderr);
        let before = pisama(&["inspect", s(&src), "--format", "json"]).json();
        let after = pisama(&["inspect", s(&out), "--format", "json"]).json();
        assert_eq!(after["files"][0]["format"], "pisama");
        for key in [
            "agents",
            "spans",
            "spans_by_kind",
            "tool_calls",
            "tool_errors",
            "usage",
            "steps",
            "handoffs",
            "labels",
        ] {
            assert_eq!(
                before["files"][0]["traces"][0][key], after["files"][0]["traces"][0][key],
                "{rel}: `{key}` changed in the round trip"
            );
        }
    }
}

#[test]
fn convert_many_traces_writes_json_lines() {
    let src = fixtures().join("tau-bench/airline-two-runs.json");
    let run = pisama(&["convert", s(&src), "--to", "pisama"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2);
    let back = pisama_stdin(&["inspect", "-", "--format", "json"], run.stdout.as_bytes()).json();
    assert_eq!(back["files"][0]["trace_count"], 2);
}

#[test]
fn formats_lists_every_format() {
    let run = pisama(&["formats", "--format", "json"]);
    assert_eq!(run.code, 0);
    let names: Vec<String> = run.json()["formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    for name in [
        "otlp",
        "langsmith",
        "claude-code",
        "codex",
        "atif",
        "who-and-when",
        "tau-bench",
        "mad",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing");
    }
}

#[test]
fn help_teaches() {
    let run = pisama(&["inspect", "--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Examples:"));
    assert!(run.stdout.contains("--input-format"));
}

#[test]
fn labels_never_change_the_trace() {
    // The same case with the answers altered gives the identical trace; only labels differ.
    let src =
        std::fs::read_to_string(fixtures().join("who-and-when/algorithm-generated.json")).unwrap();
    let mut altered: serde_json::Value = serde_json::from_str(&src).unwrap();
    altered["mistake_agent"] = "Verification_Expert".into();
    altered["mistake_step"] = "5".into();
    altered["mistake_reason"] = "something else".into();
    altered["ground_truth"] = "0".into();
    let a = pisama_stdin(&["convert", "-", "--to", "pisama"], src.as_bytes()).json();
    let b = pisama_stdin(
        &["convert", "-", "--to", "pisama"],
        altered.to_string().as_bytes(),
    )
    .json();
    assert_eq!(a["trace"], b["trace"]);
    assert_ne!(a["labels"], b["labels"]);
}
