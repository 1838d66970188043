//! Records: the kinds, the canonical frontmatter of each, parsing with strict validation, and
//! deterministic serialization (the same record always serializes to the same bytes).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;
use ulid::Ulid;

use crate::error::{Error, Result};
use crate::yaml::{self, Node, Value};

/// What a record is about (§5.2). The order is the order `status` lists them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Context,
    Architecture,
    Decision,
    Spec,
    Plan,
    Memory,
    Workflow,
    Prompt,
    WorkRequest,
    Review,
    Note,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Context,
        Kind::Architecture,
        Kind::Decision,
        Kind::Spec,
        Kind::Plan,
        Kind::Memory,
        Kind::Workflow,
        Kind::Prompt,
        Kind::WorkRequest,
        Kind::Review,
        Kind::Note,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Context => "context",
            Kind::Architecture => "architecture",
            Kind::Decision => "decision",
            Kind::Spec => "spec",
            Kind::Plan => "plan",
            Kind::Memory => "memory",
            Kind::Workflow => "workflow",
            Kind::Prompt => "prompt",
            Kind::WorkRequest => "work_request",
            Kind::Review => "review",
            Kind::Note => "note",
        }
    }

    /// The folder under `.brain/` that holds records of this kind.
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Context => "context",
            Kind::Architecture => "architecture",
            Kind::Decision => "decisions",
            Kind::Spec => "specs",
            Kind::Plan => "plans",
            Kind::Memory => "memory",
            Kind::Workflow => "workflows",
            Kind::Prompt => "prompts",
            Kind::WorkRequest => "work",
            Kind::Review => "reviews",
            Kind::Note => "notes",
        }
    }

    /// The per-kind lifecycle field and its values, if the kind has one.
    pub fn status_field(self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Kind::Decision => Some(("outcome", OUTCOMES)),
            Kind::Spec | Kind::Plan => Some(("phase", PHASES)),
            Kind::WorkRequest => Some(("state", WORK_STATES)),
            Kind::Review => Some(("verdict", VERDICTS)),
            Kind::Memory => Some(("memory_type", MEMORY_TYPES)),
            _ => None,
        }
    }

    /// The lifecycle value a new record of this kind starts with.
    pub fn initial_status(self) -> Option<&'static str> {
        match self {
            Kind::Decision => Some("proposed"),
            Kind::Spec | Kind::Plan => Some("draft"),
            Kind::WorkRequest => Some("queued"),
            Kind::Review => Some("comment"),
            Kind::Memory => Some("fact"),
            _ => None,
        }
    }

    fn extras(self) -> &'static [(&'static str, Spec)] {
        match self {
            Kind::Decision => DECISION_FIELDS,
            Kind::Spec => SPEC_FIELDS,
            Kind::Plan => PLAN_FIELDS,
            Kind::Memory => MEMORY_FIELDS,
            Kind::Workflow => WORKFLOW_FIELDS,
            Kind::Prompt => PROMPT_FIELDS,
            Kind::WorkRequest => WORK_FIELDS,
            Kind::Review => REVIEW_FIELDS,
            Kind::Context | Kind::Architecture | Kind::Note => &[],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s || k.folder() == s || (s == "adr" && *k == Kind::Decision))
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown kind `{s}`; expected one of: {}", names.join(", "))
            })
    }
}

pub const OUTCOMES: &[&str] = &[
    "proposed",
    "accepted",
    "rejected",
    "deprecated",
    "superseded",
];
pub const PHASES: &[&str] = &["draft", "ready", "in_progress", "done", "obsolete"];
pub const STEP_STATES: &[&str] = &["todo", "doing", "blocked", "done", "dropped"];
pub const WORK_STATES: &[&str] = &[
    "queued",
    "running",
    "blocked",
    "done",
    "failed",
    "cancelled",
];
pub const VERDICTS: &[&str] = &["approve", "request_changes", "reject", "comment"];
pub const MEMORY_TYPES: &[&str] = &["fact", "convention", "gotcha", "command", "preference"];
pub const CONFIDENCE: &[&str] = &["high", "medium", "low"];
/// Link relations a record may name.
pub const RELS: &[&str] = &[
    "supersedes",
    "superseded_by",
    "relates_to",
    "affects",
    "describes",
    "depends_on",
    "implements",
    "produces",
    "evidence",
    "uses",
    "for",
    "reviewed_by",
    "target",
];

/// The review state every record has (§5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    Draft,
    Proposed,
    ChangesRequested,
    Approved,
    Rejected,
    Archived,
}

impl Review {
    pub const ALL: [Review; 6] = [
        Review::Draft,
        Review::Proposed,
        Review::ChangesRequested,
        Review::Approved,
        Review::Rejected,
        Review::Archived,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Review::Draft => "draft",
            Review::Proposed => "proposed",
            Review::ChangesRequested => "changes_requested",
            Review::Approved => "approved",
            Review::Rejected => "rejected",
            Review::Archived => "archived",
        }
    }

    /// Waiting for a human: proposed (new records and revisions).
    pub fn is_pending(self) -> bool {
        self == Review::Proposed
    }
}

impl fmt::Display for Review {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Review {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Review::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Review::ALL.iter().map(|r| r.name()).collect();
                format!(
                    "unknown review state `{s}`; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// How far the first version of a record can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    DirectUser,
    ModelInference,
    ToolOutput,
    Imported,
}

impl Trust {
    pub fn name(self) -> &'static str {
        match self {
            Trust::DirectUser => "direct_user",
            Trust::ModelInference => "model_inference",
            Trust::ToolOutput => "tool_output",
            Trust::Imported => "imported",
        }
    }
}

impl FromStr for Trust {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Trust::DirectUser,
            Trust::ModelInference,
            Trust::ToolOutput,
            Trust::Imported,
        ]
        .into_iter()
        .find(|t| t.name() == s)
        .ok_or_else(|| {
            format!(
                "unknown trust `{s}`; expected direct_user, model_inference, tool_output or imported"
            )
        })
    }
}

/// Who writes: a person (through the CLI) or an agent (through the MCP server or a script).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub human: bool,
    /// A name such as `alice` or `claude-code`.
    pub name: String,
    /// The channel: `cli`, `mcp`, `mcp-elicitation`, `import`.
    pub via: String,
}

impl Actor {
    pub fn human(name: impl Into<String>) -> Self {
        Actor {
            human: true,
            name: name.into(),
            via: "cli".into(),
        }
    }

    pub fn agent(name: impl Into<String>, via: impl Into<String>) -> Self {
        Actor {
            human: false,
            name: name.into(),
            via: via.into(),
        }
    }

    /// `human:alice` or `agent:claude-code`.
    pub fn tag(&self) -> String {
        format!(
            "{}:{}",
            if self.human { "human" } else { "agent" },
            self.name
        )
    }
}

/// Provenance of a record's first version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// `agent`, `human` or `import`.
    pub actor: String,
    pub client: Option<String>,
    pub trust: Trust,
}

/// A piece of code a record's claim was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub path: String,
    pub lines: Option<String>,
    /// Git blob hash (hex, possibly abbreviated) of the file when the claim was made.
    pub blob: Option<String>,
}

/// Code anchoring: the paths a record governs and its evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub paths: Vec<String>,
    pub evidence: Vec<Evidence>,
}

/// A typed link to another record (a ULID) or to code (`path:...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub rel: String,
    pub to: String,
}

impl Link {
    /// The record id this link points to, if it points to a record.
    pub fn target_id(&self) -> Option<Ulid> {
        Ulid::from_string(&self.to).ok()
    }
}

/// Whether a record may leave the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    Local,
    Eligible,
    Synced,
}

impl SyncState {
    pub fn name(self) -> &'static str {
        match self {
            SyncState::Local => "local",
            SyncState::Eligible => "eligible",
            SyncState::Synced => "synced",
        }
    }
}

/// One record: canonical frontmatter plus a markdown body.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: Ulid,
    pub kind: Kind,
    pub title: String,
    pub review: Review,
    pub revision: u32,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub authors: Vec<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<Timestamp>,
    pub origin: Option<Origin>,
    pub tags: Vec<String>,
    pub scope: Scope,
    pub links: Vec<Link>,
    pub review_by: Option<String>,
    pub sync: SyncState,
    pub redactions: u32,
    /// Per-kind fields (in canonical order) and unknown fields (sorted), kept verbatim.
    pub fields: Vec<(String, Node)>,
    /// Markdown, LF line endings, no leading blank lines, one trailing newline (or empty).
    pub body: String,
}

/// The common fields in canonical order; everything else is a per-kind or unknown field.
const COMMON: &[&str] = &[
    "id",
    "kind",
    "title",
    "review",
    "revision",
    "created",
    "updated",
    "authors",
    "approved_by",
    "approved_at",
    "origin",
    "tags",
    "scope",
    "links",
    "review_by",
    "sync",
    "redactions",
];

/// The expected shape of a per-kind field.
#[derive(Debug, Clone, Copy)]
enum Spec {
    Enum(&'static [&'static str]),
    Str,
    Id,
    StrList,
    Bool,
    Int,
    Map,
    Items(&'static [(&'static str, Spec, bool)]),
    Any,
}

const DECISION_FIELDS: &[(&str, Spec)] = &[
    ("outcome", Spec::Enum(OUTCOMES)),
    ("date", Spec::Str),
    ("decision_makers", Spec::StrList),
    ("consulted", Spec::StrList),
    ("informed", Spec::StrList),
    (
        "options",
        Spec::Items(&[("title", Spec::Str, true), ("chosen", Spec::Bool, false)]),
    ),
];
const SPEC_FIELDS: &[(&str, Spec)] = &[
    ("phase", Spec::Enum(PHASES)),
    ("priority", Spec::Any),
    (
        "requirements",
        Spec::Items(&[
            ("id", Spec::Str, true),
            ("text", Spec::Str, false),
            ("acceptance", Spec::StrList, false),
        ]),
    ),
];
const PLAN_FIELDS: &[(&str, Spec)] = &[
    ("phase", Spec::Enum(PHASES)),
    ("implements", Spec::Id),
    (
        "steps",
        Spec::Items(&[
            ("id", Spec::Str, true),
            ("title", Spec::Str, false),
            ("status", Spec::Enum(STEP_STATES), false),
            ("depends_on", Spec::StrList, false),
            ("requirement", Spec::Str, false),
        ]),
    ),
];
const MEMORY_FIELDS: &[(&str, Spec)] = &[
    ("memory_type", Spec::Enum(MEMORY_TYPES)),
    ("confidence", Spec::Enum(CONFIDENCE)),
];
const WORKFLOW_FIELDS: &[(&str, Spec)] = &[
    ("triggers", Spec::StrList),
    ("steps", Spec::Any),
    ("commands", Spec::StrList),
];
const PROMPT_FIELDS: &[(&str, Spec)] = &[
    (
        "arguments",
        Spec::Items(&[
            ("name", Spec::Str, true),
            ("description", Spec::Str, false),
            ("required", Spec::Bool, false),
        ]),
    ),
    ("mcp_prompt", Spec::Bool),
];
const WORK_FIELDS: &[(&str, Spec)] = &[
    ("state", Spec::Enum(WORK_STATES)),
    ("requested_by", Spec::Str),
    ("assignee", Spec::Str),
    ("acceptance", Spec::StrList),
    ("for", Spec::Id),
    ("result", Spec::Map),
];
const REVIEW_FIELDS: &[(&str, Spec)] = &[
    ("target", Spec::Id),
    ("target_revision", Spec::Int),
    ("verdict", Spec::Enum(VERDICTS)),
    ("reviewer", Spec::Str),
];

/// Formats a timestamp the canonical way: UTC, whole seconds, `Z`.
pub fn format_ts(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now, truncated to whole seconds (what the file can hold).
pub fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn parse_ts(s: &str) -> Option<Timestamp> {
    let ts: Timestamp = s.trim().parse().ok()?;
    Timestamp::from_second(ts.as_second()).ok()
}

/// Whether a scope or evidence path stays inside the repository: relative, no `..` that climbs
/// out, no drive or root prefix.
pub fn path_inside_repo(p: &str) -> bool {
    if p.is_empty() || p.starts_with('/') || p.starts_with('\\') || p.starts_with('~') {
        return false;
    }
    if p.len() >= 2 && p.as_bytes()[1] == b':' {
        return false;
    }
    let mut depth: i32 = 0;
    for part in p.split(['/', '\\']) {
        match part {
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            "" | "." => {}
            _ => depth += 1,
        }
    }
    true
}

impl Record {
    /// A new record with the required fields set; `review` is `proposed`.
    pub fn new(kind: Kind, title: impl Into<String>, body: impl Into<String>) -> Record {
        let ts = now();
        let mut r = Record {
            id: Ulid::new(),
            kind,
            title: title.into(),
            review: Review::Proposed,
            revision: 0,
            created: ts,
            updated: ts,
            authors: Vec::new(),
            approved_by: None,
            approved_at: None,
            origin: None,
            tags: Vec::new(),
            scope: Scope::default(),
            links: Vec::new(),
            review_by: None,
            sync: SyncState::Local,
            redactions: 0,
            fields: Vec::new(),
            body: String::new(),
        };
        r.set_body(&body.into());
        if let (Some((field, _)), Some(value)) = (kind.status_field(), kind.initial_status()) {
            r.set_field(field, Node::str(value));
        }
        r
    }

    pub fn short_id(&self) -> String {
        short_id(self.id)
    }

    /// Sets the body, normalized: LF endings, no leading blank lines, one trailing newline.
    pub fn set_body(&mut self, body: &str) {
        self.body = normalize_body(body);
    }

    pub fn field(&self, name: &str) -> Option<&Node> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Node::as_str)
    }

    /// Sets a per-kind or extra field, keeping canonical order.
    pub fn set_field(&mut self, name: &str, value: Node) {
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| k == name) {
            slot.1 = value;
        } else {
            self.fields.push((name.to_owned(), value));
        }
        self.sort_fields();
    }

    pub fn remove_field(&mut self, name: &str) {
        self.fields.retain(|(k, _)| k != name);
    }

    fn sort_fields(&mut self) {
        let known = self.kind.extras();
        self.fields.sort_by(|(a, _), (b, _)| {
            let pa = known.iter().position(|(k, _)| k == a);
            let pb = known.iter().position(|(k, _)| k == b);
            match (pa, pb) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.cmp(b),
            }
        });
    }

    /// The per-kind lifecycle value (`outcome`, `phase`, `state`, ...), if any.
    pub fn status(&self) -> Option<&str> {
        self.kind
            .status_field()
            .and_then(|(field, _)| self.field_str(field))
    }

    /// Serializes the record canonically.
    pub fn to_markdown(&self) -> String {
        let mut m: Vec<(String, Node)> = Vec::with_capacity(24);
        let s = |v: &str| Node::str(v);
        let list = |v: &[String]| Node::new(Value::List(v.iter().map(Node::str).collect()));
        m.push(("id".into(), s(&self.id.to_string())));
        m.push(("kind".into(), s(self.kind.name())));
        m.push(("title".into(), s(&self.title)));
        m.push(("review".into(), s(self.review.name())));
        m.push((
            "revision".into(),
            Node::new(Value::Int(i64::from(self.revision))),
        ));
        m.push(("created".into(), s(&format_ts(self.created))));
        m.push(("updated".into(), s(&format_ts(self.updated))));
        if !self.authors.is_empty() {
            m.push(("authors".into(), list(&self.authors)));
        }
        if let Some(by) = &self.approved_by {
            m.push(("approved_by".into(), s(by)));
        }
        if let Some(at) = self.approved_at {
            m.push(("approved_at".into(), s(&format_ts(at))));
        }
        if let Some(o) = &self.origin {
            let mut om = vec![("actor".to_owned(), s(&o.actor))];
            if let Some(c) = &o.client {
                om.push(("client".into(), s(c)));
            }
            om.push(("trust".into(), s(o.trust.name())));
            m.push(("origin".into(), Node::new(Value::Map(om))));
        }
        if !self.tags.is_empty() {
            m.push(("tags".into(), list(&self.tags)));
        }
        if !self.scope.paths.is_empty() || !self.scope.evidence.is_empty() {
            let mut sm = Vec::new();
            if !self.scope.paths.is_empty() {
                sm.push(("paths".to_owned(), list(&self.scope.paths)));
            }
            if !self.scope.evidence.is_empty() {
                let items = self
                    .scope
                    .evidence
                    .iter()
                    .map(|e| {
                        let mut em = vec![("path".to_owned(), s(&e.path))];
                        if let Some(l) = &e.lines {
                            em.push(("lines".into(), s(l)));
                        }
                        if let Some(b) = &e.blob {
                            em.push(("blob".into(), s(b)));
                        }
                        Node::new(Value::Map(em))
                    })
                    .collect();
                sm.push(("evidence".to_owned(), Node::new(Value::List(items))));
            }
            m.push(("scope".into(), Node::new(Value::Map(sm))));
        }
        if !self.links.is_empty() {
            let items = self
                .links
                .iter()
                .map(|l| {
                    Node::new(Value::Map(vec![
                        ("rel".into(), s(&l.rel)),
                        ("to".into(), s(&l.to)),
                    ]))
                })
                .collect();
            m.push(("links".into(), Node::new(Value::List(items))));
        }
        if let Some(d) = &self.review_by {
            m.push(("review_by".into(), s(d)));
        }
        m.push(("sync".into(), s(self.sync.name())));
        m.push((
            "redactions".into(),
            Node::new(Value::Int(i64::from(self.redactions))),
        ));
        m.extend(self.fields.iter().cloned());
        let mut out = String::with_capacity(512 + self.body.len());
        out.push_str("---\n");
        out.push_str(&yaml::emit_map(&m));
        out.push_str("---\n");
        if !self.body.is_empty() {
            out.push('\n');
            out.push_str(&self.body);
        }
        out
    }

    /// Parses a record file. `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Record> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let text = if text.contains('\r') {
            std::borrow::Cow::Owned(text.replace("\r\n", "\n"))
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        let Some(rest) = text.strip_prefix("---\n") else {
            return Err(Error::invalid(
                path,
                1,
                None,
                "a record starts with a `---` line that opens its YAML frontmatter",
            ));
        };
        let (fm, body) = match rest.find("\n---\n") {
            Some(i) => (&rest[..=i], &rest[i + 5..]),
            None => match rest.strip_suffix("\n---") {
                Some(fm) => (fm, ""),
                None if rest.starts_with("---\n") => ("", &rest[4..]),
                None => {
                    return Err(Error::invalid(
                        path,
                        1,
                        None,
                        "the frontmatter is not closed by a `---` line",
                    ));
                }
            },
        };
        let root = yaml::parse(fm, 1)
            .map_err(|e| Error::invalid(path, e.line, None, format!("YAML: {}", e.message)))?;
        let Value::Map(entries) = root.value else {
            return Err(Error::invalid(
                path,
                2,
                None,
                "the frontmatter must be a map of fields",
            ));
        };
        Self::from_fields(entries, body, path)
    }

    fn from_fields(entries: Vec<(String, Node)>, body: &str, path: &Path) -> Result<Record> {
        let get = |name: &str| -> Option<Node> {
            entries
                .iter()
                .position(|(k, _)| k == name)
                .map(|i| entries[i].1.clone())
        };
        let bad = |node: &Node, field: &str, msg: String| {
            Error::invalid(path, node.line, Some(field), msg)
        };
        let missing =
            |field: &str| Error::invalid(path, 2, Some(field), "required field is missing");
        let req_str = |node: Option<Node>, field: &str| -> Result<(String, usize)> {
            let node = node.ok_or_else(|| missing(field))?;
            match &node.value {
                Value::Str(s) if !s.trim().is_empty() => Ok((s.clone(), node.line)),
                _ => Err(bad(
                    &node,
                    field,
                    format!("expected a non-empty string, found {}", node.type_name()),
                )),
            }
        };
        let (id_s, id_line) = req_str(get("id"), "id")?;
        let id = Ulid::from_string(id_s.trim()).map_err(|e| {
            Error::invalid(
                path,
                id_line,
                Some("id"),
                format!("`{id_s}` is not a ULID ({e})"),
            )
        })?;
        let (kind_s, kind_line) = req_str(get("kind"), "kind")?;
        let kind: Kind = kind_s
            .parse()
            .map_err(|e: String| Error::invalid(path, kind_line, Some("kind"), e))?;
        let (title, _) = req_str(get("title"), "title")?;
        let (review_s, review_line) = req_str(get("review"), "review")?;
        let review: Review = review_s
            .parse()
            .map_err(|e: String| Error::invalid(path, review_line, Some("review"), e))?;
        let rev_node = get("revision").ok_or_else(|| missing("revision"))?;
        let revision = match rev_node.value {
            Value::Int(i) if (0..=i64::from(u32::MAX)).contains(&i) => i as u32,
            _ => {
                return Err(bad(
                    &rev_node,
                    "revision",
                    format!(
                        "expected a whole number ≥ 0, found {}",
                        rev_node.type_name()
                    ),
                ));
            }
        };
        let ts_field = |node: Option<Node>,
                        field: &str,
                        required: bool|
         -> Result<Option<Timestamp>> {
            let Some(node) = node else {
                return if required {
                    Err(missing(field))
                } else {
                    Ok(None)
                };
            };
            match &node.value {
                Value::Str(s) => parse_ts(s).map(Some).ok_or_else(|| {
                    bad(
                        &node,
                        field,
                        format!("`{s}` is not an RFC 3339 timestamp such as 2026-11-23T17:02:11Z"),
                    )
                }),
                Value::Null if !required => Ok(None),
                _ => Err(bad(
                    &node,
                    field,
                    format!("expected a timestamp, found {}", node.type_name()),
                )),
            }
        };
        let created = ts_field(get("created"), "created", true)?.unwrap_or(Timestamp::UNIX_EPOCH);
        let updated = ts_field(get("updated"), "updated", true)?.unwrap_or(Timestamp::UNIX_EPOCH);
        let approved_at = ts_field(get("approved_at"), "approved_at", false)?;
        let str_list = |node: Option<Node>, field: &str| -> Result<Vec<String>> {
            match node {
                None => Ok(Vec::new()),
                Some(n) => as_str_list(&n).ok_or_else(|| {
                    bad(
                        &n,
                        field,
                        format!("expected a list of strings, found {}", n.type_name()),
                    )
                }),
            }
        };
        let authors = str_list(get("authors"), "authors")?;
        let tags = str_list(get("tags"), "tags")?;
        let opt_str = |node: Option<Node>, field: &str| -> Result<Option<String>> {
            match node {
                None
                | Some(Node {
                    value: Value::Null, ..
                }) => Ok(None),
                Some(Node {
                    value: Value::Str(s),
                    ..
                }) => Ok(Some(s)),
                Some(n) => Err(bad(
                    &n,
                    field,
                    format!("expected a string, found {}", n.type_name()),
                )),
            }
        };
        let approved_by = opt_str(get("approved_by"), "approved_by")?;
        let review_by = opt_str(get("review_by"), "review_by")?;
        let origin = match get("origin") {
            None
            | Some(Node {
                value: Value::Null, ..
            }) => None,
            Some(
                n @ Node {
                    value: Value::Map(_),
                    ..
                },
            ) => {
                let actor = opt_str(n.get("actor").cloned(), "origin.actor")?
                    .unwrap_or_else(|| "agent".into());
                if !["agent", "human", "import"].contains(&actor.as_str()) {
                    return Err(bad(
                        &n,
                        "origin.actor",
                        format!("`{actor}` is not agent, human or import"),
                    ));
                }
                let client = opt_str(n.get("client").cloned(), "origin.client")?;
                let trust = match opt_str(n.get("trust").cloned(), "origin.trust")? {
                    None => Trust::ModelInference,
                    Some(t) => t.parse().map_err(|e: String| {
                        bad(n.get("trust").unwrap_or(&n), "origin.trust", e)
                    })?,
                };
                Some(Origin {
                    actor,
                    client,
                    trust,
                })
            }
            Some(n) => {
                return Err(bad(
                    &n,
                    "origin",
                    format!("expected a map, found {}", n.type_name()),
                ));
            }
        };
        let scope = match get("scope") {
            None
            | Some(Node {
                value: Value::Null, ..
            }) => Scope::default(),
            Some(
                n @ Node {
                    value: Value::Map(_),
                    ..
                },
            ) => {
                let paths = str_list(n.get("paths").cloned(), "scope.paths")?;
                for p in &paths {
                    if !path_inside_repo(p) {
                        let line = n.get("paths").map_or(n.line, |x| x.line);
                        return Err(Error::invalid(
                            path,
                            line,
                            Some("scope.paths"),
                            format!(
                                "`{p}` is outside the repository (paths are relative to the repository root and may not climb out of it)"
                            ),
                        ));
                    }
                }
                let mut evidence = Vec::new();
                if let Some(ev) = n.get("evidence") {
                    let Value::List(items) = &ev.value else {
                        return Err(bad(
                            ev,
                            "scope.evidence",
                            format!("expected a list, found {}", ev.type_name()),
                        ));
                    };
                    for item in items {
                        let p = opt_str(item.get("path").cloned(), "scope.evidence.path")?
                            .ok_or_else(|| {
                                bad(
                                    item,
                                    "scope.evidence.path",
                                    "each evidence item needs a `path`".into(),
                                )
                            })?;
                        if !path_inside_repo(&p) {
                            return Err(bad(
                                item,
                                "scope.evidence.path",
                                format!("`{p}` is outside the repository"),
                            ));
                        }
                        let lines = match item.get("lines") {
                            Some(Node {
                                value: Value::Int(i),
                                ..
                            }) => Some(i.to_string()),
                            other => opt_str(other.cloned(), "scope.evidence.lines")?,
                        };
                        let blob = opt_str(item.get("blob").cloned(), "scope.evidence.blob")?;
                        if let Some(b) = &blob
                            && (b.len() < 7 || !b.bytes().all(|c| c.is_ascii_hexdigit()))
                        {
                            return Err(bad(
                                item,
                                "scope.evidence.blob",
                                format!("`{b}` is not a git blob hash (7 to 40 hex digits)"),
                            ));
                        }
                        evidence.push(Evidence {
                            path: p,
                            lines,
                            blob,
                        });
                    }
                }
                Scope { paths, evidence }
            }
            Some(n) => {
                return Err(bad(
                    &n,
                    "scope",
                    format!("expected a map, found {}", n.type_name()),
                ));
            }
        };
        let mut links = Vec::new();
        if let Some(n) = get("links") {
            match &n.value {
                Value::Null => {}
                Value::List(items) => {
                    for item in items {
                        let rel =
                            opt_str(item.get("rel").cloned(), "links.rel")?.ok_or_else(|| {
                                bad(item, "links", "each link needs `rel` and `to`".into())
                            })?;
                        let to =
                            opt_str(item.get("to").cloned(), "links.to")?.ok_or_else(|| {
                                bad(item, "links", "each link needs `rel` and `to`".into())
                            })?;
                        if !RELS.contains(&rel.as_str()) {
                            return Err(bad(
                                item,
                                "links.rel",
                                format!(
                                    "unknown relation `{rel}`; expected one of: {}",
                                    RELS.join(", ")
                                ),
                            ));
                        }
                        if let Some(p) = to.strip_prefix("path:") {
                            if !path_inside_repo(p) {
                                return Err(bad(
                                    item,
                                    "links.to",
                                    format!("`{p}` is outside the repository"),
                                ));
                            }
                        } else if Ulid::from_string(&to).is_err() {
                            return Err(bad(
                                item,
                                "links.to",
                                format!("`{to}` is neither a record id (ULID) nor `path:<path>`"),
                            ));
                        }
                        links.push(Link { rel, to });
                    }
                }
                _ => {
                    return Err(bad(
                        &n,
                        "links",
                        format!("expected a list, found {}", n.type_name()),
                    ));
                }
            }
        }
        let sync = match opt_str(get("sync"), "sync")?.as_deref() {
            None | Some("local") => SyncState::Local,
            Some("eligible") => SyncState::Eligible,
            Some("synced") => SyncState::Synced,
            Some(other) => {
                let line = get("sync").map_or(2, |n| n.line);
                return Err(Error::invalid(
                    path,
                    line,
                    Some("sync"),
                    format!("`{other}` is not local, eligible or synced"),
                ));
            }
        };
        let redactions = match get("redactions") {
            None => 0,
            Some(Node {
                value: Value::Int(i),
                ..
            }) if i >= 0 => i as u32,
            Some(n) => return Err(bad(&n, "redactions", "expected a whole number ≥ 0".into())),
        };
        let known = kind.extras();
        let mut fields = Vec::new();
        for (key, node) in entries {
            if COMMON.contains(&key.as_str()) {
                continue;
            }
            if let Some((_, spec)) = known.iter().find(|(k, _)| *k == key) {
                check_spec(&node, *spec, &key, path)?;
            }
            fields.push((key, node));
        }
        let mut record = Record {
            id,
            kind,
            title,
            review,
            revision,
            created,
            updated,
            authors,
            approved_by,
            approved_at,
            origin,
            tags,
            scope,
            links,
            review_by,
            sync,
            redactions,
            fields,
            body: normalize_body(body),
        };
        for (_, node) in &mut record.fields {
            strip_lines(node);
        }
        record.sort_fields();
        Ok(record)
    }

    /// Record ids this record refers to: links, `implements`, `for`, `target`.
    pub fn referenced_ids(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .links
            .iter()
            .filter(|l| !l.to.starts_with("path:"))
            .map(|l| (format!("links.{}", l.rel), l.to.clone()))
            .collect();
        for field in ["implements", "for", "target"] {
            if let Some(v) = self.field_str(field) {
                out.push((field.to_owned(), v.to_owned()));
            }
        }
        out
    }

    /// The file name under the kind folder: `[date-]slug--ULID.md`.
    pub fn file_name(&self) -> String {
        let slug = slugify(&self.title);
        if self.kind == Kind::Decision {
            let date = self.created.strftime("%Y-%m-%d");
            format!("{date}-{slug}--{}.md", self.id)
        } else {
            format!("{slug}--{}.md", self.id)
        }
    }

    /// Every string the scanner must look at: title, body, string fields.
    pub fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
        f(&mut self.title);
        f(&mut self.body);
        for t in &mut self.tags {
            f(t);
        }
        for (_, node) in &mut self.fields {
            node.for_each_str_mut(f);
        }
    }
}

fn strip_lines(node: &mut Node) {
    node.line = 0;
    match &mut node.value {
        Value::List(items) => items.iter_mut().for_each(strip_lines),
        Value::Map(m) => m.iter_mut().for_each(|(_, n)| strip_lines(n)),
        _ => {}
    }
}

fn as_str_list(node: &Node) -> Option<Vec<String>> {
    match &node.value {
        Value::Null => Some(Vec::new()),
        Value::Str(s) => Some(vec![s.clone()]),
        Value::List(items) => items
            .iter()
            .map(|n| match &n.value {
                Value::Str(s) => Some(s.clone()),
                Value::Int(i) => Some(i.to_string()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn check_spec(node: &Node, spec: Spec, field: &str, path: &Path) -> Result<()> {
    let bad = |n: &Node, msg: String| Error::invalid(path, n.line, Some(field), msg);
    match spec {
        Spec::Any => Ok(()),
        Spec::Enum(values) => match node.as_str() {
            Some(s) if values.contains(&s) => Ok(()),
            Some(s) => Err(bad(
                node,
                format!("`{s}` is not one of: {}", values.join(", ")),
            )),
            None => Err(bad(
                node,
                format!(
                    "expected one of {}, found {}",
                    values.join(", "),
                    node.type_name()
                ),
            )),
        },
        Spec::Str => match node.value {
            Value::Str(_) | Value::Null | Value::Int(_) => Ok(()),
            _ => Err(bad(
                node,
                format!("expected a string, found {}", node.type_name()),
            )),
        },
        Spec::Id => match node.as_str() {
            Some(s) if Ulid::from_string(s).is_ok() => Ok(()),
            _ => Err(bad(node, "expected a record id (ULID)".into())),
        },
        Spec::StrList => as_str_list(node).map(|_| ()).ok_or_else(|| {
            bad(
                node,
                format!("expected a list of strings, found {}", node.type_name()),
            )
        }),
        Spec::Bool => match node.value {
            Value::Bool(_) => Ok(()),
            _ => Err(bad(
                node,
                format!("expected true or false, found {}", node.type_name()),
            )),
        },
        Spec::Int => match node.value {
            Value::Int(_) => Ok(()),
            _ => Err(bad(
                node,
                format!("expected a number, found {}", node.type_name()),
            )),
        },
        Spec::Map => match node.value {
            Value::Map(_) | Value::Null => Ok(()),
            _ => Err(bad(
                node,
                format!("expected a map, found {}", node.type_name()),
            )),
        },
        Spec::Items(item_fields) => {
            let Value::List(items) = &node.value else {
                return Err(bad(
                    node,
                    format!("expected a list, found {}", node.type_name()),
                ));
            };
            for item in items {
                if !matches!(item.value, Value::Map(_)) {
                    return Err(bad(
                        item,
                        format!("each item must be a map, found {}", item.type_name()),
                    ));
                }
                for (name, sub, required) in item_fields {
                    match item.get(name) {
                        None if *required => {
                            return Err(bad(item, format!("each item needs `{name}`")));
                        }
                        None => {}
                        Some(v) => check_spec(v, *sub, &format!("{field}.{name}"), path)?,
                    }
                }
            }
            Ok(())
        }
    }
}

/// LF endings, no leading blank lines, exactly one trailing newline (or empty). A lone CR
/// (old Mac endings) is a line break too, so that normalizing twice changes nothing: with
/// CRLF alone, `\r\r\n` would lose one `\r` on every save.
pub fn normalize_body(body: &str) -> String {
    let body = body.replace("\r\n", "\n").replace('\r', "\n");
    let trimmed = body.trim_start_matches('\n').trim_end();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}\n")
    }
}

/// A file-name slug: lowercase ASCII words joined by `-`, at most 48 characters.
pub fn slugify(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 48 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() { "record".into() } else { out }
}

/// The last 8 characters of a ULID: its random part, unique enough to type.
pub fn short_id(id: Ulid) -> String {
    let s = id.to_string();
    s[s.len() - 8..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut r = Record::new(
            Kind::Decision,
            "Use tantivy for brain search",
            "## Context\r\n\r\nWe need search.\n\n\n",
        );
        r.authors = vec!["human:alice".into(), "agent:claude-code".into()];
        r.tags = vec!["search".into(), "indexing".into()];
        r.origin = Some(Origin {
            actor: "agent".into(),
            client: Some("claude-code".into()),
            trust: Trust::ModelInference,
        });
        r.scope = Scope {
            paths: vec!["crates/brain/**".into(), "Cargo.toml".into()],
            evidence: vec![Evidence {
                path: "crates/brain/src/lib.rs".into(),
                lines: Some("10-42".into()),
                blob: Some("3f2a9c1".into()),
            }],
        };
        r.links = vec![Link {
            rel: "affects".into(),
            to: "path:crates/brain".into(),
        }];
        r.set_field(
            "options",
            Node::new(Value::List(vec![Node::new(Value::Map(vec![
                ("title".into(), Node::str("tantivy")),
                ("chosen".into(), Node::new(Value::Bool(true))),
            ]))])),
        );
        r.set_field("date", Node::str("2026-11-23"));
        r
    }

    #[test]
    fn save_load_save_is_byte_identical() {
        let r = sample();
        let a = r.to_markdown();
        assert_eq!(a, r.to_markdown());
        let back = Record::parse(&a, Path::new("x.md")).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.to_markdown(), a);
        assert!(a.starts_with("---\nid: "));
        assert!(a.contains("\noutcome: proposed\ndate: 2026-11-23\noptions:\n  - {title: tantivy, chosen: true}\n"), "{a}");
        assert!(a.ends_with("We need search.\n"));
        assert!(!a.contains('\r'));
    }

    fn err(text: &str) -> String {
        Record::parse(text, Path::new("decisions/x.md"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_input_errors_name_file_line_and_field() {
        let good = sample().to_markdown();
        let e = err(&good.replace("kind: decision", "kind: decree"));
        assert!(
            e.starts_with("decisions/x.md:3: field `kind`: unknown kind `decree`"),
            "{e}"
        );
        let e = err(&good.replace("review: proposed", "review: maybe"));
        assert!(e.contains(":5: field `review`"), "{e}");
        let e = err(&good.replace("outcome: proposed", "outcome: perhaps"));
        assert!(
            e.contains("field `outcome`: `perhaps` is not one of"),
            "{e}"
        );
        let e = err(&good.replace("crates/brain/**", "../../etc/**"));
        assert!(
            e.contains("field `scope.paths`") && e.contains("outside the repository"),
            "{e}"
        );
        let e = err(&good.replace("crates/brain/**", "/etc/passwd"));
        assert!(e.contains("outside the repository"), "{e}");
        let e = err(&good.replace("revision: 0", "revision: -3"));
        assert!(e.contains("field `revision`"), "{e}");
        let e = err(&good.replace("title: Use", "title: [Use"));
        assert!(e.contains("YAML"), "{e}");
        let e = err("no frontmatter\n");
        assert!(e.contains(":1:"), "{e}");
        let e = err("---\nid: x\n");
        assert!(e.contains("not closed"), "{e}");
        let e = err(&good.replace("to: \"path:crates/brain\"", "to: nowhere"));
        assert!(e.contains("field `links.to`"), "{e}");
        let e = err(&good.replace("\nkind: decision", ""));
        assert!(e.contains("field `kind`: required field is missing"), "{e}");
    }

    #[test]
    fn unknown_fields_are_kept_sorted_after_known_ones() {
        let good = sample().to_markdown();
        let text = good.replace("redactions: 0\n", "redactions: 0\nzeta: 1\nalpha: [a]\n");
        let r = Record::parse(&text, Path::new("x.md")).unwrap();
        let out = r.to_markdown();
        let a = out.find("alpha:").unwrap();
        let z = out.find("zeta:").unwrap();
        let o = out.find("options:").unwrap();
        assert!(o < a && a < z, "{out}");
        assert_eq!(
            Record::parse(&out, Path::new("x.md"))
                .unwrap()
                .to_markdown(),
            out
        );
    }

    #[test]
    fn paths_inside_repo() {
        assert!(path_inside_repo("src/**"));
        assert!(path_inside_repo("a/../b"));
        assert!(!path_inside_repo("a/../../b"));
        assert!(!path_inside_repo("/abs"));
        assert!(!path_inside_repo("C:\\x"));
        assert!(!path_inside_repo("~/x"));
        assert!(!path_inside_repo(""));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Save → load → save is byte-identical, and the loaded record equals the saved one,
        /// for any kind, title, tags, scope, links, review state and body (including CRs,
        /// quotes, colons, YAML-looking text and non-ASCII).
        #[test]
        fn records_round_trip_byte_identical(
            kind in 0..Kind::ALL.len(),
            review in 0..Review::ALL.len(),
            title in "[^\\r\\n]{1,60}",
            tags in proptest::collection::vec("[a-z0-9][a-z0-9_-]{0,12}", 0..4),
            paths in proptest::collection::vec("[a-z]{1,8}(/[a-z*]{1,8}){0,2}", 0..3),
            body in "(.|\\n|\\r){0,200}",
            revision in 0u32..50,
        ) {
            let mut r = Record::new(Kind::ALL[kind], title.trim(), body.as_str());
            proptest::prop_assume!(!r.title.is_empty());
            r.review = Review::ALL[review];
            r.revision = revision;
            r.tags = tags;
            r.scope.paths = paths;
            r.authors = vec!["human:alice".into()];
            let path = Path::new(".brain/notes/generated.md");
            let saved = r.to_markdown();
            let loaded = Record::parse(&saved, path).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{e}\n{saved}"))
            })?;
            proptest::prop_assert_eq!(loaded.to_markdown(), saved.clone());
            proptest::prop_assert_eq!(loaded, r);
        }
    }
}
