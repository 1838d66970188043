//! `pisama brain` end to end: the README walkthrough, two writers at once, bad input.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::Run;

/// Runs `pisama brain ARGS` in `dir` with a temporary HOME and a fixed actor.
fn brain(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_pisama"))
        .arg("brain")
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("HOME", dir.join(".home"))
        .env("XDG_CONFIG_HOME", dir.join(".home/.config"))
        .env("USER", "alice")
        .env_remove("PISAMA_ACTOR")
        .env_remove("EDITOR")
        .env_remove("VISUAL")
        .stdin(Stdio::null())
        .output()
        .expect("run pisama");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(dir: &Path, args: &[&str]) -> Run {
    let r = brain(dir, args);
    assert_eq!(
        r.code, 0,
        "{args:?}\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r
}

/// The README walkthrough, step by step.
#[test]
fn readme_walkthrough() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join(".git")).unwrap();
    ok(d, &["init"]);
    assert!(d.join(".brain/brain.toml").is_file());
    assert_eq!(
        std::fs::read_to_string(d.join(".brain/.gitignore")).unwrap(),
        ".index/\nlocal/\n.lock\n"
    );
    // Capture a decision.
    let r = ok(
        d,
        &[
            "new",
            "decision",
            "--title",
            "Use SQLite for the local cache",
            "--body",
            "## Context\n\nWe need a local cache.\n\n## Decision\n\nUse SQLite.",
            "--tag",
            "storage",
            "--format",
            "json",
        ],
    );
    let id = r.json()["short_id"].as_str().unwrap().to_owned();
    // Search finds it.
    let r = ok(d, &["search", "sqlite"]);
    assert!(
        r.stdout.contains("Use SQLite for the local cache"),
        "{}",
        r.stdout
    );
    // The review queue lists it; approval needs a human.
    let r = ok(d, &["review"]);
    assert!(r.stdout.contains("1 pending"), "{}", r.stdout);
    let r = brain(d, &["approve", &id]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("needs a human"));
    let r = ok(d, &["approve", &id, "--yes"]);
    assert!(r.stdout.contains("approved"), "{}", r.stdout);
    // A revision of the approved record is a proposal; the approved text stays.
    ok(d, &["link", &id, "affects", "path:src/cache"]);
    let r = ok(d, &["show", &id, "--format", "json"]);
    assert_eq!(r.json()["pending_proposal"], 2);
    assert_eq!(r.json()["links"].as_array().unwrap().len(), 0);
    ok(d, &["approve", &id, "--yes"]);
    // History shows the events and the diff.
    let r = ok(d, &["history", &id]);
    assert!(r.stdout.contains("created"));
    assert!(r.stdout.contains("proposed"));
    assert!(r.stdout.contains("+links:"), "{}", r.stdout);
    // Approved conventions render into AGENTS.md; the bundle holds approved records only.
    ok(
        d,
        &[
            "new",
            "memory",
            "--title",
            "Run the tests with nextest",
            "--field",
            "memory_type=convention",
            "--body",
            "cargo nextest run --workspace",
        ],
    );
    let r = ok(d, &["review", "--format", "json"]);
    let mem = r.json()["pending"][0]["id"].as_str().unwrap().to_owned();
    ok(d, &["approve", &mem, "--yes"]);
    ok(d, &["transition", &id, "accepted"]);
    let r = ok(d, &["export", "--to", "agents-md"]);
    assert!(r.stdout.contains("## Conventions"), "{}", r.stdout);
    assert!(r.stdout.contains("Run the tests with nextest"));
    assert!(r.stdout.contains("## Decisions"));
    ok(d, &["export", "--to", "bundle", "--out", "bundle"]);
    assert!(d.join("bundle/bundle.json").is_file());
    let r = ok(d, &["status"]);
    assert!(r.stdout.contains("chain verified"), "{}", r.stdout);
    let r = ok(d, &["check"]);
    assert_eq!(r.stdout.trim(), "ok");
    assert!(!d.join(".home").exists(), "HOME was touched");
}

#[test]
fn two_processes_writing_at_once_lose_nothing() {
    const PER_WRITER: usize = 200;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_owned();
    ok(&d, &["init"]);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let d = d.clone();
            std::thread::spawn(move || {
                // Each writer is one shell process creating PER_WRITER records in a loop, so the
                // two writers' processes overlap for the whole run.
                let script = format!(
                    "for i in $(seq 1 {PER_WRITER}); do \"$PISAMA\" brain new memory --title \"writer {w} item $i\" --body \"concurrent body $i of writer {w}\" -q || exit 1; done"
                );
                let status = Command::new("sh")
                    .arg("-c")
                    .arg(script)
                    .current_dir(&d)
                    .env("PISAMA", env!("CARGO_BIN_EXE_pisama"))
                    .env("HOME", d.join(".home"))
                    .env("USER", format!("writer{w}"))
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let files = crate::support::files_under(&d.join(".brain/memory"));
    assert_eq!(files.len(), 2 * PER_WRITER);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.starts_with("---\nid: ") && text.contains("concurrent body"),
            "{}",
            f.display()
        );
    }
    let r = ok(&d, &["status", "--format", "json"]);
    let s = r.json();
    assert_eq!(s["records"], 2 * PER_WRITER);
    assert_eq!(s["journal_events"], 2 * PER_WRITER);
    assert_eq!(s["index"]["documents"], 2 * PER_WRITER);
    // `check` compares the index ids with the file ids and verifies the journal chain.
    let r = ok(&d, &["check"]);
    assert_eq!(r.stdout.trim(), "ok");
    let r = ok(
        &d,
        &["search", "concurrent", "--limit", "50", "--format", "json"],
    );
    assert_eq!(r.json()["hits"].as_array().unwrap().len(), 50);
}

#[test]
fn bad_input_gives_clear_errors_and_keeps_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    let r = brain(d, &["new", "decree", "--title", "x"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown kind `decree`"), "{}", r.stderr);
    let r = brain(
        d,
        &["new", "memory", "--title", "x", "--scope", "../outside/**"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("outside the repository"), "{}", r.stderr);
    let r = brain(
        d,
        &[
            "new",
            "memory",
            "--title",
            "x",
            "--link",
            "relates_to:01JDQ3K8Z6Q2W7X9Y4T5R1M0AB",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no record matches"), "{}", r.stderr);
    let broken = "---\nid: 01JDQ3K8Z6Q2W7X9Y4T5R1M0AB\nkind: note\ntitle: [oops\n---\nbody\n";
    std::fs::write(
        d.join(".brain/notes/broken--01JDQ3K8Z6Q2W7X9Y4T5R1M0AB.md"),
        broken,
    )
    .unwrap();
    let r = brain(d, &["check"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains(".brain/notes/broken--01JDQ3K8Z6Q2W7X9Y4T5R1M0AB.md:"),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read_to_string(d.join(".brain/notes/broken--01JDQ3K8Z6Q2W7X9Y4T5R1M0AB.md"))
            .unwrap(),
        broken
    );
    let r = brain(d, &["show", "nothing-like-this"]);
    assert_eq!(r.code, 2);
}

/// The README's walkthrough block, run as written by `sh -e` with `pisama` on `PATH`.
#[test]
fn readme_walkthrough_block_runs_as_written() {
    let readme = std::fs::read_to_string(crate::support::root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- brain-walkthrough:start -->")
        .expect("walkthrough start");
    let end = readme
        .find("<!-- brain-walkthrough:end -->")
        .expect("walkthrough end");
    let block = &readme[start..end];
    let script = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(s, _)| s)
        .expect("sh block");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pisama")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(d)
        .env("PATH", path)
        .env("HOME", d.join(".home"))
        .env("USER", "alice")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("Use SQLite for the local cache"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+links:"),
        "history shows the diff: {stdout}"
    );
    assert!(stdout.contains("## Conventions"), "{stdout}");
    assert!(stdout.contains("chain verified"), "{stdout}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    assert!(!d.join(".home").exists(), "HOME was touched");
}
