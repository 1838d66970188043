//! Context packs: what an agent needs to know before working on a task or some files, within a
//! token budget. Ranked: approved records whose `scope` globs govern the paths, then specs and
//! plans in progress, then search hits for the task. Deduplicated, truncated with markers, each
//! item with its id for a follow-up read.

use std::collections::HashSet;

use globset::{Glob, GlobSetBuilder};
use serde::Serialize;

use crate::error::Result;
use crate::index::SearchQuery;
use crate::model::{Kind, Record, Review, Trust};
use crate::store::Brain;

/// What to build a pack for.
#[derive(Debug, Clone, Default)]
pub struct ContextRequest {
    pub task: Option<String>,
    pub paths: Vec<String>,
    pub kinds: Vec<Kind>,
    /// 0 = the `brain.toml` default.
    pub budget_tokens: usize,
    pub include_unapproved: bool,
}

/// One item of a pack.
#[derive(Debug, Clone, Serialize)]
pub struct ContextItem {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub review: String,
    /// `scope` (governs a path), `in_progress` (spec or plan being worked on) or `search`.
    pub reason: String,
    pub text: String,
    pub truncated: bool,
    pub tokens: usize,
}

/// A pack.
#[derive(Debug, Clone, Serialize)]
pub struct ContextPack {
    pub budget_tokens: usize,
    pub used_tokens: usize,
    pub items: Vec<ContextItem>,
    /// Ids that matched but did not fit.
    pub omitted: Vec<String>,
}

/// A rough token count: about four characters per token.
pub fn estimate_tokens(s: &str) -> usize {
    s.chars().count().div_ceil(4)
}

const TRUNCATION_MARK: &str = "\n[… truncated; read the full record by id]\n";

impl Brain {
    /// Builds a context pack.
    pub fn context(&self, req: &ContextRequest) -> Result<ContextPack> {
        let budget = if req.budget_tokens == 0 {
            self.config().context.budget_tokens
        } else {
            req.budget_tokens
        };
        let cat = self.scan()?;
        let allowed = |r: &Record| {
            let review_ok = if req.include_unapproved {
                !matches!(r.review, Review::Rejected | Review::Archived)
            } else {
                r.review == Review::Approved
            };
            let trust_ok = req.include_unapproved
                || !matches!(r.origin.as_ref().map(|o| o.trust), Some(Trust::ToolOutput));
            review_ok
                && trust_ok
                && r.kind != Kind::Note
                && (req.kinds.is_empty() || req.kinds.contains(&r.kind))
        };
        let mut ranked: Vec<(&Record, &'static str)> = Vec::new();
        // 1. Records whose scope governs one of the paths (decisions and conventions first).
        if !req.paths.is_empty() {
            let mut scoped: Vec<&Record> = Vec::new();
            for e in &cat.entries {
                let r = &e.record;
                if !allowed(r) || r.scope.paths.is_empty() {
                    continue;
                }
                let mut b = GlobSetBuilder::new();
                for p in &r.scope.paths {
                    if let Ok(g) = Glob::new(p) {
                        b.add(g);
                    }
                    // A folder scope governs everything under it.
                    if let Ok(g) = Glob::new(&format!("{}/**", p.trim_end_matches('/'))) {
                        b.add(g);
                    }
                }
                let Ok(set) = b.build() else { continue };
                if req
                    .paths
                    .iter()
                    .any(|p| set.is_match(p.trim_start_matches("./")))
                {
                    scoped.push(r);
                }
            }
            scoped.sort_by_key(|r| {
                (
                    match r.kind {
                        Kind::Decision => 0,
                        Kind::Memory => 1,
                        Kind::Architecture => 2,
                        _ => 3,
                    },
                    std::cmp::Reverse(r.updated),
                )
            });
            ranked.extend(scoped.into_iter().map(|r| (r, "scope")));
        }
        // 2. Specs and plans in progress.
        let mut active: Vec<&Record> = cat
            .entries
            .iter()
            .map(|e| &e.record)
            .filter(|r| {
                allowed(r)
                    && matches!(r.kind, Kind::Spec | Kind::Plan)
                    && matches!(r.status(), Some("in_progress" | "ready"))
            })
            .collect();
        active.sort_by_key(|r| {
            (
                r.status() != Some("in_progress"),
                std::cmp::Reverse(r.updated),
            )
        });
        ranked.extend(active.into_iter().map(|r| (r, "in_progress")));
        // 3. Search hits for the task.
        if let Some(task) = req.task.as_deref().filter(|t| !t.trim().is_empty()) {
            let hits = self.search(&SearchQuery {
                text: task.to_owned(),
                kinds: req.kinds.clone(),
                reviews: if req.include_unapproved {
                    vec![Review::Approved, Review::Proposed, Review::Draft]
                } else {
                    vec![Review::Approved]
                },
                limit: 20,
                ..SearchQuery::default()
            })?;
            let by_id = cat.by_id();
            for h in hits {
                if let Ok(id) = ulid::Ulid::from_string(&h.id)
                    && let Some(e) = by_id.get(&id)
                    && allowed(&e.record)
                {
                    ranked.push((&e.record, "search"));
                }
            }
        }
        let mut seen = HashSet::new();
        let mut pack = ContextPack {
            budget_tokens: budget,
            used_tokens: 0,
            items: Vec::new(),
            omitted: Vec::new(),
        };
        for (r, reason) in ranked {
            if !seen.insert(r.id) {
                continue;
            }
            let header = format!(
                "<record id=\"{}\" kind=\"{}\" review=\"{}\"{}>\n# {}\n",
                r.id,
                r.kind,
                r.review,
                r.status()
                    .map(|s| format!(" status=\"{s}\""))
                    .unwrap_or_default(),
                r.title
            );
            let footer = "</record>\n";
            let full = format!("{header}{}{footer}", r.body);
            let left = budget.saturating_sub(pack.used_tokens);
            let full_tokens = estimate_tokens(&full);
            let (text, truncated) = if full_tokens <= left {
                (full, false)
            } else {
                let overhead = estimate_tokens(&header)
                    + estimate_tokens(footer)
                    + estimate_tokens(TRUNCATION_MARK);
                // Not worth including fewer than ~24 tokens of body.
                if left < overhead + 24 {
                    pack.omitted.push(r.id.to_string());
                    continue;
                }
                let chars = (left - overhead) * 4;
                let cut: String = r.body.chars().take(chars).collect();
                // Cut at a line or word boundary when there is one.
                let cut = match cut.rfind('\n').or_else(|| cut.rfind(' ')) {
                    Some(i) if i > chars / 2 => cut[..i].to_owned(),
                    _ => cut,
                };
                (format!("{header}{cut}{TRUNCATION_MARK}{footer}"), true)
            };
            let tokens = estimate_tokens(&text);
            pack.used_tokens += tokens;
            pack.items.push(ContextItem {
                id: r.id.to_string(),
                kind: r.kind.name().into(),
                title: r.title.clone(),
                review: r.review.name().into(),
                reason: reason.into(),
                text,
                truncated,
                tokens,
            });
        }
        Ok(pack)
    }
}
