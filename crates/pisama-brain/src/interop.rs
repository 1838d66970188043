//! Import from the conventions people already use (MADR and adr-tools folders, Cline's
//! `memory-bank/`, the MCP reference memory server's `memory.jsonl`, spec-kit `specs/`) and
//! export of approved records (a bundle; `AGENTS.md`, `CLAUDE.md`, `.cursor/rules`).
//! Imported records are `proposed` with `trust: imported`: a human approves them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Actor, Kind, Link, Record, Review, Trust};
use crate::store::{Brain, NewRecord, Patch, WriteOutcome, write_atomic};
use crate::yaml::{self, Node, Value};

type Pick = dyn Fn(&Record) -> bool;

/// Source formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Adr,
    Cline,
    MemoryJsonl,
    SpecKit,
}

impl ImportFormat {
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "adr" | "madr" | "adr-tools" => Some(ImportFormat::Adr),
            "cline" | "memory-bank" => Some(ImportFormat::Cline),
            "memory-jsonl" | "mcp-memory" | "jsonl" => Some(ImportFormat::MemoryJsonl),
            "spec-kit" | "speckit" => Some(ImportFormat::SpecKit),
            _ => None,
        }
    }

    /// Guesses the format of a file or folder.
    pub fn detect(path: &Path) -> Option<Self> {
        if path.is_file() {
            return path
                .extension()
                .is_some_and(|e| e == "jsonl" || e == "json")
                .then_some(ImportFormat::MemoryJsonl);
        }
        let has = |n: &str| path.join(n).exists();
        if has("projectbrief.md") || has("activeContext.md") || has("productContext.md") {
            return Some(ImportFormat::Cline);
        }
        let rd = std::fs::read_dir(path).ok()?;
        let names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        if names
            .iter()
            .any(|p| p.is_dir() && p.join("spec.md").exists())
        {
            return Some(ImportFormat::SpecKit);
        }
        if names
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "md"))
        {
            return Some(ImportFormat::Adr);
        }
        None
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub created: Vec<WriteOutcome>,
    /// Links added between imported records (`from rel to`, by source).
    pub linked: Vec<String>,
    pub skipped: Vec<String>,
}

fn imported_from(rec: &Record) -> Option<&str> {
    rec.field_str("imported_from")
}

/// A link an import adds once both ends exist: to the record imported from `target`.
#[derive(Debug, Clone)]
struct PlannedLink {
    rel: &'static str,
    target: String,
    /// Also set this per-kind field to the target's id (a plan's `implements`).
    field: Option<&'static str>,
}

/// One record an import will create, keyed by where it came from (`imported_from`).
#[derive(Debug, Clone)]
struct Planned {
    src: String,
    file: PathBuf,
    new: NewRecord,
    links: Vec<PlannedLink>,
}

fn import_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Import {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// A source file as text (LF line endings); a file that is not UTF-8 is refused by name.
fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        import_error(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text.replace("\r\n", "\n"))
}

fn md_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "md"))
        .collect();
    out.sort();
    Ok(out)
}

/// Splits `---\nyaml\n---\nbody` when a markdown file has frontmatter. A file that opens a
/// frontmatter block and does not close it, or whose YAML does not parse, is an error.
fn split_frontmatter<'t>(text: &'t str, path: &Path) -> Result<(Option<Node>, &'t str)> {
    let Some(rest) = text.strip_prefix("---\n") else {
        return Ok((None, text));
    };
    let (fm, body) = match rest.find("\n---\n") {
        Some(end) => (&rest[..=end], &rest[end + 5..]),
        None => match rest.strip_suffix("\n---") {
            Some(fm) => (fm, ""),
            None => {
                return Err(Error::invalid(
                    path,
                    1,
                    None,
                    "the frontmatter opened by `---` is never closed",
                ));
            }
        },
    };
    let node = yaml::parse(fm, 1)
        .map_err(|e| Error::invalid(path, e.line, None, format!("YAML: {}", e.message)))?;
    match node.value {
        Value::Map(_) => Ok((Some(node), body)),
        Value::Null => Ok((None, body)),
        _ => Err(Error::invalid(
            path,
            2,
            None,
            "the frontmatter must be a map of fields",
        )),
    }
}

/// The first `# ` heading, without ADR numbering (`# 3. Use X` → `Use X`).
fn title_of(body: &str) -> Option<String> {
    let line = body.lines().find(|l| l.starts_with("# "))?;
    let t = line[2..].trim();
    let t = match t.split_once(". ") {
        Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => t,
    };
    (!t.is_empty()).then(|| t.to_owned())
}

/// The body without its first `# ` heading (the title is kept in `title`).
fn without_title(body: &str) -> String {
    let mut dropped = false;
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| {
            if !dropped && l.starts_with("# ") {
                dropped = true;
                return false;
            }
            true
        })
        .collect();
    lines.join("\n").trim_start_matches('\n').to_owned()
}

/// The text under a `## Heading` (case-insensitive), up to the next heading.
fn section(body: &str, name: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in body.lines() {
        if line.starts_with("## ") {
            if inside {
                break;
            }
            inside = line
                .trim_start_matches("## ")
                .trim()
                .eq_ignore_ascii_case(name);
            continue;
        }
        if inside {
            out.push(line);
        }
    }
    let s = out.join("\n").trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// A `* Key: value` / `- Key: value` metadata line (MADR 2) or a `Key: value` line (Nygard's
/// `Date:`), before the first `##` section.
fn meta_line(body: &str, key: &str) -> Option<String> {
    body.lines()
        .take_while(|l| !l.starts_with("## "))
        .find_map(|l| {
            let l = l.trim_start_matches(['*', '-']).trim_start();
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(key)
                .then(|| v.trim().to_owned())
        })
        .filter(|v| !v.is_empty())
}

/// Markdown link targets in a text: `[label](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                out.push(after[..j].trim().to_owned());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// A text with its markdown links' labels and targets removed (`Supersedes [2. X](b.md)` →
/// `Supersedes`), so a linked title cannot change the status.
fn strip_links(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        match (after.find("]("), after.find(')')) {
            (Some(close), Some(end)) if close < end => rest = &after[end + 1..],
            _ => {
                out.push('[');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The MADR / Nygard status text → a decision `outcome`. Linked titles are ignored, and
/// `Supersedes X` (this decision replaces X) is not `superseded`.
fn outcome(status: &str) -> &'static str {
    let s = strip_links(status).to_ascii_lowercase();
    if s.contains("superseded") {
        "superseded"
    } else if s.contains("deprecat") {
        "deprecated"
    } else if s.contains("reject") {
        "rejected"
    } else if s.contains("accept") {
        "accepted"
    } else {
        "proposed"
    }
}

/// Which relation a status line names: `Superseded by [..](..)` → `superseded_by`,
/// `Supersedes [..](..)` → `supersedes`, anything else (`Amends`, `Clarified by`) → `relates_to`.
fn status_rel(line: &str) -> &'static str {
    let l = line
        .trim_start_matches(['*', '-', ' '])
        .to_ascii_lowercase();
    if l.contains("superseded by") {
        "superseded_by"
    } else if l.starts_with("supersedes") {
        "supersedes"
    } else {
        "relates_to"
    }
}

/// A spec-kit `**Status**: Draft` line → a spec `phase`.
fn spec_phase(text: &str) -> Option<&'static str> {
    let status = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("**Status**:")
            .map(|s| s.trim().to_ascii_lowercase())
    })?;
    Some(match status.as_str() {
        s if s.starts_with("draft") => "draft",
        s if s.starts_with("ready") || s.starts_with("approved") || s.starts_with("clarified") => {
            "ready"
        }
        s if s.contains("progress") || s.starts_with("implementing") => "in_progress",
        s if s.starts_with("done") || s.starts_with("complete") || s.starts_with("implemented") => {
            "done"
        }
        s if s.starts_with("obsolete") || s.starts_with("superseded") => "obsolete",
        _ => return None,
    })
}

fn str_list_node(items: Vec<String>) -> Node {
    Node::new(Value::List(items.into_iter().map(Node::str).collect()))
}

impl Brain {
    /// Where an import source came from, as stored in `imported_from`: relative to the
    /// repository root when the source is inside it, else absolute; the same file gives the
    /// same key however its path was spelled, so a second import skips it.
    fn source_key(&self, path: &Path) -> String {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let root = std::fs::canonicalize(self.root()).unwrap_or_else(|_| self.root().to_owned());
        let shown = abs.strip_prefix(&root).map_or(abs.as_path(), |p| p);
        shown.to_string_lossy().replace('\\', "/")
    }

    /// Imports a folder or file as `proposed` records with `trust: imported`. The whole source
    /// is read and checked first: a file that cannot be imported is an error naming it, and
    /// nothing is written. Sources imported before (by `imported_from`) are skipped, so a
    /// second import creates nothing.
    pub fn import(
        &self,
        source: &Path,
        format: ImportFormat,
        actor: &Actor,
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        let plan = match format {
            ImportFormat::Adr => self.plan_adr(source, &mut report)?,
            ImportFormat::Cline => self.plan_cline(source)?,
            ImportFormat::MemoryJsonl => self.plan_memory_jsonl(source, &mut report)?,
            ImportFormat::SpecKit => self.plan_spec_kit(source)?,
        };
        let cat = self.scan()?;
        let mut ids: HashMap<String, String> = cat
            .entries
            .iter()
            .filter_map(|e| {
                imported_from(&e.record).map(|s| (s.to_owned(), e.record.id.to_string()))
            })
            .collect();
        let mut todo = Vec::new();
        for mut p in plan {
            if ids.contains_key(&p.src) {
                report.skipped.push(format!("{}: imported before", p.src));
                continue;
            }
            p.new.review = Review::Proposed;
            p.new.trust = Trust::Imported;
            p.new.client = Some("import".into());
            p.new
                .fields
                .push(("imported_from".into(), Node::str(&p.src)));
            self.check_new(&p.new, actor).map_err(|e| {
                let message = match e {
                    // The schema error of the record built from the file; its path is not
                    // a file the user has.
                    Error::Invalid { field, message, .. } => match field {
                        Some(f) => format!("field `{f}`: {message}"),
                        None => message,
                    },
                    e => e.to_string(),
                };
                import_error(&p.file, message)
            })?;
            todo.push(p);
        }
        let mut created = Vec::new();
        for p in todo {
            let out = self.create(p.new, actor)?;
            ids.insert(p.src.clone(), out.id.clone());
            report.created.push(out);
            created.push((p.src, p.links));
        }
        // Links once every record exists (ADRs supersede each other both ways).
        for (src, links) in created {
            let mut patch = Patch::default();
            let mut described = Vec::new();
            for l in links {
                let Some(to) = ids.get(&l.target) else {
                    report
                        .skipped
                        .push(format!("{src}: link {} {}: not imported", l.rel, l.target));
                    continue;
                };
                let link = Link {
                    rel: l.rel.into(),
                    to: to.clone(),
                };
                if patch.add_links.contains(&link) {
                    continue;
                }
                if let Some(f) = l.field {
                    patch.fields.push((f.into(), Node::str(to)));
                }
                patch.add_links.push(link);
                described.push(format!("{src} {} {}", l.rel, l.target));
            }
            if patch.add_links.is_empty() {
                continue;
            }
            let id = &ids[&src];
            let rev = self.get(id)?.record.revision;
            self.revise(id, rev, patch, actor, Some("import: links".into()))?;
            report.linked.extend(described);
        }
        Ok(report)
    }

    fn plan_adr(&self, source: &Path, report: &mut ImportReport) -> Result<Vec<Planned>> {
        let files = md_files(source)?;
        // `ADR-0005` / `ADR-5` in a status names the file numbered 5.
        let by_number: HashMap<u64, PathBuf> = files
            .iter()
            .filter_map(|f| {
                let name = f.file_name()?.to_str()?;
                let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
                Some((digits.parse().ok()?, f.clone()))
            })
            .collect();
        let adr_ref = regex::Regex::new(r"(?i)\badr-?0*(\d+)\b").expect("valid regex");
        let mut out = Vec::new();
        for file in files {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if name == "readme.md"
                || name == "index.md"
                || name.starts_with("template")
                || name.starts_with("adr-template")
            {
                report
                    .skipped
                    .push(format!("{}: not a decision", self.source_key(&file)));
                continue;
            }
            let text = read(&file)?;
            let (fm, body) = split_frontmatter(&text, &file)?;
            let Some(title) = title_of(body) else {
                report
                    .skipped
                    .push(format!("{}: no `# title` heading", self.source_key(&file)));
                continue;
            };
            let fm_str = |key: &str| -> Option<String> {
                let v = fm.as_ref()?.get(key)?;
                match &v.value {
                    Value::Str(s) => Some(s.clone()),
                    Value::Int(i) => Some(i.to_string()),
                    _ => None,
                }
            };
            let status = fm_str("status")
                .or_else(|| meta_line(body, "Status"))
                .or_else(|| section(body, "Status"))
                .unwrap_or_default();
            let date = fm_str("date")
                .or_else(|| meta_line(body, "Date"))
                .or_else(|| section(body, "Date"));
            let mut n = NewRecord::new(Kind::Decision, title, without_title(body));
            n.fields
                .push(("outcome".into(), Node::str(outcome(&status))));
            if let Some(d) = date {
                n.fields.push(("date".into(), Node::str(d)));
            }
            let fm_list = |key: &str| fm.as_ref().and_then(|f| f.get(key)).cloned();
            let makers = fm_list("decision-makers")
                .or_else(|| fm_list("deciders"))
                .or_else(|| {
                    meta_line(body, "Deciders")
                        .or_else(|| meta_line(body, "Decision-makers"))
                        .map(|s| str_list_node(s.split(',').map(|p| p.trim().to_owned()).collect()))
                });
            if let Some(v) = makers {
                n.fields.push(("decision_makers".into(), v));
            }
            for key in ["consulted", "informed"] {
                if let Some(v) = fm_list(key) {
                    n.fields.push((key.into(), v));
                }
            }
            let mut links = Vec::new();
            for line in status.lines() {
                let rel = status_rel(line);
                let mut targets: Vec<PathBuf> = link_targets(line)
                    .into_iter()
                    .filter(|t| !t.contains("://"))
                    .map(|t| source.join(t.split('#').next().unwrap_or_default()))
                    .collect();
                for c in adr_ref.captures_iter(&strip_links(line)) {
                    if let Some(f) = c[1].parse().ok().and_then(|n: u64| by_number.get(&n)) {
                        targets.push(f.clone());
                    }
                }
                for t in targets {
                    if t.is_file() && t != file {
                        links.push(PlannedLink {
                            rel,
                            target: self.source_key(&t),
                            field: None,
                        });
                    }
                }
            }
            out.push(Planned {
                src: self.source_key(&file),
                file,
                new: n,
                links,
            });
        }
        Ok(out)
    }

    fn plan_cline(&self, source: &Path) -> Result<Vec<Planned>> {
        let mut out = Vec::new();
        for file in md_files(source)? {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kind = match stem.as_str() {
                "projectbrief" | "productContext" | "techContext" => Kind::Context,
                "systemPatterns" => Kind::Architecture,
                _ => Kind::Note,
            };
            let text = read(&file)?;
            let title = title_of(&text).unwrap_or_else(|| stem.clone());
            let mut n = NewRecord::new(kind, title, without_title(&text));
            n.tags = vec!["cline-memory-bank".into()];
            out.push(Planned {
                src: self.source_key(&file),
                file,
                new: n,
                links: Vec::new(),
            });
        }
        Ok(out)
    }

    fn plan_memory_jsonl(&self, source: &Path, report: &mut ImportReport) -> Result<Vec<Planned>> {
        let text = read(source)?;
        let key = self.source_key(source);
        let mut entities: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut relations: Vec<(String, String, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |m: String| Error::invalid(source, i + 1, None, m);
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
            let s = |k: &str| -> Result<String> {
                match v.get(k).and_then(|x| x.as_str()).map(str::trim) {
                    Some(s) if !s.is_empty() => Ok(s.to_owned()),
                    _ => Err(bad(format!("`{k}` is missing or not a string"))),
                }
            };
            match v.get("type").and_then(|t| t.as_str()) {
                Some("entity") => {
                    let name = s("name")?;
                    let etype = v
                        .get("entityType")
                        .and_then(|x| x.as_str())
                        .unwrap_or_default()
                        .trim()
                        .to_owned();
                    let obs: Vec<String> = match v.get("observations") {
                        None | Some(serde_json::Value::Null) => Vec::new(),
                        Some(serde_json::Value::Array(a)) => a
                            .iter()
                            .map(|x| {
                                x.as_str()
                                    .map(str::to_owned)
                                    .ok_or_else(|| bad("observations must be strings".into()))
                            })
                            .collect::<Result<_>>()?,
                        Some(_) => return Err(bad("`observations` is not a list".into())),
                    };
                    if entities.iter().any(|e| e.0 == name) {
                        report.skipped.push(format!(
                            "{key}:{}: entity `{name}` appears twice; the first is kept",
                            i + 1
                        ));
                        continue;
                    }
                    entities.push((name, etype, obs));
                }
                Some("relation") => relations.push((s("from")?, s("relationType")?, s("to")?)),
                _ => report
                    .skipped
                    .push(format!("{key}:{}: unknown line type", i + 1)),
            }
        }
        let mut out = Vec::new();
        for (name, etype, obs) in &entities {
            let mut body = String::new();
            for o in obs {
                let _ = writeln!(body, "- {o}");
            }
            let mut links = Vec::new();
            let outgoing: Vec<_> = relations.iter().filter(|r| &r.0 == name).collect();
            if !outgoing.is_empty() {
                body.push_str("\n## Relations\n\n");
            }
            for (from, rel, to) in outgoing {
                let _ = writeln!(body, "- {from} *{rel}* {to}");
                if entities.iter().any(|e| &e.0 == to) {
                    links.push(PlannedLink {
                        rel: "relates_to",
                        target: format!("{key}#{to}"),
                        field: None,
                    });
                } else {
                    report
                        .skipped
                        .push(format!("{key}: relation {from} → {to}: no entity `{to}`"));
                }
            }
            let mut n = NewRecord::new(Kind::Memory, name, body);
            n.fields.push(("memory_type".into(), Node::str("fact")));
            if !etype.is_empty() {
                n.tags = vec![etype.clone()];
            }
            out.push(Planned {
                src: format!("{key}#{name}"),
                file: source.to_owned(),
                new: n,
                links,
            });
        }
        Ok(out)
    }

    fn plan_spec_kit(&self, source: &Path) -> Result<Vec<Planned>> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(source)
            .map_err(|e| Error::io(source, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("spec.md").is_file())
            .collect();
        dirs.sort();
        let mut out = Vec::new();
        for dir in dirs {
            let spec_path = dir.join("spec.md");
            let text = read(&spec_path)?;
            let raw_title = title_of(&text).unwrap_or_else(|| {
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let title = raw_title
                .trim_start_matches("Feature Specification:")
                .trim()
                .to_owned();
            let mut reqs = Vec::new();
            for line in text.lines() {
                // `- **FR-001**: System MUST ...`
                let l = line.trim_start();
                let l = l
                    .strip_prefix("- ")
                    .or_else(|| l.strip_prefix("* "))
                    .unwrap_or(l);
                if let Some(rest) = l.strip_prefix("**")
                    && let Some((id, text)) = rest.split_once("**")
                    && (id.starts_with("FR-") || id.starts_with("NFR-") || id.starts_with("SC-"))
                {
                    reqs.push(Node::new(Value::Map(vec![
                        ("id".into(), Node::str(id)),
                        (
                            "text".into(),
                            Node::str(text.trim_start_matches(':').trim()),
                        ),
                    ])));
                }
            }
            let mut n = NewRecord::new(Kind::Spec, &title, without_title(&text));
            if let Some(phase) = spec_phase(&text) {
                n.fields.push(("phase".into(), Node::str(phase)));
            }
            if !reqs.is_empty() {
                n.fields
                    .push(("requirements".into(), Node::new(Value::List(reqs))));
            }
            let spec_key = self.source_key(&spec_path);
            out.push(Planned {
                src: spec_key.clone(),
                file: spec_path,
                new: n,
                links: Vec::new(),
            });
            for file in ["plan.md", "tasks.md"] {
                let p = dir.join(file);
                if !p.is_file() {
                    continue;
                }
                let text = read(&p)?;
                let mut steps = Vec::new();
                for line in text.lines() {
                    let l = line.trim_start();
                    let (done, rest) = if let Some(r) = l.strip_prefix("- [ ] ") {
                        (false, r)
                    } else if let Some(r) = l
                        .strip_prefix("- [x] ")
                        .or_else(|| l.strip_prefix("- [X] "))
                    {
                        (true, r)
                    } else {
                        continue;
                    };
                    let (id, title) = rest.split_once(' ').unwrap_or((rest, ""));
                    steps.push(Node::new(Value::Map(vec![
                        ("id".into(), Node::str(id)),
                        ("title".into(), Node::str(title.trim())),
                        (
                            "status".into(),
                            Node::str(if done { "done" } else { "todo" }),
                        ),
                    ])));
                }
                let t = title_of(&text).unwrap_or_else(|| format!("{title} ({file})"));
                let mut n = NewRecord::new(Kind::Plan, t, without_title(&text));
                if !steps.is_empty() {
                    n.fields
                        .push(("steps".into(), Node::new(Value::List(steps))));
                }
                out.push(Planned {
                    src: self.source_key(&p),
                    file: p,
                    new: n,
                    links: vec![PlannedLink {
                        rel: "implements",
                        target: spec_key.clone(),
                        field: Some("implements"),
                    }],
                });
            }
        }
        Ok(out)
    }

    /// Approved, non-local records, re-scanned for secrets (redacted again on the way out).
    pub fn exportable(&self) -> Result<Vec<Record>> {
        let cat = self.scan()?;
        let mut out = Vec::new();
        for e in cat.entries {
            if e.record.review != Review::Approved || e.rel_path.starts_with("local") {
                continue;
            }
            let mut r = e.record;
            r.for_each_text_mut(&mut |s| {
                self.redactor().redact(s);
            });
            out.push(r);
        }
        out.sort_by(|a, b| (a.kind, &a.title).cmp(&(b.kind, &b.title)));
        Ok(out)
    }

    /// Writes a bundle: approved records as files under `out/<kind folder>/` and an index.
    /// Record files an earlier export wrote there (listed in its `bundle.json`) that are no
    /// longer exportable (archived, rejected, renamed, moved to `local/`) are removed, so a
    /// re-export never keeps a record that stopped being approved.
    pub fn export_bundle(&self, out: &Path) -> Result<usize> {
        let records = self.exportable()?;
        let old_index = out.join("bundle.json");
        let previous: Vec<String> = match std::fs::read(&old_index) {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("records")?.as_array().map(|a| {
                        a.iter()
                            .filter_map(|r| r.get("path")?.as_str().map(str::to_owned))
                            .collect()
                    })
                })
                .unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&old_index, e)),
        };
        let mut index = Vec::new();
        let mut written = std::collections::HashSet::new();
        for r in &records {
            let rel = PathBuf::from(r.kind.folder()).join(r.file_name());
            written.insert(rel.to_string_lossy().replace('\\', "/"));
            write_atomic(&out.join(&rel), r.to_markdown().as_bytes())?;
            index.push(serde_json::json!({
                "id": r.id.to_string(), "kind": r.kind.name(), "title": r.title,
                "revision": r.revision, "path": rel.to_string_lossy().replace('\\', "/"),
            }));
        }
        let bytes = serde_json::to_vec_pretty(&serde_json::json!({ "records": index }))
            .map_err(|e| Error::Index(e.to_string()))?;
        write_atomic(&old_index, &bytes)?;
        for rel in previous {
            // Only paths this export could have written: `<kind folder>/<name>.md`.
            let p = Path::new(&rel);
            let ours = p.components().count() == 2
                && Kind::ALL.iter().any(|k| p.starts_with(k.folder()))
                && p.extension().is_some_and(|e| e == "md");
            if ours && !written.contains(&rel) {
                let abs = out.join(p);
                match std::fs::remove_file(&abs) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&abs, e)),
                }
            }
        }
        Ok(records.len())
    }

    /// `AGENTS.md` / `CLAUDE.md` text: approved conventions, gotchas, commands, preferences,
    /// accepted decisions and workflows.
    pub fn render_agents_md(&self, heading: &str) -> Result<String> {
        let records = self.exportable()?;
        let mut s = format!(
            "# {heading}\n\n<!-- Generated by `pisama brain export` from approved records in .brain/. Edit the records, not this file. -->\n"
        );
        let groups: [(&str, &Pick); 5] = [
            ("Conventions", &|r: &Record| {
                r.kind == Kind::Memory && matches!(r.status(), Some("convention" | "preference"))
            }),
            ("Gotchas", &|r: &Record| {
                r.kind == Kind::Memory && r.status() == Some("gotcha")
            }),
            ("Commands", &|r: &Record| {
                r.kind == Kind::Memory && r.status() == Some("command")
            }),
            ("Decisions", &|r: &Record| {
                r.kind == Kind::Decision && r.status() == Some("accepted")
            }),
            ("Workflows", &|r: &Record| r.kind == Kind::Workflow),
        ];
        for (name, pick) in groups {
            let items: Vec<&Record> = records.iter().filter(|r| pick(r)).collect();
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n## {name}");
            for r in items {
                let scope = if r.scope.paths.is_empty() {
                    String::new()
                } else {
                    format!(" (applies to `{}`)", r.scope.paths.join("`, `"))
                };
                let _ = write!(s, "\n### {}{scope}\n\n", r.title);
                if !r.body.is_empty() {
                    s.push_str(&r.body);
                }
            }
        }
        Ok(s)
    }

    /// `.cursor/rules/*.mdc` files (name, text): one per approved convention; scoped records
    /// get `globs`, the others `alwaysApply: true`.
    pub fn render_cursor_rules(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for r in self.exportable()? {
            let keep = (r.kind == Kind::Memory
                && matches!(
                    r.status(),
                    Some("convention" | "gotcha" | "command" | "preference")
                ))
                || (r.kind == Kind::Decision && r.status() == Some("accepted"));
            if !keep {
                continue;
            }
            let globs = if r.scope.paths.is_empty() {
                "alwaysApply: true\n".to_owned()
            } else {
                format!("globs: {}\nalwaysApply: false\n", r.scope.paths.join(","))
            };
            let desc = r.title.replace('\n', " ");
            let text = format!(
                "---\ndescription: \"{}\"\n{globs}---\n\n# {}\n\n{}",
                desc.replace('"', "'"),
                r.title,
                r.body
            );
            out.push((
                format!(
                    "brain-{}--{}.mdc",
                    crate::model::slugify(&r.title),
                    r.short_id().to_ascii_lowercase()
                ),
                text,
            ));
        }
        Ok(out)
    }
}
