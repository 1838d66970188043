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
    assert!(
        r.stderr
            .contains("link target 01JDQ3K8Z6Q2W7X9Y4T5R1M0AB does not exist (dangling link)"),
        "{}",
        r.stderr
    );
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

// ---------------------------------------------------------------------------------------------
// Import

/// Copies a folder tree (the fixtures are copied into each test's own repository).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn import_fixture(kind: &str) -> std::path::PathBuf {
    crate::support::root()
        .join("fixtures/brain/import")
        .join(kind)
}

/// A fresh repository with a brain, in a temporary folder.
fn repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join(".git")).unwrap();
    ok(tmp.path(), &["init"]);
    tmp
}

/// Every record in the review queue, as `show --format json` prints it, by title; plus the
/// record file's text under `"file"`.
fn pending_by_title(d: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let queue = ok(d, &["review", "--format", "json"]).json();
    let mut out = std::collections::BTreeMap::new();
    for p in queue["pending"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        let mut rec = ok(d, &["show", id, "--format", "json"]).json();
        rec["full_id"] = id.into();
        let file = std::fs::read_to_string(d.join(rec["path"].as_str().unwrap())).unwrap();
        rec["fm"] = frontmatter(&file);
        rec["file"] = file.into();
        let title = rec["title"].as_str().unwrap().to_owned();
        assert!(
            out.insert(title.clone(), rec).is_none(),
            "two records {title}"
        );
    }
    out
}

/// A record file's frontmatter as JSON (read with the brain's own YAML reader).
fn frontmatter(file: &str) -> serde_json::Value {
    fn json(n: &pisama_brain::yaml::Node) -> serde_json::Value {
        use pisama_brain::yaml::Value;
        match &n.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Str(s) => s.as_str().into(),
            Value::List(items) => items.iter().map(json).collect(),
            Value::Map(m) => m.iter().map(|(k, v)| (k.clone(), json(v))).collect(),
        }
    }
    let fm = file
        .strip_prefix("---\n")
        .and_then(|r| r.split_once("\n---\n"))
        .expect("frontmatter")
        .0;
    json(&pisama_brain::yaml::parse(fm, 1).expect("frontmatter parses"))
}

/// The `(rel, target id)` pairs of a record's links, sorted.
fn links_of(rec: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = rec["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["rel"].as_str().unwrap().to_owned(),
                l["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn id_of(recs: &std::collections::BTreeMap<String, serde_json::Value>, title: &str) -> String {
    recs.get(title)
        .unwrap_or_else(|| panic!("no record {title:?} in {:?}", recs.keys()))["full_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Imports `source` twice (the second time spelled as an absolute path with a trailing `/`)
/// and checks the second run creates nothing; returns the first run's JSON report.
fn import_twice(d: &Path, source: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["import", source, "--format", "json"];
    args.extend_from_slice(extra);
    let first = ok(d, &args).json();
    let before = ok(d, &["status", "--format", "json"]).json()["records"].clone();
    let abs = d.join(source);
    let abs = if abs.is_dir() {
        format!("{}/", abs.display())
    } else {
        abs.display().to_string()
    };
    let mut args = vec!["import", abs.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let second = ok(d, &args).json();
    assert_eq!(
        second["created"].as_array().unwrap().len(),
        0,
        "second import duplicated: {second:#}"
    );
    assert_eq!(second["linked"].as_array().unwrap().len(), 0, "{second:#}");
    let again = second["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.as_str().unwrap().ends_with("imported before"))
        .count();
    assert_eq!(
        again,
        first["created"].as_array().unwrap().len(),
        "{second:#}"
    );
    let after = ok(d, &["status", "--format", "json"]).json()["records"].clone();
    assert_eq!(before, after);
    // Imported records and their links pass the CI gate; the journal chain holds.
    let r = ok(d, &["check"]);
    assert_eq!(r.stdout.trim(), "ok");
    first
}

fn assert_imported(rec: &serde_json::Value, kind: &str, source: &str) {
    assert_eq!(rec["kind"], kind, "{rec:#}");
    assert_eq!(rec["review"], "proposed", "{rec:#}");
    assert_eq!(rec["revision"], 0, "{rec:#}");
    assert_eq!(rec["fm"]["origin"]["trust"], "imported", "{rec:#}");
    assert_eq!(rec["fm"]["origin"]["actor"], "import", "{rec:#}");
    assert_eq!(rec["fm"]["imported_from"], source, "{rec:#}");
}

#[test]
fn import_adr_tools_folder() {
    let tmp = repo();
    let d = tmp.path();
    copy_tree(&import_fixture("adr-tools"), &d.join("doc/adr"));
    let report = import_twice(d, "doc/adr", &[]);
    assert_eq!(report["created"].as_array().unwrap().len(), 4, "{report:#}");
    let recs = pending_by_title(d);
    assert_eq!(
        recs.keys().collect::<Vec<_>>(),
        [
            "Cache parsed traces in SQLite",
            "Keep parsed traces in a tantivy index",
            "Record architecture decisions",
            "Stream large traces instead of loading them whole",
        ]
    );
    let first = &recs["Record architecture decisions"];
    let sqlite = &recs["Cache parsed traces in SQLite"];
    let tantivy = &recs["Keep parsed traces in a tantivy index"];
    let stream = &recs["Stream large traces instead of loading them whole"];
    assert_imported(
        first,
        "decision",
        "doc/adr/0001-record-architecture-decisions.md",
    );
    // The Nygard status section decides the outcome; "Supersedes X" is not "superseded".
    assert_eq!(first["status"], "accepted");
    assert_eq!(sqlite["status"], "superseded");
    assert_eq!(tantivy["status"], "accepted");
    assert_eq!(stream["status"], "proposed");
    assert_eq!(first["fm"]["date"], "2026-03-02");
    // The body keeps the sections verbatim, without the numbered title line.
    let body = tantivy["body"].as_str().unwrap();
    assert!(body.starts_with("Date: 2026-04-14\n\n## Status"), "{body}");
    assert!(body.contains("## Consequences\n\nSearch is fast and ranked."));
    // Status links become typed links between the imported records, both ways.
    let (id1, id2, id3) = (
        id_of(&recs, "Record architecture decisions"),
        id_of(&recs, "Cache parsed traces in SQLite"),
        id_of(&recs, "Keep parsed traces in a tantivy index"),
    );
    let mut want = vec![
        ("relates_to".to_owned(), id1.clone()),
        ("supersedes".to_owned(), id2.clone()),
    ];
    want.sort();
    assert_eq!(links_of(tantivy), want);
    assert_eq!(
        links_of(sqlite),
        [("superseded_by".to_owned(), id3.clone())]
    );
    assert_eq!(links_of(first), [("relates_to".to_owned(), id3)]);
    assert!(links_of(stream).is_empty());
}

#[test]
fn import_madr_folder() {
    let tmp = repo();
    let d = tmp.path();
    copy_tree(&import_fixture("madr"), &d.join("docs/decisions"));
    let report = import_twice(d, "docs/decisions", &["--from", "madr"]);
    assert_eq!(report["created"].as_array().unwrap().len(), 4, "{report:#}");
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        [
            "docs/decisions/README.md: not a decision",
            "docs/decisions/adr-template.md: not a decision"
        ]
    );
    let recs = pending_by_title(d);
    let madr = &recs["Use MADR for decision records"];
    let exact = &recs["Judge answers with exact string match"];
    let rubric = &recs["Judge answers with a rubric and a local grader model"];
    let pg = &recs["Store evaluation runs in Postgres"];
    assert_imported(
        madr,
        "decision",
        "docs/decisions/0000-use-madr-for-decisions.md",
    );
    assert_eq!(madr["status"], "accepted");
    assert_eq!(exact["status"], "superseded");
    assert_eq!(rubric["status"], "accepted");
    // MADR 2 keeps its metadata in a bullet list instead of frontmatter.
    assert_eq!(pg["status"], "rejected");
    assert_eq!(pg["fm"]["date"], "2026-04-01");
    let both = serde_json::json!(["Ana Lima", "Tom Berg"]);
    assert_eq!(pg["fm"]["decision_makers"], both);
    // Frontmatter lists and strings keep their values under the brain's field names.
    assert_eq!(madr["fm"]["decision_makers"], both);
    assert_eq!(madr["fm"]["date"], "2026-01-12");
    assert_eq!(exact["fm"]["decision_makers"], "Ana Lima");
    assert_eq!(exact["fm"]["consulted"], serde_json::json!(["Eval guild"]));
    assert_eq!(exact["fm"]["informed"], serde_json::json!(["Support team"]));
    // The frontmatter is not copied into the body.
    assert!(
        madr["body"]
            .as_str()
            .unwrap()
            .starts_with("## Context and Problem Statement"),
        "{}",
        madr["body"]
    );
    // `superseded by ADR-0002` links to the file numbered 2.
    assert_eq!(
        links_of(exact),
        [(
            "superseded_by".to_owned(),
            id_of(
                &recs,
                "Judge answers with a rubric and a local grader model"
            )
        )]
    );
}

#[test]
fn import_cline_memory_bank() {
    let tmp = repo();
    let d = tmp.path();
    copy_tree(&import_fixture("cline"), d);
    // Detected from the core file names.
    let report = import_twice(d, "memory-bank", &[]);
    assert_eq!(report["created"].as_array().unwrap().len(), 7, "{report:#}");
    let recs = pending_by_title(d);
    let kinds: Vec<(&str, &str)> = recs
        .iter()
        .map(|(t, r)| (t.as_str(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Active Context", "note"),
            ("Product Context", "context"),
            ("Progress", "note"),
            ("Project Brief", "context"),
            ("Release Checklist", "note"),
            ("System Patterns", "architecture"),
            ("Tech Context", "context"),
        ]
    );
    for r in recs.values() {
        assert_eq!(r["tags"], serde_json::json!(["cline-memory-bank"]));
        assert!(r["links"].as_array().unwrap().is_empty());
    }
    let brief = &recs["Project Brief"];
    assert_imported(brief, "context", "memory-bank/projectbrief.md");
    let body = brief["body"].as_str().unwrap();
    assert!(
        body.starts_with("Tidewatch is a command-line tool"),
        "{body}"
    );
    assert!(body.contains("## Core requirements\n\n- Works offline"));
}

#[test]
fn import_mcp_memory_jsonl() {
    let tmp = repo();
    let d = tmp.path();
    copy_tree(&import_fixture("memory-jsonl"), d);
    let report = import_twice(d, "memory.jsonl", &[]);
    assert_eq!(report["created"].as_array().unwrap().len(), 4, "{report:#}");
    let recs = pending_by_title(d);
    assert_eq!(
        recs.keys().collect::<Vec<_>>(),
        ["Postgres", "Priya_Nair", "billing-service", "ledger-api"]
    );
    let billing = &recs["billing-service"];
    assert_imported(billing, "memory", "memory.jsonl#billing-service");
    assert_eq!(billing["status"], "fact");
    assert_eq!(billing["tags"], serde_json::json!(["service"]));
    assert_eq!(recs["Priya_Nair"]["tags"], serde_json::json!(["person"]));
    let body = billing["body"].as_str().unwrap();
    assert!(body.starts_with("- Written in Go 1.23\n"), "{body}");
    assert!(body.contains("- billing-service *stores data in* Postgres"));
    assert!(body.contains("- billing-service *publishes events to* ledger-api"));
    // Relations become links; two relations to the same entity give one link.
    let mut want = vec![
        ("relates_to".to_owned(), id_of(&recs, "Postgres")),
        ("relates_to".to_owned(), id_of(&recs, "ledger-api")),
    ];
    want.sort();
    assert_eq!(links_of(billing), want);
    assert_eq!(
        links_of(&recs["Priya_Nair"]),
        [("relates_to".to_owned(), id_of(&recs, "billing-service"))]
    );
    assert!(links_of(&recs["Postgres"]).is_empty());
}

#[test]
fn import_spec_kit_specs() {
    let tmp = repo();
    let d = tmp.path();
    copy_tree(&import_fixture("spec-kit"), d);
    let report = import_twice(d, "specs", &[]);
    assert_eq!(report["created"].as_array().unwrap().len(), 4, "{report:#}");
    let recs = pending_by_title(d);
    // research.md is not a record kind spec-kit import knows; it stays where it is.
    assert_eq!(
        recs.keys().collect::<Vec<_>>(),
        [
            "Implementation Plan: Transcript Search",
            "Tasks: Transcript Search",
            "Transcript Search",
            "Weekly Digest",
        ]
    );
    let spec = &recs["Transcript Search"];
    assert_imported(spec, "spec", "specs/001-transcript-search/spec.md");
    assert_eq!(spec["status"], "draft");
    let reqs = spec["fm"]["requirements"].as_array().unwrap();
    let ids: Vec<&str> = reqs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["FR-001", "FR-002", "FR-003", "FR-004", "SC-001", "SC-002"]
    );
    assert_eq!(
        reqs[1]["text"],
        "System MUST rank results by relevance, then by recency."
    );
    assert!(
        spec["body"]
            .as_str()
            .unwrap()
            .starts_with("**Feature Branch**")
    );
    let spec_id = id_of(&recs, "Transcript Search");
    let plan = &recs["Implementation Plan: Transcript Search"];
    let tasks = &recs["Tasks: Transcript Search"];
    assert_imported(tasks, "plan", "specs/001-transcript-search/tasks.md");
    for p in [plan, tasks] {
        assert_eq!(links_of(p), [("implements".to_owned(), spec_id.clone())]);
        assert_eq!(p["fm"]["implements"], spec_id.as_str());
    }
    assert!(plan["fm"].get("steps").is_none());
    let steps = tasks["fm"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    assert_eq!(
        steps[0],
        serde_json::json!({"id": "T001", "title": "Create the `index` and `search` modules", "status": "done"})
    );
    let states: Vec<&str> = steps
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "done", "todo", "todo", "todo"]);
    assert_eq!(steps[4]["id"], "T005");
    assert_eq!(recs["Weekly Digest"]["kind"], "spec");
}

/// Nothing in the brain but its skeleton: no records, no journal lines.
fn assert_brain_empty(d: &Path) {
    let s = ok(d, &["status", "--format", "json"]).json();
    assert_eq!(s["records"], 0, "{s:#}");
    assert!(
        s["journal_events"].is_null() || s["journal_events"] == 0,
        "{s:#}"
    );
}

#[test]
fn import_refuses_a_malformed_file_by_name_and_writes_nothing() {
    let tmp = repo();
    let d = tmp.path();
    // A MADR folder where one file opens frontmatter with broken YAML.
    copy_tree(&import_fixture("madr"), &d.join("adr"));
    let broken = "---\nstatus: [accepted\ndate: 2026-05-01\n---\n\n# Broken\n\nText.\n";
    std::fs::write(d.join("adr/0004-broken.md"), broken).unwrap();
    let r = brain(d, &["import", "adr", "--from", "madr"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("adr/0004-broken.md:"), "{}", r.stderr);
    assert!(r.stderr.contains("YAML"), "{}", r.stderr);
    assert_brain_empty(d);
    assert_eq!(
        std::fs::read_to_string(d.join("adr/0004-broken.md")).unwrap(),
        broken
    );
    // Frontmatter that never closes.
    std::fs::write(
        d.join("adr/0004-broken.md"),
        "---\nstatus: accepted\n# Broken\n",
    )
    .unwrap();
    let r = brain(d, &["import", "adr", "--from", "madr"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("0004-broken.md:1: the frontmatter opened by `---` is never closed"),
        "{}",
        r.stderr
    );
    assert_brain_empty(d);
    // A field of the wrong shape is named with its file.
    std::fs::write(
        d.join("adr/0004-broken.md"),
        "---\nstatus: accepted\ndecision-makers: {lead: Ana}\n---\n\n# Broken\n",
    )
    .unwrap();
    let r = brain(d, &["import", "adr", "--from", "madr"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("0004-broken.md: cannot import: field `decision_makers`"),
        "{}",
        r.stderr
    );
    assert_brain_empty(d);
    // A file that is not text.
    std::fs::write(d.join("adr/0004-broken.md"), b"# Title\n\xff\xfe binary\n").unwrap();
    let r = brain(d, &["import", "adr", "--from", "madr"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("0004-broken.md: cannot import: not UTF-8 text"),
        "{}",
        r.stderr
    );
    assert_brain_empty(d);
    // Fixed, the same folder imports.
    std::fs::remove_file(d.join("adr/0004-broken.md")).unwrap();
    let r = ok(d, &["import", "adr", "--from", "madr", "--format", "json"]);
    assert_eq!(r.json()["created"].as_array().unwrap().len(), 4);

    // memory.jsonl: a line that is not JSON, and an entity without a name.
    let tmp = repo();
    let d = tmp.path();
    let good = std::fs::read_to_string(import_fixture("memory-jsonl/memory.jsonl")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(2, "{\"type\":\"entity\",\"name\":\"half");
    std::fs::write(d.join("memory.jsonl"), lines.join("\n")).unwrap();
    let r = brain(d, &["import", "memory.jsonl"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("memory.jsonl:3: not JSON"),
        "{}",
        r.stderr
    );
    assert_brain_empty(d);
    lines[2] = r#"{"type":"entity","entityType":"person","observations":[]}"#;
    std::fs::write(d.join("memory.jsonl"), lines.join("\n")).unwrap();
    let r = brain(d, &["import", "memory.jsonl"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("memory.jsonl:3: `name` is missing or not a string"),
        "{}",
        r.stderr
    );
    assert_brain_empty(d);
}

#[test]
fn strict_redaction_refuses_an_import_with_a_secret_before_writing() {
    let tmp = repo();
    let d = tmp.path();
    let toml = std::fs::read_to_string(d.join(".brain/brain.toml")).unwrap();
    assert!(toml.contains("mode = \"redact\""), "{toml}");
    std::fs::write(
        d.join(".brain/brain.toml"),
        toml.replace("mode = \"redact\"", "mode = \"strict\""),
    )
    .unwrap();
    copy_tree(&import_fixture("cline"), d);
    std::fs::write(
        d.join("memory-bank/techContext.md"),
        "# Tech Context\n\nDeploy key: ghp_Zx8Kq2Lm4Np6Rt8Vw0Yb2Dc4Fg6Hj8Kl0Mn2\n",
    )
    .unwrap();
    let r = brain(d, &["import", "memory-bank"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("memory-bank/techContext.md: cannot import: strict redaction"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("ghp_"), "{}", r.stderr);
    assert_brain_empty(d);
}

// ---------------------------------------------------------------------------------------------
// Export

const GITHUB_TOKEN: &str = "ghp_Zx8Kq2Lm4Np6Rt8Vw0Yb2Dc4Fg6Hj8Kl0Mn2";
const AWS_KEY: &str = "AKIAZ7Q3N5X2L8K4P1RT";

/// Creates a record and returns its full id.
fn create(d: &Path, args: &[&str]) -> String {
    let mut all = vec!["new"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    ok(d, &all).json()["id"].as_str().unwrap().to_owned()
}

fn approve(d: &Path, id: &str) {
    ok(d, &["approve", id, "--yes"]);
}

/// A brain with approved conventions and decisions, a record holding a redacted secret, an
/// approved record hand-edited to contain a secret, a proposal, a pending revision, a
/// rejected record and a `local/` record. Returns the ids by role.
fn export_repo() -> (
    tempfile::TempDir,
    std::collections::BTreeMap<&'static str, String>,
) {
    let tmp = repo();
    let d = tmp.path();
    let mut ids = std::collections::BTreeMap::new();
    let nextest = create(
        d,
        &[
            "memory",
            "--title",
            "Run the tests with nextest",
            "--field",
            "memory_type=convention",
            "--scope",
            "crates/**",
            "--body",
            "Use `cargo nextest run --workspace`; plain `cargo test` is slower here.",
        ],
    );
    approve(d, &nextest);
    ids.insert("nextest", nextest);
    let token = create(
        d,
        &[
            "memory",
            "--title",
            "Release needs the bot token",
            "--field",
            "memory_type=gotcha",
            "--body",
            &format!("The release job fails unless GITHUB_TOKEN={GITHUB_TOKEN} is set."),
        ],
    );
    approve(d, &token);
    ids.insert("token", token);
    let decision = create(
        d,
        &[
            "decision",
            "--title",
            "Keep traces local",
            "--body",
            "## Decision\n\nTraces never leave the machine.",
        ],
    );
    approve(d, &decision);
    ok(d, &["transition", &decision, "accepted"]);
    ids.insert("decision", decision);
    // Approved, then hand-edited: a secret that never went through a write path.
    let edited = create(
        d,
        &[
            "memory",
            "--title",
            "Staging uses the shared AWS account",
            "--field",
            "memory_type=fact",
            "--body",
            "Staging runs in the shared account.",
        ],
    );
    approve(d, &edited);
    let path = ok(d, &["show", &edited, "--format", "json"]).json()["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(d.join(&path)).unwrap();
    std::fs::write(
        d.join(&path),
        text.replace(
            "Staging runs in the shared account.",
            &format!("Staging runs in the shared account; key {AWS_KEY}."),
        ),
    )
    .unwrap();
    ok(d, &["transition", &edited, "convention"]);
    ids.insert("edited", edited);
    // A proposal (never approved) and a rejected record.
    ids.insert(
        "proposed",
        create(
            d,
            &[
                "memory",
                "--title",
                "Unreviewed proposal about deploys",
                "--field",
                "memory_type=convention",
                "--body",
                "Deploy on Fridays.",
            ],
        ),
    );
    let rejected = create(
        d,
        &[
            "decision",
            "--title",
            "Rejected idea: upload traces",
            "--body",
            "Upload every trace.",
        ],
    );
    ok(d, &["reject", &rejected, "--yes"]);
    ids.insert("rejected", rejected);
    // A pending revision of an approved convention: the approved text is what exports.
    let nextest = ids["nextest"].clone();
    let show = ok(d, &["show", &nextest, "--format", "json"]).json();
    let file = std::fs::read_to_string(d.join(show["path"].as_str().unwrap())).unwrap();
    let editor = d.join("rewrite.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/plain `cargo test` is slower here/PENDING REWRITE/' \"$1\"\n",
    )
    .unwrap();
    make_executable(&editor);
    let r = brain_env(
        d,
        &["edit", &nextest],
        &[("EDITOR", editor.to_str().unwrap())],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(file.contains("plain `cargo test` is slower here"));
    let show = ok(d, &["show", &nextest, "--format", "json"]).json();
    assert_eq!(show["pending_proposal"], 2, "{show:#}");
    (tmp, ids)
}

fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(p).unwrap().permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(p, perm).unwrap();
}

/// Like `brain`, with extra environment variables.
fn brain_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pisama"));
    cmd.arg("brain")
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
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run pisama");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Nothing unapproved or secret in an exported text.
fn assert_clean(what: &str, text: &str) {
    for bad in [
        GITHUB_TOKEN,
        AWS_KEY,
        "Unreviewed proposal",
        "Deploy on Fridays",
        "Rejected idea",
        "PENDING REWRITE",
    ] {
        assert!(!text.contains(bad), "{what} contains {bad:?}:\n{text}");
    }
}

/// `[REDACTED:rule:abcdef]` → `[REDACTED:rule]` (the hash is keyed per brain).
fn unhash(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("[REDACTED:") {
        out.push_str(&rest[..i]);
        let tag = &rest[i..];
        let end = tag.find(']').expect("closed tag");
        let inner = &tag[10..end];
        let (rule, hash) = inner.rsplit_once(':').expect("rule:hash");
        assert!(
            hash.len() == 6 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{tag}"
        );
        out.push_str("[REDACTED:");
        out.push_str(rule);
        out.push(']');
        rest = &tag[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn export_claude_md_and_agents_md_render_approved_redacted_conventions() {
    let (tmp, _ids) = export_repo();
    let d = tmp.path();
    let r = ok(d, &["export", "--to", "claude-md"]);
    assert_clean("CLAUDE.md", &r.stdout);
    assert_eq!(
        unhash(&r.stdout),
        "# CLAUDE.md\n\n\
<!-- Generated by `pisama brain export` from approved records in .brain/. Edit the records, not this file. -->\n\
\n## Conventions\n\
\n### Run the tests with nextest (applies to `crates/**`)\n\n\
Use `cargo nextest run --workspace`; plain `cargo test` is slower here.\n\
\n### Staging uses the shared AWS account\n\n\
Staging runs in the shared account; key [REDACTED:aws_access_key].\n\
\n## Gotchas\n\
\n### Release needs the bot token\n\n\
The release job fails unless GITHUB_TOKEN=[REDACTED:github_token] is set.\n\
\n## Decisions\n\
\n### Keep traces local\n\n\
## Decision\n\nTraces never leave the machine.\n"
    );
    // Stable: the same brain renders byte-identical text, to stdout or to a file.
    let again = ok(d, &["export", "--to", "claude-md"]);
    assert_eq!(r.stdout, again.stdout);
    ok(d, &["export", "--to", "claude-md", "--out", "CLAUDE.md"]);
    assert_eq!(
        std::fs::read_to_string(d.join("CLAUDE.md")).unwrap(),
        r.stdout
    );
    let agents = ok(d, &["export", "--to", "agents-md"]).stdout;
    assert_eq!(
        agents.replacen("# AGENTS.md", "# CLAUDE.md", 1),
        r.stdout,
        "AGENTS.md differs only in its heading"
    );
}

#[test]
fn export_cursor_rules_one_file_per_approved_convention() {
    let (tmp, ids) = export_repo();
    let d = tmp.path();
    std::fs::create_dir_all(d.join(".cursor/rules")).unwrap();
    std::fs::write(d.join(".cursor/rules/mine.mdc"), "my own rule\n").unwrap();
    let r = ok(d, &["export", "--to", "cursor-rules"]);
    assert!(r.stdout.contains("wrote 4 rule file(s)"), "{}", r.stdout);
    let dir = d.join(".cursor/rules");
    let read_all = || -> std::collections::BTreeMap<String, String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect()
    };
    let files = read_all();
    let short = |role: &str| ids[role][ids[role].len() - 8..].to_ascii_lowercase();
    let nextest = format!("brain-run-the-tests-with-nextest--{}.mdc", short("nextest"));
    let decision = format!("brain-keep-traces-local--{}.mdc", short("decision"));
    let token = format!("brain-release-needs-the-bot-token--{}.mdc", short("token"));
    let edited = format!(
        "brain-staging-uses-the-shared-aws-account--{}.mdc",
        short("edited")
    );
    let mut want = vec![
        nextest.clone(),
        decision.clone(),
        token.clone(),
        edited.clone(),
        "mine.mdc".to_owned(),
    ];
    want.sort();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), want);
    for (name, text) in &files {
        assert_clean(name, text);
    }
    assert_eq!(
        files[&nextest],
        "---\ndescription: \"Run the tests with nextest\"\nglobs: crates/**\nalwaysApply: false\n---\n\n\
# Run the tests with nextest\n\n\
Use `cargo nextest run --workspace`; plain `cargo test` is slower here.\n"
    );
    assert!(
        files[&decision].starts_with(
            "---\ndescription: \"Keep traces local\"\nalwaysApply: true\n---\n\n# Keep traces local\n"
        ),
        "{}",
        files[&decision]
    );
    assert!(unhash(&files[&token]).contains("GITHUB_TOKEN=[REDACTED:github_token] is set."));
    assert!(unhash(&files[&edited]).contains("key [REDACTED:aws_access_key]."));
    // Stable across runs.
    ok(d, &["export", "--to", "cursor-rules"]);
    assert_eq!(read_all(), files);
    // A record that stops being exportable loses its rule file; the user's file stays.
    let show = ok(d, &["show", &ids["token"], "--format", "json"]).json();
    let from = d.join(show["path"].as_str().unwrap());
    std::fs::rename(
        &from,
        d.join(".brain/local").join(from.file_name().unwrap()),
    )
    .unwrap();
    let r = ok(d, &["export", "--to", "cursor-rules"]);
    assert!(r.stdout.contains("removed 1 stale one(s)"), "{}", r.stdout);
    let after = read_all();
    assert!(!after.contains_key(&token));
    assert_eq!(after.len(), 4);
    assert_eq!(after["mine.mdc"], "my own rule\n");
}

#[test]
fn export_bundle_holds_approved_redacted_records_only() {
    let (tmp, ids) = export_repo();
    let d = tmp.path();
    let r = ok(d, &["export", "--to", "bundle", "--out", "out"]);
    assert!(
        r.stdout.contains("exported 4 approved record(s)"),
        "{}",
        r.stdout
    );
    let out = d.join("out");
    let files = crate::support::files_under(&out);
    let mut texts = std::collections::BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&out).unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(f).unwrap();
        assert_clean(&rel, &text);
        texts.insert(rel, text);
    }
    let index: serde_json::Value = serde_json::from_str(&texts["bundle.json"]).unwrap();
    let listed: Vec<(&str, &str, &str)> = index["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["title"].as_str().unwrap(),
                r["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("decision", "Keep traces local", ids["decision"].as_str()),
            (
                "memory",
                "Release needs the bot token",
                ids["token"].as_str()
            ),
            (
                "memory",
                "Run the tests with nextest",
                ids["nextest"].as_str()
            ),
            (
                "memory",
                "Staging uses the shared AWS account",
                ids["edited"].as_str()
            ),
        ]
    );
    // One file per listed record, plus the index; every record file is approved.
    assert_eq!(texts.len(), 5, "{:?}", texts.keys());
    for r in index["records"].as_array().unwrap() {
        let text = &texts[r["path"].as_str().unwrap()];
        assert!(text.contains("\nreview: approved\n"), "{text}");
    }
    let edited = index["records"].as_array().unwrap()[3]["path"]
        .as_str()
        .unwrap();
    assert!(unhash(&texts[edited]).contains("key [REDACTED:aws_access_key]."));
    // Stable: a second export writes the same bytes.
    ok(d, &["export", "--to", "bundle", "--out", "out"]);
    for f in &files {
        let rel = f.strip_prefix(&out).unwrap().to_string_lossy().into_owned();
        assert_eq!(std::fs::read_to_string(f).unwrap(), texts[&rel], "{rel}");
    }
    // Rejecting the pending revision keeps the record; moving a record to local/ drops it
    // from the next bundle, file included.
    let show = ok(d, &["show", &ids["decision"], "--format", "json"]).json();
    let from = d.join(show["path"].as_str().unwrap());
    std::fs::rename(
        &from,
        d.join(".brain/local").join(from.file_name().unwrap()),
    )
    .unwrap();
    let r = ok(d, &["export", "--to", "bundle", "--out", "out"]);
    assert!(r.stdout.contains("exported 3"), "{}", r.stdout);
    let now = crate::support::files_under(&out);
    assert_eq!(now.len(), 4, "{now:?}");
    assert!(
        now.iter()
            .all(|f| !f.to_string_lossy().contains("keep-traces-local"))
    );
}

// ---------------------------------------------------------------------------------------------
// Interactive review, driven in a pseudo-terminal

/// `pisama brain review` on a terminal: every key of the queue, with the diff of a proposal.
#[cfg(unix)]
#[test]
fn interactive_review_queue_in_a_terminal() {
    use rexpect::process::WaitStatus;

    let tmp = repo();
    let d = tmp.path();
    let accept = create(
        d,
        &["note", "--title", "Note to approve", "--body", "Keep me."],
    );
    let reject = create(
        d,
        &["note", "--title", "Note to reject", "--body", "Drop me."],
    );
    let revised = create(
        d,
        &[
            "memory",
            "--title",
            "Proposal needing changes",
            "--field",
            "memory_type=fact",
            "--body",
            "The cache lives in /var/cache/app.",
        ],
    );
    approve(d, &revised);
    let editor = d.join("rewrite.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's#/var/cache/app#$XDG_CACHE_HOME/app#' \"$1\"\n",
    )
    .unwrap();
    make_executable(&editor);
    let r = brain_env(
        d,
        &["edit", &revised],
        &[("EDITOR", editor.to_str().unwrap())],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let skip = create(d, &["note", "--title", "Note to skip", "--body", "Later."]);
    // The queue is oldest first (by second): the record left when quitting comes last.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let left = create(
        d,
        &[
            "note",
            "--title",
            "Note left at quit",
            "--body",
            "Untouched.",
        ],
    );

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pisama"));
    cmd.args(["brain", "review"])
        .current_dir(d)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("HOME", d.join(".home"))
        .env("USER", "alice")
        .env_remove("PISAMA_ACTOR");
    let mut tty = rexpect::session::spawn_command(cmd, Some(20_000)).expect("spawn in a pty");
    let prompt = "[a]pprove, [r]eject, request [c]hanges, [s]kip, [q]uit: ";
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (_, header) = tty
            .exp_regex(r#"=== [0-9A-Z]{8} [a-z_]+ "[^"]+" ==="#)
            .expect("a queue item");
        let title = header.split('"').nth(1).unwrap().to_owned();
        let shown = tty.exp_string(prompt).expect("the prompt");
        let key = match title.as_str() {
            "Note to approve" => "a",
            "Note to reject" => "r",
            "Proposal needing changes" => {
                // A proposal is shown as a diff against the approved text.
                assert!(shown.contains("--- r1 (approved)"), "{shown}");
                assert!(shown.contains("+++ r2 (proposed)"), "{shown}");
                assert!(
                    shown.contains("-The cache lives in /var/cache/app."),
                    "{shown}"
                );
                assert!(
                    shown.contains("+The cache lives in $XDG_CACHE_HOME/app."),
                    "{shown}"
                );
                "c"
            }
            "Note to skip" => {
                // An unknown answer asks again.
                tty.send_line("x").unwrap();
                tty.exp_string("unknown answer \"x\"").unwrap();
                tty.exp_string(prompt).unwrap();
                "s"
            }
            "Note left at quit" => "q",
            other => panic!("unexpected item {other}"),
        };
        if key != "c" {
            // A new record is shown whole.
            assert!(shown.contains("review: proposed"), "{shown}");
        }
        tty.send_line(key).unwrap();
        match key {
            "a" => {
                tty.exp_string("approved").unwrap();
            }
            "r" => {
                tty.exp_string("rejected").unwrap();
            }
            "c" => {
                tty.exp_string("changes_requested").unwrap();
            }
            _ => {}
        }
        seen.push(title);
        if key == "q" {
            break;
        }
    }
    tty.exp_eof().expect("review ends after quit");
    let status = tty.process().wait().unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.last().unwrap(), "Note left at quit");

    let review = |id: &str| ok(d, &["show", id, "--format", "json"]).json()["review"].clone();
    assert_eq!(review(&accept), "approved");
    assert_eq!(review(&reject), "rejected");
    assert_eq!(review(&skip), "proposed");
    assert_eq!(review(&left), "proposed");
    // The approved record stays; its proposal now asks for changes.
    assert_eq!(review(&revised), "approved");
    let proposal = ok(d, &["show", &revised, "--proposal", "--format", "json"]).json();
    assert_eq!(proposal["review"], "changes_requested", "{proposal:#}");
    // Approvals carry the human's name, via the CLI.
    let history = ok(d, &["history", &accept, "--format", "json"]).json();
    let approved = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "approved")
        .expect("approved event");
    assert_eq!(approved["actor"], "human:alice");
    assert_eq!(approved["via"], "cli");
    // What is left is what was skipped or not reached.
    let q = ok(d, &["review", "--format", "json"]).json();
    let mut left_titles: Vec<&str> = q["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    left_titles.sort_unstable();
    assert_eq!(left_titles, ["Note left at quit", "Note to skip"]);
}

/// A link to a record that does not exist says "dangling link" and names it, from `new --link`
/// and from `link` alike; nothing is written.
#[test]
fn dangling_links_are_named_the_same_way_everywhere() {
    let tmp = repo();
    let d = tmp.path();
    let id = create(d, &["note", "--title", "Linked from", "--draft"]);
    let before = ok(d, &["status", "--format", "json"]).json();
    for target in ["01JDQ3K8Z6Q2W7X9Y4T5R1M0AB", "ZZZZ9999"] {
        let link = format!("relates_to:{target}");
        let r = brain(d, &["new", "note", "--title", "x", "--link", &link]);
        assert_eq!(r.code, 2, "{}", r.stdout);
        let want = format!("link target {target} does not exist (dangling link)");
        assert!(r.stderr.contains(&want), "{}", r.stderr);
        let r = brain(d, &["link", &id, "relates_to", target]);
        assert_eq!(r.code, 2, "{}", r.stdout);
        assert!(r.stderr.contains(&want), "{}", r.stderr);
    }
    let after = ok(d, &["status", "--format", "json"]).json();
    assert_eq!(before["records"], after["records"]);
    assert_eq!(before["journal_events"], after["journal_events"]);
    // A missing *source* record is still "no record matches".
    let r = brain(d, &["link", "ZZZZ9999", "relates_to", &id]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no record matches `ZZZZ9999`"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// The journal across a git merge

/// Runs git in `dir` with no user or system configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir.join(".home"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.invalid")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.invalid")
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two branches each capture and approve records; `git merge` unions the journal (the
/// `.gitattributes` that `brain init` writes), and the merged brain verifies and keeps working.
#[test]
fn journal_verifies_after_a_git_union_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    git(d, &["init", "-q", "-b", "main"]);
    ok(d, &["init"]);
    let shared = create(
        d,
        &["note", "--title", "Shared before the fork", "--body", "x"],
    );
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "brain"]);
    git(d, &["checkout", "-qb", "feature"]);
    let f1 = create(d, &["note", "--title", "Feature note", "--body", "f"]);
    approve(d, &f1);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "feature work"]);
    git(d, &["checkout", "-q", "main"]);
    let m1 = create(d, &["note", "--title", "Main note", "--body", "m"]);
    approve(d, &shared);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "main work"]);
    git(d, &["merge", "-q", "--no-edit", "feature"]);
    let journal = crate::support::files_under(&d.join(".brain/journal"));
    assert_eq!(journal.len(), 1, "{journal:?}");
    let text = std::fs::read_to_string(&journal[0]).unwrap();
    assert!(!text.contains("<<<<<<<"), "{text}");
    // created shared; main: created m1, approved shared; feature: created f1, approved f1.
    assert_eq!(text.lines().count(), 5, "{text}");

    let r = ok(d, &["check"]);
    assert_eq!(r.stdout.trim(), "ok");
    let s = ok(d, &["status", "--format", "json"]).json();
    assert_eq!(s["journal_events"], 5, "{s:#}");
    assert_eq!(s["journal_merged_branches"], 1, "{s:#}");
    assert_eq!(s["records"], 3);
    let r = ok(d, &["status"]);
    assert!(
        r.stdout
            .contains("journal: 5 event(s), chain verified (1 merged branch(es))"),
        "{}",
        r.stdout
    );
    // History reads both branches' events; the merged brain keeps accepting writes.
    let h = ok(d, &["history", &f1, "--format", "json"]).json();
    let events: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["created", "approved"]);
    approve(d, &m1);
    let r = ok(d, &["check"]);
    assert_eq!(r.stdout.trim(), "ok");
    // Tampering with a line a later line chains from is still caught.
    let text = std::fs::read_to_string(&journal[0]).unwrap();
    let first = text.lines().next().unwrap();
    std::fs::write(
        &journal[0],
        text.replacen(first, &first.replace("\"created\"", "\"archived\""), 1),
    )
    .unwrap();
    let r = brain(d, &["check"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains(":2: chain broken"), "{}", r.stdout);
}

// ---------------------------------------------------------------------------------------------
// `$EDITOR`

/// Writes an executable `sh` script in `d` and returns its path as a string.
fn script(d: &Path, name: &str, body: &str) -> String {
    let p = d.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    make_executable(&p);
    p.to_str().unwrap().to_owned()
}

fn edit_with(d: &Path, id: &str, editor: &str) -> Run {
    brain_env(d, &["edit", id], &[("EDITOR", editor)])
}

#[test]
fn edit_in_editor_changes_drafts_in_place_and_approved_records_by_proposal() {
    let tmp = repo();
    let d = tmp.path();
    let shout = script(d, "shout.sh", "sed -i 's/quiet/LOUD/' \"$1\"");
    let whisper = script(d, "whisper.sh", "sed -i 's/LOUD/whispered/' \"$1\"");
    let nothing = script(d, "nothing.sh", "true");
    let fails = script(d, "fails.sh", "sed -i 's/quiet/LOUD/' \"$1\"; exit 3");
    let breaks = script(
        d,
        "breaks.sh",
        "sed -i 's/^review: .*/review: [broken/' \"$1\"",
    );
    let reid = script(
        d,
        "reid.sh",
        "sed -i 's/^id: .*/id: 01JDQ3K8Z6Q2W7X9Y4T5R1M0AB/' \"$1\"",
    );
    let body = |id: &str, proposal: bool| {
        let mut args = vec!["show", id, "--format", "json"];
        if proposal {
            args.push("--proposal");
        }
        ok(d, &args).json()
    };

    // A draft changes in place and stays a draft.
    let draft = create(
        d,
        &[
            "note",
            "--title",
            "Draft",
            "--body",
            "a quiet note",
            "--draft",
        ],
    );
    let r = edit_with(d, &draft, &shout);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("revised "), "{}", r.stdout);
    let rec = body(&draft, false);
    assert_eq!(rec["body"], "a LOUD note\n");
    assert_eq!(rec["review"], "draft");
    assert_eq!(rec["revision"], 0);

    // An approved record gets a proposal; the approved text stays.
    let approved = create(
        d,
        &["note", "--title", "Approved", "--body", "a quiet rule"],
    );
    approve(d, &approved);
    let r = edit_with(d, &approved, &shout);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("(proposal)"), "{}", r.stdout);
    assert_eq!(body(&approved, false)["body"], "a quiet rule\n");
    let p = body(&approved, true);
    assert_eq!(
        (p["body"].as_str(), p["revision"].as_i64()),
        (Some("a LOUD rule\n"), Some(2))
    );
    assert_eq!(p["review"], "proposed");
    // Editing again edits the pending proposal (still r2), not the approved text.
    let r = edit_with(d, &approved, &whisper);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let p = body(&approved, true);
    assert_eq!(
        (p["body"].as_str(), p["revision"].as_i64()),
        (Some("a whispered rule\n"), Some(2))
    );
    assert_eq!(body(&approved, false)["body"], "a quiet rule\n");

    // No change, a failing editor, a broken or id-changing save: nothing changes.
    let events = || ok(d, &["status", "--format", "json"]).json()["journal_events"].clone();
    let before = events();
    let r = edit_with(d, &draft, &nothing);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.trim(), "no changes");
    let r = edit_with(d, &draft, &fails);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nothing changed"), "{}", r.stderr);
    for (editor, why) in [(&breaks, "YAML"), (&reid, "immutable")] {
        let r = edit_with(d, &draft, editor);
        assert_eq!(r.code, 2, "{}", r.stdout);
        assert!(r.stderr.contains(why), "{}", r.stderr);
        // The user's work is kept, outside the records `scan` reads.
        let kept = r
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("your edit is saved in "))
            .unwrap_or_else(|| panic!("{}", r.stderr));
        assert!(
            std::fs::read_to_string(kept)
                .unwrap()
                .contains("a LOUD note")
        );
    }
    assert_eq!(events(), before);
    assert_eq!(body(&draft, false)["body"], "a LOUD note\n");
    let r = ok(d, &["check"]);
    assert_eq!(r.stdout.trim(), "ok");

    // Without $EDITOR the command says what to set.
    let r = brain(d, &["edit", &draft]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("set $EDITOR"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// `check`: reviews left waiting

/// Sets a record file's `created` and `updated` to a day in 2020.
fn backdate(file: &Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let text: String = text
        .split_inclusive('\n')
        .map(|l| {
            if l.starts_with("updated: ") || l.starts_with("created: ") {
                format!("{}2020-01-01T00:00:00Z\n", &l[..9])
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(file, text).unwrap();
}

#[test]
fn check_flags_reviews_pending_longer_than_the_limit() {
    let tmp = repo();
    let d = tmp.path();
    let toml = std::fs::read_to_string(d.join(".brain/brain.toml")).unwrap();
    assert!(toml.contains("\npending_max_days = 30\n"), "{toml}");
    let old = create(d, &["note", "--title", "Old proposal", "--body", "b"]);
    let fresh = create(d, &["note", "--title", "Fresh proposal", "--body", "b"]);
    let revised = create(
        d,
        &[
            "note",
            "--title",
            "Approved with old revision",
            "--body",
            "b",
        ],
    );
    approve(d, &revised);
    ok(d, &["link", &revised, "relates_to", &fresh]);
    let draft = create(
        d,
        &["note", "--title", "Old draft", "--body", "b", "--draft"],
    );
    let path_of = |id: &str| {
        d.join(
            ok(d, &["show", id, "--format", "json"]).json()["path"]
                .as_str()
                .unwrap(),
        )
    };
    backdate(&path_of(&old));
    backdate(&path_of(&draft));
    let proposals = crate::support::files_under(&d.join(".brain/proposals"));
    assert_eq!(proposals.len(), 1);
    backdate(&proposals[0]);
    assert_eq!(ok(d, &["check", "--pending-days", "0"]).stdout.trim(), "ok");

    let r = brain(d, &["check", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let v = r.json();
    let mut flagged: Vec<(&str, &str)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["category"], "pending", "{p:#}");
            (p["id"].as_str().unwrap(), p["message"].as_str().unwrap())
        })
        .collect();
    flagged.sort_unstable();
    let mut want = vec![old.as_str(), revised.as_str()];
    want.sort_unstable();
    assert_eq!(flagged.iter().map(|f| f.0).collect::<Vec<_>>(), want);
    for (id, message) in &flagged {
        assert!(message.contains("days for review (limit 30"), "{message}");
        if *id == revised {
            assert!(
                message.contains("proposals/") && message.contains("the proposal for"),
                "{message}"
            );
        }
    }
    // A larger limit, or none, passes; reviewing clears it.
    assert_eq!(
        ok(d, &["check", "--pending-days", "100000"]).stdout.trim(),
        "ok"
    );
    approve(d, &old);
    ok(d, &["reject", &revised, "--yes"]);
    assert_eq!(ok(d, &["check"]).stdout.trim(), "ok");
}
