//! Import from the conventions people already use (MADR and adr-tools folders, Cline's
//! `memory-bank/`, the MCP reference memory server's `memory.jsonl`, spec-kit `specs/`) and
//! export of approved records (a bundle; `AGENTS.md`, `CLAUDE.md`, `.cursor/rules`).
//! Imported records are `proposed` with `trust: imported`: a human approves them.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Actor, Kind, Link, Record, Review, Trust};
use crate::store::{Brain, NewRecord, WriteOutcome, write_atomic};
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
    pub skipped: Vec<String>,
}

fn imported_from(rec: &Record) -> Option<&str> {
    rec.field_str("imported_from")
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
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

/// Splits `---\nyaml\n---\nbody` when a markdown file has frontmatter.
fn split_frontmatter(text: &str) -> (Option<Node>, &str) {
    if let Some(rest) = text.strip_prefix("---\n")
        && let Some(end) = rest.find("\n---\n")
        && let Ok(node) = yaml::parse(&rest[..=end], 1)
    {
        return (Some(node), &rest[end + 5..]);
    }
    (None, text)
}

/// The first `# ` heading, without ADR numbering (`# 3. Use X` → `Use X`).
fn title_of(body: &str) -> Option<String> {
    let line = body.lines().find(|l| l.starts_with("# "))?;
    let t = line[2..].trim();
    let t = match t.split_once(". ") {
        Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => t,
    };
    Some(t.to_owned())
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

fn outcome(status: &str) -> &'static str {
    let s = status.to_ascii_lowercase();
    if s.contains("supersed") {
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

impl Brain {
    /// Imports a folder or file; sources imported before (by `imported_from`) are skipped.
    pub fn import(
        &self,
        source: &Path,
        format: ImportFormat,
        actor: &Actor,
    ) -> Result<ImportReport> {
        let cat = self.scan()?;
        let done: HashSet<String> = cat
            .entries
            .iter()
            .filter_map(|e| imported_from(&e.record).map(str::to_owned))
            .collect();
        let mut report = ImportReport::default();
        let emit = |mut n: NewRecord, src: String, report: &mut ImportReport| -> Result<()> {
            if done.contains(&src) {
                report.skipped.push(format!("{src}: imported before"));
                return Ok(());
            }
            n.trust = Trust::Imported;
            n.client = Some("import".into());
            n.fields.push(("imported_from".into(), Node::str(&src)));
            report.created.push(self.create(n, actor)?);
            Ok(())
        };
        let label = |p: &Path| p.to_string_lossy().replace('\\', "/");
        match format {
            ImportFormat::Adr => {
                for file in md_files(source)? {
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
                            .push(format!("{}: not a decision", label(&file)));
                        continue;
                    }
                    let text = read(&file)?.replace("\r\n", "\n");
                    let (fm, body) = split_frontmatter(&text);
                    let Some(title) = title_of(body) else {
                        report
                            .skipped
                            .push(format!("{}: no `# title` heading", label(&file)));
                        continue;
                    };
                    let status = fm
                        .as_ref()
                        .and_then(|f| f.get("status").and_then(Node::as_str).map(str::to_owned))
                        .or_else(|| section(body, "Status"))
                        .unwrap_or_default();
                    let date = fm
                        .as_ref()
                        .and_then(|f| f.get("date").and_then(Node::as_str).map(str::to_owned))
                        .or_else(|| {
                            body.lines()
                                .find_map(|l| l.strip_prefix("Date: ").map(|d| d.trim().to_owned()))
                        });
                    // Drop the title line; keep the rest verbatim.
                    let rest: Vec<&str> = body
                        .lines()
                        .skip_while(|l| !l.starts_with("# "))
                        .skip(1)
                        .collect();
                    let mut n = NewRecord::new(Kind::Decision, title, rest.join("\n"));
                    n.fields
                        .push(("outcome".into(), Node::str(outcome(&status))));
                    if let Some(d) = date {
                        n.fields.push(("date".into(), Node::str(d)));
                    }
                    if let Some(fm) = &fm {
                        for key in ["decision-makers", "consulted", "informed"] {
                            if let Some(v) = fm.get(key) {
                                n.fields.push((key.replace('-', "_"), v.clone()));
                            }
                        }
                    }
                    emit(n, label(&file), &mut report)?;
                }
            }
            ImportFormat::Cline => {
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
                    let mut n = NewRecord::new(kind, title, text);
                    n.tags = vec!["cline-memory-bank".into()];
                    emit(n, label(&file), &mut report)?;
                }
            }
            ImportFormat::MemoryJsonl => {
                let text = read(source)?;
                let mut entities: Vec<(String, String, Vec<String>)> = Vec::new();
                let mut relations: Vec<(String, String, String)> = Vec::new();
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                        Error::invalid(source, i + 1, None, format!("not JSON: {e}"))
                    })?;
                    let s = |k: &str| {
                        v.get(k)
                            .and_then(|x| x.as_str())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    match v.get("type").and_then(|t| t.as_str()) {
                        Some("entity") => {
                            let obs = v
                                .get("observations")
                                .and_then(|o| o.as_array())
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default();
                            entities.push((s("name"), s("entityType"), obs));
                        }
                        Some("relation") => relations.push((s("from"), s("relationType"), s("to"))),
                        _ => report.skipped.push(format!(
                            "{}:{}: unknown line type",
                            label(source),
                            i + 1
                        )),
                    }
                }
                let mut ids: HashMap<String, String> = HashMap::new();
                for (name, etype, obs) in entities {
                    let mut body = String::new();
                    for o in &obs {
                        let _ = writeln!(body, "- {o}");
                    }
                    for (from, rel, to) in relations.iter().filter(|r| r.0 == name) {
                        let _ = write!(body, "\n{from} *{rel}* {to}");
                    }
                    let mut n = NewRecord::new(Kind::Memory, &name, body);
                    if !etype.is_empty() {
                        n.tags = vec![etype];
                    }
                    let before = report.created.len();
                    emit(n, format!("{}#{name}", label(source)), &mut report)?;
                    if report.created.len() > before {
                        ids.insert(name, report.created[before].id.clone());
                    }
                }
                for (from, _, to) in &relations {
                    if let (Some(a), Some(b)) = (ids.get(from), ids.get(to)) {
                        self.link(a, "relates_to", b, false, actor)?;
                    }
                }
            }
            ImportFormat::SpecKit => {
                let mut dirs: Vec<PathBuf> = std::fs::read_dir(source)
                    .map_err(|e| Error::io(source, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("spec.md").is_file())
                    .collect();
                dirs.sort();
                for dir in dirs {
                    let spec_path = dir.join("spec.md");
                    let text = read(&spec_path)?.replace("\r\n", "\n");
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
                        let l = line.trim_start_matches(['-', '*', ' ']);
                        if let Some(rest) = l.strip_prefix("**")
                            && let Some((id, text)) = rest.split_once("**")
                            && (id.starts_with("FR-")
                                || id.starts_with("NFR-")
                                || id.starts_with("SC-"))
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
                    let mut n = NewRecord::new(Kind::Spec, &title, &text);
                    if !reqs.is_empty() {
                        n.fields
                            .push(("requirements".into(), Node::new(Value::List(reqs))));
                    }
                    let before = report.created.len();
                    emit(n, label(&spec_path), &mut report)?;
                    let spec_id = report.created.get(before).map(|o| o.id.clone());
                    for (file, kind) in [("plan.md", Kind::Plan), ("tasks.md", Kind::Plan)] {
                        let p = dir.join(file);
                        if !p.is_file() {
                            continue;
                        }
                        let text = read(&p)?.replace("\r\n", "\n");
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
                        let mut n = NewRecord::new(kind, t, &text);
                        if let Some(id) = &spec_id {
                            n.fields.push(("implements".into(), Node::str(id)));
                            n.links.push(Link {
                                rel: "implements".into(),
                                to: id.clone(),
                            });
                        }
                        if !steps.is_empty() {
                            n.fields
                                .push(("steps".into(), Node::new(Value::List(steps))));
                        }
                        emit(n, label(&p), &mut report)?;
                    }
                }
            }
        }
        Ok(report)
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
    pub fn export_bundle(&self, out: &Path) -> Result<usize> {
        let records = self.exportable()?;
        let mut index = Vec::new();
        for r in &records {
            let rel = PathBuf::from(r.kind.folder()).join(r.file_name());
            write_atomic(&out.join(&rel), r.to_markdown().as_bytes())?;
            index.push(serde_json::json!({
                "id": r.id.to_string(), "kind": r.kind.name(), "title": r.title,
                "revision": r.revision, "path": rel.to_string_lossy().replace('\\', "/"),
            }));
        }
        let bytes = serde_json::to_vec_pretty(&serde_json::json!({ "records": index }))
            .map_err(|e| Error::Index(e.to_string()))?;
        write_atomic(&out.join("bundle.json"), &bytes)?;
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
