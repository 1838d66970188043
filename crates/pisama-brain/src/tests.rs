//! Workflow tests against a brain in a temporary folder.

use std::path::Path;

use crate::check::CheckOptions;
use crate::context::ContextRequest;
use crate::error::Error;
use crate::index::SearchQuery;
use crate::model::{Actor, Kind, Link, Review, Scope};
use crate::store::{Brain, NewRecord, Patch, Verdict};
use crate::yaml::Node;

fn brain() -> (tempfile::TempDir, Brain) {
    let dir = tempfile::tempdir().unwrap();
    let b = Brain::init(dir.path()).unwrap();
    (dir, b)
}

fn alice() -> Actor {
    Actor::human("alice")
}

fn agent() -> Actor {
    Actor::agent("claude-code", "mcp")
}

fn decision(b: &Brain, title: &str, body: &str) -> String {
    b.create(NewRecord::new(Kind::Decision, title, body), &agent())
        .unwrap()
        .id
}

#[test]
fn propose_approve_revise_approve_with_history() {
    let (_d, b) = brain();
    let id = decision(
        &b,
        "Use tantivy for search",
        "## Context\n\nWe need search.\n",
    );
    let e = b.get(&id).unwrap();
    assert_eq!(e.record.review, Review::Proposed);
    assert_eq!(e.record.revision, 0);
    // Agents cannot approve.
    assert!(matches!(
        b.review(&id, None, Verdict::Approve, &agent(), None),
        Err(Error::HumanRequired { .. })
    ));
    let out = b
        .review(&id, None, Verdict::Approve, &alice(), None)
        .unwrap();
    assert_eq!((out.revision, out.review), (1, Review::Approved));
    // A revision of an approved record goes to proposals/; the approved text stays live.
    let patch = Patch {
        append: Some("## Consequences\n\nOne more crate.".into()),
        ..Patch::default()
    };
    let out = b
        .revise(
            &id,
            1,
            patch.clone(),
            &agent(),
            Some("add consequences".into()),
        )
        .unwrap();
    assert!(out.proposal);
    assert_eq!(out.revision, 2);
    assert!(!b.get(&id).unwrap().record.body.contains("Consequences"));
    // A second revision while one is pending is refused; a stale base too.
    assert!(matches!(
        b.revise(&id, 1, patch.clone(), &agent(), None),
        Err(Error::ProposalPending { .. })
    ));
    assert!(matches!(
        b.revise(&id, 0, patch, &agent(), None),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(b.pending().unwrap().len(), 1);
    b.review(&id, Some(2), Verdict::Approve, &alice(), None)
        .unwrap();
    let e = b.get(&id).unwrap();
    assert_eq!(e.record.revision, 2);
    assert!(e.record.body.contains("Consequences"));
    assert!(b.proposal(e.record.id).unwrap().is_none());
    let revs = b.revisions(e.record.id).unwrap();
    assert_eq!(revs.len(), 2);
    assert!(!revs[0].text.contains("Consequences"));
    let events: Vec<String> = b
        .events_for(e.record.id)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["created", "approved", "proposed", "approved"]);
    assert_eq!(b.journal().verify().unwrap(), 4);
    assert!(b.check(CheckOptions::default()).unwrap().is_empty());
}

#[test]
fn search_filters_and_snippets() {
    let (_d, b) = brain();
    let a = decision(
        &b,
        "Use tantivy for search",
        "BM25 ranking over markdown records.",
    );
    decision(
        &b,
        "Store records as markdown",
        "One file per record, tantivy is a cache.",
    );
    let mut mem = NewRecord::new(Kind::Memory, "Run cargo nextest", "Use nextest for tests.");
    mem.tags = vec!["testing".into()];
    b.create(mem, &agent()).unwrap();
    let hits = b
        .search(&SearchQuery {
            text: "tantivy".into(),
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].id, a, "title match ranks first");
    let hits = b
        .search(&SearchQuery {
            text: "records".into(),
            kinds: vec![Kind::Decision],
            ..SearchQuery::default()
        })
        .unwrap();
    assert!(hits.iter().all(|h| h.kind == "decision"));
    assert!(
        hits.iter().any(|h| h.snippet.contains("**records**")),
        "{hits:?}"
    );
    let hits = b
        .search(&SearchQuery {
            text: String::new(),
            tags: vec!["testing".into()],
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1);
    let hits = b
        .search(&SearchQuery {
            text: "tantivy".into(),
            reviews: vec![Review::Approved],
            ..SearchQuery::default()
        })
        .unwrap();
    assert!(hits.is_empty());
    // Lenient parsing never fails.
    b.search(&SearchQuery {
        text: "title:(unclosed \"quote".into(),
        ..SearchQuery::default()
    })
    .unwrap();
}

#[test]
fn failed_index_step_keeps_files_and_next_read_rebuilds() {
    let (_d, mut b) = brain();
    decision(&b, "First", "alpha");
    b.inject_index_failure(true);
    let out = b
        .create(
            NewRecord::new(Kind::Decision, "Second", "bravo unique"),
            &agent(),
        )
        .unwrap();
    assert!(!out.indexed);
    assert!(
        b.dir()
            .join(out.path.trim_start_matches(".brain/"))
            .exists()
    );
    b.inject_index_failure(false);
    let hits = b
        .search(&SearchQuery {
            text: "bravo".into(),
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1, "the next read picked up the missed record");
    // A corrupted index is rebuilt.
    let ix = b.dir().join(".index/tantivy");
    for f in std::fs::read_dir(&ix).unwrap() {
        let p = f.unwrap().path();
        if p.file_name().unwrap() == "meta.json" {
            std::fs::write(&p, b"garbage").unwrap();
        }
    }
    std::fs::write(b.dir().join(".index/manifest.json"), b"{").unwrap();
    let (ix, report) = b.fresh_index().unwrap();
    assert!(report.rebuilt);
    assert_eq!(ix.len(), 2);
}

#[test]
fn external_edits_are_picked_up() {
    let (_d, b) = brain();
    let id = decision(&b, "Edited outside", "before");
    let e = b.get(&id).unwrap();
    let path = b.dir().join(&e.rel_path);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("before", "zanzibar");
    std::fs::write(&path, text).unwrap();
    let hits = b
        .search(&SearchQuery {
            text: "zanzibar".into(),
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1);
    std::fs::remove_file(&path).unwrap();
    let hits = b
        .search(&SearchQuery {
            text: "zanzibar".into(),
            ..SearchQuery::default()
        })
        .unwrap();
    assert!(hits.is_empty());
}

#[test]
fn bad_input_is_reported_and_nothing_is_lost() {
    let (_d, b) = brain();
    let id = decision(&b, "Good", "body");
    let e = b.get(&id).unwrap();
    let good = std::fs::read_to_string(b.dir().join(&e.rel_path)).unwrap();
    // A duplicate id in another file, a malformed file, an unknown kind.
    std::fs::write(b.dir().join("decisions/copy--X.md"), &good).unwrap();
    std::fs::write(b.dir().join("notes/broken.md"), "---\ntitle: [oops\n---\n").unwrap();
    std::fs::write(
        b.dir().join("notes/kind.md"),
        good.replace("kind: decision", "kind: decree"),
    )
    .unwrap();
    let problems = b.check(CheckOptions::default()).unwrap();
    let text: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
    let all = text.join("\n");
    assert!(all.contains("duplicate id"), "{all}");
    assert!(all.contains(".brain/notes/broken.md:3: YAML"), "{all}");
    assert!(
        all.contains(".brain/notes/kind.md:3: field `kind`: unknown kind `decree`"),
        "{all}"
    );
    // The files are untouched.
    assert_eq!(
        std::fs::read_to_string(b.dir().join("notes/broken.md")).unwrap(),
        "---\ntitle: [oops\n---\n"
    );
    // Dangling links and out-of-repo scopes are refused on write.
    let mut n = NewRecord::new(Kind::Memory, "x", "y");
    n.links = vec![Link {
        rel: "relates_to".into(),
        to: "01JDQ3K8Z6Q2W7X9Y4T5R1M0AB".into(),
    }];
    let e = b.create(n, &agent()).unwrap_err().to_string();
    assert!(e.contains("dangling"), "{e}");
    let mut n = NewRecord::new(Kind::Memory, "x", "y");
    n.scope = Scope {
        paths: vec!["../../etc".into()],
        evidence: vec![],
    };
    let e = b.create(n, &agent()).unwrap_err().to_string();
    assert!(e.contains("outside the repository"), "{e}");
    let mut n = NewRecord::new(Kind::Decision, "x", "y");
    n.fields = vec![("outcome".into(), Node::str("perhaps"))];
    let e = b.create(n, &agent()).unwrap_err().to_string();
    assert!(e.contains("field `outcome`"), "{e}");
}

#[test]
fn transitions_follow_the_rules() {
    let (_d, b) = brain();
    let old = decision(&b, "Old", "a");
    let new = decision(&b, "New", "b");
    // decision:accepted needs a human (brain.toml default).
    assert!(matches!(
        b.transition(&old, "accepted", None, &agent(), None),
        Err(Error::HumanRequired { .. })
    ));
    b.transition(&old, "accepted", None, &alice(), None)
        .unwrap();
    assert!(
        b.transition(&old, "superseded", None, &alice(), None)
            .is_err()
    );
    b.transition(&old, "superseded", Some(&new), &alice(), None)
        .unwrap();
    let r = b.get(&old).unwrap().record;
    assert_eq!(r.status(), Some("superseded"));
    assert_eq!(r.links[0].rel, "superseded_by");
    // A work request runs only when approved.
    let w = b
        .create(NewRecord::new(Kind::WorkRequest, "Do it", "now"), &agent())
        .unwrap()
        .id;
    assert!(b.transition(&w, "running", None, &alice(), None).is_err());
    b.review(&w, None, Verdict::Approve, &alice(), None)
        .unwrap();
    b.transition(&w, "running", None, &alice(), None).unwrap();
    assert!(b.transition(&w, "queued", None, &alice(), None).is_err());
    // Plan steps.
    let mut p = NewRecord::new(Kind::Plan, "Plan", "steps");
    p.fields = vec![(
        "steps".into(),
        crate::yaml::parse("- {id: S1, title: first, status: todo}\n", 0).unwrap(),
    )];
    let p = b.create(p, &agent()).unwrap().id;
    b.transition(&p, "S1:done", None, &agent(), None).unwrap();
    let r = b.get(&p).unwrap().record;
    assert!(
        r.to_markdown()
            .contains("{id: S1, title: first, status: done}")
    );
    assert!(b.transition(&p, "S9:done", None, &agent(), None).is_err());
}

#[test]
fn context_pack_ranks_scope_then_in_progress_then_search() {
    let (_d, b) = brain();
    let mut scoped = NewRecord::new(Kind::Memory, "Parser convention", "Never panic in parsers.");
    scoped.scope = Scope {
        paths: vec!["crates/pisama-trace/**".into()],
        evidence: vec![],
    };
    let scoped = b.create(scoped, &agent()).unwrap().id;
    let mut spec = NewRecord::new(Kind::Spec, "Offline mode", "R1: work offline.");
    spec.fields = vec![("phase".into(), Node::str("in_progress"))];
    let spec = b.create(spec, &agent()).unwrap().id;
    let hit = decision(&b, "Search engine", &"tantivy words ".repeat(400));
    let unapproved = decision(&b, "Not approved tantivy", "tantivy");
    for id in [&scoped, &spec, &hit] {
        b.review(id, None, Verdict::Approve, &alice(), None)
            .unwrap();
    }
    let pack = b
        .context(&ContextRequest {
            task: Some("tantivy".into()),
            paths: vec!["crates/pisama-trace/src/lib.rs".into()],
            budget_tokens: 300,
            ..ContextRequest::default()
        })
        .unwrap();
    let ids: Vec<&str> = pack.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, [scoped.as_str(), spec.as_str(), hit.as_str()]);
    assert!(pack.items[2].truncated);
    assert!(pack.items[2].text.contains("truncated"));
    assert!(pack.used_tokens <= 300, "{}", pack.used_tokens);
    assert!(!ids.contains(&unapproved.as_str()));
}

#[test]
fn stale_anchors_are_found() {
    let (d, b) = brain();
    std::fs::create_dir_all(d.path().join("src")).unwrap();
    std::fs::write(d.path().join("src/lib.rs"), "fn a() {}\n").unwrap();
    let ev = crate::check::anchor(d.path(), "src/lib.rs", Some("1-1".into())).unwrap();
    let mut n = NewRecord::new(Kind::Memory, "a exists", "fn a is there");
    n.scope = Scope {
        paths: vec!["src/**".into()],
        evidence: vec![ev],
    };
    let id = b.create(n, &agent()).unwrap().id;
    b.review(&id, None, Verdict::Approve, &alice(), None)
        .unwrap();
    assert!(b.stale().unwrap().is_empty());
    std::fs::write(d.path().join("src/lib.rs"), "fn b() {}\n").unwrap();
    let stale = b.stale().unwrap();
    assert_eq!(stale.len(), 1);
    assert!(stale[0].reason.starts_with("changed"));
}

#[test]
fn strict_mode_refuses_and_redact_mode_tags() {
    let (_d, b) = brain();
    let out = b
        .create(
            NewRecord::new(
                Kind::Note,
                "creds",
                "token: ghp_abcdefghijklmnopqrstuvwxyz0123456789AB",
            ),
            &agent(),
        )
        .unwrap();
    assert_eq!(out.redactions, 1);
    let r = b.get(&out.id).unwrap().record;
    assert!(r.body.contains("[REDACTED:"), "{}", r.body);
    assert_eq!(r.redactions, 1);
    let toml = std::fs::read_to_string(b.dir().join("brain.toml")).unwrap();
    std::fs::write(
        b.dir().join("brain.toml"),
        toml.replace("mode = \"redact\"", "mode = \"strict\""),
    )
    .unwrap();
    let b = Brain::open(b.root()).unwrap();
    let e = b
        .create(
            NewRecord::new(Kind::Note, "again", "AKIAIOSFODNN7EXAMPLE"),
            &agent(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::SecretsRefused { .. }), "{e}");
    assert_eq!(b.scan().unwrap().entries.len(), 1);
}

#[test]
fn records_saved_twice_are_identical_on_disk() {
    let (_d, b) = brain();
    let id = decision(&b, "Same bytes", "body");
    let e = b.get(&id).unwrap();
    let path = b.dir().join(&e.rel_path);
    let before = std::fs::read(&path).unwrap();
    assert_eq!(e.record.to_markdown().as_bytes(), &before[..]);
    assert!(Path::new(&path).exists());
}
