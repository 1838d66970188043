//! The journal: append-only JSON lines, one file per month, each line carrying the SHA-256 of
//! the line before it in the same file (`prev`), so an edited or removed line is visible.
//! Appends happen only under the brain's lock.
//!
//! # Branches and `git merge` (union)
//!
//! `.brain/.gitattributes` merges `journal/*.jsonl` with git's `union` driver, so two branches
//! that both appended to a month file merge without a conflict: the merged file holds the
//! common lines, then one branch's new lines, then the other's. The second block's first line
//! names the common ancestor line in `prev`, not the line just above it; a month file both
//! branches created has a second line with an empty `prev`. Appends after the merge chain from
//! the merged file's last line as usual.
//!
//! So a month file is a *tree* of chains, not one chain, and `verify` checks this rule:
//!
//! * every line is a journal event;
//! * every `prev` is empty (the first line a branch wrote to a new month file) or the SHA-256
//!   of a line *earlier in the same file* (its predecessor on the branch that wrote it).
//!
//! On a file that was never merged this is exactly the linear chain (each `prev` is the line
//! above). Following `prev` from any line walks back through the chain of the branch that wrote
//! it, so each branch's chain is verified on its own. What stays detectable: editing or
//! removing a line that a later line chains from (that later line's `prev` names a hash no
//! line has any more), moving a line above its predecessor, and a torn or garbled line. As with
//! the linear chain, the last line of each branch has no successor to vouch for it, and the
//! chain is unsigned: whoever can rewrite the whole file can rebuild the hashes.
//!
//! `events` returns every month's events in causal order: each event after its predecessor,
//! and otherwise by `ts` (the branches' blocks are interleaved by time, as the design asks);
//! for a file that was never merged that is file order.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One journal line. Field order is the serialization order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub ts: String,
    /// created, revised, proposed, approved, `changes_requested`, rejected, archived, redacted,
    /// linked, transitioned, imported, withdrawn.
    pub event: String,
    pub id: String,
    pub revision: u32,
    pub content_hash: String,
    pub actor: String,
    pub via: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Redaction rule names and counts (never values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, usize>,
    pub prev: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The journal folder of a brain.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(dir: PathBuf) -> Self {
        Journal { dir }
    }

    fn month_file(&self, ts: Timestamp) -> PathBuf {
        self.dir.join(format!("{}.jsonl", ts.strftime("%Y-%m")))
    }

    /// Appends an event, filling in `ts` (if empty) and `prev`. The caller holds the lock.
    pub fn append(&self, mut event: Event) -> Result<Event> {
        let now = Timestamp::now();
        if event.ts.is_empty() {
            event.ts = now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        }
        let path = self.month_file(now);
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let existing = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut prefix = Vec::new();
        if !existing.is_empty() && !existing.ends_with(b"\n") {
            // A torn last line (a crash mid-append): close it so the next line stays whole;
            // `verify` reports the torn line.
            prefix.push(b'\n');
        }
        event.prev = last_line(&existing).map(sha256_hex).unwrap_or_default();
        let mut line = serde_json::to_vec(&event).map_err(|e| Error::Index(e.to_string()))?;
        let mut buf = prefix;
        buf.append(&mut line);
        buf.push(b'\n');
        file.write_all(&buf).map_err(|e| Error::io(&path, e))?;
        file.sync_data().map_err(|e| Error::io(&path, e))?;
        Ok(event)
    }

    /// Every event, oldest month first; within a month in causal order (see the module docs).
    pub fn events(&self) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for path in self.files()? {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let mut lines = Vec::new();
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let ev: Event = serde_json::from_slice(line).map_err(|e| Error::Journal {
                    path: path.clone(),
                    line: i + 1,
                    message: e.to_string(),
                })?;
                lines.push((line, ev));
            }
            out.extend(causal_order(lines));
        }
        Ok(out)
    }

    fn files(&self) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "jsonl") {
                files.push(p);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Checks every month file's chains (see the module docs); returns the number of events.
    pub fn verify(&self) -> Result<usize> {
        Ok(self.verify_report()?.events)
    }

    /// Like `verify`, and also counts the merged branches.
    pub fn verify_report(&self) -> Result<Verified> {
        let mut total = Verified::default();
        for path in self.files()? {
            let v = verify_file(&path)?;
            total.events += v.events;
            total.merged_branches += v.merged_branches;
        }
        Ok(total)
    }
}

/// What `verify_report` found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub events: usize,
    /// Lines whose `prev` is not the line above: the first line of each branch's block after
    /// a union merge. 0 for a journal that was never merged.
    pub merged_branches: usize,
}

fn last_line(bytes: &[u8]) -> Option<&[u8]> {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if trimmed.is_empty() {
        return None;
    }
    let start = trimmed
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    Some(&trimmed[start..])
}

fn verify_file(path: &Path) -> Result<Verified> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // The hashes of the lines read so far: a `prev` may name any of them.
    let mut earlier: HashSet<String> = HashSet::new();
    let mut above: Option<String> = None;
    let mut v = Verified::default();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let err = |message: String| Error::Journal {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let ev: Event =
            serde_json::from_slice(line).map_err(|e| err(format!("not a journal event: {e}")))?;
        let hash = sha256_hex(line);
        let linear = match &above {
            Some(h) => ev.prev == *h,
            None => ev.prev.is_empty(),
        };
        if !linear {
            if !ev.prev.is_empty() && !earlier.contains(&ev.prev) {
                let expected = above.unwrap_or_default();
                return Err(err(format!(
                    "chain broken: `prev` is {:?}, which is the hash of no earlier line (the line above hashes to {expected:?}); a line was edited or removed",
                    ev.prev
                )));
            }
            v.merged_branches += 1;
        }
        earlier.insert(hash.clone());
        above = Some(hash);
        v.events += 1;
    }
    Ok(v)
}

/// A month file's events with each after its predecessor, otherwise by `ts` (then file order).
/// Lines whose `prev` names no earlier line start their own chain.
fn causal_order(lines: Vec<(&[u8], Event)>) -> Vec<Event> {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};
    let mut index_of: HashMap<String, usize> = HashMap::new();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); lines.len()];
    let mut ready = BinaryHeap::new();
    for (i, (raw, ev)) in lines.iter().enumerate() {
        match index_of.get(&ev.prev) {
            Some(&parent) if !ev.prev.is_empty() => children[parent].push(i),
            _ => ready.push(Reverse((ev.ts.clone(), i))),
        }
        index_of.entry(sha256_hex(raw)).or_insert(i);
    }
    let mut slots: Vec<Option<Event>> = lines.into_iter().map(|(_, ev)| Some(ev)).collect();
    let mut out = Vec::with_capacity(slots.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        for &c in &children[i] {
            let ts = slots[c].as_ref().map(|e| e.ts.clone()).unwrap_or_default();
            ready.push(Reverse((ts, c)));
        }
        if let Some(ev) = slots[i].take() {
            out.push(ev);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> Event {
        Event {
            ts: String::new(),
            event: "created".into(),
            id: id.into(),
            revision: 0,
            content_hash: "h".into(),
            actor: "human:a".into(),
            via: "cli".into(),
            note: None,
            rules: BTreeMap::new(),
            prev: String::new(),
        }
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("journal"));
        for i in 0..5 {
            j.append(ev(&format!("R{i}"))).unwrap();
        }
        assert_eq!(j.verify().unwrap(), 5);
        assert_eq!(j.events().unwrap().len(), 5);
        let file = j.files().unwrap().remove(0);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("\"R2\"", "\"R9\"")).unwrap();
        let e = j.verify().unwrap_err().to_string();
        assert!(e.contains(":4: chain broken"), "{e}");
    }

    fn at(id: &str, ts: &str) -> Event {
        Event {
            ts: ts.into(),
            ..ev(id)
        }
    }

    /// Lines of `branch` that `base` does not have (what the branch appended).
    fn added(base: &str, branch: &str) -> String {
        branch.strip_prefix(base).expect("append-only").to_owned()
    }

    /// Two branches append to the same month file; git's union driver keeps the common lines,
    /// then ours, then theirs.
    #[test]
    fn union_merged_journal_verifies_each_branch_and_orders_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let main = Journal::new(dir.path().join("main"));
        main.append(at("BASE1", "2026-11-01T10:00:00.000Z"))
            .unwrap();
        main.append(at("BASE2", "2026-11-01T10:00:01.000Z"))
            .unwrap();
        let file_name = main.files().unwrap()[0].file_name().unwrap().to_owned();
        let base = std::fs::read_to_string(main.dir.join(&file_name)).unwrap();
        let feature = Journal::new(dir.path().join("feature"));
        std::fs::create_dir_all(&feature.dir).unwrap();
        std::fs::write(feature.dir.join(&file_name), &base).unwrap();
        // Interleaved in time: main, feature, main, feature.
        main.append(at("MAIN1", "2026-11-02T09:00:00.000Z"))
            .unwrap();
        feature
            .append(at("FEAT1", "2026-11-02T09:30:00.000Z"))
            .unwrap();
        main.append(at("MAIN2", "2026-11-02T10:00:00.000Z"))
            .unwrap();
        feature
            .append(at("FEAT2", "2026-11-02T10:30:00.000Z"))
            .unwrap();
        let ours = std::fs::read_to_string(main.dir.join(&file_name)).unwrap();
        let theirs = std::fs::read_to_string(feature.dir.join(&file_name)).unwrap();
        let merged = format!("{base}{}{}", added(&base, &ours), added(&base, &theirs));
        std::fs::write(main.dir.join(&file_name), &merged).unwrap();
        // The strict linear rule would stop at FEAT1; each branch's chain verifies.
        let v = main.verify_report().unwrap();
        assert_eq!(
            v,
            Verified {
                events: 6,
                merged_branches: 1
            }
        );
        let order: Vec<String> = main.events().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(
            order,
            ["BASE1", "BASE2", "MAIN1", "FEAT1", "MAIN2", "FEAT2"]
        );
        // Appends after the merge chain from the last line, and keep verifying.
        main.append(at("AFTER", "2026-11-03T08:00:00.000Z"))
            .unwrap();
        assert_eq!(main.verify().unwrap(), 7);
        assert_eq!(main.events().unwrap().last().unwrap().id, "AFTER");
        let merged = std::fs::read_to_string(main.dir.join(&file_name)).unwrap();
        // Editing a line another line chains from is still caught: a common line, and the
        // first line of a branch's block.
        for (victim, line) in [("\"BASE1\"", 2), ("\"FEAT1\"", 6)] {
            std::fs::write(
                main.dir.join(&file_name),
                merged.replacen(victim, "\"FORGED\"", 1),
            )
            .unwrap();
            let e = main.verify().unwrap_err().to_string();
            assert!(e.contains(&format!(":{line}: chain broken")), "{e}");
        }
        // So is removing one.
        let without: String = merged
            .split_inclusive('\n')
            .filter(|l| !l.contains("\"MAIN1\""))
            .collect();
        std::fs::write(main.dir.join(&file_name), without).unwrap();
        let e = main.verify().unwrap_err().to_string();
        assert!(e.contains(":3: chain broken"), "{e}");
        // And moving a line above its predecessor.
        let mut lines: Vec<&str> = merged.lines().collect();
        lines.swap(2, 3);
        std::fs::write(main.dir.join(&file_name), lines.join("\n") + "\n").unwrap();
        assert!(main.verify().is_err());
    }

    /// Both branches started the same month file: two chains with an empty `prev`.
    #[test]
    fn union_merge_of_a_month_file_both_branches_created() {
        let dir = tempfile::tempdir().unwrap();
        let a = Journal::new(dir.path().join("a"));
        let b = Journal::new(dir.path().join("b"));
        a.append(at("A1", "2026-11-05T12:00:00.000Z")).unwrap();
        a.append(at("A2", "2026-11-05T12:02:00.000Z")).unwrap();
        b.append(at("B1", "2026-11-05T12:01:00.000Z")).unwrap();
        let name = a.files().unwrap()[0].file_name().unwrap().to_owned();
        let merged = std::fs::read_to_string(a.dir.join(&name)).unwrap()
            + &std::fs::read_to_string(b.dir.join(&name)).unwrap();
        std::fs::write(a.dir.join(&name), merged).unwrap();
        let v = a.verify_report().unwrap();
        assert_eq!((v.events, v.merged_branches), (3, 1));
        let order: Vec<String> = a.events().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(order, ["A1", "B1", "A2"]);
    }

    /// Causal order wins over a clock that went backwards on one branch.
    #[test]
    fn events_keep_each_branch_in_chain_order() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("j"));
        j.append(at("FIRST", "2026-11-05T12:00:00.000Z")).unwrap();
        j.append(at("SECOND", "2026-11-05T11:00:00.000Z")).unwrap();
        let order: Vec<String> = j.events().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(order, ["FIRST", "SECOND"]);
        assert_eq!(j.verify_report().unwrap().merged_branches, 0);
    }
}
