//! `check`: the CI gate (schema, duplicate ids, dangling links, secrets, stale anchors, the
//! journal chain, the index against the files) and code anchoring (git blob hashes).

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::model::{Evidence, Review};
use crate::store::Brain;

/// The git blob hash of some bytes, as `git hash-object` computes it:
/// SHA-1 of `blob <len>\0<content>`.
pub fn git_blob_hash(content: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    let d = h.finalize();
    d.iter().fold(String::with_capacity(40), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Evidence for `path` (relative to the repository root) with its current blob hash.
pub fn anchor(root: &Path, path: &str, lines: Option<String>) -> Result<Evidence> {
    if !crate::model::path_inside_repo(path) {
        return Err(Error::Usage(format!(
            "evidence path `{path}` is outside the repository"
        )));
    }
    let abs = root.join(path);
    let bytes = std::fs::read(&abs).map_err(|e| Error::io(&abs, e))?;
    Ok(Evidence {
        path: path.to_owned(),
        lines,
        blob: Some(git_blob_hash(&bytes)[..12].to_owned()),
    })
}

/// One problem `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// schema, `duplicate_id`, `dangling_link`, secret, stale, journal, index, proposal,
    /// pending.
    pub category: String,
    pub id: Option<String>,
    pub path: Option<String>,
    pub message: String,
}

/// Which checks to run.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    pub stale: bool,
    pub secrets: bool,
    /// Report records and proposals waiting for review longer than this many days; `None`
    /// takes `review.pending_max_days` from `brain.toml`; `Some(0)` turns it off.
    pub pending_max_days: Option<u32>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            stale: true,
            secrets: true,
            pending_max_days: None,
        }
    }
}

/// A record whose anchored code changed since it was approved.
#[derive(Debug, Clone, Serialize)]
pub struct Stale {
    pub id: String,
    pub title: String,
    pub path: String,
    pub evidence: String,
    pub reason: String,
}

impl Brain {
    /// Approved records whose evidence files changed (or vanished) since the recorded blob.
    pub fn stale(&self) -> Result<Vec<Stale>> {
        let cat = self.scan()?;
        let mut out = Vec::new();
        for e in &cat.entries {
            if e.record.review != Review::Approved {
                continue;
            }
            for ev in &e.record.scope.evidence {
                let Some(blob) = &ev.blob else { continue };
                let abs = self.root().join(&ev.path);
                let reason = match std::fs::read(&abs) {
                    Ok(bytes) => {
                        let now = git_blob_hash(&bytes);
                        if now.starts_with(&blob.to_ascii_lowercase()) {
                            continue;
                        }
                        format!("changed (blob {} → {})", blob, &now[..blob.len().min(40)])
                    }
                    Err(_) => "missing".to_owned(),
                };
                out.push(Stale {
                    id: e.record.id.to_string(),
                    title: e.record.title.clone(),
                    path: format!(".brain/{}", e.rel_path.to_string_lossy()),
                    evidence: ev.path.clone(),
                    reason,
                });
            }
        }
        Ok(out)
    }

    /// Runs every check; an empty list means the brain is healthy.
    pub fn check(&self, opts: CheckOptions) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        let cat = self.scan()?;
        for p in &cat.problems {
            let category = match p {
                Error::DuplicateId { .. } => "duplicate_id",
                _ => "schema",
            };
            problems.push(Problem {
                category: category.into(),
                id: None,
                path: None,
                message: p.to_string(),
            });
        }
        let ids: HashSet<String> = cat
            .entries
            .iter()
            .map(|e| e.record.id.to_string())
            .collect();
        for e in &cat.entries {
            let path = format!(".brain/{}", e.rel_path.to_string_lossy());
            let id = Some(e.record.id.to_string());
            if !e.rel_path.starts_with("local") && !e.rel_path.starts_with(e.record.kind.folder()) {
                problems.push(Problem {
                    category: "schema".into(),
                    id: id.clone(),
                    path: Some(path.clone()),
                    message: format!(
                        "{path}: a {} record belongs in .brain/{}/",
                        e.record.kind,
                        e.record.kind.folder()
                    ),
                });
            }
            if crate::store::id_from_file_name(&e.rel_path).as_deref()
                != Some(&e.record.id.to_string())
            {
                problems.push(Problem {
                    category: "schema".into(),
                    id: id.clone(),
                    path: Some(path.clone()),
                    message: format!("{path}: the file name must end with `--{}.md`", e.record.id),
                });
            }
            for (field, target) in e.record.referenced_ids() {
                if !ids.contains(&target.to_ascii_uppercase()) {
                    problems.push(Problem {
                        category: "dangling_link".into(),
                        id: id.clone(),
                        path: Some(path.clone()),
                        message: format!(
                            "{path}: {field} points to {target}, which does not exist"
                        ),
                    });
                }
            }
            if opts.secrets {
                let mut r = e.record.clone();
                let mut found = crate::redact::Findings::default();
                r.for_each_text_mut(&mut |s| found.merge(&self.redactor().scan(s)));
                if found.count() > 0 {
                    problems.push(Problem {
                        category: "secret".into(),
                        id: id.clone(),
                        path: Some(path.clone()),
                        message: format!(
                            "{path}: {} possible secret(s) ({}); remove it from the file (an allowlist regex in brain.toml keeps a false positive)",
                            found.count(),
                            found.rules().join(", ")
                        ),
                    });
                }
            }
        }
        for p in self.proposals()? {
            match p {
                Err(e) => problems.push(Problem {
                    category: "proposal".into(),
                    id: None,
                    path: None,
                    message: e.to_string(),
                }),
                Ok(p) if !ids.contains(&p.record.id.to_string()) => problems.push(Problem {
                    category: "proposal".into(),
                    id: Some(p.record.id.to_string()),
                    path: Some(format!(".brain/{}", p.rel_path.to_string_lossy())),
                    message: format!(
                        ".brain/{}: a proposal for a record that does not exist",
                        p.rel_path.to_string_lossy()
                    ),
                }),
                Ok(_) => {}
            }
        }
        let limit = opts
            .pending_max_days
            .or(self.config().review.pending_max_days)
            .filter(|d| *d > 0);
        if let Some(days) = limit {
            let now = crate::model::now();
            for (e, p) in self.pending()? {
                let (rec, rel) = match &p {
                    Some(p) => (&p.record, &p.rel_path),
                    None => (&e.record, &e.rel_path),
                };
                let waited = now.duration_since(rec.updated).as_secs() / 86_400;
                if waited > i64::from(days) {
                    let path = format!(".brain/{}", rel.to_string_lossy());
                    problems.push(Problem {
                        category: "pending".into(),
                        id: Some(rec.id.to_string()),
                        path: Some(path.clone()),
                        message: format!(
                            "{path}: {} \"{}\" has waited {waited} days for review (limit {days}, review.pending_max_days); review it with `pisama brain review`",
                            if p.is_some() { "the proposal for" } else { "the record" },
                            rec.title
                        ),
                    });
                }
            }
        }
        if opts.stale {
            for s in self.stale()? {
                problems.push(Problem {
                    category: "stale".into(),
                    id: Some(s.id.clone()),
                    path: Some(s.path.clone()),
                    message: format!(
                        "{}: approved record \"{}\" is anchored to {}, which {}",
                        s.path, s.title, s.evidence, s.reason
                    ),
                });
            }
        }
        if let Err(e) = self.journal().verify() {
            problems.push(Problem {
                category: "journal".into(),
                id: None,
                path: None,
                message: e.to_string(),
            });
        }
        let (ix, _) = self.fresh_index()?;
        let indexed = ix.ids()?;
        let expected: std::collections::BTreeSet<String> = ids.into_iter().collect();
        if indexed != expected {
            problems.push(Problem {
                category: "index".into(),
                id: None,
                path: None,
                message: format!(
                    "the index holds {} records, the files {}; run `pisama brain reindex`",
                    indexed.len(),
                    expected.len()
                ),
            });
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_hash_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_hash(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        // The empty blob.
        assert_eq!(
            git_blob_hash(b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }
}
