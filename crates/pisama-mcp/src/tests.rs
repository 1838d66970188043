//! In-process tests: an rmcp client and the server over a duplex pipe, on a temporary
//! repository with a brain and a copy of the detector fixtures. Every tool, resource and
//! prompt is exercised here; `tests/it/mcp.rs` drives the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::many_single_char_names,
    deprecated,
    reason = "tests fail loudly on the first surprise; roots and subscribe are deprecated in rmcp 3.11 but are what clients use"
)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    ArgumentInfo, CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
    CompleteRequestParams, ElicitRequestParams, ElicitResult, ElicitationAction,
    GetPromptRequestParams, Implementation, ListRootsResult, ProgressNotificationParam,
    ReadResourceRequestParams, Reference, ResourceContents, ResourceUpdatedNotificationParam, Root,
    SubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::{Limits, PisamaServer, ServerOptions};

/// A client that records notifications and answers elicitation as told.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
    /// `Some(true)`: accept and confirm; `Some(false)`: decline; `None`: no elicitation support.
    elicit: Option<bool>,
    roots: Vec<String>,
}

impl Recorder {
    fn push(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }
    fn seen(&self, prefix: &str) -> bool {
        self.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with(prefix))
    }
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        if self.elicit.is_some() {
            caps.elicitation = Some(rmcp::model::ElicitationCapability::new());
        }
        if !self.roots.is_empty() {
            caps.roots = Some(rmcp::model::RootsCapabilities::default());
        }
        ClientConfig::new(caps, Implementation::new("pisama-test", "0"))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.push(format!("progress {}", params.progress));
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.push(format!("updated {}", params.uri));
    }

    async fn on_resource_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.push("resources_list_changed".into());
    }

    async fn on_prompt_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.push("prompts_list_changed".into());
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.push(format!(
            "elicit {}",
            serde_json::to_string(&request).unwrap_or_default()
        ));
        Ok(match self.elicit {
            Some(true) => ElicitResult::new(ElicitationAction::Accept)
                .with_content(json!({"confirm": true, "reviewer": "alice"})),
            _ => ElicitResult::new(ElicitationAction::Decline),
        })
    }

    async fn list_roots(
        &self,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(
            self.roots.iter().map(|r| Root::new(r.clone())).collect(),
        ))
    }
}

struct Harness {
    client: RunningService<RoleClient, Recorder>,
    recorder: Recorder,
    dir: tempfile::TempDir,
}

fn repo_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A temporary repository: `.brain/`, and `traces/` with the retry-storm fixtures.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    pisama_brain::Brain::init(dir.path()).unwrap();
    copy_dir(
        &repo_fixtures().join("detectors/tool-retry-storm"),
        &dir.path().join("traces"),
    );
    dir
}

async fn start_with(recorder: Recorder, limits: Limits, dir: tempfile::TempDir) -> Harness {
    let mut options = ServerOptions::new(dir.path(), &[]).unwrap();
    options.limits = limits;
    options.watch_interval = Duration::from_millis(50);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = PisamaServer::new(options).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let client = recorder.clone().serve(client_io).await.unwrap();
    Harness {
        client,
        recorder,
        dir,
    }
}

async fn start() -> Harness {
    start_with(Recorder::default(), Limits::default(), workspace()).await
}

impl Harness {
    async fn call(&self, name: &'static str, args: Value) -> CallToolResult {
        let Value::Object(map) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(name).with_arguments(map))
            .await
            .unwrap()
    }

    /// The structured result of a call that must succeed.
    async fn ok(&self, name: &'static str, args: Value) -> Value {
        let r = self.call(name, args).await;
        assert_ne!(r.is_error, Some(true), "{name} failed: {:?}", r.content);
        assert!(!text_of(&r).is_empty(), "{name}: no text rendering");
        r.structured_content.expect("structuredContent")
    }

    /// The error text of a call that must fail as a tool error.
    async fn err(&self, name: &'static str, args: Value) -> String {
        let r = self.call(name, args).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{name} should fail: {:?}",
            r.structured_content
        );
        text_of(&r)
    }

    async fn read(&self, uri: &str) -> String {
        let r = self
            .client
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .unwrap();
        match &r.contents[0] {
            ResourceContents::TextResourceContents { text, .. } => text.clone(),
            _ => panic!("{uri}: not text"),
        }
    }

    async fn wait_for(&self, prefix: &str) {
        for _ in 0..100 {
            if self.recorder.seen(prefix) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!(
            "no `{prefix}` notification; saw {:?}",
            self.recorder.events.lock().unwrap()
        );
    }
}

fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

const TOOLS: [&str; 16] = [
    "brain_archive",
    "brain_context",
    "brain_get",
    "brain_history",
    "brain_link",
    "brain_list",
    "brain_propose",
    "brain_review",
    "brain_revise",
    "brain_search",
    "brain_status",
    "brain_transition",
    "pisama_detect",
    "pisama_detectors",
    "pisama_explain",
    "pisama_inspect",
];

#[tokio::test]
async fn every_tool_has_title_annotations_and_schemas() {
    let h = start().await;
    let info = h.client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "pisama");
    assert!(info.instructions.as_deref().unwrap().contains("propose"));
    let caps = &info.capabilities;
    assert!(caps.tools.is_some() && caps.prompts.is_some() && caps.completions.is_some());
    assert!(caps.resources.as_ref().unwrap().subscribe == Some(true));
    let tools = h.client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    for t in &tools {
        assert!(t.title.is_some(), "{}: no title", t.name);
        let a = t.annotations.as_ref().expect("annotations");
        assert!(
            a.read_only_hint.is_some() && a.destructive_hint.is_some(),
            "{}",
            t.name
        );
        assert!(t.output_schema.is_some(), "{}: no outputSchema", t.name);
        // Portable schemas: no type unions, no bare `true` schemas (MCP Inspector --strict).
        for schema in [
            serde_json::to_string(&t.input_schema).unwrap(),
            serde_json::to_string(&t.output_schema).unwrap(),
        ] {
            assert!(
                !schema.contains("\"type\":["),
                "{}: type union in {schema}",
                t.name
            );
            assert!(
                !schema.contains("\"items\":true"),
                "{}: boolean schema",
                t.name
            );
        }
        assert!(t.description.as_deref().is_some_and(|d| d.len() > 20));
        // Every parameter is described.
        if let Some(Value::Object(props)) = t.input_schema.get("properties") {
            for (p, schema) in props {
                assert!(
                    schema.get("description").is_some(),
                    "{}.{p} has no description",
                    t.name
                );
            }
        }
    }
    let review = tools.iter().find(|t| t.name == "brain_review").unwrap();
    assert_eq!(
        review.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );
    let search = tools.iter().find(|t| t.name == "brain_search").unwrap();
    assert_eq!(
        search.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );
}

#[tokio::test]
async fn the_core_profile_offers_fewer_brain_tools() {
    let dir = workspace();
    let toml_path = dir.path().join(".brain/brain.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        toml.replace("tools = \"all\"", "tools = \"core\""),
    )
    .unwrap();
    let h = start_with(Recorder::default(), Limits::default(), dir).await;
    let mut names: Vec<String> = h
        .client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "brain_context",
            "brain_get",
            "brain_propose",
            "brain_revise",
            "brain_search",
            "brain_status",
            "pisama_detect",
            "pisama_detectors",
            "pisama_explain",
            "pisama_inspect"
        ]
    );
    let Value::Object(args) = json!({"id": "x", "reason": "r"}) else {
        unreachable!()
    };
    let e = h
        .client
        .call_tool(CallToolRequestParams::new("brain_archive").with_arguments(args))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("tool not found"), "{e}");
}

#[tokio::test]
async fn detect_a_file_a_folder_and_an_inline_trace() {
    let h = start().await;
    let out = h
        .ok(
            "pisama_detect",
            json!({"path": "traces/positive/search-storm.json"}),
        )
        .await;
    assert_eq!(out["summary"]["traces"], 1);
    let trace = &out["traces"][0];
    assert_eq!(trace["schema_version"], 1);
    assert_eq!(trace["verdict"], "fail");
    assert!(
        trace["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["detector"] == "tool-retry-storm")
    );
    assert!(trace["attribution"].is_object());

    // A folder: both fixtures, with progress notifications.
    let out = h.ok("pisama_detect", json!({"path": "traces"})).await;
    assert_eq!(out["summary"]["traces"], 2);
    h.wait_for("progress").await;

    // Inline, as text and as JSON, with detector selection and a severity floor.
    let text =
        std::fs::read_to_string(h.dir.path().join("traces/positive/search-storm.json")).unwrap();
    let out = h
        .ok(
            "pisama_detect",
            json!({"trace": text, "detectors": ["tool-retry-storm"]}),
        )
        .await;
    assert_eq!(out["summary"]["detectors"], 1);
    assert_ne!(out["traces"][0]["verdict"], "pass");
    assert_eq!(
        out["traces"][0]["findings"][0]["detector"],
        "tool-retry-storm"
    );
    let value: Value = serde_json::from_str(&text).unwrap();
    let out = h
        .ok(
            "pisama_detect",
            json!({"trace": value, "min_severity": "critical"}),
        )
        .await;
    assert!(
        out["traces"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "critical")
    );

    // Mistakes are tool errors that say what to do.
    assert!(
        h.err("pisama_detect", json!({}))
            .await
            .contains("give `path`")
    );
    assert!(
        h.err("pisama_detect", json!({"path": "traces", "trace": "{}"}))
            .await
            .contains("not both")
    );
    assert!(
        h.err("pisama_detect", json!({"path": "nope.json"}))
            .await
            .contains("no such file")
    );
    assert!(
        h.err(
            "pisama_detect",
            json!({"path": "traces", "detectors": "no-such-detector"})
        )
        .await
        .contains("unknown detector")
    );
    assert!(
        h.err(
            "pisama_detect",
            json!({"path": "traces", "min_severity": "huge"})
        )
        .await
        .contains("min_severity")
    );
    assert!(
        h.err("pisama_detect", json!({"trace": "not a trace at all"}))
            .await
            .len()
            > 10
    );
    // A wrongly typed argument is a tool error too.
    assert!(
        h.err("pisama_detect", json!({"path": 3}))
            .await
            .contains("invalid type")
    );
}

#[tokio::test]
async fn inspect_detectors_and_explain() {
    let h = start().await;
    let out = h.ok("pisama_inspect", json!({"path": "traces"})).await;
    assert_eq!(out["traces"].as_array().unwrap().len(), 2);
    assert_eq!(out["files"][0]["format"], "generic-chat");
    assert!(out["traces"][0]["tool_calls"].as_u64().unwrap() > 0);

    let list = h.ok("pisama_detectors", json!({})).await;
    let n = list["count"].as_u64().unwrap();
    assert!(n > 30);
    assert!(
        list["detectors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "tool-retry-storm")
    );

    let d = h
        .ok("pisama_explain", json!({"id": "tool-retry-storm"}))
        .await;
    assert_eq!(d["id"], "tool-retry-storm");
    assert!(d["remediation"].as_str().unwrap().len() > 20);
    assert!(!d["params"].as_array().unwrap().is_empty());
    assert!(
        h.err("pisama_explain", json!({"id": "retry"}))
            .await
            .contains("did you mean")
    );
}

#[tokio::test]
async fn paths_outside_the_roots_are_refused() {
    let h = start().await;
    let root = h.dir.path().canonicalize().unwrap().display().to_string();
    for bad in ["../../etc/passwd", "/etc/passwd", "traces/../../x.json"] {
        let e = h.err("pisama_detect", json!({"path": bad})).await;
        assert!(
            e.contains("outside the allowed roots") && e.contains(&root),
            "{bad}: {e}"
        );
        let e = h.err("pisama_inspect", json!({"path": bad})).await;
        assert!(e.contains("outside the allowed roots"), "{bad}: {e}");
    }
    #[cfg(unix)]
    {
        let outside = tempfile::tempdir().unwrap();
        std::fs::copy(
            h.dir.path().join("traces/positive/search-storm.json"),
            outside.path().join("secret.json"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.json"),
            h.dir.path().join("link.json"),
        )
        .unwrap();
        let e = h.err("pisama_detect", json!({"path": "link.json"})).await;
        assert!(e.contains("symbolic link"), "{e}");
        // Inside a folder, a symlink is not followed: the folder reads as if it were absent.
        std::os::unix::fs::symlink(outside.path(), h.dir.path().join("traces/out")).unwrap();
        let out = h.ok("pisama_detect", json!({"path": "traces"})).await;
        assert_eq!(out["summary"]["traces"], 2);
    }
}

#[tokio::test]
async fn client_roots_widen_what_may_be_read() {
    let extra = tempfile::tempdir().unwrap();
    copy_dir(
        &repo_fixtures().join("detectors/tool-retry-storm/positive"),
        extra.path(),
    );
    let recorder = Recorder {
        roots: vec![format!("file://{}", extra.path().display())],
        ..Recorder::default()
    };
    let h = start_with(recorder, Limits::default(), workspace()).await;
    let file = extra.path().join("search-storm.json").display().to_string();
    // The roots are fetched after `initialized`; give the server a moment.
    let mut last = String::new();
    for _ in 0..50 {
        let r = h.call("pisama_detect", json!({"path": file})).await;
        if r.is_error != Some(true) {
            return;
        }
        last = text_of(&r);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the client's root was never allowed: {last}");
}

fn big_trace(spans: usize) -> String {
    let mut s = String::from("{\"trace_id\": \"big\", \"spans\": [");
    for i in 0..spans {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"span_id\": \"s{i}\", \"parent_id\": null, \"kind\": \"tool\", \"start_time\": \"2026-01-01T00:00:{:02}+00:00\", \"status\": \"ok\", \"name\": \"search_web\", \"input_data\": {{\"query\": \"q {}\"}}, \"output_data\": {{\"result\": \"result number {i} about things\"}}}}",
            i % 60,
            i % 97
        ));
    }
    s.push_str("]}");
    s
}

#[tokio::test]
async fn limits_end_in_clear_tool_errors() {
    let limits = Limits {
        max_file_bytes: 200,
        max_inline_bytes: 5_000,
        max_spans: 10,
        max_traces: 1,
        time_budget: Duration::from_secs(30),
    };
    let h = start_with(Recorder::default(), limits, workspace()).await;
    let e = h
        .err(
            "pisama_detect",
            json!({"path": "traces/positive/search-storm.json"}),
        )
        .await;
    assert!(
        e.contains("over the limit") && e.contains("--max-file-size"),
        "{e}"
    );
    let e = h
        .err("pisama_detect", json!({"trace": big_trace(100)}))
        .await;
    assert!(e.contains("--max-inline-bytes"), "{e}");
    let e = h
        .err("pisama_detect", json!({"trace": big_trace(20)}))
        .await;
    assert!(e.contains("20 spans") && e.contains("--max-spans"), "{e}");

    // A trace that takes longer than the budget: a tool error, and the server answers on.
    let limits = Limits {
        time_budget: Duration::from_millis(1),
        ..Limits::default()
    };
    let h = start_with(Recorder::default(), limits, workspace()).await;
    let e = h
        .err("pisama_detect", json!({"trace": big_trace(20_000)}))
        .await;
    assert!(
        e.contains("time budget") && e.contains("--time-budget"),
        "{e}"
    );
    assert!(
        h.ok("pisama_detectors", json!({})).await["count"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn the_server_answers_while_a_large_detection_runs() {
    let h = start().await;
    let peer = h.client.peer().clone();
    let call = |spans: usize| {
        let peer = peer.clone();
        let big = big_trace(spans);
        tokio::spawn(async move {
            let Value::Object(args) = json!({"trace": big}) else {
                unreachable!()
            };
            peer.call_tool(CallToolRequestParams::new("pisama_detect").with_arguments(args))
                .await
        })
    };
    let detect = call(30_000);
    // Wait until the worker reports that it started reading.
    h.wait_for("progress").await;
    let hits = h.ok("brain_search", json!({"query": "anything"})).await;
    assert!(hits["hits"].as_array().unwrap().is_empty());
    assert!(
        !detect.is_finished(),
        "detection finished before the search was answered"
    );
    let done = detect.await.unwrap().unwrap();
    assert_ne!(done.is_error, Some(true), "{:?}", done.content);

    // Cancellation: the client abandons a large request (rmcp sends notifications/cancelled);
    // the server stops it and goes on serving.
    h.recorder.events.lock().unwrap().clear();
    let abandoned = call(30_000);
    h.wait_for("progress").await;
    abandoned.abort();
    let out = h
        .ok(
            "pisama_detect",
            json!({"path": "traces/positive/search-storm.json"}),
        )
        .await;
    assert_eq!(out["summary"]["traces"], 1);
}

#[tokio::test]
async fn brain_workflow_through_the_tools() {
    let h = start().await;
    let status = h.ok("brain_status", json!({})).await;
    assert_eq!(status["records"], 0);
    assert!(status["brain"].is_string());

    // Propose a memory with a secret: it is redacted before writing.
    let out = h
        .ok(
            "brain_propose",
            json!({
                "kind": "memory",
                "title": "Build command",
                "body": "Run cargo nextest. Token: ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "fields": {"memory_type": "command"},
                "tags": "build,ci",
                "scope": {"paths": ["crates/**"]}
            }),
        )
        .await;
    assert_eq!(out["review"], "proposed");
    assert_eq!(out["redactions"], 1);
    let id = out["id"].as_str().unwrap().to_owned();
    let file = std::fs::read_to_string(h.dir.path().join(out["path"].as_str().unwrap())).unwrap();
    assert!(!file.contains("ghp_abcdef") && file.contains("[REDACTED:"));

    // Search: approved only by default, so no hit yet; with review=proposed, a hit.
    let s = h.ok("brain_search", json!({"q": "nextest"})).await;
    assert!(s["hits"].as_array().unwrap().is_empty());
    let s = h
        .ok(
            "brain_search",
            json!({"query": "nextest", "review": "proposed", "kind": "memory"}),
        )
        .await;
    assert_eq!(s["hits"][0]["id"], id.as_str());

    let got = h.ok("brain_get", json!({"id": &id[id.len() - 8..]})).await;
    assert_eq!(got["title"], "Build command");
    assert_eq!(got["fields"]["memory_type"], "command");
    assert_eq!(got["scope_paths"][0], "crates/**");

    let listed = h.ok("brain_list", json!({"kind": "memory"})).await;
    assert_eq!(listed["total"], 1);

    // Revise with a stale base revision: refused, naming the current one.
    let e = h
        .err("brain_revise", json!({"id": id, "base_revision": 7, "operation": "append", "content": "x", "reason": "r"}))
        .await;
    assert!(e.contains("revision 0"), "{e}");
    let rev = h
        .ok("brain_revise", json!({"id": id, "base_revision": 0, "operation": "replace_section", "section": "Details", "content": "Use `-p CRATE` while iterating.", "reason": "more detail"}))
        .await;
    assert_eq!(rev["event"], "revised");
    assert!(
        h.err(
            "brain_revise",
            json!({"id": id, "base_revision": 0, "operation": "append", "reason": "r"})
        )
        .await
        .contains("content")
    );

    // A decision to link to and transition.
    let d = h
        .ok("brain_propose", json!({"kind": "decision", "title": "Use tantivy for brain search", "body": "## Context\n\nWe need search.", "review": "draft"}))
        .await;
    let did = d["id"].as_str().unwrap().to_owned();
    let l = h
        .ok(
            "brain_link",
            json!({"from": id, "rel": "relates_to", "to": did}),
        )
        .await;
    assert_eq!(l["event"], "revised");
    assert!(
        h.err(
            "brain_link",
            json!({"from": id, "rel": "relates_to", "to": "01ZZZZZZ"})
        )
        .await
        .contains("dangling")
    );
    // brain.toml reserves accepting a decision for humans; moving a spec's phase is fine.
    assert!(
        h.err("brain_transition", json!({"id": did, "to": "accepted"}))
            .await
            .contains("only a human")
    );
    assert!(
        h.err("brain_transition", json!({"id": did, "to": "bogus"}))
            .await
            .contains("not a decision")
    );
    let spec = h
        .ok(
            "brain_propose",
            json!({"kind": "spec", "title": "Offline mode", "body": "R1", "review": "draft"}),
        )
        .await;
    let t = h
        .ok("brain_transition", json!({"id": spec["id"], "to": "ready"}))
        .await;
    assert_eq!(t["event"], "transitioned");

    // An agent cannot approve: without elicitation the answer is pending_human + command.
    let r = h
        .ok("brain_review", json!({"id": id, "verdict": "approve"}))
        .await;
    assert_eq!(r["status"], "pending_human");
    assert!(
        r["command"]
            .as_str()
            .unwrap()
            .starts_with("pisama brain approve ")
    );
    let s = h.ok("brain_search", json!({"query": "nextest"})).await;
    assert!(s["hits"].as_array().unwrap().is_empty());

    let ctx = h
        .ok(
            "brain_context",
            json!({"task": "build", "include_unapproved": true, "paths": ["crates/x.rs"]}),
        )
        .await;
    assert!(
        ctx["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str())
    );
    let hist = h.ok("brain_history", json!({"id": id})).await;
    assert!(hist["events"].as_array().unwrap().len() >= 3);
    // Writes are journaled as the agent the client named, via mcp.
    assert_eq!(hist["events"][0]["actor"], "agent:pisama-test");
    assert_eq!(hist["events"][0]["via"], "mcp");

    let st = h.ok("brain_status", json!({})).await;
    assert_eq!(st["records"], 3);
    assert_eq!(st["pending"].as_array().unwrap().len(), 1);

    let a = h
        .ok("brain_archive", json!({"id": did, "reason": "test"}))
        .await;
    assert_eq!(a["review"], "archived");
    assert!(
        h.err("brain_get", json!({"id": "nothing-like-this"}))
            .await
            .contains("no record")
    );
    assert!(
        h.err(
            "brain_propose",
            json!({"kind": "wish", "title": "t", "body": "b"})
        )
        .await
        .contains("unknown kind")
    );
    assert!(
        h.err(
            "brain_propose",
            json!({"kind": "note", "title": "t", "body": "b", "review": "approved"})
        )
        .await
        .contains("only a human")
    );
}

#[tokio::test]
async fn approval_through_elicitation_is_a_human_verdict() {
    let recorder = Recorder {
        elicit: Some(true),
        ..Recorder::default()
    };
    let h = start_with(recorder, Limits::default(), workspace()).await;
    let out = h
        .ok("brain_propose", json!({"kind": "memory", "title": "Use nextest", "body": "cargo nextest run", "fields": {"memory_type": "convention"}}))
        .await;
    let id = out["id"].as_str().unwrap().to_owned();
    let r = h
        .ok(
            "brain_review",
            json!({"id": id, "verdict": "approve", "comment": "fine"}),
        )
        .await;
    assert_eq!(r["status"], "done", "{r}");
    assert_eq!(r["result"]["review"], "approved");
    assert!(h.recorder.seen("elicit"));
    let hist = h.ok("brain_history", json!({"id": id})).await;
    let approved = hist["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "approved")
        .unwrap()
        .clone();
    assert_eq!(approved["via"], "mcp-elicitation");
    assert_eq!(approved["actor"], "human:alice");
    // Now it is authoritative: default search finds it.
    let s = h.ok("brain_search", json!({"query": "nextest"})).await;
    assert_eq!(s["hits"][0]["id"], id.as_str());

    // A user who declines changes nothing.
    let recorder = Recorder {
        elicit: Some(false),
        ..Recorder::default()
    };
    let h = start_with(recorder, Limits::default(), workspace()).await;
    let out = h
        .ok(
            "brain_propose",
            json!({"kind": "note", "title": "n", "body": "b"}),
        )
        .await;
    let r = h
        .ok(
            "brain_review",
            json!({"id": out["id"], "verdict": "reject"}),
        )
        .await;
    assert_eq!(r["status"], "declined");
    let got = h.ok("brain_get", json!({"id": out["id"]})).await;
    assert_eq!(got["review"], "proposed");
}

#[tokio::test]
async fn resources_read_complete_and_notify() {
    let h = start().await;
    let list = h.client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = list.iter().map(|r| r.uri.as_str()).collect();
    for u in [
        "brain://index",
        "brain://pending",
        "brain://context",
        "brain://schema",
        "pisama://detectors",
        "brain://kind/decision",
    ] {
        assert!(uris.contains(&u), "{u} not listed");
    }
    let templates = h.client.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "brain://record/{id}")
    );

    let schema: Value = serde_json::from_str(&h.read("brain://schema").await).unwrap();
    assert!(
        schema["properties"]["kind"]["enum"]
            .as_array()
            .unwrap()
            .len()
            == 11
    );
    let det: Value = serde_json::from_str(&h.read("pisama://detectors").await).unwrap();
    assert!(det["count"].as_u64().unwrap() > 30);
    assert!(
        h.read("brain://context")
            .await
            .contains("no approved context")
    );

    // Subscribe to the index, then write: an update and a list change arrive.
    h.client
        .subscribe(SubscribeRequestParams::new("brain://index"))
        .await
        .unwrap();
    let out = h
        .ok(
            "brain_propose",
            json!({"kind": "spec", "title": "Offline mode", "body": "R1"}),
        )
        .await;
    let id = out["id"].as_str().unwrap().to_owned();
    h.wait_for("updated brain://index").await;
    h.wait_for("resources_list_changed").await;

    let index: Value = serde_json::from_str(&h.read("brain://index").await).unwrap();
    assert_eq!(index["records"][0]["id"], id.as_str());
    let rec = h.read(&format!("brain://record/{id}")).await;
    assert!(rec.starts_with("---\n") && rec.contains("title: Offline mode"));
    let kind: Value = serde_json::from_str(&h.read("brain://kind/spec").await).unwrap();
    assert_eq!(kind["total"], 1);
    let pending: Value = serde_json::from_str(&h.read("brain://pending").await).unwrap();
    assert_eq!(pending["pending"][0]["id"], id.as_str());

    // Completion of record ids, kinds and spec ids.
    let c = h
        .client
        .complete(CompleteRequestParams::new(
            Reference::for_resource("brain://record/{id}"),
            ArgumentInfo::new("id", &id[..6]),
        ))
        .await
        .unwrap();
    assert_eq!(c.completion.values, vec![id.clone()]);
    let c = h
        .client
        .complete(CompleteRequestParams::new(
            Reference::for_resource("brain://kind/{kind}"),
            ArgumentInfo::new("kind", "de"),
        ))
        .await
        .unwrap();
    assert_eq!(c.completion.values, vec!["decision".to_owned()]);
    let c = h
        .client
        .complete(CompleteRequestParams::new(
            Reference::for_prompt("brain_plan_from_spec"),
            ArgumentInfo::new("spec_id", ""),
        ))
        .await
        .unwrap();
    assert_eq!(c.completion.values, vec![id.clone()]);

    // An unknown resource is a protocol error.
    let e = h
        .client
        .read_resource(ReadResourceRequestParams::new("brain://nope"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no such resource"), "{e}");

    // An edit made outside the server (another process, an editor) is announced too.
    h.recorder.events.lock().unwrap().clear();
    let brain = pisama_brain::Brain::open(h.dir.path()).unwrap();
    brain
        .create(
            pisama_brain::NewRecord::new(
                pisama_brain::Kind::Note,
                "External",
                "written by the CLI",
            ),
            &pisama_brain::Actor::human("bob"),
        )
        .unwrap();
    h.wait_for("resources_list_changed").await;
    h.wait_for("updated brain://index").await;
}

#[tokio::test]
async fn prompts_builtin_triage_and_from_records() {
    let recorder = Recorder {
        elicit: Some(true),
        ..Recorder::default()
    };
    let h = start_with(recorder, Limits::default(), workspace()).await;
    let prompts = h.client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    for n in [
        "brain_session_start",
        "brain_capture",
        "brain_new_decision",
        "brain_new_spec",
        "brain_plan_from_spec",
        "brain_review_pending",
        "brain_refresh_stale",
        "pisama_triage",
    ] {
        assert!(names.contains(&n), "{n} missing");
    }
    let spec = h
        .ok(
            "brain_propose",
            json!({"kind": "spec", "title": "Offline", "body": "R1: work offline"}),
        )
        .await;
    let args = |v: Value| match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    for (name, a) in [
        (
            "brain_session_start",
            json!({"task": "refactor the loader"}),
        ),
        ("brain_capture", json!({})),
        (
            "brain_new_decision",
            json!({"title": "Use X", "problem": "We need Y"}),
        ),
        ("brain_new_spec", json!({"feature": "offline mode"})),
        ("brain_plan_from_spec", json!({"spec_id": spec["id"]})),
        ("brain_review_pending", json!({})),
        ("brain_refresh_stale", json!({})),
        (
            "pisama_triage",
            json!({"path": "traces/positive/search-storm.json"}),
        ),
    ] {
        let p = h
            .client
            .get_prompt(GetPromptRequestParams::new(name).with_arguments(args(a)))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = serde_json::to_string(&p.messages).unwrap();
        assert!(text.len() > 100, "{name}: {text}");
        if name == "pisama_triage" {
            assert!(text.contains("tool-retry-storm"), "{text}");
        }
    }
    let e = h
        .client
        .get_prompt(GetPromptRequestParams::new("brain_session_start"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("task"), "{e}");

    // An approved prompt record becomes a prompt, announced with list_changed.
    let p = h
        .ok(
            "brain_propose",
            json!({
                "kind": "prompt",
                "title": "Review a diff",
                "body": "Review this diff for {{focus}} problems.",
                "fields": {"arguments": [{"name": "focus", "description": "what to look for", "required": true}]}
            }),
        )
        .await;
    h.ok("brain_review", json!({"id": p["id"], "verdict": "approve"}))
        .await;
    h.wait_for("prompts_list_changed").await;
    let prompts = h.client.list_all_prompts().await.unwrap();
    let mine = prompts
        .iter()
        .find(|p| p.name == "prompt_review_a_diff")
        .expect("record prompt");
    assert_eq!(mine.arguments.as_ref().unwrap()[0].name, "focus");
    let got = h
        .client
        .get_prompt(
            GetPromptRequestParams::new("prompt_review_a_diff")
                .with_arguments(args(json!({"focus": "security"}))),
        )
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&got.messages)
            .unwrap()
            .contains("for security problems")
    );
}
