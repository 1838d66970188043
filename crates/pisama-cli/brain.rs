//! `pisama brain ...`: the project brain from the terminal. Humans approve here.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::doc_markdown,
    clippy::needless_pass_by_value,
    clippy::format_push_string,
    reason = "command output goes to stdout, prompts to stderr"
)]

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use pisama_brain::check::CheckOptions;
use pisama_brain::context::ContextRequest;
use pisama_brain::index::SearchQuery;
use pisama_brain::interop::ImportFormat;
use pisama_brain::model::{Link, Scope};
use pisama_brain::yaml::Node;
use pisama_brain::{Actor, Brain, Kind, NewRecord, Review, Verdict, WriteOutcome};

use crate::args::ReportFormat;
use crate::{Exit, Failure};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  pisama brain init\n  pisama brain new decision --title \"Use tantivy\" --body \"## Context ...\"\n  pisama brain search tantivy\n  pisama brain review\n  pisama brain approve 1A2B3C4D --yes\n  pisama brain export --to agents-md"
)]
pub(crate) struct BrainArgs {
    #[command(subcommand)]
    command: BrainCommand,

    /// Repository root (default: the nearest folder with `.brain/` or `.git` above the current one)
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Your name in approvals and the journal (default: $PISAMA_ACTOR, then $USER)
    #[arg(long = "as", global = true, value_name = "NAME")]
    actor: Option<String>,

    /// Output format
    #[arg(long, short = 'f', global = true, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

#[derive(Debug, Subcommand)]
enum BrainCommand {
    /// Create `.brain/` in the repository
    Init,
    /// Counts by kind and review state, pending reviews, stale records, index health
    Status,
    /// Full-text search (title 3×, tags 2×, headings, body, paths)
    Search(SearchArgs),
    /// Print a record (and say whether a proposal is pending)
    Show {
        id: String,
        /// Show the pending proposal instead of the approved text
        #[arg(long)]
        proposal: bool,
    },
    /// Capture a new record (proposed for review unless --draft)
    New(NewArgs),
    /// Edit a record in $EDITOR (an approved record gets a proposal, never an in-place change)
    Edit { id: String },
    /// Walk the review queue with diffs (lists it when not on a terminal)
    Review,
    /// Approve a record or its pending proposal (humans only)
    Approve(VerdictArgs),
    /// Reject a record or its pending proposal (humans only)
    Reject(VerdictArgs),
    /// Ask for changes to a record or its pending proposal (humans only)
    RequestChanges(VerdictArgs),
    /// Add or remove a link between records (or to `path:<path>`)
    Link {
        from: String,
        /// supersedes, relates_to, affects, depends_on, implements, ...
        rel: String,
        to: String,
        #[arg(long)]
        remove: bool,
    },
    /// Journal events and diffs between revisions
    History { id: String },
    /// Move a lifecycle state: decision outcome, spec/plan phase, plan step (S3:done), work state
    Transition {
        id: String,
        to: String,
        /// The superseding decision (for `superseded`)
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Check schema, duplicate ids, dangling links, secrets, stale anchors, journal, index (exit 1 on problems)
    Check {
        /// Only list approved records whose anchored code changed
        #[arg(long)]
        stale: bool,
        /// Report reviews pending longer than N days (default: review.pending_max_days in brain.toml; 0: off)
        #[arg(long, value_name = "N")]
        pending_days: Option<u32>,
    },
    /// Rebuild the search index from the files
    Reindex,
    /// The context pack an agent would get for a task and/or files
    Context {
        #[arg(long)]
        task: Option<String>,
        #[arg(long = "path", value_name = "PATH")]
        paths: Vec<String>,
        #[arg(long, default_value_t = 0)]
        budget: usize,
        #[arg(long)]
        include_unapproved: bool,
    },
    /// Import MADR/adr-tools folders, Cline memory-bank/, memory.jsonl, spec-kit specs/
    Import {
        source: PathBuf,
        /// adr, cline, memory-jsonl, spec-kit (default: detected)
        #[arg(long)]
        from: Option<String>,
    },
    /// Export approved, redacted records: a bundle, AGENTS.md, CLAUDE.md or .cursor/rules
    Export {
        #[arg(long, value_enum, default_value_t = ExportTarget::Bundle)]
        to: ExportTarget,
        /// Output file or folder (default: stdout for agents-md/claude-md, `brain-export/` for a bundle, `.cursor/rules/` for cursor-rules)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportTarget {
    Bundle,
    AgentsMd,
    ClaudeMd,
    CursorRules,
}

#[derive(Debug, Args)]
struct SearchArgs {
    query: Vec<String>,
    #[arg(long = "kind")]
    kinds: Vec<String>,
    /// Review states to include (default: all but rejected and archived)
    #[arg(long = "review")]
    reviews: Vec<String>,
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[arg(long, default_value_t = 10)]
    limit: usize,
}

#[derive(Debug, Args)]
struct NewArgs {
    /// context, architecture, decision, spec, plan, memory, workflow, prompt, work_request, review, note
    kind: String,
    #[arg(long)]
    title: String,
    /// The markdown body (`-` reads stdin)
    #[arg(long)]
    body: Option<String>,
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// A path glob this record governs (repeatable)
    #[arg(long = "scope")]
    scope: Vec<String>,
    /// Code the claim was checked against: `path` or `path:10-42` (blob hash computed now)
    #[arg(long = "evidence")]
    evidence: Vec<String>,
    /// `rel:ID` or `rel:path:<path>` (repeatable)
    #[arg(long = "link")]
    links: Vec<String>,
    /// A per-kind field: `outcome=accepted`, `memory_type=convention` (repeatable)
    #[arg(long = "field")]
    fields: Vec<String>,
    /// Keep it a draft (not in the review queue)
    #[arg(long)]
    draft: bool,
}

#[derive(Debug, Args)]
struct VerdictArgs {
    id: String,
    /// The revision you reviewed (refused if it changed since)
    #[arg(long)]
    rev: Option<u32>,
    /// Confirm without a prompt (you are a human deciding this)
    #[arg(long, short = 'y')]
    yes: bool,
    #[arg(long)]
    note: Option<String>,
}

fn fail(e: pisama_brain::Error) -> Failure {
    Failure {
        exit: if e.is_input() {
            Exit::Input
        } else {
            Exit::Internal
        },
        message: e.to_string(),
    }
}

fn actor(args: &BrainArgs) -> Actor {
    let name = args
        .actor
        .clone()
        .or_else(|| std::env::var("PISAMA_ACTOR").ok())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("USERNAME").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "human".into());
    Actor::human(name)
}

fn json(v: &impl serde::Serialize) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

fn outcome(args: &BrainArgs, o: &WriteOutcome) -> Result<(), Failure> {
    if args.format == ReportFormat::Json {
        return json(o);
    }
    let mut line = format!(
        "{} {} r{} {}{} → {}",
        o.event,
        o.short_id,
        o.revision,
        o.review,
        if o.proposal { " (proposal)" } else { "" },
        o.path
    );
    if o.redactions > 0 {
        line.push_str(&format!(
            "\n  redacted {} secret(s): {}",
            o.redactions,
            o.rules.join(", ")
        ));
    }
    if !o.indexed {
        line.push_str("\n  (index not updated; it is rebuilt on the next read)");
    }
    println!("{line}");
    Ok(())
}

fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = io::stderr().flush();
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

pub(crate) fn run(args: &BrainArgs) -> Result<Exit, Failure> {
    let cwd = std::env::current_dir()?;
    let root = match &args.root {
        Some(r) => r.clone(),
        None => Brain::discover(&cwd),
    };
    if let BrainCommand::Init = args.command {
        let b = Brain::init(&root).map_err(fail)?;
        if args.format == ReportFormat::Json {
            json(&serde_json::json!({"brain": b.dir()}))?;
        } else {
            println!("created {}", b.dir().display());
            println!("next: pisama brain new decision --title \"...\" --body \"...\"");
        }
        return Ok(Exit::Ok);
    }
    let brain = Brain::open(&root).map_err(fail)?;
    let me = actor(args);
    match &args.command {
        BrainCommand::Init => unreachable!("handled above"),
        BrainCommand::Status => status(args, &brain),
        BrainCommand::Search(s) => search(args, &brain, s),
        BrainCommand::Show { id, proposal } => show(args, &brain, id, *proposal),
        BrainCommand::New(n) => new(args, &brain, n, &me),
        BrainCommand::Edit { id } => edit(args, &brain, id, &me),
        BrainCommand::Review => review_queue(args, &brain, &me),
        BrainCommand::Approve(v) => verdict(args, &brain, v, Verdict::Approve, &me),
        BrainCommand::Reject(v) => verdict(args, &brain, v, Verdict::Reject, &me),
        BrainCommand::RequestChanges(v) => verdict(args, &brain, v, Verdict::RequestChanges, &me),
        BrainCommand::Link {
            from,
            rel,
            to,
            remove,
        } => {
            let o = brain.link(from, rel, to, *remove, &me).map_err(fail)?;
            outcome(args, &o)?;
            Ok(Exit::Ok)
        }
        BrainCommand::History { id } => history(args, &brain, id),
        BrainCommand::Transition { id, to, by, note } => {
            let o = brain
                .transition(id, to, by.as_deref(), &me, note.clone())
                .map_err(fail)?;
            outcome(args, &o)?;
            Ok(Exit::Ok)
        }
        BrainCommand::Check {
            stale,
            pending_days,
        } => check(args, &brain, *stale, *pending_days),
        BrainCommand::Reindex => {
            let r = brain.reindex().map_err(fail)?;
            if args.format == ReportFormat::Json {
                json(&r)?;
            } else {
                println!("indexed {} record(s)", r.documents);
            }
            Ok(Exit::Ok)
        }
        BrainCommand::Context {
            task,
            paths,
            budget,
            include_unapproved,
        } => {
            let pack = brain
                .context(&ContextRequest {
                    task: task.clone(),
                    paths: paths.clone(),
                    kinds: Vec::new(),
                    budget_tokens: *budget,
                    include_unapproved: *include_unapproved,
                })
                .map_err(fail)?;
            if args.format == ReportFormat::Json {
                json(&pack)?;
            } else {
                for item in &pack.items {
                    print!("{}", item.text);
                }
                eprintln!(
                    "{} item(s), ~{} of {} tokens{}",
                    pack.items.len(),
                    pack.used_tokens,
                    pack.budget_tokens,
                    if pack.omitted.is_empty() {
                        String::new()
                    } else {
                        format!("; {} omitted", pack.omitted.len())
                    }
                );
            }
            Ok(Exit::Ok)
        }
        BrainCommand::Import { source, from } => {
            let format = match from {
                Some(f) => ImportFormat::from_name(f).ok_or_else(|| {
                    Failure::input(format!(
                        "unknown --from {f:?}; expected adr, cline, memory-jsonl or spec-kit"
                    ))
                })?,
                None => ImportFormat::detect(source).ok_or_else(|| {
                    Failure::input(format!(
                        "{}: cannot tell the format; pass --from adr|cline|memory-jsonl|spec-kit",
                        source.display()
                    ))
                })?,
            };
            let mut me = me.clone();
            me.via = "import".into();
            let r = brain.import(source, format, &me).map_err(fail)?;
            if args.format == ReportFormat::Json {
                json(&r)?;
            } else {
                for o in &r.created {
                    println!("imported {} {} → {}", o.short_id, o.review, o.path);
                }
                for l in &r.linked {
                    println!("linked {l}");
                }
                for s in &r.skipped {
                    println!("skipped {s}");
                }
                println!(
                    "{} record(s) imported as proposed; review them with `pisama brain review`",
                    r.created.len()
                );
            }
            Ok(Exit::Ok)
        }
        BrainCommand::Export { to, out } => export(&brain, *to, out.as_deref()),
    }
}

fn status(args: &BrainArgs, brain: &Brain) -> Result<Exit, Failure> {
    let cat = brain.scan().map_err(fail)?;
    let counts = Brain::counts(&cat);
    let pending = brain.pending().map_err(fail)?;
    let stale = brain.stale().map_err(fail)?;
    let (_, report) = brain.fresh_index().map_err(fail)?;
    let journal = brain.journal().verify_report();
    if args.format == ReportFormat::Json {
        let by_kind: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(k, m)| {
                let inner: serde_json::Map<String, serde_json::Value> = m
                    .iter()
                    .map(|(r, n)| (r.name().to_owned(), (*n).into()))
                    .collect();
                (k.name().to_owned(), inner.into())
            })
            .collect();
        return json(&serde_json::json!({
            "root": brain.root(),
            "records": cat.entries.len(),
            "invalid_files": cat.problems.len(),
            "by_kind": by_kind,
            "pending": pending.iter().map(|(e, p)| serde_json::json!({
                "id": e.record.id.to_string(), "title": e.record.title,
                "kind": e.record.kind.name(),
                "proposal_revision": p.as_ref().map(|p| p.record.revision),
            })).collect::<Vec<_>>(),
            "stale": stale,
            "index": report,
            "journal_events": journal.as_ref().ok().map(|v| v.events),
            "journal_merged_branches": journal.as_ref().ok().map(|v| v.merged_branches),
            "journal_error": journal.as_ref().err().map(ToString::to_string),
        }))
        .map(|()| Exit::Ok);
    }
    println!("brain: {}", brain.dir().display());
    println!(
        "records: {}{}",
        cat.entries.len(),
        if cat.problems.is_empty() {
            String::new()
        } else {
            format!(
                " ({} invalid file(s): run `pisama brain check`)",
                cat.problems.len()
            )
        }
    );
    for (kind, m) in &counts {
        let parts: Vec<String> = m.iter().map(|(r, n)| format!("{n} {r}")).collect();
        println!("  {kind:<13} {}", parts.join(", "));
    }
    println!("pending review: {}", pending.len());
    for (e, p) in &pending {
        println!(
            "  {} {} \"{}\"{}",
            e.record.short_id(),
            e.record.kind,
            e.record.title,
            p.as_ref()
                .map(|p| format!(" (proposal r{})", p.record.revision))
                .unwrap_or_default()
        );
    }
    println!("stale anchors: {}", stale.len());
    println!(
        "index: {} document(s){}",
        report.documents,
        report
            .reason
            .map(|r| format!(" (rebuilt: {r})"))
            .unwrap_or_default()
    );
    match journal {
        Ok(v) if v.merged_branches > 0 => println!(
            "journal: {} event(s), chain verified ({} merged branch(es))",
            v.events, v.merged_branches
        ),
        Ok(v) => println!("journal: {} event(s), chain verified", v.events),
        Err(e) => println!("journal: BROKEN: {e}"),
    }
    Ok(Exit::Ok)
}

fn parse_list<T: std::str::FromStr<Err = String>>(values: &[String]) -> Result<Vec<T>, Failure> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.parse::<T>().map_err(Failure::input))
        .collect()
}

fn search(args: &BrainArgs, brain: &Brain, s: &SearchArgs) -> Result<Exit, Failure> {
    let mut reviews: Vec<Review> = parse_list(&s.reviews)?;
    if reviews.is_empty() {
        reviews = vec![
            Review::Draft,
            Review::Proposed,
            Review::ChangesRequested,
            Review::Approved,
        ];
    }
    let hits = brain
        .search(&SearchQuery {
            text: s.query.join(" "),
            kinds: parse_list(&s.kinds)?,
            reviews,
            tags: s.tags.clone(),
            status: Vec::new(),
            limit: s.limit,
            offset: 0,
        })
        .map_err(fail)?;
    if args.format == ReportFormat::Json {
        json(&serde_json::json!({ "hits": hits }))?;
        return Ok(Exit::Ok);
    }
    if hits.is_empty() {
        println!("no matches");
    }
    for h in &hits {
        let short = &h.id[h.id.len().saturating_sub(8)..];
        println!("{short}  {:<9} {:<9} {}", h.kind, h.review, h.title);
        if !h.snippet.is_empty() {
            println!("          {}", h.snippet);
        }
    }
    Ok(Exit::Ok)
}

fn show(args: &BrainArgs, brain: &Brain, id: &str, proposal: bool) -> Result<Exit, Failure> {
    let e = brain.get(id).map_err(fail)?;
    let pending = brain.proposal(e.record.id).map_err(fail)?;
    let record = match (&pending, proposal) {
        (Some(p), true) => &p.record,
        (None, true) => {
            return Err(Failure::input(format!(
                "record {} has no pending proposal",
                e.record.id
            )));
        }
        _ => &e.record,
    };
    if args.format == ReportFormat::Json {
        json(&serde_json::json!({
            "id": record.id.to_string(),
            "kind": record.kind.name(),
            "title": record.title,
            "review": record.review.name(),
            "revision": record.revision,
            "status": record.status(),
            "path": format!(".brain/{}", e.rel_path.to_string_lossy()),
            "links": record.links,
            "scope": record.scope,
            "tags": record.tags,
            "body": record.body,
            "pending_proposal": pending.as_ref().map(|p| p.record.revision),
        }))?;
        return Ok(Exit::Ok);
    }
    print!("{}", record.to_markdown());
    if let (Some(p), false) = (&pending, proposal) {
        eprintln!(
            "note: a proposal for revision {} is pending (`pisama brain show {} --proposal`)",
            p.record.revision,
            e.record.short_id()
        );
    }
    Ok(Exit::Ok)
}

fn read_body(body: Option<&String>) -> Result<String, Failure> {
    match body.map(String::as_str) {
        None => Ok(String::new()),
        Some("-") => {
            let mut s = String::new();
            io::Read::read_to_string(&mut io::stdin(), &mut s)?;
            Ok(s)
        }
        Some(b) => Ok(b.replace("\\n", "\n")),
    }
}

fn new(args: &BrainArgs, brain: &Brain, n: &NewArgs, me: &Actor) -> Result<Exit, Failure> {
    let kind: Kind = n.kind.parse().map_err(Failure::input)?;
    let mut rec = NewRecord::new(kind, n.title.clone(), read_body(n.body.as_ref())?);
    rec.review = if n.draft {
        Review::Draft
    } else {
        Review::Proposed
    };
    rec.trust = pisama_brain::model::Trust::DirectUser;
    rec.client = Some("pisama-cli".into());
    rec.tags.clone_from(&n.tags);
    let mut scope = Scope {
        paths: n.scope.clone(),
        evidence: Vec::new(),
    };
    for e in &n.evidence {
        let (path, lines) = match e.rsplit_once(':') {
            Some((p, l)) if l.chars().all(|c| c.is_ascii_digit() || c == '-') => {
                (p, Some(l.to_owned()))
            }
            _ => (e.as_str(), None),
        };
        scope
            .evidence
            .push(pisama_brain::check::anchor(brain.root(), path, lines).map_err(fail)?);
    }
    rec.scope = scope;
    for l in &n.links {
        let (rel, to) = l
            .split_once(':')
            .ok_or_else(|| Failure::input(format!("--link {l:?}: expected rel:ID")))?;
        let to = brain.link_target(to).map_err(fail)?;
        rec.links.push(Link {
            rel: rel.to_owned(),
            to,
        });
    }
    for f in &n.fields {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| Failure::input(format!("--field {f:?}: expected key=value")))?;
        let node = pisama_brain::yaml::parse(&format!("v: {v}\n"), 0)
            .ok()
            .and_then(|m| m.get("v").cloned())
            .unwrap_or_else(|| Node::str(v));
        rec.fields.push((k.trim().to_owned(), node));
    }
    let o = brain.create(rec, me).map_err(fail)?;
    outcome(args, &o)?;
    Ok(Exit::Ok)
}

fn edit(args: &BrainArgs, brain: &Brain, id: &str, me: &Actor) -> Result<Exit, Failure> {
    let e = brain.get(id).map_err(fail)?;
    let pending = brain.proposal(e.record.id).map_err(fail)?;
    let (base, text) = match &pending {
        Some(p) => (p.record.revision, p.record.to_markdown()),
        None => (e.record.revision, e.record.to_markdown()),
    };
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .map_err(|_| Failure::input("set $EDITOR (or $VISUAL) to edit records"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix("pisama-brain-")
        .suffix(".md")
        .tempfile()?;
    tmp.write_all(text.as_bytes())?;
    tmp.flush()?;
    let path = tmp.path().to_owned();
    let mut parts = editor.split_whitespace();
    let program = parts
        .next()
        .ok_or_else(|| Failure::input("$EDITOR is empty"))?;
    let status = std::process::Command::new(program)
        .args(parts)
        .arg(&path)
        .status()
        .map_err(|e| Failure::input(format!("cannot run $EDITOR ({editor}): {e}")))?;
    if !status.success() {
        return Err(Failure::input(format!(
            "$EDITOR exited with {status}; nothing changed"
        )));
    }
    let edited = std::fs::read_to_string(&path)?;
    if edited == text {
        println!("no changes");
        return Ok(Exit::Ok);
    }
    match brain.revise_text(id, base, &edited, me) {
        Ok(o) => {
            outcome(args, &o)?;
            Ok(Exit::Ok)
        }
        Err(err) => {
            // Keep the user's work: in the git-ignored `local/`, and not as `.md`, which
            // would make it a record of `local/` (an invalid one, or a duplicate id).
            let keep = brain
                .dir()
                .join("local")
                .join(format!("edit-{}.md.txt", e.record.id));
            if let Err(werr) = std::fs::write(&keep, &edited) {
                return Err(Failure::input(format!(
                    "{err}\nyour edit could not be saved ({}: {werr}); it was:\n{edited}",
                    keep.display()
                )));
            }
            Err(Failure::input(format!(
                "{err}\nyour edit is saved in {}",
                keep.display()
            )))
        }
    }
}

fn verdict(
    args: &BrainArgs,
    brain: &Brain,
    v: &VerdictArgs,
    verdict: Verdict,
    me: &Actor,
) -> Result<Exit, Failure> {
    let e = brain.get(&v.id).map_err(fail)?;
    let word = match verdict {
        Verdict::Approve => "approve",
        Verdict::Reject => "reject",
        Verdict::RequestChanges => "request changes to",
    };
    if !v.yes {
        if !io::stdin().is_terminal() {
            return Err(Failure::input(format!(
                "{word} needs a human: run it in a terminal to confirm, or pass --yes"
            )));
        }
        if !confirm(&format!(
            "{word} {} \"{}\" as {}?",
            e.record.short_id(),
            e.record.title,
            me.tag()
        )) {
            println!("nothing changed");
            return Ok(Exit::Ok);
        }
    }
    let o = brain
        .review(&v.id, v.rev, verdict, me, v.note.clone())
        .map_err(fail)?;
    outcome(args, &o)?;
    Ok(Exit::Ok)
}

fn review_queue(args: &BrainArgs, brain: &Brain, me: &Actor) -> Result<Exit, Failure> {
    let queue = brain.pending().map_err(fail)?;
    let interactive = io::stdin().is_terminal() && args.format == ReportFormat::Text;
    if !interactive {
        if args.format == ReportFormat::Json {
            json(
                &serde_json::json!({"pending": queue.iter().map(|(e, p)| serde_json::json!({
                "id": e.record.id.to_string(), "kind": e.record.kind.name(), "title": e.record.title,
                "revision": p.as_ref().map_or(e.record.revision, |p| p.record.revision),
                "proposal": p.is_some(),
                "approve": format!("pisama brain approve {} --yes", e.record.id),
            })).collect::<Vec<_>>()}),
            )?;
        } else {
            println!("{} pending", queue.len());
            for (e, p) in &queue {
                println!(
                    "  {} {} \"{}\"{}  → pisama brain approve {} --yes",
                    e.record.short_id(),
                    e.record.kind,
                    e.record.title,
                    p.as_ref()
                        .map(|p| format!(" (proposal r{})", p.record.revision))
                        .unwrap_or_default(),
                    e.record.short_id()
                );
            }
        }
        return Ok(Exit::Ok);
    }
    if queue.is_empty() {
        println!("nothing to review");
    }
    for (e, p) in &queue {
        println!(
            "\n=== {} {} \"{}\" ===",
            e.record.short_id(),
            e.record.kind,
            e.record.title
        );
        match p {
            Some(p) => print!(
                "{}",
                pisama_brain::unified_diff(
                    &e.record.to_markdown(),
                    &p.record.to_markdown(),
                    &format!("r{} (approved)", e.record.revision),
                    &format!("r{} (proposed)", p.record.revision),
                )
            ),
            None => print!("{}", e.record.to_markdown()),
        }
        // `None`: skip this one; an unknown answer asks again; end of input quits.
        let verdict = loop {
            eprint!("[a]pprove, [r]eject, request [c]hanges, [s]kip, [q]uit: ");
            let _ = io::stderr().flush();
            let mut answer = String::new();
            if io::stdin().lock().read_line(&mut answer)? == 0 {
                eprintln!();
                return Ok(Exit::Ok);
            }
            match answer.trim() {
                "a" => break Some(Verdict::Approve),
                "r" => break Some(Verdict::Reject),
                "c" => break Some(Verdict::RequestChanges),
                "s" | "" => break None,
                "q" => return Ok(Exit::Ok),
                other => eprintln!("unknown answer {other:?}"),
            }
        };
        let Some(verdict) = verdict else { continue };
        let rev = p.as_ref().map(|p| p.record.revision);
        let o = brain
            .review(&e.record.id.to_string(), rev, verdict, me, None)
            .map_err(fail)?;
        outcome(args, &o)?;
    }
    Ok(Exit::Ok)
}

fn history(args: &BrainArgs, brain: &Brain, id: &str) -> Result<Exit, Failure> {
    let e = brain.get(id).map_err(fail)?;
    let events = brain.events_for(e.record.id).map_err(fail)?;
    let revisions = brain.revisions(e.record.id).map_err(fail)?;
    let diffs: Vec<(String, String, String)> = revisions
        .windows(2)
        .map(|w| {
            (
                w[0].label.clone(),
                w[1].label.clone(),
                pisama_brain::unified_diff(&w[0].text, &w[1].text, &w[0].label, &w[1].label),
            )
        })
        .collect();
    if args.format == ReportFormat::Json {
        json(&serde_json::json!({
            "id": e.record.id.to_string(),
            "events": events,
            "revisions": revisions.iter().map(|r| serde_json::json!({"revision": r.revision, "label": r.label})).collect::<Vec<_>>(),
            "diffs": diffs.iter().map(|(a, b, d)| serde_json::json!({"from": a, "to": b, "diff": d})).collect::<Vec<_>>(),
        }))?;
        return Ok(Exit::Ok);
    }
    println!("{} \"{}\"", e.record.id, e.record.title);
    for ev in &events {
        println!(
            "  {}  {:<17} r{:<3} {} via {}{}",
            ev.ts,
            ev.event,
            ev.revision,
            ev.actor,
            ev.via,
            ev.note
                .as_ref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        );
    }
    for (a, b, d) in &diffs {
        println!("\n--- diff {a} → {b}");
        print!("{d}");
    }
    Ok(Exit::Ok)
}

fn check(
    args: &BrainArgs,
    brain: &Brain,
    stale_only: bool,
    pending_days: Option<u32>,
) -> Result<Exit, Failure> {
    let problems = if stale_only {
        brain
            .stale()
            .map_err(fail)?
            .into_iter()
            .map(|s| pisama_brain::check::Problem {
                category: "stale".into(),
                id: Some(s.id.clone()),
                path: Some(s.path.clone()),
                message: format!(
                    "{}: approved record \"{}\" is anchored to {}, which {}",
                    s.path, s.title, s.evidence, s.reason
                ),
            })
            .collect()
    } else {
        brain
            .check(CheckOptions {
                pending_max_days: pending_days,
                ..CheckOptions::default()
            })
            .map_err(fail)?
    };
    if args.format == ReportFormat::Json {
        json(&serde_json::json!({"ok": problems.is_empty(), "problems": problems}))?;
    } else if problems.is_empty() {
        println!("ok");
    } else {
        for p in &problems {
            println!("{}: {}", p.category, p.message);
        }
        println!("{} problem(s)", problems.len());
    }
    Ok(if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Findings
    })
}

fn export(brain: &Brain, to: ExportTarget, out: Option<&Path>) -> Result<Exit, Failure> {
    let write = |path: &Path, text: &str| -> Result<(), Failure> {
        crate::output::write_atomic(path, text.as_bytes()).map_err(|e| Failure {
            exit: Exit::Input,
            message: format!("{}: cannot write: {e}", path.display()),
        })
    };
    match to {
        ExportTarget::Bundle => {
            let dir = out.map_or_else(|| PathBuf::from("brain-export"), Path::to_path_buf);
            let n = brain.export_bundle(&dir).map_err(fail)?;
            println!("exported {n} approved record(s) to {}", dir.display());
        }
        ExportTarget::AgentsMd | ExportTarget::ClaudeMd => {
            let heading = if to == ExportTarget::AgentsMd {
                "AGENTS.md"
            } else {
                "CLAUDE.md"
            };
            let text = brain.render_agents_md(heading).map_err(fail)?;
            match out {
                Some(p) => {
                    write(p, &text)?;
                    println!("wrote {}", p.display());
                }
                None => print!("{text}"),
            }
        }
        ExportTarget::CursorRules => {
            let dir = out.map_or_else(|| brain.root().join(".cursor/rules"), Path::to_path_buf);
            let rules = brain.render_cursor_rules().map_err(fail)?;
            for (name, text) in &rules {
                write(&dir.join(name), text)?;
            }
            // Rule files an earlier export wrote for records that are no longer approved
            // conventions go away; other files in the folder are the user's.
            let mut removed = 0;
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for entry in rd.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let generated = name.starts_with("brain-")
                        && name.contains("--")
                        && Path::new(&name).extension().is_some_and(|e| e == "mdc");
                    if generated && !rules.iter().any(|(n, _)| *n == name) {
                        std::fs::remove_file(entry.path())?;
                        removed += 1;
                    }
                }
            }
            println!(
                "wrote {} rule file(s) to {}{}",
                rules.len(),
                dir.display(),
                if removed > 0 {
                    format!("; removed {removed} stale one(s)")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(Exit::Ok)
}
