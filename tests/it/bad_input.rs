//! Hostile and broken inputs: each gets a clear message naming the file and exit code 2, or a
//! warning when the rest is usable. None panics.

use crate::support::{Run, pisama, s};

fn write(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Both commands that read traces, `inspect` and `detect` (which reads on its own thread).
fn check_error(name: &str, bytes: &[u8], expect: &str) {
    let (_dir, path) = write(name, bytes);
    for command in ["inspect", "detect"] {
        let run = pisama(&[command, s(&path)]);
        check_error_run(name, command, &run, expect);
    }
}

fn check_error_run(name: &str, command: &str, run: &Run, expect: &str) {
    assert_eq!(
        run.code, 2,
        "{command} {name}: expected exit 2, got {}\nstdout: {}\nstderr: {}",
        run.code, run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains(name),
        "{name}: the message must name the file: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(expect),
        "{name}: expected {expect:?} in: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{name}: panicked: {}",
        run.stderr
    );
}

#[test]
fn truncated_json() {
    check_error(
        "truncated.json",
        br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab"#,
        "invalid JSON at line 1",
    );
}

#[test]
fn binary_garbage() {
    let mut bytes = vec![0x7f, b'E', b'L', b'F', 0, 0, 1];
    bytes.extend((0..2000u32).map(|i| (i * 37 % 251) as u8));
    check_error("garbage.bin.json", &bytes, "binary data");
}

#[test]
fn random_text_is_unrecognized_with_what_was_seen() {
    check_error(
        "notes.txt",
        b"hello there\nthis is not a trace\n",
        "unrecognized format",
    );
    check_error(
        "unknown.json",
        br#"{"hello": "world", "count": 3}"#,
        "keys [hello, count]",
    );
    let (_d, path) = write("unknown2.json", br#"{"hello": "world"}"#);
    let run = pisama(&["inspect", s(&path)]);
    assert!(run.stderr.contains("supported formats"), "{}", run.stderr);
}

#[test]
fn empty_file() {
    check_error("empty.json", b"", "empty");
    check_error("blank.jsonl", b"\n  \n\t\n", "empty");
}

#[test]
fn nesting_bomb() {
    let bytes = vec![b'['; 100_000];
    check_error("bomb.json", &bytes, "nesting deeper than 128 levels");
    let mut obj = Vec::new();
    for _ in 0..100_000 {
        obj.extend_from_slice(b"{\"a\":");
    }
    check_error("bomb2.json", &obj, "invalid JSON");
}

#[test]
fn invalid_utf8_is_a_warning_when_the_rest_is_usable() {
    let mut bytes = br#"{"messages": [{"role": "user", "content": "caf"#.to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(br#""}, {"role": "assistant", "content": "ok"}]}"#);
    let (_d, path) = write("latin1.json", &bytes);
    let run = pisama(&["inspect", s(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("invalid UTF-8 at line 1"),
        "{}",
        run.stdout
    );
}

#[test]
fn jsonl_with_one_broken_line_loads_the_rest() {
    let text = concat!(
        r#"{"task_id": 1, "traj": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#,
        "\n",
        r#"{"task_id": 2, "traj": [{"role": "user", "content": "a"}, {"role"#,
        "\n",
        r#"{"task_id": 3, "traj": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#,
        "\n",
    );
    let (_d, path) = write("runs.jsonl", text.as_bytes());
    let run = pisama(&["inspect", s(&path), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["files"][0]["trace_count"], 2);
    let warnings = doc["files"][0]["warnings"].to_string();
    assert!(warnings.contains("line 2"), "{warnings}");
}

#[test]
fn a_record_that_is_not_a_trace_is_reported_by_position() {
    let text = r#"[{"task_id": 1, "traj": [{"role": "user", "content": "a"}]}, {"nothing": true}]"#;
    let (_d, path) = write("batch.json", text.as_bytes());
    let run = pisama(&["inspect", s(&path), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.json()["files"][0]["warnings"]
            .to_string()
            .contains("item 1")
    );
}

#[test]
fn a_folder_skips_non_traces_but_reads_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.json"), br#"{"todo": []}"#).unwrap();
    std::fs::write(dir.path().join("README.md"), b"# not a trace").unwrap();
    std::fs::write(
        dir.path().join("chat.json"),
        br#"{"messages": [{"role": "user", "content": "hi"}]}"#,
    )
    .unwrap();
    let run = pisama(&["inspect", s(dir.path()), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["files"].as_array().unwrap().len(), 1);
    assert_eq!(doc["skipped"].as_array().unwrap().len(), 1);
}

#[test]
fn corrupt_gzip() {
    let mut bytes = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    bytes.extend_from_slice(b"this is not deflate data at all");
    check_error("broken.json.gz", &bytes, "gzip data is corrupt");
}
