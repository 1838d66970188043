//! The brain on disk: `.brain/` layout, locking, atomic writes, proposals, the review workflow
//! and per-kind transitions. Every write redacts first, writes the file atomically, appends a
//! journal line and updates the index, all under `.brain/.lock`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use ulid::Ulid;

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::journal::{Event, Journal, sha256_hex};
use crate::model::{
    self, Actor, Kind, Link, Origin, PHASES, RELS, Record, Review, STEP_STATES, Scope, Trust,
    WORK_STATES,
};
use crate::redact::{Findings, Redactor};
use crate::yaml::{Node, Value};

/// The folder name inside a repository.
pub const BRAIN_DIR: &str = ".brain";

/// A record and where it lives (relative to `.brain/`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub rel_path: PathBuf,
    pub record: Record,
}

/// Everything a full scan found: valid records and the problems of the others.
#[derive(Debug, Default)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    pub problems: Vec<Error>,
}

impl Catalog {
    pub fn by_id(&self) -> HashMap<Ulid, &Entry> {
        self.entries.iter().map(|e| (e.record.id, e)).collect()
    }
}

/// A new record, as an agent or a person proposes it.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub kind: Kind,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
    pub scope: Scope,
    pub fields: Vec<(String, Node)>,
    /// `Draft` or `Proposed`.
    pub review: Review,
    pub trust: Trust,
    pub client: Option<String>,
}

impl NewRecord {
    pub fn new(kind: Kind, title: impl Into<String>, body: impl Into<String>) -> Self {
        NewRecord {
            kind,
            title: title.into(),
            body: body.into(),
            tags: Vec::new(),
            links: Vec::new(),
            scope: Scope::default(),
            fields: Vec::new(),
            review: Review::Proposed,
            trust: Trust::ModelInference,
            client: None,
        }
    }
}

/// A change to a record. `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub title: Option<String>,
    pub body: Option<String>,
    pub append: Option<String>,
    pub tags: Option<Vec<String>>,
    pub add_links: Vec<Link>,
    pub remove_links: Vec<Link>,
    pub scope: Option<Scope>,
    pub fields: Vec<(String, Node)>,
}

/// What a write did: always reported, so persistence is visible.
#[derive(Debug, Clone, Serialize)]
pub struct WriteOutcome {
    pub id: String,
    pub short_id: String,
    /// Relative to the repository root.
    pub path: String,
    pub revision: u32,
    pub review: Review,
    /// True when the write went to `proposals/` (the approved text stays live).
    pub proposal: bool,
    pub redactions: usize,
    pub rules: Vec<String>,
    /// False when the index step failed; the next read rebuilds it.
    pub indexed: bool,
    pub event: String,
}

/// A human's verdict on a pending record or proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    RequestChanges,
    Reject,
}

/// A pending proposal: the full next revision of an approved record.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub rel_path: PathBuf,
    pub record: Record,
}

/// One revision's text, for history and diffs.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionText {
    pub revision: u32,
    pub label: String,
    pub text: String,
}

/// An open brain.
#[derive(Debug)]
pub struct Brain {
    root: PathBuf,
    dir: PathBuf,
    config: Config,
    redactor: Redactor,
    journal: Journal,
    fail_index: bool,
}

/// Holds `.brain/.lock` until dropped.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

const GITIGNORE: &str = ".index/\nlocal/\n.lock\n";
const GITATTRIBUTES: &str = "journal/*.jsonl merge=union\n";

impl Brain {
    /// Creates `.brain/` under `root` with its folders, `brain.toml`, `.gitignore` and
    /// `.gitattributes`.
    pub fn init(root: &Path) -> Result<Brain> {
        let dir = root.join(BRAIN_DIR);
        if dir.join("brain.toml").exists() {
            return Err(Error::AlreadyInitialized(dir));
        }
        for sub in
            Kind::ALL
                .iter()
                .map(|k| k.folder())
                .chain(["proposals", "journal", "local", "history"])
        {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        let key = Ulid::new().to_string().to_ascii_lowercase();
        write_atomic(
            &dir.join("brain.toml"),
            config::default_toml(&key).as_bytes(),
        )?;
        write_atomic(&dir.join(".gitignore"), GITIGNORE.as_bytes())?;
        write_atomic(&dir.join(".gitattributes"), GITATTRIBUTES.as_bytes())?;
        Brain::open(root)
    }

    /// Opens the brain of the repository at `root`.
    pub fn open(root: &Path) -> Result<Brain> {
        let dir = root.join(BRAIN_DIR);
        if !dir.is_dir() {
            return Err(Error::NoBrain(root.to_owned()));
        }
        let config_path = dir.join("brain.toml");
        let config = Config::load(&config_path)?;
        let redactor = config.redactor(&config_path)?;
        Ok(Brain {
            root: root.to_owned(),
            journal: Journal::new(dir.join("journal")),
            dir,
            config,
            redactor,
            fail_index: false,
        })
    }

    /// Finds the repository root from `start`: the nearest folder with `.brain/`, else the
    /// nearest with `.git`, else `start`.
    pub fn discover(start: &Path) -> PathBuf {
        for d in start.ancestors() {
            if d.join(BRAIN_DIR).is_dir() {
                return d.to_owned();
            }
        }
        for d in start.ancestors() {
            if d.join(".git").exists() {
                return d.to_owned();
            }
        }
        start.to_owned()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Makes every later index step fail (to test crash recovery).
    #[doc(hidden)]
    pub fn inject_index_failure(&mut self, on: bool) {
        self.fail_index = on;
    }

    /// Takes the exclusive write lock (blocks until free).
    pub fn lock(&self) -> Result<LockGuard> {
        self.lock_mode(true)
    }

    /// Takes the shared read lock.
    pub fn lock_shared(&self) -> Result<LockGuard> {
        self.lock_mode(false)
    }

    fn lock_mode(&self, exclusive: bool) -> Result<LockGuard> {
        let path = self.dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .map_err(|e| Error::io(&path, e))?;
        Ok(LockGuard { _file: file })
    }

    fn rel_to_root(&self, rel: &Path) -> String {
        let p = Path::new(BRAIN_DIR).join(rel);
        p.to_string_lossy().replace('\\', "/")
    }

    /// Every record file (relative to `.brain/`): the kind folders and `local/`.
    pub fn record_files(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            list_md(&self.dir, Path::new(kind.folder()), &mut out)?;
        }
        list_md(&self.dir, Path::new("local"), &mut out)?;
        out.sort();
        Ok(out)
    }

    /// Reads and validates one record file.
    pub fn load(&self, rel: &Path) -> Result<Entry> {
        let path = self.dir.join(rel);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let record = Record::parse(&text, &Path::new(BRAIN_DIR).join(rel))?;
        Ok(Entry {
            rel_path: rel.to_owned(),
            record,
        })
    }

    /// Reads every record. Invalid files and duplicate ids are reported, never dropped.
    pub fn scan(&self) -> Result<Catalog> {
        let mut cat = Catalog::default();
        let mut seen: HashMap<Ulid, PathBuf> = HashMap::new();
        for rel in self.record_files()? {
            match self.load(&rel) {
                Ok(entry) => {
                    if let Some(first) = seen.get(&entry.record.id) {
                        cat.problems.push(Error::DuplicateId {
                            id: entry.record.id.to_string(),
                            first: Path::new(BRAIN_DIR).join(first),
                            second: Path::new(BRAIN_DIR).join(&rel),
                        });
                        continue;
                    }
                    seen.insert(entry.record.id, rel.clone());
                    cat.entries.push(entry);
                }
                Err(e) => cat.problems.push(e),
            }
        }
        Ok(cat)
    }

    /// Resolves an id, a unique id prefix or suffix (≥ 4 characters) to a record file.
    pub fn resolve(&self, query: &str) -> Result<PathBuf> {
        let q = query
            .trim()
            .trim_start_matches("brain://record/")
            .to_ascii_uppercase();
        if q.len() < 4 {
            return Err(Error::NotFound(query.to_owned()));
        }
        let mut hits: Vec<(String, PathBuf)> = Vec::new();
        for rel in self.record_files()? {
            let Some(id) = id_from_file_name(&rel) else {
                continue;
            };
            if id == q {
                return Ok(rel);
            }
            if id.starts_with(&q) || id.ends_with(&q) {
                hits.push((id, rel));
            }
        }
        match hits.len() {
            0 => Err(Error::NotFound(query.to_owned())),
            1 => Ok(hits.remove(0).1),
            _ => Err(Error::Ambiguous {
                query: query.to_owned(),
                candidates: hits.into_iter().map(|(id, _)| id).take(5).collect(),
            }),
        }
    }

    /// The record for an id or id fragment.
    pub fn get(&self, query: &str) -> Result<Entry> {
        let rel = self.resolve(query)?;
        self.load(&rel)
    }

    fn proposal_rel(id: Ulid, revision: u32) -> PathBuf {
        PathBuf::from("proposals").join(format!("{id}--r{revision}.md"))
    }

    /// The pending proposal for a record, if any.
    pub fn proposal(&self, id: Ulid) -> Result<Option<Proposal>> {
        let dir = self.dir.join("proposals");
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let prefix = format!("{id}--r");
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && Path::new(&name).extension().is_some_and(|e| e == "md")
            {
                let rel = PathBuf::from("proposals").join(&name);
                let path = self.dir.join(&rel);
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                let record = Record::parse(&text, &Path::new(BRAIN_DIR).join(&rel))?;
                return Ok(Some(Proposal {
                    rel_path: rel,
                    record,
                }));
            }
        }
        Ok(None)
    }

    /// Every pending proposal file (valid or not: invalid ones are errors).
    pub fn proposals(&self) -> Result<Vec<Result<Proposal>>> {
        let mut out = Vec::new();
        let mut files = Vec::new();
        list_md(&self.dir, Path::new("proposals"), &mut files)?;
        files.sort();
        for rel in files {
            if rel.components().count() > 2 {
                continue; // proposals/rejected/...
            }
            let path = self.dir.join(&rel);
            let r = std::fs::read_to_string(&path)
                .map_err(|e| Error::io(&path, e))
                .and_then(|t| Record::parse(&t, &Path::new(BRAIN_DIR).join(&rel)))
                .map(|record| Proposal {
                    rel_path: rel,
                    record,
                });
            out.push(r);
        }
        Ok(out)
    }

    /// Redacts every text of a record; refuses in strict mode. Sets `redactions` to the
    /// number of tags the record carries.
    pub fn redact(&self, record: &mut Record) -> Result<Findings> {
        let mut findings = Findings::default();
        if self.config.strict() {
            let mut probe = record.clone();
            probe.for_each_text_mut(&mut |s| findings.merge(&self.redactor.scan(s)));
            if findings.count() > 0 {
                return Err(Error::SecretsRefused {
                    count: findings.count(),
                    rules: findings.rules().join(", "),
                });
            }
        } else {
            record.for_each_text_mut(&mut |s| findings.merge(&self.redactor.redact(s)));
        }
        let mut tags = 0usize;
        record.for_each_text_mut(&mut |s| tags += s.matches("[REDACTED:").count());
        record.redactions = tags as u32;
        Ok(findings)
    }

    fn journal_event(
        &self,
        event: &str,
        record: &Record,
        content: &str,
        actor: &Actor,
        note: Option<String>,
        findings: Option<&Findings>,
    ) -> Result<()> {
        self.journal.append(Event {
            ts: String::new(),
            event: event.into(),
            id: record.id.to_string(),
            revision: record.revision,
            content_hash: sha256_hex(content.as_bytes()),
            actor: actor.tag(),
            via: actor.via.clone(),
            note,
            rules: findings.map(|f| f.by_rule.clone()).unwrap_or_default(),
            prev: String::new(),
        })?;
        Ok(())
    }

    /// Writes a record file and its journal line, then updates the index. Caller holds the lock.
    fn commit_record(
        &self,
        rel: &Path,
        record: &Record,
        event: &str,
        actor: &Actor,
        note: Option<String>,
        findings: Option<&Findings>,
        proposal: bool,
    ) -> Result<WriteOutcome> {
        let text = record.to_markdown();
        write_atomic(&self.dir.join(rel), text.as_bytes())?;
        self.journal_event(event, record, &text, actor, note, findings)?;
        let indexed = if proposal {
            true
        } else {
            self.index_after_write(&[rel.to_owned()])
        };
        Ok(WriteOutcome {
            id: record.id.to_string(),
            short_id: record.short_id(),
            path: self.rel_to_root(rel),
            revision: record.revision,
            review: record.review,
            proposal,
            redactions: findings.map_or(0, Findings::count),
            rules: findings.map(Findings::rules).unwrap_or_default(),
            indexed,
            event: event.into(),
        })
    }

    /// Updates the index for changed files; failures are logged, never fatal (files are the
    /// truth; the next read rebuilds the index).
    fn index_after_write(&self, rels: &[PathBuf]) -> bool {
        if self.fail_index {
            tracing::warn!("index step failed (injected); the next read rebuilds it");
            return false;
        }
        match crate::index::BrainIndex::open(self).and_then(|mut ix| ix.sync_paths(self, rels)) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("index update failed ({e}); the next read rebuilds it");
                false
            }
        }
    }

    fn check_links_exist(&self, links: &[Link]) -> Result<()> {
        for l in links {
            if !RELS.contains(&l.rel.as_str()) {
                return Err(Error::Usage(format!(
                    "unknown relation `{}`; expected one of: {}",
                    l.rel,
                    RELS.join(", ")
                )));
            }
            if let Some(p) = l.to.strip_prefix("path:") {
                if !model::path_inside_repo(p) {
                    return Err(Error::Usage(format!(
                        "link target `{p}` is outside the repository"
                    )));
                }
            } else if Ulid::from_string(&l.to).is_err() {
                return Err(Error::Usage(format!(
                    "link target `{}` is neither a record id nor `path:<path>`",
                    l.to
                )));
            } else {
                self.resolve(&l.to).map_err(|_| dangling(&l.to))?;
            }
        }
        Ok(())
    }

    fn check_scope(scope: &Scope) -> Result<()> {
        for p in scope
            .paths
            .iter()
            .chain(scope.evidence.iter().map(|e| &e.path))
        {
            if !model::path_inside_repo(p) {
                return Err(Error::Usage(format!(
                    "scope path `{p}` is outside the repository (use a path relative to the repository root)"
                )));
            }
        }
        Ok(())
    }

    /// Builds, validates and redacts the record `create` would write (nothing is written).
    fn build(&self, new: NewRecord, actor: &Actor) -> Result<(Record, Findings)> {
        if new.title.trim().is_empty() {
            return Err(Error::Usage("a record needs a title".into()));
        }
        if !matches!(new.review, Review::Draft | Review::Proposed) {
            return Err(Error::Usage(
                "a new record starts as draft or proposed; approval is a separate step".into(),
            ));
        }
        Self::check_scope(&new.scope)?;
        let mut record = Record::new(new.kind, new.title.trim(), &new.body);
        record.review = new.review;
        record.tags = new.tags;
        record.links = new.links;
        record.scope = new.scope;
        record.authors = vec![actor.tag()];
        record.origin = Some(Origin {
            actor: if new.trust == Trust::Imported {
                "import".into()
            } else if actor.human {
                "human".into()
            } else {
                "agent".into()
            },
            client: new.client,
            trust: new.trust,
        });
        for (k, v) in new.fields {
            record.set_field(&k, v);
        }
        self.validate_fields(&record)?;
        let findings = self.redact(&mut record)?;
        Ok((record, findings))
    }

    /// Whether `create` would accept a record (schema, scope, strict redaction), without
    /// writing anything or checking links. Importers use it to refuse a bad source up front.
    pub fn check_new(&self, new: &NewRecord, actor: &Actor) -> Result<()> {
        self.build(new.clone(), actor).map(|_| ())
    }

    /// Creates a new record (never overwrites): `draft` or `proposed`.
    pub fn create(&self, new: NewRecord, actor: &Actor) -> Result<WriteOutcome> {
        let trust = new.trust;
        let kind = new.kind;
        let (mut record, findings) = self.build(new, actor)?;
        let _lock = self.lock()?;
        self.check_links_exist(&record.links)?;
        let rel = PathBuf::from(kind.folder()).join(record.file_name());
        let mut out = self.commit_record(
            &rel,
            &record,
            "created",
            actor,
            None,
            Some(&findings),
            false,
        )?;
        if self.config.review.auto_approve_direct_user_memories
            && record.kind == Kind::Memory
            && trust == Trust::DirectUser
            && record.redactions == 0
            && record.review == Review::Proposed
        {
            record.review = Review::Approved;
            record.revision += 1;
            record.approved_by = Some("policy:auto_approve_direct_user_memories".into());
            record.approved_at = Some(model::now());
            let policy = Actor {
                human: false,
                name: "auto_approve_direct_user_memories".into(),
                via: "policy".into(),
            };
            out = self.commit_record(
                &rel,
                &record,
                "approved",
                &policy,
                Some("auto-approved by brain.toml policy".into()),
                None,
                false,
            )?;
        }
        Ok(out)
    }

    /// Re-parses a record through the schema, so API-built records meet the same rules as files.
    fn validate_fields(&self, record: &Record) -> Result<()> {
        Record::parse(&record.to_markdown(), Path::new("(new record)")).map(|_| ())
    }

    /// Applies a patch. Approved records get a proposal in `proposals/`; others change in place.
    pub fn revise(
        &self,
        query: &str,
        base_revision: u32,
        patch: Patch,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<WriteOutcome> {
        let _lock = self.lock()?;
        let entry = self.get(query)?;
        let current = &entry.record;
        if current.revision != base_revision {
            return Err(Error::Conflict {
                id: current.id.to_string(),
                base: base_revision,
                current: current.revision,
            });
        }
        let mut next = current.clone();
        if let Some(t) = patch.title {
            next.title = t;
        }
        if let Some(b) = patch.body {
            next.set_body(&b);
        }
        if let Some(a) = patch.append {
            let body = format!("{}\n{}", next.body, a);
            next.set_body(&body);
        }
        if let Some(t) = patch.tags {
            next.tags = t;
        }
        next.links.retain(|l| !patch.remove_links.contains(l));
        for l in patch.add_links {
            if !next.links.contains(&l) {
                next.links.push(l);
            }
        }
        if let Some(s) = patch.scope {
            Self::check_scope(&s)?;
            next.scope = s;
        }
        for (k, v) in patch.fields {
            if matches!(v.value, Value::Null) {
                next.remove_field(&k);
            } else {
                next.set_field(&k, v);
            }
        }
        self.check_links_exist(&next.links)?;
        self.store_revision(&entry, next, actor, reason, false)
    }

    /// Replaces a record with a full new text (from `$EDITOR`), with the same rules as `revise`.
    /// When the record has a pending proposal, the proposal is what gets edited.
    pub fn revise_text(
        &self,
        query: &str,
        base_revision: u32,
        text: &str,
        actor: &Actor,
    ) -> Result<WriteOutcome> {
        let _lock = self.lock()?;
        let entry = self.get(query)?;
        let next = Record::parse(text, Path::new("(edited text)"))?;
        if next.id != entry.record.id || next.kind != entry.record.kind {
            return Err(Error::Usage(
                "the edit changed `id` or `kind`; those are immutable".into(),
            ));
        }
        self.check_links_exist(&next.links)?;
        let pending = self.proposal(entry.record.id)?;
        let expected = pending
            .as_ref()
            .map_or(entry.record.revision, |p| p.record.revision);
        if base_revision != expected && base_revision != entry.record.revision {
            return Err(Error::Conflict {
                id: entry.record.id.to_string(),
                base: base_revision,
                current: expected,
            });
        }
        self.store_revision(&entry, next, actor, Some("edited".into()), true)
    }

    fn store_revision(
        &self,
        entry: &Entry,
        mut next: Record,
        actor: &Actor,
        reason: Option<String>,
        replace_pending: bool,
    ) -> Result<WriteOutcome> {
        let current = &entry.record;
        // Immutable and workflow-owned fields come from the current record.
        next.id = current.id;
        next.kind = current.kind;
        next.created = current.created;
        next.origin.clone_from(&current.origin);
        next.updated = model::now();
        let who = actor.tag();
        if !next.authors.contains(&who) {
            next.authors.push(who);
        }
        match current.review {
            Review::Approved => {
                let pending = self.proposal(current.id)?;
                if let Some(p) = &pending
                    && !replace_pending
                {
                    return Err(Error::ProposalPending {
                        id: current.id.to_string(),
                        revision: p.record.revision,
                    });
                }
                next.review = Review::Proposed;
                next.revision = current.revision + 1;
                next.approved_by.clone_from(&current.approved_by);
                next.approved_at = current.approved_at;
                self.validate_fields(&next)?;
                let findings = self.redact(&mut next)?;
                let rel = Self::proposal_rel(current.id, next.revision);
                self.commit_record(
                    &rel,
                    &next,
                    "proposed",
                    actor,
                    reason,
                    Some(&findings),
                    true,
                )
            }
            Review::Draft | Review::Proposed | Review::ChangesRequested => {
                next.revision = current.revision;
                next.review = if current.review == Review::Draft {
                    Review::Draft
                } else {
                    Review::Proposed
                };
                next.approved_by = None;
                next.approved_at = None;
                self.validate_fields(&next)?;
                let findings = self.redact(&mut next)?;
                self.commit_record(
                    &entry.rel_path,
                    &next,
                    "revised",
                    actor,
                    reason,
                    Some(&findings),
                    false,
                )
            }
            Review::Rejected | Review::Archived => Err(Error::Transition(format!(
                "record {} is {}; it cannot be revised (create a new record instead)",
                current.id, current.review
            ))),
        }
    }

    /// The stored form of a link target a person typed: `path:<path>` as it is, or the full id
    /// of the record an id, prefix or suffix names. A record that does not exist is a
    /// "dangling link" error naming what was asked for.
    pub fn link_target(&self, to: &str) -> Result<String> {
        if let Some(p) = to.strip_prefix("path:") {
            if !model::path_inside_repo(p) {
                return Err(Error::Usage(format!(
                    "link target `{p}` is outside the repository"
                )));
            }
            return Ok(to.to_owned());
        }
        match self.get(to) {
            Ok(e) => Ok(e.record.id.to_string()),
            Err(Error::NotFound(_)) => Err(dangling(to)),
            Err(e) => Err(e),
        }
    }

    /// Adds or removes a link (validating both ends). Part of the next revision.
    pub fn link(
        &self,
        from: &str,
        rel: &str,
        to: &str,
        remove: bool,
        actor: &Actor,
    ) -> Result<WriteOutcome> {
        let entry = self.get(from)?;
        let target = if remove && !to.starts_with("path:") && self.resolve(to).is_err() {
            // Removing a link to a record that is gone: match the stored id.
            to.to_ascii_uppercase()
        } else {
            self.link_target(to)?
        };
        let link = Link {
            rel: rel.to_owned(),
            to: target,
        };
        let mut patch = Patch::default();
        if remove {
            if !entry.record.links.contains(&link) {
                return Err(Error::Usage(format!(
                    "record {} has no `{rel}` link to {to}",
                    entry.record.id
                )));
            }
            patch.remove_links.push(link);
        } else {
            patch.add_links.push(link);
        }
        self.revise(
            &entry.record.id.to_string(),
            entry.record.revision,
            patch,
            actor,
            Some(format!(
                "{} link {rel} → {to}",
                if remove { "remove" } else { "add" }
            )),
        )
    }

    /// The review queue: records and proposals waiting for a human, oldest first.
    pub fn pending(&self) -> Result<Vec<(Entry, Option<Proposal>)>> {
        let cat = self.scan()?;
        let mut out = Vec::new();
        let by_id = cat.by_id();
        for p in self.proposals()?.into_iter().flatten() {
            if p.record.review != Review::Proposed {
                continue;
            }
            if let Some(e) = by_id.get(&p.record.id) {
                out.push(((*e).clone(), Some(p)));
            }
        }
        for e in &cat.entries {
            if e.record.review == Review::Proposed {
                out.push((e.clone(), None));
            }
        }
        out.sort_by_key(|(e, p)| p.as_ref().map_or(e.record.updated, |p| p.record.updated));
        Ok(out)
    }

    /// A human verdict on a record's pending state or its pending proposal.
    pub fn review(
        &self,
        query: &str,
        revision: Option<u32>,
        verdict: Verdict,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<WriteOutcome> {
        if !actor.human {
            return Err(Error::HumanRequired {
                action: match verdict {
                    Verdict::Approve => "approve",
                    Verdict::Reject => "reject",
                    Verdict::RequestChanges => "request changes",
                }
                .into(),
            });
        }
        let _lock = self.lock()?;
        let entry = self.get(query)?;
        let mut record = entry.record.clone();
        if let Some(p) = self.proposal(record.id)? {
            if let Some(r) = revision
                && r != p.record.revision
            {
                return Err(Error::Conflict {
                    id: record.id.to_string(),
                    base: r,
                    current: p.record.revision,
                });
            }
            let mut next = p.record.clone();
            return match verdict {
                Verdict::Approve => {
                    // Keep the superseded revision for history, then replace atomically.
                    let old_text = std::fs::read(self.dir.join(&entry.rel_path))
                        .map_err(|e| Error::io(self.dir.join(&entry.rel_path), e))?;
                    let hist = PathBuf::from("history")
                        .join(record.id.to_string())
                        .join(format!("r{}.md", record.revision));
                    let hist_abs = self.dir.join(&hist);
                    if let Some(parent) = hist_abs.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                    }
                    write_atomic(&hist_abs, &old_text)?;
                    next.review = Review::Approved;
                    next.approved_by = Some(actor.tag());
                    next.approved_at = Some(model::now());
                    next.updated = model::now();
                    let findings = self.redact(&mut next)?;
                    // If the title changed, the file name changes: write the new, drop the old.
                    let new_rel = PathBuf::from(next.kind.folder()).join(next.file_name());
                    let rel = if entry.rel_path.starts_with("local") {
                        entry.rel_path.clone()
                    } else {
                        new_rel
                    };
                    let out = self.commit_record(
                        &rel,
                        &next,
                        "approved",
                        actor,
                        note,
                        Some(&findings),
                        false,
                    )?;
                    if rel != entry.rel_path {
                        remove_file(&self.dir.join(&entry.rel_path))?;
                        self.index_after_write(std::slice::from_ref(&entry.rel_path));
                    }
                    remove_file(&self.dir.join(&p.rel_path))?;
                    Ok(out)
                }
                Verdict::RequestChanges => {
                    next.review = Review::ChangesRequested;
                    self.commit_record(
                        &p.rel_path,
                        &next,
                        "changes_requested",
                        actor,
                        note,
                        None,
                        true,
                    )
                }
                Verdict::Reject => {
                    next.review = Review::Rejected;
                    let to = PathBuf::from("proposals")
                        .join("rejected")
                        .join(p.rel_path.file_name().unwrap_or_default());
                    let to_abs = self.dir.join(&to);
                    if let Some(parent) = to_abs.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                    }
                    let out =
                        self.commit_record(&to, &next, "rejected", actor, note, None, true)?;
                    remove_file(&self.dir.join(&p.rel_path))?;
                    Ok(out)
                }
            };
        }
        if let Some(r) = revision
            && r != record.revision
        {
            return Err(Error::Conflict {
                id: record.id.to_string(),
                base: r,
                current: record.revision,
            });
        }
        let allowed = matches!(
            record.review,
            Review::Draft | Review::Proposed | Review::ChangesRequested
        );
        if !allowed {
            return Err(Error::Transition(format!(
                "record {} is {} and has no pending proposal; nothing to review",
                record.id, record.review
            )));
        }
        let event = match verdict {
            Verdict::Approve => {
                record.review = Review::Approved;
                record.revision += 1;
                record.approved_by = Some(actor.tag());
                record.approved_at = Some(model::now());
                "approved"
            }
            Verdict::RequestChanges => {
                record.review = Review::ChangesRequested;
                "changes_requested"
            }
            Verdict::Reject => {
                record.review = Review::Rejected;
                "rejected"
            }
        };
        record.updated = model::now();
        self.commit_record(&entry.rel_path, &record, event, actor, note, None, false)
    }

    /// Moves a per-kind lifecycle state: decision `outcome`, spec/plan `phase`, plan step
    /// (`S3:done`), `work_request` `state`. `by` names the superseding record for
    /// `superseded`.
    pub fn transition(
        &self,
        query: &str,
        to: &str,
        by: Option<&str>,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<WriteOutcome> {
        let _lock = self.lock()?;
        let entry = self.get(query)?;
        let mut record = entry.record.clone();
        if matches!(record.review, Review::Archived | Review::Rejected) {
            return Err(Error::Transition(format!(
                "record {} is {}",
                record.id, record.review
            )));
        }
        let kind = record.kind;
        let describe;
        if kind == Kind::Plan
            && let Some((step, status)) = to.split_once(':')
        {
            if !STEP_STATES.contains(&status) {
                return Err(Error::Transition(format!(
                    "`{status}` is not a step status ({})",
                    STEP_STATES.join(", ")
                )));
            }
            let Some(Node {
                value: Value::List(steps),
                ..
            }) = record.field("steps").cloned()
            else {
                return Err(Error::Transition(format!(
                    "plan {} has no steps",
                    record.id
                )));
            };
            let mut found = false;
            let steps: Vec<Node> = steps
                .into_iter()
                .map(|mut s| {
                    if s.get("id").and_then(Node::as_str) == Some(step)
                        && let Value::Map(m) = &mut s.value
                    {
                        found = true;
                        if let Some(slot) = m.iter_mut().find(|(k, _)| k == "status") {
                            slot.1 = Node::str(status);
                        } else {
                            m.push(("status".into(), Node::str(status)));
                        }
                    }
                    s
                })
                .collect();
            if !found {
                return Err(Error::Transition(format!(
                    "plan {} has no step `{step}`",
                    record.id
                )));
            }
            record.set_field("steps", Node::new(Value::List(steps)));
            describe = format!("step {step} → {status}");
        } else {
            let Some((field, values)) = kind.status_field() else {
                return Err(Error::Transition(format!(
                    "{kind} records have no lifecycle state"
                )));
            };
            if !values.contains(&to) {
                return Err(Error::Transition(format!(
                    "`{to}` is not a {kind} {field} ({})",
                    values.join(", ")
                )));
            }
            let from = record.field_str(field).unwrap_or("").to_owned();
            allowed_transition(kind, &from, to)?;
            if self.config.requires_human(kind.name(), to) && !actor.human {
                return Err(Error::HumanRequired {
                    action: format!("move a {kind} to `{to}` (brain.toml review.require_human)"),
                });
            }
            if kind == Kind::WorkRequest && to == "running" && record.review != Review::Approved {
                return Err(Error::Transition(format!(
                    "work request {} is {}; only approved work requests may run",
                    record.id, record.review
                )));
            }
            if kind == Kind::Decision && to == "superseded" {
                let Some(by) = by else {
                    return Err(Error::Transition(
                        "`superseded` needs the superseding decision (--by <id>)".into(),
                    ));
                };
                let newer = self.get(by)?;
                let link = Link {
                    rel: "superseded_by".into(),
                    to: newer.record.id.to_string(),
                };
                if !record.links.contains(&link) {
                    record.links.push(link);
                }
            }
            record.set_field(field, Node::str(to));
            describe = format!("{field}: {from} → {to}");
        }
        record.updated = model::now();
        let note = Some(match note {
            Some(n) => format!("{describe}; {n}"),
            None => describe,
        });
        self.commit_record(
            &entry.rel_path,
            &record,
            "transitioned",
            actor,
            note,
            None,
            false,
        )
    }

    /// Soft delete: `review: archived`.
    pub fn archive(&self, query: &str, reason: &str, actor: &Actor) -> Result<WriteOutcome> {
        let _lock = self.lock()?;
        let entry = self.get(query)?;
        let mut record = entry.record.clone();
        if record.review == Review::Archived {
            return Err(Error::Transition(format!(
                "record {} is already archived",
                record.id
            )));
        }
        record.review = Review::Archived;
        record.updated = model::now();
        self.commit_record(
            &entry.rel_path,
            &record,
            "archived",
            actor,
            Some(reason.to_owned()),
            None,
            false,
        )
    }

    /// Journal events for one record, oldest first.
    pub fn events_for(&self, id: Ulid) -> Result<Vec<Event>> {
        let id = id.to_string();
        let mut events: Vec<Event> = self
            .journal
            .events()?
            .into_iter()
            .filter(|e| e.id == id)
            .collect();
        events.sort_by(|a, b| a.ts.cmp(&b.ts));
        Ok(events)
    }

    /// The texts of every kept revision: superseded ones from `history/`, the current file,
    /// and a pending proposal.
    pub fn revisions(&self, id: Ulid) -> Result<Vec<RevisionText>> {
        let mut out = Vec::new();
        let hist_dir = self.dir.join("history").join(id.to_string());
        if let Ok(rd) = std::fs::read_dir(&hist_dir) {
            let mut files: Vec<(u32, PathBuf)> = rd
                .filter_map(std::result::Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name.strip_prefix('r')?.strip_suffix(".md")?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect();
            files.sort();
            for (n, p) in files {
                let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
                out.push(RevisionText {
                    revision: n,
                    label: format!("r{n}"),
                    text,
                });
            }
        }
        let entry = self.get(&id.to_string())?;
        out.push(RevisionText {
            revision: entry.record.revision,
            label: format!("r{} ({})", entry.record.revision, entry.record.review),
            text: entry.record.to_markdown(),
        });
        if let Some(p) = self.proposal(id)? {
            out.push(RevisionText {
                revision: p.record.revision,
                label: format!("r{} (pending proposal)", p.record.revision),
                text: p.record.to_markdown(),
            });
        }
        Ok(out)
    }

    /// Counts by kind and review state.
    pub fn counts(cat: &Catalog) -> BTreeMap<Kind, BTreeMap<Review, usize>> {
        let mut out: BTreeMap<Kind, BTreeMap<Review, usize>> = BTreeMap::new();
        for e in &cat.entries {
            *out.entry(e.record.kind)
                .or_default()
                .entry(e.record.review)
                .or_default() += 1;
        }
        out
    }
}

fn allowed_transition(kind: Kind, from: &str, to: &str) -> Result<()> {
    if from == to {
        return Err(Error::Transition(format!("already `{to}`")));
    }
    let ok = match kind {
        Kind::Decision => matches!(
            (from, to),
            ("proposed" | "", "accepted" | "rejected")
                | ("accepted", "deprecated" | "superseded")
                | ("deprecated", "superseded")
                | ("rejected", "proposed")
        ),
        Kind::Spec | Kind::Plan => {
            let pos = |s: &str| PHASES.iter().position(|p| *p == s);
            to == "obsolete"
                || from.is_empty()
                || matches!((pos(from), pos(to)), (Some(a), Some(b)) if b == a + 1 || (b + 1 == a && from != "obsolete"))
        }
        Kind::WorkRequest => {
            debug_assert!(WORK_STATES.contains(&to));
            matches!(
                (from, to),
                ("queued" | "" | "blocked", "running" | "cancelled")
                    | ("running", "blocked" | "done" | "failed" | "cancelled")
                    | ("failed", "queued")
            )
        }
        // Review verdicts and memory types are plain values.
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Transition(format!(
            "a {kind} cannot go from `{from}` to `{to}`"
        )))
    }
}

fn dangling(to: &str) -> Error {
    Error::Usage(format!("link target {to} does not exist (dangling link)"))
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The ULID at the end of a record file name (`slug--ULID.md`).
pub fn id_from_file_name(rel: &Path) -> Option<String> {
    let name = rel.file_name()?.to_str()?;
    let stem = name.strip_suffix(".md")?;
    let id = stem.rsplit("--").next()?;
    (id.len() == 26).then(|| id.to_ascii_uppercase())
}

fn list_md(base: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = base.join(rel);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name();
        let name_s = name.to_string_lossy();
        if name_s.starts_with('.') {
            continue;
        }
        let child = rel.join(&name);
        let ft = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if ft.is_dir() {
            list_md(base, &child, out)?;
        } else if name_s.ends_with(".md") {
            out.push(child);
        }
    }
    Ok(())
}

/// Writes a file atomically: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
